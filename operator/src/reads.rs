//! Reading from providers on behalf of ExternalSecrets: the shared authenticated client per store (from the
//! [`ClientCache`]), a per-store rate limit, and coalescing of identical reads across ExternalSecrets — a read of
//! the same key from the same store that is in flight, or finished within the coalescing window, is shared
//! instead of repeated (ESO #6133: a ClusterExternalSecret over N namespaces reads once, not N times).
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use syncret_providers::{
    CacheKey, CallObserver, ClientCache, ProviderContext, ProviderError, Registry, RemoteKey, RemoteValue,
    SecretsClient, StoreInfo, StoreScope, TenantPolicy,
};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::schedule::RateLimiter;
use crate::sync::fetch::{Answers, Item, Plan, ReadError, StoreId};

type ReadResult = Result<RemoteValue, ReadError>;

/// A shared read: in flight, or finished (at `done`) within the coalescing window. `started`: when it was
/// sent (a reader that needs an answer newer than some change takes only reads started after it).
enum Slot {
    Pending {
        started: Instant,
        rx: watch::Receiver<Option<ReadResult>>,
    },
    Done {
        started: Instant,
        done: Instant,
        result: ReadResult,
    },
}

/// See the module docs.
pub struct Reads {
    client: kube::Client,
    registry: Registry,
    pub clients: ClientCache,
    observer: Arc<dyn CallObserver>,
    metrics: Arc<Metrics>,
    window: Duration,
    store_rate: (f64, u32),
    /// The tenant boundary every provider client is built under.
    tenant: Arc<TenantPolicy>,
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
    slots: Mutex<HashMap<(CacheKey, RemoteKey), Slot>>,
    /// Generators: their clients (cached like store clients) and calls.
    pub generators: crate::generate::Generators,
}

impl Reads {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        registry: Registry,
        clients: ClientCache,
        observer: Arc<dyn CallObserver>,
        metrics: Arc<Metrics>,
        window: Duration,
        store_rate: (f64, u32),
        tenant: Arc<TenantPolicy>,
    ) -> Self {
        let generators = crate::generate::Generators::new(
            client.clone(),
            clients.max_age(),
            metrics.clone(),
            observer.clone(),
            tenant.clone(),
        );
        Self {
            generators,
            client,
            registry,
            clients,
            observer,
            metrics,
            window,
            store_rate,
            tenant,
            limiters: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The provider registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The cache key and a shared authenticated client for `store` used from `namespace`.
    pub async fn client_for(
        &self,
        store: &StoreInfo,
        namespace: &str,
    ) -> Result<(CacheKey, Arc<dyn SecretsClient>), ProviderError> {
        let provider = self.registry.provider_for(&store.spec)?;
        let referent = store.scope == StoreScope::ClusterSecretStore && provider.is_referent(store);
        let key = CacheKey {
            kind: store.scope_name(),
            namespace: store.namespace.clone(),
            name: store.name.clone(),
            uid: store.uid.clone(),
            generation: store.generation,
            referent_namespace: referent.then(|| namespace.to_string()),
        };
        let ctx = ProviderContext {
            client: self.client.clone(),
            observer: self.observer.clone(),
            referent_namespace: referent.then(|| namespace.to_string()),
            policy: self.tenant.clone(),
        };
        let metrics = self.metrics.clone();
        let provider_key = provider.key();
        let client = self
            .clients
            .get_or_build(&key, || async move {
                metrics.client_builds.with_label_values(&[provider_key]).inc();
                provider.new_client(store, &ctx).await
            })
            .await?;
        self.metrics.client_cache_size.set(self.clients.len() as i64);
        Ok((key, client))
    }

    fn limiter(&self, uid: &str) -> Arc<RateLimiter> {
        let mut l = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        l.entry(uid.to_string())
            .or_insert_with(|| Arc::new(RateLimiter::new(self.store_rate.0, self.store_rate.1)))
            .clone()
    }

    /// Drops the clients (and limiter) of a deleted store.
    pub fn forget_store(&self, uid: &str) {
        self.clients.remove_store(uid);
        self.limiters.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        self.metrics.client_cache_size.set(self.clients.len() as i64);
    }

    /// Performs every read of `plan` (stores resolved in `stores`), sharing identical reads (only those started
    /// at or after `fresh_after`, when given: what was read before a known change of the source is not reused).
    pub async fn read(
        &self,
        plan: &Plan,
        stores: &BTreeMap<StoreId, StoreInfo>,
        namespace: &str,
        fresh_after: Option<Instant>,
    ) -> Result<Answers, (StoreId, ProviderError)> {
        let mut answers = Answers::default();
        let mut clients: BTreeMap<StoreId, (CacheKey, Arc<dyn SecretsClient>)> = BTreeMap::new();
        for id in plan.stores() {
            let Some(info) = stores.get(&id) else { continue };
            let c = self.client_for(info, namespace).await.map_err(|e| (id.clone(), e))?;
            clients.insert(id, c);
        }
        for (id, keys) in plan.gets() {
            let Some((cache_key, client)) = clients.get(&id) else {
                continue;
            };
            let results = self
                .get_many(cache_key, client, &keys, &stores[&id].uid, fresh_after)
                .await;
            for k in &keys {
                if let Some(d) = client.expires_in(k) {
                    answers.expires_in = Some(answers.expires_in.map_or(d, |m| m.min(d)));
                }
            }
            for (k, r) in keys.into_iter().zip(results) {
                answers.gets.insert((id.clone(), k), r);
            }
        }
        for item in &plan.items {
            if let Item::Find {
                index, store, query, ..
            } = item
            {
                let Some((cache_key, client)) = clients.get(store) else {
                    continue;
                };
                self.limiter(&stores[store].uid).acquire().await;
                let r = client.get_all_secrets(query).await;
                if let Err(e) = &r
                    && e.invalidates_client()
                {
                    self.clients.invalidate(cache_key);
                }
                answers.finds.insert(*index, r.map_err(|e| ReadError::from(&e)));
            }
        }
        for (index, generator) in plan.generators() {
            let made = match self.generators.resolve(namespace, generator).await {
                Ok(resolved) => self
                    .generators
                    .generate(&resolved, &self.registry)
                    .await
                    .map(|g| (resolved, g)),
                Err(e) => Err(e),
            };
            match made {
                Ok((resolved, generated)) => {
                    if let Some(lease) = generated.lease {
                        answers
                            .leases
                            .push(crate::sync::fetch::GeneratedLease { index, resolved, lease });
                    }
                    answers.generated.insert(index, Ok(generated.data));
                }
                Err(e) => {
                    answers.generated.insert(index, Err(ReadError::from(&e)));
                }
            }
        }
        Ok(answers)
    }

    /// Reads `keys` through one client: coalesced with identical reads, the rest in one batch call.
    async fn get_many(
        &self,
        cache_key: &CacheKey,
        client: &Arc<dyn SecretsClient>,
        keys: &[RemoteKey],
        store_uid: &str,
        fresh_after: Option<Instant>,
    ) -> Vec<ReadResult> {
        let mut results: Vec<Option<ReadResult>> = vec![None; keys.len()];
        let mut waits: Vec<(usize, watch::Receiver<Option<ReadResult>>)> = Vec::new();
        let mut mine: Vec<usize> = Vec::new();
        let mut senders: Vec<(usize, watch::Sender<Option<ReadResult>>)> = Vec::new();
        let started;
        {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            started = now;
            if slots.len() > 1024 {
                slots.retain(|_, s| match s {
                    Slot::Done { done, .. } => now.duration_since(*done) < self.window,
                    Slot::Pending { rx, .. } => rx.has_changed().is_ok(),
                });
                // A burst (every ExternalSecret read at start-up) leaves a table sized for it: give it back.
                if slots.capacity() > 4 * slots.len().max(256) {
                    slots.shrink_to_fit();
                }
            }
            let recent = |started: &Instant| fresh_after.is_none_or(|t| *started >= t);
            for (i, k) in keys.iter().enumerate() {
                let slot_key = (cache_key.clone(), k.clone());
                match slots.get(&slot_key) {
                    Some(Slot::Done { started, done, result })
                        if now.duration_since(*done) < self.window && recent(started) =>
                    {
                        results[i] = Some(result.clone());
                        self.metrics.reads_coalesced.inc();
                    }
                    Some(Slot::Pending { started, rx }) if rx.has_changed().is_ok() && recent(started) => {
                        waits.push((i, rx.clone()));
                        self.metrics.reads_coalesced.inc();
                    }
                    _ => {
                        let (tx, rx) = watch::channel(None);
                        slots.insert(slot_key, Slot::Pending { started: now, rx });
                        senders.push((i, tx));
                        mine.push(i);
                    }
                }
            }
        }
        if !mine.is_empty() {
            self.limiter(store_uid).acquire().await;
            let batch: Vec<RemoteKey> = mine.iter().map(|i| keys[*i].clone()).collect();
            let got = client.get_secrets(&batch).await;
            let mut invalidate = false;
            let now = Instant::now();
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            for ((i, tx), r) in senders.into_iter().zip(got) {
                if let Err(e) = &r {
                    invalidate |= e.invalidates_client();
                }
                let r = r.map_err(|e| ReadError::from(&e));
                let slot_key = (cache_key.clone(), keys[i].clone());
                // Only our own slot: a newer read of the same key (started after a change) may have taken it.
                if matches!(slots.get(&slot_key), Some(Slot::Pending { started: s, .. }) if *s == started) {
                    if self.window.is_zero() || r.is_err() {
                        slots.remove(&slot_key);
                    } else {
                        slots.insert(
                            slot_key,
                            Slot::Done {
                                started,
                                done: now,
                                result: r.clone(),
                            },
                        );
                    }
                }
                let _ = tx.send(Some(r.clone()));
                results[i] = Some(r);
            }
            drop(slots);
            if invalidate {
                self.clients.invalidate(cache_key);
            }
        }
        for (i, mut rx) in waits {
            let r = loop {
                if let Some(r) = rx.borrow_and_update().clone() {
                    break r;
                }
                if rx.changed().await.is_err() {
                    break rx.borrow().clone().unwrap_or_else(|| {
                        Err(ReadError {
                            reason: "ProviderUnavailable",
                            message: "a shared read was abandoned".into(),
                            not_found: false,
                            retry_after: None,
                        })
                    });
                }
            };
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ReadError {
                        reason: "ProviderUnavailable",
                        message: "no answer from the provider".into(),
                        not_found: false,
                        retry_after: None,
                    })
                })
            })
            .collect()
    }
}
