//! Readiness: API up, expected peers connected (n_peers >= degree), and the
//! chain moving (height >= 1), on every running node, within a deadline.

use std::time::{Duration, Instant};

use super::LocalTestnet;
use crate::client::NodeClient;
use crate::deploy::readiness::{Polling, poll_ready, wait_targets};
use crate::deploy::{DeployError, NodeState};

pub(super) use crate::deploy::readiness::Want;

/// Local probes poll fast; an exited process is a cheap `try_wait`, checked before every probe.
const POLLING: Polling = Polling {
    request_timeout: Duration::from_secs(1),
    interval: Duration::from_millis(100),
    gone_check_every: None,
    name_url: false,
};

pub(super) async fn wait_all(net: &LocalTestnet, deadline: Duration) -> Result<(), DeployError> {
    let targets: Vec<(usize, usize, NodeClient)> = net
        .lock_nodes()
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .map(|n| (n.index, n.expected_peers, n.client.clone()))
        .collect();
    wait_targets(targets, deadline, |i, want, client, start| {
        wait_one(net, i, client, want, start, deadline)
    })
    .await
}

/// Polls one node until it shows `want`, its process exits, or the deadline passes.
pub(super) async fn wait_one(
    net: &LocalTestnet,
    i: usize,
    client: NodeClient,
    want: Want,
    start: Instant,
    deadline: Duration,
) -> Result<(), String> {
    poll_ready(
        i,
        want,
        start,
        deadline,
        POLLING,
        net.events.as_ref(),
        || Some(client.clone()),
        || async move {
            match exited(net, i) {
                Some(exit) => Err(format!("node-{i} {exit}")),
                None => Ok(()),
            }
        },
    )
    .await
}

/// If node `i`'s process has exited: its status and the tail of its output.
pub(super) fn exited(net: &LocalTestnet, i: usize) -> Option<String> {
    let mut nodes = net.lock_nodes();
    let n = nodes.get_mut(i)?;
    let status = n.child.as_mut()?.try_wait().ok()??;
    n.child = None;
    n.pid = None;
    n.state = NodeState::Exited;
    let tail = tail_of(&n.dir.join("output.log"));
    Some(format!("exited with {status}: {tail}"))
}

/// Last few non-empty lines of a log file, for error messages.
pub(super) fn tail_of(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        format!("no output (see {})", path.display())
    } else {
        tail.chars().take(400).collect()
    }
}
