//! RTMP ingest: publishers connect with any RTMP client (OBS, ffmpeg, `streamhub
//! publish`, our [`crate::rtmp::Publisher`]) and their streams go live.
//!
//! [`session`] is the server side of the protocol with no I/O (our chunk reader and
//! AMF0 decoder, rml_rtmp's handshake); [`connection`] drives it over TCP or TLS and
//! decides who may publish ([`crate::hub::keys`]); [`feed`] turns the media messages into
//! what viewers receive. Connections are capped per IP address
//! ([`crate::hub::HubLimits::rtmp_per_ip`]).

pub(crate) mod audio;
pub(crate) mod connection;
pub(crate) mod enhanced;
pub(crate) mod feed;
mod replies;
pub(crate) mod session;
pub(crate) mod timestamps;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::HubShared;
use crate::net::PerIp;

/// Accepts publishers until the hub stops; over TLS (RTMPS) when `tls` is set.
pub(crate) async fn serve(
    listener: TcpListener,
    hub: Arc<HubShared>,
    per_ip: PerIp,
    tls: Option<TlsAcceptor>,
) {
    let mut stop = hub.stop.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let Some(slot) = per_ip.try_acquire(peer.ip()) else {
                        debug!(%peer, "RTMP connection refused: too many from this address");
                        continue;
                    };
                    debug!(%peer, "RTMP connection");
                    let _ = socket.set_nodelay(true);
                    let hub = hub.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        let result = match tls {
                            None => connection::run(socket, hub).await,
                            Some(acceptor) => {
                                let deadline = hub.limits.publish_deadline;
                                match tokio::time::timeout(deadline, acceptor.accept(socket)).await {
                                    Ok(Ok(tls)) => connection::run(tls, hub).await,
                                    Ok(Err(e)) => Err(super::HubError::Rtmp(format!("TLS: {e}"))),
                                    Err(_) => Err(super::HubError::Rtmp("TLS handshake timed out".into())),
                                }
                            }
                        };
                        if let Err(e) = result {
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
