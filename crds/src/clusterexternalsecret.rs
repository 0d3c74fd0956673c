//! ClusterExternalSecret (`ces`, cluster-scoped): stamps an ExternalSecret into every selected namespace.
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::ClusterExternalSecretStatusCondition;
use crate::externalsecret::ExternalSecretSpec;
use crate::meta::{DNS1123_LABEL, DNS1123_SUBDOMAIN};
use crate::rules::Rule;
use crate::schema::is_default;
use crate::validate::{Errors, FieldError, check_duration};

/// The desired state of a ClusterExternalSecret.
// The kube attributes repeat `type_ = …` per column, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ClusterExternalSecret",
    status = "ClusterExternalSecretStatus",
    derive = "PartialEq",
    shortname = "ces",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    doc = "ClusterExternalSecret is the Schema for the clusterexternalsecrets API.",
    printcolumn(
        name = "Store",
        type_ = "string",
        json_path = ".spec.externalSecretSpec.secretStoreRef.name"
    ),
    printcolumn(name = "Refresh Interval", type_ = "string", json_path = ".spec.refreshTime"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretSpec {
    /// The spec of the ExternalSecrets to create.
    pub external_secret_spec: ExternalSecretSpec,
    /// Name of the ExternalSecrets to create; defaults to the ClusterExternalSecret's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub external_secret_name: String,
    /// Labels and annotations of the ExternalSecrets to create.
    #[serde(default, skip_serializing_if = "is_default")]
    pub external_secret_metadata: ExternalSecretMetadata,
    /// Deprecated, use `namespaceSelectors`: namespaces whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::label_selector")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces whose labels match any of these selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::label_selectors")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Deprecated, use `namespaceSelectors`: namespaces by name (ORed with the selectors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 63), pattern(DNS1123_LABEL)))]
    pub namespaces: Vec<String>,
    /// How often namespaces are re-checked, a Go duration (JSON name `refreshTime`, as in ESO).
    #[serde(default, rename = "refreshTime", skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
}

/// Labels and annotations of the created ExternalSecrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A namespace the ExternalSecret could not be created in, and why.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ClusterExternalSecretNamespaceFailure {
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The observed state of a ClusterExternalSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatus {
    /// Name of the ExternalSecrets created.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_secret_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<ClusterExternalSecretNamespaceFailure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterExternalSecretStatusCondition>,
}

impl ClusterExternalSecretSpec {
    /// `refreshTime` parsed; `None` when unset.
    pub fn refresh_interval(&self) -> Result<Option<Duration>, FieldError> {
        self.refresh_interval
            .as_deref()
            .map(|t| crate::duration::parse(t).map_err(|e| FieldError::new("spec.refreshTime", e.to_string())))
            .transpose()
    }

    /// Every problem the schema cannot catch, including those of `externalSecretSpec`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::default();
        self.external_secret_spec
            .validate_into("spec.externalSecretSpec", &mut errs);
        if let Some(t) = &self.refresh_interval {
            check_duration(&mut errs, Rule::CesRefreshTime, "spec.refreshTime", t);
        }
        errs.0
    }
}
