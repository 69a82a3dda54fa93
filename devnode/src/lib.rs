//! nomos-devnode: the reference node. A small, real Cryptarchia-style
//! proof-of-stake node (slots, stake-weighted leader lottery, longest chain,
//! LIB k below the tip), TCP gossip and sync, a signed-transfer ledger,
//! redb storage and the real node's HTTP API shapes.

pub mod api_types;
pub mod config;
pub mod crypto;
