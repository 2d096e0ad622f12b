//! TLS for a node that faces clients without a proxy: the certificate chain and key from PEM
//! files, and the acceptor each connection's handshake goes through (rustls with the ring
//! provider, TLS 1.2 and 1.3, ALPN `http/1.1`).

use std::path::Path;
use std::sync::Arc;

pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate or key the node cannot serve with; the text names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// The acceptor for the certificate chain in `cert` (leaf first, then intermediates) and the
/// private key in `key` (PKCS#8, PKCS#1 RSA or SEC1 EC), both PEM.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = certificates(cert)?;
    let private = private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            TlsError(format!(
                "tls_cert {} and tls_key {} cannot be used together: {e}; the key must be the one the certificate was issued for",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("{setting}: cannot read {}: {e}", path.display())))
}

fn invalid(setting: &str, path: &Path, e: pem::Error) -> TlsError {
    TlsError(format!("{setting}: {} is not valid PEM: {e}", path.display()))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read("tls_cert", path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("tls_cert", path, e))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "tls_cert: {} holds no certificate; expected PEM `-----BEGIN CERTIFICATE-----` sections, the server's certificate first",
            path.display()
        )));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("tls_key", path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError(format!(
            "tls_key: {} holds no private key; expected a PEM `-----BEGIN PRIVATE KEY-----` (PKCS#8), `RSA PRIVATE KEY` or `EC PRIVATE KEY` section, unencrypted",
            path.display()
        ))),
        Err(e) => Err(invalid("tls_key", path, e)),
    }
}
