//! `gc`: removes what killed runs left behind. Docker containers, networks and volumes labelled
//! `nomos-script.run-id` whose owner process is gone, and run dirs `nomos-script-*` in the temp
//! dir whose `run.json` owner is gone (killing node processes the dead runner left, only those
//! whose command line names the run dir).
//!
//! Never removed: a run dir kept on purpose (a `KEPT` marker: after a failure or `--keep`;
//! listed, and removed only with [`GcOptions::kept`]), a dir owned by another user, and a node
//! image that a container uses or whose binary is still there unchanged.
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
use crate::deploy::{KeptMarker, read_kept};

/// What `gc` may remove besides dead runs' leftovers.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Only list what would be removed.
    pub dry_run: bool,
    /// Also remove kept run dirs (`gc --kept`).
    pub kept: bool,
    /// With `kept`: only kept dirs older than this.
    pub older_than: Option<Duration>,
}

/// A kept run dir `gc` found.
#[derive(Debug, Clone, Serialize)]
pub struct KeptDir {
    pub dir: PathBuf,
    pub run_id: String,
    pub reason: String,
    /// Since it was kept (or, without a time in the marker, since the dir last changed).
    pub age: Duration,
}

/// A node process `gc` killed (or would kill).
#[derive(Debug, Clone, Serialize)]
pub struct KilledPid {
    pub pid: u32,
    pub run_id: String,
}

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
    /// The run id of each container, network and volume above.
    pub run_of: BTreeMap<String, String>,
    /// Stale node images (labelled node images whose binary is gone or changed, unused).
    pub images: Vec<String>,
    /// Node images left alone, with why.
    pub kept_images: Vec<String>,
    /// Run dirs removed, with their run id (empty when unknown).
    pub run_dirs: Vec<PathBuf>,
    pub run_dir_ids: BTreeMap<PathBuf, String>,
    /// Node processes killed.
    pub killed: usize,
    pub pids: Vec<KilledPid>,
    /// Run dirs kept on purpose and left alone (removed ones, with `--kept`, are in `run_dirs`).
    pub kept: Vec<KeptDir>,
    /// Runs and dirs left alone because their owner still runs.
    pub skipped_live: Vec<String>,
    /// Dirs left alone because another user owns them.
    pub skipped_foreign: Vec<PathBuf>,
    /// Why the Docker part was skipped or failed (no engine, say); the local part still ran.
    pub docker_error: Option<String>,
    /// Other failures (a dir that could not be removed).
    pub errors: Vec<String>,
}

/// `90s`, `5m`, `3h`, `2d`: the largest whole unit.
fn short_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
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

    /// Lines for a terminal: one per thing removed (or, in a dry run, to be removed), then one
    /// per thing left alone with why.
    pub fn lines(&self) -> Vec<String> {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut v = Vec::new();
        for run in &self.runs {
            v.push(format!("{verb} run {run} (owner gone)"));
        }
        for p in &self.pids {
            let verb = if self.dry_run { "would kill" } else { "killed" };
            v.push(format!("{verb} pid {} (node of run {})", p.pid, p.run_id));
        }
        for (what, items) in [
            ("container", &self.containers),
            ("network", &self.networks),
            ("volume", &self.volumes),
        ] {
            for i in items {
                match self.run_of.get(i) {
                    Some(run) => v.push(format!("{verb} {what} {i} (run {run})")),
                    None => v.push(format!("{verb} {what} {i}")),
                }
            }
        }
        for i in &self.images {
            v.push(format!("{verb} image {i}"));
        }
        for d in &self.run_dirs {
            match self.run_dir_ids.get(d).filter(|r| !r.is_empty()) {
                Some(run) => v.push(format!("{verb} run dir {} (run {run})", d.display())),
                None => v.push(format!("{verb} run dir {}", d.display())),
            }
        }
        if self.killed > self.pids.len() {
            let verb = if self.dry_run { "would kill" } else { "killed" };
            v.push(format!("{verb} {} node processes", self.killed));
        }
        for k in &self.kept {
            v.push(format!(
                "kept: {} (run {}, {}, {}); `gc --kept` removes it",
                k.dir.display(),
                k.run_id,
                k.reason,
                short_age(k.age)
            ));
        }
        for s in &self.skipped_live {
            v.push(format!("left alone (owner still running): {s}"));
        }
        for d in &self.skipped_foreign {
            v.push(format!("left alone (another user's): {}", d.display()));
        }
        for i in &self.kept_images {
            v.push(format!("left alone: image {i}"));
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

/// The effective uid of this process (the owner of its `/proc/self`).
pub fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
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
    collect_with(
        base,
        &GcOptions {
            dry_run,
            ..Default::default()
        },
    )
    .await
}

/// [`collect`] with run dirs looked for under `base`, and the options' say on kept dirs.
pub async fn collect_with(base: &Path, opts: &GcOptions) -> GcReport {
    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    match docker::connect().await {
        Ok(d) => {
            if let Err(e) = collect_docker(&d, opts.dry_run, &mut report).await {
                report.docker_error = Some(e);
            }
        }
        Err(e) => report.docker_error = Some(e),
    }
    collect_dirs(base, opts, current_uid(), &mut report);
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
        let pid = owners.get(run).copied().flatten().unwrap_or_default();
        report
            .skipped_live
            .push(format!("run {run} (owner pid {pid})"));
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
    let run_label = |labels: Option<&std::collections::HashMap<String, String>>| {
        labels
            .and_then(|l| l.get(LABEL_RUN))
            .cloned()
            .unwrap_or_default()
    };
    for c in containers.iter().filter(|c| dead(&c.labels)) {
        report
            .run_of
            .insert(name_of(&c.names, &c.id), run_label(c.labels.as_ref()));
    }
    for n in networks.iter().filter(|n| dead(&n.labels)) {
        if let Some(name) = n.name.clone().or(n.id.clone()) {
            report.run_of.insert(name, run_label(n.labels.as_ref()));
        }
    }
    for v in volumes.volumes.iter().flatten() {
        if dead(&Some(v.labels.clone())) {
            report
                .run_of
                .insert(v.name.clone(), run_label(Some(&v.labels)));
        }
    }
    report.containers = doomed.containers.clone();
    report.networks = doomed.networks.clone();
    report.volumes = doomed.volumes.clone();
    if !dry_run {
        remove_resources(d, &doomed).await?;
    }
    collect_images(d, dry_run, report).await
}

/// Node images this tool built (labelled `nomos-script.image=node` and with the binary they were
/// built from) that are stale: their binary is gone or no longer hashes to the image's tag (or
/// the tag moved to a rebuild), and no container at all (running or not) uses them. An image
/// without the binary label (built by an older version), or of a binary still there unchanged
/// (another checkout may run it at any time), is left alone.
async fn collect_images(
    d: &bollard::Docker,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<(), String> {
    use crate::deploy::compose::image::{IMAGE_BINARY_LABEL, tag_for};
    let images = d
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters: Some(docker::label_filter("nomos-script.image=node")),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("failed to list images: {}", docker::msg(&e)))?;
    for img in &images {
        let tags: Vec<String> = img
            .repo_tags
            .iter()
            .filter(|t| *t != "<none>:<none>")
            .cloned()
            .collect();
        let name = tags.first().cloned().unwrap_or_else(|| img.id.clone());
        let Some(binary) = img.labels.get(IMAGE_BINARY_LABEL).map(PathBuf::from) else {
            report.kept_images.push(format!(
                "{name} (no binary label: built by an older version)"
            ));
            continue;
        };
        if !tags.is_empty() && binary.is_file() {
            let bin = binary.clone();
            let current = tokio::task::spawn_blocking(move || tag_for(&bin))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            match current {
                Ok(t) if tags.contains(&t) => {
                    report.kept_images.push(format!(
                        "{name} (the image of {}, which is unchanged)",
                        binary.display()
                    ));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    report
                        .kept_images
                        .push(format!("{name} (cannot hash {}: {e})", binary.display()));
                    continue;
                }
            }
        }
        // any container, in any state, that was created from this image
        let users = d
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some([("ancestor".to_owned(), vec![img.id.clone()])].into()),
                ..Default::default()
            }))
            .await
            .map_err(|e| format!("failed to list containers: {}", docker::msg(&e)))?;
        if !users.is_empty() || img.containers > 0 {
            let names: Vec<String> = users
                .iter()
                .filter_map(|c| c.names.as_ref().and_then(|n| n.first().cloned()))
                .map(|n| n.trim_start_matches('/').to_owned())
                .collect();
            report
                .kept_images
                .push(format!("{name} (used by {})", names.join(", ")));
            continue;
        }
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
            // in use by a container created meanwhile (409): left alone
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => report.kept_images.push(format!("{name} (in use)")),
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
    run_id: String,
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

fn kept_age(marker: &KeptMarker, meta: &std::fs::Metadata) -> Duration {
    if marker.kept_at_ms > 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return now.saturating_sub(Duration::from_millis(marker.kept_at_ms));
    }
    meta.modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default()
}

/// The run dirs under `base`: only `nomos-script-*` dirs (not symlinks) owned by `uid` are
/// looked at; a kept one is listed unless the options ask for kept dirs (and it is old enough);
/// a dead run's is removed after its left-over node processes are killed.
pub fn collect_dirs(base: &Path, opts: &GcOptions, uid: u32, report: &mut GcReport) {
    use std::os::unix::fs::MetadataExt;
    let dry_run = opts.dry_run;
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
        let Some(id_from_name) = name.strip_prefix("nomos-script-") else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        if meta.uid() != uid {
            report.skipped_foreign.push(dir);
            continue;
        }
        let label: Option<RunJson> = std::fs::read_to_string(dir.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let run_id = label
            .as_ref()
            .map(|l| l.run_id.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| id_from_name.to_owned());
        match &label {
            None => {
                // A run still starting has no label yet: leave young dirs alone.
                let young = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < Duration::from_secs(60));
                if young {
                    report.skipped_live.push(format!(
                        "{} (no run.json yet, under 60s old)",
                        dir.display()
                    ));
                    continue;
                }
            }
            Some(l) if alive(l.owner_pid) => {
                report.skipped_live.push(format!(
                    "{} (run {run_id}, owner pid {})",
                    dir.display(),
                    l.owner_pid
                ));
                continue;
            }
            Some(_) => {}
        }
        if let Some(marker) = read_kept(&dir) {
            let age = kept_age(&marker, &meta);
            let old_enough = opts.older_than.is_none_or(|min| age >= min);
            if !opts.kept || !old_enough {
                report.kept.push(KeptDir {
                    dir,
                    run_id: if marker.run_id.is_empty() {
                        run_id
                    } else {
                        marker.run_id
                    },
                    reason: marker.reason,
                    age,
                });
                continue;
            }
        }
        if let Some(l) = &label {
            let needle = dir.display().to_string();
            for &pid in &l.node_pids {
                if pid != std::process::id()
                    && Path::new(&format!("/proc/{pid}")).exists()
                    && cmdline_mentions(pid, &needle)
                {
                    if !dry_run {
                        // each node leads its own process group
                        let _ =
                            nix::sys::signal::killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    }
                    report.killed += 1;
                    report.pids.push(KilledPid {
                        pid,
                        run_id: run_id.clone(),
                    });
                }
            }
        }
        if dry_run {
            report.run_dir_ids.insert(dir.clone(), run_id);
            report.run_dirs.push(dir);
        } else {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    report.run_dir_ids.insert(dir.clone(), run_id);
                    report.run_dirs.push(dir);
                }
                Err(e) => report
                    .errors
                    .push(format!("failed to remove {}: {e}", dir.display())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_run_dir(base: &Path, id: &str) -> PathBuf {
        let dir = base.join(format!("nomos-script-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        // pid 0 is never a live owner
        std::fs::write(
            dir.join("run.json"),
            format!(r#"{{"run_id":"{id}","owner_pid":0,"node_pids":[]}}"#),
        )
        .unwrap();
        dir
    }

    fn me() -> u32 {
        current_uid()
    }

    #[test]
    fn a_dir_of_another_uid_is_left_alone() {
        let base = tempfile::tempdir().unwrap();
        let dir = dead_run_dir(base.path(), "other");
        let mut report = GcReport::default();
        collect_dirs(base.path(), &GcOptions::default(), me() + 1, &mut report);
        assert!(dir.exists());
        assert_eq!(report.skipped_foreign, vec![dir.clone()], "{report:?}");
        assert!(report.run_dirs.is_empty(), "{report:?}");
        assert!(
            report.lines().iter().any(|l| l.contains("another user's")),
            "{:?}",
            report.lines()
        );
        // the same dir, as its owner: reclaimed
        let mut report = GcReport::default();
        collect_dirs(base.path(), &GcOptions::default(), me(), &mut report);
        assert!(!dir.exists());
        assert_eq!(report.run_dirs, vec![dir]);
    }

    #[test]
    fn a_kept_dir_is_listed_and_removed_only_with_kept_and_old_enough() {
        let base = tempfile::tempdir().unwrap();
        let dir = dead_run_dir(base.path(), "k1");
        crate::deploy::mark_kept(&dir, "k1", "run failed", true);
        let mut report = GcReport::default();
        collect_dirs(base.path(), &GcOptions::default(), me(), &mut report);
        assert!(dir.exists());
        assert_eq!(report.kept.len(), 1, "{report:?}");
        let line = report
            .lines()
            .into_iter()
            .find(|l| l.starts_with("kept: "))
            .unwrap();
        assert!(line.contains("(run k1, run failed, 0s)"), "{line}");
        let old_only = GcOptions {
            kept: true,
            older_than: Some(Duration::from_secs(86400)),
            ..Default::default()
        };
        let mut report = GcReport::default();
        collect_dirs(base.path(), &old_only, me(), &mut report);
        assert!(dir.exists(), "younger than a day");
        assert_eq!(report.kept.len(), 1);
        let all = GcOptions {
            kept: true,
            ..Default::default()
        };
        let mut report = GcReport::default();
        collect_dirs(base.path(), &all, me(), &mut report);
        assert!(!dir.exists());
        assert_eq!(report.run_dirs, vec![dir]);
        assert!(report.kept.is_empty());
    }
}
