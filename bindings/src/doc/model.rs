//! The script surface as the reference describes it, read back from rhai's function metadata
//! (`Engine::gen_fn_metadata_to_json`) and the areas recorded at registration.

use std::collections::{BTreeMap, BTreeSet};

use rhai::Engine;
use serde::Deserialize;

use super::registry::{Area, Areas};

/// How a function is called from a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FnKind {
    /// `name(args)`: a constructor or a free function.
    Function,
    /// `Module::name(args)`: a function of a static module.
    ModuleFn,
    /// `value.name(args)`: the first parameter is a registered type.
    Method,
    /// `value.name`: a property getter.
    Getter,
}

/// One parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Name (`_` when unknown).
    pub name: String,
    /// Script type (`?` when unknown).
    pub ty: String,
}

/// One registered function (each overload separately).
#[derive(Debug, Clone)]
pub struct FnDoc {
    /// Area, when it was registered through the documenting registrar.
    pub area: Option<Area>,
    /// Static module name, for module functions.
    pub module: Option<String>,
    /// Script name (a getter's property name).
    pub name: String,
    /// How it is called.
    pub kind: FnKind,
    /// Parameters, the receiver first for methods and getters.
    pub params: Vec<Param>,
    /// Return type; empty for none.
    pub ret: String,
    /// Doc comment text, `///` leaders removed.
    pub doc: String,
    /// rhai's hash of the function (name and parameter types).
    pub hash: u64,
}

impl FnDoc {
    /// The receiver's type, for methods and getters.
    pub fn receiver(&self) -> Option<&str> {
        match self.kind {
            FnKind::Method | FnKind::Getter => self.params.first().map(|p| p.ty.as_str()),
            _ => None,
        }
    }

    /// How a script writes the call, with types: `builder.nodes(n: int) -> TopologyBuilder`.
    pub fn signature(&self) -> String {
        let list = |ps: &[Param]| {
            ps.iter()
                .map(|p| format!("{}: {}", p.name, p.ty))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ret = if self.ret.is_empty() {
            String::new()
        } else {
            format!(" -> {}", self.ret)
        };
        match self.kind {
            FnKind::Function => format!("{}({}){ret}", self.name, list(&self.params)),
            FnKind::ModuleFn => format!(
                "{}::{}({}){ret}",
                self.module.as_deref().unwrap_or("?"),
                self.name,
                list(&self.params)
            ),
            FnKind::Method => format!(
                "{}.{}({}){ret}",
                self.params[0].name,
                self.name,
                list(&self.params[1..])
            ),
            FnKind::Getter => format!("{}.{}{ret}", self.params[0].name, self.name),
        }
    }

    /// A short label for messages: `TopologyBuilder.nodes/2`.
    pub fn label(&self) -> String {
        let n = self.params.len();
        match (self.kind, self.receiver(), &self.module) {
            (FnKind::Getter, Some(r), _) => format!("{r}.{} (property)", self.name),
            (_, Some(r), _) => format!("{r}.{}/{n}", self.name),
            (_, _, Some(m)) => format!("{m}::{}/{n}", self.name),
            _ => format!("{}/{n}", self.name),
        }
    }

    /// The ```` ```rhai ```` examples in the doc comment.
    pub fn examples(&self) -> Vec<super::examples::Example> {
        super::examples::extract(&self.doc)
    }
}

/// A registered type.
#[derive(Debug, Clone)]
pub struct TypeDoc {
    /// Script name (`type_of`).
    pub name: String,
    /// Area, when registered through the documenting registrar.
    pub area: Option<Area>,
    /// Doc comment text.
    pub doc: String,
}

/// Everything the engine exposes to scripts beyond rhai's standard packages.
#[derive(Debug, Clone, Default)]
pub struct Surface {
    /// Functions, sorted by area, receiver, name, parameter count.
    pub functions: Vec<FnDoc>,
    /// Types, sorted by name.
    pub types: Vec<TypeDoc>,
    /// Static modules and their doc.
    pub modules: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonModule {
    #[serde(default)]
    modules: BTreeMap<String, JsonModule>,
    #[serde(default)]
    custom_types: Vec<JsonType>,
    #[serde(default)]
    functions: Vec<JsonFn>,
    #[serde(default)]
    doc: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonType {
    display_name: String,
    #[serde(default)]
    doc_comments: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonFn {
    full_hash: u64,
    name: String,
    num_params: usize,
    #[serde(default)]
    params: Vec<JsonParam>,
    #[serde(default)]
    return_type: String,
    #[serde(default)]
    doc_comments: Vec<String>,
}

#[derive(Deserialize)]
struct JsonParam {
    name: Option<String>,
    #[serde(rename = "type")]
    ty: Option<String>,
}

/// Doc comment strings (`/// a\n/// b` blocks, `/** */` blocks) as plain text.
pub fn comment_text(comments: &[String]) -> String {
    let mut lines = Vec::new();
    for block in comments {
        if let Some(inner) = block.strip_prefix("/**").and_then(|b| b.strip_suffix("*/")) {
            lines.extend(inner.trim_matches('\n').lines().map(|l| l.to_string()));
            continue;
        }
        for line in block.lines() {
            let l = line.trim_start();
            let l = l.strip_prefix("///").unwrap_or(l);
            lines.push(l.strip_prefix(' ').unwrap_or(l).to_string());
        }
    }
    lines.join("\n").trim().to_string()
}

impl Surface {
    /// Reads the surface of `engine`; `areas` comes from registering it inside
    /// [`super::registry::collect_areas`].
    pub fn read(engine: &Engine, areas: &Areas) -> Result<Self, String> {
        let json = engine
            .gen_fn_metadata_to_json(false)
            .map_err(|e| format!("cannot read the engine's function metadata: {e}"))?;
        let root: JsonModule = serde_json::from_str(&json)
            .map_err(|e| format!("cannot parse the engine's function metadata: {e}"))?;

        // A type is registered once by name (no comment) and once in a documented module.
        let mut types: BTreeMap<String, TypeDoc> = BTreeMap::new();
        for t in &root.custom_types {
            let doc = comment_text(&t.doc_comments);
            let entry = types.entry(t.display_name.clone()).or_insert(TypeDoc {
                name: t.display_name.clone(),
                area: areas.types.get(&t.display_name).copied(),
                doc: String::new(),
            });
            if entry.doc.is_empty() {
                entry.doc = doc;
            }
        }
        let type_names: BTreeSet<String> = types.keys().cloned().collect();

        let mut functions = Vec::new();
        for f in &root.functions {
            functions.push(fn_doc(f, None, areas, &type_names));
        }
        let mut modules = BTreeMap::new();
        for (name, m) in &root.modules {
            modules.insert(name.clone(), m.doc.clone());
            for f in &m.functions {
                functions.push(fn_doc(f, Some(name), areas, &type_names));
            }
        }
        functions.sort_by(|a, b| {
            (
                a.area,
                a.receiver(),
                a.kind,
                &a.name,
                a.params.len(),
                a.signature(),
            )
                .cmp(&(
                    b.area,
                    b.receiver(),
                    b.kind,
                    &b.name,
                    b.params.len(),
                    b.signature(),
                ))
        });
        Ok(Self {
            functions,
            types: types.into_values().collect(),
            modules,
        })
    }

    /// Functions without a doc comment or without an example, as labels.
    pub fn undocumented(&self) -> Vec<String> {
        self.functions
            .iter()
            .filter(|f| f.doc.is_empty() || f.examples().is_empty())
            .map(|f| {
                let what = if f.doc.is_empty() {
                    "no doc comment"
                } else {
                    "no ```rhai example"
                };
                format!("{} ({what})", f.label())
            })
            .collect()
    }

    /// Functions registered without the documenting registrar (no area), as labels.
    pub fn unclassified(&self) -> Vec<String> {
        self.functions
            .iter()
            .filter(|f| f.area.is_none())
            .map(FnDoc::label)
            .collect()
    }
}

fn fn_doc(f: &JsonFn, module: Option<&str>, areas: &Areas, types: &BTreeSet<String>) -> FnDoc {
    let mut params: Vec<Param> = f
        .params
        .iter()
        .map(|p| Param {
            name: p.name.clone().unwrap_or_else(|| "_".into()),
            ty: p.ty.clone().map_or_else(|| "?".into(), |t| script_type(&t)),
        })
        .collect();
    while params.len() < f.num_params {
        params.push(Param {
            name: "_".into(),
            ty: "?".into(),
        });
    }
    let (kind, name) = match (module, f.name.strip_prefix("get$")) {
        (Some(_), _) => (FnKind::ModuleFn, f.name.clone()),
        (None, Some(prop)) => (FnKind::Getter, prop.to_string()),
        (None, None) => {
            let method = params.first().is_some_and(|p| types.contains(&p.ty));
            let kind = if method {
                FnKind::Method
            } else {
                FnKind::Function
            };
            (kind, f.name.clone())
        }
    };
    FnDoc {
        area: areas.of_fn(module.unwrap_or(""), f.full_hash),
        module: module.map(str::to_string),
        name,
        kind,
        params,
        ret: script_type(&f.return_type),
        doc: comment_text(&f.doc_comments),
        hash: f.full_hash,
    }
}

/// Rust spellings rhai may report, as script writers know them.
fn script_type(t: &str) -> String {
    let t = t
        .trim()
        .trim_start_matches("&mut ")
        .trim_start_matches("rhai::");
    match t {
        "i64" | "INT" => "int".into(),
        "f64" | "FLOAT" => "float".into(),
        "&str" | "ImmutableString" | "string" => "String".into(),
        "()" => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::registry::{Registrar, collect_areas};
    use crate::script_fn;

    #[test]
    fn functions_without_docs_examples_or_registrar_are_reported() {
        let mut engine = Engine::new_raw();
        let ((), areas) = collect_areas(|| {
            let mut reg = Registrar::new(&mut engine, Area::General);
            script_fn!(reg,
                /// Documented, with an example.
                ///
                /// ```rhai
                /// good();
                /// ```
                fn good() => || ()
            );
            script_fn!(reg,
                /// Documented, but no example.
                fn no_example(x: int) -> int => |x: rhai::INT| x
            );
        });
        engine.register_fn("bare", || 1_i64);
        let surface = Surface::read(&engine, &areas).unwrap();
        assert_eq!(
            surface.undocumented(),
            vec![
                "bare/0 (no doc comment)".to_string(),
                "no_example/1 (no ```rhai example)".to_string()
            ]
        );
        assert_eq!(surface.unclassified(), vec!["bare/0".to_string()]);
        let good = surface.functions.iter().find(|f| f.name == "good").unwrap();
        assert_eq!(good.signature(), "good()");
        let f = surface
            .functions
            .iter()
            .find(|f| f.name == "no_example")
            .unwrap();
        assert_eq!(f.signature(), "no_example(x: int) -> int");
    }
}
