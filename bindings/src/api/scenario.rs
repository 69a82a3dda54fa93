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

use engine::expectation::{ConsensusLivenessBuilder, ConvergenceBuilder, TxInclusionBuilder};
use engine::scenario::{Scenario, ScenarioBuilder};
use engine::topology::TopologyBuilder;
use engine::workload::TxWorkloadBuilder;
use rhai::{Array, Dynamic, Engine, FnPtr, FuncRegistration, INT, Module, NativeCallContext};

use super::runner;
use super::script_fns::{ScriptCallback, ScriptExpectation, ScriptWorkload};
use super::values::{Res, amount, count, duration, err, int, number};
use crate::host::HostState;

/// The scenario builder as scripts hold it (remembers whether the script chose a seed).
#[derive(Clone)]
pub struct PlanBuilder {
    inner: ScenarioBuilder,
    seed: Option<u64>,
}

impl PlanBuilder {
    fn map(&self, f: impl FnOnce(ScenarioBuilder) -> ScenarioBuilder) -> Self {
        Self {
            inner: f(self.inner.clone()),
            seed: self.seed,
        }
    }
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
    let out: Dynamic = f.call_within_context(ctx, (builder,))?;
    let found = out.type_name().to_string();
    out.try_cast::<T>().ok_or_else(|| {
        format!(
            "the closure given to {what} must return the {type_name} it was given (end it with the builder, e.g. `|t| t.nodes(3)`), but it returned a {found}"
        )
        .into()
    })
}

fn builder_fn<T: Clone + Send + Sync + 'static>(
    engine: &mut Engine,
    name: &'static str,
    type_name: &'static str,
    apply: fn(ScenarioBuilder, T) -> ScenarioBuilder,
    fresh: fn() -> T,
) {
    engine.register_fn(
        name,
        move |ctx: NativeCallContext, b: &mut PlanBuilder, f: FnPtr| -> Res<PlanBuilder> {
            let t = call_builder(&ctx, &f, fresh(), name, type_name)?;
            Ok(b.map(|s| apply(s, t)))
        },
    );
}

/// Registers the scenario builder, the sub-builders and plans.
pub fn register(engine: &mut Engine, state: &Arc<HostState>) {
    let mut module = Module::new();
    FuncRegistration::new("topology_with")
        .with_volatility(true)
        .set_into_module(
            &mut module,
            |ctx: NativeCallContext, f: FnPtr| -> Res<PlanBuilder> {
                let t = call_builder(
                    &ctx,
                    &f,
                    TopologyBuilder::new(),
                    "topology_with",
                    "TopologyBuilder",
                )?;
                Ok(PlanBuilder {
                    inner: ScenarioBuilder::new(t),
                    seed: None,
                })
            },
        );
    FuncRegistration::new("with_topology")
        .with_volatility(true)
        .set_into_module(&mut module, |t: TopologyBuilder| PlanBuilder {
            inner: ScenarioBuilder::new(t),
            seed: None,
        });
    engine.register_static_module("ScenarioBuilder", module.into());
    engine.register_fn("ScenarioBuilder", |t: TopologyBuilder| PlanBuilder {
        inner: ScenarioBuilder::new(t),
        seed: None,
    });

    engine
        .register_type_with_name::<PlanBuilder>("ScenarioBuilder")
        .register_fn("to_string", |b: &mut PlanBuilder| format!("{:?}", b.inner))
        .register_fn(
            "topology_with",
            |ctx: NativeCallContext, b: &mut PlanBuilder, f: FnPtr| -> Res<PlanBuilder> {
                let t = call_builder(
                    &ctx,
                    &f,
                    b.inner.topology_builder().clone(),
                    "topology_with",
                    "TopologyBuilder",
                )?;
                Ok(b.map(|s| s.map_topology(|_| t)))
            },
        )
        .register_fn("wallets", |b: &mut PlanBuilder, n: INT| -> Res<_> {
            let n = count(n, "wallets")?;
            Ok(b.map(|s| s.wallets(n)))
        })
        .register_fn("transactions", |b: &mut PlanBuilder| {
            b.map(|s| s.transactions_with(|t| t))
        })
        .register_fn("expect_consensus_liveness", |b: &mut PlanBuilder| {
            b.map(ScenarioBuilder::expect_consensus_liveness)
        })
        .register_fn("expect_convergence", |b: &mut PlanBuilder| {
            b.map(ScenarioBuilder::expect_convergence)
        })
        .register_fn("expect_tx_inclusion", |b: &mut PlanBuilder| {
            b.map(|s| s.expect_tx_inclusion_with(|e| e))
        })
        .register_fn(
            "with_run_duration",
            |b: &mut PlanBuilder, d: Dynamic| -> Res<_> {
                let d = duration(&d, "with_run_duration")?;
                Ok(b.map(|s| s.with_run_duration(d)))
            },
        )
        .register_fn(
            "with_cooldown",
            |b: &mut PlanBuilder, d: Dynamic| -> Res<_> {
                let d = duration(&d, "with_cooldown")?;
                Ok(b.map(|s| s.with_cooldown(d)))
            },
        )
        .register_fn("enable_node_control", |b: &mut PlanBuilder| {
            b.map(ScenarioBuilder::enable_node_control)
        })
        .register_fn("enable_network_faults", |b: &mut PlanBuilder| {
            b.map(ScenarioBuilder::enable_network_faults)
        })
        .register_fn("seed", |b: &mut PlanBuilder, seed: INT| -> Res<_> {
            let seed = amount(seed, "seed")?;
            Ok(PlanBuilder {
                inner: b.inner.clone().seed(seed),
                seed: Some(seed),
            })
        });

    builder_fn::<TxWorkloadBuilder>(
        engine,
        "transactions_with",
        "TxWorkloadBuilder",
        |s, t| s.transactions_with(|_| t),
        TxWorkloadBuilder::new,
    );
    builder_fn::<ConsensusLivenessBuilder>(
        engine,
        "expect_consensus_liveness_with",
        "ConsensusLivenessBuilder",
        |s, l| s.expect_consensus_liveness_with(|_| l),
        ConsensusLivenessBuilder::new,
    );
    builder_fn::<TxInclusionBuilder>(
        engine,
        "expect_tx_inclusion_with",
        "TxInclusionBuilder",
        |s, i| s.expect_tx_inclusion_with(|_| i),
        TxInclusionBuilder::new,
    );
    builder_fn::<ConvergenceBuilder>(
        engine,
        "expect_convergence_with",
        "ConvergenceBuilder",
        |s, c| s.expect_convergence_with(|_| c),
        ConvergenceBuilder::new,
    );

    let st = state.clone();
    engine.register_fn(
        "with_workload",
        move |ctx: NativeCallContext, b: &mut PlanBuilder, name: &str, f: FnPtr| -> Res<_> {
            check_name(name, "with_workload")?;
            let cb = ScriptCallback::capture(&ctx, name, f, &st);
            Ok(b.map(|s| s.with_workload(Arc::new(ScriptWorkload { callback: cb }))))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "with_expectation",
        move |ctx: NativeCallContext, b: &mut PlanBuilder, name: &str, f: FnPtr| -> Res<_> {
            check_name(name, "with_expectation")?;
            let cb = ScriptCallback::capture(&ctx, name, f, &st);
            Ok(b.map(|s| s.with_expectation(Arc::new(ScriptExpectation { callback: cb }))))
        },
    );

    let st = state.clone();
    engine.register_fn("build", move |b: &mut PlanBuilder| -> Res<Plan> {
        // --seed wins, then the script's .seed(n), then the run's random seed (printed).
        let seed = st.settings.seed.or(b.seed).unwrap_or(st.seed);
        match b.inner.clone().seed(seed).build() {
            Ok(s) => Ok(Plan(Arc::new(s))),
            Err(e) => err(format!("invalid scenario: {e}")),
        }
    });

    register_sub_builders(engine);
    register_plan(engine, state);
}

fn check_name(name: &str, what: &str) -> Res<()> {
    if name.trim().is_empty() {
        return err(format!("{what} needs a non-empty name"));
    }
    Ok(())
}

fn register_sub_builders(engine: &mut Engine) {
    engine
        .register_type_with_name::<TxWorkloadBuilder>("TxWorkloadBuilder")
        .register_fn("rate", |t: &mut TxWorkloadBuilder, r: Dynamic| -> Res<_> {
            Ok(t.clone().rate(number(&r, "rate")?))
        })
        .register_fn("users", |t: &mut TxWorkloadBuilder, n: INT| -> Res<_> {
            Ok(t.clone().users(count(n, "users")?))
        })
        .register_fn(
            "inclusion_threshold",
            |t: &mut TxWorkloadBuilder, r: Dynamic| -> Res<_> {
                Ok(t.clone()
                    .inclusion_threshold(number(&r, "inclusion_threshold")?))
            },
        );
    engine
        .register_type_with_name::<ConsensusLivenessBuilder>("ConsensusLivenessBuilder")
        .register_fn(
            "min_height",
            |l: &mut ConsensusLivenessBuilder, h: INT| -> Res<_> {
                Ok(l.clone().min_height(amount(h, "min_height")?))
            },
        )
        .register_fn(
            "min_progress",
            |l: &mut ConsensusLivenessBuilder, h: INT| -> Res<_> {
                Ok(l.clone().min_progress(amount(h, "min_progress")?))
            },
        )
        .register_fn(
            "max_lag",
            |l: &mut ConsensusLivenessBuilder, h: INT| -> Res<_> {
                Ok(l.clone().max_lag(amount(h, "max_lag")?))
            },
        );
    engine
        .register_type_with_name::<TxInclusionBuilder>("TxInclusionBuilder")
        .register_fn(
            "threshold",
            |t: &mut TxInclusionBuilder, r: Dynamic| -> Res<_> {
                Ok(t.clone().threshold(number(&r, "threshold")?))
            },
        );
    engine
        .register_type_with_name::<ConvergenceBuilder>("ConvergenceBuilder")
        .register_fn(
            "deadline",
            |c: &mut ConvergenceBuilder, d: Dynamic| -> Res<_> {
                Ok(c.clone().deadline(duration(&d, "deadline")?))
            },
        )
        .register_fn(
            "max_tip_spread",
            |c: &mut ConvergenceBuilder, s: INT| -> Res<_> {
                Ok(c.clone().max_tip_spread(amount(s, "max_tip_spread")?))
            },
        );
}

fn register_plan(engine: &mut Engine, state: &Arc<HostState>) {
    engine
        .register_type_with_name::<Plan>("Scenario")
        .register_get("seed", |p: &mut Plan| int(p.0.seed()))
        .register_get("node_count", |p: &mut Plan| {
            p.0.topology().node_count() as INT
        })
        .register_get("duration", |p: &mut Plan| p.0.duration().as_secs_f64())
        .register_get("workloads", |p: &mut Plan| -> Array {
            p.0.workload_names().into_iter().map(Into::into).collect()
        })
        .register_get("expectations", |p: &mut Plan| -> Array {
            p.0.expectation_names()
                .into_iter()
                .map(Into::into)
                .collect()
        })
        .register_get("topology", |p: &mut Plan| p.0.topology().clone())
        .register_fn("to_string", |p: &mut Plan| format!("{:?}", p.0));

    let st = state.clone();
    engine.register_fn(
        "run",
        move |p: &mut Plan| -> Res<super::report::ReportHandle> {
            let report = runner::run_plan(&st, None, &p.0)?;
            runner::raise_if_failed(report)
        },
    );
    let st = state.clone();
    engine.register_fn("try_run", move |p: &mut Plan| {
        runner::run_plan(&st, None, &p.0)
    });
}
