//! `Scenario`: a validated plan, its getters, `run()` and `try_run()`.

use std::sync::Arc;

use rhai::{Array, INT};

use super::Plan;
use crate::api::runner;
use crate::api::values::{Res, int};
use crate::doc::registry::Registrar;
use crate::host::HostState;
use crate::script_fn;

/// The `Scenario` type.
pub(super) fn register(reg: &mut Registrar, state: &Arc<HostState>) {
    reg.register_type::<Plan>(
        "Scenario",
        &[
            " A validated plan (`builder.build()`), ready to run: `plan.run()` deploys it with the",
            " `--deployer` backend, drives the workloads, judges the expectations and tears down.",
            "",
            " ```rhai",
            " print(`${plan.node_count} nodes for ${plan.duration}s, seed ${plan.seed}`);",
            " ```",
        ],
    );
    script_fn!(reg,
        /// The seed the plan runs with.
        ///
        /// ```rhai
        /// print(plan.seed);
        /// ```
        get seed(plan: Scenario) -> int => |p: &mut Plan| int(p.0.seed())
    );
    script_fn!(reg,
        /// Number of nodes the plan deploys.
        ///
        /// ```rhai
        /// print(plan.node_count);
        /// ```
        get node_count(plan: Scenario) -> int => |p: &mut Plan| p.0.topology().node_count() as INT
    );
    script_fn!(reg,
        /// Run duration in seconds.
        ///
        /// ```rhai
        /// print(plan.duration);   // 2.0
        /// ```
        get duration(plan: Scenario) -> float => |p: &mut Plan| p.0.duration().as_secs_f64()
    );
    script_fn!(reg,
        /// Names of the plan's workloads.
        ///
        /// ```rhai
        /// print(plan.workloads);
        /// ```
        get workloads(plan: Scenario) -> Array => |p: &mut Plan| -> Array {
            p.0.workload_names().into_iter().map(Into::into).collect()
        }
    );
    script_fn!(reg,
        /// Names of the plan's expectations.
        ///
        /// ```rhai
        /// print(plan.expectations);   // ["ConsensusLiveness"]
        /// ```
        get expectations(plan: Scenario) -> Array => |p: &mut Plan| -> Array {
            p.0.expectation_names()
                .into_iter()
                .map(Into::into)
                .collect()
        }
    );
    script_fn!(reg,
        /// The plan's validated topology.
        ///
        /// ```rhai
        /// print(plan.topology.edges);
        /// ```
        get topology(plan: Scenario) -> Topology => |p: &mut Plan| p.0.topology().clone()
    );
    script_fn!(reg,
        /// A description of the whole plan.
        ///
        /// ```rhai
        /// print(plan.to_string());
        /// ```
        fn to_string(plan: Scenario) -> String => |p: &mut Plan| format!("{:?}", p.0)
    );
    let st = state.clone();
    script_fn!(reg,
        /// Runs the plan on the `--deployer` backend (deploy, drive, judge, tear down) and
        /// returns its report; a failed run raises the report as the error, so an uncaught
        /// failure exits 1 (3 for infrastructure) naming what failed.
        ///
        /// ```rhai,no_run
        /// let report = plan.run();
        /// print(report.summary);
        /// ```
        fn run(plan: Scenario) -> RunReport
        => move |p: &mut Plan| -> Res<crate::api::report::ReportHandle> {
            let report = runner::run_plan(&st, None, &p.0)?;
            runner::raise_if_failed(report)
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// Runs the plan like `run()` but returns the report whether it passed or not.
        ///
        /// ```rhai,deploys
        /// let report = plan.try_run();
        /// print(report.passed);
        /// ```
        fn try_run(plan: Scenario) -> RunReport
        => move |p: &mut Plan| runner::run_plan(&st, None, &p.0)
    );
}
