//! `nomos-script repl`: an interactive session over the whole script surface, with `net` bound to
//! an attached live testnet (or to what a script deploys), `:` helpers, and `:save` to turn the
//! session into a runnable scenario.

pub mod commands;
pub mod console;
pub mod editor;
pub mod record;
pub mod session;

pub use console::{ReplOptions, run};
