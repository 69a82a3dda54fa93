//! The compose deployer: one Docker container per node on a per-run bridge network, all labelled
//! with the run id, through the Docker API. The node image is built locally from the node binary
//! when missing (no registry). Each node's config is rendered by the node kind into
//! `<run dir>/node-<i>/` and bind-mounted at `/node`; its API is published on a free 127.0.0.1
//! port picked at deploy (Docker would pick a new one on every start; a restarted node keeps its
//! address) and read back by inspect. A `docker-compose.yml` for running the same stack by
//! hand is written to the run dir. Peer connections go through the engine's link proxies on the
//! host (see README.md here), so node control and network faults work as they do locally.

pub mod cleanup;
mod control;
pub mod docker;
pub mod image;
mod provision;
mod readiness;
mod relay;
mod template;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use devnode::config::Genesis;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use image::ImageInfo;

use super::link_faults::{self, LinkBacked};
use super::{
    ControlError, DeployError, DeployOptions, Deployer, FaultKind, NodeLogs, NodeState, Teardown,
    TeardownSummary, Testnet,
};
use crate::client::{NodeClient, NodeClients};
use crate::links::LinkLayer;
use crate::nodekind::NodeKind;
use crate::topology::Topology;

/// Port of the node API inside every container.
pub const API_PORT: u16 = 18080;
/// Port of the node's testing surface inside every container (kinds that have one).
pub const TESTING_PORT: u16 = 18081;
/// Port of the node's p2p listener inside every container.
pub const P2P_PORT: u16 = 19000;
/// Where the per-node dir is mounted in the container.
pub const NODE_DIR_IN_CONTAINER: &str = "/node";

/// Deploys testnets as Docker containers.
#[derive(Debug, Clone)]
pub struct ComposeDeployer {
    /// The node implementation (None: chosen from the environment at deploy time).
    pub node_kind: Option<Arc<dyn NodeKind>>,
    /// Parent of run dirs (None: the system temp dir).
    pub base_dir: Option<PathBuf>,
    /// Route peer connections through the link layer (needed for network faults). Without it,
    /// nodes dial each other by container name on the run's network.
    pub use_links: bool,
}

impl Default for ComposeDeployer {
    fn default() -> Self {
        Self {
            node_kind: None,
            base_dir: None,
            use_links: true,
        }
    }
}

impl ComposeDeployer {
    /// Reference node (or `LOGOS_BLOCKCHAIN_NODE_BIN`), system temp dir, link layer on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this node kind.
    pub fn with_node_kind(mut self, kind: Arc<dyn NodeKind>) -> Self {
        self.node_kind = Some(kind);
        self
    }

    /// Puts run dirs under `dir`.
    pub fn with_base_dir(mut self, dir: PathBuf) -> Self {
        self.base_dir = Some(dir);
        self
    }

    /// Nodes dial each other directly on the Docker network (no network faults).
    pub fn without_links(mut self) -> Self {
        self.use_links = false;
        self
    }

    /// Builds (when missing) or finds the image this deployer would use, without deploying:
    /// lets a caller pay the build before timing a deploy, or check the setup.
    pub async fn prepare_image(&self) -> Result<ImageInfo, DeployError> {
        let kind = provision::node_kind(self)?;
        let docker = docker::connect().await.map_err(DeployError::io)?;
        let (program, _) = provision::node_command(&*kind)?;
        image::ensure_image(&docker, &program)
            .await
            .map_err(DeployError::io)
    }
}

impl Deployer for ComposeDeployer {
    fn name(&self) -> &str {
        "compose"
    }

    fn supports(&self) -> Vec<FaultKind> {
        super::node_and_link_kinds(self.use_links)
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

/// One node container.
#[derive(Debug)]
pub(crate) struct ComposeNode {
    pub index: usize,
    pub container: String,
    /// Host dir mounted at `/node` (config, data).
    pub dir: PathBuf,
    /// Host port the API is published on (127.0.0.1).
    pub api_port: u16,
    /// Address on the run's network (changes only if Docker hands out another on start).
    pub ip: Option<Ipv4Addr>,
    pub client: NodeClient,
    pub state: NodeState,
    /// Peers it must have connected for readiness.
    pub expected_peers: usize,
    /// Environment of its container beyond the testnet's (`K=V`: libfaketime for a clock skew
    /// at start), and the host dirs it mounts read-only at the same path (libfaketime's).
    pub extra_env: Vec<String>,
    pub extra_mounts: Vec<PathBuf>,
}

/// A testnet of Docker containers.
pub struct ComposeTestnet {
    pub(crate) run_id: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) topology: Topology,
    pub(crate) kind: Arc<dyn NodeKind>,
    pub(crate) genesis: Genesis,
    pub(crate) docker: Docker,
    pub(crate) image: ImageInfo,
    pub(crate) network: String,
    pub(crate) gateway: IpAddr,
    /// Arguments after the image's entrypoint (the node's command line, config in the container).
    pub(crate) args: Vec<String>,
    /// Environment of every container.
    pub(crate) env: Vec<String>,
    pub(crate) nodes: Mutex<Vec<ComposeNode>>,
    pub(crate) links: Option<LinkLayer>,
    /// Stops relays and the state monitor.
    pub(crate) cancel: CancellationToken,
    /// Control lock, log and events, teardown flag, joiner slots taken.
    pub(crate) ctl: crate::deploy::node_control::ControlCore,
    /// Where the run's metrics and dashboards are (in the endpoints).
    pub(crate) monitoring: crate::metrics::Monitoring,
}

impl std::fmt::Debug for ComposeTestnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComposeTestnet")
            .field("run_id", &self.run_id)
            .field("run_dir", &self.run_dir)
            .field("image", &self.image.tag)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl ComposeTestnet {
    pub(crate) fn lock_nodes(&self) -> std::sync::MutexGuard<'_, Vec<ComposeNode>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The image the containers run.
    pub fn image(&self) -> &ImageInfo {
        &self.image
    }

    /// Name of the run's Docker network.
    pub fn network_name(&self) -> &str {
        &self.network
    }

    /// The network's gateway: the host as containers see it (the link relays listen there).
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// Container name of node `i`.
    pub fn container_name(&self, i: usize) -> Option<String> {
        self.lock_nodes().get(i).map(|n| n.container.clone())
    }
}

impl LinkBacked for ComposeTestnet {
    const WITHOUT_LINKS: &'static str = "compose (without links)";

    fn link_layer(&self) -> Option<&LinkLayer> {
        self.links.as_ref()
    }
}

impl Testnet for ComposeTestnet {
    fn deployer_name(&self) -> &str {
        "compose"
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
        Some(self.run_dir.clone())
    }

    fn endpoints(&self) -> Vec<crate::deploy::Endpoint> {
        let mut v: Vec<crate::deploy::Endpoint> = self
            .lock_nodes()
            .iter()
            .map(|n| {
                crate::deploy::NodeEndpoint {
                    node: n.index,
                    api: format!("http://127.0.0.1:{}", n.api_port),
                    testing: n.client.testing_url().map(str::to_owned),
                    host: crate::deploy::NodeHost::Container {
                        container: n.container.clone(),
                        ip: n.ip.map(Into::into),
                        p2p_port: P2P_PORT,
                    },
                }
                .into()
            })
            .collect();
        v.extend(self.monitoring.endpoints());
        v
    }

    fn supports(&self) -> Vec<FaultKind> {
        link_faults::supports(self)
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

impl NodeLogs for ComposeTestnet {
    fn logs(&self, i: usize, lines: usize) -> BoxFuture<'_, Result<String, ControlError>> {
        Box::pin(async move {
            let count = self.node_count();
            let name = self
                .container_name(i)
                .ok_or(ControlError::NoSuchNode { index: i, count })?;
            cleanup::container_logs(&self.docker, &name, Some(lines))
                .await
                .map_err(ControlError::failed)
        })
    }
}

impl Teardown for ComposeTestnet {
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>> {
        Box::pin(cleanup::teardown(self, keep))
    }
}

impl Drop for ComposeTestnet {
    fn drop(&mut self) {
        cleanup::remove_all_now(self);
    }
}
