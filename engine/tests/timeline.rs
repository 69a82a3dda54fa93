//! The fault log and node control form one timeline: restarts, stops, kills, pauses and added
//! nodes are recorded beside the network faults, in the order they happened, on local
//! processes (and through a live testnet's supervisor, see bindings/tests/live.rs).

mod common;

use common::{assert_empty, deploy, fast, joiner};
use engine::deploy::control_log::{NodeAction, TimelineEntry, timeline};
use engine::topology::TopologyBuilder;

#[tokio::test(flavor = "multi_thread")]
async fn node_control_and_faults_share_one_timeline() {
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().nodes(3)).build().unwrap();
    let net = deploy(base.path(), &topo).await;
    net.restart(1).await.unwrap();
    let id = net.partition(vec![vec![0], vec![1, 2]]).await.unwrap();
    net.pause(2).await.unwrap();
    net.resume(2).await.unwrap();
    net.revert_fault(id).await.unwrap();
    net.kill(0).await.unwrap();
    net.start(0).await.unwrap();
    let added = net.add_node(joiner(&[0], 0)).await.unwrap();
    // a refused action is not recorded
    assert!(net.resume(1).await.is_err());
    let lines: Vec<String> = timeline(&*net)
        .iter()
        .map(|e| match e {
            TimelineEntry::Fault(r) => format!(
                "{} {}",
                if r.reverted { "revert" } else { "apply" },
                r.fault
            ),
            TimelineEntry::Control(c) => c.to_string(),
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            "restart node-1".to_string(),
            "apply partition [[0], [1, 2]]".into(),
            "pause node-2".into(),
            "resume node-2".into(),
            "revert partition [[0], [1, 2]]".into(),
            "kill node-0".into(),
            "start node-0".into(),
            format!("add node-{added}"),
        ]
    );
    let control = net.control_log();
    assert_eq!(control[0].action, NodeAction::Restart);
    assert!(control.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}

/// Every fault event carries the faults in force after it, so a reporter counts them without
/// reading text back: the count drops after `clear_links` (whose text the count once ignored).
#[tokio::test(flavor = "multi_thread")]
async fn control_events_carry_the_faults_in_force_and_clear_links_lowers_the_count() {
    use std::sync::{Arc, Mutex};

    use engine::deploy::{DeployOptions, Deployer};
    use engine::links::LinkSel;
    use engine::report::terminal::FaultCount;
    use engine::report::{ControlAction, EventSink, Reporter, RunEvent};

    #[derive(Default)]
    struct Collect(Mutex<Vec<ControlAction>>);
    impl Reporter for Collect {
        fn on_event(&self, event: &RunEvent) {
            if let RunEvent::Control { action, .. } = event {
                self.0.lock().unwrap().push(action.clone());
            }
        }
    }
    let base = tempfile::tempdir().unwrap();
    let topo = fast(TopologyBuilder::new().network_full().nodes(3))
        .build()
        .unwrap();
    let seen = Arc::new(Collect::default());
    let opts = DeployOptions {
        events: Some(EventSink::new(vec![seen.clone() as Arc<dyn Reporter>])),
        ..Default::default()
    };
    let net = common::deployer(base.path())
        .deploy(&topo, &opts)
        .await
        .unwrap();
    net.set_latency(
        LinkSel::Node(1),
        std::time::Duration::from_millis(20),
        Default::default(),
    )
    .await
    .unwrap();
    net.set_loss(LinkSel::Node(1), 0.1).await.unwrap();
    net.isolate(2).await.unwrap();
    let mut count = FaultCount::default();
    let apply = |count: &mut FaultCount| {
        for a in seen.0.lock().unwrap().drain(..) {
            count.apply(&a);
        }
    };
    apply(&mut count);
    assert_eq!(count.active(), 3);
    // node 1's links: latency and loss go, the isolation of node 2 covers other links and stays
    let touched = net.clear_links(LinkSel::Node(1)).await.unwrap();
    assert!(touched >= 2, "{touched}");
    let last = seen.0.lock().unwrap().last().cloned().unwrap();
    assert!(
        matches!(last, ControlAction::Clear { active: 1, .. }),
        "{last:?}"
    );
    apply(&mut count);
    assert_eq!(count.active(), 1);
    net.heal().await.unwrap();
    apply(&mut count);
    assert_eq!(count.active(), 0);
    net.teardown(false).await.unwrap();
    assert_empty(base.path());
}
