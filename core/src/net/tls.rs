//! Trust settings for TLS clients (RTMPS ingests, `wss://` chat): rustls with the ring
//! provider, the bundled Mozilla roots plus the app's own, certificate and host name
//! verification always on.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, pem::PemObject};

/// TLS settings that cannot work: a bad PEM document or root certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsConfigError(pub String);

/// Trust settings for `rtmps://` and `wss://`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra root certificates (DER) trusted besides the bundled Mozilla roots, for
    /// private CAs and test servers.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl TlsOptions {
    /// Adds every certificate of a PEM document to the trusted roots.
    pub fn add_roots_pem(&mut self, pem: &[u8]) -> Result<usize, TlsConfigError> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TlsConfigError(format!("bad PEM: {e}")))?;
            self.extra_roots.push(cert);
            added += 1;
        }
        if added == 0 {
            return Err(TlsConfigError(
                "no certificate found in the PEM data".into(),
            ));
        }
        Ok(added)
    }

    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, TlsConfigError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in &self.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| TlsConfigError(format!("unusable root certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}
