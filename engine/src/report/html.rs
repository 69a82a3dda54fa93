//! The `--report-dir` HTML report: one self-contained `index.html` (inline
//! CSS and SVG plots, nothing fetched from the network) so a failing run can
//! be understood in one look, next to the recorded data and each node's
//! config and logs.
//!
//! Layout of the dir:
//! - `index.html`: summary, verdicts, plots, faults, timeline, links;
//! - `recorded-runs.json`: every [`RecordedRun`] (reload with `serde_json`);
//! - `runs/<run id>/node-<i>/{config.yaml, output.log, logs-*}`: copied node files;
//! - `report.json`, `junit.xml`: written by the CLI (linked when present when the HTML is written).

use std::fmt::Write as _;
use std::path::Path;

use crate::report::ControlAction;
use crate::report::plots;
use crate::report::recorder::{RecordedRun, SpanKind, copy_node_files};

/// Writes the report of one run into `dir` (created if missing).
pub fn write_report_dir(run: &RecordedRun, dir: &Path) -> Result<(), String> {
    write_runs_report_dir(std::slice::from_ref(run), dir)
}

/// Writes one report covering several runs (a script may run many plans).
pub fn write_runs_report_dir(runs: &[RecordedRun], dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the report dir {}: {e}", dir.display()))?;
    let mut runs = runs.to_vec();
    for run in &mut runs {
        if run.artifacts.is_empty()
            && let Some(run_dir) = run.run_dir.as_ref().filter(|d| d.is_dir())
        {
            run.artifacts = copy_node_files(run_dir, dir, &run.run_id);
        }
    }
    let json = serde_json::to_string_pretty(&runs)
        .map_err(|e| format!("cannot serialise the recorded runs: {e}"))?;
    let json_path = dir.join("recorded-runs.json");
    std::fs::write(&json_path, json)
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    let html = render(&runs, dir)?;
    let index = dir.join("index.html");
    std::fs::write(&index, html).map_err(|e| format!("cannot write {}: {e}", index.display()))
}

/// The HTML text; `dir` is only looked at for which sibling files exist.
pub fn render(runs: &[RecordedRun], dir: &Path) -> Result<String, String> {
    let mut h = String::new();
    let title = match runs {
        [one] => format!("run {} — {}", one.run_id, one.outcome),
        many => {
            let passed = many.iter().filter(|r| r.outcome == "passed").count();
            format!("{} runs — {passed} passed", many.len())
        }
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let mut files = Vec::new();
    for (name, what) in [
        ("report.json", "JSON report"),
        ("junit.xml", "JUnit XML"),
        ("recorded-runs.json", "recorded events and samples"),
    ] {
        if dir.join(name).is_file() || name == "recorded-runs.json" {
            files.push(format!("<a href=\"{name}\">{name}</a> ({what})"));
        }
    }
    let _ = writeln!(h, "<p class=\"files\">{}</p>", files.join(" · "));
    if runs.is_empty() {
        h.push_str("<p>No run was recorded.</p>\n");
    }
    for (k, run) in runs.iter().enumerate() {
        section(&mut h, k, run)?;
    }
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

fn section(h: &mut String, k: usize, run: &RecordedRun) -> Result<(), String> {
    let _ = writeln!(
        h,
        "<section class=\"run\" id=\"run-{k}\">\n<h2>run {} <span class=\"badge {}\">{}</span></h2>",
        esc(&run.run_id),
        esc(&run.outcome),
        esc(&run.outcome)
    );
    let secs =
        |ms: Option<u64>| ms.map_or("-".to_owned(), |m| format!("{:.1} s", m as f64 / 1000.0));
    let _ = writeln!(
        h,
        "<table class=\"kv\"><tr><th>seed</th><td>{}</td><th>deployer</th><td>{}</td><th>nodes</th><td>{}</td></tr>\n<tr><th>txs submitted</th><td>{}</td><th>txs included</th><td>{}</td><th>inclusion latency</th><td>{}</td></tr>\n<tr><th>run started</th><td>{}</td><th>cooldown</th><td>{}</td><th>finished</th><td>{}</td></tr></table>",
        run.seed,
        esc(&run.deployer),
        run.node_count(),
        run.txs_submitted,
        run.txs_included,
        esc(&latency_text(run)),
        secs(run.phases.run_started_ms),
        secs(run.phases.cooldown_started_ms),
        secs(run.phases.finished_ms),
    );
    if !run.failure.is_empty() {
        let _ = writeln!(h, "<p class=\"failure\">{}</p>", esc(&run.failure));
    }
    // verdicts
    h.push_str("<h3>expectations</h3>\n<table class=\"verdicts\"><tr><th>expectation</th><th>verdict</th><th>message</th></tr>\n");
    for v in &run.verdicts {
        let (class, word) = if v.passed {
            ("passed", "pass")
        } else {
            ("failed", "FAIL")
        };
        let evidence = if v.evidence.is_null() {
            String::new()
        } else {
            format!(
                "<details><summary>evidence</summary><pre>{}</pre></details>",
                esc(&serde_json::to_string_pretty(&v.evidence).unwrap_or_default())
            )
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td>{}</td><td>{word}</td><td>{}{evidence}</td></tr>",
            esc(&v.name),
            esc(&v.message)
        );
    }
    for (name, error) in &run.workload_errors {
        let _ = writeln!(
            h,
            "<tr class=\"failed\"><td>workload {}</td><td>FAIL</td><td>{}</td></tr>",
            esc(name),
            esc(error)
        );
    }
    if run.verdicts.is_empty() && run.workload_errors.is_empty() {
        h.push_str("<tr><td colspan=\"3\">no expectation was evaluated</td></tr>\n");
    }
    h.push_str("</table>\n<h3>plots</h3>\n");
    for (id, svg) in plots::run_plots(run)? {
        let _ = writeln!(
            h,
            "<figure class=\"plot\" id=\"plot-{k}-{id}\">{svg}</figure>"
        );
    }
    // faults and outages
    h.push_str("<h3>faults and node outages</h3>\n");
    if run.spans.is_empty() {
        h.push_str("<p>none</p>\n");
    } else {
        h.push_str(
            "<table class=\"spans\"><tr><th>kind</th><th>what</th><th>from</th><th>to</th></tr>\n",
        );
        for s in &run.spans {
            let kind = match s.kind {
                SpanKind::Fault => "fault",
                SpanKind::NodeDown => "node down",
            };
            let _ = writeln!(
                h,
                "<tr><td>{kind}</td><td>{}</td><td>{:.1} s</td><td>{}</td></tr>",
                esc(&s.label),
                s.start_ms as f64 / 1000.0,
                s.end_ms.map_or("end of run".to_owned(), |e| format!(
                    "{:.1} s",
                    e as f64 / 1000.0
                ))
            );
        }
        h.push_str("</table>\n");
    }
    // node files
    h.push_str("<h3>nodes</h3>\n<ul class=\"nodes\">\n");
    let mut nodes: Vec<usize> = run.artifacts.iter().map(|a| a.node).collect();
    nodes.dedup();
    for line in &run.endpoints {
        let _ = writeln!(h, "<li><code>{}</code></li>", esc(&line.to_string()));
    }
    for node in nodes {
        let links: Vec<String> = run
            .artifacts
            .iter()
            .filter(|a| a.node == node)
            .map(|a| {
                let name = a.path.rsplit('/').next().unwrap_or(&a.path);
                format!("<a href=\"{}\">{}</a>", esc(&a.path), esc(name))
            })
            .collect();
        let _ = writeln!(h, "<li>node-{node}: {}</li>", links.join(" "));
    }
    if run.artifacts.is_empty() {
        h.push_str("<li>node configs and logs were not kept for this run</li>\n");
    }
    h.push_str("</ul>\n");
    // timeline
    let _ = writeln!(
        h,
        "<details class=\"timeline\"><summary>timeline ({} events)</summary><table>",
        run.events.len()
    );
    for e in &run.events {
        let kind = e.event.get("event").and_then(|v| v.as_str()).unwrap_or("?");
        if kind == "progress" {
            continue;
        }
        // a control action as the terminal prints it; any other event as its JSON
        let what = e
            .event
            .get("action")
            .filter(|_| kind == "control")
            .and_then(|a| serde_json::from_value::<ControlAction>(a.clone()).ok())
            .map_or_else(|| e.event.to_string(), |a| a.to_string());
        let _ = writeln!(
            h,
            "<tr><td>{:.3} s</td><td>{}</td><td><code>{}</code></td></tr>",
            e.at_ms as f64 / 1000.0,
            esc(kind),
            esc(&what)
        );
    }
    h.push_str("</table></details>\n</section>\n");
    Ok(())
}

fn latency_text(run: &RecordedRun) -> String {
    let get = |k: &str| {
        run.inclusion_latency
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(serde_json::Value::as_u64)
    };
    match (get("median_ms"), get("p95_ms"), get("max_ms")) {
        (Some(m), Some(p), Some(x)) => format!("median {m} ms, p95 {p} ms, max {x} ms"),
        _ => "-".to_owned(),
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1000px}\
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em}\
.badge{font-size:.7em;padding:.1em .5em;border-radius:.3em;color:#fff;background:#888}\
.badge.passed{background:#2ca02c}.badge.failed,.badge.error{background:#d62728}.badge.interrupted{background:#ff7f0e}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
tr.failed td{background:#fde8e8}tr.passed td{background:#eaf7ea}\
.failure{color:#b00;font-weight:bold}figure.plot{margin:.5em 0}figure.plot svg{max-width:100%;height:auto}\
pre{white-space:pre-wrap;font-size:.85em}code{font-size:.85em}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{Endpoint, NodeEndpoint, NodeHost};
    use crate::links::Fault;
    use crate::report::RunEvent;
    use crate::report::recorder::RecordedEvent;

    /// The nodes list shows each endpoint's `TESTNET_ENDPOINTS` line and the timeline a
    /// control action as the terminal prints it, from the typed values.
    #[test]
    fn endpoints_and_control_actions_show_as_their_lines() {
        let endpoint: Endpoint = NodeEndpoint {
            node: 0,
            api: "http://127.0.0.1:4000".into(),
            testing: None,
            host: NodeHost::Attached,
        }
        .into();
        let control = RunEvent::Control {
            action: ControlAction::Fault {
                fault: Fault::Isolate(2),
                via: None,
                active: 1,
            },
            elapsed: std::time::Duration::from_secs(2),
        };
        let run = RecordedRun {
            run_id: "r1".into(),
            outcome: "passed".into(),
            endpoints: vec![endpoint],
            events: vec![RecordedEvent {
                at_ms: 2000,
                event: serde_json::to_value(&control).unwrap(),
            }],
            ..RecordedRun::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let html = render(&[run], dir.path()).unwrap();
        assert!(
            html.contains("<li><code>node-0 api http://127.0.0.1:4000</code></li>"),
            "{html}"
        );
        assert!(
            html.contains("<td>control</td><td><code>fault isolate node 2</code></td>"),
            "{html}"
        );
    }
}
