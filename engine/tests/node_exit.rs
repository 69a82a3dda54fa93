//! A node process that exits while the deployer waits for readiness is reported at once, with
//! how it ended and the last lines of its output, and nothing is left behind. The node binaries
//! here are real shell scripts written by the test.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_empty, fast, procs_under};
use engine::deploy::local::LocalDeployer;
use engine::deploy::{DeployError, DeployOptions, Deployer};
use engine::nodekind::TemplateNode;
use engine::topology::{Topology, TopologyBuilder};

/// Readiness deadline of these deploys: an exit must be reported long before it.
const DEADLINE: Duration = Duration::from_secs(30);

/// Writes `body` as an executable `#!/bin/sh` script `dir/name`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A local deployer whose nodes run `binary --config <config>` with the fixture template.
fn deployer(base: &Path, binary: PathBuf) -> LocalDeployer {
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/devnode-template.yaml");
    let kind = TemplateNode::new(binary, template, vec!["--config".into(), "{config}".into()])
        .expect("template node");
    LocalDeployer::new()
        .with_node_kind(Arc::new(kind))
        .with_base_dir(base.to_path_buf())
}

fn topo() -> Topology {
    fast(TopologyBuilder::new().nodes(2)).build().unwrap()
}

fn opts(keep: bool) -> DeployOptions {
    DeployOptions {
        ready_timeout: DEADLINE,
        keep_on_deploy_failure: keep,
        ..DeployOptions::default()
    }
}

/// Deploys `topo()` with `dep` and returns the error and how long `deploy` took.
async fn failed_deploy(dep: &LocalDeployer, opts: &DeployOptions) -> (DeployError, Duration) {
    let started = Instant::now();
    let result = dep.deploy(&topo(), opts).await;
    let took = started.elapsed();
    match result {
        Ok(_) => panic!("deploy of exiting nodes succeeded"),
        Err(e) => (e, took),
    }
}

fn assert_fast(took: Duration, at_least: Duration) {
    assert!(
        took < Duration::from_secs(3),
        "the exit took {took:?} to be reported (readiness deadline {DEADLINE:?})"
    );
    assert!(took < DEADLINE / 10, "{took:?}");
    assert!(
        took >= at_least,
        "{took:?} < {at_least:?}: reported too early?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refusing_its_command_line_is_reported_at_once_with_its_exit_code() {
    let bins = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    let bin = script(
        bins.path(),
        "refuses-args",
        "echo \"error: unexpected argument '--config' found\" >&2\nexit 2",
    );
    let (err, took) = failed_deploy(&deployer(base.path(), bin), &opts(false)).await;
    let text = err.to_string();
    eprintln!("time to report: {took:?}; error: {text}");
    assert_fast(took, Duration::ZERO);
    match &err {
        DeployError::NodeExited {
            node,
            code,
            signal,
            tail,
            log,
        } => {
            assert!(node == "node-0" || node == "node-1", "{node}");
            assert_eq!(*code, Some(2));
            assert_eq!(*signal, None);
            assert_eq!(tail, "error: unexpected argument '--config' found");
            assert!(log.ends_with(&format!("{node}/output.log")), "{log}");
        }
        other => panic!("not NodeExited: {other:?}"),
    }
    assert!(text.contains("exited with code 2 while starting"), "{text}");
    assert!(text.contains("unexpected argument"), "{text}");
    assert!(text.contains("; log: "), "{text}");
    assert!(!text.contains("not ready after"), "{text}");
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_dying_shortly_after_starting_is_reported_and_its_run_dir_kept() {
    let bins = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    let bin = script(
        bins.path(),
        "dies-soon",
        "echo \"starting node with $*\"\nsleep 0.5\necho 'fatal: storage is locked' >&2\nexit 1",
    );
    let (err, took) = failed_deploy(&deployer(base.path(), bin), &opts(true)).await;
    let text = err.to_string();
    eprintln!("time to report: {took:?}; error: {text}");
    assert_fast(took, Duration::from_millis(500));
    let DeployError::NodeExited {
        code, signal, log, ..
    } = &err
    else {
        panic!("not NodeExited: {err:?}");
    };
    assert_eq!((*code, *signal), (Some(1), None));
    assert!(text.contains("exited with code 1"), "{text}");
    assert!(text.contains("starting node with --config "), "{text}");
    assert!(text.contains("fatal: storage is locked"), "{text}");
    // the run dir is kept (its logs explain the failure) but no process is left
    let kept = std::fs::read_to_string(log).expect("the named log is kept");
    assert!(kept.contains("fatal: storage is locked"), "{kept}");
    let procs = procs_under(base.path());
    assert!(procs.is_empty(), "node processes left behind: {procs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_by_a_signal_reports_the_signal() {
    let bins = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    let bin = script(
        bins.path(),
        "killed",
        "echo 'about to be killed'\nkill -9 $$",
    );
    let (err, took) = failed_deploy(&deployer(base.path(), bin), &opts(false)).await;
    let text = err.to_string();
    eprintln!("time to report: {took:?}; error: {text}");
    assert_fast(took, Duration::ZERO);
    let DeployError::NodeExited { code, signal, .. } = &err else {
        panic!("not NodeExited: {err:?}");
    };
    assert_eq!((*code, *signal), (None, Some(9)));
    assert!(
        text.contains("exited with signal 9 while starting"),
        "{text}"
    );
    assert!(text.contains("about to be killed"), "{text}");
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_wait_ready_reports_an_exit_at_once_too() {
    let bins = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    let bin = script(bins.path(), "exits-3", "echo 'bye' >&2\nexit 3");
    let opts = DeployOptions {
        wait_ready: false,
        ..opts(false)
    };
    let net = deployer(base.path(), bin)
        .deploy(&topo(), &opts)
        .await
        .expect("deploy without waiting");
    let started = Instant::now();
    let err = net
        .wait_ready(DEADLINE)
        .await
        .expect_err("exited nodes are not ready");
    let took = started.elapsed();
    eprintln!("time to report: {took:?}; error: {err}");
    assert_fast(took, Duration::ZERO);
    assert!(
        matches!(err, DeployError::NodeExited { code: Some(3), .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("bye"), "{err}");
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_exiting_node_ends_the_wait_while_its_peers_still_wait_for_it() {
    let bins = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    // node-1 refuses to start; node-0 is a real node that waits for its peer
    let bin = script(
        bins.path(),
        "node-1-fails",
        &format!(
            "if grep -q '^  index: 1$' \"$2\"; then echo 'error: bad key for node 1' >&2; exit 2; fi\nexec {} \"$@\"",
            common::devnode_bin().display()
        ),
    );
    let (err, took) = failed_deploy(&deployer(base.path(), bin), &opts(false)).await;
    eprintln!("time to report: {took:?}; error: {err}");
    assert_fast(took, Duration::ZERO);
    let DeployError::NodeExited { node, code, .. } = &err else {
        panic!("not NodeExited: {err:?}");
    };
    assert_eq!((node.as_str(), *code), ("node-1", Some(2)));
    assert!(err.to_string().contains("bad key for node 1"), "{err}");
    assert_empty(base.path());
}
