//! Waits on a testnet with a deadline (a duration, slots or blocks, resolved from its consensus
//! parameters), each saying what it waited for when the deadline passes: the script's
//! `net.wait_height` and `net.wait_converged`, and Rust callers'.

use std::time::{Duration, Instant};

use crate::client::model::short_id as short;
use crate::deadline::Deadline;
use crate::deploy::Testnet;

/// How often the nodes are asked.
const POLL: Duration = Duration::from_millis(100);

/// Asks `check` every `every` until it answers `Some`, or `within` has passed since the first
/// question (then `None`); `check` is always asked at least once. The backends' waits for a
/// process, container or pod to be gone.
pub async fn poll<T, F, Fut>(within: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() >= within {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Until every node's height reaches `height`; at the deadline, an error naming each node behind
/// (its height, or why it did not answer).
pub async fn height(net: &dyn Testnet, height: u64, bound: Deadline) -> Result<(), String> {
    let params = &net.topology().params;
    let (deadline, written) = (bound.resolve(params), bound.describe(params));
    let start = Instant::now();
    loop {
        let clients = net.clients();
        let mut behind = Vec::new();
        for c in clients.iter() {
            match c.consensus_info().await {
                Ok(i) if i.height >= height => {}
                Ok(i) => behind.push(format!("{} height {} < {height}", c.name(), i.height)),
                Err(e) => behind.push(format!("{}: {e}", c.name())),
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= deadline {
            return Err(format!(
                "wait_height({height}) timed out after {written}: {}",
                behind.join("; ")
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Until every node reports the same LIB and tip; at the deadline, an error with each node's
/// height, tip and LIB, and where the testnet forked (how deep, past k or not, and the partition
/// of the fault log most likely to have made it).
pub async fn converged(net: &dyn Testnet, bound: Deadline) -> Result<(), String> {
    let params = &net.topology().params;
    let (deadline, written) = (bound.resolve(params), bound.describe(params));
    let start = Instant::now();
    loop {
        let clients = net.clients();
        let mut infos = Vec::new();
        let mut problems = Vec::new();
        for c in clients.iter() {
            match c.consensus_info().await {
                Ok(i) => infos.push((c.name().to_string(), i)),
                Err(e) => problems.push(format!("{}: {e}", c.name())),
            }
        }
        if problems.is_empty()
            && let Some((_, first)) = infos.first()
            && infos
                .iter()
                .all(|(_, i)| i.tip == first.tip && i.lib == first.lib)
        {
            return Ok(());
        }
        if start.elapsed() >= deadline {
            let states: Vec<String> = infos
                .iter()
                .map(|(n, i)| {
                    format!(
                        "{n} height {} tip {} lib {}",
                        i.height,
                        short(&i.tip),
                        short(&i.lib)
                    )
                })
                .chain(problems)
                .collect();
            let mut msg = format!(
                "wait_converged timed out after {written}: {}",
                states.join("; ")
            );
            let k = net.topology().params.security_param;
            if let Some(fork) = crate::forkrisk::walk_fork_point(&clients.0, 4 * k + 64).await
                && fork.depths.iter().any(|(_, d)| *d > 0)
            {
                msg.push_str(&format!("; {}", fork.explain(k)));
                if let Some(risk) =
                    crate::forkrisk::riskiest_partition(net.topology(), &net.fault_log())
                {
                    msg.push_str(&format!("; {}", risk.explain()));
                }
            }
            return Err(msg);
        }
        tokio::time::sleep(POLL).await;
    }
}
