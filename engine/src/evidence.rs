//! Expectations about lying nodes, judged from what every node saw (the reference node's
//! `GET /test/evidence` and its counters): [`EvidenceCheck::EquivocationAccepted`] fails when an
//! honest node let an equivocation pick its tip, [`EvidenceCheck::Equivocation`] when any leader
//! signed two blocks for one slot, [`EvidenceCheck::InvalidTransactions`] when any node gossiped
//! transactions whose signature does not verify. The culprit is named by node index (a peer's
//! public key is matched to the nodes' `/network/info` peer ids).
//!
//! Like liveness and convergence, the two detectors are fault-aware: a node made honest again
//! during the run (`byzantine ... honest` in the control log) is judged only on what it did from
//! a settle time after that; a node lying until the end (or from its config) on the whole run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use futures::future::BoxFuture;

use crate::client::EvidenceReport;
use crate::client::model::short_id as short;
use crate::context::RunContext;
use crate::deploy::NodeState;
use crate::deploy::control_log::NodeAction;
use crate::expectation::{Expectation, ExpectationError, Verdict};

/// What an [`EvidenceExpectation`] judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceCheck {
    /// No node adopted the second block of an equivocation as its tip by the tie-break
    /// (`expect_no_equivocation_accepted`).
    EquivocationAccepted,
    /// No leader signed two blocks for one slot (`expect_no_equivocation`).
    Equivocation,
    /// No node gossiped a transaction whose signature does not verify
    /// (`expect_no_invalid_transactions`).
    InvalidTransactions,
}

/// An expectation over the nodes' evidence of lies.
#[derive(Debug)]
pub struct EvidenceExpectation {
    check: EvidenceCheck,
    /// Per node, the accepted count when the run started.
    baseline: Mutex<Vec<u64>>,
    /// When the run started, ms since the Unix epoch.
    started_ms: Mutex<u64>,
}

impl EvidenceExpectation {
    /// The expectation `check`.
    pub fn new(check: EvidenceCheck) -> Self {
        Self {
            check,
            baseline: Mutex::new(Vec::new()),
            started_ms: Mutex::new(0),
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Every running node's evidence (None where it could not be read) and its peer id.
async fn read_all(ctx: &RunContext) -> Vec<(Option<EvidenceReport>, Option<String>, String)> {
    let net = ctx.testnet();
    let clients = ctx.clients();
    let reads = clients.iter().enumerate().map(|(i, c)| {
        let c = c.clone().with_timeout(Duration::from_secs(2));
        let running = !matches!(
            net.node_state(i),
            Some(NodeState::Stopped | NodeState::Exited | NodeState::Paused)
        );
        async move {
            if !running {
                return (None, None, format!("node-{i} is not running"));
            }
            let (ev, info) = futures::join!(c.evidence(), c.network_info());
            let peer = info.ok().and_then(|n| n.peer_id);
            match ev {
                Ok(r) => (Some(r), peer, String::new()),
                Err(e) => (None, peer, format!("node-{i}: {e}")),
            }
        }
    });
    futures::future::join_all(reads).await
}

/// The block ids of one leader's equivocation for a slot, and the nodes that saw it.
type SlotLie = (BTreeSet<String>, BTreeSet<usize>);

/// `node-i` for a public key, or its short form.
fn who(key: &str, keys: &HashMap<String, usize>) -> String {
    keys.get(key)
        .map_or_else(|| format!("peer {}", short(key)), |i| format!("node-{i}"))
}

/// From when node `i` is judged: a settle time after it was last made honest, if it was, else
/// the start of the run.
fn judged_from(ctx: &RunContext, i: Option<usize>, started_ms: u64, settle: Duration) -> u64 {
    let Some(i) = i else { return started_ms };
    let last = ctx
        .testnet()
        .control_log()
        .into_iter()
        .rfind(|r| r.action == NodeAction::Byzantine && r.node == i);
    match last {
        Some(r) if r.detail.as_deref() == Some("honest") => {
            r.at.duration_since(UNIX_EPOCH)
                .map_or(started_ms, |d| (d + settle).as_millis() as u64)
                .max(started_ms)
        }
        _ => started_ms,
    }
}

impl Expectation for EvidenceExpectation {
    fn name(&self) -> String {
        match self.check {
            EvidenceCheck::EquivocationAccepted => "no_equivocation_accepted",
            EvidenceCheck::Equivocation => "no_equivocation",
            EvidenceCheck::InvalidTransactions => "no_invalid_transactions",
        }
        .to_owned()
    }

    fn start_capture<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<(), ExpectationError>> {
        Box::pin(async move {
            *self.started_ms.lock().unwrap_or_else(|e| e.into_inner()) = now_ms();
            let all = read_all(ctx).await;
            if let Some((_, _, why)) = all.iter().find(|(r, _, _)| r.is_none()) {
                return Err(ExpectationError::new(format!(
                    "{}: cannot read the nodes' evidence ({why}); it needs the reference node's testing surface",
                    self.name()
                )));
            }
            *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = all
                .iter()
                .map(|(r, _, _)| r.as_ref().map_or(0, |r| r.equivocations_accepted))
                .collect();
            Ok(())
        })
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let all = read_all(ctx).await;
            let unread: Vec<String> = all
                .iter()
                .filter(|(r, _, _)| r.is_none())
                .map(|(_, _, why)| why.clone())
                .collect();
            if unread.len() == all.len() {
                return Err(ExpectationError::new(format!(
                    "{}: no node's evidence could be read: {}",
                    self.name(),
                    unread.join("; ")
                )));
            }
            let keys: HashMap<String, usize> = all
                .iter()
                .enumerate()
                .filter_map(|(i, (_, k, _))| Some((k.clone()?, i)))
                .collect();
            let started = *self.started_ms.lock().unwrap_or_else(|e| e.into_inner());
            let params = ctx.testnet().topology().params.clone();
            let settle = (params.slot_duration * 5).max(Duration::from_secs(1));
            let genesis = ctx.testnet().genesis_time_ms();
            let slot_len = params.slot_duration.as_millis() as u64;
            let verdict = match self.check {
                EvidenceCheck::EquivocationAccepted => {
                    let baseline = self
                        .baseline
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    let mut accepted = Vec::new();
                    let mut seen = Vec::new();
                    for (i, (r, own, _)) in all.iter().enumerate() {
                        let Some(r) = r else { continue };
                        let n = r
                            .equivocations_accepted
                            .saturating_sub(baseline.get(i).copied().unwrap_or(0));
                        if n > 0 {
                            accepted.push(format!("node-{i} {n}"));
                        }
                        let s = r
                            .evidence
                            .iter()
                            // a liar hears its own second blocks back: that is not seeing one
                            .filter(|e| {
                                e.kind == "equivocation"
                                    && e.at_ms >= started
                                    && e.leader.as_ref().is_none_or(|l| Some(l) != own.as_ref())
                            })
                            .count();
                        if s > 0 {
                            seen.push(format!("node-{i} {s}"));
                        }
                    }
                    let seen_text = if seen.is_empty() {
                        "none seen".to_owned()
                    } else {
                        format!("seen: {}", seen.join(", "))
                    };
                    let evidence = serde_json::json!({"accepted": accepted, "seen": seen});
                    if accepted.is_empty() {
                        Verdict::pass(
                            format!("no node accepted an equivocation ({seen_text})"),
                            evidence,
                        )
                    } else {
                        Verdict::fail(
                            format!(
                                "equivocations accepted (second blocks adopted as tip by the tie-break): {} ({seen_text})",
                                accepted.join(", ")
                            ),
                            evidence,
                        )
                    }
                }
                EvidenceCheck::Equivocation => {
                    // leader -> slot -> (block ids, observers)
                    let mut lies: BTreeMap<String, BTreeMap<u64, SlotLie>> = BTreeMap::new();
                    for (i, (r, _, _)) in all.iter().enumerate() {
                        let Some(r) = r else { continue };
                        for e in r.evidence.iter().filter(|e| e.kind == "equivocation") {
                            let (Some(leader), Some(slot)) = (&e.leader, e.slot) else {
                                continue;
                            };
                            let from = judged_from(ctx, keys.get(leader).copied(), started, settle);
                            // a lie told before the revert may arrive after it (by sync)
                            let slot_ms = genesis.map(|g| g + slot * slot_len);
                            if e.at_ms < from || slot_ms.is_some_and(|t| t < from) {
                                continue;
                            }
                            let entry = lies
                                .entry(leader.clone())
                                .or_default()
                                .entry(slot)
                                .or_default();
                            entry.0.extend(e.ids.iter().cloned());
                            entry.1.insert(i);
                        }
                    }
                    culprits(
                        &lies
                            .iter()
                            .map(|(leader, slots)| {
                                // the liar hears its own second block back: not a witness
                                let observers: BTreeSet<usize> = slots
                                    .values()
                                    .flat_map(|(_, o)| o.iter().copied())
                                    .filter(|&o| keys.get(leader) != Some(&o))
                                    .collect();
                                let (slot, (ids, _)) =
                                    slots.iter().next().expect("a leader has a slot");
                                let ids: Vec<&str> = ids.iter().map(|s| short(s)).collect();
                                (
                                    who(leader, &keys),
                                    format!(
                                        "equivocated in {} slot{} (first: slot {slot}, blocks {})",
                                        slots.len(),
                                        if slots.len() == 1 { "" } else { "s" },
                                        ids.join(" / ")
                                    ),
                                    observers,
                                )
                            })
                            .collect::<Vec<_>>(),
                        "no leader signed two blocks for one slot",
                    )
                }
                EvidenceCheck::InvalidTransactions => {
                    // sender -> (count, observers, a reason)
                    let mut lies: BTreeMap<String, (usize, BTreeSet<usize>, String)> =
                        BTreeMap::new();
                    for (i, (r, _, _)) in all.iter().enumerate() {
                        let Some(r) = r else { continue };
                        for e in r.evidence.iter().filter(|e| e.kind == "invalid_tx") {
                            let Some(peer) = &e.peer else { continue };
                            let from = judged_from(ctx, keys.get(peer).copied(), started, settle);
                            if e.at_ms < from {
                                continue;
                            }
                            let entry = lies.entry(peer.clone()).or_default();
                            entry.0 += 1;
                            entry.1.insert(i);
                            if entry.2.is_empty() {
                                entry.2 = e.detail.clone();
                            }
                        }
                    }
                    culprits(
                        &lies
                            .iter()
                            .map(|(peer, (n, observers, why))| {
                                (
                                    who(peer, &keys),
                                    format!("gossiped {n} invalid transactions ({why})"),
                                    observers.clone(),
                                )
                            })
                            .collect::<Vec<_>>(),
                        "no node gossiped an invalid transaction",
                    )
                }
            };
            let mut verdict = verdict;
            if !unread.is_empty() {
                verdict
                    .message
                    .push_str(&format!(" (not read: {})", unread.join("; ")));
            }
            Ok(verdict)
        })
    }
}

/// The verdict over `(culprit, what it did, who saw it)`.
fn culprits(found: &[(String, String, BTreeSet<usize>)], clean: &str) -> Verdict {
    if found.is_empty() {
        return Verdict::pass(clean, serde_json::json!({"culprits": []}));
    }
    let lines: Vec<String> = found
        .iter()
        .map(|(who, what, seen)| {
            let seen: Vec<String> = seen.iter().map(|i| format!("node-{i}")).collect();
            format!("{who} {what}, seen by {}", seen.join(", "))
        })
        .collect();
    Verdict::fail(
        lines.join("; "),
        serde_json::json!({"culprits": found.iter().map(|(w, _, _)| w).collect::<Vec<_>>()}),
    )
}

impl crate::scenario::ScenarioBuilder {
    /// Fails when a node adopted the second block of an equivocation as its tip by the
    /// tie-break (an honest reference node never does; `testing.accept_equivocations` makes one
    /// that does). Needs the reference node's testing surface.
    pub fn expect_no_equivocation_accepted(self) -> Self {
        self.evidence(EvidenceCheck::EquivocationAccepted)
    }

    /// Fails when any leader signed two blocks for one slot, naming it and who saw it.
    pub fn expect_no_equivocation(self) -> Self {
        self.evidence(EvidenceCheck::Equivocation)
    }

    /// Fails when any node gossiped transactions whose signature does not verify, naming it.
    pub fn expect_no_invalid_transactions(self) -> Self {
        self.evidence(EvidenceCheck::InvalidTransactions)
    }

    fn evidence(self, check: EvidenceCheck) -> Self {
        self.require_feature(crate::nodekind::KindFeature::Byzantine)
            .with_expectation(std::sync::Arc::new(EvidenceExpectation::new(check)))
    }
}
