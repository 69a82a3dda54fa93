//! `replay(#{..}, |c| c.schedule()...)`: every plan the script runs from then on runs with this
//! fault schedule in place of its chaos workloads, and with the seed, node count, run duration
//! and expectations the map gives. `nomos-script shrink` writes its result this way, at the top
//! of a copy of the scenario.

use std::sync::Arc;

use rhai::{Engine, FnPtr, Map, NativeCallContext};

use super::values::{Res, count, duration, err};
use crate::doc::registry::{Area, Registrar};
use crate::host::HostState;
use crate::script_fn;
use engine::replay::Replay;

const KEYS: &str = "seed, nodes, duration, expectations";

fn replay_of(opts: &Map) -> Res<Replay> {
    let mut r = Replay::default();
    for (key, value) in opts {
        match key.as_str() {
            "seed" => {
                let s = value
                    .as_int()
                    .or_else(|_| err(format!("replay seed = {value}: expected an int")))?;
                r.seed = Some(s as u64);
            }
            "nodes" => {
                let n = value
                    .as_int()
                    .or_else(|_| err(format!("replay nodes = {value}: expected an int")))?;
                r.nodes = Some(count(n, "replay nodes")?);
            }
            "duration" => r.duration = Some(duration(value, "replay duration")?),
            "expectations" => {
                let names = value
                    .read_lock::<rhai::Array>()
                    .map(|a| {
                        a.iter()
                            .map(|v| v.clone().into_string().ok())
                            .collect::<Option<Vec<String>>>()
                    })
                    .unwrap_or(None);
                match names {
                    Some(n) if !n.is_empty() => r.expectations = Some(n),
                    _ => {
                        return err(format!(
                            "replay expectations = {value}: expected a non-empty array of expectation names, e.g. [\"consensus_liveness\"]"
                        ));
                    }
                }
            }
            other => {
                return err(format!("replay key `{other}` is unknown (known: {KEYS})"));
            }
        }
    }
    Ok(r)
}

fn install(state: &HostState, r: Replay) {
    eprintln!("replay: every plan runs with {}", r.describe());
    *state.replay.lock().expect("replay lock") = Some(r);
}

/// Registers `replay`.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut reg = Registrar::new(engine, Area::Chaos);
    let st = state.clone();
    script_fn!(reg,
        /// From here on, every plan the script runs is changed as `opts` says: `seed`, `nodes`,
        /// `duration` and `expectations` (only those named are judged). `nomos-script shrink`
        /// writes its result with this at the top of a copy of the scenario.
        ///
        /// ```rhai
        /// replay(#{ seed: 7, duration: "12s" });
        /// ```
        fn replay(opts: Map) => move |opts: Map| -> Res<()> {
            install(&st, replay_of(&opts)?);
            Ok(())
        }
    );
    let st = state.clone();
    script_fn!(reg,
        /// As `replay(opts)`, and the fault schedule `f` returns (given a `ChaosBuilder`, like
        /// `chaos_with`) takes the place of every chaos workload of the plans.
        ///
        /// ```rhai
        /// replay(#{ seed: 7, nodes: 3, duration: "20s", expectations: ["no_node_crash"] },
        ///     |c| c.schedule().at_for("3s", "isolate", 1, "6s").at("4s", "restart", 1).apply());
        /// ```
        fn replay(opts: Map, f: FnPtr) => move |ctx: NativeCallContext, opts: Map, f: FnPtr| -> Res<()> {
            let mut r = replay_of(&opts)?;
            let chaos = super::chaos::call_chaos(&ctx, &f)?;
            if let Err(e) = chaos.validate() {
                return err(format!("invalid replay schedule: {e}"));
            }
            r.chaos = Some(chaos);
            install(&st, r);
            Ok(())
        }
    );
}

/// The plan as the script's replay (if any) changes it.
pub fn replayed(
    state: &HostState,
    plan: &engine::scenario::Scenario,
) -> Res<engine::scenario::Scenario> {
    let replay = state.replay.lock().expect("replay lock").clone();
    match replay {
        None => Ok(plan.fresh()),
        Some(r) => r
            .apply(plan)
            .or_else(|e| err(format!("the replay does not fit this plan: {e}"))),
    }
}
