//! Test harness: real `nomos-devnode` processes on loopback, each testnet in
//! a fresh temp dir, children killed when the harness is dropped.

#![allow(dead_code)]

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use devnode::api_types::{
    AccountInfo, AddTxResponse, ApiError, Block, BlockStreamEvent, ConsensusInfo, NetworkInfo,
};
use devnode::config::{
    ApiSection, ConsensusParams, Genesis, GenesisAccount, GenesisLeader, Limits, NetworkSection,
    NodeConfig, NodeSection, StorageSection, TestingFaults,
};
use devnode::crypto::{SignedTx, derive_secret, public_hex};
use ed25519_dalek::SigningKey;

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
        }
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
    pub child: Option<Child>,
}

/// A running testnet; dropping it kills every node.
pub struct Testnet {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<TestNode>,
    pub http: reqwest::Client,
    log_level: &'static str,
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
        let ports = free_ports(2 * spec.nodes);
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
                .map(|(_, b)| format!("127.0.0.1:{}", ports[2 * b]))
                .collect();
            let config = NodeConfig {
                node: NodeSection {
                    index: i,
                    key: hex::encode(keys[i].to_bytes()),
                },
                network: NetworkSection {
                    listen: format!("127.0.0.1:{}", ports[2 * i]).parse().unwrap(),
                    advertise: None,
                    peers,
                },
                api: ApiSection {
                    listen: format!("127.0.0.1:{}", ports[2 * i + 1]).parse().unwrap(),
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
            };
            let config_path = dir.path().join(format!("node-{i}.yaml"));
            std::fs::write(&config_path, config.to_yaml()).unwrap();
            nodes.push(TestNode {
                api: format!("http://127.0.0.1:{}", ports[2 * i + 1]),
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

    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        i: usize,
        path: &str,
    ) -> Result<T, String> {
        let url = format!("{}{path}", self.nodes[i].api);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}: {text}"))
    }

    /// POSTs a raw body; returns the status and the body text.
    pub async fn post_raw(&self, i: usize, path: &str, body: String) -> (u16, String) {
        let url = format!("{}{path}", self.nodes[i].api);
        let resp = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub async fn info(&self, i: usize) -> Result<ConsensusInfo, String> {
        self.get(i, "/cryptarchia/info").await
    }

    pub async fn network(&self, i: usize) -> Result<NetworkInfo, String> {
        self.get(i, "/network/info").await
    }

    pub async fn account(&self, i: usize, key: &str) -> Result<AccountInfo, String> {
        self.get(i, &format!("/ledger/account/{key}")).await
    }

    pub async fn block(&self, i: usize, id: &str) -> Option<Block> {
        let (status, text) = self
            .post_raw(i, "/storage/block", serde_json::to_string(id).unwrap())
            .await;
        assert_eq!(status, 200, "POST /storage/block on node {i}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn submit(&self, i: usize, tx: &SignedTx) -> Result<AddTxResponse, (u16, ApiError)> {
        let (status, text) = self
            .post_raw(i, "/mempool/add/tx", serde_json::to_string(tx).unwrap())
            .await;
        if status == 200 {
            Ok(serde_json::from_str(&text).unwrap())
        } else {
            Err((status, serde_json::from_str(&text).unwrap()))
        }
    }

    pub async fn metric(&self, i: usize, name: &str) -> u64 {
        let url = format!("{}/metrics", self.nodes[i].api);
        let text = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("metric {name} missing from node {i}:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Canonical ids of node `i` by height (index h is the block at height
    /// h; needs a chain shorter than `limits.max_batch`).
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

    /// Subscribes to node `i`'s block stream; events accumulate in the
    /// returned vector.
    pub async fn stream(&self, i: usize) -> Arc<Mutex<Vec<BlockStreamEvent>>> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let url = format!("{}/cryptarchia/blocks/stream", self.nodes[i].api);
        let mut resp = reqwest::Client::new()
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(resp.status().is_success());
        let sink = events.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let ev: BlockStreamEvent = serde_json::from_slice(&line).expect("ndjson line");
                    sink.lock().unwrap().push(ev);
                }
            }
        });
        events
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
