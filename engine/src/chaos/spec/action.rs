//! [`ChaosAction`]: one concrete fault action, as planned and logged.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::links::LinkSel;

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
