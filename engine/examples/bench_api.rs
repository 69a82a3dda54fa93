//! Prints the node API's figures against 3 reference nodes, per dialect: the
//! client's call latency per endpoint (median and p99 of 200 calls), and the
//! block feed's delay (start of a block's slot to its first observation) in
//! stream mode and in polling mode, both following the same testnet at once.
//!
//! `cargo build --release -p nomos-devnode && cargo run --release -p nomos-script-engine --example bench_api`
//! (the node binary is taken from NOMOS_DEVNODE_BIN, else next to this example's directory).
//! The machine's noise matters: compare the modes and dialects with each other.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::CancellationToken;
use engine::blockfeed::{BlockFeed, FeedConfig, FeedMode};
use engine::client::{Dialect, NodeClient, TransferFunds};
use engine::deploy::local::LocalDeployer;
use engine::deploy::{DeployOptions, Deployer};
use engine::nodekind::{ReferenceNode, wallet_key};
use engine::topology::TopologyBuilder;

mod common;

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn time_calls<F, Fut, T, E>(name: &str, n: usize, f: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0;
    for i in 0..n {
        let t = Instant::now();
        if f(i).await.is_err() {
            errors += 1;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "  {name:<32} median {:>7.0} µs   p99 {:>7.0} µs{}",
        pct(lat.clone(), 0.5),
        pct(lat, 0.99),
        if errors > 0 {
            format!("   ({errors} errors)")
        } else {
            String::new()
        }
    );
}

#[tokio::main]
async fn main() {
    let deployer = LocalDeployer::new().with_node_kind(Arc::new(ReferenceNode {
        binary: Some(common::devnode_bin()),
    }));
    for dialect in Dialect::ALL {
        let topo = TopologyBuilder::new()
            .nodes(3)
            .wallets(6)
            .slot_duration(Duration::from_millis(500))
            .active_slot_coeff(0.8)
            .api_dialect(dialect)
            .seed(7)
            .build()
            .unwrap();
        let net = deployer
            .deploy(&topo, &DeployOptions::default())
            .await
            .expect("deploy");
        let genesis = net.genesis_time_ms().expect("local deploys know genesis");
        println!("== {dialect}: client call latency per endpoint (200 calls, node-0)");
        let c: NodeClient = net.clients().get(0).unwrap().clone();
        let info = c.consensus_info().await.unwrap();
        let tip = info.tip.clone();
        time_calls("GET /cryptarchia/info", 200, |_| c.consensus_info()).await;
        time_calls("GET /cryptarchia/headers", 200, |_| c.headers(None, None)).await;
        let block_path = match dialect {
            Dialect::Logos202601 => "POST /storage/block",
            Dialect::Logos202605 => "GET /cryptarchia/blocks/{id}",
        };
        time_calls(block_path, 200, |_| c.block(&tip)).await;
        time_calls("GET /network/info", 200, |_| c.network_info()).await;
        time_calls("GET /mantle/metrics", 200, |_| c.mempool_info()).await;
        let w0 = devnode::crypto::public_hex(&wallet_key(topo.seed, 0));
        let w1 = devnode::crypto::public_hex(&wallet_key(topo.seed, 1));
        time_calls("GET /wallet/{pk}/balance", 200, |_| c.balance(&w0)).await;
        let req = TransferFunds {
            tip: None,
            change_public_key: w0.clone(),
            funding_public_keys: vec![w0.clone()],
            recipient_public_key: w1.clone(),
            amount: 1,
        };
        time_calls("POST /wallet/.../transfer-funds", 200, |_| {
            c.transfer_funds(&req)
        })
        .await;
        let key = wallet_key(topo.seed, 3);
        let nonce = c
            .account(&devnode::crypto::public_hex(&key))
            .await
            .map(|a| a.nonce)
            .unwrap_or(0);
        time_calls("POST /mempool/add/tx", 200, |i| {
            let tx = devnode::crypto::SignedTx::sign(&key, &w1, 1, nonce + i as u64);
            let c = c.clone();
            async move { c.add_tx(&tx).await }
        })
        .await;

        println!("== {dialect}: block feed delay, slot start to first observation (20 s)");
        let mut feeds = Vec::new();
        for mode in [FeedMode::Stream, FeedMode::Poll] {
            let cancel = CancellationToken::new();
            let feed = BlockFeed::start_with(
                &net.clients().0,
                cancel.clone(),
                FeedConfig {
                    mode,
                    slot_clock: Some((genesis, topo.params.slot_duration)),
                    ..Default::default()
                },
            );
            feeds.push((mode, feed, cancel));
        }
        tokio::time::sleep(Duration::from_secs(20)).await;
        for (mode, feed, cancel) in feeds {
            let st = feed.stats();
            cancel.cancel();
            println!(
                "  {mode:<8?} blocks {:>3}  delay median {:>4} ms  p99 {:>4} ms  reorgs {}  modes {:?}",
                st.blocks_seen,
                st.delay_median_ms.unwrap_or(0),
                st.delay_p99_ms.unwrap_or(0),
                st.reorgs,
                st.modes
            );
        }
        net.teardown(false).await.unwrap();
    }
}
