//! The compose deployer against the real Docker engine: readiness, consensus info, restart
//! catch-up, partition and heal through the link relays, teardown leaving nothing labelled,
//! and a halted node detected. Without a Docker engine: skipped (reason printed), or failed
//! under CI (`common::tools`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::deploy::DeployError;
use engine::deploy::compose::ComposeDeployer;
use engine::deploy::compose::cleanup::list_run_resources;
use engine::deploy::compose::docker;
use engine::deploy::{DeployOptions, Deployer, NodeState, Testnet};
use engine::nodekind::{ReferenceNode, TemplateNode};
use engine::report::Outcome;
use engine::runner::{RunOptions, run_scenario};
use engine::scenario::ScenarioBuilder;
use engine::topology::TopologyBuilder;

async fn engine_or_skip() -> Option<bollard::Docker> {
    match docker::connect().await {
        Ok(d) => Some(d),
        Err(e) => {
            common::tools::skip_missing("docker", &format!("no Docker engine answers: {e}"));
            None
        }
    }
}

fn deployer(base: &std::path::Path) -> ComposeDeployer {
    ComposeDeployer::new()
        .with_node_kind(Arc::new(ReferenceNode {
            binary: Some(common::devnode_bin()),
        }))
        .with_base_dir(base.to_path_buf())
}

fn url_port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("url has a port")
}

async fn heights(net: &dyn Testnet) -> Vec<Option<u64>> {
    let mut v = Vec::new();
    for c in net.clients().iter() {
        let c = c.clone().with_timeout(Duration::from_secs(1));
        v.push(c.consensus_info().await.ok().map(|i| i.height));
    }
    v
}

async fn wait_for<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        let r = f().await;
        match r {
            Ok(()) => return,
            Err(e) if start.elapsed() >= within => {
                panic!("{what}: not within {within:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_containers_ready_restart_partition_teardown() {
    let Some(d) = engine_or_skip().await else {
        return;
    };
    let base = tempfile::tempdir().expect("tempdir");
    // k = 50: the isolated node's fork stays shallow enough to be abandoned after heal
    let topo = common::fast(TopologyBuilder::new().nodes(3).network_full())
        .security_param(50)
        .seed(11)
        .build()
        .expect("topology");
    let opts = DeployOptions {
        ready_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let started = Instant::now();
    let net = deployer(base.path())
        .deploy(&topo, &opts)
        .await
        .expect("3-node compose testnet gets ready");
    eprintln!("ready after {:?}", started.elapsed());
    let run_id = net.run_id().to_owned();
    let run_dir = net.run_dir().expect("run dir");
    assert!(run_dir.join("docker-compose.yml").exists());
    let found = list_run_resources(&d, &run_id).await.expect("list");
    assert_eq!(found.containers.len(), 3, "{found:?}");
    assert_eq!(found.networks.len(), 1, "{found:?}");

    // consensus info from every container through the published ports
    for c in net.clients().iter() {
        let info = c.consensus_info().await.expect("consensus info");
        assert!(info.height >= 1, "{} height {}", c.name(), info.height);
    }
    let logs = net.logs(0, 20).await.expect("logs");
    assert!(!logs.trim().is_empty(), "container logs are empty");

    // restart of a node catches up (same published port: clients held elsewhere stay valid)
    let url_before = net.clients().get(1).unwrap().base_url().to_owned();
    net.restart(1).await.expect("restart node-1");
    assert_eq!(net.clients().get(1).unwrap().base_url(), url_before);
    assert_eq!(net.node_state(1), Some(NodeState::Running));
    wait_for(
        "node-1 catches up after restart",
        Duration::from_secs(20),
        || async {
            let h = heights(&*net).await;
            let (Some(a), Some(b)) = (h[0], h[1]) else {
                return Err(format!("{h:?}"));
            };
            if b + 2 >= a && b > 0 {
                Ok(())
            } else {
                Err(format!("{h:?}"))
            }
        },
    )
    .await;

    // partition node-2 away: it stops following; after heal it catches up
    net.isolate(2).await.expect("isolate");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h2 = heights(&*net).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let h3 = heights(&*net).await;
    let peers2 = net
        .clients()
        .get(2)
        .unwrap()
        .network_info()
        .await
        .expect("net info")
        .n_peers;
    assert_eq!(peers2, 0, "isolated node-2 still has peers");
    let majority_moved = h3[0].unwrap_or(0) > h2[0].unwrap_or(0);
    assert!(majority_moved, "majority stalled: {h2:?} -> {h3:?}");
    net.heal().await.expect("heal");
    wait_for(
        "node-2 rejoins after heal",
        Duration::from_secs(20),
        || async {
            let h = heights(&*net).await;
            let p = net
                .clients()
                .get(2)
                .unwrap()
                .network_info()
                .await
                .map_err(|e| e.to_string())?
                .n_peers;
            let (Some(a), Some(c)) = (h[0], h[2]) else {
                return Err(format!("{h:?}"));
            };
            if p >= 2 && c + 2 >= a {
                Ok(())
            } else {
                Err(format!("{h:?} peers {p}"))
            }
        },
    )
    .await;

    // a port clash on start is a clear error naming the port
    net.stop(0).await.expect("stop node-0");
    let port: u16 = url_port(net.clients().get(0).unwrap().base_url());
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the freed port");
    let err = net
        .start(0)
        .await
        .expect_err("start with the API port taken");
    assert!(
        err.to_string().contains(&format!(
            "port clash: another process holds 127.0.0.1:{port}"
        )),
        "{err}"
    );
    drop(squatter);

    let summary = net.teardown(false).await.expect("teardown");
    assert!(!summary.kept);
    let left = list_run_resources(&d, &run_id).await.expect("list");
    assert!(
        left.containers.is_empty() && left.networks.is_empty() && left.volumes.is_empty(),
        "left behind: {left:?}"
    );
    assert!(!run_dir.exists(), "run dir left behind");
    net.teardown(false).await.expect("teardown is idempotent");
}

async fn assert_nothing_labelled(d: &bollard::Docker, run_id: &str) {
    let left = list_run_resources(d, run_id).await.expect("list");
    assert!(
        left.containers.is_empty() && left.networks.is_empty() && left.volumes.is_empty(),
        "run {run_id} left behind: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halted_node_fails_liveness_on_compose() {
    let Some(d) = engine_or_skip().await else {
        return;
    };
    let base = tempfile::tempdir().expect("tempdir");
    let plan = ScenarioBuilder::topology_with(|t| {
        common::fast(t.nodes(3)).with_node_override(2, "testing.halt_at_height", 2.into())
    })
    .expect_consensus_liveness()
    .with_run_duration(Duration::from_secs(4))
    .build()
    .expect("plan");
    let opts = RunOptions {
        keep: engine::deploy::KeepRunDir::Never,
        ready_timeout: Duration::from_secs(20),
        ..RunOptions::default()
    };
    let report = run_scenario(&plan, &deployer(base.path()), opts).await;
    assert_eq!(report.deployer, "compose");
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    let msg = &report.verdicts[0].verdict.message;
    assert!(msg.contains("node-2 height 2 < target"), "{msg}");
    assert!(!msg.contains("node-0") && !msg.contains("node-1"), "{msg}");
    assert_nothing_labelled(&d, &report.run_id).await;
    common::assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_exits_fails_deploy_with_its_last_log_lines() {
    let Some(d) = engine_or_skip().await else {
        return;
    };
    let base = tempfile::tempdir().expect("tempdir");
    let template = base.path().join("bad-template.yaml");
    std::fs::write(
        &template,
        "node: {index: {{index}}}\nthis is: [not a config\n",
    )
    .unwrap();
    let kind = TemplateNode::new(
        common::devnode_bin(),
        template,
        vec!["devnode".into(), "--config".into(), "{config}".into()],
    )
    .expect("template node");
    let runs = base.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let topo = common::fast(TopologyBuilder::new().nodes(2))
        .build()
        .unwrap();
    let opts = DeployOptions {
        ready_timeout: Duration::from_secs(15),
        keep_on_deploy_failure: false,
        run_id: Some(format!("exit-{}", std::process::id())),
        ..Default::default()
    };
    let started = Instant::now();
    let err = deployer(&runs)
        .with_node_kind(Arc::new(kind))
        .deploy(&topo, &opts)
        .await
        .err()
        .expect("a node that cannot parse its config fails the deploy");
    let text = err.to_string();
    eprintln!("deploy error: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "an exited container should fail fast, took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            DeployError::Spawn { .. } | DeployError::NodeExited { .. }
        ),
        "{text}"
    );
    assert!(text.contains("exited with code"), "{text}");
    assert!(text.contains("config"), "no log line in: {text}");
    assert_nothing_labelled(&d, opts.run_id.as_deref().unwrap()).await;
    common::assert_empty(&runs);
}

#[tokio::test]
async fn no_engine_is_a_clear_error() {
    let err = docker::connect_to("unix:///nonexistent/docker.sock")
        .await
        .expect_err("no engine there");
    assert!(
        err.starts_with("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{err}"
    );
    assert!(err.contains("is it running? (DOCKER_HOST)"), "{err}");
}

/// Another kind on Docker: configs written on the host by a generator script through the
/// generator contract, mounted into the containers, run by the image built from the node
/// binary; the run passes with wallet-owned keys and the testing surface published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_with_generated_configs_runs_on_docker() {
    let Some(d) = engine_or_skip().await else {
        return;
    };
    let base = tempfile::tempdir().expect("tempdir");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gen_reference.py");
    let kind = engine::nodekind::generator::GeneratedNode::new(
        Arc::new(ReferenceNode {
            binary: Some(common::devnode_bin()),
        }),
        engine::nodekind::generator::Generator::new(vec![
            "python3".into(),
            script.display().to_string(),
        ]),
    );
    let plan = ScenarioBuilder::new(common::fast(TopologyBuilder::new().nodes(2)))
        .wallets(4)
        .transactions_with(|t| t.rate(2.0))
        .expect_consensus_liveness()
        .with_run_duration(Duration::from_secs(5))
        .build()
        .unwrap();
    let report = run_scenario(
        &plan,
        &deployer(base.path()).with_node_kind(Arc::new(kind)),
        RunOptions::default(),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.summary());
    assert!(report.txs_included > 0, "{}", report.summary());
    assert_nothing_labelled(&d, &report.run_id).await;
    common::assert_empty(base.path());
}
