//! Client calls through the framework's own node control: a call that cannot reach a node
//! the framework is restarting, stopping or pausing waits for the node to come back (up to a
//! deadline) instead of failing at once with "connection refused". Only a transport failure
//! waits, and only while the testnet says why: a control action under way on the node
//! ([`Testnet::control_in_flight`]), the node stopped or paused by control, or a control action
//! on it in the last seconds (a restarted node binds its port a moment after its process
//! starts). A node that is simply unreachable, or that exited on its own, fails at once.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use super::control_log::NodeAction;
use super::{NodeState, Testnet};
use crate::client::{ClientError, NodeClient};

/// How long a call waits for a node the framework is controlling, by default.
pub const DEFAULT_CONTROL_WAIT: Duration = Duration::from_secs(30);

/// A control action that recently completed still explains a refused connection for this long.
const RECENT: Duration = Duration::from_secs(5);

/// Pause between two attempts.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// A call that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlWaitError {
    /// The node answered (a refusal, an undecodable answer) or failed with no control action to
    /// explain it.
    #[error(transparent)]
    Call(#[from] ClientError),
    /// The node did not come back from a control action within the deadline.
    #[error(
        "node-{node} did not come back within {}s of its {action} by the framework (last error: {last})",
        waited.as_secs_f64().round()
    )]
    NotBack {
        node: usize,
        action: NodeAction,
        waited: Duration,
        last: ClientError,
    },
    /// The node is not part of the testnet (any more).
    #[error("node-{node} is not in the testnet ({count} nodes)")]
    NoSuchNode { node: usize, count: usize },
}

/// Why node `i` may not answer now: the control action under way or last applied to it, if it
/// explains a failed connection.
pub fn controlled(net: &dyn Testnet, i: usize) -> Option<NodeAction> {
    if let Some(a) = net.control_in_flight(i) {
        return Some(a);
    }
    let last = net
        .control_log()
        .into_iter()
        .rev()
        // a clock set or a lie told through the node's API does not take it down
        .find(|r| r.node == i && !matches!(r.action, NodeAction::Clock | NodeAction::Byzantine))
        .map(|r| (r.action, r.at));
    match net.node_state(i)? {
        NodeState::Stopped => Some(last.map_or(NodeAction::Stop, |(a, _)| a)),
        NodeState::Paused => Some(NodeAction::Pause),
        NodeState::Exited => None,
        NodeState::Running => {
            let (action, at) = last?;
            let recent = SystemTime::now()
                .duration_since(at)
                .is_ok_and(|age| age <= RECENT);
            recent.then_some(action)
        }
    }
}

/// Runs `call` on node `i`'s current client; while it fails for a transport reason the
/// framework's control of the node explains, retries until `deadline` passes.
pub async fn call_through_control<T, F, Fut>(
    net: &dyn Testnet,
    i: usize,
    deadline: Duration,
    call: F,
) -> Result<T, ControlWaitError>
where
    F: Fn(NodeClient) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let start = Instant::now();
    let mut waited_for: Option<NodeAction> = None;
    loop {
        let clients = net.clients();
        let Some(client) = clients.get(i).cloned() else {
            return Err(ControlWaitError::NoSuchNode {
                node: i,
                count: clients.len(),
            });
        };
        let e = match call(client).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transport() => e,
            Err(e) => return Err(e.into()),
        };
        let Some(action) = controlled(net, i).or(waited_for) else {
            return Err(e.into());
        };
        // a stop or pause that completed (the node is down on purpose, and no action brings it
        // back by itself) still waits: a chaos workload or another script may start it again
        waited_for = Some(action);
        let waited = start.elapsed();
        if waited >= deadline {
            return Err(ControlWaitError::NotBack {
                node: i,
                action,
                waited,
                last: e,
            });
        }
        tokio::time::sleep(RETRY_EVERY.min(deadline - waited)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use super::*;
    use crate::client::NodeClients;
    use crate::deploy::control_log::ControlRecord;
    use crate::deploy::{
        ControlError, ControlFuture, DeployError, NetworkFaults, NodeControl, NodeLogs, Teardown,
        TeardownSummary,
    };
    use crate::topology::{Topology, TopologyBuilder};

    /// One node at a port nothing listens on, in a state and with a control history the test
    /// sets.
    struct Fake {
        topology: Topology,
        state: Mutex<NodeState>,
        in_flight: Mutex<Option<NodeAction>>,
        records: Mutex<Vec<ControlRecord>>,
    }

    impl Fake {
        fn new(state: NodeState) -> Self {
            Self {
                topology: TopologyBuilder::new().nodes(1).build().expect("topology"),
                state: Mutex::new(state),
                in_flight: Mutex::new(None),
                records: Mutex::new(Vec::new()),
            }
        }

        fn record(&self, action: NodeAction, ago: Duration) {
            self.records.lock().unwrap().push(ControlRecord {
                at: SystemTime::now() - ago,
                elapsed: Duration::ZERO,
                action,
                node: 0,
                detail: None,
            });
        }
    }

    impl Testnet for Fake {
        fn deployer_name(&self) -> &str {
            "fake"
        }
        fn run_id(&self) -> &str {
            "fake"
        }
        fn node_count(&self) -> usize {
            1
        }
        fn clients(&self) -> NodeClients {
            // port 1: connections are refused at once
            NodeClients(vec![NodeClient::new(0, "http://127.0.0.1:1")])
        }
        fn topology(&self) -> &Topology {
            &self.topology
        }
        fn run_dir(&self) -> Option<PathBuf> {
            None
        }
        fn endpoints(&self) -> Vec<crate::deploy::Endpoint> {
            Vec::new()
        }
        fn supports(&self) -> Vec<crate::deploy::FaultKind> {
            Vec::new()
        }
        fn wait_ready(&self, _deadline: Duration) -> BoxFuture<'_, Result<(), DeployError>> {
            Box::pin(async { Ok(()) })
        }
        fn node_state(&self, _i: usize) -> Option<NodeState> {
            Some(*self.state.lock().unwrap())
        }
        fn control_in_flight(&self, _i: usize) -> Option<NodeAction> {
            *self.in_flight.lock().unwrap()
        }
        fn control_log(&self) -> Vec<ControlRecord> {
            self.records.lock().unwrap().clone()
        }
    }

    fn no<'a, T: Send + 'a>() -> ControlFuture<'a, T> {
        Box::pin(async { Err(ControlError::failed("the fake does nothing")) })
    }

    impl NodeControl for Fake {
        fn start(&self, _: usize) -> ControlFuture<'_, ()> {
            no()
        }
        fn stop(&self, _: usize) -> ControlFuture<'_, ()> {
            no()
        }
        fn restart(&self, _: usize) -> ControlFuture<'_, ()> {
            no()
        }
        fn kill(&self, _: usize) -> ControlFuture<'_, ()> {
            no()
        }
        fn pause(&self, _: usize) -> ControlFuture<'_, ()> {
            no()
        }
        fn resume(&self, _: usize) -> ControlFuture<'_, ()> {
            no()
        }
        fn add_node(&self, _: crate::deploy::AddNodeSpec) -> ControlFuture<'_, usize> {
            no()
        }
    }

    impl NetworkFaults for Fake {
        fn apply_fault(
            &self,
            _: crate::links::Fault,
            _: Option<String>,
        ) -> ControlFuture<'_, crate::links::FaultId> {
            no()
        }
        fn revert_fault(&self, _: crate::links::FaultId) -> ControlFuture<'_, ()> {
            no()
        }
        fn clear_links(&self, _: crate::links::LinkSel) -> ControlFuture<'_, usize> {
            no()
        }
        fn heal(&self) -> ControlFuture<'_, usize> {
            no()
        }
        fn active_faults(&self) -> Vec<crate::links::ActiveFault> {
            Vec::new()
        }
        fn fault_log(&self) -> Vec<crate::links::FaultRecord> {
            Vec::new()
        }
    }

    impl NodeLogs for Fake {
        fn logs(&self, _: usize, _: usize) -> ControlFuture<'_, String> {
            no()
        }
    }

    impl Teardown for Fake {
        fn teardown(&self, _keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>> {
            Box::pin(async {
                Ok(TeardownSummary {
                    killed: 0,
                    run_dir: None,
                    kept: false,
                    took: Duration::ZERO,
                })
            })
        }
    }

    #[test]
    fn only_the_frameworks_control_explains_a_failed_connection() {
        let net = Fake::new(NodeState::Running);
        assert_eq!(controlled(&net, 0), None, "running, never controlled");
        net.record(NodeAction::Restart, Duration::from_secs(60));
        assert_eq!(controlled(&net, 0), None, "a restart a minute ago");
        net.record(NodeAction::Restart, Duration::from_secs(1));
        assert_eq!(controlled(&net, 0), Some(NodeAction::Restart));
        *net.in_flight.lock().unwrap() = Some(NodeAction::Pause);
        assert_eq!(controlled(&net, 0), Some(NodeAction::Pause));

        let net = Fake::new(NodeState::Stopped);
        assert_eq!(controlled(&net, 0), Some(NodeAction::Stop));
        net.record(NodeAction::Kill, Duration::from_secs(60));
        assert_eq!(controlled(&net, 0), Some(NodeAction::Kill));
        assert_eq!(
            controlled(&Fake::new(NodeState::Paused), 0),
            Some(NodeAction::Pause)
        );
        assert_eq!(
            controlled(&Fake::new(NodeState::Exited), 0),
            None,
            "crashed"
        );
    }

    #[tokio::test]
    async fn an_unexplained_failure_is_returned_at_once_and_a_controlled_one_after_the_deadline() {
        let net = Fake::new(NodeState::Running);
        let start = Instant::now();
        let e = call_through_control(&net, 0, Duration::from_secs(5), |c| async move {
            c.consensus_info().await
        })
        .await
        .unwrap_err();
        assert!(matches!(e, ControlWaitError::Call(_)), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "waited for nothing"
        );

        let net = Fake::new(NodeState::Stopped);
        let start = Instant::now();
        let e = call_through_control(&net, 0, Duration::from_millis(700), |c| async move {
            c.consensus_info().await
        })
        .await
        .unwrap_err();
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(700) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("node-0 did not come back within 1s of its stop by the framework"),
            "{text}"
        );
        let e = call_through_control(&net, 3, Duration::from_secs(1), |c| async move {
            c.consensus_info().await
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("not in the testnet"), "{e}");
    }
}
