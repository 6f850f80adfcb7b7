//! Server TLS of the HTTP endpoint from PEM files (e.g. mounted from a Kubernetes Secret).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
#[error("server.tls {path}: {reason}")]
pub struct TlsError {
    /// File (or `cert/key` pair) at fault.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// An acceptor serving `cert` (chain) with `key`; HTTP/1.1 only, as the endpoint speaks.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let err = |p: &Path, reason: String| TlsError { path: p.display().to_string(), reason };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(err(cert, "no certificate found".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| err(key, e.to_string()))?;
    // The provider is explicit: with more than one compiled into the binary, rustls cannot
    // pick a process default on its own.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| err(cert, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
