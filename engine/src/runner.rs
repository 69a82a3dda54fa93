//! The runner: deploy, wait ready, capture, run workloads for the duration,
//! stop them, cool down, evaluate every expectation, and ALWAYS tear down
//! (pass, fail, infrastructure error, cancel, panic in a workload).
//! It never prints; it emits [`RunEvent`]s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::blockfeed::BlockFeed;
use crate::context::RunContext;
use crate::deploy::{DeployError, DeployOptions, Deployer, KeepRunDir, Testnet};
use crate::error::Chain;
use crate::error::ErrorChain;
use crate::expectation::Verdict;
use crate::report::{
    EventSink, NamedVerdict, Outcome, Reporter, RunEvent, RunReport, TimelineEntry, WorkloadFailure,
};
use crate::scenario::Scenario;

/// Settings of one run.
#[derive(Clone)]
pub struct RunOptions {
    /// When the run dir is kept.
    pub keep: KeepRunDir,
    /// Cancels the run (Ctrl-C): teardown still happens, outcome Interrupted.
    pub cancel: CancellationToken,
    /// Receivers of run events.
    pub reporters: Vec<Arc<dyn Reporter>>,
    /// Readiness deadline.
    pub ready_timeout: Duration,
    /// How often Progress events are emitted.
    pub progress_interval: Duration,
    /// Longest time one expectation may take to evaluate.
    pub evaluate_timeout: Duration,
    /// Tear the testnet down at the end (false leaves it up for a REPL).
    pub teardown: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            keep: KeepRunDir::default(),
            cancel: CancellationToken::new(),
            reporters: Vec::new(),
            ready_timeout: Duration::from_secs(30),
            progress_interval: Duration::from_secs(1),
            evaluate_timeout: Duration::from_secs(120),
            teardown: true,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("keep", &self.keep)
            .field("ready_timeout", &self.ready_timeout)
            .field("teardown", &self.teardown)
            .finish_non_exhaustive()
    }
}

/// Records every event as a timeline entry.
struct Timeline {
    start: Instant,
    entries: Mutex<Vec<TimelineEntry>>,
}

impl Reporter for Timeline {
    fn on_event(&self, event: &RunEvent) {
        let what = match event {
            RunEvent::Progress { .. } | RunEvent::Finished { .. } | RunEvent::NodeReady { .. } => {
                return;
            }
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(TimelineEntry {
                at: self.start.elapsed(),
                what,
            });
    }
}

/// Deploys the scenario's topology with `deployer` and runs it.
pub async fn run_scenario(
    scenario: &Scenario,
    deployer: &dyn Deployer,
    opts: RunOptions,
) -> RunReport {
    let started = Instant::now();
    let timeline = Arc::new(Timeline {
        start: started,
        entries: Mutex::new(Vec::new()),
    });
    let mut reporters = opts.reporters.clone();
    reporters.push(timeline.clone());
    let sink = EventSink::new(reporters);
    let run_id = crate::deploy::new_run_id();
    let mut report = RunReport::empty(scenario.seed(), Outcome::Passed);
    report.run_id = run_id.clone();
    report.deployer = deployer.name().to_owned();
    report.nodes = scenario.topology().node_count();

    let dopts = DeployOptions {
        ready_timeout: opts.ready_timeout,
        wait_ready: true,
        required: scenario.capabilities.clone(),
        uses: scenario.uses.clone(),
        required_features: scenario.required_features.clone(),
        events: Some(sink.clone()),
        keep_on_deploy_failure: opts.keep.keep_for(&Outcome::Error(ErrorChain::message(""))),
        run_id: Some(run_id),
        monitoring: crate::metrics::Monitoring::from_env().overridden_by(&scenario.monitoring),
    };
    let deployed = tokio::select! {
        _ = opts.cancel.cancelled() => Err(DeployError::Interrupted),
        r = deployer.deploy(scenario.topology(), &dopts) => r,
    };
    report.timings.deploy = started.elapsed();
    let testnet = match deployed {
        Ok(t) => t,
        Err(e) => {
            report.outcome = match e {
                DeployError::Interrupted => Outcome::Interrupted,
                other => Outcome::Error(ErrorChain::of(&other).within("failed to deploy")),
            };
            return finish(report, &sink, &timeline, started);
        }
    };
    run_deployed(testnet, scenario, opts, report, sink, timeline, started).await
}

/// Runs a scenario on an already deployed testnet (the explicit
/// `deployer.deploy(plan)` then `runner.run(plan)` form).
#[derive(Clone)]
pub struct Runner {
    testnet: Arc<dyn Testnet>,
}

impl Runner {
    /// A runner over a deployed testnet.
    pub fn new(testnet: Arc<dyn Testnet>) -> Self {
        Self { testnet }
    }

    /// The testnet.
    pub fn testnet(&self) -> &Arc<dyn Testnet> {
        &self.testnet
    }

    /// Runs the scenario (the testnet is torn down at the end unless `opts.teardown` is false).
    pub async fn run(&self, scenario: &Scenario, opts: RunOptions) -> RunReport {
        let started = Instant::now();
        let timeline = Arc::new(Timeline {
            start: started,
            entries: Mutex::new(Vec::new()),
        });
        let mut reporters = opts.reporters.clone();
        reporters.push(timeline.clone());
        let sink = EventSink::new(reporters);
        let mut report = RunReport::empty(scenario.seed(), Outcome::Passed);
        report.run_id = self.testnet.run_id().to_owned();
        report.deployer = self.testnet.deployer_name().to_owned();
        report.nodes = self.testnet.node_count();
        run_deployed(
            self.testnet.clone(),
            scenario,
            opts,
            report,
            sink,
            timeline,
            started,
        )
        .await
    }
}

async fn run_deployed(
    testnet: Arc<dyn Testnet>,
    scenario: &Scenario,
    opts: RunOptions,
    mut report: RunReport,
    sink: EventSink,
    timeline: Arc<Timeline>,
    started: Instant,
) -> RunReport {
    report.run_dir = testnet.run_dir();
    let feed_cancel = CancellationToken::new();
    let feed = BlockFeed::start_with(
        &testnet.clients().0,
        feed_cancel.clone(),
        crate::blockfeed::FeedConfig {
            mode: scenario.feed_mode,
            slot_clock: testnet
                .genesis_time_ms()
                .map(|g| (g, testnet.topology().params.slot_duration)),
            ..Default::default()
        },
    );
    // workloads, triggers and expectations see only what the plan enabled
    let ctx = RunContext::new(
        crate::deploy::granted::restrict(testnet.clone(), &scenario.capabilities),
        feed.clone(),
        scenario.seed(),
        scenario.duration(),
        sink.clone(),
    );
    ctx.set_monitoring(&scenario.monitoring);
    // nodes added at run time join the feed
    {
        let testnet = testnet.clone();
        let feed = feed.clone();
        let cancel = feed_cancel.clone();
        let mut followed = testnet.node_count();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                let clients = testnet.clients();
                while followed < clients.len() {
                    feed.follow(clients.0[followed].clone());
                    followed += 1;
                }
            }
        });
    }

    // recovery is measured through the cooldown and the evaluation, when the last heals settle
    let recovery_stop = CancellationToken::new();
    let recovery = tokio::spawn(crate::recovery::monitor(
        testnet.clone(),
        feed.clone(),
        ctx.recovery().clone(),
        recovery_stop.clone(),
    ));
    let interrupted = run_phases(&ctx, scenario, &opts, &mut report, &sink).await;
    ctx.run_over().cancel();
    recovery_stop.cancel();
    let _ = recovery.await;

    report.txs_submitted = ctx.tx_log().submitted();
    let stats = feed.stats();
    let latencies: Vec<u64> = ctx
        .tx_log()
        .records()
        .iter()
        .filter_map(|r| {
            feed.tx_included(&r.id)
                .map(|b| b.first_seen_ms.saturating_sub(r.submitted_unix_ms))
        })
        .collect();
    report.txs_included = latencies.len() as u64;
    report.inclusion_latency = crate::report::LatencyStats::from_samples(latencies.clone());
    report.recovery = ctx.recovery().snapshot().summarised(&latencies);
    report.inclusion_latencies_ms = latencies;
    report.blocks_seen = stats.blocks_seen;
    report.feed_delay_median_ms = stats.delay_median_ms;
    report.feed_modes = stats.modes.clone();
    report.api_dialect = testnet
        .clients()
        .iter()
        .find_map(|c| c.known_dialect())
        .map(|d| d.to_string());
    report.final_heights = stats.heights;
    report.fault_log = testnet.fault_log();
    report.nodes = testnet.node_count();
    report.duration = Some(scenario.duration());
    report.failed_at = ctx.failed_at();
    report.chaos_plan = scenario
        .workloads
        .iter()
        .flat_map(|w| w.chaos_plan())
        .collect();
    report.chaos_plan.sort_by_key(|s| s.at);
    feed_cancel.cancel();
    if let Outcome::Passed = report.outcome {
        if interrupted {
            report.outcome = Outcome::Interrupted;
        } else if report.verdicts.iter().any(|v| !v.verdict.passed)
            || !report.workload_errors.is_empty()
        {
            report.outcome = Outcome::Failed;
        }
    }

    if opts.teardown {
        // faults are reverted first so the log records it
        let _ = testnet.revert_node_faults().await;
        let _ = testnet.heal().await;
        crate::deploy::byzantine::make_honest(&*testnet).await;
        report.fault_log = testnet.fault_log();
        sink.emit(RunEvent::TeardownStarted);
        let t = Instant::now();
        let keep = opts.keep.keep_for(&report.outcome);
        if keep && let Some(dir) = testnet.run_dir() {
            let reason = opts.keep.reason_for(&report.outcome);
            crate::deploy::mark_kept(&dir, testnet.run_id(), reason, true);
        }
        match testnet.teardown(keep).await {
            Ok(s) => {
                report.kept = s.kept;
                sink.emit(RunEvent::TeardownFinished {
                    run_dir: s.run_dir,
                    kept: s.kept,
                });
            }
            Err(e) => {
                report.kept = report.run_dir.as_ref().is_some_and(|d| d.exists());
                if matches!(report.outcome, Outcome::Passed | Outcome::Failed) {
                    report.outcome = Outcome::Error(ErrorChain::of(&e));
                }
            }
        }
        report.timings.teardown = t.elapsed();
    } else {
        report.kept = true;
    }
    finish(report, &sink, &timeline, started)
}

/// Capture, workloads, cooldown, evaluation. Returns true if cancelled.
async fn run_phases(
    ctx: &RunContext,
    scenario: &Scenario,
    opts: &RunOptions,
    report: &mut RunReport,
    sink: &EventSink,
) -> bool {
    let cancel = &opts.cancel;
    // capture baselines
    let mut capture_errors = Vec::new();
    for e in &scenario.expectations {
        if let Err(err) = e.start_capture(ctx).await {
            capture_errors.push((e.name(), err.to_string()));
        }
    }
    ctx.mark_start();
    sink.emit(RunEvent::RunStarted {
        duration: scenario.duration(),
        workloads: scenario.workload_names(),
        expectations: scenario.expectation_names(),
    });
    let run_started = Instant::now();
    let stop = CancellationToken::new();
    // a workload that fails (or panics) stops the run at once, like a broken invariant,
    // unless the plan opted out
    let workload_failed = CancellationToken::new();
    let mut handles = Vec::new();
    for w in &scenario.workloads {
        let name = w.name();
        let fut = w.run(ctx.clone(), stop.clone());
        let failed = workload_failed.clone();
        let fail_fast = scenario.fail_fast;
        let guarded = async move {
            use futures::FutureExt;
            match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    if fail_fast {
                        failed.cancel();
                    }
                    Err(e)
                }
                Err(panic) => {
                    if fail_fast {
                        failed.cancel();
                    }
                    std::panic::resume_unwind(panic)
                }
            }
        };
        handles.push((name, tokio::spawn(guarded)));
    }
    // run for the duration, emitting progress
    let deadline = tokio::time::Instant::now() + scenario.duration();
    let mut interrupted = false;
    let aborted = ctx.aborted();
    let mut tick = tokio::time::interval(opts.progress_interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => { interrupted = true; break; }
            _ = aborted.cancelled() => break,
            _ = workload_failed.cancelled() => break,
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tick.tick() => {
                let st = ctx.block_feed().stats();
                sink.emit(RunEvent::Progress {
                    elapsed: ctx.elapsed(),
                    heights: st.heights,
                    txs_submitted: ctx.tx_log().submitted(),
                    txs_included: st.txs_seen,
                });
            }
        }
    }
    stop.cancel();
    for (name, h) in handles {
        let abort = h.abort_handle();
        let res = tokio::time::timeout(Duration::from_secs(10), h).await;
        let err = match res {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some(e.chain()),
            Ok(Err(j)) if j.is_panic() => Some(format!("panicked: {}", panic_message(j))),
            Ok(Err(_)) => Some("was cancelled".to_owned()),
            Err(_) => {
                abort.abort();
                Some("did not stop within 10s of the end of the run".to_owned())
            }
        };
        if let Some(error) = err {
            sink.emit(RunEvent::WorkloadFailed {
                name: name.clone(),
                error: error.clone(),
            });
            report.workload_errors.push(WorkloadFailure { name, error });
        }
    }
    report.timings.run = run_started.elapsed();
    if interrupted {
        return true;
    }
    if record_early_failure(ctx, report, sink) {
        return false;
    }
    if workload_failed.is_cancelled() {
        // the run stopped early: its expectations were not judged
        return false;
    }
    // cooldown: let in-flight transactions land
    let cd = scenario.cooldown();
    sink.emit(RunEvent::CooldownStarted { cooldown: cd });
    let t = Instant::now();
    tokio::select! {
        _ = cancel.cancelled() => return true,
        _ = aborted.cancelled() => {}
        _ = tokio::time::sleep(cd) => {}
    }
    report.timings.cooldown = t.elapsed();
    if record_early_failure(ctx, report, sink) {
        return false;
    }
    // evaluate every expectation concurrently
    let t = Instant::now();
    let evals = scenario.expectations.iter().map(|e| {
        let e = e.clone();
        let ctx = ctx.clone();
        let limit = opts.evaluate_timeout;
        async move {
            let name = e.name();
            let h = tokio::spawn(async move { e.evaluate(&ctx).await });
            let verdict = match tokio::time::timeout(limit, h).await {
                Ok(Ok(Ok(v))) => v,
                Ok(Ok(Err(err))) => Verdict::fail(
                    format!("could not evaluate: {err}"),
                    serde_json::Value::Null,
                ),
                Ok(Err(j)) => Verdict::fail(
                    format!("panicked: {}", panic_message(j)),
                    serde_json::Value::Null,
                ),
                Err(_) => Verdict::fail(
                    format!(
                        "evaluation took longer than {}",
                        humantime::format_duration(limit)
                    ),
                    serde_json::Value::Null,
                ),
            };
            NamedVerdict { name, verdict }
        }
    });
    let verdicts = tokio::select! {
        _ = cancel.cancelled() => return true,
        v = futures::future::join_all(evals) => v,
    };
    for mut v in verdicts {
        if let Some((_, err)) = capture_errors.iter().find(|(n, _)| *n == v.name) {
            v.verdict = Verdict::fail(
                format!("could not capture the start of the run: {err}"),
                serde_json::Value::Null,
            );
        }
        sink.emit(RunEvent::ExpectationEvaluated {
            name: v.name.clone(),
            passed: v.verdict.passed,
            message: v.verdict.message.clone(),
        });
        report.verdicts.push(v);
    }
    report.timings.evaluate = t.elapsed();
    false
}

/// If the run was failed early (`RunContext::fail_run`), records it as a
/// failed verdict and returns true: cooldown and evaluation are skipped.
fn record_early_failure(ctx: &RunContext, report: &mut RunReport, sink: &EventSink) -> bool {
    let Some((name, message)) = ctx.failure() else {
        return false;
    };
    sink.emit(RunEvent::ExpectationEvaluated {
        name: name.clone(),
        passed: false,
        message: message.clone(),
    });
    report.verdicts.push(NamedVerdict {
        name,
        verdict: Verdict::fail(message, serde_json::Value::Null),
    });
    true
}

fn panic_message(j: tokio::task::JoinError) -> String {
    match j.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".to_owned()),
        Err(e) => e.to_string(),
    }
}

fn finish(
    mut report: RunReport,
    sink: &EventSink,
    timeline: &Timeline,
    started: Instant,
) -> RunReport {
    report.timings.total = started.elapsed();
    report.timeline = timeline
        .entries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    sink.emit(RunEvent::Finished {
        report: Box::new(report.clone()),
    });
    report
}
