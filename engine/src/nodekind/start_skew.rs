//! A node started with its clock off wall time (`TopologyBuilder::start_clock_skew`): what each
//! kind needs for it ([`NodeKind::start_skew`]: its config, or libfaketime in its process's
//! environment) and how the backends apply it or refuse it before deploying.

use super::{NodeKind, NodeKindError, NodePlan};
use crate::topology::{ConfigOverride, Topology};

/// How one node starts with its clock off wall time (`TopologyBuilder::start_clock_skew`).
#[derive(Debug, Clone, PartialEq)]
pub enum StartSkew {
    /// Through its config (the reference node's `testing.clock_offset_ms`).
    Overrides(Vec<ConfigOverride>),
    /// Through its process environment (libfaketime, [`faketime`]).
    Env(Vec<(String, String)>),
}

/// Applies node `plan.index`'s clock skew at start (`TopologyBuilder::start_clock_skew`), if
/// it has one: config overrides go into `plan.overrides`; the environment the process needs
/// (libfaketime) is returned. `env_refused` is why the backend cannot pass such an environment,
/// if it cannot (then the skew is refused, naming the node and the reason).
pub fn apply_start_skew(
    kind: &dyn NodeKind,
    topology: &Topology,
    plan: &mut NodePlan,
    env_refused: Option<&str>,
) -> Result<Vec<(String, String)>, NodeKindError> {
    match start_skew_of(kind, topology, plan.index, env_refused)? {
        Some(StartSkew::Overrides(o)) => {
            plan.overrides.extend(o);
            Ok(Vec::new())
        }
        Some(StartSkew::Env(env)) => Ok(env),
        None => Ok(Vec::new()),
    }
}

/// Refuses, before anything is deployed, a clock skew at start that cannot apply to a node
/// of `kind` on a backend (see [`apply_start_skew`]).
pub fn check_start_skews(
    kind: &dyn NodeKind,
    topology: &Topology,
    env_refused: Option<&str>,
) -> Result<(), NodeKindError> {
    for i in 0..topology.node_count() {
        start_skew_of(kind, topology, i, env_refused)?;
    }
    Ok(())
}

fn start_skew_of(
    kind: &dyn NodeKind,
    topology: &Topology,
    i: usize,
    env_refused: Option<&str>,
) -> Result<Option<StartSkew>, NodeKindError> {
    let Some(ms) = topology.nodes.get(i).and_then(|n| n.start_clock_skew_ms) else {
        return Ok(None);
    };
    let named = |e: NodeKindError| NodeKindError::Setup(format!("start_clock_skew node-{i}: {e}"));
    match kind.start_skew(ms).map_err(named)? {
        StartSkew::Env(_) if env_refused.is_some() => Err(NodeKindError::Setup(format!(
            "start_clock_skew node-{i}: the {} node kind needs libfaketime preloaded into its process, and {}",
            kind.name(),
            env_refused.unwrap_or_default()
        ))),
        skew => Ok(Some(skew)),
    }
}
