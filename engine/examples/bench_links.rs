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

const WARMUP: usize = 500;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = match args.next() {
        Some(a) => a
            .parse()
            .map_err(|e| format!("round_trips {a:?} is not a count: {e}"))?,
        None => 10_000,
    };
    let payload: usize = match args.next() {
        Some(a) => a
            .parse()
            .map_err(|e| format!("payload_bytes {a:?} is not a size: {e}"))?,
        None => 256,
    };

    let echo = echo_server().await?;
    let links = LinkLayer::new(0);
    let proxy = links.add_link(0, 1, echo).await?;

    // Interleave the two paths in blocks so machine noise hits both alike.
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    let mut d = Pinger::connect(echo, payload).await?;
    let mut p = Pinger::connect(proxy, payload).await?;
    for _ in 0..WARMUP {
        d.round_trip().await?;
        p.round_trip().await?;
    }
    for _ in 0..rounds.div_ceil(100) {
        for _ in 0..100 {
            direct.push(d.round_trip().await?);
        }
        for _ in 0..100 {
            proxied.push(p.round_trip().await?);
        }
    }

    let (d50, d99) = (percentile(&mut direct, 0.50), percentile(&mut direct, 0.99));
    let (p50, p99) = (
        percentile(&mut proxied, 0.50),
        percentile(&mut proxied, 0.99),
    );
    println!(
        "link layer, no fault: {} round trips of a {payload}-byte frame each way",
        direct.len()
    );
    println!(
        "  direct   round trip: median {:>8.1} µs   p99 {:>8.1} µs",
        us(d50),
        us(d99)
    );
    println!(
        "  proxied  round trip: median {:>8.1} µs   p99 {:>8.1} µs",
        us(p50),
        us(p99)
    );
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
    let (mut direct2, mut tampered) = (Vec::new(), Vec::new());
    for _ in 0..rounds.div_ceil(100) {
        for _ in 0..100 {
            direct2.push(d.round_trip().await?);
        }
        for _ in 0..100 {
            tampered.push(p.round_trip().await?);
        }
    }
    let (d50, d99) = (
        percentile(&mut direct2, 0.50),
        percentile(&mut direct2, 0.99),
    );
    let (t50, t99) = (
        percentile(&mut tampered, 0.50),
        percentile(&mut tampered, 0.99),
    );
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

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i]
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
