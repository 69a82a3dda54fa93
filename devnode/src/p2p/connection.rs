//! One peer connection: handshake, then a read loop that answers sync
//! requests and feeds gossip to the node, a writer task draining a bounded
//! queue, and a tip announcement every slot.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tracing::{debug, info, warn};

use crate::node::Node;
use crate::p2p::message::{Message, PROTOCOL_VERSION};
use crate::p2p::peers::{CountGuard, PeerHandle};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// A lost `chain` answer (dropped frame) is asked again after this.
const SYNC_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to ignore a peer's tips after its chain was refused.
const REFUSED_BACKOFF: Duration = Duration::from_secs(5);
const QUEUE: usize = 4096;
/// Most waiting transfers pushed to a peer when it connects.
const MEMPOOL_PUSH: usize = 1024;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connection closed by peer")]
    Closed,
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("duplicate connection to peer {0}")]
    Duplicate(String),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("node shutting down")]
    Shutdown,
}

/// Outcome of a connection that completed its handshake.
pub struct Ended {
    pub peer_key: String,
    pub reason: ConnError,
}

/// Runs a connection until it closes. Returns the peer key when the
/// handshake succeeded (the dialer remembers it to avoid duplicates).
pub async fn serve(
    node: Arc<Node>,
    stream: TcpStream,
    outbound: bool,
    remote: String,
) -> Result<Ended, ConnError> {
    let _open = CountGuard::new(&node.peers.connections);
    let pending = CountGuard::new(&node.peers.pending);
    let _ = stream.set_nodelay(true);
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(node.config.limits.max_frame_bytes)
        .new_codec();
    let mut framed = Framed::new(stream, codec);

    let hello = Message::Handshake {
        version: PROTOCOL_VERSION,
        genesis: node.rules.genesis_id.clone(),
        public_key: node.public_key.clone(),
        advertise: node.advertise.clone(),
    };
    let peer_key = tokio::select! {
        _ = node.cancel.cancelled() => return Err(ConnError::Shutdown),
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&node, &mut framed, hello)) => {
            r.map_err(|_| ConnError::Handshake(format!(
                "no handshake from {remote} within {}s", HANDSHAKE_TIMEOUT.as_secs()
            )))??
        }
    };
    let short = short_key(&peer_key);

    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(QUEUE);
    let cancel = node.cancel.child_token();
    let conn_id = node.peers.next_conn_id();
    let handle = PeerHandle {
        conn_id,
        outbound,
        remote: remote.clone(),
        sender: out_tx.clone(),
        cancel: cancel.clone(),
    };
    if let Err(why) = node.peers.register(&node.public_key, &peer_key, handle) {
        debug!(peer = %short, %remote, "closing connection: {why}");
        return Err(ConnError::Duplicate(peer_key));
    }
    drop(pending);
    info!(peer = %short, %remote, outbound, "peer connected");

    let (mut sink, mut frames) = framed.split();
    let writer_cancel = cancel.clone();
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = writer_cancel.cancelled() => break,
                frame = out_rx.recv() => {
                    let Some(frame) = frame else { break };
                    if let Err(e) = sink.send(frame).await {
                        debug!("write failed: {e}");
                        break;
                    }
                }
            }
        }
        writer_cancel.cancel();
    });

    let mut conn = Conn {
        node: node.clone(),
        peer_key: peer_key.clone(),
        out: out_tx,
        inflight: None,
        wanted: None,
        refused_until: None,
    };
    conn.send_tip();
    let waiting = node.state().mempool.sample(MEMPOOL_PUSH);
    for tx in waiting {
        conn.send(&Message::Tx { tx });
    }
    let mut tick = tokio::time::interval(Duration::from_millis(node.rules.slot_duration_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let reason = loop {
        tokio::select! {
            _ = cancel.cancelled() => break if node.cancel.is_cancelled() {
                ConnError::Shutdown
            } else {
                ConnError::Duplicate(peer_key.clone())
            },
            _ = tick.tick() => {
                conn.send_tip();
                conn.expire_sync();
            }
            frame = frames.next() => {
                let frame = match frame {
                    None => break ConnError::Closed,
                    Some(Err(e)) => break ConnError::Read(e),
                    Some(Ok(f)) => f.freeze(),
                };
                let msg: Message = match serde_json::from_slice(&frame) {
                    Ok(m) => m,
                    Err(e) => break ConnError::Protocol(format!("bad json frame: {e}")),
                };
                if let Err(e) = conn.handle(msg, frame) {
                    break e;
                }
            }
        }
    };
    cancel.cancel();
    let _ = writer.await;
    node.peers.unregister(&peer_key, conn_id);
    match &reason {
        ConnError::Read(_) | ConnError::Protocol(_) => {
            warn!(peer = %short, %remote, "peer disconnected: {reason}")
        }
        _ => info!(peer = %short, %remote, "peer disconnected: {reason}"),
    }
    Ok(Ended { peer_key, reason })
}

async fn handshake(
    node: &Node,
    framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
    hello: Message,
) -> Result<String, ConnError> {
    framed
        .send(hello.encode())
        .await
        .map_err(|e| ConnError::Handshake(format!("send failed: {e}")))?;
    let frame = match framed.next().await {
        None => return Err(ConnError::Closed),
        Some(Err(e)) => return Err(ConnError::Read(e)),
        Some(Ok(f)) => f,
    };
    match serde_json::from_slice::<Message>(&frame) {
        Ok(Message::Handshake {
            version,
            genesis,
            public_key,
            ..
        }) => {
            if version != PROTOCOL_VERSION {
                return Err(ConnError::Handshake(format!(
                    "peer speaks protocol version {version}, this node speaks {PROTOCOL_VERSION}"
                )));
            }
            if genesis != node.rules.genesis_id {
                return Err(ConnError::Handshake(format!(
                    "peer has genesis {genesis}, this node has {} (another testnet)",
                    node.rules.genesis_id
                )));
            }
            if public_key == node.public_key {
                return Err(ConnError::Handshake("connected to itself".into()));
            }
            if crate::crypto::verifying_key_from_hex(&public_key).is_err() {
                return Err(ConnError::Handshake(format!(
                    "peer public key {public_key:?} is not a valid ed25519 key"
                )));
            }
            Ok(public_key)
        }
        Ok(_) => Err(ConnError::Handshake(
            "first frame is not a handshake".into(),
        )),
        Err(e) => Err(ConnError::Handshake(format!("bad json frame: {e}"))),
    }
}

/// Short form of a key for logs: its first 8 characters (not bytes: a peer's handshake may
/// carry a key that is not ASCII hex, which must not panic).
pub fn short_key(key: &str) -> &str {
    match key.char_indices().nth(8) {
        Some((end, _)) => &key[..end],
        None => key,
    }
}

/// Per-connection sync state.
struct Conn {
    node: Arc<Node>,
    peer_key: String,
    out: mpsc::Sender<Bytes>,
    /// The sync request in flight and when it was sent.
    inflight: Option<Instant>,
    /// A tip to sync once the request in flight completes.
    wanted: Option<String>,
    refused_until: Option<Instant>,
}

impl Conn {
    fn send(&self, msg: &Message) {
        if self.out.try_send(msg.encode()).is_err() {
            debug!(peer = %short_key(&self.peer_key), "send queue full, frame dropped");
        }
    }

    fn send_tip(&self) {
        let (id, height) = self.node.announced_tip();
        self.send(&Message::Tip { id, height });
    }

    fn expire_sync(&mut self) {
        if self.inflight.is_some_and(|t| t.elapsed() > SYNC_TIMEOUT) {
            debug!(peer = %short_key(&self.peer_key), "sync request timed out");
            self.inflight = None;
        }
    }

    fn request_sync(&mut self, tip: String, extra_known: Option<String>) {
        if self.refused_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        if self.inflight.is_some() {
            self.wanted = Some(tip);
            return;
        }
        let mut locator = Vec::new();
        locator.extend(extra_known);
        locator.extend(self.node.locator());
        self.send(&Message::GetChain { tip, locator });
        self.inflight = Some(Instant::now());
    }

    fn handle(&mut self, msg: Message, frame: Bytes) -> Result<(), ConnError> {
        match msg {
            Message::Handshake { .. } => {
                return Err(ConnError::Protocol("second handshake".into()));
            }
            Message::Tip { id, height } => {
                if self.node.knows(&id) {
                    self.node.mark_online("a peer's tip is known");
                } else if self.node.prefers(height, &id) {
                    self.request_sync(id, None);
                } else {
                    self.node.mark_online("this node is ahead of a peer");
                }
            }
            Message::Block { block } => {
                if self.node.knows(&block.header.id) {
                    return Ok(());
                }
                let id = block.header.id.clone();
                let report = self.node.import_blocks(vec![block], Some(&self.peer_key));
                if report.unknown_parent {
                    self.request_sync(id, None);
                } else if report.stored > 0
                    && (report.equivocations == 0 || self.node.config.testing.accept_equivocations)
                {
                    // Forward the frame as received: no re-encoding. The second block of an
                    // equivocation is not spread further.
                    self.node.peers.broadcast(&frame, Some(&self.peer_key));
                }
            }
            Message::Tx { tx } => match self.node.add_tx(tx.clone(), false) {
                Ok((_, crate::mempool::Added::New))
                    if !self.node.config.testing.drop_transactions =>
                {
                    self.node.peers.broadcast(&frame, Some(&self.peer_key));
                }
                Err(crate::node::AddTxError::Invalid(reason)) => {
                    self.node.note_invalid_tx(&self.peer_key, &tx, &reason);
                }
                _ => {}
            },
            Message::GetChain { tip, locator } => {
                let known: HashSet<String> = locator.into_iter().collect();
                let (blocks, more) = self.node.blocks_after(&tip, &known);
                self.send(&Message::Chain { tip, blocks, more });
            }
            Message::Chain { tip, blocks, more } => {
                self.inflight = None;
                let last = blocks.last().map(|b| b.header.id.clone());
                let tip_before = self.node.tip().0;
                let report = self.node.import_blocks(blocks, Some(&self.peer_key));
                if report.disk_full {
                    // our own fault, not the peer's: no backoff, the store logged it
                    return Ok(());
                }
                if let Some(why) = &report.refused {
                    warn!(peer = %short_key(&self.peer_key), "refused the peer's chain: {why}");
                    self.refused_until = Some(Instant::now() + REFUSED_BACKOFF);
                    self.node
                        .mark_online("sync with a peer finished (its chain was refused)");
                    return Ok(());
                }
                let (tip_after, height_after) = self.node.tip();
                if tip_after != tip_before {
                    // Let the other peers hear of the new tip now rather
                    // than at their next tip exchange.
                    if let Some(block) = self.node.block(&tip_after) {
                        self.node
                            .peers
                            .broadcast(&Message::Block { block }.encode(), Some(&self.peer_key));
                    }
                    debug!(peer = %short_key(&self.peer_key), height = height_after, "synced");
                }
                if more && last.is_some() && !report.unknown_parent {
                    self.request_sync(tip, last);
                } else {
                    self.node.mark_online("sync with a peer finished");
                    if let Some(wanted) = self.wanted.take()
                        && !self.node.knows(&wanted)
                    {
                        self.request_sync(wanted, None);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod short_key_tests {
    use super::short_key;

    #[test]
    fn a_non_ascii_key_is_shortened_without_panicking() {
        assert_eq!(short_key("0123456789abcdef"), "01234567");
        assert_eq!(short_key("0123456€89"), "0123456€");
        assert_eq!(short_key("ab"), "ab");
    }
}
