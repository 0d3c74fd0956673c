//! The ExternalSecret reconcile: a thin shell that gathers inputs (the ExternalSecret from the reflector, its
//! stores, remote values, template sources, the existing Secret), calls the pure functions in [`crate::sync`],
//! and applies what they decide (one server-side apply, a status patch, events).
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use syncret_crds::condition::{ExternalSecretConditionType, ExternalSecretStatusCondition, es_reason};
use syncret_crds::externalsecret::{
    ExternalSecret, ExternalSecretCreationPolicy, ExternalSecretDeletionPolicy, ExternalSecretRefreshPolicy,
    ExternalSecretStatus, LocalObjectReference,
};
use syncret_crds::labels::FINALIZER_EXTERNAL_SECRET_CLEANUP;
use syncret_providers::StoreInfo;

use super::es_key;
use crate::context::{Context, Key};
use crate::events::Kind;
use crate::stores::StoreProblem;
use crate::sync::desired::{self, Desired, TemplateSources};
use crate::sync::fetch::{self, StoreId};
use crate::sync::secret::{self, Write};
use crate::sync::{hash, refresh};

/// What the worker does next with this ExternalSecret.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Look again after this long (periodic refresh), or only on change.
    After(Option<Duration>),
    /// Failed: retry with backoff (at least the given delay, e.g. a provider's retry-after).
    Retry(Option<Duration>),
    /// Not ours, or gone: do nothing until something changes.
    Idle,
}

/// One failure of a sync, for status, events and metrics. The message names fields and keys, never values.
struct Failure {
    message: String,
    retry: bool,
    retry_after: Option<Duration>,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        retry: true,
        retry_after: None,
    }
}

fn fail_final(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        retry: false,
        retry_after: None,
    }
}

fn object_ref(es: &ExternalSecret) -> ObjectReference {
    es.object_ref(&())
}

/// Reconciles one ExternalSecret.
pub async fn reconcile(ctx: &Arc<Context>, key: &Key) -> Next {
    let start = Instant::now();
    let Some(es) = ctx.external_secrets.get(key) else {
        ctx.metrics.external_secrets.remove(key);
        ctx.secrets.remove_es(key);
        ctx.written_status.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        ctx.lease_due.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        ctx.store_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key_hash(key));
        return Next::Idle;
    };
    if es.metadata.deletion_timestamp.is_some() {
        ctx.written_status.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        return finalize(ctx, &es).await;
    }
    let es = with_written_status(ctx, key, es);
    let result = sync(ctx, &es, key).await;
    let ok = !matches!(result, Next::Retry(_));
    ctx.metrics.external_secrets.reconciled(key, ok, start.elapsed());
    result
}

/// The sooner of two optional waits.
fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
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

/// The ExternalSecret with the status we last wrote, if the reflector has not caught up with it yet.
fn with_written_status(ctx: &Context, key: &Key, es: Arc<ExternalSecret>) -> Arc<ExternalSecret> {
    let mut written = ctx.written_status.lock().unwrap_or_else(|e| e.into_inner());
    match written.get(key) {
        Some(w) if es.status.as_ref() == Some(w) => {
            written.remove(key);
            es
        }
        Some(w) => {
            let mut newer = (*es).clone();
            newer.status = Some(w.clone());
            Arc::new(newer)
        }
        None => es,
    }
}

async fn sync(ctx: &Arc<Context>, es: &Arc<ExternalSecret>, key: &Key) -> Next {
    // Spec problems the schema cannot express: a clear condition, no retry until the spec changes.
    let problems = es.spec.validate();
    if !problems.is_empty() {
        let msg = syncret_crds::validate::join(&problems);
        return failed(ctx, es, fail_final(format!("invalid ExternalSecret: {msg}"))).await;
    }
    let Some(target) = es.target_name().map(str::to_string) else {
        return Next::Idle;
    };
    if !es.spec.target.is_secret() {
        return failed(
            ctx,
            es,
            fail_final("spec.target.manifest: generic targets are not supported by syncret"),
        )
        .await;
    }
    let mut plan = match fetch::plan(es) {
        Ok(p) => p,
        Err(e) => return failed(ctx, es, fail_final(format!("invalid ExternalSecret: {e}"))).await,
    };
    // Stores: class, existence, readiness (flood gate), ClusterSecretStore conditions.
    let mut stores: BTreeMap<StoreId, StoreInfo> = BTreeMap::new();
    for id in plan.stores() {
        match ctx.stores.resolve(&key.namespace, &id) {
            Ok(r) => {
                stores.insert(id, r.info);
            }
            Err(StoreProblem::OtherClass { .. }) => return Next::Idle,
            // Applied together with its store: wait for the store's first validation (its watch wakes us) rather
            // than report a failure that is only a matter of ordering.
            // (Looked at again after a while: a status that never comes turns into "not ready" after the grace.)
            Err(StoreProblem::NotValidated { .. }) if ctx.settings.reconciles(id.kind) => {
                return Next::After(Some(crate::stores::VALIDATION_RECHECK));
            }
            Err(p @ StoreProblem::NotAllowed { .. }) => return failed(ctx, es, fail(p.to_string())).await,
            Err(p) => return failed(ctx, es, fail(p.to_string())).await,
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
    // A finalizer only where deletion has an effect outside GC: deletionPolicy Delete.
    if es.spec.target.deletion_policy == ExternalSecretDeletionPolicy::Delete
        && !es.finalizers().iter().any(|f| f == FINALIZER_EXTERNAL_SECRET_CLEANUP)
        && let Err(e) = add_finalizer(ctx, es).await
    {
        return failed(ctx, es, fail(format!("could not add finalizer: {e}"))).await;
    }
    let secret_key = key.sibling(&target);
    let previous_target = ctx.secrets.set_target(key, &target);

    // Refresh decision: skip the provider when nothing is due and the Secret is known to be intact.
    let now = Utc::now();
    // `lease_wait`: how long until a pending lease is due (kept when an event wakes the ExternalSecret early).
    let (lease_due, lease_wait) = {
        let mut leases = ctx.lease_due.lock().unwrap_or_else(|p| p.into_inner());
        let wait = leases.get(key).map(|at| at.saturating_duration_since(Instant::now()));
        let due = wait.is_some_and(|w| w.is_zero());
        if due {
            leases.remove(key);
        }
        (due, wait.filter(|_| !due))
    };
    // A store whose spec changed since this ExternalSecret last read from it: a periodically refreshed one reads
    // again now instead of at its next refresh (CreatedOnce, OnChange and "sync once" keep what they synced).
    // Unknown at start-up (nothing recorded yet): the stores are taken as they are, as ESO does.
    let stores_fp = stores_fingerprint(&stores);
    let periodic =
        es.spec.refresh_policy() == ExternalSecretRefreshPolicy::Periodic && !refresh::interval(es).is_zero();
    let store_changed = periodic && {
        let mut seen = ctx.store_seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(&key_hash(key)) {
            Some(fp) => *fp != stores_fp,
            None => {
                seen.insert(key_hash(key), stores_fp);
                false
            }
        }
    };
    if !refresh::should_refresh(es, now) && previous_target.is_none() && !lease_due && !store_changed {
        let intact = es.spec.target.creation_policy == ExternalSecretCreationPolicy::Orphan
            || es.spec.target.creation_policy == ExternalSecretCreationPolicy::None
            || ctx.secrets.known_valid(&secret_key)
            || match read_secret(ctx, &key.namespace, &target).await {
                Ok(Some(s)) => crate::secrets::is_valid(&s),
                Ok(None) => false,
                Err(_) => false,
            };
        if intact {
            return Next::After(earliest(refresh::next_check(es, now), lease_wait));
        }
    }

    // Fetch, render, write.
    let mut lease = None;
    let written = fetch_and_write(ctx, es, key, &plan, &stores, &target, &secret_key, &mut lease).await;
    if written.is_ok() {
        ctx.store_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key_hash(key), stores_fp);
    }
    match written {
        Ok((reason, message)) => match succeeded(ctx, es, &target, reason, message, now).await {
            // A leased value (Vault dynamic secrets, KV with ttl) is re-fetched at two thirds of its lease.
            Next::After(next) if lease.is_some() => {
                let early = lease.map(|l| l.mul_f64(2.0 / 3.0).max(Duration::from_secs(1)));
                if let Some(e) = early {
                    // Due a little before the requeue, which refresh jitter may bring forward by up to 10%.
                    let due = Instant::now() + e.mul_f64(0.85);
                    ctx.lease_due
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key.clone(), due);
                }
                Next::After(earliest(next, early))
            }
            other => other,
        },
        Err(f) => failed(ctx, es, f).await,
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
    lease: &mut Option<Duration>,
) -> Result<(&'static str, &'static str), Failure> {
    let answers = ctx
        .reads
        .read(plan, stores, &key.namespace)
        .await
        .map_err(|(store, e)| Failure {
            message: format!("could not get secret data from provider: {store}: {e}"),
            retry: true,
            retry_after: e.retry_after(),
        })?;
    *lease = answers.expires_in;
    let delims = ctx.settings.delims.clone();
    let transform = move |tpl: &str, k: &str| -> Result<String, String> {
        let data: BTreeMap<String, Vec<u8>> = [("value".to_string(), k.as_bytes().to_vec())].into();
        syncret_template::Template::parse("transform", tpl, &delims)
            .and_then(|t| t.execute(&syncret_template::Value::from_data(&data)))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.message)
    };
    let deletion = es.spec.target.deletion_policy;
    let assembled = fetch::assemble(plan, &answers, deletion, &transform).map_err(|e| Failure {
        message: format!("could not get secret data from provider: {}", e.message),
        retry: true,
        retry_after: e.provider.and_then(|p| p.retry_after),
    })?;
    for m in &assembled.missing {
        let note = if m.key.is_empty() {
            format!("secret does not exist at provider using {}", m.field)
        } else {
            format!("secret does not exist at provider using {} (key={})", m.field, m.key)
        };
        ctx.events
            .publish(object_ref(es), Kind::Normal, es_reason::MISSING_PROVIDER_SECRET, note);
    }

    // No data at all: deletionPolicy decides.
    if assembled.data.is_empty() {
        match deletion {
            ExternalSecretDeletionPolicy::Delete => {
                if es.spec.target.creation_policy != ExternalSecretCreationPolicy::Owner {
                    return Err(fail_final(format!(
                        "could not delete secret: unable to delete secret {target}: creationPolicy={:?} is not Owner",
                        es.spec.target.creation_policy
                    )));
                }
                if let Some(existing) = read_secret(ctx, &key.namespace, target).await.map_err(fail)? {
                    secret::check_ownership(es, &existing).map_err(|e| fail_final(e.to_string()))?;
                    delete_secret(ctx, &key.namespace, target)
                        .await
                        .map_err(|e| fail(format!("could not delete secret: {e}")))?;
                    ctx.events.publish(
                        object_ref(es),
                        Kind::Normal,
                        es_reason::DELETED,
                        "secret deleted due to DeletionPolicy=Delete",
                    );
                }
                return Ok((es_reason::SECRET_DELETED, "secret deleted due to DeletionPolicy=Delete"));
            }
            ExternalSecretDeletionPolicy::Retain => {
                return Ok((es_reason::SECRET_SYNCED, "secret retained due to DeletionPolicy=Retain"));
            }
            ExternalSecretDeletionPolicy::Merge => {}
        }
    }

    // Template sources, then the desired content (pure).
    let sources = template_sources(ctx, es, &key.namespace).await.map_err(fail)?;
    let desired = desired::desired(es, assembled.data, &sources, &ctx.settings.delims)
        .map_err(|e| fail_final(format!("could not apply template: {e}")))?;
    let fingerprint = fingerprint(es, target, &desired);

    // Zero-write fast path: the Secret is intact and holds exactly this.
    if ctx.secrets.unchanged(secret_key, fingerprint) {
        if es.spec.target.creation_policy == ExternalSecretCreationPolicy::Owner {
            delete_orphans(ctx, es, target)
                .await
                .map_err(|e| fail(format!("could not delete orphaned secrets: {e}")))?;
        }
        return Ok((es_reason::SECRET_SYNCED, "secret synced"));
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
                if policy == ExternalSecretCreationPolicy::Owner {
                    delete_orphans(ctx, es, target)
                        .await
                        .map_err(|e| fail(format!("could not delete orphaned secrets: {e}")))?;
                }
                ctx.events
                    .publish(object_ref(es), Kind::Normal, es_reason::CREATED, "secret created");
                rollout_if_asked(ctx, es, true, false).await;
                return Ok((es_reason::SECRET_SYNCED, "secret synced"));
            }
            Err(CreateError::Exists) => {}
            Err(CreateError::Other(e)) => return Err(fail(format!("could not update secret: {e}"))),
        }
    }
    let existing = read_secret(ctx, &key.namespace, target).await.map_err(fail)?;
    let write = secret::plan(es, target, &desired, existing.as_ref()).map_err(|e| match e {
        secret::WriteError::OwnedByOther { .. } => {
            fail_final(format!("target is owned by another ExternalSecret: {e}"))
        }
        secret::WriteError::NotOurs { .. } => fail_final(format!("failed to take ownership of target secret: {e}")),
        secret::WriteError::Immutable { .. } => fail_final(e.to_string()),
    })?;
    if es.spec.target.creation_policy == ExternalSecretCreationPolicy::Owner {
        delete_orphans(ctx, es, target)
            .await
            .map_err(|e| fail(format!("could not delete orphaned secrets: {e}")))?;
    }
    match write {
        Write::Skip => Ok((es_reason::SECRET_SYNCED, "secret synced")),
        Write::Missing => Ok((
            es_reason::SECRET_MISSING,
            "secret will not be created due to CreationPolicy=Merge",
        )),
        Write::Unchanged => {
            if let Some(s) = &existing {
                ctx.secrets
                    .record_write(secret_key, &s.resource_version().unwrap_or_default(), fingerprint);
            }
            Ok((es_reason::SECRET_SYNCED, "secret synced"))
        }
        Write::Apply {
            secret,
            create,
            remove_keys,
            data_changed,
        } => {
            let rv = apply_secret(ctx, es, &secret, &remove_keys)
                .await
                .map_err(|e| fail(format!("could not update secret: {e}")))?;
            ctx.secrets.record_write(secret_key, &rv, fingerprint);
            rollout_if_asked(ctx, es, create, data_changed).await;
            let (reason, note) = if create {
                (es_reason::CREATED, "secret created")
            } else {
                (es_reason::UPDATED, "secret updated")
            };
            ctx.events.publish(object_ref(es), Kind::Normal, reason, note);
            Ok((es_reason::SECRET_SYNCED, "secret synced"))
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

async fn read_secret(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Secret>, String> {
    ctx.secret_limiter.acquire().await;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let s = api
        .get_opt(name)
        .await
        .map_err(|e| format!("unable to get Secret {name:?}: {e}"))?;
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
        let nulls: serde_json::Map<String, serde_json::Value> = remove_keys
            .iter()
            .map(|k| (k.clone(), serde_json::Value::Null))
            .collect();
        let patch = serde_json::json!({ "data": nulls });
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
/// there is something to delete.
async fn delete_orphans(ctx: &Context, es: &ExternalSecret, target: &str) -> Result<(), String> {
    let ns = es.namespace().unwrap_or_default();
    let ours = hash::owner_label(&ns, &es.name_any());
    for name in ctx
        .secrets
        .created_by(&ns, &ours)
        .into_iter()
        .filter(|n| **n != *target)
    {
        delete_secret(ctx, &ns, &name).await?;
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

async fn template_sources(ctx: &Context, es: &ExternalSecret, namespace: &str) -> Result<TemplateSources, String> {
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
    if es.spec.target.deletion_policy == ExternalSecretDeletionPolicy::Delete
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

fn ready_condition(
    old: Option<&ExternalSecretStatus>,
    ready: bool,
    reason: &str,
    message: &str,
) -> ExternalSecretStatusCondition {
    let prev = old.and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == ExternalSecretConditionType::Ready)
    });
    let status = if ready { "True" } else { "False" };
    // lastTransitionTime changes only when the status does (ESO's SetExternalSecretCondition).
    let ltt = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => None,
    }
    .unwrap_or_else(|| refresh::to_time(Utc::now()));
    ExternalSecretStatusCondition {
        type_: ExternalSecretConditionType::Ready,
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_transition_time: Some(ltt),
    }
}

async fn patch_status(ctx: &Context, es: &ExternalSecret, status: ExternalSecretStatus) {
    if es.status.as_ref() == Some(&status) {
        return;
    }
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    let patch = serde_json::json!({ "status": status });
    ctx.api_limiter.acquire().await;
    let key = Key::new(es.namespace().unwrap_or_default(), es.name_any());
    ctx.written_status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), status.clone());
    if let Err(e) = api
        .patch_status(&es.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        ctx.written_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        tracing::debug!(externalsecret = %es.name_any(), error = %e, "unable to update ExternalSecret status");
    }
}

async fn succeeded(
    ctx: &Arc<Context>,
    es: &ExternalSecret,
    target: &str,
    reason: &'static str,
    message: &'static str,
    now: chrono::DateTime<Utc>,
) -> Next {
    let old = es.status.as_ref();
    let mut status = ExternalSecretStatus {
        refresh_time: Some(refresh::to_time(now)),
        synced_resource_version: refresh::resource_version(es),
        conditions: vec![ready_condition(old, true, reason, message)],
        binding: Some(LocalObjectReference {
            name: target.to_string(),
        }),
    };
    // Keep other condition types (e.g. Deleted) as they are.
    status.conditions.extend(
        old.into_iter()
            .flat_map(|s| s.conditions.iter())
            .filter(|c| c.type_ != ExternalSecretConditionType::Ready)
            .cloned(),
    );
    ctx.metrics.external_secrets.set_ready(&es_key(es), true);
    let mut synced = es.clone();
    synced.status = Some(status.clone());
    patch_status(ctx, es, status).await;
    Next::After(refresh::next_check(&synced, now))
}

async fn failed(ctx: &Arc<Context>, es: &ExternalSecret, f: Failure) -> Next {
    let old = es.status.as_ref();
    let mut status = old.cloned().unwrap_or_default();
    let cond = ready_condition(old, false, es_reason::SECRET_SYNCED_ERROR, &f.message);
    status
        .conditions
        .retain(|c| c.type_ != ExternalSecretConditionType::Ready);
    status.conditions.insert(0, cond);
    let key = es_key(es);
    ctx.metrics.external_secrets.set_ready(&key, false);
    ctx.metrics.sync_failed(&f.message);
    ctx.events.publish(
        object_ref(es),
        Kind::Warning,
        es_reason::UPDATE_FAILED,
        f.message.clone(),
    );
    tracing::info!(externalsecret = %key, error = %f.message, "sync failed");
    patch_status(ctx, es, status).await;
    if f.retry {
        Next::Retry(f.retry_after)
    } else {
        Next::Idle
    }
}

/// Failure counts per ExternalSecret for backoff.
#[derive(Default)]
pub struct Failures(std::sync::Mutex<HashMap<Key, u32>>);

impl Failures {
    pub fn inc(&self, key: &Key) -> u32 {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(key.clone()).or_default();
        *n = n.saturating_add(1);
        *n
    }

    pub fn reset(&self, key: &Key) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}
