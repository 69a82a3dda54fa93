//! Capabilities are enforced everywhere: a plan that uses node control or network faults
//! without enabling them is refused, before deploying when the use is in the plan (a chaos
//! workload), and at the call (naming the `enable_*` call) when a closure makes it.

mod common;

use common::Env;

fn write(env: &Env, name: &str, text: &str) -> String {
    let p = env.path(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn a_chaos_partition_without_enable_network_faults_is_refused_before_deploying() {
    let env = Env::new("caps-chaos-");
    let script = write(
        &env,
        "p.rhai",
        "let plan = ScenarioBuilder::topology_with(|t| t.nodes(3))\n\
         .chaos_with(|c| c.partition().min_delay(\"1s\").max_delay(\"2s\").duration(\"1s\").apply())\n\
         .with_run_duration(\"5s\").build();\nplan.run();\n",
    );
    for cmd in ["check", "run"] {
        let run = env.run(&[cmd, &script]);
        assert_eq!(run.code, 2, "{cmd}: {run:?}");
        assert!(
            run.stderr
                .contains("chaos workload `chaos` uses network faults, which the plan does not enable: add .enable_network_faults() to the plan"),
            "{cmd}: {run:?}"
        );
        assert!(!run.stdout.contains("run dir"), "nothing deployed: {run:?}");
    }
    let restart = write(
        &env,
        "r.rhai",
        "ScenarioBuilder::topology_with(|t| t.nodes(3))\n\
         .chaos_with(|c| c.restart().min_delay(\"1s\").max_delay(\"2s\").apply()).build();\n",
    );
    let run = env.run(&["check", &restart]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("add .enable_node_control()"), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn closures_of_a_plan_cannot_use_what_it_did_not_enable() {
    let env = Env::new("caps-closure-");
    let partition = write(
        &env,
        "p.rhai",
        "let plan = ScenarioBuilder::topology_with(|t| t.nodes(3).slot_duration(\"200ms\"))\n\
         .on_height(2, |net| { net.partition([[0], [1, 2]]); })\n\
         .expect_consensus_liveness()\n\
         .with_run_duration(\"6s\").build();\nplan.run();\n",
    );
    let run = env.run(&["run", &partition]);
    assert_eq!(run.code, 1, "{run:?}");
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("needs network faults, which the plan did not enable: add .enable_network_faults() to the plan"),
        "{out}"
    );
    let add = write(
        &env,
        "a.rhai",
        "let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration(\"200ms\"))\n\
         .with_workload(\"grow\", |ctx| { ctx.net.add_node(); })\n\
         .with_run_duration(\"4s\").build();\nplan.run();\n",
    );
    let run = env.run(&["run", &add]);
    assert_eq!(run.code, 1, "{run:?}");
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("add_node needs node control, which the plan did not enable: add .enable_node_control() to the plan"),
        "{out}"
    );
    // with the calls, the same plans run
    let ok = write(
        &env,
        "ok.rhai",
        "let plan = ScenarioBuilder::topology_with(|t| t.nodes(3).slot_duration(\"200ms\"))\n\
         .enable_network_faults()\n\
         .on_height(2, |net| { net.partition([[0], [1, 2]]); sleep(\"400ms\"); net.heal(); })\n\
         .expect_consensus_liveness()\n\
         .with_run_duration(\"6s\").build();\nplan.run();\n",
    );
    let run = env.run(&["run", &ok]);
    assert_eq!(run.code, 0, "{run:?}");
    env.assert_clean(2);
}
