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
    let out = run.output();
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
    let out = run.output();
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

#[test]
fn kubernetes_refuses_the_fault_kinds_it_cannot_do_before_deploying() {
    let env = Env::new("caps-k8s-").removing(&["KUBECONFIG"]);
    for (name, chaos, kind) in [
        (
            "pause.rhai",
            ".enable_node_control().chaos_with(|c| c.pause().min_delay(\"1s\").max_delay(\"2s\").duration(\"1s\").apply())",
            "pause",
        ),
        (
            "latency.rhai",
            ".enable_network_faults().chaos_with(|c| c.degrade().latency(\"50ms\").min_delay(\"1s\").max_delay(\"2s\").duration(\"1s\").apply())",
            "latency",
        ),
        (
            "disk.rhai",
            ".enable_node_control().chaos_with(|c| c.disk_full().min_delay(\"1s\").max_delay(\"2s\").duration(\"1s\").apply())",
            "disk faults",
        ),
        (
            "clock.rhai",
            ".enable_node_control().chaos_with(|c| c.clock_skew().min_delay(\"1s\").max_delay(\"2s\").duration(\"1s\").apply())",
            "clock skew",
        ),
    ] {
        let script = write(
            &env,
            name,
            &format!(
                "let plan = ScenarioBuilder::topology_with(|t| t.nodes(3))\n{chaos}\n\
                 .expect_consensus_liveness().with_run_duration(\"10s\").build();\nplan.run();\n"
            ),
        );
        let run = env.run(&["run", &script, "--deployer", "k8s"]);
        assert_eq!(run.code, 2, "{name}: {run:?}");
        assert!(
            run.stderr.contains(&format!(
                "the k8s deployer cannot do {kind}: the plan uses it"
            )),
            "{name}: {run:?}"
        );
        // the same plan is fine where the backend can do it
        let local = env.run(&["check", &script]);
        assert_eq!(local.code, 0, "{name}: {local:?}");
    }
    // a partition is something Kubernetes can do: this run gets as far as looking for a
    // cluster (there is none here)
    let partition = write(
        &env,
        "partition.rhai",
        "let plan = ScenarioBuilder::topology_with(|t| t.nodes(3))\n\
         .enable_network_faults()\n\
         .chaos_with(|c| c.partition().min_delay(\"1s\").max_delay(\"2s\").duration(\"1s\").apply())\n\
         .expect_consensus_liveness().with_run_duration(\"10s\").build();\nplan.run();\n",
    );
    let run = env.run(&["run", &partition, "--deployer", "k8s"]);
    assert!(!run.stderr.contains("cannot do"), "{run:?}");
    assert!(!run.stderr.contains("cannot run this plan"), "{run:?}");
}
