//! The compose deployer against the real Docker engine: readiness, consensus info, restart
//! catch-up, partition and heal through the link relays, teardown leaving nothing labelled,
//! and a halted node detected. Skipped (with a printed reason) only when no engine answers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::deploy::compose::ComposeDeployer;
use engine::deploy::compose::cleanup::list_run_resources;
use engine::deploy::compose::docker;
use engine::deploy::{DeployOptions, Deployer, NodeState, Testnet};
use engine::nodekind::ReferenceNode;
use engine::topology::TopologyBuilder;

async fn engine_or_skip() -> Option<bollard::Docker> {
    match docker::connect().await {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
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

    // restart of a node catches up
    net.restart(1).await.expect("restart node-1");
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
    net.isolate(2).expect("isolate");
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
    net.heal().expect("heal");
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
