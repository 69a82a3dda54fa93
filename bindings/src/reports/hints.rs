//! Pointers from a failed run to the logs of the nodes its failure messages name.

use std::path::{Path, PathBuf};

use engine::report::{Outcome, RunReport};

/// Lines pointing at the log files of the nodes a failed run's messages name (`node-2`), or at
/// every node's log dir when they name none. Empty for a passed run or a run dir that is gone.
pub fn log_hints(report: &RunReport) -> Vec<String> {
    let Some(run_dir) = report
        .run_dir
        .as_ref()
        .filter(|d| !report.passed() && report.kept && d.is_dir())
    else {
        return Vec::new();
    };
    let nodes = failing_nodes(report);
    if nodes.is_empty() {
        return vec![format!(
            "  node logs: {}",
            run_dir.join("node-<i>").join("logs").display()
        )];
    }
    nodes
        .into_iter()
        .map(|i| match node_log(run_dir, i) {
            Some(path) => format!("  node-{i} log: {}", path.display()),
            None => format!(
                "  node-{i} log: {} (no log file found)",
                run_dir.join(format!("node-{i}")).display()
            ),
        })
        .collect()
}

/// Indexes of the nodes (`node-<i>`, in range) named by a run's failure messages, in order.
pub(super) fn failing_nodes(report: &RunReport) -> Vec<usize> {
    let mut text = String::new();
    for v in report.verdicts.iter().filter(|v| !v.verdict.passed) {
        text.push_str(&v.verdict.message);
        text.push('\n');
    }
    for w in &report.workload_errors {
        text.push_str(&w.error);
        text.push('\n');
    }
    if let Outcome::Error(e) = &report.outcome {
        text.push_str(&e.to_string());
    }
    let mut found = Vec::new();
    for (at, _) in text.match_indices("node-") {
        let digits: String = text[at + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(i) = digits.parse::<usize>()
            && i < report.nodes.max(report.final_heights.len())
            && !found.contains(&i)
        {
            found.push(i);
        }
    }
    found
}

/// The node's own newest log file, else its captured output.
fn node_log(run_dir: &Path, i: usize) -> Option<PathBuf> {
    let dir = run_dir.join(format!("node-{i}"));
    let newest = std::fs::read_dir(dir.join("logs"))
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path());
    newest.or_else(|| Some(dir.join("output.log")).filter(|p| p.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::expectation::Verdict;
    use engine::report::NamedVerdict;

    #[test]
    fn failing_nodes_are_read_from_the_failure_messages() {
        let mut run = RunReport::empty(7, Outcome::Failed);
        run.nodes = 3;
        run.verdicts = vec![
            NamedVerdict {
                name: "a".into(),
                verdict: Verdict::fail(
                    "node-2 height 3 < target 10; node=\"node-0\"; node-7 and node-",
                    serde_json::Value::Null,
                ),
            },
            NamedVerdict {
                name: "b".into(),
                verdict: Verdict::pass("node-1 fine", serde_json::Value::Null),
            },
        ];
        assert_eq!(failing_nodes(&run), [2, 0]);
        // no run dir: no pointers
        assert!(log_hints(&run).is_empty());
    }
}
