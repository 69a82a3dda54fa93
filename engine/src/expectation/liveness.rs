//! [`ConsensusLiveness`]: every node's height advances and no node lags far behind.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Expectation, ExpectationError, Verdict, default_settle, heights, wait_settled};
use crate::context::RunContext;
use crate::deadline::Deadline;

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
            if let Err(verdict) = wait_settled(ctx, settle, catch_up).await {
                return Ok(verdict);
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
