//! Expectations judge the run: capture a baseline when the run starts,
//! evaluate at the end. Built-ins: [`ConsensusLiveness`], [`TxInclusion`],
//! [`Convergence`].

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::client::model::short_id as short;
use crate::context::RunContext;
use crate::deadline::Deadline;
use crate::deploy::NodeState;

/// The judgement of one expectation.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    /// One line; on failure it names what failed with the numbers.
    pub message: String,
    /// Machine-readable details for reports.
    pub evidence: serde_json::Value,
}

impl Verdict {
    /// A passing verdict.
    pub fn pass(message: impl Into<String>, evidence: serde_json::Value) -> Self {
        Self {
            passed: true,
            message: message.into(),
            evidence,
        }
    }

    /// A failing verdict.
    pub fn fail(message: impl Into<String>, evidence: serde_json::Value) -> Self {
        Self {
            passed: false,
            message: message.into(),
            evidence,
        }
    }
}

/// An expectation could not be evaluated at all (counts as a failure).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ExpectationError {
    pub message: String,
}

impl ExpectationError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A check of the run's outcome.
pub trait Expectation: Send + Sync {
    /// Name in reports (`consensus_liveness`); also the verdict's name.
    fn name(&self) -> String;
    /// Called once when the run starts (after readiness), before workloads.
    fn start_capture<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<(), ExpectationError>> {
        let _ = ctx;
        Box::pin(async { Ok(()) })
    }
    /// Called once after the cooldown.
    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>>;
}

async fn heights(ctx: &RunContext) -> Vec<Result<crate::client::ConsensusInfo, String>> {
    let clients = ctx.clients();
    let futs = clients.iter().map(|c| {
        let c = c.clone().with_timeout(Duration::from_secs(2));
        async move { c.consensus_info().await.map_err(|e| e.to_string()) }
    });
    futures::future::join_all(futs).await
}

/// Settings of [`ConsensusLiveness`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsensusLivenessBuilder {
    /// Every node must reach at least this height.
    pub min_height: Option<u64>,
    /// Every node must advance at least this much over the run (default: a
    /// quarter of the blocks expected from the slot length and f, at least 1).
    pub min_progress: Option<u64>,
    /// Largest allowed `max height - node height`. Unset, the seed's rule applies: with
    /// `target = min(blocks expected since genesis, max height)`, every node must reach
    /// `target - clamp(target / 10, lag_allowance, 5)`. (The seed counts expected blocks over
    /// the run; heights count from genesis, which in a short run on a fresh testnet passed a
    /// node 20 blocks behind, so the expectation is counted from genesis too.)
    pub max_lag: Option<u64>,
    /// The least lag the seed's rule allows (default 2, as in the seed).
    pub lag_allowance: Option<u64>,
    /// Quiet time after the last fault is reverted before measuring (default max(2 s, 10
    /// slots)); time, slots or blocks.
    pub settle: Option<Deadline>,
    /// How long lagging nodes get to catch up before failing (default max(10 s, 30 slots));
    /// a lagging node whose height has not risen for max(3 s, 15 slots) fails at once; time,
    /// slots or blocks.
    pub catch_up: Option<Deadline>,
}

impl ConsensusLivenessBuilder {
    /// Defaults as documented on the fields.
    pub fn new() -> Self {
        Self::default()
    }
    /// Absolute height every node must reach.
    pub fn min_height(mut self, h: u64) -> Self {
        self.min_height = Some(h);
        self
    }
    /// Least advance of every node over the run.
    pub fn min_progress(mut self, p: u64) -> Self {
        self.min_progress = Some(p);
        self
    }
    /// Largest allowed lag behind the highest node.
    pub fn max_lag(mut self, lag: u64) -> Self {
        self.max_lag = Some(lag);
        self
    }
    /// The seed's `with_lag_allowance`: the least lag its default rule allows.
    pub fn lag_allowance(mut self, lag: u64) -> Self {
        self.lag_allowance = Some(lag);
        self
    }
    /// Quiet time after the last fault before measuring: a duration, slots or blocks.
    pub fn settle(mut self, d: impl Into<Deadline>) -> Self {
        self.settle = Some(d.into());
        self
    }
    /// How long lagging nodes get to catch up: a duration, slots or blocks.
    pub fn catch_up(mut self, d: impl Into<Deadline>) -> Self {
        self.catch_up = Some(d.into());
        self
    }
    /// The expectation.
    pub fn build(&self) -> ConsensusLiveness {
        ConsensusLiveness {
            config: self.clone(),
            start: Mutex::new(None),
        }
    }
}

/// The seed's least lag allowance (`ConsensusLiveness::with_lag_allowance`'s default).
pub const SEED_LAG_ALLOWANCE: u64 = 2;
/// The seed's largest lag allowance.
const SEED_MAX_LAG_ALLOWANCE: u64 = 5;

/// The height every node must reach, and the lag that allows: `max_height - max_lag` when a
/// `max_lag` is set, else the seed's rule, `target - clamp(target / 10, floor, 5)` with
/// `target = min(expected, max_height)` (a floor above 5 wins).
pub fn lag_rule(max_lag: Option<u64>, floor: u64, expected: f64, max_height: u64) -> (u64, u64) {
    match max_lag {
        Some(l) => (max_height.saturating_sub(l), l),
        None => {
            let target = (expected.max(0.0).floor() as u64).min(max_height);
            let allowance = (target / 10).min(SEED_MAX_LAG_ALLOWANCE).max(floor);
            let need = target.saturating_sub(allowance);
            (need, max_height - need)
        }
    }
}

/// Every node's height advances over the run, by at least a minimum, and no
/// node lags the highest by more than a bound. The failure message names each
/// lagging node with its height and the target.
#[derive(Debug)]
pub struct ConsensusLiveness {
    config: ConsensusLivenessBuilder,
    start: Mutex<Option<(std::time::Instant, Vec<Option<u64>>)>>,
}

impl Default for ConsensusLiveness {
    fn default() -> Self {
        ConsensusLivenessBuilder::default().build()
    }
}

impl Expectation for ConsensusLiveness {
    fn name(&self) -> String {
        "consensus_liveness".to_owned()
    }

    fn start_capture<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<(), ExpectationError>> {
        Box::pin(async move {
            let h: Vec<Option<u64>> = heights(ctx)
                .await
                .into_iter()
                .map(|r| r.ok().map(|i| i.height))
                .collect();
            *self.start.lock().expect("lock") = Some((std::time::Instant::now(), h));
            Ok(())
        })
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let (started, start) = self
                .start
                .lock()
                .expect("lock")
                .clone()
                .unwrap_or_else(|| (std::time::Instant::now() - ctx.elapsed(), Vec::new()));
            let topo = ctx.testnet().topology().clone();
            let slot = topo.params.slot_duration;
            let expected = topo.params.expected_blocks(started.elapsed());
            let min_progress = self
                .config
                .min_progress
                .unwrap_or_else(|| ((expected * 0.25).floor() as u64).max(1));
            let lag_floor = self.config.lag_allowance.unwrap_or(SEED_LAG_ALLOWANCE);
            let settle = self
                .config
                .settle
                .map_or_else(|| default_settle(slot), |d| d.resolve(&topo.params));
            let catch_up = self.config.catch_up.map_or_else(
                || (slot * 30).max(Duration::from_secs(10)),
                |d| d.resolve(&topo.params),
            );
            let stall = (slot * 15).max(Duration::from_secs(3));
            if let Err(msg) = wait_settled(ctx, settle, catch_up).await {
                return Ok(Verdict::fail(
                    msg,
                    serde_json::json!({"settle_ms": settle.as_millis() as u64}),
                ));
            }
            let began = tokio::time::Instant::now();
            // per node: last height seen and when it last rose
            let mut seen: Vec<(Option<u64>, tokio::time::Instant)> = Vec::new();
            loop {
                let now = heights(ctx).await;
                let max_height = now
                    .iter()
                    .filter_map(|r| r.as_ref().ok().map(|i| i.height))
                    .max()
                    .unwrap_or(0);
                seen.resize(now.len(), (None, tokio::time::Instant::now()));
                // heights count from genesis, so the seed's target does too
                let since_genesis = ctx.testnet().genesis_time_ms().map_or(f64::INFINITY, |g| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    topo.params
                        .expected_blocks(Duration::from_millis(now.saturating_sub(g)))
                });
                let (floor, max_lag) =
                    lag_rule(self.config.max_lag, lag_floor, since_genesis, max_height);
                let mut lagging = Vec::new();
                let mut per_node = Vec::new();
                for (i, r) in now.iter().enumerate() {
                    let h = r.as_ref().ok().map(|info| info.height);
                    if h > seen[i].0 {
                        seen[i] = (h, tokio::time::Instant::now());
                    }
                    let base = start.get(i).copied().flatten();
                    let mut target = floor;
                    if let Some(b) = base {
                        target = target.max(b + min_progress);
                    }
                    if let Some(m) = self.config.min_height {
                        target = target.max(m);
                    }
                    per_node.push(serde_json::json!({
                        "node": i, "start": base, "height": h, "target": target,
                        "error": r.as_ref().err(),
                    }));
                    match r {
                        Err(e) => lagging.push((i, format!("node-{i} unreachable: {e}"))),
                        Ok(info) if info.height < target => lagging.push((
                            i,
                            format!(
                                "height {} < target {target} (max height {max_height}",
                                info.height
                            ),
                        )),
                        Ok(_) => {}
                    }
                }
                let evidence = serde_json::json!({
                    "nodes": per_node, "max_height": max_height, "min_progress": min_progress,
                    "max_lag": max_lag, "min_height": self.config.min_height,
                    "expected_blocks": expected, "catch_up_ms": catch_up.as_millis() as u64,
                });
                if lagging.is_empty() {
                    let hs: Vec<Option<u64>> = now
                        .iter()
                        .map(|r| r.as_ref().ok().map(|i| i.height))
                        .collect();
                    return Ok(Verdict::pass(
                        format!(
                            "all {} nodes advanced: heights {} (min progress {min_progress}, max lag {max_lag})",
                            now.len(),
                            crate::report::brief::heights(&hs)
                        ),
                        evidence,
                    ));
                }
                let timed_out = began.elapsed() >= catch_up;
                let all_stuck = lagging.iter().all(|(i, _)| seen[*i].1.elapsed() >= stall);
                if timed_out || all_stuck {
                    // a clock or disk fault still in force is the likely cause: say so
                    let in_force = ctx.testnet().node_faults();
                    let msgs: Vec<String> = lagging
                        .into_iter()
                        .map(|(i, m)| {
                            let m = match crate::deploy::node_faults::describe_on(&in_force, i) {
                                Some(f) if m.starts_with("node-") => format!("{m} [in force: {f}]"),
                                Some(f) => format!("{m}; in force: {f}"),
                                None => m,
                            };
                            if m.starts_with("node-") {
                                m
                            } else if timed_out && !all_stuck {
                                format!(
                                    "node-{i} did not catch up within {}: {m})",
                                    humantime::format_duration(catch_up)
                                )
                            } else {
                                format!(
                                    "node-{i} {m}; no progress for {})",
                                    humantime::format_duration(stall)
                                )
                            }
                        })
                        .collect();
                    let msg = if msgs.len() > crate::report::brief::FULL_UP_TO {
                        format!(
                            "{} of {} nodes lag: {}",
                            msgs.len(),
                            now.len(),
                            crate::report::brief::list(&msgs, "; ")
                        )
                    } else {
                        msgs.join("; ")
                    };
                    return Ok(Verdict::fail(msg, evidence));
                }
                tokio::time::sleep((slot / 2).max(Duration::from_millis(100))).await;
            }
        })
    }
}

/// Default settle time after the last fault: max(2 s, 10 slots).
fn default_settle(slot: Duration) -> Duration {
    (slot * 10).max(Duration::from_secs(2))
}

/// Waits until no network fault is in force and every node runs (at most
/// `bound`), then lets the network settle: `settle` after the newest revert
/// in the fault log, or after the moment the wait ended if it had to wait.
/// The error names what was still wrong at the bound.
async fn wait_settled(ctx: &RunContext, settle: Duration, bound: Duration) -> Result<(), String> {
    let net = ctx.testnet();
    let start = tokio::time::Instant::now();
    let mut waited = false;
    loop {
        let active = net.active_faults();
        let down: Vec<String> = (0..net.node_count())
            .filter_map(|i| match net.node_state(i) {
                Some(NodeState::Running) | None => None,
                Some(state) => Some(format!("node-{i} is {state:?}")),
            })
            .collect();
        if active.is_empty() && down.is_empty() {
            break;
        }
        if start.elapsed() >= bound {
            let mut what: Vec<String> = active
                .iter()
                .map(|f| format!("fault still in force: {}", f.fault))
                .collect();
            what.extend(down);
            return Err(format!(
                "{} (waited {})",
                what.join("; "),
                humantime::format_duration(bound)
            ));
        }
        waited = true;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut remaining = if waited { settle } else { Duration::ZERO };
    let since_revert = net
        .fault_log()
        .iter()
        .filter(|r| r.reverted)
        .map(|r| r.at)
        .max()
        .and_then(|at| at.elapsed().ok());
    if let Some(e) = since_revert {
        remaining = remaining.max(settle.saturating_sub(e));
    }
    tokio::time::sleep(remaining).await;
    Ok(())
}

/// Settings of [`TxInclusion`].
#[derive(Debug, Clone, PartialEq)]
pub struct TxInclusionBuilder {
    /// Least share of submitted transactions found in canonical blocks.
    pub threshold: f64,
    /// Also judge each node on the transactions submitted to it (default on):
    /// a node whose share included is below `per_node_threshold` fails the
    /// expectation, so one node that accepts transactions and loses them cannot
    /// hide behind the others.
    pub per_node: bool,
    /// Least share included per node (default: `threshold`).
    pub per_node_threshold: Option<f64>,
    /// Transactions submitted in this last part of the run are not judged per
    /// node (default: max(1 s, 5 expected block intervals), at most half the run);
    /// they still count in the aggregate.
    pub late_cutoff: Option<Duration>,
}

impl Default for TxInclusionBuilder {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            per_node: true,
            per_node_threshold: None,
            late_cutoff: None,
        }
    }
}

impl TxInclusionBuilder {
    /// Threshold 0.5 (as the seed), per-node attribution on.
    pub fn new() -> Self {
        Self::default()
    }
    /// Least share included, in (0, 1].
    pub fn threshold(mut self, t: f64) -> Self {
        self.threshold = t;
        self
    }
    /// Judge each node's submitted transactions too (`false`: the aggregate only).
    pub fn per_node(mut self, on: bool) -> Self {
        self.per_node = on;
        self
    }
    /// Least share included per node, in (0, 1] (default: the aggregate threshold).
    pub fn per_node_threshold(mut self, t: f64) -> Self {
        self.per_node_threshold = Some(t);
        self
    }
    /// Last part of the run whose transactions are not judged per node.
    pub fn late_cutoff(mut self, d: Duration) -> Self {
        self.late_cutoff = Some(d);
        self
    }
    /// The expectation.
    pub fn build(&self) -> TxInclusion {
        TxInclusion {
            threshold: self.threshold,
            per_node: self
                .per_node
                .then(|| self.per_node_threshold.unwrap_or(self.threshold)),
            late_cutoff: self.late_cutoff,
        }
    }
}

/// The share of submitted transactions found in canonical blocks (seen on
/// the block feed) reaches a threshold; with per-node attribution, so does
/// the share of each node that received transactions early enough to be
/// includable.
#[derive(Debug, Clone)]
pub struct TxInclusion {
    pub threshold: f64,
    /// Per-node threshold, `None` when only the aggregate is judged.
    pub per_node: Option<f64>,
    /// See [`TxInclusionBuilder::late_cutoff`].
    pub late_cutoff: Option<Duration>,
}

/// Counts of one node's submitted transactions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeInclusion {
    pub node: usize,
    /// Every transaction the node accepted.
    pub submitted: usize,
    pub included: usize,
    /// Those submitted before the late cutoff (what the node is judged on).
    pub judged: usize,
    pub judged_included: usize,
}

/// Groups the tx log by node; `judge_until` is the latest submission time judged per node.
fn per_node_counts(
    records: &[crate::context::TxRecord],
    included: impl Fn(&str) -> bool,
    judge_until: Duration,
) -> Vec<NodeInclusion> {
    let mut rows: Vec<NodeInclusion> = Vec::new();
    for r in records {
        if rows.len() <= r.node {
            rows.resize_with(r.node + 1, NodeInclusion::default);
        }
        let row = &mut rows[r.node];
        let inc = included(&r.id);
        row.submitted += 1;
        row.included += inc as usize;
        if r.submitted_at <= judge_until {
            row.judged += 1;
            row.judged_included += inc as usize;
        }
    }
    rows.iter_mut().enumerate().for_each(|(i, r)| r.node = i);
    rows.retain(|r| r.submitted > 0);
    rows
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 * 100.0 / d as f64
    }
}

/// The verdict from the counts (pure, for tests).
fn judge_inclusion(
    rows: &[NodeInclusion],
    threshold: f64,
    per_node: Option<f64>,
    rejected: u64,
    cutoff: Duration,
) -> Verdict {
    let submitted: usize = rows.iter().map(|r| r.submitted).sum();
    let included: usize = rows.iter().map(|r| r.included).sum();
    let evidence = serde_json::json!({
        "submitted": submitted, "included": included, "threshold": threshold,
        "rejected": rejected,
        "per_node_threshold": per_node,
        "late_cutoff_ms": cutoff.as_millis() as u64,
        "nodes": rows,
    });
    if submitted == 0 {
        return Verdict::fail(
            format!(
                "no transactions were submitted ({rejected} submissions rejected by every node)"
            ),
            evidence,
        );
    }
    let share = included as f64 / submitted as f64;
    let aggregate_ok = share + 1e-9 >= threshold;
    let failing: Vec<String> = match per_node {
        None => Vec::new(),
        Some(t) => rows
            .iter()
            .filter(|r| r.judged > 0 && (r.judged_included as f64 / r.judged as f64) + 1e-9 < t)
            .map(|r| {
                format!(
                    "node-{}: {}/{} included ({:.0}%)",
                    r.node,
                    r.judged_included,
                    r.judged,
                    pct(r.judged_included, r.judged)
                )
            })
            .collect(),
    };
    let agg = format!(
        "{included} of {submitted} submitted transactions included ({:.1}%, threshold {:.1}%)",
        share * 100.0,
        threshold * 100.0
    );
    let per_node_note = |t: f64| {
        format!(
            "per-node threshold {:.1}%, transactions of the last {} not judged per node",
            t * 100.0,
            humantime::format_duration(cutoff)
        )
    };
    if !aggregate_ok {
        let mut msg = agg;
        if !failing.is_empty() {
            msg = format!("{msg}; {}", failing.join(", "));
        }
        return Verdict::fail(msg, evidence);
    }
    match per_node {
        Some(t) if !failing.is_empty() => Verdict::fail(
            format!(
                "{}; aggregate {included}/{submitted} ({:.0}%) ({})",
                failing.join(", "),
                share * 100.0,
                per_node_note(t)
            ),
            evidence,
        ),
        Some(t) => {
            let judged = rows.iter().filter(|r| r.judged > 0).count();
            Verdict::pass(
                format!(
                    "{agg}; each of {judged} nodes that received transactions at or above {:.1}%",
                    t * 100.0
                ),
                evidence,
            )
        }
        None => Verdict::pass(agg, evidence),
    }
}

impl Expectation for TxInclusion {
    fn name(&self) -> String {
        "tx_inclusion".to_owned()
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let records = ctx.tx_log().records();
            let feed = ctx.block_feed();
            let run = ctx.run_duration();
            let cutoff = self.late_cutoff.unwrap_or_else(|| {
                let p = ctx.testnet().topology().params.clone();
                let f = p.active_slot_coeff.clamp(0.01, 1.0);
                let interval = p.slot_duration.mul_f64(5.0 / f);
                interval.max(Duration::from_secs(1)).min(run / 2)
            });
            let rows = per_node_counts(
                &records,
                |id| feed.tx_included(id).is_some(),
                run.saturating_sub(cutoff),
            );
            Ok(judge_inclusion(
                &rows,
                self.threshold,
                self.per_node,
                ctx.tx_log().rejected(),
                cutoff,
            ))
        })
    }
}

/// Settings of [`Convergence`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvergenceBuilder {
    /// How long to wait for agreement (default: max(10 s, 20 slots)); time, slots or blocks.
    pub deadline: Option<Deadline>,
    /// Largest allowed tip height spread (default: k).
    pub max_tip_spread: Option<u64>,
    /// Quiet time after the last fault is reverted before measuring (default max(2 s, 10
    /// slots)); time, slots or blocks.
    pub settle: Option<Deadline>,
}

impl ConvergenceBuilder {
    /// Defaults as documented on the fields.
    pub fn new() -> Self {
        Self::default()
    }
    /// How long to wait for agreement: a duration, or slots or blocks (resolved against the
    /// testnet's consensus parameters when judged).
    pub fn deadline(mut self, d: impl Into<Deadline>) -> Self {
        self.deadline = Some(d.into());
        self
    }
    /// Largest allowed tip height spread.
    pub fn max_tip_spread(mut self, s: u64) -> Self {
        self.max_tip_spread = Some(s);
        self
    }
    /// Quiet time after the last fault before measuring: a duration, slots or blocks.
    pub fn settle(mut self, d: impl Into<Deadline>) -> Self {
        self.settle = Some(d.into());
        self
    }
    /// The expectation.
    pub fn build(&self) -> Convergence {
        Convergence {
            config: self.clone(),
        }
    }
}

/// At the end, every node shares the same LIB and tips are within a bound,
/// within a deadline.
#[derive(Debug, Clone, Default)]
pub struct Convergence {
    config: ConvergenceBuilder,
}

impl Expectation for Convergence {
    fn name(&self) -> String {
        "convergence".to_owned()
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let params = ctx.testnet().topology().params.clone();
            let written = self.config.deadline;
            let deadline = written.map_or_else(
                || (params.slot_duration * 20).max(Duration::from_secs(10)),
                |d| d.resolve(&params),
            );
            // "after 20 slots (10s at 500ms slots)" when written in slots
            let deadline_text = written.map_or_else(
                || humantime::format_duration(deadline).to_string(),
                |d| d.describe(&params),
            );
            let spread_bound = self.config.max_tip_spread.unwrap_or(params.security_param);
            let k = params.security_param;
            let settle = self.config.settle.map_or_else(
                || default_settle(params.slot_duration),
                |d| d.resolve(&params),
            );
            if let Err(msg) = wait_settled(ctx, settle, deadline).await {
                return Ok(Verdict::fail(
                    msg,
                    serde_json::json!({"settle_ms": settle.as_millis() as u64}),
                ));
            }
            let started = tokio::time::Instant::now();
            let poll = (params.slot_duration / 2).max(Duration::from_millis(50));
            let mut last_problem;
            loop {
                let infos = heights(ctx).await;
                let mut problem = None;
                let mut rows = Vec::new();
                let mut ok = Vec::new();
                for (i, r) in infos.iter().enumerate() {
                    match r {
                        Ok(info) => {
                            rows.push(format!(
                                "node-{i} lib {}@{} tip {}",
                                short(&info.lib),
                                info.height.saturating_sub(k),
                                info.height
                            ));
                            ok.push((i, info.clone()));
                        }
                        Err(e) => {
                            rows.push(format!("node-{i} unreachable ({e})"));
                            problem = Some("a node is unreachable".to_owned());
                        }
                    }
                }
                if problem.is_none() && !ok.is_empty() {
                    let max_tip = ok.iter().map(|(_, i)| i.height).max().unwrap_or(0);
                    let min_tip = ok.iter().map(|(_, i)| i.height).min().unwrap_or(0);
                    let same_lib = ok.iter().all(|(_, i)| i.lib == ok[0].1.lib);
                    let agree = same_lib || {
                        // LIBs at different heights: agree if every node has the same
                        // block at the lowest LIB height on its canonical chain.
                        let h = min_tip.saturating_sub(k);
                        let feed = ctx.block_feed();
                        let ids: Vec<Option<String>> =
                            ok.iter().map(|(i, _)| feed.canonical_at(*i, h)).collect();
                        ids.iter().all(|x| x.is_some() && *x == ids[0])
                    };
                    if !agree {
                        problem = Some("nodes disagree on the LIB".to_owned());
                    } else if max_tip - min_tip > spread_bound {
                        problem = Some(format!(
                            "tip heights spread {} > bound {spread_bound}",
                            max_tip - min_tip
                        ));
                    }
                }
                let evidence =
                    serde_json::json!({"nodes": rows, "deadline_ms": deadline.as_millis() as u64});
                match problem {
                    None => {
                        return Ok(Verdict::pass(
                            format!("{} nodes share the LIB: {}", ok.len(), rows.join(", ")),
                            evidence,
                        ));
                    }
                    Some(p) => last_problem = (p, rows, evidence),
                }
                if started.elapsed() >= deadline {
                    let (p, rows, mut evidence) = last_problem;
                    let mut msg = format!("{p} after {deadline_text}: {}", rows.join(", "));
                    let tips: Vec<(usize, u64)> =
                        ok.iter().map(|(i, info)| (*i, info.height)).collect();
                    if let Some(fork) = fork_point(ctx, &tips) {
                        msg.push_str(&format!("; {}", fork.explain(k)));
                        evidence["fork_height"] = fork.height.into();
                        evidence["fork_depths"] = serde_json::json!(fork.depths);
                        evidence["k"] = k.into();
                        if let Some(risk) = longest_partition_risk(ctx) {
                            msg.push_str(&format!("; {}", risk.explain()));
                        }
                    }
                    return Ok(Verdict::fail(msg, evidence));
                }
                tokio::time::sleep(poll).await;
            }
        })
    }
}

use crate::forkrisk::ForkPoint;

/// Where the nodes' canonical chains (as the block feed saw them) last agree.
fn fork_point(ctx: &RunContext, tips: &[(usize, u64)]) -> Option<ForkPoint> {
    let feed = ctx.block_feed();
    crate::forkrisk::fork_point(tips, |i, h| feed.canonical_at(i, h))
}

/// The riskiest partition of the run's fault log, by its actual length.
fn longest_partition_risk(ctx: &RunContext) -> Option<crate::forkrisk::PartitionRisk> {
    let testnet = ctx.testnet();
    crate::forkrisk::riskiest_partition(testnet.topology(), &testnet.fault_log())
}

#[cfg(test)]
mod inclusion_tests {
    use super::*;
    use crate::context::TxRecord;

    fn rec(id: usize, node: usize, at_ms: u64) -> TxRecord {
        TxRecord {
            id: format!("t{id}"),
            submitted_at: Duration::from_millis(at_ms),
            submitted_unix_ms: 0,
            node,
            sender: None,
            source: crate::context::TxSource::Workload,
        }
    }

    /// 5 nodes, 37 transactions each; node 2's are never included.
    fn one_dropping() -> Vec<NodeInclusion> {
        let recs: Vec<TxRecord> = (0..185).map(|i| rec(i, i % 5, 100)).collect();
        per_node_counts(
            &recs,
            |id| id[1..].parse::<usize>().unwrap() % 5 != 2,
            Duration::from_secs(10),
        )
    }

    #[test]
    fn a_node_whose_transactions_are_lost_fails_and_is_named() {
        let rows = one_dropping();
        let v = judge_inclusion(&rows, 0.5, Some(0.5), 0, Duration::from_secs(1));
        assert!(!v.passed);
        assert!(
            v.message
                .starts_with("node-2: 0/37 included (0%); aggregate 148/185 (80%)"),
            "{}",
            v.message
        );
        assert!(!v.message.contains("node-0"), "{}", v.message);
        assert_eq!(v.evidence["nodes"][2]["submitted"], 37);
        assert_eq!(v.evidence["nodes"][2]["included"], 0);
        assert_eq!(v.evidence["nodes"][0]["included"], 37);
    }

    #[test]
    fn the_aggregate_mode_still_passes_it() {
        let v = judge_inclusion(&one_dropping(), 0.5, None, 0, Duration::from_secs(1));
        assert!(v.passed, "{}", v.message);
        assert!(v.message.starts_with("148 of 185"), "{}", v.message);
    }

    #[test]
    fn late_transactions_and_idle_nodes_are_not_judged() {
        // node 0: one early included, two late lost; node 1 absent; node 2 all included.
        let recs = vec![
            rec(0, 0, 100),
            rec(1, 0, 950),
            rec(2, 0, 990),
            rec(3, 2, 100),
        ];
        let rows = per_node_counts(
            &recs,
            |id| id == "t0" || id == "t3",
            Duration::from_millis(900),
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            NodeInclusion {
                node: 0,
                submitted: 3,
                included: 1,
                judged: 1,
                judged_included: 1
            }
        );
        let v = judge_inclusion(&rows, 0.5, Some(0.5), 0, Duration::from_millis(100));
        assert!(v.passed, "{}", v.message);
        assert!(v.message.contains("each of 2 nodes"), "{}", v.message);
    }

    #[test]
    fn a_failing_aggregate_keeps_its_message_first() {
        let recs: Vec<TxRecord> = (0..6).map(|i| rec(i, i % 3, 100)).collect();
        let rows = per_node_counts(&recs, |_| false, Duration::from_secs(1));
        let v = judge_inclusion(&rows, 0.5, Some(0.5), 0, Duration::from_secs(1));
        assert!(!v.passed);
        assert!(v.message.starts_with("0 of 6 submitted"), "{}", v.message);
        assert!(
            v.message.contains("node-1: 0/2 included (0%)"),
            "{}",
            v.message
        );
    }
}

#[cfg(test)]
mod lag_rule_tests {
    use super::{SEED_LAG_ALLOWANCE, lag_rule};

    #[test]
    fn the_seeds_rule_clamps_a_tenth_of_the_target_between_the_floor_and_five() {
        // target = min(expected, max height); allowance = clamp(target / 10, 2, 5)
        assert_eq!(lag_rule(None, SEED_LAG_ALLOWANCE, 60.7, 70), (55, 15));
        assert_eq!(lag_rule(None, SEED_LAG_ALLOWANCE, 16.0, 30), (14, 16));
        assert_eq!(lag_rule(None, SEED_LAG_ALLOWANCE, 30.0, 33), (27, 6));
        // a slower chain than expected: the target is the highest node
        assert_eq!(lag_rule(None, SEED_LAG_ALLOWANCE, 200.0, 100), (95, 5));
        // a floor above 5 wins; a larger floor allows more
        assert_eq!(lag_rule(None, 8, 200.0, 100), (92, 8));
        assert_eq!(lag_rule(None, SEED_LAG_ALLOWANCE, 0.0, 0), (0, 0));
        // an explicit max_lag is relative to the highest node
        assert_eq!(lag_rule(Some(10), SEED_LAG_ALLOWANCE, 60.0, 70), (60, 10));
        assert_eq!(lag_rule(Some(10), SEED_LAG_ALLOWANCE, 60.0, 4), (0, 10));
    }
}
