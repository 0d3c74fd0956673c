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
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::{PartialObjectMeta, Selector, SelectorExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use syncret_crds::condition::push_reason;
use syncret_crds::labels::{FINALIZER_PUSH_SECRET, FINALIZER_SECRET_STORE};
use syncret_crds::pushsecret::{
    ClusterPushSecret, PushSecret, PushSecretDeletionPolicy, PushSecretStatus, PushSecretUpdatePolicy,
    SyncedPushSecretsMap,
};
use syncret_crds::secretstore::{SecretStoreSpec, StoreKind};
use syncret_providers::StoreInfo;
use tokio_util::sync::CancellationToken;

use super::kit::{self, Abort, InitGate, Next, Reconciler, Written};
use super::{Seen, scoped, watch_stream};
use crate::context::{Context, Key, Settings};
use crate::dependents::Dependent;
use crate::events::Kind;
use crate::push::entries::{self, Target};
use crate::push::error::PushError;
use crate::push::guard::{self, Claim};
use crate::push::sources::SourceIndex;
use crate::push::{refresh, status as push_status, template};
use crate::schedule::{Lane, Limit, Scheduler};
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
    written: Written<Key, PushSecretStatus>,
}

/// The reflector writers the watches feed.
pub struct PushWriters {
    ps: reflector::store::Writer<PushSecret>,
    cps: reflector::store::Writer<ClusterPushSecret>,
}

impl PushState {
    pub fn new(settings: &Settings) -> (Self, PushWriters) {
        let (push_secrets, ps) = reflector::store();
        let (cluster_push_secrets, cps) = reflector::store();
        (
            Self {
                push_secrets,
                cluster_push_secrets,
                queue: Scheduler::new(Limit::Soft(settings.namespace_limit())),
                cluster_queue: Scheduler::new(Limit::Strict(0)),
                sources: Mutex::new(SourceIndex::default()),
                written: Written::default(),
            },
            PushWriters { ps, cps },
        )
    }

    pub(super) fn index(&self) -> std::sync::MutexGuard<'_, SourceIndex> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The status this operator last wrote for `key`, else the reflector's.
    fn status_of(&self, key: &Key, ps: &PushSecret) -> Option<PushSecretStatus> {
        self.written.get(key).or_else(|| ps.status.clone())
    }

    /// Keeps the written statuses of the PushSecrets `keep` accepts (a shard given up).
    pub(super) fn retain_written(&self, keep: impl Fn(&Key) -> bool) {
        self.written.retain(keep);
    }

    /// The PushSecret with the status we last wrote, if the reflector has not caught up with it yet.
    fn with_written_status(&self, key: &Key, ps: Arc<PushSecret>) -> Arc<PushSecret> {
        self.written.overlay(key, ps, |p| &mut p.status)
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

/// A generator's lease of this PushSecret must be rotated: push new values now.
pub(super) fn rotation_due(ctx: &Context, key: &Key) {
    ctx.push.index().mark_dirty(key);
    ctx.push.queue.add(key.clone(), Lane::Fast);
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

/// The PushSecret controller, as the kit runs it.
pub struct PushSecrets;

impl Reconciler for PushSecrets {
    type Key = Key;

    fn name(&self) -> &'static str {
        PS_CONTROLLER
    }

    fn queue<'c>(&self, ctx: &'c Context) -> &'c Scheduler<Key> {
        &ctx.push.queue
    }

    fn workers(&self, ctx: &Context) -> usize {
        ctx.settings.concurrent
    }

    fn reconcile(&self, ctx: &Arc<Context>, key: &Key) -> impl std::future::Future<Output = Next> + Send {
        reconcile(ctx, key)
    }

    fn aborted(&self, ctx: &Arc<Context>, key: &Key, why: &Abort) -> impl std::future::Future<Output = ()> + Send {
        let (ctx, key, why) = (ctx.clone(), key.clone(), why.clone());
        async move {
            let Some(ps) = ctx
                .push
                .push_secrets
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
            else {
                return;
            };
            let ps = ctx.push.with_written_status(&key, ps);
            report_failure(&ctx, &ps, &key, why.reason(), &why.to_string(), None).await;
        }
    }

    fn unit(&self, ctx: &Context, key: &Key) -> crate::shard::Unit {
        ctx.shards.unit_of(&key.namespace)
    }

    fn jitter_unit(&self, ctx: &Context, key: &Key) -> Option<f64> {
        ctx.push
            .push_secrets
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
            .map(|ps| spec_unit(&ps))
    }
}

/// Starts the PushSecret (and ClusterPushSecret) watches.
pub(super) fn watches(
    ctx: &Arc<Context>,
    writers: PushWriters,
    gate: &Arc<InitGate>,
    stop: &CancellationToken,
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
        stop.clone(),
    )));
    if cps_on {
        tasks.push(tokio::spawn(super::clusterpushsecret::watch(
            ctx.clone(),
            writers.cps,
            gate.clone(),
            stop.clone(),
        )));
    }
}

async fn watch_push_secrets(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<PushSecret>,
    gate: Arc<InitGate>,
    stop: CancellationToken,
) {
    let stream = watch_stream(scoped::<PushSecret>(&ctx), watcher::Config::default()).reflect(writer);
    let mut seen = Seen::new();
    // The stores each PushSecret with deletionPolicy Delete holds (their finalizer follows it).
    let mut holds: HashMap<Key, Vec<(StoreKind, Key)>> = HashMap::new();
    kit::watch(stream, Some(gate), stop, |ev, phase| match ev {
        Event::Apply(ps) | Event::InitApply(ps) => {
            let key = ps_key(&ps);
            ctx.push.index().set(&key, &ps);
            ctx.push.written.seen(&key, ps.status.as_ref());
            start_source_watch(&ctx);
            let deps = crate::sync::dependencies::of_push_secret(&ps);
            ctx.dependents.index().set(&Dependent::PushSecret(key.clone()), &deps);
            if !deps.is_empty() {
                super::objects::ensure(&ctx);
            }
            let listing = phase == kit::Phase::Listing;
            if seen.changed(key.clone(), fingerprint(&ps)) {
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
            ctx.dependents.index().remove(&Dependent::PushSecret(key.clone()));
            seen.gone(&key);
            for s in holds.remove(&key).unwrap_or_default() {
                ctx.store_queue.add(s, Lane::Fast);
            }
            ctx.push.queue.add(key, Lane::Fast);
            if let Some(cps) = super::clusterpushsecret::controller_of(&ps) {
                ctx.push.cluster_queue.add(Key::new("", cps), Lane::Fast);
            }
        }
        Event::Init | Event::InitDone => {}
    })
    .await;
}

/// Starts the metadata-only Secret watch (shared with template sources, `super::objects`) the first time a
/// PushSecret exists (an operator without PushSecrets or template Secrets never lists every Secret).
fn start_source_watch(ctx: &Arc<Context>) {
    if ctx.push.index().is_empty() {
        return;
    }
    super::objects::ensure_secrets(ctx);
}

/// One event of the Secret watch: PushSecrets whose source Secret changed are pushed again.
pub(super) fn on_secret_event(ctx: &Context, ev: &Event<PartialObjectMeta<Secret>>) {
    if !ctx.settings.enable_push_secrets {
        return;
    }
    let seen = |m: &PartialObjectMeta<Secret>, listed: bool| {
        let key = Key::new(m.namespace().unwrap_or_default(), m.name_any());
        let rv = m.resource_version().unwrap_or_default();
        ctx.push.index().secret_seen(&key, m.labels(), &rv, listed)
    };
    let woken = match ev {
        Event::Apply(m) => seen(m, false),
        Event::InitApply(m) => seen(m, true),
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
        StoreKind::SecretStore => {
            Api::<syncret_crds::SecretStore>::namespaced(ctx.cluster_client.clone(), &key.namespace)
                .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
        }
        StoreKind::ClusterSecretStore => Api::<syncret_crds::ClusterSecretStore>::all(ctx.cluster_client.clone())
            .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ()),
    };
    match res {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
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
        ctx.push.written.forget(key);
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
                return failed(ctx, ps, key, &PushError::Finalizer(e), None).await;
            }
        }
    }
    let problems = ps.spec.validate();
    if !problems.is_empty() {
        let msg = syncret_crds::validate::join(&problems);
        return failed(ctx, ps, key, &PushError::InvalidSpec(msg), None).await;
    }
    let dirty = ctx.push.index().take_dirty(key);
    if !dirty && !refresh::failed_last_time(ps) && !refresh::should_refresh(ps, now) {
        return Next::After(refresh::next_check(ps, now));
    }
    if let Err(e) = entries::check_store_refs(&ps.spec) {
        return failed(ctx, ps, key, &PushError::Spec(e), None).await;
    }
    let old = ctx.push.status_of(key, ps).unwrap_or_default();

    // The source Secret(s); a generator's values are made last, right before they are pushed.
    let generator = ps.spec.selector.generator_ref.as_ref();
    let read = match generator {
        Some(_) => Ok(Vec::new()),
        None => read_sources(ctx, ps, &key.namespace).await,
    };
    let mut secrets = match read {
        Ok(s) => s,
        Err(SourceError::NotFound(name))
            if delete_policy && !old.synced_push_secrets.is_empty() && ps.spec.selector.secret.is_some() =>
        {
            tracing::info!(pushsecret = %key, secret = %name, "source secret deleted, cleaning up provider secrets");
            return source_deleted(ctx, ps, key, &old.synced_push_secrets).await;
        }
        Err(e) => return failed(ctx, ps, key, &PushError::Source(e.to_string()), None).await,
    };
    {
        let mut index = ctx.push.index();
        for s in &secrets {
            let rv = s.resource_version().unwrap_or_default();
            index.read(&key.sibling(s.name_any()), s.labels(), &rv);
        }
    }
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
        Err(Unresolved::Failed(e)) => return failed(ctx, ps, key, &e, None).await,
    };
    if stores.is_empty() {
        // Only stores of other controller classes (or none left): not ours to push.
        return Next::Idle;
    }
    let targets: Vec<Target<'_>> = stores.iter().map(StoreTarget::target).collect();
    if let Err(e) = entries::check_data_to_selects(&ps.spec, &targets) {
        return failed(ctx, ps, key, &PushError::Spec(e), None).await;
    }
    let tpl_sources = match template_sources(ctx, ps, &key.namespace).await {
        Ok(s) => s,
        Err(e) => return failed(ctx, ps, key, &PushError::TemplateSource(e), None).await,
    };

    // Push, with a place at each store (none left: park, holding no worker; the change stays pending).
    let Some(permits) = ctx
        .store_gate
        .try_enter_all(stores.iter().map(|s| s.info.uid.as_str()), key_hash(key), || {
            waker(ctx, key)
        })
    else {
        ctx.push.index().mark_dirty(key);
        return Next::Idle;
    };
    let mut lease = None;
    if let Some(g) = generator {
        match generate_source(ctx, key, g).await {
            Ok((secret, l)) => {
                secrets = vec![secret];
                lease = l;
            }
            Err(e) => {
                drop(permits);
                return failed(ctx, ps, key, &PushError::Generator(e), None).await;
            }
        }
    }
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
    drop(permits);
    if let Some((resolved, lease)) = &lease {
        let owner = generator_owner(ps);
        let key = crate::generate::state::PUSH_SECRET_KEY;
        if pushed.is_err() {
            crate::generate::state::rollback(ctx, &owner, key, resolved, lease).await;
        } else if let Err(e) = crate::generate::state::commit(ctx, &owner, key, resolved, lease).await {
            tracing::warn!(pushsecret = %owner.name, error = %e, "could not record a generated lease in a GeneratorState");
        }
    }
    if let Err(e) = pushed {
        ctx.push.index().mark_dirty(key);
        let partial = push_status::merged(&old.synced_push_secrets, synced);
        return failed(ctx, ps, key, &e, Some(partial)).await;
    }

    // What is no longer pushed: deleted (deletionPolicy Delete) unless still pushed by someone.
    let stale = push_status::stale(&old.synced_push_secrets, &synced);
    if delete_policy && !stale.is_empty() {
        let mut claims = claims_of_others(ctx, key);
        claims.extend(claims_in(ctx, &key.namespace, &format!("{key}"), &synced));
        if let Err((e, left)) = delete_entries(ctx, ps, key, stale, &claims).await {
            let left = push_status::merged(&synced, left);
            return failed(ctx, ps, key, &PushError::DeleteStale(Box::new(e)), Some(left)).await;
        }
    }
    succeeded(ctx, ps, key, synced, now).await
}

/// The owner of a PushSecret's GeneratorStates.
fn generator_owner(ps: &PushSecret) -> crate::generate::state::Owner {
    crate::generate::state::Owner {
        kind: "PushSecret",
        api_version: "external-secrets.io/v1alpha1",
        namespace: ps.namespace().unwrap_or_default(),
        name: ps.name_any(),
        uid: ps.metadata.uid.clone().unwrap_or_default(),
    }
}

/// `selector.generatorRef`: new values as the source Secret (ESO's `___generated-secret`), and their lease.
async fn generate_source(
    ctx: &Context,
    key: &Key,
    g: &syncret_crds::externalsecret::GeneratorRef,
) -> Result<(Secret, Option<(crate::generate::Resolved, syncret_providers::Lease)>), syncret_providers::ProviderError> {
    let resolved = ctx.reads.generators.resolve(&key.namespace, g).await?;
    let generated = ctx.reads.generators.generate(&resolved, ctx.reads.registry()).await?;
    let data = generated
        .data
        .into_iter()
        .map(|(k, v)| (k, k8s_openapi::ByteString(v.to_vec())))
        .collect();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("___generated-secret".into()),
            namespace: Some(key.namespace.to_string()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    Ok((secret, generated.lease.map(|l| (resolved, l))))
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
    Failed(Box<PushError>),
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
                    .map_err(|e| Unresolved::Failed(Box::new(PushError::Labels(e.to_string()))))?;
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
                Err(p) => return Err(Unresolved::Failed(Box::new(PushError::Store(p)))),
            }
        }
    }
    Ok(out.into_values().collect())
}

async fn template_sources(ctx: &Context, ps: &PushSecret, ns: &str) -> Result<TemplateSources, kube::Error> {
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
) -> Result<(), PushError> {
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
            .map_err(|e| PushError::Template(e.to_string()))?;
        for store in stores {
            let list =
                entries::entries(&ps.spec, &data, &store.target(), &transform).map_err(|e| PushError::Entries {
                    kind: store.kind.as_str(),
                    name: store.name.clone(),
                    message: e.to_string(),
                })?;
            let (cache_key, client) = ctx
                .reads
                .client_for(&store.info, &key.namespace)
                .await
                .map_err(|source| PushError::Client {
                    store: store.name.clone(),
                    source,
                })?;
            let skey = entries::store_key(store.kind, &store.name);
            synced.entry(skey.clone()).or_default();
            for e in list {
                let sref = entries::status_ref(&e.data);
                if if_not_exists {
                    let exists = client.secret_exists(&e.to).await.map_err(|source| {
                        if source.invalidates_client() {
                            ctx.reads.clients.invalidate(&cache_key);
                        }
                        PushError::Exists {
                            store: store.name.clone(),
                            source,
                        }
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
                    return Err(PushError::Push {
                        remote_ref: sref,
                        what,
                        store: store.name.clone(),
                        source: err,
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
) -> Result<(), (PushError, SyncedPushSecretsMap)> {
    let ns = &key.namespace;
    let mut left = SyncedPushSecretsMap::new();
    let mut failure: Option<PushError> = None;
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
                failure = Some(PushError::Store(p));
                left.insert(skey, todo.into_iter().collect());
                continue;
            }
        };
        let (cache_key, client) = match client {
            Ok(c) => c,
            Err(e) => {
                failure = Some(PushError::Client {
                    store: skey.clone(),
                    source: e,
                });
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
                failure = Some(PushError::Delete {
                    remote_ref: sref.clone(),
                    store: skey.clone(),
                    source: e,
                });
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
    if let Err((e, left)) = delete_entries(ctx, ps, key, synced.clone(), &claims).await {
        return failed(ctx, ps, key, &PushError::Cleanup(Box::new(e)), Some(left)).await;
    }
    let msg = "source secret deleted; provider secrets cleaned up";
    let mut status = ps.status.clone().unwrap_or_default();
    status.synced_push_secrets = SyncedPushSecretsMap::new();
    push_status::set_ready(&mut status, false, push_reason::SOURCE_DELETED, msg, Utc::now());
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
        if let Err((e, left)) = delete_entries(ctx, ps, key, synced, &claims).await {
            return failed(ctx, ps, key, &PushError::DeleteStale(Box::new(e)), Some(left)).await;
        }
    }
    match set_finalizer(ctx, ps, false).await {
        Ok(()) => {
            ctx.push.written.forget(key);
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
            ctx.push.written.record(key.clone(), status);
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
    push_status::set_ready(&mut status, true, push_reason::SYNCED, &msg, now);
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
    e: &PushError,
    synced: Option<SyncedPushSecretsMap>,
) -> Next {
    report_failure(ctx, ps, key, push_reason::ERRORED, &e.to_string(), synced).await;
    if e.retry() { Next::Retry(None) } else { Next::Idle }
}

/// Writes a failure on the PushSecret: `Ready=False` with `reason`, `syncedPushSecrets` as given (else as it
/// was), a Warning event.
async fn report_failure(
    ctx: &Context,
    ps: &PushSecret,
    key: &Key,
    reason: &'static str,
    message: &str,
    synced: Option<SyncedPushSecretsMap>,
) {
    let mut status = ps.status.clone().unwrap_or_default();
    if let Some(s) = synced {
        status.synced_push_secrets = s;
    }
    push_status::set_ready(&mut status, false, reason, message, Utc::now());
    ctx.metrics.push_secrets.set_ready(key, false);
    ctx.events
        .publish(object_ref(ps), Kind::Warning, reason, message.to_string());
    tracing::info!(pushsecret = %key, error = %message, "push failed");
    patch_status(ctx, ps, key, status).await;
}

fn key_hash(key: &Key) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    PS_CONTROLLER.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

/// Sends a parked PushSecret back to its queue.
fn waker(ctx: &Arc<Context>, key: &Key) -> crate::schedule::Waker {
    let (ctx, key) = (Arc::downgrade(ctx), key.clone());
    Box::new(move || {
        if let Some(ctx) = ctx.upgrade() {
            ctx.push.queue.add(key, Lane::Fast);
        }
    })
}
