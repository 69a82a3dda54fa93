//! Engines built for documentation work: the full script surface registered while the areas are
//! recorded, in check mode (to read the metadata and check examples) or run mode (to run
//! examples against a real testnet).

use std::path::Path;
use std::sync::Arc;

use rhai::Engine;

use super::model::Surface;
use super::registry::{Areas, collect_areas};
use crate::bridge::Bridge;
use crate::cli::DeployerChoice;
use crate::host::{HostSettings, HostState, Mode};

/// Host state for one documentation engine: seed 0, no parameters, the local deployer.
pub fn host_state(bridge: Bridge, mode: Mode, script: &Path) -> Arc<HostState> {
    seeded_host_state(bridge, mode, script, 0)
}

/// [`host_state`] where every plan and testnet uses `seed` unless the script sets its own.
pub fn seeded_host_state(bridge: Bridge, mode: Mode, script: &Path, seed: u64) -> Arc<HostState> {
    let settings = HostSettings {
        mode,
        deployer: DeployerChoice::Local,
        seed: Some(seed),
        keep: false,
        params: Vec::new(),
        external: None,
        checks: crate::host::CheckPolicy::Quiet,
        reporters: Default::default(),
    };
    HostState::new(bridge, settings, seed, script, Vec::new())
}

/// An engine with the whole script surface, as `run`/`check` build it (limits, imports resolved
/// from `state.script`'s folder and the stdlib, interruption), printing nothing. Also returns the
/// area of every documented registration.
pub fn documented_engine(state: &Arc<HostState>) -> (Arc<Engine>, Areas) {
    let (engine, areas) =
        collect_areas(|| crate::host::build_engine(state, crate::host::Output::Silent));
    let engine = Arc::new(engine);
    let _ = state.engine.set(Arc::downgrade(&engine));
    (engine, areas)
}

/// The script surface as the reference documents it (no testnet is started).
pub fn surface() -> Result<Surface, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let state = host_state(
        Bridge::new(runtime.handle().clone()),
        Mode::Check,
        Path::new("reference.rhai"),
    );
    let (engine, areas) = documented_engine(&state);
    Surface::read(&engine, &areas)
}
