//! The readiness probe every deployer shares: a node is ready when its API answers, it has its
//! expected peers (n_peers >= degree) and the chain moves (height >= min_height). The backends
//! differ only in how they find a node's client and how they learn that a node can no longer
//! become ready (an exited process, a stopped container, a failed pod); those are parameters here,
//! so every backend reports readiness with the same criteria and messages.

use std::future::Future;
use std::time::{Duration, Instant};

use super::DeployError;
use crate::client::NodeClient;
use crate::report::{EventSink, RunEvent};

/// What a node must show to be ready.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Want {
    pub peers: usize,
    pub min_height: u64,
}

/// How one backend polls a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Polling {
    /// Timeout of each API request.
    pub request_timeout: Duration,
    /// Pause between probes.
    pub interval: Duration,
    /// When the "can it still become ready" check runs: `None` before every probe (a cheap local
    /// check), `Some(d)` after a failed probe, at most once every `d` (a remote call).
    pub gone_check_every: Option<Duration>,
    /// Name the API's address when it does not answer (it is a forwarded port, not the node's own).
    pub name_url: bool,
}

/// Polls node `i` until it shows `want` (emitting `NodeReady`), `gone` reports it can no longer
/// become ready, or `deadline` (counted from `start`) passes. `client` gives the node's current
/// client (`None`: the node does not exist); `gone` gives Err(the full message) when it is gone.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn poll_ready<G, GF>(
    i: usize,
    want: Want,
    start: Instant,
    deadline: Duration,
    polling: Polling,
    events: Option<&EventSink>,
    mut client: impl FnMut() -> Option<NodeClient>,
    mut gone: G,
) -> Result<(), String>
where
    G: FnMut() -> GF,
    GF: Future<Output = Result<(), String>>,
{
    let mut last;
    let mut last_check = Instant::now();
    loop {
        let Some(c) = client() else {
            return Err(format!("node-{i} does not exist"));
        };
        if polling.gone_check_every.is_none() {
            gone().await?;
        }
        match probe(
            &c.with_timeout(polling.request_timeout),
            want,
            polling.name_url,
        )
        .await
        {
            Ok((height, peers)) => {
                if let Some(ev) = events {
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
        if let Some(every) = polling.gone_check_every
            && last_check.elapsed() >= every
        {
            last_check = Instant::now();
            gone().await?;
        }
        if start.elapsed() >= deadline {
            return Err(format!("node-{i} ({last})"));
        }
        tokio::time::sleep(polling.interval).await;
    }
}

/// Waits for every `(index, expected peers, extra)` target at once with
/// `wait_one(index, want, extra, start)`; all failures are reported together.
pub(crate) async fn wait_targets<T, F, Fut>(
    targets: Vec<(usize, usize, T)>,
    deadline: Duration,
    mut wait_one: F,
) -> Result<(), DeployError>
where
    F: FnMut(usize, Want, T, Instant) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    let futs = targets.into_iter().map(|(i, peers, extra)| {
        wait_one(
            i,
            Want {
                peers,
                min_height: 1,
            },
            extra,
            start,
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

/// One probe: Ok((height, peers)) when the node shows `want`, else why not.
async fn probe(client: &NodeClient, want: Want, name_url: bool) -> Result<(u64, usize), String> {
    let info = client.consensus_info().await.map_err(|e| {
        if name_url {
            format!("api not answering at {}: {}", client.base_url(), e.kind)
        } else {
            format!("api not answering: {}", e.kind)
        }
    })?;
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
