//! Message tampering on real reference nodes: a node that stops receiving blocks and sync
//! messages (its connections up) falls behind and liveness names it; reverted, it catches up
//! and the run passes; dropped transaction messages make inclusion name the node they were
//! sent to; duplicated and reordered messages are survived. On local processes and on Docker.

mod common;

use common::{Env, fixture};

#[test]
fn a_node_starved_of_blocks_is_named_and_recovers_when_reverted() {
    let env = Env::new("tamper-blocks-");
    let script = fixture("tamper_blocks.rhai");
    let run = env.run(&["run", &script, "--seed", "3"]);
    assert_eq!(run.code, 1, "{run:?}");
    let out = run.output();
    assert!(out.contains("FAIL consensus_liveness"), "{out}");
    assert!(out.contains("node-2"), "names the starved node: {out}");
    assert!(
        out.contains("drop block messages (p 1) on links of node 2"),
        "in the fault log: {out}"
    );
    let healed = env.run(&["run", &script, "--seed", "3", "--set", "revert=true"]);
    assert_eq!(healed.code, 0, "{healed:?}");
    env.assert_clean(1);
}

#[test]
fn dropped_transaction_messages_fail_inclusion_naming_the_node() {
    let env = Env::new("tamper-txs-");
    let run = env.run(&["run", &fixture("tamper_txs.rhai"), "--seed", "5"]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = run.line_with("FAIL tx_inclusion");
    assert!(line.contains("node-0"), "{line}");
    env.assert_clean(1);
}

#[test]
fn duplicated_and_reordered_messages_are_survived() {
    let env = Env::new("tamper-dup-");
    let script = env.path("dup.rhai");
    std::fs::write(
        &script,
        r#"
let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(3).slot_duration("100ms"))
    .wallets(9)
    .transactions_with(|txs| txs.rate(2))
    .enable_network_faults()
    .on_height(2, |net| {
        net.duplicate_messages("all", "block", 1.0);
        net.duplicate_messages("all", "tx", 0.5);
        net.reorder_messages("all", "sync", "150ms");
        net.reorder_messages([0, 1], "tx", "100ms");
        let log = net.fault_log();
        if log.len() < 4 { throw `fault log: ${log}`; }
        // while in force, the chain goes on and the nodes keep together
        let start = net.node(0).height();
        sleep("2s");
        let hs = [];
        for n in net.nodes() { hs.push(n.height()); }
        for h in hs { if h < start + 5 { throw `heights ${hs} from ${start}`; } }
        net.heal();
    })
    .expect_consensus_liveness()
    .expect_tx_inclusion()
    .expect_convergence()
    .with_run_duration("5s")
    .build();
plan.run();
"#,
    )
    .unwrap();
    let run = env.run(&["run", &script.display().to_string(), "--seed", "8"]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = run.output();
    assert!(
        out.contains("duplicate block messages (p 1) on all links"),
        "{out}"
    );
    assert!(
        out.contains("reorder sync messages within 150ms on all links"),
        "{out}"
    );
    env.assert_clean(0);
}

#[test]
fn bad_tampering_arguments_are_named() {
    let env = Env::new("tamper-bad-");
    let cases = [
        ("net.drop_messages(\"all\", \"blob\", 0.5);", "\"blob\""),
        (
            "net.drop_messages(\"most\", \"tx\", 0.5);",
            "links = \"most\"",
        ),
        ("net.drop_messages(7, \"tx\", 0.5);", "out of range"),
        ("net.duplicate_messages([0], \"tx\", 0.5);", "[a, b]"),
        (
            "net.drop_messages(\"all\", \"tx\", 1.5);",
            "within 0.0..=1.0",
        ),
        ("net.delay_messages(\"all\", \"tx\", \"0s\");", "above zero"),
    ];
    for (i, (call, want)) in cases.iter().enumerate() {
        let run = env.check_bad_call(i, 3, call, want);
        assert!(run.stderr.contains(&format!("bad{i}.rhai:2:")), "{run:?}");
    }
}

/// The same starvation on Docker: the link layer's relays on the network's gateway tamper with
/// the containers' messages as they do with local processes'.
#[test]
fn a_node_starved_of_blocks_is_named_on_compose() {
    if common::tools::skip_without("docker", common::docker::no_docker()) {
        return;
    }
    let env = Env::new("tamper-compose-").removing(&["LOGOS_BLOCKCHAIN_TESTNET_IMAGE"]);
    let script = fixture("tamper_blocks.rhai");
    let run = common::run_retrying_port_races(env.cmd().args([
        "run",
        &script,
        "--deployer",
        "compose",
        "--seed",
        "3",
    ]));
    assert_eq!(run.code, 1, "{run:?}");
    let out = run.output();
    assert!(out.contains("compose deployer"), "{out}");
    assert!(out.contains("FAIL consensus_liveness"), "{out}");
    assert!(out.contains("node-2"), "{out}");
    let healed = common::run_retrying_port_races(env.cmd().args([
        "run",
        &script,
        "--deployer",
        "compose",
        "--seed",
        "3",
        "--set",
        "revert=true",
    ]));
    assert_eq!(healed.code, 0, "{healed:?}");
}
