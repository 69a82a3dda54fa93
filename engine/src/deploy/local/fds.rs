//! File descriptors: the local deployer holds several per node and per link in this one
//! process (ports bound while provisioning, the link proxies' listeners and the two ends of
//! each proxied connection, the API clients and block streams, the child handles), so a
//! topology too large for the descriptor limit is refused before anything is created, with
//! the limit and the largest node count of that shape it allows.
//!
//! Each node process inherits the raised limit and holds about one descriptor per peer plus a
//! few of its own, always fewer than this process holds for the whole testnet, so this
//! process's budget is the one checked.

use crate::topology::{NetworkShape, Topology};

/// Descriptors the process holds whatever the testnet (stdio, the runtime, reporters, ...).
pub const FDS_BASE: u64 = 64;
/// Descriptors per node: its ports while provisioning (up to four), then its API client
/// connections, block stream and child handle.
pub const FDS_PER_NODE: u64 = 6;
/// Descriptors per edge when peer connections go through the link layer: the proxy's
/// listener and both ends of the proxied connection.
pub const FDS_PER_LINKED_EDGE: u64 = 3;

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (children inherit it) and
/// returns the soft limit in force afterwards (None: unknown).
pub fn raise_nofile_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// The soft `RLIMIT_NOFILE` in force (None: unknown or unlimited).
pub fn nofile_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
}

/// Descriptors a local testnet of `nodes` nodes and `edges` edges needs, about.
pub fn estimate_fds(nodes: usize, edges: usize, links: bool) -> u64 {
    let per_edge = if links { FDS_PER_LINKED_EDGE } else { 0 };
    FDS_BASE + FDS_PER_NODE * nodes as u64 + per_edge * edges as u64
}

/// Edges of `topology`'s shape with `m` nodes instead of its own count (explicit edges and
/// random graphs keep their edges per node).
fn edges_at(topology: &Topology, m: usize) -> usize {
    let n = topology.node_count().max(1);
    match &topology.shape {
        NetworkShape::Full => m * m.saturating_sub(1) / 2,
        NetworkShape::Star | NetworkShape::Line => m.saturating_sub(1),
        NetworkShape::Ring => {
            if m > 2 {
                m
            } else {
                m.saturating_sub(1)
            }
        }
        NetworkShape::Random { .. } | NetworkShape::Edges(_) => {
            (topology.edges.len() as u128 * m as u128).div_ceil(n as u128) as usize
        }
    }
}

/// The largest node count of `topology`'s shape whose estimate fits in `limit`.
pub fn max_nodes_within(topology: &Topology, links: bool, limit: u64) -> usize {
    let fits = |m: usize| estimate_fds(m, edges_at(topology, m), links) <= limit;
    let (mut lo, mut hi) = (
        0usize,
        crate::topology::MAX_NODES.max(topology.node_count()),
    );
    if fits(hi) {
        return hi;
    }
    // invariant: fits(lo) (0 nodes fit a limit of at least FDS_BASE), !fits(hi)
    if !fits(lo) {
        return 0;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Refuses a topology whose estimate exceeds `limit`, naming the limit and the largest node
/// count it allows.
pub fn check_fd_budget(topology: &Topology, links: bool, limit: Option<u64>) -> Result<(), String> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let n = topology.node_count();
    let need = estimate_fds(n, topology.edges.len(), links);
    if need <= limit {
        return Ok(());
    }
    let max = max_nodes_within(topology, links, limit);
    Err(format!(
        "nodes = {n} ({} edges) needs about {need} file descriptors on the local deployer; the \
         limit here is {limit} (the soft limit raised to the hard limit), which allows at most \
         {max} nodes of this topology: use fewer nodes or edges, raise the hard limit \
         (ulimit -Hn), or use the compose or k8s deployer",
        topology.edges.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::TopologyBuilder;

    #[test]
    fn estimate_counts_nodes_and_linked_edges() {
        assert_eq!(estimate_fds(0, 0, true), FDS_BASE);
        assert_eq!(estimate_fds(10, 9, true), FDS_BASE + 60 + 27);
        assert_eq!(estimate_fds(10, 9, false), FDS_BASE + 60);
    }

    #[test]
    fn max_nodes_fits_the_limit_and_one_more_does_not() {
        let t = TopologyBuilder::new().nodes(50).build().unwrap();
        let limit = 1024;
        let m = max_nodes_within(&t, true, limit);
        // star: 64 + 6m + 3(m-1) <= 1024 -> m = 107
        assert_eq!(m, 107);
        assert!(estimate_fds(m, m - 1, true) <= limit);
        assert!(estimate_fds(m + 1, m, true) > limit);
        let full = TopologyBuilder::new()
            .nodes(30)
            .network_full()
            .build()
            .unwrap();
        let m = max_nodes_within(&full, true, limit);
        assert!(estimate_fds(m, m * (m - 1) / 2, true) <= limit);
        assert!(estimate_fds(m + 1, (m + 1) * m / 2, true) > limit);
    }

    #[test]
    fn budget_error_names_the_limit_and_the_max() {
        let t = TopologyBuilder::new().nodes(200).build().unwrap();
        assert!(check_fd_budget(&t, true, Some(1 << 20)).is_ok());
        assert!(check_fd_budget(&t, true, None).is_ok());
        let e = check_fd_budget(&t, true, Some(1024)).unwrap_err();
        assert!(e.contains("limit here is 1024"), "{e}");
        assert!(e.contains("at most 107 nodes"), "{e}");
        assert!(e.contains("nodes = 200"), "{e}");
    }
}
