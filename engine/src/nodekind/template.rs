//! Another node binary with a `{{var}}` config template (the `template` kind).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use devnode::crypto::public_hex;

use super::{
    KindCapabilities, NodeKind, NodeKindError, NodePlan, apply_overrides_creating, generator,
    logos, signing_key, wallet_secrets,
};
use crate::client::Dialect;
use crate::topology::Topology;

/// Another node binary with a `{{var}}` config template.
#[derive(Debug, Clone)]
pub struct TemplateNode {
    pub binary: PathBuf,
    pub template: String,
    /// Arguments; `{config}` is replaced by the config path.
    pub args: Vec<String>,
    /// What the binary supports (default: all the reference node offers).
    pub capabilities: KindCapabilities,
}

impl TemplateNode {
    /// Reads the template now so a missing file fails before deploying.
    pub fn new(
        binary: PathBuf,
        template: PathBuf,
        args: Vec<String>,
    ) -> Result<Self, NodeKindError> {
        let text =
            std::fs::read_to_string(&template).map_err(|source| NodeKindError::Template {
                path: template.clone(),
                source,
            })?;
        Ok(Self {
            binary,
            template: text,
            args,
            capabilities: KindCapabilities::reference(),
        })
    }

    /// The same kind, declaring these capabilities.
    pub fn with_capabilities(mut self, capabilities: KindCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

impl NodeKind for TemplateNode {
    fn name(&self) -> String {
        self.binary
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "custom".to_owned())
    }

    fn capabilities(&self) -> KindCapabilities {
        let mut caps = self.capabilities.clone();
        caps.testing_switches &= self.testing_surface();
        caps
    }

    fn testing_surface(&self) -> bool {
        self.template.contains("{{testing_addr}}") || self.template.contains("{{testing_port}}")
    }

    fn command(&self, config: &Path) -> Result<(PathBuf, Vec<String>), NodeKindError> {
        let cfg = config.display().to_string();
        Ok((
            self.binary.clone(),
            self.args
                .iter()
                .map(|a| a.replace("{config}", &cfg))
                .collect(),
        ))
    }

    fn render_config(&self, topology: &Topology, plan: &NodePlan) -> Result<String, NodeKindError> {
        let key = signing_key(&plan.key_hex);
        let flow = |v: &serde_json::Value| v.to_string();
        let vars: Vec<(&str, String)> = vec![
            ("index", plan.index.to_string()),
            ("name", Topology::node_name(plan.index)),
            ("key", plan.key_hex.clone()),
            ("public_key", public_hex(&key)),
            ("api_addr", plan.api_addr.to_string()),
            ("api_port", plan.api_addr.port().to_string()),
            (
                "testing_addr",
                plan.testing_addr.map(|a| a.to_string()).unwrap_or_default(),
            ),
            (
                "testing_port",
                plan.testing_addr
                    .map(|a| a.port().to_string())
                    .unwrap_or_default(),
            ),
            (
                "api_dialect",
                topology
                    .api_dialect
                    .unwrap_or(Dialect::Logos202605)
                    .to_string(),
            ),
            (
                "wallet_keys",
                flow(&serde_json::json!(wallet_secrets(topology, plan.index))),
            ),
            ("p2p_addr", plan.p2p_addr.to_string()),
            ("p2p_port", plan.p2p_addr.port().to_string()),
            ("peers", flow(&serde_json::json!(plan.peers))),
            (
                "peers_multiaddr",
                flow(&serde_json::json!(
                    plan.peers
                        .iter()
                        .map(|p| p
                            .parse::<SocketAddr>()
                            .map_or_else(|_| p.clone(), logos::LogosNode::multiaddr))
                        .collect::<Vec<_>>()
                )),
            ),
            (
                "blend_addr",
                plan.blend_addr.map(|a| a.to_string()).unwrap_or_default(),
            ),
            (
                "blend_port",
                plan.blend_addr
                    .map(|a| a.port().to_string())
                    .unwrap_or_default(),
            ),
            (
                "stake",
                topology
                    .nodes
                    .get(plan.index)
                    .map_or(0, |n| n.stake)
                    .to_string(),
            ),
            (
                "stakes",
                flow(&serde_json::json!(
                    topology.nodes.iter().map(|n| n.stake).collect::<Vec<_>>()
                )),
            ),
            (
                "chain_start_time",
                generator::node_date(plan.genesis.time_ms),
            ),
            (
                "chain_start_unix",
                (plan.genesis.time_ms / 1000).to_string(),
            ),
            ("data_dir", plan.data_dir.display().to_string()),
            ("log_dir", plan.log_dir.display().to_string()),
            ("genesis_time_ms", plan.genesis.time_ms.to_string()),
            ("epoch_nonce", plan.genesis.epoch_nonce.clone()),
            (
                "slot_duration_ms",
                topology.params.slot_duration.as_millis().to_string(),
            ),
            (
                "active_slot_coeff",
                topology.params.active_slot_coeff.to_string(),
            ),
            ("security_param", topology.params.security_param.to_string()),
            (
                "leaders",
                flow(&serde_json::to_value(&plan.genesis.leaders).unwrap_or_default()),
            ),
            (
                "accounts",
                flow(&serde_json::to_value(&plan.genesis.accounts).unwrap_or_default()),
            ),
        ];
        let mut text = self.template.clone();
        for (k, v) in &vars {
            text = text.replace(&format!("{{{{{k}}}}}"), v);
        }
        if let Some(start) = text.find("{{") {
            let var: String = text[start..].chars().take(40).collect();
            return Err(NodeKindError::Render(format!(
                "config template has an unknown variable near `{var}`"
            )));
        }
        let overrides = plan.overrides(topology);
        if overrides.is_empty() {
            return Ok(text);
        }
        let value: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
            NodeKindError::Render(format!(
                "overrides need a YAML config template, but it does not parse: {e}"
            ))
        })?;
        let value = apply_overrides_creating(value, &overrides)
            .map_err(|e| NodeKindError::Render(e.message))?;
        serde_yaml::to_string(&value).map_err(|e| NodeKindError::Render(e.to_string()))
    }
}
