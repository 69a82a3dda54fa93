//! Recovery bounds on plans, and the crash watch `expect_no_crashes()`: `expect_recovery_within(bound)` over what the runner's recovery
//! monitor measures (every revert to convergence, every restart to catch-up).

use rhai::{Dynamic, Engine};

use super::scenario::PlanBuilder;
use super::values::{Res, deadline};
use crate::doc::registry::{Area, Registrar};
use crate::script_fn;

/// Registers the recovery expectation.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Expectations);
    script_fn!(reg,
        /// Every fault reverted during the run must be followed by convergence (every node
        /// answers, shares the LIB, tips within one block), and every node started again
        /// (restart, start, resume) must be within one block of the highest, within `bound`: a
        /// duration, or `"N slots"` / `"N blocks"`. Fails naming each revert or node that took
        /// longer (or never recovered), and when nothing was reverted or restarted at all. The
        /// measured times are in the report either way (`recovery` in the JSON report).
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(4).slot_duration("200ms"))
        ///     .enable_node_control()
        ///     .chaos_with(|c| c.restart().min_delay("2s").max_delay("3s").apply())
        ///     .expect_recovery_within("10s");
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .enable_network_faults()
        ///     .on_height(3, |net| { net.isolate(3); sleep("1s"); net.heal(); })
        ///     .expect_recovery_within("20 slots");
        /// ```
        fn expect_recovery_within(builder: ScenarioBuilder, bound: Deadline) -> ScenarioBuilder
        => |b: &mut PlanBuilder, d: Dynamic| -> Res<PlanBuilder> {
            let d = deadline(&d, "expect_recovery_within")?;
            Ok(b.map(|s| s.expect_recovery_within(d)))
        }
    );
    script_fn!(reg,
        /// A node that exits on its own during the run (its process or container ended, and
        /// no stop, kill or restart of the framework was under way) fails the run at once as
        /// `no_node_crash`, naming the node, when, and its last log lines. Nodes the plan
        /// stops or kills on purpose are not crashes.
        ///
        /// ```rhai
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(3).slot_duration("200ms"))
        ///     .enable_node_control()
        ///     .chaos_with(|c| c.restart().min_delay("2s").max_delay("3s").apply())
        ///     .expect_no_crashes();
        /// ```
        fn expect_no_crashes(builder: ScenarioBuilder) -> ScenarioBuilder
        => |b: &mut PlanBuilder| -> Res<PlanBuilder> { Ok(b.map(|s| s.expect_no_crashes())) }
    );
}
