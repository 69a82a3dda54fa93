//! The plan's expectations: `expect_*`, `with_expectation(..)`, and the builders their `_with`
//! closures get.

use std::sync::Arc;

use engine::expectation::{ConsensusLivenessBuilder, ConvergenceBuilder, TxInclusionBuilder};
use engine::scenario::ScenarioBuilder;
use rhai::{Dynamic, FnPtr, INT, NativeCallContext};

use super::{PlanBuilder, builder_fn, check_name};
use crate::api::script_fns::{ScriptCallback, ScriptExpectation};
use crate::api::values::{Res, amount, deadline, number};
use crate::doc::registry::{Area, Registrar};
use crate::host::HostState;
use crate::script_fn;

/// The plan builder's expectation methods.
pub(super) fn register_plan_methods(reg: &mut Registrar, state: &Arc<HostState>) {
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
        reg,
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
        reg,
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
        reg,
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
}

/// The builders given to the `expect_*_with` closures.
pub(super) fn register_builders(reg: &mut Registrar) {
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
