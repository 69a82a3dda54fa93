//! The `nomos-script` binary as a real process: every test gets a fresh temp dir, used as TMPDIR
//! so that run dirs (and the node processes, whose command lines name their config inside the
//! run dir) can be found and checked afterwards.
//!
//! Run-dir policy under test: removed after a pass and after Ctrl-C, kept (and printed) after a
//! failure so its logs explain it, kept always with `--keep`. Child processes never outlive the
//! runner.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::{Env, fixture, run_command, workspace};

fn new_env() -> Env {
    Env::new("cli-test-").removing(&["RUST_BACKTRACE"])
}

#[test]
fn check_accepts_every_scenario() {
    let env = new_env();
    let mut files: Vec<String> = std::fs::read_dir(workspace().join("scenarios"))
        .expect("scenarios dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "expected the scenarios, found {files:?}");
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let run = env.run(&args);
    assert_eq!(run.code, 0, "{run:?}");
    for f in &files {
        assert!(
            run.stdout.contains(&format!("ok: {f}")),
            "{f} not checked: {run:?}"
        );
    }
    env.assert_clean(0);
}

#[test]
fn check_reports_an_invalid_plan_without_deploying() {
    let env = new_env();
    let run = env.run(&["check", &fixture("zero_nodes.rhai")]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("nodes = 0"), "{run:?}");
    assert!(run.stderr.contains("zero_nodes.rhai:3:6"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn liveness_scenario_passes_and_leaves_nothing() {
    let env = new_env();
    let run = env.run(&[
        "run",
        "scenarios/liveness.rhai",
        "--set",
        "duration=6s",
        "--seed",
        "11",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("passed (seed 11"), "{run:?}");
    assert!(run.stderr.contains("pass consensus_liveness"), "{run:?}");
    assert!(run.stderr.contains("pass tx_inclusion"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn keep_prints_and_keeps_the_run_dir() {
    let env = new_env();
    let run = env.run_kept_liveness();
    let dir = env.run_dirs().remove(0);
    assert!(run.stderr.contains(&dir.display().to_string()), "{run:?}");
}

#[test]
fn every_node_halted_fails_liveness_with_exit_1() {
    let env = new_env();
    let run = env.run(&["run", &fixture("all_halted.rhai")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("error: scenario failed: consensus_liveness failed"),
        "{run:?}"
    );
    for node in ["node-0", "node-1", "node-2"] {
        assert!(
            run.stderr.contains(&format!("{node} height 3 <")),
            "{run:?}"
        );
    }
    // the failure points at the script line that ran the plan
    assert!(run.stderr.contains("all_halted.rhai:7:6"), "{run:?}");
    // a failed run keeps its run dir (the logs explain the failure) and says where
    env.assert_clean(1);
    let dir = env.run_dirs().remove(0);
    assert!(run.stderr.contains(&dir.display().to_string()), "{run:?}");
}

#[test]
fn one_halted_node_is_named_in_the_error_and_the_report_files() {
    let env = new_env();
    let reports = env.tmp.path().join("reports");
    let run = env.run(&[
        "run",
        &fixture("one_halted.rhai"),
        "--report-dir",
        &reports.display().to_string(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(line.contains("node-2 height 3 <"), "{run:?}");
    assert!(!line.contains("node-0 height"), "{run:?}");
    assert!(!line.contains("node-1 height"), "{run:?}");
    let junit = std::fs::read_to_string(reports.join("junit.xml")).expect("junit.xml");
    assert!(
        junit.contains("tests=\"1\" failures=\"1\" errors=\"0\""),
        "{junit}"
    );
    assert!(
        junit.contains("<failure message=\"node-2 height 3 &lt;"),
        "{junit}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("report.json")).expect("json"))
            .expect("valid json");
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["runs"][0]["verdicts"][0]["name"], "consensus_liveness");
    assert_eq!(json["runs"][0]["verdicts"][0]["verdict"]["passed"], false);
    env.assert_clean(1);
}

#[test]
fn dropped_transactions_fail_tx_inclusion() {
    let env = new_env();
    let run = env.run(&["run", &fixture("drop_transactions.rhai")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("tx_inclusion failed: 0 of"), "{run:?}");
    env.assert_clean(1);
}

#[test]
fn a_caught_failure_is_the_report() {
    let env = new_env();
    let run = env.run(&["run", &fixture("caught_failure.rhai")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("caught: passed=false outcome=failed"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("verdict consensus_liveness false"),
        "{run:?}"
    );
    env.assert_clean(1);
}

#[test]
fn syntax_error_exits_2_with_position() {
    let env = new_env();
    let run = env.run(&["run", "bindings/tests/fixtures/syntax_error.rhai"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("error: "), "{run:?}");
    assert!(
        run.stderr
            .contains(" --> bindings/tests/fixtures/syntax_error.rhai:3:1"),
        "{run:?}"
    );
    assert!(run.stderr.contains("3 | let x = ;"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn runtime_error_exits_2_with_position_and_caret() {
    let env = new_env();
    let run = env.run(&["run", "bindings/tests/fixtures/runtime_error.rhai"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("error: variable not found: undefined_variable"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains(" --> bindings/tests/fixtures/runtime_error.rhai:4:24"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("  |                        ^"),
        "{run:?}"
    );
    env.assert_clean(0);
}

#[test]
fn invalid_topology_exits_2_and_starts_nothing() {
    let env = new_env();
    let run = env.run(&["run", &fixture("zero_nodes.rhai")]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("nodes = 0: a testnet needs at least one node"),
        "{run:?}"
    );
    env.assert_clean(0);

    let run = env.run(&["run", &fixture("unknown_override.rhai")]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("unknown override key `consensus.foo`"),
        "{run:?}"
    );
    env.assert_clean(0);
}

#[test]
fn ctrl_c_mid_run_exits_130_and_leaves_nothing() {
    let env = new_env();
    let mut child = env
        .cmd()
        .args(["run", &fixture("long_run.rhai")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("running for") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = rx.recv_timeout(Duration::from_secs(60));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    if started.is_err() {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        panic!(
            "the run never started: {}",
            reader.join().unwrap_or_default()
        );
    }
    // nodes are up and the run is under way
    assert!(
        !env.processes().is_empty(),
        "no node process found while running"
    );
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("wait");
    let stderr = reader.join().unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("INTERRUPTED"), "{stderr}");
    env.assert_clean(0);
}

#[test]
fn runaway_script_is_stopped() {
    let env = new_env();
    let dir = env.tmp.path().join("s");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("spin.rhai");
    std::fs::write(&file, "let x = 0;\nloop { x += 1; }\n").expect("write");
    let started = Instant::now();
    let run = env.run(&["run", &file.display().to_string()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("too many operations"), "{run:?}");
    assert!(run.stderr.contains("spin.rhai:2:"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn imports_resolve_from_script_folder_stdlib_and_path_env() {
    let env = new_env();
    let root = env.tmp.path();
    let scripts = root.join("scripts");
    let lib = root.join("extra");
    std::fs::create_dir_all(scripts.join("sub")).expect("mkdir");
    std::fs::create_dir_all(&lib).expect("mkdir");
    // a local module importing a sibling relative to ITS folder, not the main script's
    std::fs::write(
        scripts.join("sub/local.rhai"),
        "import \"helper\" as h;\nfn twice(x) { h::add(x, x) }\n",
    )
    .expect("write");
    std::fs::write(scripts.join("sub/helper.rhai"), "fn add(a, b) { a + b }\n").expect("write");
    std::fs::write(
        lib.join("extra_mod.rhai"),
        "fn fail() {\n    throw \"boom from extra\";\n}\n",
    )
    .expect("write");
    let main = scripts.join("main.rhai");
    std::fs::write(
        &main,
        "import \"sub/local\" as l;\nimport \"wait\" as w;\nimport \"extra_mod\" as e;\n\
         print(`twice=${l::twice(21)} level=${param(\"level\", 0) + 1}`);\ne::fail();\n",
    )
    .expect("write");
    let run = run_command(env.cmd().env("NOMOS_SCRIPT_PATH", &lib).args([
        "run",
        &main.display().to_string(),
        "--set",
        "level=41",
    ]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("twice=42 level=42"), "{run:?}");
    assert!(run.stderr.contains("error: boom from extra"), "{run:?}");
    // the error is located in the module, by its path
    assert!(
        run.stderr.contains(&format!(
            " --> {}:2:5",
            lib.join("extra_mod.rhai").display()
        )),
        "{run:?}"
    );

    // a missing module names the folders it tried
    std::fs::write(&main, "import \"nowhere\" as n;\n").expect("write");
    let run = env.run(&["check", &main.display().to_string()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("module `nowhere` not found"), "{run:?}");
    assert!(run.stderr.contains("main.rhai:1:8"), "{run:?}");
}

#[test]
fn script_workloads_and_expectations_run_concurrently() {
    let env = new_env();
    let run = env.run(&[
        "run",
        "scenarios/custom_checks.rhai",
        "--set",
        "duration=4s",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("lib_advanced: ok"), "{run:?}");
    assert!(run.stdout.contains("feed_saw_blocks: ok"), "{run:?}");
    // the workload's notes appeared while the run was going
    assert!(run.stderr.contains("node-0 height"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn help_names_the_commands_and_exit_codes() {
    let env = new_env();
    let run = env.run(&["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    for word in ["run", "check", "devnode", "130 interrupted"] {
        assert!(run.stdout.contains(word), "{word}: {run:?}");
    }
    let run = env.run(&["run", "x.rhai", "--set", "novalue"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("is not KEY=VALUE"), "{run:?}");
}

#[test]
fn a_script_error_with_a_live_testnet_still_tears_it_down() {
    let env = new_env();
    let run = env.run(&["run", &fixture("error_after_deploy.rhai")]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("up: "), "{run:?}");
    assert!(run.stderr.contains("no_such_method"), "{run:?}");
    assert!(run.stderr.contains("error_after_deploy.rhai:4:"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn chaos_restart_scenario_restarts_nodes_and_stays_live() {
    let env = new_env();
    let run = env.run(&[
        "run",
        "scenarios/chaos_restart.rhai",
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
    assert!(run.stderr.contains("chaos: restart node-"), "{run:?}");
    assert!(run.stderr.contains("pass consensus_liveness"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn partition_then_heal_converges() {
    let env = new_env();
    // the scenario's own 3 s split: a heal now takes effect within half a slot, so a shorter
    // split leaves the shorter side too few blocks for the reorg the scenario asks for
    let run = env.run(&["run", "scenarios/partition_heal.rhai"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("while split: "), "{run:?}");
    assert!(run.stdout.contains("after heal: "), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn an_unreachable_kubernetes_cluster_is_an_infrastructure_error() {
    let env = new_env();
    let missing = env.tmp.path().join("no-such-kubeconfig");
    let run = run_command(
        env.cmd()
            .env("KUBECONFIG", &missing)
            .env("HOME", env.tmp.path())
            .args(["run", "scenarios/liveness.rhai", "--deployer", "k8s"]),
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("cannot reach a Kubernetes cluster"),
        "{run:?}"
    );
    assert!(run.stderr.contains("KUBECONFIG"), "{run:?}");
    assert!(run.stderr.contains("liveness.rhai:"), "{run:?}");
    env.assert_clean(0);
}

/// Writes `source` into the test's temp dir and returns its path.
fn script(env: &Env, name: &str, source: &str) -> String {
    let path = env.path(name);
    std::fs::write(&path, source).expect("write script");
    path.display().to_string()
}

#[test]
fn negative_and_absurd_durations_are_refused_alike() {
    let env = new_env();
    for (source, expected) in [
        ("sleep(-1);\n", "sleep = -1 is negative"),
        ("sleep(-0.5);\n", "sleep = -0.5 is negative"),
        ("sleep(\"-3s\");\n", "sleep = \"-3s\" is negative"),
        (
            "sleep(\"100000000d\");\n",
            "a duration of 273972y 220d is absurd: at most 30d",
        ),
        ("sleep(1e12);\n", "a duration of 31709y 289d is absurd"),
        (
            "let p = ScenarioBuilder::topology_with(|t| t.nodes(1)).with_run_duration(-5);\n",
            "with_run_duration = -5 is negative",
        ),
    ] {
        let file = script(&env, "durations.rhai", source);
        let run = env.run(&["run", &file]);
        assert_eq!(run.code, 2, "{source}: {run:?}");
        assert!(run.stderr.contains(expected), "{source}: {run:?}");
        assert!(
            run.stderr.contains("durations.rhai:1:"),
            "{source}: {run:?}"
        );
    }
    // a number is slept through the framework's sleep: `check` skips it
    let file = script(&env, "long.rhai", "sleep(600);\nsleep(0.5);\n");
    let run = env.run(&["check", &file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.took < Duration::from_secs(60), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn a_wrong_argument_type_is_named_in_script_types() {
    let env = new_env();
    for (source, expected) in [
        (
            "let t = TopologyBuilder().nodes(\"four\");\n",
            "function not found: nodes (TopologyBuilder, string)",
        ),
        ("NodeClient(5);\n", "function not found: NodeClient (int)"),
        (
            "let p = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets([1]);\n",
            "function not found: wallets (ScenarioBuilder, array)",
        ),
        ("sleep(#{a: 1});\n", "got a map"),
    ] {
        let file = script(&env, "types.rhai", source);
        let run = env.run(&["run", &file]);
        assert_eq!(run.code, 2, "{source}: {run:?}");
        assert!(run.stderr.contains(expected), "{source}: {run:?}");
        for rust in ["i64", "ImmutableString", "&str", "rhai::", "alloc::"] {
            assert!(!run.stderr.contains(rust), "{source}: {rust} in {run:?}");
        }
    }
    env.assert_clean(0);
}

#[test]
fn a_set_value_must_match_the_type_of_the_param_default() {
    let env = new_env();
    let file = script(
        &env,
        "params.rhai",
        "let nodes = param(\"nodes\", 4);\nlet rate = param(\"rate\", 1.5);\nprint(`nodes ${nodes + 1} rate ${rate}`);\n",
    );
    let run = env.run(&["run", &file, "--set", "nodes=abc"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("--set nodes=abc: param 'nodes' is an int (default 4), got 'abc'"),
        "{run:?}"
    );
    assert!(run.stderr.contains("params.rhai:1:"), "{run:?}");
    let run = env.run(&["check", &file, "--set", "rate=fast"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("param 'rate' is a float (default 1.5), got 'fast'"),
        "{run:?}"
    );
    let run = env.run(&["run", &file, "--set", "nodes=6", "--set", "rate=2"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("nodes 7 rate 2.0"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn a_run_that_checks_nothing_warns_and_strict_makes_it_an_error() {
    let env = new_env();
    let empty = script(&env, "empty.rhai", "// nothing yet\n");
    for cmd in ["run", "check"] {
        let run = env.run(&[cmd, &empty]);
        assert_eq!(run.code, 0, "{cmd}: {run:?}");
        assert!(
            run.stderr.contains(&format!(
                "warning: {empty} runs no plan and deploys no testnet: it checks nothing"
            )),
            "{cmd}: {run:?}"
        );
        let run = env.run(&[cmd, "--strict", &empty]);
        assert_eq!(run.code, 2, "{cmd} --strict: {run:?}");
        assert!(
            run.stderr.contains("error: ") && run.stderr.contains("checks nothing (--strict)"),
            "{cmd} --strict: {run:?}"
        );
    }

    // a plan without any expectation, run twice: one warning
    let plan = script(
        &env,
        "unchecked.rhai",
        "let plan = ScenarioBuilder::topology_with(|t| t.nodes(1).slot_duration(\"100ms\"))\n    .with_run_duration(\"1s\").with_cooldown(\"100ms\").build();\nplan.run();\nplan.run();\n",
    );
    let warning = "warning: the plan (1 node, 1s, no workload) checks nothing: it has no expectation; add expect_* or pass --strict to make this an error";
    for cmd in ["check", "run"] {
        let run = env.run(&[cmd, &plan]);
        assert_eq!(run.code, 0, "{cmd}: {run:?}");
        assert_eq!(run.stderr.matches(warning).count(), 1, "{cmd}: {run:?}");
        assert!(!run.stderr.contains("runs no plan"), "{cmd}: {run:?}");
    }
    for cmd in ["check", "run"] {
        let run = env.run(&[cmd, "--strict", &plan]);
        assert_eq!(run.code, 2, "{cmd} --strict: {run:?}");
        assert!(
            run.stderr.contains(
                "error: the plan (1 node, 1s, no workload) checks nothing: it has no expectation (--strict)"
            ),
            "{cmd} --strict: {run:?}"
        );
        assert!(run.stderr.contains("unchecked.rhai:3:"), "{run:?}");
        // refused before anything is deployed
        assert!(!run.stdout.contains("TESTNET_ENDPOINTS"), "{run:?}");
    }
    // with an expectation: silent, strict or not
    let checked = script(
        &env,
        "checked.rhai",
        "let plan = ScenarioBuilder::topology_with(|t| t.nodes(1)).expect_consensus_liveness().with_run_duration(\"10s\").build();\nplan.run();\n",
    );
    let run = env.run(&["check", "--strict", &checked]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("checks nothing"), "{run:?}");
    env.assert_clean(0);
}

/// A plan over `topology` (a closure body on `t`) with `extra` builder calls.
fn plan_script(topology: &str, extra: &str) -> String {
    format!(
        "let plan = ScenarioBuilder::topology_with(|t| t{topology})\n    {extra}\n    \
         .expect_consensus_liveness()\n    .with_run_duration(\"10s\")\n    .build();\nplan.run();\n"
    )
}

#[test]
fn every_size_a_script_gives_is_bounded_at_check_with_the_field_value_and_bound() {
    let env = new_env();
    let cases = [
        (
            plan_script(".nodes(100000)", ""),
            "nodes = 100000 exceeds the bound 1000",
        ),
        (
            plan_script(".nodes(3)", ".wallets(100000000)"),
            "wallets = 100000000 exceeds the bound 100000",
        ),
        (
            plan_script(
                ".nodes(3)",
                ".wallets(10).transactions_with(|x| x.rate(1000000))",
            ),
            "rate = 1000000 exceeds the bound 10000",
        ),
        (
            plan_script(
                ".nodes(3)",
                ".wallets(10).transactions_with(|x| x.users(1000000))",
            ),
            "users = 1000000 exceeds the bound 100000",
        ),
        (
            plan_script(".nodes(1000).network_full()", ""),
            "network_full with nodes = 1000 has 499500 edges, which exceeds the bound 100000",
        ),
        (
            plan_script(".nodes(1000).network_random(500)", ""),
            "exceeds the bound 100000 (MAX_EDGES)",
        ),
        (
            plan_script(".nodes(3)", ".with_run_duration(\"100d\")"),
            "at most 30d",
        ),
    ];
    for (i, (body, expected)) in cases.iter().enumerate() {
        let file = script(&env, &format!("bound{i}.rhai"), body);
        let run = env.run(&["check", &file]);
        assert_eq!(run.code, 2, "{body}\n{run:?}");
        assert!(
            run.stderr.contains(expected),
            "{body}\nexpected {expected:?}\n{run:?}"
        );
        assert!(run.took < Duration::from_secs(20), "{body}\n{run:?}");
    }
    env.assert_clean(0);
}

/// The binary under `prlimit --nofile=SOFT:HARD`, with the environment [`Env::cmd`] sets.
fn with_nofile(env: &Env, soft: u64, hard: u64, args: &[&str]) -> common::Run {
    let inner = env.cmd();
    let mut c = std::process::Command::new("prlimit");
    c.arg(format!("--nofile={soft}:{hard}"))
        .arg(inner.get_program())
        .args(args);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = inner.get_current_dir() {
        c.current_dir(d);
    }
    run_command(&mut c)
}

#[test]
fn the_fd_limit_is_raised_to_the_hard_limit_and_a_topology_beyond_it_is_refused() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: prlimit (util-linux) not found");
        return;
    }
    let env = new_env();
    let file = script(&env, "many.rhai", &plan_script(".nodes(100)", ""));
    // soft 256 alone would refuse 100 nodes; raised to the hard 4096 they fit
    let run = with_nofile(&env, 256, 4096, &["check", &file]);
    assert_eq!(run.code, 0, "{run:?}");
    // hard 256: at most (256 - 64 + 3) / 9 = 21 nodes of a star
    for (cmd, code) in [("check", 2), ("run", 3)] {
        let run = with_nofile(&env, 256, 256, &[cmd, &file]);
        assert_eq!(run.code, code, "{cmd}: {run:?}");
        for part in [
            "nodes = 100",
            "file descriptors",
            "the limit here is 256",
            "at most 21 nodes",
        ] {
            assert!(
                run.stderr.contains(part),
                "{cmd}: expected {part:?}: {run:?}"
            );
        }
        assert!(run.took < Duration::from_secs(20), "{cmd}: {run:?}");
        env.assert_clean(0);
    }
}

#[test]
fn the_first_ctrl_c_stops_long_native_work() {
    let env = new_env();
    // 100,000 wallet keys for the genesis the override is checked against: seconds of native
    // work that never returns to the script engine
    let file = script(
        &env,
        "keys.rhai",
        &plan_script(
            ".nodes(3).with_override(\"testing.drop_transactions\", false)",
            ".wallets(100000)",
        ),
    );
    let mut child = env
        .cmd()
        .args(["check", &file])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // the keys take seconds even in a release build; the host is up well within this
    std::thread::sleep(Duration::from_millis(1000));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let sent = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let deadline = sent + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("still running 5 s after the first Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    env.assert_clean(0);
}
