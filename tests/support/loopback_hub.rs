//! A hub serving WHEP/HTTP and RTMP on loopback ports of its own, for the core crate's
//! tests against the real hub (included with `#[path]`; feature `server`).

use std::net::SocketAddr;

use streamhub::hub::{Hub, HubConfig};
use tokio::net::TcpListener;

/// A running hub and where it listens.
#[derive(Clone)]
pub struct TestHub {
    pub hub: Hub,
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
}

/// Starts a hub (secret `test secret`) on two free loopback ports.
#[allow(dead_code)] // each test binary uses its own part of this module
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
