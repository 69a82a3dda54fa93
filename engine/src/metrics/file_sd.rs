//! Prometheus file-based service discovery: a JSON file listing each run's
//! node API addresses, rewritten atomically when nodes start and emptied at
//! teardown, so a Prometheus pointed at it scrapes every testnet as it comes
//! and goes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::deploy::Endpoint;
use crate::report::{Reporter, RunEvent};

/// The env var naming the file_sd target file.
pub const SD_FILE_ENV: &str = "LOGOS_BLOCKCHAIN_PROMETHEUS_SD_FILE";

/// One target group of a file_sd file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SdGroup {
    /// `host:port` of each node's metrics (its testing surface, else its API; Prometheus
    /// scrapes `/metrics` on it).
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Writes one group: every target with the same labels.
pub fn write_file_sd(
    path: &Path,
    targets: &[String],
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    let groups = if targets.is_empty() {
        Vec::new()
    } else {
        vec![SdGroup {
            targets: targets.to_vec(),
            labels: labels.clone(),
        }]
    };
    write_file_sd_groups(path, &groups)
}

/// Writes the groups atomically (temp file + rename: Prometheus watches the
/// file and must never read half of it).
pub fn write_file_sd_groups(path: &Path, groups: &[SdGroup]) -> Result<(), String> {
    for g in groups {
        for t in &g.targets {
            if t.contains("://") || !t.contains(':') {
                return Err(format!(
                    "file_sd target {t:?} must be host:port (no scheme, no path)"
                ));
            }
        }
        if let Some(k) = g.labels.keys().find(|k| !valid_label(k)) {
            return Err(format!(
                "file_sd label name {k:?} is invalid: use [a-zA-Z_][a-zA-Z0-9_]*"
            ));
        }
    }
    let text = serde_json::to_string_pretty(groups)
        .map_err(|e| format!("cannot serialise file_sd groups: {e}"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .ok_or_else(|| format!("file_sd path {} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot replace {}: {e}", path.display())
    })
}

fn valid_label(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A [`Reporter`] keeping the file_sd file in step with the run: when nodes
/// start it lists each node (labels `run_id`, `deployer`, `node`, plus any
/// extra); at teardown it writes an empty list so Prometheus stops scraping.
/// Errors are kept (see [`FileSdReporter::errors`]), never fatal to the run.
#[derive(Debug)]
pub struct FileSdReporter {
    path: PathBuf,
    extra: BTreeMap<String, String>,
    state: Mutex<SdState>,
}

#[derive(Debug, Default)]
struct SdState {
    run_id: String,
    deployer: String,
    errors: Vec<String>,
    written: usize,
}

impl FileSdReporter {
    /// Writes to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            extra: BTreeMap::new(),
            state: Mutex::new(SdState::default()),
        }
    }

    /// The reporter for `LOGOS_BLOCKCHAIN_PROMETHEUS_SD_FILE` (None when unset).
    pub fn from_env() -> Option<Self> {
        std::env::var_os(SD_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(Self::new)
    }

    /// Adds a label to every target.
    pub fn with_label(mut self, name: &str, value: &str) -> Self {
        self.extra.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write failures so far (a run goes on without scraping).
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// How many times the file was written.
    pub fn writes(&self) -> usize {
        self.lock().written
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SdState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The groups for these endpoints: one per node, scraping where its metrics are.
    pub fn groups(&self, run_id: &str, deployer: &str, endpoints: &[Endpoint]) -> Vec<SdGroup> {
        crate::deploy::nodes(endpoints)
            .map(|n| {
                let url = n.metrics_base();
                let target = url
                    .split("://")
                    .nth(1)
                    .unwrap_or(url)
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let i = n.node;
                let mut labels = self.extra.clone();
                labels.insert("run_id".to_owned(), run_id.to_owned());
                labels.insert("deployer".to_owned(), deployer.to_owned());
                labels.insert("node".to_owned(), format!("node-{i}"));
                SdGroup {
                    targets: vec![target],
                    labels,
                }
            })
            .collect()
    }

    fn write(&self, st: &mut SdState, groups: &[SdGroup]) {
        match write_file_sd_groups(&self.path, groups) {
            Ok(()) => st.written += 1,
            Err(e) => st.errors.push(e),
        }
    }
}

impl Reporter for FileSdReporter {
    fn on_event(&self, event: &RunEvent) {
        let mut st = self.lock();
        match event {
            RunEvent::DeployStarted {
                run_id, deployer, ..
            } => {
                st.run_id = run_id.clone();
                st.deployer = deployer.clone();
            }
            RunEvent::NodesStarted { endpoints, .. } => {
                let groups = self.groups(&st.run_id, &st.deployer, endpoints);
                self.write(&mut st, &groups);
            }
            RunEvent::TeardownFinished { .. } => self.write(&mut st, &[]),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{NodeEndpoint, NodeHost};

    #[test]
    fn rejects_targets_with_scheme_and_bad_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sd.json");
        let e =
            write_file_sd(&p, &["http://127.0.0.1:1".to_owned()], &BTreeMap::new()).unwrap_err();
        assert!(e.contains("host:port"), "{e}");
        let labels = [("bad-name".to_owned(), "x".to_owned())].into();
        let e = write_file_sd(&p, &["127.0.0.1:1".to_owned()], &labels).unwrap_err();
        assert!(e.contains("bad-name"), "{e}");
        assert!(!p.exists());
    }

    #[test]
    fn reporter_lists_nodes_then_empties_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sub/sd.json");
        let r = FileSdReporter::new(&p).with_label("team", "qa");
        r.on_event(&RunEvent::DeployStarted {
            run_id: "r1".into(),
            deployer: "local".into(),
            nodes: 2,
            seed: 1,
        });
        r.on_event(&RunEvent::NodesStarted {
            run_dir: None,
            endpoints: (0..2)
                .map(|i| {
                    NodeEndpoint {
                        node: i,
                        api: format!("http://127.0.0.1:400{i}"),
                        testing: None,
                        host: NodeHost::Attached,
                    }
                    .into()
                })
                .collect(),
        });
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("file")).expect("json");
        assert_eq!(v[1]["targets"][0], "127.0.0.1:4001");
        assert_eq!(v[1]["labels"]["node"], "node-1");
        assert_eq!(v[0]["labels"]["run_id"], "r1");
        assert_eq!(v[0]["labels"]["team"], "qa");
        r.on_event(&RunEvent::TeardownFinished {
            run_dir: None,
            kept: false,
        });
        assert_eq!(std::fs::read_to_string(&p).expect("file").trim(), "[]");
        assert!(r.errors().is_empty());
        assert_eq!(r.writes(), 2);
    }

    /// The targets come from the endpoints' fields: a node's testing surface where it has one
    /// (its metrics are there), its API otherwise; the monitoring URLs are no targets.
    #[test]
    fn targets_are_the_metrics_addresses_of_the_node_endpoints() {
        let r = FileSdReporter::new(Path::new("/nonexistent/sd.json"));
        let endpoints = vec![
            Endpoint::Grafana {
                url: "http://127.0.0.1:3000".into(),
            },
            NodeEndpoint {
                node: 0,
                api: "http://127.0.0.1:4000".into(),
                testing: Some("http://127.0.0.1:4100/".into()),
                host: NodeHost::Process {
                    p2p: "127.0.0.1:4200".parse().unwrap(),
                    logs: "/r/node-0/logs".into(),
                },
            }
            .into(),
            NodeEndpoint {
                node: 1,
                api: "http://10.0.0.2:8080/".into(),
                testing: None,
                host: NodeHost::Pod {
                    namespace: "ns".into(),
                    pod: "node-1-0".into(),
                    p2p: "node-1:19000".into(),
                    logs: "kubectl -n ns logs node-1-0".into(),
                },
            }
            .into(),
        ];
        let groups = r.groups("r1", "local", &endpoints);
        let targets: Vec<(&str, &str)> = groups
            .iter()
            .map(|g| (g.targets[0].as_str(), g.labels["node"].as_str()))
            .collect();
        assert_eq!(
            targets,
            [("127.0.0.1:4100", "node-0"), ("10.0.0.2:8080", "node-1")]
        );
    }
}
