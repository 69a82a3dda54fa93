//! The Docker engine connection, resource names and labels, and error wording.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;

/// Label carried by every container, network and volume of a run: the run id.
pub const LABEL_RUN: &str = "nomos-script.run-id";
/// Label naming the node index of a container.
pub const LABEL_NODE: &str = "nomos-script.node";
/// Label naming the pid of the process that owns the run (so `gc` leaves live runs alone).
pub const LABEL_OWNER: &str = "nomos-script.owner-pid";

/// Where the engine is, for messages.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

/// Connects to the engine named by `DOCKER_HOST` (default: the local socket) and
/// negotiates the API version down to the engine's (20.10 speaks 1.41).
pub async fn connect() -> Result<Docker, String> {
    connect_to(&docker_host()).await
}

/// Connects to the engine at `host` (`unix:///path`, `tcp://host:port`, `http://...`).
pub async fn connect_to(host: &str) -> Result<Docker, String> {
    let unreachable = |e: &dyn std::fmt::Display| {
        format!("cannot reach the Docker engine at {host}: {e}: is it running? (DOCKER_HOST)")
    };
    let docker = Docker::connect_with_host(host).map_err(|e| unreachable(&e))?;
    match tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version()).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(unreachable(&e)),
        Err(_) => Err(unreachable(&"no answer within 10s")),
    }
}

/// Name of a run's network.
pub fn network_name(run_id: &str) -> String {
    format!("nomos-script-{run_id}")
}

/// Name of node `i`'s container.
pub fn container_name(run_id: &str, i: usize) -> String {
    format!("nomos-script-{run_id}-node-{i}")
}

/// Labels of a run's resources (`node`: for containers).
pub fn labels(run_id: &str, node: Option<usize>) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_RUN.to_owned(), run_id.to_owned()),
        (LABEL_OWNER.to_owned(), std::process::id().to_string()),
    ]);
    if let Some(i) = node {
        l.insert(LABEL_NODE.to_owned(), i.to_string());
    }
    l
}

/// A `label=...` filter for list calls.
pub fn label_filter(label: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![label.to_owned()])])
}

/// Shortens a Docker error to its message (the engine's text, without the status-code wrapper).
pub fn msg(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (status {status_code})"),
        other => other.to_string(),
    }
}

/// Docker's answer as the cause of a deploy or control error.
pub fn docker_cause(e: &bollard::errors::Error) -> crate::error::Message {
    crate::error::Message(msg(e))
}

/// True when Docker answered 404 (already gone: fine for removals).
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
