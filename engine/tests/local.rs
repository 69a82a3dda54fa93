//! Real local testnets of the reference node: deploy, readiness, runs that
//! pass, runs that must fail, node control, teardown leaving nothing behind.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    add_node_refused, alive, assert_empty, deploy, deployer, fast, joiner, run_opts, run_pids,
};
use engine::deploy::{
    Capability, DeployError, DeployOptions, Deployer, KeepRunDir, NodeState, Testnet,
};
use engine::nodekind::ReferenceNode;
use engine::report::Outcome;
use engine::runner::{RunOptions, run_scenario};
use engine::scenario::ScenarioBuilder;
use engine::topology::TopologyBuilder;

async fn height(net: &dyn Testnet, i: usize) -> Option<u64> {
    let c = net
        .clients()
        .get(i)?
        .clone()
        .with_timeout(Duration::from_millis(500));
    c.consensus_info().await.ok().map(|i| i.height)
}

async fn max_height(net: &dyn Testnet, except: usize) -> u64 {
    let mut m = 0;
    for i in 0..net.node_count() {
        if i != except {
            m = m.max(height(net, i).await.unwrap_or(0));
        }
    }
    m
}

/// Waits until node `i` is within one block of the others.
async fn wait_caught_up(net: &dyn Testnet, i: usize, within: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let others = max_height(net, i).await;
        let mine = height(net, i).await;
        if mine.is_some_and(|h| h + 1 >= others) {
            return Ok(());
        }
        if start.elapsed() > within {
            return Err(format!(
                "node-{i} height {mine:?} < others {others} after {within:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_get_ready_and_teardown_leaves_no_process_and_no_run_dir() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(3)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    let run_dir = net.run_dir().unwrap();
    assert!(run_dir.starts_with(base.path()));
    assert!(
        run_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("nomos-script-")
    );
    let pids = run_pids(&run_dir);
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&p| alive(p)));
    for c in net.clients().iter() {
        let info = c.consensus_info().await.unwrap();
        assert!(info.height >= 1, "{} height {}", c.name(), info.height);
        let n = c.network_info().await.unwrap();
        assert!(n.n_peers >= net.topology().degree(c.index()));
    }
    assert!(run_dir.join("node-0").join("logs").exists());
    assert!(
        net.endpoints()[0]
            .to_string()
            .starts_with("node-0 api http://127.0.0.1:")
    );
    let s = net.teardown(false).await.unwrap();
    assert!(!s.kept);
    assert!(
        pids.iter().all(|&p| !alive(p)),
        "a node process survived teardown"
    );
    assert_empty(base.path());
    // idempotent
    net.teardown(false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_start_is_named_and_nothing_is_left() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(2)).build().unwrap();
    let dep = deployer(base.path()).with_node_kind(Arc::new(ReferenceNode {
        binary: Some("/bin/false".into()),
    }));
    let opts = DeployOptions {
        ready_timeout: Duration::from_secs(5),
        keep_on_deploy_failure: false,
        ..DeployOptions::default()
    };
    let err = match dep.deploy(&topo, &opts).await {
        Ok(_) => panic!("deploy of /bin/false nodes succeeded"),
        Err(e) => e.to_string(),
    };
    // the first node seen to exit ends the wait at once
    assert!(err.contains("exited with code 1 while starting"), "{err}");
    assert!(err.contains("node-0") || err.contains("node-1"), "{err}");
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_capability_fails_before_deploying() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| fast(t.nodes(2)))
        .enable_network_faults()
        .with_run_duration(Duration::from_secs(2))
        .build()
        .unwrap();
    let dep = deployer(base.path()).without_links();
    let report = run_scenario(&plan, &dep, run_opts()).await;
    match &report.outcome {
        Outcome::Error(e) => assert!(e.contains("lacks network faults"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_empty(base.path());
    let err = engine::deploy::check_capabilities(&dep, &[Capability::NetworkFaults]).unwrap_err();
    assert!(matches!(err, DeployError::MissingCapability { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_run_with_transactions_passes_liveness_inclusion_and_convergence() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| fast(t.network_star().nodes(3)))
        .wallets(20)
        .transactions_with(|txs| txs.rate(5.0).users(10))
        .expect_consensus_liveness()
        .expect_convergence()
        .with_run_duration(Duration::from_secs(4))
        .seed(11)
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert!(report.passed(), "{}", report.summary());
    assert_eq!(report.exit_code(), engine::exit::PASSED);
    assert_eq!(report.seed, 11);
    let names: Vec<&str> = report.verdicts.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["consensus_liveness", "tx_inclusion", "convergence"]);
    assert!(report.txs_submitted >= 20, "{}", report.summary());
    assert!(
        report.txs_included * 2 >= report.txs_submitted,
        "{}",
        report.summary()
    );
    assert!(report.blocks_seen >= 5, "{}", report.summary());
    let lat = report
        .inclusion_latency
        .as_ref()
        .expect("inclusion latency measured");
    assert_eq!(lat.count as u64, report.txs_included);
    assert!(lat.median_ms < 5_000, "{lat:?}");
    assert!(report.feed_delay_median_ms.is_some());
    assert!(!report.kept);
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_halted_fails_liveness_naming_each_node() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| {
        fast(t.nodes(3)).with_override("testing.halt_at_height", 2.into())
    })
    .expect_consensus_liveness()
    .with_run_duration(Duration::from_secs(3))
    .build()
    .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert_eq!(report.exit_code(), engine::exit::SCENARIO_FAILED);
    let v = &report.verdicts[0];
    assert_eq!(v.name, "consensus_liveness");
    assert!(!v.verdict.passed);
    for i in 0..3 {
        assert!(
            v.verdict
                .message
                .contains(&format!("node-{i} height 2 < target")),
            "{}",
            v.verdict.message
        );
    }
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_halted_node_is_named_alone() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| {
        fast(t.nodes(3)).with_node_override(2, "testing.halt_at_height", 2.into())
    })
    .expect_consensus_liveness()
    .with_run_duration(Duration::from_secs(4))
    .build()
    .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    let msg = &report.verdicts[0].verdict.message;
    assert!(msg.contains("node-2 height 2 < target"), "{msg}");
    assert!(msg.contains("(max height"), "{msg}");
    assert!(!msg.contains("node-0") && !msg.contains("node-1"), "{msg}");
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_transactions_fail_tx_inclusion() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| {
        fast(t.nodes(3)).with_override("testing.drop_transactions", true.into())
    })
    .wallets(10)
    .transactions_with(|txs| txs.rate(3.0).users(5))
    .with_run_duration(Duration::from_secs(3))
    .build()
    .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    let v = report
        .verdicts
        .iter()
        .find(|v| v.name == "tx_inclusion")
        .unwrap();
    assert!(!v.verdict.passed);
    assert!(
        v.verdict.message.starts_with("0 of "),
        "{}",
        v.verdict.message
    );
    assert!(report.txs_submitted > 0);
    assert_empty(base.path());
}

/// 5 nodes, node-2 accepts transactions and loses them, 10 users (2 per node).
fn one_node_drops(
    inclusion: impl FnOnce(
        engine::expectation::TxInclusionBuilder,
    ) -> engine::expectation::TxInclusionBuilder,
) -> engine::scenario::Scenario {
    ScenarioBuilder::topology_with(|t| {
        fast(t.nodes(5)).with_node_override(2, "testing.drop_transactions", true.into())
    })
    .wallets(20)
    .transactions_with(|txs| txs.rate(2.0).users(10))
    .expect_tx_inclusion_with(inclusion)
    .with_run_duration(Duration::from_secs(4))
    .seed(7)
    .build()
    .unwrap()
}

fn inclusion_verdict(report: &engine::report::RunReport) -> &engine::expectation::Verdict {
    &report
        .verdicts
        .iter()
        .find(|v| v.name == "tx_inclusion")
        .expect("tx_inclusion verdict")
        .verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_losing_its_transactions_fails_inclusion_naming_it() {
    let base = tempfile::tempdir().unwrap();
    let report = run_scenario(&one_node_drops(|i| i), &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    let v = inclusion_verdict(&report);
    assert!(!v.passed);
    assert!(v.message.starts_with("node-2: 0/"), "{}", v.message);
    assert!(
        v.message.contains("included (0%); aggregate "),
        "{}",
        v.message
    );
    for other in [0, 1, 3, 4] {
        assert!(
            !v.message.contains(&format!("node-{other}")),
            "{}",
            v.message
        );
    }
    let nodes = v.evidence["nodes"].as_array().expect("per-node evidence");
    assert_eq!(nodes.len(), 5, "{}", v.evidence);
    let two = &nodes[2];
    assert_eq!(two["node"], 2);
    assert_eq!(two["included"], 0);
    assert!(two["submitted"].as_u64().unwrap() > 0, "{}", v.evidence);
    assert!(nodes[0]["included"].as_u64().unwrap() > 0, "{}", v.evidence);
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregate_mode_lets_one_losing_node_pass() {
    let base = tempfile::tempdir().unwrap();
    let plan = one_node_drops(|i| i.per_node(false).threshold(0.5));
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    let v = inclusion_verdict(&report);
    assert!(v.passed, "{}", report.summary());
    assert!(report.passed(), "{}", report.summary());
    // the counts are reported even though they are not judged
    assert_eq!(v.evidence["nodes"][2]["included"], 0, "{}", v.evidence);
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_five_node_run_passes_per_node_inclusion() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| fast(t.nodes(5)))
        .wallets(20)
        .transactions_with(|txs| txs.rate(1.0).users(10))
        .with_run_duration(Duration::from_secs(5))
        .seed(5)
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert!(report.passed(), "{}", report.summary());
    let v = inclusion_verdict(&report);
    assert!(v.message.contains("each of 5 nodes"), "{}", v.message);
    let nodes = v.evidence["nodes"].as_array().expect("per-node evidence");
    assert_eq!(nodes.len(), 5, "{}", v.evidence);
    for n in nodes {
        assert!(n["judged"].as_u64().unwrap() > 0, "{}", v.evidence);
    }
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_restarts_and_catches_up() {
    let base = tempfile::tempdir().unwrap();
    // Every node leads: a restarted leader must resync rather than fork off.
    let topo = fast(TopologyBuilder::new().nodes(3)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    let pid_before = run_pids(&net.run_dir().unwrap())[2];
    net.kill(2).await.unwrap();
    assert!(!alive(pid_before));
    assert_eq!(net.node_state(2), Some(NodeState::Stopped));
    assert!(height(&*net, 2).await.is_none(), "a killed node answered");
    let before = max_height(&*net, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(max_height(&*net, 2).await > before, "the others stalled");
    let err = net.pause(2).await.unwrap_err().to_string();
    assert!(err.contains("node-2 is Stopped: cannot pause"), "{err}");
    net.start(2).await.unwrap();
    assert_eq!(net.node_state(2), Some(NodeState::Running));
    wait_caught_up(&*net, 2, Duration::from_secs(15))
        .await
        .unwrap();
    net.restart(1).await.unwrap();
    wait_caught_up(&*net, 1, Duration::from_secs(15))
        .await
        .unwrap();
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_node_lags_and_catches_up_after_resume() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(3)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    // the block feed sees each node's canonical height as the node reports it
    let feed_stop = engine::CancellationToken::new();
    let feed = engine::blockfeed::BlockFeed::start(&net.clients().0, feed_stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    net.pause(1).await.unwrap();
    assert_eq!(net.node_state(1), Some(NodeState::Paused));
    // let lines already in flight arrive
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = feed.stats().heights[1].expect("node-1 streamed blocks before the pause");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        height(&*net, 1).await.is_none(),
        "a paused node answered its API"
    );
    let st = feed.stats();
    let others = st.heights[0].unwrap().max(st.heights[2].unwrap());
    assert_eq!(st.heights[1], Some(frozen), "a paused node reported blocks");
    assert!(
        others >= frozen + 5,
        "node-1 did not lag: others advanced only {frozen} -> {others}"
    );
    net.resume(1).await.unwrap();
    feed_stop.cancel();
    wait_caught_up(&*net, 1, Duration::from_secs(15))
        .await
        .unwrap();
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}

/// Partitions the network when the run starts; heals it when the workloads
/// stop if the flag says so.
struct PartitionAtStart(Vec<Vec<usize>>, bool);

impl engine::workload::Workload for PartitionAtStart {
    fn name(&self) -> String {
        "partition_at_start".to_owned()
    }

    fn run(
        &self,
        ctx: engine::context::RunContext,
        stop: engine::CancellationToken,
    ) -> futures::future::BoxFuture<'static, Result<(), engine::workload::WorkloadError>> {
        let groups = self.0.clone();
        let heal = self.1;
        Box::pin(async move {
            let err = |e: engine::deploy::ControlError| {
                engine::workload::WorkloadError::new(e.to_string())
            };
            ctx.testnet().partition(groups).await.map_err(err)?;
            stop.cancelled().await;
            if heal {
                ctx.testnet().heal().await.map_err(err)?;
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_longer_than_k_blocks_fails_convergence_after_heal() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| fast(t.network_full().nodes(3)))
        .enable_network_faults()
        .with_workload(Arc::new(PartitionAtStart(vec![vec![0, 1], vec![2]], true)))
        .expect_convergence_with(|c| {
            c.deadline(Duration::from_secs(2))
                .settle(Duration::from_secs(1))
        })
        .with_run_duration(Duration::from_secs(4))
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    let v = &report.verdicts[0];
    assert_eq!(v.name, "convergence");
    assert!(
        v.verdict
            .message
            .starts_with("nodes disagree on the LIB after 2s: node-0 lib "),
        "{}",
        v.verdict.message
    );
    assert_eq!(report.fault_log.len(), 2, "{:?}", report.fault_log);
    assert!(!report.fault_log[0].reverted);
    assert!(report.fault_log[1].reverted);
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_still_in_force_fails_liveness_and_convergence_and_teardown_reverts_it() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| fast(t.network_full().nodes(3)))
        .enable_network_faults()
        .with_workload(Arc::new(PartitionAtStart(vec![vec![0, 1], vec![2]], false)))
        .expect_consensus_liveness_with(|l| l.catch_up(Duration::from_secs(1)))
        .expect_convergence_with(|c| c.deadline(Duration::from_secs(1)))
        .with_run_duration(Duration::from_secs(2))
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    for v in &report.verdicts {
        assert!(
            v.verdict
                .message
                .starts_with("fault still in force: partition [[0, 1], [2]]"),
            "{}: {}",
            v.name,
            v.verdict.message
        );
    }
    assert_eq!(report.fault_log.len(), 2, "{:?}", report.fault_log);
    assert!(
        report.fault_log[1].reverted,
        "teardown must revert every fault"
    );
    assert_empty(base.path());
}

/// Fails the run from inside after a second (as a continuous invariant would).
struct FailsEarly;

impl engine::workload::Workload for FailsEarly {
    fn name(&self) -> String {
        "fails_early".to_owned()
    }

    fn run(
        &self,
        ctx: engine::context::RunContext,
        _stop: engine::CancellationToken,
    ) -> futures::future::BoxFuture<'static, Result<(), engine::workload::WorkloadError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ctx.fail_run("always_positive", "broken at 1s: height 0 on node-1");
            ctx.fail_run("second", "ignored");
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_run_stops_the_run_early_and_skips_evaluation() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| fast(t.nodes(2)))
        .with_workload(Arc::new(FailsEarly))
        .expect_consensus_liveness()
        .with_run_duration(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Instant::now();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run was not stopped early"
    );
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert_eq!(report.verdicts.len(), 1, "evaluation must be skipped");
    assert_eq!(report.verdicts[0].name, "always_positive");
    assert_eq!(
        report.verdicts[0].verdict.message,
        "broken at 1s: height 0 on node-1"
    );
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_binary_runs_from_a_config_template_with_overrides() {
    let base = tempfile::tempdir().unwrap();
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/devnode-template.yaml");
    let kind = engine::nodekind::TemplateNode::new(
        common::devnode_bin(),
        template,
        vec!["--config".into(), "{config}".into()],
    )
    .unwrap();
    let topo = fast(TopologyBuilder::new().nodes(2).wallets(2))
        .with_node_override(1, "testing.halt_at_height", 3.into())
        .build()
        .unwrap();
    let net = deployer(base.path())
        .with_node_kind(Arc::new(kind))
        .deploy(&topo, &DeployOptions::default())
        .await
        .expect("deploy from template");
    let cfg = std::fs::read_to_string(net.run_dir().unwrap().join("node-1/config.yaml")).unwrap();
    assert!(cfg.contains("halt_at_height: 3"), "{cfg}");
    let wallet = devnode::crypto::public_hex(&engine::nodekind::wallet_key(topo.seed, 1));
    let acct = net
        .clients()
        .get(0)
        .unwrap()
        .account(&wallet)
        .await
        .unwrap();
    assert_eq!(acct.balance, topo.wallet_balance);
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}

/// Panics as soon as it runs.
struct Panics;

impl engine::workload::Workload for Panics {
    fn name(&self) -> String {
        "panics".to_owned()
    }

    fn run(
        &self,
        _ctx: engine::context::RunContext,
        _stop: engine::CancellationToken,
    ) -> futures::future::BoxFuture<'static, Result<(), engine::workload::WorkloadError>> {
        Box::pin(async { panic!("boom in a workload") })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_workload_fails_the_run_and_teardown_still_happens() {
    let base = tempfile::tempdir().unwrap();
    // opted out of stopping at the first failed workload, so liveness is still judged
    // (the default stop is tested in tests/fail_fast.rs)
    let plan = ScenarioBuilder::topology_with(|t| fast(t.nodes(2)))
        .with_workload(Arc::new(Panics))
        .expect_consensus_liveness()
        .continue_on_workload_failure()
        .with_run_duration(Duration::from_secs(1))
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert_eq!(report.workload_errors.len(), 1);
    assert!(
        report.workload_errors[0]
            .error
            .contains("panicked: boom in a workload")
    );
    assert!(
        report.verdicts[0].verdict.passed,
        "liveness is still judged"
    );
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_mid_run_interrupts_and_leaves_nothing() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| fast(t.nodes(2)))
        .expect_consensus_liveness()
        .with_run_duration(Duration::from_secs(30))
        .build()
        .unwrap();
    let o = RunOptions {
        keep: KeepRunDir::OnFailure,
        ..run_opts()
    };
    let cancel = o.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let report = run_scenario(&plan, &deployer(base.path()), o).await;
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert_eq!(report.exit_code(), engine::exit::INTERRUPTED);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!report.kept);
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_added_at_run_time_join_and_catch_up() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(2).reserve_joiner(1))
        .build()
        .unwrap();
    let net = deploy(base.path(), &topo).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let follower = net.add_node(joiner(&[0], 0)).await.unwrap();
    assert_eq!(follower, 2);
    let leader = net.add_node(joiner(&[1, 2], 1)).await.unwrap();
    assert_eq!(leader, 3);
    assert_eq!(net.node_count(), 4);
    let err = add_node_refused(&*net, &[0], 1).await;
    assert!(
        err.contains("reserved 1 staked joiner slots and all are used"),
        "{err}"
    );
    let err = add_node_refused(&*net, &[9], 0).await;
    assert_eq!(err, "node 9 does not exist: the testnet has 4 nodes");
    wait_caught_up(&*net, 2, Duration::from_secs(15))
        .await
        .unwrap();
    wait_caught_up(&*net, 3, Duration::from_secs(15))
        .await
        .unwrap();
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_testnet_without_teardown_still_kills_its_nodes() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(2)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    let pids = run_pids(&net.run_dir().unwrap());
    drop(net);
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_kills_the_nodes_of_an_abandoned_run_and_removes_its_dir() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(3)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    let run_dir = net.run_dir().unwrap();
    let pids = run_pids(&run_dir);
    // this process owns the run, so gc treats it as abandoned
    let summary = engine::deploy::local::gc(Some(base.path())).unwrap();
    assert_eq!(summary.killed, 3, "{summary:?}");
    assert_eq!(summary.removed, vec![run_dir]);
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_empty(base.path());
    net.teardown(false).await.unwrap();
}

/// The engine's waits, as Rust callers use them: a height the testnet reaches, a height it cannot
/// reach in time (the error names every node behind), and convergence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_waits_reach_heights_and_name_the_laggards_at_the_deadline() {
    use engine::deadline::Deadline;
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(3)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    engine::wait::height(&*net, 3, Deadline::Time(Duration::from_secs(30)))
        .await
        .unwrap();
    let e = engine::wait::height(&*net, 100_000, Deadline::Slots(3))
        .await
        .unwrap_err();
    assert!(
        e.starts_with("wait_height(100000) timed out after 3 slots"),
        "{e}"
    );
    for i in 0..3 {
        assert!(e.contains(&format!("node-{i} height ")), "{e}");
    }
    engine::wait::converged(&*net, Deadline::Time(Duration::from_secs(30)))
        .await
        .unwrap();
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}
