//! Disk faults from scripts: a node's disk full (its writes fail with ENOSPC, so it stops
//! following and producing and says "disk full" in its log, metrics and `net.disk(i)`), or its
//! last block writes held back as not durable (a kill loses them). Set through the reference
//! node's testing surface, in the timeline of `net.fault_log()` as `disk node-i ...`, applied
//! again after a restart and reverted by `heal()`; `net.node_faults()` lists the clock and disk
//! faults in force.
//!
//! ```rhai
//! net.disk_full(2);               // node 2's writes fail from now on
//! print(net.disk(2).last_error);  // disk full: ... (os error 28)
//! net.disk_ok(2);                 // room again: it catches up by sync
//! net.lose_unflushed(1, 5);       // node 1's last 5 block writes are not durable
//! net.kill(1);                    // ... so they are gone
//! net.start(1);
//! net.disk_ok(1);
//! ```

use engine::error::Chain;
use rhai::{Array, Dynamic, Engine, INT};

use super::deploy::NetHandle;
use super::values::{Res, err, to_script};
use crate::doc::registry::{Area, Registrar};
use crate::script_fn;
use engine::deploy::node_faults::{NodeFault, Switch};

/// Most block writes a script may hold back (the reference node's own bound).
const MAX_UNFLUSHED: INT = 10_000;

fn set(n: &NetHandle, what: &str, i: INT, fault: NodeFault) -> Res<()> {
    n.control(what, i, move |net, i| net.set_node_fault(i, fault))
}

/// Registers the disk faults and the list of node faults in force.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Faults);
    script_fn!(reg,
        /// Fills node `i`'s disk: from now on its block writes fail with ENOSPC, so it neither
        /// follows the chain nor produces, and it says `disk full` in its log, its metrics
        /// (`logos_blockchain_disk_full`) and `net.disk(i)`. Liveness names it once it lags;
        /// `net.disk_ok(i)` gives it room again and it catches up by sync. Needs
        /// `enable_node_control()` in a plan; kept in force across a restart, reverted by
        /// `heal()`.
        ///
        /// ```rhai
        /// net.disk_full(2);
        /// net.disk_ok(2);
        /// ```
        fn disk_full(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| -> Res<()> {
            set(n, "disk_full", i, NodeFault::DiskFull { full: true })
        }
    );
    script_fn!(reg,
        /// Holds node `i`'s last `blocks` block writes back as not yet durable, as an unflushed
        /// write cache would: a `kill` (SIGKILL) loses them, so after `start` its chain is that
        /// many blocks shorter until it syncs them again; a graceful `stop` flushes them.
        /// `net.disk(i).pending_blocks` says how many are held back now.
        ///
        /// ```rhai
        /// net.lose_unflushed(1, 5);
        /// net.disk_ok(1);
        /// ```
        fn lose_unflushed(net: Testnet, i: int, blocks: int)
        => |n: &mut NetHandle, i: INT, blocks: INT| -> Res<()> {
            if !(1..=MAX_UNFLUSHED).contains(&blocks) {
                return err(format!(
                    "lose_unflushed blocks = {blocks}: between 1 and {MAX_UNFLUSHED}"
                ));
            }
            set(n, "lose_unflushed", i, NodeFault::Unflushed { blocks: blocks as u64 })
        }
    );
    script_fn!(reg,
        /// Puts node `i`'s disk back to normal: room again (writes resume) and every write
        /// durable (those held back are committed now).
        ///
        /// ```rhai
        /// net.disk_ok(0);
        /// ```
        fn disk_ok(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| -> Res<()> {
            let held_back = n.testnet().is_some_and(|net| {
                net.node_faults().iter().any(|f| {
                    f.node as INT == i && f.fault.switch() == Switch::Unflushed
                })
            });
            set(n, "disk_ok", i, NodeFault::DiskFull { full: false })?;
            if held_back {
                set(n, "disk_ok", i, NodeFault::Unflushed { blocks: 0 })?;
            }
            Ok(())
        }
    );
    script_fn!(reg,
        /// Node `i`'s disk: `#{unflushed_blocks, full, pending_blocks, durable_height,
        /// reloaded_height, write_failures, last_error}` (`reloaded_height`: the height its
        /// store held when it started; `last_error`: the write error, `()` if none).
        ///
        /// ```rhai
        /// let d = net.disk(0);
        /// print(`node-0 holds ${d.pending_blocks} writes back, full: ${d.full}`);
        /// ```
        fn disk(net: Testnet, i: int) -> Map => |n: &mut NetHandle, i: INT| -> Res<Dynamic> {
            let i = n.check_index(i, "disk")?;
            let Some(net) = n.testnet().cloned() else {
                return Ok(to_script(&serde_json::json!({
                    "unflushed_blocks": 0, "full": false, "pending_blocks": 0,
                    "durable_height": 0, "reloaded_height": 0, "write_failures": 0,
                    "last_error": null
                })));
            };
            let Some(client) = net.clients().get(i).cloned() else {
                return err(format!("disk({i}): no such node"));
            };
            match n.bridge().block_on_cancellable(async move { client.disk().await })? {
                Ok(r) => Ok(to_script(&r)),
                Err(e) => err(format!("disk({i}) failed: {}", e.chain())),
            }
        }
    );
    script_fn!(reg,
        /// The clock and disk faults in force, as `#{node, kind, summary}` maps (`kind`:
        /// `clock`, `disk_full` or `unflushed`; `summary` as the timeline reads it). `heal()`
        /// reverts them with the network faults.
        ///
        /// ```rhai
        /// net.disk_full(1);
        /// for f in net.node_faults() { print(`node-${f.node}: ${f.summary}`); }
        /// net.heal();
        /// ```
        fn node_faults(net: Testnet) -> Array => |n: &mut NetHandle| -> Array {
            let Some(net) = n.testnet() else {
                return Array::new();
            };
            net.node_faults()
                .into_iter()
                .map(|f| {
                    let kind = match f.fault.switch() {
                        Switch::Clock => "clock",
                        Switch::DiskFull => "disk_full",
                        Switch::Unflushed => "unflushed",
                    };
                    let mut m = rhai::Map::new();
                    m.insert("node".into(), Dynamic::from(f.node as INT));
                    m.insert("kind".into(), Dynamic::from(kind.to_string()));
                    m.insert("summary".into(), Dynamic::from(f.fault.to_string()));
                    Dynamic::from_map(m)
                })
                .collect()
        }
    );
}
