//! Node-control actions as records, so that a testnet's fault log shows one timeline: the
//! network faults of the link layer and the restarts, stops, kills and pauses of the nodes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// What was done to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeAction {
    Start,
    Stop,
    Kill,
    Restart,
    Pause,
    Resume,
    AddNode,
    /// The node's clock was set off wall time (or back).
    Clock,
    /// The node was told to lie (or to be honest again).
    Byzantine,
    /// The node's disk was made full, or its writes held back (or either put back).
    Disk,
}

impl fmt::Display for NodeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeAction::Start => "start",
            NodeAction::Stop => "stop",
            NodeAction::Kill => "kill",
            NodeAction::Restart => "restart",
            NodeAction::Pause => "pause",
            NodeAction::Resume => "resume",
            NodeAction::AddNode => "add",
            NodeAction::Clock => "clock",
            NodeAction::Byzantine => "byzantine",
            NodeAction::Disk => "disk",
        })
    }
}

/// One node-control action that succeeded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlRecord {
    /// Wall-clock time, as precise as the fault log's, so that the two merge in order.
    pub at: SystemTime,
    /// Time since the testnet was created.
    pub elapsed: Duration,
    pub action: NodeAction,
    pub node: usize,
    /// What the action set, where it takes a value (a clock's offset and drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ControlRecord {
    /// Wall-clock time of the action.
    pub fn at(&self) -> SystemTime {
        self.at
    }
}

impl fmt::Display for ControlRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} node-{}", self.action, self.node)?;
        if let Some(d) = &self.detail {
            write!(f, " {d}")?;
        }
        Ok(())
    }
}

/// How a clock setting reads in the timeline: `offset +2000ms drift 0ppm`, or `reset`.
pub fn clock_detail(offset_ms: i64, drift_ppm: i64) -> String {
    if offset_ms == 0 && drift_ppm == 0 {
        "reset".to_owned()
    } else {
        format!("offset {offset_ms:+}ms drift {drift_ppm:+}ppm")
    }
}

/// The control actions of one testnet, in order, and those under way.
#[derive(Debug)]
pub struct ControlLog {
    created: Instant,
    entries: Mutex<Vec<ControlRecord>>,
    /// node -> the action under way on it (see [`ControlLog::begin`]).
    in_flight: Mutex<HashMap<usize, NodeAction>>,
    /// The clock and disk faults in force, applied again after a restart.
    node_faults: super::node_faults::NodeFaults,
}

impl Default for ControlLog {
    fn default() -> Self {
        Self {
            created: Instant::now(),
            entries: Mutex::new(Vec::new()),
            in_flight: Mutex::new(HashMap::new()),
            node_faults: super::node_faults::NodeFaults::default(),
        }
    }
}

/// Marks an action under way on a node until dropped ([`ControlLog::begin`]).
#[derive(Debug)]
pub struct UnderWay<'a> {
    log: &'a ControlLog,
    node: usize,
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        self.log
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.node);
    }
}

impl ControlLog {
    /// Records `action` on `node`, now.
    pub fn record(&self, action: NodeAction, node: usize) {
        self.record_detail(action, node, None);
    }

    /// Records `action` on `node` with what it set, now.
    pub fn record_detail(&self, action: NodeAction, node: usize, detail: Option<String>) {
        let at = SystemTime::now();
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ControlRecord {
                at,
                elapsed: self.created.elapsed(),
                action,
                node,
                detail,
            });
    }

    /// Marks `action` under way on `node` until the guard is dropped, so that client calls it
    /// breaks wait for it (`deploy::control_wait`). Backends serialise control actions, so one
    /// action per node is under way at a time.
    pub fn begin(&self, action: NodeAction, node: usize) -> UnderWay<'_> {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node, action);
        UnderWay { log: self, node }
    }

    /// The action under way on `node`, if any.
    pub fn in_flight(&self, node: usize) -> Option<NodeAction> {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .copied()
    }

    /// The clock and disk faults in force on the testnet's nodes.
    pub fn node_faults(&self) -> &super::node_faults::NodeFaults {
        &self.node_faults
    }

    /// Every record so far.
    pub fn entries(&self) -> Vec<ControlRecord> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_order_and_read_as_actions() {
        let log = ControlLog::default();
        {
            let _under_way = log.begin(NodeAction::Restart, 1);
            assert_eq!(log.in_flight(1), Some(NodeAction::Restart));
            assert_eq!(log.in_flight(2), None);
        }
        assert_eq!(log.in_flight(1), None);
        log.record(NodeAction::Restart, 1);
        log.record(NodeAction::Pause, 2);
        let e = log.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].to_string(), "restart node-1");
        assert_eq!(e[1].to_string(), "pause node-2");
        assert!(e[0].elapsed <= e[1].elapsed);
        let json = serde_json::to_string(&e[1]).unwrap();
        assert!(json.contains("\"pause\""), "{json}");
        let back: ControlRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e[1]);
    }
}

/// One entry of a testnet's timeline: a network fault record or a node-control action.
#[derive(Clone, Debug, PartialEq)]
pub enum TimelineEntry {
    Fault(crate::links::FaultRecord),
    Control(ControlRecord),
}

impl TimelineEntry {
    fn at(&self) -> SystemTime {
        match self {
            TimelineEntry::Fault(r) => r.at,
            TimelineEntry::Control(r) => r.at(),
        }
    }
}

/// The fault log and the control log of `net`, merged in time order.
pub fn timeline(net: &dyn super::Testnet) -> Vec<TimelineEntry> {
    let mut out: Vec<TimelineEntry> = net
        .fault_log()
        .into_iter()
        .map(TimelineEntry::Fault)
        .chain(net.control_log().into_iter().map(TimelineEntry::Control))
        .collect();
    // stable: records of one log keep their order when their times tie
    out.sort_by_key(|e| e.at());
    out
}
