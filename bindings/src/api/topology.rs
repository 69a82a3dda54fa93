//! `TopologyBuilder()` and its fluent methods, as in the seed:
//!
//! ```rhai
//! let t = TopologyBuilder().network_ring().nodes(4).slot_duration("200ms")
//!     .with_node_override(2, "testing.halt_at_height", 5);
//! ```

use engine::topology::{Topology, TopologyBuilder};
use rhai::{Array, Dynamic, Engine, INT};

use super::values::{Res, amount, count, duration, edges, err, number, to_yaml};
use crate::doc::registry::{Area, Registrar};
use crate::script_fn;

/// Registers the topology builder.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Topology);
    reg.register_type::<TopologyBuilder>(
        "TopologyBuilder",
        &[
            " The shape of a testnet before it is validated: node count, connections, wallets,",
            " consensus parameters, stake and config overrides. Every method returns a new",
            " builder, so calls chain; `build()` validates, and deployers and",
            " `ScenarioBuilder::topology_with` accept the builder directly.",
            "",
            " ```rhai",
            " let t = TopologyBuilder().network_ring().nodes(4).slot_duration(\"200ms\");",
            " ```",
        ],
    );
    reg.register_type::<Topology>(
        "Topology",
        &[
            " A validated topology: what `TopologyBuilder().build()` returns and what a plan's",
            " `topology` property holds. Read-only.",
            "",
            " ```rhai",
            " let topology = TopologyBuilder().nodes(3).build();",
            " print(topology.node_count);",
            " ```",
        ],
    );
    script_fn!(reg,
        /// A topology builder with the defaults: one node, star network, 1 s slots, active slot
        /// coefficient 0.8, security parameter 10, no wallets.
        ///
        /// ```rhai
        /// let t = TopologyBuilder();
        /// print(t);
        /// ```
        fn TopologyBuilder() -> TopologyBuilder => TopologyBuilder::new
    );
    script_fn!(reg,
        /// Sets how many nodes are deployed at start (nodes added at run time come on top).
        /// At most 1000 with the reserved joiners (`build()` refuses more); the local deployer
        /// allows fewer when the file-descriptor limit is low and says how many.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(4);
        /// ```
        fn nodes(builder: TopologyBuilder, n: int) -> TopologyBuilder
        => |t: &mut TopologyBuilder, n: INT| -> Res<_> { Ok(t.clone().nodes(count(n, "nodes")?)) }
    );
    script_fn!(reg,
        /// Connects every node to node 0, the hub (the default shape).
        ///
        /// ```rhai
        /// let t = TopologyBuilder().network_star().nodes(5);
        /// ```
        fn network_star(builder: TopologyBuilder) -> TopologyBuilder
        => |t: &mut TopologyBuilder| t.clone().network_star()
    );
    script_fn!(reg,
        /// Connects every pair of nodes: the fastest propagation, for small testnets. At most
        /// 100,000 edges (447 nodes).
        ///
        /// ```rhai
        /// let t = TopologyBuilder().network_full().nodes(4);
        /// ```
        fn network_full(builder: TopologyBuilder) -> TopologyBuilder
        => |t: &mut TopologyBuilder| t.clone().network_full()
    );
    script_fn!(reg,
        /// Connects the nodes in a line, 0 - 1 - ... - (n-1): the longest propagation path.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().network_line().nodes(4);
        /// ```
        fn network_line(builder: TopologyBuilder) -> TopologyBuilder
        => |t: &mut TopologyBuilder| t.clone().network_line()
    );
    script_fn!(reg,
        /// Same as `network_line()`, under the seed framework's name.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().network_chain().nodes(4);
        /// ```
        fn network_chain(builder: TopologyBuilder) -> TopologyBuilder
        => |t: &mut TopologyBuilder| t.clone().network_chain()
    );
    script_fn!(reg,
        /// Connects the nodes in a line whose ends are joined: every node has two neighbours.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().network_ring().nodes(6);
        /// ```
        fn network_ring(builder: TopologyBuilder) -> TopologyBuilder
        => |t: &mut TopologyBuilder| t.clone().network_ring()
    );
    script_fn!(reg,
        /// A connected random graph where every node has about `degree` neighbours, drawn from
        /// the seed, so `--seed` replays the same graph. At most 100,000 edges (nodes × degree / 2).
        ///
        /// ```rhai
        /// let t = TopologyBuilder().network_random(3).nodes(10);
        /// ```
        fn network_random(builder: TopologyBuilder, degree: int) -> TopologyBuilder
        => |t: &mut TopologyBuilder, degree: INT| -> Res<_> {
            Ok(t.clone().network_random(count(degree, "network_random degree")?))
        }
    );
    script_fn!(reg,
        /// Exactly these undirected links, as pairs of node indices; `build()` rejects a graph
        /// that leaves a node unreachable. At most 100,000 edges.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(4).edges([[0, 1], [1, 2], [1, 3]]);
        /// ```
        fn edges(builder: TopologyBuilder, edges: Array) -> TopologyBuilder
        => |t: &mut TopologyBuilder, e: Array| -> Res<_> { Ok(t.clone().edges(edges(&e)?)) }
    );
    script_fn!(reg,
        /// Number of funded wallets in genesis; the transaction workload sends from them. At
        /// most 100,000 (each is a key derived from the seed and an account in every genesis).
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(2).wallets(20);
        /// ```
        fn wallets(builder: TopologyBuilder, n: int) -> TopologyBuilder
        => |t: &mut TopologyBuilder, n: INT| -> Res<_> { Ok(t.clone().wallets(count(n, "wallets")?)) }
    );
    script_fn!(reg,
        /// The API dialect the nodes serve and the framework speaks: `"logos-2026-05"` (the
        /// default) or `"logos-2026-01"` (flat info, `POST /storage/block` without ids or
        /// transaction hashes). Any other name is an error naming the known ones.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(2).api_dialect("logos-2026-01");
        /// ```
        fn api_dialect(builder: TopologyBuilder, dialect: String) -> TopologyBuilder
        => |t: &mut TopologyBuilder, d: &str| -> Res<_> {
            let d = d.parse::<engine::client::Dialect>().or_else(|e| err(format!("api_dialect: {e}")))?;
            Ok(t.clone().api_dialect(d))
        }
    );
    script_fn!(reg,
        /// Genesis balance of every funded wallet.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().wallets(10).wallet_balance(1000000);
        /// ```
        fn wallet_balance(builder: TopologyBuilder, balance: int) -> TopologyBuilder
        => |t: &mut TopologyBuilder, n: INT| -> Res<_> {
            Ok(t.clone().wallet_balance(amount(n, "wallet_balance")?))
        }
    );
    script_fn!(reg,
        /// Slot length (at least 100 ms). Short slots make short tests: 100-200 ms is plenty on
        /// a local testnet.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(3).slot_duration("200ms");
        /// ```
        fn slot_duration(builder: TopologyBuilder, slot: Duration) -> TopologyBuilder
        => |t: &mut TopologyBuilder, d: Dynamic| -> Res<_> {
            Ok(t.clone().slot_duration(duration(&d, "slot_duration")?))
        }
    );
    script_fn!(reg,
        /// Active slot coefficient f, in (0, 1]: the chance that a slot has a leader, so the
        /// expected block rate is f blocks per slot.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(3).active_slot_coeff(0.5);
        /// ```
        fn active_slot_coeff(builder: TopologyBuilder, f: Number) -> TopologyBuilder
        => |t: &mut TopologyBuilder, f: Dynamic| -> Res<_> {
            Ok(t.clone().active_slot_coeff(number(&f, "active_slot_coeff")?))
        }
    );
    script_fn!(reg,
        /// Security parameter k (at least 1): a block k deep is final (the LIB).
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(3).security_param(5);
        /// ```
        fn security_param(builder: TopologyBuilder, k: int) -> TopologyBuilder
        => |t: &mut TopologyBuilder, k: INT| -> Res<_> {
            Ok(t.clone().security_param(amount(k, "security_param")?))
        }
    );
    script_fn!(reg,
        /// Starts node `node` with its clock `offset` off wall time (`"+2s"`, `"-500ms"`, or
        /// seconds), and keeps it so across restarts. The reference node takes it in its config
        /// (`testing.clock_offset_ms`; `net.clock_skew` changes it at run time); another node
        /// binary (the `template` and `logos` kinds) runs under libfaketime, on local processes
        /// and on Docker, where the binary is dynamically linked against libc and libfaketime is
        /// installed (Debian: `faketime`). Where it cannot apply (a static binary, the library
        /// missing, Kubernetes, an image nomos-script did not build) the deploy is refused
        /// before anything starts, naming the binary and why.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(4).start_clock_skew(3, "+2s");
        /// ```
        fn start_clock_skew(builder: TopologyBuilder, node: int, offset: Dynamic) -> TopologyBuilder
        => |t: &mut TopologyBuilder, node: INT, offset: Dynamic| -> Res<_> {
            let ms = super::clock::offset_ms(&offset)?;
            Ok(t.clone().start_clock_skew(count(node, "start_clock_skew node")?, ms))
        }
    );
    script_fn!(reg,
        /// Leader stake of one node (default 1). A node with stake 0 is a follower: it syncs
        /// but never produces blocks.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(4).stake(0, 3).stake(3, 0);
        /// ```
        fn stake(builder: TopologyBuilder, node: int, stake: int) -> TopologyBuilder
        => |t: &mut TopologyBuilder, node: INT, stake: INT| -> Res<_> {
            Ok(t.clone().stake(count(node, "stake node")?, amount(stake, "stake")?))
        }
    );
    script_fn!(reg,
        /// Patches every node's config at a dotted path (an unknown path fails the build and
        /// names it).
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(3).with_override("testing.drop_transactions", false);
        /// ```
        fn with_override(builder: TopologyBuilder, path: String, value: Dynamic) -> TopologyBuilder
        => |t: &mut TopologyBuilder, path: &str, value: Dynamic| -> Res<_> {
            Ok(t.clone()
                .with_override(path, to_yaml(&value, &format!("with_override `{path}`"))?))
        }
    );
    script_fn!(reg,
        /// Patches one node's config at a dotted path, after the overrides for every node:
        /// the way to make one node misbehave (halt at a height, drop transactions).
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(3).with_node_override(2, "testing.halt_at_height", 5);
        /// ```
        fn with_node_override(builder: TopologyBuilder, node: int, path: String, value: Dynamic) -> TopologyBuilder
        => |t: &mut TopologyBuilder, node: INT, path: &str, value: Dynamic| -> Res<_> {
            let node = count(node, "with_node_override node")?;
            let value = to_yaml(&value, &format!("with_node_override `{path}`"))?;
            Ok(t.clone().with_node_override(node, path, value))
        }
    );
    script_fn!(reg,
        /// Attaches a free-form label to a node; labels appear in reports.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(3).label(0, "role", "hub");
        /// ```
        fn label(builder: TopologyBuilder, node: int, key: String, value: String) -> TopologyBuilder
        => |t: &mut TopologyBuilder, node: INT, key: &str, value: &str| -> Res<_> {
            Ok(t.clone().label(count(node, "label node")?, key, value))
        }
    );
    script_fn!(reg,
        /// Reserves a staked genesis leader for a node added at run time: `net.add_node(#{stake})`
        /// claims the next reserved one. Reserved leaders produce nothing until they join, so
        /// they lower the block rate until then.
        ///
        /// ```rhai
        /// let t = TopologyBuilder().nodes(3).reserve_joiner(1);
        /// ```
        fn reserve_joiner(builder: TopologyBuilder, stake: int) -> TopologyBuilder
        => |t: &mut TopologyBuilder, stake: INT| -> Res<_> {
            Ok(t.clone().reserve_joiner(amount(stake, "reserve_joiner stake")?))
        }
    );
    script_fn!(reg,
        /// Validates the builder into a topology; an invalid one is a script error that names
        /// the field and the value at fault.
        ///
        /// ```rhai
        /// let topology = TopologyBuilder().network_ring().nodes(4).build();
        /// ```
        fn build(builder: TopologyBuilder) -> Topology
        => |t: &mut TopologyBuilder| -> Res<Topology> {
            t.build().or_else(|e| err(format!("invalid topology: {e}")))
        }
    );
    script_fn!(reg,
        /// A one-line description: `TopologyBuilder(nodes = 4)`.
        ///
        /// ```rhai
        /// print(TopologyBuilder().nodes(4).to_string());
        /// ```
        fn to_string(builder: TopologyBuilder) -> String
        => |t: &mut TopologyBuilder| format!("TopologyBuilder(nodes = {})", t.node_count())
    );
    script_fn!(reg,
        /// Number of nodes at deploy time.
        ///
        /// ```rhai
        /// let topology = TopologyBuilder().nodes(3).build();
        /// print(topology.node_count);   // 3
        /// ```
        get node_count(topology: Topology) -> int => |t: &mut Topology| t.node_count() as INT
    );
    script_fn!(reg,
        /// The undirected links as `[a, b]` pairs with `a < b`, sorted.
        ///
        /// ```rhai
        /// let topology = TopologyBuilder().network_line().nodes(3).build();
        /// print(topology.edges);   // [[0, 1], [1, 2]]
        /// ```
        get edges(topology: Topology) -> Array => |t: &mut Topology| -> Array {
            t.edges
                .iter()
                .map(|&(a, b)| Dynamic::from_array(vec![(a as INT).into(), (b as INT).into()]))
                .collect()
        }
    );
    script_fn!(reg,
        /// Number of neighbours of node `node` (readiness waits until a node has this many
        /// peers).
        ///
        /// ```rhai
        /// let topology = TopologyBuilder().network_star().nodes(4).build();
        /// print(topology.degree(0));   // 3
        /// ```
        fn degree(topology: Topology, node: int) -> int
        => |t: &mut Topology, i: INT| -> Res<INT> {
            let i = count(i, "degree node")?;
            if i >= t.node_count() {
                return err(format!(
                    "degree node = {i} is out of range: the topology has nodes = {}",
                    t.node_count()
                ));
            }
            Ok(t.degree(i) as INT)
        }
    );
    script_fn!(reg,
        /// A one-line description with the node count, links and wallets.
        ///
        /// ```rhai
        /// print(TopologyBuilder().nodes(2).build().to_string());
        /// ```
        fn to_string(topology: Topology) -> String
        => |t: &mut Topology| {
            format!(
                "Topology(nodes = {}, edges = {:?}, wallets = {})",
                t.node_count(),
                t.edges,
                t.wallets
            )
        }
    );
}
