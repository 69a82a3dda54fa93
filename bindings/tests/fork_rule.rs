//! Partitions and k: a partition whose sides can both outgrow k blocks forks the testnet for
//! good. `check` and `build()` flag such a chaos partition; a convergence failure after a final
//! fork names the rule, the fork's depth and k; and the guide's own partition example passes on
//! 20 consecutive seeds.

use std::path::Path;

mod common;

use common::Env;

fn write(env: &Env, name: &str, text: &str) -> String {
    let p = env.path(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn chaos_plan(duration: &str) -> String {
    format!(
        "let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(4).slot_duration(\"200ms\"))\n\
         .enable_network_faults()\n\
         .chaos_with(|c| c.partition().min_delay(\"1s\").max_delay(\"2s\").duration(\"{duration}\").apply())\n\
         .expect_convergence()\n\
         .with_run_duration(\"20s\")\n\
         .build();\nplan.run();\n"
    )
}

#[test]
fn check_flags_a_chaos_partition_that_can_outlast_k() {
    let env = Env::new("fork-rule-check-");
    let risky = write(&env, "risky.rhai", &chaos_plan("3s"));
    let run = env.run(&["check", &risky]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("warning: workload `chaos`"), "{run:?}");
    assert!(
        run.stderr.contains("can fork the testnet for good"),
        "{run:?}"
    );
    assert!(run.stderr.contains("k = 10"), "{run:?}");
    let safe = write(&env, "safe.rhai", &chaos_plan("1s"));
    let run = env.run(&["check", &safe]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("warning"), "{run:?}");
}

#[test]
fn a_final_fork_names_the_rule_the_depth_and_k() {
    let env = Env::new("fork-rule-run-");
    let script = write(
        &env,
        "fork.rhai",
        "let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(4)\n\
             .slot_duration(\"100ms\").security_param(3))\n\
         .enable_network_faults()\n\
         .on_height(2, |net| { net.partition([[0, 1], [2, 3]]); sleep(\"2s\"); net.heal(); })\n\
         .expect_convergence_with(|c| c.deadline(\"3s\"))\n\
         .with_run_duration(\"5s\")\n\
         .build();\n\
         plan.run();\n",
    );
    let run = env.run(&["run", &script, "--seed", "3"]);
    assert_eq!(run.code, 1, "{run:?}");
    let out = run.output();
    assert!(out.contains("nodes disagree on the LIB"), "{out}");
    assert!(out.contains("the chains fork at height"), "{out}");
    assert!(
        out.contains("more than k = 3 on two sides, so the fork is final"),
        "{out}"
    );
    assert!(
        out.contains("a partition [[0, 1], [2, 3]] lasting"),
        "{out}"
    );
    env.assert_clean(1);
}

/// The example under "Faults fired by events" in docs/guide.md, made to run.
fn guide_partition_example() -> String {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/guide.md"))
            .unwrap();
    let at = guide
        .find("Faults fired by events")
        .expect("the guide's section");
    let start = guide[at..].find("```rhai\n").unwrap() + at + "```rhai\n".len();
    let end = guide[start..].find("```").unwrap() + start;
    format!("{}plan.run();\n", &guide[start..end])
}

#[test]
fn the_guides_partition_example_passes_on_20_consecutive_seeds() {
    let env = Env::new("fork-rule-guide-");
    let script = write(&env, "guide.rhai", &guide_partition_example());
    assert!(
        std::fs::read_to_string(&script)
            .unwrap()
            .contains("net.partition")
    );
    // four at a time: 20 runs of 10 s
    let failures = common::seed_matrix(&env, &script, 1..=20, 4);
    assert!(failures.is_empty(), "{failures:#?}");
}
