//! Configs through the generator contract (engine/src/nodekind/generator.rs): the
//! reference node deployed with its configs written by a generator written as a
//! script (Python, not Rust) runs a scenario; a failing generator is reported with its
//! command, exit code and stderr; overrides are applied to what the generator wrote and
//! checked against the keys it has.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_empty, deployer, devnode_bin, fast};
use engine::deploy::{DeployError, DeployOptions, Deployer, KeepRunDir};
use engine::nodekind::generator::{GeneratedNode, Generator};
use engine::nodekind::{NodeKind, ReferenceNode};
use engine::report::Outcome;
use engine::runner::{RunOptions, run_scenario};
use engine::scenario::ScenarioBuilder;
use engine::topology::TopologyBuilder;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn generated(script: &str, interpreter: Option<&str>) -> Arc<dyn NodeKind> {
    let mut cmd: Vec<String> = interpreter.map(str::to_owned).into_iter().collect();
    cmd.push(fixture(script).display().to_string());
    Arc::new(GeneratedNode::new(
        Arc::new(ReferenceNode {
            binary: Some(devnode_bin()),
        }),
        Generator::new(cmd),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_generator_writes_the_configs_and_the_run_passes() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::new(
        fast(TopologyBuilder::new().nodes(3).network_ring())
            .with_override("consensus.security_param", 7.into()),
    )
    .wallets(6)
    .transactions_with(|t| t.rate(2.0))
    .expect_consensus_liveness()
    .with_run_duration(Duration::from_secs(4))
    .build()
    .unwrap();
    let dep = deployer(base.path()).with_node_kind(generated("gen_reference.py", Some("python3")));
    let opts = RunOptions {
        keep: KeepRunDir::Always,
        ..Default::default()
    };
    let report = run_scenario(&plan, &dep, opts).await;
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.summary());
    assert!(report.txs_included > 0, "{}", report.summary());
    let dir = report.run_dir.clone().expect("kept run dir");
    for i in 0..3 {
        let node = dir.join(format!("node-{i}"));
        let description = std::fs::read_to_string(node.join("testnet.json")).unwrap();
        let d: serde_json::Value = serde_json::from_str(&description).unwrap();
        assert_eq!(d["version"], 1);
        assert_eq!(d["node"]["index"], i);
        assert_eq!(d["testnet"]["leaders"].as_array().unwrap().len(), 3);
        let config = std::fs::read_to_string(node.join("config.yaml")).unwrap();
        // the override was applied to what the script wrote
        assert!(config.contains("security_param: 7"), "{config}");
        assert!(
            !config.contains("halt_at_height"),
            "the script writes no testing section"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_the_generated_config_lacks_is_named_with_the_keys_there() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(2))
        .with_node_override(1, "testing.halt_at_height", 5.into())
        .build()
        .unwrap();
    let err = deployer(base.path())
        .with_node_kind(generated("gen_reference.py", Some("python3")))
        .deploy(&topo, &DeployOptions::default())
        .await
        .err()
        .expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("node-1") && msg.contains("`testing.halt_at_height`"),
        "{msg}"
    );
    assert!(
        msg.contains("the top level has no `testing`")
            && msg.contains("keys there: node, network, api"),
        "{msg}"
    );
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_generator_is_reported_with_its_command_exit_code_and_stderr() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(2)).build().unwrap();
    let started = Instant::now();
    let err = deployer(base.path())
        .with_node_kind(generated("gen_fails.sh", None))
        .deploy(&topo, &DeployOptions::default())
        .await
        .err()
        .expect("the generator fails");
    assert!(matches!(err, DeployError::NodeKind(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("gen_fails.sh"), "names the command: {msg}");
    assert!(msg.contains("exit code 3"), "{msg}");
    assert!(
        msg.contains("circuits not found in /opt/circuits"),
        "stderr: {msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_empty(base.path());

    let missing = Arc::new(GeneratedNode::new(
        Arc::new(ReferenceNode {
            binary: Some(devnode_bin()),
        }),
        Generator::new(vec!["/nonexistent/gen".into()]),
    ));
    let err = deployer(base.path())
        .with_node_kind(missing)
        .deploy(&topo, &DeployOptions::default())
        .await
        .err()
        .expect("no such generator");
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/gen") && msg.contains("could not start"),
        "{msg}"
    );
    assert_empty(base.path());
}
