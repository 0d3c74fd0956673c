//! Status conditions as ESO writes them: `{type, status, reason, message, lastTransitionTime}`, plus the
//! condition types and reasons ESO uses (they show up in `kubectl get` columns and in users' alerts).
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `status` value of a condition that holds.
pub const STATUS_TRUE: &str = "True";
/// `status` value of a condition that does not hold.
pub const STATUS_FALSE: &str = "False";
/// `status` value of a condition whose state is not known.
pub const STATUS_UNKNOWN: &str = "Unknown";

/// A status condition. `T` is the type of the `type` field: ExternalSecret restricts it to an enum, the other
/// kinds use a free string (ESO puts no enum on them).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition<T = String> {
    #[serde(rename = "type")]
    pub type_: T,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

impl<T> Condition<T> {
    /// A condition with the given type, status (`true` → `"True"`), reason and message, stamped with `now`.
    pub fn new(type_: T, status: bool, reason: impl Into<String>, message: impl Into<String>, now: Time) -> Self {
        Self {
            type_,
            status: if status { STATUS_TRUE } else { STATUS_FALSE }.to_owned(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(now),
        }
    }

    /// Whether `status` is `"True"`.
    pub fn is_true(&self) -> bool {
        self.status == STATUS_TRUE
    }
}

/// Condition types of an ExternalSecret.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalSecretConditionType {
    Ready,
    Deleted,
}

/// A condition of an ExternalSecret (`type` is `Ready` or `Deleted`).
pub type ExternalSecretStatusCondition = Condition<ExternalSecretConditionType>;
/// A condition of a SecretStore or ClusterSecretStore (ESO only writes `Ready`).
pub type SecretStoreStatusCondition = Condition<String>;
/// A condition of a PushSecret or ClusterPushSecret (ESO only writes `Ready`).
pub type PushSecretStatusCondition = Condition<String>;

/// A condition of a ClusterExternalSecret: ESO keeps only `{type, status, message}` here.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatusCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The `Ready` condition type used by every kind.
pub const CONDITION_READY: &str = "Ready";

/// Reasons of ExternalSecret conditions and events.
pub mod es_reason {
    pub const SECRET_SYNCED: &str = "SecretSynced";
    pub const SECRET_SYNCED_ERROR: &str = "SecretSyncedError";
    pub const SECRET_DELETED: &str = "SecretDeleted";
    pub const SECRET_MISSING: &str = "SecretMissing";
    /// Generic (`target.manifest`) counterparts of the four reasons above.
    pub const RESOURCE_SYNCED: &str = "ResourceSynced";
    pub const RESOURCE_SYNCED_ERROR: &str = "ResourceSyncedError";
    pub const RESOURCE_DELETED: &str = "ResourceDeleted";
    pub const RESOURCE_MISSING: &str = "ResourceMissing";
    /// Event reasons.
    pub const CREATED: &str = "Created";
    pub const UPDATED: &str = "Updated";
    pub const DELETED: &str = "Deleted";
    pub const UPDATE_FAILED: &str = "UpdateFailed";
    pub const MISSING_PROVIDER_SECRET: &str = "MissingProviderSecret";
    pub const PARAMETER_DEPRECATED: &str = "ParameterDeprecated";
}

/// Reasons of SecretStore / ClusterSecretStore conditions and events.
pub mod store_reason {
    pub const VALID: &str = "Valid";
    pub const INVALID_STORE_CONFIGURATION: &str = "InvalidStoreConfiguration";
    pub const INVALID_PROVIDER_CONFIG: &str = "InvalidProviderConfig";
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    pub const VALIDATION_UNKNOWN: &str = "ValidationUnknown";
    /// Warning events.
    pub const STORE_UNMAINTAINED: &str = "StoreUnmaintained";
    pub const STORE_DEPRECATED: &str = "StoreDeprecated";
}

/// Reasons of PushSecret conditions.
pub mod push_reason {
    pub const SYNCED: &str = "Synced";
    pub const ERRORED: &str = "Errored";
    pub const SOURCE_DELETED: &str = "SourceDeleted";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es_condition_wire_format() {
        let c: ExternalSecretStatusCondition = serde_json::from_str(
            r#"{"type":"Ready","status":"True","reason":"SecretSynced","message":"ok","lastTransitionTime":"2024-01-02T03:04:05Z"}"#,
        )
        .unwrap();
        assert!(c.is_true());
        assert_eq!(c.type_, ExternalSecretConditionType::Ready);
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["lastTransitionTime"], "2024-01-02T03:04:05Z");
        let store: SecretStoreStatusCondition = serde_json::from_str(r#"{"type":"Ready","status":"False"}"#).unwrap();
        assert!(!store.is_true());
        assert_eq!(
            serde_json::to_string(&store).unwrap(),
            r#"{"type":"Ready","status":"False"}"#
        );
    }
}
