//! `spec.provider.gcpsm`: Google Cloud Secret Manager.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{DNS1123_LABEL, DNS1123_SUBDOMAIN, SECRET_KEY, SecretKeySelector, ServiceAccountSelector};
use crate::schema::is_default;

/// Which version `latest` resolves to when it is disabled or destroyed. ESO puts no enum on this field, so
/// unknown values deserialize as [`SecretVersionSelectionPolicy::Other`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum SecretVersionSelectionPolicy {
    /// Always use `latest`; fail when it is disabled or destroyed.
    #[default]
    LatestOrFail,
    /// Fall back to the newest enabled version.
    LatestOrFetch,
    /// A value ESO does not know either.
    #[serde(untagged)]
    Other(String),
}

impl JsonSchema for SecretVersionSelectionPolicy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretVersionSelectionPolicy".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string" })
    }
}

/// Configures a store to sync secrets from Google Cloud Secret Manager.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GCPSMProvider {
    /// How to authenticate; without it Application Default Credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<GCPSMAuth>,
    /// Project that holds the secrets.
    #[serde(default, rename = "projectID", skip_serializing_if = "String::is_empty")]
    pub project_id: String,
    /// Location, for regional secrets.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    /// `LatestOrFail` (default) or `LatestOrFetch`.
    #[serde(default)]
    pub secret_version_selection_policy: SecretVersionSelectionPolicy,
}

/// How to authenticate with Google Cloud.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GCPSMAuth {
    /// A service-account JSON key in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<GCPSMAuthSecretRef>,
    /// GKE Workload Identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<GCPWorkloadIdentity>,
    /// Workload Identity Federation (any external identity provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity_federation: Option<GCPWorkloadIdentityFederation>,
}

/// A service-account JSON key in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GCPSMAuthSecretRef {
    /// The key.
    #[serde(default, rename = "secretAccessKeySecretRef", skip_serializing_if = "is_default")]
    pub secret_access_key: SecretKeySelector,
}

/// GKE Workload Identity: a token minted for the ServiceAccount is exchanged for Google credentials. Cluster
/// fields left out are read from the GKE metadata server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GCPWorkloadIdentity {
    pub service_account_ref: ServiceAccountSelector,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_location: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    #[serde(default, rename = "clusterProjectID", skip_serializing_if = "String::is_empty")]
    pub cluster_project_id: String,
}

/// Workload Identity Federation settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GCPWorkloadIdentityFederation {
    /// ConfigMap key holding the external-account credential configuration (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred_config: Option<ConfigMapReference>,
    /// ServiceAccount whose tokens are exchanged, when Kubernetes is the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// AWS region and credentials, when AWS is the identity provider and its metadata server is not usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_security_credentials: Option<AwsCredentialsConfig>,
    /// STS audience (workload identity pool and provider); required with `serviceAccountRef` or
    /// `awsSecurityCredentials`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub audience: String,
    /// Expected `credential_source.url` of `credConfig`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_token_endpoint: String,
    /// Google service account to impersonate after federation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1), pattern(r"^.*@.*\.iam\.gserviceaccount\.com$"))]
    pub gcp_service_account_email: String,
}

/// A key in a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ConfigMapReference {
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// Namespace of the ConfigMap; the store's namespace when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: String,
}

/// AWS region and the Secret with AWS credentials (keys `aws_access_key_id`, `aws_secret_access_key`,
/// `aws_session_token`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsCredentialsConfig {
    #[schemars(length(min = 1, max = 50), pattern(r"^[a-z0-9-]+$"))]
    pub region: String,
    pub aws_credentials_secret_ref: SecretReference,
}

/// A Secret by name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// Namespace of the Secret; the store's namespace when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub namespace: String,
}
