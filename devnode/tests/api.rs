//! The public API of each dialect against the real node's shapes (the
//! samples in /work/shared/real-node/samples/ when present), the node's
//! wallet, the testing surface and the endpoints that are gone. Real
//! `nomos-devnode` processes on loopback.

mod common;

use std::time::Duration;

use common::{NetSpec, Streamed, Testnet, block_txs, key, keys, sample, wait_for, wait_heights};
use devnode::config::ApiDialect;
use devnode::crypto::{SignedTx, public_hex};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn is_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn strs(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Asserts the key set of `got` equals the sample's (when the sample is on
/// this machine) and the documented one.
fn same_keys(what: &str, got: &Value, sample: Option<&Value>, documented: &[&str]) {
    assert_eq!(keys(got), strs(documented), "{what}: {got}");
    if let Some(s) = sample {
        assert_eq!(
            keys(got),
            keys(s),
            "{what}: keys differ from the real node's sample"
        );
    }
}

/// ApiBlock: header keys (as the real node's), proof_of_leadership, no height.
fn check_api_block(block: &Value, dialect: ApiDialect) {
    let range = sample("cryptarchia_blocks_range.json");
    let s = range.as_ref().and_then(|r| r.get(0));
    same_keys("ApiBlock", block, s, &["header", "transactions"]);
    let h = &block["header"];
    same_keys(
        "ApiBlock.header",
        h,
        s.map(|s| &s["header"]),
        &[
            "id",
            "parent_block",
            "slot",
            "block_root",
            "proof_of_leadership",
        ],
    );
    assert!(is_id(&h["id"]) && is_id(&h["parent_block"]) && is_id(&h["block_root"]));
    assert!(h["slot"].is_u64());
    check_pol(
        &h["proof_of_leadership"],
        s.map(|s| &s["header"]["proof_of_leadership"]),
    );
    for tx in block["transactions"].as_array().unwrap() {
        check_api_tx(tx, dialect, true);
    }
}

fn check_pol(pol: &Value, sample: Option<&Value>) {
    same_keys(
        "proof_of_leadership",
        pol,
        sample,
        &[
            "proof",
            "entropy_contribution",
            "leader_key",
            "voucher_cm",
            "public",
        ],
    );
    assert!(
        pol["proof"].as_str().is_some_and(|p| p.len() == 128),
        "{pol}"
    );
    assert!(is_id(&pol["leader_key"]) && is_id(&pol["entropy_contribution"]));
    same_keys(
        "proof_of_leadership.public",
        &pol["public"],
        sample.map(|s| &s["public"]),
        &[
            "slot",
            "epoch_nonce",
            "total_stake",
            "aged_root",
            "latest_root",
        ],
    );
}

fn check_api_tx(tx: &Value, dialect: ApiDialect, with_hash: bool) {
    let mut mantle = vec!["ops"];
    if with_hash {
        mantle.push("hash");
    }
    match dialect {
        ApiDialect::Logos202605 => {
            same_keys("ApiTx", tx, None, &["mantle_tx", "ops_proofs"]);
        }
        ApiDialect::Logos202601 => {
            same_keys(
                "ApiTx",
                tx,
                None,
                &["mantle_tx", "ops_proofs", "ledger_tx_proof"],
            );
            mantle.extend(["ledger_tx", "execution_gas_price", "storage_gas_price"]);
        }
    }
    same_keys("mantle_tx", &tx["mantle_tx"], None, &mantle);
    let op = &tx["mantle_tx"]["ops"][0];
    assert_eq!(op["opcode"], 208, "{tx}");
    same_keys(
        "op payload",
        &op["payload"],
        None,
        &["from", "to", "amount", "nonce"],
    );
    same_keys("op proof", &tx["ops_proofs"][0], None, &["Ed25519Sig"]);
    let parsed = SignedTx::from_mantle(tx).expect("a transfer");
    if with_hash {
        assert_eq!(tx["mantle_tx"]["hash"], parsed.id());
    }
}

/// The streamed block carrying `hash`, waited for.
async fn streamed_with(lines: &std::sync::Mutex<Vec<Streamed>>, hash: &str) -> Streamed {
    wait_for(T, &format!("tx {hash} in a streamed block"), || async {
        let lines = lines.lock().unwrap();
        lines
            .iter()
            .find(|b| b.tx_hashes.iter().any(|h| h == hash))
            .cloned()
            .ok_or_else(|| format!("{} lines", lines.len()))
    })
    .await
}

async fn status_of(net: &Testnet, method: &str, path: &str) -> u16 {
    match method {
        "GET" => net.get_raw(0, path).await.0,
        _ => net.post_raw(0, path, "\"x\"".into()).await.0,
    }
}

/// The wallet on node 0 (key `{name}/wallet`, 1000 funded), a client
/// signed transfer, and 20 transfer-funds in a row from one key.
async fn wallet_and_transfers(net: &Testnet, name: &str) {
    let dialect = net.dialect;
    let wallet = public_hex(&key(&format!("{name}/wallet")));
    let bob = public_hex(&key(&format!("{name}/bob")));
    let stream = net.stream(0).await;

    // Balance: only for keys the wallet knows.
    let balance: Value = net
        .get(0, &format!("/wallet/{wallet}/balance"))
        .await
        .unwrap();
    let mut doc = vec!["tip", "balance", "address"];
    if dialect == ApiDialect::Logos202605 {
        doc.push("notes");
        assert_eq!(balance["notes"], serde_json::json!({}));
    }
    let s = sample("wallet_balance_leader0.json");
    same_keys(
        "wallet balance",
        &balance,
        (dialect == ApiDialect::Logos202601)
            .then_some(s.as_ref())
            .flatten(),
        &doc,
    );
    assert_eq!(
        (balance["balance"].as_u64(), balance["address"].as_str()),
        (Some(1000), Some(wallet.as_str()))
    );
    assert!(is_id(&balance["tip"]));
    let at_tip: Value = net
        .get(
            0,
            &format!(
                "/wallet/{wallet}/balance?tip={}",
                balance["tip"].as_str().unwrap()
            ),
        )
        .await
        .unwrap();
    assert_eq!(at_tip["balance"], 1000);
    let (status, text) = net.get_raw(0, &format!("/wallet/{bob}/balance")).await;
    assert_eq!(
        (status, text.as_str()),
        (
            404,
            "The requested address could not be found in the wallet"
        )
    );
    let (status, _) = net.get_raw(0, "/wallet/nothex/balance").await;
    assert_eq!(status, 400);

    // Refusals: 500 plain text; a wrong body shape: 422.
    let (status, text) = net
        .transfer_funds(0, std::slice::from_ref(&bob), &bob, 1)
        .await;
    assert_eq!(status, 500);
    assert!(
        text.contains("not known to the wallet") || text.contains("known to the wallet"),
        "{text}"
    );
    let (status, text) = net
        .transfer_funds(0, std::slice::from_ref(&wallet), &bob, 5000)
        .await;
    assert_eq!(status, 500);
    assert!(text.contains("insufficient balance"), "{text}");
    let (status, text) = net
        .post_raw(
            0,
            "/wallet/transactions/transfer-funds",
            r#"{"amount":1}"#.into(),
        )
        .await;
    assert_eq!(status, 422, "{text}");

    // One transfer: 201 {hash}, included with that hash.
    let (status, text) = net
        .transfer_funds(0, std::slice::from_ref(&wallet), &bob, 10)
        .await;
    assert_eq!(status, 201, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    same_keys("transfer-funds answer", &answer, None, &["hash"]);
    let hash = answer["hash"].as_str().unwrap().to_owned();
    assert!(is_id(&answer["hash"]));
    let streamed = streamed_with(&stream, &hash).await;
    let block = net
        .block(0, &streamed.id)
        .await
        .expect("the block is served");
    let txs = block_txs(&block);
    assert!(
        txs.iter()
            .any(|t| t.id() == hash && t.from == wallet && t.amount == 10)
    );
    if dialect == ApiDialect::Logos202605 {
        assert!(common::tx_hashes(&block).contains(&hash));
    }

    // A client-signed transfer from another funded key.
    let carol = key(&format!("{name}/carol"));
    let tx = SignedTx::sign(&carol, &bob, 7, 0);
    net.submit(0, &tx).await.expect("accepted");
    streamed_with(&stream, &tx.id()).await;

    // 20 in a row from one key: consecutive nonces, all included.
    let mut hashes = Vec::new();
    for _ in 0..20 {
        let (status, text) = net
            .transfer_funds(0, std::slice::from_ref(&wallet), &bob, 1)
            .await;
        assert_eq!(status, 201, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        hashes.push(v["hash"].as_str().unwrap().to_owned());
    }
    let metrics: Value = net.get(0, "/mantle/metrics").await.unwrap();
    assert!(
        metrics["last_item_timestamp"].as_u64().unwrap() > 0,
        "{metrics}"
    );
    // 10 at once: the nonce is chosen under the state lock, never reused.
    let calls = (0..10).map(|_| net.transfer_funds(0, std::slice::from_ref(&wallet), &bob, 1));
    for (status, text) in futures::future::join_all(calls).await {
        assert_eq!(status, 201, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        hashes.push(v["hash"].as_str().unwrap().to_owned());
    }
    let distinct: std::collections::HashSet<&String> = hashes.iter().collect();
    assert_eq!(distinct.len(), 30, "every transfer has its own nonce");
    for h in &hashes {
        streamed_with(&stream, h).await;
    }
    wait_for(T, "bob's balance", || async {
        let acc = net.account(0, &bob).await?;
        if acc.balance == 10 + 7 + 30 {
            Ok(())
        } else {
            Err(format!("{acc:?}"))
        }
    })
    .await;
    let acc = net.account(0, &wallet).await.unwrap();
    assert_eq!((acc.balance, acc.nonce), (1000 - 40, 31));
    let balance: Value = net
        .get(0, &format!("/wallet/{wallet}/balance"))
        .await
        .unwrap();
    assert_eq!(balance["balance"], 960);
}

fn spec(name: &'static str, dialect: ApiDialect) -> NetSpec {
    let mut spec = NetSpec::new(name, 2).dialect(dialect);
    spec.wallets = vec![
        (format!("{name}/wallet"), 1000),
        (format!("{name}/carol"), 100),
    ];
    spec.wallet_keys[0] = vec![format!("{name}/wallet")];
    spec.testing_api[1] = false;
    spec
}

/// What both dialects share: headers, lib-stream, network, mantle metrics,
/// the testing surface, the endpoints that are gone.
async fn common_routes(net: &Testnet) {
    let dialect = net.dialect;
    let info = net.info(0).await.unwrap();
    let ids: Vec<Value> = net.get(0, "/cryptarchia/headers").await.unwrap();
    assert!(ids.iter().all(is_id) && !ids.is_empty());
    let (status, text) = net.get_raw(0, "/cryptarchia/headers?to=zz").await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with("Failed to deserialize query string"),
        "{text}"
    );
    let to_tip: Vec<String> = net
        .get(
            0,
            &format!("/cryptarchia/headers?from={0}&to={0}", info.tip),
        )
        .await
        .unwrap();
    assert_eq!(to_tip, vec![info.tip.clone()]);

    let lib_lines = net.ndjson(0, "/cryptarchia/lib-stream").await;
    let line = wait_for(T, "a lib-stream line", || async {
        lib_lines
            .lock()
            .unwrap()
            .first()
            .cloned()
            .ok_or_else(|| "none".to_owned())
    })
    .await;
    same_keys(
        "lib-stream line",
        &line,
        sample("cryptarchia_lib_stream.ndjson").as_ref(),
        &["height", "header_id"],
    );
    assert!(is_id(&line["header_id"]) && line["height"].is_u64());

    let n: Value = net.get(0, "/network/info").await.unwrap();
    let mut doc = vec![
        "listen_addresses",
        "peer_id",
        "n_peers",
        "n_connections",
        "n_pending_connections",
    ];
    let peer1 =
        public_hex(&devnode::crypto::signing_key_from_hex(&net.nodes[1].config.node.key).unwrap());
    match dialect {
        ApiDialect::Logos202601 => same_keys(
            "network info",
            &n,
            sample("node0-network_info.json").as_ref(),
            &doc,
        ),
        ApiDialect::Logos202605 => {
            doc.push("connected_peers");
            same_keys("network info", &n, None, &doc);
            assert_eq!(n["connected_peers"], serde_json::json!([peer1]));
        }
    }
    assert_eq!(n["listen_addresses"], serde_json::json!([net.p2p_addr(0)]));
    assert_eq!(
        n["peer_id"].as_str().unwrap(),
        public_hex(&devnode::crypto::signing_key_from_hex(&net.nodes[0].config.node.key).unwrap())
    );
    let m: Value = net.get(0, "/mantle/metrics").await.unwrap();
    same_keys(
        "mantle metrics",
        &m,
        sample("node0-mantle_metrics.json").as_ref(),
        &["pending_items", "last_item_timestamp"],
    );

    // The reference node's own endpoints are gone from the public API.
    let pk = public_hex(&key("anyone"));
    for (method, path) in [
        ("GET", "/metrics".to_owned()),
        ("POST", "/network/connect".to_owned()),
        ("GET", "/mempool/info".to_owned()),
        ("GET", format!("/ledger/account/{pk}")),
        ("POST", "/test/network/dial_peer".to_owned()),
    ] {
        assert_eq!(status_of(net, method, &path).await, 404, "{method} {path}");
    }

    // The testing surface.
    let (status, text) = net
        .get_url(&format!("{}/metrics", net.nodes[0].testing))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("logos_blockchain_height ")
            && text.contains("logos_blockchain_api_requests_total{path=\"/network/info\"}"),
        "{text}"
    );
    let pool: Value = net.get_testing(0, "/mempool/info").await.unwrap();
    assert!(pool["size"].is_u64());
    let acc: Value = net
        .get_testing(0, &format!("/ledger/account/{pk}"))
        .await
        .unwrap();
    assert_eq!(acc, serde_json::json!({"balance": 0, "nonce": 0}));
    let (status, _) = net
        .get_url(&format!("{}/ledger/account/xyz", net.nodes[0].testing))
        .await
        .unwrap();
    assert_eq!(status, 400);
    let (status, text) = net.dial(0, "/ip4/1.2.3.4").await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = net.dial(0, &net.p2p_addr(1)).await;
    assert_eq!((status, text.as_str()), (200, "null"));
    // Absent without testing_api.
    let refused = net
        .get_url(&format!("{}/metrics", net.nodes[1].testing))
        .await;
    assert!(
        refused.is_err(),
        "node 1 has no testing surface: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logos_2026_05_serves_the_real_shapes() {
    let net = Testnet::start(spec("api05", ApiDialect::Logos202605));
    let early: Value = wait_for(T, "node 0's API", || net.get(0, "/cryptarchia/info")).await;
    same_keys("info", &early, None, &["cryptarchia_info", "mode"]);
    wait_heights(&net, &[0, 1], 3, T).await;
    let v: Value = net.get(0, "/cryptarchia/info").await.unwrap();
    same_keys("info", &v, None, &["cryptarchia_info", "mode"]);
    same_keys(
        "cryptarchia_info",
        &v["cryptarchia_info"],
        None,
        &["lib", "lib_slot", "tip", "slot", "height"],
    );
    assert_eq!(v["mode"], serde_json::json!({"Started": "Online"}));

    let stream = net.ndjson(0, "/cryptarchia/events/blocks/stream").await;
    let tip = net.info(0).await.unwrap().tip;
    let block = net.block(0, &tip).await.expect("the tip is served");
    check_api_block(&block, ApiDialect::Logos202605);
    assert_eq!(block["header"]["id"], tip);
    assert!(net.block(0, &"ab".repeat(32)).await.is_none());
    assert_eq!(net.get_raw(0, "/cryptarchia/blocks/xyz").await.0, 400);

    let canonical = net.canonical(0).await.unwrap();
    let range: Vec<Value> = net
        .get(0, "/cryptarchia/blocks?slot_from=0&slot_to=100000")
        .await
        .unwrap();
    assert!(range.len() >= canonical.len().min(512) - 1);
    let ids: Vec<&str> = range
        .iter()
        .map(|b| b["header"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        canonical[..ids.len()]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "oldest first, canonical"
    );
    assert_eq!(
        range[0]["header"]["parent_block"],
        "00".repeat(32),
        "genesis parent is zeros"
    );
    for b in &range {
        check_api_block(b, ApiDialect::Logos202605);
    }
    let one_slot: Vec<Value> = net
        .get(
            0,
            &format!(
                "/cryptarchia/blocks?slot_from={0}&slot_to={0}",
                range[1]["header"]["slot"]
            ),
        )
        .await
        .unwrap();
    assert_eq!(one_slot.len(), 1);
    assert_eq!(
        net.get_raw(0, "/cryptarchia/blocks?slot_from=x&slot_to=1")
            .await
            .0,
        400
    );

    let lines = wait_for(T, "3 block stream lines", || async {
        let l = stream.lock().unwrap();
        if l.len() >= 3 {
            Ok(l.clone())
        } else {
            Err(format!("{} lines", l.len()))
        }
    })
    .await;
    for line in &lines {
        same_keys(
            "stream line",
            line,
            None,
            &["block", "tip", "tip_slot", "lib", "lib_slot"],
        );
        check_api_block(&line["block"], ApiDialect::Logos202605);
    }
    assert_eq!(
        lines[0]["block"]["header"]["id"], lines[0]["tip"],
        "the first line is the tip snapshot"
    );

    for (method, path) in [
        ("POST", "/storage/block"),
        ("GET", "/cryptarchia/blocks/stream"),
    ] {
        assert_eq!(status_of(&net, method, path).await, 404, "{method} {path}");
    }
    common_routes(&net).await;
    wallet_and_transfers(&net, "api05").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logos_2026_01_serves_the_real_shapes() {
    let mut spec = spec("api01", ApiDialect::Logos202601);
    spec.block_explorer[1] = false;
    let net = Testnet::start(spec);
    wait_heights(&net, &[0, 1], 3, T).await;
    let v: Value = net.get(0, "/cryptarchia/info").await.unwrap();
    same_keys(
        "info",
        &v,
        sample("node0-cryptarchia_info.json").as_ref(),
        &["lib", "tip", "slot", "height", "mode"],
    );
    assert_eq!(v["mode"], "Online");

    let stream = net.ndjson(0, "/cryptarchia/blocks/stream").await;
    let tip = net.info(0).await.unwrap().tip;
    let raw = net.block(0, &tip).await.expect("the tip is served");
    let s = sample("storage_block_tip.json");
    same_keys(
        "RawBlock",
        &raw,
        s.as_ref(),
        &["header", "signature", "transactions"],
    );
    same_keys(
        "RawBlock.header",
        &raw["header"],
        s.as_ref().map(|s| &s["header"]),
        &[
            "version",
            "parent_block",
            "slot",
            "block_root",
            "proof_of_leadership",
        ],
    );
    assert_eq!(raw["header"]["version"], "Bedrock");
    check_pol(
        &raw["header"]["proof_of_leadership"],
        s.as_ref().map(|s| &s["header"]["proof_of_leadership"]),
    );
    let sig = raw["signature"].as_array().unwrap();
    assert!(sig.len() == 64 && sig.iter().all(|b| b.as_u64().is_some_and(|b| b < 256)));
    let (status, text) = net
        .post_raw(
            0,
            "/storage/block",
            serde_json::to_string(&"ab".repeat(32)).unwrap(),
        )
        .await;
    assert_eq!((status, text.as_str()), (200, "null"));
    let (status, _) = net.post_raw(0, "/storage/block", "\"xyz\"".into()).await;
    assert_eq!(status, 422);

    let range: Vec<Value> = net
        .get(0, "/cryptarchia/blocks?slot_from=0&slot_to=100000")
        .await
        .unwrap();
    assert!(range.len() >= 3);
    for b in &range {
        check_api_block(b, ApiDialect::Logos202601);
    }
    let lines = wait_for(T, "2 block stream lines", || async {
        let l = stream.lock().unwrap();
        if l.len() >= 2 {
            Ok(l.clone())
        } else {
            Err(format!("{} lines", l.len()))
        }
    })
    .await;
    for line in &lines {
        check_api_block(line, ApiDialect::Logos202601);
    }
    // Without block_explorer, neither is served.
    for path in [
        "/cryptarchia/blocks?slot_from=0&slot_to=10",
        "/cryptarchia/blocks/stream",
    ] {
        let (status, _) = net
            .get_url(&format!("{}{path}", net.nodes[1].api))
            .await
            .unwrap();
        assert_eq!(status, 404, "node 1 {path}");
    }
    for (method, path) in [
        ("GET", format!("/cryptarchia/blocks/{tip}")),
        ("GET", "/cryptarchia/events/blocks/stream".to_owned()),
    ] {
        assert_eq!(status_of(&net, method, &path).await, 404, "{method} {path}");
    }
    common_routes(&net).await;
    wallet_and_transfers(&net, "api01").await;
    // The transfers' hashes and the 2026-01 tx shape in a block.
    let with_txs: Vec<Value> = net
        .get(0, "/cryptarchia/blocks?slot_from=0&slot_to=100000")
        .await
        .unwrap();
    let tx = with_txs
        .iter()
        .flat_map(|b| b["transactions"].as_array().unwrap().clone())
        .next()
        .expect("a block with transactions");
    check_api_tx(&tx, ApiDialect::Logos202601, true);
    let id = with_txs
        .iter()
        .find(|b| !b["transactions"].as_array().unwrap().is_empty())
        .map(|b| b["header"]["id"].as_str().unwrap().to_owned())
        .unwrap();
    let raw = net.block(0, &id).await.unwrap();
    let raw_tx = &raw["transactions"][0];
    check_api_tx(raw_tx, ApiDialect::Logos202601, false);
    assert!(raw_tx["mantle_tx"].get("hash").is_none());
}
