//! Where a run's metrics and dashboards are: the Prometheus to query, the OTLP endpoint nodes
//! push metrics to and a Grafana for humans. Each comes from the environment
//! (`LOGOS_BLOCKCHAIN_METRICS_QUERY_URL`, `LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL`,
//! `LOGOS_BLOCKCHAIN_GRAFANA_URL`) unless the plan sets it (`with_metrics_query_url`, ...).

use super::prometheus::{PrometheusClient, PrometheusError, QUERY_URL_ENV};
use crate::deploy::Endpoint;

/// The variable of the OTLP metrics ingest URL handed to the nodes.
pub const OTLP_INGEST_URL_ENV: &str = "LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL";
/// The variable of the Grafana URL printed with the endpoints.
pub const GRAFANA_URL_ENV: &str = "LOGOS_BLOCKCHAIN_GRAFANA_URL";

/// The monitoring URLs of a run; None: not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Monitoring {
    /// The Prometheus server queried by metric expectations and `ctx.prometheus()`.
    pub metrics_query_url: Option<String>,
    /// Where nodes push OTLP metrics (a full URL, path included).
    pub otlp_ingest_url: Option<String>,
    /// A Grafana, printed for humans.
    pub grafana_url: Option<String>,
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

impl Monitoring {
    /// What the environment sets.
    pub fn from_env() -> Self {
        Self {
            metrics_query_url: env(QUERY_URL_ENV),
            otlp_ingest_url: env(OTLP_INGEST_URL_ENV),
            grafana_url: env(GRAFANA_URL_ENV),
        }
    }

    /// `self`, with every URL `plan` sets in its place.
    pub fn overridden_by(&self, plan: &Monitoring) -> Self {
        Self {
            metrics_query_url: plan
                .metrics_query_url
                .clone()
                .or_else(|| self.metrics_query_url.clone()),
            otlp_ingest_url: plan
                .otlp_ingest_url
                .clone()
                .or_else(|| self.otlp_ingest_url.clone()),
            grafana_url: plan
                .grafana_url
                .clone()
                .or_else(|| self.grafana_url.clone()),
        }
    }

    /// The URLs set, as a testnet's endpoints (each renders as its `VAR=url` line).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        [
            self.grafana_url
                .clone()
                .map(|url| Endpoint::Grafana { url }),
            self.metrics_query_url
                .clone()
                .map(|url| Endpoint::MetricsQuery { url }),
            self.otlp_ingest_url
                .clone()
                .map(|url| Endpoint::OtlpIngest { url }),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The Prometheus client of the query URL.
    pub fn prometheus(&self) -> Result<PrometheusClient, PrometheusError> {
        match &self.metrics_query_url {
            Some(url) => PrometheusClient::new(url),
            None => PrometheusClient::from_env(),
        }
    }

    /// Checks every URL set: an http(s) URL with a host. The error names the field and value.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, url) in [
            ("with_metrics_query_url", &self.metrics_query_url),
            ("with_metrics_otlp_ingest_url", &self.otlp_ingest_url),
            ("with_grafana_url", &self.grafana_url),
        ] {
            if let Some(u) = url {
                check_url(u).map_err(|why| (field, format!("{field} = {u:?}: {why}")))?;
            }
        }
        Ok(())
    }
}

fn check_url(u: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(u).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme is `{}`; want http or https",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("it names no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_wins_over_the_environment_and_bad_urls_are_named() {
        let env = Monitoring {
            metrics_query_url: Some("http://env:9090".into()),
            otlp_ingest_url: None,
            grafana_url: Some("http://grafana-env:3000".into()),
        };
        let plan = Monitoring {
            metrics_query_url: Some("http://plan:9090".into()),
            otlp_ingest_url: Some("http://otlp:4318/v1/metrics".into()),
            grafana_url: None,
        };
        let m = env.overridden_by(&plan);
        assert_eq!(m.metrics_query_url.as_deref(), Some("http://plan:9090"));
        assert_eq!(m.grafana_url.as_deref(), Some("http://grafana-env:3000"));
        assert_eq!(
            m.endpoints()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![
                "LOGOS_BLOCKCHAIN_GRAFANA_URL=http://grafana-env:3000".to_string(),
                "LOGOS_BLOCKCHAIN_METRICS_QUERY_URL=http://plan:9090".into(),
                "LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL=http://otlp:4318/v1/metrics".into(),
            ]
        );
        assert!(m.validate().is_ok());
        let bad = Monitoring {
            grafana_url: Some("grafana:3000".into()),
            ..Default::default()
        };
        let (field, msg) = bad.validate().unwrap_err();
        assert_eq!(field, "with_grafana_url");
        assert!(msg.contains("\"grafana:3000\""), "{msg}");
        let ftp = Monitoring {
            metrics_query_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(ftp.validate().unwrap_err().1.contains("want http or https"));
    }
}
