//! From the desired content and the existing Secret to the write to make (or none): ownership rules, the
//! bookkeeping labels and annotations ESO writes, and the zero-write check. Pure.
//!
//! Writes are server-side applies with the ExternalSecret's own field manager
//! (`externalsecrets.external-secrets.io/<name>`, ESO's name), so the apiserver tracks which data keys, labels
//! and annotations each ExternalSecret owns and removes the ones it stops writing.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use sha3::{Digest, Sha3_224};
use syncret_crds::externalsecret::{ExternalSecret, ExternalSecretCreationPolicy};
use syncret_crds::labels::{
    ANNOTATION_DATA_HASH, FIELD_MANAGER_MAX_LEN, FIELD_MANAGER_PREFIX, FIELD_MANAGER_SHA_PREFIX, LABEL_CREATED_BY,
    LABEL_MANAGED, LABEL_MANAGED_VALUE,
};

use super::desired::Desired;
use super::hash;

/// Opt-in on an ExternalSecret with `creationPolicy: Owner`: take over an existing Secret nobody manages.
pub const ANNOTATION_ADOPT: &str = "syncret.dev/adopt-existing-secret";

/// ESO's field manager for an ExternalSecret (its `fqdnFor`): `externalsecrets.external-secrets.io/<name>`, or,
/// when that is longer than 63 characters (a name of more than 27), the `sha3/<hex>` form. Both operators must
/// agree on it: it is how each finds the data keys, labels and annotations the ExternalSecret wrote.
pub fn field_manager(es_name: &str) -> String {
    let plain = format!("{FIELD_MANAGER_PREFIX}{es_name}");
    if plain.len() > FIELD_MANAGER_MAX_LEN {
        let digest = Sha3_224::digest(es_name.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{FIELD_MANAGER_SHA_PREFIX}{hex}")
    } else {
        plain
    }
}

/// Why the Secret cannot be written. Each names the Secret; none carries a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("secret {secret:?} is owned by another ExternalSecret {owner:?}")]
    OwnedByOther { secret: String, owner: String },
    #[error(
        "secret {secret:?} already exists and is not managed by this ExternalSecret; delete it, or annotate the \
         ExternalSecret with {ANNOTATION_ADOPT}=true to take it over"
    )]
    NotOurs { secret: String },
    #[error("could not update secret {secret:?}, target is immutable")]
    Immutable { secret: String },
}

/// What to do with the target Secret.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// The Secret already has exactly this content: no write.
    Unchanged,
    /// Server-side apply `secret` (force: this ExternalSecret's fields win), then remove `remove_keys` (data keys of
    /// other writers in a Secret this ExternalSecret fully owns). `data_changed`: an existing Secret's data changes
    /// (not just its metadata).
    Apply {
        secret: Box<Secret>,
        create: bool,
        remove_keys: Vec<String>,
        data_changed: bool,
    },
    /// `creationPolicy: Merge` and the Secret does not exist.
    Missing,
    /// `creationPolicy: None`.
    Skip,
}

/// Data keys the given field manager owns through server-side apply, from `managedFields`.
pub fn applied_data_keys(secret: &Secret, manager: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for mf in secret.metadata.managed_fields.iter().flatten() {
        if mf.manager.as_deref() != Some(manager) {
            continue;
        }
        let Some(fields) = &mf.fields_v1 else { continue };
        if let Some(data) = fields.0.get("f:data").and_then(|d| d.as_object()) {
            keys.extend(data.keys().filter_map(|k| k.strip_prefix("f:")).map(str::to_string));
        }
    }
    keys
}

fn controller_ref(secret: &Secret) -> Option<&OwnerReference> {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

fn is_es_kind(o: &OwnerReference) -> bool {
    o.kind == "ExternalSecret" && o.api_version.starts_with("external-secrets.io/")
}

/// The controller reference an `Owner` ExternalSecret puts on its Secret.
pub fn owner_reference(es: &ExternalSecret) -> OwnerReference {
    OwnerReference {
        api_version: "external-secrets.io/v1".into(),
        kind: "ExternalSecret".into(),
        name: es.name_any(),
        uid: es.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// ESO's ownership rules, plus syncret's refusal to take over a foreign Secret with `Owner` or `Orphan` (ESO
/// #2346: ESO overwrites any existing Secret of the target name). A Secret is this ExternalSecret's when it
/// carries one of its markers — its controller reference, its `created-by` label, its field manager (ESO's and
/// ours are the same names) — or when the ExternalSecret is annotated to adopt it. `Merge` and `CreateOrMerge`
/// write into others' Secrets by design and never remove what they did not write.
pub fn check_ownership(es: &ExternalSecret, existing: &Secret) -> Result<(), WriteError> {
    let secret = existing.name_any();
    let controller = controller_ref(existing);
    if let Some(c) = controller
        && is_es_kind(c)
        && c.name != es.name_any()
    {
        return Err(WriteError::OwnedByOther {
            secret,
            owner: c.name.clone(),
        });
    }
    if !matches!(
        es.spec.target.creation_policy,
        ExternalSecretCreationPolicy::Owner | ExternalSecretCreationPolicy::Orphan
    ) {
        return Ok(());
    }
    let ns = es.namespace().unwrap_or_default();
    let ours = controller.is_some_and(|c| is_es_kind(c) && c.name == es.name_any())
        || existing.labels().get(LABEL_CREATED_BY) == Some(&hash::owner_label(&ns, &es.name_any()))
        || existing
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|mf| mf.manager.as_deref() == Some(field_manager(&es.name_any()).as_str()))
        || es.annotations().get(ANNOTATION_ADOPT).is_some_and(|v| v == "true");
    if ours {
        Ok(())
    } else {
        Err(WriteError::NotOurs { secret })
    }
}

/// Whether `secret` is an orphan this `Owner` ExternalSecret may delete (a Secret it created under an old
/// `target.name`): it must carry this ExternalSecret's controller reference (by uid) *and* its `created-by`
/// label. The label alone is not enough: a template (`target.template.metadata.labels`) of any ExternalSecret in
/// the namespace can write it onto a Secret it merges into.
pub fn is_orphan_of(es: &ExternalSecret, secret: &Secret, target: &str) -> bool {
    let Some(uid) = es.metadata.uid.as_deref().filter(|u| !u.is_empty()) else {
        return false;
    };
    let ns = es.namespace().unwrap_or_default();
    secret.name_any() != target
        && controller_ref(secret).is_some_and(|c| is_es_kind(c) && c.uid == uid && c.name == es.name_any())
        && secret.labels().get(LABEL_CREATED_BY) == Some(&hash::owner_label(&ns, &es.name_any()))
}

/// The merge patch that removes other writers' data keys from a Secret this ExternalSecret fully owns, conditional
/// on `resource_version` (the version our apply produced): if anyone wrote the Secret in between, the apiserver
/// refuses it (409) and the next sync decides again, instead of deleting keys it has not seen.
pub fn remove_keys_patch(keys: &[String], resource_version: &str) -> serde_json::Value {
    let nulls: serde_json::Map<String, serde_json::Value> =
        keys.iter().map(|k| (k.clone(), serde_json::Value::Null)).collect();
    serde_json::json!({ "metadata": { "resourceVersion": resource_version }, "data": nulls })
}

fn data_of(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// Plans the write for `desired` given the existing Secret (fully read), or `None` if it does not exist.
pub fn plan(
    es: &ExternalSecret,
    secret_name: &str,
    desired: &Desired,
    existing: Option<&Secret>,
) -> Result<Write, WriteError> {
    let policy = es.spec.target.creation_policy;
    match (policy, existing) {
        (ExternalSecretCreationPolicy::None, _) => return Ok(Write::Skip),
        (ExternalSecretCreationPolicy::Merge, None) => return Ok(Write::Missing),
        _ => {}
    }
    if let Some(existing) = existing {
        check_ownership(es, existing)?;
    }
    let owner = policy == ExternalSecretCreationPolicy::Owner;
    let merges = matches!(
        policy,
        ExternalSecretCreationPolicy::Merge | ExternalSecretCreationPolicy::CreateOrMerge
    );
    let manager = field_manager(&es.name_any());
    let existing_data = existing.map(data_of).unwrap_or_default();

    // The Secret's data after the write: ours alone, or (merging) the others' keys plus ours.
    let (final_data, remove_keys) = if merges {
        let previously_ours = existing.map(|s| applied_data_keys(s, &manager)).unwrap_or_default();
        let mut d: BTreeMap<String, Vec<u8>> = existing_data
            .iter()
            .filter(|(k, _)| !previously_ours.contains(*k) || desired.data.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        d.extend(desired.data.iter().map(|(k, v)| (k.clone(), v.clone())));
        (d, Vec::new())
    } else {
        let foreign: Vec<String> = existing_data
            .keys()
            .filter(|k| !desired.data.contains_key(*k))
            .cloned()
            .collect();
        (desired.data.clone(), foreign)
    };
    let data_hash = hash::data_hash(&final_data);

    let mut labels = desired.labels.clone();
    labels.insert(LABEL_MANAGED.into(), LABEL_MANAGED_VALUE.into());
    if owner {
        let ns = es.namespace().unwrap_or_default();
        labels.insert(LABEL_CREATED_BY.into(), hash::owner_label(&ns, &es.name_any()));
    }
    let mut annotations = desired.annotations.clone();
    annotations.insert(ANNOTATION_DATA_HASH.into(), data_hash);
    let owner_references = owner.then(|| vec![owner_reference(es)]);
    let immutable = es.spec.target.immutable.then_some(true);

    let data_same = existing.is_some() && existing_data == final_data;
    if let Some(existing) = existing {
        if existing.immutable == Some(true) && !data_same {
            return Err(WriteError::Immutable {
                secret: secret_name.to_string(),
            });
        }
        let meta_same = labels.iter().all(|(k, v)| existing.labels().get(k) == Some(v))
            && annotations
                .iter()
                .all(|(k, v)| existing.annotations().get(k) == Some(v))
            && desired.finalizers.iter().all(|f| existing.finalizers().contains(f))
            && (!owner || controller_ref(existing).is_some_and(|c| c.name == es.name_any() && is_es_kind(c)));
        let type_same = desired
            .type_
            .as_ref()
            .is_none_or(|t| existing.type_.as_ref() == Some(t));
        let immutable_same = immutable.is_none() || existing.immutable == Some(true);
        // Labels/annotations this ExternalSecret applied before but no longer wants must be dropped too.
        let stale_meta = applied_meta_keys(existing, &manager)
            .into_iter()
            .any(|(field, key)| match field {
                MetaField::Label => !labels.contains_key(&key),
                MetaField::Annotation => !annotations.contains_key(&key),
            });
        if data_same && meta_same && type_same && immutable_same && !stale_meta {
            return Ok(Write::Unchanged);
        }
    }

    // Removing other writers' keys is decided on what we read: the apply is conditional on that version, so a
    // write made in between (a new key) is never removed unseen.
    let precondition = existing
        .filter(|_| !remove_keys.is_empty())
        .and_then(|s| s.metadata.resource_version.clone());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_string()),
            namespace: es.namespace(),
            resource_version: precondition,
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references,
            finalizers: Some(desired.finalizers.clone()).filter(|f| !f.is_empty()),
            ..Default::default()
        },
        data: Some(
            desired
                .data
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        type_: desired.type_.clone(),
        immutable,
        ..Default::default()
    };
    Ok(Write::Apply {
        secret: Box::new(secret),
        create: existing.is_none(),
        remove_keys,
        data_changed: existing.is_some() && !data_same,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum MetaField {
    Label,
    Annotation,
}

fn applied_meta_keys(secret: &Secret, manager: &str) -> Vec<(MetaField, String)> {
    let mut out = Vec::new();
    for mf in secret.metadata.managed_fields.iter().flatten() {
        if mf.manager.as_deref() != Some(manager) || mf.operation.as_deref() != Some("Apply") {
            continue;
        }
        let Some(meta) = mf.fields_v1.as_ref().and_then(|f| f.0.get("f:metadata")) else {
            continue;
        };
        for (field, which) in [("f:labels", MetaField::Label), ("f:annotations", MetaField::Annotation)] {
            if let Some(obj) = meta.get(field).and_then(|v| v.as_object()) {
                for k in obj.keys().filter_map(|k| k.strip_prefix("f:")) {
                    out.push((
                        if which == MetaField::Label {
                            MetaField::Label
                        } else {
                            MetaField::Annotation
                        },
                        k.to_string(),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    fn es(policy: &str) -> ExternalSecret {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: db, namespace: app, uid: u-1}}
spec:
  secretStoreRef: {{name: s}}
  target: {{creationPolicy: {policy}}}
"#
        ))
        .unwrap()
    }

    fn desired(pairs: &[(&str, &str)]) -> Desired {
        Desired {
            data: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            ..Default::default()
        }
    }

    fn applied(w: Write) -> (Secret, bool, Vec<String>) {
        match w {
            Write::Apply {
                secret,
                create,
                remove_keys,
                ..
            } => (*secret, create, remove_keys),
            other => panic!("expected Apply, got {other:?}"),
        }
    }

    fn existing_from(w: &Secret, extra: &[(&str, &str)], manager: &str) -> Secret {
        let mut s = w.clone();
        let data = s.data.get_or_insert_default();
        for (k, v) in extra {
            data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
        }
        let fields: serde_json::Map<String, serde_json::Value> = w
            .data
            .iter()
            .flatten()
            .map(|(k, _)| (format!("f:{k}"), serde_json::json!({})))
            .collect();
        s.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(serde_json::json!({ "f:data": fields }))),
            ..Default::default()
        }]);
        s
    }

    #[test]
    fn owner_create_then_unchanged() {
        let es = es("Owner");
        let (secret, create, remove) = applied(plan(&es, "db", &desired(&[("a", "1")]), None).unwrap());
        assert!(create && remove.is_empty());
        assert_eq!(secret.labels()[LABEL_MANAGED], "true");
        assert_eq!(secret.labels()[LABEL_CREATED_BY], hash::owner_label("app", "db"));
        assert_eq!(
            secret.annotations()[ANNOTATION_DATA_HASH],
            hash::data_hash(&desired(&[("a", "1")]).data)
        );
        assert_eq!(secret.owner_references()[0].uid, "u-1");
        let existing = existing_from(&secret, &[], &field_manager("db"));
        assert_eq!(
            plan(&es, "db", &desired(&[("a", "1")]), Some(&existing)).unwrap(),
            Write::Unchanged
        );
        let (_, create, _) = applied(plan(&es, "db", &desired(&[("a", "2")]), Some(&existing)).unwrap());
        assert!(!create);
    }

    #[test]
    fn owner_removes_foreign_keys_and_refuses_foreign_secrets() {
        let es = es("Owner");
        let (secret, _, _) = applied(plan(&es, "db", &desired(&[("a", "1")]), None).unwrap());
        let existing = existing_from(&secret, &[("added-by-hand", "x")], &field_manager("db"));
        let (_, _, remove) = applied(plan(&es, "db", &desired(&[("a", "1")]), Some(&existing)).unwrap());
        assert_eq!(remove, ["added-by-hand"]);

        let foreign = Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(
            plan(&es, "db", &desired(&[("a", "1")]), Some(&foreign)),
            Err(WriteError::NotOurs { .. })
        ));
        let mut adopt = es.clone();
        adopt.metadata.annotations = Some([(ANNOTATION_ADOPT.to_string(), "true".to_string())].into());
        assert!(plan(&adopt, "db", &desired(&[("a", "1")]), Some(&foreign)).is_ok());

        let mut other = secret.clone();
        other.metadata.owner_references.as_mut().unwrap()[0].name = "other-es".into();
        let err = plan(&es, "db", &desired(&[("a", "1")]), Some(&other)).unwrap_err();
        assert_eq!(
            err,
            WriteError::OwnedByOther {
                secret: "db".into(),
                owner: "other-es".into()
            }
        );
        assert!(matches!(
            plan(&super::tests::es("Merge"), "db", &desired(&[]), Some(&other)),
            Err(WriteError::OwnedByOther { .. })
        ));
    }

    fn foreign(name: &str, pairs: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("app".into()),
                resource_version: Some("7".into()),
                ..Default::default()
            },
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn orphan_never_overwrites_a_secret_it_does_not_own() {
        let es = es("Orphan");
        let app_config = foreign("app-config", &[("a", "1"), ("b", "2")]);
        assert_eq!(
            plan(&es, "app-config", &desired(&[("x", "y")]), Some(&app_config)),
            Err(WriteError::NotOurs {
                secret: "app-config".into()
            })
        );
        // Its own (created by it: its field manager), it updates; and adopting is explicit.
        let (created, _, _) = applied(plan(&es, "app-config", &desired(&[("x", "y")]), None).unwrap());
        let ours = existing_from(&created, &[], &field_manager("db"));
        assert!(plan(&es, "app-config", &desired(&[("x", "z")]), Some(&ours)).is_ok());
        let mut adopt = es.clone();
        adopt.metadata.annotations = Some([(ANNOTATION_ADOPT.to_string(), "true".to_string())].into());
        let (_, _, remove) = applied(plan(&adopt, "app-config", &desired(&[("x", "y")]), Some(&app_config)).unwrap());
        assert_eq!(remove, ["a", "b"], "an adopted Secret is fully owned");
    }

    #[test]
    fn removing_foreign_keys_is_conditional_on_what_was_read() {
        let es = es("Owner");
        let (secret, _, _) = applied(plan(&es, "db", &desired(&[("a", "1")]), None).unwrap());
        assert!(
            secret.metadata.resource_version.is_none(),
            "a create has no precondition"
        );
        let mut existing = existing_from(&secret, &[("added-by-hand", "x")], &field_manager("db"));
        existing.metadata.resource_version = Some("41".into());
        let (apply, _, remove) = applied(plan(&es, "db", &desired(&[("a", "1")]), Some(&existing)).unwrap());
        assert_eq!(remove, ["added-by-hand"]);
        assert_eq!(apply.metadata.resource_version.as_deref(), Some("41"));
        // Nothing to remove: no precondition (a plain apply never conflicts).
        let clean = existing_from(&secret, &[], &field_manager("db"));
        let (apply, _, _) = applied(plan(&es, "db", &desired(&[("a", "2")]), Some(&clean)).unwrap());
        assert!(apply.metadata.resource_version.is_none());
        assert_eq!(
            remove_keys_patch(&["k".into()], "42"),
            serde_json::json!({"metadata": {"resourceVersion": "42"}, "data": {"k": null}})
        );
    }

    #[test]
    fn merge_never_removes_keys_it_did_not_write() {
        for policy in ["Merge", "CreateOrMerge"] {
            let es = es(policy);
            let theirs = foreign("db", &[("theirs", "t"), ("also", "u")]);
            let (secret, _, remove) = applied(plan(&es, "db", &desired(&[("a", "1")]), Some(&theirs)).unwrap());
            assert!(remove.is_empty(), "{policy}");
            assert_eq!(
                secret.data.unwrap().keys().cloned().collect::<Vec<_>>(),
                ["a"],
                "{policy}: the apply carries only its own keys (server-side apply keeps the others)"
            );
        }
    }

    #[test]
    fn orphans_are_only_secrets_with_this_externalsecrets_own_marker() {
        let es = es("Owner");
        let (mine, _, _) = applied(plan(&es, "old-name", &desired(&[("a", "1")]), None).unwrap());
        assert!(is_orphan_of(&es, &mine, "new-name"));
        assert!(
            !is_orphan_of(&es, &mine, "old-name"),
            "the current target is not an orphan"
        );
        // The created-by label alone (a template can set it on a Secret it merges into): not an orphan.
        let mut labelled = foreign("users-secret", &[("k", "v")]);
        labelled.metadata.labels = Some([(LABEL_CREATED_BY.to_string(), hash::owner_label("app", "db"))].into());
        assert!(!is_orphan_of(&es, &labelled, "new-name"));
        // Another ExternalSecret of the same name (recreated: another uid) does not own it either.
        let mut recreated = es.clone();
        recreated.metadata.uid = Some("u-2".into());
        assert!(!is_orphan_of(&recreated, &mine, "new-name"));
    }

    #[test]
    fn merge_keeps_other_keys_in_the_hash_and_handles_missing() {
        let es = es("Merge");
        assert_eq!(plan(&es, "db", &desired(&[("a", "1")]), None).unwrap(), Write::Missing);
        let base = Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                ..Default::default()
            },
            data: Some([("theirs".to_string(), ByteString(b"t".to_vec()))].into()),
            ..Default::default()
        };
        let (secret, create, remove) = applied(plan(&es, "db", &desired(&[("a", "1")]), Some(&base)).unwrap());
        assert!(!create && remove.is_empty());
        assert!(secret.metadata.owner_references.is_none() && !secret.labels().contains_key(LABEL_CREATED_BY));
        let full: BTreeMap<String, Vec<u8>> =
            [("a".to_string(), b"1".to_vec()), ("theirs".to_string(), b"t".to_vec())].into();
        assert_eq!(secret.annotations()[ANNOTATION_DATA_HASH], hash::data_hash(&full));
        assert_eq!(
            plan(&super::tests::es("None"), "db", &desired(&[("a", "1")]), None).unwrap(),
            Write::Skip
        );
    }

    #[test]
    fn immutable_secrets_are_not_rewritten() {
        let mut es = es("Owner");
        es.spec.target.immutable = true;
        let (secret, _, _) = applied(plan(&es, "db", &desired(&[("a", "1")]), None).unwrap());
        assert_eq!(secret.immutable, Some(true));
        let existing = existing_from(&secret, &[], &field_manager("db"));
        assert_eq!(
            plan(&es, "db", &desired(&[("a", "1")]), Some(&existing)).unwrap(),
            Write::Unchanged
        );
        assert_eq!(
            plan(&es, "db", &desired(&[("a", "2")]), Some(&existing)).unwrap_err(),
            WriteError::Immutable { secret: "db".into() }
        );
    }

    /// ESO hashes when the whole field manager, not the name, passes 63 characters; values computed with ESO's
    /// `fqdnFor` in Go.
    #[test]
    fn long_names_use_the_sha_manager() {
        assert_eq!(field_manager("db"), "externalsecrets.external-secrets.io/db");
        assert_eq!(
            field_manager("abcdefghijklmnopqrstuvwxyz0"),
            "externalsecrets.external-secrets.io/abcdefghijklmnopqrstuvwxyz0"
        );
        assert_eq!(
            field_manager("abcdefghijklmnopqrstuvwxyz01"),
            "externalsecrets.external-secrets.io/sha3/f2db6b08328936d09fdff0e361cbbba2e6b5c7e6625a37f3e2a9300f"
        );
        assert_eq!(
            field_manager("database-credentials-for-payments"),
            "externalsecrets.external-secrets.io/sha3/9443f84ff57513cc186231741cf19665269b45491b7add5e80abcf15"
        );
    }
}
