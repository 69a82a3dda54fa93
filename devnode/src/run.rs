//! The entry points: `run` wires p2p, the API servers and the slot clock around a [`Node`]
//! and stops them at shutdown; `run_from_file` does it from a config file on its own runtime.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tracing::{debug, error, info, warn};

use crate::NodeError;
use crate::config::NodeConfig;
use crate::node::Node;

/// How long a restarted node waits for a peer before going online alone.
const RESTART_ALONE_AFTER: Duration = Duration::from_secs(4);

/// Produces blocks slot by slot; also decides when a node with no peers
/// stops bootstrapping.
async fn slot_loop(node: Arc<Node>) {
    let slot_ms = node.rules.slot_duration_ms;
    // A restarted node waits long enough for peers' redial backoff (2 s cap)
    // before deciding it is alone, so it does not fork off a stale chain.
    let alone_after = if node.restarted {
        Duration::from_millis(2 * slot_ms).max(RESTART_ALONE_AFTER)
    } else {
        Duration::from_millis(2 * slot_ms)
    };
    let mut last_peer_seen = Instant::now();
    loop {
        let now = node.clock.now_ms();
        let next = node.rules.slot_at(now).map_or(0, |s| s + 1);
        let wait = node.rules.slot_start_ms(next).saturating_sub(now);
        tokio::select! {
            _ = node.cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
        if node.peers.count() > 0 {
            last_peer_seen = Instant::now();
        } else if !node.is_online() && last_peer_seen.elapsed() >= alone_after {
            if node.restarted && node.config.testing.crash_if_restarted_while_isolated {
                planted_crash(alone_after);
            }
            node.mark_online("no peer to sync with");
        }
        if node.rules.slot_at(node.clock.now_ms()) != Some(next) {
            debug!(slot = next, "slot missed (the node was late)");
            continue;
        }
        node.try_produce(next);
        node.byzantine_tick();
    }
}

/// The planted bug `testing.crash_if_restarted_while_isolated`: the process exits as a crashing
/// node would, saying why on stderr and in its log.
fn planted_crash(waited: Duration) -> ! {
    let why = format!(
        "planted bug (testing.crash_if_restarted_while_isolated): restarted while isolated, no peer within {}ms; exiting",
        waited.as_millis()
    );
    tracing::error!("{why}");
    eprintln!("{why}");
    std::process::exit(70)
}

/// Runs a node until `shutdown` completes, then stops its tasks and closes
/// the store.
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    config
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let p2p = TcpListener::bind(config.network.listen)
        .await
        .map_err(|source| NodeError::Bind {
            field: "network.listen",
            addr: config.network.listen,
            source,
        })?;
    let api = TcpListener::bind(config.api.listen)
        .await
        .map_err(|source| NodeError::Bind {
            field: "api.listen",
            addr: config.api.listen,
            source,
        })?;
    let testing = match &config.testing_api {
        Some(t) => Some(
            TcpListener::bind(t.listen)
                .await
                .map_err(|source| NodeError::Bind {
                    field: "testing_api.listen",
                    addr: t.listen,
                    source,
                })?,
        ),
        None => None,
    };
    let p2p_addr = p2p.local_addr().map_err(NodeError::Io)?;
    let api_addr = api.local_addr().map_err(NodeError::Io)?;
    let node = Arc::new(Node::open(config, p2p_addr, api_addr)?);
    let leader = node.rules.stake_of(&node.public_key).is_some();
    info!(
        index = node.config.node.index,
        public_key = %node.public_key,
        %p2p_addr,
        %api_addr,
        dialect = %node.config.api.dialect,
        testing_api = ?testing.as_ref().and_then(|l| l.local_addr().ok()),
        leader,
        genesis = %node.rules.genesis_id,
        "node started"
    );
    for var in [
        "LOGOS_BLOCKCHAIN_OTLP_ENDPOINT",
        "LOGOS_BLOCKCHAIN_OTLP_METRICS_ENDPOINT",
    ] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            info!(
                "{var} = {v} is configured; the reference node does not export OTLP (use GET /metrics on the testing API and the logs)"
            );
        }
    }

    node.tasks
        .spawn(crate::p2p::dialer::accept_loop(node.clone(), p2p));
    for peer in node.config.network.peers.clone() {
        node.connect(peer);
    }
    node.tasks.spawn(slot_loop(node.clone()));
    let mut servers = vec![("api", api, crate::api::router(node.clone()))];
    if let Some(listener) = testing {
        servers.push((
            "testing api",
            listener,
            crate::api::testing::router(node.clone()),
        ));
    }
    for (what, listener, app) in servers {
        let cancel = node.cancel.clone();
        node.tasks.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await;
            if let Err(e) = served {
                error!("{what} server failed: {e}");
            }
        });
    }

    shutdown.await;
    info!("shutting down");
    node.cancel.cancel();
    node.tasks.close();
    if tokio::time::timeout(Duration::from_secs(3), node.tasks.wait())
        .await
        .is_err()
    {
        warn!("some tasks did not stop within 3s; closing anyway");
    }
    if let Err(e) = node.store().flush() {
        error!("failed to flush the held-back block writes: {e}");
    }
    let height = node.state().chain.height();
    info!(height, "node stopped");
    Ok(())
}

/// Loads a config file, sets up logging and runs the node on its own
/// runtime until SIGTERM or SIGINT. For callers without a runtime (the
/// `nomos-devnode` and `nomos-script devnode` commands).
pub fn run_from_file(path: &Path) -> Result<(), NodeError> {
    let config = NodeConfig::load(path).map_err(|e| NodeError::Config(e.to_string()))?;
    crate::logging::init(config.node.index)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("devnode")
        .build()
        .map_err(NodeError::Io)?;
    runtime.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(NodeError::Io)?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => info!("received SIGTERM"),
                _ = tokio::signal::ctrl_c() => info!("received SIGINT"),
            }
        };
        run(config, shutdown).await
    })
}
