//! The local deployer: every node is a child process of the node kind's
//! command, on free loopback ports, with its config, data and logs under one
//! run dir (`<tmp>/nomos-script-<run_id>`, with a `run.json` naming the pids
//! so `gc` can clean up after a killed run). Peer connections go through the
//! framework-owned link layer, so network faults need no root.

mod cleanup;
mod control;
pub mod fds;
mod provision;
mod readiness;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devnode::config::Genesis;
use futures::future::BoxFuture;

pub use cleanup::{GcSummary, gc};

use super::link_faults::{self, LinkBacked};
use super::node_control::ControlCore;
use super::{
    ControlError, DeployError, DeployOptions, Deployer, FaultKind, NodeLogs, NodeState, Teardown,
    TeardownSummary, Testnet,
};
use crate::client::{NodeClient, NodeClients};
use crate::links::LinkLayer;
use crate::nodekind::NodeKind;
use crate::topology::Topology;

/// Deploys testnets as local processes.
#[derive(Debug, Clone)]
pub struct LocalDeployer {
    /// The node implementation (None: chosen from the environment at deploy time).
    pub node_kind: Option<Arc<dyn NodeKind>>,
    /// Parent of run dirs (None: the system temp dir).
    pub base_dir: Option<PathBuf>,
    /// Route peer connections through the link layer (needed for network faults).
    pub use_links: bool,
}

impl Default for LocalDeployer {
    fn default() -> Self {
        Self {
            node_kind: None,
            base_dir: None,
            use_links: true,
        }
    }
}

impl LocalDeployer {
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

    /// Refuses `topology` when its file descriptors (see [`fds`]) exceed this process's
    /// limit; checked by `deploy` before anything is created.
    pub fn check_fd_budget(&self, topology: &Topology) -> Result<(), String> {
        fds::check_fd_budget(topology, self.use_links, fds::nofile_limit())
    }

    /// Dials peers directly instead of through link proxies (no network faults).
    pub fn without_links(mut self) -> Self {
        self.use_links = false;
        self
    }
}

impl Deployer for LocalDeployer {
    fn name(&self) -> &str {
        "local"
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
            self.check_fd_budget(topology).map_err(DeployError::io)?;
            let net = provision::provision(self, topology, opts).await?;
            super::ready_or_teardown(net, opts).await
        })
    }
}

/// One node process.
#[derive(Debug)]
pub(crate) struct LocalNode {
    pub index: usize,
    pub api_addr: std::net::SocketAddr,
    pub p2p_addr: std::net::SocketAddr,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub log_dir: PathBuf,
    pub client: NodeClient,
    pub child: Option<tokio::process::Child>,
    pub pid: Option<u32>,
    pub state: NodeState,
    /// Peers it must have connected for readiness.
    pub expected_peers: usize,
    /// Environment of its process beyond the kind's (libfaketime for a clock skew at start).
    pub env: Vec<(String, String)>,
}

/// A testnet of local processes.
pub struct LocalTestnet {
    pub(crate) run_id: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) topology: Topology,
    pub(crate) kind: Arc<dyn NodeKind>,
    pub(crate) genesis: Genesis,
    pub(crate) nodes: Mutex<Vec<LocalNode>>,
    pub(crate) links: Option<LinkLayer>,
    /// Control lock, log and events, teardown flag, joiner slots taken.
    pub(crate) ctl: ControlCore,
    /// Where the run's metrics and dashboards are (in the endpoints).
    pub(crate) monitoring: crate::metrics::Monitoring,
}

impl std::fmt::Debug for LocalTestnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTestnet")
            .field("run_id", &self.run_id)
            .field("run_dir", &self.run_dir)
            .finish_non_exhaustive()
    }
}

impl LocalTestnet {
    pub(crate) fn lock_nodes(&self) -> std::sync::MutexGuard<'_, Vec<LocalNode>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pid of node `i`'s process while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.lock_nodes().get(i).and_then(|n| n.pid)
    }
}

impl LinkBacked for LocalTestnet {
    const WITHOUT_LINKS: &'static str = "local (without links)";

    fn link_layer(&self) -> Option<&LinkLayer> {
        self.links.as_ref()
    }
}

impl Testnet for LocalTestnet {
    fn deployer_name(&self) -> &str {
        "local"
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
                    api: format!("http://{}", n.api_addr),
                    testing: n.client.testing_url().map(str::to_owned),
                    host: crate::deploy::NodeHost::Process {
                        p2p: n.p2p_addr,
                        logs: n.log_dir.clone(),
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
        let mut nodes = self.lock_nodes();
        let n = nodes.get_mut(i)?;
        if let Some(c) = n.child.as_mut()
            && let Ok(Some(_)) = c.try_wait()
        {
            n.child = None;
            n.pid = None;
            n.state = NodeState::Exited;
        }
        Some(n.state)
    }

    fn own_control_log(&self) -> Option<&crate::deploy::control_log::ControlLog> {
        Some(&self.ctl.log)
    }
}

impl NodeLogs for LocalTestnet {
    fn logs(&self, i: usize, lines: usize) -> BoxFuture<'_, Result<String, ControlError>> {
        Box::pin(async move {
            let (log_dir, out) = {
                let nodes = self.lock_nodes();
                let n = nodes.get(i).ok_or(ControlError::NoSuchNode {
                    index: i,
                    count: nodes.len(),
                })?;
                (n.log_dir.clone(), n.dir.join("output.log"))
            };
            // the node's own log file (newest in its log dir), else its captured output
            let newest = std::fs::read_dir(&log_dir)
                .ok()
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
                .map(|e| e.path());
            let path = newest.unwrap_or(out);
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| DeployError::file("read", &path, e))?;
            let all: Vec<&str> = text.lines().collect();
            Ok(all[all.len().saturating_sub(lines)..].join("\n"))
        })
    }
}

impl Teardown for LocalTestnet {
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>> {
        Box::pin(cleanup::teardown(self, keep))
    }
}

impl Drop for LocalTestnet {
    fn drop(&mut self) {
        cleanup::kill_all_now(self);
    }
}
