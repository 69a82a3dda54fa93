//! Workloads drive the testnet during the run: the built-in transaction
//! workload, and any user-defined [`Workload`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use devnode::crypto::SignedTx;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::context::{RunContext, TxRecord, TxSource};

/// Why a workload failed. Fails the run (exit 1).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct WorkloadError {
    pub message: String,
}

impl WorkloadError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Something that acts on the testnet for the run's duration. It must
/// return soon after `stop` fires.
pub trait Workload: Send + Sync {
    /// Name in reports and failure messages.
    fn name(&self) -> String;
    /// Drives the testnet until `stop` fires; an error fails the run.
    fn run(
        &self,
        ctx: RunContext,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), WorkloadError>>;
    /// Kinds of control and fault this workload will use, as known before the run (checked
    /// against the backend before deploying).
    fn uses(&self) -> Vec<crate::deploy::FaultKind> {
        Vec::new()
    }
    /// Partitions this workload will make, as known before the run: each with its groups (None:
    /// random groups) and its longest duration. Used to flag partitions that can fork the
    /// testnet for good ([`crate::forkrisk`]).
    fn planned_partitions(&self, _run: Duration) -> Vec<(Option<Vec<Vec<usize>>>, Duration)> {
        Vec::new()
    }
    /// Refuses a workload that cannot run on `topology` for `run` (a fault schedule naming a
    /// node the topology lacks), at build time rather than during the run.
    fn check_plan(
        &self,
        _topology: &crate::topology::Topology,
        _run: Duration,
    ) -> Result<(), String> {
        Ok(())
    }
    /// Whether this is a chaos workload (a replay replaces those with its own schedule).
    fn is_chaos(&self) -> bool {
        false
    }
    /// The fault timeline this workload planned for its last run (chaos workloads).
    fn chaos_plan(&self) -> Vec<crate::chaos::plan::PlannedStep> {
        Vec::new()
    }
}

/// Settings of the transaction workload (`transactions_with(|txs| txs.rate(5).users(20))`).
#[derive(Debug, Clone, PartialEq)]
pub struct TxWorkloadBuilder {
    /// Transactions per expected block.
    pub rate: f64,
    /// Distinct senders, taken from the funded wallets (None: all of them).
    pub users: Option<usize>,
    /// Threshold of the TxInclusion expectation attached with the workload.
    pub inclusion_threshold: f64,
    /// Who signs the transfers.
    pub mode: TxMode,
}

/// Who signs the workload's transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxMode {
    /// Client-signed where the nodes offer it (the reference node: a testing surface to
    /// read nonces from), else node-signed through the wallet API.
    #[default]
    Auto,
    /// Signed here and sent to `/mempool/add/tx` (the reference node only).
    ClientSigned,
    /// Built and signed by the node's wallet (`/wallet/transactions/transfer-funds`): the
    /// only way to a real node.
    Wallet,
}

impl std::str::FromStr for TxMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(TxMode::Auto),
            "client" | "client_signed" => Ok(TxMode::ClientSigned),
            "wallet" => Ok(TxMode::Wallet),
            _ => Err(format!(
                "transaction mode {s:?}: expected \"auto\", \"client\" or \"wallet\""
            )),
        }
    }
}

impl Default for TxWorkloadBuilder {
    fn default() -> Self {
        Self {
            rate: 1.0,
            users: None,
            inclusion_threshold: 0.5,
            mode: TxMode::Auto,
        }
    }
}

impl TxWorkloadBuilder {
    /// Defaults: 1 transaction per block, every wallet a user, inclusion threshold 0.5.
    pub fn new() -> Self {
        Self::default()
    }

    /// Transactions per expected block.
    pub fn rate(mut self, per_block: f64) -> Self {
        self.rate = per_block;
        self
    }

    /// Number of distinct senders.
    pub fn users(mut self, n: usize) -> Self {
        self.users = Some(n);
        self
    }

    /// Share of submitted transactions that must be included (TxInclusion).
    pub fn inclusion_threshold(mut self, t: f64) -> Self {
        self.inclusion_threshold = t;
        self
    }

    /// Who signs the transfers.
    pub fn mode(mut self, mode: TxMode) -> Self {
        self.mode = mode;
        self
    }

    /// The workload.
    pub fn build(&self) -> TransactionWorkload {
        TransactionWorkload {
            rate_per_block: self.rate,
            users: self.users,
            mode: self.mode,
        }
    }
}

/// Real signed transfers between funded wallets at a rate per block.
/// Each user sends to the next wallet, 1 unit at a time, with its own nonce
/// sequence; a user sticks to one node (so its nonces arrive in order) and
/// fails over to the next node on a transport error. After a rejection, the
/// user re-reads its nonce from `/ledger/account`; since a user's transaction
/// for a given nonce is always the same, a resubmission is a harmless duplicate.
#[derive(Debug, Clone)]
pub struct TransactionWorkload {
    pub rate_per_block: f64,
    pub users: Option<usize>,
    pub mode: TxMode,
}

impl Workload for TransactionWorkload {
    fn name(&self) -> String {
        "transactions".to_owned()
    }

    fn run(
        &self,
        ctx: RunContext,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), WorkloadError>> {
        let me = self.clone();
        Box::pin(async move { me.drive(ctx, stop).await })
    }
}

impl TransactionWorkload {
    async fn drive(self, ctx: RunContext, stop: CancellationToken) -> Result<(), WorkloadError> {
        let wallets = ctx.wallets().to_vec();
        if wallets.len() < 2 {
            return Err(WorkloadError::new(format!(
                "wallets = {}: transactions need at least two funded wallets",
                wallets.len()
            )));
        }
        let users = self
            .users
            .unwrap_or(wallets.len())
            .min(wallets.len())
            .max(1);
        let params = ctx.testnet().topology().params.clone();
        let per_sec =
            self.rate_per_block * params.active_slot_coeff / params.slot_duration.as_secs_f64();
        if per_sec <= 0.0 {
            return Err(WorkloadError::new(format!(
                "rate = {}: must be above 0",
                self.rate_per_block
            )));
        }
        let tokens = Arc::new(Semaphore::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let last_error = Arc::new(std::sync::Mutex::new(None::<String>));
        let wallet_mode = match self.mode {
            TxMode::Wallet => true,
            TxMode::ClientSigned => false,
            TxMode::Auto => ctx.clients().iter().any(|c| c.testing_url().is_none()),
        };
        let topology = ctx.testnet().topology().clone();
        let mut tasks = Vec::new();
        for u in 0..users {
            if wallet_mode {
                let ctx = ctx.clone();
                let stop = stop.clone();
                let tokens = tokens.clone();
                let accepted = accepted.clone();
                let last_error = last_error.clone();
                let owner = crate::nodekind::wallet_owner(&topology, u);
                let req = crate::client::TransferFunds {
                    tip: None,
                    change_public_key: wallets[u].public.clone(),
                    funding_public_keys: vec![wallets[u].public.clone()],
                    recipient_public_key: wallets[(u + 1) % wallets.len()].public.clone(),
                    amount: 1,
                };
                tasks.push(tokio::spawn(async move {
                    loop {
                        let permit = tokio::select! {
                            _ = stop.cancelled() => return,
                            p = tokens.acquire() => p,
                        };
                        match permit {
                            Ok(p) => p.forget(),
                            Err(_) => return,
                        }
                        let Some(c) = ctx.clients().get(owner).cloned() else {
                            ctx.tx_log().record_rejected();
                            continue;
                        };
                        match c
                            .with_timeout(Duration::from_secs(2))
                            .transfer_funds(&req)
                            .await
                        {
                            Ok(id) => {
                                ctx.tx_log().record(TxRecord {
                                    id,
                                    submitted_at: ctx.elapsed(),
                                    submitted_unix_ms: crate::blockfeed::now_ms(),
                                    node: owner,
                                    sender: Some(req.change_public_key.clone()),
                                    source: TxSource::Workload,
                                });
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                *last_error.lock().expect("lock") = Some(e.to_string());
                                ctx.tx_log().record_rejected();
                            }
                        }
                    }
                }));
                continue;
            }
            let ctx = ctx.clone();
            let stop = stop.clone();
            let tokens = tokens.clone();
            let accepted = accepted.clone();
            let last_error = last_error.clone();
            let key = wallets[u].key.clone();
            let public = wallets[u].public.clone();
            let to = wallets[(u + 1) % wallets.len()].public.clone();
            tasks.push(tokio::spawn(async move {
                let mut nonce: Option<u64> = None;
                let mut node_offset = 0usize;
                loop {
                    let permit = tokio::select! {
                        _ = stop.cancelled() => return,
                        p = tokens.acquire() => p,
                    };
                    match permit {
                        Ok(p) => p.forget(),
                        Err(_) => return,
                    }
                    let clients = ctx.clients();
                    let n = clients.len().max(1);
                    if nonce.is_none() {
                        for k in 0..n {
                            if let Some(c) = clients.get((u + node_offset + k) % n)
                                && let Ok(a) = c
                                    .clone()
                                    .with_timeout(Duration::from_secs(1))
                                    .account(&public)
                                    .await
                            {
                                nonce = Some(a.nonce);
                                break;
                            }
                        }
                    }
                    let Some(cur) = nonce else {
                        ctx.tx_log().record_rejected();
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                        continue;
                    };
                    let tx = SignedTx::sign(&key, &to, 1, cur);
                    let mut sent = false;
                    for k in 0..n {
                        let idx = (u + node_offset + k) % n;
                        let Some(c) = clients.get(idx) else { continue };
                        let c = c.clone().with_timeout(Duration::from_secs(1));
                        match c.add_tx(&tx).await {
                            Ok(id) => {
                                ctx.tx_log().record(TxRecord {
                                    id,
                                    submitted_at: ctx.elapsed(),
                                    submitted_unix_ms: crate::blockfeed::now_ms(),
                                    node: idx,
                                    sender: Some(public.clone()),
                                    source: TxSource::Workload,
                                });
                                accepted.fetch_add(1, Ordering::Relaxed);
                                nonce = Some(cur + 1);
                                node_offset = (node_offset + k) % n;
                                sent = true;
                                break;
                            }
                            Err(e) if e.is_rejection() => {
                                *last_error.lock().expect("lock") = Some(e.to_string());
                                // re-read the nonce next time (the chain may have moved on
                                // or a restarted node lost its mempool)
                                nonce = None;
                                break;
                            }
                            Err(e) => {
                                *last_error.lock().expect("lock") = Some(e.to_string());
                            }
                        }
                        if stop.is_cancelled() {
                            return;
                        }
                    }
                    if !sent {
                        ctx.tx_log().record_rejected();
                    }
                }
            }));
        }
        // Token bucket: release permits so that submissions follow the target rate.
        let started = tokio::time::Instant::now();
        let mut issued: u64 = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let due = (started.elapsed().as_secs_f64() * per_sec).floor() as u64;
            if due > issued {
                // never bank more than one second of backlog
                let backlog = tokens.available_permits() as u64;
                let add =
                    (due - issued).min((per_sec.ceil() as u64).saturating_sub(backlog).max(1));
                tokens.add_permits(add as usize);
                issued = due;
            }
        }
        tokens.close();
        for t in tasks {
            if let Err(e) = t.await
                && e.is_panic()
            {
                return Err(WorkloadError::new(format!("a sender task panicked: {e}")));
            }
        }
        if issued > 0 && accepted.load(Ordering::Relaxed) == 0 {
            let last = last_error
                .lock()
                .expect("lock")
                .clone()
                .unwrap_or_else(|| "no node answered".to_owned());
            return Err(WorkloadError::new(format!(
                "no node accepted any of {issued} transactions: {last}"
            )));
        }
        Ok(())
    }
}
