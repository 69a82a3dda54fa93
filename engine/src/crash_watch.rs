//! `expect_no_crashes()`: a node whose process (or container) ends on its own during the run
//! fails the run at once, naming the node, when it happened and its last log lines. Stops, kills
//! and restarts made by the framework's node control are not crashes: the watch skips a node
//! while an action is under way on it, and a node the framework stopped is `Stopped`, not
//! `Exited`.
//!
//! It is an [`Invariant`] (`never`), checked every 250 ms, so its witness and its early stop are
//! the invariants' own.

use std::sync::Arc;
use std::time::Duration;

use crate::chaos::invariant::{Check, Invariant, Predicate};
use crate::context::RunContext;
use crate::deploy::NodeState;

/// The expectation's name in reports.
pub const NAME: &str = "no_node_crash";

/// Lines of a crashed node's log quoted in the witness.
const TAIL: usize = 5;

/// How often the nodes are looked at.
const EVERY: Duration = Duration::from_millis(250);

/// The crash watch.
pub fn no_node_crash() -> Invariant {
    let predicate: Predicate = Arc::new(|ctx: RunContext| Box::pin(crashed(ctx)));
    Invariant::never(NAME, predicate).every(EVERY)
}

async fn crashed(ctx: RunContext) -> Result<Check, String> {
    let net = ctx.testnet();
    for i in 0..net.node_count() {
        if net.control_in_flight(i).is_some() || net.node_state(i) != Some(NodeState::Exited) {
            continue;
        }
        // an action may have begun between the two reads: look again
        if net.control_in_flight(i).is_some() {
            continue;
        }
        let tail = match net.logs(i, TAIL).await {
            Ok(t) => crate::deploy::one_line(&t),
            Err(e) => format!("(its log could not be read: {e})"),
        };
        return Ok(Check::with(
            true,
            format!(
                "node-{i} exited on its own (no stop, kill or restart by the framework was under way); its last lines: {tail}"
            ),
        ));
    }
    Ok(Check::from(false))
}
