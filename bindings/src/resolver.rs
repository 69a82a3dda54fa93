//! `import "x" as x;` resolution.
//!
//! Search order: the importing script's folder, then the stdlib folders, then each folder of
//! `NOMOS_SCRIPT_PATH` (colon separated). rhai's own file resolver resolves nested imports against
//! one base path rather than the importing file, so this resolver is written deliberately: every
//! module's AST gets its absolute path as source, and a nested import starts from that folder.
//!
//! The stdlib is found (in order) by walking up from the main script's folder to a folder that
//! holds `stdlib/`, next to the executable's workspace (walking up from the executable, then the
//! source tree it was built from), and in `NOMOS_SCRIPT_STDLIB`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rhai::module_resolvers::ModuleResolver;
use rhai::{Engine, EvalAltResult, Module, Position, Scope};

type SharedModule = std::sync::Arc<Module>;

/// Environment variable: extra import folders, colon separated.
pub const SCRIPT_PATH_ENV: &str = "NOMOS_SCRIPT_PATH";
/// Environment variable: the stdlib folder, when it is not found next to the script or the binary.
pub const STDLIB_ENV: &str = "NOMOS_SCRIPT_STDLIB";

thread_local! {
    /// Modules being loaded on this thread, outermost first, to report import cycles.
    static LOADING: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
}

/// Resolves imports from script folders, the stdlib and `NOMOS_SCRIPT_PATH`; caches each module
/// by its canonical path so a module imported twice is evaluated once.
pub struct ScriptResolver {
    main_dir: PathBuf,
    search: Vec<PathBuf>,
    cache: Mutex<HashMap<PathBuf, SharedModule>>,
}

impl ScriptResolver {
    /// A resolver for a main script at `main_script`.
    pub fn new(main_script: &Path) -> Self {
        let main_dir = parent_dir(main_script);
        let mut search = stdlib_dirs(&main_dir);
        if let Some(extra) = std::env::var_os(SCRIPT_PATH_ENV) {
            search.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
        }
        Self {
            main_dir,
            search,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The folders tried after the importing script's own folder.
    pub fn search_dirs(&self) -> &[PathBuf] {
        &self.search
    }

    fn find(&self, importer: Option<&str>, path: &str) -> Result<PathBuf, Vec<PathBuf>> {
        let mut rel = PathBuf::from(path);
        if rel.extension().is_none() {
            rel.set_extension("rhai");
        }
        if rel.is_absolute() {
            return if rel.is_file() {
                Ok(rel)
            } else {
                Err(vec![rel])
            };
        }
        let first = importer
            .filter(|s| !s.is_empty())
            .map(|s| parent_dir(Path::new(s)))
            .unwrap_or_else(|| self.main_dir.clone());
        let mut tried = Vec::new();
        for dir in std::iter::once(&first).chain(self.search.iter()) {
            let candidate = dir.join(&rel);
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
        Err(tried)
    }
}

impl ModuleResolver for ScriptResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let mut global = engine.new_global_runtime_state();
        global.source = source.map(Into::into);
        self.resolve_raw(engine, &mut global, &mut Scope::new(), path, pos)
    }

    fn resolve_raw(
        &self,
        engine: &Engine,
        global: &mut rhai::GlobalRuntimeState,
        _scope: &mut Scope,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let importer = global.source.as_ref().map(|s| s.to_string());
        let file = self.find(importer.as_deref(), path).map_err(|tried| {
            let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            Box::new(EvalAltResult::ErrorRuntime(
                format!(
                    "module `{path}` not found (looked for {}; set {SCRIPT_PATH_ENV} to add folders)",
                    tried.join(", ")
                )
                .into(),
                pos,
            ))
        })?;
        let key = file.canonicalize().unwrap_or_else(|_| file.clone());
        if let Some(module) = self.cache.lock().expect("resolver cache").get(&key) {
            return Ok(module.clone());
        }
        let cycle = LOADING.with(|l| {
            let l = l.borrow();
            l.iter().position(|p| p == &key).map(|i| {
                l[i..]
                    .iter()
                    .chain(std::iter::once(&key))
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            })
        });
        if let Some(cycle) = cycle {
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("import cycle: {cycle}").into(),
                pos,
            )));
        }
        let display = key.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Box::new(EvalAltResult::ErrorRuntime(
                format!("cannot read module {display}: {e}").into(),
                pos,
            ))
        })?;
        let mut ast = engine.compile(&text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                display.clone(),
                Box::new(EvalAltResult::ErrorParsing(*e.0, e.1)),
                pos,
            ))
        })?;
        ast.set_source(display.as_str());

        LOADING.with(|l| l.borrow_mut().push(key.clone()));
        let evaluated = Module::eval_ast_as_new_raw(engine, &mut Scope::new(), global, &ast);
        LOADING.with(|l| l.borrow_mut().pop());
        let mut module = evaluated
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(display.clone(), e, pos)))?;
        module.set_id(display.as_str());
        let module: SharedModule = module.into();
        self.cache
            .lock()
            .expect("resolver cache")
            .insert(key, module.clone());
        Ok(module)
    }
}

fn parent_dir(file: &Path) -> PathBuf {
    let abs = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(file))
            .unwrap_or_else(|_| file.to_path_buf())
    };
    abs.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The stdlib candidates, best first, deduplicated.
fn stdlib_dirs(main_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if p.is_dir() {
            let key = p.canonicalize().unwrap_or(p);
            if !found.contains(&key) {
                found.push(key);
            }
        }
    };
    if let Some(p) = main_dir
        .ancestors()
        .map(|a| a.join("stdlib"))
        .find(|p| p.is_dir())
    {
        push(p);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(p) = exe
            .ancestors()
            .skip(1)
            .map(|a| a.join("stdlib"))
            .find(|p| p.is_dir())
    {
        push(p);
    }
    push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../stdlib"));
    if let Some(p) = std::env::var_os(STDLIB_ENV) {
        push(PathBuf::from(p));
    }
    found
}
