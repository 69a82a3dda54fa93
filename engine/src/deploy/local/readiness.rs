//! Readiness: API up, expected peers connected (n_peers >= degree), and the
//! chain moving (height >= 1), on every running node, within a deadline.

use std::time::{Duration, Instant};

use super::LocalTestnet;
use crate::client::NodeClient;
use crate::deploy::readiness::{Polling, Unready, exit_tail, poll_ready, wait_targets};
use crate::deploy::{DeployError, NodeState};

pub(super) use crate::deploy::readiness::Want;

/// Local probes poll fast; an exited process is a cheap `try_wait`, checked before every probe
/// (so an exit is reported within one interval plus one refused probe).
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
    let online = net.kind.ready_when_online();
    wait_targets(targets, deadline, |i, want, client, start| {
        wait_one(net, i, client, Want { online, ..want }, start, deadline)
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
) -> Result<(), Unready> {
    poll_ready(
        i,
        want,
        start,
        deadline,
        POLLING,
        net.ctl.events.as_ref(),
        || Some(client.clone()),
        || async move {
            match exited(net, i) {
                Some(exit) => Err(Unready::Exited(exit)),
                None => Ok(()),
            }
        },
    )
    .await
}

/// If node `i`'s process has exited (it is reaped and marked `Exited`): the `NodeExited` error
/// with its exit code or signal and the tail of its `output.log`.
pub(super) fn exited(net: &LocalTestnet, i: usize) -> Option<DeployError> {
    use std::os::unix::process::ExitStatusExt;
    let mut nodes = net.lock_nodes();
    let n = nodes.get_mut(i)?;
    let status = n.child.as_mut()?.try_wait().ok()??;
    n.child = None;
    n.pid = None;
    n.state = NodeState::Exited;
    let log = n.dir.join("output.log");
    drop(nodes);
    let text = read_end(&log, 64 * 1024).unwrap_or_default();
    Some(DeployError::NodeExited {
        node: format!("node-{i}"),
        code: status.code(),
        signal: status.signal(),
        tail: exit_tail(&String::from_utf8_lossy(&text)),
        log: log.display().to_string(),
    })
}

/// The last `max` bytes of a file (a node that ran for long may have a large output).
fn read_end(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}
