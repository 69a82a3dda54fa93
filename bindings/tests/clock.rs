//! Clock faults on real reference nodes: a node whose clock is set six seconds (thirty slots)
//! behind refuses its peers' blocks as from the future, falls behind and liveness names it;
//! put back on wall time it catches up and the run passes; the action is in the timeline, a
//! skew in force survives a restart and `heal()` puts every clock back. On local processes and
//! on Docker.

mod common;

use common::{Env, fixture, planned};

fn check_skewed_run(env: &Env, extra: &[&str]) {
    let script = fixture("clock_skew.rhai");
    let mut args = vec!["run", script.as_str(), "--seed", "4"];
    args.extend_from_slice(extra);
    let line = env.run_failing(&args, "consensus_liveness");
    assert!(line.contains("node-3"), "names the skewed node: {line}");
    args.extend_from_slice(&["--set", "reset=true"]);
    let healed = env.run_retrying_compose_port_races(&args);
    assert_eq!(healed.code, 0, "{healed:?}");
}

#[test]
fn a_node_behind_in_time_is_named_and_recovers_when_reset() {
    let env = Env::new("clock-skew-");
    check_skewed_run(&env, &[]);
    env.assert_clean(1);
}

#[test]
fn clock_actions_are_in_the_timeline_and_bad_values_are_named() {
    let env = Env::new("clock-log-");
    let script = env.path("log.rhai");
    std::fs::write(
        &script,
        r#"
let net = LocalDeployer().deploy(TopologyBuilder().nodes(2).slot_duration("100ms"));
net.wait_ready("30s");
net.clock_skew(1, "+1500ms");
let c = net.clock(1);
if c.skew_ms < 1400 || c.skew_ms > 1600 { throw `skew ${c}`; }
net.clock_drift(0, 100000);
sleep("1s");
let d = net.clock(0);
if d.skew_ms < 80 || d.skew_ms > 200 { throw `drift ${d}`; }
// a skew in force survives a restart and a kill
net.restart(1);
let r = net.clock(1);
if r.skew_ms < 1400 || r.skew_ms > 1600 { throw `after the restart ${r}`; }
net.kill(1);
net.start(1);
if net.clock(1).skew_ms < 1400 { throw `after the kill ${net.clock(1)}`; }
net.clock_reset(1);
net.clock_reset(0);
if net.clock(1).skew_ms != 0 { throw "not reset"; }
net.restart(1);
if net.clock(1).skew_ms != 0 { throw "a reset clock came back skewed"; }
// heal reverts clocks with the network faults
net.clock_skew(0, "-2s");
net.clock_drift(1, 1000);
let healed = net.heal();
if healed != 2 { throw `heal reverted ${healed}`; }
if net.clock(0).skew_ms != 0 || net.clock(1).drift_ppm != 0 { throw "heal left a clock off"; }
if net.node_faults().len() != 0 { throw `in force after heal: ${net.node_faults()}`; }
let lines = [];
for e in net.fault_log() { lines.push(e.summary); }
print(lines);
"#,
    )
    .unwrap();
    let run = env.run(&["run", &script.display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    for want in [
        "clock node-1 offset +1500ms drift +0ppm",
        "clock node-0 offset +0ms drift +100000ppm",
        "clock node-1 reset",
        "clock node-1 offset +1500ms drift +0ppm (re-applied after start)",
        "clock node-0 offset -2000ms drift +0ppm",
        "clock node-0 reset",
    ] {
        assert!(run.stdout.contains(want), "want {want}: {run:?}");
    }
    for (i, (call, want)) in [
        ("net.clock_skew(0, \"soon\");", "clock offset"),
        ("net.clock_skew(0, \"2d\");", "at most a day"),
        ("net.clock_drift(0, 500000);", "at most ±100000"),
        ("net.clock_skew(9, \"1s\");", "out of range"),
        (
            "TopologyBuilder().nodes(2).start_clock_skew(5, \"1s\").build();",
            "start_clock_skew node = 5 is out of range",
        ),
        (
            "TopologyBuilder().nodes(2).start_clock_skew(1, \"2d\").build();",
            "at most a day",
        ),
        (
            "TopologyBuilder().nodes(2).start_clock_skew(1, \"soon\").build();",
            "clock offset",
        ),
    ]
    .iter()
    .enumerate()
    {
        env.check_bad_call(i, 2, call, want);
    }
    env.assert_clean(0);
}

#[test]
fn a_node_behind_in_time_is_named_on_compose() {
    if common::tools::skip_without("docker", common::docker::no_docker()) {
        return;
    }
    let env = Env::new("clock-compose-").removing(&["LOGOS_BLOCKCHAIN_TESTNET_IMAGE"]);
    check_skewed_run(&env, &["--deployer", "compose"]);
}

/// Chaos skews clocks from the run seed: the same seed plans the same skews, each is reset
/// after its hold, the network recovers, and a plan without node control is refused.
#[test]
fn chaos_skews_clocks_from_the_seed_and_resets_them() {
    let env = Env::new("clock-chaos-");
    let script = env.path("chaos.rhai");
    std::fs::write(
        &script,
        r#"
let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(4).slot_duration("200ms"))
    .enable_node_control()
    .chaos_with(|c| c.clock_skew().max("1s").min_delay("1s").max_delay("2s").duration("1s").apply())
    .expect_consensus_liveness()
    .expect_convergence()
    .with_run_duration("8s")
    .build();
plan.run();
"#,
    )
    .unwrap();
    let path = script.display().to_string();
    const SKEWS: &str = "chaos: clock node-";
    let first = env.run(&["run", &path, "--seed", "21"]);
    assert_eq!(first.code, 0, "{first:?}");
    let out = first.output();
    let skews = planned(&out, SKEWS);
    assert!(skews.len() >= 2, "skews applied: {out}");
    assert!(
        out.contains("clock node-") && out.contains("reset"),
        "{out}"
    );
    env.assert_same_plan(&path, "21", SKEWS, &skews, "skews");
    env.assert_stream_needs_node_control("clock_skew()");
    env.assert_clean(0);
}

/// The reference node's own binary run as another node kind (`template`: a config template and
/// a command line, no testing clock of its own in the framework's eyes) gets its start skew
/// through libfaketime: node 1's clock reads 30 s ahead of node 0's, its slot is 300 slots
/// ahead, still after a restart, on local processes and on Docker (the library mounted into the
/// container). Where libfaketime cannot apply, the deploy is refused naming the binary and why,
/// before anything starts.
#[test]
fn another_node_binary_starts_skewed_through_libfaketime() {
    if common::tools::skip_without("libfaketime", engine::nodekind::faketime::library().err()) {
        return;
    }
    let env = Env::new("clock-faketime-").removing(&["LOGOS_BLOCKCHAIN_TESTNET_IMAGE"]);
    let template = common::workspace().join("engine/tests/fixtures/devnode-template.yaml");
    let template = template.display().to_string();
    let kind = [
        ("LOGOS_BLOCKCHAIN_NODE_KIND", "template"),
        ("LOGOS_BLOCKCHAIN_NODE_BIN", common::BIN),
        ("LOGOS_BLOCKCHAIN_NODE_ARGS", "devnode --config {config}"),
        ("LOGOS_BLOCKCHAIN_NODE_CONFIG_TEMPLATE", template.as_str()),
    ];
    let script = env.path("skewed.rhai");
    std::fs::write(
        &script,
        r#"
let skew = param("skew", "+30s");
let net = LocalDeployer().deploy(
    TopologyBuilder().nodes(2).slot_duration("100ms").stake(1, 0).start_clock_skew(1, skew));
net.wait_ready("30s");
fn ahead(net) {
    let a = net.clock(0);
    let b = net.clock(1);
    // the node does not know: to itself its clock is on time
    if b.skew_ms != 0 { throw `node-1 thinks it is ${b.skew_ms} ms off`; }
    b.now_ms - a.now_ms
}
let d = ahead(net);
let slots = net.node(1).consensus_info().slot - net.node(0).consensus_info().slot;
print(`node-1 is ${d} ms and ${slots} slots ahead`);
if d < 29500 || d > 30500 { throw `node-1 is ${d} ms ahead, not 30 s`; }
if slots < 295 || slots > 305 { throw `node-1 is ${slots} slots ahead, not 300`; }
net.restart(1);
let r = ahead(net);
if r < 29500 || r > 30500 { throw `after a restart node-1 is ${r} ms ahead`; }
print("still ahead after the restart");
"#,
    )
    .unwrap();
    let path = script.display().to_string();
    let run = env.run_with(&kind, &["run", &path]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("still ahead after the restart"),
        "{run:?}"
    );

    // without libfaketime it is refused before deploying, naming the binary
    let mut missing = kind.to_vec();
    missing.push((
        "NOMOS_SCRIPT_LIBFAKETIME",
        "/nonexistent/libfaketimeMT.so.1",
    ));
    let run = env.run_with(&missing, &["run", &path]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("start_clock_skew node-1")
            && run.stderr.contains(common::BIN)
            && run
                .stderr
                .contains("/nonexistent/libfaketimeMT.so.1: no such file"),
        "{run:?}"
    );
    // an image nomos-script did not build cannot be vouched for: refused before deploying
    let compose = env.path("compose.rhai");
    std::fs::write(
        &compose,
        "ComposeDeployer().deploy(TopologyBuilder().nodes(2).start_clock_skew(1, \"+2s\"));\n",
    )
    .unwrap();
    let mut foreign = kind.to_vec();
    foreign.push(("LOGOS_BLOCKCHAIN_TESTNET_IMAGE", "someone/else:1"));
    let run = env.run_with(&foreign, &["run", &compose.display().to_string()]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("start_clock_skew node-1")
            && run.stderr.contains("which nomos-script did not build"),
        "{run:?}"
    );
    env.assert_clean(0);
    // on Docker the library is mounted into the container read-only
    if common::tools::skip_without("docker", common::docker::no_docker()) {
        return;
    }
    let on_docker = env.path("docker.rhai");
    std::fs::write(
        &on_docker,
        std::fs::read_to_string(&script)
            .unwrap()
            .replace("LocalDeployer()", "ComposeDeployer()"),
    )
    .unwrap();
    let run = env.run_with(&kind, &["run", &on_docker.display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("still ahead after the restart"),
        "{run:?}"
    );
    env.assert_clean(0);
}

/// The reference node takes a start skew in its config: node 1 starts 6 s behind, refuses its
/// peers' blocks as from the future and lags; liveness names it.
#[test]
fn a_reference_node_started_behind_is_named() {
    let env = Env::new("clock-start-");
    let script = env.path("start.rhai");
    std::fs::write(
        &script,
        r#"
let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(3).slot_duration("200ms").start_clock_skew(1, param("skew", "-6s")))
    .expect_consensus_liveness()
    .with_run_duration("6s")
    .build();
plan.run();
"#,
    )
    .unwrap();
    let path = script.display().to_string();
    let run = env.run(&["run", &path, "--seed", "3"]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = run.line_with("FAIL consensus_liveness");
    assert!(line.contains("node-1"), "{line}");
    let on_time = env.run(&["run", &path, "--seed", "3", "--set", "skew=0"]);
    assert_eq!(on_time.code, 0, "{on_time:?}");
    env.assert_clean(1);
}
