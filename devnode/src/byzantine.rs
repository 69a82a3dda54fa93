//! Lying on purpose, and noticing others' lies.
//!
//! [`Byzantine`] holds the test-only behaviours a node is told to have (`testing.byzantine` at
//! start, `POST /test/byzantine` at run time): equivocating where it leads, withholding its
//! blocks for a time, building on a stale parent, gossiping transactions with bad signatures.
//! [`Observed`] is what every node records of its peers, liar or not: the first block of each
//! (leader, slot), a second one as equivocation evidence, transactions whose signature does not
//! verify. The evidence is served on `GET /test/evidence` and counted in `/metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::config::ByzantineBehaviours;
use crate::consensus::block::{Rules, produce};
use crate::consensus::chain::{Chain, Entry};
use crate::crypto::{SignedTx, public_hex};
use crate::metrics::Metrics;
use crate::p2p::message::Message;
use crate::types::Block;

/// A block kept from the peers, and its twin when the node also equivocated for its slot.
#[derive(Debug, Clone)]
pub struct Withheld {
    pub release_at: Instant,
    pub block: Block,
    pub twin: Option<Block>,
}

/// The behaviours in force and the blocks they hold back.
#[derive(Debug, Default)]
pub struct Byzantine {
    behaviours: Mutex<ByzantineBehaviours>,
    withheld: Mutex<VecDeque<Withheld>>,
    /// Makes each invalid transaction distinct.
    invalid_nonce: AtomicU64,
}

impl Byzantine {
    /// Starts with `behaviours` (the config's).
    pub fn new(behaviours: ByzantineBehaviours) -> Self {
        Self {
            behaviours: Mutex::new(behaviours),
            ..Self::default()
        }
    }

    /// The behaviours in force.
    pub fn get(&self) -> ByzantineBehaviours {
        self.behaviours
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the behaviours (blocks withheld so far are released at the next slot when
    /// withholding is turned off).
    pub fn set(&self, b: ByzantineBehaviours) {
        *self.behaviours.lock().unwrap_or_else(|e| e.into_inner()) = b;
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Withheld>> {
        self.withheld.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `block` (and its twin) from the peers for `for_ms`.
    pub fn hold(&self, block: Block, twin: Option<Block>, for_ms: u64) {
        self.queue().push_back(Withheld {
            release_at: Instant::now() + Duration::from_millis(for_ms),
            block,
            twin,
        });
    }

    /// The withheld blocks due now, oldest first: all of them once withholding is off.
    pub fn due(&self) -> Vec<Withheld> {
        let all = self.get().withhold_ms == 0;
        let now = Instant::now();
        let mut q = self.queue();
        let mut out = Vec::new();
        while q.front().is_some_and(|w| all || w.release_at <= now) {
            out.extend(q.pop_front());
        }
        out
    }

    /// Whether block `id` is being withheld.
    pub fn is_withheld(&self, id: &str) -> bool {
        self.queue().iter().any(|w| w.block.header.id == id)
    }

    /// How many blocks are being withheld.
    pub fn withheld_count(&self) -> usize {
        self.queue().len()
    }

    /// A transfer from `key` whose signature does not verify (signed for another amount).
    pub fn invalid_tx(&self, key: &SigningKey) -> SignedTx {
        let n = self.invalid_nonce.fetch_add(1, Ordering::Relaxed);
        let to = public_hex(key);
        let mut tx = SignedTx::sign(key, &to, 1, n);
        tx.amount = 2;
        tx
    }
}

/// The second block of an equivocation for `slot`: on the same parent without the
/// transactions when `block` carries some, else on the parent's parent (a block of the same
/// leader and slot either way). None when neither differs (an empty block on genesis).
pub fn twin(
    key: &SigningKey,
    rules: &Rules,
    chain: &Chain,
    parent: &Entry,
    slot: u64,
    block: &Block,
) -> Option<Block> {
    if !block.transactions.is_empty() {
        return Some(produce(
            key,
            rules,
            &parent.block.header,
            slot,
            Vec::new(),
            false,
        ));
    }
    if parent.height() == 0 {
        return None;
    }
    let grandparent = chain.get(&parent.block.header.parent)?;
    Some(produce(
        key,
        rules,
        &grandparent.block.header,
        slot,
        Vec::new(),
        false,
    ))
}

impl crate::node::Node {
    /// Sends an own block to every peer, or, with its twin (an equivocation), each of the two
    /// to half of them.
    pub(crate) fn announce_own(&self, block: Block, twin: Option<Block>) {
        match twin {
            Some(twin) => {
                info!(
                    slot = block.header.slot,
                    first = %block.header.id,
                    second = %twin.header.id,
                    "equivocating (testing.byzantine): two blocks for one slot"
                );
                Metrics::add(&self.metrics.equivocations_made, 1);
                self.peers.broadcast_split(
                    &Message::Block { block }.encode(),
                    &Message::Block { block: twin }.encode(),
                );
            }
            None => self
                .peers
                .broadcast(&Message::Block { block }.encode(), None),
        }
    }

    /// Per slot, what a lying node does besides producing: releases the blocks it withheld
    /// that are due and gossips invalid transactions.
    pub(crate) fn byzantine_tick(&self) {
        for w in self.byzantine.due() {
            info!(id = %w.block.header.id, "releasing a withheld block");
            self.announce_own(w.block, w.twin);
        }
        let n = self.byzantine.get().invalid_txs_per_slot;
        for _ in 0..n {
            let tx = self.byzantine.invalid_tx(&self.key);
            Metrics::add(&self.metrics.invalid_transactions_sent, 1);
            self.peers.broadcast(&Message::Tx { tx }.encode(), None);
        }
    }

    /// Notes a block of `leader` for `slot` (from a peer, or its own); true when it is the
    /// second block of that leader for that slot (an equivocation).
    pub(crate) fn note_block(&self, leader: &str, slot: u64, id: &str, peer: Option<&str>) -> bool {
        let mut new_pair = false;
        let equivocation = self.observed().block(leader, slot, id, peer, &mut new_pair);
        if new_pair {
            Metrics::add(&self.metrics.equivocations_seen, 1);
            warn!(
                %leader,
                slot,
                block = %id,
                peer = ?peer.map(crate::p2p::connection::short_key),
                "equivocation: a second block of one leader for one slot"
            );
        }
        equivocation
    }

    /// Notes a gossiped transaction from `peer` that does not verify.
    pub fn note_invalid_tx(&self, peer: &str, tx: &SignedTx, reason: &str) {
        Metrics::add(&self.metrics.invalid_transactions_received, 1);
        debug!(peer = %crate::p2p::connection::short_key(peer), tx = %tx.id(), "invalid transaction gossiped: {reason}");
        self.observed().invalid_tx(peer, &tx.id(), reason);
    }
}

/// What a piece of evidence is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// Two valid blocks of one leader for one slot.
    Equivocation,
    /// A gossiped transaction whose signature or keys do not verify.
    InvalidTx,
}

/// One lie the node saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// Public key of the peer that sent it (the first sender, for an equivocation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The equivocating leader's public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// The conflicting block ids, first seen first; or the transaction id.
    pub ids: Vec<String>,
    /// Why it is a lie.
    pub detail: String,
    /// When it was seen (ms since the Unix epoch, by the machine's clock).
    pub at_ms: u64,
}

/// Most evidence entries kept (the oldest go first); the counters go on counting.
const MAX_EVIDENCE: usize = 1024;
/// Most (slot, leader) entries remembered for equivocation checks.
const MAX_SLOTS: usize = 100_000;

/// What the node saw of its peers' lies.
#[derive(Debug, Default)]
pub struct Observed {
    /// (slot, leader) -> the first block seen for it.
    first: BTreeMap<(u64, String), String>,
    evidence: VecDeque<Evidence>,
}

impl Observed {
    /// Notes block `id` of `leader` for `slot`; true when another block of that leader for that
    /// slot was seen before (an equivocation; the evidence is recorded once per pair, later
    /// blocks join its ids). `new_pair` is set when this is the pair's first evidence.
    pub fn block(
        &mut self,
        leader: &str,
        slot: u64,
        id: &str,
        peer: Option<&str>,
        new_pair: &mut bool,
    ) -> bool {
        *new_pair = false;
        let key = (slot, leader.to_owned());
        let Some(first) = self.first.get(&key) else {
            self.first.insert(key, id.to_owned());
            while self.first.len() > MAX_SLOTS {
                self.first.pop_first();
            }
            return false;
        };
        if first == id {
            return false;
        }
        let first = first.clone();
        if let Some(e) = self.evidence.iter_mut().find(|e| {
            e.kind == EvidenceKind::Equivocation
                && e.slot == Some(slot)
                && e.leader.as_deref() == Some(leader)
        }) {
            if !e.ids.iter().any(|x| x == id) {
                e.ids.push(id.to_owned());
            }
            return true;
        }
        *new_pair = true;
        self.push(Evidence {
            kind: EvidenceKind::Equivocation,
            peer: peer.map(str::to_owned),
            leader: Some(leader.to_owned()),
            slot: Some(slot),
            ids: vec![first, id.to_owned()],
            detail: format!("leader {} signed two blocks for slot {slot}", short(leader)),
            at_ms: crate::node::now_ms(),
        });
        true
    }

    /// Notes a gossiped transaction that does not verify.
    pub fn invalid_tx(&mut self, peer: &str, tx_id: &str, reason: &str) {
        self.push(Evidence {
            kind: EvidenceKind::InvalidTx,
            peer: Some(peer.to_owned()),
            leader: None,
            slot: None,
            ids: vec![tx_id.to_owned()],
            detail: format!("invalid transaction: {reason}"),
            at_ms: crate::node::now_ms(),
        });
    }

    fn push(&mut self, e: Evidence) {
        self.evidence.push_back(e);
        while self.evidence.len() > MAX_EVIDENCE {
            self.evidence.pop_front();
        }
    }

    /// Every piece of evidence kept, oldest first.
    pub fn evidence(&self) -> Vec<Evidence> {
        self.evidence.iter().cloned().collect()
    }
}

fn short(key: &str) -> &str {
    crate::p2p::connection::short_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::derive_secret;

    #[test]
    fn a_second_block_of_a_leader_for_a_slot_is_evidence_once() {
        let mut o = Observed::default();
        let mut new = false;
        assert!(!o.block("L", 5, "a", Some("p"), &mut new));
        assert!(
            !o.block("L", 5, "a", Some("p"), &mut new),
            "the same block again"
        );
        assert!(!o.block("M", 5, "b", None, &mut new), "another leader");
        assert!(o.block("L", 5, "b", Some("q"), &mut new));
        assert!(new);
        assert!(o.block("L", 5, "c", Some("q"), &mut new));
        assert!(!new, "one evidence per pair");
        let e = o.evidence();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].ids, ["a", "b", "c"]);
        assert_eq!(e[0].peer.as_deref(), Some("q"));
        o.invalid_tx("p", "t1", "bad signature");
        assert_eq!(o.evidence()[1].kind, EvidenceKind::InvalidTx);
    }

    #[test]
    fn withheld_blocks_are_due_after_their_time_or_when_withholding_stops() {
        let b = Byzantine::new(ByzantineBehaviours {
            withhold_ms: 60_000,
            ..Default::default()
        });
        let genesis = crate::types::BlockHeader {
            id: "00".repeat(32),
            parent: String::new(),
            slot: 0,
            height: 0,
            leader: String::new(),
            proof: String::new(),
            tx_root: String::new(),
            signature: String::new(),
        };
        let block = Block {
            header: crate::types::BlockHeader {
                id: "ab".into(),
                ..genesis
            },
            transactions: vec![],
        };
        b.hold(block.clone(), None, 60_000);
        assert!(b.is_withheld("ab"));
        assert!(b.due().is_empty());
        b.set(ByzantineBehaviours::default());
        assert_eq!(b.due().len(), 1);
        assert_eq!(b.withheld_count(), 0);
        let key = SigningKey::from_bytes(&derive_secret("k"));
        let (t1, t2) = (b.invalid_tx(&key), b.invalid_tx(&key));
        assert!(t1.verify().is_err());
        assert_ne!(t1.id(), t2.id());
    }
}
