//! Prints the compose deployer's figures against the real Docker engine: the image build time
//! (a fresh build of the node binary into a throwaway tag), and time to ready (deploy: network,
//! containers, readiness) plus teardown for 3 and 10 containers with the image cached, next to
//! the same counts on the local deployer in the same run.
//!
//! `cargo run -p nomos-script-engine --example bench_compose` (the node binary is taken from
//! NOMOS_DEVNODE_BIN, else `nomos-devnode` next to this example's directory).

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::deploy::compose::{ComposeDeployer, docker, image};
use engine::deploy::local::LocalDeployer;
use engine::deploy::{DeployOptions, Deployer};
use engine::nodekind::ReferenceNode;
use engine::topology::TopologyBuilder;

mod common;

use common::devnode_bin;

/// Deploys `n` nodes (waiting for readiness) and tears down; returns (ready, teardown).
async fn once(dep: &dyn Deployer, n: usize) -> (Duration, Duration) {
    let topo = TopologyBuilder::new()
        .nodes(n)
        .slot_duration(Duration::from_millis(200))
        .build()
        .expect("topology");
    let opts = DeployOptions {
        ready_timeout: Duration::from_secs(60),
        keep_on_deploy_failure: false,
        ..Default::default()
    };
    let start = Instant::now();
    let net = dep
        .deploy(&topo, &opts)
        .await
        .unwrap_or_else(|e| panic!("{} deploy of {n} nodes: {e}", dep.name()));
    let ready = start.elapsed();
    let start = Instant::now();
    net.teardown(false).await.expect("teardown");
    (ready, start.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = devnode_bin();
    let kind = Arc::new(ReferenceNode {
        binary: Some(bin.clone()),
    });
    let d = match docker::connect().await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("no Docker engine: {e}");
            std::process::exit(3);
        }
    };
    let size_mib = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0;
    println!("node binary {} ({size_mib:.1} MiB)", bin.display());

    // A fresh build into a throwaway tag (hash + context + classic builder), then removed.
    let start = Instant::now();
    let tag = image::tag_for(&bin).expect("hash");
    let hashed = start.elapsed();
    let bench_tag = format!("{}-bench", tag);
    let start = Instant::now();
    image::build(&d, &bin, &bench_tag)
        .await
        .expect("image build");
    let built = start.elapsed();
    let _ = d
        .remove_image(
            &bench_tag,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
    println!(
        "image build: {} (+ {} hashing the binary)",
        ms(built),
        ms(hashed)
    );

    let compose = ComposeDeployer::new().with_node_kind(kind.clone());
    let cached = compose.prepare_image().await.expect("image");
    println!(
        "image {} {}",
        cached.tag,
        if cached.built {
            format!("built now in {}", ms(cached.took))
        } else {
            "cached".to_owned()
        }
    );
    let local = LocalDeployer::new().with_node_kind(kind);
    println!(
        "{:<8} {:>5} {:>14} {:>12}",
        "deployer", "nodes", "time to ready", "teardown"
    );
    for n in [3, 10] {
        for dep in [&compose as &dyn Deployer, &local as &dyn Deployer] {
            let (ready, down) = once(dep, n).await;
            println!(
                "{:<8} {:>5} {:>14} {:>12}",
                dep.name(),
                n,
                ms(ready),
                ms(down)
            );
        }
    }
}
