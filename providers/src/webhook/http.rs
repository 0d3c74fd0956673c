//! The transport: one [`HttpClient`] per store (rustls with *ring*; the roots from `caBundle`/`caProvider`, which
//! replace the system roots as in ESO, or the platform verifier), the store's `timeout`, the egress policy of the
//! store's scope, a bounded response body, and errors that never carry the URL, a header or a body (they can hold
//! credentials or secret values).
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::error::{ProviderError, Result};
use crate::net::egress::Egress;
use crate::net::http::{HttpClient, HttpClientBuilder, HttpError};
use crate::value::SecretValue;

/// One webhook server.
pub struct Http {
    client: HttpClient,
    base: String,
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
    /// `ca_pem` empty: the platform's roots; `client` carries the store's egress rules and the answer budget.
    /// `base` names the store's provider block for errors.
    pub fn new(ca_pem: &[u8], timeout: Duration, client: HttpClientBuilder, base: &str) -> Result<Self> {
        let tls = crate::net::tls::client_config(ca_pem, None, base)?;
        let client = client
            .tls(tls)
            .timeout(timeout)
            .build()
            .map_err(|e| ProviderError::Transport(e.to_string()))?;
        Ok(Self {
            client,
            base: base.to_string(),
        })
    }

    /// The egress rules of this store (store validation dials the host without HTTP).
    pub fn egress(&self) -> &Egress {
        self.client.egress()
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
        let resp = req.send().await.map_err(|e| self.error(e))?;
        Ok(Response {
            status: resp.status,
            retry_after: resp.retry_after(),
            body: SecretValue::from(resp.body.to_vec()),
        })
    }

    fn error(&self, e: HttpError) -> ProviderError {
        e.into_provider(&format!("{}.url", self.base), "failed to call endpoint")
    }
}
