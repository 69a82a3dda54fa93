//! One stream of block observations shared by workloads and expectations,
//! fed by every node's `/cryptarchia/blocks/stream` (pushed, not polled).
//! It keeps each node's canonical chain (so reorgs are handled: a block on an
//! abandoned branch no longer counts as inclusion) and deduplicates blocks by id.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use devnode::api_types::{BlockHeader, BlockStreamEvent};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::client::NodeClient;

/// Where a transaction was included.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlockRef {
    pub id: String,
    pub height: u64,
    pub slot: u64,
    /// When the feed first saw the block, ms since the Unix epoch.
    pub first_seen_ms: u64,
}

/// One event seen on one node's stream.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// A block became canonical on `node`.
    Block {
        node: usize,
        header: BlockHeader,
        tx_ids: Vec<String>,
        adopted_at_ms: u64,
        observed_at_ms: u64,
        /// First time any node reported this block.
        first_seen: bool,
    },
    /// `node` switched branches.
    Reorg {
        node: usize,
        fork_height: u64,
        depth: u64,
        new_tip: String,
    },
}

/// Counters of the feed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FeedStats {
    /// Distinct blocks seen.
    pub blocks_seen: u64,
    /// Reorg events over all nodes.
    pub reorgs: u64,
    /// Deepest reorg seen.
    pub max_reorg_depth: u64,
    /// Canonical height per node as seen on its stream (None before its first block).
    pub heights: Vec<Option<u64>>,
    /// Median of (observed - adopted) in ms, over the first observation of each block.
    pub delay_median_ms: Option<u64>,
    /// 99th percentile of the same.
    pub delay_p99_ms: Option<u64>,
    /// Transactions seen in canonical blocks (distinct ids).
    pub txs_seen: u64,
}

#[derive(Default)]
struct NodeView {
    /// height -> block id of this node's canonical chain (as far as observed).
    canonical: BTreeMap<u64, String>,
    connected: bool,
}

#[derive(Default)]
struct State {
    blocks: HashMap<String, BlockRef>,
    /// tx id -> blocks that contained it.
    txs: HashMap<String, Vec<String>>,
    views: Vec<NodeView>,
    reorgs: u64,
    max_reorg_depth: u64,
    delays: Vec<u64>,
}

struct Inner {
    state: Mutex<State>,
    tx: broadcast::Sender<FeedEvent>,
    cancel: CancellationToken,
}

/// Shared, cheap-to-clone block feed.
#[derive(Clone)]
pub struct BlockFeed {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BlockFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockFeed").finish_non_exhaustive()
    }
}

/// Wall clock, ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl BlockFeed {
    /// A feed with no nodes yet; it stops following streams when `cancel` fires.
    pub fn new(cancel: CancellationToken) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                tx,
                cancel,
            }),
        }
    }

    /// Starts following every client's stream.
    pub fn start(clients: &[NodeClient], cancel: CancellationToken) -> Self {
        let feed = Self::new(cancel);
        for c in clients {
            feed.follow(c.clone());
        }
        feed
    }

    /// Follows one more node (reconnecting whenever its stream drops, e.g.
    /// across a restart) until the feed is cancelled.
    pub fn follow(&self, client: NodeClient) {
        let idx = client.index();
        {
            let mut s = self.inner.state.lock().expect("feed lock");
            while s.views.len() <= idx {
                s.views.push(NodeView::default());
            }
        }
        let feed = self.clone();
        let cancel = self.inner.cancel.clone();
        tokio::spawn(async move {
            loop {
                if cancel.is_cancelled() {
                    return;
                }
                let stream = tokio::select! {
                    _ = cancel.cancelled() => return,
                    s = client.block_stream() => s,
                };
                if let Ok(mut stream) = stream {
                    feed.set_connected(idx, true);
                    loop {
                        let item = tokio::select! {
                            _ = cancel.cancelled() => return,
                            i = stream.next() => i,
                        };
                        match item {
                            Some(Ok(ev)) => feed.ingest(idx, ev),
                            Some(Err(e)) => {
                                tracing::debug!("block stream of {}: {e}", client.name());
                                break;
                            }
                            None => break,
                        }
                    }
                    feed.set_connected(idx, false);
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
    }

    fn set_connected(&self, idx: usize, c: bool) {
        let mut s = self.inner.state.lock().expect("feed lock");
        if let Some(v) = s.views.get_mut(idx) {
            v.connected = c;
        }
    }

    /// Feeds one stream event (public so that other feeds, e.g. a replay, can drive it).
    pub fn ingest(&self, node: usize, ev: BlockStreamEvent) {
        let observed_at_ms = now_ms();
        let out = {
            let mut s = self.inner.state.lock().expect("feed lock");
            while s.views.len() <= node {
                s.views.push(NodeView::default());
            }
            match ev {
                BlockStreamEvent::Block {
                    header,
                    tx_ids,
                    adopted_at_ms,
                } => {
                    let first_seen = !s.blocks.contains_key(&header.id);
                    if first_seen {
                        s.blocks.insert(
                            header.id.clone(),
                            BlockRef {
                                id: header.id.clone(),
                                height: header.height,
                                slot: header.slot,
                                first_seen_ms: observed_at_ms,
                            },
                        );
                        for t in &tx_ids {
                            s.txs.entry(t.clone()).or_default().push(header.id.clone());
                        }
                        s.delays.push(observed_at_ms.saturating_sub(adopted_at_ms));
                    }
                    let view = &mut s.views[node];
                    let _ = view.canonical.split_off(&(header.height + 1));
                    view.canonical.insert(header.height, header.id.clone());
                    FeedEvent::Block {
                        node,
                        header,
                        tx_ids,
                        adopted_at_ms,
                        observed_at_ms,
                        first_seen,
                    }
                }
                BlockStreamEvent::Reorg {
                    new_tip,
                    fork_height,
                    depth,
                    ..
                } => {
                    s.reorgs += 1;
                    s.max_reorg_depth = s.max_reorg_depth.max(depth);
                    let _ = s.views[node].canonical.split_off(&(fork_height + 1));
                    FeedEvent::Reorg {
                        node,
                        fork_height,
                        depth,
                        new_tip,
                    }
                }
            }
        };
        let _ = self.inner.tx.send(out);
    }

    /// Subscribes to events from now on (a slow subscriber loses the oldest).
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.inner.tx.subscribe()
    }

    /// Where a transaction was included on some node's canonical chain.
    pub fn tx_included(&self, tx_id: &str) -> Option<BlockRef> {
        let s = self.inner.state.lock().expect("feed lock");
        let blocks = s.txs.get(tx_id)?;
        blocks.iter().find_map(|b| {
            let r = s.blocks.get(b)?;
            s.views
                .iter()
                .any(|v| v.canonical.get(&r.height) == Some(&r.id))
                .then(|| r.clone())
        })
    }

    /// Block id at `height` on `node`'s canonical chain, as observed.
    pub fn canonical_at(&self, node: usize, height: u64) -> Option<String> {
        let s = self.inner.state.lock().expect("feed lock");
        s.views.get(node)?.canonical.get(&height).cloned()
    }

    /// Whether the feed currently has an open stream to `node`.
    pub fn connected(&self, node: usize) -> bool {
        let s = self.inner.state.lock().expect("feed lock");
        s.views.get(node).is_some_and(|v| v.connected)
    }

    /// Current counters.
    pub fn stats(&self) -> FeedStats {
        let s = self.inner.state.lock().expect("feed lock");
        let mut d = s.delays.clone();
        d.sort_unstable();
        let pct = |p: f64| -> Option<u64> {
            if d.is_empty() {
                None
            } else {
                Some(d[((d.len() - 1) as f64 * p).round() as usize])
            }
        };
        let txs_seen = s
            .txs
            .iter()
            .filter(|(_, blocks)| {
                blocks.iter().any(|b| {
                    s.blocks.get(b).is_some_and(|r| {
                        s.views
                            .iter()
                            .any(|v| v.canonical.get(&r.height) == Some(&r.id))
                    })
                })
            })
            .count() as u64;
        FeedStats {
            blocks_seen: s.blocks.len() as u64,
            reorgs: s.reorgs,
            max_reorg_depth: s.max_reorg_depth,
            heights: s
                .views
                .iter()
                .map(|v| v.canonical.keys().next_back().copied())
                .collect(),
            delay_median_ms: pct(0.5),
            delay_p99_ms: pct(0.99),
            txs_seen,
        }
    }

    /// Stops following every stream.
    pub fn stop(&self) {
        self.inner.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: &str, parent: &str, height: u64, txs: &[&str]) -> BlockStreamEvent {
        BlockStreamEvent::Block {
            header: BlockHeader {
                id: id.into(),
                parent: parent.into(),
                slot: height,
                height,
                leader: String::new(),
                proof: String::new(),
                tx_root: String::new(),
                signature: String::new(),
            },
            tx_ids: txs.iter().map(|s| s.to_string()).collect(),
            adopted_at_ms: now_ms(),
        }
    }

    #[tokio::test]
    async fn reorg_drops_inclusion_from_the_abandoned_branch() {
        let feed = BlockFeed::new(CancellationToken::new());
        feed.ingest(0, block("a1", "g", 1, &[]));
        feed.ingest(0, block("a2", "a1", 2, &["t1"]));
        feed.ingest(1, block("a1", "g", 1, &[]));
        feed.ingest(1, block("a2", "a1", 2, &["t1"]));
        assert_eq!(feed.tx_included("t1").unwrap().id, "a2");
        assert_eq!(feed.stats().blocks_seen, 2);
        for n in 0..2 {
            feed.ingest(
                n,
                BlockStreamEvent::Reorg {
                    old_tip: "a2".into(),
                    new_tip: "b3".into(),
                    fork_point: "a1".into(),
                    fork_height: 1,
                    depth: 1,
                },
            );
            feed.ingest(n, block("b2", "a1", 2, &[]));
            feed.ingest(n, block("b3", "b2", 3, &[]));
        }
        assert_eq!(feed.tx_included("t1"), None);
        let st = feed.stats();
        assert_eq!(st.reorgs, 2);
        assert_eq!(st.heights, vec![Some(3), Some(3)]);
        assert_eq!(feed.canonical_at(1, 2).as_deref(), Some("b2"));
    }
}
