//! Client calls through the framework's own node control: a call that cannot reach a node
//! the framework is restarting, stopping or pausing waits for the node to come back (up to a
//! deadline) instead of failing at once with "connection refused". Only a transport failure
//! waits, and only while the testnet says why: a control action under way on the node
//! ([`Testnet::control_in_flight`]), the node stopped or paused by control, or a control action
//! on it in the last seconds (a restarted node binds its port a moment after its process
//! starts). A node that is simply unreachable, or that exited on its own, fails at once.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use super::control_log::NodeAction;
use super::{NodeState, Testnet};
use crate::client::{ClientError, NodeClient};

/// How long a call waits for a node the framework is controlling, by default.
pub const DEFAULT_CONTROL_WAIT: Duration = Duration::from_secs(30);

/// A control action that recently completed still explains a refused connection for this long.
const RECENT: Duration = Duration::from_secs(5);

/// Pause between two attempts.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// A call that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlWaitError {
    /// The node answered (a refusal, an undecodable answer) or failed with no control action to
    /// explain it.
    #[error(transparent)]
    Call(#[from] ClientError),
    /// The node did not come back from a control action within the deadline.
    #[error(
        "node-{node} did not come back within {}s of its {action} by the framework (last error: {last})",
        waited.as_secs_f64().round()
    )]
    NotBack {
        node: usize,
        action: NodeAction,
        waited: Duration,
        last: ClientError,
    },
    /// The node is not part of the testnet (any more).
    #[error("node-{node} is not in the testnet ({count} nodes)")]
    NoSuchNode { node: usize, count: usize },
}

/// Why node `i` may not answer now: the control action under way or last applied to it, if it
/// explains a failed connection.
pub fn controlled(net: &dyn Testnet, i: usize) -> Option<NodeAction> {
    if let Some(a) = net.control_in_flight(i) {
        return Some(a);
    }
    let last = net
        .control_log()
        .into_iter()
        .rev()
        .find(|r| r.node == i)
        .map(|r| (r.action, r.at));
    match net.node_state(i)? {
        NodeState::Stopped => Some(last.map_or(NodeAction::Stop, |(a, _)| a)),
        NodeState::Paused => Some(NodeAction::Pause),
        NodeState::Exited => None,
        NodeState::Running => {
            let (action, at) = last?;
            let recent = SystemTime::now()
                .duration_since(at)
                .is_ok_and(|age| age <= RECENT);
            recent.then_some(action)
        }
    }
}

/// Runs `call` on node `i`'s current client; while it fails for a transport reason the
/// framework's control of the node explains, retries until `deadline` passes.
pub async fn call_through_control<T, F, Fut>(
    net: &dyn Testnet,
    i: usize,
    deadline: Duration,
    call: F,
) -> Result<T, ControlWaitError>
where
    F: Fn(NodeClient) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let start = Instant::now();
    let mut waited_for: Option<NodeAction> = None;
    loop {
        let clients = net.clients();
        let Some(client) = clients.get(i).cloned() else {
            return Err(ControlWaitError::NoSuchNode {
                node: i,
                count: clients.len(),
            });
        };
        let e = match call(client).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transport() => e,
            Err(e) => return Err(e.into()),
        };
        let Some(action) = controlled(net, i).or(waited_for) else {
            return Err(e.into());
        };
        // a stop or pause that completed (the node is down on purpose, and no action brings it
        // back by itself) still waits: a chaos workload or another script may start it again
        waited_for = Some(action);
        let waited = start.elapsed();
        if waited >= deadline {
            return Err(ControlWaitError::NotBack {
                node: i,
                action,
                waited,
                last: e,
            });
        }
        tokio::time::sleep(RETRY_EVERY.min(deadline - waited)).await;
    }
}
