//! Account balances and nonces. Transfers are reversible (undo is the exact
//! inverse of apply), which lets the chain move its single tip ledger across a
//! fork instead of keeping a ledger per block.

use std::collections::HashMap;

use crate::config::Genesis;
use crate::crypto::SignedTx;

/// One account's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    pub balance: u64,
    /// The nonce the account's next transfer must carry.
    pub nonce: u64,
}

/// Why a transfer does not apply to a ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("nonce too low: sender {from} expects nonce {expected}, got {got}")]
    NonceTooLow {
        from: String,
        expected: u64,
        got: u64,
    },
    #[error("nonce gap: sender {from} expects nonce {expected}, got {got}")]
    NonceGap {
        from: String,
        expected: u64,
        got: u64,
    },
    #[error("insufficient balance: sender {from} has {balance}, transfer needs {amount}")]
    InsufficientBalance {
        from: String,
        balance: u64,
        amount: u64,
    },
    #[error("balance overflow: recipient {to} would exceed u64::MAX")]
    Overflow { to: String },
}

/// Balances and nonces of every account that ever held funds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    accounts: HashMap<String, Account>,
}

impl Ledger {
    /// The ledger at genesis (duplicate accounts add up).
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let mut ledger = Self::default();
        for acc in &genesis.accounts {
            let entry = ledger.accounts.entry(acc.public_key.clone()).or_default();
            entry.balance = entry.balance.saturating_add(acc.balance);
        }
        ledger
    }

    /// State of an account (zero when unknown).
    pub fn account(&self, key: &str) -> Account {
        self.accounts.get(key).copied().unwrap_or_default()
    }

    /// Checks that `tx` applies next (signature is checked elsewhere: it does
    /// not depend on the ledger).
    pub fn check(&self, tx: &SignedTx) -> Result<(), TxError> {
        let from = self.account(&tx.from);
        if tx.nonce < from.nonce {
            return Err(TxError::NonceTooLow {
                from: tx.from.clone(),
                expected: from.nonce,
                got: tx.nonce,
            });
        }
        if tx.nonce > from.nonce {
            return Err(TxError::NonceGap {
                from: tx.from.clone(),
                expected: from.nonce,
                got: tx.nonce,
            });
        }
        if from.balance < tx.amount {
            return Err(TxError::InsufficientBalance {
                from: tx.from.clone(),
                balance: from.balance,
                amount: tx.amount,
            });
        }
        if tx.from != tx.to
            && self
                .account(&tx.to)
                .balance
                .checked_add(tx.amount)
                .is_none()
        {
            return Err(TxError::Overflow { to: tx.to.clone() });
        }
        Ok(())
    }

    /// Applies `tx` if it is valid next.
    pub fn apply(&mut self, tx: &SignedTx) -> Result<(), TxError> {
        self.check(tx)?;
        let from = self.accounts.entry(tx.from.clone()).or_default();
        from.balance -= tx.amount;
        from.nonce += 1;
        let to = self.accounts.entry(tx.to.clone()).or_default();
        to.balance += tx.amount;
        Ok(())
    }

    /// Reverts `tx`, which must be the last applied transfer of its sender.
    pub fn undo(&mut self, tx: &SignedTx) {
        let to = self.accounts.entry(tx.to.clone()).or_default();
        to.balance = to.balance.saturating_sub(tx.amount);
        let from = self.accounts.entry(tx.from.clone()).or_default();
        from.balance = from.balance.saturating_add(tx.amount);
        from.nonce = from.nonce.saturating_sub(1);
        // Keep the map canonical: an account back at zero is as if unknown.
        for key in [&tx.to, &tx.from] {
            if self.accounts.get(key) == Some(&Account::default()) {
                self.accounts.remove(key);
            }
        }
    }

    /// Applies transfers in order; on the first invalid one, reverts the
    /// ones already applied and names the failing index.
    pub fn apply_all(&mut self, txs: &[SignedTx]) -> Result<(), (usize, TxError)> {
        for (i, tx) in txs.iter().enumerate() {
            if let Err(e) = self.apply(tx) {
                for done in txs[..i].iter().rev() {
                    self.undo(done);
                }
                return Err((i, e));
            }
        }
        Ok(())
    }

    /// Reverts transfers applied with `apply_all`.
    pub fn undo_all(&mut self, txs: &[SignedTx]) {
        for tx in txs.iter().rev() {
            self.undo(tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::config::GenesisAccount;
    use crate::crypto::{derive_secret, public_hex};

    fn key(label: &str) -> SigningKey {
        SigningKey::from_bytes(&derive_secret(label))
    }

    fn genesis(accounts: &[(&SigningKey, u64)]) -> Genesis {
        Genesis {
            time_ms: 0,
            epoch_nonce: "00".repeat(32),
            accounts: accounts
                .iter()
                .map(|(k, b)| GenesisAccount {
                    public_key: public_hex(k),
                    balance: *b,
                })
                .collect(),
            leaders: vec![],
        }
    }

    #[test]
    fn transfers_need_the_next_nonce_and_enough_balance() {
        let (a, b) = (key("a"), key("b"));
        let mut ledger = Ledger::from_genesis(&genesis(&[(&a, 100)]));
        let to = public_hex(&b);

        let tx0 = SignedTx::sign(&a, &to, 60, 0);
        ledger.apply(&tx0).unwrap();
        assert_eq!(
            ledger.account(&to),
            Account {
                balance: 60,
                nonce: 0
            }
        );

        let replay = ledger.apply(&tx0).unwrap_err();
        assert!(matches!(
            replay,
            TxError::NonceTooLow {
                expected: 1,
                got: 0,
                ..
            }
        ));
        assert!(replay.to_string().starts_with("nonce too low"));

        let gap = ledger.apply(&SignedTx::sign(&a, &to, 1, 5)).unwrap_err();
        assert!(matches!(
            gap,
            TxError::NonceGap {
                expected: 1,
                got: 5,
                ..
            }
        ));

        let poor = ledger.apply(&SignedTx::sign(&a, &to, 41, 1)).unwrap_err();
        assert_eq!(
            poor,
            TxError::InsufficientBalance {
                from: public_hex(&a),
                balance: 40,
                amount: 41
            }
        );
        ledger.apply(&SignedTx::sign(&a, &to, 40, 1)).unwrap();
        assert_eq!(
            ledger.account(&public_hex(&a)),
            Account {
                balance: 0,
                nonce: 2
            }
        );
    }

    #[test]
    fn apply_all_is_atomic_and_undo_restores() {
        let (a, b) = (key("a"), key("b"));
        let to = public_hex(&b);
        let start = Ledger::from_genesis(&genesis(&[(&a, 10)]));
        let mut ledger = start.clone();
        let txs = vec![
            SignedTx::sign(&a, &to, 5, 0),
            SignedTx::sign(&a, &to, 5, 1),
            SignedTx::sign(&a, &to, 5, 2),
        ];
        let (index, _) = ledger.apply_all(&txs).unwrap_err();
        assert_eq!(index, 2);
        assert_eq!(ledger, start, "a failed block leaves the ledger untouched");
        ledger.apply_all(&txs[..2]).unwrap();
        ledger.undo_all(&txs[..2]);
        assert_eq!(
            ledger.account(&public_hex(&a)),
            start.account(&public_hex(&a))
        );
        assert_eq!(ledger.account(&to).balance, 0);
    }
}
