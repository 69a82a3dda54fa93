//! Against a real Logos node, when `LOGOS_BLOCKCHAIN_NODE_BIN` names one (it
//! cannot be built or run in CI here: see ../shared/real-node/README.md). The
//! node is started as a user would, from the generated config kept beside the
//! project (`../shared/real-node/config/`, its paths moved into a temp dir and
//! its chain start set to now), in development mode (`POL_PROOF_DEV_MODE=true`,
//! January 2026 builds). Then the framework's client and block feed are pointed at
//! it: the dialect is detected, info, headers, blocks, network and mempool decode,
//! and the feed in polling mode follows its chain. Without the variable the test
//! prints that it is skipped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use engine::CancellationToken;
use engine::blockfeed::{BlockFeed, FeedConfig, FeedMode};
use engine::client::NodeClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_and_the_block_feed_follow_a_real_node() {
    let Some(bin) = std::env::var_os("LOGOS_BLOCKCHAIN_NODE_BIN") else {
        eprintln!(
            "skipped: LOGOS_BLOCKCHAIN_NODE_BIN is not set (a real Logos node binary cannot be built here)"
        );
        return;
    };
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/real-node/config");
    let config = std::fs::read_to_string(shared.join("node-0.config.yaml"))
        .expect("../shared/real-node/config/node-0.config.yaml");
    let deployment = shared.join("deployment.yaml");
    let dir = tempfile::tempdir().unwrap();
    let start = engine::nodekind::generator::node_date(engine::blockfeed::now_ms());
    let config: String = config
        .replace("/var/lib/logos/node-0", &dir.path().display().to_string())
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("chain_start_time:") {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}chain_start_time: {start}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let cfg_path = dir.path().join("node-0.config.yaml");
    std::fs::write(&cfg_path, config).unwrap();
    let mut child = tokio::process::Command::new(&bin)
        .arg(&cfg_path)
        .arg("--deployment")
        .arg(&deployment)
        .env("POL_PROOF_DEV_MODE", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the real node");
    // the sample config serves its API on 127.0.0.1:47102
    let client = NodeClient::new(0, "http://127.0.0.1:47102");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let info = loop {
        match client.consensus_info().await {
            Ok(i) if i.height >= 1 => break i,
            _ if tokio::time::Instant::now() > deadline => {
                panic!("the real node made no block in 60 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    assert!(client.known_dialect().is_some(), "dialect detected");
    let tip = client
        .block(&info.tip)
        .await
        .unwrap()
        .expect("the tip block");
    assert_eq!(tip.id, info.tip);
    assert!(!client.headers(None, None).await.unwrap().is_empty());
    let ni = client.network_info().await.unwrap();
    assert!(ni.listen_addresses.iter().all(|a| a.starts_with("/ip4/")));
    client.mempool_info().await.unwrap();

    let cancel = CancellationToken::new();
    let feed = BlockFeed::start_with(
        std::slice::from_ref(&client),
        cancel.clone(),
        FeedConfig {
            mode: FeedMode::Poll,
            ..Default::default()
        },
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    let st = feed.stats();
    cancel.cancel();
    let now = client.consensus_info().await.unwrap();
    let seen = st.heights[0].expect("the feed saw blocks");
    assert!(
        seen + 3 >= now.height,
        "feed at {seen}, node at {}",
        now.height
    );
    for h in 1..=seen {
        assert!(
            feed.canonical_at(0, h).is_some(),
            "height {h} missing from the feed"
        );
    }
    child.kill().await.ok();
}

/// Deploys three real nodes through the `logos` kind (its command line, the configs from
/// `LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR`, UDP ports) and runs a liveness scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_real_nodes_deployed_through_the_logos_kind_pass_liveness() {
    if std::env::var_os("LOGOS_BLOCKCHAIN_NODE_BIN").is_none()
        || std::env::var_os("LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR").is_none()
    {
        eprintln!(
            "skipped: set LOGOS_BLOCKCHAIN_NODE_BIN and LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR to deploy real nodes"
        );
        return;
    }
    let kind = engine::nodekind::logos::LogosNode::from_env().expect("the logos kind");
    let base = tempfile::tempdir().unwrap();
    let dep = engine::deploy::local::LocalDeployer::new()
        .with_node_kind(std::sync::Arc::new(kind))
        .with_base_dir(base.path().to_path_buf());
    let plan = engine::scenario::ScenarioBuilder::topology_with(|t| {
        t.nodes(3)
            .slot_duration(Duration::from_secs(2))
            .active_slot_coeff(0.9)
    })
    .expect_consensus_liveness()
    .with_run_duration(Duration::from_secs(40))
    .build()
    .unwrap();
    let report = engine::runner::run_scenario(
        &plan,
        &dep,
        engine::runner::RunOptions {
            ready_timeout: Duration::from_secs(90),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        report.outcome,
        engine::report::Outcome::Passed,
        "{}",
        report.summary()
    );
    assert!(report.api_dialect.is_some(), "the dialect was detected");
}
