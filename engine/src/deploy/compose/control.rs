//! Node control for containers: docker stop/start/kill/pause/unpause, restarts that keep the
//! node's data (the bind-mounted dir), nodes added at run time, and a monitor that notices
//! containers exiting on their own.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    KillContainerOptions, ListContainersOptions, StopContainerOptions,
};

use super::docker::{LABEL_NODE, LABEL_RUN, docker_cause, label_filter};
use super::provision::{create_container, peer_addr, plan, prepare_node, start_container};
use super::readiness::{Want, wait_one};
use super::{ComposeTestnet, P2P_PORT};
use crate::deploy::node_control::{ControlCore, NodeProcesses};
use crate::deploy::{AddNodeSpec, ControlError, NodeState, Testnet};

/// Seconds `docker stop` waits after SIGTERM before SIGKILL.
const GRACE_SECS: i32 = 5;

/// Polls until the container is not running, or `within` passes.
async fn wait_not_running(net: &ComposeTestnet, name: &str, within: Duration) -> bool {
    crate::wait::poll(within, Duration::from_millis(50), || async {
        match net.docker.inspect_container(name, None).await {
            Ok(info) if info.state.as_ref().and_then(|s| s.running) == Some(true) => None,
            _ => Some(()),
        }
    })
    .await
    .is_some()
}

impl NodeProcesses for ComposeTestnet {
    fn core(&self) -> &ControlCore {
        &self.ctl
    }

    fn set_state(&self, i: usize, state: NodeState) {
        if let Some(n) = self.lock_nodes().get_mut(i) {
            n.state = state;
        }
    }

    async fn halt(&self, i: usize, kill: bool, paused: bool) -> Result<(), ControlError> {
        let name = container(self, i)?;
        let action = if kill { "kill" } else { "stop" };
        let fail = |e: bollard::errors::Error| {
            ControlError::caused(
                format!("{action} node-{i} (container {name})"),
                docker_cause(&e),
            )
        };
        if paused {
            self.docker.unpause_container(&name).await.map_err(fail)?;
        }
        if kill {
            let opts = KillContainerOptions {
                signal: "SIGKILL".to_owned(),
            };
            self.docker
                .kill_container(&name, Some(opts))
                .await
                .map_err(fail)?;
        } else {
            let opts = StopContainerOptions {
                t: Some(GRACE_SECS),
                signal: None,
            };
            self.docker
                .stop_container(&name, Some(opts))
                .await
                .map_err(fail)?;
        }
        let within = Duration::from_secs(GRACE_SECS as u64 + 5);
        if !wait_not_running(self, &name, within).await {
            return Err(ControlError::failed(format!(
                "node-{i} (container {name}) still runs {}s after {action}",
                within.as_secs()
            )));
        }
        Ok(())
    }

    async fn launch(&self, i: usize) -> Result<(), ControlError> {
        start_container(self, i).await?;
        wait_one(
            self,
            i,
            Want::peers(0),
            Instant::now(),
            Duration::from_secs(15),
        )
        .await
        .map_err(|e| ControlError::caused("started, but not answering", e))
    }

    async fn freeze(&self, i: usize, freeze: bool) -> Result<(), ControlError> {
        let name = container(self, i)?;
        let result = if freeze {
            self.docker.pause_container(&name).await
        } else {
            self.docker.unpause_container(&name).await
        };
        let action = if freeze { "pause" } else { "resume" };
        result.map_err(|e| {
            ControlError::caused(
                format!("{action} node-{i} (container {name})"),
                docker_cause(&e),
            )
        })
    }

    /// Creates node `i`'s container on the run's network, with relays to its peers, and starts it.
    async fn provision(
        &self,
        i: usize,
        key_hex: String,
        spec: &AddNodeSpec,
    ) -> Result<(), ControlError> {
        let net = self;
        let mut peers = Vec::new();
        for &p in &spec.peers {
            peers.push(peer_addr(net, i, p).await.map_err(ControlError::failed)?);
        }
        let direct: Vec<String> = spec
            .peers
            .iter()
            .map(|p| format!("node-{p}:{P2P_PORT}"))
            .collect();
        let port = super::provision::free_ports(1)
            .map_err(|e| ControlError::caused("failed to find a free port on 127.0.0.1", e))?[0];
        let mut node_plan = plan(net, i, key_hex, peers);
        node_plan.overrides = spec.overrides.clone();
        let node = prepare_node(net, node_plan, spec.peers.len(), &direct, port)?;
        net.lock_nodes().push(node);
        let _ = super::template::write_compose_file(net);
        create_container(net, i).await?;
        start_container(net, i).await?;
        wait_one(
            net,
            i,
            Want::peers(spec.peers.len()),
            Instant::now(),
            Duration::from_secs(20),
        )
        .await
        .map_err(|e| ControlError::caused("added, but not ready", e))
    }
}

/// Node `i`'s container name.
fn container(net: &ComposeTestnet, i: usize) -> Result<String, ControlError> {
    net.container_name(i).ok_or(ControlError::NoSuchNode {
        index: i,
        count: net.node_count(),
    })
}

/// Once a second, marks nodes whose container stopped on its own (crash, bad config) as
/// `Exited`. Holds the testnet weakly, so dropping the last handle still tears it down.
pub(super) fn spawn_monitor(net: &Arc<ComposeTestnet>) {
    let weak: Weak<ComposeTestnet> = Arc::downgrade(net);
    let cancel = net.cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let Some(net) = weak.upgrade() else { return };
            monitor_once(&net).await;
        }
    });
}

async fn monitor_once(net: &ComposeTestnet) {
    // A control action in progress owns the states.
    let Ok(_g) = net.ctl.lock.try_lock() else {
        return;
    };
    let opts = ListContainersOptions {
        all: true,
        filters: Some(label_filter(&format!("{LABEL_RUN}={}", net.run_id))),
        ..Default::default()
    };
    let Ok(list) = net.docker.list_containers(Some(opts)).await else {
        return;
    };
    let mut nodes = net.lock_nodes();
    for c in list {
        let Some(i) = c
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_NODE))
            .and_then(|v| v.parse::<usize>().ok())
        else {
            continue;
        };
        let gone = matches!(
            c.state,
            Some(
                bollard::models::ContainerSummaryStateEnum::EXITED
                    | bollard::models::ContainerSummaryStateEnum::DEAD
            )
        );
        if let Some(n) = nodes.get_mut(i)
            && gone
            && matches!(n.state, NodeState::Running | NodeState::Paused)
        {
            n.state = NodeState::Exited;
        }
    }
}
