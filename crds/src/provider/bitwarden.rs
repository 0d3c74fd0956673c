//! `spec.provider.bitwardensecretsmanager`: Bitwarden Secrets Manager through a Bitwarden SDK server
//! (`bitwardenServerSDKURL`, the HTTPS service ESO deploys beside itself), with a machine-account access token.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{CAProvider, SecretKeySelector};
use crate::rules::Rule;
use crate::validate::{Errors, field};

/// Configures a store to sync secrets of one Bitwarden Secrets Manager project.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BitwardenSecretsManagerProvider {
    /// Bitwarden API URL passed to the SDK server (its default: `https://api.bitwarden.com`).
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "apiURL")]
    pub api_url: String,
    /// Bitwarden identity URL passed to the SDK server (its default: `https://identity.bitwarden.com`).
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "identityURL")]
    pub identity_url: String,
    /// URL of the Bitwarden SDK server; it must be HTTPS.
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "bitwardenServerSDKURL")]
    pub bitwarden_server_sdk_url: String,
    /// The SDK server's CA certificate: PEM, or PEM encoded in base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_bundle: String,
    /// Where to read the SDK server's CA certificate from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CAProvider>,
    /// The organization the secrets belong to.
    #[serde(rename = "organizationID")]
    pub organization_id: String,
    /// The project this store reads and writes.
    #[serde(rename = "projectID")]
    pub project_id: String,
    /// The machine-account access token.
    pub auth: BitwardenSecretsManagerAuth,
}

/// Where the access token is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BitwardenSecretsManagerAuth {
    pub secret_ref: BitwardenSecretsManagerSecretRef,
}

/// The access-token reference.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct BitwardenSecretsManagerSecretRef {
    /// The machine-account access token.
    pub credentials: SecretKeySelector,
}

impl BitwardenSecretsManagerProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        if !self.bitwarden_server_sdk_url.trim().starts_with("https://") {
            errs.push(
                Rule::BitwardenSdkUrl,
                field(path, "bitwardenServerSDKURL"),
                "must be an https:// URL (the access token travels to it)",
            );
        }
        if self.organization_id.trim().is_empty() {
            errs.push(
                Rule::BitwardenOrganizationId,
                field(path, "organizationID"),
                "must not be empty",
            );
        }
        if self.project_id.trim().is_empty() {
            errs.push(Rule::BitwardenProjectId, field(path, "projectID"), "must not be empty");
        }
        let cred = field(path, "auth.secretRef.credentials");
        if self.auth.secret_ref.credentials.name.is_empty() {
            errs.push(
                Rule::BitwardenCredentialsName,
                field(&cred, "name"),
                "must not be empty",
            );
        }
        if self.auth.secret_ref.credentials.key.is_empty() {
            errs.push(Rule::BitwardenCredentialsKey, field(&cred, "key"), "must not be empty");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let p: BitwardenSecretsManagerProvider = serde_json::from_value(serde_json::json!({
            "bitwardenServerSDKURL": "http://bitwarden-sdk-server:9998",
            "organizationID": "o", "projectID": "",
            "auth": {"secretRef": {"credentials": {"name": "bw", "key": "token"}}},
        }))
        .unwrap();
        let mut errs = Errors::default();
        p.validate_into("spec.provider.bitwardensecretsmanager", &mut errs);
        assert_eq!(
            errs.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "spec.provider.bitwardensecretsmanager.bitwardenServerSDKURL: must be an https:// URL (the access token travels to it)",
                "spec.provider.bitwardensecretsmanager.projectID: must not be empty",
            ]
        );
    }
}
