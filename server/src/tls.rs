//! The server's certificate: loaded from PEM files, or a self-signed one made at start-up.
//! Clients pin its SHA-256 (printed in the `listening` line) instead of trusting a CA.

use ring::digest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read {path}: {source}")]
    Pem {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    #[error("QUIC refused the TLS configuration: {0}")]
    Quic(String),
}

pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ServerCert {
    /// A fresh self-signed certificate for `localhost` and the loopback addresses.
    pub fn self_signed() -> Result<ServerCert, TlsError> {
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let made = rcgen::generate_simple_self_signed(names)?;
        let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
        Ok(ServerCert {
            chain: vec![made.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key),
        })
    }

    pub fn load(cert: &Path, key: &Path) -> Result<ServerCert, TlsError> {
        let pem_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| TlsError::Pem { path, source }
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(pem_err(cert))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_err(cert))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert.display().to_string()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(pem_err(key))?;
        Ok(ServerCert { chain, key })
    }

    /// Lower-case hex SHA-256 of the end-entity certificate's DER: what clients pin.
    pub fn sha256_hex(&self) -> String {
        let d = digest::digest(&digest::SHA256, &self.chain[0]);
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A rustls server configuration for QUIC (TLS 1.3 only, tickwire's ALPN).
    pub fn rustls_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![tickwire_protocol::ALPN.to_vec()];
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificates_hash_to_64_hex_digits() {
        let cert = ServerCert::self_signed().unwrap();
        let hash = cert.sha256_hex();
        assert_eq!(hash.len(), 64);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(hash, ServerCert::self_signed().unwrap().sha256_hex());
        cert.rustls_config().unwrap();
    }
}
