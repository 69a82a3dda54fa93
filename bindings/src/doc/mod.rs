//! Documentation generated from the code: the script reference (`nomos-script doc`), editor
//! definitions, and the examples run as tests. Functions are registered with their doc comments
//! through [`registry`]; everything else reads rhai's metadata back.

pub mod command;
pub mod engine;
pub mod examples;
pub mod model;
pub mod reference;
pub mod registry;
pub mod stdlib;
