//! The one trait every backend implements, and the request types it takes.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use regex::Regex;

use crate::error::{ProviderError, Result};
use crate::value::{RemoteValue, SecretValue};

/// What to read: one remote secret at one version. Equal keys are read once (de-duplication and batching
/// key on this type); `property` is applied afterwards by the caller with [`property::select`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteKey {
    pub key: String,
    pub version: Option<String>,
    /// `metadataPolicy: Fetch`: return the secret's metadata (tags/labels) as a JSON object instead of its value.
    pub fetch_metadata: bool,
    /// `remoteRef.property`, only for providers whose request depends on it ([`crate::Provider::takes_property`]:
    /// the webhook renders it into its URL, headers, body or `jsonPath`). Otherwise `None`: the caller applies the
    /// property to the returned value, so reads of one secret for several properties are one read.
    pub property: Option<String>,
}

impl RemoteKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            version: None,
            fetch_metadata: false,
            property: None,
        }
    }

    pub fn with_version(mut self, version: Option<String>) -> Self {
        self.version = version.filter(|v| !v.is_empty());
        self
    }
}

/// `dataFrom.find`: which remote secrets to return.
#[derive(Clone, Debug, Default)]
pub struct FindQuery {
    pub path: Option<String>,
    pub name: Option<Regex>,
    pub tags: BTreeMap<String, String>,
}

impl FindQuery {
    /// Whether a secret name passes the `name.regexp` filter.
    pub fn matches_name(&self, name: &str) -> bool {
        self.name.as_ref().is_none_or(|re| re.is_match(name))
    }

    /// Whether a secret's tags contain every requested tag.
    pub fn matches_tags(&self, tags: &BTreeMap<String, String>) -> bool {
        self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

/// Where a PushSecret writes one value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PushRef {
    pub remote_key: String,
    /// Write the value as this property of a JSON object at `remote_key` (other properties are kept).
    pub property: Option<String>,
    /// Provider-specific metadata (`data[].metadata` of the PushSecret), as JSON.
    pub metadata: Option<String>,
    /// `match.secretKey` of the PushSecret entry, when set (the webhook offers it as `.remoteRef.secretKey`).
    pub secret_key: Option<String>,
}

/// What a store can do (`status.capabilities`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capabilities {
    ReadOnly,
    WriteOnly,
    ReadWrite,
}

impl Capabilities {
    pub fn as_str(self) -> &'static str {
        match self {
            Capabilities::ReadOnly => "ReadOnly",
            Capabilities::WriteOnly => "WriteOnly",
            Capabilities::ReadWrite => "ReadWrite",
        }
    }
}

/// Result of validating a store against its provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// The provider answered and the credentials work.
    Ready,
    /// Cannot be checked now (e.g. a referent ClusterSecretStore whose credentials resolve per namespace).
    Unknown,
}

/// An authenticated client for one store. Built once per store generation by a [`crate::Provider`] and shared
/// across reconciles and ExternalSecrets through [`crate::ClientCache`].
#[async_trait]
pub trait SecretsClient: Send + Sync {
    /// ESO's provider label for `externalsecret_provider_api_calls_count` (`AWS/SecretsManager`, `Kubernetes`, …).
    fn provider_label(&self) -> &'static str;

    /// Reads one remote secret.
    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue>;

    /// Reads many remote secrets. The default reads them one by one with bounded concurrency; backends with a
    /// batch API (AWS `BatchGetSecretValue`) override it.
    async fn get_secrets(&self, keys: &[RemoteKey]) -> Vec<Result<RemoteValue>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(8) {
            let mut reads = Vec::with_capacity(chunk.len());
            for key in chunk {
                reads.push(self.get_secret(key));
            }
            out.extend(futures::future::join_all(reads).await);
        }
        out
    }

    /// `dataFrom.find`: every remote secret matching the query, by name.
    async fn get_all_secrets(&self, _find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        Err(ProviderError::Unsupported(format!(
            "{} does not support dataFrom.find",
            self.provider_label()
        )))
    }

    /// PushSecret: writes a value.
    async fn push_secret(&self, _to: &PushRef, _value: &SecretValue) -> Result<()> {
        Err(ProviderError::Unsupported(format!(
            "{} is read-only: PushSecret is not supported",
            self.provider_label()
        )))
    }

    /// PushSecret `deletionPolicy: Delete`: removes a pushed value.
    async fn delete_secret(&self, _at: &PushRef) -> Result<()> {
        Err(ProviderError::Unsupported(format!(
            "{} is read-only: PushSecret is not supported",
            self.provider_label()
        )))
    }

    /// PushSecret `updatePolicy: IfNotExists`.
    async fn secret_exists(&self, _at: &PushRef) -> Result<bool> {
        Err(ProviderError::Unsupported(format!(
            "{} is read-only: PushSecret is not supported",
            self.provider_label()
        )))
    }

    /// Checks that the provider answers with these credentials.
    async fn validate(&self) -> Result<Validation>;

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }

    /// How long the value last returned by [`SecretsClient::get_secret`] for `key` stays valid, when the provider
    /// said so (a Vault lease: a KV v1 secret with `ttl`, dynamic database credentials). The operator may refresh
    /// the ExternalSecret before then. Default: unknown.
    fn expires_in(&self, _key: &RemoteKey) -> Option<Duration> {
        None
    }

    /// Releases what the client holds remotely (e.g. revokes a Vault token it logged in for). Called when the
    /// cache drops the client.
    async fn close(&self) {}
}

/// Receives one record per remote call, for metrics (`externalsecret_provider_api_calls_count` and the
/// latency histogram). The operator implements it with Prometheus; tests count calls with it.
pub trait CallObserver: Send + Sync {
    fn observe(&self, provider: &'static str, call: &'static str, ok: bool, elapsed: Duration);
}

/// A [`CallObserver`] that drops everything.
pub struct NoopObserver;

impl CallObserver for NoopObserver {
    fn observe(&self, _: &'static str, _: &'static str, _: bool, _: Duration) {}
}

/// Times `fut` and reports it to `observer` as one `provider`/`call`.
pub async fn observed<T>(
    observer: &Arc<dyn CallObserver>,
    provider: &'static str,
    call: &'static str,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let start = Instant::now();
    let res = fut.await;
    observer.observe(provider, call, res.is_ok(), start.elapsed());
    res
}
