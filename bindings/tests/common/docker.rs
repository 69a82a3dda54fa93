//! The Docker side of the harness: the runner spawned with its output read by threads, its
//! containers watched while it goes, and what it left on Docker found with the docker CLI (not
//! with our code) by the `nomos-script.run-id` label plus the runner's pid or a run id.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const LABEL_RUN: &str = "nomos-script.run-id";
pub const LABEL_OWNER: &str = "nomos-script.owner-pid";
/// Longest any single runner may take here (image build + deploy + run + teardown).
pub const RUN_DEADLINE: Duration = Duration::from_secs(100);

/// The reason to skip, when no Docker engine answers `docker info`.
pub fn no_docker() -> Option<String> {
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

fn docker_output(args: &[&str]) -> std::process::Output {
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
    out
}

/// Output of a docker CLI command that must succeed, stdout and stderr together (for `logs`).
pub fn docker(args: &[&str]) -> String {
    let out = docker_output(args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Non-empty stdout lines of a docker CLI command that must succeed.
pub fn docker_lines(args: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(&docker_output(args).stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Containers, networks and volumes carrying the run-id label and the label `extra` (either a
/// `key=value` or a bare key), as "kind name" lines.
pub fn labelled(extra: &str) -> Vec<String> {
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
pub fn leftovers(pid: u32, run_ids: &BTreeSet<String>) -> Vec<String> {
    let mut all = labelled(&format!("{LABEL_OWNER}={pid}"));
    for id in run_ids {
        all.extend(labelled(&format!("{LABEL_RUN}={id}")));
    }
    all.sort();
    all.dedup();
    all
}

/// The containers the runner with pid `pid` has now: (name, run id) pairs, by name.
pub fn containers_of(pid: u32) -> Vec<(String, String)> {
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

/// A runner still going, with stdout and stderr read by threads (stderr lines also sent on a
/// channel as they come), and the containers seen while it runs.
pub struct Running {
    pub pid: u32,
    child: Child,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
    lines: mpsc::Receiver<String>,
    run_ids: BTreeSet<String>,
    most_containers: usize,
}

impl Running {
    /// Starts `cmd` with no stdin and piped output.
    pub fn spawn(mut cmd: Command) -> Self {
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
            run_ids: BTreeSet::new(),
            most_containers: 0,
        }
    }

    /// Notes the runner's containers and their run ids.
    pub fn watch(&mut self) {
        let now = containers_of(self.pid);
        self.most_containers = self.most_containers.max(now.len());
        self.run_ids.extend(now.into_iter().map(|(_, id)| id));
    }

    /// Waits (up to `within`) for a stderr line starting with `prefix`.
    pub fn wait_line(&mut self, prefix: &str, within: Duration) -> bool {
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

    /// SIGKILL, as a killed runner would get.
    pub fn kill(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.pid).expect("pid"));
        let _ = kill(pid, Signal::SIGKILL);
    }

    /// Watches the containers until the runner exits; past [`RUN_DEADLINE`] kills it and
    /// panics with `what` and its output.
    pub fn run_to_end(mut self, what: &str) -> DockerRun {
        let started = Instant::now();
        loop {
            self.watch();
            if self.child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if started.elapsed() > RUN_DEADLINE {
                self.kill();
                let run = self.finish();
                panic!("{what} still running after {RUN_DEADLINE:?}: {run:?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        self.finish()
    }

    /// Waits for the exit and collects the output.
    pub fn finish(mut self) -> DockerRun {
        let status = self.child.wait().expect("wait");
        DockerRun {
            code: status.code().unwrap_or(-1),
            stdout: self.out.join().unwrap_or_default(),
            stderr: self.err.join().unwrap_or_default(),
            pid: self.pid,
            run_ids: self.run_ids,
            most_containers: self.most_containers,
        }
    }
}

/// What a runner did, as seen from outside.
pub struct DockerRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The runner's pid (the owner-pid label of what it created).
    pub pid: u32,
    /// Run ids of the containers seen while it ran.
    pub run_ids: BTreeSet<String>,
    /// Most containers of this runner seen at once.
    pub most_containers: usize,
}

impl std::fmt::Debug for DockerRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} (pid {}, run ids {:?}, up to {} containers)\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.pid, self.run_ids, self.most_containers, self.stdout, self.stderr
        )
    }
}
