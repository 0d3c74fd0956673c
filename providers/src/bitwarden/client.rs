//! The Bitwarden SDK server client: batched reads, find, PushSecret.
use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use syncret_crds::provider::bitwarden::BitwardenSecretsManagerProvider as Spec;
use tokio::sync::Mutex;

use super::{LABEL, TOKEN_FIELD};
use crate::client::{Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation};
use crate::error::{ProviderError, Result};
use crate::rest::{Response, Rest};
use crate::value::{CustomValue, RemoteValue, SecretValue, Select};

/// IDs per `secrets-by-ids` call.
const IDS_PER_CALL: usize = 100;
/// Secrets of one organization listed at most.
const MAX_SECRETS: usize = 50_000;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Secret {
    id: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    project_id: Option<String>,
}

#[derive(Deserialize)]
struct Secrets {
    #[serde(default)]
    data: Vec<Secret>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identifier {
    id: String,
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
struct Identifiers {
    #[serde(default)]
    data: Vec<Identifier>,
}

#[derive(Deserialize)]
struct Deleted {
    #[serde(default)]
    data: Vec<DeletedOne>,
}

#[derive(Deserialize)]
struct DeletedOne {
    id: String,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Write<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    key: &'a str,
    note: &'a str,
    organization_id: &'a str,
    project_ids: [&'a str; 1],
    value: &'a str,
}

/// One store's client.
pub struct BitwardenClient {
    spec: Spec,
    rest: Rest,
    token: HeaderValue,
    api_url: HeaderValue,
    identity_url: HeaderValue,
    /// Pushes of this store one at a time: a name is looked up, then created; two at once would create two.
    push: Mutex<()>,
}

/// A UUID as go-openapi's `strfmt.IsUUID` accepts it: 8-4-4-4-12 hex digits, or 32 without hyphens.
pub fn is_uuid(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [a, b, c, d, e] => hex(a, 8) && hex(b, 4) && hex(c, 4) && hex(d, 4) && hex(e, 12),
        [one] => hex(one, 32),
        _ => false,
    }
}

/// A Bitwarden value: `property` is ignored (ESO does not apply it); `extract` reads a YAML or JSON object,
/// as ESO: strings as they are, other scalars as text, nested objects and lists as YAML.
struct Value(SecretValue);

impl Select for Value {
    fn select(&self, _key: &str, _property: Option<&str>) -> Result<SecretValue> {
        Ok(self.0.clone())
    }

    fn extract(&self, key: &str, _property: Option<&str>) -> Result<BTreeMap<String, SecretValue>> {
        let invalid = |m: &str| ProviderError::InvalidValue {
            key: key.to_string(),
            message: m.to_string(),
        };
        let text = self.0.as_str().ok_or_else(|| invalid("the value is not UTF-8 text"))?;
        let doc: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|_| invalid("error unmarshalling secret: not a YAML or JSON object"))?;
        let serde_yaml::Value::Mapping(map) = doc else {
            return Err(invalid("error unmarshalling secret: not a YAML or JSON object"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let k = scalar_text(&k).ok_or_else(|| invalid("a key of the object is not a scalar"))?;
            let v = match scalar_text(&v) {
                Some(t) => t,
                None => serde_yaml::to_string(&v)
                    .map_err(|_| invalid("error marshaling a nested value"))?
                    .trim()
                    .to_string(),
            };
            out.insert(k, SecretValue::from(v));
        }
        Ok(out)
    }
}

/// A YAML scalar as Go's `%v` prints it; `None` for a mapping or sequence.
fn scalar_text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Null => Some("<nil>".to_string()),
        serde_yaml::Value::Tagged(t) => scalar_text(&t.value),
        _ => None,
    }
}

/// `note` anywhere in the PushSecret metadata (ESO's `FetchValueFromMetadata` digs through nested objects).
fn note(metadata: Option<&str>) -> Result<String> {
    fn dig(v: &serde_json::Value) -> Option<String> {
        let obj = v.as_object()?;
        if let Some(n) = obj.get("note") {
            return n.as_str().map(str::to_string);
        }
        obj.values().find_map(dig)
    }
    let Some(raw) = metadata.map(str::trim).filter(|m| !m.is_empty() && *m != "null") else {
        return Ok(String::new());
    };
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| ProviderError::InvalidValue {
        key: "metadata".into(),
        message: format!("PushSecret metadata is not JSON: {e}"),
    })?;
    Ok(dig(&v).unwrap_or_default())
}

impl BitwardenClient {
    pub(super) fn new(spec: Spec, rest: Rest, token: HeaderValue) -> Result<Self> {
        let header = |v: &str, field: &str| {
            HeaderValue::from_str(v.trim().trim_end_matches('/'))
                .map_err(|_| ProviderError::invalid_config(format!("{}.{field}", super::BASE), "is not a valid URL"))
        };
        Ok(Self {
            api_url: header(&spec.api_url, "apiURL")?,
            identity_url: header(&spec.identity_url, "identityURL")?,
            spec,
            rest,
            token,
            push: Mutex::new(()),
        })
    }

    /// One SDK server call (every call carries a JSON body, GETs included, as ESO sends them).
    async fn call(&self, call: &'static str, method: Method, path: &str, body: &impl Serialize) -> Result<Response> {
        let body = serde_json::to_vec(body).map_err(|e| ProviderError::Transport(format!("{call}: {e}")))?;
        let req = self
            .rest
            .request(method, self.rest.url(&["rest", "api", "1", path], &[]))
            .header("Warden-Access-Token", self.token.clone())
            .header("Warden-Api-Url", self.api_url.clone())
            .header("Warden-Identity-Url", self.identity_url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        self.rest.send(call, req).await
    }

    /// A failed answer. The SDK server answers a refused access token with `400 failed to login…`; it has no
    /// "not found" status (a missing ID is a `400` too), so no answer is `SecretNotFound`: that one is decided
    /// from the list of names.
    fn failure(resp: &Response, call: &str, _key: &str) -> ProviderError {
        let text = String::from_utf8_lossy(&resp.body);
        if resp.status.as_u16() == 401 || (resp.status.as_u16() == 400 && text.contains("failed to login")) {
            return ProviderError::Auth(format!(
                "{TOKEN_FIELD}: the access token was refused ({} {call})",
                resp.status
            ));
        }
        match resp.status.as_u16() {
            403 => ProviderError::AccessDenied(format!("{call}: {}", resp.status)),
            // Bodies are plain text (`http.Error`) and may echo a request: never quoted.
            _ => ProviderError::Transport(format!("{call}: the Bitwarden SDK server answered {}", resp.status)),
        }
    }

    /// The organization's secret identifiers (ID and name).
    async fn list(&self) -> Result<Vec<Identifier>> {
        let resp = self
            .call(
                "ListSecrets",
                Method::GET,
                "secrets",
                &serde_json::json!({"organizationId": self.spec.organization_id}),
            )
            .await?;
        if !resp.is_success() {
            return Err(Self::failure(&resp, "ListSecrets", ""));
        }
        let list: Identifiers = resp.json("ListSecrets")?;
        if list.data.len() > MAX_SECRETS {
            return Err(ProviderError::Transport(format!(
                "ListSecrets: more than {MAX_SECRETS} secrets in the organization"
            )));
        }
        Ok(list.data)
    }

    async fn get_one(&self, id: &str) -> Result<Secret> {
        let resp = self
            .call("GetSecret", Method::GET, "secret", &serde_json::json!({"id": id}))
            .await?;
        if !resp.is_success() {
            return Err(Self::failure(&resp, "GetSecret", id));
        }
        resp.json("GetSecret")
    }

    /// The secrets with these IDs: one `secrets-by-ids` call per [`IDS_PER_CALL`]; when a batch fails (an ID
    /// that does not exist fails it whole), its IDs are read one by one so each key gets its own answer.
    async fn get_many(&self, ids: &[String]) -> BTreeMap<String, Result<Secret>> {
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let batch = self
                .call(
                    "GetSecretsByIds",
                    Method::GET,
                    "secrets-by-ids",
                    &serde_json::json!({"ids": chunk}),
                )
                .await;
            match batch {
                Ok(resp) if resp.is_success() => match resp.json::<Secrets>("GetSecretsByIds") {
                    Ok(s) => {
                        for secret in s.data {
                            out.insert(secret.id.clone(), Ok(secret));
                        }
                    }
                    Err(e) => {
                        for id in chunk {
                            out.insert(id.clone(), Err(ProviderError::Transport(e.to_string())));
                        }
                    }
                },
                // A refused token or a throttled server: every ID fails the same way, no retry one by one.
                Err(e) => {
                    let msg = e.to_string();
                    for id in chunk {
                        out.insert(id.clone(), Err(copy_err(&e, &msg)));
                    }
                }
                Ok(resp) if Self::failure(&resp, "GetSecretsByIds", "").invalidates_client() => {
                    for id in chunk {
                        out.insert(id.clone(), Err(Self::failure(&resp, "GetSecretsByIds", id)));
                    }
                }
                Ok(_) => {
                    for id in chunk {
                        out.insert(id.clone(), self.get_one(id).await);
                    }
                }
            }
        }
        out
    }

    /// The one secret named `name` in the store's project (`None` when there is none) among `candidates`.
    fn pick<'a>(&self, name: &str, candidates: impl Iterator<Item = &'a Secret>) -> Result<Option<Secret>> {
        let mut found: Option<&Secret> = None;
        for s in candidates {
            if s.key == name && s.project_id.as_deref() == Some(self.spec.project_id.as_str()) {
                if found.is_some() {
                    return Err(ProviderError::InvalidValue {
                        key: name.to_string(),
                        message: format!(
                            "more than one secret found for project {} with this key",
                            self.spec.project_id
                        ),
                    });
                }
                found = Some(s);
            }
        }
        Ok(found.cloned())
    }

    /// The secret named `name` in the store's project (ESO's `findSecretByRef`).
    async fn find_by_name(&self, name: &str) -> Result<Option<Secret>> {
        let ids: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|i| i.key == name)
            .map(|i| i.id)
            .collect();
        if ids.is_empty() {
            return Ok(None);
        }
        let got = self.get_many(&ids).await;
        let mut secrets = Vec::new();
        for r in got.into_values() {
            secrets.push(r?);
        }
        self.pick(name, secrets.iter())
    }

    async fn write(&self, call: &'static str, method: Method, w: &Write<'_>) -> Result<()> {
        let resp = self.call(call, method, "secret", w).await?;
        if resp.is_success() {
            Ok(())
        } else {
            Err(Self::failure(&resp, call, w.key))
        }
    }
}

/// The same error again (errors are not `Clone`; the variant and message are kept).
fn copy_err(e: &ProviderError, msg: &str) -> ProviderError {
    match e {
        ProviderError::Auth(m) => ProviderError::Auth(m.clone()),
        ProviderError::AccessDenied(m) => ProviderError::AccessDenied(m.clone()),
        ProviderError::Throttled { retry_after } => ProviderError::Throttled {
            retry_after: *retry_after,
        },
        _ => ProviderError::Transport(msg.to_string()),
    }
}

#[async_trait]
impl SecretsClient for BitwardenClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        self.get_secrets(std::slice::from_ref(key))
            .await
            .pop()
            .unwrap_or_else(|| Err(ProviderError::NotFound { key: key.key.clone() }))
    }

    /// One list (when a key is a name) and one `secrets-by-ids` call for the whole batch.
    async fn get_secrets(&self, keys: &[RemoteKey]) -> Vec<Result<RemoteValue>> {
        let names: BTreeSet<&str> = keys.iter().map(|k| k.key.as_str()).filter(|k| !is_uuid(k)).collect();
        let mut by_name: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut list_error = None;
        if !names.is_empty() {
            match self.list().await {
                Ok(list) => {
                    for i in list {
                        if let Some(n) = names.get(i.key.as_str()) {
                            by_name.entry(n).or_default().push(i.id);
                        }
                    }
                }
                Err(e) => list_error = Some(e),
            }
        }
        let mut ids: BTreeSet<String> = keys.iter().filter(|k| is_uuid(&k.key)).map(|k| k.key.clone()).collect();
        ids.extend(by_name.values().flatten().cloned());
        let ids: Vec<String> = ids.into_iter().collect();
        let got = self.get_many(&ids).await;
        keys.iter()
            .map(|k| {
                let value = if is_uuid(&k.key) {
                    match got.get(&k.key) {
                        Some(Ok(s)) => Ok(s.value.clone()),
                        Some(Err(e)) => Err(copy_err(e, &e.to_string())),
                        None => Err(ProviderError::NotFound { key: k.key.clone() }),
                    }
                } else if let Some(e) = &list_error {
                    Err(copy_err(e, &e.to_string()))
                } else {
                    let mut candidates = Vec::new();
                    let mut failed = None;
                    for id in by_name.get(k.key.as_str()).into_iter().flatten() {
                        match got.get(id) {
                            Some(Ok(s)) => candidates.push(s.clone()),
                            Some(Err(e)) => failed = Some(copy_err(e, &e.to_string())),
                            None => {}
                        }
                    }
                    match (failed, self.pick(&k.key, candidates.iter())) {
                        (Some(e), _) => Err(e),
                        (None, Ok(Some(s))) => Ok(s.value),
                        (None, Ok(None)) => Err(ProviderError::NotFound { key: k.key.clone() }),
                        (None, Err(e)) => Err(e),
                    }
                };
                value.map(|v| RemoteValue::Custom(CustomValue::new(Value(SecretValue::from(v)))))
            })
            .collect()
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        if !find.tags.is_empty() {
            return Err(ProviderError::Unsupported(
                "'find.tags' is not supported by the Bitwarden Secrets Manager provider".into(),
            ));
        }
        let prefix = find.path.as_deref();
        let ids: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|i| find.matches_name(&i.key) && prefix.is_none_or(|p| i.key.starts_with(p)))
            .map(|i| i.id)
            .collect();
        let mut out = BTreeMap::new();
        for (id, r) in self.get_many(&ids).await {
            let s = r?;
            if s.project_id.as_deref() == Some(self.spec.project_id.as_str()) {
                out.insert(id, SecretValue::from(s.value));
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        if to.remote_key.is_empty() {
            return Err(ProviderError::invalid_config(
                "remoteRef.remoteKey",
                "remote key must be defined",
            ));
        }
        let text = value.as_str().ok_or_else(|| ProviderError::InvalidValue {
            key: to.remote_key.clone(),
            message: "Bitwarden stores text: the value is not UTF-8".into(),
        })?;
        let note = note(to.metadata.as_deref())?;
        let _one_at_a_time = self.push.lock().await;
        let ids: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|i| i.key == to.remote_key)
            .map(|i| i.id)
            .collect();
        let project = self.spec.project_id.as_str();
        for r in self.get_many(&ids).await.into_values() {
            let s = r?;
            if s.key != to.remote_key || s.note != note || s.project_id.as_deref() != Some(project) {
                continue;
            }
            if s.value == text {
                return Ok(());
            }
            return self
                .write(
                    "UpdateSecret",
                    Method::PUT,
                    &Write {
                        id: Some(&s.id),
                        key: &to.remote_key,
                        note: &note,
                        organization_id: &self.spec.organization_id,
                        project_ids: [project],
                        value: text,
                    },
                )
                .await;
        }
        self.write(
            "CreateSecret",
            Method::POST,
            &Write {
                id: None,
                key: &to.remote_key,
                note: &note,
                organization_id: &self.spec.organization_id,
                project_ids: [project],
                value: text,
            },
        )
        .await
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let id = if is_uuid(&at.remote_key) {
            at.remote_key.clone()
        } else {
            match self.find_by_name(&at.remote_key).await? {
                Some(s) => s.id,
                None => return Ok(()),
            }
        };
        let resp = self
            .call(
                "DeleteSecret",
                Method::DELETE,
                "secret",
                &serde_json::json!({"ids": [id]}),
            )
            .await?;
        if !resp.is_success() {
            return Err(Self::failure(&resp, "DeleteSecret", &at.remote_key));
        }
        let deleted: Deleted = resp.json("DeleteSecret")?;
        match deleted.data.iter().find_map(|d| d.error.as_ref().map(|e| (&d.id, e))) {
            None => Ok(()),
            Some((id, e)) => Err(ProviderError::Transport(format!(
                "error deleting secret with id {id}: {}",
                e.chars().filter(|c| !c.is_control()).take(200).collect::<String>()
            ))),
        }
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        if is_uuid(&at.remote_key) {
            // The SDK server cannot say "no such ID" apart from other failures: an error, as in ESO.
            return self.get_one(&at.remote_key).await.map(|_| true);
        }
        Ok(self.find_by_name(&at.remote_key).await?.is_some())
    }

    async fn validate(&self) -> Result<Validation> {
        self.list().await?;
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_as_strfmt_reads_them() {
        assert!(is_uuid("339062b8-a5a1-4303-bf1d-b1920146a622"));
        assert!(is_uuid("339062B8A5A14303BF1DB1920146A622"));
        assert!(!is_uuid("secret-name"));
        assert!(!is_uuid("339062b8-a5a1-4303-bf1d-b1920146a62"));
    }

    #[test]
    fn extract_reads_yaml_and_json_as_eso() {
        let v = Value(SecretValue::from(
            r#"{"user":"admin","port":5432,"tls":{"on":true},"nil":null}"#,
        ));
        let m = v.extract("k", None).unwrap();
        assert_eq!(m["user"].as_bytes(), b"admin");
        assert_eq!(m["port"].as_bytes(), b"5432");
        assert_eq!(m["tls"].as_bytes(), b"on: true");
        assert_eq!(m["nil"].as_bytes(), b"<nil>");
        let y = Value(SecretValue::from("a: 1\nb: two\n")).extract("k", None).unwrap();
        assert_eq!(y["b"].as_bytes(), b"two");
        assert!(Value(SecretValue::from("just s3cr3t text")).extract("k", None).is_err());
        assert_eq!(v.select("k", Some("user")).unwrap(), v.0, "the property is ignored");
    }

    #[test]
    fn the_note_is_found_anywhere_in_the_metadata() {
        assert_eq!(note(None).unwrap(), "");
        assert_eq!(note(Some(r#"{"note":"n1"}"#)).unwrap(), "n1");
        assert_eq!(
            note(Some(
                r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","spec":{"note":"n2"}}"#
            ))
            .unwrap(),
            "n2"
        );
        assert!(note(Some("{not json")).is_err());
    }
}
