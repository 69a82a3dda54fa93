//! Node control for local processes: signals to each node's process group,
//! respawns with the same config (same ports, same data), and nodes added at
//! run time.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::LocalTestnet;
use super::provision::{NodePorts, link_to, prepare_node, spawn_node};
use super::readiness::{Want, wait_one};
use crate::deploy::link_faults::LinkBacked;
use crate::deploy::{AddNodeSpec, ControlError, NodeState};
use crate::nodekind::NodePlan;

const GRACE: Duration = Duration::from_secs(5);

pub(super) fn signal(pid: u32, sig: Signal) {
    // The node leads its own process group; signal the group so helpers it
    // may have spawned go too. ESRCH (already gone) is fine.
    let _ = killpg(Pid::from_raw(pid as i32), sig);
}

fn check(net: &LocalTestnet, i: usize) -> Result<(Option<u32>, NodeState), ControlError> {
    if net.torn_down.load(Ordering::SeqCst) {
        return Err(ControlError::TornDown);
    }
    let count = net.lock_nodes().len();
    let state = crate::deploy::Testnet::node_state(net, i)
        .ok_or(ControlError::NoSuchNode { index: i, count })?;
    Ok((net.pid(i), state))
}

/// Polls until node `i`'s process has exited (reaping it) or `within` passes.
pub(super) async fn wait_exit(net: &LocalTestnet, i: usize, within: Duration) -> bool {
    let start = Instant::now();
    loop {
        {
            let mut nodes = net.lock_nodes();
            let Some(n) = nodes.get_mut(i) else {
                return true;
            };
            match n.child.as_mut() {
                None => return true,
                Some(c) => {
                    if let Ok(Some(_)) = c.try_wait() {
                        n.child = None;
                        n.pid = None;
                        return true;
                    }
                }
            }
        }
        if start.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stop_inner(net: &LocalTestnet, i: usize, kill: bool) -> Result<(), ControlError> {
    let (pid, state) = check(net, i)?;
    let action = if kill { "kill" } else { "stop" };
    let pid = match (state, pid) {
        (NodeState::Running | NodeState::Paused, Some(pid)) => pid,
        _ => {
            return Err(ControlError::BadState {
                index: i,
                state,
                action: action.to_owned(),
            });
        }
    };
    signal(
        pid,
        if kill {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        },
    );
    if state == NodeState::Paused {
        signal(pid, Signal::SIGCONT);
    }
    if !wait_exit(net, i, GRACE).await {
        signal(pid, Signal::SIGKILL);
        if !wait_exit(net, i, GRACE).await {
            return Err(ControlError::Failed(format!(
                "node-{i} (pid {pid}) did not exit within {}s of SIGKILL",
                GRACE.as_secs()
            )));
        }
    }
    if let Some(n) = net.lock_nodes().get_mut(i) {
        n.state = NodeState::Stopped;
    }
    Ok(())
}

async fn start_inner(net: &LocalTestnet, i: usize) -> Result<(), ControlError> {
    let (_, state) = check(net, i)?;
    if !matches!(state, NodeState::Stopped | NodeState::Exited) {
        return Err(ControlError::BadState {
            index: i,
            state,
            action: "start".to_owned(),
        });
    }
    spawn_node(net, i).map_err(|e| ControlError::Failed(e.to_string()))?;
    let client = net.lock_nodes()[i].client.clone();
    wait_one(
        net,
        i,
        client,
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

pub(super) async fn stop(net: &LocalTestnet, i: usize, kill: bool) -> Result<(), ControlError> {
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

pub(super) async fn start(net: &LocalTestnet, i: usize) -> Result<(), ControlError> {
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

pub(super) async fn restart(net: &LocalTestnet, i: usize) -> Result<(), ControlError> {
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

pub(super) async fn pause(net: &LocalTestnet, i: usize, pause: bool) -> Result<(), ControlError> {
    let _g = net.control.lock().await;
    let _under_way = net.control_log.begin(
        if pause {
            crate::deploy::control_log::NodeAction::Pause
        } else {
            crate::deploy::control_log::NodeAction::Resume
        },
        i,
    );
    let (pid, state) = check(net, i)?;
    let (want, action, sig, next) = if pause {
        (
            NodeState::Running,
            "pause",
            Signal::SIGSTOP,
            NodeState::Paused,
        )
    } else {
        (
            NodeState::Paused,
            "resume",
            Signal::SIGCONT,
            NodeState::Running,
        )
    };
    match (state == want, pid) {
        (true, Some(pid)) => {
            signal(pid, sig);
            if let Some(n) = net.lock_nodes().get_mut(i) {
                n.state = next;
            }
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
        _ => Err(ControlError::BadState {
            index: i,
            state,
            action: action.to_owned(),
        }),
    }
}

pub(super) async fn add_node(net: &LocalTestnet, spec: AddNodeSpec) -> Result<usize, ControlError> {
    let _g = net.control.lock().await;
    if net.torn_down.load(Ordering::SeqCst) {
        return Err(ControlError::TornDown);
    }
    let (i, peer_addrs) = {
        let nodes = net.lock_nodes();
        let count = nodes.len();
        spec.check_peers(count)?;
        let addrs: Vec<_> = spec.peers.iter().map(|&p| (p, nodes[p].p2p_addr)).collect();
        (count, addrs)
    };
    let key_hex = spec.node_key(&net.topology, &net.joiners_used, i)?;
    let ports = NodePorts::bind(&*net.kind, 1)
        .map_err(|e| ControlError::Failed(format!("failed to find free ports: {e}")))?;
    let mut peers = Vec::new();
    for (p, addr) in &peer_addrs {
        let target = link_to(net.links.as_ref(), &*net.kind, i, *p, *addr)
            .await
            .map_err(ControlError::Failed)?;
        peers.push(target);
    }
    let plan = NodePlan {
        index: i,
        key_hex,
        api_addr: ports.api[0],
        testing_addr: net.kind.testing_surface().then_some(ports.testing[0]),
        p2p_addr: ports.p2p[0],
        blend_addr: ports.blend.first().copied(),
        peers,
        data_dir: net.run_dir.join(format!("node-{i}")).join("data"),
        log_dir: net.run_dir.join(format!("node-{i}")).join("logs"),
        config_dir: net.run_dir.join(format!("node-{i}")),
        genesis: net.genesis.clone(),
        overrides: spec.overrides.clone(),
    };
    drop(ports);
    let node = prepare_node(
        &*net.kind,
        &net.topology,
        &net.run_dir,
        plan,
        peer_addrs.len(),
    )
    .map_err(|e| ControlError::Failed(e.to_string()))?;
    let client = node.client.clone();
    net.lock_nodes().push(node);
    spawn_node(net, i).map_err(|e| ControlError::Failed(e.to_string()))?;
    wait_one(
        net,
        i,
        client,
        Want {
            peers: peer_addrs.len(),
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
