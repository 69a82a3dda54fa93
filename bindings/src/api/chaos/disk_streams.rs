//! The disk streams of `chaos_with`: `c.disk_full()` and `c.lose_unflushed()`.

use engine::chaos::ChaosBuilder;
use engine::chaos::disk::DiskBuilder;
use rhai::{Array, Dynamic, INT};

use super::{finish, nodes};
use crate::api::values::{Res, duration, err};
use crate::doc::registry::Registrar;
use crate::script_fn;

pub(super) fn register(reg: &mut Registrar) {
    script_fn!(reg,
        /// Random full disks: a random node's disk fills up (its writes fail, so it neither
        /// follows nor produces and says "disk full"), then has room again after the duration
        /// and catches up by sync. Needs node control and the reference node's testing disk.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.disk_full().min_delay("5s").max_delay("8s").duration("2s").apply());
        /// ```
        fn disk_full(chaos: ChaosBuilder) -> DiskChaos => |b: &mut ChaosBuilder| b.clone().disk_full()
    );
    script_fn!(reg,
        /// Random crashes that lose writes: a random node's last `blocks` block writes (default
        /// 3) are held back as not durable for the duration, then the node is killed (losing
        /// them), started again and its writes made durable; it catches up by sync. Needs node
        /// control and the reference node's testing disk.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.lose_unflushed().blocks(5).duration("3s").apply());
        /// ```
        fn lose_unflushed(chaos: ChaosBuilder) -> DiskChaos => |b: &mut ChaosBuilder| b.clone().lose_unflushed()
    );
    reg.register_type::<DiskBuilder>(
        "DiskChaos",
        &[
            " Settings of random disk faults (`c.disk_full()`, `c.lose_unflushed()`), ended with",
            " `apply()`.",
            "",
            " ```rhai",
            " let b = ScenarioBuilder::topology_with(|t| t.nodes(4))",
            "     .chaos_with(|c| c.disk_full().exclude([0]).apply());",
            " ```",
        ],
    );
    delays!(reg, DiskBuilder, "DiskChaos", "disk_full()", "disk_full");
    durations!(reg, DiskBuilder, "DiskChaos", "disk_full()", "disk_full");
    script_fn!(reg,
        /// How many block writes are held back before each kill (`lose_unflushed()` only;
        /// 1 to 10000, default 3).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.lose_unflushed().blocks(8).apply());
        /// ```
        fn blocks(chaos: DiskChaos, n: int) -> DiskChaos
        => |b: &mut DiskBuilder, n: INT| -> Res<DiskBuilder> {
            if !(1..=10_000).contains(&n) {
                return err(format!("lose_unflushed blocks = {n}: between 1 and 10000"));
            }
            Ok(b.clone().blocks(n as u64))
        }
    );
    script_fn!(reg,
        /// Only these nodes' disks fail (default: every node).
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.disk_full().targets([3]).apply());
        /// ```
        fn targets(chaos: DiskChaos, nodes: Array) -> DiskChaos
        => |b: &mut DiskBuilder, a: Array| -> Res<DiskBuilder> {
            Ok(b.clone().targets(nodes(&a, "disk targets")?))
        }
    );
    script_fn!(reg,
        /// These nodes' disks never fail.
        ///
        /// ```rhai
        /// let b = ScenarioBuilder::topology_with(|t| t.nodes(4))
        ///     .chaos_with(|c| c.disk_full().exclude([0]).apply());
        /// ```
        fn exclude(chaos: DiskChaos, nodes: Array) -> DiskChaos
        => |b: &mut DiskBuilder, a: Array| -> Res<DiskBuilder> {
            Ok(b.clone().exclude(nodes(&a, "disk exclude")?))
        }
    );
}
