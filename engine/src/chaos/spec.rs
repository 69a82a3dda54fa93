//! What a chaos workload should do, as the seed's builder writes it:
//! `chaos_with(|c| c.restart().min_delay(..).max_delay(..).target_cooldown(..).apply())`.
//!
//! Each `apply()` adds one *stream* of faults to the [`ChaosBuilder`]; streams run
//! concurrently, each a sequence of events separated by a random delay drawn
//! from the run seed (see [`super::plan`]).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::deadline::Deadline;
use crate::links::LinkSel;

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

/// One concrete fault action, as planned and logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChaosAction {
    /// Graceful restart.
    Restart(usize),
    /// Stop gracefully (reverted by a start).
    Stop(usize),
    /// SIGKILL (reverted by a start).
    Kill(usize),
    /// Start a stopped node.
    Start(usize),
    /// SIGSTOP (reverted by a resume).
    Pause(usize),
    /// SIGCONT.
    Resume(usize),
    /// Split the network (reverted by reverting the fault).
    Partition(Vec<Vec<usize>>),
    /// Cut one node off.
    Isolate(usize),
    /// Delay frames.
    Latency {
        links: LinkSel,
        delay: Duration,
        jitter: Duration,
    },
    /// Drop frames.
    Loss { links: LinkSel, probability: f64 },
    /// Revert every network fault.
    Heal,
    /// Set a node's clock off wall time (ms; reverted by setting it back to 0).
    Clock { node: usize, offset_ms: i64 },
    /// Make a node honest again.
    Honest(usize),
    /// Make a node lie (reverted by making it honest).
    Byzantine {
        node: usize,
        behaviour: crate::deploy::byzantine::Behaviour,
    },
    /// Fill a node's disk (reverted by giving it room again).
    DiskFull(usize),
    /// Hold back a node's last `blocks` writes (reverted by killing the node, which loses
    /// them, starting it again and making its writes durable).
    LoseUnflushed { node: usize, blocks: u64 },
}

impl ChaosAction {
    /// The nodes the action names (a partition, every node of its groups; a fault on every
    /// link or a heal, none).
    pub fn nodes(&self) -> std::collections::BTreeSet<usize> {
        let links = |l: &LinkSel| match l {
            LinkSel::All => Default::default(),
            LinkSel::Link(a, b) | LinkSel::Both(a, b) => [*a, *b].into(),
            LinkSel::Node(i) => [*i].into(),
        };
        match self {
            ChaosAction::Restart(i)
            | ChaosAction::Stop(i)
            | ChaosAction::Kill(i)
            | ChaosAction::Start(i)
            | ChaosAction::Pause(i)
            | ChaosAction::Resume(i)
            | ChaosAction::Isolate(i)
            | ChaosAction::Honest(i)
            | ChaosAction::Clock { node: i, .. }
            | ChaosAction::Byzantine { node: i, .. }
            | ChaosAction::DiskFull(i)
            | ChaosAction::LoseUnflushed { node: i, .. } => [*i].into(),
            ChaosAction::Partition(groups) => groups.iter().flatten().copied().collect(),
            ChaosAction::Latency { links: l, .. } | ChaosAction::Loss { links: l, .. } => links(l),
            ChaosAction::Heal => Default::default(),
        }
    }

    /// The node a node-level action is about.
    pub fn node(&self) -> Option<usize> {
        match self {
            ChaosAction::Restart(i)
            | ChaosAction::Stop(i)
            | ChaosAction::Kill(i)
            | ChaosAction::Start(i)
            | ChaosAction::Pause(i)
            | ChaosAction::Resume(i)
            | ChaosAction::Honest(i) => Some(*i),
            ChaosAction::Clock { node, .. }
            | ChaosAction::Byzantine { node, .. }
            | ChaosAction::DiskFull(node)
            | ChaosAction::LoseUnflushed { node, .. } => Some(*node),
            _ => None,
        }
    }

    /// Whether the action is a network fault (lands in the fault log).
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            ChaosAction::Partition(_)
                | ChaosAction::Isolate(_)
                | ChaosAction::Latency { .. }
                | ChaosAction::Loss { .. }
                | ChaosAction::Heal
        )
    }
}

impl fmt::Display for ChaosAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChaosAction::Restart(i) => write!(f, "restart node-{i}"),
            ChaosAction::Stop(i) => write!(f, "stop node-{i}"),
            ChaosAction::Kill(i) => write!(f, "kill node-{i}"),
            ChaosAction::Start(i) => write!(f, "start node-{i}"),
            ChaosAction::Pause(i) => write!(f, "pause node-{i}"),
            ChaosAction::Resume(i) => write!(f, "resume node-{i}"),
            ChaosAction::Partition(g) => write!(f, "partition {g:?}"),
            ChaosAction::Isolate(i) => write!(f, "isolate node-{i}"),
            ChaosAction::Latency {
                links,
                delay,
                jitter,
            } => {
                write!(f, "latency {}", humantime::format_duration(*delay))?;
                if !jitter.is_zero() {
                    write!(f, " ±{}", humantime::format_duration(*jitter))?;
                }
                write!(f, " on {links}")
            }
            ChaosAction::Loss { links, probability } => {
                write!(f, "loss {probability} on {links}")
            }
            ChaosAction::Heal => write!(f, "heal"),
            ChaosAction::Clock { node, offset_ms } => {
                write!(f, "clock node-{node} {offset_ms:+}ms")
            }
            ChaosAction::Byzantine { node, behaviour } => {
                write!(f, "byzantine node-{node} {behaviour}")
            }
            ChaosAction::Honest(i) => write!(f, "byzantine node-{i} honest"),
            ChaosAction::DiskFull(node) => write!(f, "disk node-{node} full"),
            ChaosAction::LoseUnflushed { node, blocks } => {
                write!(f, "disk node-{node} unflushed {blocks}")
            }
        }
    }
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

    /// Random restarts (defaults: every 5-10 s, cooldown 15 s, graceful, all nodes).
    pub fn restart(self) -> RestartBuilder {
        RestartBuilder {
            parent: self,
            spec: RestartSpec {
                delay: Delay {
                    min: Duration::from_secs(5),
                    max: Duration::from_secs(10),
                },
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
                delay: Delay {
                    min: Duration::from_secs(5),
                    max: Duration::from_secs(10),
                },
                duration: Delay {
                    min: Duration::from_secs(2),
                    max: Duration::from_secs(5),
                },
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
                delay: Delay {
                    min: Duration::from_secs(5),
                    max: Duration::from_secs(10),
                },
                duration: Delay {
                    min: Duration::from_secs(2),
                    max: Duration::from_secs(5),
                },
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
                delay: Delay {
                    min: Duration::from_secs(5),
                    max: Duration::from_secs(10),
                },
                duration: Delay {
                    min: Duration::from_secs(2),
                    max: Duration::from_secs(5),
                },
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
                delay: Delay {
                    min: Duration::from_secs(5),
                    max: Duration::from_secs(10),
                },
                duration: Delay {
                    min: Duration::from_secs(1),
                    max: Duration::from_secs(3),
                },
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

    /// Checks every stream; the error names the field and value.
    pub fn validate(&self) -> Result<(), ChaosError> {
        if self.name.trim().is_empty() {
            return Err(ChaosError::new(
                "name",
                "chaos name = \"\": a chaos workload needs a name",
            ));
        }
        if self.streams.is_empty() {
            return Err(ChaosError::new(
                "chaos_with",
                "chaos_with: no fault stream configured (call e.g. c.restart()...apply())",
            ));
        }
        for s in &self.streams {
            match s {
                ChaosStream::Restart(r) => {
                    check_delay("restart", "min_delay", "max_delay", r.delay)?;
                    check_targets("restart", &r.targets)?;
                    if r.catch_up_within.is_some_and(|d| d.is_zero()) {
                        return Err(ChaosError::new(
                            "catch_up_within",
                            "restart catch_up_within = 0: give the node time to catch up",
                        ));
                    }
                }
                ChaosStream::Partition(p) => {
                    check_delay("partition", "min_delay", "max_delay", p.delay)?;
                    check_delay("partition", "min_duration", "max_duration", p.duration)?;
                    if let Some(g) = &p.groups {
                        if g.iter().filter(|g| !g.is_empty()).count() < 1 {
                            return Err(ChaosError::new(
                                "groups",
                                format!(
                                    "partition groups = {g:?}: name at least one non-empty group"
                                ),
                            ));
                        }
                        let mut seen = std::collections::BTreeSet::new();
                        for &n in g.iter().flatten() {
                            if !seen.insert(n) {
                                return Err(ChaosError::new(
                                    "groups",
                                    format!("partition groups = {g:?}: node {n} is in two groups"),
                                ));
                            }
                        }
                    }
                }
                ChaosStream::Degrade(d) => {
                    check_delay("degrade", "min_delay", "max_delay", d.delay)?;
                    check_delay("degrade", "min_duration", "max_duration", d.duration)?;
                    if d.latency.is_none() && d.loss.is_none() {
                        return Err(ChaosError::new(
                            "degrade",
                            "degrade: set latency(..) and/or loss(..)",
                        ));
                    }
                    if let Some(p) = d.loss
                        && !(p.is_finite() && (0.0..=1.0).contains(&p))
                    {
                        return Err(ChaosError::new(
                            "loss",
                            format!("degrade loss = {p}: a probability must be in [0, 1]"),
                        ));
                    }
                    if let Some(l) = d.latency
                        && d.jitter > l
                    {
                        return Err(ChaosError::new(
                            "jitter",
                            format!(
                                "degrade jitter = {} exceeds latency = {}",
                                humantime::format_duration(d.jitter),
                                humantime::format_duration(l)
                            ),
                        ));
                    }
                }
                ChaosStream::Pause(p) => {
                    check_delay("pause", "min_delay", "max_delay", p.delay)?;
                    check_delay("pause", "min_duration", "max_duration", p.duration)?;
                    check_targets("pause", &p.targets)?;
                }
                ChaosStream::Disk(d) => d.check()?,
                ChaosStream::Clock(c) => {
                    check_delay("clock_skew", "min_delay", "max_delay", c.delay)?;
                    check_delay("clock_skew", "min_duration", "max_duration", c.duration)?;
                    check_targets("clock_skew", &c.targets)?;
                    if c.max < Duration::from_millis(4) || c.max > Duration::from_secs(86_400) {
                        return Err(ChaosError::new(
                            "max",
                            format!(
                                "clock_skew max = {}: between 4ms and a day",
                                humantime::format_duration(c.max)
                            ),
                        ));
                    }
                }
                ChaosStream::Byzantine(b) => b.validate()?,
                ChaosStream::Schedule(steps) => {
                    if steps.is_empty() {
                        return Err(ChaosError::new(
                            "schedule",
                            "schedule: no step (call .at(\"5s\", action))",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn fmt_d(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(super) fn check_delay(kind: &str, lo: &str, hi: &str, d: Delay) -> Result<(), ChaosError> {
    if d.max < d.min {
        return Err(ChaosError::new(
            hi,
            format!(
                "{kind} {hi} = {} is below {lo} = {}",
                fmt_d(d.max),
                fmt_d(d.min)
            ),
        ));
    }
    if lo == "min_delay" && d.max.is_zero() {
        return Err(ChaosError::new(
            hi,
            format!("{kind} {hi} = 0s: faults need a gap between them"),
        ));
    }
    Ok(())
}

pub(super) fn check_targets(kind: &str, t: &Targets) -> Result<(), ChaosError> {
    if let Targets::Only(v) = t
        && v.is_empty()
    {
        return Err(ChaosError::new(
            "targets",
            format!(
                "{kind} targets = []: name at least one node (include_nodes(false) leaves none)"
            ),
        ));
    }
    Ok(())
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

pub(super) use {delay_setters, duration_setters};

/// `c.restart()...apply()`.
#[derive(Debug, Clone)]
pub struct RestartBuilder {
    parent: ChaosBuilder,
    pub spec: RestartSpec,
}
delay_setters!(RestartBuilder);

impl RestartBuilder {
    /// A node is not restarted again within `d` of its last restart.
    pub fn target_cooldown(mut self, d: Duration) -> Self {
        self.spec.target_cooldown = d;
        self
    }
    /// Only these nodes are restarted.
    pub fn targets(mut self, nodes: Vec<usize>) -> Self {
        self.spec.targets = Targets::Only(nodes);
        self
    }
    /// These nodes are never restarted.
    pub fn exclude(mut self, nodes: Vec<usize>) -> Self {
        self.spec.targets = Targets::Except(nodes);
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

impl PauseBuilder {
    /// Only these nodes are paused.
    pub fn targets(mut self, nodes: Vec<usize>) -> Self {
        self.spec.targets = Targets::Only(nodes);
        self
    }
    /// These nodes are never paused.
    pub fn exclude(mut self, nodes: Vec<usize>) -> Self {
        self.spec.targets = Targets::Except(nodes);
        self
    }
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

impl ClockBuilder {
    /// The largest offset either way.
    pub fn max(mut self, d: Duration) -> Self {
        self.spec.max = d;
        self
    }
    /// Only these nodes' clocks are skewed.
    pub fn targets(mut self, nodes: Vec<usize>) -> Self {
        self.spec.targets = Targets::Only(nodes);
        self
    }
    /// These nodes' clocks are never skewed.
    pub fn exclude(mut self, nodes: Vec<usize>) -> Self {
        self.spec.targets = Targets::Except(nodes);
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
