//! The HTTP side: vaultrs's endpoint types (path, method, query and body of each Vault API call) sent through our
//! own `reqwest` client.
//!
//! vaultrs's own `VaultClient` is not used: it reads CA certificates only from files, takes its defaults from
//! `VAULT_ADDR`/`VAULT_TOKEN`/`VAULT_CACERT`/`VAULT_SKIP_VERIFY` in the operator's environment, panics on an
//! invalid address, cannot add arbitrary headers or track `X-Vault-Index`, drops `lease_duration` from most
//! answers, and its default TLS feature builds aws-lc-rs. Here:
//! - TLS is rustls with *ring* (as kube), roots from `caBundle`/`caProvider` (replacing the system roots, as ESO)
//!   or the platform verifier, and a client certificate (`tls.*SecretRef`, or the `cert` auth method's) from memory;
//! - every request carries `X-Vault-Request: true`, `spec.provider.vault.headers`, the namespace, and with
//!   `readYourWrites`/`forwardInconsistent` the last `X-Vault-Index` seen and `X-Vault-Inconsistent:
//!   forward-active-node` (both set, as ESO); a `412` (index not replicated yet) is retried briefly;
//! - the whole response envelope (`data`, `auth`, `lease_duration`, `lease_id`, `renewable`) is returned;
//! - errors carry Vault's `errors` list and the HTTP status, never a request or response body.
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rustify::endpoint::Endpoint;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ProviderError, Result};
use crate::net::http::{HttpClient, HttpClientBuilder, HttpError};
use crate::value::Unloggable;

const INDEX_HEADER: &str = "x-vault-index";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the server.
pub struct Options<'a> {
    pub server: &'a str,
    /// PEM roots; empty = the platform's.
    pub ca_pem: &'a [u8],
    /// PEM client certificate chain and key.
    pub identity: Option<(&'a [u8], &'a [u8])>,
    /// The field the client certificate comes from (for errors).
    pub identity_field: Option<&'a str>,
    pub headers: &'a std::collections::BTreeMap<String, String>,
    pub read_your_writes: bool,
    pub forward_inconsistent: bool,
    /// Field prefix for errors (`spec.provider.vault`).
    pub base: &'a str,
    /// The HTTP client to build on: the store's egress rules, the operator's answer budget.
    pub client: HttpClientBuilder,
}

/// One Vault server.
pub struct Http {
    client: HttpClient,
    /// `spec.provider.vault.server` (or openBao's): the field a refused connection names.
    server_field: String,
    /// `server/v1`.
    base: reqwest::Url,
    track_index: bool,
    index: Mutex<Option<HeaderValue>>,
}

/// A Vault response envelope.
#[derive(Deserialize, Debug)]
pub struct Envelope<T> {
    #[serde(default = "none")]
    pub data: Option<T>,
    #[serde(default)]
    pub auth: Option<AuthInfo>,
    #[serde(default)]
    pub lease_id: String,
    #[serde(default)]
    pub lease_duration: u64,
    #[serde(default)]
    pub renewable: bool,
}

fn none<T>() -> Option<T> {
    None
}

/// The `auth` block of a login or token renewal.
#[derive(Deserialize)]
pub struct AuthInfo {
    #[serde(deserialize_with = "unloggable")]
    pub client_token: Unloggable<String>,
    /// Names the token without being it (for `auth/token/lookup-accessor`, and to tell tokens apart).
    #[serde(default)]
    pub accessor: String,
    #[serde(default)]
    pub lease_duration: u64,
    #[serde(default)]
    pub renewable: bool,
}

impl std::fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthInfo")
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

fn unloggable<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Unloggable<String>, D::Error> {
    String::deserialize(d).map(Unloggable)
}

/// A failed call: the HTTP status (none for a transport failure) and what Vault said.
#[derive(Debug)]
pub struct CallError {
    pub status: Option<u16>,
    pub message: String,
    /// Set when the egress policy refused the connection: the store field that named the server.
    pub refused_field: Option<String>,
}

impl CallError {
    pub fn transport(message: impl Into<String>) -> Self {
        Self {
            status: None,
            message: message.into(),
            refused_field: None,
        }
    }

    /// The refusal by the egress policy, as the provider error naming the field, if that is what this is.
    pub fn refusal(&self) -> Option<ProviderError> {
        self.refused_field.as_ref().map(|field| ProviderError::Policy {
            field: field.clone(),
            message: self.message.clone(),
        })
    }
}

/// The `errors` of a Vault error body (anything else in the body is dropped: it could echo a value).
fn vault_errors(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let e: Errors = serde_json::from_slice(body).ok()?;
    (!e.errors.is_empty()).then(|| e.errors.join("; "))
}

/// The headers every request carries.
pub fn default_headers(
    custom: &std::collections::BTreeMap<String, String>,
    read_your_writes: bool,
    forward_inconsistent: bool,
    base: &str,
) -> Result<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert("x-vault-request", HeaderValue::from_static("true"));
    if read_your_writes && forward_inconsistent {
        h.insert("x-vault-inconsistent", HeaderValue::from_static("forward-active-node"));
    }
    for (k, v) in custom {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            ProviderError::invalid_config(format!("{base}.headers"), format!("invalid header name {k:?}"))
        })?;
        let value = HeaderValue::from_str(v).map_err(|_| {
            ProviderError::invalid_config(format!("{base}.headers"), format!("invalid value for header {k:?}"))
        })?;
        h.insert(name, value);
    }
    Ok(h)
}

/// `server` + `/v1`, checked.
pub fn api_base(server: &str, base: &str) -> Result<reqwest::Url> {
    let server = server.trim();
    let with_scheme = if server.contains("://") {
        server.to_string()
    } else {
        format!("https://{server}")
    };
    let mut url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| ProviderError::invalid_config(format!("{base}.server"), format!("invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ProviderError::invalid_config(
            format!("{base}.server"),
            "must be an http:// or https:// URL",
        ));
    }
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut segs = url
            .path_segments_mut()
            .map_err(|_| ProviderError::invalid_config(format!("{base}.server"), "must be an http(s) URL"))?;
        segs.pop_if_empty().push("v1");
    }
    Ok(url)
}

/// The URL of an endpoint path (`secret/data/app`, `/auth/approle/login`; vaultrs writes some with a leading
/// slash or even a tab) below `base`, each segment percent-encoded.
pub fn endpoint_url(base: &reqwest::Url, path: &str, query: Option<&str>) -> reqwest::Url {
    let mut url = base.clone();
    if let Ok(mut segs) = url.path_segments_mut() {
        let path = path.trim().trim_start_matches('/');
        segs.extend(path.split('/'));
    }
    url.set_query(query.filter(|q| !q.is_empty()));
    url
}

impl Http {
    pub fn new(o: Options<'_>) -> Result<Self> {
        let base = api_base(o.server, o.base)?;
        let headers = default_headers(o.headers, o.read_your_writes, o.forward_inconsistent, o.base)?;
        let identity = o.identity.map(|(cert_pem, key_pem)| crate::net::tls::Identity {
            cert_pem,
            key_pem,
            field: o.identity_field.unwrap_or(o.base),
        });
        let tls = crate::net::tls::client_config(o.ca_pem, identity, o.base)?;
        let client = o
            .client
            .tls(tls)
            .default_headers(headers)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::Transport(e.to_string()))?;
        Ok(Self {
            client,
            server_field: format!("{}.server", o.base),
            base,
            track_index: o.read_your_writes || o.forward_inconsistent,
            index: Mutex::new(None),
        })
    }

    /// Sends `endpoint` with `token` and `namespace`, and parses the answer's envelope with `data` as `T`.
    /// An empty answer (204) is an envelope without data.
    pub async fn call<E: Endpoint, T: DeserializeOwned>(
        &self,
        endpoint: &E,
        token: Option<&str>,
        namespace: Option<&str>,
    ) -> std::result::Result<Envelope<T>, CallError> {
        let body = self.send(endpoint, token, namespace).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Envelope {
                data: None,
                auth: None,
                lease_id: String::new(),
                lease_duration: 0,
                renewable: false,
            });
        }
        // Parsed within the JSON budget; the parse error names a position only (the body holds secret values).
        crate::net::body::json(&body, self.client.limits()).map_err(|e| {
            CallError::transport(format!(
                "unexpected answer from Vault for {}: {e}",
                endpoint.path().trim()
            ))
        })
    }

    /// Sends `endpoint` and returns the whole answer as JSON (`null` for an empty answer): ESO's `Raw` result of a
    /// VaultDynamicSecret.
    pub async fn call_value<E: Endpoint>(
        &self,
        endpoint: &E,
        token: Option<&str>,
        namespace: Option<&str>,
    ) -> std::result::Result<serde_json::Value, CallError> {
        let body = self.send(endpoint, token, namespace).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| {
            CallError::transport(format!(
                "unexpected answer from Vault for {} (line {}, column {})",
                endpoint.path().trim(),
                e.line(),
                e.column()
            ))
        })
    }

    async fn send<E: Endpoint>(
        &self,
        endpoint: &E,
        token: Option<&str>,
        namespace: Option<&str>,
    ) -> std::result::Result<bytes::Bytes, CallError> {
        let path = endpoint.path();
        let query = endpoint
            .query()
            .map_err(|_| CallError::transport("building the request query"))?;
        let body = endpoint
            .body()
            .map_err(|_| CallError::transport("building the request body"))?
            .unwrap_or_default();
        let method: reqwest::Method = endpoint.method().into();
        let url = endpoint_url(&self.base, &path, query.as_deref());
        let mut attempt = 0u32;
        loop {
            let mut req = self.client.request(method.clone(), url.clone());
            if let Some(t) = token.filter(|t| !t.is_empty()) {
                let mut v = HeaderValue::from_str(t)
                    .map_err(|_| CallError::transport("the token is not a valid header value"))?;
                v.set_sensitive(true);
                req = req.header("x-vault-token", v);
            }
            if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
                let v = HeaderValue::from_str(ns)
                    .map_err(|_| CallError::transport("the namespace is not a valid header value"))?;
                req = req.header("x-vault-namespace", v);
            }
            if self.track_index
                && let Some(index) = self.index.lock().unwrap_or_else(|e| e.into_inner()).clone()
            {
                req = req.header(INDEX_HEADER, index);
            }
            if !body.is_empty() {
                req = req.header("content-type", "application/json").body(body.clone());
            }
            let resp = req.send().await.map_err(|e| match e {
                HttpError::Denied(d) => CallError {
                    status: None,
                    message: d.to_string(),
                    refused_field: Some(self.server_field.clone()),
                },
                e => CallError::transport(format!("{} {}: {e}", method, url.path())),
            })?;
            let status = resp.status.as_u16();
            if self.track_index
                && let Some(index) = resp.headers.get(INDEX_HEADER)
            {
                *self.index.lock().unwrap_or_else(|e| e.into_inner()) = Some(index.clone());
            }
            let bytes = resp.body;
            if (200..300).contains(&status) {
                return Ok(bytes);
            }
            // 412: this node has not caught up with the X-Vault-Index we sent yet (Vault's client retries too).
            if status == 412 && self.track_index && attempt < 3 {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                continue;
            }
            let message = vault_errors(&bytes).unwrap_or_else(|| {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_string()
            });
            return Err(CallError {
                status: Some(status),
                message,
                refused_field: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::net::egress::Egress;

    #[test]
    fn urls() {
        let b = api_base("http://127.0.0.1:8200/", "b").unwrap();
        assert_eq!(b.as_str(), "http://127.0.0.1:8200/v1");
        let b2 = api_base("vault.example.com:8200", "b").unwrap();
        assert_eq!(b2.as_str(), "https://vault.example.com:8200/v1");
        let b3 = api_base("https://proxy/vault", "b").unwrap();
        assert_eq!(b3.as_str(), "https://proxy/vault/v1");
        assert_eq!(
            endpoint_url(&b, "secret/data/my app/x", Some("version=2")).as_str(),
            "http://127.0.0.1:8200/v1/secret/data/my%20app/x?version=2"
        );
        assert_eq!(
            endpoint_url(&b, "\t/auth/token/renew-self", None).as_str(),
            "http://127.0.0.1:8200/v1/auth/token/renew-self"
        );
        assert_eq!(
            endpoint_url(&b, "secret/metadata/", None).as_str(),
            "http://127.0.0.1:8200/v1/secret/metadata/"
        );
        assert!(matches!(
            api_base("ftp://x", "spec.provider.vault"),
            Err(ProviderError::InvalidConfig { field, .. }) if field == "spec.provider.vault.server"
        ));
        assert!(api_base("http://[::1", "b").is_err());
    }

    #[test]
    fn headers() {
        let custom: BTreeMap<String, String> = [("X-Custom".to_string(), "v".to_string())].into();
        let h = default_headers(&custom, true, true, "b").unwrap();
        assert_eq!(h["x-vault-request"], "true");
        assert_eq!(h["x-vault-inconsistent"], "forward-active-node");
        assert_eq!(h["x-custom"], "v");
        // ESO sends X-Vault-Inconsistent only with both flags.
        let h = default_headers(&BTreeMap::new(), false, true, "b").unwrap();
        assert!(!h.contains_key("x-vault-inconsistent"));
        let bad: BTreeMap<String, String> = [("bad header".to_string(), "v".to_string())].into();
        assert!(matches!(
            default_headers(&bad, false, false, "spec.provider.vault"),
            Err(ProviderError::InvalidConfig { field, .. }) if field == "spec.provider.vault.headers"
        ));
    }

    #[test]
    fn error_bodies_keep_only_vault_errors() {
        assert_eq!(
            vault_errors(br#"{"errors":["permission denied"],"data":{"password":"s3cr3t"}}"#).as_deref(),
            Some("permission denied")
        );
        assert_eq!(vault_errors(br#"{"errors":[]}"#), None);
        assert_eq!(vault_errors(b"<html>s3cr3t</html>"), None);
    }

    /// A one-port HTTP/1.1 server that answers with `script` in order and records each request head.
    async fn scripted(script: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = conn.read(&mut chunk).await else { break };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    buf.drain(..end + 4 + len);
                    log.lock().unwrap().push(head);
                    let (status, extra) = script.next().unwrap_or((500, ""));
                    let body = r#"{"data":{"ttl":5}}"#;
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(resp.as_bytes()).await.is_err() {
                        break;
                    }
                }
            }
        });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn requests_carry_headers_and_read_your_writes_echoes_the_index() {
        let (server, seen) = scripted(vec![
            (200, "x-vault-index: idx-1\r\n"),
            (412, ""),
            (200, "x-vault-index: idx-2\r\n"),
            (200, ""),
        ])
        .await;
        let custom: BTreeMap<String, String> = [("X-Team".to_string(), "blue".to_string())].into();
        let http = Http::new(Options {
            server: &server,
            ca_pem: b"",
            identity: None,
            identity_field: None,
            headers: &custom,
            read_your_writes: true,
            forward_inconsistent: true,
            base: "b",
            client: HttpClientBuilder::new(Egress::unrestricted(), crate::net::body::Budget::default()),
        })
        .unwrap();
        let req = vaultrs::api::token::requests::LookupTokenSelfRequest::builder()
            .build()
            .unwrap();
        for _ in 0..3 {
            let env: Envelope<serde_json::Value> = http.call(&req, Some("tok"), Some("ns1")).await.unwrap();
            assert_eq!(env.data.unwrap()["ttl"], 5);
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4, "three calls, one retried after 412");
        for head in &seen {
            assert!(head.starts_with("get /v1/auth/token/lookup-self "), "{head}");
            for h in [
                "x-vault-request: true",
                "x-vault-inconsistent: forward-active-node",
                "x-team: blue",
                "x-vault-token: tok",
                "x-vault-namespace: ns1",
            ] {
                assert!(head.contains(h), "{h} missing in {head}");
            }
        }
        let index = |h: &str| {
            h.lines()
                .find_map(|l| l.strip_prefix("x-vault-index: "))
                .map(str::to_string)
        };
        assert_eq!(index(&seen[0]), None);
        assert_eq!(index(&seen[1]).as_deref(), Some("idx-1"));
        assert_eq!(
            index(&seen[2]).as_deref(),
            Some("idx-1"),
            "the retry after 412 sends the same index"
        );
        assert_eq!(index(&seen[3]).as_deref(), Some("idx-2"));
    }

    #[tokio::test]
    async fn without_read_your_writes_no_index_is_sent_and_412_fails() {
        let (server, seen) = scripted(vec![(200, "x-vault-index: idx-1\r\n"), (412, "")]).await;
        let http = Http::new(Options {
            server: &server,
            ca_pem: b"",
            identity: None,
            identity_field: None,
            headers: &BTreeMap::new(),
            read_your_writes: false,
            forward_inconsistent: false,
            base: "b",
            client: HttpClientBuilder::new(Egress::unrestricted(), crate::net::body::Budget::default()),
        })
        .unwrap();
        let req = vaultrs::api::token::requests::LookupTokenSelfRequest::builder()
            .build()
            .unwrap();
        let _: Envelope<serde_json::Value> = http.call(&req, None, None).await.unwrap();
        let err = http.call::<_, serde_json::Value>(&req, None, None).await.unwrap_err();
        assert_eq!(err.status, Some(412));
        let seen = seen.lock().unwrap().clone();
        assert!(!seen[1].contains("x-vault-index") && !seen[1].contains("x-vault-token"));
        assert!(!seen[0].contains("x-vault-inconsistent"));
    }

    #[test]
    fn envelopes_parse_with_missing_fields() {
        let e: Envelope<serde_json::Value> = serde_json::from_str(r#"{"data":{"a":"b"},"lease_duration":60}"#).unwrap();
        assert_eq!(e.lease_duration, 60);
        assert_eq!(e.data.unwrap()["a"], "b");
        let e: Envelope<serde_json::Value> =
            serde_json::from_str(r#"{"data":null,"auth":{"client_token":"s.x","lease_duration":30,"renewable":true}}"#)
                .unwrap();
        let auth = e.auth.unwrap();
        assert_eq!(auth.client_token.0, "s.x");
        assert!(!format!("{auth:?}").contains("s.x"));
    }
}
