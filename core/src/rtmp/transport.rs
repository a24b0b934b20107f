//! Opening the byte stream to an ingest: TCP for `rtmp://`, TLS (rustls, ring provider,
//! certificate and host name verification always on) for `rtmps://`.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::url::Scheme;
use super::{RtmpError, RtmpUrl};
pub use crate::net::{ByteStream, TlsOptions};

/// Connects to the URL's host and port, then runs TLS for `rtmps://`; the whole step
/// is bounded by `timeout`.
pub async fn open(
    url: &RtmpUrl,
    tls: &TlsOptions,
    timeout: Duration,
) -> Result<Box<dyn ByteStream>, RtmpError> {
    let addr = if url.host().contains(':') {
        format!("[{}]:{}", url.host(), url.port())
    } else {
        format!("{}:{}", url.host(), url.port())
    };
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((url.host(), url.port())))
        .await
        .map_err(|_| RtmpError::Timeout {
            stage: "TCP connect",
            after: timeout,
        })?
        .map_err(|source| RtmpError::Connect {
            addr: addr.clone(),
            source,
        })?;
    // Media is written in large batches; small control replies must not wait for Nagle.
    tcp.set_nodelay(true)
        .map_err(|source| RtmpError::Connect { addr, source })?;

    match url.scheme() {
        Scheme::Rtmp => Ok(Box::new(tcp)),
        Scheme::Rtmps => {
            let connector = TlsConnector::from(Arc::new(tls.client_config()?));
            let name = ServerName::try_from(url.host().to_string())
                .map_err(|e| RtmpError::TlsConfig(format!("bad server name: {e}")))?;
            let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| RtmpError::Timeout {
                    stage: "TLS handshake",
                    after: timeout,
                })?
                .map_err(|source| RtmpError::Tls {
                    host: url.host().to_string(),
                    source,
                })?;
            Ok(Box::new(stream))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_pem_without_certificates() {
        let mut tls = TlsOptions::default();
        assert!(tls.add_roots_pem(b"nothing here").is_err());
        assert!(tls.client_config().is_ok());
    }

    #[tokio::test]
    async fn closed_port_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = RtmpUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/k")).unwrap();
        let err = open(&url, &TlsOptions::default(), Duration::from_secs(2))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, RtmpError::Connect { .. }), "{err}");
        assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
    }
}
