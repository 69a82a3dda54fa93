//! What `run` leaves behind: JSON (every run report the script produced, with the exit code),
//! JUnit XML (one testsuite per run, one testcase per expectation and per failed workload) for CI,
//! the HTML report directory (`--report-dir`), the Prometheus file_sd target file, pointers to the
//! logs of the nodes a failure names, and the statistics of `--repeat N`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use engine::metrics::FileSdReporter;
use engine::report::recorder::{RecordedRun, Recorder};
use engine::report::{Outcome, Reporter, RunReport};
use serde::Serialize;

use crate::cli::RunArgs;
use crate::exit;
use crate::host::{CheckPolicy, HostSettings, Mode, ScriptHost};
use crate::repeat::{RepResult, RepeatPolicy, UntilFail};
pub use crate::repeat::{RepeatStats, Repetition, Spread};

/// What the files describe: the script, its exit code, its error (if any) and its runs.
#[derive(Debug, Serialize)]
pub struct ScriptReport<'a> {
    /// The script file.
    pub script: String,
    /// Process exit code.
    pub exit_code: i32,
    /// The script error, rendered, when the script itself failed.
    pub error: Option<String>,
    /// Every run, in order (of every repetition with `--repeat`).
    #[serde(serialize_with = "serialize_runs")]
    pub runs: &'a [Arc<RunReport>],
    /// With `--repeat`: each repetition (seed, exit code, error, its runs' ids).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub repetitions: &'a [Repetition],
    /// With `--repeat`: pass rate, flake rate and the spread of the key figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<RepeatStats>,
}

/// Reporters every run of this process gets besides the terminal one (the HTML recorder, the
/// file_sd writer). Process-wide because one `nomos-script run` executes one script command, and
/// the runs are started deep inside script bindings that only see the host state.
static RUN_REPORTERS: Mutex<Vec<Arc<dyn Reporter>>> = Mutex::new(Vec::new());

/// Sets the extra reporters of every run started from now on.
pub fn set_run_reporters(reporters: Vec<Arc<dyn Reporter>>) {
    *RUN_REPORTERS.lock().unwrap_or_else(|e| e.into_inner()) = reporters;
}

/// The extra reporters of a run about to start.
pub fn run_reporters() -> Vec<Arc<dyn Reporter>> {
    RUN_REPORTERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The HTML recorder and the file_sd writer of one `run` command.
struct RunOutputs {
    recorder: Option<Arc<Recorder>>,
    file_sd: Option<Arc<FileSdReporter>>,
}

impl RunOutputs {
    fn new(report_dir: Option<&Path>) -> Self {
        Self {
            recorder: report_dir.map(|d| Arc::new(Recorder::new().with_artifacts_dir(d))),
            file_sd: FileSdReporter::from_env().map(Arc::new),
        }
    }

    fn reporters(&self) -> Vec<Arc<dyn Reporter>> {
        let mut v: Vec<Arc<dyn Reporter>> = Vec::new();
        if let Some(r) = &self.recorder {
            v.push(r.clone());
        }
        if let Some(f) = &self.file_sd {
            v.push(f.clone());
        }
        v
    }
}

/// `nomos-script run FILE`: runs the script (`--repeat` / `--until-fail` times, `--jobs` at a
/// time), prints failures with pointers to the logs of the nodes they name, writes the report
/// files; returns the exit code.
pub fn run_command(host: &ScriptHost, args: &RunArgs) -> i32 {
    let policy = RepeatPolicy::of(args);
    if policy.parallel() && args.attach_endpoints.is_some() {
        eprintln!(
            "error: --jobs {} with --attach-endpoints: parallel repetitions would share one testnet and its wallets; use --jobs 1",
            policy.jobs
        );
        return exit::SCRIPT_ERROR;
    }
    let external = match &args.attach_endpoints {
        Some(path) => match engine::deploy::external::ExternalDeployer::from_file(path) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::SCRIPT_ERROR;
            }
        },
        None => None,
    };
    let outputs = RunOutputs::new(args.report_dir.as_deref().filter(|_| !policy.parallel()));
    set_run_reporters(outputs.reporters());
    let repeating = policy.repeating();
    let base_seed = match (args.seed, repeating) {
        (seed, false) => seed,
        (Some(seed), true) => Some(seed),
        (None, true) => Some(rand::random::<u64>() % 1_000_000_000),
    };
    let mut results: Vec<RepResult> = Vec::new();
    let mut sd_errors_shown = 0;
    let total = policy.count;
    // what each finished repetition tells: whether to start another
    let mut on_result = |result: RepResult| -> bool {
        let stop = crate::repeat::stops_everything(&result)
            || (policy.until_fail && result.code != exit::PASSED);
        results.push(result);
        if stop && results.len() < total as usize {
            let last = results.last().expect("just pushed");
            eprintln!(
                "repeat: starting no further repetition after seed {} (exit {}{})",
                last.seed,
                last.code,
                if policy.until_fail && last.code != exit::INTERRUPTED {
                    ", --until-fail"
                } else {
                    ""
                }
            );
        }
        !stop
    };
    if policy.parallel() {
        let seeds: Vec<u64> = (0..total)
            .map(|i| base_seed.unwrap_or_default().wrapping_add(u64::from(i)))
            .collect();
        let interrupted = || host.is_interrupted();
        if let Err(e) = crate::repeat::run_children(args, &seeds, &interrupted, &mut on_result) {
            eprintln!("error: {e}");
            if results.is_empty() {
                return exit::INFRA_ERROR;
            }
        }
    } else {
        for i in 0..total {
            let seed = base_seed.map(|s| s.wrapping_add(u64::from(i)));
            if repeating {
                eprintln!(
                    "repeat {}/{total}: seed {}",
                    i + 1,
                    seed.unwrap_or_default()
                );
            }
            let settings = HostSettings {
                mode: Mode::Run,
                deployer: args.deployer,
                seed,
                keep: args.keep,
                params: args.set.clone(),
                external: external.clone(),
                checks: if args.strict {
                    CheckPolicy::Strict
                } else {
                    CheckPolicy::Warn
                },
            };
            let outcome = host.execute(&args.file, settings);
            if let Some(err) = &outcome.error {
                eprint!("{err}");
            }
            for report in &outcome.reports {
                for hint in log_hints(report) {
                    eprintln!("{hint}");
                }
            }
            if let Some(f) = &outputs.file_sd {
                // the reporter keeps every error: print the new ones
                let errors = f.errors();
                for e in errors.iter().skip(sd_errors_shown) {
                    eprintln!("warning: prometheus file_sd (the run goes on unscraped): {e}");
                }
                sd_errors_shown = errors.len();
            }
            if repeating {
                eprintln!(
                    "repeat {}/{total}: {} (exit {})",
                    i + 1,
                    crate::repeat::verdict_word(outcome.code),
                    outcome.code
                );
            }
            let result = RepResult {
                index: i,
                seed: outcome
                    .reports
                    .first()
                    .map_or(seed.unwrap_or_default(), |r| r.seed),
                code: outcome.code,
                error: outcome.error,
                reports: outcome.reports,
                recorded: Vec::new(),
            };
            if !on_result(result) {
                break;
            }
        }
    }
    set_run_reporters(Vec::new());
    results.sort_by_key(|r| r.index);

    let mut runs: Vec<Arc<RunReport>> = Vec::new();
    let mut repetitions = Vec::new();
    let mut recorded = Vec::new();
    for r in &results {
        let first_run = runs.len();
        runs.extend(r.reports.iter().cloned());
        recorded.extend(r.recorded.iter().cloned());
        repetitions.push(Repetition {
            seed: r.seed,
            exit_code: r.code,
            error: r.error.clone(),
            run_ids: runs[first_run..].iter().map(|r| r.run_id.clone()).collect(),
        });
    }
    let (code, stats) = if repeating {
        let mut stats =
            RepeatStats::of(&repetitions, &runs).judged_against(policy.max_failure_rate);
        if policy.until_fail {
            let failed = repetitions.iter().find(|r| r.exit_code != exit::PASSED);
            stats.until_fail = Some(UntilFail {
                limit: total,
                failed_seed: failed.map(|r| r.seed),
                exit_code: failed.map(|r| r.exit_code),
            });
        }
        print!("{}", stats.render());
        if let Some(u) = &stats.until_fail {
            println!(
                "{}",
                crate::repeat::render_until_fail(u, repetitions.len(), &args.file)
            );
        }
        (policy.exit_code(&repetitions, &stats), Some(stats))
    } else {
        (results.first().map_or(exit::PASSED, |r| r.code), None)
    };
    let report = ScriptReport {
        script: args.file.display().to_string(),
        exit_code: code,
        error: if repeating {
            None
        } else {
            results.first().and_then(|r| r.error.clone())
        },
        runs: &runs,
        repetitions: if repeating { &repetitions } else { &[] },
        repeat: stats,
    };
    write_outputs(&report, args, &outputs, &recorded)
}

/// Writes the report files and the HTML report; a file that cannot be written turns a pass into
/// an infrastructure error (CI would otherwise read a stale or missing report).
fn write_outputs(
    report: &ScriptReport<'_>,
    args: &RunArgs,
    outputs: &RunOutputs,
    child_runs: &[RecordedRun],
) -> i32 {
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    if let Some(dir) = &args.report_dir {
        files.push((dir.join("report.json"), false));
        files.push((dir.join("junit.xml"), true));
    }
    if let Some(p) = &args.json {
        files.push((p.clone(), false));
    }
    if let Some(p) = &args.junit {
        files.push((p.clone(), true));
    }
    let mut code = report.exit_code;
    let mut fail = |e: String| {
        eprintln!("error: {e}");
        if code == exit::PASSED {
            code = exit::INFRA_ERROR;
        }
    };
    for (path, junit) in &files {
        let written = if *junit {
            write_junit(path, report)
        } else {
            write_json(path, report)
        };
        match written {
            Ok(()) => eprintln!("report written: {}", path.display()),
            Err(e) => fail(e),
        }
    }
    if let Some(dir) = &args.report_dir {
        // after report.json and junit.xml: index.html links them only when present; with
        // --jobs the runs are those the children recorded in their own report dirs
        let runs = match &outputs.recorder {
            Some(rec) => rec.runs(),
            None => child_runs.to_vec(),
        };
        match engine::report::html::write_runs_report_dir(&runs, dir) {
            Ok(()) => eprintln!("report written: {}", dir.join("index.html").display()),
            Err(e) => fail(e),
        }
    }
    code
}

/// Lines pointing at the log files of the nodes a failed run's messages name (`node-2`), or at
/// every node's log dir when they name none. Empty for a passed run or a run dir that is gone.
pub fn log_hints(report: &RunReport) -> Vec<String> {
    let Some(run_dir) = report
        .run_dir
        .as_ref()
        .filter(|d| !report.passed() && report.kept && d.is_dir())
    else {
        return Vec::new();
    };
    let nodes = failing_nodes(report);
    if nodes.is_empty() {
        return vec![format!(
            "  node logs: {}",
            run_dir.join("node-<i>").join("logs").display()
        )];
    }
    nodes
        .into_iter()
        .map(|i| match node_log(run_dir, i) {
            Some(path) => format!("  node-{i} log: {}", path.display()),
            None => format!(
                "  node-{i} log: {} (no log file found)",
                run_dir.join(format!("node-{i}")).display()
            ),
        })
        .collect()
}

/// Indexes of the nodes (`node-<i>`, in range) named by a run's failure messages, in order.
fn failing_nodes(report: &RunReport) -> Vec<usize> {
    let mut text = String::new();
    for v in report.verdicts.iter().filter(|v| !v.verdict.passed) {
        text.push_str(&v.verdict.message);
        text.push('\n');
    }
    for w in &report.workload_errors {
        text.push_str(&w.error);
        text.push('\n');
    }
    if let Outcome::Error(e) = &report.outcome {
        text.push_str(e);
    }
    let mut found = Vec::new();
    for (at, _) in text.match_indices("node-") {
        let digits: String = text[at + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(i) = digits.parse::<usize>()
            && i < report.nodes.max(report.final_heights.len())
            && !found.contains(&i)
        {
            found.push(i);
        }
    }
    found
}

/// The node's own newest log file, else its captured output.
fn node_log(run_dir: &Path, i: usize) -> Option<PathBuf> {
    let dir = run_dir.join(format!("node-{i}"));
    let newest = std::fs::read_dir(dir.join("logs"))
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path());
    newest.or_else(|| Some(dir.join("output.log")).filter(|p| p.is_file()))
}

fn serialize_runs<S: serde::Serializer>(runs: &&[Arc<RunReport>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(runs.iter().map(|r| &**r))
}

/// Writes the JSON report.
pub fn write_json(path: &Path, report: &ScriptReport<'_>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| format!("cannot serialise the report: {e}"))?;
    write(path, &text)
}

/// Writes the JUnit XML report.
pub fn write_junit(path: &Path, report: &ScriptReport<'_>) -> Result<(), String> {
    write(path, &junit(report))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The JUnit XML text.
pub fn junit(report: &ScriptReport<'_>) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    let class = xml(&report.script);
    for run in report.runs {
        let mut cases = String::new();
        let (mut t, mut f, mut e) = (0, 0, 0);
        let logs: String = log_hints(run)
            .iter()
            .map(|h| format!("\n{}", h.trim()))
            .collect();
        for v in &run.verdicts {
            t += 1;
            let _ = write!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{}\"",
                xml(&v.name)
            );
            if v.verdict.passed {
                let _ = writeln!(cases, "/>");
            } else {
                f += 1;
                let _ = writeln!(
                    cases,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml(&v.verdict.message),
                    xml(&format!("{}{logs}", v.verdict.evidence))
                );
            }
        }
        for w in &run.workload_errors {
            t += 1;
            f += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"workload {}\">\n      <failure message=\"{}\"/>\n    </testcase>",
                xml(&w.name),
                xml(&w.error)
            );
        }
        match &run.outcome {
            Outcome::Error(message) => {
                t += 1;
                e += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"infrastructure\">\n      <error message=\"{}\"/>\n    </testcase>",
                    xml(message)
                );
            }
            Outcome::Interrupted => {
                t += 1;
                e += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"run\">\n      <error message=\"interrupted\"/>\n    </testcase>"
                );
            }
            Outcome::Passed | Outcome::Failed => {}
        }
        let _ = writeln!(
            suites,
            "  <testsuite name=\"run {}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" time=\"{:.3}\">\n    <properties>\n      <property name=\"seed\" value=\"{}\"/>\n      <property name=\"deployer\" value=\"{}\"/>\n      <property name=\"nodes\" value=\"{}\"/>\n    </properties>\n{cases}  </testsuite>",
            xml(&run.run_id),
            run.timings.total.as_secs_f64(),
            run.seed,
            xml(&run.deployer),
            run.nodes,
        );
        tests += t;
        failures += f;
        errors += e;
    }
    // a failed run is already a failing testsuite; only a script error needs its own
    let script_errors: Vec<(String, &String)> = if report.repetitions.is_empty() {
        report
            .error
            .iter()
            .filter(|_| report.exit_code == exit::SCRIPT_ERROR || report.runs.is_empty())
            .map(|e| ("script".to_string(), e))
            .collect()
    } else {
        report
            .repetitions
            .iter()
            .filter(|r| r.exit_code == exit::SCRIPT_ERROR || r.run_ids.is_empty())
            .filter_map(|r| {
                r.error
                    .as_ref()
                    .map(|e| (format!("script (seed {})", r.seed), e))
            })
            .collect()
    };
    for (name, error) in script_errors {
        tests += 1;
        errors += 1;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{name}\" tests=\"1\" failures=\"0\" errors=\"1\">\n    <testcase classname=\"{class}\" name=\"script\">\n      <error message=\"{}\"/>\n    </testcase>\n  </testsuite>",
            xml(error.lines().next().unwrap_or_default())
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{class}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n{suites}</testsuites>\n"
    )
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::expectation::Verdict;
    use engine::report::NamedVerdict;

    #[test]
    fn failing_nodes_are_read_from_the_failure_messages() {
        let mut run = RunReport::empty(7, Outcome::Failed);
        run.nodes = 3;
        run.verdicts = vec![
            NamedVerdict {
                name: "a".into(),
                verdict: Verdict::fail(
                    "node-2 height 3 < target 10; node=\"node-0\"; node-7 and node-",
                    serde_json::Value::Null,
                ),
            },
            NamedVerdict {
                name: "b".into(),
                verdict: Verdict::pass("node-1 fine", serde_json::Value::Null),
            },
        ];
        assert_eq!(failing_nodes(&run), [2, 0]);
        // no run dir: no pointers
        assert!(log_hints(&run).is_empty());
    }

    #[test]
    fn junit_counts_failures_and_escapes() {
        let mut run = RunReport::empty(7, Outcome::Failed);
        run.run_id = "r1".into();
        run.verdicts = vec![
            NamedVerdict {
                name: "consensus_liveness".into(),
                verdict: Verdict::fail("node-2 height 3 < target 10 <&>", serde_json::json!({})),
            },
            NamedVerdict {
                name: "tx_inclusion".into(),
                verdict: Verdict::pass("ok", serde_json::Value::Null),
            },
        ];
        let runs = vec![Arc::new(run)];
        let text = junit(&ScriptReport {
            script: "s.rhai".into(),
            exit_code: 1,
            error: None,
            runs: &runs,
            repetitions: &[],
            repeat: None,
        });
        assert!(
            text.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
            "{text}"
        );
        assert!(
            text.contains("node-2 height 3 &lt; target 10 &lt;&amp;&gt;"),
            "{text}"
        );
        assert!(
            text.contains("<property name=\"seed\" value=\"7\"/>"),
            "{text}"
        );
    }
}
