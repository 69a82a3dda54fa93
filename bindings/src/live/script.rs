//! Script functions for live testnets: `attach(name)` binds a testnet brought up with `up` from
//! any script, and `net.fault_log()` lists every fault applied and reverted (a saved REPL
//! session prints it so two runs can be compared).
//!
//! ```rhai
//! let net = attach("demo");
//! net.partition([[0], [1, 2]]);
//! net.heal();
//! for f in net.fault_log() { print(f.summary); }
//! ```

use std::sync::Arc;

use engine::live::remote::RemoteTestnet;
use engine::live::state::{self, Status};
use rhai::{Array, Dynamic, Engine};

use crate::api::deploy::NetHandle;
use crate::api::values::{Res, err, int, map};
use crate::doc::registry::{Area, Registrar};
use crate::host::{HostState, Mode};
use crate::script_fn;

/// `apply fault#1 partition [[0], [1, 2]]`: a fault record without its timing, so logs of two
/// runs compare equal when the same faults happened in the same order.
pub fn fault_summary(r: &engine::links::FaultRecord) -> String {
    format!(
        "{} {} {}",
        if r.reverted { "revert" } else { "apply" },
        r.id,
        r.fault
    )
}

/// Registers `attach` and `fault_log`.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut reg = Registrar::new(engine, Area::Deployers);
    let st = state.clone();
    script_fn!(reg,
        /// The testnet brought up with `nomos-script up FILE --name NAME`, from any script or
        /// REPL: every `Testnet` function works on it, through its supervisor. Fails when no
        /// such testnet exists or its supervisor is gone (`nomos-script down NAME` cleans up).
        ///
        /// ```rhai,no_run
        /// let demo = attach("demo");
        /// print(`${demo.node_count} nodes, run ${demo.run_id}`);
        /// ```
        fn attach(name: String) -> Testnet => move |name: &str| -> Res<NetHandle> {
            st.activity.note();
            if st.settings.mode == Mode::Check {
                return Ok(NetHandle::dry(0, st.bridge.clone()));
            }
            let s = state::load(name).or_else(|e| err(e.to_string()))?;
            if !s.supervisor_alive() {
                return err(format!(
                    "attach(\"{name}\"): the testnet is stale (its supervisor is gone); `nomos-script down {name}` cleans it up"
                ));
            }
            if s.status != Status::Ready {
                return err(format!("attach(\"{name}\"): not ready ({:?})", s.status));
            }
            let (url, secret) = s.control().or_else(|e| err(format!("attach(\"{name}\"): {e}")))?;
            let remote = st
                .bridge
                .block_on_cancellable(RemoteTestnet::attach(name, url, secret))?
                .or_else(err)?;
            Ok(NetHandle::live(Arc::new(remote), st.bridge.clone()))
        }
    );
    reg.area(Area::Faults);
    script_fn!(reg,
        /// Every fault applied and reverted and every node-control action so far, in time
        /// order: one timeline. A fault is `#{kind: "fault", id, fault, reverted, elapsed,
        /// summary}`, a control action `#{kind: "control", action, node, elapsed, summary}`
        /// (`summary` leaves out the timing, so two runs' logs compare equal).
        ///
        /// ```rhai
        /// let id = net.isolate(2);
        /// net.revert(id);
        /// for f in net.fault_log() { print(f.summary); }
        /// ```
        fn fault_log(net: Testnet) -> Array => |n: &mut NetHandle| -> Array {
            use engine::deploy::control_log::{timeline, TimelineEntry};
            n.testnet().map_or_else(Vec::new, |net| {
                timeline(&**net)
                    .iter()
                    .map(|e| match e {
                        TimelineEntry::Fault(r) => Dynamic::from(map([
                            ("kind", "fault".into()),
                            ("id", int(r.id.0)),
                            ("fault", r.fault.to_string().into()),
                            ("reverted", r.reverted.into()),
                            ("elapsed", r.elapsed.as_secs_f64().into()),
                            ("summary", fault_summary(r).into()),
                        ])),
                        TimelineEntry::Control(c) => Dynamic::from(map([
                            ("kind", "control".into()),
                            ("action", c.action.to_string().into()),
                            ("node", int(c.node as u64)),
                            ("elapsed", c.elapsed.as_secs_f64().into()),
                            ("summary", c.to_string().into()),
                        ])),
                    })
                    .collect()
            })
        }
    );
}
