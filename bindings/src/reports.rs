//! Report files of one `run`: JSON (every run report the script produced, with the exit code) and
//! JUnit XML (one testsuite per run, one testcase per expectation and per failed workload) for CI.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use engine::report::{Outcome, RunReport};
use serde::Serialize;

/// What the files describe: the script, its exit code, its error (if any) and its runs.
#[derive(Debug, Serialize)]
pub struct ScriptReport<'a> {
    /// The script file.
    pub script: String,
    /// Process exit code.
    pub exit_code: i32,
    /// The script error, rendered, when the script itself failed.
    pub error: Option<String>,
    /// Every run, in order.
    #[serde(serialize_with = "serialize_runs")]
    pub runs: &'a [Arc<RunReport>],
}

fn serialize_runs<S: serde::Serializer>(runs: &&[Arc<RunReport>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(runs.iter().map(|r| &**r))
}

/// Writes the JSON report.
pub fn write_json(path: &Path, report: &ScriptReport<'_>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| format!("cannot serialise the report: {e}"))?;
    write(path, &text)
}

/// Writes the JUnit XML report.
pub fn write_junit(path: &Path, report: &ScriptReport<'_>) -> Result<(), String> {
    write(path, &junit(report))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The JUnit XML text.
pub fn junit(report: &ScriptReport<'_>) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    let class = xml(&report.script);
    for run in report.runs {
        let mut cases = String::new();
        let (mut t, mut f, mut e) = (0, 0, 0);
        for v in &run.verdicts {
            t += 1;
            let _ = write!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{}\"",
                xml(&v.name)
            );
            if v.verdict.passed {
                let _ = writeln!(cases, "/>");
            } else {
                f += 1;
                let _ = writeln!(
                    cases,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml(&v.verdict.message),
                    xml(&v.verdict.evidence.to_string())
                );
            }
        }
        for w in &run.workload_errors {
            t += 1;
            f += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"workload {}\">\n      <failure message=\"{}\"/>\n    </testcase>",
                xml(&w.name),
                xml(&w.error)
            );
        }
        match &run.outcome {
            Outcome::Error(message) => {
                t += 1;
                e += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"infrastructure\">\n      <error message=\"{}\"/>\n    </testcase>",
                    xml(message)
                );
            }
            Outcome::Interrupted => {
                t += 1;
                e += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"run\">\n      <error message=\"interrupted\"/>\n    </testcase>"
                );
            }
            Outcome::Passed | Outcome::Failed => {}
        }
        let _ = writeln!(
            suites,
            "  <testsuite name=\"run {}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" time=\"{:.3}\">\n    <properties>\n      <property name=\"seed\" value=\"{}\"/>\n      <property name=\"deployer\" value=\"{}\"/>\n      <property name=\"nodes\" value=\"{}\"/>\n    </properties>\n{cases}  </testsuite>",
            xml(&run.run_id),
            run.timings.total.as_secs_f64(),
            run.seed,
            xml(&run.deployer),
            run.nodes,
        );
        tests += t;
        failures += f;
        errors += e;
    }
    // a failed run is already a failing testsuite; only a script error needs its own
    if let Some(error) = report
        .error
        .as_ref()
        .filter(|_| report.exit_code == crate::exit::SCRIPT_ERROR || report.runs.is_empty())
    {
        tests += 1;
        errors += 1;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"script\" tests=\"1\" failures=\"0\" errors=\"1\">\n    <testcase classname=\"{class}\" name=\"script\">\n      <error message=\"{}\"/>\n    </testcase>\n  </testsuite>",
            xml(error.lines().next().unwrap_or_default())
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{class}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n{suites}</testsuites>\n"
    )
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::expectation::Verdict;
    use engine::report::NamedVerdict;

    #[test]
    fn junit_counts_failures_and_escapes() {
        let mut run = RunReport::empty(7, Outcome::Failed);
        run.run_id = "r1".into();
        run.verdicts = vec![
            NamedVerdict {
                name: "consensus_liveness".into(),
                verdict: Verdict::fail("node-2 height 3 < target 10 <&>", serde_json::json!({})),
            },
            NamedVerdict {
                name: "tx_inclusion".into(),
                verdict: Verdict::pass("ok", serde_json::Value::Null),
            },
        ];
        let runs = vec![Arc::new(run)];
        let text = junit(&ScriptReport {
            script: "s.rhai".into(),
            exit_code: 1,
            error: None,
            runs: &runs,
        });
        assert!(
            text.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
            "{text}"
        );
        assert!(
            text.contains("node-2 height 3 &lt; target 10 &lt;&amp;&gt;"),
            "{text}"
        );
        assert!(
            text.contains("<property name=\"seed\" value=\"7\"/>"),
            "{text}"
        );
    }
}
