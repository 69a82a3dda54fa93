//! A failed workload stops the run at once (like a broken invariant) and the testnet is
//! torn down; a plan that opts out runs to its end and is judged.

mod common;

use std::time::{Duration, Instant};

use common::{assert_empty, deployer, fast};
use engine::context::RunContext;
use engine::deploy::KeepRunDir;
use engine::report::Outcome;
use engine::runner::{RunOptions, run_scenario};
use engine::scenario::ScenarioBuilder;
use engine::topology::TopologyBuilder;
use engine::workload::{Workload, WorkloadError};
use futures::future::BoxFuture;

/// Fails one second into the run (`panics`: panics then).
struct AfterOneSecond {
    panics: bool,
}

/// Fails one second into the run.
const FAILS_AFTER_ONE_SECOND: AfterOneSecond = AfterOneSecond { panics: false };

/// Panics one second into the run.
const PANICS_AFTER_ONE_SECOND: AfterOneSecond = AfterOneSecond { panics: true };

impl Workload for AfterOneSecond {
    fn name(&self) -> String {
        if self.panics {
            "panics_after_1s"
        } else {
            "fails_after_1s"
        }
        .to_owned()
    }

    fn run(
        &self,
        _ctx: RunContext,
        stop: engine::CancellationToken,
    ) -> BoxFuture<'static, Result<(), WorkloadError>> {
        let panics = self.panics;
        Box::pin(async move {
            tokio::select! {
                _ = stop.cancelled() => Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if panics {
                        panic!("boom at 1 s")
                    }
                    Err(WorkloadError::new("lost the thread"))
                }
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_workload_stops_the_run_at_once_too() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::new(fast(TopologyBuilder::new().nodes(2)))
        .with_workload(std::sync::Arc::new(PANICS_AFTER_ONE_SECOND))
        .with_run_duration(Duration::from_secs(30))
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert!(
        report.workload_errors[0]
            .error
            .contains("panicked: boom at 1 s"),
        "{:?}",
        report.workload_errors
    );
    assert!(
        report.timings.run < Duration::from_secs(3),
        "{:?}",
        report.timings.run
    );
    assert_empty(base.path());
}

fn opts() -> RunOptions {
    RunOptions {
        keep: KeepRunDir::Never,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_workload_stops_a_long_run_at_once() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::new(fast(TopologyBuilder::new().nodes(2)))
        .with_workload(std::sync::Arc::new(FAILS_AFTER_ONE_SECOND))
        .expect_consensus_liveness()
        .with_run_duration(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Instant::now();
    let report = run_scenario(&plan, &deployer(base.path()), opts()).await;
    let took = started.elapsed();
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert_eq!(report.workload_errors.len(), 1);
    assert_eq!(report.workload_errors[0].name, "fails_after_1s");
    assert!(report.workload_errors[0].error.contains("lost the thread"));
    assert!(
        report.verdicts.is_empty(),
        "the expectations were not judged: {:?}",
        report.verdicts
    );
    assert!(
        report.timings.run < Duration::from_secs(3),
        "the run went on for {:?} after its workload failed at 1 s",
        report.timings.run
    );
    assert!(
        took < Duration::from_secs(20),
        "deploy + run + teardown took {took:?}"
    );
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_opts_out_runs_to_its_end_and_is_judged() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::new(fast(TopologyBuilder::new().nodes(2)))
        .with_workload(std::sync::Arc::new(FAILS_AFTER_ONE_SECOND))
        .expect_consensus_liveness()
        .continue_on_workload_failure()
        .with_run_duration(Duration::from_secs(3))
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert_eq!(report.workload_errors.len(), 1);
    assert!(
        report.timings.run >= Duration::from_secs(3),
        "{:?}",
        report.timings.run
    );
    assert_eq!(report.verdicts.len(), 1, "liveness was judged");
    assert!(report.verdicts[0].verdict.passed, "{}", report.summary());
    assert_empty(base.path());
}
