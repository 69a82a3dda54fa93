//! Every answer observed from a real Logos node (`../shared/real-node/samples/`,
//! January 2026 revision) is served again over real HTTP and decoded by the
//! framework's client: one test per file. The samples live beside the project;
//! when they are absent (a checkout without `../shared`) each test says so and
//! skips.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Response, StatusCode};
use engine::client::{ClientErrorKind, Dialect, NodeClient};
use futures::StreamExt;

fn samples_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/real-node/samples");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is missing (the real node's samples live beside the project)",
            dir.display()
        );
        None
    }
}

fn sample(name: &str) -> Option<String> {
    let dir = samples_dir()?;
    Some(std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// `(status, content type, body)` by `METHOD path` (path without the query).
type Routes = HashMap<String, (u16, &'static str, String)>;

/// A real HTTP server on loopback answering with fixed bodies; returns a client of it.
async fn serve(routes: Routes) -> NodeClient {
    let routes = Arc::new(routes);
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let routes = routes.clone();
        async move {
            let key = format!("{} {}", req.method(), req.uri().path());
            match routes.get(&key) {
                Some((status, ctype, body)) => Response::builder()
                    .status(*status)
                    .header("content-type", *ctype)
                    .body(Body::from(body.clone()))
                    .unwrap(),
                None => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Body::empty())
                    .unwrap(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    NodeClient::new(0, &format!("http://{addr}"))
}

fn json(body: String) -> (u16, &'static str, String) {
    (200, "application/json", body)
}

/// A sample of the form `BODY\nHTTP STATUS` or `BODY\nSTATUS` (the text files).
fn status_sample(text: &str) -> (u16, String) {
    let (body, status) = text.trim_end().rsplit_once('\n').expect("body then status");
    let status = status
        .trim()
        .trim_start_matches("HTTP ")
        .parse()
        .expect("status");
    (status, body.to_owned())
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

#[tokio::test]
async fn node_cryptarchia_info_decodes_in_the_january_dialect() {
    for n in 0..3 {
        let Some(body) = sample(&format!("node{n}-cryptarchia_info.json")) else {
            return;
        };
        let raw: serde_json::Value = serde_json::from_str(&body).unwrap();
        let c = serve(Routes::from([("GET /cryptarchia/info".into(), json(body))])).await;
        let info = c.consensus_info().await.unwrap();
        assert_eq!(c.known_dialect(), Some(Dialect::Logos202601), "detected");
        assert_eq!(info.height, raw["height"].as_u64().unwrap());
        assert_eq!(info.slot, raw["slot"].as_u64().unwrap());
        assert!(is_id(&info.tip) && is_id(&info.lib));
        assert!(info.is_online());
    }
}

#[tokio::test]
async fn node_network_info_decodes_with_multiaddrs_and_peer_id() {
    for n in 0..3 {
        let Some(body) = sample(&format!("node{n}-network_info.json")) else {
            return;
        };
        let c = serve(Routes::from([("GET /network/info".into(), json(body))])).await;
        let ni = c.network_info().await.unwrap();
        assert_eq!(ni.n_peers, 2);
        assert!(ni.listen_addresses[0].ends_with("/quic-v1"), "{ni:?}");
        assert!(
            ni.peer_id
                .as_deref()
                .is_some_and(|p| p.starts_with("12D3KooW"))
        );
        assert_eq!(
            ni.connected_peers, None,
            "January 2026 has no connected_peers"
        );
    }
}

#[tokio::test]
async fn node_mantle_metrics_decode_as_the_mempool() {
    for n in 0..3 {
        let Some(body) = sample(&format!("node{n}-mantle_metrics.json")) else {
            return;
        };
        let c = serve(Routes::from([("GET /mantle/metrics".into(), json(body))])).await;
        let m = c.mempool_info().await.unwrap();
        assert_eq!((m.pending_items, m.last_item_timestamp), (0, 0));
    }
}

#[tokio::test]
async fn storage_block_tip_decodes_with_the_id_it_was_asked_by() {
    let Some(body) = sample("storage_block_tip.json") else {
        return;
    };
    let info = sample("node0-cryptarchia_info.json").unwrap();
    let tip: serde_json::Value = serde_json::from_str(&info).unwrap();
    let tip = tip["tip"].as_str().unwrap().to_owned();
    let c = serve(Routes::from([
        ("GET /cryptarchia/info".into(), json(info)),
        ("POST /storage/block".into(), json(body)),
    ]))
    .await;
    let b = c.block(&tip).await.unwrap().expect("a block");
    assert_eq!(b.id, tip, "the raw block has no id: the asked one stands");
    assert_eq!(b.slot, 29);
    assert!(is_id(&b.parent));
    assert!(b.leader.as_deref().is_some_and(is_id));
    assert!(b.transactions.is_empty());
    assert_eq!(b.height, None, "no real node reports a block's height");
}

#[tokio::test]
async fn storage_block_lib_decodes() {
    let Some(body) = sample("storage_block_lib.json") else {
        return;
    };
    let c = serve(Routes::from([("POST /storage/block".into(), json(body))]))
        .await
        .with_dialect(Dialect::Logos202601);
    let b = c.block(&"0".repeat(64)).await.unwrap().expect("a block");
    assert_eq!(b.slot, 18);
    assert_eq!(
        b.parent,
        "c8ae930a3d600230c2400d0158379789edfac266c933a0bb7f8c547f5ebb2a26"
    );
}

#[tokio::test]
async fn storage_block_unknown_is_none() {
    let Some(text) = sample("storage_block_unknown.txt") else {
        return;
    };
    let (status, body) = status_sample(&text);
    assert_eq!((status, body.as_str()), (200, "null"));
    let c = serve(Routes::from([(
        "POST /storage/block".into(),
        (status, "application/json", body),
    )]))
    .await
    .with_dialect(Dialect::Logos202601);
    assert_eq!(c.block(&"1".repeat(64)).await.unwrap(), None);
}

#[tokio::test]
async fn cryptarchia_blocks_range_decodes_with_ids_and_parents_linked() {
    let Some(body) = sample("cryptarchia_blocks_range.json") else {
        return;
    };
    let c = serve(Routes::from([(
        "GET /cryptarchia/blocks".into(),
        json(body),
    )]))
    .await;
    let blocks = c.blocks_in_slots(1, 20).await.unwrap();
    assert!(blocks.len() >= 2, "{} blocks", blocks.len());
    for w in blocks.windows(2) {
        assert!(w[1].slot > w[0].slot);
        assert_eq!(w[1].parent, w[0].id, "consecutive canonical blocks");
    }
}

#[tokio::test]
async fn cryptarchia_blocks_stream_decodes_every_line_in_the_january_dialect() {
    let Some(body) = sample("cryptarchia_blocks_stream.ndjson") else {
        return;
    };
    let lines = body.lines().filter(|l| !l.trim().is_empty()).count();
    let c = serve(Routes::from([(
        "GET /cryptarchia/blocks/stream".into(),
        (200, "application/x-ndjson", body),
    )]))
    .await
    .with_dialect(Dialect::Logos202601);
    let items: Vec<_> = c.block_stream().await.unwrap().collect().await;
    assert_eq!(items.len(), lines);
    let blocks: Vec<_> = items.into_iter().map(|i| i.unwrap().block).collect();
    // the stream carries every block the node processed, forks included (two blocks of
    // slot 32 share a parent here): each parent is the first block's parent or an earlier line
    let mut seen = vec![blocks[0].parent.clone()];
    for b in &blocks {
        assert!(
            seen.contains(&b.parent),
            "parent of {} not seen before",
            b.id
        );
        seen.push(b.id.clone());
    }
    assert!(
        blocks
            .iter()
            .any(|b| blocks.iter().filter(|o| o.parent == b.parent).count() > 1),
        "the sample has a fork"
    );
}

#[tokio::test]
async fn cryptarchia_lib_stream_decodes() {
    let Some(body) = sample("cryptarchia_lib_stream.ndjson") else {
        return;
    };
    let c = serve(Routes::from([(
        "GET /cryptarchia/lib-stream".into(),
        (200, "application/x-ndjson", body),
    )]))
    .await;
    let libs: Vec<_> = c
        .lib_stream()
        .await
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(libs.first().map(|l| l.height), Some(21));
    assert!(libs.windows(2).all(|w| w[1].height == w[0].height + 1));
    assert!(libs.iter().all(|l| is_id(&l.header_id)));
}

#[tokio::test]
async fn cryptarchia_headers_decode_from_tip_to_lib() {
    let Some(body) = sample("cryptarchia_headers.json") else {
        return;
    };
    let c = serve(Routes::from([(
        "GET /cryptarchia/headers".into(),
        json(body),
    )]))
    .await;
    let ids = c.headers(None, None).await.unwrap();
    assert_eq!(ids.len(), 11);
    assert!(ids.iter().all(|i| is_id(i)));
}

#[tokio::test]
async fn cryptarchia_headers_to_tip_decodes() {
    let Some(body) = sample("cryptarchia_headers_to_tip.json") else {
        return;
    };
    let c = serve(Routes::from([(
        "GET /cryptarchia/headers".into(),
        json(body),
    )]))
    .await;
    let tip = "d73f40ffa3c444c2160a85d8122c664ae69d1edc897b45a936bb80526b0f7859";
    assert_eq!(c.headers(Some(tip), Some(tip)).await.unwrap(), vec![tip]);
}

#[tokio::test]
async fn headers_bad_query_is_a_rejection_with_the_nodes_text() {
    let Some(text) = sample("headers_bad_query.txt") else {
        return;
    };
    let (status, body) = status_sample(&text);
    let c = serve(Routes::from([(
        "GET /cryptarchia/headers".into(),
        (status, "text/plain", body.clone()),
    )]))
    .await;
    let e = c.headers(Some("zz"), None).await.unwrap_err();
    match e.kind {
        ClientErrorKind::Rejected {
            status: 400,
            message,
        } => assert_eq!(message, body),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn mempool_add_tx_refusal_keeps_status_and_text() {
    let Some(text) = sample("mempool_add_tx_devnode_shape.txt") else {
        return;
    };
    let (status, body) = status_sample(&text);
    let c = serve(Routes::from([(
        "POST /mempool/add/tx".into(),
        (status, "text/plain", body),
    )]))
    .await;
    let e = c
        .submit_raw(&serde_json::json!({"from": "a"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(422));
    assert!(e.to_string().contains("missing field `mantle_tx`"), "{e}");
}

#[tokio::test]
async fn wallet_balance_decodes() {
    let Some(body) = sample("wallet_balance_leader0.json") else {
        return;
    };
    let pk = "8ac1e7f33fe119aea5878da46ad5b5c0b57d9e9645fd6633f0d900a581078911";
    let c = serve(Routes::from([(
        format!("GET /wallet/{pk}/balance"),
        json(body),
    )]))
    .await;
    let b = c.balance(pk).await.unwrap();
    assert_eq!((b.balance, b.address.as_str()), (1000, pk));
    assert!(is_id(&b.tip));
}

#[tokio::test]
async fn testing_sdp_declarations_decode_on_the_testing_surface() {
    let Some(body) = sample("testing_sdp_declarations.json") else {
        return;
    };
    let testing = serve(Routes::from([(
        "GET /mantle/sdp/declarations".into(),
        json(body),
    )]))
    .await;
    let c = NodeClient::new(0, "http://127.0.0.1:9").with_testing_url(Some(testing.base_url()));
    let d = c.sdp_declarations().await.unwrap();
    assert_eq!(d.len(), 3);
    assert!(d.iter().all(|d| d.locators[0].ends_with("/quic-v1")));
    let none = NodeClient::new(0, "http://127.0.0.1:9");
    assert!(matches!(
        none.sdp_declarations().await.unwrap_err().kind,
        ClientErrorKind::Unsupported(_)
    ));
}

#[tokio::test]
async fn openapi_schema_names_the_mempool_fields_the_client_reads() {
    let Some(body) = sample("openapi.json") else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let required: Vec<&str> = v["components"]["schemas"]["MempoolMetrics"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let ours = serde_json::to_value(engine::client::MempoolInfo {
        pending_items: 0,
        last_item_timestamp: 0,
    })
    .unwrap();
    let mut ours: Vec<&str> = ours
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut required = required;
    required.sort_unstable();
    ours.sort_unstable();
    assert_eq!(ours, required);
}

#[tokio::test]
async fn heights_of_three_nodes_decode_and_stay_within_one_block() {
    let Some(body) = sample("heights_3nodes_2s_slots.ndjson") else {
        return;
    };
    let mut last = [0u64; 3];
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let h: Vec<u64> = (0..3)
            .map(|n| v[format!("node{n}")][0].as_u64().unwrap())
            .collect();
        let (lo, hi) = (h.iter().min().unwrap(), h.iter().max().unwrap());
        assert!(hi - lo <= 1, "{line}");
        for n in 0..3 {
            assert!(h[n] >= last[n], "heights never go down: {line}");
            last[n] = h[n];
        }
    }
}

#[tokio::test]
async fn devnode_only_endpoints_are_absent_from_the_reference_nodes_public_api() {
    let Some(text) = sample("devnode_only_endpoints_status.txt") else {
        return;
    };
    // the reference node, default dialect, deployed for real
    let base = tempfile::tempdir().unwrap();
    let topo = engine::topology::TopologyBuilder::new()
        .nodes(1)
        .slot_duration(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    let net = common::deploy(base.path(), &topo).await;
    let api = net.clients().get(0).unwrap().base_url().to_owned();
    let http = reqwest::Client::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (path, status) = line.split_once(" -> ").expect("path -> status");
        assert_eq!(status.trim(), "404");
        let url = format!("{api}{}", path.trim());
        let get = http.get(&url).send().await.unwrap().status().as_u16();
        let post = http
            .post(&url)
            .json(&"x")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(
            matches!(get, 404 | 405) && matches!(post, 404 | 405),
            "{path}: GET {get}, POST {post} on the reference node; the real node has no such path"
        );
    }
    net.teardown(false).await.unwrap();
}

mod common;
