//! `spec.provider.azurekv`: Azure Key Vault.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{SecretKeySelector, ServiceAccountSelector};
use crate::rules::Rule;
use crate::validate::{Errors, field};

/// How to authenticate with Azure.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AzureAuthType {
    // A service principal: tenant ID, client ID and a client secret or certificate.
    #[default]
    ServicePrincipal,
    // The Managed Identity assigned to the pod.
    ManagedIdentity,
    // A Kubernetes ServiceAccount federated with Entra ID.
    WorkloadIdentity,
}

/// Azure cloud whose endpoints are used.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AzureEnvironmentType {
    #[default]
    PublicCloud,
    USGovernmentCloud,
    ChinaCloud,
    GermanCloud,
    AzureStackCloud,
}

/// Configures a store to sync secrets from Azure Key Vault.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKVProvider {
    /// How to authenticate: `ServicePrincipal` (default), `ManagedIdentity` or `WorkloadIdentity`.
    #[serde(default)]
    pub auth_type: AzureAuthType,
    /// URL of the vault, e.g. `https://my-vault.vault.azure.net`.
    #[serde(rename = "vaultUrl")]
    pub vault_url: String,
    /// Tenant to authenticate in; required for ServicePrincipal, optional for WorkloadIdentity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Azure cloud: `PublicCloud` (default), `USGovernmentCloud`, `ChinaCloud`, `GermanCloud` or
    /// `AzureStackCloud` (which needs `customCloudConfig`).
    #[serde(default)]
    pub environment_type: AzureEnvironmentType,
    /// Credentials in Secrets; required for ServicePrincipal, optional for WorkloadIdentity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<AzureKVAuth>,
    /// ServiceAccount used with WorkloadIdentity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// Which of several managed identities to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// Use the azcore-based Azure SDK instead of the legacy one (required by `customCloudConfig`).
    #[serde(default, rename = "useAzureSDK")]
    pub use_azure_sdk: bool,
    /// Endpoints of a private cloud; needs `useAzureSDK: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_cloud_config: Option<AzureCustomCloudConfig>,
}

/// Azure credentials held in Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKVAuth {
    /// Client ID of the service principal or managed identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<SecretKeySelector>,
    /// Tenant ID of the managed identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<SecretKeySelector>,
    /// Client secret of the service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretKeySelector>,
    /// Client certificate of the service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<SecretKeySelector>,
}

/// Endpoints of a private Azure cloud (Azure Stack).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureCustomCloudConfig {
    /// Entra ID (AAD) endpoint used to authenticate.
    pub active_directory_endpoint: String,
    /// Key Vault service endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_vault_endpoint: Option<String>,
    /// DNS suffix of Key Vault URLs.
    #[serde(default, rename = "keyVaultDNSSuffix", skip_serializing_if = "Option::is_none")]
    pub key_vault_dns_suffix: Option<String>,
    /// Azure Resource Manager endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_manager_endpoint: Option<String>,
}

impl AzureKVProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        if self.vault_url.trim().is_empty() {
            errs.push(Rule::AzureVaultUrl, field(path, "vaultUrl"), "must not be empty");
        }
        if let Some(cloud) = &self.custom_cloud_config {
            if !self.use_azure_sdk {
                errs.push(
                    Rule::AzureCustomCloudNeedsSdk,
                    field(path, "customCloudConfig"),
                    "requires useAzureSDK: true",
                );
            }
            if cloud.active_directory_endpoint.trim().is_empty() {
                errs.push(
                    Rule::AzureActiveDirectoryEndpoint,
                    field(path, "customCloudConfig.activeDirectoryEndpoint"),
                    "must not be empty",
                );
            }
        }
        if self.environment_type == AzureEnvironmentType::AzureStackCloud && self.custom_cloud_config.is_none() {
            errs.push(
                Rule::AzureStackNeedsCustomCloud,
                field(path, "customCloudConfig"),
                "is required when environmentType is AzureStackCloud",
            );
        }
    }
}
