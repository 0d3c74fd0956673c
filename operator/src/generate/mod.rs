//! Running generators for ExternalSecrets (`dataFrom[].sourceRef.generatorRef`) and PushSecrets
//! (`selector.generatorRef`): resolve the referenced object (a namespaced generator, or a `ClusterGenerator` used
//! as a generator of the referencing namespace), build its client once (cached like store clients, so a
//! VaultDynamicSecret logs in once), and call it with metrics (`syncret_generator_calls_total`,
//! `syncret_generator_call_duration_seconds`). [`state`] keeps ESO's `GeneratorState`s of leased values.
pub mod state;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;
use syncret_crds::externalsecret::{GeneratorKind, GeneratorRef};
use syncret_crds::generator::{self as genapi, ClusterGeneratorSpec, Generator};
use syncret_providers::generators::{Generated, GeneratorClient, GeneratorInfo};
use syncret_providers::{
    CacheKey, CallObserver, ClientCache, Lease, ProviderContext, ProviderError, Registry, StoreScope,
};

use crate::metrics::Metrics;

/// The annotation on a GeneratorState's `resource` snapshot naming the ClusterGenerator it came from (the
/// snapshot itself is the "virtual" namespaced generator, as ESO stores it).
pub const CLUSTER_GENERATOR_ANNOTATION: &str = "syncret.dev/cluster-generator";

/// A generator as used from one namespace.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub info: GeneratorInfo,
    /// Where it is used (credentials of a ClusterGenerator without a namespace resolve here).
    pub namespace: String,
    /// The generator as a namespaced object (kind, name, spec), for a GeneratorState's `spec.resource`.
    pub resource: Value,
}

/// See the module docs.
pub struct Generators {
    client: kube::Client,
    clients: ClientCache<dyn GeneratorClient>,
    metrics: Arc<Metrics>,
    observer: Arc<dyn CallObserver>,
    /// The tenant boundary: a namespaced Generator is a tenant's object, as a SecretStore is.
    tenant: Arc<syncret_providers::TenantPolicy>,
}

fn api_resource(kind: GeneratorKind) -> Option<ApiResource> {
    Some(ApiResource {
        group: genapi::GROUP.into(),
        version: "v1alpha1".into(),
        api_version: genapi::API_VERSION.into(),
        kind: kind.as_str().into(),
        plural: kind.plural()?.into(),
    })
}

fn spec_hash(v: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

/// Builds what a generator object says: `kind` and its `spec` (a ClusterGenerator's wrapped one).
pub fn resolve_object(
    kind: GeneratorKind,
    name: &str,
    namespace: &str,
    object_namespace: Option<&str>,
    spec: Value,
) -> Result<Resolved, ProviderError> {
    let (generator, base, scope) = if kind == GeneratorKind::ClusterGenerator {
        let c: ClusterGeneratorSpec = serde_json::from_value(spec.clone())
            .map_err(|e| ProviderError::invalid_config("spec", format!("ClusterGenerator {name:?}: {e}")))?;
        let (g, base) = c
            .generator()
            .map_err(|e| ProviderError::invalid_config(format!("ClusterGenerator {name:?}"), e.to_string()))?;
        (g, base, StoreScope::ClusterSecretStore)
    } else {
        let g = genapi::namespaced_spec(kind, spec.clone())
            .map_err(|e| ProviderError::invalid_config("spec", format!("{kind} {name:?}: {e}")))?;
        (g, "spec", StoreScope::SecretStore)
    };
    let generated = generator.kind();
    let wrapped_spec = match (&generator, kind) {
        (_, k) if k != GeneratorKind::ClusterGenerator => spec,
        (g, _) => virtual_spec(g),
    };
    let mut metadata = serde_json::json!({ "name": name });
    if let Some(ns) = object_namespace {
        metadata["namespace"] = Value::String(ns.to_string());
    }
    if kind == GeneratorKind::ClusterGenerator {
        metadata["annotations"] = serde_json::json!({ CLUSTER_GENERATOR_ANNOTATION: name });
    }
    let resource = serde_json::json!({
        "apiVersion": genapi::API_VERSION,
        "kind": generated.as_str(),
        "metadata": metadata,
        "spec": wrapped_spec,
    });
    let uid = format!("generator-{:016x}", spec_hash(&resource));
    Ok(Resolved {
        info: GeneratorInfo {
            scope,
            object_kind: kind,
            name: name.to_string(),
            namespace: object_namespace.map(str::to_string),
            uid,
            generation: 0,
            generator: Arc::new(generator),
            base,
        },
        namespace: namespace.to_string(),
        resource,
    })
}

/// The spec of a wrapped generator as its own kind's spec.
fn virtual_spec(g: &Generator) -> Value {
    let v = match g {
        Generator::Password(p) => serde_json::to_value(p),
        Generator::Uuid => Ok(serde_json::json!({})),
        Generator::SshKey(s) => serde_json::to_value(s),
        Generator::Fake(f) => serde_json::to_value(f),
        Generator::Ecr(e) => serde_json::to_value(e),
        Generator::Sts(s) => serde_json::to_value(s),
        Generator::Vault(v) => serde_json::to_value(v.as_ref()),
        Generator::Webhook(w) => serde_json::to_value(w),
        Generator::Mfa(m) => serde_json::to_value(m),
        Generator::Github(g) => serde_json::to_value(g),
    };
    v.unwrap_or(Value::Null)
}

/// The generator a GeneratorState's `spec.resource` snapshot describes, used from `namespace`.
pub fn from_snapshot(resource: &Value, namespace: &str) -> Result<Resolved, ProviderError> {
    let kind: GeneratorKind = resource
        .get("kind")
        .cloned()
        .and_then(|k| serde_json::from_value(k).ok())
        .ok_or_else(|| ProviderError::invalid_config("spec.resource.kind", "not a generator kind"))?;
    let meta = resource.get("metadata").cloned().unwrap_or(Value::Null);
    let name = meta.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let cluster = meta
        .get("annotations")
        .and_then(|a| a.get(CLUSTER_GENERATOR_ANNOTATION))
        .and_then(Value::as_str)
        .is_some();
    let spec = resource.get("spec").cloned().unwrap_or(Value::Null);
    let mut r = if cluster {
        let wrapped = serde_json::json!({
            "kind": kind.as_str(),
            "generator": { cluster_field(kind).unwrap_or("unknown"): spec },
        });
        resolve_object(GeneratorKind::ClusterGenerator, &name, namespace, None, wrapped)?
    } else {
        resolve_object(kind, &name, namespace, Some(namespace), spec)?
    };
    r.resource = resource.clone();
    Ok(r)
}

/// The field of a ClusterGenerator's `spec.generator` that holds `kind`'s spec.
fn cluster_field(kind: GeneratorKind) -> Option<&'static str> {
    Some(match kind {
        GeneratorKind::Password => "passwordSpec",
        GeneratorKind::Uuid => "uuidSpec",
        GeneratorKind::SshKey => "sshKeySpec",
        GeneratorKind::Fake => "fakeSpec",
        GeneratorKind::EcrAuthorizationToken => "ecrAuthorizationTokenSpec",
        GeneratorKind::StsSessionToken => "stsSessionTokenSpec",
        GeneratorKind::VaultDynamicSecret => "vaultDynamicSecretSpec",
        GeneratorKind::Webhook => "webhookSpec",
        GeneratorKind::Mfa => "mfaSpec",
        GeneratorKind::GithubAccessToken => "githubAccessTokenSpec",
        _ => return None,
    })
}

/// Checks a `generatorRef` before anything is read: the generators API group, a kind syncret runs.
pub fn check_ref(r: &GeneratorRef, field: &str) -> Result<(), crate::sync::fetch::PlanError> {
    let group = r.api_version.split('/').next().unwrap_or_default();
    if group != genapi::GROUP {
        return Err(crate::sync::fetch::PlanError {
            field: format!("{field}.apiVersion"),
            message: format!(
                "generatorRef may only reference the generators group, but got {:?}",
                r.api_version
            ),
        });
    }
    if !r.kind.is_supported() {
        return Err(crate::sync::fetch::PlanError {
            field: format!("{field}.kind"),
            message: format!(
                "{} generators are not supported by syncret (see docs/generators.md)",
                r.kind.as_str()
            ),
        });
    }
    Ok(())
}

impl Generators {
    pub fn new(
        client: kube::Client,
        max_age: Duration,
        metrics: Arc<Metrics>,
        observer: Arc<dyn CallObserver>,
        tenant: Arc<syncret_providers::TenantPolicy>,
    ) -> Self {
        Self {
            client,
            clients: ClientCache::new(max_age),
            metrics,
            observer,
            tenant,
        }
    }

    /// Reads the generator `r` names, as used from `namespace`.
    pub async fn resolve(&self, namespace: &str, r: &GeneratorRef) -> Result<Resolved, ProviderError> {
        let ar = api_resource(r.kind).ok_or_else(|| {
            ProviderError::invalid_config("kind", format!("{} generators are not supported by syncret", r.kind))
        })?;
        let cluster = r.kind == GeneratorKind::ClusterGenerator;
        let api: Api<DynamicObject> = if cluster {
            Api::all_with(self.client.clone(), &ar)
        } else {
            Api::namespaced_with(self.client.clone(), namespace, &ar)
        };
        let obj = api
            .get_opt(&r.name)
            .await
            .map_err(ProviderError::Kube)?
            .ok_or_else(|| {
                ProviderError::invalid_config(
                    "name",
                    format!(
                        "{} {:?} not found{}",
                        r.kind,
                        r.name,
                        if cluster {
                            String::new()
                        } else {
                            format!(" in namespace {namespace:?}")
                        }
                    ),
                )
            })?;
        let spec = obj.data.get("spec").cloned().unwrap_or_else(|| serde_json::json!({}));
        let object_ns = (!cluster).then_some(namespace);
        let mut res = resolve_object(r.kind, &r.name, namespace, object_ns, spec)?;
        // Cached per object and spec: a changed spec builds a new client.
        if let Some(uid) = obj.metadata.uid {
            res.info.uid = format!("{uid}-{}", res.info.uid);
        }
        Ok(res)
    }

    async fn client(&self, r: &Resolved, registry: &Registry) -> Result<Arc<dyn GeneratorClient>, ProviderError> {
        let referent = (r.info.scope == StoreScope::ClusterSecretStore).then(|| r.namespace.clone());
        let key = CacheKey {
            kind: r.info.object_kind.as_str(),
            namespace: r.info.namespace.clone(),
            name: r.info.name.clone(),
            uid: r.info.uid.clone(),
            generation: r.info.generation,
            referent_namespace: referent.clone(),
        };
        let ctx = ProviderContext {
            client: self.client.clone(),
            observer: self.observer.clone(),
            referent_namespace: referent,
            policy: self.tenant.clone(),
        };
        let info = &r.info;
        self.clients
            .get_or_build(&key, || async move { registry.generators.client(info, &ctx).await })
            .await
    }

    /// Makes new values.
    pub async fn generate(&self, r: &Resolved, registry: &Registry) -> Result<Generated, ProviderError> {
        let start = Instant::now();
        let res = match self.client(r, registry).await {
            Ok(c) => c.generate().await,
            Err(e) => Err(e),
        };
        self.metrics
            .generator_call(r.info.kind().as_str(), "Generate", res.is_ok(), start.elapsed());
        res
    }

    /// Renews the lease of values made earlier.
    pub async fn renew(&self, r: &Resolved, registry: &Registry, lease: &Lease) -> Result<Lease, ProviderError> {
        let start = Instant::now();
        let res = match self.client(r, registry).await {
            Ok(c) => c.renew(lease).await,
            Err(e) => Err(e),
        };
        self.metrics
            .generator_call(r.info.kind().as_str(), "RenewLease", res.is_ok(), start.elapsed());
        res
    }

    /// Revokes the lease of values made earlier.
    pub async fn revoke(&self, r: &Resolved, registry: &Registry, lease: &Lease) -> Result<(), ProviderError> {
        let start = Instant::now();
        let res = match self.client(r, registry).await {
            Ok(c) => c.revoke(lease).await,
            Err(e) => Err(e),
        };
        self.metrics
            .generator_call(r.info.kind().as_str(), "RevokeLease", res.is_ok(), start.elapsed());
        res
    }

    /// Drops every cached generator client (a login token that leases depend on is kept, not revoked).
    pub async fn close(&self) {
        self.clients.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_generators_become_virtual_namespaced_ones_and_back() {
        let spec = serde_json::json!({"kind": "Password", "generator": {"passwordSpec": {"length": 12}}});
        let r = resolve_object(GeneratorKind::ClusterGenerator, "pw", "app", None, spec).unwrap();
        assert_eq!(r.info.scope, StoreScope::ClusterSecretStore);
        assert_eq!(r.info.base, "spec.generator.passwordSpec");
        assert_eq!(r.resource["kind"], "Password");
        assert_eq!(r.resource["spec"]["length"], 12);
        let back = from_snapshot(&r.resource, "other").unwrap();
        assert_eq!(back.info.scope, StoreScope::ClusterSecretStore);
        assert_eq!(back.namespace, "other");
        assert_eq!(back.info.generator, r.info.generator);
        let ns = resolve_object(GeneratorKind::Uuid, "u", "app", Some("app"), serde_json::json!({})).unwrap();
        let back = from_snapshot(&ns.resource, "app").unwrap();
        assert_eq!(back.info.scope, StoreScope::SecretStore);
        assert_eq!(back.info.namespace.as_deref(), Some("app"));
    }

    #[test]
    fn refs_outside_the_group_or_of_unsupported_kinds_are_refused() {
        let r = |api: &str, kind: &str| -> GeneratorRef {
            serde_json::from_value(serde_json::json!({"apiVersion": api, "kind": kind, "name": "g"})).unwrap()
        };
        assert!(check_ref(&r("generators.external-secrets.io/v1alpha1", "Password"), "f").is_ok());
        assert_eq!(check_ref(&r("v1", "Password"), "f").unwrap_err().field, "f.apiVersion");
        assert!(check_ref(&r("generators.external-secrets.io/v1alpha1", "MFA"), "f").is_ok());
        assert!(check_ref(&r("generators.external-secrets.io/v1alpha1", "GithubAccessToken"), "f").is_ok());
        let e = check_ref(&r("generators.external-secrets.io/v1alpha1", "Grafana"), "f").unwrap_err();
        assert_eq!(e.field, "f.kind");
        assert!(e.message.contains("Grafana"));
    }
}
