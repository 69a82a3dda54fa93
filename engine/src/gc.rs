//! `gc`: removes what killed runs left behind. Docker containers, networks and volumes labelled
//! `nomos-script.run-id` whose owner process is gone, and run dirs `nomos-script-*` in the temp
//! dir whose `run.json` owner is gone (killing node processes the dead runner left, only those
//! whose command line names the run dir).
//!
//! The calling process counts as gone: gc is run from a process that owns no testnet (the CLI's
//! `gc`), so a leaked handle of its own is collected too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::deploy::compose::cleanup::{Removed, remove_resources};
use crate::deploy::compose::docker::{self, LABEL_OWNER, LABEL_RUN};

/// What `gc` found and removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// True when nothing was removed (only listed).
    pub dry_run: bool,
    /// Run ids whose Docker resources were (or would be) removed.
    pub runs: Vec<String>,
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// Stale node images (`nomos-script-node:*` of older binaries; the newest is kept).
    pub images: Vec<String>,
    /// Run dirs removed.
    pub run_dirs: Vec<PathBuf>,
    /// Node processes killed.
    pub killed: usize,
    /// Runs and dirs left alone because their owner still runs.
    pub skipped_live: Vec<String>,
    /// Why the Docker part was skipped or failed (no engine, say); the local part still ran.
    pub docker_error: Option<String>,
    /// Other failures (a dir that could not be removed).
    pub errors: Vec<String>,
}

impl GcReport {
    /// True when nothing was found to clean.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.images.is_empty()
            && self.run_dirs.is_empty()
            && self.killed == 0
    }

    /// Lines for a terminal.
    pub fn lines(&self) -> Vec<String> {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut v = Vec::new();
        for (what, items) in [
            ("container", &self.containers),
            ("network", &self.networks),
            ("volume", &self.volumes),
            ("image", &self.images),
        ] {
            for i in items {
                v.push(format!("{verb} {what} {i}"));
            }
        }
        for d in &self.run_dirs {
            v.push(format!("{verb} run dir {}", d.display()));
        }
        if self.killed > 0 {
            let verb = if self.dry_run { "would kill" } else { "killed" };
            v.push(format!("{verb} {} node processes", self.killed));
        }
        for s in &self.skipped_live {
            v.push(format!("left alone (owner still running): {s}"));
        }
        if let Some(e) = &self.docker_error {
            v.push(format!("docker: {e}"));
        }
        for e in &self.errors {
            v.push(format!("error: {e}"));
        }
        if v.is_empty() {
            v.push("nothing to clean".to_owned());
        }
        v
    }
}

fn alive(pid: u32) -> bool {
    pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
}

/// Cleans leftovers of dead runs: Docker resources by label, then local run dirs in the system
/// temp dir. With `dry_run`, only reports.
pub async fn collect(dry_run: bool) -> GcReport {
    collect_in(dry_run, &std::env::temp_dir()).await
}

/// [`collect`] with run dirs looked for under `base`.
pub async fn collect_in(dry_run: bool, base: &Path) -> GcReport {
    let mut report = GcReport {
        dry_run,
        ..Default::default()
    };
    match docker::connect().await {
        Ok(d) => {
            if let Err(e) = collect_docker(&d, dry_run, &mut report).await {
                report.docker_error = Some(e);
            }
        }
        Err(e) => report.docker_error = Some(e),
    }
    collect_dirs(base, dry_run, &mut report);
    report
}

async fn collect_docker(
    d: &bollard::Docker,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<(), String> {
    // Owner pid of every run, from its containers and networks.
    let all = docker::label_filter(LABEL_RUN);
    let mut owners: BTreeMap<String, Option<u32>> = BTreeMap::new();
    let containers = d
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(all.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("failed to list containers: {}", docker::msg(&e)))?;
    let networks = d
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
            filters: Some(all.clone()),
        }))
        .await
        .map_err(|e| format!("failed to list networks: {}", docker::msg(&e)))?;
    let volumes = d
        .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
            filters: Some(all),
        }))
        .await
        .map_err(|e| format!("failed to list volumes: {}", docker::msg(&e)))?;
    let labelled = containers
        .iter()
        .filter_map(|c| c.labels.clone())
        .chain(networks.iter().filter_map(|n| n.labels.clone()))
        .chain(volumes.volumes.iter().flatten().map(|v| v.labels.clone()));
    for labels in labelled {
        if let Some(run) = labels.get(LABEL_RUN) {
            let owner = labels.get(LABEL_OWNER).and_then(|p| p.parse().ok());
            let e = owners.entry(run.clone()).or_insert(owner);
            if e.is_none() {
                *e = owner;
            }
        }
    }
    let live: BTreeSet<String> = owners
        .iter()
        .filter(|(_, owner)| owner.is_some_and(alive))
        .map(|(run, _)| run.clone())
        .collect();
    for run in &live {
        report.skipped_live.push(format!("run {run}"));
    }
    let dead = |labels: &Option<std::collections::HashMap<String, String>>| {
        labels
            .as_ref()
            .and_then(|l| l.get(LABEL_RUN))
            .is_some_and(|r| !live.contains(r))
    };
    let name_of = |names: &Option<Vec<String>>, id: &Option<String>| {
        names
            .as_ref()
            .and_then(|n| n.first().map(|s| s.trim_start_matches('/').to_owned()))
            .or_else(|| id.clone())
            .unwrap_or_default()
    };
    let doomed = Removed {
        containers: containers
            .iter()
            .filter(|c| dead(&c.labels))
            .map(|c| name_of(&c.names, &c.id))
            .collect(),
        networks: networks
            .iter()
            .filter(|n| dead(&n.labels))
            .filter_map(|n| n.name.clone().or(n.id.clone()))
            .collect(),
        volumes: volumes
            .volumes
            .iter()
            .flatten()
            .filter(|v| dead(&Some(v.labels.clone())))
            .map(|v| v.name.clone())
            .collect(),
    };
    report.runs = owners
        .keys()
        .filter(|r| !live.contains(*r))
        .cloned()
        .collect();
    report.containers = doomed.containers.clone();
    report.networks = doomed.networks.clone();
    report.volumes = doomed.volumes.clone();
    if !dry_run {
        remove_resources(d, &doomed).await?;
    }
    collect_images(d, dry_run, report).await
}

/// Node images built for older binaries: every `nomos-script.image=node` image but the newest
/// tagged one, unless a container uses it (the engine refuses; that is fine).
async fn collect_images(
    d: &bollard::Docker,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<(), String> {
    let mut images = d
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters: Some(docker::label_filter("nomos-script.image=node")),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("failed to list images: {}", docker::msg(&e)))?;
    // Newest tagged first; untagged ones (a tag that moved to a rebuild) are never kept.
    let tagged =
        |i: &bollard::models::ImageSummary| i.repo_tags.iter().any(|t| t != "<none>:<none>");
    images.sort_by_key(|i| (!tagged(i), std::cmp::Reverse(i.created)));
    let keep = images.first().filter(|i| tagged(i)).map(|i| i.id.clone());
    for img in images
        .iter()
        .filter(|i| Some(&i.id) != keep.as_ref() && i.containers <= 0)
    {
        let name = img
            .repo_tags
            .iter()
            .find(|t| *t != "<none>:<none>")
            .cloned()
            .unwrap_or_else(|| img.id.clone());
        if dry_run {
            report.images.push(name);
            continue;
        }
        match d
            .remove_image(
                &img.id,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => report.images.push(name),
            Err(e) if docker::is_not_found(&e) => {}
            // in use by a container (409): left alone
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => report
                .errors
                .push(format!("image {name}: {}", docker::msg(&e))),
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct RunJson {
    #[serde(default)]
    owner_pid: u32,
    #[serde(default)]
    node_pids: Vec<u32>,
}

fn cmdline_mentions(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).contains(needle))
        .unwrap_or(false)
}

fn collect_dirs(base: &Path, dry_run: bool, report: &mut GcReport) {
    let entries = match std::fs::read_dir(base) {
        Ok(e) => e,
        Err(e) => {
            report
                .errors
                .push(format!("failed to read {}: {e}", base.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if !name.starts_with("nomos-script-") || !dir.is_dir() {
            continue;
        }
        let label: Option<RunJson> = std::fs::read_to_string(dir.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        match &label {
            None => {
                // A run still starting has no label yet: leave young dirs alone.
                let young = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < Duration::from_secs(60));
                if young {
                    report.skipped_live.push(dir.display().to_string());
                    continue;
                }
            }
            Some(l) if alive(l.owner_pid) => {
                report.skipped_live.push(dir.display().to_string());
                continue;
            }
            Some(l) => {
                let needle = dir.display().to_string();
                for &pid in &l.node_pids {
                    if pid != std::process::id()
                        && Path::new(&format!("/proc/{pid}")).exists()
                        && cmdline_mentions(pid, &needle)
                    {
                        if !dry_run {
                            // each node leads its own process group
                            let _ = nix::sys::signal::killpg(
                                Pid::from_raw(pid as i32),
                                Signal::SIGKILL,
                            );
                            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                        }
                        report.killed += 1;
                    }
                }
            }
        }
        if dry_run {
            report.run_dirs.push(dir);
        } else {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => report.run_dirs.push(dir),
                Err(e) => report
                    .errors
                    .push(format!("failed to remove {}: {e}", dir.display())),
            }
        }
    }
}
