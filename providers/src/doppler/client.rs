//! The Doppler client: authentication (token or OIDC exchange), downloads, change requests.
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use syncret_crds::meta::{SecretKeySelector, ServiceAccountSelector};
use syncret_crds::provider::doppler::{DEFAULT_TOKEN_KEY, DopplerProvider as Spec};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{BASE, LABEL};
use crate::client::{Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation};
use crate::credentials::{Credentials, StoreScope};
use crate::error::{ProviderError, Result};
use crate::property::to_map;
use crate::registry::{ProviderContext, StoreInfo};
use crate::rest::{Response, Rest, secret_header};
use crate::value::{CustomValue, RemoteValue, SecretValue, Select};

/// The key `dataFrom.find` returns a formatted download under.
pub const SECRETS_FILE_KEY: &str = "DOPPLER_SECRETS_FILE";
const DOWNLOAD: &[&str] = &["v3", "configs", "config", "secrets", "download"];
const SECRETS: &[&str] = &["v3", "configs", "config", "secrets"];
/// An OIDC token is exchanged again this long before it expires (ESO's buffer).
const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// The longest an exchanged token is used, whatever its `expires_at` says.
const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

enum AuthKind {
    Token(SecretKeySelector),
    Oidc {
        identity: String,
        /// With the full audience list (the user's or the API URL, plus the store binding).
        service_account: ServiceAccountSelector,
        expiration_seconds: i64,
    },
}

struct Lease {
    header: HeaderValue,
    /// When to get a new token; `None` for a static token.
    renew_at: Option<Instant>,
}

/// How the client authenticates; the current token is kept and renewed here.
pub(super) struct Auth {
    kind: AuthKind,
    field: String,
    creds: Credentials,
    lease: Mutex<Option<Lease>>,
}

impl Auth {
    pub(super) fn new(spec: &Spec, store: &StoreInfo, ctx: &ProviderContext, base_url: &str) -> Result<Self> {
        let creds = ctx.credentials(store);
        let (kind, field) = match (&spec.auth.secret_ref, &spec.auth.oidc_config) {
            (Some(s), None) => (
                AuthKind::Token(s.doppler_token.clone()),
                format!("{BASE}.auth.secretRef.dopplerToken"),
            ),
            (None, Some(o)) => {
                let mut service_account = o.service_account_ref.clone();
                if service_account.audiences.is_empty() {
                    service_account.audiences.push(base_url.to_string());
                }
                service_account.audiences.push(match store.scope {
                    StoreScope::ClusterSecretStore => format!("clusterSecretStore:{}", store.name),
                    StoreScope::SecretStore => format!(
                        "secretStore:{}:{}",
                        store.namespace.as_deref().unwrap_or_default(),
                        store.name
                    ),
                });
                (
                    AuthKind::Oidc {
                        identity: o.identity.clone(),
                        service_account,
                        expiration_seconds: if o.expiration_seconds > 0 {
                            o.expiration_seconds
                        } else {
                            600
                        },
                    },
                    format!("{BASE}.auth.oidcConfig"),
                )
            }
            _ => {
                return Err(ProviderError::invalid_config(
                    format!("{BASE}.auth"),
                    "exactly one of secretRef or oidcConfig must be set",
                ));
            }
        };
        Ok(Self {
            kind,
            field,
            creds,
            lease: Mutex::new(None),
        })
    }
}

/// Basic auth with the token as user name and no password (what Doppler's clients send).
fn basic(token: &str, field: &str) -> Result<HeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{token}:"));
    secret_header(&format!("Basic {encoded}"), field)
}

#[derive(Deserialize)]
struct OidcAnswer {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    token: String,
    #[serde(default)]
    expires_at: String,
}

/// One store's client.
pub struct DopplerClient {
    spec: Spec,
    rest: Rest,
    auth: Auth,
}

/// A Doppler value: `property` is ignored (ESO's doppler provider does not apply it); `extract` reads the
/// value as a JSON object.
struct Opaque(SecretValue);

impl Select for Opaque {
    fn select(&self, _key: &str, _property: Option<&str>) -> Result<SecretValue> {
        Ok(self.0.clone())
    }

    fn extract(&self, key: &str, _property: Option<&str>) -> Result<BTreeMap<String, SecretValue>> {
        to_map(key, &self.0)
    }
}

impl DopplerClient {
    pub(super) fn new(spec: Spec, rest: Rest, auth: Auth) -> Self {
        Self { spec, rest, auth }
    }

    /// The `Authorization` header, renewing an OIDC token when it is about to expire.
    pub(super) async fn token(&self) -> Result<HeaderValue> {
        let mut lease = self.auth.lease.lock().await;
        if let Some(l) = lease.as_ref()
            && l.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(l.header.clone());
        }
        let fresh = match &self.auth.kind {
            AuthKind::Token(selector) => {
                let token = self
                    .auth
                    .creds
                    .secret_text(selector, Some(DEFAULT_TOKEN_KEY), &self.auth.field)
                    .await?;
                Lease {
                    header: basic(&token, &self.auth.field)?,
                    renew_at: None,
                }
            }
            AuthKind::Oidc {
                identity,
                service_account,
                expiration_seconds,
            } => self.exchange(identity, service_account, *expiration_seconds).await?,
        };
        let header = fresh.header.clone();
        *lease = Some(fresh);
        Ok(header)
    }

    /// Mints a ServiceAccount token and exchanges it for a Doppler API token.
    async fn exchange(&self, identity: &str, sa: &ServiceAccountSelector, expiration: i64) -> Result<Lease> {
        let field = format!("{}.serviceAccountRef", self.auth.field);
        let jwt = self
            .auth
            .creds
            .service_account_token(sa, &[], expiration, &field)
            .await?;
        let body = serde_json::json!({"identity": identity, "token": jwt.0});
        let req = self
            .rest
            .request(Method::POST, self.rest.url(&["v3", "auth", "oidc"], &[]))
            .header(ACCEPT, "application/json")
            .json(&body);
        let resp = self.rest.send("OIDCTokenExchange", req).await?;
        if !resp.is_success() {
            return Err(match resp.status.as_u16() {
                400 | 401 | 403 | 404 => ProviderError::Auth(format!(
                    "{}: Doppler OIDC auth failed ({})",
                    self.auth.field,
                    resp.describe("token exchange")
                )),
                _ => ProviderError::Transport(resp.describe("Doppler OIDC token exchange")),
            });
        }
        let answer: OidcAnswer = resp.json("Doppler OIDC token exchange")?;
        if !answer.success || answer.token.is_empty() {
            return Err(ProviderError::Auth(format!(
                "{}: Doppler OIDC auth failed (no token in the answer)",
                self.auth.field
            )));
        }
        let expires = chrono::DateTime::parse_from_rfc3339(&answer.expires_at).map_err(|_| {
            ProviderError::Auth(format!(
                "{}: Doppler OIDC auth answered an unreadable expires_at",
                self.auth.field
            ))
        })?;
        let left = expires
            .with_timezone(&chrono::Utc)
            .signed_duration_since(chrono::Utc::now())
            .num_seconds();
        let left = Duration::from_secs(u64::try_from(left).unwrap_or(0)).min(MAX_LEASE);
        let renew_in = left.saturating_sub(RENEW_BEFORE);
        Ok(Lease {
            header: basic(&answer.token, &self.auth.field)?,
            renew_at: Some(Instant::now().checked_add(renew_in).unwrap_or_else(Instant::now)),
        })
    }

    fn scope(&self) -> Vec<(&'static str, &str)> {
        let mut q = Vec::new();
        if !self.spec.project.is_empty() {
            q.push(("project", self.spec.project.as_str()));
        }
        if !self.spec.config.is_empty() {
            q.push(("config", self.spec.config.as_str()));
        }
        q
    }

    async fn call(
        &self,
        call: &'static str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
        accept: &'static str,
    ) -> Result<Response> {
        let headers = HeaderMap::from_iter([
            (AUTHORIZATION, self.token().await?),
            (ACCEPT, HeaderValue::from_static(accept)),
        ]);
        self.rest
            .call(call, method, segments, query, headers, body.as_ref())
            .await
    }

    /// A failed answer: 401 names the auth field (the client is rebuilt); a 404 is a missing project or config,
    /// never a missing secret (which Doppler answers by leaving it out).
    fn failure(&self, resp: &Response, what: &str) -> ProviderError {
        match resp.status.as_u16() {
            404 => ProviderError::Transport(format!("{BASE}: project/config not found ({})", resp.describe(what))),
            _ => resp.error(what, "", &self.auth.field),
        }
    }

    /// The value of one secret, `None` when the config has no such secret.
    async fn download_one(&self, name: &str) -> Result<Option<String>> {
        let mut query = self.scope();
        query.push(("secrets", name));
        let resp = self
            .call(
                "DownloadSecret",
                Method::GET,
                DOWNLOAD,
                &query,
                None,
                "application/json",
            )
            .await?;
        if !resp.is_success() {
            return Err(self.failure(&resp, "download secret"));
        }
        let mut all: BTreeMap<String, serde_json::Value> = resp.json("download secret")?;
        Ok(all.remove(name).map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }))
    }

    async fn change(&self, call: &'static str, body: serde_json::Value) -> Result<()> {
        let resp = self
            .call(call, Method::POST, SECRETS, &[], Some(body), "application/json")
            .await?;
        if resp.is_success() {
            Ok(())
        } else {
            Err(self.failure(&resp, "update secrets"))
        }
    }

    fn with_scope(&self, mut body: serde_json::Value) -> serde_json::Value {
        if let Some(obj) = body.as_object_mut() {
            if !self.spec.project.is_empty() {
                obj.insert("project".into(), self.spec.project.clone().into());
            }
            if !self.spec.config.is_empty() {
                obj.insert("config".into(), self.spec.config.clone().into());
            }
        }
        body
    }
}

#[async_trait]
impl SecretsClient for DopplerClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        match self.download_one(&key.key).await? {
            Some(v) => Ok(RemoteValue::Custom(CustomValue::new(Opaque(SecretValue::from(v))))),
            None => Err(ProviderError::NotFound { key: key.key.clone() }),
        }
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        let mut query = self.scope();
        if let Some(t) = self.spec.name_transformer {
            query.push(("name_transformer", t.as_str()));
        }
        let format = self.spec.format;
        if let Some(f) = format {
            query.push(("format", f.as_str()));
        }
        let accept = match format {
            Some(f) if f.as_str() != "json" => "text/plain",
            _ => "application/json",
        };
        let resp = self
            .call("DownloadSecrets", Method::GET, DOWNLOAD, &query, None, accept)
            .await?;
        if !resp.is_success() {
            return Err(self.failure(&resp, "download secrets"));
        }
        let all: BTreeMap<String, SecretValue> = if format.is_some() {
            BTreeMap::from([(SECRETS_FILE_KEY.to_string(), SecretValue::from(resp.body.to_vec()))])
        } else {
            let map: BTreeMap<String, serde_json::Value> = resp.json("download secrets")?;
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, SecretValue::from(v))
                })
                .collect()
        };
        let prefix = find.path.as_deref();
        Ok(all
            .into_iter()
            .filter(|(k, _)| find.matches_name(k) && prefix.is_none_or(|p| k.starts_with(p)))
            .collect())
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        let text = value.as_str().ok_or_else(|| ProviderError::InvalidValue {
            key: to.remote_key.clone(),
            message: "Doppler stores text: the value is not UTF-8".into(),
        })?;
        let body = self.with_scope(serde_json::json!({"secrets": {to.remote_key.as_str(): text}}));
        self.change("UpdateSecrets", body).await
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        if self.download_one(&at.remote_key).await?.is_none() {
            return Ok(());
        }
        let body = self.with_scope(serde_json::json!({"change_requests": [{
            "name": at.remote_key, "originalName": at.remote_key, "value": null, "shouldDelete": true,
        }]}));
        self.change("DeleteSecret", body).await
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        Ok(self.download_one(&at.remote_key).await?.is_some())
    }

    async fn validate(&self) -> Result<Validation> {
        let resp = self
            .call(
                "ListProjects",
                Method::GET,
                &["v3", "projects"],
                &[],
                None,
                "application/json",
            )
            .await?;
        if resp.is_success() {
            Ok(Validation::Ready)
        } else {
            Err(self.failure(&resp, "authenticate"))
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_property_is_ignored_and_extract_reads_json() {
        let v = Opaque(SecretValue::from(r#"{"a":"1","b":{"c":2}}"#));
        assert_eq!(
            v.select("K", Some("a")).unwrap().as_bytes(),
            br#"{"a":"1","b":{"c":2}}"#
        );
        let m = v.extract("K", Some("ignored")).unwrap();
        assert_eq!(m["a"].as_bytes(), b"1");
        assert_eq!(m["b"].as_bytes(), br#"{"c":2}"#);
        let e = Opaque(SecretValue::from("plain s3cr3t"))
            .extract("K", None)
            .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[test]
    fn basic_auth_has_an_empty_password() {
        let h = basic("dp.st.abc", "f").unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Basic ZHAuc3QuYWJjOg==");
    }
}
