//! Message tampering from scripts: faults on one kind of the reference node's p2p messages
//! (`"block"`, `"tx"`, `"sync"`) on the links a selector names, through the same fault model
//! as partitions and latency (fault log, `revert`, `heal`, reverted at teardown).
//!
//! ```rhai
//! let id = net.drop_messages("all", "tx", 0.5);        // half the transactions, every link
//! net.delay_messages([0, 1], "block", "300ms");         // blocks between nodes 0 and 1
//! net.duplicate_messages(2, "block", 1.0);              // every link of node 2
//! net.reorder_messages("all", "sync", "100ms");
//! net.heal();
//! ```

use std::time::Duration;

use engine::links::{Fault, LinkSel, MessageKind, Tamper};
use rhai::{Array, Dynamic, Engine, INT};

use super::deploy::NetHandle;
use super::values::{Res, duration, err, probability};
use crate::doc::registry::{Area, Registrar};
use crate::script_fn;

/// The links a selector names: `"all"`, a node index (its every link), or `[a, b]` (both
/// directions between two nodes).
fn links(n: &NetHandle, sel: &Dynamic) -> Res<LinkSel> {
    if let Ok(s) = sel.clone().into_immutable_string() {
        if s.trim() == "all" {
            return Ok(LinkSel::All);
        }
        return err(format!(
            "links = {s:?}: expected \"all\", a node index or [a, b]"
        ));
    }
    if let Ok(i) = sel.as_int() {
        return Ok(LinkSel::Node(n.check_index(i, "links node")?));
    }
    if let Some(a) = sel.read_lock::<Array>() {
        let ends: Vec<INT> = a.iter().filter_map(|v| v.as_int().ok()).collect();
        if a.len() == 2 && ends.len() == 2 {
            return Ok(LinkSel::Both(
                n.check_index(ends[0], "links from")?,
                n.check_index(ends[1], "links to")?,
            ));
        }
        return err(format!(
            "links = {a:?}: an array names one pair of nodes, [a, b]"
        ));
    }
    err(format!(
        "links = {sel}: expected \"all\", a node index or [a, b]"
    ))
}

fn kind(name: &str) -> Res<MessageKind> {
    MessageKind::parse(name).or_else(|e| err(e.to_string()))
}

fn positive(d: &Dynamic, what: &str) -> Res<Duration> {
    let d = duration(d, what)?;
    if d.is_zero() {
        return err(format!("{what} must be above zero"));
    }
    Ok(d)
}

fn tamper(n: &NetHandle, sel: &Dynamic, name: &str, action: Tamper) -> Res<INT> {
    let links = links(n, sel)?;
    let kind = kind(name)?;
    n.fault(action.verb(), move |net| {
        net.apply_fault(
            Fault::Tamper {
                links,
                kind,
                action,
            },
            None,
        )
    })
}

/// Registers the tampering faults.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Faults);
    script_fn!(reg,
        /// Drops messages of one kind (`"block"`, `"tx"`, `"sync"`: tips, chain requests and
        /// answers) with probability `p` on the links `links` names (`"all"`, a node index for
        /// its every link, or `[a, b]`); other kinds flow. Returns the fault id.
        ///
        /// ```rhai
        /// let id = net.drop_messages("all", "tx", 1.0);
        /// net.revert(id);
        /// ```
        fn drop_messages(net: Testnet, links: Dynamic, kind: String, p: Number) -> int
        => |n: &mut NetHandle, sel: Dynamic, k: &str, p: Dynamic| -> Res<INT> {
            let p = probability(&p, "drop_messages probability")?;
            tamper(n, &sel, k, Tamper::Drop(p))
        }
    );
    script_fn!(reg,
        /// Sends each message of one kind twice with probability `p` on the links named.
        ///
        /// ```rhai
        /// let id = net.duplicate_messages([0, 1], "block", 0.5);
        /// net.revert(id);
        /// ```
        fn duplicate_messages(net: Testnet, links: Dynamic, kind: String, p: Number) -> int
        => |n: &mut NetHandle, sel: Dynamic, k: &str, p: Dynamic| -> Res<INT> {
            let p = probability(&p, "duplicate_messages probability")?;
            tamper(n, &sel, k, Tamper::Duplicate(p))
        }
    );
    script_fn!(reg,
        /// Holds each message of one kind for `delay` on the links named; messages of other
        /// kinds overtake it (those of the kind keep their order).
        ///
        /// ```rhai
        /// let id = net.delay_messages("all", "block", "200ms");
        /// net.revert(id);
        /// ```
        fn delay_messages(net: Testnet, links: Dynamic, kind: String, delay: Duration) -> int
        => |n: &mut NetHandle, sel: Dynamic, k: &str, d: Dynamic| -> Res<INT> {
            let d = positive(&d, "delay_messages delay")?;
            tamper(n, &sel, k, Tamper::Delay(d))
        }
    );
    script_fn!(reg,
        /// Holds each message of one kind a random time up to `window` on the links named, so
        /// messages of the kind arrive out of order.
        ///
        /// ```rhai
        /// let id = net.reorder_messages(1, "sync", "100ms");
        /// net.revert(id);
        /// ```
        fn reorder_messages(net: Testnet, links: Dynamic, kind: String, window: Duration) -> int
        => |n: &mut NetHandle, sel: Dynamic, k: &str, w: Dynamic| -> Res<INT> {
            let w = positive(&w, "reorder_messages window")?;
            tamper(n, &sel, k, Tamper::Reorder(w))
        }
    );
}
