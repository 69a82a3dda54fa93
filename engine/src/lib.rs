//! The async core of nomos-script: topology, scenarios, deployers, runner,
//! workloads, expectations, node clients and the block feed.
//!
//! **Invariant:** the engine never imports rhai; the bindings crate wraps it.
//!
//! Flow: [`topology::TopologyBuilder`] -> [`scenario::ScenarioBuilder`] ->
//! [`deploy::Deployer`] (a [`deploy::Testnet`]) -> [`runner::run_scenario`]
//! -> [`workload::Workload`]s and [`expectation::Expectation`]s ->
//! [`report::RunReport`].

pub mod blockfeed;
pub mod chaos;
pub mod client;
pub mod context;
pub mod crash_watch;
pub mod deadline;
pub mod deploy;
pub mod error;
pub mod evidence;
pub mod exit;
pub mod expectation;
pub mod forkrisk;
pub mod gc;
pub mod links;
pub mod live;
pub mod metrics;
pub mod nodekind;
pub mod recovery;
pub mod replay;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod shrink;
pub mod topology;
pub mod wait;
pub mod wallet;
pub mod workload;

pub use tokio_util::sync::CancellationToken;
