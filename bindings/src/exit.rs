//! Process exit codes, as named constants (the same values as the engine's).

/// Every plan passed.
pub const PASSED: i32 = 0;
/// A scenario failed: an expectation or a workload.
pub const SCENARIO_FAILED: i32 = 1;
/// The script itself is wrong: parse or runtime error, invalid plan.
pub const SCRIPT_ERROR: i32 = 2;
/// Infrastructure error: deploy, readiness, backend.
pub const INFRA_ERROR: i32 = 3;
/// Ctrl-C (SIGINT) or SIGTERM.
pub const INTERRUPTED: i32 = 130;
