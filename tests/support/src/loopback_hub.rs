//! A hub serving WHEP/HTTP and RTMP on loopback ports of its own, for tests
//! against the real hub in the test's own process.

use std::net::SocketAddr;

use streamhub::hub::{Hub, HubConfig};
use tokio::net::TcpListener;

/// A running hub and where it listens.
#[derive(Clone)]
pub struct TestHub {
    /// The hub, to inspect and shut down.
    pub hub: Hub,
    /// Its WHEP/HTTP address.
    pub http: SocketAddr,
    /// Its RTMP address.
    pub rtmp: SocketAddr,
}

/// Starts a hub (secret `test secret`) on two free loopback ports.
pub async fn start() -> TestHub {
    start_serving().await.0
}

/// [`start`], also returning the serving task (it ends after `hub.shutdown`).
pub async fn start_serving() -> (
    TestHub,
    tokio::task::JoinHandle<Result<(), streamhub::hub::HubError>>,
) {
    let hub = Hub::new(HubConfig::with_secret(b"test secret"));
    let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let rtmp_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (http, rtmp) = (
        http_listener.local_addr().expect("addr"),
        rtmp_listener.local_addr().expect("addr"),
    );
    let serving = hub.clone();
    let task = tokio::spawn(async move { serving.serve(http_listener, rtmp_listener).await });
    (TestHub { hub, http, rtmp }, task)
}
