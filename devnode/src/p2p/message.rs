//! The wire messages. Each frame is a 4-byte big-endian length followed by
//! one JSON-encoded [`Message`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::crypto::SignedTx;
use crate::types::Block;

/// Protocol version; a peer with another one is refused at the handshake.
pub const PROTOCOL_VERSION: u32 = 1;

/// One p2p message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// First frame each way.
    Handshake {
        version: u32,
        /// Genesis block id: nodes of different testnets refuse each other.
        genesis: String,
        public_key: String,
        /// Where the sender listens (informational: nodes only dial the
        /// addresses they are given, so a proxy can stand in for a peer).
        advertise: String,
    },
    /// The sender's canonical tip, sent on connect and every slot; repairs
    /// lost gossip.
    Tip { id: String, height: u64 },
    /// A new valid block.
    Block { block: Block },
    /// A new valid transfer.
    Tx { tx: SignedTx },
    /// Asks for the blocks leading to `tip` after the highest block of
    /// `locator` on that branch.
    GetChain { tip: String, locator: Vec<String> },
    /// Answer to `GetChain`: oldest first; `more` when the batch was capped.
    Chain {
        tip: String,
        blocks: Vec<Block>,
        more: bool,
    },
}

impl Message {
    /// The frame payload.
    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("messages serialise"))
    }
}
