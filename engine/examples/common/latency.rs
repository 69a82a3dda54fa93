//! What the link-layer latency benches (`bench_links`, `bench_udp`) share: their arguments,
//! round trips on two paths interleaved in blocks, and percentiles in microseconds.

use std::time::Duration;

/// Round trips made on each path before any is measured.
pub const WARMUP: usize = 500;

/// `[round_trips] [payload_bytes]` from the command line, each with its default.
pub fn args(rounds: usize, payload: usize) -> Result<(usize, usize), String> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = match args.next() {
        Some(a) => a
            .parse()
            .map_err(|e| format!("round_trips {a:?} is not a count: {e}"))?,
        None => rounds,
    };
    let payload: usize = match args.next() {
        Some(a) => a
            .parse()
            .map_err(|e| format!("payload_bytes {a:?} is not a size: {e}"))?,
        None => payload,
    };
    Ok((rounds, payload))
}

/// One path to measure: a socket that sends a message and waits for its echo.
pub trait RoundTrip {
    /// One message there and back; how long it took.
    fn round_trip(&mut self) -> impl Future<Output = std::io::Result<Duration>>;
}

/// [`WARMUP`] round trips on each of `a` and `b`, not measured.
pub async fn warm_up(a: &mut impl RoundTrip, b: &mut impl RoundTrip) -> std::io::Result<()> {
    for _ in 0..WARMUP {
        a.round_trip().await?;
        b.round_trip().await?;
    }
    Ok(())
}

/// At least `rounds` round trips on each of `a` and `b`, interleaved in blocks of 100 so machine
/// noise hits both alike; the durations of each.
pub async fn interleaved(
    a: &mut impl RoundTrip,
    b: &mut impl RoundTrip,
    rounds: usize,
) -> std::io::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
    for _ in 0..rounds.div_ceil(100) {
        for _ in 0..100 {
            on_a.push(a.round_trip().await?);
        }
        for _ in 0..100 {
            on_b.push(b.round_trip().await?);
        }
    }
    Ok((on_a, on_b))
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i]
}

/// The median and the 99th percentile of `samples`.
pub fn p50_p99(samples: &mut [Duration]) -> (Duration, Duration) {
    (percentile(samples, 0.50), percentile(samples, 0.99))
}

/// `  {path} round trip: median … µs   p99 … µs`, the path's name padded to line up.
pub fn print_round_trip(path: &str, (p50, p99): (Duration, Duration)) {
    println!(
        "  {path:<8} round trip: median {:>8.1} µs   p99 {:>8.1} µs",
        us(p50),
        us(p99)
    );
}
