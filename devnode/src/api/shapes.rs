//! Projections of the node's internal blocks into the real node's JSON
//! shapes (`ApiBlock`, `RawBlock`), per dialect. See `devnode/README.md`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::config::ApiDialect;
use crate::consensus::block::Rules;
use crate::types::{Block, BlockHeader};

/// 32 zero bytes as hex.
pub const ZERO_ID: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A header id (64 hex) in a path, query or body. Anything else does not
/// deserialize, like the real node's `HeaderId` (a wrong length reads
/// "invalid string length").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderId(pub String);

impl<'de> Deserialize<'de> for HeaderId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_id(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HeaderId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Checks a header id: 64 hex characters, returned lowercase.
pub fn parse_id(s: &str) -> Result<HeaderId, String> {
    if s.len() != 64 {
        return Err("invalid string length".into());
    }
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("invalid character".into());
    }
    Ok(HeaderId(s.to_ascii_lowercase()))
}

fn or_zeros(s: &str, bytes: usize) -> String {
    if s.is_empty() {
        "00".repeat(bytes)
    } else {
        s.to_owned()
    }
}

/// `proof_of_leadership` of a header (the genesis block's empty leader and
/// proof read as zeros).
pub fn proof_of_leadership(h: &BlockHeader, rules: &Rules) -> Value {
    json!({
        "proof": or_zeros(&h.proof, 64),
        "entropy_contribution": ZERO_ID,
        "leader_key": or_zeros(&h.leader, 32),
        "voucher_cm": ZERO_ID,
        "public": {
            "slot": h.slot,
            "epoch_nonce": hex::encode(rules.epoch_nonce),
            "total_stake": rules.total_stake,
            "aged_root": ZERO_ID,
            "latest_root": ZERO_ID,
        },
    })
}

/// `ApiBlock`: `{header: {id, parent_block, slot, block_root,
/// proof_of_leadership}, transactions: [ApiTx]}`; no height.
pub fn api_block(block: &Block, dialect: ApiDialect, rules: &Rules) -> Value {
    let h = &block.header;
    json!({
        "header": {
            "id": h.id,
            "parent_block": h.parent,
            "slot": h.slot,
            "block_root": h.tx_root,
            "proof_of_leadership": proof_of_leadership(h, rules),
        },
        "transactions": block
            .transactions
            .iter()
            .map(|tx| tx.to_mantle(dialect))
            .collect::<Vec<_>>(),
    })
}

/// `RawBlock` (logos-2026-01 `/storage/block`): `{header: {version,
/// parent_block, slot, block_root, proof_of_leadership}, signature: [64
/// numbers], transactions: [RawTx]}`; no id, no height.
pub fn raw_block(block: &Block, rules: &Rules) -> Value {
    let h = &block.header;
    let mut signature = hex::decode(&h.signature).unwrap_or_default();
    signature.resize(64, 0);
    json!({
        "header": {
            "version": "Bedrock",
            "parent_block": h.parent,
            "slot": h.slot,
            "block_root": h.tx_root,
            "proof_of_leadership": proof_of_leadership(h, rules),
        },
        "signature": signature,
        "transactions": block
            .transactions
            .iter()
            .map(|tx| tx.to_raw_mantle())
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_ids_are_64_hex() {
        assert_eq!(parse_id("ab").unwrap_err(), "invalid string length");
        assert_eq!(parse_id(&"zz".repeat(32)).unwrap_err(), "invalid character");
        assert_eq!(parse_id(&"AB".repeat(32)).unwrap().0, "ab".repeat(32));
    }
}
