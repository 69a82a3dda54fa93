//! Node control of a live testnet: start, stop, restart, kill, pause, resume, add_node.

use super::*;
use engine::error::Chain;

pub(super) fn register_node_control(reg: &mut Registrar) {
    script_fn!(reg,
        /// Restarts node `i` (stop, then start with the same data): the node must catch up.
        ///
        /// ```rhai
        /// net.restart(2);
        /// net.wait_ready("30s");
        /// ```
        fn restart(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| {
            n.control("restart", i, |net, i| net.restart(i))
        }
    );
    script_fn!(reg,
        /// Stops node `i` gracefully; its data stays for `start(i)`.
        ///
        /// ```rhai
        /// net.stop(3);
        /// net.start(3);
        /// ```
        fn stop(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| {
            n.control("stop", i, |net, i| net.stop(i))
        }
    );
    script_fn!(reg,
        /// Starts a stopped or killed node `i` again.
        ///
        /// ```rhai
        /// net.kill(3);
        /// net.start(3);
        /// net.wait_ready("30s");
        /// ```
        fn start(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| {
            n.control("start", i, |net, i| net.start(i))
        }
    );
    script_fn!(reg,
        /// Kills node `i` abruptly (SIGKILL, no shutdown); `start(i)` brings it back.
        ///
        /// ```rhai
        /// net.kill(1);
        /// net.start(1);
        /// ```
        fn kill(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| {
            n.control("kill", i, |net, i| net.kill(i))
        }
    );
    script_fn!(reg,
        /// Freezes node `i` (SIGSTOP): it keeps its connections but answers nothing, as a node
        /// stuck in a long pause would.
        ///
        /// ```rhai
        /// net.pause(1);
        /// sleep("500ms");
        /// net.resume(1);
        /// ```
        fn pause(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| {
            n.control("pause", i, |net, i| net.pause(i))
        }
    );
    script_fn!(reg,
        /// Unfreezes a paused node `i`; it then catches up.
        ///
        /// ```rhai
        /// net.pause(2);
        /// net.resume(2);
        /// ```
        fn resume(net: Testnet, i: int) => |n: &mut NetHandle, i: INT| {
            n.control("resume", i, |net, i| net.resume(i))
        }
    );
    script_fn!(reg,
        /// Adds a follower node (no stake) that joins through node 0; returns its index.
        ///
        /// ```rhai,deploys
        /// let small = LocalDeployer().deploy(TopologyBuilder().nodes(2).slot_duration("100ms"));
        /// let i = small.add_node();
        /// small.wait_height(small.node(0).height(), "20s");
        /// print(`node-${i} joined`);
        /// small.down();
        /// ```
        fn add_node(net: Testnet) -> int => |n: &mut NetHandle| -> Res<INT> {
            add_node(
                n,
                AddNodeSpec {
                    peers: vec![0],
                    ..Default::default()
                },
            )
        }
    );
    script_fn!(reg,
        /// Adds a node: `#{peers: [..], stake: n, overrides: #{path: value}}` (all optional;
        /// peers default to `[0]`). A staked node claims a leader reserved with
        /// `TopologyBuilder.reserve_joiner(stake)`. `overrides` patch the new node's config by
        /// dotted path, as `with_node_override` does for the others; a path its config lacks is
        /// refused, naming the keys there.
        ///
        /// ```rhai,no_run
        /// let net = LocalDeployer().deploy(TopologyBuilder().nodes(3).reserve_joiner(1));
        /// let i = net.add_node(#{ peers: [1, 2], stake: 1 });
        /// let j = net.add_node(#{ peers: [0], overrides: #{ "testing.halt_at_height": 5 } });
        /// ```
        fn add_node(net: Testnet, spec: Map) -> int => |n: &mut NetHandle, spec: Map| -> Res<INT> {
            add_node_spec(n, &spec)
        }
    );
}

pub(super) fn add_node_spec(n: &NetHandle, spec: &Map) -> Res<INT> {
    let peers = match spec.get("peers") {
        Some(p) => match p.read_lock::<Array>() {
            Some(a) => a
                .iter()
                .map(|i| index(i, "add_node peers"))
                .collect::<Res<Vec<_>>>()?,
            None => {
                return err(format!(
                    "add_node peers expects an array of node indices, got {p}"
                ));
            }
        },
        None => vec![0],
    };
    let stake = match spec.get("stake") {
        Some(s) => s
            .as_int()
            .ok()
            .and_then(|s| u64::try_from(s).ok())
            .ok_or_else(|| {
                rhai::EvalAltResult::ErrorRuntime(
                    format!("add_node stake = {s} must be a non-negative integer").into(),
                    rhai::Position::NONE,
                )
            })?,
        None => 0,
    };
    let mut overrides = Vec::new();
    if let Some(o) = spec.get("overrides") {
        let Some(m) = o.read_lock::<Map>() else {
            return err(format!(
                "add_node overrides expects a map of dotted paths to values (e.g. #{{ \"testing.halt_at_height\": 5 }}), got {o}"
            ));
        };
        for (path, value) in m.iter() {
            if path.trim().is_empty() {
                return err("add_node overrides: a path is empty");
            }
            overrides.push(engine::topology::ConfigOverride {
                path: path.to_string(),
                value: to_yaml(value, &format!("add_node override `{path}`"))?,
            });
        }
    }
    for k in spec.keys() {
        if !["peers", "stake", "overrides"].contains(&k.as_str()) {
            return err(format!(
                "add_node: unknown key `{k}` (expected peers, stake, overrides)"
            ));
        }
    }
    add_node(
        n,
        AddNodeSpec {
            peers,
            stake,
            overrides,
        },
    )
}

pub(super) fn add_node(n: &NetHandle, spec: AddNodeSpec) -> Res<INT> {
    for &p in &spec.peers {
        n.check_index(p as INT, "add_node peer")?;
    }
    let Some(net) = n.net.clone() else {
        // checking: the dry testnet grows, so the new node can be used afterwards
        let i = n
            .dry_nodes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return Ok(i as INT);
    };
    let r = n
        .bridge
        .block_on_cancellable(async move { net.add_node(spec).await })?;
    match r {
        Ok(i) => Ok(i as INT),
        Err(e) => err(format!("add_node failed: {}", e.chain())),
    }
}
