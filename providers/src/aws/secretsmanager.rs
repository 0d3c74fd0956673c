//! The Secrets Manager client: reads (batched across ExternalSecrets), `dataFrom.find`, PushSecret, validation.
//!
//! Reads of the current value (`version` unset or `AWSCURRENT`) go through the [`Batcher`]: a batch of one
//! id is a `GetSecretValue`, a larger one a `BatchGetSecretValue` (ids it does not answer are read one by
//! one). Version-specific reads (`uuid/<VersionId>` or a VersionStage) are `GetSecretValue` calls, which
//! `BatchGetSecretValue` cannot express. `BatchGetSecretValue` needs its own IAM permission, which stores
//! set up for ESO may lack: when AWS denies it, the client reads one by one (as ESO) and tries batching again
//! after [`BATCH_DENIED_BACKOFF`].
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use syncret_crds::provider::aws::SecretsManager as DeleteSettings;

use super::batch::{self, BatchDenied, Batcher, FetchMany};
use super::push::{self, Format};
use super::{LABEL, errors};
use crate::client::{CallObserver, Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation, observed};
use crate::error::{ProviderError, Result};
use crate::value::{RemoteValue, SecretValue};

/// How long reads go one by one after AWS denied `BatchGetSecretValue`.
const BATCH_DENIED_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// `ListSecrets` page size (AWS's maximum).
const LIST_PAGE: i32 = 100;
/// At most this many ids per `BatchGetSecretValue` (its limit for `SecretIdList`).
pub(crate) const MAX_BATCH: usize = 20;
/// At most this many matches of a `find` are read at once (5 batches).
const FIND_READS_AT_ONCE: usize = 5 * MAX_BATCH;

/// Which version of a secret a read wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    /// `AWSCURRENT` (batchable).
    Current,
    Stage(String),
    Id(String),
}

/// ESO's `version`: empty → AWSCURRENT, `uuid/<id>` → VersionId, anything else → VersionStage.
pub(crate) fn parse_version(version: Option<&str>) -> Version {
    match version.map(str::trim).filter(|v| !v.is_empty()) {
        None | Some("AWSCURRENT") => Version::Current,
        Some(v) => match v.strip_prefix("uuid/") {
            Some(id) => Version::Id(id.to_string()),
            None => Version::Stage(v.to_string()),
        },
    }
}

/// The value of a `GetSecretValue` / `BatchGetSecretValue` answer: SecretString or SecretBinary.
fn value_of(id: &str, string: Option<&str>, binary: Option<&Blob>) -> Result<SecretValue> {
    match (binary, string) {
        (Some(b), _) => Ok(SecretValue::from(b.as_ref())),
        (None, Some(s)) => Ok(SecretValue::from(s)),
        (None, None) => Err(ProviderError::InvalidValue {
            key: id.to_string(),
            message: "the secret has neither a string nor a binary value".into(),
        }),
    }
}

/// Talks to Secrets Manager; shared by the batcher (reads) and the client (everything else).
pub(crate) struct Api {
    sm: aws_sdk_secretsmanager::Client,
    observer: Arc<dyn CallObserver>,
    throttle_wait: Option<Duration>,
    batch_denied: BatchDenied,
}

impl Api {
    fn err<E>(&self, e: aws_sdk_secretsmanager::error::SdkError<E, HttpResponse>, op: &str, id: &str) -> ProviderError
    where
        E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        errors::from_sdk(e, op, id, self.throttle_wait)
    }

    /// `GetSecretValue` of one version.
    async fn get_value(&self, id: &str, version: &Version) -> Result<SecretValue> {
        observed(&self.observer, LABEL, "GetSecretValue", async {
            let req = self.sm.get_secret_value().secret_id(id);
            let req = match version {
                Version::Current => req,
                Version::Stage(s) => req.version_stage(s),
                Version::Id(v) => req.version_id(v),
            };
            let out = req.send().await.map_err(|e| self.err(e, "GetSecretValue", id))?;
            value_of(id, out.secret_string(), out.secret_binary())
        })
        .await
    }

    /// `BatchGetSecretValue` by ids: an answer per id it mentions (by name or ARN), errors per id included.
    async fn batch_get(&self, ids: &[String]) -> Result<HashMap<String, Result<SecretValue>>> {
        let mut out: HashMap<String, Result<SecretValue>> = HashMap::new();
        let mut next: Option<String> = None;
        loop {
            let page = observed(&self.observer, LABEL, "BatchGetSecretValue", async {
                self.sm
                    .batch_get_secret_value()
                    .set_secret_id_list(Some(ids.to_vec()))
                    .set_next_token(next.clone())
                    .send()
                    .await
                    .map_err(|e| self.err(e, "BatchGetSecretValue", &ids.join(",")))
            })
            .await?;
            for v in page.secret_values() {
                let name = v.name().unwrap_or_default();
                let value = value_of(name, v.secret_string(), v.secret_binary());
                for id in [v.name(), v.arn()].into_iter().flatten() {
                    out.insert(id.to_string(), errors::duplicate_result(&value));
                }
            }
            for e in page.errors() {
                if let Some(id) = e.secret_id() {
                    let err = errors::from_code(
                        e.error_code().unwrap_or_default(),
                        e.message().unwrap_or_default(),
                        None,
                        id,
                        self.throttle_wait,
                    );
                    out.insert(id.to_string(), Err(err));
                }
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) => next = Some(t.to_string()),
                None => return Ok(out),
            }
        }
    }

    async fn one_by_one(&self, ids: &[String]) -> Vec<Result<SecretValue>> {
        futures::future::join_all(ids.iter().map(|id| self.get_value(id, &Version::Current))).await
    }

    /// `DescribeSecret`.
    async fn describe(
        &self,
        id: &str,
    ) -> Result<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput> {
        observed(&self.observer, LABEL, "DescribeSecret", async {
            self.sm
                .describe_secret()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| self.err(e, "DescribeSecret", id))
        })
        .await
    }
}

#[async_trait]
impl FetchMany for Api {
    async fn fetch_many(&self, ids: &[String]) -> Vec<Result<SecretValue>> {
        if ids.len() == 1 || self.batch_denied.active() {
            return self.one_by_one(ids).await;
        }
        let answered = self.batch_get(ids).await;
        batch::per_id(
            ids,
            answered,
            &self.batch_denied,
            BATCH_DENIED_BACKOFF,
            "BatchGetSecretValue",
            |missing| async move { self.one_by_one(&missing).await },
        )
        .await
    }
}

/// A Secrets Manager store's client.
pub(crate) struct SecretsManager {
    reads: Batcher<Api>,
    prefix: String,
    delete_settings: Option<DeleteSettings>,
}

impl SecretsManager {
    pub(crate) fn new(
        sm: aws_sdk_secretsmanager::Client,
        prefix: String,
        delete_settings: Option<DeleteSettings>,
        observer: Arc<dyn CallObserver>,
        throttle_wait: Option<Duration>,
        batch_window: Duration,
    ) -> Self {
        let api = Api {
            sm,
            observer,
            throttle_wait,
            batch_denied: BatchDenied::default(),
        };
        Self {
            reads: Batcher::new(api, batch_window, MAX_BATCH),
            prefix,
            delete_settings,
        }
    }

    fn api(&self) -> &Api {
        self.reads.fetcher()
    }

    fn id(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `metadataPolicy: Fetch`: the secret's tags as a JSON object.
    async fn tags_json(&self, id: &str) -> Result<SecretValue> {
        let desc = self.api().describe(id).await?;
        let tags: BTreeMap<&str, &str> = desc
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
            .collect();
        serde_json::to_string(&tags)
            .map(SecretValue::from)
            .map_err(|e| ProviderError::InvalidValue {
                key: id.to_string(),
                message: format!("tags: {e}"),
            })
    }

    /// The current value of `id`, or `None` when the secret does not exist (or awaits deletion).
    async fn current(&self, id: &str) -> Result<Option<SecretValue>> {
        match self.api().get_value(id, &Version::Current).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `ListSecrets` with `filters`, all pages: (name, tags) of every secret.
    async fn list(&self, filters: Vec<Filter>) -> Result<Vec<(String, BTreeMap<String, String>)>> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = observed(&self.api().observer, LABEL, "ListSecrets", async {
                self.api()
                    .sm
                    .list_secrets()
                    .set_filters((!filters.is_empty()).then(|| filters.clone()))
                    .max_results(LIST_PAGE)
                    .set_next_token(next.clone())
                    .send()
                    .await
                    .map_err(|e| self.api().err(e, "ListSecrets", "*"))
            })
            .await?;
            for s in page.secret_list() {
                let Some(name) = s.name() else { continue };
                let tags = s
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                    .collect();
                out.push((name.to_string(), tags));
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) => next = Some(t.to_string()),
                None => return Ok(out),
            }
        }
    }

    async fn sync_tags(&self, id: &str, current: &[Tag], meta: &push::PushMetadata) -> Result<()> {
        if !meta.manage_tags {
            return Ok(());
        }
        let (remove, changed) = push::tag_changes(
            current
                .iter()
                .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
            &meta.tags,
        );
        if !remove.is_empty() {
            observed(&self.api().observer, LABEL, "UntagResource", async {
                self.api()
                    .sm
                    .untag_resource()
                    .secret_id(id)
                    .set_tag_keys(Some(remove.clone()))
                    .send()
                    .await
                    .map_err(|e| self.api().err(e, "UntagResource", id))
            })
            .await?;
        }
        if changed {
            observed(&self.api().observer, LABEL, "TagResource", async {
                self.api()
                    .sm
                    .tag_resource()
                    .secret_id(id)
                    .set_tags(Some(sdk_tags(&meta.tags)))
                    .send()
                    .await
                    .map_err(|e| self.api().err(e, "TagResource", id))
            })
            .await?;
        }
        Ok(())
    }

    async fn put_value(&self, id: &str, value: &SecretValue, format: Format) -> Result<()> {
        observed(&self.api().observer, LABEL, "PutSecretValue", async {
            let req = self.api().sm.put_secret_value().secret_id(id);
            let req = match format {
                Format::Binary => req.secret_binary(Blob::new(value.to_vec())),
                Format::String => req.secret_string(String::from_utf8_lossy(value.as_bytes())),
            };
            req.send().await.map_err(|e| self.api().err(e, "PutSecretValue", id))?;
            Ok(())
        })
        .await
    }

    /// Refuses to touch a secret that ESO or syncret did not create.
    fn check_managed(id: &str, tags: &[Tag]) -> Result<()> {
        if push::is_managed(
            tags.iter()
                .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
        ) {
            Ok(())
        } else {
            Err(ProviderError::AccessDenied(format!(
                "secret {id:?} exists and is not managed by external-secrets (no tag {}={}): refusing to overwrite it",
                push::MANAGED_BY_KEY,
                push::MANAGED_BY_VALUE
            )))
        }
    }
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn filter(key: FilterNameStringType, value: &str) -> Filter {
    Filter::builder().key(key).values(value).build()
}

#[async_trait]
impl SecretsClient for SecretsManager {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        let id = self.id(&key.key);
        if key.fetch_metadata {
            return self.tags_json(&id).await.map(RemoteValue::Bytes);
        }
        let value = match parse_version(key.version.as_deref()) {
            Version::Current => self.reads.get(id).await?,
            v => self.api().get_value(&id, &v).await?,
        };
        Ok(RemoteValue::Bytes(value))
    }

    async fn get_secrets(&self, keys: &[RemoteKey]) -> Vec<Result<RemoteValue>> {
        // All at once: the batcher groups them (and whatever other ExternalSecrets read meanwhile).
        futures::future::join_all(keys.iter().map(|k| self.get_secret(k))).await
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        let path = find.path.as_deref().filter(|p| !p.is_empty());
        if find.name.is_none() && find.tags.is_empty() && path.is_none() {
            return Err(ProviderError::invalid_config(
                "dataFrom.find",
                "one of name, tags or path must be set",
            ));
        }
        // Server-side filters narrow the listing (AWS matches them by prefix); the exact rules are applied here.
        let mut filters = Vec::new();
        for (k, v) in &find.tags {
            filters.push(filter(FilterNameStringType::TagKey, k));
            filters.push(filter(FilterNameStringType::TagValue, v));
        }
        if let Some(p) = path {
            filters.push(filter(FilterNameStringType::Name, p));
        }
        let names: Vec<String> = self
            .list(filters)
            .await?
            .into_iter()
            .filter(|(name, tags)| {
                find.matches_name(name) && find.matches_tags(tags) && path.is_none_or(|p| name.starts_with(p))
            })
            .map(|(name, _)| name)
            .collect();
        let mut out = BTreeMap::new();
        for chunk in names.chunks(FIND_READS_AT_ONCE) {
            let reads = chunk.iter().map(|n| self.reads.get(n.clone()));
            for (name, r) in chunk.iter().zip(futures::future::join_all(reads).await) {
                match r {
                    Ok(v) => {
                        out.insert(name.clone(), v);
                    }
                    // Deleted between the listing and the read.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        let id = self.id(&to.remote_key);
        let meta = push::parse_metadata(to.metadata.as_deref())?;
        let property = to.property.as_deref();
        let desc = match self.api().describe(&id).await {
            Ok(d) => Some(d),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let Some(desc) = desc else {
            let new = push::merged_value(&id, None, property, value)?;
            return observed(&self.api().observer, LABEL, "CreateSecret", async {
                let req = self
                    .api()
                    .sm
                    .create_secret()
                    .name(&id)
                    .set_tags(Some(sdk_tags(&meta.tags)))
                    .description(&meta.description)
                    .client_request_token(push::INITIAL_VERSION)
                    .set_kms_key_id(meta.kms_key_id.clone());
                let req = match meta.format {
                    Format::Binary => req.secret_binary(Blob::new(new.to_vec())),
                    Format::String => req.secret_string(String::from_utf8_lossy(new.as_bytes())),
                };
                req.send().await.map_err(|e| self.api().err(e, "CreateSecret", &id))?;
                Ok(())
            })
            .await;
        };
        Self::check_managed(&id, desc.tags())?;
        if desc.deleted_date().is_some() {
            // Ours, scheduled for deletion by an earlier PushSecret delete: bring it back before writing.
            observed(&self.api().observer, LABEL, "RestoreSecret", async {
                self.api()
                    .sm
                    .restore_secret()
                    .secret_id(&id)
                    .send()
                    .await
                    .map_err(|e| self.api().err(e, "RestoreSecret", &id))
            })
            .await?;
        }
        self.sync_tags(&id, desc.tags(), &meta).await?;
        let has_versions = desc.version_ids_to_stages().is_some_and(|v| !v.is_empty());
        let current = if has_versions { self.current(&id).await? } else { None };
        let new = push::merged_value(&id, current.as_ref(), property, value)?;
        if current.as_ref() == Some(&new) {
            return Ok(());
        }
        self.put_value(&id, &new, meta.format).await
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let id = self.id(&at.remote_key);
        let Some(current) = self.current(&id).await? else {
            return Ok(());
        };
        let desc = self.api().describe(&id).await?;
        if Self::check_managed(&id, desc.tags()).is_err() {
            // ESO leaves secrets it did not create alone, silently.
            return Ok(());
        }
        if let Some(p) = at.property.as_deref().filter(|p| !p.is_empty())
            && let Some(rest) = push::without_property(&id, &current, p)?
        {
            // Other properties remain (pushed by other PushSecret entries): keep the secret.
            return self.put_value(&id, &rest, Format::Binary).await;
        }
        let settings = self.delete_settings.clone().unwrap_or_default();
        observed(&self.api().observer, LABEL, "DeleteSecret", async {
            self.api()
                .sm
                .delete_secret()
                .secret_id(desc.arn().unwrap_or(&id))
                .set_force_delete_without_recovery(settings.force_delete_without_recovery.then_some(true))
                .set_recovery_window_in_days(
                    (settings.recovery_window_in_days > 0).then_some(settings.recovery_window_in_days),
                )
                .send()
                .await
                .map_err(|e| self.api().err(e, "DeleteSecret", &id))?;
            Ok(())
        })
        .await
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        let id = self.id(&at.remote_key);
        Ok(
            match (
                self.current(&id).await?,
                at.property.as_deref().filter(|p| !p.is_empty()),
            ) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(v), Some(p)) => push::has_property(&v, p),
            },
        )
    }

    async fn validate(&self) -> Result<Validation> {
        // Signs a request with the client's credentials (logging in first if needed).
        let probe = observed(&self.api().observer, LABEL, "ListSecrets", async {
            self.api()
                .sm
                .list_secrets()
                .max_results(1)
                .send()
                .await
                .map_err(|e| self.api().err(e, "ListSecrets", "*"))
        })
        .await;
        errors::validation(probe)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_eso() {
        assert_eq!(parse_version(None), Version::Current);
        assert_eq!(parse_version(Some("")), Version::Current);
        assert_eq!(parse_version(Some("AWSCURRENT")), Version::Current);
        assert_eq!(parse_version(Some("AWSPREVIOUS")), Version::Stage("AWSPREVIOUS".into()));
        assert_eq!(
            parse_version(Some("uuid/0bb5c6d0-1111-2222-3333-444455556666")),
            Version::Id("0bb5c6d0-1111-2222-3333-444455556666".into())
        );
    }

    #[test]
    fn values_prefer_binary_then_string() {
        let b = Blob::new(vec![0u8, 159, 146, 150]);
        assert_eq!(value_of("k", None, Some(&b)).unwrap().as_bytes(), &[0u8, 159, 146, 150]);
        assert_eq!(value_of("k", Some("s"), None).unwrap().as_str(), Some("s"));
        assert!(matches!(
            value_of("k", None, None),
            Err(ProviderError::InvalidValue { .. })
        ));
    }
}
