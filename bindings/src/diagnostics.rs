//! Script errors as the user reads them: the message, `file:line:col`, the source line and a caret,
//! for the main script and for imported modules (each named by its path), with the chain of call
//! sites that led there.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rhai::{EvalAltResult, ParseError, Position};

/// Where an error happened: a file and a position in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The script file (as given, or the resolved module path).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// A script error reduced to what is printed: the innermost message and location, plus the
/// locations that led to it (calls into functions of other modules, imports).
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// The message, lowercase, without position.
    pub message: String,
    /// Where it happened, if rhai knows.
    pub location: Option<Location>,
    /// Outer call sites / import statements, innermost first.
    pub trail: Vec<(String, Location)>,
}

impl Diagnostic {
    /// A parse error of `file`.
    pub fn from_parse(err: &ParseError, file: &Path) -> Self {
        Self {
            message: lowercase_first(&err.0.to_string()),
            location: location(file, err.1),
            trail: Vec::new(),
        }
    }

    /// A runtime error raised while evaluating `file` (errors from imported modules and from
    /// functions defined elsewhere carry their own source).
    pub fn from_eval(err: &EvalAltResult, file: &Path) -> Self {
        let mut trail = Vec::new();
        let mut current_file = file.to_path_buf();
        let mut err = err;
        loop {
            match err {
                EvalAltResult::ErrorInModule(module, inner, pos) => {
                    if let Some(loc) = location(&current_file, *pos) {
                        trail.push((format!("while importing `{module}`"), loc));
                    }
                    current_file = module_file(module, &current_file);
                    err = inner;
                }
                EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
                    if let Some(loc) = location(&current_file, *pos) {
                        let what = if name.starts_with("anon$") {
                            "in a closure called".to_string()
                        } else {
                            format!("in function `{name}` called")
                        };
                        trail.push((what, loc));
                    }
                    if !source.is_empty() {
                        current_file = module_file(source, &current_file);
                    }
                    err = inner;
                }
                EvalAltResult::ErrorParsing(kind, pos) => {
                    trail.reverse();
                    return Self {
                        message: lowercase_first(&kind.to_string()),
                        location: location(&current_file, *pos),
                        trail,
                    };
                }
                leaf => {
                    trail.reverse();
                    return Self {
                        message: leaf_message(leaf),
                        location: location(&current_file, leaf.position()),
                        trail,
                    };
                }
            }
        }
    }

    /// The text printed on stderr:
    /// ```text
    /// error: <message>
    ///  --> file:line:col
    ///   |
    /// 3 | <source line>
    ///   |     ^
    /// ```
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(loc) = &self.location {
            render_location(&mut out, loc);
        }
        for (what, loc) in self.trail.iter().rev() {
            let _ = writeln!(
                out,
                "note: {what} at {}:{}:{}",
                loc.file.display(),
                loc.line,
                loc.col
            );
        }
        out
    }
}

fn render_location(out: &mut String, loc: &Location) {
    let _ = writeln!(out, " --> {}:{}:{}", loc.file.display(), loc.line, loc.col);
    let Some(text) = std::fs::read_to_string(&loc.file).ok().and_then(|src| {
        src.lines()
            .nth(loc.line.saturating_sub(1))
            .map(str::to_string)
    }) else {
        return;
    };
    let gutter = loc.line.to_string();
    let pad = " ".repeat(gutter.len());
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{gutter} | {}", text.replace('\t', " "));
    let caret_pad = " ".repeat(loc.col.saturating_sub(1));
    let _ = writeln!(out, "{pad} | {caret_pad}^");
}

fn location(file: &Path, pos: Position) -> Option<Location> {
    Some(Location {
        file: file.to_path_buf(),
        line: pos.line()?,
        col: pos.position().unwrap_or(1).max(1),
    })
}

/// Modules carry the path the resolver gave them (absolute); fall back to the import string
/// relative to the importing file.
fn module_file(module: &str, importer: &Path) -> PathBuf {
    let p = Path::new(module);
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    let base = importer.parent().unwrap_or(Path::new("."));
    let candidate = base.join(p);
    if candidate.extension().is_none() {
        candidate.with_extension("rhai")
    } else {
        candidate
    }
}

fn leaf_message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => {
            if value.is_string() {
                value.to_string()
            } else if let Some(message) = value.read_lock::<rhai::Map>().and_then(|m| {
                m.get("message")
                    .filter(|v| v.is_string())
                    .map(ToString::to_string)
            }) {
                // an error map (a refused submission: #{message, status, reason, ..})
                message
            } else if value.is_unit() {
                "runtime error".to_string()
            } else {
                format!("script raised {value}")
            }
        }
        EvalAltResult::ErrorTerminated(..) => "script interrupted".to_string(),
        EvalAltResult::ErrorTooManyOperations(_) => "too many operations: the script ran past \
             its operation limit (an endless loop?). Under `check` nothing runs: waits return at \
             once and heights grow by one per read, so a loop waiting on something else the \
             testnet does never ends there; guard it with `if !is_check() { ... }`"
            .to_string(),
        EvalAltResult::ErrorFunctionNotFound(signature, _) => {
            let sig = script_signature(signature);
            let first = sig
                .split_once('(')
                .map_or("", |(_, a)| a.split([',', ')']).next().unwrap_or(""));
            let hint = if first.trim() == "TransactionFlowBuilder" {
                "; a `transactions()` flow ends with `.apply()`, which returns the ScenarioBuilder \
                 (e.g. `.transactions().rate(2).apply()`)"
            } else if first.trim().ends_with("Chaos") {
                "; each chaos kind ends with `.apply()` (e.g. `.chaos().restart().apply()`)"
            } else {
                ""
            };
            format!("function not found: {sig}{hint}")
        }
        EvalAltResult::ErrorMismatchDataType(expected, actual, _) => {
            type_mismatch("data type incorrect", expected, actual)
        }
        EvalAltResult::ErrorMismatchOutputType(expected, actual, _) => {
            type_mismatch("output type incorrect", expected, actual)
        }
        EvalAltResult::ErrorIndexingType(what, _) => {
            format!("indexer unavailable: {}", script_types_in(what))
        }
        other => lowercase_first(&strip_position(&other.to_string())),
    }
}

fn type_mismatch(what: &str, expected: &str, actual: &str) -> String {
    match (script_types_in(actual), script_types_in(expected)) {
        (a, e) if a.is_empty() => format!("{what}, expecting {e}"),
        (a, e) if e.is_empty() => format!("{what}: {a}"),
        (a, e) => format!("{what}: {a} (expecting {e})"),
    }
}

/// Script names of the project's registered types, by Rust type name (filled as types are
/// registered, so messages name `TopologyBuilder`, not `nomos_script::api::...`).
static TYPE_NAMES: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Records the script name of a registered type (`std::any::type_name` of it, script name).
pub fn record_type_name(rust: &str, script: &str) {
    TYPE_NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(rust.to_string(), script.to_string());
}

/// One type as a script writer names it: `i64` -> `int`, `f64` -> `float`,
/// `&str | ImmutableString | String` -> `string`, `rhai::Array` -> `array`, `Map` -> `map`,
/// `FnPtr` -> `function`, a registered type -> its script name.
pub fn script_type_name(rust: &str) -> String {
    let t = rust.trim();
    if t.contains(" | ") {
        let mut names: Vec<String> = Vec::new();
        for part in t.split(" | ") {
            let n = script_type_name(part);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        return names.join(" | ");
    }
    let t = t.trim_start_matches("&mut ").trim_start_matches('&').trim();
    if let Some(name) = TYPE_NAMES.lock().unwrap_or_else(|e| e.into_inner()).get(t) {
        return name.clone();
    }
    let bare = t
        .trim_start_matches("rhai::")
        .trim_start_matches("types::")
        .trim_start_matches("dynamic::");
    match bare {
        "i64" | "i32" | "u64" | "u32" | "usize" | "INT" => "int".into(),
        "f64" | "f32" | "FLOAT" => "float".into(),
        "str" | "String" | "alloc::string::String" | "ImmutableString" | "string" => {
            "string".into()
        }
        "Array" | "array" | "alloc::vec::Vec<rhai::types::dynamic::Dynamic>" => "array".into(),
        "Map" | "map" => "map".into(),
        "FnPtr" | "Fn" => "function".into(),
        "Blob" | "blob" | "alloc::vec::Vec<u8>" => "blob".into(),
        "Instant" | "std::time::Instant" | "timestamp" => "timestamp".into(),
        "Dynamic" => "any value".into(),
        other if other.starts_with("std::collections::") && other.contains("Map<") => "map".into(),
        // another Rust path: its last segment, which is what a registered name would be
        other if other.contains("::") && !other.contains('<') => {
            other.rsplit("::").next().unwrap_or(other).to_string()
        }
        other => other.to_string(),
    }
}

/// `nodes (TopologyBuilder, &str | ImmutableString | String)` ->
/// `nodes (TopologyBuilder, string)`: the parameter types of a signature in script names.
fn script_signature(signature: &str) -> String {
    match signature.split_once(" (") {
        Some((name, rest)) if rest.ends_with(')') => {
            let params = &rest[..rest.len() - 1];
            format!("{name} ({})", script_types_in(params))
        }
        _ => signature.to_string(),
    }
}

/// A comma-separated list of types (or a `Type[Type]` indexing), each in script names.
fn script_types_in(text: &str) -> String {
    let mut out = String::new();
    let mut token = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '<' => {
                depth += 1;
                token.push(c);
            }
            '>' => {
                depth = depth.saturating_sub(1);
                token.push(c);
            }
            ',' | '[' | ']' if depth == 0 => {
                out.push_str(&map_token(&token));
                token.clear();
                out.push(c);
            }
            _ => token.push(c),
        }
    }
    out.push_str(&map_token(&token));
    out
}

/// One token of a list, its surrounding spaces kept.
fn map_token(token: &str) -> String {
    let trimmed = token.trim();
    if trimmed.is_empty() {
        return token.to_string();
    }
    let lead = &token[..token.len() - token.trim_start().len()];
    let trail = &token[token.trim_end().len()..];
    format!("{lead}{}{trail}", script_type_name(trimmed))
}

/// rhai appends " (line N, position M)" to messages; the location is printed separately.
fn strip_position(s: &str) -> String {
    match s.rfind(" (line ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// "Variable not found: x" -> "variable not found: x" (acronyms stay).
pub fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => {
            let mut out: String = a.to_lowercase().collect();
            out.push_str(&s[a.len_utf8()..]);
            out
        }
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_points_at_line_and_column() {
        let engine = rhai::Engine::new();
        let err = engine.compile("let x = 1;\nlet y = ;\n").unwrap_err();
        let d = Diagnostic::from_parse(&err, Path::new("s.rhai"));
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.col), (2, 9));
        assert!(d.message.starts_with(char::is_lowercase), "{}", d.message);
    }

    #[test]
    fn runtime_error_in_function_names_the_call_site() {
        let engine = rhai::Engine::new();
        let err = engine
            .run("fn f() {\n  throw \"boom\";\n}\nf();")
            .unwrap_err();
        let d = Diagnostic::from_eval(&err, Path::new("s.rhai"));
        assert_eq!(d.message, "boom");
        let loc = d.location.clone().unwrap();
        assert_eq!(loc.line, 2);
        assert_eq!(d.trail.len(), 1);
        assert_eq!(d.trail[0].1.line, 4);
        let text = d.render();
        assert!(text.contains(" --> s.rhai:2:3"), "{text}");
        assert!(
            text.contains("note: in function `f` called at s.rhai:4:1"),
            "{text}"
        );
    }

    #[test]
    fn type_names_are_the_script_ones() {
        assert_eq!(script_type_name("i64"), "int");
        assert_eq!(script_type_name("f64"), "float");
        assert_eq!(
            script_type_name("&str | ImmutableString | String"),
            "string"
        );
        assert_eq!(script_type_name("alloc::string::String"), "string");
        assert_eq!(script_type_name("rhai::Array"), "array");
        assert_eq!(script_type_name("Map"), "map");
        assert_eq!(script_type_name("bool"), "bool");
        assert_eq!(script_type_name("FnPtr"), "function");
        assert_eq!(script_type_name("Fn"), "function");
        assert_eq!(script_type_name("&mut TopologyBuilder"), "TopologyBuilder");
        record_type_name("some_crate::api::HiddenHandle", "Testnet");
        assert_eq!(script_type_name("some_crate::api::HiddenHandle"), "Testnet");
        assert_eq!(
            script_signature("nodes (TopologyBuilder, &str | ImmutableString | String)"),
            "nodes (TopologyBuilder, string)"
        );
        assert_eq!(
            script_signature("f (i64, f64, rhai::Array, bool)"),
            "f (int, float, array, bool)"
        );
    }

    #[test]
    fn a_wrong_argument_type_is_reported_in_script_types() {
        let mut engine = rhai::Engine::new();
        engine.register_fn("needs_int", |x: rhai::INT| x);
        let err = engine.run("needs_int(\"four\")").unwrap_err();
        let d = Diagnostic::from_eval(&err, Path::new("s.rhai"));
        assert_eq!(d.message, "function not found: needs_int (string)");
        let err = engine.run("needs_int([1], 2.5)").unwrap_err();
        let d = Diagnostic::from_eval(&err, Path::new("s.rhai"));
        assert_eq!(d.message, "function not found: needs_int (array, float)");
        let err = engine.eval::<rhai::INT>("\"x\"").unwrap_err();
        let d = Diagnostic::from_eval(&err, Path::new("s.rhai"));
        assert!(!d.message.contains("ImmutableString"), "{}", d.message);
        assert!(!d.message.contains("i64"), "{}", d.message);
    }

    #[test]
    fn lowercase_keeps_acronyms() {
        assert_eq!(lowercase_first("Variable x"), "variable x");
        assert_eq!(lowercase_first("HTTP error"), "HTTP error");
    }
}
