//! `spec.provider.onepassword`: 1Password through a 1Password Connect server.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::SecretKeySelector;
use crate::rules::Rule;
use crate::validate::{Errors, field};

/// Configures a store to sync secrets from the vaults a 1Password Connect server serves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnePasswordProvider {
    /// How to authenticate with the Connect server.
    pub auth: OnePasswordAuth,
    /// URL of the Connect server, e.g. `http://onepassword-connect:8080`.
    pub connect_host: String,
    /// The vaults to search (by name or ID) and in which order: lower numbers first.
    #[schemars(schema_with = "vault_order")]
    pub vaults: BTreeMap<String, i64>,
}

/// `{type: object, additionalProperties: {type: integer}}` (Go's `map[string]int`, no `format`).
fn vault_order(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "additionalProperties": { "type": "integer" } })
}

/// The Connect token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnePasswordAuth {
    pub secret_ref: OnePasswordAuthSecretRef,
}

/// Where the Connect token is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OnePasswordAuthSecretRef {
    /// The Connect server access token.
    #[serde(rename = "connectTokenSecretRef")]
    pub connect_token: SecretKeySelector,
}

impl OnePasswordProvider {
    /// The vault names or IDs in search order (ties, which validation refuses, by name).
    pub fn ordered_vaults(&self) -> Vec<&str> {
        let mut v: Vec<(&String, &i64)> = self.vaults.iter().collect();
        v.sort_by_key(|(name, order)| (**order, name.as_str()));
        v.into_iter().map(|(name, _)| name.as_str()).collect()
    }

    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        let token = field(path, "auth.secretRef.connectTokenSecretRef");
        if self.auth.secret_ref.connect_token.name.is_empty() {
            errs.push(Rule::OnePasswordTokenName, field(&token, "name"), "must not be empty");
        }
        if self.auth.secret_ref.connect_token.key.is_empty() {
            errs.push(Rule::OnePasswordTokenKey, field(&token, "key"), "must not be empty");
        }
        let host = self.connect_host.trim();
        if !(host.starts_with("http://") || host.starts_with("https://")) {
            errs.push(
                Rule::OnePasswordConnectHost,
                field(path, "connectHost"),
                "must be an http:// or https:// URL",
            );
        }
        let vaults = field(path, "vaults");
        if self.vaults.is_empty() {
            errs.push(Rule::OnePasswordVaults, &vaults, "must list at least one vault");
        }
        let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
        for (name, order) in &self.vaults {
            if let Some(other) = seen.insert(*order, name) {
                errs.push(
                    Rule::OnePasswordVaultOrder,
                    &vaults,
                    format!("vault order numbers must be unique: {other:?} and {name:?} are both {order}"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vaults_are_searched_by_order() {
        let p: OnePasswordProvider = serde_json::from_value(serde_json::json!({
            "auth": {"secretRef": {"connectTokenSecretRef": {"name": "t", "key": "token"}}},
            "connectHost": "http://connect:8080",
            "vaults": {"staging": 2, "prod": 1, "shared": 10},
        }))
        .unwrap();
        assert_eq!(p.ordered_vaults(), ["prod", "staging", "shared"]);
        let mut errs = Errors::default();
        p.validate_into("spec.provider.onepassword", &mut errs);
        assert!(errs.0.is_empty(), "{:?}", errs.0);
    }

    #[test]
    fn validation_names_the_field() {
        let p: OnePasswordProvider = serde_json::from_value(serde_json::json!({
            "auth": {"secretRef": {"connectTokenSecretRef": {"name": "t"}}},
            "connectHost": "::not a url",
            "vaults": {"a": 1, "b": 1},
        }))
        .unwrap();
        let mut errs = Errors::default();
        p.validate_into("spec.provider.onepassword", &mut errs);
        let text: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.provider.onepassword.auth.secretRef.connectTokenSecretRef.key: must not be empty",
                "spec.provider.onepassword.connectHost: must be an http:// or https:// URL",
                "spec.provider.onepassword.vaults: vault order numbers must be unique: \"a\" and \"b\" are both 1",
            ]
        );
    }
}
