//! A real Prometheus (the distribution's `prometheus` binary, started here on
//! loopback with a temp config and storage) scrapes a live local 3-node
//! testnet found through the file_sd file the run writes; a metric
//! expectation passes on `logos_blockchain_height > 0` and fails, naming
//! every node's value, on an impossible threshold. Without the binary: skipped (reason
//! printed), or failed under CI (`common::tools`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{deployer, fast};
use engine::deploy::KeepRunDir;
use engine::metrics::{CompareOp, FileSdReporter, MetricExpectation, PrometheusClient};
use engine::report::Outcome;
use engine::runner::{RunOptions, run_scenario};
use engine::scenario::ScenarioBuilder;

/// The Prometheus process; killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_bin() -> Option<PathBuf> {
    common::tools::on_path(&["prometheus"])
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts Prometheus on a free loopback port scraping the targets of `sd_file`
/// every 500 ms, and waits (30 s at most) until it reports ready.
async fn start_prometheus(bin: &Path, dir: &Path, sd_file: &Path) -> Prometheus {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: nomos-testnet\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
            sd_file.display()
        ),
    )
    .expect("config written");
    let log = dir.join("prometheus.log");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(dir.join("prometheus.err")).expect("log"))
        .spawn()
        .expect("prometheus starts");
    let p = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log: dir.join("prometheus.err"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    loop {
        let ready = http
            .get(format!("{}/-/ready", p.url))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus on {} not ready within 30s: {}",
            p.url,
            std::fs::read_to_string(&p.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_testnet_through_file_sd_and_metric_expectations_judge_it() {
    let Some(bin) = prometheus_bin() else {
        common::tools::skip_missing("prometheus", "no prometheus binary on PATH");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sd_file = tmp.path().join("sd/targets.json");
    engine::metrics::write_file_sd(&sd_file, &[], &BTreeMap::new()).unwrap();
    let prom = start_prometheus(&bin, tmp.path(), &sd_file).await;
    let client = PrometheusClient::new(&prom.url).unwrap();

    let sd = Arc::new(FileSdReporter::new(&sd_file).with_label("suite", "engine-tests"));
    let passes = MetricExpectation::new("logos_blockchain_height", CompareOp::Gt, 0.0)
        .unwrap()
        .with_client(client.clone())
        .min_series(3)
        .within(Duration::from_secs(20));
    // Prometheus applies service-discovery changes at most every 5 s, so the
    // impossible check keeps querying long enough to see every node's series.
    let impossible = MetricExpectation::new("logos_blockchain_height", CompareOp::Ge, 1e9)
        .unwrap()
        .with_client(client.clone())
        .min_series(3)
        .within(Duration::from_secs(9));
    // no client of its own: it queries the plan's `with_metrics_query_url`
    let by_plan_url = MetricExpectation::new("logos_blockchain_height", CompareOp::Gt, 0.0)
        .unwrap()
        .min_series(3)
        .within(Duration::from_secs(20));
    let plan = ScenarioBuilder::topology_with(|t| fast(t.network_star().nodes(3)))
        .with_expectation(Arc::new(passes))
        .with_expectation(Arc::new(impossible))
        .with_expectation(Arc::new(by_plan_url))
        .with_metrics_query_url(prom.url.clone())
        .with_grafana_url("http://grafana.invalid:3000")
        .with_run_duration(Duration::from_secs(3))
        .build()
        .unwrap();
    let opts = RunOptions {
        keep: KeepRunDir::Never,
        ready_timeout: Duration::from_secs(20),
        reporters: vec![sd.clone()],
        ..RunOptions::default()
    };
    let base = tempfile::tempdir().unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), opts).await;

    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    let ok = &report.verdicts[0];
    assert!(
        ok.name.starts_with("metric logos_blockchain_height > 0"),
        "{}",
        ok.name
    );
    assert!(ok.verdict.passed, "{}", ok.verdict.message);
    assert!(
        ok.verdict.message.contains("holds for 3 series"),
        "every node scraped: {}",
        ok.verdict.message
    );
    let bad = &report.verdicts[1];
    assert!(!bad.verdict.passed);
    let m = &bad.verdict.message;
    assert!(
        m.starts_with(
            "logos_blockchain_height >= 1000000000 does not hold for 3 of 3 series; observed: "
        ),
        "{m}"
    );
    for node in ["node-0", "node-1", "node-2"] {
        assert!(
            m.contains(&format!("node=\"{node}\"")),
            "{node} missing from: {m}"
        );
    }
    assert!(m.contains(&format!("run_id=\"{}\"", report.run_id)), "{m}");
    assert_eq!(
        bad.verdict.evidence["observed"].as_array().map(Vec::len),
        Some(3)
    );
    let by_url = &report.verdicts[2];
    assert!(
        by_url.verdict.passed,
        "the plan's query URL: {}",
        by_url.verdict.message
    );

    // the labels the file_sd file gave each target are on the series (over the
    // last minute: after teardown the next scrape of a node finds it gone)
    let up = client
        .query(&format!(
            "max_over_time(up{{run_id=\"{}\",suite=\"engine-tests\"}}[1m]) == 1",
            report.run_id
        ))
        .await
        .unwrap();
    assert_eq!(up.len(), 3, "{up:?}");
    // teardown emptied the target file
    assert_eq!(std::fs::read_to_string(&sd_file).unwrap().trim(), "[]");
    assert!(sd.errors().is_empty(), "{:?}", sd.errors());
    drop(prom);
}

/// A plan's query URL wins over the environment's: a metric expectation without a client of its
/// own queries it (here nothing listens there, so the expectation fails naming it); a bad URL
/// is refused at build, naming the call and the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plans_metrics_query_url_is_the_one_queried() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let e = MetricExpectation::new("up", CompareOp::Ge, 1.0)
        .unwrap()
        .within(Duration::from_millis(500));
    let plan = ScenarioBuilder::topology_with(|t| fast(t.nodes(2)))
        .with_expectation(Arc::new(e))
        .with_metrics_query_url(dead.clone())
        .with_run_duration(Duration::from_secs(1))
        .build()
        .unwrap();
    let base = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        keep: KeepRunDir::Never,
        ready_timeout: Duration::from_secs(20),
        ..RunOptions::default()
    };
    let report = run_scenario(&plan, &deployer(base.path()), opts).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    let m = &report.verdicts[0].verdict.message;
    assert!(m.contains(&dead[7..]), "names the plan's server: {m}");
    let bad = ScenarioBuilder::topology_with(|t| fast(t.nodes(2)))
        .with_metrics_query_url("localhost:9090")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("with_metrics_query_url") && bad.contains("\"localhost:9090\""),
        "{bad}"
    );
}

#[tokio::test]
async fn query_errors_are_clear() {
    let unreachable = PrometheusClient::new(&format!("http://127.0.0.1:{}", free_port()))
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let e = unreachable.query("up").await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot reach Prometheus at http://127.0.0.1:"),
        "{e}"
    );
    let exp = MetricExpectation::new("up", CompareOp::Gt, 0.0)
        .unwrap()
        .with_client(unreachable)
        .within(Duration::ZERO);
    let e = exp.check().await.unwrap_err().to_string();
    assert!(e.contains("cannot reach Prometheus"), "{e}");
    assert!(
        "~=".parse::<CompareOp>()
            .unwrap_err()
            .contains("use one of > >= < <= =="),
        "operator error names the choices"
    );
}

#[tokio::test]
async fn a_bad_query_is_rejected_by_a_real_prometheus() {
    let Some(bin) = prometheus_bin() else {
        common::tools::skip_missing("prometheus", "no prometheus binary on PATH");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sd_file = tmp.path().join("targets.json");
    engine::metrics::write_file_sd(&sd_file, &[], &BTreeMap::new()).unwrap();
    let prom = start_prometheus(&bin, tmp.path(), &sd_file).await;
    let client = PrometheusClient::new(&prom.url).unwrap();
    let e = client.query("sum(").await.unwrap_err().to_string();
    assert!(
        e.starts_with("prometheus rejected the query \"sum(\": bad_data"),
        "{e}"
    );
    let e = client.query("up[1m]").await.unwrap_err().to_string();
    assert!(e.contains("only instant vectors and scalars"), "{e}");
    let scalar = client.query("scalar(vector(2))").await.unwrap();
    assert_eq!(scalar.len(), 1);
    assert_eq!(scalar[0].value, 2.0);
    // no targets: an expectation on a metric nobody exports fails, saying so
    let v = MetricExpectation::new("logos_blockchain_height", CompareOp::Gt, 0.0)
        .unwrap()
        .with_client(client)
        .within(Duration::ZERO)
        .check()
        .await
        .unwrap();
    assert!(!v.passed);
    assert!(v.message.contains("returned no series"), "{}", v.message);
}
