//! Faults a node applies to itself through its testing surface (the reference node's clock and
//! disk switches), in the one fault model: each is recorded in the control log (so
//! `net.fault_log()` and the timeline show it), kept in force per node, applied again after the
//! node is restarted or started (a fresh process starts without it), and reverted by
//! [`Testnet::revert_node_faults`] (which `heal()` in scripts and the chaos workload, and the
//! runner's teardown, call).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::control_log::{NodeAction, clock_detail};
use super::{ControlError, NodeState, Testnet};

/// A fault a node applies to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeFault {
    /// The clock `offset_ms` off wall time, drifting `drift_ppm` from then on (0, 0: wall time).
    Clock { offset_ms: i64, drift_ppm: i64 },
    /// The disk full: every write fails with ENOSPC, so the node neither follows nor produces
    /// (false: it has room again).
    DiskFull { full: bool },
    /// The last `blocks` block writes held back as not yet durable: a kill loses them (0:
    /// every write durable, and those held back are committed now).
    Unflushed { blocks: u64 },
}

/// Which switch of a node a fault sets (one fault of each kind is in force per node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Switch {
    Clock,
    DiskFull,
    Unflushed,
}

impl NodeFault {
    /// The switch it sets.
    pub fn switch(&self) -> Switch {
        match self {
            NodeFault::Clock { .. } => Switch::Clock,
            NodeFault::DiskFull { .. } => Switch::DiskFull,
            NodeFault::Unflushed { .. } => Switch::Unflushed,
        }
    }

    /// Whether it puts the switch back to normal.
    pub fn is_normal(&self) -> bool {
        *self == Self::normal(self.switch())
    }

    /// The setting of `switch` that is no fault.
    pub fn normal(switch: Switch) -> Self {
        match switch {
            Switch::Clock => NodeFault::Clock {
                offset_ms: 0,
                drift_ppm: 0,
            },
            Switch::DiskFull => NodeFault::DiskFull { full: false },
            Switch::Unflushed => NodeFault::Unflushed { blocks: 0 },
        }
    }

    /// How the control log names it.
    pub fn action(&self) -> NodeAction {
        match self {
            NodeFault::Clock { .. } => NodeAction::Clock,
            NodeFault::DiskFull { .. } | NodeFault::Unflushed { .. } => NodeAction::Disk,
        }
    }

    /// What it set, as the timeline reads it (`offset +2000ms drift +0ppm`, `full`,
    /// `unflushed 5`, `ok`).
    pub fn detail(&self) -> String {
        match *self {
            NodeFault::Clock {
                offset_ms,
                drift_ppm,
            } => clock_detail(offset_ms, drift_ppm),
            NodeFault::DiskFull { full: true } => "full".to_owned(),
            NodeFault::DiskFull { full: false } => "ok".to_owned(),
            NodeFault::Unflushed { blocks: 0 } => "flushed".to_owned(),
            NodeFault::Unflushed { blocks } => format!("unflushed {blocks}"),
        }
    }

    /// Sends it to node `i` through its testing surface.
    async fn send(&self, net: &(impl Testnet + ?Sized), i: usize) -> Result<(), ControlError> {
        let count = net.node_count();
        let client = net
            .clients()
            .get(i)
            .cloned()
            .ok_or(ControlError::NoSuchNode { index: i, count })?;
        let what = match self {
            NodeFault::Clock { .. } => "clock",
            _ => "disk",
        };
        let sent = match *self {
            NodeFault::Clock {
                offset_ms,
                drift_ppm,
            } => client.set_clock(offset_ms, drift_ppm).await.map(|_| ()),
            NodeFault::DiskFull { full } => client.set_disk(None, Some(full)).await.map(|_| ()),
            NodeFault::Unflushed { blocks } => {
                client.set_disk(Some(blocks), None).await.map(|_| ())
            }
        };
        sent.map_err(|e| ControlError::caused(format!("{what} of node-{i}"), e))
    }
}

impl fmt::Display for NodeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action(), self.detail())
    }
}

/// A fault in force on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFaultInForce {
    pub node: usize,
    pub fault: NodeFault,
}

/// The node faults in force on a testnet (kept by its control log).
#[derive(Debug, Default)]
pub struct NodeFaults {
    in_force: Mutex<BTreeMap<(usize, Switch), (NodeFault, Instant)>>,
}

impl NodeFaults {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(usize, Switch), (NodeFault, Instant)>> {
        self.in_force.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `fault` set on `node` (a normal setting removes the switch's entry).
    pub fn set(&self, node: usize, fault: NodeFault) {
        let key = (node, fault.switch());
        if fault.is_normal() {
            self.map().remove(&key);
        } else {
            self.map().insert(key, (fault, Instant::now()));
        }
    }

    /// Every fault in force, by node, as it stands now (a drifting clock's offset includes the
    /// drift accumulated since it was set).
    pub fn in_force(&self) -> Vec<NodeFaultInForce> {
        self.map()
            .iter()
            .map(|(&(node, _), &(fault, since))| NodeFaultInForce {
                node,
                fault: now_of(fault, since),
            })
            .collect()
    }

    fn of(&self, node: usize) -> Vec<NodeFault> {
        self.in_force()
            .into_iter()
            .filter(|f| f.node == node)
            .map(|f| f.fault)
            .collect()
    }
}

/// The faults in force on `node`, as the timeline reads them (`disk full, clock offset
/// -6000ms drift +0ppm`), for messages naming a node; None if none.
pub fn describe_on(faults: &[NodeFaultInForce], node: usize) -> Option<String> {
    let on: Vec<String> = faults
        .iter()
        .filter(|f| f.node == node)
        .map(|f| f.fault.to_string())
        .collect();
    (!on.is_empty()).then(|| on.join(", "))
}

/// A fault as it stands now: a drifting clock has gained `drift * elapsed` since it was set.
fn now_of(fault: NodeFault, since: Instant) -> NodeFault {
    match fault {
        NodeFault::Clock {
            offset_ms,
            drift_ppm,
        } if drift_ppm != 0 => {
            let elapsed = since.elapsed().as_millis().min(i64::MAX as u128) as i128;
            NodeFault::Clock {
                offset_ms: offset_ms + (elapsed * drift_ppm as i128 / 1_000_000) as i64,
                drift_ppm,
            }
        }
        f => f,
    }
}

/// Sets `fault` on node `i` through its testing surface, records it in the control log and
/// keeps it in force (the default of [`Testnet::set_node_fault`]).
pub async fn apply(
    net: &(impl Testnet + ?Sized),
    i: usize,
    fault: NodeFault,
) -> Result<(), ControlError> {
    fault.send(net, i).await?;
    net.note_control(fault.action(), i, Some(fault.detail()));
    if let Some(log) = net.own_control_log() {
        log.node_faults().set(i, fault);
    }
    Ok(())
}

/// Applies the faults in force on node `i` again (after it was restarted or started: a fresh
/// process starts without them), each recorded as re-applied. Called by the backends as soon as
/// the node's API answers after the start: the fresh process runs without them until then (its
/// first moments of bootstrapping).
pub async fn reapply(net: &(impl Testnet + ?Sized), i: usize) -> Result<(), ControlError> {
    let Some(log) = net.own_control_log() else {
        return Ok(());
    };
    for fault in log.node_faults().of(i) {
        fault.send(net, i).await?;
        log.node_faults().set(i, fault);
        net.note_control(
            fault.action(),
            i,
            Some(format!("{} (re-applied after start)", fault.detail())),
        );
    }
    Ok(())
}

/// Puts every switch in force back to normal; returns how many were. A node that is not
/// running loses its entries without a call (a fresh process starts without them). The default
/// of [`Testnet::revert_node_faults`].
pub async fn revert_all(net: &(impl Testnet + ?Sized)) -> Result<usize, ControlError> {
    let Some(log) = net.own_control_log() else {
        return Ok(0);
    };
    let mut n = 0;
    let mut first_err = None;
    for f in log.node_faults().in_force() {
        let normal = NodeFault::normal(f.fault.switch());
        let running = matches!(
            net.node_state(f.node),
            Some(NodeState::Running | NodeState::Paused)
        );
        if running && let Err(e) = normal.send(net, f.node).await {
            first_err.get_or_insert(e);
            continue;
        }
        log.node_faults().set(f.node, normal);
        net.note_control(normal.action(), f.node, Some(normal.detail()));
        n += 1;
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_in_force_are_kept_by_switch_and_a_normal_setting_clears_them() {
        let f = NodeFaults::default();
        f.set(
            1,
            NodeFault::Clock {
                offset_ms: 2_000,
                drift_ppm: 0,
            },
        );
        f.set(1, NodeFault::DiskFull { full: true });
        f.set(2, NodeFault::Unflushed { blocks: 5 });
        assert_eq!(f.in_force().len(), 3);
        f.set(1, NodeFault::DiskFull { full: false });
        let left: Vec<String> = f.in_force().iter().map(|x| x.fault.to_string()).collect();
        assert_eq!(
            left,
            vec!["clock offset +2000ms drift +0ppm", "disk unflushed 5"]
        );
        assert!(NodeFault::Unflushed { blocks: 0 }.is_normal());
        assert_eq!(NodeFault::DiskFull { full: true }.detail(), "full");
    }

    #[test]
    fn a_drifting_clock_in_force_includes_the_drift_since_it_was_set() {
        let since = Instant::now() - std::time::Duration::from_secs(10);
        let now = now_of(
            NodeFault::Clock {
                offset_ms: -500,
                drift_ppm: 100_000,
            },
            since,
        );
        let NodeFault::Clock { offset_ms, .. } = now else {
            panic!("{now:?}");
        };
        assert!((500..=520).contains(&offset_ms), "{offset_ms}");
    }
}
