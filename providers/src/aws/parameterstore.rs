//! The Parameter Store (AWS Systems Manager) client: reads (batched across ExternalSecrets), `dataFrom.find`,
//! PushSecret, validation, as ESO's `providers/v1/aws/parameterstore`.
//!
//! - Reads are `WithDecryption` (SecureString values come back in clear; String and StringList as stored, a
//!   StringList as its comma-separated text). `remoteRef.version` is ESO's selector: a version number or a label,
//!   read as `GetParameter name:version`.
//! - Reads of the current value go through the [`Batcher`]: a batch of one name is a `GetParameter`, a larger one
//!   a `GetParameters` of at most [`MAX_BATCH`] names (Parameter Store's limit); names it reports invalid are
//!   NotFound for their ExternalSecret only. `ssm:GetParameters` is its own IAM action, which policies written for
//!   ESO may lack: when AWS denies it, reads go one by one for [`BATCH_DENIED_BACKOFF`].
//! - `metadataPolicy: Fetch`: the parameter's tags (`ListTagsForResource`) as a JSON object.
//! - `dataFrom.find`: by `path` and `name.regexp` with `GetParametersByPath` (recursive, paged, values included);
//!   by `tags` (and path) with `DescribeParameters` filters, the values then read through the batcher. When
//!   `GetParametersByPath` is denied, the listing falls back to `DescribeParameters` (as ESO).
//! - PushSecret: `PutParameter` with ESO's metadata (`secretType`, `kmsKeyID`, `tier`, `tags`, `description`,
//!   `encodeAsDecoded`); an existing parameter is overwritten only when it carries ESO's `managed-by` tag, and
//!   `deletionPolicy: Delete` removes only such parameters (`DeleteParameter`).
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterTier, ParameterType, ResourceTypeForTagging, Tag};
use base64::Engine as _;
use serde::Deserialize;

use super::batch::{self, BatchDenied, Batcher, FetchMany};
use super::{errors, push};
use crate::client::{CallObserver, Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation, observed};
use crate::error::{ProviderError, Result};
use crate::value::{RemoteValue, SecretValue};

/// ESO's provider label for Parameter Store calls.
pub(crate) const LABEL: &str = "AWS/ParameterStore";
/// At most this many names per `GetParameters` (Parameter Store's limit).
pub(crate) const MAX_BATCH: usize = 10;
/// How long reads go one by one after AWS denied `GetParameters`.
const BATCH_DENIED_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// `GetParametersByPath` page size (AWS's maximum).
const PATH_PAGE: i32 = 10;
/// `DescribeParameters` page size (AWS's maximum).
const DESCRIBE_PAGE: i32 = 50;
/// A listing stops with an error after this many pages (10,000 parameters by path, 50,000 described): a bound
/// on time and memory however many pages an endpoint claims to have.
const MAX_PAGES: usize = 1000;
/// At most this many matches of a `find` are read at once (5 batches).
const FIND_READS_AT_ONCE: usize = 5 * MAX_BATCH;
/// ESO's KMS key for SecureString parameters when the metadata names none.
const DEFAULT_KMS_KEY: &str = "alias/aws/ssm";

/// The value of a parameter as read.
fn value_of(name: &str, value: Option<&str>) -> Result<SecretValue> {
    value.map(SecretValue::from).ok_or_else(|| ProviderError::InvalidValue {
        key: name.to_string(),
        message: "the parameter has no value".into(),
    })
}

/// ESO's `remoteRef.version` on a name: `name:version` (a version number or a label).
pub(crate) fn with_selector(name: &str, version: Option<&str>) -> String {
    match version.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => format!("{name}:{v}"),
        None => name.to_string(),
    }
}

/// Talks to Parameter Store; shared by the batcher (reads) and the client (everything else).
pub(crate) struct Api {
    ssm: aws_sdk_ssm::Client,
    observer: Arc<dyn CallObserver>,
    throttle_wait: Option<Duration>,
    batch_denied: BatchDenied,
}

impl Api {
    fn err<E>(&self, e: aws_sdk_ssm::error::SdkError<E, HttpResponse>, op: &str, name: &str) -> ProviderError
    where
        E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        errors::from_sdk(e, op, name, self.throttle_wait)
    }

    /// `GetParameter` with decryption: (value, type).
    async fn get(&self, name: &str) -> Result<(SecretValue, Option<ParameterType>)> {
        observed(&self.observer, LABEL, "GetParameter", async {
            let out = self
                .ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| self.err(e, "GetParameter", name))?;
            let p = out.parameter().ok_or_else(|| ProviderError::InvalidValue {
                key: name.to_string(),
                message: "GetParameter answered without a parameter".into(),
            })?;
            Ok((value_of(name, p.value())?, p.r#type().cloned()))
        })
        .await
    }

    async fn get_value(&self, name: &str) -> Result<SecretValue> {
        self.get(name).await.map(|(v, _)| v)
    }

    /// `GetParameters` (≤ [`MAX_BATCH`] names) with decryption: an answer per name it mentions.
    async fn get_many(&self, names: &[String]) -> Result<HashMap<String, Result<SecretValue>>> {
        observed(&self.observer, LABEL, "GetParameters", async {
            let out = self
                .ssm
                .get_parameters()
                .set_names(Some(names.to_vec()))
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| self.err(e, "GetParameters", &names.join(",")))?;
            let mut answers = HashMap::new();
            for p in out.parameters() {
                // Only current-value reads are batched: an answer carrying a selector is not one of ours.
                if p.selector().is_some_and(|s| !s.is_empty()) {
                    continue;
                }
                let Some(name) = p.name() else { continue };
                answers.insert(name.to_string(), value_of(name, p.value()));
                if let Some(arn) = p.arn() {
                    answers.insert(arn.to_string(), value_of(name, p.value()));
                }
            }
            for name in out.invalid_parameters() {
                answers.insert(name.clone(), Err(ProviderError::NotFound { key: name.clone() }));
            }
            Ok(answers)
        })
        .await
    }

    async fn one_by_one(&self, names: &[String]) -> Vec<Result<SecretValue>> {
        futures::future::join_all(names.iter().map(|n| self.get_value(n))).await
    }

    /// `ListTagsForResource` of a parameter.
    async fn tags(&self, name: &str) -> Result<BTreeMap<String, String>> {
        observed(&self.observer, LABEL, "ListTagsForResource", async {
            let out = self
                .ssm
                .list_tags_for_resource()
                .resource_type(ResourceTypeForTagging::Parameter)
                .resource_id(name)
                .send()
                .await
                .map_err(|e| self.err(e, "ListTagsForResource", name))?;
            Ok(out
                .tag_list()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect())
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
        let answered = self.get_many(ids).await;
        batch::per_id(
            ids,
            answered,
            &self.batch_denied,
            BATCH_DENIED_BACKOFF,
            "GetParameters",
            |missing| async move { self.one_by_one(&missing).await },
        )
        .await
    }
}

/// `tier` of ESO's Parameter Store push metadata.
#[derive(Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawTier {
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    policies: Option<serde_json::Value>,
}

/// ESO's `PushSecretMetadataSpec` for Parameter Store.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    secret_type: String,
    #[serde(default, rename = "kmsKeyID")]
    kms_key_id: String,
    #[serde(default)]
    tier: RawTier,
    #[serde(default)]
    encode_as_decoded: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    description: String,
}

/// Parsed push metadata with ESO's defaults.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PushMetadata {
    pub secret_type: ParameterType,
    /// Set for SecureString only.
    pub kms_key_id: Option<String>,
    pub tier: ParameterTier,
    /// Advanced tier policies (JSON text).
    pub policies: Option<String>,
    pub encode_as_decoded: bool,
    /// Including the managed-by tag.
    pub tags: BTreeMap<String, String>,
    /// Whether the metadata listed tags (only then are an existing parameter's tags reconciled).
    pub manage_tags: bool,
    pub description: String,
}

/// Parses `data[].metadata` for Parameter Store (ESO's defaults: String, Standard, `alias/aws/ssm`).
pub(crate) fn parse_metadata(raw: Option<&str>) -> Result<PushMetadata> {
    let invalid = |message: String| ProviderError::InvalidValue {
        key: "metadata".into(),
        message,
    };
    let spec: RawSpec = push::parse_spec(raw)?;
    let secret_type = match spec.secret_type.as_str() {
        "" | "String" => ParameterType::String,
        "StringList" => ParameterType::StringList,
        "SecureString" => ParameterType::SecureString,
        other => {
            return Err(invalid(format!(
                "invalid secretType {other:?} (String, StringList or SecureString)"
            )));
        }
    };
    let tier = match spec.tier.type_.as_str() {
        "" | "Standard" => ParameterTier::Standard,
        "Advanced" => ParameterTier::Advanced,
        "Intelligent-Tiering" => ParameterTier::IntelligentTiering,
        other => {
            return Err(invalid(format!(
                "invalid tier.type {other:?} (Standard, Advanced or Intelligent-Tiering)"
            )));
        }
    };
    // ESO sends policies with the Advanced tier only.
    let policies = match (&tier, &spec.tier.policies) {
        (ParameterTier::Advanced, Some(p)) if !p.is_null() => Some(p.to_string()),
        _ => None,
    };
    let kms_key_id = (secret_type == ParameterType::SecureString).then(|| {
        if spec.kms_key_id.is_empty() {
            DEFAULT_KMS_KEY.to_string()
        } else {
            spec.kms_key_id.clone()
        }
    });
    let manage_tags = !spec.tags.is_empty();
    Ok(PushMetadata {
        secret_type,
        kms_key_id,
        tier,
        policies,
        encode_as_decoded: spec.encode_as_decoded,
        tags: push::with_managed_by(spec.tags)?,
        manage_tags,
        description: if spec.description.is_empty() {
            push::default_description()
        } else {
            spec.description
        },
    })
}

/// The whole Secret (an entry without `secretKey`) as ESO writes it to a parameter: a JSON object whose values are
/// base64 (Go's `json.Marshal` of `map[string][]byte`), or the values as they are with `encodeAsDecoded`. The
/// operator hands over the object with values as text.
pub(crate) fn whole_secret_value(key: &str, value: &SecretValue, encode_as_decoded: bool) -> Result<SecretValue> {
    if encode_as_decoded {
        return Ok(value.clone());
    }
    let map: BTreeMap<String, String> =
        serde_json::from_slice(value.as_bytes()).map_err(|_| ProviderError::InvalidValue {
            key: key.to_string(),
            message: "the whole Secret to push is not a JSON object of strings".into(),
        })?;
    let encoded: BTreeMap<String, String> = map
        .into_iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v.as_bytes())))
        .collect();
    serde_json::to_string(&encoded)
        .map(SecretValue::from)
        .map_err(|e| ProviderError::InvalidValue {
            key: key.to_string(),
            message: format!("encoding the Secret: {e}"),
        })
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ProviderError::InvalidValue {
                    key: "metadata".into(),
                    message: format!("tag {k:?}: {e}"),
                })
        })
        .collect()
}

fn filter(key: &str, option: &str, value: &str) -> Result<ParameterStringFilter> {
    ParameterStringFilter::builder()
        .key(key)
        .option(option)
        .values(value)
        .build()
        .map_err(|e| ProviderError::invalid_config("dataFrom.find", format!("filter {key:?}: {e}")))
}

/// A Parameter Store store's client.
pub(crate) struct ParameterStore {
    reads: Batcher<Api>,
    prefix: String,
}

impl ParameterStore {
    pub(crate) fn new(
        ssm: aws_sdk_ssm::Client,
        prefix: String,
        observer: Arc<dyn CallObserver>,
        throttle_wait: Option<Duration>,
        batch_window: Duration,
    ) -> Self {
        let api = Api {
            ssm,
            observer,
            throttle_wait,
            batch_denied: BatchDenied::default(),
        };
        Self {
            reads: Batcher::new(api, batch_window, MAX_BATCH),
            prefix,
        }
    }

    fn api(&self) -> &Api {
        self.reads.fetcher()
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The current value and type of `name`, or `None` when there is no such parameter.
    async fn current(&self, name: &str) -> Result<Option<(SecretValue, Option<ParameterType>)>> {
        match self.api().get(name).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GetParametersByPath` under `path`, recursive, all pages: (name, value) of every parameter.
    async fn by_path(&self, path: &str) -> Result<Vec<(String, Result<SecretValue>)>> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = observed(&self.api().observer, LABEL, "GetParametersByPath", async {
                self.api()
                    .ssm
                    .get_parameters_by_path()
                    .path(path)
                    .recursive(true)
                    .with_decryption(true)
                    .max_results(PATH_PAGE)
                    .set_next_token(next.clone())
                    .send()
                    .await
                    .map_err(|e| self.api().err(e, "GetParametersByPath", path))
            })
            .await?;
            for p in page.parameters() {
                if let Some(name) = p.name() {
                    out.push((name.to_string(), value_of(name, p.value())));
                }
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) => next = Some(t.to_string()),
                None => return Ok(out),
            }
        }
        Err(too_many_pages("GetParametersByPath", path))
    }

    /// `DescribeParameters` with `filters`, all pages: the names of the parameters.
    async fn describe(&self, filters: Vec<ParameterStringFilter>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = observed(&self.api().observer, LABEL, "DescribeParameters", async {
                self.api()
                    .ssm
                    .describe_parameters()
                    .set_parameter_filters((!filters.is_empty()).then(|| filters.clone()))
                    .max_results(DESCRIBE_PAGE)
                    .set_next_token(next.clone())
                    .send()
                    .await
                    .map_err(|e| self.api().err(e, "DescribeParameters", "*"))
            })
            .await?;
            out.extend(page.parameters().iter().filter_map(|p| p.name().map(str::to_string)));
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) => next = Some(t.to_string()),
                None => return Ok(out),
            }
        }
        Err(too_many_pages("DescribeParameters", "*"))
    }

    /// Reads the current values of `names` through the batcher; parameters deleted since the listing are skipped.
    async fn read_all(&self, names: Vec<String>) -> Result<BTreeMap<String, SecretValue>> {
        let mut out = BTreeMap::new();
        for chunk in names.chunks(FIND_READS_AT_ONCE) {
            let reads = chunk.iter().map(|n| self.reads.get(n.clone()));
            for (name, r) in chunk.iter().zip(futures::future::join_all(reads).await) {
                match r {
                    Ok(v) => {
                        out.insert(name.clone(), v);
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    async fn put(&self, name: &str, value: &SecretValue, meta: &PushMetadata, create: bool) -> Result<()> {
        let tags = if create { Some(sdk_tags(&meta.tags)?) } else { None };
        observed(&self.api().observer, LABEL, "PutParameter", async {
            self.api()
                .ssm
                .put_parameter()
                .name(name)
                .value(String::from_utf8_lossy(value.as_bytes()))
                .r#type(meta.secret_type.clone())
                .description(&meta.description)
                // As ESO: the tier is sent only when it is not Standard (sending Standard to an Advanced
                // parameter would ask AWS for a downgrade it refuses).
                .set_tier((meta.tier != ParameterTier::Standard).then(|| meta.tier.clone()))
                .set_policies(meta.policies.clone())
                .set_key_id(meta.kms_key_id.clone())
                // AWS refuses tags together with overwrite: a new parameter gets its tags here, an existing
                // one through the tag calls.
                .overwrite(!create)
                .set_tags(tags)
                .send()
                .await
                .map_err(|e| self.api().err(e, "PutParameter", name))?;
            Ok(())
        })
        .await
    }

    async fn sync_tags(&self, name: &str, current: &BTreeMap<String, String>, meta: &PushMetadata) -> Result<()> {
        if !meta.manage_tags {
            return Ok(());
        }
        let (remove, changed) = push::tag_changes(current.iter().map(|(k, v)| (k.as_str(), v.as_str())), &meta.tags);
        if !remove.is_empty() {
            observed(&self.api().observer, LABEL, "RemoveTagsFromResource", async {
                self.api()
                    .ssm
                    .remove_tags_from_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(name)
                    .set_tag_keys(Some(remove.clone()))
                    .send()
                    .await
                    .map_err(|e| self.api().err(e, "RemoveTagsFromResource", name))
            })
            .await?;
        }
        if changed {
            let tags = sdk_tags(&meta.tags)?;
            observed(&self.api().observer, LABEL, "AddTagsToResource", async {
                self.api()
                    .ssm
                    .add_tags_to_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(name)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| self.api().err(e, "AddTagsToResource", name))
            })
            .await?;
        }
        Ok(())
    }

    /// A refusal that says nothing about the credentials (so not `AccessDenied`, which replaces the client).
    fn not_ours(name: &str) -> ProviderError {
        ProviderError::InvalidValue {
            key: name.to_string(),
            message: format!(
                "the parameter exists and is not managed by external-secrets (no tag {}={}): not overwritten",
                push::MANAGED_BY_KEY,
                push::MANAGED_BY_VALUE
            ),
        }
    }
}

fn too_many_pages(op: &str, what: &str) -> ProviderError {
    ProviderError::Transport(format!(
        "{op} on {what:?}: more than {MAX_PAGES} pages; narrow dataFrom.find"
    ))
}

#[async_trait]
impl SecretsClient for ParameterStore {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        let name = self.name(&key.key);
        if key.fetch_metadata {
            let tags = self.api().tags(&name).await?;
            return serde_json::to_string(&tags)
                .map(|t| RemoteValue::Bytes(SecretValue::from(t)))
                .map_err(|e| ProviderError::InvalidValue {
                    key: name,
                    message: format!("tags: {e}"),
                });
        }
        let value = match key.version.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => self.reads.get(name).await?,
            Some(v) => {
                let selected = with_selector(&name, Some(v));
                self.api()
                    .get_value(&selected)
                    .await
                    .map_err(|e| errors::for_key(&e, &name))?
            }
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
        let path_filter = |p: &str| filter("Path", "Recursive", p);
        if find.tags.is_empty() {
            let root = path.unwrap_or("/");
            match self.by_path(root).await {
                Ok(found) => {
                    let mut out = BTreeMap::new();
                    for (name, value) in found {
                        if find.matches_name(&name) {
                            out.insert(name, value?);
                        }
                    }
                    return Ok(out);
                }
                Err(ProviderError::AccessDenied(message)) => {
                    tracing::info!(%message, "GetParametersByPath is not allowed; listing with DescribeParameters");
                }
                Err(e) => return Err(e),
            }
        }
        let mut filters = Vec::new();
        for (k, v) in &find.tags {
            filters.push(filter(&format!("tag:{k}"), "Equals", v)?);
        }
        if let Some(p) = path {
            filters.push(path_filter(p)?);
        }
        let names: Vec<String> = self
            .describe(filters)
            .await?
            .into_iter()
            .filter(|n| find.matches_name(n))
            .collect();
        self.read_all(names).await
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        let name = self.name(&to.remote_key);
        let meta = parse_metadata(to.metadata.as_deref())?;
        let value = if to.secret_key.is_none() {
            whole_secret_value(&name, value, meta.encode_as_decoded)?
        } else {
            value.clone()
        };
        let property = to.property.as_deref();
        let Some((current, current_type)) = self.current(&name).await? else {
            let new = push::merged_value(&name, None, property, &value)?;
            return self.put(&name, &new, &meta, true).await;
        };
        let tags = self.api().tags(&name).await?;
        if !push::is_managed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            return Err(Self::not_ours(&name));
        }
        let new = push::merged_value(&name, Some(&current), property, &value)?;
        if new != current || current_type.as_ref() != Some(&meta.secret_type) {
            self.put(&name, &new, &meta, false).await?;
        }
        self.sync_tags(&name, &tags, &meta).await
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let name = self.name(&at.remote_key);
        let Some((current, current_type)) = self.current(&name).await? else {
            return Ok(());
        };
        let tags = self.api().tags(&name).await?;
        if !push::is_managed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            // ESO leaves parameters it did not create alone, silently.
            return Ok(());
        }
        if let Some(p) = at.property.as_deref().filter(|p| !p.is_empty())
            && let Some(rest) = push::without_property(&name, &current, p)?
        {
            // Other properties remain (pushed by other PushSecret entries): keep the parameter.
            let meta = PushMetadata {
                secret_type: current_type.unwrap_or(ParameterType::String),
                ..parse_metadata(at.metadata.as_deref())?
            };
            return self.put(&name, &rest, &meta, false).await;
        }
        let res = observed(&self.api().observer, LABEL, "DeleteParameter", async {
            self.api()
                .ssm
                .delete_parameter()
                .name(&name)
                .send()
                .await
                .map_err(|e| self.api().err(e, "DeleteParameter", &name))
        })
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        let name = self.name(&at.remote_key);
        Ok(
            match (
                self.current(&name).await?,
                at.property.as_deref().filter(|p| !p.is_empty()),
            ) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some((v, _)), Some(p)) => push::has_property(&v, p),
            },
        )
    }

    async fn validate(&self) -> Result<Validation> {
        // Signs a request with the client's credentials (logging in first if needed).
        let probe = observed(&self.api().observer, LABEL, "DescribeParameters", async {
            self.api()
                .ssm
                .describe_parameters()
                .max_results(1)
                .send()
                .await
                .map_err(|e| self.api().err(e, "DescribeParameters", "*"))
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
    fn versions_are_selectors() {
        assert_eq!(with_selector("/app/db", None), "/app/db");
        assert_eq!(with_selector("/app/db", Some(" ")), "/app/db");
        assert_eq!(with_selector("/app/db", Some("3")), "/app/db:3");
        assert_eq!(with_selector("/app/db", Some("prod")), "/app/db:prod");
    }

    #[test]
    fn metadata_defaults_as_eso() {
        let m = parse_metadata(None).unwrap();
        assert_eq!(m.secret_type, ParameterType::String);
        assert_eq!(m.tier, ParameterTier::Standard);
        assert_eq!(m.kms_key_id, None, "a key only for SecureString");
        assert_eq!(m.description, "secret 'managed-by:external-secrets'");
        assert_eq!(m.tags.get("managed-by").map(String::as_str), Some("external-secrets"));
        assert!(!m.manage_tags && !m.encode_as_decoded);

        let m = parse_metadata(Some(
            r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata",
                "spec":{"secretType":"SecureString","tier":{"type":"Advanced","policies":[{"Type":"Expiration"}]},
                        "tags":{"team":"a"},"description":"d","encodeAsDecoded":true}}"#,
        ))
        .unwrap();
        assert_eq!(m.secret_type, ParameterType::SecureString);
        assert_eq!(m.kms_key_id.as_deref(), Some("alias/aws/ssm"));
        assert_eq!(m.tier, ParameterTier::Advanced);
        assert_eq!(m.policies.as_deref(), Some(r#"[{"Type":"Expiration"}]"#));
        assert!(m.manage_tags && m.encode_as_decoded);
        assert_eq!(m.tags.len(), 2);

        let m = parse_metadata(Some(
            r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata",
                "spec":{"secretType":"SecureString","kmsKeyID":"k1","tier":{"policies":"[]"}}}"#,
        ))
        .unwrap();
        assert_eq!(m.kms_key_id.as_deref(), Some("k1"));
        assert_eq!(m.policies, None, "policies go with the Advanced tier only");

        let bad = |s: &str| parse_metadata(Some(s)).unwrap_err().to_string();
        let env = |spec: &str| {
            format!(
                r#"{{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{spec}}}"#
            )
        };
        assert!(bad(&env(r#"{"secretType":"Binary"}"#)).contains("invalid secretType"));
        assert!(bad(&env(r#"{"tier":{"type":"Gold"}}"#)).contains("invalid tier.type"));
        assert!(bad(&env(r#"{"tags":{"managed-by":"me"}}"#)).contains("managed-by"));
        assert!(bad(&env(r#"{"secretPushFormat":"string"}"#)).contains("unknown field"));
    }

    #[test]
    fn whole_secrets_are_base64_unless_encode_as_decoded() {
        let v = SecretValue::from(r#"{"user":"admin","password":"p4ss"}"#);
        assert_eq!(
            whole_secret_value("k", &v, false).unwrap().as_str(),
            Some(r#"{"password":"cDRzcw==","user":"YWRtaW4="}"#)
        );
        assert_eq!(whole_secret_value("k", &v, true).unwrap(), v);
        let err = whole_secret_value("k", &SecretValue::from("s3cr3t"), false).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
    }
}
