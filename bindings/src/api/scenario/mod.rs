//! `ScenarioBuilder::topology_with(..)` ... `.build()`: plans, as in the seed.
//!
//! ```rhai
//! let plan = ScenarioBuilder::topology_with(|t| t.network_star().nodes(3))
//!     .wallets(50)
//!     .transactions_with(|txs| txs.rate(5).users(20))
//!     .expect_consensus_liveness()
//!     .with_run_duration("90s")
//!     .build();
//! let report = plan.run();      // raises (exit 1) when the run fails; the error is the report
//! let report = plan.try_run();  // returns the report either way
//! ```
//!
//! Closures given to `topology_with`, `transactions_with` and the `_with` expectation methods
//! are called at once with a builder and must return it; closures given to `with_workload` and
//! `with_expectation` are kept and run during the run, each on its own thread.

use std::sync::Arc;

use engine::scenario::{Scenario, ScenarioBuilder};
use engine::workload::TxWorkloadBuilder;
use rhai::{Dynamic, Engine, FnPtr, NativeCallContext};

use super::values::{Res, at_call, closure_position, err, err_at};
use crate::doc::registry::{Area, Registrar};
use crate::host::HostState;

/// The scenario builder as scripts hold it (remembers whether the script chose a seed).
#[derive(Clone)]
pub struct PlanBuilder {
    inner: ScenarioBuilder,
    seed: Option<u64>,
}

impl PlanBuilder {
    /// The same plan builder with `f` applied to the engine builder (used by other modules,
    /// e.g. chaos, to add their workloads and expectations).
    pub fn map(&self, f: impl FnOnce(ScenarioBuilder) -> ScenarioBuilder) -> Self {
        Self {
            inner: f(self.inner.clone()),
            seed: self.seed,
        }
    }
}

/// The seed's `builder.transactions()...apply()`: the transaction settings and the plan they go
/// back to.
#[derive(Clone)]
pub struct TransactionFlow {
    plan: PlanBuilder,
    txs: TxWorkloadBuilder,
}

/// A validated plan.
#[derive(Clone)]
pub struct Plan(pub Arc<Scenario>);

/// Calls a builder closure with `builder` and checks it returned the same kind of builder.
fn call_builder<T: Clone + Send + Sync + 'static>(
    ctx: &NativeCallContext,
    f: &FnPtr,
    builder: T,
    what: &str,
    type_name: &str,
) -> Res<T> {
    let out: Dynamic = f
        .call_within_context(ctx, (builder,))
        .map_err(|e| at_call(e, ctx.call_position()))?;
    let found = super::values::a_type(&out);
    match out.try_cast::<T>() {
        Some(t) => Ok(t),
        None => err_at(
            format!(
                "the closure given to {what} must return the {type_name} it was given (end it with the builder, e.g. `|t| t.nodes(3)`), but it returned {found}"
            ),
            closure_or_call(ctx, f),
        ),
    }
}

/// Where the closure returns from, else the call.
pub fn closure_or_call(ctx: &NativeCallContext, f: &FnPtr) -> rhai::Position {
    let p = closure_position(ctx, f);
    if p.is_none() { ctx.call_position() } else { p }
}

/// Registers a `_with` method whose closure gets a fresh sub-builder and must return it.
fn builder_fn<T: Clone + Send + Sync + 'static>(
    reg: &mut Registrar,
    name: &'static str,
    type_name: &'static str,
    docs: &[&str],
    apply: fn(ScenarioBuilder, T) -> ScenarioBuilder,
    fresh: fn() -> T,
) {
    reg.func(
        name,
        &["builder: ScenarioBuilder", "f: FnPtr"],
        "ScenarioBuilder",
        docs,
        move |ctx: NativeCallContext, b: &mut PlanBuilder, f: FnPtr| -> Res<PlanBuilder> {
            let t = call_builder(&ctx, &f, fresh(), name, type_name)?;
            Ok(b.map(|s| apply(s, t)))
        },
    );
}

mod builder;
mod expectations;
mod plan;
mod workloads;

/// Registers the scenario builder, the sub-builders and plans.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut reg = Registrar::new(engine, Area::Scenario);
    builder::register(&mut reg, state);
    workloads::register_plan_methods(&mut reg, state);
    expectations::register_plan_methods(&mut reg, state);
    workloads::register_builders(&mut reg);
    expectations::register_builders(&mut reg);
    reg.area(Area::Scenario);
    plan::register(&mut reg, state);
}

fn check_name(name: &str, what: &str) -> Res<()> {
    if name.trim().is_empty() {
        return err(format!("{what} needs a non-empty name"));
    }
    Ok(())
}
