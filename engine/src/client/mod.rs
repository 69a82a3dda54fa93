//! The node API: one typed client of a node's HTTP API that the runner, the
//! block feed, workloads, expectations and scripts use, whatever the node.
//! Behind it, the API [`Dialect`] (the real Logos node's revisions) maps paths
//! and shapes to the neutral [`model`]. Every call has a timeout (a hung node
//! must never hang a run), every error names the node and the URL, and an
//! answer that does not decode is reported with its first bytes, never retried
//! forever.
//!
//! What only the reference node offers (its ledger accounts, Prometheus
//! `/metrics`, run-time dial) lives on its testing surface, a second base URL
//! given with [`NodeClient::with_testing_url`]; without one those calls fail
//! with [`ClientErrorKind::Unsupported`].

pub mod dialect;
pub mod model;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use devnode::crypto::SignedTx;

use crate::error::Chain;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use dialect::Dialect;
pub use model::{
    AccountInfo, Balance, Block, BlockTx, ByzantineState, ClockReading, ConsensusInfo, DiskReading,
    EvidenceEntry, EvidenceReport, LibUpdate, MempoolInfo, NetworkInfo, SdpDeclaration,
    StreamBlock, Transfer, TransferFunds,
};

/// A failed node API call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{node} {url}: {kind}")]
pub struct ClientError {
    /// `node-3`.
    pub node: String,
    pub url: String,
    pub kind: ClientErrorKind,
}

/// What went wrong with a node API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientErrorKind {
    /// No connection (refused, reset, DNS...).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The call's timeout passed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The node answered 4xx/5xx with this message.
    #[error("rejected ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The answer did not decode as the dialect's shape.
    #[error("bad answer: {0}")]
    Decode(String),
    /// The node (its kind or dialect) does not offer this call.
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl ClientError {
    /// True when the node answered and refused (as opposed to a transport problem).
    pub fn is_rejection(&self) -> bool {
        matches!(self.kind, ClientErrorKind::Rejected { .. })
    }

    /// True when the node could not be reached or did not answer in time (it may be down,
    /// restarting or paused), as opposed to an answer.
    pub fn is_transport(&self) -> bool {
        matches!(
            self.kind,
            ClientErrorKind::Unreachable(_) | ClientErrorKind::Timeout(_)
        )
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ClientErrorKind::Rejected { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// The first bytes of an answer, for error messages.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
    if bytes.len() > 120 {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}

/// Client of one node's HTTP API. Cheap to clone; clones share the dialect once known.
#[derive(Debug, Clone)]
pub struct NodeClient {
    index: usize,
    name: String,
    base: String,
    testing: Option<String>,
    dialect: Arc<OnceLock<Dialect>>,
    http: reqwest::Client,
    timeout: Duration,
}

impl NodeClient {
    /// A client of the node at `base_url` (`http://127.0.0.1:PORT`). The dialect is
    /// detected from the node's first `/cryptarchia/info` answer unless given with
    /// [`NodeClient::with_dialect`].
    pub fn new(index: usize, base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("reqwest client builds with static settings");
        Self {
            index,
            name: format!("node-{index}"),
            base: base_url.trim_end_matches('/').to_owned(),
            testing: None,
            dialect: Arc::new(OnceLock::new()),
            http,
            timeout: Duration::from_secs(5),
        }
    }

    /// The same client, speaking `dialect` (no detection).
    pub fn with_dialect(self, dialect: Dialect) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(dialect);
        Self {
            dialect: Arc::new(cell),
            ..self
        }
    }

    /// The same client with the node's testing surface at `url`.
    pub fn with_testing_url(mut self, url: Option<&str>) -> Self {
        self.testing = url.map(|u| u.trim_end_matches('/').to_owned());
        self
    }

    /// The same client with another per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Index of the node in its testnet.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `node-<index>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Base URL of the API.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Base URL of the testing surface, if the node has one.
    pub fn testing_url(&self) -> Option<&str> {
        self.testing.as_deref()
    }

    /// The dialect, if known yet (given, or detected by an earlier call).
    pub fn known_dialect(&self) -> Option<Dialect> {
        self.dialect.get().copied()
    }

    fn err(&self, url: &str, kind: ClientErrorKind) -> ClientError {
        ClientError {
            node: self.name.clone(),
            url: url.to_owned(),
            kind,
        }
    }

    fn map_send(&self, url: &str, e: reqwest::Error) -> ClientError {
        if e.is_timeout() {
            self.err(url, ClientErrorKind::Timeout(self.timeout))
        } else {
            let msg = e.chain();
            self.err(url, ClientErrorKind::Unreachable(msg))
        }
    }

    /// Sends a request and returns the status and the whole body (bounded by the timeout).
    async fn send(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, bytes::Bytes), ClientError> {
        let resp = req
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.map_send(url, e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| self.map_send(url, e))?;
        Ok((status, bytes))
    }

    fn rejected(&self, url: &str, status: u16, bytes: &[u8]) -> ClientError {
        let text = String::from_utf8_lossy(bytes);
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| text.trim().chars().take(300).collect());
        self.err(url, ClientErrorKind::Rejected { status, message })
    }

    fn decode_err(
        &self,
        url: &str,
        what: &str,
        e: impl std::fmt::Display,
        body: &[u8],
    ) -> ClientError {
        self.err(
            url,
            ClientErrorKind::Decode(format!(
                "{what}: {e}; the answer starts with {}",
                preview(body)
            )),
        )
    }

    /// A JSON answer of a successful call, as a value.
    async fn json(&self, url: &str, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let (status, bytes) = self.send(url, req).await?;
        if !(200..300).contains(&status) {
            return Err(self.rejected(url, status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.decode_err(url, "not JSON", e, &bytes))
    }

    async fn get_typed<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let v = self.json(&url, self.http.get(&url)).await?;
        self.typed(&url, v)
    }

    fn typed<T: DeserializeOwned>(&self, url: &str, v: Value) -> Result<T, ClientError> {
        let body = v.to_string();
        serde_json::from_value(v)
            .map_err(|e| self.decode_err(url, "unexpected shape", e, body.as_bytes()))
    }

    /// The node's dialect: the one given, else detected from `/cryptarchia/info`.
    pub async fn dialect(&self) -> Result<Dialect, ClientError> {
        if let Some(d) = self.dialect.get() {
            return Ok(*d);
        }
        let url = format!("{}/cryptarchia/info", self.base);
        let v = self.json(&url, self.http.get(&url)).await?;
        self.learn_dialect(&url, &v)
    }

    /// The dialect an answer of `/cryptarchia/info` is in, kept for every clone.
    fn learn_dialect(&self, url: &str, info: &Value) -> Result<Dialect, ClientError> {
        let d = Dialect::detect(info).ok_or_else(|| {
            self.decode_err(
                url,
                "no known dialect answers like this",
                "neither logos-2026-01 nor logos-2026-05",
                info.to_string().as_bytes(),
            )
        })?;
        Ok(*self.dialect.get_or_init(|| d))
    }

    /// Sends a request whose answer carries nothing the caller needs: Ok on 2xx.
    async fn send_ok(&self, url: &str, req: reqwest::RequestBuilder) -> Result<(), ClientError> {
        let (status, bytes) = self.send(url, req).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.rejected(url, status, &bytes))
        }
    }

    /// `GET /cryptarchia/info`.
    pub async fn consensus_info(&self) -> Result<ConsensusInfo, ClientError> {
        let url = format!("{}/cryptarchia/info", self.base);
        let v = self.json(&url, self.http.get(&url)).await?;
        let d = match self.dialect.get() {
            Some(d) => *d,
            None => self.learn_dialect(&url, &v)?,
        };
        d.decode_info(&v)
            .map_err(|e| self.decode_err(&url, d.as_str(), e, v.to_string().as_bytes()))
    }

    /// `GET /cryptarchia/headers`: ids from `from` (default tip) back to `to` (default LIB).
    pub async fn headers(
        &self,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<String>, ClientError> {
        let mut q = Vec::new();
        if let Some(f) = from {
            q.push(format!("from={f}"));
        }
        if let Some(t) = to {
            q.push(format!("to={t}"));
        }
        let path = if q.is_empty() {
            "/cryptarchia/headers".to_owned()
        } else {
            format!("/cryptarchia/headers?{}", q.join("&"))
        };
        self.get_typed(&path).await
    }

    /// The block with this id, or None when the node does not have it
    /// (`POST /storage/block` or `GET /cryptarchia/blocks/{id}` by dialect).
    pub async fn block(&self, id: &str) -> Result<Option<Block>, ClientError> {
        let d = self.dialect().await?;
        let (url, req) = match d {
            Dialect::Logos202601 => {
                let url = format!("{}/storage/block", self.base);
                let req = self.http.post(&url).json(&id);
                (url, req)
            }
            Dialect::Logos202605 => {
                let url = format!("{}/cryptarchia/blocks/{id}", self.base);
                let req = self.http.get(&url);
                (url, req)
            }
        };
        let (status, bytes) = self.send(&url, req).await?;
        if status == 404 && d == Dialect::Logos202605 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(self.rejected(&url, status, &bytes));
        }
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.decode_err(&url, "not JSON", e, &bytes))?;
        if v.is_null() {
            return Ok(None);
        }
        dialect::decode_block(&v, Some(id))
            .map(Some)
            .map_err(|e| self.decode_err(&url, "block", e, &bytes))
    }

    /// `GET /cryptarchia/blocks?slot_from=&slot_to=`: blocks with a slot in the range
    /// (block-explorer builds of `logos-2026-01`; every `logos-2026-05` node).
    pub async fn blocks_in_slots(&self, from: u64, to: u64) -> Result<Vec<Block>, ClientError> {
        let url = format!(
            "{}/cryptarchia/blocks?slot_from={from}&slot_to={to}",
            self.base
        );
        let v = self.json(&url, self.http.get(&url)).await?;
        let list = v.as_array().ok_or_else(|| {
            self.decode_err(&url, "blocks", "not an array", v.to_string().as_bytes())
        })?;
        list.iter()
            .map(|b| dialect::decode_block(b, None))
            .collect::<Result<_, _>>()
            .map_err(|e| self.decode_err(&url, "blocks", e, v.to_string().as_bytes()))
    }

    /// `GET /network/info`.
    pub async fn network_info(&self) -> Result<NetworkInfo, ClientError> {
        self.get_typed("/network/info").await
    }

    /// `GET /mantle/metrics`: the mempool.
    pub async fn mempool_info(&self) -> Result<MempoolInfo, ClientError> {
        self.get_typed("/mantle/metrics").await
    }

    /// `POST /mempool/add/tx` with any body (a `SignedMantleTx` for a real node). The real
    /// node answers 200 `null`; a refusal keeps the node's status and text.
    pub async fn submit_raw(&self, body: &Value) -> Result<(), ClientError> {
        self.submit_text(body.to_string()).await
    }

    /// `POST /mempool/add/tx` with these bytes as a JSON body, well-formed or not (for
    /// fuzzing the node's intake). A refusal keeps the node's status and text.
    pub async fn submit_text(&self, body: String) -> Result<(), ClientError> {
        let url = format!("{}/mempool/add/tx", self.base);
        let req = || {
            self.http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        };
        match self.send_ok(&url, req()).await {
            // A pooled connection the node had closed (it closes one after refusing an
            // oversized body it did not read): sent again once on a fresh connection. A
            // submission is idempotent (the same transaction twice is a duplicate).
            Err(e) if matches!(&e.kind, ClientErrorKind::Unreachable(m) if m.contains("connection closed before message completed")) => {
                self.send_ok(&url, req()).await
            }
            other => other,
        }
    }

    /// Submits a client-signed reference-node transfer; returns its id (hash).
    pub async fn add_tx(&self, tx: &SignedTx) -> Result<String, ClientError> {
        self.submit_raw(&dialect::mantle_body(tx)).await?;
        Ok(tx.id())
    }

    /// `GET /wallet/{public_key}/balance`: only for keys the node's wallet knows.
    pub async fn balance(&self, public_key: &str) -> Result<Balance, ClientError> {
        self.get_typed(&format!("/wallet/{public_key}/balance"))
            .await
    }

    /// `POST /wallet/transactions/transfer-funds`: the node builds, signs and submits a
    /// transfer from keys its wallet knows; returns the transaction hash.
    pub async fn transfer_funds(&self, req: &TransferFunds) -> Result<String, ClientError> {
        let url = format!("{}/wallet/transactions/transfer-funds", self.base);
        let v = self.json(&url, self.http.post(&url).json(req)).await?;
        v.get("hash")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                self.decode_err(&url, "transfer", "missing `hash`", v.to_string().as_bytes())
            })
    }

    fn testing_path(&self, path: &str, what: &str) -> Result<String, ClientError> {
        match &self.testing {
            Some(t) => Ok(format!("{t}{path}")),
            None => Err(self.err(
                &format!("{}{path}", self.base),
                ClientErrorKind::Unsupported(format!(
                    "{what} needs the node's testing surface, and this node has none"
                )),
            )),
        }
    }

    /// An account of the reference node's ledger (testing surface `GET /ledger/account/{pk}`).
    pub async fn account(&self, public_key: &str) -> Result<AccountInfo, ClientError> {
        let url = self.testing_path(&format!("/ledger/account/{public_key}"), "an account read")?;
        let v = self.json(&url, self.http.get(&url)).await?;
        self.typed(&url, v)
    }

    /// Asks the node to dial `addr` (testing surface `POST /test/network/dial_peer`).
    pub async fn connect(&self, addr: &str) -> Result<(), ClientError> {
        let url = self.testing_path("/test/network/dial_peer", "a run-time dial")?;
        let body = serde_json::json!({ "addr": addr });
        self.send_ok(&url, self.http.post(&url).json(&body)).await
    }

    /// Sets the node's clock `offset_ms` off wall time, drifting `drift_ppm` from now on
    /// (testing surface `POST /test/clock`); returns what it then reads.
    pub async fn set_clock(
        &self,
        offset_ms: i64,
        drift_ppm: i64,
    ) -> Result<ClockReading, ClientError> {
        let url = self.testing_path("/test/clock", "setting the clock")?;
        let body = serde_json::json!({ "offset_ms": offset_ms, "drift_ppm": drift_ppm });
        let v = self.json(&url, self.http.post(&url).json(&body)).await?;
        self.typed(&url, v)
    }

    /// The node's clock (testing surface `GET /test/clock`).
    pub async fn clock(&self) -> Result<ClockReading, ClientError> {
        let url = self.testing_path("/test/clock", "reading the clock")?;
        let v = self.json(&url, self.http.get(&url)).await?;
        self.typed(&url, v)
    }

    /// Sets the node's lies to `behaviours` (testing surface `POST /test/byzantine`; the
    /// default set makes it honest); returns what it then tells.
    pub async fn set_byzantine(
        &self,
        behaviours: &devnode::config::ByzantineBehaviours,
    ) -> Result<ByzantineState, ClientError> {
        let url = self.testing_path("/test/byzantine", "byzantine behaviours")?;
        let v = self
            .json(&url, self.http.post(&url).json(behaviours))
            .await?;
        self.typed(&url, v)
    }

    /// The node's lies (testing surface `GET /test/byzantine`).
    pub async fn byzantine(&self) -> Result<ByzantineState, ClientError> {
        let url = self.testing_path("/test/byzantine", "byzantine behaviours")?;
        let v = self.json(&url, self.http.get(&url)).await?;
        self.typed(&url, v)
    }

    /// The lies the node saw (testing surface `GET /test/evidence`).
    pub async fn evidence(&self) -> Result<EvidenceReport, ClientError> {
        let url = self.testing_path("/test/evidence", "equivocation evidence")?;
        let v = self.json(&url, self.http.get(&url)).await?;
        self.typed(&url, v)
    }

    /// Sets the node's disk faults (testing surface `POST /test/disk`): its last
    /// `unflushed_blocks` block writes held back as not durable, its disk `full`; a `None`
    /// keeps the value in force. Returns what the store then reports.
    pub async fn set_disk(
        &self,
        unflushed_blocks: Option<u64>,
        full: Option<bool>,
    ) -> Result<DiskReading, ClientError> {
        let url = self.testing_path("/test/disk", "a disk fault")?;
        let mut body = serde_json::Map::new();
        if let Some(n) = unflushed_blocks {
            body.insert("unflushed_blocks".into(), n.into());
        }
        if let Some(f) = full {
            body.insert("full".into(), f.into());
        }
        let v = self.json(&url, self.http.post(&url).json(&body)).await?;
        self.typed(&url, v)
    }

    /// The node's disk faults and what they did (testing surface `GET /test/disk`).
    pub async fn disk(&self) -> Result<DiskReading, ClientError> {
        let url = self.testing_path("/test/disk", "reading the disk faults")?;
        let v = self.json(&url, self.http.get(&url)).await?;
        self.typed(&url, v)
    }

    /// Service declarations (testing surface `GET /mantle/sdp/declarations`).
    pub async fn sdp_declarations(&self) -> Result<Vec<SdpDeclaration>, ClientError> {
        let url = self.testing_path("/mantle/sdp/declarations", "service declarations")?;
        let v = self.json(&url, self.http.get(&url)).await?;
        self.typed(&url, v)
    }

    /// Prometheus text of the node (testing surface `GET /metrics`).
    pub async fn metrics_text(&self) -> Result<String, ClientError> {
        let url = self.testing_path("/metrics", "Prometheus metrics")?;
        let (status, bytes) = self.send(&url, self.http.get(&url)).await?;
        if !(200..300).contains(&status) {
            return Err(self.rejected(&url, status, &bytes));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `GET /cryptarchia/lib-stream`: each new LIB from now on.
    pub async fn lib_stream(
        &self,
    ) -> Result<BoxStream<'static, Result<LibUpdate, ClientError>>, ClientError> {
        self.ndjson("/cryptarchia/lib-stream", "lib update", |v| {
            serde_json::from_value::<LibUpdate>(v.clone()).map_err(|e| e.to_string())
        })
        .await
    }

    /// The dialect's block stream: blocks from now on, until the connection closes. Only
    /// connecting has a timeout; the stream itself is open-ended. A node without one
    /// (a `logos-2026-01` build without the block explorer) answers 404: `Rejected`.
    pub async fn block_stream(
        &self,
    ) -> Result<BoxStream<'static, Result<StreamBlock, ClientError>>, ClientError> {
        let d = self.dialect().await?;
        self.ndjson(d.block_stream_path(), d.as_str(), move |v| {
            d.decode_stream_line(v)
        })
        .await
    }

    /// An NDJSON answer as a stream of decoded lines.
    async fn ndjson<T: Send + 'static>(
        &self,
        path: &str,
        what: &'static str,
        decode: impl Fn(&Value) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<BoxStream<'static, Result<T, ClientError>>, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = tokio::time::timeout(self.timeout, self.http.get(&url).send())
            .await
            .map_err(|_| self.err(&url, ClientErrorKind::Timeout(self.timeout)))?
            .map_err(|e| self.map_send(&url, e))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            return Err(self.rejected(&url, status, &bytes));
        }
        let me = self.clone();
        let decode = Arc::new(decode);
        let bytes = resp.bytes_stream();
        let stream = futures::stream::unfold(
            (bytes, Vec::<u8>::new(), me, url, false),
            move |(mut bytes, mut buf, me, url, done)| {
                let decode = decode.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=pos).collect();
                            let line = &line[..line.len() - 1];
                            if line.iter().all(u8::is_ascii_whitespace) {
                                continue;
                            }
                            let item = serde_json::from_slice::<Value>(line)
                                .map_err(|e| e.to_string())
                                .and_then(|v| decode(&v))
                                .map_err(|e| me.decode_err(&url, what, e, line));
                            return Some((item, (bytes, buf, me, url, false)));
                        }
                        if buf.len() > 64 << 20 {
                            let err =
                                me.decode_err(&url, "stream line", "longer than 64 MiB", &buf);
                            return Some((Err(err), (bytes, Vec::new(), me, url, true)));
                        }
                        match bytes.next().await {
                            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                            Some(Err(e)) => {
                                let err = me.map_send(&url, e);
                                return Some((Err(err), (bytes, buf, me, url, true)));
                            }
                            None => return None,
                        }
                    }
                }
            },
        );
        Ok(stream.boxed())
    }
}

/// Clients of every node of a testnet, by index.
#[derive(Debug, Clone, Default)]
pub struct NodeClients(pub Vec<NodeClient>);

impl NodeClients {
    /// Client of node `i`.
    pub fn get(&self, i: usize) -> Option<&NodeClient> {
        self.0.get(i)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True with no nodes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the clients.
    pub fn iter(&self) -> std::slice::Iter<'_, NodeClient> {
        self.0.iter()
    }
}
