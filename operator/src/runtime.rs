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
use crate::leader::{self, ElectionHandle, Leadership, LeaseConfig};
use crate::metrics::{Metrics, ProviderCallMetrics};
use crate::reads::Reads;
use crate::schedule::{Limit, RateLimiter, Scheduler, StoreGate};
use crate::secrets::SecretIndex;
use crate::shard::coordinator::{ShardConfig, ShardHandle};
use crate::shard::{Ownership, fence};
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
    /// A second listener for `/healthz` and `/readyz` (`--live-addr`); `None` or equal to `admin_addr`: none.
    pub live_addr: Option<String>,
    /// Leader election on a Lease; `None`: this instance always leads. With `shards` > 0 it names the Leases of
    /// sharding and their timings instead, and no replica-wide leader is elected.
    pub leader_election: Option<LeaseConfig>,
    /// `--shards`: split the namespaces into this many shards held by the replicas through Leases
    /// ([`crate::shard`]); 0: not sharded.
    pub shards: u32,
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
            live_addr: None,
            leader_election: None,
            shards: 0,
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "syncret".into()),
        }
    }
}

/// A started operator.
pub struct Started {
    pub ctx: Arc<Context>,
    pub readiness: Arc<Readiness>,
    pub admin_addr: Option<SocketAddr>,
    /// Address of the `--live-addr` listener, when it is served separately.
    pub live_addr: Option<SocketAddr>,
    /// Whether this instance leads (always, without leader election).
    pub leadership: Leadership,
    running: Running,
    admin: Vec<tokio::task::JoinHandle<()>>,
    election: Option<ElectionHandle>,
    sharding: Option<ShardHandle>,
}

impl Started {
    /// Waits until watches and workers have stopped (after `shutdown` fired, or leadership was lost) and provider
    /// clients are closed; then releases the Lease, if held, so another replica takes over at once.
    pub async fn join(self) {
        self.running.join().await;
        if let Some(e) = self.election {
            e.release().await;
        }
        if let Some(s) = self.sharding {
            s.release().await;
        }
        for a in self.admin {
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
    let liveness = Arc::new(crate::controller::kit::Liveness::default());
    let observer: Arc<dyn CallObserver> = Arc::new(ProviderCallMetrics::new(&metrics));
    let api_limiter = Arc::new(RateLimiter::new(opts.client_qps, opts.client_burst));
    // Events get a bucket of their own of the same size, as in ESO: controller-runtime's event recorder uses its
    // own clientset, and client-go gives every clientset its own token bucket. Events are published in the
    // background; sharing the reconcilers' bucket made every sync pay for its event with a status or Secret
    // write's token.
    let event_limiter = Arc::new(RateLimiter::new(opts.client_qps, opts.client_burst));
    let events = Events::start(client.clone(), "syncret", opts.instance.clone(), event_limiter);
    let refl = Reflectors::default();
    let stores = Stores {
        secret_stores: refl.ss.0.clone(),
        cluster_secret_stores: refl.css.0.clone(),
        namespaces: refl.ns.0.clone(),
        controller_class: opts.settings.controller_class.clone(),
        flood_gate: opts.settings.enable_flood_gate,
        cluster_stores_enabled: opts.settings.enable_cluster_stores,
        specs: Default::default(),
        max_timeout: opts.settings.reconcile_timeout,
    };
    let reads = Reads::new(
        client.clone(),
        registry,
        ClientCache::new(opts.client_max_age),
        observer,
        metrics.clone(),
        opts.read_coalesce_window,
        (opts.store_qps, opts.store_burst),
        opts.settings.tenant.clone(),
    );
    let (push, push_writers) = controller::pushsecret::PushState::new(&opts.settings);
    // Sharding: the Leases' names and timings come from the leader-election settings, defaulted like them.
    let sharding = match (opts.shards, &opts.leader_election) {
        (0, _) => None,
        (_, None) => {
            return Err(Error::Config(
                "--shards needs the lease settings (--leader-election-id and friends)".into(),
            ));
        }
        (n, Some(cfg)) => {
            let mut lease = cfg.clone();
            if lease.namespace.is_empty() {
                lease.namespace = client.default_namespace().to_string();
            }
            let cfg = ShardConfig { lease, shards: n };
            cfg.validate().map_err(|e| Error::Config(e.to_string()))?;
            Some(cfg)
        }
    };
    let shards = Arc::new(match &sharding {
        Some(cfg) => Ownership::sharded(cfg.shards),
        None => Ownership::unsharded(),
    });
    // With sharding every write passes the fence: namespaced work needs its shard, cluster-wide work the
    // cluster unit. Provider credentials (reads, TokenRequests) and Events use the plain client.
    let (fenced, cluster_client) = match &sharding {
        Some(cfg) => (
            fence::client(
                client.clone(),
                shards.clone(),
                fence::Scope::Namespace,
                &cfg.lease.identity,
            ),
            fence::client(
                client.clone(),
                shards.clone(),
                fence::Scope::Cluster,
                &cfg.lease.identity,
            ),
        ),
        None => (client.clone(), client.clone()),
    };
    let (generator_states, gs_writer) = controller::generatorstate::GeneratorStates::new(&opts.settings);
    let ctx = Arc::new(Context {
        client: fenced,
        cluster_client,
        shards: shards.clone(),
        settings: opts.settings.clone(),
        metrics: metrics.clone(),
        events,
        api_limiter,
        secret_limiter: Arc::new(RateLimiter::new(opts.client_qps, opts.client_burst)),
        stores,
        external_secrets: Default::default(),
        cluster_external_secrets: refl.ces.0.clone(),
        reads,
        secrets: SecretIndex::default(),
        // Syncs: a soft share per namespace (a lone busy namespace keeps every worker). Store validation, whose
        // calls are not detached: a strict one.
        es_queue: Scheduler::new(Limit::Soft(opts.settings.namespace_limit())),
        store_queue: Scheduler::new(Limit::Strict(opts.settings.store_namespace_limit())),
        ces_queue: Scheduler::new(Limit::Strict(0)),
        es_state: Default::default(),
        store_gate: StoreGate::new(opts.settings.store_limit(), opts.settings.slow_call()),
        liveness: liveness.clone(),
        push,
        dependents: Default::default(),
        generic_kinds: Default::default(),
        generator_states,
    });
    let mut admin = Vec::new();
    let mut serve = |listener: tokio::net::TcpListener| {
        let local = listener.local_addr().ok();
        admin.push(tokio::spawn(admin::serve(
            listener,
            metrics.clone(),
            admin::Health {
                readiness: readiness.clone(),
                liveness: liveness.clone(),
                // Work waiting and nothing finished for twice the deadline: the workers are wedged.
                wedged_after: opts.settings.reconcile_timeout.saturating_mul(2),
            },
            shutdown.clone(),
        )));
        local
    };
    let admin_addr = match &opts.admin_addr {
        Some(addr) => serve(admin::bind(addr).await.map_err(|e| Error::Bind(addr.clone(), e))?),
        None => None,
    };
    let live_addr = match &opts.live_addr {
        Some(addr) if !addr.is_empty() && Some(addr) != opts.admin_addr.as_ref() => {
            serve(admin::bind(addr).await.map_err(|e| Error::Bind(addr.clone(), e))?)
        }
        _ => None,
    };
    // Workers stop on shutdown, and at once when leadership is lost.
    let stop = shutdown.child_token();
    let (leadership, election) = match &opts.leader_election {
        // Sharded: every replica works, on the units it holds.
        Some(_) if sharding.is_some() => (Leadership::always(), None),
        Some(cfg) => {
            let mut cfg = cfg.clone();
            if cfg.namespace.is_empty() {
                cfg.namespace = client.default_namespace().to_string();
            }
            cfg.validate().map_err(Error::Config)?;
            let status = metrics.leader_status.with_label_values(&[cfg.name.as_str()]);
            let (leadership, handle) = leader::start(client.clone(), cfg, status, shutdown.clone());
            let (l, stop) = (leadership.clone(), stop.clone());
            tokio::spawn(async move {
                tokio::select! { _ = l.lost() => stop.cancel(), _ = stop.cancelled() => {} }
            });
            (leadership, Some(handle))
        }
        None => (Leadership::always(), None),
    };
    let sharding = sharding
        .map(|cfg| crate::shard::coordinator::start(client.clone(), cfg, shards, metrics.clone(), shutdown.clone()));
    let running = controller::start(
        ctx.clone(),
        controller::Writers {
            ss: refl.ss.1,
            css: refl.css.1,
            ns: refl.ns.1,
            ces: refl.ces.1,
            push: push_writers,
            gs: gs_writer,
        },
        readiness.clone(),
        leadership.clone(),
        stop,
    );
    Ok(Started {
        ctx,
        readiness,
        admin_addr,
        live_addr,
        leadership,
        running,
        admin,
        election,
        sharding,
    })
}
