//! Node control for local processes: signals to each node's process group,
//! respawns with the same config (same ports, same data), and nodes added at
//! run time.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::LocalTestnet;
use super::provision::{NodePorts, link_to, prepare_node, spawn_node};
use super::readiness::{Want, wait_one};
use crate::deploy::node_control::{ControlCore, NodeProcesses};
use crate::deploy::{AddNodeSpec, ControlError, NodeState};
use crate::nodekind::NodePlan;

const GRACE: Duration = Duration::from_secs(5);

pub(super) fn signal(pid: u32, sig: Signal) {
    // The node leads its own process group; signal the group so helpers it
    // may have spawned go too. ESRCH (already gone) is fine.
    let _ = killpg(Pid::from_raw(pid as i32), sig);
}

/// Polls until node `i`'s process has exited (reaping it) or `within` passes.
pub(super) async fn wait_exit(net: &LocalTestnet, i: usize, within: Duration) -> bool {
    crate::wait::poll(within, Duration::from_millis(20), || {
        std::future::ready(reaped(net, i).then_some(()))
    })
    .await
    .is_some()
}

/// True when node `i` has no process (any more): one that exited is reaped now.
fn reaped(net: &LocalTestnet, i: usize) -> bool {
    let mut nodes = net.lock_nodes();
    let Some(n) = nodes.get_mut(i) else {
        return true;
    };
    let Some(c) = n.child.as_mut() else {
        return true;
    };
    if let Ok(Some(_)) = c.try_wait() {
        n.child = None;
        n.pid = None;
        return true;
    }
    false
}

impl NodeProcesses for LocalTestnet {
    fn core(&self) -> &ControlCore {
        &self.ctl
    }

    fn set_state(&self, i: usize, state: NodeState) {
        if let Some(n) = self.lock_nodes().get_mut(i) {
            n.state = state;
        }
    }

    async fn halt(&self, i: usize, kill: bool, paused: bool) -> Result<(), ControlError> {
        let pid = self
            .pid(i)
            .ok_or_else(|| ControlError::failed(format!("node-{i} has no process to stop")))?;
        signal(
            pid,
            if kill {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            },
        );
        if paused {
            signal(pid, Signal::SIGCONT);
        }
        if !wait_exit(self, i, GRACE).await {
            signal(pid, Signal::SIGKILL);
            if !wait_exit(self, i, GRACE).await {
                return Err(ControlError::failed(format!(
                    "node-{i} (pid {pid}) did not exit within {}s of SIGKILL",
                    GRACE.as_secs()
                )));
            }
        }
        Ok(())
    }

    async fn launch(&self, i: usize) -> Result<(), ControlError> {
        spawn_node(self, i)?;
        let client = self.lock_nodes()[i].client.clone();
        wait_one(
            self,
            i,
            client,
            Want::peers(0),
            Instant::now(),
            Duration::from_secs(15),
        )
        .await
        .map_err(|e| ControlError::caused("started, but not answering", e))
    }

    async fn freeze(&self, i: usize, freeze: bool) -> Result<(), ControlError> {
        let pid = self
            .pid(i)
            .ok_or_else(|| ControlError::failed(format!("node-{i} has no process to freeze")))?;
        signal(
            pid,
            if freeze {
                Signal::SIGSTOP
            } else {
                Signal::SIGCONT
            },
        );
        Ok(())
    }

    /// Creates node `i` on free ports, with links to its peers, and starts it.
    async fn provision(
        &self,
        i: usize,
        key_hex: String,
        spec: &AddNodeSpec,
    ) -> Result<(), ControlError> {
        let net = self;
        let peer_addrs: Vec<_> = {
            let nodes = net.lock_nodes();
            spec.peers.iter().map(|&p| (p, nodes[p].p2p_addr)).collect()
        };
        let ports = NodePorts::bind(&*net.kind, 1)
            .map_err(|e| ControlError::caused("failed to find free ports", e))?;
        let mut peers = Vec::new();
        for (p, addr) in &peer_addrs {
            let target = link_to(net.links.as_ref(), &*net.kind, i, *p, *addr)
                .await
                .map_err(ControlError::failed)?;
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
        )?;
        let client = node.client.clone();
        net.lock_nodes().push(node);
        spawn_node(net, i)?;
        wait_one(
            net,
            i,
            client,
            Want::peers(peer_addrs.len()),
            Instant::now(),
            Duration::from_secs(20),
        )
        .await
        .map_err(|e| ControlError::caused("added, but not ready", e))
    }
}
