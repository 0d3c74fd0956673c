//! The providers crate's error type. Messages name stores, keys and fields, never secret values.
use std::time::Duration;

/// An error from a provider, a credential lookup or a store spec.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The remote secret does not exist (ESO's `NoSecretErr`).
    #[error("secret {key:?} does not exist")]
    NotFound { key: String },

    /// `remoteRef.property` names nothing inside the remote value.
    #[error("property {property:?} not found in secret {key:?}")]
    PropertyNotFound { key: String, property: String },

    /// The provider refused the call for lack of permission.
    #[error("access denied: {0}")]
    AccessDenied(String),

    /// Logging in or exchanging a token failed.
    #[error("authentication failed: {0}")]
    Auth(String),

    /// The provider asked us to slow down.
    #[error("throttled by the provider{}", .retry_after.map(|d| format!(", retry after {}s", d.min(MAX_RETRY_AFTER).as_secs())).unwrap_or_default())]
    Throttled { retry_after: Option<Duration> },

    /// The store spec cannot work: the field path names what is wrong.
    #[error("{field}: {message}")]
    InvalidConfig { field: String, message: String },

    /// A referenced Secret, key, ServiceAccount or ConfigMap could not be read.
    #[error("{0}")]
    Credentials(String),

    /// The call is not offered by this provider (e.g. push to a read-only store).
    #[error("{0}")]
    Unsupported(String),

    /// The remote value is not of the shape the request needs (e.g. extract of a non-JSON value).
    #[error("secret {key:?}: {message}")]
    InvalidValue { key: String, message: String },

    /// A network or server error that is worth retrying.
    #[error("{0}")]
    Transport(String),

    /// A Kubernetes API call made on the provider's behalf failed.
    #[error("kubernetes API: {0}")]
    Kube(#[source] kube::Error),

    /// The tenant boundary refuses what the store asks for (the operator's own identity, a file, an endpoint the
    /// egress policy denies, a kubeconfig field that would run a command or read a file). The field path names it.
    #[error("{field}: {message}")]
    Policy { field: String, message: String },
}

/// The longest wait a provider may ask for (`Retry-After`, a throttling hint): longer ones are cut to this, so a
/// server's number can never overflow a deadline computed from it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

impl ProviderError {
    /// A stable, CamelCase reason for conditions, events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::NotFound { .. } => "SecretNotFound",
            ProviderError::PropertyNotFound { .. } => "PropertyNotFound",
            ProviderError::AccessDenied(_) => "AccessDenied",
            ProviderError::Auth(_) => "AuthenticationFailed",
            ProviderError::Throttled { .. } => "Throttled",
            ProviderError::InvalidConfig { .. } => "InvalidProviderConfig",
            ProviderError::Credentials(_) => "CredentialsUnavailable",
            ProviderError::Unsupported(_) => "Unsupported",
            ProviderError::InvalidValue { .. } => "InvalidRemoteValue",
            ProviderError::Transport(_) => "ProviderUnavailable",
            ProviderError::Kube(_) => "KubernetesAPIError",
            ProviderError::Policy { .. } => "RefusedByPolicy",
        }
    }

    /// The remote secret is missing (drives `deletionPolicy`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProviderError::NotFound { .. })
    }

    /// Errors that mean the cached client should be rebuilt (credentials may have rotated).
    pub fn invalidates_client(&self) -> bool {
        matches!(self, ProviderError::Auth(_) | ProviderError::AccessDenied(_))
    }

    /// How long the provider asked us to wait, if it said, at most [`MAX_RETRY_AFTER`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Throttled { retry_after } => retry_after.map(|d| d.min(MAX_RETRY_AFTER)),
            _ => None,
        }
    }

    pub fn invalid_config(field: impl Into<String>, message: impl Into<String>) -> Self {
        ProviderError::InvalidConfig {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

/// An error's message followed by its sources, joined with ": " and without repeats: HTTP and SDK clients keep the
/// useful part (a TLS failure, a refused connection) in the sources, and often repeat a source's text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_providers_retry_after_is_capped() {
        let huge = ProviderError::Throttled {
            retry_after: Some(Duration::from_secs(u64::MAX)),
        };
        assert_eq!(huge.retry_after(), Some(MAX_RETRY_AFTER));
        assert_eq!(huge.to_string(), "throttled by the provider, retry after 600s");
        let small = ProviderError::Throttled {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(small.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(ProviderError::Transport("x".into()).retry_after(), None);
    }
}
