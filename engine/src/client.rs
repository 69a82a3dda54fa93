//! Typed HTTP client of the node API. Every call has a timeout (a hung node
//! must never hang a run), and every error names the node and the URL.

use std::time::Duration;

use devnode::api_types::{
    AccountInfo, AddTxResponse, ApiError, Block, BlockStreamEvent, ConsensusInfo, MempoolInfo,
    NetworkInfo,
};
use devnode::crypto::SignedTx;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;

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
    /// The answer did not parse as the expected JSON.
    #[error("bad answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// True when the node answered and refused (as opposed to a transport problem).
    pub fn is_rejection(&self) -> bool {
        matches!(self.kind, ClientErrorKind::Rejected { .. })
    }
}

/// Client of one node's HTTP API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeClient {
    index: usize,
    name: String,
    base: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl NodeClient {
    /// A client of the node at `base_url` (`http://127.0.0.1:PORT`).
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
            http,
            timeout: Duration::from_secs(5),
        }
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
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            self.err(url, ClientErrorKind::Unreachable(msg))
        }
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        url: &str,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.map_send(url, e))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(300).collect());
            return Err(self.err(
                url,
                ClientErrorKind::Rejected {
                    status: status.as_u16(),
                    message,
                },
            ));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| self.err(url, ClientErrorKind::Decode(e.to_string())))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.map_send(&url, e))?;
        self.decode(&url, resp).await
    }

    async fn post<B: serde::Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .timeout(self.timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| self.map_send(&url, e))?;
        self.decode(&url, resp).await
    }

    /// `GET /cryptarchia/info`.
    pub async fn consensus_info(&self) -> Result<ConsensusInfo, ClientError> {
        self.get("/cryptarchia/info").await
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
        self.get(&path).await
    }

    /// `POST /storage/block`: the block, or None when the node does not have it.
    pub async fn block(&self, id: &str) -> Result<Option<Block>, ClientError> {
        self.post("/storage/block", id).await
    }

    /// `GET /network/info`.
    pub async fn network_info(&self) -> Result<NetworkInfo, ClientError> {
        self.get("/network/info").await
    }

    /// `POST /mempool/add/tx`: the transaction id on acceptance.
    pub async fn add_tx(&self, tx: &SignedTx) -> Result<String, ClientError> {
        let r: AddTxResponse = self.post("/mempool/add/tx", tx).await?;
        Ok(r.id)
    }

    /// `GET /ledger/account/{public_key}` at the tip.
    pub async fn account(&self, public_key: &str) -> Result<AccountInfo, ClientError> {
        self.get(&format!("/ledger/account/{public_key}")).await
    }

    /// `GET /mempool/info`.
    pub async fn mempool_info(&self) -> Result<MempoolInfo, ClientError> {
        self.get("/mempool/info").await
    }

    /// `POST /network/connect`: dial another node (`host:port`).
    pub async fn connect(&self, addr: &str) -> Result<(), ClientError> {
        let url = format!("{}/network/connect", self.base);
        let resp = self
            .http
            .post(&url)
            .timeout(self.timeout)
            .json(addr)
            .send()
            .await
            .map_err(|e| self.map_send(&url, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<ApiError>(&text)
                .map(|e| e.error)
                .unwrap_or(text);
            Err(self.err(&url, ClientErrorKind::Rejected { status, message }))
        }
    }

    /// `GET /metrics` (Prometheus text).
    pub async fn metrics_text(&self) -> Result<String, ClientError> {
        let url = format!("{}/metrics", self.base);
        let resp = self
            .http
            .get(&url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.map_send(&url, e))?;
        resp.text().await.map_err(|e| self.map_send(&url, e))
    }

    /// `GET /cryptarchia/blocks/stream`: events from now on, until the
    /// connection closes. Only connecting has a timeout; the stream itself is open-ended.
    pub async fn block_stream(
        &self,
    ) -> Result<BoxStream<'static, Result<BlockStreamEvent, ClientError>>, ClientError> {
        let url = format!("{}/cryptarchia/blocks/stream", self.base);
        let resp = tokio::time::timeout(self.timeout, self.http.get(&url).send())
            .await
            .map_err(|_| self.err(&url, ClientErrorKind::Timeout(self.timeout)))?
            .map_err(|e| self.map_send(&url, e))?;
        if !resp.status().is_success() {
            return Err(self.err(
                &url,
                ClientErrorKind::Rejected {
                    status: resp.status().as_u16(),
                    message: "block stream refused".to_owned(),
                },
            ));
        }
        let me = self.clone();
        let bytes = resp.bytes_stream();
        let stream = futures::stream::unfold(
            (bytes, Vec::<u8>::new(), me, url, false),
            |(mut bytes, mut buf, me, url, done)| async move {
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
                        let item = serde_json::from_slice::<BlockStreamEvent>(line)
                            .map_err(|e| me.err(&url, ClientErrorKind::Decode(e.to_string())));
                        return Some((item, (bytes, buf, me, url, false)));
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
