//! `spec.provider.gitlab`: GitLab CI/CD variables of a project and its groups.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Base64Data, CAProvider, SecretKeySelector};
use crate::rules::Rule;
use crate::schema::is_default;
use crate::validate::{Errors, check_http_url, field};

/// Configures a store to sync CI/CD variables from a GitLab project and/or groups.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitlabProvider {
    /// The GitLab instance; `https://gitlab.com/` when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The access token.
    pub auth: GitlabAuth,
    /// The project whose variables are read (ID or URL-encoded path).
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "projectID")]
    pub project_id: String,
    /// Use the project's ancestor groups (nearest last) as `groupIDs`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub inherit_from_groups: bool,
    /// Groups whose variables are read: for a single key the last group wins, after the project.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "groupIDs")]
    pub group_ids: Vec<String>,
    /// Environment scope of the variables (`*` or empty: any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub environment: String,
    /// PEM CA bundle (base64) of the GitLab server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<Base64Data>,
    /// Where to read the CA bundle from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CAProvider>,
}

/// The access token reference (ESO spells the key `SecretRef`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GitlabAuth {
    #[serde(rename = "SecretRef")]
    pub secret_ref: GitlabSecretRef,
}

/// Where the access token is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitlabSecretRef {
    /// A personal, project or group access token with `read_api`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub access_token: SecretKeySelector,
}

impl GitlabProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        if self.project_id.trim().is_empty() && self.group_ids.is_empty() {
            errs.push(
                Rule::GitlabProjectOrGroups,
                field(path, "projectID"),
                "projectID and groupIDs must not both be empty",
            );
        }
        if self.inherit_from_groups && !self.group_ids.is_empty() {
            errs.push(
                Rule::GitlabInheritWithGroupIds,
                field(path, "inheritFromGroups"),
                "defining groupIDs and inheritFromGroups = true is not allowed",
            );
        }
        check_http_url(errs, Rule::GitlabUrl, &field(path, "url"), &self.url);
        let token = field(path, "auth.SecretRef.accessToken");
        if self.auth.secret_ref.access_token.name.is_empty() {
            errs.push(Rule::GitlabTokenName, field(&token, "name"), "must not be empty");
        }
        if self.auth.secret_ref.access_token.key.is_empty() {
            errs.push(Rule::GitlabTokenKey, field(&token, "key"), "must not be empty");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_eso() {
        let p: GitlabProvider = serde_json::from_value(serde_json::json!({
            "auth": {"SecretRef": {"accessToken": {"name": "gl"}}},
            "inheritFromGroups": true, "groupIDs": ["7"],
        }))
        .unwrap();
        let mut errs = Errors::default();
        p.validate_into("spec.provider.gitlab", &mut errs);
        assert_eq!(
            errs.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "spec.provider.gitlab.inheritFromGroups: defining groupIDs and inheritFromGroups = true is not allowed",
                "spec.provider.gitlab.auth.SecretRef.accessToken.key: must not be empty",
            ]
        );
    }
}
