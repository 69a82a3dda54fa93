//! Expectations judge the run: capture a baseline when the run starts,
//! evaluate at the end. Built-ins: [`ConsensusLiveness`], [`TxInclusion`],
//! [`Convergence`].

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::context::RunContext;
use crate::deploy::NodeState;

mod convergence;
mod inclusion;
mod liveness;

pub use convergence::{Convergence, ConvergenceBuilder};
pub use inclusion::{NodeInclusion, TxInclusion, TxInclusionBuilder};
pub use liveness::{ConsensusLiveness, ConsensusLivenessBuilder, SEED_LAG_ALLOWANCE, lag_rule};

/// The judgement of one expectation.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    /// One line; on failure it names what failed with the numbers.
    pub message: String,
    /// Machine-readable details for reports.
    pub evidence: serde_json::Value,
}

impl Verdict {
    /// A passing verdict.
    pub fn pass(message: impl Into<String>, evidence: serde_json::Value) -> Self {
        Self {
            passed: true,
            message: message.into(),
            evidence,
        }
    }

    /// A failing verdict.
    pub fn fail(message: impl Into<String>, evidence: serde_json::Value) -> Self {
        Self {
            passed: false,
            message: message.into(),
            evidence,
        }
    }
}

/// An expectation could not be evaluated at all (counts as a failure).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ExpectationError {
    pub message: String,
}

impl ExpectationError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A check of the run's outcome.
pub trait Expectation: Send + Sync {
    /// Name in reports (`consensus_liveness`); also the verdict's name.
    fn name(&self) -> String;
    /// Called once when the run starts (after readiness), before workloads.
    fn start_capture<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<(), ExpectationError>> {
        let _ = ctx;
        Box::pin(async { Ok(()) })
    }
    /// Called once after the cooldown.
    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>>;
}

async fn heights(ctx: &RunContext) -> Vec<Result<crate::client::ConsensusInfo, String>> {
    let clients = ctx.clients();
    let futs = clients.iter().map(|c| {
        let c = c.clone().with_timeout(Duration::from_secs(2));
        async move { c.consensus_info().await.map_err(|e| e.to_string()) }
    });
    futures::future::join_all(futs).await
}

/// Default settle time after the last fault: max(2 s, 10 slots).
fn default_settle(slot: Duration) -> Duration {
    (slot * 10).max(Duration::from_secs(2))
}

/// Waits until no network fault is in force and every node runs (at most
/// `bound`), then lets the network settle: `settle` after the newest revert
/// in the fault log, or after the moment the wait ended if it had to wait.
/// The error is the failing verdict: it names what was still wrong at the bound.
async fn wait_settled(ctx: &RunContext, settle: Duration, bound: Duration) -> Result<(), Verdict> {
    let net = ctx.testnet();
    let start = tokio::time::Instant::now();
    let mut waited = false;
    loop {
        let active = net.active_faults();
        let down: Vec<String> = (0..net.node_count())
            .filter_map(|i| match net.node_state(i) {
                Some(NodeState::Running) | None => None,
                Some(state) => Some(format!("node-{i} is {state:?}")),
            })
            .collect();
        if active.is_empty() && down.is_empty() {
            break;
        }
        if start.elapsed() >= bound {
            let mut what: Vec<String> = active
                .iter()
                .map(|f| format!("fault still in force: {}", f.fault))
                .collect();
            what.extend(down);
            return Err(Verdict::fail(
                format!(
                    "{} (waited {})",
                    what.join("; "),
                    humantime::format_duration(bound)
                ),
                serde_json::json!({"settle_ms": settle.as_millis() as u64}),
            ));
        }
        waited = true;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut remaining = if waited { settle } else { Duration::ZERO };
    let since_revert = net
        .fault_log()
        .iter()
        .filter(|r| r.reverted)
        .map(|r| r.at)
        .max()
        .and_then(|at| at.elapsed().ok());
    if let Some(e) = since_revert {
        remaining = remaining.max(settle.saturating_sub(e));
    }
    tokio::time::sleep(remaining).await;
    Ok(())
}
