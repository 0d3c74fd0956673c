//! `spec.provider.aws`: AWS Secrets Manager, Parameter Store and Certificate Manager.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{SecretKeySelector, ServiceAccountSelector};
use crate::rules::Rule;
use crate::schema::is_default;
use crate::validate::{Errors, field};

/// The AWS service that holds the secrets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum AWSServiceType {
    SecretsManager,
    ParameterStore,
    CertificateManager,
}

/// How STS session tags are added when assuming roles.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum SessionTagsPolicy {
    #[default]
    None,
    Simple,
    Custom,
}

/// Session tags ESO adds itself with `sessionTagsPolicy: Simple|Custom`; `customSessionTags` may not use them.
pub const RESERVED_SESSION_TAGS: [&str; 3] = ["esoNamespace", "esoStoreName", "esoStoreKind"];

/// Configures a store to sync secrets with AWS.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AWSProvider {
    /// Which AWS service the secrets are read from.
    pub service: AWSServiceType,
    /// How to authenticate against AWS; without it the AWS SDK default credential chain is used (IRSA, EKS Pod
    /// Identity, instance profile, environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AWSAuth>,
    /// ARN of a role the provider assumes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// AWS region.
    pub region: String,
    /// Role ARNs assumed in order before `role`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_roles: Vec<String>,
    /// External ID set on assumed roles.
    #[serde(default, rename = "externalID", skip_serializing_if = "String::is_empty")]
    pub external_id: String,
    /// STS session tags for assumed roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_tags: Vec<Tag>,
    /// Settings used when deleting Secrets Manager secrets (PushSecret `deletionPolicy: Delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<SecretsManager>,
    /// Transitive session tag keys (needed when several roles are chained).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// `None` (default): no tags. `Simple`: adds esoNamespace, esoStoreName and esoStoreKind. `Custom`: adds those
    /// and `customSessionTags`. Simple and Custom need `sts:TagSession` on the role.
    #[serde(default)]
    pub session_tags_policy: SessionTagsPolicy,
    /// Extra session tags added with `sessionTagsPolicy: Custom`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_session_tags: BTreeMap<String, String>,
    /// Prefix added to every key read or written.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// How to authenticate with AWS: at most one of `secretRef` or `jwt`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AWSAuth {
    /// Static credentials from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<AWSAuthSecretRef>,
    /// A ServiceAccount token exchanged for credentials (IRSA).
    #[serde(default, rename = "jwt", skip_serializing_if = "Option::is_none")]
    pub jwt_auth: Option<AWSJWTAuth>,
}

/// Static AWS credentials held in Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AWSAuthSecretRef {
    /// The access key ID.
    #[serde(default, rename = "accessKeyIDSecretRef", skip_serializing_if = "is_default")]
    pub access_key_id: SecretKeySelector,
    /// The secret access key.
    #[serde(default, rename = "secretAccessKeySecretRef", skip_serializing_if = "is_default")]
    pub secret_access_key: SecretKeySelector,
    /// The session token, for temporary credentials.
    #[serde(default, rename = "sessionTokenSecretRef", skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretKeySelector>,
}

/// Authenticate with a ServiceAccount token (IRSA).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AWSJWTAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

/// Secrets Manager settings for deleting secrets (PushSecret with `deletionPolicy: Delete`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretsManager {
    /// Delete without a recovery window. Cannot be combined with `recoveryWindowInDays`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub force_delete_without_recovery: bool,
    /// Days (7 to 30) Secrets Manager waits before deleting the secret for good. Cannot be combined with
    /// `forceDeleteWithoutRecovery`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub recovery_window_in_days: i64,
}

/// A key-value tag.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl AWSProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        if self.region.trim().is_empty() {
            errs.push(Rule::AwsRegion, field(path, "region"), "must not be empty");
        }
        if let Some(auth) = &self.auth
            && auth.secret_ref.is_some()
            && auth.jwt_auth.is_some()
        {
            errs.push(
                Rule::AwsAuthExclusive,
                field(path, "auth"),
                "only one of secretRef or jwt may be set",
            );
        }
        if let Some(sm) = &self.secrets_manager {
            let p = field(path, "secretsManager");
            if sm.force_delete_without_recovery && sm.recovery_window_in_days != 0 {
                errs.push(
                    Rule::AwsForceDeleteAndWindow,
                    &p,
                    "forceDeleteWithoutRecovery and recoveryWindowInDays cannot be used together",
                );
            }
            if sm.recovery_window_in_days != 0 && !(7..=30).contains(&sm.recovery_window_in_days) {
                errs.push(
                    Rule::AwsRecoveryWindow,
                    field(&p, "recoveryWindowInDays"),
                    "must be between 7 and 30",
                );
            }
        }
        for reserved in RESERVED_SESSION_TAGS {
            if self.custom_session_tags.contains_key(reserved) {
                errs.push(
                    Rule::AwsReservedSessionTag,
                    field(path, "customSessionTags"),
                    format!("{reserved:?} is added by the controller and cannot be set"),
                );
            }
        }
    }
}
