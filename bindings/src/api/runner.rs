//! Running a plan: through the CLI's `--deployer` (`plan.run()`), or an explicit deployer
//! (`LocalDeployer().deploy(plan)` then `runner.run(plan)`). In `check` mode nothing is deployed:
//! the plan is validated against the deployer's capabilities and a dry report comes back.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use engine::deploy::KeepRunDir;
use engine::report::terminal::TerminalReporter;
use engine::report::{Outcome, RunReport};
use engine::scenario::Scenario;
use rhai::{Dynamic, EvalAltResult, Position};

use super::deploy::{DeployerHandle, NetHandle};
use super::report::ReportHandle;
use super::values::{Res, err};
use crate::host::{CheckPolicy, HostState, Mode};

/// What one script execution ran and deployed: plans run (dry ones too), testnets deployed or
/// attached; and the plans already warned about.
#[derive(Debug, Default)]
pub struct Activity {
    done: AtomicUsize,
    warned: Mutex<HashSet<usize>>,
}

impl Activity {
    /// A plan was run or a testnet deployed or attached.
    pub fn note(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Nothing was run, deployed or attached.
    pub fn is_idle(&self) -> bool {
        self.done.load(Ordering::Relaxed) == 0
    }

    /// True the first time `plan` (by identity) is seen.
    fn first_warning(&self, plan: &Scenario) -> bool {
        self.warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(std::ptr::from_ref(plan) as usize)
    }
}

/// `the plan (3 nodes, 10s, workloads: transactions)`, for messages.
fn describe(scenario: &Scenario) -> String {
    let workloads = scenario.workload_names();
    let nodes = scenario.topology().node_count();
    format!(
        "the plan ({nodes} node{}, {}, {})",
        if nodes == 1 { "" } else { "s" },
        super::values::human(scenario.duration()),
        if workloads.is_empty() {
            "no workload".to_string()
        } else {
            format!("workloads: {}", workloads.join(", "))
        }
    )
}

/// A plan about to run (or be checked): noted as activity; one with no expectation at all is
/// warned about once, or refused under `--strict`.
fn note_plan(state: &HostState, scenario: &Scenario) -> Res<()> {
    state.activity.note();
    if !scenario.expectations.is_empty() {
        return Ok(());
    }
    let what = describe(scenario);
    match state.settings.checks {
        CheckPolicy::Quiet => Ok(()),
        CheckPolicy::Warn => {
            if state.activity.first_warning(scenario) {
                eprintln!(
                    "warning: {what} checks nothing: it has no expectation; add expect_* or pass --strict to make this an error"
                );
            }
            Ok(())
        }
        CheckPolicy::Strict => err(format!(
            "{what} checks nothing: it has no expectation (--strict); add an expectation (expect_consensus_liveness(), with_expectation(..), an invariant)"
        )),
    }
}

/// Runs `scenario` on `deployer` (default: the CLI's) and returns its report, pass or fail.
pub fn run_plan(
    state: &Arc<HostState>,
    deployer: Option<&DeployerHandle>,
    scenario: &Scenario,
) -> Res<ReportHandle> {
    note_plan(state, scenario)?;
    let deployer = deployer
        .cloned()
        .unwrap_or_else(|| DeployerHandle::new(state.settings.deployer, state.clone()));
    let scenario = &super::replay::replayed(state, scenario)?;
    if state.settings.mode == Mode::Check {
        return dry_report(&deployer, scenario);
    }
    let engine_deployer = deployer.engine_deployer()?;
    if let Err(e) = engine::deploy::check_capabilities(&*engine_deployer, &scenario.capabilities)
        .and_then(|()| engine::deploy::check_uses(&*engine_deployer, &scenario.uses))
    {
        return err(format!("cannot run this plan: {e}"));
    }
    if let Some(external) = &state.settings.external {
        println!(
            "the plan runs against {} external nodes{} (its own node count, {}, is ignored)",
            external.endpoints().len(),
            external
                .source()
                .map(|p| format!(" from {}", p.display()))
                .unwrap_or_default(),
            scenario.topology().node_count()
        );
    }
    let scenario = scenario.clone();
    let opts = run_options(state);
    // Not cancellable from here: on Ctrl-C the runner itself tears down and reports.
    let report = state.bridge.block_on(async move {
        engine::runner::run_scenario(&scenario, &*engine_deployer, opts).await
    })?;
    Ok(record(state, report))
}

/// `runner.run(plan)` on a testnet deployed with `deployer.deploy(plan)`; tears it down at the end.
pub fn run_on(state: &Arc<HostState>, net: &NetHandle, scenario: &Scenario) -> Res<ReportHandle> {
    note_plan(state, scenario)?;
    let Some(testnet) = net.testnet().cloned() else {
        let mut report = RunReport::empty(scenario.seed(), Outcome::Passed);
        report.run_id = "dry".to_string();
        report.nodes = scenario.topology().node_count();
        return Ok(ReportHandle(Arc::new(report)));
    };
    let scenario = super::replay::replayed(state, scenario)?;
    if let Err(e) = check_testnet_capabilities(&*testnet, &scenario.capabilities).and_then(|()| {
        engine::deploy::check_testnet_uses(&*testnet, &scenario.uses).map_err(|e| e.to_string())
    }) {
        return err(format!("cannot run this plan: {e}"));
    }
    let opts = run_options(state);
    let report = state.bridge.block_on(async move {
        engine::runner::Runner::new(testnet)
            .run(&scenario, opts)
            .await
    })?;
    Ok(record(state, report))
}

fn record(state: &HostState, report: RunReport) -> ReportHandle {
    let report = Arc::new(report);
    state.reports.lock().expect("reports").push(report.clone());
    ReportHandle(report)
}

fn check_testnet_capabilities(
    testnet: &dyn engine::deploy::Testnet,
    required: &[engine::deploy::Capability],
) -> Result<(), String> {
    let have = testnet.capabilities();
    match required.iter().find(|c| !have.contains(c)) {
        Some(c) => Err(format!(
            "the {} deployer lacks {c}: the scenario needs it",
            testnet.deployer_name()
        )),
        None => Ok(()),
    }
}

fn run_options(state: &HostState) -> engine::runner::RunOptions {
    engine::runner::RunOptions {
        keep: if state.settings.keep {
            KeepRunDir::Always
        } else {
            KeepRunDir::OnFailure
        },
        cancel: state.bridge.cancel_token(),
        reporters: [
            vec![Arc::new(TerminalReporter::default()) as Arc<dyn engine::report::Reporter>],
            state.settings.reporters.0.clone(),
        ]
        .concat(),
        ..Default::default()
    }
}

/// `check`: capabilities validated, nothing deployed.
fn dry_report(deployer: &DeployerHandle, scenario: &Scenario) -> Res<ReportHandle> {
    if let Ok(d) = deployer.engine_deployer()
        && let Err(e) = engine::deploy::check_capabilities(&*d, &scenario.capabilities)
            .and_then(|()| engine::deploy::check_uses(&*d, &scenario.uses))
    {
        return err(format!("cannot run this plan: {e}"));
    }
    deployer.check_fd_budget(scenario.topology())?;
    let mut report = RunReport::empty(scenario.seed(), Outcome::Passed);
    report.run_id = "dry".to_string();
    report.deployer = deployer.choice.name().to_string();
    report.nodes = scenario.topology().node_count();
    Ok(ReportHandle(Arc::new(report)))
}

/// `plan.run()`: a failed run becomes a script error whose value is the report (uncaught, it exits
/// with the report's code: 1 failed, 3 infrastructure, 130 interrupted).
pub fn raise_if_failed(report: ReportHandle) -> Res<ReportHandle> {
    if report.0.passed() {
        return Ok(report);
    }
    Err(Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(report),
        Position::NONE,
    )))
}
