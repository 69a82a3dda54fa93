//! The HTTP API (axum), with the real node's paths and JSON shapes where the
//! framework uses them. Errors are `ApiError {error}` with a 4xx status.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use crate::api_types::{
    AccountInfo, AddTxResponse, ApiError, Block, ConsensusInfo, MempoolInfo, NetworkInfo,
};
use crate::crypto::{SignedTx, verifying_key_from_hex};
use crate::mempool::MempoolError;
use crate::node::{AddTxError, Node};

type ApiResult<T> = Result<Json<T>, (StatusCode, Json<ApiError>)>;

fn fail(status: StatusCode, error: impl Into<String>) -> (StatusCode, Json<ApiError>) {
    (
        status,
        Json(ApiError {
            error: error.into(),
        }),
    )
}

fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, (StatusCode, Json<ApiError>)> {
    serde_json::from_slice(body)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("invalid json: {e}")))
}

/// The API routes.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/cryptarchia/info", get(info))
        .route("/cryptarchia/headers", get(headers))
        .route("/cryptarchia/blocks/stream", get(stream))
        .route("/storage/block", post(block))
        .route("/mempool/add/tx", post(add_tx))
        .route("/mempool/info", get(mempool_info))
        .route("/ledger/account/{public_key}", get(account))
        .route("/network/info", get(network_info))
        .route("/network/connect", post(connect))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(node.clone(), count_requests))
        .with_state(node)
}

async fn count_requests(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        node.metrics.count_request(path.as_str());
    }
    next.run(req).await
}

async fn info(State(node): State<Arc<Node>>) -> Json<ConsensusInfo> {
    let slot = node.current_slot();
    let st = node.state();
    Json(ConsensusInfo {
        lib: st.chain.lib().id().to_owned(),
        tip: st.chain.tip().id().to_owned(),
        slot,
        height: st.chain.height(),
        mode: if st.online { "Online" } else { "Bootstrapping" }.to_owned(),
    })
}

#[derive(Debug, Deserialize)]
struct HeadersQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn headers(
    State(node): State<Arc<Node>>,
    Query(q): Query<HeadersQuery>,
) -> ApiResult<Vec<String>> {
    let from = q.from.as_deref().filter(|s| !s.is_empty());
    let to = q.to.as_deref().filter(|s| !s.is_empty());
    node.header_ids(from, to)
        .map(Json)
        .map_err(|e| fail(StatusCode::NOT_FOUND, e))
}

async fn block(State(node): State<Arc<Node>>, body: Bytes) -> ApiResult<Option<Block>> {
    let id: String = parse_json(&body)?;
    Ok(Json(node.block(&id)))
}

async fn stream(State(node): State<Arc<Node>>) -> Response {
    let rx = node.events.subscribe();
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let mut line = serde_json::to_vec(&ev).expect("events serialise");
                    line.push(b'\n');
                    return Some((Ok::<_, Infallible>(Bytes::from(line)), rx));
                }
                Err(RecvError::Lagged(n)) => {
                    warn!("block stream client lagged; {n} events skipped");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .take_until(node.cancel.clone().cancelled_owned());
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

async fn add_tx(State(node): State<Arc<Node>>, body: Bytes) -> ApiResult<AddTxResponse> {
    let tx: SignedTx = parse_json(&body)?;
    match node.add_tx(tx, true) {
        Ok((id, _)) => Ok(Json(AddTxResponse { id })),
        Err(e) => {
            let status = match &e {
                AddTxError::Invalid(_) => StatusCode::BAD_REQUEST,
                AddTxError::NonceTooLow { .. }
                | AddTxError::Mempool(MempoolError::Conflict { .. }) => StatusCode::CONFLICT,
                AddTxError::InsufficientBalance { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                AddTxError::Mempool(MempoolError::Full { .. }) => StatusCode::TOO_MANY_REQUESTS,
            };
            Err(fail(status, e.to_string()))
        }
    }
}

async fn mempool_info(State(node): State<Arc<Node>>) -> Json<MempoolInfo> {
    Json(MempoolInfo {
        size: node.state().mempool.len(),
    })
}

async fn account(
    State(node): State<Arc<Node>>,
    Path(public_key): Path<String>,
) -> ApiResult<AccountInfo> {
    verifying_key_from_hex(&public_key)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("public_key: {e}")))?;
    let acc = node.state().chain.ledger().account(&public_key);
    Ok(Json(AccountInfo {
        balance: acc.balance,
        nonce: acc.nonce,
    }))
}

async fn network_info(State(node): State<Arc<Node>>) -> Json<NetworkInfo> {
    use std::sync::atomic::Ordering::Relaxed;
    Json(NetworkInfo {
        listen_addresses: vec![node.advertise.clone()],
        n_peers: node.peers.count(),
        n_connections: node.peers.connections.load(Relaxed),
        n_pending_connections: node.peers.pending.load(Relaxed),
    })
}

async fn connect(State(node): State<Arc<Node>>, body: Bytes) -> ApiResult<serde_json::Value> {
    let addr: String = parse_json(&body)?;
    let valid = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !valid {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("address {addr:?} is not host:port"),
        ));
    }
    node.connect(addr.clone());
    Ok(Json(serde_json::json!({ "dialing": addr })))
}

async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(node.gauges()),
    )
}
