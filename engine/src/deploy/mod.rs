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
pub mod node_faults;
mod readiness;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::client::NodeClients;
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkSel};
use crate::report::EventSink;
use crate::topology::Topology;
pub use endpoint::{Endpoint, NodeEndpoint, NodeHost, endpoints_or_old_lines, nodes};
pub use kept::{KEPT_MARKER, KeptMarker, mark_kept, read_kept};

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
        DeployError::Io(format!(
            "failed to create run dir {}: {e}",
            run_dir.display()
        ))
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

/// One kind of control action or fault, finer than [`Capability`]: what a plan uses and what a
/// backend may lack although it has the capability (Kubernetes has network faults, yet no
/// latency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
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
    /// A file or socket operation failed (the message names the path).
    #[error("{0}")]
    Io(String),
    /// The node kind could not render a config or find its binary.
    #[error("{0}")]
    NodeKind(String),
    /// A node process could not be spawned.
    #[error("failed to start {node}: {message}")]
    Spawn { node: String, message: String },
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
    #[error("teardown: {0}")]
    Teardown(String),
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
    /// The action was tried and failed (the message says why).
    #[error("{0}")]
    Failed(String),
    /// The testnet is gone.
    #[error("the testnet is torn down")]
    TornDown,
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
            return Err(ControlError::Failed(
                "add_node peers = []: a new node needs at least one peer to join through"
                    .to_owned(),
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
            return Err(ControlError::Failed(format!(
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

/// A backend that can bring up a testnet.
pub trait Deployer: Send + Sync {
    /// `local`, `compose`, `k8s`.
    fn name(&self) -> &str;
    /// What the testnets it deploys can do.
    fn capabilities(&self) -> Vec<Capability>;
    /// Kinds of control and fault it cannot do although it has their capability.
    fn lacks(&self) -> Vec<FaultKind> {
        Vec::new()
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
    let lacks = deployer.lacks();
    match uses.iter().find(|k| lacks.contains(k)) {
        Some(k) => Err(DeployError::UnsupportedFault {
            kind: *k,
            deployer: deployer.name().to_owned(),
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

fn unsupported<T>(
    net: &(impl Testnet + ?Sized),
    capability: Capability,
) -> Result<T, ControlError> {
    Err(ControlError::Unsupported {
        capability,
        deployer: net.deployer_name().to_owned(),
    })
}

pub(crate) type ControlFuture<'a, T> = BoxFuture<'a, Result<T, ControlError>>;

/// A running testnet. Node control and network faults default to
/// `ControlError::Unsupported`; backends override what they offer.
pub trait Testnet: Send + Sync {
    /// Name of the deployer that made it.
    fn deployer_name(&self) -> &str;
    /// Identifier labelling every resource of this run.
    fn run_id(&self) -> &str;
    /// Current number of nodes (grows with `add_node`).
    fn node_count(&self) -> usize;
    /// Clients of every node, by index (a snapshot: call again after `add_node`).
    fn clients(&self) -> NodeClients;
    /// The topology it was deployed from.
    fn topology(&self) -> &Topology;
    /// Where configs, data and logs live (local backends).
    fn run_dir(&self) -> Option<PathBuf>;
    /// Where it can be reached: one entry per node, plus the observability URLs when set
    /// (each renders as its `TESTNET_ENDPOINTS` line).
    fn endpoints(&self) -> Vec<Endpoint>;
    /// What this testnet can do.
    fn capabilities(&self) -> Vec<Capability>;
    /// Waits until every running node is ready, or names those that are not.
    fn wait_ready(&self, deadline: Duration) -> BoxFuture<'_, Result<(), DeployError>>;
    /// Start of slot 0 (ms since the Unix epoch), where the deployer chose it.
    fn genesis_time_ms(&self) -> Option<u64> {
        None
    }
    /// State of node `i`.
    fn node_state(&self, i: usize) -> Option<NodeState> {
        (i < self.node_count()).then_some(NodeState::Running)
    }

    /// The control action under way on node `i`, where this view tracks them (the plan's
    /// view, [`granted`], does), so that a client call the action breaks can wait for it
    /// ([`control_wait`]).
    fn control_in_flight(&self, i: usize) -> Option<control_log::NodeAction> {
        self.own_control_log().and_then(|l| l.in_flight(i))
    }

    /// The control log this testnet keeps itself (the backends that run nodes: local, compose,
    /// Kubernetes); the defaults of [`Testnet::control_log`], [`Testnet::note_control`] and
    /// [`Testnet::control_in_flight`] read and write it. None for views over another testnet.
    fn own_control_log(&self) -> Option<&control_log::ControlLog> {
        None
    }

    /// Starts a stopped node again (same ports, same data).
    fn start(&self, i: usize) -> ControlFuture<'_, ()> {
        let _ = i;
        Box::pin(async move { unsupported(self, Capability::NodeControl) })
    }
    /// Stops a node gracefully (SIGTERM, then SIGKILL after a grace period).
    fn stop(&self, i: usize) -> ControlFuture<'_, ()> {
        let _ = i;
        Box::pin(async move { unsupported(self, Capability::NodeControl) })
    }
    /// Stop then start.
    fn restart(&self, i: usize) -> ControlFuture<'_, ()> {
        let _ = i;
        Box::pin(async move { unsupported(self, Capability::NodeControl) })
    }
    /// SIGKILL: the node gets no chance to flush.
    fn kill(&self, i: usize) -> ControlFuture<'_, ()> {
        let _ = i;
        Box::pin(async move { unsupported(self, Capability::NodeControl) })
    }
    /// Freezes a node (SIGSTOP): it keeps its sockets but does nothing.
    fn pause(&self, i: usize) -> ControlFuture<'_, ()> {
        let _ = i;
        Box::pin(async move { unsupported(self, Capability::NodeControl) })
    }
    /// Thaws a paused node (SIGCONT).
    fn resume(&self, i: usize) -> ControlFuture<'_, ()> {
        let _ = i;
        Box::pin(async move { unsupported(self, Capability::NodeControl) })
    }
    /// Adds a node that joins through the given peers; returns its index.
    fn add_node(&self, spec: AddNodeSpec) -> ControlFuture<'_, usize> {
        let _ = spec;
        Box::pin(async move { unsupported(self, Capability::NodeControl) })
    }

    /// Sets a clock or disk fault on node `i` through its testing surface
    /// ([`node_faults`]): recorded in the control log, kept in force (applied again after the
    /// node restarts) until set back to normal or reverted by
    /// [`Testnet::revert_node_faults`]. Kinds without the reference node's testing switches
    /// refuse it.
    fn set_node_fault(&self, i: usize, fault: node_faults::NodeFault) -> ControlFuture<'_, ()> {
        Box::pin(node_faults::apply(self, i, fault))
    }
    /// Sets node `i`'s clock `offset_ms` off wall time, drifting `drift_ppm` from now on (0, 0
    /// puts it back): [`Testnet::set_node_fault`] with a clock fault.
    fn set_clock(&self, i: usize, offset_ms: i64, drift_ppm: i64) -> ControlFuture<'_, ()> {
        self.set_node_fault(
            i,
            node_faults::NodeFault::Clock {
                offset_ms,
                drift_ppm,
            },
        )
    }
    /// Puts every clock and disk fault in force back to normal; returns how many were.
    fn revert_node_faults(&self) -> ControlFuture<'_, usize> {
        Box::pin(node_faults::revert_all(self))
    }
    /// The clock and disk faults in force.
    fn node_faults(&self) -> Vec<node_faults::NodeFaultInForce> {
        self.own_control_log()
            .map(|l| l.node_faults().in_force())
            .unwrap_or_default()
    }
    /// Makes node `i` tell `lies` (the default set: honest again) through its testing surface;
    /// recorded in the control log ([`byzantine`]). A restarted node starts with its config's.
    fn set_byzantine(
        &self,
        i: usize,
        lies: byzantine::Behaviours,
    ) -> ControlFuture<'_, byzantine::ByzantineState> {
        Box::pin(byzantine::set_through_client(self, i, lies))
    }
    /// Records an action done to node `i` outside the backend's own control (a clock set through
    /// the node's API) in the control log; backends without one ignore it.
    fn note_control(&self, action: control_log::NodeAction, i: usize, detail: Option<String>) {
        if let Some(l) = self.own_control_log() {
            l.record_detail(action, i, detail);
        }
    }

    /// Applies a network fault on top of those in force.
    fn apply_fault(&self, fault: Fault, note: Option<String>) -> Result<FaultId, ControlError> {
        let _ = (fault, note);
        unsupported(self, Capability::NetworkFaults)
    }
    /// Reverts one fault.
    fn revert_fault(&self, id: FaultId) -> Result<(), ControlError> {
        let _ = id;
        unsupported(self, Capability::NetworkFaults)
    }
    /// Reverts every fault on the selected links; returns how many were touched.
    fn clear_links(&self, links: LinkSel) -> Result<usize, ControlError> {
        let _ = links;
        unsupported(self, Capability::NetworkFaults)
    }
    /// Reverts every fault; returns how many.
    fn heal(&self) -> Result<usize, ControlError> {
        unsupported(self, Capability::NetworkFaults)
    }
    /// Faults in force.
    fn active_faults(&self) -> Vec<ActiveFault> {
        Vec::new()
    }
    /// Node-control actions that succeeded (restart, stop, kill, start, pause, resume, add), in
    /// order: with [`Testnet::fault_log`], the run's one timeline of what was done to it.
    fn control_log(&self) -> Vec<control_log::ControlRecord> {
        self.own_control_log()
            .map(control_log::ControlLog::entries)
            .unwrap_or_default()
    }
    /// Every fault applied and reverted, in order.
    fn fault_log(&self) -> Vec<FaultRecord> {
        Vec::new()
    }
    /// Splits the network into groups (nodes named nowhere form one more group).
    fn partition(&self, groups: Vec<Vec<usize>>) -> Result<FaultId, ControlError> {
        self.apply_fault(Fault::Partition(groups), None)
    }
    /// Cuts one node off from all others.
    fn isolate(&self, i: usize) -> Result<FaultId, ControlError> {
        self.apply_fault(Fault::Isolate(i), None)
    }
    /// Drops every frame from `from` to `to` (one direction only).
    fn cut(&self, from: usize, to: usize) -> Result<FaultId, ControlError> {
        self.apply_fault(Fault::Cut { from, to }, None)
    }
    /// Delays frames on the selected links.
    fn set_latency(
        &self,
        links: LinkSel,
        delay: Duration,
        jitter: Duration,
    ) -> Result<FaultId, ControlError> {
        self.apply_fault(
            Fault::Latency {
                links,
                delay,
                jitter,
            },
            None,
        )
    }
    /// Drops frames on the selected links with a probability.
    fn set_loss(&self, links: LinkSel, probability: f64) -> Result<FaultId, ControlError> {
        self.apply_fault(Fault::Loss { links, probability }, None)
    }
    /// Limits the selected links' throughput.
    fn set_bandwidth(&self, links: LinkSel, bytes_per_sec: u64) -> Result<FaultId, ControlError> {
        self.apply_fault(
            Fault::Bandwidth {
                links,
                bytes_per_sec,
            },
            None,
        )
    }

    /// The last `lines` lines of node `i`'s log (local: its log file, else its
    /// captured output; compose: `docker logs`).
    fn logs(&self, i: usize, lines: usize) -> BoxFuture<'_, Result<String, ControlError>> {
        let _ = (i, lines);
        Box::pin(async move {
            Err(ControlError::Failed(format!(
                "the {} deployer does not expose node logs",
                self.deployer_name()
            )))
        })
    }

    /// Stops every process and removes the run dir unless `keep`. Idempotent.
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>>;
}

/// A fresh run id: unix seconds and random hex, e.g. `1763923456-3fa9c2`.
pub fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}
