//! Recovery as a measured outcome: for every fault reverted during a run, the time from the
//! revert to convergence (every node answers, shares the LIB, and is on one chain with tips
//! within one block) and
//! the fork depth at the revert; for every node started again (restart, start, resume), the time
//! until it is within one block of the highest node. A monitor the runner starts with the block
//! feed polls the testnet's fault and control logs and the nodes; [`RecoveryWithin`] bounds the
//! figures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::blockfeed::BlockFeed;
use crate::context::RunContext;
use crate::deadline::Deadline;
use crate::deploy::Testnet;
use crate::deploy::control_log::NodeAction;
use crate::expectation::{Expectation, ExpectationError, Verdict};

/// Tips of converged nodes may differ by this many blocks (a block in flight).
pub const TIP_SLACK: u64 = 1;

/// One reverted fault and how the network recovered from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealRecovery {
    /// The fault reverted (`partition [[0, 1], [2, 3]]`).
    pub fault: String,
    /// When it was reverted, ms since the testnet was created (the fault log's clock).
    pub reverted_at_ms: u64,
    /// Blocks past the last block all nodes share, on the deepest node, at the last poll before
    /// the revert (0: every node on one chain); None when not measured (a node did not answer,
    /// or the fault lasted less than one poll).
    pub fork_depth: Option<u64>,
    /// From the revert to convergence, ms; None when the run ended first.
    pub converged_after_ms: Option<u64>,
    #[serde(skip)]
    at: Option<SystemTime>,
}

/// One node started again and how long it took to catch up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatchUp {
    /// The node.
    pub node: usize,
    /// `restart`, `start` or `resume`.
    pub action: String,
    /// When, ms since the testnet was created.
    pub at_ms: u64,
    /// From the action to being within one block of the highest node, ms; None when the run
    /// ended first.
    pub caught_up_after_ms: Option<u64>,
    #[serde(skip)]
    at: Option<SystemTime>,
}

/// min / median / p90 / max of some samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub count: usize,
    pub min: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Quantiles {
    /// The quantiles of `values` (nearest rank; the median of an even count is the mean of the
    /// middle two); None when empty.
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let rank = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Self {
            count: n,
            min: values[0],
            median: f64::midpoint(values[(n - 1) / 2], values[n / 2]),
            p90: rank(0.9),
            max: values[n - 1],
        })
    }

    /// `min 120  median 300  p90 900  max 1200 (7)` with a unit.
    pub fn render(&self, unit: &str) -> String {
        format!(
            "min {:.0}{unit}  median {:.0}{unit}  p90 {:.0}{unit}  max {:.0}{unit}  ({} samples)",
            self.min, self.median, self.p90, self.max, self.count
        )
    }
}

/// The recovery figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Every reverted fault, in order.
    pub heals: Vec<HealRecovery>,
    /// Every node started again, in order.
    pub catch_ups: Vec<CatchUp>,
    /// Revert to convergence, ms, over the heals that converged.
    pub heal_to_convergence_ms: Option<Quantiles>,
    /// Fork depth at the revert, blocks.
    pub fork_depth: Option<Quantiles>,
    /// Start to caught up, ms, over the nodes that caught up.
    pub catch_up_ms: Option<Quantiles>,
    /// Submission to inclusion, ms, over the included transactions.
    pub inclusion_latency_ms: Option<Quantiles>,
}

impl RecoveryReport {
    /// With the summaries computed from the records (and these inclusion latencies).
    #[expect(
        clippy::cast_precision_loss,
        reason = "ms and blocks are far below 2^52"
    )]
    pub fn summarised(mut self, inclusion_latencies_ms: &[u64]) -> Self {
        self.heal_to_convergence_ms = Quantiles::of(
            self.heals
                .iter()
                .filter_map(|h| h.converged_after_ms)
                .map(|v| v as f64)
                .collect(),
        );
        self.fork_depth = Quantiles::of(
            self.heals
                .iter()
                .filter_map(|h| h.fork_depth)
                .map(|v| v as f64)
                .collect(),
        );
        self.catch_up_ms = Quantiles::of(
            self.catch_ups
                .iter()
                .filter_map(|c| c.caught_up_after_ms)
                .map(|v| v as f64)
                .collect(),
        );
        self.inclusion_latency_ms =
            Quantiles::of(inclusion_latencies_ms.iter().map(|&v| v as f64).collect());
        self
    }
}

/// What the monitor has measured so far; shared with the run's expectations.
#[derive(Debug, Default)]
pub struct RecoveryLog {
    state: Mutex<RecoveryReport>,
}

impl RecoveryLog {
    /// A copy of the records so far (summaries not computed).
    pub fn snapshot(&self) -> RecoveryReport {
        self.state.lock().expect("recovery lock").clone()
    }
}

/// A node's clock put back on wall time or its disk given room again: like a restart, the node
/// then has to catch up, and that is measured.
fn is_node_fault_revert(c: &crate::deploy::control_log::ControlRecord) -> bool {
    matches!(
        (c.action, c.detail.as_deref()),
        (NodeAction::Clock, Some("reset")) | (NodeAction::Disk, Some("ok"))
    )
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn since(at: Option<SystemTime>, now: SystemTime) -> Duration {
    at.and_then(|a| now.duration_since(a).ok())
        .unwrap_or_default()
}

/// Polls `testnet` until `stop`: new reverts and restarts in its logs open a measurement, which
/// closes when the nodes have recovered. Polls every half slot (100 ms at least), so a figure is
/// late by at most that plus one API round trip; the nodes are asked only while a fault is in
/// force or a measurement is open.
pub async fn monitor(
    testnet: Arc<dyn Testnet>,
    feed: BlockFeed,
    log: Arc<RecoveryLog>,
    stop: CancellationToken,
) {
    let poll = (testnet.topology().params.slot_duration / 2).max(Duration::from_millis(100));
    let (mut faults_seen, mut controls_seen) = (0, 0);
    // the fork depth of the previous poll: a revert found now happened after it, and the nodes
    // may have reorganised within one poll of the heal, so this is the depth at the heal
    let mut depth_before: Option<u64> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        let faults = testnet.fault_log();
        let controls = testnet.control_log();
        let new_heals: Vec<HealRecovery> = faults
            .iter()
            .skip(faults_seen)
            .filter(|r| r.reverted)
            .map(|r| HealRecovery {
                fault: r.fault.to_string(),
                reverted_at_ms: ms(r.elapsed),
                fork_depth: None,
                converged_after_ms: None,
                at: Some(r.at),
            })
            .collect();
        faults_seen = faults.len();
        let new_catch_ups: Vec<CatchUp> = controls
            .iter()
            .skip(controls_seen)
            .filter(|c| {
                matches!(
                    c.action,
                    NodeAction::Restart | NodeAction::Start | NodeAction::Resume
                ) || is_node_fault_revert(c)
            })
            .map(|c| CatchUp {
                node: c.node,
                action: if is_node_fault_revert(c) {
                    c.to_string().replacen(&format!(" node-{}", c.node), "", 1)
                } else {
                    c.action.to_string()
                },
                at_ms: ms(c.elapsed),
                caught_up_after_ms: None,
                at: Some(c.at),
            })
            .collect();
        controls_seen = controls.len();
        // the nodes are only asked while there is something to measure: a fault in force (its
        // fork depth at the revert), a new record, or a measurement still open; a run without
        // faults or restarts costs no request
        let open = {
            let st = log.state.lock().expect("recovery lock");
            st.heals.iter().any(|h| h.converged_after_ms.is_none())
                || st.catch_ups.iter().any(|c| c.caught_up_after_ms.is_none())
        };
        if testnet.active_faults().is_empty()
            && new_heals.is_empty()
            && new_catch_ups.is_empty()
            && !open
        {
            depth_before = None;
            continue;
        }
        let clients = testnet.clients();
        let infos = futures::future::join_all(clients.iter().map(|c| {
            let c = c.clone().with_timeout(Duration::from_secs(1));
            async move { c.consensus_info().await.ok() }
        }))
        .await;
        let now = SystemTime::now();
        let answered: Vec<(usize, crate::client::ConsensusInfo)> = infos
            .iter()
            .enumerate()
            .filter_map(|(i, x)| x.clone().map(|x| (i, x)))
            .collect();
        let all_answer = answered.len() == infos.len() && !answered.is_empty();
        let max_tip = answered.iter().map(|(_, x)| x.height).max().unwrap_or(0);
        let min_tip = answered.iter().map(|(_, x)| x.height).min().unwrap_or(0);
        // one chain: the same LIB, and every tip is the highest tip or, at most a block
        // lower, the block the highest node has at that height (tips within a block but on
        // two forks are not converged)
        let highest = answered.iter().max_by_key(|(_, x)| x.height);
        let converged = all_answer
            && max_tip - min_tip <= TIP_SLACK
            && answered.iter().all(|(_, x)| x.lib == answered[0].1.lib)
            && highest.is_some_and(|(top, top_info)| {
                answered.iter().all(|(_, x)| {
                    x.tip == top_info.tip
                        || feed.canonical_at(*top, x.height).as_deref() == Some(x.tip.as_str())
                })
            });
        let fork_depth = if !all_answer {
            None
        } else if answered.iter().all(|(_, x)| x.tip == answered[0].1.tip) {
            Some(0)
        } else {
            let tips: Vec<(usize, u64)> = answered.iter().map(|(i, x)| (*i, x.height)).collect();
            crate::forkrisk::fork_point(&tips, |i, h| feed.canonical_at(i, h))
                .and_then(|f| f.depths.iter().map(|(_, d)| *d).max())
        };
        let mut st = log.state.lock().expect("recovery lock");
        for mut h in new_heals {
            h.fork_depth = depth_before;
            st.heals.push(h);
        }
        depth_before = fork_depth;
        st.catch_ups.extend(new_catch_ups);
        if converged {
            for h in st
                .heals
                .iter_mut()
                .filter(|h| h.converged_after_ms.is_none())
            {
                h.converged_after_ms = Some(ms(since(h.at, now)));
            }
        }
        for c in st
            .catch_ups
            .iter_mut()
            .filter(|c| c.caught_up_after_ms.is_none())
        {
            if let Some(Some(info)) = infos.get(c.node)
                && info.height + TIP_SLACK >= max_tip
            {
                c.caught_up_after_ms = Some(ms(since(c.at, now)));
            }
        }
    }
}

/// Every reverted fault is followed by convergence, and every node started again catches up,
/// within a bound (`expect_recovery_within("10s")`). A run in which nothing was reverted or
/// started again fails: the bound then checked nothing.
#[derive(Debug, Clone)]
pub struct RecoveryWithin {
    bound: Deadline,
}

impl RecoveryWithin {
    /// The expectation with this bound (a duration, slots or blocks).
    pub fn new(bound: impl Into<Deadline>) -> Self {
        Self {
            bound: bound.into(),
        }
    }
}

impl Expectation for RecoveryWithin {
    fn name(&self) -> String {
        "recovery_within".to_owned()
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let params = ctx.testnet().topology().params.clone();
            let bound = self.bound.resolve(&params);
            let written = self.bound.describe(&params);
            let poll = (params.slot_duration / 2).max(Duration::from_millis(100));
            // a measurement still open may yet close within its bound: wait for it
            let report = loop {
                let r = ctx.recovery().snapshot();
                let now = SystemTime::now();
                let open = r
                    .heals
                    .iter()
                    .filter(|h| h.converged_after_ms.is_none())
                    .map(|h| since(h.at, now))
                    .chain(
                        r.catch_ups
                            .iter()
                            .filter(|c| c.caught_up_after_ms.is_none())
                            .map(|c| since(c.at, now)),
                    )
                    .any(|waited| waited < bound);
                if !open {
                    break r;
                }
                tokio::time::sleep(poll).await;
            };
            Ok(judge_recovery(&report, bound, &written))
        })
    }
}

/// The verdict of [`RecoveryWithin`] over these records.
#[expect(clippy::cast_precision_loss, reason = "ms are far below 2^52")]
pub fn judge_recovery(report: &RecoveryReport, bound: Duration, written: &str) -> Verdict {
    let evidence = serde_json::json!({
        "bound_ms": ms(bound), "heals": report.heals, "catch_ups": report.catch_ups,
    });
    if report.heals.is_empty() && report.catch_ups.is_empty() {
        return Verdict::fail(
            format!(
                "no fault was reverted and no node started again during the run: recovery within {written} checked nothing"
            ),
            evidence,
        );
    }
    let limit = ms(bound);
    let secs = |v: u64| format!("{:.1}s", v as f64 / 1000.0);
    let mut bad = Vec::new();
    for h in &report.heals {
        match h.converged_after_ms {
            Some(v) if v <= limit => {}
            Some(v) => bad.push(format!(
                "revert of {} at {}: converged after {} > {written}",
                h.fault,
                secs(h.reverted_at_ms),
                secs(v)
            )),
            None => bad.push(format!(
                "revert of {} at {}: not converged within {written}",
                h.fault,
                secs(h.reverted_at_ms)
            )),
        }
    }
    for c in &report.catch_ups {
        match c.caught_up_after_ms {
            Some(v) if v <= limit => {}
            Some(v) => bad.push(format!(
                "{} of node-{} at {}: caught up after {} > {written}",
                c.action,
                c.node,
                secs(c.at_ms),
                secs(v)
            )),
            None => bad.push(format!(
                "{} of node-{} at {}: not caught up within {written}",
                c.action,
                c.node,
                secs(c.at_ms)
            )),
        }
    }
    if !bad.is_empty() {
        return Verdict::fail(bad.join("; "), evidence);
    }
    let slowest = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), secs);
    Verdict::pass(
        format!(
            "{} reverts converged (slowest {}) and {} nodes started again caught up (slowest {}), within {written}",
            report.heals.len(),
            slowest(
                report
                    .heals
                    .iter()
                    .filter_map(|h| h.converged_after_ms)
                    .max()
            ),
            report.catch_ups.len(),
            slowest(
                report
                    .catch_ups
                    .iter()
                    .filter_map(|c| c.caught_up_after_ms)
                    .max()
            ),
        ),
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heal(after: Option<u64>) -> HealRecovery {
        HealRecovery {
            fault: "partition [[0, 1], [2, 3]]".into(),
            reverted_at_ms: 3_000,
            fork_depth: Some(4),
            converged_after_ms: after,
            at: None,
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        assert_eq!(Quantiles::of(vec![]), None);
        let q = Quantiles::of((1..=10).map(f64::from).collect()).unwrap();
        assert_eq!(
            (q.min, q.median, q.p90, q.max, q.count),
            (1.0, 5.5, 9.0, 10.0, 10)
        );
        let one = Quantiles::of(vec![7.0]).unwrap();
        assert_eq!(
            (one.min, one.median, one.p90, one.max),
            (7.0, 7.0, 7.0, 7.0)
        );
        let q = Quantiles::of(vec![100.0, 300.0, f64::NAN, 200.0]).unwrap();
        assert_eq!((q.median, q.p90, q.count), (200.0, 300.0, 3));
    }

    #[test]
    fn recovery_is_judged_against_the_bound() {
        let bound = Duration::from_secs(2);
        let report = RecoveryReport {
            heals: vec![heal(Some(1_500))],
            catch_ups: vec![CatchUp {
                node: 2,
                action: "restart".into(),
                at_ms: 5_000,
                caught_up_after_ms: Some(800),
                at: None,
            }],
            ..Default::default()
        };
        let v = judge_recovery(&report, bound, "2s");
        assert!(v.passed, "{v:?}");
        assert!(
            v.message
                .contains("1 reverts converged (slowest 1.5s) and 1 nodes started again caught up (slowest 0.8s), within 2s"),
            "{}",
            v.message
        );
        let slow = RecoveryReport {
            heals: vec![heal(Some(2_500)), heal(None)],
            ..Default::default()
        };
        let v = judge_recovery(&slow, bound, "10 slots (2s at 200ms slots)");
        assert!(!v.passed);
        assert_eq!(
            v.message,
            "revert of partition [[0, 1], [2, 3]] at 3.0s: converged after 2.5s > 10 slots (2s at 200ms slots); \
             revert of partition [[0, 1], [2, 3]] at 3.0s: not converged within 10 slots (2s at 200ms slots)"
        );
        let v = judge_recovery(&RecoveryReport::default(), bound, "2s");
        assert!(!v.passed && v.message.contains("checked nothing"), "{v:?}");
    }

    #[test]
    fn summaries_come_from_the_records() {
        let r = RecoveryReport {
            heals: vec![heal(Some(100)), heal(None), heal(Some(300))],
            ..Default::default()
        }
        .summarised(&[10, 20, 30]);
        let h = r.heal_to_convergence_ms.unwrap();
        assert_eq!((h.count, h.min, h.max), (2, 100.0, 300.0));
        assert_eq!(r.fork_depth.unwrap().count, 3);
        assert_eq!(r.catch_up_ms, None);
        assert_eq!(r.inclusion_latency_ms.unwrap().median, 20.0);
    }
}
