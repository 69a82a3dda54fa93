//! `check` accepts the guide's polling patterns: a dry testnet's heights grow by one per read,
//! so a loop waiting for a height ends under `check` as under `run`; a loop waiting on anything
//! else hits the operation limit with a hint to guard it with `is_check()`.

mod common;

use common::{Env, fixture};

#[test]
fn height_polls_end_under_check_and_under_run() {
    let env = Env::new("check-polls-");
    let script = fixture("poll_height.rhai");
    let check = env.run(&["check", &script]);
    assert_eq!(check.code, 0, "{check:?}");
    let run = env.run(&["run", &script]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("at "), "{run:?}");
    env.assert_clean(0);
}

#[test]
fn an_endless_loop_under_check_says_to_guard_it() {
    let env = Env::new("check-endless-");
    let p = env.path("endless.rhai");
    std::fs::write(
        &p,
        "let net = LocalDeployer().deploy(TopologyBuilder().nodes(2));\n\
         while net.node(0).consensus_info().mode != \"Online\" { sleep(\"100ms\"); }\n",
    )
    .unwrap();
    let check = env.run(&["check", p.to_str().unwrap()]);
    assert_eq!(check.code, 2, "{check:?}");
    assert!(check.stderr.contains("too many operations"), "{check:?}");
    assert!(
        check.stderr.contains("guard it with `if !is_check()"),
        "{check:?}"
    );
}
