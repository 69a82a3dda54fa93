//! Provisioning: the client, the namespace, then per node its ConfigMap, Service and
//! StatefulSet, and the runner's way to each node API (port-forward listener or node port).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

use super::manifest::{self, ApiAccess, ManifestSettings, NodeManifests};
use super::{K8sDeployer, K8sNode, K8sTestnet};
use crate::client::NodeClient;
use crate::deploy::{DeployError, DeployOptions, NodeState, Teardown, Testnet};
use crate::nodekind::{self, NodeKind};
use crate::report::RunEvent;
use crate::topology::Topology;

/// Every API call gets this long (the client has no overall timeout of its own).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Shortens a kube error to the API server's message.
pub(super) fn kmsg(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({} {})", s.message, s.code, s.reason),
        other => other.to_string(),
    }
}

/// True when the API server answered 404.
pub(super) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Runs one API call with [`CALL_TIMEOUT`], naming what it did on failure.
pub(super) async fn call<T>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("failed to {what}: {}", kmsg(&e))),
        Err(_) => Err(format!(
            "failed to {what}: the API server did not answer within {}s",
            CALL_TIMEOUT.as_secs()
        )),
    }
}

pub(super) fn node_kind(dep: &K8sDeployer) -> Result<Arc<dyn NodeKind>, DeployError> {
    match &dep.node_kind {
        Some(k) => Ok(k.clone()),
        None => nodekind::from_env().map_err(DeployError::from),
    }
}

/// The image: the deployer's setting, else the tag the compose deployer and
/// `scripts/build-image.sh` give the node binary, else the default name.
fn image(dep: &K8sDeployer, kind: &dyn NodeKind) -> String {
    if let Some(i) = &dep.image {
        return i.clone();
    }
    kind.command(std::path::Path::new(manifest::CONFIG_DIR))
        .ok()
        .and_then(|(bin, _)| crate::deploy::compose::image::tag_for(&bin).ok())
        .unwrap_or_else(|| manifest::DEFAULT_IMAGE.to_owned())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The manifest settings of a run (`owner`: label the namespace with this process).
pub(super) fn settings(
    dep: &K8sDeployer,
    kind: &dyn NodeKind,
    run_id: &str,
    owner: Option<u32>,
    monitoring: &crate::metrics::Monitoring,
) -> Result<ManifestSettings, DeployError> {
    let env = crate::deploy::passed_env(monitoring);
    let s = ManifestSettings {
        namespace: dep
            .namespace
            .clone()
            .unwrap_or_else(|| manifest::namespace_for(run_id)),
        run_id: run_id.to_owned(),
        owner: owner.map(|pid| (pid, hostname())),
        image: image(dep, kind),
        pull_policy: Some(
            dep.pull_policy
                .clone()
                .unwrap_or_else(|| "IfNotPresent".to_owned()),
        ),
        resources: dep.resources.clone(),
        access: if dep.node_host.is_some() {
            ApiAccess::NodePort
        } else {
            ApiAccess::PortForward
        },
        storage: dep.storage.clone(),
        args: manifest::node_args(kind)?,
        env,
    };
    s.validate().map_err(DeployError::io)?;
    Ok(s)
}

/// The deployer's client, or one from the environment checked with a version call.
pub(super) async fn client(dep: &K8sDeployer) -> Result<kube::Client, DeployError> {
    if let Some(c) = &dep.client {
        return Ok(c.clone());
    }
    let unreachable = |e: String| {
        DeployError::io(format!(
            "cannot reach a Kubernetes cluster: {e} (set KUBECONFIG, or run inside a cluster)"
        ))
    };
    let client = tokio::time::timeout(Duration::from_secs(10), kube::Client::try_default())
        .await
        .map_err(|_| unreachable("loading the kube config took over 10s".to_owned()))?
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::time::timeout(Duration::from_secs(10), client.apiserver_version())
        .await
        .map_err(|_| unreachable("the API server did not answer within 10s".to_owned()))?
        .map_err(|e| unreachable(kmsg(&e)))?;
    Ok(client)
}

/// Why a pod cannot start its node under libfaketime.
pub(super) const NO_FAKETIME: &str =
    "the k8s deployer runs the node image as built, which holds no libfaketime";

pub(super) async fn provision(
    dep: &K8sDeployer,
    topo: &Topology,
    opts: &DeployOptions,
) -> Result<Arc<K8sTestnet>, DeployError> {
    let kind = node_kind(dep)?;
    crate::deploy::check_kind_features(&*kind, &opts.required_features)?;
    crate::nodekind::check_start_skews(&*kind, topo, Some(NO_FAKETIME))
        .map_err(DeployError::from)?;
    let run_id = opts
        .run_id
        .clone()
        .unwrap_or_else(crate::deploy::new_run_id);
    let settings = settings(
        dep,
        &*kind,
        &run_id,
        Some(std::process::id()),
        &opts.monitoring,
    )?;
    let client = client(dep).await?;
    if let Some(ev) = &opts.events {
        ev.emit(RunEvent::DeployStarted {
            run_id: run_id.clone(),
            deployer: "k8s".to_owned(),
            nodes: topo.node_count(),
            seed: topo.seed,
        });
    }
    let genesis = nodekind::genesis_for(topo, now_ms());
    let owns_namespace = ensure_namespace(&client, &settings, dep.namespace.is_some()).await?;
    let net = Arc::new(K8sTestnet {
        namespace: settings.namespace.clone(),
        client,
        run_id,
        owns_namespace,
        settings,
        topology: topo.clone(),
        kind,
        genesis,
        nodes: Mutex::new(Vec::new()),
        faults: Mutex::new(super::faults::FaultBook::default()),
        cancel: CancellationToken::new(),
        ctl: crate::deploy::node_control::ControlCore::new(opts.events.clone()),
        preserve: dep.preserve,
        node_host: dep.node_host.clone(),
        rollout_timeout: dep.rollout_timeout,
        poll: dep.poll_interval,
        saved_logs: Mutex::new(None),
        monitoring: opts.monitoring.clone(),
    });
    if let Err(e) = create_nodes(&net, topo).await {
        let _ = net.teardown(opts.keep_on_deploy_failure).await;
        return Err(e);
    }
    net.emit(RunEvent::NodesStarted {
        run_dir: None,
        endpoints: net.endpoints(),
    });
    Ok(net)
}

/// Creates the run's namespace; returns whether this run owns it (and so deletes it). A
/// namespace named by the user that already exists is used as is.
async fn ensure_namespace(
    client: &kube::Client,
    s: &ManifestSettings,
    named_by_user: bool,
) -> Result<bool, DeployError> {
    let api: Api<Namespace> = Api::all(client.clone());
    if named_by_user {
        let found = call(
            &format!("look up namespace {}", s.namespace),
            api.get_opt(&s.namespace),
        )
        .await
        .map_err(DeployError::io)?;
        if found.is_some() {
            return Ok(false);
        }
    }
    let ns = manifest::render_namespace(s).map_err(DeployError::io)?;
    call(
        &format!("create namespace {}", s.namespace),
        api.create(&PostParams::default(), &ns),
    )
    .await
    .map_err(DeployError::io)?;
    Ok(true)
}

async fn create_nodes(net: &Arc<K8sTestnet>, topo: &Topology) -> Result<(), DeployError> {
    let mut all = Vec::new();
    for i in 0..topo.node_count() {
        let peers = topo
            .dialled_by(i)
            .into_iter()
            .map(manifest::peer_addr)
            .collect();
        all.push(render_node(
            net,
            i,
            nodekind::leader_secret(topo.seed, i),
            peers,
            Vec::new(),
        )?);
    }
    for m in &all {
        let node = create_node(net, m, topo.degree(m.index)).await?;
        net.lock_nodes().push(node);
    }
    Ok(())
}

/// Renders node `i`'s objects with this key and peer list.
pub(super) fn render_node(
    net: &K8sTestnet,
    i: usize,
    key_hex: String,
    peers: Vec<String>,
    overrides: Vec<crate::topology::ConfigOverride>,
) -> Result<NodeManifests, DeployError> {
    let mut plan = manifest::node_plan(i, key_hex, peers, &net.genesis);
    plan.overrides = overrides;
    crate::nodekind::apply_start_skew(&*net.kind, &net.topology, &mut plan, Some(NO_FAKETIME))
        .map_err(DeployError::from)?;
    let config = net
        .kind
        .render_config(&net.topology, &plan)
        .map_err(|e| DeployError::from(e).during(format!("config of node-{i}")))?;
    manifest::node_manifests(&net.settings, i, &config).map_err(DeployError::io)
}

/// Sends node `m.index`'s ConfigMap, Service and StatefulSet; sets up the way to its API.
pub(super) async fn create_node(
    net: &K8sTestnet,
    m: &NodeManifests,
    expected_peers: usize,
) -> Result<K8sNode, DeployError> {
    let i = m.index;
    let ns = &net.namespace;
    let spawn_err = |what: String| DeployError::spawn(format!("node-{i}"), what);
    let cms: Api<ConfigMap> = Api::namespaced(net.client.clone(), ns);
    let svcs: Api<Service> = Api::namespaced(net.client.clone(), ns);
    let sets: Api<StatefulSet> = Api::namespaced(net.client.clone(), ns);
    let pp = PostParams::default();
    call(
        &format!("create config map {} in {ns}", manifest::config_map_name(i)),
        cms.create(&pp, &m.config_map),
    )
    .await
    .map_err(spawn_err)?;
    let svc = call(
        &format!("create service {} in {ns}", manifest::node_name(i)),
        svcs.create(&pp, &m.service),
    )
    .await
    .map_err(spawn_err)?;
    call(
        &format!("create stateful set {} in {ns}", manifest::node_name(i)),
        sets.create(&pp, &m.stateful_set),
    )
    .await
    .map_err(spawn_err)?;
    let url = match &net.node_host {
        Some(host) => {
            let port = api_node_port(&svc).ok_or_else(|| {
                spawn_err(format!(
                    "service {} got no node port for the API (K8S_RUNNER_NODE_HOST = {host} needs NodePort services)",
                    manifest::node_name(i)
                ))
            })?;
            format!("http://{host}:{port}")
        }
        None => {
            let port = super::forward::listen(net, i).await.map_err(spawn_err)?;
            format!("http://127.0.0.1:{port}")
        }
    };
    Ok(K8sNode {
        index: i,
        client: match net.kind.dialect(&net.topology) {
            Some(d) => NodeClient::new(i, &url).with_dialect(d),
            None => NodeClient::new(i, &url),
        },
        state: NodeState::Running,
        expected_peers,
    })
}

fn api_node_port(svc: &Service) -> Option<u16> {
    svc.spec
        .as_ref()?
        .ports
        .as_ref()?
        .iter()
        .find(|p| p.name.as_deref() == Some("api"))?
        .node_port
        .and_then(|p| u16::try_from(p).ok())
}
