//! `:save`: which inputs changed something (the session's effective commands), and the runnable
//! scenario that replays them on a fresh testnet of the same topology.

use std::fmt::Write as _;

use engine::topology::{NetworkShape, Topology};

/// Calls that only read: an input made of these alone (and no `let`, `fn`, assignment or
/// import) is a query and is left out of a saved scenario.
const QUERIES: &[&str] = &[
    "print",
    "debug",
    "node",
    "nodes",
    "consensus_info",
    "height",
    "network_info",
    "headers",
    "block",
    "mempool_info",
    "account",
    "metrics",
    "logs",
    "faults",
    "fault_log",
    "byzantine_state",
    "evidence",
    "to_string",
    "to_debug",
    "to_map",
    "len",
    "type_of",
    "keys",
    "values",
    "contains",
    "sub_string",
    "timestamp",
    "elapsed",
    "is_check",
    "run_seed",
    "param",
    "testnets",
];

/// Identifiers followed by `(`, and whether the input binds or assigns anything, with strings
/// and comments skipped.
fn scan(src: &str) -> (Vec<String>, bool) {
    let b = src.as_bytes();
    let mut calls = Vec::new();
    let mut binds = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'`' | b'\'' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'=' => {
                let prev = if i > 0 { b[i - 1] } else { b' ' };
                let next = b.get(i + 1).copied().unwrap_or(b' ');
                if !matches!(prev, b'=' | b'!' | b'<' | b'>') && !matches!(next, b'=' | b'>') {
                    binds = true;
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &src[start..i];
                if matches!(word, "let" | "const" | "fn" | "import") {
                    binds = true;
                }
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if b.get(j) == Some(&b'(') || b.get(j) == Some(&b'!') {
                    calls.push(word.to_owned());
                }
            }
            _ => i += 1,
        }
    }
    (calls, binds)
}

/// Whether an input changed (or may change) the testnet or the session: anything but pure
/// queries. Unknown functions count as effective, so a saved scenario errs on replaying more.
pub fn is_effective(src: &str) -> bool {
    let (calls, binds) = scan(src);
    binds || calls.iter().any(|c| !QUERIES.contains(&c.as_str()))
}

/// A value as a script literal.
fn literal(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::Null => "()".into(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => {
            let s = n.to_string();
            if n.is_f64() && !s.contains('.') && !s.contains('e') {
                format!("{s}.0")
            } else {
                s
            }
        }
        serde_yaml::Value::String(s) => format!("{s:?}"),
        serde_yaml::Value::Sequence(items) => {
            format!(
                "[{}]",
                items.iter().map(literal).collect::<Vec<_>>().join(", ")
            )
        }
        serde_yaml::Value::Mapping(m) => {
            let fields: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    let key = k.as_str().map_or_else(|| literal(k), |s| format!("{s:?}"));
                    format!("{key}: {}", literal(v))
                })
                .collect();
            format!("#{{{}}}", fields.join(", "))
        }
        serde_yaml::Value::Tagged(t) => literal(&t.value),
    }
}

fn duration_literal(d: std::time::Duration) -> String {
    format!("\"{}ms\"", d.as_millis())
}

/// The `TopologyBuilder()` chain that rebuilds `t` (edges spelled out, so random shapes replay).
pub fn topology_expr(t: &Topology) -> String {
    let mut s = format!("TopologyBuilder().nodes({})", t.node_count());
    match &t.shape {
        NetworkShape::Star => s.push_str(".network_star()"),
        NetworkShape::Full => s.push_str(".network_full()"),
        NetworkShape::Line => s.push_str(".network_line()"),
        NetworkShape::Ring => s.push_str(".network_ring()"),
        NetworkShape::Random { .. } | NetworkShape::Edges(_) => {
            let edges: Vec<String> = t.edges.iter().map(|(a, b)| format!("[{a}, {b}]")).collect();
            let _ = write!(s, "\n    .edges([{}])", edges.join(", "));
        }
    }
    let p = &t.params;
    let _ = write!(
        s,
        "\n    .slot_duration({}).active_slot_coeff({:?}).security_param({})",
        duration_literal(p.slot_duration),
        p.active_slot_coeff,
        p.security_param
    );
    if t.wallets > 0 {
        let _ = write!(
            s,
            "\n    .wallets({}).wallet_balance({})",
            t.wallets, t.wallet_balance
        );
    }
    for n in &t.nodes {
        if n.stake != 1 {
            let _ = write!(s, "\n    .stake({}, {})", n.index, n.stake);
        }
        for o in &n.overrides {
            let _ = write!(
                s,
                "\n    .with_node_override({}, {:?}, {})",
                n.index,
                o.path,
                literal(&o.value)
            );
        }
        for (k, v) in &n.labels {
            let _ = write!(s, "\n    .label({}, {k:?}, {v:?})", n.index);
        }
    }
    for o in &t.overrides {
        let _ = write!(
            s,
            "\n    .with_override({:?}, {})",
            o.path,
            literal(&o.value)
        );
    }
    for j in &t.reserved_joiners {
        let _ = write!(s, "\n    .reserve_joiner({j})");
    }
    s
}

/// What a saved scenario needs besides the commands.
pub struct SaveInfo<'a> {
    /// Where the session ran (`testnet NAME` or `script FILE`).
    pub origin: String,
    /// `local` or `compose`.
    pub deployer: &'a str,
    /// The live testnet's topology.
    pub topology: &'a Topology,
    /// Faults were still in force when saving: heal before the convergence check.
    pub heal_at_end: bool,
    /// The session's seed (what its plans and random choices used).
    pub session_seed: u64,
}

/// The scenario text.
pub fn scenario(info: &SaveInfo<'_>, commands: &[String]) -> String {
    let deployer = match info.deployer {
        "compose" => "ComposeDeployer()",
        "k8s" => "K8sDeployer()",
        _ => "LocalDeployer()",
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Recorded by `nomos-script repl` from {} ({} deployer, {} nodes).",
        info.origin,
        info.deployer,
        info.topology.node_count()
    );
    let _ = writeln!(
        s,
        "// Session seed {seed}: `nomos-script run FILE --seed {seed}` gives plans and random\n\
         // choices in the replay the seed they had in the session.",
        seed = info.session_seed
    );
    s.push_str(
        "// Deploys a fresh testnet of the same topology, waits until it is ready, replays the\n\
         // session's effective commands in order, and checks that every node converges.\n\n",
    );
    let _ = writeln!(
        s,
        "let topology = {};\nlet plan = ScenarioBuilder(topology).seed({}).enable_node_control().enable_network_faults().build();",
        topology_expr(info.topology),
        info.topology.seed
    );
    let _ = writeln!(
        s,
        "let net = {deployer}.deploy(plan);\nnet.wait_ready(\"60s\");\n"
    );
    for (i, c) in commands.iter().enumerate() {
        let c = c.trim_end();
        let _ = writeln!(s, "// command {}", i + 1);
        s.push_str(c);
        if !c.ends_with(';') && !c.ends_with('}') {
            s.push(';');
        }
        s.push('\n');
    }
    s.push('\n');
    if info.heal_at_end {
        s.push_str("// faults were still in force when the session was saved\nnet.heal();\n");
    }
    s.push_str(
        "net.wait_converged(\"60s\");\n\
         for f in net.fault_log() { print(`fault: ${f.summary}`); }\n\
         print(`converged: ${net.node_count} nodes`);\n\
         net.down();\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_not_effective() {
        for q in [
            "net.node(0).consensus_info()",
            "print(net.node(1).height())",
            "net.faults()",
            "net.node_count",
            "1 + 2",
            "x == 3",
            "print(\"restart(1) = 3\") // kill(2)",
            "print(net.byzantine_state(0))",
            "net.evidence(1)",
        ] {
            assert!(!is_effective(q), "{q}");
        }
        for e in [
            "net.restart(1)",
            "net.partition([[0], [1, 2]])",
            "net.byzantine(0, \"equivocate\")",
            "net.honest(0)",
            "let x = 3",
            "fn f() { 1 }",
            "x = 4",
            "sleep(\"1s\")",
            "some_unknown_thing()",
        ] {
            assert!(is_effective(e), "{e}");
        }
    }

    #[test]
    fn yaml_values_become_literals() {
        let v: serde_yaml::Value = serde_yaml::from_str("{a: 1, b: [true, x], c: 1.5}").unwrap();
        assert_eq!(literal(&v), "#{\"a\": 1, \"b\": [true, \"x\"], \"c\": 1.5}");
    }
}
