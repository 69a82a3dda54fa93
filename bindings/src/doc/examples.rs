//! The examples of the reference (and the ```` ```rhai ```` blocks of the guide) as tests.
//!
//! Fence tags say how far an example is taken:
//! - ```` ```rhai ````: checked (evaluated with deploys and runs replaced by dry runs), then run
//!   for real against one shared local testnet bound to `net` (see [`PRELUDE`]). Such an example
//!   must be quick and leave `net` as it found it (restart what it stops, heal what it breaks).
//! - ```` ```rhai,deploys ````: checked, then run for real; it deploys its own testnet (a short
//!   plan), so it is slower: kept for the few functions that only act inside a run.
//! - ```` ```rhai,no_run ````: only checked (long runs, other backends, tearing `net` down).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Engine, EvalAltResult, Map, Scope};

use super::engine::{documented_engine, seeded_host_state};
use crate::bridge::{Bridge, mark_script_thread};
use crate::diagnostics::Diagnostic;
use crate::host::{HostState, Mode};

/// What every example may use: `net`, a deployed 4-node testnet with 200 ms slots, and `plan`, a
/// built two-node plan of two seconds.
pub const PRELUDE: &str = r#"let net = LocalDeployer().deploy(TopologyBuilder().nodes(4).slot_duration("200ms"));
net.wait_ready("60s");
let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("100ms"))
    .expect_consensus_liveness()
    .with_run_duration("2s")
    .build();"#;

/// Run after each live example so that a forgotten fault does not break the next one.
const RESET: &str = "net.heal();";

/// How far an example is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExampleMode {
    /// Checked, then run against the shared testnet.
    Run,
    /// Checked, then run on its own (it deploys).
    Deploys,
    /// Only checked.
    CheckOnly,
}

/// One ```` ```rhai ```` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The code.
    pub code: String,
    /// How far it is taken.
    pub mode: ExampleMode,
}

/// The ```` ```rhai ```` blocks of a Markdown text (or doc comment), in order.
pub fn extract(text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut current: Option<(ExampleMode, Vec<&str>)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        match &mut current {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut tags = info.split(',').map(str::trim);
                    if tags.next() == Some("rhai") {
                        let mode = tags.fold(ExampleMode::Run, |m, t| match t {
                            "no_run" => ExampleMode::CheckOnly,
                            "deploys" => ExampleMode::Deploys,
                            _ => m,
                        });
                        current = Some((mode, Vec::new()));
                    }
                }
            }
            Some((mode, lines)) => {
                if trimmed == "```" {
                    out.push(Example {
                        code: lines.join("\n"),
                        mode: *mode,
                    });
                    current = None;
                } else {
                    lines.push(line);
                }
            }
        }
    }
    out
}

/// The text with every ```` ```rhai,tag ```` fence written as plain ```` ```rhai ```` (the tags
/// are for the tests; Markdown renderers would not highlight them).
pub fn plain_fences(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("```rhai,") {
                format!("{}```rhai", &l[..l.len() - t.len()])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How long a guide's builder example runs when it is taken to a verdict.
const GUIDE_BUILDER_RUN: &str = "10s";

/// A ```` ```rhai ```` block of a guide, taken as far as it goes: a block that builds `plan`
/// (and does not run it) is run to its verdict; a block that only makes `builder` is built with
/// a run of [`GUIDE_BUILDER_RUN`] and run; both deploy their own testnet. Any other block runs
/// against the shared `net`, and a `no_run` block is only checked.
pub fn guide_example(mut example: Example) -> Example {
    if example.mode == ExampleMode::CheckOnly {
        return example;
    }
    let code = &example.code;
    let runs = code.contains(".run()") || code.contains("try_run(");
    if code.contains("let plan =") && code.contains(".build()") {
        example.mode = ExampleMode::Deploys;
        if !runs {
            example.code.push_str("\nplan.run();");
        }
    } else if code.contains("let builder =") && !code.contains(".build()") {
        example.mode = ExampleMode::Deploys;
        example.code.push_str(&format!(
            "\nbuilder.with_run_duration(\"{GUIDE_BUILDER_RUN}\").build().run();"
        ));
    }
    example
}

/// An example and where it comes from (for messages).
#[derive(Debug, Clone)]
pub struct LabelledExample {
    /// e.g. `reference: Testnet.restart/2` or `docs/guide.md block 3`.
    pub label: String,
    /// The example.
    pub example: Example,
}

/// What [`run_examples`] did.
#[derive(Debug, Default)]
pub struct ExampleSummary {
    /// Examples checked.
    pub checked: usize,
    /// Examples run for real.
    pub run: usize,
    /// One message per failure.
    pub failures: Vec<String>,
    /// The slowest live examples, slowest first (label, time).
    pub slowest: Vec<(String, Duration)>,
}

/// Checks every example, then (with `live`) runs the runnable ones for real: the `Run` ones
/// against one shared testnet, the `Deploys` ones on their own; every plan and testnet uses
/// `seed` unless the example sets its own. `script` is where imports are resolved from (a path
/// in the workspace, so the stdlib is found). Call it from a plain thread outside any async
/// runtime.
pub fn run_examples(
    examples: &[LabelledExample],
    script: &Path,
    live: bool,
    seed: u64,
) -> ExampleSummary {
    let mut summary = ExampleSummary::default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            summary
                .failures
                .push(format!("cannot start the async runtime: {e}"));
            return summary;
        }
    };
    mark_script_thread();
    let bridge = Bridge::new(runtime.handle().clone());

    // Check pass: every example, with a dry `net`.
    let state = seeded_host_state(bridge.clone(), Mode::Check, script, seed);
    let (engine, _) = documented_engine(&state);
    match prelude_scope(&engine, script) {
        Ok(scope) => {
            for ex in examples {
                summary.checked += 1;
                if let Err(e) = eval(&engine, &scope, &ex.example.code, &ex.label) {
                    summary.failures.push(format!("{} (check): {e}", ex.label));
                }
                forget_replay(&state);
            }
        }
        Err(e) => summary.failures.push(format!("check prelude: {e}")),
    }
    if !live {
        return summary;
    }

    // Live pass: one shared testnet.
    let state = seeded_host_state(bridge, Mode::Run, script, seed);
    let (engine, _) = documented_engine(&state);
    let mut timings = Vec::new();
    match prelude_scope(&engine, script) {
        Ok(scope) => {
            for ex in examples {
                if ex.example.mode == ExampleMode::CheckOnly {
                    continue;
                }
                summary.run += 1;
                let started = Instant::now();
                let result = eval(&engine, &scope, &ex.example.code, &ex.label);
                timings.push((ex.label.clone(), started.elapsed()));
                if let Err(e) = result {
                    summary.failures.push(format!("{} (run): {e}", ex.label));
                }
                forget_replay(&state);
                if let Err(e) = eval(&engine, &scope, RESET, "reset") {
                    summary
                        .failures
                        .push(format!("after {}: the shared testnet: {e}", ex.label));
                }
            }
        }
        Err(e) => summary.failures.push(format!("live prelude: {e}")),
    }
    teardown(&state, &runtime);
    timings.sort_by_key(|t| std::cmp::Reverse(t.1));
    timings.truncate(5);
    summary.slowest = timings;
    summary
}

/// Each example is a script of its own: a `replay(..)` it sets does not change the next ones.
fn forget_replay(state: &crate::host::HostState) {
    *state.replay.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn prelude_scope(engine: &Engine, script: &Path) -> Result<Scope<'static>, String> {
    let mut scope = Scope::new();
    scope.push_constant("params", Map::new());
    engine
        .run_with_scope(&mut scope, PRELUDE)
        .map_err(|e| Diagnostic::from_eval(&e, script).message)?;
    Ok(scope)
}

fn eval(engine: &Engine, base: &Scope<'static>, code: &str, label: &str) -> Result<(), String> {
    let mut scope = base.clone();
    let mut ast = engine
        .compile(code)
        .map_err(|e| Diagnostic::from_parse(&e, &PathBuf::from(label)).render())?;
    ast.set_source(label);
    engine.run_ast_with_scope(&mut scope, &ast).map_err(|e| {
        let mut d = Diagnostic::from_eval(&e, &PathBuf::from(label));
        // a failed run or deploy raises a report or an infrastructure failure: say what failed
        if let EvalAltResult::ErrorRuntime(value, _) = innermost(&e)
            && let Some(message) = crate::api::failure_message(value)
        {
            d.message = message;
        }
        d.render()
    })
}

fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

fn teardown(state: &Arc<HostState>, runtime: &tokio::runtime::Runtime) {
    let live: Vec<_> = std::mem::take(&mut *state.live.lock().expect("live testnets"));
    for net in live {
        net.teardown_blocking(runtime, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_and_tags_are_read() {
        let text = "intro\n```rhai\nlet a = 1;\n```\n```rust\nno\n```\n  ```rhai,no_run\n  plan.run();\n  ```\n```rhai,deploys\nx\n```";
        let ex = extract(text);
        assert_eq!(ex.len(), 3);
        assert_eq!(ex[0].code, "let a = 1;");
        assert_eq!(ex[0].mode, ExampleMode::Run);
        assert_eq!(ex[1].mode, ExampleMode::CheckOnly);
        assert_eq!(ex[1].code, "  plan.run();");
        assert_eq!(ex[2].mode, ExampleMode::Deploys);
        assert_eq!(
            plain_fences("a\n  ```rhai,no_run\nb"),
            "a\n  ```rhai\nb".to_string()
        );
    }
}
