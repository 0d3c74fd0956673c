//! ClusterPushSecret: stamps one PushSecret into every namespace its `namespaceSelectors` select (ESO semantics:
//! `pushSecretName` defaulting to the ClusterPushSecret's name, `pushSecretMetadata`, children controlled by the
//! ClusterPushSecret and removed from namespaces that stop matching or after a rename, a foreign PushSecret of the
//! same name is reported and left alone, status `pushSecretName`/`provisionedNamespaces`/`failedNamespaces`).
//!
//! As in ESO there is no finalizer: deleting the ClusterPushSecret deletes its children through their owner
//! references, and each child's own `deletionPolicy` decides what happens to the values it pushed.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{self, ObjectRef};
use syncret_crds::condition::PushSecretStatusCondition;
use syncret_crds::pushsecret::{
    ClusterPushSecret, ClusterPushSecretNamespaceFailure, ClusterPushSecretStatus, PushSecret,
};
use tokio_util::sync::CancellationToken;

use super::fanout;
use super::kit::{InitGate, Next, Reconciler};
use crate::context::{Context, Key};
use crate::schedule::{Lane, Scheduler};

/// Controller name in metrics.
pub const CPS_CONTROLLER: &str = "clusterpushsecret";
/// Field manager for the children.
pub const FIELD_MANAGER: &str = "syncret/clusterpushsecret";
const API_VERSION: &str = "external-secrets.io/v1alpha1";

fn owner_ref(cps: &ClusterPushSecret) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.into(),
        kind: "ClusterPushSecret".into(),
        name: cps.name_any(),
        uid: cps.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The ClusterPushSecret controlling a PushSecret, if any (ESO's `isPushSecretOwnedBy`: by name).
pub fn controller_of(ps: &PushSecret) -> Option<String> {
    ps.owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "ClusterPushSecret" && o.api_version == API_VERSION)
        .map(|o| o.name.clone())
}

/// The namespaces a ClusterPushSecret selects (any of `namespaceSelectors`), skipping terminating ones. Pure over
/// the namespace view `(name, labels, terminating)`.
pub fn target_namespaces(
    cps: &ClusterPushSecret,
    namespaces: &[(String, BTreeMap<String, String>, bool)],
) -> Result<BTreeSet<String>, String> {
    let selectors: Vec<Selector> = cps
        .spec
        .namespace_selectors
        .iter()
        .map(|s| Selector::try_from(s.clone()).map_err(|e| format!("failed to convert label selector: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(namespaces
        .iter()
        .filter(|(_, labels, terminating)| !terminating && selectors.iter().any(|s| s.matches(labels)))
        .map(|(name, _, _)| name.clone())
        .collect())
}

/// Namespaces changed: every ClusterPushSecret re-evaluates its selection.
pub(super) fn on_namespaces(ctx: &Context) {
    if !super::pushsecret::enabled(ctx).1 {
        return;
    }
    for cps in ctx.push.cluster_push_secrets.state() {
        ctx.push.cluster_queue.add(Key::new("", cps.name_any()), Lane::Fast);
    }
}

/// The ClusterPushSecret controller, as the kit runs it.
pub struct ClusterPushSecrets;

impl Reconciler for ClusterPushSecrets {
    type Key = Key;

    fn name(&self) -> &'static str {
        CPS_CONTROLLER
    }

    fn queue<'c>(&self, ctx: &'c Context) -> &'c Scheduler<Key> {
        &ctx.push.cluster_queue
    }

    fn workers(&self, _ctx: &Context) -> usize {
        1
    }

    fn reconcile(&self, ctx: &Arc<Context>, key: &Key) -> impl std::future::Future<Output = Next> + Send {
        let (ctx, name) = (ctx.clone(), key.name.clone());
        async move { reconcile(&ctx, &name).await }
    }

    fn observe(&self, ctx: &Context, key: &Key, _lane: Lane, ok: bool, elapsed: std::time::Duration) {
        ctx.metrics.cluster_push_secrets.reconciled(key, ok, elapsed);
    }
}

pub(super) async fn watch(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<ClusterPushSecret>,
    gate: Arc<InitGate>,
    stop: CancellationToken,
) {
    let api: Api<ClusterPushSecret> = Api::all(ctx.cluster_client.clone());
    super::watch_cluster_kind(ctx, api, writer, |c: &Context| &c.push.cluster_queue, gate, stop).await;
}

/// Reconciles one ClusterPushSecret.
pub async fn reconcile(ctx: &Arc<Context>, name: &str) -> Next {
    let Some(cps) = ctx.push.cluster_push_secrets.get(&ObjectRef::new(name)) else {
        ctx.metrics.cluster_push_secrets.remove(&Key::new("", name));
        return Next::Idle;
    };
    if cps.metadata.deletion_timestamp.is_some() {
        return Next::Idle;
    }
    let ps_name = if cps.spec.push_secret_name.is_empty() {
        cps.name_any()
    } else {
        cps.spec.push_secret_name.clone()
    };
    let old = cps.status.clone().unwrap_or_default();
    let mut failed: BTreeMap<String, String> = BTreeMap::new();

    let view = super::namespace_view(ctx);
    let problems = cps.spec.validate();
    let targets = if !problems.is_empty() {
        failed.insert("unknown".into(), syncret_crds::validate::join(&problems));
        BTreeSet::new()
    } else {
        match target_namespaces(&cps, &view) {
            Ok(t) => t,
            Err(e) => {
                failed.insert("unknown".into(), e);
                BTreeSet::new()
            }
        }
    };
    let children = fanout::Children {
        old_name: &old.push_secret_name,
        old_namespaces: &old.provisioned_namespaces,
        name: &ps_name,
    };
    let parent = &*cps;
    let provisioned = fanout::apply(
        children,
        &targets,
        &mut failed,
        move |ns, child| async move { ensure_child(ctx, parent, &ns, &child).await },
        move |ns, child| async move { delete_child(ctx, &ns, &child, name).await },
    )
    .await;
    let condition = if failed.is_empty() {
        PushSecretStatusCondition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: None,
            message: None,
            last_transition_time: None,
        }
    } else {
        PushSecretStatusCondition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: None,
            message: Some("one or more namespaces failed".into()),
            last_transition_time: None,
        }
    };
    let status = ClusterPushSecretStatus {
        failed_namespaces: failed
            .iter()
            .map(|(namespace, reason)| ClusterPushSecretNamespaceFailure {
                namespace: namespace.clone(),
                reason: reason.clone(),
            })
            .collect(),
        provisioned_namespaces: provisioned,
        push_secret_name: ps_name,
        conditions: vec![condition],
    };
    ctx.metrics
        .cluster_push_secrets
        .set_ready(&Key::new("", name), failed.is_empty());
    if cps.status.as_ref() != Some(&status) {
        let api: Api<ClusterPushSecret> = Api::all(ctx.cluster_client.clone());
        // Lists are replaced by a merge patch; an emptied list is sent as null.
        let mut body = serde_json::to_value(&status).unwrap_or_default();
        if let Some(o) = body.as_object_mut() {
            for k in ["failedNamespaces", "provisionedNamespaces"] {
                o.entry(k).or_insert(serde_json::Value::Null);
            }
        }
        ctx.api_limiter.acquire().await;
        if let Err(e) = api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({ "status": body })),
            )
            .await
        {
            tracing::debug!(cps = name, error = %e, "could not update ClusterPushSecret status");
        }
    }
    fanout::next(cps.spec.refresh_interval().ok().flatten(), failed.is_empty())
}

async fn ensure_child(ctx: &Context, cps: &ClusterPushSecret, ns: &str, ps_name: &str) -> Result<(), String> {
    let api: Api<PushSecret> = Api::namespaced(ctx.cluster_client.clone(), ns);
    let existing = match ctx.push.push_secrets.get(&ObjectRef::new(ps_name).within(ns)) {
        Some(p) => Some((*p).clone()),
        None => {
            ctx.api_limiter.acquire().await;
            api.get_opt(ps_name)
                .await
                .map_err(|e| format!("could not get existing PushSecret: {e}"))?
        }
    };
    if let Some(e) = &existing
        && controller_of(e).as_deref() != Some(cps.name_any().as_str())
    {
        return Err("push secret already exists in namespace".into());
    }
    let meta = &cps.spec.push_secret_metadata;
    let child = PushSecret {
        metadata: ObjectMeta {
            name: Some(ps_name.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(meta.labels.clone()).filter(|l| !l.is_empty()),
            annotations: Some(meta.annotations.clone()).filter(|a| !a.is_empty()),
            owner_references: Some(vec![owner_ref(cps)]),
            ..Default::default()
        },
        spec: cps.spec.push_secret_spec.clone(),
        status: None,
    };
    // No write when the child already says exactly this.
    if let Some(e) = &existing
        && e.spec == child.spec
        && e.labels() == child.labels()
        && e.annotations() == child.annotations()
    {
        return Ok(());
    }
    let mut body = serde_json::to_value(&child).map_err(|e| e.to_string())?;
    if let Some(o) = body.as_object_mut() {
        o.insert("apiVersion".into(), API_VERSION.into());
        o.insert("kind".into(), "PushSecret".into());
        o.remove("status");
    }
    ctx.api_limiter.acquire().await;
    api.patch(
        ps_name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("could not create or update push secret: {e}"))
}

async fn delete_child(ctx: &Context, ns: &str, ps_name: &str, cps_name: &str) -> Result<(), String> {
    let api: Api<PushSecret> = Api::namespaced(ctx.cluster_client.clone(), ns);
    ctx.api_limiter.acquire().await;
    let Some(existing) = api.get_opt(ps_name).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if controller_of(&existing).as_deref() != Some(cps_name) {
        return Ok(());
    }
    ctx.api_limiter.acquire().await;
    match api.delete(ps_name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(format!(
            "push secret in non matching namespace could not be deleted: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_by_selectors_and_skips_terminating() {
        let cps: ClusterPushSecret = serde_yaml::from_str(
            r#"
apiVersion: external-secrets.io/v1alpha1
kind: ClusterPushSecret
metadata: {name: c}
spec:
  namespaceSelectors:
  - matchLabels: {team: a}
  - matchExpressions: [{key: env, operator: In, values: [prod]}]
  pushSecretSpec:
    secretStoreRefs: [{name: s}]
    selector: {secret: {name: src}}
"#,
        )
        .unwrap();
        let l = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let view = vec![
            ("plain".to_string(), l(&[]), false),
            ("team-a".to_string(), l(&[("team", "a")]), false),
            ("prod".to_string(), l(&[("env", "prod")]), false),
            ("dying".to_string(), l(&[("team", "a")]), true),
        ];
        let got: Vec<String> = target_namespaces(&cps, &view).unwrap().into_iter().collect();
        assert_eq!(got, ["prod", "team-a"]);
        let mut none = cps.clone();
        none.spec.namespace_selectors.clear();
        assert!(
            target_namespaces(&none, &view).unwrap().is_empty(),
            "no selector selects nothing (ESO)"
        );
    }
}
