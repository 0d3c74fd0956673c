//! Wiring: watches (reflectors for ExternalSecrets and stores, metadata-only watches for Secrets and
//! Namespaces), the mapping of their events to work, the worker pools, readiness and graceful shutdown.
//!
//! Events become work as follows:
//! - an ExternalSecret created, or its spec/labels/annotations/finalizers changed → fast lane (status-only
//!   updates are ignored);
//! - a store created, changed, or its readiness changed → the store (fast) and every ExternalSecret using it
//!   (fast), so an ExternalSecret waiting for its store syncs as soon as the store is Ready (ESO #4340);
//! - a managed Secret changed by someone else, or deleted → its ExternalSecret (fast);
//! - a ConfigMap or Secret a `templateFrom` reads changed, created or deleted → every ExternalSecret and
//!   PushSecret using it (fast; `objects`, watches started when a first one needs them);
//! - periodic refreshes (jittered) and error retries (exponential backoff) → slow lane.
pub mod clusterexternalsecret;
pub mod clusterpushsecret;
pub mod externalsecret;
mod fanout;
pub mod generatorstate;
pub(crate) mod generic;
pub mod kit;
pub(crate) mod objects;
pub mod pushsecret;
pub mod secretstore;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use syncret_crds::ClusterExternalSecret;
use syncret_crds::externalsecret::ExternalSecret;
use syncret_crds::labels::{LABEL_MANAGED, LABEL_MANAGED_VALUE};
use syncret_crds::secretstore::{ClusterSecretStore, SecretStore, StoreKind};
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::context::{Context, Key};
use crate::leader::Leadership;
use crate::schedule::{Lane, Scheduler};
pub use kit::{InitGate, Next, Phase};

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
        self.ctx.reads.generators.close().await;
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
    pub gs: reflector::store::Writer<syncret_crds::generator::GeneratorState>,
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

/// An `Api` over every namespace, or over the one the operator is scoped to (`--namespace`).
pub(crate) fn scoped<K>(ctx: &Context) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

/// A watch of `api` with the common settings: default backoff, and objects stripped of what no controller reads.
pub(crate) fn watch_stream<K>(api: Api<K>, cfg: watcher::Config) -> impl Stream<Item = Result<Event<K>, watcher::Error>>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, cfg).default_backoff().map_ok(|e| e.modify(strip))
}

/// The fingerprints of objects seen by one watch: a change of what matters wakes the object, status-only updates
/// do not.
pub(crate) struct Seen<K>(HashMap<K, u64>);

impl<K: Eq + Hash> Seen<K> {
    pub fn new() -> Self {
        Self(HashMap::new())
    }

    /// Whether `key` is new or its fingerprint changed.
    pub fn changed(&mut self, key: K, fingerprint: u64) -> bool {
        self.0.insert(key, fingerprint) != Some(fingerprint)
    }

    /// Whether `key` was known (it is forgotten).
    pub fn gone(&mut self, key: &K) -> bool {
        self.0.remove(key).is_some()
    }
}

/// The watch of a cluster-scoped kind whose controller fans out (ClusterExternalSecret, ClusterPushSecret): kept
/// in `writer`'s cache; a change of what matters (generation, labels, annotations, finalizers, deletion; not the
/// status it writes) or a deletion queues the object (key `("", name)`) in its controller's `queue`.
pub(super) async fn watch_cluster_kind<K>(
    ctx: Arc<Context>,
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    queue: fn(&Context) -> &Scheduler<Key>,
    gate: Arc<InitGate>,
    stop: CancellationToken,
) where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let stream = watch_stream(api, watcher::Config::default()).reflect(writer);
    let mut seen = Seen::new();
    kit::watch(stream, Some(gate), stop, |ev, _| match ev {
        Event::Apply(c) | Event::InitApply(c) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            c.meta().generation.hash(&mut h);
            c.labels().hash(&mut h);
            c.annotations().hash(&mut h);
            c.finalizers().hash(&mut h);
            c.meta().deletion_timestamp.is_some().hash(&mut h);
            if seen.changed(c.name_any(), h.finish()) {
                queue(&ctx).add(Key::new("", c.name_any()), Lane::Fast);
            }
        }
        Event::Delete(c) => {
            seen.gone(&c.name_any());
            queue(&ctx).add(Key::new("", c.name_any()), Lane::Fast);
        }
        Event::Init | Event::InitDone => {}
    })
    .await;
}

/// Starts the watches and, once every watch has listed (and this replica leads), the controllers. Work stops
/// when `shutdown` fires; [`Running::join`] waits for in-flight syncs.
pub fn start(
    ctx: Arc<Context>,
    writers: Writers,
    readiness: Arc<Readiness>,
    leadership: Leadership,
    shutdown: CancellationToken,
) -> Running {
    let Writers {
        ss,
        css,
        ns,
        ces,
        push,
        gs,
    } = writers;
    // Watches of template sources and generic targets start when a first ExternalSecret needs them.
    ctx.dependents.set_stop(shutdown.clone());
    let ces_enabled = ces_enabled(&ctx);
    let watches = 5 + usize::from(ces_enabled) + pushsecret::gates(&ctx);
    let gate = InitGate::new(watches, readiness);
    let spawn = |f: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| tokio::spawn(f);
    let mut tasks = vec![
        spawn(Box::pin(watch_external_secrets(
            ctx.clone(),
            gate.clone(),
            shutdown.clone(),
        ))),
        spawn(Box::pin(watch_stores(
            ctx.clone(),
            scoped::<SecretStore>(&ctx),
            ss,
            StoreKind::SecretStore,
            gate.clone(),
            shutdown.clone(),
        ))),
        spawn(Box::pin(watch_stores(
            ctx.clone(),
            Api::<ClusterSecretStore>::all(ctx.client.clone()),
            css,
            StoreKind::ClusterSecretStore,
            gate.clone(),
            shutdown.clone(),
        ))),
        spawn(Box::pin(watch_namespaces(
            ctx.clone(),
            ns,
            gate.clone(),
            shutdown.clone(),
        ))),
        spawn(Box::pin(watch_managed_secrets(
            ctx.clone(),
            gate.clone(),
            shutdown.clone(),
        ))),
        // Not part of the readiness gate: a cluster without the GeneratorState CRD still runs everything else.
        spawn(Box::pin(generatorstate::watch(ctx.clone(), gs, shutdown.clone()))),
    ];
    if ces_enabled {
        tasks.push(spawn(Box::pin(clusterexternalsecret::watch(
            ctx.clone(),
            ces,
            gate.clone(),
            shutdown.clone(),
        ))));
    } else {
        drop(ces);
    }
    pushsecret::watches(&ctx, push, &gate, &shutdown, &mut tasks);
    if ctx.shards.is_sharded() {
        tasks.push(tokio::spawn(follow_shards(ctx.clone(), gate.clone(), shutdown.clone())));
    }
    tasks.push(tokio::spawn(run_controllers(ctx.clone(), gate, leadership, shutdown)));
    Running { ctx, tasks }
}

fn ces_enabled(ctx: &Context) -> bool {
    ctx.settings.enable_cluster_external_secrets && ctx.settings.namespace.is_none()
}

/// The controllers: each a [`kit::Reconciler`] run by the kit's workers. They start once every watch has listed
/// and the Secret index is primed, and only on the leader (standbys keep their caches warm for a fast takeover).
async fn run_controllers(ctx: Arc<Context>, gate: Arc<InitGate>, leadership: Leadership, stop: CancellationToken) {
    tokio::select! { _ = gate.wait() => {}, _ = stop.cancelled() => return }
    if !leadership.acquired(&stop).await {
        return;
    }
    if ctx.shards.is_sharded() {
        // Each shard's managed Secrets are read when the shard is taken, before its ExternalSecrets are queued.
        ctx.secrets.set_primed();
    } else {
        match prime_secret_index(&ctx, None).await {
            Ok(()) => ctx.secrets.set_primed(),
            Err(e) => tracing::warn!(error = %e, "could not pre-read managed Secrets; they will be read on demand"),
        }
    }
    let (ps, cps) = pushsecret::enabled(&ctx);
    let mut controllers = vec![
        kit::run(Arc::new(externalsecret::ExternalSecrets), &ctx, &stop),
        kit::run(Arc::new(secretstore::Stores), &ctx, &stop),
        kit::run(Arc::new(generatorstate::GeneratorStateController), &ctx, &stop),
    ];
    if ces_enabled(&ctx) {
        controllers.push(kit::run(
            Arc::new(clusterexternalsecret::ClusterExternalSecrets),
            &ctx,
            &stop,
        ));
    }
    if ps {
        controllers.push(kit::run(Arc::new(pushsecret::PushSecrets), &ctx, &stop));
    }
    if cps {
        controllers.push(kit::run(Arc::new(clusterpushsecret::ClusterPushSecrets), &ctx, &stop));
    }
    let mut gauges = tokio::spawn(gauges(ctx.clone(), stop.clone()));
    for c in controllers.into_iter().flatten() {
        let _ = c.await;
    }
    let _ = (&mut gauges).await;
}

/// ExternalSecrets, into the compact cache (not a kube-runtime reflector: see `crate::escache`). With `--shards`,
/// only those of the shards this replica holds are kept (filtered here, client-side: see [`follow_shards`]).
async fn watch_external_secrets(ctx: Arc<Context>, gate: Arc<InitGate>, stop: CancellationToken) {
    let stream = watch_stream(scoped::<ExternalSecret>(&ctx), watcher::Config::default());
    // Children of ClusterExternalSecrets in shards held elsewhere: their fingerprints only, so the cluster unit's
    // holder still hears of a child edited or deleted anywhere.
    let mut children: Seen<Key> = Seen::new();
    kit::watch(stream, Some(gate), stop, |ev, phase| match ev {
        Event::Apply(es) | Event::InitApply(es) => {
            let listing = phase == Phase::Listing;
            if !ctx.shards.accepts(&es.namespace().unwrap_or_default()) {
                if let Some(ces) = clusterexternalsecret::controller_of(&es)
                    && children.changed(es_key(&es), es_fingerprint(&es))
                    && !listing
                {
                    ctx.ces_queue.add(clusterexternalsecret::key(&ces), Lane::Fast);
                }
                return;
            }
            let applied = ctx.external_secrets.apply(&es, es_fingerprint(&es), || derive(&es));
            let k = applied.key;
            // The cache now shows the status we wrote: drop our copy (10k of them add up).
            ctx.es_state.status_seen(&k, es.status.as_ref());
            if applied.changed {
                // What it depends on (template sources, a generic target), watched from now on.
                let deps = crate::sync::dependencies::of_external_secret(&es);
                ctx.dependents
                    .index()
                    .set(&crate::dependents::Dependent::ExternalSecret(k.clone()), &deps);
                if !deps.is_empty() {
                    objects::ensure(&ctx);
                }
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
            children.gone(&k);
            let cached = ctx.external_secrets.deleted(&es);
            ctx.dependents
                .index()
                .remove(&crate::dependents::Dependent::ExternalSecret(k.clone()));
            if cached || ctx.shards.accepts(&k.namespace) {
                ctx.es_queue.add(k, Lane::Fast);
            }
            if let Some(ces) = clusterexternalsecret::controller_of(&es) {
                ctx.ces_queue.add(clusterexternalsecret::key(&ces), Lane::Fast);
            }
        }
        Event::Init => ctx.external_secrets.relist(),
        Event::InitDone => {
            // Deleted while the watch was down: reconciled as gone (metrics, index, leases).
            for k in ctx.external_secrets.relisted() {
                ctx.dependents
                    .index()
                    .remove(&crate::dependents::Dependent::ExternalSecret(k.clone()));
                ctx.es_queue.add(k, Lane::Fast);
            }
        }
    })
    .await;
}

/// Namespaces (metadata only): labels for ClusterSecretStore conditions and the cluster controllers' selectors.
async fn watch_namespaces(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
    gate: Arc<InitGate>,
    stop: CancellationToken,
) {
    let stream = watch_stream(
        Api::<PartialObjectMeta<Namespace>>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .reflect(writer);
    let mut seen = Seen::new();
    kit::watch(stream, Some(gate), stop, |ev, phase| {
        let changed = match ev {
            Event::Apply(n) | Event::InitApply(n) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                n.labels().hash(&mut h);
                n.metadata.deletion_timestamp.is_some().hash(&mut h);
                seen.changed(n.name_any(), h.finish())
            }
            Event::Delete(n) => seen.gone(&n.name_any()),
            Event::Init | Event::InitDone => false,
        };
        // Namespaces come and go rarely; every ClusterExternalSecret re-evaluates its selection.
        if changed && phase == Phase::Watching {
            if ces_enabled(&ctx) {
                for ces in ctx.cluster_external_secrets.state() {
                    ctx.ces_queue
                        .add(clusterexternalsecret::key(&ces.name_any()), Lane::Fast);
                }
            }
            clusterpushsecret::on_namespaces(&ctx);
        }
    })
    .await;
}

/// Managed Secrets (metadata only, no store): route changes made by others back to their ExternalSecret. With
/// `--shards`, selected by label server-side and by shard client-side.
async fn watch_managed_secrets(ctx: Arc<Context>, gate: Arc<InitGate>, stop: CancellationToken) {
    let cfg = watcher::Config::default().labels(&format!("{LABEL_MANAGED}={LABEL_MANAGED_VALUE}"));
    let stream = watcher::watcher(scoped::<PartialObjectMeta<Secret>>(&ctx), cfg).default_backoff();
    kit::watch(stream, Some(gate), stop, |ev, phase| match ev {
        Event::Apply(m) | Event::InitApply(m) if !ctx.shards.accepts(&m.namespace().unwrap_or_default()) => {}
        Event::Delete(m) if !ctx.shards.accepts(&m.namespace().unwrap_or_default()) => {}
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
            if changed && phase == Phase::Watching {
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
        Event::Init | Event::InitDone => {}
    })
    .await;
}

// SecretStores and ClusterSecretStores: wake the store and the ExternalSecrets using it.
fn on_store<K>(ctx: &Arc<Context>, kind: StoreKind, obj: &K, seen: &mut Seen<Key>, deleted: bool)
where
    K: Resource + ResourceExt,
    K: StoreStatus,
{
    let key = Key::new(obj.namespace().unwrap_or_default(), obj.name_any());
    let fp = store_fingerprint(obj.meta().generation, obj.readiness(), &obj.meta().uid);
    let changed = if deleted {
        seen.gone(&key)
    } else {
        seen.changed(key.clone(), fp)
    };
    if !changed {
        return;
    }
    if deleted && let Some(uid) = &obj.meta().uid {
        ctx.reads.forget_store(uid);
        ctx.store_gate.forget(uid);
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
    writer: reflector::store::Writer<K>,
    kind: StoreKind,
    gate: Arc<InitGate>,
    stop: CancellationToken,
) where
    K: Resource<DynamicType = ()> + StoreStatus + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: Send + Sync + 'static,
{
    let stream = watch_stream(api, watcher::Config::default()).reflect(writer);
    let mut seen = Seen::new();
    kit::watch(stream, Some(gate), stop, |ev, _| match ev {
        Event::Apply(s) | Event::InitApply(s) => on_store(&ctx, kind, &s, &mut seen, false),
        Event::Delete(s) => on_store(&ctx, kind, &s, &mut seen, true),
        Event::Init | Event::InitDone => {}
    })
    .await;
}

/// Reads the managed Secrets once (of one namespace, or all), a page at a time, to learn which are intact (data
/// matches its hash) without keeping their data: after a restart, or a shard taken over, no ExternalSecret needs
/// a provider call or a GET to know its Secret is fine.
async fn prime_secret_index(ctx: &Context, namespace: Option<&str>) -> Result<(), kube::Error> {
    let api: Api<Secret> = match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => scoped(ctx),
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

/// Gauges sampled every 2 s: the ExternalSecret queue per lane, parked reconciles, the client cache.
async fn gauges(ctx: Arc<Context>, stop: CancellationToken) {
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
        ctx.metrics.store_parked.set(ctx.store_gate.parked() as i64);
        ctx.metrics.client_cache_size.set(ctx.reads.clients.len() as i64);
        if ctx.shards.is_sharded() {
            shard_gauges(&ctx);
        }
        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(2)) => {}, _ = stop.cancelled() => return }
    }
}

/// `syncret_shard_external_secrets{shard}`: the cache's ExternalSecrets per held shard.
fn shard_gauges(ctx: &Context) {
    let mut counts: std::collections::BTreeMap<crate::shard::Unit, i64> =
        ctx.shards.held().into_iter().map(|u| (u, 0)).collect();
    let mut last: Option<(Arc<str>, crate::shard::Unit)> = None;
    for k in ctx.external_secrets.keys() {
        // Keys of one namespace share its string: hash each namespace once per run of keys.
        let unit = match &last {
            Some((ns, u)) if Arc::ptr_eq(ns, &k.namespace) => *u,
            _ => {
                let u = ctx.shards.unit_of(&k.namespace);
                last = Some((k.namespace.clone(), u));
                u
            }
        };
        *counts.entry(unit).or_default() += 1;
    }
    let gauge = &ctx.metrics.shard_external_secrets;
    gauge.reset();
    for (unit, n) in counts {
        gauge.with_label_values(&[&unit.label()]).set(n);
    }
}

/// With `--shards`: follows the units this replica holds. A unit given up (or lost) leaves the caches, indexes,
/// queues and per-object metrics at once; a unit taken is primed — its namespaces' managed Secrets read (data
/// hashed and dropped), then their ExternalSecrets listed into the cache and queued — while the watches already
/// keep its events, so nothing changed in between is missed. Lists are per namespace (server-side), so taking
/// a shard reads that shard's objects, not the cluster's. The cluster unit brings store validation and the
/// cluster controllers' keys.
async fn follow_shards(ctx: Arc<Context>, gate: Arc<InitGate>, stop: CancellationToken) {
    let mut changes = ctx.shards.subscribe();
    tokio::select! { _ = gate.wait() => {}, _ = stop.cancelled() => return }
    // The units primed, with their grant.
    let mut current: std::collections::BTreeMap<crate::shard::Unit, u64> = Default::default();
    loop {
        let now = changes.borrow_and_update().clone();
        // Given up, or given up and taken again since the last look (its cache missed events meanwhile).
        current.retain(|unit, grant| {
            let kept = now.get(unit) == Some(grant);
            if !kept {
                evict(&ctx, *unit);
            }
            kept
        });
        for (unit, grant) in &now {
            if current.contains_key(unit) {
                continue;
            }
            // A unit given up while others wait to be primed leaves at once, not after them (priming a shard of
            // thousands of ExternalSecrets takes seconds).
            if changes.has_changed().unwrap_or(false) {
                break;
            }
            let started = std::time::Instant::now();
            let n = prime(&ctx, *unit).await;
            tracing::info!(%unit, external_secrets = n, took = ?started.elapsed(), "sharding: took over");
            current.insert(*unit, *grant);
        }
        // Objects a watch event put in the cache just as their unit was evicted.
        sweep(&ctx);
        if changes.has_changed().unwrap_or(false) {
            continue;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = stop.cancelled() => return,
        }
    }
}

/// Drops cached ExternalSecrets of units this replica does not hold. [`evict`] drops a unit's objects when it is
/// given up; a watch event that passed the `accepts` check just before that can still insert one afterwards.
fn sweep(ctx: &Context) {
    let own = &ctx.shards;
    let gone = forget_external_secrets(ctx, |k| own.accepts(&k.namespace));
    if gone > 0 {
        tracing::debug!(external_secrets = gone, "sharding: swept objects of units given up");
    }
}

/// Drops the cached ExternalSecrets `keep` refuses, and their queue entries; how many.
fn forget_external_secrets(ctx: &Context, keep: impl Fn(&Key) -> bool) -> usize {
    let gone = ctx.external_secrets.retain(keep);
    for k in &gone {
        ctx.es_queue.forget(k);
    }
    gone.len()
}

/// Drops everything of a unit this replica no longer holds (see [`follow_shards`]).
fn evict(ctx: &Context, unit: crate::shard::Unit) {
    use crate::shard::Unit;
    let own = &ctx.shards;
    let keep = |k: &Key| own.unit_of(&k.namespace) != unit;
    if unit == Unit::Cluster {
        for m in [
            &ctx.metrics.secret_stores,
            &ctx.metrics.cluster_secret_stores,
            &ctx.metrics.cluster_external_secrets,
            &ctx.metrics.cluster_push_secrets,
        ] {
            m.retain(|_| false);
        }
        return;
    }
    let gone = forget_external_secrets(ctx, keep);
    ctx.es_state.retain(keep);
    ctx.metrics.external_secrets.retain(keep);
    ctx.metrics.push_secrets.retain(keep);
    ctx.push.retain_written(keep);
    ctx.secrets.retain_namespaces(|ns| own.unit_of(ns) != unit);
    for ps in ctx.push.push_secrets.state() {
        let k = Key::new(ps.namespace().unwrap_or_default(), ps.name_any());
        if !keep(&k) {
            ctx.push.queue.forget(&k);
        }
    }
    tracing::info!(%unit, external_secrets = gone, "sharding: handed over");
}

/// Reads a unit just taken into the caches and queues its objects (see [`follow_shards`]); the number of
/// ExternalSecrets queued.
async fn prime(ctx: &Arc<Context>, unit: crate::shard::Unit) -> usize {
    use crate::shard::Unit;
    if unit == Unit::Cluster {
        for s in ctx.stores.secret_stores.state() {
            ctx.store_queue.add(
                (
                    StoreKind::SecretStore,
                    Key::new(s.namespace().unwrap_or_default(), s.name_any()),
                ),
                Lane::Fast,
            );
        }
        for s in ctx.stores.cluster_secret_stores.state() {
            ctx.store_queue
                .add((StoreKind::ClusterSecretStore, Key::new("", s.name_any())), Lane::Fast);
        }
        let (_, cps) = pushsecret::enabled(ctx);
        if ces_enabled(ctx) {
            for c in ctx.cluster_external_secrets.state() {
                ctx.ces_queue.add(clusterexternalsecret::key(&c.name_any()), Lane::Fast);
            }
        }
        if cps {
            for c in ctx.push.cluster_push_secrets.state() {
                ctx.push.cluster_queue.add(Key::new("", c.name_any()), Lane::Fast);
            }
        }
        return 0;
    }
    let namespaces: Vec<String> = ctx
        .stores
        .namespaces
        .state()
        .iter()
        .map(|n| n.name_any())
        .filter(|n| ctx.settings.namespace.as_ref().is_none_or(|only| only == n))
        .filter(|n| ctx.shards.unit_of(n) == unit)
        .collect();
    let mut queued = 0;
    ctx.external_secrets.begin_priming();
    for ns in &namespaces {
        if !ctx.shards.accepts(ns) {
            break; // given up meanwhile
        }
        if let Err(e) = prime_secret_index(ctx, Some(ns)).await {
            tracing::warn!(namespace = %ns, error = %e, "sharding: could not pre-read managed Secrets; they are read on demand");
        }
        match prime_external_secrets(ctx, ns).await {
            Ok(n) => queued += n,
            Err(e) => {
                // The watch still delivers every change; a relist of the watch would bring the rest.
                tracing::warn!(namespace = %ns, error = %e, "sharding: could not list ExternalSecrets");
            }
        }
    }
    ctx.external_secrets.end_priming();
    let push = ctx.settings.enable_push_secrets;
    for ps in ctx.push.push_secrets.state().into_iter().filter(|_| push) {
        let k = Key::new(ps.namespace().unwrap_or_default(), ps.name_any());
        if ctx.shards.unit_of(&k.namespace) == unit {
            ctx.push.queue.add(k, Lane::Fast);
        }
    }
    queued
}

/// Lists one namespace's ExternalSecrets into the cache and queues them (settled ones in the slow lane, as at
/// start-up); the number queued.
async fn prime_external_secrets(ctx: &Context, namespace: &str) -> Result<usize, kube::Error> {
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), namespace);
    let mut lp = ListParams::default().limit(500);
    let mut queued = 0;
    loop {
        let page = api.list(&lp).await?;
        for mut es in page.items {
            strip(&mut es);
            if let Some(applied) = ctx
                .external_secrets
                .apply_listed(&es, es_fingerprint(&es), || derive(&es))
            {
                ctx.es_state.status_seen(&applied.key, es.status.as_ref());
                let settled = !crate::sync::refresh::changed_since_sync(&es) && is_ready(&es);
                ctx.es_queue
                    .add(applied.key, if settled { Lane::Slow } else { Lane::Fast });
                queued += 1;
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => return Ok(queued),
        }
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
/// `namespace`; a missing one is left out (the template reports what it lacks). A source the watch shows at the
/// version last read is not read again ([`crate::dependents`]): a template ConfigMap shared by thousands of
/// ExternalSecrets costs one GET per change, not one per render.
pub(crate) async fn read_template_sources(
    ctx: &Context,
    namespace: &str,
    (cms, secrets): (Vec<String>, Vec<String>),
) -> Result<crate::sync::desired::TemplateSources, kube::Error> {
    use crate::sync::dependencies::{ObjectKind, ObjectRef};
    let mut out = crate::sync::desired::TemplateSources::default();
    for name in cms {
        let object = ObjectRef::new(ObjectKind::ConfigMap, namespace, name.as_str());
        let cached = ctx.dependents.index().cached_at(&object);
        let data = match cached {
            Some((v, d)) => {
                out.versions.push((object, Some(v)));
                Some(d)
            }
            None => {
                ctx.api_limiter.acquire().await;
                let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
                let found = api.get_opt(&name).await?.map(|cm| {
                    let data: crate::dependents::Data = (cm.data.unwrap_or_default().into_iter())
                        .map(|(k, v)| (k, v.into_bytes()))
                        .collect();
                    let data = Arc::new(data);
                    let rv = cm.metadata.resource_version.unwrap_or_default();
                    ctx.dependents.index().keep(&object, &rv, data.clone());
                    (crate::dependents::rv(&rv), data)
                });
                out.versions.push((object, found.as_ref().map(|(v, _)| *v)));
                found.map(|(_, d)| d)
            }
        };
        if let Some(d) = data {
            // ConfigMap data is UTF-8 (the apiserver refuses anything else).
            let text = (d.iter())
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            out.config_maps.insert(name, text);
        }
    }
    for name in secrets {
        let object = ObjectRef::new(ObjectKind::Secret, namespace, name.as_str());
        let cached = ctx.dependents.index().cached_at(&object);
        let data = match cached {
            Some((v, d)) => {
                out.versions.push((object, Some(v)));
                Some(d)
            }
            None => {
                ctx.secret_limiter.acquire().await;
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
                let found = api.get_opt(&name).await?.map(|s| {
                    let data: crate::dependents::Data = (s.data.unwrap_or_default().into_iter())
                        .map(|(k, v)| (k, v.0))
                        .collect();
                    let data = Arc::new(data);
                    let rv = s.metadata.resource_version.unwrap_or_default();
                    ctx.dependents.index().keep(&object, &rv, data.clone());
                    (crate::dependents::rv(&rv), data)
                });
                out.versions.push((object, found.as_ref().map(|(v, _)| *v)));
                found.map(|(_, d)| d)
            }
        };
        if let Some(d) = data {
            out.secrets.insert(name, (*d).clone());
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
