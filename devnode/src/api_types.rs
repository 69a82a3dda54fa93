//! LEGACY: the JSON shapes of the reference node's former, invented API.
//! The node no longer serves any of them (it serves the real node's shapes,
//! see `crate::api`); they are kept only so that dependents still compile
//! while they migrate, and will be removed. `Block` and `BlockHeader` are
//! the internal types of `crate::types`, re-exported.

use serde::{Deserialize, Serialize};

pub use crate::types::{Block, BlockHeader};

/// `GET /cryptarchia/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusInfo {
    /// Last irreversible block id (64 hex).
    pub lib: String,
    /// Tip id (64 hex).
    pub tip: String,
    /// Current wall-clock slot.
    pub slot: u64,
    /// Height of the tip (genesis is 0).
    pub height: u64,
    /// `"Bootstrapping"` until the node has synced from a peer or waited a
    /// few slots alone, then `"Online"`.
    pub mode: String,
}

/// `GET /network/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub listen_addresses: Vec<String>,
    pub n_peers: usize,
    pub n_connections: usize,
    pub n_pending_connections: usize,
}

/// One line of `GET /cryptarchia/blocks/stream` (NDJSON). After a `reorg`
/// line, the newly canonical blocks follow as `block` lines, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockStreamEvent {
    /// A block became canonical.
    Block {
        header: BlockHeader,
        tx_ids: Vec<String>,
        /// Node's wall clock when it adopted the block, ms since the Unix epoch.
        adopted_at_ms: u64,
    },
    /// The canonical chain switched branches.
    Reorg {
        old_tip: String,
        new_tip: String,
        /// Last block both branches share.
        fork_point: String,
        fork_height: u64,
        /// Blocks abandoned from the old branch.
        depth: u64,
    },
}

/// `POST /mempool/add/tx` answer on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTxResponse {
    pub id: String,
}

/// Body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// `GET /ledger/account/{public_key}` (at the tip).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub balance: u64,
    pub nonce: u64,
}

/// `GET /mempool/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolInfo {
    pub size: usize,
}
