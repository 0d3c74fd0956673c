//! Metadata-only watches of the objects ExternalSecrets and PushSecrets depend on ([`crate::dependents`]):
//! ConfigMaps and Secrets (template sources, ConfigMap targets; all of them, since template sources carry no
//! label), and the kinds of generic targets (only objects labelled `reconcile.external-secrets.io/managed=true`).
//! A watch starts when a first dependent needs its kind (an operator without `templateFrom` never lists a
//! ConfigMap); each change of a depended-on object wakes its dependents within seconds (ESO #1430). No data is
//! read: the watch sees names and resourceVersions only, and a render reads a source once per version.
//!
//! The Secret watch is shared with the PushSecret controller, whose source Secrets it also follows.
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::{GroupVersionKind, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use syncret_crds::labels::{LABEL_MANAGED, LABEL_MANAGED_VALUE};
use tokio_util::sync::CancellationToken;

use super::{kit, scoped};
use crate::context::Context;
use crate::dependents::Dependent;
use crate::schedule::Lane;
use crate::sync::dependencies::ObjectKind;

/// Starts the watches of kinds a dependent needs and nobody watches yet (once the controllers started).
pub(crate) fn ensure(ctx: &Arc<Context>) {
    let Some(stop) = ctx.dependents.stop() else { return };
    for kind in ctx.dependents.to_start() {
        tokio::spawn(watch(ctx.clone(), kind, stop.clone()));
    }
}

/// Starts the Secret watch for the PushSecret controller (if no dependent started it already).
pub(super) fn ensure_secrets(ctx: &Arc<Context>) {
    let Some(stop) = ctx.dependents.stop() else { return };
    if ctx.dependents.claim(&ObjectKind::Secret) {
        tokio::spawn(watch(ctx.clone(), ObjectKind::Secret, stop));
    }
}

/// Wakes dependents: ExternalSecrets re-render; PushSecrets push again.
fn wake(ctx: &Context, woken: Vec<Dependent>) {
    for d in woken {
        match d {
            Dependent::ExternalSecret(k) => ctx.es_queue.add(k, Lane::Fast),
            Dependent::PushSecret(k) => {
                ctx.push.index().mark_dirty(&k);
                ctx.push.queue.add(k, Lane::Fast);
            }
        }
    }
}

/// One event of the watch of `kind`, into the index; returns whom to wake.
fn on_event<K: Resource>(ctx: &Context, kind: &ObjectKind, ev: &Event<PartialObjectMeta<K>>) -> Vec<Dependent> {
    let mut idx = ctx.dependents.index();
    match ev {
        Event::Apply(m) | Event::InitApply(m) => idx.observed(
            kind,
            m.metadata.namespace.as_deref().unwrap_or_default(),
            m.metadata.name.as_deref().unwrap_or_default(),
            m.metadata.resource_version.as_deref().unwrap_or_default(),
            matches!(ev, Event::InitApply(_)),
        ),
        Event::Delete(m) => idx.deleted(
            kind,
            m.metadata.namespace.as_deref().unwrap_or_default(),
            m.metadata.name.as_deref().unwrap_or_default(),
        ),
        Event::Init => {
            idx.list_started(kind);
            Vec::new()
        }
        Event::InitDone => idx.list_done(kind),
    }
}

async fn watch(ctx: Arc<Context>, kind: ObjectKind, stop: CancellationToken) {
    let all = watcher::Config::default();
    match &kind {
        ObjectKind::ConfigMap => {
            let stream = watcher::watcher(scoped::<PartialObjectMeta<ConfigMap>>(&ctx), all).default_backoff();
            kit::watch(stream, None, stop, |ev, _| wake(&ctx, on_event(&ctx, &kind, &ev))).await;
        }
        ObjectKind::Secret => {
            let stream = watcher::watcher(scoped::<PartialObjectMeta<Secret>>(&ctx), all).default_backoff();
            kit::watch(stream, None, stop, |ev, _| {
                super::pushsecret::on_secret_event(&ctx, &ev);
                wake(&ctx, on_event(&ctx, &kind, &ev));
            })
            .await;
        }
        ObjectKind::Resource { api_version, kind: k } => {
            let Some(ar) = discover(&ctx, api_version, k, &stop).await else {
                return;
            };
            let api: Api<PartialObjectMeta<DynamicObject>> = match &ctx.settings.namespace {
                Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &ar),
                None => Api::all_with(ctx.client.clone(), &ar),
            };
            let managed = watcher::Config::default().labels(&format!("{LABEL_MANAGED}={LABEL_MANAGED_VALUE}"));
            let stream = watcher::watcher(api, managed).default_backoff();
            kit::watch(stream, None, stop, |ev, _| wake(&ctx, on_event(&ctx, &kind, &ev))).await;
        }
    }
}

/// The API resource of a generic target's kind, retried (every 30 s) until the kind exists (its CRD may be
/// installed after the ExternalSecret) or the operator stops.
async fn discover(ctx: &Context, api_version: &str, kind: &str, stop: &CancellationToken) -> Option<ApiResource> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    loop {
        match kube::discovery::pinned_kind(&ctx.client, &gvk).await {
            Ok((ar, _)) => return Some(ar),
            Err(e) => tracing::info!(kind, api_version, error = %e, "generic target kind not found; watching it later"),
        }
        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(30)) => {}, _ = stop.cancelled() => return None }
    }
}
