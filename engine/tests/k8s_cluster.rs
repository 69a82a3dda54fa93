//! The k8s deployer against a real cluster: deploy 3 nodes, wait until ready, restart one,
//! check it comes back and the chain moves, tear down and check the namespace is gone. Runs
//! only when `KUBECONFIG` points to a reachable cluster and `LOGOS_BLOCKCHAIN_TESTNET_IMAGE`
//! names a node image the cluster can start (see engine/src/deploy/k8s/README.md for kind and
//! k3s); otherwise it prints why it skipped and passes.

use std::sync::Arc;
use std::time::Duration;

use engine::deploy::k8s::K8sDeployer;
use engine::deploy::{DeployOptions, Deployer, NodeState};
use engine::nodekind::ReferenceNode;
use engine::topology::TopologyBuilder;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

async fn cluster() -> Result<kube::Client, String> {
    if std::env::var_os("KUBECONFIG").is_none() {
        return Err("no cluster (set KUBECONFIG)".to_owned());
    }
    let client = tokio::time::timeout(Duration::from_secs(10), kube::Client::try_default())
        .await
        .map_err(|_| "no cluster (set KUBECONFIG): loading the config took over 10s".to_owned())?
        .map_err(|e| format!("no cluster (set KUBECONFIG): {e}"))?;
    tokio::time::timeout(Duration::from_secs(10), client.apiserver_version())
        .await
        .map_err(|_| "no cluster (set KUBECONFIG): the API server did not answer".to_owned())?
        .map_err(|e| format!("no cluster (set KUBECONFIG): {e}"))?;
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_restart_and_teardown_on_a_real_cluster() {
    let client = match cluster().await {
        Ok(c) => c,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let Some(image) = std::env::var("LOGOS_BLOCKCHAIN_TESTNET_IMAGE")
        .ok()
        .filter(|i| !i.is_empty())
    else {
        println!(
            "skipped: set LOGOS_BLOCKCHAIN_TESTNET_IMAGE to a node image loaded into the cluster"
        );
        return;
    };
    let topo = TopologyBuilder::new()
        .nodes(3)
        .network_full()
        .slot_duration(Duration::from_millis(500))
        .build()
        .unwrap();
    let dep = K8sDeployer::new()
        .with_client(client.clone())
        .with_node_kind(Arc::new(ReferenceNode { binary: None }))
        .with_image(&image)
        .preserve(false)
        .with_rollout_timeout(Duration::from_secs(120));
    let opts = DeployOptions {
        ready_timeout: Duration::from_secs(90),
        keep_on_deploy_failure: false,
        ..DeployOptions::default()
    };
    let net = dep.deploy(&topo, &opts).await.expect("deploy");
    let ns = format!("nomos-script-{}", net.run_id());
    let before = net.clients().0[1].consensus_info().await.unwrap().height;
    net.restart(1).await.expect("restart node-1");
    assert_eq!(net.node_state(1), Some(NodeState::Running));
    net.wait_ready(Duration::from_secs(60))
        .await
        .expect("ready after the restart");
    let after = net.clients().0[1].consensus_info().await.unwrap().height;
    assert!(
        after >= 1,
        "node-1 height {after} after restart (was {before})"
    );
    net.teardown(false).await.expect("teardown");
    let api: Api<Namespace> = Api::all(client);
    assert!(
        api.get_opt(&ns).await.unwrap().is_none(),
        "{ns} left behind"
    );
}
