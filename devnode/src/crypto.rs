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
}
