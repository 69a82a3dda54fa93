//! `ScenarioBuilder::topology_with(..)` ... `.build()`: plans, as in the seed.
//!
//! ```rhai
//! let plan = ScenarioBuilder::topology_with(|t| t.network_star().nodes(3))
//!     .wallets(50)
//!     .transactions_with(|txs| txs.rate(5).users(20))
//!     .expect_consensus_liveness()
//!     .with_run_duration("90s")
//!     .build();
//! let report = plan.run();      // raises (exit 1) when the run fails; the error is the report
//! let report = plan.try_run();  // returns the report either way
//! ```
//!
//! Closures given to `topology_with`, `transactions_with` and the `_with` expectation methods
//! are called at once with a builder and must return it; closures given to `with_workload` and
//! `with_expectation` are kept and run during the run, each on its own thread.

use std::sync::Arc;

use engine::expectation::{ConsensusLivenessBuilder, ConvergenceBuilder, TxInclusionBuilder};
use engine::scenario::{Scenario, ScenarioBuilder};
use engine::topology::TopologyBuilder;
use engine::workload::TxWorkloadBuilder;
use rhai::{Array, Dynamic, Engine, FnPtr, INT, Module, NativeCallContext};

use super::runner;
use super::script_fns::{ScriptCallback, ScriptExpectation, ScriptWorkload};
use super::values::{
    Res, amount, at_call, closure_position, count, deadline, err, err_at, int, number,
};
use crate::doc::registry::{Area, Registrar};
use crate::host::HostState;
use crate::script_fn;

/// The scenario builder as scripts hold it (remembers whether the script chose a seed).
#[derive(Clone)]
pub struct PlanBuilder {
    inner: ScenarioBuilder,
    seed: Option<u64>,
}

impl PlanBuilder {
    /// The same plan builder with `f` applied to the engine builder (used by other modules,
    /// e.g. chaos, to add their workloads and expectations).
    pub fn map(&self, f: impl FnOnce(ScenarioBuilder) -> ScenarioBuilder) -> Self {
        Self {
            inner: f(self.inner.clone()),
            seed: self.seed,
        }
    }
}

/// The seed's `builder.transactions()...apply()`: the transaction settings and the plan they go
/// back to.
#[derive(Clone)]
pub struct TransactionFlow {
    plan: PlanBuilder,
    txs: TxWorkloadBuilder,
}

/// A validated plan.
#[derive(Clone)]
pub struct Plan(pub Arc<Scenario>);

/// Calls a builder closure with `builder` and checks it returned the same kind of builder.
fn call_builder<T: Clone + Send + Sync + 'static>(
    ctx: &NativeCallContext,
    f: &FnPtr,
    builder: T,
    what: &str,
    type_name: &str,
) -> Res<T> {
    let out: Dynamic = f
        .call_within_context(ctx, (builder,))
        .map_err(|e| at_call(e, ctx.call_position()))?;
    let found = super::values::a_type(&out);
    match out.try_cast::<T>() {
        Some(t) => Ok(t),
        None => err_at(
            format!(
                "the closure given to {what} must return the {type_name} it was given (end it with the builder, e.g. `|t| t.nodes(3)`), but it returned {found}"
            ),
            closure_or_call(ctx, f),
        ),
    }
}

/// Where the closure returns from, else the call.
pub fn closure_or_call(ctx: &NativeCallContext, f: &FnPtr) -> rhai::Position {
    let p = closure_position(ctx, f);
    if p.is_none() { ctx.call_position() } else { p }
}

/// Registers a `_with` method whose closure gets a fresh sub-builder and must return it.
fn builder_fn<T: Clone + Send + Sync + 'static>(
    reg: &mut Registrar,
    name: &'static str,
    type_name: &'static str,
    docs: &[&str],
    apply: fn(ScenarioBuilder, T) -> ScenarioBuilder,
    fresh: fn() -> T,
) {
    reg.func(
        name,
        &["builder: ScenarioBuilder", "f: FnPtr"],
        "ScenarioBuilder",
        docs,
        move |ctx: NativeCallContext, b: &mut PlanBuilder, f: FnPtr| -> Res<PlanBuilder> {
            let t = call_builder(&ctx, &f, fresh(), name, type_name)?;
            Ok(b.map(|s| apply(s, t)))
        },
    );
}

/// Registers the scenario builder, the sub-builders and plans.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut reg = Registrar::new(engine, Area::Scenario);
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

    reg.area(Area::Workloads);
    script_fn!(reg,
        /// The seed's `with_metrics_query_url`: the Prometheus this plan's metric expectations
        /// and `ctx.prometheus()` query, in place of `LOGOS_BLOCKCHAIN_METRICS_QUERY_URL`
        /// (an http(s) URL; a bad one is refused at build).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_metrics_query_url("http://127.0.0.1:9090");
        /// ```
        fn with_metrics_query_url(builder: ScenarioBuilder, url: String) -> ScenarioBuilder
        => |b: &mut PlanBuilder, url: &str| b.map(|s| s.with_metrics_query_url(url))
    );
    script_fn!(reg,
        /// The seed's `with_metrics_otlp_ingest_url`: where the nodes push OTLP metrics (a full
        /// URL, path included), in place of `LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL`; handed to
        /// the nodes of the container backends and listed with the endpoints.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_metrics_otlp_ingest_url("http://127.0.0.1:4318/v1/metrics");
        /// ```
        fn with_metrics_otlp_ingest_url(builder: ScenarioBuilder, url: String) -> ScenarioBuilder
        => |b: &mut PlanBuilder, url: &str| b.map(|s| s.with_metrics_otlp_ingest_url(url))
    );
    script_fn!(reg,
        /// The seed's `with_grafana_url`: a Grafana for humans, listed with the endpoints, in
        /// place of `LOGOS_BLOCKCHAIN_GRAFANA_URL`.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_grafana_url("http://127.0.0.1:3000");
        /// ```
        fn with_grafana_url(builder: ScenarioBuilder, url: String) -> ScenarioBuilder
        => |b: &mut PlanBuilder, url: &str| b.map(|s| s.with_grafana_url(url))
    );
    script_fn!(reg,
        /// The seed's transaction flow: returns a `TransactionFlowBuilder` (defaults: one
        /// transaction per expected block, every wallet a sender), configured with `rate`,
        /// `users` and `inclusion_threshold` and ended with `apply()`, which adds the workload
        /// and returns the `ScenarioBuilder`.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(10)
        ///     .transactions().rate(2).users(5).apply();
        /// ```
        fn transactions(builder: ScenarioBuilder) -> TransactionFlowBuilder
        => |b: &mut PlanBuilder| TransactionFlow { plan: b.clone(), txs: TxWorkloadBuilder::new() }
    );
    builder_fn::<TxWorkloadBuilder>(
        &mut reg,
        "transactions_with",
        "TxWorkloadBuilder",
        &[
            " Adds the transaction workload, configured by the closure: it gets a",
            " `TxWorkloadBuilder` and returns it.",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))",
            "     .wallets(20)",
            "     .transactions_with(|txs| txs.rate(5).users(10));",
            " ```",
        ],
        |s, t| s.transactions_with(|_| t),
        TxWorkloadBuilder::new,
    );
    let st = state.clone();
    script_fn!(reg,
        /// Adds a workload written as a closure `|ctx| { .. }` that runs on its own thread
        /// during the run, until it returns or the run stops it (at the end of the run duration
        /// the closure stops at its next call). A script error in it fails the run, naming the
        /// workload and the position. `ctx` is a `RunContext`.
        ///
        /// ```rhai,deploys
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("100ms"))
        ///     .with_workload("watch", |ctx| {
        ///         while !ctx.stopped {
        ///             ctx.log(`node-0 at ${ctx.node(0).height()}`);
        ///             ctx.sleep("300ms");
        ///         }
        ///     })
        ///     .with_run_duration("2s")
        ///     .build();
        /// plan.run();
        /// ```
        fn with_workload(builder: ScenarioBuilder, name: String, f: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, name: &str, f: FnPtr| -> Res<_> {
            check_name(name, "with_workload")?;
            let cb = ScriptCallback::capture(&ctx, name, f, &st);
            Ok(b.map(|s| s.with_workload(Arc::new(ScriptWorkload { callback: cb }))))
        }
    );

    reg.area(Area::Expectations);
    script_fn!(reg,
        /// Expects every node's height to advance during the run, with the default bounds.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3)).expect_consensus_liveness();
        /// ```
        fn expect_consensus_liveness(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(ScenarioBuilder::expect_consensus_liveness)
    );
    builder_fn::<ConsensusLivenessBuilder>(
        &mut reg,
        "expect_consensus_liveness_with",
        "ConsensusLivenessBuilder",
        &[
            " Expects liveness with explicit bounds: the closure gets a",
            " `ConsensusLivenessBuilder` and returns it.",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))",
            "     .expect_consensus_liveness_with(|l| l.min_height(10).max_lag(3));",
            " ```",
        ],
        |s, l| s.expect_consensus_liveness_with(|_| l),
        ConsensusLivenessBuilder::new,
    );
    script_fn!(reg,
        /// Expects every node to agree on the LIB at the end, with the default bounds.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3)).expect_convergence();
        /// ```
        fn expect_convergence(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(ScenarioBuilder::expect_convergence)
    );
    builder_fn::<ConvergenceBuilder>(
        &mut reg,
        "expect_convergence_with",
        "ConvergenceBuilder",
        &[
            " Expects convergence with explicit bounds: the closure gets a `ConvergenceBuilder`",
            " and returns it.",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .expect_convergence_with(|c| c.deadline(\"20s\").max_tip_spread(2));",
            " ```",
        ],
        |s, c| s.expect_convergence_with(|_| c),
        ConvergenceBuilder::new,
    );
    script_fn!(reg,
        /// Expects at least half of the submitted transactions to be included.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .transactions().apply()
        ///     .expect_tx_inclusion();
        /// ```
        fn expect_tx_inclusion(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(|s| s.expect_tx_inclusion_with(|e| e))
    );
    builder_fn::<TxInclusionBuilder>(
        &mut reg,
        "expect_tx_inclusion_with",
        "TxInclusionBuilder",
        &[
            " Expects transaction inclusion with an explicit threshold: the closure gets a",
            " `TxInclusionBuilder` and returns it.",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))",
            "     .transactions().apply()",
            "     .expect_tx_inclusion_with(|i| i.threshold(0.9));",
            " ```",
        ],
        |s, i| s.expect_tx_inclusion_with(|_| i),
        TxInclusionBuilder::new,
    );
    let st = state.clone();
    script_fn!(reg,
        /// Adds an expectation written as a closure `|ctx| ..`, evaluated after the run: it
        /// returns a bool, or `#{passed, message}` (optionally `evidence`) to explain itself.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_expectation("grew", |ctx| {
        ///         let h = ctx.node(0).height();
        ///         #{ passed: h > 3, message: `node-0 reached ${h}` }
        ///     });
        /// ```
        fn with_expectation(builder: ScenarioBuilder, name: String, f: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, name: &str, f: FnPtr| -> Res<_> {
            check_name(name, "with_expectation")?;
            let cb = ScriptCallback::capture(&ctx, name, f, &st);
            Ok(b.map(|s| s.with_expectation(Arc::new(ScriptExpectation::new(cb)))))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// The seed's `start_capture`: `start` runs when the run starts (after readiness, before
        /// the workloads) and what it returns is handed to `evaluate`, which runs after the run
        /// as `|ctx, captured| ..` and returns a bool or `#{passed, message}`.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_expectation("grew since the start",
        ///         |ctx| ctx.node(0).height(),
        ///         |ctx, start| {
        ///             let h = ctx.node(0).height();
        ///             #{ passed: h > start, message: `node-0 from ${start} to ${h}` }
        ///         });
        /// ```
        fn with_expectation(builder: ScenarioBuilder, name: String, start: FnPtr, evaluate: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, name: &str, start: FnPtr, f: FnPtr| -> Res<_> {
            check_name(name, "with_expectation")?;
            let mut e = ScriptExpectation::new(ScriptCallback::capture(&ctx, name, f, &st));
            e.start = Some(ScriptCallback::capture(&ctx, name, start, &st));
            Ok(b.map(|s| s.with_expectation(Arc::new(e))))
        }
    );

    register_sub_builders(&mut reg);
    reg.area(Area::Scenario);
    register_plan(&mut reg, state);
}

fn check_name(name: &str, what: &str) -> Res<()> {
    if name.trim().is_empty() {
        return err(format!("{what} needs a non-empty name"));
    }
    Ok(())
}

fn register_transaction_flow(reg: &mut Registrar) {
    reg.register_type::<TransactionFlow>(
        "TransactionFlowBuilder",
        &[
            " The seed's transaction flow (`builder.transactions()`): the same settings as",
            " `TxWorkloadBuilder`, ended with `apply()`, which returns the `ScenarioBuilder`.",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(20)",
            "     .transactions().rate(5).users(10).apply()",
            "     .expect_tx_inclusion();",
            " ```",
        ],
    );
    script_fn!(reg,
        /// Transactions per expected block (default 1, at most 10,000).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).transactions().rate(5).apply();
        /// ```
        fn rate(flow: TransactionFlowBuilder, per_block: Number) -> TransactionFlowBuilder
        => |f: &mut TransactionFlow, r: Dynamic| -> Res<_> {
            Ok(TransactionFlow { plan: f.plan.clone(), txs: f.txs.clone().rate(number(&r, "rate")?) })
        }
    );
    script_fn!(reg,
        /// Number of distinct sending wallets (default: every wallet).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(50)
        ///     .transactions().users(20).apply();
        /// ```
        fn users(flow: TransactionFlowBuilder, n: int) -> TransactionFlowBuilder
        => |f: &mut TransactionFlow, n: INT| -> Res<_> {
            Ok(TransactionFlow { plan: f.plan.clone(), txs: f.txs.clone().users(count(n, "users")?) })
        }
    );
    script_fn!(reg,
        /// Share of submitted transactions that must be included for `expect_tx_inclusion`
        /// (default 0.5).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .transactions().inclusion_threshold(0.9).apply();
        /// ```
        fn inclusion_threshold(flow: TransactionFlowBuilder, share: Number) -> TransactionFlowBuilder
        => |f: &mut TransactionFlow, r: Dynamic| -> Res<_> {
            Ok(TransactionFlow {
                plan: f.plan.clone(),
                txs: f.txs.clone().inclusion_threshold(number(&r, "inclusion_threshold")?),
            })
        }
    );
    script_fn!(reg,
        /// Adds the transaction workload to the plan and returns the `ScenarioBuilder`.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).transactions().apply();
        /// ```
        fn apply(flow: TransactionFlowBuilder) -> ScenarioBuilder
        => |f: &mut TransactionFlow| {
            let txs = f.txs.clone();
            f.plan.map(|s| s.transactions_with(|_| txs))
        }
    );
}

fn register_sub_builders(reg: &mut Registrar) {
    reg.area(Area::Workloads);
    reg.register_type::<TxWorkloadBuilder>(
        "TxWorkloadBuilder",
        &[
            " Settings of the transaction workload (given to `transactions_with`): signed",
            " transfers between the funded wallets, submitted round-robin to the nodes.",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))",
            "     .transactions_with(|txs| txs.rate(3).users(5).inclusion_threshold(0.8));",
            " ```",
        ],
    );
    script_fn!(reg,
        /// Transactions per expected block (default 1, at most 10,000).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).transactions_with(|txs| txs.rate(5));
        /// ```
        fn rate(txs: TxWorkloadBuilder, per_block: Number) -> TxWorkloadBuilder
        => |t: &mut TxWorkloadBuilder, r: Dynamic| -> Res<_> { Ok(t.clone().rate(number(&r, "rate")?)) }
    );
    script_fn!(reg,
        /// Number of distinct sending wallets (default: every wallet; at most the wallets, so
        /// at most 100,000).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(50)
        ///     .transactions_with(|txs| txs.users(20));
        /// ```
        fn users(txs: TxWorkloadBuilder, n: int) -> TxWorkloadBuilder
        => |t: &mut TxWorkloadBuilder, n: INT| -> Res<_> { Ok(t.clone().users(count(n, "users")?)) }
    );
    script_fn!(reg,
        /// Share of submitted transactions that must be included for `expect_tx_inclusion`
        /// (default 0.5).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .transactions_with(|txs| txs.inclusion_threshold(0.9));
        /// ```
        fn inclusion_threshold(txs: TxWorkloadBuilder, share: Number) -> TxWorkloadBuilder
        => |t: &mut TxWorkloadBuilder, r: Dynamic| -> Res<_> {
            Ok(t.clone().inclusion_threshold(number(&r, "inclusion_threshold")?))
        }
    );

    register_transaction_flow(reg);

    reg.area(Area::Expectations);
    reg.register_type::<ConsensusLivenessBuilder>(
        "ConsensusLivenessBuilder",
        &[
            " Bounds of the consensus liveness expectation (given to",
            " `expect_consensus_liveness_with`). Lagging nodes get time to catch up before it",
            " fails; a node whose height stopped rising fails at once.",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))",
            "     .expect_consensus_liveness_with(|l| l.min_progress(5));",
            " ```",
        ],
    );
    script_fn!(reg,
        /// Absolute height every node must reach.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .expect_consensus_liveness_with(|l| l.min_height(20));
        /// ```
        fn min_height(liveness: ConsensusLivenessBuilder, height: int) -> ConsensusLivenessBuilder
        => |l: &mut ConsensusLivenessBuilder, h: INT| -> Res<_> {
            Ok(l.clone().min_height(amount(h, "min_height")?))
        }
    );
    script_fn!(reg,
        /// Least number of blocks every node must advance over the run.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .expect_consensus_liveness_with(|l| l.min_progress(5));
        /// ```
        fn min_progress(liveness: ConsensusLivenessBuilder, blocks: int) -> ConsensusLivenessBuilder
        => |l: &mut ConsensusLivenessBuilder, h: INT| -> Res<_> {
            Ok(l.clone().min_progress(amount(h, "min_progress")?))
        }
    );
    script_fn!(reg,
        /// The seed's lag allowance: the least lag its default rule allows (default 2). Unless
        /// `max_lag` is set, with `target = min(blocks expected since genesis, max height)`
        /// every node must reach `target - clamp(target / 10, allowance, 5)`.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .expect_consensus_liveness_with(|l| l.with_lag_allowance(3));
        /// ```
        fn with_lag_allowance(liveness: ConsensusLivenessBuilder, blocks: int) -> ConsensusLivenessBuilder
        => |l: &mut ConsensusLivenessBuilder, h: INT| -> Res<_> {
            Ok(l.clone().lag_allowance(amount(h, "with_lag_allowance")?))
        }
    );
    script_fn!(reg,
        /// Largest allowed lag (in blocks) of any node behind the highest one at the end
        /// (replaces the seed's rule of `with_lag_allowance`).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .expect_consensus_liveness_with(|l| l.max_lag(2));
        /// ```
        fn max_lag(liveness: ConsensusLivenessBuilder, blocks: int) -> ConsensusLivenessBuilder
        => |l: &mut ConsensusLivenessBuilder, h: INT| -> Res<_> {
            Ok(l.clone().max_lag(amount(h, "max_lag")?))
        }
    );
    reg.register_type::<TxInclusionBuilder>(
        "TxInclusionBuilder",
        &[
            " Settings of the transaction inclusion expectation (given to",
            " `expect_tx_inclusion_with`).",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).transactions().apply()",
            "     .expect_tx_inclusion_with(|i| i.threshold(0.75));",
            " ```",
        ],
    );
    script_fn!(reg,
        /// Least share of submitted transactions that must be included, in (0, 1] (default
        /// 0.5).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).transactions().apply()
        ///     .expect_tx_inclusion_with(|i| i.threshold(0.9));
        /// ```
        fn threshold(inclusion: TxInclusionBuilder, share: Number) -> TxInclusionBuilder
        => |t: &mut TxInclusionBuilder, r: Dynamic| -> Res<_> {
            Ok(t.clone().threshold(number(&r, "threshold")?))
        }
    );
    script_fn!(reg,
        /// Whether each node is also judged on the transactions submitted to it (default
        /// `true`): a node whose share included is below the per-node threshold fails the
        /// expectation, named with its counts. `false` judges the aggregate share only.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3)).transactions().apply()
        ///     .expect_tx_inclusion_with(|i| i.per_node(false));
        /// ```
        fn per_node(inclusion: TxInclusionBuilder, on: bool) -> TxInclusionBuilder
        => |t: &mut TxInclusionBuilder, on: bool| -> Res<_> {
            Ok(t.clone().per_node(on))
        }
    );
    script_fn!(reg,
        /// Least share of each node's transactions that must be included, in (0, 1] (default:
        /// the aggregate threshold). Transactions submitted in the last max(1 s, 5 expected
        /// block intervals) of the run are not judged per node.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3)).transactions().apply()
        ///     .expect_tx_inclusion_with(|i| i.threshold(0.8).per_node_threshold(0.5));
        /// ```
        fn per_node_threshold(inclusion: TxInclusionBuilder, share: Number) -> TxInclusionBuilder
        => |t: &mut TxInclusionBuilder, r: Dynamic| -> Res<_> {
            Ok(t.clone().per_node_threshold(number(&r, "per_node_threshold")?))
        }
    );
    reg.register_type::<ConvergenceBuilder>(
        "ConvergenceBuilder",
        &[
            " Bounds of the convergence expectation (given to `expect_convergence_with`),",
            " measured after the last fault is reverted plus a quiet time.",
            "",
            " ```rhai",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .expect_convergence_with(|c| c.deadline(\"30s\"));",
            " ```",
        ],
    );
    script_fn!(reg,
        /// How long the nodes get to agree on the LIB before the expectation fails: a duration,
        /// or `"N slots"` / `"N blocks"`, turned into time from the testnet's slot duration
        /// (and, for blocks, its active slot coefficient f) when the expectation is judged.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .expect_convergence_with(|c| c.deadline("20s"));
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .expect_convergence_with(|c| c.deadline("40 slots"));
        /// ```
        fn deadline(convergence: ConvergenceBuilder, deadline: Deadline) -> ConvergenceBuilder
        => |c: &mut ConvergenceBuilder, d: Dynamic| -> Res<_> {
            Ok(c.clone().deadline(deadline(&d, "deadline")?))
        }
    );
    script_fn!(reg,
        /// Largest allowed spread of tip heights between nodes (default: the security
        /// parameter k).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .expect_convergence_with(|c| c.max_tip_spread(1));
        /// ```
        fn max_tip_spread(convergence: ConvergenceBuilder, blocks: int) -> ConvergenceBuilder
        => |c: &mut ConvergenceBuilder, s: INT| -> Res<_> {
            Ok(c.clone().max_tip_spread(amount(s, "max_tip_spread")?))
        }
    );
}

fn register_plan(reg: &mut Registrar, state: &Arc<HostState>) {
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
        => move |p: &mut Plan| -> Res<super::report::ReportHandle> {
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
