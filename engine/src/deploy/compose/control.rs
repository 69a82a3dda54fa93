//! Node control for containers: docker stop/start/kill/pause/unpause, restarts that keep the
//! node's data (the bind-mounted dir), nodes added at run time, and a monitor that notices
//! containers exiting on their own.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    KillContainerOptions, ListContainersOptions, StopContainerOptions,
};

use super::docker::{LABEL_NODE, LABEL_RUN, label_filter, msg};
use super::provision::{create_container, peer_addr, plan, prepare_node, start_container};
use super::readiness::{Want, wait_one};
use super::{ComposeTestnet, P2P_PORT};
use crate::deploy::link_faults::LinkBacked;
use crate::deploy::{AddNodeSpec, ControlError, NodeState};

/// Seconds `docker stop` waits after SIGTERM before SIGKILL.
const GRACE_SECS: i32 = 5;

fn check(net: &ComposeTestnet, i: usize) -> Result<(String, NodeState), ControlError> {
    if net.torn_down.load(Ordering::SeqCst) {
        return Err(ControlError::TornDown);
    }
    let nodes = net.lock_nodes();
    let count = nodes.len();
    let n = nodes
        .get(i)
        .ok_or(ControlError::NoSuchNode { index: i, count })?;
    Ok((n.container.clone(), n.state))
}

fn set_state(net: &ComposeTestnet, i: usize, state: NodeState) {
    if let Some(n) = net.lock_nodes().get_mut(i) {
        n.state = state;
    }
}

/// Polls until the container is not running, or `within` passes.
async fn wait_not_running(net: &ComposeTestnet, name: &str, within: Duration) -> bool {
    let start = Instant::now();
    loop {
        match net.docker.inspect_container(name, None).await {
            Ok(info) => {
                if info.state.and_then(|s| s.running) != Some(true) {
                    return true;
                }
            }
            Err(_) => return true,
        }
        if start.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop_inner(net: &ComposeTestnet, i: usize, kill: bool) -> Result<(), ControlError> {
    let (name, state) = check(net, i)?;
    let action = if kill { "kill" } else { "stop" };
    if !matches!(state, NodeState::Running | NodeState::Paused) {
        return Err(ControlError::BadState {
            index: i,
            state,
            action: action.to_owned(),
        });
    }
    let fail = |e: bollard::errors::Error| {
        ControlError::Failed(format!("{action} node-{i} (container {name}): {}", msg(&e)))
    };
    if state == NodeState::Paused {
        net.docker.unpause_container(&name).await.map_err(fail)?;
    }
    if kill {
        let opts = KillContainerOptions {
            signal: "SIGKILL".to_owned(),
        };
        net.docker
            .kill_container(&name, Some(opts))
            .await
            .map_err(fail)?;
    } else {
        let opts = StopContainerOptions {
            t: Some(GRACE_SECS),
            signal: None,
        };
        net.docker
            .stop_container(&name, Some(opts))
            .await
            .map_err(fail)?;
    }
    let within = Duration::from_secs(GRACE_SECS as u64 + 5);
    if !wait_not_running(net, &name, within).await {
        return Err(ControlError::Failed(format!(
            "node-{i} (container {name}) still runs {}s after {action}",
            within.as_secs()
        )));
    }
    set_state(net, i, NodeState::Stopped);
    Ok(())
}

async fn start_inner(net: &ComposeTestnet, i: usize) -> Result<(), ControlError> {
    let (_, state) = check(net, i)?;
    if !matches!(state, NodeState::Stopped | NodeState::Exited) {
        return Err(ControlError::BadState {
            index: i,
            state,
            action: "start".to_owned(),
        });
    }
    start_container(net, i)
        .await
        .map_err(|e| ControlError::Failed(e.to_string()))?;
    wait_one(
        net,
        i,
        Want {
            peers: 0,
            min_height: 0,
            online: false,
        },
        Instant::now(),
        Duration::from_secs(15),
    )
    .await
    .map_err(|e| ControlError::Failed(format!("started, but not answering: {e}")))
}

pub(super) async fn stop(net: &ComposeTestnet, i: usize, kill: bool) -> Result<(), ControlError> {
    let _g = net.control.lock().await;
    let _under_way = net.control_log.begin(
        if kill {
            crate::deploy::control_log::NodeAction::Kill
        } else {
            crate::deploy::control_log::NodeAction::Stop
        },
        i,
    );
    stop_inner(net, i, kill).await?;
    net.emit_control(crate::report::ControlAction::node(
        if kill {
            crate::deploy::control_log::NodeAction::Kill
        } else {
            crate::deploy::control_log::NodeAction::Stop
        },
        i,
    ));
    net.control_log.record(
        if kill {
            crate::deploy::control_log::NodeAction::Kill
        } else {
            crate::deploy::control_log::NodeAction::Stop
        },
        i,
    );
    Ok(())
}

pub(super) async fn start(net: &ComposeTestnet, i: usize) -> Result<(), ControlError> {
    let _g = net.control.lock().await;
    let _under_way = net
        .control_log
        .begin(crate::deploy::control_log::NodeAction::Start, i);
    start_inner(net, i).await?;
    net.emit_control(crate::report::ControlAction::node(
        crate::deploy::control_log::NodeAction::Start,
        i,
    ));
    net.control_log
        .record(crate::deploy::control_log::NodeAction::Start, i);
    // a fresh process starts without the clock and disk faults in force
    crate::deploy::node_faults::reapply(net, i).await
}

pub(super) async fn restart(net: &ComposeTestnet, i: usize) -> Result<(), ControlError> {
    let _g = net.control.lock().await;
    let _under_way = net
        .control_log
        .begin(crate::deploy::control_log::NodeAction::Restart, i);
    let (_, state) = check(net, i)?;
    if matches!(state, NodeState::Running | NodeState::Paused) {
        stop_inner(net, i, false).await?;
    }
    start_inner(net, i).await?;
    net.emit_control(crate::report::ControlAction::node(
        crate::deploy::control_log::NodeAction::Restart,
        i,
    ));
    net.control_log
        .record(crate::deploy::control_log::NodeAction::Restart, i);
    // a fresh process starts without the clock and disk faults in force
    crate::deploy::node_faults::reapply(net, i).await
}

pub(super) async fn pause(net: &ComposeTestnet, i: usize, pause: bool) -> Result<(), ControlError> {
    let _g = net.control.lock().await;
    let _under_way = net.control_log.begin(
        if pause {
            crate::deploy::control_log::NodeAction::Pause
        } else {
            crate::deploy::control_log::NodeAction::Resume
        },
        i,
    );
    let (name, state) = check(net, i)?;
    let (want, action, next) = if pause {
        (NodeState::Running, "pause", NodeState::Paused)
    } else {
        (NodeState::Paused, "resume", NodeState::Running)
    };
    if state != want {
        return Err(ControlError::BadState {
            index: i,
            state,
            action: action.to_owned(),
        });
    }
    let result = if pause {
        net.docker.pause_container(&name).await
    } else {
        net.docker.unpause_container(&name).await
    };
    result.map_err(|e| {
        ControlError::Failed(format!("{action} node-{i} (container {name}): {}", msg(&e)))
    })?;
    set_state(net, i, next);
    net.emit_control(crate::report::ControlAction::node(
        if pause {
            crate::deploy::control_log::NodeAction::Pause
        } else {
            crate::deploy::control_log::NodeAction::Resume
        },
        i,
    ));
    net.control_log.record(
        if pause {
            crate::deploy::control_log::NodeAction::Pause
        } else {
            crate::deploy::control_log::NodeAction::Resume
        },
        i,
    );
    Ok(())
}

pub(super) async fn add_node(
    net: &ComposeTestnet,
    spec: AddNodeSpec,
) -> Result<usize, ControlError> {
    let _g = net.control.lock().await;
    if net.torn_down.load(Ordering::SeqCst) {
        return Err(ControlError::TornDown);
    }
    let i = {
        let count = net.lock_nodes().len();
        spec.check_peers(count)?;
        count
    };
    let key_hex = spec.node_key(&net.topology, &net.joiners_used, i)?;
    let mut peers = Vec::new();
    for &p in &spec.peers {
        peers.push(peer_addr(net, i, p).await.map_err(ControlError::Failed)?);
    }
    let direct: Vec<String> = spec
        .peers
        .iter()
        .map(|p| format!("node-{p}:{P2P_PORT}"))
        .collect();
    let port = super::provision::free_ports(1).map_err(|e| {
        ControlError::Failed(format!("failed to find a free port on 127.0.0.1: {e}"))
    })?[0];
    let mut node_plan = plan(net, i, key_hex, peers);
    node_plan.overrides = spec.overrides.clone();
    let node = prepare_node(net, node_plan, spec.peers.len(), &direct, port)
        .map_err(|e| ControlError::Failed(e.to_string()))?;
    net.lock_nodes().push(node);
    let _ = super::template::write_compose_file(net);
    create_container(net, i)
        .await
        .map_err(|e| ControlError::Failed(e.to_string()))?;
    start_container(net, i)
        .await
        .map_err(|e| ControlError::Failed(e.to_string()))?;
    wait_one(
        net,
        i,
        Want {
            peers: spec.peers.len(),
            min_height: 0,
            online: false,
        },
        Instant::now(),
        Duration::from_secs(20),
    )
    .await
    .map_err(|e| ControlError::Failed(format!("added, but not ready: {e}")))?;
    net.emit_control(crate::report::ControlAction::Node {
        action: crate::deploy::control_log::NodeAction::AddNode,
        node: i,
        detail: Some(format!("peers {:?}, stake {}", spec.peers, spec.stake)),
    });
    net.control_log
        .record(crate::deploy::control_log::NodeAction::AddNode, i);
    Ok(i)
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
    let Ok(_g) = net.control.try_lock() else {
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
