//! The GeneratorState controller: what generated credentials hold at their provider, kept for exactly as long as
//! they are in use.
//!
//! - A current state (no `garbageCollectionDeadline`) with a lease: the lease is renewed in place at two thirds
//!   of what is left (`sys/leases/renew`, and the login token that created it with it), and the new end written
//!   back into the state. When renewals can no longer extend it (not renewable, cut short by its max TTL, or its
//!   token ends first, e.g. after a restart) the owner is woken to rotate: new values are written first, then
//!   this state is superseded ([`crate::generate::state::commit`]). A state whose owner no longer uses that
//!   generator is superseded too.
//! - A superseded state past its deadline is deleted; a state being deleted has its lease revoked, then our
//!   finalizer released (ESO's garbage collection of states, with the cleanup ESO's VaultDynamicSecret lacks).
//!
//! Decisions are [`crate::sync::lease::state_step`]; this is the shell.
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use syncret_crds::generator::{GeneratorState, STATE_FINALIZER, STATE_OWNER_KEY};
use tokio_util::sync::CancellationToken;

use super::kit::{self, Next, Reconciler};
use super::{Seen, scoped, watch_stream};
use crate::context::{Context, Key, Settings};
use crate::events::Kind;
use crate::generate::{from_snapshot, state};
use crate::schedule::{Lane, Limit, Scheduler};
use crate::sync::hash::generator_owner_key;
use crate::sync::lease::{LeaseStep, StateStep, state_step};

/// Controller name in metrics.
pub const GS_CONTROLLER: &str = "generatorstate";

/// The controller's share of the [`Context`]: the watched states and the queue.
pub struct GeneratorStates {
    pub store: Store<GeneratorState>,
    pub queue: Scheduler<Key>,
}

impl GeneratorStates {
    pub fn new(settings: &Settings) -> (Self, reflector::store::Writer<GeneratorState>) {
        let (store, writer) = reflector::store();
        (
            Self {
                store,
                queue: Scheduler::new(Limit::Soft(settings.namespace_limit())),
            },
            writer,
        )
    }
}

/// The watch of GeneratorStates (outside the readiness gate: the CRD may be missing on an older install).
pub(super) async fn watch(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<GeneratorState>,
    stop: CancellationToken,
) {
    let stream = watch_stream(scoped::<GeneratorState>(&ctx), watcher::Config::default()).reflect(writer);
    let mut seen = Seen::new();
    kit::watch(stream, None, stop, |ev, _| {
        let (gs, deleted) = match ev {
            Event::Apply(s) | Event::InitApply(s) => (s, false),
            Event::Delete(s) => (s, true),
            Event::Init | Event::InitDone => return,
        };
        let key = Key::new(gs.namespace().unwrap_or_default(), gs.name_any());
        let changed = if deleted {
            seen.gone(&key)
        } else {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&gs.metadata.resource_version, &mut h);
            seen.changed(key.clone(), std::hash::Hasher::finish(&h))
        };
        if changed && !deleted {
            ctx.generator_states.queue.add(key, Lane::Fast);
        }
    })
    .await;
}

/// The GeneratorState controller, as the kit runs it.
pub struct GeneratorStateController;

impl Reconciler for GeneratorStateController {
    type Key = Key;

    fn name(&self) -> &'static str {
        GS_CONTROLLER
    }

    fn queue<'c>(&self, ctx: &'c Context) -> &'c Scheduler<Key> {
        &ctx.generator_states.queue
    }

    fn workers(&self, ctx: &Context) -> usize {
        ctx.settings.concurrent.clamp(1, 4)
    }

    fn reconcile(&self, ctx: &Arc<Context>, key: &Key) -> impl std::future::Future<Output = Next> + Send {
        reconcile(ctx, key)
    }
}

fn api(ctx: &Context, ns: &str) -> Api<GeneratorState> {
    Api::namespaced(ctx.client.clone(), ns)
}

fn until(at: chrono::DateTime<Utc>) -> Duration {
    (at - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

async fn reconcile(ctx: &Arc<Context>, key: &Key) -> Next {
    let Some(gs) = ctx
        .generator_states
        .store
        .get(&ObjectRef::new(&key.name).within(&key.namespace))
    else {
        return Next::Idle;
    };
    gauge(ctx);
    let lease = state::lease_of(&gs);
    let now = Utc::now();
    let step = state_step(
        gs.metadata.deletion_timestamp.is_some(),
        state::deadline_of(&gs),
        lease.as_ref(),
        now,
    );
    match step {
        StateStep::CleanUp => clean_up(ctx, &gs, key).await,
        StateStep::Delete => {
            ctx.api_limiter.acquire().await;
            match api(ctx, &key.namespace)
                .delete(&key.name, &DeleteParams::default())
                .await
            {
                Ok(_) => Next::Idle,
                Err(kube::Error::Api(e)) if e.code == 404 => Next::Idle,
                Err(e) => {
                    tracing::info!(generatorstate = %key, error = %e, "could not delete a superseded GeneratorState");
                    Next::Retry(None)
                }
            }
        }
        StateStep::WaitForDeadline(at) => Next::After(Some(until(at))),
        StateStep::Idle => Next::Idle,
        StateStep::Lease(step) => {
            if !owner_uses_it(ctx, &gs) {
                return supersede(ctx, &gs).await;
            }
            let Some(lease) = lease else { return Next::Idle };
            match step {
                LeaseStep::Renew(at) if at > now => Next::After(Some(until(at))),
                LeaseStep::Rotate(at) if at > now => Next::After(Some(until(at))),
                LeaseStep::Renew(_) => renew(ctx, &gs, key, &lease).await,
                LeaseStep::Rotate(_) => {
                    wake_owner(ctx, &gs);
                    // The owner supersedes this state once new values are written; look again in a while.
                    Next::After(Some(Duration::from_secs(30)))
                }
            }
        }
    }
}

/// `syncret_generator_states{phase}` from the watched states.
fn gauge(ctx: &Context) {
    let (mut current, mut superseded) = (0i64, 0i64);
    for s in ctx.generator_states.store.state() {
        if s.spec.garbage_collection_deadline.is_some() || s.metadata.deletion_timestamp.is_some() {
            superseded += 1;
        } else {
            current += 1;
        }
    }
    let m = &ctx.metrics.generator_states;
    m.with_label_values(&["current"]).set(current);
    m.with_label_values(&["superseded"]).set(superseded);
}

/// Whether the state's owner (an ExternalSecret) still has a generator at the key the state was made for.
/// Unknown owners (a PushSecret, an ExternalSecret not in the cache yet) count as using it.
fn owner_uses_it(ctx: &Context, gs: &GeneratorState) -> bool {
    let Some(owner) = gs.owner_references().iter().find(|o| o.kind == "ExternalSecret") else {
        return true;
    };
    let ns = gs.namespace().unwrap_or_default();
    let Some(label) = gs.labels().get(STATE_OWNER_KEY) else {
        return true;
    };
    let Some(es) = ctx.external_secrets.get(&Key::new(&ns, &owner.name)) else {
        return true;
    };
    es.spec.data_from.iter().enumerate().any(|(i, d)| {
        d.source_ref.as_ref().is_some_and(|s| s.generator_ref.is_some())
            && generator_owner_key("ExternalSecret", &ns, &owner.name, &i.to_string()) == *label
    })
}

async fn supersede(ctx: &Context, gs: &GeneratorState) -> Next {
    let deadline = Utc::now() + chrono::Duration::from_std(ctx.settings.generator_gc_grace).unwrap_or_default();
    let patch = serde_json::json!({ "spec": { "garbageCollectionDeadline": crate::sync::refresh::to_time(deadline) } });
    ctx.api_limiter.acquire().await;
    match api(ctx, &gs.namespace().unwrap_or_default())
        .patch(&gs.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Next::Idle,
        Err(_) => Next::Retry(None),
    }
}

/// Wakes the owner of a state whose lease must be rotated.
fn wake_owner(ctx: &Context, gs: &GeneratorState) {
    let ns = gs.namespace().unwrap_or_default();
    for o in gs.owner_references() {
        let key = Key::new(&ns, &o.name);
        match o.kind.as_str() {
            "ExternalSecret" => {
                ctx.es_state.rotation_due(&key);
                ctx.es_queue.add(key, Lane::Fast);
            }
            "PushSecret" => super::pushsecret::rotation_due(ctx, &key),
            _ => {}
        }
    }
}

async fn renew(ctx: &Context, gs: &GeneratorState, key: &Key, lease: &syncret_providers::Lease) -> Next {
    let resolved = match from_snapshot(&gs.spec.resource, &key.namespace) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(generatorstate = %key, error = %e, "cannot renew: the generator snapshot is unusable");
            wake_owner(ctx, gs);
            return Next::Idle;
        }
    };
    match ctx.reads.generators.renew(&resolved, ctx.reads.registry(), lease).await {
        Ok(renewed) => {
            let patch = serde_json::json!({ "spec": { "state": state::StateData { lease: renewed.clone() } } });
            ctx.api_limiter.acquire().await;
            if let Err(e) = api(ctx, &key.namespace)
                .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::info!(generatorstate = %key, error = %e, "could not record a renewed lease");
                return Next::Retry(None);
            }
            let next = crate::sync::lease::plan(&renewed, Utc::now()).at();
            Next::After(Some(until(next)))
        }
        Err(e) => {
            // The lease cannot be renewed (revoked, expired, not renewable): the owner makes new values.
            tracing::info!(generatorstate = %key, error = %e, "lease renewal failed; rotating");
            if let Some(o) = gs.owner_references().first() {
                ctx.events.publish(
                    k8s_openapi::api::core::v1::ObjectReference {
                        kind: Some(o.kind.clone()),
                        name: Some(o.name.clone()),
                        namespace: Some(key.namespace.to_string()),
                        uid: Some(o.uid.clone()),
                        api_version: Some(o.api_version.clone()),
                        ..Default::default()
                    },
                    Kind::Warning,
                    "LeaseRenewalFailed",
                    format!(
                        "renewing the lease recorded in GeneratorState {} failed, rotating: {e}",
                        key.name
                    ),
                );
            }
            wake_owner(ctx, gs);
            Next::After(Some(Duration::from_secs(30)))
        }
    }
}

/// Revokes the state's lease, then releases the finalizer.
async fn clean_up(ctx: &Context, gs: &GeneratorState, key: &Key) -> Next {
    if !gs.finalizers().iter().any(|f| f == STATE_FINALIZER) {
        return Next::Idle;
    }
    if let Some(lease) = state::lease_of(gs) {
        let res = match from_snapshot(&gs.spec.resource, &key.namespace) {
            Ok(r) => ctx.reads.generators.revoke(&r, ctx.reads.registry(), &lease).await,
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            tracing::info!(generatorstate = %key, error = %e, "could not clean up a GeneratorState");
            return Next::Retry(None);
        }
    }
    let finalizers: Vec<String> = gs
        .finalizers()
        .iter()
        .filter(|f| *f != STATE_FINALIZER)
        .cloned()
        .collect();
    let patch =
        serde_json::json!({ "metadata": { "finalizers": finalizers, "resourceVersion": gs.resource_version() } });
    ctx.api_limiter.acquire().await;
    match api(ctx, &key.namespace)
        .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Next::Idle,
        Err(kube::Error::Api(e)) if e.code == 404 => Next::Idle,
        Err(_) => Next::Retry(None),
    }
}
