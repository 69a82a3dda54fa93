//! Teardown (pod logs saved when kept, then the namespace deleted, or in a shared namespace
//! every object labelled with the run id), the last-resort deletion on drop, pod logs, and
//! `gc` of namespaces that killed runs left.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, LogParams};
use serde::Serialize;

use super::K8sTestnet;
use super::manifest::{LABEL_HOST, LABEL_OWNER, LABEL_RUN, pod_name};
use super::provision::{CALL_TIMEOUT, call, is_not_found, kmsg};
use crate::deploy::{DeployError, TeardownSummary, Testnet};
use crate::report::RunEvent;

/// How long teardown waits for the namespace to disappear.
const NAMESPACE_GONE_WITHIN: Duration = Duration::from_secs(60);

/// The last `tail` lines of node `i`'s container (all when None). A pod whose container is
/// waiting to restart answers with the previous container's output.
pub(super) async fn pod_logs(
    net: &K8sTestnet,
    i: usize,
    tail: Option<usize>,
) -> Result<String, String> {
    let pods: Api<Pod> = Api::namespaced(net.client.clone(), &net.namespace);
    let name = pod_name(i);
    let lp = LogParams {
        container: Some("node".to_owned()),
        tail_lines: tail.map(|t| t as i64),
        ..LogParams::default()
    };
    let current = call(
        &format!("read the logs of pod {name}"),
        pods.logs(&name, &lp),
    )
    .await;
    match current {
        Ok(text) if !text.trim().is_empty() => Ok(text),
        other => {
            let previous = LogParams {
                previous: true,
                ..lp
            };
            match call(
                &format!("read the previous logs of pod {name}"),
                pods.logs(&name, &previous),
            )
            .await
            {
                Ok(text) if !text.trim().is_empty() => Ok(text),
                _ => other,
            }
        }
    }
}

/// Writes every pod's whole log to `<temp>/nomos-script-<run id>/logs/node-<i>.log`.
async fn save_logs(net: &K8sTestnet) -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir()
        .join(format!("nomos-script-{}", net.run_id))
        .join("logs");
    std::fs::create_dir_all(&dir).ok()?;
    let n = net.node_count();
    let reads = (0..n).map(|i| async move {
        let text = pod_logs(net, i, None)
            .await
            .unwrap_or_else(|e| format!("({e})\n"));
        (i, text)
    });
    for (i, text) in futures::future::join_all(reads).await {
        let _ = std::fs::write(dir.join(format!("node-{i}.log")), text);
    }
    dir.parent().map(|p| p.to_path_buf())
}

/// Deletes every object labelled with the run id in a namespace the run does not own.
async fn delete_labelled(client: &kube::Client, ns: &str, run_id: &str) -> Result<(), String> {
    let lp = ListParams::default().labels(&format!("{LABEL_RUN}={run_id}"));
    let dp = DeleteParams::background();
    let mut errors = Vec::new();
    macro_rules! sweep {
        ($t:ty, $what:literal) => {{
            let api: Api<$t> = Api::namespaced(client.clone(), ns);
            match call(&format!("list {} in {ns}", $what), api.list(&lp)).await {
                Ok(list) => {
                    for o in list.items {
                        let name = o.metadata.name.unwrap_or_default();
                        match tokio::time::timeout(CALL_TIMEOUT, api.delete(&name, &dp)).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) if is_not_found(&e) => {}
                            Ok(Err(e)) => errors.push(format!("{} {name}: {}", $what, kmsg(&e))),
                            Err(_) => errors.push(format!("{} {name}: no answer", $what)),
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }};
    }
    sweep!(StatefulSet, "stateful set");
    sweep!(Service, "service");
    sweep!(ConfigMap, "config map");
    sweep!(NetworkPolicy, "network policy");
    sweep!(PersistentVolumeClaim, "persistent volume claim");
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("failed to delete {}", errors.join("; ")))
    }
}

/// Deletes a namespace and waits (bounded) until the API server no longer has it.
async fn delete_namespace(
    client: &kube::Client,
    ns: &str,
    poll: Option<Duration>,
) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    match tokio::time::timeout(CALL_TIMEOUT, api.delete(ns, &DeleteParams::background())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if is_not_found(&e) => return Ok(()),
        Ok(Err(e)) => return Err(format!("failed to delete namespace {ns}: {}", kmsg(&e))),
        Err(_) => {
            return Err(format!(
                "failed to delete namespace {ns}: the API server did not answer"
            ));
        }
    }
    let Some(poll) = poll else {
        return Ok(());
    };
    let start = Instant::now();
    loop {
        match tokio::time::timeout(CALL_TIMEOUT, api.get_opt(ns)).await {
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) if is_not_found(&e) => return Ok(()),
            _ => {}
        }
        if start.elapsed() >= NAMESPACE_GONE_WITHIN {
            return Err(format!(
                "namespace {ns} still terminating {}s after its deletion (check `kubectl get namespace {ns} -o yaml` for finalizers)",
                NAMESPACE_GONE_WITHIN.as_secs()
            ));
        }
        tokio::time::sleep(poll).await;
    }
}

pub(super) async fn teardown(net: &K8sTestnet, keep: bool) -> Result<TeardownSummary, DeployError> {
    let started = Instant::now();
    if net.ctl.begin_teardown() {
        let saved = net
            .saved_logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        return Ok(TeardownSummary::repeated(saved, keep));
    }
    net.cancel.cancel();
    let ns = &net.namespace;
    let saved = if keep { save_logs(net).await } else { None };
    *net.saved_logs.lock().unwrap_or_else(|e| e.into_inner()) = saved.clone();
    let hint = format!("kubectl -n {ns} logs {}", pod_name(0));
    let result = if net.preserve {
        net.emit(RunEvent::Note {
            message: format!(
                "k8s: namespace {ns} kept (K8S_RUNNER_PRESERVE): `kubectl -n {ns} get pods`, `{hint}`; remove it with `kubectl delete namespace {ns}`"
            ),
        });
        Ok(())
    } else {
        let r = if net.owns_namespace {
            delete_namespace(&net.client, ns, Some(net.poll)).await
        } else {
            delete_labelled(&net.client, ns, &net.run_id).await
        };
        let logs = match &saved {
            Some(dir) => format!("pod logs saved in {}", dir.join("logs").display()),
            None => format!("set K8S_RUNNER_PRESERVE=1 to keep it for `{hint}`"),
        };
        let what = if net.owns_namespace {
            format!("namespace {ns} deleted")
        } else {
            format!("objects of run {} deleted from namespace {ns}", net.run_id)
        };
        net.emit(RunEvent::Note {
            message: format!("k8s: {what}; {logs}"),
        });
        r
    };
    for n in net.lock_nodes().iter_mut() {
        n.state = crate::deploy::NodeState::Stopped;
    }
    result
        .map_err(|e| DeployError::teardown(format!("run {}: {e}", net.run_id)))
        .map(|()| TeardownSummary::finished(0, saved, keep, started))
}

/// Last resort (dropped without teardown): deletes the run's objects from a helper thread with
/// its own runtime, waiting at most 15 s.
pub(super) fn remove_on_drop(net: &mut K8sTestnet) {
    if net.ctl.begin_teardown() {
        return;
    }
    net.cancel.cancel();
    if net.preserve {
        return;
    }
    let client = net.client.clone();
    let ns = net.namespace.clone();
    let run_id = net.run_id.clone();
    let owns = net.owns_namespace;
    // The client's request queue is served by a task on the deploy's runtime: on a
    // single-threaded runtime, blocking this thread would starve it, so hand the deletion to
    // that runtime instead of waiting.
    if let Ok(h) = tokio::runtime::Handle::try_current()
        && h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
    {
        h.spawn(async move {
            let r = if owns {
                let api: Api<Namespace> = Api::all(client.clone());
                api.delete(&ns, &DeleteParams::background())
                    .await
                    .map(|_| ())
                    .map_err(|e| kmsg(&e))
            } else {
                delete_labelled(&client, &ns, &run_id).await
            };
            if let Err(e) = r {
                tracing::warn!("k8s: deleting {ns} after a dropped testnet: {e}");
            }
        });
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("k8s-drop".to_owned())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let r = rt.block_on(async {
                let api: Api<Namespace> = Api::all(client.clone());
                if owns {
                    api.delete(&ns, &DeleteParams::background())
                        .await
                        .map(|_| ())
                        .map_err(|e| kmsg(&e))
                } else {
                    delete_labelled(&client, &ns, &run_id).await
                }
            });
            let _ = tx.send(r);
        });
    if spawned.is_ok() {
        let _ = rx.recv_timeout(Duration::from_secs(15));
    }
}

/// What `gc` found on the cluster.
#[derive(Debug, Clone, Default, Serialize)]
pub struct K8sGcReport {
    /// True when nothing was deleted (only listed).
    pub dry_run: bool,
    /// Namespaces deleted (or, in a dry run, that would be).
    pub namespaces: Vec<String>,
    /// Namespaces of runs whose owner still runs, or that belong to another host.
    pub skipped: Vec<String>,
    pub errors: Vec<String>,
}

fn owner_gone(pid: &str) -> bool {
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if pid as u32 == std::process::id() {
        return true;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
}

/// Deletes namespaces labelled `nomos-script.run-id` whose owner ran on this host and is gone
/// (the calling process counts as gone: gc runs from a process that owns no testnet). Namespaces
/// applied by hand (no owner label) and those of other hosts are left alone. `client`: None
/// makes one from the environment; Err when no cluster answers.
pub async fn gc(client: Option<kube::Client>, dry_run: bool) -> Result<K8sGcReport, String> {
    let client = match client {
        Some(c) => c,
        None => super::provision::client(&super::K8sDeployer::new())
            .await
            .map_err(|e| e.to_string())?,
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let api: Api<Namespace> = Api::all(client.clone());
    let list = call(
        "list namespaces labelled nomos-script.run-id",
        api.list(&ListParams::default().labels(LABEL_RUN)),
    )
    .await?;
    let mut report = K8sGcReport {
        dry_run,
        ..K8sGcReport::default()
    };
    for ns in list.items {
        let name = ns.metadata.name.unwrap_or_default();
        let labels = ns.metadata.labels.unwrap_or_default();
        let ours = labels.get(LABEL_HOST).is_some_and(|h| *h == host);
        let gone = labels.get(LABEL_OWNER).is_some_and(|p| owner_gone(p));
        if !(ours && gone) {
            report.skipped.push(name);
            continue;
        }
        if !dry_run && let Err(e) = delete_namespace(&client, &name, None).await {
            report.errors.push(e);
            continue;
        }
        report.namespaces.push(name);
    }
    Ok(report)
}
