//! The HTTP client of the reqwest-based providers (webhook, Vault, the GCP token endpoints). It is the only way
//! those providers send a request, and it gives back only a bounded [`Response`]: the status, the headers and a
//! body read up to [`Limits::bytes`] — the streaming `reqwest::Response` never reaches provider code, so a new
//! call site cannot forget the cap. Each client also carries its store's [`Egress`] rules: names are checked when
//! resolved (every new connection), IP literals before each request and each redirect, and a restricted client
//! does not go through the environment's proxy (the proxy would resolve names itself, out of the policy's sight).
//! Errors never carry the URL (its query may hold a credential) nor any of the body.
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use super::body::{self, BodyError, Budget, Limits};
use super::egress::{Egress, EgressDenied};
use crate::error::{MAX_RETRY_AFTER, ProviderError};

/// How many redirects a request follows (reqwest's default).
const MAX_REDIRECTS: usize = 10;

/// Why a request failed. Never carries the URL or the body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Denied(#[from] EgressDenied),
    #[error("no answer within the timeout of {}", syncret_crds::duration::format(*.0))]
    Timeout(Duration),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("{0}")]
    Transport(String),
    #[error("building the HTTP client: {0}")]
    Build(String),
}

impl HttpError {
    /// As a provider error: a refusal by the egress policy names `field` (the store field that chose the
    /// endpoint); everything else is a transport failure, prefixed with `what` (the endpoint's role).
    pub fn into_provider(self, field: &str, what: &str) -> ProviderError {
        match self {
            HttpError::Denied(d) => ProviderError::Policy {
                field: field.to_string(),
                message: d.to_string(),
            },
            other => ProviderError::Transport(format!("{what}: {other}")),
        }
    }

    fn from_reqwest(e: reqwest::Error, timeout: Duration) -> Self {
        if let Some(denied) = super::egress::find_denied(&e) {
            return HttpError::Denied(denied);
        }
        if e.is_timeout() {
            return HttpError::Timeout(timeout);
        }
        HttpError::Transport(crate::error::error_chain(&e.without_url()))
    }
}

/// Builds an [`HttpClient`].
pub struct HttpClientBuilder {
    egress: Egress,
    budget: Budget,
    tls: Option<rustls::ClientConfig>,
    timeout: Duration,
    connect_timeout: Duration,
    headers: HeaderMap,
    limits: Limits,
    follow_redirects: bool,
}

impl HttpClientBuilder {
    /// A client for endpoints under `egress` whose answers are charged to `budget` (the operator's, from
    /// [`crate::ProviderContext::http_client`]), with a 30 s request timeout and the default [`Limits`].
    pub fn new(egress: Egress, budget: Budget) -> Self {
        Self {
            egress,
            budget,
            tls: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            headers: HeaderMap::new(),
            limits: Limits::default(),
            follow_redirects: true,
        }
    }

    /// Never follow a redirect (a `3xx` is returned as the answer): for clients whose credential headers must not
    /// follow a redirect to another host.
    pub fn no_redirects(mut self) -> Self {
        self.follow_redirects = false;
        self
    }

    /// The TLS configuration (default: the platform's roots, see [`super::tls::client_config`]).
    pub fn tls(mut self, tls: rustls::ClientConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The whole request, response body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Headers every request carries.
    pub fn default_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn build(self) -> Result<HttpClient, HttpError> {
        let tls = match self.tls {
            Some(t) => t,
            None => super::tls::client_config(b"", None, "").map_err(|e| HttpError::Build(e.to_string()))?,
        };
        let redirect_egress = self.egress.clone();
        let follow = self.follow_redirects;
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .default_headers(self.headers)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if !follow {
                    return attempt.stop();
                }
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"));
                }
                let host = attempt.url().host_str().unwrap_or_default().to_string();
                match redirect_egress.check_host(&host) {
                    Ok(()) => attempt.follow(),
                    Err(denied) => attempt.error(denied),
                }
            }));
        if self.egress.is_restricted() {
            b = b.no_proxy().dns_resolver(std::sync::Arc::new(self.egress.resolver()));
        }
        let inner = b.build().map_err(|e| HttpError::Build(crate::error::error_chain(&e)))?;
        Ok(HttpClient {
            inner,
            egress: self.egress,
            budget: self.budget,
            timeout: self.timeout,
            limits: self.limits,
        })
    }
}

/// See the module docs. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    egress: Egress,
    budget: Budget,
    timeout: Duration,
    limits: Limits,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("restricted", &self.egress.is_restricted())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn request(&self, method: reqwest::Method, url: reqwest::Url) -> Request<'_> {
        Request {
            client: self,
            host: url.host_str().unwrap_or_default().to_string(),
            builder: self.inner.request(method, url),
            timeout: self.timeout,
        }
    }

    pub fn get(&self, url: reqwest::Url) -> Request<'_> {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: reqwest::Url) -> Request<'_> {
        self.request(reqwest::Method::POST, url)
    }

    /// The limits responses are read with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The egress rules of this client (for connections made without HTTP, e.g. a TCP dial).
    pub fn egress(&self) -> &Egress {
        &self.egress
    }
}

/// One request being built; [`Request::send`] is the only way to send it.
pub struct Request<'a> {
    client: &'a HttpClient,
    host: String,
    builder: reqwest::RequestBuilder,
    timeout: Duration,
}

impl Request<'_> {
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        reqwest::header::HeaderName: TryFrom<K>,
        <reqwest::header::HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        reqwest::header::HeaderValue: TryFrom<V>,
        <reqwest::header::HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.builder = self.builder.headers(headers);
        self
    }

    /// `Authorization: Bearer <token>`, marked sensitive.
    pub fn bearer_auth(mut self, token: &str) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }

    pub fn body(mut self, body: impl Into<reqwest::Body>) -> Self {
        self.builder = self.builder.body(body);
        self
    }

    pub fn form<T: serde::Serialize + ?Sized>(mut self, form: &T) -> Self {
        self.builder = self.builder.form(form);
        self
    }

    pub fn json<T: serde::Serialize + ?Sized>(mut self, json: &T) -> Self {
        self.builder = self.builder.json(json);
        self
    }

    /// A shorter timeout for this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(self.client.timeout);
        self.builder = self.builder.timeout(self.timeout);
        self
    }

    /// Sends the request and reads the answer, whatever its status, within the client's limits.
    pub async fn send(self) -> Result<Response, HttpError> {
        let limits = self.client.limits;
        let timeout = self.timeout;
        self.client.egress.check_host(&self.host)?;
        let mut resp = self
            .builder
            .send()
            .await
            .map_err(|e| HttpError::from_reqwest(e, timeout))?;
        body::check_length(resp.content_length(), limits.bytes)?;
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut buf = body::Buffer::new(limits.bytes, &self.client.budget);
        while let Some(chunk) = resp.chunk().await.map_err(|e| HttpError::from_reqwest(e, timeout))? {
            buf.append(chunk)?;
        }
        Ok(Response {
            status,
            headers,
            body: buf.finish(),
            limits,
        })
    }
}

/// A complete answer: status, headers and the (bounded) body.
#[derive(Debug)]
pub struct Response {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    limits: Limits,
}

impl Response {
    /// The body parsed as JSON within the client's value budget.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, BodyError> {
        body::json(&self.body, self.limits)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Retry-After` in seconds or as an HTTP date, capped at [`MAX_RETRY_AFTER`].
    pub fn retry_after(&self) -> Option<Duration> {
        let v = self.headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
        retry_after(v, chrono::Utc::now())
    }
}

/// Parses a `Retry-After` value (delay-seconds or an HTTP date) at `now`, capped at [`MAX_RETRY_AFTER`]; any
/// number of digits is accepted and clamped, never overflowing.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc).signed_duration_since(now);
    Some(wait.to_std().unwrap_or_default().min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with `head` (status line and headers) and an empty body.
    async fn answering(head: &'static str) -> reqwest::Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {
                        let resp = format!("{head}content-length: 0\r\n\r\n");
                        if conn.write_all(resp.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        reqwest::Url::parse(&format!("http://{addr}/x")).unwrap()
    }

    /// Loopback allowed (the test server), everything else by the default rules.
    fn loopback_only() -> Egress {
        Egress::restricted(Arc::new(super::super::egress::EgressPolicy {
            allow: super::super::egress::parse_nets(&["127.0.0.0/8".into()]).unwrap(),
            ..Default::default()
        }))
    }

    #[tokio::test]
    async fn redirects_are_checked_or_not_followed() {
        let url = answering("HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\n").await;
        let c = HttpClientBuilder::new(loopback_only(), Budget::default())
            .build()
            .unwrap();
        let err = c.get(url.clone()).send().await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Denied(d) if d.addr.to_string() == "169.254.169.254"),
            "{err}"
        );
        let c = HttpClientBuilder::new(loopback_only(), Budget::default())
            .no_redirects()
            .build()
            .unwrap();
        assert_eq!(c.get(url).send().await.unwrap().status, reqwest::StatusCode::FOUND);
    }

    #[tokio::test]
    async fn literal_addresses_are_refused_before_any_request() {
        let url = answering("HTTP/1.1 200 OK\r\n").await;
        let restricted = Egress::restricted(Arc::new(super::super::egress::EgressPolicy::default()));
        let c = HttpClientBuilder::new(restricted, Budget::default()).build().unwrap();
        let err = c.get(url.clone()).send().await.unwrap_err();
        assert!(matches!(err, HttpError::Denied(_)), "{err}");
        let e = err.into_provider("spec.provider.webhook.url", "failed to call endpoint");
        assert_eq!(e.reason(), "RefusedByPolicy");
        let c = HttpClientBuilder::new(Egress::unrestricted(), Budget::default())
            .build()
            .unwrap();
        assert_eq!(c.get(url).send().await.unwrap().status, reqwest::StatusCode::OK);
    }

    #[test]
    fn retry_after_is_bounded_whatever_the_server_says() {
        let now = chrono::Utc::now();
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("18446744073709551615", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("99999999999999999999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("soon", now), None);
        let later = (now + chrono::Duration::seconds(120)).to_rfc2822();
        let got = retry_after(&later, now).unwrap();
        assert!(
            got <= Duration::from_secs(120) && got >= Duration::from_secs(119),
            "{got:?}"
        );
        assert_eq!(retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now), Some(Duration::ZERO));
    }
}
