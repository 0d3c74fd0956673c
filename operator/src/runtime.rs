//! Building and starting an operator instance: Context, admin server, watches and workers. Used by the
//! `syncret run` command and, in-process, by the integration tests.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use syncret_providers::{CallObserver, ClientCache, Registry};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::admin::{self, Readiness};
use crate::context::{Context, Settings};
use crate::controller::{self, Reflectors, Running};
use crate::events::Events;
use crate::metrics::{Metrics, ProviderCallMetrics};
use crate::reads::Reads;
use crate::schedule::{RateLimiter, Scheduler};
use crate::secrets::SecretIndex;
use crate::stores::Stores;

/// Everything configurable about a running operator.
#[derive(Clone, Debug)]
pub struct Options {
    pub settings: Settings,
    /// Client-side limit on apiserver requests made by reconciles (watches are not limited).
    pub client_qps: f64,
    pub client_burst: u32,
    /// Per-store limit on provider calls (0: unlimited).
    pub store_qps: f64,
    pub store_burst: u32,
    /// How long a finished remote read may answer identical reads of other ExternalSecrets.
    pub read_coalesce_window: Duration,
    /// Authenticated clients are rebuilt after this long (credentials in referenced Secrets may rotate).
    pub client_max_age: Duration,
    /// Admin server (`/metrics`, `/healthz`, `/readyz`); `None`: not served.
    pub admin_addr: Option<String>,
    /// Reporting instance for Events (pod name).
    pub instance: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            client_qps: 50.0,
            client_burst: 100,
            store_qps: 0.0,
            store_burst: 100,
            read_coalesce_window: Duration::from_secs(2),
            client_max_age: Duration::from_secs(3600),
            admin_addr: Some(":8080".into()),
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "syncret".into()),
        }
    }
}

/// A started operator.
pub struct Started {
    pub ctx: Arc<Context>,
    pub readiness: Arc<Readiness>,
    pub admin_addr: Option<SocketAddr>,
    running: Running,
    admin: Option<tokio::task::JoinHandle<()>>,
}

impl Started {
    /// Waits until watches and workers have stopped (after `shutdown` fired) and provider clients are closed.
    pub async fn join(self) {
        self.running.join().await;
        if let Some(a) = self.admin {
            let _ = a.await;
        }
    }
}

/// Builds the Context and starts the admin server, watches and workers.
pub async fn start(client: kube::Client, opts: Options, shutdown: CancellationToken) -> Result<Started, Error> {
    start_with_registry(client, opts, Registry::with_default_providers(), shutdown).await
}

/// [`start`] with a chosen provider registry (tests add instrumented providers).
pub async fn start_with_registry(
    client: kube::Client,
    opts: Options,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<Started, Error> {
    let metrics = Arc::new(Metrics::new().map_err(Error::Metrics)?);
    let readiness = Arc::new(Readiness::default());
    let observer: Arc<dyn CallObserver> = Arc::new(ProviderCallMetrics::new(&metrics));
    let api_limiter = Arc::new(RateLimiter::new(opts.client_qps, opts.client_burst));
    let events = Events::start(client.clone(), "syncret", opts.instance.clone(), api_limiter.clone());
    let refl = Reflectors::default();
    let stores = Stores {
        secret_stores: refl.ss.0.clone(),
        cluster_secret_stores: refl.css.0.clone(),
        namespaces: refl.ns.0.clone(),
        controller_class: opts.settings.controller_class.clone(),
        flood_gate: opts.settings.enable_flood_gate,
        cluster_stores_enabled: opts.settings.enable_cluster_stores,
    };
    let reads = Reads::new(
        client.clone(),
        registry,
        ClientCache::new(opts.client_max_age),
        observer,
        metrics.clone(),
        opts.read_coalesce_window,
        (opts.store_qps, opts.store_burst),
    );
    let (push, push_writers) = controller::pushsecret::PushState::new();
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings: opts.settings.clone(),
        metrics: metrics.clone(),
        events,
        api_limiter,
        stores,
        external_secrets: refl.es.0.clone(),
        cluster_external_secrets: refl.ces.0.clone(),
        reads,
        secrets: SecretIndex::default(),
        es_queue: Scheduler::new(),
        store_queue: Scheduler::new(),
        ces_queue: Scheduler::new(),
        written_status: Default::default(),
        lease_due: Default::default(),
        push,
    });
    let (admin, admin_addr) = match &opts.admin_addr {
        Some(addr) => {
            let listener = admin::bind(addr).await.map_err(|e| Error::Bind(addr.clone(), e))?;
            let local = listener.local_addr().ok();
            let task = tokio::spawn(admin::serve(listener, metrics, readiness.clone(), shutdown.clone()));
            (Some(task), local)
        }
        None => (None, None),
    };
    let running = controller::start(
        ctx.clone(),
        controller::Writers {
            es: refl.es.1,
            ss: refl.ss.1,
            css: refl.css.1,
            ns: refl.ns.1,
            ces: refl.ces.1,
            push: push_writers,
        },
        readiness.clone(),
        shutdown,
    );
    Ok(Started {
        ctx,
        readiness,
        admin_addr,
        running,
        admin,
    })
}
