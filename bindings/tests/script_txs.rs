//! Scripts that submit transactions, follow the block feed and read nodes the framework is
//! restarting: the scenarios of issue 14 on real reference nodes, each with the switch that
//! makes its check fail (a node that drops what it accepts, funds leaving the wallets, a
//! subscriber that misses events, a node stopped for good).

mod common;

use common::{Env, fixture};

fn run(env: &Env, script: &str, sets: &[&str]) -> common::Run {
    let mut args = vec!["run", script, "--seed", "3"];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    common::run_retrying_port_races(env.cmd().args(&args))
}

fn passes(script: &str, sets: &[&str], says: &str) {
    let env = Env::new("script-txs-");
    let run = run(&env, script, sets);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(says) || run.stderr.contains(says),
        "{run:?}"
    );
    env.assert_clean(0);
}

fn fails(script: &str, sets: &[&str], says: &str) {
    let env = Env::new("script-txs-");
    let run = run(&env, script, sets);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(says) || run.stderr.contains(says),
        "{run:?}"
    );
}

#[test]
fn mempool_fuzz_refuses_every_bad_case_with_its_reason_and_includes_none() {
    passes(
        "scenarios/mempool_fuzz.rhai",
        &[],
        "7 bad cases refused with their reasons; the valid one included",
    );
}

/// `logos-2026-01` blocks carry no transaction hash: the ids the feed and a walk of
/// `node.block(id)` compute must still agree with the one `submit_transaction` returned.
#[test]
fn mempool_fuzz_passes_on_the_january_dialect_whose_blocks_carry_no_hashes() {
    passes(
        "scenarios/mempool_fuzz.rhai",
        &["dialect=logos-2026-01"],
        "7 bad cases refused with their reasons; the valid one included",
    );
}

#[test]
fn mempool_fuzz_fails_against_a_node_that_drops_what_it_accepts() {
    fails(
        "scenarios/mempool_fuzz.rhai",
        &["drop=true"],
        "was never included",
    );
}

#[test]
fn the_same_batch_to_every_node_is_included_once_on_every_chain() {
    passes("scenarios/same_batch.rhai", &[], "each once on every chain");
}

#[test]
fn the_same_batch_check_fails_when_the_nodes_drop_it() {
    fails(
        "scenarios/same_batch.rhai",
        &["drop=true"],
        "on its chain 0 times",
    );
}

#[test]
fn balances_are_conserved_across_all_wallets() {
    passes(
        "scenarios/balance_conservation.rhai",
        &[],
        "wallets hold 12000000 on every node after",
    );
}

#[test]
fn balance_conservation_fails_when_funds_leave_the_wallets() {
    fails(
        "scenarios/balance_conservation.rhai",
        &["leak=true"],
        "genesis gave 12000000",
    );
}

#[test]
fn the_block_feed_delivers_parents_first_through_a_partition() {
    passes("scenarios/block_feed_order.rhai", &[], "every parent first");
}

#[test]
fn the_feed_order_check_fails_when_events_are_missed() {
    fails(
        "scenarios/block_feed_order.rhai",
        &["skip=5"],
        "came before its parent",
    );
}

#[test]
fn reads_of_a_node_being_restarted_wait_for_it() {
    passes(
        &fixture("restart_reads.rhai"),
        &[],
        "reads of node-0 through",
    );
}

#[test]
fn reads_of_a_node_being_paused_and_resumed_wait_for_it() {
    passes(
        &fixture("restart_reads.rhai"),
        &["mode=pause", "duration=16s", "min_restarts=2"],
        "reads of node-0 through",
    );
}

#[test]
fn without_a_wait_a_read_of_a_node_paused_past_the_client_timeout_fails() {
    fails(
        &fixture("restart_reads.rhai"),
        &["mode=pause", "duration=16s", "wait=0s"],
        "of its pause by the framework",
    );
}

#[test]
fn reads_of_a_node_being_stopped_and_started_wait_for_it() {
    passes(
        &fixture("restart_reads.rhai"),
        &["mode=stop_start", "duration=10s"],
        "reads of node-0 through",
    );
}

#[test]
fn a_node_stopped_for_good_fails_the_read_naming_the_node_and_the_stop() {
    fails(
        &fixture("restart_reads.rhai"),
        &["stop=true", "wait=2s"],
        "node-0 did not come back within 2s of its stop by the framework",
    );
}

#[test]
fn without_a_wait_a_read_during_a_restart_fails_as_before() {
    fails(
        &fixture("restart_reads.rhai"),
        &["wait=0s"],
        "of its restart by the framework",
    );
}

#[test]
fn a_live_testnet_signs_submits_follows_and_refuses() {
    let env = Env::new("script-txs-");
    let script = fixture("live_net_txs.rhai");
    let run = env.run(&["run", &script]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("live ok:"), "{run:?}");
    assert!(run.stdout.contains("at height"), "{run:?}");
    assert!(run.stdout.contains("garbage refused (400)"), "{run:?}");
    // an uncaught refusal: a script error (exit 2) with the node's status and reason, at the call
    let run = env.run(&["run", &script, "--set", "uncaught=true"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("node-0 refused the transaction (422): Failed to deserialize"),
        "{run:?}"
    );
    assert!(run.stderr.contains("live_net_txs.rhai:40:43"), "{run:?}");
    assert_eq!(env.processes(), "", "node processes left behind");
}

#[test]
fn the_new_scenarios_and_fixtures_pass_check() {
    let env = Env::new("script-txs-");
    let run = env.run(&[
        "check",
        "scenarios/mempool_fuzz.rhai",
        "scenarios/same_batch.rhai",
        "scenarios/balance_conservation.rhai",
        "scenarios/block_feed_order.rhai",
        &fixture("restart_reads.rhai"),
        &fixture("live_net_txs.rhai"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
}
