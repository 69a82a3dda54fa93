//! Added latency of the UDP relay with no fault: ping-pong round trips of one small datagram to a
//! UDP echo server, directly and through a link's UDP relay. Each round trip crosses the relay
//! twice (request and reply), so the added latency per datagram is half the added round-trip
//! time. Target: at most 200 µs median per datagram.
//!
//! `cargo run -p nomos-script-engine --example bench_udp [--release] -- [round_trips] [payload_bytes]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::links::{LinkId, LinkLayer};
use tokio::net::UdpSocket;

const TARGET_US: f64 = 200.0;

#[path = "common/latency.rs"]
mod latency;

use latency::{RoundTrip, interleaved, p50_p99, print_round_trip, us, warm_up};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (rounds, payload) = latency::args(5_000, 1_200)?;

    let echo = echo_server().await?;
    let links = LinkLayer::new(0);
    let relay = links.add_udp_link(0, 1, echo).await?;

    // Interleave the two paths in blocks so machine noise hits both alike.
    let mut d = Pinger::connect(echo, payload).await?;
    let mut r = Pinger::connect(relay, payload).await?;
    warm_up(&mut d, &mut r).await?;
    let (mut direct, mut relayed) = interleaved(&mut d, &mut r, rounds).await?;

    let (d50, d99) = p50_p99(&mut direct);
    let (r50, r99) = p50_p99(&mut relayed);
    let added50 = (us(r50) - us(d50)) / 2.0;
    let added99 = (us(r99) - us(d99)) / 2.0;
    println!(
        "UDP relay, no fault: {} round trips of a {payload}-byte datagram each way",
        direct.len()
    );
    print_round_trip("direct", (d50, d99));
    print_round_trip("relayed", (r50, r99));
    println!(
        "  added per datagram (half the round-trip difference): median {added50:>6.1} µs   p99 {added99:>6.1} µs   (target: at most {TARGET_US:.0} µs median: {})",
        if added50 <= TARGET_US {
            "met"
        } else {
            "MISSED"
        }
    );
    let stats = links.stats();
    let (up, down) = (&stats[&LinkId::new(0, 1)], &stats[&LinkId::new(1, 0)]);
    println!(
        "  relay forwarded {} datagrams 0->1 and {} 1->0, dropped {}",
        up.frames_forwarded,
        down.frames_forwarded,
        up.frames_dropped + down.frames_dropped
    );
    links.shutdown();
    Ok(())
}

struct Pinger {
    sock: UdpSocket,
    datagram: Vec<u8>,
}

impl Pinger {
    async fn connect(addr: SocketAddr, payload: usize) -> std::io::Result<Self> {
        let sock = UdpSocket::bind("127.0.0.1:0").await?;
        sock.connect(addr).await?;
        Ok(Self {
            sock,
            datagram: vec![0xAB; payload],
        })
    }
}

impl RoundTrip for Pinger {
    async fn round_trip(&mut self) -> std::io::Result<Duration> {
        let mut reply = [0u8; 65_535];
        let start = Instant::now();
        self.sock.send(&self.datagram).await?;
        let n = tokio::time::timeout(Duration::from_secs(5), self.sock.recv(&mut reply))
            .await
            .map_err(|_| std::io::Error::other("no echo within 5s"))??;
        if n != self.datagram.len() {
            return Err(std::io::Error::other(format!(
                "echo of {n} bytes, sent {}",
                self.datagram.len()
            )));
        }
        Ok(start.elapsed())
    }
}

/// Echoes each datagram back to its sender.
async fn echo_server() -> std::io::Result<SocketAddr> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = sock.local_addr()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if sock.send_to(&buf[..n], from).await.is_err() {
                return;
            }
        }
    });
    Ok(addr)
}
