//! The `nomos-script` binary with `--deployer compose`, against the real Docker engine: the
//! scenarios pass on containers as they do on local processes, a halted node fails the run naming
//! it, and nothing labelled by us is left after a run or after a killed runner and `gc`.
//!
//! Every test gets a fresh temp dir as TMPDIR (run dirs land there) and runs the binary as a real
//! process. What the runner left on Docker is checked with the docker CLI, not with our code:
//! containers, networks and volumes carrying the `nomos-script.run-id` label and the runner's pid
//! as `nomos-script.owner-pid` (so concurrent runs of other tests do not interfere), and by each
//! run id seen while the run was going. Watching the containers during the run also proves the
//! run used Docker at all.
//!
//! The node image is built from this binary on first use (a few seconds), then reused. Tests
//! return early, with the reason printed, only when `docker info` fails.

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
/// Longest any single runner may take here (image build + deploy + run + teardown).
const RUN_DEADLINE: Duration = Duration::from_secs(100);

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

macro_rules! require_docker {
    () => {
        if let Some(reason) = no_docker() {
            eprintln!("skipped: no Docker engine ({reason})");
            return;
        }
    };
}

/// Output lines of a docker CLI command that must succeed.
fn docker_lines(args: &[&str]) -> Vec<String> {
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
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Containers, networks and volumes carrying the run-id label and the label `extra` (either a
/// `key=value` or a bare key), as "kind name" lines.
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

/// The containers the runner with pid `pid` has now: (name, run id) pairs.
fn containers_of(pid: u32) -> Vec<(String, String)> {
    let owner = format!("label={LABEL_OWNER}={pid}");
    let format = format!("{{{{.Names}}}} {{{{.Label \"{LABEL_RUN}\"}}}}");
    docker_lines(&["ps", "-a", "--filter", &owner, "--format", &format])
        .into_iter()
        .filter_map(|l| {
            let (name, id) = l.split_once(' ')?;
            Some((name.to_owned(), id.to_owned()))
        })
        .collect()
}

/// The shared temp-dir harness, with the image variable removed too (the tests build and use
/// the default image) and no stdin.
struct Env {
    base: common::Env,
}

impl Env {
    fn new() -> Self {
        Self {
            base: common::Env::new("compose-cli-test-")
                .removing(&["LOGOS_BLOCKCHAIN_TESTNET_IMAGE", "RUST_BACKTRACE"]),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = self.base.cmd();
        c.stdin(Stdio::null());
        c
    }

    /// Starts the runner with stdout and stderr read by threads; stderr lines are also sent on
    /// the returned channel as they come.
    fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .cmd()
            .args(args)
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
        Running {
            pid: child.id(),
            child,
            out,
            err,
            lines,
            run_ids: BTreeSet::new(),
            most_containers: 0,
        }
    }

    /// Runs the runner to its end, watching its containers while it goes.
    fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let mut running = self.spawn(args);
        loop {
            running.watch();
            if running.child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if started.elapsed() > RUN_DEADLINE {
                running.kill();
                let run = running.finish();
                panic!("nomos-script {args:?} still running after {RUN_DEADLINE:?}: {run:?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let run = running.finish();
        eprintln!(
            "nomos-script {args:?}: exit {} in {:.1?}",
            run.code,
            started.elapsed()
        );
        run
    }

    /// Nothing labelled by the run is left on Docker, no process mentions the temp dir, and the
    /// only run dirs are the `expected_kept` ones.
    fn assert_clean(&self, run: &Run, expected_kept: usize) {
        let left = leftovers(run.pid, &run.run_ids);
        assert!(left.is_empty(), "left on Docker: {left:?}\n{run:?}");
        assert_eq!(self.base.processes(), "", "processes left behind");
        let dirs = self.base.run_dirs();
        assert_eq!(dirs.len(), expected_kept, "run dirs left: {dirs:?}");
    }
}

/// A runner still going.
struct Running {
    pid: u32,
    child: Child,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
    lines: mpsc::Receiver<String>,
    run_ids: BTreeSet<String>,
    most_containers: usize,
}

impl Running {
    /// Notes the runner's containers and their run ids.
    fn watch(&mut self) {
        let now = containers_of(self.pid);
        self.most_containers = self.most_containers.max(now.len());
        self.run_ids.extend(now.into_iter().map(|(_, id)| id));
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

    fn kill(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.pid).expect("pid"));
        let _ = kill(pid, Signal::SIGKILL);
    }

    fn finish(mut self) -> Run {
        let status = self.child.wait().expect("wait");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.out.join().unwrap_or_default(),
            stderr: self.err.join().unwrap_or_default(),
            pid: self.pid,
            run_ids: self.run_ids,
            most_containers: self.most_containers,
        }
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// The runner's pid (the owner-pid label of what it created).
    pid: u32,
    /// Run ids of the containers seen while it ran.
    run_ids: BTreeSet<String>,
    /// Most containers of this runner seen at once.
    most_containers: usize,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} (pid {}, run ids {:?}, up to {} containers)\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.pid, self.run_ids, self.most_containers, self.stdout, self.stderr
        )
    }
}

#[test]
fn liveness_passes_on_compose_and_leaves_nothing() {
    require_docker!();
    let env = Env::new();
    let run = env.run(&[
        "run",
        "scenarios/liveness.rhai",
        "--deployer",
        "compose",
        "--set",
        "duration=6s",
        "--seed",
        "11",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.most_containers, 3, "one container per node: {run:?}");
    assert_eq!(run.run_ids.len(), 1, "{run:?}");
    assert!(run.stderr.contains("compose deployer"), "{run:?}");
    assert!(run.stdout.contains("passed (seed 11"), "{run:?}");
    assert!(run.stderr.contains("pass consensus_liveness"), "{run:?}");
    assert!(run.stderr.contains("pass tx_inclusion"), "{run:?}");
    env.assert_clean(&run, 0);
}

#[test]
fn chaos_restart_passes_on_compose() {
    require_docker!();
    let env = Env::new();
    let run = env.run(&[
        "run",
        "scenarios/chaos_restart.rhai",
        "--deployer",
        "compose",
        "--set",
        "duration=7s",
        "--set",
        "min_delay=1s",
        "--set",
        "max_delay=2s",
        "--set",
        "target_cooldown=3s",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.most_containers, 4, "one container per node: {run:?}");
    assert!(run.stderr.contains("compose deployer"), "{run:?}");
    // the run's timeline shows restarts done through the deployer's node control
    let restarts = run
        .stderr
        .lines()
        .filter_map(|l| l.trim_start().split_once(' '))
        .filter(|(at, what)| {
            at.strip_suffix('s')
                .is_some_and(|t| t.parse::<f64>().is_ok())
                && what.starts_with("restart node-")
        })
        .count();
    assert!(restarts >= 1, "no restart in the timeline: {run:?}");
    assert!(run.stderr.contains("pass consensus_liveness"), "{run:?}");
    env.assert_clean(&run, 0);
}

#[test]
fn partition_heal_converges_on_compose() {
    require_docker!();
    let env = Env::new();
    let run = env.run(&[
        "run",
        "scenarios/partition_heal.rhai",
        "--deployer",
        "compose",
        "--set",
        "split_for=2s",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // `--deployer compose` moves `plan.run()` only: a script naming `LocalDeployer()` stays local
    assert_eq!(
        run.most_containers, 4,
        "partition_heal.rhai did not run on containers: {run:?}"
    );
    assert!(run.stdout.contains("while split: "), "{run:?}");
    assert!(run.stdout.contains("after heal: "), "{run:?}");
    env.assert_clean(&run, 0);
}

#[test]
fn a_halted_node_fails_on_compose_naming_it() {
    require_docker!();
    let env = Env::new();
    let run = env.run(&[
        "run",
        &fixture("compose_one_halted.rhai"),
        "--deployer",
        "compose",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.most_containers, 3, "{run:?}");
    assert!(run.stderr.contains("compose deployer"), "{run:?}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        line.contains("scenario failed: consensus_liveness failed"),
        "{run:?}"
    );
    assert!(line.contains("node-2 height 3 <"), "{run:?}");
    assert!(!line.contains("node-0 height"), "{run:?}");
    assert!(!line.contains("node-1 height"), "{run:?}");
    assert!(
        run.stderr.contains("compose_one_halted.rhai:8:6"),
        "{run:?}"
    );
    // a failed run keeps its run dir, with every container's log in it
    env.assert_clean(&run, 1);
    let dir = env.base.run_dirs().remove(0);
    assert!(run.stderr.contains(&dir.display().to_string()), "{run:?}");
    for i in 0..3 {
        let log = dir.join(format!("logs/node-{i}.log"));
        let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} missing or empty", log.display());
    }
    assert!(dir.join("docker-compose.yml").is_file());
}

#[test]
fn a_killed_runner_leaves_containers_that_gc_removes() {
    require_docker!();
    let env = Env::new();
    let mut running = env.spawn(&[
        "run",
        &fixture("compose_long_run.rhai"),
        "--deployer",
        "compose",
    ]);
    if !running.wait_line("running for", Duration::from_secs(60)) {
        running.kill();
        let run = running.finish();
        panic!("the run never started: {run:?}");
    }
    running.watch();
    std::thread::sleep(Duration::from_millis(500));
    running.kill();
    let killed = running.finish();
    assert_eq!(killed.code, -1, "killed by a signal: {killed:?}");
    assert_eq!(killed.most_containers, 2, "{killed:?}");
    let id = killed.run_ids.iter().next().expect("run id").clone();

    // the kill left the run behind: the check sees it (so it would see a leaky teardown too)
    let left = leftovers(killed.pid, &killed.run_ids);
    for expected in [
        format!("container nomos-script-{id}-node-0"),
        format!("container nomos-script-{id}-node-1"),
        format!("network nomos-script-{id}"),
    ] {
        assert!(left.contains(&expected), "{expected} not found: {left:?}");
    }
    assert_eq!(env.base.run_dirs().len(), 1, "the killed run's dir");

    let started = Instant::now();
    let gc = env.run(&["gc"]);
    eprintln!("gc took {:.1?}:\n{}", started.elapsed(), gc.stdout);
    assert_eq!(gc.code, 0, "{gc:?}");
    for expected in [
        format!("removed container nomos-script-{id}-node-0"),
        format!("removed container nomos-script-{id}-node-1"),
        format!("removed network nomos-script-{id}"),
        "removed run dir ".to_owned(),
    ] {
        assert!(gc.stdout.contains(&expected), "{expected}: {gc:?}");
    }
    env.assert_clean(&killed, 0);

    // a second gc finds nothing of this run
    let again = env.run(&["gc", "--dry-run"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(!again.stdout.contains(&id), "{again:?}");
}
