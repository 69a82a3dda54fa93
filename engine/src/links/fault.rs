//! The fault vocabulary: which links a fault touches, what it does to them, and how it is logged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::error::LinkError;

/// One direction of traffic between two nodes: bytes that node `from` sends to node `to`.
///
/// Faults are per direction because real networks are asymmetric; a TCP connection between two
/// nodes carries both `from->to` and `to->from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkId {
    /// The sending node's index.
    pub from: usize,
    /// The receiving node's index.
    pub to: usize,
}

impl LinkId {
    /// Names the direction `from -> to`.
    pub fn new(from: usize, to: usize) -> Self {
        Self { from, to }
    }

    /// The opposite direction, which shares every connection with this one.
    pub fn reverse(self) -> Self {
        Self {
            from: self.to,
            to: self.from,
        }
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.from, self.to)
    }
}

/// Which directed links a fault (or a `clear`) applies to, so callers can address one direction,
/// a pair, a node or the whole network with the same methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkSel {
    /// Every directed link the layer knows.
    All,
    /// The single direction `from -> to`.
    Link(usize, usize),
    /// Both directions between two nodes.
    Both(usize, usize),
    /// Every link into or out of one node.
    Node(usize),
}

impl fmt::Display for LinkSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkSel::All => write!(f, "all links"),
            LinkSel::Link(a, b) => write!(f, "link {a}->{b}"),
            LinkSel::Both(a, b) => write!(f, "links {a}<->{b}"),
            LinkSel::Node(i) => write!(f, "links of node {i}"),
        }
    }
}

/// A network fault, as a value, so it can be logged, replayed and described in reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Fault {
    /// Blocks every link between nodes of different groups, closes the connections across the cut
    /// and refuses new ones. Nodes not named in any group form one extra group together.
    Partition(Vec<Vec<usize>>),
    /// Partitions one node from every other node.
    Isolate(usize),
    /// Drops every frame in one direction while keeping the connection open.
    Cut {
        /// The sending node.
        from: usize,
        /// The receiving node.
        to: usize,
    },
    /// Delays every frame by `delay` plus a uniform offset in `[-jitter, +jitter]`, keeping order.
    Latency {
        /// The links delayed.
        links: LinkSel,
        /// The mean delay.
        delay: Duration,
        /// The largest deviation from `delay`.
        jitter: Duration,
    },
    /// Drops each whole frame with this probability.
    Loss {
        /// The links made lossy.
        links: LinkSel,
        /// The probability, in `0.0..=1.0`.
        probability: f64,
    },
    /// Paces frames so a directed link carries at most this many bytes per second.
    Bandwidth {
        /// The links limited.
        links: LinkSel,
        /// The limit, greater than zero.
        bytes_per_sec: u64,
    },
    /// Tampers with one kind of message (blocks, transactions, sync) on the selected links:
    /// drops, duplicates, delays or reorders it; other kinds flow untouched.
    Tamper {
        /// The links tampered with.
        links: LinkSel,
        /// The kind of message.
        kind: super::MessageKind,
        /// What is done to it.
        action: super::Tamper,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(groups) => write!(f, "partition {groups:?}"),
            Fault::Isolate(i) => write!(f, "isolate node {i}"),
            Fault::Cut { from, to } => write!(f, "cut {from}->{to}"),
            Fault::Latency {
                links,
                delay,
                jitter,
            } => {
                write!(f, "latency {delay:?}")?;
                if !jitter.is_zero() {
                    write!(f, " ±{jitter:?}")?;
                }
                write!(f, " on {links}")
            }
            Fault::Loss { links, probability } => write!(f, "loss {probability} on {links}"),
            Fault::Bandwidth {
                links,
                bytes_per_sec,
            } => {
                write!(f, "bandwidth {bytes_per_sec} B/s on {links}")
            }
            Fault::Tamper {
                links,
                kind,
                action,
            } => match action {
                super::Tamper::Drop(p) => write!(f, "drop {kind} messages (p {p}) on {links}"),
                super::Tamper::Duplicate(p) => {
                    write!(f, "duplicate {kind} messages (p {p}) on {links}")
                }
                super::Tamper::Delay(d) => write!(f, "delay {kind} messages {d:?} on {links}"),
                super::Tamper::Reorder(w) => {
                    write!(f, "reorder {kind} messages within {w:?} on {links}")
                }
            },
        }
    }
}

/// Identifies one applied fault, so it can be reverted on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FaultId(pub u64);

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault#{}", self.0)
    }
}

/// One line of the fault log: a fault applied to, or reverted from, a set of links.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Wall-clock time, for reports that line faults up with node logs.
    pub at: SystemTime,
    /// Time since the layer was created, for plots on a run-relative axis.
    pub elapsed: Duration,
    /// The fault this record is about.
    pub id: FaultId,
    /// What the fault does.
    pub fault: Fault,
    /// The directed links applied to or reverted from (a `clear` may revert part of a fault).
    pub links: Vec<LinkId>,
    /// False when the fault was applied, true when it was reverted.
    pub reverted: bool,
    /// Caller context, such as the chain height when the fault fired.
    pub note: Option<String>,
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.reverted { "revert" } else { "apply" };
        write!(
            f,
            "{:>9.3}s {verb} {} {}",
            self.elapsed.as_secs_f64(),
            self.id,
            self.fault
        )?;
        write!(f, " [")?;
        for (i, l) in self.links.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{l}")?;
        }
        write!(f, "]")?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// A fault currently in force, with the links it still covers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActiveFault {
    /// The fault's id, for [`LinkLayer::revert`](super::LinkLayer::revert).
    pub id: FaultId,
    /// What the fault does.
    pub fault: Fault,
    /// The directed links it still covers.
    pub links: Vec<LinkId>,
    /// Time since the layer was created when the fault was applied.
    pub applied_after: Duration,
}

/// What a fault does to one directed link; several stack on the same link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Effect {
    Partitioned,
    Cut,
    Latency(Duration, Duration),
    Loss(f64),
    Bandwidth(u64),
    Tamper(super::MessageKind, super::Tamper),
}

impl Fault {
    /// Checks the fault's values and resolves it to the directed links it touches, out of the
    /// `known` links, so that a typo in a node index is an error rather than a silent no-op.
    pub(crate) fn resolve(
        &self,
        known: &BTreeSet<LinkId>,
    ) -> Result<(Effect, BTreeSet<LinkId>), LinkError> {
        match self {
            Fault::Partition(groups) => {
                let group_of = partition_groups(groups, known)?;
                // Nodes named nowhere share the extra group `groups.len()`.
                let rest = groups.len();
                let links = known
                    .iter()
                    .copied()
                    .filter(|l| {
                        group_of.get(&l.from).copied().unwrap_or(rest)
                            != group_of.get(&l.to).copied().unwrap_or(rest)
                    })
                    .collect();
                Ok((Effect::Partitioned, links))
            }
            Fault::Isolate(i) => Ok((Effect::Partitioned, LinkSel::Node(*i).resolve(known)?)),
            Fault::Cut { from, to } => Ok((Effect::Cut, LinkSel::Link(*from, *to).resolve(known)?)),
            Fault::Latency {
                links,
                delay,
                jitter,
            } => {
                if jitter > delay {
                    return Err(LinkError::InvalidValue {
                        field: "jitter",
                        value: format!("{jitter:?}"),
                        reason: format!("must not exceed the delay {delay:?}"),
                    });
                }
                Ok((Effect::Latency(*delay, *jitter), links.resolve(known)?))
            }
            Fault::Loss { links, probability } => {
                if !(0.0..=1.0).contains(probability) {
                    return Err(LinkError::InvalidValue {
                        field: "loss probability",
                        value: probability.to_string(),
                        reason: "must be between 0.0 and 1.0".into(),
                    });
                }
                Ok((Effect::Loss(*probability), links.resolve(known)?))
            }
            Fault::Bandwidth {
                links,
                bytes_per_sec,
            } => {
                if *bytes_per_sec == 0 {
                    return Err(LinkError::InvalidValue {
                        field: "bandwidth",
                        value: "0".into(),
                        reason: "must be at least 1 byte per second (use a cut to block)".into(),
                    });
                }
                Ok((Effect::Bandwidth(*bytes_per_sec), links.resolve(known)?))
            }
            Fault::Tamper {
                links,
                kind,
                action,
            } => {
                action.check()?;
                Ok((Effect::Tamper(*kind, *action), links.resolve(known)?))
            }
        }
    }
}

/// Maps each named node to its group index, rejecting unknown nodes and nodes named twice.
fn partition_groups(
    groups: &[Vec<usize>],
    known: &BTreeSet<LinkId>,
) -> Result<BTreeMap<usize, usize>, LinkError> {
    let nodes = known_nodes(known);
    let mut group_of = BTreeMap::new();
    for (g, members) in groups.iter().enumerate() {
        for &node in members {
            if !nodes.contains(&node) {
                return Err(LinkError::UnknownNode(node));
            }
            if let Some(first) = group_of.insert(node, g) {
                return Err(LinkError::InvalidValue {
                    field: "partition groups",
                    value: format!("{groups:?}"),
                    reason: format!("node {node} is in group {first} and group {g}"),
                });
            }
        }
    }
    Ok(group_of)
}

fn known_nodes(known: &BTreeSet<LinkId>) -> BTreeSet<usize> {
    known.iter().flat_map(|l| [l.from, l.to]).collect()
}

impl LinkSel {
    /// The directed links selected, out of the `known` ones; naming an unknown node or link is
    /// an error so that faults never silently miss.
    pub(crate) fn resolve(&self, known: &BTreeSet<LinkId>) -> Result<BTreeSet<LinkId>, LinkError> {
        match *self {
            LinkSel::All => Ok(known.clone()),
            LinkSel::Link(from, to) => {
                let id = LinkId::new(from, to);
                if known.contains(&id) {
                    Ok(BTreeSet::from([id]))
                } else {
                    Err(LinkError::UnknownLink(id))
                }
            }
            LinkSel::Both(a, b) => {
                let pair: BTreeSet<_> = [LinkId::new(a, b), LinkId::new(b, a)]
                    .into_iter()
                    .filter(|l| known.contains(l))
                    .collect();
                if pair.is_empty() {
                    Err(LinkError::UnknownLink(LinkId::new(a, b)))
                } else {
                    Ok(pair)
                }
            }
            LinkSel::Node(i) => {
                if !known_nodes(known).contains(&i) {
                    return Err(LinkError::UnknownNode(i));
                }
                Ok(known
                    .iter()
                    .copied()
                    .filter(|l| l.from == i || l.to == i)
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(pairs: &[(usize, usize)]) -> BTreeSet<LinkId> {
        pairs
            .iter()
            .flat_map(|&(a, b)| [LinkId::new(a, b), LinkId::new(b, a)])
            .collect()
    }

    fn ids(pairs: &[(usize, usize)]) -> BTreeSet<LinkId> {
        pairs.iter().map(|&(a, b)| LinkId::new(a, b)).collect()
    }

    #[test]
    fn partition_cuts_only_across_groups_and_unnamed_nodes_group_together() {
        let k = known(&[(0, 1), (0, 2), (1, 3), (2, 3)]);
        let (effect, links) = Fault::Partition(vec![vec![0, 1]]).resolve(&k).unwrap();
        assert_eq!(effect, Effect::Partitioned);
        // 2 and 3 are unnamed: they stay connected to each other.
        assert_eq!(links, ids(&[(0, 2), (2, 0), (1, 3), (3, 1)]));
    }

    #[test]
    fn partition_rejects_unknown_and_repeated_nodes() {
        let k = known(&[(0, 1)]);
        let err = Fault::Partition(vec![vec![0], vec![7]])
            .resolve(&k)
            .unwrap_err();
        assert_eq!(err.to_string(), "node 7 has no links");
        let err = Fault::Partition(vec![vec![0], vec![0, 1]])
            .resolve(&k)
            .unwrap_err();
        assert!(
            err.to_string().contains("node 0 is in group 0 and group 1"),
            "{err}"
        );
    }

    #[test]
    fn selections_resolve_to_directed_links() {
        let k = known(&[(0, 1), (1, 2)]);
        assert_eq!(LinkSel::Node(1).resolve(&k).unwrap().len(), 4);
        assert_eq!(
            LinkSel::Both(0, 1).resolve(&k).unwrap(),
            ids(&[(0, 1), (1, 0)])
        );
        assert_eq!(LinkSel::Link(2, 1).resolve(&k).unwrap(), ids(&[(2, 1)]));
        assert_eq!(
            LinkSel::Link(0, 2).resolve(&k).unwrap_err().to_string(),
            "no link 0->2"
        );
        assert_eq!(LinkSel::All.resolve(&k).unwrap(), k);
    }

    #[test]
    fn invalid_values_name_the_field() {
        let k = known(&[(0, 1)]);
        let err = Fault::Loss {
            links: LinkSel::All,
            probability: 1.5,
        }
        .resolve(&k)
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "loss probability 1.5 is invalid: must be between 0.0 and 1.0"
        );
        let err = Fault::Loss {
            links: LinkSel::All,
            probability: f64::NAN,
        }
        .resolve(&k)
        .unwrap_err();
        assert!(err.to_string().starts_with("loss probability NaN"), "{err}");
        let err = Fault::Bandwidth {
            links: LinkSel::All,
            bytes_per_sec: 0,
        }
        .resolve(&k)
        .unwrap_err();
        assert!(
            err.to_string().starts_with("bandwidth 0 is invalid"),
            "{err}"
        );
        let err = Fault::Latency {
            links: LinkSel::All,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(20),
        }
        .resolve(&k)
        .unwrap_err();
        assert!(
            err.to_string().starts_with("jitter 20ms is invalid"),
            "{err}"
        );
    }
}
