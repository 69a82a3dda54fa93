//! Network faults as NetworkPolicies. The faults in force are kept here as sets of node pairs
//! that may not talk; after every change the union is rendered into one policy per affected
//! node (policies only ever allow, so stacking them per fault would undo each other) and the
//! cluster is brought in line: server-side apply for the nodes with a blocked peer, delete for
//! the others. Only partitions and isolation are expressible; the rest is refused with why.
//!
//! Needs a CNI that enforces NetworkPolicies (Calico, Cilium, k3s' default flannel with its
//! policy controller); on one that ignores them the policies are accepted and change nothing.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

use super::K8sTestnet;
use super::manifest::{self, Blocked, policy_name};
use super::provision::{call, is_not_found, kmsg};
use crate::deploy::{ControlError, Testnet};
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkId, LinkSel};
use crate::report::ControlAction;

/// Field manager of the server-side applies.
const MANAGER: &str = "nomos-script";

#[derive(Debug, Clone)]
struct Entry {
    id: FaultId,
    fault: Fault,
    applied_after: Duration,
    /// Pairs a `clear_links` took out of this fault.
    cleared: Blocked,
}

/// The faults in force, the log, and which nodes carry a policy now.
#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    next: u64,
    active: Vec<Entry>,
    log: Vec<FaultRecord>,
    with_policy: BTreeSet<usize>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// The node pairs a partition or isolation blocks among `n` nodes.
fn pairs_of(fault: &Fault, n: usize) -> Result<Blocked, String> {
    let check = |i: usize, what: &str| {
        if i >= n {
            Err(format!(
                "{what} names node {i}, but the testnet has {n} nodes"
            ))
        } else {
            Ok(())
        }
    };
    let mut out = Blocked::new();
    match fault {
        Fault::Partition(groups) => {
            let mut group_of = vec![usize::MAX; n];
            for (g, members) in groups.iter().enumerate() {
                for &i in members {
                    check(i, "partition")?;
                    if group_of[i] != usize::MAX {
                        return Err(format!("partition names node {i} in two groups"));
                    }
                    group_of[i] = g;
                }
            }
            for a in 0..n {
                for b in a + 1..n {
                    if group_of[a] != group_of[b] {
                        out.insert((a, b));
                    }
                }
            }
        }
        Fault::Isolate(i) => {
            check(*i, "isolate")?;
            out.extend((0..n).filter(|j| j != i).map(|j| pair(*i, j)));
        }
        other => {
            let reason = match other {
                Fault::Cut { .. } => super::UNSUPPORTED[1].1,
                Fault::Tamper { .. } => {
                    "NetworkPolicies see connections, not the messages inside them"
                }
                _ => super::UNSUPPORTED[2].1,
            };
            return Err(format!("the k8s deployer cannot apply `{other}`: {reason}"));
        }
    }
    Ok(out)
}

fn directed(pairs: &Blocked) -> Vec<LinkId> {
    pairs
        .iter()
        .flat_map(|&(a, b)| [LinkId::new(a, b), LinkId::new(b, a)])
        .collect()
}

fn covered(sel: &LinkSel, p: (usize, usize)) -> bool {
    match *sel {
        LinkSel::All => true,
        LinkSel::Link(a, b) | LinkSel::Both(a, b) => pair(a, b) == p,
        LinkSel::Node(i) => p.0 == i || p.1 == i,
    }
}

fn lock(net: &K8sTestnet) -> std::sync::MutexGuard<'_, FaultBook> {
    net.faults.lock().unwrap_or_else(|e| e.into_inner())
}

fn effective(e: &Entry, n: usize) -> Blocked {
    pairs_of(&e.fault, n)
        .unwrap_or_default()
        .difference(&e.cleared)
        .copied()
        .collect()
}

/// Brings the policies in line under the control lock, within a minute.
async fn settle(net: &K8sTestnet) -> Result<(), ControlError> {
    tokio::time::timeout(Duration::from_secs(60), sync_locked(net))
        .await
        .map_err(|_| {
            ControlError::failed("the API server did not settle the network policies within 60s")
        })?
        .map_err(ControlError::failed)
}

/// Brings the cluster's policies in line with the faults in force.
pub(super) async fn sync_policies(net: &K8sTestnet) -> Result<(), String> {
    let n = net.node_count();
    let (blocked, had) = {
        let book = lock(net);
        let blocked: Blocked = book.active.iter().flat_map(|e| effective(e, n)).collect();
        (blocked, book.with_policy.clone())
    };
    let policies = manifest::fault_policies(&net.settings, n, &blocked)?;
    let api: Api<NetworkPolicy> = Api::namespaced(net.client.clone(), &net.namespace);
    let pp = PatchParams::apply(MANAGER).force();
    let mut now = BTreeSet::new();
    for p in &policies {
        let name = p.metadata.name.clone().unwrap_or_default();
        call(
            &format!("apply network policy {name} in {}", net.namespace),
            api.patch(&name, &pp, &Patch::Apply(p)),
        )
        .await?;
        if let Some(i) = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(manifest::LABEL_NODE))
            .and_then(|v| v.parse::<usize>().ok())
        {
            now.insert(i);
        }
    }
    for &i in had.difference(&now) {
        match tokio::time::timeout(
            super::provision::CALL_TIMEOUT,
            api.delete(&policy_name(i), &DeleteParams::default()),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if is_not_found(&e) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "failed to delete network policy {}: {}",
                    policy_name(i),
                    kmsg(&e)
                ));
            }
            Err(_) => {
                return Err(format!(
                    "failed to delete network policy {}: the API server did not answer",
                    policy_name(i)
                ));
            }
        }
    }
    lock(net).with_policy = now;
    Ok(())
}

async fn sync_locked(net: &K8sTestnet) -> Result<(), String> {
    let _g = net.ctl.lock.lock().await;
    sync_policies(net).await
}

fn record(
    net: &K8sTestnet,
    book: &mut FaultBook,
    e: &Entry,
    links: &Blocked,
    reverted: bool,
    note: Option<String>,
) {
    book.log.push(FaultRecord {
        at: SystemTime::now(),
        elapsed: net.ctl.created.elapsed(),
        id: e.id,
        fault: e.fault.clone(),
        links: directed(links),
        reverted,
        note,
    });
}

pub(super) async fn apply(
    net: &K8sTestnet,
    fault: Fault,
    note: Option<String>,
) -> Result<FaultId, ControlError> {
    net.check_live()?;
    let n = net.node_count();
    let pairs = pairs_of(&fault, n).map_err(ControlError::failed)?;
    let entry = {
        let mut book = lock(net);
        book.next += 1;
        let e = Entry {
            id: FaultId(book.next),
            fault: fault.clone(),
            applied_after: net.ctl.created.elapsed(),
            cleared: Blocked::new(),
        };
        book.active.push(e.clone());
        e
    };
    if let Err(err) = settle(net).await {
        lock(net).active.retain(|x| x.id != entry.id);
        let _ = settle(net).await;
        return Err(err);
    }
    let active = {
        let mut book = lock(net);
        record(net, &mut book, &entry, &pairs, false, note);
        book.active.len()
    };
    net.emit_control(ControlAction::Fault {
        fault,
        via: Some(crate::report::FaultVia::NetworkPolicies),
        active,
    });
    Ok(entry.id)
}

pub(super) async fn revert(net: &K8sTestnet, id: FaultId) -> Result<(), ControlError> {
    net.check_live()?;
    let n = net.node_count();
    let entry = {
        let mut book = lock(net);
        let Some(pos) = book.active.iter().position(|e| e.id == id) else {
            return Err(ControlError::failed(format!("{id} is not in force")));
        };
        book.active.remove(pos)
    };
    settle(net).await?;
    let mut book = lock(net);
    let links = effective(&entry, n);
    record(net, &mut book, &entry, &links, true, None);
    let active = book.active.len();
    drop(book);
    net.emit_control(ControlAction::Revert { id, active });
    Ok(())
}

/// Takes the selected links out of every fault; faults left with none are reverted. Returns
/// how many faults were touched.
pub(super) async fn clear(net: &K8sTestnet, sel: LinkSel) -> Result<usize, ControlError> {
    net.check_live()?;
    let n = net.node_count();
    let mut touched = Vec::new();
    {
        let mut book = lock(net);
        let mut keep = Vec::new();
        for mut e in std::mem::take(&mut book.active) {
            let eff = effective(&e, n);
            let hit: Blocked = eff.iter().copied().filter(|&p| covered(&sel, p)).collect();
            if hit.is_empty() {
                keep.push(e);
                continue;
            }
            e.cleared.extend(hit.iter().copied());
            let left = eff.len() - hit.len();
            touched.push((e.clone(), hit));
            if left > 0 {
                keep.push(e);
            }
        }
        book.active = keep;
    }
    if touched.is_empty() {
        return Ok(0);
    }
    settle(net).await?;
    let mut book = lock(net);
    for (e, hit) in &touched {
        record(net, &mut book, e, hit, true, None);
    }
    let active = book.active.len();
    drop(book);
    net.emit_control(if sel == LinkSel::All {
        ControlAction::Heal {
            reverted: touched.len(),
        }
    } else {
        ControlAction::Clear {
            links: sel,
            touched: touched.len(),
            active,
        }
    });
    Ok(touched.len())
}

pub(super) fn active(net: &K8sTestnet) -> Vec<ActiveFault> {
    let n = net.node_count();
    lock(net)
        .active
        .iter()
        .map(|e| ActiveFault {
            id: e.id,
            fault: e.fault.clone(),
            links: directed(&effective(e, n)),
            applied_after: e.applied_after,
        })
        .collect()
}

pub(super) fn log(net: &K8sTestnet) -> Vec<FaultRecord> {
    lock(net).log.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_pairs() {
        let p = pairs_of(&Fault::Partition(vec![vec![0, 1]]), 3).unwrap();
        assert_eq!(p, Blocked::from([(0, 2), (1, 2)]));
        let p = pairs_of(&Fault::Isolate(1), 3).unwrap();
        assert_eq!(p, Blocked::from([(0, 1), (1, 2)]));
        assert!(
            pairs_of(&Fault::Partition(vec![vec![0], vec![5]]), 3)
                .unwrap_err()
                .contains("node 5")
        );
        let cut = pairs_of(&Fault::Cut { from: 0, to: 1 }, 3).unwrap_err();
        assert!(cut.contains("cannot apply `cut 0->1`"), "{cut}");
    }
}
