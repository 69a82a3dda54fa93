//! Config overrides by dotted path: applied to a YAML tree, to a generated config, and checked
//! against the reference node's config before anything is deployed.

use std::net::SocketAddr;
use std::path::PathBuf;

use devnode::config::NodeConfig;

use super::{NodeKindError, NodePlan, genesis_for, leader_secret, reference_config};
use crate::topology::{ConfigOverride, Topology, TopologyError};

/// Applies dotted-path overrides to a YAML tree. Every path must already
/// exist in the tree (so a typo is an error, not a silent no-op).
pub fn apply_overrides(
    value: serde_yaml::Value,
    overrides: &[ConfigOverride],
) -> Result<serde_yaml::Value, TopologyError> {
    patch(value, overrides, false)
}

/// Like [`apply_overrides`], but creates missing mapping keys: a template of
/// another node need not spell out every section (the paths were already
/// checked against the reference config when the topology was built).
pub fn apply_overrides_creating(
    value: serde_yaml::Value,
    overrides: &[ConfigOverride],
) -> Result<serde_yaml::Value, TopologyError> {
    patch(value, overrides, true)
}

fn patch(
    mut value: serde_yaml::Value,
    overrides: &[ConfigOverride],
    create: bool,
) -> Result<serde_yaml::Value, TopologyError> {
    for o in overrides {
        let mut cur = &mut value;
        let mut walked: Vec<&str> = Vec::new();
        for part in o.path.split('.') {
            let at = if walked.is_empty() {
                "the top level".to_owned()
            } else {
                format!("`{}`", walked.join("."))
            };
            let unknown = |there: String| {
                TopologyError::new(
                    "with_override",
                    format!(
                        "unknown override key `{}`: {at} has no `{part}` ({there})",
                        o.path
                    ),
                )
            };
            cur = match cur {
                serde_yaml::Value::Mapping(m) => {
                    let key = serde_yaml::Value::String(part.to_owned());
                    if create && !m.contains_key(&key) {
                        m.insert(key.clone(), serde_yaml::Value::Mapping(Default::default()));
                    }
                    if !m.contains_key(&key) {
                        let keys: Vec<String> = m
                            .keys()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect();
                        return Err(unknown(format!("keys there: {}", keys.join(", "))));
                    }
                    m.get_mut(&key).expect("checked")
                }
                serde_yaml::Value::Sequence(seq) => {
                    let len = seq.len();
                    match part.parse::<usize>().ok().filter(|i| *i < len) {
                        Some(i) => &mut seq[i],
                        None => return Err(unknown(format!("a list of {len}: indexes 0..{len}"))),
                    }
                }
                _ => return Err(unknown("a plain value, not a mapping".to_owned())),
            };
            walked.push(part);
        }
        *cur = o.value.clone();
    }
    Ok(value)
}

/// Applies the overrides of `plan`'s node to a config a generator produced: every path must
/// exist in that config (an unknown key is named with the keys that do exist there).
pub fn overrides_on_generated(
    text: &str,
    topology: &Topology,
    plan: &NodePlan,
) -> Result<String, NodeKindError> {
    let index = plan.index;
    let overrides = plan.overrides(topology);
    if overrides.is_empty() {
        return Ok(text.to_owned());
    }
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        NodeKindError::Render(format!(
            "node-{index}: overrides need a YAML (or JSON) config, but the generated one does not parse: {e}"
        ))
    })?;
    let value = apply_overrides(value, &overrides)
        .map_err(|e| NodeKindError::Render(format!("node-{index}: {}", e.message)))?;
    serde_yaml::to_string(&value).map_err(|e| NodeKindError::Render(e.to_string()))
}

/// Checks every override against the reference node's config for each node
/// (unknown keys and ill-typed values), without deploying anything.
pub(crate) fn validate_overrides(topology: &Topology) -> Result<(), TopologyError> {
    // the genesis derives every wallet's key: only when there is something to check
    if topology.overrides.is_empty() && topology.nodes.iter().all(|n| n.overrides.is_empty()) {
        return Ok(());
    }
    let genesis = genesis_for(topology, 0);
    for i in 0..topology.node_count() {
        let overrides = topology.overrides_for(i);
        if overrides.is_empty() {
            continue;
        }
        let plan = NodePlan {
            index: i,
            key_hex: leader_secret(topology.seed, i),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            testing_addr: Some(SocketAddr::from(([127, 0, 0, 1], 3))),
            p2p_addr: SocketAddr::from(([127, 0, 0, 1], 2)),
            blend_addr: None,
            peers: Vec::new(),
            data_dir: PathBuf::from("/nonexistent"),
            log_dir: PathBuf::from("/nonexistent"),
            config_dir: PathBuf::from("/nonexistent"),
            genesis: genesis.clone(),
            overrides: Vec::new(),
        };
        let value = serde_yaml::to_value(reference_config(topology, &plan))
            .map_err(|e| TopologyError::new("with_override", e.to_string()))?;
        let value = apply_overrides(value, &overrides)?;
        if let Err(e) = NodeConfig::from_yaml_value(value) {
            let paths: Vec<String> = overrides
                .iter()
                .map(|o| {
                    format!(
                        "`{}` = {}",
                        o.path,
                        serde_yaml::to_string(&o.value)
                            .unwrap_or_default()
                            .trim_end()
                    )
                })
                .collect();
            let msg = match e {
                devnode::config::ConfigError::Parse { message, .. } => message,
                other => other.to_string(),
            };
            return Err(TopologyError::new(
                "with_override",
                format!(
                    "override {} makes an invalid config for node-{i}: {msg}",
                    paths.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
