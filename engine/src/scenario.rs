//! A scenario is a plan: topology, workloads, expectations, run duration,
//! required capabilities and seed. Built by the seed's fluent vocabulary and
//! validated in [`ScenarioBuilder::build`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::deadline::Deadline;
pub use crate::deploy::Capability;
use crate::expectation::{
    ConsensusLivenessBuilder, ConvergenceBuilder, Expectation, TxInclusionBuilder,
};
use crate::topology::{Topology, TopologyBuilder, TopologyError};
use crate::workload::{TxWorkloadBuilder, Workload};

/// Highest transaction rate, per block: far above what a block holds, low enough that the
/// workload's schedule stays small.
pub const MAX_TX_RATE: f64 = 10_000.0;
/// Most transaction users: each needs its own funded wallet, so the bound is the wallets' one.
pub const MAX_USERS: usize = crate::topology::MAX_WALLETS;

/// Why a scenario is invalid; the message names the field and its value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ScenarioError {
    pub field: String,
    pub message: String,
}

impl ScenarioError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<TopologyError> for ScenarioError {
    fn from(e: TopologyError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}

/// Fluent builder of a [`Scenario`].
#[derive(Clone)]
pub struct ScenarioBuilder {
    topology: TopologyBuilder,
    wallets: Option<usize>,
    transactions: Option<TxWorkloadBuilder>,
    liveness: Option<ConsensusLivenessBuilder>,
    inclusion: Option<TxInclusionBuilder>,
    convergence: Option<ConvergenceBuilder>,
    duration: Deadline,
    cooldown: Option<Deadline>,
    capabilities: BTreeSet<Capability>,
    /// Capabilities a part of the plan uses (by whom): each must be enabled.
    needed: Vec<(Capability, String)>,
    workloads: Vec<Arc<dyn Workload>>,
    expectations: Vec<Arc<dyn Expectation>>,
    seed: Option<u64>,
    feed_mode: crate::blockfeed::FeedMode,
    features: Vec<crate::nodekind::KindFeature>,
    continue_on_workload_failure: bool,
    /// Monitoring URLs the plan sets (each in place of its environment variable).
    monitoring: crate::metrics::Monitoring,
    /// Only these expectations are judged (a replay's); None: all of them.
    keep_expectations: Option<Vec<String>>,
}

impl fmt::Debug for ScenarioBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioBuilder")
            .field("topology", &self.topology)
            .field("duration", &self.duration)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl ScenarioBuilder {
    /// A scenario over this topology; run duration 60 s.
    pub fn new(topology: TopologyBuilder) -> Self {
        Self {
            topology,
            wallets: None,
            transactions: None,
            liveness: None,
            inclusion: None,
            convergence: None,
            duration: Deadline::Time(Duration::from_secs(60)),
            cooldown: None,
            capabilities: BTreeSet::new(),
            needed: Vec::new(),
            workloads: Vec::new(),
            expectations: Vec::new(),
            seed: None,
            feed_mode: crate::blockfeed::FeedMode::Auto,
            features: Vec::new(),
            continue_on_workload_failure: false,
            monitoring: crate::metrics::Monitoring::default(),
            keep_expectations: None,
        }
    }

    /// The seed's `with_metrics_query_url`: the Prometheus this plan's metric expectations and
    /// `ctx.prometheus()` query, in place of `LOGOS_BLOCKCHAIN_METRICS_QUERY_URL`.
    pub fn with_metrics_query_url(mut self, url: impl Into<String>) -> Self {
        self.monitoring.metrics_query_url = Some(url.into());
        self
    }

    /// The seed's `with_metrics_otlp_ingest_url`: where the nodes push OTLP metrics, in place
    /// of `LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL`.
    pub fn with_metrics_otlp_ingest_url(mut self, url: impl Into<String>) -> Self {
        self.monitoring.otlp_ingest_url = Some(url.into());
        self
    }

    /// The seed's `with_grafana_url`: printed with the endpoints, in place of
    /// `LOGOS_BLOCKCHAIN_GRAFANA_URL`.
    pub fn with_grafana_url(mut self, url: impl Into<String>) -> Self {
        self.monitoring.grafana_url = Some(url.into());
        self
    }

    /// The seed's entry point: shape the topology in a closure.
    pub fn topology_with(f: impl FnOnce(TopologyBuilder) -> TopologyBuilder) -> Self {
        Self::new(f(TopologyBuilder::new()))
    }

    /// The seed's shorthand: a topology of `n` nodes with every other setting at its default.
    pub fn with_node_counts(n: usize) -> Self {
        Self::topology_with(|t| t.nodes(n))
    }

    /// Reshapes the topology later.
    pub fn map_topology(mut self, f: impl FnOnce(TopologyBuilder) -> TopologyBuilder) -> Self {
        self.topology = f(self.topology);
        self
    }

    /// The topology builder as it stands.
    pub fn topology_builder(&self) -> &TopologyBuilder {
        &self.topology
    }

    /// Number of funded wallets (overrides the topology's).
    pub fn wallets(mut self, n: usize) -> Self {
        self.wallets = Some(n);
        self
    }

    /// Adds the transaction workload; also attaches TxInclusion (as the seed).
    pub fn transactions_with(
        mut self,
        f: impl FnOnce(TxWorkloadBuilder) -> TxWorkloadBuilder,
    ) -> Self {
        let b = f(self.transactions.take().unwrap_or_default());
        if self.inclusion.is_none() {
            self.inclusion = Some(TxInclusionBuilder::new().threshold(b.inclusion_threshold));
        }
        self.transactions = Some(b);
        self
    }

    /// Expects every node's height to advance, with default bounds.
    pub fn expect_consensus_liveness(mut self) -> Self {
        self.liveness = Some(self.liveness.take().unwrap_or_default());
        self
    }

    /// Expects liveness with explicit bounds.
    pub fn expect_consensus_liveness_with(
        mut self,
        f: impl FnOnce(ConsensusLivenessBuilder) -> ConsensusLivenessBuilder,
    ) -> Self {
        self.liveness = Some(f(self.liveness.take().unwrap_or_default()));
        self
    }

    /// Sets (or adds) the TxInclusion expectation.
    pub fn expect_tx_inclusion_with(
        mut self,
        f: impl FnOnce(TxInclusionBuilder) -> TxInclusionBuilder,
    ) -> Self {
        self.inclusion = Some(f(self.inclusion.take().unwrap_or_default()));
        self
    }

    /// Expects every node to share the LIB at the end.
    pub fn expect_convergence(mut self) -> Self {
        self.convergence = Some(self.convergence.take().unwrap_or_default());
        self
    }

    /// Expects convergence with explicit bounds.
    pub fn expect_convergence_with(
        mut self,
        f: impl FnOnce(ConvergenceBuilder) -> ConvergenceBuilder,
    ) -> Self {
        self.convergence = Some(f(self.convergence.take().unwrap_or_default()));
        self
    }

    /// A node that exits on its own during the run (not stopped by the framework) fails the run
    /// at once, naming it ([`crate::crash_watch`]).
    pub fn expect_no_crashes(self) -> Self {
        self.with_expectation(Arc::new(crate::crash_watch::no_node_crash()))
    }

    /// Every fault reverted during the run is followed by convergence, and every node started
    /// again catches up, within `bound` (a duration, slots or blocks); see
    /// [`crate::recovery::RecoveryWithin`].
    pub fn expect_recovery_within(self, bound: impl Into<Deadline>) -> Self {
        self.with_expectation(Arc::new(crate::recovery::RecoveryWithin::new(bound)))
    }

    /// The plan without its chaos workloads (a replay puts its own schedule in their place).
    pub fn without_chaos(mut self) -> Self {
        self.workloads.retain(|w| !w.is_chaos());
        self
    }

    /// Only the expectations named are judged; [`build`](Self::build) refuses a name the plan
    /// does not have, listing those it has.
    pub fn keep_expectations(mut self, names: Vec<String>) -> Self {
        self.keep_expectations = Some(names);
        self
    }

    /// How long workloads run: a duration, or slots or blocks (turned into time from the
    /// topology's consensus parameters at [`build`](Self::build)).
    pub fn with_run_duration(mut self, d: impl Into<Deadline>) -> Self {
        self.duration = d.into();
        self
    }

    /// Wait after workloads stop, before evaluating (default: 5 slots); a duration, slots or
    /// blocks.
    pub fn with_cooldown(mut self, d: impl Into<Deadline>) -> Self {
        self.cooldown = Some(d.into());
        self
    }

    /// Records that `who` (a workload) uses `c`: `build` refuses the plan unless it enables
    /// `c` (`enable_node_control()`, `enable_network_faults()`).
    pub fn needs(mut self, c: Capability, who: impl Into<String>) -> Self {
        self.needed.push((c, who.into()));
        self
    }

    /// Requires the node-control capability of the deployer.
    pub fn enable_node_control(mut self) -> Self {
        self.capabilities.insert(Capability::NodeControl);
        self
    }

    /// Requires network faults of the deployer.
    pub fn enable_network_faults(mut self) -> Self {
        self.capabilities.insert(Capability::NetworkFaults);
        self
    }

    /// Requires any capability.
    pub fn require(mut self, c: Capability) -> Self {
        self.capabilities.insert(c);
        self
    }

    /// Adds a custom workload.
    pub fn with_workload(mut self, w: Arc<dyn Workload>) -> Self {
        self.workloads.push(w);
        self
    }

    /// Adds a custom expectation.
    pub fn with_expectation(mut self, e: Arc<dyn Expectation>) -> Self {
        self.expectations.push(e);
        self
    }

    /// Seed of everything random (keys, random shapes, tx senders, chaos).
    /// Unset: a random one, printed in the report.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How the block feed reads the nodes (`auto`: the stream where a node has one).
    pub fn with_block_feed(mut self, mode: crate::blockfeed::FeedMode) -> Self {
        self.feed_mode = mode;
        self
    }

    /// A failed workload no longer stops the run: it goes on to its end and every
    /// expectation is judged (the failure still fails the run).
    pub fn continue_on_workload_failure(mut self) -> Self {
        self.continue_on_workload_failure = true;
        self
    }

    /// Requires a feature of the node kind (the plan is refused before deploying
    /// on a kind that lacks it).
    pub fn require_feature(mut self, feature: crate::nodekind::KindFeature) -> Self {
        if !self.features.contains(&feature) {
            self.features.push(feature);
        }
        self
    }

    /// Validates and builds the plan.
    pub fn build(self) -> Result<Scenario, ScenarioError> {
        let seed = self.seed.unwrap_or_else(rand::random);
        let mut tb = self.topology.clone().seed(seed);
        if let Some(w) = self.wallets {
            tb = tb.wallets(w);
        }
        let topology = tb.build()?;
        if let Err((field, message)) = self.monitoring.validate() {
            return Err(ScenarioError::new(field, message));
        }
        let slot = topology.params.slot_duration;
        let duration = self.duration.resolve(&topology.params);
        if duration < slot * 2 {
            return Err(ScenarioError::new(
                "with_run_duration",
                format!(
                    "run_duration = {} is shorter than two slots (slot_duration = {})",
                    self.duration.describe(&topology.params),
                    humantime::format_duration(slot)
                ),
            ));
        }
        if let Some((c, who)) = self
            .needed
            .iter()
            .find(|(c, _)| !self.capabilities.contains(c))
        {
            let call = crate::deploy::granted::enable_call(*c);
            return Err(ScenarioError::new(
                call.trim_end_matches("()"),
                format!("{who} uses {c}, which the plan does not enable: add .{call} to the plan"),
            ));
        }
        let mut workloads: Vec<Arc<dyn Workload>> = Vec::new();
        let mut expectations: Vec<Arc<dyn Expectation>> = Vec::new();
        if let Some(tx) = &self.transactions {
            if !(tx.rate.is_finite() && tx.rate > 0.0) {
                return Err(ScenarioError::new(
                    "rate",
                    format!(
                        "rate = {}: transactions need a rate above 0 per block",
                        tx.rate
                    ),
                ));
            }
            if tx.rate > MAX_TX_RATE {
                return Err(ScenarioError::new(
                    "rate",
                    format!(
                        "rate = {} exceeds the bound {MAX_TX_RATE} transactions per block (MAX_TX_RATE)",
                        tx.rate
                    ),
                ));
            }
            if let Some(u) = tx.users
                && u > MAX_USERS
            {
                return Err(ScenarioError::new(
                    "users",
                    format!(
                        "users = {u} exceeds the bound {MAX_USERS} (MAX_USERS: every user needs a funded wallet, at most MAX_WALLETS)"
                    ),
                ));
            }
            if tx.users == Some(0) {
                return Err(ScenarioError::new(
                    "users",
                    "users = 0: transactions need at least one user",
                ));
            }
            let users = tx.users.unwrap_or(topology.wallets);
            if users > topology.wallets {
                return Err(ScenarioError::new(
                    "users",
                    format!(
                        "users = {users} exceeds wallets = {}: every user needs a funded wallet",
                        topology.wallets
                    ),
                ));
            }
            if topology.wallets < 2 {
                return Err(ScenarioError::new(
                    "wallets",
                    format!(
                        "wallets = {}: transactions need at least two funded wallets",
                        topology.wallets
                    ),
                ));
            }
            workloads.push(Arc::new(tx.build()));
        }
        if let Some(l) = &self.liveness {
            expectations.push(Arc::new(l.build()));
        }
        if let Some(i) = &self.inclusion {
            if !(i.threshold > 0.0 && i.threshold <= 1.0) {
                return Err(ScenarioError::new(
                    "threshold",
                    format!("tx inclusion threshold = {} must be in (0, 1]", i.threshold),
                ));
            }
            if let Some(t) = i.per_node_threshold
                && !(t > 0.0 && t <= 1.0)
            {
                return Err(ScenarioError::new(
                    "per_node_threshold",
                    format!("tx inclusion per-node threshold = {t} must be in (0, 1]"),
                ));
            }
            expectations.push(Arc::new(i.build()));
        }
        if let Some(c) = &self.convergence {
            expectations.push(Arc::new(c.build()));
        }
        workloads.extend(self.workloads.iter().cloned());
        expectations.extend(self.expectations.iter().cloned());
        if let Some(keep) = &self.keep_expectations {
            let have: Vec<String> = expectations.iter().map(|e| e.name()).collect();
            if let Some(missing) = keep.iter().find(|k| !have.contains(k)) {
                return Err(ScenarioError::new(
                    "expectations",
                    format!(
                        "`{missing}` is not an expectation of this plan (it has: {})",
                        if have.is_empty() {
                            "none".to_owned()
                        } else {
                            have.join(", ")
                        }
                    ),
                ));
            }
            expectations.retain(|e| keep.contains(&e.name()));
        }
        let mut required_features = self.features.clone();
        let mut need = |f| {
            if !required_features.contains(&f) {
                required_features.push(f);
            }
        };
        match self.transactions.as_ref().map(|t| t.mode) {
            Some(crate::workload::TxMode::ClientSigned) => {
                need(crate::nodekind::KindFeature::ClientSignedTxs)
            }
            Some(crate::workload::TxMode::Wallet) => {
                need(crate::nodekind::KindFeature::WalletTransfers)
            }
            _ => {}
        }
        if self.capabilities.contains(&Capability::NetworkFaults) {
            need(crate::nodekind::KindFeature::LinkFaults);
        }
        for w in &workloads {
            if let Err(e) = w.check_plan(&topology, duration) {
                return Err(ScenarioError::new(
                    "workload",
                    format!("workload `{}`: {e}", w.name()),
                ));
            }
        }
        // what each kind of fault the workloads use asks of the node kind
        for f in workloads
            .iter()
            .flat_map(|w| w.uses())
            .filter_map(crate::deploy::FaultKind::kind_feature)
        {
            need(f);
        }
        let mut warnings = Vec::new();
        for w in &workloads {
            for (groups, longest) in w.planned_partitions(duration) {
                let groups = groups.unwrap_or_else(|| crate::forkrisk::most_even_split(&topology));
                let risk = crate::forkrisk::partition_risk(&topology, &groups, longest);
                if risk.is_risky() {
                    warnings.push(format!("workload `{}`: {}", w.name(), risk.explain()));
                }
            }
        }
        let mut uses: Vec<crate::deploy::FaultKind> =
            workloads.iter().flat_map(|w| w.uses()).collect();
        uses.sort();
        uses.dedup();
        Ok(Scenario {
            uses,
            warnings,
            fail_fast: !self.continue_on_workload_failure,
            required_features,
            feed_mode: self.feed_mode,
            cooldown: self
                .cooldown
                .map_or(slot * 5, |c| c.resolve(&topology.params)),
            duration,
            topology,
            workloads,
            expectations,
            capabilities: self.capabilities.iter().copied().collect(),
            seed,
            monitoring: self.monitoring.clone(),
            builder: self,
        })
    }
}

/// A validated plan, ready to deploy and run.
#[derive(Clone)]
pub struct Scenario {
    topology: Topology,
    duration: Duration,
    cooldown: Duration,
    seed: u64,
    /// Workloads run concurrently for the duration.
    pub workloads: Vec<Arc<dyn Workload>>,
    /// Expectations evaluated after the cooldown.
    pub expectations: Vec<Arc<dyn Expectation>>,
    /// What the deployer must offer.
    pub capabilities: Vec<Capability>,
    /// Kinds of control and fault the plan's workloads use (checked against the backend).
    pub uses: Vec<crate::deploy::FaultKind>,
    /// What the node kind must offer.
    pub required_features: Vec<crate::nodekind::KindFeature>,
    /// How the block feed reads the nodes.
    pub feed_mode: crate::blockfeed::FeedMode,
    /// A failed workload stops the run at once (the default); false: the run goes on to
    /// its end and its expectations are judged.
    pub fail_fast: bool,
    /// What the plan may get wrong, found at build time (printed by `check` and at build): a
    /// partition that can fork the testnet for good ([`crate::forkrisk`]).
    pub warnings: Vec<String>,
    /// The monitoring URLs the plan sets (the environment's apply to the others).
    pub monitoring: crate::metrics::Monitoring,
    builder: ScenarioBuilder,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("nodes", &self.topology.node_count())
            .field("duration", &self.duration)
            .field("seed", &self.seed)
            .field(
                "workloads",
                &self.workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
            )
            .field(
                "expectations",
                &self
                    .expectations
                    .iter()
                    .map(|e| e.name())
                    .collect::<Vec<_>>(),
            )
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

impl Scenario {
    /// The validated topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// How long workloads run.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Wait between stopping workloads and evaluating.
    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    /// The run seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The same plan with another seed (the CLI's `--seed`), rebuilt so that
    /// keys and random shapes follow it. Stateful expectations start fresh.
    pub fn with_seed(&self, seed: u64) -> Result<Scenario, ScenarioError> {
        self.builder.clone().seed(seed).build()
    }

    /// The plan rebuilt from its builder changed by `f` (a replay's changes), with `f`'s seed or
    /// this plan's.
    pub fn rebuild(
        &self,
        f: impl FnOnce(ScenarioBuilder) -> ScenarioBuilder,
    ) -> Result<Scenario, ScenarioError> {
        f(self.builder.clone().seed(self.seed)).build()
    }

    /// A fresh copy (new expectation state) for running the plan again.
    pub fn fresh(&self) -> Scenario {
        self.with_seed(self.seed).unwrap_or_else(|_| self.clone())
    }

    /// Names of the workloads.
    pub fn workload_names(&self) -> Vec<String> {
        self.workloads.iter().map(|w| w.name()).collect()
    }

    /// Names of the expectations.
    pub fn expectation_names(&self) -> Vec<String> {
        self.expectations.iter().map(|e| e.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ScenarioBuilder {
        ScenarioBuilder::topology_with(|t| {
            t.network_star()
                .nodes(3)
                .slot_duration(Duration::from_millis(200))
        })
        .with_run_duration(Duration::from_secs(5))
    }

    #[test]
    fn rate_and_users_are_bounded() {
        let e = base()
            .wallets(10)
            .transactions_with(|t| t.rate(1e9))
            .build()
            .unwrap_err();
        assert_eq!(e.field, "rate");
        assert!(e.message.contains("exceeds the bound 10000"), "{e}");
        let e = base()
            .wallets(10)
            .transactions_with(|t| t.users(MAX_USERS + 1))
            .build()
            .unwrap_err();
        assert_eq!(e.field, "users");
        assert!(
            e.message
                .contains("users = 100001 exceeds the bound 100000"),
            "{e}"
        );
        let e = base().wallets(100_000_000).build().unwrap_err();
        assert_eq!(e.field, "wallets");
    }

    #[test]
    fn seed_example_builds_with_inclusion_attached() {
        let s = base()
            .wallets(50)
            .transactions_with(|txs| txs.rate(5.0).users(20))
            .expect_consensus_liveness()
            .seed(3)
            .build()
            .unwrap();
        assert_eq!(s.workload_names(), vec!["transactions"]);
        assert_eq!(
            s.expectation_names(),
            vec!["consensus_liveness", "tx_inclusion"]
        );
        assert_eq!(s.seed(), 3);
        assert_eq!(s.topology().wallets, 50);
        let s2 = s.with_seed(4).unwrap();
        assert_eq!(s2.seed(), 4);
        assert_ne!(
            crate::nodekind::genesis_for(s.topology(), 0),
            crate::nodekind::genesis_for(s2.topology(), 0)
        );
    }

    #[test]
    fn validation_names_field_and_value() {
        let e = |b: ScenarioBuilder| b.build().unwrap_err().to_string();
        assert_eq!(
            e(base().wallets(5).transactions_with(|t| t.rate(0.0))),
            "rate = 0: transactions need a rate above 0 per block"
        );
        assert_eq!(
            e(base().wallets(5).transactions_with(|t| t.users(0))),
            "users = 0: transactions need at least one user"
        );
        assert_eq!(
            e(base().wallets(5).transactions_with(|t| t.users(6))),
            "users = 6 exceeds wallets = 5: every user needs a funded wallet"
        );
        assert_eq!(
            e(base().with_run_duration(Duration::from_millis(300))),
            "run_duration = 300ms is shorter than two slots (slot_duration = 200ms)"
        );
        assert_eq!(
            e(ScenarioBuilder::topology_with(|t| t.nodes(0))),
            "nodes = 0: a testnet needs at least one node"
        );
    }
}
