//! The Kubernetes deployer: a testnet on an existing cluster, through the API server only
//! (kube-rs and k8s-openapi types; no kubectl or helm at run time). A run gets a namespace
//! `nomos-script-<run id>` (or `K8S_RUNNER_NAMESPACE`) labelled `nomos-script.run-id`; each node
//! a ConfigMap with its rendered config, a Service (p2p and API) and a one-replica StatefulSet.
//! Nodes dial each other by Service name. The runner reaches each node API through a local
//! port forwarded by the API server, or at `K8S_RUNNER_NODE_HOST:<node port>` with NodePort
//! Services. Node control maps onto pods (restart = delete the pod, stop/start = scale 0/1, kill
//! = scale 0 and delete with no grace); partitions onto NetworkPolicies, which only a CNI that
//! enforces them honours (kind's default CNI does not: see README.md here). The namespace is
//! deleted on every exit path unless `K8S_RUNNER_PRESERVE` is set.

mod cleanup;
mod control;
mod faults;
mod forward;
pub mod manifest;
mod provision;
mod readiness;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devnode::config::Genesis;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use cleanup::{K8sGcReport, gc};
pub use manifest::{ApiAccess, K8sResources, K8sStorage, ManifestSettings, Manifests};

use super::{
    ControlError, ControlFuture, DeployError, DeployOptions, Deployer, FaultKind, NetworkFaults,
    NodeLogs, NodeState, Teardown, TeardownSummary, Testnet,
};
use crate::client::{NodeClient, NodeClients};
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkSel};
use crate::nodekind::NodeKind;
use crate::topology::Topology;

/// Selects the node image (never built by this deployer; load it into the cluster first).
pub const IMAGE_ENV: &str = "LOGOS_BLOCKCHAIN_TESTNET_IMAGE";
/// `Always`, `IfNotPresent` (default) or `Never`.
pub const PULL_POLICY_ENV: &str = "LOGOS_BLOCKCHAIN_TESTNET_IMAGE_PULL_POLICY";
/// Runs in this existing namespace instead of creating one per run.
pub const NAMESPACE_ENV: &str = "K8S_RUNNER_NAMESPACE";
/// Host (a cluster node's address) at which NodePort Services are reached; unset: port-forward.
pub const NODE_HOST_ENV: &str = "K8S_RUNNER_NODE_HOST";
/// Any non-empty value other than `0`/`false`: keep the namespace after the run.
pub const PRESERVE_ENV: &str = "K8S_RUNNER_PRESERVE";

/// What the k8s deployer cannot do, so scripts fail early with a reason (node control and
/// network faults are offered, but not these parts of them).
pub const UNSUPPORTED: [(&str, &str); 3] = [
    (
        "pause/resume",
        "Kubernetes cannot freeze a pod's processes; use stop/start (scale to 0/1) or kill",
    ),
    (
        "cut (one-way)",
        "NetworkPolicies filter connections, not one direction of frames; use partition or isolate",
    ),
    (
        "latency/loss/bandwidth",
        "NetworkPolicies only allow or deny; shaping needs a CNI or sidecar this deployer does not manage",
    ),
];

/// Deploys testnets on a Kubernetes cluster.
#[derive(Clone)]
pub struct K8sDeployer {
    /// The node implementation (None: chosen from the environment at deploy time); only its
    /// config rendering and container arguments are used: the binary is in the image.
    pub node_kind: Option<Arc<dyn NodeKind>>,
    /// The API client (None: from `KUBECONFIG`, `~/.kube/config` or the in-cluster service account).
    pub client: Option<kube::Client>,
    /// An existing namespace to use (`K8S_RUNNER_NAMESPACE`; None: one per run, deleted after).
    pub namespace: Option<String>,
    /// Image (`LOGOS_BLOCKCHAIN_TESTNET_IMAGE`; None: `nomos-script-node:<hash of the node
    /// binary>` as the compose deployer and `scripts/build-image.sh` tag it, else
    /// `logos-blockchain-testing:local`).
    pub image: Option<String>,
    /// Pull policy (`LOGOS_BLOCKCHAIN_TESTNET_IMAGE_PULL_POLICY`; default `IfNotPresent`).
    pub pull_policy: Option<String>,
    /// Requests and limits of every node container.
    pub resources: K8sResources,
    /// Where node data lives.
    pub storage: K8sStorage,
    /// Reach node APIs at this host through NodePort Services (`K8S_RUNNER_NODE_HOST`; None: port-forward).
    pub node_host: Option<String>,
    /// Keep the namespace after teardown (`K8S_RUNNER_PRESERVE`).
    pub preserve: bool,
    /// How long pods may take to become ready (image pulls included).
    pub rollout_timeout: Duration,
    /// How often the API server is polled while waiting.
    pub poll_interval: Duration,
}

impl std::fmt::Debug for K8sDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sDeployer")
            .field("namespace", &self.namespace)
            .field("image", &self.image)
            .field("pull_policy", &self.pull_policy)
            .field("resources", &self.resources)
            .field("storage", &self.storage)
            .field("node_host", &self.node_host)
            .field("preserve", &self.preserve)
            .finish_non_exhaustive()
    }
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

impl Default for K8sDeployer {
    fn default() -> Self {
        Self::new()
    }
}

impl K8sDeployer {
    /// Settings from the environment (see the `*_ENV` constants); the client is made at deploy.
    pub fn new() -> Self {
        Self {
            node_kind: None,
            client: None,
            namespace: env_nonempty(NAMESPACE_ENV),
            image: env_nonempty(IMAGE_ENV),
            pull_policy: env_nonempty(PULL_POLICY_ENV),
            resources: K8sResources::default(),
            storage: K8sStorage::EmptyDir,
            node_host: env_nonempty(NODE_HOST_ENV),
            preserve: env_nonempty(PRESERVE_ENV)
                .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")),
            rollout_timeout: Duration::from_secs(180),
            poll_interval: Duration::from_millis(1000),
        }
    }

    /// Uses this node kind.
    pub fn with_node_kind(mut self, kind: Arc<dyn NodeKind>) -> Self {
        self.node_kind = Some(kind);
        self
    }

    /// Talks to the cluster through this client (a test's mock service, or a custom config).
    pub fn with_client(mut self, client: kube::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Runs in this existing namespace (created, and then deleted, only if missing).
    pub fn with_namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.to_owned());
        self
    }

    /// Uses this image.
    pub fn with_image(mut self, image: &str) -> Self {
        self.image = Some(image.to_owned());
        self
    }

    /// Uses this pull policy (`Always`, `IfNotPresent`, `Never`).
    pub fn with_pull_policy(mut self, policy: &str) -> Self {
        self.pull_policy = Some(policy.to_owned());
        self
    }

    /// Requests and limits of every node container.
    pub fn with_resources(mut self, resources: K8sResources) -> Self {
        self.resources = resources;
        self
    }

    /// Where node data lives.
    pub fn with_storage(mut self, storage: K8sStorage) -> Self {
        self.storage = storage;
        self
    }

    /// Reaches node APIs at `host:<node port>` (NodePort Services) instead of port-forwarding.
    pub fn with_node_host(mut self, host: &str) -> Self {
        self.node_host = Some(host.to_owned());
        self
    }

    /// Keeps (true) or deletes (false) the namespace after the run.
    pub fn preserve(mut self, keep: bool) -> Self {
        self.preserve = keep;
        self
    }

    /// How long pods may take to become ready.
    pub fn with_rollout_timeout(mut self, d: Duration) -> Self {
        self.rollout_timeout = d;
        self
    }

    /// How often the API server is polled while waiting (tests shorten it).
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// The manifests a deploy of `topology` would send, for a run id, with the genesis time
    /// given (for `assets/k8s/`, reviews, or applying by hand).
    pub fn render(
        &self,
        topology: &Topology,
        run_id: &str,
        genesis_time_ms: u64,
    ) -> Result<Manifests, DeployError> {
        let kind = provision::node_kind(self)?;
        let settings = provision::settings(
            self,
            &*kind,
            run_id,
            None,
            &crate::metrics::Monitoring::from_env(),
        )?;
        manifest::render(topology, &*kind, &settings, genesis_time_ms).map_err(DeployError::io)
    }
}

/// What Kubernetes can do to a testnet: restart (delete the pod), stop and kill (scale to 0),
/// add a node, and partitions (NetworkPolicies). Pods cannot be frozen, NetworkPolicies only
/// allow or deny whole connections (no one-way cut, latency, loss, bandwidth or tampering), and
/// the pods serve no testing surface (no clock, disk or byzantine switches).
const SUPPORTS: [FaultKind; 5] = [
    FaultKind::Restart,
    FaultKind::Stop,
    FaultKind::Kill,
    FaultKind::AddNode,
    FaultKind::Partition,
];

impl Deployer for K8sDeployer {
    fn name(&self) -> &str {
        "k8s"
    }

    fn supports(&self) -> Vec<FaultKind> {
        SUPPORTS.to_vec()
    }

    fn deploy<'a>(
        &'a self,
        topology: &'a Topology,
        opts: &'a DeployOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Testnet>, DeployError>> {
        Box::pin(async move {
            super::check_options(self, opts)?;
            let net = provision::provision(self, topology, opts).await?;
            super::ready_or_teardown(net, opts).await
        })
    }
}

/// One node: a StatefulSet with one pod.
#[derive(Debug)]
pub(crate) struct K8sNode {
    pub index: usize,
    pub client: NodeClient,
    pub state: NodeState,
    /// Peers it must have connected for readiness.
    pub expected_peers: usize,
}

/// A testnet on a Kubernetes cluster.
pub struct K8sTestnet {
    pub(crate) client: kube::Client,
    pub(crate) run_id: String,
    pub(crate) namespace: String,
    /// Created by this run (deleted at teardown); false for `K8S_RUNNER_NAMESPACE` that existed.
    pub(crate) owns_namespace: bool,
    pub(crate) settings: ManifestSettings,
    pub(crate) topology: Topology,
    pub(crate) kind: Arc<dyn NodeKind>,
    pub(crate) genesis: Genesis,
    pub(crate) nodes: Mutex<Vec<K8sNode>>,
    pub(crate) faults: Mutex<faults::FaultBook>,
    /// Stops the port-forward listeners.
    pub(crate) cancel: CancellationToken,
    /// Control lock (serialising node control and fault changes), log and events, teardown
    /// flag, joiner slots taken.
    pub(crate) ctl: crate::deploy::node_control::ControlCore,
    pub(crate) preserve: bool,
    pub(crate) node_host: Option<String>,
    pub(crate) rollout_timeout: Duration,
    pub(crate) poll: Duration,
    /// Where pod logs were saved at teardown (when kept).
    pub(crate) saved_logs: Mutex<Option<PathBuf>>,
    /// Where the run's metrics and dashboards are (in the endpoints).
    pub(crate) monitoring: crate::metrics::Monitoring,
}

impl std::fmt::Debug for K8sTestnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sTestnet")
            .field("run_id", &self.run_id)
            .field("namespace", &self.namespace)
            .field("image", &self.settings.image)
            .finish_non_exhaustive()
    }
}

impl K8sTestnet {
    pub(crate) fn lock_nodes(&self) -> std::sync::MutexGuard<'_, Vec<K8sNode>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The namespace every object of the run lives in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The image the pods run.
    pub fn image(&self) -> &str {
        &self.settings.image
    }

    /// `kubectl` commands that show node `i`'s logs (for messages and reports).
    pub fn logs_hint(&self, i: usize) -> String {
        format!(
            "kubectl -n {} logs {}",
            self.namespace,
            manifest::pod_name(i)
        )
    }

    pub(crate) fn emit(&self, event: crate::report::RunEvent) {
        if let Some(ev) = &self.ctl.events {
            ev.emit(event);
        }
    }

    pub(crate) fn emit_control(&self, action: crate::report::ControlAction) {
        self.ctl.emit(action);
    }

    pub(crate) fn check_live(&self) -> Result<(), ControlError> {
        self.ctl.check_live()
    }
}

impl Testnet for K8sTestnet {
    fn deployer_name(&self) -> &str {
        "k8s"
    }

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn node_count(&self) -> usize {
        self.lock_nodes().len()
    }

    fn clients(&self) -> NodeClients {
        NodeClients(self.lock_nodes().iter().map(|n| n.client.clone()).collect())
    }

    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn run_dir(&self) -> Option<PathBuf> {
        self.saved_logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn endpoints(&self) -> Vec<crate::deploy::Endpoint> {
        let mut v: Vec<crate::deploy::Endpoint> = self
            .lock_nodes()
            .iter()
            .map(|n| {
                crate::deploy::NodeEndpoint {
                    node: n.index,
                    api: n.client.base_url().to_owned(),
                    testing: None,
                    host: crate::deploy::NodeHost::Pod {
                        namespace: self.namespace.clone(),
                        pod: manifest::pod_name(n.index),
                        p2p: manifest::peer_addr(n.index),
                        logs: self.logs_hint(n.index),
                    },
                }
                .into()
            })
            .collect();
        v.extend(self.monitoring.endpoints());
        v
    }

    fn supports(&self) -> Vec<FaultKind> {
        SUPPORTS.to_vec()
    }

    fn genesis_time_ms(&self) -> Option<u64> {
        Some(self.genesis.time_ms)
    }

    fn wait_ready(&self, deadline: Duration) -> BoxFuture<'_, Result<(), DeployError>> {
        Box::pin(readiness::wait_all(self, deadline))
    }

    fn node_state(&self, i: usize) -> Option<NodeState> {
        self.lock_nodes().get(i).map(|n| n.state)
    }

    fn own_control_log(&self) -> Option<&crate::deploy::control_log::ControlLog> {
        Some(&self.ctl.log)
    }
}

impl NetworkFaults for K8sTestnet {
    fn apply_fault(&self, fault: Fault, note: Option<String>) -> ControlFuture<'_, FaultId> {
        Box::pin(faults::apply(self, fault, note))
    }

    fn revert_fault(&self, id: FaultId) -> ControlFuture<'_, ()> {
        Box::pin(faults::revert(self, id))
    }

    fn clear_links(&self, links: LinkSel) -> ControlFuture<'_, usize> {
        Box::pin(faults::clear(self, links))
    }

    fn heal(&self) -> ControlFuture<'_, usize> {
        Box::pin(faults::clear(self, LinkSel::All))
    }

    fn active_faults(&self) -> Vec<ActiveFault> {
        faults::active(self)
    }

    fn fault_log(&self) -> Vec<FaultRecord> {
        faults::log(self)
    }
}

impl NodeLogs for K8sTestnet {
    fn logs(&self, i: usize, lines: usize) -> BoxFuture<'_, Result<String, ControlError>> {
        Box::pin(async move {
            let count = self.node_count();
            if i >= count {
                return Err(ControlError::NoSuchNode { index: i, count });
            }
            cleanup::pod_logs(self, i, Some(lines))
                .await
                .map_err(ControlError::failed)
        })
    }
}

impl Teardown for K8sTestnet {
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>> {
        Box::pin(cleanup::teardown(self, keep))
    }
}

impl Drop for K8sTestnet {
    fn drop(&mut self) {
        cleanup::remove_on_drop(self);
    }
}
