//! Metrics through Prometheus: a PromQL query client
//! ([`PrometheusClient`], from `LOGOS_BLOCKCHAIN_METRICS_QUERY_URL`), a
//! metric expectation ([`MetricExpectation`]) and the file_sd target file a
//! user's Prometheus reads to scrape each run's nodes without editing its
//! config ([`write_file_sd`], [`FileSdReporter`], path from
//! `LOGOS_BLOCKCHAIN_PROMETHEUS_SD_FILE`).

mod expectation;
mod file_sd;
mod monitoring;
mod prometheus;

pub use expectation::{CompareOp, MetricExpectation};
pub use file_sd::{FileSdReporter, SD_FILE_ENV, SdGroup, write_file_sd, write_file_sd_groups};
pub use monitoring::{GRAFANA_URL_ENV, Monitoring, OTLP_INGEST_URL_ENV};
pub use prometheus::{MetricSample, PrometheusClient, PrometheusError, QUERY_URL_ENV};
