//! Every Kubernetes object of a run, rendered from the topology with no cluster in sight: the
//! deployer sends exactly these, `assets/k8s/` holds them for a 3-node example, and the snapshot
//! tests pin them. Keeping one code path is what stops the three from drifting apart.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::nodekind::{self, NodeKind, NodePlan};
use crate::topology::Topology;

/// Label carried by every object of a run (the namespace too): the run id.
pub const LABEL_RUN: &str = "nomos-script.run-id";
/// Label naming the node index of a node's objects and pod.
pub const LABEL_NODE: &str = "nomos-script.node";
/// Label naming the pid of the runner that owns the run (so `gc` leaves live runs alone).
pub const LABEL_OWNER: &str = "nomos-script.owner-pid";
/// Label naming the host of that runner (a pid means nothing on another machine).
pub const LABEL_HOST: &str = "nomos-script.owner-host";
/// Port of the node API inside every pod.
pub const API_PORT: u16 = 18080;
/// Port of the node's p2p listener inside every pod.
pub const P2P_PORT: u16 = 19000;
/// Where the ConfigMap with the node's config is mounted.
pub const CONFIG_DIR: &str = "/node/config";
/// File name of the config inside the ConfigMap (and so inside [`CONFIG_DIR`]).
pub const CONFIG_KEY: &str = "config.yaml";
/// Where the node's data volume is mounted.
pub const DATA_DIR: &str = "/node/data";
/// Image used when neither `LOGOS_BLOCKCHAIN_TESTNET_IMAGE` nor a locally built node image names one.
pub const DEFAULT_IMAGE: &str = "logos-blockchain-testing:local";

/// Resource requests and limits of every node container (the topology has no such setting, so
/// the deployer carries it). `None` leaves the field out: the cluster's defaults apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct K8sResources {
    /// e.g. `100m`.
    pub cpu_request: Option<String>,
    /// e.g. `1`.
    pub cpu_limit: Option<String>,
    /// e.g. `64Mi`.
    pub memory_request: Option<String>,
    /// e.g. `256Mi`.
    pub memory_limit: Option<String>,
}

impl K8sResources {
    /// Requests only: `cpu`, `memory` (Kubernetes quantities).
    pub fn requests(cpu: &str, memory: &str) -> Self {
        Self {
            cpu_request: Some(cpu.to_owned()),
            memory_request: Some(memory.to_owned()),
            ..Self::default()
        }
    }

    /// Adds limits: `cpu`, `memory` (Kubernetes quantities).
    pub fn with_limits(mut self, cpu: &str, memory: &str) -> Self {
        self.cpu_limit = Some(cpu.to_owned());
        self.memory_limit = Some(memory.to_owned());
        self
    }

    /// Checks every quantity so a typo fails before anything is sent, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        for (field, v) in [
            ("cpu_request", &self.cpu_request),
            ("cpu_limit", &self.cpu_limit),
            ("memory_request", &self.memory_request),
            ("memory_limit", &self.memory_limit),
        ] {
            if let Some(v) = v
                && !is_quantity(v)
            {
                return Err(format!(
                    "k8s resources: {field} = `{v}` is not a Kubernetes quantity (e.g. 250m, 1, 128Mi, 1Gi)"
                ));
            }
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let pick = |cpu: &Option<String>, mem: &Option<String>| {
            let mut m = serde_json::Map::new();
            if let Some(c) = cpu {
                m.insert("cpu".into(), json!(c));
            }
            if let Some(x) = mem {
                m.insert("memory".into(), json!(x));
            }
            m
        };
        let mut out = serde_json::Map::new();
        let req = pick(&self.cpu_request, &self.memory_request);
        if !req.is_empty() {
            out.insert("requests".into(), Value::Object(req));
        }
        let lim = pick(&self.cpu_limit, &self.memory_limit);
        if !lim.is_empty() {
            out.insert("limits".into(), Value::Object(lim));
        }
        Value::Object(out)
    }
}

/// A decimal number with an optional SI / binary suffix (what the API server accepts, roughly).
fn is_quantity(s: &str) -> bool {
    const SUFFIXES: [&str; 15] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n",
    ];
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits_end);
    !num.is_empty() && num.parse::<f64>().is_ok() && SUFFIXES.contains(&suffix)
}

/// How the node API is reached from the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ApiAccess {
    /// Through the API server (`kubectl port-forward` style); the Services stay ClusterIP.
    PortForward,
    /// Services of type NodePort, reached at `K8S_RUNNER_NODE_HOST:<node port>`.
    NodePort,
}

/// Where node data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum K8sStorage {
    /// An `emptyDir`: gone with the pod, so a restarted node syncs again from its peers.
    EmptyDir,
    /// A PersistentVolumeClaim of this size per node (the cluster's default StorageClass), kept
    /// across restarts and deleted with the StatefulSet.
    Persistent(String),
}

/// Everything besides the topology that shapes the manifests.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestSettings {
    /// Namespace of every object.
    pub namespace: String,
    /// Run id put in every `nomos-script.run-id` label.
    pub run_id: String,
    /// Owner pid and host labels (None in hand-applied manifests: `gc` leaves them alone).
    pub owner: Option<(u32, String)>,
    /// The node image; never built or pushed by the deployer.
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never` (None: the cluster's default for the tag).
    pub pull_policy: Option<String>,
    /// Requests and limits of every node container.
    pub resources: K8sResources,
    /// Decides the Services' type.
    pub access: ApiAccess,
    /// Decides the data volume.
    pub storage: K8sStorage,
    /// Arguments after the image's entrypoint (the node kind's command line, config inside the pod).
    pub args: Vec<String>,
    /// Extra environment of every node container (observability endpoints).
    pub env: Vec<(String, String)>,
}

impl ManifestSettings {
    /// Checks names, pull policy and resources, naming the bad field and value.
    pub fn validate(&self) -> Result<(), String> {
        if !is_dns_label(&self.namespace) {
            return Err(format!(
                "k8s namespace `{}` is not a valid name: lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit (K8S_RUNNER_NAMESPACE)",
                self.namespace
            ));
        }
        if !is_label_value(&self.run_id) {
            return Err(format!(
                "run id `{}` cannot be a Kubernetes label value: letters, digits, '-', '_' and '.', at most 63 characters",
                self.run_id
            ));
        }
        if let Some(p) = &self.pull_policy
            && !matches!(p.as_str(), "Always" | "IfNotPresent" | "Never")
        {
            return Err(format!(
                "LOGOS_BLOCKCHAIN_TESTNET_IMAGE_PULL_POLICY = `{p}`: expected Always, IfNotPresent or Never"
            ));
        }
        if self.image.trim().is_empty() {
            return Err("k8s image is empty (LOGOS_BLOCKCHAIN_TESTNET_IMAGE)".to_owned());
        }
        if let K8sStorage::Persistent(size) = &self.storage
            && !is_quantity(size)
        {
            return Err(format!(
                "k8s storage size `{size}` is not a Kubernetes quantity (e.g. 1Gi)"
            ));
        }
        self.resources.validate()
    }

    /// Labels of the run's objects (`node`: a node's objects and pod template).
    pub fn labels(&self, node: Option<usize>) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "nomos-script".to_owned(),
            ),
            (LABEL_RUN.to_owned(), self.run_id.clone()),
        ]);
        if let Some(i) = node {
            l.insert("app.kubernetes.io/name".to_owned(), "nomos-node".to_owned());
            l.insert("app.kubernetes.io/instance".to_owned(), node_name(i));
            l.insert(LABEL_NODE.to_owned(), i.to_string());
        }
        l
    }

    fn namespace_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.labels(None);
        if let Some((pid, host)) = &self.owner {
            l.insert(LABEL_OWNER.to_owned(), pid.to_string());
            if is_label_value(host) {
                l.insert(LABEL_HOST.to_owned(), host.clone());
            }
        }
        l
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

/// Name of node `i`'s StatefulSet and Service (and so its DNS name in the namespace).
pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// Name of node `i`'s only pod (StatefulSet ordinal 0).
pub fn pod_name(i: usize) -> String {
    format!("node-{i}-0")
}

/// Name of node `i`'s ConfigMap.
pub fn config_map_name(i: usize) -> String {
    format!("node-{i}-config")
}

/// Name of the NetworkPolicy that holds node `i`'s share of the faults in force.
pub fn policy_name(i: usize) -> String {
    format!("node-{i}-faults")
}

/// The namespace of a run.
pub fn namespace_for(run_id: &str) -> String {
    format!("nomos-script-{run_id}")
}

/// Address node `from` dials to reach node `to`: the Service name, resolved in the namespace.
pub fn peer_addr(to: usize) -> String {
    format!("{}:{P2P_PORT}", node_name(to))
}

/// The objects of one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeManifests {
    /// The node's index in the topology.
    pub index: usize,
    /// `node-<i>-config`: the rendered config, mounted at [`CONFIG_DIR`].
    pub config_map: ConfigMap,
    /// `node-<i>`: the name peers dial, and the API's node port when reached that way.
    pub service: Service,
    /// `node-<i>`: one replica, so scaling to 0/1 is stop/start and pod `node-<i>-0` is the node.
    pub stateful_set: StatefulSet,
}

/// The objects of a run: its namespace and every node's objects.
#[derive(Debug, Clone, Serialize)]
pub struct Manifests {
    /// Deleting it removes everything else.
    pub namespace: Namespace,
    /// Per node, in index order.
    pub nodes: Vec<NodeManifests>,
}

fn typed<T: DeserializeOwned>(what: &str, v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("internal error rendering the {what}: {e}"))
}

/// The plan of node `i` inside a pod: it listens on the fixed ports and dials peers by
/// Service name.
pub fn node_plan(
    i: usize,
    key_hex: String,
    peers: Vec<String>,
    genesis: &devnode::config::Genesis,
) -> NodePlan {
    NodePlan {
        index: i,
        key_hex,
        api_addr: SocketAddr::from(([0, 0, 0, 0], API_PORT)),
        testing_addr: None,
        p2p_addr: SocketAddr::from(([0, 0, 0, 0], P2P_PORT)),
        blend_addr: None,
        peers,
        data_dir: Path::new(DATA_DIR).join("db"),
        log_dir: Path::new(DATA_DIR).join("logs"),
        config_dir: std::env::temp_dir().join(format!("nomos-script-k8s-node-{i}")),
        genesis: genesis.clone(),
        overrides: Vec::new(),
    }
}

/// The container arguments of a node kind with the config at its place in the pod.
pub fn node_args(kind: &dyn NodeKind) -> Result<Vec<String>, crate::nodekind::NodeKindError> {
    kind.command(&Path::new(CONFIG_DIR).join(CONFIG_KEY))
        .map(|(_, args)| args)
}

/// Renders every object of a run: namespace, then per node its ConfigMap (config rendered by
/// the node kind), Service and StatefulSet. `genesis_time_ms` is fixed by the caller so the
/// output is deterministic.
pub fn render(
    topo: &Topology,
    kind: &dyn NodeKind,
    settings: &ManifestSettings,
    genesis_time_ms: u64,
) -> Result<Manifests, String> {
    settings.validate()?;
    let genesis = nodekind::genesis_for(topo, genesis_time_ms);
    let namespace = render_namespace(settings)?;
    let mut nodes = Vec::new();
    for i in 0..topo.node_count() {
        let peers = topo.dialled_by(i).into_iter().map(peer_addr).collect();
        let mut plan = node_plan(i, nodekind::leader_secret(topo.seed, i), peers, &genesis);
        nodekind::apply_start_skew(kind, topo, &mut plan, Some(super::provision::NO_FAKETIME))
            .map_err(|e| e.to_string())?;
        let config = kind
            .render_config(topo, &plan)
            .map_err(|e| format!("config of node-{i}: {e}"))?;
        nodes.push(node_manifests(settings, i, &config)?);
    }
    Ok(Manifests { namespace, nodes })
}

/// The run's namespace, labelled with the run id (and the owner, for `gc`).
pub fn render_namespace(settings: &ManifestSettings) -> Result<Namespace, String> {
    typed(
        "namespace",
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": settings.namespace, "labels": settings.namespace_labels()},
        }),
    )
}

/// The ConfigMap, Service and StatefulSet of node `i` with this rendered config.
pub fn node_manifests(
    settings: &ManifestSettings,
    i: usize,
    config: &str,
) -> Result<NodeManifests, String> {
    let ns = &settings.namespace;
    let labels = settings.labels(Some(i));
    let selector = BTreeMap::from([
        (LABEL_RUN.to_owned(), settings.run_id.clone()),
        (LABEL_NODE.to_owned(), i.to_string()),
    ]);
    let config_map = typed(
        "config map",
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config_map_name(i), "namespace": ns, "labels": labels},
            "data": {CONFIG_KEY: config},
        }),
    )?;
    let service_type = match settings.access {
        ApiAccess::PortForward => "ClusterIP",
        ApiAccess::NodePort => "NodePort",
    };
    let service = typed(
        "service",
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": node_name(i), "namespace": ns, "labels": labels},
            "spec": {
                "type": service_type,
                "selector": selector,
                // Peers dial each other before the API answers the readiness probe.
                "publishNotReadyAddresses": true,
                "ports": [
                    {"name": "api", "port": API_PORT, "targetPort": "api", "protocol": "TCP"},
                    {"name": "p2p", "port": P2P_PORT, "targetPort": "p2p", "protocol": "TCP"},
                ],
            },
        }),
    )?;
    let mut env = vec![json!({"name": "NOMOS_SCRIPT_RUN_ID", "value": settings.run_id})];
    env.extend(
        settings
            .env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v})),
    );
    let mut container = json!({
        "name": "node",
        "image": settings.image,
        "args": settings.args,
        "env": env,
        "ports": [
            {"name": "api", "containerPort": API_PORT, "protocol": "TCP"},
            {"name": "p2p", "containerPort": P2P_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/network/info", "port": "api"},
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": true},
            {"name": "data", "mountPath": DATA_DIR},
        ],
    });
    if let Some(p) = &settings.pull_policy {
        container["imagePullPolicy"] = json!(p);
    }
    let resources = settings.resources.to_json();
    if resources.as_object().is_some_and(|m| !m.is_empty()) {
        container["resources"] = resources;
    }
    let mut volumes = vec![json!({"name": "config", "configMap": {"name": config_map_name(i)}})];
    let mut spec = json!({
        "replicas": 1,
        "serviceName": node_name(i),
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "enableServiceLinks": false,
                "containers": [container],
            },
        },
    });
    match &settings.storage {
        K8sStorage::EmptyDir => volumes.push(json!({"name": "data", "emptyDir": {}})),
        K8sStorage::Persistent(size) => {
            spec["volumeClaimTemplates"] = json!([{
                "metadata": {"name": "data", "labels": labels},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": size}},
                },
            }]);
            spec["persistentVolumeClaimRetentionPolicy"] =
                json!({"whenDeleted": "Delete", "whenScaled": "Retain"});
        }
    }
    spec["template"]["spec"]["volumes"] = json!(volumes);
    let stateful_set = typed(
        "stateful set",
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": node_name(i), "namespace": ns, "labels": labels},
            "spec": spec,
        }),
    )?;
    Ok(NodeManifests {
        index: i,
        config_map,
        service,
        stateful_set,
    })
}

/// Node pairs that may not talk, as `(low, high)`.
pub type Blocked = BTreeSet<(usize, usize)>;

/// One NetworkPolicy per node that has a blocked peer: p2p ingress only from the nodes it may
/// still talk to (the API port stays open to everyone, so the runner keeps observing it).
/// Policies only ever allow, so the faults in force are merged into `blocked` first and each
/// node gets a single policy; a node with nothing blocked gets none.
///
/// Blocking ingress on both ends stops new connections either way; whether connections
/// established before the policy are cut depends on the CNI.
pub fn fault_policies(
    settings: &ManifestSettings,
    nodes: usize,
    blocked: &Blocked,
) -> Result<Vec<NetworkPolicy>, String> {
    let mut out = Vec::new();
    for i in 0..nodes {
        let cut: Vec<usize> = (0..nodes)
            .filter(|&j| j != i && blocked.contains(&(i.min(j), i.max(j))))
            .collect();
        if cut.is_empty() {
            continue;
        }
        let allowed: Vec<String> = (0..nodes)
            .filter(|j| !cut.contains(j))
            .map(|j| j.to_string())
            .collect();
        let mut rules = vec![json!({"ports": [{"port": API_PORT, "protocol": "TCP"}]})];
        if !allowed.is_empty() {
            rules.push(json!({
                "from": [{"podSelector": {
                    "matchLabels": {LABEL_RUN: settings.run_id},
                    "matchExpressions": [{"key": LABEL_NODE, "operator": "In", "values": allowed}],
                }}],
                "ports": [{"port": P2P_PORT, "protocol": "TCP"}],
            }));
        }
        let mut labels = settings.labels(None);
        labels.insert(LABEL_NODE.to_owned(), i.to_string());
        out.push(typed(
            "network policy",
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": policy_name(i),
                    "namespace": settings.namespace,
                    "labels": labels,
                    "annotations": {"nomos-script.blocked-peers": cut.iter().map(|j| node_name(*j)).collect::<Vec<_>>().join(",")},
                },
                "spec": {
                    "podSelector": {"matchLabels": {LABEL_RUN: settings.run_id, LABEL_NODE: i.to_string()}},
                    "policyTypes": ["Ingress"],
                    "ingress": rules,
                },
            }),
        )?);
    }
    Ok(out)
}

/// YAML documents for `kubectl apply -f`, separated by `---`.
pub fn to_yaml_docs<T: Serialize>(objects: &[&T]) -> Result<String, String> {
    let mut out = String::new();
    for (n, o) in objects.iter().enumerate() {
        if n > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(o).map_err(|e| format!("yaml: {e}"))?);
    }
    Ok(out)
}

/// The files of `assets/k8s/` for these manifests: `00-namespace.yaml`, then
/// `node-<i>.yaml` with the node's ConfigMap, Service and StatefulSet.
pub fn asset_files(m: &Manifests) -> Result<Vec<(String, String)>, String> {
    let mut files = vec![(
        "00-namespace.yaml".to_owned(),
        to_yaml_docs(&[&m.namespace])?,
    )];
    for n in &m.nodes {
        let mut text = to_yaml_docs(&[&n.config_map])?;
        text.push_str("---\n");
        text.push_str(&to_yaml_docs(&[&n.service])?);
        text.push_str("---\n");
        text.push_str(&to_yaml_docs(&[&n.stateful_set])?);
        files.push((format!("{}.yaml", node_name(n.index)), text));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in ["1", "250m", "0.5", "128Mi", "1Gi", "2G"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Mi", "1 Gi", "1gb", "x", "-1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(is_dns_label("nomos-script-1763923456-3fa9c2"));
        assert!(!is_dns_label("Nomos"));
        assert!(!is_dns_label("-a"));
        assert!(is_label_value("1763923456-3fa9c2"));
        assert!(!is_label_value("a/b"));
    }
}
