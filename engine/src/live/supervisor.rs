//! The supervisor's control API: a small HTTP server on 127.0.0.1 in the process that deployed
//! the testnet (so node processes are its children and link proxies live in it). Every call that
//! changes the testnet holds one lock, so two attached processes cannot interleave a restart
//! with a partition half-way.
//!
//! Every call needs the testnet's secret (`Authorization: Bearer <secret>`): 32 random bytes drawn
//! from the OS when the server is bound, recorded only in the 0600 state file. A call without it,
//! or with another, is answered 401 before any handler runs, so it changes nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::wire::{
    ActiveFaultWire, AddNodeWire, ApplyFaultWire, ErrorWire, FaultRecordWire, LinkSelWire,
    NetSnapshot, NodeEntry, TopologyDoc, capability_name,
};
use crate::deploy::{AddNodeSpec, ControlError, NodeState, Testnet};
use crate::error::Chain;
use crate::links::FaultId;

/// Longest `wait_ready` a caller may ask for.
const MAX_WAIT: Duration = Duration::from_secs(600);

struct Shared {
    testnet: Arc<dyn Testnet>,
    control: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

/// A bound, not yet serving, control API.
pub struct ControlServer {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    secret: Arc<str>,
}

/// Bytes of randomness in a control secret (hex-encoded on the wire and in the state file).
pub const SECRET_BYTES: usize = 32;

/// A fresh control secret: [`SECRET_BYTES`] bytes from the operating system's generator, in hex.
/// Not derived from the run seed: a replayed run must not be controllable with a known secret.
pub fn new_secret() -> std::io::Result<String> {
    use rand::TryRngCore;
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("no randomness for the control secret: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares in time that depends only on the lengths, so the answer time does not tell how many
/// leading characters of a guess were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The secret a request carries, if any: `Authorization: Bearer <secret>`.
fn bearer(req: &Request) -> Option<&[u8]> {
    let value = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// Refuses, before any handler or body extraction runs, every call without the secret.
async fn require_secret(State(secret): State<Arc<str>>, req: Request, next: Next) -> Response {
    match bearer(&req) {
        Some(given) if constant_time_eq(given, secret.as_bytes()) => next.run(req).await,
        given => {
            let why = if given.is_some() {
                "wrong control secret"
            } else {
                "this call needs the testnet's control secret (Authorization: Bearer, from its state file)"
            };
            let mut r = fail(StatusCode::UNAUTHORIZED, why.to_owned());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

/// What a snapshot of `testnet` looks like on the wire.
pub fn snapshot(testnet: &dyn Testnet) -> NetSnapshot {
    let clients = testnet.clients();
    NetSnapshot {
        run_id: testnet.run_id().to_owned(),
        deployer: testnet.deployer_name().to_owned(),
        nodes: clients
            .iter()
            .map(|c| NodeEntry {
                index: c.index(),
                api_url: c.base_url().to_owned(),
                testing_url: c.testing_url().map(str::to_owned),
                dialect: c.known_dialect(),
                state: testnet
                    .node_state(c.index())
                    .unwrap_or(NodeState::Exited)
                    .into(),
            })
            .collect(),
        endpoints: testnet.endpoints(),
        capabilities: testnet
            .capabilities()
            .into_iter()
            .map(|c| capability_name(c).to_owned())
            .collect(),
        supports: testnet.supports(),
        topology: TopologyDoc::from(testnet.topology()),
        run_dir: testnet.run_dir(),
    }
}

impl ControlServer {
    /// Binds a free port on 127.0.0.1 for `testnet`'s control API, guarded by a fresh secret
    /// ([`secret`](Self::secret)).
    pub async fn bind(testnet: Arc<dyn Testnet>) -> std::io::Result<Self> {
        let secret: Arc<str> = new_secret()?.into();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Ok(Self {
            listener,
            secret,
            shared: Arc::new(Shared {
                testnet,
                control: tokio::sync::Mutex::new(()),
                shutdown: CancellationToken::new(),
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The secret every call must carry; whoever may control the testnet reads it from the state
    /// file.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Cancelled by `POST /shutdown`.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Serves until `POST /shutdown` or `stop` fires. Teardown is the caller's.
    pub async fn serve(self, stop: CancellationToken) -> std::io::Result<()> {
        let shutdown = self.shared.shutdown.clone();
        let app = Router::new()
            .route("/state", get(state))
            .route("/nodes", post(add_node))
            .route("/nodes/{i}/{action}", post(node_action))
            .route("/nodes/{i}/byzantine", post(set_byzantine))
            .route("/nodes/{i}/logs", get(logs))
            .route("/faults", get(active_faults).post(apply_fault))
            .route("/faults/log", get(fault_log))
            .route("/control/log", get(control_log))
            .route("/faults/clear", post(clear_links))
            .route("/faults/{id}/revert", post(revert_fault))
            .route("/heal", post(heal))
            .route("/node_faults", get(node_faults).post(set_node_fault))
            .route("/node_faults/revert", post(revert_node_faults))
            .route("/wait_ready", post(wait_ready))
            .route("/shutdown", post(shutdown_now))
            .with_state(self.shared)
            // outermost, so unknown paths are refused too and nothing is parsed before it
            .layer(middleware::from_fn_with_state(self.secret, require_secret));
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = stop.cancelled() => {}
                }
            })
            .await
    }
}

type Shr = State<Arc<Shared>>;

fn fail(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorWire { error: message })).into_response()
}

fn control_err(e: ControlError) -> Response {
    let status = match e {
        ControlError::NoSuchNode { .. } => StatusCode::NOT_FOUND,
        ControlError::BadState { .. } => StatusCode::CONFLICT,
        ControlError::Unsupported { .. } | ControlError::UnsupportedKind { .. } => {
            StatusCode::NOT_IMPLEMENTED
        }
        ControlError::NotEnabled { .. } => StatusCode::FORBIDDEN,
        ControlError::TornDown => StatusCode::GONE,
        ControlError::Failed { .. } | ControlError::Deploy(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    fail(status, e.chain())
}

async fn state(State(s): Shr) -> Json<NetSnapshot> {
    Json(snapshot(&*s.testnet))
}

async fn node_action(State(s): Shr, Path((i, action)): Path<(usize, String)>) -> Response {
    let _g = s.control.lock().await;
    let net = &*s.testnet;
    let r = match action.as_str() {
        "start" => net.start(i).await,
        "stop" => net.stop(i).await,
        "restart" => net.restart(i).await,
        "kill" => net.kill(i).await,
        "pause" => net.pause(i).await,
        "resume" => net.resume(i).await,
        other => {
            return fail(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown node action `{other}` (expected start, stop, restart, kill, pause, resume)"
                ),
            );
        }
    };
    match r {
        Ok(()) => Json(serde_json::json!({"ok": true})).into_response(),
        Err(e) => control_err(e),
    }
}

/// Tells node `i` the lies of the body (`{}`: honest), in the testnet's control log.
async fn set_byzantine(
    State(s): Shr,
    Path(i): Path<usize>,
    Json(lies): Json<crate::deploy::byzantine::Behaviours>,
) -> Response {
    let _g = s.control.lock().await;
    match s.testnet.set_byzantine(i, lies).await {
        Ok(state) => Json(state).into_response(),
        Err(e) => control_err(e),
    }
}

async fn add_node(State(s): Shr, Json(spec): Json<AddNodeWire>) -> Response {
    let _g = s.control.lock().await;
    match s
        .testnet
        .add_node(AddNodeSpec {
            peers: spec.peers,
            stake: spec.stake,
            overrides: spec
                .overrides
                .into_iter()
                .map(|(path, value)| crate::topology::ConfigOverride { path, value })
                .collect(),
        })
        .await
    {
        Ok(i) => Json(serde_json::json!({"index": i})).into_response(),
        Err(e) => control_err(e),
    }
}

#[derive(Deserialize)]
struct LinesQuery {
    lines: Option<usize>,
}

async fn logs(State(s): Shr, Path(i): Path<usize>, Query(q): Query<LinesQuery>) -> Response {
    match s.testnet.logs(i, q.lines.unwrap_or(50)).await {
        Ok(text) => Json(serde_json::json!({"text": text})).into_response(),
        Err(e) => control_err(e),
    }
}

async fn apply_fault(State(s): Shr, Json(req): Json<ApplyFaultWire>) -> Response {
    let _g = s.control.lock().await;
    match s.testnet.apply_fault((&req.fault).into(), req.note).await {
        Ok(id) => Json(serde_json::json!({"id": id.0})).into_response(),
        Err(e) => control_err(e),
    }
}

async fn revert_fault(State(s): Shr, Path(id): Path<u64>) -> Response {
    let _g = s.control.lock().await;
    match s.testnet.revert_fault(FaultId(id)).await {
        Ok(()) => Json(serde_json::json!({"ok": true})).into_response(),
        Err(e) => control_err(e),
    }
}

async fn clear_links(State(s): Shr, Json(sel): Json<LinkSelWire>) -> Response {
    let _g = s.control.lock().await;
    match s.testnet.clear_links((&sel).into()).await {
        Ok(n) => Json(serde_json::json!({"count": n})).into_response(),
        Err(e) => control_err(e),
    }
}

async fn heal(State(s): Shr) -> Response {
    let _g = s.control.lock().await;
    match s.testnet.heal().await {
        Ok(n) => Json(serde_json::json!({"count": n})).into_response(),
        Err(e) => control_err(e),
    }
}

async fn set_node_fault(
    State(s): Shr,
    Json(req): Json<crate::deploy::node_faults::NodeFaultInForce>,
) -> Response {
    let _g = s.control.lock().await;
    match s.testnet.set_node_fault(req.node, req.fault).await {
        Ok(()) => Json(serde_json::json!({"ok": true})).into_response(),
        Err(e) => control_err(e),
    }
}

async fn revert_node_faults(State(s): Shr) -> Response {
    let _g = s.control.lock().await;
    match s.testnet.revert_node_faults().await {
        Ok(n) => Json(serde_json::json!({"count": n})).into_response(),
        Err(e) => control_err(e),
    }
}

async fn node_faults(State(s): Shr) -> Json<Vec<crate::deploy::node_faults::NodeFaultInForce>> {
    Json(s.testnet.node_faults())
}

async fn active_faults(State(s): Shr) -> Json<Vec<ActiveFaultWire>> {
    Json(s.testnet.active_faults().iter().map(Into::into).collect())
}

async fn control_log(State(s): Shr) -> Json<Vec<crate::deploy::control_log::ControlRecord>> {
    Json(s.testnet.control_log())
}

async fn fault_log(State(s): Shr) -> Json<Vec<FaultRecordWire>> {
    Json(s.testnet.fault_log().iter().map(Into::into).collect())
}

#[derive(Deserialize)]
struct WaitQuery {
    ms: Option<u64>,
}

async fn wait_ready(State(s): Shr, Query(q): Query<WaitQuery>) -> Response {
    let d = Duration::from_millis(q.ms.unwrap_or(60_000)).min(MAX_WAIT);
    match s.testnet.wait_ready(d).await {
        Ok(()) => Json(serde_json::json!({"ok": true})).into_response(),
        Err(e) => fail(StatusCode::UNPROCESSABLE_ENTITY, e.chain()),
    }
}

async fn shutdown_now(State(s): Shr) -> Json<serde_json::Value> {
    // wait for a control call in progress, so teardown never cuts one in half
    let _g = s.control.lock().await;
    s.shutdown.cancel();
    Json(serde_json::json!({"ok": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: Option<&str>) -> Request {
        let b = axum::http::Request::builder().uri("/state");
        let b = match value {
            Some(v) => b.header(header::AUTHORIZATION, v),
            None => b,
        };
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn secrets_are_fresh_hex_and_compared_whole() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_eq!(a.len(), 2 * SECRET_BYTES);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[..63]));
        assert!(!constant_time_eq(b"", a.as_bytes()));
    }

    #[test]
    fn only_a_bearer_header_carries_the_secret() {
        assert_eq!(bearer(&with_auth(Some("Bearer abc"))), Some(&b"abc"[..]));
        assert_eq!(bearer(&with_auth(Some("bearer  abc "))), Some(&b"abc"[..]));
        assert_eq!(bearer(&with_auth(Some("Basic abc"))), None);
        assert_eq!(bearer(&with_auth(Some("abc"))), None);
        assert_eq!(bearer(&with_auth(None)), None);
    }
}
