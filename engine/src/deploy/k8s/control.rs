//! Node control on pods: restart deletes the pod (the StatefulSet makes a new one with the same
//! name, so the node keeps its address), stop/start scale the StatefulSet to 0/1, kill scales to
//! 0 and deletes the pod with no grace period, add_node creates one more node's objects.
//! Pausing has no Kubernetes equivalent and is refused with the reason.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::K8sTestnet;
use super::manifest::{node_name, peer_addr, pod_name};
use super::provision::{call, create_node, is_not_found, kmsg, render_node};
use super::readiness::{Want, wait_api, wait_pod_gone, wait_pod_ready};
use crate::deploy::control_log::NodeAction;
use crate::deploy::node_control::{ControlCore, NodeProcesses};
use crate::deploy::{AddNodeSpec, ControlError, NodeState};

/// How long a started or restarted node's API may take to answer once its pod is ready.
const API_WITHIN: Duration = Duration::from_secs(20);
/// How long a pod may take to go after a scale to 0 (the pods' grace period is 5 s).
const GONE_WITHIN: Duration = Duration::from_secs(60);

/// The refusal of an action Kubernetes cannot do.
pub(super) fn unsupported(action: &str, i: usize) -> ControlError {
    ControlError::failed(format!(
        "the k8s deployer cannot {action} node-{i}: Kubernetes cannot freeze a pod's processes; use stop/start (scale to 0/1) or kill instead"
    ))
}

fn failed(action: &str, i: usize) -> impl Fn(String) -> ControlError + '_ {
    move |e| ControlError::failed(format!("{action} node-{i}: {e}"))
}

async fn scale(net: &K8sTestnet, i: usize, replicas: i32) -> Result<(), String> {
    let sets: Api<StatefulSet> = Api::namespaced(net.client.clone(), &net.namespace);
    let patch = json!({"spec": {"replicas": replicas}});
    call(
        &format!("scale stateful set {} to {replicas}", node_name(i)),
        sets.patch_scale(
            &node_name(i),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        ),
    )
    .await
    .map(|_| ())
}

async fn delete_pod(net: &K8sTestnet, i: usize, grace: Option<u32>) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(net.client.clone(), &net.namespace);
    let dp = DeleteParams {
        grace_period_seconds: grace,
        ..DeleteParams::default()
    };
    match tokio::time::timeout(
        super::provision::CALL_TIMEOUT,
        pods.delete(&pod_name(i), &dp),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if is_not_found(&e) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "failed to delete pod {}: {}",
            pod_name(i),
            kmsg(&e)
        )),
        Err(_) => Err(format!(
            "failed to delete pod {}: the API server did not answer",
            pod_name(i)
        )),
    }
}

async fn wait_back(
    net: &K8sTestnet,
    i: usize,
    old_uid: Option<&str>,
    action: &str,
) -> Result<(), ControlError> {
    let fail = failed(action, i);
    wait_pod_ready(net, i, old_uid, net.rollout_timeout)
        .await
        .map_err(&fail)?;
    wait_api(net, i, Want::peers(0), Instant::now(), API_WITHIN)
        .await
        .map_err(|e| fail(format!("pod ready, but the API is not answering: {e}")))
}

impl NodeProcesses for K8sTestnet {
    fn core(&self) -> &ControlCore {
        &self.ctl
    }

    fn set_state(&self, i: usize, state: NodeState) {
        if let Some(n) = self.lock_nodes().get_mut(i) {
            n.state = state;
        }
    }

    fn refuses(&self, action: NodeAction, i: usize) -> Option<ControlError> {
        matches!(action, NodeAction::Pause | NodeAction::Resume)
            .then(|| unsupported(&action.to_string(), i))
    }

    async fn halt(&self, i: usize, kill: bool, _paused: bool) -> Result<(), ControlError> {
        let fail = failed(if kill { "kill" } else { "stop" }, i);
        // Scale first: the StatefulSet would otherwise replace a deleted pod at once.
        scale(self, i, 0).await.map_err(&fail)?;
        if kill {
            delete_pod(self, i, Some(0)).await.map_err(&fail)?;
        }
        wait_pod_gone(self, i, GONE_WITHIN).await.map_err(&fail)
    }

    async fn launch(&self, i: usize) -> Result<(), ControlError> {
        scale(self, i, 1).await.map_err(failed("start", i))?;
        self.set_state(i, NodeState::Running);
        wait_back(self, i, None, "start").await
    }

    /// Deletes the pod (graceful), then waits for its replacement to be ready and answering.
    async fn relaunch(&self, i: usize, _paused: bool) -> Result<(), ControlError> {
        let fail = failed("restart", i);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let old = call(
            &format!("read pod {}", pod_name(i)),
            pods.get_opt(&pod_name(i)),
        )
        .await
        .map_err(&fail)?
        .and_then(|p| p.metadata.uid);
        delete_pod(self, i, None).await.map_err(&fail)?;
        wait_back(self, i, old.as_deref(), "restart").await
    }

    async fn freeze(&self, i: usize, freeze: bool) -> Result<(), ControlError> {
        Err(unsupported(if freeze { "pause" } else { "resume" }, i))
    }

    /// Creates node `i`'s objects (its policies cover it too) and waits until it is ready.
    async fn provision(
        &self,
        i: usize,
        key_hex: String,
        spec: &AddNodeSpec,
    ) -> Result<(), ControlError> {
        let net = self;
        let peers = spec.peers.iter().map(|&p| peer_addr(p)).collect();
        let fail = failed("add", i);
        let m = render_node(net, i, key_hex, peers, spec.overrides.clone())
            .map_err(|e| fail(e.to_string()))?;
        let node = create_node(net, &m, spec.peers.len())
            .await
            .map_err(|e| fail(e.to_string()))?;
        net.lock_nodes().push(node);
        // Faults in force cover the new node too (a partition's unnamed group, say).
        super::faults::sync_policies(net)
            .await
            .map_err(ControlError::failed)?;
        wait_pod_ready(net, i, None, net.rollout_timeout)
            .await
            .map_err(&fail)?;
        wait_api(
            net,
            i,
            Want::peers(spec.peers.len()),
            Instant::now(),
            API_WITHIN,
        )
        .await
        .map_err(|e| fail(format!("added, but not ready: {e}")))
    }
}
