//! Node logging: LOGOS_BLOCKCHAIN_LOG_LEVEL (default `info`),
//! LOGOS_BLOCKCHAIN_LOG_FILTER (extra EnvFilter directives) and
//! LOGOS_BLOCKCHAIN_LOG_DIR (one file per node, else stderr).

use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::NodeError;

/// Installs the global subscriber for node `index`. A second call (several
/// nodes in one process, as in tests) keeps the first subscriber.
pub fn init(index: usize) -> Result<(), NodeError> {
    let level = std::env::var("LOGOS_BLOCKCHAIN_LOG_LEVEL").unwrap_or_else(|_| "info".into());
    let mut directives = level.clone();
    if let Ok(filter) = std::env::var("LOGOS_BLOCKCHAIN_LOG_FILTER")
        && !filter.trim().is_empty()
    {
        directives = format!("{directives},{filter}");
    }
    let filter = EnvFilter::try_new(&directives).map_err(|e| {
        NodeError::Logging(format!(
            "LOGOS_BLOCKCHAIN_LOG_LEVEL / LOGOS_BLOCKCHAIN_LOG_FILTER = {directives:?}: {e}"
        ))
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match std::env::var_os("LOGOS_BLOCKCHAIN_LOG_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).map_err(|e| {
                NodeError::Logging(format!("LOGOS_BLOCKCHAIN_LOG_DIR = {}: {e}", dir.display()))
            })?;
            let path = dir.join(format!("logos-blockchain-node-{index}.log"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| NodeError::Logging(format!("log file {}: {e}", path.display())))?;
            let _ = builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .try_init();
        }
        _ => {
            use std::io::IsTerminal;
            let _ = builder
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .try_init();
        }
    }
    Ok(())
}
