//! Script triggers, conditions and predicates, and triggers armed on a live testnet.

use super::*;

/// A trigger action calling a script closure with the testnet.
pub(super) fn script_action(cb: ScriptCallback, state: Arc<HostState>) -> chaos::Action {
    chaos::action(move |_fired, net| {
        let arg = Dynamic::from(NetHandle::live(net, state.bridge.clone()));
        let fut = cb.call_with(arg, None);
        async move { fut.await.map(|_| ()) }
    })
}

/// A `when` condition calling a script closure with the testnet.
pub(super) fn script_condition(cb: ScriptCallback, state: Arc<HostState>) -> chaos::Condition {
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
pub(super) fn script_predicate(
    name: String,
    cb: ScriptCallback,
    state: Arc<HostState>,
) -> chaos::Predicate {
    chaos::predicate(move |ctx| {
        let handle = ContextHandle::new(ctx, state.bridge.clone(), None, &name);
        let fut = cb.call_with(Dynamic::from(handle), None);
        let name = name.clone();
        async move { to_check(&name, fut.await?) }
    })
}

pub(super) fn to_check(name: &str, v: Dynamic) -> Result<Check, String> {
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
        "invariant `{name}` must return a bool or #{{value, detail}}, got {}",
        crate::api::values::a_type(&v)
    ))
}

pub(super) fn height(h: INT, what: &str) -> Res<u64> {
    amount(h, what)
}

/// A trigger armed on a live testnet (dry in `check` mode).
#[derive(Clone)]
pub struct ScriptTrigger {
    handle: Option<TriggerHandle>,
    label: String,
    bridge: crate::bridge::Bridge,
    /// The testnet's, for deadlines in slots or blocks.
    params: engine::topology::ConsensusSettings,
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

    fn wait(&self, bound: Deadline) -> Res<Dynamic> {
        let Some(h) = self.handle.clone() else {
            return Ok(Dynamic::UNIT);
        };
        let (deadline, written) = (bound.resolve(&self.params), bound.describe(&self.params));
        let r = self
            .bridge
            .block_on_cancellable(async move { h.wait_for(deadline, &written).await })?;
        match r {
            Ok(f) => Ok(to_script(&f)),
            Err(e) => err(e),
        }
    }
}

pub(super) fn arm(
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
            params: Default::default(),
        };
    };
    let params = testnet.topology().params.clone();
    let cb = ScriptCallback::capture(ctx, &label, f, state);
    let action = script_action(cb, state.clone());
    let _guard = bridge.handle().enter();
    let handle = chaos::trigger::arm(testnet, trigger, action);
    ScriptTrigger {
        handle: Some(handle),
        label,
        bridge,
        params,
    }
}

pub(super) fn register_live(reg: &mut Registrar, state: &Arc<HostState>) {
    reg.register_type::<ScriptTrigger>(
        "Trigger",
        &[
            " A trigger armed on a live testnet (`net.on_height(..)`, `net.after(..)`, ...): its",
            " action runs once, on its own thread, when the event happens; the handle says",
            " whether it fired and waits for it with a deadline.",
            "",
            " ```rhai",
            " let t = net.after(\"200ms\", |net| net.latency(\"10ms\"));",
            " t.wait(\"10s\");",
            " net.heal();",
            " ```",
        ],
    );
    script_fn!(reg,
        /// `Trigger(<event>, <state>)`.
        ///
        /// ```rhai
        /// let t = net.after("1m", |net| net.heal());
        /// print(t.to_string());
        /// t.cancel();
        /// ```
        fn to_string(trigger: Trigger) -> String => |t: &mut ScriptTrigger| {
            format!("Trigger({}, {})", t.label, t.state())
        }
    );
    script_fn!(reg,
        /// The event the trigger waits for, e.g. `height 12` or `after 10s`.
        ///
        /// ```rhai
        /// let t = net.on_height(1000000, |net| net.heal());
        /// print(t.label);
        /// t.cancel();
        /// ```
        get label(trigger: Trigger) -> String => |t: &mut ScriptTrigger| t.label.clone()
    );
    script_fn!(reg,
        /// When the trigger fired, `#{after, height, slot}`, or `()` while it has not.
        ///
        /// ```rhai
        /// let t = net.after("100ms", |net| net.heal());
        /// t.wait("10s");
        /// print(t.fired);
        /// ```
        get fired(trigger: Trigger) -> Dynamic => |t: &mut ScriptTrigger| t.fired()
    );
    script_fn!(reg,
        /// `"armed"`, `"firing"`, `"done"`, `"cancelled"`, `"failed: <why>"` (or `"dry"` when
        /// checking).
        ///
        /// ```rhai
        /// let t = net.after("1m", |net| net.heal());
        /// print(t.state);   // armed
        /// t.cancel();
        /// ```
        get state(trigger: Trigger) -> String => |t: &mut ScriptTrigger| t.state()
    );
    script_fn!(reg,
        /// Disarms the trigger if it has not fired yet.
        ///
        /// ```rhai
        /// let t = net.after("1m", |net| net.isolate(0));
        /// t.cancel();
        /// print(t.state);   // cancelled
        /// ```
        fn cancel(trigger: Trigger) => |t: &mut ScriptTrigger| {
            if let Some(h) = &t.handle {
                h.cancel();
            }
        }
    );
    script_fn!(reg,
        /// Waits until the trigger has fired and its action finished; returns `#{after, height,
        /// slot}`, or fails at the deadline (a duration, or `"N slots"` / `"N blocks"` of the
        /// testnet's consensus parameters), or with the action's error.
        ///
        /// ```rhai
        /// let t = net.on_height(net.node(0).height() + 1, |net| net.latency("5ms"));
        /// print(t.wait("10 blocks"));
        /// net.heal();
        /// ```
        fn wait(trigger: Trigger, deadline: Deadline) -> Dynamic
        => |t: &mut ScriptTrigger, d: Dynamic| -> Res<Dynamic> {
            t.wait(deadline(&d, "trigger wait deadline")?)
        }
    );

    let st = state.clone();
    script_fn!(reg,
        /// Runs `action(net)` once, as soon as the chain (seen by the block feed) reaches
        /// `height`; returns the trigger at once.
        ///
        /// ```rhai
        /// let t = net.on_height(net.node(0).height() + 2, |net| net.isolate(3));
        /// t.wait("10s");
        /// net.heal();
        /// ```
        fn on_height(net: Testnet, height: int, action: FnPtr) -> Trigger
        => move |ctx: NativeCallContext, n: &mut NetHandle, h: INT, f: FnPtr| -> Res<ScriptTrigger> {
            let h = height(h, "on_height height")?;
            Ok(arm(&ctx, &st, n, Trigger::Height(h), f))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// Runs `action(net)` once, when slot `slot` is reached; returns the trigger at once.
        ///
        /// ```rhai
        /// let s = net.node(0).consensus_info().slot;
        /// let t = net.on_slot(s + 3, |net| net.cut(0, 1));
        /// t.wait("10s");
        /// net.heal();
        /// ```
        fn on_slot(net: Testnet, slot: int, action: FnPtr) -> Trigger
        => move |ctx: NativeCallContext, n: &mut NetHandle, s: INT, f: FnPtr| -> Res<ScriptTrigger> {
            let s = height(s, "on_slot slot")?;
            Ok(arm(&ctx, &st, n, Trigger::Slot(s), f))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// Runs `action(net)` once, after `delay`; returns the trigger at once.
        ///
        /// ```rhai
        /// let t = net.after("300ms", |net| net.loss(0.05));
        /// t.wait("10s");
        /// net.heal();
        /// ```
        fn after(net: Testnet, delay: Duration, action: FnPtr) -> Trigger
        => move |ctx: NativeCallContext, n: &mut NetHandle, d: Dynamic, f: FnPtr| -> Res<ScriptTrigger> {
            let d = duration(&d, "after")?;
            Ok(arm(&ctx, &st, n, Trigger::After(d), f))
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// Runs `action(net)` once, the first time `condition(net)` returns true (checked about
        /// once a slot); returns the trigger at once.
        ///
        /// ```rhai
        /// let t = net.when(|net| net.node(1).height() > 0, |net| net.isolate(2));
        /// t.wait("10s");
        /// net.heal();
        /// ```
        fn when(net: Testnet, condition: FnPtr, action: FnPtr) -> Trigger
        => move |ctx: NativeCallContext, n: &mut NetHandle, cond: FnPtr, f: FnPtr| -> Res<ScriptTrigger> {
            let c = ScriptCallback::capture(&ctx, "when condition", cond, &st);
            let t = Trigger::When(script_condition(c, st.clone()));
            Ok(arm(&ctx, &st, n, t, f))
        }
    );
}

/// A chaos kind was applied: inside `chaos_with` the chaos builder goes back to the closure; in
/// the seed's `builder.chaos()` flow the chaos is added to the plan it came from, which is
/// returned.
pub(crate) fn finish(c: ChaosBuilder) -> Res<Dynamic> {
    let Some(origin) = c.origin.0.clone() else {
        return Ok(Dynamic::from(c));
    };
    let Some(plan) = origin.downcast_ref::<PlanBuilder>() else {
        return Ok(Dynamic::from(c));
    };
    let mut c = c;
    c.origin = Origin::default();
    if let Err(e) = c.validate() {
        return err(format!("invalid chaos: {e}"));
    }
    Ok(Dynamic::from(plan.map(|s| s.chaos_with(|_| c))))
}
