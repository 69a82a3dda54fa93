//! Network faults of a live testnet: partition, isolate, cut, latency, loss, heal, revert.

use super::*;
use engine::error::Chain;

pub(super) fn link_sel(net: &NetHandle, a: INT, b: INT) -> Res<LinkSel> {
    Ok(LinkSel::Both(
        net.check_index(a, "link from")?,
        net.check_index(b, "link to")?,
    ))
}

/// Registers deployers and the testnet handle.
pub(super) fn register_faults(reg: &mut Registrar) {
    script_fn!(reg,
        /// Splits the network into groups of node indices (nodes named nowhere form one more
        /// group); returns the fault's id.
        ///
        /// ```rhai
        /// let id = net.partition([[0, 1], [2, 3]]);
        /// sleep("1s");
        /// net.heal();
        /// ```
        fn partition(net: Testnet, groups: Array) -> int
        => |n: &mut NetHandle, groups: Array| -> Res<INT> {
            let groups = index_groups(&groups, "partition")?;
            for g in &groups {
                for &i in g {
                    n.check_index(i as INT, "partition node")?;
                }
            }
            n.fault("partition", move |net| net.partition(groups))
        }
    );
    script_fn!(reg,
        /// Cuts node `i` off from every other node; returns the fault's id.
        ///
        /// ```rhai
        /// let id = net.isolate(3);
        /// net.revert(id);
        /// ```
        fn isolate(net: Testnet, i: int) -> int => |n: &mut NetHandle, i: INT| -> Res<INT> {
            let i = n.check_index(i, "isolate")?;
            n.fault("isolate", move |net| net.isolate(i))
        }
    );
    script_fn!(reg,
        /// Drops every frame from node `from` to node `to` (one direction only; the two must be
        /// linked in the topology); returns the fault's id.
        ///
        /// ```rhai
        /// let id = net.cut(0, 1);
        /// net.revert(id);
        /// ```
        fn cut(net: Testnet, from: int, to: int) -> int
        => |n: &mut NetHandle, from: INT, to: INT| -> Res<INT> {
            let from = n.check_index(from, "cut from")?;
            let to = n.check_index(to, "cut to")?;
            n.fault("cut", move |net| net.cut(from, to))
        }
    );
    script_fn!(reg,
        /// Delays frames on every link by `delay`; returns the fault's id.
        ///
        /// ```rhai
        /// let id = net.latency("50ms");
        /// net.revert(id);
        /// ```
        fn latency(net: Testnet, delay: Duration) -> int
        => |n: &mut NetHandle, d: Dynamic| -> Res<INT> {
            let d = duration(&d, "latency")?;
            n.fault("latency", move |net| {
                net.set_latency(LinkSel::All, d, Duration::ZERO)
            })
        }
    );
    script_fn!(reg,
        /// Delays frames between nodes `a` and `b` (both directions) by `delay`.
        ///
        /// ```rhai
        /// let id = net.latency(0, 1, "100ms");
        /// net.revert(id);
        /// ```
        fn latency(net: Testnet, a: int, b: int, delay: Duration) -> int
        => |n: &mut NetHandle, a: INT, b: INT, d: Dynamic| -> Res<INT> {
            let sel = link_sel(n, a, b)?;
            let d = duration(&d, "latency")?;
            n.fault("latency", move |net| {
                net.set_latency(sel, d, Duration::ZERO)
            })
        }
    );
    script_fn!(reg,
        /// Delays frames between nodes `a` and `b` by `delay` plus a random jitter up to
        /// `jitter`.
        ///
        /// ```rhai
        /// let id = net.latency(0, 2, "80ms", "20ms");
        /// net.revert(id);
        /// ```
        fn latency(net: Testnet, a: int, b: int, delay: Duration, jitter: Duration) -> int
        => |n: &mut NetHandle, a: INT, b: INT, d: Dynamic, jitter: Dynamic| -> Res<INT> {
            let sel = link_sel(n, a, b)?;
            let d = duration(&d, "latency")?;
            let j = duration(&jitter, "latency jitter")?;
            n.fault("latency", move |net| net.set_latency(sel, d, j))
        }
    );
    script_fn!(reg,
        /// Drops frames on every link with probability `p` (0.0 to 1.0).
        ///
        /// ```rhai
        /// let id = net.loss(0.1);
        /// net.revert(id);
        /// ```
        fn loss(net: Testnet, p: Number) -> int => |n: &mut NetHandle, p: Dynamic| -> Res<INT> {
            let p = probability(&p, "loss probability")?;
            n.fault("loss", move |net| net.set_loss(LinkSel::All, p))
        }
    );
    script_fn!(reg,
        /// Drops frames between nodes `a` and `b` with probability `p`.
        ///
        /// ```rhai
        /// let id = net.loss(0, 2, 0.3);   // a link of the star: node 0 and node 2
        /// net.revert(id);
        /// ```
        fn loss(net: Testnet, a: int, b: int, p: Number) -> int
        => |n: &mut NetHandle, a: INT, b: INT, p: Dynamic| -> Res<INT> {
            let sel = link_sel(n, a, b)?;
            let p = probability(&p, "loss probability")?;
            n.fault("loss", move |net| net.set_loss(sel, p))
        }
    );
    script_fn!(reg,
        /// Reverts every fault in force: the network faults, and the clock and disk faults
        /// of the nodes (`net.node_faults()`); returns how many there were.
        ///
        /// ```rhai
        /// net.isolate(1);
        /// net.latency("20ms");
        /// net.clock_skew(2, "+1s");
        /// print(net.heal());   // 3
        /// ```
        fn heal(net: Testnet) -> int => |n: &mut NetHandle| -> Res<INT> {
            let Some(net) = n.net.clone() else {
                return Ok(0);
            };
            let on_nodes = {
                let net = net.clone();
                let task = n.bridge.handle().spawn(async move { net.revert_node_faults().await });
                match n.bridge.block_on_cancellable(task)? {
                    Ok(Ok(k)) => k,
                    Ok(Err(e)) => return err(format!("heal failed: {}", e.chain())),
                    Err(e) => return err(format!("heal failed: {}", e.chain())),
                }
            };
            match n.bridge.block_on_cancellable(net.heal())? {
                Ok(k) => Ok((k + on_nodes) as INT),
                // a testnet without network faults still heals its nodes
                Err(ControlError::Unsupported { .. }) => Ok(on_nodes as INT),
                Err(e) => err(format!("heal failed: {}", e.chain())),
            }
        }
    );
    script_fn!(reg,
        /// Reverts one fault by the id its function returned.
        ///
        /// ```rhai
        /// let id = net.cut(0, 3);
        /// net.revert(id);
        /// ```
        fn revert(net: Testnet, id: int) => |n: &mut NetHandle, id: INT| -> Res<()> {
            let Some(net) = n.net.clone() else {
                return Ok(());
            };
            let id = engine::links::FaultId(
                u64::try_from(id)
                    .or_else(|_| err(format!("revert fault id = {id} must not be negative")))?,
            );
            n.bridge
                .block_on_cancellable(net.revert_fault(id))?
                .or_else(|e| err(format!("revert failed: {}", e.chain())))
        }
    );
    script_fn!(reg,
        /// The faults in force, as `#{id, fault}` maps.
        ///
        /// ```rhai
        /// net.isolate(0);
        /// for f in net.faults() { print(`${f.id}: ${f.fault}`); }
        /// net.heal();
        /// ```
        fn faults(net: Testnet) -> Array => |n: &mut NetHandle| -> Array {
            n.net.as_ref().map_or_else(Vec::new, |net| {
                net.active_faults()
                    .iter()
                    .map(|f| {
                        crate::api::values::map([
                            ("id", int(f.id.0)),
                            ("fault", format!("{:?}", f.fault).into()),
                        ])
                        .into()
                    })
                    .collect()
            })
        }
    );
}
