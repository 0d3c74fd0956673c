//! Generic targets (`spec.target.manifest`) in the ExternalSecret controller, the I/O around
//! [`crate::sync::manifest`]'s decisions: the kind's discovery (cached), the object's read, its server-side apply
//! under ESO's field manager, its deletion. The object is then followed by the watch of its kind
//! (`super::objects`): a change by someone else wakes the ExternalSecret, which heals it; our own writes wake
//! nobody.
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use syncret_crds::condition::es_reason;
use syncret_crds::externalsecret::ExternalSecret;

use crate::context::{Context, Key};
use crate::dependents::Dependent;
use crate::events::Kind;
use crate::sync::dependencies::{self, Dependency, ObjectRef, Role};
use crate::sync::desired::TemplateSources;
use crate::sync::error::SyncError;
use crate::sync::manifest::{self, ObjectWrite, TargetError, TargetKind};
use crate::sync::secret::field_manager;

/// How long a discovered kind is trusted, and how long an unknown one is not asked about again.
const KNOWN_FOR: Duration = Duration::from_secs(600);
const UNKNOWN_FOR: Duration = Duration::from_secs(30);
/// At most this many kinds are remembered (tenants name kinds; a flood of made-up ones is forgotten).
const MAX_KINDS: usize = 256;

type Discovered = Result<(TargetKind, ApiResource), String>;

/// Discovered kinds, by (apiVersion, kind).
#[derive(Default)]
pub struct Kinds(Mutex<HashMap<(String, String), (Discovered, Instant)>>);

impl Kinds {
    fn get(&self, key: &(String, String)) -> Option<Discovered> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (found, at) = m.get(key)?;
        let ttl = if found.is_ok() { KNOWN_FOR } else { UNKNOWN_FOR };
        (at.elapsed() < ttl).then(|| found.clone())
    }

    fn put(&self, key: (String, String), found: Discovered) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_KINDS {
            m.retain(|_, (f, at)| f.is_ok() && at.elapsed() < KNOWN_FOR);
            if m.len() >= MAX_KINDS {
                m.clear();
            }
        }
        m.insert(key, (found, Instant::now()));
    }
}

/// A generic target this operator writes: its kind and the object.
pub(super) struct Target {
    pub kind: TargetKind,
    pub resource: ApiResource,
    pub object: ObjectRef,
}

impl Target {
    fn api(&self, ctx: &Context) -> Api<DynamicObject> {
        Api::namespaced_with(ctx.client.clone(), &self.object.namespace, &self.resource)
    }
}

/// The kind behind `apiVersion` and `kind`, from the apiserver's discovery (cached).
async fn discover(ctx: &Context, api_version: &str, kind: &str) -> Discovered {
    let key = (api_version.to_string(), kind.to_string());
    if let Some(found) = ctx.generic_kinds.get(&key) {
        return found;
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    ctx.api_limiter.acquire().await;
    let found = kube::discovery::pinned_kind(&ctx.client, &gvk)
        .await
        .map(|(ar, caps)| {
            let k = TargetKind {
                group: ar.group.clone(),
                version: ar.version.clone(),
                kind: ar.kind.clone(),
                plural: ar.plural.clone(),
                namespaced: caps.scope == Scope::Namespaced,
            };
            (k, ar)
        })
        .map_err(|e| e.to_string());
    ctx.generic_kinds.put(key, found.clone());
    found
}

/// The generic target of `es`, if it has one that this operator writes; a refused one is an error naming the
/// field. The object is registered with the watch of its kind (started on first use).
pub(super) async fn resolve(ctx: &Arc<Context>, es: &ExternalSecret, key: &Key) -> Result<Option<Target>, SyncError> {
    let Some(object) = dependencies::generic_target(es) else {
        return Ok(None);
    };
    let policy = &ctx.settings.generic_targets;
    manifest::enabled(policy).map_err(SyncError::Target)?;
    let Some(m) = es.spec.target.manifest.as_ref() else {
        return Ok(None);
    };
    if m.api_version.is_empty() || m.kind.is_empty() {
        return Err(SyncError::Target(TargetError::Incomplete));
    }
    let (kind, resource) = discover(ctx, &m.api_version, &m.kind).await.map_err(|reason| {
        SyncError::Target(TargetError::UnknownKind {
            api_version: m.api_version.clone(),
            kind: m.kind.clone(),
            reason,
        })
    })?;
    manifest::allowed(policy, &kind).map_err(SyncError::Target)?;
    // Only an allowed kind is ever watched: a tenant cannot make the operator watch what it may not write.
    let added = ctx.dependents.index().add(
        &Dependent::ExternalSecret(key.clone()),
        &Dependency {
            object: object.clone(),
            role: Role::Target,
        },
    );
    if added {
        super::objects::ensure(ctx);
    }
    Ok(Some(Target { kind, resource, object }))
}

/// Whether the target is known to be as we last wrote it (nobody changed it since), without a read.
pub(super) fn known_intact(ctx: &Context, t: &Target) -> bool {
    ctx.dependents.index().target(&t.object).untouched()
}

/// The target object as the apiserver has it (`None`: it does not exist).
pub(super) async fn read(ctx: &Context, t: &Target) -> Result<Option<Value>, SyncError> {
    ctx.api_limiter.acquire().await;
    let found = t
        .api(ctx)
        .get_opt(&t.object.name)
        .await
        .map_err(|source| SyncError::ReadTarget {
            name: t.object.name.clone(),
            source,
        })?;
    Ok(found.and_then(|o| serde_json::to_value(o).ok()))
}

fn fingerprint(v: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(v).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// Renders and writes the target; the `Ready` reason and message ESO gives the outcome.
pub(super) async fn write(
    ctx: &Context,
    es: &ExternalSecret,
    t: &Target,
    data: &BTreeMap<String, Vec<u8>>,
    sources: &TemplateSources,
) -> Result<(&'static str, &'static str), SyncError> {
    let templates = ctx.settings.template_options();
    let template = |e: crate::sync::desired::DesiredError| SyncError::Template(e.to_string());
    // Zero-write fast path: what we would apply is what we applied, and nobody touched the object since.
    let fresh = manifest::render(es, &t.kind, data, sources, templates, None).map_err(template)?;
    let fp = fingerprint(&fresh.object);
    if ctx.dependents.index().target(&t.object).unchanged_since_write(fp) {
        return Ok((es_reason::RESOURCE_SYNCED, "secret synced"));
    }
    let existing = read(ctx, t).await?;
    let rendered = match &existing {
        Some(e) => manifest::render(es, &t.kind, data, sources, templates, Some(e)).map_err(template)?,
        None => fresh,
    };
    let name = &t.object.name;
    let rv = |o: &Value| {
        o.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match manifest::plan(es, &t.kind, rendered, existing.as_ref()).map_err(SyncError::TargetOwnership)? {
        ObjectWrite::Skip => Ok((es_reason::RESOURCE_SYNCED, "secret synced")),
        ObjectWrite::Missing => Ok((
            es_reason::RESOURCE_MISSING,
            "resource will not be created due to CreationPolicy=Merge",
        )),
        ObjectWrite::Unchanged => {
            if let Some(e) = &existing {
                ctx.dependents.index().wrote(&t.object, &rv(e), fp);
            }
            Ok((es_reason::RESOURCE_SYNCED, "secret synced"))
        }
        ObjectWrite::Apply { object, create } => {
            ctx.api_limiter.acquire().await;
            let applied = t
                .api(ctx)
                .patch(
                    name,
                    &PatchParams::apply(&field_manager(&es.name_any())).force(),
                    &Patch::Apply(&object),
                )
                .await
                .map_err(|e| SyncError::WriteTarget(format!("unable to apply {} {name}: {e}", t.kind.kind)))?;
            ctx.dependents
                .index()
                .wrote(&t.object, &applied.resource_version().unwrap_or_default(), fp);
            let (reason, note) = if create {
                (es_reason::CREATED, format!("Created {} {name}", t.kind.kind))
            } else {
                (es_reason::UPDATED, format!("Updated {} {name}", t.kind.kind))
            };
            ctx.events.publish(es.object_ref(&()), Kind::Normal, reason, note);
            Ok((es_reason::RESOURCE_SYNCED, "secret synced"))
        }
    }
}

/// Deletes the target if this ExternalSecret controls it (deletionPolicy Delete); whether it was there. ESO
/// deletes whatever has the name; syncret only what carries this ExternalSecret's controller reference.
pub(super) async fn delete_if_ours(ctx: &Context, es: &ExternalSecret, t: &Target) -> Result<bool, SyncError> {
    let Some(existing) = read(ctx, t).await? else {
        return Ok(false);
    };
    let uid = es.metadata.uid.clone().unwrap_or_default();
    let ours = existing
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("controller").and_then(Value::as_bool) == Some(true)
                    && r.get("uid").and_then(Value::as_str) == Some(uid.as_str())
            })
        });
    if !ours {
        return Ok(false);
    }
    ctx.api_limiter.acquire().await;
    match t.api(ctx).delete(&t.object.name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(false),
        Err(e) => {
            return Err(SyncError::DeleteTarget(format!(
                "unable to delete {} {}: {e}",
                t.kind.kind, t.object.name
            )));
        }
    }
    ctx.events.publish(
        es.object_ref(&()),
        Kind::Normal,
        es_reason::DELETED,
        format!("Deleted {} {}", t.kind.kind, t.object.name),
    );
    Ok(true)
}
