//! `LinkLayer`: the registry of link proxies and of the faults in force on them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::error::LinkError;
use super::fault::{ActiveFault, Effect, Fault, FaultId, FaultRecord, LinkId, LinkSel};
use super::proxy::{Directions, Proxy, ProxySettings, accept_loop};
use super::state::{LinkFaults, LinkState, LinkStats};
use super::udp::{UdpRelay, relay_loop};

/// The largest frame forwarded by default: the reference node's codec default (8 MiB).
pub const DEFAULT_MAX_FRAME_LEN: usize = 8 * 1024 * 1024;

/// How long a UDP relay keeps a sender's session (and its socket) without traffic either way.
pub const DEFAULT_UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Supplies a note for every fault record (typically "height 42"), so the log lines faults up
/// with the chain without every caller passing it.
pub type NoteSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Settings of a [`LinkLayer`].
#[derive(Clone, Copy, Debug)]
pub struct LinkConfig {
    /// Seeds loss and jitter, so a run with the same seed drops and delays the same frames.
    pub seed: u64,
    /// Frames whose length prefix exceeds this close their connection (a peer speaking another
    /// protocol, or a corrupt stream).
    pub max_frame_len: usize,
    /// How long a proxy waits to dial its target before closing the accepted connection.
    pub connect_timeout: Duration,
    /// How long a UDP relay keeps a sender's session socket without a datagram either way.
    pub udp_idle_timeout: Duration,
}

impl LinkConfig {
    /// Defaults with the given seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            connect_timeout: Duration::from_secs(5),
            udp_idle_timeout: DEFAULT_UDP_IDLE_TIMEOUT,
        }
    }
}

/// Framework-owned links between nodes: one TCP proxy per directed link that the node configs
/// point at, so network faults need neither root nor containers.
///
/// A cheap handle: clones share the same proxies and fault state. Fault methods are synchronous
/// (they only change state that the forwarding tasks watch); proxies need a tokio runtime.
/// Dropping the last handle stops every proxy and closes its connections.
///
/// ```no_run
/// # async fn demo(node1: std::net::SocketAddr) -> Result<(), engine::links::LinkError> {
/// use engine::links::{LinkLayer, LinkSel};
/// use std::time::Duration;
/// let links = LinkLayer::new(7);
/// let addr_for_node0 = links.add_link(0, 1, node1).await?; // node 0 dials this, not node1
/// links.set_latency(LinkSel::All, Duration::from_millis(200), Duration::from_millis(20))?;
/// links.partition(&[vec![0], vec![1]])?;
/// links.heal();
/// for record in links.log() {
///     println!("{record}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LinkLayer {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ProxySettings,
    created: Instant,
    shutdown: CancellationToken,
    registry: Mutex<Registry>,
    note_source: Mutex<Option<NoteSource>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Default)]
struct Registry {
    /// Every direction known: both directions of every proxied link.
    links: BTreeMap<LinkId, Arc<LinkState>>,
    proxies: BTreeMap<LinkId, Arc<Proxy>>,
    /// UDP relays, beside (and sharing the state of) any TCP proxy of the same direction.
    udp_relays: BTreeMap<LinkId, Arc<UdpRelay>>,
    /// In the order applied; later faults of the same kind win on a link.
    active: Vec<Active>,
    log: Vec<FaultRecord>,
    next_id: u64,
}

struct Active {
    id: FaultId,
    fault: Fault,
    effect: Effect,
    links: BTreeSet<LinkId>,
    applied_after: Duration,
}

impl Registry {
    fn ensure_link(&mut self, id: LinkId) -> Arc<LinkState> {
        self.links
            .entry(id)
            .or_insert_with(|| Arc::new(LinkState::new(id)))
            .clone()
    }

    /// Pushes the folded fault state of every link to its watchers; connections only wake for
    /// links whose state really changed.
    fn publish(&self) {
        for (id, state) in &self.links {
            let mut folded = LinkFaults::default();
            for active in self.active.iter().filter(|a| a.links.contains(id)) {
                folded.stack(active.effect);
            }
            state.faults.send_if_modified(|current| {
                let changed = *current != folded;
                *current = folded;
                changed
            });
        }
    }
}

impl LinkLayer {
    /// A layer with no links, whose loss and jitter draw from `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_config(LinkConfig::new(seed))
    }

    /// A layer with explicit settings.
    pub fn with_config(config: LinkConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings: ProxySettings {
                    seed: config.seed,
                    max_frame_len: config.max_frame_len,
                    connect_timeout: config.connect_timeout,
                    udp_idle_timeout: config.udp_idle_timeout,
                },
                created: Instant::now(),
                shutdown: CancellationToken::new(),
                registry: Mutex::new(Registry::default()),
                note_source: Mutex::new(None),
            }),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the proxy for connections node `from` dials to node `to` (listening on
    /// 127.0.0.1, any free port) and returns the address to put in `from`'s peer list instead
    /// of `target`, `to`'s real address.
    pub async fn add_link(
        &self,
        from: usize,
        to: usize,
        target: SocketAddr,
    ) -> Result<SocketAddr, LinkError> {
        let id = LinkId::new(from, to);
        if from == to {
            return Err(LinkError::SelfLink(id));
        }
        if self.registry().proxies.contains_key(&id) {
            return Err(LinkError::DuplicateLink(id));
        }
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| LinkError::Bind {
                link: id,
                addr: bind,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| LinkError::Bind {
            link: id,
            addr: bind,
            source,
        })?;
        let proxy = Arc::new(Proxy::new(id, local, target));
        let dirs = {
            let mut registry = self.registry();
            // Checked again: another task may have added the same link while we were binding.
            if registry.proxies.contains_key(&id) {
                return Err(LinkError::DuplicateLink(id));
            }
            registry.proxies.insert(id, proxy.clone());
            let dirs = Directions {
                up: registry.ensure_link(id),
                down: registry.ensure_link(id.reverse()),
            };
            registry.publish();
            dirs
        };
        tokio::spawn(accept_loop(
            listener,
            proxy,
            dirs,
            self.inner.settings,
            self.inner.shutdown.clone(),
        ));
        Ok(local)
    }

    /// Starts the UDP relay for datagrams node `from` sends to node `to` (bound on 127.0.0.1,
    /// any free port) and returns the address to give `from` instead of `target`, `to`'s real
    /// UDP address. Each sender gets its own session socket towards `target`, so `to` sees a
    /// stable source per peer and its replies come back through the relay under the faults of
    /// `to->from`. The link shares its fault state and counters with a TCP proxy of the same
    /// direction, if any.
    pub async fn add_udp_link(
        &self,
        from: usize,
        to: usize,
        target: SocketAddr,
    ) -> Result<SocketAddr, LinkError> {
        self.add_udp_link_on(from, to, IpAddr::V4(Ipv4Addr::LOCALHOST), target)
            .await
    }

    /// [`add_udp_link`](Self::add_udp_link) bound on `bind` (a Docker network's gateway, say)
    /// instead of 127.0.0.1.
    pub async fn add_udp_link_on(
        &self,
        from: usize,
        to: usize,
        bind: IpAddr,
        target: SocketAddr,
    ) -> Result<SocketAddr, LinkError> {
        let id = LinkId::new(from, to);
        if from == to {
            return Err(LinkError::SelfLink(id));
        }
        if self.registry().udp_relays.contains_key(&id) {
            return Err(LinkError::DuplicateLink(id));
        }
        let bind = SocketAddr::new(bind, 0);
        let bind_error = |source| LinkError::Bind {
            link: id,
            addr: bind,
            source,
        };
        let socket = UdpSocket::bind(bind).await.map_err(bind_error)?;
        let local = socket.local_addr().map_err(bind_error)?;
        let relay = Arc::new(UdpRelay::new(id, local, target));
        let dirs = {
            let mut registry = self.registry();
            // Checked again: another task may have added the same link while we were binding.
            if registry.udp_relays.contains_key(&id) {
                return Err(LinkError::DuplicateLink(id));
            }
            registry.udp_relays.insert(id, relay.clone());
            let dirs = Directions {
                up: registry.ensure_link(id),
                down: registry.ensure_link(id.reverse()),
            };
            registry.publish();
            dirs
        };
        tokio::spawn(relay_loop(
            socket,
            relay,
            dirs,
            self.inner.settings,
            self.inner.shutdown.clone(),
        ));
        Ok(local)
    }

    /// Points the UDP relay of `from->to` at a new address, for a node that restarted on
    /// another port; a sender's session moves to the new target with its next datagram.
    pub fn set_udp_target(
        &self,
        from: usize,
        to: usize,
        target: SocketAddr,
    ) -> Result<(), LinkError> {
        let id = LinkId::new(from, to);
        let registry = self.registry();
        let relay = registry
            .udp_relays
            .get(&id)
            .ok_or(LinkError::UnknownLink(id))?;
        relay.set_target(target);
        Ok(())
    }

    /// The UDP address node `from` should send to to reach node `to`, if that link is relayed.
    pub fn udp_relay_addr(&self, from: usize, to: usize) -> Option<SocketAddr> {
        self.registry()
            .udp_relays
            .get(&LinkId::new(from, to))
            .map(|r| r.local)
    }

    /// Every UDP-relayed link, with the address its relay is bound on.
    pub fn udp_relays(&self) -> BTreeMap<LinkId, SocketAddr> {
        self.registry()
            .udp_relays
            .iter()
            .map(|(id, r)| (*id, r.local))
            .collect()
    }

    /// Points the proxy of `from->to` at a new address, for a node that restarted on another
    /// port; connections already open keep their old target.
    pub fn set_target(&self, from: usize, to: usize, target: SocketAddr) -> Result<(), LinkError> {
        let id = LinkId::new(from, to);
        let registry = self.registry();
        let proxy = registry
            .proxies
            .get(&id)
            .ok_or(LinkError::UnknownLink(id))?;
        proxy.set_target(target);
        Ok(())
    }

    /// The address node `from` should dial to reach node `to`, if that link is proxied.
    pub fn proxy_addr(&self, from: usize, to: usize) -> Option<SocketAddr> {
        self.registry()
            .proxies
            .get(&LinkId::new(from, to))
            .map(|p| p.local)
    }

    /// Every proxied link, with the address its proxy listens on.
    pub fn proxies(&self) -> BTreeMap<LinkId, SocketAddr> {
        self.registry()
            .proxies
            .iter()
            .map(|(id, p)| (*id, p.local))
            .collect()
    }

    /// Sets what every later fault record's note is taken from (a closure reading the chain
    /// height, say), unless the caller passes a note to [`apply`](Self::apply) itself.
    pub fn set_note_source(&self, source: Option<NoteSource>) {
        *self
            .inner
            .note_source
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = source;
    }

    fn note(&self, explicit: Option<String>) -> Option<String> {
        if explicit.is_some() {
            return explicit;
        }
        let source = self
            .inner
            .note_source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // Called without any lock held: the source may do anything.
        source.and_then(|f| f())
    }

    fn elapsed(&self) -> Duration {
        self.inner.created.elapsed()
    }

    /// Applies a fault on top of those already in force and logs it. The links it covers are
    /// fixed now: links added later do not inherit it.
    pub fn apply(&self, fault: Fault, note: Option<String>) -> Result<FaultId, LinkError> {
        let note = self.note(note);
        let mut registry = self.registry();
        let known: BTreeSet<LinkId> = registry.links.keys().copied().collect();
        let (effect, links) = fault.resolve(&known)?;
        let id = FaultId(registry.next_id);
        registry.next_id += 1;
        let elapsed = self.elapsed();
        registry.log.push(FaultRecord {
            at: SystemTime::now(),
            elapsed,
            id,
            fault: fault.clone(),
            links: links.iter().copied().collect(),
            reverted: false,
            note,
        });
        registry.active.push(Active {
            id,
            fault,
            effect,
            links,
            applied_after: elapsed,
        });
        registry.publish();
        Ok(id)
    }

    /// Splits the network: links between different groups are blocked and their connections
    /// closed; nodes named in no group form one extra group together.
    pub fn partition(&self, groups: &[Vec<usize>]) -> Result<FaultId, LinkError> {
        self.apply(Fault::Partition(groups.to_vec()), None)
    }

    /// Cuts one node off from every other node (a partition of that node alone).
    pub fn isolate(&self, node: usize) -> Result<FaultId, LinkError> {
        self.apply(Fault::Isolate(node), None)
    }

    /// Drops every frame `from` sends to `to`, keeping connections open and the other
    /// direction intact, for asymmetric faults.
    pub fn cut(&self, from: usize, to: usize) -> Result<FaultId, LinkError> {
        self.apply(Fault::Cut { from, to }, None)
    }

    /// Delays every frame on the selected links by `delay ± jitter`, keeping order.
    pub fn set_latency(
        &self,
        links: LinkSel,
        delay: Duration,
        jitter: Duration,
    ) -> Result<FaultId, LinkError> {
        self.apply(
            Fault::Latency {
                links,
                delay,
                jitter,
            },
            None,
        )
    }

    /// Drops each frame on the selected links with `probability`.
    pub fn set_loss(&self, links: LinkSel, probability: f64) -> Result<FaultId, LinkError> {
        self.apply(Fault::Loss { links, probability }, None)
    }

    /// Tampers with one kind of message on the selected links.
    pub fn set_tamper(
        &self,
        links: LinkSel,
        kind: super::MessageKind,
        action: super::Tamper,
    ) -> Result<FaultId, LinkError> {
        self.apply(
            Fault::Tamper {
                links,
                kind,
                action,
            },
            None,
        )
    }

    /// Limits each selected directed link to `bytes_per_sec`.
    pub fn set_bandwidth(&self, links: LinkSel, bytes_per_sec: u64) -> Result<FaultId, LinkError> {
        self.apply(
            Fault::Bandwidth {
                links,
                bytes_per_sec,
            },
            None,
        )
    }

    /// Reverts one fault on every link it still covers.
    pub fn revert(&self, id: FaultId) -> Result<(), LinkError> {
        let note = self.note(None);
        let mut registry = self.registry();
        let at = registry
            .active
            .iter()
            .position(|a| a.id == id)
            .ok_or(LinkError::UnknownFault(id))?;
        let active = registry.active.remove(at);
        let record = self.revert_record(&active, active.links.iter().copied().collect(), note);
        registry.log.push(record);
        registry.publish();
        Ok(())
    }

    /// Reverts every fault on the selected links (a fault that also covers other links stays
    /// there). Returns how many faults were touched.
    pub fn clear(&self, links: LinkSel) -> Result<usize, LinkError> {
        let note = self.note(None);
        let mut registry = self.registry();
        let known: BTreeSet<LinkId> = registry.links.keys().copied().collect();
        let selected = links.resolve(&known)?;
        let mut touched = 0;
        let mut records = Vec::new();
        for active in &mut registry.active {
            let removed: Vec<LinkId> = active.links.intersection(&selected).copied().collect();
            if removed.is_empty() {
                continue;
            }
            active.links.retain(|l| !selected.contains(l));
            records.push(self.revert_record(active, removed, note.clone()));
            touched += 1;
        }
        registry.active.retain(|a| !a.links.is_empty());
        registry.log.extend(records);
        registry.publish();
        Ok(touched)
    }

    /// Restores every link: reverts every active fault, newest first, and logs each revert.
    /// Returns how many faults were reverted.
    pub fn heal(&self) -> usize {
        let note = self.note(None);
        let mut registry = self.registry();
        let active = std::mem::take(&mut registry.active);
        let count = active.len();
        for a in active.iter().rev() {
            let record = self.revert_record(a, a.links.iter().copied().collect(), note.clone());
            registry.log.push(record);
        }
        registry.publish();
        count
    }

    fn revert_record(
        &self,
        active: &Active,
        links: Vec<LinkId>,
        note: Option<String>,
    ) -> FaultRecord {
        FaultRecord {
            at: SystemTime::now(),
            elapsed: self.elapsed(),
            id: active.id,
            fault: active.fault.clone(),
            links,
            reverted: true,
            note,
        }
    }

    /// Heals every link (logging the reverts), then stops every proxy and UDP relay and closes
    /// every connection and session socket. The log stays readable afterwards.
    pub fn shutdown(&self) -> usize {
        let reverted = self.heal();
        self.inner.shutdown.cancel();
        reverted
    }

    /// The faults in force, oldest first.
    pub fn active_faults(&self) -> Vec<ActiveFault> {
        self.registry()
            .active
            .iter()
            .map(|a| ActiveFault {
                id: a.id,
                fault: a.fault.clone(),
                links: a.links.iter().copied().collect(),
                applied_after: a.applied_after,
            })
            .collect()
    }

    /// Every fault applied and reverted so far, in order: part of the run's report.
    pub fn log(&self) -> Vec<FaultRecord> {
        self.registry().log.clone()
    }

    /// Counters of every known directed link.
    pub fn stats(&self) -> BTreeMap<LinkId, LinkStats> {
        self.registry()
            .links
            .iter()
            .map(|(id, s)| (*id, s.stats()))
            .collect()
    }
}
