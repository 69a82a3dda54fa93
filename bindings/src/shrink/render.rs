//! A candidate run as a script: a `replay(..)` header (the seed, node count, run duration, the
//! expectations judged, the fault schedule) above the scenario's own text, unchanged.

use std::fmt::Write as _;
use std::time::Duration;

use engine::chaos::ChaosAction;
use engine::chaos::plan::PlannedStep;
use engine::links::LinkSel;

/// One run the search tries: the fault events, the node count and the run duration.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub steps: Vec<PlannedStep>,
    pub nodes: usize,
    pub duration: Duration,
}

/// `"3200ms"`: exact, and read back by every duration parameter.
pub fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn links(l: &LinkSel) -> String {
    match l {
        LinkSel::All => "\"all\"".to_owned(),
        LinkSel::Node(i) => i.to_string(),
        LinkSel::Both(a, b) => format!("[{a}, {b}]"),
        LinkSel::Link(a, b) => format!("\"{a}->{b}\""),
    }
}

/// The action's name and argument as `schedule().at(..)` takes them.
fn action(a: &ChaosAction) -> (&'static str, Option<String>) {
    match a {
        ChaosAction::Restart(i) => ("restart", Some(i.to_string())),
        ChaosAction::Stop(i) => ("stop", Some(i.to_string())),
        ChaosAction::Kill(i) => ("kill", Some(i.to_string())),
        ChaosAction::Start(i) => ("start", Some(i.to_string())),
        ChaosAction::Pause(i) => ("pause", Some(i.to_string())),
        ChaosAction::Resume(i) => ("resume", Some(i.to_string())),
        ChaosAction::Isolate(i) => ("isolate", Some(i.to_string())),
        ChaosAction::Partition(groups) => (
            "partition",
            Some(format!(
                "[{}]",
                groups
                    .iter()
                    .map(|g| format!(
                        "[{}]",
                        g.iter()
                            .map(usize::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
        ChaosAction::Latency {
            links: l,
            delay,
            jitter,
        } => (
            "latency",
            Some(format!(
                "#{{ delay: \"{}\", jitter: \"{}\", links: {} }}",
                ms(*delay),
                ms(*jitter),
                links(l)
            )),
        ),
        ChaosAction::Loss {
            links: l,
            probability,
        } => (
            "loss",
            Some(format!(
                "#{{ probability: {probability:?}, links: {} }}",
                links(l)
            )),
        ),
        ChaosAction::Heal => ("heal", None),
        ChaosAction::Honest(i) => ("honest", Some(i.to_string())),
        ChaosAction::DiskFull(i) => ("disk_full", Some(i.to_string())),
        ChaosAction::LoseUnflushed { node, blocks } => {
            ("lose_unflushed", Some(format!("[{node}, {blocks}]")))
        }
        ChaosAction::Byzantine { node, behaviour } => {
            use engine::deploy::byzantine::Behaviour as B;
            let lie = match behaviour {
                B::Equivocate => "\"equivocate\"".to_owned(),
                B::Withhold(d) => format!("\"withhold\", \"{}\"", ms(*d)),
                B::StaleParent(depth) => format!("\"stale_parent\", {depth}"),
                B::InvalidTxs(n) => format!("\"invalid_txs\", {n}"),
            };
            ("byzantine", Some(format!("[{node}, {lie}]")))
        }
        ChaosAction::Clock { node, offset_ms } => (
            "clock",
            Some(format!("#{{ node: {node}, offset_ms: {offset_ms} }}")),
        ),
    }
}

/// `.at("3200ms", "restart", 2)` or `.at_for("3200ms", "isolate", 1, "6000ms")`.
pub fn schedule_call(step: &PlannedStep) -> String {
    let (name, arg) = action(&step.action);
    let at = ms(step.at);
    match (arg, step.hold) {
        (Some(arg), Some(hold)) => {
            format!(".at_for(\"{at}\", \"{name}\", {arg}, \"{}\")", ms(hold))
        }
        (Some(arg), None) => format!(".at(\"{at}\", \"{name}\", {arg})"),
        (None, _) => format!(".at(\"{at}\", \"{name}\")"),
    }
}

/// The header that makes the scenario run `cand`: `replay(#{..}, |c| c.schedule()...apply());`.
pub fn replay_header(cand: &Candidate, seed: u64, expectations: &[String]) -> String {
    let mut out = String::from("replay(#{\n");
    let _ = writeln!(out, "    seed: {seed},");
    let _ = writeln!(out, "    nodes: {},", cand.nodes);
    let _ = writeln!(out, "    duration: \"{}\",", ms(cand.duration));
    if !expectations.is_empty() {
        let names: Vec<String> = expectations.iter().map(|e| format!("{e:?}")).collect();
        let _ = writeln!(out, "    expectations: [{}],", names.join(", "));
    }
    out.push_str("}, |c| c.schedule()");
    for s in &cand.steps {
        let _ = write!(out, "\n    {}", schedule_call(s));
    }
    out.push_str("\n    .apply());\n");
    out
}

/// The whole script: `comment` (each line prefixed with `// `), the header, then the scenario.
pub fn script(
    comment: &[String],
    cand: &Candidate,
    seed: u64,
    expectations: &[String],
    source_name: &str,
    source: &str,
) -> String {
    let mut out = String::new();
    for line in comment {
        let _ = writeln!(out, "// {line}");
    }
    out.push_str(&replay_header(cand, seed, expectations));
    let _ = writeln!(
        out,
        "\n// ---- {source_name} as written; the replay above changes every plan it runs ----\n"
    );
    out.push_str(source);
    if !source.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at_ms: u64, action: ChaosAction, hold_ms: Option<u64>) -> PlannedStep {
        PlannedStep {
            stream: 0,
            kind: "schedule".into(),
            at: Duration::from_millis(at_ms),
            action,
            hold: hold_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn every_action_renders_as_a_schedule_call() {
        let calls: Vec<String> = [
            step(3200, ChaosAction::Restart(2), None),
            step(4000, ChaosAction::Isolate(1), Some(6000)),
            step(
                5000,
                ChaosAction::Partition(vec![vec![0, 1], vec![2]]),
                Some(2500),
            ),
            step(
                6000,
                ChaosAction::Latency {
                    links: LinkSel::Both(0, 2),
                    delay: Duration::from_millis(80),
                    jitter: Duration::from_millis(10),
                },
                Some(1000),
            ),
            step(
                7000,
                ChaosAction::Loss {
                    links: LinkSel::All,
                    probability: 0.25,
                },
                Some(1000),
            ),
            step(
                8000,
                ChaosAction::Clock {
                    node: 3,
                    offset_ms: -1500,
                },
                Some(2000),
            ),
            step(9000, ChaosAction::Heal, None),
            step(
                9500,
                ChaosAction::Byzantine {
                    node: 1,
                    behaviour: engine::deploy::byzantine::Behaviour::Withhold(Duration::from_secs(
                        3,
                    )),
                },
                Some(2000),
            ),
        ]
        .iter()
        .map(schedule_call)
        .collect();
        assert_eq!(
            calls,
            vec![
                ".at(\"3200ms\", \"restart\", 2)",
                ".at_for(\"4000ms\", \"isolate\", 1, \"6000ms\")",
                ".at_for(\"5000ms\", \"partition\", [[0, 1], [2]], \"2500ms\")",
                ".at_for(\"6000ms\", \"latency\", #{ delay: \"80ms\", jitter: \"10ms\", links: [0, 2] }, \"1000ms\")",
                ".at_for(\"7000ms\", \"loss\", #{ probability: 0.25, links: \"all\" }, \"1000ms\")",
                ".at_for(\"8000ms\", \"clock\", #{ node: 3, offset_ms: -1500 }, \"2000ms\")",
                ".at(\"9000ms\", \"heal\")",
                ".at_for(\"9500ms\", \"byzantine\", [1, \"withhold\", \"3000ms\"], \"2000ms\")",
            ]
        );
    }
}
