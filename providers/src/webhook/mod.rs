//! `spec.provider.webhook`: a templated HTTP call per secret, as ESO's webhook provider (`providers/v1/webhook`).
//!
//! - `url`, `headers`, `body` and `result.jsonPath` are Go templates, rendered by the operator's engine (through
//!   [`crate::TemplateRenderer`] in the [`ProviderContext`]) over ESO's data: `.remoteRef.key`, `.version`,
//!   `.property`, `.namespace` for reads (`.remoteRef.remoteKey`, `.secretKey` and `.remoteRef.<remoteKey>` = the
//!   value for pushes) and `.<name>.<key>` for every key of each `secrets[]` Secret. In the URL the `remoteRef` values are
//!   query-escaped (Go's `url.QueryEscape`), elsewhere they are raw. A string without `{{` is used as is.
//! - The response: the body, or the value `result.jsonPath` selects in it ([`response`]). 404 is `NotFound`
//!   (deletionPolicy), 401 `Auth` and 403 `AccessDenied` (both rebuild the client, re-reading `secrets`), 429
//!   `Throttled`; anything else outside 2xx is `endpoint gave error <status>`.
//! - `remoteRef.property` is never applied to the answer (ESO does not either): it is template data only, so the
//!   provider asks for it in [`RemoteKey::property`] ([`Provider::takes_property`]).
//! - `secrets[]` are read once per client (store generation) and must carry `external-secrets.io/type: webhook`.
//! - PushSecret: `method` (default POST) to `url` with `body` (default: the value itself); delete is a `DELETE` to
//!   `url` (404 is fine); exists is a read of the remote key (404: no).
//! - Store validation connects to the URL's host and port (no request), as ESO does; a templated host: Unknown.
//! - `auth.ntlm` is refused as `Unsupported`: there is no maintained NTLM crate for Rust.
pub mod http;
pub mod response;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use syncret_crds::labels::{LABEL_TYPE, LABEL_TYPE_WEBHOOK_VALUE};
use syncret_crds::provider::webhook::WebhookProvider as Spec;

use crate::client::{CallObserver, Capabilities, PushRef, RemoteKey, SecretsClient, Validation, observed};
use crate::credentials::{Credentials, StoreScope};
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo, TemplateData, TemplateRenderer};
use crate::value::{RemoteValue, SecretValue};

const LABEL: &str = "Webhook";
const CALL: &str = "HTTPRequest";
const BASE: &str = "spec.provider.webhook";
/// Request timeout when the store sets none (ESO's Go client has none at all).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long store validation waits for a TCP connection (ESO's value).
const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// The factory.
pub struct Webhook;

fn spec(store: &StoreInfo) -> Result<&Spec> {
    store
        .spec
        .provider
        .webhook
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

/// Whether any template may use `.remoteRef.namespace` (then a ClusterSecretStore needs a client per namespace).
fn mentions_namespace(s: &Spec) -> bool {
    [s.url.as_str(), s.body.as_str(), s.result.json_path.as_str()]
        .into_iter()
        .chain(s.headers.values().map(String::as_str))
        .any(|t| t.contains("namespace"))
}

#[async_trait]
impl Provider for Webhook {
    fn key(&self) -> &'static str {
        "webhook"
    }

    /// A ClusterSecretStore resolves per ExternalSecret namespace when a Secret it reads has no namespace, or when a
    /// template may print `.remoteRef.namespace` (the namespace of the ExternalSecret).
    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        let no_ns = |ns: &Option<String>| ns.as_deref().is_none_or(str::is_empty);
        store.scope == StoreScope::ClusterSecretStore
            && (s.secrets.iter().any(|x| no_ns(&x.secret_ref.namespace))
                || s.ca_provider.as_ref().is_some_and(|p| no_ns(&p.namespace))
                || mentions_namespace(s))
    }

    fn takes_property(&self) -> bool {
        true
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        if spec.auth.as_ref().is_some_and(|a| a.ntlm.is_some()) {
            return Err(ProviderError::Unsupported(format!(
                "{BASE}.auth.ntlm: NTLM authentication is not supported by syncret"
            )));
        }
        let method = method_or(&spec.method, "GET")?;
        let push_method = method_or(&spec.method, "POST")?;
        for name in spec.headers.keys() {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ProviderError::invalid_config(format!("{BASE}.headers"), format!("invalid header name {name:?}"))
            })?;
        }
        let timeout = match spec.timeout.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => syncret_crds::duration::parse(t)
                .map_err(|e| ProviderError::invalid_config(format!("{BASE}.timeout"), e.to_string()))?,
            None => DEFAULT_TIMEOUT,
        };
        let creds = ctx.credentials(store);
        let inline_ca = spec
            .ca_bundle
            .as_ref()
            .map(|b| b.decode())
            .transpose()
            .map_err(|_| ProviderError::invalid_config(format!("{BASE}.caBundle"), "is not valid base64"))?;
        let ca = creds
            .ca_bundle(inline_ca.as_deref(), spec.ca_provider.as_ref(), BASE)
            .await?;
        let http = http::Http::new(&ca, timeout, ctx.http_client(store), BASE)?;
        let secrets = read_secrets(&spec, &creds).await?;
        let namespace = match store.scope {
            StoreScope::SecretStore => store.namespace.clone(),
            StoreScope::ClusterSecretStore => ctx.referent_namespace.clone(),
        }
        .unwrap_or_default();
        Ok(Arc::new(WebhookClient {
            spec,
            method,
            push_method,
            http,
            secrets,
            namespace,
            templates: ctx.templates.clone(),
            observer: ctx.observer.clone(),
        }))
    }
}

/// `spec.method`, or `default` when it is empty. Go sends the method as written, so it is not upper-cased.
fn method_or(configured: &str, default: &str) -> Result<reqwest::Method> {
    let m = if configured.is_empty() { default } else { configured };
    reqwest::Method::from_bytes(m.as_bytes())
        .map_err(|_| ProviderError::invalid_config(format!("{BASE}.method"), format!("invalid HTTP method {m:?}")))
}

/// Every key of every `secrets[]` Secret, by its template name. Each Secret must carry ESO's webhook label.
async fn read_secrets(spec: &Spec, creds: &Credentials) -> Result<TemplateData> {
    let mut out = TemplateData::new();
    for (i, s) in spec.secrets.iter().enumerate() {
        let field = format!("{BASE}.secrets[{i}].secretRef");
        if s.secret_ref.name.is_empty() {
            return Err(ProviderError::invalid_config(format!("{field}.name"), "must be set"));
        }
        let ns = creds.namespace_for(s.secret_ref.namespace.as_deref(), &field)?;
        let secret = creds.get_secret(&ns, &s.secret_ref.name, &field).await?;
        let label = secret.metadata.labels.as_ref().and_then(|l| l.get(LABEL_TYPE));
        match label.map(String::as_str) {
            Some(LABEL_TYPE_WEBHOOK_VALUE) => {}
            Some(_) => {
                return Err(ProviderError::Credentials(format!(
                    "{field}: Secret {ns}/{}: secret type is not 'webhook' (label {LABEL_TYPE})",
                    s.secret_ref.name
                )));
            }
            None => {
                return Err(ProviderError::Credentials(format!(
                    "{field}: Secret {ns}/{} does not contain needed label '{LABEL_TYPE}: webhook'. Update secret \
                     label to use it with webhook",
                    s.secret_ref.name
                )));
            }
        }
        let values = out.entry(s.name.clone()).or_default();
        for (k, v) in secret.data.unwrap_or_default() {
            values.insert(k, SecretValue::from(v.0));
        }
    }
    Ok(out)
}

/// Go's `url.QueryEscape` (on bytes, as Go strings are): all but `A-Z a-z 0-9 - _ . ~` percent-encoded, space as `+`.
fn escape_value(v: &SecretValue) -> SecretValue {
    let mut out = String::with_capacity(v.len());
    for b in v.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(*b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    SecretValue::from(out)
}

/// A prepared request: what the templates rendered to.
struct Request {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: HeaderMap,
    body: Vec<u8>,
}

struct WebhookClient {
    spec: Spec,
    method: reqwest::Method,
    push_method: reqwest::Method,
    http: http::Http,
    secrets: TemplateData,
    /// `.remoteRef.namespace`: the store's namespace, or for a ClusterSecretStore the ExternalSecret's.
    namespace: String,
    templates: Option<Arc<dyn TemplateRenderer>>,
    observer: Arc<dyn CallObserver>,
}

impl WebhookClient {
    /// ESO's template data: `remoteRef` (values query-escaped when `escape`) and the `secrets[]` maps.
    fn data(&self, remote_ref: BTreeMap<String, SecretValue>, escape: bool) -> TemplateData {
        let remote_ref = if escape {
            remote_ref.into_iter().map(|(k, v)| (k, escape_value(&v))).collect()
        } else {
            remote_ref
        };
        let mut data = TemplateData::new();
        data.insert("remoteRef".into(), remote_ref);
        for (name, values) in &self.secrets {
            let entry = data.entry(name.clone()).or_default();
            entry.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        data
    }

    fn read_ref(&self, key: &RemoteKey) -> BTreeMap<String, SecretValue> {
        let mut r = BTreeMap::new();
        r.insert("key".into(), SecretValue::from(key.key.as_str()));
        r.insert(
            "version".into(),
            SecretValue::from(key.version.clone().unwrap_or_default()),
        );
        r.insert(
            "property".into(),
            SecretValue::from(key.property.clone().unwrap_or_default()),
        );
        r
    }

    /// Renders one template (`field` names it for errors); text without `{{` is used as is.
    fn render(&self, field: &str, template: &str, data: &TemplateData) -> Result<SecretValue> {
        if !template.contains("{{") {
            return Ok(SecretValue::from(template));
        }
        let Some(engine) = &self.templates else {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.{field}"),
                "is a template, but no template engine is wired into this client",
            ));
        };
        engine
            .render(field, template, data)
            .map_err(|e| ProviderError::invalid_config(format!("{BASE}.{field}"), e))
    }

    /// The request for `remote_ref` (raw values; escaped for the URL here), with `body` rendered unless given.
    fn request(
        &self,
        method: reqwest::Method,
        remote_ref: BTreeMap<String, SecretValue>,
        body: Option<SecretValue>,
    ) -> Result<Request> {
        let escaped = self.data(remote_ref.clone(), true);
        let raw = self.data(remote_ref, false);
        let url = self.render("url", &self.spec.url, &escaped)?;
        let url = url
            .as_str()
            .ok_or_else(|| ProviderError::invalid_config(format!("{BASE}.url"), "the rendered URL is not UTF-8"))?;
        // The URL is not quoted in errors: it may carry a credential.
        let url = reqwest::Url::parse(url.trim()).map_err(|e| {
            ProviderError::invalid_config(format!("{BASE}.url"), format!("the rendered URL is not valid: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.url"),
                "the rendered URL is not an http:// or https:// URL",
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, template) in &self.spec.headers {
            let field = format!("headers.{name}");
            let value = self.render(&field, template, &raw)?;
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ProviderError::invalid_config(format!("{BASE}.headers"), format!("invalid header name {name:?}"))
            })?;
            let mut value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
                ProviderError::invalid_config(
                    format!("{BASE}.{field}"),
                    "the rendered value is not a valid header value",
                )
            })?;
            value.set_sensitive(true);
            headers.append(header, value);
        }
        let body = match body {
            Some(b) => b,
            None => self.render("body", &self.spec.body, &raw)?,
        };
        Ok(Request {
            method,
            url,
            headers,
            body: body.to_vec(),
        })
    }

    /// Sends one request. Counted as a failed call only when no answer came (ESO's metric does the same).
    async fn call(&self, req: Request) -> Result<http::Response> {
        observed(
            &self.observer,
            LABEL,
            CALL,
            self.http.send(req.method, req.url, req.headers, req.body),
        )
        .await
    }

    /// Reads `key`: the selected value of a 2xx answer. `remote_ref` adds template data (PushSecret's exists).
    async fn fetch(&self, key: &RemoteKey, remote_ref: BTreeMap<String, SecretValue>) -> Result<SecretValue> {
        let mut remote_ref = self
            .read_ref(key)
            .into_iter()
            .chain(remote_ref)
            .collect::<BTreeMap<_, _>>();
        remote_ref.insert("namespace".into(), SecretValue::from(self.namespace.as_str()));
        let req = self.request(self.method.clone(), remote_ref.clone(), None)?;
        let resp = self.call(req).await?;
        read_status(&resp, &key.key)?;
        let raw = self.data(remote_ref, false);
        let json_path = self.render("result.jsonPath", &self.spec.result.json_path, &raw)?;
        let json_path = json_path.as_str().ok_or_else(|| {
            ProviderError::invalid_config(format!("{BASE}.result.jsonPath"), "the rendered path is not UTF-8")
        })?;
        response::select(&key.key, resp.body.as_bytes(), json_path.trim())
    }
}

/// PushSecret's template data: `.remoteRef.remoteKey` and `.remoteRef.secretKey` (`match.secretKey`; empty when
/// the whole Secret is pushed, where ESO leaves it out and its templates print `<no value>`).
fn push_ref_data(to: &PushRef) -> BTreeMap<String, SecretValue> {
    let mut r = BTreeMap::new();
    r.insert("remoteKey".to_string(), SecretValue::from(to.remote_key.as_str()));
    r.insert(
        "secretKey".to_string(),
        SecretValue::from(to.secret_key.clone().unwrap_or_default()),
    );
    r
}

/// A read's status as a result: 2xx is fine, 404 `NotFound` (drives deletionPolicy), and so on (see module docs).
fn read_status(resp: &http::Response, key: &str) -> Result<()> {
    let status = resp.status;
    if status.is_success() {
        return Ok(());
    }
    Err(match status.as_u16() {
        404 => ProviderError::NotFound { key: key.to_string() },
        401 => ProviderError::Auth(resp.status_error()),
        403 => ProviderError::AccessDenied(resp.status_error()),
        429 => ProviderError::Throttled {
            retry_after: resp.retry_after,
        },
        304 => ProviderError::Transport("endpoint answered 304 Not Modified".into()),
        _ => ProviderError::Transport(resp.status_error()),
    })
}

#[async_trait]
impl SecretsClient for WebhookClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        // `metadataPolicy` has no meaning here (ESO ignores it too): the same call.
        Ok(RemoteValue::Bytes(self.fetch(key, BTreeMap::new()).await?))
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        if to.remote_key.is_empty() {
            return Err(ProviderError::invalid_config(
                "remoteRef.remoteKey",
                "remote key must be defined",
            ));
        }
        let mut remote_ref = push_ref_data(to);
        remote_ref.insert(to.remote_key.clone(), value.clone());
        // No body template: the value itself (ESO renders `{{ .remoteRef.<remoteKey> }}`, the same bytes).
        let body = self.spec.body.is_empty().then(|| value.clone());
        let req = self.request(self.push_method.clone(), remote_ref, body)?;
        let resp = self.call(req).await?;
        match resp.status.as_u16() {
            200..=299 => Ok(()),
            401 => Err(ProviderError::Auth(resp.status_error())),
            403 => Err(ProviderError::AccessDenied(resp.status_error())),
            429 => Err(ProviderError::Throttled {
                retry_after: resp.retry_after,
            }),
            _ => Err(ProviderError::Transport(format!(
                "failed to push webhook data: {}",
                resp.status_error()
            ))),
        }
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let req = self.request(reqwest::Method::DELETE, push_ref_data(at), Some(SecretValue::default()))?;
        let resp = self.call(req).await?;
        match resp.status.as_u16() {
            200..=299 | 404 => Ok(()),
            401 => Err(ProviderError::Auth(resp.status_error())),
            403 => Err(ProviderError::AccessDenied(resp.status_error())),
            _ => Err(ProviderError::Transport(format!(
                "failed to delete secret: {}",
                resp.status_error()
            ))),
        }
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        // ESO reads the remote key as `.remoteRef.key`; `.remoteRef.remoteKey` and `.secretKey` are set too, so
        // one URL template serves push, delete and exists.
        match self
            .fetch(&RemoteKey::new(at.remote_key.clone()), push_ref_data(at))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// ESO's check: a TCP connection to the URL's host and port, no request. A host that is a template cannot
    /// be checked (ESO fails such stores; syncret reports Unknown).
    async fn validate(&self) -> Result<Validation> {
        let Some((host, port)) = dial_target(&self.spec.url)? else {
            return Ok(Validation::Unknown);
        };
        // The dial goes through the store's egress rules, like every request.
        let addrs = match tokio::time::timeout(DIAL_TIMEOUT, self.http.egress().resolve(&host, port)).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(crate::net::egress::ResolveError::Denied(d))) => {
                return Err(ProviderError::Policy {
                    field: format!("{BASE}.url"),
                    message: d.to_string(),
                });
            }
            Ok(Err(e)) => {
                return Err(ProviderError::Transport(format!(
                    "error accessing external store: dial tcp {host}:{port}: {e}"
                )));
            }
            Err(_) => {
                return Err(ProviderError::Transport(format!(
                    "error accessing external store: dial tcp {host}:{port}: no address within {}s",
                    DIAL_TIMEOUT.as_secs()
                )));
            }
        };
        match tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(&addrs[..])).await {
            Ok(Ok(_)) => Ok(Validation::Ready),
            Ok(Err(e)) => Err(ProviderError::Transport(format!(
                "error accessing external store: dial tcp {host}:{port}: {e}"
            ))),
            Err(_) => Err(ProviderError::Transport(format!(
                "error accessing external store: dial tcp {host}:{port}: no connection within {}s",
                DIAL_TIMEOUT.as_secs()
            ))),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}

/// The host and port store validation connects to; `None` when the scheme, host or port is a template.
fn dial_target(url: &str) -> Result<Option<(String, u16)>> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if scheme.contains("{{") || authority.contains("{{") {
        return Ok(None);
    }
    let invalid = |m: &str| ProviderError::invalid_config(format!("{BASE}.url"), m.to_string());
    let parsed = reqwest::Url::parse(&format!("{scheme}://{authority}/")).map_err(|_| invalid("is not a valid URL"))?;
    let host = parsed.host_str().ok_or_else(|| invalid("has no host"))?;
    let port = parsed.port_or_known_default().ok_or_else(|| invalid("has no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok(Some((host, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(scope: StoreScope, webhook: serde_json::Value) -> StoreInfo {
        StoreInfo {
            scope,
            name: "s".into(),
            namespace: (scope == StoreScope::SecretStore).then(|| "ns".into()),
            uid: "u".into(),
            generation: 1,
            spec: Arc::new(serde_json::from_value(serde_json::json!({"provider": {"webhook": webhook}})).unwrap()),
        }
    }

    #[test]
    fn referent_when_a_secret_has_no_namespace_or_a_template_prints_the_namespace() {
        let css = StoreScope::ClusterSecretStore;
        let plain = serde_json::json!({"url": "http://h/{{ .remoteRef.key }}",
            "secrets": [{"name": "a", "secretRef": {"name": "s", "namespace": "x"}}]});
        assert!(!Webhook.is_referent(&info(css, plain.clone())));
        assert!(!Webhook.is_referent(&info(StoreScope::SecretStore, plain)));
        let no_ns = serde_json::json!({"url": "http://h/", "secrets": [{"name": "a", "secretRef": {"name": "s"}}]});
        assert!(Webhook.is_referent(&info(css, no_ns)));
        let ns = serde_json::json!({"url": "http://h/", "headers": {"X-Ns": "{{ .remoteRef.namespace }}"}});
        assert!(Webhook.is_referent(&info(css, ns)));
    }

    #[test]
    fn query_escape_matches_go() {
        let esc = |s: &str| String::from_utf8(escape_value(&SecretValue::from(s)).to_vec()).unwrap();
        assert_eq!(esc("a b/c?d=e&f~g_h-i.j"), "a+b%2Fc%3Fd%3De%26f~g_h-i.j");
        assert_eq!(esc("é"), "%C3%A9");
        assert_eq!(
            String::from_utf8(escape_value(&SecretValue::from(&[0xffu8, b' '][..])).to_vec()).unwrap(),
            "%FF+"
        );
    }

    #[test]
    fn validation_dials_the_literal_host() {
        assert_eq!(
            dial_target("http://httpbin.org/get?parameter={{ .remoteRef.key }}").unwrap(),
            Some(("httpbin.org".into(), 80))
        );
        assert_eq!(
            dial_target("https://127.0.0.1:8443/{{ .remoteRef.key }}").unwrap(),
            Some(("127.0.0.1".into(), 8443))
        );
        assert_eq!(dial_target("https://[::1]/x").unwrap(), Some(("::1".into(), 443)));
        assert_eq!(dial_target("https://{{ .auth.host }}/x").unwrap(), None);
        assert!(dial_target("not a url").is_err());
    }

    #[test]
    fn methods_default_per_direction_and_keep_their_case() {
        assert_eq!(method_or("", "GET").unwrap(), reqwest::Method::GET);
        assert_eq!(method_or("", "POST").unwrap(), reqwest::Method::POST);
        assert_eq!(method_or("PUT", "POST").unwrap(), reqwest::Method::PUT);
        assert_eq!(method_or("get", "POST").unwrap().as_str(), "get");
        let e = method_or("G E T", "GET").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"spec.provider.webhook.method: invalid HTTP method "G E T""#
        );
    }

    #[test]
    fn statuses_map_to_errors() {
        let resp = |code: u16| http::Response {
            status: reqwest::StatusCode::from_u16(code).unwrap(),
            retry_after: Some(Duration::from_secs(3)),
            body: SecretValue::from("body with a secret"),
        };
        assert!(read_status(&resp(200), "k").is_ok());
        assert!(read_status(&resp(404), "k").unwrap_err().is_not_found());
        assert!(matches!(read_status(&resp(401), "k"), Err(ProviderError::Auth(_))));
        assert!(matches!(
            read_status(&resp(403), "k"),
            Err(ProviderError::AccessDenied(_))
        ));
        assert_eq!(
            read_status(&resp(429), "k").unwrap_err().retry_after(),
            Some(Duration::from_secs(3))
        );
        let e = read_status(&resp(500), "k").unwrap_err().to_string();
        assert_eq!(e, "endpoint gave error 500 Internal Server Error");
    }
}
