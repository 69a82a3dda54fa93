//! Process exit codes, as named constants: the engine's, so a run report and the CLI agree.

pub use engine::exit::{INFRA_ERROR, INTERRUPTED, PASSED, SCENARIO_FAILED, SCRIPT_ERROR};
