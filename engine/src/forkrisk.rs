//! Partitions and k: when a partition can fork the testnet for good.
//!
//! The rule (the reference node's, and Cryptarchia's once a node is online): a node never
//! reorganises more than k blocks deep. While a partition lasts, each side extends its own chain
//! from their last common block. At the heal the shorter side must drop its blocks past that
//! point; when two sides have both grown more than k blocks past it, neither may, and the fork
//! is final. So a partition is risky when two of its sides can each produce more than k blocks
//! during it.
//!
//! A side holding a share `s` of the stake fills a slot with probability `1 - (1 - f)^s` (some
//! node of the side wins it); its chain grows by at most one block per slot, so the number of
//! blocks it adds in `m` slots is at most Binomial(m, p). `m` counts the partition itself plus
//! one slot for the tips that were not yet shared when it began and half a slot for the heal
//! to be used (the reference node redials within half a slot). A plan is flagged when the chance
//! that two sides both exceed k is at least [`RISK_THRESHOLD`].

use std::time::Duration;

use crate::client::NodeClient;
use crate::links::{Fault, FaultRecord};
use crate::topology::Topology;

/// Chance of a final fork from which a plan is flagged (one run in a thousand).
pub const RISK_THRESHOLD: f64 = 1e-3;

/// The risk of one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionRisk {
    /// The sides (nodes named in no group form one more side).
    pub sides: Vec<Vec<usize>>,
    /// How long the partition lasts (its longest, for a random one).
    pub duration: Duration,
    /// Slots counted (partition, unshared tips, heal).
    pub slots: u64,
    /// Expected blocks each side adds during it.
    pub expected_blocks: Vec<f64>,
    /// Chance that two sides both add more than k blocks.
    pub final_fork: f64,
    pub k: u64,
    pub slot_duration: Duration,
}

impl PartitionRisk {
    /// At or above the threshold.
    pub fn is_risky(&self) -> bool {
        self.final_fork >= RISK_THRESHOLD
    }

    /// One sentence naming the rule, the figures and what to change.
    pub fn explain(&self) -> String {
        let blocks: Vec<String> = self
            .expected_blocks
            .iter()
            .map(|b| format!("{b:.1}"))
            .collect();
        format!(
            "a partition {sides:?} lasting {d} ({slots} slots of {slot} with the heal) can fork \
             the testnet for good: its sides are expected to add {blocks} blocks, k = {k}, and \
             the chance that two sides both pass k is {p}; no node reorganises more than k \
             blocks deep, so such a fork never heals (shorten the partition, lengthen \
             slot_duration or raise security_param)",
            sides = self.sides,
            d = humantime::format_duration(Duration::from_millis(self.duration.as_millis() as u64)),
            slots = self.slots,
            slot = humantime::format_duration(self.slot_duration),
            blocks = blocks.join(" and "),
            k = self.k,
            p = percent(self.final_fork),
        )
    }
}

fn percent(p: f64) -> String {
    if p >= 0.01 {
        format!("{:.0}%", p * 100.0)
    } else {
        format!("{:.2}%", p * 100.0)
    }
}

/// The sides of `groups` over `n` nodes: the named groups (empty ones dropped) and, when some
/// node is named in none, one more side of those nodes.
pub fn sides(n: usize, groups: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = groups.iter().filter(|g| !g.is_empty()).cloned().collect();
    let rest: Vec<usize> = (0..n)
        .filter(|i| !groups.iter().any(|g| g.contains(i)))
        .collect();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The split into two sides that maximises the risk for equal durations: the most even split
/// of the stake (greedy, heaviest node first), used for partitions with random groups.
pub fn most_even_split(t: &Topology) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..t.node_count()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(t.nodes[i].stake));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut sa, mut sb) = (0u64, 0u64);
    for i in order {
        if sa <= sb {
            sa += t.nodes[i].stake;
            a.push(i);
        } else {
            sb += t.nodes[i].stake;
            b.push(i);
        }
    }
    a.sort_unstable();
    b.sort_unstable();
    vec![a, b]
}

/// The risk of partitioning `t` into `groups` for `duration`.
pub fn partition_risk(t: &Topology, groups: &[Vec<usize>], duration: Duration) -> PartitionRisk {
    let p = &t.params;
    let sides = sides(t.node_count(), groups);
    let total: u64 =
        t.nodes.iter().map(|n| n.stake).sum::<u64>() + t.reserved_joiners.iter().sum::<u64>();
    let slot_s = p.slot_duration.as_secs_f64().max(1e-9);
    let slots = ((duration.as_secs_f64() / slot_s) + 1.5).ceil() as u64;
    let k = p.security_param;
    let mut expected = Vec::new();
    let mut exceed = Vec::new();
    for side in &sides {
        let stake: u64 = side
            .iter()
            .filter_map(|&i| t.nodes.get(i))
            .map(|n| n.stake)
            .sum();
        let share = if total == 0 {
            0.0
        } else {
            stake as f64 / total as f64
        };
        let per_slot = 1.0 - (1.0 - p.active_slot_coeff).powf(share);
        expected.push(per_slot * slots as f64);
        exceed.push(binomial_tail_above(slots, per_slot, k));
    }
    PartitionRisk {
        sides,
        duration,
        slots,
        expected_blocks: expected,
        final_fork: at_least_two(&exceed),
        k,
        slot_duration: p.slot_duration,
    }
}

/// P(X > k) for X ~ Binomial(n, p).
pub fn binomial_tail_above(n: u64, p: f64, k: u64) -> f64 {
    if k >= n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // Sum of the pmf for j in k+1..=n, in log space to stay finite for large n.
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut sum = 0.0;
    for j in (k + 1)..=n {
        let log_c = ln_choose(n, j);
        sum += (log_c + j as f64 * lp + (n - j) as f64 * lq).exp();
    }
    sum.min(1.0)
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

fn ln_factorial(n: u64) -> f64 {
    (1..=n).map(|i| (i as f64).ln()).sum()
}

/// Chance that at least two of independent events with these probabilities happen.
fn at_least_two(ps: &[f64]) -> f64 {
    let none: f64 = ps.iter().map(|p| 1.0 - p).product();
    let exactly_one: f64 = (0..ps.len())
        .map(|i| {
            ps[i]
                * ps.iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| 1.0 - p)
                    .product::<f64>()
        })
        .sum();
    (1.0 - none - exactly_one).max(0.0)
}

/// Where the nodes' canonical chains last agree, and how far each node's tip is past it.
#[derive(Debug, Clone, PartialEq)]
pub struct ForkPoint {
    pub height: u64,
    /// (node, blocks past the fork point)
    pub depths: Vec<(usize, u64)>,
}

impl ForkPoint {
    /// The fork, and the rule it breaks when it is deeper than k on two nodes.
    pub fn explain(&self, k: u64) -> String {
        let depths: Vec<String> = self
            .depths
            .iter()
            .map(|(i, d)| format!("node-{i} {d}"))
            .collect();
        let deep = self.depths.iter().filter(|(_, d)| *d > k).count();
        let rule = if deep >= 2 {
            format!(
                "more than k = {k} on two sides, so the fork is final: no node reorganises more \
                 than k blocks deep"
            )
        } else {
            format!("k = {k}")
        };
        format!(
            "the chains fork at height {}, blocks past it: {} ({rule})",
            self.height,
            depths.join(", ")
        )
    }
}

/// The highest height at or below the lowest tip where every node of `tips` (node, tip height)
/// has the same canonical block, by `canonical_at(node, height)`; None when that is unknown.
pub fn fork_point(
    tips: &[(usize, u64)],
    canonical_at: impl Fn(usize, u64) -> Option<String>,
) -> Option<ForkPoint> {
    let low = tips.iter().map(|(_, h)| *h).min()?;
    let mut h = low;
    loop {
        let ids: Vec<Option<String>> = tips.iter().map(|(i, _)| canonical_at(*i, h)).collect();
        if ids.iter().all(|x| x.is_some() && *x == ids[0]) {
            return Some(ForkPoint {
                height: h,
                depths: tips.iter().map(|(i, t)| (*i, t - h)).collect(),
            });
        }
        if h == 0 {
            return None;
        }
        h -= 1;
    }
}

/// [`fork_point`] read from the nodes themselves: each node's chain walked back from its tip by
/// parent, at most `max_walk` blocks.
pub async fn walk_fork_point(clients: &[NodeClient], max_walk: u64) -> Option<ForkPoint> {
    let mut chains = Vec::new();
    let mut tips = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let info = c.consensus_info().await.ok()?;
        let mut by_height = std::collections::BTreeMap::new();
        let (mut id, mut h) = (info.tip.clone(), info.height);
        for _ in 0..max_walk {
            by_height.insert(h, id.clone());
            if h == 0 {
                break;
            }
            let Ok(Some(block)) = c.block(&id).await else {
                break;
            };
            id = block.parent;
            h -= 1;
        }
        chains.push(by_height);
        tips.push((i, info.height));
    }
    fork_point(&tips, |i, h| chains[i].get(&h).cloned())
}

/// The riskiest partition of a fault log (applied, then reverted or still in force), by its
/// actual length.
pub fn riskiest_partition(t: &Topology, log: &[FaultRecord]) -> Option<PartitionRisk> {
    let now = std::time::SystemTime::now();
    let mut worst: Option<PartitionRisk> = None;
    for r in log.iter().filter(|r| !r.reverted) {
        let groups = match &r.fault {
            Fault::Partition(g) => g.clone(),
            Fault::Isolate(i) => vec![vec![*i]],
            _ => continue,
        };
        let until = log
            .iter()
            .find(|x| x.reverted && x.id == r.id)
            .map_or(now, |x| x.at);
        let lasted = until.duration_since(r.at).unwrap_or_default();
        let risk = partition_risk(t, &groups, lasted);
        if worst
            .as_ref()
            .is_none_or(|w| risk.final_fork > w.final_fork)
        {
            worst = Some(risk);
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::TopologyBuilder;

    fn topo(slot_ms: u64) -> Topology {
        TopologyBuilder::new()
            .nodes(4)
            .slot_duration(Duration::from_millis(slot_ms))
            .build()
            .unwrap()
    }

    #[test]
    fn binomial_tail_known_values() {
        // P(X > 1) for Binomial(2, 0.5) = 0.25; P(X > 0) = 0.75
        assert!((binomial_tail_above(2, 0.5, 1) - 0.25).abs() < 1e-12);
        assert!((binomial_tail_above(2, 0.5, 0) - 0.75).abs() < 1e-12);
        assert_eq!(binomial_tail_above(5, 0.9, 5), 0.0);
        // P(X > 10) for Binomial(11, p) = p^11
        let p: f64 = 0.553;
        assert!((binomial_tail_above(11, p, 10) - p.powi(11)).abs() < 1e-12);
    }

    #[test]
    fn at_least_two_of_independent_events() {
        assert!((at_least_two(&[0.5, 0.5]) - 0.25).abs() < 1e-12);
        assert!((at_least_two(&[1.0, 0.2, 0.0]) - 0.2).abs() < 1e-12);
        assert_eq!(at_least_two(&[0.9]), 0.0);
    }

    #[test]
    fn the_guides_old_three_second_partition_on_200ms_slots_is_risky() {
        let t = topo(200);
        let r = partition_risk(&t, &[vec![0, 1], vec![2, 3]], Duration::from_secs(3));
        assert_eq!(r.slots, 17);
        assert!(r.is_risky(), "{r:?}");
        assert!(r.final_fork > 0.01, "{r:?}");
        let msg = r.explain();
        assert!(
            msg.contains("k = 10") && msg.contains("[[0, 1], [2, 3]]"),
            "{msg}"
        );
    }

    #[test]
    fn short_partitions_or_slow_slots_are_not() {
        let t = topo(200);
        let r = partition_risk(&t, &[vec![0, 1], vec![2, 3]], Duration::from_secs(2));
        assert!(!r.is_risky(), "{r:?}");
        let r = partition_risk(
            &topo(1000),
            &[vec![0, 1], vec![2, 3]],
            Duration::from_secs(8),
        );
        assert!(!r.is_risky(), "{r:?}");
        // isolating one node of four: the other side may outgrow k, but the lone node's
        // chance to pass k too is what counts
        let r = partition_risk(&t, &[vec![3]], Duration::from_secs(2));
        assert_eq!(r.sides, vec![vec![3], vec![0, 1, 2]]);
        assert!(!r.is_risky(), "{r:?}");
    }

    #[test]
    fn the_fork_point_is_the_highest_shared_block() {
        // node 0: a b c d e ; node 1: a b x y z w
        let chains = [
            vec!["a", "b", "c", "d", "e"],
            vec!["a", "b", "x", "y", "z", "w"],
        ];
        let at = |i: usize, h: u64| chains[i].get(h as usize).map(|s| s.to_string());
        let f = fork_point(&[(0, 4), (1, 5)], at).unwrap();
        assert_eq!(f.height, 1);
        assert_eq!(f.depths, vec![(0, 3), (1, 4)]);
        assert!(f.explain(2).contains("fork is final"), "{}", f.explain(2));
        assert!(!f.explain(10).contains("final"), "{}", f.explain(10));
        assert!(fork_point(&[(0, 4), (1, 5)], |_, _| None).is_none());
    }

    #[test]
    fn the_most_even_split_balances_stake() {
        let t = TopologyBuilder::new().nodes(4).stake(0, 3).build().unwrap();
        assert_eq!(most_even_split(&t), vec![vec![0], vec![1, 2, 3]]);
        assert_eq!(most_even_split(&topo(200)).len(), 2);
    }
}
