//! `nomos-script shrink` on a planted bug: the reference node's
//! `testing.crash_if_restarted_while_isolated` (a node restarted while a partition cuts it off
//! exits) under a 40-event random chaos run. The failing seed shrinks to the events that matter
//! in at most 30 runs, and the written file fails when run; a passing seed has nothing to shrink.
//! The crash watch (`expect_no_crashes()`) and `replay(..)` are tested here too, on real
//! reference-node processes.

mod common;

use common::{Env, fixture};

const FIXTURE: &str = "planted_crash.rhai";
/// A seed on which the fixture's chaos restarts a node inside a partition that isolates it.
const FAILING_SEED: &str = "1";
/// A seed on which it never does.
const PASSING_SEED: &str = "3";

/// The number before `what` in `text` (`"41 events planned"` -> 41).
fn number_before(text: &str, what: &str) -> usize {
    let at = text
        .find(what)
        .unwrap_or_else(|| panic!("{what:?} not in:\n{text}"));
    text[..at]
        .split_whitespace()
        .last()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number before {what:?} in:\n{text}"))
}

fn events_in(script: &str) -> usize {
    script.matches("    .at(").count() + script.matches("    .at_for(").count()
}

#[test]
fn a_failing_chaos_run_shrinks_to_the_events_that_matter_and_the_result_fails() {
    let env = Env::new("shrink-planted-");
    let out = env.path("planted.shrunk.rhai");
    let run = env.run(&[
        "shrink",
        &fixture(FIXTURE),
        "--seed",
        FAILING_SEED,
        "--runs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let planned = number_before(&run.stdout, "events planned");
    assert!(
        planned >= 40,
        "the original run planned {planned} events\n{run:?}"
    );
    assert!(run.stdout.contains("fails `no_node_crash`"), "{run:?}");
    let left = number_before(&run.stdout, "fault events,");
    assert!((1..=3).contains(&left), "{left} events left\n{run:?}");
    let runs = number_before(&run.stdout, "runs of");
    assert!(runs <= 30, "{runs} runs\n{run:?}");

    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(events_in(&text), left, "{text}");
    assert!(text.contains(&format!("seed: {FAILING_SEED},")), "{text}");
    assert!(text.contains("expectations: [\"no_node_crash\"]"), "{text}");
    // the events that matter: the failing node restarted, and it cut off
    assert!(text.contains("\"restart\""), "{text}");
    assert!(
        text.contains("\"isolate\"") || text.contains("\"partition\""),
        "{text}"
    );
    // the search's own runs and work dir are gone
    assert!(
        std::fs::read_dir(env.tmp.path())
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("nomos-shrink-")),
        "the work dir was left"
    );
    env.assert_clean(0);

    // the written file fails when run, on the crash the search kept
    let json = env.path("again.json");
    let again = env.run(&[
        "run",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 1, "{again:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let verdicts = report["runs"][0]["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    assert_eq!(verdicts[0]["name"], "no_node_crash");
    assert_eq!(verdicts[0]["verdict"]["passed"], false);
    assert!(
        verdicts[0]["verdict"]["message"]
            .as_str()
            .unwrap()
            .contains("exited on its own"),
        "{verdicts:?}"
    );
}

#[test]
fn a_passing_seed_has_nothing_to_shrink() {
    let env = Env::new("shrink-passing-");
    let out = env.path("never.rhai");
    let file = fixture(FIXTURE);
    // 20 s of the fixture's chaos on a seed whose faults never hit the bug; and the failing seed
    // with the bug turned off by a parameter (so `--set` reaches the runs)
    for (seed, set) in [
        (PASSING_SEED, vec!["duration=20s"]),
        (FAILING_SEED, vec!["planted=false", "duration=15s"]),
    ] {
        let mut args = vec!["shrink", file.as_str(), "--seed", seed];
        for s in &set {
            args.extend(["--set", s]);
        }
        args.extend(["--out", out.to_str().unwrap()]);
        let run = env.run(&args);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout
                .contains(&format!("nothing to shrink: {file} passes on seed {seed}")),
            "{run:?}"
        );
        assert!(!out.exists());
    }
    env.assert_clean(0);
}

/// The fixture under a replay: node 1 isolated from 2 s to 9 s and restarted at 3 s.
fn isolated_restart(env: &Env) -> String {
    let path = env.path("isolated_restart.rhai");
    let source = std::fs::read_to_string(fixture(FIXTURE)).unwrap();
    std::fs::write(
        &path,
        format!(
            "replay(#{{ seed: 5, duration: \"14s\" }}, |c| c.schedule()\n    .at_for(\"2s\", \"isolate\", 1, \"7s\")\n    .at(\"3s\", \"restart\", 1)\n    .apply());\n{source}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn the_crash_watch_names_a_node_that_exits_and_passes_restarts_by_the_framework() {
    let env = Env::new("shrink-crash-watch-");
    let script = isolated_restart(&env);
    // the planted bug: node 1 exits about 4 s after its restart, and the run stops there
    let json = env.path("crash.json");
    let run = env.run(&["run", &script, "--json", json.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = &report["runs"][0];
    let failed: Vec<&serde_json::Value> = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["verdict"]["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["name"], "no_node_crash");
    let message = failed[0]["verdict"]["message"].as_str().unwrap();
    assert!(message.contains("node-1 exited on its own"), "{message}");
    assert!(message.contains("planted bug"), "{message}");
    let failed_at = r["failed_at"].as_u64().unwrap();
    assert!(
        (6000..12000).contains(&failed_at),
        "failed at {failed_at} ms"
    );
    // the executed timeline is in the report, as the replay gave it
    let plan = r["chaos_plan"].as_array().unwrap();
    assert_eq!(plan.len(), 2, "{plan:?}");
    env.assert_clean(1);

    // without the bug, the same isolation and restart (by the framework) are no crash
    let run = env.run(&["run", &script, "--set", "planted=false"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("pass  no_node_crash"), "{run:?}");
}

#[test]
fn a_replay_that_does_not_fit_is_an_error_at_its_call() {
    let env = Env::new("shrink-replay-");
    let source = std::fs::read_to_string(fixture(FIXTURE)).unwrap();
    for (header, expected) in [
        ("replay(#{ nodez: 3 });", "replay key `nodez` is unknown"),
        (
            "replay(#{ expectations: [\"nope\"] });",
            "`nope` is not an expectation of this plan (it has: consensus_liveness, no_node_crash)",
        ),
        (
            "replay(#{}, |c| c.schedule().at(\"1s\", \"restart\", 9).apply());",
            "node 9 does not exist",
        ),
        (
            "replay(#{}, |c| c.schedule().at(\"1s\", \"clock\", 2).apply());",
            "schedule clock expects",
        ),
    ] {
        let path = env.path("bad.rhai");
        std::fs::write(&path, format!("{header}\n{source}")).unwrap();
        let run = env.run(&["check", path.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{header}\n{run:?}");
        assert!(run.stderr.contains(expected), "{header}\n{run:?}");
        assert!(run.stderr.contains("bad.rhai:"), "{header}\n{run:?}");
    }
}
