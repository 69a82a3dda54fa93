//! Deadlines in protocol units, from real runs of the binary on local testnets: the same script
//! run with two slot durations resolves `"N slots"` and `"N blocks"` to times that scale with the
//! slot (read from the messages and the report, which state the resolved time; nothing here
//! measures elapsed time), a builder keeps the unit until the plan's topology is known, and a
//! bad unit is refused naming the value and the accepted forms.

mod common;

use common::{Env, run_command};

fn write(env: &Env, name: &str, text: &str) -> String {
    let path = env.path(name);
    std::fs::write(&path, text).expect("write script");
    path.display().to_string()
}

/// Deploys two nodes with the slot duration `--set slot=..`, waits in slots and blocks (which
/// pass; the stdlib's too), prints what deadlines stand for in seconds, then waits for a height
/// no node reaches within 4 slots (which fails, stating the time).
const WAITS: &str = r#"import "wait" as wait;
let slot = param("slot", "200ms");
let net = LocalDeployer().deploy(TopologyBuilder().network_full().nodes(2).slot_duration(slot));
net.wait_ready("150 slots");
let h = net.node(0).height();
net.wait_height(h + 2, "60 blocks");
net.wait_converged("150 slots");
let t = net.on_height(net.node(0).height() + 1, |net| net.latency("1ms"));
t.wait("60 blocks");
net.heal();
wait::wait_peers(net, 1, "150 slots");
print(`seconds: ${net.seconds("20 slots")} ${net.seconds("4 blocks")} ${net.seconds("3s")}`);
net.wait_height(1000000, "4 slots");
"#;

#[test]
fn waits_in_slots_and_blocks_scale_with_the_slot_duration() {
    let env = Env::new("deadlines-test-");
    let script = write(&env, "waits.rhai", WAITS);
    for (slot, resolved, seconds) in [
        ("200ms", "800ms at 200ms slots", "seconds: 4.0 1.0 3.0"),
        ("500ms", "2s at 500ms slots", "seconds: 10.0 2.5 3.0"),
    ] {
        let run = run_command(
            env.cmd()
                .args(["run", &script, "--set"])
                .arg(format!("slot={slot}")),
        );
        // the waits before the last passed; the last one states its slots and their time
        assert_eq!(run.code, 2, "a failed wait is a script error: {run:?}");
        let expected = format!("wait_height(1000000) timed out after 4 slots ({resolved}): node-");
        assert!(run.stderr.contains(&expected), "{expected}: {run:?}");
        assert!(run.stderr.contains("waits.rhai:13:"), "{run:?}");
        // 20 slots, 4 blocks at f = 0.8, and a duration, in seconds of this testnet
        assert!(run.stdout.contains(seconds), "{seconds}: {run:?}");
    }
    env.assert_clean(0);
}

/// A plan whose run duration, cooldown and convergence deadline are in slots.
const PLAN: &str = r#"
let plan = ScenarioBuilder::topology_with(|t| t.network_full().nodes(2).slot_duration(param("slot", "200ms")))
    .with_run_duration("10 slots")
    .with_cooldown("2 slots")
    .expect_convergence_with(|c| c.deadline("25 slots"))
    .eventually_within("50 blocks", "height 2", |ctx| ctx.node(0).height() >= 2)
    .build();
plan.run();
"#;

#[test]
fn plan_deadlines_keep_their_unit_until_the_topology_is_known() {
    let env = Env::new("deadlines-test-");
    let script = write(&env, "plan.rhai", PLAN);
    // (slot, run, cooldown, convergence deadline ms, eventually bound)
    for (slot, run_for, cooldown, deadline_ms, bound) in [
        (
            "200ms",
            "2s",
            "400ms",
            5_000,
            "50 blocks (12s 500ms at 200ms slots, f = 0.8)",
        ),
        (
            "300ms",
            "3s",
            "600ms",
            7_500,
            "50 blocks (18s 750ms at 300ms slots, f = 0.8)",
        ),
    ] {
        let json = env.path(&format!("plan-{slot}.json"));
        let run = run_command(
            env.cmd()
                .args(["run", &script, "--seed", "3", "--set"])
                .arg(format!("slot={slot}"))
                .arg("--json")
                .arg(&json),
        );
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains(&format!("running for {run_for} ")),
            "10 slots of {slot}: {run:?}"
        );
        assert!(
            run.stderr.contains(&format!("cooldown {cooldown}")),
            "2 slots of {slot}: {run:?}"
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let verdicts = report["runs"][0]["verdicts"].as_array().expect("verdicts");
        let verdict = |name: &str| {
            verdicts
                .iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("no {name} verdict: {report}"))
                .clone()
        };
        let convergence = verdict("convergence");
        assert_eq!(convergence["verdict"]["passed"], true, "{convergence}");
        assert_eq!(
            convergence["verdict"]["evidence"]["deadline_ms"], deadline_ms,
            "25 slots of {slot}"
        );
        let eventually = verdict("height 2");
        let message = eventually["verdict"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("(bound {bound})")), "{message}");
        assert_eq!(
            eventually["verdict"]["evidence"]["kind"]["EventuallyWithin"],
            "50 blocks"
        );
    }
    env.assert_clean(0);
}

#[test]
fn bad_units_are_refused_naming_the_value_and_the_accepted_forms() {
    let env = Env::new("deadlines-test-");
    for (line, says) in [
        (
            r#"ScenarioBuilder::topology_with(|t| t.nodes(2)).with_run_duration("5 epochs").build();"#,
            r#"with_run_duration = "5 epochs" is not a deadline"#,
        ),
        (
            r#"ScenarioBuilder::topology_with(|t| t.nodes(2)).expect_convergence_with(|c| c.deadline("2.5 slots")).build();"#,
            r#"deadline = "2.5 slots" is not a deadline ("2.5" is not a whole number of slots)"#,
        ),
        (
            r#"let net = LocalDeployer().deploy(TopologyBuilder().nodes(2)); net.wait_converged("-3 blocks");"#,
            r#"wait_converged deadline = "-3 blocks" is negative"#,
        ),
    ] {
        let script = write(&env, "bad.rhai", line);
        let run = env.run(&["check", &script]);
        assert_eq!(run.code, 2, "{line}: {run:?}");
        assert!(run.stderr.contains(says), "{says}: {run:?}");
        assert!(
            run.stderr.contains(r#""N slots" or "N blocks""#),
            "the accepted forms: {run:?}"
        );
        assert!(run.stderr.contains("bad.rhai:1:"), "{run:?}");
    }
}
