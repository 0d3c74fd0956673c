//! The PushSecret controller: watches PushSecrets (and, once there is one, the metadata of Secrets, so a changed
//! source is pushed within seconds), and reconciles each as a thin shell over [`crate::push`]: gather the source
//! Secret(s), the stores (class, flood gate and ClusterSecretStore conditions as for ExternalSecrets, through
//! [`crate::stores::Stores::resolve`]) and shared provider clients ([`crate::reads::Reads::client_for`]); push
//! what [`crate::push::entries`] says; delete what is no longer pushed (`deletionPolicy: Delete`) unless a PushSecret
//! still pushes it ([`crate::push::guard`], ESO #5062); write ESO's status and events.
//!
//! Differences from ESO, on purpose: a failed push is retried with backoff until it succeeds (ESO waits for the
//! next refresh); `updatePolicy: IfNotExists` records a value in `syncedPushSecrets` only when this PushSecret
//! pushed it (ESO records, and with `Delete` later deletes, values that existed before); a store that no longer
//! exists does not block deletion (its values are reported in a Warning event and left in place).
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::{PartialObjectMeta, Selector, SelectorExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use rand::Rng;
use syncret_crds::condition::{PushSecretStatusCondition, push_reason};
use syncret_crds::labels::{FINALIZER_PUSH_SECRET, FINALIZER_SECRET_STORE};
use syncret_crds::pushsecret::{
    ClusterPushSecret, PushSecret, PushSecretDeletionPolicy, PushSecretStatus, PushSecretUpdatePolicy,
    SyncedPushSecretsMap,
};
use syncret_crds::secretstore::{SecretStoreSpec, StoreKind};
use syncret_providers::StoreInfo;
use tokio_util::sync::CancellationToken;

use super::InitGate;
use super::externalsecret::{Failures, Next};
use crate::context::{Context, Key};
use crate::events::Kind;
use crate::push::entries::{self, Target};
use crate::push::guard::{self, Claim};
use crate::push::sources::SourceIndex;
use crate::push::{refresh, template};
use crate::schedule::{Lane, Scheduler, backoff, jittered};
use crate::stores::StoreProblem;
use crate::sync::desired::TemplateSources;
use crate::sync::fetch::StoreId;

/// Controller names in metrics (`controller_runtime_reconcile_total{controller}`).
pub const PS_CONTROLLER: &str = "pushsecret";

/// Everything the PushSecret and ClusterPushSecret controllers share (one field of the [`Context`]).
pub struct PushState {
    pub push_secrets: Store<PushSecret>,
    pub cluster_push_secrets: Store<ClusterPushSecret>,
    pub queue: Scheduler<Key>,
    pub cluster_queue: Scheduler<Key>,
    pub sources: Mutex<SourceIndex>,
    /// Statuses written and not yet seen by the reflector (read by the next reconcile and by the deletion guard).
    written: Mutex<HashMap<Key, PushSecretStatus>>,
    source_watch: std::sync::atomic::AtomicBool,
}

/// The reflector writers the watches feed.
pub struct PushWriters {
    ps: reflector::store::Writer<PushSecret>,
    cps: reflector::store::Writer<ClusterPushSecret>,
}

impl PushState {
    pub fn new() -> (Self, PushWriters) {
        let (push_secrets, ps) = reflector::store();
        let (cluster_push_secrets, cps) = reflector::store();
        (
            Self {
                push_secrets,
                cluster_push_secrets,
                queue: Scheduler::new(),
                cluster_queue: Scheduler::new(),
                sources: Mutex::new(SourceIndex::default()),
                written: Mutex::new(HashMap::new()),
                source_watch: std::sync::atomic::AtomicBool::new(false),
            },
            PushWriters { ps, cps },
        )
    }

    fn index(&self) -> std::sync::MutexGuard<'_, SourceIndex> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn written(&self) -> std::sync::MutexGuard<'_, HashMap<Key, PushSecretStatus>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The status this operator last wrote for `key`, else the reflector's.
    fn status_of(&self, key: &Key, ps: &PushSecret) -> Option<PushSecretStatus> {
        self.written().get(key).cloned().or_else(|| ps.status.clone())
    }

    /// The PushSecret with the status we last wrote, if the reflector has not caught up with it yet.
    fn with_written_status(&self, key: &Key, ps: Arc<PushSecret>) -> Arc<PushSecret> {
        let mut written = self.written();
        match written.get(key) {
            Some(w) if ps.status.as_ref() == Some(w) => {
                written.remove(key);
                ps
            }
            Some(w) => {
                let mut newer = (*ps).clone();
                newer.status = Some(w.clone());
                Arc::new(newer)
            }
            None => ps,
        }
    }
}

/// Whether the PushSecret controllers run, and the ClusterPushSecret one (cluster-wide operators only).
pub(super) fn enabled(ctx: &Context) -> (bool, bool) {
    let ps = ctx.settings.enable_push_secrets;
    (
        ps,
        ps && ctx.settings.enable_cluster_push_secrets && ctx.settings.namespace.is_none(),
    )
}

/// How many watches [`start`] adds to the readiness gate.
pub(super) fn gates(ctx: &Context) -> usize {
    let (ps, cps) = enabled(ctx);
    usize::from(ps) + usize::from(cps)
}

fn ps_key(ps: &PushSecret) -> Key {
    Key::new(ps.namespace().unwrap_or_default(), ps.name_any())
}

/// Hash of what makes a PushSecret worth reconciling (not its status).
fn fingerprint(ps: &PushSecret) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ps.metadata.generation.hash(&mut h);
    ps.metadata.labels.hash(&mut h);
    ps.metadata.annotations.hash(&mut h);
    ps.metadata.finalizers.hash(&mut h);
    ps.metadata.deletion_timestamp.is_some().hash(&mut h);
    ps.metadata.uid.hash(&mut h);
    h.finish()
}

/// A number in [0, 1) from the spec: the share of jitter its refreshes get (as for ExternalSecrets).
fn spec_unit(ps: &PushSecret) -> f64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(&ps.spec).unwrap_or_default().hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Starts the PushSecret (and ClusterPushSecret) watches and, once `gate` opens, their workers.
pub(super) fn start(
    ctx: &Arc<Context>,
    writers: PushWriters,
    gate: Arc<InitGate>,
    leadership: crate::leader::Leadership,
    shutdown: CancellationToken,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) {
    let (ps_on, cps_on) = enabled(ctx);
    if !ps_on {
        return;
    }
    tasks.push(tokio::spawn(watch_push_secrets(
        ctx.clone(),
        writers.ps,
        gate.clone(),
        shutdown.clone(),
    )));
    if cps_on {
        tasks.push(tokio::spawn(super::clusterpushsecret::watch(
            ctx.clone(),
            writers.cps,
            gate.clone(),
            shutdown.clone(),
        )));
    }
    let ctx = ctx.clone();
    tasks.push(tokio::spawn(async move {
        tokio::select! { _ = gate.wait() => {}, _ = shutdown.cancelled() => return }
        // Only the leader pushes; standbys keep their caches warm.
        if !leadership.acquired(&shutdown).await {
            return;
        }
        let failures = Arc::new(Failures::default());
        let mut workers = Vec::new();
        for _ in 0..ctx.settings.concurrent.max(1) {
            workers.push(tokio::spawn(worker(ctx.clone(), failures.clone())));
        }
        if cps_on {
            workers.push(tokio::spawn(super::clusterpushsecret::worker(ctx.clone())));
        }
        ctx.metrics.workers_started(&[
            (PS_CONTROLLER, ctx.settings.concurrent.max(1)),
            (super::clusterpushsecret::CPS_CONTROLLER, usize::from(cps_on)),
        ]);
        workers.push(tokio::spawn(queue_gauges(ctx.clone(), shutdown.clone())));
        shutdown.cancelled().await;
        ctx.push.queue.close();
        ctx.push.cluster_queue.close();
        for w in workers {
            let _ = w.await;
        }
    }));
}

async fn watch_push_secrets(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<PushSecret>,
    gate: Arc<InitGate>,
    stop: CancellationToken,
) {
    let api: Api<PushSecret> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .map_ok(|e| e.modify(super::strip))
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let mut listing = true;
    let mut seen: HashMap<Key, u64> = HashMap::new();
    // The stores each PushSecret with deletionPolicy Delete holds (their finalizer follows it).
    let mut holds: HashMap<Key, Vec<(StoreKind, Key)>> = HashMap::new();
    loop {
        let ev = tokio::select! { e = stream.next() => e, _ = stop.cancelled() => break };
        let Some(ev) = ev else { break };
        let Ok(ev) = ev else { continue };
        match ev {
            Event::Apply(ps) | Event::InitApply(ps) => {
                let key = ps_key(&ps);
                ctx.push.index().set(&key, &ps);
                start_source_watch(&ctx, &stop);
                let fp = fingerprint(&ps);
                if seen.insert(key.clone(), fp) != Some(fp) {
                    ctx.push.queue.add(key.clone(), Lane::Fast);
                    if !listing && let Some(cps) = super::clusterpushsecret::controller_of(&ps) {
                        ctx.push.cluster_queue.add(Key::new("", cps), Lane::Fast);
                    }
                }
                let now = held_stores(&ctx, &ps);
                let before = holds.insert(key, now.clone()).unwrap_or_default();
                if !listing && before != now {
                    for s in before.into_iter().chain(now) {
                        ctx.store_queue.add(s, Lane::Fast);
                    }
                }
            }
            Event::Delete(ps) => {
                let key = ps_key(&ps);
                ctx.push.index().remove(&key);
                seen.remove(&key);
                for s in holds.remove(&key).unwrap_or_default() {
                    ctx.store_queue.add(s, Lane::Fast);
                }
                ctx.push.queue.add(key, Lane::Fast);
                if let Some(cps) = super::clusterpushsecret::controller_of(&ps) {
                    ctx.push.cluster_queue.add(Key::new("", cps), Lane::Fast);
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
}

async fn queue_gauges(ctx: Arc<Context>, stop: CancellationToken) {
    loop {
        for (name, q) in [
            (PS_CONTROLLER, &ctx.push.queue),
            (super::clusterpushsecret::CPS_CONTROLLER, &ctx.push.cluster_queue),
        ] {
            let s = q.stats();
            ctx.metrics
                .workqueue_depth
                .with_label_values(&[name])
                .set((s.fast + s.slow) as i64);
        }
        tokio::select! { _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}, _ = stop.cancelled() => return }
    }
}

/// Starts the metadata-only Secret watch the first time a PushSecret exists (an operator without PushSecrets
/// never lists every Secret).
fn start_source_watch(ctx: &Arc<Context>, stop: &CancellationToken) {
    if ctx.push.index().is_empty() || ctx.push.source_watch.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    tokio::spawn(watch_sources(ctx.clone(), stop.clone()));
}

async fn watch_sources(ctx: Arc<Context>, stop: CancellationToken) {
    let api: Api<PartialObjectMeta<Secret>> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    loop {
        let ev = tokio::select! { e = stream.next() => e, _ = stop.cancelled() => break };
        let Some(ev) = ev else { break };
        let Ok(ev) = ev else { continue };
        let seen = |m: &PartialObjectMeta<Secret>, listed: bool| {
            let key = Key::new(m.namespace().unwrap_or_default(), m.name_any());
            let rv = m.resource_version().unwrap_or_default();
            ctx.push.index().secret_seen(&key, m.labels(), &rv, listed)
        };
        let woken = match ev {
            Event::Apply(m) => seen(&m, false),
            Event::InitApply(m) => seen(&m, true),
            Event::Delete(m) => {
                let key = Key::new(m.namespace().unwrap_or_default(), m.name_any());
                ctx.push.index().secret_deleted(&key, m.labels())
            }
            Event::Init | Event::InitDone => Vec::new(),
        };
        for k in woken {
            ctx.push.queue.add(k, Lane::Fast);
        }
    }
}

/// A store changed (created, spec or readiness): wake the PushSecrets that use it.
pub(super) fn on_store(ctx: &Context, kind: StoreKind, name: &str, namespace: &str, labels: &BTreeMap<String, String>) {
    if !ctx.settings.enable_push_secrets {
        return;
    }
    for ps in ctx.push.push_secrets.state() {
        let ns = ps.namespace().unwrap_or_default();
        if kind == StoreKind::SecretStore && ns != namespace {
            continue;
        }
        let uses = ps.spec.secret_store_refs.iter().any(|r| {
            r.kind == kind
                && (r.name == name
                    || r.label_selector
                        .as_ref()
                        .and_then(|s| Selector::try_from(s.clone()).ok())
                        .is_some_and(|s| s.matches(labels)))
        });
        if uses {
            ctx.push.queue.add(ps_key(&ps), Lane::Fast);
        }
    }
}

/// Whether the PushSecret holds the store: it has `deletionPolicy: Delete` and references the store (by name or
/// label) or lists it in `syncedPushSecrets` (ESO's `hasPushSecretsWithDeletePolicy`).
fn holds_store(
    ctx: &Context,
    ps: &PushSecret,
    kind: StoreKind,
    name: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let ps_ns = ps.namespace().unwrap_or_default();
    if ps.spec.deletion_policy != PushSecretDeletionPolicy::Delete
        || (kind == StoreKind::SecretStore && ps_ns != namespace)
    {
        return false;
    }
    let by_ref = ps.spec.secret_store_refs.iter().any(|r| {
        r.kind == kind
            && if r.name.is_empty() {
                r.label_selector
                    .as_ref()
                    .and_then(|s| Selector::try_from(s.clone()).ok())
                    .is_some_and(|s| s.matches(labels))
            } else {
                r.name == name
            }
    });
    let skey = entries::store_key(kind, name);
    by_ref
        || ctx
            .push
            .status_of(&ps_key(ps), ps)
            .is_some_and(|st| st.synced_push_secrets.contains_key(&skey))
}

/// The stores (store-queue keys) a PushSecret holds now.
fn held_stores(ctx: &Context, ps: &PushSecret) -> Vec<(StoreKind, Key)> {
    if ps.spec.deletion_policy != PushSecretDeletionPolicy::Delete {
        return Vec::new();
    }
    let ns = ps.namespace().unwrap_or_default();
    let mut out: Vec<(StoreKind, Key)> = Vec::new();
    for s in ctx.stores.secret_stores.state() {
        let sns = s.namespace().unwrap_or_default();
        if sns == ns && holds_store(ctx, ps, StoreKind::SecretStore, &s.name_any(), &sns, s.labels()) {
            out.push((StoreKind::SecretStore, Key::new(sns, s.name_any())));
        }
    }
    for s in ctx.stores.cluster_secret_stores.state() {
        if holds_store(ctx, ps, StoreKind::ClusterSecretStore, &s.name_any(), "", s.labels()) {
            out.push((StoreKind::ClusterSecretStore, Key::new("", s.name_any())));
        }
    }
    out
}

/// The store finalizer (`secretstore.externalsecrets.io/finalizer`, as ESO): held while a PushSecret with
/// `deletionPolicy: Delete` uses the store, so the store outlives it (a namespace being deleted takes both) and
/// the pushed values can still be deleted through it. Called by the store reconcile.
pub async fn store_finalizer(
    ctx: &Context,
    kind: StoreKind,
    key: &Key,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<(), kube::Error> {
    if !ctx.settings.enable_push_secrets {
        return Ok(());
    }
    let labels = meta.labels.clone().unwrap_or_default();
    let needed = ctx
        .push
        .push_secrets
        .state()
        .iter()
        .any(|ps| holds_store(ctx, ps, kind, &key.name, &key.namespace, &labels));
    let finalizers = meta.finalizers.clone().unwrap_or_default();
    let has = finalizers.iter().any(|f| f == FINALIZER_SECRET_STORE);
    // No new finalizer on an object being deleted (the apiserver refuses it).
    if needed == has || (needed && meta.deletion_timestamp.is_some()) {
        return Ok(());
    }
    let mut finalizers: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER_SECRET_STORE).collect();
    if needed {
        finalizers.push(FINALIZER_SECRET_STORE.into());
    }
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": meta.resource_version}});
    ctx.api_limiter.acquire().await;
    let res = match kind {
        StoreKind::SecretStore => Api::<syncret_crds::SecretStore>::namespaced(ctx.client.clone(), &key.namespace)
            .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ()),
        StoreKind::ClusterSecretStore => Api::<syncret_crds::ClusterSecretStore>::all(ctx.client.clone())
            .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ()),
    };
    match res {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}

async fn worker(ctx: Arc<Context>, failures: Arc<Failures>) {
    while let Some((key, _lane)) = ctx.push.queue.next().await {
        let start = Instant::now();
        let next = reconcile(&ctx, &key).await;
        ctx.metrics
            .reconciled(PS_CONTROLLER, !matches!(next, Next::Retry(_)), start.elapsed());
        ctx.push.queue.done(&key);
        match next {
            Next::After(Some(d)) => {
                failures.reset(&key);
                let unit = ctx
                    .push
                    .push_secrets
                    .get(&ObjectRef::new(&key.name).within(&key.namespace))
                    .map(|ps| spec_unit(&ps))
                    .unwrap_or_else(|| rand::rng().random::<f64>());
                let d = jittered(d, ctx.settings.refresh_jitter, unit);
                ctx.push.queue.add_after(key, Lane::Slow, d);
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
                ctx.push
                    .queue
                    .add_after(key, Lane::Slow, d.max(at_least.unwrap_or_default()));
            }
        }
    }
}

/// One failure: the message names fields, keys and stores, never values.
struct Failure {
    message: String,
    retry: bool,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        retry: true,
    }
}

fn fail_final(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        retry: false,
    }
}

fn object_ref(ps: &PushSecret) -> ObjectReference {
    ps.object_ref(&())
}

fn has_finalizer(ps: &PushSecret) -> bool {
    ps.finalizers().iter().any(|f| f == FINALIZER_PUSH_SECRET)
}

/// Reconciles one PushSecret.
pub async fn reconcile(ctx: &Arc<Context>, key: &Key) -> Next {
    let start = Instant::now();
    let Some(ps) = ctx
        .push
        .push_secrets
        .get(&ObjectRef::new(&key.name).within(&key.namespace))
    else {
        ctx.metrics.push_secrets.remove(key);
        ctx.push.written().remove(key);
        return Next::Idle;
    };
    let ps = ctx.push.with_written_status(key, ps);
    let next = if ps.metadata.deletion_timestamp.is_some() {
        finalize(ctx, &ps, key).await
    } else {
        sync(ctx, &ps, key).await
    };
    ctx.metrics
        .push_secrets
        .reconciled(key, !matches!(next, Next::Retry(_)), start.elapsed());
    next
}

/// Whether this operator's controller class handles the PushSecret: one of its stores (referenced, or in its
/// status) is of this class; or none of them exists (then nobody else does either). A PushSecret of another
/// class is not touched at all: no finalizer, status or deletion.
fn is_ours(ctx: &Context, ps: &PushSecret, ns: &str) -> bool {
    let class = &ctx.settings.controller_class;
    let mut seen: Vec<(StoreKind, String)> = Vec::new();
    for r in &ps.spec.secret_store_refs {
        match &r.label_selector {
            Some(sel) => {
                let Ok(sel) = Selector::try_from(sel.clone()) else {
                    continue;
                };
                match r.kind {
                    StoreKind::SecretStore => seen.extend(
                        ctx.stores
                            .secret_stores
                            .state()
                            .iter()
                            .filter(|s| s.namespace().as_deref() == Some(ns) && sel.matches(s.labels()))
                            .map(|s| (r.kind, s.name_any())),
                    ),
                    StoreKind::ClusterSecretStore => seen.extend(
                        ctx.stores
                            .cluster_secret_stores
                            .state()
                            .iter()
                            .filter(|s| sel.matches(s.labels()))
                            .map(|s| (r.kind, s.name_any())),
                    ),
                }
            }
            None => seen.push((r.kind, r.name.clone())),
        }
    }
    if let Some(st) = &ps.status {
        seen.extend(
            st.synced_push_secrets
                .keys()
                .filter_map(|k| entries::parse_store_key(k))
                .map(|(kind, name)| (kind, name.to_string())),
        );
    }
    let mut foreign = false;
    for (kind, name) in seen {
        if let Some((_, spec, _)) = store_view(ctx, ns, kind, &name) {
            if spec.controller.is_empty() || spec.controller == *class {
                return true;
            }
            foreign = true;
        }
    }
    !foreign
}

async fn sync(ctx: &Arc<Context>, ps: &Arc<PushSecret>, key: &Key) -> Next {
    let now = Utc::now();
    if !is_ours(ctx, ps, &key.namespace) {
        return Next::Idle;
    }
    // A finalizer only with deletionPolicy Delete (the remote side effect); removed when the policy changes.
    let delete_policy = ps.spec.deletion_policy == PushSecretDeletionPolicy::Delete;
    if delete_policy != has_finalizer(ps) {
        match set_finalizer(ctx, ps, delete_policy).await {
            Ok(()) => {}
            // The reflector is behind (our own status write): try again with the newer object.
            Err(kube::Error::Api(s)) if s.code == 409 => return Next::Retry(None),
            Err(e) => {
                return failed(ctx, ps, key, fail(format!("could not update finalizers: {e}")), None).await;
            }
        }
    }
    let problems = ps.spec.validate();
    if !problems.is_empty() {
        let msg = syncret_crds::validate::join(&problems);
        return failed(ctx, ps, key, fail_final(format!("invalid PushSecret: {msg}")), None).await;
    }
    if ps.spec.selector.generator_ref.is_some() {
        return failed(
            ctx,
            ps,
            key,
            fail_final("spec.selector.generatorRef: generators are not supported by syncret; push a Secret (spec.selector.secret)"),
            None,
        )
        .await;
    }
    let dirty = ctx.push.index().take_dirty(key);
    if !dirty && !refresh::failed_last_time(ps) && !refresh::should_refresh(ps, now) {
        return Next::After(refresh::next_check(ps, now));
    }
    if let Err(e) = entries::check_store_refs(&ps.spec) {
        return failed(ctx, ps, key, fail_final(e), None).await;
    }
    let old = ctx.push.status_of(key, ps).unwrap_or_default();

    // The source Secret(s).
    let secrets = match read_sources(ctx, ps, &key.namespace).await {
        Ok(s) => s,
        Err(SourceError::NotFound(name))
            if delete_policy && !old.synced_push_secrets.is_empty() && ps.spec.selector.secret.is_some() =>
        {
            tracing::info!(pushsecret = %key, secret = %name, "source secret deleted, cleaning up provider secrets");
            return source_deleted(ctx, ps, key, &old.synced_push_secrets).await;
        }
        Err(e) => return failed(ctx, ps, key, fail(format!("could not get source secret: {e}")), None).await,
    };
    // The stores.
    let stores = match resolve_stores(ctx, ps, &key.namespace) {
        Ok(s) => s,
        // Applied together with its store (one GitOps commit): wait for the store's first validation (its watch
        // wakes us) rather than report a failure that is only a matter of ordering. A pending change stays pending.
        Err(Unresolved::Validating) => {
            if dirty {
                ctx.push.index().mark_dirty(key);
            }
            return Next::After(Some(crate::stores::VALIDATION_RECHECK));
        }
        Err(Unresolved::Failed(f)) => return failed(ctx, ps, key, f, None).await,
    };
    if stores.is_empty() {
        // Only stores of other controller classes (or none left): not ours to push.
        return Next::Idle;
    }
    let targets: Vec<Target<'_>> = stores.iter().map(StoreTarget::target).collect();
    if let Err(e) = entries::check_data_to_selects(&ps.spec, &targets) {
        return failed(ctx, ps, key, fail_final(e), None).await;
    }
    let tpl_sources = match template_sources(ctx, ps, &key.namespace).await {
        Ok(s) => s,
        Err(e) => return failed(ctx, ps, key, fail(e), None).await,
    };

    // Push.
    let mut synced = SyncedPushSecretsMap::new();
    let pushed = push_all(
        ctx,
        ps,
        key,
        &stores,
        &secrets,
        &tpl_sources,
        &old.synced_push_secrets,
        &mut synced,
    )
    .await;
    if let Err(f) = pushed {
        ctx.push.index().mark_dirty(key);
        let mut merged = old.synced_push_secrets.clone();
        for (s, m) in &synced {
            merged.entry(s.clone()).or_default().extend(m.clone());
        }
        return failed(ctx, ps, key, f, Some(merged)).await;
    }

    // What is no longer pushed: deleted (deletionPolicy Delete) unless still pushed by someone.
    let mut stale = SyncedPushSecretsMap::new();
    for (s, m) in &old.synced_push_secrets {
        for (r, d) in m {
            if !synced.get(s).is_some_and(|n| n.contains_key(r)) {
                stale.entry(s.clone()).or_default().insert(r.clone(), d.clone());
            }
        }
    }
    if delete_policy && !stale.is_empty() {
        let mut claims = claims_of_others(ctx, key);
        claims.extend(claims_in(ctx, &key.namespace, &format!("{key}"), &synced));
        if let Err((f, left)) = delete_entries(ctx, ps, key, stale, &claims).await {
            let mut merged = synced.clone();
            for (s, m) in left {
                merged.entry(s).or_default().extend(m);
            }
            return failed(
                ctx,
                ps,
                key,
                Failure {
                    message: format!("Failed to Delete Secrets from Provider: {}", f.message),
                    retry: f.retry,
                },
                Some(merged),
            )
            .await;
        }
    }
    succeeded(ctx, ps, key, synced, now).await
}

enum SourceError {
    NotFound(String),
    Other(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::NotFound(name) => write!(f, "Secret {name:?} not found"),
            SourceError::Other(e) => f.write_str(e),
        }
    }
}

/// The source Secrets, sorted by name: the one named, or those matching the label selector.
async fn read_sources(ctx: &Context, ps: &PushSecret, ns: &str) -> Result<Vec<Secret>, SourceError> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(sel) = &ps.spec.selector.secret else {
        return Err(SourceError::Other("no secret selector provided".into()));
    };
    ctx.secret_limiter.acquire().await;
    let mut secrets = if !sel.name.is_empty() {
        match api.get_opt(&sel.name).await {
            Ok(Some(s)) => vec![s],
            Ok(None) => return Err(SourceError::NotFound(sel.name.clone())),
            Err(e) => return Err(SourceError::Other(format!("unable to get Secret {:?}: {e}", sel.name))),
        }
    } else {
        let selector = sel
            .selector
            .as_ref()
            .ok_or_else(|| SourceError::Other("no secret selector provided".into()))
            .and_then(|s| {
                Selector::try_from(s.clone()).map_err(|e| SourceError::Other(format!("invalid selector: {e}")))
            })?;
        api.list(&ListParams::default().labels_from(&selector))
            .await
            .map_err(|e| SourceError::Other(format!("unable to list Secrets: {e}")))?
            .items
    };
    secrets.sort_by_key(|s| s.name_any());
    Ok(secrets)
}

/// A store a PushSecret pushes to.
struct StoreTarget {
    kind: StoreKind,
    name: String,
    labels: BTreeMap<String, String>,
    info: StoreInfo,
}

impl StoreTarget {
    fn target(&self) -> Target<'_> {
        Target {
            kind: self.kind,
            name: &self.name,
            labels: &self.labels,
        }
    }
}

/// Labels, spec and whether it is being deleted, straight from the reflectors (no readiness checks).
fn store_view(
    ctx: &Context,
    ns: &str,
    kind: StoreKind,
    name: &str,
) -> Option<(BTreeMap<String, String>, SecretStoreSpec, bool)> {
    match kind {
        StoreKind::SecretStore => ctx.stores.secret_stores.get(&ObjectRef::new(name).within(ns)).map(|s| {
            (
                s.labels().clone(),
                s.spec.clone(),
                s.metadata.deletion_timestamp.is_some(),
            )
        }),
        StoreKind::ClusterSecretStore => ctx.stores.cluster_secret_stores.get(&ObjectRef::new(name)).map(|s| {
            (
                s.labels().clone(),
                s.spec.spec.clone(),
                s.metadata.deletion_timestamp.is_some(),
            )
        }),
    }
}

/// Why [`resolve_stores`] has no stores to push to.
enum Unresolved {
    Failed(Failure),
    /// A store was created moments ago and its reconciler has not validated it yet ([`StoreProblem::NotValidated`]).
    Validating,
}

/// `secretStoreRefs` resolved: named stores and label-selected ones, minus those of other controller classes
/// and those being deleted (as ESO).
fn resolve_stores(ctx: &Context, ps: &PushSecret, ns: &str) -> Result<Vec<StoreTarget>, Unresolved> {
    let mut out: BTreeMap<(String, String), StoreTarget> = BTreeMap::new();
    for r in &ps.spec.secret_store_refs {
        let names: Vec<String> = match &r.label_selector {
            Some(sel) => {
                let sel = Selector::try_from(sel.clone())
                    .map_err(|e| Unresolved::Failed(fail_final(format!("could not convert labels: {e}"))))?;
                match r.kind {
                    StoreKind::SecretStore => ctx
                        .stores
                        .secret_stores
                        .state()
                        .iter()
                        .filter(|s| s.namespace().as_deref() == Some(ns) && sel.matches(s.labels()))
                        .map(|s| s.name_any())
                        .collect(),
                    StoreKind::ClusterSecretStore => ctx
                        .stores
                        .cluster_secret_stores
                        .state()
                        .iter()
                        .filter(|s| sel.matches(s.labels()))
                        .map(|s| s.name_any())
                        .collect(),
                }
            }
            None => vec![r.name.clone()],
        };
        for name in names {
            let view = store_view(ctx, ns, r.kind, &name);
            if view.as_ref().is_some_and(|v| v.2) {
                continue;
            }
            let id = StoreId {
                kind: r.kind,
                name: name.clone(),
            };
            match ctx.stores.resolve(ns, &id) {
                Ok(res) => {
                    out.insert(
                        (r.kind.as_str().to_string(), name.clone()),
                        StoreTarget {
                            kind: r.kind,
                            name,
                            labels: view.map(|v| v.0).unwrap_or_default(),
                            info: res.info,
                        },
                    );
                }
                Err(StoreProblem::OtherClass { .. }) => {}
                Err(StoreProblem::NotValidated { .. }) if ctx.settings.reconciles(id.kind) => {
                    return Err(Unresolved::Validating);
                }
                Err(p) => return Err(Unresolved::Failed(fail(p.to_string()))),
            }
        }
    }
    Ok(out.into_values().collect())
}

async fn template_sources(ctx: &Context, ps: &PushSecret, ns: &str) -> Result<TemplateSources, String> {
    super::read_template_sources(ctx, ns, template::needed(ps.spec.template.as_ref())).await
}

/// Pushes every entry of every source Secret to every store, recording what was pushed in `synced`.
#[allow(clippy::too_many_arguments)]
async fn push_all(
    ctx: &Arc<Context>,
    ps: &PushSecret,
    key: &Key,
    stores: &[StoreTarget],
    secrets: &[Secret],
    tpl_sources: &TemplateSources,
    old: &SyncedPushSecretsMap,
    synced: &mut SyncedPushSecretsMap,
) -> Result<(), Failure> {
    let delims = ctx.settings.delims.clone();
    let transform = move |tpl: &str, k: &str| -> Result<String, String> {
        let data: BTreeMap<String, Vec<u8>> = [("value".to_string(), k.as_bytes().to_vec())].into();
        syncret_template::Template::parse("transform", tpl, &delims)
            .and_then(|t| t.execute(&syncret_template::Value::from_data(&data)))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.message)
    };
    let if_not_exists = ps.spec.update_policy == PushSecretUpdatePolicy::IfNotExists;
    for secret in secrets {
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let data = template::apply(ps.spec.template.as_ref(), data, tpl_sources, &ctx.settings.delims)
            .map_err(|e| fail_final(format!("could not execute template: {e}")))?;
        for store in stores {
            let list = entries::entries(&ps.spec, &data, &store.target(), &transform)
                .map_err(|e| fail_final(format!("store {} {:?}: {e}", store.kind.as_str(), store.name)))?;
            let (cache_key, client) = ctx
                .reads
                .client_for(&store.info, &key.namespace)
                .await
                .map_err(|e| fail(format!("could not get secrets client for store {}: {e}", store.name)))?;
            let skey = entries::store_key(store.kind, &store.name);
            synced.entry(skey.clone()).or_default();
            for e in list {
                let sref = entries::status_ref(&e.data);
                if if_not_exists {
                    let exists = client.secret_exists(&e.to).await.map_err(|err| {
                        if err.invalidates_client() {
                            ctx.reads.clients.invalidate(&cache_key);
                        }
                        fail(format!(
                            "could not verify if secret exists in store {}: {err}",
                            store.name
                        ))
                    })?;
                    if exists {
                        // Not overwritten; tracked only if this PushSecret pushed it before.
                        if let Some(prev) = old.get(&skey).and_then(|m| m.get(&sref)) {
                            synced.entry(skey.clone()).or_default().insert(sref, prev.clone());
                        }
                        continue;
                    }
                }
                if let Err(err) = client.push_secret(&e.to, &e.value).await {
                    if err.invalidates_client() {
                        ctx.reads.clients.invalidate(&cache_key);
                    }
                    let what = if e.data.match_.secret_key.is_empty() {
                        "the whole secret".to_string()
                    } else {
                        format!("key {:?}", e.data.match_.secret_key)
                    };
                    return Err(Failure {
                        message: format!(
                            "set secret failed: could not write remote ref {sref} ({what}) to target secretstore {}: {err}",
                            store.name
                        ),
                        retry: true,
                    });
                }
                synced.entry(skey.clone()).or_default().insert(sref, e.data);
            }
        }
    }
    Ok(())
}

/// Claims of `synced` (a PushSecret's pushes in `namespace`), for the deletion guard.
fn claims_in(ctx: &Context, namespace: &str, by: &str, synced: &SyncedPushSecretsMap) -> Vec<Claim> {
    let mut out = Vec::new();
    for (skey, m) in synced {
        let Some((kind, name)) = entries::parse_store_key(skey) else {
            continue;
        };
        let spec = store_view(ctx, namespace, kind, name).map(|v| v.1);
        let location = guard::location(kind, namespace, name, spec.as_ref());
        for d in m.values() {
            out.push(Claim {
                location: location.clone(),
                remote_key: d.match_.remote_ref.remote_key.clone(),
                property: d.match_.remote_ref.property.clone(),
                by: by.to_string(),
            });
        }
    }
    out
}

/// What every other PushSecret (any namespace this operator sees, not being deleted) still pushes.
fn claims_of_others(ctx: &Context, me: &Key) -> Vec<Claim> {
    let mut out = Vec::new();
    for p in ctx.push.push_secrets.state() {
        let k = ps_key(&p);
        if k == *me || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(status) = ctx.push.status_of(&k, &p) {
            out.extend(claims_in(
                ctx,
                &k.namespace,
                &k.to_string(),
                &status.synced_push_secrets,
            ));
        }
    }
    out
}

/// Deletes `stale` from the providers, except values a claim still covers (reported in an event). On failure,
/// returns what is left to delete.
async fn delete_entries(
    ctx: &Arc<Context>,
    ps: &PushSecret,
    key: &Key,
    stale: SyncedPushSecretsMap,
    claims: &[Claim],
) -> Result<(), (Failure, SyncedPushSecretsMap)> {
    let ns = &key.namespace;
    let mut left = SyncedPushSecretsMap::new();
    let mut failure: Option<Failure> = None;
    for (skey, m) in stale {
        let Some((kind, name)) = entries::parse_store_key(&skey) else {
            continue;
        };
        let name = name.to_string();
        if failure.is_some() {
            left.insert(skey, m);
            continue;
        }
        let spec = store_view(ctx, ns, kind, &name).map(|v| v.1);
        let location = guard::location(kind, ns, &name, spec.as_ref());
        let mut todo = Vec::new();
        for (sref, d) in m {
            let c = Claim {
                location: location.clone(),
                remote_key: d.match_.remote_ref.remote_key.clone(),
                property: d.match_.remote_ref.property.clone(),
                by: key.to_string(),
            };
            match guard::covered_by(&c, claims) {
                Some(other) => ctx.events.publish(
                    object_ref(ps),
                    Kind::Normal,
                    "Kept",
                    format!(
                        "remote secret {sref} of {kind} {name:?} not deleted: still pushed by PushSecret {}",
                        other.by
                    ),
                ),
                None => todo.push((sref, d)),
            }
        }
        if todo.is_empty() {
            continue;
        }
        let id = StoreId {
            kind,
            name: name.clone(),
        };
        let client = match ctx.stores.resolve(ns, &id) {
            Ok(r) => ctx.reads.client_for(&r.info, ns).await,
            Err(StoreProblem::NotFound { .. }) => {
                let keys: Vec<&str> = todo.iter().map(|(s, _)| s.as_str()).collect();
                ctx.events.publish(
                    object_ref(ps),
                    Kind::Warning,
                    push_reason::ERRORED,
                    format!(
                        "{kind} {name:?} not found: could not delete pushed secrets {}; left in place",
                        keys.join(", ")
                    ),
                );
                continue;
            }
            Err(StoreProblem::OtherClass { .. }) => continue,
            Err(p) => {
                failure = Some(fail(p.to_string()));
                left.insert(skey, todo.into_iter().collect());
                continue;
            }
        };
        let (cache_key, client) = match client {
            Ok(c) => c,
            Err(e) => {
                failure = Some(fail(format!("could not get secrets client for store {skey}: {e}")));
                left.insert(skey, todo.into_iter().collect());
                continue;
            }
        };
        let mut rest = todo.into_iter();
        for (sref, d) in rest.by_ref() {
            if let Err(e) = client.delete_secret(&entries::push_ref(&d)).await {
                if e.invalidates_client() {
                    ctx.reads.clients.invalidate(&cache_key);
                }
                failure = Some(fail(format!("could not delete remote secret {sref} from {skey}: {e}")));
                left.entry(skey.clone()).or_default().insert(sref, d);
                break;
            }
        }
        for (sref, d) in rest {
            left.entry(skey.clone()).or_default().insert(sref, d);
        }
    }
    match failure {
        Some(f) => Err((f, left)),
        None => Ok(()),
    }
}

/// The source Secret is gone and `deletionPolicy` is Delete: remove what was pushed (ESO's
/// `handleSourceSecretDeleted`).
async fn source_deleted(ctx: &Arc<Context>, ps: &PushSecret, key: &Key, synced: &SyncedPushSecretsMap) -> Next {
    let claims = claims_of_others(ctx, key);
    if let Err((f, left)) = delete_entries(ctx, ps, key, synced.clone(), &claims).await {
        let msg = format!("failed to cleanup provider secrets: {}", f.message);
        return failed(
            ctx,
            ps,
            key,
            Failure {
                message: msg,
                retry: true,
            },
            Some(left),
        )
        .await;
    }
    let msg = "source secret deleted; provider secrets cleaned up";
    let mut status = ps.status.clone().unwrap_or_default();
    status.synced_push_secrets = SyncedPushSecretsMap::new();
    set_ready(&mut status, false, push_reason::SOURCE_DELETED, msg);
    ctx.metrics.push_secrets.set_ready(key, false);
    ctx.events
        .publish(object_ref(ps), Kind::Normal, push_reason::SOURCE_DELETED, msg);
    patch_status(ctx, ps, key, status).await;
    Next::Idle
}

/// Deletion: with `deletionPolicy: Delete`, remove every pushed value (guarded), then the finalizer.
async fn finalize(ctx: &Arc<Context>, ps: &Arc<PushSecret>, key: &Key) -> Next {
    if !has_finalizer(ps) || !is_ours(ctx, ps, &key.namespace) {
        return Next::Idle;
    }
    if ps.spec.deletion_policy == PushSecretDeletionPolicy::Delete {
        let synced = ps
            .status
            .as_ref()
            .map(|s| s.synced_push_secrets.clone())
            .unwrap_or_default();
        let claims = claims_of_others(ctx, key);
        if let Err((f, left)) = delete_entries(ctx, ps, key, synced, &claims).await {
            let msg = format!("Failed to Delete Secrets from Provider: {}", f.message);
            return failed(
                ctx,
                ps,
                key,
                Failure {
                    message: msg,
                    retry: true,
                },
                Some(left),
            )
            .await;
        }
    }
    match set_finalizer(ctx, ps, false).await {
        Ok(()) => {
            ctx.push.written().remove(key);
            Next::Idle
        }
        Err(e) => {
            tracing::warn!(pushsecret = %key, error = %e, "could not remove finalizer");
            Next::Retry(None)
        }
    }
}

async fn set_finalizer(ctx: &Context, ps: &PushSecret, present: bool) -> Result<(), kube::Error> {
    let api: Api<PushSecret> = Api::namespaced(ctx.client.clone(), &ps.namespace().unwrap_or_default());
    let mut finalizers: Vec<String> = ps
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER_PUSH_SECRET)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER_PUSH_SECRET.into());
    }
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": ps.resource_version()}});
    ctx.api_limiter.acquire().await;
    match api
        .patch(&ps.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 && !present => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets the `Ready` condition; `lastTransitionTime` changes only with the status (ESO's
/// `SetPushSecretCondition`).
fn set_ready(status: &mut PushSecretStatus, ready: bool, reason: &str, message: &str) {
    let text = if ready { "True" } else { "False" };
    let prev = status.conditions.iter().find(|c| c.type_ == "Ready");
    let ltt = match prev {
        Some(p) if p.status == text => p.last_transition_time.clone(),
        _ => None,
    }
    .unwrap_or_else(|| crate::sync::refresh::to_time(Utc::now()));
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.push(PushSecretStatusCondition {
        type_: "Ready".into(),
        status: text.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(ltt),
    });
}

async fn patch_status(ctx: &Context, ps: &PushSecret, key: &Key, status: PushSecretStatus) {
    let old = ps.status.clone().unwrap_or_default();
    if old == status {
        return;
    }
    let (Ok(o), Ok(n)) = (serde_json::to_value(&old), serde_json::to_value(&status)) else {
        return;
    };
    let patch = serde_json::json!({ "status": crate::push::merge_patch(&o, &n) });
    let api: Api<PushSecret> = Api::namespaced(ctx.client.clone(), &key.namespace);
    ctx.api_limiter.acquire().await;
    match api
        .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            ctx.push.written().insert(key.clone(), status);
        }
        Err(e) => tracing::debug!(pushsecret = %key, error = %e, "unable to update PushSecret status"),
    }
}

async fn succeeded(
    ctx: &Arc<Context>,
    ps: &PushSecret,
    key: &Key,
    synced: SyncedPushSecretsMap,
    now: chrono::DateTime<Utc>,
) -> Next {
    let mut msg = "PushSecret synced successfully".to_string();
    if ps.spec.update_policy == PushSecretUpdatePolicy::IfNotExists {
        msg.push_str(". Existing secrets in providers unchanged.");
    }
    let mut status = ps.status.clone().unwrap_or_default();
    status.refresh_time = Some(crate::sync::refresh::to_time(now));
    status.synced_resource_version = refresh::resource_version(ps);
    status.synced_push_secrets = synced;
    set_ready(&mut status, true, push_reason::SYNCED, &msg);
    ctx.metrics.push_secrets.set_ready(key, true);
    ctx.events
        .publish(object_ref(ps), Kind::Normal, push_reason::SYNCED, msg);
    let mut done = ps.clone();
    done.status = Some(status.clone());
    patch_status(ctx, ps, key, status).await;
    Next::After(refresh::next_check(&done, now))
}

async fn failed(
    ctx: &Arc<Context>,
    ps: &PushSecret,
    key: &Key,
    f: Failure,
    synced: Option<SyncedPushSecretsMap>,
) -> Next {
    let mut status = ps.status.clone().unwrap_or_default();
    if let Some(s) = synced {
        status.synced_push_secrets = s;
    }
    set_ready(&mut status, false, push_reason::ERRORED, &f.message);
    ctx.metrics.push_secrets.set_ready(key, false);
    ctx.events
        .publish(object_ref(ps), Kind::Warning, push_reason::ERRORED, f.message.clone());
    tracing::info!(pushsecret = %key, error = %f.message, "push failed");
    patch_status(ctx, ps, key, status).await;
    if f.retry { Next::Retry(None) } else { Next::Idle }
}
