//! What `nomos-script run` leaves behind, from real runs of the binary on local testnets: the HTML
//! report dir (plots, node artifacts), JUnit parsed back with an XML parser (failures, and
//! infrastructure and script errors as `<error>`), pointers to the failing node's log, metric
//! expectations judged by a real Prometheus (scraping through the file_sd file) passing and
//! failing, and `--repeat` statistics over a deliberately flaky script.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{Env, fixture, run_command};

/// A fresh temp dir used as TMPDIR (run dirs land there) and for the report files; the metrics
/// variables are removed too, so a run only sees the Prometheus a test starts.
fn new_env() -> Env {
    Env::new("reports-test-").removing(&[
        "LOGOS_BLOCKCHAIN_METRICS_QUERY_URL",
        "LOGOS_BLOCKCHAIN_PROMETHEUS_SD_FILE",
        "LOGOS_BLOCKCHAIN_GRAFANA_URL",
    ])
}

fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name)
        .unwrap_or_else(|| panic!("<{}> has no {name} attribute", node.tag_name().name()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn report_dir_has_the_html_plots_node_files_and_a_junit_that_parses_back() {
    let env = new_env();
    let dir = env.path("report");
    let run = run_command(
        env.cmd()
            .env("LOGOS_BLOCKCHAIN_GRAFANA_URL", "http://127.0.0.1:3999")
            .args(["run", &fixture("reports_flaky.rhai"), "--seed", "11"])
            .arg("--report-dir")
            .arg(&dir),
    );
    assert_eq!(run.code, 1, "{run:?}");
    // the endpoints printed when the nodes start name the Grafana URL
    assert!(
        run.stderr
            .contains("LOGOS_BLOCKCHAIN_GRAFANA_URL=http://127.0.0.1:3999"),
        "{run:?}"
    );
    // the failure names node-1 and points at its own log file, which exists
    let hint = run
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("node-1 log: "))
        .unwrap_or_else(|| panic!("no node-1 log pointer: {run:?}"));
    assert!(Path::new(hint).is_file(), "{hint} is not a file");
    assert!(hint.contains("/node-1/"), "{hint}");
    assert!(!run.stderr.contains("node-0 log:"), "{run:?}");

    let html = read(&dir.join("index.html"));
    for needle in [
        "id=\"plot-0-heights\"",
        "id=\"plot-0-txs\"",
        "id=\"plot-0-peers\"",
        "height per node",
        "transactions submitted vs included",
        "inclusion latency",
        "peers per node",
        "consensus_liveness",
        "href=\"junit.xml\"",
        "href=\"report.json\"",
    ] {
        assert!(html.contains(needle), "index.html lacks {needle}");
    }
    assert!(html.matches("<svg").count() >= 4, "fewer than 4 plots");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "index.html must be self-contained"
    );
    let json: serde_json::Value = serde_json::from_str(&read(&dir.join("report.json"))).unwrap();
    let run_id = json["runs"][0]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    // each node's config and logs copied beside the report (the run dir may be removed later)
    let node1 = dir.join("runs").join(&run_id).join("node-1");
    assert!(node1.join("config.yaml").is_file(), "{node1:?}");
    assert!(node1.join("output.log").is_file(), "{node1:?}");

    let junit = read(&dir.join("junit.xml"));
    let doc = roxmltree::Document::parse(&junit).expect("junit.xml is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    // consensus_liveness fails, tx_inclusion (added by transactions_with) passes
    assert_eq!(
        (
            attr(root, "tests"),
            attr(root, "failures"),
            attr(root, "errors")
        ),
        ("2", "1", "0")
    );
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(attr(suite, "name"), format!("run {run_id}"));
    assert_eq!(
        (
            attr(suite, "tests"),
            attr(suite, "failures"),
            attr(suite, "errors")
        ),
        ("2", "1", "0")
    );
    assert!(attr(suite, "time").parse::<f64>().unwrap() > 1.0);
    let seed = suite
        .descendants()
        .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("seed"))
        .expect("seed property");
    assert_eq!(attr(seed, "value"), "11");
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| attr(*c, "name")).collect();
    assert_eq!(names, ["consensus_liveness", "tx_inclusion"]);
    assert!(
        cases[1].children().all(|n| !n.is_element()),
        "tx_inclusion passed"
    );
    let case = cases[0];
    assert!(attr(case, "classname").ends_with("reports_flaky.rhai"));
    let failure = case
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("failure");
    assert!(
        attr(failure, "message").contains("node-1 height 3"),
        "{}",
        attr(failure, "message")
    );
    assert!(
        failure.text().unwrap_or_default().contains("node-1 log: "),
        "the failure text points at the log: {junit}"
    );
}

#[test]
fn infrastructure_and_script_errors_are_junit_errors_not_failures() {
    let env = new_env();
    // the node binary does not exist: the deploy fails, an infrastructure error (exit 3)
    let junit_path = env.path("infra.xml");
    let run = run_command(
        env.cmd()
            .env("NOMOS_DEVNODE_BIN", env.path("no-such-node"))
            .args(["run", &fixture("reports_flaky.rhai"), "--seed", "2"])
            .arg("--junit")
            .arg(&junit_path),
    );
    assert_eq!(run.code, 3, "{run:?}");
    let junit = read(&junit_path);
    let doc = roxmltree::Document::parse(&junit).expect("well-formed");
    let root = doc.root_element();
    assert_eq!(
        (attr(root, "failures"), attr(root, "errors")),
        ("0", "1"),
        "{junit}"
    );
    let error = root
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .expect("an <error>");
    assert_eq!(attr(error.parent().unwrap(), "name"), "infrastructure");
    assert!(
        attr(error, "message").contains("no-such-node"),
        "the message names the missing binary: {junit}"
    );
    assert!(root.descendants().all(|n| !n.has_tag_name("failure")));

    // a syntax error: its own testsuite with an <error> naming the problem
    let script = env.path("broken.rhai");
    std::fs::write(&script, "let x = ;\n").unwrap();
    let junit_path = env.path("script.xml");
    let run = run_command(
        env.cmd()
            .arg("run")
            .arg(&script)
            .arg("--junit")
            .arg(&junit_path),
    );
    assert_eq!(run.code, 2, "{run:?}");
    let junit = read(&junit_path);
    let doc = roxmltree::Document::parse(&junit).expect("well-formed");
    let root = doc.root_element();
    assert_eq!(
        (
            attr(root, "tests"),
            attr(root, "failures"),
            attr(root, "errors")
        ),
        ("1", "0", "1")
    );
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(attr(suite, "name"), "script");
    let error = suite
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .unwrap();
    assert!(attr(error, "message").starts_with("error:"), "{junit}");
}

#[test]
fn repeat_reports_pass_rate_flake_rate_and_spread() {
    let env = new_env();
    let json_path = env.path("repeat.json");
    // seeds 10 (even: passes) and 11 (odd: node-1 halts, fails)
    let run = run_command(
        env.cmd()
            .args([
                "run",
                &fixture("reports_flaky.rhai"),
                "--seed",
                "10",
                "--repeat",
                "2",
            ])
            .arg("--json")
            .arg(&json_path),
    );
    assert_eq!(run.code, 1, "one repetition failed: {run:?}");
    assert!(run.stderr.contains("repeat 1/2: seed 10"), "{run:?}");
    assert!(run.stderr.contains("repeat 2/2: seed 11"), "{run:?}");
    assert!(
        run.stdout
            .contains("repeat: 1/2 passed (pass rate 50%, flake rate 50%)"),
        "{run:?}"
    );
    for row in [
        "run duration",
        "final height",
        "txs included",
        "inclusion latency median",
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row: {run:?}"));
        assert!(
            line.contains("min ") && line.contains("median ") && line.contains("max "),
            "{line}"
        );
        assert!(line.contains("(2 runs)"), "{line}");
    }
    let json: serde_json::Value = serde_json::from_str(&read(&json_path)).unwrap();
    assert_eq!(json["exit_code"], 1);
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["seed"], 10);
    assert_eq!(runs[0]["outcome"]["kind"], "passed");
    assert_eq!(runs[1]["seed"], 11);
    assert_eq!(json["repetitions"][1]["exit_code"], 1);
    assert_eq!(json["repetitions"][1]["run_ids"][0], runs[1]["run_id"]);
    let stats = &json["repeat"];
    assert_eq!(stats["repetitions"], 2);
    assert_eq!(stats["passed"], 1);
    assert_eq!(stats["flake_rate"], 0.5);
    let h = &stats["final_height"];
    assert!(h["min"].as_f64() <= h["median"].as_f64() && h["median"].as_f64() <= h["max"].as_f64());
    assert!(h["max"].as_f64().unwrap() > 3.0, "{stats}");

    // every repetition passing exits 0
    let run = run_command(env.cmd().args([
        "run",
        &fixture("reports_flaky.rhai"),
        "--seed",
        "20",
        "--repeat",
        "1",
    ]));
    assert_eq!(run.code, 0, "{run:?}");
}

/// The Prometheus process; killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    err_log: PathBuf,
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

fn http_get_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

/// Prometheus on a free loopback port scraping the file_sd targets every 500 ms; waits (30 s at
/// most) until it is ready. None (skipped) without the binary; under CI its absence fails the
/// test (`common::tools`).
fn start_prometheus(dir: &Path, sd_file: &Path) -> Option<Prometheus> {
    let Some(bin) = prometheus_bin() else {
        common::tools::skip_missing("prometheus", "no prometheus binary on PATH");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: nomos-testnet\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
            sd_file.display()
        ),
    )
    .unwrap();
    let err_log = dir.join("prometheus.err");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_log).unwrap())
        .spawn()
        .expect("prometheus starts");
    let p = Prometheus {
        child,
        port,
        err_log,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_get_ok(port, "/-/ready") {
        assert!(
            Instant::now() < deadline,
            "prometheus on port {port} not ready within 30s: {}",
            std::fs::read_to_string(&p.err_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(p)
}

#[test]
fn metric_expectations_pass_against_a_real_prometheus_and_fail_on_an_impossible_threshold() {
    let env = new_env();
    let sd_file = env.path("sd/targets.json");
    std::fs::create_dir_all(sd_file.parent().unwrap()).unwrap();
    std::fs::write(&sd_file, "[]").unwrap();
    let Some(prom) = start_prometheus(env.tmp.path(), &sd_file) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}", prom.port);
    let metric_run = |extra: &[&str]| {
        run_command(
            env.cmd()
                .env("LOGOS_BLOCKCHAIN_METRICS_QUERY_URL", &url)
                .env("LOGOS_BLOCKCHAIN_PROMETHEUS_SD_FILE", &sd_file)
                .args(["run", &fixture("reports_metric.rhai")])
                .args(extra),
        )
    };

    let run = metric_run(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("pass metric logos_blockchain_height > 0"),
        "{run:?}"
    );
    assert!(run.stderr.contains("pass scraped"), "{run:?}");
    // teardown emptied the target list
    assert_eq!(read(&sd_file).trim(), "[]");

    let run = metric_run(&[
        "--set",
        "op=>=",
        "--set",
        "threshold=1000000000",
        "--set",
        // Prometheus applies service-discovery changes at most every 5 s: query long
        // enough to see both nodes' series before judging.
        "within=9s",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: scenario failed"))
        .unwrap_or_else(|| panic!("no failure line: {run:?}"));
    assert!(
        line.contains("logos_blockchain_height >= 1000000000 does not hold for 2 of 2 series"),
        "{line}"
    );
    for node in ["node-0", "node-1"] {
        assert!(line.contains(&format!("node=\"{node}\"")), "{line}");
        // the failure names every node, so it points at each node's log
        assert!(run.stderr.contains(&format!("{node} log: ")), "{run:?}");
    }

    // a bad operator is a script error naming it, before anything is deployed
    let run = metric_run(&["--set", "op=>>"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(">>"), "{run:?}");
    drop(prom);
}
