//! Where a testnet can be reached, as values: [`Testnet::endpoints`](super::Testnet::endpoints)
//! returns them, consumers (the recorder's sampler, the Prometheus file_sd writer, the live
//! control API) read their fields, and only reporters render them, as the `TESTNET_ENDPOINTS`
//! lines their `Display` gives.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::metrics::{GRAFANA_URL_ENV, OTLP_INGEST_URL_ENV, QUERY_URL_ENV};

/// One `TESTNET_ENDPOINTS` entry: a node, or a monitoring URL of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Endpoint {
    /// A node's API (and testing surface), and where it runs.
    Node(NodeEndpoint),
    /// A Grafana for humans (`LOGOS_BLOCKCHAIN_GRAFANA_URL=url`).
    Grafana { url: String },
    /// The Prometheus queried by metric expectations (`LOGOS_BLOCKCHAIN_METRICS_QUERY_URL=url`).
    MetricsQuery { url: String },
    /// Where nodes push OTLP metrics (`LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL=url`).
    OtlpIngest { url: String },
}

/// A node's URLs and where it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEndpoint {
    /// The node's index.
    pub node: usize,
    /// Base URL of its API (`http://host:port`).
    pub api: String,
    /// Base URL of its testing surface, where it has one (the reference node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testing: Option<String>,
    /// Where it runs.
    pub host: NodeHost,
}

/// Where a node runs, as each backend names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeHost {
    /// A node nomos-script did not start: only its URLs are known.
    Attached,
    /// A local process: its peer address and log directory.
    Process { p2p: SocketAddr, logs: PathBuf },
    /// A compose container: its name, its address on the testnet's network (`None` until
    /// known) and its peer port.
    Container {
        container: String,
        ip: Option<IpAddr>,
        p2p_port: u16,
    },
    /// A Kubernetes pod: namespace, pod, peer address (`service:port`) and how to read its logs.
    Pod {
        namespace: String,
        pod: String,
        p2p: String,
        logs: String,
    },
}

impl Endpoint {
    /// The node this endpoint is, if it is one.
    pub fn as_node(&self) -> Option<&NodeEndpoint> {
        match self {
            Endpoint::Node(n) => Some(n),
            _ => None,
        }
    }
}

impl NodeEndpoint {
    /// Its API base URL without a trailing `/`.
    pub fn api_base(&self) -> &str {
        self.api.trim_end_matches('/')
    }

    /// Its testing surface's base URL without a trailing `/`, where it has one.
    pub fn testing_base(&self) -> Option<&str> {
        self.testing.as_deref().map(|t| t.trim_end_matches('/'))
    }

    /// Where its Prometheus metrics are: its testing surface where it has one (the reference
    /// node), else its API.
    pub fn metrics_base(&self) -> &str {
        self.testing_base().unwrap_or_else(|| self.api_base())
    }
}

/// The nodes among `endpoints`.
pub fn nodes(endpoints: &[Endpoint]) -> impl Iterator<Item = &NodeEndpoint> {
    endpoints.iter().filter_map(Endpoint::as_node)
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(n) => n.fmt(f),
            Endpoint::Grafana { url } => write!(f, "{GRAFANA_URL_ENV}={url}"),
            Endpoint::MetricsQuery { url } => write!(f, "{QUERY_URL_ENV}={url}"),
            Endpoint::OtlpIngest { url } => write!(f, "{OTLP_INGEST_URL_ENV}={url}"),
        }
    }
}

impl fmt::Display for NodeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node-{} api {}", self.node, self.api)?;
        if let Some(t) = &self.testing {
            write!(f, " testing {t}")?;
        }
        match &self.host {
            NodeHost::Attached => Ok(()),
            NodeHost::Process { p2p, logs } => write!(f, " p2p {p2p} logs {}", logs.display()),
            NodeHost::Container {
                container,
                ip,
                p2p_port,
            } => {
                let ip = ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
                write!(f, " container {container} ip {ip} p2p {ip}:{p2p_port}")
            }
            NodeHost::Pod {
                namespace,
                pod,
                p2p,
                logs,
            } => write!(f, " namespace {namespace} pod {pod} p2p {p2p} logs: {logs}"),
        }
    }
}

/// For `#[serde(deserialize_with)]` on a stored or sent list of endpoints: the endpoints, with
/// the text lines an older nomos-script kept there left out (they were only ever printed).
pub fn endpoints_or_old_lines<'de, D>(d: D) -> Result<Vec<Endpoint>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Typed(Endpoint),
        Line(#[allow(dead_code)] String),
    }
    Ok(Vec::<Stored>::deserialize(d)?
        .into_iter()
        .filter_map(|s| match s {
            Stored::Typed(e) => Some(e),
            Stored::Line(_) => None,
        })
        .collect())
}

impl From<NodeEndpoint> for Endpoint {
    fn from(n: NodeEndpoint) -> Self {
        Endpoint::Node(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: NodeHost, testing: Option<&str>) -> Endpoint {
        Endpoint::Node(NodeEndpoint {
            node: 1,
            api: "http://127.0.0.1:4001".into(),
            testing: testing.map(Into::into),
            host,
        })
    }

    /// Every kind renders today's `TESTNET_ENDPOINTS` line, byte for byte, and survives JSON.
    #[test]
    fn each_endpoint_renders_its_line_and_round_trips() {
        let cases = [
            (
                node(NodeHost::Attached, None),
                "node-1 api http://127.0.0.1:4001",
            ),
            (
                node(NodeHost::Attached, Some("http://127.0.0.1:5001")),
                "node-1 api http://127.0.0.1:4001 testing http://127.0.0.1:5001",
            ),
            (
                node(
                    NodeHost::Process {
                        p2p: "127.0.0.1:3001".parse().unwrap(),
                        logs: "/tmp/r/node-1/logs".into(),
                    },
                    Some("http://127.0.0.1:5001"),
                ),
                "node-1 api http://127.0.0.1:4001 testing http://127.0.0.1:5001 p2p 127.0.0.1:3001 logs /tmp/r/node-1/logs",
            ),
            (
                node(
                    NodeHost::Container {
                        container: "nomos-script-r-node-1".into(),
                        ip: Some("172.18.0.3".parse().unwrap()),
                        p2p_port: 19000,
                    },
                    None,
                ),
                "node-1 api http://127.0.0.1:4001 container nomos-script-r-node-1 ip 172.18.0.3 p2p 172.18.0.3:19000",
            ),
            (
                node(
                    NodeHost::Container {
                        container: "c".into(),
                        ip: None,
                        p2p_port: 19000,
                    },
                    None,
                ),
                "node-1 api http://127.0.0.1:4001 container c ip - p2p -:19000",
            ),
            (
                node(
                    NodeHost::Pod {
                        namespace: "ns".into(),
                        pod: "node-1-0".into(),
                        p2p: "node-1:19000".into(),
                        logs: "kubectl -n ns logs node-1-0".into(),
                    },
                    None,
                ),
                "node-1 api http://127.0.0.1:4001 namespace ns pod node-1-0 p2p node-1:19000 logs: kubectl -n ns logs node-1-0",
            ),
            (
                Endpoint::Grafana {
                    url: "http://g:3000".into(),
                },
                "LOGOS_BLOCKCHAIN_GRAFANA_URL=http://g:3000",
            ),
            (
                Endpoint::MetricsQuery {
                    url: "http://p:9090".into(),
                },
                "LOGOS_BLOCKCHAIN_METRICS_QUERY_URL=http://p:9090",
            ),
            (
                Endpoint::OtlpIngest {
                    url: "http://o:4318/v1/metrics".into(),
                },
                "LOGOS_BLOCKCHAIN_METRICS_OTLP_INGEST_URL=http://o:4318/v1/metrics",
            ),
        ];
        for (e, line) in cases {
            assert_eq!(e.to_string(), line);
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(
                serde_json::from_str::<Endpoint>(&json).unwrap(),
                e,
                "{json}"
            );
        }
    }

    #[test]
    fn the_json_names_its_fields() {
        let e = node(
            NodeHost::Process {
                p2p: "127.0.0.1:3001".parse().unwrap(),
                logs: "/l".into(),
            },
            None,
        );
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({
                "kind": "node", "node": 1, "api": "http://127.0.0.1:4001",
                "host": {"kind": "process", "p2p": "127.0.0.1:3001", "logs": "/l"},
            })
        );
    }

    #[test]
    fn old_text_lines_are_left_out_when_read_back() {
        #[derive(Deserialize)]
        struct Held {
            #[serde(deserialize_with = "endpoints_or_old_lines")]
            endpoints: Vec<Endpoint>,
        }
        let e = Endpoint::Grafana {
            url: "http://g".into(),
        };
        let json = serde_json::json!({"endpoints": ["node-0 api http://a:1", e]});
        let held: Held = serde_json::from_value(json).unwrap();
        assert_eq!(held.endpoints, [e]);
    }

    #[test]
    fn metrics_are_on_the_testing_surface_where_there_is_one() {
        let n = |testing: Option<&str>| NodeEndpoint {
            node: 0,
            api: "http://a:1/".into(),
            testing: testing.map(Into::into),
            host: NodeHost::Attached,
        };
        assert_eq!(n(None).api_base(), "http://a:1");
        assert_eq!(n(None).metrics_base(), "http://a:1");
        assert_eq!(n(Some("http://a:2/")).metrics_base(), "http://a:2");
        let all = [
            Endpoint::Grafana {
                url: "http://g".into(),
            },
            n(None).into(),
        ];
        assert_eq!(nodes(&all).map(|n| n.node).collect::<Vec<_>>(), [0]);
    }
}
