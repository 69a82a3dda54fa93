//! Provisioning: image, run dir, network, link proxies and relays, configs, containers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::CreateContainerOptions;
use tokio_util::sync::CancellationToken;

use super::docker::{self, container_name, docker_cause, labels, msg, network_name};
use super::{
    API_PORT, ComposeDeployer, ComposeNode, ComposeTestnet, NODE_DIR_IN_CONTAINER, P2P_PORT,
    TESTING_PORT,
};
use crate::client::NodeClient;
use crate::deploy::{DeployError, DeployOptions, NodeState, Teardown, Testnet};
use crate::links::LinkLayer;
use crate::nodekind::{self, NodeKind, NodePlan};
use crate::report::RunEvent;
use crate::topology::Topology;

/// Config file the containers run with (peers through the link relays).
pub(super) const CONFIG_FILE: &str = "config.yaml";
/// Config file for running the stack by hand (peers dialled by service name).
pub(super) const COMPOSE_CONFIG_FILE: &str = "config.compose.yaml";
/// Proxy target until the container's address is known (nothing listens there: dials fail
/// fast and the node redials).
const NO_TARGET: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn node_kind(dep: &ComposeDeployer) -> Result<Arc<dyn NodeKind>, DeployError> {
    match &dep.node_kind {
        Some(k) => Ok(k.clone()),
        None => nodekind::from_env().map_err(DeployError::from),
    }
}

/// The host binary to put in the image, and the arguments it runs with in a container.
pub(super) fn node_command(kind: &dyn NodeKind) -> Result<(PathBuf, Vec<String>), DeployError> {
    kind.command(&Path::new(NODE_DIR_IN_CONTAINER).join(CONFIG_FILE))
        .map_err(DeployError::from)
}

/// The node kind's own environment as a container sees it: a value naming a mounted host
/// directory (the circuits) names its place in the container instead.
fn kind_env_in_container(kind: &dyn NodeKind) -> Vec<String> {
    let mounts = kind.mounts();
    kind.env()
        .into_iter()
        .map(|(k, v)| {
            let v = mounts
                .iter()
                .find(|(host, _)| host.display().to_string() == v)
                .map_or(v, |(_, inside)| inside.clone());
            format!("{k}={v}")
        })
        .collect()
}

/// Environment of every container: the run id and the observability settings, with a
/// loopback host rewritten to the gateway (the host as containers see it).
fn container_env(
    run_id: &str,
    gateway: IpAddr,
    monitoring: &crate::metrics::Monitoring,
) -> Vec<String> {
    let mut env = vec![format!("NOMOS_SCRIPT_RUN_ID={run_id}")];
    for (var, v) in crate::deploy::passed_env(monitoring) {
        {
            let v = v
                .replace("://localhost", &format!("://{gateway}"))
                .replace("://127.0.0.1", &format!("://{gateway}"));
            env.push(format!("{var}={v}"));
        }
    }
    env
}

/// Why a node container cannot start under libfaketime, if it cannot: the image must be the one
/// built here (its libraries known) and hold every library libfaketime needs; the library itself
/// is mounted read-only from the host at its own path.
fn faketime_refused(program: &Path) -> Option<String> {
    if std::env::var(super::image::IMAGE_ENV).is_ok_and(|t| !t.trim().is_empty()) {
        return Some(format!(
            "the image is {} = {}, which nomos-script did not build, so whether its libraries can load libfaketime is unknown",
            super::image::IMAGE_ENV,
            std::env::var(super::image::IMAGE_ENV).unwrap_or_default()
        ));
    }
    let lib = match nodekind::faketime::library() {
        Ok(l) => l,
        Err(e) => return Some(e),
    };
    let image_libs = match super::image::linked_libraries(program) {
        Ok(l) => l,
        Err(e) => return Some(e),
    };
    let needed = match super::image::linked_libraries(&lib) {
        Ok(l) => l,
        Err(e) => return Some(e),
    };
    let file = |p: &Path| p.file_name().map(|f| f.to_owned());
    let missing: Vec<String> = needed
        .iter()
        .filter(|n| !image_libs.iter().any(|i| file(i) == file(n)))
        .map(|n| n.display().to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the compose deployer's image is built FROM scratch with {} and the libraries it links, and libfaketime ({}) also needs {}",
            program.display(),
            lib.display(),
            missing.join(", ")
        )
    })
}

pub(super) async fn provision(
    dep: &ComposeDeployer,
    topo: &Topology,
    opts: &DeployOptions,
) -> Result<Arc<ComposeTestnet>, DeployError> {
    let kind = node_kind(dep)?;
    crate::deploy::check_kind_features(&*kind, &opts.required_features)?;
    let (program, args) = node_command(&*kind)?;
    // refused before anything is created
    let faketime_refused = topo
        .nodes
        .iter()
        .any(|n| n.start_clock_skew_ms.is_some())
        .then(|| faketime_refused(&program))
        .flatten();
    crate::nodekind::check_start_skews(&*kind, topo, faketime_refused.as_deref())
        .map_err(DeployError::from)?;
    let docker = docker::connect().await.map_err(DeployError::io)?;
    let image = super::image::ensure_image(&docker, &program)
        .await
        .map_err(DeployError::io)?;
    let (run_id, run_dir) = crate::deploy::create_run_dir(dep.base_dir.as_deref(), opts)?;
    super::cleanup::write_run_json(&run_id, &run_dir);
    if let Some(ev) = &opts.events {
        ev.emit(RunEvent::DeployStarted {
            run_id: run_id.clone(),
            deployer: "compose".to_owned(),
            nodes: topo.node_count(),
            seed: topo.seed,
        });
    }

    let network = network_name(&run_id);
    let gateway = match create_network(&docker, &run_id, &network).await {
        Ok(g) => g,
        Err(e) => {
            let _ = docker.remove_network(&network).await;
            if !opts.keep_on_deploy_failure {
                let _ = std::fs::remove_dir_all(&run_dir);
            } else {
                crate::deploy::mark_kept(&run_dir, &run_id, "deploy failed", true);
            }
            return Err(e);
        }
    };
    let genesis = nodekind::genesis_for(topo, now_ms());
    let tcp_links = kind.capabilities().link_transport == nodekind::LinkTransport::Tcp
        && kind.capabilities().link_faults;
    let net = Arc::new(ComposeTestnet {
        env: {
            let mut env = container_env(&run_id, gateway, &opts.monitoring);
            env.extend(kind_env_in_container(&*kind));
            env
        },
        run_id,
        run_dir,
        topology: topo.clone(),
        kind,
        genesis,
        docker,
        image,
        network,
        gateway,
        args,
        nodes: Mutex::new(Vec::new()),
        // the gateway relays carry TCP: a kind whose peers speak UDP gets direct links
        links: (dep.use_links && tcp_links).then(|| LinkLayer::new(topo.seed)),
        cancel: CancellationToken::new(),
        monitoring: opts.monitoring.clone(),
        ctl: crate::deploy::node_control::ControlCore::new(opts.events.clone()),
    });
    if let Err(e) = start_nodes(&net, topo).await {
        let _ = net.teardown(opts.keep_on_deploy_failure).await;
        return Err(e);
    }
    if let Some(ev) = &opts.events {
        ev.emit(RunEvent::NodesStarted {
            run_dir: Some(net.run_dir.clone()),
            endpoints: net.endpoints(),
        });
    }
    Ok(net)
}

async fn create_network(
    docker: &bollard::Docker,
    run_id: &str,
    network: &str,
) -> Result<IpAddr, DeployError> {
    docker
        .create_network(NetworkCreateRequest {
            name: network.to_owned(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels(run_id, None)),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            DeployError::io_caused(
                format!("failed to create Docker network {network}"),
                docker_cause(&e),
            )
        })?;
    let info = docker.inspect_network(network, None).await.map_err(|e| {
        DeployError::io_caused(
            format!("failed to inspect Docker network {network}"),
            docker_cause(&e),
        )
    })?;
    info.ipam
        .and_then(|i| i.config)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.gateway.as_deref()?.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| DeployError::io(format!("Docker network {network} has no IPv4 gateway")))
}

async fn start_nodes(net: &Arc<ComposeTestnet>, topo: &Topology) -> Result<(), DeployError> {
    let n = topo.node_count();
    let mut peers: Vec<Vec<String>> = vec![Vec::new(); n];
    for &(a, b) in &topo.edges {
        peers[a].push(peer_addr(net, a, b).await.map_err(DeployError::io)?);
    }
    let ports = free_ports(n)
        .map_err(|e| DeployError::io_caused("failed to find free ports on 127.0.0.1", e))?;
    for (i, peers) in peers.into_iter().enumerate() {
        let plan = plan(net, i, nodekind::leader_secret(topo.seed, i), peers);
        let node = prepare_node(
            net,
            plan,
            topo.degree(i),
            &direct_peers(&*net.kind, topo, i),
            ports[i],
        )?;
        net.lock_nodes().push(node);
    }
    super::template::write_compose_file(net).map_err(DeployError::io)?;
    let created = futures::future::join_all((0..n).map(|i| create_container(net, i))).await;
    created.into_iter().collect::<Result<Vec<()>, _>>()?;
    let started = futures::future::join_all((0..n).map(|i| start_container(net, i))).await;
    started.into_iter().collect::<Result<Vec<()>, _>>()?;
    super::control::spawn_monitor(net);
    Ok(())
}

/// `n` distinct free ports on 127.0.0.1 for the published APIs. Chosen here rather than by
/// Docker because Docker hands out a new ephemeral port on every container start, and a
/// restarted node must keep its address (clients of it are held by workloads and the feed).
pub(super) fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// The address node `from` dials to reach node `to`: a relay on the gateway in front of the
/// link proxy, or `to`'s container name without links.
pub(super) async fn peer_addr(
    net: &ComposeTestnet,
    from: usize,
    to: usize,
) -> Result<String, String> {
    let Some(links) = &net.links else {
        return Ok(by_name(&*net.kind, &container_name(&net.run_id, to)));
    };
    let target = net
        .lock_nodes()
        .get(to)
        .and_then(|n| n.ip)
        .map(|ip| SocketAddr::new(IpAddr::V4(ip), P2P_PORT))
        .unwrap_or(NO_TARGET);
    let proxy = links
        .add_link(from, to, target)
        .await
        .map_err(|e| format!("failed to start the link proxy {from}->{to}: {e}"))?;
    let relay = super::relay::start(net.gateway, proxy, net.cancel.clone())
        .await
        .map_err(|e| {
            format!(
                "failed to listen on the Docker network gateway {} for link {from}->{to}: {e}",
                net.gateway
            )
        })?;
    Ok(relay.to_string())
}

/// A peer's p2p address by its name on the Docker network, spelled as the kind wants it.
fn by_name(kind: &dyn NodeKind, name: &str) -> String {
    match kind.capabilities().link_transport {
        nodekind::LinkTransport::Tcp => format!("{name}:{P2P_PORT}"),
        nodekind::LinkTransport::Udp => format!("/dns4/{name}/udp/{P2P_PORT}/quic-v1"),
    }
}

/// Peers of node `i` by service name, for the hand-run compose file.
fn direct_peers(kind: &dyn NodeKind, topo: &Topology, i: usize) -> Vec<String> {
    topo.edges
        .iter()
        .filter(|&&(a, _)| a == i)
        .map(|&(_, b)| by_name(kind, &format!("node-{b}")))
        .collect()
}

pub(super) fn plan(
    net: &ComposeTestnet,
    i: usize,
    key_hex: String,
    peers: Vec<String>,
) -> NodePlan {
    let inside = Path::new(NODE_DIR_IN_CONTAINER);
    NodePlan {
        index: i,
        key_hex,
        api_addr: SocketAddr::from(([0, 0, 0, 0], API_PORT)),
        testing_addr: net
            .kind
            .testing_surface()
            .then(|| SocketAddr::from(([0, 0, 0, 0], TESTING_PORT))),
        p2p_addr: SocketAddr::from(([0, 0, 0, 0], P2P_PORT)),
        blend_addr: net
            .kind
            .blend_port()
            .then(|| SocketAddr::from(([0, 0, 0, 0], P2P_PORT + 1))),
        peers,
        data_dir: inside.join("data"),
        log_dir: inside.join("logs"),
        config_dir: net.run_dir.join(format!("node-{i}")),
        genesis: net.genesis.clone(),
        overrides: Vec::new(),
    }
}

/// Creates node `i`'s dir with its two configs (live and hand-run).
pub(super) fn prepare_node(
    net: &ComposeTestnet,
    plan: NodePlan,
    expected_peers: usize,
    direct_peers: &[String],
    api_port: u16,
) -> Result<ComposeNode, DeployError> {
    let i = plan.index;
    let mut plan = plan;
    // provision refused what cannot apply; the library is mounted at its own path
    let extra = crate::nodekind::apply_start_skew(&*net.kind, &net.topology, &mut plan, None)
        .map_err(DeployError::from)?;
    let extra_mounts: Vec<PathBuf> = extra
        .iter()
        .filter(|(k, _)| k == "LD_PRELOAD")
        .filter_map(|(_, v)| Path::new(v).parent().map(Path::to_path_buf))
        .collect();
    let extra_env: Vec<String> = extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let dir = net.run_dir.join(format!("node-{i}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| DeployError::file("create", &data, e))?;
    let render = |plan: &NodePlan| {
        net.kind
            .render_config(&net.topology, plan)
            .map_err(DeployError::from)
    };
    let live = render(&plan)?;
    let by_hand = render(&NodePlan {
        peers: direct_peers.to_vec(),
        ..plan
    })?;
    for (file, text) in [(CONFIG_FILE, live), (COMPOSE_CONFIG_FILE, by_hand)] {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|e| DeployError::file("write", &path, e))?;
    }
    Ok(ComposeNode {
        index: i,
        container: container_name(&net.run_id, i),
        dir,
        api_port,
        ip: None,
        client: compose_client(net, i, api_port, None),
        state: NodeState::Stopped,
        expected_peers,
        extra_env,
        extra_mounts,
    })
}

/// The client of node `i` through its published ports.
fn compose_client(
    net: &ComposeTestnet,
    i: usize,
    api_port: u16,
    testing_port: Option<u16>,
) -> NodeClient {
    let c = NodeClient::new(i, &format!("http://127.0.0.1:{api_port}")).with_testing_url(
        testing_port
            .map(|p| format!("http://127.0.0.1:{p}"))
            .as_deref(),
    );
    match net.kind.dialect(&net.topology) {
        Some(d) => c.with_dialect(d),
        None => c,
    }
}

/// Creates node `i`'s container (not started).
pub(super) async fn create_container(net: &ComposeTestnet, i: usize) -> Result<(), DeployError> {
    let (name, dir, host_port, extra_env, extra_mounts) = {
        let nodes = net.lock_nodes();
        let n = &nodes[i];
        (
            n.container.clone(),
            n.dir.clone(),
            n.api_port,
            n.extra_env.clone(),
            n.extra_mounts.clone(),
        )
    };
    let api = format!("{API_PORT}/tcp");
    let testing = format!("{TESTING_PORT}/tcp");
    let mut exposed = vec![api.clone()];
    let mut bindings = HashMap::from([(
        api,
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".to_owned()),
            host_port: Some(host_port.to_string()),
        }]),
    )]);
    if net.kind.testing_surface() {
        exposed.push(testing.clone());
        bindings.insert(
            testing,
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".to_owned()),
                host_port: Some(String::new()),
            }]),
        );
    }
    let body = ContainerCreateBody {
        image: Some(net.image.tag.clone()),
        cmd: Some(net.args.clone()),
        env: Some(net.env.iter().cloned().chain(extra_env).collect()),
        labels: Some(labels(&net.run_id, Some(i))),
        exposed_ports: Some(exposed),
        stop_timeout: Some(5),
        host_config: Some(HostConfig {
            binds: Some(
                std::iter::once(format!("{}:{NODE_DIR_IN_CONTAINER}", dir.display()))
                    .chain(
                        net.kind
                            .mounts()
                            .into_iter()
                            .map(|(host, inside)| format!("{}:{inside}:ro", host.display())),
                    )
                    .chain(
                        extra_mounts
                            .iter()
                            .map(|d| format!("{}:{}:ro", d.display(), d.display())),
                    )
                    .collect(),
            ),
            port_bindings: Some(bindings),
            network_mode: Some(net.network.clone()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                net.network.clone(),
                EndpointSettings {
                    aliases: Some(vec![format!("node-{i}")]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    net.docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|e| {
            DeployError::spawn_caused(
                format!("node-{i}"),
                format!(
                    "failed to create container {name} from image {}",
                    net.image.tag
                ),
                docker_cause(&e),
            )
        })?;
    Ok(())
}

/// Starts node `i`'s container and learns its address and published API port.
pub(super) async fn start_container(net: &ComposeTestnet, i: usize) -> Result<(), DeployError> {
    let (name, port) = {
        let nodes = net.lock_nodes();
        (nodes[i].container.clone(), nodes[i].api_port)
    };
    let spawn_err = |what: String| DeployError::spawn(format!("node-{i}"), what);
    if let Err(e) = net.docker.start_container(&name, None).await {
        let m = msg(&e);
        let hint = if m.contains("already allocated") || m.contains("address already in use") {
            format!(
                " (port clash: another process holds 127.0.0.1:{port}, where node-{i}'s API is published)"
            )
        } else {
            String::new()
        };
        return Err(DeployError::spawn_caused(
            format!("node-{i}"),
            format!("failed to start container {name}{hint}"),
            docker_cause(&e),
        ));
    }
    net.lock_nodes()[i].state = NodeState::Running;
    refresh(net, i).await.map_err(spawn_err)
}

/// Reads node `i`'s address and API port from Docker; points the link proxies towards it at
/// the (possibly new) address and the client at the (possibly new) port.
pub(super) async fn refresh(net: &ComposeTestnet, i: usize) -> Result<(), String> {
    let name = net.lock_nodes()[i].container.clone();
    let info = net
        .docker
        .inspect_container(&name, None)
        .await
        .map_err(|e| format!("failed to inspect container {name}: {}", msg(&e)))?;
    let state = info.state.clone().unwrap_or_default();
    if state.running != Some(true) {
        let tail = super::cleanup::container_logs(&net.docker, &name, Some(5))
            .await
            .unwrap_or_default();
        return Err(format!(
            "container {name} exited with code {}: {}",
            state.exit_code.unwrap_or(-1),
            crate::deploy::one_line(&tail)
        ));
    }
    let settings = info.network_settings.unwrap_or_default();
    let ip = settings
        .networks
        .as_ref()
        .and_then(|m| m.get(&net.network))
        .and_then(|e| e.ip_address.as_deref())
        .and_then(|s| s.parse::<Ipv4Addr>().ok())
        .ok_or_else(|| format!("container {name} has no address on network {}", net.network))?;
    let published = |inside: u16| {
        settings
            .ports
            .as_ref()
            .and_then(|p| p.get(&format!("{inside}/tcp")))
            .and_then(|b| b.as_ref())
            .and_then(|b| {
                b.iter()
                    .find_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
            })
    };
    let port = published(API_PORT)
        .ok_or_else(|| format!("container {name}: Docker published no host port for the API"))?;
    let testing_port = published(TESTING_PORT);
    {
        let client = compose_client(net, i, port, testing_port);
        let mut nodes = net.lock_nodes();
        let n = &mut nodes[i];
        n.ip = Some(ip);
        n.api_port = port;
        n.client = client;
    }
    if let Some(links) = &net.links {
        let target = SocketAddr::new(IpAddr::V4(ip), P2P_PORT);
        for id in links.proxies().keys().filter(|id| id.to == i) {
            let _ = links.set_target(id.from, i, target);
        }
    }
    Ok(())
}
