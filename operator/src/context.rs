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
    /// Every reconcile ends by this deadline (`--reconcile-timeout`); provider timeouts are capped by it.
    pub reconcile_timeout: Duration,
    /// At most this many reconciles of one namespace in flight per controller while others wait
    /// (`--max-concurrent-per-namespace`; 0: [`Settings::namespace_limit`]'s default).
    pub namespace_concurrency: usize,
    /// At most this many reads of one store in flight at once (`--max-concurrent-per-store`; 0: `concurrent`);
    /// one for a store whose calls are slow or that has not answered yet.
    pub store_concurrency: usize,
    /// Generic targets (`spec.target.manifest`): `--unsafe-allow-generic-targets`, `--generic-target-resources`.
    pub generic_targets: crate::sync::manifest::GenericTargets,
    /// How long a superseded GeneratorState waits before its lease is revoked (`--generator-gc-grace-period`).
    pub generator_gc_grace: Duration,
    /// The tenant boundary for providers (`--allow-namespaced-operator-identity`, `--egress-allow`,
    /// `--egress-deny`, `--credential-file-allowlist`; see `docs/security.md`).
    pub tenant: Arc<syncret_providers::TenantPolicy>,
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
            reconcile_timeout: Duration::from_secs(60),
            namespace_concurrency: 0,
            store_concurrency: 0,
            generic_targets: Default::default(),
            generator_gc_grace: Duration::from_secs(120),
            tenant: Arc::new(syncret_providers::TenantPolicy::default()),
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

    /// Workers of the store controller: store validation is rarer than syncs, and one hung validation must not
    /// stop the others.
    pub fn store_workers(&self) -> usize {
        self.concurrent.max(2)
    }

    /// The in-flight limit per namespace: as set, or half of `concurrent` (at least 1).
    pub fn namespace_limit(&self) -> usize {
        match self.namespace_concurrency {
            0 => (self.concurrent / 2).max(1),
            n => n,
        }
    }

    /// The in-flight limit per namespace in the store controller's queue.
    pub fn store_namespace_limit(&self) -> usize {
        self.namespace_limit().min(self.store_workers() / 2).max(1)
    }

    /// Reads of one store in flight at once: as set, or `concurrent`.
    pub fn store_limit(&self) -> usize {
        match self.store_concurrency {
            0 => self.concurrent.max(1),
            n => n,
        }
    }

    /// How long a worker waits for one provider read before leaving it to finish on its own, and how long a
    /// store's call may hold its place before the store counts as slow (one place): 2 s, or half the deadline.
    pub fn slow_call(&self) -> Duration {
        (self.reconcile_timeout / 2).min(Duration::from_secs(2))
    }

    /// Whether the store reconciler of `kind` runs (`--enable-{secret-store,cluster-store}-reconciler`).
    pub fn reconciles(&self, kind: syncret_crds::secretstore::StoreKind) -> bool {
        match kind {
            syncret_crds::secretstore::StoreKind::SecretStore => self.enable_secret_stores,
            syncret_crds::secretstore::StoreKind::ClusterSecretStore => self.enable_cluster_stores,
        }
    }
}

/// Object key `namespace/name` (namespace empty for cluster-scoped objects). One pointer wide: the queues, the
/// Secret index and the per-object maps each hold a copy per ExternalSecret, so the strings sit behind one shared
/// block ([`KeyParts`]); a clone costs no allocation and two clones compare by pointer first.
///
/// Keys are interned: [`Key::new`] hands out the block of a live key with the same namespace and name, so an
/// ExternalSecret's key made by the watch, by a status write and by a worker is one block, and so is the key of
/// its Secret when the names match (`target.name` defaults to the ExternalSecret's), and a namespace's string
/// is one string for all its keys.
#[derive(Clone)]
pub struct Key(Arc<KeyParts>);

/// Every live [`Key`], by namespace and name. An entry whose key was dropped is reused by the next key of that
/// name, and swept when the table has doubled since the last sweep.
#[derive(Default)]
struct Interner {
    namespaces: std::collections::HashMap<Arc<str>, std::collections::HashMap<Arc<str>, std::sync::Weak<KeyParts>>>,
    /// Entries (live or not).
    entries: usize,
    /// Sweep when `entries` reaches this.
    sweep_at: usize,
}

impl Interner {
    fn key(&mut self, namespace: &str, name: &str) -> Key {
        let ns: Arc<str> = match self.namespaces.get_key_value(namespace) {
            Some((ns, _)) => ns.clone(),
            None => Arc::from(namespace),
        };
        let names = self.namespaces.entry(ns.clone()).or_default();
        let name: Arc<str> = match names.get_key_value(name) {
            Some((n, weak)) => {
                if let Some(parts) = weak.upgrade() {
                    return Key(parts);
                }
                n.clone()
            }
            None => {
                self.entries = self.entries.saturating_add(1);
                Arc::from(name)
            }
        };
        let parts = Arc::new(KeyParts {
            namespace: ns,
            name: name.clone(),
        });
        names.insert(name, Arc::downgrade(&parts));
        if self.entries >= self.sweep_at {
            self.sweep();
        }
        Key(parts)
    }

    /// Drops the entries of dropped keys (and the namespaces left empty).
    fn sweep(&mut self) {
        self.namespaces.retain(|_, names| {
            names.retain(|_, weak| weak.strong_count() > 0);
            if names.capacity() > 4 * names.len().max(8) {
                names.shrink_to_fit();
            }
            !names.is_empty()
        });
        self.entries = self.namespaces.values().map(|n| n.len()).sum();
        self.sweep_at = self.entries.saturating_mul(2).max(1024);
    }
}

fn interner() -> std::sync::MutexGuard<'static, Interner> {
    static INTERNER: std::sync::OnceLock<std::sync::Mutex<Interner>> = std::sync::OnceLock::new();
    INTERNER
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// What a [`Key`] names (a key derefs to it: `key.namespace`, `key.name`).
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyParts {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl Key {
    pub fn new(namespace: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        interner().key(namespace.as_ref(), name.as_ref())
    }

    /// Another object in the same namespace.
    pub fn sibling(&self, name: impl AsRef<str>) -> Self {
        Self::new(&*self.namespace, name)
    }
}

impl std::ops::Deref for Key {
    type Target = KeyParts;

    fn deref(&self) -> &KeyParts {
        &self.0
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish()
    }
}

impl crate::schedule::Tenant for Key {
    fn tenant(&self) -> &Arc<str> {
        &self.namespace
    }
}

impl crate::schedule::Tenant for (syncret_crds::secretstore::StoreKind, Key) {
    fn tenant(&self) -> &Arc<str> {
        &self.1.namespace
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
    /// The client of the ExternalSecret and PushSecret controllers (and every read). With `--shards`, its writes
    /// pass the fence: a write into a namespace needs that namespace's shard ([`crate::shard::fence`]).
    pub client: kube::Client,
    /// The client of the cluster-wide duties (store validation, ClusterExternalSecret, ClusterPushSecret): with
    /// `--shards`, its writes need the cluster unit. The same client as `client` otherwise.
    pub cluster_client: kube::Client,
    /// Which units (shards of the namespaces, the cluster duties) this replica holds; everything without `--shards`.
    pub shards: Arc<crate::shard::Ownership>,
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
    /// Per-ExternalSecret state of the controller, in one map: the status written and not yet seen, when a
    /// leased value is due, which store specs it last read from.
    pub es_state: crate::controller::externalsecret::EsStates,
    /// The in-flight limit per store (`--max-concurrent-per-store`).
    pub store_gate: Arc<crate::schedule::StoreGate>,
    /// Whether the controllers' workers make progress (`/healthz`).
    pub liveness: Arc<crate::controller::kit::Liveness>,
    /// PushSecrets and ClusterPushSecrets: reflectors, queues, the source index.
    pub push: crate::controller::pushsecret::PushState,
    /// Which ExternalSecrets and PushSecrets depend on which ConfigMaps, Secrets and generic targets, their
    /// versions, and template sources' data (`crate::dependents`).
    pub dependents: crate::dependents::Dependents,
    /// Kinds of generic targets, as discovery found them (cached).
    pub generic_kinds: crate::controller::generic::Kinds,
    /// GeneratorStates: the watched states and the controller's queue (leases renewed, superseded ones revoked).
    pub generator_states: crate::controller::generatorstate::GeneratorStates,
}

#[cfg(test)]
mod tests {
    use super::{Interner, Key};
    use std::collections::HashMap;
    use std::sync::Arc;

    #[test]
    fn keys_made_apart_are_one_key() {
        let (a, b) = (Key::new("ns", "app"), Key::new("ns", "app"));
        assert_eq!(std::mem::size_of::<Key>(), std::mem::size_of::<usize>());
        assert_eq!(a, b, "equal by content, not only by pointer");
        let mut m = HashMap::new();
        m.insert(a.clone(), 1);
        assert_eq!(m.get(&b), Some(&1));
        assert_ne!(a, a.sibling("other"));
        assert!(
            Key::new("a", "z") < Key::new("b", "a"),
            "ordered by namespace, then name"
        );
        assert_eq!(format!("{a} {a:?}"), r#"ns/app Key { namespace: "ns", name: "app" }"#);
    }

    #[test]
    fn equal_keys_share_one_block_and_dropped_ones_are_swept() {
        let ns = unique("intern");
        let a = Key::new(&ns, "app");
        assert!(Arc::ptr_eq(&a.0, &Key::new(&ns, "app").0), "one block");
        assert!(Arc::ptr_eq(&a.0, &Key::new(&ns, "x").sibling("app").0));
        assert!(
            Arc::ptr_eq(&a.namespace, &a.sibling("other").namespace),
            "one namespace string"
        );
        // A key made again after its last copy was dropped is a new block with the same content.
        let weak = Arc::downgrade(&a.0);
        drop(a);
        assert!(weak.upgrade().is_none());
        assert_eq!(Key::new(&ns, "app").name.as_ref(), "app");
    }

    #[test]
    fn short_lived_keys_are_swept_not_kept() {
        let mut interner = Interner::default();
        let kept = interner.key("ns", "kept");
        for i in 0..5000 {
            let _ = interner.key("ns", &format!("tmp-{i}"));
        }
        assert!(interner.entries <= 1024, "{} entries", interner.entries);
        interner.sweep();
        assert_eq!(interner.entries, 1, "only the live key is left");
        assert!(Arc::ptr_eq(&kept.0, &interner.key("ns", "kept").0));
    }

    fn unique(prefix: &str) -> String {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
    }
}
