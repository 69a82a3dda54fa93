//! The real Logos Blockchain node as a node kind: `logos-blockchain-node CONFIG
//! --deployment DEPLOYMENT`, configs from a generator (the node's keys, notes and genesis
//! transaction need its own crypto), p2p and blend over QUIC/UDP, HTTP API and testing
//! HTTP over TCP, its API dialect detected at readiness. See `docs/real-node.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::generator::{Generator, describe};
use super::{
    Dialect, KindCapabilities, LinkTransport, NodeKind, NodeKindError, NodePlan,
    overrides_on_generated,
};
use crate::topology::Topology;

/// The files a generator writes for the real node: its config, then its deployment file.
pub const FILES: [&str; 2] = ["config.yaml", "deployment.yaml"];
/// Where containers find the circuits (the reference framework's convention).
pub const CIRCUITS_IN_CONTAINER: &str = "/opt/circuits";

/// The real node.
#[derive(Debug, Clone)]
pub struct LogosNode {
    pub binary: PathBuf,
    pub generator: Generator,
    /// The proving circuits' directory (`LOGOS_BLOCKCHAIN_CIRCUITS`), if any.
    pub circuits: Option<PathBuf>,
    /// `POL_PROOF_DEV_MODE=true`: dummy leadership proofs (January 2026 builds).
    pub dev_mode: bool,
}

impl LogosNode {
    /// `/ip4/H/udp/P/quic-v1` (or `/ip6/...`): a QUIC peer address.
    pub fn multiaddr(addr: SocketAddr) -> String {
        let ip = match addr.ip() {
            std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
            std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
        };
        format!("{ip}/udp/{}/quic-v1", addr.port())
    }

    /// From `LOGOS_BLOCKCHAIN_NODE_BIN`, `LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR`,
    /// `LOGOS_BLOCKCHAIN_CIRCUITS` and `POL_PROOF_DEV_MODE` (default true).
    pub fn from_env() -> Result<Self, NodeKindError> {
        let binary = std::env::var_os("LOGOS_BLOCKCHAIN_NODE_BIN").map(PathBuf::from).ok_or_else(|| {
            NodeKindError::Setup(
                "the logos node kind needs LOGOS_BLOCKCHAIN_NODE_BIN: the path of a logos-blockchain-node binary".to_owned(),
            )
        })?;
        let generator = Generator::from_env().ok_or_else(|| {
            NodeKindError::Setup(
                "the logos node kind needs LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR: a command that writes each node's config.yaml and deployment.yaml from the testnet description nomos-script gives it (see docs/real-node.md)".to_owned(),
            )
        })?;
        Ok(Self {
            binary,
            generator,
            circuits: std::env::var_os("LOGOS_BLOCKCHAIN_CIRCUITS").map(PathBuf::from),
            dev_mode: std::env::var("POL_PROOF_DEV_MODE").map_or(true, |v| v != "false"),
        })
    }
}

impl NodeKind for LogosNode {
    fn name(&self) -> String {
        "logos".to_owned()
    }

    /// Node-signed transfers only (a client cannot make the zk signatures); no Prometheus
    /// endpoint (the node pushes OTLP); QUIC over UDP. Link faults are refused: the node
    /// finds peers by itself (kademlia, identify) and dials their advertised addresses,
    /// so a relay partition could be bypassed without anything showing it.
    fn capabilities(&self) -> KindCapabilities {
        KindCapabilities {
            client_signed_txs: false,
            wallet_transfers: true,
            runtime_connect: false,
            metrics_endpoint: false,
            link_transport: LinkTransport::Udp,
            link_faults: false,
            byzantine: false,
            testing_switches: false,
        }
    }

    fn dialect(&self, _topology: &Topology) -> Option<Dialect> {
        None
    }

    fn blend_port(&self) -> bool {
        true
    }

    /// Ready when Online as well: a real node reports `Bootstrapping` (January 2026) or
    /// `{"Started": "Bootstrapping"}` (May 2026) until it has caught up.
    fn ready_when_online(&self) -> bool {
        true
    }

    fn peer_address(&self, addr: SocketAddr) -> String {
        Self::multiaddr(addr)
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if self.dev_mode {
            env.push(("POL_PROOF_DEV_MODE".to_owned(), "true".to_owned()));
        }
        if let Some(c) = &self.circuits {
            env.push((
                "LOGOS_BLOCKCHAIN_CIRCUITS".to_owned(),
                c.display().to_string(),
            ));
        }
        env
    }

    fn mounts(&self) -> Vec<(PathBuf, String)> {
        self.circuits
            .iter()
            .map(|c| (c.clone(), CIRCUITS_IN_CONTAINER.to_owned()))
            .collect()
    }

    fn command(&self, config: &Path) -> Result<(PathBuf, Vec<String>), NodeKindError> {
        if !self.binary.is_file() {
            return Err(NodeKindError::Binary(format!(
                "{} does not exist (LOGOS_BLOCKCHAIN_NODE_BIN)",
                self.binary.display()
            )));
        }
        let deployment = config.with_file_name(FILES[1]);
        Ok((
            self.binary.clone(),
            vec![
                config.display().to_string(),
                "--deployment".to_owned(),
                deployment.display().to_string(),
            ],
        ))
    }

    fn render_config(&self, topology: &Topology, plan: &NodePlan) -> Result<String, NodeKindError> {
        let d = describe("logos", &FILES, topology, plan);
        let text = self.generator.generate(&d, &plan.config_dir, &FILES)?;
        overrides_on_generated(&text, topology, plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> LogosNode {
        LogosNode {
            binary: PathBuf::from("/bin/sh"),
            generator: Generator::new(vec!["true".into()]),
            circuits: Some(PathBuf::from("/srv/circuits")),
            dev_mode: true,
        }
    }

    #[test]
    fn the_real_nodes_command_line_and_addresses() {
        let k = kind();
        let (bin, args) = k.command(Path::new("/run/node-0/config.yaml")).unwrap();
        assert_eq!(bin, PathBuf::from("/bin/sh"));
        assert_eq!(
            args,
            vec![
                "/run/node-0/config.yaml",
                "--deployment",
                "/run/node-0/deployment.yaml"
            ]
        );
        assert_eq!(
            k.peer_address("127.0.0.1:47100".parse().unwrap()),
            "/ip4/127.0.0.1/udp/47100/quic-v1"
        );
        assert!(
            k.env()
                .contains(&("POL_PROOF_DEV_MODE".into(), "true".into()))
        );
        assert_eq!(k.mounts()[0].1, "/opt/circuits");
        assert!(!k.capabilities().client_signed_txs && !k.capabilities().link_faults);
        let missing = LogosNode {
            binary: PathBuf::from("/nonexistent/logos-blockchain-node"),
            ..k
        };
        let e = missing
            .command(Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/logos-blockchain-node")
                && e.contains("LOGOS_BLOCKCHAIN_NODE_BIN"),
            "{e}"
        );
    }
}
