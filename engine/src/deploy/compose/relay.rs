//! Relays from the Docker network's gateway IP to the link proxies on 127.0.0.1.
//!
//! The link layer's proxies listen on loopback, which containers cannot reach; each relay
//! listens on the gateway IP (reachable from every container on the run's network) and pipes
//! each connection to one proxy, byte for byte. The proxy applies the faults: when it closes a
//! connection (a partition), the relay closes the container's side too.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Starts a relay on `ip` (any free port) to `target`; returns the address it listens on. It
/// runs until `cancel` fires.
pub async fn start(
    ip: IpAddr,
    target: SocketAddr,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((inbound, _)) = accepted else {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            };
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let mut inbound = inbound;
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (mut in_r, mut in_w) = inbound.split();
                let (mut out_r, mut out_w) = outbound.split();
                // Either side ending ends both: a proxy that drops a connection (partition)
                // must look like a dropped connection to the node too.
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::io::copy(&mut in_r, &mut out_w) => {}
                    _ = tokio::io::copy(&mut out_r, &mut in_w) => {}
                }
            });
        }
    });
    Ok(local)
}
