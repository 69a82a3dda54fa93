//! The reference node (`<exe> devnode --config FILE`) and its config.

use std::path::{Path, PathBuf};

use devnode::config::{
    ApiSection, ConsensusParams, Limits, NetworkSection, NodeConfig, NodeSection, StorageSection,
    TestingFaults,
};

use super::{
    NodeKind, NodeKindError, NodePlan, StartSkew, apply_overrides, generator, wallet_secrets,
};
use crate::client::Dialect;
use crate::topology::{ConfigOverride, Topology};

/// The reference node, run as `<bin> devnode --config FILE`.
#[derive(Debug, Clone)]
pub struct ReferenceNode {
    /// None: the running executable.
    pub binary: Option<PathBuf>,
}

impl ReferenceNode {
    /// `NOMOS_DEVNODE_BIN` if set, else the running executable.
    pub fn from_env() -> Self {
        Self {
            binary: std::env::var_os("NOMOS_DEVNODE_BIN").map(PathBuf::from),
        }
    }
}

impl NodeKind for ReferenceNode {
    fn name(&self) -> String {
        "reference".to_owned()
    }

    fn dialect(&self, topology: &Topology) -> Option<Dialect> {
        Some(topology.api_dialect.unwrap_or(Dialect::Logos202605))
    }

    fn testing_surface(&self) -> bool {
        true
    }

    fn start_skew(&self, offset_ms: i64) -> Result<StartSkew, NodeKindError> {
        Ok(StartSkew::Overrides(vec![ConfigOverride {
            path: "testing.clock_offset_ms".to_owned(),
            value: offset_ms.into(),
        }]))
    }

    fn command(&self, config: &Path) -> Result<(PathBuf, Vec<String>), NodeKindError> {
        let bin = match &self.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe()
                .map_err(|e| NodeKindError::Binary(format!("current executable unknown: {e}")))?,
        };
        if !bin.exists() {
            return Err(NodeKindError::Binary(format!(
                "{} does not exist (NOMOS_DEVNODE_BIN)",
                bin.display()
            )));
        }
        Ok((
            bin,
            vec![
                "devnode".to_owned(),
                "--config".to_owned(),
                config.display().to_string(),
            ],
        ))
    }

    fn render_config(&self, topology: &Topology, plan: &NodePlan) -> Result<String, NodeKindError> {
        // the built-in generator, through the same contract as an external one
        let d = generator::describe("reference", &["config.yaml"], topology, plan);
        let base = generator::reference_from_description(&d).map_err(NodeKindError::Render)?;
        let value =
            serde_yaml::to_value(&base).map_err(|e| NodeKindError::Render(e.to_string()))?;
        let value = apply_overrides(value, &plan.overrides(topology))
            .map_err(|e| NodeKindError::Render(e.message))?;
        let config = NodeConfig::from_yaml_value(value)
            .map_err(|e| NodeKindError::Render(format!("config of node-{}: {e}", plan.index)))?;
        Ok(config.to_yaml())
    }
}

/// The reference node's config for a plan, before overrides.
pub fn reference_config(topology: &Topology, plan: &NodePlan) -> NodeConfig {
    NodeConfig {
        node: NodeSection {
            index: plan.index,
            key: plan.key_hex.clone(),
        },
        network: NetworkSection {
            listen: plan.p2p_addr,
            advertise: None,
            peers: plan.peers.clone(),
        },
        api: ApiSection {
            listen: plan.api_addr,
            dialect: match topology.api_dialect.unwrap_or(Dialect::Logos202605) {
                Dialect::Logos202601 => devnode::config::ApiDialect::Logos202601,
                Dialect::Logos202605 => devnode::config::ApiDialect::Logos202605,
            },
            block_explorer: true,
        },
        testing_api: plan
            .testing_addr
            .map(|listen| devnode::config::TestingApiSection { listen }),
        wallet: devnode::config::WalletSection {
            keys: wallet_secrets(topology, plan.index),
        },
        genesis: plan.genesis.clone(),
        consensus: ConsensusParams {
            slot_duration_ms: topology.params.slot_duration.as_millis() as u64,
            active_slot_coeff: topology.params.active_slot_coeff,
            security_param: topology.params.security_param,
        },
        storage: StorageSection {
            data_dir: plan.data_dir.clone(),
        },
        limits: Limits::default(),
        testing: TestingFaults::default(),
    }
}
