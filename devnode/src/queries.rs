//! Read-only queries of the node's chain the API serves: balances at a past tip, canonical
//! blocks by slot range, header ids between two blocks.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::consensus::chain::Entry;
use crate::ledger::Ledger;
use crate::node::{MAX_HEADERS, Node};

impl Node {
    /// Balance of `public_key` at `tip` (default: the canonical tip);
    /// returns the tip used and the balance.
    pub fn balance_at(&self, public_key: &str, tip: Option<&str>) -> Result<(String, u64), String> {
        let st = self.state();
        let chain = &st.chain;
        let tip_id = tip.unwrap_or(chain.tip().id()).to_owned();
        if tip_id == chain.tip().id() {
            return Ok((tip_id, chain.ledger().account(public_key).balance));
        }
        let mut path = Vec::new();
        let mut cur = chain
            .get(&tip_id)
            .ok_or_else(|| format!("unknown block tip = {tip_id}"))?;
        while cur.height() > 0 {
            path.push(cur.clone());
            cur = chain
                .get(&cur.block.header.parent)
                .ok_or_else(|| format!("block {} has no known parent", cur.id()))?;
        }
        let mut ledger = Ledger::from_genesis(&self.config.genesis);
        for entry in path.iter().rev() {
            ledger
                .apply_all(&entry.block.transactions)
                .map_err(|(i, e)| format!("block {}: transaction {i}: {e}", entry.id()))?;
        }
        Ok((tip_id, ledger.account(public_key).balance))
    }

    /// Canonical blocks with a slot in `[from, to]`, oldest first, at most
    /// `max`.
    pub fn blocks_in_slots(&self, from: u64, to: u64, max: usize) -> Vec<Arc<Entry>> {
        let st = self.state();
        let chain = &st.chain;
        let slot_of = |h: u64| {
            chain
                .canonical_at(h)
                .map_or(u64::MAX, |e| e.block.header.slot)
        };
        // Slots grow with height along the canonical chain.
        let (mut lo, mut hi) = (0u64, chain.height() + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if slot_of(mid) < from {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        let mut h = lo;
        while out.len() < max {
            match chain.canonical_at(h) {
                Some(e) if e.block.header.slot <= to => out.push(e.clone()),
                _ => break,
            }
            h += 1;
        }
        out
    }

    /// Headers from `from` back to `to` (inclusive), at most [`MAX_HEADERS`].
    pub fn header_ids(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<String>, String> {
        let st = self.state();
        let chain = &st.chain;
        let start = match from {
            Some(id) => chain
                .get(id)
                .ok_or_else(|| format!("unknown block from = {id}"))?,
            None => chain.tip(),
        };
        let stop = match to {
            Some(id) => {
                chain
                    .get(id)
                    .ok_or_else(|| format!("unknown block to = {id}"))?;
                id.to_owned()
            }
            None => chain.lib().id().to_owned(),
        };
        let mut out = VecDeque::new();
        let mut cur = start;
        loop {
            out.push_back(cur.id().to_owned());
            if cur.id() == stop || cur.height() == 0 || out.len() >= MAX_HEADERS {
                break;
            }
            match chain.get(&cur.block.header.parent) {
                Some(p) => cur = p,
                None => break,
            }
        }
        Ok(out.into())
    }
}
