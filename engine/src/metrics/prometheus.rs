//! A small PromQL client: instant queries against `/api/v1/query`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Chain;

/// The env var naming the Prometheus server scripts and metric expectations query.
pub const QUERY_URL_ENV: &str = "LOGOS_BLOCKCHAIN_METRICS_QUERY_URL";

/// One series of an instant query's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// The series' labels (`__name__`, `instance`, `job`, `node`, ...); empty for a scalar.
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl fmt::Display for MetricSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let name = self.labels.get("__name__").map_or("", String::as_str);
        write!(f, "{name}{{{}}} = {}", labels.join(","), self.value)
    }
}

/// Why a query failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PrometheusError {
    #[error(
        "{QUERY_URL_ENV} is not set: set it to the Prometheus server's URL (e.g. http://127.0.0.1:9090)"
    )]
    NotConfigured,
    #[error("invalid Prometheus URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach Prometheus at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("prometheus rejected the query {query:?}: {reason}")]
    Rejected { query: String, reason: String },
    #[error("unexpected answer from Prometheus at {url}: {reason}")]
    BadAnswer { url: String, reason: String },
}

/// Queries one Prometheus server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base: String,
    http: reqwest::Client,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

impl PrometheusClient {
    /// A client for the server at `url` (scheme, host and port; a trailing `/` is ignored).
    pub fn new(url: &str) -> Result<Self, PrometheusError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(PrometheusError::BadUrl {
                url: url.to_owned(),
                reason: "it must start with http:// or https://".to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| PrometheusError::BadUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base,
            http,
            timeout: Duration::from_secs(10),
        })
    }

    /// The client for `LOGOS_BLOCKCHAIN_METRICS_QUERY_URL`.
    pub fn from_env() -> Result<Self, PrometheusError> {
        match std::env::var(QUERY_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => Self::new(&url),
            _ => Err(PrometheusError::NotConfigured),
        }
    }

    /// Per-request deadline (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Runs an instant query; a scalar result is one sample without labels.
    pub async fn query(&self, promql: &str) -> Result<Vec<MetricSample>, PrometheusError> {
        let url = format!("{}/api/v1/query", self.base);
        let resp = self
            .http
            .post(&url)
            .form(&[("query", promql)])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| PrometheusError::Unreachable {
                url: self.base.clone(),
                reason: e.chain(),
            })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| PrometheusError::Unreachable {
                url: self.base.clone(),
                reason: e.chain(),
            })?;
        let answer: Answer =
            serde_json::from_str(&body).map_err(|e| PrometheusError::BadAnswer {
                url: self.base.clone(),
                reason: format!(
                    "http {status}, body is not a query answer ({e}): {}",
                    clip(&body)
                ),
            })?;
        if answer.status != "success" {
            return Err(PrometheusError::Rejected {
                query: promql.to_owned(),
                reason: format!(
                    "{}: {}",
                    answer.error_type.unwrap_or_else(|| "error".to_owned()),
                    answer.error.unwrap_or_default()
                ),
            });
        }
        let data = answer.data.ok_or_else(|| PrometheusError::BadAnswer {
            url: self.base.clone(),
            reason: "success without data".to_owned(),
        })?;
        let bad = |reason: String| PrometheusError::BadAnswer {
            url: self.base.clone(),
            reason,
        };
        match data.result_type.as_str() {
            "vector" => {
                let items: Vec<VectorItem> = serde_json::from_value(data.result)
                    .map_err(|e| bad(format!("vector result: {e}")))?;
                items
                    .into_iter()
                    .map(|it| {
                        Ok(MetricSample {
                            value: parse_value(&it.value.1).map_err(&bad)?,
                            labels: it.metric,
                        })
                    })
                    .collect()
            }
            "scalar" => {
                let (_, v): (f64, String) = serde_json::from_value(data.result)
                    .map_err(|e| bad(format!("scalar result: {e}")))?;
                Ok(vec![MetricSample {
                    labels: BTreeMap::new(),
                    value: parse_value(&v).map_err(&bad)?,
                }])
            }
            other => Err(PrometheusError::Rejected {
                query: promql.to_owned(),
                reason: format!(
                    "the result is a {other}; only instant vectors and scalars can be compared (drop the range selector)"
                ),
            }),
        }
    }
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => v
            .parse()
            .map_err(|_| format!("sample value {v:?} is not a number")),
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_urls_without_scheme() {
        let e = PrometheusClient::new("localhost:9090").unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
    }

    #[test]
    fn sample_display_names_labels() {
        let s = MetricSample {
            labels: [
                ("__name__".to_owned(), "logos_blockchain_height".to_owned()),
                ("node".to_owned(), "node-1".to_owned()),
            ]
            .into(),
            value: 7.0,
        };
        assert_eq!(
            s.to_string(),
            "logos_blockchain_height{node=\"node-1\"} = 7"
        );
    }
}
