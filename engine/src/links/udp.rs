//! The UDP relay of one directed link: a socket node `from` sends to as the address of node `to`,
//! forwarding each datagram to `to` from a per-source session socket and each reply back to its
//! sender, through the fault state of each direction (see README.md, "UDP relay").

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::fault::LinkId;
use super::proxy::{Directions, ProxySettings, jittered};
use super::state::{Counters, LinkFaults, LinkState};

/// Datagrams held per session and direction waiting for their due time or the bandwidth budget;
/// beyond this new datagrams are dropped (and counted), as a router's full queue would.
const QUEUE_DATAGRAMS: usize = 4096;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// One relay: its socket's address and where it forwards to.
pub(crate) struct UdpRelay {
    pub id: LinkId,
    pub local: SocketAddr,
    target: Mutex<SocketAddr>,
}

impl UdpRelay {
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

    /// Later datagrams go to `addr`; sessions opened for the old target are replaced as soon
    /// as their sender sends again.
    pub(crate) fn set_target(&self, addr: SocketAddr) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = addr;
    }
}

/// A datagram waiting to be sent.
struct Pending {
    due: Instant,
    bytes: Vec<u8>,
}

/// What the relay keeps per sender: the session socket (connected to the target), the queue to
/// its sending task, the up direction's random stream and when the session last saw traffic.
struct Session {
    target: SocketAddr,
    up: mpsc::Sender<Pending>,
    rng: ChaCha8Rng,
    /// FIFO per direction: a datagram is never due before the one queued ahead of it.
    last_due: Instant,
    /// Milliseconds since the relay started, of the last datagram either way.
    last_seen: Arc<AtomicU64>,
    /// Cancelled when the session is dropped (expired, replaced or the relay stopped).
    stop: CancellationToken,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A clock in milliseconds since the relay started, cheap to share with session tasks.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_ms(self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// Whether a datagram in one direction is dropped before any random draw: a partition blocks
/// both directions of the pair (as it closes the TCP connections carrying both), a cut only its
/// own direction.
fn blocked(own: &LinkFaults, other: &LinkFaults) -> bool {
    own.partitioned || other.partitioned || own.cut
}

fn count_dropped(link: &LinkState, len: usize) {
    Counters::bump(&link.counters.frames_dropped, 1);
    Counters::bump(&link.counters.bytes_dropped, len as u64);
}

fn count_forwarded(link: &LinkState, len: usize) {
    Counters::bump(&link.counters.frames_forwarded, 1);
    Counters::bump(&link.counters.bytes_forwarded, len as u64);
}

/// The random stream of one direction of one session, from the layer's seed: the same mix as
/// a TCP connection's, so a replayed run drops and jitters the same datagrams.
fn session_rng(seed: u64, link: LinkId, session_no: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mix = (link.from as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((link.to as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .wrapping_add(session_no.wrapping_mul(0x1656_67B1_9E37_79F9))
        // Kept apart from the TCP connection of the same number on the same link.
        .wrapping_add(0x5544_5050);
    rng.set_stream(mix);
    rng
}

/// Decides one datagram after `blocked` passed: loss, then the due time under latency ± jitter,
/// kept FIFO after `last_due`. `None` when lost.
fn schedule(faults: &LinkFaults, rng: &mut ChaCha8Rng, last_due: &mut Instant) -> Option<Instant> {
    if faults.loss.is_some_and(|p| rng.random::<f64>() < p) {
        return None;
    }
    let now = Instant::now();
    let due = match faults.latency {
        None => now,
        Some((delay, jitter)) => now + jittered(delay, jitter, rng),
    };
    *last_due = (*last_due).max(due);
    Some(*last_due)
}

/// Where a session socket binds: the loopback address for a loopback target, else the relay's
/// own IP (a Docker gateway, say), else any address of the target's family.
fn session_bind(relay_ip: IpAddr, target: SocketAddr) -> SocketAddr {
    let ip = match (target.ip(), relay_ip) {
        (IpAddr::V4(t), _) if t.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (IpAddr::V6(t), _) if t.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        (IpAddr::V4(_), IpAddr::V4(r)) if !r.is_loopback() => relay_ip,
        (IpAddr::V6(_), IpAddr::V6(r)) if !r.is_loopback() => relay_ip,
        (IpAddr::V4(_), _) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (IpAddr::V6(_), _) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// A connected, non-blocking session socket, opened without awaiting so the relay loop never
/// stalls on it.
fn open_session_socket(relay_ip: IpAddr, target: SocketAddr) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(session_bind(relay_ip, target))?;
    socket.connect(target)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Whether a socket error only reports an ICMP error for an earlier datagram (the target's port
/// was closed, say): the socket stays usable.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// Everything the relay loop and its sessions share.
#[derive(Clone)]
struct Shared {
    relay: Arc<UdpRelay>,
    dirs: Directions,
    settings: ProxySettings,
    socket: Arc<UdpSocket>,
    clock: Clock,
}

/// Receives what node `from` sends until `shutdown`, opening a session per sender, and expires
/// sessions idle for longer than the settings' `udp_idle_timeout`.
pub(crate) async fn relay_loop(
    socket: UdpSocket,
    relay: Arc<UdpRelay>,
    dirs: Directions,
    settings: ProxySettings,
    shutdown: CancellationToken,
) {
    let shared = Shared {
        relay,
        dirs,
        settings,
        socket: Arc::new(socket),
        clock: Clock(Instant::now()),
    };
    let idle = settings.udp_idle_timeout.max(Duration::from_millis(10));
    let idle_ms = idle.as_millis() as u64;
    let mut sweep = tokio::time::interval((idle / 4).max(Duration::from_millis(10)));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sweep.tick() => {
                let now = shared.clock.now_ms();
                sessions.retain(|_, s| {
                    now.saturating_sub(s.last_seen.load(Ordering::Relaxed)) < idle_ms
                        && !s.stop.is_cancelled()
                });
                continue;
            }
            received = shared.socket.recv_from(&mut buf) => received,
        };
        let (len, sender) = match received {
            Ok(r) => r,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                tracing::warn!(link = %shared.relay.id, error = %e, "UDP relay failed to receive");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let up = &shared.dirs.up;
        if blocked(&up.current(), &shared.dirs.down.current()) {
            // No session for a blocked datagram: nothing is opened across a partition.
            count_dropped(up, len);
            continue;
        }
        let target = shared.relay.target();
        let reusable = sessions
            .get(&sender)
            .is_some_and(|s| s.target == target && !s.stop.is_cancelled());
        if !reusable {
            match open_session(&shared, sender, target, &shutdown) {
                Ok(session) => {
                    sessions.insert(sender, session);
                }
                Err(e) => {
                    tracing::warn!(link = %shared.relay.id, %target, error = %e, "UDP relay could not open a session socket");
                    count_dropped(up, len);
                    continue;
                }
            }
        }
        let Some(session) = sessions.get_mut(&sender) else {
            continue;
        };
        session
            .last_seen
            .store(shared.clock.now_ms(), Ordering::Relaxed);
        let Some(due) = schedule(&up.current(), &mut session.rng, &mut session.last_due) else {
            count_dropped(up, len);
            continue;
        };
        let pending = Pending {
            due,
            bytes: buf[..len].to_vec(),
        };
        if session.up.try_send(pending).is_err() {
            count_dropped(up, len);
        }
    }
    // Dropping the sessions cancels their tasks and closes their sockets.
}

/// Opens the session of one sender: a socket connected to `target`, a task sending the queued
/// datagrams of `from->to`, and a task relaying the replies (`to->from`) back to the sender.
fn open_session(
    shared: &Shared,
    sender: SocketAddr,
    target: SocketAddr,
    shutdown: &CancellationToken,
) -> io::Result<Session> {
    let socket = Arc::new(open_session_socket(shared.relay.local.ip(), target)?);
    let session_no = shared.dirs.up.next_connection();
    Counters::bump(&shared.dirs.up.counters.connections_accepted, 1);
    tracing::debug!(link = %shared.relay.id, %sender, %target, session = session_no, "UDP relay opened a session");
    let stop = shutdown.child_token();
    let last_seen = Arc::new(AtomicU64::new(shared.clock.now_ms()));
    let (up_tx, up_rx) = mpsc::channel(QUEUE_DATAGRAMS);
    let (down_tx, down_rx) = mpsc::channel(QUEUE_DATAGRAMS);
    let settings = shared.settings;

    tokio::spawn(send_queued(
        up_rx,
        Outlet::Target(socket.clone()),
        shared.dirs.up.clone(),
        shared.dirs.down.clone(),
        stop.clone(),
    ));
    tokio::spawn(send_queued(
        down_rx,
        Outlet::Sender(shared.socket.clone(), sender),
        shared.dirs.down.clone(),
        shared.dirs.up.clone(),
        stop.clone(),
    ));
    tokio::spawn(receive_replies(
        socket,
        down_tx,
        shared.dirs.clone(),
        session_rng(settings.seed, shared.dirs.down.id, session_no),
        last_seen.clone(),
        shared.clock,
        stop.clone(),
    ));

    Ok(Session {
        target,
        up: up_tx,
        rng: session_rng(settings.seed, shared.dirs.up.id, session_no),
        last_due: Instant::now(),
        last_seen,
        stop,
    })
}

/// Where a direction's datagrams leave: to the target through the session socket, or back to
/// the original sender through the relay's own socket.
enum Outlet {
    Target(Arc<UdpSocket>),
    Sender(Arc<UdpSocket>, SocketAddr),
}

impl Outlet {
    async fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Outlet::Target(socket) => socket.send(bytes).await,
            Outlet::Sender(socket, to) => socket.send_to(bytes, *to).await,
        }
    }
}

/// Sends one direction's queued datagrams at their due time and within the link's bandwidth
/// budget; a partition that began while a datagram waited drops it, as closing a TCP connection
/// loses what it held.
async fn send_queued(
    mut queue: mpsc::Receiver<Pending>,
    outlet: Outlet,
    link: Arc<LinkState>,
    other: Arc<LinkState>,
    stop: CancellationToken,
) {
    loop {
        let datagram = tokio::select! {
            _ = stop.cancelled() => return,
            datagram = queue.recv() => match datagram {
                Some(d) => d,
                None => return,
            },
        };
        if datagram.due > Instant::now() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = sleep_until(datagram.due) => {}
            }
        }
        if let Some(bytes_per_sec) = link.current().bandwidth {
            let done = link.reserve(datagram.bytes.len(), bytes_per_sec);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = sleep_until(done) => {}
            }
        }
        if link.current().partitioned || other.current().partitioned {
            count_dropped(&link, datagram.bytes.len());
            continue;
        }
        match outlet.send(&datagram.bytes).await {
            Ok(_) => count_forwarded(&link, datagram.bytes.len()),
            Err(e) => {
                if !transient(&e) {
                    tracing::debug!(link = %link.id, error = %e, "UDP relay failed to send a datagram");
                }
                count_dropped(&link, datagram.bytes.len());
            }
        }
    }
}

/// Receives what the target sends back on a session socket and queues it, through the fault
/// state of `to->from`, for the sender.
async fn receive_replies(
    socket: Arc<UdpSocket>,
    queue: mpsc::Sender<Pending>,
    dirs: Directions,
    mut rng: ChaCha8Rng,
    last_seen: Arc<AtomicU64>,
    clock: Clock,
    stop: CancellationToken,
) {
    let down = &dirs.down;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut last_due = Instant::now();
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            received = socket.recv(&mut buf) => received,
        };
        let len = match received {
            Ok(len) => len,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                tracing::debug!(link = %down.id, error = %e, "UDP relay session failed to receive; closing it");
                stop.cancel();
                return;
            }
        };
        last_seen.store(clock.now_ms(), Ordering::Relaxed);
        let faults = down.current();
        if blocked(&faults, &dirs.up.current()) {
            count_dropped(down, len);
            continue;
        }
        let Some(due) = schedule(&faults, &mut rng, &mut last_due) else {
            count_dropped(down, len);
            continue;
        };
        let pending = Pending {
            due,
            bytes: buf[..len].to_vec(),
        };
        if queue.try_send(pending).is_err() {
            count_dropped(down, len);
        }
    }
}
