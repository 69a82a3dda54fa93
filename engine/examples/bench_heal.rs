//! Time from `heal()` to convergence: a 10-node full mesh at 200 ms slots is
//! split 5-5 for a few seconds (each half extends its own fork), healed, and
//! timed until every node reports the same tip in one polling round (all ten
//! nodes polled together every 20 ms). Prints each repetition and the median.
//!
//! `cargo build -p nomos-devnode && cargo run -p nomos-script-engine --example bench_heal [-- REPS SPLIT_SECS]`
//! (the node binary is taken from NOMOS_DEVNODE_BIN, else next to this example's directory).

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::deploy::local::LocalDeployer;
use engine::deploy::{DeployOptions, Deployer, Testnet};
use engine::nodekind::ReferenceNode;
use engine::topology::TopologyBuilder;

mod common;

use common::devnode_bin;

/// Every node's (height, tip), polled concurrently.
async fn tips(net: &dyn Testnet) -> Vec<Option<(u64, String)>> {
    let clients = net.clients();
    let futs = clients.iter().map(|c| {
        let c = c.clone().with_timeout(Duration::from_millis(500));
        async move { c.consensus_info().await.ok().map(|i| (i.height, i.tip)) }
    });
    futures::future::join_all(futs).await
}

fn agree(t: &[Option<(u64, String)>]) -> bool {
    t.iter()
        .all(|x| x.is_some() && x.as_ref().map(|v| &v.1) == t[0].as_ref().map(|v| &v.1))
}

/// Waits until every node reports the same tip; returns how long it took.
async fn until_converged(net: &dyn Testnet, deadline: Duration) -> Result<Duration, String> {
    let t = Instant::now();
    loop {
        let now = tips(net).await;
        if agree(&now) {
            return Ok(t.elapsed());
        }
        if t.elapsed() > deadline {
            return Err(format!("not converged after {deadline:?}: {now:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let split = Duration::from_secs(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4));
    let base = tempfile::tempdir().expect("temp dir");
    let deployer = LocalDeployer::new()
        .with_node_kind(Arc::new(ReferenceNode {
            binary: Some(devnode_bin()),
        }))
        .with_base_dir(base.path().to_path_buf());
    let topo = TopologyBuilder::new()
        .network_full()
        .nodes(10)
        .slot_duration(Duration::from_millis(200))
        .security_param(60)
        .seed(1)
        .build()
        .expect("topology");
    let net = deployer
        .deploy(
            &topo,
            &DeployOptions {
                ready_timeout: Duration::from_secs(60),
                ..DeployOptions::default()
            },
        )
        .await
        .expect("deploy");
    let groups = vec![(0..5).collect::<Vec<_>>(), (5..10).collect()];
    let mut samples = Vec::new();
    for rep in 0..reps {
        if let Err(e) = until_converged(&*net, Duration::from_secs(30)).await {
            eprintln!("rep {rep}: the testnet did not converge before the split: {e}");
            break;
        }
        net.partition(groups.clone()).await.expect("partition");
        tokio::time::sleep(split).await;
        let before = tips(&*net).await;
        let forked = before[0].as_ref().map(|x| &x.1) != before[5].as_ref().map(|x| &x.1);
        net.heal().await.expect("heal");
        match until_converged(&*net, Duration::from_secs(30)).await {
            Ok(d) => {
                println!(
                    "rep {rep}: heights at heal {:?}, forked {forked}, converged {:.0} ms after heal()",
                    before
                        .iter()
                        .map(|x| x.as_ref().map(|v| v.0))
                        .collect::<Vec<_>>(),
                    d.as_secs_f64() * 1000.0
                );
                samples.push(d);
            }
            Err(e) => eprintln!("rep {rep}: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    net.teardown(false).await.expect("teardown");
    samples.sort();
    if let Some(m) = samples.get(samples.len() / 2) {
        println!(
            "heal -> convergence, 10 nodes split 5-5 for {}, 200 ms slots: median {:.0} ms over {} reps (min {:.0}, max {:.0})",
            humantime::format_duration(split),
            m.as_secs_f64() * 1000.0,
            samples.len(),
            samples[0].as_secs_f64() * 1000.0,
            samples[samples.len() - 1].as_secs_f64() * 1000.0
        );
    }
}
