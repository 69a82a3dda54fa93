//! Keys, hashes and signed transfers: shared by the node and by the
//! framework's transaction workload, so both sign and hash identically.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An ed25519 public key as 64 lowercase hex characters.
pub type PublicKeyHex = String;

/// Domain separator of transfer signatures and ids.
const TX_DOMAIN: &[u8] = b"nomos-devnode/tx/v1";

/// A key error, as a lowercase fragment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("expected {expected} hex bytes, got {got:?}")]
    BadHex { expected: usize, got: String },
    #[error("not a valid ed25519 public key: {0}")]
    BadPublicKey(String),
}

fn decode_fixed<const N: usize>(s: &str) -> Result<[u8; N], KeyError> {
    let bytes = hex::decode(s).map_err(|_| KeyError::BadHex {
        expected: N,
        got: s.chars().take(80).collect(),
    })?;
    bytes.try_into().map_err(|_| KeyError::BadHex {
        expected: N,
        got: s.chars().take(80).collect(),
    })
}

/// Parses a 32-byte hex secret seed.
pub fn signing_key_from_hex(s: &str) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&decode_fixed::<32>(s)?))
}

/// Parses a 32-byte hex public key.
pub fn verifying_key_from_hex(s: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&decode_fixed::<32>(s)?)
        .map_err(|_| KeyError::BadPublicKey(s.chars().take(80).collect()))
}

/// Derives a deterministic secret seed from a label (for example
/// `"run-42/wallet/7"`): the framework makes every key from the run seed.
pub fn derive_secret(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

/// Hex of a public key.
pub fn public_hex(key: &SigningKey) -> PublicKeyHex {
    hex::encode(key.verifying_key().as_bytes())
}

/// SHA-256 of the concatenated parts.
pub fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A transfer of `amount` from `from` to `to`, ordered by `nonce` per sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTx {
    pub from: PublicKeyHex,
    pub to: PublicKeyHex,
    pub amount: u64,
    pub nonce: u64,
    /// ed25519 signature by `from` over the transfer's signing bytes, hex.
    pub signature: String,
}

impl SignedTx {
    /// Builds and signs a transfer.
    pub fn sign(key: &SigningKey, to: &str, amount: u64, nonce: u64) -> Self {
        let from = public_hex(key);
        let msg = signing_bytes(&from, to, amount, nonce);
        Self {
            from,
            to: to.to_owned(),
            amount,
            nonce,
            signature: hex::encode(key.sign(&msg).to_bytes()),
        }
    }

    /// The transaction id: hash of the signing bytes (not of the signature,
    /// so a re-encoded signature cannot make a second id).
    pub fn id(&self) -> String {
        hex::encode(hash(&[&signing_bytes(
            &self.from,
            &self.to,
            self.amount,
            self.nonce,
        )]))
    }

    /// Checks keys and signature.
    pub fn verify(&self) -> Result<(), String> {
        let from = verifying_key_from_hex(&self.from).map_err(|e| format!("from: {e}"))?;
        verifying_key_from_hex(&self.to).map_err(|e| format!("to: {e}"))?;
        let sig = decode_fixed::<64>(&self.signature).map_err(|e| format!("signature: {e}"))?;
        let msg = signing_bytes(&self.from, &self.to, self.amount, self.nonce);
        from.verify(&msg, &Signature::from_bytes(&sig))
            .map_err(|_| "bad signature".to_owned())
    }
}

/// Opcode of the reference node's account transfer in a mantle transaction.
pub const TRANSFER_OPCODE: u8 = 208;

/// A `SignedMantleTx` as `POST /mempool/add/tx` accepts it (both dialects):
/// `{"mantle_tx": {"ops": [{"opcode": 208, "payload": {from, to, amount,
/// nonce}}], ...}, "ops_proofs": [{"Ed25519Sig": "<hex>"}], ...}`. Fields
/// the reference node does not use (`mantle_tx.hash`, `ledger_tx`, gas
/// prices, `ledger_tx_proof`) are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedMantleTx {
    pub mantle_tx: MantleTx,
    pub ops_proofs: Vec<serde_json::Value>,
}

/// The `mantle_tx` part of a [`SignedMantleTx`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MantleTx {
    pub ops: Vec<MantleOp>,
}

/// One operation of a mantle transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MantleOp {
    pub opcode: u8,
    pub payload: serde_json::Value,
}

/// The payload of the transfer operation (opcode 208).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferPayload {
    pub from: PublicKeyHex,
    pub to: PublicKeyHex,
    pub amount: u64,
    pub nonce: u64,
}

impl SignedMantleTx {
    /// The transfer it carries: exactly one op with opcode 208 and exactly
    /// one `Ed25519Sig` proof. The signature is not checked here.
    pub fn to_signed_tx(&self) -> Result<SignedTx, String> {
        let [op] = self.mantle_tx.ops.as_slice() else {
            return Err(format!(
                "unsupported operation: the reference node takes exactly one op (opcode {TRANSFER_OPCODE}), got {}",
                self.mantle_tx.ops.len()
            ));
        };
        if op.opcode != TRANSFER_OPCODE {
            return Err(format!(
                "unsupported operation: opcode {} (the reference node only takes its transfer, opcode {TRANSFER_OPCODE})",
                op.opcode
            ));
        }
        let payload: TransferPayload = serde_json::from_value(op.payload.clone()).map_err(|e| {
            format!("unsupported operation: payload of opcode {TRANSFER_OPCODE}: {e}")
        })?;
        let [proof] = self.ops_proofs.as_slice() else {
            return Err(format!(
                "unsupported operation: expected exactly one op proof, got {}",
                self.ops_proofs.len()
            ));
        };
        let signature = proof
            .get("Ed25519Sig")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                format!(
                    "unsupported operation: op proof {proof} is not {{\"Ed25519Sig\": \"<hex>\"}}"
                )
            })?;
        Ok(SignedTx {
            from: payload.from,
            to: payload.to,
            amount: payload.amount,
            nonce: payload.nonce,
            signature: signature.to_owned(),
        })
    }
}

impl SignedTx {
    /// The transfer's op: `{"opcode": 208, "payload": {from, to, amount, nonce}}`.
    pub fn mantle_op(&self) -> serde_json::Value {
        serde_json::json!({
            "opcode": TRANSFER_OPCODE,
            "payload": {
                "from": self.from,
                "to": self.to,
                "amount": self.amount,
                "nonce": self.nonce,
            }
        })
    }

    /// The transfer as a `SignedMantleTx` of `dialect`, exactly as the API
    /// serves it in blocks (and as `POST /mempool/add/tx` accepts it):
    /// - `logos-2026-05`: `{"mantle_tx": {"hash", "ops": [op]}, "ops_proofs": [{"Ed25519Sig"}]}`
    /// - `logos-2026-01`: `{"mantle_tx": {"hash", "ops": [op], "ledger_tx": {"inputs": [],
    ///   "outputs": []}, "execution_gas_price": 0, "storage_gas_price": 0}, "ops_proofs":
    ///   [{"Ed25519Sig"}], "ledger_tx_proof": null}`
    pub fn to_mantle(&self, dialect: crate::config::ApiDialect) -> serde_json::Value {
        use crate::config::ApiDialect;
        match dialect {
            ApiDialect::Logos202605 => serde_json::json!({
                "mantle_tx": { "hash": self.id(), "ops": [self.mantle_op()] },
                "ops_proofs": [{ "Ed25519Sig": self.signature }],
            }),
            ApiDialect::Logos202601 => {
                let mut v = self.to_raw_mantle();
                v["mantle_tx"]["hash"] = serde_json::Value::String(self.id());
                v
            }
        }
    }

    /// The `logos-2026-01` raw serde form (in `/storage/block`): as
    /// [`SignedTx::to_mantle`] for that dialect, without `mantle_tx.hash`.
    pub fn to_raw_mantle(&self) -> serde_json::Value {
        serde_json::json!({
            "mantle_tx": {
                "ops": [self.mantle_op()],
                "ledger_tx": { "inputs": [], "outputs": [] },
                "execution_gas_price": 0,
                "storage_gas_price": 0,
            },
            "ops_proofs": [{ "Ed25519Sig": self.signature }],
            "ledger_tx_proof": null,
        })
    }

    /// Reads a transfer back from any of the shapes above (or anything a
    /// `SignedMantleTx` body may be). The signature is not checked.
    pub fn from_mantle(value: &serde_json::Value) -> Result<SignedTx, String> {
        let tx: SignedMantleTx = serde_json::from_value(value.clone())
            .map_err(|e| format!("not a SignedMantleTx: {e}"))?;
        tx.to_signed_tx()
    }
}

fn signing_bytes(from: &str, to: &str, amount: u64, nonce: u64) -> Vec<u8> {
    let mut msg = Vec::with_capacity(TX_DOMAIN.len() + 64 + 64 + 16);
    msg.extend_from_slice(TX_DOMAIN);
    msg.extend_from_slice(from.as_bytes());
    msg.extend_from_slice(to.as_bytes());
    msg.extend_from_slice(&amount.to_le_bytes());
    msg.extend_from_slice(&nonce.to_le_bytes());
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_transfer_verifies_and_tampering_breaks_it() {
        let a = SigningKey::from_bytes(&derive_secret("a"));
        let b = SigningKey::from_bytes(&derive_secret("b"));
        let tx = SignedTx::sign(&a, &public_hex(&b), 10, 0);
        assert_eq!(tx.verify(), Ok(()));
        let mut bad = tx.clone();
        bad.amount = 11;
        assert_eq!(bad.verify(), Err("bad signature".to_owned()));
        assert_ne!(tx.id(), bad.id());
    }

    #[test]
    fn mantle_shapes_round_trip_in_both_dialects() {
        use crate::config::ApiDialect;
        let a = SigningKey::from_bytes(&derive_secret("a"));
        let b = SigningKey::from_bytes(&derive_secret("b"));
        let tx = SignedTx::sign(&a, &public_hex(&b), 10, 3);
        for dialect in ApiDialect::ALL {
            let v = tx.to_mantle(dialect);
            assert_eq!(v["mantle_tx"]["hash"], tx.id());
            assert_eq!(v["mantle_tx"]["ops"][0]["opcode"], 208);
            assert_eq!(v["ops_proofs"][0]["Ed25519Sig"], tx.signature);
            assert_eq!(SignedTx::from_mantle(&v), Ok(tx.clone()), "{dialect}");
        }
        let v05 = tx.to_mantle(ApiDialect::Logos202605);
        let keys: Vec<&String> = v05["mantle_tx"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["hash", "ops"]);
        let v01 = tx.to_mantle(ApiDialect::Logos202601);
        assert_eq!(v01["ledger_tx_proof"], serde_json::Value::Null);
        assert_eq!(v01["mantle_tx"]["execution_gas_price"], 0);
        let raw = tx.to_raw_mantle();
        assert!(raw["mantle_tx"].get("hash").is_none());
        assert_eq!(SignedTx::from_mantle(&raw), Ok(tx.clone()));

        let mut wrong = v05.clone();
        wrong["mantle_tx"]["ops"][0]["opcode"] = 0.into();
        assert!(
            SignedTx::from_mantle(&wrong)
                .unwrap_err()
                .contains("unsupported operation")
        );
        let mut two = v05.clone();
        two["mantle_tx"]["ops"] = serde_json::json!([tx.mantle_op(), tx.mantle_op()]);
        assert!(
            SignedTx::from_mantle(&two)
                .unwrap_err()
                .contains("unsupported operation")
        );
    }
}
