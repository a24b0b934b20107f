//! RTMP ingest: publishers connect with any RTMP client (OBS, ffmpeg, `streamhub
//! publish`, our [`crate::rtmp::Publisher`]) and their streams go live.
//!
//! rml_rtmp does the handshake, chunk decoding and the connect/createStream/publish
//! exchange ([`rml_rtmp::sessions::ServerSession`]); [`connection`] drives it over tokio and
//! decides who may publish ([`crate::hub::keys`]); [`feed`] turns the media messages into
//! what viewers receive.

pub mod audio;
pub mod connection;
pub mod enhanced;
pub mod feed;
pub mod timestamps;

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{debug, warn};

use super::HubShared;

/// Accepts publishers until the hub stops.
pub(crate) async fn serve(listener: TcpListener, hub: Arc<HubShared>) {
    let mut stop = hub.stop.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    debug!(%peer, "RTMP connection");
                    let hub = hub.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection::run(socket, hub).await {
                            debug!(%peer, error = %e, "RTMP connection ended");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    warn!(error = %e, "accepting an RTMP connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = super::stopped(&mut stop) => break,
        }
    }
}
