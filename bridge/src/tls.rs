//! MQTT over TLS for the embedded broker: the gate terminates TLS and then treats the
//! connection like any other, so logins, the ACL and the payload limit apply unchanged.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading TLS certificates from {path}: {message}")]
    Certs { path: String, message: String },
    #[error("reading the TLS private key from {path}: {message}")]
    Key { path: String, message: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// A server config from a PEM certificate chain (leaf first) and a PEM private key.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certs {
            path: cert.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certs {
            path: cert.display().to_string(),
            message: "no CERTIFICATE block".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    // An explicit provider: no process-wide default to agree on with zenoh's own TLS.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_files_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let e = acceptor(&cert, &key).err().unwrap().to_string();
        assert!(e.contains("cert.pem"), "{e}");
        std::fs::write(&cert, "not pem").unwrap();
        let e = acceptor(&cert, &key).err().unwrap().to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(acceptor(&cert, &key).is_err());
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        assert!(acceptor(&cert, &key).is_ok());
    }
}
