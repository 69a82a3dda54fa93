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
    DegradeBuilder, PartitionBuilder, PauseBuilder, RestartBuilder, ScheduleBuilder,
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
use super::values::{Res, amount, duration, err, index, index_groups, number, to_script};
use crate::host::HostState;

fn nodes(a: &Array, what: &str) -> Res<Vec<usize>> {
    a.iter().map(|v| index(v, what)).collect()
}

/// Calls the `chaos_with` closure and checks it returned the chaos builder.
fn call_chaos(ctx: &NativeCallContext, f: &FnPtr) -> Res<ChaosBuilder> {
    let out: Dynamic = f.call_within_context(ctx, (ChaosBuilder::new(),))?;
    let found = out.type_name().to_string();
    out.try_cast::<ChaosBuilder>().ok_or_else(|| {
        format!(
            "the closure given to chaos_with must return the ChaosBuilder (end each fault with .apply(), e.g. `|c| c.restart().apply()`), but it returned a {found}"
        )
        .into()
    })
}

fn schedule_action(name: &str, arg: &Dynamic) -> Res<ChaosAction> {
    let node = |what: &str| index(arg, &format!("schedule {what}"));
    Ok(match name {
        "restart" => ChaosAction::Restart(node("restart")?),
        "stop" => ChaosAction::Stop(node("stop")?),
        "kill" => ChaosAction::Kill(node("kill")?),
        "start" => ChaosAction::Start(node("start")?),
        "pause" => ChaosAction::Pause(node("pause")?),
        "resume" => ChaosAction::Resume(node("resume")?),
        "isolate" => ChaosAction::Isolate(node("isolate")?),
        "heal" => ChaosAction::Heal,
        "partition" => match arg.read_lock::<Array>() {
            Some(a) => ChaosAction::Partition(index_groups(&a, "schedule partition")?),
            None => {
                return err(format!(
                    "schedule partition expects groups such as [[0, 1], [2, 3]], got {arg}"
                ));
            }
        },
        "latency" => ChaosAction::Latency {
            links: LinkSel::All,
            delay: duration(arg, "schedule latency")?,
            jitter: Duration::ZERO,
        },
        "loss" => {
            let p = number(arg, "schedule loss")?;
            if !(0.0..=1.0).contains(&p) {
                return err(format!(
                    "schedule loss = {p}: a probability must be in [0, 1]"
                ));
            }
            ChaosAction::Loss {
                links: LinkSel::All,
                probability: p,
            }
        }
        other => {
            return err(format!(
                "schedule action = \"{other}\" is unknown (restart, stop, kill, start, pause, resume, isolate, partition, latency, loss, heal)"
            ));
        }
    })
}

macro_rules! delays {
    ($engine:expr, $t:ty, $kind:literal) => {
        $engine
            .register_fn("min_delay", |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone()
                    .min_delay(duration(&d, concat!($kind, " min_delay"))?))
            })
            .register_fn("max_delay", |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone()
                    .max_delay(duration(&d, concat!($kind, " max_delay"))?))
            })
            .register_fn("apply", |b: &mut $t| b.clone().apply());
    };
}

macro_rules! durations {
    ($engine:expr, $t:ty, $kind:literal) => {
        $engine
            .register_fn("min_duration", |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone()
                    .min_duration(duration(&d, concat!($kind, " min_duration"))?))
            })
            .register_fn("max_duration", |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone()
                    .max_duration(duration(&d, concat!($kind, " max_duration"))?))
            })
            .register_fn("duration", |b: &mut $t, d: Dynamic| -> Res<$t> {
                Ok(b.clone()
                    .duration(duration(&d, concat!($kind, " duration"))?))
            });
    };
}

fn register_builders(engine: &mut Engine) {
    engine
        .register_type_with_name::<ChaosBuilder>("ChaosBuilder")
        .register_fn("to_string", |b: &mut ChaosBuilder| format!("{b:?}"))
        .register_fn("restart", |b: &mut ChaosBuilder| b.clone().restart())
        .register_fn("partition", |b: &mut ChaosBuilder| b.clone().partition())
        .register_fn("degrade", |b: &mut ChaosBuilder| b.clone().degrade())
        .register_fn("pause", |b: &mut ChaosBuilder| b.clone().pause())
        .register_fn("schedule", |b: &mut ChaosBuilder| b.clone().schedule())
        .register_fn("name", |b: &mut ChaosBuilder, n: &str| b.clone().name(n))
        .register_fn(
            "quiet_tail",
            |b: &mut ChaosBuilder, d: Dynamic| -> Res<ChaosBuilder> {
                Ok(b.clone().quiet_tail(duration(&d, "quiet_tail")?))
            },
        );

    engine.register_type_with_name::<RestartBuilder>("RestartChaos");
    delays!(engine, RestartBuilder, "restart");
    engine
        .register_fn(
            "target_cooldown",
            |b: &mut RestartBuilder, d: Dynamic| -> Res<RestartBuilder> {
                Ok(b.clone()
                    .target_cooldown(duration(&d, "restart target_cooldown")?))
            },
        )
        .register_fn(
            "targets",
            |b: &mut RestartBuilder, a: Array| -> Res<RestartBuilder> {
                Ok(b.clone().targets(nodes(&a, "restart targets")?))
            },
        )
        .register_fn(
            "exclude",
            |b: &mut RestartBuilder, a: Array| -> Res<RestartBuilder> {
                Ok(b.clone().exclude(nodes(&a, "restart exclude")?))
            },
        )
        .register_fn("kill", |b: &mut RestartBuilder| b.clone().kill())
        .register_fn(
            "down_for",
            |b: &mut RestartBuilder, d: Dynamic| -> Res<RestartBuilder> {
                Ok(b.clone().down_for(duration(&d, "restart down_for")?))
            },
        )
        .register_fn(
            "catch_up_within",
            |b: &mut RestartBuilder, d: Dynamic| -> Res<RestartBuilder> {
                Ok(b.clone()
                    .catch_up_within(duration(&d, "restart catch_up_within")?))
            },
        );

    engine.register_type_with_name::<PartitionBuilder>("PartitionChaos");
    delays!(engine, PartitionBuilder, "partition");
    durations!(engine, PartitionBuilder, "partition");
    engine.register_fn(
        "groups",
        |b: &mut PartitionBuilder, g: Array| -> Res<PartitionBuilder> {
            Ok(b.clone().groups(index_groups(&g, "partition groups")?))
        },
    );

    engine.register_type_with_name::<DegradeBuilder>("DegradeChaos");
    delays!(engine, DegradeBuilder, "degrade");
    durations!(engine, DegradeBuilder, "degrade");
    engine
        .register_fn(
            "latency",
            |b: &mut DegradeBuilder, d: Dynamic| -> Res<DegradeBuilder> {
                Ok(b.clone().latency(duration(&d, "degrade latency")?))
            },
        )
        .register_fn(
            "jitter",
            |b: &mut DegradeBuilder, d: Dynamic| -> Res<DegradeBuilder> {
                Ok(b.clone().jitter(duration(&d, "degrade jitter")?))
            },
        )
        .register_fn(
            "loss",
            |b: &mut DegradeBuilder, p: Dynamic| -> Res<DegradeBuilder> {
                Ok(b.clone().loss(number(&p, "degrade loss")?))
            },
        )
        .register_fn(
            "scope",
            |b: &mut DegradeBuilder, s: &str| -> Res<DegradeBuilder> {
                let scope = match s {
                    "pair" => DegradeScope::RandomPair,
                    "node" => DegradeScope::RandomNode,
                    "all" => DegradeScope::All,
                    other => {
                        return err(format!(
                            "degrade scope = \"{other}\" is unknown (pair, node, all)"
                        ));
                    }
                };
                Ok(b.clone().scope(scope))
            },
        );

    engine.register_type_with_name::<PauseBuilder>("PauseChaos");
    delays!(engine, PauseBuilder, "pause");
    durations!(engine, PauseBuilder, "pause");
    engine
        .register_fn(
            "targets",
            |b: &mut PauseBuilder, a: Array| -> Res<PauseBuilder> {
                Ok(b.clone().targets(nodes(&a, "pause targets")?))
            },
        )
        .register_fn(
            "exclude",
            |b: &mut PauseBuilder, a: Array| -> Res<PauseBuilder> {
                Ok(b.clone().exclude(nodes(&a, "pause exclude")?))
            },
        );

    engine
        .register_type_with_name::<ScheduleBuilder>("ScheduleChaos")
        .register_fn(
            "at",
            |b: &mut ScheduleBuilder, t: Dynamic, name: &str| -> Res<ScheduleBuilder> {
                let at = duration(&t, "schedule at")?;
                Ok(b.clone().at(at, schedule_action(name, &Dynamic::UNIT)?))
            },
        )
        .register_fn(
            "at",
            |b: &mut ScheduleBuilder,
             t: Dynamic,
             name: &str,
             arg: Dynamic|
             -> Res<ScheduleBuilder> {
                let at = duration(&t, "schedule at")?;
                Ok(b.clone().at(at, schedule_action(name, &arg)?))
            },
        )
        .register_fn(
            "at_for",
            |b: &mut ScheduleBuilder,
             t: Dynamic,
             name: &str,
             arg: Dynamic,
             hold: Dynamic|
             -> Res<ScheduleBuilder> {
                let at = duration(&t, "schedule at")?;
                let hold = duration(&hold, "schedule hold")?;
                Ok(b.clone().at_for(at, schedule_action(name, &arg)?, hold))
            },
        )
        .register_fn("apply", |b: &mut ScheduleBuilder| b.clone().apply());
}

/// A trigger action calling a script closure with the testnet.
fn script_action(cb: ScriptCallback, state: Arc<HostState>) -> chaos::Action {
    chaos::action(move |_fired, net| {
        let arg = Dynamic::from(NetHandle::live(net, state.bridge.clone()));
        let fut = cb.call_with(arg, None);
        async move { fut.await.map(|_| ()) }
    })
}

/// A `when` condition calling a script closure with the testnet.
fn script_condition(cb: ScriptCallback, state: Arc<HostState>) -> chaos::Condition {
    chaos::condition(move |net| {
        let arg = Dynamic::from(NetHandle::live(net, state.bridge.clone()));
        let fut = cb.call_with(arg, None);
        async move {
            let v = fut.await?;
            v.as_bool().map_err(|t| {
                format!("the condition given to `when` must return a bool, but it returned a {t}")
            })
        }
    })
}

/// An invariant predicate calling a script closure with the run context.
fn script_predicate(name: String, cb: ScriptCallback, state: Arc<HostState>) -> chaos::Predicate {
    chaos::predicate(move |ctx| {
        let handle = ContextHandle::new(ctx, state.bridge.clone(), None, &name);
        let fut = cb.call_with(Dynamic::from(handle), None);
        let name = name.clone();
        async move { to_check(&name, fut.await?) }
    })
}

fn to_check(name: &str, v: Dynamic) -> Result<Check, String> {
    if let Ok(b) = v.as_bool() {
        return Ok(Check::from(b));
    }
    if let Some(m) = v.read_lock::<Map>() {
        let value = ["value", "ok", "holds"]
            .iter()
            .find_map(|k| m.get(*k).and_then(|x| x.as_bool().ok()))
            .ok_or_else(|| {
                format!("invariant `{name}` returned a map without a boolean `value`")
            })?;
        let detail = m
            .get("detail")
            .or_else(|| m.get("message"))
            .map(ToString::to_string);
        return Ok(Check { value, detail });
    }
    Err(format!(
        "invariant `{name}` must return a bool or #{{value, detail}}, got a {}",
        v.type_name()
    ))
}

fn height(h: INT, what: &str) -> Res<u64> {
    amount(h, what)
}

/// A trigger armed on a live testnet (dry in `check` mode).
#[derive(Clone)]
pub struct ScriptTrigger {
    handle: Option<TriggerHandle>,
    label: String,
    bridge: crate::bridge::Bridge,
}

impl ScriptTrigger {
    fn fired(&self) -> Dynamic {
        self.handle
            .as_ref()
            .and_then(TriggerHandle::fired)
            .map_or(Dynamic::UNIT, |f| to_script(&f))
    }

    fn state(&self) -> String {
        match self.handle.as_ref().map(TriggerHandle::state) {
            None => "dry".to_owned(),
            Some(TriggerState::Armed) => "armed".to_owned(),
            Some(TriggerState::Firing(_)) => "firing".to_owned(),
            Some(TriggerState::Done { error: None, .. }) => "done".to_owned(),
            Some(TriggerState::Done { error: Some(e), .. }) => format!("failed: {e}"),
            Some(TriggerState::Cancelled) => "cancelled".to_owned(),
            Some(TriggerState::Failed(e)) => format!("failed: {e}"),
        }
    }

    fn wait(&self, deadline: Duration) -> Res<Dynamic> {
        let Some(h) = self.handle.clone() else {
            return Ok(Dynamic::UNIT);
        };
        let r = self
            .bridge
            .block_on_cancellable(async move { h.wait(deadline).await })?;
        match r {
            Ok(f) => Ok(to_script(&f)),
            Err(e) => err(e),
        }
    }
}

fn arm(
    ctx: &NativeCallContext,
    state: &Arc<HostState>,
    net: &NetHandle,
    trigger: Trigger,
    f: FnPtr,
) -> ScriptTrigger {
    let label = trigger.to_string();
    let bridge = state.bridge.clone();
    let Some(testnet) = net.testnet().cloned() else {
        return ScriptTrigger {
            handle: None,
            label,
            bridge,
        };
    };
    let cb = ScriptCallback::capture(ctx, &label, f, state);
    let action = script_action(cb, state.clone());
    let _guard = bridge.handle().enter();
    let handle = chaos::trigger::arm(testnet, trigger, action);
    ScriptTrigger {
        handle: Some(handle),
        label,
        bridge,
    }
}

fn register_live(engine: &mut Engine, state: &Arc<HostState>) {
    engine
        .register_type_with_name::<ScriptTrigger>("Trigger")
        .register_fn("to_string", |t: &mut ScriptTrigger| {
            format!("Trigger({}, {})", t.label, t.state())
        })
        .register_get("label", |t: &mut ScriptTrigger| t.label.clone())
        .register_get("fired", |t: &mut ScriptTrigger| t.fired())
        .register_get("state", |t: &mut ScriptTrigger| t.state())
        .register_fn("cancel", |t: &mut ScriptTrigger| {
            if let Some(h) = &t.handle {
                h.cancel();
            }
        })
        .register_fn(
            "wait",
            |t: &mut ScriptTrigger, d: Dynamic| -> Res<Dynamic> {
                t.wait(duration(&d, "trigger wait deadline")?)
            },
        );

    let st = state.clone();
    engine.register_fn(
        "on_height",
        move |ctx: NativeCallContext, n: &mut NetHandle, h: INT, f: FnPtr| -> Res<ScriptTrigger> {
            let h = height(h, "on_height height")?;
            Ok(arm(&ctx, &st, n, Trigger::Height(h), f))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "on_slot",
        move |ctx: NativeCallContext, n: &mut NetHandle, s: INT, f: FnPtr| -> Res<ScriptTrigger> {
            let s = height(s, "on_slot slot")?;
            Ok(arm(&ctx, &st, n, Trigger::Slot(s), f))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "after",
        move |ctx: NativeCallContext,
              n: &mut NetHandle,
              d: Dynamic,
              f: FnPtr|
              -> Res<ScriptTrigger> {
            let d = duration(&d, "after")?;
            Ok(arm(&ctx, &st, n, Trigger::After(d), f))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "when",
        move |ctx: NativeCallContext,
              n: &mut NetHandle,
              cond: FnPtr,
              f: FnPtr|
              -> Res<ScriptTrigger> {
            let c = ScriptCallback::capture(&ctx, "when condition", cond, &st);
            let t = Trigger::When(script_condition(c, st.clone()));
            Ok(arm(&ctx, &st, n, t, f))
        },
    );
}

fn register_plan(engine: &mut Engine, state: &Arc<HostState>) {
    engine.register_fn(
        "chaos_with",
        |ctx: NativeCallContext, b: &mut PlanBuilder, f: FnPtr| -> Res<PlanBuilder> {
            let c = call_chaos(&ctx, &f)?;
            if let Err(e) = c.validate() {
                return err(format!("invalid chaos: {e}"));
            }
            Ok(b.map(|s| s.chaos_with(|_| c)))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "on_height",
        move |ctx: NativeCallContext, b: &mut PlanBuilder, h: INT, f: FnPtr| -> Res<PlanBuilder> {
            let h = height(h, "on_height height")?;
            let cb = ScriptCallback::capture(&ctx, &format!("on_height({h})"), f, &st);
            let a = script_action(cb, st.clone());
            Ok(b.map(|s| s.on_height(h, a)))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "on_slot",
        move |ctx: NativeCallContext, b: &mut PlanBuilder, n: INT, f: FnPtr| -> Res<PlanBuilder> {
            let n = height(n, "on_slot slot")?;
            let cb = ScriptCallback::capture(&ctx, &format!("on_slot({n})"), f, &st);
            let a = script_action(cb, st.clone());
            Ok(b.map(|s| s.on_slot(n, a)))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "after",
        move |ctx: NativeCallContext,
              b: &mut PlanBuilder,
              d: Dynamic,
              f: FnPtr|
              -> Res<PlanBuilder> {
            let d = duration(&d, "after")?;
            let label = format!("after({})", humantime::format_duration(d));
            let cb = ScriptCallback::capture(&ctx, &label, f, &st);
            let a = script_action(cb, st.clone());
            Ok(b.map(|s| s.after(d, a)))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "when",
        move |ctx: NativeCallContext,
              b: &mut PlanBuilder,
              cond: FnPtr,
              f: FnPtr|
              -> Res<PlanBuilder> {
            let c = ScriptCallback::capture(&ctx, "when condition", cond, &st);
            let cb = ScriptCallback::capture(&ctx, "when", f, &st);
            let cond = script_condition(c, st.clone());
            let a = script_action(cb, st.clone());
            Ok(b.map(|s| s.when(cond, a)))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "always",
        move |ctx: NativeCallContext,
              b: &mut PlanBuilder,
              name: &str,
              f: FnPtr|
              -> Res<PlanBuilder> {
            let p = predicate(&ctx, &st, name, f, "always")?;
            Ok(b.map(|s| s.always(name, p)))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "never",
        move |ctx: NativeCallContext,
              b: &mut PlanBuilder,
              name: &str,
              f: FnPtr|
              -> Res<PlanBuilder> {
            let p = predicate(&ctx, &st, name, f, "never")?;
            Ok(b.map(|s| s.never(name, p)))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "eventually_within",
        move |ctx: NativeCallContext,
              b: &mut PlanBuilder,
              d: Dynamic,
              name: &str,
              f: FnPtr|
              -> Res<PlanBuilder> {
            let d = duration(&d, "eventually_within")?;
            let p = predicate(&ctx, &st, name, f, "eventually_within")?;
            Ok(b.map(|s| s.eventually_within(d, name, p)))
        },
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
    register_builders(engine);
    register_plan(engine, state);
    register_live(engine, state);
}
