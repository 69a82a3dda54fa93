//! A [`Reporter`] that keeps every event of a run with its time, samples each
//! node's height and peer count while the testnet is up, and turns all of it
//! into a [`RecordedRun`]: the data the HTML report plots. A recorded run is
//! plain serde data so a test (or a later `report` command) can rebuild the
//! report from a JSON file without running anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::client::NodeClient;
use crate::report::{Reporter, RunEvent, RunReport};

/// Largest part of one log file copied into the artifacts (its tail).
const MAX_LOG_BYTES: u64 = 4 * 1024 * 1024;

/// One event as it arrived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedEvent {
    /// Since the recording of this run began (its first event).
    pub at_ms: u64,
    /// The event as the engine serialises it (`{"event": "progress", ...}`).
    pub event: serde_json::Value,
}

/// Heights and peer counts polled from every node at one instant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeSample {
    pub at_ms: u64,
    /// Tip height per node (None: the node did not answer).
    pub heights: Vec<Option<u64>>,
    /// Handshaken peers per node (None: the node did not answer).
    pub peers: Vec<Option<usize>>,
    /// Tip id per node, shortened (None: the node did not answer), to show which nodes share a
    /// chain.
    #[serde(default)]
    pub tips: Vec<Option<String>>,
}

/// The runner's periodic progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgressSample {
    pub at_ms: u64,
    pub heights: Vec<Option<u64>>,
    pub txs_submitted: u64,
    pub txs_included: u64,
}

/// What a shaded span on the time axis is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// A network fault (partition, cut, latency, loss, bandwidth).
    Fault,
    /// A node stopped, killed or paused.
    NodeDown,
}

/// A fault or a node outage, from when it began to when it ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Span {
    pub kind: SpanKind,
    pub label: String,
    pub start_ms: u64,
    /// None: still active when the run ended.
    pub end_ms: Option<u64>,
}

/// One expectation's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedVerdict {
    pub name: String,
    pub passed: bool,
    pub message: String,
    #[serde(default)]
    pub evidence: serde_json::Value,
}

/// Phase boundaries on the run's time axis.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Phases {
    pub nodes_started_ms: Option<u64>,
    pub run_started_ms: Option<u64>,
    pub cooldown_started_ms: Option<u64>,
    pub teardown_started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
}

/// Everything the reports need about one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RecordedRun {
    pub run_id: String,
    pub deployer: String,
    pub nodes: usize,
    pub seed: u64,
    /// `passed`, `failed`, `error`, `interrupted`, or `unfinished` when no report arrived.
    pub outcome: String,
    /// The infrastructure error or the failed checks, one line.
    pub failure: String,
    /// Wall clock of the first event, ms since the Unix epoch.
    pub started_unix_ms: u64,
    pub run_dir: Option<PathBuf>,
    /// Where the deployer said the nodes (and monitoring) are.
    #[serde(deserialize_with = "crate::deploy::endpoints_or_old_lines")]
    pub endpoints: Vec<crate::deploy::Endpoint>,
    pub phases: Phases,
    pub events: Vec<RecordedEvent>,
    pub node_samples: Vec<NodeSample>,
    pub progress: Vec<ProgressSample>,
    pub spans: Vec<Span>,
    pub verdicts: Vec<RecordedVerdict>,
    /// `(workload, error)`.
    pub workload_errors: Vec<(String, String)>,
    /// Submission-to-inclusion latency of every included transaction, when the engine reports them.
    pub inclusion_latencies_ms: Vec<u64>,
    /// `{count, median_ms, p95_ms, max_ms}` from the run report.
    pub inclusion_latency: Option<serde_json::Value>,
    pub txs_submitted: u64,
    pub txs_included: u64,
    /// The final run report as JSON (None when the run never finished).
    pub report: Option<serde_json::Value>,
    /// Where [`Recorder::with_artifacts_dir`] copied node configs and logs (relative
    /// paths under the artifacts dir: `(node, kind, path)`, kind `config` or `log`).
    pub artifacts: Vec<Artifact>,
}

/// A copied node file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    pub node: usize,
    /// `config` or `log`.
    pub kind: String,
    /// Relative to the report dir.
    pub path: String,
}

impl RecordedRun {
    /// Loads a recorded run from JSON (a fixture, or a file written by [`RecordedRun::save`]).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read recorded run {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("recorded run {} is not valid: {e}", path.display()))
    }

    /// Writes the recorded run as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| format!("cannot serialise the recorded run: {e}"))?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The latest time anything was recorded at.
    pub fn end_ms(&self) -> u64 {
        let mut end = self.phases.finished_ms.unwrap_or(0);
        end = end.max(self.events.last().map_or(0, |e| e.at_ms));
        end = end.max(self.node_samples.last().map_or(0, |s| s.at_ms));
        end.max(self.progress.last().map_or(0, |s| s.at_ms))
    }

    /// Largest node count seen in any sample (nodes may be added during a run).
    pub fn node_count(&self) -> usize {
        let samples = self.node_samples.iter().map(|s| s.heights.len());
        let progress = self.progress.iter().map(|s| s.heights.len());
        samples.chain(progress).fold(self.nodes, usize::max)
    }
}

struct Current {
    origin: Instant,
    run: RecordedRun,
    /// Open node-down spans by node index -> index into `run.spans`.
    down: BTreeMap<usize, usize>,
    sampler: Option<CancellationToken>,
    done: bool,
}

#[derive(Default)]
struct State {
    finished: Vec<RecordedRun>,
    current: Option<Current>,
}

/// Keeps every event of every run it sees. One recorder can serve several
/// runs in a row (a script running many plans): each `DeployStarted` (or a
/// `RunStarted` after a finished run) begins a new [`RecordedRun`]. Runs must
/// not overlap in time on one recorder.
pub struct Recorder {
    state: Arc<Mutex<State>>,
    sample_interval: Option<Duration>,
    artifacts_dir: Option<PathBuf>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("sample_interval", &self.sample_interval)
            .field("artifacts_dir", &self.artifacts_dir)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Records events and samples nodes every 500 ms while they are up.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            sample_interval: Some(Duration::from_millis(500)),
            artifacts_dir: None,
        }
    }

    /// How often nodes are polled for height and peers (None: never; the
    /// heights plot then uses the runner's progress events).
    pub fn with_sample_interval(mut self, every: Option<Duration>) -> Self {
        self.sample_interval = every.map(|d| d.max(Duration::from_millis(50)));
        self
    }

    /// Copies each node's config and logs from the run dir into `dir/runs/<run id>/`
    /// when teardown starts (the run dir of a passing run is removed by teardown).
    pub fn with_artifacts_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.artifacts_dir = Some(dir.into());
        self
    }

    /// Every run recorded so far, the one in progress last.
    pub fn runs(&self) -> Vec<RecordedRun> {
        let st = self.lock();
        let mut v = st.finished.clone();
        if let Some(c) = &st.current {
            v.push(c.run.clone());
        }
        v
    }

    /// The last run recorded (None before any event).
    pub fn last_run(&self) -> Option<RecordedRun> {
        self.runs().pop()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self, st: &mut State) {
        if let Some(mut old) = st.current.take() {
            if let Some(t) = old.sampler.take() {
                t.cancel();
            }
            st.finished.push(old.run);
        }
        let started_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        st.current = Some(Current {
            origin: Instant::now(),
            run: RecordedRun {
                outcome: "unfinished".to_owned(),
                started_unix_ms,
                ..RecordedRun::default()
            },
            down: BTreeMap::new(),
            sampler: None,
            done: false,
        });
    }

    fn start_sampler(&self, cur: &mut Current, endpoints: &[crate::deploy::Endpoint]) {
        let Some(every) = self.sample_interval else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let clients: Vec<NodeClient> = api_urls(endpoints)
            .into_iter()
            .map(|(i, url)| {
                NodeClient::new(i, &url).with_timeout(every.max(Duration::from_millis(300)))
            })
            .collect();
        if clients.is_empty() {
            return;
        }
        let cancel = CancellationToken::new();
        if let Some(old) = cur.sampler.replace(cancel.clone()) {
            old.cancel();
        }
        let state = Arc::downgrade(&self.state);
        let run_id = cur.run.run_id.clone();
        handle.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let polls = clients.iter().map(|c| async move {
                    let (info, net) = tokio::join!(c.consensus_info(), c.network_info());
                    (info.ok(), net.ok().map(|n| n.n_peers))
                });
                let results = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = futures::future::join_all(polls) => r,
                };
                let Some(state) = state.upgrade() else { return };
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                let Some(cur) = st.current.as_mut().filter(|c| c.run.run_id == run_id) else {
                    return;
                };
                let n = clients.iter().map(|c| c.index() + 1).max().unwrap_or(0);
                let mut heights = vec![None; n];
                let mut peers = vec![None; n];
                let mut tips = vec![None; n];
                for (c, (info, p)) in clients.iter().zip(results) {
                    heights[c.index()] = info.as_ref().map(|i| i.height);
                    tips[c.index()] = info
                        .as_ref()
                        .map(|i| crate::client::model::short_id(&i.tip).to_owned());
                    peers[c.index()] = p;
                }
                let at_ms = cur.origin.elapsed().as_millis() as u64;
                cur.run.node_samples.push(NodeSample {
                    at_ms,
                    heights,
                    peers,
                    tips,
                });
            }
        });
    }

    fn copy_artifacts(&self, run: &mut RecordedRun) {
        let (Some(dir), Some(run_dir)) = (&self.artifacts_dir, &run.run_dir) else {
            return;
        };
        run.artifacts = copy_node_files(run_dir, dir, &run.run_id);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(c) = self.lock().current.as_mut()
            && let Some(t) = c.sampler.take()
        {
            t.cancel();
        }
    }
}

impl Reporter for Recorder {
    fn on_event(&self, event: &RunEvent) {
        let mut st = self.lock();
        let starts_run = match event {
            RunEvent::DeployStarted { .. } => true,
            RunEvent::RunStarted { .. } => st.current.as_ref().is_none_or(|c| c.done),
            _ => st.current.is_none(),
        };
        if starts_run {
            self.begin(&mut st);
        }
        let Some(cur) = st.current.as_mut() else {
            return;
        };
        let at_ms = cur.origin.elapsed().as_millis() as u64;
        let run = &mut cur.run;
        if !matches!(event, RunEvent::Finished { .. }) {
            run.events.push(RecordedEvent {
                at_ms,
                event: serde_json::to_value(event).unwrap_or_default(),
            });
        }
        match event {
            RunEvent::DeployStarted {
                run_id,
                deployer,
                nodes,
                seed,
            } => {
                run.run_id = run_id.clone();
                run.deployer = deployer.clone();
                run.nodes = *nodes;
                run.seed = *seed;
            }
            RunEvent::NodesStarted { run_dir, endpoints } => {
                run.run_dir = run_dir.clone();
                run.endpoints = endpoints.clone();
                run.phases.nodes_started_ms = Some(at_ms);
                let endpoints = endpoints.clone();
                self.start_sampler(cur, &endpoints);
            }
            RunEvent::RunStarted { .. } => run.phases.run_started_ms = Some(at_ms),
            RunEvent::Progress {
                heights,
                txs_submitted,
                txs_included,
                ..
            } => run.progress.push(ProgressSample {
                at_ms,
                heights: heights.clone(),
                txs_submitted: *txs_submitted,
                txs_included: *txs_included,
            }),
            RunEvent::CooldownStarted { .. } => run.phases.cooldown_started_ms = Some(at_ms),
            RunEvent::Control { action, .. } => {
                if let Some((node, down)) = action.node_up_down() {
                    if down && !cur.down.contains_key(&node) {
                        run.spans.push(Span {
                            kind: SpanKind::NodeDown,
                            label: action.to_string(),
                            start_ms: at_ms,
                            end_ms: None,
                        });
                        cur.down.insert(node, run.spans.len() - 1);
                    } else if !down && let Some(i) = cur.down.remove(&node) {
                        run.spans[i].end_ms = Some(at_ms);
                    }
                }
            }
            RunEvent::TeardownStarted => {
                run.phases.teardown_started_ms = Some(at_ms);
                if let Some(t) = cur.sampler.take() {
                    t.cancel();
                }
                self.copy_artifacts(&mut cur.run);
            }
            RunEvent::Finished { report } => {
                run.phases.finished_ms = Some(at_ms);
                if let Some(t) = cur.sampler.take() {
                    t.cancel();
                }
                absorb_report(run, report, cur.origin);
                cur.done = true;
            }
            _ => {}
        }
    }
}

/// `(node index, api base url)` of each node endpoint.
pub fn api_urls(endpoints: &[crate::deploy::Endpoint]) -> Vec<(usize, String)> {
    crate::deploy::nodes(endpoints)
        .map(|n| (n.node, n.api_base().to_owned()))
        .collect()
}

fn absorb_report(run: &mut RecordedRun, report: &RunReport, origin: Instant) {
    let outcome = match &report.outcome {
        crate::report::Outcome::Passed => "passed",
        crate::report::Outcome::Failed => "failed",
        crate::report::Outcome::Error(_) => "error",
        crate::report::Outcome::Interrupted => "interrupted",
    };
    run.outcome = outcome.to_owned();
    run.failure = report.failure_summary();
    if run.run_id.is_empty() {
        run.run_id = report.run_id.clone();
        run.deployer = report.deployer.clone();
        run.nodes = report.nodes;
        run.seed = report.seed;
    }
    if run.run_dir.is_none() {
        run.run_dir = report.run_dir.clone();
    }
    run.verdicts = report
        .verdicts
        .iter()
        .map(|v| RecordedVerdict {
            name: v.name.clone(),
            passed: v.verdict.passed,
            message: v.verdict.message.clone(),
            evidence: v.verdict.evidence.clone(),
        })
        .collect();
    run.workload_errors = report
        .workload_errors
        .iter()
        .map(|w| (w.name.clone(), w.error.clone()))
        .collect();
    run.txs_submitted = report.txs_submitted;
    run.txs_included = report.txs_included;
    let json = serde_json::to_value(report).unwrap_or_default();
    run.inclusion_latency = json
        .get("inclusion_latency")
        .filter(|v| !v.is_null())
        .cloned();
    run.inclusion_latencies_ms = json
        .get("inclusion_latencies_ms")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    // Faults: the link layer's log, placed on this recording's axis by wall clock.
    let origin_wall = SystemTime::now() - origin.elapsed();
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for rec in &report.fault_log {
        let at_ms = rec
            .at
            .duration_since(origin_wall)
            .map_or(0, |d| d.as_millis() as u64);
        let id = rec.id.to_string();
        if rec.reverted {
            if let Some(i) = open.remove(&id) {
                run.spans[i].end_ms = Some(at_ms);
            }
        } else {
            run.spans.push(Span {
                kind: SpanKind::Fault,
                label: format!("{id}: {}", rec.fault),
                start_ms: at_ms,
                end_ms: None,
            });
            open.insert(id, run.spans.len() - 1);
        }
    }
    run.report = Some(json);
}

/// Copies `node-<i>/config.yaml`, `node-<i>/output.log` and `node-<i>/logs/*`
/// of `run_dir` to `dest/runs/<run_id>/node-<i>/`; returns what was copied.
pub fn copy_node_files(run_dir: &Path, dest: &Path, run_id: &str) -> Vec<Artifact> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return out;
    };
    let mut nodes: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let i = name.strip_prefix("node-")?.parse().ok()?;
            Some((i, e.path()))
        })
        .collect();
    nodes.sort();
    let id = if run_id.is_empty() { "run" } else { run_id };
    for (i, dir) in nodes {
        let rel_dir = format!("runs/{id}/node-{i}");
        let target = dest.join(&rel_dir);
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for name in ["config.yaml", "output.log"] {
            files.push((name.to_owned(), dir.join(name)));
        }
        if let Ok(logs) = std::fs::read_dir(dir.join("logs")) {
            let mut logs: Vec<PathBuf> = logs.filter_map(|e| Some(e.ok()?.path())).collect();
            logs.sort();
            for p in logs.into_iter().filter(|p| p.is_file()) {
                if let Some(n) = p.file_name().and_then(|n| n.to_str()) {
                    files.push((format!("logs-{n}"), p.clone()));
                }
            }
        }
        for (name, src) in files {
            if !src.is_file() || std::fs::create_dir_all(&target).is_err() {
                continue;
            }
            if copy_tail(&src, &target.join(&name)).is_ok() {
                out.push(Artifact {
                    node: i,
                    kind: if name.ends_with(".yaml") {
                        "config"
                    } else {
                        "log"
                    }
                    .to_owned(),
                    path: format!("{rel_dir}/{name}"),
                });
            }
        }
    }
    out
}

fn copy_tail(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(src)?;
    let len = f.metadata()?.len();
    if len > MAX_LOG_BYTES {
        f.seek(SeekFrom::Start(len - MAX_LOG_BYTES))?;
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    std::fs::write(dst, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node URLs come from the endpoints' fields (a trailing `/` dropped), whatever the
    /// backend put after them; monitoring endpoints are not nodes.
    #[test]
    fn node_urls_come_from_the_endpoint_fields() {
        use crate::deploy::{Endpoint, NodeEndpoint, NodeHost};
        let eps: Vec<Endpoint> = vec![
            NodeEndpoint {
                node: 0,
                api: "http://127.0.0.1:4000".into(),
                testing: None,
                host: NodeHost::Process {
                    p2p: "127.0.0.1:5000".parse().unwrap(),
                    logs: "/x".into(),
                },
            }
            .into(),
            NodeEndpoint {
                node: 1,
                api: "http://127.0.0.1:4001/".into(),
                testing: Some("http://127.0.0.1:4101/".into()),
                host: NodeHost::Container {
                    container: "c".into(),
                    ip: Some("1.2.3.4".parse().unwrap()),
                    p2p_port: 19000,
                },
            }
            .into(),
            Endpoint::Grafana {
                url: "http://127.0.0.1:3000".into(),
            },
        ];
        assert_eq!(
            api_urls(&eps),
            vec![
                (0, "http://127.0.0.1:4000".to_owned()),
                (1, "http://127.0.0.1:4001".to_owned())
            ]
        );
        let metrics: Vec<&str> = crate::deploy::nodes(&eps)
            .map(|n| n.metrics_base())
            .collect();
        assert_eq!(metrics, ["http://127.0.0.1:4000", "http://127.0.0.1:4101"]);
    }
}
