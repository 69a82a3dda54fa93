//! Node configs from a generator, the way the reference framework makes the real
//! node's configs with the node's own crates: nomos-script writes the testnet's
//! description as JSON and runs a command that writes the node's config files.
//!
//! ## The contract (version 1)
//! For each node, nomos-script writes `<config_dir>/testnet.json` and runs
//! `LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR` (a command line, split on spaces) with that
//! path appended as its last argument. The generator must write the files named in
//! `files` into `out_dir` (the first one is the node's main config; YAML, or JSON, which
//! is YAML too) and exit 0. It must be deterministic: every node's description carries
//! the whole testnet (all leaders' key seeds and stakes, all wallets), so the nodes agree
//! on genesis although each is generated on its own. On a non-zero exit, its command,
//! exit code and stderr are reported. Description:
//!
//! ```json
//! {
//!   "version": 1, "kind": "logos", "files": ["config.yaml", "deployment.yaml"],
//!   "out_dir": "/tmp/nomos-script-X/node-1",
//!   "testnet": {
//!     "seed": 7, "node_count": 3, "slot_duration_ms": 1000, "active_slot_coeff": 0.8,
//!     "security_param": 10, "api_dialect": "logos-2026-05",
//!     "chain_start_unix_ms": 1796110000000, "chain_start_unix": 1796110000,
//!     "chain_start_time": "2026-12-01 07:18:45.000000 +00:00:00",
//!     "epoch_nonce": "<64 hex>",
//!     "leaders": [{"index": 0, "key_seed": "<64 hex>", "public_key": "<ed25519, 64 hex>", "stake": 1}],
//!     "wallets": [{"index": 0, "key_seed": "..", "public_key": "..", "balance": 1000, "owner": 0}]
//!   },
//!   "node": {
//!     "index": 1, "name": "node-1", "key_seed": "<64 hex>", "stake": 1, "host": "127.0.0.1",
//!     "api": "127.0.0.1:41001", "testing": "127.0.0.1:41002" | null,
//!     "p2p": "127.0.0.1:41003", "blend": "127.0.0.1:41004" | null,
//!     "peers": ["/ip4/127.0.0.1/udp/45000/quic-v1"],
//!     "data_dir": "...", "log_dir": "...", "config_dir": "...",
//!     "wallet_keys": ["<key seeds of the wallets this node's wallet knows>"]
//!   }
//! }
//! ```
//! `leaders` lists every genesis leader: the staked nodes, then the staked joiner slots
//! reserved for nodes added at run time (index = node count + slot). Key seeds are 32
//! random-looking bytes from the run seed; a generator derives the kind's keys from them
//! (the reference node uses the seed as its ed25519 secret). Peers are spelled as the
//! node kind wants them and may be link-layer relays standing in for the real peers.
//!
//! The reference node's configs go through the same contract: its built-in generator
//! ([`reference_from_description`], also `nomos-script devnode gen-config FILE`) runs
//! in-process unless a generator command is set.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use devnode::config::{
    ApiDialect, ApiSection, ConsensusParams, Genesis, GenesisAccount, GenesisLeader, Limits,
    NetworkSection, NodeConfig, NodeSection, StorageSection, TestingApiSection, TestingFaults,
    WalletSection,
};
use devnode::crypto::public_hex;
use serde_json::{Value, json};

use super::{
    Dialect, KindCapabilities, NodeKind, NodeKindError, NodePlan, joiner_secret, leader_secret,
    signing_key, wallet_key, wallet_owner,
};
use crate::topology::Topology;

/// The description's file name, in the node's config dir.
pub const DESCRIPTION_FILE: &str = "testnet.json";
/// How long a generator may run for one node.
pub const GENERATOR_TIMEOUT: Duration = Duration::from_secs(120);

/// `YYYY-MM-DD HH:MM:SS.ffffff +00:00:00`, as the real node's config writes dates.
pub fn node_date(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06} +00:00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        (unix_ms % 1000) * 1000
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn addr(a: Option<SocketAddr>) -> Value {
    a.map_or(Value::Null, |a| Value::String(a.to_string()))
}

/// The description of node `plan.index` of `topology` for a generator of `kind`.
pub fn describe(kind: &str, files: &[&str], topology: &Topology, plan: &NodePlan) -> Value {
    let seed = topology.seed;
    let n = topology.node_count();
    let mut leaders: Vec<Value> = topology
        .nodes
        .iter()
        .filter(|s| s.stake > 0)
        .map(|s| {
            let k = leader_secret(seed, s.index);
            json!({"index": s.index, "public_key": public_hex(&signing_key(&k)), "key_seed": k, "stake": s.stake})
        })
        .collect();
    for (j, &stake) in topology.reserved_joiners.iter().enumerate() {
        let k = joiner_secret(seed, j);
        leaders.push(json!({"index": n + j, "public_key": public_hex(&signing_key(&k)), "key_seed": k, "stake": stake}));
    }
    let wallets: Vec<Value> = (0..topology.wallets)
        .map(|w| {
            let key = wallet_key(seed, w);
            json!({
                "index": w,
                "key_seed": hex::encode(key.to_bytes()),
                "public_key": public_hex(&key),
                "balance": topology.wallet_balance,
                "owner": wallet_owner(topology, w),
            })
        })
        .collect();
    let start_ms = plan.genesis.time_ms;
    // a node added at run time is a staked joiner when its key is a reserved leader's
    let stake = leaders
        .iter()
        .find(|l| l["key_seed"] == plan.key_hex.as_str())
        .and_then(|l| l["stake"].as_u64())
        .unwrap_or(0);
    json!({
        "version": 1,
        "kind": kind,
        "files": files,
        "out_dir": plan.config_dir,
        "testnet": {
            "seed": seed,
            "node_count": n,
            "slot_duration_ms": topology.params.slot_duration.as_millis() as u64,
            "active_slot_coeff": topology.params.active_slot_coeff,
            "security_param": topology.params.security_param,
            "api_dialect": topology.api_dialect.unwrap_or(Dialect::Logos202605),
            "chain_start_unix_ms": start_ms,
            "chain_start_unix": start_ms / 1000,
            "chain_start_time": node_date(start_ms),
            "epoch_nonce": plan.genesis.epoch_nonce,
            "leaders": leaders,
            "wallets": wallets,
        },
        "node": {
            "index": plan.index,
            "name": Topology::node_name(plan.index),
            "key_seed": plan.key_hex,
            "public_key": public_hex(&signing_key(&plan.key_hex)),
            "stake": stake,
            "host": plan.p2p_addr.ip().to_string(),
            "api": plan.api_addr.to_string(),
            "testing": addr(plan.testing_addr),
            "p2p": plan.p2p_addr.to_string(),
            "blend": addr(plan.blend_addr),
            "peers": plan.peers,
            "data_dir": plan.data_dir,
            "log_dir": plan.log_dir,
            "config_dir": plan.config_dir,
            "wallet_keys": super::wallet_secrets(topology, plan.index),
        },
    })
}

fn get<'a>(v: &'a Value, path: &str) -> Result<&'a Value, String> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .ok_or_else(|| format!("the description has no `{path}`"))
}

fn get_str(v: &Value, path: &str) -> Result<String, String> {
    get(v, path)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{path}` is not a string"))
}

fn get_u64(v: &Value, path: &str) -> Result<u64, String> {
    get(v, path)?
        .as_u64()
        .ok_or_else(|| format!("`{path}` is not an integer"))
}

fn get_addr(v: &Value, path: &str) -> Result<Option<SocketAddr>, String> {
    match get(v, path)? {
        Value::Null => Ok(None),
        Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|e| format!("`{path}` = {s:?}: {e}")),
        other => Err(format!("`{path}` = {other}: not an address")),
    }
}

/// The reference node's built-in generator: its config from a description.
pub fn reference_from_description(d: &Value) -> Result<NodeConfig, String> {
    let version = get_u64(d, "version")?;
    if version != 1 {
        return Err(format!(
            "description version {version}: this generator knows version 1"
        ));
    }
    let t = get(d, "testnet")?;
    let node = get(d, "node")?;
    let list = |path: &str| -> Result<Vec<Value>, String> {
        get(t, path)?
            .as_array()
            .cloned()
            .ok_or_else(|| format!("`testnet.{path}` is not a list"))
    };
    let dialect = match get_str(t, "api_dialect")?.parse::<Dialect>()? {
        Dialect::Logos202601 => ApiDialect::Logos202601,
        Dialect::Logos202605 => ApiDialect::Logos202605,
    };
    let api = get_addr(node, "api")?.ok_or("`node.api` is null")?;
    Ok(NodeConfig {
        node: NodeSection {
            index: get_u64(node, "index")? as usize,
            key: get_str(node, "key_seed")?,
        },
        network: NetworkSection {
            listen: get_addr(node, "p2p")?.ok_or("`node.p2p` is null")?,
            advertise: None,
            peers: get(node, "peers")?
                .as_array()
                .ok_or("`node.peers` is not a list")?
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_owned)
                        .ok_or("a peer is not a string")
                })
                .collect::<Result<_, _>>()?,
        },
        api: ApiSection {
            dialect,
            ..ApiSection::new(api)
        },
        testing_api: get_addr(node, "testing")?.map(|listen| TestingApiSection { listen }),
        wallet: WalletSection {
            keys: get(node, "wallet_keys")?
                .as_array()
                .ok_or("`node.wallet_keys` is not a list")?
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
        },
        genesis: Genesis {
            time_ms: get_u64(t, "chain_start_unix_ms")?,
            epoch_nonce: get_str(t, "epoch_nonce")?,
            accounts: list("wallets")?
                .iter()
                .map(|w| {
                    Ok(GenesisAccount {
                        public_key: get_str(w, "public_key")?,
                        balance: get_u64(w, "balance")?,
                    })
                })
                .collect::<Result<_, String>>()?,
            leaders: list("leaders")?
                .iter()
                .map(|l| {
                    Ok(GenesisLeader {
                        public_key: get_str(l, "public_key")?,
                        stake: get_u64(l, "stake")?,
                    })
                })
                .collect::<Result<_, String>>()?,
        },
        consensus: ConsensusParams {
            slot_duration_ms: get_u64(t, "slot_duration_ms")?,
            active_slot_coeff: get(t, "active_slot_coeff")?
                .as_f64()
                .ok_or("`testnet.active_slot_coeff` is not a number")?,
            security_param: get_u64(t, "security_param")?,
        },
        storage: StorageSection {
            data_dir: PathBuf::from(get_str(node, "data_dir")?),
        },
        limits: Limits::default(),
        testing: TestingFaults::default(),
    })
}

/// `nomos-script devnode gen-config FILE`: the reference node's built-in generator as a
/// command. Writes the first of `files` (default `config.yaml`) into `out_dir`; returns its path.
pub fn gen_config_main(description: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(description)
        .map_err(|e| format!("cannot read {}: {e}", description.display()))?;
    let d: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not JSON: {e}", description.display()))?;
    let config =
        reference_from_description(&d).map_err(|e| format!("{}: {e}", description.display()))?;
    let out = PathBuf::from(get_str(&d, "out_dir")?);
    let file = get(&d, "files")
        .ok()
        .and_then(|f| f.get(0))
        .and_then(Value::as_str)
        .unwrap_or("config.yaml")
        .to_owned();
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let path = out.join(file);
    std::fs::write(&path, config.to_yaml())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// A config generator command.
#[derive(Debug, Clone)]
pub struct Generator {
    /// Program and its first arguments; the description's path is appended.
    pub command: Vec<String>,
}

impl Generator {
    /// `LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR`, split on whitespace.
    pub fn from_env() -> Option<Self> {
        let cmd = std::env::var("LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR").ok()?;
        let command: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
        (!command.is_empty()).then_some(Self { command })
    }

    /// A generator running this command line.
    pub fn new(command: Vec<String>) -> Self {
        Self { command }
    }

    /// Writes `description` to `<out_dir>/testnet.json`, runs the generator on it and
    /// checks that it wrote `files`; returns the main file's text.
    pub fn generate(
        &self,
        description: &Value,
        out_dir: &Path,
        files: &[&str],
    ) -> Result<String, NodeKindError> {
        let fail = NodeKindError::Generator;
        std::fs::create_dir_all(out_dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", out_dir.display())))?;
        let path = out_dir.join(DESCRIPTION_FILE);
        let text = serde_json::to_string_pretty(description).expect("descriptions serialise");
        std::fs::write(&path, text)
            .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
        let shown = format!("{} {}", self.command.join(" "), path.display());
        let mut child = std::process::Command::new(&self.command[0])
            .args(&self.command[1..])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "config generator `{shown}` could not start: {e} (LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR names a command and its arguments)"
                ))
            })?;
        // read stderr on a thread so a chatty generator never blocks on a full pipe
        let mut stderr = child.stderr.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if started.elapsed() > GENERATOR_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "config generator `{shown}` did not finish within {}s; killed",
                        GENERATOR_TIMEOUT.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(fail(format!("config generator `{shown}`: {e}"))),
            }
        };
        let stderr = err_reader.join().unwrap_or_default();
        let _ = out_reader.join();
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}"));
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(fail(format!(
                "config generator `{shown}` failed with {code}; stderr: {}",
                if tail.is_empty() {
                    "(empty)".to_owned()
                } else {
                    tail.join("\n")
                }
            )));
        }
        for f in files {
            if !out_dir.join(f).is_file() {
                return Err(fail(format!(
                    "config generator `{shown}` exited 0 but did not write {} (the description's `files`)",
                    out_dir.join(f).display()
                )));
            }
        }
        let main = out_dir.join(files[0]);
        std::fs::read_to_string(&main)
            .map_err(|e| fail(format!("cannot read {}: {e}", main.display())))
    }
}

/// Another kind whose configs come from an external generator (the reference node with
/// `LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR` set): everything but the config is the inner
/// kind's.
#[derive(Debug, Clone)]
pub struct GeneratedNode {
    pub inner: Arc<dyn NodeKind>,
    pub generator: Generator,
}

impl GeneratedNode {
    /// `inner` with its configs from `generator`.
    pub fn new(inner: Arc<dyn NodeKind>, generator: Generator) -> Self {
        Self { inner, generator }
    }
}

impl NodeKind for GeneratedNode {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn capabilities(&self) -> KindCapabilities {
        self.inner.capabilities()
    }
    fn dialect(&self, topology: &Topology) -> Option<Dialect> {
        self.inner.dialect(topology)
    }
    fn testing_surface(&self) -> bool {
        self.inner.testing_surface()
    }
    fn start_skew(&self, offset_ms: i64) -> Result<super::StartSkew, NodeKindError> {
        self.inner.start_skew(offset_ms)
    }
    fn blend_port(&self) -> bool {
        self.inner.blend_port()
    }
    fn ready_when_online(&self) -> bool {
        self.inner.ready_when_online()
    }
    fn peer_address(&self, addr: SocketAddr) -> String {
        self.inner.peer_address(addr)
    }
    fn env(&self) -> Vec<(String, String)> {
        self.inner.env()
    }
    fn mounts(&self) -> Vec<(PathBuf, String)> {
        self.inner.mounts()
    }
    fn command(&self, config: &Path) -> Result<(PathBuf, Vec<String>), NodeKindError> {
        self.inner.command(config)
    }
    fn render_config(&self, topology: &Topology, plan: &NodePlan) -> Result<String, NodeKindError> {
        let files = ["config.yaml"];
        let d = describe(&self.inner.name(), &files, topology, plan);
        let text = self.generator.generate(&d, &plan.config_dir, &files)?;
        super::overrides_on_generated(&text, topology, plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::TopologyBuilder;

    #[test]
    fn dates_are_written_as_the_real_node_reads_them() {
        assert_eq!(node_date(0), "1970-01-01 00:00:00.000000 +00:00:00");
        assert_eq!(
            node_date(1_796_109_525_250),
            "2026-12-01 07:18:45.250000 +00:00:00"
        );
    }

    #[test]
    fn the_built_in_generator_makes_exactly_the_reference_config() {
        let topo = TopologyBuilder::new()
            .nodes(3)
            .wallets(5)
            .seed(11)
            .api_dialect(Dialect::Logos202601)
            .build()
            .unwrap();
        let genesis = super::super::genesis_for(&topo, 1_796_109_525_000);
        for i in 0..3 {
            let plan = NodePlan {
                index: i,
                key_hex: leader_secret(topo.seed, i),
                api_addr: SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16)),
                testing_addr: (i != 1).then(|| SocketAddr::from(([127, 0, 0, 1], 2000 + i as u16))),
                p2p_addr: SocketAddr::from(([127, 0, 0, 1], 3000 + i as u16)),
                blend_addr: None,
                peers: vec!["127.0.0.1:9".into()],
                data_dir: PathBuf::from(format!("/d/{i}")),
                log_dir: PathBuf::from(format!("/l/{i}")),
                config_dir: PathBuf::from(format!("/c/{i}")),
                genesis: genesis.clone(),
                overrides: Vec::new(),
            };
            let d = describe("reference", &["config.yaml"], &topo, &plan);
            let via_contract = reference_from_description(&d).unwrap();
            assert_eq!(
                via_contract,
                super::super::reference_config(&topo, &plan),
                "node {i}"
            );
        }
    }
}
