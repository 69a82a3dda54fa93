//! `net.node(i)` / `ctx.node(i)`: a node API client whose methods return rhai maps.
//!
//! ```rhai
//! let info = net.node(0).consensus_info();   // #{height, slot, tip, lib, mode}
//! print(info.height);
//! ```

use engine::error::Chain;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use engine::client::{ClientError, NodeClient};
use engine::context::RunContext;
use engine::deploy::Testnet;
use engine::deploy::control_wait::{ControlWaitError, DEFAULT_CONTROL_WAIT, call_through_control};
use rhai::{Dynamic, Engine, INT};

use super::values::{Res, err, int, map, to_script};
use crate::bridge::Bridge;
use crate::doc::registry::{Area, Registrar};
use crate::script_fn;

/// A node client usable from scripts: cheap to clone, `&self` methods only (no data races when
/// several script threads share it).
#[derive(Clone)]
pub struct NodeHandle {
    client: Option<NodeClient>,
    index: usize,
    bridge: Bridge,
    /// Checking: the dry testnet's chain clock (see [`DryChain`]).
    dry: Option<DryChain>,
    /// The testnet, when known: a call the framework's control of the node breaks (a restart,
    /// a stop, a pause) waits for the node to come back, up to `control_wait`.
    net: Option<Arc<dyn Testnet>>,
    control_wait: Duration,
    /// The run, inside one: what the script submits is recorded in its transaction log.
    run: Option<RunContext>,
}

/// What a dry testnet answers for heights and slots under `check`: a chain that grows by one
/// block every time a script reads it, so that a script polling for a height (`while
/// net.node(1).height() < 5 { sleep("200ms"); }`) terminates under `check` as it does under
/// `run`. Shared by every node handle of one dry testnet.
#[derive(Clone, Default)]
pub struct DryChain(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl DryChain {
    /// The next height (1, 2, 3, ...).
    pub fn tick(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
}

impl NodeHandle {
    /// A live client.
    pub fn new(client: NodeClient, bridge: Bridge) -> Self {
        Self {
            index: client.index(),
            client: Some(client),
            bridge,
            dry: None,
            net: None,
            control_wait: DEFAULT_CONTROL_WAIT,
            run: None,
        }
    }

    /// A client of a dry (checked, not deployed) testnet: calls return placeholder values.
    pub fn dry(index: usize, bridge: Bridge, chain: DryChain) -> Self {
        Self {
            client: None,
            index,
            bridge,
            dry: Some(chain),
            net: None,
            control_wait: DEFAULT_CONTROL_WAIT,
            run: None,
        }
    }

    /// The same client, waiting through `net`'s control of the node.
    pub fn with_testnet(mut self, net: Arc<dyn Testnet>) -> Self {
        self.net = Some(net);
        self
    }

    /// The same client inside a run: submissions go to its transaction log, and calls wait
    /// through the run's control of the node.
    pub fn with_run(self, run: RunContext) -> Self {
        let net = run.testnet();
        Self {
            run: Some(run),
            ..self.with_testnet(net)
        }
    }

    /// The node's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The run this handle belongs to, if any.
    pub fn run(&self) -> Option<&RunContext> {
        self.run.as_ref()
    }

    /// True when checking (nothing deployed).
    pub fn is_dry(&self) -> bool {
        self.client.is_none()
    }

    /// The dry chain's next height (0 when live).
    fn dry_height(&self) -> u64 {
        self.dry.as_ref().map_or(0, DryChain::tick)
    }

    /// Runs `f` on the node's client (waiting through the framework's control of the node);
    /// None when checking. A failure is the engine's error.
    pub fn try_call<T, F, Fut>(&self, f: F) -> Res<Option<Result<T, ControlWaitError>>>
    where
        F: Fn(NodeClient) -> Fut + Send,
        Fut: Future<Output = Result<T, ClientError>> + Send,
        T: Send,
    {
        let Some(client) = self.client.clone() else {
            return Ok(None);
        };
        let (net, i, wait) = (self.net.clone(), self.index, self.control_wait);
        let out = self.bridge.block_on_cancellable(async move {
            match net {
                Some(net) => call_through_control(&*net, i, wait, f).await,
                None => f(client).await.map_err(ControlWaitError::from),
            }
        })?;
        Ok(Some(out))
    }

    fn call<T, F, Fut>(&self, what: &str, f: F) -> Res<Option<T>>
    where
        F: Fn(NodeClient) -> Fut + Send,
        Fut: Future<Output = Result<T, ClientError>> + Send,
        T: Send,
    {
        match self.try_call(f)? {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => err(format!("{what} failed: {}", e.chain())),
        }
    }

    fn name(&self) -> String {
        format!("node-{}", self.index)
    }

    /// Records a transaction this node accepted from the script in the run's log.
    pub fn record_submitted(&self, id: &str, sender: Option<String>) {
        if let Some(run) = &self.run {
            run.tx_log().record(engine::context::TxRecord {
                id: id.to_string(),
                submitted_at: run.elapsed(),
                submitted_unix_ms: engine::blockfeed::now_ms(),
                node: self.index,
                sender,
                source: engine::context::TxSource::Script,
            });
        }
    }

    /// How long a call waits for the node when the framework is restarting, stopping or
    /// pausing it.
    pub fn set_control_wait(&mut self, wait: Duration) {
        self.control_wait = wait;
    }
}

fn dry_consensus_info(height: u64) -> Dynamic {
    map([
        ("height", Dynamic::from_int(height as INT)),
        ("slot", Dynamic::from_int(height as INT)),
        ("tip", Dynamic::from("")),
        ("lib", Dynamic::from("")),
        ("mode", Dynamic::from("Dry")),
    ])
    .into()
}

/// Registers `NodeClient` methods.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::NodeClient);
    reg.register_type::<NodeHandle>(
        "NodeClient",
        &[
            " A client of one node's HTTP API, from `net.node(i)`, `net.nodes()` or `ctx.node(i)`.",
            " Every call has a timeout and fails with a message naming the node and the call.",
            "",
            " ```rhai",
            " let node = net.node(0);",
            " print(`${node.name}: height ${node.height()}`);",
            " ```",
        ],
    );
    script_fn!(reg,
        /// The node's index in the testnet (0-based).
        ///
        /// ```rhai
        /// print(net.node(2).index);   // 2
        /// ```
        get index(node: NodeClient) -> int => |n: &mut NodeHandle| n.index as INT
    );
    script_fn!(reg,
        /// The node's name in messages and reports: `node-<index>`.
        ///
        /// ```rhai
        /// print(net.node(1).name);   // node-1
        /// ```
        get name(node: NodeClient) -> String => |n: &mut NodeHandle| n.name()
    );
    script_fn!(reg,
        /// Base URL of the node's HTTP API (empty when checking).
        ///
        /// ```rhai
        /// print(net.node(0).url);
        /// ```
        get url(node: NodeClient) -> String => |n: &mut NodeHandle| {
            n.client
                .as_ref()
                .map(|c| c.base_url().to_string())
                .unwrap_or_default()
        }
    );
    script_fn!(reg,
        /// The node's name.
        ///
        /// ```rhai
        /// print(net.node(0).to_string());
        /// ```
        fn to_string(node: NodeClient) -> String => |n: &mut NodeHandle| n.name()
    );
    script_fn!(reg,
        /// The node's consensus state: `#{height, slot, tip, lib, mode}` (`tip` and `lib` are
        /// block ids; `mode` is `"Bootstrapping"` until the node has synced, then `"Online"`).
        ///
        /// ```rhai
        /// let info = net.node(0).consensus_info();
        /// print(`height ${info.height} slot ${info.slot} mode ${info.mode}`);
        /// ```
        fn consensus_info(node: NodeClient) -> Map => |n: &mut NodeHandle| -> Res<Dynamic> {
            Ok(n.call(
                "consensus_info",
                |c| async move { c.consensus_info().await },
            )?
            .map_or_else(|| dry_consensus_info(n.dry_height()), |i| to_script(&i)))
        }
    );
    script_fn!(reg,
        /// The height of the node's tip (genesis is 0).
        ///
        /// ```rhai
        /// let h = net.node(0).height();
        /// print(h);
        /// ```
        fn height(node: NodeClient) -> int => |n: &mut NodeHandle| -> Res<INT> {
            Ok(
                n.call("height", |c| async move { c.consensus_info().await })?
                    .map_or_else(|| n.dry_height() as INT, |i| i.height as INT),
            )
        }
    );
    script_fn!(reg,
        /// The node's peers: `#{listen_addresses, n_peers, n_connections, n_pending_connections}`.
        ///
        /// ```rhai
        /// print(net.node(0).network_info().n_peers);
        /// ```
        fn network_info(node: NodeClient) -> Map => |n: &mut NodeHandle| -> Res<Dynamic> {
            Ok(
                n.call("network_info", |c| async move { c.network_info().await })?
                    .map_or_else(
                        || {
                            map([
                                ("listen_addresses", Dynamic::from_array(vec![])),
                                ("n_peers", Dynamic::from_int(0)),
                                ("n_connections", Dynamic::from_int(0)),
                                ("n_pending_connections", Dynamic::from_int(0)),
                            ])
                            .into()
                        },
                        |i| to_script(&i),
                    ),
            )
        }
    );
    script_fn!(reg,
        /// Block ids of the canonical chain from the tip back to the LIB, newest first.
        ///
        /// ```rhai
        /// let ids = net.node(0).headers();
        /// print(`${ids.len()} blocks above the LIB`);
        /// ```
        fn headers(node: NodeClient) -> Array => |n: &mut NodeHandle| -> Res<Dynamic> {
            Ok(
                n.call("headers", |c| async move { c.headers(None, None).await })?
                    .map_or_else(|| Dynamic::from_array(vec![]), |h| to_script(&h)),
            )
        }
    );
    script_fn!(reg,
        /// Block ids of the canonical chain from block `from` back to block `to`, newest first.
        ///
        /// ```rhai
        /// let info = net.node(0).consensus_info();
        /// let ids = net.node(0).headers(info.tip, info.lib);
        /// ```
        fn headers(node: NodeClient, from: String, to: String) -> Array
        => |n: &mut NodeHandle, from: &str, to: &str| -> Res<Dynamic> {
            let (from, to) = (from.to_string(), to.to_string());
            Ok(n.call("headers", |c| {
                let (from, to) = (from.clone(), to.clone());
                async move { c.headers(Some(&from), Some(&to)).await }
            })?
            .map_or_else(|| Dynamic::from_array(vec![]), |h| to_script(&h)))
        }
    );
    script_fn!(reg,
        /// The block with this id as `#{id, parent, slot, leader, block_root, transactions}`
        /// (each transaction `#{id, ops, transfer}`), whatever the node's API dialect, or `()`
        /// when the node does not have it. No real node reports a block's height.
        ///
        /// ```rhai
        /// let node = net.node(0);
        /// let b = node.block(node.consensus_info().tip);
        /// if b != () { print(`slot ${b.slot}, parent ${b.parent}, ${b.transactions.len()} txs`); }
        /// ```
        fn block(node: NodeClient, id: String) -> Dynamic => |n: &mut NodeHandle, id: &str| -> Res<Dynamic> {
            let id = id.to_string();
            Ok(n.call("block", |c| {
                let id = id.clone();
                async move { c.block(&id).await }
            })?
                .flatten()
                .map_or(Dynamic::UNIT, |b| to_script(&b)))
        }
    );
    script_fn!(reg,
        /// The node's mempool (`/mantle/metrics`): `#{size, pending_items, last_item_timestamp}`
        /// (`size` = `pending_items`).
        ///
        /// ```rhai
        /// print(net.node(0).mempool_info().size);
        /// ```
        fn mempool_info(node: NodeClient) -> Map => |n: &mut NodeHandle| -> Res<Dynamic> {
            let m = n.call("mempool_info", |c| async move { c.mempool_info().await })?;
            let (pending, last) = m.map_or((0, 0), |m| (m.pending_items, m.last_item_timestamp));
            Ok(map([
                ("size", int(pending)),
                ("pending_items", int(pending)),
                ("last_item_timestamp", int(last)),
            ])
            .into())
        }
    );
    script_fn!(reg,
        /// An account's state on the node's tip: `#{balance, nonce}` (zero for an unknown key;
        /// a key that is not an ed25519 public key in hex is refused). Read from the reference
        /// node's testing surface: a node without one (a real node) refuses the call.
        ///
        /// ```rhai
        /// let key = "5866666666666666666666666666666666666666666666666666666666666666";
        /// print(net.node(0).account(key).balance);   // 0: not a funded wallet
        /// ```
        fn account(node: NodeClient, public_key: String) -> Map => |n: &mut NodeHandle, pk: &str| -> Res<Dynamic> {
            let pk = pk.to_string();
            Ok(n.call("account", |c| {
                let pk = pk.clone();
                async move { c.account(&pk).await }
            })?
                .map_or_else(
                    || map([("balance", int(0)), ("nonce", int(0))]).into(),
                    |i| to_script(&i),
                ))
        }
    );
    script_fn!(reg,
        /// The node's Prometheus metrics, as text (the reference node's testing surface).
        ///
        /// ```rhai
        /// let text = net.node(0).metrics();
        /// print(text.len());
        /// ```
        fn metrics(node: NodeClient) -> String => |n: &mut NodeHandle| -> Res<String> {
            Ok(
                n.call("metrics", |c| async move { c.metrics_text().await })?
                    .unwrap_or_default(),
            )
        }
    );
    script_fn!(reg,
        /// Asks the node to dial a peer at `address` (`host:port` or a multiaddr, as
        /// `listen_addresses` reports them), through the testing surface's
        /// `/test/network/dial_peer`.
        ///
        /// ```rhai
        /// let addrs = net.node(1).network_info().listen_addresses;
        /// if addrs.len() > 0 { net.node(3).connect(addrs[0]); }
        /// ```
        fn connect(node: NodeClient, address: String) => |n: &mut NodeHandle, addr: &str| -> Res<()> {
            let addr = addr.to_string();
            n.call("connect", |c| {
                let addr = addr.clone();
                async move { c.connect(&addr).await }
            })?;
            Ok(())
        }
    );
    script_fn!(reg,
        /// The balance of a key the node's wallet knows (`/wallet/{pk}/balance`):
        /// `#{tip, balance, address}`; a key the wallet does not know is refused by the node.
        ///
        /// ```rhai,no_run
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(4)
        ///     .with_expectation("funded", |ctx| {
        ///         let w = ctx.wallets()[0];           // wallet 0 belongs to node 0
        ///         ctx.node(0).balance(w.public_key).balance > 0
        ///     });
        /// ```
        fn balance(node: NodeClient, public_key: String) -> Map => |n: &mut NodeHandle, pk: &str| -> Res<Dynamic> {
            let pk = pk.to_string();
            Ok(n.call("balance", |c| {
                let pk = pk.clone();
                async move { c.balance(&pk).await }
            })?
                .map_or_else(
                    || map([("tip", Dynamic::from("")), ("balance", int(0)), ("address", Dynamic::from(""))]).into(),
                    |b| to_script(&b),
                ))
        }
    );
    script_fn!(reg,
        /// A node-signed transfer (`/wallet/transactions/transfer-funds`): the node's wallet
        /// builds and signs it from `from` (a key it knows: on the reference node funded wallet
        /// `w` belongs to node `w % nodes`), sends `amount` to `to` with the
        /// change back to `from`, and submits it. Returns the transaction hash; a refusal is a
        /// script error carrying the node's reason.
        ///
        /// ```rhai,no_run
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(4)
        ///     .with_workload("pay", |ctx| {
        ///         let w = ctx.wallets();
        ///         let hash = ctx.node(0).transfer_funds(w[0].public_key, w[1].public_key, 5);
        ///         print(hash);
        ///     });
        /// ```
        fn transfer_funds(node: NodeClient, from: String, to: String, amount: int) -> String
        => |n: &mut NodeHandle, from: &str, to: &str, amount: INT| -> Res<String> {
            if amount <= 0 {
                return err(format!("transfer_funds: amount = {amount} must be above 0"));
            }
            let req = engine::client::TransferFunds {
                tip: None,
                change_public_key: from.to_string(),
                funding_public_keys: vec![from.to_string()],
                recipient_public_key: to.to_string(),
                amount: amount as u64,
            };
            // not retried through control: the node builds a new transfer for every call, so a
            // call that timed out on a paused node may have gone through
            let Some(client) = n.client.clone() else { return Ok(String::new()) };
            let from_key = req.change_public_key.clone();
            let hash = n
                .bridge
                .block_on_cancellable(async move { client.transfer_funds(&req).await })?
                .or_else(|e| err(format!("transfer_funds failed: {}", e.chain())))?;
            n.record_submitted(&hash, Some(from_key));
            Ok(hash)
        }
    );
    script_fn!(reg,
        /// The same client, waiting at most `wait` for the node when a call cannot reach it
        /// because the framework is restarting, stopping or pausing it (default 30 s); past
        /// it the call fails naming the node and the control action. `0` fails at once.
        ///
        /// ```rhai
        /// print(net.node(0).with_control_wait("5s").height());
        /// ```
        fn with_control_wait(node: NodeClient, wait: Duration) -> NodeClient
        => |n: &mut NodeHandle, wait: Dynamic| -> Res<NodeHandle> {
            let mut out = n.clone();
            out.set_control_wait(super::values::duration(&wait, "with_control_wait")?);
            Ok(out)
        }
    );
    script_fn!(reg,
        /// The node's API dialect: `logos-2026-05` or `logos-2026-01` (given by its kind or
        /// detected from its `/cryptarchia/info`).
        ///
        /// ```rhai
        /// print(net.node(0).dialect());
        /// ```
        fn dialect(node: NodeClient) -> String => |n: &mut NodeHandle| -> Res<String> {
            Ok(n.call("dialect", |c| async move { c.dialect().await })?
                .map_or_else(|| "dry".to_owned(), |d| d.to_string()))
        }
    );
}
