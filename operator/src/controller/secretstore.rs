//! SecretStore / ClusterSecretStore reconcile: validate the spec, build (or reuse) the one shared client, ask
//! the provider to validate, and report `Ready` with ESO's reasons and `capabilities`. Validation reuses the
//! cached client, so it never logs in again by itself (ESO #4032, #5891).
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use syncret_crds::condition::{SecretStoreStatusCondition, store_reason};
use syncret_crds::secretstore::{
    ClusterSecretStore, SecretStore, SecretStoreCapabilities, SecretStoreSpec, SecretStoreStatus, StoreKind,
};
use syncret_providers::{Capabilities, StoreInfo, StoreScope, Validation};

use super::externalsecret::Next;
use crate::context::{Context, Key};
use crate::sync::refresh;

struct Outcome {
    ready: bool,
    reason: &'static str,
    message: String,
    capabilities: Option<SecretStoreCapabilities>,
}

/// Reconciles one store.
pub async fn reconcile(ctx: &Arc<Context>, kind: StoreKind, key: &Key) -> Next {
    let start = Instant::now();
    let (spec, meta, status) = match kind {
        StoreKind::SecretStore => {
            match ctx
                .stores
                .secret_stores
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
            {
                Some(s) => (s.spec.clone(), s.metadata.clone(), s.status.clone()),
                None => {
                    ctx.metrics.secret_stores.remove(key);
                    return Next::Idle;
                }
            }
        }
        StoreKind::ClusterSecretStore => match ctx.stores.cluster_secret_stores.get(&ObjectRef::new(&key.name)) {
            Some(s) => (s.spec.spec.clone(), s.metadata.clone(), s.status.clone()),
            None => {
                ctx.metrics.cluster_secret_stores.remove(key);
                return Next::Idle;
            }
        },
    };
    if (!spec.controller.is_empty() && spec.controller != ctx.settings.controller_class)
        || !ctx.settings.reconciles(kind)
    {
        return Next::Idle;
    }
    if let Err(e) = super::pushsecret::store_finalizer(ctx, kind, key, &meta).await {
        tracing::debug!(store = %key, error = %e, "could not update the store finalizer");
        return Next::Retry(None);
    }
    let outcome = evaluate(ctx, kind, key, &spec, &meta).await;
    let metrics = match kind {
        StoreKind::SecretStore => &ctx.metrics.secret_stores,
        StoreKind::ClusterSecretStore => &ctx.metrics.cluster_secret_stores,
    };
    metrics.set_ready(key, outcome.ready);
    metrics.reconciled(key, outcome.ready, start.elapsed());
    write_status(ctx, kind, key, status.as_ref(), &outcome).await;
    let every = spec
        .refresh_interval()
        .ok()
        .flatten()
        .filter(|d| !d.is_zero())
        .unwrap_or(ctx.settings.store_requeue_interval);
    if outcome.ready {
        Next::After(Some(every))
    } else {
        Next::Retry(None)
    }
}

async fn evaluate(
    ctx: &Arc<Context>,
    kind: StoreKind,
    key: &Key,
    spec: &SecretStoreSpec,
    meta: &ObjectMeta,
) -> Outcome {
    let invalid = |reason, message: String| Outcome {
        ready: false,
        reason,
        message,
        capabilities: None,
    };
    let problems = spec.validate_for(kind, meta.namespace.as_deref());
    if !problems.is_empty() {
        return invalid(
            store_reason::INVALID_STORE_CONFIGURATION,
            syncret_crds::validate::join(&problems),
        );
    }
    let scope = match kind {
        StoreKind::SecretStore => StoreScope::SecretStore,
        StoreKind::ClusterSecretStore => StoreScope::ClusterSecretStore,
    };
    let info = StoreInfo {
        scope,
        name: key.name.to_string(),
        namespace: (kind == StoreKind::SecretStore).then(|| key.namespace.to_string()),
        uid: meta.uid.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or_default(),
        spec: Arc::new(spec.clone()),
    };
    let provider = match ctx.reads.registry().provider_for(spec) {
        Ok(p) => p,
        Err(e) => return invalid(store_reason::INVALID_PROVIDER_CONFIG, e.to_string()),
    };
    if scope == StoreScope::ClusterSecretStore && provider.is_referent(&info) {
        // Referent credentials resolve per ExternalSecret namespace: nothing to check here (ESO: Unknown, Ready).
        return Outcome {
            ready: true,
            reason: store_reason::VALIDATION_UNKNOWN,
            message: "store validated".into(),
            capabilities: None,
        };
    }
    let (cache_key, client) = match ctx.reads.client_for(&info, &key.namespace).await {
        Ok(c) => c,
        Err(e) => {
            return invalid(
                store_reason::INVALID_PROVIDER_CONFIG,
                format!("unable to create client: {e}"),
            );
        }
    };
    let capabilities = Some(match client.capabilities() {
        Capabilities::ReadOnly => SecretStoreCapabilities::ReadOnly,
        Capabilities::WriteOnly => SecretStoreCapabilities::WriteOnly,
        Capabilities::ReadWrite => SecretStoreCapabilities::ReadWrite,
    });
    match client.validate().await {
        Ok(Validation::Ready) => Outcome {
            ready: true,
            reason: store_reason::VALID,
            message: "store validated".into(),
            capabilities,
        },
        Ok(Validation::Unknown) => Outcome {
            ready: true,
            reason: store_reason::VALIDATION_UNKNOWN,
            message: "store validated".into(),
            capabilities,
        },
        Err(e) => {
            if e.invalidates_client() {
                ctx.reads.clients.invalidate(&cache_key);
            }
            Outcome {
                ready: false,
                reason: store_reason::VALIDATION_FAILED,
                message: format!("unable to validate store: {e}"),
                capabilities,
            }
        }
    }
}

async fn write_status(ctx: &Context, kind: StoreKind, key: &Key, old: Option<&SecretStoreStatus>, o: &Outcome) {
    let status_text = if o.ready { "True" } else { "False" };
    let prev = old.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let ltt = match prev {
        Some(p) if p.status == status_text => p.last_transition_time.clone(),
        _ => None,
    }
    .unwrap_or_else(|| refresh::to_time(chrono::Utc::now()));
    let status = SecretStoreStatus {
        conditions: vec![SecretStoreStatusCondition {
            type_: "Ready".into(),
            status: status_text.into(),
            reason: Some(o.reason.into()),
            message: Some(o.message.clone()),
            last_transition_time: Some(ltt),
        }],
        capabilities: o.capabilities.clone(),
    };
    if old == Some(&status) {
        return;
    }
    let patch = serde_json::json!({ "status": status });
    ctx.api_limiter.acquire().await;
    let res = match kind {
        StoreKind::SecretStore => {
            let api: Api<SecretStore> = Api::namespaced(ctx.client.clone(), &key.namespace);
            api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|s| s.name_any())
        }
        StoreKind::ClusterSecretStore => {
            let api: Api<ClusterSecretStore> = Api::all(ctx.client.clone());
            api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|s| s.name_any())
        }
    };
    if let Err(e) = res {
        tracing::debug!(store = %key, error = %e, "unable to update store status");
    }
}
