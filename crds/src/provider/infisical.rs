//! `spec.provider.infisical`: Infisical (app.infisical.com or a self-hosted instance), machine identities.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Base64Data, CAProvider, SecretKeySelector};
use crate::rules::Rule;
use crate::schema::is_default;
use crate::validate::{Errors, check_http_url, field};

/// Configures a store to sync secrets from one environment of an Infisical project.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalProvider {
    /// How to authenticate with the Infisical API (one machine-identity method).
    pub auth: InfisicalAuth,
    /// Which project, environment and folder the secrets are in.
    pub secrets_scope: MachineIdentityScopeInWorkspace,
    /// Base URL of the Infisical API.
    #[serde(default = "default_host_api", rename = "hostAPI")]
    pub host_api: String,
    /// PEM CA bundle (base64) for the server certificate; the system roots are used without it and `caProvider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<Base64Data>,
    /// Where to read the CA bundle from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CAProvider>,
}

/// The Infisical cloud API.
pub const DEFAULT_HOST_API: &str = "https://app.infisical.com/api";

fn default_host_api() -> String {
    DEFAULT_HOST_API.to_owned()
}

/// The machine-identity login method: one of the fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalAuth {
    /// Universal auth: a client ID and secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universal_auth_credentials: Option<UniversalAuthCredentials>,
    /// Azure managed identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_auth_credentials: Option<AzureAuthCredentials>,
    /// A GCP ID token from the metadata server.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "gcpIdTokenAuthCredentials"
    )]
    pub gcp_id_token_auth_credentials: Option<GcpIdTokenAuthCredentials>,
    /// A GCP service-account key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_iam_auth_credentials: Option<GcpIamAuthCredentials>,
    /// A JWT from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_auth_credentials: Option<JwtAuthCredentials>,
    /// LDAP username and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_auth_credentials: Option<LdapAuthCredentials>,
    /// An OCI API signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_auth_credentials: Option<OciAuthCredentials>,
    /// A Kubernetes ServiceAccount token that Infisical reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_auth_credentials: Option<KubernetesAuthCredentials>,
    /// AWS IAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_auth_credentials: Option<AwsAuthCredentials>,
    /// A pre-issued access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_auth_credentials: Option<TokenAuthCredentials>,
}

/// Universal auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UniversalAuthCredentials {
    pub client_id: SecretKeySelector,
    pub client_secret: SecretKeySelector,
}

/// Azure auth: the identity, and the resource to request a token for.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureAuthCredentials {
    pub identity_id: SecretKeySelector,
    #[serde(default, skip_serializing_if = "is_default")]
    pub resource: SecretKeySelector,
}

/// GCP ID-token auth.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpIdTokenAuthCredentials {
    pub identity_id: SecretKeySelector,
}

/// GCP IAM auth.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpIamAuthCredentials {
    pub identity_id: SecretKeySelector,
    /// A Secret key holding the path of a service-account key file (refused by syncret: it reads no file a
    /// store names).
    pub service_account_key_file_path: SecretKeySelector,
}

/// JWT auth: the identity and the JWT to present.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuthCredentials {
    pub identity_id: SecretKeySelector,
    pub jwt: SecretKeySelector,
}

/// LDAP auth.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapAuthCredentials {
    pub identity_id: SecretKeySelector,
    #[serde(rename = "ldapPassword")]
    pub ldap_password: SecretKeySelector,
    #[serde(rename = "ldapUsername")]
    pub ldap_username: SecretKeySelector,
}

/// OCI auth.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciAuthCredentials {
    pub identity_id: SecretKeySelector,
    pub private_key: SecretKeySelector,
    #[serde(default, skip_serializing_if = "is_default")]
    pub private_key_passphrase: SecretKeySelector,
    pub fingerprint: SecretKeySelector,
    pub user_id: SecretKeySelector,
    pub tenancy_id: SecretKeySelector,
    pub region: SecretKeySelector,
}

/// Kubernetes auth: the identity, and optionally a Secret key naming the token file to present.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesAuthCredentials {
    pub identity_id: SecretKeySelector,
    #[serde(default, skip_serializing_if = "is_default")]
    pub service_account_token_path: SecretKeySelector,
}

/// AWS IAM auth.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuthCredentials {
    pub identity_id: SecretKeySelector,
}

/// Token auth.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenAuthCredentials {
    pub access_token: SecretKeySelector,
}

/// Where the secrets are: project, environment and folder.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineIdentityScopeInWorkspace {
    /// Folder of the secrets.
    #[serde(default = "root_path")]
    pub secrets_path: String,
    /// `dataFrom.find` also lists the folders below `secretsPath`.
    #[serde(default)]
    pub recursive: bool,
    /// Environment slug (e.g. `dev`, `prod`).
    pub environment_slug: String,
    /// Project slug.
    pub project_slug: String,
    /// Organization to log in to (sub-organizations).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub organization_slug: String,
    /// Whether `${…}` references in values are expanded by Infisical.
    #[serde(default = "yes")]
    pub expand_secret_references: bool,
}

fn root_path() -> String {
    "/".to_owned()
}

fn yes() -> bool {
    true
}

impl InfisicalAuth {
    /// The names of the methods set, as in the manifest.
    pub fn methods(&self) -> Vec<&'static str> {
        let set = [
            ("universalAuthCredentials", self.universal_auth_credentials.is_some()),
            ("azureAuthCredentials", self.azure_auth_credentials.is_some()),
            (
                "gcpIdTokenAuthCredentials",
                self.gcp_id_token_auth_credentials.is_some(),
            ),
            ("gcpIamAuthCredentials", self.gcp_iam_auth_credentials.is_some()),
            ("jwtAuthCredentials", self.jwt_auth_credentials.is_some()),
            ("ldapAuthCredentials", self.ldap_auth_credentials.is_some()),
            ("ociAuthCredentials", self.oci_auth_credentials.is_some()),
            ("kubernetesAuthCredentials", self.kubernetes_auth_credentials.is_some()),
            ("awsAuthCredentials", self.aws_auth_credentials.is_some()),
            ("tokenAuthCredentials", self.token_auth_credentials.is_some()),
        ];
        set.into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect()
    }
}

impl InfisicalProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        let scope = field(path, "secretsScope");
        if self.secrets_scope.project_slug.trim().is_empty() {
            errs.push(
                Rule::InfisicalProjectSlug,
                field(&scope, "projectSlug"),
                "must not be empty",
            );
        }
        if self.secrets_scope.environment_slug.trim().is_empty() {
            errs.push(
                Rule::InfisicalEnvironmentSlug,
                field(&scope, "environmentSlug"),
                "must not be empty",
            );
        }
        if !self.secrets_scope.secrets_path.is_empty() && !self.secrets_scope.secrets_path.starts_with('/') {
            errs.push(
                Rule::InfisicalSecretsPath,
                field(&scope, "secretsPath"),
                "must start with /",
            );
        }
        check_http_url(errs, Rule::InfisicalHostApi, &field(path, "hostAPI"), &self.host_api);
        if self.ca_bundle.is_some() && self.ca_provider.is_some() {
            errs.push(
                Rule::InfisicalCa,
                field(path, "caBundle"),
                "caBundle and caProvider are mutually exclusive",
            );
        }
        let auth = field(path, "auth");
        match self.auth.methods().as_slice() {
            [_] => {}
            [] => errs.push(
                Rule::InfisicalAuthExactlyOne,
                &auth,
                "exactly one authentication method must be set, found none",
            ),
            many => errs.push(
                Rule::InfisicalAuthExactlyOne,
                &auth,
                format!(
                    "exactly one authentication method must be set, found {}",
                    many.join(", ")
                ),
            ),
        }
        if let Some(ua) = &self.auth.universal_auth_credentials {
            let p = field(&auth, "universalAuthCredentials");
            for (name, sel) in [("clientId", &ua.client_id), ("clientSecret", &ua.client_secret)] {
                if sel.key.is_empty() {
                    errs.push(
                        Rule::InfisicalUniversalKey,
                        field(&field(&p, name), "key"),
                        "must not be empty",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let p: InfisicalProvider = serde_json::from_value(serde_json::json!({
            "auth": {"universalAuthCredentials": {"clientId": {"name": "c", "key": "id"},
                     "clientSecret": {"name": "c"}}},
            "secretsScope": {"projectSlug": "p", "environmentSlug": "dev"},
        }))
        .unwrap();
        assert_eq!(p.host_api, DEFAULT_HOST_API);
        assert_eq!(p.secrets_scope.secrets_path, "/");
        assert!(p.secrets_scope.expand_secret_references);
        assert!(!p.secrets_scope.recursive);
        let mut errs = Errors::default();
        p.validate_into("spec.provider.infisical", &mut errs);
        assert_eq!(
            errs.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["spec.provider.infisical.auth.universalAuthCredentials.clientSecret.key: must not be empty"]
        );
        let two: InfisicalAuth = serde_json::from_value(serde_json::json!({
            "jwtAuthCredentials": {"identityId": {"name": "a"}, "jwt": {"name": "b"}},
            "tokenAuthCredentials": {"accessToken": {"name": "c"}},
        }))
        .unwrap();
        assert_eq!(two.methods(), ["jwtAuthCredentials", "tokenAuthCredentials"]);
    }
}
