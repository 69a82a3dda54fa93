//! The block tree: every valid block the node knows, the canonical chain
//! (longest, ties broken by the smaller tip id), the ledger at its tip, and
//! the LIB rule (no switch to a branch forking below tip height - k).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::ledger::Ledger;
use crate::types::Block;

/// A stored block and its transaction ids.
#[derive(Debug)]
pub struct Entry {
    pub block: Block,
    pub tx_ids: Vec<String>,
}

impl Entry {
    pub fn id(&self) -> &str {
        &self.block.header.id
    }

    pub fn height(&self) -> u64 {
        self.block.header.height
    }
}

/// What importing a valid block did to the canonical chain.
#[derive(Debug)]
pub enum Adopted {
    /// The block extends the tip.
    Extended(Arc<Entry>),
    /// The block's branch became canonical.
    Reorg {
        old_tip: String,
        fork_point: String,
        fork_height: u64,
        /// Blocks that left the canonical chain, oldest first.
        abandoned: Vec<Arc<Entry>>,
        /// Blocks that joined it, oldest first (the new block last).
        adopted: Vec<Arc<Entry>>,
    },
    /// Stored on a side branch that is not (yet) better than the tip.
    SideBranch(Arc<Entry>),
}

/// Why a block was not imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("block already known")]
    Known,
    #[error("parent {0} is unknown")]
    UnknownParent(String),
    #[error("{0}")]
    Invalid(String),
    #[error("branch forks at height {fork_height}, below the lib at height {lib_height}")]
    BelowLib { fork_height: u64, lib_height: u64 },
}

/// Whether a tip `(height, id)` is preferred over another: higher wins,
/// equal heights go to the lexicographically smaller id, so every honest
/// node picks the same tip from the same blocks.
pub fn is_better(height: u64, id: &str, than_height: u64, than_id: &str) -> bool {
    height > than_height || (height == than_height && id < than_id)
}

/// The block tree and canonical chain.
#[derive(Debug)]
pub struct Chain {
    blocks: HashMap<String, Arc<Entry>>,
    /// Canonical block ids by height (index 0 is genesis).
    canonical: Vec<String>,
    /// Ledger after the canonical tip.
    ledger: Ledger,
    k: u64,
}

impl Chain {
    pub fn new(genesis: Block, genesis_ledger: Ledger, security_param: u64) -> Self {
        let id = genesis.header.id.clone();
        let entry = Arc::new(Entry {
            block: genesis,
            tx_ids: vec![],
        });
        Self {
            blocks: HashMap::from([(id.clone(), entry)]),
            canonical: vec![id],
            ledger: genesis_ledger,
            k: security_param,
        }
    }

    pub fn tip(&self) -> &Arc<Entry> {
        &self.blocks[self.canonical.last().expect("genesis is always canonical")]
    }

    pub fn height(&self) -> u64 {
        self.canonical.len() as u64 - 1
    }

    pub fn lib_height(&self) -> u64 {
        self.height().saturating_sub(self.k)
    }

    pub fn lib(&self) -> &Arc<Entry> {
        &self.blocks[&self.canonical[self.lib_height() as usize]]
    }

    pub fn genesis(&self) -> &Arc<Entry> {
        &self.blocks[&self.canonical[0]]
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Entry>> {
        self.blocks.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.blocks.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn canonical_at(&self, height: u64) -> Option<&Arc<Entry>> {
        self.canonical
            .get(usize::try_from(height).ok()?)
            .map(|id| &self.blocks[id])
    }

    pub fn is_canonical(&self, id: &str, height: u64) -> bool {
        self.canonical.get(height as usize).is_some_and(|c| c == id)
    }

    /// Ledger at the tip.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Canonical ids at exponentially spaced heights from the tip down to
    /// genesis, so a peer can find our highest shared block in one step.
    pub fn locator(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut h = self.height();
        let mut step = 1;
        loop {
            out.push(self.canonical[h as usize].clone());
            if h == 0 {
                break;
            }
            if out.len() > 8 {
                step *= 2;
            }
            h = h.saturating_sub(step);
        }
        out
    }

    /// The blocks after the highest ancestor of `tip` that is in `known`,
    /// oldest first, at most `max_blocks` and about `max_bytes`; the flag
    /// says whether more remain. `None` when `tip` is unknown.
    pub fn blocks_after(
        &self,
        tip: &str,
        known: &HashSet<String>,
        max_blocks: usize,
        max_bytes: usize,
    ) -> Option<(Vec<Block>, bool)> {
        let mut path = Vec::new();
        let mut cur = self.get(tip)?;
        while cur.height() > 0 && !known.contains(cur.id()) {
            path.push(cur.clone());
            match self.get(&cur.block.header.parent) {
                Some(parent) => cur = parent,
                None => break,
            }
        }
        path.reverse();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for entry in &path {
            let size = 600 + 400 * entry.block.transactions.len();
            if out.len() >= max_blocks || (!out.is_empty() && bytes + size > max_bytes) {
                break;
            }
            bytes += size;
            out.push(entry.block.clone());
        }
        let more = out.len() < path.len();
        Some((out, more))
    }

    /// Imports a block whose standalone checks passed. `max_slot` bounds
    /// the slot (current slot + tolerance); `check_lib` is off only when
    /// reloading the node's own store.
    pub fn import(
        &mut self,
        block: Block,
        tx_ids: Vec<String>,
        max_slot: Option<u64>,
        check_lib: bool,
    ) -> Result<Adopted, ImportError> {
        self.import_with(block, tx_ids, max_slot, check_lib, true)
    }

    /// [`Chain::import`]; with `ties_win` false the block's branch becomes canonical only when
    /// it is strictly longer than the tip, never by the tie-break (the rule for the second
    /// block of an equivocation).
    pub fn import_with(
        &mut self,
        block: Block,
        tx_ids: Vec<String>,
        max_slot: Option<u64>,
        check_lib: bool,
        ties_win: bool,
    ) -> Result<Adopted, ImportError> {
        let h = &block.header;
        if self.contains(&h.id) {
            return Err(ImportError::Known);
        }
        let parent = self
            .get(&h.parent)
            .ok_or_else(|| ImportError::UnknownParent(h.parent.clone()))?
            .clone();
        let ph = &parent.block.header;
        if h.height != ph.height + 1 {
            return Err(ImportError::Invalid(format!(
                "block {}: height {} is not parent height {} + 1",
                h.id, h.height, ph.height
            )));
        }
        if h.slot <= ph.slot {
            return Err(ImportError::Invalid(format!(
                "block {}: slot {} is not after parent slot {}",
                h.id, h.slot, ph.slot
            )));
        }
        if let Some(max) = max_slot
            && h.slot > max
        {
            return Err(ImportError::Invalid(format!(
                "block {}: slot {} is in the future (latest acceptable slot {max})",
                h.id, h.slot
            )));
        }
        let tip = self.tip().clone();
        if ph.id == tip.block.header.id {
            self.ledger
                .apply_all(&block.transactions)
                .map_err(|(i, e)| invalid_tx(&block, i, &e))?;
            let entry = Arc::new(Entry { block, tx_ids });
            self.canonical.push(entry.id().to_owned());
            self.blocks.insert(entry.id().to_owned(), entry.clone());
            return Ok(Adopted::Extended(entry));
        }

        // Walk back from the parent to the canonical chain.
        let mut branch = Vec::new();
        let mut cur = parent.clone();
        while !self.is_canonical(cur.id(), cur.height()) {
            branch.push(cur.clone());
            cur = self
                .get(&cur.block.header.parent)
                .expect("stored blocks have stored parents")
                .clone();
        }
        branch.reverse();
        let fork = cur;
        let fork_height = fork.height();
        if check_lib && fork_height < self.lib_height() {
            return Err(ImportError::BelowLib {
                fork_height,
                lib_height: self.lib_height(),
            });
        }
        let mut ledger = self.ledger.clone();
        for height in (fork_height + 1..=self.height()).rev() {
            ledger.undo_all(
                &self.blocks[&self.canonical[height as usize]]
                    .block
                    .transactions,
            );
        }
        for b in &branch {
            ledger
                .apply_all(&b.block.transactions)
                .map_err(|(i, e)| invalid_tx(&b.block, i, &e))?;
        }
        ledger
            .apply_all(&block.transactions)
            .map_err(|(i, e)| invalid_tx(&block, i, &e))?;
        let entry = Arc::new(Entry { block, tx_ids });
        self.blocks.insert(entry.id().to_owned(), entry.clone());
        let better = if ties_win {
            is_better(entry.height(), entry.id(), tip.height(), tip.id())
        } else {
            entry.height() > tip.height()
        };
        if !better {
            return Ok(Adopted::SideBranch(entry));
        }
        let abandoned: Vec<Arc<Entry>> = self.canonical[fork_height as usize + 1..]
            .iter()
            .map(|id| self.blocks[id].clone())
            .collect();
        self.canonical.truncate(fork_height as usize + 1);
        branch.push(entry);
        self.canonical
            .extend(branch.iter().map(|e| e.id().to_owned()));
        self.ledger = ledger;
        Ok(Adopted::Reorg {
            old_tip: tip.id().to_owned(),
            fork_point: fork.id().to_owned(),
            fork_height,
            abandoned,
            adopted: branch,
        })
    }
}

fn invalid_tx(block: &Block, index: usize, e: &crate::ledger::TxError) -> ImportError {
    ImportError::Invalid(format!(
        "block {}: transaction {index} does not apply: {e}",
        block.header.id
    ))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::config::{Genesis, GenesisAccount};
    use crate::crypto::{SignedTx, derive_secret, public_hex};
    use crate::types::BlockHeader;

    fn header(id: &str, parent: &str, height: u64, slot: u64) -> Block {
        Block {
            header: BlockHeader {
                id: id.into(),
                parent: parent.into(),
                slot,
                height,
                leader: String::new(),
                proof: String::new(),
                tx_root: String::new(),
                signature: String::new(),
            },
            transactions: vec![],
        }
    }

    fn chain(k: u64) -> Chain {
        Chain::new(header("g", "", 0, 0), Ledger::default(), k)
    }

    fn add(chain: &mut Chain, id: &str, parent: &str, height: u64) -> Result<Adopted, ImportError> {
        chain.import(header(id, parent, height, height), vec![], None, true)
    }

    #[test]
    fn equal_heights_prefer_the_smaller_tip_id() {
        assert!(is_better(2, "ff", 1, "00"));
        assert!(is_better(2, "aa", 2, "bb"));
        assert!(!is_better(2, "bb", 2, "aa"));
        assert!(!is_better(2, "aa", 2, "aa"));

        let mut c = chain(10);
        assert!(matches!(
            add(&mut c, "b1", "g", 1),
            Ok(Adopted::Extended(_))
        ));
        // A sibling with a larger id stays on the side, a smaller one wins.
        assert!(matches!(
            add(&mut c, "c1", "g", 1),
            Ok(Adopted::SideBranch(_))
        ));
        let Ok(Adopted::Reorg {
            old_tip,
            fork_height,
            abandoned,
            adopted,
            ..
        }) = add(&mut c, "a1", "g", 1)
        else {
            panic!("expected a reorg to the smaller id");
        };
        assert_eq!((old_tip.as_str(), fork_height), ("b1", 0));
        assert_eq!(abandoned.len(), 1);
        assert_eq!(adopted.len(), 1);
        assert_eq!(c.tip().id(), "a1");
        // The longer branch wins whatever its ids.
        assert!(matches!(
            add(&mut c, "z2", "c1", 2),
            Ok(Adopted::Reorg { .. })
        ));
        assert_eq!((c.tip().id(), c.height()), ("z2", 2));
        assert_eq!(add(&mut c, "z2", "c1", 2).unwrap_err(), ImportError::Known);
        assert!(matches!(
            add(&mut c, "q", "nope", 1),
            Err(ImportError::UnknownParent(_))
        ));
        assert!(matches!(
            add(&mut c, "q", "z2", 5),
            Err(ImportError::Invalid(_))
        ));
    }

    #[test]
    fn a_block_whose_ties_do_not_win_needs_a_longer_branch() {
        let mut c = chain(10);
        add(&mut c, "b1", "g", 1).unwrap();
        // a smaller id at the same height would win the tie-break, but not here
        assert!(matches!(
            c.import_with(header("a1", "g", 1, 1), vec![], None, true, false),
            Ok(Adopted::SideBranch(_))
        ));
        assert_eq!(c.tip().id(), "b1");
        // a child of it makes its branch longer: the node follows it
        assert!(matches!(
            add(&mut c, "a2", "a1", 2),
            Ok(Adopted::Reorg { .. })
        ));
        assert_eq!(c.tip().id(), "a2");
    }

    #[test]
    fn never_switches_to_a_branch_forking_below_the_lib() {
        let mut c = chain(2);
        let mut parent = "g".to_owned();
        for h in 1..=4 {
            let id = format!("m{h}");
            add(&mut c, &id, &parent, h).unwrap();
            parent = id;
        }
        assert_eq!(c.lib().id(), "m2");
        // A longer branch from m1 (below the lib at height 2) is refused.
        let err = add(&mut c, "s2", "m1", 2).unwrap_err();
        assert_eq!(
            err,
            ImportError::BelowLib {
                fork_height: 1,
                lib_height: 2
            }
        );
        // From m2 (the lib) it is fine.
        add(&mut c, "s3", "m2", 3).unwrap();
        add(&mut c, "s4", "s3", 4).unwrap();
        assert!(matches!(
            add(&mut c, "s5", "s4", 5),
            Ok(Adopted::Reorg { fork_height: 2, .. })
        ));
        assert_eq!(c.tip().id(), "s5");
    }

    #[test]
    fn a_reorg_moves_the_ledger_to_the_new_branch() {
        let a = SigningKey::from_bytes(&derive_secret("a"));
        let to = public_hex(&SigningKey::from_bytes(&derive_secret("b")));
        let genesis = Genesis {
            time_ms: 0,
            epoch_nonce: String::new(),
            accounts: vec![GenesisAccount {
                public_key: public_hex(&a),
                balance: 10,
            }],
            leaders: vec![],
        };
        let mut c = Chain::new(header("g", "", 0, 0), Ledger::from_genesis(&genesis), 5);
        let mut b1 = header("b1", "g", 1, 1);
        b1.transactions = vec![SignedTx::sign(&a, &to, 7, 0)];
        c.import(b1, vec![], None, true).unwrap();
        assert_eq!(c.ledger().account(&to).balance, 7);
        // A branch spending the same nonce differently is valid on its own.
        let mut a1 = header("a1", "g", 1, 2);
        a1.transactions = vec![SignedTx::sign(&a, &to, 3, 0)];
        assert!(matches!(
            c.import(a1, vec![], None, true),
            Ok(Adopted::Reorg { .. })
        ));
        assert_eq!(c.ledger().account(&to).balance, 3);
        // A block replaying a used nonce is invalid.
        let mut bad = header("x2", "a1", 2, 3);
        bad.transactions = vec![SignedTx::sign(&a, &to, 1, 0)];
        let err = c.import(bad, vec![], None, true).unwrap_err();
        assert!(err.to_string().contains("nonce too low"), "{err}");
    }
}
