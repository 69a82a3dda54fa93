//! Shrinking a failing run: the pieces of the search that need no testnet. Delta debugging
//! ([`ddmin`], Zeller and Hildebrandt's minimising algorithm) over the events of the executed
//! fault timeline, and the reductions tried around it: the timeline cut where the run failed,
//! the events of the node the failure names, the events moved earlier, fewer nodes. The caller
//! (`nomos-script shrink`) decides whether a candidate still fails by running it.

use std::time::Duration;

use crate::chaos::ChaosAction;
use crate::chaos::plan::PlannedStep;

/// The smallest subset of `0..n` (as indices, in order) for which `fails` holds that ddmin
/// finds: every subset left is 1-minimal (removing any one index makes it pass), given that
/// `fails` holds for the whole set. `fails` is called only on proper, non-empty subsets.
pub fn ddmin(n: usize, mut fails: impl FnMut(&[usize]) -> bool) -> Vec<usize> {
    let mut current: Vec<usize> = (0..n).collect();
    let mut granularity = 2usize;
    while current.len() >= 2 {
        let chunks = split(&current, granularity);
        let mut reduced = false;
        for chunk in &chunks {
            if fails(chunk) {
                current = chunk.clone();
                granularity = 2;
                reduced = true;
                break;
            }
        }
        // with two chunks, each complement is the other chunk, already tried
        if !reduced && chunks.len() > 2 {
            for skip in 0..chunks.len() {
                let complement: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .flat_map(|(_, c)| c.iter().copied())
                    .collect();
                if fails(&complement) {
                    current = complement;
                    granularity = (granularity - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if granularity >= current.len() {
                break;
            }
            granularity = (granularity * 2).min(current.len());
        }
    }
    current
}

/// `items` in `parts` contiguous chunks of nearly equal size (none empty).
fn split(items: &[usize], parts: usize) -> Vec<Vec<usize>> {
    let parts = parts.clamp(1, items.len().max(1));
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for i in 0..parts {
        let end = start + (items.len() - start) / (parts - i);
        out.push(items[start..end].to_vec());
        start = end;
    }
    out
}

/// When a step's effect ends: its start plus its hold (a restart ends when it is done; it is
/// counted as its start).
pub fn end_of(step: &PlannedStep) -> Duration {
    step.at + step.hold.unwrap_or_default()
}

/// Whether a step can bear on node `node`: it acts on it, or on the whole network (a partition
/// that includes it, a fault on every link, a heal).
pub fn bears_on(step: &PlannedStep, node: usize) -> bool {
    let named = step.action.nodes();
    named.is_empty() || named.contains(&node)
}

/// The steps that started before `t` (the moment the run failed): what came after cannot have
/// caused it.
pub fn before(steps: &[PlannedStep], t: Duration) -> Vec<PlannedStep> {
    steps.iter().filter(|s| s.at < t).cloned().collect()
}

/// The steps moved earlier so that the first starts at `lead` (unchanged when it already
/// starts before `lead`).
pub fn shifted(steps: &[PlannedStep], lead: Duration) -> Vec<PlannedStep> {
    let Some(first) = steps.iter().map(|s| s.at).min() else {
        return Vec::new();
    };
    let by = first.saturating_sub(lead);
    steps
        .iter()
        .map(|s| PlannedStep {
            at: s.at - by,
            ..s.clone()
        })
        .collect()
}

/// The steps for a testnet of `n` nodes: node-level steps on a node at or past `n` are dropped,
/// partitions lose those nodes (and are dropped when fewer than two groups are left), link
/// faults on them are dropped.
pub fn within(steps: &[PlannedStep], n: usize) -> Vec<PlannedStep> {
    steps
        .iter()
        .filter_map(|s| {
            let action = match &s.action {
                ChaosAction::Partition(groups) => {
                    let groups: Vec<Vec<usize>> = groups
                        .iter()
                        .map(|g| g.iter().copied().filter(|i| *i < n).collect::<Vec<_>>())
                        .filter(|g| !g.is_empty())
                        .collect();
                    if groups.len() < 2 {
                        return None;
                    }
                    ChaosAction::Partition(groups)
                }
                other => {
                    if other.nodes().iter().any(|i| *i >= n) {
                        return None;
                    }
                    other.clone()
                }
            };
            Some(PlannedStep {
                action,
                ..s.clone()
            })
        })
        .collect()
}

/// The fewest nodes the steps (and the node the failure names) still fit: one past the highest
/// node a node-level step names, at least two. Partitions do not count: they lose the nodes
/// past it ([`within`]).
pub fn fewest_nodes(steps: &[PlannedStep], failing_node: Option<usize>) -> usize {
    steps
        .iter()
        .filter(|s| !matches!(s.action, ChaosAction::Partition(_)))
        .flat_map(|s| s.action.nodes())
        .chain(failing_node)
        .max()
        .map_or(2, |m| m + 1)
        .max(2)
}

/// The node a failure message names first (`node-3 exited ...`), if any.
pub fn node_named(message: &str) -> Option<usize> {
    let at = message.find("node-")?;
    let digits: String = message[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at: u64, action: ChaosAction, hold: Option<u64>) -> PlannedStep {
        PlannedStep {
            stream: 0,
            kind: "schedule".into(),
            at: Duration::from_secs(at),
            action,
            hold: hold.map(Duration::from_secs),
        }
    }

    #[test]
    fn ddmin_finds_the_two_events_that_matter_and_counts_its_tests() {
        for n in [2usize, 5, 8, 17, 40] {
            let mut worst = 0;
            for a in 0..n {
                for b in (a + 1)..n {
                    // the caller caches candidates: count distinct ones
                    let mut tried = std::collections::HashSet::new();
                    let found = ddmin(n, |set| {
                        assert!(!set.is_empty() && set.len() < n);
                        tried.insert(set.to_vec());
                        set.contains(&a) && set.contains(&b)
                    });
                    assert_eq!(found, vec![a, b], "n={n}");
                    worst = worst.max(tried.len());
                }
            }
            eprintln!("n={n}: at most {worst} distinct candidates");
            // far below ddmin's n^2 worst case for a pair
            assert!(worst <= 3 * n + 6, "n={n}: {worst} candidates");
        }
    }

    #[test]
    fn ddmin_keeps_a_single_cause_and_a_whole_set_that_cannot_shrink() {
        assert_eq!(ddmin(10, |s| s.contains(&7)), vec![7]);
        assert_eq!(ddmin(3, |s| s.len() == 3), vec![0, 1, 2]);
        assert_eq!(ddmin(1, |_| unreachable!()), vec![0]);
        assert!(ddmin(0, |_| unreachable!()).is_empty());
    }

    #[test]
    fn split_makes_even_non_empty_chunks() {
        let items: Vec<usize> = (0..7).collect();
        let parts = split(&items, 3);
        assert_eq!(parts, vec![vec![0, 1], vec![2, 3], vec![4, 5, 6]]);
        assert_eq!(split(&items, 10).len(), 7);
    }

    #[test]
    fn reductions_cut_shift_and_fit_fewer_nodes() {
        let steps = vec![
            step(4, ChaosAction::Pause(0), Some(2)),
            step(6, ChaosAction::Isolate(3), Some(5)),
            step(7, ChaosAction::Restart(3), None),
            step(
                9,
                ChaosAction::Partition(vec![vec![0, 1], vec![2, 3]]),
                Some(3),
            ),
            step(12, ChaosAction::Restart(1), None),
        ];
        assert_eq!(before(&steps, Duration::from_secs(9)).len(), 3);
        assert!(bears_on(&steps[3], 2) && !bears_on(&steps[0], 3));
        let s = shifted(&steps, Duration::from_secs(2));
        assert_eq!(s[0].at, Duration::from_secs(2));
        assert_eq!(s[4].at, Duration::from_secs(10));
        assert_eq!(end_of(&s[1]), Duration::from_secs(9));
        assert_eq!(fewest_nodes(&steps, None), 4);
        assert_eq!(fewest_nodes(&steps[3..], Some(1)), 2);
        let fit = within(&steps, 3);
        assert_eq!(fit.len(), 3, "{fit:?}");
        assert_eq!(
            fit[1].action,
            ChaosAction::Partition(vec![vec![0, 1], vec![2]]),
            "{fit:?}"
        );
        // a partition left with one group is no partition
        assert_eq!(within(&steps, 2).len(), 2);
    }

    #[test]
    fn the_failing_node_is_read_from_the_message() {
        assert_eq!(
            node_named("invariant `no_node_crash` (never) violated at 9.1s: node-12 exited"),
            Some(12)
        );
        assert_eq!(node_named("no node here"), None);
    }
}
