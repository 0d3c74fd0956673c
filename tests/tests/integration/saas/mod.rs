//! Test servers for the SaaS providers (1Password Connect, Doppler, Infisical, the Bitwarden SDK server, GitLab)
//! and the harness their tests share. None of these services ships a server installable from the registries this
//! machine reaches, so each is a small stateful server speaking the service's published HTTP API on loopback (its
//! doc comment lists the API version and endpoints); [`server::Server`] records every request so tests count
//! calls, and can fail like the real service (an outage, rate limiting).
#![allow(dead_code)] // each provider's tests use part of the harness

pub mod bitwarden;
pub mod doppler;
pub mod gitlab;
pub mod infisical;
pub mod onepassword;
pub mod server;

#[path = "../../provider_webhook/server.rs"]
mod webhook_server;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use syncret_crds::{ClusterSecretStore, ExternalSecret, PushSecret, SecretStore};
use syncret_providers::{CallObserver, ProviderContext, Registry, SecretsClient, StoreInfo, StoreScope};
use syncret_tests::operator::Operator;
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml, eventually};

/// A CA and a server certificate for `127.0.0.1` (openssl), for the HTTPS servers.
pub use webhook_server::TestPki;

pub const WAIT: Duration = Duration::from_secs(60);
/// The read-sharing window of the read tests' operators: ExternalSecrets created within it share a read.
pub const SHARE_WINDOW: Duration = Duration::from_secs(5);

/// One test's namespace and operator.
pub struct World {
    pub ns: TestNamespace,
    pub op: Operator,
}

impl World {
    /// A namespace and an operator watching it with `registry` and reads shared for `window`.
    pub async fn new(prefix: &str, registry: Registry, window: Duration) -> anyhow::Result<World> {
        let cp = ControlPlane::shared().await?;
        let ns = cp.namespace(prefix).await?;
        let op = operator(&ns, registry, window).await?;
        Ok(World { ns, op })
    }

    pub fn class(&self) -> &str {
        &self.op.class
    }

    /// A Secret with these string values.
    pub async fn secret(&self, name: &str, pairs: &[(&str, &str)]) -> anyhow::Result<()> {
        let data: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        apply_yaml(
            &self.ns.api::<Secret>(),
            &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data})
                .to_string(),
        )
        .await?;
        Ok(())
    }

    /// A SecretStore of this operator's class with `provider` under `key`.
    pub async fn store(&self, name: &str, key: &str, provider: serde_json::Value) -> anyhow::Result<()> {
        apply_yaml(
            &self.ns.api::<SecretStore>(),
            &serde_json::json!({
                "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
                "spec": {"controller": self.class(), "provider": {key: provider}},
            })
            .to_string(),
        )
        .await?;
        Ok(())
    }

    /// An ExternalSecret; `spec` is YAML indented by two spaces.
    pub async fn external_secret(&self, name: &str, spec: &str) -> anyhow::Result<()> {
        self.object::<ExternalSecret>("v1", "ExternalSecret", name, spec).await
    }

    /// A PushSecret; `spec` is YAML indented by two spaces.
    pub async fn push_secret(&self, name: &str, spec: &str) -> anyhow::Result<()> {
        self.object::<PushSecret>("v1alpha1", "PushSecret", name, spec).await
    }

    async fn object<K>(&self, version: &str, kind: &str, name: &str, spec: &str) -> anyhow::Result<()>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        apply_yaml(
            &self.ns.api::<K>(),
            &format!(
                "apiVersion: external-secrets.io/{version}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{spec}"
            ),
        )
        .await?;
        Ok(())
    }

    /// The store's Ready condition once it has `status`: (reason, message).
    pub async fn store_condition(&self, name: &str, status: &str) -> anyhow::Result<(String, String)> {
        let stores: Api<SecretStore> = self.ns.api();
        eventually(WAIT, &format!("store {name} Ready={status}"), || async {
            let c = stores
                .get(name)
                .await
                .ok()?
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.status == status)?;
            Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
        })
        .await
    }

    /// The ExternalSecret's Ready condition once it has `status` and a message containing `needle`.
    pub async fn es_condition(&self, name: &str, status: &str, needle: &str) -> anyhow::Result<(String, String)> {
        let ess: Api<ExternalSecret> = self.ns.api();
        eventually(
            WAIT,
            &format!("ExternalSecret {name} Ready={status} with {needle:?}"),
            || async {
                let c = ess.get(name).await.ok()?.status?.conditions.into_iter().find(|c| {
                    c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready && c.status == status
                })?;
                let message = c.message.unwrap_or_default();
                message
                    .contains(needle)
                    .then(|| (c.reason.unwrap_or_default(), message))
            },
        )
        .await
    }

    /// The PushSecret's Ready condition once it has `status`: (reason, message).
    pub async fn ps_condition(&self, name: &str, status: &str) -> anyhow::Result<(String, String)> {
        let api: Api<PushSecret> = self.ns.api();
        eventually(WAIT, &format!("PushSecret {name} Ready={status}"), || async {
            let c = api
                .get(name)
                .await
                .ok()?
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            (c.status == status).then(|| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
        })
        .await
    }

    /// Secret `name`'s data as text, once it exists and `pred` holds for it.
    pub async fn data_where(
        &self,
        name: &str,
        pred: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let api: Api<Secret> = self.ns.api();
        eventually(WAIT, &format!("Secret {name}"), || async {
            let s = api.get_opt(name).await.ok()??;
            let data = text(&s);
            pred(&data).then_some(data)
        })
        .await
    }

    pub async fn data(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        self.data_where(name, |_| true).await
    }

    /// Sets the `force-sync` annotation to `value`: the ExternalSecret reads again now.
    pub async fn force_sync(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let patch = serde_json::json!({"metadata": {"annotations": {"force-sync": value}}});
        self.ns
            .api::<ExternalSecret>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Creates ExternalSecrets `share-0` to `share-3` over one remote key of `store` (`entries(i)`: the
    /// `data`/`dataFrom` lines of the i-th, indented by two spaces) and waits for their Secrets; returns by how much
    /// `reads` (the server's count of reads of that key) grew meanwhile.
    pub async fn share(
        &self,
        store: &str,
        entries: impl Fn(usize) -> String,
        reads: impl Fn() -> usize,
    ) -> anyhow::Result<usize> {
        let before = reads();
        for i in 0..4 {
            let spec = format!(
                "  refreshInterval: 1h\n  secretStoreRef: {{name: {store}}}\n{}",
                entries(i)
            );
            self.external_secret(&format!("share-{i}"), &spec).await?;
        }
        for i in 0..4 {
            self.data(&format!("share-{i}")).await?;
        }
        Ok(reads() - before)
    }

    /// An outage: `es` (whose target is named after it) refreshes while `srv` answers 503 to everything: its
    /// condition says so and its Secret keeps `data`; once the server is back it syncs again. Returns the failed
    /// condition's message.
    pub async fn outage(
        &self,
        srv: &server::Server,
        es: &str,
        data: &BTreeMap<String, String>,
    ) -> anyhow::Result<String> {
        // Past the window in which an earlier read of the same keys would answer this refresh.
        tokio::time::sleep(SHARE_WINDOW + Duration::from_secs(1)).await;
        srv.outage(true);
        self.force_sync(es, "outage").await?;
        let (_, message) = self.es_condition(es, "False", "503").await?;
        assert_eq!(self.data(es).await?, *data, "the Secret is intact");
        srv.outage(false);
        self.force_sync(es, "recovered").await?;
        self.es_condition(es, "True", "").await?;
        Ok(message)
    }

    /// An ExternalSecret `app` reading `key` through the refused `store` fails too, and nothing syncret wrote about
    /// the namespace's objects quotes `credential`.
    pub async fn refused(&self, store: &str, key: &str, credential: &str) -> anyhow::Result<()> {
        let spec = format!(
            "  refreshInterval: 1h\n  secretStoreRef: {{name: {store}}}\n  data:\n  - {{secretKey: p, remoteRef: {{key: {key}}}}}\n"
        );
        self.external_secret("app", &spec).await?;
        self.es_condition("app", "False", "").await?;
        assert!(!self.written_text().await?.contains(credential));
        Ok(())
    }

    /// Everything syncret wrote about the namespace's objects (statuses and Events), to check no value leaked.
    pub async fn written_text(&self) -> anyhow::Result<String> {
        let mut out = String::new();
        for s in self.ns.api::<SecretStore>().list(&ListParams::default()).await? {
            out.push_str(&serde_json::to_string(&s.status)?);
        }
        for es in self.ns.api::<ExternalSecret>().list(&ListParams::default()).await? {
            out.push_str(&serde_json::to_string(&es.status)?);
        }
        for ps in self.ns.api::<PushSecret>().list(&ListParams::default()).await? {
            out.push_str(&serde_json::to_string(&ps.status)?);
        }
        for ev in self.ns.api::<Event>().list(&ListParams::default()).await? {
            out.push_str(ev.message.as_deref().unwrap_or_default());
            out.push('\n');
        }
        Ok(out)
    }
}

/// Secret data as text.
pub fn text(s: &Secret) -> BTreeMap<String, String> {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// An in-process operator for `ns` with `registry`, fast backoff, and reads shared for `window`.
pub async fn operator(ns: &TestNamespace, registry: Registry, window: Duration) -> anyhow::Result<Operator> {
    let mut opts = syncret::runtime::Options::default();
    opts.settings.controller_class = syncret_tests::unique_name("class");
    opts.settings.namespace = Some(ns.name.clone());
    opts.settings.backoff_base = Duration::from_millis(200);
    opts.settings.backoff_max = Duration::from_secs(3);
    opts.admin_addr = None;
    opts.client_qps = 0.0;
    opts.read_coalesce_window = window;
    let class = opts.settings.controller_class.clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = syncret::runtime::start_with_registry(ns.client.clone(), opts, registry, shutdown.clone()).await?;
    Ok(Operator {
        started: Some(started),
        shutdown,
        class,
    })
}

/// Counts provider calls by `(provider, call)`.
#[derive(Default)]
pub struct Calls(Mutex<BTreeMap<(String, String), usize>>);

impl CallObserver for Calls {
    fn observe(&self, provider: &'static str, call: &'static str, _ok: bool, _elapsed: Duration) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((provider.into(), call.into()))
            .or_default() += 1;
    }
}

/// A client of `provider` for a SecretStore in `ns` with `spec` (a `spec.provider` object), without an
/// operator: for push and throttling tests at the client level.
pub async fn client(
    provider: &dyn syncret_providers::Provider,
    ns: &TestNamespace,
    spec: serde_json::Value,
) -> Result<Arc<dyn SecretsClient>, syncret_providers::ProviderError> {
    let info = StoreInfo {
        scope: StoreScope::SecretStore,
        name: "store".into(),
        namespace: Some(ns.name.clone()),
        uid: "uid".into(),
        generation: 1,
        spec: Arc::new(serde_json::from_value(serde_json::json!({"provider": spec})).expect("a store spec")),
    };
    let ctx = ProviderContext {
        client: ns.client.clone(),
        observer: Arc::new(Calls::default()),
        referent_namespace: None,
        templates: None,
        policy: Arc::new(syncret_tests::operator::loopback_allowed()),
    };
    provider.new_client(&info, &ctx).await
}

/// Applies a ClusterSecretStore (cluster-scoped) of `class`.
pub async fn cluster_store(
    client: &kube::Client,
    name: &str,
    class: &str,
    key: &str,
    provider: serde_json::Value,
) -> anyhow::Result<()> {
    apply_yaml(
        &Api::<ClusterSecretStore>::all(client.clone()),
        &serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": name},
            "spec": {"controller": class, "provider": {key: provider}},
        })
        .to_string(),
    )
    .await?;
    Ok(())
}
