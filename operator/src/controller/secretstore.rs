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

use super::STORE_CONTROLLER;
use super::kit::{Abort, Next, Reconciler};
use crate::context::{Context, Key};
use crate::schedule::Scheduler;
use crate::sync::refresh;

/// The store controller, as the kit runs it.
pub struct Stores;

impl Reconciler for Stores {
    type Key = (StoreKind, Key);

    fn name(&self) -> &'static str {
        STORE_CONTROLLER
    }

    fn queue<'c>(&self, ctx: &'c Context) -> &'c Scheduler<(StoreKind, Key)> {
        &ctx.store_queue
    }

    fn workers(&self, ctx: &Context) -> usize {
        ctx.settings.store_workers()
    }

    fn reconcile(&self, ctx: &Arc<Context>, key: &(StoreKind, Key)) -> impl std::future::Future<Output = Next> + Send {
        reconcile(ctx, key.0, &key.1)
    }

    fn aborted(
        &self,
        ctx: &Arc<Context>,
        key: &(StoreKind, Key),
        why: &Abort,
    ) -> impl std::future::Future<Output = ()> + Send {
        let (kind, key) = (key.0, key.1.clone());
        let (ctx, why) = (ctx.clone(), why.clone());
        async move {
            let Some((_, _, status)) = store_of(&ctx, kind, &key) else {
                return;
            };
            let failed = Err(StoreError::Aborted(why));
            write_status(&ctx, kind, &key, status.as_ref(), &failed).await;
        }
    }
}

/// A validated store: `Ready=True` with this reason and message.
struct Valid {
    reason: &'static str,
    message: String,
    capabilities: Option<SecretStoreCapabilities>,
}

/// Why a store is not Ready. The variant decides the condition reason (ESO's) and the retry.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("{0}")]
    InvalidConfiguration(String),
    #[error("{0}")]
    InvalidProvider(#[source] syncret_providers::ProviderError),
    #[error("unable to create client: {0}")]
    Client(#[source] syncret_providers::ProviderError),
    #[error("unable to validate store: {source}")]
    Validation {
        #[source]
        source: syncret_providers::ProviderError,
        capabilities: Option<SecretStoreCapabilities>,
    },
    #[error("{0}")]
    Aborted(Abort),
}

impl StoreError {
    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidConfiguration(_) => store_reason::INVALID_STORE_CONFIGURATION,
            Self::InvalidProvider(_) | Self::Client(_) => store_reason::INVALID_PROVIDER_CONFIG,
            Self::Validation { .. } => store_reason::VALIDATION_FAILED,
            Self::Aborted(a) => a.reason(),
        }
    }

    fn capabilities(&self) -> Option<SecretStoreCapabilities> {
        match self {
            Self::Validation { capabilities, .. } => capabilities.clone(),
            _ => None,
        }
    }
}

/// The store's spec, metadata and status from the reflector.
fn store_of(
    ctx: &Context,
    kind: StoreKind,
    key: &Key,
) -> Option<(SecretStoreSpec, ObjectMeta, Option<SecretStoreStatus>)> {
    match kind {
        StoreKind::SecretStore => ctx
            .stores
            .secret_stores
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
            .map(|s| (s.spec.clone(), s.metadata.clone(), s.status.clone())),
        StoreKind::ClusterSecretStore => ctx
            .stores
            .cluster_secret_stores
            .get(&ObjectRef::new(&key.name))
            .map(|s| (s.spec.spec.clone(), s.metadata.clone(), s.status.clone())),
    }
}

/// Reconciles one store.
pub async fn reconcile(ctx: &Arc<Context>, kind: StoreKind, key: &Key) -> Next {
    let start = Instant::now();
    let Some((spec, meta, status)) = store_of(ctx, kind, key) else {
        match kind {
            StoreKind::SecretStore => ctx.metrics.secret_stores.remove(key),
            StoreKind::ClusterSecretStore => ctx.metrics.cluster_secret_stores.remove(key),
        }
        return Next::Idle;
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
    metrics.set_ready(key, outcome.is_ok());
    metrics.reconciled(key, outcome.is_ok(), start.elapsed());
    write_status(ctx, kind, key, status.as_ref(), &outcome).await;
    let every = spec
        .refresh_interval()
        .ok()
        .flatten()
        .filter(|d| !d.is_zero())
        .unwrap_or(ctx.settings.store_requeue_interval);
    match outcome {
        Ok(_) => Next::After(Some(every)),
        Err(_) => Next::Retry(None),
    }
}

async fn evaluate(
    ctx: &Arc<Context>,
    kind: StoreKind,
    key: &Key,
    spec: &SecretStoreSpec,
    meta: &ObjectMeta,
) -> Result<Valid, StoreError> {
    let problems = spec.validate_for(kind, meta.namespace.as_deref());
    if !problems.is_empty() {
        return Err(StoreError::InvalidConfiguration(syncret_crds::validate::join(
            &problems,
        )));
    }
    let scope = match kind {
        StoreKind::SecretStore => StoreScope::SecretStore,
        StoreKind::ClusterSecretStore => StoreScope::ClusterSecretStore,
    };
    // Timeouts above the reconcile deadline are clamped (the store says so).
    let (spec, note) = crate::stores::bounded(spec.clone(), ctx.settings.reconcile_timeout);
    let validated = |reason, capabilities| Valid {
        reason,
        message: match &note {
            Some(n) => format!("store validated; {n}"),
            None => "store validated".into(),
        },
        capabilities,
    };
    let info = StoreInfo {
        scope,
        name: key.name.to_string(),
        namespace: (kind == StoreKind::SecretStore).then(|| key.namespace.to_string()),
        uid: meta.uid.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or_default(),
        spec: Arc::new(spec),
    };
    let provider = ctx
        .reads
        .registry()
        .provider_for(&info.spec)
        .map_err(StoreError::InvalidProvider)?;
    if scope == StoreScope::ClusterSecretStore && provider.is_referent(&info) {
        // Referent credentials resolve per ExternalSecret namespace: nothing to check here (ESO: Unknown, Ready).
        return Ok(validated(store_reason::VALIDATION_UNKNOWN, None));
    }
    let (cache_key, client) = ctx
        .reads
        .client_for(&info, &key.namespace)
        .await
        .map_err(StoreError::Client)?;
    let capabilities = Some(match client.capabilities() {
        Capabilities::ReadOnly => SecretStoreCapabilities::ReadOnly,
        Capabilities::WriteOnly => SecretStoreCapabilities::WriteOnly,
        Capabilities::ReadWrite => SecretStoreCapabilities::ReadWrite,
    });
    match client.validate().await {
        Ok(Validation::Ready) => Ok(validated(store_reason::VALID, capabilities)),
        Ok(Validation::Unknown) => Ok(validated(store_reason::VALIDATION_UNKNOWN, capabilities)),
        Err(source) => {
            if source.invalidates_client() {
                ctx.reads.clients.invalidate(&cache_key);
            }
            Err(StoreError::Validation { source, capabilities })
        }
    }
}

async fn write_status(
    ctx: &Context,
    kind: StoreKind,
    key: &Key,
    old: Option<&SecretStoreStatus>,
    outcome: &Result<Valid, StoreError>,
) {
    let (ready, reason, message, capabilities) = match outcome {
        Ok(v) => (true, v.reason, v.message.clone(), v.capabilities.clone()),
        Err(e) => (false, e.reason(), e.to_string(), e.capabilities()),
    };
    let status_text = if ready { "True" } else { "False" };
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
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(ltt),
        }],
        capabilities,
    };
    if old == Some(&status) {
        return;
    }
    let patch = serde_json::json!({ "status": status });
    ctx.api_limiter.acquire().await;
    let res = match kind {
        StoreKind::SecretStore => {
            let api: Api<SecretStore> = Api::namespaced(ctx.cluster_client.clone(), &key.namespace);
            api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|s| s.name_any())
        }
        StoreKind::ClusterSecretStore => {
            let api: Api<ClusterSecretStore> = Api::all(ctx.cluster_client.clone());
            api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|s| s.name_any())
        }
    };
    if let Err(e) = res {
        tracing::debug!(store = %key, error = %e, "unable to update store status");
    }
}
