//! The testing HTTP surface (the real node's testing port), served on
//! `testing_api.listen` only when configured: `POST /test/network/dial_peer`
//! and the reference node's own endpoints (`/metrics`,
//! `/ledger/account/{pk}`, `/mempool/info`, `/test/clock`: read or set the
//! node's clock offset and drift; `/test/byzantine`: read or set the lies it tells;
//! `/test/evidence`: the lies it saw; `/test/disk`: read or set its disk faults).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use crate::crypto::verifying_key_from_hex;
use crate::node::Node;

/// The testing routes (the same in both dialects).
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/test/network/dial_peer", post(dial_peer))
        .route("/metrics", get(metrics))
        .route("/ledger/account/{public_key}", get(account))
        .route("/mempool/info", get(mempool_info))
        .route("/test/clock", get(clock).post(set_clock))
        .route("/test/byzantine", get(byzantine).post(set_byzantine))
        .route("/test/evidence", get(evidence))
        .route("/test/disk", get(disk).post(set_disk))
        .with_state(node)
}

#[derive(Debug, Deserialize)]
struct DialPeer {
    addr: String,
}

/// `host:port` from `host:port`, `/ip4/H/tcp/P`, `/ip4/H/udp/P/quic-v1`
/// (also `ip6`, `dns`, `dns4`, `dns6`).
pub fn dial_address(addr: &str) -> Result<String, String> {
    let valid_port = |p: &str| p.parse::<u16>().is_ok_and(|p| p > 0);
    if addr.starts_with('/') {
        let parts: Vec<&str> = addr.split('/').collect();
        if let [_, proto, host, transport, port, ..] = parts.as_slice()
            && matches!(*proto, "ip4" | "ip6" | "dns" | "dns4" | "dns6")
            && matches!(*transport, "tcp" | "udp")
            && !host.is_empty()
            && valid_port(port)
        {
            return Ok(if *proto == "ip6" {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            });
        }
        return Err(format!(
            "address {addr:?} is not a multiaddr /ip4/HOST/tcp/PORT or /ip4/HOST/udp/PORT/quic-v1"
        ));
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && valid_port(port) => Ok(addr.to_owned()),
        _ => Err(format!("address {addr:?} is not host:port")),
    }
}

async fn dial_peer(
    State(node): State<Arc<Node>>,
    Json(body): Json<DialPeer>,
) -> Result<Json<()>, ApiError> {
    let addr = dial_address(&body.addr).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    node.connect(addr);
    Ok(Json(()))
}

async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(node.gauges()),
    )
}

async fn account(
    State(node): State<Arc<Node>>,
    Path(public_key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    verifying_key_from_hex(&public_key)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("public_key: {e}")))?;
    let acc = node
        .state()
        .chain
        .ledger()
        .account(&public_key.to_ascii_lowercase());
    Ok(Json(json!({ "balance": acc.balance, "nonce": acc.nonce })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetClock {
    /// Offset from wall time, ms (negative: behind).
    offset_ms: i64,
    /// Drift from now on, parts per million.
    #[serde(default)]
    drift_ppm: i64,
}

/// Most a clock may be set off or drift: a day, and 10% (beyond that it is a typo).
const MAX_OFFSET_MS: i64 = 86_400_000;
const MAX_DRIFT_PPM: i64 = 100_000;

async fn clock(State(node): State<Arc<Node>>) -> Json<crate::clock::ClockReading> {
    Json(node.clock.read())
}

async fn set_clock(
    State(node): State<Arc<Node>>,
    Json(body): Json<SetClock>,
) -> Result<Json<crate::clock::ClockReading>, ApiError> {
    if body.offset_ms.abs() > MAX_OFFSET_MS || body.drift_ppm.abs() > MAX_DRIFT_PPM {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "clock offset {} ms / drift {} ppm: at most ±{MAX_OFFSET_MS} ms and ±{MAX_DRIFT_PPM} ppm",
                body.offset_ms, body.drift_ppm
            ),
        ));
    }
    node.clock.set(body.offset_ms, body.drift_ppm);
    tracing::info!(
        offset_ms = body.offset_ms,
        drift_ppm = body.drift_ppm,
        "clock set (testing surface)"
    );
    Ok(Json(node.clock.read()))
}

/// The behaviours in force and how many own blocks are being withheld.
fn byzantine_state(node: &Node) -> Value {
    let b = node.byzantine.get();
    json!({
        "behaviours": b,
        "summary": b.describe(),
        "withheld": node.byzantine.withheld_count(),
    })
}

async fn byzantine(State(node): State<Arc<Node>>) -> Json<Value> {
    Json(byzantine_state(&node))
}

/// Replaces the behaviours with the body's (`{}`: honest); answers as `GET`.
async fn set_byzantine(
    State(node): State<Arc<Node>>,
    Json(body): Json<crate::config::ByzantineBehaviours>,
) -> Result<Json<Value>, ApiError> {
    body.validate("")
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    tracing::info!(behaviours = %body.describe(), "byzantine behaviours set (testing surface)");
    node.byzantine.set(body);
    Ok(Json(byzantine_state(&node)))
}

/// The lies the node saw: `{evidence: [..], equivocations_seen, invalid_transactions}`.
async fn evidence(State(node): State<Arc<Node>>) -> Json<Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let evidence = node.observed().evidence();
    Json(json!({
        "evidence": evidence,
        "equivocations_seen": node.metrics.equivocations_seen.load(Relaxed),
        "equivocations_accepted": node.metrics.equivocations_accepted.load(Relaxed),
        "invalid_transactions": node.metrics.invalid_transactions_received.load(Relaxed),
    }))
}

/// A change of the disk faults; a field left out keeps its value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetDisk {
    /// Hold the last this many block writes back as not durable (0: every write durable,
    /// and those held back are committed now).
    unflushed_blocks: Option<usize>,
    /// Every write fails (ENOSPC) from now on; false: the disk has room again.
    full: Option<bool>,
}

async fn disk(State(node): State<Arc<Node>>) -> Json<crate::storage::DiskStatus> {
    Json(node.store().status())
}

async fn set_disk(
    State(node): State<Arc<Node>>,
    Json(body): Json<SetDisk>,
) -> Result<Json<crate::storage::DiskStatus>, ApiError> {
    use crate::storage::MAX_UNFLUSHED;
    if body.unflushed_blocks.is_some_and(|n| n > MAX_UNFLUSHED) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "unflushed_blocks = {}: at most {MAX_UNFLUSHED}",
                body.unflushed_blocks.unwrap_or_default()
            ),
        ));
    }
    let mut faults = node.store().status().faults;
    if let Some(n) = body.unflushed_blocks {
        faults.unflushed_blocks = n;
    }
    if let Some(full) = body.full {
        faults.full = full;
        faults.full_at_height = None;
    }
    tracing::info!(
        unflushed_blocks = faults.unflushed_blocks,
        full = faults.full,
        "disk faults set (testing surface)"
    );
    node.store()
        .set_faults(faults)
        .map(Json)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn mempool_info(State(node): State<Arc<Node>>) -> Json<Value> {
    Json(json!({ "size": node.state().mempool.len() }))
}

#[cfg(test)]
mod tests {
    use super::dial_address;

    #[test]
    fn dial_addresses_accept_host_port_and_multiaddrs() {
        assert_eq!(dial_address("127.0.0.1:3000").unwrap(), "127.0.0.1:3000");
        assert_eq!(
            dial_address("/ip4/10.0.0.5/tcp/3000").unwrap(),
            "10.0.0.5:3000"
        );
        assert_eq!(
            dial_address("/ip4/10.0.0.5/udp/3001/quic-v1").unwrap(),
            "10.0.0.5:3001"
        );
        assert_eq!(dial_address("/ip6/::1/tcp/3000").unwrap(), "[::1]:3000");
        assert!(
            dial_address("no-port")
                .unwrap_err()
                .contains("not host:port")
        );
        assert!(dial_address("/ip4/1.2.3.4/tcp/0").is_err());
        assert!(dial_address("/ip4/1.2.3.4").is_err());
    }
}
