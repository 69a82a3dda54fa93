//! `gc` after a compose deploy whose handle was leaked (as if the runner had been killed):
//! a dry run lists its containers and network and removes nothing; a real run removes them
//! and the run dir. Skipped (with a printed reason) only when no Docker engine answers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use engine::deploy::compose::ComposeDeployer;
use engine::deploy::compose::cleanup::list_run_resources;
use engine::deploy::compose::docker;
use engine::deploy::{DeployOptions, Deployer};
use engine::nodekind::ReferenceNode;
use engine::topology::TopologyBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_what_a_leaked_deploy_left() {
    let d = match docker::connect().await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    let base = tempfile::tempdir().expect("tempdir");
    let topo = common::fast(TopologyBuilder::new().nodes(2))
        .build()
        .expect("topology");
    let opts = DeployOptions {
        wait_ready: false,
        ready_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let net = ComposeDeployer::new()
        .with_node_kind(Arc::new(ReferenceNode {
            binary: Some(common::devnode_bin()),
        }))
        .with_base_dir(base.path().to_path_buf())
        .deploy(&topo, &opts)
        .await
        .expect("deploy");
    let run_id = net.run_id().to_owned();
    let run_dir = net.run_dir().expect("run dir");
    std::mem::forget(net);

    let found = list_run_resources(&d, &run_id).await.expect("list");
    assert_eq!(found.containers.len(), 2, "{found:?}");
    assert_eq!(found.networks.len(), 1, "{found:?}");

    let dry = engine::gc::collect_in(true, base.path()).await;
    assert!(dry.docker_error.is_none(), "{:?}", dry.docker_error);
    for c in &found.containers {
        assert!(dry.containers.contains(c), "dry run misses {c}: {dry:?}");
    }
    assert!(dry.run_dirs.contains(&run_dir), "{dry:?}");
    let still = list_run_resources(&d, &run_id).await.expect("list");
    assert_eq!(still.containers.len(), 2, "a dry run removed something");
    assert!(run_dir.exists(), "a dry run removed the run dir");

    let report = engine::gc::collect_in(false, base.path()).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(report.runs.contains(&run_id), "{report:?}");
    assert!(
        report.networks.iter().any(|n| n.contains(&run_id)),
        "{report:?}"
    );
    let left = list_run_resources(&d, &run_id).await.expect("list");
    assert!(
        left.containers.is_empty() && left.networks.is_empty() && left.volumes.is_empty(),
        "gc left: {left:?}"
    );
    assert!(!run_dir.exists(), "gc left the run dir");
    assert!(!report.lines().is_empty());
}
