//! The ExternalSecret controller: a thin shell that gathers inputs (the ExternalSecret from the cache, its stores,
//! remote values, template sources, the existing Secret), calls the pure functions in [`crate::sync`] (which
//! decide whether to read, what to write, which status, when next), and applies what they decide (one write, a
//! status patch, events). Run by the controller kit ([`super::kit`]).
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use syncret_crds::condition::es_reason;
use syncret_crds::externalsecret::{
    ExternalSecret, ExternalSecretCreationPolicy, ExternalSecretDeletionPolicy, ExternalSecretStatus,
};
use syncret_crds::labels::FINALIZER_EXTERNAL_SECRET_CLEANUP;
use syncret_providers::StoreInfo;

use super::kit::{self, Abort, Next, Reconciler};
use super::{ES_CONTROLLER, es_key, generic};
use crate::context::{Context, Key};
use crate::dependents::Dependent;
use crate::events::Kind;
use crate::schedule::{Lane, Scheduler};
use crate::stores::StoreProblem;
use crate::sync::deletion::{self, WhenEmpty};
use crate::sync::desired::{self, Desired, TemplateSources};
use crate::sync::error::{Retry, SyncError};
use crate::sync::fetch::{self, StoreId};
use crate::sync::refresh::{self, Refresh, Since};
use crate::sync::secret::{self, Write};
use crate::sync::{hash, manifest, status};

/// The ExternalSecret controller, as the kit runs it.
pub struct ExternalSecrets;

impl Reconciler for ExternalSecrets {
    type Key = Key;

    fn name(&self) -> &'static str {
        ES_CONTROLLER
    }

    fn queue<'c>(&self, ctx: &'c Context) -> &'c Scheduler<Key> {
        &ctx.es_queue
    }

    fn workers(&self, ctx: &Context) -> usize {
        ctx.settings.concurrent
    }

    fn reconcile(&self, ctx: &Arc<Context>, key: &Key) -> impl std::future::Future<Output = Next> + Send {
        reconcile(ctx, key)
    }

    fn aborted(&self, ctx: &Arc<Context>, key: &Key, why: &Abort) -> impl std::future::Future<Output = ()> + Send {
        aborted(ctx, key, why)
    }

    fn jitter_unit(&self, ctx: &Context, key: &Key) -> Option<f64> {
        ctx.external_secrets.unit(key)
    }

    fn unit(&self, ctx: &Context, key: &Key) -> crate::shard::Unit {
        ctx.shards.unit_of(&key.namespace)
    }

    fn observe(&self, ctx: &Context, _key: &Key, lane: Lane, _ok: bool, elapsed: Duration) {
        ctx.metrics
            .sync_duration
            .with_label_values(&[lane.as_str()])
            .observe(elapsed.as_secs_f64());
    }
}

/// What one ExternalSecret's reconciles remember between runs. Every synced ExternalSecret has one, so the
/// fields every sync sets are inline (40 bytes) and the rest, set now and then, in a box of their own.
#[derive(Default)]
struct EsState {
    /// The stores (uid, generation) it last read from ([`seen`]).
    stores_seen: Option<NonZeroU64>,
    /// The versions of the template sources it last rendered with (only with `templateFrom` ConfigMaps/Secrets).
    sources_seen: Option<NonZeroU64>,
    /// When a reconcile last took the answers of a read: answers of a read sent before that are stale, even if
    /// sent after the one taken (generated values above all: applying them would replace the values just written,
    /// a CreatedOnce Secret's included).
    read_used: Option<Instant>,
    rare: Option<Box<RareState>>,
}

/// The part of [`EsState`] that few ExternalSecrets hold at any time.
#[derive(Default)]
struct RareState {
    /// The status written and not yet shown by the watch ([`kit::written`]).
    written: Option<ExternalSecretStatus>,
    /// `written` is the status of a sync whose Secret was written but whose status patch failed: sent again by
    /// the next reconcile (its refresh decision already counts it, so that reconcile does not read again: a
    /// failed status patch must not regenerate values or rewrite a CreatedOnce Secret).
    unsent: bool,
    /// When a leased value read for it must be re-read.
    lease_due: Option<Instant>,
    /// A read that outlived the reconcile that started it ([`read_detached`]), for the next one.
    pending: Option<PendingRead>,
}

/// A fingerprint as kept in [`EsState`] (0 and 1 become one value: a 2^-64 chance of a missed change).
fn seen(fingerprint: u64) -> NonZeroU64 {
    NonZeroU64::new(fingerprint).unwrap_or(NonZeroU64::MIN)
}

impl EsState {
    fn is_empty(&self) -> bool {
        self.stores_seen.is_none() && self.sources_seen.is_none() && self.read_used.is_none() && self.rare.is_none()
    }

    fn rare(&mut self) -> &mut RareState {
        self.rare.get_or_insert_with(Default::default)
    }

    /// Drops the rare part once it holds nothing.
    fn tidy(&mut self) {
        if self
            .rare
            .as_ref()
            .is_some_and(|r| r.written.is_none() && r.lease_due.is_none() && r.pending.is_none())
        {
            self.rare = None;
        }
    }
}

type ReadResult = Result<fetch::Answers, (StoreId, syncret_providers::ProviderError)>;

/// How a detached read ended: its answers, or the payload of a panic in it (resumed in the reconcile that takes
/// it, so the kit's supervision reports it as any other panic).
type Detached = Result<ReadResult, Box<dyn std::any::Any + Send>>;

/// The answers of a read that finished after its reconcile stopped waiting: for the same reads (`fingerprint`:
/// the ExternalSecret's generation and its stores' specs), taken by the next reconcile if still fresh.
struct PendingRead {
    fingerprint: u64,
    /// When the read was sent.
    started: Instant,
    at: Instant,
    result: Detached,
}

/// Per-ExternalSecret state, in one map (an entry exists only while it holds something).
#[derive(Default)]
pub struct EsStates(Mutex<HashMap<Key, EsState>>);

impl EsStates {
    fn with<T>(&self, key: &Key, f: impl FnOnce(&mut EsState) -> T) -> T {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = m.remove(key).unwrap_or_default();
        let out = f(&mut state);
        state.tidy();
        if !state.is_empty() {
            m.insert(key.clone(), state);
        }
        out
    }

    /// The watch shows `status` for `key`.
    pub fn status_seen(&self, key: &Key, status: Option<&ExternalSecretStatus>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = m.get_mut(key) {
            if let Some(rare) = state.rare.as_mut() {
                kit::written::seen(&mut rare.written, status);
                rare.unsent &= rare.written.is_some();
            }
            state.tidy();
            if state.is_empty() {
                m.remove(key);
            }
        }
    }

    /// The ExternalSecret with the status we last wrote, if the watch has not caught up with it.
    fn overlay(&self, key: &Key, es: Arc<ExternalSecret>) -> Arc<ExternalSecret> {
        self.with(key, |s| {
            let Some(rare) = s.rare.as_mut() else { return es };
            let es = kit::written::overlay(&mut rare.written, es, |e| &mut e.status);
            rare.unsent &= rare.written.is_some();
            es
        })
    }

    fn record_status(&self, key: &Key, status: Option<ExternalSecretStatus>) {
        self.with(key, |s| {
            if status.is_some() || s.rare.is_some() {
                let rare = s.rare();
                rare.written = status;
                rare.unsent = false;
            }
        });
    }

    /// The status of a sync could not be written: keep it (the reconciles see it) and send it again.
    fn status_unsent(&self, key: &Key, status: ExternalSecretStatus) {
        self.with(key, |s| {
            let rare = s.rare();
            rare.written = Some(status);
            rare.unsent = true;
        });
    }

    /// The status to send again, if the last one could not be written and the watch has not shown it since.
    fn unsent_status(&self, key: &Key) -> Option<ExternalSecretStatus> {
        self.with(key, |s| {
            let rare = s.rare.as_ref()?;
            rare.written.as_ref().filter(|_| rare.unsent).cloned()
        })
    }

    /// Whether a pending lease is due now (it is then cleared), and else how long until it is.
    fn take_lease(&self, key: &Key, now: Instant) -> (bool, Option<Duration>) {
        self.with(key, |s| match s.rare.as_ref().and_then(|r| r.lease_due) {
            Some(at) if at <= now => {
                s.rare().lease_due = None;
                (true, None)
            }
            Some(at) => (false, Some(at.saturating_duration_since(now))),
            None => (false, None),
        })
    }

    /// A generator's lease must be rotated: the ExternalSecret's next reconcile makes new values.
    pub fn rotation_due(&self, key: &Key) {
        self.set_lease(key, Duration::ZERO);
    }

    fn set_lease(&self, key: &Key, due_in: Duration) {
        self.with(key, |s| {
            s.rare().lease_due = Some(crate::schedule::due_after(Instant::now(), due_in))
        });
    }

    /// Whether the stores changed since the last read (unknown at start-up: then recorded, not changed).
    fn stores_changed(&self, key: &Key, fingerprint: u64) -> bool {
        let fingerprint = seen(fingerprint);
        self.with(key, |s| match s.stores_seen {
            Some(fp) => fp != fingerprint,
            None => {
                s.stores_seen = Some(fingerprint);
                false
            }
        })
    }

    fn set_stores(&self, key: &Key, fingerprint: u64) {
        self.with(key, |s| s.stores_seen = Some(seen(fingerprint)));
    }

    /// Whether the template sources changed since the last render (`fingerprint`: their versions now, `None` when
    /// not known; unknown before, as at start-up: then recorded, not changed).
    fn sources_changed(&self, key: &Key, fingerprint: Option<u64>) -> bool {
        let Some(fp) = fingerprint.map(seen) else { return false };
        self.with(key, |s| match s.sources_seen {
            Some(seen) => seen != fp,
            None => {
                s.sources_seen = Some(fp);
                false
            }
        })
    }

    fn set_sources(&self, key: &Key, fingerprint: Option<u64>) {
        self.with(key, |s| s.sources_seen = fingerprint.map(seen));
    }

    /// Keeps a detached read's answers for the next reconcile, unless a newer read was used meanwhile. Whether kept.
    fn set_pending(&self, key: &Key, pending: PendingRead) -> bool {
        self.with(key, |s| {
            let stale = s.read_used.is_some_and(|used| pending.started <= used);
            if !stale {
                s.rare().pending = Some(pending);
            }
            !stale
        })
    }

    /// The answers a detached read left for these reads, if any, younger than `max_age` and sent after the
    /// answers of any read were last taken (`now`: when they are taken).
    fn take_pending(&self, key: &Key, fingerprint: u64, max_age: Duration, now: Instant) -> Option<Detached> {
        self.with(key, |s| {
            let p = s.rare.as_mut()?.pending.take()?;
            let fresh = s.read_used.is_none_or(|used| p.started > used);
            let take = fresh && p.fingerprint == fingerprint && now.saturating_duration_since(p.at) <= max_age;
            if take {
                s.read_used = Some(now);
            }
            take.then_some(p.result)
        })
    }

    /// A reconcile took the answers of a read at `now`: every read sent before, pending or still running, is stale.
    fn read_used(&self, key: &Key, now: Instant) {
        self.with(key, |s| {
            s.read_used = Some(s.read_used.map_or(now, |u| u.max(now)));
            if let Some(rare) = s.rare.as_mut()
                && rare.pending.as_ref().is_some_and(|p| p.started <= now)
            {
                rare.pending = None;
            }
        });
    }

    fn remove(&self, key: &Key) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Keeps the state of the ExternalSecrets `keep` accepts (a shard given up).
    pub fn retain(&self, keep: impl Fn(&Key) -> bool) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|k, _| keep(k));
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn object_ref(es: &ExternalSecret) -> ObjectReference {
    es.object_ref(&())
}

/// How a sync that did not fail ended.
#[derive(Debug)]
enum Outcome {
    /// Not this operator's (a store of another controller class): nothing to do until something changes.
    NotOurs,
    /// Waiting for something outside (a store's first validation), looked at again after this long.
    Waiting(Duration),
    /// A store is at its in-flight limit: parked, sent back to the queue when a place frees.
    Parked,
    /// Nothing was due and the Secret is intact; look again after this long.
    Intact(Option<Duration>),
    /// Read, rendered and written (or found unchanged), with this `Ready` reason and message; `lease`: the
    /// shortest lease of the values read.
    Synced {
        reason: &'static str,
        message: &'static str,
        lease: Option<Duration>,
    },
}

/// Reconciles one ExternalSecret.
pub async fn reconcile(ctx: &Arc<Context>, key: &Key) -> Next {
    let start = Instant::now();
    let Some(es) = ctx.external_secrets.get(key) else {
        ctx.metrics.external_secrets.remove(key);
        ctx.secrets.remove_es(key);
        ctx.es_state.remove(key);
        return Next::Idle;
    };
    if es.metadata.deletion_timestamp.is_some() {
        ctx.es_state.record_status(key, None);
        return finalize(ctx, &es).await;
    }
    let es = ctx.es_state.overlay(key, es);
    let now = Utc::now();
    let next = match sync(ctx, &es, key).await {
        Ok(Outcome::NotOurs | Outcome::Parked) => Next::Idle,
        Ok(Outcome::Waiting(d)) => Next::After(Some(d)),
        Ok(Outcome::Intact(next)) => match ctx.es_state.unsent_status(key) {
            // The last sync's status could not be written: send it now (retried with backoff until it is).
            Some(st) if !send_status(ctx, key, st.clone()).await => {
                ctx.es_state.status_unsent(key, st);
                Next::Retry(None)
            }
            _ => Next::After(next),
        },
        Ok(Outcome::Synced { reason, message, lease }) => {
            // A Secret target is the status' binding; a generic target is not (ESO).
            let binding = es.target_name().filter(|_| es.spec.target.is_secret());
            let st = status::synced(&es, binding, reason, message, now);
            ctx.metrics.external_secrets.set_ready(key, true);
            let mut synced = (*es).clone();
            synced.status = Some(st.clone());
            if !patch_status(ctx, &es, st.clone()).await {
                // The Secret is written; the status is not: kept and sent again by the next reconcile (which
                // then counts this sync as done instead of reading again).
                ctx.es_state.status_unsent(key, st);
                return finish(ctx, key, start, Next::Retry(None));
            }
            let (next, lease_due) = refresh::after_sync(refresh::next_check(&synced, now), lease);
            if let Some(d) = lease_due {
                ctx.es_state.set_lease(key, d);
            }
            Next::After(next)
        }
        Err(e) => failed(ctx, &es, &e).await,
    };
    finish(ctx, key, start, next)
}

/// Counts a reconcile in the per-object metrics.
fn finish(ctx: &Context, key: &Key, start: Instant, next: Next) -> Next {
    let ok = !matches!(next, Next::Retry(_));
    ctx.metrics.external_secrets.reconciled(key, ok, start.elapsed());
    next
}

fn key_hash(key: &Key) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Which stores, at which spec generation, the values come from.
fn stores_fingerprint(stores: &BTreeMap<StoreId, StoreInfo>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for info in stores.values() {
        info.uid.hash(&mut h);
        info.generation.hash(&mut h);
    }
    h.finish()
}

async fn sync(ctx: &Arc<Context>, es: &Arc<ExternalSecret>, key: &Key) -> Result<Outcome, SyncError> {
    // Spec problems the schema cannot express: a clear condition, no retry until the spec changes.
    let problems = es.spec.validate();
    if !problems.is_empty() {
        return Err(SyncError::InvalidSpec(syncret_crds::validate::join(&problems)));
    }
    let Some(target) = es.target_name().map(str::to_string) else {
        return Ok(Outcome::NotOurs);
    };
    // A generic target: refused (naming the field) unless this operator writes its kind.
    let generic = generic::resolve(ctx, es, key).await?;
    let mut plan = fetch::plan(es).map_err(SyncError::InvalidPlan)?;
    // Stores: class, existence, readiness (flood gate), ClusterSecretStore conditions.
    let mut stores: BTreeMap<StoreId, StoreInfo> = BTreeMap::new();
    for id in plan.stores() {
        match ctx.stores.resolve(&key.namespace, &id) {
            Ok(r) => {
                stores.insert(id, r.info);
            }
            Err(StoreProblem::OtherClass { .. }) => return Ok(Outcome::NotOurs),
            // Applied together with its store: wait for the store's first validation (its watch wakes us) rather
            // than report a failure that is only a matter of ordering.
            // (Looked at again after a while: a status that never comes turns into "not ready" after the grace.)
            Err(StoreProblem::NotValidated { .. }) if ctx.settings.reconciles(id.kind) => {
                return Ok(Outcome::Waiting(crate::stores::VALIDATION_RECHECK));
            }
            // Just created, and its store not seen yet: the store's watch event may still be on its way (its
            // arrival wakes us); "not found" only once the grace is over.
            Err(StoreProblem::NotFound { .. })
                if crate::stores::created_within(&es.metadata, crate::stores::STORE_APPEAR_GRACE, Utc::now()) =>
            {
                return Ok(Outcome::Waiting(crate::stores::STORE_APPEAR_GRACE));
            }
            Err(p) => return Err(SyncError::Store(p)),
        }
    }
    for (id, info) in &stores {
        if ctx
            .reads
            .registry()
            .provider_for(&info.spec)
            .is_ok_and(|p| p.takes_property())
        {
            plan.pass_property(id);
        }
    }
    // SOPS documents it reads from ConfigMaps/Secrets: watched like template sources (a new document re-syncs it).
    let documents = crate::sync::dependencies::sops_documents(es, &stores);
    if !documents.is_empty() {
        let who = Dependent::ExternalSecret(key.clone());
        let added = {
            let mut index = ctx.dependents.index();
            let mut added = false;
            for d in &documents {
                added |= index.add(&who, d);
            }
            added
        };
        if added {
            super::objects::ensure(ctx);
        }
    }
    // A finalizer only where deletion has an effect outside GC: deletionPolicy Delete.
    if es.spec.target.deletion_policy == ExternalSecretDeletionPolicy::Delete
        && !es.finalizers().iter().any(|f| f == FINALIZER_EXTERNAL_SECRET_CLEANUP)
    {
        add_finalizer(ctx, es).await.map_err(SyncError::Finalizer)?;
    }
    let secret_key = key.sibling(&target);
    let previous_target = match &generic {
        None => ctx.secrets.set_target(key, &target),
        Some(_) => None,
    };

    // Refresh decision (pure): skip the provider when nothing is due and the Secret is known to be intact.
    let now = Utc::now();
    let (lease_due, lease_wait) = ctx.es_state.take_lease(key, Instant::now());
    let stores_fp = stores_fingerprint(&stores);
    // The template sources' versions as the watch shows them now (before they are read for the render).
    let sources_fp = ctx
        .dependents
        .index()
        .sources_fingerprint(&Dependent::ExternalSecret(key.clone()));
    let since = Since {
        target_changed: previous_target.is_some(),
        lease_due,
        store_changed: ctx.es_state.stores_changed(key, stores_fp),
        sources_changed: ctx.es_state.sources_changed(key, sources_fp),
    };
    if let Refresh::KeepIfIntact { assume_intact, next } = refresh::decide(es, now, since, lease_wait) {
        // A failed look is a failure (retried), not "not intact": reading again would replace what the Secret
        // holds (new generated values, a CreatedOnce Secret rewritten) because of an apiserver hiccup.
        let intact = assume_intact
            || match &generic {
                None => {
                    ctx.secrets.known_valid(&secret_key)
                        || read_secret(ctx, &key.namespace, &target)
                            .await?
                            .is_some_and(|s| crate::secrets::is_valid(&s))
                }
                Some(t) => {
                    generic::known_intact(ctx, t) || manifest::is_intact(es, generic::read(ctx, t).await?.as_ref())
                }
            };
        if intact {
            return Ok(Outcome::Intact(next));
        }
    }

    // Fetch, render, write.
    let reads_fp = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        es.metadata.generation.hash(&mut h);
        stores_fp.hash(&mut h);
        sources_fp.hash(&mut h);
        h.finish()
    };
    // A read shared with other ExternalSecrets must have started after the last change of what this one reads
    // through the watches (a SOPS document): an answer from before it is stale, coalescing window or not.
    let fresh_after = ctx
        .dependents
        .index()
        .changed_at(&Dependent::ExternalSecret(key.clone()));
    let mut rendered_with = None;
    let outcome = fetch_and_write(
        ctx,
        es,
        key,
        &plan,
        &stores,
        &target,
        &secret_key,
        (reads_fp, fresh_after),
        generic.as_ref(),
        &mut rendered_with,
    )
    .await?;
    if matches!(outcome, Outcome::Synced { .. }) {
        ctx.es_state.set_stores(key, stores_fp);
        // The versions the render read (known even before the watch listed), else the watch's; else, for an
        // ExternalSecret that reads sources whose versions nobody knows yet (a SOPS document read by the provider
        // before the watch listed), "unknown": the first versions the watch shows count as a change (one more
        // read), rather than a change after this render going unnoticed until the next refresh.
        let reads = ctx
            .dependents
            .index()
            .reads_anything(&Dependent::ExternalSecret(key.clone()));
        let seen = rendered_with.or(sources_fp).or(reads.then_some(SOURCES_UNKNOWN));
        ctx.es_state.set_sources(key, seen);
    }
    Ok(outcome)
}

/// Sends a parked ExternalSecret back to its queue (the fast lane: it has waited already).
fn waker(ctx: &Arc<Context>, key: &Key) -> crate::schedule::Waker {
    let (ctx, key) = (Arc::downgrade(ctx), key.clone());
    Box::new(move || {
        if let Some(ctx) = ctx.upgrade() {
            ctx.es_queue.add(key, Lane::Fast);
        }
    })
}

/// Reads through the providers without letting a slow one hold the worker: the read runs in a task of its own
/// (holding the stores' places, bounded by the reconcile deadline); the reconcile waits for it at most
/// `Settings::slow_call` (2 s). Past that it returns `None` and ends; the task, when done, leaves its answers for the
/// ExternalSecret's next reconcile and queues it. So a worker spends at most a few seconds on any provider call,
/// however many stores hang.
async fn read_detached(
    ctx: &Arc<Context>,
    key: &Key,
    plan: &fetch::Plan,
    stores: &BTreeMap<StoreId, StoreInfo>,
    permits: Vec<crate::schedule::Permit>,
    (fingerprint, fresh_after): (u64, Option<Instant>),
) -> Option<Detached> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Detached>();
    let (c, k, plan, stores) = (ctx.clone(), key.clone(), plan.clone(), stores.clone());
    let deadline = ctx.settings.reconcile_timeout;
    let started = Instant::now();
    tokio::spawn(async move {
        let _places = permits;
        let read = std::panic::AssertUnwindSafe(tokio::time::timeout(
            deadline,
            c.reads.read(&plan, &stores, &k.namespace, fresh_after),
        ));
        let result = match futures::FutureExt::catch_unwind(read).await {
            Err(panic) => Err(panic),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Ok(Err((
                plan.stores().into_iter().next().unwrap_or(StoreId {
                    kind: syncret_crds::secretstore::StoreKind::SecretStore,
                    name: String::new(),
                }),
                syncret_providers::ProviderError::Transport(format!(
                    "no answer within the reconcile deadline ({}s, --reconcile-timeout)",
                    deadline.as_secs()
                )),
            ))),
        };
        if let Err(result) = tx.send(result) {
            // The reconcile moved on: the next one takes the answers (unless a newer read was used meanwhile).
            let pending = PendingRead {
                fingerprint,
                started,
                at: Instant::now(),
                result,
            };
            if c.es_state.set_pending(&k, pending) {
                c.es_queue.add(k, Lane::Fast);
            }
        }
    });
    match tokio::time::timeout(ctx.settings.slow_call(), rx).await {
        Ok(Ok(r)) => {
            ctx.es_state.read_used(key, Instant::now());
            Some(r)
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn fetch_and_write(
    ctx: &Arc<Context>,
    es: &Arc<ExternalSecret>,
    key: &Key,
    plan: &fetch::Plan,
    stores: &BTreeMap<StoreId, StoreInfo>,
    target: &str,
    secret_key: &Key,
    (reads_fp, fresh_after): (u64, Option<Instant>),
    generic: Option<&generic::Target>,
    rendered_with: &mut Option<u64>,
) -> Result<Outcome, SyncError> {
    let detached = match ctx
        .es_state
        .take_pending(key, reads_fp, ctx.settings.reconcile_timeout, Instant::now())
    {
        // A read this ExternalSecret started earlier finished meanwhile.
        Some(r) => r,
        None => {
            // One place at each store for the reads (none left: park, holding no worker).
            let Some(permits) =
                ctx.store_gate
                    .try_enter_all(stores.values().map(|i| i.uid.as_str()), key_hash(key), || {
                        waker(ctx, key)
                    })
            else {
                return Ok(Outcome::Parked);
            };
            match read_detached(ctx, key, plan, stores, permits, (reads_fp, fresh_after)).await {
                Some(r) => r,
                None => return Ok(Outcome::Parked),
            }
        }
    };
    // A panic in the read is this reconcile's: the kit's supervision catches and reports it.
    let answers = detached.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let mut answers = answers.map_err(|(store, source)| SyncError::Provider {
        store: store.to_string(),
        source,
    })?;
    // Leased generated values: recorded once written (the superseded ones are then flagged for revocation),
    // revoked at once if this sync does not write them.
    let leases = std::mem::take(&mut answers.leases);
    let outcome = write_answers(
        ctx,
        es,
        key,
        plan,
        &answers,
        (target, secret_key),
        generic,
        rendered_with,
    )
    .await;
    if !leases.is_empty() {
        settle_leases(ctx, es, &leases, matches!(outcome, Ok(Outcome::Synced { .. }))).await;
    }
    outcome
}

/// The owner of an ExternalSecret's GeneratorStates.
fn state_owner(es: &ExternalSecret) -> crate::generate::state::Owner {
    crate::generate::state::Owner {
        kind: "ExternalSecret",
        api_version: "external-secrets.io/v1",
        namespace: es.namespace().unwrap_or_default(),
        name: es.name_any(),
        uid: es.metadata.uid.clone().unwrap_or_default(),
    }
}

/// Records the leases of written values (and supersedes older ones), or revokes those of values not written.
async fn settle_leases(ctx: &Context, es: &ExternalSecret, leases: &[fetch::GeneratedLease], written: bool) {
    let owner = state_owner(es);
    for l in leases {
        let key = l.index.to_string();
        if !written {
            crate::generate::state::rollback(ctx, &owner, &key, &l.resolved, &l.lease).await;
            continue;
        }
        if let Err(e) = crate::generate::state::commit(ctx, &owner, &key, &l.resolved, &l.lease).await {
            ctx.events.publish(
                object_ref(es),
                Kind::Warning,
                "GeneratorStateFailed",
                format!(
                    "could not record the lease of spec.dataFrom[{}] in a GeneratorState (it will not be renewed): {e}",
                    l.index
                ),
            );
        }
    }
}

/// From the answers to the written Secret (the part of a sync after the reads).
#[allow(clippy::too_many_arguments)]
async fn write_answers(
    ctx: &Arc<Context>,
    es: &Arc<ExternalSecret>,
    key: &Key,
    plan: &fetch::Plan,
    answers: &fetch::Answers,
    (target, secret_key): (&str, &Key),
    generic: Option<&generic::Target>,
    rendered_with: &mut Option<u64>,
) -> Result<Outcome, SyncError> {
    let lease = answers.expires_in;
    let delims = ctx.settings.delims.clone();
    let transform = move |tpl: &str, k: &str| -> Result<String, String> {
        let data: BTreeMap<String, Vec<u8>> = [("value".to_string(), k.as_bytes().to_vec())].into();
        syncret_template::Template::parse("transform", tpl, &delims)
            .and_then(|t| t.execute(&syncret_template::Value::from_data(&data)))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.message)
    };
    let deletion_policy = es.spec.target.deletion_policy;
    let assembled = fetch::assemble(plan, answers, deletion_policy, &transform).map_err(SyncError::Fetch)?;
    for m in &assembled.missing {
        let note = if m.key.is_empty() {
            format!("secret does not exist at provider using {}", m.field)
        } else {
            format!("secret does not exist at provider using {} (key={})", m.field, m.key)
        };
        ctx.events
            .publish(object_ref(es), Kind::Normal, es_reason::MISSING_PROVIDER_SECRET, note);
    }
    let synced = |reason, message| Outcome::Synced { reason, message, lease };

    // A generic target: deletionPolicy, render and write (ESO's `reconcileGenericTarget`).
    if let Some(t) = generic {
        if assembled.data.is_empty() {
            match deletion::when_empty(deletion_policy, es.spec.target.creation_policy, target)? {
                WhenEmpty::DeleteSecret => {
                    generic::delete_if_ours(ctx, es, t).await?;
                    return Ok(synced(
                        es_reason::RESOURCE_DELETED,
                        "secret deleted due to DeletionPolicy=Delete",
                    ));
                }
                WhenEmpty::Retain => {
                    return Ok(synced(
                        es_reason::RESOURCE_SYNCED,
                        "secret retained due to DeletionPolicy=Retain",
                    ));
                }
                WhenEmpty::Write => {}
            }
        }
        let sources = template_sources(ctx, es, &key.namespace)
            .await
            .map_err(SyncError::TemplateSource)?;
        *rendered_with = rendered_fingerprint(ctx, key, &sources);
        let (reason, message) = generic::write(ctx, es, t, &assembled.data, &sources).await?;
        return Ok(synced(reason, message));
    }

    // No data at all: deletionPolicy decides.
    if assembled.data.is_empty() {
        match deletion::when_empty(deletion_policy, es.spec.target.creation_policy, target)? {
            WhenEmpty::DeleteSecret => {
                if let Some(existing) = read_secret(ctx, &key.namespace, target).await? {
                    secret::check_ownership(es, &existing)?;
                    delete_secret(ctx, &key.namespace, target)
                        .await
                        .map_err(SyncError::DeleteSecret)?;
                    ctx.events.publish(
                        object_ref(es),
                        Kind::Normal,
                        es_reason::DELETED,
                        "secret deleted due to DeletionPolicy=Delete",
                    );
                }
                return Ok(synced(
                    es_reason::SECRET_DELETED,
                    "secret deleted due to DeletionPolicy=Delete",
                ));
            }
            WhenEmpty::Retain => {
                return Ok(synced(
                    es_reason::SECRET_SYNCED,
                    "secret retained due to DeletionPolicy=Retain",
                ));
            }
            WhenEmpty::Write => {}
        }
    }

    // Template sources, then the desired content (pure).
    let sources = template_sources(ctx, es, &key.namespace)
        .await
        .map_err(SyncError::TemplateSource)?;
    *rendered_with = rendered_fingerprint(ctx, key, &sources);
    let desired = desired::desired(es, assembled.data, &sources, ctx.settings.template_options())
        .map_err(|e| SyncError::Template(e.to_string()))?;
    let fingerprint = fingerprint(es, target, &desired);
    let owner = es.spec.target.creation_policy == ExternalSecretCreationPolicy::Owner;

    // Zero-write fast path: the Secret is intact and holds exactly this.
    if ctx.secrets.unchanged(secret_key, fingerprint) {
        if owner {
            delete_orphans(ctx, es, target).await?;
        }
        return Ok(synced(es_reason::SECRET_SYNCED, "secret synced"));
    }
    // A Secret the index has never seen (no managed Secret of that name) is created with one POST instead of a
    // GET and an apply; if an unmanaged one exists after all, the POST fails and the normal path decides.
    let policy = es.spec.target.creation_policy;
    if matches!(
        policy,
        ExternalSecretCreationPolicy::Owner | ExternalSecretCreationPolicy::Orphan
    ) && ctx.secrets.primed()
        && !ctx.secrets.exists(secret_key)
        && let Ok(Write::Apply {
            secret, create: true, ..
        }) = secret::plan(es, target, &desired, None)
    {
        match create_secret(ctx, es, &secret).await {
            Ok(rv) => {
                ctx.secrets.record_write(secret_key, &rv, fingerprint);
                if owner {
                    delete_orphans(ctx, es, target).await?;
                }
                ctx.events
                    .publish(object_ref(es), Kind::Normal, es_reason::CREATED, "secret created");
                rollout_if_asked(ctx, es, true, false).await;
                return Ok(synced(es_reason::SECRET_SYNCED, "secret synced"));
            }
            Err(CreateError::Exists) => {}
            Err(CreateError::Other(e)) => return Err(SyncError::WriteSecret(e)),
        }
    }
    let existing = read_secret(ctx, &key.namespace, target).await?;
    let write = secret::plan(es, target, &desired, existing.as_ref())?;
    if owner {
        delete_orphans(ctx, es, target).await?;
    }
    match write {
        Write::Skip => Ok(synced(es_reason::SECRET_SYNCED, "secret synced")),
        Write::Missing => Ok(synced(
            es_reason::SECRET_MISSING,
            "secret will not be created due to CreationPolicy=Merge",
        )),
        Write::Unchanged => {
            if let Some(s) = &existing {
                ctx.secrets
                    .record_write(secret_key, &s.resource_version().unwrap_or_default(), fingerprint);
            }
            Ok(synced(es_reason::SECRET_SYNCED, "secret synced"))
        }
        Write::Apply {
            secret,
            create,
            remove_keys,
            data_changed,
        } => {
            let rv = apply_secret(ctx, es, &secret, &remove_keys)
                .await
                .map_err(SyncError::WriteSecret)?;
            ctx.secrets.record_write(secret_key, &rv, fingerprint);
            rollout_if_asked(ctx, es, create, data_changed).await;
            let (reason, note) = if create {
                (es_reason::CREATED, "secret created")
            } else {
                (es_reason::UPDATED, "secret updated")
            };
            ctx.events.publish(object_ref(es), Kind::Normal, reason, note);
            Ok(synced(es_reason::SECRET_SYNCED, "secret synced"))
        }
    }
}

/// Restarts the workloads named in `syncret.dev/rollout-on-change` when the Secret's data changed (or on creation
/// with `syncret.dev/rollout-on-create`). Problems become a Warning event; the sync itself succeeded.
async fn rollout_if_asked(ctx: &Context, es: &ExternalSecret, created: bool, data_changed: bool) {
    let Some(list) = es.annotations().get(crate::rollout::ANNOTATION_ROLLOUT) else {
        return;
    };
    let on_create = es
        .annotations()
        .get(crate::rollout::ANNOTATION_ROLLOUT_ON_CREATE)
        .is_some_and(|v| v == "true");
    if !(data_changed || (created && on_create)) {
        return;
    }
    let workloads = match crate::rollout::parse(list) {
        Ok(w) => w,
        Err(e) => {
            ctx.events.publish(object_ref(es), Kind::Warning, "RolloutFailed", e);
            return;
        }
    };
    let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ns = es.namespace().unwrap_or_default();
    for _ in &workloads {
        ctx.api_limiter.acquire().await;
    }
    let errors = crate::rollout::restart(&ctx.client, &ns, &workloads, &at).await;
    for (w, e) in &errors {
        ctx.events.publish(
            object_ref(es),
            Kind::Warning,
            "RolloutFailed",
            format!("could not restart {w}: {e}"),
        );
    }
    if errors.len() < workloads.len() {
        let done: Vec<String> = workloads
            .iter()
            .filter(|w| !errors.iter().any(|(f, _)| f == *w))
            .map(ToString::to_string)
            .collect();
        ctx.events.publish(
            object_ref(es),
            Kind::Normal,
            "RolloutRestarted",
            format!("restarted {}", done.join(", ")),
        );
    }
}

/// A stable fingerprint of what would be applied (content and ownership), for the zero-write check.
fn fingerprint(es: &ExternalSecret, target: &str, d: &Desired) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    target.hash(&mut h);
    d.hash(&mut h);
    es.spec.target.creation_policy.hash(&mut h);
    es.spec.target.immutable.hash(&mut h);
    es.metadata.uid.hash(&mut h);
    h.finish()
}

async fn read_secret(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Secret>, SyncError> {
    ctx.secret_limiter.acquire().await;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let s = api.get_opt(name).await.map_err(|source| SyncError::ReadSecret {
        name: name.to_string(),
        source,
    })?;
    if let Some(s) = &s {
        ctx.secrets.record_read(s);
    }
    Ok(s)
}

enum CreateError {
    Exists,
    Other(String),
}

/// Creates the Secret (POST with ESO's field manager). `Exists` when a Secret of that name is already there.
async fn create_secret(ctx: &Context, es: &ExternalSecret, s: &Secret) -> Result<String, CreateError> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    let pp = PostParams {
        field_manager: Some(secret::field_manager(&es.name_any())),
        ..Default::default()
    };
    ctx.secret_limiter.acquire().await;
    ctx.metrics.secret_writes.with_label_values(&["create"]).inc();
    match api.create(&pp, s).await {
        Ok(created) => Ok(created.resource_version().unwrap_or_default()),
        Err(kube::Error::Api(e)) if e.code == 409 => Err(CreateError::Exists),
        Err(e) => Err(CreateError::Other(e.to_string())),
    }
}

async fn delete_secret(ctx: &Context, namespace: &str, name: &str) -> Result<(), String> {
    ctx.secret_limiter.acquire().await;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    ctx.metrics.secret_writes.with_label_values(&["delete"]).inc();
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Deletes `s` only if it is still the object read (same uid and resourceVersion).
async fn delete_secret_if_unchanged(ctx: &Context, s: &Secret) -> Result<(), String> {
    ctx.secret_limiter.acquire().await;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &s.namespace().unwrap_or_default());
    ctx.metrics.secret_writes.with_label_values(&["delete"]).inc();
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: s.metadata.uid.clone(),
            resource_version: s.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    match api.delete(&s.name_any(), &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Server-side apply with the ExternalSecret's field manager; then drops data keys of other writers when this
/// ExternalSecret owns the whole Secret. Returns the new resourceVersion.
async fn apply_secret(
    ctx: &Context,
    es: &ExternalSecret,
    s: &Secret,
    remove_keys: &[String],
) -> Result<String, String> {
    let ns = es.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let name = s.name_any();
    let manager = secret::field_manager(&es.name_any());
    ctx.secret_limiter.acquire().await;
    ctx.metrics.secret_writes.with_label_values(&["apply"]).inc();
    let mut applied = api
        .patch(&name, &PatchParams::apply(&manager).force(), &Patch::Apply(s))
        .await
        .map_err(|e| format!("unable to update secret {name}: {e}"))?;
    if !remove_keys.is_empty() {
        // Conditional on the version our apply produced (the apply itself was conditional on what we read).
        let patch = secret::remove_keys_patch(remove_keys, &applied.resource_version().unwrap_or_default());
        ctx.secret_limiter.acquire().await;
        ctx.metrics.secret_writes.with_label_values(&["remove-keys"]).inc();
        applied = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("unable to remove foreign keys from secret {name}: {e}"))?;
    }
    Ok(applied.resource_version().unwrap_or_default())
}

/// Owner: Secrets this ExternalSecret created under an old `target.name` are deleted (ESO semantics). The Secret
/// index knows every managed Secret's `created-by` label from the metadata watch, so this costs no API call unless
/// there is a candidate; a candidate is read and deleted only if it carries this ExternalSecret's own marker
/// ([`secret::is_orphan_of`]), with the version read as a precondition.
async fn delete_orphans(ctx: &Context, es: &ExternalSecret, target: &str) -> Result<(), SyncError> {
    let ns = es.namespace().unwrap_or_default();
    let ours = hash::owner_label(&ns, &es.name_any());
    for name in ctx
        .secrets
        .created_by(&ns, &ours)
        .into_iter()
        .filter(|n| **n != *target)
    {
        let Some(candidate) = read_secret(ctx, &ns, &name).await? else {
            continue;
        };
        if !secret::is_orphan_of(es, &candidate, target) {
            continue;
        }
        delete_secret_if_unchanged(ctx, &candidate)
            .await
            .map_err(SyncError::DeleteOrphans)?;
        ctx.secrets.observe_deleted(&Key::new(&ns, &name));
        ctx.events.publish(
            es.object_ref(&()),
            Kind::Normal,
            es_reason::DELETED,
            "secret deleted because it was orphaned",
        );
    }
    Ok(())
}

/// The recorded fingerprint of sources read at versions nobody knew (no fingerprint is this value but by chance).
const SOURCES_UNKNOWN: u64 = 0;

/// The fingerprint of the template sources' versions this render read ([`crate::dependents`]).
fn rendered_fingerprint(ctx: &Context, key: &Key, sources: &TemplateSources) -> Option<u64> {
    ctx.dependents
        .index()
        .fingerprint_with(&Dependent::ExternalSecret(key.clone()), &sources.versions)
}

async fn template_sources(ctx: &Context, es: &ExternalSecret, namespace: &str) -> Result<TemplateSources, kube::Error> {
    super::read_template_sources(ctx, namespace, TemplateSources::needed(es)).await
}

async fn add_finalizer(ctx: &Context, es: &ExternalSecret) -> Result<(), kube::Error> {
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    let mut finalizers = es.finalizers().to_vec();
    finalizers.push(FINALIZER_EXTERNAL_SECRET_CLEANUP.into());
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": es.resource_version()}});
    ctx.api_limiter.acquire().await;
    api.patch(&es.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Deletion: with deletionPolicy Delete, delete the target if this ExternalSecret controls it; then release.
async fn finalize(ctx: &Arc<Context>, es: &ExternalSecret) -> Next {
    let ns = es.namespace().unwrap_or_default();
    let key = Key::new(&ns, es.name_any());
    if !es.finalizers().iter().any(|f| f == FINALIZER_EXTERNAL_SECRET_CLEANUP) {
        return Next::Idle;
    }
    if es.spec.target.deletion_policy == ExternalSecretDeletionPolicy::Delete && !es.spec.target.is_secret() {
        // A generic target: deleted if this ExternalSecret controls it (nothing to do when generic targets are
        // off, as in ESO).
        match generic::resolve(ctx, es, &key).await {
            Ok(Some(t)) => {
                if let Err(e) = generic::delete_if_ours(ctx, es, &t).await {
                    tracing::warn!(externalsecret = %key, error = %e, "could not delete managed resource");
                    return Next::Retry(None);
                }
            }
            Ok(None) | Err(SyncError::Target(_)) => {}
            Err(e) => {
                tracing::warn!(externalsecret = %key, error = %e, "could not read managed resource");
                return Next::Retry(None);
            }
        }
    } else if es.spec.target.deletion_policy == ExternalSecretDeletionPolicy::Delete
        && let Some(target) = es.target_name()
    {
        match read_secret(ctx, &ns, target).await {
            Ok(Some(s)) => {
                let controlled = s
                    .owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && o.uid == es.metadata.uid.clone().unwrap_or_default());
                if controlled && let Err(e) = delete_secret(ctx, &ns, target).await {
                    tracing::warn!(externalsecret = %key, error = %e, "could not delete managed secret");
                    return Next::Retry(None);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(externalsecret = %key, error = %e, "could not read managed secret");
                return Next::Retry(None);
            }
        }
    }
    let finalizers: Vec<String> = es
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER_EXTERNAL_SECRET_CLEANUP)
        .cloned()
        .collect();
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": es.resource_version()}});
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &ns);
    ctx.api_limiter.acquire().await;
    match api
        .patch(&es.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Next::Idle,
        Err(kube::Error::Api(s)) if s.code == 404 => Next::Idle,
        Err(e) => {
            tracing::warn!(externalsecret = %key, error = %e, "could not remove finalizer");
            Next::Retry(None)
        }
    }
}

/// Writes `status` unless the ExternalSecret has it already; whether it is there now.
async fn patch_status(ctx: &Context, es: &ExternalSecret, status: ExternalSecretStatus) -> bool {
    if es.status.as_ref() == Some(&status) {
        return true;
    }
    send_status(ctx, &es_key(es), status).await
}

/// Writes `status` (recorded for the reconciles until the watch shows it; forgotten if the write fails).
async fn send_status(ctx: &Context, key: &Key, status: ExternalSecretStatus) -> bool {
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let patch = serde_json::json!({ "status": status });
    ctx.api_limiter.acquire().await;
    ctx.es_state.record_status(key, Some(status));
    match api
        .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => true,
        Err(e) => {
            ctx.es_state.record_status(key, None);
            tracing::debug!(externalsecret = %key, error = %e, "unable to update ExternalSecret status");
            false
        }
    }
}

/// A failed sync: `Ready=False` naming the cause, a Warning event, the metric by the error's reason; the
/// Secret is left as it is.
async fn failed(ctx: &Arc<Context>, es: &ExternalSecret, e: &SyncError) -> Next {
    let message = e.to_string();
    let reason = e.condition_reason(!es.spec.target.is_secret());
    report_failure(ctx, es, reason, e.event_reason(), &message).await;
    ctx.metrics.sync_failed(e.reason());
    match e.retry() {
        Retry::Never => Next::Idle,
        Retry::Backoff(at_least) => Next::Retry(at_least),
    }
}

/// Writes a failure on the ExternalSecret: status, event, log, the per-object metric.
async fn report_failure(ctx: &Context, es: &ExternalSecret, reason: &str, event: &'static str, message: &str) {
    let key = es_key(es);
    let st = status::failed(es.status.as_ref(), reason, message, Utc::now());
    ctx.metrics.external_secrets.set_ready(&key, false);
    ctx.events
        .publish(object_ref(es), Kind::Warning, event, message.to_string());
    tracing::info!(externalsecret = %key, error = %message, "sync failed");
    patch_status(ctx, es, st).await;
}

/// The kit stopped a reconcile (panic or deadline): the ExternalSecret says so; the kit retries with backoff.
async fn aborted(ctx: &Arc<Context>, key: &Key, why: &Abort) {
    let Some(es) = ctx.external_secrets.get(key) else {
        return;
    };
    let es = ctx.es_state.overlay(key, es);
    ctx.metrics.sync_failed(match why {
        Abort::Panicked(_) => crate::sync::error::FailureReason::InternalError,
        Abort::DeadlineExceeded(_) => crate::sync::error::FailureReason::DeadlineExceeded,
    });
    report_failure(ctx, &es, why.reason(), why.reason(), &why.to_string()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(started: Instant) -> PendingRead {
        PendingRead {
            fingerprint: 1,
            started,
            at: started,
            result: Ok(Ok(fetch::Answers::default())),
        }
    }

    #[test]
    fn answers_of_a_read_sent_before_answers_were_last_taken_are_dropped() {
        let states = EsStates::default();
        let key = Key::new("ns", "es");
        let ms = Duration::from_millis;
        let max_age = Duration::from_secs(60);
        let t0 = Instant::now();
        // Reads A (t0) and B (t0+5) outlive their reconciles; A's answers come first and are taken at t0+10.
        assert!(states.set_pending(&key, pending(t0)));
        assert!(states.take_pending(&key, 1, max_age, t0 + ms(10)).is_some());
        // B's answers come after that: stale, though B was sent after A (for generators they would replace the
        // values just written; for CreatedOnce, rewrite what was created once).
        assert!(!states.set_pending(&key, pending(t0 + ms(5))));
        assert!(states.take_pending(&key, 1, max_age, t0 + ms(20)).is_none());
        // A read sent after the answers were taken is kept, and taken once.
        assert!(states.set_pending(&key, pending(t0 + ms(15))));
        assert!(states.take_pending(&key, 1, max_age, t0 + ms(20)).is_some());
        assert!(states.take_pending(&key, 1, max_age, t0 + ms(25)).is_none());
        // A reconcile that waited for its own read's answers drops a pending read sent before it took them.
        assert!(states.set_pending(&key, pending(t0 + ms(30))));
        states.read_used(&key, t0 + ms(40));
        assert!(states.take_pending(&key, 1, max_age, t0 + ms(45)).is_none());
        // Answers for other reads (a changed spec or store), or too old, are not taken.
        assert!(states.set_pending(&key, pending(t0 + ms(50))));
        assert!(states.take_pending(&key, 2, max_age, t0 + ms(55)).is_none());
        assert!(states.set_pending(&key, pending(t0 + ms(60))));
        assert!(
            states
                .take_pending(&key, 1, max_age, t0 + ms(60) + max_age + ms(1))
                .is_none()
        );
    }

    #[test]
    fn a_status_that_could_not_be_written_is_sent_again_until_the_watch_shows_it() {
        let states = EsStates::default();
        let key = Key::new("ns", "es");
        let synced = ExternalSecretStatus {
            synced_resource_version: "1-abc".into(),
            ..Default::default()
        };
        states.status_unsent(&key, synced.clone());
        assert_eq!(states.unsent_status(&key), Some(synced.clone()));
        // The reconciles see it meanwhile (their refresh decision counts the sync as done).
        let es: Arc<ExternalSecret> =
            Arc::new(serde_yaml::from_str("metadata: {name: es, namespace: ns}\nspec: {target: {name: s}}\n").unwrap());
        assert_eq!(states.overlay(&key, es).status.as_ref(), Some(&synced));
        // An older status in the watch changes nothing; the one we sent clears it.
        states.status_seen(&key, None);
        assert_eq!(states.unsent_status(&key), Some(synced.clone()));
        states.status_seen(&key, Some(&synced));
        assert_eq!(states.unsent_status(&key), None);
        assert!(states.is_empty());
        // A newer status written meanwhile replaces it.
        states.status_unsent(&key, synced.clone());
        states.record_status(&key, Some(ExternalSecretStatus::default()));
        assert_eq!(states.unsent_status(&key), None);
    }

    #[test]
    fn the_state_every_external_secret_keeps_is_small() {
        // One per synced ExternalSecret (10k at 10k): the rarely set parts stay out of line.
        assert_eq!(std::mem::size_of::<EsState>(), 40);
    }
}
