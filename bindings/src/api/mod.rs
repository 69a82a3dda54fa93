//! The script surface: every engine builder and handle as rhai types, functions and static
//! modules. Registration is split by engine area; this file only wires the parts together.

pub mod byzantine;
pub mod chaos;
pub mod client;
pub mod clock;
pub mod deploy;
pub mod disk;
pub mod feed;
pub mod metrics;
pub mod recovery;
pub mod replay;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod script_fns;
pub mod tamper;
pub mod topology;
pub mod txs;
pub mod values;

use std::sync::Arc;

use rhai::{Dynamic, Engine, FLOAT, INT};

use crate::doc::registry::{Area, Registrar};
use crate::host::{HostState, Mode};
use crate::script_fn;
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
    txs::register(engine);
    feed::register(engine, state);
    metrics::register(engine, state);
    recovery::register(engine);
    crate::live::script::register(engine, state);
    chaos::register(engine, state);
    tamper::register(engine);
    clock::register(engine);
    replay::register(engine, state);
    byzantine::register(engine);
    disk::register(engine);
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
    let mut reg = Registrar::new(engine, Area::General);
    let params = state.settings.params.clone();
    script_fn!(reg,
        /// The script parameter `key` given with `--set key=value`, or `default` when it was
        /// not given (`params.key` reads the same values but fails when absent). The value
        /// must be of the default's type: an int default takes only an int, a float default an
        /// int or a float, a bool default `true`/`false`; a string default takes any value
        /// (`--set duration=10` where the default is `"90s"`).
        ///
        /// ```rhai
        /// let nodes = param("nodes", 4);
        /// let topology = TopologyBuilder().nodes(nodes);
        /// ```
        fn param(key: String, default: Dynamic) -> Dynamic => move |key: &str, default: Dynamic| -> Res<Dynamic> {
            match params.iter().rev().find(|(k, _)| k == key) {
                Some((_, value)) => crate::params::checked(key, value, &default).or_else(values::err),
                None => Ok(default),
            }
        }
    );
    let bridge = state.bridge.clone();
    let dry = state.settings.mode == Mode::Check;
    let sleep = move |d: &Dynamic| -> Res<()> {
        let d = duration(d, "sleep")?;
        if dry {
            return Ok(());
        }
        // async block: the timer must be created inside the runtime
        bridge.block_on_cancellable(async move { tokio::time::sleep(d).await })?;
        Ok(())
    };
    let dynamic_sleep = sleep.clone();
    script_fn!(reg,
        /// Sleeps (skipped by `check`); Ctrl-C interrupts it. A negative duration or one over
        /// 30 days is an error.
        ///
        /// ```rhai
        /// sleep("300ms");
        /// ```
        fn sleep(duration: Duration) => move |d: Dynamic| dynamic_sleep(&d)
    );
    // rhai's own `sleep(int)` and `sleep(float)` would otherwise win over the one above for
    // numbers: they block the thread (no Ctrl-C, not skipped by `check`) and ignore negatives.
    let int_sleep = sleep.clone();
    script_fn!(reg,
        /// Sleeps this many seconds, like `sleep("2s")` (skipped by `check`; Ctrl-C
        /// interrupts it); a negative number is an error.
        ///
        /// ```rhai
        /// sleep(1);
        /// ```
        fn sleep(seconds: int) => move |s: INT| int_sleep(&Dynamic::from_int(s))
    );
    script_fn!(reg,
        /// Sleeps this many seconds, like `sleep("200ms")` for `sleep(0.2)` (skipped by
        /// `check`; Ctrl-C interrupts it); a negative number is an error.
        ///
        /// ```rhai
        /// sleep(0.2);
        /// ```
        fn sleep(seconds: float) => move |s: FLOAT| sleep(&Dynamic::from_float(s))
    );
    let seed = state.seed;
    script_fn!(reg,
        /// The seed of this script run (`--seed`, or the random one printed in the report):
        /// plans without their own `.seed(n)` use it.
        ///
        /// ```rhai
        /// print(`replay with --seed ${run_seed()}`);
        /// ```
        fn run_seed() -> int => move || values::int(seed)
    );
    let mode = state.settings.mode;
    script_fn!(reg,
        /// Whether the script is being checked (`nomos-script check`): deploys and runs are dry,
        /// so a script can skip work that only makes sense on a live testnet.
        ///
        /// ```rhai
        /// if !is_check() { print(net.node(0).height()); }
        /// ```
        fn is_check() -> bool => move || mode == Mode::Check
    );
}
