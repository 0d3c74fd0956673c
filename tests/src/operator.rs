//! Running syncret in-process against the test control plane, scoped to one test's namespace and a controller
//! class of its own so tests never see each other's objects.
use std::time::Duration;

use kube::Client;
use syncret::runtime::{Options, Started};
use tokio_util::sync::CancellationToken;

use crate::TestNamespace;

/// A running operator; stopped (gracefully) on [`Operator::stop`] or when dropped.
pub struct Operator {
    pub started: Option<Started>,
    pub shutdown: CancellationToken,
    pub class: String,
}

impl Operator {
    /// Starts an operator watching `ns` only, with fast backoff for tests.
    pub async fn start(ns: &TestNamespace) -> anyhow::Result<Operator> {
        Self::start_with(ns.client.clone(), |o| {
            o.settings.namespace = Some(ns.name.clone());
        })
        .await
    }

    /// Starts an operator with options adjusted by `f` (from [`options`]: a unique controller class, loopback
    /// allowed by the egress policy — every provider server of the tests listens there).
    pub async fn start_with(client: Client, f: impl FnOnce(&mut Options)) -> anyhow::Result<Operator> {
        let mut opts = options();
        opts.admin_addr = Some("127.0.0.1:0".into());
        f(&mut opts);
        Self::start_registry(client, opts, syncret_providers::Registry::with_default_providers()).await
    }

    /// [`Operator::start`] with `provider` replacing the default factory of its key (e.g. one pointed at a test
    /// server).
    pub async fn start_with_provider(
        ns: &TestNamespace,
        provider: std::sync::Arc<dyn syncret_providers::Provider>,
    ) -> anyhow::Result<Operator> {
        let mut opts = options();
        opts.settings.namespace = Some(ns.name.clone());
        let mut registry = syncret_providers::Registry::with_default_providers();
        registry.register(provider);
        Self::start_registry(ns.client.clone(), opts, registry).await
    }

    /// Starts an operator with exactly these options and providers (see [`options`] for the usual base).
    pub async fn start_registry(
        client: Client,
        opts: Options,
        registry: syncret_providers::Registry,
    ) -> anyhow::Result<Operator> {
        if opts.settings.namespace.is_none() {
            crate::ensure_cluster_wide_allowed("an in-process operator without settings.namespace")?;
        }
        let class = opts.settings.controller_class.clone();
        let shutdown = CancellationToken::new();
        let started = syncret::runtime::start_with_registry(client, opts, registry, shutdown.clone()).await?;
        Ok(Operator {
            started: Some(started),
            shutdown,
            class,
        })
    }

    /// The operator's context (metrics, caches).
    pub fn ctx(&self) -> &std::sync::Arc<syncret::context::Context> {
        &self.started.as_ref().expect("running").ctx
    }

    /// The admin server's address (`/metrics`, `/readyz`).
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.started.as_ref().and_then(|s| s.admin_addr).expect("admin server")
    }

    /// Stops and waits for in-flight work.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(s) = self.started.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), s.join()).await;
        }
    }
}

/// The options every in-process test operator starts from: a controller class of its own, loopback allowed by the
/// egress policy ([`loopback_allowed`]), fast backoff (200 ms to 5 s), no client rate limit, no admin server.
pub fn options() -> Options {
    let mut opts = Options::default();
    opts.settings.tenant = std::sync::Arc::new(loopback_allowed());
    opts.settings.controller_class = crate::unique_name("class");
    opts.settings.backoff_base = Duration::from_millis(200);
    opts.settings.backoff_max = Duration::from_secs(5);
    opts.admin_addr = None;
    opts.client_qps = 0.0;
    opts
}

/// The default tenant policy, with loopback (`127.0.0.0/8`, `::1`) exempt from the egress deny list, as the
/// operator runs with `--egress-allow=127.0.0.0/8,::1` (what the test harness passes: the provider servers of the
/// tests listen on loopback). Operator identity stays off for namespaced stores, as by default.
pub fn loopback_allowed() -> syncret_providers::TenantPolicy {
    let mut egress = syncret_providers::net::egress::EgressPolicy::default();
    egress.allow =
        syncret_providers::net::egress::parse_nets(&LOOPBACK.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap_or_default();
    syncret_providers::TenantPolicy {
        egress: std::sync::Arc::new(egress),
        ..Default::default()
    }
}

/// The loopback networks, as `--egress-allow` takes them.
pub const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1/128"];

impl Drop for Operator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
