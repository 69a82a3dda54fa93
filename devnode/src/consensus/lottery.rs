//! The per-slot leader lottery (Praos-style): a leader's proof is its
//! signature over the epoch nonce and the slot, so anyone can verify it, and
//! nobody can predict another leader's wins.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::crypto::hash;

/// The signed message of a slot's lottery.
pub fn lottery_message(epoch_nonce: &[u8; 32], slot: u64) -> Vec<u8> {
    let mut msg = Vec::with_capacity(7 + 32 + 8);
    msg.extend_from_slice(b"lottery");
    msg.extend_from_slice(epoch_nonce);
    msg.extend_from_slice(&slot.to_le_bytes());
    msg
}

/// The leader proof for a slot.
pub fn prove(key: &SigningKey, epoch_nonce: &[u8; 32], slot: u64) -> Signature {
    key.sign(&lottery_message(epoch_nonce, slot))
}

/// Checks that `proof` is `leader`'s proof for the slot.
pub fn verify_proof(
    leader: &VerifyingKey,
    epoch_nonce: &[u8; 32],
    slot: u64,
    proof: &Signature,
) -> bool {
    leader
        .verify(&lottery_message(epoch_nonce, slot), proof)
        .is_ok()
}

/// The proof's ticket in [0, 1): the first 8 bytes of sha256(proof), read as
/// a big-endian u64, divided by 2^64.
pub fn ticket(proof: &Signature) -> f64 {
    let digest = hash(&[&proof.to_bytes()]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) as f64 / 18_446_744_073_709_551_616.0
}

/// phi(stake) = 1 - (1 - f)^(stake / total): the chance that a leader with
/// this share of the stake wins a slot. It composes: the chance that some
/// leader wins is f whatever the split of the stake.
pub fn threshold(stake: u64, total_stake: u64, active_slot_coeff: f64) -> f64 {
    if stake == 0 || total_stake == 0 {
        return 0.0;
    }
    let share = stake as f64 / total_stake as f64;
    1.0 - (1.0 - active_slot_coeff).powf(share)
}

/// Whether the proof wins its slot for a leader with this stake.
pub fn wins(proof: &Signature, stake: u64, total_stake: u64, active_slot_coeff: f64) -> bool {
    ticket(proof) < threshold(stake, total_stake, active_slot_coeff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::derive_secret;

    #[test]
    fn threshold_follows_phi() {
        assert_eq!(threshold(0, 10, 0.5), 0.0);
        assert_eq!(threshold(10, 10, 1.0), 1.0);
        assert!((threshold(10, 10, 0.3) - 0.3).abs() < 1e-12);
        // Two halves: 1 - sqrt(0.5) each, and together they win with f.
        let half = threshold(5, 10, 0.5);
        assert!((half - (1.0 - 0.5f64.sqrt())).abs() < 1e-12);
        assert!(((1.0 - (1.0 - half) * (1.0 - half)) - 0.5).abs() < 1e-12);
        assert!(threshold(1, 10, 0.5) < threshold(2, 10, 0.5));
    }

    #[test]
    fn win_rate_matches_threshold_and_proofs_verify() {
        let key = SigningKey::from_bytes(&derive_secret("leader"));
        let nonce = [7u8; 32];
        let slots = 4000u64;
        let won = (0..slots)
            .filter(|&slot| wins(&prove(&key, &nonce, slot), 1, 4, 0.5))
            .count() as f64;
        let expected = threshold(1, 4, 0.5) * slots as f64;
        assert!(
            (won - expected).abs() < expected * 0.15,
            "won {won} slots, expected about {expected}"
        );
        let proof = prove(&key, &nonce, 9);
        assert!(verify_proof(&key.verifying_key(), &nonce, 9, &proof));
        assert!(!verify_proof(&key.verifying_key(), &nonce, 10, &proof));
        let other = SigningKey::from_bytes(&derive_secret("other"));
        assert!(!verify_proof(&other.verifying_key(), &nonce, 9, &proof));
    }
}
