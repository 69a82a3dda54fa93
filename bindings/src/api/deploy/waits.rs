//! Waits on a live testnet: readiness, heights, convergence.

use super::*;
use engine::error::Chain;

pub(super) fn register_waits(reg: &mut Registrar) {
    script_fn!(reg,
        /// The seconds a deadline stands for on this testnet: a duration as it is, `"N slots"`
        /// as N times its slot duration, `"N blocks"` as N / f slots (f, its active slot
        /// coefficient). For script waits of your own that should scale with the slots.
        ///
        /// ```rhai
        /// let limit = net.seconds("20 slots");
        /// let t = timestamp();
        /// while net.node(0).height() < 2 && t.elapsed < limit { sleep("100ms"); }
        /// ```
        fn seconds(net: Testnet, deadline: Deadline) -> float
        => |n: &mut NetHandle, d: Dynamic| -> Res<rhai::FLOAT> {
            Ok(n.resolve(deadline(&d, "seconds")?).0.as_secs_f64())
        }
    );
    script_fn!(reg,
        /// Waits (60 s at most) until every node answers and has its peers; fails naming the
        /// nodes that are not ready.
        ///
        /// ```rhai
        /// net.wait_ready();
        /// ```
        fn wait_ready(net: Testnet) => |n: &mut NetHandle| -> Res<()> {
            wait_ready(n, Deadline::Time(DEFAULT_READY_TIMEOUT))
        }
    );
    script_fn!(reg,
        /// Waits until every node answers and has its peers, at most `deadline` (a duration, or
        /// `"N slots"` / `"N blocks"` of this testnet's consensus parameters).
        ///
        /// ```rhai
        /// net.wait_ready("30s");
        /// net.wait_ready("60 slots");
        /// ```
        fn wait_ready(net: Testnet, deadline: Deadline) => |n: &mut NetHandle, d: Dynamic| -> Res<()> {
            wait_ready(n, deadline(&d, "wait_ready")?)
        }
    );
    script_fn!(reg,
        /// Waits until every node's height reaches `height`; at the deadline fails naming each
        /// node behind and its height. The deadline is a duration or, so that it scales with
        /// the slot duration, `"N slots"` / `"N blocks"` (N blocks are expected in N / f slots).
        ///
        /// ```rhai
        /// let h = net.node(0).height();
        /// net.wait_height(h + 2, "10s");
        /// net.wait_height(h + 2, "10 blocks");
        /// ```
        fn wait_height(net: Testnet, height: int, deadline: Deadline)
        => |n: &mut NetHandle, h: INT, d: Dynamic| -> Res<()> {
            let h = u64::try_from(h)
                .or_else(|_| err(format!("wait_height height = {h} must not be negative")))?;
            n.wait_height(h, deadline(&d, "wait_height deadline")?)
        }
    );
    script_fn!(reg,
        /// Waits until every node reports the same tip and LIB; at the deadline (a duration,
        /// or `"N slots"` / `"N blocks"`) fails listing each node's height, tip and LIB.
        ///
        /// ```rhai
        /// net.wait_converged("20s");
        /// net.wait_converged("40 slots");
        /// ```
        fn wait_converged(net: Testnet, deadline: Deadline)
        => |n: &mut NetHandle, d: Dynamic| -> Res<()> {
            n.wait_converged(deadline(&d, "wait_converged deadline")?)
        }
    );
}

pub(super) fn wait_ready(n: &NetHandle, bound: Deadline) -> Res<()> {
    let Some(net) = n.net.clone() else {
        return Ok(());
    };
    let (deadline, written) = n.resolve(bound);
    let r = n
        .bridge
        .block_on_cancellable(async move { net.wait_ready(deadline).await })?;
    r.or_else(|e| {
        infra(if matches!(bound, Deadline::Time(_)) {
            format!("wait_ready failed: {}", e.chain())
        } else {
            format!("wait_ready within {written} failed: {}", e.chain())
        })
    })
}
