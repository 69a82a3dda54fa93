//! The funded wallets of a testnet and the nonces the framework has used for them, so that
//! scripts sign transfers as the transaction workload does (`w.transfer(to, amount)`). Keys
//! derive from the topology's seed (`nodekind::wallet_key`); funded wallet `w` belongs to node
//! `w % n`. A wallet's next nonce is read once from a node's ledger (the reference node's
//! testing surface), then counted here, so consecutive transfers need no node call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devnode::crypto::SignedTx;

use crate::client::NodeClients;
use crate::context::Wallet;
use crate::topology::Topology;

/// Why a transfer could not be signed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignError {
    /// No funded wallet with this index.
    #[error("wallet {index} does not exist: the testnet has {count} funded wallets (0..{count})")]
    NoSuchWallet { index: usize, count: usize },
    /// The recipient is not an ed25519 public key in hex.
    #[error("to = {to:?} is not a public key: {reason}")]
    BadRecipient { to: String, reason: String },
    /// Nothing to transfer.
    #[error("amount = {0} must be above 0")]
    ZeroAmount(u64),
}

/// The funded wallets and their nonces. Cheap to clone; clones share the nonces.
#[derive(Debug, Clone)]
pub struct WalletBook {
    inner: Arc<BookInner>,
}

#[derive(Debug)]
struct BookInner {
    wallets: Vec<Wallet>,
    owners: Vec<usize>,
    /// wallet index -> next nonce to use.
    next: Mutex<HashMap<usize, u64>>,
}

impl WalletBook {
    /// The funded wallets of `topology`.
    pub fn from_topology(topology: &Topology) -> Self {
        let wallets: Vec<Wallet> = (0..topology.wallets)
            .map(|w| {
                let key = crate::nodekind::wallet_key(topology.seed, w);
                Wallet {
                    index: w,
                    public: devnode::crypto::public_hex(&key),
                    key,
                }
            })
            .collect();
        let owners = (0..wallets.len())
            .map(|w| crate::nodekind::wallet_owner(topology, w))
            .collect();
        Self {
            inner: Arc::new(BookInner {
                wallets,
                owners,
                next: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// No wallets.
    pub fn empty() -> Self {
        Self {
            inner: Arc::new(BookInner {
                wallets: Vec::new(),
                owners: Vec::new(),
                next: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Every funded wallet, by index.
    pub fn wallets(&self) -> &[Wallet] {
        &self.inner.wallets
    }

    /// The node whose wallet knows wallet `w`'s key (`w % n`).
    pub fn owner(&self, w: usize) -> Option<usize> {
        self.inner.owners.get(w).copied()
    }

    /// The wallet with this index.
    pub fn get(&self, w: usize) -> Result<&Wallet, SignError> {
        self.inner.wallets.get(w).ok_or(SignError::NoSuchWallet {
            index: w,
            count: self.inner.wallets.len(),
        })
    }

    /// The next nonce the book would use for wallet `w`, if it has counted one.
    pub fn next_nonce(&self, w: usize) -> Option<u64> {
        self.lock().get(&w).copied()
    }

    /// Sets the next nonce of wallet `w` (after a refusal, say).
    pub fn set_next_nonce(&self, w: usize, nonce: u64) {
        self.lock().insert(w, nonce);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, u64>> {
        self.inner.next.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Signs a transfer of `amount` from wallet `w` to `to` with `nonce`, or with the wallet's
    /// next nonce: counted here, first read from a node's ledger (its owner first; 0 when no
    /// node has a testing surface to read it from). An explicit nonce moves the count past it.
    pub async fn transfer(
        &self,
        clients: &NodeClients,
        w: usize,
        to: &str,
        amount: u64,
        nonce: Option<u64>,
    ) -> Result<SignedTx, SignError> {
        let wallet = self.get(w)?.clone();
        devnode::crypto::verifying_key_from_hex(to).map_err(|e| SignError::BadRecipient {
            to: to.chars().take(80).collect(),
            reason: e.to_string(),
        })?;
        if amount == 0 {
            return Err(SignError::ZeroAmount(amount));
        }
        let nonce = match nonce {
            Some(n) => {
                let mut next = self.lock();
                let e = next.entry(w).or_insert(0);
                *e = (*e).max(n.saturating_add(1));
                n
            }
            None => {
                if self.next_nonce(w).is_none() {
                    let start = self.ledger_nonce(clients, w, &wallet.public).await;
                    self.lock().entry(w).or_insert(start);
                }
                let mut next = self.lock();
                let e = next.entry(w).or_insert(0);
                let n = *e;
                *e += 1;
                n
            }
        };
        Ok(SignedTx::sign(&wallet.key, to, amount, nonce))
    }

    /// The wallet's nonce on a node's ledger, its owner asked first; 0 when no node answers.
    async fn ledger_nonce(&self, clients: &NodeClients, w: usize, public: &str) -> u64 {
        let n = clients.len();
        let first = self.owner(w).unwrap_or(0);
        for k in 0..n {
            let Some(c) = clients.get((first + k) % n) else {
                continue;
            };
            if c.testing_url().is_none() {
                continue;
            }
            if let Ok(a) = c
                .clone()
                .with_timeout(Duration::from_secs(2))
                .account(public)
                .await
            {
                return a.nonce;
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nonces_count_up_and_an_explicit_one_moves_the_count() {
        let topo = crate::topology::TopologyBuilder::new()
            .nodes(2)
            .wallets(3)
            .build()
            .expect("topology");
        let book = WalletBook::from_topology(&topo);
        let to = book.wallets()[1].public.clone();
        let none = NodeClients::default();
        let a = book.transfer(&none, 0, &to, 1, None).await.unwrap();
        let b = book.transfer(&none, 0, &to, 1, None).await.unwrap();
        assert_eq!((a.nonce, b.nonce), (0, 1));
        assert!(a.verify().is_ok());
        let c = book.transfer(&none, 0, &to, 1, Some(7)).await.unwrap();
        assert_eq!(c.nonce, 7);
        assert_eq!(book.next_nonce(0), Some(8));
        assert_eq!(book.owner(1), Some(1));
        let e = book.transfer(&none, 9, &to, 1, None).await.unwrap_err();
        assert!(e.to_string().contains("0..3"), "{e}");
        let e = book.transfer(&none, 0, "zz", 1, None).await.unwrap_err();
        assert!(e.to_string().contains("not a public key"), "{e}");
        let e = book.transfer(&none, 0, &to, 0, None).await.unwrap_err();
        assert!(e.to_string().contains("above 0"), "{e}");
    }
}
