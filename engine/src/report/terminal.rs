//! Progress on a terminal, and a summary table at the end.
//!
//! Two modes. Plain: one line per event, byte-for-byte stable because tests
//! and log scrapers parse it; used whenever the output is not an interactive
//! terminal (or `NO_COLOR` / `TERM=dumb` asks for it). Live: an indicatif
//! display counting nodes ready while deploying and a bar over the run
//! duration showing heights, transactions and active faults; every other
//! line is printed above the bar so nothing is lost, and the bar is cleared
//! before the summary table.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Outcome, Reporter, RunEvent, RunReport};

/// Writes one line per event (stderr by default) and a summary table.
pub struct TerminalReporter {
    out: Mutex<Box<dyn Write + Send>>,
    /// Print progress lines (heights, txs) as they come.
    pub progress: bool,
    /// The live display; `None` in plain mode.
    live: Option<Mutex<Live>>,
}

impl Default for TerminalReporter {
    /// Writes to stderr, live when [`live_mode`] says the terminal allows it.
    fn default() -> Self {
        let mut r = Self::new(Box::new(std::io::stderr()));
        let env = |k: &str| std::env::var_os(k);
        if live_mode(
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
            env("NO_COLOR").as_deref(),
            env("TERM").as_deref(),
        ) {
            r.live = Some(Mutex::new(Live::default()));
        }
        r
    }
}

/// Whether to draw a live progress display rather than plain lines: only
/// when both stdout and stderr (where it draws) are terminals, `NO_COLOR` is
/// unset or empty, and `TERM` is not `dumb`. Redirecting either stream (CI,
/// tests, `| tee`) therefore keeps the parseable plain lines.
pub fn live_mode(
    stdout_tty: bool,
    stderr_tty: bool,
    no_color: Option<&OsStr>,
    term: Option<&OsStr>,
) -> bool {
    stdout_tty
        && stderr_tty
        && no_color.is_none_or(|v| v.is_empty())
        && term.is_none_or(|t| t != "dumb")
}

/// The live bar being drawn, if any, so that output from outside the
/// reporter (a script's `print`) can be written above it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn set_active(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Prints a line on stdout; while a live bar is drawn, it is hidden for the
/// write and redrawn below, so the line is neither lost nor garbled.
pub fn println_above_bar(line: &str) {
    let bar = ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let print = || {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// What the live display knows between events.
#[derive(Default)]
struct Live {
    bar: Option<ProgressBar>,
    /// Run duration, to scale the run bar.
    duration: Duration,
    heights: Vec<Option<u64>>,
    txs_submitted: u64,
    txs_included: u64,
    faults: FaultCount,
}

/// Active faults, followed from `Control` action strings: link faults
/// applied minus reverted, and nodes stopped/killed/paused and not back.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct FaultCount {
    /// Link faults applied and not yet reverted.
    pub links: usize,
    /// Nodes currently down.
    pub down: BTreeSet<usize>,
}

impl FaultCount {
    /// Updates the count from one `Control` action: the faults in force as the action says,
    /// the nodes it took down or brought back.
    pub fn apply(&mut self, action: &super::ControlAction) {
        if let Some(n) = action.faults_in_force() {
            self.links = n;
        }
        match action.node_up_down() {
            Some((n, true)) => {
                self.down.insert(n);
            }
            Some((n, false)) => {
                self.down.remove(&n);
            }
            None => {}
        }
    }

    /// Link faults plus nodes down.
    pub fn active(&self) -> usize {
        self.links + self.down.len()
    }
}

/// The live run bar's message: per-node heights, transactions and faults.
pub fn progress_message(
    heights_: &[Option<u64>],
    txs_submitted: u64,
    txs_included: u64,
    faults: &FaultCount,
) -> String {
    let mut s = format!(
        "heights {} · txs {txs_included}/{txs_submitted} included · faults {}",
        heights(heights_),
        faults.active()
    );
    if !faults.down.is_empty() {
        let down: Vec<String> = faults.down.iter().map(|n| n.to_string()).collect();
        s.push_str(&format!(" (down {})", down.join(" ")));
    }
    s
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl TerminalReporter {
    /// A reporter writing plain lines to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            progress: true,
            live: None,
        }
    }

    /// Whether this reporter draws a live display.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
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
            Outcome::Error(e) => format!("ERROR ({})", e.message),
            Outcome::Interrupted => "INTERRUPTED".to_owned(),
        };
        let api = report
            .api_dialect
            .as_ref()
            .map(|d| format!(" · {d} API"))
            .unwrap_or_default();
        s.push_str(&format!(
            "── run {} {status} · seed {} · {} nodes · {} deployer{api}\n",
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
        if let Outcome::Error(e) = &report.outcome {
            for c in &e.causes {
                s.push_str(&format!("  caused by: {c}\n"));
            }
        }
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
        let rec = &report.recovery;
        if !rec.heals.is_empty() {
            let open = rec
                .heals
                .iter()
                .filter(|h| h.converged_after_ms.is_none())
                .count();
            s.push_str(&format!(
                "  recovery: {} reverts, heal to convergence {}{}{}\n",
                rec.heals.len(),
                rec.heal_to_convergence_ms
                    .as_ref()
                    .map_or_else(|| "n/a".to_owned(), |q| q.render("ms")),
                rec.fork_depth
                    .as_ref()
                    .map_or_else(String::new, |q| format!(
                        ", fork depth at heal max {:.0}",
                        q.max
                    )),
                if open > 0 {
                    format!(", {open} not converged")
                } else {
                    String::new()
                }
            ));
        }
        if !rec.catch_ups.is_empty() {
            let open = rec
                .catch_ups
                .iter()
                .filter(|c| c.caught_up_after_ms.is_none())
                .count();
            s.push_str(&format!(
                "  recovery: {} nodes back (restarted, resumed, clock reset, disk freed), catch-up {}{}\n",
                rec.catch_ups.len(),
                rec.catch_up_ms
                    .as_ref()
                    .map_or_else(|| "n/a".to_owned(), |q| q.render("ms")),
                if open > 0 {
                    format!(", {open} not caught up")
                } else {
                    String::new()
                }
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
    super::brief::heights(h)
}

impl Reporter for TerminalReporter {
    fn on_event(&self, event: &RunEvent) {
        match &self.live {
            Some(live) => self.on_live(&mut live.lock().unwrap_or_else(|e| e.into_inner()), event),
            None => self.on_plain(event),
        }
    }
}

impl TerminalReporter {
    /// Prints a line above the live bar (or plainly when there is none).
    fn above(&self, live: &Live, s: &str) {
        match &live.bar {
            Some(bar) => bar.suspend(|| self.line(s)),
            None => self.line(s),
        }
    }

    fn on_live(&self, live: &mut Live, event: &RunEvent) {
        match event {
            RunEvent::DeployStarted { nodes, .. } => {
                self.on_plain(event);
                if let Some(old) = live.bar.take() {
                    old.finish_and_clear();
                    set_active(None);
                }
                *live = Live::default();
                let bar = ProgressBar::with_draw_target(
                    Some(*nodes as u64),
                    ProgressDrawTarget::stderr(),
                );
                bar.set_style(style(
                    "{spinner:.cyan} deploying: {pos}/{len} nodes ready {elapsed:.dim} {wide_msg}",
                ));
                bar.enable_steady_tick(Duration::from_millis(120));
                set_active(Some(bar.clone()));
                live.bar = Some(bar);
            }
            RunEvent::NodeReady { .. } => {
                if let Some(bar) = &live.bar {
                    bar.inc(1);
                }
            }
            RunEvent::RunStarted { duration, .. } => {
                self.above(live, &plain_text(event, false).unwrap_or_default());
                live.duration = *duration;
                if let Some(bar) = &live.bar {
                    bar.set_style(style(
                        &format!(
                            "{{spinner:.green}} running [{{bar:30.green/dim}}] {{elapsed}}/{} {{wide_msg}}",
                            humantime::format_duration(*duration)
                        ),
                    ));
                    bar.reset();
                    bar.set_length(duration.as_millis() as u64);
                    bar.set_position(0);
                    bar.set_message(progress_message(&[], 0, 0, &live.faults));
                }
            }
            RunEvent::Progress {
                elapsed,
                heights: h,
                txs_submitted,
                txs_included,
            } => {
                live.heights.clone_from(h);
                live.txs_submitted = *txs_submitted;
                live.txs_included = *txs_included;
                if let Some(bar) = &live.bar {
                    bar.set_position(
                        (elapsed.as_millis() as u64).min(live.duration.as_millis() as u64),
                    );
                    bar.set_message(progress_message(
                        h,
                        *txs_submitted,
                        *txs_included,
                        &live.faults,
                    ));
                }
            }
            RunEvent::Control { action, .. } => {
                live.faults.apply(action);
                self.above(live, &plain_text(event, false).unwrap_or_default());
                if let Some(bar) = &live.bar {
                    bar.set_message(progress_message(
                        &live.heights,
                        live.txs_submitted,
                        live.txs_included,
                        &live.faults,
                    ));
                }
            }
            RunEvent::CooldownStarted { cooldown } => {
                if let Some(bar) = &live.bar {
                    bar.set_style(style("{spinner:.yellow} {msg}"));
                    bar.set_message(format!(
                        "cooldown {} · {}",
                        humantime::format_duration(*cooldown),
                        progress_message(
                            &live.heights,
                            live.txs_submitted,
                            live.txs_included,
                            &live.faults
                        )
                    ));
                } else {
                    self.on_plain(event);
                }
            }
            RunEvent::TeardownStarted => {
                if let Some(bar) = &live.bar {
                    bar.set_style(style("{spinner:.yellow} {msg}"));
                    bar.set_message("tearing down");
                }
            }
            RunEvent::Finished { .. } => {
                if let Some(bar) = live.bar.take() {
                    set_active(None);
                    bar.finish_and_clear();
                }
                self.on_plain(event);
            }
            _ => {
                if let Some(s) = plain_text(event, self.progress) {
                    self.above(live, &s);
                }
            }
        }
    }

    fn on_plain(&self, event: &RunEvent) {
        if let Some(s) = plain_text(event, self.progress) {
            self.line(&s);
        }
    }
}

/// The exact text plain mode prints for an event, lines joined by `\n`
/// (None for events that print nothing).
fn plain_text(event: &RunEvent, progress: bool) -> Option<String> {
    let s = match event {
        RunEvent::DeployStarted {
            run_id,
            deployer,
            nodes,
            seed,
        } => format!("deploying {nodes} nodes ({deployer}), run {run_id}, seed {seed}"),
        RunEvent::NodesStarted { run_dir, endpoints } => {
            let mut lines = Vec::new();
            if let Some(d) = run_dir {
                lines.push(format!("run dir: {}", d.display()));
            }
            lines.push("TESTNET_ENDPOINTS".to_owned());
            let full = endpoints.len() <= super::brief::FULL_UP_TO;
            // a large testnet: the first few here, every line in the run dir
            let file = run_dir
                .as_ref()
                .map(|d| d.join("endpoints.txt"))
                .filter(|f| {
                    !full
                        && std::fs::write(
                            f,
                            endpoints
                                .iter()
                                .map(|e| format!("{e}\n"))
                                .collect::<String>(),
                        )
                        .is_ok()
                });
            match file {
                Some(f) => {
                    let named = super::brief::NAMED;
                    lines.extend(endpoints[..named].iter().map(|e| format!("  {e}")));
                    lines.push(format!(
                        "  ... and {} more in {}",
                        endpoints.len() - named,
                        f.display()
                    ));
                }
                None => lines.extend(endpoints.iter().map(|e| format!("  {e}"))),
            }
            lines.join("\n")
        }
        RunEvent::NodeReady { .. } | RunEvent::TeardownStarted => return None,
        RunEvent::RunStarted {
            duration,
            workloads,
            expectations,
        } => format!(
            "running for {} · workloads [{}] · expectations [{}]",
            humantime::format_duration(*duration),
            workloads.join(", "),
            expectations.join(", ")
        ),
        RunEvent::Progress {
            elapsed,
            heights: h,
            txs_submitted,
            txs_included,
        } => {
            if !progress {
                return None;
            }
            format!(
                "  {:>6.1}s heights {} txs {txs_included}/{txs_submitted}",
                elapsed.as_secs_f64(),
                heights(h)
            )
        }
        RunEvent::WorkloadFailed { name, error } => format!("workload {name} failed: {error}"),
        RunEvent::CooldownStarted { cooldown } => {
            format!("cooldown {}", humantime::format_duration(*cooldown))
        }
        RunEvent::ExpectationEvaluated {
            name,
            passed,
            message,
        } => format!(
            "{} {name}: {message}",
            if *passed { "pass" } else { "FAIL" }
        ),
        RunEvent::Control { action, elapsed } => {
            format!("  {:>6.1}s {action}", elapsed.as_secs_f64())
        }
        RunEvent::TeardownFinished { run_dir, kept } => match (run_dir, kept) {
            (Some(d), true) => format!("kept run dir {}", d.display()),
            _ => return None,
        },
        RunEvent::Finished { report } => TerminalReporter::render_summary(report),
        RunEvent::Note { message } => message.clone(),
    };
    Some(s)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn live_only_on_two_terminals_without_opt_out() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert!(live_mode(true, true, None, os("xterm-256color")));
        assert!(live_mode(true, true, os(""), None));
        assert!(!live_mode(false, true, None, os("xterm")));
        assert!(!live_mode(true, false, None, os("xterm")));
        assert!(!live_mode(true, true, os("1"), os("xterm")));
        assert!(!live_mode(true, true, None, os("dumb")));
    }

    #[test]
    fn writer_reporters_are_plain() {
        assert!(!TerminalReporter::new(Box::new(Buf::default())).is_live());
    }

    #[test]
    fn faults_follow_control_actions() {
        use crate::deploy::control_log::NodeAction as N;
        use crate::report::ControlAction as A;
        let fault = |active| A::Fault {
            fault: crate::links::Fault::Partition(vec![vec![0], vec![1, 2]]),
            via: None,
            active,
        };
        let mut f = FaultCount::default();
        for a in [
            fault(1),
            fault(2),
            A::node(N::Kill, 2),
            A::node(N::Pause, 0),
            A::Node {
                action: N::AddNode,
                node: 3,
                detail: Some("peers [0], stake 1".into()),
            },
        ] {
            f.apply(&a);
        }
        assert_eq!((f.links, f.active()), (2, 4));
        f.apply(&A::Revert {
            id: crate::links::FaultId(1),
            active: 1,
        });
        f.apply(&A::node(N::Resume, 0));
        assert_eq!((f.links, f.active()), (1, 2));
        f.apply(&A::Heal { reverted: 1 });
        f.apply(&A::node(N::Restart, 2));
        assert_eq!(f, FaultCount::default());
    }

    /// Clearing some links drops the count to the faults still in force (the text of the event
    /// used to be parsed back, and `clear` had no arm: the count never dropped).
    #[test]
    fn the_fault_count_drops_after_clear_links() {
        use crate::report::ControlAction as A;
        let mut f = FaultCount::default();
        for active in 1..=3 {
            f.apply(&A::Fault {
                fault: crate::links::Fault::Latency {
                    links: crate::links::LinkSel::Node(1),
                    delay: Duration::from_millis(50),
                    jitter: Duration::ZERO,
                },
                via: None,
                active,
            });
        }
        assert_eq!(f.active(), 3);
        f.apply(&A::Clear {
            links: crate::links::LinkSel::Node(1),
            touched: 3,
            active: 1,
        });
        assert_eq!(f.active(), 1);
    }

    #[test]
    fn progress_message_shows_heights_txs_and_faults() {
        use crate::deploy::control_log::NodeAction as N;
        use crate::report::ControlAction as A;
        let mut f = FaultCount::default();
        assert_eq!(
            progress_message(&[Some(4), None, Some(5)], 9, 7, &f),
            "heights [4 ? 5] · txs 7/9 included · faults 0"
        );
        f.apply(&A::Fault {
            fault: crate::links::Fault::Isolate(1),
            via: None,
            active: 1,
        });
        f.apply(&A::node(N::Stop, 2));
        assert_eq!(
            progress_message(&[Some(4)], 0, 0, &f),
            "heights [4] · txs 0/0 included · faults 2 (down 2)"
        );
    }

    #[test]
    fn plain_lines_are_unchanged() {
        let buf = Buf::default();
        let r = TerminalReporter::new(Box::new(buf.clone()));
        let mut report = RunReport::empty(7, Outcome::Passed);
        report.run_id = "r1".into();
        report.deployer = "local".into();
        report.nodes = 2;
        report.final_heights = vec![Some(3), None];
        for e in [
            RunEvent::DeployStarted {
                run_id: "r1".into(),
                deployer: "local".into(),
                nodes: 2,
                seed: 7,
            },
            RunEvent::NodesStarted {
                run_dir: Some(PathBuf::from("/tmp/r1")),
                endpoints: ["http://a", "http://b"]
                    .iter()
                    .enumerate()
                    .map(|(node, api)| {
                        crate::deploy::NodeEndpoint {
                            node,
                            api: (*api).into(),
                            testing: None,
                            host: crate::deploy::NodeHost::Attached,
                        }
                        .into()
                    })
                    .collect(),
            },
            RunEvent::NodeReady {
                node: 0,
                height: 0,
                peers: 1,
                after: Duration::from_millis(5),
            },
            RunEvent::RunStarted {
                duration: Duration::from_secs(6),
                workloads: vec!["tx".into()],
                expectations: vec!["liveness".into(), "safety".into()],
            },
            RunEvent::Progress {
                elapsed: Duration::from_millis(1500),
                heights: vec![Some(3), None],
                txs_submitted: 4,
                txs_included: 2,
            },
            RunEvent::Control {
                action: crate::report::ControlAction::node(
                    crate::deploy::control_log::NodeAction::Kill,
                    1,
                ),
                elapsed: Duration::from_millis(2250),
            },
            RunEvent::WorkloadFailed {
                name: "tx".into(),
                error: "boom".into(),
            },
            RunEvent::CooldownStarted {
                cooldown: Duration::from_secs(1),
            },
            RunEvent::ExpectationEvaluated {
                name: "liveness".into(),
                passed: true,
                message: "ok".into(),
            },
            RunEvent::Note {
                message: "hello".into(),
            },
            RunEvent::TeardownStarted,
            RunEvent::TeardownFinished {
                run_dir: Some(PathBuf::from("/tmp/r1")),
                kept: true,
            },
            RunEvent::Finished {
                report: Box::new(report.clone()),
            },
        ] {
            r.on_event(&e);
        }
        let got = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let want = format!(
            "deploying 2 nodes (local), run r1, seed 7\n\
             run dir: /tmp/r1\n\
             TESTNET_ENDPOINTS\n\
             \x20 node-0 api http://a\n\
             \x20 node-1 api http://b\n\
             running for 6s · workloads [tx] · expectations [liveness, safety]\n\
             \x20    1.5s heights [3 ?] txs 2/4\n\
             \x20    2.2s kill node-1\n\
             workload tx failed: boom\n\
             cooldown 1s\n\
             pass liveness: ok\n\
             hello\n\
             kept run dir /tmp/r1\n\
             {}\n",
            TerminalReporter::render_summary(&report)
        );
        assert_eq!(got, want);
    }
}
