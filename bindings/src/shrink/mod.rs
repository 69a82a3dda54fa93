//! `nomos-script shrink FILE --seed N`: from a failing seeded run to the smallest run that still
//! fails the same way.
//!
//! The original run is made once; its report carries the fault timeline its chaos workloads
//! planned, when it failed and what failed. The search then tries candidates, each a copy of
//! the scenario with a `replay(..)` header (its faults as an explicit schedule, the seed, the
//! node count, the run duration, judged only on the expectations that failed), run as a child
//! process `--runs` times at most (it stops once the majority is known). In order:
//! 1. the timeline cut where the run failed (what came after cannot have caused it);
//! 2. only the events that bear on the node the failure names;
//! 3. delta debugging over the events left ([`engine::shrink::ddmin`]);
//! 4. the events moved to the start of the run, and the run ended soon after the last;
//! 5. as few nodes as the events name.
//!
//! Each step prints a line; the smallest failing candidate is written as a runnable .rhai.

mod render;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use engine::chaos::plan::PlannedStep;
use engine::report::{Outcome, RunReport};
use engine::shrink as search;
use serde::Deserialize;

use crate::cli::ShrinkArgs;
use crate::exit;
pub use render::{Candidate, ms, replay_header, schedule_call};

/// How long a candidate runs past the end of its last fault event: time for what the faults did
/// to show (a node waits 4 s for a peer after a restart; convergence after a heal).
const SLACK: Duration = Duration::from_secs(8);

/// Where the first event of a moved timeline starts.
const LEAD: Duration = Duration::from_secs(2);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// A child run's JSON report, the part read back.
#[derive(Deserialize)]
struct ChildReport {
    exit_code: i32,
    error: Option<String>,
    runs: Vec<RunReport>,
}

/// What the original run failed on: a candidate fails "the same way" when one of these fails.
#[derive(Debug, Clone)]
struct Target {
    expectations: Vec<String>,
    workloads: Vec<String>,
}

impl Target {
    fn of(run: &RunReport) -> Self {
        Self {
            expectations: run
                .verdicts
                .iter()
                .filter(|v| !v.verdict.passed)
                .map(|v| v.name.clone())
                .collect(),
            workloads: run.workload_errors.iter().map(|w| w.name.clone()).collect(),
        }
    }

    fn hit<'a>(&self, run: &'a RunReport) -> Option<&'a str> {
        run.verdicts
            .iter()
            .find(|v| !v.verdict.passed && self.expectations.contains(&v.name))
            .map(|v| v.verdict.message.as_str())
            .or_else(|| {
                run.workload_errors
                    .iter()
                    .find(|w| self.workloads.contains(&w.name))
                    .map(|w| w.error.as_str())
            })
    }

    fn describe(&self) -> String {
        let mut all: Vec<String> = self.expectations.iter().map(|e| format!("`{e}`")).collect();
        all.extend(self.workloads.iter().map(|w| format!("workload `{w}`")));
        all.join(", ")
    }
}

/// The first failed run of a child's report.
fn failed_run(report: &ChildReport) -> Option<&RunReport> {
    report.runs.iter().find(|r| r.outcome == Outcome::Failed)
}

struct Shrinker<'a> {
    args: &'a ShrinkArgs,
    exe: PathBuf,
    source: String,
    work: tempfile::TempDir,
    target: Target,
    runs_made: u32,
    candidates: u32,
    cache: HashMap<String, bool>,
    /// The last failing run of the best candidate (its failure time and message).
    last_failure: Option<RunReport>,
}

/// What one candidate came to.
enum Trial {
    Fails,
    Passes,
    /// The budget of runs is spent, or Ctrl-C.
    Stopped,
}

impl Shrinker<'_> {
    fn run_child(&mut self, script: &Path, tag: &str) -> Result<ChildReport, String> {
        self.runs_made += 1;
        let json = self.work.path().join(format!("{tag}.json"));
        let log = self.work.path().join(format!("{tag}.log"));
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let dir = script_dir(&self.args.file);
        let mut path = std::env::split_paths(
            &std::env::var_os(crate::resolver::SCRIPT_PATH_ENV).unwrap_or_default(),
        )
        .collect::<Vec<_>>();
        path.insert(0, dir);
        let status = Command::new(&self.exe)
            .arg("--node-kind")
            .arg(engine::nodekind::selected_kind_name())
            .arg("run")
            .arg(script)
            .args(["--deployer", self.args.deployer.name()])
            .args(["--seed", &self.args.seed.to_string()])
            .arg("--json")
            .arg(&json)
            .args(
                self.args
                    .set
                    .iter()
                    .flat_map(|(k, v)| ["--set".to_owned(), format!("{k}={v}")]),
            )
            .env(
                crate::resolver::SCRIPT_PATH_ENV,
                std::env::join_paths(path).unwrap_or_default(),
            )
            // the run dirs failing candidates keep go with the work dir when the search ends
            .env("TMPDIR", self.work.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .status()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        let text = std::fs::read_to_string(&json).map_err(|_| {
            format!(
                "the run wrote no report (exit {}); its output: {}",
                status
                    .code()
                    .map_or("by signal".to_owned(), |c| c.to_string()),
                log.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("cannot read {}: {e}", json.display()))
    }

    /// Runs `cand` until the majority of `--runs` is known.
    fn trial(&mut self, what: &str, cand: &Candidate) -> Trial {
        let key = format!("{cand:?}");
        if let Some(&fails) = self.cache.get(&key) {
            return if fails { Trial::Fails } else { Trial::Passes };
        }
        self.candidates += 1;
        let n = self.candidates;
        let script = self.work.path().join(format!("candidate-{n}.rhai"));
        let text = render::script(
            &[format!("shrink candidate {n}: {what}")],
            cand,
            self.args.seed,
            &self.target.expectations,
            &self.args.file.display().to_string(),
            &self.source,
        );
        if let Err(e) = std::fs::write(&script, text) {
            eprintln!("shrink: cannot write {}: {e}", script.display());
            return Trial::Stopped;
        }
        let need = self.args.runs / 2 + 1;
        let (mut fails, mut passes) = (0, 0);
        let started = Instant::now();
        let mut last_failure = None;
        let mut note = String::new();
        while fails < need && passes <= self.args.runs - need {
            if INTERRUPTED.load(Ordering::SeqCst) || self.runs_made >= self.args.max_runs {
                return Trial::Stopped;
            }
            match self.run_child(&script, &format!("candidate-{n}-{}", fails + passes + 1)) {
                Ok(report) if report.exit_code == exit::INTERRUPTED => return Trial::Stopped,
                Ok(report) => match failed_run(&report).filter(|r| self.target.hit(r).is_some()) {
                    Some(run) => {
                        fails += 1;
                        last_failure = Some(run.clone());
                    }
                    None => {
                        passes += 1;
                        if report.exit_code != exit::PASSED {
                            note = format!(
                                " (exit {}: {})",
                                report.exit_code,
                                report
                                    .error
                                    .as_deref()
                                    .or_else(|| report
                                        .runs
                                        .iter()
                                        .flat_map(|r| &r.verdicts)
                                        .find(|v| !v.verdict.passed)
                                        .map(|v| v.verdict.message.as_str()))
                                    .map(|m| first_line(m, 120))
                                    .unwrap_or_default()
                            );
                        }
                    }
                },
                Err(e) => {
                    passes += 1;
                    note = format!(" ({})", first_line(&e, 160));
                }
            }
        }
        let failed = fails >= need;
        println!(
            "  {n:>2}. {what}: {} events, {} nodes, {}: {} ({fails} of {} runs failed, {:.0}s){note}",
            cand.steps.len(),
            cand.nodes,
            secs(cand.duration),
            if failed { "fails" } else { "passes" },
            fails + passes,
            started.elapsed().as_secs_f64()
        );
        self.cache.insert(key, failed);
        if failed {
            self.last_failure = last_failure;
            Trial::Fails
        } else {
            Trial::Passes
        }
    }
}

/// ` --set k=v` for each parameter the search was given.
fn set_args(args: &ShrinkArgs) -> String {
    args.set
        .iter()
        .map(|(k, v)| format!(" --set {k}={v}"))
        .collect()
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn first_line(s: &str, max: usize) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn script_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where the result goes: `--out`, or `FILE.shrunk.rhai` beside FILE.
fn out_path(args: &ShrinkArgs) -> PathBuf {
    args.out.clone().unwrap_or_else(|| {
        let stem = args
            .file
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
        script_dir(&args.file).join(format!("{stem}.shrunk.rhai"))
    })
}

/// Ctrl-C sets [`INTERRUPTED`] (the search stops after the run under way, which tears its
/// testnet down on the same signal: a handled signal is reset to its default in the children).
fn install_sigint() {
    let _ = std::thread::Builder::new()
        .name("shrink-sigint".into())
        .spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                while tokio::signal::ctrl_c().await.is_ok() {
                    INTERRUPTED.store(true, Ordering::SeqCst);
                }
            });
        });
}

/// Runs the command; the process exit code.
pub fn run(args: &ShrinkArgs) -> i32 {
    install_sigint();
    match shrink(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            exit::SCRIPT_ERROR
        }
    }
}

fn shrink(args: &ShrinkArgs) -> Result<i32, String> {
    let source = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("cannot read script {}: {e}", args.file.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    // not `nomos-script-*`: `gc` takes those for the run dirs of dead runs
    let work = tempfile::Builder::new()
        .prefix("nomos-shrink-")
        .tempdir()
        .map_err(|e| format!("cannot create a work dir: {e}"))?;
    let started = Instant::now();
    let mut sh = Shrinker {
        args,
        exe,
        source,
        work,
        target: Target {
            expectations: Vec::new(),
            workloads: Vec::new(),
        },
        runs_made: 0,
        candidates: 0,
        cache: HashMap::new(),
        last_failure: None,
    };
    println!(
        "shrink: running {} on seed {} (reruns per candidate: {})",
        args.file.display(),
        args.seed,
        args.runs
    );
    let original = sh.run_child(&args.file, "original")?;
    if original.exit_code == exit::INTERRUPTED {
        return Ok(exit::INTERRUPTED);
    }
    let Some(run) = failed_run(&original).cloned() else {
        if original.exit_code == exit::PASSED {
            println!(
                "nothing to shrink: {} passes on seed {}",
                args.file.display(),
                args.seed
            );
            return Ok(exit::PASSED);
        }
        return Err(format!(
            "{} did not fail as a scenario on seed {} (exit {}){}: shrink needs a run whose expectation or workload failed",
            args.file.display(),
            args.seed,
            original.exit_code,
            original
                .error
                .as_deref()
                .map(|e| format!(": {}", first_line(e, 200)))
                .unwrap_or_default()
        ));
    };
    sh.target = Target::of(&run);
    let message = sh
        .target
        .hit(&run)
        .map(|m| first_line(m, 200))
        .unwrap_or_default();
    let duration = run.duration.unwrap_or(run.timings.run);
    println!(
        "seed {} fails {} after {}: {message}",
        args.seed,
        sh.target.describe(),
        secs(run.failed_at.unwrap_or(duration))
    );
    let original_events = run.chaos_plan.len();
    println!(
        "its fault timeline: {original_events} events planned over {} on {} nodes",
        secs(duration),
        run.nodes
    );
    let first = Candidate {
        steps: run.chaos_plan.clone(),
        nodes: run.nodes,
        duration,
    };
    sh.last_failure = Some(run.clone());
    let best = search_from(&mut sh, first.clone(), &message);
    let stopped = INTERRUPTED.load(Ordering::SeqCst) || sh.runs_made >= args.max_runs;
    let out = out_path(args);
    let failure = sh
        .last_failure
        .as_ref()
        .and_then(|r| sh.target.hit(r))
        .map(|m| first_line(m, 300))
        .unwrap_or(message);
    let comment = vec![
        format!(
            "Shrunk by `nomos-script shrink {} --seed {} --runs {}`:",
            args.file.display(),
            args.seed,
            args.runs
        ),
        format!(
            "{original_events} fault events on {} nodes over {} became {} on {} nodes over {}, in {} runs.",
            first.nodes,
            secs(first.duration),
            best.steps.len(),
            best.nodes,
            secs(best.duration),
            sh.runs_made
        ),
        format!("It fails {}: {failure}", sh.target.describe()),
        format!(
            "Run it: nomos-script run {}{}",
            out.display(),
            set_args(args)
        ),
    ];
    let text = render::script(
        &comment,
        &best,
        args.seed,
        &sh.target.expectations,
        &args.file.display().to_string(),
        &sh.source,
    );
    std::fs::write(&out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!(
        "shrunk: {original_events} → {} fault events, {} → {} nodes, {} → {}; {} runs of {} candidates in {}{}",
        best.steps.len(),
        first.nodes,
        best.nodes,
        secs(first.duration),
        secs(best.duration),
        sh.runs_made,
        sh.candidates,
        secs(started.elapsed()),
        if stopped {
            " (stopped early: the smallest failing run found so far)"
        } else {
            ""
        }
    );
    for s in &best.steps {
        println!("  {}", schedule_call(s));
    }
    println!("wrote {}", out.display());
    if sh.source.contains("import ") && args.out.is_some() {
        println!(
            "note: the scenario imports modules; run the file from where their paths resolve (or set {})",
            crate::resolver::SCRIPT_PATH_ENV
        );
    }
    Ok(if INTERRUPTED.load(Ordering::SeqCst) {
        exit::INTERRUPTED
    } else {
        exit::PASSED
    })
}

/// The search (steps 1 to 5 of the module's doc); returns the smallest failing candidate.
fn search_from(sh: &mut Shrinker<'_>, first: Candidate, message: &str) -> Candidate {
    let mut best = first;
    // stopped early (budget, Ctrl-C): the smallest failing candidate so far
    let _ = search_steps(sh, &mut best, message);
    best
}

/// The budget of runs is spent, or Ctrl-C: the search ends with what it has.
struct Stopped;

impl Shrinker<'_> {
    /// Runs `cand` unless it is `best` already; it becomes `best` when it still fails.
    /// Whether it did.
    fn adopt(
        &mut self,
        what: &str,
        cand: Candidate,
        best: &mut Candidate,
    ) -> Result<bool, Stopped> {
        if cand == *best {
            return Ok(false);
        }
        match self.trial(what, &cand) {
            Trial::Fails => {
                *best = cand;
                Ok(true)
            }
            Trial::Passes => Ok(false),
            Trial::Stopped => Err(Stopped),
        }
    }
}

fn search_steps(sh: &mut Shrinker<'_>, best: &mut Candidate, message: &str) -> Result<(), Stopped> {
    // 1. what came after the failure cannot have caused it
    if let Some(t) = sh.last_failure.as_ref().and_then(|r| r.failed_at) {
        let cand = Candidate {
            steps: search::before(&best.steps, t),
            duration: (t + SLACK).min(best.duration),
            ..best.clone()
        };
        sh.adopt("cut where the run failed", cand, best)?;
    }
    // 2. the node the failure names
    let failing_node = search::node_named(message);
    if let Some(k) = failing_node {
        let steps: Vec<PlannedStep> = best
            .steps
            .iter()
            .filter(|s| search::bears_on(s, k))
            .cloned()
            .collect();
        if !steps.is_empty() {
            let cand = Candidate {
                steps,
                ..best.clone()
            };
            sh.adopt(&format!("only the events bearing on node-{k}"), cand, best)?;
        }
    }
    // 3. delta debugging
    if best.steps.len() >= 2 {
        let base = best.clone();
        let mut stopped = false;
        let kept = search::ddmin(base.steps.len(), |keep| {
            if stopped {
                return false;
            }
            let cand = Candidate {
                steps: keep.iter().map(|&i| base.steps[i].clone()).collect(),
                ..base.clone()
            };
            match sh.trial(
                &format!("ddmin keeps {} of {}", keep.len(), base.steps.len()),
                &cand,
            ) {
                Trial::Fails => true,
                Trial::Passes => false,
                Trial::Stopped => {
                    stopped = true;
                    false
                }
            }
        });
        best.steps = kept.iter().map(|&i| base.steps[i].clone()).collect();
        if stopped {
            return Err(Stopped);
        }
    }
    // 4. earlier and shorter; else only shorter, keeping the times
    let moved = search::shifted(&best.steps, LEAD);
    let ended_soon = |steps: &[PlannedStep], best: &Candidate| {
        let end = steps.iter().map(search::end_of).max().unwrap_or_default();
        (end + SLACK).min(best.duration)
    };
    let cand = Candidate {
        duration: ended_soon(&moved, best),
        steps: moved,
        ..best.clone()
    };
    if !sh.adopt("moved to the start and ended soon after", cand, best)? {
        let shorter = Candidate {
            duration: ended_soon(&best.steps, best),
            ..best.clone()
        };
        sh.adopt("ended soon after the last event", shorter, best)?;
    }
    // 5. fewer nodes
    let n = search::fewest_nodes(&best.steps, failing_node);
    if n < best.nodes {
        let cand = Candidate {
            steps: search::within(&best.steps, n),
            nodes: n,
            ..best.clone()
        };
        sh.adopt(&format!("{n} nodes"), cand, best)?;
    }
    Ok(())
}
