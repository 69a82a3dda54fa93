//! `ls`, `down` and the stale-state part of `gc`.

use std::path::Path;
use std::time::{Duration, Instant};

use engine::client::NodeClient;
use engine::live::http::ControlClient;
use engine::live::state::{self, LiveState, StateError, Status, pid_alive};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::supervise::node_pids;
use crate::exit;

/// How long `down` waits for the supervisor to tear down and exit.
const DOWN_WAIT: Duration = Duration::from_secs(90);

fn status_word(st: &LiveState) -> &'static str {
    if !st.supervisor_alive() {
        return "stale";
    }
    match st.status {
        Status::Ready => "running",
        Status::Starting => "starting",
        Status::Stopping => "stopping",
        Status::Failed => "failed",
    }
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `nomos-script ls`: one line per testnet, heights read live (1 s deadline per node).
pub fn ls(handle: &tokio::runtime::Handle) -> i32 {
    let all = state::list();
    if all.is_empty() {
        println!(
            "no live testnets (state dir {})",
            state::testnets_dir().display()
        );
        return exit::PASSED;
    }
    println!(
        "{:<20} {:<9} {:>5}  {:<24} {:>6}  STATUS",
        "NAME", "DEPLOYER", "NODES", "HEIGHTS", "AGE"
    );
    for (path, st) in all {
        match st {
            Ok(st) => {
                let status = status_word(&st);
                let heights = if status == "running" {
                    let clients: Vec<NodeClient> = st
                        .node_urls
                        .iter()
                        .enumerate()
                        .map(|(i, u)| NodeClient::new(i, u).with_timeout(Duration::from_secs(1)))
                        .collect();
                    let hs = handle.block_on(futures::future::join_all(
                        clients.iter().map(|c| c.consensus_info()),
                    ));
                    hs.into_iter()
                        .map(|h| h.map_or_else(|_| "?".to_string(), |i| i.height.to_string()))
                        .collect::<Vec<_>>()
                        .join(",")
                } else {
                    "-".to_string()
                };
                println!(
                    "{:<20} {:<9} {:>5}  {:<24} {:>6}  {}",
                    st.name,
                    st.deployer,
                    st.node_urls.len(),
                    heights,
                    age(st.age_secs()),
                    status
                );
            }
            Err(e) => println!(
                "{:<20} {:<9} {:>5}  {:<24} {:>6}  unreadable: {e}",
                path.file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
                "-",
                "-",
                "-",
                "-"
            ),
        }
    }
    exit::PASSED
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !pid_alive(pid)
}

fn cmdline_mentions(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).contains(needle))
        .unwrap_or(false)
}

/// Cleans what a dead supervisor left: node processes (only those whose command line names the
/// run dir), the run dir, and for compose the containers of dead owners. Returns what it did.
fn clean_dead(handle: &tokio::runtime::Handle, st: &LiveState) -> Vec<String> {
    let mut done = Vec::new();
    if let Some(dir) = &st.run_dir {
        let needle = dir.display().to_string();
        let mut pids = node_pids(dir);
        pids.extend(&st.pids);
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            if pid_alive(pid) && cmdline_mentions(pid, &needle) {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                done.push(format!("killed node process {pid}"));
            }
        }
        if dir.exists() {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => done.push(format!("removed {}", dir.display())),
                Err(e) => done.push(format!("failed to remove {}: {e}", dir.display())),
            }
        }
    }
    if st.deployer == "compose" {
        // containers are labelled with their owner's pid: the dead supervisor's are collected
        let report = handle.block_on(engine::gc::collect(false));
        done.extend(report.lines());
    }
    done
}

/// The state of the live testnet `name`, or the exit code and message: an unknown or invalid
/// name is a usage error (2), listing the known names; an unreadable state file is 3.
pub fn load_named(name: &str) -> Result<LiveState, (i32, String)> {
    match state::load(name) {
        Ok(st) => Ok(st),
        Err(e @ (StateError::NotFound { .. } | StateError::BadName(_))) => {
            Err((exit::SCRIPT_ERROR, format!("{e}; {}", known_names())))
        }
        Err(e) => Err((exit::INFRA_ERROR, e.to_string())),
    }
}

/// `known: a, b (nomos-script ls)`, or that there is none.
fn known_names() -> String {
    let names: Vec<String> = state::list()
        .into_iter()
        .filter_map(|(path, _)| {
            path.file_stem()
                .map(|s| format!("`{}`", s.to_string_lossy()))
        })
        .collect();
    if names.is_empty() {
        "there are no live testnets (`nomos-script up FILE --name NAME` starts one)".to_string()
    } else {
        format!("known: {} (`nomos-script ls` lists them)", names.join(", "))
    }
}

/// `nomos-script down NAME`.
pub fn down(handle: &tokio::runtime::Handle, name: &str) -> i32 {
    let st = match load_named(name) {
        Ok(s) => s,
        Err((code, message)) => {
            eprintln!("error: {message}");
            return code;
        }
    };
    let started = Instant::now();
    let pid = st.supervisor_pid;
    if st.supervisor_alive() {
        let asked = st
            .control_url
            .as_deref()
            .zip(st.control_secret.as_deref())
            .and_then(|(u, secret)| ControlClient::new(u, secret).ok())
            .map(|c| handle.block_on(c.call("POST", "/shutdown", None, DOWN_WAIT)));
        match asked {
            Some(Ok(_)) => {}
            Some(Err(ref e)) => {
                eprintln!("note: {e}; sending SIGTERM to the supervisor (pid {pid})")
            }
            None => {}
        }
        if !matches!(asked, Some(Ok(_))) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        if !wait_gone(pid, DOWN_WAIT) {
            eprintln!(
                "warning: the supervisor (pid {pid}) did not exit within {}; killing it",
                humantime::format_duration(DOWN_WAIT)
            );
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(5));
        }
    } else {
        println!("the supervisor of `{name}` (pid {pid}) is gone: cleaning up what it left");
    }
    for line in clean_dead(handle, &st) {
        println!("{line}");
    }
    if let Err(e) = state::remove(name) {
        eprintln!("error: {e}");
        return exit::INFRA_ERROR;
    }
    println!(
        "testnet `{name}` down ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    exit::PASSED
}

/// The stale-state part of `gc`: for every state file whose supervisor is dead (or that cannot
/// be read), cleans what it left and removes it. Returns one line per action.
pub fn gc_stale(handle: &tokio::runtime::Handle, dry_run: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (path, st) in state::list() {
        match st {
            Ok(st) if st.supervisor_alive() => {}
            Ok(st) => {
                if dry_run {
                    out.push(format!("would remove stale testnet `{}`", st.name));
                    continue;
                }
                out.extend(clean_dead(handle, &st));
                let _ = state::remove(&st.name);
                out.push(format!("removed stale testnet `{}`", st.name));
            }
            Err(e) => {
                if dry_run {
                    out.push(format!("would remove unreadable {}", path.display()));
                    continue;
                }
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(path.with_extension("log"));
                out.push(format!("removed unreadable {} ({e})", path.display()));
            }
        }
    }
    out
}

/// Whether a state dir holds nothing (tests).
pub fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}
