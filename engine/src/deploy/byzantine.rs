//! Lying nodes in the fault model: [`Testnet::set_byzantine`] tells a reference node, through
//! its testing surface (`POST /test/byzantine`), to equivocate where it leads, withhold its
//! blocks for a time, build on a stale parent or gossip invalid transactions, and records it in
//! the control log (`byzantine node-0 equivocate`, `byzantine node-0 honest`), so the run's
//! timeline shows it. [`make_honest`] reverts every lie before a testnet is torn down.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::control_log::NodeAction;
use super::{ControlError, NodeState, Testnet};
pub use crate::client::ByzantineState;
pub use devnode::config::ByzantineBehaviours as Behaviours;

/// One lie, with its parameter, as scripts and chaos streams name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Behaviour {
    /// Two different blocks for each slot the node leads, each sent to half of its peers.
    Equivocate,
    /// Its own blocks kept from the peers this long, then released.
    Withhold(Duration),
    /// Its blocks built on the canonical block this many below its tip.
    StaleParent(u64),
    /// This many transactions with a bad signature gossiped every slot.
    InvalidTxs(u32),
}

impl Behaviour {
    /// The names scripts use, in the order the reference lists them.
    pub const NAMES: [&'static str; 4] = ["equivocate", "withhold", "stale_parent", "invalid_txs"];

    /// The behaviour `name` with its default parameter (withhold 2 s, depth 2, 5 a slot).
    pub fn named(name: &str) -> Result<Self, String> {
        match name.trim() {
            "equivocate" => Ok(Self::Equivocate),
            "withhold" => Ok(Self::Withhold(Duration::from_secs(2))),
            "stale_parent" => Ok(Self::StaleParent(2)),
            "invalid_txs" => Ok(Self::InvalidTxs(5)),
            other => Err(format!(
                "byzantine behaviour {other:?} is not one of {}",
                Self::NAMES
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Equivocate => "equivocate",
            Self::Withhold(_) => "withhold",
            Self::StaleParent(_) => "stale_parent",
            Self::InvalidTxs(_) => "invalid_txs",
        }
    }

    /// Adds it to a set of behaviours.
    pub fn add_to(self, b: &mut Behaviours) {
        match self {
            Self::Equivocate => b.equivocate = true,
            Self::Withhold(d) => b.withhold_ms = (d.as_millis() as u64).max(1),
            Self::StaleParent(depth) => b.stale_parent_depth = depth,
            Self::InvalidTxs(n) => b.invalid_txs_per_slot = n,
        }
    }

    /// The set of these behaviours alone.
    pub fn set_of(list: &[Behaviour]) -> Behaviours {
        let mut b = Behaviours::default();
        for x in list {
            x.add_to(&mut b);
        }
        b
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b = Behaviours::default();
        self.add_to(&mut b);
        f.write_str(&b.describe())
    }
}

/// [`Testnet::set_byzantine`] through node `i`'s client, recorded in the testnet's control log.
pub(crate) async fn set_through_client<T: Testnet + ?Sized>(
    net: &T,
    i: usize,
    lies: Behaviours,
) -> Result<ByzantineState, ControlError> {
    let count = net.node_count();
    let client = net
        .clients()
        .get(i)
        .cloned()
        .ok_or(ControlError::NoSuchNode { index: i, count })?;
    lies.validate("")
        .map_err(|e| ControlError::failed(format!("byzantine behaviours of node-{i}: {e}")))?;
    let state = client
        .set_byzantine(&lies)
        .await
        .map_err(|e| ControlError::caused(format!("byzantine behaviours of node-{i}"), e))?;
    net.note_control(NodeAction::Byzantine, i, Some(lies.describe()));
    Ok(state)
}

/// The nodes this testnet was told to make lie, by its topology (`testing.byzantine.*`
/// overrides) or at run time (the control log), whose last word was not `honest`.
pub fn told_to_lie(net: &dyn Testnet) -> Vec<usize> {
    let topology = net.topology();
    let by_config = |i: usize| {
        topology
            .overrides
            .iter()
            .chain(topology.nodes.get(i).map_or(&[][..], |n| &n.overrides[..]))
            .any(|o| o.path.starts_with("testing.byzantine"))
    };
    let log = net.control_log();
    (0..net.node_count())
        .filter(|&i| {
            let last = log
                .iter()
                .rfind(|r| r.action == NodeAction::Byzantine && r.node == i);
            match last {
                Some(r) => r.detail.as_deref() != Some("honest"),
                None => by_config(i),
            }
        })
        .collect()
}

/// Makes every running node this testnet told to lie ([`told_to_lie`]) honest again (a node
/// that turns out honest already is left alone); returns the nodes it reverted. Called before
/// teardown, so that the nodes' logs and the timeline end honest.
pub async fn make_honest(net: &dyn Testnet) -> Vec<usize> {
    let clients = net.clients();
    let asks = told_to_lie(net)
        .into_iter()
        .filter(|&i| net.node_state(i) == Some(NodeState::Running))
        .filter_map(|i| {
            let c = clients.get(i)?.clone().with_timeout(Duration::from_secs(1));
            c.testing_url()?;
            Some(async move { (i, c.byzantine().await) })
        });
    let lying: Vec<usize> = futures::future::join_all(asks)
        .await
        .into_iter()
        .filter_map(|(i, r)| r.ok().filter(|s| !s.behaviours.is_honest()).map(|_| i))
        .collect();
    let mut reverted = Vec::new();
    for i in lying {
        if net.set_byzantine(i, Behaviours::default()).await.is_ok() {
            reverted.push(i);
        }
    }
    reverted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_are_named_and_read_as_the_timeline_writes_them() {
        assert_eq!(
            Behaviour::named("withhold").unwrap(),
            Behaviour::Withhold(Duration::from_secs(2))
        );
        let e = Behaviour::named("lie").unwrap_err();
        assert!(e.contains("\"lie\"") && e.contains("\"equivocate\""), "{e}");
        let set = Behaviour::set_of(&[
            Behaviour::Equivocate,
            Behaviour::StaleParent(3),
            Behaviour::InvalidTxs(2),
        ]);
        assert_eq!(
            set.describe(),
            "equivocate, stale_parent depth 3, invalid_txs 2/slot"
        );
        assert_eq!(
            Behaviour::Withhold(Duration::from_secs(1)).to_string(),
            "withhold 1000ms"
        );
        assert!(Behaviours::default().is_honest());
        assert_eq!(Behaviours::default().describe(), "honest");
    }
}
