//! [`RemoteTestnet`]: a [`Testnet`] whose every control call goes to a supervisor's control API,
//! so script functions written against a local `net` work unchanged on an attached one. Node
//! queries do not go through the supervisor: node clients talk to the nodes directly.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use super::http::{ControlClient, HttpError};
use super::wire::{
    ActiveFaultWire, AddNodeWire, ApplyFaultWire, FaultRecordWire, FaultWire, LinkSelWire,
    NetSnapshot, capability_from_name,
};
use crate::client::{NodeClient, NodeClients};
use crate::deploy::node_faults::{NodeFault, NodeFaultInForce};
use crate::deploy::{
    AddNodeSpec, Capability, ControlError, DeployError, NodeState, TeardownSummary, Testnet,
};
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkSel};
use crate::topology::Topology;

/// A node list older than this is fetched again (another process may have added a node).
const SNAPSHOT_TTL: Duration = Duration::from_millis(500);
/// Deadline of quick calls (state, faults).
const QUICK: Duration = Duration::from_secs(10);
/// Deadline of node control (a restart waits for the node to answer again).
const CONTROL: Duration = Duration::from_secs(90);

struct Cached {
    at: Instant,
    snapshot: NetSnapshot,
    clients: NodeClients,
}

/// A testnet owned by a supervisor process, driven through its control API.
pub struct RemoteTestnet {
    client: ControlClient,
    name: String,
    run_id: String,
    deployer: String,
    topology: Topology,
    capabilities: Vec<Capability>,
    run_dir: Option<PathBuf>,
    cached: Mutex<Cached>,
}

impl std::fmt::Debug for RemoteTestnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTestnet")
            .field("name", &self.name)
            .field("control", &self.client.base())
            .finish_non_exhaustive()
    }
}

fn clients_of(s: &NetSnapshot) -> NodeClients {
    NodeClients(
        s.nodes
            .iter()
            .map(|n| {
                let c =
                    NodeClient::new(n.index, &n.api_url).with_testing_url(n.testing_url.as_deref());
                match n.dialect {
                    Some(d) => c.with_dialect(d),
                    None => c,
                }
            })
            .collect(),
    )
}

fn http_err(e: HttpError) -> ControlError {
    ControlError::Failed(e.to_string())
}

impl RemoteTestnet {
    /// Attaches to the supervisor at `control_url`, whose every call carries `secret` (blocking:
    /// one `GET /state`).
    pub fn attach(name: &str, control_url: &str, secret: &str) -> Result<Self, String> {
        let client = ControlClient::new(control_url, secret)?;
        let body = client
            .call("GET", "/state", None, QUICK)
            .map_err(|e| format!("cannot attach to testnet `{name}`: {e}"))?;
        let snapshot: NetSnapshot = serde_json::from_slice(&body)
            .map_err(|e| format!("cannot attach to testnet `{name}`: bad state answer: {e}"))?;
        Ok(Self {
            client,
            name: name.to_owned(),
            run_id: snapshot.run_id.clone(),
            deployer: snapshot.deployer.clone(),
            topology: Topology::from(&snapshot.topology),
            capabilities: snapshot
                .capabilities
                .iter()
                .filter_map(|c| capability_from_name(c))
                .collect(),
            run_dir: snapshot.run_dir.clone(),
            cached: Mutex::new(Cached {
                at: Instant::now(),
                clients: clients_of(&snapshot),
                snapshot,
            }),
        })
    }

    /// The name it was brought up under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The supervisor's control URL.
    pub fn control_url(&self) -> &str {
        self.client.base()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetches the node list again (after a control call, or when stale).
    pub fn refresh(&self) -> Result<(), ControlError> {
        let s: NetSnapshot = self.get_json("/state")?;
        let mut c = self.lock();
        c.clients = clients_of(&s);
        c.snapshot = s;
        c.at = Instant::now();
        Ok(())
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, Cached> {
        let stale = self.lock().at.elapsed() > SNAPSHOT_TTL;
        if stale {
            // the supervisor gone: keep serving the last known list, control calls will say why
            let _ = self.refresh();
        }
        self.lock()
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ControlError> {
        let body = self
            .client
            .call("GET", path, None, QUICK)
            .map_err(http_err)?;
        serde_json::from_slice(&body)
            .map_err(|e| ControlError::Failed(format!("bad answer to GET {path}: {e}")))
    }

    fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<T, ControlError> {
        let out = self
            .client
            .call("POST", path, body.as_deref(), timeout)
            .map_err(http_err)?;
        serde_json::from_slice(&out)
            .map_err(|e| ControlError::Failed(format!("bad answer to POST {path}: {e}")))
    }

    /// Runs a blocking control call off the async workers.
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(ControlClient) -> Result<T, ControlError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, ControlError>> {
        let client = self.client.clone();
        Box::pin(async move {
            let r = tokio::task::spawn_blocking(move || f(client))
                .await
                .map_err(|e| ControlError::Failed(format!("control call panicked: {e}")))?;
            let _ = self.refresh_async().await;
            r
        })
    }

    async fn refresh_async(&self) -> Result<(), ControlError> {
        let client = self.client.clone();
        let s = tokio::task::spawn_blocking(move || {
            client
                .call("GET", "/state", None, QUICK)
                .map_err(http_err)
                .and_then(|b| {
                    serde_json::from_slice::<NetSnapshot>(&b)
                        .map_err(|e| ControlError::Failed(e.to_string()))
                })
        })
        .await
        .map_err(|e| ControlError::Failed(e.to_string()))??;
        let mut c = self.lock();
        c.clients = clients_of(&s);
        c.snapshot = s;
        c.at = Instant::now();
        Ok(())
    }

    fn node_action(
        &self,
        i: usize,
        action: &'static str,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        self.blocking(move |c| {
            c.call("POST", &format!("/nodes/{i}/{action}"), None, CONTROL)
                .map(|_| ())
                .map_err(http_err)
        })
    }

    fn fault_call(&self, fault: Fault, note: Option<String>) -> Result<FaultId, ControlError> {
        let body = serde_json::to_vec(&ApplyFaultWire {
            fault: FaultWire::from(&fault),
            note,
        })
        .map_err(|e| ControlError::Failed(e.to_string()))?;
        #[derive(serde::Deserialize)]
        struct Id {
            id: u64,
        }
        let id: Id = self.post_json("/faults", Some(body), QUICK)?;
        Ok(FaultId(id.id))
    }

    /// Asks the supervisor to tear the testnet down and exit (`down`).
    pub fn shutdown(&self) -> Result<(), ControlError> {
        self.client
            .call("POST", "/shutdown", None, CONTROL)
            .map(|_| ())
            .map_err(http_err)
    }
}

#[derive(serde::Deserialize)]
struct Count {
    count: usize,
}

impl Testnet for RemoteTestnet {
    fn deployer_name(&self) -> &str {
        &self.deployer
    }

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn node_count(&self) -> usize {
        self.fresh().snapshot.nodes.len()
    }

    fn clients(&self) -> NodeClients {
        self.fresh().clients.clone()
    }

    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn run_dir(&self) -> Option<PathBuf> {
        self.run_dir.clone()
    }

    fn endpoints(&self) -> Vec<crate::deploy::Endpoint> {
        self.fresh().snapshot.endpoints.clone()
    }

    fn capabilities(&self) -> Vec<Capability> {
        self.capabilities.clone()
    }

    fn wait_ready(&self, deadline: Duration) -> BoxFuture<'_, Result<(), DeployError>> {
        let client = self.client.clone();
        Box::pin(async move {
            let ms = deadline.as_millis() as u64;
            tokio::task::spawn_blocking(move || {
                client.call(
                    "POST",
                    &format!("/wait_ready?ms={ms}"),
                    None,
                    deadline + QUICK,
                )
            })
            .await
            .map_err(|e| DeployError::Io(e.to_string()))?
            .map(|_| ())
            .map_err(|e| DeployError::Io(e.to_string()))
        })
    }

    fn node_state(&self, i: usize) -> Option<NodeState> {
        self.fresh().snapshot.nodes.get(i).map(|n| n.state.into())
    }

    fn start(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        self.node_action(i, "start")
    }

    fn stop(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        self.node_action(i, "stop")
    }

    fn restart(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        self.node_action(i, "restart")
    }

    fn kill(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        self.node_action(i, "kill")
    }

    fn pause(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        self.node_action(i, "pause")
    }

    fn resume(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        self.node_action(i, "resume")
    }

    /// Through the supervisor, so the lie lands in the live testnet's control log.
    fn set_byzantine(
        &self,
        i: usize,
        lies: crate::deploy::byzantine::Behaviours,
    ) -> BoxFuture<'_, Result<crate::deploy::byzantine::ByzantineState, ControlError>> {
        self.blocking(move |c| {
            let body =
                serde_json::to_vec(&lies).map_err(|e| ControlError::Failed(e.to_string()))?;
            let out = c
                .call(
                    "POST",
                    &format!("/nodes/{i}/byzantine"),
                    Some(&body),
                    CONTROL,
                )
                .map_err(http_err)?;
            serde_json::from_slice(&out).map_err(|e| {
                ControlError::Failed(format!("bad answer to POST /nodes/{i}/byzantine: {e}"))
            })
        })
    }

    fn add_node(&self, spec: AddNodeSpec) -> BoxFuture<'_, Result<usize, ControlError>> {
        self.blocking(move |c| {
            let body = serde_json::to_vec(&AddNodeWire {
                peers: spec.peers,
                stake: spec.stake,
                overrides: spec
                    .overrides
                    .into_iter()
                    .map(|o| (o.path, o.value))
                    .collect(),
            })
            .map_err(|e| ControlError::Failed(e.to_string()))?;
            let out = c
                .call("POST", "/nodes", Some(&body), CONTROL)
                .map_err(http_err)?;
            #[derive(serde::Deserialize)]
            struct Index {
                index: usize,
            }
            serde_json::from_slice::<Index>(&out)
                .map(|i| i.index)
                .map_err(|e| ControlError::Failed(format!("bad answer to POST /nodes: {e}")))
        })
    }

    fn apply_fault(&self, fault: Fault, note: Option<String>) -> Result<FaultId, ControlError> {
        self.fault_call(fault, note)
    }

    fn set_node_fault(
        &self,
        i: usize,
        fault: NodeFault,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        self.blocking(move |c| {
            let body = serde_json::to_vec(&NodeFaultInForce { node: i, fault })
                .map_err(|e| ControlError::Failed(e.to_string()))?;
            c.call("POST", "/node_faults", Some(&body), QUICK)
                .map(|_| ())
                .map_err(http_err)
        })
    }

    fn revert_node_faults(&self) -> BoxFuture<'_, Result<usize, ControlError>> {
        self.blocking(move |c| {
            let out = c
                .call("POST", "/node_faults/revert", None, QUICK)
                .map_err(http_err)?;
            serde_json::from_slice::<Count>(&out)
                .map(|c| c.count)
                .map_err(|e| {
                    ControlError::Failed(format!("bad answer to POST /node_faults/revert: {e}"))
                })
        })
    }

    fn node_faults(&self) -> Vec<NodeFaultInForce> {
        self.get_json("/node_faults").unwrap_or_default()
    }

    fn revert_fault(&self, id: FaultId) -> Result<(), ControlError> {
        let _: serde_json::Value =
            self.post_json(&format!("/faults/{}/revert", id.0), None, QUICK)?;
        Ok(())
    }

    fn clear_links(&self, links: LinkSel) -> Result<usize, ControlError> {
        let body = serde_json::to_vec(&LinkSelWire::from(&links))
            .map_err(|e| ControlError::Failed(e.to_string()))?;
        let c: Count = self.post_json("/faults/clear", Some(body), QUICK)?;
        Ok(c.count)
    }

    fn heal(&self) -> Result<usize, ControlError> {
        let c: Count = self.post_json("/heal", None, QUICK)?;
        Ok(c.count)
    }

    fn active_faults(&self) -> Vec<ActiveFault> {
        self.get_json::<Vec<ActiveFaultWire>>("/faults")
            .map(|v| v.iter().map(Into::into).collect())
            .unwrap_or_default()
    }

    fn control_log(&self) -> Vec<crate::deploy::control_log::ControlRecord> {
        self.get_json("/control/log").unwrap_or_default()
    }

    fn fault_log(&self) -> Vec<FaultRecord> {
        self.get_json::<Vec<FaultRecordWire>>("/faults/log")
            .map(|v| v.iter().map(Into::into).collect())
            .unwrap_or_default()
    }

    fn logs(&self, i: usize, lines: usize) -> BoxFuture<'_, Result<String, ControlError>> {
        let client = self.client.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let out = client
                    .call(
                        "GET",
                        &format!("/nodes/{i}/logs?lines={lines}"),
                        None,
                        QUICK,
                    )
                    .map_err(http_err)?;
                #[derive(serde::Deserialize)]
                struct Text {
                    text: String,
                }
                serde_json::from_slice::<Text>(&out)
                    .map(|t| t.text)
                    .map_err(|e| ControlError::Failed(e.to_string()))
            })
            .await
            .map_err(|e| ControlError::Failed(e.to_string()))?
        })
    }

    /// Attached processes do not own the testnet: `down` (or `net.down()`) asks the supervisor
    /// to tear it down and exit.
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>> {
        let _ = keep;
        let client = self.client.clone();
        let run_dir = self.run_dir.clone();
        Box::pin(async move {
            let started = Instant::now();
            tokio::task::spawn_blocking(move || client.call("POST", "/shutdown", None, CONTROL))
                .await
                .map_err(|e| DeployError::Teardown(e.to_string()))?
                .map_err(|e| DeployError::Teardown(e.to_string()))?;
            Ok(TeardownSummary {
                killed: 0,
                run_dir,
                kept: false,
                took: started.elapsed(),
            })
        })
    }
}

/// Shared handle type the bindings keep.
pub type SharedRemote = Arc<RemoteTestnet>;
