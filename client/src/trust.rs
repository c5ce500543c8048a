//! How the client decides to trust the server's certificate.
//!
//! tickwire servers usually run with a self-signed certificate, so instead of a CA the client
//! pins the SHA-256 of the certificate the server printed (as WebTransport's
//! `serverCertificateHashes` does). Trust-all exists only as [`Trust::Insecure`], for local
//! development, and warns when used.

use ring::digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Accept only a certificate whose DER has this SHA-256.
    Pinned([u8; 32]),
    /// Accept any certificate. Man-in-the-middle attacks go unnoticed: local development only.
    Insecure,
}

#[derive(Debug, thiserror::Error)]
#[error("certificate hash must be 64 hex digits")]
pub struct BadPin;

impl Trust {
    /// Parses a pin given as 64 hex digits (`:` separators allowed, any case).
    pub fn pinned_hex(hex: &str) -> Result<Trust, BadPin> {
        let digits: Vec<u8> = hex
            .bytes()
            .filter(|b| *b != b':')
            .map(|b| (b as char).to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .ok_or(BadPin)?;
        if digits.len() != 64 {
            return Err(BadPin);
        }
        let mut pin = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            pin[i] = pair[0] << 4 | pair[1];
        }
        Ok(Trust::Pinned(pin))
    }

    /// How to trust a node a trusted server sent the client to, by the certificate hash it
    /// gave for that node: pinned to it, or, for a client that checks nothing, still nothing.
    pub fn for_node(&self, cert_sha256: &str) -> Result<Trust, BadPin> {
        match self {
            Trust::Insecure => Ok(Trust::Insecure),
            Trust::Pinned(_) => Trust::pinned_hex(cert_sha256),
        }
    }

    pub(crate) fn verifier(&self, provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
        if *self == Trust::Insecure {
            tracing::warn!(
                "INSECURE: the server's certificate is not checked; anyone on the path can \
                 impersonate it. Use a pinned --cert-sha256 outside local development."
            );
        }
        Arc::new(Verifier {
            trust: self.clone(),
            provider,
        })
    }
}

#[derive(Debug)]
struct Verifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Insecure => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(pin) => {
                let hash = digest::digest(&digest::SHA256, end_entity);
                if hash.as_ref() == pin {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure,
                    ))
                }
            }
        }
    }

    // The handshake signatures are still checked: a pinned certificate proves nothing unless
    // the server holds its key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_from_hex() {
        let hex = "00ff".repeat(16);
        let Trust::Pinned(pin) = Trust::pinned_hex(&hex).unwrap() else {
            panic!("pinned")
        };
        assert_eq!(pin[0], 0);
        assert_eq!(pin[1], 0xff);
        assert!(Trust::pinned_hex("abc").is_err());
        assert!(Trust::pinned_hex(&"zz".repeat(32)).is_err());
        assert!(Trust::pinned_hex(&"AB:".repeat(32)).is_ok());
    }
}
