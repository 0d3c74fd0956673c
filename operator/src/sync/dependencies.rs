//! Which objects of the cluster an ExternalSecret or PushSecret depends on, besides its stores: the ConfigMaps
//! and Secrets its `templateFrom` reads (a change re-renders it, ESO #1430) and the object a generic target
//! (`spec.target.manifest`) writes (a change by someone else is healed). One pure function per source of
//! dependencies; [`of_external_secret`] and [`of_push_secret`] list what the spec alone says, the reconcile adds
//! the generic target (once its kind is allowed) and [`sops_documents`] (once the stores are known). The watch of
//! [`crate::dependents`] wakes the dependents of a changed object; a new kind of dependency is one more function
//! here.
use syncret_crds::externalsecret::{ExternalSecret, ExternalSecretTemplate};
use syncret_crds::provider::sops::SopsSourceKind;
use syncret_crds::pushsecret::PushSecret;
use syncret_providers::StoreInfo;

use super::fetch::StoreId;

/// The kind of a depended-on object, as its watch sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// core/v1 ConfigMap (template sources, ConfigMap targets).
    ConfigMap,
    /// core/v1 Secret (template sources).
    Secret,
    /// Any other namespaced kind (generic targets): `apiVersion` and `kind` as the manifest names them.
    Resource { api_version: String, kind: String },
}

impl ObjectKind {
    /// The kind for an `apiVersion` and `kind`: ConfigMaps and Secrets of core/v1 are the well-known kinds.
    pub fn of(api_version: &str, kind: &str) -> ObjectKind {
        match (api_version, kind) {
            ("v1", "ConfigMap") => ObjectKind::ConfigMap,
            ("v1", "Secret") => ObjectKind::Secret,
            _ => ObjectKind::Resource {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            },
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectKind::ConfigMap => f.write_str("ConfigMap"),
            ObjectKind::Secret => f.write_str("Secret"),
            ObjectKind::Resource { api_version, kind } => write!(f, "{kind}.{api_version}"),
        }
    }
}

/// One object: kind, namespace, name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: ObjectKind,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: ObjectKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// How a dependent uses the object: what a change of it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// It is read (template sources): a change is a reason to render again.
    Source,
    /// It is written (a generic target): a change by someone else is healed; our own writes wake nobody.
    Target,
}

/// An object and how it is used.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dependency {
    pub object: ObjectRef,
    pub role: Role,
}

/// The ConfigMaps and Secrets a template's `templateFrom` reads, in `namespace` (the template's owner's: ESO
/// reads them from there), each once.
pub fn template_from(namespace: &str, template: Option<&ExternalSecretTemplate>) -> Vec<ObjectRef> {
    let mut out: Vec<ObjectRef> = Vec::new();
    for from in template.iter().flat_map(|t| t.template_from.iter()) {
        let named = [
            (ObjectKind::ConfigMap, from.config_map.as_ref()),
            (ObjectKind::Secret, from.secret.as_ref()),
        ];
        for (kind, r) in named {
            let Some(r) = r else { continue };
            let o = ObjectRef::new(kind, namespace, r.name.as_str());
            if !out.contains(&o) {
                out.push(o);
            }
        }
    }
    out
}

/// The object a generic target writes (`spec.target.manifest` naming a kind other than a core/v1 Secret), in
/// the ExternalSecret's namespace.
pub fn generic_target(es: &ExternalSecret) -> Option<ObjectRef> {
    let m = es.spec.target.manifest.as_ref()?;
    if es.spec.target.is_secret() {
        return None;
    }
    let name = es.target_name()?;
    Some(ObjectRef::new(
        ObjectKind::of(&m.api_version, &m.kind),
        es.metadata.namespace.as_deref().unwrap_or_default(),
        name,
    ))
}

/// What an ExternalSecret depends on, as its spec alone says: the ConfigMaps and Secrets its `templateFrom`
/// reads. Its generic target ([`generic_target`]) is added by the reconcile once the target's kind passed the
/// operator's policy, so that naming a kind never makes the operator watch a kind it may not write.
pub fn of_external_secret(es: &ExternalSecret) -> Vec<Dependency> {
    let ns = es.metadata.namespace.as_deref().unwrap_or_default();
    template_from(ns, es.spec.target.template.as_ref())
        .into_iter()
        .map(|object| Dependency {
            object,
            role: Role::Source,
        })
        .collect()
}

/// The ConfigMaps and Secrets holding the SOPS documents `es` reads through the sops stores among `stores`
/// (issue 30: a changed encrypted document re-syncs its ExternalSecrets at once). They depend on the stores'
/// specs, so the reconcile adds them once it has resolved the stores.
pub fn sops_documents<'a>(
    es: &ExternalSecret,
    stores: impl IntoIterator<Item = (&'a StoreId, &'a StoreInfo)>,
) -> Vec<Dependency> {
    let mut out: Vec<Dependency> = Vec::new();
    for (id, info) in stores {
        let Some(spec) = info.spec.provider.sops.as_deref() else {
            continue;
        };
        for d in syncret_providers::sops::documents_read(es, id.kind, &id.name, info.namespace.as_deref(), spec) {
            let kind = match d.kind {
                SopsSourceKind::ConfigMap => ObjectKind::ConfigMap,
                SopsSourceKind::Secret => ObjectKind::Secret,
            };
            let dep = Dependency {
                object: ObjectRef::new(kind, d.namespace, d.name),
                role: Role::Source,
            };
            if !out.contains(&dep) {
                out.push(dep);
            }
        }
    }
    out
}

/// Everything a PushSecret depends on besides its source Secret (which [`crate::push::sources`] follows).
pub fn of_push_secret(ps: &PushSecret) -> Vec<Dependency> {
    let ns = ps.metadata.namespace.as_deref().unwrap_or_default();
    template_from(ns, ps.spec.template.as_ref())
        .into_iter()
        .map(|object| Dependency {
            object,
            role: Role::Source,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(yaml: &str) -> ExternalSecret {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn template_sources_once_each_in_the_owners_namespace() {
        let e = es(r#"
metadata: {name: db, namespace: app}
spec:
  target:
    template:
      templateFrom:
      - configMap: {name: tpl, items: [{key: a}]}
      - secret: {name: tpl, items: [{key: b}]}
      - configMap: {name: tpl, items: [{key: c}]}
        literal: "x: y"
      - literal: "k: v"
  data: [{secretKey: a, remoteRef: {key: k}}]
"#);
        let deps = of_external_secret(&e);
        assert_eq!(
            deps,
            vec![
                Dependency {
                    object: ObjectRef::new(ObjectKind::ConfigMap, "app", "tpl"),
                    role: Role::Source
                },
                Dependency {
                    object: ObjectRef::new(ObjectKind::Secret, "app", "tpl"),
                    role: Role::Source
                },
            ]
        );
        // Nothing to depend on without templateFrom.
        assert!(of_external_secret(&es("metadata: {name: db, namespace: app}\nspec: {}\n")).is_empty());
    }

    #[test]
    fn a_generic_target_is_not_a_dependency_of_the_spec_alone_and_a_secret_manifest_is_no_target() {
        let e = es(r#"
metadata: {name: db, namespace: app}
spec:
  target:
    name: settings
    manifest: {apiVersion: config.example.com/v1, kind: AppConfig}
    template:
      templateFrom:
      - configMap: {name: tpl, items: [{key: a}]}
        target: spec.database
"#);
        // Only the template source: the target is registered once its kind is allowed (the reconcile).
        let deps = of_external_secret(&e);
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0].role, Role::Source);
        assert_eq!(
            generic_target(&e),
            Some(ObjectRef::new(
                ObjectKind::Resource {
                    api_version: "config.example.com/v1".into(),
                    kind: "AppConfig".into()
                },
                "app",
                "settings"
            ))
        );
        let cm =
            es("metadata: {name: db, namespace: app}\nspec: {target: {manifest: {apiVersion: v1, kind: ConfigMap}}}\n");
        assert_eq!(
            generic_target(&cm),
            Some(ObjectRef::new(ObjectKind::ConfigMap, "app", "db"))
        );
        let secret =
            es("metadata: {name: db, namespace: app}\nspec: {target: {manifest: {apiVersion: v1, kind: Secret}}}\n");
        assert_eq!(generic_target(&secret), None);
    }

    #[test]
    fn sops_stores_make_their_documents_sources_other_stores_do_not() {
        use std::sync::Arc;
        use syncret_crds::secretstore::{SecretStoreSpec, StoreKind};
        use syncret_providers::StoreScope;
        let e = es(r#"
metadata: {name: app, namespace: team}
spec:
  secretStoreRef: {name: sops}
  data:
  - {secretKey: a, remoteRef: {key: docs/app.yaml, property: db.password}}
  - {secretKey: b, remoteRef: {key: docs/app.yaml, property: db.user}}
  - {secretKey: c, remoteRef: {key: other/x.env}}
  - {secretKey: d, remoteRef: {key: plain}, sourceRef: {storeRef: {name: fake}}}
"#);
        let store = |name: &str, spec: &str| {
            let spec: SecretStoreSpec = serde_yaml::from_str(spec).unwrap();
            (
                StoreId {
                    kind: StoreKind::SecretStore,
                    name: name.into(),
                },
                StoreInfo {
                    scope: StoreScope::SecretStore,
                    name: name.into(),
                    namespace: Some("team".into()),
                    uid: String::new(),
                    generation: 1,
                    spec: Arc::new(spec),
                },
            )
        };
        let stores = [
            store(
                "sops",
                "provider: {sops: {keys: {age: [{secretRef: {name: k, key: keys.txt}}]}}}",
            ),
            store("fake", "provider: {fake: {data: []}}"),
        ];
        let deps = sops_documents(&e, stores.iter().map(|(i, s)| (i, s)));
        let cm = |name: &str| Dependency {
            object: ObjectRef::new(ObjectKind::ConfigMap, "team", name),
            role: Role::Source,
        };
        assert_eq!(deps, vec![cm("docs"), cm("other")]);
        // Documents in Secrets are Secrets.
        let secrets = [store(
            "sops",
            "provider: {sops: {sourceKind: Secret, keys: {age: [{secretRef: {name: k, key: keys.txt}}]}}}",
        )];
        let deps = sops_documents(&e, secrets.iter().map(|(i, s)| (i, s)));
        assert_eq!(deps[0].object.kind, ObjectKind::Secret);
    }

    #[test]
    fn push_secret_templates_are_sources() {
        let ps: PushSecret = serde_yaml::from_str(
            r#"
metadata: {name: p, namespace: team}
spec:
  secretStoreRefs: []
  selector: {secret: {name: src}}
  template:
    templateFrom:
    - secret: {name: tpl, items: [{key: a}]}
"#,
        )
        .unwrap();
        assert_eq!(
            of_push_secret(&ps),
            vec![Dependency {
                object: ObjectRef::new(ObjectKind::Secret, "team", "tpl"),
                role: Role::Source
            }]
        );
    }
}
