//! Why a PushSecret reconcile failed. The variant decides the retry; the `Ready` condition and event carry ESO's
//! `Errored` reason with the message, which names stores, remote keys and Secret keys, never values.
use syncret_providers::ProviderError;

use crate::stores::StoreProblem;

/// See the module docs.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid PushSecret: {0}")]
    InvalidSpec(String),
    /// `spec.selector.generatorRef` could not make values.
    #[error("could not resolve secret from generator ref spec.selector.generatorRef: {0}")]
    Generator(#[source] ProviderError),
    /// `secretStoreRefs`, `data[].to` or an entry cannot work as written.
    #[error("{0}")]
    Spec(String),
    #[error("could not convert labels: {0}")]
    Labels(String),
    #[error("could not update finalizers: {0}")]
    Finalizer(#[source] kube::Error),
    #[error("could not get source secret: {0}")]
    Source(String),
    #[error("{0}")]
    Store(#[source] StoreProblem),
    #[error("error fetching templateFrom data: {0}")]
    TemplateSource(#[source] kube::Error),
    #[error("could not execute template: {0}")]
    Template(String),
    #[error("store {kind} {name:?}: {message}")]
    Entries {
        kind: &'static str,
        name: String,
        message: String,
    },
    #[error("could not get secrets client for store {store}: {source}")]
    Client {
        store: String,
        #[source]
        source: ProviderError,
    },
    #[error("could not verify if secret exists in store {store}: {source}")]
    Exists {
        store: String,
        #[source]
        source: ProviderError,
    },
    #[error(
        "set secret failed: could not write remote ref {remote_ref} ({what}) to target secretstore {store}: {source}"
    )]
    Push {
        remote_ref: String,
        what: String,
        store: String,
        #[source]
        source: ProviderError,
    },
    #[error("could not delete remote secret {remote_ref} from {store}: {source}")]
    Delete {
        remote_ref: String,
        store: String,
        #[source]
        source: ProviderError,
    },
    /// Deleting what is no longer pushed failed (after a change of the spec, or on deletion).
    #[error("Failed to Delete Secrets from Provider: {0}")]
    DeleteStale(Box<PushError>),
    /// The source Secret is gone and cleaning up what it pushed failed.
    #[error("failed to cleanup provider secrets: {0}")]
    Cleanup(Box<PushError>),
}

impl PushError {
    /// Whether the push is retried with backoff (else not until something changes).
    pub fn retry(&self) -> bool {
        !matches!(
            self,
            Self::InvalidSpec(_)
                | Self::Generator(ProviderError::InvalidConfig { .. })
                | Self::Spec(_)
                | Self::Labels(_)
                | Self::Template(_)
                | Self::Entries { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_errors_are_final_and_the_rest_retried() {
        assert!(!PushError::Generator(ProviderError::invalid_config("spec.length", "must be greater than 0")).retry());
        assert!(PushError::Generator(ProviderError::Transport("down".into())).retry());
        assert!(!PushError::Template("x".into()).retry());
        assert!(PushError::Source("Secret \"s\" not found".into()).retry());
        let push = PushError::Push {
            remote_ref: "db/password".into(),
            what: "key \"password\"".into(),
            store: "vault".into(),
            source: ProviderError::Throttled { retry_after: None },
        };
        assert!(push.retry());
        let nested = PushError::DeleteStale(Box::new(push));
        assert!(nested.retry());
        assert!(
            nested
                .to_string()
                .starts_with("Failed to Delete Secrets from Provider: set secret failed: could not write remote ref db/password (key \"password\") to target secretstore vault: ")
        );
    }
}
