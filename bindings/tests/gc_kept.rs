//! `nomos-script gc` and kept run dirs, with the binary as a real process and TMPDIR a fresh
//! temp dir: a dir kept by `--keep` or after a failure survives `gc` (and `gc --dry-run` lists
//! it as kept, with its run id and reason); `gc --kept` removes it.

mod common;

use common::Env;

fn new_env() -> Env {
    Env::new("gc-kept-test-").removing(&["RUST_BACKTRACE"])
}

/// `gc` and `gc --dry-run` leave the one run dir there and list it as kept with `reason`;
/// `gc --kept` removes it.
fn assert_kept_until_gc_kept(env: &Env, reason: &str) {
    let dir = env.run_dirs().remove(0);
    let id = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("nomos-script-")
        .to_owned();
    let expected = format!("kept: {} (run {id}, {reason}, ", dir.display());
    for args in [&["gc", "--dry-run"][..], &["gc"][..]] {
        let gc = env.run(args);
        assert_eq!(gc.code, 0, "{gc:?}");
        assert!(gc.stdout.contains(&expected), "{expected}: {gc:?}");
        assert!(dir.exists(), "{args:?} removed a kept dir: {gc:?}");
    }
    let gc = env.run(&["gc", "--kept", "--older-than", "1d"]);
    assert_eq!(gc.code, 0, "{gc:?}");
    assert!(dir.exists(), "--older-than 1d removed a new dir: {gc:?}");
    let gc = env.run(&["gc", "--kept"]);
    assert_eq!(gc.code, 0, "{gc:?}");
    assert!(
        gc.stdout
            .contains(&format!("removed run dir {} (run {id})", dir.display())),
        "{gc:?}"
    );
    assert!(!dir.exists(), "gc --kept left it");
    env.assert_clean(0);
}

#[test]
fn a_run_kept_with_keep_survives_gc() {
    let env = new_env();
    env.run_kept_liveness();
    assert_kept_until_gc_kept(&env, "--keep");
}

#[test]
fn a_run_kept_after_a_failure_survives_gc() {
    let env = new_env();
    let run = env.run(&["run", &common::fixture("all_halted.rhai")]);
    assert_eq!(run.code, 1, "{run:?}");
    env.assert_clean(1);
    assert_kept_until_gc_kept(&env, "run failed");
}
