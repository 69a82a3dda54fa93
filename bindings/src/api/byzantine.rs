//! Lying nodes from scripts: a reference node told, through its testing surface, to equivocate,
//! withhold its blocks, build on a stale parent or gossip invalid transactions; made honest
//! again with `net.honest(i)`; in the timeline of `net.fault_log()` as `byzantine node-i ...`;
//! random lies in chaos (`c.byzantine()`); and the expectations judged from what the nodes saw.
//!
//! ```rhai
//! net.byzantine(0, "equivocate");            // two blocks for each slot it leads
//! net.byzantine(1, "withhold", "3s");        // its blocks reach its peers 3 s late
//! net.byzantine(2, #{stale_parent: 2, invalid_txs: 10});
//! print(net.byzantine_state(2));             // #{behaviours, summary, withheld}
//! print(net.evidence(1));                    // the lies node 1 saw
//! net.honest(0); net.honest(1); net.honest(2);
//! ```

use engine::error::Chain;
use std::time::Duration;

use engine::chaos::ChaosBuilder;
use engine::chaos::byzantine::ByzantineBuilder;
use engine::deploy::byzantine::{Behaviour, Behaviours};
use rhai::{Array, Dynamic, Engine, INT, Map};

use super::chaos::{delays, durations, finish};
use super::deploy::NetHandle;
use super::scenario::PlanBuilder;
use super::values::{Res, duration, err, index, to_script};
use crate::doc::registry::{Area, Registrar};
use crate::script_fn;

/// `name` with the parameter `param` (unit: its default).
pub(crate) fn behaviour(name: &str, param: &Dynamic) -> Res<Behaviour> {
    let b = Behaviour::named(name).or_else(err)?;
    if param.is_unit() {
        return Ok(b);
    }
    let what = format!("byzantine {name}");
    Ok(match b {
        Behaviour::Equivocate => match param.as_bool() {
            Ok(true) => b,
            _ => return err(format!("{what} takes no parameter, got {param}")),
        },
        Behaviour::Withhold(_) => {
            let d = duration(param, &what)?;
            if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
                return err(format!(
                    "{what} = {param}: between 1ms and an hour (how long its blocks are kept)"
                ));
            }
            Behaviour::Withhold(d)
        }
        Behaviour::StaleParent(_) => match param.as_int() {
            Ok(d) if (1..=10_000).contains(&d) => Behaviour::StaleParent(d as u64),
            _ => {
                return err(format!(
                    "{what} = {param}: a depth below the tip between 1 and 10000"
                ));
            }
        },
        Behaviour::InvalidTxs(_) => match param.as_int() {
            Ok(n) if (1..=1000).contains(&n) => Behaviour::InvalidTxs(n as u32),
            _ => {
                return err(format!(
                    "{what} = {param}: invalid transactions a slot between 1 and 1000"
                ));
            }
        },
    })
}

/// A map such as `#{equivocate: true, withhold: "2s"}` as a set of behaviours.
fn behaviours_of(map: &Map) -> Res<Behaviours> {
    let mut set = Behaviours::default();
    for (name, param) in map {
        if param.as_bool() == Ok(false) {
            continue;
        }
        behaviour(name, param)?.add_to(&mut set);
    }
    Ok(set)
}

fn set(n: &NetHandle, i: INT, lies: Behaviours) -> Res<()> {
    n.control("byzantine", i, move |net, i| {
        Box::pin(async move { net.set_byzantine(i, lies).await.map(|_| ()) })
    })
}

/// Reads one of node `i`'s testing-surface answers (a dry testnet answers `dry`).
fn read<T, F>(n: &NetHandle, i: INT, what: &str, dry: serde_json::Value, f: F) -> Res<Dynamic>
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(
            engine::client::NodeClient,
        )
            -> futures::future::BoxFuture<'static, Result<T, engine::client::ClientError>>
        + Send
        + 'static,
{
    let i = n.check_index(i, what)?;
    let Some(net) = n.testnet().cloned() else {
        return Ok(to_script(&dry));
    };
    let Some(client) = net.clients().get(i).cloned() else {
        return err(format!("{what}({i}): no such node"));
    };
    match n.bridge().block_on_cancellable(f(client))? {
        Ok(r) => Ok(to_script(&r)),
        Err(e) => err(format!("{what}({i}) failed: {}", e.chain())),
    }
}

/// Registers the lies, their expectations and their chaos kind.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Faults);
    script_fn!(reg,
        /// Makes node `i` lie: `"equivocate"` (two different blocks for each slot it leads,
        /// each sent to half of its peers), `"withhold"` (its blocks kept from its peers 2 s,
        /// then released), `"stale_parent"` (its blocks built 2 below its tip) or
        /// `"invalid_txs"` (5 transactions with a bad signature gossiped a slot). Replaces the
        /// lies in force. Needs `enable_node_control()` in a plan and the reference node; a
        /// restarted node starts with its config's (`testing.byzantine`).
        ///
        /// ```rhai
        /// net.byzantine(0, "equivocate");
        /// net.honest(0);
        /// ```
        fn byzantine(net: Testnet, i: int, behaviour: String)
        => |n: &mut NetHandle, i: INT, name: &str| -> Res<()> {
            let b = behaviour(name, &Dynamic::UNIT)?;
            set(n, i, Behaviour::set_of(&[b]))
        }
    );
    script_fn!(reg,
        /// Makes node `i` lie with a parameter: `"withhold"` how long (`"3s"`),
        /// `"stale_parent"` how many blocks below the tip (an int), `"invalid_txs"` how many a
        /// slot (an int).
        ///
        /// ```rhai
        /// net.byzantine(1, "withhold", "500ms");
        /// net.byzantine(1, "stale_parent", 1);
        /// net.honest(1);
        /// ```
        fn byzantine(net: Testnet, i: int, behaviour: String, param: Dynamic)
        => |n: &mut NetHandle, i: INT, name: &str, param: Dynamic| -> Res<()> {
            let b = behaviour(name, &param)?;
            set(n, i, Behaviour::set_of(&[b]))
        }
    );
    script_fn!(reg,
        /// Makes node `i` tell several lies at once, named with their parameters (`true`
        /// where there is none; `false` leaves one out).
        ///
        /// ```rhai
        /// net.byzantine(2, #{equivocate: true, invalid_txs: 3});
        /// net.honest(2);
        /// ```
        fn byzantine(net: Testnet, i: int, behaviours: Map)
        => |n: &mut NetHandle, i: INT, m: Map| -> Res<()> {
            set(n, i, behaviours_of(&m)?)
        }
    );
    script_fn!(reg,
        /// Makes node `i` honest again (every lie off; blocks it withheld are released).
        ///
        /// ```rhai
        /// net.honest(0);
        /// ```
        fn honest(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| -> Res<()> {
            set(n, i, Behaviours::default())
        }
    );
    script_fn!(reg,
        /// Node `i`'s lies: `#{behaviours: #{equivocate, withhold_ms, stale_parent_depth,
        /// invalid_txs_per_slot}, summary, withheld}` (summary: `"honest"`, or how the
        /// timeline writes them; withheld: own blocks being kept from its peers).
        ///
        /// ```rhai
        /// if net.byzantine_state(0).summary != "honest" { net.honest(0); }
        /// ```
        fn byzantine_state(net: Testnet, i: int) -> Map
        => |n: &mut NetHandle, i: INT| -> Res<Dynamic> {
            read(n, i, "byzantine_state", serde_json::json!({
                "behaviours": Behaviours::default(), "summary": "honest", "withheld": 0
            }), |c| Box::pin(async move { c.byzantine().await }))
        }
    );
    script_fn!(reg,
        /// The lies node `i` saw: `#{evidence: [#{kind, peer, leader, slot, ids, detail,
        /// at_ms}], equivocations_seen, equivocations_accepted, invalid_transactions}` (kind
        /// `"equivocation"` or `"invalid_tx"`; keys are the liars' public keys).
        ///
        /// ```rhai
        /// let e = net.evidence(1);
        /// print(`node-1 saw ${e.equivocations_seen} equivocations`);
        /// ```
        fn evidence(net: Testnet, i: int) -> Map
        => |n: &mut NetHandle, i: INT| -> Res<Dynamic> {
            read(n, i, "evidence", serde_json::json!({
                "evidence": [], "equivocations_seen": 0, "equivocations_accepted": 0,
                "invalid_transactions": 0
            }), |c| Box::pin(async move { c.evidence().await }))
        }
    );
    drop(reg);
    register_expectations(&mut Registrar::new(engine, Area::Expectations));
    register_chaos(&mut Registrar::new(engine, Area::Chaos));
}

fn register_expectations(reg: &mut Registrar) {
    script_fn!(reg,
        /// Fails when a node adopted the second block of an equivocation as its tip by the
        /// tie-break (an honest reference node keeps the first block of a leader for a slot,
        /// records the second as evidence and follows its branch only once it is longer; a
        /// node configured with `testing.accept_equivocations` does not). The message counts
        /// the equivocations each node saw. Judged on the whole run, reverts or not: an
        /// accepted equivocation is the accepting node's fault, not the liar's. Needs the
        /// reference node's testing surface.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(3)).expect_no_equivocation_accepted();
        /// ```
        fn expect_no_equivocation_accepted(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(|s| s.expect_no_equivocation_accepted())
    );
    script_fn!(reg,
        /// Fails when any leader signed two blocks for one slot, naming it, the slots and the
        /// nodes that saw it. Fault-aware: a node made honest during the run is judged from
        /// max(1 s, 5 slots) after that.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(3)).expect_no_equivocation();
        /// ```
        fn expect_no_equivocation(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(|s| s.expect_no_equivocation())
    );
    script_fn!(reg,
        /// Fails when any node gossiped transactions whose signature does not verify, naming
        /// it and the nodes that refused them. Fault-aware as `expect_no_equivocation`.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(3)).expect_no_invalid_transactions();
        /// ```
        fn expect_no_invalid_transactions(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| b.map(|s| s.expect_no_invalid_transactions())
    );
}

fn register_chaos(reg: &mut Registrar) {
    script_fn!(reg,
        /// Random lying nodes: after each drawn delay a random target is told one of the
        /// behaviours (drawn from the run seed; default all four, with their default
        /// parameters), then made honest again after the duration (defaults: every 5-10 s,
        /// lasting 2-5 s). Needs node control and the reference node.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.byzantine().behaviours(["equivocate", "withhold"]).duration("2s").apply());
        /// ```
        fn byzantine(chaos: ChaosBuilder) -> ByzantineChaos => |b: &mut ChaosBuilder| b.clone().byzantine()
    );
    reg.register_type::<ByzantineBuilder>(
        "ByzantineChaos",
        &[
            " Settings of random lying nodes (`c.byzantine()`), ended with `apply()`.",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .chaos_with(|c| c.byzantine().targets([0]).duration(\"1s\").apply());",
            " ```",
        ],
    );
    delays!(
        reg,
        ByzantineBuilder,
        "ByzantineChaos",
        "byzantine()",
        "byzantine"
    );
    durations!(
        reg,
        ByzantineBuilder,
        "ByzantineChaos",
        "byzantine()",
        "byzantine"
    );
    script_fn!(reg,
        /// The behaviours drawn from: names (`"equivocate"`, `"withhold"`, `"stale_parent"`,
        /// `"invalid_txs"`, with their default parameters) or `[name, parameter]` pairs.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.byzantine().behaviours(["equivocate", ["withhold", "1s"]]).apply());
        /// ```
        fn behaviours(chaos: ByzantineChaos, names: Array) -> ByzantineChaos
        => |b: &mut ByzantineBuilder, a: Array| -> Res<ByzantineBuilder> {
            let mut list = Vec::new();
            for v in &a {
                if let Some(pair) = v.read_lock::<Array>() {
                    match pair.as_slice() {
                        [name, param] if name.is_string() => {
                            list.push(behaviour(&name.to_string(), param)?);
                        }
                        _ => {
                            return err(format!(
                                "byzantine behaviours: {v} is not [name, parameter]"
                            ));
                        }
                    }
                } else if v.is_string() {
                    list.push(behaviour(&v.to_string(), &Dynamic::UNIT)?);
                } else {
                    return err(format!(
                        "byzantine behaviours: {v} is not a name or [name, parameter]"
                    ));
                }
            }
            if list.is_empty() {
                return err("byzantine behaviours = []: name at least one");
            }
            Ok(b.clone().behaviours(list))
        }
    );
    script_fn!(reg,
        /// Only these nodes lie (default: every node; only leaders can equivocate, withhold or
        /// build on a stale parent).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.byzantine().targets([0, 1]).apply());
        /// ```
        fn targets(chaos: ByzantineChaos, nodes: Array) -> ByzantineChaos
        => |b: &mut ByzantineBuilder, a: Array| -> Res<ByzantineBuilder> {
            let nodes: Vec<usize> = a.iter().map(|v| index(v, "byzantine targets")).collect::<Res<_>>()?;
            Ok(b.clone().targets(nodes))
        }
    );
    script_fn!(reg,
        /// These nodes never lie.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.byzantine().exclude([3]).apply());
        /// ```
        fn exclude(chaos: ByzantineChaos, nodes: Array) -> ByzantineChaos
        => |b: &mut ByzantineBuilder, a: Array| -> Res<ByzantineBuilder> {
            let nodes: Vec<usize> = a.iter().map(|v| index(v, "byzantine exclude")).collect::<Res<_>>()?;
            Ok(b.clone().exclude(nodes))
        }
    );
}
