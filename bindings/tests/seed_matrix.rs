//! The partition scenario on 20 consecutive seeds, four runs at a time: a verdict that depends
//! on the seed is a flake. (`scripts/seeds.sh` does the same for every scenario, outside CI.)

mod common;

use common::{Env, workspace};

#[test]
fn partition_heal_passes_on_20_consecutive_seeds() {
    let env = Env::new("seed-matrix-");
    let script = workspace().join("scenarios/partition_heal.rhai");
    let script = script.to_str().unwrap().to_owned();
    let failures = common::seed_matrix(&env, &script, 1..=20, 4);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The scenarios of scripts that submit transactions and follow blocks (issue 14), two seeds
/// each, two runs at a time (`scripts/seeds.sh 20 scenarios/mempool_fuzz.rhai ...` runs every
/// scenario on 20 seeds outside CI).
#[test]
fn the_transaction_and_feed_scenarios_pass_on_2_consecutive_seeds() {
    let env = Env::new("seed-matrix-txs-");
    let mut failures = Vec::new();
    for name in [
        "mempool_fuzz",
        "same_batch",
        "balance_conservation",
        "block_feed_order",
    ] {
        let script = workspace().join(format!("scenarios/{name}.rhai"));
        failures.extend(common::seed_matrix(
            &env,
            script.to_str().unwrap(),
            1..=2,
            2,
        ));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
