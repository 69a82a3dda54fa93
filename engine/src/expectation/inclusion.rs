//! [`TxInclusion`]: the share of submitted transactions found in canonical blocks, in
//! aggregate and per node.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use super::{Expectation, ExpectationError, Verdict};
use crate::context::RunContext;

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
