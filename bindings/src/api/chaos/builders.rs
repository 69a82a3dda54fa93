//! The chaos kinds' builders (`chaos_with(|c| c.restart()...)`).

use super::*;

pub(super) fn register_builders(reg: &mut Registrar) {
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
