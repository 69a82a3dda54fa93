//! Lying reference nodes on real processes: each behaviour (equivocation, withholding, a stale
//! parent, invalid transactions) is caught by an expectation that names the liar, and made
//! honest again the run passes; an honest node that lets an equivocation pick its tip is named;
//! the lies are in the timeline, reverted before teardown, planned from the seed by chaos, and
//! bad values are named. The fixture gives node 0 most of the stake (`solo`: all of it).

mod common;

use common::{Env, Run, fixture, planned};

fn lie(env: &Env, seed: &str, sets: &[&str]) -> Run {
    let script = fixture("byzantine.rhai");
    let mut args = vec!["run", script.as_str(), "--seed", seed];
    for s in sets {
        args.extend_from_slice(&["--set", s]);
    }
    env.run(&args)
}

/// The verdict line of `name` (`pass name: ...` or `FAIL name: ...`).
fn verdict<'a>(run: &'a Run, name: &str) -> &'a str {
    let want = format!(" {name}: ");
    run.stdout
        .lines()
        .chain(run.stderr.lines())
        .find(|l| (l.starts_with("pass") || l.starts_with("FAIL")) && l.contains(&want))
        .unwrap_or_else(|| panic!("no verdict {name}: {run:?}"))
}

fn failed(run: &Run, name: &str) -> String {
    let line = verdict(run, name);
    assert!(line.starts_with("FAIL"), "{name} should fail: {run:?}");
    line.to_owned()
}

fn passed(run: &Run, name: &str) {
    let line = verdict(run, name);
    assert!(line.starts_with("pass"), "{name} should pass: {run:?}");
}

#[test]
fn an_equivocating_leader_is_named_and_honest_nodes_do_not_follow_its_second_blocks() {
    let env = Env::new("byz-equivocate-");
    for seed in ["1", "6"] {
        let run = lie(&env, seed, &["lie=equivocate"]);
        assert_eq!(run.code, 1, "{run:?}");
        let line = failed(&run, "no_equivocation");
        assert!(line.contains("node-0 equivocated in"), "{line}");
        assert!(
            line.contains("seen by node-1, node-2, node-3"),
            "every honest node saw it, the liar is no witness: {line}"
        );
        // the honest nodes kept the first block of each slot: none accepted, one chain
        let accepted = verdict(&run, "no_equivocation_accepted");
        assert!(
            accepted.starts_with("pass") && accepted.contains("seen: "),
            "{accepted}"
        );
        passed(&run, "convergence");
        passed(&run, "consensus_liveness");
    }
    let healed = lie(&env, "1", &["lie=equivocate", "revert=true"]);
    assert_eq!(healed.code, 0, "{healed:?}");
    env.assert_clean(2);
}

#[test]
fn a_node_that_lets_an_equivocation_pick_its_tip_is_named() {
    let env = Env::new("byz-accept-");
    let run = lie(&env, "2", &["lie=equivocate", "accepting=1"]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = failed(&run, "no_equivocation_accepted");
    let accepted = line.split("seen:").next().unwrap_or_default();
    assert!(
        accepted.contains("node-1 "),
        "names the accepting node: {line}"
    );
    for honest in ["node-0 ", "node-2 ", "node-3 "] {
        assert!(!accepted.contains(honest), "{honest} accepted: {line}");
    }
    env.assert_clean(1);
}

#[test]
fn a_withholding_leader_forks_the_testnet_and_a_short_withhold_is_survived() {
    let env = Env::new("byz-withhold-");
    let run = lie(&env, "3", &["lie=withhold", "arg=3s"]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = failed(&run, "convergence");
    assert!(
        line.contains("the chains fork at height") || line.contains("tip heights spread"),
        "the withheld branch is apart from the others: {line}"
    );
    // the other expectations about lies have nothing to say: withholding is not provable
    passed(&run, "no_equivocation");
    passed(&run, "no_invalid_transactions");
    // made honest before the honest side is k blocks past the fork, its blocks are adopted
    for seed in ["3", "9"] {
        let healed = lie(
            &env,
            seed,
            &["lie=withhold", "arg=3s", "revert=true", "hold=1s"],
        );
        assert_eq!(healed.code, 0, "{healed:?}");
    }
    env.assert_clean(1);
}

#[test]
fn a_sole_leader_on_a_stale_parent_stalls_the_chain_until_made_honest() {
    let env = Env::new("byz-stale-");
    let run = lie(&env, "4", &["lie=stale_parent", "solo=true"]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = failed(&run, "consensus_liveness");
    for i in 0..4 {
        assert!(line.contains(&format!("node-{i} height")), "{line}");
    }
    let healed = lie(&env, "4", &["lie=stale_parent", "solo=true", "revert=true"]);
    assert_eq!(healed.code, 0, "{healed:?}");
    // with honest leaders beside it, its blocks (always shorter) are left aside
    let honest = lie(&env, "4", &["lie=stale_parent", "arg=1"]);
    assert_eq!(honest.code, 0, "{honest:?}");
    env.assert_clean(1);
}

#[test]
fn invalid_transactions_are_refused_and_their_sender_named() {
    let env = Env::new("byz-invalid-");
    let run = lie(&env, "5", &["lie=invalid_txs", "arg=10"]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = failed(&run, "no_invalid_transactions");
    assert!(
        line.contains("node-0 gossiped") && line.contains("bad signature"),
        "{line}"
    );
    assert!(line.contains("seen by node-1, node-2, node-3"), "{line}");
    // refused, never gossiped on nor included: the honest transactions flow as before
    passed(&run, "tx_inclusion");
    passed(&run, "consensus_liveness");
    let healed = lie(&env, "5", &["lie=invalid_txs", "arg=10", "revert=true"]);
    assert_eq!(healed.code, 0, "{healed:?}");
    env.assert_clean(1);
}

#[test]
fn lies_are_in_the_timeline_reverted_before_teardown_and_bad_values_are_named() {
    let env = Env::new("byz-log-");
    let script = env.path("log.rhai");
    std::fs::write(
        &script,
        r#"
let net = LocalDeployer().deploy(TopologyBuilder().nodes(3).slot_duration("100ms"));
net.wait_ready("30s");
net.byzantine(0, "withhold", "700ms");
let s = net.byzantine_state(0);
if s.behaviours.withhold_ms != 700 || s.summary != "withhold 700ms" { throw `state ${s}`; }
net.byzantine(1, #{equivocate: true, invalid_txs: 2, stale_parent: false});
if net.byzantine_state(1).summary != "equivocate, invalid_txs 2/slot" { throw `${net.byzantine_state(1)}`; }
sleep("1s");
let seen = net.evidence(0);
if seen.invalid_transactions == 0 { throw `node-0 saw no invalid transaction: ${seen}`; }
net.honest(0);
if net.byzantine_state(0).summary != "honest" { throw "not honest"; }
let lines = [];
for e in net.fault_log() { lines.push(e.summary); }
print(lines);
// node 1 is still lying when the script ends: made honest before teardown
"#,
    )
    .unwrap();
    let run = env.run(&["run", &script.display().to_string(), "--keep"]);
    assert_eq!(run.code, 0, "{run:?}");
    for want in [
        "byzantine node-0 withhold 700ms",
        "byzantine node-1 equivocate, invalid_txs 2/slot",
        "byzantine node-0 honest",
    ] {
        assert!(run.stdout.contains(want), "want {want}: {run:?}");
    }
    let dirs = env.run_dirs();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let log =
        std::fs::read_to_string(dirs[0].join("node-1/logs/logos-blockchain-node-1.log")).unwrap();
    let set: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("byzantine behaviours set"))
        .collect();
    assert_eq!(set.len(), 2, "told to lie, then made honest: {set:?}");
    assert!(set[1].contains("honest"), "{set:?}");
    std::fs::remove_dir_all(&dirs[0]).unwrap();

    for (i, (call, want)) in [
        (
            "net.byzantine(0, \"lie\");",
            "byzantine behaviour \"lie\" is not one of",
        ),
        (
            "net.byzantine(0, \"withhold\", \"2h\");",
            "between 1ms and an hour",
        ),
        (
            "net.byzantine(0, \"stale_parent\", 0);",
            "byzantine stale_parent = 0",
        ),
        (
            "net.byzantine(0, \"equivocate\", 3);",
            "equivocate takes no parameter",
        ),
        (
            "net.byzantine(0, #{invalid_txs: 5000});",
            "invalid_txs = 5000",
        ),
        ("net.honest(7);", "out of range"),
    ]
    .iter()
    .enumerate()
    {
        let run = env.check_bad_call(i, 2, call, want);
        assert!(
            run.stderr.contains(":2:"),
            "{call}: points at the line: {run:?}"
        );
    }
    env.assert_clean(0);
}

/// Chaos tells random targets random lies from the run seed: the same seed plans the same
/// lies, each is reverted after its hold, and a plan without node control is refused.
#[test]
fn chaos_lies_are_planned_from_the_seed_and_reverted() {
    let env = Env::new("byz-chaos-");
    let script = env.path("chaos.rhai");
    std::fs::write(
        &script,
        r#"
let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(4).slot_duration("100ms"))
    .enable_node_control()
    .chaos_with(|c| c.byzantine().behaviours(["equivocate", ["invalid_txs", 2]]).targets([0, 1])
        .min_delay("1s").max_delay("2s").duration("1s").apply())
    .expect_no_equivocation_accepted()
    .expect_convergence()
    .with_run_duration("7s")
    .build();
plan.run();
"#,
    )
    .unwrap();
    let path = script.display().to_string();
    const LIES: &str = "chaos: byzantine node-";
    let first = env.run(&["run", &path, "--seed", "21"]);
    assert_eq!(first.code, 0, "{first:?}");
    let out = first.output();
    let lies = planned(&out, LIES);
    assert!(lies.len() >= 4, "lies told and reverted: {out}");
    assert!(out.contains("honest"), "{out}");
    env.assert_same_plan(&path, "21", LIES, &lies, "lies");
    env.assert_stream_needs_node_control("byzantine()");

    // a plan's own timeline: node 1 lies from 1 s to the end, caught and named
    let scheduled = env.path("scheduled.rhai");
    std::fs::write(
        &scheduled,
        r#"
let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(3).slot_duration("100ms"))
    .enable_node_control()
    .chaos_with(|c| c.schedule().at("1s", "byzantine", [1, "invalid_txs", 3]).apply())
    .expect_no_invalid_transactions()
    .with_run_duration("3s")
    .build();
plan.run();
"#,
    )
    .unwrap();
    let run = env.run(&["run", &scheduled.display().to_string()]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = failed(&run, "no_invalid_transactions");
    assert!(line.contains("node-1 gossiped"), "{line}");
    let bad = env.path("bad_schedule.rhai");
    std::fs::write(
        &bad,
        "ScenarioBuilder::topology_with(|t| t.nodes(3)).enable_node_control()\n    .chaos_with(|c| c.schedule().at(\"1s\", \"byzantine\", 1).apply()).build();\n",
    )
    .unwrap();
    let run = env.run(&["check", &bad.display().to_string()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("schedule byzantine expects [node, behaviour]"),
        "{run:?}"
    );
    env.assert_clean(1);
}

#[test]
fn the_lying_leader_scenario_passes_and_names_an_accepting_node() {
    let env = Env::new("byz-scenario-");
    let run = env.run(&["run", "scenarios/lying_leader.rhai", "--seed", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    let bad = env.run(&[
        "run",
        "scenarios/lying_leader.rhai",
        "--seed",
        "3",
        "--set",
        "accept=true",
    ]);
    assert_eq!(bad.code, 1, "{bad:?}");
    let line = failed(&bad, "no_equivocation_accepted");
    let accepted = line.split("seen:").next().unwrap_or_default();
    assert!(accepted.contains("node-1 "), "{line}");
    env.assert_clean(1);
}

#[test]
fn an_equivocating_leader_is_named_on_compose() {
    if common::tools::skip_without("docker", common::docker::no_docker()) {
        return;
    }
    let env = Env::new("byz-compose-").removing(&["LOGOS_BLOCKCHAIN_TESTNET_IMAGE"]);
    let script = fixture("byzantine.rhai");
    let run = common::run_retrying_port_races(env.cmd().args([
        "run",
        &script,
        "--seed",
        "1",
        "--deployer",
        "compose",
        "--set",
        "lie=equivocate",
    ]));
    assert_eq!(run.code, 1, "{run:?}");
    let line = failed(&run, "no_equivocation");
    assert!(
        line.contains("node-0 equivocated in") && line.contains("seen by node-1"),
        "{line}"
    );
    passed(&run, "no_equivocation_accepted");
}
