//! `spec.provider.vault`: HashiCorp Vault KV (v1 and v2).
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Base64Data, CAProvider, SecretKeySelector, ServiceAccountSelector};
use crate::provider::gcpsm::{GCPSMAuthSecretRef, GCPWorkloadIdentity};
use crate::rules::Rule;
use crate::schema::is_default;
use crate::validate::{Errors, field};

/// Version of the KV secrets engine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum VaultKVStoreVersion {
    #[serde(rename = "v1")]
    V1,
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// Configures a store to sync secrets from a HashiCorp Vault KV backend.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultProvider {
    /// How to authenticate with the Vault server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<VaultAuth>,
    /// Address of the Vault server, e.g. `https://vault.example.com:8200`.
    pub server: String,
    /// Mount path of the KV backend, e.g. `secret`. For KV v2 the `/data` suffix is added when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// KV engine version, `v1` or `v2` (default).
    #[serde(default)]
    pub version: VaultKVStoreVersion,
    /// Vault Enterprise namespace, e.g. `ns1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// PEM CA bundle (base64) for the server certificate; the system roots are used when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<Base64Data>,
    /// Client certificate and key for mutual TLS with the server (not the `cert` auth method).
    #[serde(default, rename = "tls", skip_serializing_if = "is_default")]
    pub client_tls: VaultClientTLS,
    /// Where to read the CA bundle from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CAProvider>,
    /// Send the replication state with each request for read-after-write consistency (Vault Enterprise).
    #[serde(default, skip_serializing_if = "is_default")]
    pub read_your_writes: bool,
    /// Forward read-after-write requests to the leader instead of retrying.
    #[serde(default, skip_serializing_if = "is_default")]
    pub forward_inconsistent: bool,
    /// Headers added to every Vault request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Check-and-set settings for PushSecret writes (KV v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_and_set: Option<VaultCheckAndSet>,
}

/// Client certificate and key for mutual TLS with the Vault server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultClientTLS {
    /// Client certificate; the key defaults to `tls.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretKeySelector>,
    /// Client private key; the key defaults to `tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeySelector>,
}

/// How to authenticate with Vault: exactly one method, plus an optional namespace to log in to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuth {
    /// Vault namespace to authenticate to; defaults to the provider's `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A static token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,
    /// AppRole login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<VaultAppRole>,
    /// Kubernetes auth method with a ServiceAccount token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetesAuth>,
    /// LDAP username and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<VaultLdapAuth>,
    /// JWT/OIDC login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<VaultJwtAuth>,
    /// TLS certificate login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<VaultCertAuth>,
    /// AWS IAM login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<VaultIamAuth>,
    /// Username and password login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_pass: Option<VaultUserPassAuth>,
    /// Google Cloud login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<VaultGCPAuth>,
}

fn approle() -> String {
    "approle".to_owned()
}
fn kubernetes() -> String {
    "kubernetes".to_owned()
}
fn ldap() -> String {
    "ldap".to_owned()
}
fn jwt() -> String {
    "jwt".to_owned()
}
fn cert() -> String {
    "cert".to_owned()
}
fn userpass() -> String {
    "userpass".to_owned()
}
fn gcp() -> String {
    "gcp".to_owned()
}

/// AppRole login; the role ID is given inline (`roleId`) or read from a Secret (`roleRef`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRole {
    /// Mount path of the AppRole backend.
    #[serde(default = "approle")]
    #[schemars(title = "x-syncret-required")]
    pub path: String,
    /// The role ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_id: String,
    /// A Secret key holding the role ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<SecretKeySelector>,
    /// A Secret key holding the role's secret ID.
    pub secret_ref: SecretKeySelector,
}

/// Kubernetes auth method: a ServiceAccount token (minted for `serviceAccountRef`, read from `secretRef`, or the
/// controller's own) is exchanged for a Vault token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesAuth {
    /// Mount path of the Kubernetes backend.
    #[serde(default = "kubernetes", rename = "mountPath")]
    #[schemars(title = "x-syncret-required")]
    pub path: String,
    /// ServiceAccount whose token is requested with the TokenRequest API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// A Secret key holding a ServiceAccount JWT (key `token` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
    /// Vault role to log in as.
    pub role: String,
}

/// LDAP login.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultLdapAuth {
    /// Mount path of the LDAP backend.
    #[serde(default = "ldap")]
    #[schemars(title = "x-syncret-required")]
    pub path: String,
    /// LDAP username.
    pub username: String,
    /// A Secret key holding the password.
    #[serde(default, skip_serializing_if = "is_default")]
    pub secret_ref: SecretKeySelector,
}

/// JWT/OIDC login with a token from a Secret or minted for a ServiceAccount.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultJwtAuth {
    /// Mount path of the JWT backend.
    #[serde(default = "jwt")]
    #[schemars(title = "x-syncret-required")]
    pub path: String,
    /// Vault role to log in as.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// A Secret key holding the JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
    /// A ServiceAccount token requested with the TokenRequest API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_service_account_token: Option<VaultKubernetesServiceAccountTokenAuth>,
}

/// A ServiceAccount token requested with the TokenRequest API.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesServiceAccountTokenAuth {
    /// The ServiceAccount.
    pub service_account_ref: ServiceAccountSelector,
    /// Deprecated (use `serviceAccountRef.audiences`): token audiences, `[vault]` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    /// Deprecated: token lifetime in seconds, 600 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_seconds: Option<i64>,
}

/// TLS certificate login.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCertAuth {
    /// Mount path of the cert backend.
    #[serde(default = "cert")]
    pub path: String,
    /// Vault role to log in as.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vault_role: String,
    /// A Secret key holding the client certificate.
    #[serde(default, skip_serializing_if = "is_default")]
    pub client_cert: SecretKeySelector,
    /// A Secret key holding the client private key.
    #[serde(default, skip_serializing_if = "is_default")]
    pub secret_ref: SecretKeySelector,
}

/// AWS IAM login. Without `secretRef` or `jwt` the controller's own AWS identity (IRSA or Pod Identity) is used.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultIamAuth {
    /// Mount path of the AWS backend.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// AWS region.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    /// AWS role to assume before logging in.
    #[serde(default, rename = "role", skip_serializing_if = "String::is_empty")]
    pub aws_iam_role: String,
    /// Vault role to log in as.
    #[serde(rename = "vaultRole")]
    pub role: String,
    /// External ID for the assumed role.
    #[serde(default, rename = "externalID", skip_serializing_if = "String::is_empty")]
    pub external_id: String,
    /// Value of the `X-Vault-AWS-IAM-Server-ID` header.
    #[serde(default, rename = "vaultAwsIamServerID", skip_serializing_if = "String::is_empty")]
    pub vault_aws_iam_server_id: String,
    /// Static AWS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<VaultAwsAuthSecretRef>,
    /// A ServiceAccount with IRSA.
    #[serde(default, rename = "jwt", skip_serializing_if = "Option::is_none")]
    pub jwt_auth: Option<VaultAwsJWTAuth>,
}

/// Static AWS credentials for Vault's IAM login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct VaultAwsAuthSecretRef {
    #[serde(default, rename = "accessKeyIDSecretRef", skip_serializing_if = "is_default")]
    pub access_key_id: SecretKeySelector,
    #[serde(default, rename = "secretAccessKeySecretRef", skip_serializing_if = "is_default")]
    pub secret_access_key: SecretKeySelector,
    #[serde(default, rename = "sessionTokenSecretRef", skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretKeySelector>,
}

/// A ServiceAccount with IRSA for Vault's IAM login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAwsJWTAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

/// Username and password login.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultUserPassAuth {
    /// Mount path of the userpass backend.
    #[serde(default = "userpass")]
    #[schemars(title = "x-syncret-required")]
    pub path: String,
    /// Username.
    pub username: String,
    /// A Secret key holding the password.
    #[serde(default, skip_serializing_if = "is_default")]
    pub secret_ref: SecretKeySelector,
}

/// Google Cloud login. Without `secretRef`, `workloadIdentity` or `serviceAccountRef` the controller's own
/// identity is used.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultGCPAuth {
    /// Mount path of the GCP backend.
    #[serde(default = "gcp")]
    pub path: String,
    /// Vault role to log in as.
    pub role: String,
    /// Google Cloud project ID.
    #[serde(default, rename = "projectID", skip_serializing_if = "String::is_empty")]
    pub project_id: String,
    /// Location (region) of the project.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    /// Service account key from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<GCPSMAuthSecretRef>,
    /// GKE Workload Identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<GCPWorkloadIdentity>,
    /// ServiceAccount to impersonate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

/// Check-and-set settings for KV v2 writes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCheckAndSet {
    /// When true every write carries the current version of the secret.
    #[serde(default, skip_serializing_if = "is_default")]
    pub required: bool,
}

impl VaultAuth {
    /// Names (JSON keys) of the login methods that are set.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        let mut add = |present: bool, name: &'static str| {
            if present {
                set.push(name);
            }
        };
        add(self.token_secret_ref.is_some(), "tokenSecretRef");
        add(self.app_role.is_some(), "appRole");
        add(self.kubernetes.is_some(), "kubernetes");
        add(self.ldap.is_some(), "ldap");
        add(self.jwt.is_some(), "jwt");
        add(self.cert.is_some(), "cert");
        add(self.iam.is_some(), "iam");
        add(self.user_pass.is_some(), "userPass");
        add(self.gcp.is_some(), "gcp");
        set
    }
}

impl VaultProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        if self.server.trim().is_empty() {
            errs.push(Rule::VaultServer, field(path, "server"), "must not be empty");
        }
        if let Some(auth) = &self.auth {
            let p = field(path, "auth");
            let methods = auth.methods();
            if methods.len() > 1 {
                errs.push(
                    Rule::VaultOneAuth,
                    &p,
                    format!("only one auth method may be set, found {}", methods.join(", ")),
                );
            }
            if let Some(app_role) = &auth.app_role
                && app_role.role_id.is_empty()
                && app_role.role_ref.is_none()
            {
                errs.push(
                    Rule::VaultAppRoleRole,
                    field(&p, "appRole"),
                    "one of roleId or roleRef must be set",
                );
            }
            if let Some(jwt) = &auth.jwt
                && jwt.secret_ref.is_none()
                && jwt.kubernetes_service_account_token.is_none()
            {
                errs.push(
                    Rule::VaultJwtSource,
                    field(&p, "jwt"),
                    "one of secretRef or kubernetesServiceAccountToken must be set",
                );
            }
        }
        if self.client_tls.cert_secret_ref.is_some() != self.client_tls.key_secret_ref.is_some() {
            errs.push(
                Rule::VaultTlsPair,
                field(path, "tls"),
                "certSecretRef and keySecretRef must be set together",
            );
        }
        if self.check_and_set.as_ref().is_some_and(|c| c.required) && self.version == VaultKVStoreVersion::V1 {
            errs.push(
                Rule::VaultCasWithKvV1,
                field(path, "checkAndSet"),
                "checkAndSet is not supported with KV version v1",
            );
        }
    }
}
