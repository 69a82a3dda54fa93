//! `TopologyBuilder()` and its fluent methods, as in the seed:
//!
//! ```rhai
//! let t = TopologyBuilder().network_ring().nodes(4).slot_duration("200ms")
//!     .with_node_override(2, "testing.halt_at_height", 5);
//! ```

use engine::topology::{Topology, TopologyBuilder};
use rhai::{Array, Dynamic, Engine, INT};

use super::values::{Res, amount, count, duration, edges, err, number, to_yaml};

/// Registers the topology builder.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<TopologyBuilder>("TopologyBuilder")
        .register_type_with_name::<Topology>("Topology")
        .register_fn("TopologyBuilder", TopologyBuilder::new)
        .register_fn("nodes", |t: &mut TopologyBuilder, n: INT| -> Res<_> {
            Ok(t.clone().nodes(count(n, "nodes")?))
        })
        .register_fn("network_star", |t: &mut TopologyBuilder| {
            t.clone().network_star()
        })
        .register_fn("network_full", |t: &mut TopologyBuilder| {
            t.clone().network_full()
        })
        .register_fn("network_line", |t: &mut TopologyBuilder| {
            t.clone().network_line()
        })
        .register_fn("network_chain", |t: &mut TopologyBuilder| {
            t.clone().network_chain()
        })
        .register_fn("network_ring", |t: &mut TopologyBuilder| {
            t.clone().network_ring()
        })
        .register_fn(
            "network_random",
            |t: &mut TopologyBuilder, degree: INT| -> Res<_> {
                Ok(t.clone()
                    .network_random(count(degree, "network_random degree")?))
            },
        )
        .register_fn("edges", |t: &mut TopologyBuilder, e: Array| -> Res<_> {
            Ok(t.clone().edges(edges(&e)?))
        })
        .register_fn("wallets", |t: &mut TopologyBuilder, n: INT| -> Res<_> {
            Ok(t.clone().wallets(count(n, "wallets")?))
        })
        .register_fn(
            "wallet_balance",
            |t: &mut TopologyBuilder, n: INT| -> Res<_> {
                Ok(t.clone().wallet_balance(amount(n, "wallet_balance")?))
            },
        )
        .register_fn(
            "slot_duration",
            |t: &mut TopologyBuilder, d: Dynamic| -> Res<_> {
                Ok(t.clone().slot_duration(duration(&d, "slot_duration")?))
            },
        )
        .register_fn(
            "active_slot_coeff",
            |t: &mut TopologyBuilder, f: Dynamic| -> Res<_> {
                Ok(t.clone()
                    .active_slot_coeff(number(&f, "active_slot_coeff")?))
            },
        )
        .register_fn(
            "security_param",
            |t: &mut TopologyBuilder, k: INT| -> Res<_> {
                Ok(t.clone().security_param(amount(k, "security_param")?))
            },
        )
        .register_fn(
            "stake",
            |t: &mut TopologyBuilder, node: INT, stake: INT| -> Res<_> {
                Ok(t.clone()
                    .stake(count(node, "stake node")?, amount(stake, "stake")?))
            },
        )
        .register_fn(
            "with_override",
            |t: &mut TopologyBuilder, path: &str, value: Dynamic| -> Res<_> {
                Ok(t.clone()
                    .with_override(path, to_yaml(&value, &format!("with_override `{path}`"))?))
            },
        )
        .register_fn(
            "with_node_override",
            |t: &mut TopologyBuilder, node: INT, path: &str, value: Dynamic| -> Res<_> {
                let node = count(node, "with_node_override node")?;
                let value = to_yaml(&value, &format!("with_node_override `{path}`"))?;
                Ok(t.clone().with_node_override(node, path, value))
            },
        )
        .register_fn(
            "label",
            |t: &mut TopologyBuilder, node: INT, key: &str, value: &str| -> Res<_> {
                Ok(t.clone().label(count(node, "label node")?, key, value))
            },
        )
        .register_fn(
            "reserve_joiner",
            |t: &mut TopologyBuilder, stake: INT| -> Res<_> {
                Ok(t.clone()
                    .reserve_joiner(amount(stake, "reserve_joiner stake")?))
            },
        )
        .register_fn("build", |t: &mut TopologyBuilder| -> Res<Topology> {
            t.build().or_else(|e| err(format!("invalid topology: {e}")))
        })
        .register_get("node_count", |t: &mut Topology| t.node_count() as INT)
        .register_fn("degree", |t: &mut Topology, i: INT| -> Res<INT> {
            let i = count(i, "degree node")?;
            if i >= t.node_count() {
                return err(format!(
                    "degree node = {i} is out of range: the topology has nodes = {}",
                    t.node_count()
                ));
            }
            Ok(t.degree(i) as INT)
        })
        .register_get("edges", |t: &mut Topology| -> Array {
            t.edges
                .iter()
                .map(|&(a, b)| Dynamic::from_array(vec![(a as INT).into(), (b as INT).into()]))
                .collect()
        })
        .register_fn("to_string", |t: &mut TopologyBuilder| {
            format!("TopologyBuilder(nodes = {})", t.node_count())
        })
        .register_fn("to_string", |t: &mut Topology| {
            format!(
                "Topology(nodes = {}, edges = {:?}, wallets = {})",
                t.node_count(),
                t.edges,
                t.wallets
            )
        });
}
