//! Chaos: random and scheduled faults, faults triggered by chain events, and
//! continuous invariants.
//!
//! - [`ChaosWorkload`] plays the seed's `chaos_with(|c| c.restart().min_delay(..)
//!   .max_delay(..).target_cooldown(..).apply())`, plus random partitions
//!   (`c.partition()`), link degradation (`c.degrade()`), pauses (`c.pause()`),
//!   clock skews (`c.clock_skew()`), lying nodes (`c.byzantine()`, [`byzantine`])
//!   and fixed schedules (`c.schedule()`). The timeline is planned from the
//!   run seed alone ([`plan::plan`]), so `--seed` replays it.
//! - [`trigger`]: `on_height(n)`, `on_slot(n)`, `when(cond)`, `after(d)`, in a
//!   plan ([`trigger::TriggerWorkload`]) or on a live testnet ([`trigger::arm`]).
//! - [`invariant`]: `always`, `never`, `eventually_within`, checked during the
//!   run, failing it early with a witness.
//!
//! Every action goes through the testnet's node-control and fault methods, so
//! network faults land in the fault log and control actions in the run events.
//!
//! ```no_run
//! use std::time::Duration;
//! use engine::chaos::ChaosScenarioExt;
//! use engine::scenario::ScenarioBuilder;
//!
//! let plan = ScenarioBuilder::topology_with(|t| t.network_star().nodes(3))
//!     .chaos_with(|c| {
//!         c.restart()
//!             .min_delay(Duration::from_secs(5))
//!             .max_delay(Duration::from_secs(10))
//!             .target_cooldown(Duration::from_secs(15))
//!             .apply()
//!     })
//!     .expect_consensus_liveness()
//!     .with_run_duration(Duration::from_secs(60))
//!     .build();
//! ```

pub mod byzantine;
pub mod disk;
pub mod invariant;
pub mod plan;
pub mod spec;
pub mod trigger;
pub mod workload;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use invariant::{Check, Invariant, InvariantKind, Predicate};
pub use plan::{PlannedStep, plan, plan_on, seeded_rng};
pub use spec::{
    ChaosAction, ChaosBuilder, ChaosError, ChaosStream, DegradeScope, RestartMode, Targets,
};
pub use trigger::{
    Action, Condition, Fired, Trigger, TriggerHandle, TriggerState, TriggerWorkload,
};
pub use workload::{ChaosRecord, ChaosWorkload};

use crate::context::RunContext;
use crate::deadline::Deadline;
use crate::deploy::{Capability, Testnet};
use crate::scenario::ScenarioBuilder;

/// Boxes an async closure as a trigger [`Action`].
pub fn action<F, Fut>(f: F) -> Action
where
    F: Fn(Fired, Arc<dyn Testnet>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move |fired, net| Box::pin(f(fired, net)))
}

/// Boxes an async closure as a `when` [`Condition`].
pub fn condition<F, Fut>(f: F) -> Condition
where
    F: Fn(Arc<dyn Testnet>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool, String>> + Send + 'static,
{
    Arc::new(move |net| Box::pin(f(net)))
}

/// Boxes an async closure as an invariant [`Predicate`].
pub fn predicate<F, Fut>(f: F) -> Predicate
where
    F: Fn(RunContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Check, String>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

/// The chaos vocabulary on the scenario builder (as the seed's `ScenarioBuilderExt`).
pub trait ChaosScenarioExt: Sized {
    /// Adds a chaos workload; also requires node control and/or network
    /// faults, as its streams need. An invalid configuration fails the run
    /// when it starts (call [`ChaosBuilder::validate`] to fail earlier).
    fn chaos_with(self, f: impl FnOnce(ChaosBuilder) -> ChaosBuilder) -> Self;
    /// Adds a prepared chaos workload (keep an `Arc` to read its log after the run).
    fn with_chaos(self, w: Arc<ChaosWorkload>) -> Self;
    /// Runs `action` once when the chain reaches `height`.
    fn on_height(self, height: u64, action: Action) -> Self;
    /// Runs `action` once when the slot reaches `slot`.
    fn on_slot(self, slot: u64, action: Action) -> Self;
    /// Runs `action` once, `d` after the run starts.
    fn after(self, d: Duration, action: Action) -> Self;
    /// Runs `action` once, when `cond` first holds.
    fn when(self, cond: Condition, action: Action) -> Self;
    /// Fails the run as soon as `pred` is false.
    fn always(self, name: &str, pred: Predicate) -> Self;
    /// Fails the run as soon as `pred` is true.
    fn never(self, name: &str, pred: Predicate) -> Self;
    /// Fails the run if `pred` has not held within `d` (time, slots or blocks) of its start.
    fn eventually_within(self, d: impl Into<Deadline>, name: &str, pred: Predicate) -> Self;
}

impl ChaosScenarioExt for ScenarioBuilder {
    fn chaos_with(self, f: impl FnOnce(ChaosBuilder) -> ChaosBuilder) -> Self {
        self.with_chaos(Arc::new(ChaosWorkload::new(f(ChaosBuilder::new()))))
    }

    fn with_chaos(self, w: Arc<ChaosWorkload>) -> Self {
        let (control, faults) = w.builder().needs();
        let name = crate::workload::Workload::name(&*w);
        let mut s = self.with_workload(w);
        if control {
            s = s.needs(Capability::NodeControl, format!("chaos workload `{name}`"));
        }
        if faults {
            s = s.needs(
                Capability::NetworkFaults,
                format!("chaos workload `{name}`"),
            );
        }
        s
    }

    fn on_height(self, height: u64, action: Action) -> Self {
        let t = Trigger::Height(height);
        self.with_workload(Arc::new(TriggerWorkload::new(t.to_string(), t, action)))
    }

    fn on_slot(self, slot: u64, action: Action) -> Self {
        let t = Trigger::Slot(slot);
        self.with_workload(Arc::new(TriggerWorkload::new(t.to_string(), t, action)))
    }

    fn after(self, d: Duration, action: Action) -> Self {
        let t = Trigger::After(d);
        self.with_workload(Arc::new(TriggerWorkload::new(t.to_string(), t, action)))
    }

    fn when(self, cond: Condition, action: Action) -> Self {
        let t = Trigger::When(cond);
        self.with_workload(Arc::new(TriggerWorkload::new(t.to_string(), t, action)))
    }

    fn always(self, name: &str, pred: Predicate) -> Self {
        self.with_expectation(Arc::new(Invariant::always(name, pred)))
    }

    fn never(self, name: &str, pred: Predicate) -> Self {
        self.with_expectation(Arc::new(Invariant::never(name, pred)))
    }

    fn eventually_within(self, d: impl Into<Deadline>, name: &str, pred: Predicate) -> Self {
        self.with_expectation(Arc::new(Invariant::eventually_within(d, name, pred)))
    }
}
