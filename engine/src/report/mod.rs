//! Typed run events and the run report. The runner never prints: it emits
//! [`RunEvent`]s, and reporters (terminal now; JSON, JUnit, HTML later)
//! consume them.

pub mod brief;
pub mod control;
pub use control::{ControlAction, FaultVia};
pub mod html;
pub mod plots;
pub mod recorder;
pub mod stats;
pub mod terminal;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exit;
use crate::expectation::Verdict;
use crate::links::FaultRecord;

/// Something that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// Provisioning began (before any process starts).
    DeployStarted {
        run_id: String,
        deployer: String,
        nodes: usize,
        seed: u64,
    },
    /// Node processes started; readiness is being awaited.
    NodesStarted {
        run_dir: Option<PathBuf>,
        endpoints: Vec<crate::deploy::Endpoint>,
    },
    /// One node passed readiness.
    NodeReady {
        node: usize,
        height: u64,
        peers: usize,
        #[serde(with = "duration_ms")]
        after: Duration,
    },
    /// Every node is ready; workloads start now.
    RunStarted {
        #[serde(with = "duration_ms")]
        duration: Duration,
        workloads: Vec<String>,
        expectations: Vec<String>,
    },
    /// Periodic progress (about once a second).
    Progress {
        #[serde(with = "duration_ms")]
        elapsed: Duration,
        heights: Vec<Option<u64>>,
        txs_submitted: u64,
        txs_included: u64,
    },
    /// A workload returned an error or panicked.
    WorkloadFailed { name: String, error: String },
    /// Workloads stopped; waiting before evaluation.
    CooldownStarted {
        #[serde(with = "duration_ms")]
        cooldown: Duration,
    },
    /// One expectation's verdict.
    ExpectationEvaluated {
        name: String,
        passed: bool,
        message: String,
    },
    /// A node-control action or a fault (from a workload or a script).
    Control {
        action: ControlAction,
        #[serde(with = "duration_ms")]
        elapsed: Duration,
    },
    /// Teardown began.
    TeardownStarted,
    /// Every process is gone; the run dir is kept or removed.
    TeardownFinished {
        run_dir: Option<PathBuf>,
        kept: bool,
    },
    /// The last event: the whole report.
    Finished { report: Box<RunReport> },
    /// Free-form information (a script's `print` during a run, a warning).
    Note { message: String },
}

/// Consumes run events; must be quick (it runs on the runner's task).
pub trait Reporter: Send + Sync {
    /// Called for every event, in order, from the runner's task.
    fn on_event(&self, event: &RunEvent);
}

/// Fan-out of events to every reporter. Cheap to clone.
#[derive(Clone, Default)]
pub struct EventSink {
    reporters: Arc<Vec<Arc<dyn Reporter>>>,
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventSink({} reporters)", self.reporters.len())
    }
}

impl EventSink {
    /// A sink delivering to these reporters.
    pub fn new(reporters: Vec<Arc<dyn Reporter>>) -> Self {
        Self {
            reporters: Arc::new(reporters),
        }
    }

    /// Delivers one event to every reporter.
    pub fn emit(&self, event: RunEvent) {
        for r in self.reporters.iter() {
            r.on_event(&event);
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Every expectation passed and no workload failed.
    Passed,
    /// An expectation or a workload failed.
    Failed,
    /// Infrastructure failed (deploy, readiness, teardown): what failed and its causes
    /// (`{"kind": "error", "message": .., "causes": [..]}`).
    Error(crate::error::ErrorChain),
    /// Cancelled (Ctrl-C).
    Interrupted,
}

/// One expectation's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedVerdict {
    pub name: String,
    pub verdict: Verdict,
}

/// One workload's failure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadFailure {
    pub name: String,
    pub error: String,
}

/// How long each phase took.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    #[serde(with = "duration_ms")]
    pub deploy: Duration,
    #[serde(with = "duration_ms")]
    pub run: Duration,
    #[serde(with = "duration_ms")]
    pub cooldown: Duration,
    #[serde(with = "duration_ms")]
    pub evaluate: Duration,
    #[serde(with = "duration_ms")]
    pub teardown: Duration,
    #[serde(with = "duration_ms")]
    pub total: Duration,
}

/// One line of the run's timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Since the run started (deploy included).
    #[serde(with = "duration_ms")]
    pub at: Duration,
    pub what: String,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub outcome: Outcome,
    pub verdicts: Vec<NamedVerdict>,
    pub workload_errors: Vec<WorkloadFailure>,
    pub seed: u64,
    pub run_id: String,
    pub deployer: String,
    pub nodes: usize,
    pub run_dir: Option<PathBuf>,
    /// Whether the run dir still exists.
    pub kept: bool,
    pub timings: Timings,
    pub timeline: Vec<TimelineEntry>,
    pub fault_log: Vec<FaultRecord>,
    pub txs_submitted: u64,
    pub txs_included: u64,
    pub blocks_seen: u64,
    /// Final height per node (None where unknown).
    pub final_heights: Vec<Option<u64>>,
    /// Median block-feed delay (start of the block's slot to its first observation), ms.
    pub feed_delay_median_ms: Option<u64>,
    /// The nodes' API dialect (given by the node kind or detected at readiness).
    pub api_dialect: Option<String>,
    /// How the block feed read each node: `stream` or `poll`.
    pub feed_modes: Vec<String>,
    /// Submission-to-inclusion latency of included transactions (None without any).
    pub inclusion_latency: Option<LatencyStats>,
    /// The same latencies, one per included transaction in submission order, ms.
    pub inclusion_latencies_ms: Vec<u64>,
    /// Recovery measured: every revert to convergence (with the fork depth at the revert),
    /// every restart to catch-up, and their min/median/p90/max.
    #[serde(default)]
    pub recovery: crate::recovery::RecoveryReport,
    /// The plan's run duration (None in a report written before it was recorded).
    #[serde(default, with = "duration_ms_opt")]
    pub duration: Option<Duration>,
    /// When, after the run started, an invariant (or another early check) failed the run; None
    /// when it ran to its end.
    #[serde(default, with = "duration_ms_opt")]
    pub failed_at: Option<Duration>,
    /// The fault timeline the run's chaos workloads planned (every stream, in time order); what
    /// `shrink` starts from.
    #[serde(default)]
    pub chaos_plan: Vec<crate::chaos::plan::PlannedStep>,
}

/// Distribution summary of a latency, in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: usize,
    pub median_ms: u64,
    pub p95_ms: u64,
    pub max_ms: u64,
}

impl LatencyStats {
    /// Summary of samples (None when empty).
    pub fn from_samples(mut samples: Vec<u64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
        Some(Self {
            count: samples.len(),
            median_ms: at(0.5),
            p95_ms: at(0.95),
            max_ms: *samples.last().expect("non-empty"),
        })
    }
}

impl RunReport {
    /// An empty report for a run that ended before producing anything.
    pub fn empty(seed: u64, outcome: Outcome) -> Self {
        Self {
            outcome,
            verdicts: Vec::new(),
            workload_errors: Vec::new(),
            seed,
            run_id: String::new(),
            deployer: String::new(),
            nodes: 0,
            run_dir: None,
            kept: false,
            timings: Timings::default(),
            timeline: Vec::new(),
            fault_log: Vec::new(),
            txs_submitted: 0,
            txs_included: 0,
            blocks_seen: 0,
            final_heights: Vec::new(),
            feed_delay_median_ms: None,
            api_dialect: None,
            feed_modes: Vec::new(),
            inclusion_latency: None,
            inclusion_latencies_ms: Vec::new(),
            recovery: Default::default(),
            duration: None,
            failed_at: None,
            chaos_plan: Vec::new(),
        }
    }

    /// True only when every expectation passed, no workload failed and infrastructure held.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// The process exit code this report maps to.
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Passed => exit::PASSED,
            Outcome::Failed => exit::SCENARIO_FAILED,
            Outcome::Error(_) => exit::INFRA_ERROR,
            Outcome::Interrupted => exit::INTERRUPTED,
        }
    }

    /// Every failure in one message (empty when passed).
    pub fn failure_summary(&self) -> String {
        let mut parts = Vec::new();
        if let Outcome::Error(e) = &self.outcome {
            parts.push(format!("infrastructure error: {e}"));
        }
        if self.outcome == Outcome::Interrupted {
            parts.push("interrupted".to_owned());
        }
        for v in &self.verdicts {
            if !v.verdict.passed {
                parts.push(format!("{} failed: {}", v.name, v.verdict.message));
            }
        }
        for w in &self.workload_errors {
            parts.push(format!("workload {} failed: {}", w.name, w.error));
        }
        parts.join("; ")
    }

    /// One line: outcome, seed, counts.
    pub fn summary(&self) -> String {
        let verdict = match &self.outcome {
            Outcome::Passed => "passed".to_owned(),
            Outcome::Failed => format!("failed: {}", self.failure_summary()),
            Outcome::Error(_) => format!("error: {}", self.failure_summary()),
            Outcome::Interrupted => "interrupted".to_owned(),
        };
        format!(
            "run {} {verdict} (seed {}, {} nodes, {} blocks, {}/{} txs included)",
            self.run_id,
            self.seed,
            self.nodes,
            self.blocks_seen,
            self.txs_included,
            self.txs_submitted
        )
    }
}

/// Serialises durations as integer milliseconds.
pub(crate) mod duration_ms_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    /// The report a child run wrote (`run --jobs`), read back.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
