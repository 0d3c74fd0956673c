//! Why an ExternalSecret sync failed. One variant per cause; the variant decides the metric label
//! (`syncret_sync_errors_total{reason}`), whether and how the sync is retried, and the `Ready` condition and event
//! reasons (ESO's `SecretSyncedError` / `UpdateFailed` for every sync failure, so ESO dashboards and alerts keep
//! working). Messages name fields, keys, stores and Secrets, never values, and keep ESO's wording where ESO has one.
use std::time::Duration;

use syncret_crds::condition::es_reason;
use syncret_crds::externalsecret::ExternalSecretCreationPolicy;

use super::fetch::{AssembleError, PlanError};
use super::manifest::{OwnershipError, TargetError};
use super::secret::WriteError;
use crate::stores::StoreProblem;

/// See the module docs.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// `validate()` found problems the schema cannot express.
    #[error("invalid ExternalSecret: {0}")]
    InvalidSpec(String),
    /// The reads cannot be planned (bad regex, property path, …).
    #[error("invalid ExternalSecret: {0}")]
    InvalidPlan(#[source] PlanError),
    /// A generic target (`spec.target.manifest`) this operator does not write (the message names the field).
    #[error("{0}")]
    Target(#[source] TargetError),
    /// A generic target exists and belongs to someone else.
    #[error("{0}")]
    TargetOwnership(#[source] OwnershipError),
    #[error("could not get target resource {name:?}: {source}")]
    ReadTarget {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("could not update resource: {0}")]
    WriteTarget(String),
    #[error("could not delete resource: {0}")]
    DeleteTarget(String),
    /// A store cannot be used (missing, not ready, not allowed from this namespace).
    #[error("{0}")]
    Store(#[source] StoreProblem),
    #[error("could not add finalizer: {0}")]
    Finalizer(#[source] kube::Error),
    /// The provider client could not be built or a store-level call failed.
    #[error("could not get secret data from provider: {store}: {source}")]
    Provider {
        store: String,
        #[source]
        source: syncret_providers::ProviderError,
    },
    /// A read failed, or its answer could not be decoded into data.
    #[error("could not get secret data from provider: {0}")]
    Fetch(#[source] AssembleError),
    #[error("error fetching templateFrom data: {0}")]
    TemplateSource(#[source] kube::Error),
    #[error("could not apply template: {0}")]
    Template(String),
    #[error("unable to get Secret {name:?}: {source}")]
    ReadSecret {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("target is owned by another ExternalSecret: {0}")]
    OwnedByOther(#[source] WriteError),
    #[error("failed to take ownership of target secret: {0}")]
    NotOurs(#[source] WriteError),
    #[error("{0}")]
    Immutable(#[source] WriteError),
    #[error("could not update secret: {0}")]
    WriteSecret(String),
    #[error("could not delete secret: unable to delete secret {target}: creationPolicy={policy:?} is not Owner")]
    DeleteNotOwner {
        target: String,
        policy: ExternalSecretCreationPolicy,
    },
    #[error("could not delete secret: {0}")]
    DeleteSecret(String),
    #[error("could not delete orphaned secrets: {0}")]
    DeleteOrphans(String),
}

/// Whether a failed sync is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Not until the ExternalSecret (or what it reads) changes: the spec is wrong.
    Never,
    /// With backoff, at least this long (a provider's `Retry-After`).
    Backoff(Option<Duration>),
}

/// The label of `syncret_sync_errors_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    InvalidSpec,
    StoreNotFound,
    StoreNotReady,
    StoreNotAllowed,
    ProviderError,
    TemplateError,
    OwnershipConflict,
    SecretWriteError,
    KubernetesError,
    /// The reconcile panicked (caught by the controller kit).
    InternalError,
    /// The reconcile passed `--reconcile-timeout`.
    DeadlineExceeded,
}

impl FailureReason {
    pub const ALL: [FailureReason; 11] = [
        Self::InvalidSpec,
        Self::StoreNotFound,
        Self::StoreNotReady,
        Self::StoreNotAllowed,
        Self::ProviderError,
        Self::TemplateError,
        Self::OwnershipConflict,
        Self::SecretWriteError,
        Self::KubernetesError,
        Self::InternalError,
        Self::DeadlineExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSpec => "InvalidSpec",
            Self::StoreNotFound => "StoreNotFound",
            Self::StoreNotReady => "StoreNotReady",
            Self::StoreNotAllowed => "StoreNotAllowed",
            Self::ProviderError => "ProviderError",
            Self::TemplateError => "TemplateError",
            Self::OwnershipConflict => "OwnershipConflict",
            Self::SecretWriteError => "SecretWriteError",
            Self::KubernetesError => "KubernetesError",
            Self::InternalError => "InternalError",
            Self::DeadlineExceeded => "DeadlineExceeded",
        }
    }
}

impl SyncError {
    /// The metric label.
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::InvalidSpec(_) | Self::InvalidPlan(_) | Self::Target(_) | Self::DeleteNotOwner { .. } => {
                FailureReason::InvalidSpec
            }
            Self::Store(p) => match p {
                StoreProblem::NotFound { .. } => FailureReason::StoreNotFound,
                StoreProblem::NotReady { .. } | StoreProblem::NotValidated { .. } => FailureReason::StoreNotReady,
                StoreProblem::NotAllowed { .. }
                | StoreProblem::ClusterStoresDisabled
                | StoreProblem::OtherClass { .. } => FailureReason::StoreNotAllowed,
            },
            Self::Provider { .. } | Self::Fetch(_) => FailureReason::ProviderError,
            Self::TemplateSource(_) | Self::Template(_) => FailureReason::TemplateError,
            Self::OwnedByOther(_) | Self::NotOurs(_) | Self::TargetOwnership(_) => FailureReason::OwnershipConflict,
            Self::Immutable(_)
            | Self::WriteSecret(_)
            | Self::DeleteSecret(_)
            | Self::DeleteOrphans(_)
            | Self::WriteTarget(_)
            | Self::DeleteTarget(_) => FailureReason::SecretWriteError,
            Self::Finalizer(_) | Self::ReadSecret { .. } | Self::ReadTarget { .. } => FailureReason::KubernetesError,
        }
    }

    /// Whether and when to try again.
    pub fn retry(&self) -> Retry {
        match self {
            // A kind not (yet) known to the apiserver may come with its CRD.
            Self::Target(TargetError::UnknownKind { .. }) => Retry::Backoff(None),
            Self::InvalidSpec(_)
            | Self::InvalidPlan(_)
            | Self::Target(_)
            | Self::TargetOwnership(_)
            | Self::Template(_)
            | Self::OwnedByOther(_)
            | Self::NotOurs(_)
            | Self::Immutable(_)
            | Self::DeleteNotOwner { .. } => Retry::Never,
            Self::Provider { source, .. } => Retry::Backoff(source.retry_after()),
            Self::Fetch(e) => Retry::Backoff(e.provider.as_ref().and_then(|p| p.retry_after)),
            Self::Store(_)
            | Self::Finalizer(_)
            | Self::TemplateSource(_)
            | Self::ReadSecret { .. }
            | Self::ReadTarget { .. }
            | Self::WriteTarget(_)
            | Self::DeleteTarget(_)
            | Self::WriteSecret(_)
            | Self::DeleteSecret(_)
            | Self::DeleteOrphans(_) => Retry::Backoff(None),
        }
    }

    /// The `Ready` condition's reason (ESO's): `SecretSyncedError`, or for an ExternalSecret with a generic
    /// target (`generic`) `ResourceSyncedError`, except when the target itself is refused (ESO's
    /// `validateGenericTarget` reports that as `SecretSyncedError`).
    pub fn condition_reason(&self, generic: bool) -> &'static str {
        match self {
            Self::Target(e) if !matches!(e, TargetError::UnknownKind { .. }) => es_reason::SECRET_SYNCED_ERROR,
            _ if generic => es_reason::RESOURCE_SYNCED_ERROR,
            _ => es_reason::SECRET_SYNCED_ERROR,
        }
    }

    /// The Warning event's reason (ESO's).
    pub fn event_reason(&self) -> &'static str {
        es_reason::UPDATE_FAILED
    }
}

impl From<WriteError> for SyncError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::OwnedByOther { .. } => Self::OwnedByOther(e),
            WriteError::NotOurs { .. } => Self::NotOurs(e),
            WriteError::Immutable { .. } => Self::Immutable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_reason_and_retry_and_keeps_esos_words() {
        let store = |p| SyncError::Store(p);
        let cases: Vec<(SyncError, FailureReason, Retry, &str)> = vec![
            (
                SyncError::InvalidSpec("spec.refreshInterval: bad".into()),
                FailureReason::InvalidSpec,
                Retry::Never,
                "invalid ExternalSecret: spec.refreshInterval: bad",
            ),
            (
                SyncError::Target(TargetError::Disabled),
                FailureReason::InvalidSpec,
                Retry::Never,
                "spec.target.manifest: generic targets are disabled. Enable with --unsafe-allow-generic-targets flag",
            ),
            (
                SyncError::Target(TargetError::UnknownKind {
                    api_version: "example.com/v1".into(),
                    kind: "Thing".into(),
                    reason: "404".into(),
                }),
                FailureReason::InvalidSpec,
                Retry::Backoff(None),
                "spec.target.manifest: no kind \"Thing\" in apiVersion \"example.com/v1\"",
            ),
            (
                SyncError::TargetOwnership(OwnershipError::NotOurs {
                    kind: "ConfigMap".into(),
                    name: "cfg".into(),
                }),
                FailureReason::OwnershipConflict,
                Retry::Never,
                "ConfigMap \"cfg\" already exists and is not managed by this ExternalSecret",
            ),
            (
                store(StoreProblem::NotFound {
                    kind: "SecretStore",
                    name: "vault".into(),
                }),
                FailureReason::StoreNotFound,
                Retry::Backoff(None),
                "SecretStore \"vault\" not found",
            ),
            (
                store(StoreProblem::NotReady {
                    kind: "ClusterSecretStore",
                    name: "aws".into(),
                }),
                FailureReason::StoreNotReady,
                Retry::Backoff(None),
                "ClusterSecretStore \"aws\" is not ready",
            ),
            (
                store(StoreProblem::NotAllowed {
                    name: "aws".into(),
                    namespace: "team-a".into(),
                }),
                FailureReason::StoreNotAllowed,
                Retry::Backoff(None),
                "using cluster store \"aws\" is not allowed from namespace \"team-a\": denied by spec.condition",
            ),
            (
                SyncError::Provider {
                    store: "SecretStore/vault".into(),
                    source: syncret_providers::ProviderError::Throttled {
                        retry_after: Some(Duration::from_secs(30)),
                    },
                },
                FailureReason::ProviderError,
                Retry::Backoff(Some(Duration::from_secs(30))),
                "could not get secret data from provider: SecretStore/vault: ",
            ),
            (
                SyncError::Template("template: a:1: bad".into()),
                FailureReason::TemplateError,
                Retry::Never,
                "could not apply template: template: a:1: bad",
            ),
            (
                SyncError::from(WriteError::NotOurs { secret: "app".into() }),
                FailureReason::OwnershipConflict,
                Retry::Never,
                "failed to take ownership of target secret: secret \"app\" already exists",
            ),
            (
                SyncError::from(WriteError::Immutable { secret: "app".into() }),
                FailureReason::SecretWriteError,
                Retry::Never,
                "could not update secret \"app\", target is immutable",
            ),
            (
                SyncError::DeleteNotOwner {
                    target: "app".into(),
                    policy: ExternalSecretCreationPolicy::Merge,
                },
                FailureReason::InvalidSpec,
                Retry::Never,
                "could not delete secret: unable to delete secret app: creationPolicy=Merge is not Owner",
            ),
            (
                SyncError::WriteSecret("unable to update secret app: 500".into()),
                FailureReason::SecretWriteError,
                Retry::Backoff(None),
                "could not update secret: unable to update secret app: 500",
            ),
        ];
        for (e, reason, retry, message) in cases {
            assert_eq!(e.reason(), reason, "{e}");
            assert_eq!(e.retry(), retry, "{e}");
            assert!(e.to_string().starts_with(message), "{e} / {message}");
            assert_eq!(e.condition_reason(false), "SecretSyncedError");
            assert_eq!(e.event_reason(), "UpdateFailed");
        }
        assert_eq!(FailureReason::ALL.len(), 11);
    }

    #[test]
    fn generic_targets_fail_with_esos_resource_reason_except_when_refused() {
        let provider = SyncError::WriteTarget("boom".into());
        assert_eq!(provider.condition_reason(true), "ResourceSyncedError");
        assert_eq!(provider.condition_reason(false), "SecretSyncedError");
        assert_eq!(
            SyncError::Target(TargetError::Disabled).condition_reason(true),
            "SecretSyncedError"
        );
        let unknown = SyncError::Target(TargetError::UnknownKind {
            api_version: "v1".into(),
            kind: "X".into(),
            reason: String::new(),
        });
        assert_eq!(unknown.condition_reason(true), "ResourceSyncedError");
    }
}
