//! ESO's `GeneratorState`s, for values that hold something at the provider (a lease): one state per generator
//! of an object (`dataFrom` index, or `__pushsecret`), labelled with the owner key, owned by that object (so it
//! goes with it) and carrying our finalizer (its lease is revoked before it goes).
//!
//! - [`commit`]: after the values were written, the new state is created and every older state of the same key is
//!   flagged for garbage collection (`garbageCollectionDeadline` = now + `--generator-gc-grace-period`); the
//!   GeneratorState controller revokes their leases at that deadline. New credentials are thus always written
//!   before superseded ones are revoked.
//! - [`rollback`]: values made by a sync that then failed are revoked at once (if that fails, a state with a
//!   deadline of now is left for the controller to clean up).
//! - [`supersede`]: when an object stops using a generator for a key (spec changed), its states are flagged.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::Value;
use syncret_crds::generator::{GeneratorState, GeneratorStateSpec, STATE_FINALIZER, STATE_OWNER_KEY};
use syncret_providers::Lease;

use super::Resolved;
use crate::context::Context;
use crate::sync::hash::generator_owner_key;
use crate::sync::refresh::to_time;

/// The key of a PushSecret's generator (ESO's).
pub const PUSH_SECRET_KEY: &str = "__pushsecret";

/// The object whose generator made the values.
#[derive(Clone, Debug)]
pub struct Owner {
    /// `ExternalSecret` or `PushSecret`.
    pub kind: &'static str,
    pub api_version: &'static str,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    fn owner_key(&self, key: &str) -> String {
        generator_owner_key(self.kind, &self.namespace, &self.name, key)
    }

    fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.to_string(),
            kind: self.kind.to_string(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            ..Default::default()
        }
    }
}

/// What a state records: the lease (our shape of ESO's free-form `spec.state`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct StateData {
    pub lease: Lease,
}

/// The lease a state records, if it is one of ours.
pub fn lease_of(state: &GeneratorState) -> Option<Lease> {
    serde_json::from_value::<StateData>(state.spec.state.clone())
        .ok()
        .map(|s| s.lease)
}

/// The state's garbage-collection deadline.
pub fn deadline_of(state: &GeneratorState) -> Option<DateTime<Utc>> {
    state
        .spec
        .garbage_collection_deadline
        .as_ref()
        .and_then(crate::sync::refresh::from_time)
}

fn new_state(owner: &Owner, key: &str, r: &Resolved, lease: &Lease, deadline: Option<DateTime<Utc>>) -> GeneratorState {
    let mut labels = BTreeMap::new();
    labels.insert(STATE_OWNER_KEY.to_string(), owner.owner_key(key));
    GeneratorState {
        metadata: ObjectMeta {
            generate_name: Some(format!("gen-{}-{}-", owner.kind.to_ascii_lowercase(), owner.name)),
            namespace: Some(owner.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![owner.reference()]),
            finalizers: Some(vec![STATE_FINALIZER.to_string()]),
            ..Default::default()
        },
        spec: GeneratorStateSpec {
            garbage_collection_deadline: deadline.map(to_time),
            resource: r.resource.clone(),
            state: serde_json::to_value(StateData { lease: lease.clone() }).unwrap_or(Value::Null),
        },
        status: None,
    }
}

fn api(ctx: &Context, ns: &str) -> Api<GeneratorState> {
    Api::namespaced(ctx.client.clone(), ns)
}

/// The states of `owner`'s generator `key`.
async fn states_of(ctx: &Context, owner: &Owner, key: &str) -> Result<Vec<GeneratorState>, kube::Error> {
    ctx.api_limiter.acquire().await;
    let lp = ListParams::default().labels(&format!("{STATE_OWNER_KEY}={}", owner.owner_key(key)));
    Ok(api(ctx, &owner.namespace).list(&lp).await?.items)
}

/// Flags every state of `owner`'s `key` but `keep` for garbage collection.
async fn flag_others(ctx: &Context, owner: &Owner, key: &str, keep: Option<&str>) -> Result<(), kube::Error> {
    let deadline = Utc::now() + chrono::Duration::from_std(ctx.settings.generator_gc_grace).unwrap_or_default();
    for s in states_of(ctx, owner, key).await? {
        let name = s.metadata.name.clone().unwrap_or_default();
        if Some(name.as_str()) == keep || s.spec.garbage_collection_deadline.is_some() {
            continue;
        }
        let patch = serde_json::json!({ "spec": { "garbageCollectionDeadline": to_time(deadline) } });
        ctx.api_limiter.acquire().await;
        match api(ctx, &owner.namespace)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Records `lease` (made by `r` for `owner`'s generator `key`, and now written) and flags the superseded states.
pub async fn commit(ctx: &Context, owner: &Owner, key: &str, r: &Resolved, lease: &Lease) -> Result<(), kube::Error> {
    ctx.api_limiter.acquire().await;
    let created = api(ctx, &owner.namespace)
        .create(&PostParams::default(), &new_state(owner, key, r, lease, None))
        .await?;
    flag_others(ctx, owner, key, created.metadata.name.as_deref()).await
}

/// Flags every state of `owner`'s generator `key` (the generator is no longer used there).
pub async fn supersede(ctx: &Context, owner: &Owner, key: &str) -> Result<(), kube::Error> {
    flag_others(ctx, owner, key, None).await
}

/// Undoes values that were made but not written: revokes the lease now, or leaves a state due for clean-up.
pub async fn rollback(ctx: &Context, owner: &Owner, key: &str, r: &Resolved, lease: &Lease) {
    match ctx.reads.generators.revoke(r, ctx.reads.registry(), lease).await {
        Ok(()) => {}
        Err(e) => {
            tracing::info!(owner = %owner.name, error = %e, "revoking an unwritten lease failed; leaving it to garbage collection");
            ctx.api_limiter.acquire().await;
            let state = new_state(owner, key, r, lease, Some(Utc::now()));
            if let Err(e) = api(ctx, &owner.namespace).create(&PostParams::default(), &state).await {
                tracing::warn!(owner = %owner.name, error = %e, "could not record an unwritten lease for clean-up");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_state_is_owned_labelled_and_finalized() {
        let owner = Owner {
            kind: "ExternalSecret",
            api_version: "external-secrets.io/v1",
            namespace: "app".into(),
            name: "db".into(),
            uid: "u1".into(),
        };
        let r = super::super::resolve_object(
            syncret_crds::externalsecret::GeneratorKind::Uuid,
            "u",
            "app",
            Some("app"),
            serde_json::json!({}),
        )
        .unwrap();
        let lease = Lease {
            lease_id: "x/1".into(),
            renewable: true,
            duration_seconds: 60,
            expire_time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            capped: false,
            token_accessor: None,
            token_expire_time: None,
        };
        let s = new_state(&owner, "0", &r, &lease, None);
        assert_eq!(s.metadata.generate_name.as_deref(), Some("gen-externalsecret-db-"));
        assert_eq!(
            s.metadata.labels.as_ref().unwrap()[STATE_OWNER_KEY],
            generator_owner_key("ExternalSecret", "app", "db", "0")
        );
        assert_eq!(s.metadata.owner_references.as_ref().unwrap()[0].uid, "u1");
        assert_eq!(s.metadata.finalizers.as_ref().unwrap(), &[STATE_FINALIZER.to_string()]);
        assert_eq!(lease_of(&s), Some(lease));
        assert_eq!(deadline_of(&s), None);
    }
}
