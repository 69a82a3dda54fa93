//! The link layer's UDP relay over real sockets: a plain UDP echo for the basics and a real QUIC
//! implementation (quinn) for what the reference node's transport will see: handshakes, idle
//! timeouts under a partition, RTT under latency, retransmission under loss.
//!
//! Timing bounds are generous on purpose (a loaded 2-core machine must not flake them): lower
//! bounds come from the fault itself, upper bounds leave seconds of slack.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::links::{Fault, LinkConfig, LinkId, LinkLayer, LinkSel, LinkStats};
use quinn::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use quinn::{ClientConfig, Connection, Endpoint, ServerConfig, TransportConfig};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// How long a test waits for something that should happen at once on localhost.
const PROMPT: Duration = Duration::from_secs(5);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(400);
/// QUIC idle timeout of both endpoints: short, so a partition shows within seconds.
const IDLE: Duration = Duration::from_millis(1500);

const UP: LinkId = LinkId { from: 0, to: 1 };
const DOWN: LinkId = LinkId { from: 1, to: 0 };

fn stats(links: &LinkLayer, id: LinkId) -> LinkStats {
    links.stats().get(&id).copied().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Plain UDP

/// A UDP echo server that records the source address of every datagram it receives.
struct Echo {
    addr: SocketAddr,
    sources: Arc<Mutex<Vec<SocketAddr>>>,
}

async fn echo_server() -> Echo {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let sources = Arc::new(Mutex::new(Vec::new()));
    let seen = sources.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            seen.lock().unwrap().push(from);
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    Echo { addr, sources }
}

async fn client(relay: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(relay).await.unwrap();
    socket
}

/// Receives one datagram, or `None` if nothing arrives within `wait`.
async fn recv_within(socket: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65_535];
    loop {
        match timeout(wait, socket.recv(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(n)) => return Some(buf[..n].to_vec()),
            // An ICMP error for an earlier datagram; keep waiting.
            Ok(Err(_)) => continue,
        }
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROMPT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn udp_echo_goes_through_the_relay_with_one_stable_source_per_sender() {
    let echo = echo_server().await;
    let links = LinkLayer::new(1);
    let relay = links.add_udp_link(0, 1, echo.addr).await.unwrap();
    assert_eq!(links.udp_relay_addr(0, 1), Some(relay));
    assert_eq!(links.udp_relays().get(&UP), Some(&relay));
    assert!(links.proxies().is_empty(), "no TCP proxy was asked for");

    let a = client(relay).await;
    let b = client(relay).await;
    for i in 0..20u32 {
        for (name, c) in [("a", &a), ("b", &b)] {
            let msg = format!("{name}{i}");
            c.send(msg.as_bytes()).await.unwrap();
            let reply = recv_within(c, PROMPT).await.expect("an echo");
            assert_eq!(reply, msg.as_bytes());
        }
    }

    let sources: BTreeSet<SocketAddr> = echo.sources.lock().unwrap().iter().copied().collect();
    assert_eq!(
        sources.len(),
        2,
        "one session socket per sender: {sources:?}"
    );
    let own = [a.local_addr().unwrap(), b.local_addr().unwrap()];
    assert!(
        sources.iter().all(|s| !own.contains(s)),
        "the server sees the relay's session sockets, not the senders"
    );
    let up = stats(&links, UP);
    let down = stats(&links, DOWN);
    assert_eq!((up.frames_forwarded, down.frames_forwarded), (40, 40));
    assert_eq!(up.bytes_forwarded, down.bytes_forwarded);
    assert_eq!((up.frames_dropped, down.frames_dropped), (0, 0));
    assert_eq!(up.connections_accepted, 2, "two sessions opened");

    // Errors as the TCP path has them.
    assert!(links.add_udp_link(0, 1, echo.addr).await.is_err());
    assert!(links.add_udp_link(2, 2, echo.addr).await.is_err());
    assert!(links.set_udp_target(5, 6, echo.addr).is_err());

    links.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.send(b"after shutdown").await.ok();
    assert_eq!(
        recv_within(&a, QUIET).await,
        None,
        "shutdown stops the relay"
    );
}

#[tokio::test]
async fn udp_relay_stops_when_the_last_handle_drops_and_shares_state_with_tcp() {
    let echo = echo_server().await;
    let links = LinkLayer::new(5);
    let relay = links.add_udp_link(0, 1, echo.addr).await.unwrap();
    // A TCP proxy on the same direction shares the link's fault state and counters.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    links
        .add_link(0, 1, tcp.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(
        links.stats().len(),
        2,
        "one state per direction: {:?}",
        links.stats()
    );
    let id = links.cut(0, 1).unwrap();
    assert_eq!(links.log()[0].links, vec![UP]);
    let c = client(relay).await;
    c.send(b"cut").await.unwrap();
    assert_eq!(recv_within(&c, QUIET).await, None);
    links.revert(id).unwrap();
    c.send(b"ok").await.unwrap();
    assert_eq!(recv_within(&c, PROMPT).await.as_deref(), Some(&b"ok"[..]));

    let copy = links.clone();
    drop(links);
    c.send(b"still one handle").await.unwrap();
    assert!(recv_within(&c, PROMPT).await.is_some());
    drop(copy);
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(b"no handle").await.ok();
    assert_eq!(
        recv_within(&c, QUIET).await,
        None,
        "dropping the last handle stops the relay"
    );
}

#[tokio::test]
async fn udp_cut_drops_one_direction_and_partition_both_then_heal_restores() {
    let echo = echo_server().await;
    let links = LinkLayer::new(2);
    let relay = links.add_udp_link(0, 1, echo.addr).await.unwrap();
    let c = client(relay).await;
    c.send(b"hello").await.unwrap();
    assert_eq!(
        recv_within(&c, PROMPT).await.as_deref(),
        Some(&b"hello"[..])
    );

    // Cut the replies only: the server still gets every datagram, the client gets none.
    let cut = links.cut(1, 0).unwrap();
    for _ in 0..10 {
        c.send(b"up only").await.unwrap();
    }
    wait_until("10 more datagrams at the server", || {
        echo.sources.lock().unwrap().len() == 11
    })
    .await;
    assert_eq!(recv_within(&c, QUIET).await, None);
    assert_eq!(stats(&links, UP).frames_forwarded, 11);
    wait_until("the 10 replies dropped", || {
        stats(&links, DOWN).frames_dropped == 10
    })
    .await;
    assert_eq!(stats(&links, DOWN).frames_forwarded, 1);
    links.revert(cut).unwrap();
    c.send(b"again").await.unwrap();
    assert_eq!(
        recv_within(&c, PROMPT).await.as_deref(),
        Some(&b"again"[..])
    );

    // A partition drops both directions; nothing reaches the server.
    let before = echo.sources.lock().unwrap().len();
    links.partition(&[vec![0], vec![1]]).unwrap();
    for _ in 0..5 {
        c.send(b"blocked").await.unwrap();
    }
    assert_eq!(recv_within(&c, QUIET).await, None);
    assert_eq!(echo.sources.lock().unwrap().len(), before);
    assert_eq!(stats(&links, UP).frames_dropped, 5);
    assert_eq!(links.heal(), 1);
    c.send(b"healed").await.unwrap();
    assert_eq!(
        recv_within(&c, PROMPT).await.as_deref(),
        Some(&b"healed"[..])
    );

    let log = links.log();
    let lines: Vec<String> = log.iter().map(|r| r.to_string()).collect();
    assert_eq!(log.len(), 4, "{lines:#?}");
    assert!(matches!(log[0].fault, Fault::Cut { from: 1, to: 0 }) && !log[0].reverted);
    assert!(matches!(log[1].fault, Fault::Cut { .. }) && log[1].reverted);
    assert!(matches!(log[2].fault, Fault::Partition(_)) && !log[2].reverted);
    assert!(matches!(log[3].fault, Fault::Partition(_)) && log[3].reverted);
    assert_eq!(log[2].links, vec![UP, DOWN]);
}

/// Sends `count` datagrams through a fresh relay with loss `p` on `0->1`, paced so no socket
/// buffer overflows, and returns the up direction's counters once all were decided.
async fn lossy_run(seed: u64, p: f64, count: u64) -> LinkStats {
    let echo = echo_server().await;
    let links = LinkLayer::new(seed);
    let relay = links.add_udp_link(0, 1, echo.addr).await.unwrap();
    links.set_loss(LinkSel::Link(0, 1), p).unwrap();
    let c = client(relay).await;
    for i in 0..count {
        c.send(&i.to_be_bytes()).await.unwrap();
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    wait_until("every datagram forwarded or dropped", || {
        let s = stats(&links, UP);
        s.frames_forwarded + s.frames_dropped == count
    })
    .await;
    stats(&links, UP)
}

#[tokio::test]
async fn udp_loss_drops_the_seeded_share_and_replays_exactly() {
    let count = 2000;
    let first = lossy_run(7, 0.3, count).await;
    let share = first.frames_dropped as f64 / count as f64;
    assert!((0.25..=0.35).contains(&share), "dropped share {share}");
    let again = lossy_run(7, 0.3, count).await;
    assert_eq!(
        first.frames_dropped, again.frames_dropped,
        "the same seed drops the same datagrams"
    );
    let other = lossy_run(8, 0.3, count).await;
    let share = other.frames_dropped as f64 / count as f64;
    assert!((0.25..=0.35).contains(&share), "dropped share {share}");
}

#[tokio::test]
async fn udp_latency_and_bandwidth_delay_datagrams() {
    let echo = echo_server().await;
    let links = LinkLayer::new(3);
    let relay = links.add_udp_link(0, 1, echo.addr).await.unwrap();
    let c = client(relay).await;

    let latency = links
        .set_latency(
            LinkSel::Link(0, 1),
            Duration::from_millis(100),
            Duration::from_millis(20),
        )
        .unwrap();
    let started = Instant::now();
    c.send(b"slow").await.unwrap();
    assert_eq!(recv_within(&c, PROMPT).await.as_deref(), Some(&b"slow"[..]));
    let rtt = started.elapsed();
    assert!(rtt >= Duration::from_millis(80), "round trip {rtt:?}");
    links.revert(latency).unwrap();

    // 40 datagrams of 1000 bytes at 20 kB/s: the last leaves after about 2 s.
    links.set_bandwidth(LinkSel::Link(0, 1), 20_000).unwrap();
    let payload = vec![7u8; 1000];
    let started = Instant::now();
    for _ in 0..40 {
        c.send(&payload).await.unwrap();
    }
    for _ in 0..40 {
        recv_within(&c, PROMPT)
            .await
            .expect("every paced datagram arrives");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1800),
        "40 kB at 20 kB/s took {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "40 kB at 20 kB/s took {took:?}"
    );
    assert_eq!(stats(&links, UP).frames_dropped, 0);
}

#[tokio::test]
async fn udp_idle_sessions_expire_and_a_new_target_takes_effect() {
    let echo = echo_server().await;
    let other = echo_server().await;
    let links = LinkLayer::with_config(LinkConfig {
        udp_idle_timeout: Duration::from_millis(200),
        ..LinkConfig::new(4)
    });
    let relay = links.add_udp_link(0, 1, echo.addr).await.unwrap();
    let c = client(relay).await;
    c.send(b"one").await.unwrap();
    recv_within(&c, PROMPT).await.expect("an echo");
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.send(b"two").await.unwrap();
    recv_within(&c, PROMPT).await.expect("an echo");
    let sources = echo.sources.lock().unwrap().clone();
    assert_eq!(sources.len(), 2);
    assert_ne!(
        sources[0], sources[1],
        "the idle session was expired and reopened"
    );
    assert_eq!(stats(&links, UP).connections_accepted, 2);

    links.set_udp_target(0, 1, other.addr).unwrap();
    c.send(b"three").await.unwrap();
    recv_within(&c, PROMPT)
        .await
        .expect("an echo from the new target");
    assert_eq!(other.sources.lock().unwrap().len(), 1);
    assert_eq!(echo.sources.lock().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// QUIC (quinn)

fn transport(idle: Duration) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(idle.try_into().unwrap()));
    t.keep_alive_interval(Some(Duration::from_millis(300)));
    Arc::new(t)
}

/// A QUIC echo server on 127.0.0.1: every bidirectional stream echoes what it reads as it
/// arrives. Records each connection's remote address.
struct QuicServer {
    addr: SocketAddr,
    cert: CertificateDer<'static>,
    remotes: Arc<Mutex<Vec<SocketAddr>>>,
    _endpoint: Endpoint,
}

fn install_provider() {
    let _ = quinn::rustls::crypto::ring::default_provider().install_default();
}

fn quic_server() -> QuicServer {
    quic_server_with(IDLE)
}

fn quic_server_with(idle: Duration) -> QuicServer {
    install_provider();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let mut config = ServerConfig::with_single_cert(vec![cert.clone()], key.into()).unwrap();
    config.transport_config(transport(idle));
    let endpoint = Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let remotes = Arc::new(Mutex::new(Vec::new()));
    let seen = remotes.clone();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                seen.lock().unwrap().push(conn.remote_address());
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(Some(n)) = recv.read(&mut buf).await {
                            if send.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                        let _ = send.finish();
                    });
                }
            });
        }
    });
    QuicServer {
        addr,
        cert,
        remotes,
        _endpoint: endpoint,
    }
}

fn quic_client(cert: &CertificateDer<'static>) -> Endpoint {
    quic_client_with(cert, IDLE)
}

fn quic_client_with(cert: &CertificateDer<'static>, idle: Duration) -> Endpoint {
    install_provider();
    let mut roots = quinn::rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut config = ClientConfig::with_root_certificates(Arc::new(roots)).unwrap();
    config.transport_config(transport(idle));
    let mut endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    endpoint
}

/// Connects within `wait`, or returns why not.
async fn connect(
    endpoint: &Endpoint,
    addr: SocketAddr,
    wait: Duration,
) -> Result<Connection, String> {
    let connecting = endpoint
        .connect(addr, "localhost")
        .map_err(|e| e.to_string())?;
    match timeout(wait, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {wait:?}")),
    }
}

/// Sends `data` on a new stream and reads the echo back.
async fn echo_over(conn: &Connection, data: &[u8]) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let writing = async {
        send.write_all(data).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())
    };
    let reading = async {
        recv.read_to_end(data.len() + 1)
            .await
            .map_err(|e| e.to_string())
    };
    let (w, r) = tokio::join!(writing, reading);
    w?;
    r
}

/// Median round trip of `rounds` 8-byte ping-pongs on one stream.
async fn ping_median(conn: &Connection, rounds: usize) -> Duration {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut rtts = Vec::with_capacity(rounds);
    let mut buf = [0u8; 8];
    for i in 0..rounds as u64 {
        let started = Instant::now();
        send.write_all(&i.to_be_bytes()).await.unwrap();
        timeout(PROMPT, recv.read_exact(&mut buf))
            .await
            .expect("a pong in time")
            .unwrap();
        assert_eq!(u64::from_be_bytes(buf), i);
        rtts.push(started.elapsed());
    }
    rtts.sort();
    rtts[rtts.len() / 2]
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_connects_and_exchanges_data_through_the_relay() {
    let server = quic_server();
    let links = LinkLayer::new(10);
    let relay = links.add_udp_link(0, 1, server.addr).await.unwrap();
    let client = quic_client(&server.cert);

    let conn = connect(&client, relay, PROMPT).await.unwrap();
    let data = payload(200_000);
    let echoed = timeout(PROMPT, echo_over(&conn, &data))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, data);

    let remotes = server.remotes.lock().unwrap().clone();
    assert_eq!(remotes.len(), 1);
    assert_ne!(
        remotes[0],
        client.local_addr().unwrap(),
        "the server sees the relay's session socket"
    );
    let (up, down) = (stats(&links, UP), stats(&links, DOWN));
    assert!(up.bytes_forwarded > 200_000, "{up:?}");
    assert!(down.bytes_forwarded > 200_000, "{down:?}");
    assert_eq!(up.frames_dropped + down.frames_dropped, 0);
    conn.close(0u32.into(), b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_partition_times_the_connection_out_and_heal_lets_a_new_one_in() {
    let server = quic_server();
    let links = LinkLayer::new(11);
    let relay = links.add_udp_link(0, 1, server.addr).await.unwrap();
    let client = quic_client(&server.cert);
    let conn = connect(&client, relay, PROMPT).await.unwrap();
    assert_eq!(echo_over(&conn, b"before").await.unwrap(), b"before");

    links.partition(&[vec![0], vec![1]]).unwrap();
    let started = Instant::now();
    let reason = timeout(IDLE + PROMPT, conn.closed())
        .await
        .expect("the connection dies within its idle timeout");
    assert!(
        matches!(reason, quinn::ConnectionError::TimedOut),
        "closed by the idle timeout, not by the peer: {reason}"
    );
    assert!(started.elapsed() >= IDLE / 2, "{:?}", started.elapsed());
    assert!(echo_over(&conn, b"during").await.is_err());
    // A new handshake cannot cross the partition either.
    assert!(connect(&client, relay, IDLE + PROMPT).await.is_err());
    let (up, down) = (stats(&links, UP), stats(&links, DOWN));
    assert!(up.frames_dropped > 0, "{up:?}");

    assert_eq!(links.heal(), 1);
    let conn = connect(&client, relay, PROMPT).await.unwrap();
    assert_eq!(echo_over(&conn, b"after").await.unwrap(), b"after");
    assert!(stats(&links, DOWN).frames_forwarded > down.frames_forwarded);

    let log = links.log();
    assert_eq!(log.len(), 2);
    assert!(matches!(log[0].fault, Fault::Partition(_)) && !log[0].reverted);
    assert!(matches!(log[1].fault, Fault::Partition(_)) && log[1].reverted);
    assert_eq!(log[0].links, vec![UP, DOWN]);
    conn.close(0u32.into(), b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_latency_on_both_directions_adds_two_delays_to_the_rtt() {
    let server = quic_server();
    let links = LinkLayer::new(12);
    let relay = links.add_udp_link(0, 1, server.addr).await.unwrap();
    let client = quic_client(&server.cert);
    let conn = connect(&client, relay, PROMPT).await.unwrap();
    let base = ping_median(&conn, 20).await;

    let id = links
        .set_latency(
            LinkSel::Both(0, 1),
            Duration::from_millis(100),
            Duration::ZERO,
        )
        .unwrap();
    let slow = ping_median(&conn, 20).await;
    let added = slow.saturating_sub(base);
    assert!(
        added >= Duration::from_millis(180) && added < Duration::from_millis(400),
        "added round trip {added:?} (base {base:?}, with latency {slow:?})"
    );
    let estimate = conn.rtt();
    assert!(
        estimate >= Duration::from_millis(100),
        "quinn's RTT estimate follows: {estimate:?}"
    );

    links.revert(id).unwrap();
    let back = ping_median(&conn, 20).await;
    assert!(back < Duration::from_millis(100), "after revert {back:?}");
    let log = links.log();
    assert_eq!(log.len(), 2);
    assert!(matches!(log[0].fault, Fault::Latency { .. }) && !log[0].reverted);
    assert!(log[1].reverted);
    assert_eq!(log[1].links, vec![UP, DOWN]);
    conn.close(0u32.into(), b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_survives_loss_and_the_stats_show_the_share_dropped() {
    // Under 30% loss both ways, probe timeouts back off past a short idle timeout now and
    // then (longer on a loaded machine); this test is about the loss, not the timeout.
    let idle = Duration::from_secs(60);
    let server = quic_server_with(idle);
    let links = LinkLayer::new(13);
    let relay = links.add_udp_link(0, 1, server.addr).await.unwrap();
    let client = quic_client_with(&server.cert, idle);
    let conn = connect(&client, relay, PROMPT).await.unwrap();

    let id = links.set_loss(LinkSel::Both(0, 1), 0.3).unwrap();
    let data = payload(300_000);
    let echoed = timeout(Duration::from_secs(120), echo_over(&conn, &data))
        .await
        .expect("the transfer completes despite the loss")
        .unwrap();
    assert_eq!(echoed, data);
    links.revert(id).unwrap();

    let (up, down) = (stats(&links, UP), stats(&links, DOWN));
    let total =
        up.frames_forwarded + up.frames_dropped + down.frames_forwarded + down.frames_dropped;
    let share = (up.frames_dropped + down.frames_dropped) as f64 / total as f64;
    assert!(total > 400, "{up:?} {down:?}");
    // The handshake datagrams went through before the loss began, so the share is a bit less.
    assert!(
        (0.2..=0.36).contains(&share),
        "dropped share {share}: {up:?} {down:?}"
    );
    assert!(up.frames_dropped > 0 && down.frames_dropped > 0);
    let log = links.log();
    assert_eq!(log.len(), 2);
    assert!(matches!(log[0].fault, Fault::Loss { probability, .. } if probability == 0.3));
    assert!(log[1].reverted);
    conn.close(0u32.into(), b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_one_way_cut_drops_only_that_direction() {
    let server = quic_server();
    let links = LinkLayer::new(14);
    let relay = links.add_udp_link(0, 1, server.addr).await.unwrap();
    let client = quic_client(&server.cert);
    let conn = connect(&client, relay, PROMPT).await.unwrap();
    assert_eq!(echo_over(&conn, b"before").await.unwrap(), b"before");

    let id = links.cut(1, 0).unwrap();
    // Let any reply already inside the relay go out before taking the baseline.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (up0, down0) = (stats(&links, UP), stats(&links, DOWN));
    // The client keeps sending (data, retransmissions, keep-alives); nothing comes back.
    let attempt = timeout(
        Duration::from_millis(800),
        echo_over(&conn, &payload(10_000)),
    )
    .await;
    assert!(
        attempt.is_err() || attempt.unwrap().is_err(),
        "no echo across the cut"
    );
    let (up1, down1) = (stats(&links, UP), stats(&links, DOWN));
    assert!(up1.frames_forwarded > up0.frames_forwarded, "{up1:?}");
    assert_eq!(up1.frames_dropped, up0.frames_dropped, "{up1:?}");
    assert_eq!(down1.frames_forwarded, down0.frames_forwarded, "{down1:?}");
    assert!(down1.frames_dropped > down0.frames_dropped, "{down1:?}");

    links.revert(id).unwrap();
    let log = links.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].links, vec![DOWN]);
    assert!(matches!(log[0].fault, Fault::Cut { from: 1, to: 0 }) && !log[0].reverted);
    assert!(log[1].reverted);
}
