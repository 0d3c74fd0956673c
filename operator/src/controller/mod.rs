//! Wiring: watches (reflectors for ExternalSecrets and stores, metadata-only watches for Secrets and
//! Namespaces), the mapping of their events to work, the worker pools, readiness and graceful shutdown.
//!
//! Events become work as follows:
//! - an ExternalSecret created, or its spec/labels/annotations/finalizers changed → fast lane (status-only
//!   updates are ignored);
//! - a store created, changed, or its readiness changed → the store (fast) and every ExternalSecret using it
//!   (fast), so an ExternalSecret waiting for its store syncs as soon as the store is Ready (ESO #4340);
//! - a managed Secret changed by someone else, or deleted → its ExternalSecret (fast);
//! - periodic refreshes (jittered) and error retries (exponential backoff) → slow lane.
pub mod clusterexternalsecret;
pub mod clusterpushsecret;
pub mod externalsecret;
mod fanout;
pub mod pushsecret;
pub mod secretstore;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use rand::Rng;
use syncret_crds::ClusterExternalSecret;
use syncret_crds::externalsecret::ExternalSecret;
use syncret_crds::labels::{LABEL_MANAGED, LABEL_MANAGED_VALUE};
use syncret_crds::secretstore::{ClusterSecretStore, SecretStore, StoreKind};
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::context::{Context, Key};
use crate::leader::Leadership;
use crate::schedule::{Lane, backoff, jittered};
use externalsecret::{Failures, Next};

/// Controller names used in metrics (`controller_runtime_reconcile_total{controller}`).
pub const ES_CONTROLLER: &str = "externalsecret";
pub const STORE_CONTROLLER: &str = "secretstore";
pub const CES_CONTROLLER: &str = "clusterexternalsecret";

/// A number in [0, 1) derived from the ExternalSecret's spec: the share of jitter its refreshes get.
/// ExternalSecrets with different specs spread out (no lockstep after a mass create or a restart, ESO #4231);
/// ExternalSecrets with the same spec — a ClusterExternalSecret's children — stay aligned, so their identical
/// reads are coalesced into one (ESO #6133).
fn spec_unit(es: &ExternalSecret) -> f64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(&es.spec).unwrap_or_default().hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Hash of what makes an ExternalSecret worth reconciling (not its status).
fn es_fingerprint(es: &ExternalSecret) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    es.metadata.generation.hash(&mut h);
    es.metadata.labels.hash(&mut h);
    es.metadata.annotations.hash(&mut h);
    es.metadata.finalizers.hash(&mut h);
    es.metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut h);
    es.metadata.uid.hash(&mut h);
    h.finish()
}

fn store_fingerprint(generation: Option<i64>, ready: Option<bool>, uid: &Option<String>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    generation.hash(&mut h);
    ready.hash(&mut h);
    uid.hash(&mut h);
    h.finish()
}

fn is_ready(es: &ExternalSecret) -> bool {
    es.status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .any(|c| c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready && c.is_true())
}

pub(super) fn es_key(es: &ExternalSecret) -> Key {
    Key::new(es.namespace().unwrap_or_default(), es.name_any())
}

/// Whether the ExternalSecret reads from the store `name` of `kind` (in `namespace` for a SecretStore).
fn uses_store(es: &ExternalSecret, kind: StoreKind, name: &str, namespace: &str) -> bool {
    if kind == StoreKind::SecretStore && es.namespace().as_deref() != Some(namespace) {
        return false;
    }
    store_refs(es).any(|r| r.name == name && r.kind() == kind)
}

/// The stores an ExternalSecret names: its `secretStoreRef` and those of its `data` and `dataFrom` sources.
fn store_refs(es: &ExternalSecret) -> impl Iterator<Item = &syncret_crds::externalsecret::SecretStoreRef> {
    let data = (es.spec.data.iter()).filter_map(|d| d.source_ref.as_ref()?.secret_store_ref.as_ref());
    let data_from = (es.spec.data_from.iter()).filter_map(|d| d.source_ref.as_ref()?.secret_store_ref.as_ref());
    es.spec.secret_store_ref.iter().chain(data).chain(data_from)
}

/// Hash of a store reference (kind and name), as the ExternalSecret cache indexes them.
fn store_hash(kind: StoreKind, name: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    kind.hash(&mut h);
    name.hash(&mut h);
    h.finish()
}

/// What the cache derives from an ExternalSecret's spec (see [`crate::escache::Derived`]).
fn derive(es: &ExternalSecret) -> crate::escache::Derived {
    crate::escache::Derived {
        unit: spec_unit(es),
        stores: store_refs(es).map(|r| store_hash(r.kind(), &r.name)).collect(),
    }
}

/// Marks one watch as listed; readiness is set when all are.
struct InitGate {
    remaining: std::sync::atomic::AtomicUsize,
    readiness: Arc<Readiness>,
    listed: tokio::sync::Notify,
}

impl InitGate {
    fn done(&self) {
        if self.remaining.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.readiness.set_ready();
            self.listed.notify_waiters();
        }
    }

    async fn wait(&self) {
        let n = self.listed.notified();
        tokio::pin!(n);
        n.as_mut().enable();
        if self.remaining.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            return;
        }
        n.await;
    }
}

/// Handles for a running controller set.
pub struct Running {
    pub ctx: Arc<Context>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits for workers and watches to stop (after the shutdown token fired), then closes provider clients.
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        self.ctx.reads.clients.close().await;
    }
}

/// The reflector stores (built before the Context, filled by [`start`]).
pub struct Reflectors {
    pub ss: (Store<SecretStore>, reflector::store::Writer<SecretStore>),
    pub css: (Store<ClusterSecretStore>, reflector::store::Writer<ClusterSecretStore>),
    pub ns: (
        Store<PartialObjectMeta<Namespace>>,
        reflector::store::Writer<PartialObjectMeta<Namespace>>,
    ),
    pub ces: (
        Store<ClusterExternalSecret>,
        reflector::store::Writer<ClusterExternalSecret>,
    ),
}

/// The reflector writers [`start`] feeds.
pub struct Writers {
    pub ss: reflector::store::Writer<SecretStore>,
    pub css: reflector::store::Writer<ClusterSecretStore>,
    pub ns: reflector::store::Writer<PartialObjectMeta<Namespace>>,
    pub ces: reflector::store::Writer<ClusterExternalSecret>,
    pub push: pushsecret::PushWriters,
}

impl Default for Reflectors {
    fn default() -> Self {
        Self {
            ss: reflector::store(),
            css: reflector::store(),
            ns: reflector::store(),
            ces: reflector::store(),
        }
    }
}

/// What no controller here reads, dropped before an object enters a reflector, in place (no copy):
/// `managedFields`, and kubectl's `last-applied-configuration` annotation, a second copy of the whole spec on
/// every object applied with `kubectl apply` (it changes only together with the spec, labels or annotations it
/// copies), replaced by the `syncedResourceVersion` ESO computes with it (`sync::refresh::drop_last_applied`).
pub(crate) fn strip<K: Resource>(k: &mut K) {
    let meta = k.meta_mut();
    meta.managed_fields = None;
    // ESO's syncedResourceVersion hashes kubectl's copy too: kept as a memo (a move from or to ESO writes nothing).
    crate::sync::refresh::drop_last_applied(meta);
}

/// Starts watches and workers. Work stops when `shutdown` fires; [`Running::join`] waits for in-flight syncs.
pub fn start(
    ctx: Arc<Context>,
    writers: Writers,
    readiness: Arc<Readiness>,
    leadership: Leadership,
    shutdown: CancellationToken,
) -> Running {
    let Writers {
        ss: ss_w,
        css: css_w,
        ns: ns_w,
        ces: ces_w,
        push: push_w,
    } = writers;
    let ces_enabled = ctx.settings.enable_cluster_external_secrets && ctx.settings.namespace.is_none();
    let client = ctx.client.clone();
    let ns_scope = ctx.settings.namespace.clone();
    let gate = Arc::new(InitGate {
        remaining: std::sync::atomic::AtomicUsize::new(if ces_enabled { 6 } else { 5 } + pushsecret::gates(&ctx)),
        readiness,
        listed: tokio::sync::Notify::new(),
    });
    let mut tasks = Vec::new();
    let cfg = watcher::Config::default();

    // ExternalSecrets.
    {
        let api: Api<ExternalSecret> = match &ns_scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let ctx = ctx.clone();
        let gate = gate.clone();
        let stop = shutdown.clone();
        // Not a kube-runtime reflector: the compact cache in the Context (see `crate::escache`).
        let stream = watcher::watcher(api, cfg.clone())
            .default_backoff()
            .map_ok(|e| e.modify(strip));
        tasks.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut listing = true;
            loop {
                let ev = tokio::select! { e = stream.next() => e, _ = stop.cancelled() => break };
                let Some(ev) = ev else { break };
                let Ok(ev) = ev else { continue };
                match ev {
                    Event::Apply(es) | Event::InitApply(es) => {
                        let applied = ctx.external_secrets.apply(&es, es_fingerprint(&es), || derive(&es));
                        let k = applied.key;
                        // The cache now shows the status we wrote: drop our copy (10k of them add up).
                        {
                            let mut written = ctx.written_status.lock().unwrap_or_else(|e| e.into_inner());
                            if written.get(&k).is_some_and(|w| es.status.as_ref() == Some(w)) {
                                written.remove(&k);
                            }
                        }
                        if applied.changed {
                            // At start-up (the initial list), ExternalSecrets already synced and Ready only need a
                            // check that their Secret is intact: they wait in the slow lane, so a new or changed
                            // one created meanwhile is not stuck behind thousands of them.
                            let settled = listing && !crate::sync::refresh::changed_since_sync(&es) && is_ready(&es);
                            ctx.es_queue.add(k, if settled { Lane::Slow } else { Lane::Fast });
                            if !listing && let Some(ces) = clusterexternalsecret::controller_of(&es) {
                                ctx.ces_queue.add(clusterexternalsecret::key(&ces), Lane::Fast);
                            }
                        }
                    }
                    Event::Delete(es) => {
                        let k = es_key(&es);
                        ctx.external_secrets.delete(&k);
                        ctx.es_queue.add(k, Lane::Fast);
                        if let Some(ces) = clusterexternalsecret::controller_of(&es) {
                            ctx.ces_queue.add(clusterexternalsecret::key(&ces), Lane::Fast);
                        }
                    }
                    Event::Init => ctx.external_secrets.relist(),
                    Event::InitDone => {
                        // Deleted while the watch was down: reconciled as gone (metrics, index, leases).
                        for k in ctx.external_secrets.relisted() {
                            ctx.es_queue.add(k, Lane::Fast);
                        }
                        if listing {
                            listing = false;
                            gate.done();
                        }
                    }
                }
            }
        }));
    }

    {
        let api: Api<SecretStore> = match &ns_scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (kind, stop) = (StoreKind::SecretStore, shutdown.clone());
        tasks.push(tokio::spawn(watch_stores(
            ctx.clone(),
            api,
            cfg.clone(),
            ss_w,
            kind,
            gate.clone(),
            stop,
        )));
        let api: Api<ClusterSecretStore> = Api::all(client.clone());
        let (kind, stop) = (StoreKind::ClusterSecretStore, shutdown.clone());
        tasks.push(tokio::spawn(watch_stores(
            ctx.clone(),
            api,
            cfg.clone(),
            css_w,
            kind,
            gate.clone(),
            stop,
        )));
    }

    // Namespaces (metadata only): labels for ClusterSecretStore conditions.
    {
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        let gate = gate.clone();
        let stop = shutdown.clone();
        let stream = watcher::watcher(api, cfg.clone())
            .default_backoff()
            .map_ok(|e| e.modify(strip))
            .reflect(ns_w);
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut listing = true;
            let mut seen: HashMap<String, u64> = HashMap::new();
            loop {
                let ev = tokio::select! { e = stream.next() => e, _ = stop.cancelled() => break };
                let Some(ev) = ev else { break };
                let changed = match ev {
                    Ok(Event::Apply(n) | Event::InitApply(n)) => {
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        n.labels().hash(&mut h);
                        n.metadata.deletion_timestamp.is_some().hash(&mut h);
                        seen.insert(n.name_any(), h.finish()) != Some(h.finish())
                    }
                    Ok(Event::Delete(n)) => seen.remove(&n.name_any()).is_some(),
                    Ok(Event::InitDone) => {
                        if listing {
                            listing = false;
                            gate.done();
                        }
                        false
                    }
                    _ => false,
                };
                // Namespaces come and go rarely; every ClusterExternalSecret re-evaluates its selection.
                if changed && !listing && ces_enabled {
                    for ces in ctx.cluster_external_secrets.state() {
                        ctx.ces_queue
                            .add(clusterexternalsecret::key(&ces.name_any()), Lane::Fast);
                    }
                }
                if changed && !listing {
                    clusterpushsecret::on_namespaces(&ctx);
                }
            }
        }));
    }

    // ClusterExternalSecrets (cluster-wide operators only).
    if ces_enabled {
        let api: Api<ClusterExternalSecret> = Api::all(client.clone());
        let ctx = ctx.clone();
        let gate = gate.clone();
        let stop = shutdown.clone();
        let stream = watcher::watcher(api, cfg.clone())
            .default_backoff()
            .map_ok(|e| e.modify(strip))
            .reflect(ces_w);
        tasks.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut listing = true;
            let mut seen: HashMap<String, u64> = HashMap::new();
            loop {
                let ev = tokio::select! { e = stream.next() => e, _ = stop.cancelled() => break };
                let Some(ev) = ev else { break };
                match ev {
                    Ok(Event::Apply(c) | Event::InitApply(c)) => {
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        c.metadata.generation.hash(&mut h);
                        c.annotations().hash(&mut h);
                        c.finalizers().hash(&mut h);
                        c.metadata.deletion_timestamp.is_some().hash(&mut h);
                        if seen.insert(c.name_any(), h.finish()) != Some(h.finish()) {
                            ctx.ces_queue.add(clusterexternalsecret::key(&c.name_any()), Lane::Fast);
                        }
                    }
                    Ok(Event::Delete(c)) => {
                        seen.remove(&c.name_any());
                        ctx.ces_queue.add(clusterexternalsecret::key(&c.name_any()), Lane::Fast);
                    }
                    Ok(Event::InitDone) if listing => {
                        listing = false;
                        gate.done();
                    }
                    _ => {}
                }
            }
        }));
    } else {
        drop(ces_w);
    }

    // Managed Secrets (metadata only, no store): route changes made by others back to their ExternalSecret.
    {
        let api: Api<PartialObjectMeta<Secret>> = match &ns_scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let ctx = ctx.clone();
        let gate = gate.clone();
        let stop = shutdown.clone();
        let scfg = cfg.clone().labels(&format!("{LABEL_MANAGED}={LABEL_MANAGED_VALUE}"));
        let stream = watcher::watcher(api, scfg).default_backoff();
        tasks.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut listing = true;
            loop {
                let ev = tokio::select! { e = stream.next() => e, _ = stop.cancelled() => break };
                let Some(ev) = ev else { break };
                let Ok(ev) = ev else { continue };
                match ev {
                    Event::Apply(m) | Event::InitApply(m) => {
                        let key = Key::new(m.namespace().unwrap_or_default(), m.name_any());
                        let owner = m
                            .owner_references()
                            .iter()
                            .find(|o| o.controller == Some(true) && o.kind == "ExternalSecret")
                            .map(|o| o.name.clone());
                        let changed = ctx.secrets.observe(
                            &key,
                            &m.resource_version().unwrap_or_default(),
                            owner,
                            m.labels().get(syncret_crds::labels::LABEL_CREATED_BY).cloned(),
                        );
                        if changed && !listing {
                            for es in ctx.secrets.owners_of(&key) {
                                ctx.es_queue.add(key.sibling(es), Lane::Fast);
                            }
                        }
                    }
                    Event::Delete(m) => {
                        let key = Key::new(m.namespace().unwrap_or_default(), m.name_any());
                        let owners = ctx.secrets.owners_of(&key);
                        ctx.secrets.observe_deleted(&key);
                        for es in owners {
                            ctx.es_queue.add(key.sibling(es), Lane::Fast);
                        }
                    }
                    Event::Init => {}
                    Event::InitDone => {
                        if listing {
                            listing = false;
                            gate.done();
                        }
                    }
                }
            }
        }));
    }

    // PushSecrets and ClusterPushSecrets: their watches, and their workers once the gate opens.
    pushsecret::start(
        &ctx,
        push_w,
        gate.clone(),
        leadership.clone(),
        shutdown.clone(),
        &mut tasks,
    );

    // Workers start once every watch has listed and the Secret index is primed.
    {
        let ctx = ctx.clone();
        let gate = gate.clone();
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            tokio::select! { _ = gate.wait() => {}, _ = stop.cancelled() => return }
            // Only the leader runs workers; standbys keep their caches warm for a fast takeover.
            if !leadership.acquired(&stop).await {
                return;
            }
            match prime_secret_index(&ctx).await {
                Ok(()) => ctx.secrets.set_primed(),
                Err(e) => tracing::warn!(error = %e, "could not pre-read managed Secrets; they will be read on demand"),
            }
            let failures = Arc::new(Failures::default());
            let mut workers = Vec::new();
            for _ in 0..ctx.settings.concurrent.max(1) {
                workers.push(tokio::spawn(es_worker(ctx.clone(), failures.clone())));
            }
            for _ in 0..2 {
                workers.push(tokio::spawn(store_worker(ctx.clone())));
            }
            if ces_enabled {
                workers.push(tokio::spawn(ces_worker(ctx.clone())));
            }
            ctx.metrics.workers_started(&[
                (ES_CONTROLLER, ctx.settings.concurrent.max(1)),
                (STORE_CONTROLLER, 2),
                (CES_CONTROLLER, usize::from(ces_enabled)),
            ]);
            workers.push(tokio::spawn(queue_gauges(ctx.clone(), stop.clone())));
            stop.cancelled().await;
            ctx.es_queue.close();
            ctx.store_queue.close();
            ctx.ces_queue.close();
            for w in workers {
                let _ = w.await;
            }
        }));
    }

    Running { ctx, tasks }
}

// SecretStores and ClusterSecretStores: wake the store and the ExternalSecrets using it.
fn on_store<K>(ctx: &Arc<Context>, kind: StoreKind, obj: &K, seen: &mut HashMap<Key, u64>, deleted: bool)
where
    K: Resource + ResourceExt,
    K: StoreStatus,
{
    let key = Key::new(obj.namespace().unwrap_or_default(), obj.name_any());
    let fp = store_fingerprint(obj.meta().generation, obj.readiness(), &obj.meta().uid);
    let changed = if deleted {
        seen.remove(&key).is_some()
    } else {
        seen.insert(key.clone(), fp) != Some(fp)
    };
    if !changed {
        return;
    }
    if deleted && let Some(uid) = &obj.meta().uid {
        ctx.reads.forget_store(uid);
    }
    ctx.store_queue.add((kind, key.clone()), Lane::Fast);
    // Only the ExternalSecrets that name this store are decoded and checked.
    for k in ctx.external_secrets.using_store(store_hash(kind, &key.name)) {
        if ctx
            .external_secrets
            .get(&k)
            .is_some_and(|es| uses_store(&es, kind, &key.name, &key.namespace))
        {
            ctx.es_queue.add(k, Lane::Fast);
        }
    }
    pushsecret::on_store(ctx, kind, &key.name, &key.namespace, obj.labels());
}

/// Watches one kind of store: the reflector feeds `writer`, changes wake the store and its ExternalSecrets
/// ([`on_store`]), the first full list opens one slot of `gate`.
async fn watch_stores<K>(
    ctx: Arc<Context>,
    api: Api<K>,
    cfg: watcher::Config,
    writer: reflector::store::Writer<K>,
    kind: StoreKind,
    gate: Arc<InitGate>,
    stop: CancellationToken,
) where
    K: Resource<DynamicType = ()> + StoreStatus + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: Send + Sync + 'static,
{
    let stream = watcher::watcher(api, cfg)
        .default_backoff()
        .map_ok(|e| e.modify(strip))
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let mut seen = HashMap::new();
    let mut listing = true;
    loop {
        let ev = tokio::select! { e = stream.next() => e, _ = stop.cancelled() => break };
        let Some(ev) = ev else { break };
        match ev {
            Ok(Event::Apply(s) | Event::InitApply(s)) => on_store(&ctx, kind, &s, &mut seen, false),
            Ok(Event::Delete(s)) => on_store(&ctx, kind, &s, &mut seen, true),
            Ok(Event::InitDone) if listing => {
                listing = false;
                gate.done();
            }
            _ => {}
        }
    }
}

/// Reads the managed Secrets once, a page at a time, to learn which are intact (data matches its hash) without
/// keeping their data: after a restart no ExternalSecret needs a provider call or a GET to know its Secret is fine.
async fn prime_secret_index(ctx: &Context) -> Result<(), kube::Error> {
    let api: Api<Secret> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let mut lp = ListParams::default()
        .labels(&format!("{LABEL_MANAGED}={LABEL_MANAGED_VALUE}"))
        .limit(250);
    loop {
        ctx.secret_limiter.acquire().await;
        let page = api.list(&lp).await?;
        for s in &page.items {
            ctx.secrets.record_read(s);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => return Ok(()),
        }
    }
}

async fn es_worker(ctx: Arc<Context>, failures: Arc<Failures>) {
    while let Some((key, lane)) = ctx.es_queue.next().await {
        let start = std::time::Instant::now();
        let next = externalsecret::reconcile(&ctx, &key).await;
        let elapsed = start.elapsed();
        ctx.metrics
            .reconciled(ES_CONTROLLER, !matches!(next, Next::Retry(_)), elapsed);
        ctx.metrics
            .sync_duration
            .with_label_values(&[lane.as_str()])
            .observe(elapsed.as_secs_f64());
        ctx.es_queue.done(&key);
        match next {
            Next::After(Some(d)) => {
                failures.reset(&key);
                let unit = ctx
                    .external_secrets
                    .unit(&key)
                    .unwrap_or_else(|| rand::rng().random::<f64>());
                let d = jittered(d, ctx.settings.refresh_jitter, unit);
                ctx.es_queue.add_after(key, Lane::Slow, d);
            }
            Next::After(None) | Next::Idle => failures.reset(&key),
            Next::Retry(at_least) => {
                let n = failures.inc(&key);
                let d = backoff(
                    n,
                    ctx.settings.backoff_base,
                    ctx.settings.backoff_max,
                    rand::rng().random::<f64>(),
                );
                ctx.es_queue
                    .add_after(key, Lane::Slow, d.max(at_least.unwrap_or_default()));
            }
        }
    }
}

async fn store_worker(ctx: Arc<Context>) {
    let mut failures: HashMap<(StoreKind, Key), u32> = HashMap::new();
    while let Some(((kind, key), _lane)) = ctx.store_queue.next().await {
        let start = std::time::Instant::now();
        let next = secretstore::reconcile(&ctx, kind, &key).await;
        ctx.metrics
            .reconciled(STORE_CONTROLLER, !matches!(next, Next::Retry(_)), start.elapsed());
        ctx.store_queue.done(&(kind, key.clone()));
        match next {
            Next::After(Some(d)) => {
                failures.remove(&(kind, key.clone()));
                ctx.store_queue.add_after((kind, key), Lane::Slow, d);
            }
            Next::After(None) | Next::Idle => {
                failures.remove(&(kind, key));
            }
            Next::Retry(_) => {
                let n = failures.entry((kind, key.clone())).or_default();
                *n = n.saturating_add(1);
                let d = backoff(
                    *n,
                    ctx.settings.backoff_base,
                    ctx.settings.backoff_max,
                    rand::rng().random::<f64>(),
                );
                ctx.store_queue.add_after((kind, key), Lane::Slow, d);
            }
        }
    }
}

async fn ces_worker(ctx: Arc<Context>) {
    let mut failures: HashMap<Key, u32> = HashMap::new();
    let store = ctx.cluster_external_secrets.clone();
    while let Some((key, _)) = ctx.ces_queue.next().await {
        let start = std::time::Instant::now();
        let next = clusterexternalsecret::reconcile(&ctx, &store, &key.name).await;
        let ok = !matches!(next, Next::Retry(_));
        ctx.metrics.reconciled(CES_CONTROLLER, ok, start.elapsed());
        ctx.metrics
            .cluster_external_secrets
            .reconciled(&key, ok, start.elapsed());
        ctx.ces_queue.done(&key);
        match next {
            Next::After(Some(d)) => {
                failures.remove(&key);
                ctx.ces_queue.add_after(key, Lane::Slow, d);
            }
            Next::After(None) | Next::Idle => {
                failures.remove(&key);
            }
            Next::Retry(_) => {
                let n = failures.entry(key.clone()).or_default();
                *n = n.saturating_add(1);
                let d = backoff(
                    *n,
                    ctx.settings.backoff_base,
                    ctx.settings.backoff_max,
                    rand::rng().random::<f64>(),
                );
                ctx.ces_queue.add_after(key, Lane::Slow, d);
            }
        }
    }
}

async fn queue_gauges(ctx: Arc<Context>, stop: CancellationToken) {
    loop {
        let s = ctx.es_queue.stats();
        ctx.metrics
            .queue_depth
            .with_label_values(&[ES_CONTROLLER, "fast"])
            .set(s.fast as i64);
        ctx.metrics
            .queue_depth
            .with_label_values(&[ES_CONTROLLER, "slow"])
            .set(s.slow as i64);
        ctx.metrics
            .workqueue_depth
            .with_label_values(&[ES_CONTROLLER])
            .set((s.fast + s.slow) as i64);
        let t = ctx.store_queue.stats();
        ctx.metrics
            .workqueue_depth
            .with_label_values(&[STORE_CONTROLLER])
            .set((t.fast + t.slow) as i64);
        ctx.metrics
            .in_flight(&[(ES_CONTROLLER, s.in_flight), (STORE_CONTROLLER, t.in_flight)]);
        ctx.metrics.client_cache_size.set(ctx.reads.clients.len() as i64);
        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(2)) => {}, _ = stop.cancelled() => return }
    }
}

/// Store readiness, for change detection: `None` before the store was validated.
pub trait StoreStatus {
    fn readiness(&self) -> Option<bool>;
}

impl StoreStatus for SecretStore {
    fn readiness(&self) -> Option<bool> {
        crate::stores::readiness(self.status.as_ref().map(|s| &s.conditions))
    }
}

impl StoreStatus for ClusterSecretStore {
    fn readiness(&self) -> Option<bool> {
        crate::stores::readiness(self.status.as_ref().map(|s| &s.conditions))
    }
}

/// Reads the ConfigMaps and Secrets a template's `templateFrom` names (`needed`: ConfigMap names, Secret names) in
/// `namespace`; a missing one is left out (the template reports what it lacks).
pub(crate) async fn read_template_sources(
    ctx: &Context,
    namespace: &str,
    (cms, secrets): (Vec<String>, Vec<String>),
) -> Result<crate::sync::desired::TemplateSources, String> {
    let mut out = crate::sync::desired::TemplateSources::default();
    for name in cms {
        ctx.api_limiter.acquire().await;
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
        if let Some(cm) = api
            .get_opt(&name)
            .await
            .map_err(|e| format!("error fetching templateFrom data: {e}"))?
        {
            out.config_maps.insert(name, cm.data.unwrap_or_default());
        }
    }
    for name in secrets {
        ctx.secret_limiter.acquire().await;
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
        if let Some(s) = api
            .get_opt(&name)
            .await
            .map_err(|e| format!("error fetching templateFrom data: {e}"))?
        {
            out.secrets.insert(
                name,
                s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
            );
        }
    }
    Ok(out)
}

/// Namespaces as ClusterExternalSecret and ClusterPushSecret selectors see them: name, labels, being deleted.
pub(crate) fn namespace_view(ctx: &Context) -> Vec<(String, std::collections::BTreeMap<String, String>, bool)> {
    ctx.stores
        .namespaces
        .state()
        .iter()
        .map(|n| {
            (
                n.name_any(),
                n.labels().clone(),
                n.metadata.deletion_timestamp.is_some(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_indexes_every_store_an_external_secret_names() {
        let es: ExternalSecret = serde_yaml::from_str(
            "metadata: {name: db, namespace: app}\nspec:\n  secretStoreRef: {name: vault, kind: SecretStore}\n  target: {name: db}\n  data:\n  - {secretKey: a, remoteRef: {key: k}, sourceRef: {storeRef: {name: aws, kind: ClusterSecretStore}}}\n  dataFrom:\n  - {extract: {key: k}, sourceRef: {storeRef: {name: gcp, kind: SecretStore}}}\n",
        )
        .unwrap();
        let stores = derive(&es).stores;
        for (kind, name, ns) in [
            (StoreKind::SecretStore, "vault", "app"),
            (StoreKind::ClusterSecretStore, "aws", ""),
            (StoreKind::SecretStore, "gcp", "app"),
        ] {
            assert!(stores.contains(&store_hash(kind, name)), "{name}");
            assert!(uses_store(&es, kind, name, ns), "{name}");
        }
        assert_eq!(stores.len(), 3);
        // Same name, other kind or namespace: not used.
        assert!(!uses_store(&es, StoreKind::ClusterSecretStore, "vault", ""));
        assert!(!uses_store(&es, StoreKind::SecretStore, "vault", "other"));
        assert!(!stores.contains(&store_hash(StoreKind::ClusterSecretStore, "vault")));
    }

    #[test]
    fn strip_drops_managed_fields_and_kubectls_copy_but_keeps_other_annotations() {
        let mut es: ExternalSecret = serde_yaml::from_str(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: db\n  namespace: app\n  annotations: {kubectl.kubernetes.io/last-applied-configuration: '{}', team: a}\n  managedFields: [{manager: kubectl, operation: Apply}]\nspec: {target: {name: db}, data: []}\n",
        )
        .unwrap();
        strip(&mut es);
        assert!(es.metadata.managed_fields.is_none());
        assert_eq!(
            es.metadata
                .annotations
                .as_ref()
                .map(|a| a.keys().cloned().collect::<Vec<_>>()),
            Some(vec![
                crate::sync::refresh::RESOURCE_VERSION_MEMO.to_string(),
                "team".to_string()
            ])
        );
        let before = es_fingerprint(&es);
        strip(&mut es);
        assert_eq!(es_fingerprint(&es), before, "stripping twice changes nothing");
    }
}
