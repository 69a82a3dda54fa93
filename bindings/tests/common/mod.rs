//! The harness the binary's tests share: the `nomos-script` binary run as a real process with a
//! fresh temp dir as TMPDIR, so the run dirs it leaves (and the node processes, whose command
//! lines name their config inside the run dir) can be found and checked afterwards.

// Each test file is its own crate and uses a part of this module.
#![allow(dead_code)]

pub mod docker;
pub mod live;
pub mod sockets;
/// The same decision as the engine's tests: one file.
#[path = "../../../engine/tests/common/tools.rs"]
pub mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nomos-script");

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A script in bindings/tests/fixtures, as an argument.
pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// The binary with `tmp` as TMPDIR, run from the workspace root, with none of the variables
/// that would point it at other scripts, node binaries or log settings.
pub fn command(tmp: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("TMPDIR", tmp)
        .env_remove("NOMOS_SCRIPT_PATH")
        .env_remove("NOMOS_DEVNODE_BIN")
        .env_remove("LOGOS_BLOCKCHAIN_NODE_BIN")
        .env_remove("LOGOS_BLOCKCHAIN_NODE_KIND")
        .env_remove("LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR")
        .env_remove("LOGOS_BLOCKCHAIN_NODE_CONFIG_TEMPLATE")
        .env_remove("RUST_LOG")
        .current_dir(workspace());
    c
}

/// Runs `cmd` to its end.
pub fn run_command(cmd: &mut Command) -> Run {
    let t = Instant::now();
    let out = cmd.output().expect("run nomos-script");
    Run::new(out, t.elapsed())
}

/// A finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    pub fn new(out: Output, took: Duration) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took,
        }
    }

    /// stdout then stderr, as one text.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The first line of [`Run::output`] that contains `needle`; panics with the output when
    /// none does.
    pub fn line_with(&self, needle: &str) -> String {
        let out = self.output();
        out.lines()
            .find(|l| l.contains(needle))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{out}"))
    }
}

/// The lines of `out` that start with `prefix`, each cut before its ` (planned` note: what a
/// chaos stream planned, without the timings.
pub fn planned(out: &str, prefix: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.split(" (planned").next().unwrap_or(l).to_string())
        .collect()
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

/// One test's fresh temp dir, used as the binary's TMPDIR.
pub struct Env {
    pub tmp: tempfile::TempDir,
    /// Variables removed from the binary's environment besides those [`command`] removes.
    removed: &'static [&'static str],
}

impl Env {
    pub fn new(prefix: &str) -> Self {
        Self {
            tmp: tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("tempdir"),
            removed: &[],
        }
    }

    /// Also removes `vars` from the environment of every command.
    pub fn removing(mut self, vars: &'static [&'static str]) -> Self {
        self.removed = vars;
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes `text` to `name` in the temp dir; returns its path as an argument.
    pub fn script(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// `check` of `bad{i}.rhai`, a script that deploys `nodes` local nodes and then makes `call`
    /// on line 2: it exits 2 and its stderr contains `want`. Returns the run for more checks.
    pub fn check_bad_call(&self, i: usize, nodes: usize, call: &str, want: &str) -> Run {
        let bad = self.script(
            &format!("bad{i}.rhai"),
            &format!(
                "let net = LocalDeployer().deploy(TopologyBuilder().nodes({nodes}));\n{call}\n"
            ),
        );
        let run = self.run(&["check", &bad]);
        assert_eq!(run.code, 2, "{call}: {run:?}");
        assert!(run.stderr.contains(want), "{call}: want {want}: {run:?}");
        run
    }

    /// `check` of a plan whose chaos stream `stream` (as `byzantine()`) needs node control it
    /// did not enable: refused, naming `enable_node_control`.
    pub fn assert_stream_needs_node_control(&self, stream: &str) {
        let refused = self.script(
            "refused.rhai",
            &format!(
                "ScenarioBuilder::topology_with(|t| t.nodes(3)).chaos_with(|c| c.{stream}.apply()).build();\n"
            ),
        );
        let run = self.run(&["check", &refused]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("enable_node_control"), "{run:?}");
    }

    /// Runs `path` with `--seed seed` again: it passes and its chaos lines starting with
    /// `prefix` are `first` ([`planned`]); `what` says what the seed plans.
    pub fn assert_same_plan(
        &self,
        path: &str,
        seed: &str,
        prefix: &str,
        first: &[String],
        what: &str,
    ) {
        let again = self.run(&["run", path, "--seed", seed]);
        assert_eq!(again.code, 0, "{again:?}");
        assert_eq!(
            first,
            planned(&again.output(), prefix),
            "the same seed plans the same {what}"
        );
    }

    pub fn cmd(&self) -> Command {
        let mut c = command(self.tmp.path());
        for var in self.removed {
            c.env_remove(var);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_command(self.cmd().args(args))
    }

    /// `run`; a run on compose (`--deployer compose` among `args`) that lost a published port to
    /// another test is started again ([`run_retrying_port_races`]). Local runs are not: their
    /// callers count the run dirs left, and a retry would leave one more.
    pub fn run_retrying_compose_port_races(&self, args: &[&str]) -> Run {
        if args.contains(&"compose") {
            run_retrying_port_races(self.cmd().args(args))
        } else {
            self.run(args)
        }
    }

    /// [`Env::run_retrying_compose_port_races`] of a run that fails: exit 1; returns its
    /// `FAIL name` line.
    pub fn run_failing(&self, args: &[&str], name: &str) -> String {
        let run = self.run_retrying_compose_port_races(args);
        assert_eq!(run.code, 1, "{run:?}");
        run.line_with(&format!("FAIL {name}"))
    }

    /// `run` of the liveness scenario, 3 s on two nodes, with `--keep`: it passes, and its run
    /// dir is the one left.
    pub fn run_kept_liveness(&self) -> Run {
        let run = self.run(&[
            "run",
            "scenarios/liveness.rhai",
            "--set",
            "duration=3s",
            "--set",
            "nodes=2",
            "--keep",
        ]);
        assert_eq!(run.code, 0, "{run:?}");
        self.assert_clean(1);
        run
    }

    /// `run` with extra environment variables.
    pub fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut c = self.cmd();
        for (k, v) in env {
            c.env(k, v);
        }
        run_command(c.args(args))
    }

    /// Run dirs the runner left in this test's temp dir.
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp.path())
            .expect("read tmp")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("nomos-script-"))
            })
            .collect()
    }

    /// Processes whose command line mentions this test's temp dir (node processes do).
    pub fn processes(&self) -> String {
        let out = Command::new("pgrep")
            .args(["-af", &self.tmp.path().display().to_string()])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// No node process may be left, and the only run dirs are the `expected_kept` ones.
    pub fn assert_clean(&self, expected_kept: usize) {
        // teardown has finished when the runner exits; allow the kernel a moment to reap
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(self.processes(), "", "node processes left behind");
        let dirs = self.run_dirs();
        assert_eq!(dirs.len(), expected_kept, "run dirs left: {dirs:?}");
    }
}

static PORT_RACE_RETRIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One run; a run that could not start because another test took a node's port between the
/// deployer picking it and the node (or Docker) binding it (exit 3, "Address already in use",
/// "port is already allocated") is started
/// again, up to twice (its kept run dir counts in [`port_race_retries`]). A verdict (exit 0 or
/// 1) is never retried.
pub fn run_retrying_port_races(cmd: &mut Command) -> Run {
    let mut run = run_command(cmd);
    for _ in 0..2 {
        if run.code == 3
            && (run.stderr.contains("Address already in use")
                // Docker publishing a container port another process took meanwhile
                || run.stderr.contains("port is already allocated"))
        {
            PORT_RACE_RETRIES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            run = run_command(cmd);
        } else {
            break;
        }
    }
    run
}

/// Runs started again by [`run_retrying_port_races`] in this test binary.
pub fn port_race_retries() -> usize {
    PORT_RACE_RETRIES.load(std::sync::atomic::Ordering::SeqCst)
}

/// Runs `script` once per seed in `seeds`, `jobs` at a time, starting again only a run that
/// could not start for a port race ([`run_retrying_port_races`]); then checks that nothing is
/// left but the run dirs of such runs. Returns one line per run that did not pass.
pub fn seed_matrix(
    env: &Env,
    script: &str,
    seeds: std::ops::RangeInclusive<u64>,
    jobs: usize,
) -> Vec<String> {
    let seeds: Vec<u64> = seeds.collect();
    let mut failures = Vec::new();
    for chunk in seeds.chunks(jobs) {
        let runs: Vec<_> = chunk
            .iter()
            .map(|&seed| {
                let mut cmd = env.cmd();
                let script = script.to_owned();
                std::thread::spawn(move || {
                    let run = run_retrying_port_races(cmd.args([
                        "run",
                        &script,
                        "--seed",
                        &seed.to_string(),
                    ]));
                    (seed, run)
                })
            })
            .collect();
        for h in runs {
            let (seed, run) = h.join().unwrap();
            if run.code != 0 {
                failures.push(format!("seed {seed}: {run:?}"));
            }
        }
    }
    // nothing left but the run dirs of runs that could not start (kept after a deploy error)
    assert_eq!(env.processes(), "", "node processes left behind");
    assert!(
        env.run_dirs().len() <= port_race_retries(),
        "{:?}",
        env.run_dirs()
    );
    failures
}
