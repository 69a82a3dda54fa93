//! `gc` and kept run dirs, with real node processes: a dir kept at teardown carries a `KEPT`
//! marker, survives `gc` (listed as kept, with its run id and reason) and is removed only with
//! `kept`; a dead run's leftovers are still reclaimed, and a dry run names its run id and pids.

mod common;

use std::time::{Duration, Instant};

use common::{alive, assert_empty, deploy, fast, run_pids};
use engine::gc::{GcOptions, collect_in, collect_with};
use engine::topology::TopologyBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_run_dir_survives_gc_and_gc_kept_removes_it() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(2)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    let run_id = net.run_id().to_owned();
    let run_dir = net.run_dir().unwrap();
    let summary = net.teardown(true).await.unwrap();
    assert!(summary.kept);
    let marker = engine::deploy::read_kept(&run_dir).expect("KEPT marker");
    assert_eq!(marker.run_id, run_id);

    let dry = collect_in(true, base.path()).await;
    assert!(dry.run_dirs.is_empty(), "{dry:?}");
    let lines = dry.lines();
    let expected = format!(
        "kept: {} (run {run_id}, kept at teardown, ",
        run_dir.display()
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&expected)),
        "{expected} not in {lines:?}"
    );

    let report = collect_in(false, base.path()).await;
    assert!(run_dir.exists(), "gc removed a kept dir: {report:?}");
    assert_eq!(report.kept.len(), 1, "{report:?}");
    let local = engine::deploy::local::gc(Some(base.path())).unwrap();
    assert!(run_dir.exists(), "local gc removed a kept dir: {local:?}");
    assert_eq!(local.skipped_kept, vec![run_dir.clone()]);

    // --kept --older-than 1d: too young
    let young = collect_with(
        base.path(),
        &GcOptions {
            kept: true,
            older_than: Some(Duration::from_secs(86_400)),
            ..Default::default()
        },
    )
    .await;
    assert!(run_dir.exists(), "{young:?}");

    let kept = collect_with(
        base.path(),
        &GcOptions {
            kept: true,
            ..Default::default()
        },
    )
    .await;
    assert!(!run_dir.exists(), "gc --kept left it: {kept:?}");
    assert!(
        kept.lines().contains(&format!(
            "removed run dir {} (run {run_id})",
            run_dir.display()
        )),
        "{:?}",
        kept.lines()
    );
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_runs_leftovers_are_reclaimed_and_the_dry_run_names_its_pids() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(2)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    let run_id = net.run_id().to_owned();
    let run_dir = net.run_dir().unwrap();
    let pids = run_pids(&run_dir);
    assert_eq!(pids.len(), 2);
    // this process owns the run, so gc treats it as abandoned
    let dry = collect_in(true, base.path()).await;
    let lines = dry.lines();
    for pid in &pids {
        let expected = format!("would kill pid {pid} (node of run {run_id})");
        assert!(lines.contains(&expected), "{expected} not in {lines:?}");
    }
    let expected = format!("would remove run dir {} (run {run_id})", run_dir.display());
    assert!(lines.contains(&expected), "{expected} not in {lines:?}");
    assert!(
        run_dir.exists() && pids.iter().all(|&p| alive(p)),
        "a dry run acted"
    );

    let report = collect_in(false, base.path()).await;
    assert_eq!(report.killed, 2, "{report:?}");
    assert_eq!(report.run_dirs, vec![run_dir]);
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_empty(base.path());
    net.teardown(false).await.unwrap();
}
