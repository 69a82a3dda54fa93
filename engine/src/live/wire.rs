//! What travels between a supervisor and the processes attached to it: serde mirrors of the
//! engine's topology and fault types (which are built for in-process use and carry no
//! `Deserialize`), and the snapshot of a testnet the control API returns.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::deploy::{Capability, NodeState};
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkId, LinkSel};
use crate::topology::{ConfigOverride, ConsensusSettings, NetworkShape, NodeSpec, Topology};

/// A [`Topology`] as JSON: the attached side needs it (`Testnet::topology`, `:save`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyDoc {
    /// Per node: stake, labels and overrides.
    pub nodes: Vec<NodeDoc>,
    /// Undirected edges, `a < b`.
    pub edges: Vec<(usize, usize)>,
    /// Funded wallets in genesis.
    pub wallets: usize,
    /// Balance of each funded wallet.
    pub wallet_balance: u64,
    /// Slot duration in milliseconds.
    pub slot_ms: u64,
    /// Active slot coefficient `f`.
    pub active_slot_coeff: f64,
    /// Security parameter `k`.
    pub security_param: u64,
    /// Overrides applied to every node.
    pub overrides: Vec<OverrideDoc>,
    /// `star`, `full`, `line`, `ring`, `random:<degree>` or `edges`.
    pub shape: String,
    /// Seed of keys and random shapes.
    pub seed: u64,
    /// Stakes of the staked joiner slots.
    pub reserved_joiners: Vec<u64>,
    /// API dialect chosen by the topology.
    #[serde(default)]
    pub api_dialect: Option<crate::client::Dialect>,
}

/// One node of a [`TopologyDoc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDoc {
    /// Leader stake (0: follower).
    pub stake: u64,
    /// Overrides of this node only.
    pub overrides: Vec<OverrideDoc>,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
    /// Clock skew at start, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_clock_skew_ms: Option<i64>,
}

/// One config override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideDoc {
    /// Dotted path into the node config.
    pub path: String,
    /// The value put there.
    pub value: serde_yaml::Value,
}

impl From<&ConfigOverride> for OverrideDoc {
    fn from(o: &ConfigOverride) -> Self {
        Self {
            path: o.path.clone(),
            value: o.value.clone(),
        }
    }
}

impl From<&OverrideDoc> for ConfigOverride {
    fn from(o: &OverrideDoc) -> Self {
        Self {
            path: o.path.clone(),
            value: o.value.clone(),
        }
    }
}

impl From<&Topology> for TopologyDoc {
    fn from(t: &Topology) -> Self {
        Self {
            nodes: t
                .nodes
                .iter()
                .map(|n| NodeDoc {
                    stake: n.stake,
                    overrides: n.overrides.iter().map(Into::into).collect(),
                    labels: n.labels.clone(),
                    start_clock_skew_ms: n.start_clock_skew_ms,
                })
                .collect(),
            edges: t.edges.clone(),
            wallets: t.wallets,
            wallet_balance: t.wallet_balance,
            slot_ms: t.params.slot_duration.as_millis() as u64,
            active_slot_coeff: t.params.active_slot_coeff,
            security_param: t.params.security_param,
            overrides: t.overrides.iter().map(Into::into).collect(),
            shape: match &t.shape {
                NetworkShape::Star => "star".to_owned(),
                NetworkShape::Full => "full".to_owned(),
                NetworkShape::Line => "line".to_owned(),
                NetworkShape::Ring => "ring".to_owned(),
                NetworkShape::Random { degree } => format!("random:{degree}"),
                NetworkShape::Edges(_) => "edges".to_owned(),
            },
            seed: t.seed,
            reserved_joiners: t.reserved_joiners.clone(),
            api_dialect: t.api_dialect,
        }
    }
}

impl From<&TopologyDoc> for Topology {
    fn from(d: &TopologyDoc) -> Self {
        let shape = match d.shape.as_str() {
            "star" => NetworkShape::Star,
            "full" => NetworkShape::Full,
            "line" => NetworkShape::Line,
            "ring" => NetworkShape::Ring,
            s => match s
                .strip_prefix("random:")
                .and_then(|k| k.parse::<usize>().ok())
            {
                Some(degree) => NetworkShape::Random { degree },
                None => NetworkShape::Edges(d.edges.clone()),
            },
        };
        Topology {
            nodes: d
                .nodes
                .iter()
                .enumerate()
                .map(|(index, n)| NodeSpec {
                    index,
                    stake: n.stake,
                    overrides: n.overrides.iter().map(Into::into).collect(),
                    labels: n.labels.clone(),
                    start_clock_skew_ms: n.start_clock_skew_ms,
                })
                .collect(),
            edges: d.edges.clone(),
            wallets: d.wallets,
            wallet_balance: d.wallet_balance,
            params: ConsensusSettings {
                slot_duration: Duration::from_millis(d.slot_ms),
                active_slot_coeff: d.active_slot_coeff,
                security_param: d.security_param,
            },
            overrides: d.overrides.iter().map(Into::into).collect(),
            shape,
            seed: d.seed,
            reserved_joiners: d.reserved_joiners.clone(),
            api_dialect: d.api_dialect,
        }
    }
}

/// A [`LinkSel`] on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkSelWire {
    /// Every link.
    All,
    /// One direction.
    Link { from: usize, to: usize },
    /// Both directions between two nodes.
    Both { a: usize, b: usize },
    /// Every link of a node.
    Node { node: usize },
}

impl From<&LinkSel> for LinkSelWire {
    fn from(s: &LinkSel) -> Self {
        match *s {
            LinkSel::All => Self::All,
            LinkSel::Link(from, to) => Self::Link { from, to },
            LinkSel::Both(a, b) => Self::Both { a, b },
            LinkSel::Node(node) => Self::Node { node },
        }
    }
}

impl From<&LinkSelWire> for LinkSel {
    fn from(s: &LinkSelWire) -> Self {
        match *s {
            LinkSelWire::All => Self::All,
            LinkSelWire::Link { from, to } => Self::Link(from, to),
            LinkSelWire::Both { a, b } => Self::Both(a, b),
            LinkSelWire::Node { node } => Self::Node(node),
        }
    }
}

/// A [`Fault`] on the wire (durations in microseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultWire {
    /// Groups that cannot reach each other.
    Partition { groups: Vec<Vec<usize>> },
    /// One node cut off from all.
    Isolate { node: usize },
    /// One direction dropped.
    Cut { from: usize, to: usize },
    /// Delay and jitter.
    Latency {
        links: LinkSelWire,
        delay_us: u64,
        jitter_us: u64,
    },
    /// Frame loss.
    Loss {
        links: LinkSelWire,
        probability: f64,
    },
    /// Throughput limit.
    Bandwidth {
        links: LinkSelWire,
        bytes_per_sec: u64,
    },
    /// Tampering with one message kind.
    Tamper {
        links: LinkSelWire,
        message: crate::links::MessageKind,
        action: crate::links::Tamper,
    },
}

impl From<&Fault> for FaultWire {
    fn from(f: &Fault) -> Self {
        match f {
            Fault::Partition(groups) => Self::Partition {
                groups: groups.clone(),
            },
            Fault::Isolate(node) => Self::Isolate { node: *node },
            Fault::Cut { from, to } => Self::Cut {
                from: *from,
                to: *to,
            },
            Fault::Latency {
                links,
                delay,
                jitter,
            } => Self::Latency {
                links: links.into(),
                delay_us: delay.as_micros() as u64,
                jitter_us: jitter.as_micros() as u64,
            },
            Fault::Loss { links, probability } => Self::Loss {
                links: links.into(),
                probability: *probability,
            },
            Fault::Bandwidth {
                links,
                bytes_per_sec,
            } => Self::Bandwidth {
                links: links.into(),
                bytes_per_sec: *bytes_per_sec,
            },
            Fault::Tamper {
                links,
                kind,
                action,
            } => Self::Tamper {
                links: links.into(),
                message: *kind,
                action: *action,
            },
        }
    }
}

impl From<&FaultWire> for Fault {
    fn from(f: &FaultWire) -> Self {
        match f {
            FaultWire::Partition { groups } => Fault::Partition(groups.clone()),
            FaultWire::Isolate { node } => Fault::Isolate(*node),
            FaultWire::Cut { from, to } => Fault::Cut {
                from: *from,
                to: *to,
            },
            FaultWire::Latency {
                links,
                delay_us,
                jitter_us,
            } => Fault::Latency {
                links: links.into(),
                delay: Duration::from_micros(*delay_us),
                jitter: Duration::from_micros(*jitter_us),
            },
            FaultWire::Loss { links, probability } => Fault::Loss {
                links: links.into(),
                probability: *probability,
            },
            FaultWire::Bandwidth {
                links,
                bytes_per_sec,
            } => Fault::Bandwidth {
                links: links.into(),
                bytes_per_sec: *bytes_per_sec,
            },
            FaultWire::Tamper {
                links,
                message,
                action,
            } => Fault::Tamper {
                links: links.into(),
                kind: *message,
                action: *action,
            },
        }
    }
}

/// A [`FaultRecord`] on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecordWire {
    /// Wall-clock time.
    pub at: SystemTime,
    /// Time since the link layer started.
    pub elapsed: Duration,
    /// Fault id.
    pub id: u64,
    /// The fault.
    pub fault: FaultWire,
    /// Directed links `(from, to)`.
    pub links: Vec<(usize, usize)>,
    /// Applied (false) or reverted (true).
    pub reverted: bool,
    /// Caller context.
    pub note: Option<String>,
}

impl From<&FaultRecord> for FaultRecordWire {
    fn from(r: &FaultRecord) -> Self {
        Self {
            at: r.at,
            elapsed: r.elapsed,
            id: r.id.0,
            fault: (&r.fault).into(),
            links: r.links.iter().map(|l| (l.from, l.to)).collect(),
            reverted: r.reverted,
            note: r.note.clone(),
        }
    }
}

impl From<&FaultRecordWire> for FaultRecord {
    fn from(r: &FaultRecordWire) -> Self {
        Self {
            at: r.at,
            elapsed: r.elapsed,
            id: FaultId(r.id),
            fault: (&r.fault).into(),
            links: r.links.iter().map(|&(a, b)| LinkId::new(a, b)).collect(),
            reverted: r.reverted,
            note: r.note.clone(),
        }
    }
}

/// An [`ActiveFault`] on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFaultWire {
    /// Fault id.
    pub id: u64,
    /// The fault.
    pub fault: FaultWire,
    /// Directed links it still covers.
    pub links: Vec<(usize, usize)>,
    /// When it was applied, since the link layer started.
    pub applied_after: Duration,
}

impl From<&ActiveFault> for ActiveFaultWire {
    fn from(a: &ActiveFault) -> Self {
        Self {
            id: a.id.0,
            fault: (&a.fault).into(),
            links: a.links.iter().map(|l| (l.from, l.to)).collect(),
            applied_after: a.applied_after,
        }
    }
}

impl From<&ActiveFaultWire> for ActiveFault {
    fn from(a: &ActiveFaultWire) -> Self {
        Self {
            id: FaultId(a.id),
            fault: (&a.fault).into(),
            links: a.links.iter().map(|&(x, y)| LinkId::new(x, y)).collect(),
            applied_after: a.applied_after,
        }
    }
}

/// One node as the control API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Index.
    pub index: usize,
    /// Base URL of its HTTP API.
    pub api_url: String,
    /// Base URL of its testing surface, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testing_url: Option<String>,
    /// Its API dialect, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<crate::client::Dialect>,
    /// Lifecycle state.
    pub state: NodeStateWire,
}

/// [`NodeState`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStateWire {
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// Stopped on request.
    Stopped,
    /// Exited on its own.
    Exited,
}

impl From<NodeState> for NodeStateWire {
    fn from(s: NodeState) -> Self {
        match s {
            NodeState::Running => Self::Running,
            NodeState::Paused => Self::Paused,
            NodeState::Stopped => Self::Stopped,
            NodeState::Exited => Self::Exited,
        }
    }
}

impl From<NodeStateWire> for NodeState {
    fn from(s: NodeStateWire) -> Self {
        match s {
            NodeStateWire::Running => Self::Running,
            NodeStateWire::Paused => Self::Paused,
            NodeStateWire::Stopped => Self::Stopped,
            NodeStateWire::Exited => Self::Exited,
        }
    }
}

/// The control API's `GET /state`: everything an attached process needs to act like the
/// supervisor's own handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSnapshot {
    /// Run id labelling every resource.
    pub run_id: String,
    /// Deployer name.
    pub deployer: String,
    /// Nodes, by index.
    pub nodes: Vec<NodeEntry>,
    /// Where the nodes (and monitoring) are; each renders as its `TESTNET_ENDPOINTS` line.
    #[serde(deserialize_with = "crate::deploy::endpoints_or_old_lines")]
    pub endpoints: Vec<crate::deploy::Endpoint>,
    /// Node control and/or network faults.
    pub capabilities: Vec<String>,
    /// Every kind of control and fault the testnet can do (what the capabilities are made of).
    #[serde(default)]
    pub supports: Vec<crate::deploy::FaultKind>,
    /// The topology deployed.
    pub topology: TopologyDoc,
    /// Run dir of local backends.
    pub run_dir: Option<PathBuf>,
}

/// The name of a capability on the wire.
pub fn capability_name(c: Capability) -> &'static str {
    match c {
        Capability::NodeControl => "node_control",
        Capability::NetworkFaults => "network_faults",
    }
}

/// The capability a wire name stands for.
pub fn capability_from_name(s: &str) -> Option<Capability> {
    match s {
        "node_control" => Some(Capability::NodeControl),
        "network_faults" => Some(Capability::NetworkFaults),
        _ => None,
    }
}

/// `POST /nodes` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddNodeWire {
    /// Existing nodes it dials.
    pub peers: Vec<usize>,
    /// Stake (0: follower).
    pub stake: u64,
    /// Config overrides `(dotted path, value)`.
    #[serde(default)]
    pub overrides: Vec<(String, serde_yaml::Value)>,
}

/// `POST /faults` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyFaultWire {
    /// The fault.
    pub fault: FaultWire,
    /// Caller context.
    pub note: Option<String>,
}

/// Error body of every failed control call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorWire {
    /// Lowercase message, as the engine phrased it.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::TopologyBuilder;

    #[test]
    fn topology_round_trips() {
        let t = TopologyBuilder::new()
            .nodes(4)
            .network_ring()
            .wallets(2)
            .stake(1, 7)
            .slot_duration(Duration::from_millis(150))
            .with_override("testing.halt_at_height", serde_yaml::Value::from(30))
            .label(2, "role", "edge")
            .seed(9)
            .reserve_joiner(5)
            .build()
            .unwrap();
        let doc = TopologyDoc::from(&t);
        let json = serde_json::to_string(&doc).unwrap();
        let back: TopologyDoc = serde_json::from_str(&json).unwrap();
        assert_eq!(Topology::from(&back), t);
    }

    #[test]
    fn faults_round_trip() {
        for f in [
            Fault::Partition(vec![vec![0], vec![1, 2]]),
            Fault::Isolate(2),
            Fault::Cut { from: 1, to: 0 },
            Fault::Latency {
                links: LinkSel::Both(0, 1),
                delay: Duration::from_millis(30),
                jitter: Duration::from_micros(5),
            },
            Fault::Loss {
                links: LinkSel::Node(1),
                probability: 0.25,
            },
            Fault::Bandwidth {
                links: LinkSel::All,
                bytes_per_sec: 1000,
            },
        ] {
            let w = FaultWire::from(&f);
            let json = serde_json::to_string(&w).unwrap();
            let back: FaultWire = serde_json::from_str(&json).unwrap();
            assert_eq!(Fault::from(&back), f);
        }
    }
}
