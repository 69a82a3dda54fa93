//! Line editing: rustyline with tab completion of function names, helpers and node indices
//! after `node(`, and the rule that decides when an input continues on the next line.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

/// Completion source shared with the session loop.
pub struct ReplHelper {
    /// Every registered function name, sorted.
    pub names: Vec<String>,
    /// Node count of the bound testnet (updated after each input).
    pub nodes: Arc<AtomicUsize>,
}

/// Candidates for the word ending at `pos`: `(start of the replaced text, candidates)`.
pub fn complete(
    names: &[String],
    helpers: &[&str],
    nodes: usize,
    line: &str,
    pos: usize,
) -> (usize, Vec<String>) {
    let before = &line[..pos];
    if let Some(c) = behaviour_names(before, pos) {
        return c;
    }
    let digits = before.bytes().rev().take_while(u8::is_ascii_digit).count();
    let stem = before[..before.len() - digits].trim_end();
    // functions whose first argument is a node index, and what follows it
    let node_arg = [
        ("node(", ")"),
        ("honest(", ")"),
        ("byzantine_state(", ")"),
        ("evidence(", ")"),
        ("byzantine(", ", \""),
    ];
    if let Some((_, after)) = node_arg.iter().find(|(f, _)| {
        stem.ends_with(f)
            && !stem[..stem.len() - f.len()]
                .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    }) {
        let typed = &before[before.len() - digits..];
        let c = (0..nodes)
            .map(|i| i.to_string())
            .filter(|i| i.starts_with(typed))
            .map(|i| format!("{i}{after}"))
            .collect();
        return (pos - digits, c);
    }
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .last()
        .map_or(pos, |(i, _)| i);
    let word = &before[start..];
    if word.starts_with(':') {
        let c = helpers
            .iter()
            .filter(|h| h.starts_with(word))
            .map(|h| (*h).to_string())
            .collect();
        return (start, c);
    }
    if word.is_empty() {
        return (pos, Vec::new());
    }
    let c = names
        .iter()
        .filter(|n| n.starts_with(word))
        .cloned()
        .collect();
    (start, c)
}

/// Inside `byzantine(N, "..`: the behaviour names starting with what is typed.
fn behaviour_names(before: &str, pos: usize) -> Option<(usize, Vec<String>)> {
    let open = before.rfind("byzantine(")?;
    let args = &before[open + "byzantine(".len()..];
    let (index, rest) = args.split_once(',')?;
    if index.trim().is_empty() || !index.trim().bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let typed = rest.trim_start().strip_prefix('"')?;
    if !typed.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    let c = engine::deploy::byzantine::Behaviour::NAMES
        .iter()
        .filter(|n| n.starts_with(typed))
        .map(|n| format!("{n}\")"))
        .collect();
    Some((pos - typed.len(), c))
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let helpers: Vec<&str> = super::commands::HELPERS.iter().map(|(h, _)| *h).collect();
        Ok(complete(
            &self.names,
            &helpers,
            self.nodes.load(Ordering::Relaxed),
            line,
            pos,
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

/// How many brackets are still open at the end of `src` (strings and comments skipped); an
/// input with open brackets continues on the next line.
pub fn open_brackets(src: &str) -> i64 {
    let b = src.as_bytes();
    let mut depth = 0i64;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= b.len() && q == b'`' {
                    // a back-tick string spans lines: keep reading
                    return depth.max(0) + 1;
                }
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
                if i + 1 >= b.len() {
                    return depth.max(0) + 1;
                }
                i += 1;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_brackets_continue_the_input() {
        assert_eq!(open_brackets("fn f() {"), 1);
        assert_eq!(open_brackets("fn f() { 1 }"), 0);
        assert_eq!(open_brackets("print(\"(\")"), 0);
        assert_eq!(open_brackets("net.partition([[0, 1],"), 2);
        assert_eq!(open_brackets("x // {"), 0);
        assert_eq!(open_brackets("}"), -1);
    }

    #[test]
    fn completes_names_helpers_and_node_indices() {
        let names = vec!["partition".to_string(), "pause".into(), "restart".into()];
        let helpers = [":nodes", ":help"];
        assert_eq!(
            complete(&names, &helpers, 3, "net.pa", 6),
            (4, vec!["partition".to_string(), "pause".into()])
        );
        assert_eq!(
            complete(&names, &helpers, 3, "net.node(", 9),
            (9, vec!["0)".to_string(), "1)".into(), "2)".into()])
        );
        assert_eq!(
            complete(&names, &helpers, 12, "net.node(1", 10),
            (9, vec!["1)".to_string(), "10)".into(), "11)".into()])
        );
        assert_eq!(
            complete(&names, &helpers, 3, ":no", 3),
            (0, vec![":nodes".to_string()])
        );
        // lying nodes: the node index, then the behaviour's name
        assert_eq!(
            complete(&names, &helpers, 2, "net.byzantine(", 14),
            (14, vec!["0, \"".to_string(), "1, \"".into()])
        );
        assert_eq!(
            complete(&names, &helpers, 2, "net.honest(", 11),
            (11, vec!["0)".to_string(), "1)".into()])
        );
        let line = "net.byzantine(1, \"st";
        assert_eq!(
            complete(&names, &helpers, 2, line, line.len()),
            (line.len() - 2, vec!["stale_parent\")".to_string()])
        );
        let line = "net.byzantine(1, \"";
        assert_eq!(complete(&names, &helpers, 2, line, line.len()).1.len(), 4);
    }
}
