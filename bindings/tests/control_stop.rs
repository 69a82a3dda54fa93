//! A node-control action a script workload began runs to its end even when the run stops the
//! workload meanwhile: a restart cut between its stop and its start left the node down, and the
//! expectations then failed on a node the plan never meant to stop (seen on seed 17 of the
//! guide's random-restart example).

mod common;

use common::Env;

#[test]
fn a_restart_begun_as_the_run_ends_completes() {
    let env = Env::new("control-stop-");
    let script = env.path("late_restart.rhai");
    std::fs::write(
        &script,
        r#"
let plan = ScenarioBuilder::topology_with(|t| t.nodes(3).slot_duration("100ms"))
    .enable_node_control()
    .with_workload("late restart", |ctx| {
        // restart node 1 a moment before the run's end, so the stop comes while it restarts
        ctx.sleep(ctx.run_duration - 0.05);
        ctx.net.restart(1);
    })
    .expect_consensus_liveness()
    .with_run_duration("3s")
    .build();
plan.run();
"#,
    )
    .unwrap();
    for seed in ["1", "2", "3"] {
        let run = env.run(&["run", &script.display().to_string(), "--seed", seed]);
        assert_eq!(run.code, 0, "seed {seed}: {run:?}");
        assert!(
            run.output().contains("restart node-1"),
            "the restart happened: {run:?}"
        );
    }
    env.assert_clean(0);
}
