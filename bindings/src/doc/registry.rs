//! Registering script functions together with their documentation.
//!
//! Every function of the script surface is registered through [`script_fn!`] (or the
//! [`Registrar`] methods it expands to), which records, in rhai's own function metadata, the doc
//! comment (with its ```` ```rhai ```` example), the parameter names and script types and the
//! return type. The reference (`nomos-script doc`), the editor definitions, the REPL's `:help`
//! and tab completion all read that metadata, so the documentation cannot drift from the code.
//!
//! The area a function belongs to (topology, faults, ...) is not part of rhai's metadata; it is
//! recorded on the side while [`collect_areas`] runs the registration, keyed by the function's
//! hash, which is what the metadata JSON reports as `fullHash`.
//!
//! Script types in signatures are the names a script writer sees: `int`, `float`, `bool`,
//! `String`, `Array`, `Map`, `FnPtr`, `Dynamic` (any value), the registered types
//! (`TopologyBuilder`, `Testnet`, ...) and three conventions of this project: `Duration` (`"90s"`,
//! `"500ms"` or a number of seconds), `Deadline` (a `Duration`, `"20 slots"` or `"5 blocks"`)
//! and `Number` (an int or a float).

use std::cell::RefCell;
use std::collections::HashMap;

use rhai::{Engine, FuncRegistration, Module, RhaiNativeFunc, Variant};

/// The part of the script surface a function belongs to; one reference page per area, in this
/// order (the order a newcomer meets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    /// Script parameters, sleeping, the run seed.
    General,
    /// `TopologyBuilder()` and `Topology`.
    Topology,
    /// `ScenarioBuilder` and plans.
    Scenario,
    /// Built-in and script-defined workloads, and the run context a closure sees.
    Workloads,
    /// Built-in and script-defined expectations.
    Expectations,
    /// Deployers and running plans.
    Deployers,
    /// Starting, stopping, restarting, pausing and adding nodes.
    NodeControl,
    /// Network faults: partitions, cuts, latency, loss.
    Faults,
    /// Chaos workloads, event triggers and continuous invariants.
    Chaos,
    /// Waiting for heights, convergence and readiness, with deadlines.
    Waits,
    /// A node's API client.
    NodeClient,
    /// Run reports.
    Reports,
}

impl Area {
    /// Every area, in reference order.
    pub const ALL: [Area; 12] = [
        Area::General,
        Area::Topology,
        Area::Scenario,
        Area::Workloads,
        Area::Expectations,
        Area::Deployers,
        Area::NodeControl,
        Area::Faults,
        Area::Chaos,
        Area::Waits,
        Area::NodeClient,
        Area::Reports,
    ];

    /// File stem of the area's reference page.
    pub fn slug(self) -> &'static str {
        match self {
            Area::General => "general",
            Area::Topology => "topology",
            Area::Scenario => "scenario",
            Area::Workloads => "workloads",
            Area::Expectations => "expectations",
            Area::Deployers => "deployers",
            Area::NodeControl => "node-control",
            Area::Faults => "faults",
            Area::Chaos => "chaos",
            Area::Waits => "waits",
            Area::NodeClient => "node-client",
            Area::Reports => "reports",
        }
    }

    /// Page title.
    pub fn title(self) -> &'static str {
        match self {
            Area::General => "General",
            Area::Topology => "Topology",
            Area::Scenario => "Scenario",
            Area::Workloads => "Workloads",
            Area::Expectations => "Expectations",
            Area::Deployers => "Deployers",
            Area::NodeControl => "Node control",
            Area::Faults => "Faults",
            Area::Chaos => "Chaos, triggers and invariants",
            Area::Waits => "Waits",
            Area::NodeClient => "Node client",
            Area::Reports => "Reports",
        }
    }

    /// One paragraph at the top of the page: what the area is for.
    pub fn intro(self) -> &'static str {
        match self {
            Area::General => {
                "Functions available everywhere: script parameters given with `--set`, sleeping, \
                 the run seed, and whether the script is being checked rather than run."
            }
            Area::Topology => {
                "A topology says how many nodes a testnet has, how they are connected, how many \
                 funded wallets exist and which consensus parameters and node config overrides \
                 apply. `TopologyBuilder()` starts one; every method returns a new builder."
            }
            Area::Scenario => {
                "A scenario (plan) is a topology plus workloads, expectations and a run duration. \
                 `ScenarioBuilder::topology_with(..)` starts one, `.build()` validates it, and \
                 `plan.run()` deploys, drives, judges and tears it down."
            }
            Area::Workloads => {
                "Workloads drive the testnet during a run: the built-in transaction workload and \
                 workloads written as script closures. A closure receives a run context (`ctx`) \
                 that reaches the nodes, the wallets, the block feed and the testnet."
            }
            Area::Expectations => {
                "Expectations judge a run once it is over: consensus liveness, transaction \
                 inclusion, convergence, and expectations written as script closures."
            }
            Area::Deployers => {
                "A deployer turns a topology into a running testnet: local processes, Docker \
                 Compose or Kubernetes. Deploy a testnet to drive it by hand, or run a plan on it."
            }
            Area::NodeControl => {
                "Control of a deployed testnet's nodes: restart, stop, start, kill, pause, resume \
                 and add nodes while the testnet runs. Needs the node-control capability."
            }
            Area::Faults => {
                "Network faults between nodes: partitions, isolated nodes, cut links, latency and \
                 loss. Each fault has an id; `heal()` removes them all."
            }
            Area::Chaos => {
                "Randomised faults driven by the run seed, faults fired on events (a height, a \
                 slot, a condition, a delay), and invariants checked continuously during a run."
            }
            Area::Waits => {
                "Waits block the script until the testnet reaches a state. Every wait takes an \
                 explicit deadline and, when it expires, says what it waited for and what it saw."
            }
            Area::NodeClient => {
                "A client of one node's HTTP API (`net.node(i)`, `ctx.node(i)`); each call returns \
                 plain script values (maps, arrays, strings)."
            }
            Area::Reports => {
                "What a run produced: the outcome, the verdict of every expectation, transaction \
                 and block counts, and the final heights."
            }
        }
    }
}

/// The registrations recorded while [`collect_areas`] runs: function hash (and static module
/// name, for module functions) to area, and custom type name to area.
#[derive(Debug, Default, Clone)]
pub struct Areas {
    /// `(module, fullHash)` -> area; `module` is empty for global functions.
    pub functions: HashMap<(String, u64), Area>,
    /// Display name of a registered type -> area.
    pub types: HashMap<String, Area>,
}

impl Areas {
    /// The area of a global function (`module` empty) or of a static module's function.
    pub fn of_fn(&self, module: &str, hash: u64) -> Option<Area> {
        self.functions.get(&(module.to_string(), hash)).copied()
    }
}

thread_local! {
    static COLLECTING: RefCell<Option<Areas>> = const { RefCell::new(None) };
}

/// Runs `register` (which registers script functions on this thread) and returns what it
/// returned together with the area of every function registered through this module.
pub fn collect_areas<R>(register: impl FnOnce() -> R) -> (R, Areas) {
    COLLECTING.with(|c| *c.borrow_mut() = Some(Areas::default()));
    let out = register();
    let areas = COLLECTING
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    (out, areas)
}

fn record_fn(module: &str, hash: u64, area: Area) {
    COLLECTING.with(|c| {
        if let Some(a) = c.borrow_mut().as_mut() {
            a.functions.insert((module.to_string(), hash), area);
        }
    });
}

fn record_type(name: &str, area: Area) {
    COLLECTING.with(|c| {
        if let Some(a) = c.borrow_mut().as_mut() {
            a.types.insert(name.to_string(), area);
        }
    });
}

/// `///`-prefixed lines (as the `#[doc]` attributes of [`script_fn!`] carry them, each with its
/// leading space) merged into the one string rhai expects for a block of line comments.
pub fn comment_block(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| format!("///{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parameter info as rhai wants it: `name: type` per parameter, then the return type (left out
/// for `()`).
fn params_info(params: &[&str], ret: &str) -> Vec<String> {
    let mut info: Vec<String> = params.iter().map(|p| (*p).to_string()).collect();
    let ret = ret.trim();
    if !ret.is_empty() && ret != "()" {
        info.push(ret.to_string());
    }
    info
}

/// Registers documented functions and types of one area on an engine.
pub struct Registrar<'e> {
    engine: &'e mut Engine,
    area: Area,
    types: Module,
    has_types: bool,
}

impl<'e> Registrar<'e> {
    /// A registrar for `area`.
    pub fn new(engine: &'e mut Engine, area: Area) -> Self {
        Self {
            engine,
            area,
            types: Module::new(),
            has_types: false,
        }
    }

    /// Switches the area of the functions registered next.
    pub fn area(&mut self, area: Area) -> &mut Self {
        self.area = area;
        self
    }

    /// The engine, for registrations that need it directly (static modules).
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    /// The current area.
    pub fn current_area(&self) -> Area {
        self.area
    }

    /// Registers a custom type under its script name, with its doc comment.
    pub fn register_type<T: Variant + Clone>(&mut self, name: &str, docs: &[&str]) -> &mut Self {
        self.engine.register_type_with_name::<T>(name);
        crate::diagnostics::record_type_name(std::any::type_name::<T>(), name);
        let block = comment_block(docs);
        self.types
            .set_custom_type_with_comments::<T>(name, &[block.as_str()]);
        record_type(name, self.area);
        self.has_types = true;
        self
    }

    /// Registers a global function (callable as a method on its first parameter).
    ///
    /// `params` are `name: Type` strings, one per script parameter (the native call context is
    /// not one); `ret` is the script return type (`()` for none).
    ///
    /// # Panics
    ///
    /// When `params` does not list exactly the function's parameters: a registration bug caught
    /// by every test that builds an engine.
    pub fn func<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool>(
        &mut self,
        name: &str,
        params: &[&str],
        ret: &str,
        docs: &[&str],
        func: impl RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    ) -> &mut Self {
        check_arity::<A, N, X, R, F>(name, params, &func);
        let hash = FuncRegistration::new(name)
            .with_params_info(params_info(params, ret))
            .with_comments([comment_block(docs)])
            .register_into_engine(self.engine, func)
            .hash;
        record_fn("", hash, self.area);
        self
    }

    /// Registers a property getter (`value.name`).
    pub fn getter<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool>(
        &mut self,
        name: &str,
        params: &[&str],
        ret: &str,
        docs: &[&str],
        func: impl RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    ) -> &mut Self {
        check_arity::<A, N, X, R, F>(name, params, &func);
        let hash = FuncRegistration::new_getter(name)
            .with_params_info(params_info(params, ret))
            .with_comments([comment_block(docs)])
            .register_into_engine(self.engine, func)
            .hash;
        record_fn("", hash, self.area);
        self
    }

    /// Registers a function of a static module (`Module::name(..)`), to be registered with
    /// [`Engine::register_static_module`] under `module_name`.
    #[expect(clippy::too_many_arguments, reason = "mirrors `func` plus the module")]
    pub fn module_func<
        A: 'static,
        const N: usize,
        const X: bool,
        R: Variant + Clone,
        const F: bool,
    >(
        &mut self,
        module: &mut Module,
        module_name: &str,
        name: &str,
        params: &[&str],
        ret: &str,
        docs: &[&str],
        func: impl RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    ) -> &mut Self {
        check_arity::<A, N, X, R, F>(name, params, &func);
        let hash = FuncRegistration::new(name)
            .with_volatility(true)
            .with_params_info(params_info(params, ret))
            .with_comments([comment_block(docs)])
            .set_into_module(module, func)
            .hash;
        record_fn(module_name, hash, self.area);
        self
    }
}

impl Drop for Registrar<'_> {
    /// The documented types go in as one global module (rhai keeps type comments per module).
    fn drop(&mut self) {
        if self.has_types {
            let types = std::mem::take(&mut self.types);
            self.engine.register_global_module(types.into());
        }
    }
}

fn check_arity<A: 'static, const N: usize, const X: bool, R: 'static, const F: bool>(
    name: &str,
    params: &[&str],
    _func: &impl RhaiNativeFunc<A, N, X, R, F>,
) {
    assert_eq!(
        params.len(),
        N,
        "script function `{name}` documents {} parameters but takes {N}",
        params.len()
    );
}

/// Registers one documented script function on a [`Registrar`].
///
/// ```ignore
/// script_fn!(reg,
///     /// Sets the number of nodes.
///     ///
///     /// ```rhai
///     /// let t = TopologyBuilder().nodes(4);
///     /// ```
///     fn nodes(builder: TopologyBuilder, n: int) -> TopologyBuilder
///     => |t: &mut TopologyBuilder, n: INT| -> Res<_> { Ok(t.clone().nodes(count(n, "nodes")?)) }
/// );
/// ```
///
/// `get name(value: Type) -> Ret => closure` registers a property getter instead, and
/// `module(m, "Name") fn ...` a function of a static module.
#[macro_export]
macro_rules! script_fn {
    ($reg:expr, $(#[doc = $doc:literal])+ fn $name:ident ( $($p:ident : $t:ty),* $(,)? ) $(-> $ret:ty)? => $f:expr $(,)?) => {
        $reg.func(
            stringify!($name),
            &[$(concat!(stringify!($p), ": ", stringify!($t))),*],
            $crate::script_fn!(@ret $($ret)?),
            &[$($doc),+],
            $f,
        )
    };
    ($reg:expr, $(#[doc = $doc:literal])+ get $name:ident ( $p:ident : $t:ty ) -> $ret:ty => $f:expr $(,)?) => {
        $reg.getter(
            stringify!($name),
            &[concat!(stringify!($p), ": ", stringify!($t))],
            stringify!($ret),
            &[$($doc),+],
            $f,
        )
    };
    ($reg:expr, module($m:expr, $mname:expr) $(#[doc = $doc:literal])+ fn $name:ident ( $($p:ident : $t:ty),* $(,)? ) $(-> $ret:ty)? => $f:expr $(,)?) => {
        $reg.module_func(
            $m,
            $mname,
            stringify!($name),
            &[$(concat!(stringify!($p), ": ", stringify!($t))),*],
            $crate::script_fn!(@ret $($ret)?),
            &[$($doc),+],
            $f,
        )
    };
    (@ret) => { "()" };
    (@ret $ret:ty) => { stringify!($ret) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_params_reach_rhai_metadata() {
        let mut engine = Engine::new_raw();
        let ((), areas) = collect_areas(|| {
            let mut reg = Registrar::new(&mut engine, Area::Topology);
            script_fn!(reg,
                /// Adds one.
                ///
                /// ```rhai
                /// print(inc(1));
                /// ```
                fn inc(x: int) -> int => |x: rhai::INT| x + 1
            );
        });
        let json: serde_json::Value =
            serde_json::from_str(&engine.gen_fn_metadata_to_json(false).unwrap()).unwrap();
        let f = &json["functions"][0];
        assert_eq!(f["name"], "inc");
        assert_eq!(f["params"][0]["name"], "x");
        assert_eq!(f["params"][0]["type"], "int");
        assert_eq!(f["returnType"], "int");
        let doc = f["docComments"][0].as_str().unwrap();
        assert!(doc.starts_with("/// Adds one.\n///\n/// ```rhai"), "{doc}");
        let hash = f["fullHash"].as_u64().unwrap();
        assert_eq!(areas.of_fn("", hash), Some(Area::Topology));
    }

    #[test]
    #[should_panic(expected = "documents 2 parameters but takes 1")]
    fn a_wrong_parameter_list_is_caught() {
        let mut engine = Engine::new_raw();
        let mut reg = Registrar::new(&mut engine, Area::General);
        reg.func("f", &["a: int", "b: int"], "int", &[" x"], |a: rhai::INT| a);
    }
}
