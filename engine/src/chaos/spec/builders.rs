//! The fluent builders of each stream kind (`c.restart()...apply()`, `c.partition()`, ...),
//! with their defaults.

use std::time::Duration;

use super::{
    ChaosAction, ChaosBuilder, ChaosStream, ClockSpec, DegradeScope, DegradeSpec, Delay,
    PartitionSpec, PauseSpec, RestartMode, RestartSpec, ScheduledStep, Targets,
};
use crate::deadline::Deadline;

impl ChaosBuilder {
    /// Random restarts (defaults: every 5-10 s, cooldown 15 s, graceful, all nodes).
    pub fn restart(self) -> RestartBuilder {
        RestartBuilder {
            parent: self,
            spec: RestartSpec {
                delay: Delay::secs(5, 10),
                target_cooldown: Duration::from_secs(15),
                targets: Targets::All,
                mode: RestartMode::Graceful,
                down_for: Duration::ZERO,
                catch_up_within: None,
            },
        }
    }

    /// Random partitions (defaults: every 5-10 s, lasting 2-5 s, random two-way split).
    pub fn partition(self) -> PartitionBuilder {
        PartitionBuilder {
            parent: self,
            spec: PartitionSpec {
                delay: Delay::secs(5, 10),
                duration: Delay::secs(2, 5),
                groups: None,
            },
        }
    }

    /// Random link degradation (defaults: every 5-10 s, lasting 2-5 s, 200 ms
    /// latency on a random pair).
    pub fn degrade(self) -> DegradeBuilder {
        DegradeBuilder {
            parent: self,
            spec: DegradeSpec {
                delay: Delay::secs(5, 10),
                duration: Delay::secs(2, 5),
                latency: None,
                jitter: Duration::ZERO,
                loss: None,
                scope: DegradeScope::RandomPair,
            },
        }
    }

    /// Random clock skews (defaults: every 5-10 s, lasting 2-5 s, up to 3 s either way, all
    /// nodes).
    pub fn clock_skew(self) -> ClockBuilder {
        ClockBuilder {
            parent: self,
            spec: ClockSpec {
                delay: Delay::secs(5, 10),
                duration: Delay::secs(2, 5),
                max: Duration::from_secs(3),
                targets: Targets::All,
            },
        }
    }

    /// Random pauses (defaults: every 5-10 s, lasting 1-3 s, all nodes).
    pub fn pause(self) -> PauseBuilder {
        PauseBuilder {
            parent: self,
            spec: PauseSpec {
                delay: Delay::secs(5, 10),
                duration: Delay::secs(1, 3),
                targets: Targets::All,
            },
        }
    }

    /// A fixed schedule of actions.
    pub fn schedule(self) -> ScheduleBuilder {
        ScheduleBuilder {
            parent: self,
            steps: Vec::new(),
        }
    }
}

macro_rules! delay_setters {
    ($t:ty) => {
        impl $t {
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
        }
    };
}

macro_rules! duration_setters {
    ($t:ty) => {
        impl $t {
            /// Shortest time each fault stays in force.
            pub fn min_duration(mut self, d: Duration) -> Self {
                self.spec.duration.min = d;
                self
            }
            /// Longest time each fault stays in force.
            pub fn max_duration(mut self, d: Duration) -> Self {
                self.spec.duration.max = d;
                self
            }
            /// Each fault stays in force exactly `d`.
            pub fn duration(mut self, d: Duration) -> Self {
                self.spec.duration = Delay { min: d, max: d };
                self
            }
        }
    };
}

macro_rules! targets_setters {
    ($t:ty, $only:literal, $never:literal) => {
        impl $t {
            #[doc = $only]
            pub fn targets(mut self, nodes: Vec<usize>) -> Self {
                self.spec.targets = $crate::chaos::Targets::Only(nodes);
                self
            }
            #[doc = $never]
            pub fn exclude(mut self, nodes: Vec<usize>) -> Self {
                self.spec.targets = $crate::chaos::Targets::Except(nodes);
                self
            }
        }
    };
}

pub(in crate::chaos) use {delay_setters, duration_setters, targets_setters};

/// `c.restart()...apply()`.
#[derive(Debug, Clone)]
pub struct RestartBuilder {
    parent: ChaosBuilder,
    pub spec: RestartSpec,
}
delay_setters!(RestartBuilder);

targets_setters!(
    RestartBuilder,
    "Only these nodes are restarted.",
    "These nodes are never restarted."
);

impl RestartBuilder {
    /// A node is not restarted again within `d` of its last restart.
    pub fn target_cooldown(mut self, d: Duration) -> Self {
        self.spec.target_cooldown = d;
        self
    }
    /// The seed's switch: `true` targets every node (the default); `false` leaves no target,
    /// which the build refuses (the seed silently turns it back on).
    pub fn include_nodes(mut self, on: bool) -> Self {
        self.spec.targets = if on {
            Targets::All
        } else {
            Targets::Only(Vec::new())
        };
        self
    }
    /// SIGKILL instead of a graceful stop.
    pub fn kill(mut self) -> Self {
        self.spec.mode = RestartMode::Kill;
        self
    }
    /// Keep the node down this long before starting it again.
    pub fn down_for(mut self, d: Duration) -> Self {
        self.spec.down_for = d;
        self
    }
    /// Each restarted node must catch up within `d` (else the workload fails): a duration, or
    /// slots or blocks of the testnet's consensus parameters.
    pub fn catch_up_within(mut self, d: impl Into<Deadline>) -> Self {
        self.spec.catch_up_within = Some(d.into());
        self
    }
    /// Adds the stream and returns the chaos builder.
    pub fn apply(self) -> ChaosBuilder {
        self.parent.stream(ChaosStream::Restart(self.spec))
    }
}

/// `c.partition()...apply()`.
#[derive(Debug, Clone)]
pub struct PartitionBuilder {
    parent: ChaosBuilder,
    pub spec: PartitionSpec,
}
delay_setters!(PartitionBuilder);
duration_setters!(PartitionBuilder);

impl PartitionBuilder {
    /// Always split into these groups (nodes named nowhere form one more group).
    pub fn groups(mut self, groups: Vec<Vec<usize>>) -> Self {
        self.spec.groups = Some(groups);
        self
    }
    /// Adds the stream and returns the chaos builder.
    pub fn apply(self) -> ChaosBuilder {
        self.parent.stream(ChaosStream::Partition(self.spec))
    }
}

/// `c.degrade()...apply()`.
#[derive(Debug, Clone)]
pub struct DegradeBuilder {
    parent: ChaosBuilder,
    pub spec: DegradeSpec,
}
delay_setters!(DegradeBuilder);
duration_setters!(DegradeBuilder);

impl DegradeBuilder {
    /// Adds latency (with optional jitter) on the chosen links.
    pub fn latency(mut self, d: Duration) -> Self {
        self.spec.latency = Some(d);
        self
    }
    /// Jitter around the latency.
    pub fn jitter(mut self, d: Duration) -> Self {
        self.spec.jitter = d;
        self
    }
    /// Drops frames with this probability on the chosen links.
    pub fn loss(mut self, p: f64) -> Self {
        self.spec.loss = Some(p);
        self
    }
    /// Which links: a random pair (default), a random node's links, or all.
    pub fn scope(mut self, s: DegradeScope) -> Self {
        self.spec.scope = s;
        self
    }
    /// Adds the stream and returns the chaos builder.
    pub fn apply(self) -> ChaosBuilder {
        self.parent.stream(ChaosStream::Degrade(self.spec))
    }
}

/// `c.pause()...apply()`.
#[derive(Debug, Clone)]
pub struct PauseBuilder {
    parent: ChaosBuilder,
    pub spec: PauseSpec,
}
delay_setters!(PauseBuilder);
duration_setters!(PauseBuilder);

targets_setters!(
    PauseBuilder,
    "Only these nodes are paused.",
    "These nodes are never paused."
);

impl PauseBuilder {
    /// Adds the stream and returns the chaos builder.
    pub fn apply(self) -> ChaosBuilder {
        self.parent.stream(ChaosStream::Pause(self.spec))
    }
}

/// `c.clock_skew()...apply()`.
#[derive(Debug, Clone)]
pub struct ClockBuilder {
    parent: ChaosBuilder,
    pub spec: ClockSpec,
}
delay_setters!(ClockBuilder);
duration_setters!(ClockBuilder);

targets_setters!(
    ClockBuilder,
    "Only these nodes' clocks are skewed.",
    "These nodes' clocks are never skewed."
);

impl ClockBuilder {
    /// The largest offset either way.
    pub fn max(mut self, d: Duration) -> Self {
        self.spec.max = d;
        self
    }
    /// Adds the stream and returns the chaos builder.
    pub fn apply(self) -> ChaosBuilder {
        self.parent.stream(ChaosStream::Clock(self.spec))
    }
}

/// `c.schedule().at(..)...apply()`: a generic, fixed timeline.
#[derive(Debug, Clone)]
pub struct ScheduleBuilder {
    parent: ChaosBuilder,
    pub steps: Vec<ScheduledStep>,
}

impl ScheduleBuilder {
    /// Does `action` at `at` after the run starts.
    pub fn at(mut self, at: Duration, action: ChaosAction) -> Self {
        self.steps.push(ScheduledStep {
            at,
            action,
            hold: None,
        });
        self
    }
    /// Does `action` at `at` and reverts it `hold` later.
    pub fn at_for(mut self, at: Duration, action: ChaosAction, hold: Duration) -> Self {
        self.steps.push(ScheduledStep {
            at,
            action,
            hold: Some(hold),
        });
        self
    }
    /// Adds the stream and returns the chaos builder.
    pub fn apply(self) -> ChaosBuilder {
        self.parent.stream(ChaosStream::Schedule(self.steps))
    }
}
