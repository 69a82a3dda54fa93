//! The statistics of a repetition: pass, flake and failure rates (with the 95% Wilson interval,
//! overall and per expectation), the spread of the key figures, the pooled recovery figures and
//! the verdict against `--max-failure-rate`.

use std::fmt::Write as _;
use std::sync::Arc;

use engine::recovery::Quantiles;
use engine::report::RunReport;
use engine::report::stats::{FailureRate, RateVerdict, pct};
use serde::Serialize;

use super::{Repetition, UntilFail};
use crate::exit;

/// min/median/max of one figure over the runs that have it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
    /// How many runs had the figure.
    pub samples: usize,
}

impl Spread {
    /// The spread of `values` (None when empty).
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(Self {
            min: values[0],
            median: f64::midpoint(values[(values.len() - 1) / 2], values[values.len() / 2]),
            max: values[values.len() - 1],
            samples: values.len(),
        })
    }
}

/// The failure rate of one expectation, over the runs that judged it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationRate {
    /// The expectation's name.
    pub name: String,
    /// Failed verdicts out of the runs that judged it, with the 95% interval.
    pub failure_rate: FailureRate,
}

/// `--max-failure-rate P`: the highest acceptable rate and what the interval says about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateDecision {
    /// P.
    pub max_failure_rate: f64,
    /// Below (pass), above, or undecided with the runs that would settle it.
    #[serde(flatten)]
    pub verdict: RateVerdict,
}

impl RateDecision {
    /// Whether the repetition passes.
    pub fn passed(&self) -> bool {
        self.verdict == RateVerdict::Below
    }

    /// The line printed after the statistics.
    pub fn render(&self, rate: &FailureRate) -> String {
        let p = pct(self.max_failure_rate);
        match self.verdict {
            RateVerdict::Below => format!(
                "max failure rate {p}: passed: the 95% upper bound {} is below {p} ({})",
                pct(rate.high),
                rate.render()
            ),
            RateVerdict::Above => format!(
                "max failure rate {p}: failed: even the 95% lower bound {} is above {p} ({})",
                pct(rate.low),
                rate.render()
            ),
            RateVerdict::Undecided {
                runs_needed: Some(n),
            } => {
                let more = n.saturating_sub(rate.runs);
                let how = if rate.failures == 0 {
                    "with no failure".to_owned()
                } else {
                    format!("failing at the observed {}", pct(rate.rate))
                };
                format!(
                    "max failure rate {p}: failed: the 95% upper bound {} is not below {p} ({}); \
                     {more} more runs ({n} in all) {how} would show it below (--repeat {n})",
                    pct(rate.high),
                    rate.render()
                )
            }
            RateVerdict::Undecided { runs_needed: None } => format!(
                "max failure rate {p}: failed: the observed rate {} is not below {p}, so no \
                 number of further runs at that rate would bring the upper bound below it ({})",
                pct(rate.rate),
                rate.render()
            ),
        }
    }
}

/// What `--repeat N` prints and writes into the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct RepeatStats {
    /// Repetitions made (fewer than asked when interrupted or stopped by a script error).
    pub repetitions: usize,
    /// Repetitions that passed.
    pub passed: usize,
    /// passed / repetitions.
    pub pass_rate: f64,
    /// Share of failed repetitions when the outcome varied with the seed; 0 when every
    /// repetition ended the same way (all failing is a steady failure, not a flake).
    pub flake_rate: f64,
    /// Failed repetitions (any exit but 0) out of all, with the 95% Wilson interval.
    pub failure_rate: FailureRate,
    /// Per expectation (by name, in order of first appearance), over the runs that judged it.
    pub expectations: Vec<ExpectationRate>,
    /// With `--max-failure-rate`: the verdict from the interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<RateDecision>,
    /// With `--until-fail`: the first failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_fail: Option<UntilFail>,
    /// Whole run time (deploy to teardown), seconds, per run.
    pub duration_s: Option<Spread>,
    /// Highest final height over the nodes, per run.
    pub final_height: Option<Spread>,
    /// Transactions included / submitted, percent, per run that submitted any.
    pub txs_included_pct: Option<Spread>,
    /// Median submission-to-inclusion latency, ms, per run that included any.
    pub inclusion_latency_median_ms: Option<Spread>,
    /// Recovery over every run's records, pooled: revert to convergence (ms), fork depth at
    /// the revert (blocks), restart to catch-up (ms), submission to inclusion (ms).
    pub recovery: RecoveryStats,
}

/// The recovery figures of all repetitions, pooled.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecoveryStats {
    /// Revert to convergence, ms, over the reverts that converged.
    pub heal_to_convergence_ms: Option<Quantiles>,
    /// Reverts after which the run ended before convergence.
    pub heals_not_converged: usize,
    /// Fork depth at the revert, blocks.
    pub fork_depth: Option<Quantiles>,
    /// Restart (start, resume) to catch-up, ms, over the nodes that caught up.
    pub catch_up_ms: Option<Quantiles>,
    /// Nodes started again that had not caught up when the run ended.
    pub catch_ups_missed: usize,
    /// Submission to inclusion, ms, over every included transaction.
    pub inclusion_latency_ms: Option<Quantiles>,
}

impl RecoveryStats {
    /// Pooled over these runs.
    #[expect(
        clippy::cast_precision_loss,
        reason = "ms and blocks are far below 2^52"
    )]
    pub fn of(runs: &[Arc<RunReport>]) -> Self {
        let heals = || runs.iter().flat_map(|r| &r.recovery.heals);
        let catch_ups = || runs.iter().flat_map(|r| &r.recovery.catch_ups);
        Self {
            heal_to_convergence_ms: Quantiles::of(
                heals()
                    .filter_map(|h| h.converged_after_ms)
                    .map(|v| v as f64)
                    .collect(),
            ),
            heals_not_converged: heals().filter(|h| h.converged_after_ms.is_none()).count(),
            fork_depth: Quantiles::of(
                heals()
                    .filter_map(|h| h.fork_depth)
                    .map(|v| v as f64)
                    .collect(),
            ),
            catch_up_ms: Quantiles::of(
                catch_ups()
                    .filter_map(|c| c.caught_up_after_ms)
                    .map(|v| v as f64)
                    .collect(),
            ),
            catch_ups_missed: catch_ups()
                .filter(|c| c.caught_up_after_ms.is_none())
                .count(),
            inclusion_latency_ms: Quantiles::of(
                runs.iter()
                    .flat_map(|r| &r.inclusion_latencies_ms)
                    .map(|&v| v as f64)
                    .collect(),
            ),
        }
    }

    /// One line per figure, `n/a` where no run had it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rows = [
            (
                "heal to convergence",
                &self.heal_to_convergence_ms,
                "ms",
                (self.heals_not_converged > 0)
                    .then(|| format!(", {} not converged", self.heals_not_converged)),
            ),
            ("fork depth at heal", &self.fork_depth, "", None),
            (
                "restart catch-up",
                &self.catch_up_ms,
                "ms",
                (self.catch_ups_missed > 0)
                    .then(|| format!(", {} not caught up", self.catch_ups_missed)),
            ),
            ("inclusion latency", &self.inclusion_latency_ms, "ms", None),
        ];
        for (name, q, unit, missing) in rows {
            let missing = missing.unwrap_or_default();
            match q {
                Some(q) => {
                    let _ = writeln!(out, "  {name:<25} {}{missing}", q.render(unit));
                }
                None if missing.is_empty() => {
                    let _ = writeln!(out, "  {name:<25} n/a");
                }
                None => {
                    let _ = writeln!(out, "  {name:<25} n/a{missing}");
                }
            }
        }
        out
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "counts and ms are far below 2^52"
)]
impl RepeatStats {
    /// Statistics over the repetitions and all their runs.
    pub fn of(repetitions: &[Repetition], runs: &[Arc<RunReport>]) -> Self {
        let n = repetitions.len();
        let passed = repetitions
            .iter()
            .filter(|r| r.exit_code == exit::PASSED)
            .count();
        let ratio = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        let flaky = passed > 0 && passed < n;
        Self {
            repetitions: n,
            passed,
            pass_rate: ratio(passed),
            flake_rate: if flaky { ratio(n - passed) } else { 0.0 },
            failure_rate: FailureRate::of((n - passed) as u64, n as u64),
            expectations: expectation_rates(runs),
            decision: None,
            until_fail: None,
            duration_s: Spread::of(runs.iter().map(|r| r.timings.total.as_secs_f64()).collect()),
            final_height: Spread::of(
                runs.iter()
                    .filter_map(|r| r.final_heights.iter().flatten().max())
                    .map(|&h| h as f64)
                    .collect(),
            ),
            txs_included_pct: Spread::of(
                runs.iter()
                    .filter(|r| r.txs_submitted > 0)
                    .map(|r| 100.0 * r.txs_included as f64 / r.txs_submitted as f64)
                    .collect(),
            ),
            inclusion_latency_median_ms: Spread::of(
                runs.iter()
                    .filter_map(|r| r.inclusion_latency.as_ref())
                    .map(|l| l.median_ms as f64)
                    .collect(),
            ),
            recovery: RecoveryStats::of(runs),
        }
    }

    /// With the verdict of `--max-failure-rate P`.
    pub fn judged_against(mut self, max_failure_rate: Option<f64>) -> Self {
        self.decision = max_failure_rate.map(|p| RateDecision {
            max_failure_rate: p,
            verdict: self.failure_rate.judge(p),
        });
        self
    }

    /// The lines printed after the last repetition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "repeat: {}/{} passed (pass rate {:.0}%, flake rate {:.0}%){}",
            self.passed,
            self.repetitions,
            self.pass_rate * 100.0,
            self.flake_rate * 100.0,
            if self.passed == 0 && self.repetitions > 1 {
                ": every repetition failed, a steady failure rather than a flake"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  {:<25} {}",
            "failure rate",
            self.failure_rate.render()
        );
        for e in &self.expectations {
            let _ = writeln!(
                out,
                "  {:<25} {}",
                format!("  {}", e.name),
                e.failure_rate.render()
            );
        }
        let rows: [(&str, &Option<Spread>, &str, usize); 4] = [
            ("run duration", &self.duration_s, "s", 1),
            ("final height", &self.final_height, "", 0),
            ("txs included", &self.txs_included_pct, "%", 1),
            (
                "inclusion latency median",
                &self.inclusion_latency_median_ms,
                "ms",
                0,
            ),
        ];
        for (name, spread, unit, digits) in rows {
            match spread {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "  {name:<25} min {:.digits$}{unit}  median {:.digits$}{unit}  max {:.digits$}{unit}  ({} runs)",
                        s.min, s.median, s.max, s.samples
                    );
                }
                None => {
                    let _ = writeln!(out, "  {name:<25} n/a");
                }
            }
        }
        out.push_str(&self.recovery.render());
        if let Some(d) = &self.decision {
            let _ = writeln!(out, "{}", d.render(&self.failure_rate));
        }
        out
    }
}

/// Failed verdicts per expectation name, over the runs that judged it.
fn expectation_rates(runs: &[Arc<RunReport>]) -> Vec<ExpectationRate> {
    let mut counts: Vec<(String, u64, u64)> = Vec::new();
    for v in runs.iter().flat_map(|r| &r.verdicts) {
        let i = counts
            .iter()
            .position(|(name, ..)| *name == v.name)
            .unwrap_or_else(|| {
                counts.push((v.name.clone(), 0, 0));
                counts.len() - 1
            });
        counts[i].2 += 1;
        if !v.verdict.passed {
            counts[i].1 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(name, failures, judged)| ExpectationRate {
            name,
            failure_rate: FailureRate::of(failures, judged),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use engine::expectation::Verdict;
    use engine::report::{NamedVerdict, Outcome};

    use super::*;
    use crate::repeat::tests::rep;

    #[test]
    fn spread_and_repeat_stats() {
        assert_eq!(Spread::of(vec![]), None);
        let s = Spread::of(vec![3.0, 1.0, f64::NAN, 2.0, 10.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.samples), (1.0, 2.5, 10.0, 4));
        let mut a = RunReport::empty(1, Outcome::Passed);
        a.final_heights = vec![Some(5), None, Some(9)];
        a.txs_submitted = 4;
        a.txs_included = 3;
        let b = RunReport::empty(2, Outcome::Failed);
        let runs = vec![Arc::new(a), Arc::new(b)];
        let flaky = RepeatStats::of(&[rep(0), rep(1)], &runs);
        assert_eq!((flaky.pass_rate, flaky.flake_rate), (0.5, 0.5));
        assert_eq!(flaky.final_height.as_ref().map(|s| s.max), Some(9.0));
        assert_eq!(
            flaky.txs_included_pct.as_ref().map(|s| s.median),
            Some(75.0)
        );
        assert_eq!(flaky.inclusion_latency_median_ms, None);
        let text = flaky.render();
        assert!(
            text.starts_with("repeat: 1/2 passed (pass rate 50%, flake rate 50%)\n"),
            "{text}"
        );
        assert!(
            text.contains("failure rate              1/2 failed (50.0%, 95% CI 9.5%-90.5%)"),
            "{text}"
        );
        assert!(text.contains("inclusion latency median  n/a"), "{text}");
        // failing every time is steady, not flaky
        let steady = RepeatStats::of(&[rep(1), rep(1)], &runs);
        assert_eq!((steady.pass_rate, steady.flake_rate), (0.0, 0.0));
        assert!(steady.render().contains("a steady failure"));
    }

    fn judged(seed: u64, verdicts: &[(&str, bool)]) -> Arc<RunReport> {
        let mut r = RunReport::empty(seed, Outcome::Passed);
        r.verdicts = verdicts
            .iter()
            .map(|&(name, passed)| NamedVerdict {
                name: name.into(),
                verdict: if passed {
                    Verdict::pass("ok", serde_json::Value::Null)
                } else {
                    Verdict::fail("no", serde_json::Value::Null)
                },
            })
            .collect();
        Arc::new(r)
    }

    #[test]
    fn recovery_is_pooled_over_the_runs() {
        use engine::recovery::{HealRecovery, RecoveryReport};
        let heal = |after: Option<u64>, depth: u64| {
            serde_json::from_value::<HealRecovery>(serde_json::json!({
                "fault": "isolate node 3", "reverted_at_ms": 1000,
                "fork_depth": depth, "converged_after_ms": after,
            }))
            .unwrap()
        };
        let mut a = RunReport::empty(1, Outcome::Passed);
        a.recovery = RecoveryReport {
            heals: vec![heal(Some(400), 2), heal(None, 5)],
            ..Default::default()
        };
        a.inclusion_latencies_ms = vec![100, 300];
        let mut b = RunReport::empty(2, Outcome::Passed);
        b.recovery = RecoveryReport {
            heals: vec![heal(Some(200), 0)],
            ..Default::default()
        };
        b.inclusion_latencies_ms = vec![200];
        let stats = RecoveryStats::of(&[Arc::new(a), Arc::new(b)]);
        let h = stats.heal_to_convergence_ms.clone().unwrap();
        assert_eq!((h.count, h.min, h.max), (2, 200.0, 400.0));
        assert_eq!(stats.heals_not_converged, 1);
        assert_eq!(stats.fork_depth.as_ref().map(|q| q.max), Some(5.0));
        assert_eq!(
            stats.inclusion_latency_ms.as_ref().map(|q| q.median),
            Some(200.0)
        );
        let text = stats.render();
        assert!(
            text.contains("  heal to convergence       min 200ms  median 300ms  p90 400ms  max 400ms  (2 samples), 1 not converged"),
            "{text}"
        );
        assert!(text.contains("  restart catch-up          n/a\n"), "{text}");
    }

    #[test]
    fn failure_rate_per_expectation_counts_only_the_runs_that_judged_it() {
        let runs = [
            judged(1, &[("liveness", true), ("inclusion", false)]),
            judged(2, &[("liveness", false), ("inclusion", false)]),
            // a run stopped by a workload judged nothing
            judged(3, &[]),
            judged(4, &[("liveness", true)]),
        ];
        let stats = RepeatStats::of(&[rep(1), rep(1), rep(1), rep(0)], &runs);
        let names: Vec<_> = stats.expectations.iter().map(|e| &e.name).collect();
        assert_eq!(names, ["liveness", "inclusion"]);
        assert_eq!(stats.expectations[0].failure_rate, FailureRate::of(1, 3));
        assert_eq!(stats.expectations[1].failure_rate, FailureRate::of(2, 2));
        assert_eq!(stats.failure_rate, FailureRate::of(3, 4));
        let text = stats.render();
        assert!(
            text.contains("    liveness                1/3 failed"),
            "{text}"
        );
        assert!(
            text.contains("    inclusion               2/2 failed"),
            "{text}"
        );
    }
}
