//! What workloads and expectations see of a run: node clients, the block
//! feed, funded wallets, the clock, seeded randomness and the event sink.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

use crate::blockfeed::BlockFeed;
use crate::client::NodeClients;
use crate::deploy::Testnet;
use crate::report::{EventSink, RunEvent};
use crate::wallet::WalletBook;

/// A funded genesis account.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub index: usize,
    pub key: SigningKey,
    /// Public key, 64 hex.
    pub public: String,
}

/// One submitted transaction.
#[derive(Debug, Clone)]
pub struct TxRecord {
    pub id: String,
    /// Since the run started.
    pub submitted_at: Duration,
    /// Wall clock at acceptance, ms since the Unix epoch (for inclusion latency).
    pub submitted_unix_ms: u64,
    /// Node that accepted it.
    pub node: usize,
    /// Public key of the sender, where known (a client-signed transfer or a wallet transfer).
    pub sender: Option<String>,
    /// Who submitted it: `transactions` (the built-in workload) or `script`.
    pub source: TxSource,
}

/// Who submitted a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxSource {
    /// The built-in transaction workload.
    Workload,
    /// A script (`node.submit_transaction`, `node.submit_raw`, `node.transfer_funds`).
    Script,
}

impl TxSource {
    /// `transactions` or `script`.
    pub fn as_str(self) -> &'static str {
        match self {
            TxSource::Workload => "transactions",
            TxSource::Script => "script",
        }
    }
}

/// Every transaction the workloads submitted, for TxInclusion.
#[derive(Debug, Default)]
pub struct TxLog {
    records: Mutex<Vec<TxRecord>>,
    rejected: AtomicU64,
}

impl TxLog {
    /// Records an accepted submission.
    pub fn record(&self, rec: TxRecord) {
        self.records.lock().expect("tx log lock").push(rec);
    }

    /// Counts a submission that no node accepted.
    pub fn record_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Accepted submissions so far.
    pub fn submitted(&self) -> u64 {
        self.records.lock().expect("tx log lock").len() as u64
    }

    /// Submissions no node accepted.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// A copy of every record.
    pub fn records(&self) -> Vec<TxRecord> {
        self.records.lock().expect("tx log lock").clone()
    }
}

struct Inner {
    testnet: Arc<dyn Testnet>,
    feed: BlockFeed,
    wallets: WalletBook,
    start: Mutex<Instant>,
    seed: u64,
    tx_log: Arc<TxLog>,
    events: EventSink,
    run_duration: Duration,
    /// First early failure (source, message), set by `fail_run`.
    failure: Mutex<Option<(String, String)>>,
    failed_at: Mutex<Option<Duration>>,
    aborted: CancellationToken,
    run_over: CancellationToken,
    /// Where the run's metrics are (the environment's, or the plan's).
    monitoring: Mutex<crate::metrics::Monitoring>,
    recovery: Arc<crate::recovery::RecoveryLog>,
}

/// Handle to a running scenario. Cheap to clone.
#[derive(Clone)]
pub struct RunContext {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("run_id", &self.inner.testnet.run_id())
            .field("seed", &self.inner.seed)
            .finish_non_exhaustive()
    }
}

impl RunContext {
    /// A context over a deployed testnet.
    pub fn new(
        testnet: Arc<dyn Testnet>,
        feed: BlockFeed,
        seed: u64,
        run_duration: Duration,
        events: EventSink,
    ) -> Self {
        let wallets = WalletBook::from_topology(testnet.topology());
        Self {
            inner: Arc::new(Inner {
                testnet,
                feed,
                wallets,
                start: Mutex::new(Instant::now()),
                seed,
                tx_log: Arc::new(TxLog::default()),
                events,
                run_duration,
                failure: Mutex::new(None),
                failed_at: Mutex::new(None),
                aborted: CancellationToken::new(),
                run_over: CancellationToken::new(),
                monitoring: Mutex::new(crate::metrics::Monitoring::from_env()),
                recovery: Arc::default(),
            }),
        }
    }

    /// Where the run's metrics and dashboards are.
    pub fn monitoring(&self) -> crate::metrics::Monitoring {
        self.inner
            .monitoring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the plan's monitoring URLs over the environment's (the runner does, for each plan).
    pub fn set_monitoring(&self, plan: &crate::metrics::Monitoring) {
        let m = crate::metrics::Monitoring::from_env().overridden_by(plan);
        *self
            .inner
            .monitoring
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = m;
    }

    /// Restarts the run clock (the runner calls it when workloads start).
    pub fn mark_start(&self) {
        *self.inner.start.lock().expect("start lock") = Instant::now();
    }

    /// Clients of every node (current snapshot).
    pub fn clients(&self) -> NodeClients {
        self.inner.testnet.clients()
    }

    /// The shared block feed.
    pub fn block_feed(&self) -> &BlockFeed {
        &self.inner.feed
    }

    /// The funded wallets of the topology.
    pub fn wallets(&self) -> &[Wallet] {
        self.inner.wallets.wallets()
    }

    /// The funded wallets with the nonces used so far (shared by every script closure).
    pub fn wallet_book(&self) -> &WalletBook {
        &self.inner.wallets
    }

    /// Time since the workloads started.
    pub fn elapsed(&self) -> Duration {
        self.inner.start.lock().expect("start lock").elapsed()
    }

    /// The planned run duration.
    pub fn run_duration(&self) -> Duration {
        self.inner.run_duration
    }

    /// The run seed.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// A random generator from the run seed and a label: the same seed and
    /// label replay the same choices, different labels are independent.
    pub fn rng(&self, label: &str) -> ChaCha8Rng {
        let h = devnode::crypto::hash(&[&self.inner.seed.to_le_bytes(), label.as_bytes()]);
        ChaCha8Rng::from_seed(h)
    }

    /// The testnet (node control, faults).
    pub fn testnet(&self) -> Arc<dyn Testnet> {
        self.inner.testnet.clone()
    }

    /// Submitted transactions.
    pub fn tx_log(&self) -> &Arc<TxLog> {
        &self.inner.tx_log
    }

    /// Sends an event to the run's reporters.
    pub fn emit(&self, event: RunEvent) {
        self.inner.events.emit(event);
    }

    /// Fails the run now (a continuous invariant broke, say): the runner stops
    /// the workloads, skips cooldown and evaluation, and reports this failure
    /// as a failed verdict named `source`. The first call wins.
    pub fn fail_run(&self, source: impl Into<String>, message: impl Into<String>) {
        let mut f = self.inner.failure.lock().expect("failure lock");
        if f.is_none() {
            *f = Some((source.into(), message.into()));
            *self.inner.failed_at.lock().expect("failure lock") = Some(self.elapsed());
            self.inner.aborted.cancel();
        }
    }

    /// When `fail_run` was first called, after the run started.
    pub fn failed_at(&self) -> Option<Duration> {
        *self.inner.failed_at.lock().expect("failure lock")
    }

    /// The early failure, if `fail_run` was called.
    pub fn failure(&self) -> Option<(String, String)> {
        self.inner.failure.lock().expect("failure lock").clone()
    }

    /// Cancelled by `fail_run`.
    pub fn aborted(&self) -> CancellationToken {
        self.inner.aborted.clone()
    }

    /// Cancelled by the runner when the run's phases are over (so checkers
    /// spawned at capture stop even when evaluation is skipped).
    pub fn run_over(&self) -> CancellationToken {
        self.inner.run_over.clone()
    }

    /// What the runner's recovery monitor measured so far (reverts to convergence, restarts to
    /// catch-up).
    pub fn recovery(&self) -> &Arc<crate::recovery::RecoveryLog> {
        &self.inner.recovery
    }

    /// The event sink (for components that emit on their own).
    pub fn events(&self) -> &EventSink {
        &self.inner.events
    }
}
