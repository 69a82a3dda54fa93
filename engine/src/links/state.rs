//! Per-direction state shared between the fault registry and the forwarding tasks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::fault::{Effect, LinkId};
use super::tamper::KindTamper;

/// The effective faults of one directed link: every active fault folded together.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct LinkFaults {
    /// Connections carrying this direction are closed and new ones refused.
    pub partitioned: bool,
    /// Frames in this direction are dropped; the connection stays up.
    pub cut: bool,
    /// Delay and jitter per frame.
    pub latency: Option<(Duration, Duration)>,
    /// Probability of dropping each frame.
    pub loss: Option<f64>,
    /// Bytes per second.
    pub bandwidth: Option<u64>,
    /// Tampering by message kind ([`super::MessageKind::index`]).
    pub tamper: [KindTamper; 3],
}

impl LinkFaults {
    /// Folds one more fault on top; of two faults of the same kind the later one wins.
    pub(crate) fn stack(&mut self, effect: Effect) {
        match effect {
            Effect::Partitioned => self.partitioned = true,
            Effect::Cut => self.cut = true,
            Effect::Latency(d, j) => self.latency = Some((d, j)),
            Effect::Loss(p) => self.loss = Some(p),
            Effect::Bandwidth(b) => self.bandwidth = Some(b),
            Effect::Tamper(kind, t) => self.tamper[kind.index()].stack(t),
        }
    }

    /// True when some message kind is tampered with (frames must then be classified).
    pub(crate) fn tampering(&self) -> bool {
        self.tamper.iter().any(KindTamper::any)
    }
}

/// Counters of one directed link, for run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// Frames delivered in this direction.
    pub frames_forwarded: u64,
    /// Bytes delivered in this direction, length prefixes included.
    pub bytes_forwarded: u64,
    /// Frames dropped by a cut, a partition or loss.
    pub frames_dropped: u64,
    /// Bytes of the dropped frames, length prefixes included.
    pub bytes_dropped: u64,
    /// Connections accepted by this direction's proxy (zero if no node dials this way).
    pub connections_accepted: u64,
    /// Connections accepted and at once closed because the link was partitioned.
    pub connections_refused: u64,
    /// Open connections closed because a partition began.
    pub connections_cut: u64,
    /// Connections closed because a frame's length prefix exceeded the cap.
    pub bad_frames: u64,
    /// Frames a message-kind fault dropped, duplicated, delayed or reordered.
    pub frames_tampered: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub frames_forwarded: AtomicU64,
    pub bytes_forwarded: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub bytes_dropped: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_cut: AtomicU64,
    pub bad_frames: AtomicU64,
    pub frames_tampered: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LinkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStats {
            frames_forwarded: get(&self.frames_forwarded),
            bytes_forwarded: get(&self.bytes_forwarded),
            frames_dropped: get(&self.frames_dropped),
            bytes_dropped: get(&self.bytes_dropped),
            connections_accepted: get(&self.connections_accepted),
            connections_refused: get(&self.connections_refused),
            connections_cut: get(&self.connections_cut),
            bad_frames: get(&self.bad_frames),
            frames_tampered: get(&self.frames_tampered),
        }
    }
}

/// Everything about one directed link that forwarding tasks read: the fault state (a watch, so
/// open connections notice a partition at once) and the counters.
pub(crate) struct LinkState {
    pub id: LinkId,
    pub faults: watch::Sender<LinkFaults>,
    pub counters: Counters,
    /// When the link finishes sending what it has already been given, under a bandwidth limit;
    /// shared by every connection carrying this direction.
    link_free: Mutex<Instant>,
    /// Numbers connections, so each gets its own reproducible random stream.
    connections: AtomicU64,
}

impl LinkState {
    pub(crate) fn new(id: LinkId) -> Self {
        Self {
            id,
            faults: watch::Sender::new(LinkFaults::default()),
            counters: Counters::default(),
            link_free: Mutex::new(Instant::now()),
            connections: AtomicU64::new(0),
        }
    }

    pub(crate) fn current(&self) -> LinkFaults {
        *self.faults.borrow()
    }

    pub(crate) fn stats(&self) -> LinkStats {
        self.counters.snapshot()
    }

    pub(crate) fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed)
    }

    /// Books `len` bytes on the link at `bytes_per_sec` and returns when they have gone out.
    pub(crate) fn reserve(&self, len: usize, bytes_per_sec: u64) -> Instant {
        let now = Instant::now();
        let mut free = self.link_free.lock().unwrap_or_else(|e| e.into_inner());
        let start = (*free).max(now);
        let busy = Duration::from_secs_f64(len as f64 / bytes_per_sec as f64);
        *free = start + busy;
        *free
    }
}
