//! The HTTP accept loop of the servers (hub and chat): axum's router on hyper, with what
//! `axum::serve` lacks for a server on the internet: a cap of connections per address,
//! a deadline for each request's headers (slowloris) and one for each whole request.
//! WebSocket upgrades leave the request deadline when the upgrade answer is sent.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::debug;

use super::PerIp;

/// Limits of the HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Connections per address (loopback exempt unless `limit_loopback`).
    pub per_ip: usize,
    /// Whether loopback peers count.
    pub limit_loopback: bool,
    /// Time for a request's headers to arrive.
    pub header_timeout: Duration,
    /// Time for a whole request (body read and answered).
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            per_ip: 256,
            limit_loopback: false,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests
/// finish (connections are closed gracefully). Handlers may extract
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let per_ip = PerIp::new(limits.per_ip, limits.limit_loopback);
    let (closing, _) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    debug!(error = %e, "accepting an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = per_ip.try_acquire(peer.ip()) else {
            debug!(%peer, "HTTP connection refused: too many from this address");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let router = router.clone();
        let request_timeout = limits.request_timeout;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let request = request.map(axum::body::Body::new);
                let response = match tokio::time::timeout(request_timeout, router.oneshot(request))
                    .await
                {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timed out").into_response(),
                };
                Ok::<_, Infallible>(response)
            }
        });
        let mut closing = closing.subscribe();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(socket), service);
            tokio::pin!(connection);
            let closed = async move {
                let _ = closing.wait_for(|c| *c).await;
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        debug!(%peer, error = %e, "HTTP connection ended");
                    }
                }
                () = closed => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    closing.send_replace(true);
    Ok(())
}
