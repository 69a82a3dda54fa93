//! The `:` helpers: `:help [topic]`, `:nodes`, `:watch`, `:faults [log]`, `:save FILE`,
//! `:load FILE`, `:quit`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use engine::client::NodeClient;
use engine::deploy::Testnet;
use rhai::Engine;

/// Helper names, for completion and `:help`.
pub const HELPERS: &[(&str, &str)] = &[
    (
        ":help",
        ":help [topic]   this text; an area (faults, node-control, chaos, waits, ...); or the functions whose name contains topic",
    ),
    (
        ":nodes",
        ":nodes          node, height, slot, tip, lib, peers, mempool size of every node",
    ),
    (
        ":watch",
        ":watch          refresh :nodes every second until Enter (Ctrl-C also stops)",
    ),
    (
        ":faults",
        ":faults [log]   faults in force, network and node (clock, disk), or every fault applied and reverted",
    ),
    (
        ":save",
        ":save FILE      write this session's effective commands as a runnable scenario",
    ),
    (
        ":load",
        ":load FILE      evaluate a script file in this session",
    ),
    (
        ":quit",
        ":quit           leave (Ctrl-D too); an attached testnet keeps running",
    ),
];

/// The general help text.
pub fn help_text(attached: Option<&str>) -> String {
    let mut s = String::from(
        "Type script statements; `net` is the testnet. Open braces, brackets and parentheses\n\
         continue on the next line. Tab completes function names and node indices.\n\
         Ctrl-C stops a running command (or clears the line); Ctrl-D leaves.\n\n",
    );
    for (_, line) in HELPERS {
        s.push_str(line);
        s.push('\n');
    }
    s.push_str(
        "\nExamples:\n  net.node(0).consensus_info()\n  net.restart(1)\n  net.partition([[0, 1], [2]])\n  net.heal()\n  net.wait_converged(\"30s\")\n",
    );
    if let Some(name) = attached {
        let _ = writeln!(
            s,
            "\nAttached to `{name}`; `nomos-script down {name}` tears it down."
        );
    }
    s
}

/// Every registered function name (deduplicated, sorted), from the engine's metadata.
pub fn function_names(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = function_signatures(engine)
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| !n.starts_with("get$") && !n.starts_with("set$") && !n.starts_with("anon$"))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `(name, signature, doc)` of every registered function.
pub fn function_signatures(engine: &Engine) -> Vec<(String, String, String)> {
    let Ok(json) = engine.gen_fn_metadata_to_json(false) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) else {
        return Vec::new();
    };
    v["functions"]
        .as_array()
        .map(|fns| {
            fns.iter()
                .filter_map(|f| {
                    let name = f["name"].as_str()?.to_owned();
                    let sig = f["signature"].as_str().unwrap_or(&name).to_owned();
                    let doc = f["docComments"]
                        .as_array()
                        .map(|d| {
                            d.iter()
                                .filter_map(|l| l.as_str())
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default();
                    Some((name, sig, doc))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `:help topic`: a helper, an area of the reference (`:help faults`, `:help node-control`:
/// every function of that area with the first line of its doc), or the signatures and docs
/// of the functions whose name contains `topic`. Reads the same metadata as `nomos-script doc`.
pub fn help_topic(engine: &Engine, topic: &str) -> String {
    // an area first (`:help faults`), unless a helper is named with its colon (`:help :faults`)
    if !topic.starts_with(':')
        && let Some(text) = area_help(topic)
    {
        return text;
    }
    if let Some((_, line)) = HELPERS
        .iter()
        .find(|(h, _)| h.trim_start_matches(':') == topic.trim_start_matches(':'))
    {
        return format!("{line}\n");
    }
    let mut sigs: Vec<String> = function_signatures(engine)
        .into_iter()
        .filter(|(n, _, _)| n.contains(topic))
        .map(|(_, s, doc)| {
            let doc = doc.trim();
            if doc.is_empty() {
                s
            } else {
                format!("{s}\n{doc}")
            }
        })
        .collect();
    sigs.sort();
    sigs.dedup();
    if sigs.is_empty() {
        return format!("no function or helper matches `{topic}`; `:help` lists the helpers\n");
    }
    sigs.join("\n") + "\n"
}

/// The functions of the reference area named `topic` (its slug or title, any case).
fn area_help(topic: &str) -> Option<String> {
    use crate::doc::registry::Area;
    let wanted = topic.trim().to_lowercase().replace(' ', "-");
    let area = Area::ALL
        .into_iter()
        .find(|a| a.slug() == wanted || a.title().to_lowercase().replace(' ', "-") == wanted)?;
    let surface = crate::doc::engine::surface().ok()?;
    let mut out = format!("{}: {}\n\n", area.title(), area.intro());
    let mut lines: Vec<String> = surface
        .functions
        .iter()
        .filter(|f| f.area == Some(area))
        .map(|f| {
            let first = f.doc.lines().next().unwrap_or("").trim();
            format!("  {}\n      {first}", f.signature())
        })
        .collect();
    lines.dedup();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\n`:help NAME` shows a function's whole doc; docs/reference/{}.md has the examples.",
        area.slug()
    );
    Some(out)
}

/// One row of `:nodes`.
struct Row {
    name: String,
    state: String,
    height: String,
    slot: String,
    tip: String,
    lib: String,
    peers: String,
    mempool: String,
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

async fn row(c: NodeClient, state: String) -> Row {
    let c = c.with_timeout(Duration::from_secs(2));
    let (ci, ni, mi) = tokio::join!(c.consensus_info(), c.network_info(), c.mempool_info());
    let dash = || "-".to_string();
    let (height, slot, tip, lib) = match &ci {
        Ok(i) => (
            i.height.to_string(),
            i.slot.to_string(),
            short(&i.tip),
            short(&i.lib),
        ),
        Err(_) => (dash(), dash(), dash(), dash()),
    };
    Row {
        name: c.name().to_owned(),
        state: if ci.is_err() && state == "running" {
            "no answer".to_owned()
        } else {
            state
        },
        height,
        slot,
        tip,
        lib,
        peers: ni.map_or_else(|_| dash(), |n| n.n_peers.to_string()),
        mempool: mi.map_or_else(|_| dash(), |m| m.pending_items.to_string()),
    }
}

/// The `:nodes` table (every node queried at once, 2 s deadline each).
pub fn nodes_table(handle: &tokio::runtime::Handle, net: &Arc<dyn Testnet>) -> String {
    let clients = net.clients();
    let states: Vec<String> = (0..clients.len())
        .map(|i| {
            net.node_state(i)
                .map_or_else(|| "unknown".into(), |s| format!("{s:?}").to_lowercase())
        })
        .collect();
    let rows = handle.block_on(futures::future::join_all(
        clients.iter().cloned().zip(states).map(|(c, s)| row(c, s)),
    ));
    let mut out = format!(
        "{:<8} {:<10} {:>7} {:>8} {:<9} {:<9} {:>5} {:>7}\n",
        "node", "state", "height", "slot", "tip", "lib", "peers", "mempool"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<8} {:<10} {:>7} {:>8} {:<9} {:<9} {:>5} {:>7}",
            r.name, r.state, r.height, r.slot, r.tip, r.lib, r.peers, r.mempool
        );
    }
    out
}

/// `:faults`: faults in force, or the whole log.
pub fn faults_text(net: &dyn Testnet, log: bool) -> String {
    if log {
        use engine::deploy::control_log::{TimelineEntry, timeline};
        let records = timeline(net);
        if records.is_empty() {
            return "no fault applied and no node controlled yet\n".into();
        }
        return records
            .iter()
            .map(|e| match e {
                TimelineEntry::Fault(r) => format!("{r}\n"),
                TimelineEntry::Control(c) => {
                    format!("{:>9.3}s control {c}\n", c.elapsed.as_secs_f64())
                }
            })
            .collect();
    }
    let active = net.active_faults();
    let on_nodes = net.node_faults();
    if active.is_empty() && on_nodes.is_empty() {
        return "no fault in force\n".into();
    }
    let links = active.iter().map(|a| {
        let links: Vec<String> = a.links.iter().map(ToString::to_string).collect();
        format!(
            "{} {} (since {:.1}s) [{}]\n",
            a.id,
            a.fault,
            a.applied_after.as_secs_f64(),
            links.join(", ")
        )
    });
    // the clock and disk faults the nodes apply to themselves
    let nodes = on_nodes
        .iter()
        .map(|f| format!("node-{} {}\n", f.node, f.fault));
    links.chain(nodes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_on_an_area_lists_its_functions_from_the_reference_metadata() {
        let text = area_help("Faults").expect("faults is an area");
        assert!(text.starts_with("Faults: "), "{text}");
        assert!(text.contains("partition("), "{text}");
        assert!(text.contains("heal("), "{text}");
        assert!(
            !text.contains("restart("),
            "node control is another area: {text}"
        );
        assert!(area_help("node control").is_some());
        assert!(area_help("no-such-area").is_none());
    }
}
