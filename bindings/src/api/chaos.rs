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

fn nodes(a: &Array, what: &str) -> Res<Vec<usize>> {
    a.iter().map(|v| index(v, what)).collect()
}

/// Calls the `chaos_with` closure and checks it returned the chaos builder.
pub(super) fn call_chaos(ctx: &NativeCallContext, f: &FnPtr) -> Res<ChaosBuilder> {
    let out: Dynamic = f.call_within_context(ctx, (ChaosBuilder::new(),))?;
    let found = super::values::a_type(&out);
    match out.try_cast::<ChaosBuilder>() {
        Some(c) => Ok(c),
        None => super::values::err_at(
            format!(
                "the closure given to chaos_with must return the ChaosBuilder (end each fault with .apply(), e.g. `|c| c.restart().apply()`), but it returned {found}"
            ),
            super::scenario::closure_or_call(ctx, f),
        ),
    }
}

/// A map argument names only `known` keys.
fn check_keys(m: &Map, what: &str, known: &[&str]) -> Res<()> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => err(format!(
            "{what}: key `{k}` is unknown (known: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// A schedule step's links: absent or `"all"`, a node index (its every link), `[a, b]` (both
/// directions) or `"a->b"` (one direction).
fn schedule_links(v: Option<&Dynamic>) -> Res<LinkSel> {
    let Some(v) = v else {
        return Ok(LinkSel::All);
    };
    if let Ok(s) = v.clone().into_immutable_string() {
        let t = s.trim();
        if t == "all" {
            return Ok(LinkSel::All);
        }
        if let Some((a, b)) = t.split_once("->")
            && let (Ok(a), Ok(b)) = (a.trim().parse(), b.trim().parse())
        {
            return Ok(LinkSel::Link(a, b));
        }
        return err(format!(
            "schedule links = {s:?}: expected \"all\", a node index, [a, b] or \"a->b\""
        ));
    }
    if v.is_int() {
        return Ok(LinkSel::Node(index(v, "schedule links")?));
    }
    if let Some(a) = v.read_lock::<Array>()
        && a.len() == 2
    {
        return Ok(LinkSel::Both(
            index(&a[0], "schedule links")?,
            index(&a[1], "schedule links")?,
        ));
    }
    err(format!(
        "schedule links = {v}: expected \"all\", a node index, [a, b] or \"a->b\""
    ))
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
        "disk_full" => ChaosAction::DiskFull(node("disk_full")?),
        "lose_unflushed" => {
            let parts = arg
                .read_lock::<Array>()
                .map(|a| a.clone())
                .unwrap_or_default();
            match parts.as_slice() {
                [n, blocks] if blocks.is_int() => ChaosAction::LoseUnflushed {
                    node: index(n, "schedule lose_unflushed node")?,
                    blocks: index(blocks, "schedule lose_unflushed blocks")? as u64,
                },
                _ => {
                    return err(format!(
                        "schedule lose_unflushed expects [node, blocks], got {arg}"
                    ));
                }
            }
        }
        "heal" => ChaosAction::Heal,
        "honest" => ChaosAction::Honest(node("honest")?),
        "byzantine" => {
            let parts = arg
                .read_lock::<Array>()
                .map(|a| a.clone())
                .unwrap_or_default();
            match parts.as_slice() {
                [n, name] | [n, name, _] if name.is_string() => ChaosAction::Byzantine {
                    node: index(n, "schedule byzantine node")?,
                    behaviour: super::byzantine::behaviour(
                        &name.to_string(),
                        parts.get(2).unwrap_or(&Dynamic::UNIT),
                    )?,
                },
                _ => {
                    return err(format!(
                        "schedule byzantine expects [node, behaviour] or [node, behaviour, parameter], got {arg}"
                    ));
                }
            }
        }
        "partition" => match arg.read_lock::<Array>() {
            Some(a) => ChaosAction::Partition(index_groups(&a, "schedule partition")?),
            None => {
                return err(format!(
                    "schedule partition expects groups such as [[0, 1], [2, 3]], got {arg}"
                ));
            }
        },
        "latency" => match arg.read_lock::<Map>() {
            Some(m) => {
                check_keys(&m, "schedule latency", &["delay", "jitter", "links"])?;
                ChaosAction::Latency {
                    links: schedule_links(m.get("links"))?,
                    delay: duration(
                        m.get("delay").unwrap_or(&Dynamic::UNIT),
                        "schedule latency delay",
                    )?,
                    jitter: match m.get("jitter") {
                        Some(j) => duration(j, "schedule latency jitter")?,
                        None => Duration::ZERO,
                    },
                }
            }
            None => ChaosAction::Latency {
                links: LinkSel::All,
                delay: duration(arg, "schedule latency")?,
                jitter: Duration::ZERO,
            },
        },
        "loss" => {
            let (p, links) = match arg.read_lock::<Map>() {
                Some(m) => {
                    check_keys(&m, "schedule loss", &["probability", "links"])?;
                    (
                        number(
                            m.get("probability").unwrap_or(&Dynamic::UNIT),
                            "schedule loss probability",
                        )?,
                        schedule_links(m.get("links"))?,
                    )
                }
                None => (number(arg, "schedule loss")?, LinkSel::All),
            };
            if !(0.0..=1.0).contains(&p) {
                return err(format!(
                    "schedule loss = {p}: a probability must be in [0, 1]"
                ));
            }
            ChaosAction::Loss {
                links,
                probability: p,
            }
        }
        "clock" => {
            let Some(m) = arg.read_lock::<Map>() else {
                return err(format!(
                    "schedule clock expects #{{ node: 1, offset_ms: -1500 }}, got {arg}"
                ));
            };
            check_keys(&m, "schedule clock", &["node", "offset_ms"])?;
            let Some(offset) = m.get("offset_ms").and_then(|v| v.as_int().ok()) else {
                return err(format!(
                    "schedule clock offset_ms = {}: expected an int (ms; negative: behind)",
                    m.get("offset_ms").cloned().unwrap_or(Dynamic::UNIT)
                ));
            };
            ChaosAction::Clock {
                node: index(
                    m.get("node").unwrap_or(&Dynamic::UNIT),
                    "schedule clock node",
                )?,
                offset_ms: offset,
            }
        }
        other => {
            return err(format!(
                "schedule action = \"{other}\" is unknown (restart, stop, kill, start, pause, resume, isolate, disk_full, lose_unflushed, partition, latency, loss, clock, heal, byzantine, honest)"
            ));
        }
    })
}

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
mod disk_streams;

fn register_builders(reg: &mut Registrar) {
    disk_streams::register(reg);
    reg.register_type::<ChaosBuilder>(
        "ChaosBuilder",
        &[
            " The faults of `chaos_with(|c| ..)`: each kind (`restart()`, `partition()`,",
            " `degrade()`, `pause()`, `schedule()`) is configured and ended with `apply()`; the",
            " whole timeline is planned from the run seed, so `--seed` replays it.",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4)).chaos_with(|c| c",
            "     .restart().min_delay(\"5s\").max_delay(\"10s\").apply()",
            "     .partition().min_delay(\"8s\").max_delay(\"12s\").duration(\"3s\").apply());",
            " ```",
        ],
    );
    script_fn!(reg,
        /// A description of the planned chaos.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| { let c = c.restart().apply(); print(c.to_string()); c });
        /// ```
        fn to_string(chaos: ChaosBuilder) -> String => |b: &mut ChaosBuilder| format!("{b:?}")
    );
    script_fn!(reg,
        /// Random node restarts: a random node (among `targets`, minus `exclude`, not restarted
        /// within `target_cooldown`) every `min_delay`..`max_delay`. Needs node control.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().min_delay("5s").max_delay("10s").target_cooldown("15s").apply());
        /// ```
        fn restart(chaos: ChaosBuilder) -> RestartChaos => |b: &mut ChaosBuilder| b.clone().restart()
    );
    script_fn!(reg,
        /// Random partitions: every `min_delay`..`max_delay` the network splits (into `groups`,
        /// or a random split) for `min_duration`..`max_duration`, then heals. Needs network
        /// faults.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.partition().min_delay("8s").max_delay("12s").duration("3s").apply());
        /// ```
        fn partition(chaos: ChaosBuilder) -> PartitionChaos => |b: &mut ChaosBuilder| b.clone().partition()
    );
    script_fn!(reg,
        /// Random link degradation: latency, jitter and loss on a random pair of linked nodes,
        /// one node's links or every link (`scope`), for a while, again and again.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.degrade().loss(0.2).scope("pair").duration("2s").apply());
        /// ```
        fn degrade(chaos: ChaosBuilder) -> DegradeChaos => |b: &mut ChaosBuilder| b.clone().degrade()
    );
    script_fn!(reg,
        /// Random pauses: a random node frozen (SIGSTOP) for a while, then resumed. Needs node
        /// control.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.pause().min_delay("5s").max_delay("8s").duration("1s").apply());
        /// ```
        fn pause(chaos: ChaosBuilder) -> PauseChaos => |b: &mut ChaosBuilder| b.clone().pause()
    );
    script_fn!(reg,
        /// Random clock skews: a random node's clock set up to `max` off wall time (either way,
        /// at least a quarter of `max`), then put back after the duration. Needs node control
        /// and the reference node's testing clock.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.clock_skew().max("3s").duration("2s").apply());
        /// ```
        fn clock_skew(chaos: ChaosBuilder) -> ClockSkewChaos => |b: &mut ChaosBuilder| b.clone().clock_skew()
    );
    script_fn!(reg,
        /// A fixed timeline of actions at given times after the start (`at`, `at_for`).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.schedule().at("5s", "restart", 2).at("9s", "heal").apply());
        /// ```
        fn schedule(chaos: ChaosBuilder) -> ScheduleChaos => |b: &mut ChaosBuilder| b.clone().schedule()
    );
    script_fn!(reg,
        /// Names the chaos workload (reports, the fault log, the seed label of its random
        /// choices).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.name("restarts").restart().apply());
        /// ```
        fn name(chaos: ChaosBuilder, name: String) -> ChaosBuilder => |b: &mut ChaosBuilder, n: &str| b.clone().name(n)
    );
    script_fn!(reg,
        /// No new fault starts within this time before the end of the run, so the expectations
        /// judge a settled network.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.quiet_tail("5s").restart().apply());
        /// ```
        fn quiet_tail(chaos: ChaosBuilder, quiet: Duration) -> ChaosBuilder
        => |b: &mut ChaosBuilder, d: Dynamic| -> Res<ChaosBuilder> {
            Ok(b.clone().quiet_tail(duration(&d, "quiet_tail")?))
        }
    );
    script_fn!(reg,
        /// Ends a `builder.chaos()` flow without adding a fault, as in the seed: returns the
        /// `ScenarioBuilder` unchanged. Inside `chaos_with`, return the `ChaosBuilder` instead.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4)).chaos().apply();
        /// ```
        fn apply(chaos: ChaosBuilder) -> ScenarioBuilder
        => |b: &mut ChaosBuilder| -> Res<PlanBuilder> {
            match b.origin.0.as_ref().and_then(|o| o.downcast_ref::<PlanBuilder>()) {
                Some(plan) => Ok(plan.clone()),
                None => err(
                    "apply() on the ChaosBuilder ends a `builder.chaos()` flow; inside chaos_with, \
                     end each kind with apply() and return the ChaosBuilder itself (`|c| c.restart().apply()`)",
                ),
            }
        }
    );

    reg.register_type::<RestartBuilder>(
        "RestartChaos",
        &[
            " Settings of random restarts (`c.restart()`), ended with `apply()`.",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .chaos_with(|c| c.restart().exclude([0]).catch_up_within(\"20s\").apply());",
            " ```",
        ],
    );
    delays!(reg, RestartBuilder, "RestartChaos", "restart()", "restart");
    script_fn!(reg,
        /// A node restarted is not picked again within this time.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().target_cooldown("15s").apply());
        /// ```
        fn target_cooldown(chaos: RestartChaos, cooldown: Duration) -> RestartChaos
        => |b: &mut RestartBuilder, d: Dynamic| -> Res<RestartBuilder> {
            Ok(b.clone().target_cooldown(duration(&d, "restart target_cooldown")?))
        }
    );
    script_fn!(reg,
        /// Only these nodes are restarted (default: every node).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().targets([1, 2]).apply());
        /// ```
        fn targets(chaos: RestartChaos, nodes: Array) -> RestartChaos
        => |b: &mut RestartBuilder, a: Array| -> Res<RestartBuilder> {
            Ok(b.clone().targets(nodes(&a, "restart targets")?))
        }
    );
    script_fn!(reg,
        /// These nodes are never restarted (e.g. the hub of a star).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().exclude([0]).apply());
        /// ```
        fn exclude(chaos: RestartChaos, nodes: Array) -> RestartChaos
        => |b: &mut RestartBuilder, a: Array| -> Res<RestartBuilder> {
            Ok(b.clone().exclude(nodes(&a, "restart exclude")?))
        }
    );
    script_fn!(reg,
        /// The seed's switch: `true` restarts any node (the default); `false` leaves no node
        /// to restart, which the build refuses.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().include_nodes(true).apply());
        /// ```
        fn include_nodes(chaos: RestartChaos, on: bool) -> RestartChaos
        => |b: &mut RestartBuilder, on: bool| b.clone().include_nodes(on)
    );
    script_fn!(reg,
        /// Kills (SIGKILL) instead of stopping gracefully.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().kill().apply());
        /// ```
        fn kill(chaos: RestartChaos) -> RestartChaos => |b: &mut RestartBuilder| b.clone().kill()
    );
    script_fn!(reg,
        /// How long a restarted node stays down before it starts again.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().down_for("2s").apply());
        /// ```
        fn down_for(chaos: RestartChaos, down: Duration) -> RestartChaos
        => |b: &mut RestartBuilder, d: Dynamic| -> Res<RestartBuilder> {
            Ok(b.clone().down_for(duration(&d, "restart down_for")?))
        }
    );
    script_fn!(reg,
        /// Every restarted node must catch up with the others within this bound (a duration,
        /// or `"N slots"` / `"N blocks"` of the plan's consensus parameters), or the run fails
        /// naming it.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().catch_up_within("20s").apply());
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.restart().catch_up_within("40 slots").apply());
        /// ```
        fn catch_up_within(chaos: RestartChaos, bound: Deadline) -> RestartChaos
        => |b: &mut RestartBuilder, d: Dynamic| -> Res<RestartBuilder> {
            Ok(b.clone().catch_up_within(deadline(&d, "restart catch_up_within")?))
        }
    );

    reg.register_type::<PartitionBuilder>(
        "PartitionChaos",
        &[
            " Settings of random partitions (`c.partition()`), ended with `apply()`.",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .chaos_with(|c| c.partition().groups([[0, 1], [2, 3]]).duration(\"3s\").apply());",
            " ```",
        ],
    );
    delays!(
        reg,
        PartitionBuilder,
        "PartitionChaos",
        "partition()",
        "partition"
    );
    durations!(
        reg,
        PartitionBuilder,
        "PartitionChaos",
        "partition()",
        "partition"
    );
    script_fn!(reg,
        /// Always split into these groups (default: a random split each time).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.partition().groups([[0, 1], [2, 3]]).apply());
        /// ```
        fn groups(chaos: PartitionChaos, groups: Array) -> PartitionChaos
        => |b: &mut PartitionBuilder, g: Array| -> Res<PartitionBuilder> {
            Ok(b.clone().groups(index_groups(&g, "partition groups")?))
        }
    );

    reg.register_type::<DegradeBuilder>(
        "DegradeChaos",
        &[
            " Settings of random link degradation (`c.degrade()`), ended with `apply()`.",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .chaos_with(|c| c.degrade().latency(\"100ms\").jitter(\"20ms\").scope(\"node\").apply());",
            " ```",
        ],
    );
    delays!(
        reg,
        DegradeBuilder,
        "DegradeChaos",
        "degrade().loss(0.1)",
        "degrade"
    );
    durations!(
        reg,
        DegradeBuilder,
        "DegradeChaos",
        "degrade().loss(0.1)",
        "degrade"
    );
    script_fn!(reg,
        /// Delay added to the degraded links.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.degrade().latency("150ms").apply());
        /// ```
        fn latency(chaos: DegradeChaos, delay: Duration) -> DegradeChaos
        => |b: &mut DegradeBuilder, d: Dynamic| -> Res<DegradeBuilder> {
            Ok(b.clone().latency(duration(&d, "degrade latency")?))
        }
    );
    script_fn!(reg,
        /// Random extra delay, up to this, on top of `latency`.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.degrade().latency("100ms").jitter("30ms").apply());
        /// ```
        fn jitter(chaos: DegradeChaos, jitter: Duration) -> DegradeChaos
        => |b: &mut DegradeBuilder, d: Dynamic| -> Res<DegradeBuilder> {
            Ok(b.clone().jitter(duration(&d, "degrade jitter")?))
        }
    );
    script_fn!(reg,
        /// Probability (0.0 to 1.0) that a frame on a degraded link is dropped.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.degrade().loss(0.3).apply());
        /// ```
        fn loss(chaos: DegradeChaos, p: Number) -> DegradeChaos
        => |b: &mut DegradeBuilder, p: Dynamic| -> Res<DegradeBuilder> {
            Ok(b.clone().loss(number(&p, "degrade loss")?))
        }
    );
    script_fn!(reg,
        /// Which links degrade each time: `"pair"` (one random link of the topology), `"node"`
        /// (every link of one random node) or `"all"`.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.degrade().loss(0.2).scope("node").apply());
        /// ```
        fn scope(chaos: DegradeChaos, scope: String) -> DegradeChaos
        => |b: &mut DegradeBuilder, s: &str| -> Res<DegradeBuilder> {
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
        }
    );

    reg.register_type::<PauseBuilder>(
        "PauseChaos",
        &[
            " Settings of random pauses (`c.pause()`), ended with `apply()`.",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .chaos_with(|c| c.pause().exclude([0]).duration(\"1s\").apply());",
            " ```",
        ],
    );
    delays!(reg, PauseBuilder, "PauseChaos", "pause()", "pause");
    durations!(reg, PauseBuilder, "PauseChaos", "pause()", "pause");
    script_fn!(reg,
        /// Only these nodes are paused (default: every node).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.pause().targets([2, 3]).apply());
        /// ```
        fn targets(chaos: PauseChaos, nodes: Array) -> PauseChaos
        => |b: &mut PauseBuilder, a: Array| -> Res<PauseBuilder> {
            Ok(b.clone().targets(nodes(&a, "pause targets")?))
        }
    );
    script_fn!(reg,
        /// These nodes are never paused.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.pause().exclude([0]).apply());
        /// ```
        fn exclude(chaos: PauseChaos, nodes: Array) -> PauseChaos
        => |b: &mut PauseBuilder, a: Array| -> Res<PauseBuilder> {
            Ok(b.clone().exclude(nodes(&a, "pause exclude")?))
        }
    );

    reg.register_type::<ClockBuilder>(
        "ClockSkewChaos",
        &[
            " Settings of random clock skews (`c.clock_skew()`), ended with `apply()`.",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .chaos_with(|c| c.clock_skew().max(\"2s\").exclude([0]).apply());",
            " ```",
        ],
    );
    delays!(
        reg,
        ClockBuilder,
        "ClockSkewChaos",
        "clock_skew()",
        "clock_skew"
    );
    durations!(
        reg,
        ClockBuilder,
        "ClockSkewChaos",
        "clock_skew()",
        "clock_skew"
    );
    script_fn!(reg,
        /// The largest offset either way (default 3 s; between 4 ms and a day).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.clock_skew().max("5s").apply());
        /// ```
        fn max(chaos: ClockSkewChaos, offset: Duration) -> ClockSkewChaos
        => |b: &mut ClockBuilder, d: Dynamic| -> Res<ClockBuilder> {
            Ok(b.clone().max(duration(&d, "clock_skew max")?))
        }
    );
    script_fn!(reg,
        /// Only these nodes' clocks are skewed (default: every node).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.clock_skew().targets([3]).apply());
        /// ```
        fn targets(chaos: ClockSkewChaos, nodes: Array) -> ClockSkewChaos
        => |b: &mut ClockBuilder, a: Array| -> Res<ClockBuilder> {
            Ok(b.clone().targets(nodes(&a, "clock_skew targets")?))
        }
    );
    script_fn!(reg,
        /// These nodes' clocks are never skewed.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.clock_skew().exclude([0]).apply());
        /// ```
        fn exclude(chaos: ClockSkewChaos, nodes: Array) -> ClockSkewChaos
        => |b: &mut ClockBuilder, a: Array| -> Res<ClockBuilder> {
            Ok(b.clone().exclude(nodes(&a, "clock_skew exclude")?))
        }
    );

    reg.register_type::<ScheduleBuilder>(
        "ScheduleChaos",
        &[
            " A fixed fault timeline (`c.schedule()`), ended with `apply()`. Actions: restart,",
            " stop, kill, start, pause, resume, isolate, honest, disk_full (a node index),",
            " lose_unflushed (`[node, blocks]`), partition",
            " (groups), latency (a duration, or `#{delay, jitter, links}`), loss (a probability,",
            " or `#{probability, links}`), clock (`#{node, offset_ms}`), heal, byzantine (`[node,",
            " behaviour]` or `[node, behaviour, parameter]`, as `net.byzantine`; with `at_for`",
            " the node is made honest after the hold). Links: \"all\", a node index, `[a, b]` or",
            " \"a->b\".",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .chaos_with(|c| c.schedule().at(\"3s\", \"isolate\", 1).at(\"6s\", \"heal\").apply());",
            " ```",
        ],
    );
    script_fn!(reg,
        /// An action without argument (`"heal"`) at `at` after the start.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.schedule().at("2s", "latency", "50ms").at("6s", "heal").apply());
        /// ```
        fn at(chaos: ScheduleChaos, at: Duration, action: String) -> ScheduleChaos
        => |b: &mut ScheduleBuilder, t: Dynamic, name: &str| -> Res<ScheduleBuilder> {
            let at = duration(&t, "schedule at")?;
            Ok(b.clone().at(at, schedule_action(name, &Dynamic::UNIT)?))
        }
    );
    script_fn!(reg,
        /// An action with its argument (a node index, groups, a duration or a probability) at
        /// `at` after the start.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.schedule().at("3s", "restart", 2).at("5s", "partition", [[0, 1], [2, 3]]).apply());
        /// ```
        fn at(chaos: ScheduleChaos, at: Duration, action: String, arg: Dynamic) -> ScheduleChaos
        => |b: &mut ScheduleBuilder, t: Dynamic, name: &str, arg: Dynamic| -> Res<ScheduleBuilder> {
            let at = duration(&t, "schedule at")?;
            Ok(b.clone().at(at, schedule_action(name, &arg)?))
        }
    );
    script_fn!(reg,
        /// An action at `at` after the start, reverted after `hold`.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.schedule().at_for("0s", "latency", "100ms", "8s").apply());
        /// ```
        fn at_for(chaos: ScheduleChaos, at: Duration, action: String, arg: Dynamic, hold: Duration) -> ScheduleChaos
        => |b: &mut ScheduleBuilder, t: Dynamic, name: &str, arg: Dynamic, hold: Dynamic| -> Res<ScheduleBuilder> {
            let at = duration(&t, "schedule at")?;
            let hold = duration(&hold, "schedule hold")?;
            Ok(b.clone().at_for(at, schedule_action(name, &arg)?, hold))
        }
    );
    script_fn!(reg,
        /// Ends the schedule and returns to the `ChaosBuilder`.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.schedule().at("4s", "heal").apply());
        /// ```
        fn apply(chaos: ScheduleChaos) -> ChaosBuilder
        => |b: &mut ScheduleBuilder| -> Res<Dynamic> { finish(b.clone().apply()) }
    );
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
        "invariant `{name}` must return a bool or #{{value, detail}}, got {}",
        super::values::a_type(&v)
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

fn register_live(reg: &mut Registrar, state: &Arc<HostState>) {
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
