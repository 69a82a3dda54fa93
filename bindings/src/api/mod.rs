//! The script surface: every engine builder and handle as rhai types, functions and static
//! modules. Registration is split by engine area; this file only wires the parts together.

pub mod client;
pub mod deploy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod script_fns;
pub mod topology;
pub mod values;

use std::sync::Arc;

use rhai::{Dynamic, Engine};

use crate::host::{HostState, Mode};
use values::{Res, duration};

/// Registers the whole script surface on `engine`.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    register_general(engine, state);
    topology::register(engine);
    scenario::register(engine, state);
    deploy::register(engine, state);
    client::register(engine);
    report::register(engine);
    script_fns::register(engine);
    crate::live::script::register(engine, state);
}

/// Exit code carried by an error value raised by the bindings (a failed run's report, an
/// infrastructure failure), or `None` for an ordinary script error.
pub fn failure_exit_code(value: &Dynamic) -> Option<i32> {
    report::exit_code_of(value)
}

/// The message printed for such an error value.
pub fn failure_message(value: &Dynamic) -> Option<String> {
    report::message_of(value)
}

fn register_general(engine: &mut Engine, state: &Arc<HostState>) {
    let params = crate::params::to_map(&state.settings.params);
    engine.register_fn("param", move |key: &str, default: Dynamic| {
        params.get(key).cloned().unwrap_or(default)
    });
    let bridge = state.bridge.clone();
    let dry = state.settings.mode == Mode::Check;
    engine.register_fn("sleep", move |d: Dynamic| -> Res<()> {
        let d = duration(&d, "sleep")?;
        if dry {
            return Ok(());
        }
        // async block: the timer must be created inside the runtime
        bridge.block_on_cancellable(async move { tokio::time::sleep(d).await })?;
        Ok(())
    });
    let seed = state.seed;
    engine.register_fn("run_seed", move || values::int(seed));
    let mode = state.settings.mode;
    engine.register_fn("is_check", move || mode == Mode::Check);
}
