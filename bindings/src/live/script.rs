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
use crate::host::{HostState, Mode};

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
    let st = state.clone();
    engine.register_fn("attach", move |name: &str| -> Res<NetHandle> {
        if st.settings.mode == Mode::Check {
            return Ok(NetHandle::dry(0, st.bridge.clone()));
        }
        let s = state::load(name).or_else(|e| err(e.to_string()))?;
        if !s.supervisor_alive() {
            return err(format!(
                "attach(\"{name}\"): the testnet is stale (its supervisor is gone); `nomos-script down {name}` cleans it up"
            ));
        }
        let url = match (s.status, s.control_url) {
            (Status::Ready, Some(u)) => u,
            (status, _) => return err(format!("attach(\"{name}\"): not ready ({status:?})")),
        };
        let remote = RemoteTestnet::attach(name, &url).or_else(err)?;
        Ok(NetHandle::live(Arc::new(remote), st.bridge.clone()))
    });
    engine.register_fn("fault_log", |n: &mut NetHandle| -> Array {
        n.testnet().map_or_else(Vec::new, |net| {
            net.fault_log()
                .iter()
                .map(|r| {
                    Dynamic::from(map([
                        ("id", int(r.id.0)),
                        ("fault", r.fault.to_string().into()),
                        ("reverted", r.reverted.into()),
                        ("elapsed", r.elapsed.as_secs_f64().into()),
                        ("summary", fault_summary(r).into()),
                    ]))
                })
                .collect()
        })
    });
}
