//! rustls client configurations with *ring* (the provider kube already builds): the roots of a store's
//! `caBundle`/`caProvider` (which replace the system roots, as in ESO) or the platform verifier, and an optional
//! client certificate from memory. Errors name the store field, never key material.
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{ProviderError, Result};

/// A client certificate chain and key (PEM) and the field they come from.
pub struct Identity<'a> {
    pub cert_pem: &'a [u8],
    pub key_pem: &'a [u8],
    pub field: &'a str,
}

/// `ca_pem` without certificates (empty or blank): the platform's roots. `base` names the provider block
/// (`spec.provider.vault`) for errors about `caBundle`.
pub fn client_config(ca_pem: &[u8], identity: Option<Identity<'_>>, base: &str) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProviderError::Transport(format!("TLS setup: {e}")))?;
    let builder = if ca_pem.iter().any(|b| !b.is_ascii_whitespace()) {
        let field = format!("{base}.caBundle");
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert =
                cert.map_err(|e| ProviderError::invalid_config(&field, format!("invalid PEM certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ProviderError::invalid_config(&field, format!("unusable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ProviderError::invalid_config(&field, "no PEM certificate found"));
        }
        builder.with_root_certificates(roots)
    } else {
        let verifier = rustls_platform_verifier::Verifier::new(provider)
            .map_err(|e| ProviderError::Transport(format!("TLS setup (system roots): {e}")))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier))
    };
    let Some(id) = identity else {
        return Ok(builder.with_no_client_auth());
    };
    let certs = CertificateDer::pem_slice_iter(id.cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| ProviderError::invalid_config(id.field, format!("invalid client certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ProviderError::invalid_config(
            id.field,
            "no client certificate found in the PEM",
        ));
    }
    // The key's parse error is not shown: it could quote key material.
    let key = PrivateKeyDer::from_pem_slice(id.key_pem)
        .map_err(|_| ProviderError::invalid_config(id.field, "the client private key is not a PEM private key"))?;
    builder
        .with_client_auth_cert(certs, key)
        .map_err(|e| ProviderError::invalid_config(id.field, format!("client certificate and key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_and_named() {
        assert!(client_config(b"", None, "b").is_ok(), "platform roots");
        assert!(client_config(b" \n", None, "b").is_ok(), "blank is none");
        let e = client_config(b"not a certificate", None, "spec.provider.webhook").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.provider.webhook.caBundle: no PEM certificate found"
        );
        let key = b"-----BEGIN PRIVATE KEY-----\ns3cr3t\n-----END PRIVATE KEY-----\n";
        let id = Identity {
            cert_pem: b"",
            key_pem: key,
            field: "spec.provider.vault.tls",
        };
        let e = client_config(b"", Some(id), "b").unwrap_err().to_string();
        assert!(e.starts_with("spec.provider.vault.tls: no client certificate"), "{e}");
        assert!(!e.contains("s3cr3t"));
    }
}
