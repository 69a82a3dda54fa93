//! Prints the engine's figures: deploy + readiness + teardown overhead for
//! 3, 10 and 30 local nodes, the runner's peak RSS, the transaction rate the
//! workload sustains against 3 nodes (with inclusion measured), and the block
//! feed's delay from the start of a block's slot to its observation.
//!
//! `cargo build --release -p nomos-devnode && cargo run --release -p nomos-script-engine --example bench_run`
//! (the node binary is taken from NOMOS_DEVNODE_BIN, else next to this example's directory).

use std::sync::Arc;
use std::time::Duration;

use engine::deploy::KeepRunDir;
use engine::deploy::local::LocalDeployer;
use engine::nodekind::ReferenceNode;
use engine::runner::{RunOptions, run_scenario};
use engine::scenario::ScenarioBuilder;

mod common;

use common::devnode_bin;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn opts() -> RunOptions {
    RunOptions {
        keep: KeepRunDir::Never,
        ready_timeout: Duration::from_secs(60),
        ..RunOptions::default()
    }
}

#[tokio::main]
async fn main() {
    let deployer = LocalDeployer::new().with_node_kind(Arc::new(ReferenceNode {
        binary: Some(devnode_bin()),
    }));
    println!("== deploy + readiness + teardown overhead (run duration excluded)");
    for n in [3usize, 10, 30] {
        let duration = Duration::from_secs(2);
        let cooldown = Duration::from_millis(200);
        let plan = ScenarioBuilder::topology_with(|t| {
            t.nodes(n)
                .network_star()
                .slot_duration(Duration::from_millis(200))
                .active_slot_coeff(0.9)
                .security_param(5)
        })
        .expect_consensus_liveness()
        .with_run_duration(duration)
        .with_cooldown(cooldown)
        .seed(1)
        .build()
        .expect("plan");
        let report = run_scenario(&plan, &deployer, opts()).await;
        let t = &report.timings;
        let overhead = t.total.saturating_sub(duration + cooldown);
        println!(
            "{n:>3} nodes: overhead {:.2}s (deploy+ready {:.2}s, teardown {:.2}s, evaluate {:.2}s) outcome {:?}",
            overhead.as_secs_f64(),
            t.deploy.as_secs_f64(),
            t.teardown.as_secs_f64(),
            t.evaluate.as_secs_f64(),
            report.outcome
        );
    }

    println!("== transaction throughput against 3 nodes (inclusion measured)");
    for per_block in [100.0, 400.0, 800.0] {
        let duration = Duration::from_secs(6);
        let plan = ScenarioBuilder::topology_with(|t| {
            t.nodes(3)
                .network_full()
                .slot_duration(Duration::from_millis(200))
                .active_slot_coeff(0.9)
                .security_param(5)
        })
        .wallets(256)
        .transactions_with(|txs| txs.rate(per_block).users(256))
        .with_run_duration(duration)
        .with_cooldown(Duration::from_secs(2))
        .seed(2)
        .build()
        .expect("plan");
        let target = per_block * 0.9 / 0.2;
        let report = run_scenario(&plan, &deployer, opts()).await;
        let rate = report.txs_submitted as f64 / report.timings.run.as_secs_f64();
        println!(
            "target {target:.0} tx/s: submitted {} ({rate:.0} tx/s accepted), included {} ({:.1}%), blocks {}, feed delay median {:?} ms, inclusion latency {:?}, outcome {:?}",
            report.txs_submitted,
            report.txs_included,
            100.0 * report.txs_included as f64 / report.txs_submitted.max(1) as f64,
            report.blocks_seen,
            report.feed_delay_median_ms,
            report
                .inclusion_latency
                .as_ref()
                .map(|l| format!("median {} ms p95 {} ms", l.median_ms, l.p95_ms)),
            report.outcome
        );
    }
    println!("== runner peak RSS: {} MiB", peak_rss_kib() / 1024);
}
