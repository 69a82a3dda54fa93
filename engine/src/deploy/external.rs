//! Testnets nomos-script did not deploy: [`ExternalDeployer`] "deploys" by checking that every
//! node API it was given answers `/cryptarchia/info`, and hands back an [`ExternalTestnet`] over
//! those nodes. What can be read from the nodes is (node count, slot duration, heights);
//! node control and network faults are refused (the nodes are someone else's), and teardown
//! leaves the nodes running.
//!
//! The endpoints come from a file ([`read_endpoints`]): one node API URL a line, or the
//! `TESTNET_ENDPOINTS` block `nomos-script up` prints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::{
    AddNodeSpec, ControlError, ControlFuture, DeployError, DeployOptions, Deployer, FaultKind,
    NetworkFaults, NodeControl, NodeLogs, Teardown, TeardownSummary, Testnet,
};
use crate::client::{NodeClient, NodeClients};
use crate::links::{ActiveFault, Fault, FaultId, FaultRecord, LinkSel};
use crate::report::RunEvent;
use crate::topology::{Topology, TopologyBuilder};

/// The deployer's name in messages and reports.
pub const NAME: &str = "external";

/// How long `deploy` waits for every endpoint to answer (at most; the options' ready timeout
/// when shorter).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(15);

/// Slot duration assumed when the slots did not advance while measuring.
pub const FALLBACK_SLOT: Duration = Duration::from_secs(1);

/// One node of an external testnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalEndpoint {
    /// Base URL of the node API (`http://host:port`).
    pub api: String,
    /// Base URL of its testing surface, when the endpoints name one.
    pub testing: Option<String>,
}

/// A bad line of an endpoints text: its number (from 1), the line and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub text: String,
    pub why: String,
}

fn is_url(word: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        word.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

/// Lines of `up`'s output around the `TESTNET_ENDPOINTS` block, and the block's `VAR=url`
/// monitoring lines: not nodes, skipped.
fn is_skipped(line: &str) -> bool {
    if line == "TESTNET_ENDPOINTS"
        || line.starts_with("testnet `")
        || line.starts_with("attach: ")
        || line.starts_with("ready: control ")
    {
        return true;
    }
    line.split_once('=').is_some_and(|(var, _)| {
        !var.is_empty()
            && var
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// From a `node-<i> ... <word> <url> ...` line a user handed in (the `TESTNET_ENDPOINTS`
/// block `up` printed): the node's index and the URL after `word`, without a trailing `/`.
fn url_after(line: &str, word: &str) -> Option<(usize, String)> {
    let mut words = line.split_whitespace();
    let node = words.next()?.strip_prefix("node-")?.parse().ok()?;
    let mut words = words.skip_while(|w| *w != word);
    words.next()?;
    let url = words.next()?.trim_end_matches('/');
    url.starts_with("http").then(|| (node, url.to_owned()))
}

/// Parses an endpoints text: one node API URL a line (`http://host:port`), or the
/// `TESTNET_ENDPOINTS` block `nomos-script up` prints (`node-<i> api <url> [testing <url>] ...`,
/// with its header and footer lines). Blank lines and `#` comments are ignored. Nodes are in
/// the order of the lines.
pub fn parse_endpoints(text: &str) -> Result<Vec<ExternalEndpoint>, BadLine> {
    let mut out: Vec<ExternalEndpoint> = Vec::new();
    let mut indices: Vec<usize> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let bad = |why: &str| BadLine {
            line: n + 1,
            text: line.to_owned(),
            why: why.to_owned(),
        };
        if line.is_empty() || line.starts_with('#') || is_skipped(line) {
            continue;
        }
        let endpoint = if line.starts_with("node-") {
            let Some((index, api)) = url_after(line, "api") else {
                return Err(bad(
                    "a node line needs `node-<i> api http://host:port` (as `nomos-script up` prints)",
                ));
            };
            if !is_url(&api) {
                return Err(bad("the api URL has no host"));
            }
            if indices.contains(&index) {
                return Err(bad(&format!("node-{index} is listed twice")));
            }
            indices.push(index);
            ExternalEndpoint {
                api,
                testing: url_after(line, "testing").map(|(_, t)| t),
            }
        } else if line.split_whitespace().count() == 1 && is_url(line) {
            ExternalEndpoint {
                api: line.trim_end_matches('/').to_owned(),
                testing: None,
            }
        } else {
            return Err(bad(
                "not a node API URL (http://host:port) nor a TESTNET_ENDPOINTS line (node-<i> api http://host:port ...)",
            ));
        };
        if out.iter().any(|e| e.api == endpoint.api) {
            return Err(bad(&format!("{} is listed twice", endpoint.api)));
        }
        out.push(endpoint);
    }
    Ok(out)
}

/// Reads and parses an endpoints file; errors name the file and, for a bad line,
/// `file:line` and the line.
pub fn read_endpoints(path: &Path) -> Result<Vec<ExternalEndpoint>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read endpoints file {}: {e}", path.display()))?;
    let endpoints = parse_endpoints(&text)
        .map_err(|b| format!("{}:{}: {}: `{}`", path.display(), b.line, b.why, b.text))?;
    if endpoints.is_empty() {
        return Err(format!(
            "{}: no node API URL in the file (one http://host:port a line, or a TESTNET_ENDPOINTS block)",
            path.display()
        ));
    }
    Ok(endpoints)
}

/// A [`Deployer`] over nodes that already run: `deploy` checks they answer and reads the
/// topology from them. Capabilities: none.
#[derive(Debug, Clone)]
pub struct ExternalDeployer {
    endpoints: Vec<ExternalEndpoint>,
    source: Option<PathBuf>,
    slot_duration: Option<Duration>,
    active_slot_coeff: f64,
    security_param: u64,
}

impl ExternalDeployer {
    /// A deployer over these nodes (f = 0.8, k = 10, slot duration measured).
    pub fn new(endpoints: Vec<ExternalEndpoint>) -> Self {
        let defaults = crate::topology::ConsensusSettings::default();
        Self {
            endpoints,
            source: None,
            slot_duration: None,
            active_slot_coeff: defaults.active_slot_coeff,
            security_param: defaults.security_param,
        }
    }

    /// A deployer over the nodes an endpoints file lists ([`read_endpoints`]).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let mut d = Self::new(read_endpoints(path)?);
        d.source = Some(path.to_path_buf());
        Ok(d)
    }

    /// Consensus parameters the nodes run with, where the caller knows them: the slot duration
    /// (None: measured from the nodes), the active slot coefficient and the security parameter.
    pub fn with_params(
        mut self,
        slot_duration: Option<Duration>,
        active_slot_coeff: f64,
        security_param: u64,
    ) -> Self {
        self.slot_duration = slot_duration;
        self.active_slot_coeff = active_slot_coeff;
        self.security_param = security_param;
        self
    }

    /// The nodes, in order.
    pub fn endpoints(&self) -> &[ExternalEndpoint] {
        &self.endpoints
    }

    /// The file the endpoints came from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    fn clients(&self) -> NodeClients {
        NodeClients(
            self.endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| NodeClient::new(i, &e.api).with_testing_url(e.testing.as_deref()))
                .collect(),
        )
    }

    /// Connects to the nodes: every one must answer `/cryptarchia/info` within the deadline;
    /// then the slot duration is measured (unless given) and the topology built.
    pub async fn connect(&self, opts: &DeployOptions) -> Result<ExternalTestnet, DeployError> {
        super::check_options(self, opts)?;
        if self.endpoints.is_empty() {
            return Err(DeployError::io(
                "the external deployer has no node endpoints",
            ));
        }
        let clients = self.clients();
        let deadline = opts.ready_timeout.min(PROBE_DEADLINE);
        probe(&clients, deadline).await?;
        let slot_duration = match self.slot_duration {
            Some(d) => d,
            None => measure_slot(&clients.0[0]).await,
        };
        let topology = TopologyBuilder::new()
            .nodes(self.endpoints.len())
            .wallets(0)
            .slot_duration(slot_duration)
            .active_slot_coeff(self.active_slot_coeff)
            .security_param(self.security_param)
            .build()
            .map_err(|e| DeployError::io_caused("external testnet topology", e))?;
        let run_id = format!(
            "{NAME}-{}",
            opts.run_id.clone().unwrap_or_else(super::new_run_id)
        );
        let net = ExternalTestnet {
            run_id,
            clients,
            endpoints: self.endpoints.clone(),
            topology,
        };
        if let Some(ev) = &opts.events {
            ev.emit(RunEvent::NodesStarted {
                run_dir: None,
                endpoints: net.endpoints(),
            });
        }
        Ok(net)
    }
}

impl Deployer for ExternalDeployer {
    fn name(&self) -> &str {
        NAME
    }

    fn supports(&self) -> Vec<FaultKind> {
        Vec::new()
    }

    /// The topology asked for is ignored: the nodes are what they are.
    fn deploy<'a>(
        &'a self,
        topology: &'a Topology,
        opts: &'a DeployOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Testnet>, DeployError>> {
        let _ = topology;
        Box::pin(async move { Ok(Arc::new(self.connect(opts).await?) as Arc<dyn Testnet>) })
    }
}

/// Every node answers `/cryptarchia/info` before `deadline` passes (retried until then), or the
/// error names those that did not and why.
async fn probe(clients: &NodeClients, deadline: Duration) -> Result<(), DeployError> {
    let until = Instant::now() + deadline;
    let checks = clients.iter().map(|c| async move {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let last = match tokio::time::timeout(left, c.consensus_info()).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => e.kind.to_string(),
                Err(_) => format!("no answer within {}", humantime::format_duration(deadline)),
            };
            if Instant::now() + Duration::from_millis(250) >= until {
                return Err(format!(
                    "{} {}/cryptarchia/info: {last}",
                    c.name(),
                    c.base_url()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let failed: Vec<String> = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(DeployError::io(format!(
        "external testnet unreachable after {}: {}",
        humantime::format_duration(deadline),
        failed.join("; ")
    )))
}

/// Rounds to the nearest 100 ms (at least 100 ms).
fn round_slot(d: Duration) -> Duration {
    let tenths = (d.as_secs_f64() * 10.0).round().max(1.0);
    Duration::from_millis(tenths as u64 * 100)
}

/// The node's slot duration from wall time: the slot is sampled until it changes (t1), then for
/// about 1.5 s more until it changes again (t2); (t2 - t1) / slots advanced, rounded to 100 ms.
/// Slots that do not advance (or a node that stops answering) give [`FALLBACK_SLOT`] and a
/// warning.
async fn measure_slot(client: &NodeClient) -> Duration {
    const POLL: Duration = Duration::from_millis(25);
    const WINDOW: Duration = Duration::from_millis(1500);
    const GIVE_UP: Duration = Duration::from_secs(5);
    let started = Instant::now();
    let slot = || async { client.consensus_info().await.ok().map(|i| i.slot) };
    let mut first: Option<(u64, Instant)> = None;
    let mut last: Option<(u64, Instant)> = None;
    let mut prev = slot().await;
    while started.elapsed() < GIVE_UP {
        tokio::time::sleep(POLL).await;
        let now_slot = slot().await;
        let now = Instant::now();
        if let (Some(p), Some(s)) = (prev, now_slot)
            && s > p
        {
            match first {
                None => first = Some((s, now)),
                Some((_, t1)) => {
                    last = Some((s, now));
                    if now - t1 >= WINDOW {
                        break;
                    }
                }
            }
        }
        if now_slot.is_some() {
            prev = now_slot;
        }
    }
    match (first, last) {
        (Some((s1, t1)), Some((s2, t2))) if s2 > s1 => {
            let d = round_slot((t2 - t1) / (s2 - s1) as u32);
            tracing::info!(
                "external testnet: slot duration measured on {}: {}",
                client.name(),
                humantime::format_duration(d)
            );
            d
        }
        _ => {
            tracing::warn!(
                "external testnet: the slots of {} did not advance within {}; assuming {} slots",
                client.name(),
                humantime::format_duration(GIVE_UP),
                humantime::format_duration(FALLBACK_SLOT)
            );
            FALLBACK_SLOT
        }
    }
}

/// A testnet nomos-script did not deploy: node queries work, control does not.
pub struct ExternalTestnet {
    run_id: String,
    clients: NodeClients,
    endpoints: Vec<ExternalEndpoint>,
    topology: Topology,
}

impl std::fmt::Debug for ExternalTestnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalTestnet")
            .field("run_id", &self.run_id)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// The refusal of every node-control and fault call.
fn refused(what: &str) -> ControlError {
    ControlError::failed(format!(
        "the {NAME} deployer cannot {what}: this testnet was not deployed by nomos-script, so it cannot be controlled (deploy with local, compose or k8s for node control and network faults)"
    ))
}

fn refused_node<T: Send + 'static>(what: &'static str, i: usize) -> ControlFuture<'static, T> {
    Box::pin(std::future::ready(Err(refused(&format!(
        "{what} node-{i}"
    )))))
}

fn refused_call<T: Send + 'static>(what: &'static str) -> ControlFuture<'static, T> {
    Box::pin(std::future::ready(Err(refused(what))))
}

impl Testnet for ExternalTestnet {
    fn deployer_name(&self) -> &str {
        NAME
    }

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn node_count(&self) -> usize {
        self.clients.len()
    }

    fn clients(&self) -> NodeClients {
        self.clients.clone()
    }

    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn run_dir(&self) -> Option<PathBuf> {
        None
    }

    fn endpoints(&self) -> Vec<super::Endpoint> {
        self.endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                super::NodeEndpoint {
                    node: i,
                    api: e.api.clone(),
                    testing: e.testing.clone(),
                    host: super::NodeHost::Attached,
                }
                .into()
            })
            .collect()
    }

    fn supports(&self) -> Vec<FaultKind> {
        Vec::new()
    }

    fn wait_ready(&self, deadline: Duration) -> BoxFuture<'_, Result<(), DeployError>> {
        Box::pin(probe(&self.clients, deadline))
    }
}

impl NodeControl for ExternalTestnet {
    fn start(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        refused_node("start", i)
    }

    fn stop(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        refused_node("stop", i)
    }

    fn restart(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        refused_node("restart", i)
    }

    fn kill(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        refused_node("kill", i)
    }

    fn pause(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        refused_node("pause", i)
    }

    fn resume(&self, i: usize) -> BoxFuture<'_, Result<(), ControlError>> {
        refused_node("resume", i)
    }

    fn add_node(&self, spec: AddNodeSpec) -> BoxFuture<'_, Result<usize, ControlError>> {
        let _ = spec;
        refused_call("add a node")
    }
}

impl NetworkFaults for ExternalTestnet {
    fn apply_fault(&self, fault: Fault, note: Option<String>) -> ControlFuture<'_, FaultId> {
        let _ = (fault, note);
        refused_call("apply network faults")
    }

    fn revert_fault(&self, id: FaultId) -> ControlFuture<'_, ()> {
        let _ = id;
        refused_call("revert network faults")
    }

    fn clear_links(&self, links: LinkSel) -> ControlFuture<'_, usize> {
        let _ = links;
        refused_call("clear network faults")
    }

    fn heal(&self) -> ControlFuture<'_, usize> {
        refused_call("heal network faults")
    }

    fn active_faults(&self) -> Vec<ActiveFault> {
        Vec::new()
    }

    fn fault_log(&self) -> Vec<FaultRecord> {
        Vec::new()
    }
}

impl NodeLogs for ExternalTestnet {
    fn logs(&self, i: usize, lines: usize) -> BoxFuture<'_, Result<String, ControlError>> {
        let _ = lines;
        Box::pin(async move {
            Err(ControlError::failed(format!(
                "the {NAME} deployer has no logs of node-{i}: this testnet was not deployed by nomos-script"
            )))
        })
    }
}

impl Teardown for ExternalTestnet {
    /// Nothing is torn down: the nodes are not ours and keep running.
    fn teardown(&self, keep: bool) -> BoxFuture<'_, Result<TeardownSummary, DeployError>> {
        let _ = keep;
        Box::pin(async move {
            tracing::info!(
                "external testnet {}: nothing torn down, its {} nodes keep running",
                self.run_id,
                self.clients.len()
            );
            Ok(TeardownSummary {
                killed: 0,
                run_dir: None,
                kept: false,
                took: Duration::ZERO,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(e: &[ExternalEndpoint]) -> Vec<&str> {
        e.iter().map(|e| e.api.as_str()).collect()
    }

    #[test]
    fn plain_urls_with_comments_and_blank_lines() {
        let e = parse_endpoints(
            "# my testnet\n\nhttp://127.0.0.1:8080\n  https://node.example:443/  \n# end\n",
        )
        .unwrap();
        assert_eq!(
            api(&e),
            ["http://127.0.0.1:8080", "https://node.example:443"]
        );
        assert!(e.iter().all(|e| e.testing.is_none()));
    }

    /// What `up` prints (every backend's endpoints, rendered) reads back as the nodes' URLs:
    /// the one place `TESTNET_ENDPOINTS` text is parsed is a file a user hands in.
    #[test]
    fn every_backends_printed_endpoints_read_back() {
        use crate::deploy::{Endpoint, NodeEndpoint, NodeHost};
        let hosts = [
            NodeHost::Attached,
            NodeHost::Process {
                p2p: "127.0.0.1:3000".parse().unwrap(),
                logs: "/tmp/r/node-1/logs".into(),
            },
            NodeHost::Container {
                container: "c-1".into(),
                ip: None,
                p2p_port: 19000,
            },
            NodeHost::Pod {
                namespace: "ns".into(),
                pod: "node-2-0".into(),
                p2p: "node-2:19000".into(),
                logs: "kubectl -n ns logs node-2-0".into(),
            },
        ];
        let mut printed: Vec<Endpoint> = hosts
            .into_iter()
            .enumerate()
            .map(|(i, host)| {
                NodeEndpoint {
                    node: i,
                    api: format!("http://127.0.0.1:{}", 4000 + i),
                    testing: (i % 2 == 0).then(|| format!("http://127.0.0.1:{}", 5000 + i)),
                    host,
                }
                .into()
            })
            .collect();
        printed.push(Endpoint::Grafana {
            url: "http://grafana:3000".into(),
        });
        let text: String = printed.iter().map(|e| format!("  {e}\n")).collect();
        let read = parse_endpoints(&format!("TESTNET_ENDPOINTS\n{text}")).unwrap();
        let want: Vec<ExternalEndpoint> = crate::deploy::nodes(&printed)
            .map(|n| ExternalEndpoint {
                api: n.api.clone(),
                testing: n.testing.clone(),
            })
            .collect();
        assert_eq!(read, want);
        // and an attached testnet prints them again as it read them
        let net_lines: Vec<String> = read
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Endpoint::from(NodeEndpoint {
                    node: i,
                    api: e.api.clone(),
                    testing: e.testing.clone(),
                    host: NodeHost::Attached,
                })
                .to_string()
            })
            .collect();
        assert_eq!(
            net_lines[0],
            "node-0 api http://127.0.0.1:4000 testing http://127.0.0.1:5000"
        );
        assert_eq!(net_lines[1], "node-1 api http://127.0.0.1:4001");
    }

    #[test]
    fn the_block_up_prints_with_its_header_and_footer() {
        let text = "testnet `alpha` up: local deployer, 2 nodes, supervisor pid 42, control http://127.0.0.1:9\n\
                    TESTNET_ENDPOINTS\n\
                    node-0 api http://127.0.0.1:1000 testing http://127.0.0.1:1001 p2p /ip4/127.0.0.1/udp/3 logs /tmp/x/node-0\n\
                    node-1 api http://127.0.0.1:2000 p2p /ip4/127.0.0.1/udp/4 logs /tmp/x/node-1\n\
                    LOGOS_BLOCKCHAIN_GRAFANA_URL=http://grafana:3000\n\
                    attach: nomos-script repl --attach alpha    tear down: nomos-script down alpha\n";
        let e = parse_endpoints(text).unwrap();
        assert_eq!(api(&e), ["http://127.0.0.1:1000", "http://127.0.0.1:2000"]);
        assert_eq!(e[0].testing.as_deref(), Some("http://127.0.0.1:1001"));
        assert_eq!(e[1].testing, None);
        // the run's indented block too
        let e = parse_endpoints("TESTNET_ENDPOINTS\n  node-0 api http://a:1\n").unwrap();
        assert_eq!(api(&e), ["http://a:1"]);
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let b = parse_endpoints("http://a:1\n\nlocalhost:8080\n").unwrap_err();
        assert_eq!(b.line, 3);
        assert_eq!(b.text, "localhost:8080");
        assert!(b.why.contains("not a node API URL"), "{}", b.why);
        let b = parse_endpoints("node-0 p2p /ip4/1.2.3.4\n").unwrap_err();
        assert_eq!(b.line, 1);
        assert!(b.why.contains("node-<i> api"), "{}", b.why);
        let b = parse_endpoints("http://a:1 http://b:2\n").unwrap_err();
        assert_eq!(b.line, 1);
        let b = parse_endpoints("http://\n").unwrap_err();
        assert_eq!(b.line, 1);
        let b = parse_endpoints("http://a:1\nhttp://a:1/\n").unwrap_err();
        assert_eq!(b.line, 2);
        assert!(b.why.contains("twice"), "{}", b.why);
        let b = parse_endpoints("node-0 api http://a:1\nnode-0 api http://b:1\n").unwrap_err();
        assert_eq!(b.line, 2);
    }

    #[test]
    fn file_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("eps.txt");
        std::fs::write(&p, "http://a:1\nnot a url\n").unwrap();
        let e = read_endpoints(&p).unwrap_err();
        assert!(
            e.starts_with(&format!("{}:2: ", p.display())) && e.contains("`not a url`"),
            "{e}"
        );
        std::fs::write(&p, "# nothing\n").unwrap();
        let e = read_endpoints(&p).unwrap_err();
        assert!(e.contains("no node API URL"), "{e}");
        let e = read_endpoints(&dir.path().join("missing")).unwrap_err();
        assert!(e.contains("cannot read endpoints file"), "{e}");
    }

    #[test]
    fn slot_rounding() {
        assert_eq!(
            round_slot(Duration::from_millis(1040)),
            Duration::from_secs(1)
        );
        assert_eq!(
            round_slot(Duration::from_millis(96)),
            Duration::from_millis(100)
        );
        assert_eq!(
            round_slot(Duration::from_millis(20)),
            Duration::from_millis(100)
        );
        assert_eq!(
            round_slot(Duration::from_millis(2260)),
            Duration::from_millis(2300)
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_named_within_the_deadline() {
        // a port nothing listens on: bound then dropped
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let d = ExternalDeployer::new(vec![ExternalEndpoint {
            api: url.clone(),
            testing: None,
        }]);
        let opts = DeployOptions {
            ready_timeout: Duration::from_secs(1),
            ..DeployOptions::default()
        };
        let t = Instant::now();
        let e = d.connect(&opts).await.unwrap_err().to_string();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(e.contains(&url) && e.contains("node-0"), "{e}");
        // and a plan needing node control is refused before any probe
        let opts = DeployOptions {
            required: vec![crate::deploy::Capability::NodeControl],
            ..opts
        };
        let e = d.connect(&opts).await.unwrap_err().to_string();
        assert!(e.contains("external") && e.contains("node control"), "{e}");
    }
}
