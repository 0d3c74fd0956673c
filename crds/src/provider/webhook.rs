//! `spec.provider.webhook`: a generic templated HTTP call.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Base64Data, CAProvider, SecretKeySelector};
use crate::rules::Rule;
use crate::schema::is_default;
use crate::validate::{Errors, check_duration, field, index};

/// Configures a store that reads secrets from a web API. `url`, `headers` and `body` are templates with
/// `.remoteRef.key` and `.remoteRef.property` (and `.remoteRef.remoteKey` / `.remoteRef.secretKey` for push).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookProvider {
    /// HTTP method, `GET` when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// URL to call (a template).
    pub url: String,
    /// Request headers (templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Authorization protocol; only one may be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthorizationProtocol>,
    /// Request body (a template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Request timeout, a Go duration such as `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// How to extract the value from the response.
    #[serde(default, skip_serializing_if = "is_default")]
    pub result: WebhookResult,
    /// Secrets available to the templates as `.<name>.<key>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<WebhookSecret>,
    /// PEM CA bundle (base64) of the server; the system roots are used when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<Base64Data>,
    /// Where to read the CA bundle from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<WebhookCAProvider>,
}

/// The webhook's CA provider has the same shape as [`CAProvider`].
pub type WebhookCAProvider = CAProvider;

/// Authorization protocol of the webhook: exactly one key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct AuthorizationProtocol {
    /// NTLM with a username and password from Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntlm: Option<NTLMProtocol>,
}

/// NTLM credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct NTLMProtocol {
    #[serde(rename = "usernameSecret")]
    pub user_name: SecretKeySelector,
    #[serde(rename = "passwordSecret")]
    pub password: SecretKeySelector,
}

/// How to extract the value from the response.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResult {
    /// JSONPath of the value in the response; the whole body when empty.
    #[serde(default, rename = "jsonPath", skip_serializing_if = "String::is_empty")]
    pub json_path: String,
}

/// A Secret made available to the templates under `name`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecret {
    /// Name of the secret in templates.
    pub name: String,
    /// The Secret; it must carry the label `external-secrets.io/type: webhook`.
    pub secret_ref: SecretKeySelector,
}

impl WebhookProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        if self.url.trim().is_empty() {
            errs.push(Rule::WebhookUrl, field(path, "url"), "must not be empty");
        }
        if let Some(timeout) = &self.timeout {
            check_duration(errs, Rule::WebhookTimeout, &field(path, "timeout"), timeout);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, secret) in self.secrets.iter().enumerate() {
            if !seen.insert(secret.name.as_str()) {
                errs.push(
                    Rule::WebhookDuplicateSecretName,
                    field(&index(&field(path, "secrets"), i), "name"),
                    format!("duplicate name {:?}", secret.name),
                );
            }
        }
    }
}
