//! [`TopologyBuilder`]: the seed's vocabulary, and [`TopologyBuilder::build`], which validates
//! every field before anything is deployed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    ConfigOverride, ConsensusSettings, MAX_NODES, MAX_WALLETS, NetworkShape, NodeSpec, Topology,
    TopologyError, shape,
};

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
        let edges = shape::edges_for(&self.shape, n, self.seed)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::MAX_EDGES;

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
