//! SecretStore (namespaced, `ss`) and ClusterSecretStore (cluster-scoped, `css`): where secrets come from.
//! Both kinds share [`SecretStoreSpec`]; [`ClusterSecretStoreSpec`] wraps it so the two CRDs get the same schema.
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::SecretStoreStatusCondition;
pub use crate::duration::IntOrDuration;
use crate::meta::DNS1123_LABEL;
use crate::provider::SecretStoreProvider;
use crate::rules::Rule;
use crate::validate::{Errors, FieldError, check_duration, check_regex, field, index};

/// Kind of a store reference.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum StoreKind {
    #[default]
    SecretStore,
    ClusterSecretStore,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::SecretStore => "SecretStore",
            StoreKind::ClusterSecretStore => "ClusterSecretStore",
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The desired state of a SecretStore or ClusterSecretStore.
// The kube attributes repeat `type_ = …` per column, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "SecretStore",
    namespaced,
    status = "SecretStoreStatus",
    derive = "PartialEq",
    shortname = "ss",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    doc = "SecretStore represents a secure external location for storing secrets, which can be referenced as part of `storeRef` fields.",
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(name = "Capabilities", type_ = "string", json_path = ".status.capabilities"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreSpec {
    /// Controller class: the store is handled only by a controller started with this `--controller-class`
    /// (or by every controller when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub controller: String,
    /// The provider configuration; exactly one provider may be set.
    pub provider: SecretStoreProvider,
    /// HTTP retry settings (used by the AWS and Vault providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<SecretStoreRetrySettings>,
    /// How often the store is re-validated: integer seconds (legacy) or a Go duration such as `5m`. Empty or 0
    /// means the controller default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<IntOrDuration>,
    /// Namespaces allowed to use a ClusterSecretStore (ignored on a SecretStore). An ExternalSecret may use the
    /// store if any condition matches its namespace; with no conditions every namespace may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

/// The desired state of a ClusterSecretStore: the same fields as [`SecretStoreSpec`], which it derefs to.
// The kube attributes repeat `type_ = …` per column, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ClusterSecretStore",
    status = "SecretStoreStatus",
    derive = "PartialEq",
    shortname = "css",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    doc = "ClusterSecretStore represents a secure external location for storing secrets, which can be referenced as part of `storeRef` fields.",
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(name = "Capabilities", type_ = "string", json_path = ".status.capabilities"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    )
)]
pub struct ClusterSecretStoreSpec {
    #[serde(flatten)]
    pub spec: SecretStoreSpec,
}

impl Deref for ClusterSecretStoreSpec {
    type Target = SecretStoreSpec;
    fn deref(&self) -> &SecretStoreSpec {
        &self.spec
    }
}

impl DerefMut for ClusterSecretStoreSpec {
    fn deref_mut(&mut self) -> &mut SecretStoreSpec {
        &mut self.spec
    }
}

impl From<SecretStoreSpec> for ClusterSecretStoreSpec {
    fn from(spec: SecretStoreSpec) -> Self {
        Self { spec }
    }
}

/// HTTP retry settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRetrySettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    /// A Go duration such as `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<String>,
}

/// Selects namespaces allowed to use a ClusterSecretStore; a namespace matches if any field matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreCondition {
    /// Namespaces whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::label_selector")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 63), pattern(DNS1123_LABEL)))]
    pub namespaces: Vec<String>,
    /// Namespaces whose name matches one of these regular expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_regexes: Vec<String>,
}

/// What a store can do.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretStoreCapabilities {
    ReadOnly,
    WriteOnly,
    ReadWrite,
    /// A value written by someone else.
    #[serde(untagged)]
    Other(String),
}

impl JsonSchema for SecretStoreCapabilities {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretStoreCapabilities".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "description": "ReadOnly, WriteOnly or ReadWrite." })
    }
}

/// The observed state of a store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<SecretStoreStatusCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<SecretStoreCapabilities>,
}

impl SecretStoreSpec {
    /// The store refresh interval; `None` when unset or zero (use the controller's `--store-requeue-interval`).
    pub fn refresh_interval(&self) -> Result<Option<Duration>, FieldError> {
        match &self.refresh_interval {
            None => Ok(None),
            Some(v) => match v.to_duration() {
                Ok(d) if d.is_zero() => Ok(None),
                Ok(d) => Ok(Some(d)),
                Err(e) => Err(FieldError::new(
                    "spec.refreshInterval",
                    format!("invalid refreshInterval {v}: {e}"),
                )),
            },
        }
    }

    /// The retry interval from `retrySettings`, if set.
    pub fn retry_interval(&self) -> Result<Option<Duration>, FieldError> {
        match self.retry_settings.as_ref().and_then(|r| r.retry_interval.as_deref()) {
            None => Ok(None),
            Some(text) => crate::duration::parse(text)
                .map(Some)
                .map_err(|e| FieldError::new("spec.retrySettings.retryInterval", e.to_string())),
        }
    }

    /// Every problem the schema cannot catch: the provider block, durations, namespace regexes.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::default();
        self.provider.validate_into("spec.provider", &mut errs);
        if let Err(e) = self.refresh_interval() {
            errs.push(Rule::StoreRefreshInterval, e.path, e.message);
        }
        if let Some(retry) = &self.retry_settings {
            if let Some(text) = &retry.retry_interval {
                check_duration(
                    &mut errs,
                    Rule::StoreRetryInterval,
                    "spec.retrySettings.retryInterval",
                    text,
                );
            }
            if retry.max_retries.is_some_and(|n| n < 0) {
                errs.push(
                    Rule::StoreMaxRetries,
                    "spec.retrySettings.maxRetries",
                    "must not be negative",
                );
            }
        }
        for (ci, cond) in self.conditions.iter().enumerate() {
            let path = field(&index("spec.conditions", ci), "namespaceRegexes");
            for (ri, re) in cond.namespace_regexes.iter().enumerate() {
                check_regex(&mut errs, Rule::StoreNamespaceRegex, &index(&path, ri), re);
            }
        }
        errs.0
    }
}

impl SecretStoreSpec {
    /// [`Self::validate`] plus what depends on the store's kind and namespace: a SecretStore's references
    /// (Secrets, ConfigMaps, ServiceAccounts) must stay in its own `namespace`, as ESO's webhook requires.
    pub fn validate_for(&self, kind: StoreKind, namespace: Option<&str>) -> Vec<FieldError> {
        let mut errs = Errors(self.validate());
        if kind == StoreKind::SecretStore
            && let Ok(spec) = serde_json::to_value(self)
        {
            for scope in crate::admission::selector_scopes() {
                for (path, node) in crate::admission::nodes_at(&spec, "spec", scope) {
                    let Some(theirs) = node
                        .get("namespace")
                        .and_then(serde_json::Value::as_str)
                        .filter(|n| !n.is_empty())
                    else {
                        continue;
                    };
                    if Some(theirs) != namespace {
                        errs.push(
                            Rule::StoreSelectorNamespace,
                            field(&path, "namespace"),
                            format!(
                                "namespace {theirs:?} is not allowed: a SecretStore can only reference its own namespace{}",
                                namespace.map(|n| format!(" {n:?}")).unwrap_or_default()
                            ),
                        );
                    }
                }
            }
        }
        errs.0
    }
}

impl ClusterSecretStoreSpec {
    /// Same checks as [`SecretStoreSpec::validate`].
    pub fn validate(&self) -> Vec<FieldError> {
        self.spec.validate()
    }
}

/// What the controllers need from either store kind.
pub trait GenericStore: kube::Resource<DynamicType = ()> {
    /// `SecretStore` or `ClusterSecretStore`.
    const KIND: StoreKind;
    fn store_spec(&self) -> &SecretStoreSpec;
    fn store_status(&self) -> Option<&SecretStoreStatus>;
}

impl GenericStore for SecretStore {
    const KIND: StoreKind = StoreKind::SecretStore;
    fn store_spec(&self) -> &SecretStoreSpec {
        &self.spec
    }
    fn store_status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
}

impl GenericStore for ClusterSecretStore {
    const KIND: StoreKind = StoreKind::ClusterSecretStore;
    fn store_spec(&self) -> &SecretStoreSpec {
        &self.spec.spec
    }
    fn store_status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
}
