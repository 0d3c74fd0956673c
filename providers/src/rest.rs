//! The HTTP transport of the SaaS providers (1Password Connect, Doppler, Infisical, the Bitwarden SDK server,
//! GitLab): one `reqwest` client per store, bounded by construction.
//!
//! - TLS with *ring*: the store's CA bundle replaces the system roots (as in ESO), or the platform verifier.
//! - Every request has a deadline ([`REQUEST_TIMEOUT`], connect [`CONNECT_TIMEOUT`]) covering the whole body, and
//!   every body is read through a cap ([`MAX_BODY`]): a server that never answers or answers forever fails.
//! - No redirects: the credential headers (`PRIVATE-TOKEN`, `Warden-Access-Token`, …) must not follow a `3xx` to
//!   another host.
//! - The store's egress rules and the operator's answer budget: the client comes from
//!   [`crate::ProviderContext::http_client`], so a namespaced SecretStore cannot point it at loopback, link-local
//!   or metadata addresses (`docs/security.md`).
//! - `429` (and `503` with `Retry-After`) is [`ProviderError::Throttled`] with the server's `Retry-After`
//!   (seconds or an HTTP date), capped at [`MAX_RETRY_AFTER`] with checked time arithmetic. Until then the client
//!   answers `Throttled` itself without calling the server: one store's ExternalSecrets share the client, so a
//!   rate-limited provider sees one request, not one per ExternalSecret.
//! - Errors carry the call, the status and the provider's own short message, never a URL (queries can carry
//!   names), a header or a response body.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::de::DeserializeOwned;

use crate::client::{CallObserver, observed};
use crate::error::{ProviderError, Result};
use crate::net::body::Limits;
use crate::net::http::{HttpClient, HttpClientBuilder, HttpError, Request};

/// The largest response body read (a secret, a page of variables or an item with its files is far smaller).
pub const MAX_BODY: usize = 16 << 20;
/// Deadline of one request, from connecting until the last byte of the body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of the TCP and TLS connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Retry-After when a `429` names none.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest provider message quoted in an error.
const MAX_MESSAGE: usize = 200;

/// One provider endpoint of one store.
pub struct Rest {
    http: HttpClient,
    base: Url,
    label: &'static str,
    observer: Arc<dyn CallObserver>,
    timeout: Duration,
    /// The store field of the base URL (an egress refusal names it).
    field: String,
    /// While set and in the future, calls fail as throttled without reaching the server.
    throttled_until: Mutex<Option<Instant>>,
}

/// A response the server gave (any status but `429`).
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body as JSON of type `T`; `what` names the call for the error (the body is never quoted).
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::Transport(format!(
                "{what}: the answer is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `<what>: <status>` plus the provider's own message when the body is JSON with one (`message`, `messages`,
    /// `error`), cut short and on one line.
    pub fn describe(&self, what: &str) -> String {
        let mut out = format!("{what}: {}", self.status);
        if let Some(m) = provider_message(&self.body) {
            out.push_str(": ");
            out.push_str(&m);
        }
        out
    }

    /// The usual mapping of a failed status: `401` [`ProviderError::Auth`] naming `auth_field` (the client is
    /// rebuilt), `403` [`ProviderError::AccessDenied`], `404` [`ProviderError::NotFound`] of `key`, the rest
    /// [`ProviderError::Transport`] (retried with backoff).
    pub fn error(&self, what: &str, key: &str, auth_field: &str) -> ProviderError {
        match self.status.as_u16() {
            401 => ProviderError::Auth(format!(
                "{auth_field}: the credentials were rejected ({})",
                self.describe(what)
            )),
            403 => ProviderError::AccessDenied(self.describe(what)),
            404 => ProviderError::NotFound { key: key.to_string() },
            _ => ProviderError::Transport(self.describe(what)),
        }
    }
}

/// The provider's error message in a JSON error body, sanitized: control characters dropped, at most
/// [`MAX_MESSAGE`] characters.
fn provider_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = match (v.get("message"), v.get("messages"), v.get("error")) {
        (Some(serde_json::Value::String(m)), _, _) => m.clone(),
        (_, Some(serde_json::Value::Array(ms)), _) => ms
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect::<Vec<_>>()
            .join("; "),
        (_, _, Some(serde_json::Value::String(m))) => m.clone(),
        _ => return None,
    };
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE)
        .collect();
    let clean = clean.trim().to_string();
    (!clean.is_empty()).then_some(clean)
}

/// `Retry-After` as a wait from `now`: delta-seconds or an HTTP date, at most [`MAX_RETRY_AFTER`]. `None` when
/// absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs.min(MAX_RETRY_AFTER.as_secs())),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v)
                .ok()?
                .with_timezone(&chrono::Utc);
            // A date in the past means "now"; a far one is capped (no subtraction can overflow on i64 seconds).
            let secs = at.signed_duration_since(now).num_seconds().max(0);
            Duration::from_secs(u64::try_from(secs).unwrap_or(0).min(MAX_RETRY_AFTER.as_secs()))
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

impl Rest {
    /// A client for `base` (an `http(s)://` URL; `field` names it for errors) built from `http` (the store's
    /// [`crate::ProviderContext::http_client`]). `ca_pem` empty: the platform's roots. `label` is the provider
    /// label of the call metrics.
    pub fn new(
        base: &str,
        ca_pem: &[u8],
        field: &str,
        label: &'static str,
        observer: Arc<dyn CallObserver>,
        http: HttpClientBuilder,
    ) -> Result<Self> {
        Self::with_timeout(base, ca_pem, field, label, observer, http, REQUEST_TIMEOUT)
    }

    /// [`Rest::new`] with a shorter request deadline than [`REQUEST_TIMEOUT`] (a token endpoint answers fast).
    pub fn with_timeout(
        base: &str,
        ca_pem: &[u8],
        field: &str,
        label: &'static str,
        observer: Arc<dyn CallObserver>,
        http: HttpClientBuilder,
        timeout: Duration,
    ) -> Result<Self> {
        let base = parse_base(base, field)?;
        let tls = tls_config(ca_pem, field)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("syncret/", env!("CARGO_PKG_VERSION"))),
        );
        let http = http
            .tls(tls)
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            .no_redirects()
            .default_headers(headers)
            .limits(Limits {
                bytes: MAX_BODY,
                ..Limits::default()
            })
            .build()
            .map_err(|e| e.into_provider(field, "building the HTTP client"))?;
        Ok(Self {
            http,
            base,
            label,
            observer,
            timeout,
            field: field.to_string(),
            throttled_until: Mutex::new(None),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` with `segments` appended (each percent-encoded, `/` included) and `query` set.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// A request builder (add headers and a body, then [`Rest::send`]).
    pub fn request(&self, method: Method, url: Url) -> Request<'_> {
        self.http.request(method, url)
    }

    /// One call: `segments` and `query` on the base URL, `headers` (the credential among them), an optional JSON
    /// body; sent with [`Rest::send`].
    pub async fn call(
        &self,
        call: &'static str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        headers: HeaderMap,
        body: Option<&serde_json::Value>,
    ) -> Result<Response> {
        let mut req = self.request(method, self.url(segments, query)).headers(headers);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(call, req).await
    }

    /// Sends one request as call `call` (the metric label) and reads the answer through the cap. `429` (and a
    /// `503` with `Retry-After`) is `Throttled`; every other status is returned for the caller to map.
    pub async fn send(&self, call: &'static str, req: Request<'_>) -> Result<Response> {
        if let Some(wait) = self.throttled_for() {
            return Err(ProviderError::Throttled {
                retry_after: Some(wait),
            });
        }
        let res = observed(&self.observer, self.label, call, self.exchange(call, req)).await;
        if let Err(ProviderError::Throttled {
            retry_after: Some(wait),
        }) = &res
        {
            self.throttle(*wait);
        }
        res
    }

    async fn exchange(&self, call: &'static str, req: Request<'_>) -> Result<Response> {
        let resp = req.send().await.map_err(|e| match e {
            HttpError::Body(_) => too_large(call),
            HttpError::Timeout(_) => ProviderError::Transport(format!(
                "{call}: no complete answer within {}",
                syncret_crds::duration::format(self.timeout)
            )),
            other => other.into_provider(&self.field, call),
        })?;
        let throttled = resp.status == StatusCode::TOO_MANY_REQUESTS
            || (resp.status == StatusCode::SERVICE_UNAVAILABLE
                && resp.headers.contains_key(reqwest::header::RETRY_AFTER));
        if throttled {
            let wait = retry_after(&resp.headers, chrono::Utc::now()).unwrap_or(DEFAULT_RETRY_AFTER);
            return Err(ProviderError::Throttled {
                retry_after: Some(wait),
            });
        }
        Ok(Response {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        })
    }

    /// How much longer calls are held back, if they are.
    fn throttled_for(&self) -> Option<Duration> {
        let mut until = self.throttled_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match *until {
            Some(t) if t > now => Some(t.saturating_duration_since(now).max(Duration::from_secs(1))),
            Some(_) => {
                *until = None;
                None
            }
            None => None,
        }
    }

    fn throttle(&self, wait: Duration) {
        let wait = wait.min(MAX_RETRY_AFTER);
        if let Some(t) = Instant::now().checked_add(wait) {
            let mut until = self.throttled_until.lock().unwrap_or_else(|e| e.into_inner());
            *until = Some(until.map_or(t, |u| u.max(t)));
        }
    }
}

/// A header value that is never printed (`Debug` of the request redacts it).
pub fn secret_header(value: &str, field: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value.trim()).map_err(|_| {
        ProviderError::invalid_config(
            field,
            "the credential is not a valid HTTP header value (control characters?)",
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn too_large(call: &str) -> ProviderError {
    ProviderError::Transport(format!("{call}: the answer is larger than {} MiB", MAX_BODY >> 20))
}

fn parse_base(base: &str, field: &str) -> Result<Url> {
    let url = Url::parse(base.trim())
        .map_err(|e| ProviderError::invalid_config(field, format!("is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::invalid_config(
            field,
            "must be an http:// or https:// URL",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ProviderError::invalid_config(field, "has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ProviderError::invalid_config(field, "must not carry credentials"));
    }
    Ok(url)
}

/// A store's CA bundle in PEM: `caBundle` (a `format: byte` field) and/or `caProvider`; empty: the system roots.
pub async fn ca_bundle(
    creds: &crate::credentials::Credentials,
    inline: Option<&syncret_crds::meta::Base64Data>,
    provider: Option<&syncret_crds::meta::CAProvider>,
    base: &str,
) -> Result<Vec<u8>> {
    let inline = inline
        .map(|b| b.decode())
        .transpose()
        .map_err(|_| ProviderError::invalid_config(format!("{base}.caBundle"), "is not valid base64"))?;
    creds.ca_bundle(inline.as_deref(), provider, base).await
}

/// PEM certificates from a `caBundle` that may be PEM or base64-encoded PEM (ESO accepts both).
pub fn pem_or_base64(bundle: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    if bundle.windows(5).any(|w| w == b"-----") {
        return bundle.to_vec();
    }
    let text: Vec<u8> = bundle.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&text)
        .unwrap_or_else(|_| bundle.to_vec())
}

/// rustls with *ring*: the given PEM roots, or the platform verifier when there are none.
fn tls_config(ca_pem: &[u8], field: &str) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProviderError::Transport(format!("TLS setup: {e}")))?;
    if ca_pem.iter().all(u8::is_ascii_whitespace) {
        let verifier = rustls_platform_verifier::Verifier::new(provider)
            .map_err(|e| ProviderError::Transport(format!("TLS setup (system roots): {e}")))?;
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth());
    }
    let field = format!("{field} CA bundle");
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

    /// A client builder without egress rules (these tests' servers are on loopback).
    fn open() -> HttpClientBuilder {
        HttpClientBuilder::new(crate::net::egress::Egress::unrestricted(), Default::default())
    }

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_is_read_and_capped() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after(&headers("7"), now), Some(Duration::from_secs(7)));
        // The hostile value of the reconcile-runtime issue: u64::MAX seconds.
        assert_eq!(
            retry_after(&headers("18446744073709551615"), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            retry_after(&headers("Thu, 01 Jan 2026 00:00:42 GMT"), now),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            retry_after(&headers("Fri, 31 Dec 9999 23:59:59 GMT"), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            retry_after(&headers("Wed, 01 Jan 2025 00:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn provider_messages_are_short_single_lines() {
        assert_eq!(
            provider_message(br#"{"messages":["Invalid auth token","try again"],"success":false}"#).as_deref(),
            Some("Invalid auth token; try again")
        );
        assert_eq!(
            provider_message(br#"{"message":"line\nbreak"}"#).as_deref(),
            Some("line break")
        );
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(5000));
        assert_eq!(provider_message(long.as_bytes()).map(|m| m.len()), Some(MAX_MESSAGE));
        assert_eq!(provider_message(b"<html>"), None);
    }

    #[test]
    fn urls_encode_each_segment() {
        let rest = Rest::new(
            "https://gitlab.example/api/v4/",
            b"",
            "spec.provider.gitlab.url",
            "GitLab",
            Arc::new(crate::NoopObserver),
            open(),
        )
        .unwrap();
        assert_eq!(
            rest.url(
                &["projects", "group/app", "variables", "A B"],
                &[("filter[environment_scope]", "prod")]
            )
            .as_str(),
            "https://gitlab.example/api/v4/projects/group%2Fapp/variables/A%20B?filter%5Benvironment_scope%5D=prod"
        );
        let e = Rest::new(
            "ftp://x",
            b"",
            "spec.provider.x.url",
            "X",
            Arc::new(crate::NoopObserver),
            open(),
        )
        .err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("spec.provider.x.url: must be an http:// or https:// URL")
        );
    }

    #[test]
    fn ca_bundles_may_be_base64() {
        use base64::Engine as _;
        let pem = b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_or_base64(pem), pem.to_vec());
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(pem_or_base64(b64.as_bytes()), pem.to_vec());
    }

    /// A hostile server on loopback: answers every connection with `reply` (then, with `trickle`, 1 MiB chunks
    /// forever) and never closes; counts connections.
    async fn hostile(reply: Vec<u8>, trickle: bool) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                    let chunk = format!("100000\r\n{}\r\n", "x".repeat(1 << 20));
                    while trickle && stream.write_all(chunk.as_bytes()).await.is_ok() {}
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                });
            }
        });
        (origin, connections)
    }

    fn client(origin: &str, timeout: Duration) -> Rest {
        Rest::with_timeout(origin, b"", "f", "X", Arc::new(crate::NoopObserver), open(), timeout).unwrap()
    }

    async fn get(rest: &Rest) -> Result<Response> {
        rest.send("Get", rest.request(Method::GET, rest.url(&["x"], &[]))).await
    }

    #[tokio::test]
    async fn hostile_answers_are_bounded() {
        let long = Duration::from_secs(30);
        let short = Duration::from_millis(300);
        let (huge, _) = hostile(
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n".to_vec(),
            false,
        )
        .await;
        let e = get(&client(&huge, long)).await.unwrap_err().to_string();
        assert_eq!(e, "Get: the answer is larger than 16 MiB");
        let (endless, _) = hostile(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(), true).await;
        let e = get(&client(&endless, long)).await.unwrap_err().to_string();
        assert_eq!(e, "Get: the answer is larger than 16 MiB");
        let (silent, _) = hostile(Vec::new(), false).await;
        let e = get(&client(&silent, short)).await.unwrap_err().to_string();
        assert_eq!(e, "Get: no complete answer within 300ms");
        let (slow_body, _) = hostile(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc".to_vec(), false).await;
        let e = get(&client(&slow_body, short)).await.unwrap_err().to_string();
        assert_eq!(
            e, "Get: no complete answer within 300ms",
            "the deadline covers the body"
        );
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (target, hits) = hostile(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(), false).await;
        let reply = format!("HTTP/1.1 302 Found\r\nlocation: {target}/steal\r\ncontent-length: 0\r\n\r\n");
        let (redirecting, _) = hostile(reply.into_bytes(), false).await;
        let resp = get(&client(&redirecting, Duration::from_secs(5))).await.unwrap();
        assert_eq!(resp.status, StatusCode::FOUND);
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the credential never went elsewhere"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_client_holds_calls_back() {
        let rest = Rest::new(
            "http://127.0.0.1:9/",
            b"",
            "f",
            "X",
            Arc::new(crate::NoopObserver),
            open(),
        )
        .unwrap();
        rest.throttle(Duration::from_secs(30));
        let e = rest
            .send("Get", rest.request(Method::GET, rest.url(&["x"], &[])))
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::Throttled { retry_after: Some(d) } if d <= Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(rest.throttled_for(), None);
        // Never more than the ceiling, whatever the server said.
        rest.throttle(Duration::MAX);
        assert!(rest.throttled_for().is_some_and(|d| d <= MAX_RETRY_AFTER));
    }
}
