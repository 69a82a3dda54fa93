//! The node's configuration file (YAML). A deployer renders it; the node
//! refuses unknown keys, naming them, so a typo never silently does nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::PublicKeyHex;

/// The whole configuration of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node: NodeSection,
    pub network: NetworkSection,
    pub api: ApiSection,
    pub genesis: Genesis,
    pub consensus: ConsensusParams,
    pub storage: StorageSection,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub testing: TestingFaults,
    /// The testing HTTP surface (the real node's testing port); absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testing_api: Option<TestingApiSection>,
    /// Keys the node's wallet signs transfers for (`transfer-funds`).
    #[serde(default, skip_serializing_if = "WalletSection::is_empty")]
    pub wallet: WalletSection,
}

/// Identity of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Index of the node in its testnet; names the log file
    /// (`logos-blockchain-node-{index}`).
    pub index: usize,
    /// 32-byte ed25519 secret seed, hex. Signs leader proofs and blocks.
    pub key: String,
}

/// Peer-to-peer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Address the p2p listener binds.
    pub listen: SocketAddr,
    /// Address other nodes should dial to reach this one (defaults to `listen`).
    #[serde(default)]
    pub advertise: Option<String>,
    /// Peers dialled at start (`host:port`); reconnected with backoff.
    #[serde(default)]
    pub peers: Vec<String>,
}

/// HTTP API settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    pub listen: SocketAddr,
    /// Which revision of the real node's API to serve.
    #[serde(default)]
    pub dialect: ApiDialect,
    /// `logos-2026-01` only: serve `/cryptarchia/blocks` and
    /// `/cryptarchia/blocks/stream` (as builds with the block-explorer feature).
    #[serde(default = "default_true")]
    pub block_explorer: bool,
}

impl ApiSection {
    /// The default dialect, block explorer on.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            dialect: ApiDialect::default(),
            block_explorer: true,
        }
    }
}

fn default_true() -> bool {
    true
}

/// A revision of the real Logos Blockchain node's HTTP API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ApiDialect {
    /// May 2026 (the default).
    #[default]
    Logos202605,
    /// January 2026.
    Logos202601,
}

impl ApiDialect {
    pub const ALL: [ApiDialect; 2] = [ApiDialect::Logos202605, ApiDialect::Logos202601];

    /// `"logos-2026-05"` or `"logos-2026-01"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiDialect::Logos202605 => "logos-2026-05",
            ApiDialect::Logos202601 => "logos-2026-01",
        }
    }
}

impl std::fmt::Display for ApiDialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ApiDialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "api.dialect {s:?} is not one of \"{}\", \"{}\"",
                    ApiDialect::Logos202605.as_str(),
                    ApiDialect::Logos202601.as_str()
                )
            })
    }
}

impl Serialize for ApiDialect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ApiDialect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The testing HTTP surface (`/test/network/dial_peer`, `/metrics`,
/// `/ledger/account/{pk}`, `/mempool/info`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestingApiSection {
    pub listen: SocketAddr,
}

/// The node's wallet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalletSection {
    /// 32-byte ed25519 secret seeds, hex.
    pub keys: Vec<String>,
}

impl WalletSection {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What every node of a testnet shares: time origin, accounts and stake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Start of slot 0, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// 32-byte epoch nonce, hex; mixed into every leader proof.
    pub epoch_nonce: String,
    /// Funded accounts.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Block producers and their stake.
    pub leaders: Vec<GenesisLeader>,
}

/// A funded account at genesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub public_key: PublicKeyHex,
    pub balance: u64,
}

/// A block producer at genesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisLeader {
    pub public_key: PublicKeyHex,
    pub stake: u64,
}

/// Consensus parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// Slot length in milliseconds (>= 100).
    pub slot_duration_ms: u64,
    /// Active-slot coefficient f in (0, 1]: the chance that some leader wins a slot.
    pub active_slot_coeff: f64,
    /// Security parameter k: the LIB is k blocks below the tip; no deeper reorg.
    pub security_param: u64,
}

/// Where the node keeps its chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    pub data_dir: PathBuf,
}

/// Size bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most transactions in one block.
    pub max_block_txs: usize,
    /// Most transactions waiting in the mempool.
    pub mempool_capacity: usize,
    /// Largest accepted p2p frame in bytes; a bigger one drops the connection.
    pub max_frame_bytes: usize,
    /// Most headers/blocks returned by one API call or sync batch.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_block_txs: 1024,
            mempool_capacity: 100_000,
            max_frame_bytes: 8 * 1024 * 1024,
            max_batch: 256,
        }
    }
}

/// Test-only faults. Off unless a config names them; they exist so the
/// framework's tests can prove that each expectation fails on a bad node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingFaults {
    /// Stop producing and accepting blocks at this height; the API still answers.
    pub halt_at_height: Option<u64>,
    /// Accept transactions in the API but never gossip or include them.
    pub drop_transactions: bool,
    /// Produce blocks whose leader proof does not verify.
    pub invalid_proofs: bool,
    /// Start with the node's clock this far off wall time (ms; negative: behind).
    pub clock_offset_ms: i64,
    /// Start with the node's clock gaining this many parts per million (negative: losing).
    pub clock_drift_ppm: i64,
    /// A planted bug, for proving the shrinker: a node restarted while it reaches no peer (a
    /// partition isolates it) exits, instead of going online alone, once it has waited for a
    /// peer as long as a restarted node does.
    pub crash_if_restarted_while_isolated: bool,
    /// Lies the node tells from the start (`POST /test/byzantine` changes them at run time).
    pub byzantine: ByzantineBehaviours,
    /// Turn off the defence against equivocation: a second block of one leader for one slot is
    /// forwarded and may win the tie-break like any other block (a misbehaving honest node, so
    /// that `expect_no_equivocation_accepted` can be shown failing).
    pub accept_equivocations: bool,
    /// Hold the last this many block writes back as not yet durable: a SIGKILL loses them
    /// (a clean stop flushes them).
    pub unflushed_blocks: usize,
    /// The disk fills up when a block of this height is to be written: from then on every
    /// write fails (ENOSPC) and the node stops following and producing.
    pub disk_full_at_height: Option<u64>,
}

/// Byzantine behaviours of the reference node (all off by default). Set at start under
/// `testing.byzantine`, or at run time through the testing surface (`POST /test/byzantine`,
/// the whole set at once: `{}` makes the node honest again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ByzantineBehaviours {
    /// Where the node leads a slot it produces two different blocks for it and sends each to
    /// half of its peers.
    pub equivocate: bool,
    /// Keep the node's own blocks from its peers this many ms, then release them (0: off).
    /// Its tip announcements and sync answers leave the withheld blocks out.
    pub withhold_ms: u64,
    /// Build the node's blocks on the canonical block this many below its tip (0: off).
    pub stale_parent_depth: u64,
    /// Gossip this many transactions with a bad signature every slot (0: off).
    pub invalid_txs_per_slot: u32,
}

/// Most a behaviour's parameter may be (beyond that it is a typo).
const MAX_WITHHOLD_MS: u64 = 3_600_000;
const MAX_STALE_DEPTH: u64 = 10_000;
const MAX_INVALID_TXS: u32 = 1_000;

impl ByzantineBehaviours {
    /// Whether every behaviour is off.
    pub fn is_honest(&self) -> bool {
        *self == Self::default()
    }

    /// The behaviours in force, as the timeline writes them: `equivocate, withhold 2000ms`,
    /// or `honest`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.equivocate {
            parts.push("equivocate".to_owned());
        }
        if self.withhold_ms > 0 {
            parts.push(format!("withhold {}ms", self.withhold_ms));
        }
        if self.stale_parent_depth > 0 {
            parts.push(format!("stale_parent depth {}", self.stale_parent_depth));
        }
        if self.invalid_txs_per_slot > 0 {
            parts.push(format!("invalid_txs {}/slot", self.invalid_txs_per_slot));
        }
        if parts.is_empty() {
            "honest".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Checks the parameters; the error names the field and value.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.withhold_ms > MAX_WITHHOLD_MS {
            return Err(format!(
                "{prefix}withhold_ms = {}: at most {MAX_WITHHOLD_MS} (an hour)",
                self.withhold_ms
            ));
        }
        if self.stale_parent_depth > MAX_STALE_DEPTH {
            return Err(format!(
                "{prefix}stale_parent_depth = {}: at most {MAX_STALE_DEPTH}",
                self.stale_parent_depth
            ));
        }
        if self.invalid_txs_per_slot > MAX_INVALID_TXS {
            return Err(format!(
                "{prefix}invalid_txs_per_slot = {}: at most {MAX_INVALID_TXS}",
                self.invalid_txs_per_slot
            ));
        }
        Ok(())
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Reads and validates a YAML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a YAML value tree (used by deployers that patch configs by path).
    pub fn from_yaml_value(value: serde_yaml::Value) -> Result<Self, ConfigError> {
        let config: Self = serde_yaml::from_value(value).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<rendered>"),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Renders the config as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("config serialises")
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.consensus;
        if c.slot_duration_ms < 100 {
            return Err(ConfigError::Invalid(format!(
                "consensus.slot_duration_ms = {} is below the minimum of 100",
                c.slot_duration_ms
            )));
        }
        if !(c.active_slot_coeff > 0.0 && c.active_slot_coeff <= 1.0) {
            return Err(ConfigError::Invalid(format!(
                "consensus.active_slot_coeff = {} must be in (0, 1]",
                c.active_slot_coeff
            )));
        }
        if c.security_param == 0 {
            return Err(ConfigError::Invalid(
                "consensus.security_param = 0 must be at least 1".into(),
            ));
        }
        if self.genesis.leaders.is_empty() {
            return Err(ConfigError::Invalid(
                "genesis.leaders is empty: no node could ever produce a block".into(),
            ));
        }
        crate::crypto::signing_key_from_hex(&self.node.key)
            .map_err(|e| ConfigError::Invalid(format!("node.key: {e}")))?;
        self.testing
            .byzantine
            .validate("testing.byzantine.")
            .map_err(ConfigError::Invalid)?;
        for (i, key) in self.wallet.keys.iter().enumerate() {
            crate::crypto::signing_key_from_hex(key)
                .map_err(|e| ConfigError::Invalid(format!("wallet.keys[{i}]: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
node: { index: 0, key: "0101010101010101010101010101010101010101010101010101010101010101" }
network: { listen: "127.0.0.1:3000", peers: ["127.0.0.1:3001"] }
api: { listen: "127.0.0.1:8080" }
genesis:
  time_ms: 0
  epoch_nonce: "0000000000000000000000000000000000000000000000000000000000000000"
  leaders: [{ public_key: "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c", stake: 1 }]
consensus: { slot_duration_ms: 200, active_slot_coeff: 0.5, security_param: 5 }
storage: { data_dir: "/tmp/x" }
"#;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::from_yaml_value(serde_yaml::from_str(text).unwrap())
    }

    #[test]
    fn valid_config_parses_with_default_limits_and_no_faults() {
        let config = parse(VALID).unwrap();
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.testing, TestingFaults::default());
        assert_eq!(config.api.dialect, ApiDialect::Logos202605);
        assert!(config.api.block_explorer);
        assert_eq!(config.testing_api, None);
        assert!(config.wallet.keys.is_empty());
    }

    #[test]
    fn dialect_testing_api_and_wallet_parse_and_round_trip() {
        let text = VALID.replace(
            "api: { listen: \"127.0.0.1:8080\" }",
            "api: { listen: \"127.0.0.1:8080\", dialect: \"logos-2026-01\", block_explorer: false }\n\
             testing_api: { listen: \"127.0.0.1:8081\" }\n\
             wallet: { keys: [\"0202020202020202020202020202020202020202020202020202020202020202\"] }",
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.api.dialect, ApiDialect::Logos202601);
        assert_eq!(config.api.dialect.as_str(), "logos-2026-01");
        assert!(!config.api.block_explorer);
        assert_eq!(
            config.testing_api.as_ref().unwrap().listen.to_string(),
            "127.0.0.1:8081"
        );
        assert_eq!(config.wallet.keys.len(), 1);
        let again = parse(&config.to_yaml()).unwrap();
        assert_eq!(again, config);

        let bad = parse(&VALID.replace(
            "api: { listen: \"127.0.0.1:8080\" }",
            "api: { listen: \"127.0.0.1:8080\", dialect: \"logos-2025\" }",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("logos-2025")
                && bad.contains("logos-2026-05")
                && bad.contains("logos-2026-01"),
            "{bad}"
        );
        let unknown = parse(&format!(
            "{VALID}testing_api: {{ listen: \"127.0.0.1:1\", x: 1 }}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(unknown.contains('x'), "{unknown}");
        let key = parse(&format!("{VALID}wallet: {{ keys: [\"zz\"] }}\n"))
            .unwrap_err()
            .to_string();
        assert!(key.contains("wallet.keys[0]"), "{key}");
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let top = parse(&format!("{VALID}bogus_section: 1\n")).unwrap_err();
        assert!(top.to_string().contains("bogus_section"), "{top}");
        let nested = parse(&VALID.replace("security_param: 5", "security_param: 5, slot_len: 3"))
            .unwrap_err();
        assert!(nested.to_string().contains("slot_len"), "{nested}");
        let fault = parse(&format!("{VALID}testing: {{ halt_at: 3 }}\n")).unwrap_err();
        assert!(fault.to_string().contains("halt_at"), "{fault}");
        let lie = parse(&format!(
            "{VALID}testing: {{ byzantine: {{ equivocat: true }} }}\n"
        ))
        .unwrap_err();
        assert!(lie.to_string().contains("equivocat"), "{lie}");
        let far = parse(&format!(
            "{VALID}testing: {{ byzantine: {{ withhold_ms: 99999999 }} }}\n"
        ))
        .unwrap_err();
        assert!(
            far.to_string()
                .contains("testing.byzantine.withhold_ms = 99999999"),
            "{far}"
        );
        let ok = parse(&format!(
            "{VALID}testing: {{ byzantine: {{ equivocate: true, withhold_ms: 500 }} }}\n"
        ))
        .unwrap();
        assert_eq!(
            ok.testing.byzantine.describe(),
            "equivocate, withhold 500ms"
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let slot =
            parse(&VALID.replace("slot_duration_ms: 200", "slot_duration_ms: 5")).unwrap_err();
        assert!(
            slot.to_string().contains("consensus.slot_duration_ms = 5"),
            "{slot}"
        );
        let f =
            parse(&VALID.replace("active_slot_coeff: 0.5", "active_slot_coeff: 1.5")).unwrap_err();
        assert!(f.to_string().contains("consensus.active_slot_coeff"), "{f}");
    }
}
