//! Deployers (`LocalDeployer()`, `ComposeDeployer()`, `K8sDeployer()`) and live testnets.
//!
//! ```rhai
//! let net = LocalDeployer().deploy(TopologyBuilder().network_ring().nodes(4));
//! net.wait_ready();
//! print(net.node(0).consensus_info());
//! net.restart(2);
//! net.partition([[0, 1], [2, 3]]);
//! net.heal();
//! net.down();
//! ```
//!
//! A testnet the script does not take down itself is torn down when the script ends, however it
//! ends (the host keeps every handle).

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::deploy::{AddNodeSpec, ControlError, DeployOptions, Deployer, Testnet};
use engine::links::LinkSel;
use engine::topology::{Topology, TopologyBuilder};
use rhai::{Array, Dynamic, Engine, INT, Map};

use super::client::NodeHandle;
use super::report::{InfraFailure, ReportHandle};
use super::runner;
use super::scenario::Plan;
use super::values::{Res, count, duration, err, index, index_groups, int, number};
use crate::bridge::Bridge;
use crate::cli::DeployerChoice;
use crate::host::{HostState, Mode};

/// Default deadline of `net.wait_ready()`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A deployer as scripts see it: which backend, and the engine deployer when it exists in this
/// build.
#[derive(Clone)]
pub struct DeployerHandle {
    /// The backend.
    pub choice: DeployerChoice,
    state: Arc<HostState>,
}

impl DeployerHandle {
    /// The deployer for `choice`.
    pub fn new(choice: DeployerChoice, state: Arc<HostState>) -> Self {
        Self { choice, state }
    }

    /// The engine deployer, or an error saying the backend is not available.
    pub fn engine_deployer(&self) -> Res<Arc<dyn Deployer>> {
        match self.choice {
            DeployerChoice::Local => Ok(Arc::new(engine::deploy::local::LocalDeployer::default())),
            DeployerChoice::Compose => {
                Ok(Arc::new(engine::deploy::compose::ComposeDeployer::new()))
            }
            other => infra(format!(
                "the {} deployer is not available in this build yet; use --deployer local",
                other.name()
            )),
        }
    }

    /// Deploys `topology`, waits for readiness, registers the testnet for teardown at exit.
    pub fn deploy_topology(&self, topology: Topology) -> Res<NetHandle> {
        self.deploy_with(topology, Vec::new())
    }

    /// Deploys `topology` with the capabilities a plan requires.
    pub fn deploy_with(
        &self,
        topology: Topology,
        required: Vec<engine::deploy::Capability>,
    ) -> Res<NetHandle> {
        let bridge = self.state.bridge.clone();
        if self.state.settings.mode == Mode::Check {
            return Ok(NetHandle::dry(topology.node_count(), bridge));
        }
        let deployer = self.engine_deployer()?;
        let opts = DeployOptions {
            ready_timeout: DEFAULT_READY_TIMEOUT,
            keep_on_deploy_failure: self.state.settings.keep,
            required,
            ..DeployOptions::default()
        };
        let result =
            bridge.block_on_cancellable(async move { deployer.deploy(&topology, &opts).await })?;
        let net = match result {
            Ok(net) => net,
            Err(e) => return infra(format!("deploy failed: {e}")),
        };
        let handle = NetHandle::live(net, bridge);
        if let Some(dir) = handle.run_dir() {
            println!("testnet {} up; run dir {dir}", handle.run_id());
        }
        self.state
            .live
            .lock()
            .expect("live testnets")
            .push(handle.clone());
        Ok(handle)
    }
}

/// An infrastructure error value (exit 3 when uncaught).
pub fn infra<T>(message: String) -> Res<T> {
    Err(Box::new(rhai::EvalAltResult::ErrorRuntime(
        Dynamic::from(InfraFailure(message)),
        rhai::Position::NONE,
    )))
}

/// A live (or dry) testnet. Cheap handle: every method takes `&self`.
#[derive(Clone)]
pub struct NetHandle {
    net: Option<Arc<dyn Testnet>>,
    dry_nodes: usize,
    bridge: Bridge,
}

impl NetHandle {
    /// A handle on a deployed testnet.
    pub fn live(net: Arc<dyn Testnet>, bridge: Bridge) -> Self {
        Self {
            net: Some(net),
            dry_nodes: 0,
            bridge,
        }
    }

    /// A stand-in for `check`: knows its node count, deploys nothing.
    pub fn dry(nodes: usize, bridge: Bridge) -> Self {
        Self {
            net: None,
            dry_nodes: nodes,
            bridge,
        }
    }

    /// The engine testnet, if deployed.
    pub fn testnet(&self) -> Option<&Arc<dyn Testnet>> {
        self.net.as_ref()
    }

    fn node_count(&self) -> usize {
        self.net.as_ref().map_or(self.dry_nodes, |n| n.node_count())
    }

    fn run_id(&self) -> String {
        self.net
            .as_ref()
            .map_or_else(|| "dry".to_string(), |n| n.run_id().to_string())
    }

    fn run_dir(&self) -> Option<String> {
        self.net
            .as_ref()
            .and_then(|n| n.run_dir())
            .map(|p| p.display().to_string())
    }

    fn check_index(&self, i: INT, what: &str) -> Res<usize> {
        let i = count(i, what)?;
        let n = self.node_count();
        if i >= n {
            return err(format!(
                "{what} = {i} is out of range: the testnet has {n} nodes (0..{n})"
            ));
        }
        Ok(i)
    }

    fn node(&self, i: INT) -> Res<NodeHandle> {
        let i = self.check_index(i, "node")?;
        Ok(match &self.net {
            None => NodeHandle::dry(i, self.bridge.clone()),
            Some(net) => match net.clients().get(i) {
                Some(c) => NodeHandle::new(c.clone(), self.bridge.clone()),
                None => return err(format!("node {i} has no client")),
            },
        })
    }

    fn nodes(&self) -> Array {
        match &self.net {
            None => (0..self.dry_nodes)
                .map(|i| Dynamic::from(NodeHandle::dry(i, self.bridge.clone())))
                .collect(),
            Some(net) => net
                .clients()
                .iter()
                .map(|c| Dynamic::from(NodeHandle::new(c.clone(), self.bridge.clone())))
                .collect(),
        }
    }

    fn control<F>(&self, action: &str, i: INT, f: F) -> Res<()>
    where
        F: for<'a> FnOnce(
            &'a dyn Testnet,
            usize,
        ) -> futures::future::BoxFuture<'a, Result<(), ControlError>>,
    {
        let i = self.check_index(i, action)?;
        let Some(net) = self.net.clone() else {
            return Ok(());
        };
        let r = self
            .bridge
            .block_on_cancellable(async move { f(&*net, i).await })?;
        r.or_else(|e| err(format!("{action}({i}) failed: {e}")))
    }

    fn fault<F>(&self, what: &str, f: F) -> Res<INT>
    where
        F: FnOnce(&dyn Testnet) -> Result<engine::links::FaultId, ControlError>,
    {
        let Some(net) = self.net.clone() else {
            return Ok(0);
        };
        // Fault calls are synchronous but may touch the runtime (proxies): run them inside it.
        let _guard = self.bridge.handle().enter();
        match f(&*net) {
            Ok(id) => Ok(INT::try_from(id.0).unwrap_or(INT::MAX)),
            Err(e) => err(format!("{what} failed: {e}")),
        }
    }

    /// The last `lines` lines of node `i`'s log.
    fn logs(&self, i: INT, lines: usize) -> Res<String> {
        let i = self.check_index(i, "logs")?;
        let Some(net) = self.net.clone() else {
            return Ok(String::new());
        };
        let r = self
            .bridge
            .block_on_cancellable(async move { net.logs(i, lines).await })?;
        r.or_else(|e| err(format!("logs({i}) failed: {e}")))
    }

    /// Tears down (idempotent). Used by `down()` and by the host at exit.
    pub fn teardown(&self, keep: bool) -> Res<Option<String>> {
        let Some(net) = self.net.clone() else {
            return Ok(None);
        };
        let r = self
            .bridge
            .block_on(async move { net.teardown(keep).await })?;
        match r {
            Ok(summary) => Ok(summary
                .run_dir
                .filter(|_| summary.kept)
                .map(|p| p.display().to_string())),
            Err(e) => infra(format!("teardown failed: {e}")),
        }
    }

    /// Tears down from the host's own thread (outside the runtime), after the script ended.
    pub fn teardown_blocking(&self, runtime: &tokio::runtime::Runtime, keep: bool) {
        let Some(net) = self.net.clone() else {
            return;
        };
        match runtime.block_on(async move { net.teardown(keep).await }) {
            Ok(summary) => {
                if summary.kept
                    && let Some(dir) = summary.run_dir
                {
                    eprintln!("kept run dir {}", dir.display());
                }
            }
            Err(e) => eprintln!("warning: teardown of {} failed: {e}", self.run_id()),
        }
    }

    /// Waits until every node's height reaches `height`, naming the laggards at the deadline.
    fn wait_height(&self, height: u64, deadline: Duration) -> Res<()> {
        let Some(net) = self.net.clone() else {
            return Ok(());
        };
        let r = self.bridge.block_on_cancellable(async move {
            let start = Instant::now();
            loop {
                let clients = net.clients();
                let mut behind = Vec::new();
                for c in clients.iter() {
                    match c.consensus_info().await {
                        Ok(i) if i.height >= height => {}
                        Ok(i) => {
                            behind.push(format!("{} height {} < {height}", c.name(), i.height))
                        }
                        Err(e) => behind.push(format!("{}: {e}", c.name())),
                    }
                }
                if behind.is_empty() {
                    return Ok(());
                }
                if start.elapsed() >= deadline {
                    return Err(format!(
                        "wait_height({height}) timed out after {}: {}",
                        humantime::format_duration(deadline),
                        behind.join("; ")
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })?;
        r.or_else(err)
    }

    /// Waits until every node reports the same LIB and tip.
    fn wait_converged(&self, deadline: Duration) -> Res<()> {
        let Some(net) = self.net.clone() else {
            return Ok(());
        };
        let r = self.bridge.block_on_cancellable(async move {
            let start = Instant::now();
            loop {
                let clients = net.clients();
                let mut infos = Vec::new();
                let mut problems = Vec::new();
                for c in clients.iter() {
                    match c.consensus_info().await {
                        Ok(i) => infos.push((c.name().to_string(), i)),
                        Err(e) => problems.push(format!("{}: {e}", c.name())),
                    }
                }
                if problems.is_empty()
                    && let Some((_, first)) = infos.first()
                    && infos
                        .iter()
                        .all(|(_, i)| i.tip == first.tip && i.lib == first.lib)
                {
                    return Ok(());
                }
                if start.elapsed() >= deadline {
                    let states: Vec<String> = infos
                        .iter()
                        .map(|(n, i)| {
                            format!(
                                "{n} height {} tip {} lib {}",
                                i.height,
                                short(&i.tip),
                                short(&i.lib)
                            )
                        })
                        .chain(problems)
                        .collect();
                    return Err(format!(
                        "wait_converged timed out after {}: {}",
                        humantime::format_duration(deadline),
                        states.join("; ")
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })?;
        r.or_else(err)
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

fn link_sel(net: &NetHandle, a: INT, b: INT) -> Res<LinkSel> {
    Ok(LinkSel::Both(
        net.check_index(a, "link from")?,
        net.check_index(b, "link to")?,
    ))
}

/// Registers deployers and the testnet handle.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    for (name, choice) in [
        ("LocalDeployer", DeployerChoice::Local),
        ("ComposeDeployer", DeployerChoice::Compose),
        ("K8sDeployer", DeployerChoice::K8s),
    ] {
        let st = state.clone();
        engine.register_fn(name, move || DeployerHandle::new(choice, st.clone()));
    }
    engine
        .register_type_with_name::<DeployerHandle>("Deployer")
        .register_get("name", |d: &mut DeployerHandle| d.choice.name().to_string())
        .register_fn("to_string", |d: &mut DeployerHandle| {
            format!("{}Deployer", d.choice.name())
        })
        .register_fn(
            "deploy",
            |d: &mut DeployerHandle, t: TopologyBuilder| -> Res<NetHandle> {
                let topology = t
                    .build()
                    .or_else(|e| err(format!("invalid topology: {e}")))?;
                d.deploy_topology(topology)
            },
        )
        .register_fn(
            "deploy",
            |d: &mut DeployerHandle, t: Topology| -> Res<NetHandle> { d.deploy_topology(t) },
        )
        .register_fn(
            "deploy",
            |d: &mut DeployerHandle, p: Plan| -> Res<NetHandle> {
                d.deploy_with(p.0.topology().clone(), p.0.capabilities.clone())
            },
        )
        .register_fn(
            "run",
            |d: &mut DeployerHandle, p: Plan| -> Res<ReportHandle> {
                let report = runner::run_plan(&d.state, Some(d), &p.0)?;
                runner::raise_if_failed(report)
            },
        )
        .register_fn("try_run", |d: &mut DeployerHandle, p: Plan| {
            runner::run_plan(&d.state, Some(d), &p.0)
        });

    let st = state.clone();
    let st2 = state.clone();
    engine
        .register_type_with_name::<NetHandle>("Testnet")
        .register_get("node_count", |n: &mut NetHandle| n.node_count() as INT)
        .register_get("run_id", |n: &mut NetHandle| n.run_id())
        .register_get("run_dir", |n: &mut NetHandle| {
            n.run_dir().map_or(Dynamic::UNIT, Into::into)
        })
        .register_get("endpoints", |n: &mut NetHandle| -> Array {
            n.net.as_ref().map_or_else(Vec::new, |net| {
                net.endpoints().into_iter().map(Into::into).collect()
            })
        })
        .register_fn("to_string", |n: &mut NetHandle| {
            format!("Testnet({}, {} nodes)", n.run_id(), n.node_count())
        })
        .register_fn("node", |n: &mut NetHandle, i: INT| n.node(i))
        .register_fn("logs", |n: &mut NetHandle, i: INT| n.logs(i, 50))
        .register_fn(
            "logs",
            |n: &mut NetHandle, i: INT, lines: INT| -> Res<String> {
                let lines = count(lines, "logs lines")?;
                n.logs(i, lines)
            },
        )
        .register_fn(
            "run",
            move |n: &mut NetHandle, p: Plan| -> Res<ReportHandle> {
                let report = runner::run_on(&st, n, &p.0)?;
                runner::raise_if_failed(report)
            },
        )
        .register_fn("try_run", move |n: &mut NetHandle, p: Plan| {
            runner::run_on(&st2, n, &p.0)
        })
        .register_fn("nodes", |n: &mut NetHandle| n.nodes())
        .register_fn("wait_ready", |n: &mut NetHandle| -> Res<()> {
            wait_ready(n, DEFAULT_READY_TIMEOUT)
        })
        .register_fn("wait_ready", |n: &mut NetHandle, d: Dynamic| -> Res<()> {
            wait_ready(n, duration(&d, "wait_ready")?)
        })
        .register_fn(
            "wait_height",
            |n: &mut NetHandle, h: INT, d: Dynamic| -> Res<()> {
                let h = u64::try_from(h)
                    .or_else(|_| err(format!("wait_height height = {h} must not be negative")))?;
                n.wait_height(h, duration(&d, "wait_height deadline")?)
            },
        )
        .register_fn(
            "wait_converged",
            |n: &mut NetHandle, d: Dynamic| -> Res<()> {
                n.wait_converged(duration(&d, "wait_converged deadline")?)
            },
        )
        .register_fn("down", |n: &mut NetHandle| -> Res<()> {
            if let Some(dir) = n.teardown(false)? {
                println!("kept run dir {dir}");
            }
            Ok(())
        })
        .register_fn("down", |n: &mut NetHandle, keep: bool| -> Res<()> {
            if let Some(dir) = n.teardown(keep)? {
                println!("kept run dir {dir}");
            }
            Ok(())
        })
        .register_fn("restart", |n: &mut NetHandle, i: INT| {
            n.control("restart", i, |net, i| net.restart(i))
        })
        .register_fn("stop", |n: &mut NetHandle, i: INT| {
            n.control("stop", i, |net, i| net.stop(i))
        })
        .register_fn("start", |n: &mut NetHandle, i: INT| {
            n.control("start", i, |net, i| net.start(i))
        })
        .register_fn("kill", |n: &mut NetHandle, i: INT| {
            n.control("kill", i, |net, i| net.kill(i))
        })
        .register_fn("pause", |n: &mut NetHandle, i: INT| {
            n.control("pause", i, |net, i| net.pause(i))
        })
        .register_fn("resume", |n: &mut NetHandle, i: INT| {
            n.control("resume", i, |net, i| net.resume(i))
        })
        .register_fn("add_node", |n: &mut NetHandle| -> Res<INT> {
            add_node(
                n,
                AddNodeSpec {
                    peers: vec![0],
                    stake: 0,
                },
            )
        })
        .register_fn("add_node", |n: &mut NetHandle, spec: Map| -> Res<INT> {
            let peers = match spec.get("peers") {
                Some(p) => match p.read_lock::<Array>() {
                    Some(a) => a
                        .iter()
                        .map(|i| index(i, "add_node peers"))
                        .collect::<Res<Vec<_>>>()?,
                    None => {
                        return err(format!(
                            "add_node peers expects an array of node indices, got {p}"
                        ));
                    }
                },
                None => vec![0],
            };
            let stake = match spec.get("stake") {
                Some(s) => s
                    .as_int()
                    .ok()
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or_else(|| {
                        rhai::EvalAltResult::ErrorRuntime(
                            format!("add_node stake = {s} must be a non-negative integer").into(),
                            rhai::Position::NONE,
                        )
                    })?,
                None => 0,
            };
            for k in spec.keys() {
                if k != "peers" && k != "stake" {
                    return err(format!(
                        "add_node: unknown key `{k}` (expected peers, stake)"
                    ));
                }
            }
            add_node(n, AddNodeSpec { peers, stake })
        })
        .register_fn(
            "partition",
            |n: &mut NetHandle, groups: Array| -> Res<INT> {
                let groups = index_groups(&groups, "partition")?;
                for g in &groups {
                    for &i in g {
                        n.check_index(i as INT, "partition node")?;
                    }
                }
                n.fault("partition", move |net| net.partition(groups))
            },
        )
        .register_fn("isolate", |n: &mut NetHandle, i: INT| -> Res<INT> {
            let i = n.check_index(i, "isolate")?;
            n.fault("isolate", move |net| net.isolate(i))
        })
        .register_fn("cut", |n: &mut NetHandle, from: INT, to: INT| -> Res<INT> {
            let from = n.check_index(from, "cut from")?;
            let to = n.check_index(to, "cut to")?;
            n.fault("cut", move |net| net.cut(from, to))
        })
        .register_fn("latency", |n: &mut NetHandle, d: Dynamic| -> Res<INT> {
            let d = duration(&d, "latency")?;
            n.fault("latency", move |net| {
                net.set_latency(LinkSel::All, d, Duration::ZERO)
            })
        })
        .register_fn(
            "latency",
            |n: &mut NetHandle, a: INT, b: INT, d: Dynamic| -> Res<INT> {
                let sel = link_sel(n, a, b)?;
                let d = duration(&d, "latency")?;
                n.fault("latency", move |net| {
                    net.set_latency(sel, d, Duration::ZERO)
                })
            },
        )
        .register_fn(
            "latency",
            |n: &mut NetHandle, a: INT, b: INT, d: Dynamic, jitter: Dynamic| -> Res<INT> {
                let sel = link_sel(n, a, b)?;
                let d = duration(&d, "latency")?;
                let j = duration(&jitter, "latency jitter")?;
                n.fault("latency", move |net| net.set_latency(sel, d, j))
            },
        )
        .register_fn("loss", |n: &mut NetHandle, p: Dynamic| -> Res<INT> {
            let p = probability(&p)?;
            n.fault("loss", move |net| net.set_loss(LinkSel::All, p))
        })
        .register_fn(
            "loss",
            |n: &mut NetHandle, a: INT, b: INT, p: Dynamic| -> Res<INT> {
                let sel = link_sel(n, a, b)?;
                let p = probability(&p)?;
                n.fault("loss", move |net| net.set_loss(sel, p))
            },
        )
        .register_fn("heal", |n: &mut NetHandle| -> Res<INT> {
            let Some(net) = n.net.clone() else {
                return Ok(0);
            };
            let _guard = n.bridge.handle().enter();
            match net.heal() {
                Ok(k) => Ok(k as INT),
                Err(e) => err(format!("heal failed: {e}")),
            }
        })
        .register_fn("revert", |n: &mut NetHandle, id: INT| -> Res<()> {
            let Some(net) = n.net.clone() else {
                return Ok(());
            };
            let id = engine::links::FaultId(
                u64::try_from(id)
                    .or_else(|_| err(format!("revert fault id = {id} must not be negative")))?,
            );
            let _guard = n.bridge.handle().enter();
            net.revert_fault(id)
                .or_else(|e| err(format!("revert failed: {e}")))
        })
        .register_fn("faults", |n: &mut NetHandle| -> Array {
            n.net.as_ref().map_or_else(Vec::new, |net| {
                net.active_faults()
                    .iter()
                    .map(|f| {
                        super::values::map([
                            ("id", int(f.id.0)),
                            ("fault", format!("{:?}", f.fault).into()),
                        ])
                        .into()
                    })
                    .collect()
            })
        });
}

fn probability(p: &Dynamic) -> Res<f64> {
    let p = number(p, "loss probability")?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        err(format!("loss probability = {p} must be within 0.0..=1.0"))
    }
}

fn wait_ready(n: &NetHandle, deadline: Duration) -> Res<()> {
    let Some(net) = n.net.clone() else {
        return Ok(());
    };
    let r = n
        .bridge
        .block_on_cancellable(async move { net.wait_ready(deadline).await })?;
    r.or_else(|e| infra(format!("wait_ready failed: {e}")))
}

fn add_node(n: &NetHandle, spec: AddNodeSpec) -> Res<INT> {
    for &p in &spec.peers {
        n.check_index(p as INT, "add_node peer")?;
    }
    let Some(net) = n.net.clone() else {
        return Ok(n.node_count() as INT);
    };
    let r = n
        .bridge
        .block_on_cancellable(async move { net.add_node(spec).await })?;
    match r {
        Ok(i) => Ok(i as INT),
        Err(e) => err(format!("add_node failed: {e}")),
    }
}
