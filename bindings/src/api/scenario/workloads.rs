//! The plan's workloads and metrics endpoints: `transactions()` (and its flow builder),
//! `transactions_with(..)`, `with_workload(..)`, and the `TxWorkloadBuilder`.

use std::sync::Arc;

use engine::workload::TxWorkloadBuilder;
use rhai::{Dynamic, FnPtr, INT, NativeCallContext};

use super::{PlanBuilder, TransactionFlow, builder_fn, check_name};
use crate::api::script_fns::{ScriptCallback, ScriptWorkload};
use crate::api::values::{Res, count, number};
use crate::doc::registry::{Area, Registrar};
use crate::host::HostState;
use crate::script_fn;

/// The plan builder's workload and metrics methods.
pub(super) fn register_plan_methods(reg: &mut Registrar, state: &Arc<HostState>) {
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
        reg,
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
}

/// `TxWorkloadBuilder` and the seed's transaction flow.
pub(super) fn register_builders(reg: &mut Registrar) {
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
