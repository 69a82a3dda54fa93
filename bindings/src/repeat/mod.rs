//! Repetitions of one script (`run --repeat N`, `--until-fail N`, `--max-failure-rate P`,
//! `--jobs J`): the statistics printed and written to the JSON report (pass and flake rate, the
//! failure rate with its 95% Wilson interval overall and per expectation, the spread of the key
//! figures), the verdict against a highest acceptable failure rate, and the parallel runner.
//!
//! Parallel repetitions are child processes of this binary (`run FILE --seed S --json F`), not
//! threads: a repetition's testnet, Ctrl-C handling, descriptor limit, process-wide reporters and
//! terminal output are its own, a crash or a hang in one cannot corrupt the others, and each
//! reads its report back from the JSON file every `run` already writes. The child of seed S runs
//! exactly what `run FILE --seed S` runs, so its seed replays it.

use std::path::Path;
use std::sync::Arc;

use engine::report::RunReport;
use engine::report::recorder::RecordedRun;
use serde::Serialize;

use crate::cli::RunArgs;
use crate::exit;

mod children;
mod stats;

pub use children::{child_report_dir, run_children};
pub use stats::{ExpectationRate, RateDecision, RecoveryStats, RepeatStats, Spread};

/// One repetition of `--repeat`.
#[derive(Debug, Clone, Serialize)]
pub struct Repetition {
    /// The seed it ran with (`--seed` replays it).
    pub seed: u64,
    /// Its exit code.
    pub exit_code: i32,
    /// Its script error, rendered, if any.
    pub error: Option<String>,
    /// The ids of its runs (in `runs`).
    pub run_ids: Vec<String>,
}

/// `--until-fail N`: the first failing repetition, if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UntilFail {
    /// N.
    pub limit: u32,
    /// The seed of the first failing repetition (by repetition order), None when all passed.
    pub failed_seed: Option<u64>,
    /// Its exit code.
    pub exit_code: Option<i32>,
}

/// How the repetitions are to be made, from the `run` options.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatPolicy {
    /// How many repetitions at most.
    pub count: u32,
    /// `--until-fail`: stop at the first failure.
    pub until_fail: bool,
    /// `--max-failure-rate`.
    pub max_failure_rate: Option<f64>,
    /// `--jobs`.
    pub jobs: u32,
}

impl RepeatPolicy {
    /// The policy of these options.
    pub fn of(args: &RunArgs) -> Self {
        Self {
            count: args.until_fail.unwrap_or(args.repeat).max(1),
            until_fail: args.until_fail.is_some(),
            max_failure_rate: args.max_failure_rate,
            jobs: args.jobs.max(1),
        }
    }

    /// Whether this is a repetition (statistics, per-repetition report) rather than one run.
    pub fn repeating(&self) -> bool {
        self.count > 1 || self.until_fail || self.max_failure_rate.is_some()
    }

    /// Whether repetitions run as child processes.
    pub fn parallel(&self) -> bool {
        self.jobs > 1 && self.count > 1
    }

    /// The exit code of the whole repetition.
    pub fn exit_code(&self, repetitions: &[Repetition], stats: &RepeatStats) -> i32 {
        if repetitions.iter().any(|r| r.exit_code == exit::INTERRUPTED) {
            return exit::INTERRUPTED;
        }
        let passed = match &stats.decision {
            Some(d) => d.passed(),
            None => repetitions.iter().all(|r| r.exit_code == exit::PASSED),
        };
        if passed {
            exit::PASSED
        } else {
            exit::SCENARIO_FAILED
        }
    }
}

/// The `--until-fail` summary line.
pub fn render_until_fail(u: &UntilFail, made: usize, script: &Path) -> String {
    match u.failed_seed {
        Some(seed) => format!(
            "until-fail: the repetition with seed {seed} failed (exit {}); replay it with: nomos-script run {} --seed {seed}",
            u.exit_code.unwrap_or(exit::SCENARIO_FAILED),
            script.display()
        ),
        None => format!(
            "until-fail: no failure in {made} repetition{} (limit {})",
            if made == 1 { "" } else { "s" },
            u.limit
        ),
    }
}

/// What one repetition produced, however it ran.
#[derive(Debug)]
pub struct RepResult {
    /// Its place in the repetition order (0-based).
    pub index: u32,
    /// Its seed.
    pub seed: u64,
    /// Its exit code.
    pub code: i32,
    /// Its script error, rendered.
    pub error: Option<String>,
    /// Its runs.
    pub reports: Vec<Arc<RunReport>>,
    /// What the HTML recorder saw of its runs (children with `--report-dir` only).
    pub recorded: Vec<RecordedRun>,
}

/// Whether a repetition ends the whole thing early: an interrupt, or a script that fails before
/// running anything (nothing to learn from repeating it).
pub fn stops_everything(r: &RepResult) -> bool {
    r.code == exit::INTERRUPTED || (r.code == exit::SCRIPT_ERROR && r.reports.is_empty())
}

/// How a repetition ended, in one word: `passed`, `interrupted` or `failed`.
pub fn verdict_word(code: i32) -> &'static str {
    match code {
        exit::PASSED => "passed",
        exit::INTERRUPTED => "interrupted",
        _ => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn rep(code: i32) -> Repetition {
        Repetition {
            seed: 1,
            exit_code: code,
            error: None,
            run_ids: Vec::new(),
        }
    }

    #[test]
    fn max_failure_rate_decides_the_exit_code_from_the_upper_bound() {
        let policy = |p: Option<f64>| RepeatPolicy {
            count: 3,
            until_fail: false,
            max_failure_rate: p,
            jobs: 1,
        };
        let runs: Vec<Arc<RunReport>> = Vec::new();
        // 0/3 failed: upper 56.1%
        let all_pass = [rep(0), rep(0), rep(0)];
        let stats = RepeatStats::of(&all_pass, &runs).judged_against(Some(0.6));
        assert_eq!(policy(Some(0.6)).exit_code(&all_pass, &stats), exit::PASSED);
        assert!(
            stats.render().contains(
                "max failure rate 60.0%: passed: the 95% upper bound 56.1% is below 60.0%"
            ),
            "{}",
            stats.render()
        );
        let stats = RepeatStats::of(&all_pass, &runs).judged_against(Some(0.05));
        assert_eq!(
            policy(Some(0.05)).exit_code(&all_pass, &stats),
            exit::SCENARIO_FAILED
        );
        assert!(
            stats.render().contains(
                "70 more runs (73 in all) with no failure would show it below (--repeat 73)"
            ),
            "{}",
            stats.render()
        );
        // one failure is tolerated by a rate, not without one
        let one_fails = [rep(0), rep(1), rep(0)];
        let stats = RepeatStats::of(&one_fails, &runs).judged_against(Some(0.95));
        assert_eq!(
            policy(Some(0.95)).exit_code(&one_fails, &stats),
            exit::PASSED
        );
        let stats = RepeatStats::of(&one_fails, &runs);
        assert_eq!(
            policy(None).exit_code(&one_fails, &stats),
            exit::SCENARIO_FAILED
        );
        // every run failing: the lower bound is above a small rate
        let all_fail = [rep(1), rep(1), rep(1)];
        let stats = RepeatStats::of(&all_fail, &runs).judged_against(Some(0.2));
        assert!(
            stats
                .render()
                .contains("failed: even the 95% lower bound 43.9% is above 20.0%"),
            "{}",
            stats.render()
        );
        // an interrupt wins over any verdict
        let interrupted = [rep(0), rep(exit::INTERRUPTED)];
        let stats = RepeatStats::of(&interrupted, &runs).judged_against(Some(0.99));
        assert_eq!(
            policy(Some(0.99)).exit_code(&interrupted, &stats),
            exit::INTERRUPTED
        );
    }

    #[test]
    fn until_fail_names_the_seed_and_the_replay() {
        let found = UntilFail {
            limit: 5,
            failed_seed: Some(11),
            exit_code: Some(1),
        };
        assert_eq!(
            render_until_fail(&found, 2, Path::new("s.rhai")),
            "until-fail: the repetition with seed 11 failed (exit 1); replay it with: nomos-script run s.rhai --seed 11"
        );
        let none = UntilFail {
            limit: 3,
            failed_seed: None,
            exit_code: None,
        };
        assert_eq!(
            render_until_fail(&none, 3, Path::new("s.rhai")),
            "until-fail: no failure in 3 repetitions (limit 3)"
        );
    }
}
