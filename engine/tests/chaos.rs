//! Chaos with real reference nodes (100 ms slots): random restarts under
//! transaction load, partitions that fork and reorganise on heal, faults
//! triggered at a height, invariants that fail a run early with a witness,
//! seeded replay of the fault timeline, and a catch-up check that fails on a
//! node that cannot catch up.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_empty, deployer, fast, ms, run_opts, secs};
use engine::chaos::{
    self, ChaosAction, ChaosBuilder, ChaosScenarioExt, ChaosWorkload, Check, Trigger,
    TriggerWorkload,
};
use engine::context::RunContext;
use engine::deploy::{DeployOptions, Deployer};
use engine::expectation::{Expectation, ExpectationError, Verdict};
use engine::links::Fault;
use engine::report::{Outcome, RunReport};
use engine::runner::run_scenario;
use engine::scenario::ScenarioBuilder;
use engine::topology::TopologyBuilder;
use engine::workload::{Workload, WorkloadError};
use futures::future::BoxFuture;

fn verdict<'a>(r: &'a RunReport, name: &str) -> &'a Verdict {
    &r.verdicts
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no verdict {name}: {}", r.summary()))
        .verdict
}

/// True once the block feed has seen some node at `height` or above.
fn some_node_reached(height: u64) -> chaos::Predicate {
    chaos::predicate(move |ctx: RunContext| async move {
        let h = ctx.block_feed().stats().heights;
        Ok(Check::from(h.iter().flatten().any(|h| *h >= height)))
    })
}

/// Every transaction found in a FINAL block (k deep) at any moment of the run
/// must still be in the canonical chain of every node at the end.
#[derive(Default)]
struct NoFinalTxLost {
    seen: Arc<Mutex<HashMap<String, (String, u64)>>>,
}

impl Expectation for NoFinalTxLost {
    fn name(&self) -> String {
        "no_final_tx_lost".to_owned()
    }

    fn start_capture<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<(), ExpectationError>> {
        let seen = self.seen.clone();
        let ctx = ctx.clone();
        Box::pin(async move {
            let k = ctx.testnet().topology().params.security_param;
            let over = ctx.run_over();
            tokio::spawn(async move {
                while !over.is_cancelled() {
                    tokio::time::sleep(ms(200)).await;
                    let feed = ctx.block_feed();
                    let top = feed
                        .stats()
                        .heights
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap_or(0);
                    for r in ctx.tx_log().records() {
                        if let Some(b) = feed.tx_included(&r.id)
                            && b.height + k <= top
                        {
                            seen.lock().unwrap().insert(r.id, (b.id, b.height));
                        }
                    }
                }
            });
            Ok(())
        })
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let seen = self.seen.lock().unwrap().clone();
            let feed = ctx.block_feed();
            let mut lost = Vec::new();
            for (tx, (block, h)) in &seen {
                match feed.tx_included(tx) {
                    Some(b) if &b.id == block => {}
                    other => lost.push(format!("{tx} (was in {block}@{h}, now {other:?})")),
                }
                for i in 0..ctx.testnet().node_count() {
                    if let Some(id) = feed.canonical_at(i, *h)
                        && &id != block
                    {
                        lost.push(format!("node-{i} has {id} at {h}, not {block}"));
                    }
                }
            }
            let msg = format!("{} final transactions, {} lost", seen.len(), lost.len());
            Ok(if seen.len() >= 5 && lost.is_empty() {
                Verdict::pass(msg, serde_json::Value::Null)
            } else {
                Verdict::fail(
                    format!("{msg}: {}", lost.join("; ")),
                    serde_json::Value::Null,
                )
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_restarts_under_transaction_load_lose_no_included_transaction() {
    let base = tempfile::tempdir().unwrap();
    let chaos = Arc::new(ChaosWorkload::new(
        ChaosBuilder::new()
            .restart()
            .min_delay(ms(1000))
            .max_delay(ms(1500))
            .target_cooldown(secs(3))
            .catch_up_within(secs(15))
            .apply(),
    ));
    let plan = ScenarioBuilder::topology_with(|t| fast(t.network_full().nodes(3)))
        .wallets(8)
        .transactions_with(|t| t.rate(2.0).users(4))
        .enable_node_control()
        .enable_network_faults()
        .with_chaos(chaos.clone())
        .with_expectation(Arc::new(NoFinalTxLost::default()))
        .expect_consensus_liveness()
        .with_run_duration(secs(7))
        .seed(11)
        .build()
        .unwrap();
    assert!(
        plan.capabilities
            .contains(&engine::deploy::Capability::NodeControl)
    );
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    let log = chaos.log();
    assert_eq!(
        report.outcome,
        Outcome::Passed,
        "{}\n{log:#?}",
        report.summary()
    );
    let restarts = log
        .iter()
        .filter(|r| r.action.starts_with("restart node-") && r.error.is_none())
        .count();
    assert!(restarts >= 3, "only {restarts} restarts: {log:#?}");
    assert!(
        report.timeline.iter().any(|e| e.what.contains("caught up")),
        "no catch-up note in the timeline"
    );
    assert!(verdict(&report, "no_final_tx_lost").passed);
    assert_empty(base.path());
}

/// Reads every node's tip while the network is split.
struct ForkWatch {
    at: Duration,
    tips: Arc<Mutex<Vec<(u64, String)>>>,
}

impl Workload for ForkWatch {
    fn name(&self) -> String {
        "fork_watch".to_owned()
    }

    fn run(
        &self,
        ctx: RunContext,
        stop: engine::CancellationToken,
    ) -> BoxFuture<'static, Result<(), WorkloadError>> {
        let at = self.at;
        let tips = self.tips.clone();
        Box::pin(async move {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(at) => {}
            }
            let mut out = Vec::new();
            for c in ctx.clients().iter() {
                let i = c
                    .consensus_info()
                    .await
                    .map_err(|e| WorkloadError::new(e.to_string()))?;
                out.push((i.height, i.tip));
            }
            *tips.lock().unwrap() = out;
            Ok(())
        })
    }
}

/// Passes when the block feed saw a node abandon at least 3 blocks (ordinary
/// forks reorganise one block deep; a healed split, as deep as the split ran).
struct ReorgSeen;

impl Expectation for ReorgSeen {
    fn name(&self) -> String {
        "reorg_seen".to_owned()
    }

    fn evaluate<'a>(
        &'a self,
        ctx: &'a RunContext,
    ) -> BoxFuture<'a, Result<Verdict, ExpectationError>> {
        Box::pin(async move {
            let st = ctx.block_feed().stats();
            let msg = format!(
                "reorgs seen: {} (deepest {})",
                st.reorgs, st.max_reorg_depth
            );
            Ok(if st.max_reorg_depth >= 3 {
                Verdict::pass(msg, serde_json::Value::Null)
            } else {
                Verdict::fail(msg, serde_json::Value::Null)
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_makes_two_chains_and_heal_reorganises_them_into_one() {
    let base = tempfile::tempdir().unwrap();
    let tips = Arc::new(Mutex::new(Vec::new()));
    let plan = ScenarioBuilder::topology_with(|t| {
        t.network_full()
            .nodes(4)
            .slot_duration(ms(100))
            .active_slot_coeff(0.9)
            .security_param(60)
    })
    .enable_node_control()
    .enable_network_faults()
    .chaos_with(|c| {
        c.schedule()
            .at_for(
                ms(500),
                ChaosAction::Partition(vec![vec![0, 1], vec![2, 3]]),
                ms(3500),
            )
            .apply()
    })
    .with_workload(Arc::new(ForkWatch {
        at: ms(3500),
        tips: tips.clone(),
    }))
    .with_expectation(Arc::new(ReorgSeen))
    .expect_convergence_with(|c| c.deadline(secs(15)).max_tip_spread(2))
    .with_run_duration(secs(6))
    .build()
    .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.summary());
    let tips = tips.lock().unwrap().clone();
    assert_eq!(tips.len(), 4);
    // a side's two nodes may be sampled a block apart (one just produced it)
    assert!(
        tips[0].0.abs_diff(tips[1].0) <= 2 && tips[2].0.abs_diff(tips[3].0) <= 2,
        "one side disagrees with itself: {tips:?}"
    );
    assert!(
        tips[0].1 != tips[2].1 && tips[1].1 != tips[3].1,
        "no fork while split: {tips:?}"
    );
    assert!(
        tips.iter().all(|(h, _)| *h >= 8),
        "both sides must keep producing: {tips:?}"
    );
    // the fault is in the log, applied and reverted by the workload
    let parts: Vec<_> = report
        .fault_log
        .iter()
        .filter(|r| matches!(r.fault, Fault::Partition(_)))
        .collect();
    assert_eq!(parts.len(), 2, "{:?}", report.fault_log);
    assert!(!parts[0].reverted && parts[1].reverted);
    assert!(
        parts[0].note.as_deref().unwrap_or("").contains("height"),
        "{:?}",
        parts[0].note
    );
    assert!(
        report.verdicts.iter().all(|v| v.verdict.passed),
        "{}",
        report.summary()
    );
    // the block feed saw nodes switch branches after the heal
    let m = &verdict(&report, "reorg_seen").message;
    assert!(m.starts_with("reorgs seen: "), "{m}");
    assert!(
        report
            .timeline
            .iter()
            .any(|e| e.what.contains("revert partition")),
        "{}",
        report.summary()
    );
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_triggered_at_a_height_fires_at_that_height() {
    let base = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(None::<u64>));
    let s2 = seen.clone();
    let action = chaos::action(move |fired, net| {
        let seen = s2.clone();
        async move {
            let mut max = 0;
            for c in net.clients().iter() {
                max = max.max(c.consensus_info().await.map_err(|e| e.to_string())?.height);
            }
            *seen.lock().unwrap() = Some(max);
            net.apply_fault(
                Fault::Isolate(2),
                Some(format!("on_height(12) at height {:?}", fired.height)),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        }
    });
    let trigger = Arc::new(TriggerWorkload::new(
        "isolate_at_12",
        Trigger::Height(12),
        action,
    ));
    let plan = ScenarioBuilder::topology_with(|t| fast(t.network_full().nodes(3)))
        .enable_network_faults()
        .with_workload(trigger.clone())
        .always(
            "every node answers",
            chaos::predicate(|ctx: RunContext| async move {
                for c in ctx.clients().iter() {
                    if c.consensus_info().await.is_err() {
                        return Ok(Check::with(false, format!("{} does not answer", c.name())));
                    }
                }
                Ok(Check::from(true))
            }),
        )
        .eventually_within(secs(4), "height 5 reached", some_node_reached(5))
        .with_run_duration(secs(4))
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.summary());
    let fired = trigger.fired().expect("the trigger fired");
    let h = fired.height.expect("a height");
    assert!((12..=13).contains(&h), "fired at height {h}");
    let at_action = seen.lock().unwrap().expect("the action ran");
    assert!(
        (12..=13).contains(&at_action),
        "the nodes were at {at_action} when the fault was applied"
    );
    let rec = report
        .fault_log
        .iter()
        .find(|r| r.fault == Fault::Isolate(2) && !r.reverted)
        .expect("isolate in the fault log");
    assert!(rec.note.as_deref().unwrap().contains("on_height(12)"));
    assert!(
        verdict(&report, "every node answers")
            .message
            .starts_with("always held over ")
    );
    assert!(
        verdict(&report, "height 5 reached")
            .message
            .starts_with("held after ")
    );
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_on_a_live_testnet_fire_at_their_height_and_slot() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().network_full().nodes(2))
        .build()
        .unwrap();
    let net = deployer(base.path())
        .deploy(&topo, &DeployOptions::default())
        .await
        .unwrap();
    let info = net
        .clients()
        .get(0)
        .unwrap()
        .consensus_info()
        .await
        .unwrap();
    let (h, s) = (info.height + 6, info.slot + 10);
    let by_height = chaos::trigger::arm(
        net.clone(),
        Trigger::Height(h),
        chaos::action(|_, net| async move {
            net.isolate(1).await.map(|_| ()).map_err(|e| e.to_string())
        }),
    );
    let by_slot = chaos::trigger::arm(
        net.clone(),
        Trigger::Slot(s),
        chaos::action(|_, _| async { Ok(()) }),
    );
    let never = chaos::trigger::arm(
        net.clone(),
        Trigger::Height(1_000_000),
        chaos::action(|_, _| async { Ok(()) }),
    );
    let f = by_height.wait(secs(10)).await.unwrap();
    assert!(
        f.height.is_some_and(|x| x == h || x == h + 1),
        "height trigger {h} fired at {f:?}"
    );
    let f = by_slot.wait(secs(10)).await.unwrap();
    assert!(
        f.slot.is_some_and(|x| x == s || x == s + 1),
        "slot trigger {s} fired at {f:?}"
    );
    assert_eq!(net.active_faults().len(), 1, "the isolate is in force");
    let err = never.wait(ms(300)).await.unwrap_err();
    assert!(
        err.contains("did not fire and finish within 300ms"),
        "{err}"
    );
    never.cancel();
    let err = never.wait(secs(2)).await.unwrap_err();
    assert_eq!(err, "on_height(1000000) was cancelled before it fired");
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_always_fails_the_run_early_with_a_witness() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| {
        fast(t.network_full().nodes(3)).with_node_override(2, "testing.halt_at_height", 4.into())
    })
    .always(
        "heights within 3",
        chaos::predicate(|ctx: RunContext| async move {
            let mut hs = Vec::new();
            for c in ctx.clients().iter() {
                hs.push(c.consensus_info().await.map_err(|e| e.to_string())?.height);
            }
            let max = *hs.iter().max().unwrap();
            let (low, min) = hs.iter().enumerate().min_by_key(|(_, h)| **h).unwrap();
            Ok(Check::with(
                max - min <= 3,
                format!("node-{low} at height {min}, highest {max}"),
            ))
        }),
    )
    .expect_consensus_liveness()
    .with_run_duration(secs(60))
    .build()
    .unwrap();
    let started = Instant::now();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    let took = started.elapsed();
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert_eq!(report.exit_code(), engine::exit::SCENARIO_FAILED);
    assert!(took < secs(20), "the run was not stopped early: {took:?}");
    assert_eq!(
        report.verdicts.len(),
        1,
        "evaluation must be skipped: {}",
        report.summary()
    );
    let v = verdict(&report, "heights within 3");
    assert!(!v.passed);
    let m = &v.message;
    assert!(
        m.starts_with("invariant `heights within 3` (always) violated at "),
        "{m}"
    );
    assert!(m.contains(": node-2 at height 4, highest "), "{m}");
    assert!(m.contains("; heights: node-0 "), "{m}");
    assert!(m.contains("node-2 4"), "{m}");
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventually_within_and_never_fail_when_broken() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| fast(t.nodes(2)))
        .eventually_within(ms(800), "height 10000", some_node_reached(10_000))
        .with_run_duration(secs(60))
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert!(report.timings.total < secs(20), "{:?}", report.timings);
    let m = &verdict(&report, "height 10000").message;
    assert!(
        m.starts_with("invariant `height 10000` (eventually within 800ms) violated at "),
        "{m}"
    );
    assert!(m.contains("still false after 800ms"), "{m}");

    let plan = ScenarioBuilder::topology_with(|t| fast(t.nodes(2)))
        .never("height 6 reached", some_node_reached(6))
        .with_run_duration(secs(60))
        .build()
        .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert!(report.timings.total < secs(20), "{:?}", report.timings);
    let m = &verdict(&report, "height 6 reached").message;
    assert!(m.contains("(never) violated at "), "{m}");
    assert!(m.contains("the predicate was true"), "{m}");
    assert_empty(base.path());
}

fn replay_plan(seed: u64, chaos: Arc<ChaosWorkload>) -> engine::scenario::Scenario {
    ScenarioBuilder::topology_with(|t| fast(t.network_full().nodes(3)))
        .enable_node_control()
        .enable_network_faults()
        .with_chaos(chaos)
        .with_run_duration(secs(5))
        .seed(seed)
        .build()
        .unwrap()
}

fn replay_chaos() -> ChaosBuilder {
    // nothing new in the last second: a slow restart cannot push a step past the end
    ChaosBuilder::new()
        .quiet_tail(secs(1))
        .restart()
        .min_delay(ms(800))
        .max_delay(ms(1600))
        .target_cooldown(secs(2))
        .apply()
        .partition()
        .min_delay(ms(500))
        .max_delay(ms(1000))
        .min_duration(ms(300))
        .max_duration(ms(800))
        .apply()
        .degrade()
        .latency(ms(50))
        .loss(0.05)
        .min_delay(ms(400))
        .max_delay(ms(900))
        .duration(ms(400))
        .apply()
}

/// The executed timeline of each stream: planned offset and action of each
/// record, by stream (streams run concurrently, so only their own order is fixed).
fn executed(w: &ChaosWorkload) -> Vec<(usize, u128, String)> {
    let mut v: Vec<_> = w
        .log()
        .into_iter()
        .map(|r| (r.stream, r.planned_at.as_millis(), r.action))
        .collect();
    v.sort_by_key(|x| x.0);
    v
}

/// The network faults applied (sorted: two streams may act within the same
/// millisecond), and how many reverts.
fn faults(r: &RunReport) -> (Vec<String>, usize) {
    let mut applied: Vec<String> = r
        .fault_log
        .iter()
        .filter(|f| !f.reverted)
        .map(|f| f.fault.to_string())
        .collect();
    applied.sort();
    (applied, r.fault_log.iter().filter(|f| f.reverted).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_replays_the_same_fault_timeline() {
    let base = tempfile::tempdir().unwrap();
    let a = Arc::new(ChaosWorkload::new(replay_chaos()));
    let b = Arc::new(ChaosWorkload::new(replay_chaos()));
    let ra = run_scenario(
        &replay_plan(42, a.clone()),
        &deployer(base.path()),
        run_opts(),
    )
    .await;
    let rb = run_scenario(
        &replay_plan(42, b.clone()),
        &deployer(base.path()),
        run_opts(),
    )
    .await;
    assert_eq!(
        ra.outcome,
        Outcome::Passed,
        "{}\n{:#?}",
        ra.summary(),
        a.log()
    );
    assert_eq!(
        rb.outcome,
        Outcome::Passed,
        "{}\n{:#?}",
        rb.summary(),
        b.log()
    );
    assert!(a.planned().len() >= 6, "{:?}", a.planned());
    assert_eq!(a.planned(), b.planned());
    assert_eq!(executed(&a), executed(&b));
    assert!(a.log().iter().all(|r| r.error.is_none()), "{:#?}", a.log());
    assert_eq!(faults(&ra), faults(&rb));
    assert!(faults(&ra).0.len() >= 4, "{:?}", faults(&ra));
    assert_eq!(
        faults(&ra).0.len(),
        faults(&ra).1,
        "every fault is reverted"
    );
    // another seed, another timeline
    let edges = replay_plan(42, a.clone()).topology().edges.clone();
    let other = chaos::plan_on(&replay_chaos(), 43, 3, &edges, secs(5)).unwrap();
    assert_ne!(other, a.planned());
    assert_eq!(
        chaos::plan_on(&replay_chaos(), 42, 3, &edges, secs(5)).unwrap(),
        a.planned()
    );
    assert_empty(base.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_that_cannot_catch_up_fails_the_chaos_workload() {
    let base = tempfile::tempdir().unwrap();
    let plan = ScenarioBuilder::topology_with(|t| {
        fast(t.network_full().nodes(3)).with_node_override(2, "testing.halt_at_height", 3.into())
    })
    .enable_node_control()
    .enable_network_faults()
    .chaos_with(|c| {
        c.restart()
            .targets(vec![2])
            .min_delay(ms(1500))
            .max_delay(ms(1500))
            .target_cooldown(secs(30))
            .catch_up_within(secs(2))
            .apply()
    })
    .with_run_duration(secs(5))
    .build()
    .unwrap();
    let report = run_scenario(&plan, &deployer(base.path()), run_opts()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.summary());
    assert_eq!(report.workload_errors.len(), 1, "{}", report.summary());
    let e = &report.workload_errors[0];
    assert_eq!(e.name, "chaos");
    assert!(
        e.error
            .contains("node-2 did not catch up within 2s of its restart: height 3, highest "),
        "{}",
        e.error
    );
    assert_empty(base.path());
}
