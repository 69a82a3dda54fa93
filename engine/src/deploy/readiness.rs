//! The readiness probe every deployer shares: a node is ready when its API answers, it has its
//! expected peers (n_peers >= degree) and the chain moves (height >= min_height). The backends
//! differ only in how they find a node's client and how they learn that a node can no longer
//! become ready (an exited process, a stopped container, a failed pod); those are parameters here,
//! so every backend reports readiness with the same criteria and messages.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::DeployError;
use crate::client::NodeClient;
use crate::report::{EventSink, RunEvent};

/// What a node must show to be ready.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Want {
    pub peers: usize,
    pub min_height: u64,
    /// The node must also report mode `Online` (the node kind's readiness rule).
    pub online: bool,
}

/// Why one node did not become ready.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unready {
    /// Not ready by the deadline, or failed for good in a way reported with the others (the
    /// line names the node and why); all such nodes go into one `DeployError::NotReady`.
    #[error("{0}")]
    Late(String),
    /// Its process or container exited (`DeployError::NodeExited`): the wait ends at once.
    #[error(transparent)]
    Exited(DeployError),
}

impl Want {
    /// Answers its API with at least `peers` peers, at any height: a node just started again
    /// (`peers` 0) or added at run time.
    pub(crate) fn peers(peers: usize) -> Self {
        Self {
            peers,
            min_height: 0,
            online: false,
        }
    }
}

impl From<String> for Unready {
    fn from(why: String) -> Self {
        Unready::Late(why)
    }
}

/// The last lines of a node's output for a `NodeExited` error: at most `TAIL_LINES` non-empty
/// lines and `TAIL_BYTES` bytes (the end is kept), newline-separated.
pub(crate) fn exit_tail(output: &str) -> String {
    const TAIL_LINES: usize = 10;
    const TAIL_BYTES: usize = 2048;
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if tail.len() <= TAIL_BYTES {
        return tail;
    }
    let mut cut = tail.len() - TAIL_BYTES;
    while !tail.is_char_boundary(cut) {
        cut += 1;
    }
    format!("...{}", &tail[cut..])
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
/// client (`None`: the node does not exist); `gone` gives Err(why) when it is gone (checked once
/// more when the deadline passes, so an exit is never reported as a timeout).
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
) -> Result<(), Unready>
where
    G: FnMut() -> GF,
    GF: Future<Output = Result<(), Unready>>,
{
    let mut last;
    let mut last_check = Instant::now();
    loop {
        let Some(c) = client() else {
            return Err(Unready::Late(format!("node-{i} does not exist")));
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
            gone().await?;
            return Err(Unready::Late(format!("node-{i} ({last})")));
        }
        tokio::time::sleep(polling.interval).await;
    }
}

/// Waits for every `(index, expected peers, extra)` target at once with
/// `wait_one(index, want, extra, start)`. A node that exits ends the wait at once with its
/// `NodeExited` error; the other failures are reported together (by node index).
pub(crate) async fn wait_targets<T, F, Fut>(
    targets: Vec<(usize, usize, T)>,
    deadline: Duration,
    mut wait_one: F,
) -> Result<(), DeployError>
where
    F: FnMut(usize, Want, T, Instant) -> Fut,
    Fut: Future<Output = Result<(), Unready>>,
{
    let start = Instant::now();
    let mut futs: FuturesUnordered<_> = targets
        .into_iter()
        .map(|(i, peers, extra)| {
            let fut = wait_one(
                i,
                Want {
                    peers,
                    min_height: 1,
                    online: false,
                },
                extra,
                start,
            );
            async move { (i, fut.await) }
        })
        .collect();
    let mut failures: Vec<(usize, String)> = Vec::new();
    while let Some((i, result)) = futs.next().await {
        match result {
            Ok(()) => {}
            Err(Unready::Exited(e)) => return Err(e),
            Err(Unready::Late(why)) => failures.push((i, why)),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        failures.sort_by_key(|f| f.0);
        Err(DeployError::NotReady {
            waited: deadline,
            nodes: failures.into_iter().map(|f| f.1).collect(),
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
    if want.online && !info.is_online() {
        why.push(format!("mode {} (not Online)", info.mode));
    }
    if why.is_empty() {
        Ok((info.height, net.n_peers))
    } else {
        Err(why.join(", "))
    }
}
