//! Reference-node benchmark (not a timed test): prints RSS of an idle node
//! and of a node in a 10-node testnet, accepted `POST /mempool/add/tx` per
//! second on loopback, and block propagation delay across a 10-node line.
//! Run with `scripts/bench-devnode.sh` (or `cargo bench -p nomos-devnode`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{NetSpec, Streamed, Testnet, key, wait_heights};
use devnode::crypto::{SignedTx, public_hex};

const WALLETS: usize = 2_000;
const TXS_PER_WALLET: u64 = 10;
const IN_FLIGHT: usize = 64;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    println!("nomos-devnode benchmark (release build, loopback)");
    idle_and_throughput().await;
    line_of_ten().await;
}

async fn idle_and_throughput() {
    let mut spec = NetSpec::new("bench-single", 1);
    spec.slot_ms = 500;
    spec.log_level = "info";
    spec.wallets = (0..WALLETS)
        .map(|w| (format!("bench/wallet/{w}"), 1_000_000))
        .collect();
    let net = Testnet::start(spec);
    wait_heights(&net, &[0], 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("idle node RSS: {} KiB", net.rss_kib(0));

    // Pre-sign so that only the node's work is measured.
    let sink = public_hex(&key("bench/sink"));
    let mut txs = Vec::with_capacity(WALLETS * TXS_PER_WALLET as usize);
    for nonce in 0..TXS_PER_WALLET {
        for w in 0..WALLETS {
            let k = key(&format!("bench/wallet/{w}"));
            txs.push(
                SignedTx::sign(&k, &sink, 1, nonce)
                    .to_mantle(net.dialect)
                    .to_string(),
            );
        }
    }
    let txs = Arc::new(txs);
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/mempool/add/tx", net.nodes[0].api);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .unwrap();
    let start = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (txs, next, accepted, url, client) = (
                txs.clone(),
                next.clone(),
                accepted.clone(),
                url.clone(),
                client.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = txs.get(i) else { return };
                    let resp = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    if resp.is_ok_and(|r| r.status().is_success()) {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = start.elapsed();
    let ok = accepted.load(Ordering::Relaxed);
    println!(
        "POST /mempool/add/tx: {ok}/{} accepted in {:.2}s = {:.0} tx/s ({IN_FLIGHT} in flight, {WALLETS} senders)",
        txs.len(),
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64()
    );
    println!("node RSS after the load: {} KiB", net.rss_kib(0));
}

async fn line_of_ten() {
    let n = 10;
    let mut spec = NetSpec::new("bench-line", n);
    // Only node 0 leads, so every block travels the whole line.
    spec.stake = (0..n).map(|i| (i == 0).then_some(1)).collect();
    spec.slot_ms = 200;
    spec.f = 0.5;
    spec.k = 20;
    spec.log_level = "info";
    let net = Testnet::start(spec);
    wait_heights(
        &net,
        &(0..n).collect::<Vec<_>>(),
        1,
        Duration::from_secs(30),
    )
    .await;
    let (near, far) = (net.stream(0).await, net.stream(n - 1).await);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let rss: Vec<u64> = (0..n).map(|i| net.rss_kib(i)).collect();
    println!(
        "10-node line: RSS per node KiB min {} max {} (node 0 {}, node 5 {})",
        rss.iter().min().unwrap(),
        rss.iter().max().unwrap(),
        rss[0],
        rss[5]
    );
    // Arrival time of each block on the two ends' block streams (the
    // real node's stream carries no adoption time).
    let adopted = |lines: &[Streamed]| -> std::collections::HashMap<String, u64> {
        lines
            .iter()
            .map(|b| (b.id.clone(), b.received_ms))
            .collect()
    };
    let at_near = adopted(&near.lock().unwrap());
    let at_far = adopted(&far.lock().unwrap());
    let mut delays: Vec<u64> = at_near
        .iter()
        .filter_map(|(id, t0)| at_far.get(id).map(|t9| t9.saturating_sub(*t0)))
        .collect();
    delays.sort_unstable();
    if delays.is_empty() {
        println!("10-node line: no block reached both ends");
        return;
    }
    println!(
        "10-node line: {} blocks, producer -> far end (9 hops) delay ms: median {} p90 {} max {}",
        delays.len(),
        delays[delays.len() / 2],
        delays[delays.len() * 9 / 10],
        delays[delays.len() - 1]
    );
}
