//! `ScenarioBuilder::topology_with(..)`, `with_topology(..)` and the plan builder's settings, up to
//! `build()`.

use std::sync::Arc;

use engine::scenario::ScenarioBuilder;
use engine::topology::TopologyBuilder;
use rhai::{Dynamic, FnPtr, INT, Module, NativeCallContext};

use super::{Plan, PlanBuilder, call_builder};
use crate::api::values::{Res, amount, at_call, count, deadline, err};
use crate::doc::registry::Registrar;
use crate::host::HostState;
use crate::script_fn;

/// The scenario builder's static module, its type and its settings.
pub(super) fn register(reg: &mut Registrar, state: &Arc<HostState>) {
    let mut module = Module::new();
    module.set_doc(
        "/// `ScenarioBuilder::topology_with(|t| ..)` and `ScenarioBuilder::with_topology(t)`: the\n\
         /// two ways to start a plan, as in the seed framework.",
    );
    script_fn!(reg, module(&mut module, "ScenarioBuilder")
        /// Starts a plan: the closure gets a fresh `TopologyBuilder` and returns it configured.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.network_star().nodes(3));
        /// ```
        fn topology_with(f: FnPtr) -> ScenarioBuilder
        => |ctx: NativeCallContext, f: FnPtr| -> Res<PlanBuilder> {
            let t = call_builder(
                &ctx,
                &f,
                TopologyBuilder::new(),
                "topology_with",
                "TopologyBuilder",
            )?;
            Ok(PlanBuilder {
                inner: ScenarioBuilder::new(t),
                seed: None,
            })
        }
    );
    script_fn!(reg, module(&mut module, "ScenarioBuilder")
        /// The seed's shorthand: starts a plan on `n` nodes with every other topology setting
        /// at its default.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::with_node_counts(3);
        /// ```
        fn with_node_counts(n: int) -> ScenarioBuilder
        => |ctx: NativeCallContext, n: INT| -> Res<PlanBuilder> {
            let n = count(n, "with_node_counts").map_err(|e| at_call(e, ctx.call_position()))?;
            Ok(PlanBuilder {
                inner: ScenarioBuilder::with_node_counts(n),
                seed: None,
            })
        }
    );
    script_fn!(reg, module(&mut module, "ScenarioBuilder")
        /// Starts a plan from a topology builder made beforehand.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(3);
        /// let builder = ScenarioBuilder::with_topology(t);
        /// ```
        fn with_topology(topology: TopologyBuilder) -> ScenarioBuilder
        => |t: TopologyBuilder| PlanBuilder {
            inner: ScenarioBuilder::new(t),
            seed: None,
        }
    );
    reg.engine()
        .register_static_module("ScenarioBuilder", module.into());

    reg.register_type::<PlanBuilder>(
        "ScenarioBuilder",
        &[
            " A plan under construction: topology, workloads, expectations, run duration, seed.",
            " Every method returns a new builder; `build()` validates it into a `Scenario`.",
            "",
            " ```rhai",
            " let plan = ScenarioBuilder::topology_with(|t| t.network_star().nodes(3))",
            "     .wallets(20)",
            "     .transactions_with(|txs| txs.rate(2).users(10))",
            "     .expect_consensus_liveness()",
            "     .with_run_duration(\"30s\")",
            "     .build();",
            " ```",
        ],
    );
    script_fn!(reg,
        /// Starts a plan from a topology builder (same as `ScenarioBuilder::with_topology`).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder(TopologyBuilder().nodes(2));
        /// ```
        fn ScenarioBuilder(topology: TopologyBuilder) -> ScenarioBuilder
        => |t: TopologyBuilder| PlanBuilder {
            inner: ScenarioBuilder::new(t),
            seed: None,
        }
    );
    script_fn!(reg,
        /// A one-line description of the builder.
        ///
        /// ```rhai
        /// print(ScenarioBuilder(TopologyBuilder()).to_string());
        /// ```
        fn to_string(builder: ScenarioBuilder) -> String
        => |b: &mut PlanBuilder| format!("{:?}", b.inner)
    );
    script_fn!(reg,
        /// Reshapes the plan's topology: the closure gets the current `TopologyBuilder` and
        /// returns it changed.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder(TopologyBuilder().nodes(3))
        ///     .topology_with(|t| t.slot_duration("200ms"));
        /// ```
        fn topology_with(builder: ScenarioBuilder, f: FnPtr) -> ScenarioBuilder
        => |ctx: NativeCallContext, b: &mut PlanBuilder, f: FnPtr| -> Res<PlanBuilder> {
            let t = call_builder(
                &ctx,
                &f,
                b.inner.topology_builder().clone(),
                "topology_with",
                "TopologyBuilder",
            )?;
            Ok(b.map(|s| s.map_topology(|_| t)))
        }
    );
    script_fn!(reg,
        /// Number of funded wallets (overrides the topology's); the transaction workload sends
        /// from them. At most 100,000.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(50);
        /// ```
        fn wallets(builder: ScenarioBuilder, n: int) -> ScenarioBuilder
        => |b: &mut PlanBuilder, n: INT| -> Res<_> {
            let n = count(n, "wallets")?;
            Ok(b.map(|s| s.wallets(n)))
        }
    );
    script_fn!(reg,
        /// How long the workloads run (then the cooldown, then the expectations judge): a
        /// duration, or `"N slots"` / `"N blocks"` of the topology's consensus parameters.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).with_run_duration("90s");
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).with_run_duration("60 slots");
        /// ```
        fn with_run_duration(builder: ScenarioBuilder, duration: Deadline) -> ScenarioBuilder
        => |b: &mut PlanBuilder, d: Dynamic| -> Res<_> {
            let d = deadline(&d, "with_run_duration")?;
            Ok(b.map(|s| s.with_run_duration(d)))
        }
    );
    script_fn!(reg,
        /// Wait after the workloads stop, before the expectations are evaluated (default: five
        /// slots), so in-flight blocks and transactions settle; a duration, slots or blocks.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).with_cooldown("2s");
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).with_cooldown("3 slots");
        /// ```
        fn with_cooldown(builder: ScenarioBuilder, duration: Deadline) -> ScenarioBuilder
        => |b: &mut PlanBuilder, d: Dynamic| -> Res<_> {
            let d = deadline(&d, "with_cooldown")?;
            Ok(b.map(|s| s.with_cooldown(d)))
        }
    );
    script_fn!(reg,
        /// A failed workload no longer stops the run early: the run goes on to its end and every
        /// expectation is judged (the failure still fails the run). By default a workload that
        /// fails (or a script workload that throws) stops the run at once, like a broken invariant.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).continue_on_workload_failure();
        /// ```
        fn continue_on_workload_failure(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(ScenarioBuilder::continue_on_workload_failure)
    );
    script_fn!(reg,
        /// Declares that the plan controls nodes (restart, stop, ...): a deployer without node
        /// control is refused before anything is deployed.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3)).enable_node_control();
        /// ```
        fn enable_node_control(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(ScenarioBuilder::enable_node_control)
    );
    script_fn!(reg,
        /// Declares that the plan injects network faults: a deployer without them is refused
        /// before anything is deployed.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(4)).enable_network_faults();
        /// ```
        fn enable_network_faults(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(ScenarioBuilder::enable_network_faults)
    );
    script_fn!(reg,
        /// Fixes the plan's seed (keys, senders, random shapes, chaos timing); `--seed` on the
        /// command line still wins.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).seed(42);
        /// ```
        fn seed(builder: ScenarioBuilder, seed: int) -> ScenarioBuilder
        => |b: &mut PlanBuilder, seed: INT| -> Res<_> {
            let seed = amount(seed, "seed")?;
            Ok(PlanBuilder {
                inner: b.inner.clone().seed(seed),
                seed: Some(seed),
            })
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// Validates the plan (topology, durations, workloads) into a `Scenario`; an invalid
        /// plan is a script error naming the field and value at fault.
        ///
        /// ```rhai
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .expect_consensus_liveness()
        ///     .with_run_duration("10s")
        ///     .build();
        /// print(plan.duration);
        /// ```
        fn build(builder: ScenarioBuilder) -> Scenario
        => move |b: &mut PlanBuilder| -> Res<Plan> {
            // --seed wins, then the script's .seed(n), then the run's random seed (printed).
            let seed = st.settings.seed.or(b.seed).unwrap_or(st.seed);
            match b.inner.clone().seed(seed).build() {
                Ok(s) => {
                    for w in &s.warnings {
                        eprintln!("warning: {w}");
                    }
                    Ok(Plan(Arc::new(s)))
                }
                Err(e) => err(format!("invalid scenario: {e}")),
            }
        }
    );
}
