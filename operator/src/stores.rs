//! The stores an ExternalSecret may use, from the SecretStore / ClusterSecretStore reflectors: lookup, the
//! controller class, the flood gate (a store must be Ready) and ClusterSecretStore `spec.conditions`.
use std::sync::Arc;

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
}

/// Why a store cannot be used now. The message is ESO's where ESO has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreProblem {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} is not ready")]
    NotReady { kind: &'static str, name: String },
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

fn is_ready(conditions: Option<&Vec<syncret_crds::condition::SecretStoreStatusCondition>>) -> bool {
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.is_true())
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
                let ready = is_ready(s.status.as_ref().map(|st| &st.conditions));
                (
                    Arc::new(s.spec.clone()),
                    s.metadata.clone(),
                    ready,
                    StoreScope::SecretStore,
                )
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
                let ready = is_ready(s.status.as_ref().map(|st| &st.conditions));
                (
                    Arc::new(s.spec.spec.clone()),
                    s.metadata.clone(),
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
        if self.flood_gate && !ready {
            return Err(StoreProblem::NotReady {
                kind,
                name: id.name.clone(),
            });
        }
        Ok(Resolved {
            info: StoreInfo {
                scope,
                name: id.name.clone(),
                namespace: (scope == StoreScope::SecretStore).then(|| namespace.to_string()),
                uid: meta.uid.clone().unwrap_or_default(),
                generation: meta.generation.unwrap_or_default(),
                spec,
            },
        })
    }

    /// ClusterSecretStore `spec.conditions`: allowed if there are none, or any condition matches (selector,
    /// names or regexes).
    pub fn namespace_allowed(&self, spec: &SecretStoreSpec, namespace: &str) -> bool {
        if spec.conditions.is_empty() {
            return true;
        }
        let labels = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .map(|n| n.labels().clone())
            .unwrap_or_default();
        spec.conditions.iter().any(|c| {
            let by_selector = c
                .namespace_selector
                .as_ref()
                .and_then(|s| Selector::try_from(s.clone()).ok())
                .is_some_and(|s| s.matches(&labels));
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
