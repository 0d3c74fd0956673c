//! ClusterExternalSecret: stamps one ExternalSecret into every selected namespace (ESO semantics: names and
//! selectors, `externalSecretName`/`externalSecretMetadata`, `force-sync` mirrored, children owned by the CES,
//! adoption only of ExternalSecrets it owns, removal from namespaces that stop matching, status
//! `provisionedNamespaces`/`failedNamespaces`).
//!
//! Differences from ESO, on purpose: no finalizers are put on Namespaces (namespace events are watched, so a
//! removed syncret never leaves namespaces stuck in Terminating); and the children's identical reads are shared
//! (their refreshes are aligned and coalesced), so N namespaces cost one provider read per refresh, not N (#6133).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use syncret_crds::clusterexternalsecret::{
    ClusterExternalSecret, ClusterExternalSecretNamespaceFailure, ClusterExternalSecretStatus,
};
use syncret_crds::condition::ClusterExternalSecretStatusCondition;
use syncret_crds::externalsecret::ExternalSecret;
use syncret_crds::labels::{ANNOTATION_FORCE_SYNC, FINALIZER_CLUSTER_EXTERNAL_SECRET_CLEANUP};

use std::time::Duration;

use kube::runtime::reflector;
use tokio_util::sync::CancellationToken;

use super::kit::{InitGate, Next, Reconciler};
use super::{CES_CONTROLLER, fanout};
use crate::context::{Context, Key};
use crate::schedule::{Lane, Scheduler};

/// Field manager for the children.
pub const FIELD_MANAGER: &str = "syncret/clusterexternalsecret";

fn owner_ref(ces: &ClusterExternalSecret) -> OwnerReference {
    OwnerReference {
        api_version: "external-secrets.io/v1".into(),
        kind: "ClusterExternalSecret".into(),
        name: ces.name_any(),
        uid: ces.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `es` is controlled by the ClusterExternalSecret named `ces` (ESO ignores the UID).
pub fn owned_by(es: &ExternalSecret, ces: &str) -> bool {
    es.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.kind == "ClusterExternalSecret" && o.name == ces)
}

/// The namespaces a ClusterExternalSecret selects (`namespaces`, `namespaceSelector`, `namespaceSelectors`,
/// ORed), skipping terminating ones. Pure over the namespace view.
pub fn target_namespaces(
    ces: &ClusterExternalSecret,
    namespaces: &[(String, BTreeMap<String, String>, bool)],
) -> BTreeSet<String> {
    let mut selectors: Vec<Selector> = Vec::new();
    for s in ces
        .spec
        .namespace_selector
        .iter()
        .chain(ces.spec.namespace_selectors.iter())
    {
        if let Ok(sel) = Selector::try_from(s.clone()) {
            selectors.push(sel);
        }
    }
    namespaces
        .iter()
        .filter(|(name, labels, terminating)| {
            !terminating && (ces.spec.namespaces.contains(name) || selectors.iter().any(|s| s.matches(labels)))
        })
        .map(|(name, _, _)| name.clone())
        .collect()
}

/// The ClusterExternalSecret controller, as the kit runs it.
pub struct ClusterExternalSecrets;

impl Reconciler for ClusterExternalSecrets {
    type Key = Key;

    fn name(&self) -> &'static str {
        CES_CONTROLLER
    }

    fn queue<'c>(&self, ctx: &'c Context) -> &'c Scheduler<Key> {
        &ctx.ces_queue
    }

    fn workers(&self, _ctx: &Context) -> usize {
        1
    }

    fn reconcile(&self, ctx: &Arc<Context>, key: &Key) -> impl std::future::Future<Output = Next> + Send {
        let store = ctx.cluster_external_secrets.clone();
        let (ctx, name) = (ctx.clone(), key.name.clone());
        async move { reconcile(&ctx, &store, &name).await }
    }

    fn observe(&self, ctx: &Context, key: &Key, _lane: Lane, ok: bool, elapsed: Duration) {
        ctx.metrics.cluster_external_secrets.reconciled(key, ok, elapsed);
    }
}

/// ClusterExternalSecrets: a change of what matters (generation, annotations, finalizers, deletion) wakes one.
pub(super) async fn watch(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<ClusterExternalSecret>,
    gate: Arc<InitGate>,
    stop: CancellationToken,
) {
    let api: Api<ClusterExternalSecret> = Api::all(ctx.cluster_client.clone());
    super::watch_cluster_kind(ctx, api, writer, |c: &Context| &c.ces_queue, gate, stop).await;
}

/// Reconciles one ClusterExternalSecret.
pub async fn reconcile(ctx: &Arc<Context>, ces_store: &Store<ClusterExternalSecret>, name: &str) -> Next {
    let Some(ces) = ces_store.get(&ObjectRef::new(name)) else {
        ctx.metrics.cluster_external_secrets.remove(&key(name));
        return Next::Idle;
    };
    let api: Api<ClusterExternalSecret> = Api::all(ctx.cluster_client.clone());
    if ces.metadata.deletion_timestamp.is_some() {
        return finalize(ctx, &api, &ces).await;
    }
    if !ces
        .finalizers()
        .iter()
        .any(|f| f == FINALIZER_CLUSTER_EXTERNAL_SECRET_CLEANUP)
    {
        let mut finalizers = ces.finalizers().to_vec();
        finalizers.push(FINALIZER_CLUSTER_EXTERNAL_SECRET_CLEANUP.into());
        let patch =
            serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": ces.resource_version()}});
        ctx.api_limiter.acquire().await;
        if let Err(e) = api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::debug!(ces = name, error = %e, "could not add finalizer");
            return Next::Retry(None);
        }
        return Next::Idle; // the update event brings us back
    }
    let es_name = if ces.spec.external_secret_name.is_empty() {
        ces.name_any()
    } else {
        ces.spec.external_secret_name.clone()
    };
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let old = ces.status.clone().unwrap_or_default();

    let problems = ces.spec.validate();
    if !problems.is_empty() {
        failed.insert("unknown".into(), syncret_crds::validate::join(&problems));
    }
    let view = super::namespace_view(ctx);
    let targets = if problems.is_empty() {
        target_namespaces(&ces, &view)
    } else {
        BTreeSet::new()
    };
    let children = fanout::Children {
        old_name: &old.external_secret_name,
        old_namespaces: &old.provisioned_namespaces,
        name: &es_name,
    };
    let parent = &*ces;
    let provisioned = fanout::apply(
        children,
        &targets,
        &mut failed,
        move |ns, child| async move { ensure_child(ctx, parent, &ns, &child).await },
        move |ns, child| async move { delete_child(ctx, &ns, &child, name).await },
    )
    .await;

    let condition = if failed.is_empty() {
        ClusterExternalSecretStatusCondition {
            type_: "Ready".into(),
            status: "True".into(),
            message: None,
        }
    } else {
        ClusterExternalSecretStatusCondition {
            type_: "Ready".into(),
            status: "False".into(),
            message: Some("one or more namespaces failed".into()),
        }
    };
    let status = ClusterExternalSecretStatus {
        external_secret_name: es_name,
        failed_namespaces: failed
            .iter()
            .map(|(namespace, reason)| ClusterExternalSecretNamespaceFailure {
                namespace: namespace.clone(),
                reason: reason.clone(),
            })
            .collect(),
        provisioned_namespaces: provisioned,
        conditions: vec![condition],
    };
    ctx.metrics
        .cluster_external_secrets
        .set_ready(&key(name), failed.is_empty());
    if ces.status.as_ref() != Some(&status) {
        ctx.api_limiter.acquire().await;
        let patch = serde_json::json!({ "status": status });
        if let Err(e) = api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(ces = name, error = %e, "could not update status");
        }
    }
    fanout::next(ces.spec.refresh_interval().ok().flatten(), failed.is_empty())
}

async fn ensure_child(ctx: &Context, ces: &ClusterExternalSecret, ns: &str, es_name: &str) -> Result<(), String> {
    let api: Api<ExternalSecret> = Api::namespaced(ctx.cluster_client.clone(), ns);
    let existing = ctx.external_secrets.get(&Key::new(ns, es_name));
    let existing = match existing {
        Some(e) => Some((*e).clone()),
        None => {
            ctx.api_limiter.acquire().await;
            api.get_opt(es_name).await.map_err(|e| e.to_string())?
        }
    };
    if let Some(e) = &existing
        && !owned_by(e, &ces.name_any())
    {
        return Err("external secret already exists in namespace".into());
    }
    let meta = &ces.spec.external_secret_metadata;
    let mut annotations = meta.annotations.clone();
    if let Some(v) = ces.annotations().get(ANNOTATION_FORCE_SYNC) {
        annotations.insert(ANNOTATION_FORCE_SYNC.into(), v.clone());
    }
    let child = ExternalSecret {
        metadata: ObjectMeta {
            name: Some(es_name.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(meta.labels.clone()).filter(|l| !l.is_empty()),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            owner_references: Some(vec![owner_ref(ces)]),
            ..Default::default()
        },
        spec: ces.spec.external_secret_spec.clone(),
        status: None,
    };
    // Skip the write when the child already says exactly this (no churn every refreshTime).
    if let Some(e) = &existing
        && e.spec == child.spec
        && e.labels() == child.labels()
        && e.annotations() == child.annotations()
    {
        return Ok(());
    }
    let mut body = serde_json::to_value(&child).map_err(|e| e.to_string())?;
    if let Some(o) = body.as_object_mut() {
        o.insert("apiVersion".into(), "external-secrets.io/v1".into());
        o.insert("kind".into(), "ExternalSecret".into());
        o.remove("status");
    }
    ctx.api_limiter.acquire().await;
    api.patch(
        es_name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("could not create or update ExternalSecret: {e}"))
}

async fn delete_child(ctx: &Context, ns: &str, es_name: &str, ces_name: &str) -> Result<(), String> {
    let api: Api<ExternalSecret> = Api::namespaced(ctx.cluster_client.clone(), ns);
    ctx.api_limiter.acquire().await;
    let Some(existing) = api.get_opt(es_name).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if !owned_by(&existing, ces_name) {
        return Ok(());
    }
    ctx.api_limiter.acquire().await;
    match api.delete(es_name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(format!(
            "external secret in non matching namespace could not be deleted: {e}"
        )),
    }
}

async fn finalize(ctx: &Context, api: &Api<ClusterExternalSecret>, ces: &ClusterExternalSecret) -> Next {
    if !ces
        .finalizers()
        .iter()
        .any(|f| f == FINALIZER_CLUSTER_EXTERNAL_SECRET_CLEANUP)
    {
        return Next::Idle;
    }
    let status = ces.status.clone().unwrap_or_default();
    let es_name = if status.external_secret_name.is_empty() {
        ces.name_any()
    } else {
        status.external_secret_name.clone()
    };
    for ns in &status.provisioned_namespaces {
        if let Err(e) = delete_child(ctx, ns, &es_name, &ces.name_any()).await {
            tracing::warn!(ces = %ces.name_any(), namespace = %ns, error = %e, "could not delete ExternalSecret");
            return Next::Retry(None);
        }
    }
    let finalizers: Vec<String> = ces
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER_CLUSTER_EXTERNAL_SECRET_CLEANUP)
        .cloned()
        .collect();
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": ces.resource_version()}});
    ctx.api_limiter.acquire().await;
    match api
        .patch(&ces.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Next::Idle,
        Err(kube::Error::Api(s)) if s.code == 404 => Next::Idle,
        Err(_) => Next::Retry(None),
    }
}

/// The ClusterExternalSecret controlling an ExternalSecret, if any.
pub fn controller_of(es: &ExternalSecret) -> Option<String> {
    es.owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "ClusterExternalSecret")
        .map(|o| o.name.clone())
}

/// Key of a ClusterExternalSecret in the shared queue types.
pub fn key(name: &str) -> Key {
    Key::new("", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_by_names_and_selectors_and_skips_terminating() {
        let ces: ClusterExternalSecret = serde_yaml::from_str(
            r#"
apiVersion: external-secrets.io/v1
kind: ClusterExternalSecret
metadata: {name: c}
spec:
  namespaces: [explicit]
  namespaceSelectors:
  - matchLabels: {team: a}
  - matchExpressions: [{key: env, operator: In, values: [prod]}]
  externalSecretSpec:
    secretStoreRef: {name: s, kind: ClusterSecretStore}
"#,
        )
        .unwrap();
        let l = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let view = vec![
            ("explicit".to_string(), l(&[]), false),
            ("team-a".to_string(), l(&[("team", "a")]), false),
            ("prod".to_string(), l(&[("env", "prod")]), false),
            ("dev".to_string(), l(&[("env", "dev")]), false),
            ("dying".to_string(), l(&[("team", "a")]), true),
        ];
        let got: Vec<String> = target_namespaces(&ces, &view).into_iter().collect();
        assert_eq!(got, ["explicit", "prod", "team-a"]);
    }
}
