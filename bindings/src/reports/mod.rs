//! What `run` leaves behind: JSON (every run report the script produced, with the exit code),
//! JUnit XML (one testsuite per run, one testcase per expectation and per failed workload) for CI,
//! the HTML report directory (`--report-dir`), the Prometheus file_sd target file, pointers to the
//! logs of the nodes a failure names, and the statistics of `--repeat N`.

mod files;
mod hints;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::metrics::FileSdReporter;
use engine::report::recorder::{RecordedRun, Recorder};
use engine::report::{Reporter, RunReport};

use crate::cli::RunArgs;
use crate::exit;
use crate::host::{CheckPolicy, HostSettings, Mode, ScriptHost};
use crate::repeat::{RepResult, RepeatPolicy, UntilFail};
pub use crate::repeat::{RepeatStats, Repetition, Spread};
pub use files::{ScriptReport, junit, write_json, write_junit};
pub use hints::log_hints;

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
                reporters: crate::host::Reporters(outputs.reporters()),
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
