//! Following blocks from scripts: `ctx.block_feed` (a handle on the run's block feed: its
//! counters and `next(timeout)`, the next event observed), `on_block(|b| ..)` on a plan (a
//! workload calling the closure for every event) and on a live testnet (`net.on_block(..)`,
//! `net.block_feed()`, a feed of their own over the testnet's nodes).
//!
//! An event is a map. A block: `#{type: "block", node, id, parent, height, slot, tx_ids,
//! observed_at, first_seen}` (one per node that made it canonical, oldest first on each node;
//! `observed_at` in ms since the Unix epoch; `first_seen` on the first node to report it). A
//! reorg notice: `#{type: "reorg", node, fork_height, depth, old_tip, new_tip, observed_at}`
//! (delivered before the blocks of the new branch). A subscriber that fell behind by more than
//! the feed keeps gets `#{type: "lagged", missed, observed_at}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::blockfeed::{BlockFeed, FeedEvent, now_ms};
use engine::context::RunContext;
use engine::workload::{Workload, WorkloadError};
use futures::future::BoxFuture;
use rhai::{Dynamic, Engine, FnPtr, INT, Map, NativeCallContext};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::deploy::NetHandle;
use super::scenario::PlanBuilder;
use super::script_fns::{ContextHandle, ScriptCallback};
use super::values::{Res, duration, int, map, to_script};
use crate::bridge::{Bridge, mark_script_thread, set_thread_stop};
use crate::doc::registry::{Area, Registrar};
use crate::host::HostState;
use crate::script_fn;

/// Stops a feed the bindings started (for a live testnet) when its last handle goes.
struct FeedOwner(CancellationToken);

impl Drop for FeedOwner {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A subscription to a block feed: its counters, and its events one by one from the moment it
/// was made.
#[derive(Clone)]
pub struct FeedHandle {
    feed: Option<BlockFeed>,
    rx: Arc<tokio::sync::Mutex<Option<broadcast::Receiver<FeedEvent>>>>,
    bridge: Bridge,
    _owner: Option<Arc<FeedOwner>>,
}

impl FeedHandle {
    /// A subscription to `feed` from now on.
    pub fn subscribe(feed: &BlockFeed, bridge: &Bridge) -> Self {
        Self {
            feed: Some(feed.clone()),
            rx: Arc::new(tokio::sync::Mutex::new(Some(feed.subscribe()))),
            bridge: bridge.clone(),
            _owner: None,
        }
    }

    /// A feed of its own over `net`'s nodes (None when checking: it never has an event).
    fn for_net(net: &NetHandle) -> Res<Self> {
        let Some(t) = net.testnet().cloned() else {
            return Ok(Self {
                feed: None,
                rx: Arc::new(tokio::sync::Mutex::new(None)),
                bridge: net.bridge().clone(),
                _owner: None,
            });
        };
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let feed = net
            .bridge()
            .block_on(async move { BlockFeed::start(&t.clients().0, c) })?;
        Ok(Self {
            _owner: Some(Arc::new(FeedOwner(cancel))),
            ..Self::subscribe(&feed, net.bridge())
        })
    }

    fn stats(&self) -> Dynamic {
        self.feed.as_ref().map_or_else(
            || to_script(&engine::blockfeed::FeedStats::default()),
            |f| to_script(&f.stats()),
        )
    }

    fn stat(&self, key: &str) -> Dynamic {
        self.stats()
            .read_lock::<Map>()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or(Dynamic::UNIT)
    }

    /// The next event, or None when `within` passes first.
    fn next(&self, within: Duration) -> Res<Option<Dynamic>> {
        let rx = self.rx.clone();
        let got = self.bridge.block_on_cancellable(async move {
            // one subscription is read by one caller at a time
            let mut guard = rx.lock().await;
            let rx = guard.as_mut()?;
            tokio::time::timeout(within, rx.recv()).await.ok()
        });
        Ok(match got? {
            None => None,
            Some(Ok(ev)) => Some(event_map(&ev)),
            Some(Err(broadcast::error::RecvError::Lagged(n))) => Some(
                map([
                    ("type", "lagged".into()),
                    ("missed", int(n)),
                    ("observed_at", int(now_ms())),
                ])
                .into(),
            ),
            Some(Err(broadcast::error::RecvError::Closed)) => None,
        })
    }
}

/// The script form of a feed event.
pub fn event_map(ev: &FeedEvent) -> Dynamic {
    match ev {
        FeedEvent::Block {
            node,
            block,
            observed_at_ms,
            first_seen,
        } => map([
            ("type", "block".into()),
            ("node", Dynamic::from_int(*node as INT)),
            ("id", block.id.clone().into()),
            ("parent", block.parent.clone().into()),
            ("height", int(block.height)),
            ("slot", int(block.slot)),
            (
                "tx_ids",
                Dynamic::from_array(block.tx_ids.iter().map(|t| t.clone().into()).collect()),
            ),
            ("observed_at", int(*observed_at_ms)),
            ("first_seen", (*first_seen).into()),
        ])
        .into(),
        FeedEvent::Reorg {
            node,
            fork_height,
            depth,
            old_tip,
            new_tip,
        } => map([
            ("type", "reorg".into()),
            ("node", Dynamic::from_int(*node as INT)),
            ("fork_height", int(*fork_height)),
            ("depth", int(*depth)),
            ("old_tip", old_tip.clone().into()),
            ("new_tip", new_tip.clone().into()),
            ("observed_at", int(now_ms())),
        ])
        .into(),
    }
}

/// `on_block(|b| ..)` on a plan: a workload that calls the closure with every feed event, on one
/// thread of its own, in order, until the run stops it. A script error in the closure fails the
/// run.
pub struct BlockWatcher {
    callback: ScriptCallback,
    state: Arc<HostState>,
}

impl Workload for BlockWatcher {
    fn name(&self) -> String {
        self.callback.name().to_string()
    }

    fn run(
        &self,
        ctx: RunContext,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), WorkloadError>> {
        let feed = FeedHandle::subscribe(ctx.block_feed(), &self.state.bridge);
        let cb = self.callback.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("script-{}", cb.name()))
            .spawn(move || {
                mark_script_thread();
                set_thread_stop(Some(stop.clone()));
                let out = loop {
                    if stop.is_cancelled() {
                        break Ok(());
                    }
                    let ev = match feed.next(Duration::from_millis(500)) {
                        Ok(Some(ev)) => ev,
                        Ok(None) => continue,
                        Err(_) if stop.is_cancelled() => break Ok(()),
                        Err(e) => break Err(cb.render(&e)),
                    };
                    match cb.call_here(ev) {
                        Ok(_) => {}
                        Err(_) if stop.is_cancelled() => break Ok(()),
                        Err(e) => break Err(cb.render(&e)),
                    }
                };
                let _ = tx.send(out);
            });
        Box::pin(async move {
            if let Err(e) = spawned {
                return Err(WorkloadError::new(format!("cannot start a thread: {e}")));
            }
            rx.await
                .unwrap_or_else(|_| Err("the script thread panicked".to_string()))
                .map_err(WorkloadError::new)
        })
    }
}

/// `net.on_block(within, f)`: calls `f` with every event of a feed over `net` on this thread
/// until it returns `false` or `within` passes; returns the number of events delivered.
fn follow_net(
    ctx: &NativeCallContext,
    net: &NetHandle,
    within: Option<Duration>,
    f: &FnPtr,
) -> Res<INT> {
    let feed = FeedHandle::for_net(net)?;
    if feed.feed.is_none() {
        return Ok(0); // checking: no blocks
    }
    let start = Instant::now();
    let mut delivered: INT = 0;
    loop {
        let left = match within {
            Some(w) => match w.checked_sub(start.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(delivered),
            },
            None => Duration::from_secs(1),
        };
        let Some(ev) = feed.next(left.min(Duration::from_secs(1)))? else {
            continue;
        };
        delivered += 1;
        let keep: Dynamic = f.call_within_context(ctx, (ev,))?;
        if keep.as_bool() == Ok(false) {
            return Ok(delivered);
        }
    }
}

/// Registers the feed handle, `on_block` on plans and live testnets.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut reg = Registrar::new(engine, Area::Workloads);
    reg.register_type::<FeedHandle>(
        "BlockFeed",
        &[
            " The run's block feed as a closure sees it (`ctx.block_feed`): its counters",
            " (`blocks_seen`, `reorgs`, `max_reorg_depth`, `heights`, `txs_seen`,",
            " `delay_median_ms`, `delay_p99_ms`, `modes`, also as a map with `stats()`) and its",
            " events one by one (`next(timeout)`) from the moment the closure started.",
            "",
            " ```rhai,no_run",
            " let plan = ScenarioBuilder::topology_with(|t| t.nodes(2))",
            "     .with_workload(\"follow\", |ctx| {",
            "         while !ctx.stopped {",
            "             let b = ctx.block_feed.next(\"2s\");",
            "             if b != () && b.type == \"block\" { ctx.log(`${b.node}: ${b.height}`); }",
            "         }",
            "     });",
            " ```",
        ],
    );
    script_fn!(reg,
        /// The run's block feed, subscribed when the closure started: `next(timeout)` gives its
        /// events one by one; its counters read as properties (`ctx.block_feed.heights`).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_expectation("feed", |ctx| { print(ctx.block_feed); ctx.block_feed.blocks_seen > 0 });
        /// ```
        get block_feed(ctx: RunContext) -> BlockFeed => |c: &mut ContextHandle| c.feed()
    );
    script_fn!(reg,
        /// The next event the feed observed after the previous one this closure read (the
        /// first: after the closure started), waiting at most `timeout`; `()` when none came.
        /// A block: `#{type: "block", node, id, parent, height, slot, tx_ids, observed_at,
        /// first_seen}`, one per node that made it canonical, each node's oldest first. A reorg
        /// notice: `#{type: "reorg", node, fork_height, depth, old_tip, new_tip, observed_at}`,
        /// before the new branch's blocks. Fallen behind: `#{type: "lagged", missed,
        /// observed_at}`. `observed_at` is in ms since the Unix epoch.
        ///
        /// ```rhai,deploys
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("100ms"))
        ///     .with_workload("follow", |ctx| {
        ///         let b = ctx.block_feed.next("5s");
        ///         ctx.log(`node-${b.node} block ${b.height} (parent ${b.parent})`);
        ///     })
        ///     .expect_consensus_liveness()
        ///     .with_run_duration("2s")
        ///     .build();
        /// plan.run();
        /// ```
        fn next(feed: BlockFeed, timeout: Duration) -> Dynamic => |f: &mut FeedHandle, t: Dynamic| -> Res<Dynamic> {
            let t = duration(&t, "next: timeout")?;
            Ok(f.next(t)?.unwrap_or(Dynamic::UNIT))
        }
    );
    script_fn!(reg,
        /// The feed's counters as a map: `#{blocks_seen, reorgs, max_reorg_depth, heights,
        /// delay_median_ms, delay_p99_ms, txs_seen, modes}` (`heights` and `modes` per node:
        /// canonical height observed, `()` before the first block; `stream`, `poll` or `none`).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_expectation("no reorg", |ctx| ctx.block_feed.stats().reorgs == 0);
        /// ```
        fn stats(feed: BlockFeed) -> Map => |f: &mut FeedHandle| f.stats()
    );
    for (key, what, ty) in [
        ("blocks_seen", " Distinct blocks the feed has seen.", "int"),
        (
            "reorgs",
            " Reorgs seen over all nodes (derived by the feed).",
            "int",
        ),
        ("max_reorg_depth", " The deepest reorg seen.", "int"),
        (
            "heights",
            " Canonical height per node as observed (`()` before its first block).",
            "Array",
        ),
        (
            "txs_seen",
            " Transactions seen in canonical blocks (distinct ids).",
            "int",
        ),
        (
            "delay_median_ms",
            " Median delay from a block's slot start to its first observation (ms; `()` unknown).",
            "Dynamic",
        ),
        (
            "delay_p99_ms",
            " 99th percentile of the same (ms; `()` unknown).",
            "Dynamic",
        ),
        (
            "modes",
            " How each node is read: `stream`, `poll` or `none`.",
            "Array",
        ),
    ] {
        let example = format!(
            " ```rhai,no_run\n let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))\n     .with_expectation(\"feed\", |ctx| {{ print(ctx.block_feed.{key}); true }});\n ```"
        );
        let lines: Vec<&str> = [what, ""].into_iter().chain(example.lines()).collect();
        let k = key.to_string();
        reg.getter(
            key,
            &["feed: BlockFeed"],
            ty,
            &lines,
            move |f: &mut FeedHandle| f.stat(&k),
        );
    }
    script_fn!(reg,
        /// The feed's counters, as text.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2))
        ///     .with_expectation("feed", |ctx| { print(ctx.block_feed.to_string()); true });
        /// ```
        fn to_string(feed: BlockFeed) -> String => |f: &mut FeedHandle| f.stats().to_string()
    );

    reg.area(Area::Scenario);
    let st = state.clone();
    script_fn!(reg,
        /// Calls `f` with every block feed event of the run (a map, see `next` on `BlockFeed`:
        /// blocks, reorg notices), in order, on a thread of its own, as a workload named
        /// `on_block`. A script error in `f` (a `throw`) fails the run.
        ///
        /// ```rhai,deploys
        /// let seen = #{};
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("100ms"))
        ///     .on_block(|b| if b.type == "block" { seen[b.id] = b.height; })
        ///     .with_expectation("saw blocks", |ctx| seen.len() > 0)
        ///     .with_run_duration("2s")
        ///     .build();
        /// plan.run();
        /// ```
        fn on_block(builder: ScenarioBuilder, f: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, f: FnPtr| -> Res<PlanBuilder> {
            let cb = ScriptCallback::capture(&ctx, "on_block", f, &st);
            let w = BlockWatcher { callback: cb, state: st.clone() };
            Ok(b.map(|s| s.with_workload(Arc::new(w))))
        }
    );

    reg.area(Area::Waits);
    script_fn!(reg,
        /// Follows the testnet's blocks (a feed of its own over every node) and calls `f` with
        /// each event (as `next` on `BlockFeed` gives them) on this thread, until `f` returns
        /// `false` or Ctrl-C; returns the number of events delivered. The feed starts from each
        /// node's chain: the blocks already made come first (each node's oldest first), then new
        /// ones. Nothing under `check`.
        ///
        /// ```rhai
        /// let count = 0;
        /// let n = net.on_block(|b| { count += 1; count < 3 });   // stops after 3 events
        /// print(`${n} events`);
        /// ```
        fn on_block(net: Testnet, f: FnPtr) -> int
        => |ctx: NativeCallContext, net: &mut NetHandle, f: FnPtr| follow_net(&ctx, net, None, &f)
    );
    script_fn!(reg,
        /// Like `on_block(f)`, for at most `within`.
        ///
        /// ```rhai
        /// let heights = [];
        /// net.on_block("1s", |b| { if b.type == "block" { heights.push(b.height); } true });
        /// ```
        fn on_block(net: Testnet, within: Duration, f: FnPtr) -> int
        => |ctx: NativeCallContext, net: &mut NetHandle, within: Dynamic, f: FnPtr| -> Res<INT> {
            let within = duration(&within, "on_block: within")?;
            follow_net(&ctx, net, Some(within), &f)
        }
    );
    script_fn!(reg,
        /// A block feed of its own over the testnet's nodes: `next(timeout)` gives its events
        /// one by one, starting with the blocks each node already has (oldest first); it stops
        /// following when the handle is dropped. Under `check` it never has an event.
        ///
        /// ```rhai
        /// let feed = net.block_feed();
        /// let b = feed.next("5s");
        /// if b != () { print(`${b.type} on node-${b.node}`); }
        /// ```
        fn block_feed(net: Testnet) -> BlockFeed => |net: &mut NetHandle| FeedHandle::for_net(net)
    );
}
