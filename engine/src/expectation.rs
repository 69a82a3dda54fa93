//! Expectations judge the run: capture a baseline when the run starts,
//! evaluate at the end. Built-ins: [`ConsensusLiveness`], [`TxInclusion`],
//! [`Convergence`].

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::context::RunContext;

/// The judgement of one expectation.
#[derive(Debug, Clone, Serialize, PartialEq)]
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

async fn heights(ctx: &RunContext) -> Vec<Result<devnode::api_types::ConsensusInfo, String>> {
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
    /// Largest allowed `max height - node height` (default: the security parameter k).
    pub max_lag: Option<u64>,
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
    /// The expectation.
    pub fn build(&self) -> ConsensusLiveness {
        ConsensusLiveness {
            config: self.clone(),
            start: Mutex::new(None),
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
            let expected = topo.params.expected_blocks(started.elapsed());
            let min_progress = self
                .config
                .min_progress
                .unwrap_or_else(|| ((expected * 0.25).floor() as u64).max(1));
            let max_lag = self.config.max_lag.unwrap_or(topo.params.security_param);
            let now = heights(ctx).await;
            let max_height = now
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|i| i.height))
                .max()
                .unwrap_or(0);
            let mut failures = Vec::new();
            let mut per_node = Vec::new();
            for (i, r) in now.iter().enumerate() {
                let name = format!("node-{i}");
                match r {
                    Err(e) => {
                        failures.push(format!("{name} unreachable: {e}"));
                        per_node.push(serde_json::json!({"node": i, "error": e}));
                    }
                    Ok(info) => {
                        let h = info.height;
                        let base = start.get(i).copied().flatten();
                        let mut target = max_height.saturating_sub(max_lag);
                        if let Some(b) = base {
                            target = target.max(b + min_progress);
                        }
                        if let Some(m) = self.config.min_height {
                            target = target.max(m);
                        }
                        per_node.push(serde_json::json!({
                            "node": i, "start": base, "height": h, "target": target
                        }));
                        if h < target {
                            failures.push(format!(
                                "{name} height {h} < target {target} (max height {max_height})"
                            ));
                        }
                    }
                }
            }
            let evidence = serde_json::json!({
                "nodes": per_node, "max_height": max_height, "min_progress": min_progress,
                "max_lag": max_lag, "min_height": self.config.min_height, "expected_blocks": expected,
            });
            if failures.is_empty() {
                let hs: Vec<String> = now
                    .iter()
                    .map(|r| r.as_ref().map(|i| i.height.to_string()).unwrap_or_default())
                    .collect();
                Ok(Verdict::pass(
                    format!(
                        "all {} nodes advanced: heights [{}] (min progress {min_progress}, max lag {max_lag})",
                        now.len(),
                        hs.join(" ")
                    ),
                    evidence,
                ))
            } else {
                Ok(Verdict::fail(failures.join("; "), evidence))
            }
        })
    }
}

/// Settings of [`TxInclusion`].
#[derive(Debug, Clone, PartialEq)]
pub struct TxInclusionBuilder {
    /// Least share of submitted transactions found in canonical blocks.
    pub threshold: f64,
}

impl Default for TxInclusionBuilder {
    fn default() -> Self {
        Self { threshold: 0.5 }
    }
}

impl TxInclusionBuilder {
    /// Threshold 0.5 (as the seed).
    pub fn new() -> Self {
        Self::default()
    }
    /// Least share included, in (0, 1].
    pub fn threshold(mut self, t: f64) -> Self {
        self.threshold = t;
        self
    }
    /// The expectation.
    pub fn build(&self) -> TxInclusion {
        TxInclusion {
            threshold: self.threshold,
        }
    }
}

/// The share of submitted transactions found in canonical blocks (seen on
/// the block feed) reaches a threshold.
#[derive(Debug, Clone)]
pub struct TxInclusion {
    pub threshold: f64,
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
            let submitted = records.len();
            let feed = ctx.block_feed();
            let included = records
                .iter()
                .filter(|r| feed.tx_included(&r.id).is_some())
                .count();
            let evidence = serde_json::json!({
                "submitted": submitted, "included": included, "threshold": self.threshold,
                "rejected": ctx.tx_log().rejected(),
            });
            if submitted == 0 {
                return Ok(Verdict::fail(
                    format!(
                        "no transactions were submitted ({} submissions rejected by every node)",
                        ctx.tx_log().rejected()
                    ),
                    evidence,
                ));
            }
            let share = included as f64 / submitted as f64;
            let msg = format!(
                "{included} of {submitted} submitted transactions included ({:.1}%, threshold {:.1}%)",
                share * 100.0,
                self.threshold * 100.0
            );
            Ok(if share + 1e-9 >= self.threshold {
                Verdict::pass(msg, evidence)
            } else {
                Verdict::fail(msg, evidence)
            })
        })
    }
}

/// Settings of [`Convergence`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvergenceBuilder {
    /// How long to wait for agreement (default: max(10 s, 20 slots)).
    pub deadline: Option<Duration>,
    /// Largest allowed tip height spread (default: k).
    pub max_tip_spread: Option<u64>,
}

impl ConvergenceBuilder {
    /// Defaults as documented on the fields.
    pub fn new() -> Self {
        Self::default()
    }
    /// How long to wait for agreement.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
    /// Largest allowed tip height spread.
    pub fn max_tip_spread(mut self, s: u64) -> Self {
        self.max_tip_spread = Some(s);
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
            let deadline = self
                .config
                .deadline
                .unwrap_or_else(|| (params.slot_duration * 20).max(Duration::from_secs(10)));
            let spread_bound = self.config.max_tip_spread.unwrap_or(params.security_param);
            let k = params.security_param;
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
                    let (p, rows, evidence) = last_problem;
                    return Ok(Verdict::fail(
                        format!(
                            "{p} after {}: {}",
                            humantime::format_duration(deadline),
                            rows.join(", ")
                        ),
                        evidence,
                    ));
                }
                tokio::time::sleep(poll).await;
            }
        })
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}
