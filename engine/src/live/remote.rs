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
    AddNodeSpec, Capability, ControlError, ControlFuture, DeployError, FaultKind, NetworkFaults,
    NodeControl, NodeLogs, NodeState, Teardown, TeardownSummary, Testnet,
};
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkSel};
use crate::topology::Topology;

/// Deadline of quick calls (state, faults).
const QUICK: Duration = Duration::from_secs(10);
/// Deadline of node control (a restart waits for the node to answer again).
const CONTROL: Duration = Duration::from_secs(90);

/// What the sync getters read: the supervisor's state as last fetched (after every control
/// call, and every [`REFRESH`] by a background task while the handle lives).
struct Cached {
    snapshot: NetSnapshot,
    clients: NodeClients,
    active: Vec<ActiveFault>,
    fault_log: Vec<FaultRecord>,
    control_log: Vec<crate::deploy::control_log::ControlRecord>,
    node_faults: Vec<NodeFaultInForce>,
}

/// How often the background task fetches the supervisor's state (another process may have
/// added a node or applied a fault).
const REFRESH: Duration = Duration::from_millis(250);

/// A testnet owned by a supervisor process, driven through its control API.
pub struct RemoteTestnet {
    client: ControlClient,
    name: String,
    run_id: String,
    deployer: String,
    topology: Topology,
    supports: Vec<FaultKind>,
    run_dir: Option<PathBuf>,
    cached: Arc<Mutex<Cached>>,
    /// Stops the background refresh when the handle goes.
    _refresher: tokio_util::sync::DropGuard,
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

/// The supervisor's answer: its text already holds the whole chain it rendered.
fn http_err(e: HttpError) -> ControlError {
    ControlError::failed(e.to_string())
}

async fn get_json<T: DeserializeOwned>(c: &ControlClient, path: &str) -> Result<T, ControlError> {
    let body = c.call("GET", path, None, QUICK).await.map_err(http_err)?;
    serde_json::from_slice(&body)
        .map_err(|e| ControlError::caused(format!("bad answer to GET {path}"), e))
}

async fn post_json<T: DeserializeOwned>(
    c: &ControlClient,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<T, ControlError> {
    let out = c
        .call("POST", path, body, timeout)
        .await
        .map_err(http_err)?;
    serde_json::from_slice(&out)
        .map_err(|e| ControlError::caused(format!("bad answer to POST {path}"), e))
}

fn to_body(v: &impl serde::Serialize) -> Result<Vec<u8>, ControlError> {
    serde_json::to_vec(v).map_err(|e| ControlError::caused("failed to encode the request", e))
}

/// Fetches everything the getters serve, at once.
async fn fetch(c: &ControlClient) -> Result<Cached, ControlError> {
    let (snapshot, active, log, control, node_faults) = tokio::try_join!(
        get_json::<NetSnapshot>(c, "/state"),
        get_json::<Vec<ActiveFaultWire>>(c, "/faults"),
        get_json::<Vec<FaultRecordWire>>(c, "/faults/log"),
        get_json(c, "/control/log"),
        get_json(c, "/node_faults"),
    )?;
    Ok(Cached {
        clients: clients_of(&snapshot),
        snapshot,
        active: active.iter().map(Into::into).collect(),
        fault_log: log.iter().map(Into::into).collect(),
        control_log: control,
        node_faults,
    })
}

impl RemoteTestnet {
    /// Attaches to the supervisor at `control_url`, whose every call carries `secret`: fetches
    /// its state once, then keeps it fresh in the background while the handle lives.
    pub async fn attach(name: &str, control_url: &str, secret: &str) -> Result<Self, String> {
        let client = ControlClient::new(control_url, secret)?;
        let first = fetch(&client)
            .await
            .map_err(|e| format!("cannot attach to testnet `{name}`: {e}"))?;
        let snapshot = &first.snapshot;
        let (run_id, deployer, topology, run_dir) = (
            snapshot.run_id.clone(),
            snapshot.deployer.clone(),
            Topology::from(&snapshot.topology),
            snapshot.run_dir.clone(),
        );
        let supports = if snapshot.supports.is_empty() {
            // a supervisor that names capabilities only: every kind they are made of
            let caps: Vec<Capability> = snapshot
                .capabilities
                .iter()
                .filter_map(|c| capability_from_name(c))
                .collect();
            let mut kinds = FaultKind::NODE.to_vec();
            kinds.extend(FaultKind::LINK);
            kinds.retain(|k| caps.contains(&k.capability()));
            kinds
        } else {
            snapshot.supports.clone()
        };
        let cached = Arc::new(Mutex::new(first));
        let cancel = tokio_util::sync::CancellationToken::new();
        {
            let (client, cached, cancel) =
                (client.clone(), Arc::downgrade(&cached), cancel.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(REFRESH) => {}
                    }
                    // the supervisor gone: keep serving the last known state, calls say why
                    let Ok(fresh) = fetch(&client).await else {
                        continue;
                    };
                    let Some(cached) = cached.upgrade() else {
                        return;
                    };
                    *cached.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
                }
            });
        }
        Ok(Self {
            client,
            name: name.to_owned(),
            run_id,
            deployer,
            topology,
            supports,
            run_dir,
            cached,
            _refresher: cancel.drop_guard(),
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

    /// Fetches the supervisor's state again (after a control call).
    pub async fn refresh(&self) -> Result<(), ControlError> {
        let fresh = fetch(&self.client).await?;
        *self.lock() = fresh;
        Ok(())
    }

    /// A control call, then a refresh so the getters see what it did.
    fn call<'a, T: Send + 'a>(
        &'a self,
        f: impl std::future::Future<Output = Result<T, ControlError>> + Send + 'a,
    ) -> ControlFuture<'a, T> {
        Box::pin(async move {
            let r = f.await;
            let _ = self.refresh().await;
            r
        })
    }

    fn node_action(&self, i: usize, action: &'static str) -> ControlFuture<'_, ()> {
        self.call(async move {
            self.client
                .call("POST", &format!("/nodes/{i}/{action}"), None, CONTROL)
                .await
                .map(|_| ())
                .map_err(http_err)
        })
    }

    /// Asks the supervisor to tear the testnet down and exit (`down`).
    pub async fn shutdown(&self) -> Result<(), ControlError> {
        self.client
            .call("POST", "/shutdown", None, CONTROL)
            .await
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
        self.lock().snapshot.nodes.len()
    }

    fn clients(&self) -> NodeClients {
        self.lock().clients.clone()
    }

    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn run_dir(&self) -> Option<PathBuf> {
        self.run_dir.clone()
    }

    fn endpoints(&self) -> Vec<crate::deploy::Endpoint> {
        self.lock().snapshot.endpoints.clone()
    }

    fn supports(&self) -> Vec<FaultKind> {
        self.supports.clone()
    }

    fn wait_ready(&self, deadline: Duration) -> BoxFuture<'_, Result<(), DeployError>> {
        Box::pin(async move {
            let ms = deadline.as_millis() as u64;
            self.client
                .call(
                    "POST",
                    &format!("/wait_ready?ms={ms}"),
                    None,
                    deadline + QUICK,
                )
                .await
                .map(|_| ())
                .map_err(|e| DeployError::io(e.to_string()))
        })
    }

    fn node_state(&self, i: usize) -> Option<NodeState> {
        self.lock().snapshot.nodes.get(i).map(|n| n.state.into())
    }

    /// Through the supervisor, so the lie lands in the live testnet's control log.
    fn set_byzantine(
        &self,
        i: usize,
        lies: crate::deploy::byzantine::Behaviours,
    ) -> ControlFuture<'_, crate::deploy::byzantine::ByzantineState> {
        self.call(async move {
            let path = format!("/nodes/{i}/byzantine");
            post_json(&self.client, &path, Some(to_body(&lies)?), CONTROL).await
        })
    }

    fn set_node_fault(&self, i: usize, fault: NodeFault) -> ControlFuture<'_, ()> {
        self.call(async move {
            let body = to_body(&NodeFaultInForce { node: i, fault })?;
            self.client
                .call("POST", "/node_faults", Some(body), QUICK)
                .await
                .map(|_| ())
                .map_err(http_err)
        })
    }

    fn revert_node_faults(&self) -> ControlFuture<'_, usize> {
        self.call(async move {
            post_json::<Count>(&self.client, "/node_faults/revert", None, QUICK)
                .await
                .map(|c| c.count)
        })
    }

    fn node_faults(&self) -> Vec<NodeFaultInForce> {
        self.lock().node_faults.clone()
    }

    fn control_log(&self) -> Vec<crate::deploy::control_log::ControlRecord> {
        self.lock().control_log.clone()
    }
}

impl NodeControl for RemoteTestnet {
    fn start(&self, i: usize) -> ControlFuture<'_, ()> {
        self.node_action(i, "start")
    }

    fn stop(&self, i: usize) -> ControlFuture<'_, ()> {
        self.node_action(i, "stop")
    }

    fn restart(&self, i: usize) -> ControlFuture<'_, ()> {
        self.node_action(i, "restart")
    }

    fn kill(&self, i: usize) -> ControlFuture<'_, ()> {
        self.node_action(i, "kill")
    }

    fn pause(&self, i: usize) -> ControlFuture<'_, ()> {
        self.node_action(i, "pause")
    }

    fn resume(&self, i: usize) -> ControlFuture<'_, ()> {
        self.node_action(i, "resume")
    }

    fn add_node(&self, spec: AddNodeSpec) -> ControlFuture<'_, usize> {
        self.call(async move {
            let body = to_body(&AddNodeWire {
                peers: spec.peers,
                stake: spec.stake,
                overrides: spec
                    .overrides
                    .into_iter()
                    .map(|o| (o.path, o.value))
                    .collect(),
            })?;
            #[derive(serde::Deserialize)]
            struct Index {
                index: usize,
            }
            post_json::<Index>(&self.client, "/nodes", Some(body), CONTROL)
                .await
                .map(|i| i.index)
        })
    }
}

impl NetworkFaults for RemoteTestnet {
    fn apply_fault(&self, fault: Fault, note: Option<String>) -> ControlFuture<'_, FaultId> {
        self.call(async move {
            let body = to_body(&ApplyFaultWire {
                fault: FaultWire::from(&fault),
                note,
            })?;
            #[derive(serde::Deserialize)]
            struct Id {
                id: u64,
            }
            let id: Id = post_json(&self.client, "/faults", Some(body), QUICK).await?;
            Ok(FaultId(id.id))
        })
    }

    fn revert_fault(&self, id: FaultId) -> ControlFuture<'_, ()> {
        self.call(async move {
            let path = format!("/faults/{}/revert", id.0);
            post_json::<serde_json::Value>(&self.client, &path, None, QUICK)
                .await
                .map(|_| ())
        })
    }

    fn clear_links(&self, links: LinkSel) -> ControlFuture<'_, usize> {
        self.call(async move {
            let body = to_body(&LinkSelWire::from(&links))?;
            post_json::<Count>(&self.client, "/faults/clear", Some(body), QUICK)
                .await
                .map(|c| c.count)
        })
    }

    fn heal(&self) -> ControlFuture<'_, usize> {
        self.call(async move {
            post_json::<Count>(&self.client, "/heal", None, QUICK)
                .await
                .map(|c| c.count)
        })
    }

    fn active_faults(&self) -> Vec<ActiveFault> {
        self.lock().active.clone()
    }

    fn fault_log(&self) -> Vec<FaultRecord> {
        self.lock().fault_log.clone()
    }
}

impl NodeLogs for RemoteTestnet {
    fn logs(&self, i: usize, lines: usize) -> ControlFuture<'_, String> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Text {
                text: String,
            }
            get_json::<Text>(&self.client, &format!("/nodes/{i}/logs?lines={lines}"))
                .await
                .map(|t| t.text)
        })
    }
}

impl Teardown for RemoteTestnet {
    /// Attached processes do not own the testnet: `down` (or `net.down()`) asks the supervisor
    /// to tear it down and exit.
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>> {
        let _ = keep;
        Box::pin(async move {
            let started = Instant::now();
            self.shutdown()
                .await
                .map_err(|e| DeployError::teardown(e.to_string()))?;
            Ok(TeardownSummary {
                killed: 0,
                run_dir: self.run_dir.clone(),
                kept: false,
                took: started.elapsed(),
            })
        })
    }
}

/// Shared handle type the bindings keep.
pub type SharedRemote = Arc<RemoteTestnet>;
