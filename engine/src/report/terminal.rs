//! Plain-line progress on a terminal, and a summary table at the end.

use std::io::Write;
use std::sync::Mutex;

use super::{Outcome, Reporter, RunEvent, RunReport};

/// Writes one line per event (stderr by default) and a summary table.
pub struct TerminalReporter {
    out: Mutex<Box<dyn Write + Send>>,
    /// Print progress lines (heights, txs) as they come.
    pub progress: bool,
}

impl Default for TerminalReporter {
    fn default() -> Self {
        Self::new(Box::new(std::io::stderr()))
    }
}

impl TerminalReporter {
    /// A reporter writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            progress: true,
        }
    }

    fn line(&self, s: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    }

    /// The summary table for a report.
    pub fn render_summary(report: &RunReport) -> String {
        let mut s = String::new();
        let status = match &report.outcome {
            Outcome::Passed => "PASSED".to_owned(),
            Outcome::Failed => "FAILED".to_owned(),
            Outcome::Error(e) => format!("ERROR ({e})"),
            Outcome::Interrupted => "INTERRUPTED".to_owned(),
        };
        s.push_str(&format!(
            "── run {} {status} · seed {} · {} nodes · {} deployer\n",
            report.run_id, report.seed, report.nodes, report.deployer
        ));
        let w = report
            .verdicts
            .iter()
            .map(|v| v.name.len())
            .chain(report.workload_errors.iter().map(|w| w.name.len() + 9))
            .max()
            .unwrap_or(10)
            .max(10);
        for v in &report.verdicts {
            let mark = if v.verdict.passed { "pass" } else { "FAIL" };
            s.push_str(&format!("  {mark}  {:w$}  {}\n", v.name, v.verdict.message));
        }
        for e in &report.workload_errors {
            s.push_str(&format!(
                "  FAIL  {:w$}  {}\n",
                format!("workload {}", e.name),
                e.error
            ));
        }
        let t = &report.timings;
        s.push_str(&format!(
            "  blocks {} · txs {}/{} included · heights {} · deploy {:.1}s run {:.1}s teardown {:.1}s total {:.1}s\n",
            report.blocks_seen,
            report.txs_included,
            report.txs_submitted,
            heights(&report.final_heights),
            t.deploy.as_secs_f64(),
            t.run.as_secs_f64(),
            t.teardown.as_secs_f64(),
            t.total.as_secs_f64(),
        ));
        if let Some(l) = &report.inclusion_latency {
            s.push_str(&format!(
                "  inclusion latency median {} ms, p95 {} ms, max {} ms\n",
                l.median_ms, l.p95_ms, l.max_ms
            ));
        }
        if let Some(dir) = &report.run_dir
            && report.kept
        {
            s.push_str(&format!("  run dir kept: {}\n", dir.display()));
        }
        s
    }
}

fn heights(h: &[Option<u64>]) -> String {
    let v: Vec<String> = h
        .iter()
        .map(|x| x.map(|x| x.to_string()).unwrap_or_else(|| "?".into()))
        .collect();
    format!("[{}]", v.join(" "))
}

impl Reporter for TerminalReporter {
    fn on_event(&self, event: &RunEvent) {
        match event {
            RunEvent::DeployStarted {
                run_id,
                deployer,
                nodes,
                seed,
            } => self.line(&format!(
                "deploying {nodes} nodes ({deployer}), run {run_id}, seed {seed}"
            )),
            RunEvent::NodesStarted { run_dir, endpoints } => {
                if let Some(d) = run_dir {
                    self.line(&format!("run dir: {}", d.display()));
                }
                self.line("TESTNET_ENDPOINTS");
                for e in endpoints {
                    self.line(&format!("  {e}"));
                }
            }
            RunEvent::NodeReady { .. } => {}
            RunEvent::RunStarted {
                duration,
                workloads,
                expectations,
            } => self.line(&format!(
                "running for {} · workloads [{}] · expectations [{}]",
                humantime::format_duration(*duration),
                workloads.join(", "),
                expectations.join(", ")
            )),
            RunEvent::Progress {
                elapsed,
                heights: h,
                txs_submitted,
                txs_included,
            } => {
                if self.progress {
                    self.line(&format!(
                        "  {:>6.1}s heights {} txs {txs_included}/{txs_submitted}",
                        elapsed.as_secs_f64(),
                        heights(h)
                    ))
                }
            }
            RunEvent::WorkloadFailed { name, error } => {
                self.line(&format!("workload {name} failed: {error}"))
            }
            RunEvent::CooldownStarted { cooldown } => self.line(&format!(
                "cooldown {}",
                humantime::format_duration(*cooldown)
            )),
            RunEvent::ExpectationEvaluated {
                name,
                passed,
                message,
            } => self.line(&format!(
                "{} {name}: {message}",
                if *passed { "pass" } else { "FAIL" }
            )),
            RunEvent::Control { action, elapsed } => {
                self.line(&format!("  {:>6.1}s {action}", elapsed.as_secs_f64()))
            }
            RunEvent::TeardownStarted => {}
            RunEvent::TeardownFinished { run_dir, kept } => {
                if let (Some(d), true) = (run_dir, kept) {
                    self.line(&format!("kept run dir {}", d.display()));
                }
            }
            RunEvent::Finished { report } => self.line(&Self::render_summary(report)),
            RunEvent::Note { message } => self.line(message),
        }
    }
}
