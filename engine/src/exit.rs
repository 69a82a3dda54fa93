//! Process exit codes, shared by the CLI and the run report.

/// Every expectation passed and no workload failed.
pub const PASSED: i32 = 0;
/// An expectation or a workload failed.
pub const SCENARIO_FAILED: i32 = 1;
/// The script itself is wrong (parse or runtime error, invalid plan).
pub const SCRIPT_ERROR: i32 = 2;
/// Deploy, readiness or the backend failed.
pub const INFRA_ERROR: i32 = 3;
/// Interrupted by Ctrl-C (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;
