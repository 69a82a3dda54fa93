//! [`Convergence`]: every node shares the LIB and tips are within a bound by a deadline.

use std::time::Duration;

use futures::future::BoxFuture;

use super::{Expectation, ExpectationError, Verdict, default_settle, heights, wait_settled};
use crate::client::model::short_id as short;
use crate::context::RunContext;
use crate::deadline::Deadline;
use crate::forkrisk::ForkPoint;

/// Settings of [`Convergence`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvergenceBuilder {
    /// How long to wait for agreement (default: max(10 s, 20 slots)); time, slots or blocks.
    pub deadline: Option<Deadline>,
    /// Largest allowed tip height spread (default: k).
    pub max_tip_spread: Option<u64>,
    /// Quiet time after the last fault is reverted before measuring (default max(2 s, 10
    /// slots)); time, slots or blocks.
    pub settle: Option<Deadline>,
}

impl ConvergenceBuilder {
    /// Defaults as documented on the fields.
    pub fn new() -> Self {
        Self::default()
    }
    /// How long to wait for agreement: a duration, or slots or blocks (resolved against the
    /// testnet's consensus parameters when judged).
    pub fn deadline(mut self, d: impl Into<Deadline>) -> Self {
        self.deadline = Some(d.into());
        self
    }
    /// Largest allowed tip height spread.
    pub fn max_tip_spread(mut self, s: u64) -> Self {
        self.max_tip_spread = Some(s);
        self
    }
    /// Quiet time after the last fault before measuring: a duration, slots or blocks.
    pub fn settle(mut self, d: impl Into<Deadline>) -> Self {
        self.settle = Some(d.into());
        self
    }
    /// The expectation.
    pub fn build(&self) -> Convergence {
        Convergence {
            config: self.clone(),
        }
    }
}

/// At the end, every node shares the same LIB and tips are within a bound,
/// within a deadline.
#[derive(Debug, Clone, Default)]
pub struct Convergence {
    config: ConvergenceBuilder,
}

impl Expectation for Convergence {
    fn name(&self) -> String {
        "convergence".to_owned()
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let params = ctx.testnet().topology().params.clone();
            let written = self.config.deadline;
            let deadline = written.map_or_else(
                || (params.slot_duration * 20).max(Duration::from_secs(10)),
                |d| d.resolve(&params),
            );
            // "after 20 slots (10s at 500ms slots)" when written in slots
            let deadline_text = written.map_or_else(
                || humantime::format_duration(deadline).to_string(),
                |d| d.describe(&params),
            );
            let spread_bound = self.config.max_tip_spread.unwrap_or(params.security_param);
            let k = params.security_param;
            let settle = self.config.settle.map_or_else(
                || default_settle(params.slot_duration),
                |d| d.resolve(&params),
            );
            if let Err(verdict) = wait_settled(ctx, settle, deadline).await {
                return Ok(verdict);
            }
            let started = tokio::time::Instant::now();
            let poll = (params.slot_duration / 2).max(Duration::from_millis(50));
            let mut last_problem;
            loop {
                let infos = heights(ctx).await;
                let mut problem = None;
                let mut rows = Vec::new();
                let mut ok = Vec::new();
                for (i, r) in infos.iter().enumerate() {
                    match r {
                        Ok(info) => {
                            rows.push(format!(
                                "node-{i} lib {}@{} tip {}",
                                short(&info.lib),
                                info.height.saturating_sub(k),
                                info.height
                            ));
                            ok.push((i, info.clone()));
                        }
                        Err(e) => {
                            rows.push(format!("node-{i} unreachable ({e})"));
                            problem = Some("a node is unreachable".to_owned());
                        }
                    }
                }
                if problem.is_none() && !ok.is_empty() {
                    let max_tip = ok.iter().map(|(_, i)| i.height).max().unwrap_or(0);
                    let min_tip = ok.iter().map(|(_, i)| i.height).min().unwrap_or(0);
                    let same_lib = ok.iter().all(|(_, i)| i.lib == ok[0].1.lib);
                    let agree = same_lib || {
                        // LIBs at different heights: agree if every node has the same
                        // block at the lowest LIB height on its canonical chain.
                        let h = min_tip.saturating_sub(k);
                        let feed = ctx.block_feed();
                        let ids: Vec<Option<String>> =
                            ok.iter().map(|(i, _)| feed.canonical_at(*i, h)).collect();
                        ids.iter().all(|x| x.is_some() && *x == ids[0])
                    };
                    if !agree {
                        problem = Some("nodes disagree on the LIB".to_owned());
                    } else if max_tip - min_tip > spread_bound {
                        problem = Some(format!(
                            "tip heights spread {} > bound {spread_bound}",
                            max_tip - min_tip
                        ));
                    }
                }
                let evidence =
                    serde_json::json!({"nodes": rows, "deadline_ms": deadline.as_millis() as u64});
                match problem {
                    None => {
                        return Ok(Verdict::pass(
                            format!("{} nodes share the LIB: {}", ok.len(), rows.join(", ")),
                            evidence,
                        ));
                    }
                    Some(p) => last_problem = (p, rows, evidence),
                }
                if started.elapsed() >= deadline {
                    let (p, rows, mut evidence) = last_problem;
                    let mut msg = format!("{p} after {deadline_text}: {}", rows.join(", "));
                    let tips: Vec<(usize, u64)> =
                        ok.iter().map(|(i, info)| (*i, info.height)).collect();
                    if let Some(fork) = fork_point(ctx, &tips) {
                        msg.push_str(&format!("; {}", fork.explain(k)));
                        evidence["fork_height"] = fork.height.into();
                        evidence["fork_depths"] = serde_json::json!(fork.depths);
                        evidence["k"] = k.into();
                        if let Some(risk) = longest_partition_risk(ctx) {
                            msg.push_str(&format!("; {}", risk.explain()));
                        }
                    }
                    return Ok(Verdict::fail(msg, evidence));
                }
                tokio::time::sleep(poll).await;
            }
        })
    }
}

/// Where the nodes' canonical chains (as the block feed saw them) last agree.
fn fork_point(ctx: &RunContext, tips: &[(usize, u64)]) -> Option<ForkPoint> {
    let feed = ctx.block_feed();
    crate::forkrisk::fork_point(tips, |i, h| feed.canonical_at(i, h))
}

/// The riskiest partition of the run's fault log, by its actual length.
fn longest_partition_risk(ctx: &RunContext) -> Option<crate::forkrisk::PartitionRisk> {
    let testnet = ctx.testnet();
    crate::forkrisk::riskiest_partition(testnet.topology(), &testnet.fault_log())
}
