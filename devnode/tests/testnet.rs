//! Real `nomos-devnode` processes on loopback: consensus, gossip, sync,
//! storage, the API, and each testing fault.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::Duration;

use common::{NetSpec, Testnet, block_txs, key, wait_for, wait_heights};
use devnode::config::TestingFaults;
use devnode::crypto::{SignedTx, public_hex};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_reach_height_10_and_agree_on_the_lib() {
    let net = Testnet::start(NetSpec::new("four", 4).full_mesh());
    wait_heights(&net, &[0, 1, 2, 3], 10, T).await;
    for i in 0..4 {
        let n = net.network(i).await.unwrap();
        assert_eq!(
            n.n_peers, 3,
            "node {i}: one peer per other node despite both sides dialling: {n:?}"
        );
        assert_eq!(net.info(i).await.unwrap().mode, "Online");
    }
    let lib = wait_for(
        Duration::from_secs(10),
        "all nodes to report the same lib",
        || async {
            let mut libs = HashSet::new();
            for i in 0..4 {
                libs.insert(net.info(i).await?.lib);
            }
            if libs.len() == 1 {
                Ok(libs.into_iter().next().unwrap())
            } else {
                Err(format!("libs {libs:?}"))
            }
        },
    )
    .await;
    net.block(0, &lib).await.expect("node 0 serves its lib");
    let lib_height = net
        .canonical(0)
        .await
        .unwrap()
        .iter()
        .position(|id| *id == lib)
        .expect("the lib is canonical on node 0");
    assert!(lib_height >= 5, "lib height {lib_height} (k = 5)");
    // Every node holds the same lib on its canonical chain.
    for i in 1..4 {
        let ids = net.canonical(i).await.unwrap();
        assert!(ids.contains(&lib), "node {i} canonical chain lacks the lib");
    }
    let produced: u64 = {
        let mut sum = 0;
        for i in 0..4 {
            sum += net
                .metric(i, "logos_blockchain_blocks_produced_total")
                .await;
        }
        sum
    };
    assert!(produced >= 10, "blocks produced by all nodes: {produced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_included_in_a_block_every_node_serves() {
    let mut spec = NetSpec::new("transfer", 3);
    spec.wallets = vec![("transfer/alice".into(), 1_000)];
    let net = Testnet::start(spec);
    wait_heights(&net, &[0, 1, 2], 2, T).await;
    let far_end = net.stream(2).await;

    let alice = key("transfer/alice");
    let bob = public_hex(&key("transfer/bob"));
    let tx = SignedTx::sign(&alice, &bob, 250, 0);
    net.submit(0, &tx)
        .await
        .expect("node 0 accepts the transfer");
    let id = tx.id();

    let block_id = wait_for(T, "the transfer in a block on node 2's stream", || async {
        let events = far_end.lock().unwrap();
        events
            .iter()
            .find(|b| b.tx_hashes.contains(&id))
            .map(|b| b.id.clone())
            .ok_or_else(|| format!("{} stream lines, none with the tx", events.len()))
    })
    .await;
    for i in 0..3 {
        let block = wait_for(
            T,
            &format!("node {i} to serve block {block_id}"),
            || async {
                net.block(i, &block_id)
                    .await
                    .ok_or_else(|| "null".to_owned())
            },
        )
        .await;
        assert_eq!(block_txs(&block), vec![tx.clone()], "node {i}");
        assert_eq!(
            block["transactions"][0]["mantle_tx"]["hash"], id,
            "node {i}"
        );
        wait_for(T, &format!("bob's balance on node {i}"), || async {
            let acc = net.account(i, &bob).await?;
            if acc.balance == 250 {
                Ok(())
            } else {
                Err(format!("{acc:?}"))
            }
        })
        .await;
    }
    let alice_acc = net.account(1, &public_hex(&alice)).await.unwrap();
    assert_eq!((alice_acc.balance, alice_acc.nonce), (750, 1));
    assert!(
        net.metric(0, "logos_blockchain_transactions_included_total")
            .await
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_waiting_on_a_follower_reaches_a_leader_that_connects_later() {
    let mut spec = NetSpec::new("late-peer", 2);
    spec.links = vec![];
    spec.stake = vec![None, Some(1)];
    spec.wallets = vec![("late-peer/alice".into(), 100)];
    let net = Testnet::start(spec);
    wait_heights(&net, &[1], 2, T).await;
    let bob = public_hex(&key("late-peer/bob"));
    let tx = SignedTx::sign(&key("late-peer/alice"), &bob, 7, 0);
    net.submit(0, &tx)
        .await
        .expect("the follower accepts the transfer");

    let (status, body) = net.dial(0, &net.p2p_addr(1)).await;
    assert_eq!((status, body.as_str()), (200, "null"));
    for i in 0..2 {
        wait_for(T, &format!("bob's balance on node {i}"), || async {
            let acc = net.account(i, &bob).await?;
            if acc.balance == 7 {
                Ok(())
            } else {
                Err(format!("{acc:?}"))
            }
        })
        .await;
    }
    let (status, body) = net.dial(0, "no-port").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not host:port"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_keeps_its_chain_and_catches_up() {
    // A star where only the hub dials: the restarted leaf waits for the hub
    // to redial it, and must not fork off meanwhile.
    let mut spec = NetSpec::new("restart", 3);
    spec.links = vec![(0, 1), (0, 2)];
    spec.f = 0.9;
    let mut net = Testnet::start(spec);
    wait_heights(&net, &[2], 14, T).await;
    let before = net.info(2).await.unwrap();
    net.kill(2);
    // Long enough that the hub's redial backoff has grown to its cap.
    tokio::time::sleep(Duration::from_millis(3200)).await;

    net.spawn(2);
    let after = wait_for(T, "node 2's API after restart", || net.info(2)).await;
    assert!(
        after.height >= before.height,
        "restarted node lost blocks: height {} < {} before the kill",
        after.height,
        before.height
    );
    assert!(
        net.block(2, &before.tip).await.is_some(),
        "restarted node no longer serves its old tip {}",
        before.tip
    );
    wait_for(T, "node 2 to rejoin the others' chain", || async {
        let (a, b) = (net.canonical(0).await?, net.canonical(2).await?);
        let (i0, i2) = (net.info(0).await?, net.info(2).await?);
        // Same block at a height both passed, beyond the restart point.
        let h = a.len().min(b.len()) - 2;
        if h > after.height as usize + 3 && a[h] == b[h] && i2.mode == "Online" {
            Ok(())
        } else {
            Err(format!("node 0 {i0:?}, node 2 {i2:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_groups_converge_after_a_link_is_added_at_run_time() {
    let mut spec = NetSpec::new("groups", 4);
    spec.links = vec![(0, 1), (2, 3)];
    spec.k = 50;
    spec.f = 0.6;
    let net = Testnet::start(spec);
    wait_heights(&net, &[0, 1, 2, 3], 6, T).await;
    let (left, right) = (
        net.canonical(0).await.unwrap(),
        net.canonical(2).await.unwrap(),
    );
    assert_ne!(left[3], right[3], "unlinked groups grew the same chain");
    let streams = [net.stream(0).await, net.stream(2).await];

    // A multiaddr, as the real node's dial_peer takes.
    let port = net.nodes[2].config.network.listen.port();
    let (status, body) = net
        .dial(1, &format!("/ip4/127.0.0.1/udp/{port}/quic-v1"))
        .await;
    assert_eq!((status, body.as_str()), (200, "null"));

    wait_for(T, "all nodes to share one chain", || async {
        let mut chains = Vec::new();
        for i in 0..4 {
            chains.push(net.canonical(i).await?);
        }
        let h = chains.iter().map(Vec::len).min().unwrap() - 2;
        let at_h: HashSet<&String> = chains.iter().map(|c| &c[h]).collect();
        let at_3: HashSet<&String> = chains.iter().map(|c| &c[3]).collect();
        if at_h.len() == 1 && at_3.len() == 1 {
            Ok(())
        } else {
            Err(format!("{} distinct blocks at height {h}", at_h.len()))
        }
    })
    .await;
    // No reorg lines (as on the real node): a branch switch shows in the
    // stream as a block whose parent is not the previous line's block.
    let switches: Vec<usize> = streams
        .iter()
        .enumerate()
        .filter(|(_, lines)| {
            let lines = lines.lock().unwrap();
            lines.windows(2).any(|w| w[1].parent != w[0].id)
        })
        .map(|(side, _)| side)
        .collect();
    assert!(
        !switches.is_empty(),
        "a branch switch appears on one side's block stream"
    );
    // The losing side abandoned at least 3 blocks of its own branch.
    let now = net.canonical(0).await.unwrap();
    let abandoned: Vec<usize> = [&left, &right]
        .iter()
        .map(|old| {
            let fork = old
                .iter()
                .zip(&now)
                .position(|(a, b)| a != b)
                .unwrap_or(old.len());
            old.len() - fork
        })
        .collect();
    assert!(
        abandoned.iter().any(|&d| d >= 3),
        "the losing side must abandon its own branch; blocks abandoned per side: {abandoned:?}"
    );
    let mut total = 0;
    for i in 0..4 {
        total += net.metric(i, "logos_blockchain_reorgs_total").await;
    }
    assert!(
        total >= 2,
        "both nodes of the losing group reorganise: {total}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_at_height_stops_producing_and_adopting() {
    let mut spec = NetSpec::new("halt", 2);
    spec.faults[1].halt_at_height = Some(4);
    let net = Testnet::start(spec);
    wait_heights(&net, &[0], 12, T).await;
    let halted = net.info(1).await.expect("a halted node still answers");
    assert_eq!(halted.height, 4, "node 1 must stop at height 4: {halted:?}");
    assert_eq!(net.network(1).await.unwrap().n_peers, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_transactions_accepts_but_never_includes() {
    let mut spec = NetSpec::new("drop", 2);
    spec.faults[0] = TestingFaults {
        drop_transactions: true,
        ..TestingFaults::default()
    };
    spec.wallets = vec![("drop/alice".into(), 100)];
    let net = Testnet::start(spec);
    wait_heights(&net, &[0, 1], 2, T).await;
    let bob = public_hex(&key("drop/bob"));
    let tx = SignedTx::sign(&key("drop/alice"), &bob, 10, 0);
    net.submit(0, &tx)
        .await
        .expect("the faulty node still accepts");
    let start = net.info(0).await.unwrap().height;
    wait_heights(&net, &[0, 1], start + 8, T).await;
    for i in 0..2 {
        assert_eq!(net.account(i, &bob).await.unwrap().balance, 0, "node {i}");
    }
    let pool: serde_json::Value = net.get_testing(1, "/mempool/info").await.unwrap();
    assert_eq!(pool["size"], 0, "the transfer was never gossiped");

    // The same transfer sent to the honest node is included everywhere.
    net.submit(1, &tx).await.unwrap();
    for i in 0..2 {
        wait_for(T, &format!("bob's balance on node {i}"), || async {
            let acc = net.account(i, &bob).await?;
            if acc.balance == 10 {
                Ok(())
            } else {
                Err(format!("{acc:?}"))
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_proofs_do_not_move_honest_tips() {
    let mut spec = NetSpec::new("proofs", 2);
    spec.stake = vec![Some(1), None];
    spec.faults[0].invalid_proofs = true;
    let net = Testnet::start(spec);
    wait_heights(&net, &[0], 6, T).await;
    wait_for(T, "node 1 to see its peer", || async {
        let n = net.network(1).await?;
        if n.n_peers == 1 {
            Ok(())
        } else {
            Err(format!("{n:?}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let honest = net.info(1).await.unwrap();
    assert_eq!(
        honest.height, 0,
        "the honest follower adopted invalid blocks: {honest:?}"
    );
    assert!(
        net.log_tail(1).contains("does not verify"),
        "node 1 logs why it refused the blocks:\n{}",
        net.log_tail(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_and_malformed_frames_leave_the_node_running() {
    let mut spec = NetSpec::new("bad", 1);
    spec.wallets = vec![("bad/alice".into(), 100)];
    let net = Testnet::start(spec);
    wait_heights(&net, &[0], 1, T).await;
    let alice = key("bad/alice");
    let bob = public_hex(&key("bad/bob"));

    let (status, body) = net.post_raw(0, "/mempool/add/tx", "{not json".into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Failed to parse the request body as JSON"),
        "{body}"
    );
    // The former devnode shape is refused as the real node refuses it.
    let old_shape = serde_json::to_string(&SignedTx::sign(&alice, &bob, 5, 0)).unwrap();
    let (status, body) = net.post_raw(0, "/mempool/add/tx", old_shape).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("missing field `mantle_tx`"), "{body}");

    let mut forged = SignedTx::sign(&alice, &bob, 5, 0);
    forged.amount = 50;
    let (status, err) = net.submit(0, &forged).await.unwrap_err();
    assert_eq!(status, 500);
    assert!(err.contains("bad signature"), "{err}");

    let (status, err) = net
        .submit(0, &SignedTx::sign(&alice, &bob, 101, 0))
        .await
        .unwrap_err();
    assert_eq!(status, 500);
    assert!(err.contains("insufficient balance"), "{err}");

    let mut other_op = SignedTx::sign(&alice, &bob, 5, 0).to_mantle(net.dialect);
    other_op["mantle_tx"]["ops"][0]["opcode"] = 1.into();
    let (status, err) = net
        .post_raw(0, "/mempool/add/tx", other_op.to_string())
        .await;
    assert_eq!(status, 500);
    assert!(err.contains("unsupported operation"), "{err}");

    let tx = SignedTx::sign(&alice, &bob, 5, 0);
    net.submit(0, &tx).await.unwrap();
    net.submit(0, &tx).await.expect("a duplicate is accepted");
    wait_for(T, "alice's nonce to advance", || async {
        let acc = net.account(0, &public_hex(&alice)).await?;
        if acc.nonce == 1 {
            Ok(())
        } else {
            Err(format!("{acc:?}"))
        }
    })
    .await;
    let (status, err) = net
        .submit(0, &SignedTx::sign(&alice, &bob, 6, 0))
        .await
        .unwrap_err();
    assert_eq!(status, 500);
    assert!(err.contains("nonce too low"), "{err}");

    let (status, unknown) = net
        .get_raw(0, &format!("/cryptarchia/headers?from={}", "ab".repeat(32)))
        .await;
    assert_eq!(status, 500, "{unknown}");
    assert!(unknown.contains("unknown block from"), "{unknown}");
    let (status, bad) = net.get_raw(0, "/cryptarchia/headers?from=abc").await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad.starts_with("Failed to deserialize query string: ")
            && bad.ends_with("invalid string length"),
        "{bad}"
    );
    let info = net.info(0).await.unwrap();
    let tip_to_lib: Vec<String> = net
        .get(0, &format!("/cryptarchia/headers?from={}", info.tip))
        .await
        .unwrap();
    assert_eq!(tip_to_lib.first(), Some(&info.tip));
    assert!(
        tip_to_lib.len() as u64 <= 5 + 1 + 1,
        "tip back to the lib (k = 5)"
    );
    let requests = net
        .metric(
            0,
            "logos_blockchain_api_requests_total{path=\"/mempool/add/tx\"}",
        )
        .await;
    assert!(requests >= 7, "api requests counted by route: {requests}");

    // Malformed frames close that one connection.
    let p2p = net.p2p_addr(0);
    let genesis = devnode::consensus::block::Rules::from_config(&net.nodes[0].config)
        .unwrap()
        .genesis_id;
    let handshake = |version: u32| {
        serde_json::json!({
            "type": "handshake", "version": version, "genesis": genesis,
            "public_key": public_hex(&key("bad/intruder")), "advertise": "127.0.0.1:1"
        })
        .to_string()
    };
    let frame = |payload: &[u8]| {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad json", frame(b"{not json")),
        ("oversized frame", u32::MAX.to_be_bytes().to_vec()),
        ("wrong version", frame(handshake(99).as_bytes())),
        ("bad json after a handshake", {
            let mut f = frame(handshake(1).as_bytes());
            f.extend(frame(b"\x00\x01garbage"));
            f
        }),
        ("oversized frame after a handshake", {
            let mut f = frame(handshake(1).as_bytes());
            f.extend((9u32 * 1024 * 1024).to_be_bytes());
            f
        }),
    ];
    for (what, bytes) in cases {
        let mut s = std::net::TcpStream::connect(&p2p).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&bytes).unwrap();
        let mut sink = Vec::new();
        let closed = s.read_to_end(&mut sink);
        assert!(
            closed.is_ok(),
            "{what}: the node did not close the connection: {closed:?}"
        );
    }
    let height = net.info(0).await.unwrap().height;
    wait_heights(&net, &[0], height + 2, T).await;

    // SIGTERM shuts down gracefully.
    let mut net = net;
    let pid = net.pid(0);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = net.nodes[0].child.take().unwrap();
    let exit = wait_for(
        Duration::from_secs(10),
        "the node to exit after SIGTERM",
        || {
            let r = child.try_wait();
            async move {
                match r {
                    Ok(Some(s)) => Ok(s),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
    assert!(exit.success(), "exit status {exit}");
}

/// A leader told by config to equivocate: its peers record each second block as evidence
/// naming it and keep one chain; the testing surface names bad settings and makes it honest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_leader_is_recorded_by_its_peers_and_made_honest_at_run_time() {
    let mut spec = NetSpec::new("equivocate", 3).full_mesh();
    spec.stake = vec![Some(1), None, None];
    spec.faults[0].byzantine.equivocate = true;
    let net = Testnet::start(spec);
    wait_heights(&net, &[0, 1, 2], 6, T).await;
    let liar = net.nodes[0].config.node.key.clone();
    let liar = public_hex(&devnode::crypto::signing_key_from_hex(&liar).unwrap());
    let seen: serde_json::Value = wait_for(T, "equivocation evidence on node 1", || async {
        let e: serde_json::Value = net.get_testing(1, "/test/evidence").await?;
        if e["equivocations_seen"].as_u64() > Some(0) {
            Ok(e)
        } else {
            Err(format!("{e}"))
        }
    })
    .await;
    let first = &seen["evidence"][0];
    assert_eq!(first["kind"], "equivocation", "{seen}");
    assert_eq!(first["leader"], liar.as_str(), "{seen}");
    assert_eq!(first["ids"].as_array().map(Vec::len), Some(2), "{seen}");
    assert_eq!(seen["equivocations_accepted"], 0, "{seen}");
    assert!(
        net.metric(0, "logos_blockchain_equivocations_made_total")
            .await
            > 0
    );
    assert!(
        net.metric(2, "logos_blockchain_equivocations_seen_total")
            .await
            > 0
    );

    let (code, body) = net
        .post_testing(0, "/test/byzantine", r#"{"equivocat": true}"#.into())
        .await;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("equivocat"), "names the field: {body}");
    let (code, body) = net
        .post_testing(0, "/test/byzantine", r#"{"withhold_ms": 99999999}"#.into())
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("withhold_ms = 99999999"), "{body}");
    let (code, body) = net
        .post_testing(
            0,
            "/test/byzantine",
            r#"{"invalid_txs_per_slot": 3}"#.into(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("invalid_txs 3/slot"), "{body}");
    wait_for(T, "invalid transactions refused by node 1", || async {
        let e: serde_json::Value = net.get_testing(1, "/test/evidence").await?;
        match e["invalid_transactions"].as_u64() {
            Some(n) if n > 0 => Ok(()),
            _ => Err(format!("{e}")),
        }
    })
    .await;
    let (code, body) = net.post_testing(0, "/test/byzantine", "{}".into()).await;
    assert_eq!(code, 200, "{body}");
    let state: serde_json::Value = net.get_testing(0, "/test/byzantine").await.unwrap();
    assert_eq!(state["summary"], "honest", "{state}");
    // honest again: no new equivocation once the blocks in flight have arrived
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = net
        .metric(1, "logos_blockchain_equivocations_seen_total")
        .await;
    let h = net.info(0).await.unwrap().height;
    wait_heights(&net, &[1], h + 5, T).await;
    assert_eq!(
        net.metric(1, "logos_blockchain_equivocations_seen_total")
            .await,
        before
    );
}

/// A sole leader withholding its blocks: its peer stays behind by what it withholds, receives
/// each block once its time is up, and everything once the leader is made honest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withholding_leader_releases_its_blocks_late_and_all_of_them_when_honest() {
    let mut spec = NetSpec::new("withhold", 2);
    spec.stake = vec![Some(1), None];
    spec.f = 0.9;
    spec.faults[0].byzantine.withhold_ms = 1500;
    let net = Testnet::start(spec);
    wait_heights(&net, &[0], 8, T).await;
    let withheld = net.metric(0, "logos_blockchain_blocks_withheld").await;
    let (h0, h1) = (
        net.info(0).await.unwrap().height,
        net.info(1).await.unwrap().height,
    );
    assert!(withheld >= 3, "about 1.5 s of blocks withheld: {withheld}");
    assert!(h1 + 3 <= h0, "the peer is behind by them: {h1} vs {h0}");
    // released after their time: the peer gets there, later
    wait_heights(&net, &[1], h0, T).await;
    let (code, body) = net.post_testing(0, "/test/byzantine", "{}".into()).await;
    assert_eq!(code, 200, "{body}");
    let h0 = net.info(0).await.unwrap().height;
    wait_for(
        Duration::from_secs(2),
        "the peer to hold every block at once",
        || async {
            let h1 = net.info(1).await?.height;
            if h1 >= h0 {
                Ok(())
            } else {
                Err(format!("{h1} < {h0}"))
            }
        },
    )
    .await;
    assert_eq!(net.metric(0, "logos_blockchain_blocks_withheld").await, 0);
}
