//! The transport: one `reqwest` client per store (rustls with *ring*; the roots from `caBundle`/`caProvider`, which
//! replace the system roots as in ESO, or the platform verifier), the store's `timeout`, a bounded response body,
//! and errors that never carry the URL, a header or a body (they can hold credentials or secret values).
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::error::{ProviderError, Result};
use crate::value::SecretValue;

/// The largest response body read (larger ones fail: a secret is never that big).
const MAX_BODY: usize = 16 << 20;

/// One webhook server.
pub struct Http {
    client: reqwest::Client,
    timeout: Duration,
}

/// A response the server gave, whatever its status.
pub struct Response {
    pub status: reqwest::StatusCode,
    pub retry_after: Option<Duration>,
    pub body: SecretValue,
}

impl Response {
    /// ESO's wording for a failed status: `endpoint gave error 500 Internal Server Error`.
    pub fn status_error(&self) -> String {
        format!("endpoint gave error {}", self.status)
    }
}

impl Http {
    /// `ca_pem` empty: the platform's roots. `base` names the store's provider block for errors.
    pub fn new(ca_pem: &[u8], timeout: Duration, base: &str) -> Result<Self> {
        let tls = tls_config(ca_pem, base)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(timeout)
            .build()
            .map_err(|e| {
                ProviderError::Transport(format!("building the HTTP client: {}", crate::error::error_chain(&e)))
            })?;
        Ok(Self { client, timeout })
    }

    /// Sends one request and reads the answer.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Response> {
        let mut req = self.client.request(method, url).headers(headers);
        if !body.is_empty() {
            req = req.body(body);
        }
        let mut resp = req.send().await.map_err(|e| self.error(e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.error(e))? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(ProviderError::Transport(format!(
                    "failed to call endpoint: the response is larger than {} MiB",
                    MAX_BODY >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            retry_after,
            body: SecretValue::from(bytes),
        })
    }

    fn error(&self, e: reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            return ProviderError::Transport(format!(
                "failed to call endpoint: no answer within the timeout of {}",
                syncret_crds::duration::format(self.timeout)
            ));
        }
        // Without the URL: its query may carry a credential rendered from `secrets`.
        ProviderError::Transport(format!(
            "failed to call endpoint: {}",
            crate::error::error_chain(&e.without_url())
        ))
    }
}

/// rustls with *ring*: the given PEM roots, or the platform verifier when there are none.
fn tls_config(ca_pem: &[u8], base: &str) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProviderError::Transport(format!("TLS setup: {e}")))?;
    if !ca_pem.iter().any(|b| !b.is_ascii_whitespace()) {
        let verifier = rustls_platform_verifier::Verifier::new(provider)
            .map_err(|e| ProviderError::Transport(format!("TLS setup (system roots): {e}")))?;
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth());
    }
    let field = format!("{base}.caBundle");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| ProviderError::invalid_config(&field, format!("invalid PEM certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ProviderError::invalid_config(&field, format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ProviderError::invalid_config(&field, "no PEM certificate found"));
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_without_certificates_is_refused() {
        let e = tls_config(b"not a certificate", "spec.provider.webhook").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.provider.webhook.caBundle: no PEM certificate found"
        );
        assert!(tls_config(b"", "spec.provider.webhook").is_ok());
    }
}
