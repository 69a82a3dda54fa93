//! Errors of the link layer.

use std::io;
use std::net::SocketAddr;

use super::fault::{FaultId, LinkId};

/// Why a link-layer operation failed; messages read after "failed to …: ".
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The proxy's listening socket could not be bound.
    #[error("bind the proxy for link {link} on {addr}: {source}")]
    Bind {
        /// The link whose proxy failed.
        link: LinkId,
        /// The address tried.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `add_link` was called twice for the same direction.
    #[error("link {0} already has a proxy")]
    DuplicateLink(LinkId),
    /// A link from a node to itself cannot carry traffic.
    #[error("link {0} connects a node to itself")]
    SelfLink(LinkId),
    /// The link named has no proxy (and is not the reverse of one).
    #[error("no link {0}")]
    UnknownLink(LinkId),
    /// The node named is an endpoint of no link.
    #[error("node {0} has no links")]
    UnknownNode(usize),
    /// The fault id names no active fault.
    #[error("{0} is not active")]
    UnknownFault(FaultId),
    /// A fault parameter is out of range.
    #[error("{field} {value} is invalid: {reason}")]
    InvalidValue {
        /// The parameter's name.
        field: &'static str,
        /// The value given.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
}
