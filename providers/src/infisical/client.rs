//! The Infisical client: the access token, secret reads and lists, PushSecret writes.
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use syncret_crds::provider::infisical::InfisicalProvider as Spec;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use super::auth::Login;
use super::{BASE, LABEL};
use crate::client::{Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation};
use crate::error::{ProviderError, Result};
use crate::rest::{Response, Rest, secret_header};
use crate::value::{RemoteValue, SecretValue, Unloggable};

/// A token is renewed (by logging in again) after this share of its lifetime, in percent.
const RENEW_AT_PERCENT: u32 = 80;
/// The shortest time a token is used before logging in again (a server answering `expiresIn: 0`).
const MIN_LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Secret {
    #[serde(default)]
    secret_key: String,
    #[serde(default)]
    secret_value: String,
    #[serde(default)]
    secret_path: String,
}

#[derive(Deserialize)]
struct OneSecret {
    secret: Secret,
}

#[derive(Deserialize)]
struct Import {
    #[serde(default)]
    secrets: Vec<Secret>,
}

#[derive(Deserialize)]
struct SecretList {
    #[serde(default)]
    secrets: Vec<Secret>,
    #[serde(default)]
    imports: Vec<Import>,
}

#[derive(Deserialize)]
struct Project {
    #[serde(default)]
    id: String,
}

struct Lease {
    token: Unloggable<String>,
    header: HeaderValue,
    renew_at: Option<Instant>,
}

/// One store's client.
pub struct InfisicalClient {
    spec: Spec,
    rest: Rest,
    login: Login,
    auth_field: String,
    lease: Mutex<Option<Lease>>,
    /// The project's ID for writes, looked up from the slug once.
    project_id: OnceCell<String>,
}

/// `path.Join` of Go for absolute slash paths: `.`/`..`/empty segments resolved, always starting with `/`.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// ESO's `getSecretAddress`: (folder, name) of `key` relative to `default` (see the module docs).
fn address(default: &str, key: &str) -> (String, String) {
    match key.rfind('/') {
        None => (default.to_string(), key.to_string()),
        Some(i) => {
            let (folder, name) = (&key[..i], &key[i + 1..]);
            if key.starts_with('/') {
                (clean(folder), name.to_string())
            } else {
                (clean(&format!("{default}/{folder}")), name.to_string())
            }
        }
    }
}

/// Sets `property` (a dot path) of the JSON object `existing` (or `{}`) to `value`.
fn set_property(existing: Option<&str>, property: &str, value: &str) -> Result<String> {
    let mut root = match existing.map(serde_json::from_str::<serde_json::Value>) {
        None => serde_json::Value::Object(Default::default()),
        Some(Ok(v @ serde_json::Value::Object(_))) => v,
        Some(_) => {
            return Err(ProviderError::InvalidValue {
                key: property.to_string(),
                message: "the remote value is not a JSON object; cannot set a property in it".into(),
            });
        }
    };
    let mut node = &mut root;
    let parts: Vec<&str> = property.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let serde_json::Value::Object(map) = node else {
            return Err(ProviderError::InvalidValue {
                key: property.to_string(),
                message: "a parent of the property is not a JSON object".into(),
            });
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), serde_json::Value::String(value.to_string()));
            break;
        }
        node = map
            .entry((*part).to_string())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    Ok(root.to_string())
}

/// Removes `property` (a dot path) from a JSON object: (new text, whether it was there, keys left at the top).
fn remove_property(existing: &str, property: &str) -> Result<(String, bool, usize)> {
    let mut root: serde_json::Value = match serde_json::from_str(existing) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return Err(ProviderError::InvalidValue {
                key: property.to_string(),
                message: "the remote value is not a JSON object; cannot delete a property of it".into(),
            });
        }
    };
    let parts: Vec<&str> = property.split('.').collect();
    let mut node = &mut root;
    let mut removed = false;
    for (i, part) in parts.iter().enumerate() {
        let serde_json::Value::Object(map) = node else { break };
        if i + 1 == parts.len() {
            removed = map.remove(*part).is_some();
            break;
        }
        match map.get_mut(*part) {
            Some(child) => node = child,
            None => break,
        }
    }
    let left = root.as_object().map_or(0, serde_json::Map::len);
    Ok((root.to_string(), removed, left))
}

impl InfisicalClient {
    pub(super) fn new(spec: Spec, rest: Rest, login: Login, auth_field: String) -> Self {
        Self {
            spec,
            rest,
            login,
            auth_field,
            lease: Mutex::new(None),
            project_id: OnceCell::new(),
        }
    }

    /// The `Authorization` header, logging in (again) when there is no valid token.
    pub(super) async fn token(&self) -> Result<HeaderValue> {
        let mut lease = self.lease.lock().await;
        if let Some(l) = lease.as_ref()
            && l.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(l.header.clone());
        }
        let issued = self
            .login
            .login(&self.rest, &self.spec.secrets_scope.organization_slug, &self.auth_field)
            .await?;
        let renew_at = issued.lifetime.map(|life| {
            let after = (life * RENEW_AT_PERCENT / 100).max(MIN_LEASE);
            Instant::now().checked_add(after).unwrap_or_else(Instant::now)
        });
        let header = secret_header(&format!("Bearer {}", issued.token.0), &self.auth_field)?;
        *lease = Some(Lease {
            token: issued.token,
            header: header.clone(),
            renew_at,
        });
        Ok(header)
    }

    async fn call(
        &self,
        call: &'static str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<Response> {
        let headers = HeaderMap::from_iter([(AUTHORIZATION, self.token().await?)]);
        self.rest
            .call(call, method, segments, query, headers, body.as_ref())
            .await
    }

    fn expand(&self) -> &'static str {
        if self.spec.secrets_scope.expand_secret_references {
            "true"
        } else {
            "false"
        }
    }

    fn default_path(&self) -> &str {
        match self.spec.secrets_scope.secrets_path.as_str() {
            "" => "/",
            p => p,
        }
    }

    /// One secret's value; `None` on 404.
    async fn retrieve(&self, folder: &str, name: &str, imports: bool) -> Result<Option<String>> {
        let scope = &self.spec.secrets_scope;
        let query = [
            ("workspaceSlug", scope.project_slug.as_str()),
            ("environment", scope.environment_slug.as_str()),
            ("secretPath", folder),
            ("expandSecretReferences", self.expand()),
            ("include_imports", if imports { "true" } else { "false" }),
            ("type", "shared"),
        ];
        let resp = self
            .call(
                "GetSecretByKeyV3",
                Method::GET,
                &["v3", "secrets", "raw", name],
                &query,
                None,
            )
            .await?;
        match resp.status.as_u16() {
            200..=299 => Ok(Some(resp.json::<OneSecret>("GetSecretByKeyV3")?.secret.secret_value)),
            404 => Ok(None),
            _ => Err(resp.error("GetSecretByKeyV3", name, &self.auth_field)),
        }
    }

    /// The scope's secrets, imports after them (a secret of the folder wins over an imported one).
    async fn list(&self, imports: bool) -> Result<Vec<Secret>> {
        let scope = &self.spec.secrets_scope;
        let query = [
            ("workspaceSlug", scope.project_slug.as_str()),
            ("environment", scope.environment_slug.as_str()),
            ("secretPath", self.default_path()),
            ("expandSecretReferences", self.expand()),
            ("include_imports", if imports { "true" } else { "false" }),
            ("recursive", if scope.recursive { "true" } else { "false" }),
        ];
        let resp = self
            .call("GetSecretsV3", Method::GET, &["v3", "secrets", "raw"], &query, None)
            .await?;
        if !resp.is_success() {
            return Err(match resp.status.as_u16() {
                404 => ProviderError::Transport(format!(
                    "cannot read secrets with the project scope project:{} environment:{} secret-path:{}: {}",
                    scope.project_slug,
                    scope.environment_slug,
                    self.default_path(),
                    resp.describe("GetSecretsV3")
                )),
                _ => resp.error("GetSecretsV3", "", &self.auth_field),
            });
        }
        let list: SecretList = resp.json("GetSecretsV3")?;
        let mut secrets = list.secrets;
        if scope.recursive {
            // The SDK keeps one secret per key (the last listed).
            let mut by_key: BTreeMap<String, Secret> = BTreeMap::new();
            for s in secrets {
                by_key.insert(s.secret_key.clone(), s);
            }
            secrets = by_key.into_values().collect();
        }
        if imports {
            for import in list.imports {
                for s in import.secrets {
                    if !secrets.iter().any(|x| x.secret_key == s.secret_key) {
                        secrets.push(s);
                    }
                }
            }
        }
        Ok(secrets)
    }

    /// The project's ID (writes need it; the store has the slug).
    async fn project_id(&self) -> Result<&String> {
        self.project_id
            .get_or_try_init(|| async {
                let slug = self.spec.secrets_scope.project_slug.as_str();
                // The route moved between Infisical versions: current first, then the older one.
                for route in ["projects", "workspace"] {
                    let resp = self
                        .call(
                            "GetWorkspaceBySlug",
                            Method::GET,
                            &["v1", route, "slug", slug],
                            &[],
                            None,
                        )
                        .await?;
                    match resp.status.as_u16() {
                        200..=299 => {
                            let p: Project = resp.json("GetWorkspaceBySlug")?;
                            if p.id.is_empty() {
                                break;
                            }
                            return Ok(p.id);
                        }
                        404 => continue,
                        _ => return Err(resp.error("GetWorkspaceBySlug", slug, &self.auth_field)),
                    }
                }
                Err(ProviderError::invalid_config(
                    format!("{BASE}.secretsScope.projectSlug"),
                    format!("no Infisical project found for slug {slug:?}"),
                ))
            })
            .await
    }

    async fn write(
        &self,
        call: &'static str,
        method: Method,
        folder: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<()> {
        let project = self.project_id().await?.clone();
        let mut body = serde_json::json!({
            "workspaceId": project,
            "environment": self.spec.secrets_scope.environment_slug,
            "secretPath": folder,
            "type": "shared",
        });
        if let (Some(v), Some(obj)) = (value, body.as_object_mut()) {
            obj.insert("secretValue".into(), v.into());
            obj.insert("skipMultilineEncoding".into(), true.into());
        }
        let resp = self
            .call(call, method, &["v3", "secrets", "raw", name], &[], Some(body))
            .await?;
        if resp.is_success() {
            Ok(())
        } else {
            Err(resp.error(call, name, &self.auth_field))
        }
    }
}

#[async_trait]
impl SecretsClient for InfisicalClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        let (folder, name) = address(self.default_path(), &key.key);
        match self.retrieve(&folder, &name, true).await? {
            Some(v) => Ok(RemoteValue::Bytes(SecretValue::from(v))),
            None => Err(ProviderError::NotFound { key: key.key.clone() }),
        }
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        if !find.tags.is_empty() {
            return Err(ProviderError::Unsupported("find by tags not supported".into()));
        }
        let prefix = find.path.as_deref();
        Ok(self
            .list(true)
            .await?
            .into_iter()
            .filter(|s| find.matches_name(&s.secret_key) && prefix.is_none_or(|p| s.secret_path.starts_with(p)))
            .map(|s| (s.secret_key, SecretValue::from(s.secret_value)))
            .collect())
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        if to.remote_key.is_empty() {
            return Err(ProviderError::invalid_config(
                "remoteRef.remoteKey",
                "remoteKey is required to push a secret to Infisical",
            ));
        }
        let text = value.as_str().ok_or_else(|| ProviderError::InvalidValue {
            key: to.remote_key.clone(),
            message: "Infisical stores text: the value is not UTF-8".into(),
        })?;
        let (folder, name) = address(self.default_path(), &to.remote_key);
        let existing = self.retrieve(&folder, &name, false).await?;
        let desired = match to.property.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => set_property(existing.as_deref(), p, text).map_err(|e| match e {
                ProviderError::InvalidValue { message, .. } => ProviderError::InvalidValue {
                    key: to.remote_key.clone(),
                    message,
                },
                other => other,
            })?,
            None => text.to_string(),
        };
        match existing {
            // Already so: no write, no new secret version.
            Some(current) if current == desired => Ok(()),
            Some(_) => {
                self.write("UpdateSecretV3", Method::PATCH, &folder, &name, Some(&desired))
                    .await
            }
            None => {
                self.write("CreateSecretV3", Method::POST, &folder, &name, Some(&desired))
                    .await
            }
        }
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let (folder, name) = address(self.default_path(), &at.remote_key);
        let Some(existing) = self.retrieve(&folder, &name, false).await? else {
            return Ok(());
        };
        if let Some(p) = at.property.as_deref().filter(|p| !p.is_empty()) {
            let (updated, removed, left) = remove_property(&existing, p).map_err(|e| match e {
                ProviderError::InvalidValue { message, .. } => ProviderError::InvalidValue {
                    key: at.remote_key.clone(),
                    message,
                },
                other => other,
            })?;
            if !removed {
                return Ok(());
            }
            if left > 0 {
                return self
                    .write("UpdateSecretV3", Method::PATCH, &folder, &name, Some(&updated))
                    .await;
            }
        }
        match self.write("DeleteSecretV3", Method::DELETE, &folder, &name, None).await {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        let (folder, name) = address(self.default_path(), &at.remote_key);
        let Some(existing) = self.retrieve(&folder, &name, false).await? else {
            return Ok(false);
        };
        match at.property.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(true),
            Some(p) => match serde_json::from_str::<serde_json::Value>(&existing) {
                Ok(v @ serde_json::Value::Object(_)) => Ok(gjson::get(&v.to_string(), p).exists()),
                _ => Err(ProviderError::InvalidValue {
                    key: at.remote_key.clone(),
                    message: format!("the value is not a JSON object; cannot check property {p:?}"),
                }),
            },
        }
    }

    async fn validate(&self) -> Result<Validation> {
        self.list(false).await?;
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }

    /// Revokes a token this client logged in for (not a pre-issued one), as ESO does.
    async fn close(&self) {
        if !self.login.revocable() {
            return;
        }
        let Some(lease) = self.lease.lock().await.take() else {
            return;
        };
        let req = self
            .rest
            .request(Method::POST, self.rest.url(&["v1", "auth", "token", "revoke"], &[]))
            .header(AUTHORIZATION, lease.header)
            .json(&serde_json::json!({"accessToken": lease.token.0}));
        if let Err(e) = self.rest.send("RevokeAccessToken", req).await {
            tracing::debug!(error = %e, "revoking the Infisical access token failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_eso() {
        let a = |d: &str, k: &str| address(d, k);
        assert_eq!(a("/scope", "foo"), ("/scope".into(), "foo".into()));
        assert_eq!(a("/scope", "/a/b/foo"), ("/a/b".into(), "foo".into()));
        assert_eq!(a("/scope", "sub/foo"), ("/scope/sub".into(), "foo".into()));
        assert_eq!(a("/", "sub/x/../foo"), ("/sub".into(), "foo".into()));
        assert_eq!(a("/scope", "/foo"), ("/".into(), "foo".into()));
    }

    #[test]
    fn properties_are_set_and_removed() {
        assert_eq!(set_property(None, "a", "1").unwrap(), r#"{"a":"1"}"#);
        assert_eq!(
            set_property(Some(r#"{"a":"1"}"#), "b.c", "2").unwrap(),
            r#"{"a":"1","b":{"c":"2"}}"#
        );
        assert!(set_property(Some("plain"), "a", "1").is_err());
        assert_eq!(
            remove_property(r#"{"a":"1","b":"2"}"#, "a").unwrap(),
            (r#"{"b":"2"}"#.to_string(), true, 1)
        );
        assert!(!remove_property(r#"{"a":"1"}"#, "x").unwrap().1);
        assert_eq!(remove_property(r#"{"a":"1"}"#, "a").unwrap().2, 0);
    }
}
