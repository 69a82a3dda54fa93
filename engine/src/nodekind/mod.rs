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

use devnode::config::{
    ApiSection, ConsensusParams, Genesis, GenesisAccount, GenesisLeader, Limits, NetworkSection,
    NodeConfig, NodeSection, StorageSection, TestingFaults,
};
use devnode::crypto::{derive_secret, public_hex};
use ed25519_dalek::SigningKey;

use crate::client::Dialect;
use crate::topology::{ConfigOverride, Topology, TopologyError};

pub mod faketime;
pub mod generator;
pub mod logos;
mod start_skew;

pub use start_skew::{StartSkew, apply_start_skew, check_start_skews};

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

fn signing_key(hex_key: &str) -> SigningKey {
    devnode::crypto::signing_key_from_hex(hex_key)
        .unwrap_or_else(|_| SigningKey::from_bytes(&derive_secret(hex_key)))
}

/// Secret of genesis leader `i` of a run seeded with `seed` (hex).
pub fn leader_secret(seed: u64, i: usize) -> String {
    hex::encode(derive_secret(&format!("nomos-script/{seed}/leader/{i}")))
}

/// Secret of the `j`-th reserved staked joiner (hex).
pub fn joiner_secret(seed: u64, j: usize) -> String {
    hex::encode(derive_secret(&format!("nomos-script/{seed}/joiner/{j}")))
}

/// Secret of a non-producing node added at run time as node `i` (hex).
pub fn follower_secret(seed: u64, i: usize) -> String {
    hex::encode(derive_secret(&format!("nomos-script/{seed}/follower/{i}")))
}

/// Signing key of funded wallet `w`.
pub fn wallet_key(seed: u64, w: usize) -> SigningKey {
    SigningKey::from_bytes(&derive_secret(&format!("nomos-script/{seed}/wallet/{w}")))
}

/// Secrets of the funded wallets whose keys node `i`'s wallet knows: wallet `w` belongs
/// to node `w % n` of the `n` nodes deployed at start (nodes added later know none).
pub fn wallet_secrets(topology: &Topology, i: usize) -> Vec<String> {
    let n = topology.node_count().max(1);
    (0..topology.wallets)
        .filter(|w| w % n == i)
        .map(|w| hex::encode(wallet_key(topology.seed, w).to_bytes()))
        .collect()
}

/// The node whose wallet knows funded wallet `w`.
pub fn wallet_owner(topology: &Topology, w: usize) -> usize {
    w % topology.node_count().max(1)
}

/// Genesis of a topology: leaders (stake > 0 nodes, then reserved joiners),
/// funded wallets and an epoch nonce from the seed.
pub fn genesis_for(topology: &Topology, time_ms: u64) -> Genesis {
    let seed = topology.seed;
    let mut leaders: Vec<GenesisLeader> = topology
        .nodes
        .iter()
        .filter(|n| n.stake > 0)
        .map(|n| GenesisLeader {
            public_key: public_hex(&signing_key(&leader_secret(seed, n.index))),
            stake: n.stake,
        })
        .collect();
    for (j, &stake) in topology.reserved_joiners.iter().enumerate() {
        leaders.push(GenesisLeader {
            public_key: public_hex(&signing_key(&joiner_secret(seed, j))),
            stake,
        });
    }
    Genesis {
        time_ms,
        epoch_nonce: hex::encode(derive_secret(&format!("nomos-script/{seed}/epoch-nonce"))),
        accounts: (0..topology.wallets)
            .map(|w| GenesisAccount {
                public_key: public_hex(&wallet_key(seed, w)),
                balance: topology.wallet_balance,
            })
            .collect(),
        leaders,
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

#[cfg(test)]
mod tests {
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
