//! Chaos from scripts, through the `nomos-script` binary and real nodes: the chaos scenarios,
//! seeded replay of `chaos_with`, triggers on a live testnet and in a plan, an `always`
//! invariant failing a long run early, and every stdlib module imported and used.
//!
//! Each test gets a fresh temp dir as TMPDIR, so run dirs and node processes can be checked
//! afterwards: nothing is left after a pass; a failed run keeps its run dir (its logs explain it).

use std::time::Duration;

mod common;

use common::Env;

fn new_env() -> Env {
    Env::new("chaos-test-")
}

/// The chaos lines (`chaos: <action> (planned <offset>`) of a run, in order.
fn chaos_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("chaos: ") && l.contains(" (planned "))
        .map(|l| l.split(", at ").next().unwrap_or(l).to_owned())
        .collect()
}

#[test]
fn chaos_restart_scenario_replays_its_timeline_with_the_same_seed() {
    let env = new_env();
    let args = [
        "run",
        "scenarios/chaos_restart.rhai",
        "--seed",
        "7",
        "--set",
        "duration=5s",
        "--set",
        "min_delay=1s",
        "--set",
        "max_delay=1500ms",
        "--set",
        "target_cooldown=2s",
    ];
    let a = env.run(&args);
    assert_eq!(a.code, 0, "{a:?}");
    assert!(a.stderr.contains("pass consensus_liveness"), "{a:?}");
    let la = chaos_lines(&a.stderr);
    assert!(la.len() >= 2, "too few restarts: {a:?}");
    assert!(
        la.iter().all(|l| l.starts_with("chaos: restart node-")),
        "{la:?}"
    );
    assert!(
        !la.iter().any(|l| l.starts_with("chaos: restart node-0 ")),
        "the hub was excluded: {la:?}"
    );
    let b = env.run(&args);
    assert_eq!(b.code, 0, "{b:?}");
    assert_eq!(la, chaos_lines(&b.stderr), "same seed, other timeline");
    let mut other = args.to_vec();
    other[3] = "8";
    let c = env.run(&other);
    assert_eq!(c.code, 0, "{c:?}");
    assert_ne!(la, chaos_lines(&c.stderr), "another seed, same timeline");
    env.assert_clean(0);
}

#[test]
fn partition_heal_scenario_forks_reorganises_and_converges() {
    let env = new_env();
    let run = env.run(&[
        "run",
        "scenarios/partition_heal.rhai",
        "--set",
        "split_for=2s",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("while split: "), "{run:?}");
    assert!(run.stdout.contains("after heal: "), "{run:?}");
    assert!(run.stderr.contains("pass convergence"), "{run:?}");
    assert!(run.stderr.contains("pass reorganised on heal"), "{run:?}");
    // the two halves were on different tips while split
    let split = run
        .stdout
        .lines()
        .find(|l| l.starts_with("while split: "))
        .expect("split line");
    let tips: Vec<&str> = split
        .split('"')
        .filter(|s| s.starts_with("node-"))
        .map(|s| s.rsplit(':').next().unwrap_or(""))
        .collect();
    assert_eq!(tips.len(), 4, "{split}");
    assert_eq!(tips[0], tips[1], "{split}");
    assert_eq!(tips[2], tips[3], "{split}");
    assert_ne!(tips[0], tips[2], "no fork while split: {split}");
    env.assert_clean(0);
}

#[test]
fn a_permanent_split_fails_convergence_naming_the_fault() {
    let env = new_env();
    let script = env.tmp.path().join("permanent.rhai");
    std::fs::write(
        &script,
        "ScenarioBuilder::topology_with(|t| t.network_full().nodes(3).slot_duration(\"100ms\"))\n\
         .enable_network_faults()\n\
         .on_height(3, |net| net.partition([[0, 1], [2]]))\n\
         .expect_convergence_with(|c| c.deadline(\"2s\"))\n\
         .with_run_duration(\"3s\").build().run();\n",
    )
    .expect("write script");
    let run = env.run(&["run", &script.display().to_string()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("FAIL convergence: fault still in force: partition [[0, 1], [2]]"),
        "{run:?}"
    );
    env.assert_clean(1);
}

#[test]
fn dynamic_join_scenario_adds_a_node_that_syncs() {
    let env = new_env();
    let run = env.run(&["run", "scenarios/dynamic_join.rhai", "--set", "duration=6s"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("node-3 joined at height "), "{run:?}");
    assert!(run.stderr.contains("pass the joiner is in sync"), "{run:?}");
    assert!(run.stderr.contains("pass convergence: 4 nodes"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn latency_scenario_stays_live_under_latency_and_loss() {
    let env = new_env();
    let run = env.run(&[
        "run",
        "scenarios/latency.rhai",
        "--set",
        "duration=6s",
        "--set",
        "latency_for=4s",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("chaos: latency 100ms on all links (planned 0.000s"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("chaos: revert latency 100ms"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("pass no node more than 10 behind"),
        "{run:?}"
    );
    env.assert_clean(0);
}

#[test]
fn triggers_fire_at_their_height_live_and_in_a_plan() {
    let env = new_env();
    let run = env.run(&["run", "bindings/tests/fixtures/chaos_triggers.rhai"]);
    assert_eq!(run.code, 0, "{run:?}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("live on_height("))
        .expect("live trigger line");
    // "live on_height(T) fired at height H", H within T..=T+1
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    assert!(nums[1] == nums[0] || nums[1] == nums[0] + 1, "{line}");
    assert!(run.stdout.contains("state done"), "{run:?}");
    assert!(
        run.stdout
            .contains("cancelled: on_height(1000000) was cancelled before it fired"),
        "{run:?}"
    );
    let plan_line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("plan on_height(6) partition at "))
        .expect("plan trigger line");
    let h: u64 = plan_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((6..=7).contains(&h), "{plan_line}");
    assert!(
        run.stderr.contains("fault partition [[0], [1, 2]]"),
        "{run:?}"
    );
    assert!(run.stdout.contains("when fired at "), "{run:?}");
    assert!(run.stdout.contains("plan passed: true"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn a_broken_always_stops_a_long_run_early_with_a_witness() {
    let env = new_env();
    let run = env.run(&["run", "bindings/tests/fixtures/chaos_always_broken.rhai"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.took < Duration::from_secs(20), "not early: {run:?}");
    assert!(
        run.stderr
            .contains("FAIL heights within 3: invariant `heights within 3` (always) violated at "),
        "{run:?}"
    );
    assert!(run.stderr.contains(": node-2 at 4, highest "), "{run:?}");
    assert!(run.stderr.contains("; heights: node-0 "), "{run:?}");
    assert!(
        !run.stderr.contains("consensus_liveness:"),
        "evaluation must be skipped: {run:?}"
    );
    env.assert_clean(1);
}

#[test]
fn every_stdlib_module_is_imported_and_used() {
    let env = new_env();
    let run = env.run(&["run", "bindings/tests/fixtures/chaos_stdlib.rhai"]);
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        "topologies ok: 4 nodes",
        "wait ok: heights ",
        "assert ok: heights ",
        "split_brain converged ",
        "chaos ok: rolling restart ",
        "assert caught: heights not within 3 of the highest ",
        "wait caught: wait_height(100) timed out after 1s: ",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?}: {run:?}");
    }
    assert!(run.stdout.contains("\"node-2 at 2\""), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn invalid_chaos_is_a_script_error_naming_the_field() {
    let env = new_env();
    let script = env.tmp.path().join("bad.rhai");
    std::fs::write(
        &script,
        "ScenarioBuilder::topology_with(|t| t.nodes(3))\n\
         .chaos_with(|c| c.restart().min_delay(\"5s\").max_delay(\"1s\").apply())\n\
         .build();\n",
    )
    .expect("write script");
    let run = env.run(&["check", &script.display().to_string()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("invalid chaos: restart max_delay = 1s is below min_delay = 5s"),
        "{run:?}"
    );
    std::fs::write(
        &script,
        "ScenarioBuilder::topology_with(|t| t.nodes(3)).chaos_with(|c| c.restart()).build();\n",
    )
    .expect("write script");
    let run = env.run(&["check", &script.display().to_string()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("end each fault with .apply()"),
        "{run:?}"
    );
    env.assert_clean(0);
}
