//! The run report as scripts see it, and the error values that carry an exit code.
//!
//! ```rhai
//! let report = plan.try_run();
//! if !report.passed { print(report.summary); }
//! try { plan.run(); } catch (failed) { print(failed.verdicts); }   // the error IS the report
//! ```

use std::sync::Arc;

use engine::report::{Outcome, RunReport};
use rhai::{Array, Dynamic, Engine, INT};

use super::values::{int, map, to_script};
use crate::doc::registry::{Area, Registrar};
use crate::exit;
use crate::script_fn;

/// A finished run's report. Raised as the error value of a failed `plan.run()`, so an uncaught
/// failure exits with the report's code (1, or 3 for infrastructure) and not as a script error.
#[derive(Clone)]
pub struct ReportHandle(pub Arc<RunReport>);

/// An infrastructure failure outside a run (an imperative `deploy()` whose nodes never got
/// ready): exits 3 when uncaught.
#[derive(Clone)]
pub struct InfraFailure(pub String);

/// The exit code an error value stands for, if it is one of ours.
pub fn exit_code_of(value: &Dynamic) -> Option<i32> {
    if let Some(r) = value.read_lock::<ReportHandle>() {
        return Some(r.0.exit_code());
    }
    if value.is::<InfraFailure>() {
        return Some(exit::INFRA_ERROR);
    }
    None
}

/// The message printed for an uncaught error value of ours.
pub fn message_of(value: &Dynamic) -> Option<String> {
    if let Some(r) = value.read_lock::<ReportHandle>() {
        return Some(failure_message(&r.0));
    }
    value
        .read_lock::<InfraFailure>()
        .map(|f| format!("infrastructure error: {}", f.0))
}

/// "scenario failed: ConsensusLiveness failed: node-2 height 3 < target 10 ...".
pub fn failure_message(report: &RunReport) -> String {
    match &report.outcome {
        Outcome::Passed => format!("scenario passed: {}", report.summary()),
        Outcome::Failed => format!("scenario failed: {}", report.failure_summary()),
        Outcome::Error(_) => format!("scenario could not run: {}", report.failure_summary()),
        Outcome::Interrupted => "scenario interrupted".to_string(),
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Error(_) => "error",
        Outcome::Interrupted => "interrupted",
    }
}

/// Registers the report type.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Reports);
    reg.register_type::<ReportHandle>(
        "RunReport",
        &[
            " The report of one run: what `plan.run()` and `plan.try_run()` return. A failed",
            " `plan.run()` raises it as the error value, so `catch (report)` reads the same",
            " properties.",
            "",
            " ```rhai,no_run",
            " let report = plan.try_run();",
            " if !report.passed { print(report.failures); }",
            " ```",
        ],
    );
    reg.register_type::<InfraFailure>(
        "InfraFailure",
        &[
            " The error value raised when a testnet could not be deployed or never got ready",
            " outside a run (an uncaught one exits with code 3).",
            "",
            " ```rhai,no_run",
            " try { LocalDeployer().deploy(TopologyBuilder().nodes(3)); }",
            " catch (e) { if type_of(e) == \"InfraFailure\" { print(e.message); } }",
            " ```",
        ],
    );
    script_fn!(reg,
        /// Whether every expectation passed and no workload failed.
        ///
        /// ```rhai,deploys
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("100ms"))
        ///     .expect_consensus_liveness()
        ///     .with_run_duration("2s")
        ///     .build();
        /// let report = plan.try_run();
        /// print(`passed: ${report.passed}, outcome: ${report.outcome}`);
        /// ```
        get passed(report: RunReport) -> bool => |r: &mut ReportHandle| r.0.passed()
    );
    script_fn!(reg,
        /// `"passed"`, `"failed"` (an expectation or a workload failed), `"error"` (the testnet
        /// could not run) or `"interrupted"`.
        ///
        /// ```rhai,no_run
        /// let report = plan.try_run();
        /// if report.outcome == "error" { print("infrastructure problem: " + report.failures); }
        /// ```
        get outcome(report: RunReport) -> String => |r: &mut ReportHandle| {
            outcome_name(&r.0.outcome).to_string()
        }
    );
    script_fn!(reg,
        /// One line: outcome, heights, blocks and transactions.
        ///
        /// ```rhai,no_run
        /// print(plan.try_run().summary);
        /// ```
        get summary(report: RunReport) -> String => |r: &mut ReportHandle| r.0.summary()
    );
    script_fn!(reg,
        /// What failed, one line per failed expectation or workload (empty after a pass).
        ///
        /// ```rhai,no_run
        /// let report = plan.try_run();
        /// if !report.passed { print(report.failures); }
        /// ```
        get failures(report: RunReport) -> String => |r: &mut ReportHandle| r.0.failure_summary()
    );
    script_fn!(reg,
        /// The exit code this report stands for: 0 passed, 1 failed, 3 infrastructure error,
        /// 130 interrupted.
        ///
        /// ```rhai,no_run
        /// print(plan.try_run().exit_code);
        /// ```
        get exit_code(report: RunReport) -> int => |r: &mut ReportHandle| r.0.exit_code() as INT
    );
    script_fn!(reg,
        /// The seed the run used: pass it to `--seed` to replay the same keys, senders and
        /// chaos timeline.
        ///
        /// ```rhai,no_run
        /// print(`replay with --seed ${plan.try_run().seed}`);
        /// ```
        get seed(report: RunReport) -> int => |r: &mut ReportHandle| int(r.0.seed)
    );
    script_fn!(reg,
        /// The run's id (also the suffix of its run dir).
        ///
        /// ```rhai,no_run
        /// print(plan.try_run().run_id);
        /// ```
        get run_id(report: RunReport) -> String => |r: &mut ReportHandle| r.0.run_id.clone()
    );
    script_fn!(reg,
        /// The run dir (node data, configs, logs) if it was kept, else `()`.
        ///
        /// ```rhai,no_run
        /// let report = plan.try_run();
        /// if report.kept { print(`logs in ${report.run_dir}`); }
        /// ```
        get run_dir(report: RunReport) -> Dynamic => |r: &mut ReportHandle| {
            r.0.run_dir
                .as_ref()
                .map_or(Dynamic::UNIT, |p| p.display().to_string().into())
        }
    );
    script_fn!(reg,
        /// Whether the run dir was kept (after a failure, or with `--keep`).
        ///
        /// ```rhai,no_run
        /// print(plan.try_run().kept);
        /// ```
        get kept(report: RunReport) -> bool => |r: &mut ReportHandle| r.0.kept
    );
    script_fn!(reg,
        /// Transactions the workloads submitted.
        ///
        /// ```rhai,no_run
        /// let r = plan.try_run();
        /// print(`${r.txs_included} of ${r.txs_submitted} included`);
        /// ```
        get txs_submitted(report: RunReport) -> int => |r: &mut ReportHandle| int(r.0.txs_submitted)
    );
    script_fn!(reg,
        /// Submitted transactions seen in a block.
        ///
        /// ```rhai,no_run
        /// let r = plan.try_run();
        /// print(`${r.txs_included} of ${r.txs_submitted} included`);
        /// ```
        get txs_included(report: RunReport) -> int => |r: &mut ReportHandle| int(r.0.txs_included)
    );
    script_fn!(reg,
        /// Distinct blocks observed by the block feed during the run.
        ///
        /// ```rhai,no_run
        /// print(plan.try_run().blocks_seen);
        /// ```
        get blocks_seen(report: RunReport) -> int => |r: &mut ReportHandle| int(r.0.blocks_seen)
    );
    script_fn!(reg,
        /// Each node's height at the end of the run (`()` for a node that did not answer).
        ///
        /// ```rhai,no_run
        /// print(plan.try_run().final_heights);   // e.g. [21, 21, 20]
        /// ```
        get final_heights(report: RunReport) -> Array => |r: &mut ReportHandle| -> Array {
            r.0.final_heights
                .iter()
                .map(|h| h.map_or(Dynamic::UNIT, int))
                .collect()
        }
    );
    script_fn!(reg,
        /// One map per expectation: `#{name, passed, message, evidence}`.
        ///
        /// ```rhai,no_run
        /// for v in plan.try_run().verdicts { print(`${v.name}: ${v.passed} ${v.message}`); }
        /// ```
        get verdicts(report: RunReport) -> Array => |r: &mut ReportHandle| -> Array {
            r.0.verdicts
                .iter()
                .map(|v| {
                    map([
                        ("name", v.name.clone().into()),
                        ("passed", v.verdict.passed.into()),
                        ("message", v.verdict.message.clone().into()),
                        ("evidence", to_script(&v.verdict.evidence)),
                    ])
                    .into()
                })
                .collect()
        }
    );
    script_fn!(reg,
        /// One map per failed workload: `#{name, error}`.
        ///
        /// ```rhai,no_run
        /// for w in plan.try_run().workload_errors { print(`${w.name}: ${w.error}`); }
        /// ```
        get workload_errors(report: RunReport) -> Array => |r: &mut ReportHandle| -> Array {
            r.0.workload_errors
                .iter()
                .map(|w| {
                    map([
                        ("name", w.name.clone().into()),
                        ("error", w.error.clone().into()),
                    ])
                    .into()
                })
                .collect()
        }
    );
    script_fn!(reg,
        /// The whole report as a map (the same fields as the JSON report file).
        ///
        /// ```rhai,no_run
        /// let m = plan.try_run().to_map();
        /// print(m.keys());
        /// ```
        fn to_map(report: RunReport) -> Map => |r: &mut ReportHandle| to_script(&*r.0)
    );
    script_fn!(reg,
        /// The summary line (what `print(report)` shows).
        ///
        /// ```rhai,no_run
        /// print(plan.try_run());
        /// ```
        fn to_string(report: RunReport) -> String => |r: &mut ReportHandle| r.0.summary()
    );
    script_fn!(reg,
        /// The summary line (what `debug(report)` shows).
        ///
        /// ```rhai,no_run
        /// debug(plan.try_run());
        /// ```
        fn to_debug(report: RunReport) -> String => |r: &mut ReportHandle| r.0.summary()
    );
    script_fn!(reg,
        /// What went wrong with the infrastructure.
        ///
        /// ```rhai,no_run
        /// try { LocalDeployer().deploy(TopologyBuilder().nodes(3)); } catch (e) { print(e.message); }
        /// ```
        get message(failure: InfraFailure) -> String => |f: &mut InfraFailure| f.0.clone()
    );
    script_fn!(reg,
        /// `infrastructure error: <message>`.
        ///
        /// ```rhai,no_run
        /// try { LocalDeployer().deploy(TopologyBuilder().nodes(3)); } catch (e) { print(e); }
        /// ```
        fn to_string(failure: InfraFailure) -> String => |f: &mut InfraFailure| {
            format!("infrastructure error: {}", f.0)
        }
    );
}
