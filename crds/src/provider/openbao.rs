//! `spec.provider.openBao`: OpenBao KV (the Vault fork), with its own key and a smaller auth surface.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Base64Data, CAProvider, SecretKeySelector};
use crate::provider::vault::VaultKVStoreVersion;
use crate::rules::Rule;
use crate::schema::is_default;
use crate::validate::{Errors, field};

/// Version of the OpenBao KV secrets engine (same values as Vault's).
pub type OpenBaoKVStoreVersion = VaultKVStoreVersion;

/// Configures a store to sync secrets from an OpenBao KV backend.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenBaoProvider {
    /// How to authenticate with the OpenBao server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<OpenBaoAuth>,
    /// PEM CA bundle (base64) for the server certificate. Without it and `caProvider` the system roots are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<Base64Data>,
    /// Where to read the CA bundle from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CAProvider>,
    /// OpenBao namespace, e.g. `ns1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Address of the OpenBao server, e.g. `https://openbao.example.com:8200`.
    pub server: String,
    /// Mount path of the KV backend, e.g. `secret`. For KV v2 the `/data` suffix is added when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// KV engine version, `v1` or `v2` (default).
    #[serde(default)]
    pub version: OpenBaoKVStoreVersion,
}

/// How to authenticate with OpenBao: exactly one of `appRole`, `tokenSecretRef` or `userPass`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenBaoAuth {
    /// AppRole login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<OpenBaoAppRole>,
    /// OpenBao namespace to authenticate to; defaults to the provider's `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A static token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,
    /// Username and password login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_pass: Option<OpenBaoUserPassAuth>,
}

fn approle() -> String {
    "approle".to_owned()
}
fn userpass() -> String {
    "userpass".to_owned()
}

/// AppRole login; exactly one of `roleId` or `roleRef`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenBaoAppRole {
    /// Mount path of the AppRole backend.
    #[serde(default = "approle")]
    #[schemars(title = "x-syncret-required")]
    pub path: String,
    /// The role ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub role_id: String,
    /// A Secret key holding the role ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<SecretKeySelector>,
    /// A Secret key holding the role's secret ID.
    pub secret_ref: SecretKeySelector,
}

/// Username and password login.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenBaoUserPassAuth {
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

impl OpenBaoProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        if self.server.trim().is_empty() {
            errs.push(Rule::OpenBaoServer, field(path, "server"), "must not be empty");
        }
        if self.ca_bundle.is_some() && self.ca_provider.is_some() {
            errs.push(
                Rule::OpenBaoCa,
                path,
                "at most one of caBundle or caProvider may be set",
            );
        }
        if let Some(auth) = &self.auth {
            let p = field(path, "auth");
            let n = [
                auth.app_role.is_some(),
                auth.token_secret_ref.is_some(),
                auth.user_pass.is_some(),
            ]
            .into_iter()
            .filter(|x| *x)
            .count();
            if n != 1 {
                errs.push(
                    Rule::OpenBaoAuthExactlyOne,
                    &p,
                    "exactly one of appRole, tokenSecretRef or userPass must be set",
                );
            }
            if let Some(app_role) = &auth.app_role
                && app_role.role_id.is_empty() == app_role.role_ref.is_none()
            {
                errs.push(
                    Rule::OpenBaoAppRole,
                    field(&p, "appRole"),
                    "exactly one of roleId or roleRef must be set",
                );
            }
        }
    }
}
