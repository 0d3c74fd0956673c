//! Everything the controllers share, passed in (no globals): the client, settings, metrics, events, the store
//! views, the provider client cache and read coalescer, the Secret index and the work queues.
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::Store;

use crate::events::Events;
use crate::metrics::Metrics;
use crate::reads::Reads;
use crate::schedule::{RateLimiter, Scheduler};
use crate::secrets::SecretIndex;
use crate::stores::Stores;
use syncret_template::Delims;

/// Settings of a running operator (from the command line).
#[derive(Clone, Debug)]
pub struct Settings {
    pub controller_class: String,
    /// Watch only this namespace (empty: all).
    pub namespace: Option<String>,
    pub concurrent: usize,
    pub store_requeue_interval: Duration,
    pub enable_flood_gate: bool,
    pub enable_cluster_stores: bool,
    /// `--enable-secret-store-reconciler`: validate SecretStores and write their status.
    pub enable_secret_stores: bool,
    /// Run the ClusterExternalSecret controller (only when watching all namespaces).
    pub enable_cluster_external_secrets: bool,
    /// Run the PushSecret controller.
    pub enable_push_secrets: bool,
    /// Run the ClusterPushSecret controller (only when watching all namespaces).
    pub enable_cluster_push_secrets: bool,
    /// Share of the refresh interval refreshes are spread over (0.0–1.0).
    pub refresh_jitter: f64,
    /// Error backoff: first retry and cap.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub delims: Delims,
    /// Bytes the templates of one ExternalSecret (or PushSecret) render may allocate together
    /// (`syncret_template::DEFAULT_BUDGET`, 40 MiB, by default).
    pub template_budget: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            controller_class: "default".into(),
            namespace: None,
            concurrent: 4,
            store_requeue_interval: Duration::from_secs(300),
            enable_flood_gate: true,
            enable_cluster_stores: true,
            enable_secret_stores: true,
            enable_cluster_external_secrets: true,
            enable_push_secrets: true,
            enable_cluster_push_secrets: true,
            refresh_jitter: 0.1,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            delims: Delims::default(),
            template_budget: syncret_template::DEFAULT_BUDGET,
        }
    }
}

impl Settings {
    /// The delimiters and memory budget templates render with.
    pub fn template_options(&self) -> crate::sync::desired::TemplateOptions<'_> {
        crate::sync::desired::TemplateOptions {
            delims: &self.delims,
            budget: self.template_budget,
        }
    }

    /// Whether the store reconciler of `kind` runs (`--enable-{secret-store,cluster-store}-reconciler`).
    pub fn reconciles(&self, kind: syncret_crds::secretstore::StoreKind) -> bool {
        match kind {
            syncret_crds::secretstore::StoreKind::SecretStore => self.enable_secret_stores,
            syncret_crds::secretstore::StoreKind::ClusterSecretStore => self.enable_cluster_stores,
        }
    }
}

/// Object key `namespace/name` (namespace empty for cluster-scoped objects). Shared strings: the queues, the
/// Secret index and the per-object maps each hold a copy per ExternalSecret, and a clone costs no allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl Key {
    pub fn new(namespace: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        Self {
            namespace: Arc::from(namespace.as_ref()),
            name: Arc::from(name.as_ref()),
        }
    }

    /// Another object in the same namespace (shares the namespace string).
    pub fn sibling(&self, name: impl AsRef<str>) -> Self {
        Self {
            namespace: self.namespace.clone(),
            name: Arc::from(name.as_ref()),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// See the module docs.
pub struct Context {
    pub client: kube::Client,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub events: Events,
    /// Client-side limit on requests to the apiserver (`--client-qps`, `--client-burst`) for every kind but
    /// Secrets and Events.
    pub api_limiter: Arc<RateLimiter>,
    /// The same limit, a bucket of its own, for requests on Secrets. ESO's `--client-qps` means this: controller-
    /// runtime builds one REST client per kind and client-go gives each its own token bucket, so a Secret write
    /// never waits for a status write's token.
    pub secret_limiter: Arc<RateLimiter>,
    pub stores: Stores,
    /// The watched ExternalSecrets, compact (see [`crate::escache`]).
    pub external_secrets: crate::escache::EsCache,
    pub cluster_external_secrets: Store<syncret_crds::ClusterExternalSecret>,
    pub reads: Reads,
    pub secrets: SecretIndex,
    pub es_queue: Scheduler<Key>,
    pub store_queue: Scheduler<(syncret_crds::secretstore::StoreKind, Key)>,
    pub ces_queue: Scheduler<Key>,
    /// ExternalSecret statuses this operator wrote and the reflector has not shown yet: a reconcile right after a
    /// sync (e.g. woken by our own Secret write) sees them, so it does not sync again.
    pub written_status: std::sync::Mutex<std::collections::HashMap<Key, syncret_crds::ExternalSecretStatus>>,
    /// When a leased value read for an ExternalSecret must be re-fetched (two thirds into its lease).
    pub lease_due: std::sync::Mutex<std::collections::HashMap<Key, std::time::Instant>>,
    /// The stores (uid, generation) each ExternalSecret last read from, keyed by a hash of its key: when a store's
    /// spec changes, the ExternalSecrets using it read again at once (ESO waits for their next refresh).
    pub store_seen: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
    /// PushSecrets and ClusterPushSecrets: reflectors, queues, the source index.
    pub push: crate::controller::pushsecret::PushState,
}
