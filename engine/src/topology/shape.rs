//! The edges of each [`NetworkShape`], checked for bounds and connectivity, and the seeded
//! random graph.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{MAX_EDGES, NetworkShape, TopologyError};

/// The undirected edges `(a, b)`, `a < b`, sorted, of `shape` on `n` nodes (a random shape drawn
/// from `seed`).
pub(super) fn edges_for(
    shape: &NetworkShape,
    n: usize,
    seed: u64,
) -> Result<Vec<(usize, usize)>, TopologyError> {
    let mut set = BTreeSet::new();
    let mut add = |a: usize, b: usize| {
        if a != b {
            set.insert((a.min(b), a.max(b)));
        }
    };
    match shape {
        NetworkShape::Star => (1..n).for_each(|i| add(0, i)),
        NetworkShape::Full => {
            let count = n * (n - 1) / 2;
            if count > MAX_EDGES {
                return Err(TopologyError::new(
                    "network_full",
                    format!(
                        "network_full with nodes = {n} has {count} edges, which exceeds the \
                         bound {MAX_EDGES} (MAX_EDGES): use network_random(degree)"
                    ),
                ));
            }
            for a in 0..n {
                for b in a + 1..n {
                    add(a, b);
                }
            }
        }
        NetworkShape::Line => (1..n).for_each(|i| add(i - 1, i)),
        NetworkShape::Ring => {
            (1..n).for_each(|i| add(i - 1, i));
            if n > 2 {
                add(n - 1, 0);
            }
        }
        NetworkShape::Random { degree } => {
            let d = *degree;
            if n > 1 && d >= n {
                return Err(TopologyError::new(
                    "network_random",
                    format!("network_random degree = {d} must be below nodes = {n}"),
                ));
            }
            if n > 1 && d == 0 {
                return Err(TopologyError::new(
                    "network_random",
                    format!("network_random degree = 0 leaves nodes = {n} unconnected"),
                ));
            }
            let about = n.saturating_mul(d) / 2;
            if about > MAX_EDGES {
                return Err(TopologyError::new(
                    "network_random",
                    format!(
                        "network_random degree = {d} with nodes = {n} makes about {about} \
                         edges, which exceeds the bound {MAX_EDGES} (MAX_EDGES)"
                    ),
                ));
            }
            for e in random_graph(n, d, seed) {
                add(e.0, e.1);
            }
        }
        NetworkShape::Edges(edges) => {
            if edges.len() > MAX_EDGES {
                return Err(TopologyError::new(
                    "edges",
                    format!(
                        "edges = {} edges exceeds the bound {MAX_EDGES} (MAX_EDGES)",
                        edges.len()
                    ),
                ));
            }
            for &(a, b) in edges {
                if a >= n || b >= n {
                    return Err(TopologyError::new(
                        "edges",
                        format!(
                            "edges ({a}, {b}) names a node out of range: the topology has nodes = {n}"
                        ),
                    ));
                }
                if a == b {
                    return Err(TopologyError::new(
                        "edges",
                        format!("edges ({a}, {b}) connects a node to itself"),
                    ));
                }
                add(a, b);
            }
        }
    }
    let edges: Vec<_> = set.into_iter().collect();
    if let Some(lonely) = unreachable_from_zero(n, &edges) {
        return Err(TopologyError::new(
            "edges",
            format!(
                "edges leave node {lonely} unconnected from node 0: the network must be connected"
            ),
        ));
    }
    Ok(edges)
}

/// First node not reachable from node 0, if any.
fn unreachable_from_zero(n: usize, edges: &[(usize, usize)]) -> Option<usize> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut seen = vec![false; n];
    let mut stack = vec![0];
    seen[0] = true;
    while let Some(v) = stack.pop() {
        for &w in &adj[v] {
            if !seen[w] {
                seen[w] = true;
                stack.push(w);
            }
        }
    }
    seen.iter().position(|s| !s)
}

/// A connected graph where every node has about `degree` neighbours: a random
/// spanning tree (for connectivity) plus random extra edges between nodes that
/// are still below the degree.
fn random_graph(n: usize, degree: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7090_1097);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let mut deg = vec![0usize; n];
    let mut edges = BTreeSet::new();
    for k in 1..n {
        // attach to a random earlier node that still has room, if any
        let candidates: Vec<usize> = order[..k]
            .iter()
            .copied()
            .filter(|&v| deg[v] < degree)
            .collect();
        let pool = if candidates.is_empty() {
            order[..k].to_vec()
        } else {
            candidates
        };
        let u = pool[rng.random_range(0..pool.len())];
        let v = order[k];
        edges.insert((u.min(v), u.max(v)));
        deg[u] += 1;
        deg[v] += 1;
    }
    // the nodes still below the degree, in order (kept up to date rather than recomputed)
    let mut open: Vec<usize> = (0..n).filter(|&v| deg[v] < degree).collect();
    for _ in 0..n * degree * 4 {
        if open.len() < 2 {
            break;
        }
        let a = open[rng.random_range(0..open.len())];
        let b = open[rng.random_range(0..open.len())];
        if a == b || edges.contains(&(a.min(b), a.max(b))) {
            continue;
        }
        edges.insert((a.min(b), a.max(b)));
        deg[a] += 1;
        deg[b] += 1;
        for v in [a, b] {
            if deg[v] >= degree
                && let Ok(pos) = open.binary_search(&v)
            {
                open.remove(pos);
            }
        }
    }
    edges.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::TopologyBuilder;

    #[test]
    fn shapes_have_expected_edges() {
        let t = TopologyBuilder::new().nodes(4).build().unwrap();
        assert_eq!(t.edges, vec![(0, 1), (0, 2), (0, 3)]);
        assert_eq!(t.degree(0), 3);
        let t = TopologyBuilder::new()
            .nodes(4)
            .network_ring()
            .build()
            .unwrap();
        assert_eq!(t.edges.len(), 4);
        assert!((0..4).all(|i| t.degree(i) == 2));
        let t = TopologyBuilder::new()
            .nodes(4)
            .network_full()
            .build()
            .unwrap();
        assert_eq!(t.edges.len(), 6);
        let t = TopologyBuilder::new()
            .nodes(3)
            .network_chain()
            .build()
            .unwrap();
        assert_eq!(t.edges, vec![(0, 1), (1, 2)]);
        assert_eq!(t.dialled_by(0), vec![1]);
    }

    #[test]
    fn random_shape_is_connected_and_replays_from_seed() {
        let b = TopologyBuilder::new().nodes(12).network_random(3).seed(7);
        let t1 = b.build().unwrap();
        let t2 = b.build().unwrap();
        assert_eq!(t1.edges, t2.edges);
        assert!(unreachable_from_zero(12, &t1.edges).is_none());
        assert!((0..12).all(|i| t1.degree(i) >= 1 && t1.degree(i) <= 4));
        let t3 = b.clone().seed(8).build().unwrap();
        assert_ne!(t1.edges, t3.edges);
    }
}
