//! Script errors as the user reads them: the message, `file:line:col`, the source line and a caret,
//! for the main script and for imported modules (each named by its path), with the chain of call
//! sites that led there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
            } else if value.is_unit() {
                "runtime error".to_string()
            } else {
                format!("script raised {value}")
            }
        }
        EvalAltResult::ErrorTerminated(..) => "script interrupted".to_string(),
        other => lowercase_first(&strip_position(&other.to_string())),
    }
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
    fn lowercase_keeps_acronyms() {
        assert_eq!(lowercase_first("Variable x"), "variable x");
        assert_eq!(lowercase_first("HTTP error"), "HTTP error");
    }
}
