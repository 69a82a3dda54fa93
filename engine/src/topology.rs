//! The shape of a testnet: how many nodes, who dials whom, funded wallets,
//! consensus parameters and config overrides. Everything is validated in
//! [`TopologyBuilder::build`], before any process starts, so a typo costs
//! milliseconds rather than a deploy.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// Fluent builder of a [`Topology`], mirroring the seed's vocabulary.
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    nodes: usize,
    shape: NetworkShape,
    wallets: usize,
    wallet_balance: u64,
    params: ConsensusSettings,
    stakes: BTreeMap<usize, u64>,
    overrides: Vec<ConfigOverride>,
    node_overrides: Vec<(usize, ConfigOverride)>,
    labels: BTreeMap<usize, BTreeMap<String, String>>,
    start_skews: BTreeMap<usize, i64>,
    seed: u64,
    reserved_joiners: Vec<u64>,
    api_dialect: Option<crate::client::Dialect>,
}

impl Default for TopologyBuilder {
    fn default() -> Self {
        Self {
            nodes: 1,
            shape: NetworkShape::Star,
            wallets: 0,
            wallet_balance: 1_000_000_000_000,
            params: ConsensusSettings::default(),
            stakes: BTreeMap::new(),
            overrides: Vec::new(),
            node_overrides: Vec::new(),
            labels: BTreeMap::new(),
            start_skews: BTreeMap::new(),
            seed: 0,
            reserved_joiners: Vec::new(),
            api_dialect: None,
        }
    }
}

impl TopologyBuilder {
    /// One node, star shape, 1 s slots, f = 0.8, k = 10, no wallets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes deployed at start.
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// Every node connects to node 0 (the default).
    pub fn network_star(mut self) -> Self {
        self.shape = NetworkShape::Star;
        self
    }

    /// Every pair of nodes connects.
    pub fn network_full(mut self) -> Self {
        self.shape = NetworkShape::Full;
        self
    }

    /// Nodes in a line: 0 - 1 - ... - (n-1).
    pub fn network_line(mut self) -> Self {
        self.shape = NetworkShape::Line;
        self
    }

    /// Alias of [`Self::network_line`].
    pub fn network_chain(self) -> Self {
        self.network_line()
    }

    /// A line whose ends are joined.
    pub fn network_ring(mut self) -> Self {
        self.shape = NetworkShape::Ring;
        self
    }

    /// A connected random graph, about `degree` neighbours per node, from the seed.
    pub fn network_random(mut self, degree: usize) -> Self {
        self.shape = NetworkShape::Random { degree };
        self
    }

    /// Exactly these undirected edges.
    pub fn edges(mut self, edges: Vec<(usize, usize)>) -> Self {
        self.shape = NetworkShape::Edges(edges);
        self
    }

    /// The API dialect the nodes serve (the reference node serves `logos-2026-05` by
    /// default and `logos-2026-01` on request).
    pub fn api_dialect(mut self, dialect: crate::client::Dialect) -> Self {
        self.api_dialect = Some(dialect);
        self
    }

    /// Number of funded wallets in genesis.
    pub fn wallets(mut self, n: usize) -> Self {
        self.wallets = n;
        self
    }

    /// Balance of each funded wallet.
    pub fn wallet_balance(mut self, balance: u64) -> Self {
        self.wallet_balance = balance;
        self
    }

    /// Slot length (at least 100 ms).
    pub fn slot_duration(mut self, d: Duration) -> Self {
        self.params.slot_duration = d;
        self
    }

    /// Active-slot coefficient f in (0, 1].
    pub fn active_slot_coeff(mut self, f: f64) -> Self {
        self.params.active_slot_coeff = f;
        self
    }

    /// Security parameter k (LIB depth), at least 1.
    pub fn security_param(mut self, k: u64) -> Self {
        self.params.security_param = k;
        self
    }

    /// Leader stake of one node (default 1; 0 makes a follower).
    /// Starts `node` with its clock `offset_ms` off wall time (negative: behind); it stays so
    /// across restarts. The reference node takes it in its config; another node binary through
    /// libfaketime, where it is dynamically linked (refused before deploying otherwise).
    pub fn start_clock_skew(mut self, node: usize, offset_ms: i64) -> Self {
        self.start_skews.insert(node, offset_ms);
        self
    }

    pub fn stake(mut self, node: usize, stake: u64) -> Self {
        self.stakes.insert(node, stake);
        self
    }

    /// Patches every node's config at a dotted path.
    pub fn with_override(mut self, path: &str, value: serde_yaml::Value) -> Self {
        self.overrides.push(ConfigOverride {
            path: path.to_owned(),
            value,
        });
        self
    }

    /// Patches one node's config at a dotted path.
    pub fn with_node_override(mut self, node: usize, path: &str, value: serde_yaml::Value) -> Self {
        self.node_overrides.push((
            node,
            ConfigOverride {
                path: path.to_owned(),
                value,
            },
        ));
        self
    }

    /// Attaches a label to a node.
    pub fn label(mut self, node: usize, key: &str, value: &str) -> Self {
        self.labels
            .entry(node)
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Seed of keys and random shapes (the scenario sets it from its own seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Reserves a staked genesis leader for a node added at run time
    /// (`add_node` with a stake claims the next one). Reserved leaders do not
    /// produce until they join, so they lower the block rate until then.
    pub fn reserve_joiner(mut self, stake: u64) -> Self {
        self.reserved_joiners.push(stake);
        self
    }

    /// Current node count (bindings use it for messages).
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Current consensus settings.
    pub fn params(&self) -> &ConsensusSettings {
        &self.params
    }

    /// Validates everything and builds the topology.
    pub fn build(&self) -> Result<Topology, TopologyError> {
        let n = self.nodes;
        if n == 0 {
            return Err(TopologyError::new(
                "nodes",
                "nodes = 0: a testnet needs at least one node",
            ));
        }
        let joiners = self.reserved_joiners.len();
        if n.saturating_add(joiners) > MAX_NODES {
            let (field, what) = if n > MAX_NODES {
                ("nodes", format!("nodes = {n}"))
            } else {
                (
                    "reserve_joiner",
                    format!("nodes = {n} plus {joiners} reserved joiners"),
                )
            };
            return Err(TopologyError::new(
                field,
                format!("{what} exceeds the bound {MAX_NODES} (MAX_NODES)"),
            ));
        }
        if self.wallets > MAX_WALLETS {
            return Err(TopologyError::new(
                "wallets",
                format!(
                    "wallets = {} exceeds the bound {MAX_WALLETS} (MAX_WALLETS: each is a key \
                     derived from the seed and an account in every node's genesis)",
                    self.wallets
                ),
            ));
        }
        let p = &self.params;
        if p.slot_duration < Duration::from_millis(100) {
            return Err(TopologyError::new(
                "slot_duration",
                format!(
                    "slot_duration = {} is below 100ms",
                    humantime::format_duration(p.slot_duration)
                ),
            ));
        }
        if !(p.active_slot_coeff > 0.0 && p.active_slot_coeff <= 1.0) {
            return Err(TopologyError::new(
                "active_slot_coeff",
                format!(
                    "active_slot_coeff = {} must be in (0, 1]",
                    p.active_slot_coeff
                ),
            ));
        }
        if p.security_param == 0 {
            return Err(TopologyError::new(
                "security_param",
                "security_param = 0 must be at least 1",
            ));
        }
        for (&i, &s) in &self.stakes {
            if i >= n {
                return Err(TopologyError::new(
                    "stake",
                    format!("stake node = {i} is out of range: the topology has nodes = {n}"),
                ));
            }
            let _ = s;
        }
        let stake_of = |i: usize| self.stakes.get(&i).copied().unwrap_or(1);
        if (0..n).all(|i| stake_of(i) == 0) {
            return Err(TopologyError::new(
                "stake",
                "every node has stake = 0: no node could ever produce a block",
            ));
        }
        for (i, o) in &self.node_overrides {
            if *i >= n {
                return Err(TopologyError::new(
                    "with_node_override",
                    format!(
                        "with_node_override node = {i} (`{}`) is out of range: the topology has nodes = {n}",
                        o.path
                    ),
                ));
            }
        }
        for (&i, &ms) in &self.start_skews {
            if i >= n {
                return Err(TopologyError::new(
                    "start_clock_skew",
                    format!(
                        "start_clock_skew node = {i} is out of range: the topology has nodes = {n}"
                    ),
                ));
            }
            if ms.abs() > 86_400_000 {
                return Err(TopologyError::new(
                    "start_clock_skew",
                    format!(
                        "start_clock_skew node = {i} offset = {ms} ms: at most a day either way"
                    ),
                ));
            }
        }
        for &i in self.labels.keys() {
            if i >= n {
                return Err(TopologyError::new(
                    "label",
                    format!("label node = {i} is out of range: the topology has nodes = {n}"),
                ));
            }
        }
        let edges = self.edges_for(n)?;
        let nodes = (0..n)
            .map(|i| NodeSpec {
                index: i,
                stake: stake_of(i),
                overrides: self
                    .node_overrides
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, o)| o.clone())
                    .collect(),
                labels: self.labels.get(&i).cloned().unwrap_or_default(),
                start_clock_skew_ms: self.start_skews.get(&i).copied(),
            })
            .collect();
        let topology = Topology {
            nodes,
            edges,
            wallets: self.wallets,
            wallet_balance: self.wallet_balance,
            params: self.params.clone(),
            overrides: self.overrides.clone(),
            shape: self.shape.clone(),
            seed: self.seed,
            reserved_joiners: self.reserved_joiners.clone(),
            api_dialect: self.api_dialect,
        };
        // Overrides are checked against the reference node's config here (so `check` catches
        // a typo); another kind's config only exists once its generator or template ran, and
        // its overrides are checked against it then.
        if crate::nodekind::selected_kind_name() == "reference" {
            crate::nodekind::validate_overrides(&topology)?;
        }
        Ok(topology)
    }

    fn edges_for(&self, n: usize) -> Result<Vec<(usize, usize)>, TopologyError> {
        let mut set = BTreeSet::new();
        let mut add = |a: usize, b: usize| {
            if a != b {
                set.insert((a.min(b), a.max(b)));
            }
        };
        match &self.shape {
            NetworkShape::Star => (1..n).for_each(|i| add(0, i)),
            NetworkShape::Full => {
                let count = n * (n - 1) / 2;
                if count > MAX_EDGES {
                    return Err(TopologyError::new(
                        "network_full",
                        format!(
                            "network_full with nodes = {n} has {count} edges, which exceeds the \
                             bound {MAX_EDGES} (MAX_EDGES): use network_random(degree)"
                        ),
                    ));
                }
                for a in 0..n {
                    for b in a + 1..n {
                        add(a, b);
                    }
                }
            }
            NetworkShape::Line => (1..n).for_each(|i| add(i - 1, i)),
            NetworkShape::Ring => {
                (1..n).for_each(|i| add(i - 1, i));
                if n > 2 {
                    add(n - 1, 0);
                }
            }
            NetworkShape::Random { degree } => {
                let d = *degree;
                if n > 1 && d >= n {
                    return Err(TopologyError::new(
                        "network_random",
                        format!("network_random degree = {d} must be below nodes = {n}"),
                    ));
                }
                if n > 1 && d == 0 {
                    return Err(TopologyError::new(
                        "network_random",
                        format!("network_random degree = 0 leaves nodes = {n} unconnected"),
                    ));
                }
                let about = n.saturating_mul(d) / 2;
                if about > MAX_EDGES {
                    return Err(TopologyError::new(
                        "network_random",
                        format!(
                            "network_random degree = {d} with nodes = {n} makes about {about} \
                             edges, which exceeds the bound {MAX_EDGES} (MAX_EDGES)"
                        ),
                    ));
                }
                for e in random_graph(n, d, self.seed) {
                    add(e.0, e.1);
                }
            }
            NetworkShape::Edges(edges) => {
                if edges.len() > MAX_EDGES {
                    return Err(TopologyError::new(
                        "edges",
                        format!(
                            "edges = {} edges exceeds the bound {MAX_EDGES} (MAX_EDGES)",
                            edges.len()
                        ),
                    ));
                }
                for &(a, b) in edges {
                    if a >= n || b >= n {
                        return Err(TopologyError::new(
                            "edges",
                            format!(
                                "edges ({a}, {b}) names a node out of range: the topology has nodes = {n}"
                            ),
                        ));
                    }
                    if a == b {
                        return Err(TopologyError::new(
                            "edges",
                            format!("edges ({a}, {b}) connects a node to itself"),
                        ));
                    }
                    add(a, b);
                }
            }
        }
        let edges: Vec<_> = set.into_iter().collect();
        if let Some(lonely) = unreachable_from_zero(n, &edges) {
            return Err(TopologyError::new(
                "edges",
                format!(
                    "edges leave node {lonely} unconnected from node 0: the network must be connected"
                ),
            ));
        }
        Ok(edges)
    }
}

/// First node not reachable from node 0, if any.
fn unreachable_from_zero(n: usize, edges: &[(usize, usize)]) -> Option<usize> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut seen = vec![false; n];
    let mut stack = vec![0];
    seen[0] = true;
    while let Some(v) = stack.pop() {
        for &w in &adj[v] {
            if !seen[w] {
                seen[w] = true;
                stack.push(w);
            }
        }
    }
    seen.iter().position(|s| !s)
}

/// A connected graph where every node has about `degree` neighbours: a random
/// spanning tree (for connectivity) plus random extra edges between nodes that
/// are still below the degree.
fn random_graph(n: usize, degree: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7090_1097);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let mut deg = vec![0usize; n];
    let mut edges = BTreeSet::new();
    for k in 1..n {
        // attach to a random earlier node that still has room, if any
        let candidates: Vec<usize> = order[..k]
            .iter()
            .copied()
            .filter(|&v| deg[v] < degree)
            .collect();
        let pool = if candidates.is_empty() {
            order[..k].to_vec()
        } else {
            candidates
        };
        let u = pool[rng.random_range(0..pool.len())];
        let v = order[k];
        edges.insert((u.min(v), u.max(v)));
        deg[u] += 1;
        deg[v] += 1;
    }
    // the nodes still below the degree, in order (kept up to date rather than recomputed)
    let mut open: Vec<usize> = (0..n).filter(|&v| deg[v] < degree).collect();
    for _ in 0..n * degree * 4 {
        if open.len() < 2 {
            break;
        }
        let a = open[rng.random_range(0..open.len())];
        let b = open[rng.random_range(0..open.len())];
        if a == b || edges.contains(&(a.min(b), a.max(b))) {
            continue;
        }
        edges.insert((a.min(b), a.max(b)));
        deg[a] += 1;
        deg[b] += 1;
        for v in [a, b] {
            if deg[v] >= degree
                && let Ok(pos) = open.binary_search(&v)
            {
                open.remove(pos);
            }
        }
    }
    edges.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: TopologyBuilder) -> String {
        b.build().unwrap_err().to_string()
    }

    #[test]
    fn sizes_are_bounded_with_the_field_value_and_bound() {
        let e = TopologyBuilder::new()
            .nodes(MAX_NODES + 1)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "nodes");
        assert!(
            e.message.contains("nodes = 1001 exceeds the bound 1000"),
            "{e}"
        );
        let e = TopologyBuilder::new()
            .wallets(100_000_000)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "wallets");
        assert!(
            e.message
                .contains("wallets = 100000000 exceeds the bound 100000"),
            "{e}"
        );
        let e = TopologyBuilder::new()
            .nodes(1000)
            .network_full()
            .build()
            .unwrap_err();
        assert_eq!(e.field, "network_full");
        assert!(e.message.contains("499500 edges"), "{e}");
        let e = TopologyBuilder::new()
            .nodes(1000)
            .network_random(999)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "network_random");
        let many: Vec<_> = (0..MAX_EDGES + 1).map(|i| (0, 1 + i % 2)).collect();
        let e = TopologyBuilder::new()
            .nodes(3)
            .edges(many)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "edges");
        assert!(
            e.message.contains("100001 edges exceeds the bound 100000"),
            "{e}"
        );
        let mut b = TopologyBuilder::new().nodes(MAX_NODES);
        b = b.reserve_joiner(1);
        assert_eq!(b.build().unwrap_err().field, "reserve_joiner");
    }

    #[test]
    fn the_largest_shapes_build_quickly() {
        let t0 = std::time::Instant::now();
        let t = TopologyBuilder::new()
            .nodes(MAX_NODES)
            .network_random(100)
            .build()
            .unwrap();
        assert!(t.edges.len() <= MAX_EDGES);
        TopologyBuilder::new()
            .nodes(447)
            .network_full()
            .build()
            .unwrap();
        TopologyBuilder::new()
            .nodes(MAX_NODES)
            .wallets(MAX_WALLETS)
            .build()
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    }

    #[test]
    fn shapes_have_expected_edges() {
        let t = TopologyBuilder::new().nodes(4).build().unwrap();
        assert_eq!(t.edges, vec![(0, 1), (0, 2), (0, 3)]);
        assert_eq!(t.degree(0), 3);
        let t = TopologyBuilder::new()
            .nodes(4)
            .network_ring()
            .build()
            .unwrap();
        assert_eq!(t.edges.len(), 4);
        assert!((0..4).all(|i| t.degree(i) == 2));
        let t = TopologyBuilder::new()
            .nodes(4)
            .network_full()
            .build()
            .unwrap();
        assert_eq!(t.edges.len(), 6);
        let t = TopologyBuilder::new()
            .nodes(3)
            .network_chain()
            .build()
            .unwrap();
        assert_eq!(t.edges, vec![(0, 1), (1, 2)]);
        assert_eq!(t.dialled_by(0), vec![1]);
    }

    #[test]
    fn random_shape_is_connected_and_replays_from_seed() {
        let b = TopologyBuilder::new().nodes(12).network_random(3).seed(7);
        let t1 = b.build().unwrap();
        let t2 = b.build().unwrap();
        assert_eq!(t1.edges, t2.edges);
        assert!(unreachable_from_zero(12, &t1.edges).is_none());
        assert!((0..12).all(|i| t1.degree(i) >= 1 && t1.degree(i) <= 4));
        let t3 = b.clone().seed(8).build().unwrap();
        assert_ne!(t1.edges, t3.edges);
    }

    #[test]
    fn validation_names_field_and_value() {
        assert_eq!(
            err(TopologyBuilder::new().nodes(0)),
            "nodes = 0: a testnet needs at least one node"
        );
        assert_eq!(
            err(TopologyBuilder::new().nodes(4).network_random(5)),
            "network_random degree = 5 must be below nodes = 4"
        );
        assert_eq!(
            err(TopologyBuilder::new().slot_duration(Duration::from_millis(50))),
            "slot_duration = 50ms is below 100ms"
        );
        assert_eq!(
            err(TopologyBuilder::new().active_slot_coeff(1.5)),
            "active_slot_coeff = 1.5 must be in (0, 1]"
        );
        assert_eq!(
            err(TopologyBuilder::new().security_param(0)),
            "security_param = 0 must be at least 1"
        );
        assert!(err(TopologyBuilder::new().nodes(3).edges(vec![(0, 1)])).contains("node 2"));
        assert!(err(TopologyBuilder::new().nodes(2).edges(vec![(0, 5)])).contains("(0, 5)"));
        assert!(err(TopologyBuilder::new().nodes(2).stake(0, 0).stake(1, 0)).contains("stake = 0"));
        assert!(
            err(TopologyBuilder::new().nodes(2).with_node_override(
                3,
                "testing.halt_at_height",
                5.into()
            ))
            .contains("node = 3")
        );
    }

    #[test]
    fn override_keys_are_checked_against_the_node_config() {
        assert_eq!(
            err(TopologyBuilder::new().with_override("consensus.foo", 1.into())),
            "unknown override key `consensus.foo`: `consensus` has no `foo` (keys there: slot_duration_ms, active_slot_coeff, security_param)"
        );
        let e = err(TopologyBuilder::new().with_override("nope", 1.into()));
        assert!(
            e.starts_with("unknown override key `nope`: the top level has no `nope` (keys there: node, network, api,"),
            "{e}"
        );
        let e = err(TopologyBuilder::new().with_override("genesis.leaders.3.stake", 1.into()));
        assert!(
            e.contains("`genesis.leaders` has no `3` (a list of 1: indexes 0..1)"),
            "{e}"
        );
        let e = err(TopologyBuilder::new().with_override("testing.halt_at_height", "abc".into()));
        assert!(e.contains("testing.halt_at_height"), "{e}");
        TopologyBuilder::new()
            .nodes(2)
            .with_override("testing.drop_transactions", true.into())
            .with_node_override(1, "testing.halt_at_height", 5.into())
            .with_override("limits.max_block_txs", 10.into())
            .build()
            .unwrap();
    }
}
