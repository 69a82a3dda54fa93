//! nomos-devnode: the reference node. A small, real Cryptarchia-style
//! proof-of-stake node (slots, stake-weighted leader lottery, longest chain,
//! LIB k below the tip), TCP gossip and sync, a signed-transfer ledger,
//! redb storage and the real node's HTTP API (two revisions, `config::ApiDialect`).

pub mod api;
pub mod byzantine;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod crypto;
mod error;
pub mod ledger;
pub mod logging;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod p2p;
mod queries;
mod run;
pub mod storage;
pub mod types;

pub use error::NodeError;
pub use run::{run, run_from_file};
