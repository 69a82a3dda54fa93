//! `gc` after a compose deploy whose handle was leaked (as if the runner had been killed):
//! a dry run lists its containers and network and removes nothing; a real run removes them
//! and the run dir. A kept compose run dir is left alone; a node image goes only when unused and
//! its binary is gone. Without a Docker engine: skipped (reason printed), or failed under CI
//! (`common::tools`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::deploy::compose::ComposeDeployer;
use engine::deploy::compose::cleanup::list_run_resources;
use engine::deploy::compose::docker;
use engine::deploy::{DeployOptions, Deployer, Testnet};
use engine::nodekind::ReferenceNode;
use engine::topology::{Topology, TopologyBuilder};

/// The Docker engine; `None` when none answers (after [`common::tools::skip_missing`]).
async fn docker_or_skip() -> Option<bollard::Docker> {
    match docker::connect().await {
        Ok(d) => Some(d),
        Err(e) => {
            common::tools::skip_missing("docker", &format!("no Docker engine answers: {e}"));
            None
        }
    }
}

/// `topo` deployed on compose with the reference node, run dirs under `base`.
async fn deploy(base: &Path, topo: &Topology, opts: &DeployOptions) -> Arc<dyn Testnet> {
    ComposeDeployer::new()
        .with_node_kind(Arc::new(ReferenceNode {
            binary: Some(common::devnode_bin()),
        }))
        .with_base_dir(base.to_path_buf())
        .deploy(topo, opts)
        .await
        .expect("deploy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_what_a_leaked_deploy_left() {
    let Some(d) = docker_or_skip().await else {
        return;
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
    let net = deploy(base.path(), &topo, &opts).await;
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

/// A compose run kept at teardown: its containers are gone, its dir (with the logs) carries a
/// `KEPT` marker, and gc lists it instead of removing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_leaves_a_kept_compose_run_dir() {
    if docker_or_skip().await.is_none() {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let topo = common::fast(TopologyBuilder::new().nodes(1))
        .build()
        .expect("topology");
    let opts = DeployOptions {
        wait_ready: false,
        ..Default::default()
    };
    let net = deploy(base.path(), &topo, &opts).await;
    let run_id = net.run_id().to_owned();
    let run_dir = net.run_dir().expect("run dir");
    assert!(net.teardown(true).await.expect("teardown").kept);
    let marker = engine::deploy::read_kept(&run_dir).expect("KEPT marker");
    assert_eq!(marker.run_id, run_id);
    let report = engine::gc::collect_in(false, base.path()).await;
    assert!(run_dir.exists(), "gc removed a kept dir: {report:?}");
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.dir == run_dir && k.run_id == run_id),
        "{report:?}"
    );
}

/// A node image is removed only when no container uses it and the binary it was built from is
/// gone (never one a container, stopped or not, was created from).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_a_node_image_only_when_unused_and_its_binary_is_gone() {
    let Some(d) = docker_or_skip().await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("devnode-copy");
    std::fs::copy(common::devnode_bin(), &copy).expect("copy the binary");
    let tag = format!("nomos-script-node:gc-test-{}", std::process::id());
    engine::deploy::compose::image::build(&d, &copy, &tag)
        .await
        .expect("build");
    let user = format!("nomos-script-gc-test-{}", std::process::id());
    d.create_container(
        Some(bollard::query_parameters::CreateContainerOptions {
            name: Some(user.clone()),
            ..Default::default()
        }),
        bollard::models::ContainerCreateBody {
            image: Some(tag.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("create a container from the image");
    std::fs::remove_file(&copy).expect("remove the binary");

    let base = tempfile::tempdir().expect("tempdir");
    let report = engine::gc::collect_in(false, base.path()).await;
    assert!(
        d.inspect_image(&tag).await.is_ok(),
        "gc removed an image in use: {report:?}"
    );
    assert!(
        report
            .kept_images
            .iter()
            .any(|l| l.contains(&tag) && l.contains(&user)),
        "{report:?}"
    );

    d.remove_container(
        &user,
        None::<bollard::query_parameters::RemoveContainerOptions>,
    )
    .await
    .expect("remove the container");
    let dry = engine::gc::collect_in(true, base.path()).await;
    assert!(dry.images.contains(&tag), "{dry:?}");
    assert!(d.inspect_image(&tag).await.is_ok(), "a dry run removed it");
    let report = engine::gc::collect_in(false, base.path()).await;
    assert!(report.images.contains(&tag), "{report:?}");
    assert!(d.inspect_image(&tag).await.is_err(), "gc left {tag}");
}
