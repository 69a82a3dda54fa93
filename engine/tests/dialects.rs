//! The framework against the reference node serving each dialect of the real
//! node's API: a partition that forks the chain and heals, transactions through
//! the wallet API, the block feed by stream and by polling (every block seen, a
//! reorg derived), and plans refused when the node kind lacks what they need.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_empty, deployer, ms, run_opts};
use engine::blockfeed::FeedMode;
use engine::chaos::{ChaosAction, ChaosBuilder, ChaosScenarioExt};
use engine::client::Dialect;
use engine::context::RunContext;
use engine::deploy::DeployError;
use engine::expectation::{Expectation, ExpectationError, Verdict};
use engine::nodekind::{KindCapabilities, TemplateNode};
use engine::report::{Outcome, RunReport};
use engine::runner::run_scenario;
use engine::scenario::ScenarioBuilder;
use engine::workload::TxMode;
use futures::future::BoxFuture;

/// Passes when the feed derived at least one reorg and its canonical chain of node 0 is
/// every block of that node's chain, each linked to its parent (checked by walking the
/// node's own blocks from the feed's tip down to genesis).
struct FeedSawEveryBlockAndAReorg;

impl Expectation for FeedSawEveryBlockAndAReorg {
    fn name(&self) -> String {
        "feed_saw_every_block_and_a_reorg".to_owned()
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let feed = ctx.block_feed();
            let st = feed.stats();
            let client = ctx.clients().get(0).cloned().expect("node 0");
            let Some(top) = st.heights.first().copied().flatten() else {
                return Ok(Verdict::fail(
                    "the feed saw no block of node-0",
                    serde_json::Value::Null,
                ));
            };
            let mut id = feed.canonical_at(0, top).expect("tip id");
            for h in (1..=top).rev() {
                let seen = feed.canonical_at(0, h);
                if seen.as_deref() != Some(id.as_str()) {
                    return Ok(Verdict::fail(
                        format!("height {h}: node-0 has {id}, the feed {seen:?}"),
                        serde_json::Value::Null,
                    ));
                }
                let b = client
                    .block(&id)
                    .await
                    .map_err(|e| ExpectationError::new(e.to_string()))?
                    .ok_or_else(|| ExpectationError::new(format!("node-0 lacks {id}")))?;
                id = b.parent;
            }
            let msg = format!(
                "{top} blocks, {} reorgs (deepest {}), modes {:?}",
                st.reorgs, st.max_reorg_depth, st.modes
            );
            Ok(if st.reorgs > 0 {
                Verdict::pass(msg, serde_json::Value::Null)
            } else {
                Verdict::fail(format!("no reorg derived: {msg}"), serde_json::Value::Null)
            })
        })
    }
}

/// 4 nodes, split in two for 2.5 s then healed, wallet-signed transactions throughout.
fn partition_plan(dialect: Dialect, mode: FeedMode, explorer: bool) -> engine::scenario::Scenario {
    ScenarioBuilder::topology_with(|t| {
        let t = t
            .network_full()
            .nodes(4)
            .slot_duration(ms(100))
            .active_slot_coeff(0.9)
            .security_param(60)
            .api_dialect(dialect);
        if explorer {
            t
        } else {
            t.with_override("api.block_explorer", false.into())
        }
    })
    .wallets(8)
    .transactions_with(|t| t.rate(2.0).mode(TxMode::Wallet))
    .enable_node_control()
    .enable_network_faults()
    .chaos_with(|c| {
        c.schedule()
            .at_for(
                ms(500),
                ChaosAction::Partition(vec![vec![0, 1], vec![2, 3]]),
                ms(2500),
            )
            .apply()
    })
    .with_block_feed(mode)
    .with_expectation(Arc::new(FeedSawEveryBlockAndAReorg))
    .expect_consensus_liveness()
    .expect_convergence_with(|c| c.deadline(Duration::from_secs(15)).max_tip_spread(2))
    .with_run_duration(Duration::from_secs(6))
    .build()
    .unwrap()
}

fn assert_passed(report: &RunReport, dialect: Dialect, mode: &str) {
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.summary());
    assert_eq!(report.api_dialect.as_deref(), Some(dialect.as_str()));
    assert_eq!(report.feed_modes, vec![mode; 4], "{:?}", report.feed_modes);
    let names: Vec<&str> = report.verdicts.iter().map(|v| v.name.as_str()).collect();
    for n in [
        "tx_inclusion",
        "consensus_liveness",
        "convergence",
        "feed_saw_every_block_and_a_reorg",
    ] {
        assert!(names.contains(&n), "{n} not judged: {names:?}");
    }
    assert!(report.txs_submitted > 10, "{}", report.summary());
    assert!(report.txs_included > 0, "{}", report.summary());
}

/// [`partition_plan`] run on the reference node in a fresh temp dir: it passes with `feed_mode`
/// ([`assert_passed`]) and leaves nothing.
async fn partition_heals_and_passes(
    dialect: Dialect,
    mode: FeedMode,
    explorer: bool,
    feed_mode: &str,
) {
    let base = tempfile::tempdir().unwrap();
    let plan = partition_plan(dialect, mode, explorer);
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_passed(&report, dialect, feed_mode);
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn january_dialect_partition_heal_and_wallet_inclusion_with_the_stream() {
    partition_heals_and_passes(Dialect::Logos202601, FeedMode::Auto, true, "stream").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn january_dialect_without_block_explorer_is_followed_by_polling() {
    partition_heals_and_passes(Dialect::Logos202601, FeedMode::Auto, false, "poll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn may_dialect_polling_feed_sees_every_block_and_a_reorg() {
    partition_heals_and_passes(Dialect::Logos202605, FeedMode::Poll, true, "poll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn may_dialect_stream_feed_sees_every_block_and_a_reorg() {
    partition_heals_and_passes(Dialect::Logos202605, FeedMode::Stream, true, "stream").await;
}

fn template_kind(caps: KindCapabilities) -> TemplateNode {
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/devnode-template.yaml");
    TemplateNode::new(
        common::devnode_bin(),
        template,
        vec!["--config".into(), "{config}".into()],
    )
    .unwrap()
    .with_capabilities(caps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_needing_what_the_node_kind_lacks_is_refused_before_deploying() {
    let base = tempfile::tempdir().unwrap();
    let no_client_txs = KindCapabilities {
        client_signed_txs: false,
        ..KindCapabilities::reference()
    };
    let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))
        .wallets(4)
        .transactions_with(|t| t.mode(TxMode::ClientSigned))
        .with_run_duration(Duration::from_secs(5))
        .build()
        .unwrap();
    let dep = deployer(base.path()).with_node_kind(Arc::new(template_kind(no_client_txs)));
    let started = std::time::Instant::now();
    let report = run_scenario(&plan, &dep, run_opts()).await;
    let Outcome::Error(e) = &report.outcome else {
        panic!("expected a refusal: {}", report.summary());
    };
    assert!(
        e.contains("node kind lacks client-signed transactions"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused before deploying"
    );
    assert_empty(base.path());

    // the same kind without link faults refuses a partition
    let no_links = KindCapabilities {
        link_faults: false,
        ..KindCapabilities::reference()
    };
    let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))
        .enable_node_control()
        .enable_network_faults()
        .chaos_with(|c| {
            c.schedule()
                .at_for(
                    ms(500),
                    ChaosAction::Partition(vec![vec![0], vec![1]]),
                    ms(500),
                )
                .apply()
        })
        .with_run_duration(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(
        plan.required_features
            .contains(&engine::nodekind::KindFeature::LinkFaults)
    );
    let dep = deployer(base.path()).with_node_kind(Arc::new(template_kind(no_links)));
    let err = engine::deploy::Deployer::deploy(
        &dep,
        plan.topology(),
        &engine::deploy::DeployOptions {
            required_features: plan.required_features.clone(),
            ..Default::default()
        },
    )
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(err, DeployError::MissingKindFeature { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("lacks link faults"), "{err}");
    assert_empty(base.path());

    // a kind that cannot lie refuses lying chaos and the expectations that read the evidence
    let no_lies = KindCapabilities {
        byzantine: false,
        ..KindCapabilities::reference()
    };
    for plan in [
        ScenarioBuilder::topology_with(|t| t.nodes(2))
            .enable_node_control()
            .chaos_with(|c| c.byzantine().apply())
            .with_run_duration(Duration::from_secs(5))
            .build()
            .unwrap(),
        ScenarioBuilder::topology_with(|t| t.nodes(2))
            .expect_no_equivocation()
            .with_run_duration(Duration::from_secs(5))
            .build()
            .unwrap(),
    ] {
        let dep = deployer(base.path()).with_node_kind(Arc::new(template_kind(no_lies.clone())));
        let started = std::time::Instant::now();
        let report = run_scenario(&plan, &dep, run_opts()).await;
        let Outcome::Error(e) = &report.outcome else {
            panic!("expected a refusal: {}", report.summary());
        };
        assert!(e.contains("node kind lacks byzantine behaviours"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "refused before deploying"
        );
        assert_empty(base.path());
    }
    // and Kubernetes, whose pods serve no testing surface, refuses the chaos before deploying
    let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))
        .enable_node_control()
        .chaos_with(|c| c.byzantine().apply())
        .build()
        .unwrap();
    let k8s = engine::deploy::k8s::K8sDeployer::new();
    let err = engine::deploy::check_uses(&k8s, &plan.uses).unwrap_err();
    assert!(
        err.to_string()
            .contains("the k8s deployer cannot do byzantine behaviours"),
        "{err}"
    );
    // and a kind without the testing clock and disk switches refuses chaos that uses them
    let no_switches = KindCapabilities {
        testing_switches: false,
        ..KindCapabilities::reference()
    };
    for chaos in [
        ChaosBuilder::new().disk_full().apply(),
        ChaosBuilder::new().clock_skew().apply(),
    ] {
        let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))
            .enable_node_control()
            .chaos_with(|_| chaos.clone())
            .with_run_duration(Duration::from_secs(5))
            .build()
            .unwrap();
        let dep =
            deployer(base.path()).with_node_kind(Arc::new(template_kind(no_switches.clone())));
        let report = run_scenario(&plan, &dep, run_opts()).await;
        let Outcome::Error(e) = &report.outcome else {
            panic!("expected a refusal: {}", report.summary());
        };
        assert!(
            e.contains("node kind lacks the testing clock and disk switches"),
            "{e}"
        );
        assert_empty(base.path());
    }
}
