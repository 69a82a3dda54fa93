//! One interactive (or supervised) evaluation context: an engine with the whole script surface, a
//! scope that lives across inputs, script functions and imports carried from one input to the
//! next, and Ctrl-C that stops the running input without ending the session.
//!
//! A [`Bridge`]'s cancellation is one-shot, so after an interrupted input the session starts a new
//! *epoch*: a fresh bridge, host state and engine, with `net` (and every testnet handle kept in a
//! variable) rebound to it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use engine::deploy::Testnet;
use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};
use tokio::runtime::Handle;

use crate::api;
use crate::api::deploy::NetHandle;
use crate::bridge::{Bridge, mark_script_thread};
use crate::diagnostics::Diagnostic;
use crate::host::{HostSettings, HostState};
use crate::params::to_map;

/// What became of one input.
#[derive(Debug)]
pub enum EvalOutcome {
    /// It ran; the value of its last expression.
    Value(Dynamic),
    /// It failed: the rendered error (message, position, caret) and the exit code a script
    /// failing this way gets (2 script error, 1 failed run, 3 infrastructure).
    Error(String, i32),
    /// Ctrl-C stopped it.
    Interrupted,
}

struct Epoch {
    state: Arc<HostState>,
    engine: Arc<Engine>,
}

/// Shared with the signal handler: the bridge of the current epoch, and whether an input runs.
#[derive(Clone, Default)]
pub struct InterruptTarget {
    inner: Arc<Mutex<(Option<Bridge>, bool)>>,
}

impl InterruptTarget {
    fn set(&self, bridge: Bridge) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0 = Some(bridge);
    }

    fn running(&self, yes: bool) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1 = yes;
    }

    /// Interrupts the running input; returns false when none runs.
    pub fn interrupt(&self) -> bool {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match (&g.0, g.1) {
            (Some(b), true) => {
                b.interrupt();
                true
            }
            _ => false,
        }
    }
}

/// An evaluation context that outlives each input.
pub struct Session {
    handle: Handle,
    settings: HostSettings,
    seed: u64,
    script: PathBuf,
    epoch: Epoch,
    scope: Scope<'static>,
    /// Script functions defined so far (merged from every successful input).
    functions: AST,
    /// Successful `import` statements, run again before each input.
    imports: Vec<AST>,
    target: InterruptTarget,
    started: Instant,
}

impl Session {
    /// A session over `handle`'s runtime. `script` names the inputs in messages.
    pub fn new(handle: Handle, settings: HostSettings, script: &Path) -> Self {
        let seed = settings.seed.unwrap_or_else(random_seed);
        let bridge = Bridge::new(handle.clone());
        let epoch = new_epoch(bridge.clone(), &settings, seed, script, Vec::new());
        let target = InterruptTarget::default();
        target.set(bridge);
        let mut scope = Scope::new();
        scope.push_constant("params", to_map(&settings.params));
        Self {
            handle,
            settings,
            seed,
            script: script.to_path_buf(),
            epoch,
            scope,
            functions: AST::empty(),
            imports: Vec::new(),
            target,
            started: Instant::now(),
        }
    }

    /// What the signal handler interrupts.
    pub fn interrupt_target(&self) -> InterruptTarget {
        self.target.clone()
    }

    /// The runtime.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The engine of the current epoch (for function metadata).
    pub fn engine(&self) -> Arc<Engine> {
        self.epoch.engine.clone()
    }

    /// The host state of the current epoch.
    pub fn state(&self) -> Arc<HostState> {
        self.epoch.state.clone()
    }

    /// The seed plans use unless they set their own.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Time since the session started.
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Binds `net` to `testnet`.
    pub fn bind_net(&mut self, testnet: Arc<dyn Testnet>) {
        let h = NetHandle::live(testnet, self.epoch.state.bridge.clone());
        self.scope.set_value("net", h);
    }

    /// The testnet `net` is bound to, if any.
    pub fn net(&self) -> Option<Arc<dyn Testnet>> {
        self.scope
            .get_value::<NetHandle>("net")
            .and_then(|h| h.testnet().cloned())
    }

    /// Testnets deployed in this session (torn down when it ends).
    pub fn owned_testnets(&self) -> Vec<NetHandle> {
        self.epoch
            .state
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes the testnets deployed in this session out of its care (the caller tears them down).
    pub fn take_owned_testnets(&self) -> Vec<NetHandle> {
        std::mem::take(
            &mut *self
                .epoch
                .state
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Evaluates one input. `origin` names it in messages (`<input>` or a file path); for a file,
    /// errors quote the file, otherwise `source` itself.
    pub fn eval(&mut self, source: &str, origin: &Path, is_file: bool) -> EvalOutcome {
        let engine = self.epoch.engine.clone();
        let mut ast = match engine.compile_with_scope(&self.scope, source) {
            Ok(ast) => ast,
            Err(e) => {
                let d = Diagnostic::from_parse(&e, origin);
                return EvalOutcome::Error(render(&d, source, is_file), crate::exit::SCRIPT_ERROR);
            }
        };
        if is_file {
            ast.set_source(origin.display().to_string());
        }
        let is_import = source.trim_start().starts_with("import ") && ast.statements().len() == 1;
        let mut run = AST::empty();
        for i in &self.imports {
            run = run.merge(i);
        }
        run = self.functions.merge(&run).merge(&ast);

        self.target.running(true);
        let scope = &mut self.scope;
        let result = std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("repl-script".into())
                .spawn_scoped(s, || {
                    mark_script_thread();
                    engine.eval_ast_with_scope::<Dynamic>(scope, &run)
                });
            match worker {
                Ok(h) => h.join().unwrap_or_else(|_| {
                    Err(Box::new(EvalAltResult::ErrorRuntime(
                        "the script thread panicked (a bug of the host)".into(),
                        rhai::Position::NONE,
                    )))
                }),
                Err(e) => Err(Box::new(EvalAltResult::ErrorRuntime(
                    format!("cannot start the script thread: {e}").into(),
                    rhai::Position::NONE,
                ))),
            }
        });
        self.target.running(false);

        if self.epoch.state.bridge.is_interrupted() {
            self.new_epoch();
            return EvalOutcome::Interrupted;
        }
        match result {
            Ok(v) => {
                self.functions = self.functions.merge(&ast.clone_functions_only());
                if is_import {
                    self.imports.push(ast);
                }
                EvalOutcome::Value(v)
            }
            Err(e) => {
                let mut d = Diagnostic::from_eval(&e, origin);
                let mut code = crate::exit::SCRIPT_ERROR;
                if let EvalAltResult::ErrorRuntime(value, _) = innermost(&e) {
                    if let Some(message) = api::failure_message(value) {
                        d.message = message;
                    }
                    code = api::failure_exit_code(value).unwrap_or(code);
                }
                EvalOutcome::Error(render(&d, source, is_file), code)
            }
        }
    }

    /// Starts a new epoch after Ctrl-C: testnet handles in variables are rebound to it.
    fn new_epoch(&mut self) {
        let bridge = Bridge::new(self.handle.clone());
        let live = self.take_owned_testnets();
        let live: Vec<NetHandle> = live
            .into_iter()
            .filter_map(|h| h.testnet().cloned())
            .map(|t| NetHandle::live(t, bridge.clone()))
            .collect();
        self.epoch = new_epoch(
            bridge.clone(),
            &self.settings,
            self.seed,
            &self.script,
            live,
        );
        self.target.set(bridge.clone());
        let names: Vec<(String, Arc<dyn Testnet>)> = self
            .scope
            .iter_raw()
            .filter_map(|(name, _, v)| {
                v.clone()
                    .try_cast::<NetHandle>()
                    .and_then(|h| h.testnet().cloned())
                    .map(|t| (name.to_string(), t))
            })
            .collect();
        for (name, t) in names {
            self.scope
                .set_value(name, NetHandle::live(t, bridge.clone()));
        }
    }
}

fn new_epoch(
    bridge: Bridge,
    settings: &HostSettings,
    seed: u64,
    script: &Path,
    live: Vec<NetHandle>,
) -> Epoch {
    let state = HostState::new(bridge, settings.clone(), seed, script, live);
    let engine = Arc::new(crate::host::build_engine(
        &state,
        crate::host::Output::Terminal,
    ));
    let _ = state.engine.set(Arc::downgrade(&engine));
    Epoch { state, engine }
}

fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

/// An error with the offending input line and a caret under the position.
fn render(d: &Diagnostic, source: &str, is_file: bool) -> String {
    if is_file {
        return d.render();
    }
    let mut out = format!("error: {}\n", d.message);
    if let Some(loc) = &d.location
        && loc.file.as_os_str() == "<input>"
        && let Some(line) = source.lines().nth(loc.line.saturating_sub(1))
    {
        let num = loc.line.to_string();
        let pad = " ".repeat(num.len());
        out.push_str(&format!("{pad} |\n{num} | {line}\n{pad} | "));
        out.push_str(&" ".repeat(loc.col.saturating_sub(1)));
        out.push_str("^\n");
    } else if let Some(loc) = &d.location {
        out.push_str(&format!(
            " --> {}:{}:{}\n",
            loc.file.display(),
            loc.line,
            loc.col
        ));
    }
    for (what, loc) in d.trail.iter().rev() {
        out.push_str(&format!(
            "note: {what} at {}:{}:{}\n",
            loc.file.display(),
            loc.line,
            loc.col
        ));
    }
    out
}

fn random_seed() -> u64 {
    rand::random::<u64>() % 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_column() {
        let d = Diagnostic {
            message: "boom".into(),
            location: Some(crate::diagnostics::Location {
                file: "<input>".into(),
                line: 1,
                col: 5,
            }),
            trail: vec![],
        };
        let r = render(&d, "net.bad(1)", false);
        assert!(r.contains("1 | net.bad(1)\n  |     ^"), "{r}");
    }
}
