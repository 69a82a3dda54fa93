//! Continuous invariants: `always(name, pred)`, `never(name, pred)` and
//! `eventually_within(d, name, pred)`, checked about once a slot DURING the
//! run. A violation fails the run at once (the runner stops the workloads,
//! skips the cooldown and the other expectations, tears down, exit 1) with a
//! witness: when, every node's height, and what the predicate said.
//!
//! An invariant is an [`Expectation`]: its checker starts in `start_capture`
//! and its verdict (held over N checks, or the witness) is given at the end.
//! A predicate that returns an error (a node not answering, say) counts as a
//! violation, with the error as the witness: write the predicate to tolerate
//! what the scenario does on purpose (restarts) if it must.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::context::RunContext;
use crate::deadline::Deadline;
use crate::expectation::{Expectation, ExpectationError, Verdict};

/// The answer of one check: the predicate's value, and optionally which
/// node or condition it is about (shown in the witness).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub value: bool,
    pub detail: Option<String>,
}

impl From<bool> for Check {
    fn from(value: bool) -> Self {
        Self {
            value,
            detail: None,
        }
    }
}

impl Check {
    /// A value with a detail (e.g. "node-2 height 5, highest 12").
    pub fn with(value: bool, detail: impl Into<String>) -> Self {
        Self {
            value,
            detail: Some(detail.into()),
        }
    }
}

/// A predicate over the running scenario.
pub type Predicate =
    Arc<dyn Fn(RunContext) -> BoxFuture<'static, Result<Check, String>> + Send + Sync>;

/// Which temporal rule the predicate follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InvariantKind {
    /// Must be true at every check.
    Always,
    /// Must be false at every check.
    Never,
    /// Must become true within this time of the run's start (time, slots or blocks, resolved
    /// against the testnet's consensus parameters).
    EventuallyWithin(Deadline),
}

impl fmt::Display for InvariantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvariantKind::Always => write!(f, "always"),
            InvariantKind::Never => write!(f, "never"),
            InvariantKind::EventuallyWithin(d) => write!(f, "eventually within {d}"),
        }
    }
}

#[derive(Default)]
struct State {
    checks: u64,
    violation: Option<String>,
    satisfied_after: Option<Duration>,
    stop: Option<CancellationToken>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A continuous invariant.
pub struct Invariant {
    name: String,
    kind: InvariantKind,
    predicate: Predicate,
    interval: Option<Duration>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invariant")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Invariant {
    /// An invariant checked every slot.
    pub fn new(name: impl Into<String>, kind: InvariantKind, predicate: Predicate) -> Self {
        Self {
            name: name.into(),
            kind,
            predicate,
            interval: None,
            state: Arc::default(),
        }
    }

    /// `pred` holds at every check.
    pub fn always(name: impl Into<String>, predicate: Predicate) -> Self {
        Self::new(name, InvariantKind::Always, predicate)
    }

    /// `pred` never holds.
    pub fn never(name: impl Into<String>, predicate: Predicate) -> Self {
        Self::new(name, InvariantKind::Never, predicate)
    }

    /// `pred` holds at some check within `d` of the run's start.
    pub fn eventually_within(
        d: impl Into<Deadline>,
        name: impl Into<String>,
        predicate: Predicate,
    ) -> Self {
        Self::new(name, InvariantKind::EventuallyWithin(d.into()), predicate)
    }

    /// Checks every `d` instead of every slot.
    pub fn every(mut self, d: Duration) -> Self {
        self.interval = Some(d);
        self
    }

    /// The rule.
    pub fn kind(&self) -> InvariantKind {
        self.kind
    }

    /// Checks made in the current (or last) run.
    pub fn checks(&self) -> u64 {
        self.state.lock().expect("invariant lock").checks
    }
}

/// Heights of every node right now, one line: `node-0 12, node-1 12, node-2 unreachable`.
pub async fn heights_line(ctx: &RunContext) -> String {
    let clients = ctx.clients();
    let futs = clients.iter().map(|c| {
        let c = c.clone().with_timeout(Duration::from_secs(1));
        async move {
            match c.consensus_info().await {
                Ok(i) => format!("{} {}", c.name(), i.height),
                Err(_) => format!("{} unreachable", c.name()),
            }
        }
    });
    futures::future::join_all(futs).await.join(", ")
}

async fn check_loop(
    name: String,
    kind: InvariantKind,
    predicate: Predicate,
    interval: Duration,
    ctx: RunContext,
    stop: CancellationToken,
    state: Arc<Mutex<State>>,
) {
    let began = tokio::time::Instant::now();
    let run_over = ctx.run_over();
    let params = ctx.testnet().topology().params.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = run_over.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let r = predicate(ctx.clone()).await;
        if stop.is_cancelled() || run_over.is_cancelled() {
            return;
        }
        state.lock().expect("invariant lock").checks += 1;
        let broke = match (&r, kind) {
            (Err(e), _) => Some(format!("the check failed: {e}")),
            (Ok(c), InvariantKind::Always) if !c.value => Some(
                c.detail
                    .clone()
                    .unwrap_or_else(|| "the predicate was false".to_owned()),
            ),
            (Ok(c), InvariantKind::Never) if c.value => Some(
                c.detail
                    .clone()
                    .unwrap_or_else(|| "the predicate was true".to_owned()),
            ),
            (Ok(c), InvariantKind::EventuallyWithin(_)) if c.value => {
                state.lock().expect("invariant lock").satisfied_after = Some(began.elapsed());
                return;
            }
            (Ok(c), InvariantKind::EventuallyWithin(d))
                if began.elapsed() >= d.resolve(&params) =>
            {
                Some(format!(
                    "still false after {}{}",
                    d.describe(&params),
                    c.detail
                        .as_ref()
                        .map(|x| format!(" ({x})"))
                        .unwrap_or_default()
                ))
            }
            _ => None,
        };
        if let Some(what) = broke {
            let message = format!(
                "invariant `{name}` ({kind}) violated at {:.2}s: {what}; heights: {}",
                ctx.elapsed().as_secs_f64(),
                heights_line(&ctx).await
            );
            state.lock().expect("invariant lock").violation = Some(message.clone());
            ctx.fail_run(name, message);
            return;
        }
    }
}

impl Expectation for Invariant {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start_capture<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<(), ExpectationError>> {
        Box::pin(async move {
            let slot = ctx.testnet().topology().params.slot_duration;
            let interval = self.interval.unwrap_or(slot).max(Duration::from_millis(20));
            let stop = CancellationToken::new();
            let mut st = self.state.lock().expect("invariant lock");
            if let Some(old) = st.stop.take() {
                old.cancel();
            }
            *st = State::default();
            st.stop = Some(stop.clone());
            st.task = Some(tokio::spawn(check_loop(
                self.name.clone(),
                self.kind,
                self.predicate.clone(),
                interval,
                ctx.clone(),
                stop,
                self.state.clone(),
            )));
            Ok(())
        })
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let (stop, task) = {
                let mut st = self.state.lock().expect("invariant lock");
                (st.stop.take(), st.task.take())
            };
            if let Some(s) = stop {
                s.cancel();
            }
            if let Some(t) = task {
                let _ = t.await;
            }
            let st = self.state.lock().expect("invariant lock");
            let evidence = serde_json::json!({
                "kind": self.kind, "checks": st.checks, "violation": st.violation,
            });
            if let Some(v) = &st.violation {
                return Ok(Verdict::fail(v.clone(), evidence));
            }
            Ok(match self.kind {
                InvariantKind::EventuallyWithin(d) => match st.satisfied_after {
                    Some(after) => Verdict::pass(
                        format!(
                            "held after {:.2}s (bound {})",
                            after.as_secs_f64(),
                            d.describe(&ctx.testnet().topology().params)
                        ),
                        evidence,
                    ),
                    None => Verdict::fail(
                        format!(
                            "invariant `{}` ({}) never held during the run ({:.1}s, {} checks)",
                            self.name,
                            self.kind,
                            ctx.elapsed().as_secs_f64(),
                            st.checks
                        ),
                        evidence,
                    ),
                },
                _ => Verdict::pass(
                    format!("{} held over {} checks", self.kind, st.checks),
                    evidence,
                ),
            })
        })
    }
}
