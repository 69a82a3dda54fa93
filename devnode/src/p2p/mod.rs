//! Peer-to-peer networking over TCP: length-delimited JSON frames, a
//! handshake that pins protocol version and genesis, block and transaction
//! gossip, ancestor sync in batches, and dialers that redial with backoff.

pub mod connection;
pub mod dialer;
pub mod message;
pub mod peers;
