//! Readiness, with the local deployer's criteria: API up, expected peers connected
//! (n_peers >= degree), and the chain moving (height >= 1), on every running node, within a
//! deadline. A container that exits meanwhile fails at once, with its last log lines.

use std::time::{Duration, Instant};

use super::ComposeTestnet;
use crate::deploy::readiness::{Polling, Unready, exit_tail, poll_ready, wait_targets};
use crate::deploy::{DeployError, NodeState};

pub(super) use crate::deploy::readiness::Want;

/// Whether a container still runs is a Docker API call (a local socket, a few ms): checked after
/// a failed probe, five times a second at most, so an exit is reported within ~200 ms.
const POLLING: Polling = Polling {
    request_timeout: Duration::from_secs(1),
    interval: Duration::from_millis(100),
    gone_check_every: Some(Duration::from_millis(200)),
    name_url: false,
};

pub(super) async fn wait_all(net: &ComposeTestnet, deadline: Duration) -> Result<(), DeployError> {
    let targets: Vec<(usize, usize, ())> = net
        .lock_nodes()
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .map(|n| (n.index, n.expected_peers, ()))
        .collect();
    let online = net.kind.ready_when_online();
    wait_targets(targets, deadline, |i, want, (), start| {
        wait_one(net, i, Want { online, ..want }, start, deadline)
    })
    .await
}

/// Polls node `i` until it shows `want`, its container stops running, or the deadline passes.
pub(super) async fn wait_one(
    net: &ComposeTestnet,
    i: usize,
    want: Want,
    start: Instant,
    deadline: Duration,
) -> Result<(), Unready> {
    poll_ready(
        i,
        want,
        start,
        deadline,
        POLLING,
        net.ctl.events.as_ref(),
        || net.lock_nodes().get(i).map(|n| n.client.clone()),
        || async move {
            match exited(net, i).await {
                Some(exit) => Err(Unready::Exited(exit)),
                None => Ok(()),
            }
        },
    )
    .await
}

/// If node `i`'s container is no longer running: the `NodeExited` error with its exit code and
/// last log lines (and the node is marked `Exited`).
pub(super) async fn exited(net: &ComposeTestnet, i: usize) -> Option<DeployError> {
    let name = net.lock_nodes().get(i)?.container.clone();
    let info = net.docker.inspect_container(&name, None).await.ok()?;
    let state = info.state?;
    if state.running == Some(true) {
        return None;
    }
    if let Some(n) = net.lock_nodes().get_mut(i) {
        n.state = NodeState::Exited;
    }
    let tail = super::cleanup::container_logs(&net.docker, &name, Some(20))
        .await
        .unwrap_or_else(|e| format!("({e})"));
    let status = state
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    Some(DeployError::NodeExited {
        node: format!("node-{i}"),
        code: state.exit_code.map(|c| c as i32),
        signal: None,
        tail: exit_tail(&tail),
        log: format!(
            "docker logs {name} (container {status}; saved to {} at teardown when the run dir is kept)",
            net.run_dir
                .join("logs")
                .join(format!("node-{i}.log"))
                .display()
        ),
    })
}
