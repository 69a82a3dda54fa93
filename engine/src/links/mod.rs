//! Network faults for local processes without root or containers: the framework owns the links
//! between nodes (one frame-aware TCP proxy per directed link) and applies partitions, one-way
//! cuts, latency, loss and bandwidth limits to the frames it forwards. See README.md here.
//!
//! **Invariant:** every fault applied is logged, and `heal()` / `shutdown()` revert and log
//! every fault still in force.

mod error;
mod fault;
mod layer;
mod proxy;
mod state;
mod tamper;
mod udp;

pub use error::LinkError;
pub use fault::{ActiveFault, Fault, FaultId, FaultRecord, LinkId, LinkSel};
pub use layer::{
    DEFAULT_MAX_FRAME_LEN, DEFAULT_UDP_IDLE_TIMEOUT, LinkConfig, LinkLayer, NoteSource,
};
pub use state::LinkStats;
pub use tamper::{MessageKind, Tamper};
