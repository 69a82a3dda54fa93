//! The script host: owns the tokio runtime, builds the rhai `Engine` (limits, interruption,
//! imports, bindings), runs a script on a dedicated plain thread, tears down whatever the script
//! left running, and turns the outcome into an exit code and a printed diagnostic.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Scope};
use tokio::runtime::Runtime;

use crate::api;
use crate::bridge::{Bridge, mark_script_thread};
use crate::cli::DeployerChoice;
use crate::diagnostics::Diagnostic;
use crate::exit;
use crate::params::{ParamValue, to_map};
use crate::resolver::ScriptResolver;

/// Runaway scripts are stopped after this many operations (a busy loop hits it in seconds; a
/// scenario that waits through the bindings does a few thousand).
pub const MAX_OPERATIONS: u64 = 50_000_000;
/// The limit under `check`, where nothing waits: a loop that would wait for the testnet spins,
/// and is told so within seconds.
pub const MAX_CHECK_OPERATIONS: u64 = 5_000_000;
/// Maximum nesting of script function calls.
pub const MAX_CALL_LEVELS: usize = 64;
/// Maximum number of modules one script run may load.
pub const MAX_MODULES: usize = 256;
/// How long a script thread may take to notice Ctrl-C before the host gives up on it.
const INTERRUPT_GRACE: Duration = Duration::from_secs(30);
/// After Ctrl-C, how long a script in native work (awaiting nothing) gets to stop by itself.
const NATIVE_GRACE: Duration = Duration::from_millis(500);

/// Whether plans really deploy (`run`) or are only built and validated (`check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deploy, drive, judge, tear down.
    Run,
    /// Build and validate; deploy/run return dry results.
    Check,
}

/// What to do about a run that checks nothing (a plan with no expectation, a script that runs no
/// plan and deploys no testnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckPolicy {
    /// Say nothing (documentation examples, the supervisor behind `up`).
    #[default]
    Quiet,
    /// A warning on stderr, once per plan (`run`, `check`, the REPL).
    Warn,
    /// A script error, exit 2 (`run --strict`, `check --strict`).
    Strict,
}

/// Validated settings of one script execution.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Run or check.
    pub mode: Mode,
    /// Backend used by `plan.run()`.
    pub deployer: DeployerChoice,
    /// Seed of the run's randomness (random when absent).
    pub seed: Option<u64>,
    /// Keep run directories.
    pub keep: bool,
    /// `--set` parameters.
    pub params: Vec<(String, ParamValue)>,
    /// `run --attach-endpoints FILE`: every plan runs on these nodes instead of deploying.
    pub external: Option<Arc<engine::deploy::external::ExternalDeployer>>,
    /// A run that checks nothing: quiet, a warning, or an error (`--strict`).
    pub checks: CheckPolicy,
    /// What every run of the script reports to besides the terminal (the HTML recorder, the
    /// Prometheus file_sd writer): owned by the host, handed to each run.
    pub reporters: Reporters,
}

/// The reporters of a host's runs.
#[derive(Clone, Default)]
pub struct Reporters(pub Vec<Arc<dyn ::engine::report::Reporter>>);

impl std::fmt::Debug for Reporters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} reporters", self.0.len())
    }
}

/// State shared by every binding of one script execution.
pub struct HostState {
    /// Runtime access, Ctrl-C.
    pub bridge: Bridge,
    /// The settings.
    pub settings: HostSettings,
    /// The seed every plan uses unless the script sets its own.
    pub seed: u64,
    /// The main script, for messages.
    pub script: PathBuf,
    /// Testnets deployed imperatively (`LocalDeployer().deploy(..)`), torn down when the script
    /// ends however it ends.
    pub live: Mutex<Vec<api::deploy::NetHandle>>,
    /// The engine, for script-defined workloads and expectations that run on their own threads.
    pub engine: OnceLock<Weak<Engine>>,
    /// Every run report, in order (for the JSON and JUnit files).
    pub reports: Mutex<Vec<Arc<engine::report::RunReport>>>,
    /// What the script ran and deployed, for "this run checks nothing".
    pub activity: api::runner::Activity,
    /// Set by `replay(..)`: applied to every plan the script runs from then on.
    pub replay: Mutex<Option<engine::replay::Replay>>,
}

impl HostState {
    /// The state of one script execution (run, check, a REPL epoch, a documentation engine).
    pub fn new(
        bridge: Bridge,
        settings: HostSettings,
        seed: u64,
        script: &Path,
        live: Vec<api::deploy::NetHandle>,
    ) -> Arc<Self> {
        Arc::new(Self {
            bridge,
            settings,
            seed,
            script: script.to_path_buf(),
            live: Mutex::new(live),
            engine: OnceLock::new(),
            reports: Mutex::new(Vec::new()),
            activity: api::runner::Activity::default(),
            replay: Mutex::new(None),
        })
    }

    /// The engine, while the script runs.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.engine.get().and_then(Weak::upgrade)
    }
}

/// What became of a script: the exit code, and what to print on stderr.
#[derive(Debug)]
pub struct Outcome {
    /// Process exit code (see [`crate::exit`]).
    pub code: i32,
    /// Error text (already rendered with position), if any.
    pub error: Option<String>,
    /// The reports of every run the script made.
    pub reports: Vec<Arc<engine::report::RunReport>>,
}

/// Owns the runtime; runs scripts.
pub struct ScriptHost {
    runtime: Runtime,
    bridge: Bridge,
}

impl ScriptHost {
    /// A host with its own multi-threaded runtime and Ctrl-C handling.
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("nomos-script-rt")
            .build()?;
        let bridge = Bridge::new(runtime.handle().clone());
        install_signal_handlers(&runtime, &bridge)?;
        Ok(Self { runtime, bridge })
    }

    /// Runs (or checks) one script file.
    pub fn execute(&self, script: &Path, settings: HostSettings) -> Outcome {
        let source = match std::fs::read_to_string(script) {
            Ok(s) => s,
            Err(e) => {
                return Outcome {
                    code: exit::SCRIPT_ERROR,
                    error: Some(format!(
                        "error: cannot read script {}: {e}\n",
                        script.display()
                    )),
                    reports: Vec::new(),
                };
            }
        };
        let seed = settings.seed.unwrap_or_else(rand_seed);
        let state = HostState::new(self.bridge.clone(), settings, seed, script, Vec::new());
        let engine = Arc::new(build_engine(&state, Output::Terminal));
        let _ = state.engine.set(Arc::downgrade(&engine));

        let mut ast = match engine.compile(&source) {
            Ok(ast) => ast,
            Err(e) => {
                return Outcome {
                    code: exit::SCRIPT_ERROR,
                    error: Some(Diagnostic::from_parse(&e, script).render()),
                    reports: Vec::new(),
                };
            }
        };
        ast.set_source(script.display().to_string());

        let mut scope = Scope::new();
        scope.push_constant("params", to_map(&state.settings.params));

        let thread_engine = engine.clone();
        let joined = std::thread::Builder::new()
            .name("script".into())
            .spawn(move || {
                mark_script_thread();
                thread_engine
                    .run_ast_with_scope(&mut scope, &ast)
                    .map_err(|e| *e)
            });
        let result = match joined {
            Ok(handle) => self.join_script(handle),
            Err(e) => Err(EvalAltResult::ErrorRuntime(
                format!("cannot start the script thread: {e}").into(),
                rhai::Position::NONE,
            )),
        };

        // Whatever the script left running goes down now (pass, error or Ctrl-C).
        let live: Vec<_> = std::mem::take(&mut *state.live.lock().expect("live testnets"));
        for net in live {
            net.teardown_blocking(&self.runtime, state.settings.keep);
        }

        let mut outcome = classify(result, &state, script);
        outcome.reports = std::mem::take(&mut *state.reports.lock().expect("reports"));
        if outcome.code == exit::PASSED && state.activity.is_idle() {
            let what = format!(
                "{} runs no plan and deploys no testnet: it checks nothing",
                script.display()
            );
            match state.settings.checks {
                CheckPolicy::Quiet => {}
                CheckPolicy::Warn => eprintln!(
                    "warning: {what}; build and run a plan (plan.run()) or pass --strict to make this an error"
                ),
                CheckPolicy::Strict => {
                    outcome.code = exit::SCRIPT_ERROR;
                    outcome.error = Some(format!(
                        "error: {what} (--strict); build and run a plan (plan.run())\n"
                    ));
                }
            }
        }
        outcome
    }

    /// Waits for the script thread; after Ctrl-C waits at most [`INTERRUPT_GRACE`].
    fn join_script(
        &self,
        handle: std::thread::JoinHandle<Result<(), EvalAltResult>>,
    ) -> Result<(), EvalAltResult> {
        let mut interrupted_since = None;
        // since when the interrupted script has been in native work (awaiting nothing)
        let mut native_since: Option<std::time::Instant> = None;
        loop {
            if handle.is_finished() {
                return handle.join().unwrap_or_else(|_| {
                    Err(EvalAltResult::ErrorRuntime(
                        "the script thread panicked (a bug of the host)".into(),
                        rhai::Position::NONE,
                    ))
                });
            }
            if self.bridge.is_interrupted() {
                let since = *interrupted_since.get_or_insert_with(std::time::Instant::now);
                // Native work (keys for many wallets, a large topology) never returns to the
                // script engine, so it cannot see the flag: stop waiting for it. Nothing it
                // deployed is lost: every deployed testnet is torn down on return, and no
                // new async work starts once interrupted.
                native_since = if self.bridge.is_awaiting() {
                    None
                } else {
                    native_since.or_else(|| Some(std::time::Instant::now()))
                };
                let native = native_since.is_some_and(|t| t.elapsed() > NATIVE_GRACE);
                if native || since.elapsed() > INTERRUPT_GRACE {
                    return Err(EvalAltResult::ErrorTerminated(
                        "interrupted".into(),
                        rhai::Position::NONE,
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether Ctrl-C (or SIGTERM) was received.
    pub fn is_interrupted(&self) -> bool {
        self.bridge.is_interrupted()
    }

    /// The runtime (for `devnode`-less uses such as tests).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

fn install_signal_handlers(runtime: &Runtime, bridge: &Bridge) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _guard = runtime.enter();
    // Created here (not inside the task) so the handlers are installed before any script runs.
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let bridge = bridge.clone();
    runtime.spawn(async move {
        let mut count = 0;
        loop {
            tokio::select! {
                Some(()) = int.recv() => {},
                Some(()) = term.recv() => {},
                else => return,
            }
            count += 1;
            if count == 1 {
                eprintln!(
                    "interrupted: stopping the script and tearing down (Ctrl-C again to quit now)"
                );
                bridge.interrupt();
            } else {
                eprintln!("interrupted twice: quitting without waiting for teardown");
                std::process::exit(exit::INTERRUPTED);
            }
        }
    });
    Ok(())
}

/// Where an engine's `print` and `debug` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `print` above the progress bar and `debug` on stderr (`check` drops `print`: it reports
    /// only what it checked).
    Terminal,
    /// Neither (documentation engines).
    Silent,
}

/// The one engine every host builds (run, check, the REPL, the documentation and its
/// examples): the same limits, imports resolved from `state.script`'s folder and the stdlib,
/// Ctrl-C and stopped script threads ending evaluation, the whole script surface.
pub fn build_engine(state: &Arc<HostState>, output: Output) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(if state.settings.mode == Mode::Check {
        MAX_CHECK_OPERATIONS
    } else {
        MAX_OPERATIONS
    });
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_modules(MAX_MODULES);
    engine.set_max_expr_depths(128, 64);
    engine.set_max_string_size(16 * 1024 * 1024);
    engine.set_max_array_size(1_000_000);
    engine.set_max_map_size(1_000_000);
    engine.set_module_resolver(ScriptResolver::new(&state.script));
    let flag = state.bridge.interrupted_flag();
    engine.on_progress(move |_| {
        if flag.load(Ordering::Relaxed) {
            Some(Dynamic::from("interrupted"))
        } else if crate::bridge::thread_stopped() {
            Some(Dynamic::from("stopped"))
        } else {
            None
        }
    });
    match output {
        Output::Silent => {
            engine.on_print(|_| {});
            engine.on_debug(|_, _, _| {});
        }
        Output::Terminal => {
            if state.settings.mode == Mode::Check {
                engine.on_print(|_| {});
            } else {
                engine.on_print(::engine::report::terminal::println_above_bar);
            }
            engine.on_debug(|s, src, pos| match (src, pos.line()) {
                (Some(src), Some(line)) => eprintln!("[debug {src}:{line}] {s}"),
                _ => eprintln!("[debug] {s}"),
            });
        }
    }
    api::register(&mut engine, state);
    engine
}

/// Maps a script result to an exit code: an uncaught scenario failure carries its report (exit 1,
/// or 3 for an infrastructure error), Ctrl-C is 130, anything else a script error (2).
fn classify(result: Result<(), EvalAltResult>, state: &HostState, script: &Path) -> Outcome {
    let interrupted = state.bridge.is_interrupted();
    match result {
        Ok(()) if interrupted => Outcome {
            code: exit::INTERRUPTED,
            error: Some("error: interrupted\n".into()),
            reports: Vec::new(),
        },
        Ok(()) => Outcome {
            code: exit::PASSED,
            error: None,
            reports: Vec::new(),
        },
        Err(err) => {
            let leaf = innermost(&err);
            let code = match leaf {
                _ if interrupted => exit::INTERRUPTED,
                EvalAltResult::ErrorTerminated(..) => exit::INTERRUPTED,
                EvalAltResult::ErrorRuntime(value, _) => {
                    api::failure_exit_code(value).unwrap_or(exit::SCRIPT_ERROR)
                }
                _ => exit::SCRIPT_ERROR,
            };
            let mut diag = Diagnostic::from_eval(&err, script);
            if let EvalAltResult::ErrorRuntime(value, _) = leaf
                && let Some(message) = api::failure_message(value)
            {
                diag.message = message;
            }
            let error = if code == exit::INTERRUPTED {
                format!("error: interrupted\n{}", location_line(&diag))
            } else {
                diag.render()
            };
            Outcome {
                code,
                error: Some(error),
                reports: Vec::new(),
            }
        }
    }
}

fn location_line(diag: &Diagnostic) -> String {
    diag.location
        .as_ref()
        .map(|l| format!(" --> {}:{}:{}\n", l.file.display(), l.line, l.col))
        .unwrap_or_default()
}

fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() % 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// run, check, the REPL and the documentation engines are one builder: the same limits.
    #[test]
    fn every_host_engine_has_the_same_limits() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let limits = |mode: Mode, output: Output| {
            let state = crate::doc::engine::host_state(
                Bridge::new(runtime.handle().clone()),
                mode,
                Path::new("limits.rhai"),
            );
            let e = build_engine(&state, output);
            (
                e.max_string_size(),
                e.max_array_size(),
                e.max_map_size(),
                e.max_call_levels(),
                e.max_modules(),
                e.max_expr_depth(),
                e.max_operations(),
            )
        };
        let run = limits(Mode::Run, Output::Terminal);
        assert_eq!(run, limits(Mode::Run, Output::Silent));
        assert_eq!(run.0, 16 * 1024 * 1024);
        assert_eq!(run.6, MAX_OPERATIONS);
        let check = limits(Mode::Check, Output::Silent);
        assert_eq!(check.6, MAX_CHECK_OPERATIONS);
        assert_eq!(
            (run.0, run.1, run.2, run.3, run.4, run.5),
            (check.0, check.1, check.2, check.3, check.4, check.5)
        );
    }
}
