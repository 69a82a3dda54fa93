//! The node: shared state (chain, mempool, peers, store), block import and
//! production, and the `run` entry points that wire p2p, API and the slot
//! clock together.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::NodeError;
use crate::api_types::{Block, BlockStreamEvent};
use crate::config::NodeConfig;
use crate::consensus::block::{Rules, produce, verify_standalone};
use crate::consensus::chain::{Adopted, Chain, Entry, ImportError, is_better};
use crate::consensus::lottery;
use crate::crypto::{SignedTx, public_hex, signing_key_from_hex};
use crate::ledger::Ledger;
use crate::mempool::{Added, Mempool, MempoolError};
use crate::metrics::{Gauges, Metrics};
use crate::p2p::message::Message;
use crate::p2p::peers::PeerSet;
use crate::storage::Storage;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Mutable state behind one lock: every operation on it is short.
pub struct State {
    pub chain: Chain,
    pub mempool: Mempool,
    /// `false` while bootstrapping.
    pub online: bool,
}

/// Result of importing a batch of blocks.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Blocks newly stored.
    pub stored: usize,
    /// The batch stopped at a block whose parent is unknown.
    pub unknown_parent: bool,
    /// The batch stopped at an invalid block (or one forking below the
    /// LIB); the reason.
    pub refused: Option<String>,
}

/// Why the API refused a transfer.
#[derive(Debug, thiserror::Error)]
pub enum AddTxError {
    #[error("invalid transaction: {0}")]
    Invalid(String),
    #[error("nonce too low: sender {from} next nonce is {expected}, got {got}")]
    NonceTooLow {
        from: String,
        expected: u64,
        got: u64,
    },
    #[error("insufficient balance: sender {from} has {balance}, transfer needs {amount}")]
    InsufficientBalance {
        from: String,
        balance: u64,
        amount: u64,
    },
    #[error(transparent)]
    Mempool(#[from] MempoolError),
}

/// One running node.
pub struct Node {
    pub config: NodeConfig,
    pub rules: Rules,
    pub key: SigningKey,
    pub public_key: String,
    /// Address peers are told to dial (informational).
    pub advertise: String,
    pub p2p_addr: SocketAddr,
    pub api_addr: SocketAddr,
    state: Mutex<State>,
    store: Storage,
    pub events: broadcast::Sender<BlockStreamEvent>,
    pub peers: PeerSet,
    pub metrics: Metrics,
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
    dial_targets: Mutex<HashSet<String>>,
    /// The store held blocks at start: the node was restarted, so its chain
    /// may be stale and it waits longer for a peer before going online.
    pub restarted: bool,
}

impl Node {
    /// Opens the store and rebuilds the chain from it.
    fn open(
        config: NodeConfig,
        p2p_addr: SocketAddr,
        api_addr: SocketAddr,
    ) -> Result<Self, NodeError> {
        let rules = Rules::from_config(&config).map_err(NodeError::Config)?;
        let key = signing_key_from_hex(&config.node.key)
            .map_err(|e| NodeError::Config(format!("node.key: {e}")))?;
        let store = Storage::open(&config.storage.data_dir, &rules.genesis_id)?;
        let mut chain = Chain::new(
            rules.genesis_block(),
            Ledger::from_genesis(&config.genesis),
            config.consensus.security_param,
        );
        let (mut blocks, stored_tip) = store.load()?;
        blocks.sort_by_key(|b| b.header.height);
        let n = blocks.len();
        for block in blocks {
            let ids = block.transactions.iter().map(SignedTx::id).collect();
            let id = block.header.id.clone();
            if let Err(e) = chain.import(block, ids, None, false) {
                warn!(block = %id, "stored block not reloaded: {e}");
            }
        }
        if n > 0 {
            info!(
                blocks = n,
                height = chain.height(),
                tip = %chain.tip().id(),
                "chain reloaded from the store"
            );
            if stored_tip.as_deref().is_some_and(|t| t != chain.tip().id()) {
                info!(
                    "stored tip {:?} differs from the best reloaded block",
                    stored_tip
                );
            }
        }
        let public_key = public_hex(&key);
        let advertise = config
            .network
            .advertise
            .clone()
            .unwrap_or_else(|| p2p_addr.to_string());
        let capacity = config.limits.mempool_capacity;
        Ok(Self {
            public_key,
            advertise,
            p2p_addr,
            api_addr,
            rules,
            key,
            state: Mutex::new(State {
                chain,
                mempool: Mempool::new(capacity),
                online: false,
            }),
            store,
            events: broadcast::channel(4096).0,
            peers: PeerSet::default(),
            metrics: Metrics::default(),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            dial_targets: Mutex::new(HashSet::new()),
            restarted: n > 0,
            config,
        })
    }

    /// The state lock (a panic elsewhere never wedges the node).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Current wall-clock slot (0 before genesis).
    pub fn current_slot(&self) -> u64 {
        self.rules.slot_at(now_ms()).unwrap_or(0)
    }

    fn halted(&self, st: &State) -> bool {
        self.config
            .testing
            .halt_at_height
            .is_some_and(|h| st.chain.height() >= h)
    }

    /// Tip id and height.
    pub fn tip(&self) -> (String, u64) {
        let st = self.state();
        let tip = st.chain.tip();
        (tip.id().to_owned(), tip.height())
    }

    pub fn knows(&self, id: &str) -> bool {
        self.state().chain.contains(id)
    }

    /// Whether a peer's tip would beat ours.
    pub fn prefers(&self, height: u64, id: &str) -> bool {
        let st = self.state();
        let tip = st.chain.tip();
        is_better(height, id, tip.height(), tip.id())
    }

    pub fn locator(&self) -> Vec<String> {
        self.state().chain.locator()
    }

    pub fn block(&self, id: &str) -> Option<Block> {
        self.state().chain.get(id).map(|e| e.block.clone())
    }

    pub fn blocks_after(&self, tip: &str, known: &HashSet<String>) -> (Vec<Block>, bool) {
        let max_bytes = self.config.limits.max_frame_bytes / 2;
        self.state()
            .chain
            .blocks_after(tip, known, self.config.limits.max_batch, max_bytes)
            .unwrap_or_default()
    }

    /// Leaves bootstrapping (once).
    pub fn mark_online(&self, why: &str) {
        let mut st = self.state();
        if !st.online {
            st.online = true;
            info!(height = st.chain.height(), "mode online: {why}");
        }
    }

    pub fn is_online(&self) -> bool {
        self.state().online
    }

    /// Imports blocks from a peer (oldest first), stopping at the first
    /// that cannot be imported. New blocks are stored durably before any
    /// event about them is published.
    pub fn import_blocks(&self, blocks: Vec<Block>, from_peer: bool) -> ImportReport {
        let mut report = ImportReport::default();
        let mut checked = Vec::with_capacity(blocks.len());
        {
            // Cheap filter before the expensive signature checks.
            let st = self.state();
            for block in blocks {
                if !st.chain.contains(&block.header.id) {
                    checked.push(block);
                }
            }
        }
        let mut verified = Vec::with_capacity(checked.len());
        for block in checked {
            match verify_standalone(&self.rules, &block) {
                Ok(ids) => verified.push((block, ids)),
                Err(e) => {
                    warn!("rejected block: {e}");
                    report.refused = Some(e);
                    break;
                }
            }
        }
        let max_slot = self.rules.slot_at(now_ms()).map_or(0, |s| s + 1);
        let mut events = Vec::new();
        {
            let mut st = self.state();
            let mut stored: Vec<Arc<Entry>> = Vec::new();
            for (block, ids) in verified {
                if self.halted(&st) {
                    debug!(block = %block.header.id, "halted (testing.halt_at_height): block ignored");
                    break;
                }
                let id = block.header.id.clone();
                // While bootstrapping, the k-deep limit is lifted (as in
                // Cryptarchia's bootstrap rule): a restarted node may hold a
                // stale fork deeper than k that it must leave.
                let check_lib = st.online;
                match st.chain.import(block, ids, Some(max_slot), check_lib) {
                    Ok(adopted) => {
                        let entry = self.after_adopt(&mut st, adopted, &mut events);
                        debug!(
                            height = entry.height(),
                            id = %entry.id(),
                            canonical = st.chain.is_canonical(entry.id(), entry.height()),
                            "block imported"
                        );
                        stored.push(entry);
                    }
                    Err(ImportError::Known) => {}
                    Err(ImportError::UnknownParent(parent)) => {
                        debug!(block = %id, %parent, "parent unknown");
                        report.unknown_parent = true;
                        break;
                    }
                    Err(e @ ImportError::BelowLib { .. }) => {
                        // Expected after a long partition; the sync path
                        // warns about it, rate-limited per peer.
                        debug!(block = %id, "rejected block: {e}");
                        report.refused = Some(e.to_string());
                        break;
                    }
                    Err(e) => {
                        warn!(block = %id, "rejected block: {e}");
                        report.refused = Some(e.to_string());
                        break;
                    }
                }
            }
            report.stored = stored.len();
            if !stored.is_empty() {
                let blocks: Vec<&Block> = stored.iter().map(|e| &e.block).collect();
                if let Err(e) = self.store.put(&blocks, st.chain.tip().id()) {
                    error!("failed to persist blocks: {e}");
                }
            }
        }
        if from_peer {
            Metrics::add(&self.metrics.blocks_received, report.stored as u64);
        }
        for ev in events {
            let _ = self.events.send(ev);
        }
        report
    }

    /// Updates mempool, metrics and stream events after an import.
    fn after_adopt(
        &self,
        st: &mut State,
        adopted: Adopted,
        events: &mut Vec<BlockStreamEvent>,
    ) -> Arc<Entry> {
        let now = now_ms();
        let block_event = |e: &Entry| BlockStreamEvent::Block {
            header: e.block.header.clone(),
            tx_ids: e.tx_ids.clone(),
            adopted_at_ms: now,
        };
        match adopted {
            Adopted::SideBranch(entry) => entry,
            Adopted::Extended(entry) => {
                let State { chain, mempool, .. } = st;
                mempool.prune(
                    chain.ledger(),
                    entry.block.transactions.iter().map(|t| t.from.as_str()),
                );
                Metrics::add(
                    &self.metrics.transactions_included,
                    entry.tx_ids.len() as u64,
                );
                events.push(block_event(&entry));
                entry
            }
            Adopted::Reorg {
                old_tip,
                fork_point,
                fork_height,
                abandoned,
                adopted,
            } => {
                let State { chain, mempool, .. } = st;
                let new_tip = adopted.last().expect("a reorg adopts blocks").clone();
                info!(
                    depth = abandoned.len(),
                    fork_height,
                    %old_tip,
                    new_tip = %new_tip.id(),
                    "reorganised to a better branch"
                );
                Metrics::add(&self.metrics.reorgs, 1);
                // Transfers of the abandoned branch return while still valid.
                if !self.config.testing.drop_transactions {
                    for entry in &abandoned {
                        for (tx, id) in entry.block.transactions.iter().zip(&entry.tx_ids) {
                            if tx.nonce >= chain.ledger().account(&tx.from).nonce {
                                let _ = mempool.insert(id.clone(), tx.clone());
                            }
                        }
                    }
                }
                let senders = abandoned
                    .iter()
                    .chain(adopted.iter())
                    .flat_map(|e| e.block.transactions.iter().map(|t| t.from.as_str()));
                mempool.prune(chain.ledger(), senders);
                events.push(BlockStreamEvent::Reorg {
                    old_tip,
                    new_tip: new_tip.id().to_owned(),
                    fork_point,
                    fork_height,
                    depth: abandoned.len() as u64,
                });
                for entry in &adopted {
                    Metrics::add(
                        &self.metrics.transactions_included,
                        entry.tx_ids.len() as u64,
                    );
                    events.push(block_event(entry));
                }
                new_tip
            }
        }
    }

    /// Runs the lottery for `slot` and, on a win, produces, stores and
    /// announces a block.
    fn try_produce(&self, slot: u64) {
        let Some(stake) = self.rules.stake_of(&self.public_key) else {
            return;
        };
        let proof = lottery::prove(&self.key, &self.rules.epoch_nonce, slot);
        if !lottery::wins(
            &proof,
            stake,
            self.rules.total_stake,
            self.rules.active_slot_coeff,
        ) {
            return;
        }
        let mut events = Vec::new();
        let block = {
            let mut st = self.state();
            if !st.online || self.halted(&st) {
                return;
            }
            let tip = st.chain.tip().clone();
            if tip.block.header.slot >= slot {
                return;
            }
            let txs = if self.config.testing.drop_transactions {
                Vec::new()
            } else {
                st.mempool
                    .select(st.chain.ledger(), self.config.limits.max_block_txs)
            };
            let block = produce(
                &self.key,
                &self.rules,
                &tip.block.header,
                slot,
                txs,
                self.config.testing.invalid_proofs,
            );
            let ids = block.transactions.iter().map(SignedTx::id).collect();
            match st.chain.import(block.clone(), ids, None, true) {
                Ok(adopted) => {
                    self.after_adopt(&mut st, adopted, &mut events);
                }
                Err(e) => {
                    error!(slot, "own block refused by own chain: {e}");
                    return;
                }
            }
            if let Err(e) = self.store.put(&[&block], &block.header.id) {
                error!("failed to persist produced block: {e}");
            }
            block
        };
        Metrics::add(&self.metrics.blocks_produced, 1);
        info!(
            slot,
            height = block.header.height,
            id = %block.header.id,
            txs = block.transactions.len(),
            "produced block"
        );
        for ev in events {
            let _ = self.events.send(ev);
        }
        self.peers
            .broadcast(&Message::Block { block }.encode(), None);
    }

    /// Admits a transfer into the mempool (from the API or from gossip).
    /// With `testing.drop_transactions` it is accepted and forgotten.
    pub fn add_tx(&self, tx: SignedTx, from_api: bool) -> Result<(String, Added), AddTxError> {
        let id = tx.id();
        tx.verify().map_err(AddTxError::Invalid)?;
        let added = {
            let mut st = self.state();
            if st.mempool.contains(&id) {
                return Ok((id, Added::Duplicate));
            }
            let account = st.chain.ledger().account(&tx.from);
            if tx.nonce < account.nonce {
                return Err(AddTxError::NonceTooLow {
                    from: tx.from,
                    expected: account.nonce,
                    got: tx.nonce,
                });
            }
            if account.balance < tx.amount {
                return Err(AddTxError::InsufficientBalance {
                    from: tx.from,
                    balance: account.balance,
                    amount: tx.amount,
                });
            }
            if self.config.testing.drop_transactions {
                debug!(tx = %id, "testing.drop_transactions: transaction dropped");
                return Ok((id, Added::New));
            }
            st.mempool.insert(id.clone(), tx.clone())?
        };
        if from_api && added == Added::New {
            self.peers.broadcast(&Message::Tx { tx }.encode(), None);
        }
        Ok((id, added))
    }

    /// Values for the metrics page.
    pub fn gauges(&self) -> Gauges {
        let st = self.state();
        Gauges {
            height: st.chain.height(),
            slot: self.current_slot(),
            lib_height: st.chain.lib_height(),
            peers: self.peers.count(),
            mempool_size: st.mempool.len(),
        }
    }

    /// Adds a peer address to dial forever (idempotent).
    pub fn connect(self: &Arc<Self>, addr: String) {
        let new = self
            .dial_targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.clone());
        if new {
            info!(%addr, "dialling peer");
            self.tasks
                .spawn(crate::p2p::dialer::dial_forever(self.clone(), addr));
        }
    }

    /// Headers from `from` back to `to` (inclusive), at most `max`.
    pub fn header_ids(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<String>, String> {
        let st = self.state();
        let chain = &st.chain;
        let start = match from {
            Some(id) => chain
                .get(id)
                .ok_or_else(|| format!("unknown block from = {id}"))?,
            None => chain.tip(),
        };
        let stop = match to {
            Some(id) => {
                chain
                    .get(id)
                    .ok_or_else(|| format!("unknown block to = {id}"))?;
                id.to_owned()
            }
            None => chain.lib().id().to_owned(),
        };
        let mut out = VecDeque::new();
        let mut cur = start;
        loop {
            out.push_back(cur.id().to_owned());
            if cur.id() == stop || cur.height() == 0 || out.len() >= self.config.limits.max_batch {
                break;
            }
            match chain.get(&cur.block.header.parent) {
                Some(p) => cur = p,
                None => break,
            }
        }
        Ok(out.into())
    }
}

/// How long a restarted node waits for a peer before going online alone.
const RESTART_ALONE_AFTER: Duration = Duration::from_secs(4);

/// Produces blocks slot by slot; also decides when a node with no peers
/// stops bootstrapping.
async fn slot_loop(node: Arc<Node>) {
    let slot_ms = node.rules.slot_duration_ms;
    // A restarted node waits long enough for peers' redial backoff (2 s cap)
    // before deciding it is alone, so it does not fork off a stale chain.
    let alone_after = if node.restarted {
        Duration::from_millis(2 * slot_ms).max(RESTART_ALONE_AFTER)
    } else {
        Duration::from_millis(2 * slot_ms)
    };
    let mut last_peer_seen = Instant::now();
    loop {
        let now = now_ms();
        let next = node.rules.slot_at(now).map_or(0, |s| s + 1);
        let wait = node.rules.slot_start_ms(next).saturating_sub(now);
        tokio::select! {
            _ = node.cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
        if node.peers.count() > 0 {
            last_peer_seen = Instant::now();
        } else if !node.is_online() && last_peer_seen.elapsed() >= alone_after {
            node.mark_online("no peer to sync with");
        }
        if node.rules.slot_at(now_ms()) != Some(next) {
            debug!(slot = next, "slot missed (the node was late)");
            continue;
        }
        node.try_produce(next);
    }
}

/// Runs a node until `shutdown` completes, then stops its tasks and closes
/// the store.
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    config
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let p2p = TcpListener::bind(config.network.listen)
        .await
        .map_err(|source| NodeError::Bind {
            field: "network.listen",
            addr: config.network.listen,
            source,
        })?;
    let api = TcpListener::bind(config.api.listen)
        .await
        .map_err(|source| NodeError::Bind {
            field: "api.listen",
            addr: config.api.listen,
            source,
        })?;
    let p2p_addr = p2p.local_addr().map_err(NodeError::Io)?;
    let api_addr = api.local_addr().map_err(NodeError::Io)?;
    let node = Arc::new(Node::open(config, p2p_addr, api_addr)?);
    let leader = node.rules.stake_of(&node.public_key).is_some();
    info!(
        index = node.config.node.index,
        public_key = %node.public_key,
        %p2p_addr,
        %api_addr,
        leader,
        genesis = %node.rules.genesis_id,
        "node started"
    );
    for var in [
        "LOGOS_BLOCKCHAIN_OTLP_ENDPOINT",
        "LOGOS_BLOCKCHAIN_OTLP_METRICS_ENDPOINT",
    ] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            info!(
                "{var} = {v} is configured; the reference node does not export OTLP (use GET /metrics and the logs)"
            );
        }
    }

    node.tasks
        .spawn(crate::p2p::dialer::accept_loop(node.clone(), p2p));
    for peer in node.config.network.peers.clone() {
        node.connect(peer);
    }
    node.tasks.spawn(slot_loop(node.clone()));
    let app = crate::api::router(node.clone());
    let api_cancel = node.cancel.clone();
    node.tasks.spawn(async move {
        let served = axum::serve(api, app)
            .with_graceful_shutdown(async move { api_cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            error!("api server failed: {e}");
        }
    });

    shutdown.await;
    info!("shutting down");
    node.cancel.cancel();
    node.tasks.close();
    if tokio::time::timeout(Duration::from_secs(3), node.tasks.wait())
        .await
        .is_err()
    {
        warn!("some tasks did not stop within 3s; closing anyway");
    }
    let height = node.state().chain.height();
    info!(height, "node stopped");
    Ok(())
}

/// Loads a config file, sets up logging and runs the node on its own
/// runtime until SIGTERM or SIGINT. For callers without a runtime (the
/// `nomos-devnode` and `nomos-script devnode` commands).
pub fn run_from_file(path: &Path) -> Result<(), NodeError> {
    let config = NodeConfig::load(path).map_err(|e| NodeError::Config(e.to_string()))?;
    crate::logging::init(config.node.index)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("devnode")
        .build()
        .map_err(NodeError::Io)?;
    runtime.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(NodeError::Io)?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => info!("received SIGTERM"),
                _ = tokio::signal::ctrl_c() => info!("received SIGINT"),
            }
        };
        run(config, shutdown).await
    })
}
