//! At scale, messages stay short: past 24 nodes, heights are summarised, failing nodes are
//! counted with the first few named, and the endpoint lines go to the run dir.
//! (`scripts/bench-scale.sh` runs 500 nodes.)

mod common;

use common::Env;

#[test]
fn a_failing_40_node_run_prints_a_short_summary() {
    let env = Env::new("scale-");
    let p = env.path("halted.rhai");
    std::fs::write(
        &p,
        "let plan = ScenarioBuilder::topology_with(|t| t.nodes(40).slot_duration(\"500ms\")\n\
             .with_override(\"testing.halt_at_height\", 2))\n\
         .expect_consensus_liveness().with_run_duration(\"4s\").build();\nplan.run();\n",
    )
    .unwrap();
    let run = env.run(&["run", p.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    let out = run.output();
    assert!(out.contains("40 of 40 nodes lag: node-0 "), "{out}");
    assert!(out.contains("and 35 more"), "{out}");
    assert!(
        out.contains("heights [40 nodes: min 2 · median 2 · max 2]"),
        "{out}"
    );
    assert!(out.contains("... and 35 more in "), "{out}");
    assert!(
        !out.contains("node-39 api"),
        "endpoint lines summarised: {out}"
    );
    assert!(out.len() < 8_000, "{} bytes: {out}", out.len());
    let dirs = env.run_dirs();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let endpoints = std::fs::read_to_string(dirs[0].join("endpoints.txt")).unwrap();
    assert_eq!(endpoints.lines().count(), 40, "{endpoints}");
    assert!(
        endpoints.contains("node-39 api http://127.0.0.1:"),
        "{endpoints}"
    );
}
