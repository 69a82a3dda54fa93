//! Disk faults on real reference nodes. A node whose disk fills up stops following and
//! producing, says "disk full" in its log, metrics and testing surface, and liveness names it;
//! given room again it catches up by sync and the run passes. A node whose last block writes
//! are held back loses exactly those blocks when it is killed (not when it is stopped), and
//! syncs them back from its peers. The fault stays in force across a restart, is in the
//! timeline, and `heal()` reverts it. Chaos plans them from the run seed. On local processes,
//! and the full disk on Docker.

mod common;

use common::{Env, fixture, planned};

fn check_full_disk_run(env: &Env, extra: &[&str]) {
    let script = fixture("disk_full.rhai");
    let mut args = vec!["run", script.as_str(), "--seed", "6"];
    args.extend_from_slice(extra);
    let line = env.run_failing(&args, "consensus_liveness");
    assert!(
        line.contains("node-3"),
        "names the node with a full disk: {line}"
    );
    assert!(
        line.contains("in force: disk full"),
        "and the cause: {line}"
    );
    let json = env.path("healed.json").display().to_string();
    args.extend_from_slice(&["--set", "revert=true", "--json", &json]);
    let healed = env.run_retrying_compose_port_races(&args);
    assert_eq!(healed.code, 0, "{healed:?}");
    // given room again, the node's catch-up is measured like a restart's
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rec = &report["runs"][0]["recovery"];
    let caught_up = rec["catch_ups"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["node"] == 3 && c["action"] == "disk ok")
        })
        .and_then(|c| c["caught_up_after_ms"].as_u64());
    assert!(caught_up.is_some_and(|ms| ms < 10_000), "{rec}");
}

#[test]
fn a_node_with_a_full_disk_is_named_and_recovers_with_room_again() {
    let env = Env::new("disk-full-");
    check_full_disk_run(&env, &[]);
    env.assert_clean(1);
}

#[test]
fn a_node_with_a_full_disk_is_named_on_compose() {
    if common::tools::skip_without("docker", common::docker::no_docker()) {
        return;
    }
    let env = Env::new("disk-compose-").removing(&["LOGOS_BLOCKCHAIN_TESTNET_IMAGE"]);
    check_full_disk_run(&env, &["--deployer", "compose"]);
}

/// One producer (node 0), so no fork blurs which writes are the last; node 2 is a follower cut
/// off from its peers, so its chain stands still and its
/// height is known exactly when it is killed.
const UNFLUSHED: &str = r#"
let lose = param("lose", 4);
let net = LocalDeployer().deploy(TopologyBuilder().network_full().nodes(3).slot_duration("100ms").stake(1, 0).stake(2, 0));
net.wait_ready("30s");
net.wait_height(10, "30s");
if lose > 0 { net.lose_unflushed(2, lose); }
net.wait_height(16, "30s");
net.isolate(2);
sleep("500ms");
let h = net.node(2).height();
let d = net.disk(2);
if lose > 0 && d.pending_blocks != lose { throw `held back ${d.pending_blocks}, want ${lose}`; }
if lose == 0 && d.pending_blocks != 0 { throw `held back ${d.pending_blocks} without the fault`; }
if d.durable_height != h - lose { throw `durable ${d.durable_height} at height ${h}`; }
net.kill(2);
net.start(2);
let after = net.disk(2);
print(`height before the kill ${h}, reloaded ${after.reloaded_height}, now ${net.node(2).height()}`);
if after.reloaded_height != h - lose { throw `reloaded ${after.reloaded_height}, want ${h - lose}`; }
if net.node(2).height() != h - lose { throw `height ${net.node(2).height()} after the restart`; }
if lose > 0 && after.unflushed_blocks != lose { throw `the fault was not applied again: ${after}`; }
// a graceful stop flushes what is held back
let h2 = net.node(2).height();
net.stop(2);
net.start(2);
if net.disk(2).reloaded_height != h2 { throw `a stop lost writes: ${net.disk(2)}`; }
let faults = [];
for f in net.node_faults() { faults.push(f.summary); }
print(`in force: ${faults}`);
print(`healed ${net.heal()}`);
if net.node_faults().len() != 0 { throw `still in force: ${net.node_faults()}`; }
if lose > 0 && net.disk(2).unflushed_blocks != 0 { throw "heal left writes held back"; }
net.wait_converged("30s");
if net.node(2).height() < h { throw "node-2 did not sync back what it lost"; }
for e in net.fault_log() { print(e.summary); }
"#;

#[test]
fn held_back_writes_are_lost_on_kill_and_synced_back() {
    let env = Env::new("disk-unflushed-");
    let script = env.path("unflushed.rhai");
    std::fs::write(&script, UNFLUSHED).unwrap();
    let path = script.display().to_string();
    let run = env.run(&["run", &path]);
    assert_eq!(run.code, 0, "{run:?}");
    for want in [
        "disk node-2 unflushed 4",
        "kill node-2",
        "disk node-2 unflushed 4 (re-applied after start)",
        "in force: [\"disk unflushed 4\"]",
        "healed 2",
        "disk node-2 flushed",
    ] {
        assert!(run.stdout.contains(want), "want {want}: {run:?}");
    }
    // without the fault a kill loses nothing: the check above fails on a store that held back
    let normal = env.run(&["run", &path, "--set", "lose=0"]);
    assert_eq!(normal.code, 0, "{normal:?}");
    assert!(normal.stdout.contains("healed 1"), "{normal:?}");
    env.assert_clean(0);
}

#[test]
fn disk_calls_name_bad_values_and_a_plan_without_node_control_is_refused() {
    let env = Env::new("disk-bad-");
    for (i, (call, want)) in [
        ("net.lose_unflushed(0, 0);", "between 1 and 10000"),
        ("net.lose_unflushed(0, 20000);", "between 1 and 10000"),
        ("net.disk_full(9);", "out of range"),
        ("net.disk(7);", "out of range"),
    ]
    .iter()
    .enumerate()
    {
        let run = env.check_bad_call(i, 2, call, want);
        assert!(
            run.stderr.contains(&format!("bad{i}.rhai:2:")),
            "{call}: position: {run:?}"
        );
    }
    env.assert_stream_needs_node_control("disk_full()");
    let trigger = env.path("trigger.rhai");
    std::fs::write(
        &trigger,
        r#"
let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("100ms"))
    .on_height(2, |net| net.disk_full(1))
    .expect_consensus_liveness()
    .with_run_duration("2s")
    .build();
plan.run();
"#,
    )
    .unwrap();
    let run = env.run(&["run", &trigger.display().to_string()]);
    assert_ne!(run.code, 0, "{run:?}");
    let out = run.output();
    assert!(
        out.contains("disk(1) needs node control") || out.contains("enable_node_control"),
        "{out}"
    );
    env.assert_clean(usize::from(!env.run_dirs().is_empty()));
}

/// Chaos fills disks and crashes nodes with held-back writes from the run seed
/// (`scenarios/broken_disks.rhai`): the same seed plans the same faults, each is reverted after
/// its hold, the network recovers.
#[test]
fn chaos_plans_disk_faults_from_the_seed_and_the_network_recovers() {
    let env = Env::new("disk-chaos-");
    let path = common::workspace()
        .join("scenarios/broken_disks.rhai")
        .display()
        .to_string();
    const FAULTS: &str = "chaos: disk node-";
    let first = env.run(&["run", &path, "--seed", "12"]);
    assert_eq!(first.code, 0, "{first:?}");
    let out = first.output();
    let faults = planned(&out, FAULTS);
    assert!(
        faults.iter().any(|f| f.ends_with("full"))
            && faults.iter().any(|f| f.contains("unflushed 3")),
        "both streams applied: {out}"
    );
    assert!(out.contains("disk node-") && out.contains(" ok"), "{out}");
    env.assert_same_plan(&path, "12", FAULTS, &faults, "disk faults");
    env.assert_clean(0);
}
