//! The Secret Manager client of one store: reads, find, push, delete, over `google-cloud-secretmanager-v1`.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use google_cloud_gax::error::rpc::Code;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::{self, replication};
use syncret_crds::provider::gcpsm::SecretVersionSelectionPolicy;

use super::auth::{LABEL, TokenSource};
use crate::client::{CallObserver, Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation, observed};
use crate::error::{ProviderError, Result};
use crate::value::{RemoteValue, SecretValue};

/// The label PushSecret puts on the secrets it creates, and requires before overwriting or deleting one.
pub const MANAGED_BY_KEY: &str = "managed-by";
pub const MANAGED_BY_VALUE: &str = "external-secrets";
/// Secrets per `ListSecrets` page.
const PAGE_SIZE: i32 = 250;

pub(crate) struct GcpClient {
    sm: SecretManagerService,
    auth: Arc<TokenSource>,
    project: String,
    location: String,
    policy: SecretVersionSelectionPolicy,
    observer: Arc<dyn CallObserver>,
}

/// A secret's resource name, and the version a key named (full resource names may carry one).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// `projects/P[/locations/L]/secrets/S`
    pub name: String,
    pub version: Option<String>,
}

impl Target {
    /// The secret id (`S`).
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }

    /// `projects/P[/locations/L]`
    pub fn parent(&self) -> &str {
        self.name.rsplit_once("/secrets/").map_or("", |(p, _)| p)
    }
}

/// `projects/P` or `projects/P/locations/L`.
pub(crate) fn parent(project: &str, location: &str) -> String {
    if location.is_empty() {
        format!("projects/{project}")
    } else {
        format!("projects/{project}/locations/{location}")
    }
}

/// Resolves `remoteRef.key`: a secret id of the store's project (and location), or a full resource name.
pub(crate) fn target(project: &str, location: &str, key: &str) -> Target {
    if key.starts_with("projects/") && key.contains("/secrets/") {
        if let Some((name, version)) = key.split_once("/versions/") {
            return Target {
                name: name.to_string(),
                version: Some(version.to_string()).filter(|v| !v.is_empty()),
            };
        }
        return Target {
            name: key.to_string(),
            version: None,
        };
    }
    Target {
        name: format!("{}/secrets/{key}", parent(project, location)),
        version: None,
    }
}

/// Maps a Secret Manager error; `key` names the secret for NotFound.
pub(crate) fn map_err(e: &google_cloud_secretmanager_v1::Error, key: &str) -> ProviderError {
    map_service_err(e, key, "Secret Manager")
}

/// Maps an error of a Google API client (`service` names it in messages); `key` names the object for NotFound and
/// invalid values. The server's message is quoted up to 200 characters.
pub(crate) fn map_service_err(e: &google_cloud_gax::error::Error, key: &str, service: &str) -> ProviderError {
    const MAX_MESSAGE: usize = 200;
    let short = |m: &str| {
        let mut out: String = m.chars().take(MAX_MESSAGE).collect();
        if out.len() < m.len() {
            out.push('…');
        }
        out
    };
    if let Some(status) = e.status() {
        let msg = short(&status.message);
        return match status.code {
            Code::NotFound => ProviderError::NotFound { key: key.to_string() },
            Code::PermissionDenied => ProviderError::AccessDenied(msg),
            Code::Unauthenticated => ProviderError::Auth(msg),
            Code::ResourceExhausted => ProviderError::Throttled { retry_after: None },
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => ProviderError::InvalidValue {
                key: key.to_string(),
                message: msg,
            },
            _ => ProviderError::Transport(format!("{service}: {:?}: {msg}", status.code)),
        };
    }
    if e.is_authentication() {
        return ProviderError::Auth(short(&crate::error::error_chain(e)));
    }
    ProviderError::Transport(format!("{service}: {}", short(&crate::error::error_chain(e))))
}

/// Whether an AccessSecretVersion error means the version is disabled or destroyed (LatestOrFetch falls back).
fn disabled_or_destroyed(e: &google_cloud_secretmanager_v1::Error) -> bool {
    e.status().is_some_and(|s| {
        s.code == Code::FailedPrecondition
            && (s.message.contains("DESTROYED state") || s.message.contains("DISABLED state"))
    })
}

/// `{"annotations":…,"labels":…}` (ESO's metadata document).
pub(crate) fn metadata_json(secret: &model::Secret) -> SecretValue {
    let sorted = |m: &HashMap<String, String>| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let doc = serde_json::json!({"annotations": sorted(&secret.annotations), "labels": sorted(&secret.labels)});
    SecretValue::from(doc.to_string())
}

/// The server-side `ListSecrets` filter for a find: `labels.K=V` terms and `name:PATH`, ANDed.
pub(crate) fn list_filter(find: &FindQuery) -> String {
    let mut terms: Vec<String> = find.tags.iter().map(|(k, v)| format!("labels.{k}={v}")).collect();
    if let Some(path) = find.path.as_deref().filter(|p| !p.is_empty()) {
        terms.push(format!("name:{path}"));
    }
    terms.join(" ")
}

/// The `spec` of a PushSecret `data[].metadata` document (`kind: PushSecretMetadata`).
#[derive(serde::Deserialize, Default, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PushMetadata {
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub topics: Vec<String>,
    /// `Replace` (default) or `Merge` (keep the secret's other labels).
    #[serde(default)]
    pub merge_policy: String,
    #[serde(default, rename = "cmekKeyName")]
    pub cmek_key_name: String,
    #[serde(default)]
    pub replication_location: String,
    #[serde(default)]
    pub replication_locations: Vec<String>,
}

pub(crate) fn push_metadata(raw: Option<&str>, key: &str) -> Result<Option<PushMetadata>> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default, rename = "apiVersion")]
        api_version: String,
        #[serde(default)]
        kind: String,
        #[serde(default)]
        spec: PushMetadata,
    }
    let invalid = |m: String| ProviderError::InvalidValue {
        key: key.to_string(),
        message: m,
    };
    let doc: Doc = serde_json::from_str(raw).map_err(|e| invalid(format!("PushSecret metadata is not valid: {e}")))?;
    if doc.kind != "PushSecretMetadata" || doc.api_version != "kubernetes.external-secrets.io/v1alpha1" {
        return Err(invalid(format!(
            "PushSecret metadata must be apiVersion kubernetes.external-secrets.io/v1alpha1, kind PushSecretMetadata (got {:?}, {:?})",
            doc.api_version, doc.kind
        )));
    }
    Ok(Some(doc.spec))
}

/// The replication of a new secret from push metadata (None: automatic), as ESO's `buildReplication`.
pub(crate) fn replication(meta: &PushMetadata) -> Option<model::Replication> {
    let mut locations = meta.replication_locations.clone();
    if locations.is_empty() && !meta.replication_location.is_empty() {
        locations.push(meta.replication_location.clone());
    }
    let cmek = (!meta.cmek_key_name.is_empty())
        .then(|| model::CustomerManagedEncryption::new().set_kms_key_name(meta.cmek_key_name.clone()));
    if locations.is_empty() {
        return cmek.map(|c| {
            model::Replication::new().set_automatic(replication::Automatic::new().set_customer_managed_encryption(c))
        });
    }
    let replicas = locations.into_iter().map(|l| {
        let r = replication::user_managed::Replica::new().set_location(l);
        match &cmek {
            Some(c) => r.set_customer_managed_encryption(c.clone()),
            None => r,
        }
    });
    Some(model::Replication::new().set_user_managed(replication::UserManaged::new().set_replicas(replicas)))
}

/// Sets `property` (a top-level key if the document has it, else a dotted path, creating objects) to the string
/// `value` in the JSON object `original` (an empty object when there is none), as ESO's sjson.
pub(crate) fn set_property(original: Option<&[u8]>, property: &str, value: &SecretValue, key: &str) -> Result<Vec<u8>> {
    let invalid = |m: &str| ProviderError::InvalidValue {
        key: key.to_string(),
        message: m.to_string(),
    };
    let text = value
        .as_str()
        .ok_or_else(|| invalid("a value pushed into a property must be UTF-8 text"))?;
    let mut doc = match original.filter(|o| !o.is_empty()) {
        None => serde_json::Value::Object(Default::default()),
        Some(o) => {
            serde_json::from_slice(o).map_err(|_| invalid("cannot set a property: the secret's value is not JSON"))?
        }
    };
    let serde_json::Value::Object(root) = &mut doc else {
        return Err(invalid(
            "cannot set a property: the secret's value is not a JSON object",
        ));
    };
    if root.contains_key(property) {
        root.insert(property.to_string(), text.into());
    } else {
        let parts = split_path(property);
        let mut node = root;
        for (i, part) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                node.insert(part.clone(), text.into());
                break;
            }
            let next = node
                .entry(part.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if !next.is_object() {
                *next = serde_json::Value::Object(Default::default());
            }
            let serde_json::Value::Object(map) = next else {
                return Err(invalid("cannot set a property"));
            };
            node = map;
        }
    }
    serde_json::to_vec(&doc).map_err(|_| invalid("cannot encode the value"))
}

/// A gjson-style path split on unescaped dots (`a\.b.c` → `a.b`, `c`).
fn split_path(path: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next()
                    && let Some(last) = parts.last_mut()
                {
                    last.push(n);
                }
            }
            '.' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

impl GcpClient {
    pub(crate) fn new(
        sm: SecretManagerService,
        auth: Arc<TokenSource>,
        project: String,
        location: String,
        policy: SecretVersionSelectionPolicy,
        observer: Arc<dyn CallObserver>,
    ) -> Self {
        Self {
            sm,
            auth,
            project,
            location,
            policy,
            observer,
        }
    }

    fn target(&self, key: &str) -> Target {
        target(&self.project, &self.location, key)
    }

    /// Runs one Secret Manager call, observed as `call`. The token is checked first (so credential problems
    /// keep their own error); a rejected token is forgotten so the next call gets a new one.
    async fn call<T>(
        &self,
        call: &'static str,
        key: &str,
        fut: impl std::future::Future<Output = google_cloud_secretmanager_v1::Result<T>>,
    ) -> Result<T> {
        self.auth.headers().await?;
        observed(&self.observer, LABEL, call, async {
            match fut.await {
                Ok(v) => Ok(v),
                Err(e) => {
                    let err = map_err(&e, key);
                    if matches!(err, ProviderError::Auth(_)) {
                        self.auth.forget().await;
                    }
                    Err(err)
                }
            }
        })
        .await
    }

    /// Like [`GcpClient::call`], but keeps the raw error (for LatestOrFetch and push's NotFound checks).
    async fn call_raw<T>(
        &self,
        call: &'static str,
        fut: impl std::future::Future<Output = google_cloud_secretmanager_v1::Result<T>>,
    ) -> Result<std::result::Result<T, google_cloud_secretmanager_v1::Error>> {
        self.auth.headers().await?;
        let start = std::time::Instant::now();
        let res = fut.await;
        let ok = res.is_ok()
            || res
                .as_ref()
                .err()
                .and_then(|e| e.status())
                .is_some_and(|s| s.code == Code::NotFound);
        self.observer.observe(LABEL, call, ok, start.elapsed());
        if let Err(e) = &res
            && e.status().is_some_and(|s| s.code == Code::Unauthenticated)
        {
            self.auth.forget().await;
        }
        Ok(res)
    }

    async fn get_secret_meta(&self, t: &Target, key: &str) -> Result<model::Secret> {
        self.call("GetSecret", key, self.sm.get_secret().set_name(t.name.clone()).send())
            .await
    }

    async fn access(&self, version_name: String, key: &str) -> Result<SecretValue> {
        let resp = self
            .call(
                "AccessSecretVersion",
                key,
                self.sm.access_secret_version().set_name(version_name).send(),
            )
            .await?;
        Ok(SecretValue::from(
            resp.payload.map(|p| p.data.to_vec()).unwrap_or_default(),
        ))
    }

    /// The newest enabled version's value (LatestOrFetch), or `latest`'s error when there is none.
    async fn latest_enabled(&self, t: &Target, key: &str) -> Result<SecretValue> {
        let mut newest: Option<((i64, i32), String)> = None;
        let mut token = String::new();
        loop {
            let page = self
                .call(
                    "ListSecretVersions",
                    key,
                    self.sm
                        .list_secret_versions()
                        .set_parent(t.name.clone())
                        .set_filter("state:ENABLED")
                        .set_page_token(token.clone())
                        .send(),
                )
                .await?;
            for v in page.versions {
                if v.state != model::secret_version::State::Enabled {
                    continue; // the server may ignore the filter
                }
                let at = v.create_time.map(|t| (t.seconds(), t.nanos())).unwrap_or_default();
                if newest.as_ref().is_none_or(|(n, _)| at > *n) {
                    newest = Some((at, v.name));
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let name = newest.map_or_else(|| format!("{}/versions/latest", t.name), |(_, n)| n);
        self.access(name, key).await
    }

    /// The value of `key` at `version` (default `latest`), with the store's version selection policy.
    async fn value(&self, key: &str, version: Option<&str>) -> Result<SecretValue> {
        let t = self.target(key);
        let explicit = version.or(t.version.as_deref());
        let name = format!("{}/versions/{}", t.name, explicit.unwrap_or("latest"));
        let res = self
            .call_raw(
                "AccessSecretVersion",
                self.sm.access_secret_version().set_name(name).send(),
            )
            .await?;
        match res {
            Ok(resp) => Ok(SecretValue::from(
                resp.payload.map(|p| p.data.to_vec()).unwrap_or_default(),
            )),
            Err(e)
                if explicit.is_none()
                    && self.policy == SecretVersionSelectionPolicy::LatestOrFetch
                    && disabled_or_destroyed(&e) =>
            {
                self.latest_enabled(&t, key).await
            }
            Err(e) => Err(map_err(&e, key)),
        }
    }
}

#[async_trait]
impl SecretsClient for GcpClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        if key.fetch_metadata {
            let secret = self.get_secret_meta(&self.target(&key.key), &key.key).await?;
            return Ok(RemoteValue::Bytes(metadata_json(&secret)));
        }
        Ok(RemoteValue::Bytes(self.value(&key.key, key.version.as_deref()).await?))
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        if find.name.is_none() && find.tags.is_empty() && find.path.as_deref().is_none_or(str::is_empty) {
            return Err(ProviderError::invalid_config(
                "dataFrom.find",
                "GCP Secret Manager needs name.regexp, tags or path",
            ));
        }
        let parent = parent(&self.project, &self.location);
        let filter = list_filter(find);
        let mut ids = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .call(
                    "ListSecrets",
                    &parent,
                    self.sm
                        .list_secrets()
                        .set_parent(parent.clone())
                        .set_filter(filter.clone())
                        .set_page_size(PAGE_SIZE)
                        .set_page_token(token.clone())
                        .send(),
                )
                .await?;
            for s in page.secrets {
                // The server may ignore (parts of) the filter: check everything here too.
                let id = s.name.rsplit('/').next().unwrap_or_default().to_string();
                let labels: BTreeMap<String, String> = s.labels.into_iter().collect();
                let in_path = find.path.as_deref().is_none_or(|p| id.starts_with(p));
                if find.matches_name(&id) && find.matches_tags(&labels) && in_path {
                    ids.push(id);
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(8) {
            let reads = chunk.iter().map(|id| self.value(id, None));
            for (id, value) in chunk.iter().zip(futures::future::join_all(reads).await) {
                out.insert(id.clone(), value?);
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        let key = to.remote_key.as_str();
        let t = self.target(key);
        let property = to.property.as_deref().filter(|p| !p.is_empty());
        let meta = push_metadata(to.metadata.as_deref(), key)?;
        if property.is_some() && meta.is_some() {
            return Err(ProviderError::InvalidValue {
                key: key.to_string(),
                message: "cannot specify metadata and property at the same time".into(),
            });
        }
        let existing = self
            .call_raw("GetSecret", self.sm.get_secret().set_name(t.name.clone()).send())
            .await?;
        let secret = match existing {
            Ok(s) => s,
            Err(e) if e.status().is_some_and(|s| s.code == Code::NotFound) => {
                let mut new = model::Secret::new().set_labels([(MANAGED_BY_KEY, MANAGED_BY_VALUE)]);
                if !meta.as_ref().is_none_or(|m| m.topics.is_empty()) {
                    let topics = meta.iter().flat_map(|m| m.topics.iter());
                    new = new.set_topics(topics.map(|t| model::Topic::new().set_name(t.clone())));
                }
                // Regional secrets take no replication.
                if !t.parent().contains("/locations/") {
                    let r = meta
                        .as_ref()
                        .and_then(replication)
                        .unwrap_or_else(|| model::Replication::new().set_automatic(replication::Automatic::new()));
                    new = new.set_replication(r);
                }
                self.call(
                    "CreateSecret",
                    key,
                    self.sm
                        .create_secret()
                        .set_parent(t.parent().to_string())
                        .set_secret_id(t.id().to_string())
                        .set_secret(new)
                        .send(),
                )
                .await?
            }
            Err(e) => return Err(map_err(&e, key)),
        };
        let managed = secret.labels.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE);
        let (labels, annotations) = match property {
            None => {
                if !managed {
                    return Err(ProviderError::InvalidValue {
                        key: key.to_string(),
                        message: format!(
                            "secret is not managed by external-secrets (no label {MANAGED_BY_KEY}={MANAGED_BY_VALUE}): refusing to overwrite it"
                        ),
                    });
                }
                let m = meta.unwrap_or_default();
                let mut labels: HashMap<String, String> = m.labels.into_iter().collect();
                if m.merge_policy == "Merge" {
                    labels.extend(secret.labels.clone());
                }
                labels.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
                (labels, m.annotations.into_iter().collect::<HashMap<_, _>>())
            }
            Some(_) => {
                // As ESO: a property push keeps the secret's metadata and marks it managed.
                let mut labels = secret.labels.clone();
                labels.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
                (labels, secret.annotations.clone())
            }
        };
        if labels != secret.labels || annotations != secret.annotations {
            let update = model::Secret::new()
                .set_name(secret.name.clone())
                .set_etag(secret.etag.clone())
                .set_labels(labels)
                .set_annotations(annotations);
            self.call(
                "UpdateSecret",
                key,
                self.sm
                    .update_secret()
                    .set_secret(update)
                    .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths(["labels", "annotations"]))
                    .send(),
            )
            .await?;
        }
        let latest = self
            .call_raw(
                "AccessSecretVersion",
                self.sm
                    .access_secret_version()
                    .set_name(format!("{}/versions/latest", t.name))
                    .send(),
            )
            .await?;
        let original = match latest {
            Ok(resp) => resp.payload.map(|p| p.data.to_vec()),
            Err(e) if e.status().is_some_and(|s| s.code == Code::NotFound) => None,
            Err(e) => return Err(map_err(&e, key)),
        };
        let data = match (property, &original) {
            (None, Some(o)) if o.as_slice() == value.as_bytes() => return Ok(()),
            (None, _) => value.to_vec(),
            (Some(p), o) => {
                if let Some(o) = o
                    && crate::property::select(key, &SecretValue::from(o.clone()), Some(p))
                        .is_ok_and(|v| v.as_bytes() == value.as_bytes())
                {
                    return Ok(());
                }
                set_property(original.as_deref(), p, value, key)?
            }
        };
        self.call(
            "AddSecretVersion",
            key,
            self.sm
                .add_secret_version()
                .set_parent(t.name.clone())
                .set_payload(model::SecretPayload::new().set_data(data))
                .send(),
        )
        .await?;
        Ok(())
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let key = at.remote_key.as_str();
        let t = self.target(key);
        let existing = self
            .call_raw("GetSecret", self.sm.get_secret().set_name(t.name.clone()).send())
            .await?;
        let secret = match existing {
            Ok(s) => s,
            Err(e) if e.status().is_some_and(|s| s.code == Code::NotFound) => return Ok(()),
            Err(e) => return Err(map_err(&e, key)),
        };
        if secret.labels.get(MANAGED_BY_KEY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
            // Not ours: leave it (ESO does the same).
            return Ok(());
        }
        match self
            .call_raw(
                "DeleteSecret",
                self.sm
                    .delete_secret()
                    .set_name(t.name.clone())
                    .set_etag(secret.etag)
                    .send(),
            )
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if e.status().is_some_and(|s| s.code == Code::NotFound) => Ok(()),
            Err(e) => Err(map_err(&e, key)),
        }
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        let key = at.remote_key.as_str();
        let t = self.target(key);
        let res = self
            .call_raw(
                "ListSecretVersions",
                self.sm
                    .list_secret_versions()
                    .set_parent(t.name.clone())
                    .set_filter("state:ENABLED")
                    .set_page_size(1)
                    .send(),
            )
            .await?;
        match res {
            Ok(page) => Ok(page
                .versions
                .iter()
                .any(|v| v.state == model::secret_version::State::Enabled)),
            Err(e) if e.status().is_some_and(|s| s.code == Code::NotFound) => Ok(false),
            Err(e) => Err(map_err(&e, key)),
        }
    }

    async fn validate(&self) -> Result<Validation> {
        // The credentials work when a token can be had (cached: no call while it is fresh). A ListSecrets
        // probe would need list permission that read-only stores often lack.
        self.auth.headers().await?;
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
    fn keys_and_names() {
        assert_eq!(
            target("p", "", "db"),
            Target {
                name: "projects/p/secrets/db".into(),
                version: None
            }
        );
        let t = target("p", "eu", "db");
        assert_eq!(
            (t.name.as_str(), t.parent(), t.id()),
            ("projects/p/locations/eu/secrets/db", "projects/p/locations/eu", "db")
        );
        let t = target("p", "", "projects/other/secrets/x/versions/3");
        assert_eq!(
            (t.name.as_str(), t.version.as_deref()),
            ("projects/other/secrets/x", Some("3"))
        );
        assert_eq!(t.parent(), "projects/other");
        assert_eq!(
            target("p", "", "projects/o/locations/l/secrets/y").name,
            "projects/o/locations/l/secrets/y"
        );
    }

    #[test]
    fn filters() {
        let mut f = FindQuery::default();
        f.tags.insert("env".into(), "prod".into());
        f.tags.insert("team".into(), "a".into());
        f.path = Some("app-".into());
        assert_eq!(list_filter(&f), "labels.env=prod labels.team=a name:app-");
        assert_eq!(list_filter(&FindQuery::default()), "");
    }

    #[test]
    fn metadata_document() {
        let s = model::Secret::new()
            .set_labels([("b", "2"), ("a", "1")])
            .set_annotations([("note", "x")]);
        assert_eq!(
            metadata_json(&s).as_str().unwrap(),
            r#"{"annotations":{"note":"x"},"labels":{"a":"1","b":"2"}}"#
        );
    }

    #[test]
    fn push_metadata_parsing() {
        assert_eq!(push_metadata(None, "k").unwrap(), None);
        let m = push_metadata(
            Some(r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"labels":{"a":"b"},"mergePolicy":"Merge","replicationLocations":["europe-west1"]}}"#),
            "k",
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.labels["a"], "b");
        assert_eq!(m.merge_policy, "Merge");
        let r = replication(&m).unwrap();
        assert_eq!(r.user_managed().unwrap().replicas[0].location, "europe-west1");
        assert!(replication(&PushMetadata::default()).is_none());
        assert!(push_metadata(Some(r#"{"kind":"Other","spec":{}}"#), "k").is_err());
        assert!(push_metadata(Some("not json"), "k").is_err());
    }

    #[test]
    fn property_set_like_sjson() {
        let v = SecretValue::from("s3");
        let out = |o: Option<&str>, p: &str| -> serde_json::Value {
            serde_json::from_slice(&set_property(o.map(str::as_bytes), p, &v, "k").unwrap()).unwrap()
        };
        let json = |s: &str| -> serde_json::Value { serde_json::from_str(s).unwrap() };
        assert_eq!(out(None, "pw"), json(r#"{"pw":"s3"}"#));
        assert_eq!(out(Some(r#"{"user":"a"}"#), "pw"), json(r#"{"pw":"s3","user":"a"}"#));
        assert_eq!(
            out(Some(r#"{"db":{"user":"a"}}"#), "db.pw"),
            json(r#"{"db":{"pw":"s3","user":"a"}}"#)
        );
        assert_eq!(
            out(Some(r#"{"tls.crt":"old"}"#), "tls.crt"),
            json(r#"{"tls.crt":"s3"}"#)
        );
        assert_eq!(out(None, r"a\.b"), json(r#"{"a.b":"s3"}"#));
        assert!(set_property(Some(b"[1]"), "x", &v, "k").is_err());
        assert!(set_property(Some(b"plain"), "x", &v, "k").is_err());
    }
}
