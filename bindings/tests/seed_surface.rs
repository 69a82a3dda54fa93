//! The seed framework's builder calls that scripts write as its users do: `with_node_counts`,
//! the `transactions()` and `chaos()` flows ended with `apply()`, `include_nodes`,
//! `with_lag_allowance`, a `start_capture` closure, `ctx.run`, `ctx.random_node()`, `add_node`
//! with config overrides, and `check` growing the dry testnet on `add_node`. Real nodes, real
//! processes; each check is also shown failing.

mod common;

use common::Env;

fn write(env: &Env, name: &str, text: &str) -> String {
    let p = env.path(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The seed's forms, in one plan that runs to a pass on real nodes.
#[test]
fn the_seeds_flows_build_and_run_a_plan_that_passes() {
    let env = Env::new("seed-flows-");
    let script = write(
        &env,
        "flows.rhai",
        r#"
let plan = ScenarioBuilder::with_node_counts(3)
    .topology_with(|t| t.nodes(3).slot_duration("200ms"))
    .wallets(10)
    .transactions().rate(2).users(5).apply()
    .enable_node_control()
    .chaos().restart().include_nodes(true).min_delay("2s").max_delay("3s").target_cooldown("4s").apply()
    .expect_consensus_liveness_with(|l| l.with_lag_allowance(3))
    .expect_tx_inclusion()
    .with_expectation("described",
        |ctx| ctx.run,
        |ctx, start| {
            let run = ctx.run;
            let ok = start.node_count == 3 && start.stakes.len() == 3 && start.seed == 11
                && start.security_param == 10 && start.slot_duration == 0.2
                && start.active_slot_coeff > 0.0 && start.expected_blocks > 0.0
                && run.expected_blocks_so_far > start.expected_blocks_so_far
                && ctx.expected_blocks() == run.expected_blocks;
            #{ passed: ok, message: `start ${start}, end ${run}` }
        })
    .with_workload("random", |ctx| {
        let picked = [];
        for i in 0..5 { picked.push(ctx.random_node().index); }
        ctx.log(`picked ${picked}`);
    })
    .with_grafana_url("http://grafana.invalid:3000")
    .with_metrics_otlp_ingest_url("http://127.0.0.1:4318/v1/metrics")
    .with_run_duration("8s")
    .build();
plan.run();
"#,
    );
    let run = env.run(&["run", &script, "--seed", "11"]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = run.output();
    assert!(
        out.contains("restart node-"),
        "the chaos() flow restarted: {out}"
    );
    assert!(out.contains("pass described"), "{out}");
    assert!(out.contains("pass tx_inclusion"), "{out}");
    // the seeded choices replay
    let picked = |o: &str| {
        o.lines()
            .find(|l| l.contains("picked ["))
            .map(|l| l[l.find("picked").unwrap()..].to_string())
    };
    let again = env.run(&["run", &script, "--seed", "11"]);
    assert_eq!(again.code, 0, "{again:?}");
    let first = picked(&out).expect("the workload logged its picks");
    assert_eq!(Some(first), picked(&again.output()));
    env.assert_clean(0);
}

/// What start_capture returned reaches the evaluation; a check on it fails when it should.
#[test]
fn start_capture_hands_its_value_to_the_evaluation() {
    let env = Env::new("seed-capture-");
    let script = write(
        &env,
        "capture.rhai",
        r#"
let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("100ms"))
    .with_expectation("went down", |ctx| ctx.node(0).height(), |ctx, start| {
        let h = ctx.node(0).height();
        #{ passed: h < start, message: `node-0 from ${start} to ${h}` }
    })
    .with_run_duration("2s")
    .build();
plan.run();
"#,
    );
    let run = env.run(&["run", &script]);
    assert_eq!(run.code, 1, "{run:?}");
    let out = run.output();
    let line = out
        .lines()
        .find(|l| l.contains("node-0 from "))
        .unwrap_or_else(|| panic!("{out}"));
    // "node-0 from S to H" with S a height captured at the start, below H
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (s, h) = (nums[nums.len() - 2], nums[nums.len() - 1]);
    assert!(s >= 1 && h > s, "{line}");
    // a failed run keeps its run dir
    env.assert_clean(1);
}

/// Misused flows are named with the fix; `include_nodes(false)` leaves no target and is refused.
#[test]
fn misused_flows_say_how_to_end_them() {
    let env = Env::new("seed-misuse-");
    let cases = [
        (
            "ScenarioBuilder::with_node_counts(2).transactions().expect_tx_inclusion().build();",
            "a `transactions()` flow ends with `.apply()`",
        ),
        (
            "ScenarioBuilder::with_node_counts(2).enable_node_control().chaos().restart().with_run_duration(\"5s\").build();",
            "each chaos kind ends with `.apply()`",
        ),
        (
            "ScenarioBuilder::with_node_counts(4).enable_node_control().chaos().restart().include_nodes(false).apply().build();",
            "include_nodes(false) leaves none",
        ),
        (
            "ScenarioBuilder::with_node_counts(2).chaos_with(|c| c.apply()).build();",
            "apply() on the ChaosBuilder ends a `builder.chaos()` flow",
        ),
        ("ScenarioBuilder::with_node_counts(-1);", "with_node_counts"),
        (
            "ScenarioBuilder::with_node_counts(2).with_grafana_url(\"grafana:3000\").build();",
            "with_grafana_url = \"grafana:3000\"",
        ),
    ];
    for (i, (code, want)) in cases.iter().enumerate() {
        let script = write(&env, &format!("bad{i}.rhai"), code);
        let run = env.run(&["check", &script]);
        assert_eq!(run.code, 2, "{code}: {run:?}");
        assert!(run.stderr.contains(want), "{code}: want `{want}`: {run:?}");
        assert!(
            run.stderr.contains(&format!("bad{i}.rhai:1:")),
            "{code}: position: {run:?}"
        );
    }
    env.assert_clean(0);
}

/// `add_node` with overrides: the new node gets them (it halts where told while the others go
/// on); a path its config lacks is refused, naming the keys there. `check` grows the dry
/// testnet, so a script that uses the added node passes it.
#[test]
fn add_node_takes_config_overrides_and_check_knows_the_new_node() {
    let env = Env::new("seed-addnode-");
    let script = write(
        &env,
        "add.rhai",
        r#"
let net = LocalDeployer().deploy(TopologyBuilder().nodes(2).slot_duration("100ms"));
net.wait_ready("30s");
let i = net.add_node(#{ peers: [0], overrides: #{ "testing.halt_at_height": 3 } });
if !is_check() {
    let top = net.node(0).height() + 20;
    while net.node(0).height() < top { sleep("100ms"); }
}
let h = net.node(i).height();
print(`added node-${i} at ${h}, node-0 at ${net.node(0).height()}`);
if !is_check() && h > 3 { throw `node-${i} went past its halt: ${h}`; }
try {
    net.add_node(#{ peers: [0], overrides: #{ "testing.no_such_switch": 1 } });
    throw "an unknown override path was accepted";
} catch (e) {
    if !is_check() && !`${e}`.contains("no_such_switch") { throw e; }
}
"#,
    );
    let check = env.run(&["check", &script]);
    assert_eq!(check.code, 0, "check knows node 2: {check:?}");
    let run = env.run(&["run", &script]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("added node-2 at 3"), "{run:?}");
    // without the dry testnet growing, `net.node(2)` was out of range under check
    let plain = write(
        &env,
        "use_added.rhai",
        "let net = LocalDeployer().deploy(TopologyBuilder().nodes(2));\nlet i = net.add_node();\nnet.node(i).height();\nnet.node(i + 1).height();\n",
    );
    let check = env.run(&["check", &plain]);
    assert_eq!(check.code, 2, "{check:?}");
    assert!(
        check
            .stderr
            .contains("node = 3 is out of range: the testnet has 3 nodes"),
        "{check:?}"
    );
    env.assert_clean(0);
}

/// An error in what a builder closure returns points at the closure, with a caret; a closure
/// that ends with a statement is said to return nothing.
#[test]
fn closure_errors_point_at_the_closure() {
    let env = Env::new("seed-closure-");
    let cases = [
        (
            "let x = 1;\nlet b = ScenarioBuilder::topology_with(|t| {\n    let u = t.nodes(3);\n});\n",
            ":2:44",
            "returned nothing (its last statement is not an expression",
        ),
        (
            "let b = ScenarioBuilder::topology_with(|t| t.nodes(3))\n  .chaos_with(|c| c.restart());\n",
            ":2:19",
            "but it returned a RestartChaos",
        ),
        (
            "let b = ScenarioBuilder::topology_with(|t| t.nodes(2))\n    .transactions_with(|txs| 5);\n",
            ":2:30",
            "must return the TxWorkloadBuilder it was given",
        ),
    ];
    for (i, (code, pos, want)) in cases.iter().enumerate() {
        let script = write(&env, &format!("c{i}.rhai"), code);
        let run = env.run(&["check", &script]);
        assert_eq!(run.code, 2, "{code}: {run:?}");
        assert!(run.stderr.contains(want), "{code}: {run:?}");
        assert!(
            run.stderr.contains(&format!("c{i}.rhai{pos}")),
            "{code}: want {pos}: {run:?}"
        );
        assert!(run.stderr.contains('^'), "{code}: a caret: {run:?}");
    }
}
