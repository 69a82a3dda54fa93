//! Teardown (logs saved when kept, containers, network and volumes removed by label), the
//! last-resort removal on drop, the `run.json` label and container logs.

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, LogsOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions,
};
use futures::StreamExt;

use super::ComposeTestnet;
use super::docker::{LABEL_RUN, is_not_found, label_filter, msg};
use crate::deploy::{DeployError, NodeState, TeardownSummary};

/// Writes `<run dir>/run.json` (the same shape as the local deployer's, so `gc` reads both).
pub(super) fn write_run_json(run_id: &str, run_dir: &Path) {
    let label = serde_json::json!({
        "run_id": run_id,
        "deployer": "compose",
        "owner_pid": std::process::id(),
        "run_dir": run_dir,
        "node_pids": [],
    });
    if let Ok(text) = serde_json::to_string_pretty(&label) {
        let _ = std::fs::write(run_dir.join("run.json"), text);
    }
}

/// A container's output (stdout and stderr, interleaved as Docker stored it), the last `tail`
/// lines or all.
pub async fn container_logs(
    docker: &Docker,
    name: &str,
    tail: Option<usize>,
) -> Result<String, String> {
    let opts = LogsOptions {
        stdout: true,
        stderr: true,
        tail: tail
            .map(|n| n.to_string())
            .unwrap_or_else(|| "all".to_owned()),
        ..Default::default()
    };
    let mut stream = docker.logs(name, Some(opts));
    let mut text = String::new();
    let read = async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(out) => text.push_str(&String::from_utf8_lossy(&out.into_bytes())),
                Err(e) => {
                    return Err(format!(
                        "failed to read the logs of container {name}: {}",
                        msg(&e)
                    ));
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| format!("reading the logs of container {name} took over 10s"))??;
    Ok(text)
}

/// What was removed for one run.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

/// Names of the containers, networks and volumes labelled with `run_id`.
pub async fn list_run_resources(docker: &Docker, run_id: &str) -> Result<Removed, String> {
    let filter = label_filter(&format!("{LABEL_RUN}={run_id}"));
    list_labelled(docker, filter).await
}

/// Containers (with all=true), networks and volumes matching `filters`.
pub async fn list_labelled(
    docker: &Docker,
    filters: std::collections::HashMap<String, Vec<String>>,
) -> Result<Removed, String> {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("failed to list containers: {}", msg(&e)))?;
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(|e| format!("failed to list networks: {}", msg(&e)))?;
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| format!("failed to list volumes: {}", msg(&e)))?;
    Ok(Removed {
        containers: containers
            .into_iter()
            .filter_map(|c| {
                c.names
                    .and_then(|n| n.first().map(|s| s.trim_start_matches('/').to_owned()))
                    .or(c.id)
            })
            .collect(),
        networks: networks
            .into_iter()
            .filter_map(|n| n.name.or(n.id))
            .collect(),
        volumes: volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect(),
    })
}

/// Removes the given containers (forced, with their anonymous volumes), then networks, then
/// volumes. Already-gone resources are fine; anything else is reported.
pub async fn remove_resources(docker: &Docker, what: &Removed) -> Result<(), String> {
    let mut errors = Vec::new();
    let rm = what.containers.iter().map(|name| async move {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match docker.remove_container(name, Some(opts)).await {
            Err(e) if !is_not_found(&e) => Err(format!("container {name}: {}", msg(&e))),
            _ => Ok(()),
        }
    });
    errors.extend(
        futures::future::join_all(rm)
            .await
            .into_iter()
            .filter_map(Result::err),
    );
    for name in &what.networks {
        let mut attempt = 0;
        loop {
            match docker.remove_network(name).await {
                Err(e) if !is_not_found(&e) => {
                    attempt += 1;
                    if attempt >= 5 {
                        errors.push(format!("network {name}: {}", msg(&e)));
                        break;
                    }
                    // endpoints of just-removed containers may linger a moment
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => break,
            }
        }
    }
    for name in &what.volumes {
        if let Err(e) = docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
            .await
            && !is_not_found(&e)
        {
            errors.push(format!("volume {name}: {}", msg(&e)));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("failed to remove {}", errors.join("; ")))
    }
}

/// Removes everything labelled with `run_id` and checks that nothing is left.
pub async fn remove_run(docker: &Docker, run_id: &str) -> Result<Removed, String> {
    let found = list_run_resources(docker, run_id).await?;
    remove_resources(docker, &found).await?;
    let left = list_run_resources(docker, run_id).await?;
    if !left.containers.is_empty() || !left.networks.is_empty() || !left.volumes.is_empty() {
        return Err(format!(
            "still present after removal: containers {:?}, networks {:?}, volumes {:?}",
            left.containers, left.networks, left.volumes
        ));
    }
    Ok(found)
}

/// Writes every container's whole output to `<run dir>/logs/node-<i>.log`.
async fn save_logs(net: &ComposeTestnet) {
    let dir = net.run_dir.join("logs");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let names: Vec<(usize, String)> = net
        .lock_nodes()
        .iter()
        .map(|n| (n.index, n.container.clone()))
        .collect();
    let dir = &dir;
    let reads = names.iter().map(|(i, name)| async move {
        let text = container_logs(&net.docker, name, None)
            .await
            .unwrap_or_else(|e| format!("({e})\n"));
        let _ = std::fs::write(dir.join(format!("node-{i}.log")), text);
    });
    futures::future::join_all(reads).await;
}

pub(super) async fn teardown(
    net: &ComposeTestnet,
    keep: bool,
) -> Result<TeardownSummary, DeployError> {
    let started = Instant::now();
    if net.ctl.begin_teardown() {
        return Ok(TeardownSummary::repeated(
            Some(net.run_dir.clone()),
            net.run_dir.exists(),
        ));
    }
    net.cancel.cancel();
    if let Some(l) = &net.links {
        l.shutdown();
    }
    if keep {
        save_logs(net).await;
    }
    // A graceful stop first, so a kept run dir holds flushed data; paused ones are killed.
    let running: Vec<String> = net
        .lock_nodes()
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .map(|n| n.container.clone())
        .collect();
    let stops = running.iter().map(|name| {
        net.docker.stop_container(
            name,
            Some(StopContainerOptions {
                t: Some(2),
                signal: None,
            }),
        )
    });
    futures::future::join_all(stops).await;
    let removed = remove_run(&net.docker, &net.run_id).await;
    for n in net.lock_nodes().iter_mut() {
        n.state = NodeState::Stopped;
    }
    let removed = removed
        .map(|_| ())
        .map_err(|e| DeployError::teardown(format!("run {}: {e}", net.run_id)));
    let closed = crate::deploy::close_run_dir(&net.run_dir, &net.run_id, keep, || {
        write_run_json(&net.run_id, &net.run_dir);
    });
    removed
        .and(closed)
        .map(|()| TeardownSummary::finished(0, Some(net.run_dir.clone()), keep, started))
}

/// Last resort (dropped without teardown): removes the run's containers, network and volumes
/// from a helper thread with its own runtime (waiting at most 30 s), and the run dir.
pub(super) fn remove_all_now(net: &mut ComposeTestnet) {
    if net.ctl.begin_teardown() {
        return;
    }
    net.cancel.cancel();
    if let Some(l) = &net.links {
        l.shutdown();
    }
    let run_id = net.run_id.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("compose-drop".to_owned())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let result = rt.block_on(async {
                let docker = super::docker::connect().await?;
                remove_run(&docker, &run_id).await
            });
            let _ = tx.send(result);
        });
    if spawned.is_ok() {
        let _ = rx.recv_timeout(Duration::from_secs(30));
    }
    let _ = std::fs::remove_dir_all(&net.run_dir);
}
