//! The hub's TLS listener for RTMPS: a certificate chain and key from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::HubError;

/// A server certificate and its key, ready to accept RTMPS publishers. Its `Debug`
/// shows no key material.
#[derive(Clone)]
pub struct HubTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for HubTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HubTls(key hidden)")
    }
}

impl HubTls {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8,
    /// PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, HubError> {
        let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
            HubError::Config(format!("{what} {}: {e}", path.display()))
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad("reading the certificate", cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("parsing the certificate", cert, &e))?;
        if chain.is_empty() {
            return Err(bad("no certificate in", cert, &"empty"));
        }
        let key_der =
            PrivateKeyDer::from_pem_file(key).map_err(|e| bad("reading the key", key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HubError::Config(format!("TLS versions: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| HubError::Config(format!("the certificate and key: {e}")))?;
        Ok(HubTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}
