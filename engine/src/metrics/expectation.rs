//! `expect_metric(query, op, value)`: a PromQL instant query whose every
//! series must compare true against a threshold at the end of the run.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use super::prometheus::{MetricSample, PrometheusClient};
use crate::context::RunContext;
use crate::deadline::Deadline;
use crate::expectation::{Expectation, ExpectationError, Verdict};
use crate::topology::ConsensusSettings;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

impl CompareOp {
    /// Whether `observed op threshold` holds (NaN never does).
    pub fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => observed > threshold,
            Self::Ge => observed >= threshold,
            Self::Lt => observed < threshold,
            Self::Le => observed <= threshold,
            Self::Eq => observed == threshold,
        }
    }
}

impl FromStr for CompareOp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "<" => Self::Lt,
            "<=" => Self::Le,
            "==" => Self::Eq,
            other => {
                return Err(format!(
                    "unknown comparison operator {other:?}: use one of > >= < <= =="
                ));
            }
        })
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
        })
    }
}

/// Passes when the query returns at least one series and every series
/// satisfies `value op threshold`. Prometheus scrapes on its own schedule, so
/// the query is retried (every 500 ms) until it passes or `within` runs out;
/// a failure shows every observed series.
#[derive(Debug, Clone)]
pub struct MetricExpectation {
    query: String,
    op: CompareOp,
    threshold: f64,
    within: Deadline,
    min_series: usize,
    client: Option<PrometheusClient>,
}

impl MetricExpectation {
    /// `query op threshold`, against `LOGOS_BLOCKCHAIN_METRICS_QUERY_URL` unless
    /// [`MetricExpectation::with_client`] is given.
    pub fn new(query: &str, op: CompareOp, threshold: f64) -> Result<Self, String> {
        if query.trim().is_empty() {
            return Err("metric expectation query is empty".to_owned());
        }
        if !threshold.is_finite() {
            return Err(format!(
                "metric expectation threshold {threshold} must be a finite number"
            ));
        }
        Ok(Self {
            query: query.trim().to_owned(),
            op,
            threshold,
            within: Deadline::Time(Duration::from_secs(10)),
            min_series: 1,
            client: None,
        })
    }

    /// Queries this server instead of the env var's.
    pub fn with_client(mut self, client: PrometheusClient) -> Self {
        self.client = Some(client);
        self
    }

    /// How long to keep retrying until the condition holds (default 10 s; zero: one query): a
    /// duration, or slots or blocks (resolved against the testnet's consensus parameters when
    /// judged; [`check`](Self::check) outside a run takes the default parameters).
    pub fn within(mut self, d: impl Into<Deadline>) -> Self {
        self.within = d.into();
        self
    }

    /// Requires at least `n` series (for example one per node), so a check
    /// made before Prometheus has scraped every target keeps retrying instead
    /// of passing on the targets seen so far (default 1).
    pub fn min_series(mut self, n: usize) -> Self {
        self.min_series = n.max(1);
        self
    }

    fn client(&self, m: &super::Monitoring) -> Result<PrometheusClient, ExpectationError> {
        match &self.client {
            Some(c) => Ok(c.clone()),
            None => m
                .prometheus()
                .map_err(|e| ExpectationError::new(e.to_string())),
        }
    }

    /// Judges one query answer.
    pub fn judge(&self, samples: &[MetricSample]) -> Verdict {
        let evidence = json!({
            "query": self.query,
            "op": self.op.to_string(),
            "threshold": self.threshold,
            "observed": samples
                .iter()
                .map(|s| json!({"labels": s.labels, "value": finite_or_string(s.value)}))
                .collect::<Vec<_>>(),
        });
        let cond = format!("{} {} {}", self.query, self.op, self.threshold);
        if samples.is_empty() {
            return Verdict::fail(
                format!("{cond}: the query returned no series (is Prometheus scraping the nodes?)"),
                evidence,
            );
        }
        if samples.len() < self.min_series {
            return Verdict::fail(
                format!(
                    "{cond}: the query returned {} series, expected at least {} (is Prometheus scraping every node?)",
                    samples.len(),
                    self.min_series
                ),
                evidence,
            );
        }
        let bad: Vec<String> = samples
            .iter()
            .filter(|s| !self.op.holds(s.value, self.threshold))
            .map(|s| s.to_string())
            .collect();
        if bad.is_empty() {
            let values: Vec<String> = samples.iter().map(|s| s.value.to_string()).collect();
            Verdict::pass(
                format!(
                    "{cond} holds for {} series (observed {})",
                    samples.len(),
                    values.join(", ")
                ),
                evidence,
            )
        } else {
            Verdict::fail(
                format!(
                    "{cond} does not hold for {} of {} series; observed: {}",
                    bad.len(),
                    samples.len(),
                    bad.join("; ")
                ),
                evidence,
            )
        }
    }

    /// Queries until the condition holds or `within` passes; the last verdict (the server:
    /// the expectation's own, else the environment's).
    pub async fn check(&self) -> Result<Verdict, ExpectationError> {
        self.check_in(
            &super::Monitoring::from_env(),
            &ConsensusSettings::default(),
        )
        .await
    }

    /// [`check`](Self::check) against the Prometheus of `m` unless the expectation has its own,
    /// with `within` in slots or blocks resolved against `params`.
    pub async fn check_in(
        &self,
        m: &super::Monitoring,
        params: &ConsensusSettings,
    ) -> Result<Verdict, ExpectationError> {
        let client = self.client(m)?;
        let within = self.within.resolve(params);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let verdict = match client.query(&self.query).await {
                Ok(samples) => Ok(self.judge(&samples)),
                Err(e) => Err(ExpectationError::new(e.to_string())),
            };
            let done = matches!(&verdict, Ok(v) if v.passed);
            if done || tokio::time::Instant::now() + Duration::from_millis(500) > deadline {
                return verdict.map(|mut v| {
                    if !v.passed && !within.is_zero() {
                        v.message
                            .push_str(&format!(" (retried for {})", self.within.describe(params)));
                    }
                    v
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn finite_or_string(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!(v.to_string())
    }
}

impl Expectation for MetricExpectation {
    fn name(&self) -> String {
        format!("metric {} {} {}", self.query, self.op, self.threshold)
    }

    fn start_capture<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<(), ExpectationError>> {
        // fail early on a missing server rather than after the whole run
        Box::pin(async move { self.client(&ctx.monitoring()).map(|_| ()) })
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let params = ctx.testnet().topology().params.clone();
            self.check_in(&ctx.monitoring(), &params).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(node: &str, v: f64) -> MetricSample {
        MetricSample {
            labels: [("node".to_owned(), node.to_owned())].into(),
            value: v,
        }
    }

    #[test]
    fn ops_parse_and_compare() {
        assert_eq!(">=".parse::<CompareOp>(), Ok(CompareOp::Ge));
        assert!("=>".parse::<CompareOp>().unwrap_err().contains("=>"));
        assert!(CompareOp::Le.holds(1.0, 1.0));
        assert!(!CompareOp::Gt.holds(f64::NAN, 0.0));
    }

    #[test]
    fn judge_names_the_failing_series() {
        let e = MetricExpectation::new("logos_blockchain_height", CompareOp::Gt, 5.0).expect("ok");
        let v = e.judge(&[sample("node-0", 9.0), sample("node-1", 2.0)]);
        assert!(!v.passed);
        assert!(v.message.contains("node=\"node-1\"} = 2"), "{}", v.message);
        assert!(!v.message.contains("node-0"), "{}", v.message);
        assert!(!e.judge(&[]).passed);
        assert!(e.judge(&[sample("node-0", 6.0)]).passed);
        assert!(MetricExpectation::new(" ", CompareOp::Gt, 1.0).is_err());
    }

    #[test]
    fn too_few_series_fail_when_a_minimum_is_set() {
        let e = MetricExpectation::new("logos_blockchain_height", CompareOp::Gt, 0.0)
            .expect("ok")
            .min_series(3);
        let v = e.judge(&[sample("node-0", 9.0), sample("node-1", 2.0)]);
        assert!(!v.passed);
        assert!(
            v.message.contains("returned 2 series, expected at least 3"),
            "{}",
            v.message
        );
        let all = [
            sample("node-0", 9.0),
            sample("node-1", 2.0),
            sample("node-2", 4.0),
        ];
        assert!(e.judge(&all).passed);
    }
}
