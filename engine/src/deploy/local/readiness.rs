//! Readiness: API up, expected peers connected (n_peers >= degree), and the
//! chain moving (height >= 1), on every running node, within a deadline.

use std::time::{Duration, Instant};

use super::LocalTestnet;
use crate::client::NodeClient;
use crate::deploy::{DeployError, NodeState};
use crate::report::RunEvent;

/// What a node must show to be ready.
#[derive(Debug, Clone, Copy)]
pub(super) struct Want {
    pub peers: usize,
    pub min_height: u64,
}

pub(super) async fn wait_all(net: &LocalTestnet, deadline: Duration) -> Result<(), DeployError> {
    let start = Instant::now();
    let targets: Vec<(usize, NodeClient, usize)> = net
        .lock_nodes()
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .map(|n| (n.index, n.client.clone(), n.expected_peers))
        .collect();
    let futs = targets.into_iter().map(|(i, c, peers)| {
        wait_one(
            net,
            i,
            c,
            Want {
                peers,
                min_height: 1,
            },
            start,
            deadline,
        )
    });
    let failures: Vec<String> = futures::future::join_all(futs)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(DeployError::NotReady {
            waited: deadline,
            nodes: failures,
        })
    }
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
    let client = client.with_timeout(Duration::from_secs(1));
    let mut last;
    loop {
        if let Some(exit) = exited(net, i) {
            return Err(format!("node-{i} {exit}"));
        }
        match probe(&client, want).await {
            Ok((height, peers)) => {
                if let Some(ev) = &net.events {
                    ev.emit(RunEvent::NodeReady {
                        node: i,
                        height,
                        peers,
                        after: start.elapsed(),
                    });
                }
                return Ok(());
            }
            Err(why) => last = why,
        }
        if start.elapsed() >= deadline {
            return Err(format!("node-{i} ({last})"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn probe(client: &NodeClient, want: Want) -> Result<(u64, usize), String> {
    let info = client
        .consensus_info()
        .await
        .map_err(|e| format!("api not answering: {}", e.kind))?;
    let net = client
        .network_info()
        .await
        .map_err(|e| format!("network info failed: {}", e.kind))?;
    let mut why = Vec::new();
    if net.n_peers < want.peers {
        why.push(format!("n_peers {} < {}", net.n_peers, want.peers));
    }
    if info.height < want.min_height {
        why.push(format!("height {} < {}", info.height, want.min_height));
    }
    if why.is_empty() {
        Ok((info.height, net.n_peers))
    } else {
        Err(why.join(", "))
    }
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
