//! [`ChaosBuilder::validate`]: every stream checked before the run, the error naming the field
//! and its value.

use std::time::Duration;

use super::{ChaosBuilder, ChaosError, ChaosStream, Delay, Targets};

impl ChaosBuilder {
    /// Checks every stream; the error names the field and value.
    pub fn validate(&self) -> Result<(), ChaosError> {
        if self.name.trim().is_empty() {
            return Err(ChaosError::new(
                "name",
                "chaos name = \"\": a chaos workload needs a name",
            ));
        }
        if self.streams.is_empty() {
            return Err(ChaosError::new(
                "chaos_with",
                "chaos_with: no fault stream configured (call e.g. c.restart()...apply())",
            ));
        }
        for s in &self.streams {
            match s {
                ChaosStream::Restart(r) => {
                    check_delay("restart", "min_delay", "max_delay", r.delay)?;
                    check_targets("restart", &r.targets)?;
                    if r.catch_up_within.is_some_and(|d| d.is_zero()) {
                        return Err(ChaosError::new(
                            "catch_up_within",
                            "restart catch_up_within = 0: give the node time to catch up",
                        ));
                    }
                }
                ChaosStream::Partition(p) => {
                    check_delay("partition", "min_delay", "max_delay", p.delay)?;
                    check_delay("partition", "min_duration", "max_duration", p.duration)?;
                    if let Some(g) = &p.groups {
                        if g.iter().filter(|g| !g.is_empty()).count() < 1 {
                            return Err(ChaosError::new(
                                "groups",
                                format!(
                                    "partition groups = {g:?}: name at least one non-empty group"
                                ),
                            ));
                        }
                        let mut seen = std::collections::BTreeSet::new();
                        for &n in g.iter().flatten() {
                            if !seen.insert(n) {
                                return Err(ChaosError::new(
                                    "groups",
                                    format!("partition groups = {g:?}: node {n} is in two groups"),
                                ));
                            }
                        }
                    }
                }
                ChaosStream::Degrade(d) => {
                    check_delay("degrade", "min_delay", "max_delay", d.delay)?;
                    check_delay("degrade", "min_duration", "max_duration", d.duration)?;
                    if d.latency.is_none() && d.loss.is_none() {
                        return Err(ChaosError::new(
                            "degrade",
                            "degrade: set latency(..) and/or loss(..)",
                        ));
                    }
                    if let Some(p) = d.loss
                        && !(p.is_finite() && (0.0..=1.0).contains(&p))
                    {
                        return Err(ChaosError::new(
                            "loss",
                            format!("degrade loss = {p}: a probability must be in [0, 1]"),
                        ));
                    }
                    if let Some(l) = d.latency
                        && d.jitter > l
                    {
                        return Err(ChaosError::new(
                            "jitter",
                            format!(
                                "degrade jitter = {} exceeds latency = {}",
                                humantime::format_duration(d.jitter),
                                humantime::format_duration(l)
                            ),
                        ));
                    }
                }
                ChaosStream::Pause(p) => {
                    check_delay("pause", "min_delay", "max_delay", p.delay)?;
                    check_delay("pause", "min_duration", "max_duration", p.duration)?;
                    check_targets("pause", &p.targets)?;
                }
                ChaosStream::Disk(d) => d.check()?,
                ChaosStream::Clock(c) => {
                    check_delay("clock_skew", "min_delay", "max_delay", c.delay)?;
                    check_delay("clock_skew", "min_duration", "max_duration", c.duration)?;
                    check_targets("clock_skew", &c.targets)?;
                    if c.max < Duration::from_millis(4) || c.max > Duration::from_secs(86_400) {
                        return Err(ChaosError::new(
                            "max",
                            format!(
                                "clock_skew max = {}: between 4ms and a day",
                                humantime::format_duration(c.max)
                            ),
                        ));
                    }
                }
                ChaosStream::Byzantine(b) => b.validate()?,
                ChaosStream::Schedule(steps) => {
                    if steps.is_empty() {
                        return Err(ChaosError::new(
                            "schedule",
                            "schedule: no step (call .at(\"5s\", action))",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn fmt_d(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(in crate::chaos) fn check_delay(
    kind: &str,
    lo: &str,
    hi: &str,
    d: Delay,
) -> Result<(), ChaosError> {
    if d.max < d.min {
        return Err(ChaosError::new(
            hi,
            format!(
                "{kind} {hi} = {} is below {lo} = {}",
                fmt_d(d.max),
                fmt_d(d.min)
            ),
        ));
    }
    if lo == "min_delay" && d.max.is_zero() {
        return Err(ChaosError::new(
            hi,
            format!("{kind} {hi} = 0s: faults need a gap between them"),
        ));
    }
    Ok(())
}

pub(in crate::chaos) fn check_targets(kind: &str, t: &Targets) -> Result<(), ChaosError> {
    if let Targets::Only(v) = t
        && v.is_empty()
    {
        return Err(ChaosError::new(
            "targets",
            format!(
                "{kind} targets = []: name at least one node (include_nodes(false) leaves none)"
            ),
        ));
    }
    Ok(())
}
