//! A running testnet, split by concern: [`Testnet`] (topology, clients, readiness, the nodes'
//! testing surface) on top of [`NodeControl`] (what is done to node processes),
//! [`NetworkFaults`] (what is done to the links between them), [`NodeLogs`] and [`Teardown`].
//! None of them has a default that quietly refuses: every backend says what it does for each,
//! and what it cannot do is declared in its capabilities and refused before deploying.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

use super::control_log::{self, NodeAction};
use super::{
    AddNodeSpec, Capability, ControlError, DeployError, FaultKind, NodeState, TeardownSummary,
    byzantine, node_faults,
};
use crate::client::NodeClients;
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkSel};
use crate::topology::Topology;

/// What a fallible testnet call returns.
pub type ControlFuture<'a, T> = BoxFuture<'a, Result<T, ControlError>>;

/// What is done to node processes. The backends that run nodes get it from the one state
/// machine in [`super::node_control`]; views and remote testnets forward it.
pub trait NodeControl: Send + Sync {
    /// Starts a stopped node again (same ports, same data).
    fn start(&self, i: usize) -> ControlFuture<'_, ()>;
    /// Stops a node gracefully (SIGTERM, then SIGKILL after a grace period).
    fn stop(&self, i: usize) -> ControlFuture<'_, ()>;
    /// Stop then start.
    fn restart(&self, i: usize) -> ControlFuture<'_, ()>;
    /// SIGKILL: the node gets no chance to flush.
    fn kill(&self, i: usize) -> ControlFuture<'_, ()>;
    /// Freezes a node (SIGSTOP): it keeps its sockets but does nothing.
    fn pause(&self, i: usize) -> ControlFuture<'_, ()>;
    /// Thaws a paused node (SIGCONT).
    fn resume(&self, i: usize) -> ControlFuture<'_, ()>;
    /// Adds a node that joins through the given peers; returns its index.
    fn add_node(&self, spec: AddNodeSpec) -> ControlFuture<'_, usize>;
}

/// What is done to the links between nodes. Every call is async: a backend may need a round
/// trip to apply a fault (Kubernetes network policies, a supervisor's control API).
pub trait NetworkFaults: Send + Sync {
    /// Applies a network fault on top of those in force.
    fn apply_fault(&self, fault: Fault, note: Option<String>) -> ControlFuture<'_, FaultId>;
    /// Reverts one fault.
    fn revert_fault(&self, id: FaultId) -> ControlFuture<'_, ()>;
    /// Reverts every fault on the selected links; returns how many were touched.
    fn clear_links(&self, links: LinkSel) -> ControlFuture<'_, usize>;
    /// Reverts every fault; returns how many.
    fn heal(&self) -> ControlFuture<'_, usize>;
    /// Faults in force (as last known: no round trip).
    fn active_faults(&self) -> Vec<ActiveFault>;
    /// Every fault applied and reverted, in order (as last known: no round trip).
    fn fault_log(&self) -> Vec<FaultRecord>;

    /// Splits the network into groups (nodes named nowhere form one more group).
    fn partition(&self, groups: Vec<Vec<usize>>) -> ControlFuture<'_, FaultId> {
        self.apply_fault(Fault::Partition(groups), None)
    }
    /// Cuts one node off from all others.
    fn isolate(&self, i: usize) -> ControlFuture<'_, FaultId> {
        self.apply_fault(Fault::Isolate(i), None)
    }
    /// Drops every frame from `from` to `to` (one direction only).
    fn cut(&self, from: usize, to: usize) -> ControlFuture<'_, FaultId> {
        self.apply_fault(Fault::Cut { from, to }, None)
    }
    /// Delays frames on the selected links.
    fn set_latency(
        &self,
        links: LinkSel,
        delay: Duration,
        jitter: Duration,
    ) -> ControlFuture<'_, FaultId> {
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
    fn set_loss(&self, links: LinkSel, probability: f64) -> ControlFuture<'_, FaultId> {
        self.apply_fault(Fault::Loss { links, probability }, None)
    }
    /// Limits the selected links' throughput.
    fn set_bandwidth(&self, links: LinkSel, bytes_per_sec: u64) -> ControlFuture<'_, FaultId> {
        self.apply_fault(
            Fault::Bandwidth {
                links,
                bytes_per_sec,
            },
            None,
        )
    }
}

/// The nodes' logs.
pub trait NodeLogs: Send + Sync {
    /// The last `lines` lines of node `i`'s log (local: its log file, else its captured output;
    /// compose: `docker logs`; k8s: the pod's log).
    fn logs(&self, i: usize, lines: usize) -> ControlFuture<'_, String>;
}

/// The end of a testnet.
pub trait Teardown: Send + Sync {
    /// Stops every process and removes the run dir unless `keep`. Idempotent.
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>>;
}

/// A running testnet: its topology, clients and readiness, and the nodes' testing surface
/// (clock, disk and byzantine switches), with node control, network faults, logs and teardown
/// from its supertraits.
pub trait Testnet: NodeControl + NetworkFaults + NodeLogs + Teardown {
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
    fn endpoints(&self) -> Vec<super::Endpoint>;
    /// Every kind of control and fault this testnet can do (as its deployer declared).
    fn supports(&self) -> Vec<FaultKind>;
    /// The capabilities those kinds make up.
    fn capabilities(&self) -> Vec<Capability> {
        super::capabilities_of(&self.supports())
    }
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
    /// view, [`super::granted`], does), so that a client call the action breaks can wait for it
    /// ([`super::control_wait`]).
    fn control_in_flight(&self, i: usize) -> Option<NodeAction> {
        self.own_control_log().and_then(|l| l.in_flight(i))
    }

    /// The control log this testnet keeps itself (the backends that run nodes: local, compose,
    /// Kubernetes); the defaults of [`Testnet::control_log`], [`Testnet::note_control`] and
    /// [`Testnet::control_in_flight`] read and write it. None for views over another testnet.
    fn own_control_log(&self) -> Option<&control_log::ControlLog> {
        None
    }

    /// Node-control actions that succeeded (restart, stop, kill, start, pause, resume, add), in
    /// order: with [`NetworkFaults::fault_log`], the run's one timeline of what was done to it.
    fn control_log(&self) -> Vec<control_log::ControlRecord> {
        self.own_control_log()
            .map(control_log::ControlLog::entries)
            .unwrap_or_default()
    }

    /// Records an action done to node `i` outside the backend's own control (a clock set through
    /// the node's API) in the control log; backends without one ignore it.
    fn note_control(&self, action: NodeAction, i: usize, detail: Option<String>) {
        if let Some(l) = self.own_control_log() {
            l.record_detail(action, i, detail);
        }
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
}
