//! Bounded pool of transfers waiting for a block, ordered by nonce per sender
//! so a leader can take each sender's next transfers in order.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::crypto::SignedTx;
use crate::ledger::Ledger;

/// Why the pool refused a transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("mempool full: {capacity} transactions already waiting")]
    Full { capacity: usize },
    #[error("nonce {nonce} of sender {from} is already pending with another transaction")]
    Conflict { from: String, nonce: u64 },
}

/// What happened to an accepted transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    /// Already waiting: submitting twice is harmless.
    Duplicate,
}

/// The pool.
#[derive(Debug)]
pub struct Mempool {
    capacity: usize,
    by_sender: HashMap<String, BTreeMap<u64, (String, SignedTx)>>,
    ids: HashSet<String>,
}

impl Mempool {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            by_sender: HashMap::new(),
            ids: HashSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Adds a transfer whose signature and nonce were already checked.
    pub fn insert(&mut self, id: String, tx: SignedTx) -> Result<Added, MempoolError> {
        if self.ids.contains(&id) {
            return Ok(Added::Duplicate);
        }
        if let Some((other, _)) = self.by_sender.get(&tx.from).and_then(|m| m.get(&tx.nonce)) {
            debug_assert_ne!(other, &id);
            return Err(MempoolError::Conflict {
                from: tx.from.clone(),
                nonce: tx.nonce,
            });
        }
        if self.ids.len() >= self.capacity {
            return Err(MempoolError::Full {
                capacity: self.capacity,
            });
        }
        self.ids.insert(id.clone());
        self.by_sender
            .entry(tx.from.clone())
            .or_default()
            .insert(tx.nonce, (id, tx));
        Ok(Added::New)
    }

    /// Picks at most `max` transfers valid on top of `ledger`: for each
    /// sender, the run of consecutive nonces starting at its next nonce that
    /// its balance covers (incoming transfers in the same block are not
    /// counted, so the selection is always valid).
    pub fn select(&self, ledger: &Ledger, max: usize) -> Vec<SignedTx> {
        let mut out = Vec::new();
        for (from, pending) in &self.by_sender {
            if out.len() >= max {
                break;
            }
            let account = ledger.account(from);
            let mut balance = account.balance;
            let run = (account.nonce..).zip(pending.range(account.nonce..));
            for (next, (nonce, (_, tx))) in run {
                if *nonce != next || tx.amount > balance || out.len() >= max {
                    break;
                }
                balance -= tx.amount;
                out.push(tx.clone());
            }
        }
        out
    }

    /// Up to `max` waiting transfers, each sender's in nonce order (pushed
    /// to a newly connected peer, so transfers survive lost gossip across a
    /// reconnect).
    pub fn sample(&self, max: usize) -> Vec<SignedTx> {
        self.by_sender
            .values()
            .flat_map(|pending| pending.values().map(|(_, tx)| tx.clone()))
            .take(max)
            .collect()
    }

    /// The sender's next free nonce from `start` (its ledger nonce): `start`
    /// plus its run of consecutive pending transfers, and what that run
    /// spends.
    pub fn next_nonce(&self, from: &str, start: u64) -> (u64, u64) {
        let mut next = start;
        let mut spent = 0u64;
        if let Some(pending) = self.by_sender.get(from) {
            for (nonce, (_, tx)) in pending.range(start..) {
                if *nonce != next {
                    break;
                }
                spent = spent.saturating_add(tx.amount);
                next += 1;
            }
        }
        (next, spent)
    }

    /// Removes transfers that can never apply again on top of `ledger`
    /// (their nonce is used) for the given senders.
    pub fn prune<'a>(&mut self, ledger: &Ledger, senders: impl IntoIterator<Item = &'a str>) {
        for from in senders {
            let next = ledger.account(from).nonce;
            let Some(pending) = self.by_sender.get_mut(from) else {
                continue;
            };
            let keep = pending.split_off(&next);
            for (_, (id, _)) in std::mem::replace(pending, keep) {
                self.ids.remove(&id);
            }
            if pending.is_empty() {
                self.by_sender.remove(from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::config::{Genesis, GenesisAccount};
    use crate::crypto::{derive_secret, public_hex};

    #[test]
    fn selects_consecutive_nonces_and_prunes_used_ones() {
        let a = SigningKey::from_bytes(&derive_secret("a"));
        let to = public_hex(&SigningKey::from_bytes(&derive_secret("b")));
        let mut ledger = Ledger::from_genesis(&Genesis {
            time_ms: 0,
            epoch_nonce: String::new(),
            accounts: vec![GenesisAccount {
                public_key: public_hex(&a),
                balance: 10,
            }],
            leaders: vec![],
        });
        let mut pool = Mempool::new(3);
        for nonce in [0, 1, 3] {
            let tx = SignedTx::sign(&a, &to, 4, nonce);
            assert_eq!(pool.insert(tx.id(), tx), Ok(Added::New));
        }
        let dup = SignedTx::sign(&a, &to, 4, 0);
        assert_eq!(pool.insert(dup.id(), dup), Ok(Added::Duplicate));
        let conflict = SignedTx::sign(&a, &to, 5, 0);
        assert!(matches!(
            pool.insert(conflict.id(), conflict),
            Err(MempoolError::Conflict { nonce: 0, .. })
        ));
        let extra = SignedTx::sign(&a, &to, 1, 7);
        assert_eq!(
            pool.insert(extra.id(), extra),
            Err(MempoolError::Full { capacity: 3 })
        );

        let picked = pool.select(&ledger, 10);
        assert_eq!(picked.iter().map(|t| t.nonce).collect::<Vec<_>>(), [0, 1]);
        ledger.apply_all(&picked).unwrap();
        pool.prune(&ledger, [public_hex(&a).as_str()]);
        assert_eq!(pool.len(), 1, "nonce 3 still waits for nonce 2");
        assert!(pool.select(&ledger, 10).is_empty());
    }
}
