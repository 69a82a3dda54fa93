//! nomos-script: the Rhai bindings over the engine and the host that runs scripts. This is the
//! only crate that imports rhai; the engine stays async and script-agnostic.

pub mod api;
pub mod bridge;
pub mod cli;
pub mod diagnostics;
pub mod doc;
pub mod exit;
pub mod host;
pub mod live;
pub mod params;
pub mod repeat;
pub mod repl;
pub mod reports;
pub mod resolver;
pub mod shrink;
