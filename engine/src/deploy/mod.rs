//! Deployers provision a testnet on a backend and hand back a [`Testnet`]
//! handle: node clients, readiness, node control, network faults, teardown.
//! Each deployer declares its [`Capability`]s; asking a backend for one it
//! lacks is a clear error before anything starts.

pub mod byzantine;
pub mod compose;
pub mod control_log;
pub mod control_wait;
mod endpoint;
pub mod external;
pub mod granted;
pub mod k8s;
mod kept;
mod link_faults;
pub mod local;
pub(crate) mod node_control;
pub mod node_faults;
mod readiness;
mod testnet;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::error::Cause;
use crate::report::EventSink;
use crate::topology::Topology;
pub use endpoint::{Endpoint, NodeEndpoint, NodeHost, endpoints_or_old_lines, nodes};
pub use kept::{KEPT_MARKER, KeptMarker, mark_kept, read_kept};
pub use testnet::{ControlFuture, NetworkFaults, NodeControl, NodeLogs, Teardown, Testnet};

/// The observability settings handed to a container node: the environment's [`PASSED_ENV`],
/// with the run's OTLP ingest URL (the plan's, if it sets one) in place of the variable's.
pub(crate) fn passed_env(monitoring: &crate::metrics::Monitoring) -> Vec<(String, String)> {
    PASSED_ENV
        .iter()
        .filter_map(|var| {
            let v = if *var == crate::metrics::OTLP_INGEST_URL_ENV {
                monitoring.otlp_ingest_url.clone()
            } else {
                std::env::var(var).ok().filter(|v| !v.is_empty())
            };
            v.map(|v| (var.to_string(), v))
        })
        .collect()
}

/// Observability settings handed to the nodes of the container backends (as set for the runner).
pub(crate) const PASSED_ENV: [&str; 5] = [
    "LOGOS_BLOCKCHAIN_OTLP_ENDPOINT",
    "LOGOS_BLOCKCHAIN_OTLP_METRICS_ENDPOINT",
    "LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL",
    "LOGOS_BLOCKCHAIN_LOG_LEVEL",
    "LOGOS_BLOCKCHAIN_LOG_FILTER",
];

/// The run id (the options' or a new one) and its run dir `<base>/nomos-script-<run id>`
/// (base: the deployer's base dir, else the temp dir), created.
pub(crate) fn create_run_dir(
    base: Option<&std::path::Path>,
    opts: &DeployOptions,
) -> Result<(String, PathBuf), DeployError> {
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    let base = base.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
    let run_dir = base.join(format!("nomos-script-{run_id}"));
    std::fs::create_dir_all(&run_dir).map_err(|e| {
        DeployError::io_caused(format!("failed to create run dir {}", run_dir.display()), e)
    })?;
    Ok((run_id, run_dir))
}

/// Joins the non-empty lines of a log tail for an error message (its last 600 characters).
pub(crate) fn one_line(tail: &str) -> String {
    let joined = tail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if joined.is_empty() {
        return "no output".to_owned();
    }
    let n = joined.chars().count();
    joined.chars().skip(n.saturating_sub(600)).collect()
}

/// A `NodeExited` tail (already bounded) on one line.
fn tail_line(tail: &str) -> String {
    if tail.trim().is_empty() {
        "no output".to_owned()
    } else {
        tail.lines().collect::<Vec<_>>().join(" | ")
    }
}

/// "code 2", "signal 9" (or both, or "unknown status") for `DeployError::NodeExited`.
fn exit_how(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(c), Some(s)) => format!("code {c} (signal {s})"),
        (Some(c), None) => format!("code {c}"),
        (None, Some(s)) => format!("signal {s}"),
        (None, None) => "unknown status".to_owned(),
    }
}

/// Something a scenario may need from its deployer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Capability {
    /// start / stop / restart / kill / pause / resume / add_node.
    NodeControl,
    /// partition / isolate / heal / latency / loss / bandwidth.
    NetworkFaults,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::NodeControl => "node control",
            Capability::NetworkFaults => "network faults",
        })
    }
}

/// One kind of control action or fault, finer than [`Capability`]: what a plan uses, what each
/// backend declares it supports ([`Deployer::supports`], [`Testnet::supports`]) and what a node
/// kind must offer for it ([`FaultKind::kind_feature`]). Kubernetes has network faults, yet no
/// latency: a plan using latency is refused before deploying.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum FaultKind {
    Restart,
    Stop,
    Kill,
    Pause,
    AddNode,
    Partition,
    Cut,
    Latency,
    Loss,
    Bandwidth,
    /// Dropping, duplicating, delaying or reordering one kind of message.
    Tamper,
    /// Setting a node's clock off wall time.
    Clock,
    /// Making a node lie (equivocate, withhold, build on a stale parent, gossip invalid
    /// transactions) through its testing surface.
    Byzantine,
    /// A node's disk full, or its last writes not durable.
    Disk,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Restart => "restart",
            FaultKind::Stop => "stop",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::AddNode => "add_node",
            FaultKind::Partition => "partition",
            FaultKind::Cut => "one-way cut",
            FaultKind::Latency => "latency",
            FaultKind::Loss => "loss",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::Tamper => "message tampering",
            FaultKind::Clock => "clock skew",
            FaultKind::Byzantine => "byzantine behaviours",
            FaultKind::Disk => "disk faults",
        })
    }
}

impl FaultKind {
    /// What is done to node processes or through their testing surface (node control).
    pub const NODE: [FaultKind; 8] = [
        FaultKind::Restart,
        FaultKind::Stop,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::AddNode,
        FaultKind::Clock,
        FaultKind::Byzantine,
        FaultKind::Disk,
    ];
    /// What is done to the links between nodes (network faults).
    pub const LINK: [FaultKind; 6] = [
        FaultKind::Partition,
        FaultKind::Cut,
        FaultKind::Latency,
        FaultKind::Loss,
        FaultKind::Bandwidth,
        FaultKind::Tamper,
    ];

    /// The capability a plan enables to use it.
    pub fn capability(self) -> Capability {
        if Self::LINK.contains(&self) {
            Capability::NetworkFaults
        } else {
            Capability::NodeControl
        }
    }

    /// What the node kind must offer for it: links the framework can act on, the testing
    /// switches, the byzantine surface.
    pub fn kind_feature(self) -> Option<crate::nodekind::KindFeature> {
        use crate::nodekind::KindFeature;
        match self {
            k if Self::LINK.contains(&k) => Some(KindFeature::LinkFaults),
            FaultKind::Clock | FaultKind::Disk => Some(KindFeature::TestingSwitches),
            FaultKind::Byzantine => Some(KindFeature::Byzantine),
            _ => None,
        }
    }

    /// The kind of a node-control action (start is the way back from a stop, resume from a
    /// pause); None for what is recorded but is not node control (a clock set).
    pub fn of_action(action: control_log::NodeAction) -> Option<FaultKind> {
        use control_log::NodeAction as A;
        Some(match action {
            A::Start | A::Stop => FaultKind::Stop,
            A::Kill => FaultKind::Kill,
            A::Restart => FaultKind::Restart,
            A::Pause | A::Resume => FaultKind::Pause,
            A::AddNode => FaultKind::AddNode,
            A::Clock => FaultKind::Clock,
            A::Byzantine => FaultKind::Byzantine,
            A::Disk => FaultKind::Disk,
        })
    }
}

/// The capabilities covering `kinds`, in order.
pub fn capabilities_of(kinds: &[FaultKind]) -> Vec<Capability> {
    let mut out: Vec<Capability> = kinds.iter().map(|k| k.capability()).collect();
    out.sort();
    out.dedup();
    out
}

/// Every node-control kind, and the link-fault kinds when the backend runs the link layer.
pub(crate) fn node_and_link_kinds(links: bool) -> Vec<FaultKind> {
    let mut v = FaultKind::NODE.to_vec();
    if links {
        v.extend(FaultKind::LINK);
    }
    v
}

/// Lifecycle state of one node process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NodeState {
    /// The process runs.
    Running,
    /// Frozen by `pause` (SIGSTOP).
    Paused,
    /// Stopped or killed by node control (or torn down).
    Stopped,
    /// Exited on its own (crash, bad config).
    Exited,
}

/// When the run directory (configs, data, logs) is kept after teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum KeepRunDir {
    /// Always removed.
    Never,
    /// Kept when the run failed or hit an infrastructure error (the default):
    /// the logs explain why. Removed after a pass or an interrupt.
    #[default]
    OnFailure,
    /// Always kept (`--keep`).
    Always,
}

impl KeepRunDir {
    /// Whether to keep the directory given how the run went (an interrupted
    /// run is removed unless `Always`: the user asked it to stop).
    pub fn keep_for(self, outcome: &crate::report::Outcome) -> bool {
        use crate::report::Outcome;
        match self {
            KeepRunDir::Never => false,
            KeepRunDir::OnFailure => matches!(outcome, Outcome::Failed | Outcome::Error(_)),
            KeepRunDir::Always => true,
        }
    }
}

/// Settings of one deployment.
#[derive(Clone)]
pub struct DeployOptions {
    /// How long readiness may take (API up, peers connected, height >= 1 on every node).
    pub ready_timeout: Duration,
    /// Wait for readiness inside `deploy` (true by default).
    pub wait_ready: bool,
    /// Capabilities the caller will use; `deploy` refuses to start if one is missing.
    pub required: Vec<Capability>,
    /// Kinds of control and fault the caller's plan uses; `deploy` refuses to start if the
    /// backend lacks one.
    pub uses: Vec<FaultKind>,
    /// Features the caller needs from the node kind; `deploy` refuses to start if one is missing.
    pub required_features: Vec<crate::nodekind::KindFeature>,
    /// Where deploy events (node ready, ...) go.
    pub events: Option<EventSink>,
    /// Keep the run dir if deploy itself fails (readiness timeout): its logs explain why.
    pub keep_on_deploy_failure: bool,
    /// Identifier labelling every resource (None: the deployer makes one).
    pub run_id: Option<String>,
    /// Where the run's metrics and dashboards are (the environment's, or the plan's).
    pub monitoring: crate::metrics::Monitoring,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            ready_timeout: Duration::from_secs(30),
            wait_ready: true,
            required: Vec::new(),
            uses: Vec::new(),
            required_features: Vec::new(),
            events: None,
            keep_on_deploy_failure: true,
            run_id: None,
            monitoring: crate::metrics::Monitoring::from_env(),
        }
    }
}

impl fmt::Debug for DeployOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeployOptions")
            .field("ready_timeout", &self.ready_timeout)
            .field("wait_ready", &self.wait_ready)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

/// Why a deployment (or its teardown) failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeployError {
    /// The scenario needs what this backend does not offer.
    #[error(
        "the {deployer} deployer lacks {capability}: the scenario needs it (enable_node_control / network faults)"
    )]
    MissingCapability {
        capability: Capability,
        deployer: String,
    },
    /// The plan uses a kind of fault or control the backend cannot do.
    #[error(
        "the {deployer} deployer cannot do {kind}: the plan uses it (refused before deploying)"
    )]
    UnsupportedFault { kind: FaultKind, deployer: String },
    /// The scenario needs what this node kind does not offer.
    #[error("the {kind} node kind lacks {feature}: the scenario needs it")]
    MissingKindFeature {
        feature: crate::nodekind::KindFeature,
        kind: String,
    },
    /// A file, socket, Docker or API server operation failed: `what` names it, `source` says
    /// why (absent when the answer itself is the whole story).
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: Option<Cause>,
    },
    /// The node kind could not render a config or find its binary.
    #[error(transparent)]
    NodeKind(Arc<crate::nodekind::NodeKindError>),
    /// A node process could not be spawned.
    #[error("failed to start {node}: {what}")]
    Spawn {
        node: String,
        what: String,
        #[source]
        source: Option<Cause>,
    },
    /// Readiness deadline passed; names each node that was not ready and why.
    #[error(
        "{} node{} not ready after {}: {}",
        .nodes.len(),
        if .nodes.len() == 1 { "" } else { "s" },
        humantime::format_duration(*.waited),
        crate::report::brief::list(.nodes, "; ")
    )]
    NotReady {
        waited: Duration,
        nodes: Vec<String>,
    },
    /// A node's process (or container) exited before it was ready: reported as soon as it is
    /// seen, with how it ended, the last lines of its output and where its full log is.
    #[error(
        "{node} exited with {} while starting: {}; log: {log}",
        exit_how(*.code, *.signal),
        tail_line(.tail)
    )]
    NodeExited {
        node: String,
        /// Exit code, when it exited on its own.
        code: Option<i32>,
        /// The signal that killed it.
        signal: Option<i32>,
        /// Its last output lines (at most ~10 lines / 2 KB), newline-separated.
        tail: String,
        /// Where its full output is (a file, or how to get it).
        log: String,
    },
    /// Cancelled while deploying.
    #[error("deploy interrupted")]
    Interrupted,
    /// Teardown could not finish (the message says what is left).
    #[error("teardown: {what}")]
    Teardown {
        what: String,
        #[source]
        source: Option<Cause>,
    },
    /// A step of a deploy, named, and what made it fail.
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: Cause,
    },
}

impl DeployError {
    /// An I/O-like failure known only by its words (they name what failed and why).
    pub fn io(what: impl Into<String>) -> Self {
        Self::Io {
            what: what.into(),
            source: None,
        }
    }

    /// `what` failed because of `source`.
    pub fn io_caused(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Io {
            what: what.into(),
            source: Some(crate::error::cause(source)),
        }
    }

    /// Failed to `what` (open, write, read) the file at `path`.
    pub fn file(what: &str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::io_caused(format!("failed to {what} {}", path.display()), source)
    }

    /// Teardown could not remove the run dir `dir`.
    pub fn run_dir_left(dir: &std::path::Path, source: std::io::Error) -> Self {
        Self::Teardown {
            what: format!("failed to remove {}", dir.display()),
            source: Some(crate::error::cause(source)),
        }
    }

    /// Node `node` could not be spawned (`what` says all there is to say).
    pub fn spawn(node: impl Into<String>, what: impl Into<String>) -> Self {
        Self::Spawn {
            node: node.into(),
            what: what.into(),
            source: None,
        }
    }

    /// Node `node` could not be spawned: `what` was tried, `source` says why.
    pub fn spawn_caused(
        node: impl Into<String>,
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Spawn {
            node: node.into(),
            what: what.into(),
            source: Some(crate::error::cause(source)),
        }
    }

    /// Teardown left something behind (`what` says what).
    pub fn teardown(what: impl Into<String>) -> Self {
        Self::Teardown {
            what: what.into(),
            source: None,
        }
    }

    /// This error as the cause of the deploy step `what`.
    pub fn during(self, what: impl Into<String>) -> Self {
        Self::Step {
            what: what.into(),
            source: crate::error::cause(self),
        }
    }
}

impl From<crate::nodekind::NodeKindError> for DeployError {
    fn from(e: crate::nodekind::NodeKindError) -> Self {
        Self::NodeKind(Arc::new(e))
    }
}

/// Why a node-control or network-fault call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlError {
    /// The backend lacks the capability.
    #[error("the {deployer} deployer does not support {capability}")]
    Unsupported {
        capability: Capability,
        deployer: String,
    },
    /// The index names no node.
    #[error("node {index} does not exist: the testnet has {count} nodes")]
    NoSuchNode { index: usize, count: usize },
    /// The backend cannot do this kind of action at all (declared in its `supports`).
    #[error("the {deployer} deployer cannot {kind} node-{index}")]
    UnsupportedKind {
        kind: FaultKind,
        index: usize,
        deployer: String,
    },
    /// The node's state does not allow the action (pause a stopped node).
    #[error("node-{index} is {state:?}: cannot {action}")]
    BadState {
        index: usize,
        state: NodeState,
        action: String,
    },
    /// The plan did not enable the capability the action needs.
    #[error("{action} needs {capability}, which the plan did not enable: add .{call} to the plan")]
    NotEnabled {
        capability: Capability,
        action: String,
        call: &'static str,
    },
    /// The action was tried and failed: `what` says what failed, `source` why.
    #[error("{what}")]
    Failed {
        what: String,
        #[source]
        source: Option<Cause>,
    },
    /// A deploy step the action took (spawn a process, create a container) failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The testnet is gone.
    #[error("the testnet is torn down")]
    TornDown,
}

impl ControlError {
    /// A failure its words say all of.
    pub fn failed(what: impl Into<String>) -> Self {
        Self::Failed {
            what: what.into(),
            source: None,
        }
    }

    /// `what` failed because of `source`.
    pub fn caused(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Failed {
            what: what.into(),
            source: Some(crate::error::cause(source)),
        }
    }
}

/// A node added at run time.
#[derive(Debug, Clone, Default)]
pub struct AddNodeSpec {
    /// Existing nodes the new node dials.
    pub peers: Vec<usize>,
    /// 0: a non-producing follower. More: claims the next joiner slot the
    /// topology reserved with `reserve_joiner` (its stake was fixed at genesis).
    pub stake: u64,
    /// Config overrides of the new node (dotted paths, as `with_node_override`), applied after
    /// the topology's global ones; each path must exist in the config its kind produces.
    pub overrides: Vec<crate::topology::ConfigOverride>,
}

impl AddNodeSpec {
    /// Every backend refuses the same bad specs with the same words: no peers, or a peer index
    /// that is not (yet) a node of the `count` there are.
    pub(crate) fn check_peers(&self, count: usize) -> Result<(), ControlError> {
        if self.peers.is_empty() {
            return Err(ControlError::failed(
                "add_node peers = []: a new node needs at least one peer to join through",
            ));
        }
        if let Some(&p) = self.peers.iter().find(|&&p| p >= count) {
            return Err(ControlError::NoSuchNode { index: p, count });
        }
        Ok(())
    }

    /// The new node `i`'s secret key (hex): a follower's own, or, with stake, the next joiner
    /// slot the topology reserved (`joiners_used` counts the slots taken; a refused claim
    /// gives its slot back).
    pub(crate) fn node_key(
        &self,
        topology: &Topology,
        joiners_used: &AtomicUsize,
        i: usize,
    ) -> Result<String, ControlError> {
        let seed = topology.seed;
        if self.stake == 0 {
            return Ok(crate::nodekind::follower_secret(seed, i));
        }
        let j = joiners_used.fetch_add(1, Ordering::SeqCst);
        let reserved = &topology.reserved_joiners;
        if j >= reserved.len() {
            joiners_used.fetch_sub(1, Ordering::SeqCst);
            return Err(ControlError::failed(format!(
                "add_node stake = {}: the topology reserved {} staked joiner slots and all are used (reserve_joiner(stake) adds one)",
                self.stake,
                reserved.len()
            )));
        }
        Ok(crate::nodekind::joiner_secret(seed, j))
    }
}

/// What teardown did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TeardownSummary {
    /// Processes that had to be killed after the grace period.
    pub killed: usize,
    pub run_dir: Option<PathBuf>,
    pub kept: bool,
    pub took: Duration,
}

impl TeardownSummary {
    /// A teardown asked again (teardown is idempotent): nothing more is done.
    pub(crate) fn repeated(run_dir: Option<PathBuf>, kept: bool) -> Self {
        Self {
            killed: 0,
            run_dir,
            kept,
            took: Duration::ZERO,
        }
    }

    /// A teardown that began at `started` and is done.
    pub(crate) fn finished(
        killed: usize,
        run_dir: Option<PathBuf>,
        kept: bool,
        started: std::time::Instant,
    ) -> Self {
        Self {
            killed,
            run_dir,
            kept,
            took: started.elapsed(),
        }
    }
}

/// The end of a local or compose teardown: without `keep` the run dir is removed (an error when
/// it stays); with it, `write_state` records the run in it and it is marked kept.
pub(crate) fn close_run_dir(
    run_dir: &std::path::Path,
    run_id: &str,
    keep: bool,
    write_state: impl FnOnce(),
) -> Result<(), DeployError> {
    if keep {
        write_state();
        mark_kept(run_dir, run_id, "kept at teardown", false);
        return Ok(());
    }
    match std::fs::remove_dir_all(run_dir) {
        Err(e) if run_dir.exists() => Err(DeployError::run_dir_left(run_dir, e)),
        _ => Ok(()),
    }
}

/// A backend that can bring up a testnet.
pub trait Deployer: Send + Sync {
    /// `local`, `compose`, `k8s`.
    fn name(&self) -> &str;
    /// Every kind of control and fault the testnets it deploys can do.
    fn supports(&self) -> Vec<FaultKind>;
    /// The capabilities those kinds make up.
    fn capabilities(&self) -> Vec<Capability> {
        capabilities_of(&self.supports())
    }
    /// Provisions every node and, unless told otherwise, waits until ready.
    fn deploy<'a>(
        &'a self,
        topology: &'a Topology,
        opts: &'a DeployOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Testnet>, DeployError>>;
}

/// Checks that `deployer` offers everything in `required`.
pub fn check_capabilities(
    deployer: &dyn Deployer,
    required: &[Capability],
) -> Result<(), DeployError> {
    let have = deployer.capabilities();
    for c in required {
        if !have.contains(c) {
            return Err(DeployError::MissingCapability {
                capability: *c,
                deployer: deployer.name().to_owned(),
            });
        }
    }
    Ok(())
}

/// Checks that `deployer` can do every kind of control and fault in `uses`.
pub fn check_uses(deployer: &dyn Deployer, uses: &[FaultKind]) -> Result<(), DeployError> {
    check_kinds(deployer.name(), &deployer.supports(), uses)
}

/// Checks that a testnet already running can do every kind of control and fault in `uses`.
pub fn check_testnet_uses(net: &dyn Testnet, uses: &[FaultKind]) -> Result<(), DeployError> {
    check_kinds(net.deployer_name(), &net.supports(), uses)
}

fn check_kinds(
    deployer: &str,
    supports: &[FaultKind],
    uses: &[FaultKind],
) -> Result<(), DeployError> {
    match uses.iter().find(|k| !supports.contains(k)) {
        Some(k) => Err(DeployError::UnsupportedFault {
            kind: *k,
            deployer: deployer.to_owned(),
        }),
        None => Ok(()),
    }
}

/// [`check_capabilities`] and [`check_uses`] for the options of a deploy.
pub fn check_options(deployer: &dyn Deployer, opts: &DeployOptions) -> Result<(), DeployError> {
    check_capabilities(deployer, &opts.required)?;
    check_uses(deployer, &opts.uses)
}

/// Checks that node `kind` offers every feature in `required`.
pub fn check_kind_features(
    kind: &dyn crate::nodekind::NodeKind,
    required: &[crate::nodekind::KindFeature],
) -> Result<(), DeployError> {
    let caps = kind.capabilities();
    match required.iter().find(|f| !f.offered_by(&caps)) {
        Some(f) => Err(DeployError::MissingKindFeature {
            feature: *f,
            kind: kind.name(),
        }),
        None => Ok(()),
    }
}

/// The end of every deployer's `deploy`: waits for readiness when asked, and tears down a testnet
/// that does not get ready (keeping its run dir when the options say so) before the error goes up.
pub(crate) async fn ready_or_teardown<T: Testnet + 'static>(
    net: Arc<T>,
    opts: &DeployOptions,
) -> Result<Arc<dyn Testnet>, DeployError> {
    if opts.wait_ready
        && let Err(e) = net.wait_ready(opts.ready_timeout).await
    {
        if opts.keep_on_deploy_failure
            && let Some(dir) = net.run_dir()
        {
            mark_kept(&dir, net.run_id(), "deploy failed", true);
        }
        let _ = net.teardown(opts.keep_on_deploy_failure).await;
        return Err(e);
    }
    Ok(net as Arc<dyn Testnet>)
}

/// A fresh run id: unix seconds and random hex, e.g. `1763923456-3fa9c2`.
pub fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_declares_kinds_and_its_capabilities_follow_from_them() {
        let local = local::LocalDeployer::new();
        assert_eq!(
            local.capabilities(),
            [Capability::NodeControl, Capability::NetworkFaults]
        );
        let bare = local::LocalDeployer::new().without_links();
        assert_eq!(bare.capabilities(), [Capability::NodeControl]);
        // without links: node control passes, a partition is refused naming the kind
        assert!(check_uses(&bare, &[FaultKind::Pause, FaultKind::Clock]).is_ok());
        let e = check_uses(&bare, &[FaultKind::Restart, FaultKind::Partition]).unwrap_err();
        assert!(matches!(
            e,
            DeployError::UnsupportedFault {
                kind: FaultKind::Partition,
                ..
            }
        ));
        assert!(e.to_string().contains("cannot do partition"), "{e}");
        // Kubernetes has both coarse capabilities, yet no pause and no latency
        let k8s = k8s::K8sDeployer::default();
        assert_eq!(
            k8s.capabilities(),
            [Capability::NodeControl, Capability::NetworkFaults]
        );
        assert!(check_uses(&k8s, &[FaultKind::Restart, FaultKind::Partition]).is_ok());
        for k in [FaultKind::Pause, FaultKind::Latency, FaultKind::Clock] {
            assert!(check_uses(&k8s, &[k]).is_err(), "{k}");
        }
        assert!(
            external::ExternalDeployer::new(Vec::new())
                .capabilities()
                .is_empty()
        );
    }

    #[test]
    fn kinds_map_to_their_capability_node_kind_feature_and_actions() {
        use crate::nodekind::KindFeature;
        use control_log::NodeAction;
        for k in FaultKind::LINK {
            assert_eq!(k.capability(), Capability::NetworkFaults);
            assert_eq!(k.kind_feature(), Some(KindFeature::LinkFaults));
        }
        for k in FaultKind::NODE {
            assert_eq!(k.capability(), Capability::NodeControl);
        }
        assert_eq!(
            FaultKind::Clock.kind_feature(),
            Some(KindFeature::TestingSwitches)
        );
        assert_eq!(
            FaultKind::Byzantine.kind_feature(),
            Some(KindFeature::Byzantine)
        );
        assert_eq!(FaultKind::Restart.kind_feature(), None);
        assert_eq!(
            FaultKind::of_action(NodeAction::Resume),
            Some(FaultKind::Pause)
        );
        assert_eq!(
            FaultKind::of_action(NodeAction::Start),
            Some(FaultKind::Stop)
        );
    }
}
