//! Chaos in scripts: the seed's `chaos_with`, event-triggered faults and continuous invariants.
//!
//! ```rhai
//! let plan = ScenarioBuilder::topology_with(|t| t.network_star().nodes(4))
//!     .chaos_with(|c| c.restart().min_delay("5s").max_delay("10s").target_cooldown("15s").apply()
//!                      .partition().min_delay("8s").max_delay("12s").duration("3s").apply())
//!     .on_height(20, |net| net.partition([[0, 1], [2, 3]]))     // once, when the chain reaches 20
//!     .after("30s", |net| net.heal())
//!     .always("heights within 10", |ctx| { let h = []; for n in ctx.nodes() { h.push(n.height()) }
//!                                          h.reduce(|a, b| if a > b { a } else { b }) - h.reduce(|a, b| if a < b { a } else { b }) <= 10 })
//!     .expect_convergence()
//!     .with_run_duration("60s")
//!     .build();
//!
//! // on a live testnet (REPL, imperative scripts): returns a trigger handle at once
//! let t = net.on_height(10, |net| net.isolate(2));
//! t.wait("30s");              // #{after, height, slot}, or an error naming what went wrong
//! ```
//!
//! Trigger actions get the testnet (`|net| ...`); invariant predicates get the run context
//! (`|ctx| ...`) and return a bool or `#{value: bool, detail: "which node broke it"}`.

use std::sync::Arc;
use std::time::Duration;

use engine::chaos::spec::{
    ClockBuilder, DegradeBuilder, Origin, PartitionBuilder, PauseBuilder, RestartBuilder,
    ScheduleBuilder,
};
use engine::chaos::{
    self, ChaosAction, ChaosBuilder, ChaosScenarioExt, Check, DegradeScope, Trigger, TriggerHandle,
    TriggerState,
};
use engine::links::LinkSel;
use rhai::{Array, Dynamic, Engine, FnPtr, INT, Map, NativeCallContext};

use super::deploy::NetHandle;
use super::scenario::PlanBuilder;
use super::script_fns::{ContextHandle, ScriptCallback};
use super::values::{Res, amount, deadline, duration, err, index, index_groups, number, to_script};
use crate::doc::registry::{Area, Registrar};
use crate::host::HostState;
use crate::script_fn;
use engine::deadline::Deadline;

/// Registers `min_delay`, `max_delay` and `apply` of one chaos kind (`$kind` is how the kind is
/// started on `c`, e.g. `"partition()"`).
macro_rules! delays {
    ($reg:expr, $t:ty, $ty:literal, $kind:literal, $field:literal) => {
        $reg.func(
            "min_delay",
            &[concat!("chaos: ", $ty), "delay: Duration"],
            $ty,
            &[
                " Shortest wait before each fault of this kind (drawn between min_delay and",
                " max_delay from the run seed).",
                "",
                " ```rhai",
                concat!(" let b = ScenarioBuilder::topology_with(|t| t.nodes(4)).chaos_with(|c| c.", $kind, ".min_delay(\"5s\").apply());"),
                " ```",
            ],
            |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone().min_delay(duration(&d, concat!($field, " min_delay"))?))
            },
        );
        $reg.func(
            "max_delay",
            &[concat!("chaos: ", $ty), "delay: Duration"],
            $ty,
            &[
                " Longest wait before each fault of this kind.",
                "",
                " ```rhai",
                concat!(" let b = ScenarioBuilder::topology_with(|t| t.nodes(4)).chaos_with(|c| c.", $kind, ".min_delay(\"5s\").max_delay(\"10s\").apply());"),
                " ```",
            ],
            |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone().max_delay(duration(&d, concat!($field, " max_delay"))?))
            },
        );
        $reg.func(
            "apply",
            &[concat!("chaos: ", $ty)],
            "ChaosBuilder",
            &[
                " Ends this kind of fault and returns to the `ChaosBuilder`, to add another kind or",
                " to end the `chaos_with` closure; in the seed's `builder.chaos()` flow it adds the",
                " chaos to the plan and returns the `ScenarioBuilder`.",
                "",
                " ```rhai",
                concat!(" let b = ScenarioBuilder::topology_with(|t| t.nodes(4)).chaos_with(|c| c.", $kind, ".apply());"),
                " ```",
            ],
            |b: &mut $t| -> Res<Dynamic> { finish(b.clone().apply()) },
        );
    };
}

/// Registers `min_duration`, `max_duration` and `duration` of one chaos kind.
macro_rules! durations {
    ($reg:expr, $t:ty, $ty:literal, $kind:literal, $field:literal) => {
        $reg.func(
            "min_duration",
            &[concat!("chaos: ", $ty), "hold: Duration"],
            $ty,
            &[
                " Shortest time each fault of this kind holds before it is reverted.",
                "",
                " ```rhai",
                concat!(
                    " let b = ScenarioBuilder::topology_with(|t| t.nodes(4)).chaos_with(|c| c.",
                    $kind,
                    ".min_duration(\"1s\").max_duration(\"3s\").apply());"
                ),
                " ```",
            ],
            |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone()
                    .min_duration(duration(&d, concat!($field, " min_duration"))?))
            },
        );
        $reg.func(
            "max_duration",
            &[concat!("chaos: ", $ty), "hold: Duration"],
            $ty,
            &[
                " Longest time each fault of this kind holds before it is reverted.",
                "",
                " ```rhai",
                concat!(
                    " let b = ScenarioBuilder::topology_with(|t| t.nodes(4)).chaos_with(|c| c.",
                    $kind,
                    ".max_duration(\"4s\").apply());"
                ),
                " ```",
            ],
            |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone()
                    .max_duration(duration(&d, concat!($field, " max_duration"))?))
            },
        );
        $reg.func(
            "duration",
            &[concat!("chaos: ", $ty), "hold: Duration"],
            $ty,
            &[
                " How long each fault of this kind holds (min_duration = max_duration).",
                "",
                " ```rhai",
                concat!(
                    " let b = ScenarioBuilder::topology_with(|t| t.nodes(4)).chaos_with(|c| c.",
                    $kind,
                    ".duration(\"2s\").apply());"
                ),
                " ```",
            ],
            |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone()
                    .duration(duration(&d, concat!($field, " duration"))?))
            },
        );
    };
}

// the byzantine chaos kind registers its settings in its own module
pub(crate) use {delays, durations};
mod builders;
mod disk_streams;
mod live;
mod schedule;

use builders::*;
pub use live::ScriptTrigger;
pub(crate) use live::finish;
use live::*;
pub(super) use schedule::call_chaos;
use schedule::*;

fn register_plan(reg: &mut Registrar, state: &Arc<HostState>) {
    script_fn!(reg,
        /// The seed's chaos flow: returns a `ChaosBuilder` whose kind, once configured and
        /// ended with `apply()`, is added to this plan (`apply()` returns the
        /// `ScenarioBuilder`). One kind per `chaos()`; `chaos_with` combines several.
        /// `chaos().apply()` adds nothing.
        ///
        /// ```rhai
        /// let plan = ScenarioBuilder::topology_with(|t| t.network_star().nodes(4))
        ///     .enable_node_control()
        ///     .chaos().restart().min_delay("5s").max_delay("10s").target_cooldown("15s").apply()
        ///     .expect_consensus_liveness()
        ///     .with_run_duration("60s")
        ///     .build();
        /// ```
        fn chaos(builder: ScenarioBuilder) -> ChaosBuilder
        => |b: &mut PlanBuilder| {
            let mut c = ChaosBuilder::new();
            c.origin = Origin(Some(Arc::new(b.clone())));
            c
        }
    );
    script_fn!(reg,
        /// Adds the chaos workload, as in the seed framework: the closure gets a `ChaosBuilder`,
        /// adds fault kinds (each ended with `apply()`) and returns it. The timeline is planned
        /// from the run seed; the plan must enable node control and/or network faults as the
        /// kinds need.
        ///
        /// ```rhai
        /// let plan = ScenarioBuilder::topology_with(|t| t.network_star().nodes(4))
        ///     .enable_node_control()
        ///     .chaos_with(|c| c.restart().min_delay("5s").max_delay("10s").target_cooldown("15s").apply())
        ///     .expect_consensus_liveness()
        ///     .with_run_duration("60s")
        ///     .build();
        /// ```
        fn chaos_with(builder: ScenarioBuilder, f: FnPtr) -> ScenarioBuilder
        => |ctx: NativeCallContext, b: &mut PlanBuilder, f: FnPtr| -> Res<PlanBuilder> {
            let c = call_chaos(&ctx, &f)?;
            if let Err(e) = c.validate() {
                return err(format!("invalid chaos: {e}"));
            }
            Ok(b.map(|s| s.chaos_with(|_| c)))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// During the run, runs `action(net)` once when the chain reaches `height`.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.network_full().nodes(4))
        ///     .enable_network_faults()
        ///     .on_height(5, |net| net.partition([[0, 1], [2, 3]]));
        /// ```
        fn on_height(builder: ScenarioBuilder, height: int, action: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, h: INT, f: FnPtr| -> Res<PlanBuilder> {
            let h = height(h, "on_height height")?;
            let cb = ScriptCallback::capture(&ctx, &format!("on_height({h})"), f, &st);
            let a = script_action(cb, st.clone());
            Ok(b.map(|s| s.on_height(h, a)))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// During the run, runs `action(net)` once when slot `slot` is reached.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .enable_node_control()
        ///     .on_slot(20, |net| net.restart(1));
        /// ```
        fn on_slot(builder: ScenarioBuilder, slot: int, action: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, n: INT, f: FnPtr| -> Res<PlanBuilder> {
            let n = height(n, "on_slot slot")?;
            let cb = ScriptCallback::capture(&ctx, &format!("on_slot({n})"), f, &st);
            let a = script_action(cb, st.clone());
            Ok(b.map(|s| s.on_slot(n, a)))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// During the run, runs `action(net)` once, `delay` after the start.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .enable_network_faults()
        ///     .after("10s", |net| net.isolate(3))
        ///     .after("15s", |net| net.heal());
        /// ```
        fn after(builder: ScenarioBuilder, delay: Duration, action: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, d: Dynamic, f: FnPtr| -> Res<PlanBuilder> {
            let d = duration(&d, "after")?;
            let label = format!("after({})", humantime::format_duration(d));
            let cb = ScriptCallback::capture(&ctx, &label, f, &st);
            let a = script_action(cb, st.clone());
            Ok(b.map(|s| s.after(d, a)))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// During the run, runs `action(net)` once, the first time `condition(net)` is true.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .enable_node_control()
        ///     .when(|net| net.node(0).height() >= 10, |net| net.restart(2));
        /// ```
        fn when(builder: ScenarioBuilder, condition: FnPtr, action: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, cond: FnPtr, f: FnPtr| -> Res<PlanBuilder> {
            let c = ScriptCallback::capture(&ctx, "when condition", cond, &st);
            let cb = ScriptCallback::capture(&ctx, "when", f, &st);
            let cond = script_condition(c, st.clone());
            let a = script_action(cb, st.clone());
            Ok(b.map(|s| s.when(cond, a)))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// An invariant checked about once a slot during the run: the first time `check(ctx)`
        /// is false the run stops early and fails, with a witness (time, heights, and the
        /// `detail` of `#{value, detail}` when returned).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .always("node-0 answers", |ctx| ctx.node(0).height() >= 0);
        /// ```
        fn always(builder: ScenarioBuilder, name: String, check: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, name: &str, f: FnPtr| -> Res<PlanBuilder> {
            let p = predicate(&ctx, &st, name, f, "always")?;
            Ok(b.map(|s| s.always(name, p)))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// An invariant that must never hold: the first time `check(ctx)` is true the run stops
        /// early and fails, with a witness.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .never("node-1 far behind", |ctx| ctx.node(0).height() > ctx.node(1).height() + 10);
        /// ```
        fn never(builder: ScenarioBuilder, name: String, check: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, name: &str, f: FnPtr| -> Res<PlanBuilder> {
            let p = predicate(&ctx, &st, name, f, "never")?;
            Ok(b.map(|s| s.never(name, p)))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// `check(ctx)` must become true within `within` of the start (a duration, or `"N
        /// slots"` / `"N blocks"` of the plan's consensus parameters), or the run fails then.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .eventually_within("20s", "height 5", |ctx| ctx.node(0).height() >= 5);
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(3))
        ///     .eventually_within("10 blocks", "height 5", |ctx| ctx.node(0).height() >= 5);
        /// ```
        fn eventually_within(builder: ScenarioBuilder, within: Deadline, name: String, check: FnPtr) -> ScenarioBuilder
        => move |ctx: NativeCallContext, b: &mut PlanBuilder, d: Dynamic, name: &str, f: FnPtr| -> Res<PlanBuilder> {
            let d = deadline(&d, "eventually_within")?;
            let p = predicate(&ctx, &st, name, f, "eventually_within")?;
            Ok(b.map(|s| s.eventually_within(d, name, p)))
        }
    );
}

fn predicate(
    ctx: &NativeCallContext,
    state: &Arc<HostState>,
    name: &str,
    f: FnPtr,
    what: &str,
) -> Res<chaos::Predicate> {
    if name.trim().is_empty() {
        return err(format!("{what} needs a non-empty name"));
    }
    let cb = ScriptCallback::capture(ctx, name, f, state);
    Ok(script_predicate(name.to_owned(), cb, state.clone()))
}

/// Registers chaos builders, plan triggers and invariants, and live triggers.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut reg = Registrar::new(engine, Area::Chaos);
    register_builders(&mut reg);
    register_plan(&mut reg, state);
    register_live(&mut reg, state);
}
