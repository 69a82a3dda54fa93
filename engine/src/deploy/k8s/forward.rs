//! Port-forwarding through the API server: one local listener per node on 127.0.0.1, each
//! accepted connection tunnelled to the API port of the node's pod (a new tunnel per
//! connection, so a restarted pod, which keeps its name, is reached at the same local address).

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::K8sTestnet;
use super::manifest::{API_PORT, pod_name};

/// Starts node `i`'s listener; returns its local port. Stops with the testnet's cancel token.
pub(super) async fn listen(net: &K8sTestnet, i: usize) -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("failed to listen on 127.0.0.1 for node-{i}'s port-forward: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("port-forward listener of node-{i}: {e}"))?
        .port();
    let pods: Api<Pod> = Api::namespaced(net.client.clone(), &net.namespace);
    let pod = pod_name(i);
    let cancel = net.cancel.clone();
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                _ = cancel.cancelled() => return,
                c = listener.accept() => c,
            };
            match conn {
                Ok((tcp, _)) => {
                    tokio::spawn(tunnel(pods.clone(), pod.clone(), tcp, cancel.clone()));
                }
                Err(e) => {
                    tracing::debug!("port-forward accept for {pod}: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(port)
}

async fn tunnel(pods: Api<Pod>, pod: String, mut tcp: TcpStream, cancel: CancellationToken) {
    let forwarder = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        pods.portforward(&pod, &[API_PORT]),
    )
    .await;
    let mut pf = match forwarder {
        Ok(Ok(pf)) => pf,
        Ok(Err(e)) => {
            // The client sees the connection close: "api not answering" while the pod is down.
            tracing::debug!("port-forward to {pod}: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("port-forward to {pod}: no answer within 10s");
            return;
        }
    };
    let Some(mut upstream) = pf.take_stream(API_PORT) else {
        return;
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        r = tokio::io::copy_bidirectional(&mut tcp, &mut upstream) => {
            if let Err(e) = r {
                tracing::debug!("port-forward to {pod} ended: {e}");
            }
        }
    }
    drop(upstream);
    pf.abort();
}
