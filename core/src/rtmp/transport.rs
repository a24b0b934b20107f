//! Opening the byte stream to an ingest: TCP for `rtmp://`, TLS (rustls, ring provider,
//! certificate and host name verification always on) for `rtmps://`.

use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::url::Scheme;
use super::{RtmpError, RtmpUrl};

/// A connected byte stream, plain or TLS.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Asks the kernel to acknowledge the next segments at once instead of delaying the
    /// ACK. Servers that write each negotiation message separately with Nagle on
    /// (nginx-rtmp) otherwise wait out our delayed ACK, adding ~40 ms per round trip to
    /// going live. Linux resets the mode by itself, so this is called before each read.
    fn quickack(&self) {}

    /// Tunes the TCP socket underneath (see [`super::link`]).
    fn tune(&self, _tuning: super::link::LinkTuning) {}

    /// The TCP socket's descriptor, for `TCP_INFO` after the stream is split.
    fn socket_fd(&self) -> Option<super::link::SocketFd> {
        None
    }
}

impl ByteStream for TcpStream {
    fn quickack(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = self.set_quickack(true);
    }

    fn tune(&self, tuning: super::link::LinkTuning) {
        super::link::tune(self, tuning);
    }

    fn socket_fd(&self) -> Option<super::link::SocketFd> {
        Some(super::link::SocketFd::of(self))
    }
}

impl ByteStream for tokio_rustls::client::TlsStream<TcpStream> {
    fn quickack(&self) {
        ByteStream::quickack(self.get_ref().0);
    }

    fn tune(&self, tuning: super::link::LinkTuning) {
        super::link::tune(self.get_ref().0, tuning);
    }

    /// TLS adds its record framing to what TCP acknowledges (under 0.5 % for full
    /// records): the delivered offsets run slightly ahead, which errs towards less
    /// waiting media.
    fn socket_fd(&self) -> Option<super::link::SocketFd> {
        Some(super::link::SocketFd::of(self.get_ref().0))
    }
}

/// Trust settings for `rtmps://`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra root certificates (DER) trusted besides the bundled Mozilla roots, for
    /// private CAs and test servers.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl TlsOptions {
    /// Adds every certificate of a PEM document to the trusted roots.
    pub fn add_roots_pem(&mut self, pem: &[u8]) -> Result<usize, RtmpError> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| RtmpError::TlsConfig(format!("bad PEM: {e}")))?;
            self.extra_roots.push(cert);
            added += 1;
        }
        if added == 0 {
            return Err(RtmpError::TlsConfig(
                "no certificate found in the PEM data".into(),
            ));
        }
        Ok(added)
    }

    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, RtmpError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in &self.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| RtmpError::TlsConfig(format!("unusable root certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RtmpError::TlsConfig(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

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
