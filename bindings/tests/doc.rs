//! The script reference as a product: every registered function documented with an example,
//! every stdlib function listed, the committed copy in docs/reference identical to what the
//! generator writes (the drift check), editor definitions written, and every example of the
//! reference and the guide checked, the quick ones run against one real local testnet.

use nomos_script::doc::command::{diff, generate};
use nomos_script::doc::engine::surface;
use nomos_script::doc::stdlib::read_dir;

mod common;

use common::{command as cmd, workspace};

#[test]
fn every_registered_function_has_a_doc_comment_and_an_example() {
    let surface = surface().expect("surface");
    assert!(surface.functions.len() > 100, "the surface looks empty");
    let undocumented = surface.undocumented();
    let unclassified = surface.unclassified();
    assert!(
        undocumented.is_empty() && unclassified.is_empty(),
        "register every script function with `script_fn!` (crate::doc::registry), a doc comment \
         and a ```rhai example.\nwithout doc or example ({}): {}\nregistered without the \
         registrar ({}): {}",
        undocumented.len(),
        undocumented.join(", "),
        unclassified.len(),
        unclassified.join(", ")
    );
    for t in &surface.types {
        assert!(!t.doc.is_empty(), "type {} has no doc comment", t.name);
    }
}

#[test]
fn every_stdlib_function_appears_in_the_reference() {
    let dir = workspace().join("stdlib");
    let modules = read_dir(&dir).expect("stdlib");
    assert!(
        !modules.is_empty(),
        "no stdlib modules in {}",
        dir.display()
    );
    let (_, _, pages) = generate(Some(&dir)).expect("generate");
    let page = pages.get("stdlib.md").expect("a stdlib page");
    for m in &modules {
        assert!(
            page.contains(&format!("import \"{0}\" as {0};", m.name)),
            "module {} missing",
            m.name
        );
        for f in &m.functions {
            let heading = format!("### `{}`", f.signature(&m.name));
            assert!(page.contains(&heading), "{heading} missing from stdlib.md");
        }
    }
}

/// The drift check: docs/reference must be exactly what `nomos-script doc` writes. On failure,
/// regenerate with `cargo run -p nomos-script -- doc` from the workspace root and commit.
#[test]
fn committed_reference_matches_the_generator() {
    let root = workspace();
    let (_, _, pages) = generate(Some(&root.join("stdlib"))).expect("generate");
    let drift = diff(&root.join("docs/reference"), &pages).expect("diff");
    assert!(
        drift.is_empty(),
        "docs/reference is out of date (run `cargo run -p nomos-script -- doc` and commit):\n{}",
        drift.join("\n")
    );
}

#[test]
fn doc_check_fails_on_an_edited_reference_and_passes_on_a_fresh_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("ref");
    let status = cmd(tmp.path())
        .args(["doc", "--out"])
        .arg(&out)
        .status()
        .expect("doc");
    assert!(status.success());
    let check = |what: &str| {
        let o = cmd(tmp.path())
            .args(["doc", "--check", "--out"])
            .arg(&out)
            .output()
            .expect("doc --check");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
            what.to_string(),
        )
    };
    let (code, stderr, _) = check("fresh");
    assert_eq!(code, Some(0), "{stderr}");
    let page = out.join("topology.md");
    let text = std::fs::read_to_string(&page).expect("topology.md");
    std::fs::write(&page, text.replace("Slot length", "Slot size")).expect("edit");
    let (code, stderr, _) = check("edited");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("topology.md differs"), "{stderr}");
    std::fs::remove_file(out.join("README.md")).expect("remove");
    let (code, stderr, _) = check("missing");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("README.md is missing"), "{stderr}");
}

#[test]
fn definitions_describe_the_surface_for_editors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("defs");
    let o = cmd(tmp.path())
        .args(["doc", "--definitions"])
        .arg(&dir)
        .output()
        .expect("doc --definitions");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut all = String::new();
    for e in std::fs::read_dir(&dir).expect("defs dir").flatten() {
        assert!(e.path().to_string_lossy().ends_with(".d.rhai"));
        all.push_str(&std::fs::read_to_string(e.path()).expect("read"));
    }
    assert!(
        all.contains("fn nodes(builder: TopologyBuilder, n: int) -> TopologyBuilder;"),
        "{all}"
    );
    assert!(all.contains("/// Sets how many nodes are deployed at start"));
    assert!(
        all.contains("module ScenarioBuilder"),
        "static module missing"
    );
    assert!(
        !dir.join("README.md").exists(),
        "--definitions alone writes no Markdown"
    );
}

/// Every example of the reference, the stdlib and the guide is checked; the runnable ones run
/// against one shared 4-node local testnet (see `nomos_script::doc::examples::PRELUDE`).
#[test]
fn every_example_is_checked_and_the_quick_ones_run_on_a_real_testnet() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cmd(tmp.path());
    c.args(["doc", "--run-examples"]);
    for g in ["docs/guide.md", "docs/from-rust.md"] {
        if workspace().join(g).exists() {
            c.args(["--guide", g]);
        }
    }
    let started = std::time::Instant::now();
    let o = c.output().expect("doc --run-examples");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(" run, 0 failed"), "{stdout}");
    eprintln!("{stdout}took {:?}", started.elapsed());
    // nothing left behind
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "run dirs left: {left:?}");
}

/// The example runner is a real check: a block that does not parse, or that calls something
/// that does not exist, fails the command and is named with its position.
#[test]
fn a_broken_example_fails_the_example_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let guide = tmp.path().join("broken.md");
    std::fs::write(
        &guide,
        "# Broken\n\n```rhai\nlet t = TopologyBuilder().nodes(3);\n```\n\n```rhai\nlet t = TopologyBuilder().nodez(3);\n```\n",
    )
    .expect("write");
    let o = cmd(tmp.path())
        .args(["doc", "--run-examples", "--no-live", "--guide"])
        .arg(&guide)
        .output()
        .expect("doc --run-examples");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("broken.md block 2 (check)") && stderr.contains("nodez"),
        "{stderr}"
    );
    assert!(!stderr.contains("broken.md block 1 "), "{stderr}");
}

/// With --run-guides, a guide block that builds a plan or a builder is run to its verdict on
/// the given seed: a block whose plan fails fails the command and is named, a block whose plan
/// passes only on that seed passes; without the flag both are only checked.
#[test]
fn guide_plans_run_to_their_verdict_on_the_given_seed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let guide = tmp.path().join("plans.md");
    std::fs::write(
        &guide,
        "# Plans\n\n```rhai\nlet plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration(\"100ms\"))\n    .with_expectation(\"seed\", |ctx| #{ passed: ctx.seed == 5, message: `seed ${ctx.seed}` })\n    .with_run_duration(\"1s\")\n    .build();\n```\n\n```rhai\nlet builder = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration(\"100ms\"))\n    .with_expectation(\"never\", |ctx| #{ passed: false, message: \"planted\" });\n```\n",
    )
    .expect("write");
    let run = |extra: &[&str]| {
        let o = cmd(tmp.path())
            .args(["doc", "--run-examples", "--guides-only", "--guide"])
            .arg(&guide)
            .args(extra)
            .output()
            .expect("doc --run-examples");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["--run-guides", "--seed", "5"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("(seed 5)"), "{out}");
    assert!(
        err.contains("plans.md block 2 (run)") && err.contains("planted"),
        "{err}"
    );
    assert!(!err.contains("plans.md block 1 "), "{err}");
    let (code, out, err) = run(&["--run-guides", "--seed", "6"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        err.contains("plans.md block 1 (run)") && err.contains("seed 6"),
        "{err}"
    );
    let (code, out, err) = run(&[]);
    assert_eq!(
        code,
        Some(0),
        "only checked without --run-guides\n{out}\n{err}"
    );
    assert!(out.contains("2 checked, 0 run"), "{out}");
}
