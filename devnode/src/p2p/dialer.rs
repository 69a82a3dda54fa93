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
/// Longest redial backoff, for slots of 4 s and more.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Cap of the redial backoff: half a slot (between 100 ms and 2 s), so a
/// healed link is used again within half a slot. A cap of 2 s regardless of
/// the slot let a "2 s" partition on 200 ms slots last up to 4 s (20 slots):
/// long enough for both sides to grow more than k blocks past their last
/// common block, after which neither may reorganise and the fork is final.
pub fn backoff_cap(slot_duration_ms: u64) -> Duration {
    Duration::from_millis(slot_duration_ms / 2).clamp(FIRST_BACKOFF, MAX_BACKOFF)
}
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
    let cap = backoff_cap(node.rules.slot_duration_ms);
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
        backoff = (backoff * 2).min(cap);
    }
}

/// Sleeps; false when the node is shutting down.
async fn sleep_or_cancel(node: &Node, d: Duration) -> bool {
    tokio::select! {
        _ = node.cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_cap_is_half_a_slot_within_bounds() {
        assert_eq!(backoff_cap(200), FIRST_BACKOFF);
        assert_eq!(backoff_cap(1000), Duration::from_millis(500));
        assert_eq!(backoff_cap(30_000), MAX_BACKOFF);
    }
}
