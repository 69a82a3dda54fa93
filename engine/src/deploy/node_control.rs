//! Node control, written once for every backend that runs nodes (local processes, containers,
//! pods): which action each state allows (`BadState` otherwise), the lock that serialises
//! actions, the control log and the control events, and the clock and disk faults applied again
//! after a node starts. A backend supplies only what differs, the primitives of
//! [`NodeProcesses`]: end a node's process, start it again, freeze or thaw it, add one.
//!
//! | action  | allowed from       | primitives                          | state after |
//! |---------|--------------------|-------------------------------------|-------------|
//! | stop    | running, paused    | `halt(graceful)`                    | stopped     |
//! | kill    | running, paused    | `halt(kill)`                        | stopped     |
//! | start   | stopped, exited    | `launch`                            | running     |
//! | restart | any                | `relaunch` if up, else `launch`     | running     |
//! | pause   | running            | `freeze(true)`                      | paused      |
//! | resume  | paused             | `freeze(false)`                     | running     |

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::control_log::{ControlLog, NodeAction};
use super::{AddNodeSpec, ControlError, ControlFuture, NodeControl, NodeState, Testnet};
use crate::report::{ControlAction, EventSink, RunEvent};

/// What every backend that runs nodes keeps for node control: the lock serialising actions (and
/// teardown), the control log, where control events go, whether teardown has begun, and how
/// many staked joiner slots `add_node` has taken.
#[derive(Debug)]
pub(crate) struct ControlCore {
    /// Serialises node-control actions (a restart is a stop and a start) and teardown.
    pub lock: tokio::sync::Mutex<()>,
    pub log: ControlLog,
    pub events: Option<EventSink>,
    /// When the testnet was created: control events are timed from it.
    pub created: Instant,
    torn_down: AtomicBool,
    pub joiners_used: AtomicUsize,
}

impl ControlCore {
    pub fn new(events: Option<EventSink>) -> Self {
        Self {
            lock: tokio::sync::Mutex::new(()),
            log: ControlLog::default(),
            events,
            created: Instant::now(),
            torn_down: AtomicBool::new(false),
            joiners_used: AtomicUsize::new(0),
        }
    }

    /// Sends a control event, timed from the testnet's creation.
    pub fn emit(&self, action: ControlAction) {
        if let Some(ev) = &self.events {
            ev.emit(RunEvent::Control {
                action,
                elapsed: self.created.elapsed(),
            });
        }
    }

    pub fn is_torn_down(&self) -> bool {
        self.torn_down.load(Ordering::SeqCst)
    }

    /// `TornDown` once teardown has begun.
    pub fn check_live(&self) -> Result<(), ControlError> {
        if self.is_torn_down() {
            Err(ControlError::TornDown)
        } else {
            Ok(())
        }
    }

    /// Marks teardown begun; true if it already was (teardown is idempotent).
    pub fn begin_teardown(&self) -> bool {
        self.torn_down.swap(true, Ordering::SeqCst)
    }
}

/// The primitives a backend gives the node-control machine. Each is called with the control lock
/// held and the node's state checked: `halt` only on a running or paused node, `launch` only on
/// a stopped or exited one.
pub(crate) trait NodeProcesses: Testnet {
    fn core(&self) -> &ControlCore;

    /// Records node `i`'s new state.
    fn set_state(&self, i: usize, state: NodeState);

    /// Why the backend cannot do `action` at all, checked before the node's state: by default,
    /// the action's kind is not among those it declares ([`Testnet::supports`]).
    fn refuses(&self, action: NodeAction, i: usize) -> Option<ControlError> {
        let kind = super::FaultKind::of_action(action)?;
        (!self.supports().contains(&kind)).then(|| ControlError::UnsupportedKind {
            kind,
            index: i,
            deployer: self.deployer_name().to_owned(),
        })
    }

    /// Ends node `i`'s process, gracefully or not (`kill`), and returns once it is gone.
    /// `paused`: the process is frozen (thaw it first where the backend must).
    fn halt(
        &self,
        i: usize,
        kill: bool,
        paused: bool,
    ) -> impl Future<Output = Result<(), ControlError>> + Send;

    /// Starts node `i`'s process again (same config, same data), marks it running, and returns
    /// once its API answers.
    fn launch(&self, i: usize) -> impl Future<Output = Result<(), ControlError>> + Send;

    /// Restarts a running (or paused) node: a graceful halt, then a launch, unless the backend
    /// has its own way (Kubernetes deletes the pod and its StatefulSet makes a new one).
    fn relaunch(
        &self,
        i: usize,
        paused: bool,
    ) -> impl Future<Output = Result<(), ControlError>> + Send {
        async move {
            self.halt(i, false, paused).await?;
            self.set_state(i, NodeState::Stopped);
            self.launch(i).await
        }
    }

    /// Freezes (`true`) or thaws node `i`'s process.
    fn freeze(
        &self,
        i: usize,
        freeze: bool,
    ) -> impl Future<Output = Result<(), ControlError>> + Send;

    /// Creates and starts node `i` (the next index) with secret key `key_hex` as `spec` says,
    /// and returns once it is ready with its peers connected.
    fn provision(
        &self,
        i: usize,
        key_hex: String,
        spec: &AddNodeSpec,
    ) -> impl Future<Output = Result<(), ControlError>> + Send;
}

fn bad_state(i: usize, state: NodeState, action: NodeAction) -> ControlError {
    ControlError::BadState {
        index: i,
        state,
        action: action.to_string(),
    }
}

/// Does `action` (start, stop, kill, restart, pause, resume) to node `i`: the one state machine
/// of every backend that runs nodes.
pub(crate) async fn act<B: NodeProcesses>(
    net: &B,
    action: NodeAction,
    i: usize,
) -> Result<(), ControlError> {
    let core = net.core();
    let _g = core.lock.lock().await;
    let _under_way = core.log.begin(action, i);
    core.check_live()?;
    if let Some(e) = net.refuses(action, i) {
        return Err(e);
    }
    let count = net.node_count();
    let state = net
        .node_state(i)
        .ok_or(ControlError::NoSuchNode { index: i, count })?;
    let up = matches!(state, NodeState::Running | NodeState::Paused);
    let paused = state == NodeState::Paused;
    match action {
        NodeAction::Stop | NodeAction::Kill => {
            if !up {
                return Err(bad_state(i, state, action));
            }
            net.halt(i, action == NodeAction::Kill, paused).await?;
            net.set_state(i, NodeState::Stopped);
        }
        NodeAction::Start => {
            if up {
                return Err(bad_state(i, state, action));
            }
            net.launch(i).await?;
        }
        NodeAction::Restart => {
            if up {
                net.relaunch(i, paused).await?;
            } else {
                net.launch(i).await?;
            }
        }
        NodeAction::Pause | NodeAction::Resume => {
            let pause = action == NodeAction::Pause;
            let want = if pause {
                NodeState::Running
            } else {
                NodeState::Paused
            };
            if state != want {
                return Err(bad_state(i, state, action));
            }
            net.freeze(i, pause).await?;
            net.set_state(
                i,
                if pause {
                    NodeState::Paused
                } else {
                    NodeState::Running
                },
            );
        }
        NodeAction::AddNode | NodeAction::Clock | NodeAction::Byzantine | NodeAction::Disk => {
            return Err(ControlError::failed(format!(
                "{action} is not a node-control action"
            )));
        }
    }
    core.emit(ControlAction::node(action, i));
    core.log.record(action, i);
    if matches!(action, NodeAction::Start | NodeAction::Restart) {
        // a fresh process starts without the clock and disk faults in force
        super::node_faults::reapply(net, i).await?;
    }
    Ok(())
}

/// Adds a node that joins through `spec.peers`: the checks every backend makes (peers exist, a
/// staked joiner slot is left), then the backend's [`NodeProcesses::provision`]; returns its index.
pub(crate) async fn add_node<B: NodeProcesses>(
    net: &B,
    spec: AddNodeSpec,
) -> Result<usize, ControlError> {
    let core = net.core();
    let _g = core.lock.lock().await;
    core.check_live()?;
    let i = net.node_count();
    if let Some(e) = net.refuses(NodeAction::AddNode, i) {
        return Err(e);
    }
    spec.check_peers(i)?;
    let key_hex = spec.node_key(net.topology(), &core.joiners_used, i)?;
    net.provision(i, key_hex, &spec).await?;
    core.emit(ControlAction::Node {
        action: NodeAction::AddNode,
        node: i,
        detail: Some(format!("peers {:?}, stake {}", spec.peers, spec.stake)),
    });
    core.log.record(NodeAction::AddNode, i);
    Ok(i)
}

/// Node control of every backend that runs nodes: the state machine above over its primitives.
impl<B: NodeProcesses> NodeControl for B {
    fn start(&self, i: usize) -> ControlFuture<'_, ()> {
        Box::pin(act(self, NodeAction::Start, i))
    }
    fn stop(&self, i: usize) -> ControlFuture<'_, ()> {
        Box::pin(act(self, NodeAction::Stop, i))
    }
    fn restart(&self, i: usize) -> ControlFuture<'_, ()> {
        Box::pin(act(self, NodeAction::Restart, i))
    }
    fn kill(&self, i: usize) -> ControlFuture<'_, ()> {
        Box::pin(act(self, NodeAction::Kill, i))
    }
    fn pause(&self, i: usize) -> ControlFuture<'_, ()> {
        Box::pin(act(self, NodeAction::Pause, i))
    }
    fn resume(&self, i: usize) -> ControlFuture<'_, ()> {
        Box::pin(act(self, NodeAction::Resume, i))
    }
    fn add_node(&self, spec: AddNodeSpec) -> ControlFuture<'_, usize> {
        Box::pin(add_node(self, spec))
    }
}
