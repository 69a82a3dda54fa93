//! Readiness, with the local deployer's criteria: API up, expected peers connected
//! (n_peers >= degree), and the chain moving (height >= 1), on every running node, within a
//! deadline. A container that exits meanwhile fails at once, with its last log lines.

use std::time::{Duration, Instant};

use super::ComposeTestnet;
use crate::client::NodeClient;
use crate::deploy::{DeployError, NodeState};
use crate::report::RunEvent;

/// What a node must show to be ready.
#[derive(Debug, Clone, Copy)]
pub(super) struct Want {
    pub peers: usize,
    pub min_height: u64,
}

pub(super) async fn wait_all(net: &ComposeTestnet, deadline: Duration) -> Result<(), DeployError> {
    let start = Instant::now();
    let targets: Vec<(usize, usize)> = net
        .lock_nodes()
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .map(|n| (n.index, n.expected_peers))
        .collect();
    let futs = targets.into_iter().map(|(i, peers)| {
        wait_one(
            net,
            i,
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

/// Polls node `i` until it shows `want`, its container stops running, or the deadline passes.
pub(super) async fn wait_one(
    net: &ComposeTestnet,
    i: usize,
    want: Want,
    start: Instant,
    deadline: Duration,
) -> Result<(), String> {
    let mut last;
    let mut last_check = Instant::now();
    loop {
        let Some(client) = net.lock_nodes().get(i).map(|n| n.client.clone()) else {
            return Err(format!("node-{i} does not exist"));
        };
        match probe(&client.with_timeout(Duration::from_secs(1)), want).await {
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
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = Instant::now();
            if let Some(exit) = exited(net, i).await {
                return Err(format!("node-{i} {exit}"));
            }
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

/// If node `i`'s container is no longer running: its exit code and last log lines (and the
/// node is marked `Exited`).
pub(super) async fn exited(net: &ComposeTestnet, i: usize) -> Option<String> {
    let name = net.lock_nodes().get(i)?.container.clone();
    let info = net.docker.inspect_container(&name, None).await.ok()?;
    let state = info.state?;
    if state.running == Some(true) {
        return None;
    }
    if let Some(n) = net.lock_nodes().get_mut(i) {
        n.state = NodeState::Exited;
    }
    let tail = super::cleanup::container_logs(&net.docker, &name, Some(5))
        .await
        .unwrap_or_default();
    Some(format!(
        "container {name} exited with code {}: {}",
        state.exit_code.unwrap_or(-1),
        super::cleanup::one_line(&tail)
    ))
}
