//! Prometheus metrics with ESO's names and labels, plus real histograms. The registry lives in the
//! [`crate::Context`]; nothing is global.
//!
//! Per-object series (`externalsecret_status_condition{name,namespace,condition,status}` and friends) are kept in
//! one compact map and written as text at scrape time by [`ObjectMetrics`], with no prometheus child or `MetricFamily`
//! per label set, and `/metrics` streams that text in chunks ([`Metrics::exposition`]): at 10k ExternalSecrets
//! the map is ~1.5 MB and a scrape holds ~50 KB of text at a time, where building the families first took ~25 MB
//! and the whole text ~5 MB.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::context::Key;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Everything the operator measures.
pub struct Metrics {
    pub registry: Registry,
    pub external_secrets: Arc<ObjectMetrics>,
    pub secret_stores: Arc<ObjectMetrics>,
    pub cluster_secret_stores: Arc<ObjectMetrics>,
    pub cluster_external_secrets: Arc<ObjectMetrics>,
    pub push_secrets: Arc<ObjectMetrics>,
    pub cluster_push_secrets: Arc<ObjectMetrics>,
    /// `externalsecret_provider_api_calls_count{provider,call,status}` (ESO's name).
    pub provider_calls: IntCounterVec,
    /// `syncret_provider_call_duration_seconds{provider,call}`.
    pub provider_latency: HistogramVec,
    /// `controller_runtime_reconcile_total{controller,result}` (controller-runtime's name).
    pub reconcile_total: IntCounterVec,
    /// `controller_runtime_reconcile_time_seconds{controller}`.
    pub reconcile_time: HistogramVec,
    /// `syncret_sync_duration_seconds{lane}`: one ExternalSecret sync (fetch, render, write), by queue lane.
    pub sync_duration: HistogramVec,
    /// `workqueue_depth{name}`.
    pub workqueue_depth: IntGaugeVec,
    /// `syncret_queue_depth{controller,lane}`.
    pub queue_depth: IntGaugeVec,
    /// `syncret_client_cache_size`: authenticated provider clients held.
    pub client_cache_size: IntGauge,
    /// `syncret_provider_client_builds_total{provider}`: clients built (logins, for authenticating providers).
    pub client_builds: IntCounterVec,
    /// `syncret_secret_writes_total{operation}`: create/apply/delete of target Secrets.
    pub secret_writes: IntCounterVec,
    /// `syncret_provider_reads_coalesced_total`: reads served by another ExternalSecret's in-flight or just-finished read.
    pub reads_coalesced: IntCounter,
    /// `controller_runtime_reconcile_errors_total{controller}` (controller-runtime's name).
    pub reconcile_errors: IntCounterVec,
    /// `controller_runtime_active_workers{controller}`: reconciles in flight.
    pub active_workers: IntGaugeVec,
    /// `controller_runtime_max_concurrent_reconciles{controller}`: workers started.
    pub max_concurrent_reconciles: IntGaugeVec,
    /// `syncret_sync_errors_total{reason}`: failed ExternalSecret syncs by [`FailureReason`].
    pub sync_errors: IntCounterVec,
    /// `leader_election_master_status{name}` (client-go's name): 1 while this replica holds the Lease.
    pub leader_status: IntGaugeVec,
    /// `syncret_reconcile_panics_total{controller}`: reconciles that panicked (caught; the worker went on).
    pub reconcile_panics: IntCounterVec,
    /// `syncret_reconcile_timeouts_total{controller}`: reconciles stopped at `--reconcile-timeout`.
    pub reconcile_timeouts: IntCounterVec,
    /// `syncret_store_parked`: reconciles waiting for a place at a store that has `--max-concurrent-per-store`
    /// reconciles in flight.
    pub store_parked: IntGauge,
    /// `syncret_shards`: `--shards` (0: not sharded).
    pub shards: IntGauge,
    /// `syncret_shard_owned{shard}`: 1 while this replica holds the unit (`shard` a number, or `cluster`).
    pub shard_owned: IntGaugeVec,
    /// `syncret_shard_members`: live replicas this one sees (itself included).
    pub shard_members: IntGauge,
    /// `syncret_shard_transitions_total{shard,transition}`: `acquired`, `released` (given back), `lost` (taken
    /// by another replica), `expired` (not renewed within the renew deadline).
    pub shard_transitions: IntCounterVec,
    /// `syncret_shard_reconciles_total{shard,controller}`: reconciles by unit.
    pub shard_reconciles: IntCounterVec,
    /// `syncret_shard_external_secrets{shard}`: ExternalSecrets this replica holds in its cache, per shard.
    pub shard_external_secrets: IntGaugeVec,
    /// `syncret_generator_calls_total{kind,call,status}`: generator calls (`Generate`, `RenewLease`,
    /// `RevokeLease`) by generated kind (`Password`, `VaultDynamicSecret`, …) and outcome (`success`/`error`).
    pub generator_calls: IntCounterVec,
    /// `syncret_generator_call_duration_seconds{kind,call}`.
    pub generator_latency: HistogramVec,
    /// `syncret_generator_states{phase}`: GeneratorStates this operator tracks, `current` (a lease in use) or
    /// `superseded` (waiting for garbage collection).
    pub generator_states: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let external_secrets = Arc::new(ObjectMetrics::new("externalsecret", "External Secret", true));
        let secret_stores = Arc::new(ObjectMetrics::new("secretstore", "SecretStore", false));
        let cluster_secret_stores = Arc::new(ObjectMetrics::new("clustersecretstore", "ClusterSecretStore", false));
        let cluster_external_secrets = Arc::new(ObjectMetrics::new(
            "clusterexternalsecret",
            "ClusterExternalSecret",
            false,
        ));
        let push_secrets = Arc::new(ObjectMetrics::new("pushsecret", "PushSecret", false));
        let cluster_push_secrets = Arc::new(ObjectMetrics::new("clusterpushsecret", "ClusterPushSecret", false));
        let latency_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let provider_calls = IntCounterVec::new(
            Opts::new(
                "externalsecret_provider_api_calls_count",
                "Number of API calls towards the secret provider",
            ),
            &["provider", "call", "status"],
        )?;
        let provider_latency = HistogramVec::new(
            HistogramOpts::new(
                "syncret_provider_call_duration_seconds",
                "Latency of calls to secret providers",
            )
            .buckets(latency_buckets.clone()),
            &["provider", "call"],
        )?;
        let reconcile_total = IntCounterVec::new(
            Opts::new(
                "controller_runtime_reconcile_total",
                "Total number of reconciliations per controller",
            ),
            &["controller", "result"],
        )?;
        let reconcile_time = HistogramVec::new(
            HistogramOpts::new(
                "controller_runtime_reconcile_time_seconds",
                "Length of time per reconciliation per controller",
            )
            .buckets(latency_buckets.clone()),
            &["controller"],
        )?;
        let sync_duration = HistogramVec::new(
            HistogramOpts::new(
                "syncret_sync_duration_seconds",
                "Time to sync one ExternalSecret (fetch, render, write)",
            )
            .buckets(latency_buckets),
            &["lane"],
        )?;
        let workqueue_depth = IntGaugeVec::new(Opts::new("workqueue_depth", "Current depth of workqueue"), &["name"])?;
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "syncret_queue_depth",
                "Items ready to be processed, per controller and lane",
            ),
            &["controller", "lane"],
        )?;
        let client_cache_size = IntGauge::new(
            "syncret_client_cache_size",
            "Authenticated provider clients held in the cache",
        )?;
        let client_builds = IntCounterVec::new(
            Opts::new(
                "syncret_provider_client_builds_total",
                "Provider clients built (each a login for authenticating providers)",
            ),
            &["provider"],
        )?;
        let secret_writes = IntCounterVec::new(
            Opts::new("syncret_secret_writes_total", "Writes of target Secrets, by operation"),
            &["operation"],
        )?;
        let reads_coalesced = IntCounter::new(
            "syncret_provider_reads_coalesced_total",
            "Remote reads answered by a read another ExternalSecret already made",
        )?;
        registry.register(Box::new(provider_calls.clone()))?;
        registry.register(Box::new(provider_latency.clone()))?;
        registry.register(Box::new(reconcile_total.clone()))?;
        registry.register(Box::new(reconcile_time.clone()))?;
        registry.register(Box::new(sync_duration.clone()))?;
        registry.register(Box::new(workqueue_depth.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(client_cache_size.clone()))?;
        registry.register(Box::new(client_builds.clone()))?;
        registry.register(Box::new(secret_writes.clone()))?;
        registry.register(Box::new(reads_coalesced.clone()))?;
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "controller_runtime_reconcile_errors_total",
                "Total number of reconciliation errors per controller",
            ),
            &["controller"],
        )?;
        let active_workers = IntGaugeVec::new(
            Opts::new(
                "controller_runtime_active_workers",
                "Number of currently used workers per controller",
            ),
            &["controller"],
        )?;
        let max_concurrent_reconciles = IntGaugeVec::new(
            Opts::new(
                "controller_runtime_max_concurrent_reconciles",
                "Maximum number of concurrent reconciles per controller",
            ),
            &["controller"],
        )?;
        let sync_errors = IntCounterVec::new(
            Opts::new("syncret_sync_errors_total", "Failed ExternalSecret syncs, by reason"),
            &["reason"],
        )?;
        let leader_status = IntGaugeVec::new(
            Opts::new(
                "leader_election_master_status",
                "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
            ),
            &["name"],
        )?;
        registry.register(Box::new(reconcile_errors.clone()))?;
        registry.register(Box::new(active_workers.clone()))?;
        registry.register(Box::new(max_concurrent_reconciles.clone()))?;
        registry.register(Box::new(sync_errors.clone()))?;
        registry.register(Box::new(leader_status.clone()))?;
        let reconcile_panics = IntCounterVec::new(
            Opts::new(
                "syncret_reconcile_panics_total",
                "Reconciles that panicked; the panic was caught, the object marked and retried with backoff",
            ),
            &["controller"],
        )?;
        let reconcile_timeouts = IntCounterVec::new(
            Opts::new(
                "syncret_reconcile_timeouts_total",
                "Reconciles stopped at the reconcile deadline (--reconcile-timeout)",
            ),
            &["controller"],
        )?;
        let store_parked = IntGauge::new(
            "syncret_store_parked",
            "Reconciles waiting for a place at a store with --max-concurrent-per-store reconciles in flight",
        )?;
        registry.register(Box::new(reconcile_panics.clone()))?;
        registry.register(Box::new(reconcile_timeouts.clone()))?;
        registry.register(Box::new(store_parked.clone()))?;
        let shards = IntGauge::new(
            "syncret_shards",
            "Shards the namespaces are split into (--shards; 0: not sharded)",
        )?;
        let shard_owned = IntGaugeVec::new(
            Opts::new(
                "syncret_shard_owned",
                "1 while this replica holds the unit: a shard of the namespaces, or cluster (store validation, cluster controllers)",
            ),
            &["shard"],
        )?;
        let shard_members = IntGauge::new(
            "syncret_shard_members",
            "Live replicas this replica sees, itself included",
        )?;
        let shard_transitions = IntCounterVec::new(
            Opts::new(
                "syncret_shard_transitions_total",
                "Changes of this replica's hold on a unit: acquired, released, lost, expired",
            ),
            &["shard", "transition"],
        )?;
        let shard_reconciles = IntCounterVec::new(
            Opts::new("syncret_shard_reconciles_total", "Reconciles by unit and controller"),
            &["shard", "controller"],
        )?;
        let shard_external_secrets = IntGaugeVec::new(
            Opts::new(
                "syncret_shard_external_secrets",
                "ExternalSecrets held in this replica's cache, per shard",
            ),
            &["shard"],
        )?;
        registry.register(Box::new(shards.clone()))?;
        registry.register(Box::new(shard_owned.clone()))?;
        registry.register(Box::new(shard_members.clone()))?;
        registry.register(Box::new(shard_transitions.clone()))?;
        registry.register(Box::new(shard_reconciles.clone()))?;
        registry.register(Box::new(shard_external_secrets.clone()))?;
        let generator_calls = IntCounterVec::new(
            Opts::new(
                "syncret_generator_calls_total",
                "Generator calls (Generate, RenewLease, RevokeLease) by generated kind and outcome",
            ),
            &["kind", "call", "status"],
        )?;
        let generator_latency = HistogramVec::new(
            HistogramOpts::new("syncret_generator_call_duration_seconds", "Latency of generator calls").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["kind", "call"],
        )?;
        let generator_states = IntGaugeVec::new(
            Opts::new(
                "syncret_generator_states",
                "GeneratorStates tracked: current (a lease in use) or superseded (awaiting garbage collection)",
            ),
            &["phase"],
        )?;
        registry.register(Box::new(generator_calls.clone()))?;
        registry.register(Box::new(generator_latency.clone()))?;
        registry.register(Box::new(generator_states.clone()))?;
        Ok(Self {
            registry,
            external_secrets,
            secret_stores,
            cluster_secret_stores,
            cluster_external_secrets,
            push_secrets,
            cluster_push_secrets,
            provider_calls,
            provider_latency,
            reconcile_total,
            reconcile_time,
            sync_duration,
            workqueue_depth,
            queue_depth,
            client_cache_size,
            client_builds,
            secret_writes,
            reads_coalesced,
            reconcile_errors,
            active_workers,
            max_concurrent_reconciles,
            sync_errors,
            leader_status,
            reconcile_panics,
            reconcile_timeouts,
            store_parked,
            shards,
            shard_owned,
            shard_members,
            shard_transitions,
            shard_reconciles,
            shard_external_secrets,
            generator_calls,
            generator_latency,
            generator_states,
        })
    }

    /// Records one generator call.
    pub fn generator_call(&self, kind: &str, call: &str, ok: bool, elapsed: Duration) {
        self.generator_calls
            .with_label_values(&[kind, call, if ok { "success" } else { "error" }])
            .inc();
        self.generator_latency
            .with_label_values(&[kind, call])
            .observe(elapsed.as_secs_f64());
    }

    /// Workers started per controller (`controller_runtime_max_concurrent_reconciles`).
    pub fn workers_started(&self, counts: &[(&str, usize)]) {
        for (controller, n) in counts {
            self.max_concurrent_reconciles
                .with_label_values(&[controller])
                .set(*n as i64);
        }
    }

    /// Reconciles in flight per controller (`controller_runtime_active_workers`).
    pub fn in_flight(&self, counts: &[(&str, usize)]) {
        for (controller, n) in counts {
            self.active_workers.with_label_values(&[controller]).set(*n as i64);
        }
    }

    /// One failed ExternalSecret sync, counted by its error's reason (see [`FailureReason`]).
    pub fn sync_failed(&self, reason: FailureReason) {
        self.sync_errors.with_label_values(&[reason.as_str()]).inc();
    }

    /// Records one reconcile of `controller`.
    pub fn reconciled(&self, controller: &str, ok: bool, elapsed: Duration) {
        self.reconcile_total
            .with_label_values(&[controller, if ok { "success" } else { "error" }])
            .inc();
        // Present (at 0) from the first reconcile on, so `rate()` sees the first error.
        let errors = self.reconcile_errors.with_label_values(&[controller]);
        if !ok {
            errors.inc();
        }
        self.reconcile_time
            .with_label_values(&[controller])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition of every metric, whole (tests and small registries; `/metrics` streams
    /// [`Metrics::exposition`]).
    pub fn render(&self) -> Result<String, prometheus::Error> {
        Ok(Self::exposition(self)?.collect())
    }

    /// The text exposition as chunks rendered while they are sent: the registry's metrics (encoded now; the only
    /// step that can fail), then each kind's per-object series, [`CHUNK_OBJECTS`] objects at a time. A scrape
    /// holds a sorted snapshot of one kind's keys (shared strings, no copies) and one chunk, never the whole text
    /// (~5 MB at 10k ExternalSecrets, which set the operator's peak memory).
    pub fn exposition<M: std::ops::Deref<Target = Metrics>>(metrics: M) -> Result<Exposition<M>, prometheus::Error> {
        let registry = prometheus::TextEncoder::new().encode_to_string(&metrics.registry.gather())?;
        Ok(Exposition {
            metrics,
            registry: Some(registry),
            kind: 0,
            keys: None,
            families: Vec::new(),
            family: 0,
            offset: 0,
            header: false,
        })
    }

    fn kinds(&self) -> [&ObjectMetrics; 6] {
        [
            &self.external_secrets,
            &self.secret_stores,
            &self.cluster_secret_stores,
            &self.cluster_external_secrets,
            &self.push_secrets,
            &self.cluster_push_secrets,
        ]
    }
}

/// Objects per chunk of the exposition (~50 KB of text).
pub const CHUNK_OBJECTS: usize = 500;

/// See [`Metrics::exposition`]. Series of objects created during a scrape are left for the next one; those of
/// objects removed meanwhile are skipped.
pub struct Exposition<M> {
    metrics: M,
    registry: Option<String>,
    /// Position: kind, family of that kind, offset into its key snapshot.
    kind: usize,
    keys: Option<Vec<Key>>,
    families: Vec<Family>,
    family: usize,
    offset: usize,
    /// Whether the current family's `# HELP`/`# TYPE` lines were written (only before its first series).
    header: bool,
}

impl<M: std::ops::Deref<Target = Metrics>> Iterator for Exposition<M> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if let Some(registry) = self.registry.take() {
            return Some(registry);
        }
        loop {
            let m = *self.metrics.kinds().get(self.kind)?;
            let keys = self.keys.get_or_insert_with(|| {
                self.families = m.families();
                self.family = 0;
                self.offset = 0;
                self.header = false;
                m.keys()
            });
            let Some(family) = self.families.get(self.family) else {
                self.kind += 1;
                self.keys = None;
                continue;
            };
            if self.offset >= keys.len() {
                self.family += 1;
                self.offset = 0;
                self.header = false;
                continue;
            }
            let end = (self.offset + CHUNK_OBJECTS).min(keys.len());
            let mut out = String::new();
            m.write_family(family, &keys[self.offset..end], &mut self.header, &mut out);
            self.offset = end;
            if !out.is_empty() {
                return Some(out);
            }
        }
    }
}

pub use crate::sync::error::FailureReason;

/// Reports provider calls into the metrics (the providers crate's observer hook).
pub struct ProviderCallMetrics {
    calls: IntCounterVec,
    latency: HistogramVec,
}

impl ProviderCallMetrics {
    pub fn new(m: &Metrics) -> Self {
        Self {
            calls: m.provider_calls.clone(),
            latency: m.provider_latency.clone(),
        }
    }
}

impl syncret_providers::CallObserver for ProviderCallMetrics {
    fn observe(&self, provider: &'static str, call: &'static str, ok: bool, elapsed: Duration) {
        self.calls
            .with_label_values(&[provider, call, if ok { "success" } else { "error" }])
            .inc();
        self.latency
            .with_label_values(&[provider, call])
            .observe(elapsed.as_secs_f64());
    }
}

#[derive(Clone, Copy, Default)]
struct ObjectState {
    /// Counters of one object (saturating: 4 billion reconciles of one object is over a century at one a second).
    sync_calls: u32,
    sync_errors: u32,
    /// The last reconcile's duration in microseconds (saturating at ~71 minutes; exported in nanoseconds).
    reconcile_us: u32,
    /// `Some(true)`: Ready=True; `Some(false)`: Ready=False; `None`: not reported yet.
    ready: Option<bool>,
}

/// One per-object metric family: its name after the kind's prefix, help, type, and how one object's series are
/// written, given the prefix and the object's labels (false: it has none yet).
struct Family {
    name: &'static str,
    help: String,
    kind: &'static str,
    series: fn(&mut String, &str, &str, &ObjectState) -> bool,
}

/// Per-object series of one kind: `<prefix>_status_condition`, `<prefix>_reconcile_duration` and, for
/// ExternalSecrets, `<prefix>_sync_calls_total` / `<prefix>_sync_calls_error`. Keyed by the controllers' own
/// [`Key`]s, whose strings are shared with the queues.
pub struct ObjectMetrics {
    prefix: &'static str,
    what: &'static str,
    sync_counters: bool,
    objects: Mutex<HashMap<Key, ObjectState>>,
}

impl ObjectMetrics {
    fn new(prefix: &'static str, what: &'static str, sync_counters: bool) -> Self {
        Self {
            prefix,
            what,
            sync_counters,
            objects: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, ObjectState>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with(&self, key: &Key, f: impl FnOnce(&mut ObjectState)) {
        let mut objects = self.lock();
        match objects.get_mut(key) {
            Some(s) => f(s),
            None => f(objects.entry(key.clone()).or_default()),
        }
    }

    /// One reconcile finished (ESO increments sync calls on every reconcile and errors on failures). A reconcile
    /// that left the object `Ready=False` is a failure even when it is not retried (e.g. a template error waits
    /// for a spec change): ESO counts those in `externalsecret_sync_calls_error` too.
    pub fn reconciled(&self, key: &Key, ok: bool, elapsed: Duration) {
        self.with(key, |s| {
            s.sync_calls = s.sync_calls.saturating_add(1);
            if !ok || s.ready == Some(false) {
                s.sync_errors = s.sync_errors.saturating_add(1);
            }
            s.reconcile_us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        });
    }

    /// The Ready condition's status.
    pub fn set_ready(&self, key: &Key, ready: bool) {
        self.with(key, |s| s.ready = Some(ready));
    }

    /// The object is gone: its series disappear (ESO deletes them too).
    pub fn remove(&self, key: &Key) {
        self.lock().remove(key);
    }

    /// Keeps the series of the objects `keep` accepts (a replica that gave a shard up drops its objects': their
    /// new owner exports them).
    pub fn retain(&self, keep: impl Fn(&Key) -> bool) {
        self.lock().retain(|k, _| keep(k));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys, sorted (the exposition's order).
    fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.lock().keys().cloned().collect();
        keys.sort_unstable();
        keys
    }

    fn families(&self) -> Vec<Family> {
        let what = self.what;
        let mut out = Vec::with_capacity(4);
        if self.sync_counters {
            out.push(Family {
                name: "sync_calls_total",
                help: format!("Total number of the {what} sync calls"),
                kind: "counter",
                series: |out, p, l, s| writeln!(out, "{p}_sync_calls_total{{{l}}} {}", s.sync_calls).is_ok(),
            });
            out.push(Family {
                name: "sync_calls_error",
                help: format!("Total number of the {what} sync errors"),
                kind: "counter",
                series: |out, p, l, s| writeln!(out, "{p}_sync_calls_error{{{l}}} {}", s.sync_errors).is_ok(),
            });
        }
        out.push(Family {
            name: "status_condition",
            help: format!("The status condition of a specific {what}"),
            kind: "gauge",
            series: |out, p, l, s| {
                let Some(ready) = s.ready else { return false };
                for (status, value) in [("False", !ready), ("True", ready)] {
                    let _ = writeln!(
                        out,
                        "{p}_status_condition{{condition=\"Ready\",{l},status=\"{status}\"}} {}",
                        u8::from(value)
                    );
                }
                true
            },
        });
        out.push(Family {
            name: "reconcile_duration",
            help: format!("The duration time to reconcile the {what} (nanoseconds, as ESO)"),
            kind: "gauge",
            series: |out, p, l, s| {
                s.sync_calls > 0
                    && writeln!(
                        out,
                        "{p}_reconcile_duration{{{l}}} {}",
                        u64::from(s.reconcile_us) * 1000
                    )
                    .is_ok()
            },
        });
        out
    }

    /// Appends `family`'s series for `keys` in the text format, straight from the compact map (building a
    /// `MetricFamily` per series first cost ~25 MB per scrape at 10k ExternalSecrets). The `# HELP`/`# TYPE`
    /// lines go before the first series written; `header` says whether they were.
    fn write_family(&self, family: &Family, keys: &[Key], header: &mut bool, out: &mut String) {
        let objects = self.lock();
        let p = self.prefix;
        let mut labels = String::new();
        let mut lines = String::new();
        for key in keys {
            let Some(state) = objects.get(key) else { continue };
            labels.clear();
            let _ = write!(
                labels,
                "name=\"{}\",namespace=\"{}\"",
                escape(&key.name),
                escape(&key.namespace)
            );
            lines.clear();
            if (family.series)(&mut lines, p, &labels, state) {
                if !*header {
                    let (name, help, kind) = (family.name, &family.help, family.kind);
                    let _ = writeln!(out, "# HELP {p}_{name} {help}\n# TYPE {p}_{name} {kind}");
                    *header = true;
                }
                out.push_str(&lines);
            }
        }
    }
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    std::borrow::Cow::Owned(v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_eso_names_and_labels() {
        let m = Metrics::new().unwrap();
        let db = Key::new("ns1", "db");
        m.external_secrets.reconciled(&db, true, Duration::from_millis(3));
        m.external_secrets.reconciled(&db, false, Duration::from_millis(4));
        m.external_secrets.set_ready(&db, false);
        m.secret_stores.set_ready(&Key::new("ns1", "vault"), true);
        m.provider_calls
            .with_label_values(&["Kubernetes", "GetSecret", "success"])
            .inc();
        m.reconciled("externalsecret", true, Duration::from_millis(2));
        let text = m.render().unwrap();
        for line in [
            r#"externalsecret_sync_calls_total{name="db",namespace="ns1"} 2"#,
            r#"externalsecret_sync_calls_error{name="db",namespace="ns1"} 1"#,
            r#"externalsecret_status_condition{condition="Ready",name="db",namespace="ns1",status="False"} 1"#,
            r#"externalsecret_status_condition{condition="Ready",name="db",namespace="ns1",status="True"} 0"#,
            r#"externalsecret_reconcile_duration{name="db",namespace="ns1"} 4000000"#,
            r#"secretstore_status_condition{condition="Ready",name="vault",namespace="ns1",status="True"} 1"#,
            r#"externalsecret_provider_api_calls_count{call="GetSecret",provider="Kubernetes",status="success"} 1"#,
            r#"controller_runtime_reconcile_total{controller="externalsecret",result="success"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.contains("# TYPE externalsecret_sync_calls_total counter"));
        // Not retried, but Ready=False: still an error for ESO.
        let tpl = Key::new("ns1", "tpl");
        m.external_secrets.set_ready(&tpl, false);
        m.external_secrets.reconciled(&tpl, true, Duration::from_millis(1));
        assert!(
            m.render()
                .unwrap()
                .contains(r#"externalsecret_sync_calls_error{name="tpl",namespace="ns1"} 1"#)
        );
        m.sync_failed(FailureReason::ProviderError);
        assert!(
            m.render()
                .unwrap()
                .contains(r#"syncret_sync_errors_total{reason="ProviderError"} 1"#)
        );
        m.external_secrets.remove(&db);
        assert!(!m.render().unwrap().contains(r#"name="db""#));
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn the_exposition_streams_in_chunks_with_one_header_per_family() {
        let m = Metrics::new().unwrap();
        let n = CHUNK_OBJECTS * 2 + 7;
        for i in 0..n {
            let k = Key::new(format!("ns{}", i % 3), format!("es-{i:05}"));
            m.external_secrets.reconciled(&k, true, Duration::from_millis(1));
            m.external_secrets.set_ready(&k, i % 2 == 0);
        }
        // Reported but never reconciled: a status series, no duration.
        m.push_secrets.set_ready(&Key::new("ns1", "push"), true);
        let chunks: Vec<String> = Metrics::exposition(&m).unwrap().collect();
        // The registry, then 3 chunks for each of the 4 ExternalSecret families, then the PushSecret's series.
        assert_eq!(chunks.len(), 1 + 4 * 3 + 1);
        assert!(chunks.iter().all(|c| c.len() < 200 * CHUNK_OBJECTS));
        let text = chunks.concat();
        assert_eq!(text, m.render().unwrap());
        for family in [
            "sync_calls_total",
            "sync_calls_error",
            "status_condition",
            "reconcile_duration",
        ] {
            let header = format!("# TYPE externalsecret_{family} ");
            assert_eq!(text.matches(&header).count(), 1, "{family}");
            let series = format!("\nexternalsecret_{family}{{");
            let per_object = if family == "status_condition" { 2 } else { 1 };
            assert_eq!(text.matches(&series).count(), n * per_object, "{family}");
        }
        assert!(
            text.contains(
                r#"pushsecret_status_condition{condition="Ready",name="push",namespace="ns1",status="True"} 1"#
            )
        );
        assert!(!text.contains("pushsecret_reconcile_duration"));
        // Sorted by namespace, then name.
        let first = text
            .find(r#"externalsecret_sync_calls_total{name="es-00000",namespace="ns0"}"#)
            .unwrap();
        let second = text
            .find(r#"externalsecret_sync_calls_total{name="es-00003",namespace="ns0"}"#)
            .unwrap();
        assert!(first < second);
    }

    #[test]
    fn one_objects_series_take_16_bytes() {
        assert_eq!(std::mem::size_of::<ObjectState>(), 16);
    }
}
