//! The HTML report: rendered from a recorded-run fixture (plots, series,
//! fault shading, self-contained, every SVG well-formed) and from a real short
//! run of a local testnet with a partition, both opened in headless Chromium
//! with a screenshot taken.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{deployer, fast};
use engine::deploy::KeepRunDir;
use engine::report::html::write_report_dir;
use engine::report::recorder::{RecordedRun, Recorder, SpanKind};
use engine::runner::{RunOptions, run_scenario};
use engine::scenario::ScenarioBuilder;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports-recorded-run.json")
}

/// A dir under the target dir that survives the test, so the report and the
/// screenshot can be looked at afterwards.
fn artifacts(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("reports")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// The inline `<svg ...>...</svg>` blocks of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("every svg is closed") + start + 6;
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// Every text drawn in an SVG (legends, captions, labels).
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("svg is not XML: {e}"));
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().trim().to_owned())
        .collect()
}

/// Rects filled with the fault colour (shading), as SVG writes it.
fn shaded_rects(svg: &str, rgb: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).expect("svg is XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter(|n| {
            n.attribute("fill")
                .is_some_and(|f| f.eq_ignore_ascii_case(rgb))
        })
        .filter(|n| {
            n.attribute("opacity")
                .or(n.attribute("fill-opacity"))
                .and_then(|o| o.parse::<f64>().ok())
                .is_some_and(|o| o < 0.5)
        })
        .count()
}

/// The decision every tool-gated test makes (`common::tools`), with the CI value passed in
/// rather than read from this process's environment (tests run in parallel).
#[test]
fn a_missing_tool_fails_under_ci_and_skips_elsewhere() {
    use common::tools::{decide, is_ci};
    for ci in ["true", "TRUE", "1", " true "] {
        assert!(is_ci(Some(ci)), "{ci:?}");
        let message = decide("no-such-tool-xyz", "not on PATH", Some(ci)).unwrap_err();
        assert!(
            message.contains("no-such-tool-xyz is required under CI"),
            "{message}"
        );
        assert!(message.contains("not on PATH"), "{message}");
    }
    let docker = decide("docker", "no engine", Some("true")).unwrap_err();
    assert!(docker.contains("docker-compose"), "{docker}");
    let chromium = decide("chromium", "absent", Some("1")).unwrap_err();
    assert!(
        chromium.contains("apt-get install chromium (.ci/deps"),
        "{chromium}"
    );
    for ci in [None, Some(""), Some("false"), Some("0")] {
        assert!(!is_ci(ci), "{ci:?}");
        assert_eq!(
            decide("tmux", "not on PATH", ci).unwrap(),
            "skipped: tmux not found (not on PATH)"
        );
    }
    assert!(common::tools::on_path(&["no-such-tool-xyz"]).is_none());
    assert!(common::tools::on_path(&["no-such-tool-xyz", "sh"]).is_some());
}

fn chromium() -> Option<PathBuf> {
    common::tools::on_path(&["chromium", "chromium-browser", "google-chrome"])
}

/// Runs chromium headless with a deadline; returns (stdout, stderr). Output
/// goes to files: a page's DOM is larger than a pipe's buffer.
fn run_chromium(bin: &Path, profile: &Path, args: &[String]) -> (String, String) {
    let out_path = profile.join("stdout.txt");
    let err_path = profile.join("stderr.txt");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("data").display()
        ))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().expect("wait chromium") {
            let o = std::fs::read_to_string(&out_path).unwrap_or_default();
            let e = std::fs::read_to_string(&err_path).unwrap_or_default();
            assert!(status.success(), "chromium {args:?} failed ({status}): {e}");
            return (o, e);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 90s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens the report in headless Chromium: the DOM it builds has every plot,
/// and a screenshot is taken. None (with a printed reason) when Chromium is absent; under CI
/// its absence fails the test (`common::tools`).
fn open_in_chromium(index: &Path, expect_svgs: usize) -> Option<PathBuf> {
    let Some(bin) = chromium() else {
        common::tools::skip_missing(
            "chromium",
            "no chromium, chromium-browser or google-chrome on PATH; the browser check of the report",
        );
        return None;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("file://{}", index.display());
    let (dom, stderr) = run_chromium(
        &bin,
        profile.path(),
        &[
            "--enable-logging=stderr".into(),
            "--v=0".into(),
            "--dump-dom".into(),
            url.clone(),
        ],
    );
    assert_eq!(
        dom.matches("<svg").count(),
        expect_svgs,
        "chromium's DOM lacks plots; stderr: {stderr}"
    );
    assert!(dom.contains("</html>"), "chromium's DOM is cut short");
    let console_errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Failed to load resource"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "page errors in chromium: {console_errors:?}"
    );
    let png = index.with_file_name("screenshot.png");
    run_chromium(
        &bin,
        profile.path(),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1100,2600".into(),
            url,
        ],
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&bytes[1..4], b"PNG", "screenshot is not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().expect("ihdr"));
    let height = u32::from_be_bytes(bytes[20..24].try_into().expect("ihdr"));
    assert_eq!((width, height), (1100, 2600));
    // a blank page compresses to a few KB; plots and tables do not
    assert!(
        bytes.len() > 40_000,
        "screenshot looks empty ({} bytes)",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
    Some(png)
}

#[test]
fn report_from_a_recorded_run_has_every_plot_with_series_and_fault_shading() {
    let run = RecordedRun::load(&fixture()).expect("fixture loads");
    let dir = artifacts("fixture");
    write_report_dir(&run, &dir).expect("report written");
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");

    // self-contained: nothing fetched from elsewhere
    for needle in [
        "src=\"http",
        "href=\"http",
        "<script",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(needle), "index.html references {needle}");
    }
    // summary, verdicts (escaped), failure line, fault table
    assert!(html.contains("run fixture-run-1"), "run id missing");
    // the recorded endpoints show as the lines the terminal printed
    assert!(html.contains(
        "<li><code>node-0 api http://127.0.0.1:41000 p2p 127.0.0.1:42000 logs /tmp/x/node-0/logs</code></li>"
    ));
    assert!(html.contains("<span class=\"badge failed\">failed</span>"));
    assert!(
        html.contains("node-0 lib 12, node-2 lib 7 &lt;&amp;&gt;"),
        "verdict message not escaped"
    );
    assert!(html.contains("<tr class=\"failed\"><td>convergence</td><td>FAIL</td>"));
    assert!(html.contains("<tr class=\"passed\"><td>consensus_liveness</td><td>pass</td>"));
    assert!(html.contains("<td>f1: partition [[0, 1], [2]]</td><td>4.0 s</td><td>8.0 s</td>"));
    assert!(html.contains("median 500 ms, p95 2900 ms, max 3500 ms"));

    let plots = svgs(&html);
    assert_eq!(
        plots.len(),
        6,
        "heights, txs, latency, peers, forks, recovery"
    );
    let texts: Vec<Vec<String>> = plots.iter().map(|s| svg_texts(s)).collect();
    let has = |k: usize, t: &str| texts[k].iter().any(|x| x == t);
    // heights: a legend entry per node, the fault and the outage labelled, phase markers
    assert!(has(0, "height per node"), "{:?}", texts[0]);
    for node in ["node-0", "node-1", "node-2"] {
        assert!(has(0, node), "heights legend lacks {node}: {:?}", texts[0]);
        assert!(has(3, node), "peers legend lacks {node}: {:?}", texts[3]);
    }
    assert!(has(0, "f1: partition [[0, 1], [2]]"), "{:?}", texts[0]);
    assert!(has(0, "kill node-2"), "{:?}", texts[0]);
    assert!(has(0, "run") && has(0, "cooldown"), "{:?}", texts[0]);
    assert!(has(1, "submitted") && has(1, "included"), "{:?}", texts[1]);
    assert!(has(2, "inclusion latency distribution"), "{:?}", texts[2]);
    assert!(has(3, "peers per node"), "{:?}", texts[3]);
    // a recording without tips (older than the forks plot) and a report without recovery
    // figures: the two plots say there is nothing to draw, with no axes
    assert!(has(4, "no data: no sample was recorded"), "{:?}", texts[4]);
    assert!(
        has(
            5,
            "no data: no fault was reverted and no node started again"
        ),
        "{:?}",
        texts[5]
    );
    assert!(!texts[5].iter().any(|t| t == "time since deploy (s)"));
    // fault shading (red) and the outage (grey) on every time plot, none on the histogram
    for k in [0, 1, 3] {
        assert_eq!(
            shaded_rects(plots[k], "#D62728"),
            1,
            "fault shading in plot {k}"
        );
        assert_eq!(
            shaded_rects(plots[k], "#6E6E6E"),
            1,
            "outage shading in plot {k}"
        );
    }
    assert_eq!(shaded_rects(plots[2], "#D62728"), 0);
    // a line per node: node-2's gap while killed splits its line in two
    let polylines = |svg: &str| {
        roxmltree::Document::parse(svg)
            .expect("xml")
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .count()
    };
    assert!(
        polylines(plots[0]) >= 4,
        "heights: 3 nodes, node-2 in two pieces"
    );
    // the recorded data is written next to the page and reloads identically
    let again: Vec<RecordedRun> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("recorded-runs.json")).expect("recorded-runs.json"),
    )
    .expect("recorded-runs.json parses");
    assert_eq!(again, vec![run]);

    open_in_chromium(&dir.join("index.html"), 6);
}

#[test]
fn bad_recorded_run_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(&p, "{\"run_id\": 5}").unwrap();
    let e = RecordedRun::load(&p).unwrap_err();
    assert!(e.contains("bad.json") && e.contains("line 1 column"), "{e}");
    let e = RecordedRun::load(&dir.path().join("missing.json")).unwrap_err();
    assert!(e.contains("cannot read recorded run"), "{e}");
    // a report dir that cannot be created is an error, not a panic
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let e = write_report_dir(&RecordedRun::default(), &file.join("sub")).unwrap_err();
    assert!(e.contains("cannot create the report dir"), "{e}");
}

/// Partitions node-2 away for a while, then heals.
struct PartitionForAWhile;

impl engine::workload::Workload for PartitionForAWhile {
    fn name(&self) -> String {
        "partition_for_a_while".to_owned()
    }

    fn run(
        &self,
        ctx: engine::context::RunContext,
        stop: engine::CancellationToken,
    ) -> futures::future::BoxFuture<'static, Result<(), engine::workload::WorkloadError>> {
        Box::pin(async move {
            let err = |e: engine::deploy::ControlError| {
                engine::workload::WorkloadError::new(e.to_string())
            };
            tokio::time::sleep(Duration::from_millis(1200)).await;
            ctx.testnet()
                .partition(vec![vec![0, 1], vec![2]])
                .await
                .map_err(err)?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            ctx.testnet().heal().await.map_err(err)?;
            stop.cancelled().await;
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_of_a_real_run_with_a_partition() {
    let base = tempfile::tempdir().unwrap();
    let dir = artifacts("real-run");
    let recorder = Arc::new(
        Recorder::new()
            .with_sample_interval(Some(Duration::from_millis(200)))
            .with_artifacts_dir(&dir),
    );
    let plan = ScenarioBuilder::topology_with(|t| fast(t.network_full().nodes(3)))
        .wallets(10)
        .transactions_with(|txs| txs.rate(4.0).users(5))
        .enable_network_faults()
        .with_workload(Arc::new(PartitionForAWhile))
        .expect_consensus_liveness()
        .with_run_duration(Duration::from_secs(5))
        .seed(5)
        .build()
        .unwrap();
    let opts = RunOptions {
        keep: KeepRunDir::Never,
        ready_timeout: Duration::from_secs(20),
        reporters: vec![recorder.clone()],
        ..RunOptions::default()
    };
    let report = run_scenario(&plan, &deployer(base.path()), opts).await;
    let runs = recorder.runs();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.run_id, report.run_id);
    assert_eq!(
        run.outcome,
        if report.passed() { "passed" } else { "failed" }
    );
    assert_eq!(run.seed, 5);
    // nodes were sampled while up: heights rise, peers are seen
    assert!(
        run.node_samples.len() >= 10,
        "{} samples",
        run.node_samples.len()
    );
    let last = run.node_samples.last().unwrap();
    assert!(
        last.heights.iter().all(|h| h.is_some_and(|h| h >= 3)),
        "{last:?}"
    );
    assert!(
        run.node_samples
            .iter()
            .any(|s| s.peers.iter().all(|p| *p == Some(2))),
        "full mesh of 3 never seen with 2 peers each"
    );
    assert!(!run.progress.is_empty());
    assert!(run.txs_submitted > 0 && run.txs_submitted == report.txs_submitted);
    // per-transaction latencies, when the engine reports them, feed the histogram
    let json = serde_json::to_value(&report).unwrap();
    if let Some(all) = json["inclusion_latencies_ms"].as_array() {
        assert_eq!(run.inclusion_latencies_ms.len(), all.len());
        assert_eq!(all.len() as u64, report.txs_included);
    }
    // the partition is one fault span on the run's axis, inside the run phase
    let faults: Vec<_> = run
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Fault)
        .collect();
    assert_eq!(faults.len(), 1, "{:?}", run.spans);
    let (start, end) = (faults[0].start_ms, faults[0].end_ms.expect("healed"));
    let run_started = run.phases.run_started_ms.unwrap();
    assert!(
        start >= run_started + 1000 && start <= run_started + 2500,
        "{start} vs {run_started}"
    );
    assert!(
        (1200..=2500).contains(&(end - start)),
        "span {start}..{end}"
    );
    // node files were copied before teardown removed the run dir
    assert!(!base.path().join(&report.run_id).exists() || report.kept);
    for node in 0..3 {
        for kind in ["config", "log"] {
            let copied: usize = run
                .artifacts
                .iter()
                .filter(|a| a.node == node && a.kind == kind)
                .map(|a| std::fs::metadata(dir.join(&a.path)).unwrap().len() as usize)
                .sum();
            assert!(
                copied > 0,
                "no {kind} copied for node-{node}: {:?}",
                run.artifacts
            );
        }
    }
    // recovery measured: 15 slots of partition with k = 5 usually fork the testnet for good
    // (both sides past k); either the heal converged before the run ended, or the fork at the
    // heal was deeper than k and the nodes stay on two tips. Each sample knows every node's tip
    // (the forks plot).
    let heals = &report.recovery.heals;
    assert_eq!(heals.len(), 1, "{:?}", report.recovery);
    assert_eq!(heals[0].fault, "partition [[0, 1], [2]]");
    let depth = heals[0].fork_depth.expect("fork depth at the heal");
    let bar = match heals[0].converged_after_ms {
        Some(ms) => {
            assert!(ms < 5_000, "{ms} ms");
            format!("partition [[0, 1], [2]]: {ms} ms")
        }
        None => {
            assert!(
                depth > 5,
                "not converged although the fork was {depth} <= k deep"
            );
            assert_ne!(last.tips[2], last.tips[0], "{last:?}");
            "partition [[0, 1], [2]]: not converged".to_owned()
        }
    };
    assert!(last.tips.iter().all(Option::is_some), "{last:?}");
    write_report_dir(run, &dir).expect("report written");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let plots = svgs(&html);
    assert_eq!(plots.len(), 6);
    let recovery = svg_texts(plots[5]);
    assert!(recovery.contains(&bar), "{bar}: {recovery:?}");
    for k in [0, 1, 3] {
        assert_eq!(
            shaded_rects(plots[k], "#D62728"),
            1,
            "fault shading in plot {k}"
        );
    }
    assert!(html.contains("href=\"runs/"), "links to node files");
    open_in_chromium(&dir.join("index.html"), 6);
}
