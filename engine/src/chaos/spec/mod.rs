//! What a chaos workload should do, as the seed's builder writes it:
//! `chaos_with(|c| c.restart().min_delay(..).max_delay(..).target_cooldown(..).apply())`.
//!
//! Each `apply()` adds one *stream* of faults to the [`ChaosBuilder`]; streams run
//! concurrently, each a sequence of events separated by a random delay drawn
//! from the run seed (see [`super::plan`]).

use std::time::Duration;

use serde::Serialize;

use crate::deadline::Deadline;

mod action;
mod builders;
mod validate;

pub use action::ChaosAction;
pub use builders::{
    ClockBuilder, DegradeBuilder, PartitionBuilder, PauseBuilder, RestartBuilder, ScheduleBuilder,
};
pub(super) use builders::{delay_setters, duration_setters, targets_setters};
pub(super) use validate::{check_delay, check_targets};

/// Why a chaos configuration is invalid; the message names the field and its value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ChaosError {
    pub field: String,
    pub message: String,
}

impl ChaosError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Which nodes a node-level stream may pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub enum Targets {
    /// Every node of the topology.
    #[default]
    All,
    /// Only these nodes.
    Only(Vec<usize>),
    /// Every node but these (e.g. keep the hub of a star up).
    Except(Vec<usize>),
}

impl Targets {
    /// The candidate nodes among `0..nodes`.
    pub fn resolve(&self, nodes: usize) -> Vec<usize> {
        match self {
            Targets::All => (0..nodes).collect(),
            Targets::Only(v) => (0..nodes).filter(|i| v.contains(i)).collect(),
            Targets::Except(v) => (0..nodes).filter(|i| !v.contains(i)).collect(),
        }
    }
}

/// The random gap between two events of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delay {
    pub min: Duration,
    pub max: Duration,
}

impl Delay {
    /// A gap drawn in `[min, max]` seconds.
    pub(crate) const fn secs(min: u64, max: u64) -> Self {
        Self {
            min: Duration::from_secs(min),
            max: Duration::from_secs(max),
        }
    }
}

/// How a restart stream takes a node down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum RestartMode {
    /// SIGTERM, wait, start again (`Testnet::restart`).
    #[default]
    Graceful,
    /// SIGKILL: the node gets no chance to flush (`Testnet::kill`, then `start`).
    Kill,
}

/// Random restarts: the seed's `c.restart()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartSpec {
    pub delay: Delay,
    /// A node is not picked again within this time of its last restart.
    pub target_cooldown: Duration,
    pub targets: Targets,
    pub mode: RestartMode,
    /// Time between taking the node down and starting it (0: at once).
    pub down_for: Duration,
    /// After each restart the node must be back within `max_lag` of the
    /// highest node within this bound (time, slots or blocks), else the workload fails naming
    /// it.
    pub catch_up_within: Option<Deadline>,
}

/// Random network partitions: `c.partition()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionSpec {
    pub delay: Delay,
    /// How long each partition lasts (drawn in `[min, max]`).
    pub duration: Delay,
    /// Fixed groups; None: a random split into two non-empty groups.
    pub groups: Option<Vec<Vec<usize>>>,
}

/// Which links a degradation touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub enum DegradeScope {
    /// Both directions between two random nodes.
    #[default]
    RandomPair,
    /// Every link of one random node.
    RandomNode,
    /// Every link of the network.
    All,
}

/// Random link degradation (latency and/or loss): `c.degrade()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DegradeSpec {
    pub delay: Delay,
    pub duration: Delay,
    pub latency: Option<Duration>,
    pub jitter: Duration,
    pub loss: Option<f64>,
    pub scope: DegradeScope,
}

/// Random pauses (SIGSTOP, then SIGCONT after the duration): `c.pause()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PauseSpec {
    pub delay: Delay,
    pub duration: Delay,
    pub targets: Targets,
}

/// Random clock skews (a node's clock set up to `max` off wall time, then reset after the
/// duration): `c.clock_skew()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockSpec {
    pub delay: Delay,
    pub duration: Delay,
    /// Largest offset either way; each skew is drawn in `[-max, -max/4] ∪ [max/4, max]`.
    pub max: Duration,
    pub targets: Targets,
}

/// One step of a fixed schedule: at `at` after the run starts, do `action`,
/// and if `hold` is set, revert it that much later.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduledStep {
    pub at: Duration,
    pub action: ChaosAction,
    pub hold: Option<Duration>,
}

/// One stream of the chaos workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ChaosStream {
    Restart(RestartSpec),
    Partition(PartitionSpec),
    Degrade(DegradeSpec),
    Pause(PauseSpec),
    Clock(ClockSpec),
    Byzantine(super::byzantine::ByzantineSpec),
    Disk(super::disk::DiskSpec),
    /// A generic, fixed schedule.
    Schedule(Vec<ScheduledStep>),
}

impl ChaosStream {
    /// `restart`, `partition`, `degrade`, `pause`, `schedule`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChaosStream::Restart(_) => "restart",
            ChaosStream::Partition(_) => "partition",
            ChaosStream::Degrade(_) => "degrade",
            ChaosStream::Pause(_) => "pause",
            ChaosStream::Clock(_) => "clock_skew",
            ChaosStream::Byzantine(_) => "byzantine",
            ChaosStream::Disk(d) => d.kind(),
            ChaosStream::Schedule(_) => "schedule",
        }
    }

    /// Whether the stream needs node control / network faults from the deployer.
    pub fn needs(&self) -> (bool, bool) {
        match self {
            ChaosStream::Restart(_)
            | ChaosStream::Pause(_)
            | ChaosStream::Clock(_)
            | ChaosStream::Byzantine(_) => (true, false),
            ChaosStream::Disk(_) => (true, false),
            ChaosStream::Partition(_) | ChaosStream::Degrade(_) => (false, true),
            ChaosStream::Schedule(steps) => (
                steps.iter().any(|s| !s.action.is_network()),
                steps.iter().any(|s| s.action.is_network()),
            ),
        }
    }
}

/// The chaos workload being configured: a name and its streams.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChaosBuilder {
    pub name: String,
    pub streams: Vec<ChaosStream>,
    /// No new fault starts in the last part of the run (default 0), so that
    /// the network is whole for a while before the run ends.
    pub quiet_tail: Duration,
    /// What started this builder, handed back when a kind is applied: the seed's
    /// `builder.chaos().restart()...apply()` flow returns to the scenario builder it came from.
    #[serde(skip)]
    pub origin: Origin,
}

/// An opaque value carried along a builder chain (see [`ChaosBuilder::origin`]); it takes no
/// part in comparisons.
#[derive(Clone, Default)]
pub struct Origin(pub Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>);

impl PartialEq for Origin {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Origin(set)"
        } else {
            "Origin(none)"
        })
    }
}

impl Default for ChaosBuilder {
    fn default() -> Self {
        Self {
            name: "chaos".to_owned(),
            streams: Vec::new(),
            quiet_tail: Duration::ZERO,
            origin: Origin::default(),
        }
    }
}

impl ChaosBuilder {
    /// An empty chaos workload named `chaos`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the workload (in reports; several chaos workloads need distinct names).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts no new fault in the last `d` of the run.
    pub fn quiet_tail(mut self, d: Duration) -> Self {
        self.quiet_tail = d;
        self
    }

    /// Adds a stream directly.
    pub fn stream(mut self, s: ChaosStream) -> Self {
        self.streams.push(s);
        self
    }

    /// Whether any stream needs node control / network faults.
    pub fn needs(&self) -> (bool, bool) {
        self.streams.iter().fold((false, false), |(a, b), s| {
            let (x, y) = s.needs();
            (a || x, b || y)
        })
    }
}
