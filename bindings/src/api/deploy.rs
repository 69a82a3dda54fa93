//! Deployers and live testnets.

/// A live testnet handle.
#[derive(Clone)]
pub struct NetHandle;

impl NetHandle {
    /// Tears the testnet down from the host thread.
    pub fn teardown_blocking(&self, _runtime: &tokio::runtime::Runtime, _keep: bool) {}
}
