//! What a `RunEvent::Control` says was done, as a value: reporters render it (its `Display` is
//! the line the terminal prints) and read it (the live fault count, the HTML report's node-down
//! spans) without parsing text back.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::deploy::control_log::NodeAction;
use crate::links::{Fault, FaultId, LinkSel};

/// A node-control action or a network fault, as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControlAction {
    /// An action on one node; `detail` for what it set (an added node's peers and stake).
    Node {
        action: NodeAction,
        node: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A network fault applied (`via`: how the backend applied it, where it says), with the
    /// number of faults in force after it.
    Fault {
        fault: Fault,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<FaultVia>,
        active: usize,
    },
    /// One fault reverted.
    Revert { id: FaultId, active: usize },
    /// The faults on some links reverted (`touched` faults lost links; those covering other
    /// links stay there).
    Clear {
        links: LinkSel,
        touched: usize,
        active: usize,
    },
    /// Every fault reverted.
    Heal { reverted: usize },
}

/// How a backend applied a network fault, where it is not the engine's link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultVia {
    /// Kubernetes NetworkPolicies.
    NetworkPolicies,
}

impl fmt::Display for FaultVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultVia::NetworkPolicies => write!(f, "network policies"),
        }
    }
}

impl ControlAction {
    /// `action` on `node`.
    pub fn node(action: NodeAction, node: usize) -> Self {
        ControlAction::Node {
            action,
            node,
            detail: None,
        }
    }

    /// The faults in force after this action, where it says (node actions do not).
    pub fn faults_in_force(&self) -> Option<usize> {
        match self {
            ControlAction::Fault { active, .. }
            | ControlAction::Revert { active, .. }
            | ControlAction::Clear { active, .. } => Some(*active),
            ControlAction::Heal { .. } => Some(0),
            ControlAction::Node { .. } => None,
        }
    }

    /// The node this action took down (`Some((node, true))`: stop, kill, pause) or brought back
    /// (`false`: start, restart, resume).
    pub fn node_up_down(&self) -> Option<(usize, bool)> {
        match self {
            ControlAction::Node { action, node, .. } => match action {
                NodeAction::Kill | NodeAction::Stop | NodeAction::Pause => Some((*node, true)),
                NodeAction::Start | NodeAction::Restart | NodeAction::Resume => {
                    Some((*node, false))
                }
                NodeAction::AddNode
                | NodeAction::Clock
                | NodeAction::Byzantine
                | NodeAction::Disk => None,
            },
            _ => None,
        }
    }
}

impl fmt::Display for ControlAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlAction::Node {
                action,
                node,
                detail,
            } => {
                write!(f, "{action} node-{node}")?;
                if let Some(d) = detail {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            ControlAction::Fault { fault, via, .. } => {
                write!(f, "fault {fault}")?;
                if let Some(v) = via {
                    write!(f, " ({v})")?;
                }
                Ok(())
            }
            ControlAction::Revert { id, .. } => write!(f, "revert {id}"),
            ControlAction::Clear { links, .. } => write!(f, "clear {links}"),
            ControlAction::Heal { reverted } => write!(f, "heal ({reverted} faults reverted)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Each action renders the line the terminal printed when the events carried text
    /// (`fault {fault}`, `revert {id}`, `clear {links}`, `heal (N faults reverted)`), and
    /// survives JSON.
    #[test]
    fn actions_render_as_the_terminal_prints_them_and_round_trip() {
        let cases = [
            (ControlAction::node(NodeAction::Kill, 2), "kill node-2"),
            (
                ControlAction::Node {
                    action: NodeAction::AddNode,
                    node: 3,
                    detail: Some("peers [0], stake 1".into()),
                },
                "add node-3 (peers [0], stake 1)",
            ),
            (
                ControlAction::Fault {
                    fault: Fault::Partition(vec![vec![0], vec![1, 2]]),
                    via: Some(FaultVia::NetworkPolicies),
                    active: 1,
                },
                "fault partition [[0], [1, 2]] (network policies)",
            ),
            (
                ControlAction::Fault {
                    fault: Fault::Latency {
                        links: LinkSel::Node(1),
                        delay: Duration::from_millis(50),
                        jitter: Duration::ZERO,
                    },
                    via: None,
                    active: 2,
                },
                "fault latency 50ms on links of node 1",
            ),
            (
                ControlAction::Revert {
                    id: FaultId(1),
                    active: 0,
                },
                "revert fault#1",
            ),
            (
                ControlAction::Clear {
                    links: LinkSel::Node(1),
                    touched: 2,
                    active: 1,
                },
                "clear links of node 1",
            ),
            (
                ControlAction::Clear {
                    links: LinkSel::Both(0, 2),
                    touched: 1,
                    active: 0,
                },
                "clear links 0<->2",
            ),
            (
                ControlAction::Heal { reverted: 3 },
                "heal (3 faults reverted)",
            ),
        ];
        for (a, text) in cases {
            assert_eq!(a.to_string(), text);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<ControlAction>(&json).unwrap(), a);
        }
    }

    /// The JSON carries the fault, id and links as the fault log does, not as text.
    #[test]
    fn fault_actions_serialise_their_values() {
        let fault = ControlAction::Fault {
            fault: Fault::Isolate(2),
            via: Some(FaultVia::NetworkPolicies),
            active: 1,
        };
        assert_eq!(
            serde_json::to_value(&fault).unwrap(),
            serde_json::json!({
                "kind": "fault", "fault": {"Isolate": 2}, "via": "network_policies", "active": 1,
            })
        );
        let revert = ControlAction::Revert {
            id: FaultId(4),
            active: 0,
        };
        assert_eq!(
            serde_json::to_value(&revert).unwrap(),
            serde_json::json!({"kind": "revert", "id": 4, "active": 0})
        );
        let clear = ControlAction::Clear {
            links: LinkSel::Node(1),
            touched: 2,
            active: 1,
        };
        assert_eq!(
            serde_json::to_value(&clear).unwrap(),
            serde_json::json!({"kind": "clear", "links": {"Node": 1}, "touched": 2, "active": 1})
        );
    }
}
