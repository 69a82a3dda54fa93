//! Testnets nomos-script did not deploy, as real processes: a testnet brought up with `up` (its
//! own supervisor and node processes) is handed to `run --attach-endpoints FILE` and
//! `repl --endpoints FILE` as a list of URLs only, in both file formats. Scenarios run on it,
//! node control is refused, and the nodes are still up afterwards; then `down` removes it.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

mod common;

use common::live::{LiveEnv, text};

/// Liveness on whatever nodes the run gets: the plan asks for one node, the external
/// topology (three) is used.
const LIVENESS: &str = "let plan = ScenarioBuilder::topology_with(|t| t.nodes(1))\n\
    .expect_consensus_liveness()\n\
    .with_run_duration(\"4s\")\n\
    .build();\n\
    let report = plan.run();\n\
    print(`nodes=${report.final_heights.len()} passed=${report.passed}`);\n";

/// Needs node control: refused on an external testnet.
const RESTART: &str = "let plan = ScenarioBuilder::topology_with(|t| t.nodes(3))\n\
    .enable_node_control()\n\
    .on_height(2, |net| net.restart(0))\n\
    .expect_consensus_liveness()\n\
    .with_run_duration(\"3s\")\n\
    .build();\n\
    plan.run();\n\
    print(\"unexpected: ran\");\n";

/// The live harness (the three nodes of [`common::live::TOPOLOGY`], as live.rs brings them
/// up) with the scripts above beside the topology.
fn new_env() -> LiveEnv {
    let env = LiveEnv::new("external-test-");
    std::fs::write(env.path("liveness.rhai"), LIVENESS).unwrap();
    std::fs::write(env.path("restart.rhai"), RESTART).unwrap();
    env
}

impl LiveEnv {
    /// `up`: its stdout (the TESTNET_ENDPOINTS block among it).
    fn up(&self, name: &str) -> String {
        self.up_stdout(name)
    }

    fn repl(&self, endpoints: &Path, input: &str) -> Output {
        self.repl_with(&["--endpoints", endpoints.to_str().unwrap()], input)
    }

    /// `run script --attach-endpoints endpoints`, which exits `code`: its [`text`].
    fn attached(&self, script: &str, endpoints: &Path, code: i32) -> String {
        let out = self.run(&[
            "run",
            script,
            "--attach-endpoints",
            endpoints.to_str().unwrap(),
        ]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(code), "{all}");
        all
    }

    /// Heights of the three nodes read through `repl --endpoints`.
    fn heights(&self, endpoints: &Path) -> Vec<u64> {
        let out = self.repl(
            endpoints,
            "for n in net.nodes() { print(`height: ${n.height()}`); }\n",
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let heights: Vec<u64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("height: "))
            .map(|h| h.trim().parse().unwrap())
            .collect();
        assert_eq!(heights.len(), 3, "{}", text(&out));
        heights
    }
}

#[test]
fn scenarios_and_the_repl_run_on_a_testnet_they_did_not_deploy() {
    let env = new_env();
    let up = env.up("ext");
    // the block as `up` printed it (header, node lines, footer) ...
    let block = env.path("block.txt");
    std::fs::write(&block, &up).unwrap();
    // ... and plain URLs, with a comment and a blank line
    let urls: Vec<&str> = up
        .lines()
        .filter(|l| l.starts_with("node-"))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(urls.len(), 3, "{up}");
    let plain = env.path("urls.txt");
    std::fs::write(
        &plain,
        format!("# the ext testnet\n\n{}\n", urls.join("\n")),
    )
    .unwrap();

    // (1) liveness passes on the external nodes, both formats
    for file in [&plain, &block] {
        let all = env.attached("liveness.rhai", file, 0);
        assert!(all.contains("runs against 3 external nodes"), "{all}");
        assert!(all.contains("nodes=3 passed=true"), "{all}");
    }
    // the nodes are still up: `ls` lists the testnet, heights advance
    let ls = env.run(&["ls"]);
    let ls_out = String::from_utf8_lossy(&ls.stdout);
    assert!(
        ls_out
            .lines()
            .any(|l| l.starts_with("ext") && l.contains("running")),
        "{ls_out}"
    );
    let before = env.heights(&plain);
    std::thread::sleep(Duration::from_secs(2));
    let after = env.heights(&block);
    assert!(
        after.iter().max() > before.iter().max(),
        "{before:?} -> {after:?}"
    );

    // (2) a plan needing node control is refused before anything runs
    let all = env.attached("restart.rhai", &plain, 2);
    assert!(
        all.contains("external deployer lacks node control"),
        "{all}"
    );
    assert!(!all.contains("unexpected: ran"), "{all}");

    // (3) the REPL: `net` on the external nodes, a height, node control refused, `:nodes`
    let out = env.repl(
        &block,
        "print(`h0=${net.node(0).height()}`);\nnet.restart(0);\n:nodes\n",
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("3 external nodes"), "{all}");
    assert!(all.contains("h0="), "{all}");
    assert!(
        all.contains("restart(0) failed: the external deployer cannot restart node-0")
            && all.contains("not deployed by nomos-script"),
        "{all}"
    );
    assert!(all.contains("node-2"), "{all}");
    // quitting left the nodes running
    let again = env.heights(&plain);
    assert!(
        again.iter().max() >= after.iter().max(),
        "{after:?} -> {again:?}"
    );

    let out = env.run(&["down", "ext"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // gone now: the external deployer names the unreachable URL, quickly
    let all = env.attached("liveness.rhai", &plain, 3);
    assert!(
        all.contains(urls[0]) && all.contains("unreachable"),
        "{all}"
    );
}

#[test]
fn a_bad_endpoints_line_is_named_by_file_and_line() {
    let env = new_env();
    let file = env.path("bad.txt");
    std::fs::write(&file, "http://127.0.0.1:1\n\n127.0.0.1:8080\n").unwrap();
    let want = format!("{}:3:", file.display());
    let all = env.attached("liveness.rhai", &file, 2);
    assert!(
        all.contains(&want) && all.contains("`127.0.0.1:8080`"),
        "{all}"
    );
    let out = env.repl(&file, "print(1);\n");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains(&want), "{all}");
}
