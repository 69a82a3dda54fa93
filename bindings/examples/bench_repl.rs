//! REPL command latency: `net.node(0).consensus_info()` evaluated through the REPL's evaluation
//! path (`repl::session::Session::eval`: compile, merge with the session's functions, run on a
//! script thread) against a live local testnet, both owned by the session and attached through a
//! supervisor (`nomos-script up`). Prints the median and p95; the target is a median under 20 ms.
//!
//! `cargo build -p nomos-script && cargo run -p nomos-script --example bench_repl [-- N]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nomos_script::cli::DeployerChoice;
use nomos_script::host::{HostSettings, Mode};
use nomos_script::repl::session::{EvalOutcome, Session};

fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/examples/bench_repl -> target/<profile>/nomos-script
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("nomos-script"))
        .expect("target dir")
}

fn measure(session: &mut Session, n: usize) -> (f64, f64) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        match session.eval("net.node(0).consensus_info()", Path::new("<input>"), false) {
            EvalOutcome::Value(_) => {}
            other => panic!("eval failed: {other:?}"),
        }
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    (samples[n / 2], samples[n * 95 / 100])
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let bin = binary();
    assert!(
        bin.exists(),
        "{} is missing: cargo build -p nomos-script",
        bin.display()
    );
    let state_dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let settings = HostSettings {
        reporters: Default::default(),
        mode: Mode::Run,
        deployer: DeployerChoice::Local,
        seed: Some(1),
        keep: false,
        params: Vec::new(),
        external: None,
        checks: nomos_script::host::CheckPolicy::Quiet,
    };

    // 1. a local testnet bound in the session (deployed here with the nomos-script binary as
    //    the node binary, since this example binary has no `devnode` subcommand)
    let mut session = Session::new(
        runtime.handle().clone(),
        settings.clone(),
        Path::new("<input>"),
    );
    let kind: Arc<dyn engine::nodekind::NodeKind> = Arc::new(engine::nodekind::ReferenceNode {
        binary: Some(bin.clone()),
    });
    let topology = engine::topology::TopologyBuilder::new()
        .nodes(3)
        .slot_duration(Duration::from_millis(100))
        .build()
        .expect("topology");
    let deployer = engine::deploy::local::LocalDeployer::new().with_node_kind(kind);
    let local = runtime
        .block_on(engine::deploy::Deployer::deploy(
            &deployer,
            &topology,
            &engine::deploy::DeployOptions::default(),
        ))
        .expect("deploy");
    session.bind_net(local.clone());
    let _ = measure(&mut session, 20);
    let (median, p95) = measure(&mut session, n);
    println!(
        "repl latency, local testnet owned by the session: median {median:.2} ms, p95 {p95:.2} ms ({n} evals)"
    );
    let _ = runtime.block_on(local.teardown(false));

    // 2. attached through a supervisor
    let topo = state_dir.path().join("topology.rhai");
    std::fs::write(
        &topo,
        "TopologyBuilder().nodes(3).slot_duration(\"100ms\")\n",
    )
    .expect("write topology");
    let cmd = |args: &[&str]| {
        std::process::Command::new(&bin)
            .args(args)
            .env("NOMOS_SCRIPT_STATE_DIR", state_dir.path())
            .output()
            .expect("run nomos-script")
    };
    let up = cmd(&["up", topo.to_str().unwrap(), "--name", "bench"]);
    assert!(
        up.status.success(),
        "up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let st = engine::live::state::read_state(&state_dir.path().join("testnets/bench.json"))
        .expect("state file");
    let (url, secret) = st.control().expect("control url and secret");
    let remote = runtime
        .block_on(engine::live::remote::RemoteTestnet::attach(
            "bench", url, secret,
        ))
        .expect("attach");
    let mut session = Session::new(runtime.handle().clone(), settings, Path::new("<input>"));
    session.bind_net(Arc::new(remote));
    std::thread::sleep(Duration::from_millis(300));
    let _ = measure(&mut session, 20);
    let (median_a, p95_a) = measure(&mut session, n);
    println!(
        "repl latency, attached testnet (`up` + `repl --attach`): median {median_a:.2} ms, p95 {p95_a:.2} ms ({n} evals)"
    );
    let down = cmd(&["down", "bench"]);
    assert!(
        down.status.success(),
        "down failed: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    let target = 20.0;
    println!(
        "target: median under {target} ms: {}",
        if median.max(median_a) < target {
            "met"
        } else {
            "NOT met"
        }
    );
}
