//! One stream of block observations shared by workloads, expectations and
//! scripts, for every API dialect. Per node it follows the dialect's block
//! stream where the node has a usable one, and otherwise polls
//! `/cryptarchia/info` and walks parents by id (as the reference framework
//! does). No real node sends heights or reorg notices: heights come from the
//! parent chain (anchored at the tip height of `/cryptarchia/info`), and reorgs
//! are derived here, by comparing each node's newly canonical branch with the
//! chain observed before. Both modes produce the same [`FeedEvent`]s. The feed
//! keeps each node's canonical chain (so a block on an abandoned branch no
//! longer counts as inclusion) and deduplicates blocks by id.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::client::{Block, NodeClient, StreamBlock};

/// Longest parent walk of one resolution; a longer gap is anchored where the walk stops.
const MAX_WALK: usize = 2048;

/// Where a transaction was included.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlockRef {
    pub id: String,
    pub height: u64,
    pub slot: u64,
    /// When the feed first saw the block, ms since the Unix epoch.
    pub first_seen_ms: u64,
}

/// A block as the feed knows it: with the height derived from its parent chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeedBlock {
    pub id: String,
    pub parent: String,
    pub slot: u64,
    pub height: u64,
    /// Hashes of its transactions (those the dialect reports or the client can compute).
    pub tx_ids: Vec<String>,
}

impl FeedBlock {
    /// The neutral block at a known height.
    pub fn from_block(b: &Block, height: u64) -> Self {
        Self {
            id: b.id.clone(),
            parent: b.parent.clone(),
            slot: b.slot,
            height,
            tx_ids: b.tx_ids(),
        }
    }
}

/// One event seen on one node.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// A block became canonical on `node`.
    Block {
        node: usize,
        block: FeedBlock,
        observed_at_ms: u64,
        /// First time any node reported this block.
        first_seen: bool,
    },
    /// `node` switched branches (derived by the feed): `depth` blocks above
    /// `fork_height` were abandoned; the new branch's blocks follow as `Block` events.
    Reorg {
        node: usize,
        fork_height: u64,
        depth: u64,
        old_tip: String,
        new_tip: String,
    },
}

/// How the feed reads a node's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedMode {
    /// The block stream where the node serves one, else polling.
    #[default]
    Auto,
    /// The block stream only (a node without one is never observed).
    Stream,
    /// Poll `/cryptarchia/info` and walk parents.
    Poll,
}

impl std::str::FromStr for FeedMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(FeedMode::Auto),
            "stream" => Ok(FeedMode::Stream),
            "poll" => Ok(FeedMode::Poll),
            _ => Err(format!("feed mode {s:?}: expected auto, stream or poll")),
        }
    }
}

/// Settings of a feed.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub mode: FeedMode,
    /// Interval between two `/cryptarchia/info` polls in poll mode.
    pub poll_interval: Duration,
    /// Start of slot 0 (ms since the Unix epoch) and the slot length: the feed delay of a
    /// block is measured from the start of its slot. Unknown: no delay is measured.
    pub slot_clock: Option<(u64, Duration)>,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            mode: FeedMode::Auto,
            poll_interval: Duration::from_millis(250),
            slot_clock: None,
        }
    }
}

/// Counters of the feed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FeedStats {
    /// Distinct blocks seen.
    pub blocks_seen: u64,
    /// Reorgs over all nodes (derived by the feed).
    pub reorgs: u64,
    /// Deepest reorg seen.
    pub max_reorg_depth: u64,
    /// Canonical height per node as observed (None before its first block).
    pub heights: Vec<Option<u64>>,
    /// Median of (first observation - start of the block's slot) in ms, over blocks
    /// made after the feed started.
    pub delay_median_ms: Option<u64>,
    /// 99th percentile of the same.
    pub delay_p99_ms: Option<u64>,
    /// Transactions seen in canonical blocks (distinct ids).
    pub txs_seen: u64,
    /// How each node is read: `stream`, `poll`, or `none` before the first contact.
    pub modes: Vec<String>,
}

#[derive(Default)]
struct NodeView {
    /// height -> block id of this node's canonical chain (as far as observed).
    canonical: BTreeMap<u64, String>,
    connected: bool,
    mode: Option<&'static str>,
}

#[derive(Default)]
struct State {
    blocks: HashMap<String, BlockRef>,
    /// Every block the feed knows, with its height.
    known: HashMap<String, FeedBlock>,
    /// tx id -> blocks that contained it.
    txs: HashMap<String, Vec<String>>,
    views: Vec<NodeView>,
    reorgs: u64,
    max_reorg_depth: u64,
    delays: Vec<u64>,
}

impl State {
    fn view(&mut self, node: usize) -> &mut NodeView {
        while self.views.len() <= node {
            self.views.push(NodeView::default());
        }
        &mut self.views[node]
    }
}

struct Inner {
    state: Mutex<State>,
    tx: broadcast::Sender<FeedEvent>,
    cancel: CancellationToken,
    config: FeedConfig,
    started_ms: u64,
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
    /// A feed with no nodes yet; it stops following when `cancel` fires.
    pub fn new(cancel: CancellationToken) -> Self {
        Self::with_config(cancel, FeedConfig::default())
    }

    /// A feed with these settings and no nodes yet.
    pub fn with_config(cancel: CancellationToken, config: FeedConfig) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                tx,
                cancel,
                config,
                started_ms: now_ms(),
            }),
        }
    }

    /// Starts following every client with the default settings.
    pub fn start(clients: &[NodeClient], cancel: CancellationToken) -> Self {
        Self::start_with(clients, cancel, FeedConfig::default())
    }

    /// Starts following every client.
    pub fn start_with(
        clients: &[NodeClient],
        cancel: CancellationToken,
        config: FeedConfig,
    ) -> Self {
        let feed = Self::with_config(cancel, config);
        for c in clients {
            feed.follow(c.clone());
        }
        feed
    }

    /// Follows one more node (reconnecting whenever it drops, e.g. across a
    /// restart) until the feed is cancelled.
    pub fn follow(&self, client: NodeClient) {
        let idx = client.index();
        self.inner.state.lock().expect("feed lock").view(idx);
        let feed = self.clone();
        let cancel = self.inner.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = feed.follow_loop(client) => {}
            }
            feed.set_connected(idx, false);
        });
    }

    async fn follow_loop(&self, client: NodeClient) {
        let idx = client.index();
        let mut mode = self.inner.config.mode;
        loop {
            if mode != FeedMode::Poll {
                match client.block_stream().await {
                    Ok(mut stream) => {
                        self.set_mode(idx, "stream");
                        self.set_connected(idx, true);
                        while let Some(item) = stream.next().await {
                            match item {
                                Ok(sb) => self.on_stream_block(&client, sb).await,
                                Err(e) => {
                                    tracing::debug!("block stream of {}: {e}", client.name());
                                    break;
                                }
                            }
                        }
                        self.set_connected(idx, false);
                    }
                    Err(e) if mode == FeedMode::Auto && matches!(e.status(), Some(404 | 405)) => {
                        tracing::debug!("{} has no block stream ({e}); polling", client.name());
                        mode = FeedMode::Poll;
                        continue;
                    }
                    Err(e) => tracing::debug!("block stream of {}: {e}", client.name()),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                self.set_mode(idx, "poll");
                self.poll_loop(&client).await;
            }
        }
    }

    /// Polls `/cryptarchia/info` forever; a new tip is resolved by walking parents.
    async fn poll_loop(&self, client: &NodeClient) {
        let idx = client.index();
        let mut last_tip = String::new();
        let mut tick = tokio::time::interval(self.inner.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match client.consensus_info().await {
                Ok(info) => {
                    self.set_connected(idx, true);
                    if info.tip != last_tip && self.resolve(client, &info.tip, info.height).await {
                        last_tip = info.tip;
                    }
                }
                Err(e) => {
                    self.set_connected(idx, false);
                    tracing::debug!("poll of {}: {e}", client.name());
                }
            }
        }
    }

    /// One line of a node's stream. A line is not always the node's new tip (a
    /// `logos-2026-01` stream carries every processed block, forks included), so it is
    /// only a hint: the block is cached, and the chain extended directly only when the line
    /// names it as the tip and its parent is this node's observed tip; anything else is
    /// resolved from the node's info and the parent chain.
    async fn on_stream_block(&self, client: &NodeClient, sb: StreamBlock) {
        let idx = client.index();
        let is_tip = sb.tip.as_deref() == Some(sb.block.id.as_str());
        let known = {
            let mut s = self.inner.state.lock().expect("feed lock");
            let parent_h = if sb.block.parent.chars().all(|c| c == '0') {
                Some(0)
            } else {
                s.known.get(&sb.block.parent).map(|p| p.height)
            };
            parent_h.map(|ph| {
                let fb = FeedBlock::from_block(&sb.block, ph + 1);
                s.known.insert(fb.id.clone(), fb.clone());
                let view = s.view(idx);
                let joins = (ph == 0 && view.canonical.is_empty())
                    || (view.canonical.get(&ph) == Some(&fb.parent)
                        && view.canonical.keys().next_back() == Some(&ph));
                (fb, joins)
            })
        };
        match known {
            Some((fb, true)) if is_tip => {
                let (id, h) = (fb.id.clone(), fb.height);
                self.apply(idx, vec![fb], &id, h);
            }
            Some((fb, false)) if is_tip => {
                self.resolve(client, &fb.id, fb.height).await;
            }
            _ => {
                if let Ok(info) = client.consensus_info().await {
                    self.resolve(client, &info.tip, info.height).await;
                }
            }
        }
    }

    /// Makes `tip` at `height` the node's canonical tip, walking parents (from the
    /// feed's cache, else from the node) down to the chain observed before. False when
    /// the walk could not finish (the node did not have a block): try again later.
    async fn resolve(&self, client: &NodeClient, tip: &str, height: u64) -> bool {
        let idx = client.index();
        let mut branch = Vec::new();
        let mut cur = tip.to_owned();
        let mut h = height;
        for _ in 0..MAX_WALK {
            if h == 0 {
                break;
            }
            let cached = {
                let s = self.inner.state.lock().expect("feed lock");
                if s.views
                    .get(idx)
                    .is_some_and(|v| v.canonical.get(&h) == Some(&cur))
                {
                    break;
                }
                s.known.get(&cur).cloned()
            };
            let fb = match cached {
                Some(fb) if fb.height == h => fb,
                _ => match client.block(&cur).await {
                    Ok(Some(b)) => {
                        let fb = FeedBlock::from_block(&b, h);
                        self.inner
                            .state
                            .lock()
                            .expect("feed lock")
                            .known
                            .insert(fb.id.clone(), fb.clone());
                        fb
                    }
                    Ok(None) | Err(_) => return false,
                },
            };
            cur = fb.parent.clone();
            h -= 1;
            branch.push(fb);
        }
        branch.reverse();
        self.apply(idx, branch, tip, height);
        true
    }

    fn set_connected(&self, idx: usize, c: bool) {
        self.inner
            .state
            .lock()
            .expect("feed lock")
            .view(idx)
            .connected = c;
    }

    fn set_mode(&self, idx: usize, m: &'static str) {
        self.inner.state.lock().expect("feed lock").view(idx).mode = Some(m);
    }

    /// Makes `branch` (oldest first, contiguous heights, ending at `tip` of height
    /// `tip_height`) canonical on `node`, deriving a reorg where it replaces observed
    /// blocks. Public so that other sources (a replay, a test) can drive the feed.
    pub fn apply(&self, node: usize, branch: Vec<FeedBlock>, tip: &str, tip_height: u64) {
        let observed_at_ms = now_ms();
        let mut out = Vec::new();
        {
            let mut guard = self.inner.state.lock().expect("feed lock");
            let s = &mut *guard;
            s.view(node);
            for b in branch {
                s.known.entry(b.id.clone()).or_insert_with(|| b.clone());
                let view = &mut s.views[node];
                if view.canonical.get(&b.height) == Some(&b.id) {
                    continue;
                }
                if let Some((&old_h, old_tip)) = view.canonical.iter().next_back()
                    && old_h >= b.height
                {
                    let old_tip = old_tip.clone();
                    let depth = old_h - b.height + 1;
                    let _ = view.canonical.split_off(&b.height);
                    s.reorgs += 1;
                    s.max_reorg_depth = s.max_reorg_depth.max(depth);
                    out.push(FeedEvent::Reorg {
                        node,
                        fork_height: b.height - 1,
                        depth,
                        old_tip,
                        new_tip: tip.to_owned(),
                    });
                }
                let view = &mut s.views[node];
                view.canonical.insert(b.height, b.id.clone());
                let first_seen = !s.blocks.contains_key(&b.id);
                if first_seen {
                    s.blocks.insert(
                        b.id.clone(),
                        BlockRef {
                            id: b.id.clone(),
                            height: b.height,
                            slot: b.slot,
                            first_seen_ms: observed_at_ms,
                        },
                    );
                    for t in &b.tx_ids {
                        s.txs.entry(t.clone()).or_default().push(b.id.clone());
                    }
                    if let Some((genesis_ms, slot)) = self.inner.config.slot_clock {
                        let slot_start = genesis_ms + b.slot * slot.as_millis() as u64;
                        if slot_start >= self.inner.started_ms {
                            s.delays.push(observed_at_ms.saturating_sub(slot_start));
                        }
                    }
                }
                out.push(FeedEvent::Block {
                    node,
                    block: b,
                    observed_at_ms,
                    first_seen,
                });
            }
            // a tip lower than the observed chain: the blocks above it were abandoned
            let view = &mut s.views[node];
            if let Some((&old_h, old_tip)) = view.canonical.iter().next_back()
                && old_h > tip_height
                && view.canonical.get(&tip_height).is_some_and(|id| id == tip)
            {
                let old_tip = old_tip.clone();
                let depth = old_h - tip_height;
                let _ = view.canonical.split_off(&(tip_height + 1));
                s.reorgs += 1;
                s.max_reorg_depth = s.max_reorg_depth.max(depth);
                out.push(FeedEvent::Reorg {
                    node,
                    fork_height: tip_height,
                    depth,
                    old_tip,
                    new_tip: tip.to_owned(),
                });
            }
        }
        for ev in out {
            let _ = self.inner.tx.send(ev);
        }
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

    /// Whether the feed currently reaches `node` (open stream, or a poll that answered).
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
            modes: s
                .views
                .iter()
                .map(|v| v.mode.unwrap_or("none").to_owned())
                .collect(),
        }
    }

    /// Stops following every node.
    pub fn stop(&self) {
        self.inner.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: &str, parent: &str, height: u64, txs: &[&str]) -> FeedBlock {
        FeedBlock {
            id: id.into(),
            parent: parent.into(),
            slot: height,
            height,
            tx_ids: txs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn a_replacing_branch_is_a_reorg_and_drops_inclusion_from_the_abandoned_one() {
        let feed = BlockFeed::new(CancellationToken::new());
        let mut rx = feed.subscribe();
        for n in 0..2 {
            feed.apply(n, vec![block("a1", "g", 1, &[])], "a1", 1);
            feed.apply(n, vec![block("a2", "a1", 2, &["t1"])], "a2", 2);
        }
        assert_eq!(feed.tx_included("t1").unwrap().id, "a2");
        assert_eq!(feed.stats().blocks_seen, 2);
        for n in 0..2 {
            feed.apply(
                n,
                vec![block("b2", "a1", 2, &[]), block("b3", "b2", 3, &[])],
                "b3",
                3,
            );
        }
        assert_eq!(feed.tx_included("t1"), None);
        let st = feed.stats();
        assert_eq!(st.reorgs, 2);
        assert_eq!(st.max_reorg_depth, 1);
        assert_eq!(st.heights, vec![Some(3), Some(3)]);
        assert_eq!(feed.canonical_at(1, 2).as_deref(), Some("b2"));
        let mut reorg = None;
        while let Ok(ev) = rx.try_recv() {
            if let FeedEvent::Reorg {
                fork_height,
                depth,
                old_tip,
                ..
            } = ev
            {
                reorg = Some((fork_height, depth, old_tip));
            }
        }
        assert_eq!(reorg, Some((1, 1, "a2".to_owned())));
    }

    #[tokio::test]
    async fn a_known_block_is_not_reported_twice_and_a_lower_tip_truncates() {
        let feed = BlockFeed::new(CancellationToken::new());
        feed.apply(
            0,
            vec![block("a1", "g", 1, &[]), block("a2", "a1", 2, &[])],
            "a2",
            2,
        );
        let mut rx = feed.subscribe();
        feed.apply(
            0,
            vec![block("a1", "g", 1, &[]), block("a2", "a1", 2, &[])],
            "a2",
            2,
        );
        assert!(rx.try_recv().is_err(), "nothing new");
        feed.apply(0, vec![], "a1", 1);
        assert_eq!(feed.stats().heights, vec![Some(1)]);
        assert!(matches!(
            rx.try_recv(),
            Ok(FeedEvent::Reorg { depth: 1, .. })
        ));
    }
}
