//! The stores an ExternalSecret may use, from the SecretStore / ClusterSecretStore reflectors: lookup, the
//! controller class, the flood gate (a store must be Ready) and ClusterSecretStore `spec.conditions`.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::core::{PartialObjectMeta, Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use syncret_crds::secretstore::{ClusterSecretStore, SecretStore, SecretStoreSpec, StoreKind};
use syncret_providers::{StoreInfo, StoreScope};

use crate::sync::fetch::StoreId;

/// Reflector-backed views of the stores and namespaces.
#[derive(Clone)]
pub struct Stores {
    pub secret_stores: Store<SecretStore>,
    pub cluster_secret_stores: Store<ClusterSecretStore>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    pub controller_class: String,
    pub flood_gate: bool,
    pub cluster_stores_enabled: bool,
    /// Each store's spec, shared by every read at one generation (by uid): a reconcile does not copy the spec (a
    /// fake store's holds every value; 10k ExternalSecrets on one store copied it 10k times).
    pub specs: SharedSpecs,
    /// Provider timeouts above this are clamped to it (`--reconcile-timeout`): see [`bounded`].
    pub max_timeout: std::time::Duration,
}

/// The spec providers are given: as written, but with every timeout a store sets capped at `max` (the reconcile
/// deadline; a request that outlives it is dropped anyway). Returns the note the store's `Ready` condition
/// carries when something was clamped. Pure.
pub fn bounded(mut spec: SecretStoreSpec, max: std::time::Duration) -> (SecretStoreSpec, Option<String>) {
    let mut note = None;
    if let Some(w) = spec.provider.webhook.as_mut()
        && let Some(t) = w.timeout.as_deref()
        && let Ok(d) = syncret_crds::duration::parse(t)
        && d > max
    {
        let capped = syncret_crds::duration::format(max);
        note = Some(format!(
            "spec.provider.webhook.timeout {t} is above the reconcile deadline (--reconcile-timeout) and is clamped to {capped}"
        ));
        w.timeout = Some(capped);
    }
    (spec, note)
}

/// Store uid → (generation, spec).
pub type SharedSpecs = Arc<Mutex<HashMap<String, (i64, Arc<SecretStoreSpec>)>>>;

/// Why a store cannot be used now. The message is ESO's where ESO has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreProblem {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} is not ready")]
    NotReady { kind: &'static str, name: String },
    /// The store, created less than [`VALIDATION_GRACE`] ago, has no `Ready` condition yet: its reconciler has not
    /// validated it (a store applied together with its ExternalSecrets). Its readiness arriving wakes them.
    #[error("{kind} {name:?} is not ready (not validated yet)")]
    NotValidated { kind: &'static str, name: String },
    #[error("using cluster store {name:?} is not allowed from namespace {namespace:?}: denied by spec.condition")]
    NotAllowed { name: String, namespace: String },
    /// The store belongs to another controller class: the ExternalSecret is not ours to sync.
    #[error("{kind} {name:?} belongs to controller class {class:?}")]
    OtherClass {
        kind: &'static str,
        name: String,
        class: String,
    },
    #[error("ClusterSecretStores are disabled in this syncret (--enable-cluster-store-reconciler=false)")]
    ClusterStoresDisabled,
}

/// A store ready to build clients from.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub info: StoreInfo,
}

/// How long a store without a `Ready` condition counts as "being validated" rather than not ready (a store whose
/// status never comes, e.g. a reconciler that cannot write it, must not leave its ExternalSecrets silent).
pub const VALIDATION_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// How soon an ExternalSecret or PushSecret waiting for a store's first validation looks again ([`StoreProblem::NotValidated`]);
/// the store's watch normally wakes it sooner, when the store's `Ready` condition arrives.
pub const VALIDATION_RECHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// What a resolve needs of a store's metadata.
struct StoreMeta {
    uid: String,
    generation: i64,
    just_created: bool,
}

impl StoreMeta {
    fn of(meta: &kube::api::ObjectMeta) -> Self {
        Self {
            uid: meta.uid.clone().unwrap_or_default(),
            generation: meta.generation.unwrap_or_default(),
            just_created: just_created(meta),
        }
    }
}

fn just_created(meta: &kube::api::ObjectMeta) -> bool {
    created_within(meta, VALIDATION_GRACE, chrono::Utc::now())
}

/// How long after its creation an ExternalSecret whose store does not exist (yet) waits for it to appear before
/// it reports "not found": a store and its ExternalSecrets applied together reach the operator through separate
/// watches, in either order.
pub const STORE_APPEAR_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the object was created less than `grace` before `now`. Pure.
pub fn created_within(
    meta: &kube::api::ObjectMeta,
    grace: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let Some(created) = meta
        .creation_timestamp
        .as_ref()
        .and_then(crate::sync::refresh::from_time)
    else {
        return false;
    };
    chrono::Duration::from_std(grace).is_ok_and(|grace| created.checked_add_signed(grace).is_some_and(|end| now < end))
}

/// A store's `Ready` condition: `None` before its reconciler validated it.
pub fn readiness(conditions: Option<&Vec<syncret_crds::condition::SecretStoreStatusCondition>>) -> Option<bool> {
    conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.is_true())
}

impl Stores {
    /// Looks up `id` for an object in `namespace`, applying class, flood gate and ClusterSecretStore conditions.
    pub fn resolve(&self, namespace: &str, id: &StoreId) -> Result<Resolved, StoreProblem> {
        let kind = id.kind.as_str();
        let (spec, meta, ready, scope) = match id.kind {
            StoreKind::SecretStore => {
                let s = self
                    .secret_stores
                    .get(&ObjectRef::new(&id.name).within(namespace))
                    .ok_or_else(|| StoreProblem::NotFound {
                        kind,
                        name: id.name.clone(),
                    })?;
                let ready = readiness(s.status.as_ref().map(|st| &st.conditions));
                let meta = StoreMeta::of(&s.metadata);
                (self.shared_spec(&meta, &s.spec), meta, ready, StoreScope::SecretStore)
            }
            StoreKind::ClusterSecretStore => {
                if !self.cluster_stores_enabled {
                    return Err(StoreProblem::ClusterStoresDisabled);
                }
                let s = self
                    .cluster_secret_stores
                    .get(&ObjectRef::new(&id.name))
                    .ok_or_else(|| StoreProblem::NotFound {
                        kind,
                        name: id.name.clone(),
                    })?;
                let ready = readiness(s.status.as_ref().map(|st| &st.conditions));
                let meta = StoreMeta::of(&s.metadata);
                (
                    self.shared_spec(&meta, &s.spec.spec),
                    meta,
                    ready,
                    StoreScope::ClusterSecretStore,
                )
            }
        };
        if !spec.controller.is_empty() && spec.controller != self.controller_class {
            return Err(StoreProblem::OtherClass {
                kind,
                name: id.name.clone(),
                class: spec.controller.clone(),
            });
        }
        if scope == StoreScope::ClusterSecretStore && !self.namespace_allowed(&spec, namespace) {
            return Err(StoreProblem::NotAllowed {
                name: id.name.clone(),
                namespace: namespace.to_string(),
            });
        }
        if self.flood_gate {
            let name = id.name.clone();
            match ready {
                None if meta.just_created => return Err(StoreProblem::NotValidated { kind, name }),
                None => return Err(StoreProblem::NotReady { kind, name }),
                Some(false) => return Err(StoreProblem::NotReady { kind, name }),
                Some(true) => {}
            }
        }
        Ok(Resolved {
            info: StoreInfo {
                scope,
                name: id.name.clone(),
                namespace: (scope == StoreScope::SecretStore).then(|| namespace.to_string()),
                uid: meta.uid,
                generation: meta.generation,
                spec,
            },
        })
    }

    /// The store's spec at this generation, copied once per generation and then shared.
    fn shared_spec(&self, meta: &StoreMeta, spec: &SecretStoreSpec) -> Arc<SecretStoreSpec> {
        let mut specs = self.specs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, s)) = specs.get(&meta.uid)
            && *g == meta.generation
        {
            return s.clone();
        }
        // A miss (new store or new generation) is rare: forget stores that are gone meanwhile.
        let live: std::collections::HashSet<String> = self
            .secret_stores
            .state()
            .iter()
            .filter_map(|s| s.metadata.uid.clone())
            .chain(
                self.cluster_secret_stores
                    .state()
                    .iter()
                    .filter_map(|s| s.metadata.uid.clone()),
            )
            .collect();
        specs.retain(|u, _| live.contains(u));
        let shared = Arc::new(bounded(spec.clone(), self.max_timeout).0);
        specs.insert(meta.uid.clone(), (meta.generation, shared.clone()));
        shared
    }

    /// ClusterSecretStore `spec.conditions`: allowed if there are none, or any condition matches (selector,
    /// names or regexes). Fails closed: a namespace the cache does not hold yet matches no selector (its labels
    /// are unknown, and `NotIn`/`DoesNotExist` selectors would match an empty label set); names and regexes need
    /// only the name.
    pub fn namespace_allowed(&self, spec: &SecretStoreSpec, namespace: &str) -> bool {
        if spec.conditions.is_empty() {
            return true;
        }
        let labels = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .map(|n| n.labels().clone());
        spec.conditions.iter().any(|c| {
            let by_selector = c
                .namespace_selector
                .as_ref()
                .and_then(|s| Selector::try_from(s.clone()).ok())
                .is_some_and(|s| labels.as_ref().is_some_and(|l| s.matches(l)));
            let by_name = c.namespaces.iter().any(|n| n == namespace);
            let by_regex = c.namespace_regexes.iter().any(|r| {
                regex::RegexBuilder::new(r)
                    .size_limit(1 << 20)
                    .build()
                    .is_ok_and(|re| re.is_match(namespace))
            });
            by_selector || by_name || by_regex
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_within_a_grace() {
        let meta: kube::api::ObjectMeta =
            serde_yaml::from_str("name: es\ncreationTimestamp: '2026-01-01T00:00:00Z'").unwrap();
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let grace = std::time::Duration::from_secs(10);
        assert!(created_within(&meta, grace, at("2026-01-01T00:00:09Z")));
        assert!(!created_within(&meta, grace, at("2026-01-01T00:00:10Z")));
        assert!(!created_within(
            &kube::api::ObjectMeta::default(),
            grace,
            at("2026-01-01T00:00:01Z")
        ));
        assert!(
            !created_within(&meta, std::time::Duration::MAX, at("2026-01-01T00:00:01Z")),
            "no overflow"
        );
    }
    use kube::runtime::reflector::store as reflector_store;
    use kube::runtime::watcher::Event;

    fn stores_with(yaml: &str) -> Stores {
        let (ss, mut w) = reflector_store::<SecretStore>();
        let s: SecretStore = serde_yaml::from_str(yaml).unwrap();
        w.apply_watcher_event(&Event::Apply(s));
        Stores {
            secret_stores: ss,
            cluster_secret_stores: reflector_store::<ClusterSecretStore>().0,
            namespaces: reflector_store::<PartialObjectMeta<Namespace>>().0,
            controller_class: String::new(),
            flood_gate: true,
            cluster_stores_enabled: true,
            specs: Default::default(),
            max_timeout: std::time::Duration::from_secs(60),
        }
    }

    #[test]
    fn webhook_timeouts_above_the_deadline_are_clamped_and_said() {
        let spec = |t: &str| -> SecretStoreSpec {
            serde_yaml::from_str(&format!(
                "provider: {{webhook: {{url: 'http://h/x', timeout: '{t}', result: {{jsonPath: $.v}}}}}}"
            ))
            .unwrap()
        };
        let minute = std::time::Duration::from_secs(60);
        let (s, note) = bounded(spec("8760h"), minute);
        assert_eq!(s.provider.webhook.unwrap().timeout.as_deref(), Some("1m0s"));
        assert_eq!(
            note.as_deref(),
            Some(
                "spec.provider.webhook.timeout 8760h is above the reconcile deadline (--reconcile-timeout) and is clamped to 1m0s"
            )
        );
        let (s, note) = bounded(spec("30s"), minute);
        assert_eq!(s.provider.webhook.unwrap().timeout.as_deref(), Some("30s"));
        assert_eq!(note, None);
    }

    fn resolve(yaml: &str) -> Result<Resolved, StoreProblem> {
        let id = StoreId {
            kind: StoreKind::SecretStore,
            name: "s".into(),
        };
        stores_with(yaml).resolve("app", &id)
    }

    fn store(created: &str, status: &str) -> String {
        format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: s, namespace: app, creationTimestamp: '{created}'}}\nspec: {{provider: {{fake: {{data: []}}}}}}\n{status}"
        )
    }

    #[test]
    fn a_store_not_yet_validated_is_waited_for_only_just_after_its_creation() {
        let now = chrono::Utc::now();
        let fresh = (now - chrono::Duration::seconds(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let old = (now - chrono::Duration::seconds(120)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let cond = |s: &str| format!("status: {{conditions: [{{type: Ready, status: '{s}'}}]}}\n");
        assert!(matches!(
            resolve(&store(&fresh, "")),
            Err(StoreProblem::NotValidated { .. })
        ));
        assert!(matches!(resolve(&store(&old, "")), Err(StoreProblem::NotReady { .. })));
        assert!(matches!(
            resolve(&store(&fresh, &cond("False"))),
            Err(StoreProblem::NotReady { .. })
        ));
        assert!(resolve(&store(&old, &cond("True"))).is_ok());
        let msg = StoreProblem::NotValidated {
            kind: "SecretStore",
            name: "s".into(),
        }
        .to_string();
        assert!(msg.contains("\"s\" is not ready"), "{msg}");
    }

    #[test]
    fn cluster_store_conditions_fail_closed_for_a_namespace_not_in_the_cache() {
        let (ns_store, mut ns_w) = reflector_store::<PartialObjectMeta<Namespace>>();
        let stores = Stores {
            namespaces: ns_store,
            ..stores_with(&store("2020-01-01T00:00:00Z", ""))
        };
        let spec: SecretStoreSpec = serde_yaml::from_str(
            "provider: {fake: {data: []}}\nconditions:\n- namespaceSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [prod]}]}\n",
        )
        .unwrap();
        assert!(
            !stores.namespace_allowed(&spec, "new-ns"),
            "unknown labels: no selector matches"
        );
        let mut ns: PartialObjectMeta<Namespace> = PartialObjectMeta::default();
        ns.metadata.name = Some("new-ns".into());
        ns.metadata.labels = Some([("tier".to_string(), "dev".to_string())].into());
        ns_w.apply_watcher_event(&Event::Apply(ns));
        assert!(stores.namespace_allowed(&spec, "new-ns"), "known and not prod");
        // Names and regexes need only the name.
        let by_name: SecretStoreSpec =
            serde_yaml::from_str("provider: {fake: {data: []}}\nconditions:\n- namespaces: [other]\n").unwrap();
        assert!(stores.namespace_allowed(&by_name, "other"));
        assert!(!stores.namespace_allowed(&by_name, "new-ns"));
    }

    #[test]
    fn a_store_spec_is_copied_once_per_generation() {
        let yaml = |generation: i64| {
            format!(
                "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: s, namespace: app, uid: u1, generation: {generation}}}\nspec: {{provider: {{fake: {{data: []}}}}}}\nstatus: {{conditions: [{{type: Ready, status: 'True'}}]}}\n"
            )
        };
        let id = StoreId {
            kind: StoreKind::SecretStore,
            name: "s".into(),
        };
        let stores = stores_with(&yaml(1));
        let a = stores.resolve("app", &id).unwrap().info.spec;
        let b = stores.resolve("app", &id).unwrap().info.spec;
        assert!(Arc::ptr_eq(&a, &b), "same generation: one shared copy");
        stores
            .specs
            .lock()
            .unwrap()
            .insert("u1".into(), (0, Arc::new((*a).clone())));
        let c = stores.resolve("app", &id).unwrap().info.spec;
        assert!(!Arc::ptr_eq(&a, &c) && *a == *c, "another generation: a fresh copy");
    }
}
