//! Teardown (graceful, then forced), the last-resort kill on drop, the
//! `run.json` label, and `gc` for runs that were killed before cleaning up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::LocalTestnet;
use super::control::signal;
use crate::deploy::{DeployError, NodeState, TeardownSummary};

/// Contents of `<run dir>/run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunLabel {
    pub run_id: String,
    pub deployer: String,
    /// Pid of the process that owns the run (the runner).
    pub owner_pid: u32,
    pub run_dir: PathBuf,
    /// Pids of the node processes (each leads its own process group).
    pub node_pids: Vec<u32>,
}

pub(super) fn write_run_json(net: &LocalTestnet) {
    let label = RunLabel {
        run_id: net.run_id.clone(),
        deployer: "local".to_owned(),
        owner_pid: std::process::id(),
        run_dir: net.run_dir.clone(),
        node_pids: net.lock_nodes().iter().filter_map(|n| n.pid).collect(),
    };
    if let Ok(text) = serde_json::to_string_pretty(&label) {
        let _ = std::fs::write(net.run_dir.join("run.json"), text);
    }
}

pub(super) async fn teardown(
    net: &LocalTestnet,
    keep: bool,
) -> Result<TeardownSummary, DeployError> {
    let started = Instant::now();
    if net.ctl.begin_teardown() {
        return Ok(TeardownSummary::repeated(
            Some(net.run_dir.clone()),
            net.run_dir.exists(),
        ));
    }
    // A control action in flight (a restart is stop + start) ends first, so no node it starts
    // escapes the kill below; every later action sees `torn_down` and is refused.
    let _control = tokio::time::timeout(Duration::from_secs(30), net.ctl.lock.lock()).await;
    if let Some(l) = &net.links {
        l.shutdown();
    }
    let live: Vec<(usize, u32, NodeState)> = net
        .lock_nodes()
        .iter()
        .filter_map(|n| n.pid.map(|p| (n.index, p, n.state)))
        .collect();
    for &(_, pid, state) in &live {
        signal(pid, Signal::SIGTERM);
        if state == NodeState::Paused {
            signal(pid, Signal::SIGCONT);
        }
    }
    let mut killed = 0;
    let waits = live
        .iter()
        .map(|&(i, _, _)| super::control::wait_exit(net, i, Duration::from_secs(2)));
    let exited = futures::future::join_all(waits).await;
    for (&(i, pid, _), ok) in live.iter().zip(exited) {
        if !ok {
            killed += 1;
            signal(pid, Signal::SIGKILL);
            signal(pid, Signal::SIGCONT);
            super::control::wait_exit(net, i, Duration::from_secs(5)).await;
        }
    }
    for n in net.lock_nodes().iter_mut() {
        n.state = NodeState::Stopped;
        n.pid = None;
    }
    crate::deploy::close_run_dir(&net.run_dir, &net.run_id, keep, || {
        write_run_json(net);
        trim_kept(
            &net.run_dir,
            net.lock_nodes().iter().map(|n| n.dir.clone()).collect(),
        );
    })
    .map(|()| TeardownSummary::finished(killed, Some(net.run_dir.clone()), keep, started))
}

/// Last resort (drop without teardown): SIGKILL every node now and remove
/// the run dir.
pub(super) fn kill_all_now(net: &mut LocalTestnet) {
    if net.ctl.begin_teardown() {
        return;
    }
    if let Some(l) = &net.links {
        l.shutdown();
    }
    let nodes = net.nodes.get_mut().unwrap_or_else(|e| e.into_inner());
    for n in nodes.iter_mut() {
        if let Some(pid) = n.pid.take() {
            signal(pid, Signal::SIGKILL);
            signal(pid, Signal::SIGCONT);
        }
        if let Some(mut c) = n.child.take() {
            // reap if it is already gone; otherwise tokio's orphan reaper will
            let _ = c.try_wait();
        }
    }
    let _ = std::fs::remove_dir_all(&net.run_dir);
}

/// What `gc` cleaned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcSummary {
    /// Run dirs removed.
    pub removed: Vec<PathBuf>,
    /// Node processes killed.
    pub killed: usize,
    /// Run dirs left alone because their owner is still running.
    pub skipped_live: Vec<PathBuf>,
    /// Run dirs left alone because they were kept on purpose (a `KEPT` marker).
    pub skipped_kept: Vec<PathBuf>,
    /// Run dirs left alone because another user owns them.
    pub skipped_foreign: Vec<PathBuf>,
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn cmdline_mentions(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).contains(needle))
        .unwrap_or(false)
}

/// Cleans what killed local runs left under `base` (default: the system
/// temp dir): for every `nomos-script-*` dir of this user whose owner process
/// is gone and that was not kept on purpose (`KEPT`), SIGKILLs its node
/// processes (only those whose command line names the run dir) and removes
/// the dir.
pub fn gc(base: Option<&Path>) -> std::io::Result<GcSummary> {
    let base = base
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let mut summary = GcSummary::default();
    for entry in std::fs::read_dir(&base)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("nomos-script-") || !entry.path().is_dir() {
            continue;
        }
        let dir = entry.path();
        let owner = {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(&dir).map(|m| m.uid()).ok()
        };
        if owner != Some(crate::gc::current_uid()) {
            summary.skipped_foreign.push(dir);
            continue;
        }
        if crate::deploy::read_kept(&dir).is_some() {
            summary.skipped_kept.push(dir);
            continue;
        }
        let label: Option<RunLabel> = std::fs::read_to_string(dir.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if label.is_none() {
            // a run that is still starting has no label yet: leave young dirs alone
            let young = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age < Duration::from_secs(60));
            if young {
                summary.skipped_live.push(dir);
                continue;
            }
        }
        if let Some(label) = &label {
            if label.owner_pid != std::process::id() && alive(label.owner_pid) {
                summary.skipped_live.push(dir);
                continue;
            }
            let needle = dir.display().to_string();
            for &pid in &label.node_pids {
                if alive(pid) && cmdline_mentions(pid, &needle) {
                    signal(pid, Signal::SIGKILL);
                    signal(pid, Signal::SIGCONT);
                    summary.killed += 1;
                }
            }
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            summary.removed.push(dir);
        }
    }
    Ok(summary)
}

/// Largest kept run dir: past it, the nodes' chain databases go (logs and configs stay).
pub const KEPT_BUDGET_BYTES: u64 = 100 * 1024 * 1024;

/// Bytes used under `dir` (allocated blocks, as `du` counts them).
fn disk_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Keeps a kept run dir under [`KEPT_BUDGET_BYTES`]: when it is larger (a failed run of
/// hundreds of nodes), every node's `data/` (its chain database, rebuilt by syncing) is
/// removed and a `TRIMMED` note says so; logs, configs and outputs, the evidence a failure
/// message points at, are kept.
pub(crate) fn trim_kept(run_dir: &std::path::Path, node_dirs: Vec<std::path::PathBuf>) {
    let before = disk_usage(run_dir);
    if before <= KEPT_BUDGET_BYTES {
        return;
    }
    for d in &node_dirs {
        let _ = std::fs::remove_dir_all(d.join("data"));
    }
    let after = disk_usage(run_dir);
    let _ = std::fs::write(
        run_dir.join("TRIMMED"),
        format!(
            "the run dir took {} MiB, over the {} MiB budget of a kept run: the nodes' data dirs \
             (chain databases) were removed; logs and configs are kept ({} MiB now)\n",
            before / (1024 * 1024),
            KEPT_BUDGET_BYTES / (1024 * 1024),
            after / (1024 * 1024)
        ),
    );
}

#[cfg(test)]
mod trim_tests {
    use super::*;

    #[test]
    fn a_kept_dir_over_budget_loses_only_its_data_dirs() {
        let run = tempfile::tempdir().unwrap();
        let mut dirs = Vec::new();
        for i in 0..3 {
            let d = run.path().join(format!("node-{i}"));
            std::fs::create_dir_all(d.join("data")).unwrap();
            std::fs::create_dir_all(d.join("logs")).unwrap();
            std::fs::write(d.join("logs/node.log"), b"evidence").unwrap();
            // 40 MiB of data each: 120 MiB in all
            std::fs::write(d.join("data/chain.redb"), vec![1u8; 40 * 1024 * 1024]).unwrap();
            dirs.push(d);
        }
        trim_kept(run.path(), dirs.clone());
        for d in &dirs {
            assert!(!d.join("data").exists());
            assert!(d.join("logs/node.log").exists());
        }
        assert!(run.path().join("TRIMMED").exists());
        assert!(disk_usage(run.path()) < KEPT_BUDGET_BYTES);
        // under budget: untouched
        let small = tempfile::tempdir().unwrap();
        let d = small.path().join("node-0");
        std::fs::create_dir_all(d.join("data")).unwrap();
        std::fs::write(d.join("data/chain.redb"), b"x").unwrap();
        trim_kept(small.path(), vec![d.clone()]);
        assert!(d.join("data/chain.redb").exists());
        assert!(!small.path().join("TRIMMED").exists());
    }
}
