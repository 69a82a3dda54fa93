//! Node kinds from the command line: the main scenarios with the reference node's configs
//! made by an external generator process (`nomos-script devnode gen-config`, through the
//! generator contract), and kinds that cannot run a plan refused before deploying.

mod common;

use common::{BIN, Env};

fn new_env() -> Env {
    Env::new("kinds-test-").removing(&["RUST_BACKTRACE"])
}

#[test]
fn the_main_scenarios_run_with_configs_from_an_external_generator() {
    let env = new_env();
    for scenario in ["scenarios/liveness.rhai", "scenarios/partition_heal.rhai"] {
        let run = env.run_with(
            &[(
                "LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR",
                &format!("{BIN} devnode gen-config"),
            )],
            &["run", scenario, "--seed", "5", "--keep"],
        );
        assert_eq!(run.code, 0, "{scenario}: {run:?}");
        let dirs = env.run_dirs();
        let dir = dirs.last().expect("kept run dir");
        let description = std::fs::read_to_string(dir.join("node-0/testnet.json"))
            .expect("the generator was given its description");
        assert!(description.contains("\"version\": 1"), "{description}");
        let config = std::fs::read_to_string(dir.join("node-0/config.yaml")).unwrap();
        assert!(config.contains("security_param"), "{config}");
        for d in dirs {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
    env.assert_clean(0);
}

#[test]
fn an_unknown_kind_and_a_real_node_kind_without_its_setup_are_clear_errors() {
    let env = new_env();
    let run = env.run(&["--node-kind", "bogus", "run", "scenarios/liveness.rhai"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("unknown node kind \"bogus\""),
        "{run:?}"
    );
    assert!(run.stderr.contains("reference, logos, template"), "{run:?}");

    let run = env.run(&["--node-kind", "logos", "run", "scenarios/liveness.rhai"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("needs LOGOS_BLOCKCHAIN_NODE_BIN"),
        "{run:?}"
    );
    env.assert_clean(0);
}

#[test]
fn a_partition_is_refused_on_the_real_node_kind_before_deploying() {
    let env = new_env();
    let run = env.run_with(
        &[
            ("LOGOS_BLOCKCHAIN_NODE_KIND", "logos"),
            ("LOGOS_BLOCKCHAIN_NODE_BIN", "/bin/sh"),
            ("LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR", "/bin/false"),
        ],
        &["run", "scenarios/partition_heal.rhai"],
    );
    assert!(matches!(run.code, 2 | 3), "{run:?}");
    assert!(
        run.stderr.contains("the logos node kind lacks link faults"),
        "{run:?}"
    );
    env.assert_clean(0);
}
