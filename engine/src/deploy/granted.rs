//! A testnet as a plan sees it: node control and network faults only where the plan enabled
//! them (`enable_node_control()`, `enable_network_faults()`), whatever the backend could do. The
//! runner hands this view to workloads, triggers and expectations, so a use the plan did not
//! ask for is refused with the call to add, rather than quietly working on one backend and
//! failing on another.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::control_log::NodeAction;
use super::{
    AddNodeSpec, Capability, ControlError, ControlFuture, DeployError, NetworkFaults, NodeControl,
    NodeLogs, NodeState, Teardown, TeardownSummary, Testnet,
};
use crate::client::NodeClients;
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkSel};
use crate::topology::Topology;

/// `net` restricted to `granted`.
pub fn restrict(net: Arc<dyn Testnet>, granted: &[Capability]) -> Arc<dyn Testnet> {
    Arc::new(Granted {
        inner: net,
        granted: granted.to_vec(),
        in_flight: Arc::new(Mutex::new(HashMap::new())),
    })
}

/// The call that enables `c` on a plan.
pub fn enable_call(c: Capability) -> &'static str {
    match c {
        Capability::NodeControl => "enable_node_control()",
        Capability::NetworkFaults => "enable_network_faults()",
    }
}

struct Granted {
    inner: Arc<dyn Testnet>,
    granted: Vec<Capability>,
    /// node -> control actions under way on it (a restart, a stop...), so that client calls
    /// they break wait for the node instead of failing at once.
    in_flight: Arc<Mutex<HashMap<usize, Vec<NodeAction>>>>,
}

/// Marks a control action under way on a node until dropped.
struct InFlight {
    map: Arc<Mutex<HashMap<usize, Vec<NodeAction>>>>,
    node: usize,
    action: NodeAction,
}

impl InFlight {
    fn new(
        map: &Arc<Mutex<HashMap<usize, Vec<NodeAction>>>>,
        node: usize,
        action: NodeAction,
    ) -> Self {
        map.lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(node)
            .or_default()
            .push(action);
        Self {
            map: map.clone(),
            node,
            action,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = m.get_mut(&self.node) {
            if let Some(pos) = v.iter().position(|a| *a == self.action) {
                v.remove(pos);
            }
            if v.is_empty() {
                m.remove(&self.node);
            }
        }
    }
}

impl Granted {
    fn need(&self, c: Capability, action: &str) -> Result<(), ControlError> {
        if self.granted.contains(&c) {
            Ok(())
        } else {
            Err(ControlError::NotEnabled {
                capability: c,
                action: action.to_owned(),
                call: enable_call(c),
            })
        }
    }

    fn control<'a, T: Send + 'a>(
        &'a self,
        action: &str,
        f: impl FnOnce(&'a dyn Testnet) -> ControlFuture<'a, T>,
    ) -> ControlFuture<'a, T> {
        match self.need(Capability::NodeControl, action) {
            Ok(()) => f(&*self.inner),
            Err(e) => refused(e),
        }
    }

    /// A control action on node `i`, marked under way until it completes.
    fn control_on<'a>(
        &'a self,
        i: usize,
        action: NodeAction,
        f: impl FnOnce(&'a dyn Testnet) -> ControlFuture<'a, ()>,
    ) -> ControlFuture<'a, ()> {
        let fut = self.control(&format!("{action}({i})"), f);
        let map = self.in_flight.clone();
        Box::pin(async move {
            let _mark = InFlight::new(&map, i, action);
            fut.await
        })
    }
}

/// A refusal, as a control future.
fn refused<'a, T: Send + 'a>(e: ControlError) -> ControlFuture<'a, T> {
    Box::pin(std::future::ready(Err(e)))
}

impl Testnet for Granted {
    fn deployer_name(&self) -> &str {
        self.inner.deployer_name()
    }
    fn run_id(&self) -> &str {
        self.inner.run_id()
    }
    fn node_count(&self) -> usize {
        self.inner.node_count()
    }
    fn clients(&self) -> NodeClients {
        self.inner.clients()
    }
    fn topology(&self) -> &Topology {
        self.inner.topology()
    }
    fn run_dir(&self) -> Option<PathBuf> {
        self.inner.run_dir()
    }
    fn endpoints(&self) -> Vec<super::Endpoint> {
        self.inner.endpoints()
    }
    fn supports(&self) -> Vec<super::FaultKind> {
        self.inner
            .supports()
            .into_iter()
            .filter(|k| self.granted.contains(&k.capability()))
            .collect()
    }
    fn wait_ready(&self, deadline: Duration) -> BoxFuture<'_, Result<(), DeployError>> {
        self.inner.wait_ready(deadline)
    }
    fn genesis_time_ms(&self) -> Option<u64> {
        self.inner.genesis_time_ms()
    }
    fn node_state(&self, i: usize) -> Option<NodeState> {
        self.inner.node_state(i)
    }
    fn control_in_flight(&self, i: usize) -> Option<NodeAction> {
        let m = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&i)
            .and_then(|v| v.last().copied())
            .or_else(|| self.inner.control_in_flight(i))
    }
    fn control_log(&self) -> Vec<super::control_log::ControlRecord> {
        self.inner.control_log()
    }
    fn set_node_fault(
        &self,
        i: usize,
        fault: super::node_faults::NodeFault,
    ) -> ControlFuture<'_, ()> {
        let call = match fault {
            super::node_faults::NodeFault::Clock { .. } => format!("clock({i})"),
            _ => format!("disk({i})"),
        };
        self.control(&call, move |n| n.set_node_fault(i, fault))
    }
    // like heal: only removes faults, always allowed
    fn revert_node_faults(&self) -> ControlFuture<'_, usize> {
        self.inner.revert_node_faults()
    }
    fn node_faults(&self) -> Vec<super::node_faults::NodeFaultInForce> {
        self.inner.node_faults()
    }
    fn set_byzantine(
        &self,
        i: usize,
        lies: super::byzantine::Behaviours,
    ) -> ControlFuture<'_, super::byzantine::ByzantineState> {
        self.control(&format!("byzantine({i})"), |n| n.set_byzantine(i, lies))
    }
    fn note_control(
        &self,
        action: super::control_log::NodeAction,
        i: usize,
        detail: Option<String>,
    ) {
        self.inner.note_control(action, i, detail);
    }
}

impl NodeControl for Granted {
    fn start(&self, i: usize) -> ControlFuture<'_, ()> {
        self.control_on(i, NodeAction::Start, |n| n.start(i))
    }
    fn stop(&self, i: usize) -> ControlFuture<'_, ()> {
        self.control_on(i, NodeAction::Stop, |n| n.stop(i))
    }
    fn restart(&self, i: usize) -> ControlFuture<'_, ()> {
        self.control_on(i, NodeAction::Restart, |n| n.restart(i))
    }
    fn kill(&self, i: usize) -> ControlFuture<'_, ()> {
        self.control_on(i, NodeAction::Kill, |n| n.kill(i))
    }
    fn pause(&self, i: usize) -> ControlFuture<'_, ()> {
        self.control_on(i, NodeAction::Pause, |n| n.pause(i))
    }
    fn resume(&self, i: usize) -> ControlFuture<'_, ()> {
        self.control_on(i, NodeAction::Resume, |n| n.resume(i))
    }
    fn add_node(&self, spec: AddNodeSpec) -> ControlFuture<'_, usize> {
        self.control("add_node", move |n| n.add_node(spec))
    }
}

impl NetworkFaults for Granted {
    fn apply_fault(&self, fault: Fault, note: Option<String>) -> ControlFuture<'_, FaultId> {
        match self.need(Capability::NetworkFaults, &fault.to_string()) {
            Ok(()) => self.inner.apply_fault(fault, note),
            Err(e) => refused(e),
        }
    }
    // Reverting, clearing and healing only remove faults: always allowed.
    fn revert_fault(&self, id: FaultId) -> ControlFuture<'_, ()> {
        self.inner.revert_fault(id)
    }
    fn clear_links(&self, links: LinkSel) -> ControlFuture<'_, usize> {
        self.inner.clear_links(links)
    }
    fn heal(&self) -> ControlFuture<'_, usize> {
        self.inner.heal()
    }
    fn active_faults(&self) -> Vec<ActiveFault> {
        self.inner.active_faults()
    }
    fn fault_log(&self) -> Vec<FaultRecord> {
        self.inner.fault_log()
    }
    fn partition(&self, groups: Vec<Vec<usize>>) -> ControlFuture<'_, FaultId> {
        match self.need(Capability::NetworkFaults, "partition") {
            Ok(()) => self.inner.partition(groups),
            Err(e) => refused(e),
        }
    }
    fn isolate(&self, i: usize) -> ControlFuture<'_, FaultId> {
        match self.need(Capability::NetworkFaults, "isolate") {
            Ok(()) => self.inner.isolate(i),
            Err(e) => refused(e),
        }
    }
    fn cut(&self, from: usize, to: usize) -> ControlFuture<'_, FaultId> {
        match self.need(Capability::NetworkFaults, "cut") {
            Ok(()) => self.inner.cut(from, to),
            Err(e) => refused(e),
        }
    }
    fn set_latency(
        &self,
        links: LinkSel,
        delay: Duration,
        jitter: Duration,
    ) -> ControlFuture<'_, FaultId> {
        match self.need(Capability::NetworkFaults, "latency") {
            Ok(()) => self.inner.set_latency(links, delay, jitter),
            Err(e) => refused(e),
        }
    }
    fn set_loss(&self, links: LinkSel, probability: f64) -> ControlFuture<'_, FaultId> {
        match self.need(Capability::NetworkFaults, "loss") {
            Ok(()) => self.inner.set_loss(links, probability),
            Err(e) => refused(e),
        }
    }
    fn set_bandwidth(&self, links: LinkSel, bytes_per_sec: u64) -> ControlFuture<'_, FaultId> {
        match self.need(Capability::NetworkFaults, "bandwidth") {
            Ok(()) => self.inner.set_bandwidth(links, bytes_per_sec),
            Err(e) => refused(e),
        }
    }
}

impl NodeLogs for Granted {
    fn logs(&self, i: usize, lines: usize) -> BoxFuture<'_, Result<String, ControlError>> {
        self.inner.logs(i, lines)
    }
}

impl Teardown for Granted {
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>> {
        self.inner.teardown(keep)
    }
}
