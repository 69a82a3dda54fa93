//! Shared helpers of the engine's integration tests: the reference node
//! binary, a deployer writing into a fresh temp dir, and leak checks.

#![allow(dead_code)]

pub mod tools;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::deploy::KeepRunDir;
use engine::deploy::local::LocalDeployer;
use engine::deploy::{AddNodeSpec, DeployOptions, Deployer, Testnet};
use engine::nodekind::ReferenceNode;
use engine::runner::RunOptions;
use engine::topology::{Topology, TopologyBuilder};

/// `<target>/debug/nomos-devnode`, next to this test executable's directory.
pub fn devnode_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test exe lives in <target>/debug/deps");
    let bin = dir.join("nomos-devnode");
    assert!(
        bin.exists(),
        "{} is missing: build it with cargo build -p nomos-devnode",
        bin.display()
    );
    bin
}

/// A local deployer running the reference node, with run dirs under `base`.
pub fn deployer(base: &Path) -> LocalDeployer {
    LocalDeployer::new()
        .with_node_kind(Arc::new(ReferenceNode {
            binary: Some(devnode_bin()),
        }))
        .with_base_dir(base.to_path_buf())
}

/// A testnet of `topo` from [`deployer`] with the default options (ready when it returns).
pub async fn deploy(base: &Path, topo: &Topology) -> Arc<dyn Testnet> {
    deployer(base)
        .deploy(topo, &DeployOptions::default())
        .await
        .expect("deploy")
}

/// `x` milliseconds.
pub fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// `x` seconds.
pub fn secs(x: u64) -> Duration {
    Duration::from_secs(x)
}

/// Run options of the scenario tests: the run dir is never kept, nodes get 20 s to be ready.
pub fn run_opts() -> RunOptions {
    RunOptions {
        keep: KeepRunDir::Never,
        ready_timeout: Duration::from_secs(20),
        ..RunOptions::default()
    }
}

/// A node to add at run time, dialling `peers`, with `stake` (0: a follower) and no overrides.
pub fn joiner(peers: &[usize], stake: u64) -> AddNodeSpec {
    AddNodeSpec {
        peers: peers.to_vec(),
        stake,
        overrides: Vec::new(),
    }
}

/// Why adding [`joiner`]`(peers, stake)` to `net` is refused.
pub async fn add_node_refused(net: &dyn Testnet, peers: &[usize], stake: u64) -> String {
    net.add_node(joiner(peers, stake))
        .await
        .unwrap_err()
        .to_string()
}

/// Fast chain: 100 ms slots, f = 0.9, k = 5.
pub fn fast(t: TopologyBuilder) -> TopologyBuilder {
    t.slot_duration(Duration::from_millis(100))
        .active_slot_coeff(0.9)
        .security_param(5)
}

/// Pids recorded in the run dir's run.json.
pub fn run_pids(run_dir: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(run_dir.join("run.json")).expect("run.json exists");
    let v: serde_json::Value = serde_json::from_str(&text).expect("run.json parses");
    v["node_pids"]
        .as_array()
        .expect("node_pids")
        .iter()
        .map(|p| p.as_u64().expect("pid") as u32)
        .collect()
}

/// True while a process exists (zombies count as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Live processes whose command line mentions `base` (node processes of a
/// run under `base` carry their config path on the command line).
pub fn procs_under(base: &Path) -> Vec<u32> {
    let needle = base.display().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).contains(&needle))
                .unwrap_or(false)
                && alive(pid)
        })
        .collect()
}

/// Asserts that no process of a run under `base` is left and `base` holds no run dir.
pub fn assert_empty(base: &Path) {
    let procs = procs_under(base);
    assert!(procs.is_empty(), "node processes left behind: {procs:?}");
    let left: Vec<_> = std::fs::read_dir(base)
        .expect("base dir readable")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(left.is_empty(), "run dirs left behind: {left:?}");
}
