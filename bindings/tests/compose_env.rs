//! Observability settings pass through the compose deployer, against the real Docker engine: the
//! runner started with the OTLP variables set hands them to every node container (a `localhost` or
//! `127.0.0.1` host rewritten to the run network's gateway, the host as containers see it; any
//! other host kept), the node process itself sees them (it logs them at start), and the testnet's
//! endpoints list the Grafana URL and one line per node.
//!
//! The binary runs as a real process; the containers are inspected with the docker CLI while the
//! run is going (once it prints `running for`), not with our code. Afterwards nothing labelled by
//! the run may be left. The test returns early, with the reason printed, only when `docker info`
//! fails.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod common;

use common::docker::{Running, containers_of, docker, docker_lines, leftovers, no_docker};
use common::fixture;

/// The variables set for the runner: two loopback OTLP endpoints (to be rewritten), an external
/// ingest URL (kept) and a Grafana URL (printed with the endpoints).
const OTLP: &str = "http://localhost:4317";
const OTLP_METRICS: &str = "http://127.0.0.1:4318";
const INGEST: &str = "http://otel.example:4318/v1/metrics";
const GRAFANA: &str = "http://grafana.example:3000";

/// A container's environment as `VAR=value` strings.
fn container_env(name: &str) -> Vec<String> {
    let json = docker(&["inspect", "--format", "{{json .Config.Env}}", name]);
    serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("env of {name} is not a JSON list of strings ({e}): {json}"))
}

/// The IPv4 gateway of a Docker network.
fn gateway(network: &str) -> String {
    let gw = docker_lines(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
        network,
    ])
    .join(" ");
    gw.split_whitespace()
        .find(|g| g.parse::<std::net::Ipv4Addr>().is_ok())
        .unwrap_or_else(|| panic!("network {network} has no IPv4 gateway: {gw:?}"))
        .to_owned()
}

/// The indented lines after a `TESTNET_ENDPOINTS` line in `out`.
fn endpoint_lines(out: &str) -> Option<Vec<String>> {
    let mut lines = out.lines().skip_while(|l| l.trim() != "TESTNET_ENDPOINTS");
    lines.next()?;
    Some(
        lines
            .take_while(|l| l.starts_with(' '))
            .map(|l| l.trim().to_owned())
            .collect(),
    )
}

#[test]
fn observability_env_reaches_containers_and_grafana_prints_with_endpoints() {
    if common::tools::skip_without("docker", no_docker()) {
        return;
    }
    let env = common::Env::new("compose-env-test-").removing(&[
        "LOGOS_BLOCKCHAIN_TESTNET_IMAGE",
        "LOGOS_BLOCKCHAIN_METRICS_QUERY_URL",
        "LOGOS_BLOCKCHAIN_LOG_LEVEL",
        "LOGOS_BLOCKCHAIN_LOG_FILTER",
        "RUST_BACKTRACE",
    ]);
    let mut cmd = env.cmd();
    cmd.args(["run", &fixture("compose_env.rhai"), "--deployer", "compose"])
        .env("LOGOS_BLOCKCHAIN_OTLP_ENDPOINT", OTLP)
        .env("LOGOS_BLOCKCHAIN_OTLP_METRICS_ENDPOINT", OTLP_METRICS)
        .env("LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL", INGEST)
        .env("LOGOS_BLOCKCHAIN_GRAFANA_URL", GRAFANA);
    let started = Instant::now();
    let mut running = Running::spawn(cmd);
    let pid = running.pid;

    // while the run is going: every container's environment and its node's log
    let up = running.wait_line("running for", Duration::from_secs(60));
    let containers = if up { containers_of(pid) } else { Vec::new() };
    let run_ids: BTreeSet<String> = containers.iter().map(|(_, id)| id.clone()).collect();
    let mut inspected = Vec::new();
    for (name, id) in &containers {
        let gw = gateway(&format!("nomos-script-{id}"));
        let envs = container_env(name);
        let logs = docker(&["logs", name]);
        inspected.push((name.clone(), gw, envs, logs));
    }

    let done = running.run_to_end("nomos-script run compose_env.rhai");
    let (code, stdout, stderr) = (done.code, &done.stdout, &done.stderr);
    let run = format!("exit {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    eprintln!("nomos-script ran in {:.1?}", started.elapsed());
    assert!(up, "the run never started: {run}");
    assert_eq!(code, 0, "{run}");
    assert_eq!(containers.len(), 2, "one container per node: {run}");
    assert_eq!(run_ids.len(), 1, "{run}");

    for (name, gw, envs, logs) in &inspected {
        let expected = [
            format!("LOGOS_BLOCKCHAIN_OTLP_ENDPOINT=http://{gw}:4317"),
            format!("LOGOS_BLOCKCHAIN_OTLP_METRICS_ENDPOINT=http://{gw}:4318"),
            format!("LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL={INGEST}"),
        ];
        for e in &expected {
            assert!(envs.contains(e), "{name}: {e} not in its env {envs:?}");
        }
        // a loopback host inside a container would be the container itself
        assert!(
            !envs
                .iter()
                .any(|e| e.contains("://localhost") || e.contains("://127.0.0.1")),
            "{name}: a loopback host left in {envs:?}"
        );
        // the node process saw the rewritten endpoints (it logs them at start)
        for e in &expected[..2] {
            let (var, value) = e.split_once('=').expect("VAR=value");
            let said = format!("{var} = {value} is configured");
            assert!(logs.contains(&said), "{name}: `{said}` not logged:\n{logs}");
        }
    }

    // the endpoints block (written by the run's terminal reporter) lists the Grafana URL and
    // one line per node, naming its container
    let lines = endpoint_lines(stdout)
        .or_else(|| endpoint_lines(stderr))
        .unwrap_or_else(|| panic!("no TESTNET_ENDPOINTS block: {run}"));
    assert!(
        lines.contains(&format!("LOGOS_BLOCKCHAIN_GRAFANA_URL={GRAFANA}")),
        "Grafana URL not among the endpoints {lines:?}"
    );
    let id = run_ids.iter().next().expect("run id");
    for i in 0..2 {
        let node = lines
            .iter()
            .filter(|l| l.starts_with(&format!("node-{i} api http://127.0.0.1:")))
            .collect::<Vec<_>>();
        assert_eq!(node.len(), 1, "node-{i} in endpoints {lines:?}");
        assert!(
            node[0].contains(&format!("container nomos-script-{id}-node-{i}")),
            "{node:?}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("node-2 ")),
        "a third node in endpoints {lines:?}"
    );

    // nothing labelled by the run is left, nor a process or a run dir
    let left = leftovers(pid, &run_ids);
    assert!(left.is_empty(), "left on Docker: {left:?}\n{run}");
    env.assert_clean(0);
}
