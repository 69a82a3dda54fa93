//! Failure rates with confidence: the 95% Wilson score interval of a failure count, the verdict
//! of a repetition against a highest acceptable failure rate, and how many runs would settle it.
//!
//! Wilson rather than the normal approximation (`p ± z·sqrt(p(1-p)/n)`): it stays inside [0, 1]
//! and is not zero-width for 0 or n failures, which is exactly the case of a rare flake seen 0
//! times in 20 runs.

use serde::{Deserialize, Serialize};

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A failure rate observed over some runs, with its 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FailureRate {
    /// Runs that failed.
    pub failures: u64,
    /// Runs observed.
    pub runs: u64,
    /// failures / runs (0 without runs).
    pub rate: f64,
    /// Lower bound of the 95% interval.
    pub low: f64,
    /// Upper bound of the 95% interval.
    pub high: f64,
}

impl FailureRate {
    /// The rate of `failures` out of `runs` (with no run, the interval is all of [0, 1]).
    #[expect(clippy::cast_precision_loss, reason = "run counts are far below 2^52")]
    pub fn of(failures: u64, runs: u64) -> Self {
        let failures = failures.min(runs);
        let (low, high) = wilson(failures as f64, runs as f64);
        Self {
            failures,
            runs,
            rate: if runs == 0 {
                0.0
            } else {
                failures as f64 / runs as f64
            },
            low,
            high,
        }
    }

    /// `3/20 failed (15.0%, 95% CI 5.2%-36.0%)`.
    pub fn render(&self) -> String {
        format!(
            "{}/{} failed ({}, 95% CI {}-{})",
            self.failures,
            self.runs,
            pct(self.rate),
            pct(self.low),
            pct(self.high)
        )
    }

    /// The verdict against `max_rate`: acceptable only when the upper bound is below it.
    pub fn judge(&self, max_rate: f64) -> RateVerdict {
        if self.high < max_rate {
            RateVerdict::Below
        } else if self.low > max_rate {
            RateVerdict::Above
        } else {
            RateVerdict::Undecided {
                runs_needed: runs_needed(self.failures, self.runs, max_rate),
            }
        }
    }
}

/// What the interval says about a highest acceptable failure rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum RateVerdict {
    /// The upper bound is below the rate: acceptable.
    Below,
    /// The lower bound is above the rate: unacceptable whatever more runs show.
    Above,
    /// The interval straddles the rate.
    Undecided {
        /// The total runs after which the upper bound would fall below the rate if failures
        /// went on at the observed rate; None when the observed rate is not below it (no
        /// number of runs would then settle it in favour).
        runs_needed: Option<u64>,
    },
}

/// The 95% Wilson score interval of `k` successes (here: failures) out of `n` trials; k may be
/// fractional (a rate projected onto more runs). [0, 1] for n = 0.
pub fn wilson(k: f64, n: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let p = (k / n).clamp(0.0, 1.0);
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // at k = 0 (or n) the bound is exactly 0 (or 1); rounding must not say otherwise
    let low = if k <= 0.0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let high = if k >= n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    (low, high)
}

/// The smallest total number of runs (at least `runs + 1`) whose 95% upper bound falls below
/// `max_rate` if failures go on at the observed rate `failures / runs` (none seen so far: none
/// later). None when the observed rate is at or above `max_rate`, or past a billion runs.
#[expect(clippy::cast_precision_loss, reason = "run counts are far below 2^52")]
pub fn runs_needed(failures: u64, runs: u64, max_rate: f64) -> Option<u64> {
    if !(max_rate > 0.0 && max_rate <= 1.0) {
        return None;
    }
    let rate = if runs == 0 {
        0.0
    } else {
        failures as f64 / runs as f64
    };
    if rate >= max_rate {
        return None;
    }
    let below = |n: u64| wilson(rate * n as f64, n as f64).1 < max_rate;
    const LIMIT: u64 = 1_000_000_000;
    let mut hi = runs.max(1) + 1;
    while !below(hi) {
        if hi >= LIMIT {
            return None;
        }
        hi = (hi * 2).min(LIMIT);
    }
    // the upper bound falls as n grows at a fixed rate: bisect for the first n below
    let mut lo = runs;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// A share as a percentage with one decimal (`5.2%`).
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn wilson_matches_known_values() {
        // (k, n, low, high), computed from the closed form (and the textbook 0/10 -> 27.8%)
        let known = [
            (0, 10, 0.0, 0.277_532_799_862_889_2),
            (5, 10, 0.236_593_090_512_564, 0.763_406_909_487_436_1),
            (1, 2, 0.094_531_205_734_230_74, 0.905_468_794_265_769_3),
            (0, 3, 0.0, 0.561_497_031_755_045_5),
            (1, 20, 0.008_881_448_800_795_402, 0.236_131_193_446_742_05),
            (3, 100, 0.010_254_524_024_038_925, 0.084_519_364_290_527_6),
            (10, 10, 0.722_467_200_137_110_7, 1.0),
            (0, 1, 0.0, 0.793_450_685_622_762_6),
        ];
        for (k, n, low, high) in known {
            let r = FailureRate::of(k, n);
            assert!(
                close(r.low, low) && close(r.high, high),
                "{k}/{n}: {r:?} vs ({low}, {high})"
            );
        }
        let none = FailureRate::of(0, 0);
        assert_eq!((none.rate, none.low, none.high), (0.0, 0.0, 1.0));
        // more failures than runs cannot happen; clamp rather than produce NaN
        assert_eq!(FailureRate::of(5, 3).failures, 3);
    }

    #[test]
    fn zero_failures_upper_bound_is_the_rule_of_z_squared() {
        // for k = 0 the upper bound is z²/(n + z²): 3.84/(n + 3.84)
        for n in [1u64, 5, 20, 100, 1000] {
            let expect = Z95 * Z95 / (n as f64 + Z95 * Z95);
            assert!(close(FailureRate::of(0, n).high, expect), "n = {n}");
        }
    }

    #[test]
    fn verdicts_and_runs_needed() {
        // 0/3: upper 56.1%
        assert_eq!(FailureRate::of(0, 3).judge(0.6), RateVerdict::Below);
        // 10/10: lower 72.2%
        assert_eq!(FailureRate::of(10, 10).judge(0.5), RateVerdict::Above);
        // 0/10 against 5%: need n > z²(1-p)/p = 72.99, so 73 runs in all
        assert_eq!(
            FailureRate::of(0, 10).judge(0.05),
            RateVerdict::Undecided {
                runs_needed: Some(73)
            }
        );
        assert!(wilson(0.0, 73.0).1 < 0.05 && wilson(0.0, 72.0).1 >= 0.05);
        // 1/2 against 60%: the rate 50% must be held over many runs
        let Some(n) = runs_needed(1, 2, 0.6) else {
            panic!("50% < 60% can be settled")
        };
        assert!(wilson(0.5 * n as f64, n as f64).1 < 0.6);
        assert!(wilson(0.5 * (n - 1) as f64, (n - 1) as f64).1 >= 0.6);
        assert!((90..100).contains(&n), "{n}");
        // the guide's example: 1/40 against 5% needs 292 runs at 2.5%
        assert_eq!(runs_needed(1, 40, 0.05), Some(292));
        // an observed rate at or above the limit cannot be settled in favour
        assert_eq!(
            FailureRate::of(1, 2).judge(0.5),
            RateVerdict::Undecided { runs_needed: None }
        );
        assert_eq!(runs_needed(0, 5, 0.0), None);
        assert_eq!(
            FailureRate::of(0, 0).judge(0.5),
            RateVerdict::Undecided {
                runs_needed: Some(4)
            }
        );
    }

    #[test]
    fn render_names_counts_rate_and_interval() {
        assert_eq!(
            FailureRate::of(1, 20).render(),
            "1/20 failed (5.0%, 95% CI 0.9%-23.6%)"
        );
    }
}
