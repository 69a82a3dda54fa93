//! Recovery measured on real local testnets: a partition healed and a node restarted give a heal
//! to convergence below the run's deadline, a fork depth at the heal and a catch-up time, in the
//! JSON report, on the terminal and in the `--repeat` summary; `expect_recovery_within` passes
//! on them and fails, naming the revert, when a fault left in force keeps the nodes apart.

mod common;

use common::{Env, run_command};

fn write(env: &Env, name: &str, text: &str) -> String {
    let path = env.path(name);
    std::fs::write(&path, text).expect("write script");
    path.display().to_string()
}

/// A 3 s split on 200 ms slots (each half grows its own chain; k is raised above that), the
/// heal, then a restart of node 3.
const HEALS: &str = r#"
let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(4).slot_duration("200ms")
        .security_param(30))
    .enable_network_faults()
    .enable_node_control()
    .on_height(3, |net| {
        net.partition([[0, 1], [2, 3]]);
        sleep("3s");
        net.heal();
        net.restart(3);
    })
    .expect_convergence_with(|c| c.deadline("100 slots"))
    .expect_recovery_within("100 slots")
    .with_run_duration("9s")
    .build();
plan.run();
"#;

#[test]
fn a_healed_partition_and_a_restart_are_measured() {
    let env = Env::new("recovery-test-");
    let script = write(&env, "heals.rhai", HEALS);
    let json = env.path("heals.json");
    let dir = env.path("report");
    let run = run_command(
        env.cmd()
            .args(["run", &script, "--seed", "4", "--repeat", "2", "--json"])
            .arg(&json)
            .arg("--report-dir")
            .arg(&dir),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    // the run's convergence deadline: 100 slots of 200 ms
    let deadline_ms = 20_000;
    for r in runs {
        let rec = &r["recovery"];
        let heals = rec["heals"].as_array().expect("heals");
        assert_eq!(heals.len(), 1, "one partition reverted: {rec}");
        assert_eq!(heals[0]["fault"], "partition [[0, 1], [2, 3]]");
        let converged = heals[0]["converged_after_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("the heal converged: {rec}"));
        assert!(converged < deadline_ms, "{rec}");
        // each half grew its own chain for 15 slots: the nodes were forked at the heal
        let depth = heals[0]["fork_depth"].as_u64().expect("fork depth");
        assert!((1..=30).contains(&depth), "between 1 and k: {rec}");
        let catch_ups = rec["catch_ups"].as_array().expect("catch-ups");
        assert_eq!(catch_ups.len(), 1, "{rec}");
        assert_eq!(
            (
                catch_ups[0]["node"].as_u64(),
                catch_ups[0]["action"].as_str()
            ),
            (Some(3), Some("restart"))
        );
        let caught_up = catch_ups[0]["caught_up_after_ms"]
            .as_u64()
            .expect("caught up");
        assert!(caught_up < deadline_ms, "{rec}");
        // the summaries are the records'
        assert_eq!(
            rec["heal_to_convergence_ms"]["max"].as_f64(),
            Some(converged as f64)
        );
        assert_eq!(rec["catch_up_ms"]["count"], 1);
        assert!(
            rec["inclusion_latency_ms"].is_null(),
            "no transactions: {rec}"
        );
        let verdict = r["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "recovery_within")
            .expect("recovery verdict");
        assert_eq!(verdict["verdict"]["passed"], true, "{verdict}");
    }
    // the terminal says it per run, and the repetition pools both runs
    assert!(
        run.stderr
            .contains("recovery: 1 reverts, heal to convergence min "),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(
            "recovery: 1 nodes back (restarted, resumed, clock reset, disk freed), catch-up min "
        ),
        "{run:?}"
    );
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row: {run:?}"))
            .to_owned()
    };
    assert!(
        line("heal to convergence").contains("p90 ")
            && line("heal to convergence").contains("(2 samples)"),
        "{run:?}"
    );
    assert!(
        line("fork depth at heal").contains("(2 samples)"),
        "{run:?}"
    );
    assert!(line("restart catch-up").contains("(2 samples)"), "{run:?}");
    // the HTML report plots each run's recovery and which nodes shared a tip
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    for id in ["plot-0-forks", "plot-0-recovery", "plot-1-recovery"] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "index.html lacks {id}"
        );
    }
    assert!(html.contains("nodes sharing a tip"), "forks plot");
    assert!(
        html.contains("partition [[0, 1], [2, 3]]: "),
        "a bar per revert"
    );
    assert!(html.contains("restart node-3: "), "a bar per restart");
    let pooled = &report["repeat"]["recovery"];
    assert_eq!(pooled["heal_to_convergence_ms"]["count"], 2, "{pooled}");
    assert_eq!(pooled["heals_not_converged"], 0);
    env.assert_clean(0);
}

/// Node 3 is isolated, then a partition is applied and reverted while the isolation stays: the
/// revert is followed by no convergence.
const STAYS_APART: &str = r#"
let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(4).slot_duration("200ms"))
    .enable_network_faults()
    .on_height(2, |net| {
        net.isolate(3);
        let p = net.partition([[0, 1], [2]]);
        sleep("1s");
        net.revert(p);
    })
    .expect_recovery_within("10 slots")
    .with_run_duration("4s")
    .build();
plan.run();
"#;

#[test]
fn recovery_within_fails_naming_a_revert_that_never_converged() {
    let env = Env::new("recovery-test-");
    let script = write(&env, "apart.rhai", STAYS_APART);
    let json = env.path("apart.json");
    let run = run_command(
        env.cmd()
            .args(["run", &script, "--seed", "4", "--json"])
            .arg(&json),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("FAIL recovery_within: revert of partition [[0, 1], [2]] at ")
            && run
                .stderr
                .contains(": not converged within 10 slots (2s at 200ms slots)"),
        "{run:?}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let heals = report["runs"][0]["recovery"]["heals"]
        .as_array()
        .expect("heals")
        .clone();
    assert!(heals[0]["converged_after_ms"].is_null(), "{heals:?}");
    // the failed run keeps its dir, as any failure does
    env.assert_clean(1);
}
