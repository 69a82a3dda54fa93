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
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod common;

use common::fixture;

const LABEL_RUN: &str = "nomos-script.run-id";
const LABEL_OWNER: &str = "nomos-script.owner-pid";
/// Longest the runner may take (image build + deploy + run + teardown).
const RUN_DEADLINE: Duration = Duration::from_secs(100);

/// The variables set for the runner: two loopback OTLP endpoints (to be rewritten), an external
/// ingest URL (kept) and a Grafana URL (printed with the endpoints).
const OTLP: &str = "http://localhost:4317";
const OTLP_METRICS: &str = "http://127.0.0.1:4318";
const INGEST: &str = "http://otel.example:4318/v1/metrics";
const GRAFANA: &str = "http://grafana.example:3000";

/// The reason to skip, when no Docker engine answers `docker info`.
fn no_docker() -> Option<String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Some(format!("cannot run `docker info`: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "`docker info` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// Output of a docker CLI command that must succeed (stdout and stderr together for `logs`).
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    docker(args)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Containers, networks and volumes carrying the run-id label and the label `extra`.
fn labelled(extra: &str) -> Vec<String> {
    let run = format!("label={LABEL_RUN}");
    let extra = format!("label={extra}");
    let mut found = Vec::new();
    for (kind, cmd, format) in [
        ("container", &["ps", "-a"][..], "{{.Names}}"),
        ("network", &["network", "ls"][..], "{{.Name}}"),
        ("volume", &["volume", "ls"][..], "{{.Name}}"),
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--filter", &run, "--filter", &extra, "--format", format]);
        found.extend(
            docker_lines(&args)
                .into_iter()
                .map(|name| format!("{kind} {name}")),
        );
    }
    found.sort();
    found.dedup();
    found
}

/// Everything labelled by the runner with pid `pid` or by one of `run_ids`.
fn leftovers(pid: u32, run_ids: &BTreeSet<String>) -> Vec<String> {
    let mut all = labelled(&format!("{LABEL_OWNER}={pid}"));
    for id in run_ids {
        all.extend(labelled(&format!("{LABEL_RUN}={id}")));
    }
    all.sort();
    all.dedup();
    all
}

/// The containers the runner with pid `pid` has now: (name, run id) pairs, by name.
fn containers_of(pid: u32) -> Vec<(String, String)> {
    let owner = format!("label={LABEL_OWNER}={pid}");
    let format = format!("{{{{.Names}}}} {{{{.Label \"{LABEL_RUN}\"}}}}");
    let mut v: Vec<(String, String)> =
        docker_lines(&["ps", "-a", "--filter", &owner, "--format", &format])
            .into_iter()
            .filter_map(|l| {
                let (name, id) = l.split_once(' ')?;
                Some((name.to_owned(), id.to_owned()))
            })
            .collect();
    v.sort();
    v
}

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

/// The runner, going, with stdout and stderr read by threads (stderr lines also sent as they come).
struct Running {
    pid: u32,
    child: Child,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nomos-script");
        let mut stdout = child.stdout.take().expect("stdout");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        let err = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Self {
            pid: child.id(),
            child,
            out,
            err,
            lines,
        }
    }

    /// Waits (up to `within`) for a stderr line starting with `prefix`.
    fn wait_line(&mut self, prefix: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Waits for the runner's exit (killing it past `deadline`) and collects its output.
    fn finish(mut self, deadline: Instant) -> (i32, String, String) {
        let mut killed = false;
        while self.child.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline && !killed {
                let pid = Pid::from_raw(i32::try_from(self.pid).expect("pid"));
                let _ = kill(pid, Signal::SIGKILL);
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let status = self.child.wait().expect("wait");
        let out = self.out.join().unwrap_or_default();
        let mut err = self.err.join().unwrap_or_default();
        if killed {
            err.push_str(&format!("\n(killed: still running after {RUN_DEADLINE:?})"));
        }
        (status.code().unwrap_or(-1), out, err)
    }
}

#[test]
fn observability_env_reaches_containers_and_grafana_prints_with_endpoints() {
    if let Some(reason) = no_docker() {
        eprintln!("skipped: no Docker engine ({reason})");
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

    let (code, stdout, stderr) = running.finish(started + RUN_DEADLINE);
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
    let lines = endpoint_lines(&stdout)
        .or_else(|| endpoint_lines(&stderr))
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
