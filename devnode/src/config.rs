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
