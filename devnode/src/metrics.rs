//! Prometheus text metrics. Counters live here; gauges are read from the
//! node's state when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The node's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub blocks_produced: AtomicU64,
    pub blocks_received: AtomicU64,
    pub reorgs: AtomicU64,
    pub transactions_included: AtomicU64,
    /// Leader-slot pairs for which a second, different valid block arrived.
    pub equivocations_seen: AtomicU64,
    /// Second blocks of an equivocation this node made its tip by the tie-break (only with
    /// `testing.accept_equivocations`).
    pub equivocations_accepted: AtomicU64,
    /// Slots this node equivocated for (`testing.byzantine.equivocate`).
    pub equivocations_made: AtomicU64,
    /// Gossiped transactions whose signature or keys did not verify.
    pub invalid_transactions_received: AtomicU64,
    /// Invalid transactions this node gossiped (`testing.byzantine.invalid_txs_per_slot`).
    pub invalid_transactions_sent: AtomicU64,
    api_requests: Mutex<BTreeMap<String, u64>>,
}

/// Values read at scrape time.
#[derive(Debug, Clone)]
pub struct Gauges {
    pub height: u64,
    pub slot: u64,
    pub lib_height: u64,
    pub peers: usize,
    pub mempool_size: usize,
    /// Own blocks being withheld from the peers.
    pub blocks_withheld: usize,
    /// The store's disk faults and what they did.
    pub disk: crate::storage::DiskStatus,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one API request by its route pattern (bounded cardinality).
    pub fn count_request(&self, path: &str) {
        let mut map = self.api_requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(path.to_owned()).or_default() += 1;
    }

    /// The Prometheus exposition text.
    pub fn render(&self, g: Gauges) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP logos_blockchain_{name} {help}");
            let _ = writeln!(out, "# TYPE logos_blockchain_{name} {kind}");
            let _ = writeln!(out, "logos_blockchain_{name} {value}");
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        metric("height", "gauge", "Height of the canonical tip.", g.height);
        metric("slot", "gauge", "Current wall-clock slot.", g.slot);
        metric(
            "lib_height",
            "gauge",
            "Height of the last irreversible block.",
            g.lib_height,
        );
        metric(
            "blocks_produced_total",
            "counter",
            "Blocks this node produced.",
            get(&self.blocks_produced),
        );
        metric(
            "blocks_received_total",
            "counter",
            "Valid blocks received from peers.",
            get(&self.blocks_received),
        );
        metric(
            "reorgs_total",
            "counter",
            "Canonical chain switches.",
            get(&self.reorgs),
        );
        metric("peers", "gauge", "Handshaken peers.", g.peers as u64);
        metric(
            "mempool_size",
            "gauge",
            "Transactions waiting.",
            g.mempool_size as u64,
        );
        metric(
            "transactions_included_total",
            "counter",
            "Transactions in blocks that became canonical.",
            get(&self.transactions_included),
        );
        metric(
            "equivocations_seen_total",
            "counter",
            "Leader-slot pairs for which a second, different valid block arrived.",
            get(&self.equivocations_seen),
        );
        metric(
            "equivocations_accepted_total",
            "counter",
            "Second blocks of an equivocation adopted as tip by the tie-break.",
            get(&self.equivocations_accepted),
        );
        metric(
            "equivocations_made_total",
            "counter",
            "Slots this node equivocated for (testing.byzantine).",
            get(&self.equivocations_made),
        );
        metric(
            "invalid_transactions_received_total",
            "counter",
            "Gossiped transactions whose signature or keys did not verify.",
            get(&self.invalid_transactions_received),
        );
        metric(
            "invalid_transactions_sent_total",
            "counter",
            "Invalid transactions this node gossiped (testing.byzantine).",
            get(&self.invalid_transactions_sent),
        );
        metric(
            "blocks_withheld",
            "gauge",
            "Own blocks being withheld from the peers (testing.byzantine).",
            g.blocks_withheld as u64,
        );
        metric(
            "disk_full",
            "gauge",
            "1 while the store's writes fail for want of space (the node neither follows nor produces).",
            u64::from(g.disk.faults.full),
        );
        metric(
            "store_write_failures_total",
            "counter",
            "Block writes the store refused (disk full).",
            g.disk.write_failures,
        );
        metric(
            "store_pending_blocks",
            "gauge",
            "Block writes not yet durable (a kill loses them).",
            g.disk.pending_blocks as u64,
        );
        let _ = writeln!(
            out,
            "# HELP logos_blockchain_api_requests_total HTTP API requests by route."
        );
        let _ = writeln!(out, "# TYPE logos_blockchain_api_requests_total counter");
        let map = self.api_requests.lock().unwrap_or_else(|e| e.into_inner());
        for (path, n) in map.iter() {
            let _ = writeln!(
                out,
                "logos_blockchain_api_requests_total{{path=\"{path}\"}} {n}"
            );
        }
        out
    }
}
