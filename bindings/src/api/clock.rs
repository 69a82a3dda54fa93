//! Clock faults from scripts: a node's clock set off wall time, or drifting, through its
//! testing surface (the reference node reads slots from that clock), in the timeline of
//! `net.fault_log()` as `clock node-i offset ...`.
//!
//! ```rhai
//! net.clock_skew(2, "-2s");       // node 2 lives two seconds in the past
//! net.clock_drift(1, 50000);      // node 1 gains 5% (50,000 ppm) from now on
//! print(net.clock(2));            // #{now_ms, skew_ms, drift_ppm}
//! net.clock_reset(2);
//! net.clock_reset(1);
//! ```

use engine::error::Chain;
use rhai::{Dynamic, Engine, INT};

use super::deploy::NetHandle;
use super::values::{Res, duration, err, to_script};
use crate::doc::registry::{Area, Registrar};
use crate::script_fn;

/// Largest offset a script may set: a day (beyond that it is a typo).
const MAX_OFFSET_MS: i64 = 86_400_000;
/// Largest drift: 10%.
const MAX_DRIFT_PPM: i64 = 100_000;

/// `"+2s"`, `"-500ms"`, `"2s"` or a number of seconds (negative: behind), as ms.
pub(crate) fn offset_ms(v: &Dynamic) -> Res<i64> {
    let (negative, magnitude) = match v.clone().into_immutable_string() {
        Ok(s) => {
            let t = s.trim();
            match t.strip_prefix('-') {
                Some(rest) => (true, Dynamic::from(rest.trim().to_string())),
                None => (
                    false,
                    Dynamic::from(t.trim_start_matches('+').trim().to_string()),
                ),
            }
        }
        Err(_) => {
            let secs = v
                .as_float()
                .or_else(|_| v.as_int().map(|i| i as f64))
                .or_else(|_| {
                    err(format!(
                        "clock offset = {v}: expected \"+2s\", \"-500ms\" or seconds"
                    ))
                })?;
            (secs < 0.0, Dynamic::from_float(secs.abs()))
        }
    };
    let d = duration(&magnitude, "clock offset")?;
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if ms > MAX_OFFSET_MS {
        return err(format!("clock offset = {v}: at most a day either way"));
    }
    Ok(if negative { -ms } else { ms })
}

fn drift(ppm: INT) -> Res<i64> {
    if ppm.abs() > MAX_DRIFT_PPM {
        return err(format!(
            "clock drift = {ppm} ppm: at most ±{MAX_DRIFT_PPM} (10%)"
        ));
    }
    Ok(ppm)
}

fn set(n: &NetHandle, i: INT, offset: i64, ppm: i64) -> Res<()> {
    n.control("clock", i, move |net, i| net.set_clock(i, offset, ppm))
}

/// Registers the clock faults.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Faults);
    script_fn!(reg,
        /// Sets node `i`'s clock `offset` off wall time (`"+2s"`, `"-500ms"`, or seconds) and
        /// stops any drift. A node more than a slot ahead produces blocks its peers refuse as
        /// from the future; one more than a slot behind refuses theirs and falls behind. Needs
        /// `enable_node_control()` in a plan; kept across a restart (set again as soon as the
        /// node answers), reverted by `heal()`.
        ///
        /// ```rhai
        /// net.clock_skew(2, "+2s");
        /// net.clock_reset(2);
        /// ```
        fn clock_skew(net: Testnet, i: int, offset: Dynamic)
        => |n: &mut NetHandle, i: INT, offset: Dynamic| -> Res<()> {
            let ms = offset_ms(&offset)?;
            set(n, i, ms, 0)
        }
    );
    script_fn!(reg,
        /// Makes node `i`'s clock gain `ppm` parts per million from now on (negative: lose),
        /// starting from wall time.
        ///
        /// ```rhai
        /// net.clock_drift(1, 20000);   // 2%: 20 ms a second
        /// net.clock_reset(1);
        /// ```
        fn clock_drift(net: Testnet, i: int, ppm: int)
        => |n: &mut NetHandle, i: INT, ppm: INT| -> Res<()> {
            let ppm = drift(ppm)?;
            set(n, i, 0, ppm)
        }
    );
    script_fn!(reg,
        /// Sets node `i`'s clock `offset` off wall time and drifting `ppm` from now on.
        ///
        /// ```rhai
        /// net.clock_skew(3, "-1s", 10000);
        /// net.clock_reset(3);
        /// ```
        fn clock_skew(net: Testnet, i: int, offset: Dynamic, ppm: int)
        => |n: &mut NetHandle, i: INT, offset: Dynamic, ppm: INT| -> Res<()> {
            let ms = offset_ms(&offset)?;
            set(n, i, ms, drift(ppm)?)
        }
    );
    script_fn!(reg,
        /// Puts node `i`'s clock back on wall time, without drift.
        ///
        /// ```rhai
        /// net.clock_reset(0);
        /// ```
        fn clock_reset(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| -> Res<()> {
            set(n, i, 0, 0)
        }
    );
    script_fn!(reg,
        /// Node `i`'s clock: `#{now_ms, skew_ms, drift_ppm}` (skew: how far it is from wall
        /// time now, in ms).
        ///
        /// ```rhai
        /// let c = net.clock(0);
        /// print(`node-0 is ${c.skew_ms} ms off`);
        /// ```
        fn clock(net: Testnet, i: int) -> Map => |n: &mut NetHandle, i: INT| -> Res<Dynamic> {
            let i = n.check_index(i, "clock")?;
            let Some(net) = n.testnet().cloned() else {
                return Ok(to_script(&serde_json::json!({"now_ms": 0, "skew_ms": 0, "drift_ppm": 0})));
            };
            let Some(client) = net.clients().get(i).cloned() else {
                return err(format!("clock({i}): no such node"));
            };
            match n.bridge().block_on_cancellable(async move { client.clock().await })? {
                Ok(r) => Ok(to_script(&r)),
                Err(e) => err(format!("clock({i}) failed: {}", e.chain())),
            }
        }
    );
}
