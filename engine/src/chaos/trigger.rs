//! Faults started by chain events as well as by time: `on_height(n)`,
//! `on_slot(n)`, `when(condition)` and `after(d)`. Heights and slots come
//! from the block feed (blocks are pushed by the nodes, nothing polls once a
//! second); a trigger fires once.
//!
//! Two ways to use one: as part of a plan ([`TriggerWorkload`], armed when the
//! run starts) or on a live testnet ([`arm`], armed at once, with its own
//! block feed).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::blockfeed::{BlockFeed, FeedEvent};
use crate::context::RunContext;
use crate::deploy::Testnet;
use crate::report::RunEvent;
use crate::workload::{Workload, WorkloadError};

/// A condition over the live testnet, for `when`.
pub type Condition =
    Arc<dyn Fn(Arc<dyn Testnet>) -> BoxFuture<'static, Result<bool, String>> + Send + Sync>;

/// What a trigger does when it fires.
pub type Action =
    Arc<dyn Fn(Fired, Arc<dyn Testnet>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// When a trigger fires.
#[derive(Clone)]
pub enum Trigger {
    /// When some node's canonical chain reaches this height.
    Height(u64),
    /// When the nodes' wall-clock slot reaches this slot.
    Slot(u64),
    /// This long after the trigger is armed (the run start, in a plan).
    After(Duration),
    /// When the condition first holds (checked every half slot).
    When(Condition),
}

impl fmt::Debug for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Height(h) => write!(f, "on_height({h})"),
            Trigger::Slot(s) => write!(f, "on_slot({s})"),
            Trigger::After(d) => write!(f, "after({})", humantime::format_duration(*d)),
            Trigger::When(_) => write!(f, "when(..)"),
        }
    }
}

/// Where the chain was when a trigger fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fired {
    /// Time since the trigger was armed.
    #[serde(with = "crate::report::duration_ms")]
    pub after: Duration,
    /// Highest canonical height seen (the block that fired it, for `on_height`).
    pub height: Option<u64>,
    /// The slot, when known.
    pub slot: Option<u64>,
}

impl fmt::Display for Fired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "after {:.3}s", self.after.as_secs_f64())?;
        if let Some(h) = self.height {
            write!(f, ", height {h}")?;
        }
        if let Some(s) = self.slot {
            write!(f, ", slot {s}")?;
        }
        Ok(())
    }
}

fn feed_height(feed: &BlockFeed) -> Option<u64> {
    feed.stats().heights.into_iter().flatten().max()
}

async fn current_slot(net: &Arc<dyn Testnet>) -> Option<u64> {
    for c in net.clients().iter() {
        if let Ok(i) = c
            .clone()
            .with_timeout(Duration::from_secs(1))
            .consensus_info()
            .await
        {
            return Some(i.slot);
        }
    }
    None
}

/// Waits until `trigger` fires (Some) or `stop` is cancelled (None).
pub async fn wait_for(
    trigger: &Trigger,
    net: &Arc<dyn Testnet>,
    feed: &BlockFeed,
    stop: &CancellationToken,
) -> Result<Option<Fired>, String> {
    let armed = Instant::now();
    let slot_d = net.topology().params.slot_duration;
    let fired = |height: Option<u64>, slot: Option<u64>| Fired {
        after: armed.elapsed(),
        height,
        slot,
    };
    match trigger {
        Trigger::Height(n) => {
            let mut rx = feed.subscribe();
            loop {
                if let Some(h) = feed_height(feed)
                    && h >= *n
                {
                    return Ok(Some(fired(Some(h), None)));
                }
                tokio::select! {
                    _ = stop.cancelled() => return Ok(None),
                    ev = rx.recv() => match ev {
                        Ok(FeedEvent::Block { block: header, .. }) if header.height >= *n => {
                            return Ok(Some(fired(Some(header.height), Some(header.slot))));
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => {
                            return Err(format!("{trigger}: the block feed closed before the chain reached height {n}"));
                        }
                    },
                }
            }
        }
        Trigger::Slot(n) => {
            let mut rx = feed.subscribe();
            loop {
                let wait = match current_slot(net).await {
                    Some(s) if s >= *n => return Ok(Some(fired(feed_height(feed), Some(s)))),
                    Some(s) => (slot_d * (n - s - 1) as u32).max(slot_d / 4),
                    None => slot_d,
                };
                let until = Instant::now() + wait;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(None),
                        _ = tokio::time::sleep_until(until) => break,
                        ev = rx.recv() => match ev {
                            Ok(FeedEvent::Block { block: header, .. }) if header.slot >= *n => {
                                return Ok(Some(fired(Some(header.height), Some(header.slot))));
                            }
                            Ok(_) | Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => {
                                tokio::select! {
                                    _ = stop.cancelled() => return Ok(None),
                                    _ = tokio::time::sleep_until(until) => break,
                                }
                            }
                        },
                    }
                }
            }
        }
        Trigger::After(d) => {
            tokio::select! {
                _ = stop.cancelled() => Ok(None),
                _ = tokio::time::sleep_until(armed + *d) => Ok(Some(fired(feed_height(feed), None))),
            }
        }
        Trigger::When(cond) => {
            let poll = (slot_d / 2).max(Duration::from_millis(50));
            loop {
                if stop.is_cancelled() {
                    return Ok(None);
                }
                if cond(net.clone())
                    .await
                    .map_err(|e| format!("{trigger}: {e}"))?
                {
                    return Ok(Some(fired(feed_height(feed), None)));
                }
                tokio::select! {
                    _ = stop.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        }
    }
}

/// A trigger and its action as a workload of a plan, armed when the run starts.
pub struct TriggerWorkload {
    name: String,
    trigger: Trigger,
    action: Action,
    fired: Arc<Mutex<Option<Fired>>>,
}

impl TriggerWorkload {
    /// `name` appears in reports (e.g. `on_height(10)`).
    pub fn new(name: impl Into<String>, trigger: Trigger, action: Action) -> Self {
        Self {
            name: name.into(),
            trigger,
            action,
            fired: Arc::default(),
        }
    }

    /// Where the chain was when it fired in the last run (None: it did not fire).
    pub fn fired(&self) -> Option<Fired> {
        self.fired.lock().expect("fired lock").clone()
    }
}

impl Workload for TriggerWorkload {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn run(
        &self,
        ctx: RunContext,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), WorkloadError>> {
        let name = self.name.clone();
        let trigger = self.trigger.clone();
        let action = self.action.clone();
        let slot = self.fired.clone();
        Box::pin(async move {
            *slot.lock().expect("fired lock") = None;
            let net = ctx.testnet();
            let fired = wait_for(&trigger, &net, ctx.block_feed(), &stop)
                .await
                .map_err(|e| WorkloadError::new(format!("{name}: {e}")))?;
            let Some(fired) = fired else {
                ctx.emit(RunEvent::Note {
                    message: format!(
                        "{}did not fire before the run ended",
                        prefix(&name, &trigger)
                    ),
                });
                return Ok(());
            };
            *slot.lock().expect("fired lock") = Some(fired.clone());
            ctx.emit(RunEvent::Note {
                message: format!("{}fired ({fired})", prefix(&name, &trigger)),
            });
            action(fired.clone(), net).await.map_err(|e| {
                WorkloadError::new(format!("{name}: the action of {trigger} failed: {e}"))
            })
        })
    }
}

/// `name: on_height(3) ` or, when the name is the trigger itself, `on_height(3) `.
fn prefix(name: &str, trigger: &Trigger) -> String {
    let t = trigger.to_string();
    if name == t {
        format!("{t} ")
    } else {
        format!("{name}: {t} ")
    }
}

/// The life of a trigger armed on a live testnet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TriggerState {
    /// Waiting for its event.
    Armed,
    /// Fired; the action is running.
    Firing(Fired),
    /// The action finished (its error, if it failed).
    Done { fired: Fired, error: Option<String> },
    /// Cancelled before it fired.
    Cancelled,
    /// Could not wait (the condition failed).
    Failed(String),
}

impl TriggerState {
    /// Whether nothing more will happen.
    pub fn is_final(&self) -> bool {
        !matches!(self, TriggerState::Armed | TriggerState::Firing(_))
    }
}

/// A trigger armed on a live testnet by [`arm`].
#[derive(Clone)]
pub struct TriggerHandle {
    label: String,
    cancel: CancellationToken,
    state: watch::Receiver<TriggerState>,
}

impl fmt::Debug for TriggerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TriggerHandle({}: {:?})", self.label, self.state())
    }
}

impl TriggerHandle {
    /// `on_height(10)`, ...
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Where it is now.
    pub fn state(&self) -> TriggerState {
        self.state.borrow().clone()
    }

    /// Where the chain was when it fired.
    pub fn fired(&self) -> Option<Fired> {
        match self.state() {
            TriggerState::Firing(f) | TriggerState::Done { fired: f, .. } => Some(f),
            _ => None,
        }
    }

    /// Disarms it (an action already running finishes).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits until it fired and its action finished, at most `deadline`.
    pub async fn wait(&self, deadline: Duration) -> Result<Fired, String> {
        self.wait_for(deadline, &humantime::format_duration(deadline).to_string())
            .await
    }

    /// [`wait`](Self::wait) with the deadline as the caller wrote it in the timeout message
    /// (`20 slots (10s at 500ms slots)`).
    pub async fn wait_for(&self, deadline: Duration, written: &str) -> Result<Fired, String> {
        let mut rx = self.state.clone();
        let r = tokio::time::timeout(deadline, rx.wait_for(TriggerState::is_final)).await;
        let state = match r {
            Ok(Ok(s)) => s.clone(),
            Ok(Err(_)) => self.state(),
            Err(_) => {
                return Err(format!(
                    "{} did not fire and finish within {written} (state: {:?})",
                    self.label,
                    self.state()
                ));
            }
        };
        match state {
            TriggerState::Done { fired, error: None } => Ok(fired),
            TriggerState::Done {
                fired,
                error: Some(e),
            } => Err(format!(
                "{} fired ({fired}) but its action failed: {e}",
                self.label
            )),
            TriggerState::Cancelled => Err(format!("{} was cancelled before it fired", self.label)),
            TriggerState::Failed(e) => Err(e),
            other => Err(format!("{} stopped in state {other:?}", self.label)),
        }
    }
}

/// Arms `trigger` on a live testnet: a task with its own block feed waits for
/// the event, then runs `action` once. Must be called inside a tokio runtime.
pub fn arm(net: Arc<dyn Testnet>, trigger: Trigger, action: Action) -> TriggerHandle {
    let cancel = CancellationToken::new();
    let (tx, rx) = watch::channel(TriggerState::Armed);
    let label = trigger.to_string();
    let task_cancel = cancel.clone();
    tokio::spawn(async move {
        let feed_cancel = CancellationToken::new();
        let feed = BlockFeed::start(&net.clients().0, feed_cancel.clone());
        let r = wait_for(&trigger, &net, &feed, &task_cancel).await;
        feed_cancel.cancel();
        match r {
            Ok(None) => {
                let _ = tx.send(TriggerState::Cancelled);
            }
            Err(e) => {
                let _ = tx.send(TriggerState::Failed(e));
            }
            Ok(Some(fired)) => {
                let _ = tx.send(TriggerState::Firing(fired.clone()));
                let error = action(fired.clone(), net).await.err();
                let _ = tx.send(TriggerState::Done { fired, error });
            }
        }
    });
    TriggerHandle {
        label,
        cancel,
        state: rx,
    }
}
