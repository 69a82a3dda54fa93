//! The shape of a testnet: how many nodes, who dials whom, funded wallets,
//! consensus parameters and config overrides. Everything is validated in
//! [`TopologyBuilder::build`], before any process starts, so a typo costs
//! milliseconds rather than a deploy.

use std::collections::BTreeMap;
use std::time::Duration;

mod builder;
mod shape;

pub use builder::TopologyBuilder;

/// How nodes are connected. Each undirected edge is dialled by its lower index.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkShape {
    /// Every node connects to node 0 (the hub). The default.
    Star,
    /// Every pair of nodes is connected.
    Full,
    /// 0 - 1 - 2 - ... - (n-1).
    Line,
    /// A line whose ends are joined.
    Ring,
    /// A connected random graph where every node has about `degree` neighbours,
    /// drawn from the topology seed so `--seed` replays it.
    Random { degree: usize },
    /// Exactly these undirected edges.
    Edges(Vec<(usize, usize)>),
}

/// One config patch: a dotted path into the node config and the value to put there.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigOverride {
    /// Dotted path such as `consensus.active_slot_coeff` or `testing.halt_at_height`.
    pub path: String,
    pub value: serde_yaml::Value,
}

/// Consensus parameters shared by every node.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsensusSettings {
    pub slot_duration: Duration,
    pub active_slot_coeff: f64,
    pub security_param: u64,
}

impl ConsensusSettings {
    /// Expected number of blocks over `d` (one block per slot with probability f).
    pub fn expected_blocks(&self, d: Duration) -> f64 {
        d.as_secs_f64() / self.slot_duration.as_secs_f64() * self.active_slot_coeff
    }
}

impl Default for ConsensusSettings {
    fn default() -> Self {
        Self {
            slot_duration: Duration::from_secs(1),
            active_slot_coeff: 0.8,
            security_param: 10,
        }
    }
}

/// What is specific to one node of the topology.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub index: usize,
    /// Leader stake; 0 makes a non-producing follower.
    pub stake: u64,
    /// Overrides for this node only (applied after the global ones).
    pub overrides: Vec<ConfigOverride>,
    /// Free-form labels (reports, selection by scripts).
    pub labels: BTreeMap<String, String>,
    /// The node starts with its clock this far off wall time (ms; negative: behind): through
    /// the reference node's config, or libfaketime for another binary
    /// ([`crate::nodekind::NodeKind::start_skew`]).
    pub start_clock_skew_ms: Option<i64>,
}

/// A validated testnet shape. Built by [`TopologyBuilder::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub nodes: Vec<NodeSpec>,
    /// Undirected edges `(a, b)` with `a < b`, sorted; `a` dials `b`.
    pub edges: Vec<(usize, usize)>,
    /// Number of funded wallets in genesis.
    pub wallets: usize,
    /// Balance of every funded wallet.
    pub wallet_balance: u64,
    pub params: ConsensusSettings,
    /// Overrides applied to every node.
    pub overrides: Vec<ConfigOverride>,
    pub shape: NetworkShape,
    /// Seed of everything random in the testnet (keys, random shapes).
    pub seed: u64,
    /// Staked genesis leaders reserved for nodes added at run time.
    pub reserved_joiners: Vec<u64>,
    /// API dialect the nodes serve, where the node kind lets the topology choose it
    /// (the reference node serves both); None: the kind's own (detected for a real node).
    pub api_dialect: Option<crate::client::Dialect>,
}

impl Topology {
    /// Number of nodes at deploy time.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of neighbours of node `i` (the readiness rule waits for this many peers).
    pub fn degree(&self, i: usize) -> usize {
        self.edges
            .iter()
            .filter(|(a, b)| *a == i || *b == i)
            .count()
    }

    /// Neighbours of node `i`, sorted.
    pub fn neighbours(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .edges
            .iter()
            .filter_map(|&(a, b)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// The peers node `i` dials itself (neighbours with a higher index).
    pub fn dialled_by(&self, i: usize) -> Vec<usize> {
        self.edges
            .iter()
            .filter(|(a, _)| *a == i)
            .map(|&(_, b)| b)
            .collect()
    }

    /// Overrides for node `i`: the global ones, then its own.
    pub fn overrides_for(&self, i: usize) -> Vec<ConfigOverride> {
        let mut v = self.overrides.clone();
        if let Some(n) = self.nodes.get(i) {
            v.extend(n.overrides.iter().cloned());
        }
        v
    }

    /// Human name of node `i`, used in every message.
    pub fn node_name(i: usize) -> String {
        format!("node-{i}")
    }
}

/// Most nodes a topology may have (deployed at start plus reserved joiners). The local
/// deployer may allow fewer: it refuses a testnet whose file descriptors exceed the limit
/// (see [`crate::deploy::local::fds`]).
pub const MAX_NODES: usize = 1_000;
/// Most funded wallets: every wallet is an ed25519 key derived from the seed and an account in
/// every node's genesis, so deploying 100,000 takes seconds and each config grows by ~10 MB.
pub const MAX_WALLETS: usize = 100_000;
/// Most undirected edges (a full network of 447 nodes); with the link layer each edge is a
/// proxy with its own listener and connections.
pub const MAX_EDGES: usize = 100_000;

/// Why a topology is invalid. The message names the field and its value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TopologyError {
    /// The builder field at fault (`nodes`, `network_random`, `with_override`, ...).
    pub field: String,
    pub message: String,
}

impl TopologyError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}
