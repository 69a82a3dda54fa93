//! The k8s deployer's API traffic, checked against a recorded mock service (tower-test's
//! `mock::pair` behind a real `kube::Client`): every request's method, path and key body fields
//! for deploy, node control, partitions and cleanup, answered by a small in-memory cluster. The
//! node APIs are real HTTP servers on 127.0.0.1 reached as NodePort services, so readiness runs
//! end to end. No cluster is needed.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{add_node_refused, joiner};
use engine::deploy::k8s::K8sDeployer;
use engine::deploy::{DeployError, DeployOptions, Deployer, NodeState};
use engine::links::Fault;
use engine::nodekind::ReferenceNode;
use engine::topology::{Topology, TopologyBuilder};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the deployer sent.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    query: String,
    body: Value,
}

impl Call {
    fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// How the fake cluster's pods behave.
#[derive(Debug, Clone, Default)]
struct Behaviour {
    /// Nodes whose container crash-loops (never ready).
    crash: Vec<usize>,
}

#[derive(Debug, Default)]
struct Cluster {
    calls: Vec<Call>,
    objects: BTreeMap<String, Value>,
    namespace_gone: bool,
    /// node -> (pod uid serial, replicas)
    pods: BTreeMap<usize, u32>,
    replicas: BTreeMap<usize, i32>,
    serial: u32,
    api_ports: Vec<u16>,
    behaviour: Behaviour,
    /// What `GET /api/v1/namespaces` lists (for gc).
    namespaces: Vec<Value>,
}

fn not_found(what: &str) -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
    )
}

fn node_of(name: &str) -> Option<usize> {
    name.strip_prefix("node-")?.split('-').next()?.parse().ok()
}

impl Cluster {
    fn pod(&self, i: usize, ns: &str) -> Option<Value> {
        let serial = *self.pods.get(&i)?;
        let crash = self.behaviour.crash.contains(&i);
        let container = if crash {
            json!({"name": "node", "ready": false, "restartCount": 3, "image": "x", "imageID": "",
                   "state": {"waiting": {"reason": "CrashLoopBackOff",
                                         "message": "back-off 40s restarting failed container=node"}},
                   "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}})
        } else {
            json!({"name": "node", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
                   "state": {"running": {}}})
        };
        Some(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("node-{i}-0"), "namespace": ns, "uid": format!("uid-{i}-{serial}")},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": if crash { "False" } else { "True" }}],
                "containerStatuses": [container],
            },
        }))
    }

    fn new_pod(&mut self, i: usize) {
        self.serial += 1;
        self.pods.insert(i, self.serial);
    }

    fn answer(&mut self, call: &Call) -> (u16, Value) {
        let parts: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
        let m = call.method.as_str();
        // /api/v1/namespaces[/ns[/kind[/name[/sub]]]] or /apis/group/version/namespaces/...
        let rest: Vec<&str> = if parts[0] == "api" {
            parts[2..].to_vec()
        } else {
            parts[3..].to_vec()
        };
        match (m, rest.as_slice()) {
            ("POST", ["namespaces"]) => (201, call.body.clone()),
            ("GET", ["namespaces", ns]) => {
                if self.namespace_gone {
                    not_found(&format!("namespaces \"{ns}\""))
                } else {
                    (
                        200,
                        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                    )
                }
            }
            ("DELETE", ["namespaces", ns]) => {
                self.namespace_gone = true;
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                             "status": {"phase": "Terminating"}}),
                )
            }
            ("POST", ["namespaces", _, kind]) => {
                let name = call.body["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let mut obj = call.body.clone();
                obj["metadata"]["uid"] = json!(format!("uid-{kind}-{name}"));
                if *kind == "services" {
                    let i = node_of(&name).unwrap();
                    obj["spec"]["ports"][0]["nodePort"] = json!(self.api_ports[i]);
                }
                if *kind == "statefulsets" {
                    let i = node_of(&name).unwrap();
                    self.replicas.insert(i, 1);
                    self.new_pod(i);
                }
                self.objects.insert(format!("{kind}/{name}"), obj.clone());
                (201, obj)
            }
            ("GET", ["namespaces", _, "statefulsets", name]) => {
                let Some(mut obj) = self.objects.get(&format!("statefulsets/{name}")).cloned()
                else {
                    return not_found(name);
                };
                let i = node_of(name).unwrap();
                let ready = self.pods.contains_key(&i) && !self.behaviour.crash.contains(&i);
                obj["metadata"]["generation"] = json!(1);
                obj["status"] = json!({"replicas": self.replicas[&i], "observedGeneration": 1,
                                       "readyReplicas": if ready { 1 } else { 0 }});
                (200, obj)
            }
            ("PATCH", ["namespaces", ns, "statefulsets", name, "scale"]) => {
                let i = node_of(name).unwrap();
                let r = call.body["spec"]["replicas"].as_i64().unwrap() as i32;
                self.replicas.insert(i, r);
                if r == 0 {
                    self.pods.remove(&i);
                } else if !self.pods.contains_key(&i) {
                    self.new_pod(i);
                }
                (
                    200,
                    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                             "metadata": {"name": name, "namespace": ns},
                             "spec": {"replicas": r}, "status": {"replicas": r}}),
                )
            }
            ("GET", ["namespaces", ns, "pods", name]) => {
                match node_of(name).and_then(|i| self.pod(i, ns)) {
                    Some(p) => (200, p),
                    None => not_found(&format!("pods \"{name}\"")),
                }
            }
            ("DELETE", ["namespaces", ns, "pods", name]) => {
                let i = node_of(name).unwrap();
                let Some(p) = self.pod(i, ns) else {
                    return not_found(name);
                };
                self.pods.remove(&i);
                if self.replicas.get(&i) == Some(&1) {
                    self.new_pod(i); // the StatefulSet controller's replacement
                }
                (200, p)
            }
            ("GET", ["namespaces"]) => (
                200,
                json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {},
                       "items": self.namespaces.clone()}),
            ),
            ("GET", ["namespaces", _, kind]) => {
                let items: Vec<Value> = self
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&format!("{kind}/")))
                    .map(|(_, v)| v.clone())
                    .collect();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}),
                )
            }
            ("DELETE", ["namespaces", _, kind, name])
                if ["statefulsets", "services", "configmaps"].contains(kind) =>
            {
                match self.objects.remove(&format!("{kind}/{name}")) {
                    Some(o) => (200, o),
                    None => not_found(name),
                }
            }
            ("PATCH", ["namespaces", _, "networkpolicies", name]) => {
                self.objects
                    .insert(format!("networkpolicies/{name}"), call.body.clone());
                (200, call.body.clone())
            }
            ("DELETE", ["namespaces", _, "networkpolicies", name]) => {
                match self.objects.remove(&format!("networkpolicies/{name}")) {
                    Some(_) => (
                        200,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}),
                    ),
                    None => not_found(name),
                }
            }
            _ => (
                500,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "metadata": {},
                       "message": format!("fake cluster: no route for {} {}", call.method, call.path),
                       "reason": "InternalError", "code": 500}),
            ),
        }
    }
}

/// Log text of a pod (`GET .../pods/<name>/log`), in the fake cluster.
fn pod_log(name: &str, crash: bool) -> String {
    if crash {
        format!(
            "{name}: loading /node/config/config.yaml\nerror: invalid genesis: leader key mismatch\n"
        )
    } else {
        format!("{name}: listening on 0.0.0.0:19000\n{name}: imported block 1\n")
    }
}

/// Serves the mock's requests from the fake cluster until the client goes away.
fn serve(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    cluster: Arc<Mutex<Cluster>>,
) {
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().to_string();
            let path = req.uri().path().to_owned();
            let query = req.uri().query().unwrap_or("").to_owned();
            let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let call = Call {
                method,
                path,
                query,
                body,
            };
            let mut c = cluster.lock().unwrap();
            c.calls.push(call.clone());
            let resp = if call.method == "GET" && call.path.ends_with("/log") {
                let pod = call.path.rsplit('/').nth(1).unwrap_or("").to_owned();
                let crash = node_of(&pod).is_some_and(|i| c.behaviour.crash.contains(&i));
                Response::builder()
                    .status(200)
                    .body(Body::from(pod_log(&pod, crash).into_bytes()))
                    .unwrap()
            } else {
                let (status, v) = c.answer(&call);
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&v).unwrap()))
                    .unwrap()
            };
            drop(c);
            send.send_response(resp);
        }
    });
}

/// A node API answering readiness: height 3 and `peers` peers.
async fn node_api(peers: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let body = if path.starts_with("/cryptarchia/info") {
                    // the reference node's default dialect, logos-2026-05
                    serde_json::json!({
                        "cryptarchia_info": {
                            "lib": "0".repeat(64), "lib_slot": 0,
                            "tip": "1".repeat(64), "slot": 9, "height": 3,
                        },
                        "mode": {"Started": "Online"},
                    })
                    .to_string()
                } else {
                    serde_json::json!({
                        "listen_addresses": ["0.0.0.0:19000"],
                        "peer_id": "2".repeat(64),
                        "n_peers": peers,
                        "n_connections": peers,
                        "n_pending_connections": 0,
                        "connected_peers": [],
                    })
                    .to_string()
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

fn topology() -> Topology {
    TopologyBuilder::new()
        .nodes(3)
        .network_full()
        .seed(3)
        .with_node_override(2, "limits.max_block_txs", 7.into())
        .build()
        .unwrap()
}

async fn setup(behaviour: Behaviour) -> (K8sDeployer, Arc<Mutex<Cluster>>) {
    let mut ports = Vec::new();
    for _ in 0..4 {
        ports.push(node_api(2).await);
    }
    let cluster = Arc::new(Mutex::new(Cluster {
        api_ports: ports,
        behaviour,
        ..Cluster::default()
    }));
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    serve(handle, cluster.clone());
    let client = kube::Client::new(svc, "default");
    let dep = K8sDeployer::new()
        .with_client(client)
        .with_node_kind(Arc::new(ReferenceNode { binary: None }))
        .with_image("nomos-script-node:test")
        .with_pull_policy("Never")
        .with_node_host("127.0.0.1")
        .preserve(false)
        .with_rollout_timeout(Duration::from_secs(5))
        .with_poll_interval(Duration::from_millis(10));
    let mut dep = dep;
    dep.namespace = None;
    (dep, cluster)
}

fn opts(run_id: &str) -> DeployOptions {
    DeployOptions {
        ready_timeout: Duration::from_secs(5),
        run_id: Some(run_id.to_owned()),
        keep_on_deploy_failure: false,
        ..DeployOptions::default()
    }
}

/// The calls that change something (reads are polls whose count depends on timing).
fn writes(c: &Arc<Mutex<Cluster>>) -> Vec<Call> {
    c.lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.method != "GET")
        .cloned()
        .collect()
}

fn take_calls(c: &Arc<Mutex<Cluster>>) -> Vec<Call> {
    std::mem::take(&mut c.lock().unwrap().calls)
}

const NS: &str = "/api/v1/namespaces/nomos-script-mock1";
const APPS: &str = "/apis/apps/v1/namespaces/nomos-script-mock1";
const NET: &str = "/apis/networking.k8s.io/v1/namespaces/nomos-script-mock1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_control_partition_and_cleanup_send_the_expected_requests() {
    let (dep, cluster) = setup(Behaviour::default()).await;
    let net = dep.deploy(&topology(), &opts("mock1")).await.unwrap();
    assert_eq!(net.deployer_name(), "k8s");
    assert_eq!(net.node_count(), 3);

    // Deploy: the namespace, then per node its ConfigMap, Service and StatefulSet.
    let w = writes(&cluster);
    let lines: Vec<String> = w.iter().map(Call::line).collect();
    let mut want = vec!["POST /api/v1/namespaces".to_owned()];
    for _ in 0..3 {
        want.push(format!("POST {NS}/configmaps"));
        want.push(format!("POST {NS}/services"));
        want.push(format!("POST {APPS}/statefulsets"));
    }
    assert_eq!(lines, want);
    let ns = &w[0].body;
    assert_eq!(ns["metadata"]["name"], "nomos-script-mock1");
    assert_eq!(ns["metadata"]["labels"]["nomos-script.run-id"], "mock1");
    assert_eq!(
        ns["metadata"]["labels"]["nomos-script.owner-pid"],
        std::process::id().to_string()
    );
    for i in 0..3 {
        let cm = &w[1 + 3 * i].body;
        assert_eq!(cm["metadata"]["name"], format!("node-{i}-config"));
        let config = cm["data"]["config.yaml"].as_str().unwrap();
        assert!(config.contains(&format!("index: {i}")), "{config}");
        assert_eq!(config.contains("max_block_txs: 7"), i == 2, "{config}");
        let svc = &w[2 + 3 * i].body;
        assert_eq!(svc["metadata"]["name"], format!("node-{i}"));
        assert_eq!(svc["spec"]["type"], "NodePort");
        assert_eq!(svc["spec"]["selector"]["nomos-script.node"], i.to_string());
        let sts = &w[3 + 3 * i].body;
        assert_eq!(sts["spec"]["replicas"], 1);
        let c = &sts["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "nomos-script-node:test");
        assert_eq!(c["imagePullPolicy"], "Never");
        assert_eq!(
            c["args"],
            json!(["devnode", "--config", "/node/config/config.yaml"])
        );
    }
    // Readiness read the rollout of every StatefulSet.
    let calls = take_calls(&cluster);
    for i in 0..3 {
        let get = format!("GET {APPS}/statefulsets/node-{i}");
        assert!(calls.iter().any(|c| c.line() == get), "no {get}");
    }
    // The clients reach the node APIs at the node ports.
    let ports = cluster.lock().unwrap().api_ports.clone();
    for (i, c) in net.clients().iter().enumerate() {
        assert_eq!(c.base_url(), format!("http://127.0.0.1:{}", ports[i]));
    }
    assert!(
        net.endpoints()[0]
            .to_string()
            .contains("kubectl -n nomos-script-mock1 logs node-0-0"),
        "{:?}",
        net.endpoints()
    );

    // restart: the pod is deleted (graceful) and its replacement awaited.
    net.restart(1).await.unwrap();
    let calls = take_calls(&cluster);
    let w: Vec<&Call> = calls.iter().filter(|c| c.method != "GET").collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].line(), format!("DELETE {NS}/pods/node-1-0"));
    assert!(
        w[0].body.get("gracePeriodSeconds").is_none(),
        "{:?}",
        w[0].body
    );
    assert!(
        calls
            .iter()
            .any(|c| c.line() == format!("GET {NS}/pods/node-1-0"))
    );
    assert_eq!(net.node_state(1), Some(NodeState::Running));

    // stop / start: scale to 0, wait for the pod to go; scale to 1, wait for it to be ready.
    net.stop(2).await.unwrap();
    assert_eq!(net.node_state(2), Some(NodeState::Stopped));
    net.start(2).await.unwrap();
    assert_eq!(net.node_state(2), Some(NodeState::Running));
    let w: Vec<Call> = take_calls(&cluster)
        .into_iter()
        .filter(|c| c.method != "GET")
        .collect();
    assert_eq!(
        w.iter().map(Call::line).collect::<Vec<_>>(),
        vec![
            format!("PATCH {APPS}/statefulsets/node-2/scale"),
            format!("PATCH {APPS}/statefulsets/node-2/scale"),
        ]
    );
    assert_eq!(w[0].body["spec"]["replicas"], 0);
    assert_eq!(w[1].body["spec"]["replicas"], 1);

    // kill: scale to 0 (so it is not replaced), then delete with no grace.
    net.kill(0).await.unwrap();
    let w: Vec<Call> = take_calls(&cluster)
        .into_iter()
        .filter(|c| c.method != "GET")
        .collect();
    assert_eq!(
        w.iter().map(Call::line).collect::<Vec<_>>(),
        vec![
            format!("PATCH {APPS}/statefulsets/node-0/scale"),
            format!("DELETE {NS}/pods/node-0-0"),
        ]
    );
    assert_eq!(w[1].body["gracePeriodSeconds"], 0);
    assert_eq!(net.node_state(0), Some(NodeState::Stopped));
    let e = net.kill(0).await.unwrap_err().to_string();
    assert!(e.contains("node-0 is Stopped: cannot kill"), "{e}");
    net.start(0).await.unwrap();
    take_calls(&cluster);

    // partition [[0,1],[2]]: one policy per node, applied server-side; heal deletes them.
    let id = net.partition(vec![vec![0, 1], vec![2]]).await.unwrap();
    let w = take_calls(&cluster);
    assert_eq!(
        w.iter().map(Call::line).collect::<Vec<_>>(),
        (0..3)
            .map(|i| format!("PATCH {NET}/networkpolicies/node-{i}-faults"))
            .collect::<Vec<_>>()
    );
    for c in &w {
        assert!(c.query.contains("fieldManager=nomos-script"), "{}", c.query);
        assert!(c.query.contains("force=true"), "{}", c.query);
        assert_eq!(c.body["spec"]["policyTypes"], json!(["Ingress"]));
    }
    let allowed = |c: &Call| {
        c.body["spec"]["ingress"][1]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
            .clone()
    };
    assert_eq!(allowed(&w[0]), json!(["0", "1"]));
    assert_eq!(allowed(&w[1]), json!(["0", "1"]));
    assert_eq!(allowed(&w[2]), json!(["2"]));
    // The API port stays open so the runner keeps observing partitioned nodes.
    assert_eq!(w[2].body["spec"]["ingress"][0]["ports"][0]["port"], 18080);
    let active = net.active_faults();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, id);
    assert_eq!(active[0].links.len(), 4); // 0<->2, 1<->2

    // A second fault stacks: isolating 0 too leaves node 1 with only itself.
    let id2 = net.isolate(0).await.unwrap();
    let w = take_calls(&cluster);
    assert_eq!(w.len(), 3);
    assert_eq!(allowed(&w[1]), json!(["1"]));
    net.revert_fault(id2).await.unwrap();
    let w = take_calls(&cluster);
    assert_eq!(allowed(&w[1]), json!(["0", "1"]));

    assert_eq!(net.heal().await.unwrap(), 1);
    let w = take_calls(&cluster);
    assert_eq!(
        w.iter().map(Call::line).collect::<Vec<_>>(),
        (0..3)
            .map(|i| format!("DELETE {NET}/networkpolicies/node-{i}-faults"))
            .collect::<Vec<_>>()
    );
    assert!(net.active_faults().is_empty());
    let log = net.fault_log();
    assert_eq!(log.len(), 4);
    assert!(log[3].reverted);

    // What Kubernetes cannot do is refused with the reason, before any request.
    let e = net.pause(1).await.unwrap_err().to_string();
    assert!(e.contains("cannot pause node-1"), "{e}");
    let e = net.cut(0, 1).await.unwrap_err().to_string();
    assert!(e.contains("cannot apply `cut 0->1`"), "{e}");
    let e = net
        .set_loss(engine::links::LinkSel::All, 0.5)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("NetworkPolicies only allow or deny"), "{e}");
    let e = net
        .apply_fault(Fault::Partition(vec![vec![0], vec![7]]), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("names node 7, but the testnet has 3 nodes"),
        "{e}"
    );
    assert!(take_calls(&cluster).is_empty());

    // logs(i) reads the pod log.
    let text = net.logs(1, 5).await.unwrap();
    assert!(text.contains("node-1-0: imported block 1"), "{text}");
    let calls = take_calls(&cluster);
    assert_eq!(calls[0].line(), format!("GET {NS}/pods/node-1-0/log"));
    assert!(calls[0].query.contains("tailLines=5"), "{}", calls[0].query);

    // Teardown: the namespace is deleted and awaited; a second teardown sends nothing.
    let summary = net.teardown(false).await.unwrap();
    assert!(!summary.kept);
    let calls = take_calls(&cluster);
    assert_eq!(
        calls.iter().map(Call::line).collect::<Vec<_>>(),
        vec![
            "DELETE /api/v1/namespaces/nomos-script-mock1".to_owned(),
            "GET /api/v1/namespaces/nomos-script-mock1".to_owned(),
        ]
    );
    assert_eq!(calls[0].body["propagationPolicy"], "Background");
    net.teardown(false).await.unwrap();
    assert!(take_calls(&cluster).is_empty());
    let e = net.restart(0).await.unwrap_err().to_string();
    assert!(e.contains("torn down"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_rollout_reports_pod_logs_and_deletes_the_namespace() {
    let (dep, cluster) = setup(Behaviour { crash: vec![1] }).await;
    let err = dep
        .deploy(&topology(), &opts("mock1"))
        .await
        .err()
        .expect("a crash-looping pod must fail the deploy");
    let msg = err.to_string();
    assert!(matches!(err, DeployError::NotReady { .. }), "{msg}");
    // The failing node, why, and its log; the other pods' logs too.
    assert!(
        msg.contains(
            "node-1 (rollout failed: container node is waiting: CrashLoopBackOff after 3 restarts, last exit code 2:"
        ),
        "{msg}"
    );
    assert!(msg.contains("last log lines of node-1-0: node-1-0: loading /node/config/config.yaml | error: invalid genesis: leader key mismatch"), "{msg}");
    assert!(
        msg.contains("node-0-0: node-0-0: listening on 0.0.0.0:19000"),
        "{msg}"
    );
    assert!(msg.contains("node-2-0:"), "{msg}");
    assert!(!msg.contains("node-0 (rollout"), "{msg}");
    // Failing fast: long before the 5 s rollout timeout.
    let calls = take_calls(&cluster);
    let lines: Vec<String> = calls.iter().map(Call::line).collect();
    for i in 0..3 {
        let get = format!("GET {NS}/pods/node-{i}-0/log");
        assert!(lines.contains(&get), "no {get}: {lines:?}");
    }
    // ...and the namespace is gone: deploy failures clean up too.
    let last_write = calls.iter().rev().find(|c| c.method != "GET").unwrap();
    assert_eq!(
        last_write.line(),
        "DELETE /api/v1/namespaces/nomos-script-mock1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_never_show_peers_fail_readiness_with_logs() {
    // Node APIs that answer with no peers: the rollout succeeds, the network readiness does not.
    let mut ports = Vec::new();
    for _ in 0..3 {
        ports.push(node_api(0).await);
    }
    let (dep, cluster) = setup(Behaviour::default()).await;
    cluster.lock().unwrap().api_ports = ports;
    let mut o = opts("mock1");
    o.ready_timeout = Duration::from_millis(600);
    let msg = dep
        .deploy(&topology(), &o)
        .await
        .err()
        .expect("no peers must fail readiness")
        .to_string();
    assert!(msg.contains("nodes not ready after 600ms"), "{msg}");
    assert!(msg.contains("node-0 (n_peers 0 < 2)"), "{msg}");
    assert!(
        msg.contains("last log lines of node-0-0: node-0-0: listening"),
        "{msg}"
    );
    let calls = take_calls(&cluster);
    assert_eq!(
        calls
            .iter()
            .rev()
            .find(|c| c.method != "GET")
            .unwrap()
            .line(),
        "DELETE /api/v1/namespaces/nomos-script-mock1"
    );
}

#[tokio::test]
async fn bad_settings_fail_before_any_request() {
    let (dep, cluster) = setup(Behaviour::default()).await;
    let dep = dep.with_pull_policy("sometimes");
    let msg = dep
        .deploy(&topology(), &opts("mock1"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("LOGOS_BLOCKCHAIN_TESTNET_IMAGE_PULL_POLICY = `sometimes`"),
        "{msg}"
    );
    let (dep, _) = setup(Behaviour::default()).await;
    let msg = dep
        .deploy(&topology(), &opts("Bad/Run"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("not a valid name"), "{msg}");
    assert!(cluster.lock().unwrap().calls.is_empty());
}

/// Collects run events (the teardown note with the kubectl hint).
#[derive(Default)]
struct Capture(Mutex<Vec<engine::report::RunEvent>>);

impl engine::report::Reporter for Capture {
    fn on_event(&self, event: &engine::report::RunEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

fn notes(c: &Capture) -> Vec<String> {
    c.0.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            engine::report::RunEvent::Note { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_node_joins_the_faults_in_force_and_preserve_keeps_the_namespace() {
    let (dep, cluster) = setup(Behaviour::default()).await;
    let dep = dep.preserve(true);
    let capture = Arc::new(Capture::default());
    let mut o = opts("mock1");
    o.events = Some(engine::report::EventSink::new(vec![capture.clone()]));
    let net = dep.deploy(&topology(), &o).await.unwrap();
    net.partition(vec![vec![0, 1], vec![2]]).await.unwrap();
    take_calls(&cluster);

    let i = net.add_node(joiner(&[0], 0)).await.unwrap();
    assert_eq!(i, 3);
    let w: Vec<Call> = take_calls(&cluster)
        .into_iter()
        .filter(|c| c.method != "GET")
        .collect();
    let mut want = vec![
        format!("POST {NS}/configmaps"),
        format!("POST {NS}/services"),
        format!("POST {APPS}/statefulsets"),
    ];
    // node-3 is in no group: the partition's extra group, cut from everyone.
    want.extend((0..4).map(|i| format!("PATCH {NET}/networkpolicies/node-{i}-faults")));
    assert_eq!(w.iter().map(Call::line).collect::<Vec<_>>(), want);
    let config = w[0].body["data"]["config.yaml"].as_str().unwrap();
    assert!(config.contains("- node-0:19000"), "{config}");
    let allowed = |c: &Call| {
        c.body["spec"]["ingress"][1]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
            .clone()
    };
    assert_eq!(allowed(&w[6]), json!(["3"]));
    assert_eq!(net.node_count(), 4);
    let e = add_node_refused(&*net, &[0], 5).await;
    assert!(e.contains("reserved 0 staked joiner slots"), "{e}");

    // K8S_RUNNER_PRESERVE: teardown deletes nothing and says how to look and clean up.
    net.teardown(false).await.unwrap();
    assert!(
        take_calls(&cluster).iter().all(|c| c.method == "GET"),
        "preserve must not delete"
    );
    let n = notes(&capture);
    assert!(
        n.iter().any(
            |m| m.contains("namespace nomos-script-mock1 kept (K8S_RUNNER_PRESERVE)")
                && m.contains("kubectl -n nomos-script-mock1 logs node-0-0")
                && m.contains("kubectl delete namespace nomos-script-mock1")
        ),
        "{n:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_namespace_is_kept_and_only_the_runs_objects_are_deleted() {
    let (dep, cluster) = setup(Behaviour::default()).await;
    let dep = dep.with_namespace("team-ns");
    let capture = Arc::new(Capture::default());
    let mut o = opts("mock2");
    o.events = Some(engine::report::EventSink::new(vec![capture.clone()]));
    let net = dep.deploy(&topology(), &o).await.unwrap();
    let calls = take_calls(&cluster);
    // The namespace exists: looked up, not created.
    assert_eq!(calls[0].line(), "GET /api/v1/namespaces/team-ns");
    assert!(!calls.iter().any(|c| c.line() == "POST /api/v1/namespaces"));
    assert_eq!(
        calls[1].line(),
        "POST /api/v1/namespaces/team-ns/configmaps"
    );
    assert_eq!(
        calls[1].body["metadata"]["labels"]["nomos-script.run-id"],
        "mock2"
    );

    net.teardown(false).await.unwrap();
    let calls = take_calls(&cluster);
    let lines: Vec<String> = calls.iter().map(Call::line).collect();
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("DELETE /api/v1/namespaces/team-ns ")
                || l == "DELETE /api/v1/namespaces/team-ns"),
        "{lines:?}"
    );
    let list = calls
        .iter()
        .find(|c| c.line() == "GET /apis/apps/v1/namespaces/team-ns/statefulsets")
        .expect("statefulsets listed");
    assert!(
        list.query
            .contains("labelSelector=nomos-script.run-id%3Dmock2"),
        "{}",
        list.query
    );
    for i in 0..3 {
        for (api, kind) in [
            ("/apis/apps/v1", "statefulsets"),
            ("/api/v1", "services"),
            ("/api/v1", "configmaps"),
        ] {
            let del = format!(
                "DELETE {api}/namespaces/team-ns/{kind}/node-{i}{}",
                if kind == "configmaps" { "-config" } else { "" }
            );
            assert!(lines.contains(&del), "no {del}: {lines:?}");
        }
    }
    assert!(cluster.lock().unwrap().objects.is_empty());
    let n = notes(&capture);
    assert!(
        n.iter()
            .any(|m| m.contains("objects of run mock2 deleted from namespace team-ns")),
        "{n:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_deletes_only_namespaces_of_dead_owners_on_this_host() {
    let (_, cluster) = setup(Behaviour::default()).await;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let ns = |name: &str, pid: u32, host: &str| {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
            "nomos-script.run-id": name, "nomos-script.owner-pid": pid.to_string(), "nomos-script.owner-host": host}}})
    };
    // A dead pid: a child that already exited.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let live_pid = std::os::unix::process::parent_id();
    cluster.lock().unwrap().namespaces = vec![
        ns("nomos-script-dead", dead_pid, &host),
        ns("nomos-script-live", live_pid, &host),
        ns("nomos-script-elsewhere", dead_pid, "another-host"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nomos-script-example",
               "labels": {"nomos-script.run-id": "example"}}}),
    ];
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    serve(handle, cluster.clone());
    let client = kube::Client::new(svc, "default");

    let r = engine::deploy::k8s::gc(Some(client.clone()), true)
        .await
        .unwrap();
    assert_eq!(r.namespaces, vec!["nomos-script-dead".to_owned()]);
    assert_eq!(r.skipped.len(), 3);
    let calls = take_calls(&cluster);
    assert!(
        calls.iter().all(|c| c.method == "GET"),
        "dry run deletes nothing"
    );
    assert!(
        calls[0].query.contains("labelSelector=nomos-script.run-id"),
        "{}",
        calls[0].query
    );

    let r = engine::deploy::k8s::gc(Some(client), false).await.unwrap();
    assert_eq!(r.namespaces, vec!["nomos-script-dead".to_owned()]);
    let writes: Vec<String> = take_calls(&cluster)
        .iter()
        .filter(|c| c.method != "GET")
        .map(Call::line)
        .collect();
    assert_eq!(
        writes,
        vec!["DELETE /api/v1/namespaces/nomos-script-dead".to_owned()]
    );
}
