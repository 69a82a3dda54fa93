//! `net.node(i)` / `ctx.node(i)`: a node API client whose methods return rhai maps.
//!
//! ```rhai
//! let info = net.node(0).consensus_info();   // #{height, slot, tip, lib, mode}
//! print(info.height);
//! ```

use std::future::Future;

use engine::client::{ClientError, NodeClient};
use rhai::{Dynamic, Engine, INT};

use super::values::{Res, err, int, map, to_script};
use crate::bridge::Bridge;

/// A node client usable from scripts: cheap to clone, `&self` methods only (no data races when
/// several script threads share it).
#[derive(Clone)]
pub struct NodeHandle {
    client: Option<NodeClient>,
    index: usize,
    bridge: Bridge,
}

impl NodeHandle {
    /// A live client.
    pub fn new(client: NodeClient, bridge: Bridge) -> Self {
        Self {
            index: client.index(),
            client: Some(client),
            bridge,
        }
    }

    /// A client of a dry (checked, not deployed) testnet: calls return placeholder values.
    pub fn dry(index: usize, bridge: Bridge) -> Self {
        Self {
            client: None,
            index,
            bridge,
        }
    }

    fn call<T, F, Fut>(&self, what: &str, f: F) -> Res<Option<T>>
    where
        F: FnOnce(NodeClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let Some(client) = self.client.clone() else {
            return Ok(None);
        };
        match self
            .bridge
            .block_on_cancellable(async move { f(client).await })?
        {
            Ok(v) => Ok(Some(v)),
            Err(e) => err(format!("{what} failed: {e}")),
        }
    }

    fn name(&self) -> String {
        format!("node-{}", self.index)
    }
}

fn dry_consensus_info() -> Dynamic {
    map([
        ("height", Dynamic::from_int(0)),
        ("slot", Dynamic::from_int(0)),
        ("tip", Dynamic::from("")),
        ("lib", Dynamic::from("")),
        ("mode", Dynamic::from("Dry")),
    ])
    .into()
}

/// Registers `NodeClient` methods.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<NodeHandle>("NodeClient")
        .register_get("index", |n: &mut NodeHandle| n.index as INT)
        .register_get("name", |n: &mut NodeHandle| n.name())
        .register_get("url", |n: &mut NodeHandle| {
            n.client
                .as_ref()
                .map(|c| c.base_url().to_string())
                .unwrap_or_default()
        })
        .register_fn("to_string", |n: &mut NodeHandle| n.name())
        .register_fn("consensus_info", |n: &mut NodeHandle| -> Res<Dynamic> {
            Ok(n.call(
                "consensus_info",
                |c| async move { c.consensus_info().await },
            )?
            .map_or_else(dry_consensus_info, |i| to_script(&i)))
        })
        .register_fn("height", |n: &mut NodeHandle| -> Res<INT> {
            Ok(
                n.call("height", |c| async move { c.consensus_info().await })?
                    .map_or(0, |i| i.height as INT),
            )
        })
        .register_fn("network_info", |n: &mut NodeHandle| -> Res<Dynamic> {
            Ok(
                n.call("network_info", |c| async move { c.network_info().await })?
                    .map_or_else(
                        || {
                            map([
                                ("listen_addresses", Dynamic::from_array(vec![])),
                                ("n_peers", Dynamic::from_int(0)),
                                ("n_connections", Dynamic::from_int(0)),
                                ("n_pending_connections", Dynamic::from_int(0)),
                            ])
                            .into()
                        },
                        |i| to_script(&i),
                    ),
            )
        })
        .register_fn("headers", |n: &mut NodeHandle| -> Res<Dynamic> {
            Ok(
                n.call("headers", |c| async move { c.headers(None, None).await })?
                    .map_or_else(|| Dynamic::from_array(vec![]), |h| to_script(&h)),
            )
        })
        .register_fn(
            "headers",
            |n: &mut NodeHandle, from: &str, to: &str| -> Res<Dynamic> {
                let (from, to) = (from.to_string(), to.to_string());
                Ok(n.call("headers", |c| async move {
                    c.headers(Some(&from), Some(&to)).await
                })?
                .map_or_else(|| Dynamic::from_array(vec![]), |h| to_script(&h)))
            },
        )
        .register_fn("block", |n: &mut NodeHandle, id: &str| -> Res<Dynamic> {
            let id = id.to_string();
            Ok(n.call("block", |c| async move { c.block(&id).await })?
                .flatten()
                .map_or(Dynamic::UNIT, |b| to_script(&b)))
        })
        .register_fn("mempool_info", |n: &mut NodeHandle| -> Res<Dynamic> {
            Ok(
                n.call("mempool_info", |c| async move { c.mempool_info().await })?
                    .map_or_else(
                        || map([("size", Dynamic::from_int(0))]).into(),
                        |i| to_script(&i),
                    ),
            )
        })
        .register_fn("account", |n: &mut NodeHandle, pk: &str| -> Res<Dynamic> {
            let pk = pk.to_string();
            Ok(n.call("account", |c| async move { c.account(&pk).await })?
                .map_or_else(
                    || map([("balance", int(0)), ("nonce", int(0))]).into(),
                    |i| to_script(&i),
                ))
        })
        .register_fn("metrics", |n: &mut NodeHandle| -> Res<String> {
            Ok(
                n.call("metrics", |c| async move { c.metrics_text().await })?
                    .unwrap_or_default(),
            )
        })
        .register_fn("connect", |n: &mut NodeHandle, addr: &str| -> Res<()> {
            let addr = addr.to_string();
            n.call("connect", |c| async move { c.connect(&addr).await })?;
            Ok(())
        });
}
