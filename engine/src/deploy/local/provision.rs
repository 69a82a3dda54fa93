//! Provisioning: run dir, free ports, link proxies, configs, processes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{LocalDeployer, LocalNode, LocalTestnet};
use crate::client::NodeClient;
use crate::deploy::{DeployError, DeployOptions, NodeState};
use crate::links::LinkLayer;
use crate::nodekind::{self, NodePlan};
use crate::report::RunEvent;
use crate::topology::Topology;

/// Binds `n` loopback listeners on free ports, held open until dropped so
/// that no two of them (nor a link proxy bound meanwhile) share a port.
pub(super) fn free_listeners(n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    bind_below_ephemeral(n, |port| std::net::TcpListener::bind(("127.0.0.1", port)))
}

/// Lowest port the kernel hands out for outgoing connections (`ip_local_port_range`).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// First port tried for node ports.
const NODE_PORTS_FROM: u16 = 10_000;

/// `n` sockets bound to free ports below the kernel's ephemeral range. A port picked with
/// port 0 comes from that range, which every outgoing connection also draws from: between
/// the moment the deployer releases a node's port and the moment the node binds it (up to
/// tens of seconds for hundreds of nodes), an HTTP client or another run's dial could take
/// it ("Address already in use"). Below the range only another explicit bind can. The scan
/// starts at a per-process offset so that concurrent runs rarely meet; when the range below
/// is too small, port 0 is used.
pub(super) fn bind_below_ephemeral<S>(
    n: usize,
    bind: impl Fn(u16) -> std::io::Result<S>,
) -> std::io::Result<Vec<S>> {
    let low = ephemeral_low();
    let span = low.saturating_sub(NODE_PORTS_FROM) as usize;
    if span < 4 * n.max(1) {
        return (0..n).map(|_| bind(0)).collect();
    }
    let seed = std::process::id() as usize * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize);
    let start = seed % span;
    let mut out = Vec::with_capacity(n);
    for k in 0..span {
        if out.len() == n {
            break;
        }
        let port = NODE_PORTS_FROM + ((start + k) % span) as u16;
        if let Ok(sock) = bind(port) {
            out.push(sock);
        }
    }
    if out.len() < n {
        return (0..n).map(|_| bind(0)).collect();
    }
    Ok(out)
}

/// Free loopback ports for `n` nodes of `kind`, held (bound) until dropped so that no two of
/// them, nor a link proxy bound meanwhile, share a port: API and testing over TCP; p2p over
/// TCP or UDP by the kind's transport; blend over UDP where the kind has one.
pub(super) struct NodePorts {
    pub api: Vec<SocketAddr>,
    pub testing: Vec<SocketAddr>,
    pub p2p: Vec<SocketAddr>,
    pub blend: Vec<SocketAddr>,
    _tcp: Vec<std::net::TcpListener>,
    _udp: Vec<std::net::UdpSocket>,
}

impl NodePorts {
    /// The addresses, with the ports freed for the nodes to bind.
    pub(super) fn release(
        self,
    ) -> (
        Vec<SocketAddr>,
        Vec<SocketAddr>,
        Vec<SocketAddr>,
        Vec<SocketAddr>,
    ) {
        (self.api, self.p2p, self.testing, self.blend)
    }

    pub(super) fn bind(kind: &dyn nodekind::NodeKind, n: usize) -> std::io::Result<Self> {
        let udp_p2p = kind.capabilities().link_transport == nodekind::LinkTransport::Udp;
        let tcp = free_listeners(if udp_p2p { 2 * n } else { 3 * n })?;
        let bind_udp = |k: usize| -> std::io::Result<Vec<std::net::UdpSocket>> {
            bind_below_ephemeral(k, |port| std::net::UdpSocket::bind(("127.0.0.1", port)))
        };
        let udp = bind_udp(if udp_p2p { n } else { 0 } + if kind.blend_port() { n } else { 0 })?;
        let t = |l: &std::net::TcpListener| l.local_addr().expect("bound listener has an address");
        let u = |s: &std::net::UdpSocket| s.local_addr().expect("bound socket has an address");
        let api = tcp[..n].iter().map(t).collect();
        let testing = tcp[n..2 * n].iter().map(t).collect();
        let (p2p, blend) = if udp_p2p {
            (
                udp[..n].iter().map(u).collect(),
                udp[n..].iter().map(u).collect(),
            )
        } else {
            (
                tcp[2 * n..].iter().map(t).collect(),
                udp.iter().map(u).collect(),
            )
        };
        Ok(Self {
            api,
            testing,
            p2p,
            blend,
            _tcp: tcp,
            _udp: udp,
        })
    }
}

/// The address node `a` dials to reach node `b`: a link-layer proxy (TCP) or relay (UDP)
/// by the kind's transport when links are on, else `b`'s own address; spelled as the kind
/// wants it.
pub(super) async fn link_to(
    links: Option<&LinkLayer>,
    kind: &dyn nodekind::NodeKind,
    a: usize,
    b: usize,
    target: SocketAddr,
) -> Result<String, String> {
    let addr = match links {
        Some(l) if kind.capabilities().link_transport == nodekind::LinkTransport::Udp => l
            .add_udp_link(a, b, target)
            .await
            .map_err(|e| format!("failed to start the UDP link relay {a}->{b}: {e}"))?,
        Some(l) => l
            .add_link(a, b, target)
            .await
            .map_err(|e| format!("failed to start the link proxy {a}->{b}: {e}"))?,
        None => target,
    };
    Ok(kind.peer_address(addr))
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) async fn provision(
    dep: &LocalDeployer,
    topo: &Topology,
    opts: &DeployOptions,
) -> Result<Arc<LocalTestnet>, DeployError> {
    let kind = match &dep.node_kind {
        Some(k) => k.clone(),
        None => nodekind::from_env().map_err(DeployError::from)?,
    };
    crate::deploy::check_kind_features(&*kind, &opts.required_features)?;
    // Fail before creating anything if the binary cannot be found, or a clock skew at start
    // cannot apply to it.
    kind.command(Path::new("config.yaml"))
        .map_err(DeployError::from)?;
    nodekind::check_start_skews(&*kind, topo, None).map_err(DeployError::from)?;
    let (run_id, run_dir) = crate::deploy::create_run_dir(dep.base_dir.as_deref(), opts)?;
    // Until the testnet exists (and its Drop takes over), an error or a
    // cancelled deploy removes the run dir here.
    let guard = DirGuard(Some(run_dir.clone()));
    if let Some(ev) = &opts.events {
        ev.emit(RunEvent::DeployStarted {
            run_id: run_id.clone(),
            deployer: "local".to_owned(),
            nodes: topo.node_count(),
            seed: topo.seed,
        });
    }

    let n = topo.node_count();
    let ports = NodePorts::bind(&*kind, n)
        .map_err(|e| DeployError::file("bind free ports in", &run_dir, e))?;
    let has_testing = kind.testing_surface();
    // no link layer for a kind whose links cannot be faulted (its nodes find peers by
    // themselves): it would only stand in the way, and faults are refused for it
    let links =
        (dep.use_links && kind.capabilities().link_faults).then(|| LinkLayer::new(topo.seed));
    let mut peers: Vec<Vec<String>> = vec![Vec::new(); n];
    for &(a, b) in &topo.edges {
        let target = link_to(links.as_ref(), &*kind, a, b, ports.p2p[b])
            .await
            .map_err(DeployError::io)?;
        peers[a].push(target);
    }
    let (api, p2p, testing, blend) = ports.release();

    let genesis = nodekind::genesis_for(topo, now_ms());
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let node = prepare_node(
            &*kind,
            topo,
            &run_dir,
            NodePlan {
                index: i,
                key_hex: nodekind::leader_secret(topo.seed, i),
                api_addr: api[i],
                testing_addr: has_testing.then_some(testing[i]),
                p2p_addr: p2p[i],
                blend_addr: blend.get(i).copied(),
                peers: peers[i].clone(),
                data_dir: run_dir.join(format!("node-{i}")).join("data"),
                log_dir: run_dir.join(format!("node-{i}")).join("logs"),
                config_dir: run_dir.join(format!("node-{i}")),
                genesis: genesis.clone(),
                overrides: Vec::new(),
            },
            topo.degree(i),
        )?;
        nodes.push(node);
    }
    drop(guard.disarm());
    let net = Arc::new(LocalTestnet {
        run_id,
        run_dir,
        topology: topo.clone(),
        kind,
        genesis,
        nodes: Mutex::new(nodes),
        links,
        ctl: crate::deploy::node_control::ControlCore::new(opts.events.clone()),
        monitoring: opts.monitoring.clone(),
    });
    for i in 0..n {
        if let Err(e) = spawn_node(&net, i) {
            if opts.keep_on_deploy_failure {
                crate::deploy::mark_kept(&net.run_dir, &net.run_id, "deploy failed", true);
            }
            let _ = crate::deploy::Teardown::teardown(&*net, opts.keep_on_deploy_failure).await;
            return Err(e);
        }
    }
    super::cleanup::write_run_json(&net);
    if let Some(ev) = &opts.events {
        ev.emit(RunEvent::NodesStarted {
            run_dir: Some(net.run_dir.clone()),
            endpoints: crate::deploy::Testnet::endpoints(&*net),
        });
    }
    Ok(net)
}

/// Creates a node's dirs and config file.
pub(super) fn prepare_node(
    kind: &dyn nodekind::NodeKind,
    topo: &Topology,
    run_dir: &Path,
    mut plan: NodePlan,
    expected_peers: usize,
) -> Result<LocalNode, DeployError> {
    let i = plan.index;
    let env = nodekind::apply_start_skew(kind, topo, &mut plan, None).map_err(DeployError::from)?;
    let dir = run_dir.join(format!("node-{i}"));
    let mut client = NodeClient::new(i, &format!("http://{}", plan.api_addr))
        .with_testing_url(plan.testing_addr.map(|a| format!("http://{a}")).as_deref());
    if let Some(d) = kind.dialect(topo) {
        client = client.with_dialect(d);
    }
    for d in [&dir, &plan.data_dir, &plan.log_dir] {
        std::fs::create_dir_all(d).map_err(|e| DeployError::file("create", d, e))?;
    }
    let text = kind.render_config(topo, &plan).map_err(DeployError::from)?;
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, text).map_err(|e| DeployError::file("write", &config_path, e))?;
    Ok(LocalNode {
        index: i,
        api_addr: plan.api_addr,
        p2p_addr: plan.p2p_addr,
        client,
        dir,
        config_path,
        log_dir: plan.log_dir,
        child: None,
        pid: None,
        state: NodeState::Stopped,
        expected_peers,
        env,
    })
}

/// Starts node `i`'s process (in its own process group, output appended to
/// `node-<i>/output.log`).
pub(super) fn spawn_node(net: &LocalTestnet, i: usize) -> Result<(), DeployError> {
    let mut nodes = net.lock_nodes();
    let node = nodes
        .get_mut(i)
        .ok_or_else(|| DeployError::spawn(format!("node-{i}"), "no such node"))?;
    let (program, args) = net
        .kind
        .command(&node.config_path)
        .map_err(DeployError::from)?;
    let out_path = node.dir.join("output.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out_path)
        .map_err(|e| DeployError::file("open", &out_path, e))?;
    let err = out
        .try_clone()
        .map_err(|e| DeployError::file("open", &out_path, e))?;
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&args)
        .current_dir(&node.dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .env("NOMOS_SCRIPT_RUN_ID", &net.run_id)
        .envs(merged_env(net.kind.env(), &node.env))
        .kill_on_drop(false);
    if std::env::var_os("LOGOS_BLOCKCHAIN_LOG_DIR").is_none() {
        cmd.env("LOGOS_BLOCKCHAIN_LOG_DIR", &node.log_dir);
    }
    let child = cmd.spawn().map_err(|e| {
        DeployError::spawn_caused(format!("node-{i}"), program.display().to_string(), e)
    })?;
    node.pid = child.id();
    node.child = Some(child);
    node.state = NodeState::Running;
    drop(nodes);
    super::cleanup::write_run_json(net);
    Ok(())
}

/// The kind's environment with a node's own on top; a preload of both is kept (the node's,
/// libfaketime, first).
fn merged_env(kind: Vec<(String, String)>, node: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = kind;
    for (k, v) in node {
        match out.iter_mut().find(|(ok, _)| ok == k) {
            Some((_, ov)) if k == "LD_PRELOAD" => *ov = format!("{v}:{ov}"),
            Some((_, ov)) => *ov = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// Removes a directory on drop unless disarmed.
struct DirGuard(Option<std::path::PathBuf>);

impl DirGuard {
    fn disarm(mut self) -> Option<std::path::PathBuf> {
        self.0.take()
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merged_env;

    #[test]
    fn a_node_preload_goes_before_the_kinds_and_other_values_win() {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let env = merged_env(
            vec![kv("LD_PRELOAD", "/k.so"), kv("A", "1")],
            &[kv("LD_PRELOAD", "/ft.so"), kv("A", "2"), kv("B", "3")],
        );
        assert_eq!(
            env,
            vec![kv("LD_PRELOAD", "/ft.so:/k.so"), kv("A", "2"), kv("B", "3")]
        );
    }
}
