//! Test harness: real `nomos-devnode` processes on loopback, each testnet in
//! a fresh temp dir, children killed when the harness is dropped.

#![allow(dead_code)]

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use devnode::config::{
    ApiDialect, ApiSection, ConsensusParams, Genesis, GenesisAccount, GenesisLeader, Limits,
    NetworkSection, NodeConfig, NodeSection, StorageSection, TestingApiSection, TestingFaults,
    WalletSection,
};
use devnode::crypto::{SignedTx, derive_secret, public_hex};
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use serde_json::Value;

/// `/cryptarchia/info` of either dialect, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub lib: String,
    pub tip: String,
    pub slot: u64,
    pub height: u64,
    /// `"Online"`, `"Bootstrapping"` or `"AwaitingStart"`.
    pub mode: String,
}

impl Info {
    /// Reads either dialect's answer.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let (flat, mode) = match v.get("cryptarchia_info") {
            Some(inner) => {
                let mode = match &v["mode"] {
                    Value::String(s) => s.clone(),
                    Value::Object(m) => m
                        .get("Started")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("mode {v}"))?
                        .to_owned(),
                    other => return Err(format!("mode {other}")),
                };
                (inner, mode)
            }
            None => (
                v,
                v["mode"]
                    .as_str()
                    .ok_or_else(|| format!("mode in {v}"))?
                    .to_owned(),
            ),
        };
        let s = |k: &str| {
            flat[k]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{k} in {v}"))
        };
        let n = |k: &str| flat[k].as_u64().ok_or_else(|| format!("{k} in {v}"));
        Ok(Self {
            lib: s("lib")?,
            tip: s("tip")?,
            slot: n("slot")?,
            height: n("height")?,
            mode,
        })
    }
}

/// `/network/info` (both dialects; `connected_peers` only in logos-2026-05).
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkInfo {
    pub listen_addresses: Vec<String>,
    pub peer_id: String,
    pub n_peers: usize,
    pub n_connections: usize,
    pub n_pending_connections: usize,
    #[serde(default)]
    pub connected_peers: Option<Vec<String>>,
}

/// `/ledger/account/{pk}` on the testing surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub balance: u64,
    pub nonce: u64,
}

/// One block line of a node's block stream (either dialect).
#[derive(Debug, Clone)]
pub struct Streamed {
    pub id: String,
    pub parent: String,
    pub slot: u64,
    /// `mantle_tx.hash` of each transaction.
    pub tx_hashes: Vec<String>,
    /// Test-side wall clock when the line arrived.
    pub received_ms: u64,
    /// The whole line.
    pub line: Value,
}

impl Streamed {
    fn from_line(line: Value) -> Self {
        let block = line.get("block").unwrap_or(&line).clone();
        let h = &block["header"];
        Self {
            id: h["id"].as_str().expect("header.id").to_owned(),
            parent: h["parent_block"].as_str().expect("parent_block").to_owned(),
            slot: h["slot"].as_u64().expect("slot"),
            tx_hashes: tx_hashes(&block),
            received_ms: now_ms(),
            line,
        }
    }
}

/// `mantle_tx.hash` of every transaction of an ApiBlock.
pub fn tx_hashes(block: &Value) -> Vec<String> {
    block["transactions"]
        .as_array()
        .expect("transactions array")
        .iter()
        .map(|t| t["mantle_tx"]["hash"].as_str().expect("hash").to_owned())
        .collect()
}

/// The transfers of a block of either shape (ApiBlock or RawBlock).
pub fn block_txs(block: &Value) -> Vec<SignedTx> {
    block["transactions"]
        .as_array()
        .expect("transactions array")
        .iter()
        .map(|t| SignedTx::from_mantle(t).expect("a transfer"))
        .collect()
}

/// Sorted keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// A sample answer of the real node (`/work/shared/real-node/samples/`),
/// if present on this machine.
pub fn sample(name: &str) -> Option<Value> {
    let dir = std::env::var("REAL_NODE_SAMPLES")
        .unwrap_or_else(|_| "/work/shared/real-node/samples".into());
    let text = std::fs::read_to_string(PathBuf::from(dir).join(name)).ok()?;
    let first = text.lines().next()?;
    serde_json::from_str(first).ok()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A deterministic key.
pub fn key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&derive_secret(label))
}

/// How to build a testnet.
pub struct NetSpec {
    pub name: &'static str,
    pub nodes: usize,
    /// Undirected links; each is dialled by its first node.
    pub links: Vec<(usize, usize)>,
    /// Stake per node; `None` makes a non-producing follower.
    pub stake: Vec<Option<u64>>,
    pub faults: Vec<TestingFaults>,
    pub slot_ms: u64,
    pub f: f64,
    pub k: u64,
    /// Funded wallets (labels) with balances.
    pub wallets: Vec<(String, u64)>,
    /// LOGOS_BLOCKCHAIN_LOG_LEVEL of the nodes.
    pub log_level: &'static str,
    /// API dialect of every node.
    pub dialect: ApiDialect,
    /// `api.block_explorer` per node (logos-2026-01).
    pub block_explorer: Vec<bool>,
    /// Whether each node serves the testing surface.
    pub testing_api: Vec<bool>,
    /// Wallet key labels per node (`wallet.keys`).
    pub wallet_keys: Vec<Vec<String>>,
}

impl NetSpec {
    pub fn new(name: &'static str, nodes: usize) -> Self {
        Self {
            name,
            nodes,
            links: (1..nodes).map(|i| (i - 1, i)).collect(),
            stake: vec![Some(1); nodes],
            faults: vec![TestingFaults::default(); nodes],
            slot_ms: 100,
            f: 0.5,
            k: 5,
            wallets: vec![],
            log_level: "debug",
            dialect: ApiDialect::default(),
            block_explorer: vec![true; nodes],
            testing_api: vec![true; nodes],
            wallet_keys: vec![vec![]; nodes],
        }
    }

    pub fn dialect(mut self, dialect: ApiDialect) -> Self {
        self.dialect = dialect;
        self
    }

    pub fn full_mesh(mut self) -> Self {
        self.links = (0..self.nodes)
            .flat_map(|a| {
                (0..self.nodes)
                    .filter(move |&b| b != a)
                    .map(move |b| (a, b))
            })
            .collect();
        self
    }
}

pub struct TestNode {
    pub config: NodeConfig,
    pub config_path: PathBuf,
    pub api: String,
    /// Base URL of the testing surface (its port is reserved even when the
    /// node does not serve it).
    pub testing: String,
    pub child: Option<Child>,
}

/// A running testnet; dropping it kills every node.
pub struct Testnet {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<TestNode>,
    pub http: reqwest::Client,
    log_level: &'static str,
    pub dialect: ApiDialect,
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Testnet {
    /// Writes configs and starts every node.
    pub fn start(spec: NetSpec) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("devnode-{}-", spec.name))
            .tempdir()
            .unwrap();
        let ports = free_ports(3 * spec.nodes);
        let keys: Vec<SigningKey> = (0..spec.nodes)
            .map(|i| key(&format!("{}/node/{i}", spec.name)))
            .collect();
        let genesis = Genesis {
            time_ms: now_ms() + 300,
            epoch_nonce: hex::encode(derive_secret(spec.name)),
            accounts: spec
                .wallets
                .iter()
                .map(|(label, balance)| GenesisAccount {
                    public_key: public_hex(&key(label)),
                    balance: *balance,
                })
                .collect(),
            leaders: (0..spec.nodes)
                .filter_map(|i| {
                    spec.stake[i].map(|stake| GenesisLeader {
                        public_key: public_hex(&keys[i]),
                        stake,
                    })
                })
                .collect(),
        };
        let mut nodes = Vec::new();
        for i in 0..spec.nodes {
            let peers = spec
                .links
                .iter()
                .filter(|(a, _)| *a == i)
                .map(|(_, b)| format!("127.0.0.1:{}", ports[3 * b]))
                .collect();
            let config = NodeConfig {
                node: NodeSection {
                    index: i,
                    key: hex::encode(keys[i].to_bytes()),
                },
                network: NetworkSection {
                    listen: format!("127.0.0.1:{}", ports[3 * i]).parse().unwrap(),
                    advertise: None,
                    peers,
                },
                api: ApiSection {
                    listen: format!("127.0.0.1:{}", ports[3 * i + 1]).parse().unwrap(),
                    dialect: spec.dialect,
                    block_explorer: spec.block_explorer[i],
                },
                genesis: genesis.clone(),
                consensus: ConsensusParams {
                    slot_duration_ms: spec.slot_ms,
                    active_slot_coeff: spec.f,
                    security_param: spec.k,
                },
                storage: StorageSection {
                    data_dir: dir.path().join(format!("node-{i}")),
                },
                limits: Limits::default(),
                testing: spec.faults[i].clone(),
                testing_api: spec.testing_api[i].then(|| TestingApiSection {
                    listen: format!("127.0.0.1:{}", ports[3 * i + 2]).parse().unwrap(),
                }),
                wallet: WalletSection {
                    keys: spec.wallet_keys[i]
                        .iter()
                        .map(|label| hex::encode(key(label).to_bytes()))
                        .collect(),
                },
            };
            let config_path = dir.path().join(format!("node-{i}.yaml"));
            std::fs::write(&config_path, config.to_yaml()).unwrap();
            nodes.push(TestNode {
                api: format!("http://127.0.0.1:{}", ports[3 * i + 1]),
                testing: format!("http://127.0.0.1:{}", ports[3 * i + 2]),
                config,
                config_path,
                child: None,
            });
        }
        let mut net = Self {
            dir,
            nodes,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            log_level: spec.log_level,
            dialect: spec.dialect,
        };
        for i in 0..spec.nodes {
            net.spawn(i);
        }
        net
    }

    /// Starts (or restarts) node `i` with its config.
    pub fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::File::create(self.dir.path().join(format!("node-{i}.stderr"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_nomos-devnode"))
            .args(["devnode", "--config"])
            .arg(&node.config_path)
            .env("LOGOS_BLOCKCHAIN_LOG_DIR", self.dir.path().join("logs"))
            .env("LOGOS_BLOCKCHAIN_LOG_LEVEL", self.log_level)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nomos-devnode");
        node.child = Some(child);
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// VmRSS of node `i` in KiB.
    pub fn rss_kib(&self, i: usize) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(i))).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i].child.as_ref().expect("node running").id()
    }

    pub fn p2p_addr(&self, i: usize) -> String {
        self.nodes[i].config.network.listen.to_string()
    }

    pub fn log_tail(&self, i: usize) -> String {
        let path = self
            .dir
            .path()
            .join("logs")
            .join(format!("logos-blockchain-node-{i}.log"));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// GETs `url`; returns the status and the body text.
    pub async fn get_url(&self, url: &str) -> Result<(u16, String), String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        Ok((status, text))
    }

    /// GETs a public API path; returns the status and the body text.
    pub async fn get_raw(&self, i: usize, path: &str) -> (u16, String) {
        self.get_url(&format!("{}{path}", self.nodes[i].api))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// GETs a public API path and decodes a 2xx JSON answer.
    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        i: usize,
        path: &str,
    ) -> Result<T, String> {
        let url = format!("{}{path}", self.nodes[i].api);
        Self::decode(&url, self.get_url(&url).await?)
    }

    /// GETs a testing-surface path and decodes a 2xx JSON answer.
    pub async fn get_testing<T: serde::de::DeserializeOwned>(
        &self,
        i: usize,
        path: &str,
    ) -> Result<T, String> {
        let url = format!("{}{path}", self.nodes[i].testing);
        Self::decode(&url, self.get_url(&url).await?)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        url: &str,
        (status, text): (u16, String),
    ) -> Result<T, String> {
        if !(200..300).contains(&status) {
            return Err(format!("GET {url}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}: {text}"))
    }

    /// POSTs a raw JSON body to `base + path`; returns the status and the body text.
    pub async fn post_url(&self, url: &str, body: String) -> (u16, String) {
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// POSTs a raw body to the public API; returns the status and the body text.
    pub async fn post_raw(&self, i: usize, path: &str, body: String) -> (u16, String) {
        self.post_url(&format!("{}{path}", self.nodes[i].api), body)
            .await
    }

    /// POSTs a raw body to the testing surface.
    pub async fn post_testing(&self, i: usize, path: &str, body: String) -> (u16, String) {
        self.post_url(&format!("{}{path}", self.nodes[i].testing), body)
            .await
    }

    pub async fn info(&self, i: usize) -> Result<Info, String> {
        let v: Value = self.get(i, "/cryptarchia/info").await?;
        Info::from_value(&v)
    }

    pub async fn network(&self, i: usize) -> Result<NetworkInfo, String> {
        self.get(i, "/network/info").await
    }

    /// Balance and nonce at the tip (testing surface).
    pub async fn account(&self, i: usize, key: &str) -> Result<Account, String> {
        self.get_testing(i, &format!("/ledger/account/{key}")).await
    }

    /// The block `id` as node `i` serves it: an ApiBlock
    /// (`GET /cryptarchia/blocks/{id}`, logos-2026-05) or a RawBlock
    /// (`POST /storage/block`, logos-2026-01); `None` for an unknown id.
    pub async fn block(&self, i: usize, id: &str) -> Option<Value> {
        match self.dialect {
            ApiDialect::Logos202605 => {
                let (status, text) = self.get_raw(i, &format!("/cryptarchia/blocks/{id}")).await;
                match status {
                    200 => Some(serde_json::from_str(&text).unwrap()),
                    404 => {
                        assert_eq!(text, "", "404 has an empty body");
                        None
                    }
                    _ => panic!("GET /cryptarchia/blocks/{id} on node {i}: {status} {text}"),
                }
            }
            ApiDialect::Logos202601 => {
                let (status, text) = self
                    .post_raw(i, "/storage/block", serde_json::to_string(id).unwrap())
                    .await;
                assert_eq!(status, 200, "POST /storage/block on node {i}: {text}");
                let v: Value = serde_json::from_str(&text).unwrap();
                (!v.is_null()).then_some(v)
            }
        }
    }

    /// Submits a client-signed transfer as a SignedMantleTx; `Err((status,
    /// plain text))` when refused.
    pub async fn submit(&self, i: usize, tx: &SignedTx) -> Result<(), (u16, String)> {
        let body = tx.to_mantle(self.dialect).to_string();
        let (status, text) = self.post_raw(i, "/mempool/add/tx", body).await;
        if status == 200 {
            assert_eq!(text, "null", "an accepted tx answers null");
            Ok(())
        } else {
            Err((status, text))
        }
    }

    /// `POST /wallet/transactions/transfer-funds`: the node signs; returns
    /// the status and the body.
    pub async fn transfer_funds(
        &self,
        i: usize,
        funding: &[String],
        to: &str,
        amount: u64,
    ) -> (u16, String) {
        let body = serde_json::json!({
            "tip": null,
            "change_public_key": funding.first().cloned().unwrap_or_default(),
            "funding_public_keys": funding,
            "recipient_public_key": to,
            "amount": amount,
        });
        self.post_raw(i, "/wallet/transactions/transfer-funds", body.to_string())
            .await
    }

    /// Asks node `i` to dial `addr` (testing surface).
    pub async fn dial(&self, i: usize, addr: &str) -> (u16, String) {
        self.post_testing(
            i,
            "/test/network/dial_peer",
            serde_json::json!({ "addr": addr }).to_string(),
        )
        .await
    }

    pub async fn metric(&self, i: usize, name: &str) -> u64 {
        let url = format!("{}/metrics", self.nodes[i].testing);
        let (_, text) = self.get_url(&url).await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("metric {name} missing from node {i}:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Canonical ids of node `i` by height (index h is the block at height
    /// h; needs a chain shorter than 512 blocks).
    pub async fn canonical(&self, i: usize) -> Result<Vec<String>, String> {
        let genesis = devnode::consensus::block::Rules::from_config(&self.nodes[i].config)
            .unwrap()
            .genesis_id;
        let mut ids: Vec<String> = self
            .get(i, &format!("/cryptarchia/headers?to={genesis}"))
            .await?;
        ids.reverse();
        Ok(ids)
    }

    /// Subscribes to an NDJSON stream of node `i`; lines accumulate in the
    /// returned vector.
    pub async fn ndjson(&self, i: usize, path: &str) -> Arc<Mutex<Vec<Value>>> {
        self.ndjson_map(i, path, |v| v).await
    }

    /// As [`Testnet::ndjson`], each line mapped by `map` as it arrives.
    pub async fn ndjson_map<T: Send + 'static>(
        &self,
        i: usize,
        path: &str,
        map: fn(Value) -> T,
    ) -> Arc<Mutex<Vec<T>>> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let url = format!("{}{path}", self.nodes[i].api);
        let mut resp = reqwest::Client::new()
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        assert_eq!(
            resp.headers()["content-type"],
            "application/x-ndjson",
            "GET {url}"
        );
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let v: Value = serde_json::from_slice(&line).expect("ndjson line");
                    sink.lock().unwrap().push(map(v));
                }
            }
        });
        lines
    }

    /// Subscribes to node `i`'s block stream of its dialect
    /// (`/cryptarchia/events/blocks/stream` or `/cryptarchia/blocks/stream`).
    pub async fn stream(&self, i: usize) -> Arc<Mutex<Vec<Streamed>>> {
        let path = match self.dialect {
            ApiDialect::Logos202605 => "/cryptarchia/events/blocks/stream",
            ApiDialect::Logos202601 => "/cryptarchia/blocks/stream",
        };
        self.ndjson_map(i, path, Streamed::from_line).await
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking() || std::env::var_os("DEVNODE_TEST_KEEP").is_some() {
            // Keep the logs of a failed test (or on request).
            let path = self.dir.path().to_owned();
            eprintln!("logs kept in {}", path.display());
            std::mem::forget(std::mem::replace(
                &mut self.dir,
                tempfile::tempdir().unwrap(),
            ));
        }
    }
}

/// Polls `check` until it returns `Ok`, or panics after `timeout` naming
/// what was awaited and the last state seen.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(state) => {
                if start.elapsed() > timeout {
                    panic!("timed out after {timeout:?} waiting for {what}; last state: {state}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every node listed reaches `height`.
pub async fn wait_heights(net: &Testnet, nodes: &[usize], height: u64, timeout: Duration) {
    wait_for(
        timeout,
        &format!("nodes {nodes:?} to reach height {height}"),
        || async {
            let mut heights = Vec::new();
            for &i in nodes {
                heights.push(net.info(i).await.map(|c| c.height).unwrap_or(0));
            }
            if heights.iter().all(|&h| h >= height) {
                Ok(())
            } else {
                Err(format!("heights {heights:?}"))
            }
        },
    )
    .await
}
