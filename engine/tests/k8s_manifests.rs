//! Snapshots of every manifest the k8s deployer sends for a 3-node topology with overrides, and
//! the check that `assets/k8s/` is what the same code renders (set `UPDATE_K8S_ASSETS=1` to
//! rewrite the assets after a deliberate change; `cargo insta review` for the snapshots).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use engine::deploy::k8s::manifest::{
    self, ApiAccess, Blocked, K8sResources, K8sStorage, ManifestSettings,
};
use engine::nodekind::ReferenceNode;
use engine::topology::{Topology, TopologyBuilder};

/// Fixed genesis time (2026-01-01T00:00:00Z) so the output is deterministic.
const GENESIS_MS: u64 = 1_767_225_600_000;

fn kind() -> Arc<ReferenceNode> {
    Arc::new(ReferenceNode { binary: None })
}

fn args() -> Vec<String> {
    manifest::node_args(&*kind()).unwrap()
}

/// 3 nodes, a line (0-1-2), a global and a per-node override, a follower.
fn topology() -> Topology {
    TopologyBuilder::new()
        .nodes(3)
        .network_line()
        .slot_duration(Duration::from_millis(500))
        .stake(2, 0)
        .wallets(2)
        .seed(42)
        .with_override("limits.max_block_txs", 64.into())
        .with_node_override(1, "limits.mempool_capacity", 500.into())
        .build()
        .unwrap()
}

fn settings(access: ApiAccess, storage: K8sStorage) -> ManifestSettings {
    ManifestSettings {
        namespace: "nomos-script-snap".to_owned(),
        run_id: "snap".to_owned(),
        owner: Some((4242, "ci-host".to_owned())),
        image: "nomos-script-node:0123456789ab".to_owned(),
        pull_policy: Some("Never".to_owned()),
        resources: K8sResources::requests("100m", "64Mi").with_limits("1", "256Mi"),
        access,
        storage,
        args: args(),
        env: vec![("LOGOS_BLOCKCHAIN_LOG_LEVEL".to_owned(), "debug".to_owned())],
    }
}

fn yaml<T: serde::Serialize>(o: &T) -> String {
    serde_yaml::to_string(o).unwrap()
}

#[test]
fn every_manifest_of_a_three_node_run() {
    let m = manifest::render(
        &topology(),
        &*kind(),
        &settings(ApiAccess::PortForward, K8sStorage::EmptyDir),
        GENESIS_MS,
    )
    .unwrap();
    assert_eq!(m.nodes.len(), 3);
    insta::assert_snapshot!("k8s_namespace", yaml(&m.namespace));
    for n in &m.nodes {
        let i = n.index;
        insta::assert_snapshot!(format!("k8s_node{i}_configmap"), yaml(&n.config_map));
        insta::assert_snapshot!(format!("k8s_node{i}_service"), yaml(&n.service));
        insta::assert_snapshot!(format!("k8s_node{i}_statefulset"), yaml(&n.stateful_set));
    }
    // What the snapshots pin, spelled out: overrides reach the configs, peers are Service names.
    let config =
        |i: usize| m.nodes[i].config_map.data.as_ref().unwrap()[manifest::CONFIG_KEY].clone();
    for i in 0..3 {
        assert!(config(i).contains("max_block_txs: 64"), "{}", config(i));
    }
    assert!(config(1).contains("mempool_capacity: 500"));
    assert!(!config(0).contains("mempool_capacity: 500"));
    assert!(config(0).contains("node-1:19000"), "{}", config(0));
    assert!(config(1).contains("node-2:19000"), "{}", config(1));
}

#[test]
fn node_port_access_and_persistent_storage() {
    let m = manifest::render(
        &topology(),
        &*kind(),
        &settings(
            ApiAccess::NodePort,
            K8sStorage::Persistent("1Gi".to_owned()),
        ),
        GENESIS_MS,
    )
    .unwrap();
    insta::assert_snapshot!("k8s_node0_service_nodeport", yaml(&m.nodes[0].service));
    insta::assert_snapshot!(
        "k8s_node0_statefulset_persistent",
        yaml(&m.nodes[0].stateful_set)
    );
}

#[test]
fn partition_policies() {
    let s = settings(ApiAccess::PortForward, K8sStorage::EmptyDir);
    // [[0,1],[2]] blocks 0-2 and 1-2; node 1 is also isolated from 0 by a second fault.
    let blocked = Blocked::from([(0, 2), (1, 2), (0, 1)]);
    let p = manifest::fault_policies(&s, 3, &blocked).unwrap();
    assert_eq!(p.len(), 3);
    insta::assert_snapshot!(
        "k8s_policies_isolated_all",
        manifest::to_yaml_docs(&p.iter().collect::<Vec<_>>()).unwrap()
    );
    let p = manifest::fault_policies(&s, 3, &Blocked::from([(0, 2), (1, 2)])).unwrap();
    insta::assert_snapshot!(
        "k8s_policies_partition_01_2",
        manifest::to_yaml_docs(&p.iter().collect::<Vec<_>>()).unwrap()
    );
    assert!(
        manifest::fault_policies(&s, 3, &Blocked::new())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_settings_are_named() {
    let mut s = settings(ApiAccess::PortForward, K8sStorage::EmptyDir);
    s.pull_policy = Some("Sometimes".to_owned());
    let e = manifest::render(&topology(), &*kind(), &s, GENESIS_MS).unwrap_err();
    assert!(
        e.contains("LOGOS_BLOCKCHAIN_TESTNET_IMAGE_PULL_POLICY = `Sometimes`"),
        "{e}"
    );
    let mut s = settings(ApiAccess::PortForward, K8sStorage::EmptyDir);
    s.resources.memory_limit = Some("256MB".to_owned());
    let e = manifest::render(&topology(), &*kind(), &s, GENESIS_MS).unwrap_err();
    assert!(e.contains("memory_limit = `256MB`"), "{e}");
    let mut s = settings(ApiAccess::PortForward, K8sStorage::EmptyDir);
    s.namespace = "Bad_NS".to_owned();
    let e = manifest::render(&topology(), &*kind(), &s, GENESIS_MS).unwrap_err();
    assert!(e.contains("namespace `Bad_NS`"), "{e}");
}

/// The settings of `assets/k8s/`: what a user applies by hand (no owner labels, so `gc`
/// leaves it alone), with the default image name.
fn asset_settings() -> ManifestSettings {
    ManifestSettings {
        namespace: "nomos-script-example".to_owned(),
        run_id: "example".to_owned(),
        owner: None,
        image: manifest::DEFAULT_IMAGE.to_owned(),
        pull_policy: Some("IfNotPresent".to_owned()),
        resources: K8sResources::requests("100m", "64Mi").with_limits("1", "256Mi"),
        access: ApiAccess::PortForward,
        storage: K8sStorage::EmptyDir,
        args: args(),
        env: Vec::new(),
    }
}

#[test]
fn assets_are_the_rendered_manifests() {
    let topo = TopologyBuilder::new()
        .nodes(3)
        .network_full()
        .seed(1)
        .build()
        .unwrap();
    let m = manifest::render(&topo, &*kind(), &asset_settings(), GENESIS_MS).unwrap();
    let files = manifest::asset_files(&m).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/k8s");
    if std::env::var_os("UPDATE_K8S_ASSETS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    for (name, text) in &files {
        let path = dir.join(name);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (render it with UPDATE_K8S_ASSETS=1 cargo test -p nomos-script-engine --test k8s_manifests)",
                path.display()
            )
        });
        assert_eq!(
            &committed,
            text,
            "{} differs from the rendered manifests (UPDATE_K8S_ASSETS=1 rewrites it)",
            path.display()
        );
    }
    // No stray yaml in the folder either.
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut rendered: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    rendered.sort();
    assert_eq!(on_disk, rendered);
}
