//! Tools from outside the workspace that some tests need (Docker, Chromium, tmux, Prometheus,
//! libfaketime).
//!
//! A test whose tool is missing calls [`skip_missing`] (or [`skip_without`]): under CI
//! (`CI=true` or `CI=1`) that fails the test, naming the tool and how to install it, so a CI run
//! cannot pass by skipping what it was meant to check; elsewhere the test prints
//! `skipped: <tool> not found (...)` and returns. Tests gated on a real node
//! (`LOGOS_BLOCKCHAIN_NODE_BIN`) or a real cluster (`KUBECONFIG`) do not use this: they skip by
//! design, CI or not.
//!
//! Shared by the engine's and the bindings' tests (`bindings/tests/common/mod.rs` includes this
//! file), so both crates decide the same way.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// How to get `tool`, for the failure message.
pub fn install_hint(tool: &str) -> &'static str {
    match tool {
        "docker" => {
            "run a Docker Engine with docker-compose (Debian: apt-get install docker.io docker-compose; CI's machine starts the daemon)"
        }
        "chromium" => "apt-get install chromium (.ci/deps installs it)",
        "tmux" => "apt-get install tmux (.ci/deps installs it)",
        "prometheus" => "apt-get install prometheus (.ci/deps installs it)",
        "python3" => "apt-get install python3 (.ci/deps installs it)",
        "libfaketime" => "apt-get install faketime (.ci/deps installs it)",
        _ => "see .ci/deps",
    }
}

/// Whether the `CI` variable's value means "running under CI".
pub fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        v == "1" || v.eq_ignore_ascii_case("true")
    })
}

/// What a test does when `tool` is missing (`why`: what was tried), given the value of `CI`:
/// `Ok(line)` to print and skip, `Err(message)` to fail with.
pub fn decide(tool: &str, why: &str, ci: Option<&str>) -> Result<String, String> {
    if is_ci(ci) {
        Err(format!(
            "{tool} is required under CI but is missing ({why}); to get it: {}; outside CI (CI unset) this test is skipped instead",
            install_hint(tool)
        ))
    } else {
        Ok(format!("skipped: {tool} not found ({why})"))
    }
}

/// Called by a test whose `tool` is missing: panics under CI, else prints the skip line (the
/// caller then returns).
pub fn skip_missing(tool: &str, why: &str) {
    match decide(tool, why, std::env::var("CI").ok().as_deref()) {
        Ok(line) => eprintln!("{line}"),
        Err(message) => panic!("{message}"),
    }
}

/// `missing` is why `tool` cannot be used, or `None` when it can: true when the test should
/// return now (skipped); panics under CI.
pub fn skip_without(tool: &str, missing: Option<String>) -> bool {
    match missing {
        Some(why) => {
            skip_missing(tool, &why);
            true
        }
        None => false,
    }
}

/// The first of `names` found as a file on PATH.
pub fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        path.split(':')
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}
