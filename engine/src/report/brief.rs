//! Messages that stay short at any node count: a list of per-node values or reasons is written
//! out in full for a small testnet, and summarised (counts, range, the first few) for a large one,
//! so that a 500-node run prints a readable line instead of kilobytes.

/// Up to this many items a list is written out in full.
pub const FULL_UP_TO: usize = 24;
/// How many items a summarised list names.
pub const NAMED: usize = 5;

/// Heights per node: `[4 ? 5]` for a few nodes; `500 nodes: min 13 · median 13 · max 14 · 2
/// unknown` for many (`?` / unknown: the node did not answer).
pub fn heights(h: &[Option<u64>]) -> String {
    if h.len() <= FULL_UP_TO {
        let v: Vec<String> = h
            .iter()
            .map(|x| x.map_or_else(|| "?".into(), |x| x.to_string()))
            .collect();
        return format!("[{}]", v.join(" "));
    }
    let mut known: Vec<u64> = h.iter().flatten().copied().collect();
    known.sort_unstable();
    let unknown = h.len() - known.len();
    let mut s = format!("[{} nodes:", h.len());
    if let (Some(min), Some(max)) = (known.first(), known.last()) {
        s.push_str(&format!(
            " min {min} · median {} · max {max}",
            known[known.len() / 2]
        ));
    }
    if unknown > 0 {
        s.push_str(&format!(" · {unknown} unknown"));
    }
    s.push(']');
    s
}

/// `items` joined by `sep`; past [`FULL_UP_TO`], the first [`NAMED`] and `and N more`.
pub fn list(items: &[String], sep: &str) -> String {
    if items.len() <= FULL_UP_TO {
        return items.join(sep);
    }
    format!(
        "{}{sep}and {} more",
        items[..NAMED].join(sep),
        items.len() - NAMED
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_are_written_out_many_summarised() {
        assert_eq!(heights(&[Some(4), None, Some(5)]), "[4 ? 5]");
        let mut many: Vec<Option<u64>> = (0..500).map(|i| Some(10 + i % 3)).collect();
        many[7] = None;
        assert_eq!(
            heights(&many),
            "[500 nodes: min 10 · median 11 · max 12 · 1 unknown]"
        );
        let items: Vec<String> = (0..100).map(|i| format!("node-{i}")).collect();
        let s = list(&items, "; ");
        assert_eq!(s, "node-0; node-1; node-2; node-3; node-4; and 95 more");
        assert_eq!(list(&items[..3], ", "), "node-0, node-1, node-2");
    }
}
