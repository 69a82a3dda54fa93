//! The node's internal block shapes: what the p2p protocol carries and the
//! store keeps. The HTTP API never serves these directly; it projects them
//! into the real node's shapes (`crate::api::shapes`).

use serde::{Deserialize, Serialize};

use crate::crypto::SignedTx;

/// A block header. The id is the hash of every other field but `signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub id: String,
    pub parent: String,
    pub slot: u64,
    pub height: u64,
    /// Leader public key (64 hex).
    pub leader: String,
    /// Leader proof: signature over (epoch nonce, slot), 128 hex.
    pub proof: String,
    /// Hash of the ordered transaction ids (64 hex).
    pub tx_root: String,
    /// Leader's signature over the id (128 hex).
    pub signature: String,
}

/// A block as exchanged between reference nodes and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub transactions: Vec<SignedTx>,
}
