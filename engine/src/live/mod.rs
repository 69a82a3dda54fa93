//! Live testnets that outlive the command that brought them up: a supervisor process owns the
//! testnet and serves a control API; [`remote::RemoteTestnet`] drives it from any other process;
//! [`state`] records where each one is. See README.md here.

pub mod http;
pub mod remote;
pub mod state;
pub mod supervisor;
pub mod wire;
