//! Errors keep their causes from the failing system call up to the report: a deploy whose node
//! binary cannot be executed, and a start of a node whose binary went bad, both carry the
//! operating system's error as their root cause, and the report's terminal summary and JSON
//! show the whole chain.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{assert_empty, fast};
use engine::deploy::local::LocalDeployer;
use engine::deploy::{ControlError, DeployError, DeployOptions, Deployer};
use engine::error::{Chain, ErrorChain};
use engine::nodekind::ReferenceNode;
use engine::report::Outcome;
use engine::report::terminal::TerminalReporter;
use engine::runner::{RunOptions, run_scenario};
use engine::scenario::ScenarioBuilder;
use engine::topology::TopologyBuilder;

fn deployer_with(binary: &Path, base: &Path) -> LocalDeployer {
    LocalDeployer::new()
        .with_node_kind(Arc::new(ReferenceNode {
            binary: Some(binary.to_path_buf()),
        }))
        .with_base_dir(base.to_path_buf())
}

fn set_executable(path: &Path, yes: bool) {
    let mode = if yes { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_reports_the_os_error_as_its_root_cause() {
    let base = tempfile::tempdir().unwrap();
    let bin_dir = tempfile::tempdir().unwrap();
    let binary = bin_dir.path().join("not-executable");
    std::fs::write(&binary, "#!/bin/sh\n").unwrap();
    set_executable(&binary, false);
    let plan = ScenarioBuilder::new(fast(TopologyBuilder::new().nodes(2)))
        .with_run_duration(Duration::from_secs(2))
        .build()
        .unwrap();
    let opts = RunOptions {
        keep: engine::deploy::KeepRunDir::Never,
        ..RunOptions::default()
    };
    let report = run_scenario(&plan, &deployer_with(&binary, base.path()), opts).await;
    let Outcome::Error(chain) = &report.outcome else {
        panic!("expected an infrastructure error: {}", report.summary());
    };
    assert_eq!(chain.message, "failed to deploy", "{chain:?}");
    assert!(
        chain.causes.len() >= 2,
        "the spawn error and the OS error are both kept: {chain:?}"
    );
    assert!(
        chain.causes[0].starts_with("failed to start node-")
            && chain.causes[0].contains("not-executable"),
        "{chain:?}"
    );
    let root = chain.causes.last().unwrap();
    assert!(root.contains("Permission denied"), "{chain:?}");
    assert_eq!(
        chain
            .causes
            .iter()
            .filter(|c| c.contains("Permission denied"))
            .count(),
        1,
        "each cause is said once: {chain:?}"
    );

    // the JSON report holds the chain as data
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["outcome"]["kind"], "error");
    assert_eq!(json["outcome"]["message"], "failed to deploy");
    let causes: Vec<&str> = json["outcome"]["causes"]
        .as_array()
        .expect("causes in the JSON report")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(causes, chain.causes);
    // and reads back to the same outcome
    let back: Outcome = serde_json::from_value(json["outcome"].clone()).unwrap();
    assert_eq!(&back, &report.outcome);

    // the terminal shows the error, then each cause on its own line
    let summary = TerminalReporter::render_summary(&report);
    assert!(summary.contains("ERROR (failed to deploy)"), "{summary}");
    for c in &chain.causes {
        assert!(
            summary.contains(&format!("  caused by: {c}\n")),
            "{summary}"
        );
    }
    assert!(report.failure_summary().contains("Permission denied"));
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_keeps_the_spawn_error_and_its_os_cause() {
    let base = tempfile::tempdir().unwrap();
    let bin_dir = tempfile::tempdir().unwrap();
    let binary = bin_dir.path().join("devnode-copy");
    std::fs::copy(common::devnode_bin(), &binary).unwrap();
    set_executable(&binary, true);
    let net = deployer_with(&binary, base.path())
        .deploy(
            &fast(TopologyBuilder::new().nodes(2)).build().unwrap(),
            &DeployOptions::default(),
        )
        .await
        .expect("deploy");
    net.stop(1).await.expect("stop");
    set_executable(&binary, false);
    let e = net
        .start(1)
        .await
        .expect_err("a start of a binary that cannot run fails");
    set_executable(&binary, true);
    assert!(
        matches!(&e, ControlError::Deploy(DeployError::Spawn { node, .. }) if node == "node-1"),
        "{e:?}"
    );
    let chain = ErrorChain::of(&e);
    assert!(
        chain.message.starts_with("failed to start node-1"),
        "{chain:?}"
    );
    assert!(
        chain.causes.iter().any(|c| c.contains("Permission denied")),
        "the OS error survives as a source: {chain:?}"
    );
    let io = engine::error::find::<std::io::Error>(&e)
        .expect("the source is the io::Error itself, not its text");
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(e.chain().ends_with(&chain.causes[chain.causes.len() - 1]));
    net.start(1)
        .await
        .expect("starts again once the binary can run");
    net.teardown(false).await.expect("teardown");
    assert_empty(base.path());
}
