//! The side of the harness for live testnets (`up`, `ls`, `down`, `repl`): a temp dir with a
//! state dir and a TMPDIR of its own (so "nothing left" is exact), a three-node topology
//! script, the binary run there, a REPL fed on stdin, and whatever a test leaves up brought
//! down when it ends.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::BIN;

/// Three nodes, 100 ms slots: quick to come up, quick to converge.
pub const TOPOLOGY: &str = "TopologyBuilder().nodes(3).network_star().slot_duration(\"100ms\")\
    .active_slot_coeff(0.9).security_param(20)\n";

/// One test's temp dir: `state/` (NOMOS_SCRIPT_STATE_DIR), `runs/` (TMPDIR) and
/// `topology.rhai` ([`TOPOLOGY`]); the binary runs in it.
pub struct LiveEnv {
    pub tmp: tempfile::TempDir,
}

impl LiveEnv {
    pub fn new(prefix: &str) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("state")).unwrap();
        std::fs::create_dir_all(tmp.path().join("runs")).unwrap();
        std::fs::write(tmp.path().join("topology.rhai"), TOPOLOGY).unwrap();
        Self { tmp }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("TMPDIR", self.path("runs"))
            .env("NOMOS_SCRIPT_STATE_DIR", self.state_dir())
            .env_remove("NOMOS_DEVNODE_BIN")
            .env_remove("LOGOS_BLOCKCHAIN_NODE_BIN")
            .env_remove("RUST_LOG")
            .current_dir(self.tmp.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run nomos-script")
    }

    /// `up` of `topology.rhai` as `name`, which must succeed: its stdout (the
    /// TESTNET_ENDPOINTS block among it).
    pub fn up_stdout(&self, name: &str) -> String {
        let topo = self.path("topology.rhai");
        let out = self.run(&["up", topo.to_str().unwrap(), "--name", name]);
        assert_eq!(out.status.code(), Some(0), "up failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `repl` with `args`, fed `input` on stdin, to its end.
    pub fn repl_with(&self, args: &[&str], input: &str) -> Output {
        with_stdin(self.cmd().arg("repl").args(args), input)
    }
}

/// Whatever a test leaves up is torn down.
impl Drop for LiveEnv {
    fn drop(&mut self) {
        if let Ok(d) = std::fs::read_dir(self.state_dir().join("testnets")) {
            for e in d.filter_map(Result::ok) {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                    let _ = self.run(&["down", &name]);
                }
            }
        }
    }
}

/// `cmd` started with its stdin, stdout and stderr piped, `input` written to its stdin (which
/// is then closed).
pub fn spawn_with_stdin(cmd: &mut Command, input: &str) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start repl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child
}

/// [`spawn_with_stdin`], run to its end.
pub fn with_stdin(cmd: &mut Command, input: &str) -> Output {
    spawn_with_stdin(cmd, input)
        .wait_with_output()
        .expect("repl output")
}

/// A finished process's exit code, stdout and stderr, for a failure message.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// True while a process exists (zombies and dead ones count as gone).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next())
                .is_some_and(|st| st == "Z" || st == "X")
        })
        .unwrap_or(false)
}

/// Polls `f` every 50 ms for up to `within`; whether it came true.
pub fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
