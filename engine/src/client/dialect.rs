//! API dialects: the real Logos node's HTTP API by revision, decoded into the
//! neutral model. The reference node serves both (its `api.dialect` setting).
//!
//! | | `logos-2026-01` | `logos-2026-05` |
//! |---|---|---|
//! | info | flat `{lib, tip, slot, height, mode}` | `{cryptarchia_info: {lib, lib_slot, tip, slot, height}, mode}` |
//! | block by id | `POST /storage/block` (raw block, no id; unknown: `null`) | `GET /cryptarchia/blocks/{id}` (404 unknown) |
//! | block stream | `/cryptarchia/blocks/stream` (block-explorer builds only) | `/cryptarchia/events/blocks/stream` |
//! | run-time dial | none | testing port `POST /test/network/dial_peer` |
//!
//! Every other path is common: `/cryptarchia/headers`, `/network/info`, `/mantle/metrics`,
//! `/mempool/add/tx`, `/wallet/{pk}/balance`, `/wallet/transactions/transfer-funds`.

use std::fmt;
use std::str::FromStr;

use devnode::crypto::SignedTx;
use serde_json::Value;

use super::model::{Block, BlockTx, ConsensusInfo, StreamBlock, Transfer};

/// The opcode of the reference node's account transfer inside a Mantle transaction.
pub const REFERENCE_TRANSFER_OPCODE: u64 = 208;

/// One revision of the node's HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Dialect {
    /// The January 2026 revision (the one the reference framework pins).
    #[serde(rename = "logos-2026-01")]
    Logos202601,
    /// The May 2026 revision.
    #[serde(rename = "logos-2026-05")]
    Logos202605,
}

impl Dialect {
    /// Every dialect, newest first.
    pub const ALL: [Dialect; 2] = [Dialect::Logos202605, Dialect::Logos202601];

    /// `logos-2026-01` or `logos-2026-05`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Logos202601 => "logos-2026-01",
            Dialect::Logos202605 => "logos-2026-05",
        }
    }

    /// Path of the block stream.
    pub fn block_stream_path(self) -> &'static str {
        match self {
            Dialect::Logos202601 => "/cryptarchia/blocks/stream",
            Dialect::Logos202605 => "/cryptarchia/events/blocks/stream",
        }
    }

    /// Which dialect an answer of `GET /cryptarchia/info` is in.
    pub fn detect(info: &Value) -> Option<Dialect> {
        if info.get("cryptarchia_info").is_some_and(Value::is_object) {
            Some(Dialect::Logos202605)
        } else if info.get("tip").is_some() && info.get("mode").is_some_and(Value::is_string) {
            Some(Dialect::Logos202601)
        } else {
            None
        }
    }

    /// Decodes `GET /cryptarchia/info`.
    pub fn decode_info(self, v: &Value) -> Result<ConsensusInfo, String> {
        match self {
            Dialect::Logos202601 => {
                let mode = v
                    .get("mode")
                    .and_then(Value::as_str)
                    .ok_or("missing string field `mode`")?;
                Ok(ConsensusInfo {
                    lib: str_field(v, "lib")?,
                    tip: str_field(v, "tip")?,
                    slot: u64_field(v, "slot")?,
                    height: u64_field(v, "height")?,
                    lib_slot: None,
                    mode: mode.to_owned(),
                })
            }
            Dialect::Logos202605 => {
                let ci = v
                    .get("cryptarchia_info")
                    .ok_or("missing field `cryptarchia_info`")?;
                Ok(ConsensusInfo {
                    lib: str_field(ci, "lib")?,
                    tip: str_field(ci, "tip")?,
                    slot: u64_field(ci, "slot")?,
                    height: u64_field(ci, "height")?,
                    lib_slot: ci.get("lib_slot").and_then(Value::as_u64),
                    mode: decode_mode(v.get("mode").ok_or("missing field `mode`")?)?,
                })
            }
        }
    }

    /// Decodes one line of the block stream.
    pub fn decode_stream_line(self, v: &Value) -> Result<StreamBlock, String> {
        match self {
            Dialect::Logos202601 => Ok(StreamBlock {
                block: decode_block(v, None)?,
                tip: None,
                lib: None,
            }),
            Dialect::Logos202605 => {
                let block = v.get("block").ok_or("missing field `block`")?;
                Ok(StreamBlock {
                    block: decode_block(block, None)?,
                    tip: v.get("tip").and_then(Value::as_str).map(str::to_owned),
                    lib: v.get("lib").and_then(Value::as_str).map(str::to_owned),
                })
            }
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                format!("unknown API dialect {s:?} (known: logos-2026-05, logos-2026-01)")
            })
    }
}

/// `"AwaitingStart"`, `{"Started": "Online"}` (May 2026) or a plain string.
fn decode_mode(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Object(o) => match o.get("Started") {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(format!("unknown mode {v}")),
        },
        _ => Err(format!("unknown mode {v}")),
    }
}

fn str_field(v: &Value, name: &str) -> Result<String, String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("missing string field `{name}`"))
}

fn u64_field(v: &Value, name: &str) -> Result<u64, String> {
    v.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("missing integer field `{name}`"))
}

/// Decodes a block in either form: the API form (`header.id`, transactions with
/// `mantle_tx.hash`) or the raw form of `POST /storage/block` (no id: `known_id` is the
/// id it was asked by).
pub fn decode_block(v: &Value, known_id: Option<&str>) -> Result<Block, String> {
    let header = v.get("header").ok_or("missing field `header`")?;
    let id = match header.get("id").and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None => known_id
            .map(str::to_owned)
            .ok_or("missing string field `header.id`")?,
    };
    let txs = v
        .get("transactions")
        .and_then(Value::as_array)
        .ok_or("missing array field `transactions`")?;
    let pol = header.get("proof_of_leadership");
    Ok(Block {
        id,
        parent: str_field(header, "parent_block").map_err(|e| format!("header: {e}"))?,
        slot: u64_field(header, "slot").map_err(|e| format!("header: {e}"))?,
        height: None,
        leader: pol
            .and_then(|p| p.get("leader_key"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        block_root: header
            .get("block_root")
            .and_then(Value::as_str)
            .map(str::to_owned),
        transactions: txs
            .iter()
            .enumerate()
            .map(|(i, t)| decode_tx(t).map_err(|e| format!("transactions[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
    })
}

/// Decodes one transaction of a block (`{mantle_tx: {hash?, ops, ..}, ops_proofs, ..}`).
pub fn decode_tx(v: &Value) -> Result<BlockTx, String> {
    let mantle = v.get("mantle_tx").ok_or("missing field `mantle_tx`")?;
    let ops = mantle
        .get("ops")
        .and_then(Value::as_array)
        .ok_or("missing array field `mantle_tx.ops`")?;
    let transfer = reference_transfer(ops);
    let hash = mantle
        .get("hash")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = hash.or_else(|| {
        let t = transfer.as_ref()?;
        let signature = v
            .get("ops_proofs")?
            .get(0)?
            .get("Ed25519Sig")?
            .as_str()?
            .to_owned();
        Some(
            SignedTx {
                from: t.from.clone(),
                to: t.to.clone(),
                amount: t.amount,
                nonce: t.nonce,
                signature,
            }
            .id(),
        )
    });
    Ok(BlockTx {
        id,
        transfer,
        ops: ops.len(),
    })
}

fn reference_transfer(ops: &[Value]) -> Option<Transfer> {
    let [op] = ops else { return None };
    if op.get("opcode")?.as_u64()? != REFERENCE_TRANSFER_OPCODE {
        return None;
    }
    serde_json::from_value(op.get("payload")?.clone()).ok()
}

/// The body of `POST /mempool/add/tx` for a client-signed reference-node transfer:
/// a `SignedMantleTx` with one operation of the reference node's own opcode.
pub fn mantle_body(tx: &SignedTx) -> Value {
    serde_json::json!({
        "mantle_tx": {
            "hash": tx.id(),
            "ops": [{
                "opcode": REFERENCE_TRANSFER_OPCODE,
                "payload": {"from": tx.from, "to": tx.to, "amount": tx.amount, "nonce": tx.nonce},
            }],
        },
        "ops_proofs": [{"Ed25519Sig": tx.signature}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Dialect::ALL {
            assert_eq!(d.as_str().parse::<Dialect>(), Ok(d));
        }
        let e = "logos-2025".parse::<Dialect>().unwrap_err();
        assert!(
            e.contains("logos-2025") && e.contains("logos-2026-05"),
            "{e}"
        );
    }

    #[test]
    fn may_modes() {
        let v = serde_json::json!({"cryptarchia_info": {"lib": "a", "lib_slot": 1, "tip": "b", "slot": 5, "height": 3}, "mode": {"Started": "Online"}});
        assert_eq!(Dialect::detect(&v), Some(Dialect::Logos202605));
        let i = Dialect::Logos202605.decode_info(&v).unwrap();
        assert!(i.is_online());
        assert_eq!((i.height, i.lib_slot), (3, Some(1)));
        let v = serde_json::json!({"cryptarchia_info": {"lib": "a", "lib_slot": 0, "tip": "a", "slot": 0, "height": 0}, "mode": "AwaitingStart"});
        assert_eq!(
            Dialect::Logos202605.decode_info(&v).unwrap().mode,
            "AwaitingStart"
        );
    }

    #[test]
    fn reference_transfer_hash_is_computed_when_absent() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let tx = SignedTx::sign(&key, &devnode::crypto::public_hex(&key), 3, 4);
        let mut body = mantle_body(&tx);
        let with_hash = decode_tx(&body).unwrap();
        assert_eq!(with_hash.id.as_deref(), Some(tx.id().as_str()));
        body["mantle_tx"].as_object_mut().unwrap().remove("hash");
        let computed = decode_tx(&body).unwrap();
        assert_eq!(computed, with_hash);
        assert_eq!(computed.transfer.unwrap().amount, 3);
    }
}
