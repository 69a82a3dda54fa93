//! The node's top-level error.

use std::net::SocketAddr;

use crate::storage::StorageError;

/// Why a node could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Config(String),
    #[error("failed to bind {field} = {addr}: {source}")]
    Bind {
        field: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("failed to set up logging: {0}")]
    Logging(String),
    #[error("i/o error: {0}")]
    Io(std::io::Error),
}
