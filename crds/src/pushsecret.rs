//! PushSecret (`ps`) and ClusterPushSecret (`external-secrets.io/v1alpha1`): write Kubernetes Secrets to providers.
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::PushSecretStatusCondition;
use crate::externalsecret::{
    ExternalSecretRewriteRegexp, ExternalSecretRewriteTransform, ExternalSecretTemplate, GeneratorRef,
    validate_template,
};
use crate::meta::DNS1123_SUBDOMAIN;
use crate::rules::Rule;
use crate::schema::is_default;
use crate::secretstore::StoreKind;
use crate::validate::{Errors, FieldError, check_duration, check_regex, field, index};

/// A store (or stores, by label) to push to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStoreRef {
    /// The store with this name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// All stores whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::label_selector")]
    pub label_selector: Option<LabelSelector>,
    /// `SecretStore` (default) or `ClusterSecretStore`.
    #[serde(default)]
    pub kind: StoreKind,
}

/// Whether existing provider secrets are overwritten.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PushSecretUpdatePolicy {
    #[default]
    Replace,
    IfNotExists,
}

/// Whether pushed secrets are deleted from the provider when the PushSecret (or a key) goes away.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PushSecretDeletionPolicy {
    Delete,
    #[default]
    None,
}

/// How secret keys are converted before pushing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PushSecretConversionStrategy {
    #[default]
    None,
    /// Turn `_UXXXX_` sequences back into the characters.
    ReverseUnicode,
}

fn one_hour() -> String {
    "1h0m0s".to_owned()
}

/// The desired state of a PushSecret.
// The kube attributes repeat `type_ = …` per column, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1alpha1",
    kind = "PushSecret",
    namespaced,
    status = "PushSecretStatus",
    derive = "PartialEq",
    shortname = "ps",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    doc = "PushSecret is the Schema for the PushSecrets API that enables pushing Kubernetes secrets to external secret providers.",
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.refreshTime")
)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSpec {
    /// How often the secret is pushed again, a Go duration.
    #[serde(default = "one_hour")]
    pub refresh_interval: String,
    /// The stores to push to.
    pub secret_store_refs: Vec<PushSecretStoreRef>,
    /// `Replace` (default) or `IfNotExists`.
    #[serde(default)]
    pub update_policy: PushSecretUpdatePolicy,
    /// `None` (default) or `Delete`.
    #[serde(default)]
    pub deletion_policy: PushSecretDeletionPolicy,
    /// The source: a Secret or a generator.
    pub selector: PushSecretSelector,
    /// Keys to push, one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<PushSecretData>,
    /// Bulk push rules that expand source keys into provider entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_to: Vec<PushSecretDataTo>,
    /// A template applied to the source before pushing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
}

/// The source Secret, by name or by labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PushSecretSecret {
    /// Name of a Secret in the PushSecret's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// Secrets whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::label_selector")]
    pub selector: Option<LabelSelector>,
}

/// Where the pushed data comes from: exactly one field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct PushSecretSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<PushSecretSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// Where a key goes in the provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretRemoteRef {
    /// Name of the provider secret.
    pub remote_key: String,
    /// Property within the provider secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub property: String,
}

/// A source key and its destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretMatch {
    /// The key in the source Secret; the whole Secret when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_key: String,
    pub remote_ref: PushSecretRemoteRef,
}

/// One key to push.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretData {
    #[serde(rename = "match")]
    pub match_: PushSecretMatch,
    /// Provider-specific metadata attached to the pushed secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_fields")]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub conversion_strategy: PushSecretConversionStrategy,
}

/// A bulk push rule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretDataTo {
    /// The store to push to (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<PushSecretStoreRef>,
    /// Push all matched keys as one JSON object under this provider key; otherwise each key is its own secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_key: String,
    /// Which source keys to push; all when unset.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<PushSecretDataToMatch>,
    /// Key rewrites applied in order (per-key mode only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<PushSecretRewrite>,
    /// Provider-specific metadata attached to the pushed secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_fields")]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub conversion_strategy: PushSecretConversionStrategy,
}

/// Selects source keys by regular expression.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PushSecretDataToMatch {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regexp: String,
}

/// One key rewrite: exactly one of `regexp` or `transform`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PushSecretRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<ExternalSecretRewriteRegexp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<ExternalSecretRewriteTransform>,
}

/// What was pushed: store name → remote key → the data item.
pub type SyncedPushSecretsMap = BTreeMap<String, BTreeMap<String, PushSecretData>>;

/// The observed state of a PushSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStatus {
    /// When the secret was last pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::nullable_time")]
    pub refresh_time: Option<Time>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub synced_resource_version: String,
    /// What was pushed where (used to clean up with `deletionPolicy: Delete`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub synced_push_secrets: SyncedPushSecretsMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PushSecretStatusCondition>,
}

impl PushSecretSpec {
    /// `refreshInterval` parsed.
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

    pub(crate) fn validate_into(&self, prefix: &str, errs: &mut Errors) {
        check_duration(
            errs,
            Rule::PsRefreshInterval,
            &field(prefix, "refreshInterval"),
            &self.refresh_interval,
        );
        for (i, r) in self.secret_store_refs.iter().enumerate() {
            if r.name.is_empty() && r.label_selector.is_none() {
                errs.push(
                    Rule::PsStoreRef,
                    index(&field(prefix, "secretStoreRefs"), i),
                    "one of name or labelSelector must be set",
                );
            }
        }
        let sel = field(prefix, "selector");
        match (&self.selector.secret, &self.selector.generator_ref) {
            (Some(secret), None) => {
                if secret.name.is_empty() && secret.selector.is_none() {
                    errs.push(
                        Rule::PsSelectorSecret,
                        field(&sel, "secret"),
                        "one of name or selector must be set",
                    );
                }
            }
            (None, Some(_)) => {}
            _ => errs.push(
                Rule::PsSelectorExactlyOne,
                &sel,
                "exactly one of secret or generatorRef must be set",
            ),
        }
        for (i, d) in self.data.iter().enumerate() {
            if d.match_.remote_ref.remote_key.is_empty() {
                errs.push(
                    Rule::PsRemoteKey,
                    field(&index(&field(prefix, "data"), i), "match.remoteRef.remoteKey"),
                    "must not be empty",
                );
            }
        }
        for (i, d) in self.data_to.iter().enumerate() {
            let p = index(&field(prefix, "dataTo"), i);
            match &d.store_ref {
                None => errs.push(Rule::PsDataToStoreRef, field(&p, "storeRef"), "is required"),
                Some(r) if r.name.is_empty() && r.label_selector.is_none() => errs.push(
                    Rule::PsDataToStoreRef,
                    field(&p, "storeRef"),
                    "one of name or labelSelector must be set",
                ),
                Some(_) => {}
            }
            if !d.remote_key.is_empty() && !d.rewrite.is_empty() {
                errs.push(
                    Rule::PsDataToRewriteWithRemoteKey,
                    field(&p, "rewrite"),
                    "cannot be combined with remoteKey",
                );
            }
            if let Some(m) = &d.match_ {
                check_regex(errs, Rule::PsDataToMatchRegexp, &field(&p, "match.regexp"), &m.regexp);
            }
            for (k, rw) in d.rewrite.iter().enumerate() {
                let rp = index(&field(&p, "rewrite"), k);
                if rw.regexp.is_some() == rw.transform.is_some() {
                    errs.push(
                        Rule::PsRewriteExactlyOne,
                        &rp,
                        "exactly one of regexp or transform must be set",
                    );
                }
                if let Some(re) = &rw.regexp {
                    check_regex(errs, Rule::PsRewriteRegexp, &field(&rp, "regexp.source"), &re.source);
                }
            }
        }
        if let Some(t) = &self.template {
            validate_template(t, &field(prefix, "template"), true, errs);
        }
    }
}

/// Labels and annotations of the created PushSecrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PushSecretMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The desired state of a ClusterPushSecret.
// The kube attributes repeat `type_ = …` per column, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1alpha1",
    kind = "ClusterPushSecret",
    status = "ClusterPushSecretStatus",
    derive = "PartialEq",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    doc = "ClusterPushSecret is the Schema for the ClusterPushSecrets API that enables cluster-wide management of pushing Kubernetes secrets to external providers.",
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretSpec {
    /// The spec of the PushSecrets to create.
    pub push_secret_spec: PushSecretSpec,
    /// How often namespaces are re-checked, a Go duration (JSON name `refreshTime`, as in ESO).
    #[serde(default, rename = "refreshTime", skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// Name of the PushSecrets to create; defaults to the ClusterPushSecret's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub push_secret_name: String,
    /// Labels and annotations of the PushSecrets to create.
    #[serde(default, skip_serializing_if = "is_default")]
    pub push_secret_metadata: PushSecretMetadata,
    /// Namespaces whose labels match any of these selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::label_selectors")]
    pub namespace_selectors: Vec<LabelSelector>,
}

/// A namespace the PushSecret could not be created in, and why.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ClusterPushSecretNamespaceFailure {
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The observed state of a ClusterPushSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<ClusterPushSecretNamespaceFailure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub push_secret_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PushSecretStatusCondition>,
}

impl ClusterPushSecretSpec {
    /// `refreshTime` parsed; `None` when unset.
    pub fn refresh_interval(&self) -> Result<Option<Duration>, FieldError> {
        self.refresh_interval
            .as_deref()
            .map(|t| crate::duration::parse(t).map_err(|e| FieldError::new("spec.refreshTime", e.to_string())))
            .transpose()
    }

    /// Every problem the schema cannot catch, including those of `pushSecretSpec`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::default();
        self.push_secret_spec.validate_into("spec.pushSecretSpec", &mut errs);
        if let Some(t) = &self.refresh_interval {
            check_duration(&mut errs, Rule::CpsRefreshTime, "spec.refreshTime", t);
        }
        errs.0
    }
}
