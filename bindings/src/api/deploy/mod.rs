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

use engine::error::Chain;
use std::sync::Arc;
use std::time::Duration;

use engine::deadline::Deadline;
use engine::deploy::{AddNodeSpec, ControlError, ControlFuture, DeployOptions, Deployer, Testnet};
use engine::links::LinkSel;
use engine::topology::{Topology, TopologyBuilder};
use rhai::{Array, Dynamic, Engine, INT, Map};

use super::client::NodeHandle;
use super::report::{InfraFailure, ReportHandle};
use super::runner;
use super::scenario::Plan;
use super::values::{
    Res, count, deadline, duration, err, index, index_groups, int, probability, to_yaml,
};
use crate::bridge::Bridge;
use crate::cli::DeployerChoice;
use crate::doc::registry::{Area, Registrar};
use crate::host::{HostState, Mode};
use crate::script_fn;

mod control;
mod faults;
mod waits;

use control::register_node_control;
use faults::register_faults;
use waits::register_waits;

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
        // `run --attach-endpoints FILE`: every plan runs on the external nodes
        if let Some(external) = &self.state.settings.external {
            return Ok(external.clone());
        }
        match self.choice {
            DeployerChoice::Local => Ok(Arc::new(engine::deploy::local::LocalDeployer::default())),
            DeployerChoice::Compose => {
                Ok(Arc::new(engine::deploy::compose::ComposeDeployer::new()))
            }
            DeployerChoice::K8s => Ok(Arc::new(engine::deploy::k8s::K8sDeployer::new())),
        }
    }

    /// `check`: what the local deployer would refuse for want of file descriptors.
    pub fn check_fd_budget(&self, topology: &Topology) -> Res<()> {
        if self.choice != DeployerChoice::Local || self.state.settings.external.is_some() {
            return Ok(());
        }
        engine::deploy::local::LocalDeployer::default()
            .check_fd_budget(topology)
            .or_else(|e| err(format!("cannot deploy this plan: {e}")))
    }

    /// Deploys `topology`, waits for readiness, registers the testnet for teardown at exit.
    pub fn deploy_topology(&self, topology: Topology) -> Res<NetHandle> {
        self.deploy_with(topology, Vec::new(), Vec::new())
    }

    /// Deploys `topology` with the capabilities a plan requires and the kinds of fault it uses.
    pub fn deploy_with(
        &self,
        topology: Topology,
        required: Vec<engine::deploy::Capability>,
        uses: Vec<engine::deploy::FaultKind>,
    ) -> Res<NetHandle> {
        let bridge = self.state.bridge.clone();
        self.state.activity.note();
        if self.state.settings.mode == Mode::Check {
            self.check_fd_budget(&topology)?;
            return Ok(NetHandle::dry(topology.node_count(), bridge)
                .with_wallets(engine::wallet::WalletBook::from_topology(&topology)));
        }
        let deployer = self.engine_deployer()?;
        let opts = DeployOptions {
            ready_timeout: DEFAULT_READY_TIMEOUT,
            keep_on_deploy_failure: self.state.settings.keep,
            required,
            uses,
            ..DeployOptions::default()
        };
        let result =
            bridge.block_on_cancellable(async move { deployer.deploy(&topology, &opts).await })?;
        let net = match result {
            Ok(net) => net,
            Err(e) => return infra(format!("deploy failed: {}", e.chain())),
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
    /// Checking: the dry testnet's node count, shared by every copy of the handle (`add_node`
    /// grows it).
    dry_nodes: Arc<std::sync::atomic::AtomicUsize>,
    bridge: Bridge,
    /// Checking: the dry chain every node of this testnet answers from.
    dry_chain: super::client::DryChain,
    /// The funded wallets and their nonces (`net.wallets()`), made on first use.
    wallets: Arc<std::sync::OnceLock<engine::wallet::WalletBook>>,
}

impl NetHandle {
    /// A handle on a deployed testnet.
    pub fn live(net: Arc<dyn Testnet>, bridge: Bridge) -> Self {
        Self {
            net: Some(net),
            dry_nodes: Default::default(),
            bridge,
            dry_chain: Default::default(),
            wallets: Default::default(),
        }
    }

    /// A stand-in for `check`: knows its node count, deploys nothing.
    pub fn dry(nodes: usize, bridge: Bridge) -> Self {
        Self {
            net: None,
            dry_nodes: Arc::new(nodes.into()),
            bridge,
            dry_chain: Default::default(),
            wallets: Default::default(),
        }
    }

    /// The engine testnet, if deployed.
    pub fn testnet(&self) -> Option<&Arc<dyn Testnet>> {
        self.net.as_ref()
    }

    /// The same handle, signing with `book`'s wallets and nonces (a run's, say).
    pub fn with_wallets(self, book: engine::wallet::WalletBook) -> Self {
        let wallets = std::sync::OnceLock::new();
        let _ = wallets.set(book);
        Self {
            wallets: Arc::new(wallets),
            ..self
        }
    }

    /// The testnet's funded wallets and their nonces (none for a dry testnet without them).
    pub fn wallet_book(&self) -> engine::wallet::WalletBook {
        self.wallets
            .get_or_init(|| match &self.net {
                Some(n) => engine::wallet::WalletBook::from_topology(n.topology()),
                None => engine::wallet::WalletBook::empty(),
            })
            .clone()
    }

    /// The bridge to the runtime.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    fn node_count(&self) -> usize {
        self.net.as_ref().map_or_else(
            || self.dry_nodes.load(std::sync::atomic::Ordering::SeqCst),
            |n| n.node_count(),
        )
    }

    /// A deadline as time under this testnet's consensus parameters, and as written for
    /// messages (`20 slots (10s at 500ms slots)`).
    fn resolve(&self, d: Deadline) -> (Duration, String) {
        let params = self
            .net
            .as_ref()
            .map_or_else(Default::default, |n| n.topology().params.clone());
        (d.resolve(&params), d.describe(&params))
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

    pub(crate) fn check_index(&self, i: INT, what: &str) -> Res<usize> {
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
            None => NodeHandle::dry(i, self.bridge.clone(), self.dry_chain.clone()),
            Some(net) => match net.clients().get(i) {
                Some(c) => {
                    NodeHandle::new(c.clone(), self.bridge.clone()).with_testnet(net.clone())
                }
                None => return err(format!("node {i} has no client")),
            },
        })
    }

    fn nodes(&self) -> Array {
        match &self.net {
            None => (0..self.node_count())
                .map(|i| {
                    Dynamic::from(NodeHandle::dry(
                        i,
                        self.bridge.clone(),
                        self.dry_chain.clone(),
                    ))
                })
                .collect(),
            Some(net) => net
                .clients()
                .iter()
                .map(|c| {
                    Dynamic::from(
                        NodeHandle::new(c.clone(), self.bridge.clone()).with_testnet(net.clone()),
                    )
                })
                .collect(),
        }
    }

    pub(crate) fn control<F>(&self, action: &str, i: INT, f: F) -> Res<()>
    where
        F: for<'a> FnOnce(
                &'a dyn Testnet,
                usize,
            ) -> futures::future::BoxFuture<'a, Result<(), ControlError>>
            + Send
            + 'static,
    {
        let i = self.check_index(i, action)?;
        let Some(net) = self.net.clone() else {
            return Ok(());
        };
        // The action runs to its end on the runtime even when the script is stopped or
        // interrupted meanwhile: a restart cut between its stop and its start would leave the
        // node down for the expectations (and teardown waits for it).
        let task = self.bridge.handle().spawn(async move { f(&*net, i).await });
        match self.bridge.block_on_cancellable(task)? {
            Ok(r) => r.or_else(|e| err(format!("{action}({i}) failed: {}", e.chain()))),
            Err(e) => err(format!("{action}({i}) failed: {}", e.chain())),
        }
    }

    pub(crate) fn fault<F>(&self, what: &str, f: F) -> Res<INT>
    where
        F: for<'a> FnOnce(&'a dyn Testnet) -> ControlFuture<'a, engine::links::FaultId>,
    {
        let Some(net) = self.net.clone() else {
            return Ok(0);
        };
        match self.bridge.block_on_cancellable(f(&*net))? {
            Ok(id) => Ok(INT::try_from(id.0).unwrap_or(INT::MAX)),
            Err(e) => err(format!("{what} failed: {}", e.chain())),
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
        r.or_else(|e| err(format!("logs({i}) failed: {}", e.chain())))
    }

    /// Tears down (idempotent). Used by `down()` and by the host at exit.
    pub fn teardown(&self, keep: bool) -> Res<Option<String>> {
        let Some(net) = self.net.clone() else {
            return Ok(None);
        };
        let r = self.bridge.block_on(async move {
            engine::deploy::byzantine::make_honest(&*net).await;
            net.teardown(keep).await
        })?;
        match r {
            Ok(summary) => Ok(summary
                .run_dir
                .filter(|_| summary.kept)
                .map(|p| p.display().to_string())),
            Err(e) => infra(format!("teardown failed: {}", e.chain())),
        }
    }

    /// Tears down from the host's own thread (outside the runtime), after the script ended.
    pub fn teardown_blocking(&self, runtime: &tokio::runtime::Runtime, keep: bool) {
        let Some(net) = self.net.clone() else {
            return;
        };
        let done = runtime.block_on(async move {
            // lies are reverted first, so the nodes' logs and the timeline end honest
            engine::deploy::byzantine::make_honest(&*net).await;
            net.teardown(keep).await
        });
        match done {
            Ok(summary) => {
                if summary.kept
                    && let Some(dir) = summary.run_dir
                {
                    eprintln!("kept run dir {}", dir.display());
                }
            }
            Err(e) => eprintln!(
                "warning: teardown of {} failed: {}",
                e.chain(),
                self.run_id()
            ),
        }
    }

    /// Waits until every node's height reaches `height`, naming the laggards at the deadline
    /// ([`engine::wait::height`]).
    fn wait_height(&self, height: u64, bound: Deadline) -> Res<()> {
        let Some(net) = self.net.clone() else {
            return Ok(());
        };
        self.bridge
            .block_on_cancellable(async move { engine::wait::height(&*net, height, bound).await })?
            .or_else(err)
    }

    /// Waits until every node reports the same LIB and tip ([`engine::wait::converged`]).
    fn wait_converged(&self, bound: Deadline) -> Res<()> {
        let Some(net) = self.net.clone() else {
            return Ok(());
        };
        self.bridge
            .block_on_cancellable(async move { engine::wait::converged(&*net, bound).await })?
            .or_else(err)
    }
}

pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut reg = Registrar::new(engine, Area::Deployers);
    register_deployers(&mut reg, state);
    register_testnet(&mut reg, state);
    reg.area(Area::NodeControl);
    register_node_control(&mut reg);
    reg.area(Area::Faults);
    register_faults(&mut reg);
    reg.area(Area::Waits);
    register_waits(&mut reg);
}

fn register_deployers(reg: &mut Registrar, state: &Arc<HostState>) {
    reg.register_type::<DeployerHandle>(
        "Deployer",
        &[
            " A backend that turns a topology into a running testnet: `LocalDeployer()` (child",
            " processes), `ComposeDeployer()` (Docker containers) or `K8sDeployer()`. Without",
            " one, `plan.run()` uses the backend chosen with `--deployer`.",
            "",
            " ```rhai",
            " let d = LocalDeployer();",
            " print(d.name);   // local",
            " ```",
        ],
    );
    let st = state.clone();
    script_fn!(reg,
        /// The local deployer: every node a child process of this runner, with link-layer
        /// proxies between them for network faults. Supports node control and network faults.
        ///
        /// ```rhai
        /// let d = LocalDeployer();
        /// print(d);
        /// ```
        fn LocalDeployer() -> Deployer => move || DeployerHandle::new(DeployerChoice::Local, st.clone())
    );
    let st = state.clone();
    script_fn!(reg,
        /// The Docker Compose deployer: one container per node on a per-run network, built from
        /// the node binary (or `LOGOS_BLOCKCHAIN_TESTNET_IMAGE`). Needs a reachable Docker
        /// engine when it deploys.
        ///
        /// ```rhai
        /// let d = ComposeDeployer();
        /// print(d.name);   // compose
        /// ```
        fn ComposeDeployer() -> Deployer => move || DeployerHandle::new(DeployerChoice::Compose, st.clone())
    );
    let st = state.clone();
    script_fn!(reg,
        /// The Kubernetes deployer: nodes in a namespace of the current cluster context.
        /// Deploying fails with a clear message when this build has no Kubernetes backend.
        ///
        /// ```rhai
        /// let d = K8sDeployer();
        /// print(d.name);   // k8s
        /// ```
        fn K8sDeployer() -> Deployer => move || DeployerHandle::new(DeployerChoice::K8s, st.clone())
    );
    script_fn!(reg,
        /// The backend's name: `local`, `compose` or `k8s`.
        ///
        /// ```rhai
        /// print(LocalDeployer().name);
        /// ```
        get name(deployer: Deployer) -> String => |d: &mut DeployerHandle| d.choice.name().to_string()
    );
    script_fn!(reg,
        /// `localDeployer`, `composeDeployer` or `k8sDeployer`.
        ///
        /// ```rhai
        /// print(ComposeDeployer().to_string());
        /// ```
        fn to_string(deployer: Deployer) -> String => |d: &mut DeployerHandle| format!("{}Deployer", d.choice.name())
    );
    script_fn!(reg,
        /// Builds the topology, deploys it and waits until every node is ready (60 s at most);
        /// the testnet stays up until `net.down()` or the end of the script. A deploy failure
        /// raises an `InfraFailure` (exit 3 when uncaught).
        ///
        /// ```rhai,deploys
        /// let small = LocalDeployer().deploy(TopologyBuilder().nodes(2).slot_duration("100ms"));
        /// print(small.node(1).height());
        /// small.down();
        /// ```
        fn deploy(deployer: Deployer, topology: TopologyBuilder) -> Testnet
        => |d: &mut DeployerHandle, t: TopologyBuilder| -> Res<NetHandle> {
            let topology = t
                .build()
                .or_else(|e| err(format!("invalid topology: {e}")))?;
            d.deploy_topology(topology)
        }
    );
    script_fn!(reg,
        /// Deploys an already validated topology.
        ///
        /// ```rhai,no_run
        /// let topology = TopologyBuilder().network_ring().nodes(4).build();
        /// let net = LocalDeployer().deploy(topology);
        /// ```
        fn deploy(deployer: Deployer, topology: Topology) -> Testnet
        => |d: &mut DeployerHandle, t: Topology| -> Res<NetHandle> { d.deploy_topology(t) }
    );
    script_fn!(reg,
        /// Deploys a plan's topology, checking first that the backend offers what the plan needs
        /// (node control, network faults); `net.run(plan)` then runs it there.
        ///
        /// ```rhai,no_run
        /// let net = LocalDeployer().deploy(plan);
        /// let report = net.run(plan);
        /// ```
        fn deploy(deployer: Deployer, plan: Scenario) -> Testnet
        => |d: &mut DeployerHandle, p: Plan| -> Res<NetHandle> {
            d.deploy_with(
                p.0.topology().clone(),
                p.0.capabilities.clone(),
                p.0.uses.clone(),
            )
        }
    );
    script_fn!(reg,
        /// Runs a plan on this backend (deploy, drive, judge, tear down) and returns the report;
        /// a failed run raises the report as the error (exit 1 when uncaught).
        ///
        /// ```rhai,no_run
        /// let report = ComposeDeployer().run(plan);
        /// ```
        fn run(deployer: Deployer, plan: Scenario) -> RunReport
        => |d: &mut DeployerHandle, p: Plan| -> Res<ReportHandle> {
            let report = runner::run_plan(&d.state, Some(d), &p.0)?;
            runner::raise_if_failed(report)
        }
    );
    script_fn!(reg,
        /// Runs a plan on this backend and returns the report, passed or failed.
        ///
        /// ```rhai,no_run
        /// let report = LocalDeployer().try_run(plan);
        /// if !report.passed { print(report.failures); }
        /// ```
        fn try_run(deployer: Deployer, plan: Scenario) -> RunReport
        => |d: &mut DeployerHandle, p: Plan| runner::run_plan(&d.state, Some(d), &p.0)
    );
}

fn register_testnet(reg: &mut Registrar, state: &Arc<HostState>) {
    reg.register_type::<NetHandle>(
        "Testnet",
        &[
            " A deployed testnet (`deployer.deploy(..)`): its nodes' clients, node control,",
            " network faults and waits. A testnet the script does not take down itself is torn",
            " down when the script ends, however it ends.",
            "",
            " ```rhai",
            " print(`${net.node_count} nodes, run ${net.run_id}`);",
            " ```",
        ],
    );
    script_fn!(reg,
        /// Number of nodes, including nodes added at run time.
        ///
        /// ```rhai
        /// print(net.node_count);   // 4
        /// ```
        get node_count(net: Testnet) -> int => |n: &mut NetHandle| n.node_count() as INT
    );
    script_fn!(reg,
        /// The run id (`dry` when checking).
        ///
        /// ```rhai
        /// print(net.run_id);
        /// ```
        get run_id(net: Testnet) -> String => |n: &mut NetHandle| n.run_id()
    );
    script_fn!(reg,
        /// The run dir (configs, data, logs) for local backends, else `()`.
        ///
        /// ```rhai
        /// print(net.run_dir);
        /// ```
        get run_dir(net: Testnet) -> Dynamic => |n: &mut NetHandle| {
            n.run_dir().map_or(Dynamic::UNIT, Into::into)
        }
    );
    script_fn!(reg,
        /// `TESTNET_ENDPOINTS` lines: one per node API, plus observability URLs when set.
        ///
        /// ```rhai
        /// for e in net.endpoints { print(e); }
        /// ```
        get endpoints(net: Testnet) -> Array => |n: &mut NetHandle| -> Array {
            n.net.as_ref().map_or_else(Vec::new, |net| {
                net.endpoints().iter().map(|e| e.to_string().into()).collect()
            })
        }
    );
    script_fn!(reg,
        /// `Testnet(<run id>, <n> nodes)`.
        ///
        /// ```rhai
        /// print(net.to_string());
        /// ```
        fn to_string(net: Testnet) -> String => |n: &mut NetHandle| {
            format!("Testnet({}, {} nodes)", n.run_id(), n.node_count())
        }
    );
    script_fn!(reg,
        /// The API client of node `i`; an index out of range names the node count.
        ///
        /// ```rhai
        /// print(net.node(0).height());
        /// ```
        fn node(net: Testnet, i: int) -> NodeClient => |n: &mut NetHandle, i: INT| n.node(i)
    );
    script_fn!(reg,
        /// The API clients of every node, in index order.
        ///
        /// ```rhai
        /// for node in net.nodes() { print(`${node.name}: ${node.height()}`); }
        /// ```
        fn nodes(net: Testnet) -> Array => |n: &mut NetHandle| n.nodes()
    );
    script_fn!(reg,
        /// The last 50 lines of node `i`'s log.
        ///
        /// ```rhai
        /// let log = net.logs(0);
        /// print(log.len());
        /// ```
        fn logs(net: Testnet, i: int) -> String => |n: &mut NetHandle, i: INT| n.logs(i, 50)
    );
    script_fn!(reg,
        /// The last `lines` lines of node `i`'s log.
        ///
        /// ```rhai
        /// print(net.logs(1, 5));
        /// ```
        fn logs(net: Testnet, i: int, lines: int) -> String
        => |n: &mut NetHandle, i: INT, lines: INT| -> Res<String> {
            let lines = count(lines, "logs lines")?;
            n.logs(i, lines)
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// Runs a plan on this already deployed testnet (workloads, expectations, duration),
        /// then tears the testnet down; a failed run raises the report as the error.
        ///
        /// ```rhai,no_run
        /// let net = LocalDeployer().deploy(plan);
        /// net.restart(1);            // set the stage by hand, then run
        /// let report = net.run(plan);
        /// ```
        fn run(net: Testnet, plan: Scenario) -> RunReport
        => move |n: &mut NetHandle, p: Plan| -> Res<ReportHandle> {
            let report = runner::run_on(&st, n, &p.0)?;
            runner::raise_if_failed(report)
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// Runs a plan on this testnet, then tears it down; returns the report either way.
        ///
        /// ```rhai,no_run
        /// let report = LocalDeployer().deploy(plan).try_run(plan);
        /// print(report.summary);
        /// ```
        fn try_run(net: Testnet, plan: Scenario) -> RunReport
        => move |n: &mut NetHandle, p: Plan| runner::run_on(&st, n, &p.0)
    );
    script_fn!(reg,
        /// Tears the testnet down now (idempotent); the run dir is removed.
        ///
        /// ```rhai,no_run
        /// net.down();
        /// ```
        fn down(net: Testnet) => |n: &mut NetHandle| -> Res<()> {
            if let Some(dir) = n.teardown(false)? {
                println!("kept run dir {dir}");
            }
            Ok(())
        }
    );
    script_fn!(reg,
        /// Tears the testnet down now; with `keep` the run dir stays and its path is printed.
        ///
        /// ```rhai,no_run
        /// net.down(true);
        /// ```
        fn down(net: Testnet, keep: bool) => |n: &mut NetHandle, keep: bool| -> Res<()> {
            if let Some(dir) = n.teardown(keep)? {
                println!("kept run dir {dir}");
            }
            Ok(())
        }
    );
}
