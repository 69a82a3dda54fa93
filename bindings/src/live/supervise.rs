//! `nomos-script up` and the hidden `nomos-script supervise`: `up` starts a detached supervisor
//! process and waits until it reports ready; the supervisor evaluates the script, keeps the
//! testnet it deployed (or deploys the plan/topology the script returned), serves the control API
//! and tears everything down when asked to.

use engine::error::Chain;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::deploy::{DeployOptions, NodeState, Testnet};
use engine::live::state::{self, LiveState, Status};
use engine::live::supervisor::ControlServer;
use engine::topology::{Topology, TopologyBuilder};
use rhai::Dynamic;

use crate::api::deploy::{DEFAULT_READY_TIMEOUT, DeployerHandle, NetHandle};
use crate::api::scenario::Plan;
use crate::cli::DeployerChoice;
use crate::exit;
use crate::host::{HostSettings, Mode};
use crate::params::ParamValue;
use crate::repl::session::{EvalOutcome, Session};

/// Validated options of `up` (and of the supervisor it starts).
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The script.
    pub file: PathBuf,
    /// Name of the testnet.
    pub name: String,
    /// Backend.
    pub deployer: DeployerChoice,
    /// `--set` parameters.
    pub params: Vec<(String, ParamValue)>,
    /// Seed.
    pub seed: Option<u64>,
    /// How long `up` waits for the supervisor to report ready.
    pub timeout: Duration,
}

fn param_arg((k, v): &(String, ParamValue)) -> String {
    let v = match v {
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => format!("{f:?}"),
        ParamValue::Bool(b) => b.to_string(),
        ParamValue::Str(s) => s.clone(),
    };
    format!("{k}={v}")
}

/// `nomos-script up`: returns the exit code.
pub fn up(opts: &UpOptions) -> i32 {
    if let Err(e) = state::check_name(&opts.name) {
        eprintln!("error: {e}");
        return exit::SCRIPT_ERROR;
    }
    let file = match std::fs::canonicalize(&opts.file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot read script {}: {e}", opts.file.display());
            return exit::SCRIPT_ERROR;
        }
    };
    let path = state::state_path(&opts.name);
    if path.exists() {
        match state::read_state(&path) {
            Ok(s) if s.supervisor_alive() => {
                eprintln!(
                    "error: a testnet named `{}` is already up (supervisor pid {}); `nomos-script down {}` first",
                    opts.name, s.supervisor_pid, opts.name
                );
            }
            _ => eprintln!(
                "error: a stale testnet named `{}` is recorded in {}; `nomos-script down {}` (or `gc`) cleans it up",
                opts.name,
                path.display(),
                opts.name
            ),
        }
        return exit::INFRA_ERROR;
    }
    let log_path = state::log_path(&opts.name);
    if let Some(dir) = log_path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: failed to create {}: {e}", dir.display());
        return exit::INFRA_ERROR;
    }
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&log_path)
        // a log left by an earlier testnet of this name keeps its mode otherwise
        .and_then(|f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map(|()| f)
        }) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: failed to create {}: {e}", log_path.display());
            return exit::INFRA_ERROR;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the nomos-script binary: {e}");
            return exit::INFRA_ERROR;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.arg("supervise")
        .arg("--state")
        .arg(&path)
        .arg("--name")
        .arg(&opts.name)
        .arg("--deployer")
        .arg(opts.deployer.name());
    if let Some(seed) = opts.seed {
        cmd.arg("--seed").arg(seed.to_string());
    }
    // the supervisor deploys: it must pick the same node kind as this command
    cmd.arg("--node-kind")
        .arg(engine::nodekind::selected_kind_name());
    for p in &opts.params {
        cmd.arg("--set").arg(param_arg(p));
    }
    cmd.arg(&file);
    let err_log = match log.try_clone() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: failed to open {}: {e}", log_path.display());
            return exit::INFRA_ERROR;
        }
    };
    cmd.stdin(Stdio::null()).stdout(log).stderr(err_log);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot start the supervisor: {e}");
            return exit::INFRA_ERROR;
        }
    };
    let started = Instant::now();
    loop {
        if let Ok(st) = state::read_state(&path) {
            match st.status {
                Status::Ready => {
                    print_ready(&st);
                    return exit::PASSED;
                }
                Status::Failed => {
                    let _ = wait_child(&mut child, Duration::from_secs(60));
                    return failed(&opts.name, &st, &log_path);
                }
                Status::Starting | Status::Stopping => {}
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            // it may have written Failed just before exiting
            if let Ok(st) = state::read_state(&path)
                && st.status == Status::Failed
            {
                return failed(&opts.name, &st, &log_path);
            }
            return failed_with(
                &opts.name,
                &format!("the supervisor exited ({status}) before reporting ready"),
                exit::INFRA_ERROR,
                &log_path,
            );
        }
        if started.elapsed() > opts.timeout {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = wait_child(&mut child, Duration::from_secs(60));
            return failed_with(
                &opts.name,
                &format!(
                    "the supervisor did not report ready within {}",
                    humantime::format_duration(opts.timeout)
                ),
                exit::INFRA_ERROR,
                &log_path,
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_child(child: &mut std::process::Child, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

fn failed(name: &str, st: &LiveState, log_path: &Path) -> i32 {
    failed_with(
        name,
        st.error.as_deref().unwrap_or("unknown error"),
        st.exit_code.unwrap_or(exit::INFRA_ERROR),
        log_path,
    )
}

fn failed_with(name: &str, error: &str, code: i32, log_path: &Path) -> i32 {
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    eprintln!(
        "error: testnet `{name}` did not come up: {}",
        error.trim_end()
    );
    if !tail.is_empty() {
        eprintln!("supervisor log (last lines):");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    let _ = state::remove(name);
    code
}

fn print_ready(st: &LiveState) {
    println!(
        "testnet `{}` up: {} deployer, {} nodes, supervisor pid {}, control {}",
        st.name,
        st.deployer,
        st.node_urls.len(),
        st.supervisor_pid,
        st.control_url.as_deref().unwrap_or("-")
    );
    println!("TESTNET_ENDPOINTS");
    for e in &st.endpoints {
        println!("{e}");
    }
    println!(
        "attach: nomos-script repl --attach {0}    tear down: nomos-script down {0}",
        st.name
    );
}

/// Validated options of `supervise`.
#[derive(Debug, Clone)]
pub struct SuperviseOptions {
    /// State file to write.
    pub state: PathBuf,
    /// The `up` options it runs.
    pub up: UpOptions,
}

/// The supervisor process: returns its exit code.
pub fn supervise(opts: &SuperviseOptions) -> i32 {
    // A new session: Ctrl-C in the terminal that ran `up` must not reach the testnet.
    let _ = nix::unistd::setsid();
    let name = &opts.up.name;
    let mut st = LiveState {
        name: name.clone(),
        deployer: opts.up.deployer.name().to_owned(),
        status: Status::Starting,
        error: None,
        exit_code: None,
        supervisor_pid: std::process::id(),
        control_url: None,
        control_secret: None,
        run_id: None,
        node_urls: Vec::new(),
        endpoints: Vec::new(),
        pids: Vec::new(),
        containers: Vec::new(),
        run_dir: None,
        wallet_keys: Vec::new(),
        script: Some(opts.up.file.clone()),
        log: state::log_path(name),
        created_unix: state::now_unix(),
    };
    let write = |st: &LiveState| {
        if let Err(e) = state::write_state(&opts.state, st) {
            eprintln!("error: {e}");
        }
    };
    write(&st);
    let fail_with = |st: &mut LiveState, message: String, code: i32| {
        eprintln!("{message}");
        st.status = Status::Failed;
        st.error = Some(message);
        st.exit_code = Some(code);
        write(st);
        code
    };
    let fail = |st: &mut LiveState, message: String| fail_with(st, message, exit::INFRA_ERROR);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("supervisor-rt")
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&mut st, format!("cannot start the async runtime: {e}")),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let settings = HostSettings {
        reporters: Default::default(),
        mode: Mode::Run,
        deployer: opts.up.deployer,
        seed: opts.up.seed,
        keep: false,
        params: opts.up.params.clone(),
        external: None,
        checks: crate::host::CheckPolicy::Quiet,
    };
    let mut session = Session::new(runtime.handle().clone(), settings, &opts.up.file);
    {
        let _g = runtime.enter();
        let target = session.interrupt_target();
        let stop = stop.clone();
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                runtime.spawn(async move {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    target.interrupt();
                    stop.cancel();
                });
            }
            _ => return fail(&mut st, "cannot install signal handlers".into()),
        }
    }
    let source = match std::fs::read_to_string(&opts.up.file) {
        Ok(s) => s,
        Err(e) => {
            return fail_with(
                &mut st,
                format!("error: cannot read script {}: {e}", opts.up.file.display()),
                exit::SCRIPT_ERROR,
            );
        }
    };
    println!("evaluating {}", opts.up.file.display());
    let value = match session.eval(&source, &opts.up.file, true) {
        EvalOutcome::Value(v) => v,
        EvalOutcome::Error(e, code) => {
            teardown_all(&runtime, session.take_owned_testnets());
            return fail_with(&mut st, e, code);
        }
        EvalOutcome::Interrupted => {
            teardown_all(&runtime, session.take_owned_testnets());
            return fail(&mut st, "interrupted while evaluating the script".into());
        }
    };
    let testnet = match pick_testnet(&runtime, &session, value, opts.up.deployer) {
        Ok(t) => t,
        Err(e) => return fail(&mut st, e),
    };
    let server = match runtime.block_on(ControlServer::bind(testnet.clone())) {
        Ok(s) => s,
        Err(e) => {
            let _ = runtime.block_on(testnet.teardown(false));
            return fail(&mut st, format!("cannot bind the control API: {e}"));
        }
    };
    let url = match server.local_addr() {
        Ok(a) => format!("http://{a}"),
        Err(e) => return fail(&mut st, format!("control API address: {e}")),
    };
    st.status = Status::Ready;
    st.control_url = Some(url.clone());
    st.control_secret = Some(server.secret().to_owned());
    st.deployer = testnet.deployer_name().to_owned();
    st.run_id = Some(testnet.run_id().to_owned());
    st.node_urls = testnet
        .clients()
        .iter()
        .map(|c| c.base_url().to_owned())
        .collect();
    st.endpoints = testnet.endpoints();
    st.run_dir = testnet.run_dir();
    st.pids = st.run_dir.as_deref().map(node_pids).unwrap_or_default();
    st.wallet_keys = (0..testnet.topology().wallets)
        .map(|w| hex(&engine::nodekind::wallet_key(testnet.topology().seed, w).to_bytes()))
        .collect();
    write(&st);
    println!("ready: control {url}\nTESTNET_ENDPOINTS");
    for e in &st.endpoints {
        println!("{e}");
    }
    if let Err(e) = runtime.block_on(server.serve(stop.clone())) {
        eprintln!("control API failed: {e}");
    }
    println!("tearing down");
    st.status = Status::Stopping;
    write(&st);
    teardown_all(&runtime, session.take_owned_testnets());
    if let Err(e) = runtime.block_on(testnet.teardown(false)) {
        eprintln!("teardown failed: {}", e.chain());
    }
    // the state file is ours only while it names this process
    if state::read_state(&opts.state).is_ok_and(|s| s.supervisor_pid == std::process::id()) {
        let _ = state::remove(name);
    }
    exit::PASSED
}

/// The rule: the testnet the script deployed and did not tear down (the last one if several;
/// the others are torn down), else the plan/topology the script returned, deployed here.
fn pick_testnet(
    runtime: &tokio::runtime::Runtime,
    session: &Session,
    value: Dynamic,
    deployer: DeployerChoice,
) -> Result<Arc<dyn Testnet>, String> {
    let mut live: Vec<Arc<dyn Testnet>> = session
        .take_owned_testnets()
        .into_iter()
        .filter_map(|h| h.testnet().cloned())
        .collect();
    let running = |t: &Arc<dyn Testnet>| {
        (0..t.node_count()).any(|i| {
            matches!(
                t.node_state(i),
                Some(NodeState::Running | NodeState::Paused)
            )
        })
    };
    let mut chosen = None;
    while let Some(t) = live.pop() {
        if chosen.is_none() && running(&t) {
            chosen = Some(t);
        } else {
            let _ = runtime.block_on(t.teardown(false));
        }
    }
    if let Some(t) = chosen {
        return Ok(t);
    }
    let (topology, required) = if let Some(p) = value.clone().try_cast::<Plan>() {
        (p.0.topology().clone(), p.0.capabilities.clone())
    } else if let Some(t) = value.clone().try_cast::<Topology>() {
        (t, Vec::new())
    } else if let Some(b) = value.clone().try_cast::<TopologyBuilder>() {
        (
            b.build().map_err(|e| format!("invalid topology: {e}"))?,
            Vec::new(),
        )
    } else if let Some(h) = value.clone().try_cast::<NetHandle>()
        && let Some(t) = h.testnet()
    {
        return Ok(t.clone());
    } else {
        return Err(format!(
            "the script neither left a deployed testnet running nor returned a plan or a topology (it returned {})",
            if value.is_unit() {
                "nothing".to_string()
            } else {
                crate::api::values::a_type(&value)
            }
        ));
    };
    let dep = DeployerHandle::new(deployer, session.state())
        .engine_deployer()
        .map_err(|e| e.to_string())?;
    let opts = DeployOptions {
        ready_timeout: DEFAULT_READY_TIMEOUT,
        keep_on_deploy_failure: false,
        required,
        ..DeployOptions::default()
    };
    println!(
        "deploying {} nodes with the {} deployer",
        topology.node_count(),
        dep.name()
    );
    runtime
        .block_on(async { dep.deploy(&topology, &opts).await })
        .map_err(|e| format!("deploy failed: {}", e.chain()))
}

fn teardown_all(runtime: &tokio::runtime::Runtime, nets: Vec<NetHandle>) {
    for n in nets {
        if let Some(t) = n.testnet().cloned() {
            let _ = runtime.block_on(async move { t.teardown(false).await });
        }
    }
}

/// Pids of the node processes, from the local deployer's `run.json`.
pub fn node_pids(run_dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(run_dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v["node_pids"].as_array().map(|a| {
                a.iter()
                    .filter_map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
