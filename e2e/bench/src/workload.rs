//! The objects of a run: namespaces, stores, ExternalSecrets, the remote values they read and the Secrets
//! they must produce, and the Secrets the direct-write client creates instead. Everything is derived from
//! indices, so expected data never has to be stored.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta};
use serde_json::{Value, json};

/// Label on everything the bench creates (its run id), so cleanup and watches find exactly that.
pub const RUN_LABEL: &str = "bench.syncret.dev/run";
/// Label naming the set (scenario) an ExternalSecret or direct-write Secret belongs to.
pub const SET_LABEL: &str = "bench.syncret.dev/set";
pub const MANAGED_LABEL: &str = "reconcile.external-secrets.io/managed";
pub const DATA_HASH_ANNOTATION: &str = "reconcile.external-secrets.io/data-hash";
/// Data key of every target Secret.
pub const DATA_KEY: &str = "value";

pub fn es_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("external-secrets.io", "v1", "ExternalSecret"),
        "externalsecrets",
    )
}

pub fn ss_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("external-secrets.io", "v1", "SecretStore"),
        "secretstores",
    )
}

pub fn css_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("external-secrets.io", "v1", "ClusterSecretStore"),
        "clustersecretstores",
    )
}

/// Which provider the store uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ProviderKind {
    /// `spec.provider.fake`: values in the store spec (no remote calls).
    Fake,
    /// `spec.provider.kubernetes`: Secrets of a namespace of this same apiserver (one GET each).
    Kubernetes,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Fake => "fake",
            ProviderKind::Kubernetes => "kubernetes",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s {
            "fake" => Some(ProviderKind::Fake),
            "kubernetes" | "k8s" => Some(ProviderKind::Kubernetes),
            _ => None,
        }
    }
}

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct Layout {
    pub run: String,
    pub n: usize,
    pub namespaces: usize,
    pub value_size: usize,
    /// Distinct keys in the fake store (its spec must fit an etcd request).
    pub fake_keys: usize,
    /// Distinct source Secrets for the kubernetes provider.
    pub source_keys: usize,
}

impl Layout {
    pub fn namespace(&self, i: usize) -> String {
        format!("bench-{}-{:03}", self.run, i % self.namespaces.max(1))
    }

    pub fn namespaces(&self) -> Vec<String> {
        (0..self.namespaces.max(1)).map(|i| self.namespace(i)).collect()
    }

    /// Where sharded replicas keep their Leases (`--replicas`).
    pub fn lease_namespace(&self) -> String {
        format!("bench-{}-leases", self.run)
    }

    /// Where the kubernetes provider reads from.
    pub fn source_namespace(&self) -> String {
        format!("bench-{}-src", self.run)
    }

    /// Where ExternalSecrets created during a refresh wave live.
    pub fn new_namespace(&self) -> String {
        format!("bench-{}-new", self.run)
    }

    /// Where the hostile tenant's ExternalSecrets on a hung store live (`--hung`).
    pub fn hung_namespace(&self) -> String {
        format!("bench-{}-hung", self.run)
    }

    pub fn key_index(&self, provider: ProviderKind, i: usize) -> usize {
        match provider {
            ProviderKind::Fake => i % self.fake_keys.max(1),
            ProviderKind::Kubernetes => i % self.source_keys.max(1),
        }
    }

    /// The remote value number `j` (printable, `value_size` bytes).
    pub fn value(&self, j: usize) -> String {
        let head = format!("v{j:07}-");
        let mut s = String::with_capacity(self.value_size.max(head.len()));
        s.push_str(&head);
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut x = (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        while s.len() < self.value_size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
        }
        s
    }

    /// The value ExternalSecret `i` must deliver.
    pub fn expected(&self, provider: ProviderKind, i: usize) -> String {
        self.value(self.key_index(provider, i))
    }
}

/// A named set of objects (one scenario's ExternalSecrets, or the direct-write Secrets).
#[derive(Clone, Debug)]
pub struct Set {
    pub tag: String,
    pub provider: ProviderKind,
    pub n: usize,
    /// All in this namespace; otherwise spread over the layout's namespaces.
    pub namespace: Option<String>,
}

impl Set {
    pub fn namespace(&self, l: &Layout, i: usize) -> String {
        self.namespace.clone().unwrap_or_else(|| l.namespace(i))
    }

    pub fn name(&self, i: usize) -> String {
        format!("{}-{i:05}", self.tag)
    }

    /// The index of an object of this set by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        name.strip_prefix(&self.tag)?.strip_prefix('-')?.parse().ok()
    }
}

pub fn store_name(run: &str, tag: &str) -> String {
    format!("bench-{run}-{tag}")
}

/// A ClusterSecretStore with the fake provider holding `fake_keys` values.
pub fn fake_store(l: &Layout, name: &str, class: &str) -> Value {
    let data: Vec<Value> = (0..l.fake_keys.max(1))
        .map(|j| json!({"key": format!("key-{j:05}"), "value": l.value(j)}))
        .collect();
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": name, "labels": {RUN_LABEL: l.run}},
        "spec": {"controller": class, "provider": {"fake": {"data": data}}},
    })
}

/// A ClusterSecretStore with the kubernetes provider reading the source namespace of this apiserver with a
/// bearer token kept in a Secret there.
pub fn kubernetes_store(l: &Layout, name: &str, class: &str, server: &str, ca_pem: &[u8]) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": name, "labels": {RUN_LABEL: l.run}},
        "spec": {"controller": class, "provider": {"kubernetes": {
            "remoteNamespace": l.source_namespace(),
            "server": {"url": server, "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem)},
            "auth": {"token": {"bearerToken": {"name": "bench-token", "namespace": l.source_namespace(), "key": "token"}}},
        }}},
    })
}

/// Source Secret `j` for the kubernetes provider.
pub fn source_secret(l: &Layout, j: usize) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(format!("src-{j:05}")),
            namespace: Some(l.source_namespace()),
            labels: Some([(RUN_LABEL.to_string(), l.run.clone())].into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            DATA_KEY.to_string(),
            ByteString(l.value(j).into_bytes()),
        )])),
        ..Default::default()
    }
}

/// A hostile tenant's SecretStore (webhook) in `namespace` whose server (`origin`, the bench's own listener)
/// accepts connections and never answers.
pub fn hung_store(l: &Layout, namespace: &str, class: &str, origin: &str) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "hung", "namespace": namespace, "labels": {RUN_LABEL: l.run}},
        "spec": {"controller": class, "provider": {"webhook": {
            "url": format!("{origin}/{{{{ .remoteRef.key }}}}"),
            "result": {"jsonPath": "$.value"},
        }}},
    })
}

/// ExternalSecret `i` of the hung set: reads key `k<i>` of the hung store every `refresh`.
pub fn hung_external_secret(l: &Layout, tag: &str, i: usize, namespace: &str, refresh: Duration) -> DynamicObject {
    let name = format!("{tag}-{i:05}");
    let mut o = DynamicObject::new(&name, &es_resource()).within(namespace);
    o.metadata.labels = Some(
        [
            (RUN_LABEL.to_string(), l.run.clone()),
            (SET_LABEL.to_string(), tag.to_string()),
        ]
        .into(),
    );
    o.data = json!({"spec": {
        "refreshInterval": format!("{}s", refresh.as_secs().max(1)),
        "secretStoreRef": {"kind": "SecretStore", "name": "hung"},
        "target": {"name": name},
        "data": [{"secretKey": DATA_KEY, "remoteRef": {"key": format!("k{i}")}}],
    }});
    o
}

/// ExternalSecret `i` of `set`, in `namespace`, reading from store `store`.
pub fn external_secret(
    l: &Layout,
    set: &Set,
    i: usize,
    namespace: &str,
    store: &str,
    refresh: Duration,
) -> DynamicObject {
    let j = l.key_index(set.provider, i);
    let remote_ref = match set.provider {
        ProviderKind::Fake => json!({"key": format!("key-{j:05}")}),
        ProviderKind::Kubernetes => json!({"key": format!("src-{j:05}"), "property": DATA_KEY}),
    };
    let name = set.name(i);
    let mut o = DynamicObject::new(&name, &es_resource()).within(namespace);
    o.metadata.labels = Some(
        [
            (RUN_LABEL.to_string(), l.run.clone()),
            (SET_LABEL.to_string(), set.tag.clone()),
        ]
        .into(),
    );
    o.data = json!({"spec": {
        "refreshInterval": format!("{}s", refresh.as_secs().max(1)),
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": store},
        "target": {"name": name},
        "data": [{"secretKey": DATA_KEY, "remoteRef": remote_ref}],
    }});
    o
}

/// What the direct-write client creates for index `i`: a Secret of the same size and shape as a synced target
/// (same data, the managed label, a data-hash annotation of the same length).
pub fn direct_secret(l: &Layout, set: &Set, i: usize) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(set.name(i)),
            namespace: Some(set.namespace(l, i)),
            labels: Some(
                [
                    (RUN_LABEL.to_string(), l.run.clone()),
                    (SET_LABEL.to_string(), set.tag.clone()),
                    (MANAGED_LABEL.to_string(), "true".to_string()),
                ]
                .into(),
            ),
            annotations: Some([(DATA_HASH_ANNOTATION.to_string(), format!("{:056x}", i))].into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            DATA_KEY.to_string(),
            ByteString(l.expected(set.provider, i).into_bytes()),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// The status an operator writes on success (what the floor measurement writes with a plain client).
pub fn ready_status(target: &str) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({"status": {
        "refreshTime": now,
        "syncedResourceVersion": format!("1-{:056x}", 0),
        "binding": {"name": target},
        "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "secret synced", "lastTransitionTime": now}],
    }})
}

/// An async token bucket (QPS with burst), the client-side budget of the direct-write client. Unlimited when
/// `qps <= 0`.
pub struct Limiter {
    bucket: Option<std::sync::Mutex<(f64, Instant)>>,
    qps: f64,
    burst: f64,
}

impl Limiter {
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            bucket: (qps > 0.0).then(|| std::sync::Mutex::new((burst, Instant::now()))),
            qps,
            burst,
        }
    }

    pub async fn acquire(&self) {
        let Some(b) = &self.bucket else { return };
        loop {
            let wait = {
                let mut g = b.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                g.0 = (g.0 + now.duration_since(g.1).as_secs_f64() * self.qps).min(self.burst);
                g.1 = now;
                if g.0 >= 1.0 {
                    g.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - g.0) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_sized_and_distinct() {
        let l = Layout {
            run: "r".into(),
            n: 10,
            namespaces: 3,
            value_size: 64,
            fake_keys: 4,
            source_keys: 10,
        };
        assert_eq!(l.value(3).len(), 64);
        assert_ne!(l.value(3), l.value(4));
        assert_eq!(l.expected(ProviderKind::Fake, 7), l.value(3));
        assert_eq!(l.expected(ProviderKind::Kubernetes, 7), l.value(7));
        assert_eq!(l.namespace(4), "bench-r-001");
        let s = Set {
            tag: "af".into(),
            provider: ProviderKind::Fake,
            n: 10,
            namespace: None,
        };
        assert_eq!(s.index_of(&s.name(42)), Some(42));
        assert_eq!(s.index_of("bf-00001"), None);
    }

    #[tokio::test]
    async fn limiter_holds_the_rate() {
        let lim = Limiter::new(100.0, 5);
        let t = Instant::now();
        for _ in 0..15 {
            lim.acquire().await;
        }
        // 5 from the burst, 10 more at 100/s.
        assert!(t.elapsed() >= Duration::from_millis(90), "{:?}", t.elapsed());
    }
}
