//! HTTPS for the console: the certificate and key named in `[console]`, and
//! the handshake the accept loop (`drivers::httpserve`) runs on each
//! connection in its own task, within the head's deadline, so that a slow or
//! broken client never holds up the others.

use futures::future::BoxFuture;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {message}", path.display())]
    Cert { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("the certificate and key cannot be used together: {0}")]
    Mismatch(String),
}

impl TlsError {
    /// The `[console]` key the problem belongs to.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Cert { .. } => "tls_cert_file",
            TlsError::Key { .. } | TlsError::Mismatch(_) => "tls_key_file",
        }
    }
}

/// Loads the PEM certificate chain and key into a rustls server config.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        path: cert.to_owned(),
        message,
    };
    let key_err = |message: String| TlsError::Key {
        path: key.to_owned(),
        message,
    };
    let pem = std::fs::read(cert).map_err(|e| cert_err(format!("cannot read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(cert_err(
            "no certificate in the file (expected PEM `BEGIN CERTIFICATE`)".into(),
        ));
    }
    let pem = std::fs::read(key).map_err(|e| key_err(format!("cannot read: {e}")))?;
    let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        key_err(format!(
            "no usable private key (PEM PKCS#8, PKCS#1 or SEC1): {e}"
        ))
    })?;
    // The same provider rumqttc uses, named explicitly: two are compiled in.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// TLS over each accepted connection.
pub struct TlsHandshake(pub TlsAcceptor);

impl drivers::httpserve::Handshake for TlsHandshake {
    type Io = TlsStream<TcpStream>;
    fn handshake(&self, tcp: TcpStream) -> BoxFuture<'static, io::Result<Self::Io>> {
        let accept = self.0.accept(tcp);
        Box::pin(accept)
    }
}
