//! The chaos workload: plans the fault timeline from the run seed at the start
//! of the run, then plays it through the testnet's node-control and fault
//! methods (so every network fault lands in the fault log, every control
//! action in the run's events), reverting whatever is still in force when the
//! run stops it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan::{PlannedStep, plan_on};
use super::spec::{ChaosAction, ChaosBuilder, ChaosStream};
use crate::context::RunContext;
use crate::deadline::Deadline;
use crate::deploy::Testnet;
use crate::deploy::node_faults::NodeFault;
use crate::error::Chain;
use crate::links::{Fault, FaultId};
use crate::report::RunEvent;
use crate::workload::{Workload, WorkloadError};

/// One executed (or failed) action of the chaos workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChaosRecord {
    /// Planned offset from the start of the run.
    #[serde(with = "crate::report::duration_ms")]
    pub planned_at: Duration,
    /// When it actually happened (after the run started).
    #[serde(with = "crate::report::duration_ms")]
    pub at: Duration,
    pub stream: usize,
    /// What was done, e.g. `restart node-2` or `revert partition [[0], [1, 2]]`.
    pub action: String,
    /// Highest chain height seen on the block feed when it happened.
    pub height: Option<u64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Plays a [`ChaosBuilder`]'s streams during a run. Build it with
/// [`ChaosWorkload::new`] or the scenario extension `chaos_with`.
pub struct ChaosWorkload {
    builder: ChaosBuilder,
    planned: Arc<Mutex<Vec<PlannedStep>>>,
    log: Arc<Mutex<Vec<ChaosRecord>>>,
}

impl std::fmt::Debug for ChaosWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosWorkload")
            .field("builder", &self.builder)
            .finish_non_exhaustive()
    }
}

impl ChaosWorkload {
    /// A workload playing `builder`'s streams (validated when the run starts;
    /// call [`ChaosBuilder::validate`] to fail earlier).
    pub fn new(builder: ChaosBuilder) -> Self {
        Self {
            builder,
            planned: Arc::default(),
            log: Arc::default(),
        }
    }

    /// The configuration.
    pub fn builder(&self) -> &ChaosBuilder {
        &self.builder
    }

    /// The timeline planned by the last run (empty before a run).
    pub fn planned(&self) -> Vec<PlannedStep> {
        self.planned.lock().expect("plan lock").clone()
    }

    /// What the last run did, in order.
    pub fn log(&self) -> Vec<ChaosRecord> {
        self.log.lock().expect("chaos log lock").clone()
    }
}

impl Workload for ChaosWorkload {
    fn name(&self) -> String {
        self.builder.name.clone()
    }

    fn is_chaos(&self) -> bool {
        true
    }

    fn check_plan(
        &self,
        topology: &crate::topology::Topology,
        run: Duration,
    ) -> Result<(), String> {
        plan_on(
            &self.builder,
            0,
            topology.node_count(),
            &topology.edges,
            run,
        )
        .map(|_| ())
        .map_err(|e| e.chain())
    }

    /// The executed timeline: each step at the time it was applied and held for as long as it
    /// was (its revert is due at its planned time plus its hold, so a late start holds it
    /// shorter); steps never applied as planned.
    fn chaos_plan(&self) -> Vec<PlannedStep> {
        let log = self.log.lock().expect("chaos log lock");
        self.planned()
            .into_iter()
            .map(|mut s| {
                if let Some(r) = log
                    .iter()
                    .find(|r| r.stream == s.stream && r.planned_at == s.at && r.error.is_none())
                {
                    let due = s.hold.map(|h| s.at + h);
                    s.at = r.at;
                    s.hold = due.map(|d| d.saturating_sub(r.at));
                }
                s
            })
            .collect()
    }

    fn uses(&self) -> Vec<crate::deploy::FaultKind> {
        use super::spec::RestartMode;
        use crate::deploy::FaultKind as K;
        let mut out = Vec::new();
        for stream in &self.builder.streams {
            match stream {
                ChaosStream::Restart(r) => out.push(match r.mode {
                    RestartMode::Graceful => K::Restart,
                    RestartMode::Kill => K::Kill,
                }),
                ChaosStream::Partition(_) => out.push(K::Partition),
                ChaosStream::Degrade(d) => {
                    if d.latency.is_some() {
                        out.push(K::Latency);
                    }
                    if d.loss.is_some() {
                        out.push(K::Loss);
                    }
                }
                ChaosStream::Pause(_) => out.push(K::Pause),
                ChaosStream::Clock(_) => out.push(K::Clock),
                ChaosStream::Byzantine(_) => out.push(K::Byzantine),
                ChaosStream::Disk(d) => {
                    out.push(K::Disk);
                    if matches!(d.mode, super::disk::DiskMode::LoseUnflushed { .. }) {
                        out.push(K::Kill);
                    }
                }
                ChaosStream::Schedule(steps) => {
                    out.extend(steps.iter().filter_map(|s| match &s.action {
                        ChaosAction::Restart(_) => Some(K::Restart),
                        ChaosAction::Stop(_) => Some(K::Stop),
                        ChaosAction::Kill(_) => Some(K::Kill),
                        ChaosAction::Pause(_) => Some(K::Pause),
                        ChaosAction::Partition(_) | ChaosAction::Isolate(_) => Some(K::Partition),
                        ChaosAction::Latency { .. } => Some(K::Latency),
                        ChaosAction::Loss { .. } => Some(K::Loss),
                        ChaosAction::Clock { .. } => Some(K::Clock),
                        ChaosAction::Byzantine { .. } => Some(K::Byzantine),
                        ChaosAction::Honest(_) => Some(K::Byzantine),
                        ChaosAction::DiskFull(_) | ChaosAction::LoseUnflushed { .. } => {
                            Some(K::Disk)
                        }
                        ChaosAction::Start(_) | ChaosAction::Resume(_) | ChaosAction::Heal => None,
                    }));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn planned_partitions(&self, run: Duration) -> Vec<(Option<Vec<Vec<usize>>>, Duration)> {
        let mut out = Vec::new();
        for stream in &self.builder.streams {
            match stream {
                ChaosStream::Partition(p) => out.push((p.groups.clone(), p.duration.max)),
                ChaosStream::Schedule(steps) => {
                    for (i, step) in steps.iter().enumerate() {
                        let groups = match &step.action {
                            ChaosAction::Partition(g) => g.clone(),
                            ChaosAction::Isolate(n) => vec![vec![*n]],
                            _ => continue,
                        };
                        // held for `hold`, else until the next heal of the schedule or the end
                        let until = step.hold.map(|h| step.at + h).unwrap_or_else(|| {
                            steps[i + 1..]
                                .iter()
                                .filter(|s| s.at >= step.at && s.action == ChaosAction::Heal)
                                .map(|s| s.at)
                                .min()
                                .unwrap_or(run)
                        });
                        out.push((Some(groups), until.saturating_sub(step.at)));
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn run(
        &self,
        ctx: RunContext,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), WorkloadError>> {
        let builder = self.builder.clone();
        let planned = self.planned.clone();
        let log = self.log.clone();
        Box::pin(async move { drive(builder, ctx, stop, planned, log).await })
    }
}

struct Exec {
    name: String,
    ctx: RunContext,
    net: Arc<dyn Testnet>,
    start: Instant,
    log: Arc<Mutex<Vec<ChaosRecord>>>,
    errors: Mutex<Vec<String>>,
    stop: CancellationToken,
}

impl Exec {
    fn height(&self) -> Option<u64> {
        self.ctx
            .block_feed()
            .stats()
            .heights
            .into_iter()
            .flatten()
            .max()
    }

    fn record(&self, step: &PlannedStep, action: String, error: Option<String>) {
        let at = self.start.elapsed();
        let height = self.height();
        let mut message = format!(
            "{}: {action} (planned {:.3}s, at {:.3}s",
            self.name,
            step.planned_secs(),
            at.as_secs_f64()
        );
        if let Some(h) = height {
            message.push_str(&format!(", height {h}"));
        }
        message.push(')');
        if let Some(e) = &error {
            message.push_str(&format!(" failed: {e}"));
            // a failure after the run stopped us is teardown racing us, not a finding
            if !self.stop.is_cancelled() {
                self.errors
                    .lock()
                    .expect("errors lock")
                    .push(message.clone());
            }
        }
        self.ctx.emit(RunEvent::Note { message });
        self.log.lock().expect("chaos log lock").push(ChaosRecord {
            planned_at: step.at,
            at,
            stream: step.stream,
            action,
            height,
            error,
        });
    }

    fn note(&self, step: &PlannedStep) -> String {
        let mut n = format!("{} planned {:.3}s", self.name, step.planned_secs());
        if let Some(h) = self.height() {
            n.push_str(&format!(", height {h}"));
        }
        n
    }

    /// Applies the action; returns the fault id of a network fault.
    async fn apply(&self, step: &PlannedStep) -> Result<Option<FaultId>, String> {
        let net = &self.net;
        let fault = |f: Fault| async {
            net.apply_fault(f, Some(self.note(step)))
                .await
                .map(Some)
                .map_err(|e| e.chain())
        };
        let r = match &step.action {
            ChaosAction::Restart(i) => net.restart(*i).await.map(|_| None),
            ChaosAction::Stop(i) => net.stop(*i).await.map(|_| None),
            ChaosAction::Kill(i) => net.kill(*i).await.map(|_| None),
            ChaosAction::Start(i) => net.start(*i).await.map(|_| None),
            ChaosAction::Pause(i) => net.pause(*i).await.map(|_| None),
            ChaosAction::Resume(i) => net.resume(*i).await.map(|_| None),
            // one fault model: heal reverts the clock and disk faults too
            ChaosAction::Heal => match net.revert_node_faults().await {
                Ok(_) => net.heal().await.map(|_| None),
                Err(e) => Err(e),
            },
            ChaosAction::Clock { node, offset_ms } => {
                net.set_clock(*node, *offset_ms, 0).await.map(|_| None)
            }
            ChaosAction::Honest(i) => net
                .set_byzantine(*i, Default::default())
                .await
                .map(|_| None),
            ChaosAction::Byzantine { node, behaviour } => net
                .set_byzantine(
                    *node,
                    crate::deploy::byzantine::Behaviour::set_of(&[*behaviour]),
                )
                .await
                .map(|_| None),
            ChaosAction::DiskFull(node) => net
                .set_node_fault(*node, NodeFault::DiskFull { full: true })
                .await
                .map(|_| None),
            ChaosAction::LoseUnflushed { node, blocks } => net
                .set_node_fault(*node, NodeFault::Unflushed { blocks: *blocks })
                .await
                .map(|_| None),
            ChaosAction::Partition(g) => return fault(Fault::Partition(g.clone())).await,
            ChaosAction::Isolate(i) => return fault(Fault::Isolate(*i)).await,
            ChaosAction::Latency {
                links,
                delay,
                jitter,
            } => {
                return fault(Fault::Latency {
                    links: links.clone(),
                    delay: *delay,
                    jitter: *jitter,
                })
                .await;
            }
            ChaosAction::Loss { links, probability } => {
                return fault(Fault::Loss {
                    links: links.clone(),
                    probability: *probability,
                })
                .await;
            }
        };
        r.map_err(|e| e.chain())
    }

    /// Undoes a held action. Returns the description, or None if nothing to do.
    async fn revert(
        &self,
        step: &PlannedStep,
        id: Option<FaultId>,
    ) -> Option<(String, Result<(), String>)> {
        let net = &self.net;
        match (&step.action, id) {
            (ChaosAction::Stop(i) | ChaosAction::Kill(i), _) => Some((
                format!("start node-{i}"),
                net.start(*i).await.map_err(|e| e.chain()),
            )),
            (ChaosAction::Pause(i), _) => Some((
                format!("resume node-{i}"),
                net.resume(*i).await.map_err(|e| e.chain()),
            )),
            (ChaosAction::Clock { node, .. }, _) => Some((
                format!("clock node-{node} reset"),
                net.set_clock(*node, 0, 0).await.map_err(|e| e.chain()),
            )),
            (ChaosAction::Byzantine { node, .. }, _) => Some((
                format!("byzantine node-{node} honest"),
                net.set_byzantine(*node, Default::default())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.chain()),
            )),
            (ChaosAction::DiskFull(node), _) => Some((
                format!("disk node-{node} ok"),
                net.set_node_fault(*node, NodeFault::DiskFull { full: false })
                    .await
                    .map_err(|e| e.chain()),
            )),
            (ChaosAction::LoseUnflushed { node, .. }, _) => {
                // the kill loses the held-back writes; the start applies the fault again
                // (it is in force), so the writes are made durable after it
                let r = async {
                    net.kill(*node).await?;
                    net.start(*node).await?;
                    net.set_node_fault(*node, NodeFault::Unflushed { blocks: 0 })
                        .await
                };
                Some((
                    format!("kill node-{node} (its unflushed writes lost), start it, flush"),
                    r.await.map_err(|e| e.chain()),
                ))
            }
            (_, Some(id)) => {
                // a `heal` elsewhere may have reverted it already
                if !net.active_faults().iter().any(|f| f.id == id) {
                    return None;
                }
                Some((
                    format!("revert {}", step.action),
                    net.revert_fault(id).await.map_err(|e| e.chain()),
                ))
            }
            _ => None,
        }
    }

    /// Waits until node `i` is within k of the highest node, or fails naming it.
    async fn catch_up(&self, step: &PlannedStep, i: usize, bound: Deadline) {
        let params = self.net.topology().params.clone();
        let within = bound.resolve(&params);
        let lag = params.security_param;
        let poll = (params.slot_duration / 2).max(Duration::from_millis(50));
        let began = Instant::now();
        let mut last;
        loop {
            let clients = self.net.clients();
            let mut heights = Vec::new();
            for c in clients.iter() {
                let c = c.clone().with_timeout(Duration::from_secs(1));
                heights.push(c.consensus_info().await.ok().map(|x| x.height));
            }
            let max = heights.iter().flatten().max().copied().unwrap_or(0);
            match heights.get(i).copied().flatten() {
                Some(h) if h + lag >= max => {
                    self.ctx.emit(RunEvent::Note {
                        message: format!(
                            "{}: node-{i} caught up in {:.1}s (height {h}, highest {max})",
                            self.name,
                            began.elapsed().as_secs_f64()
                        ),
                    });
                    return;
                }
                Some(h) => last = format!("height {h}, highest {max} (lag bound {lag})"),
                None => last = "not answering".to_owned(),
            }
            if began.elapsed() >= within {
                self.record(
                    step,
                    format!("catch-up of node-{i}"),
                    Some(format!(
                        "node-{i} did not catch up within {} of its restart: {last}",
                        bound.describe(&params)
                    )),
                );
                return;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    async fn run_stream(&self, steps: Vec<PlannedStep>, catch_up: Option<Deadline>) {
        // catch-up checks run alongside the stream, not after it
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(PlannedStep, usize)>();
        let checks = async {
            let mut running = futures::stream::FuturesUnordered::new();
            loop {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some((step, i)) => {
                            if let Some(within) = catch_up {
                                running.push(async move { self.catch_up(&step, i, within).await });
                            }
                        }
                        None => break,
                    },
                    Some(()) = futures::StreamExt::next(&mut running), if !running.is_empty() => {}
                }
            }
            while futures::StreamExt::next(&mut running).await.is_some() {}
        };
        let play = async move {
            // steps planned for the same instant (latency and loss of one
            // degradation) are applied together and reverted together
            let mut i = 0;
            while i < steps.len() {
                let at = steps[i].at;
                let mut j = i;
                while j < steps.len() && steps[j].at == at {
                    j += 1;
                }
                let batch = &steps[i..j];
                i = j;
                tokio::select! {
                    _ = self.stop.cancelled() => break,
                    _ = tokio::time::sleep_until(self.start + at) => {}
                }
                let mut applied = Vec::new();
                for step in batch {
                    match self.apply(step).await {
                        Ok(id) => {
                            self.record(step, step.action.to_string(), None);
                            applied.push((step, id));
                        }
                        Err(e) => self.record(step, step.action.to_string(), Some(e)),
                    }
                }
                if let Some(hold) = applied.iter().filter_map(|(s, _)| s.hold).max() {
                    tokio::select! {
                        _ = self.stop.cancelled() => {}
                        _ = tokio::time::sleep_until(self.start + at + hold) => {}
                    }
                    for (step, id) in &applied {
                        if let Some((what, r)) = self.revert(step, *id).await {
                            self.record(step, what, r.err());
                        }
                    }
                }
                if !self.stop.is_cancelled() {
                    for (step, _) in &applied {
                        if let Some(n) = step.action.node() {
                            let _ = tx.send(((*step).clone(), n));
                        }
                    }
                }
            }
            drop(tx);
        };
        tokio::join!(play, checks);
    }
}

impl PlannedStep {
    fn planned_secs(&self) -> f64 {
        self.at.as_secs_f64()
    }
}

async fn drive(
    builder: ChaosBuilder,
    ctx: RunContext,
    stop: CancellationToken,
    planned: Arc<Mutex<Vec<PlannedStep>>>,
    log: Arc<Mutex<Vec<ChaosRecord>>>,
) -> Result<(), WorkloadError> {
    let start = Instant::now();
    let net = ctx.testnet();
    let steps = plan_on(
        &builder,
        ctx.seed(),
        net.node_count(),
        &net.topology().edges,
        ctx.run_duration(),
    )
    .map_err(|e| WorkloadError::new(format!("invalid chaos configuration: {e}")))?;
    *planned.lock().expect("plan lock") = steps.clone();
    log.lock().expect("chaos log lock").clear();
    ctx.emit(RunEvent::Note {
        message: format!(
            "{}: {} actions planned from seed {}{}",
            builder.name,
            steps.len(),
            ctx.seed(),
            steps
                .first()
                .map(|s| format!(", first: {s}"))
                .unwrap_or_default()
        ),
    });
    let exec = Exec {
        name: builder.name.clone(),
        ctx: ctx.clone(),
        net,
        start,
        log,
        errors: Mutex::new(Vec::new()),
        stop,
    };
    let streams = builder.streams.iter().enumerate().flat_map(|(si, s)| {
        let mine: Vec<PlannedStep> = steps.iter().filter(|p| p.stream == si).cloned().collect();
        match s {
            // a fixed schedule's steps keep their times: each instant plays on its own, so one
            // step's hold never delays the next
            ChaosStream::Schedule(_) => {
                let mut instants: Vec<Vec<PlannedStep>> = Vec::new();
                for step in mine {
                    match instants.last_mut() {
                        Some(last) if last[0].at == step.at => last.push(step),
                        _ => instants.push(vec![step]),
                    }
                }
                instants
                    .into_iter()
                    .map(|batch| exec.run_stream(batch, None))
                    .collect::<Vec<_>>()
            }
            ChaosStream::Restart(r) => vec![exec.run_stream(mine, r.catch_up_within)],
            _ => vec![exec.run_stream(mine, None)],
        }
    });
    futures::future::join_all(streams).await;
    let errors = exec.errors.into_inner().expect("errors lock");
    match errors.len() {
        0 => Ok(()),
        1 => Err(WorkloadError::new(errors[0].clone())),
        n => Err(WorkloadError::new(format!(
            "{n} chaos actions failed: {}",
            errors.join("; ")
        ))),
    }
}
