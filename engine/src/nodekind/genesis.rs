//! The keys every run derives from its seed (leaders, joiners, followers, funded wallets) and
//! the genesis they make.

use devnode::config::{Genesis, GenesisAccount, GenesisLeader};
use devnode::crypto::{derive_secret, public_hex};
use ed25519_dalek::SigningKey;

use crate::topology::Topology;

pub(super) fn signing_key(hex_key: &str) -> SigningKey {
    devnode::crypto::signing_key_from_hex(hex_key)
        .unwrap_or_else(|_| SigningKey::from_bytes(&derive_secret(hex_key)))
}

/// Secret of genesis leader `i` of a run seeded with `seed` (hex).
pub fn leader_secret(seed: u64, i: usize) -> String {
    hex::encode(derive_secret(&format!("nomos-script/{seed}/leader/{i}")))
}

/// Secret of the `j`-th reserved staked joiner (hex).
pub fn joiner_secret(seed: u64, j: usize) -> String {
    hex::encode(derive_secret(&format!("nomos-script/{seed}/joiner/{j}")))
}

/// Secret of a non-producing node added at run time as node `i` (hex).
pub fn follower_secret(seed: u64, i: usize) -> String {
    hex::encode(derive_secret(&format!("nomos-script/{seed}/follower/{i}")))
}

/// Signing key of funded wallet `w`.
pub fn wallet_key(seed: u64, w: usize) -> SigningKey {
    SigningKey::from_bytes(&derive_secret(&format!("nomos-script/{seed}/wallet/{w}")))
}

/// Secrets of the funded wallets whose keys node `i`'s wallet knows: wallet `w` belongs
/// to node `w % n` of the `n` nodes deployed at start (nodes added later know none).
pub fn wallet_secrets(topology: &Topology, i: usize) -> Vec<String> {
    let n = topology.node_count().max(1);
    (0..topology.wallets)
        .filter(|w| w % n == i)
        .map(|w| hex::encode(wallet_key(topology.seed, w).to_bytes()))
        .collect()
}

/// The node whose wallet knows funded wallet `w`.
pub fn wallet_owner(topology: &Topology, w: usize) -> usize {
    w % topology.node_count().max(1)
}

/// Genesis of a topology: leaders (stake > 0 nodes, then reserved joiners),
/// funded wallets and an epoch nonce from the seed.
pub fn genesis_for(topology: &Topology, time_ms: u64) -> Genesis {
    let seed = topology.seed;
    let mut leaders: Vec<GenesisLeader> = topology
        .nodes
        .iter()
        .filter(|n| n.stake > 0)
        .map(|n| GenesisLeader {
            public_key: public_hex(&signing_key(&leader_secret(seed, n.index))),
            stake: n.stake,
        })
        .collect();
    for (j, &stake) in topology.reserved_joiners.iter().enumerate() {
        leaders.push(GenesisLeader {
            public_key: public_hex(&signing_key(&joiner_secret(seed, j))),
            stake,
        });
    }
    Genesis {
        time_ms,
        epoch_nonce: hex::encode(derive_secret(&format!("nomos-script/{seed}/epoch-nonce"))),
        accounts: (0..topology.wallets)
            .map(|w| GenesisAccount {
                public_key: public_hex(&wallet_key(seed, w)),
                balance: topology.wallet_balance,
            })
            .collect(),
        leaders,
    }
}
