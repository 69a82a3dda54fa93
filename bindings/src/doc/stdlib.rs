//! The stdlib modules (`stdlib/*.rhai`) as the reference documents them: each module compiled,
//! its public functions read from the AST with their `///` doc comments.

use std::path::{Path, PathBuf};

use rhai::{Engine, FnAccess};

use super::model::comment_text;

/// One importable module.
#[derive(Debug, Clone)]
pub struct StdlibModule {
    /// Import name (the file stem): `import "wait" as wait;`.
    pub name: String,
    /// The leading `//` comment of the file (what the module is for), without leaders.
    pub header: String,
    /// Public functions, sorted by name and arity.
    pub functions: Vec<StdlibFn>,
}

/// One public function of a stdlib module.
#[derive(Debug, Clone)]
pub struct StdlibFn {
    /// Name.
    pub name: String,
    /// Parameter names.
    pub params: Vec<String>,
    /// Doc comment text.
    pub doc: String,
}

impl StdlibFn {
    /// `wait::heights(net, height, deadline)`.
    pub fn signature(&self, module: &str) -> String {
        format!("{module}::{}({})", self.name, self.params.join(", "))
    }
}

/// The folder the CLI documents by default: the stdlib that `import` finds for a script in the
/// current folder.
pub fn default_dir() -> Option<PathBuf> {
    let probe = std::env::current_dir().ok()?.join("reference.rhai");
    crate::resolver::ScriptResolver::new(&probe)
        .search_dirs()
        .iter()
        .find(|d| d.file_name().is_some_and(|n| n == "stdlib"))
        .cloned()
}

/// Reads every `*.rhai` module of `dir`, sorted by name.
pub fn read_dir(dir: &Path) -> Result<Vec<StdlibModule>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the stdlib folder {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    files.sort();
    let mut engine = Engine::new();
    // the host's limits, so a module documented here also imports
    engine.set_max_expr_depths(128, 64);
    files.iter().map(|f| read_module(&engine, f)).collect()
}

fn read_module(engine: &Engine, file: &Path) -> Result<StdlibModule, String> {
    let source = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read stdlib module {}: {e}", file.display()))?;
    let ast = engine
        .compile(&source)
        .map_err(|e| format!("stdlib module {} does not parse: {e}", file.display()))?;
    let mut functions: Vec<StdlibFn> = ast
        .iter_functions()
        .filter(|f| f.access != FnAccess::Private)
        .map(|f| StdlibFn {
            name: f.name.to_string(),
            params: f.params.iter().map(|p| (*p).to_string()).collect(),
            doc: comment_text(
                &f.comments
                    .iter()
                    .map(|c| (*c).to_string())
                    .collect::<Vec<_>>(),
            ),
        })
        .collect();
    functions.sort_by(|a, b| (&a.name, a.params.len()).cmp(&(&b.name, b.params.len())));
    let header = source
        .lines()
        .take_while(|l| {
            let t = l.trim_start();
            t.starts_with("//") && !t.starts_with("///")
        })
        .map(|l| {
            let t = l.trim_start().trim_start_matches("//");
            t.strip_prefix(' ').unwrap_or(t)
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string();
    Ok(StdlibModule {
        name: file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        header,
        functions,
    })
}
