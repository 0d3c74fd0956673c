//! ExternalSecret (`es`): which remote values to read and how to write them into a Secret.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::ExternalSecretStatusCondition;
use crate::meta::{DNS1123_SUBDOMAIN, SECRET_KEY};
use crate::rules::Rule;
use crate::schema::is_default;
use crate::secretstore::StoreKind;
use crate::validate::{Errors, FieldError, check_cron, check_duration, check_regex, field, index, key};

/// The store an ExternalSecret (or one of its items) reads from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRef {
    /// Name of the store.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// `SecretStore` (when unset) or `ClusterSecretStore`; see [`SecretStoreRef::kind`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<StoreKind>,
}

impl SecretStoreRef {
    /// The kind, `SecretStore` when unset.
    pub fn kind(&self) -> StoreKind {
        self.kind.unwrap_or_default()
    }
}

/// How the target Secret is created and owned.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretCreationPolicy {
    /// Create the Secret with a controller ownerReference to the ExternalSecret.
    #[default]
    Owner,
    /// Create the Secret without an ownerReference; it outlives the ExternalSecret.
    Orphan,
    /// Only merge into an existing Secret.
    Merge,
    /// Write nothing.
    None,
    /// Create the Secret when missing, otherwise merge into it; no ownerReference.
    CreateOrMerge,
}

/// What happens to the Secret when the provider returns no data.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretDeletionPolicy {
    /// Delete the Secret (requires ownership).
    Delete,
    /// Remove the keys but keep the Secret.
    Merge,
    /// Keep the Secret; a missing remote secret is an error.
    #[default]
    Retain,
}

/// When the ExternalSecret is refreshed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretRefreshPolicy {
    /// Create the Secret once and never update it.
    CreatedOnce,
    /// Refresh every `refreshInterval` (the behaviour when unset).
    #[default]
    Periodic,
    /// Refresh only when the ExternalSecret's metadata or spec changes.
    OnChange,
}

/// How fetched values are decoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretDecodingStrategy {
    Auto,
    Base64,
    #[serde(rename = "Base64URL")]
    Base64Url,
    #[default]
    None,
}

/// How keys with characters invalid in a Secret are converted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretConversionStrategy {
    /// Replace invalid characters with `_`.
    #[default]
    Default,
    /// Replace invalid characters with `_UXXXX_`.
    Unicode,
}

/// Whether to fetch the value or the provider's metadata (tags, labels) of a secret.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretMetadataPolicy {
    #[default]
    None,
    Fetch,
}

/// What to do with fetched data that contains NUL bytes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretNullBytePolicy {
    #[default]
    Ignore,
    Fail,
}

/// How the rendered template combines with data from the provider.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum TemplateMergePolicy {
    #[default]
    Replace,
    Merge,
}

/// Template engine version; only `v2` exists.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum TemplateEngineVersion {
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// How the keys of a `templateFrom` item are interpreted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum TemplateScope {
    /// The item's value is a template; its key is the output key.
    #[default]
    Values,
    /// The item is a template for both keys and values.
    KeysAndValues,
}

/// Where a `templateFrom` result goes when the target is a Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateTarget {
    Data,
    Annotations,
    Labels,
}

impl TemplateTarget {
    /// Reads a `templateFrom[].target` the way ESO does (case-insensitive; empty means `Data`). `None` for
    /// anything else, which is only valid with a `target.manifest` (a path into the rendered object).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" => Some(TemplateTarget::Data),
            t if t.eq_ignore_ascii_case("Data") => Some(TemplateTarget::Data),
            t if t.eq_ignore_ascii_case("Annotations") => Some(TemplateTarget::Annotations),
            t if t.eq_ignore_ascii_case("Labels") => Some(TemplateTarget::Labels),
            _ => None,
        }
    }
}

/// Metadata of the rendered Secret (labels and annotations are templates too).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplateMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// A blueprint for the target Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplate {
    /// Secret type, e.g. `kubernetes.io/dockerconfigjson`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    /// Template engine version for `data` and `templateFrom`.
    #[serde(default)]
    pub engine_version: TemplateEngineVersion,
    /// Labels, annotations and finalizers of the Secret.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: ExternalSecretTemplateMetadata,
    /// `Replace` (default): the template defines the data. `Merge`: template output is merged over the data
    /// read from the provider.
    #[serde(default)]
    pub merge_policy: TemplateMergePolicy,
    /// Secret keys and their templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Templates read from ConfigMaps, Secrets or given literally.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_from: Vec<TemplateFrom>,
}

fn data_target() -> String {
    "Data".to_owned()
}

/// A source of templates: a ConfigMap, a Secret or a literal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,
    /// Where the result goes: `Data`, `Annotations` or `Labels` for a Secret, or a path such as
    /// `spec.database.config` for a `target.manifest`.
    #[serde(default = "data_target")]
    pub target: String,
    /// A template given inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// How rendered values are decoded (`None` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_decoding_strategy: Option<ExternalSecretDecodingStrategy>,
}

impl TemplateFrom {
    /// The values decoding strategy, `None` when unset.
    pub fn values_decoding_strategy(&self) -> ExternalSecretDecodingStrategy {
        self.values_decoding_strategy.unwrap_or_default()
    }

    /// The target as a Secret field, if it is one (see [`TemplateTarget::parse`]).
    pub fn secret_target(&self) -> Option<TemplateTarget> {
        TemplateTarget::parse(&self.target)
    }
}

/// A ConfigMap or Secret and the keys in it that hold templates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct TemplateRef {
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    pub items: Vec<TemplateRefItem>,
}

/// A key holding a template.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: String,
    #[serde(default)]
    pub template_as: TemplateScope,
}

/// A resource to render instead of a Secret (needs `--unsafe-allow-generic-targets`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestReference {
    /// e.g. `v1` for a ConfigMap.
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// e.g. `ConfigMap`.
    #[schemars(length(min = 1))]
    pub kind: String,
}

/// The Secret (or other resource) the ExternalSecret writes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTarget {
    /// Name of the Secret; defaults to the ExternalSecret's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// How the Secret is created and owned.
    #[serde(default)]
    pub creation_policy: ExternalSecretCreationPolicy,
    /// What happens to the Secret when the provider returns no data.
    #[serde(default)]
    pub deletion_policy: ExternalSecretDeletionPolicy,
    /// A blueprint for the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
    /// Render this kind of resource instead of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestReference>,
    /// Make the Secret immutable.
    #[serde(default, skip_serializing_if = "is_default")]
    pub immutable: bool,
}

impl ExternalSecretTarget {
    /// Whether the target is a core/v1 Secret (no manifest, or a manifest naming `v1` `Secret`).
    pub fn is_secret(&self) -> bool {
        self.manifest
            .as_ref()
            .is_none_or(|m| m.api_version == "v1" && m.kind == "Secret")
    }
}

/// One key of the target Secret and where its value comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// The key in the Secret.
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub secret_key: String,
    /// The remote value.
    pub remote_ref: ExternalSecretDataRemoteRef,
    /// Read this item from another store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreSourceRef>,
}

/// A remote secret: key, property, version and how to convert the value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataRemoteRef {
    /// The key in the provider.
    pub key: String,
    /// `Fetch` returns the secret's tags/labels instead of its value (`None` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_policy: Option<ExternalSecretMetadataPolicy>,
    /// A property of the value (a gjson path for most providers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub property: String,
    /// A version of the value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Key conversion (`Default` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ExternalSecretConversionStrategy>,
    /// Value decoding (`None` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<ExternalSecretDecodingStrategy>,
    /// NUL byte handling (`Ignore` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<ExternalSecretNullBytePolicy>,
}

impl ExternalSecretDataRemoteRef {
    /// The metadata policy, `None` when unset.
    pub fn metadata_policy(&self) -> ExternalSecretMetadataPolicy {
        self.metadata_policy.unwrap_or_default()
    }
    /// The conversion strategy, `Default` when unset.
    pub fn conversion_strategy(&self) -> ExternalSecretConversionStrategy {
        self.conversion_strategy.unwrap_or_default()
    }
    /// The decoding strategy, `None` when unset.
    pub fn decoding_strategy(&self) -> ExternalSecretDecodingStrategy {
        self.decoding_strategy.unwrap_or_default()
    }
    /// The NUL byte policy, `Ignore` when unset.
    pub fn null_byte_policy(&self) -> ExternalSecretNullBytePolicy {
        self.null_byte_policy.unwrap_or_default()
    }
}

/// One `dataFrom` entry: exactly one of `extract`, `find` or `sourceRef.generatorRef`, optionally from another
/// store, with key rewrites.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataFromRemoteRef {
    /// Every key/value pair of one remote secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<ExternalSecretDataRemoteRef>,
    /// All remote secrets matching a name pattern, path or tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<ExternalSecretFind>,
    /// Key rewrites applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<ExternalSecretRewrite>,
    /// A store to read from, or a generator to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreGeneratorSourceRef>,
}

/// One rewrite step: exactly one of `merge`, `regexp` or `transform`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct ExternalSecretRewrite {
    /// Merge all values into one key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<ExternalSecretRewriteMerge>,
    /// Rewrite keys with a regular expression (Go `ReplaceAll`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<ExternalSecretRewriteRegexp>,
    /// Rewrite keys with a template (`.value` is the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<ExternalSecretRewriteTransform>,
}

/// Merges the values of several secrets into one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretRewriteMerge {
    /// Target key; required with `strategy: JSON`.
    #[serde(default)]
    pub into: String,
    /// Keys that win conflicts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<String>,
    /// What to do when a `priority` key is missing.
    #[serde(default)]
    pub priority_policy: ExternalSecretRewriteMergePriorityPolicy,
    /// What to do on conflicting keys.
    #[serde(default)]
    pub conflict_policy: ExternalSecretRewriteMergeConflictPolicy,
    /// `Extract` merges the key/value pairs; `JSON` merges JSON objects into `into`.
    #[serde(default)]
    pub strategy: ExternalSecretRewriteMergeStrategy,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretRewriteMergeConflictPolicy {
    Ignore,
    #[default]
    Error,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretRewriteMergePriorityPolicy {
    IgnoreNotFound,
    #[default]
    Strict,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretRewriteMergeStrategy {
    #[default]
    Extract,
    #[serde(rename = "JSON")]
    Json,
}

/// A regular-expression rewrite.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ExternalSecretRewriteRegexp {
    /// The regular expression.
    pub source: String,
    /// The replacement (`${1}` refers to groups).
    pub target: String,
}

/// A template rewrite.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ExternalSecretRewriteTransform {
    /// Template applied to each key (`.value`).
    pub template: String,
}

/// Which remote secrets `find` returns.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretFind {
    /// A root path to search under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A name pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,
    /// Tags (labels) that must all match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Key conversion (`Default` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ExternalSecretConversionStrategy>,
    /// Value decoding (`None` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<ExternalSecretDecodingStrategy>,
    /// NUL byte handling (`Ignore` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<ExternalSecretNullBytePolicy>,
}

impl ExternalSecretFind {
    /// The conversion strategy, `Default` when unset.
    pub fn conversion_strategy(&self) -> ExternalSecretConversionStrategy {
        self.conversion_strategy.unwrap_or_default()
    }
    /// The decoding strategy, `None` when unset.
    pub fn decoding_strategy(&self) -> ExternalSecretDecodingStrategy {
        self.decoding_strategy.unwrap_or_default()
    }
    /// The NUL byte policy, `Ignore` when unset.
    pub fn null_byte_policy(&self) -> ExternalSecretNullBytePolicy {
        self.null_byte_policy.unwrap_or_default()
    }
}

/// A name pattern.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct FindName {
    /// Regular expression matched against secret names.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regexp: String,
}

/// Whether sync windows allow or block periodic refreshes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretSyncWindowKind {
    /// Refreshes happen only while a window is open.
    #[serde(rename = "allow")]
    Allow,
    /// Refreshes are blocked while a window is open.
    #[serde(rename = "deny")]
    Deny,
}

/// Restricts when periodic refreshes may run (UTC).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ExternalSecretSyncWindows {
    /// Applies to every window in the list.
    pub kind: ExternalSecretSyncWindowKind,
    /// Schedule and duration pairs.
    #[schemars(length(min = 1))]
    pub windows: Vec<ExternalSecretSyncWindowEntry>,
}

/// A window that opens at each `schedule` firing and stays open for `duration`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ExternalSecretSyncWindowEntry {
    /// A 5-field cron expression in UTC, or `@daily`, `@every 1h` and the like.
    #[schemars(
        length(min = 1),
        pattern(r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every [^\s]+.*|[^\s]+( [^\s]+){4})$")
    )]
    pub schedule: String,
    /// How long the window stays open, a Go duration such as `8h`.
    pub duration: String,
}

impl ExternalSecretSyncWindowEntry {
    /// `duration` parsed.
    pub fn duration(&self) -> Result<Duration, crate::duration::DurationError> {
        crate::duration::parse(&self.duration)
    }
}

fn one_hour() -> String {
    "1h0m0s".to_owned()
}

/// The desired state of an ExternalSecret.
// The kube attributes repeat `type_ = …` per column, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ExternalSecret",
    namespaced,
    status = "ExternalSecretStatus",
    derive = "PartialEq",
    shortname = "es",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    doc = "ExternalSecret is the Schema for the external-secrets API. It defines how to fetch data from external APIs and make it available as Kubernetes Secrets.",
    printcolumn(name = "StoreType", type_ = "string", json_path = ".spec.secretStoreRef.kind"),
    printcolumn(name = "Store", type_ = "string", json_path = ".spec.secretStoreRef.name"),
    printcolumn(name = "Refresh Interval", type_ = "string", json_path = ".spec.refreshInterval"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.refreshTime"),
    selectable = ".spec.secretStoreRef.name",
    selectable = ".spec.secretStoreRef.kind",
    selectable = ".spec.target.name",
    selectable = ".spec.refreshInterval"
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    /// The default store for `data` and `dataFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,
    /// The Secret to write.
    #[serde(default)]
    pub target: ExternalSecretTarget,
    /// `CreatedOnce`, `Periodic` (the behaviour when unset) or `OnChange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_policy: Option<ExternalSecretRefreshPolicy>,
    /// How often values are read again, a Go duration such as `1h0m0s`; `0s` syncs once.
    #[serde(default = "one_hour")]
    pub refresh_interval: String,
    /// When periodic refreshes may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<ExternalSecretSyncWindows>,
    /// Secret keys and the remote values they come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<ExternalSecretData>,
    /// Remote secrets whose key/value pairs are all copied, merged in order (later wins), before `data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<ExternalSecretDataFromRemoteRef>,
}

impl Default for ExternalSecretSpec {
    /// An empty spec with the CRD's defaults (`refreshInterval: 1h0m0s`, Owner/Retain target).
    fn default() -> Self {
        Self {
            secret_store_ref: None,
            target: ExternalSecretTarget::default(),
            refresh_policy: None,
            refresh_interval: one_hour(),
            sync_windows: None,
            data: Vec::new(),
            data_from: Vec::new(),
        }
    }
}

/// Overrides the store of one `data` item. Exactly one field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct StoreSourceRef {
    #[serde(default, rename = "storeRef", skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,
    /// Deprecated: not implemented for `data` items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// The store or generator of one `dataFrom` entry. Exactly one field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct StoreGeneratorSourceRef {
    #[serde(default, rename = "storeRef", skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,
    /// A generator whose output is used as the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// Generator kinds (`generators.external-secrets.io`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum GeneratorKind {
    #[serde(rename = "ACRAccessToken")]
    AcrAccessToken,
    BeyondtrustWorkloadCredentialsDynamicSecret,
    ClusterGenerator,
    CloudsmithAccessToken,
    #[serde(rename = "ECRAuthorizationToken")]
    EcrAuthorizationToken,
    Fake,
    #[serde(rename = "GCRAccessToken")]
    GcrAccessToken,
    GithubAccessToken,
    GitlabDeployToken,
    QuayAccessToken,
    Password,
    #[serde(rename = "SSHKey")]
    SshKey,
    #[serde(rename = "STSSessionToken")]
    StsSessionToken,
    #[serde(rename = "UUID")]
    Uuid,
    VaultDynamicSecret,
    Webhook,
    Grafana,
    #[serde(rename = "MFA")]
    Mfa,
}

fn generators_api_version() -> String {
    "generators.external-secrets.io/v1alpha1".to_owned()
}

/// A generator resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRef {
    /// API version of the generator.
    #[serde(default = "generators_api_version")]
    pub api_version: String,
    /// Kind of the generator.
    pub kind: GeneratorKind,
    /// Name of the generator.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
}

/// A servicebinding.io reference to the Secret (`corev1.LocalObjectReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct LocalObjectReference {
    /// Name of the referent.
    #[serde(default)]
    pub name: String,
}

/// The observed state of an ExternalSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// When the values were last read and the Secret updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::nullable_time")]
    pub refresh_time: Option<Time>,
    /// `<generation>-<hash of labels and annotations>` of the last synced ExternalSecret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub synced_resource_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ExternalSecretStatusCondition>,
    /// servicebinding.io Provisioned Service reference to the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<LocalObjectReference>,
}

const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const BOOTSTRAP_TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";

impl ExternalSecretSpec {
    /// The refresh policy, `Periodic` when unset.
    pub fn refresh_policy(&self) -> ExternalSecretRefreshPolicy {
        self.refresh_policy.unwrap_or_default()
    }

    /// `refreshInterval` parsed; zero means "sync once, never refresh".
    pub fn refresh_interval(&self) -> Result<Duration, FieldError> {
        crate::duration::parse(&self.refresh_interval)
            .map_err(|e| FieldError::new("spec.refreshInterval", e.to_string()))
    }

    /// Every problem the schema cannot catch, with paths under `spec`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::default();
        self.validate_into("spec", &mut errs);
        errs.0
    }

    /// Like [`Self::validate`] with paths under `prefix` (e.g. `spec.externalSecretSpec` in a
    /// ClusterExternalSecret).
    pub(crate) fn validate_into(&self, prefix: &str, errs: &mut Errors) {
        let target = field(prefix, "target");
        use ExternalSecretCreationPolicy as C;
        use ExternalSecretDeletionPolicy as D;
        let (creation, deletion) = (self.target.creation_policy, self.target.deletion_policy);
        if deletion == D::Delete && matches!(creation, C::Merge | C::None | C::CreateOrMerge) {
            errs.push(
                Rule::EsDeleteNeedsOwner,
                field(&target, "deletionPolicy"),
                format!("deletionPolicy Delete needs a creationPolicy that owns the Secret (Owner), not {creation:?}"),
            );
        }
        if deletion == D::Merge && creation == C::None {
            errs.push(
                Rule::EsMergeDeletionWithNone,
                field(&target, "deletionPolicy"),
                "deletionPolicy Merge cannot be used with creationPolicy None",
            );
        }
        if let Some(template) = &self.target.template {
            validate_template(template, &field(&target, "template"), self.target.is_secret(), errs);
        }

        check_duration(
            errs,
            Rule::EsRefreshInterval,
            &field(prefix, "refreshInterval"),
            &self.refresh_interval,
        );
        if let Some(windows) = &self.sync_windows {
            let p = field(&field(prefix, "syncWindows"), "windows");
            if windows.windows.is_empty() {
                errs.push(Rule::EsSyncWindowsEmpty, &p, "must list at least one window");
            }
            for (i, w) in windows.windows.iter().enumerate() {
                let wp = index(&p, i);
                check_cron(errs, Rule::EsSyncWindowSchedule, &field(&wp, "schedule"), &w.schedule);
                match w.duration() {
                    Ok(d) if d.is_zero() => {
                        errs.push(Rule::EsSyncWindowDuration, field(&wp, "duration"), "must be positive")
                    }
                    Ok(_) => {}
                    Err(e) => errs.push(Rule::EsSyncWindowDuration, field(&wp, "duration"), e.to_string()),
                }
            }
        }

        if self.data.is_empty() && self.data_from.is_empty() {
            errs.push(Rule::EsNoData, prefix, "either data or dataFrom must be specified");
        }
        let mut seen = BTreeSet::new();
        for (i, item) in self.data.iter().enumerate() {
            let p = index(&field(prefix, "data"), i);
            check_secret_key(errs, Rule::EsSecretKey, &field(&p, "secretKey"), &item.secret_key);
            if deletion == D::Retain && !seen.insert(item.secret_key.as_str()) {
                errs.push(
                    Rule::EsDuplicateSecretKey,
                    field(&p, "secretKey"),
                    format!("duplicate secretKey {:?}", item.secret_key),
                );
            }
            if item.remote_ref.key.is_empty() {
                errs.push(Rule::EsRemoteKeyEmpty, field(&p, "remoteRef.key"), "must not be empty");
            }
            if let Some(source) = &item.source_ref
                && source.secret_store_ref.is_none() == source.generator_ref.is_none()
            {
                errs.push(
                    Rule::EsDataSourceRef,
                    field(&p, "sourceRef"),
                    "exactly one of storeRef or generatorRef must be set",
                );
            }
        }
        for (i, item) in self.data_from.iter().enumerate() {
            item.validate_into(&index(&field(prefix, "dataFrom"), i), errs);
        }
    }
}

impl ExternalSecretDataFromRemoteRef {
    fn validate_into(&self, p: &str, errs: &mut Errors) {
        let generator = self.source_ref.as_ref().is_some_and(|s| s.generator_ref.is_some());
        let kinds = [self.extract.is_some(), self.find.is_some(), generator]
            .into_iter()
            .filter(|x| *x)
            .count();
        if self.extract.is_none() && self.find.is_none() && self.source_ref.is_none() {
            errs.push(
                Rule::EsDataFromNothing,
                p,
                "one of extract, find or sourceRef must be set",
            );
        } else if kinds > 1 {
            errs.push(
                Rule::EsDataFromExclusive,
                p,
                "only one of extract, find or sourceRef.generatorRef may be set",
            );
        }
        if let Some(source) = &self.source_ref
            && source.secret_store_ref.is_none() == source.generator_ref.is_none()
        {
            errs.push(
                Rule::EsDataFromSourceRef,
                field(p, "sourceRef"),
                "exactly one of storeRef or generatorRef must be set",
            );
        }
        if let Some(extract) = &self.extract
            && extract.key.is_empty()
        {
            errs.push(Rule::EsExtractKeyEmpty, field(p, "extract.key"), "must not be empty");
        }
        if let Some(name) = self.find.as_ref().and_then(|f| f.name.as_ref()) {
            check_regex(errs, Rule::EsFindRegexp, &field(p, "find.name.regexp"), &name.regexp);
        }
        for (k, rw) in self.rewrite.iter().enumerate() {
            let rp = index(&field(p, "rewrite"), k);
            let n = [rw.merge.is_some(), rw.regexp.is_some(), rw.transform.is_some()]
                .into_iter()
                .filter(|x| *x)
                .count();
            if n != 1 {
                errs.push(
                    Rule::EsRewriteExactlyOne,
                    &rp,
                    "exactly one of merge, regexp or transform must be set",
                );
            }
            if let Some(re) = &rw.regexp {
                check_regex(errs, Rule::EsRewriteRegexp, &field(&rp, "regexp.source"), &re.source);
            }
            if let Some(merge) = &rw.merge
                && merge.strategy == ExternalSecretRewriteMergeStrategy::Json
                && merge.into.is_empty()
            {
                errs.push(
                    Rule::EsMergeJsonInto,
                    field(&rp, "merge.into"),
                    "is required with strategy JSON",
                );
            }
        }
    }
}

/// Checks a template: privileged Secret types, `templateFrom` targets and duplicate item keys. Shared with
/// PushSecret.
pub(crate) fn validate_template(t: &ExternalSecretTemplate, p: &str, secret_target: bool, errs: &mut Errors) {
    let from = field(p, "templateFrom");
    if t.type_ == BOOTSTRAP_TOKEN_TYPE {
        errs.push(
            Rule::TplBootstrapType,
            field(p, "type"),
            format!("type {BOOTSTRAP_TOKEN_TYPE:?} is not allowed"),
        );
    }
    if t.type_ == SA_TOKEN_TYPE {
        if t.metadata.annotations.contains_key(SA_NAME_ANNOTATION) {
            errs.push(
                Rule::TplSaAnnotation,
                key(&field(p, "metadata.annotations"), SA_NAME_ANNOTATION),
                format!("annotation {SA_NAME_ANNOTATION:?} is not allowed with type {SA_TOKEN_TYPE:?}"),
            );
        }
        for (i, tf) in t.template_from.iter().enumerate() {
            if tf.secret_target() == Some(TemplateTarget::Annotations) && !tf.target.is_empty() {
                errs.push(
                    Rule::TplSaTemplateFromAnnotations,
                    field(&index(&from, i), "target"),
                    format!("target Annotations is not allowed with type {SA_TOKEN_TYPE:?}"),
                );
            }
        }
    }
    if secret_target {
        for k in t.data.keys() {
            check_secret_key(errs, Rule::TplDataKey, &key(&field(p, "data"), k), k);
        }
    }
    for (i, tf) in t.template_from.iter().enumerate() {
        let tp = index(&from, i);
        if secret_target && tf.secret_target().is_none() {
            errs.push(
                Rule::TplFromTarget,
                field(&tp, "target"),
                format!(
                    "target {:?} is not allowed for a Secret, must be Data, Annotations or Labels",
                    tf.target
                ),
            );
        }
        for (name, r) in [("configMap", &tf.config_map), ("secret", &tf.secret)] {
            let Some(r) = r else { continue };
            let mut keys = BTreeSet::new();
            for (j, item) in r.items.iter().enumerate() {
                if !keys.insert(item.key.as_str()) {
                    errs.push(
                        Rule::TplDuplicateItemKey,
                        field(&index(&field(&field(&tp, name), "items"), j), "key"),
                        format!("duplicate key {:?}", item.key),
                    );
                }
            }
        }
    }
}

fn check_secret_key(errs: &mut Errors, rule: Rule, path: &str, k: &str) {
    let valid = !k.is_empty() && k.len() <= 253 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid {
        errs.push(
            rule,
            path,
            format!("{k:?} is not a valid Secret key (must match {SECRET_KEY})"),
        );
    }
}

impl ExternalSecret {
    /// Name of the target Secret: `spec.target.name`, or the ExternalSecret's own name.
    pub fn target_name(&self) -> Option<&str> {
        if self.spec.target.name.is_empty() {
            self.metadata.name.as_deref()
        } else {
            Some(&self.spec.target.name)
        }
    }
}
