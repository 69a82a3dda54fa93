//! Script-defined workloads and expectations: rhai closures that run concurrently with the
//! built-in ones, each on its own plain thread, given a run context handle.
//!
//! ```rhai
//! plan_builder
//!     .with_workload("poll", |ctx| {
//!         while !ctx.stopped { print(ctx.node(0).height()); ctx.sleep("500ms"); }
//!     })
//!     .with_expectation("grew", |ctx| ctx.node(0).height() > 3)   // or #{passed, message}
//! ```
//!
//! A closure kept for later cannot be called without the script state that defined it (its
//! function lives in that script's AST), so the native call context is stored beside every
//! closure and recreated on the closure's thread.

#![expect(
    deprecated,
    reason = "NativeCallContextStore is marked volatile, not deprecated; it is rhai's way to keep a closure's context"
)]

use std::sync::{Arc, Mutex};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use engine::context::RunContext;
use engine::expectation::{Expectation, ExpectationError, Verdict};
use engine::report::RunEvent;
use engine::workload::{Workload, WorkloadError};
use futures::future::BoxFuture;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, INT, Map, NativeCallContext};
use tokio_util::sync::CancellationToken;

use super::client::NodeHandle;
use super::deploy::NetHandle;
use super::values::{Res, duration, err, int, map, to_script};
use crate::bridge::{Bridge, mark_script_thread, set_thread_stop};
use crate::diagnostics::Diagnostic;
use crate::doc::registry::{Area, Registrar};
use crate::host::HostState;
use crate::script_fn;

/// A closure and the context needed to call it later, from another thread.
#[derive(Clone)]
pub struct ScriptCallback {
    name: String,
    fn_ptr: FnPtr,
    store: Arc<rhai::NativeCallContextStore>,
    state: Arc<HostState>,
}

impl ScriptCallback {
    /// Captures `fn_ptr` with the calling context.
    pub fn capture(
        ctx: &NativeCallContext,
        name: &str,
        fn_ptr: FnPtr,
        state: &Arc<HostState>,
    ) -> Self {
        Self {
            name: name.to_string(),
            fn_ptr,
            store: Arc::new(ctx.store_data()),
            state: state.clone(),
        }
    }

    /// Calls the closure with a context handle on a new script thread; resolves when it returns.
    fn call_on_thread(
        &self,
        ctx: ContextHandle,
        stop: Option<CancellationToken>,
    ) -> BoxFuture<'static, Result<Dynamic, String>> {
        self.call_with(Dynamic::from(ctx), stop)
    }

    /// Calls the closure with `arg` on a new script thread; resolves when it returns (errors are
    /// rendered with their position). Used by triggers and invariants too.
    pub fn call_with(
        &self,
        arg: Dynamic,
        stop: Option<CancellationToken>,
    ) -> BoxFuture<'static, Result<Dynamic, String>> {
        self.call_with_args(vec![arg], stop)
    }

    /// [`Self::call_with`] with several arguments.
    pub fn call_with_args(
        &self,
        args: Vec<Dynamic>,
        stop: Option<CancellationToken>,
    ) -> BoxFuture<'static, Result<Dynamic, String>> {
        let this = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("script-{}", self.name))
            .spawn(move || {
                mark_script_thread();
                set_thread_stop(stop.clone());
                let result = this.call(args);
                let stopped = stop.as_ref().is_some_and(CancellationToken::is_cancelled);
                let out = match result {
                    Ok(v) => Ok(v),
                    Err(e) if stopped && is_termination(&e) => Ok(Dynamic::UNIT),
                    Err(e) => Err(render(&e, &this.state)),
                };
                let _ = tx.send(out);
            });
        Box::pin(async move {
            if let Err(e) = spawned {
                return Err(format!("cannot start a thread: {e}"));
            }
            rx.await
                .unwrap_or_else(|_| Err("the script thread panicked".to_string()))
        })
    }

    /// The closure's name (the workload's or expectation's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls the closure on this thread (a script thread).
    pub fn call_here(&self, arg: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
        self.call(vec![arg])
    }

    /// An error of the closure as one line with its position.
    pub fn render(&self, e: &EvalAltResult) -> String {
        render(e, &self.state)
    }

    fn call(&self, args: Vec<Dynamic>) -> Result<Dynamic, Box<EvalAltResult>> {
        let Some(engine) = self.state.engine() else {
            return Err("the script engine is gone (the script already ended)".into());
        };
        let context = self.store.create_context(&engine);
        self.fn_ptr.call_within_context::<Dynamic>(&context, args)
    }
}

fn is_termination(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorTerminated(..) => true,
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => is_termination(inner),
        _ => false,
    }
}

/// One line: message at file:line:col.
fn render(e: &EvalAltResult, state: &HostState) -> String {
    let d = Diagnostic::from_eval(e, &state.script);
    match &d.location {
        Some(l) => format!("{} at {}:{}:{}", d.message, l.file.display(), l.line, l.col),
        None => d.message,
    }
}

/// A workload written as a closure `|ctx| { ... }`. It runs until it returns or the run stops it
/// (at the end of the run duration the closure is stopped at its next operation); a script
/// error fails the run, naming the workload and the position.
pub struct ScriptWorkload {
    /// The callback.
    pub callback: ScriptCallback,
}

impl Workload for ScriptWorkload {
    fn name(&self) -> String {
        self.callback.name.clone()
    }

    fn run(
        &self,
        ctx: RunContext,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), WorkloadError>> {
        let handle = ContextHandle::new(
            ctx,
            self.callback.state.bridge.clone(),
            Some(stop.clone()),
            &self.callback.name,
        );
        let fut = self.callback.call_on_thread(handle, Some(stop));
        Box::pin(async move { fut.await.map(|_| ()).map_err(WorkloadError::new) })
    }
}

/// An expectation written as a closure `|ctx| bool` or `|ctx| #{passed, message}`, evaluated
/// after the run; with a `start_capture` closure, that one runs when the run starts and what it
/// returns is the evaluation's second argument (`|ctx, captured| ..`).
pub struct ScriptExpectation {
    /// The callback.
    pub callback: ScriptCallback,
    /// The seed's `start_capture`, if any.
    pub start: Option<ScriptCallback>,
    /// What `start` returned.
    pub captured: Mutex<Option<Dynamic>>,
}

impl ScriptExpectation {
    /// An expectation evaluated by `callback` alone.
    pub fn new(callback: ScriptCallback) -> Self {
        Self {
            callback,
            start: None,
            captured: Mutex::new(None),
        }
    }
}

impl Expectation for ScriptExpectation {
    fn name(&self) -> String {
        self.callback.name.clone()
    }

    fn start_capture<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<(), ExpectationError>> {
        let Some(start) = &self.start else {
            return Box::pin(async { Ok(()) });
        };
        let handle = ContextHandle::new(
            ctx.clone(),
            start.state.bridge.clone(),
            None,
            &format!("{}:start_capture", self.callback.name),
        );
        let fut = start.call_with(Dynamic::from(handle), None);
        Box::pin(async move {
            let value = fut
                .await
                .map_err(|e| ExpectationError::new(format!("start_capture: {e}")))?;
            *self.captured.lock().expect("captured") = Some(value);
            Ok(())
        })
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        let handle = ContextHandle::new(
            ctx.clone(),
            self.callback.state.bridge.clone(),
            None,
            &self.callback.name,
        );
        let fut = match &self.start {
            None => self.callback.call_on_thread(handle, None),
            Some(_) => {
                let captured = self
                    .captured
                    .lock()
                    .expect("captured")
                    .clone()
                    .unwrap_or(Dynamic::UNIT);
                self.callback
                    .call_with_args(vec![Dynamic::from(handle), captured], None)
            }
        };
        let name = self.callback.name.clone();
        Box::pin(async move {
            let value = fut.await.map_err(ExpectationError::new)?;
            to_verdict(&name, value).map_err(ExpectationError::new)
        })
    }
}

fn to_verdict(name: &str, value: Dynamic) -> Result<Verdict, String> {
    if let Ok(b) = value.as_bool() {
        let message = if b {
            "passed"
        } else {
            "the closure returned false"
        };
        return Ok(Verdict {
            passed: b,
            message: message.to_string(),
            evidence: serde_json::Value::Null,
        });
    }
    if let Some(m) = value.read_lock::<Map>() {
        let passed = m
            .get("passed")
            .and_then(|p| p.as_bool().ok())
            .ok_or_else(|| {
                format!("expectation `{name}` returned a map without a boolean `passed`")
            })?;
        let message = m
            .get("message")
            .map(ToString::to_string)
            .unwrap_or_else(|| if passed { "passed" } else { "failed" }.to_string());
        let evidence = m
            .get("evidence")
            .and_then(|e| rhai::serde::from_dynamic::<serde_json::Value>(e).ok())
            .unwrap_or(serde_json::Value::Null);
        return Ok(Verdict {
            passed,
            message,
            evidence,
        });
    }
    Err(format!(
        "expectation `{name}` must return a bool or #{{passed, message}}, got {}",
        super::values::a_type(&value)
    ))
}

/// What a script closure sees of the run (`ctx`): cheap handle, `&self` methods.
#[derive(Clone)]
pub struct ContextHandle {
    ctx: RunContext,
    bridge: Bridge,
    stop: Option<CancellationToken>,
    /// The block feed, subscribed when the closure started (`ctx.block_feed.next(..)`).
    feed: super::feed::FeedHandle,
    /// Seeded from the run seed and the closure's name: `--seed` replays the same choices.
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl ContextHandle {
    /// A handle for the closure named `label` (its random choices are seeded from the run seed
    /// and the label).
    pub fn new(
        ctx: RunContext,
        bridge: Bridge,
        stop: Option<CancellationToken>,
        label: &str,
    ) -> Self {
        let rng = Arc::new(Mutex::new(ctx.rng(&format!("script:{label}"))));
        let feed = super::feed::FeedHandle::subscribe(ctx.block_feed(), &bridge);
        Self {
            ctx,
            bridge,
            stop,
            feed,
            rng,
        }
    }

    /// The block feed subscription of this closure.
    pub fn feed(&self) -> super::feed::FeedHandle {
        self.feed.clone()
    }

    /// The run.
    pub fn run(&self) -> &RunContext {
        &self.ctx
    }

    /// The bridge to the runtime.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    fn random_int(&self, lo: INT, hi: INT) -> Res<INT> {
        if lo >= hi {
            return err(format!(
                "random_int({lo}, {hi}): the range is empty (want lo < hi)"
            ));
        }
        Ok(self.rng.lock().expect("rng").random_range(lo..hi))
    }

    /// The engine's run context behind the handle.
    pub fn run_context(&self) -> &RunContext {
        &self.ctx
    }

    fn run_description(&self) -> Map {
        let net = self.ctx.testnet();
        let topo = net.topology();
        let p = &topo.params;
        let stakes: Array = topo.nodes.iter().map(|n| int(n.stake)).collect();
        map([
            (
                "slot_duration",
                Dynamic::from_float(p.slot_duration.as_secs_f64()),
            ),
            (
                "active_slot_coeff",
                Dynamic::from_float(p.active_slot_coeff),
            ),
            ("security_param", int(p.security_param)),
            (
                "expected_blocks",
                Dynamic::from_float(p.expected_blocks(self.ctx.run_duration())),
            ),
            (
                "expected_blocks_so_far",
                Dynamic::from_float(p.expected_blocks(self.ctx.elapsed())),
            ),
            (
                "run_duration",
                Dynamic::from_float(self.ctx.run_duration().as_secs_f64()),
            ),
            (
                "elapsed",
                Dynamic::from_float(self.ctx.elapsed().as_secs_f64()),
            ),
            (
                "node_count",
                Dynamic::from_int(self.ctx.clients().len() as INT),
            ),
            ("stakes", stakes.into()),
            ("seed", int(self.ctx.seed())),
        ])
    }

    fn node(&self, i: INT) -> Res<NodeHandle> {
        let clients = self.ctx.clients();
        let n = clients.len();
        let idx = usize::try_from(i).ok().filter(|&i| i < n);
        match idx.and_then(|i| clients.get(i)) {
            Some(c) => {
                Ok(NodeHandle::new(c.clone(), self.bridge.clone()).with_run(self.ctx.clone()))
            }
            None => err(format!(
                "node = {i} is out of range: the testnet has {n} nodes (0..{n})"
            )),
        }
    }
}

/// Registers the context handle type.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Workloads);
    reg.register_type::<ContextHandle>(
        "RunContext",
        &[
            " What a script workload or expectation closure receives (`ctx`): the nodes, the",
            " wallets, the block feed, the testnet, the run's clock and seeded randomness.",
            "",
            " ```rhai,no_run",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))",
            "     .with_workload(\"probe\", |ctx| ctx.log(`${ctx.node_count} nodes`));",
            " ```",
        ],
    );
    script_fn!(reg,
        /// The API client of node `i`; an index out of range names the node count.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .with_workload("probe", |ctx| ctx.log(`${ctx.node(1).height()}`));
        /// ```
        fn node(ctx: RunContext, i: int) -> NodeClient => |c: &mut ContextHandle, i: INT| c.node(i)
    );
    script_fn!(reg,
        /// The API clients of every node.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .with_expectation("all above 3", |ctx| ctx.nodes().all(|n| n.height() > 3));
        /// ```
        fn nodes(ctx: RunContext) -> Array => |c: &mut ContextHandle| -> Array {
            c.ctx
                .clients()
                .iter()
                .map(|cl| {
                    Dynamic::from(
                        NodeHandle::new(cl.clone(), c.bridge.clone()).with_run(c.ctx.clone()),
                    )
                })
                .collect()
        }
    );
    script_fn!(reg,
        /// Number of nodes in the testnet.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .with_workload("probe", |ctx| ctx.log(`${ctx.node_count}`));
        /// ```
        get node_count(ctx: RunContext) -> int => |c: &mut ContextHandle| c.ctx.clients().len() as INT
    );
    script_fn!(reg,
        /// Seconds since the run started.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_workload("clock", |ctx| ctx.log(`t = ${ctx.elapsed()}`));
        /// ```
        fn elapsed(ctx: RunContext) -> float => |c: &mut ContextHandle| c.ctx.elapsed().as_secs_f64()
    );
    script_fn!(reg,
        /// Seconds since the run started, as a property.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_workload("clock", |ctx| ctx.log(`t = ${ctx.elapsed}`));
        /// ```
        get elapsed(ctx: RunContext) -> float => |c: &mut ContextHandle| c.ctx.elapsed().as_secs_f64()
    );
    script_fn!(reg,
        /// The plan's run duration in seconds.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_workload("half", |ctx| ctx.sleep(ctx.run_duration / 2));
        /// ```
        get run_duration(ctx: RunContext) -> float => |c: &mut ContextHandle| c.ctx.run_duration().as_secs_f64()
    );
    script_fn!(reg,
        /// The run's description, as a map: `slot_duration` (seconds), `active_slot_coeff` (f),
        /// `security_param` (k), `expected_blocks` (over the whole run duration, as the seed's
        /// `expected_blocks()`), `expected_blocks_so_far`, `run_duration` and `elapsed`
        /// (seconds), `node_count`, `stakes` (one per node, 0 for a follower) and `seed`.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3).slot_duration("200ms"))
        ///     .with_expectation("near the expected height", |ctx| {
        ///         let run = ctx.run;
        ///         ctx.node(0).height() >= run.expected_blocks / 2
        ///     });
        /// ```
        get run(ctx: RunContext) -> Map => |c: &mut ContextHandle| -> Map { c.run_description() }
    );
    script_fn!(reg,
        /// Blocks expected over the whole run duration (run duration / slot duration × f), as
        /// the seed's `ctx.expected_blocks()`.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("200ms"))
        ///     .with_workload("target", |ctx| ctx.log(`expect ${ctx.expected_blocks()} blocks`));
        /// ```
        fn expected_blocks(ctx: RunContext) -> float => |c: &mut ContextHandle| {
            c.ctx.testnet().topology().params.expected_blocks(c.ctx.run_duration())
        }
    );
    script_fn!(reg,
        /// The client of a node drawn from the run's seeded randomness (the seed's
        /// `random_node_client()`): `--seed` replays the same choices.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .with_workload("poke", |ctx| ctx.log(`height ${ctx.random_node().height()}`));
        /// ```
        fn random_node(ctx: RunContext) -> NodeClient => |c: &mut ContextHandle| -> Res<NodeHandle> {
            let n = c.ctx.clients().len() as INT;
            if n == 0 {
                return err("random_node(): the testnet has no node");
            }
            let i = c.random_int(0, n)?;
            c.node(i)
        }
    );
    script_fn!(reg,
        /// The run's seed.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_workload("seed", |ctx| ctx.log(`seed ${ctx.seed}`));
        /// ```
        get seed(ctx: RunContext) -> int => |c: &mut ContextHandle| int(c.ctx.seed())
    );
    script_fn!(reg,
        /// A random integer in `lo..hi` (`hi` excluded), from the run seed and the closure's
        /// name, so `--seed` replays the same choices.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .enable_node_control()
        ///     .with_workload("chaos", |ctx| ctx.net.restart(ctx.random_int(1, ctx.node_count)));
        /// ```
        fn random_int(ctx: RunContext, lo: int, hi: int) -> int
        => |c: &mut ContextHandle, lo: INT, hi: INT| c.random_int(lo, hi)
    );
    script_fn!(reg,
        /// A random float in `[0, 1)`, seeded like `random_int`.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_workload("jitter", |ctx| ctx.sleep(0.5 + ctx.random_float()));
        /// ```
        fn random_float(ctx: RunContext) -> float => |c: &mut ContextHandle| -> f64 {
            c.rng.lock().expect("rng").random::<f64>()
        }
    );
    script_fn!(reg,
        /// Whether the run has asked this workload to stop (its run duration is over): loop
        /// on `!ctx.stopped`.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_workload("poll", |ctx| { while !ctx.stopped { ctx.sleep("1s"); } });
        /// ```
        get stopped(ctx: RunContext) -> bool => |c: &mut ContextHandle| {
            c.stop.as_ref().is_some_and(CancellationToken::is_cancelled)
        }
    );
    script_fn!(reg,
        /// What the block feed has observed so far, as a map (method form).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_expectation("feed", |ctx| { print(ctx.block_feed()); true });
        /// ```
        fn block_feed(ctx: RunContext) -> Map => |c: &mut ContextHandle| to_script(&c.ctx.block_feed().stats())
    );
    script_fn!(reg,
        /// Transactions submitted so far by every workload.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(5).transactions().apply()
        ///     .with_expectation("sent some", |ctx| ctx.txs_submitted > 0);
        /// ```
        get txs_submitted(ctx: RunContext) -> int => |c: &mut ContextHandle| int(c.ctx.tx_log().submitted())
    );
    script_fn!(reg,
        /// The block that included transaction `id` (as the block feed saw it), or `()`.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_expectation("included", |ctx| ctx.tx_included("ab12") != ());
        /// ```
        fn tx_included(ctx: RunContext, id: String) -> Dynamic => |c: &mut ContextHandle, id: &str| {
            c.ctx
                .block_feed()
                .tx_included(id)
                .map_or(Dynamic::UNIT, |b| to_script(&b))
        }
    );
    script_fn!(reg,
        /// The running testnet: node control and faults from inside a workload (the plan must
        /// enable them).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .enable_node_control()
        ///     .with_workload("restart", |ctx| { ctx.sleep("5s"); ctx.net.restart(2); });
        /// ```
        get net(ctx: RunContext) -> Testnet => |c: &mut ContextHandle| {
            NetHandle::live(c.ctx.testnet(), c.bridge.clone()).with_wallets(c.ctx.wallet_book().clone())
        }
    );
    script_fn!(reg,
        /// Writes a note into the run's event stream (terminal and reports), timestamped.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_workload("say", |ctx| ctx.log("workload started"));
        /// ```
        fn log(ctx: RunContext, message: String) => |c: &mut ContextHandle, message: &str| {
            c.ctx.emit(RunEvent::Note {
                message: message.to_string(),
            });
        }
    );
    script_fn!(reg,
        /// Sleeps; returns early when the run stops the workload (which then ends at its next
        /// call).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_workload("tick", |ctx| { while !ctx.stopped { ctx.sleep("500ms"); } });
        /// ```
        fn sleep(ctx: RunContext, duration: Duration) => |c: &mut ContextHandle, d: Dynamic| -> Res<()> {
            let d = duration(&d, "sleep")?;
            // returns early (the closure then stops) when the run stops the workload
            c.bridge
                .block_on_cancellable(async move { tokio::time::sleep(d).await })?;
            Ok(())
        }
    );
}
