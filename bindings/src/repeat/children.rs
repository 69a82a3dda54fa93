//! `--jobs J`: repetitions as child processes of this binary (`run FILE --seed S --json F`),
//! `J` at a time, each read back from the JSON report it writes.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use engine::report::RunReport;
use engine::report::recorder::RecordedRun;
use serde::Deserialize;

use super::{RepResult, verdict_word};
use crate::cli::RunArgs;
use crate::exit;

/// The part of a child's JSON report the parent reads back.
#[derive(Deserialize)]
struct ChildReport {
    exit_code: i32,
    error: Option<String>,
    runs: Vec<RunReport>,
}

/// How often a child that could not start its nodes because another repetition took a port
/// between the pick and the bind ("Address already in use", exit 3) is started again.
const PORT_RACE_RETRIES: u32 = 2;

/// Runs the repetitions `seeds` as child processes, `jobs` at a time, handing each result to
/// `on_result` as it finishes (in completion order); `on_result` returns false to start no
/// further repetition (those running are let finish). `interrupted` is polled: once true, the
/// children are sent one SIGINT (they are in their own process groups, so a terminal's Ctrl-C
/// reaches only this process) and no other starts.
pub fn run_children(
    args: &RunArgs,
    seeds: &[u64],
    interrupted: &dyn Fn() -> bool,
    on_result: &mut dyn FnMut(RepResult) -> bool,
) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this binary to run repetitions with --jobs: {e}"))?;
    let scratch = tempfile::Builder::new()
        .prefix("repeat-jobs-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir for the repetitions' reports: {e}"))?;
    let mut pending: VecDeque<(u32, u32)> = (0..seeds.len())
        .map(|i| (u32::try_from(i).unwrap_or(u32::MAX), 0))
        .collect();
    let (tx, rx) = mpsc::channel::<(u32, u32, std::io::Result<std::process::Output>)>();
    let mut running: Vec<(u32, nix::unistd::Pid)> = Vec::new();
    let mut starting = true;
    let mut signalled = false;
    let total = seeds.len();
    loop {
        if interrupted() {
            starting = false;
            if !signalled {
                signalled = true;
                for (_, pid) in &running {
                    let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGINT);
                }
            }
        }
        while starting && running.len() < args.jobs as usize {
            let Some((index, attempt)) = pending.pop_front() else {
                break;
            };
            let seed = seeds[index as usize];
            let json = scratch.path().join(format!("seed-{seed}.json"));
            let mut cmd = child_command(&exe, args, seed, &json);
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    // the repetitions already running are let finish and are reported
                    let error =
                        format!("error: cannot start the repetition with seed {seed}: {e}\n");
                    eprint!("{error}");
                    starting = false;
                    on_result(RepResult {
                        index,
                        seed,
                        code: exit::INFRA_ERROR,
                        error: Some(error),
                        reports: Vec::new(),
                        recorded: Vec::new(),
                    });
                    break;
                }
            };
            eprintln!("repeat {}/{total}: seed {seed} started", index + 1);
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
            running.push((index, pid));
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send((index, attempt, child.wait_with_output()));
            });
        }
        if running.is_empty() {
            return Ok(());
        }
        let Ok((index, attempt, output)) = rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        running.retain(|(i, _)| *i != index);
        let seed = seeds[index as usize];
        let json = scratch.path().join(format!("seed-{seed}.json"));
        let result = child_result(index, seed, &json, args, output);
        let (result, stderr) = result;
        if result.code == exit::INFRA_ERROR
            && stderr.contains("Address already in use")
            && attempt < PORT_RACE_RETRIES
            && starting
        {
            eprintln!(
                "repeat {}/{total}: seed {seed} could not bind a node port another repetition took; starting it again",
                index + 1
            );
            pending.push_front((index, attempt + 1));
            continue;
        }
        if result.code != exit::PASSED {
            // its own terminal output: the failure, the log pointers, the kept run dir (not
            // the report file it wrote for this process to read)
            let scratch_line = format!("report written: {}", json.display());
            for line in stderr.lines().filter(|l| *l != scratch_line) {
                eprintln!("{line}");
            }
        }
        eprintln!(
            "repeat {}/{total}: seed {seed} {} (exit {})",
            index + 1,
            verdict_word(result.code),
            result.code
        );
        if !on_result(result) {
            starting = false;
        }
    }
}

/// `run FILE --seed S --json F` with this run's other options (not the repetition ones).
fn child_command(exe: &Path, args: &RunArgs, seed: u64, json: &Path) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(exe);
    cmd.arg("--node-kind")
        .arg(engine::nodekind::selected_kind_name())
        .arg("run")
        .arg(&args.file)
        .args(["--deployer", args.deployer.name()])
        .args(["--seed", &seed.to_string()])
        .arg("--json")
        .arg(json);
    for (key, value) in &args.set {
        cmd.arg("--set").arg(format!("{key}={value}"));
    }
    if args.keep {
        cmd.arg("--keep");
    }
    if args.strict {
        cmd.arg("--strict");
    }
    if let Some(dir) = &args.report_dir {
        cmd.arg("--report-dir").arg(child_report_dir(dir, seed));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Ctrl-C at a terminal reaches only the parent, which forwards exactly one SIGINT (a
        // second one would make a child quit without tearing its testnet down)
        .process_group(0);
    cmd
}

/// Where the child of `seed` writes its report dir: under the parent's, so the node files it
/// copies stay reachable from the merged index.
pub fn child_report_dir(report_dir: &Path, seed: u64) -> PathBuf {
    report_dir.join("repetitions").join(format!("seed-{seed}"))
}

/// The result of a finished child (and its stderr): its JSON report when it wrote one, else its
/// exit status and the end of its output.
fn child_result(
    index: u32,
    seed: u64,
    json: &Path,
    args: &RunArgs,
    output: std::io::Result<std::process::Output>,
) -> (RepResult, String) {
    let (status, stderr) = match output {
        Ok(out) => (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(e) => (
            None,
            format!("error: cannot wait for the repetition: {e}\n"),
        ),
    };
    let read = std::fs::read_to_string(json)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<ChildReport>(&t).map_err(|e| e.to_string()));
    let mut result = RepResult {
        index,
        seed,
        code: status.unwrap_or(exit::INFRA_ERROR),
        error: None,
        reports: Vec::new(),
        recorded: Vec::new(),
    };
    match read {
        Ok(report) => {
            result.code = report.exit_code;
            result.error = report.error;
            result.reports = report.runs.into_iter().map(Arc::new).collect();
        }
        Err(e) => {
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            result.error = Some(format!(
                "error: the repetition with seed {seed} exited {} without a readable report ({e}); its last output:\n{}\n",
                status.map_or_else(|| "by a signal".to_owned(), |c| c.to_string()),
                tail.join("\n")
            ));
            if result.code == exit::PASSED {
                result.code = exit::INFRA_ERROR;
            }
        }
    }
    if let Some(dir) = &args.report_dir {
        let sub = child_report_dir(dir, seed);
        let prefix = sub
            .strip_prefix(dir)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if let Ok(text) = std::fs::read_to_string(sub.join("recorded-runs.json"))
            && let Ok(mut runs) = serde_json::from_str::<Vec<RecordedRun>>(&text)
        {
            for run in &mut runs {
                for a in &mut run.artifacts {
                    a.path = format!("{prefix}/{}", a.path);
                }
            }
            result.recorded = runs;
        }
    }
    (result, stderr)
}
