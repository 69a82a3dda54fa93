//! Metrics through Prometheus: PromQL queries from scripts and a metric expectation on plans.
//!
//! ```rhai
//! let plan = ScenarioBuilder::topology_with(|t| t.nodes(3))
//!     .expect_metric("logos_blockchain_height", ">", 0)       // every series must hold
//!     .with_workload("watch", |ctx| {
//!         let heights = ctx.prometheus().query("logos_blockchain_height");
//!         for s in heights { print(`${s.labels.node}: ${s.value}`); }
//!     })
//!     .with_run_duration("10s")
//!     .build();
//! ```
//!
//! The server is `LOGOS_BLOCKCHAIN_METRICS_QUERY_URL`; a user's Prometheus finds each run's nodes
//! through the file_sd file `LOGOS_BLOCKCHAIN_PROMETHEUS_SD_FILE` (written by the CLI).

use std::sync::Arc;

use engine::metrics::{CompareOp, MetricExpectation, MetricSample, PrometheusClient};
use rhai::{Array, Dynamic, Engine};

use super::scenario::PlanBuilder;
use super::script_fns::ContextHandle;
use super::values::{Res, deadline, err, map, number};
use crate::bridge::Bridge;
use crate::doc::registry::{Area, Registrar};
use crate::host::{HostState, Mode};
use crate::script_fn;

/// A Prometheus server scripts query (`prometheus()`, `ctx.prometheus()`). In `check` mode
/// without a configured server it answers every query with no series.
#[derive(Clone)]
pub struct PrometheusHandle {
    client: Option<PrometheusClient>,
    bridge: Bridge,
}

impl PrometheusHandle {
    fn open(bridge: &Bridge, mode: Mode) -> Res<Self> {
        Self::open_in(bridge, mode, &engine::metrics::Monitoring::from_env())
    }

    /// The Prometheus of `m` (a plan's `with_metrics_query_url`, else the environment's).
    fn open_in(bridge: &Bridge, mode: Mode, m: &engine::metrics::Monitoring) -> Res<Self> {
        match m.prometheus() {
            Ok(client) => Ok(Self {
                client: Some(client),
                bridge: bridge.clone(),
            }),
            Err(_) if mode == Mode::Check => Ok(Self {
                client: None,
                bridge: bridge.clone(),
            }),
            Err(e) => err(format!("prometheus(): {e}")),
        }
    }

    fn samples(&self, promql: &str) -> Res<Vec<MetricSample>> {
        let Some(client) = self.client.clone() else {
            return Ok(Vec::new());
        };
        let promql = promql.to_string();
        match self
            .bridge
            .block_on_cancellable(async move { client.query(&promql).await })?
        {
            Ok(samples) => Ok(samples),
            Err(e) => err(e.to_string()),
        }
    }

    fn query(&self, promql: &str) -> Res<Array> {
        Ok(self
            .samples(promql)?
            .into_iter()
            .map(|s| {
                let labels: rhai::Map = s
                    .labels
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect();
                map([
                    ("labels", labels.into()),
                    ("value", Dynamic::from_float(s.value)),
                ])
                .into()
            })
            .collect())
    }

    fn value(&self, promql: &str) -> Res<f64> {
        let samples = self.samples(promql)?;
        match samples.as_slice() {
            [one] => Ok(one.value),
            [] if self.client.is_none() => Ok(0.0),
            [] => err(format!(
                "prometheus value({promql:?}): the query returned no series (use query() to accept none)"
            )),
            many => err(format!(
                "prometheus value({promql:?}): the query returned {} series, expected one (aggregate it, e.g. max({promql}), or use query())",
                many.len()
            )),
        }
    }
}

fn metric_expectation(query: &str, op: &str, value: &Dynamic) -> Res<MetricExpectation> {
    let threshold = number(value, "expect_metric value")?;
    let op = op
        .parse::<CompareOp>()
        .or_else(|e: String| err(format!("expect_metric: {e}")))?;
    MetricExpectation::new(query, op, threshold).or_else(|e| err(format!("expect_metric: {e}")))
}

/// Registers `prometheus()`, `ctx.prometheus()`, the query methods and `expect_metric`.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut reg = Registrar::new(engine, Area::Reports);
    reg.register_type::<PrometheusHandle>(
        "Prometheus",
        &[
            " The Prometheus server named by `LOGOS_BLOCKCHAIN_METRICS_QUERY_URL`, for PromQL",
            " instant queries. Each run's nodes carry the labels `run_id`, `deployer` and `node`",
            " when Prometheus scrapes them through `LOGOS_BLOCKCHAIN_PROMETHEUS_SD_FILE`.",
            "",
            " ```rhai,no_run",
            " let p = prometheus();",
            " print(p.value(\"max(logos_blockchain_height)\"));",
            " ```",
        ],
    );
    let (bridge, mode) = (state.bridge.clone(), state.settings.mode);
    script_fn!(reg,
        /// The Prometheus server of `LOGOS_BLOCKCHAIN_METRICS_QUERY_URL`; an error naming the
        /// variable when it is not set.
        ///
        /// ```rhai,no_run
        /// let up = prometheus().query("up == 1");
        /// print(`${up.len()} targets up`);
        /// ```
        fn prometheus() -> Prometheus => move || PrometheusHandle::open(&bridge, mode)
    );
    let (bridge, mode) = (state.bridge.clone(), state.settings.mode);
    script_fn!(reg,
        /// The Prometheus server, from inside a workload or expectation closure.
        ///
        /// ```rhai,no_run
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_expectation("blocks produced", |ctx| {
        ///         ctx.prometheus().value("sum(logos_blockchain_blocks_produced_total)") > 5
        ///     });
        /// ```
        fn prometheus(ctx: RunContext) -> Prometheus
        => move |c: &mut ContextHandle| {
            PrometheusHandle::open_in(&bridge, mode, &c.run_context().monitoring())
        }
    );
    script_fn!(reg,
        /// Runs an instant PromQL query: one map `#{labels, value}` per series (a scalar is
        /// one series without labels).
        ///
        /// ```rhai,no_run
        /// for s in prometheus().query("logos_blockchain_height") {
        ///     print(`${s.labels.node} at ${s.value}`);
        /// }
        /// ```
        fn query(prometheus: Prometheus, promql: String) -> Array
        => |p: &mut PrometheusHandle, q: &str| p.query(q)
    );
    script_fn!(reg,
        /// The value of a query that returns exactly one series (aggregate with `max(..)`,
        /// `sum(..)`); an error when it returns none or several.
        ///
        /// ```rhai,no_run
        /// let h = prometheus().value("min(logos_blockchain_height)");
        /// ```
        fn value(prometheus: Prometheus, promql: String) -> float
        => |p: &mut PrometheusHandle, q: &str| p.value(q)
    );
    script_fn!(reg,
        /// The server's URL (empty in `check` mode without a server).
        ///
        /// ```rhai,no_run
        /// print(prometheus().url);
        /// ```
        get url(prometheus: Prometheus) -> String
        => |p: &mut PrometheusHandle| p.client.as_ref().map(|c| c.url().to_string()).unwrap_or_default()
    );

    reg.area(Area::Expectations);
    script_fn!(reg,
        /// Expects a PromQL query to satisfy `op value` (`op`: `>`, `>=`, `<`, `<=`, `==`) for
        /// every series it returns, and at least one series, at evaluation. Prometheus scrapes
        /// on its own schedule, so the query is retried for up to 10 s; a failure lists every
        /// observed series with its labels (`node="node-2"`).
        ///
        /// ```rhai
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .expect_metric("logos_blockchain_height", ">=", 3)
        ///     .build();
        /// ```
        fn expect_metric(builder: ScenarioBuilder, query: String, op: String, value: Number) -> ScenarioBuilder
        => |b: &mut PlanBuilder, q: &str, op: &str, v: Dynamic| -> Res<PlanBuilder> {
            let e = metric_expectation(q, op, &v)?;
            Ok(b.map(|s| s.with_expectation(Arc::new(e))))
        }
    );
    script_fn!(reg,
        /// [`expect_metric`] retrying for `within` (a duration, or `"N slots"` / `"N blocks"`
        /// of the plan's consensus parameters) instead of 10 s.
        ///
        /// ```rhai
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .expect_metric("sum(logos_blockchain_reorgs_total)", "==", 0, "2s")
        ///     .build();
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .expect_metric("sum(logos_blockchain_reorgs_total)", "==", 0, "4 slots")
        ///     .build();
        /// ```
        fn expect_metric(builder: ScenarioBuilder, query: String, op: String, value: Number, within: Deadline) -> ScenarioBuilder
        => |b: &mut PlanBuilder, q: &str, op: &str, v: Dynamic, within: Dynamic| -> Res<PlanBuilder> {
            let within = deadline(&within, "expect_metric within")?;
            let e = metric_expectation(q, op, &v)?.within(within);
            Ok(b.map(|s| s.with_expectation(Arc::new(e))))
        }
    );
}
