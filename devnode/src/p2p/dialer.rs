//! Accepting peers, and dialling the configured (or API-added) addresses
//! forever with capped exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::node::Node;
use crate::p2p::connection::{ConnError, serve, short_key};
use crate::p2p::peers::CountGuard;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Cap of the redial backoff: small, so a healed link is used again fast.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts inbound connections until shutdown.
pub async fn accept_loop(node: Arc<Node>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = node.cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, remote)) => {
                let node2 = node.clone();
                node.tasks.spawn(async move {
                    match serve(node2, stream, false, remote.to_string()).await {
                        Ok(_) | Err(ConnError::Shutdown | ConnError::Duplicate(_)) => {}
                        Err(e) => warn!(%remote, "inbound connection closed: {e}"),
                    }
                });
            }
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Dials `addr` and redials whenever the connection ends, until shutdown.
/// The address is used as given (it may be a proxy standing in for the
/// peer); the peer's advertised address is never substituted.
pub async fn dial_forever(node: Arc<Node>, addr: String) {
    let mut backoff = FIRST_BACKOFF;
    let mut peer_key: Option<String> = None;
    let mut failures = 0u32;
    loop {
        if node.cancel.is_cancelled() {
            return;
        }
        // Already connected to that peer the other way round: wait.
        if let Some(key) = &peer_key
            && node.peers.contains(key)
        {
            if !sleep_or_cancel(&node, Duration::from_millis(250)).await {
                return;
            }
            continue;
        }
        let pending = CountGuard::new(&node.peers.pending);
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await;
        drop(pending);
        match connected {
            Ok(Ok(stream)) => match serve(node.clone(), stream, true, addr.clone()).await {
                Ok(ended) => {
                    peer_key = Some(ended.peer_key);
                    failures = 0;
                    backoff = FIRST_BACKOFF;
                    if matches!(ended.reason, ConnError::Shutdown) {
                        return;
                    }
                }
                Err(ConnError::Shutdown) => return,
                Err(ConnError::Duplicate(key)) => {
                    debug!(%addr, peer = %short_key(&key), "already connected to this peer");
                    peer_key = Some(key);
                    backoff = FIRST_BACKOFF;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        warn!(%addr, "connection to peer failed: {e}");
                    } else {
                        debug!(%addr, failures, "connection to peer failed: {e}");
                    }
                }
            },
            Ok(Err(e)) => {
                failures += 1;
                if failures == 1 {
                    info!(%addr, "cannot reach peer yet, will retry: {e}");
                } else {
                    debug!(%addr, failures, "dial failed: {e}");
                }
            }
            Err(_) => {
                failures += 1;
                debug!(%addr, "dial timed out after {}s", CONNECT_TIMEOUT.as_secs());
            }
        }
        if !sleep_or_cancel(&node, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sleeps; false when the node is shutting down.
async fn sleep_or_cancel(node: &Node, d: Duration) -> bool {
    tokio::select! {
        _ = node.cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
