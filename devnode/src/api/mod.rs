//! The public HTTP API (axum): the real Logos Blockchain node's routes and
//! JSON shapes in the configured dialect (`api.dialect`), with its error
//! convention: a handler error is 500 with a plain-text body, a query
//! string that does not deserialize is 400 and a JSON body that does not
//! deserialize is 422 (axum's rejections, plain text). The reference
//! node's own endpoints live on the testing surface ([`testing`]).

pub mod shapes;
pub mod testing;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use crate::config::ApiDialect;
use crate::crypto::{SignedMantleTx, verifying_key_from_hex};
use crate::node::{AdoptedBlock, Node, NodeEvent};
use shapes::{HeaderId, api_block, parse_id, raw_block};

/// Most blocks one `GET /cryptarchia/blocks` returns.
pub const MAX_BLOCKS: usize = 512;

/// A plain-text error answer (the real node's convention).
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    /// A handler error: 500, plain text.
    pub fn internal(message: impl Into<String>) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The public API routes of the node's dialect.
pub fn router(node: Arc<Node>) -> Router {
    let api = &node.config.api;
    let mut r = Router::new()
        .route("/cryptarchia/headers", get(headers))
        .route("/cryptarchia/lib-stream", get(lib_stream))
        .route("/network/info", get(network_info))
        .route("/mantle/metrics", get(mantle_metrics))
        .route("/mempool/add/tx", post(add_tx))
        .route("/wallet/{public_key}/balance", get(wallet_balance))
        .route("/wallet/transactions/transfer-funds", post(transfer_funds));
    match api.dialect {
        ApiDialect::Logos202605 => {
            r = r
                .route("/cryptarchia/info", get(info_2026_05))
                .route("/cryptarchia/blocks", get(blocks_range))
                // A static segment wins over `{id}`: the logos-2026-01
                // stream path is not served in this dialect.
                .route("/cryptarchia/blocks/stream", any(not_found))
                .route("/cryptarchia/blocks/{id}", get(block_by_id))
                .route("/cryptarchia/events/blocks/stream", get(events_stream));
        }
        ApiDialect::Logos202601 => {
            r = r
                .route("/cryptarchia/info", get(info_2026_01))
                .route("/storage/block", post(storage_block));
            if api.block_explorer {
                r = r
                    .route("/cryptarchia/blocks", get(blocks_range))
                    .route("/cryptarchia/blocks/stream", get(blocks_stream));
            }
        }
    }
    r.route_layer(middleware::from_fn_with_state(node.clone(), count_requests))
        .with_state(node)
}

async fn count_requests(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        node.metrics.count_request(path.as_str());
    }
    next.run(req).await
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

fn mode(online: bool) -> &'static str {
    if online { "Online" } else { "Bootstrapping" }
}

async fn info_2026_05(State(node): State<Arc<Node>>) -> Json<Value> {
    let started = node.rules.slot_at(node.clock.now_ms()).is_some();
    let slot = node.current_slot();
    let st = node.state();
    let (lib, tip) = (st.chain.lib(), st.chain.tip());
    let mode = if started {
        json!({ "Started": mode(st.online) })
    } else {
        json!("AwaitingStart")
    };
    Json(json!({
        "cryptarchia_info": {
            "lib": lib.id(),
            "lib_slot": lib.block.header.slot,
            "tip": tip.id(),
            "slot": slot,
            "height": st.chain.height(),
        },
        "mode": mode,
    }))
}

async fn info_2026_01(State(node): State<Arc<Node>>) -> Json<Value> {
    let slot = node.current_slot();
    let st = node.state();
    Json(json!({
        "lib": st.chain.lib().id(),
        "tip": st.chain.tip().id(),
        "slot": slot,
        "height": st.chain.height(),
        "mode": mode(st.online),
    }))
}

#[derive(Debug, Deserialize)]
struct HeadersQuery {
    from: Option<HeaderId>,
    to: Option<HeaderId>,
}

async fn headers(
    State(node): State<Arc<Node>>,
    Query(q): Query<HeadersQuery>,
) -> ApiResult<Json<Vec<String>>> {
    node.header_ids(
        q.from.as_ref().map(|h| h.0.as_str()),
        q.to.as_ref().map(|h| h.0.as_str()),
    )
    .map(Json)
    .map_err(ApiError::internal)
}

async fn block_by_id(State(node): State<Arc<Node>>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => {
            return ApiError(StatusCode::BAD_REQUEST, format!("Invalid URL: {e}")).into_response();
        }
    };
    match node.entry(&id.0) {
        Some(entry) => Json(api_block(
            &entry.block,
            node.config.api.dialect,
            &node.rules,
        ))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn storage_block(
    State(node): State<Arc<Node>>,
    Json(id): Json<HeaderId>,
) -> Json<Option<Value>> {
    Json(node.entry(&id.0).map(|e| raw_block(&e.block, &node.rules)))
}

#[derive(Debug, Deserialize)]
struct SlotRange {
    slot_from: u64,
    slot_to: u64,
}

async fn blocks_range(
    State(node): State<Arc<Node>>,
    Query(q): Query<SlotRange>,
) -> Json<Vec<Value>> {
    let dialect = node.config.api.dialect;
    Json(
        node.blocks_in_slots(q.slot_from, q.slot_to, MAX_BLOCKS)
            .iter()
            .map(|e| api_block(&e.block, dialect, &node.rules))
            .collect(),
    )
}

fn event_line(node: &Node, a: &AdoptedBlock) -> Value {
    json!({
        "block": api_block(&a.entry.block, node.config.api.dialect, &node.rules),
        "tip": a.tip,
        "tip_slot": a.tip_slot,
        "lib": a.lib,
        "lib_slot": a.lib_slot,
    })
}

/// An NDJSON response: `first` (if any), then one line per event that
/// `line` maps, flushed per line, until the node stops.
fn ndjson<F>(node: &Arc<Node>, first: Option<Value>, line: F) -> Response
where
    F: FnMut(&NodeEvent) -> Option<Value> + Send + 'static,
{
    let rx = node.events.subscribe();
    let head = futures::stream::iter(first.map(|v| encode_line(&v)));
    let tail = futures::stream::unfold((rx, line), |(mut rx, mut line)| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(v) = line(&ev) {
                        return Some((encode_line(&v), (rx, line)));
                    }
                }
                Err(RecvError::Lagged(n)) => warn!("stream client lagged; {n} events skipped"),
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let lines = head
        .chain(tail)
        .take_until(node.cancel.clone().cancelled_owned());
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

fn encode_line(v: &Value) -> Result<Bytes, Infallible> {
    let mut bytes = serde_json::to_vec(v).expect("json values serialise");
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}

async fn lib_stream(State(node): State<Arc<Node>>) -> Response {
    ndjson(&node, None, |ev| match ev {
        NodeEvent::Lib { height, id } => Some(json!({ "height": height, "header_id": id })),
        NodeEvent::Adopted(_) => None,
    })
}

/// logos-2026-05: a snapshot of the tip first, then every adopted block.
async fn events_stream(State(node): State<Arc<Node>>) -> Response {
    let snapshot = node.tip_snapshot();
    let mut skip = Some(snapshot.entry.id().to_owned());
    let first = event_line(&node, &snapshot);
    let n = node.clone();
    ndjson(&node, Some(first), move |ev| match ev {
        NodeEvent::Adopted(a) => {
            // The snapshot's block may also be queued as an event.
            if skip.take().as_deref() == Some(a.entry.id()) {
                return None;
            }
            Some(event_line(&n, a))
        }
        NodeEvent::Lib { .. } => None,
    })
}

/// logos-2026-01 (block explorer): one ApiBlock per adopted block.
async fn blocks_stream(State(node): State<Arc<Node>>) -> Response {
    let n = node.clone();
    ndjson(&node, None, move |ev| match ev {
        NodeEvent::Adopted(a) => Some(api_block(&a.entry.block, n.config.api.dialect, &n.rules)),
        NodeEvent::Lib { .. } => None,
    })
}

async fn network_info(State(node): State<Arc<Node>>) -> Json<Value> {
    let mut info = json!({
        "listen_addresses": [node.advertise],
        "peer_id": node.public_key,
        "n_peers": node.peers.count(),
        "n_connections": node.peers.connections.load(Relaxed),
        "n_pending_connections": node.peers.pending.load(Relaxed),
    });
    if node.config.api.dialect == ApiDialect::Logos202605 {
        info["connected_peers"] = json!(node.peers.keys());
    }
    Json(info)
}

async fn mantle_metrics(State(node): State<Arc<Node>>) -> Json<Value> {
    let pending = node.state().mempool.len();
    Json(json!({
        "pending_items": pending,
        "last_item_timestamp": node.last_mempool_insert_ms.load(Relaxed),
    }))
}

async fn add_tx(
    State(node): State<Arc<Node>>,
    Json(body): Json<SignedMantleTx>,
) -> ApiResult<Json<()>> {
    let tx = body.to_signed_tx().map_err(ApiError::internal)?;
    node.add_tx(tx, true)
        .map(|_| Json(()))
        .map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Debug, Deserialize)]
struct BalanceQuery {
    tip: Option<HeaderId>,
}

async fn wallet_balance(
    State(node): State<Arc<Node>>,
    Path(public_key): Path<String>,
    Query(q): Query<BalanceQuery>,
) -> ApiResult<Json<Value>> {
    verifying_key_from_hex(&public_key).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("Invalid URL: public_key: {e}"),
        )
    })?;
    let public_key = public_key.to_ascii_lowercase();
    if !node.wallet_knows(&public_key) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "The requested address could not be found in the wallet".into(),
        ));
    }
    let (tip, balance) = node
        .balance_at(&public_key, q.tip.as_ref().map(|t| t.0.as_str()))
        .map_err(ApiError::internal)?;
    let mut answer = json!({ "tip": tip, "balance": balance, "address": public_key });
    if node.config.api.dialect == ApiDialect::Logos202605 {
        answer["notes"] = json!({});
    }
    Ok(Json(answer))
}

/// Body of `POST /wallet/transactions/transfer-funds`.
#[derive(Debug, Deserialize)]
struct TransferFunds {
    tip: Option<HeaderId>,
    #[allow(dead_code)]
    change_public_key: String,
    funding_public_keys: Vec<String>,
    recipient_public_key: String,
    amount: u64,
}

async fn transfer_funds(
    State(node): State<Arc<Node>>,
    Json(body): Json<TransferFunds>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(tip) = &body.tip
        && !node.knows(&tip.0)
    {
        return Err(ApiError::internal(format!("unknown block tip = {}", tip.0)));
    }
    let funding: Vec<String> = body
        .funding_public_keys
        .iter()
        .map(|k| k.to_ascii_lowercase())
        .collect();
    let tx = node
        .wallet_transfer(
            &funding,
            &body.recipient_public_key.to_ascii_lowercase(),
            body.amount,
        )
        .map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(json!({ "hash": tx.id() }))))
}
