//! Readiness: first the rollout (every StatefulSet reports its pod ready, within the rollout
//! timeout; a pod that cannot pull its image or crash-loops fails at once), then the local
//! deployer's criteria through each node API (API up, expected peers connected, height >= 1),
//! within the run's deadline. Every failure carries the last lines of every pod's log.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use super::K8sTestnet;
use super::cleanup::pod_logs;
use super::manifest::{node_name, pod_name};
use super::provision::{call, is_not_found};
use crate::deploy::readiness::{Polling, Unready, poll_ready};
use crate::deploy::{DeployError, NodeState, Testnet, one_line};

/// Log lines of each pod quoted in a readiness error.
pub(super) const LOG_LINES: usize = 10;

pub(super) use crate::deploy::readiness::Want;

/// Probes go through forwarded ports (named in errors); whether the pod failed for good is an
/// API call, checked after a failed probe every 2 s at most.
fn polling(net: &K8sTestnet) -> Polling {
    Polling {
        request_timeout: Duration::from_secs(2),
        interval: net.poll.min(Duration::from_millis(250)),
        gone_check_every: Some(Duration::from_secs(2)),
        name_url: true,
    }
}

pub(super) async fn wait_all(net: &K8sTestnet, deadline: Duration) -> Result<(), DeployError> {
    let targets: Vec<(usize, usize)> = net
        .lock_nodes()
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .map(|n| (n.index, n.expected_peers))
        .collect();
    let indices: Vec<usize> = targets.iter().map(|t| t.0).collect();
    let rollout_started = Instant::now();
    let rolled = futures::future::join_all(
        indices
            .iter()
            .map(|&i| wait_rollout(net, i, rollout_started, net.rollout_timeout)),
    )
    .await;
    let failures: Vec<(usize, String)> = indices
        .iter()
        .zip(rolled)
        .filter_map(|(&i, r)| r.err().map(|e| (i, e)))
        .collect();
    if !failures.is_empty() {
        return Err(not_ready(net, net.rollout_timeout, failures).await);
    }
    let start = Instant::now();
    let probes = targets.iter().map(|&(i, peers)| {
        wait_api(
            net,
            i,
            Want {
                peers,
                min_height: 1,
                online: net.kind.ready_when_online(),
            },
            start,
            deadline,
        )
    });
    let results = futures::future::join_all(probes).await;
    let failures: Vec<(usize, String)> = indices
        .iter()
        .zip(results)
        .filter_map(|(&i, r)| r.err().map(|e| (i, e)))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(not_ready(net, deadline, failures).await)
    }
}

/// The readiness error: each failing node with its reason and log tail, then the log tails of
/// the other pods (a peer's log often explains why a node has no peers).
async fn not_ready(
    net: &K8sTestnet,
    waited: Duration,
    failures: Vec<(usize, String)>,
) -> DeployError {
    let count = net.node_count();
    let tails =
        futures::future::join_all((0..count).map(|i| pod_logs(net, i, Some(LOG_LINES)))).await;
    let tail = |i: usize| match &tails[i] {
        Ok(t) => one_line(t),
        Err(e) => format!("(no logs: {e})"),
    };
    let mut nodes: Vec<String> = failures
        .iter()
        .map(|(i, why)| format!("{why}; last log lines of {}: {}", pod_name(*i), tail(*i)))
        .collect();
    let others: Vec<String> = (0..count)
        .filter(|i| !failures.iter().any(|(f, _)| f == i))
        .map(|i| format!("{}: {}", pod_name(i), tail(i)))
        .collect();
    if !others.is_empty() {
        nodes.push(format!(
            "last log lines of the other pods: {}",
            others.join(" / ")
        ));
    }
    nodes.push(format!(
        "see `kubectl -n {} get pods` (keep the namespace with K8S_RUNNER_PRESERVE=1)",
        net.namespace
    ));
    DeployError::NotReady { waited, nodes }
}

/// A pod problem that will not go away by waiting (bad image, crash loop, bad config).
fn fatal_reason(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Failed") {
        return Some(format!(
            "pod {} failed: {}",
            pod.metadata.name.as_deref().unwrap_or("?"),
            status.message.as_deref().unwrap_or("no message")
        ));
    }
    for c in status.container_statuses.iter().flatten() {
        let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = w.reason.as_deref().unwrap_or("");
        if matches!(
            reason,
            "ErrImagePull"
                | "ImagePullBackOff"
                | "InvalidImageName"
                | "ErrImageNeverPull"
                | "CrashLoopBackOff"
                | "CreateContainerConfigError"
                | "CreateContainerError"
                | "RunContainerError"
        ) {
            let mut restarts = if c.restart_count > 0 {
                format!(" after {} restarts", c.restart_count)
            } else {
                String::new()
            };
            // a crash loop's last run: how it ended
            if let Some(t) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                restarts.push_str(&format!(", last exit code {}", t.exit_code));
                if let Some(sig) = t.signal {
                    restarts.push_str(&format!(" (signal {sig})"));
                }
            }
            return Some(format!(
                "container {} is waiting: {reason}{restarts}: {}",
                c.name,
                w.message.as_deref().unwrap_or("no message")
            ));
        }
    }
    None
}

/// Why a pod is not ready yet (for the timeout message).
fn pending_reason(pod: &Pod) -> String {
    let Some(status) = pod.status.as_ref() else {
        return "no status yet".to_owned();
    };
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled" && c.status == "False" {
            return format!(
                "not scheduled: {}",
                c.message.as_deref().unwrap_or("no message")
            );
        }
    }
    for c in status.container_statuses.iter().flatten() {
        if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            return format!(
                "container {} waiting: {}",
                c.name,
                w.reason.as_deref().unwrap_or("no reason")
            );
        }
        if !c.ready {
            return format!("container {} not ready", c.name);
        }
    }
    format!("phase {}", status.phase.as_deref().unwrap_or("unknown"))
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Checks node `i`'s pod: Err(reason) when it can no longer become ready.
pub(super) async fn pod_fatal(net: &K8sTestnet, i: usize) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(net.client.clone(), &net.namespace);
    match tokio::time::timeout(super::provision::CALL_TIMEOUT, pods.get_opt(&pod_name(i))).await {
        Ok(Ok(Some(pod))) => match fatal_reason(&pod) {
            Some(r) => Err(format!("node-{i} ({r})")),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Waits until node `i`'s StatefulSet reports its pod ready.
async fn wait_rollout(
    net: &K8sTestnet,
    i: usize,
    start: Instant,
    within: Duration,
) -> Result<(), String> {
    let sets: Api<StatefulSet> = Api::namespaced(net.client.clone(), &net.namespace);
    let pods: Api<Pod> = Api::namespaced(net.client.clone(), &net.namespace);
    let name = node_name(i);
    loop {
        let set = call(
            &format!("read stateful set {name} in {}", net.namespace),
            sets.get(&name),
        )
        .await
        .map_err(|e| format!("node-{i} ({e})"))?;
        let status = set.status.unwrap_or_default();
        let generation_seen = match (set.metadata.generation, status.observed_generation) {
            (Some(g), Some(o)) => o >= g,
            _ => true,
        };
        if generation_seen && status.ready_replicas.unwrap_or(0) >= 1 {
            return Ok(());
        }
        let pod = tokio::time::timeout(super::provision::CALL_TIMEOUT, pods.get_opt(&pod_name(i)))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        if let Some(reason) = pod.as_ref().and_then(fatal_reason) {
            return Err(format!("node-{i} (rollout failed: {reason})"));
        }
        if start.elapsed() >= within {
            let why = pod
                .as_ref()
                .map(pending_reason)
                .unwrap_or_else(|| format!("pod {} not created", pod_name(i)));
            return Err(format!(
                "node-{i} (rollout not done after {}: {why})",
                humantime::format_duration(within)
            ));
        }
        tokio::time::sleep(net.poll).await;
    }
}

/// Waits until node `i`'s pod is ready and is not the pod `old_uid` (a restart's old pod).
pub(super) async fn wait_pod_ready(
    net: &K8sTestnet,
    i: usize,
    old_uid: Option<&str>,
    within: Duration,
) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(net.client.clone(), &net.namespace);
    let name = pod_name(i);
    let start = Instant::now();
    loop {
        let pod = call(
            &format!("read pod {name} in {}", net.namespace),
            pods.get_opt(&name),
        )
        .await?;
        let why = match &pod {
            None => "pod not created yet".to_owned(),
            Some(p) if old_uid.is_some() && p.metadata.uid.as_deref() == old_uid => {
                "old pod still terminating".to_owned()
            }
            Some(p) => {
                if let Some(r) = fatal_reason(p) {
                    return Err(r);
                }
                if pod_ready(p) {
                    return Ok(());
                }
                pending_reason(p)
            }
        };
        if start.elapsed() >= within {
            return Err(format!(
                "pod {name} not ready after {}: {why}",
                humantime::format_duration(within)
            ));
        }
        tokio::time::sleep(net.poll).await;
    }
}

/// Waits until node `i`'s pod is gone (after a scale to 0).
pub(super) async fn wait_pod_gone(
    net: &K8sTestnet,
    i: usize,
    within: Duration,
) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(net.client.clone(), &net.namespace);
    let name = pod_name(i);
    let gone = crate::wait::poll(within, net.poll, || async {
        match tokio::time::timeout(super::provision::CALL_TIMEOUT, pods.get(&name)).await {
            Ok(Err(e)) if is_not_found(&e) => Some(Ok(())),
            Ok(Err(e)) => Some(Err(format!(
                "failed to read pod {name}: {}",
                super::provision::kmsg(&e)
            ))),
            _ => None,
        }
    })
    .await;
    gone.unwrap_or_else(|| {
        Err(format!(
            "pod {name} still exists {} after it was told to go",
            humantime::format_duration(within)
        ))
    })
}

/// Polls node `i`'s API until it shows `want`, its pod fails for good, or the deadline passes.
pub(super) async fn wait_api(
    net: &K8sTestnet,
    i: usize,
    want: Want,
    start: Instant,
    deadline: Duration,
) -> Result<(), String> {
    poll_ready(
        i,
        want,
        start,
        deadline,
        polling(net),
        net.ctl.events.as_ref(),
        || net.lock_nodes().get(i).map(|n| n.client.clone()),
        || async move { pod_fatal(net, i).await.map_err(Unready::Late) },
    )
    .await
    .map_err(|e| e.to_string())
}
