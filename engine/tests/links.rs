//! The link layer over real TCP: a length-delimited echo server behind a proxy, a client that
//! speaks the same framing (tokio-util's `LengthDelimitedCodec` defaults, as the reference node
//! does), and every fault checked by what actually arrives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use engine::links::{Fault, LinkConfig, LinkId, LinkLayer, LinkSel};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

/// How long a test waits for something that should happen at once on localhost.
const PROMPT: Duration = Duration::from_secs(3);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);

/// A node stand-in: reports every frame it receives and echoes it back.
struct Server {
    addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Vec<u8>>,
    connections: Arc<AtomicUsize>,
}

async fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, received) = mpsc::unbounded_channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut frames = FramedRead::new(r, LengthDelimitedCodec::new());
                while let Some(Ok(frame)) = frames.next().await {
                    let _ = tx.send(frame.to_vec());
                    if w.write_all(&encode(&frame)).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Server {
        addr,
        received,
        connections,
    }
}

fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

struct Client {
    rx: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    tx: OwnedWriteHalf,
}

#[derive(Debug, PartialEq)]
enum Recv {
    Frame(Vec<u8>),
    Closed,
    TimedOut,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let sock = tokio::time::timeout(PROMPT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connect to {addr} timed out after {PROMPT:?}"))
            .unwrap();
        sock.set_nodelay(true).unwrap();
        let (r, w) = sock.into_split();
        Client {
            rx: FramedRead::new(r, LengthDelimitedCodec::new()),
            tx: w,
        }
    }

    async fn send(&mut self, payload: &[u8]) {
        self.tx.write_all(&encode(payload)).await.unwrap();
    }

    async fn recv(&mut self, within: Duration) -> Recv {
        match tokio::time::timeout(within, self.rx.next()).await {
            Err(_) => Recv::TimedOut,
            Ok(Some(Ok(frame))) => Recv::Frame(frame.to_vec()),
            Ok(_) => Recv::Closed,
        }
    }

    async fn ping(&mut self, payload: &[u8]) -> Duration {
        let start = Instant::now();
        self.send(payload).await;
        assert_eq!(
            self.recv(PROMPT).await,
            Recv::Frame(payload.to_vec()),
            "echo of a ping"
        );
        start.elapsed()
    }
}

/// Waits until `n` frames reached the server, or says how many did by the deadline.
async fn received(server: &mut Server, n: usize, within: Duration) -> Vec<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout_at(deadline, server.received.recv()).await {
            Ok(Some(frame)) => got.push(frame),
            _ => break,
        }
    }
    got
}

/// Two nodes: 0 dials 1 through the proxy of link 0->1.
async fn pair(seed: u64) -> (LinkLayer, Server, SocketAddr) {
    let layer = LinkLayer::new(seed);
    let srv = server().await;
    let proxy = layer.add_link(0, 1, srv.addr).await.unwrap();
    (layer, srv, proxy)
}

#[tokio::test]
async fn forwards_frames_intact_and_counts_them() {
    let (layer, mut srv, proxy) = pair(1).await;
    let mut client = Client::connect(proxy).await;
    let sizes = [0usize, 1, 3, 4, 5, 100, 4096, 65_535, 65_536, 300_000];
    for (i, &len) in sizes.iter().enumerate() {
        let payload: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
        client.send(&payload).await;
        assert_eq!(
            client.recv(PROMPT).await,
            Recv::Frame(payload.clone()),
            "frame of {len} bytes"
        );
    }
    assert_eq!(
        received(&mut srv, sizes.len(), PROMPT).await.len(),
        sizes.len()
    );
    let stats = layer.stats();
    let wire: u64 = sizes.iter().map(|&l| l as u64 + 4).sum();
    assert_eq!(
        stats[&LinkId::new(0, 1)].frames_forwarded,
        sizes.len() as u64
    );
    assert_eq!(stats[&LinkId::new(0, 1)].bytes_forwarded, wire);
    assert_eq!(
        stats[&LinkId::new(1, 0)].frames_forwarded,
        sizes.len() as u64
    );
    assert_eq!(stats[&LinkId::new(0, 1)].connections_accepted, 1);
}

#[tokio::test]
async fn oversized_length_closes_the_connection() {
    let layer = LinkLayer::with_config(LinkConfig {
        max_frame_len: 1024,
        ..LinkConfig::new(1)
    });
    let srv = server().await;
    let proxy = layer.add_link(0, 1, srv.addr).await.unwrap();
    let mut client = Client::connect(proxy).await;
    client.tx.write_all(&(1025u32).to_be_bytes()).await.unwrap();
    assert_eq!(client.recv(PROMPT).await, Recv::Closed);
    assert_eq!(layer.stats()[&LinkId::new(0, 1)].bad_frames, 1);
    // The proxy itself keeps serving.
    let mut client = Client::connect(proxy).await;
    client.ping(b"still here").await;
}

#[tokio::test]
async fn partition_closes_refuses_and_heal_restores() {
    let layer = LinkLayer::new(2);
    let (s1, s2) = (server().await, server().await);
    let p01 = layer.add_link(0, 1, s1.addr).await.unwrap();
    let p02 = layer.add_link(0, 2, s2.addr).await.unwrap();
    let mut across = Client::connect(p01).await;
    let mut within = Client::connect(p02).await;
    across.ping(b"a").await;
    within.ping(b"b").await;

    layer.partition(&[vec![0, 2], vec![1]]).unwrap();
    assert_eq!(
        across.recv(PROMPT).await,
        Recv::Closed,
        "the connection across the cut closes"
    );
    within.ping(b"c").await;

    // New connections across the cut are accepted and closed at once.
    let mut refused = Client::connect(p01).await;
    assert_eq!(refused.recv(PROMPT).await, Recv::Closed);
    assert_eq!(
        s1.connections.load(Ordering::SeqCst),
        1,
        "the target never saw the refused dial"
    );
    let stats = layer.stats()[&LinkId::new(0, 1)];
    assert_eq!((stats.connections_cut, stats.connections_refused), (1, 1));

    assert_eq!(layer.heal(), 1);
    let mut again = Client::connect(p01).await;
    again.ping(b"d").await;
    within.ping(b"e").await;
}

#[tokio::test]
async fn isolate_blocks_both_directions_of_one_node() {
    let layer = LinkLayer::new(3);
    let (s1, s0) = (server().await, server().await);
    let p01 = layer.add_link(0, 1, s1.addr).await.unwrap();
    let p10 = layer.add_link(1, 0, s0.addr).await.unwrap();
    let id = layer.isolate(1).unwrap();
    assert_eq!(Client::connect(p01).await.recv(PROMPT).await, Recv::Closed);
    assert_eq!(Client::connect(p10).await.recv(PROMPT).await, Recv::Closed);
    layer.revert(id).unwrap();
    Client::connect(p01).await.ping(b"x").await;
    Client::connect(p10).await.ping(b"y").await;
}

#[tokio::test]
async fn one_direction_cut_drops_only_that_direction() {
    let (layer, mut srv, proxy) = pair(4).await;
    let mut client = Client::connect(proxy).await;
    client.ping(b"warm").await;
    received(&mut srv, 1, PROMPT).await;

    // Replies cut: the server still gets every frame, the client gets no echo, the connection stays.
    let down = layer.cut(1, 0).unwrap();
    client.send(b"one").await;
    assert_eq!(received(&mut srv, 1, PROMPT).await, vec![b"one".to_vec()]);
    assert_eq!(client.recv(QUIET).await, Recv::TimedOut);
    layer.revert(down).unwrap();
    client.ping(b"two").await;
    received(&mut srv, 1, PROMPT).await;

    // Requests cut: nothing reaches the server.
    let up = layer.cut(0, 1).unwrap();
    client.send(b"three").await;
    assert!(
        received(&mut srv, 1, QUIET).await.is_empty(),
        "a frame crossed the cut 0->1"
    );
    assert_eq!(client.recv(QUIET).await, Recv::TimedOut);
    layer.revert(up).unwrap();
    client.ping(b"four").await;
    assert_eq!(layer.stats()[&LinkId::new(0, 1)].frames_dropped, 1);
    assert_eq!(layer.stats()[&LinkId::new(1, 0)].frames_dropped, 1);
}

#[tokio::test]
async fn latency_delays_each_direction_and_keeps_order() {
    let (layer, _srv, proxy) = pair(5).await;
    let mut client = Client::connect(proxy).await;
    let base = client.ping(b"base").await;

    layer
        .set_latency(
            LinkSel::Link(0, 1),
            Duration::from_millis(100),
            Duration::ZERO,
        )
        .unwrap();
    let rtt = client.ping(b"slow").await;
    assert!(
        rtt >= Duration::from_millis(100),
        "one-way latency 100ms, round trip {rtt:?}"
    );
    assert!(
        rtt < Duration::from_millis(100) + base + Duration::from_millis(400),
        "round trip {rtt:?}"
    );

    layer
        .set_latency(
            LinkSel::Link(1, 0),
            Duration::from_millis(100),
            Duration::ZERO,
        )
        .unwrap();
    let rtt = client.ping(b"slower").await;
    assert!(
        rtt >= Duration::from_millis(200),
        "100ms each way, round trip {rtt:?}"
    );

    layer.clear(LinkSel::Both(0, 1)).unwrap();
    assert!(layer.active_faults().is_empty());
    let rtt = client.ping(b"fast").await;
    assert!(
        rtt < Duration::from_millis(100),
        "cleared, round trip {rtt:?}"
    );

    // Jitter larger than the gap between frames must not reorder them.
    layer
        .set_latency(
            LinkSel::All,
            Duration::from_millis(20),
            Duration::from_millis(15),
        )
        .unwrap();
    for i in 0..50u8 {
        client.send(&[i]).await;
    }
    for i in 0..50u8 {
        assert_eq!(
            client.recv(PROMPT).await,
            Recv::Frame(vec![i]),
            "frame {i} in order"
        );
    }
}

/// Sends `n` numbered frames through a layer with loss `p` on 0->1 and returns which arrived.
async fn survivors(seed: u64, p: f64, n: u32) -> Vec<u32> {
    let (layer, mut srv, proxy) = pair(seed).await;
    layer.set_loss(LinkSel::Link(0, 1), p).unwrap();
    let mut client = Client::connect(proxy).await;
    for i in 0..n {
        client.send(&i.to_be_bytes()).await;
    }
    // Lift the loss only once the proxy has decided every frame; the sentinel after it then
    // always arrives and marks the end.
    let deadline = Instant::now() + PROMPT;
    loop {
        let s = layer.stats()[&LinkId::new(0, 1)];
        if s.frames_dropped + s.frames_forwarded == u64::from(n) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "proxy decided {} of {n} frames after {PROMPT:?}",
            s.frames_dropped + s.frames_forwarded
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    layer.clear(LinkSel::All).unwrap();
    client.send(b"end").await;
    let mut got = Vec::new();
    loop {
        let frame = received(&mut srv, 1, PROMPT).await;
        let frame = frame.first().expect("the sentinel frame arrived");
        if frame == b"end" {
            break;
        }
        got.push(u32::from_be_bytes(frame[..4].try_into().unwrap()));
    }
    let stats = layer.stats()[&LinkId::new(0, 1)];
    assert_eq!(
        stats.frames_dropped + stats.frames_forwarded,
        u64::from(n) + 1
    );
    got
}

#[tokio::test]
async fn loss_drops_whole_frames_reproducibly() {
    assert!(
        survivors(6, 1.0, 100).await.is_empty(),
        "loss 1.0 must drop every frame"
    );
    assert_eq!(
        survivors(6, 0.0, 300).await.len(),
        300,
        "loss 0.0 must drop none"
    );
    let half = survivors(6, 0.5, 1000).await;
    assert!(
        (400..=600).contains(&half.len()),
        "loss 0.5 delivered {} of 1000",
        half.len()
    );
    assert!(
        half.windows(2).all(|w| w[0] < w[1]),
        "survivors stay in order"
    );
    assert_eq!(
        survivors(6, 0.5, 1000).await,
        half,
        "the same seed drops the same frames"
    );
    assert_ne!(
        survivors(7, 0.5, 1000).await,
        half,
        "another seed drops other frames"
    );
}

#[tokio::test]
async fn bandwidth_limits_throughput() {
    let (layer, mut srv, proxy) = pair(8).await;
    let mut client = Client::connect(proxy).await;
    let chunk = vec![7u8; 10_000];

    let start = Instant::now();
    for _ in 0..20 {
        client.send(&chunk).await;
    }
    assert_eq!(received(&mut srv, 20, PROMPT).await.len(), 20);
    let unlimited = start.elapsed();

    layer.set_bandwidth(LinkSel::Link(0, 1), 400_000).unwrap();
    let start = Instant::now();
    for _ in 0..20 {
        client.send(&chunk).await;
    }
    assert_eq!(
        received(&mut srv, 20, Duration::from_secs(5)).await.len(),
        20
    );
    let limited = start.elapsed();
    // 200 KB at 400 KB/s: 0.5 s.
    assert!(
        limited >= Duration::from_millis(450),
        "limited transfer took {limited:?}"
    );
    assert!(
        limited < Duration::from_secs(3),
        "limited transfer took {limited:?}"
    );
    assert!(
        unlimited < Duration::from_millis(400),
        "unlimited transfer took {unlimited:?}"
    );
}

#[tokio::test]
async fn faults_stack_and_revert_in_the_log() {
    let (layer, mut srv, proxy) = pair(9).await;
    let height = Arc::new(AtomicUsize::new(10));
    let h = height.clone();
    layer.set_note_source(Some(Arc::new(move || {
        Some(format!("height {}", h.load(Ordering::SeqCst)))
    })));
    let mut client = Client::connect(proxy).await;

    let lat = layer
        .set_latency(
            LinkSel::Link(0, 1),
            Duration::from_millis(80),
            Duration::ZERO,
        )
        .unwrap();
    let loss = layer.set_loss(LinkSel::Link(0, 1), 1.0).unwrap();
    client.send(b"lost").await;
    assert!(
        received(&mut srv, 1, QUIET).await.is_empty(),
        "loss stacked on latency drops"
    );
    height.store(11, Ordering::SeqCst);
    layer.revert(loss).unwrap();
    let rtt = client.ping(b"slow").await;
    assert!(
        rtt >= Duration::from_millis(80),
        "latency still in force after the loss reverted: {rtt:?}"
    );
    let part = layer
        .apply(
            Fault::Partition(vec![vec![0], vec![1]]),
            Some("split-brain".into()),
        )
        .unwrap();
    assert_eq!(
        layer
            .active_faults()
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        vec![lat, part]
    );
    height.store(12, Ordering::SeqCst);
    assert_eq!(layer.shutdown(), 2);
    assert!(layer.active_faults().is_empty());

    let log: Vec<_> = layer
        .log()
        .iter()
        .map(|r| (r.id, r.reverted, r.note.clone().unwrap_or_default()))
        .collect();
    let expected = vec![
        (lat, false, "height 10".to_string()),
        (loss, false, "height 10".to_string()),
        (loss, true, "height 11".to_string()),
        (part, false, "split-brain".to_string()),
        (part, true, "height 12".to_string()),
        (lat, true, "height 12".to_string()),
    ];
    assert_eq!(log, expected);
    let elapsed: Vec<_> = layer.log().iter().map(|r| r.elapsed).collect();
    assert!(
        elapsed.windows(2).all(|w| w[0] <= w[1]),
        "records in time order"
    );
    assert_eq!(
        layer.log()[3].links,
        vec![LinkId::new(0, 1), LinkId::new(1, 0)]
    );
    assert!(
        layer.log()[0]
            .to_string()
            .contains("apply fault#0 latency 80ms on link 0->1 [0->1] (height 10)")
    );

    // After shutdown the proxy no longer serves.
    assert_eq!(client.recv(PROMPT).await, Recv::Closed);
}

#[tokio::test]
async fn clear_reverts_part_of_a_wide_fault() {
    let layer = LinkLayer::new(10);
    let (s1, s2) = (server().await, server().await);
    let p01 = layer.add_link(0, 1, s1.addr).await.unwrap();
    let p02 = layer.add_link(0, 2, s2.addr).await.unwrap();
    let all = layer
        .set_latency(LinkSel::All, Duration::from_millis(150), Duration::ZERO)
        .unwrap();
    assert_eq!(layer.clear(LinkSel::Node(1)).unwrap(), 1);
    let fast = Client::connect(p01).await.ping(b"a").await;
    let slow = Client::connect(p02).await.ping(b"b").await;
    assert!(
        fast < Duration::from_millis(150),
        "links of node 1 cleared: {fast:?}"
    );
    assert!(
        slow >= Duration::from_millis(300),
        "links of node 2 still delayed: {slow:?}"
    );
    let active = layer.active_faults();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, all);
    assert_eq!(active[0].links, vec![LinkId::new(0, 2), LinkId::new(2, 0)]);
}

#[tokio::test]
async fn set_target_redirects_new_connections() {
    let (layer, mut old, proxy) = pair(11).await;
    let mut new = server().await;
    layer.set_target(0, 1, new.addr).unwrap();
    Client::connect(proxy).await.ping(b"moved").await;
    assert_eq!(received(&mut new, 1, PROMPT).await.len(), 1);
    assert!(received(&mut old, 1, QUIET).await.is_empty());
    assert_eq!(
        layer.set_target(1, 0, new.addr).unwrap_err().to_string(),
        "no link 1->0"
    );
}

#[tokio::test]
async fn bad_requests_are_errors_not_panics() {
    let (layer, _srv, _proxy) = pair(12).await;
    let target = "127.0.0.1:9".parse().unwrap();
    assert_eq!(
        layer.add_link(0, 1, target).await.unwrap_err().to_string(),
        "link 0->1 already has a proxy"
    );
    assert_eq!(
        layer.add_link(2, 2, target).await.unwrap_err().to_string(),
        "link 2->2 connects a node to itself"
    );
    assert_eq!(
        layer.isolate(5).unwrap_err().to_string(),
        "node 5 has no links"
    );
    assert_eq!(layer.cut(0, 3).unwrap_err().to_string(), "no link 0->3");
    assert!(
        layer
            .set_loss(LinkSel::All, -0.1)
            .unwrap_err()
            .to_string()
            .starts_with("loss probability -0.1 is invalid")
    );
    let id = layer.cut(0, 1).unwrap();
    layer.revert(id).unwrap();
    assert_eq!(
        layer.revert(id).unwrap_err().to_string(),
        format!("{id} is not active")
    );
    assert_eq!(layer.log().len(), 2, "rejected requests leave no record");
}

#[tokio::test]
async fn unreachable_target_closes_the_client() {
    let layer = LinkLayer::new(13);
    // A port that was just free: nothing listens there.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = layer.add_link(0, 1, dead).await.unwrap();
    assert_eq!(
        Client::connect(proxy).await.recv(PROMPT).await,
        Recv::Closed
    );
}

#[tokio::test]
async fn dropping_the_last_handle_closes_every_connection() {
    let (layer, _srv, proxy) = pair(14).await;
    let mut client = Client::connect(proxy).await;
    client.ping(b"alive").await;
    let clone = layer.clone();
    drop(layer);
    client.ping(b"a clone keeps it alive").await;
    drop(clone);
    assert_eq!(client.recv(PROMPT).await, Recv::Closed);
    let refused = tokio::time::timeout(PROMPT, TcpStream::connect(proxy))
        .await
        .expect("dial within deadline");
    if let Ok(sock) = refused {
        // The listener may still be closing; then the connection must end at once.
        let (r, _w) = sock.into_split();
        let mut rx = FramedRead::new(r, LengthDelimitedCodec::new());
        let next = tokio::time::timeout(PROMPT, rx.next())
            .await
            .expect("closed within deadline");
        assert!(
            !matches!(next, Some(Ok(_))),
            "a dropped layer still forwarded"
        );
    }
}

/// A frame shaped as the reference node's p2p message of `kind` (`{"type": kind, ..}`).
fn message(kind: &str, n: u32) -> Vec<u8> {
    format!(r#"{{"type":"{kind}","n":{n}}}"#).into_bytes()
}

fn n_of(frame: &[u8]) -> (String, u32) {
    let v: serde_json::Value = serde_json::from_slice(frame).unwrap();
    (
        v["type"].as_str().unwrap().to_string(),
        v["n"].as_u64().unwrap() as u32,
    )
}

#[tokio::test]
async fn dropping_one_message_kind_spares_the_others_until_reverted() {
    use engine::links::{MessageKind, Tamper};
    let (layer, mut srv, proxy) = pair(11).await;
    let mut client = Client::connect(proxy).await;
    let id = layer
        .set_tamper(LinkSel::Link(0, 1), MessageKind::Tx, Tamper::Drop(1.0))
        .unwrap();
    for (i, kind) in ["tx", "block", "tx", "tip", "handshake", "chain"]
        .iter()
        .enumerate()
    {
        client.send(&message(kind, i as u32)).await;
    }
    client.send(b"\x00not json").await;
    let got: Vec<(String, u32)> = received(&mut srv, 4, PROMPT)
        .await
        .iter()
        .filter(|f| f.first() == Some(&b'{'))
        .map(|f| n_of(f))
        .collect();
    assert_eq!(
        got,
        vec![
            ("block".into(), 1),
            ("tip".into(), 3),
            ("handshake".into(), 4),
            ("chain".into(), 5)
        ]
    );
    assert_eq!(
        received(&mut srv, 1, PROMPT).await,
        vec![b"\x00not json".to_vec()]
    );
    assert!(
        received(&mut srv, 1, QUIET).await.is_empty(),
        "no tx got through"
    );
    let stats = layer.stats()[&LinkId::new(0, 1)];
    assert_eq!((stats.frames_tampered, stats.frames_dropped), (2, 2));
    let log = layer.log();
    assert!(
        log.last().unwrap().fault.to_string() == "drop tx messages (p 1) on link 0->1",
        "{log:?}"
    );
    layer.revert(id).unwrap();
    client.send(&message("tx", 9)).await;
    let back = received(&mut srv, 1, PROMPT).await;
    assert_eq!(
        n_of(&back[0]),
        ("tx".into(), 9),
        "reverted: transactions flow"
    );
}

#[tokio::test]
async fn a_delayed_kind_is_overtaken_and_duplicates_arrive_twice() {
    use engine::links::{MessageKind, Tamper};
    let (layer, mut srv, proxy) = pair(12).await;
    let mut client = Client::connect(proxy).await;
    layer
        .set_tamper(
            LinkSel::All,
            MessageKind::Tx,
            Tamper::Delay(Duration::from_millis(300)),
        )
        .unwrap();
    layer
        .set_tamper(LinkSel::All, MessageKind::Block, Tamper::Duplicate(1.0))
        .unwrap();
    let sent = Instant::now();
    client.send(&message("tx", 0)).await;
    client.send(&message("tx", 1)).await;
    client.send(&message("block", 2)).await;
    let first = received(&mut srv, 2, PROMPT).await;
    assert!(
        sent.elapsed() < Duration::from_millis(300),
        "the block overtook the delayed transactions"
    );
    assert_eq!(
        first.iter().map(|f| n_of(f)).collect::<Vec<_>>(),
        vec![("block".into(), 2), ("block".into(), 2)],
        "the block arrives twice"
    );
    let later = received(&mut srv, 2, PROMPT).await;
    assert!(sent.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        later.iter().map(|f| n_of(f)).collect::<Vec<_>>(),
        vec![("tx".into(), 0), ("tx".into(), 1)],
        "delayed transactions keep their own order"
    );
}

#[tokio::test]
async fn reordering_shuffles_one_kind_within_its_window_and_loses_nothing() {
    use engine::links::{MessageKind, Tamper};
    let (layer, mut srv, proxy) = pair(13).await;
    let mut client = Client::connect(proxy).await;
    layer
        .set_tamper(
            LinkSel::All,
            MessageKind::Sync,
            Tamper::Reorder(Duration::from_millis(100)),
        )
        .unwrap();
    for i in 0..40 {
        client.send(&message("tip", i)).await;
    }
    let got: Vec<u32> = received(&mut srv, 40, PROMPT)
        .await
        .iter()
        .map(|f| n_of(f).1)
        .collect();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..40).collect::<Vec<_>>(), "every frame arrives");
    assert_ne!(
        got, sorted,
        "within 100 ms, 40 frames sent at once arrive out of order"
    );
    // values are checked when applied
    let bad = layer
        .set_tamper(LinkSel::All, MessageKind::Tx, Tamper::Drop(2.0))
        .unwrap_err()
        .to_string();
    assert!(bad.contains("message probability"), "{bad}");
}
