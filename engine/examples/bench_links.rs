//! Added latency of the link layer with no fault: ping-pong round trips of one small
//! length-delimited frame to an echo server, directly and through a link proxy. Each round trip
//! crosses the proxy twice (request and reply), so the added latency per frame is half the added
//! round-trip time.
//!
//! The frames are shaped as the reference node's transaction messages (`{"type":"tx",..}`); a
//! second pass measures again with a message-tampering fault in force on another kind (blocks),
//! so every frame is classified on its way through.
//!
//! `cargo run -p nomos-script-engine --example bench_links [--release] -- [round_trips] [payload_bytes]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::links::LinkLayer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/latency.rs"]
mod latency;

use latency::{RoundTrip, interleaved, p50_p99, print_round_trip, us, warm_up};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (rounds, payload) = latency::args(10_000, 256)?;

    let echo = echo_server().await?;
    let links = LinkLayer::new(0);
    let proxy = links.add_link(0, 1, echo).await?;

    // Interleave the two paths in blocks so machine noise hits both alike.
    let mut d = Pinger::connect(echo, payload).await?;
    let mut p = Pinger::connect(proxy, payload).await?;
    warm_up(&mut d, &mut p).await?;
    let (mut direct, mut proxied) = interleaved(&mut d, &mut p, rounds).await?;

    let (d50, d99) = p50_p99(&mut direct);
    let (p50, p99) = p50_p99(&mut proxied);
    println!(
        "link layer, no fault: {} round trips of a {payload}-byte frame each way",
        direct.len()
    );
    print_round_trip("direct", (d50, d99));
    print_round_trip("proxied", (p50, p99));
    println!(
        "  added per frame (half the round-trip difference): median {:>6.1} µs   p99 {:>6.1} µs",
        (us(p50) - us(d50)) / 2.0,
        (us(p99) - us(d99)) / 2.0
    );
    // Again, with block messages tampered with: every frame is now classified.
    links.set_tamper(
        engine::links::LinkSel::All,
        engine::links::MessageKind::Block,
        engine::links::Tamper::Drop(1.0),
    )?;
    let (mut direct2, mut tampered) = interleaved(&mut d, &mut p, rounds).await?;
    let (d50, d99) = p50_p99(&mut direct2);
    let (t50, t99) = p50_p99(&mut tampered);
    println!(
        "  with block messages tampered with (each tx frame classified, none touched): added per frame median {:>6.1} µs   p99 {:>6.1} µs",
        (us(t50) - us(d50)) / 2.0,
        (us(t99) - us(d99)) / 2.0
    );
    let stats = &links.stats()[&engine::links::LinkId::new(0, 1)];
    println!(
        "  proxy forwarded {} frames 0->1, dropped {}, tampered {}",
        stats.frames_forwarded, stats.frames_dropped, stats.frames_tampered
    );
    links.shutdown();
    Ok(())
}

struct Pinger {
    sock: TcpStream,
    frame: Vec<u8>,
    reply: Vec<u8>,
}

impl Pinger {
    async fn connect(addr: SocketAddr, payload: usize) -> std::io::Result<Self> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        // a transaction message of `payload` bytes: {"type":"tx","pad":"xxx..."}
        let head = br#"{"type":"tx","pad":""#;
        let mut body = head.to_vec();
        body.resize(payload.max(head.len() + 2) - 2, b'x');
        body.extend_from_slice(br#""}"#);
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let reply = vec![0; frame.len()];
        Ok(Self { sock, frame, reply })
    }
}

impl RoundTrip for Pinger {
    async fn round_trip(&mut self) -> std::io::Result<Duration> {
        let start = Instant::now();
        self.sock.write_all(&self.frame).await?;
        tokio::time::timeout(
            Duration::from_secs(5),
            self.sock.read_exact(&mut self.reply),
        )
        .await
        .map_err(|_| std::io::Error::other("no echo within 5s"))??;
        Ok(start.elapsed())
    }
}

/// Echoes each length-delimited frame back whole.
async fn echo_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut header = [0u8; 4];
                    if sock.read_exact(&mut header).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes(header) as usize;
                    buf.clear();
                    buf.extend_from_slice(&header);
                    buf.resize(4 + len, 0);
                    if sock.read_exact(&mut buf[4..]).await.is_err()
                        || sock.write_all(&buf).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}
