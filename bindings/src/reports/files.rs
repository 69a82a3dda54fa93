//! The report files: JSON (every run report the script produced, with the exit code) and JUnit XML
//! for CI (one testsuite per run, one testcase per expectation and per failed workload, written
//! through quick-junit, the serializer nextest uses).

use std::path::Path;
use std::sync::Arc;

use engine::report::{Outcome, RunReport};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};
use serde::Serialize;

use super::hints::log_hints;
use crate::exit;
use crate::repeat::{RepeatStats, Repetition};

/// What the files describe: the script, its exit code, its error (if any) and its runs.
#[derive(Debug, Serialize)]
pub struct ScriptReport<'a> {
    /// The script file.
    pub script: String,
    /// Process exit code.
    pub exit_code: i32,
    /// The script error, rendered, when the script itself failed.
    pub error: Option<String>,
    /// Every run, in order (of every repetition with `--repeat`).
    #[serde(serialize_with = "serialize_runs")]
    pub runs: &'a [Arc<RunReport>],
    /// With `--repeat`: each repetition (seed, exit code, error, its runs' ids).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub repetitions: &'a [Repetition],
    /// With `--repeat`: pass rate, flake rate and the spread of the key figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<RepeatStats>,
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
    let class = report.script.as_str();
    let mut out = Report::new(class);
    for run in report.runs {
        let logs: String = log_hints(run)
            .iter()
            .map(|h| format!("\n{}", h.trim()))
            .collect();
        let mut suite = TestSuite::new(format!("run {}", run.run_id));
        suite.set_time(run.timings.total);
        suite.add_properties([
            Property::new("seed", run.seed.to_string()),
            Property::new("deployer", run.deployer.as_str()),
            Property::new("nodes", run.nodes.to_string()),
        ]);
        for v in &run.verdicts {
            let status = if v.verdict.passed {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(clean(&v.verdict.message))
                    .set_description(clean(&format!("{}{logs}", v.verdict.evidence)));
                s
            };
            suite.add_test_case(case(class, &v.name, status));
        }
        for w in &run.workload_errors {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(clean(&w.error));
            suite.add_test_case(case(class, &format!("workload {}", w.name), s));
        }
        let error = match &run.outcome {
            Outcome::Error(chain) => Some(("infrastructure", chain.to_string(), &chain.causes[..])),
            Outcome::Interrupted => Some(("run", "interrupted".to_owned(), &[][..])),
            Outcome::Passed | Outcome::Failed => None,
        };
        if let Some((name, message, causes)) = error {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(clean(&message));
            if !causes.is_empty() {
                let lines: Vec<String> = causes.iter().map(|c| format!("caused by: {c}")).collect();
                s.set_description(clean(&lines.join("\n")));
            }
            suite.add_test_case(case(class, name, s));
        }
        out.add_test_suite(suite);
    }
    if !report.repetitions.is_empty() {
        out.add_test_suite(repeat_suite(report));
    }
    // a failed run is already a failing testsuite; only a script error needs its own
    let script_errors: Vec<(String, &String)> = if report.repetitions.is_empty() {
        report
            .error
            .iter()
            .filter(|_| report.exit_code == exit::SCRIPT_ERROR || report.runs.is_empty())
            .map(|e| ("script".to_string(), e))
            .collect()
    } else {
        report
            .repetitions
            .iter()
            .filter(|r| r.exit_code == exit::SCRIPT_ERROR || r.run_ids.is_empty())
            .filter_map(|r| {
                r.error
                    .as_ref()
                    .map(|e| (format!("script (seed {})", r.seed), e))
            })
            .collect()
    };
    for (name, error) in script_errors {
        let mut suite = TestSuite::new(name);
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message(clean(error.lines().next().unwrap_or_default()));
        suite.add_test_case(case(class, "script", s));
        out.add_test_suite(suite);
    }
    out.to_string()
        .unwrap_or_else(|e| format!("<!-- the JUnit report could not be written: {e} -->\n"))
}

/// With `--repeat`: one testcase per expectation over every repetition. A verdict that failed in
/// some runs is flaky: each failing run is a `flakyFailure` when the repetition passed as a whole
/// (`--max-failure-rate`), a `rerunFailure` under the `failure` otherwise.
fn repeat_suite(report: &ScriptReport<'_>) -> TestSuite {
    let mut suite = TestSuite::new("repeat");
    suite.add_property(Property::new(
        "repetitions",
        report.repetitions.len().to_string(),
    ));
    let mut names: Vec<&str> = Vec::new();
    for v in report.runs.iter().flat_map(|r| &r.verdicts) {
        if !names.contains(&v.name.as_str()) {
            names.push(&v.name);
        }
    }
    for name in names {
        let judged: Vec<(&RunReport, &engine::report::NamedVerdict)> = report
            .runs
            .iter()
            .filter_map(|r| {
                r.verdicts
                    .iter()
                    .find(|v| v.name == name)
                    .map(|v| (&**r, v))
            })
            .collect();
        let failed: Vec<_> = judged.iter().filter(|(_, v)| !v.verdict.passed).collect();
        let runs = failed.iter().map(|(r, v)| {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun
                .set_message(clean(&format!("seed {}: {}", r.seed, v.verdict.message)))
                .set_time(r.timings.total);
            rerun
        });
        let status = if failed.is_empty() || report.exit_code == exit::PASSED {
            let mut s = TestCaseStatus::success();
            s.add_reruns(runs);
            s
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!(
                "failed in {} of {} runs",
                failed.len(),
                judged.len()
            ))
            .add_reruns(runs);
            s
        };
        suite.add_test_case(case(&report.script, name, status));
    }
    suite
}

fn case(class: &str, name: &str, status: TestCaseStatus) -> TestCase {
    let mut c = TestCase::new(name, status);
    c.set_classname(class);
    c
}

/// XML 1.0 cannot carry most control characters, even escaped: they become spaces.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (c as u32) < 0x20 && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect()
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
                verdict: Verdict::fail(
                    "node-2 height 3 < target 10 <&>\u{1}",
                    serde_json::json!({}),
                ),
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
            repetitions: &[],
            repeat: None,
        });
        let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        let counts = |n: roxmltree::Node<'_, '_>| {
            (
                n.attribute("tests").unwrap().to_owned(),
                n.attribute("failures").unwrap().to_owned(),
                n.attribute("errors").unwrap().to_owned(),
            )
        };
        assert_eq!(
            counts(suite),
            ("2".into(), "1".into(), "0".into()),
            "{text}"
        );
        assert_eq!(counts(doc.root_element()), counts(suite), "{text}");
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        // escaped in the file, read back whole; the control character became a space
        assert_eq!(
            failure.attribute("message"),
            Some("node-2 height 3 < target 10 <&> "),
            "{text}"
        );
        assert!(text.contains("&lt;&amp;&gt;"), "{text}");
        let seed = doc
            .descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("seed"))
            .unwrap();
        assert_eq!(seed.attribute("value"), Some("7"), "{text}");
    }

    #[test]
    fn repeated_runs_mark_a_verdict_that_failed_in_some_as_flaky() {
        let run = |seed: u64, passed: bool| {
            let mut r = RunReport::empty(seed, Outcome::Passed);
            r.run_id = format!("r{seed}");
            r.verdicts = vec![NamedVerdict {
                name: "convergence".into(),
                verdict: if passed {
                    Verdict::pass("ok", serde_json::Value::Null)
                } else {
                    Verdict::fail("two tips", serde_json::Value::Null)
                },
            }];
            Arc::new(r)
        };
        let runs = vec![run(1, true), run(2, false), run(3, true)];
        let repetitions: Vec<Repetition> = runs
            .iter()
            .map(|r| Repetition {
                seed: r.seed,
                exit_code: i32::from(!r.verdicts[0].verdict.passed),
                error: None,
                run_ids: vec![r.run_id.clone()],
            })
            .collect();
        for (exit_code, outer, inner) in [
            (0, None, "flakyFailure"),
            (1, Some("failure"), "rerunFailure"),
        ] {
            let text = junit(&ScriptReport {
                script: "s.rhai".into(),
                exit_code,
                error: None,
                runs: &runs,
                repetitions: &repetitions,
                repeat: None,
            });
            let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
            let suite = doc
                .descendants()
                .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("repeat"))
                .expect("a repeat suite");
            let case = suite
                .children()
                .find(|n| n.has_tag_name("testcase"))
                .unwrap();
            assert_eq!(case.attribute("name"), Some("convergence"));
            let kinds: Vec<&str> = case
                .children()
                .filter(|n| n.is_element())
                .map(|n| n.tag_name().name())
                .collect();
            match outer {
                None => assert_eq!(kinds, [inner], "{text}"),
                Some(o) => assert_eq!(kinds, [o, inner], "{text}"),
            }
            let rerun = case.children().find(|n| n.has_tag_name(inner)).unwrap();
            assert_eq!(
                rerun.attribute("message"),
                Some("seed 2: two tips"),
                "{text}"
            );
        }
    }
}
