//! Repetitions that decide something, from real runs of the binary on local testnets of the
//! seed-dependent fixture `reports_flaky.rhai` (even seeds pass, odd seeds fail with node-1
//! halted): `--until-fail` stopping at the first failure and naming its seed, `--max-failure-rate`
//! passing and failing on the Wilson interval, and `--jobs` running repetitions side by side as
//! child processes with their own run dirs, merged into one report.

mod common;

use common::{Env, fixture, run_command};

fn new_env() -> Env {
    Env::new("repeat-test-").removing(&[
        "LOGOS_BLOCKCHAIN_METRICS_QUERY_URL",
        "LOGOS_BLOCKCHAIN_PROMETHEUS_SD_FILE",
    ])
}

fn flaky(extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "run".to_owned(),
        fixture("reports_flaky.rhai"),
        "--set".to_owned(),
        "duration=2s".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON report")
}

#[test]
fn until_fail_stops_at_the_first_failure_and_prints_its_seed() {
    let env = new_env();
    let json = env.path("until.json");
    let run = run_command(
        env.cmd()
            .args(flaky(&["--seed", "10", "--until-fail", "5", "--json"]))
            .arg(&json),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(
            "until-fail: the repetition with seed 11 failed (exit 1); replay it with: nomos-script run "
        ) && run.stdout.contains("reports_flaky.rhai --seed 11"),
        "{run:?}"
    );
    // seed 10 passed, 11 failed, nothing after it ran
    assert!(run.stderr.contains("repeat 2/5: seed 11"), "{run:?}");
    assert!(!run.stderr.contains("repeat 3/5"), "{run:?}");
    let report = read_json(&json);
    assert_eq!(report["repeat"]["repetitions"], 2);
    assert_eq!(report["repeat"]["until_fail"]["failed_seed"], 11);
    // the failed run's dir is kept, as after any failure; nothing else is left
    env.assert_clean(1);

    // no failure within the limit: exit 0, and it says so
    let env = new_env();
    let run = run_command(
        env.cmd()
            .args(flaky(&["--seed", "10", "--until-fail", "1"])),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("until-fail: no failure in 1 repetition (limit 1)"),
        "{run:?}"
    );
    env.assert_clean(0);
}

#[test]
fn max_failure_rate_passes_only_below_the_upper_bound() {
    // 0 failures in 1 run: the upper bound is 79.3%, below 80%
    let env = new_env();
    let json = env.path("pass.json");
    let run = run_command(
        env.cmd()
            .args(flaky(&[
                "--seed",
                "10",
                "--max-failure-rate",
                "80%",
                "--json",
            ]))
            .arg(&json),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "max failure rate 80.0%: passed: the 95% upper bound 79.3% is below 80.0% (0/1 failed"
        ),
        "{run:?}"
    );
    let report = read_json(&json);
    let rate = &report["repeat"]["failure_rate"];
    assert_eq!(
        (rate["failures"].as_u64(), rate["runs"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(report["repeat"]["decision"]["verdict"], "below");
    assert_eq!(report["exit_code"], 0);

    // 1 failure in 2 (seeds 10, 11): the interval is 9.5%-90.5%, undecided against 60%, and the
    // runs that would settle it are named
    let json = env.path("fail.json");
    let run = run_command(
        env.cmd()
            .args(flaky(&[
                "--seed",
                "10",
                "--repeat",
                "2",
                "--max-failure-rate",
                "0.6",
                "--json",
            ]))
            .arg(&json),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("failure rate              1/2 failed (50.0%, 95% CI 9.5%-90.5%)"),
        "{run:?}"
    );
    // per expectation: consensus liveness failed in the odd seed's run
    assert!(
        run.stdout
            .contains("    consensus_liveness      1/2 failed (50.0%, 95% CI 9.5%-90.5%)"),
        "{run:?}"
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("max failure rate 60.0%: failed"))
        .unwrap_or_else(|| panic!("no verdict line: {run:?}"));
    assert!(
        line.contains("the 95% upper bound 90.5% is not below 60.0%")
            && line.contains("failing at the observed 50.0% would show it below (--repeat"),
        "{line}"
    );
    let report = read_json(&json);
    let decision = &report["repeat"]["decision"];
    assert_eq!(decision["verdict"], "undecided");
    let needed = decision["runs_needed"].as_u64().expect("runs needed");
    assert!(line.contains(&format!("({needed} in all)")), "{line}");
    assert_eq!(
        report["repeat"]["expectations"][0]["name"],
        "consensus_liveness"
    );
    assert_eq!(
        report["repeat"]["expectations"][0]["failure_rate"]["failures"],
        1
    );
    env.assert_clean(1);
}

#[test]
fn jobs_run_repetitions_side_by_side_each_on_its_own_testnet() {
    let env = new_env();
    let json = env.path("jobs.json");
    let dir = env.path("report");
    let run = run_command(
        env.cmd()
            .args(flaky(&[
                "--seed", "10", "--repeat", "4", "--jobs", "2", "--json",
            ]))
            .arg(&json)
            .arg("--report-dir")
            .arg(&dir),
    );
    assert_eq!(run.code, 1, "two of four failed: {run:?}");
    assert!(
        run.stdout
            .contains("repeat: 2/4 passed (pass rate 50%, flake rate 50%)"),
        "{run:?}"
    );
    // the second repetition started before the first had finished: two at a time
    let at = |needle: &str| {
        run.stderr
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?}: {run:?}"))
    };
    assert!(
        at("repeat 2/4: seed 11 started") < at("repeat 1/4: seed 10 passed"),
        "{run:?}"
    );
    // the failed repetitions' own output (the failure naming node-1) is shown
    assert!(run.stderr.contains("node-1"), "{run:?}");

    let report = read_json(&json);
    let runs = report["runs"].as_array().expect("runs");
    let seeds: Vec<_> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [10, 11, 12, 13], "in repetition order");
    let outcomes: Vec<_> = runs.iter().map(|r| r["outcome"]["kind"].clone()).collect();
    assert_eq!(outcomes, ["passed", "failed", "passed", "failed"]);
    // each on its own run dir and run id
    let mut run_dirs: Vec<_> = runs.iter().map(|r| r["run_dir"].to_string()).collect();
    run_dirs.sort();
    run_dirs.dedup();
    assert_eq!(run_dirs.len(), 4, "{run_dirs:?}");
    let reps = report["repetitions"].as_array().expect("repetitions");
    assert_eq!(reps.len(), 4);
    assert_eq!(reps[1]["run_ids"][0], runs[1]["run_id"]);

    // one merged HTML report over the four runs, each on its own node ports
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    for r in runs {
        let id = r["run_id"].as_str().unwrap();
        assert!(html.contains(id), "index.html lacks run {id}");
    }
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("recorded-runs.json")).expect("recorded runs"),
    )
    .unwrap();
    let mut endpoints: Vec<String> = recorded
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["endpoints"].as_array().unwrap().clone())
        // a local node's log dir: the last word of its TESTNET_ENDPOINTS line
        .map(|e| e["host"]["logs"].as_str().unwrap().to_owned())
        .collect();
    let n = endpoints.len();
    assert!(n >= 8, "2 nodes x 4 runs: {endpoints:?}");
    endpoints.sort();
    endpoints.dedup();
    assert_eq!(endpoints.len(), n, "a port served two runs");
    // node files copied by the children are linked from the merged index and exist
    let artifacts: Vec<String> = recorded
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["artifacts"].as_array().unwrap().clone())
        .map(|a| a["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(!artifacts.is_empty(), "{recorded}");
    for a in &artifacts {
        assert!(a.starts_with("repetitions/seed-"), "{a}");
        assert!(dir.join(a).is_file(), "{a} missing");
    }
    // the two failed runs keep their dirs; no process and no scratch dir is left
    env.assert_clean(2);
    let scratch: Vec<_> = std::fs::read_dir(env.tmp.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("repeat-jobs-"))
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");

    // parallel repetitions cannot share an attached testnet
    let endpoints = env.path("endpoints.txt");
    std::fs::write(&endpoints, "http://127.0.0.1:1\n").unwrap();
    let run = run_command(
        env.cmd()
            .args(flaky(&[
                "--repeat",
                "2",
                "--jobs",
                "2",
                "--attach-endpoints",
            ]))
            .arg(&endpoints),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--jobs 2 with --attach-endpoints"),
        "{run:?}"
    );
}

#[test]
fn interrupting_parallel_repetitions_tears_every_testnet_down() {
    use std::io::Read as _;
    let env = new_env();
    let mut child = env
        .cmd()
        .args([
            "run",
            &fixture("reports_flaky.rhai"),
            "--set",
            "duration=120s",
            "--seed",
            "10",
            "--repeat",
            "6",
            "--jobs",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start nomos-script");
    // both repetitions have their node processes up (waiting for them is not what is tested)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let nodes = || {
        env.processes()
            .lines()
            .filter(|l| l.contains(" devnode "))
            .count()
    };
    while !(env.run_dirs().len() == 2 && nodes() == 4) {
        assert!(
            std::time::Instant::now() < deadline,
            "two repetitions never deployed: {:?} {}",
            env.run_dirs(),
            env.processes()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // one Ctrl-C, as a terminal sends it to the parent (the children are in their own groups)
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        !stderr.contains("repeat 3/6"),
        "no repetition starts after Ctrl-C: {stderr}"
    );
    assert!(
        stderr.contains("repeat 1/6: seed 10 interrupted (exit 130)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("repeat 2/6: seed 11 interrupted (exit 130)"),
        "{stderr}"
    );
    // every child tore its testnet down and removed its run dir, as after any interrupt
    env.assert_clean(0);
}

#[test]
fn until_fail_with_jobs_names_the_first_failing_seed_and_starts_no_more() {
    let env = new_env();
    let json = env.path("until-jobs.json");
    let run = run_command(
        env.cmd()
            .args(flaky(&[
                "--seed",
                "10",
                "--until-fail",
                "6",
                "--jobs",
                "2",
                "--json",
            ]))
            .arg(&json),
    );
    assert_eq!(run.code, 1, "{run:?}");
    // seeds 10 and 11 start together; whatever finished meanwhile, the first failure in seed
    // order is 11, and once it is seen nothing new starts (a slot frees at most twice before)
    assert!(
        run.stdout
            .contains("until-fail: the repetition with seed 11 failed (exit 1)"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("repeat 5/6"), "{run:?}");
    let report = read_json(&json);
    assert_eq!(report["repeat"]["until_fail"]["failed_seed"], 11);
    let seeds: Vec<u64> = report["repetitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(&seeds[..2], [10, 11], "in seed order: {seeds:?}");
    assert!(seeds.len() <= 4, "{seeds:?}");
    env.assert_clean(seeds.iter().filter(|s| *s % 2 == 1).count());
}
