//! The proxy of one directed link: accepts the connections node `from` dials, dials node `to`, and
//! forwards whole frames both ways through the fault state of each direction.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::fault::LinkId;
use super::state::{Counters, LinkFaults, LinkState};
use super::tamper::MessageKind;

/// Frames held between the reader and the writer of one direction; beyond this the reader stops
/// reading, so a slow (delayed or bandwidth-limited) link pushes back on the sender through TCP.
const QUEUE_FRAMES: usize = 4096;

/// Settings every proxy of a layer shares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProxySettings {
    pub seed: u64,
    pub max_frame_len: usize,
    pub connect_timeout: Duration,
    pub udp_idle_timeout: Duration,
}

/// One proxy: its listening address and where it forwards to.
pub(crate) struct Proxy {
    pub id: LinkId,
    pub local: SocketAddr,
    target: Mutex<SocketAddr>,
}

impl Proxy {
    pub(crate) fn new(id: LinkId, local: SocketAddr, target: SocketAddr) -> Self {
        Self {
            id,
            local,
            target: Mutex::new(target),
        }
    }

    pub(crate) fn target(&self) -> SocketAddr {
        *self.target.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_target(&self, addr: SocketAddr) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = addr;
    }
}

/// The two directions a proxied connection carries: `up` is `from->to` (bytes the dialling node
/// sends), `down` is `to->from` (the replies).
#[derive(Clone)]
pub(crate) struct Directions {
    pub up: Arc<LinkState>,
    pub down: Arc<LinkState>,
}

impl Directions {
    fn partitioned(&self) -> bool {
        self.up.current().partitioned || self.down.current().partitioned
    }
}

/// Accepts connections until `shutdown`; each connection gets its own task.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    dirs: Directions,
    settings: ProxySettings,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(link = %proxy.id, error = %e, "link proxy failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        Counters::bump(&dirs.up.counters.connections_accepted, 1);
        if dirs.partitioned() {
            // Accept-then-close, so the dialling node sees a disconnect and retries later.
            Counters::bump(&dirs.up.counters.connections_refused, 1);
            drop(client);
            continue;
        }
        let conn = Connection {
            proxy: proxy.clone(),
            dirs: dirs.clone(),
            settings,
            shutdown: shutdown.clone(),
        };
        tokio::spawn(conn.run(client));
    }
}

struct Connection {
    proxy: Arc<Proxy>,
    dirs: Directions,
    settings: ProxySettings,
    shutdown: CancellationToken,
}

impl Connection {
    async fn run(self, client: TcpStream) {
        let target = self.proxy.target();
        let server = tokio::select! {
            _ = self.shutdown.cancelled() => return,
            dialled = timeout(self.settings.connect_timeout, TcpStream::connect(target)) => dialled,
        };
        let server = match server {
            Ok(Ok(server)) => server,
            Ok(Err(e)) => {
                tracing::debug!(link = %self.proxy.id, %target, error = %e, "link proxy could not dial its target");
                return;
            }
            Err(_) => {
                tracing::debug!(link = %self.proxy.id, %target, timeout = ?self.settings.connect_timeout, "link proxy timed out dialling its target");
                return;
            }
        };
        // Frames are small and latency-sensitive; Nagle would add up to 40 ms per frame.
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_rx, client_tx) = client.into_split();
        let (server_rx, server_tx) = server.into_split();

        let conn_no = self.dirs.up.next_connection();
        let up = pump(
            client_rx,
            server_tx,
            self.dirs.up.clone(),
            self.rng(self.dirs.up.id, conn_no),
            self.settings,
        );
        let down = pump(
            server_rx,
            client_tx,
            self.dirs.down.clone(),
            self.rng(self.dirs.down.id, conn_no),
            self.settings,
        );

        let mut up_faults = self.dirs.up.faults.subscribe();
        let mut down_faults = self.dirs.down.faults.subscribe();
        // `wait_for` also sees a partition that began before the subscription.
        let partitioned = async {
            tokio::select! {
                _ = up_faults.wait_for(|f| f.partitioned) => {}
                _ = down_faults.wait_for(|f| f.partitioned) => {}
            }
        };

        tokio::select! {
            result = async { tokio::try_join!(up, down) } => {
                if let Err(e) = result {
                    tracing::debug!(link = %self.proxy.id, error = %e, "link proxy connection ended");
                }
            }
            _ = partitioned => {
                Counters::bump(&self.dirs.up.counters.connections_cut, 1);
                tracing::debug!(link = %self.proxy.id, "link proxy closed a connection across a partition");
            }
            _ = self.shutdown.cancelled() => {}
        }
        // Dropping both sockets here closes the connection on both sides.
    }

    /// A random stream per (seed, direction, connection number), so a replayed run drops and
    /// jitters the same frames.
    fn rng(&self, link: LinkId, conn_no: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.settings.seed);
        let mix = (link.from as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add((link.to as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
            .wrapping_add(conn_no.wrapping_mul(0x1656_67B1_9E37_79F9));
        rng.set_stream(mix);
        rng
    }
}

/// A frame waiting to be written: length prefix and payload in one buffer, so one write sends it.
/// Frames leave by due time, then in the order they were read (`seq`).
struct Pending {
    due: Instant,
    seq: u64,
    bytes: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// When each frame read may leave, and how many copies: the link's latency keeps frames in order
/// (jitter never reorders them); a message-kind fault may drop a frame, hold it apart so others
/// overtake it (delay), give it a random due time within a window (reorder) or send it twice.
struct Schedule {
    rng: ChaCha8Rng,
    seq: u64,
    /// The latest due time given to an in-order frame.
    last_due: Instant,
    /// The latest due time given to a delayed frame of each kind (delayed frames of one kind
    /// stay in order among themselves).
    last_kind_due: [Instant; 3],
}

/// What to do with one frame.
enum Fate {
    Dropped {
        tampered: bool,
    },
    Send {
        due: Instant,
        copies: u8,
        tampered: bool,
    },
}

impl Schedule {
    fn new(rng: ChaCha8Rng) -> Self {
        let now = Instant::now();
        Self {
            rng,
            seq: 0,
            last_due: now,
            last_kind_due: [now; 3],
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn decide(&mut self, faults: &LinkFaults, frame: &[u8]) -> Fate {
        if faults.partitioned
            || faults.cut
            || faults.loss.is_some_and(|p| self.rng.random::<f64>() < p)
        {
            return Fate::Dropped { tampered: false };
        }
        let now = Instant::now();
        let base = match faults.latency {
            None => now,
            Some((delay, jitter)) => now + jittered(delay, jitter, &mut self.rng),
        };
        let kind = if faults.tampering() {
            MessageKind::of_frame(frame)
        } else {
            None
        };
        let Some(kind) = kind else {
            self.last_due = self.last_due.max(base);
            return Fate::Send {
                due: self.last_due,
                copies: 1,
                tampered: false,
            };
        };
        let t = faults.tamper[kind.index()];
        if t.drop.is_some_and(|p| self.rng.random::<f64>() < p) {
            return Fate::Dropped { tampered: true };
        }
        let mut tampered = false;
        let due = if let Some(d) = t.delay {
            tampered = true;
            let due = (base + d).max(self.last_kind_due[kind.index()]);
            self.last_kind_due[kind.index()] = due;
            due
        } else if let Some(w) = t.reorder {
            tampered = true;
            let w_ns = w.as_nanos().min(u64::MAX as u128) as u64;
            base + Duration::from_nanos(self.rng.random_range(0..=w_ns))
        } else {
            self.last_due = self.last_due.max(base);
            self.last_due
        };
        let copies = if t.duplicate.is_some_and(|p| self.rng.random::<f64>() < p) {
            tampered = true;
            2
        } else {
            1
        };
        Fate::Send {
            due,
            copies,
            tampered,
        }
    }
}

/// Forwards one direction frame by frame until the reader closes cleanly (then half-closes the
/// writer) or either side fails.
async fn pump<R, W>(
    reader: R,
    mut writer: W,
    link: Arc<LinkState>,
    rng: ChaCha8Rng,
    settings: ProxySettings,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE_FRAMES);

    let reading = {
        let link = link.clone();
        async move {
            let mut reader = BufReader::with_capacity(64 * 1024, reader);
            let mut schedule = Schedule::new(rng);
            while let Some(bytes) = read_frame(&mut reader, &link, settings.max_frame_len).await? {
                let (due, copies) = match schedule.decide(&link.current(), &bytes) {
                    Fate::Dropped { tampered } => {
                        Counters::bump(&link.counters.frames_dropped, 1);
                        Counters::bump(&link.counters.bytes_dropped, bytes.len() as u64);
                        if tampered {
                            Counters::bump(&link.counters.frames_tampered, 1);
                        }
                        continue;
                    }
                    Fate::Send {
                        due,
                        copies,
                        tampered,
                    } => {
                        if tampered {
                            Counters::bump(&link.counters.frames_tampered, 1);
                        }
                        (due, copies)
                    }
                };
                if copies > 1 {
                    let pending = Pending {
                        due,
                        seq: schedule.next_seq(),
                        bytes: bytes.clone(),
                    };
                    if tx.send(pending).await.is_err() {
                        return Err(writer_stopped());
                    }
                }
                let pending = Pending {
                    due,
                    seq: schedule.next_seq(),
                    bytes,
                };
                if tx.send(pending).await.is_err() {
                    return Err(writer_stopped());
                }
            }
            Ok::<(), io::Error>(())
            // `tx` drops here, which lets the writer drain and half-close.
        }
    };

    let writing = async move {
        // Frames by due time; at most QUEUE_FRAMES held, so a slow link still pushes back.
        let mut held: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
        let mut reader_done = false;
        loop {
            while held
                .peek()
                .is_some_and(|Reverse(p)| p.due <= Instant::now())
            {
                let Some(Reverse(frame)) = held.pop() else {
                    break;
                };
                if let Some(bytes_per_sec) = link.current().bandwidth {
                    let done = link.reserve(frame.bytes.len(), bytes_per_sec);
                    sleep_until(done).await;
                }
                writer.write_all(&frame.bytes).await?;
                Counters::bump(&link.counters.frames_forwarded, 1);
                Counters::bump(&link.counters.bytes_forwarded, frame.bytes.len() as u64);
            }
            let next_due = held.peek().map(|Reverse(p)| p.due);
            if reader_done && next_due.is_none() {
                break;
            }
            tokio::select! {
                frame = rx.recv(), if !reader_done && held.len() < QUEUE_FRAMES => match frame {
                    Some(f) => held.push(Reverse(f)),
                    None => reader_done = true,
                },
                _ = sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
            }
        }
        let _ = writer.shutdown().await;
        Ok::<(), io::Error>(())
    };

    tokio::try_join!(reading, writing).map(|_| ())
}

fn writer_stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the writer has stopped")
}

/// Reads one length-prefixed frame (4-byte big-endian length, then payload). `None` on a clean
/// end of stream between frames; an error on a truncated frame or a length over the cap.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    link: &LinkState,
    max_frame_len: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    if reader.read(&mut header[..1]).await? == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut header[1..]).await?;
    let len = u32::from_be_bytes(header) as usize;
    if len > max_frame_len {
        Counters::bump(&link.counters.bad_frames, 1);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "frame length {len} on link {} exceeds the cap of {max_frame_len} bytes",
                link.id
            ),
        ));
    }
    let mut bytes = vec![0u8; 4 + len];
    bytes[..4].copy_from_slice(&header);
    reader.read_exact(&mut bytes[4..]).await?;
    Ok(Some(bytes))
}

/// `delay` plus a uniform offset in `[-jitter, +jitter]`.
pub(crate) fn jittered(delay: Duration, jitter: Duration, rng: &mut ChaCha8Rng) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let jitter_ns = jitter.as_nanos().min(u64::MAX as u128 / 4) as u64;
    let offset = rng.random_range(0..=2 * jitter_ns);
    (delay + Duration::from_nanos(offset)).saturating_sub(jitter)
}
