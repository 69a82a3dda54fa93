//! The node: shared state (chain, mempool, peers, store), block import and
//! production (the entry points that wire p2p, API and the slot clock
//! around it are in `run`; its lies and what it saw of others' in `byzantine`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::NodeError;
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
use crate::types::Block;

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
    /// The LIB last announced on the event channel.
    lib_seen: String,
}

/// Most header ids one `GET /cryptarchia/headers` returns (as the real node).
pub const MAX_HEADERS: usize = 512;

/// A block that became canonical, with the chain's tip and LIB after it.
#[derive(Debug, Clone)]
pub struct AdoptedBlock {
    pub entry: Arc<Entry>,
    pub tip: String,
    pub tip_slot: u64,
    pub lib: String,
    pub lib_slot: u64,
}

/// What the node publishes to its API streams.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A block became canonical (after a branch switch: each block of the
    /// new branch, oldest first).
    Adopted(AdoptedBlock),
    /// The LIB changed.
    Lib { height: u64, id: String },
}

/// Result of importing a batch of blocks.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Blocks newly stored.
    pub stored: usize,
    /// The batch stopped at a block whose parent is unknown.
    pub unknown_parent: bool,
    /// The batch stopped at an invalid block (or one forking below the
    /// LIB, or one the full disk could not store); the reason.
    pub refused: Option<String>,
    /// Blocks of the batch that were the second block of a leader for a slot.
    pub equivocations: usize,
    /// The batch stopped because the disk is full (not the peer's fault).
    pub disk_full: bool,
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
    pub events: broadcast::Sender<NodeEvent>,
    /// Wall clock (ms) of the last mempool insert, 0 if none.
    pub last_mempool_insert_ms: AtomicU64,
    /// The wallet's keys by public key, in config order.
    pub wallet: Vec<(String, SigningKey)>,
    pub peers: PeerSet,
    pub metrics: Metrics,
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
    dial_targets: Mutex<HashSet<String>>,
    /// The store held blocks at start: the node was restarted, so its chain
    /// may be stale and it waits longer for a peer before going online.
    pub restarted: bool,
    /// The node's time: slots, production and the future-block rule read it.
    pub clock: crate::clock::Clock,
    /// The lies it is told to tell (test-only).
    pub byzantine: crate::byzantine::Byzantine,
    /// What it saw of its peers' lies.
    pub(crate) observed: Mutex<crate::byzantine::Observed>,
}

impl Node {
    /// Opens the store and rebuilds the chain from it.
    pub(crate) fn open(
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
        store.set_faults(crate::storage::DiskFaults {
            unflushed_blocks: config.testing.unflushed_blocks,
            full: false,
            full_at_height: config.testing.disk_full_at_height,
        })?;
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
        let lib_seen = chain.lib().id().to_owned();
        let mut wallet = Vec::new();
        for (i, secret) in config.wallet.keys.iter().enumerate() {
            let key = signing_key_from_hex(secret)
                .map_err(|e| NodeError::Config(format!("wallet.keys[{i}]: {e}")))?;
            wallet.push((public_hex(&key), key));
        }
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
                lib_seen,
            }),
            store,
            events: broadcast::channel(4096).0,
            last_mempool_insert_ms: AtomicU64::new(0),
            wallet,
            peers: PeerSet::default(),
            metrics: Metrics::default(),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            dial_targets: Mutex::new(HashSet::new()),
            restarted: n > 0,
            clock: crate::clock::Clock::new(
                config.testing.clock_offset_ms,
                config.testing.clock_drift_ppm,
            ),
            byzantine: crate::byzantine::Byzantine::new(config.testing.byzantine.clone()),
            observed: Mutex::new(crate::byzantine::Observed::default()),
            config,
        })
    }

    /// The state lock (a panic elsewhere never wedges the node).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The chain store (its disk faults are set through it).
    pub fn store(&self) -> &Storage {
        &self.store
    }

    /// Current wall-clock slot (0 before genesis).
    pub fn current_slot(&self) -> u64 {
        self.rules.slot_at(self.clock.now_ms()).unwrap_or(0)
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

    /// The tip told to peers: the highest canonical block not being withheld.
    pub fn announced_tip(&self) -> (String, u64) {
        let st = self.state();
        let mut cur = st.chain.tip();
        while cur.height() > 0 && self.byzantine.is_withheld(cur.id()) {
            match st.chain.get(&cur.block.header.parent) {
                Some(p) => cur = p,
                None => break,
            }
        }
        (cur.id().to_owned(), cur.height())
    }

    /// What the node saw of its peers' lies.
    pub fn observed(&self) -> MutexGuard<'_, crate::byzantine::Observed> {
        self.observed.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Imports blocks from a peer (`from_peer`: its public key) oldest first, stopping at the
    /// first that cannot be imported. New blocks are stored durably before any event about
    /// them is published. The second block of a leader for a slot is equivocation evidence: it
    /// is stored, but its branch wins only by being longer, never by the tie-break (unless
    /// `testing.accept_equivocations`).
    pub fn import_blocks(&self, blocks: Vec<Block>, from_peer: Option<&str>) -> ImportReport {
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
        let max_slot = self.rules.slot_at(self.clock.now_ms()).map_or(0, |s| s + 1);
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
                if let Some(e) = self.store.refuses(block.header.height) {
                    report.refused = Some(e.to_string());
                    report.disk_full = true;
                    break;
                }
                // While bootstrapping, the k-deep limit is lifted (as in
                // Cryptarchia's bootstrap rule): a restarted node may hold a
                // stale fork deeper than k that it must leave.
                let check_lib = st.online;
                let equivocation = !st.chain.contains(&id)
                    && self.note_block(&block.header.leader, block.header.slot, &id, from_peer);
                let accept = self.config.testing.accept_equivocations;
                let tip_height = st.chain.height();
                let imported = st.chain.import_with(
                    block,
                    ids,
                    Some(max_slot),
                    check_lib,
                    !equivocation || accept,
                );
                if equivocation && imported.is_ok() {
                    report.equivocations += 1;
                }
                match imported {
                    Ok(adopted) => {
                        if equivocation
                            && st.chain.tip().id() == id
                            && st.chain.height() == tip_height
                        {
                            // the tie-break let the equivocator pick this node's tip
                            Metrics::add(&self.metrics.equivocations_accepted, 1);
                            warn!(block = %id, "adopted the second block of an equivocation (testing.accept_equivocations)");
                        }
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
        if from_peer.is_some() {
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
        events: &mut Vec<NodeEvent>,
    ) -> Arc<Entry> {
        let entry = self.apply_adopted(st, adopted, events);
        let lib = st.chain.lib();
        if lib.id() != st.lib_seen {
            st.lib_seen = lib.id().to_owned();
            events.push(NodeEvent::Lib {
                height: lib.height(),
                id: lib.id().to_owned(),
            });
        }
        entry
    }

    /// The event of a block adopted into `chain` (tip and LIB as of now).
    fn adopted_event(chain: &Chain, entry: &Arc<Entry>) -> NodeEvent {
        let (tip, lib) = (chain.tip(), chain.lib());
        NodeEvent::Adopted(AdoptedBlock {
            entry: entry.clone(),
            tip: tip.id().to_owned(),
            tip_slot: tip.block.header.slot,
            lib: lib.id().to_owned(),
            lib_slot: lib.block.header.slot,
        })
    }

    /// The current tip as an adopted-block snapshot (first line of the
    /// logos-2026-05 block stream).
    pub fn tip_snapshot(&self) -> AdoptedBlock {
        let st = self.state();
        match Self::adopted_event(&st.chain, st.chain.tip()) {
            NodeEvent::Adopted(a) => a,
            NodeEvent::Lib { .. } => unreachable!("adopted_event makes an Adopted"),
        }
    }

    fn apply_adopted(
        &self,
        st: &mut State,
        adopted: Adopted,
        events: &mut Vec<NodeEvent>,
    ) -> Arc<Entry> {
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
                events.push(Self::adopted_event(chain, &entry));
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
                debug!(%fork_point, "branch switch: new branch streamed oldest first");
                for entry in &adopted {
                    Metrics::add(
                        &self.metrics.transactions_included,
                        entry.tx_ids.len() as u64,
                    );
                    events.push(Self::adopted_event(chain, entry));
                }
                new_tip
            }
        }
    }

    /// Runs the lottery for `slot` and, on a win, produces, stores and
    /// announces a block (or, told to lie, builds it on a stale parent, makes a second block
    /// for the slot, or keeps it from the peers for a while).
    pub(crate) fn try_produce(&self, slot: u64) {
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
        let lies = self.byzantine.get();
        let mut events = Vec::new();
        let (block, twin) = {
            let mut st = self.state();
            if !st.online || self.halted(&st) {
                return;
            }
            let tip = st.chain.tip().clone();
            let parent = if lies.stale_parent_depth > 0 {
                let h = tip.height().saturating_sub(lies.stale_parent_depth);
                st.chain.canonical_at(h).cloned().unwrap_or(tip)
            } else {
                tip
            };
            if parent.block.header.slot >= slot || self.store.refuses(parent.height() + 1).is_some()
            {
                return;
            }
            // the mempool's transfers are valid at the tip, not at a stale parent
            let txs = if self.config.testing.drop_transactions || lies.stale_parent_depth > 0 {
                Vec::new()
            } else {
                st.mempool
                    .select(st.chain.ledger(), self.config.limits.max_block_txs)
            };
            let block = produce(
                &self.key,
                &self.rules,
                &parent.block.header,
                slot,
                txs,
                self.config.testing.invalid_proofs,
            );
            let twin = if lies.equivocate {
                crate::byzantine::twin(&self.key, &self.rules, &st.chain, &parent, slot, &block)
            } else {
                None
            };
            self.note_block(&self.public_key, slot, &block.header.id, None);
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
            if let Err(e) = self.store.put(&[&block], st.chain.tip().id()) {
                error!("failed to persist produced block: {e}");
            }
            (block, twin)
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
        if lies.withhold_ms > 0 {
            info!(id = %block.header.id, ms = lies.withhold_ms, "withholding own block (testing.byzantine)");
            self.byzantine.hold(block, twin, lies.withhold_ms);
            return;
        }
        self.announce_own(block, twin);
    }

    /// Admits a transfer into the mempool (from the API or from gossip).
    /// With `testing.drop_transactions` it is accepted and forgotten.
    pub fn add_tx(&self, tx: SignedTx, from_api: bool) -> Result<(String, Added), AddTxError> {
        let id = tx.id();
        tx.verify().map_err(AddTxError::Invalid)?;
        let added = {
            let mut st = self.state();
            self.admit(&mut st, &id, &tx)?
        };
        if from_api && added == Added::New && !self.config.testing.drop_transactions {
            self.peers.broadcast(&Message::Tx { tx }.encode(), None);
        }
        Ok((id, added))
    }

    /// The ledger and mempool checks of [`Node::add_tx`], under the lock.
    fn admit(&self, st: &mut State, id: &str, tx: &SignedTx) -> Result<Added, AddTxError> {
        if st.mempool.contains(id) {
            return Ok(Added::Duplicate);
        }
        let account = st.chain.ledger().account(&tx.from);
        if tx.nonce < account.nonce {
            return Err(AddTxError::NonceTooLow {
                from: tx.from.clone(),
                expected: account.nonce,
                got: tx.nonce,
            });
        }
        if account.balance < tx.amount {
            return Err(AddTxError::InsufficientBalance {
                from: tx.from.clone(),
                balance: account.balance,
                amount: tx.amount,
            });
        }
        if self.config.testing.drop_transactions {
            debug!(tx = %id, "testing.drop_transactions: transaction dropped");
            return Ok(Added::New);
        }
        let added = st.mempool.insert(id.to_owned(), tx.clone())?;
        if added == Added::New {
            self.last_mempool_insert_ms
                .store(now_ms(), Ordering::Relaxed);
        }
        Ok(added)
    }

    /// The wallet's key for the first of `funding` it knows.
    pub fn wallet_key(&self, funding: &[String]) -> Option<&SigningKey> {
        funding.iter().find_map(|pk| {
            self.wallet
                .iter()
                .find(|(k, _)| k == pk)
                .map(|(_, key)| key)
        })
    }

    /// Whether the wallet holds the key of `public_key`.
    pub fn wallet_knows(&self, public_key: &str) -> bool {
        self.wallet.iter().any(|(k, _)| k == public_key)
    }

    /// Signs a transfer with the first funding key the wallet knows, at
    /// that key's next nonce (ledger nonce at the tip plus its run of
    /// pending transfers), and admits and gossips it. Nonce choice and
    /// admission happen under one lock, so concurrent calls never reuse a
    /// nonce.
    pub fn wallet_transfer(
        &self,
        funding: &[String],
        to: &str,
        amount: u64,
    ) -> Result<SignedTx, String> {
        let key = self.wallet_key(funding).ok_or_else(|| {
            format!("none of the funding public keys {funding:?} is known to the wallet")
        })?;
        crate::crypto::verifying_key_from_hex(to)
            .map_err(|e| format!("recipient_public_key: {e}"))?;
        let from = public_hex(key);
        let (tx, added) = {
            let mut st = self.state();
            let account = st.chain.ledger().account(&from);
            let (nonce, pending) = st.mempool.next_nonce(&from, account.nonce);
            let needed = pending.saturating_add(amount);
            if account.balance < needed {
                return Err(AddTxError::InsufficientBalance {
                    from,
                    balance: account.balance.saturating_sub(pending),
                    amount,
                }
                .to_string());
            }
            let tx = SignedTx::sign(key, to, amount, nonce);
            let added = self
                .admit(&mut st, &tx.id(), &tx)
                .map_err(|e| e.to_string())?;
            (tx, added)
        };
        if added == Added::New && !self.config.testing.drop_transactions {
            self.peers
                .broadcast(&Message::Tx { tx: tx.clone() }.encode(), None);
        }
        Ok(tx)
    }

    /// The stored entry of block `id`.
    pub fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        self.state().chain.get(id).cloned()
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
            blocks_withheld: self.byzantine.withheld_count(),
            disk: self.store.status(),
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
}
