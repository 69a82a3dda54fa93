//! Block ids, production and the checks that need no chain state (so they
//! run before the chain lock is taken).

use std::collections::HashMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::config::NodeConfig;
use crate::consensus::lottery;
use crate::crypto::{SignedTx, hash, public_hex, verifying_key_from_hex};
use crate::types::{Block, BlockHeader};

const BLOCK_DOMAIN: &[u8] = b"nomos-devnode/block/v1";
const TX_ROOT_DOMAIN: &[u8] = b"nomos-devnode/tx-root/v1";
const GENESIS_DOMAIN: &[u8] = b"nomos-devnode/genesis/v1";

/// Everything a node needs to judge a block without its chain: the shared
/// genesis parameters.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Id of the genesis block; doubles as the testnet's identity in the
    /// p2p handshake.
    pub genesis_id: String,
    pub epoch_nonce: [u8; 32],
    pub active_slot_coeff: f64,
    /// Leader public key (hex) -> (key, stake).
    pub leaders: HashMap<String, (VerifyingKey, u64)>,
    pub total_stake: u64,
    pub max_block_txs: usize,
    pub genesis_time_ms: u64,
    pub slot_duration_ms: u64,
}

impl Rules {
    /// Derives the rules from a config; errors name the bad field.
    pub fn from_config(config: &NodeConfig) -> Result<Self, String> {
        let nonce = hex::decode(&config.genesis.epoch_nonce)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                format!(
                    "genesis.epoch_nonce = {:?} is not 32 hex bytes",
                    config.genesis.epoch_nonce
                )
            })?;
        let mut leaders = HashMap::new();
        let mut total_stake = 0u64;
        for (i, leader) in config.genesis.leaders.iter().enumerate() {
            let key = verifying_key_from_hex(&leader.public_key)
                .map_err(|e| format!("genesis.leaders[{i}].public_key: {e}"))?;
            total_stake = total_stake
                .checked_add(leader.stake)
                .ok_or_else(|| format!("genesis.leaders[{i}].stake: total stake overflows u64"))?;
            let entry = leaders.entry(leader.public_key.clone()).or_insert((key, 0));
            entry.1 += leader.stake;
        }
        if total_stake == 0 {
            return Err("genesis.leaders: total stake is 0, no leader could ever win".into());
        }
        for (i, acc) in config.genesis.accounts.iter().enumerate() {
            verifying_key_from_hex(&acc.public_key)
                .map_err(|e| format!("genesis.accounts[{i}].public_key: {e}"))?;
        }
        let genesis_json = serde_json::to_vec(&(&config.genesis, &config.consensus))
            .map_err(|e| format!("genesis: {e}"))?;
        Ok(Self {
            genesis_id: hex::encode(hash(&[GENESIS_DOMAIN, &genesis_json])),
            epoch_nonce: nonce,
            active_slot_coeff: config.consensus.active_slot_coeff,
            leaders,
            total_stake,
            max_block_txs: config.limits.max_block_txs,
            genesis_time_ms: config.genesis.time_ms,
            slot_duration_ms: config.consensus.slot_duration_ms,
        })
    }

    /// The wall-clock slot at `now_ms`, `None` before genesis.
    pub fn slot_at(&self, now_ms: u64) -> Option<u64> {
        now_ms
            .checked_sub(self.genesis_time_ms)
            .map(|d| d / self.slot_duration_ms)
    }

    /// Start of a slot, ms since the Unix epoch.
    pub fn slot_start_ms(&self, slot: u64) -> u64 {
        self.genesis_time_ms + slot * self.slot_duration_ms
    }

    /// The stake of a leader key, if it is a genesis leader.
    pub fn stake_of(&self, public_key: &str) -> Option<u64> {
        self.leaders.get(public_key).map(|(_, s)| *s)
    }

    /// The fixed genesis block: derived from the genesis and consensus
    /// sections alone, so every node of a testnet has the same one.
    pub fn genesis_block(&self) -> Block {
        Block {
            header: BlockHeader {
                id: self.genesis_id.clone(),
                parent: "00".repeat(32),
                slot: 0,
                height: 0,
                leader: String::new(),
                proof: String::new(),
                tx_root: hex::encode(tx_root(&[])),
                signature: String::new(),
            },
            transactions: vec![],
        }
    }
}

/// Hash of the ordered transaction ids.
pub fn tx_root(ids: &[String]) -> [u8; 32] {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(ids.len() + 1);
    parts.push(TX_ROOT_DOMAIN);
    parts.extend(ids.iter().map(|id| id.as_bytes()));
    hash(&parts)
}

/// The block id: sha256 over (parent, slot, height, leader, proof, tx_root).
pub fn block_id(
    parent: &[u8; 32],
    slot: u64,
    height: u64,
    leader: &[u8; 32],
    proof: &[u8; 64],
    tx_root: &[u8; 32],
) -> [u8; 32] {
    hash(&[
        BLOCK_DOMAIN,
        parent,
        &slot.to_le_bytes(),
        &height.to_le_bytes(),
        leader,
        proof,
        tx_root,
    ])
}

/// Builds and signs a block on `parent`. With `corrupt_proof` (the
/// `testing.invalid_proofs` fault) the proof is altered after the lottery
/// was won, so the block is well-formed but honest peers reject it.
pub fn produce(
    key: &SigningKey,
    rules: &Rules,
    parent: &BlockHeader,
    slot: u64,
    transactions: Vec<SignedTx>,
    corrupt_proof: bool,
) -> Block {
    let mut proof = lottery::prove(key, &rules.epoch_nonce, slot).to_bytes();
    if corrupt_proof {
        proof[0] ^= 0xff;
    }
    let ids: Vec<String> = transactions.iter().map(SignedTx::id).collect();
    let root = tx_root(&ids);
    let parent_raw = decode32(&parent.id).unwrap_or_default();
    let leader = key.verifying_key().to_bytes();
    let height = parent.height + 1;
    let id = block_id(&parent_raw, slot, height, &leader, &proof, &root);
    Block {
        header: BlockHeader {
            id: hex::encode(id),
            parent: parent.id.clone(),
            slot,
            height,
            leader: public_hex(key),
            proof: hex::encode(proof),
            tx_root: hex::encode(root),
            signature: hex::encode(key.sign(&id).to_bytes()),
        },
        transactions,
    }
}

fn decode32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok().and_then(|b| b.try_into().ok())
}

fn decode64(s: &str) -> Option<[u8; 64]> {
    hex::decode(s).ok().and_then(|b| b.try_into().ok())
}

/// Checks everything about a block that does not depend on the chain:
/// leader, proof, ticket, id, header signature, tx root and transfer
/// signatures. Returns the transaction ids.
pub fn verify_standalone(rules: &Rules, block: &Block) -> Result<Vec<String>, String> {
    let h = &block.header;
    if block.transactions.len() > rules.max_block_txs {
        return Err(format!(
            "block {} carries {} transactions, more than limits.max_block_txs = {}",
            h.id,
            block.transactions.len(),
            rules.max_block_txs
        ));
    }
    let (leader_key, stake) = rules.leaders.get(&h.leader).ok_or_else(|| {
        format!(
            "block {}: leader {:?} is not a genesis leader",
            h.id, h.leader
        )
    })?;
    let proof_raw =
        decode64(&h.proof).ok_or_else(|| format!("block {}: proof is not 64 hex bytes", h.id))?;
    let proof = Signature::from_bytes(&proof_raw);
    if !lottery::verify_proof(leader_key, &rules.epoch_nonce, h.slot, &proof) {
        return Err(format!(
            "block {}: leader proof for slot {} does not verify",
            h.id, h.slot
        ));
    }
    if !lottery::wins(&proof, *stake, rules.total_stake, rules.active_slot_coeff) {
        return Err(format!(
            "block {}: leader ticket {:.6} is not below its threshold {:.6}",
            h.id,
            lottery::ticket(&proof),
            lottery::threshold(*stake, rules.total_stake, rules.active_slot_coeff)
        ));
    }
    let ids: Vec<String> = block.transactions.iter().map(SignedTx::id).collect();
    let root = tx_root(&ids);
    if hex::encode(root) != h.tx_root {
        return Err(format!(
            "block {}: tx_root does not match its transactions",
            h.id
        ));
    }
    let parent =
        decode32(&h.parent).ok_or_else(|| format!("block {}: parent is not 32 hex bytes", h.id))?;
    let id = block_id(
        &parent,
        h.slot,
        h.height,
        leader_key.as_bytes(),
        &proof_raw,
        &root,
    );
    if hex::encode(id) != h.id {
        return Err(format!("block {}: id does not match its header", h.id));
    }
    let signature = decode64(&h.signature)
        .ok_or_else(|| format!("block {}: signature is not 64 hex bytes", h.id))?;
    leader_key
        .verify(&id, &Signature::from_bytes(&signature))
        .map_err(|_| format!("block {}: header signature does not verify", h.id))?;
    for (i, tx) in block.transactions.iter().enumerate() {
        tx.verify()
            .map_err(|e| format!("block {}: transaction {i} ({}): {e}", h.id, ids[i]))?;
    }
    Ok(ids)
}
