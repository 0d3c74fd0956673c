//! A tenant cannot stop syncret (issue 22), in-process, with a provider that misbehaves the way no real server
//! can make it: it panics (a bug: caught, reported on the object, counted, retried, and the workers go on), or it
//! blocks its thread (no deadline can stop that: `/healthz` fails, so the kubelet restarts the pod). Hostile
//! servers (rate limits, hangs) against the operator as a real process are in `reliability_process.rs`.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::{
    FindQuery, Provider, ProviderContext, PushRef, RemoteKey, RemoteValue, SecretValue, SecretsClient, StoreInfo,
    Validation,
};
use syncret_tests::http::scrape;
use syncret_tests::operator::Operator;
use syncret_tests::{ControlPlane, apply_yaml, eventually};

use crate::common::{canary_follows, canary_store, fake_store, reader, secret_value, secret_value_of, wait_es};

const WAIT: Duration = Duration::from_secs(60);

/// The sum of a counter over all its label sets, from the operator's `/metrics`.
async fn counter(op: &Operator, name: &str) -> anyhow::Result<f64> {
    let s = scrape(op.admin_addr()).await?;
    Ok(s.find(name, &[]).map(|x| x.value).sum())
}

/// The fake provider, but a key starting with `panic` panics (a provider bug), and a store holding the key
/// `block-validate` blocks its thread for 20 s when validated (a call that never yields, so no deadline can stop
/// it; store validation runs on the store controller's workers).
struct Misbehaving {
    inner: Arc<syncret_providers::fake::Fake>,
    panics: Arc<AtomicUsize>,
}

struct MisbehavingClient {
    inner: Arc<dyn SecretsClient>,
    panics: Arc<AtomicUsize>,
    block_validate: bool,
}

#[async_trait]
impl Provider for Misbehaving {
    fn key(&self) -> &'static str {
        "fake"
    }

    async fn new_client(
        &self,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> syncret_providers::Result<Arc<dyn SecretsClient>> {
        let block_validate = store
            .spec
            .provider
            .fake
            .as_ref()
            .is_some_and(|f| f.data.iter().any(|d| d.key == "block-validate"));
        Ok(Arc::new(MisbehavingClient {
            inner: self.inner.new_client(store, ctx).await?,
            panics: self.panics.clone(),
            block_validate,
        }))
    }
}

#[async_trait]
impl SecretsClient for MisbehavingClient {
    fn provider_label(&self) -> &'static str {
        "Fake"
    }

    async fn get_secret(&self, key: &RemoteKey) -> syncret_providers::Result<RemoteValue> {
        if key.key.starts_with("panic") {
            self.panics.fetch_add(1, Ordering::SeqCst);
            panic!("a provider bug reached by key {}", key.key);
        }
        self.inner.get_secret(key).await
    }

    async fn get_all_secrets(
        &self,
        find: &FindQuery,
    ) -> syncret_providers::Result<std::collections::BTreeMap<String, SecretValue>> {
        self.inner.get_all_secrets(find).await
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> syncret_providers::Result<()> {
        self.inner.push_secret(to, value).await
    }

    async fn validate(&self) -> syncret_providers::Result<Validation> {
        if self.block_validate {
            std::thread::sleep(Duration::from_secs(20));
        }
        self.inner.validate().await
    }
}

async fn misbehaving_operator(
    client: kube::Client,
    f: impl FnOnce(&mut syncret::runtime::Options),
) -> anyhow::Result<(Operator, Arc<AtomicUsize>)> {
    let panics = Arc::new(AtomicUsize::new(0));
    let mut registry = syncret_providers::Registry::with_default_providers();
    registry.register(Arc::new(Misbehaving {
        inner: Arc::new(syncret_providers::fake::Fake::default()),
        panics: panics.clone(),
    }));
    let mut opts = syncret_tests::operator::options();
    opts.settings.backoff_max = Duration::from_secs(2);
    opts.settings.namespace = None;
    opts.admin_addr = Some("127.0.0.1:0".into());
    f(&mut opts);
    Ok((Operator::start_registry(client, opts, registry).await?, panics))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_reconcile_is_caught_reported_retried_and_the_workers_go_on() -> anyhow::Result<()> {
    crate::common::init();
    let cp = ControlPlane::shared().await?;
    let hostile = cp.namespace("rt-panic").await?;
    let canary = cp.namespace("rt-panic-canary").await?;
    let (op, panics) = misbehaving_operator(hostile.client.clone(), |_| {}).await?;
    let class = op.class.clone();
    apply_yaml(
        &hostile.api::<SecretStore>(),
        &fake_store("buggy", &class, &[("panic-now".into(), "x".into())]),
    )
    .await?;
    let ess = hostile.api::<ExternalSecret>();
    // More panicking ExternalSecrets than workers (4): every worker panics, none is lost.
    for i in 0..6 {
        apply_yaml(&ess, &reader(&format!("buggy-{i}"), "buggy", "panic-now", "1h")).await?;
    }
    let (_, reason, message) = wait_es(&ess, "buggy-0", WAIT, "the panic reported", |s, r, _| {
        s == "False" && r == "InternalError"
    })
    .await?;
    assert!(message.contains("panicked"), "{message}");
    eventually(WAIT, "every buggy ExternalSecret to panic and be retried", || async {
        (panics.load(Ordering::SeqCst) >= 12).then_some(())
    })
    .await?;
    eprintln!("{reason}: {message}");
    // The workers go on: the canary syncs and follows its store.
    let v0 = secret_value("canary");
    canary_store(&canary, &class, &v0).await?;
    apply_yaml(&canary.api::<ExternalSecret>(), &reader("canary", "canary", "k", "1h")).await?;
    let secrets = canary.api::<Secret>();
    eventually(WAIT, "the canary to sync", || async {
        (secret_value_of(&secrets, "canary").await.as_deref() == Some(v0.as_str())).then_some(())
    })
    .await?;
    let took = canary_follows(&canary, &class, &secret_value("canary1")).await?;
    assert!(took < Duration::from_secs(10), "{took:?}");
    let counted = counter(&op, "syncret_reconcile_panics_total").await?;
    assert!(counted >= 12.0, "panics counted: {counted}");
    let errors = scrape(op.admin_addr())
        .await?
        .value("syncret_sync_errors_total", &[("reason", "InternalError")])
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "{errors}");
    op.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wedged_workers_fail_healthz() -> anyhow::Result<()> {
    crate::common::init();
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("rt-wedge").await?;
    let (op, _) = misbehaving_operator(ns.client.clone(), |o| {
        o.settings.namespace = Some(ns.name.clone());
        o.settings.concurrent = 1;
        o.settings.reconcile_timeout = Duration::from_secs(2);
    })
    .await?;
    let class = op.class.clone();
    let addr = op.admin_addr();
    let (code, _) = syncret_tests::http::get(addr, "/healthz").await?;
    assert_eq!(code, 200);
    // The store's validation blocks its worker's thread: the store controller has work in flight and finishes
    // nothing for twice the deadline: unhealthy.
    apply_yaml(
        &ns.api::<SecretStore>(),
        &fake_store("s", &class, &[("block-validate".into(), "x".into())]),
    )
    .await?;
    let body = eventually(Duration::from_secs(20), "/healthz to fail", || async {
        let (code, body) = syncret_tests::http::get(addr, "/healthz").await.ok()?;
        (code == 503).then_some(body)
    })
    .await?;
    assert!(body.contains("secretstore"), "{body}");
    // The block ends (20 s), the deadline stops that reconcile: progress, healthy again.
    eventually(WAIT, "/healthz to recover", || async {
        let (code, _) = syncret_tests::http::get(addr, "/healthz").await.ok()?;
        (code == 200).then_some(())
    })
    .await?;
    op.stop().await;
    Ok(())
}
