//! Live testnets and the REPL, as real processes: `up` starts a detached supervisor that owns
//! real node processes; `ls`, `down`, `gc`, `repl --attach` (piped stdin, and under tmux) and a
//! second attached process drive it. Every test gets its own state dir and TMPDIR, so "nothing
//! left behind" is checked exactly: no process, no run dir, no state file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::BIN;
use common::live::{LiveEnv, alive, spawn_with_stdin, text, wait_until};

/// The live harness; whatever a test leaves up is torn down.
fn new_env() -> LiveEnv {
    LiveEnv::new("live-test-")
}

impl LiveEnv {
    fn up(&self, name: &str) -> State {
        let stdout = self.up_stdout(name);
        assert!(stdout.contains("TESTNET_ENDPOINTS"), "{stdout}");
        assert_eq!(stdout.matches(" api http://").count(), 3, "{stdout}");
        self.state(name)
    }

    fn state(&self, name: &str) -> State {
        let path = self
            .state_dir()
            .join("testnets")
            .join(format!("{name}.json"));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("state file")).unwrap();
        State {
            path,
            supervisor: v["supervisor_pid"].as_u64().unwrap() as u32,
            pids: v["pids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap() as u32)
                .collect(),
            run_dir: PathBuf::from(v["run_dir"].as_str().unwrap()),
        }
    }

    /// A REPL attached to `name`, fed `input` on stdin.
    fn repl(&self, name: &str, input: &str) -> Output {
        self.repl_with(&["--attach", name], input)
    }

    fn down(&self, name: &str) {
        let out = self.run(&["down", name]);
        assert_eq!(out.status.code(), Some(0), "down failed:\n{}", text(&out));
    }

    /// Node run dirs left under this test's TMPDIR.
    fn run_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path("runs"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("nomos-script-"))
            })
            .collect()
    }

    fn assert_nothing_left(&self, st: &State) {
        assert!(wait_until(Duration::from_secs(10), || !alive(
            st.supervisor
        )));
        for &pid in &st.pids {
            assert!(
                wait_until(Duration::from_secs(10), || !alive(pid)),
                "node process {pid} still runs"
            );
        }
        assert!(!st.run_dir.exists(), "{} left", st.run_dir.display());
        assert!(self.run_dirs().is_empty(), "{:?}", self.run_dirs());
        let left: Vec<_> = std::fs::read_dir(self.state_dir().join("testnets"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "state files left: {left:?}");
        assert!(!st.path.exists());
    }
}

struct State {
    path: PathBuf,
    supervisor: u32,
    pids: Vec<u32>,
    run_dir: PathBuf,
}

/// `fault: ...` lines (timing-free fault log entries) of some output.
fn fault_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| l.starts_with("fault: "))
        .map(str::to_owned)
        .collect()
}

const PRINT_FAULTS: &str = "for f in net.fault_log() { print(`fault: ${f.summary}`); }\n";

#[test]
fn up_ls_down_leaves_nothing_behind() {
    let env = new_env();
    let st = env.up("alpha");
    let mode = std::fs::metadata(&st.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "state file mode");
    assert!(alive(st.supervisor));
    assert_eq!(st.pids.len(), 3);
    assert!(st.pids.iter().all(|&p| alive(p)));
    assert!(st.run_dir.exists());

    let ls = env.run(&["ls"]);
    let out = String::from_utf8_lossy(&ls.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("alpha"))
        .unwrap_or_else(|| panic!("no alpha in ls:\n{out}"));
    assert!(line.contains("local") && line.contains("running"), "{line}");
    assert!(line.split_whitespace().nth(2) == Some("3"), "{line}");

    // a second `up` with the same name is refused and starts nothing
    let again = env.run(&[
        "up",
        env.path("topology.rhai").to_str().unwrap(),
        "--name",
        "alpha",
    ]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));

    env.down("alpha");
    env.assert_nothing_left(&st);
    let ls = env.run(&["ls"]);
    assert!(String::from_utf8_lossy(&ls.stdout).contains("no live testnets"));
    let missing = env.run(&["down", "alpha"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no live testnet named `alpha`"));
}

/// `down` and `repl --attach` with a name no testnet has: a usage error (exit 2) listing the
/// names that exist; nothing is started.
#[test]
fn an_unknown_name_is_a_usage_error_listing_the_known_ones() {
    let env = new_env();
    for args in [&["down", "nope"][..], &["repl", "--attach", "nope"][..]] {
        let out = env.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(stderr.contains("no live testnet named `nope`"), "{stderr}");
        assert!(stderr.contains("there are no live testnets"), "{stderr}");
    }
    // another testnet's state file makes its name known (its supervisor need not be alive)
    let dir = env.state_dir().join("testnets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("other.json"), "{}").unwrap();
    for args in [&["down", "nope"][..], &["repl", "--attach", "nope"][..]] {
        let out = env.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            stderr.contains("known: `other` (`nomos-script ls`"),
            "{stderr}"
        );
    }
    let bad = env.run(&["down", "../x"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is invalid"));
}

#[test]
fn a_killed_supervisor_shows_stale_and_gc_cleans_it() {
    let env = new_env();
    let st = env.up("beta");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(st.supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || !alive(st.supervisor)));
    let ls = env.run(&["ls"]);
    let out = String::from_utf8_lossy(&ls.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("beta") && l.ends_with("stale")),
        "{out}"
    );
    // attaching to a stale testnet is a clear error
    let repl = env.repl("beta", ":nodes\n");
    assert_eq!(repl.status.code(), Some(3), "{}", text(&repl));
    assert!(String::from_utf8_lossy(&repl.stderr).contains("is stale"));
    // nodes outlive their supervisor until gc
    assert!(st.pids.iter().all(|&p| alive(p)));
    let runs = env.path("runs");
    let gc = env.run(&["gc", "--dir", runs.to_str().unwrap()]);
    assert_eq!(gc.status.code(), Some(0), "{}", text(&gc));
    assert!(String::from_utf8_lossy(&gc.stdout).contains("removed stale testnet `beta`"));
    env.assert_nothing_left(&st);
}

#[test]
fn piped_repl_controls_a_testnet_and_saves_a_replayable_scenario() {
    let env = new_env();
    let st = env.up("gamma");
    let saved = env.path("session.rhai");
    let input = format!(
        ":nodes\n\
         net.node(0).consensus_info().height >= 0\n\
         net.no_such_function(1)\n\
         print(\"still here\")\n\
         net.restart(1)\n\
         net.wait_height(3, \"30s\")\n\
         net.partition([[0, 1],\n    [2]])\n\
         :faults\n\
         net.heal()\n\
         net.wait_converged(\"30s\")\n\
         {PRINT_FAULTS}\
         :save {}\n",
        saved.display()
    );
    let out = env.repl("gamma", &input);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // :nodes table
    assert!(stdout.contains("node     state"), "{stdout}");
    for i in 0..3 {
        assert!(stdout.contains(&format!("node-{i}   running")), "{stdout}");
    }
    assert!(stdout.contains("true"), "{stdout}");
    // the bad command is an error with a caret, and the session goes on
    assert!(
        stderr.contains("error: function not found: no_such_function"),
        "{stderr}"
    );
    assert!(stderr.contains("1 | net.no_such_function(1)"), "{stderr}");
    assert!(stderr.contains("  |     ^"), "{stderr}");
    assert!(stdout.contains("still here"), "{stdout}");
    // :faults while partitioned
    assert!(stdout.contains("partition [[0, 1], [2]]"), "{stdout}");
    let session_faults = fault_lines(&stdout);
    assert_eq!(
        session_faults,
        vec![
            "fault: restart node-1".to_string(),
            "fault: apply fault#0 partition [[0, 1], [2]]".to_string(),
            "fault: revert fault#0 partition [[0, 1], [2]]".to_string(),
        ],
        "{stdout}"
    );
    assert!(stdout.contains("saved 5 command(s)"), "{stdout}");
    let script = std::fs::read_to_string(&saved).unwrap();
    // queries and helpers are not replayed
    assert!(
        !script.contains("consensus_info") && !script.contains("still here"),
        "{script}"
    );
    assert!(script.contains("net.restart(1);"), "{script}");

    // the supervisor restarted node 1: a new pid
    let after = env.state("gamma");
    assert_eq!(after.supervisor, st.supervisor);

    // the saved session runs on a fresh testnet and reproduces the same faults in the same order
    let json = env.path("report.json");
    let run = env.run(&[
        "run",
        saved.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}\n{script}", text(&run));
    let run_out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(fault_lines(&run_out), session_faults, "{run_out}");
    assert!(run_out.contains("converged: 3 nodes"), "{run_out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["exit_code"], 0);

    env.down("gamma");
    env.assert_nothing_left(&st);
}

#[test]
fn two_attached_processes_both_control_the_testnet() {
    let env = new_env();
    let st = env.up("delta");
    let spawn = |input: &'static str| {
        spawn_with_stdin(env.cmd().args(["repl", "--attach", "delta"]), input)
    };
    // at the same time: each restarts a node and cuts one direction
    let a = spawn("net.restart(1)\nnet.cut(0, 1)\nprint(\"a done\")\n");
    let b = spawn("net.restart(2)\nnet.cut(2, 0)\nprint(\"b done\")\n");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        String::from_utf8_lossy(&a.stdout).contains("a done"),
        "{}",
        text(&a)
    );
    assert!(
        String::from_utf8_lossy(&b.stdout).contains("b done"),
        "{}",
        text(&b)
    );
    assert!(
        a.stderr.is_empty() && b.stderr.is_empty(),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    // a third process sees both faults, with distinct ids, and every node running
    let c = env.repl(
        "delta",
        &format!(":faults\n:nodes\n{PRINT_FAULTS}net.heal()\n"),
    );
    let out = String::from_utf8_lossy(&c.stdout);
    assert!(
        out.contains("cut 0->1") && out.contains("cut 2->0"),
        "{out}"
    );
    let mut ids: Vec<String> = fault_lines(&out)
        .iter()
        .filter(|l| l.contains("fault#"))
        .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{out}");
    assert_eq!(out.matches("   running").count(), 3, "{out}");
    env.down("delta");
    env.assert_nothing_left(&st);
}

/// Clock and disk faults set from an attached REPL go through the supervisor: in its control
/// log (another attached process sees them in the timeline and in `:faults`), kept in force
/// across a restart, reverted by `heal()`.
#[test]
fn node_faults_from_an_attached_repl_are_in_the_supervisors_log() {
    let env = new_env();
    let st = env.up("epsilon");
    let a = env.repl(
        "epsilon",
        "net.clock_skew(1, \"+1500ms\")\nnet.disk_full(2)\nnet.restart(1)\nprint(`skew ${net.clock(1).skew_ms}`)\n",
    );
    let a_out = String::from_utf8_lossy(&a.stdout);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    let skew: i64 = a_out
        .lines()
        .find_map(|l| l.strip_prefix("skew "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}", text(&a)));
    assert!(
        (1400..=1600).contains(&skew),
        "kept across the restart: {skew}"
    );
    let b = env.repl(
        "epsilon",
        &format!(":faults\n{PRINT_FAULTS}print(`healed ${{net.heal()}}`)\n:faults\n"),
    );
    let out = String::from_utf8_lossy(&b.stdout);
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    for want in [
        "node-1 clock offset +1500ms drift +0ppm",
        "node-2 disk full",
        "fault: clock node-1 offset +1500ms drift +0ppm",
        "fault: disk node-2 full",
        "fault: restart node-1",
        "fault: clock node-1 offset +1500ms drift +0ppm (re-applied after start)",
        "healed 2",
        "no fault in force",
    ] {
        assert!(out.contains(want), "want {want}: {out}");
    }
    env.down("epsilon");
    env.assert_nothing_left(&st);
}

fn tmux(socket: &str, args: &[&str]) -> Output {
    Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux")
}

fn pane(socket: &str) -> String {
    String::from_utf8_lossy(
        &tmux(
            socket,
            &["capture-pane", "-p", "-J", "-S", "-200", "-t", "repl"],
        )
        .stdout,
    )
    .into_owned()
}

fn wait_pane(socket: &str, want: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let p = pane(socket);
        if p.contains(want) {
            return p;
        }
        assert!(
            start.elapsed() < within,
            "waited {within:?} for `{want}` in the tmux pane:\n{p}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn keys(socket: &str, k: &[&str]) {
    let mut args = vec!["send-keys", "-t", "repl"];
    args.extend_from_slice(k);
    let out = tmux(socket, &args);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn repl_under_tmux_completes_cancels_and_saves() {
    if let Err(e) = Command::new("tmux").arg("-V").output() {
        common::tools::skip_missing("tmux", &format!("cannot run `tmux -V`: {e}"));
        return;
    }
    let env = new_env();
    let st = env.up("eps");
    let socket = format!("nomos-live-{}", std::process::id());
    let saved = env.path("tmux.rhai");
    let cmdline = format!(
        "cd {} && TMPDIR={} NOMOS_SCRIPT_STATE_DIR={} {BIN} repl --attach eps",
        env.tmp.path().display(),
        env.path("runs").display(),
        env.state_dir().display()
    );
    let out = tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "repl",
            "-x",
            "160",
            "-y",
            "50",
            &cmdline,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let result = std::panic::catch_unwind(|| {
        wait_pane(&socket, "nomos> ", Duration::from_secs(20));
        keys(&socket, &[":nodes", "Enter"]);
        wait_pane(&socket, "node-2   running", Duration::from_secs(10));
        // tab completion of a function name and of a node index
        keys(&socket, &["net.parti", "Tab"]);
        wait_pane(&socket, "net.partition", Duration::from_secs(5));
        keys(&socket, &["C-u"]);
        keys(&socket, &["net.node(", "Tab", "Tab"]);
        wait_pane(&socket, "0)  1)  2)", Duration::from_secs(5));
        keys(&socket, &["C-u"]);
        // Ctrl-C cancels a long wait without leaving
        keys(&socket, &["net.wait_height(1000000, \"120s\")", "Enter"]);
        std::thread::sleep(Duration::from_millis(700));
        keys(&socket, &["C-c"]);
        wait_pane(
            &socket,
            "interrupted (the session goes on)",
            Duration::from_secs(10),
        );
        keys(&socket, &["net.restart(1)", "Enter"]);
        keys(&socket, &["net.bogus()", "Enter"]);
        wait_pane(
            &socket,
            "function not found: bogus",
            Duration::from_secs(30),
        );
        // one command at a time: keys typed while the REPL evaluates may be read by its
        // interrupt watcher, not by the line editor
        keys(&socket, &["net.partition([[0, 1], [2]])", "Enter"]);
        wait_pane(&socket, "[2]])\n0\nnomos>", Duration::from_secs(20));
        keys(&socket, &["net.heal()", "Enter"]);
        wait_pane(&socket, "net.heal()\n1\nnomos>", Duration::from_secs(20));
        keys(&socket, &["print(`healed ${net.faults().len()}`)", "Enter"]);
        wait_pane(&socket, "healed 0", Duration::from_secs(20));
        keys(&socket, &[&format!(":save {}", saved.display()), "Enter"]);
        wait_pane(&socket, "saved 3 command(s)", Duration::from_secs(10));
        keys(&socket, &["C-d"]);
    });
    let _ = tmux(&socket, &["kill-server"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    let script = std::fs::read_to_string(&saved).unwrap();
    assert!(
        !script.contains("wait_height(1000000"),
        "an interrupted command is not replayed:\n{script}"
    );
    let run = env.run(&["run", saved.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}\n{script}", text(&run));
    assert_eq!(
        fault_lines(&String::from_utf8_lossy(&run.stdout)),
        vec![
            "fault: restart node-1".to_string(),
            "fault: apply fault#0 partition [[0, 1], [2]]".to_string(),
            "fault: revert fault#0 partition [[0, 1], [2]]".to_string(),
        ]
    );
    env.down("eps");
    env.assert_nothing_left(&st);
}

#[allow(dead_code)]
fn exists(p: &Path) -> bool {
    p.exists()
}

/// Lies told from an attached REPL go through the supervisor: in the live testnet's timeline.
#[test]
fn lies_told_from_an_attached_repl_are_in_the_live_timeline() {
    let env = new_env();
    let st = env.up("liar");
    let input = format!(
        "net.byzantine(0, \"invalid_txs\", 2)\n\
         print(net.byzantine_state(0).summary)\n\
         net.honest(0)\n\
         {PRINT_FAULTS}"
    );
    let out = env.repl("liar", &input);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for want in [
        "invalid_txs 2/slot",
        "fault: byzantine node-0 invalid_txs 2/slot",
        "fault: byzantine node-0 honest",
    ] {
        assert!(stdout.contains(want), "want {want}: {}", text(&out));
    }
    env.down("liar");
    env.assert_nothing_left(&st);
}
