//! A replay: a plan run again with a fixed fault schedule in place of its chaos workloads, and
//! optionally another seed, node count and run duration, judged on fewer expectations. `shrink`
//! writes its candidates and its result as replays; the script host applies one to every plan
//! the script runs.

use std::time::Duration;

use crate::chaos::{ChaosBuilder, ChaosScenarioExt};
use crate::scenario::{Scenario, ScenarioError};

/// What a replay changes in a plan (None: as the plan has it).
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// The run seed.
    pub seed: Option<u64>,
    /// The node count.
    pub nodes: Option<usize>,
    /// The run duration.
    pub duration: Option<Duration>,
    /// Only these expectations are judged.
    pub expectations: Option<Vec<String>>,
    /// The fault timeline, in place of every chaos workload of the plan.
    pub chaos: Option<ChaosBuilder>,
}

impl Replay {
    /// `plan` with this replay's changes, validated as a new plan would be.
    pub fn apply(&self, plan: &Scenario) -> Result<Scenario, ScenarioError> {
        plan.rebuild(|mut b| {
            if let Some(seed) = self.seed {
                b = b.seed(seed);
            }
            if let Some(n) = self.nodes {
                b = b.map_topology(|t| t.nodes(n));
            }
            if let Some(d) = self.duration {
                b = b.with_run_duration(d);
            }
            if let Some(chaos) = &self.chaos {
                b = b.without_chaos().chaos_with(|_| chaos.clone());
            }
            if let Some(keep) = &self.expectations {
                b = b.keep_expectations(keep.clone());
            }
            b
        })
    }

    /// One line for the terminal: what the replay changes.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.seed {
            parts.push(format!("seed {s}"));
        }
        if let Some(n) = self.nodes {
            parts.push(format!("{n} nodes"));
        }
        if let Some(d) = self.duration {
            parts.push(format!("{:.1}s", d.as_secs_f64()));
        }
        if let Some(c) = &self.chaos {
            let steps: usize = c
                .streams
                .iter()
                .map(|s| match s {
                    crate::chaos::ChaosStream::Schedule(steps) => steps.len(),
                    _ => 1,
                })
                .sum();
            parts.push(format!("{steps} fault events"));
        }
        if let Some(e) = &self.expectations {
            parts.push(format!("judged on {}", e.join(", ")));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::ChaosAction;
    use crate::scenario::ScenarioBuilder;

    fn plan() -> Scenario {
        ScenarioBuilder::topology_with(|t| {
            t.network_full()
                .nodes(4)
                .slot_duration(Duration::from_millis(200))
        })
        .enable_node_control()
        .enable_network_faults()
        .chaos_with(|c| c.restart().apply())
        .expect_consensus_liveness()
        .expect_no_crashes()
        .seed(5)
        .build()
        .unwrap()
    }

    #[test]
    fn a_replay_replaces_chaos_and_keeps_the_rest() {
        let schedule = ChaosBuilder::new()
            .schedule()
            .at(Duration::from_secs(2), ChaosAction::Restart(1))
            .apply();
        let r = Replay {
            seed: Some(9),
            nodes: Some(3),
            duration: Some(Duration::from_secs(12)),
            expectations: Some(vec!["no_node_crash".into()]),
            chaos: Some(schedule),
        };
        let s = r.apply(&plan()).unwrap();
        assert_eq!(s.seed(), 9);
        assert_eq!(s.topology().node_count(), 3);
        assert_eq!(s.duration(), Duration::from_secs(12));
        assert_eq!(s.expectation_names(), vec!["no_node_crash".to_string()]);
        let chaos: Vec<_> = s.workloads.iter().filter(|w| w.is_chaos()).collect();
        assert_eq!(chaos.len(), 1, "{:?}", s.workload_names());
        // a fresh copy keeps the replay's changes
        let f = s.fresh();
        assert_eq!(f.expectation_names(), vec!["no_node_crash".to_string()]);
        assert_eq!(f.topology().node_count(), 3);
        // nothing set: the plan as it was
        let same = Replay::default().apply(&plan()).unwrap();
        assert_eq!(same.seed(), 5);
        assert_eq!(same.expectation_names().len(), 2);
    }

    #[test]
    fn a_replay_naming_an_unknown_expectation_is_refused() {
        let r = Replay {
            expectations: Some(vec!["nope".into()]),
            ..Default::default()
        };
        let e = r.apply(&plan()).unwrap_err();
        assert!(
            e.to_string().contains("`nope` is not an expectation"),
            "{e}"
        );
        assert!(e.to_string().contains("consensus_liveness"), "{e}");
    }
}
