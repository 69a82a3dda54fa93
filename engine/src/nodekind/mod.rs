//! What is specific to one node implementation (its kind): command line,
//! environment, ports, how its configs are made, its API dialect and what it
//! supports ([`KindCapabilities`]). Kinds, selected by name with
//! `LOGOS_BLOCKCHAIN_NODE_KIND` or `--node-kind` ([`from_env`]):
//! - `reference` (default): the reference node, `<exe> devnode --config <file>` (the
//!   running executable, or `NOMOS_DEVNODE_BIN` / `LOGOS_BLOCKCHAIN_NODE_BIN`); configs
//!   from its built-in generator through the generator contract ([`generator`]), or from
//!   `LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR` when set.
//! - `logos`: the real node ([`logos`]), `LOGOS_BLOCKCHAIN_NODE_BIN` plus a generator.
//! - `template`: `LOGOS_BLOCKCHAIN_NODE_BIN=/path/to/node` and
//!   `LOGOS_BLOCKCHAIN_NODE_CONFIG_TEMPLATE=/path/to/template.yaml`: another node,
//!   started as `<bin> --config <file>` (`LOGOS_BLOCKCHAIN_NODE_ARGS`, split
//!   on spaces, replaces `--config`; `{config}` in it stands for the file).
//!   The template is rendered by plain `{{var}}` substitution with: `index`,
//!   `name`, `key` (hex secret), `public_key`, `api_addr`, `api_port`, `testing_addr`,
//!   `testing_port`, `p2p_addr`, `p2p_port`, `blend_addr`, `blend_port`, `peers` (YAML
//!   flow list of `host:port`), `peers_multiaddr` (the same as `/ip4/H/udp/P/quic-v1`),
//!   `data_dir`, `log_dir`, `genesis_time_ms`, `chain_start_time` (a date, as the real
//!   node writes it), `chain_start_unix`, `epoch_nonce`, `slot_duration_ms`,
//!   `active_slot_coeff`, `security_param`, `stake` (this node's), `stakes` (flow list by
//!   index), `api_dialect`, `wallet_keys`, `leaders` and `accounts` (YAML flow
//!   lists of `{public_key, stake|balance}`). If the result parses as YAML,
//!   the topology's overrides are applied to it by dotted path.
//!   Without `LOGOS_BLOCKCHAIN_NODE_KIND`, `LOGOS_BLOCKCHAIN_NODE_BIN` alone selects
//!   `logos`, with a template `template`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use devnode::config::Genesis;

use crate::client::Dialect;
use crate::topology::Topology;

pub mod faketime;
pub mod generator;
mod genesis;
pub mod logos;
mod overrides;
mod reference;
mod start_skew;
mod template;

use genesis::signing_key;
pub use genesis::{
    follower_secret, genesis_for, joiner_secret, leader_secret, wallet_key, wallet_owner,
    wallet_secrets,
};
pub(crate) use overrides::validate_overrides;
pub use overrides::{apply_overrides, apply_overrides_creating, overrides_on_generated};
pub use reference::{ReferenceNode, reference_config};
pub use start_skew::{StartSkew, apply_start_skew, check_start_skews};
pub use template::TemplateNode;

/// Everything a deployer decided for one node before rendering its config.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub index: usize,
    /// 32-byte secret seed, hex.
    pub key_hex: String,
    pub api_addr: SocketAddr,
    /// The testing surface's address, for kinds that have one.
    pub testing_addr: Option<SocketAddr>,
    pub p2p_addr: SocketAddr,
    /// The blend listener's address, for kinds that have one (UDP).
    pub blend_addr: Option<SocketAddr>,
    /// Addresses this node dials (possibly link-layer proxies standing in for peers),
    /// spelled as the kind wants them ([`NodeKind::peer_address`]).
    pub peers: Vec<String>,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Where the node's config files are written (a generator writes its files here).
    pub config_dir: PathBuf,
    pub genesis: Genesis,
    /// Overrides beyond the topology's, applied last (a node added at run time with its own).
    pub overrides: Vec<crate::topology::ConfigOverride>,
}

impl NodePlan {
    /// Every override of this node: the topology's (global, then its own), then the plan's.
    pub fn overrides(&self, topology: &Topology) -> Vec<crate::topology::ConfigOverride> {
        let mut v = topology.overrides_for(self.index);
        v.extend(self.overrides.iter().cloned());
        v
    }
}

/// Why a node could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum NodeKindError {
    #[error("failed to read config template {path}: {source}")]
    Template {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Render(String),
    #[error("cannot locate the node binary: {0}")]
    Binary(String),
    /// The kind is misconfigured (a missing variable, an unknown name).
    #[error("{0}")]
    Setup(String),
    /// The config generator failed (the message has its command, exit code and stderr).
    #[error("{0}")]
    Generator(String),
}

/// How a node kind's peers reach each other (what the link layer must relay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkTransport {
    /// Length-delimited frames over TCP (the reference node).
    Tcp,
    /// QUIC over UDP (the real node).
    Udp,
}

/// What a node kind supports, declared so that a plan needing more is refused
/// before anything is deployed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KindCapabilities {
    /// Transactions signed by the framework and sent to `/mempool/add/tx`.
    pub client_signed_txs: bool,
    /// Node-signed transfers through the wallet API.
    pub wallet_transfers: bool,
    /// A node can be asked to dial a peer at run time.
    pub runtime_connect: bool,
    /// A Prometheus endpoint per node.
    pub metrics_endpoint: bool,
    /// The transport of peer links (what link faults must act on).
    pub link_transport: LinkTransport,
    /// Link faults (partitions, latency, loss) can be applied to this kind's links.
    pub link_faults: bool,
    /// Its nodes can be told to lie and report the lies they saw (the reference node's
    /// `/test/byzantine` and `/test/evidence`).
    pub byzantine: bool,
    /// The reference node's testing switches: a clock and disk faults set at run time on the
    /// testing surface (`/test/clock`, `/test/disk`).
    pub testing_switches: bool,
}

impl KindCapabilities {
    /// Everything the reference node offers.
    pub fn reference() -> Self {
        Self {
            client_signed_txs: true,
            wallet_transfers: true,
            runtime_connect: true,
            metrics_endpoint: true,
            link_transport: LinkTransport::Tcp,
            link_faults: true,
            byzantine: true,
            testing_switches: true,
        }
    }
}

/// A feature a plan needs from its node kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindFeature {
    ClientSignedTxs,
    WalletTransfers,
    RuntimeConnect,
    MetricsEndpoint,
    LinkFaults,
    /// Byzantine behaviours and equivocation evidence.
    Byzantine,
    TestingSwitches,
}

impl KindFeature {
    /// Whether `caps` has it.
    pub fn offered_by(self, caps: &KindCapabilities) -> bool {
        match self {
            KindFeature::ClientSignedTxs => caps.client_signed_txs,
            KindFeature::WalletTransfers => caps.wallet_transfers,
            KindFeature::RuntimeConnect => caps.runtime_connect,
            KindFeature::MetricsEndpoint => caps.metrics_endpoint,
            KindFeature::LinkFaults => caps.link_faults,
            KindFeature::Byzantine => caps.byzantine,
            KindFeature::TestingSwitches => caps.testing_switches,
        }
    }
}

impl fmt::Display for KindFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KindFeature::ClientSignedTxs => "client-signed transactions",
            KindFeature::WalletTransfers => "wallet transfers",
            KindFeature::RuntimeConnect => "run-time connect",
            KindFeature::MetricsEndpoint => "a metrics endpoint",
            KindFeature::LinkFaults => "link faults",
            KindFeature::Byzantine => "byzantine behaviours",
            KindFeature::TestingSwitches => {
                "the testing clock and disk switches (/test/clock, /test/disk)"
            }
        })
    }
}

/// One node implementation.
pub trait NodeKind: Send + Sync + fmt::Debug {
    /// Short name for messages (`reference`, or the binary's file name).
    fn name(&self) -> String;
    /// What this kind supports.
    fn capabilities(&self) -> KindCapabilities {
        KindCapabilities::reference()
    }
    /// The API dialect its nodes serve for this topology; None: detected at readiness.
    fn dialect(&self, topology: &Topology) -> Option<Dialect> {
        let _ = topology;
        None
    }
    /// Whether its nodes serve a testing surface on `NodePlan::testing_addr`.
    fn testing_surface(&self) -> bool {
        false
    }
    /// Its readiness rule beyond the common one (API answers, `n_peers` >= the node's degree,
    /// height >= 1): whether a node must also report mode `Online`.
    fn ready_when_online(&self) -> bool {
        false
    }
    /// Whether its nodes need a blend port (`NodePlan::blend_addr`).
    fn blend_port(&self) -> bool {
        false
    }
    /// A peer's p2p address as this kind's config spells it (`host:port` for the
    /// reference node; a multiaddr `/ip4/H/udp/P/quic-v1` for the real node).
    fn peer_address(&self, addr: SocketAddr) -> String {
        addr.to_string()
    }
    /// Extra environment of every node process or container.
    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Host directories mounted into node containers, as `(host path, container path)`.
    fn mounts(&self) -> Vec<(PathBuf, String)> {
        Vec::new()
    }
    /// How a node of this kind starts with its clock `offset_ms` off wall time, or why it
    /// cannot (named in the error). By default through libfaketime, for a dynamically linked
    /// binary ([`faketime::env_for`]).
    fn start_skew(&self, offset_ms: i64) -> Result<StartSkew, NodeKindError> {
        let (bin, _) = self.command(Path::new("config.yaml"))?;
        faketime::env_for(&bin, offset_ms).map(StartSkew::Env)
    }
    /// Program and arguments that run one node with the config at `config` (other files the
    /// kind writes sit beside it).
    fn command(&self, config: &Path) -> Result<(PathBuf, Vec<String>), NodeKindError>;
    /// The config file's contents for one node (extra files go to `plan.config_dir`).
    fn render_config(&self, topology: &Topology, plan: &NodePlan) -> Result<String, NodeKindError>;
}

/// Every node kind name `LOGOS_BLOCKCHAIN_NODE_KIND` (or `--node-kind`) accepts.
pub const KIND_NAMES: [&str; 3] = ["reference", "logos", "template"];

static KIND_OVERRIDE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Selects the node kind by name for this process (the CLI's `--node-kind`), before any
/// deploy; it wins over `LOGOS_BLOCKCHAIN_NODE_KIND`.
pub fn select_kind(name: &str) -> Result<(), NodeKindError> {
    if !KIND_NAMES.contains(&name) {
        return Err(NodeKindError::Setup(format!(
            "unknown node kind {name:?}: expected one of {}",
            KIND_NAMES.join(", ")
        )));
    }
    let _ = KIND_OVERRIDE.set(name.to_owned());
    Ok(())
}

/// The name of the node kind the process and environment select.
pub fn selected_kind_name() -> String {
    if let Some(k) = KIND_OVERRIDE.get() {
        return k.clone();
    }
    if let Ok(k) = std::env::var("LOGOS_BLOCKCHAIN_NODE_KIND") {
        return k;
    }
    match (
        std::env::var_os("LOGOS_BLOCKCHAIN_NODE_BIN"),
        std::env::var_os("LOGOS_BLOCKCHAIN_NODE_CONFIG_TEMPLATE"),
    ) {
        (Some(_), Some(_)) => "template".to_owned(),
        (Some(_), None) => "logos".to_owned(),
        _ => "reference".to_owned(),
    }
}

/// The node kind the environment selects (see the module docs).
pub fn from_env() -> Result<Arc<dyn NodeKind>, NodeKindError> {
    let generator = generator::Generator::from_env();
    match selected_kind_name().as_str() {
        "reference" => {
            let mut kind = ReferenceNode::from_env();
            if kind.binary.is_none()
                && let Some(bin) = std::env::var_os("LOGOS_BLOCKCHAIN_NODE_BIN")
            {
                kind.binary = Some(PathBuf::from(bin));
            }
            Ok(match generator {
                Some(g) => Arc::new(generator::GeneratedNode::new(Arc::new(kind), g)),
                None => Arc::new(kind),
            })
        }
        "logos" => Ok(Arc::new(logos::LogosNode::from_env()?)),
        "template" => template_from_env(),
        other => Err(NodeKindError::Setup(format!(
            "LOGOS_BLOCKCHAIN_NODE_KIND = {other:?}: expected one of {}",
            KIND_NAMES.join(", ")
        ))),
    }
}

fn template_from_env() -> Result<Arc<dyn NodeKind>, NodeKindError> {
    let bin = std::env::var("LOGOS_BLOCKCHAIN_NODE_BIN").map_err(|_| {
        NodeKindError::Setup(
            "the template node kind needs LOGOS_BLOCKCHAIN_NODE_BIN (the node binary)".to_owned(),
        )
    })?;
    let template = std::env::var("LOGOS_BLOCKCHAIN_NODE_CONFIG_TEMPLATE").map_err(|_| {
            NodeKindError::Setup(format!(
                "the template node kind (LOGOS_BLOCKCHAIN_NODE_BIN = {bin}) needs LOGOS_BLOCKCHAIN_NODE_CONFIG_TEMPLATE (a config template file)"
            ))
        })?;
    let args = std::env::var("LOGOS_BLOCKCHAIN_NODE_ARGS")
        .ok()
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_else(|| vec!["--config".to_owned(), "{config}".to_owned()]);
    Ok(Arc::new(TemplateNode::new(
        PathBuf::from(bin),
        PathBuf::from(template),
        args,
    )?))
}

#[cfg(test)]
mod tests {
    use devnode::config::NodeConfig;

    use super::*;
    use crate::topology::TopologyBuilder;

    fn plan(topo: &Topology) -> NodePlan {
        NodePlan {
            index: 0,
            key_hex: leader_secret(topo.seed, 0),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 1000)),
            testing_addr: None,
            p2p_addr: SocketAddr::from(([127, 0, 0, 1], 2000)),
            blend_addr: None,
            peers: vec!["127.0.0.1:3000".into()],
            data_dir: PathBuf::from("/data"),
            log_dir: PathBuf::from("/logs"),
            config_dir: PathBuf::from("/config"),
            genesis: genesis_for(topo, 42),
            overrides: Vec::new(),
        }
    }

    #[test]
    fn template_substitutes_variables_and_rejects_unknown_ones() {
        let topo = TopologyBuilder::new().wallets(1).build().unwrap();
        let kind = TemplateNode {
            binary: PathBuf::from("/bin/node"),
            template: "api: {{api_addr}}\npeers: {{peers}}\ntime: {{genesis_time_ms}}\n".into(),
            args: vec!["run".into(), "--config={config}".into()],
            capabilities: KindCapabilities::reference(),
        };
        let text = kind.render_config(&topo, &plan(&topo)).unwrap();
        assert_eq!(
            text,
            "api: 127.0.0.1:1000\npeers: [\"127.0.0.1:3000\"]\ntime: 42\n"
        );
        let (bin, args) = kind.command(Path::new("/x/c.yaml")).unwrap();
        assert_eq!(bin, PathBuf::from("/bin/node"));
        assert_eq!(args, vec!["run", "--config=/x/c.yaml"]);
        let bad = TemplateNode {
            template: "x: {{nope}}".into(),
            ..kind
        };
        let err = bad
            .render_config(&topo, &plan(&topo))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config template has an unknown variable near `{{nope}}`"
        );
    }

    #[test]
    fn reference_config_round_trips_with_overrides_and_same_genesis_for_all() {
        let topo = TopologyBuilder::new()
            .nodes(2)
            .wallets(3)
            .with_override("genesis.leaders.0.stake", 7.into())
            .build()
            .unwrap();
        let text = ReferenceNode { binary: None }
            .render_config(&topo, &plan(&topo))
            .unwrap();
        let cfg: NodeConfig = serde_yaml::from_str(&text).unwrap();
        assert_eq!(cfg.genesis.leaders[0].stake, 7);
        assert_eq!(cfg.genesis.accounts.len(), 3);
        assert_eq!(cfg.network.peers, vec!["127.0.0.1:3000"]);
        assert_eq!(genesis_for(&topo, 1), genesis_for(&topo, 1));
        assert_ne!(leader_secret(1, 0), leader_secret(2, 0));
    }
}
