//! The authenticated client cache: one client per store generation (and per referent namespace for
//! ClusterSecretStores whose credentials resolve in the ExternalSecret's namespace), shared by every
//! reconcile and every ExternalSecret. ESO builds a client (and logs in) per reconcile (#376, #4032, #5891);
//! syncret builds it once and rebuilds only when the store's spec changes, the entry ages out (credentials in
//! referenced Secrets may rotate), or the provider rejects the credentials.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::client::SecretsClient;
use crate::error::Result;

/// What the cache can hold: something to close when it is dropped (revoking what it holds remotely).
#[async_trait]
pub trait Closable: Send + Sync {
    async fn close_client(&self);
}

#[async_trait]
impl Closable for dyn SecretsClient {
    async fn close_client(&self) {
        self.close().await
    }
}

#[cfg(feature = "generators")]
#[async_trait]
impl Closable for dyn crate::generators::GeneratorClient {
    async fn close_client(&self) {
        self.close().await
    }
}

/// Identifies one cached client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// `SecretStore` or `ClusterSecretStore`.
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    /// `metadata.generation`: it changes with the spec, not with status writes (resourceVersion would make every
    /// status update throw the client away).
    pub generation: i64,
    /// For ClusterSecretStores: the namespace referent credentials were resolved in.
    pub referent_namespace: Option<String>,
}

struct Slot<C: ?Sized> {
    cell: OnceCell<Arc<C>>,
    created: Instant,
}

/// See the module docs. Holds store clients by default; generator clients with
/// `ClientCache<dyn GeneratorClient>`.
pub struct ClientCache<C: ?Sized + Closable + 'static = dyn SecretsClient> {
    slots: Mutex<HashMap<CacheKey, Arc<Slot<C>>>>,
    max_age: Duration,
    builds: AtomicU64,
}

impl<C: ?Sized + Closable + 'static> ClientCache<C> {
    /// A cache whose entries are rebuilt after `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            max_age,
            builds: AtomicU64::new(0),
        }
    }

    /// The cached client for `key`, building it with `build` if there is none (concurrent callers share one
    /// build). Entries of older generations of the same store are dropped and closed.
    pub async fn get_or_build<F, Fut>(&self, key: &CacheKey, build: F) -> Result<Arc<C>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Arc<C>>>,
    {
        let (slot, stale) = {
            let mut slots = self.lock();
            let fresh = slots
                .get(key)
                .filter(|s| s.created.elapsed() < self.max_age || s.cell.get().is_none())
                .cloned();
            match fresh {
                Some(slot) => (slot, Vec::new()),
                None => {
                    let stale_keys: Vec<CacheKey> = slots
                        .keys()
                        // Older generations of this store, and this entry itself when it aged out.
                        .filter(|k| k.uid == key.uid && (k.generation != key.generation || *k == key))
                        .cloned()
                        .collect();
                    let stale: Vec<Arc<Slot<C>>> = stale_keys.iter().filter_map(|k| slots.remove(k)).collect();
                    let slot = Arc::new(Slot {
                        cell: OnceCell::new(),
                        created: Instant::now(),
                    });
                    slots.insert(key.clone(), slot.clone());
                    (slot, stale)
                }
            }
        };
        close_all(stale);
        let client = slot
            .cell
            .get_or_try_init(|| async {
                self.builds.fetch_add(1, Ordering::Relaxed);
                build().await
            })
            .await?;
        Ok(client.clone())
    }

    /// Drops the client for `key` (e.g. after the provider rejected its credentials) and closes it.
    pub fn invalidate(&self, key: &CacheKey) {
        let removed = self.lock().remove(key);
        close_all(removed.into_iter().collect());
    }

    /// Drops every client of the store with this UID (the store was deleted) and closes them.
    pub fn remove_store(&self, uid: &str) {
        let removed: Vec<Arc<Slot<C>>> = {
            let mut slots = self.lock();
            let keys: Vec<CacheKey> = slots.keys().filter(|k| k.uid == uid).cloned().collect();
            keys.iter().filter_map(|k| slots.remove(k)).collect()
        };
        close_all(removed);
    }

    /// Closes every client (operator shutdown): revokes tokens the clients logged in for.
    pub async fn close(&self) {
        let all: Vec<Arc<Slot<C>>> = self.lock().drain().map(|(_, v)| v).collect();
        for slot in all {
            if let Some(client) = slot.cell.get() {
                client.close_client().await;
            }
        }
    }

    /// How long an entry is used before it is rebuilt.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Number of cached clients.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many clients were built since start (a login each, for authenticating providers).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Arc<Slot<C>>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single insert/remove calls).
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn close_all<C: ?Sized + Closable + 'static>(slots: Vec<Arc<Slot<C>>>) {
    for slot in slots {
        if let Some(client) = slot.cell.get().cloned()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move { client.close_client().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{RemoteKey, Validation};
    use crate::value::{RemoteValue, SecretValue};
    use async_trait::async_trait;
    use std::sync::atomic::AtomicUsize;

    struct Dummy(Arc<AtomicUsize>);
    #[async_trait]
    impl SecretsClient for Dummy {
        fn provider_label(&self) -> &'static str {
            "Dummy"
        }
        async fn get_secret(&self, _: &RemoteKey) -> Result<RemoteValue> {
            Ok(SecretValue::from("v").into())
        }
        async fn validate(&self) -> Result<Validation> {
            Ok(Validation::Ready)
        }
        async fn close(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn key(generation: i64, referent: Option<&str>) -> CacheKey {
        CacheKey {
            kind: "SecretStore",
            namespace: Some("ns".into()),
            name: "s".into(),
            uid: "u1".into(),
            generation,
            referent_namespace: referent.map(Into::into),
        }
    }

    #[tokio::test]
    async fn builds_once_per_generation_and_closes_old_ones() {
        let cache: ClientCache = ClientCache::new(Duration::from_secs(3600));
        let closed = Arc::new(AtomicUsize::new(0));
        let mk = || {
            let closed = closed.clone();
            move || async move { Ok(Arc::new(Dummy(closed)) as Arc<dyn SecretsClient>) }
        };
        let k1 = key(1, None);
        let futs: Vec<_> = (0..50).map(|_| cache.get_or_build(&k1, mk())).collect();
        for r in futures::future::join_all(futs).await {
            r.unwrap();
        }
        assert_eq!(cache.builds(), 1);
        cache.get_or_build(&key(2, None), mk()).await.unwrap();
        assert_eq!(cache.builds(), 2);
        assert_eq!(cache.len(), 1);
        tokio::task::yield_now().await;
        assert_eq!(closed.load(Ordering::SeqCst), 1, "old generation closed");
        // Referent namespaces of the same generation coexist.
        cache.get_or_build(&key(2, Some("a")), mk()).await.unwrap();
        cache.get_or_build(&key(2, Some("b")), mk()).await.unwrap();
        assert_eq!(cache.len(), 3);
        cache.remove_store("u1");
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn failed_build_is_retried() {
        let cache: ClientCache = ClientCache::new(Duration::from_secs(3600));
        let err = cache
            .get_or_build(&key(1, None), || async {
                Err(crate::ProviderError::Auth("denied".into()))
            })
            .await;
        assert!(err.is_err());
        let closed = Arc::new(AtomicUsize::new(0));
        cache
            .get_or_build(&key(1, None), || async move {
                Ok(Arc::new(Dummy(closed)) as Arc<dyn SecretsClient>)
            })
            .await
            .unwrap();
        assert_eq!(cache.builds(), 2);
    }

    #[tokio::test]
    async fn entries_age_out() {
        let cache: ClientCache = ClientCache::new(Duration::from_millis(0));
        let closed = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let c = closed.clone();
            cache
                .get_or_build(&key(1, None), || async move {
                    Ok(Arc::new(Dummy(c)) as Arc<dyn SecretsClient>)
                })
                .await
                .unwrap();
        }
        assert_eq!(cache.builds(), 3);
    }
}
