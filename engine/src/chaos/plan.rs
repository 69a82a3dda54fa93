//! Turning a [`ChaosBuilder`] into a concrete fault timeline. Planning is a
//! pure function of (configuration, run seed, node count, run duration): the
//! same `--seed` gives the same timeline, whatever the nodes do meanwhile.

use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::disk::DiskMode;
use super::spec::{
    ChaosAction, ChaosBuilder, ChaosError, ChaosStream, DegradeScope, Delay, RestartMode, Targets,
};
use crate::links::LinkSel;

/// How long a node counts as busy after a graceful restart starts, so that
/// two streams do not act on the same node at once.
const RESTART_BUSY: Duration = Duration::from_secs(2);

/// One planned event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Index of the stream in the builder.
    pub stream: usize,
    /// `restart`, `partition`, ... (the stream's kind).
    pub kind: String,
    /// Offset from the start of the run.
    pub at: Duration,
    pub action: ChaosAction,
    /// Reverted (start / resume / fault revert) this long after `at`.
    pub hold: Option<Duration>,
}

impl std::fmt::Display for PlannedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>8.3}s {}", self.at.as_secs_f64(), self.action)?;
        if let Some(h) = self.hold {
            write!(f, " for {}", humantime::format_duration(h))?;
        }
        Ok(())
    }
}

/// The random generator of one label under a run seed (same derivation as
/// [`crate::context::RunContext::rng`]).
pub fn seeded_rng(seed: u64, label: &str) -> ChaCha8Rng {
    let h = devnode::crypto::hash(&[&seed.to_le_bytes(), label.as_bytes()]);
    ChaCha8Rng::from_seed(h)
}

fn draw(rng: &mut ChaCha8Rng, d: Delay) -> Duration {
    if d.max <= d.min {
        return d.min;
    }
    let lo = d.min.as_millis() as u64;
    let hi = d.max.as_millis() as u64;
    Duration::from_millis(rng.random_range(lo..=hi))
}

struct Busy {
    node: usize,
    from: Duration,
    to: Duration,
}

fn free(busy: &[Busy], node: usize, from: Duration, to: Duration) -> bool {
    !busy
        .iter()
        .any(|b| b.node == node && b.from <= to && from <= b.to)
}

/// The nodes of `targets` among `nodes`, or an error naming the stream `kind` when none is.
fn qualifying(kind: &str, targets: &Targets, nodes: usize) -> Result<Vec<usize>, ChaosError> {
    let candidates = targets.resolve(nodes);
    if candidates.is_empty() {
        return Err(ChaosError::new(
            "targets",
            format!(
                "{kind} targets = {targets:?}: no node of the {nodes} in the testnet qualifies"
            ),
        ));
    }
    Ok(candidates)
}

/// A stream that holds one node at a time (pauses, clock skews): after each drawn delay, a
/// random candidate free for the drawn hold gets `act`'s action; `(at, action, hold)` each.
fn hold_nodes(
    rng: &mut ChaCha8Rng,
    candidates: &[usize],
    (delay, duration): (Delay, Delay),
    horizon: Duration,
    busy: &mut Vec<Busy>,
    mut act: impl FnMut(&mut ChaCha8Rng, usize) -> ChaosAction,
) -> Vec<(Duration, ChaosAction, Duration)> {
    let mut out = Vec::new();
    let mut t = Duration::ZERO;
    loop {
        t += draw(rng, delay);
        if t >= horizon {
            break;
        }
        let hold = draw(rng, duration);
        let ok: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| free(busy, i, t, t + hold))
            .collect();
        if ok.is_empty() {
            continue;
        }
        let node = ok[rng.random_range(0..ok.len())];
        let action = act(rng, node);
        busy.push(Busy {
            node,
            from: t,
            to: t + hold,
        });
        out.push((t, action, hold));
        t += hold;
    }
    out
}

/// Plans every stream of `chaos` over `duration` on `nodes` nodes, any two of
/// which may be linked (see [`plan_on`] for a topology's own links).
pub fn plan(
    chaos: &ChaosBuilder,
    seed: u64,
    nodes: usize,
    duration: Duration,
) -> Result<Vec<PlannedStep>, ChaosError> {
    plan_on(chaos, seed, nodes, &[], duration)
}

/// Plans every stream of `chaos` over `duration` on `nodes` nodes linked by
/// `edges` (a random pair to degrade is one of them; empty: any two nodes).
pub fn plan_on(
    chaos: &ChaosBuilder,
    seed: u64,
    nodes: usize,
    edges: &[(usize, usize)],
    duration: Duration,
) -> Result<Vec<PlannedStep>, ChaosError> {
    let edges: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(a, b)| a != b && a < nodes && b < nodes)
        .collect();
    chaos.validate()?;
    let horizon = duration.saturating_sub(chaos.quiet_tail);
    let mut out = Vec::new();
    let mut busy: Vec<Busy> = Vec::new();
    for (si, stream) in chaos.streams.iter().enumerate() {
        let kind = stream.kind().to_owned();
        let mut rng = seeded_rng(seed, &format!("chaos:{}:{si}:{kind}", chaos.name));
        let mut push = |at: Duration, action: ChaosAction, hold: Option<Duration>| {
            out.push(PlannedStep {
                stream: si,
                kind: kind.clone(),
                at,
                action,
                hold,
            })
        };
        match stream {
            ChaosStream::Restart(r) => {
                let candidates = qualifying("restart", &r.targets, nodes)?;
                let mut last: Vec<Option<Duration>> = vec![None; nodes];
                let mut t = Duration::ZERO;
                loop {
                    t += draw(&mut rng, r.delay);
                    if t >= horizon {
                        break;
                    }
                    let end = t + r.down_for + RESTART_BUSY;
                    let ok: Vec<usize> = candidates
                        .iter()
                        .copied()
                        .filter(|&i| last[i].is_none_or(|l| t - l >= r.target_cooldown))
                        .filter(|&i| free(&busy, i, t, end))
                        .collect();
                    if ok.is_empty() {
                        continue;
                    }
                    let node = ok[rng.random_range(0..ok.len())];
                    last[node] = Some(t);
                    busy.push(Busy {
                        node,
                        from: t,
                        to: end,
                    });
                    match (r.mode, r.down_for.is_zero()) {
                        (RestartMode::Graceful, true) => push(t, ChaosAction::Restart(node), None),
                        (RestartMode::Graceful, false) => {
                            push(t, ChaosAction::Stop(node), Some(r.down_for))
                        }
                        (RestartMode::Kill, _) => {
                            push(t, ChaosAction::Kill(node), Some(r.down_for))
                        }
                    }
                }
            }
            ChaosStream::Partition(p) => {
                if p.groups.is_none() && nodes < 2 {
                    return Err(ChaosError::new(
                        "partition",
                        format!(
                            "partition: a random split needs at least 2 nodes, the testnet has {nodes}"
                        ),
                    ));
                }
                if let Some(g) = &p.groups
                    && let Some(&bad) = g.iter().flatten().find(|&&n| n >= nodes)
                {
                    return Err(ChaosError::new(
                        "groups",
                        format!(
                            "partition groups = {g:?}: node {bad} does not exist (the testnet has {nodes} nodes)"
                        ),
                    ));
                }
                let mut t = Duration::ZERO;
                loop {
                    t += draw(&mut rng, p.delay);
                    if t >= horizon {
                        break;
                    }
                    let hold = draw(&mut rng, p.duration);
                    let groups = match &p.groups {
                        Some(g) => g.clone(),
                        None => {
                            let mut all: Vec<usize> = (0..nodes).collect();
                            all.shuffle(&mut rng);
                            let cut = rng.random_range(1..nodes);
                            let mut a = all[..cut].to_vec();
                            let mut b = all[cut..].to_vec();
                            a.sort_unstable();
                            b.sort_unstable();
                            let mut g = vec![a, b];
                            g.sort();
                            g
                        }
                    };
                    push(t, ChaosAction::Partition(groups), Some(hold));
                    t += hold;
                }
            }
            ChaosStream::Degrade(d) => {
                if d.scope == DegradeScope::RandomPair && nodes < 2 {
                    return Err(ChaosError::new(
                        "scope",
                        format!(
                            "degrade: a random pair needs at least 2 nodes, the testnet has {nodes}"
                        ),
                    ));
                }
                if nodes == 0 {
                    return Err(ChaosError::new(
                        "degrade",
                        "degrade: the testnet has no node",
                    ));
                }
                let mut t = Duration::ZERO;
                loop {
                    t += draw(&mut rng, d.delay);
                    if t >= horizon {
                        break;
                    }
                    let hold = draw(&mut rng, d.duration);
                    let links = match d.scope {
                        DegradeScope::All => LinkSel::All,
                        DegradeScope::RandomNode => LinkSel::Node(rng.random_range(0..nodes)),
                        DegradeScope::RandomPair if !edges.is_empty() => {
                            let (a, b) = edges[rng.random_range(0..edges.len())];
                            LinkSel::Both(a.min(b), a.max(b))
                        }
                        DegradeScope::RandomPair => {
                            let a = rng.random_range(0..nodes);
                            let mut b = rng.random_range(0..nodes - 1);
                            if b >= a {
                                b += 1;
                            }
                            LinkSel::Both(a.min(b), a.max(b))
                        }
                    };
                    if let Some(delay) = d.latency {
                        push(
                            t,
                            ChaosAction::Latency {
                                links: links.clone(),
                                delay,
                                jitter: d.jitter,
                            },
                            Some(hold),
                        );
                    }
                    if let Some(probability) = d.loss {
                        push(
                            t,
                            ChaosAction::Loss {
                                links: links.clone(),
                                probability,
                            },
                            Some(hold),
                        );
                    }
                    t += hold;
                }
            }
            ChaosStream::Pause(p) => {
                let candidates = qualifying("pause", &p.targets, nodes)?;
                let held = hold_nodes(
                    &mut rng,
                    &candidates,
                    (p.delay, p.duration),
                    horizon,
                    &mut busy,
                    |_, node| ChaosAction::Pause(node),
                );
                for (t, action, hold) in held {
                    push(t, action, Some(hold));
                }
            }
            ChaosStream::Clock(c) => {
                let candidates = qualifying("clock_skew", &c.targets, nodes)?;
                let max_ms = c.max.as_millis().min(i64::MAX as u128) as i64;
                let held = hold_nodes(
                    &mut rng,
                    &candidates,
                    (c.delay, c.duration),
                    horizon,
                    &mut busy,
                    |rng, node| {
                        // at least a quarter of the bound, so a skew is never negligible
                        let magnitude = rng.random_range((max_ms / 4).max(1)..=max_ms);
                        let offset_ms = if rng.random_bool(0.5) {
                            magnitude
                        } else {
                            -magnitude
                        };
                        ChaosAction::Clock { node, offset_ms }
                    },
                );
                for (t, action, hold) in held {
                    push(t, action, Some(hold));
                }
            }
            ChaosStream::Byzantine(b) => {
                let candidates = qualifying("byzantine", &b.targets, nodes)?;
                let held = hold_nodes(
                    &mut rng,
                    &candidates,
                    (b.delay, b.duration),
                    horizon,
                    &mut busy,
                    |rng, node| ChaosAction::Byzantine {
                        node,
                        behaviour: b.behaviours[rng.random_range(0..b.behaviours.len())],
                    },
                );
                for (t, action, hold) in held {
                    push(t, action, Some(hold));
                }
            }
            ChaosStream::Disk(d) => {
                let candidates = qualifying(d.kind(), &d.targets, nodes)?;
                let held = hold_nodes(
                    &mut rng,
                    &candidates,
                    (d.delay, d.duration),
                    horizon,
                    &mut busy,
                    |_, node| match d.mode {
                        DiskMode::Full => ChaosAction::DiskFull(node),
                        DiskMode::LoseUnflushed { blocks } => {
                            ChaosAction::LoseUnflushed { node, blocks }
                        }
                    },
                );
                for (t, action, hold) in held {
                    push(t, action, Some(hold));
                }
            }
            ChaosStream::Schedule(steps) => {
                let mut steps = steps.clone();
                steps.sort_by_key(|s| s.at);
                for s in steps {
                    if let Some(n) = node_of(&s.action)
                        && n >= nodes
                    {
                        return Err(ChaosError::new(
                            "schedule",
                            format!(
                                "schedule step {}: node {n} does not exist (the testnet has {nodes} nodes)",
                                s.action
                            ),
                        ));
                    }
                    if s.at < duration {
                        push(s.at, s.action, s.hold);
                    }
                }
            }
        }
    }
    out.sort_by_key(|s| (s.at, s.stream));
    Ok(out)
}

fn node_of(a: &ChaosAction) -> Option<usize> {
    a.nodes().into_iter().max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn chaos() -> ChaosBuilder {
        ChaosBuilder::new()
            .restart()
            .min_delay(s(1))
            .max_delay(s(3))
            .target_cooldown(s(4))
            .apply()
            .partition()
            .min_delay(s(2))
            .max_delay(s(4))
            .min_duration(s(1))
            .max_duration(s(2))
            .apply()
            .degrade()
            .latency(Duration::from_millis(200))
            .loss(0.1)
            .min_delay(s(1))
            .max_delay(s(2))
            .duration(s(1))
            .apply()
            .pause()
            .min_delay(s(2))
            .max_delay(s(5))
            .apply()
    }

    #[test]
    fn same_seed_same_timeline_other_seed_differs() {
        let a = plan(&chaos(), 7, 5, s(60)).unwrap();
        let b = plan(&chaos(), 7, 5, s(60)).unwrap();
        let c = plan(&chaos(), 8, 5, s(60)).unwrap();
        assert!(a.len() > 20, "{}", a.len());
        assert_eq!(a, b);
        assert_ne!(a, c);
        for k in ["restart", "partition", "degrade", "pause"] {
            assert!(a.iter().any(|p| p.kind == k), "no {k} step");
        }
    }

    #[test]
    fn restart_cooldown_targets_and_bounds_hold() {
        let c = ChaosBuilder::new()
            .restart()
            .min_delay(s(1))
            .max_delay(s(2))
            .target_cooldown(s(5))
            .exclude(vec![0])
            .apply();
        let p = plan(&c, 1, 4, s(100)).unwrap();
        let mut last = [None::<Duration>; 4];
        let mut prev = Duration::ZERO;
        for step in &p {
            let ChaosAction::Restart(n) = step.action else {
                panic!("{step}")
            };
            assert_ne!(n, 0, "excluded node restarted");
            assert!(step.at - prev >= s(1) && step.at < s(100));
            if let Some(l) = last[n] {
                assert!(step.at - l >= s(5), "cooldown broken at {step}");
            }
            last[n] = Some(step.at);
            prev = step.at;
        }
        assert!(p.len() > 30);
    }

    #[test]
    fn random_partitions_split_every_node_into_two_groups() {
        let c = ChaosBuilder::new().partition().apply();
        for step in plan(&c, 3, 5, s(200)).unwrap() {
            let ChaosAction::Partition(g) = &step.action else {
                panic!()
            };
            assert_eq!(g.len(), 2);
            assert!(g.iter().all(|x| !x.is_empty()));
            let mut all: Vec<usize> = g.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, vec![0, 1, 2, 3, 4]);
            let h = step.hold.unwrap();
            assert!(h >= s(2) && h <= s(5));
        }
    }

    #[test]
    fn node_streams_do_not_overlap_on_a_node() {
        let c = ChaosBuilder::new()
            .pause()
            .min_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(200))
            .duration(s(2))
            .apply()
            .restart()
            .min_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(300))
            .target_cooldown(Duration::ZERO)
            .apply();
        let p = plan(&c, 9, 2, s(30)).unwrap();
        for a in p.iter().filter(|x| x.kind == "pause") {
            let n = a.action.node().unwrap();
            let end = a.at + a.hold.unwrap();
            for b in p.iter().filter(|x| x.kind == "restart") {
                if b.action.node() == Some(n) {
                    assert!(b.at + RESTART_BUSY < a.at || b.at > end, "{a} overlaps {b}");
                }
            }
        }
    }

    #[test]
    fn invalid_configurations_name_the_field() {
        let e = |c: ChaosBuilder| plan(&c, 1, 3, s(10)).unwrap_err().to_string();
        assert_eq!(
            e(ChaosBuilder::new()
                .restart()
                .min_delay(s(5))
                .max_delay(s(1))
                .apply()),
            "restart max_delay = 1s is below min_delay = 5s"
        );
        assert_eq!(
            e(ChaosBuilder::new()),
            "chaos_with: no fault stream configured (call e.g. c.restart()...apply())"
        );
        assert_eq!(
            e(ChaosBuilder::new().degrade().apply()),
            "degrade: set latency(..) and/or loss(..)"
        );
        assert_eq!(
            e(ChaosBuilder::new().degrade().loss(1.5).apply()),
            "degrade loss = 1.5: a probability must be in [0, 1]"
        );
        assert_eq!(
            e(ChaosBuilder::new().restart().targets(vec![7]).apply()),
            "restart targets = Only([7]): no node of the 3 in the testnet qualifies"
        );
        assert_eq!(
            e(ChaosBuilder::new()
                .partition()
                .groups(vec![vec![0, 1], vec![1, 2]])
                .apply()),
            "partition groups = [[0, 1], [1, 2]]: node 1 is in two groups"
        );
        assert_eq!(
            e(ChaosBuilder::new()
                .schedule()
                .at(s(1), ChaosAction::Restart(5))
                .apply()),
            "schedule step restart node-5: node 5 does not exist (the testnet has 3 nodes)"
        );
    }

    #[test]
    fn random_pairs_are_links_of_the_topology() {
        let c = ChaosBuilder::new()
            .degrade()
            .loss(0.5)
            .min_delay(s(1))
            .max_delay(s(1))
            .duration(s(1))
            .apply();
        let ring = [(0, 1), (1, 2), (2, 3), (3, 0)];
        let p = plan_on(&c, 5, 4, &ring, s(100)).unwrap();
        assert!(p.len() > 40);
        for step in p {
            let ChaosAction::Loss {
                links: LinkSel::Both(a, b),
                ..
            } = step.action
            else {
                panic!("{step}")
            };
            assert!(
                ring.contains(&(a, b)) || ring.contains(&(b, a)),
                "{a}<->{b}"
            );
        }
    }

    #[test]
    fn quiet_tail_keeps_the_end_of_the_run_free() {
        let c = ChaosBuilder::new()
            .quiet_tail(s(10))
            .restart()
            .min_delay(s(1))
            .max_delay(s(1))
            .target_cooldown(Duration::ZERO)
            .apply();
        let p = plan(&c, 1, 3, s(30)).unwrap();
        assert!(p.iter().all(|x| x.at < s(20)));
        assert_eq!(p.len(), 19);
    }
}
