//! Random lying nodes: `c.byzantine().behaviours(["equivocate", "withhold"])...apply()`. After
//! each drawn delay a random target node free for the drawn hold is told one behaviour of the
//! list (drawn from the run seed), and made honest again after the hold.

use std::time::Duration;

use serde::Serialize;

use super::spec::{ChaosBuilder, ChaosError, ChaosStream, Delay, Targets, targets_setters};
use crate::deploy::byzantine::Behaviour;

/// Random byzantine behaviours: `c.byzantine()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ByzantineSpec {
    pub delay: Delay,
    pub duration: Delay,
    /// One of these is drawn for each event.
    pub behaviours: Vec<Behaviour>,
    pub targets: Targets,
}

impl ByzantineSpec {
    /// Checks the stream; the error names the field and value.
    pub fn validate(&self) -> Result<(), ChaosError> {
        super::spec::check_delay("byzantine", "min_delay", "max_delay", self.delay)?;
        super::spec::check_delay("byzantine", "min_duration", "max_duration", self.duration)?;
        super::spec::check_targets("byzantine", &self.targets)?;
        if self.behaviours.is_empty() {
            return Err(ChaosError::new(
                "behaviours",
                format!(
                    "byzantine behaviours = []: name at least one of {:?}",
                    Behaviour::NAMES
                ),
            ));
        }
        for b in &self.behaviours {
            Behaviour::set_of(&[*b])
                .validate("byzantine ")
                .map_err(|e| ChaosError::new("behaviours", e))?;
        }
        Ok(())
    }
}

/// `c.byzantine()...apply()`.
#[derive(Debug, Clone)]
pub struct ByzantineBuilder {
    parent: ChaosBuilder,
    pub spec: ByzantineSpec,
}

targets_setters!(
    ByzantineBuilder,
    "Only these nodes lie.",
    "These nodes never lie."
);

impl ByzantineBuilder {
    /// Defaults: every 5-10 s, lasting 2-5 s, any of the four behaviours (with their default
    /// parameters), every node.
    pub fn new(parent: ChaosBuilder) -> Self {
        Self {
            parent,
            spec: ByzantineSpec {
                delay: Delay::secs(5, 10),
                duration: Delay::secs(2, 5),
                behaviours: Behaviour::NAMES
                    .iter()
                    .filter_map(|n| Behaviour::named(n).ok())
                    .collect(),
                targets: Targets::All,
            },
        }
    }
    /// Least gap before each event.
    pub fn min_delay(mut self, d: Duration) -> Self {
        self.spec.delay.min = d;
        self
    }
    /// Largest gap before each event.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.spec.delay.max = d;
        self
    }
    /// Shortest time each lie lasts.
    pub fn min_duration(mut self, d: Duration) -> Self {
        self.spec.duration.min = d;
        self
    }
    /// Longest time each lie lasts.
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.spec.duration.max = d;
        self
    }
    /// Each lie lasts exactly `d`.
    pub fn duration(mut self, d: Duration) -> Self {
        self.spec.duration = Delay { min: d, max: d };
        self
    }
    /// The behaviours drawn from.
    pub fn behaviours(mut self, b: Vec<Behaviour>) -> Self {
        self.spec.behaviours = b;
        self
    }
    /// Adds the stream and returns the chaos builder.
    pub fn apply(self) -> ChaosBuilder {
        self.parent.stream(ChaosStream::Byzantine(self.spec))
    }
}

impl ChaosBuilder {
    /// Random lying nodes (see [`ByzantineBuilder::new`] for the defaults).
    pub fn byzantine(self) -> ByzantineBuilder {
        ByzantineBuilder::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::plan::plan;
    use crate::chaos::spec::ChaosAction;

    #[test]
    fn lies_are_planned_from_the_seed_one_node_at_a_time_and_bad_settings_named() {
        let chaos = ChaosBuilder::new()
            .byzantine()
            .behaviours(vec![Behaviour::Equivocate, Behaviour::StaleParent(1)])
            .targets(vec![0, 1])
            .min_delay(Duration::from_secs(1))
            .max_delay(Duration::from_secs(2))
            .duration(Duration::from_secs(1))
            .apply();
        let a = plan(&chaos, 7, 4, Duration::from_secs(30)).unwrap();
        assert_eq!(a, plan(&chaos, 7, 4, Duration::from_secs(30)).unwrap());
        assert!(a.len() >= 5, "{a:?}");
        let mut kinds = std::collections::BTreeSet::new();
        for s in &a {
            let ChaosAction::Byzantine { node, behaviour } = &s.action else {
                panic!("{s:?}");
            };
            assert!(*node < 2);
            kinds.insert(behaviour.name());
            assert_eq!(s.hold, Some(Duration::from_secs(1)));
        }
        assert_eq!(kinds.len(), 2, "both behaviours drawn: {kinds:?}");
        assert_ne!(a, plan(&chaos, 8, 4, Duration::from_secs(30)).unwrap());

        let none = ChaosBuilder::new().byzantine().behaviours(vec![]).apply();
        let e = none.validate().unwrap_err();
        assert!(e.message.contains("byzantine behaviours = []"), "{e}");
        let far = ChaosBuilder::new()
            .byzantine()
            .behaviours(vec![Behaviour::Withhold(Duration::from_secs(7200))])
            .apply();
        let e = far.validate().unwrap_err();
        assert!(e.message.contains("withhold_ms = 7200000"), "{e}");
        let (control, faults) = chaos.needs();
        assert!(control && !faults);
    }
}
