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
use crate::exit;

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
    engine
        .register_type_with_name::<ReportHandle>("RunReport")
        .register_type_with_name::<InfraFailure>("InfraFailure")
        .register_get("passed", |r: &mut ReportHandle| r.0.passed())
        .register_get("outcome", |r: &mut ReportHandle| {
            outcome_name(&r.0.outcome).to_string()
        })
        .register_get("summary", |r: &mut ReportHandle| r.0.summary())
        .register_get("failures", |r: &mut ReportHandle| r.0.failure_summary())
        .register_get("exit_code", |r: &mut ReportHandle| r.0.exit_code() as INT)
        .register_get("seed", |r: &mut ReportHandle| int(r.0.seed))
        .register_get("run_id", |r: &mut ReportHandle| r.0.run_id.clone())
        .register_get("run_dir", |r: &mut ReportHandle| {
            r.0.run_dir
                .as_ref()
                .map_or(Dynamic::UNIT, |p| p.display().to_string().into())
        })
        .register_get("kept", |r: &mut ReportHandle| r.0.kept)
        .register_get("txs_submitted", |r: &mut ReportHandle| {
            int(r.0.txs_submitted)
        })
        .register_get("txs_included", |r: &mut ReportHandle| int(r.0.txs_included))
        .register_get("blocks_seen", |r: &mut ReportHandle| int(r.0.blocks_seen))
        .register_get("final_heights", |r: &mut ReportHandle| -> Array {
            r.0.final_heights
                .iter()
                .map(|h| h.map_or(Dynamic::UNIT, int))
                .collect()
        })
        .register_get("verdicts", |r: &mut ReportHandle| -> Array {
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
        })
        .register_get("workload_errors", |r: &mut ReportHandle| -> Array {
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
        })
        .register_fn("to_map", |r: &mut ReportHandle| to_script(&*r.0))
        .register_fn("to_string", |r: &mut ReportHandle| r.0.summary())
        .register_fn("to_debug", |r: &mut ReportHandle| r.0.summary())
        .register_get("message", |f: &mut InfraFailure| f.0.clone())
        .register_fn("to_string", |f: &mut InfraFailure| {
            format!("infrastructure error: {}", f.0)
        });
}
