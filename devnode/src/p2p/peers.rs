//! The set of handshaken peers, keyed by public key so that two connections
//! to the same node (both sides dialling, or a proxy and a direct address)
//! collapse into one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A live peer connection.
#[derive(Debug, Clone)]
pub struct PeerHandle {
    pub conn_id: u64,
    /// Whether we dialled it.
    pub outbound: bool,
    pub remote: String,
    pub sender: mpsc::Sender<Bytes>,
    pub cancel: CancellationToken,
}

/// Handshaken peers and connection counters.
#[derive(Debug, Default)]
pub struct PeerSet {
    peers: Mutex<HashMap<String, PeerHandle>>,
    next_conn: AtomicU64,
    /// Open TCP connections (handshaken or not).
    pub connections: AtomicUsize,
    /// Dials and handshakes in progress.
    pub pending: AtomicUsize,
}

impl PeerSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PeerHandle>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a handshaken connection. When the peer is already
    /// connected, both ends keep the connection dialled by the smaller
    /// public key, so they agree on which one to drop.
    pub fn register(
        &self,
        own_key: &str,
        peer_key: &str,
        handle: PeerHandle,
    ) -> Result<(), &'static str> {
        let mut peers = self.lock();
        if let Some(existing) = peers.get(peer_key) {
            let preferred_outbound = own_key < peer_key;
            if handle.outbound == preferred_outbound && existing.outbound != preferred_outbound {
                existing.cancel.cancel();
            } else {
                return Err("already connected to this peer");
            }
        }
        peers.insert(peer_key.to_owned(), handle);
        Ok(())
    }

    /// Removes a connection if it is still the registered one.
    pub fn unregister(&self, peer_key: &str, conn_id: u64) {
        let mut peers = self.lock();
        if peers.get(peer_key).is_some_and(|h| h.conn_id == conn_id) {
            peers.remove(peer_key);
        }
    }

    pub fn contains(&self, peer_key: &str) -> bool {
        self.lock().contains_key(peer_key)
    }

    /// Public keys of the handshaken peers, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Queues a frame to every peer but `except`; a peer whose queue is full
    /// misses it (gossip tolerates loss: tip exchange repairs it).
    pub fn broadcast(&self, frame: &Bytes, except: Option<&str>) {
        for (key, handle) in self.lock().iter() {
            if Some(key.as_str()) != except {
                let _ = handle.sender.try_send(frame.clone());
            }
        }
    }

    /// Queues `first` to half the peers and `second` to the others (alternating in key
    /// order); a lone peer gets both, so that it sees the two.
    pub fn broadcast_split(&self, first: &Bytes, second: &Bytes) {
        let peers = self.lock();
        let mut keys: Vec<&String> = peers.keys().collect();
        keys.sort();
        let lone = keys.len() == 1;
        for (i, key) in keys.into_iter().enumerate() {
            let handle = &peers[key];
            if i % 2 == 0 {
                let _ = handle.sender.try_send(first.clone());
            }
            if i % 2 == 1 || lone {
                let _ = handle.sender.try_send(second.clone());
            }
        }
    }
}

/// Decrements a counter when dropped.
pub struct CountGuard<'a>(&'a AtomicUsize);

impl<'a> CountGuard<'a> {
    pub fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
