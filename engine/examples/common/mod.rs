//! What the bench examples share: finding the reference node binary.

use std::path::PathBuf;

/// The node binary: NOMOS_DEVNODE_BIN, else `nomos-devnode` next to the examples' directory
/// (the profile the example was built with).
pub fn devnode_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NOMOS_DEVNODE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("exe path");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("examples dir")
        .join("nomos-devnode");
    assert!(
        bin.exists(),
        "{} is missing: build it with cargo build [--release] -p nomos-devnode",
        bin.display()
    );
    bin
}
