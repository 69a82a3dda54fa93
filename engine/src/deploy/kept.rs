//! Run dirs kept on purpose (after a failure, or with `--keep`): the `KEPT` marker that `gc`
//! lists instead of removing.

use serde::Serialize;

use super::KeepRunDir;

/// The file in a run dir that marks it as kept on purpose (after a failure, or with `--keep`):
/// `gc` lists such dirs and removes them only when asked (`gc --kept`).
pub const KEPT_MARKER: &str = "KEPT";

/// Contents of `<run dir>/KEPT`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct KeptMarker {
    pub run_id: String,
    /// Why the dir was kept (`--keep`, `run failed`, `deploy failed`, ...).
    pub reason: String,
    /// When it was kept (ms since the Unix epoch).
    pub kept_at_ms: u64,
    /// The process that kept it.
    pub owner_pid: u32,
}

/// Marks `run_dir` as kept with `reason`. A marker already there (written by a caller that
/// knew the reason better) is left as it is unless `overwrite`.
pub fn mark_kept(run_dir: &std::path::Path, run_id: &str, reason: &str, overwrite: bool) {
    let path = run_dir.join(KEPT_MARKER);
    if !run_dir.is_dir() || (!overwrite && path.exists()) {
        return;
    }
    let marker = KeptMarker {
        run_id: run_id.to_owned(),
        reason: reason.to_owned(),
        kept_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        owner_pid: std::process::id(),
    };
    if let Ok(text) = serde_json::to_string_pretty(&marker) {
        let _ = std::fs::write(path, text);
    }
}

/// The kept marker of `run_dir`, if it has one (an unreadable marker still counts as kept).
pub fn read_kept(run_dir: &std::path::Path) -> Option<KeptMarker> {
    let path = run_dir.join(KEPT_MARKER);
    if !path.exists() {
        return None;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    Some(serde_json::from_str(&text).unwrap_or_else(|_| KeptMarker {
        run_id: String::new(),
        reason: "kept (unreadable marker)".to_owned(),
        kept_at_ms: 0,
        owner_pid: 0,
    }))
}

impl KeepRunDir {
    /// The reason recorded in the kept marker when this policy keeps a run that ended with
    /// `outcome`.
    pub fn reason_for(self, outcome: &crate::report::Outcome) -> &'static str {
        use crate::report::Outcome;
        match (self, outcome) {
            (KeepRunDir::Always, _) => "--keep",
            (_, Outcome::Failed) => "run failed",
            (_, Outcome::Error(_)) => "run error",
            _ => "kept",
        }
    }
}
