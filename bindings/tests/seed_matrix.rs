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
