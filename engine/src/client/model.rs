//! The neutral model of a node's API: what the runner, the block feed,
//! workloads, expectations and scripts see, whatever the node's dialect.
//! Every dialect decodes into these types (see `dialect.rs`).

use serde::{Deserialize, Serialize};

/// The first 8 characters of a block id (or any id), for messages. Counted in characters, not
/// bytes: a node may answer with an id that is not ASCII hex, and that must never panic.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(8) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// Chain state of one node (`/cryptarchia/info` in every dialect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusInfo {
    /// Last irreversible block id (64 hex).
    pub lib: String,
    /// Tip id (64 hex).
    pub tip: String,
    /// Current slot.
    pub slot: u64,
    /// Height of the tip (genesis is 0).
    pub height: u64,
    /// Slot of the LIB, where the dialect reports it (`logos-2026-05`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lib_slot: Option<u64>,
    /// `AwaitingStart`, `Bootstrapping` or `Online` (another value is kept as sent).
    pub mode: String,
}

impl ConsensusInfo {
    /// True once the node follows the chain (`Online`).
    pub fn is_online(&self) -> bool {
        self.mode == "Online"
    }
}

/// Peers of one node (`/network/info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// Addresses the node listens on: multiaddrs (`/ip4/127.0.0.1/udp/P/quic-v1`) on the
    /// real node, `host:port` on the reference node.
    pub listen_addresses: Vec<String>,
    /// The node's peer id, where the dialect reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    pub n_peers: usize,
    pub n_connections: usize,
    pub n_pending_connections: usize,
    /// Peer ids of the connected peers (`logos-2026-05`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_peers: Option<Vec<String>>,
}

/// A transfer the framework can read inside a transaction (the reference node's
/// account transfer). The real node's UTXO transfers are zk-signed and opaque here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: String,
    pub to: String,
    pub amount: u64,
    pub nonce: u64,
}

/// One transaction of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTx {
    /// The transaction hash (`mantle_tx.hash`), or computed where the dialect's answer has
    /// none and the transaction is one the framework can hash (a reference-node transfer).
    /// None: the node sent no hash and the framework cannot compute one.
    pub id: Option<String>,
    /// The transfer, when the transaction is one the framework can read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
    /// Number of operations in the transaction.
    pub ops: usize,
}

/// A block, in the neutral model. Heights are not part of any real node's block
/// answer: `height` is filled in where the client knows it (the block feed derives
/// it from the parent chain), else None.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub id: String,
    pub parent: String,
    pub slot: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Leader key from the proof of leadership, where present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// `block_root` of the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_root: Option<String>,
    pub transactions: Vec<BlockTx>,
}

impl Block {
    /// Hashes of the block's transactions that are known.
    pub fn tx_ids(&self) -> Vec<String> {
        self.transactions
            .iter()
            .filter_map(|t| t.id.clone())
            .collect()
    }
}

/// One line of a node's block stream, in the neutral model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBlock {
    pub block: Block,
    /// The node's tip after it processed the block (`logos-2026-05` only).
    pub tip: Option<String>,
    /// The node's LIB after it processed the block (`logos-2026-05` only).
    pub lib: Option<String>,
}

/// Mempool state (`/mantle/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolInfo {
    /// Transactions waiting.
    pub pending_items: u64,
    /// When the last one arrived (ms since the Unix epoch; 0 when none did).
    pub last_item_timestamp: u64,
}

/// Balance of a key the node's wallet knows (`/wallet/{pk}/balance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Tip the balance was read at.
    pub tip: String,
    pub balance: u64,
    /// The key (as the node spells it).
    pub address: String,
}

/// A node-signed transfer (`POST /wallet/transactions/transfer-funds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferFunds {
    /// Tip to build on (None: the node's tip).
    pub tip: Option<String>,
    pub change_public_key: String,
    pub funding_public_keys: Vec<String>,
    pub recipient_public_key: String,
    pub amount: u64,
}

/// An account of the reference node's ledger (its testing surface only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub balance: u64,
    pub nonce: u64,
}

/// The reference node's clock (its testing surface only): its time, how far it is from wall
/// time, and the drift in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReading {
    pub now_ms: i64,
    pub skew_ms: i64,
    pub drift_ppm: i64,
}

/// The reference node's lies (its testing surface only): the behaviours in force, how they
/// read (`equivocate, withhold 2000ms` or `honest`) and how many own blocks it withholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByzantineState {
    pub behaviours: devnode::config::ByzantineBehaviours,
    pub summary: String,
    pub withheld: u64,
}

/// One lie a reference node saw (its testing surface only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceEntry {
    /// `equivocation` or `invalid_tx`.
    pub kind: String,
    /// Public key of the peer that sent it.
    #[serde(default)]
    pub peer: Option<String>,
    /// The equivocating leader's public key.
    #[serde(default)]
    pub leader: Option<String>,
    #[serde(default)]
    pub slot: Option<u64>,
    /// The conflicting block ids, or the transaction id.
    pub ids: Vec<String>,
    pub detail: String,
    /// When it was seen, ms since the Unix epoch.
    pub at_ms: u64,
}

/// What a reference node saw of its peers' lies, with its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceReport {
    pub evidence: Vec<EvidenceEntry>,
    pub equivocations_seen: u64,
    pub equivocations_accepted: u64,
    pub invalid_transactions: u64,
}

/// The reference node's disk faults and what they did (its testing surface only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskReading {
    /// The last this many block writes are held back as not durable.
    pub unflushed_blocks: u64,
    /// Every write fails (ENOSPC).
    pub full: bool,
    /// Block writes not durable now (a kill loses them).
    pub pending_blocks: u64,
    /// Height of the highest durable block.
    pub durable_height: u64,
    /// Height of the chain the store held when the node started.
    pub reloaded_height: u64,
    /// Block writes refused for want of space.
    pub write_failures: u64,
    /// The last write error, if any.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// One line of `GET /cryptarchia/lib-stream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibUpdate {
    pub height: u64,
    pub header_id: String,
}

/// A service declaration (testing port `GET /mantle/sdp/declarations` of the real node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdpDeclaration {
    pub service_type: String,
    pub provider_id: String,
    pub locked_note_id: String,
    /// Multiaddrs the provider is reachable at.
    pub locators: Vec<String>,
    pub zk_id: String,
}

#[cfg(test)]
mod short_id_tests {
    use super::short_id;

    #[test]
    fn ids_are_shortened_by_characters_never_panicking() {
        assert_eq!(short_id("0123456789abcdef"), "01234567");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id(""), "");
        // multi-byte characters straddling byte 8 would panic a byte slice
        assert_eq!(short_id("ééééééééé"), "éééééééé");
        assert_eq!(short_id("0123456€89"), "0123456€");
        assert_eq!(short_id("🦀🦀"), "🦀🦀");
    }
}
