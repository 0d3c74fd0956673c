//! `spec.provider.doppler`: Doppler (`api.doppler.com`, or `DOPPLER_BASE_URL` of the operator).
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{SecretKeySelector, ServiceAccountSelector};
use crate::rules::Rule;
use crate::validate::{Errors, field};

/// Configures a store to sync secrets from a Doppler config. `project` and `config` are needed unless the token
/// is a service token (which is bound to one config).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DopplerProvider {
    /// How to authenticate with the Doppler API.
    pub auth: DopplerAuth,
    /// Doppler project (not needed with a service token).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    /// Doppler config (not needed with a service token).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
    /// Rewrites secret names for `dataFrom.find` into an environment-variable convention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_transformer: Option<DopplerNameTransformer>,
    /// `dataFrom.find` returns the whole config as one file in this format, under the key `DOPPLER_SECRETS_FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<DopplerFormat>,
}

/// Doppler's `name_transformer` values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DopplerNameTransformer {
    #[serde(rename = "upper-camel")]
    UpperCamel,
    #[serde(rename = "camel")]
    Camel,
    #[serde(rename = "lower-snake")]
    LowerSnake,
    #[serde(rename = "tf-var")]
    TfVar,
    #[serde(rename = "dotnet-env")]
    DotnetEnv,
    #[serde(rename = "lower-kebab")]
    LowerKebab,
}

impl DopplerNameTransformer {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            DopplerNameTransformer::UpperCamel => "upper-camel",
            DopplerNameTransformer::Camel => "camel",
            DopplerNameTransformer::LowerSnake => "lower-snake",
            DopplerNameTransformer::TfVar => "tf-var",
            DopplerNameTransformer::DotnetEnv => "dotnet-env",
            DopplerNameTransformer::LowerKebab => "lower-kebab",
        }
    }
}

/// Doppler's download `format` values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DopplerFormat {
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "dotnet-json")]
    DotnetJson,
    #[serde(rename = "env")]
    Env,
    #[serde(rename = "yaml")]
    Yaml,
    #[serde(rename = "docker")]
    Docker,
}

impl DopplerFormat {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            DopplerFormat::Json => "json",
            DopplerFormat::DotnetJson => "dotnet-json",
            DopplerFormat::Env => "env",
            DopplerFormat::Yaml => "yaml",
            DopplerFormat::Docker => "docker",
        }
    }
}

/// How to authenticate: exactly one of `secretRef` (a Doppler token) or `oidcConfig` (a ServiceAccount token
/// exchanged for a Doppler token).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DopplerAuth {
    /// A Doppler token (service token, service account token, …) in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<DopplerAuthSecretRef>,
    /// A ServiceAccount token exchanged for a Doppler token through Doppler's OIDC identity.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "oidcConfig")]
    pub oidc_config: Option<DopplerOIDCAuth>,
}

/// Where the Doppler token is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DopplerAuthSecretRef {
    /// The token; `key` defaults to `dopplerToken`.
    pub doppler_token: SecretKeySelector,
}

/// Doppler OIDC: a token minted for `serviceAccountRef` is exchanged at Doppler for an API token of `identity`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DopplerOIDCAuth {
    /// The Doppler service account identity ID configured for OIDC.
    pub identity: String,
    /// The ServiceAccount whose token is exchanged.
    pub service_account_ref: ServiceAccountSelector,
    /// Lifetime of the minted ServiceAccount token, in seconds (600 when not positive).
    #[serde(default = "default_expiration")]
    pub expiration_seconds: i64,
}

fn default_expiration() -> i64 {
    600
}

/// The `key` a Doppler token selector without one uses.
pub const DEFAULT_TOKEN_KEY: &str = "dopplerToken";

impl DopplerProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        let auth = field(path, "auth");
        match (&self.auth.secret_ref, &self.auth.oidc_config) {
            (Some(s), None) => {
                if s.doppler_token.name.is_empty() {
                    errs.push(
                        Rule::DopplerTokenName,
                        field(&auth, "secretRef.dopplerToken.name"),
                        "must not be empty",
                    );
                }
            }
            (None, Some(o)) => {
                if o.identity.trim().is_empty() {
                    errs.push(
                        Rule::DopplerOidcIdentity,
                        field(&auth, "oidcConfig.identity"),
                        "must not be empty",
                    );
                }
            }
            _ => errs.push(
                Rule::DopplerAuthExactlyOne,
                &auth,
                "exactly one of secretRef or oidcConfig must be set",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(v: serde_json::Value) -> Vec<String> {
        let p: DopplerProvider = serde_json::from_value(v).unwrap();
        let mut errs = Errors::default();
        p.validate_into("spec.provider.doppler", &mut errs);
        errs.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn one_auth_method() {
        assert!(errors(serde_json::json!({"auth": {"secretRef": {"dopplerToken": {"name": "t"}}}})).is_empty());
        assert_eq!(
            errors(serde_json::json!({"auth": {}})),
            ["spec.provider.doppler.auth: exactly one of secretRef or oidcConfig must be set"]
        );
        assert_eq!(
            errors(
                serde_json::json!({"auth": {"oidcConfig": {"identity": "", "serviceAccountRef": {"name": "sa"},
                "expirationSeconds": 0}}})
            ),
            ["spec.provider.doppler.auth.oidcConfig.identity: must not be empty"]
        );
    }

    #[test]
    fn enums_round_trip() {
        let p: DopplerProvider = serde_json::from_value(serde_json::json!({
            "auth": {"oidcConfig": {"identity": "i", "serviceAccountRef": {"name": "sa"}}},
            "nameTransformer": "lower-kebab", "format": "dotnet-json",
        }))
        .unwrap();
        assert_eq!(
            p.name_transformer.map(DopplerNameTransformer::as_str),
            Some("lower-kebab")
        );
        assert_eq!(p.format.map(DopplerFormat::as_str), Some("dotnet-json"));
        assert_eq!(p.auth.oidc_config.as_ref().map(|o| o.expiration_seconds), Some(600));
    }
}
