//! One benchmark run: the direct-write limit (and the floor an operator cannot go below), then for every
//! provider and every operator: N ExternalSecrets synced from a cold start, two refresh waves (one quiet, one
//! with new ExternalSecrets created during it), resources and apiserver requests measured throughout.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::config::Kubeconfig;
use kube::{Client, ResourceExt};
use serde::Serialize;

use crate::apimetrics::{self, Counts};
use crate::operator::{self, Budget, OperatorSpec};
use crate::procfs::{self, ProcSample, Sampler};
use crate::track::Tracker;
use crate::workload::{self, Layout, Limiter, ProviderKind, RUN_LABEL, SET_LABEL, Set};

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub kubeconfig: PathBuf,
    /// `env` file written by `e2e/controlplane.sh` (apiserver and etcd PIDs), if known.
    pub controlplane_env: Option<PathBuf>,
    pub n: usize,
    pub namespaces: usize,
    pub value_size: usize,
    pub fake_keys: usize,
    pub budget: Budget,
    pub providers: Vec<ProviderKind>,
    pub operators: Vec<OperatorSpec>,
    /// Measure the floor (Secret + ExternalSecret status per item, by a plain client) too.
    pub floor: bool,
    /// Measure refresh waves.
    pub waves: bool,
    /// refreshInterval of the ExternalSecrets; `None`: chosen from the direct-write time.
    pub refresh_interval: Option<Duration>,
    /// ExternalSecrets created during the second wave.
    pub new_es: usize,
    /// A hostile tenant beside every scenario: this many ExternalSecrets, in a namespace of their own, on a
    /// SecretStore whose server never answers (0: none).
    pub hung: usize,
    /// Concurrency of the bench's own (untimed) setup and cleanup.
    pub setup_concurrency: usize,
    pub controller_class: String,
    /// CRD manifests to install first (files or directories); existing CRDs of the same name are replaced.
    pub crds: Vec<PathBuf>,
    /// CRD manifests another operator needs besides ours; installed only where no CRD of that name exists.
    pub extra_crds: Vec<PathBuf>,
    pub out_dir: PathBuf,
    /// Longest wait for one phase.
    pub phase_timeout: Duration,
    /// Pause after a phase for its late requests (events, status) before reading counters.
    pub settle: Duration,
    /// Print progress to stderr.
    pub verbose: bool,
    /// `--replicas`: besides the single process, run syncret as this many sharded replicas (> 1) on the same
    /// workload and compare.
    pub replicas: usize,
    /// `--shards` of the sharded replicas.
    pub shards: u32,
}

/// CPU and request figures of a time window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Window {
    pub wall_s: f64,
    /// `VERB resource` → requests, work only (no WATCH, no apiserver heartbeats), bench's own removed.
    pub requests: Vec<(String, f64)>,
    pub requests_total: f64,
    pub secret_writes: f64,
    pub apiserver_cpu_s: Option<f64>,
    pub etcd_cpu_s: Option<f64>,
    pub operator_cpu_s: Option<f64>,
    pub bench_cpu_s: f64,
    pub machine_busy_s: f64,
    pub machine_capacity_s: f64,
    pub load_end: String,
}

impl Window {
    /// Share of the machine's CPU capacity used in the window.
    pub fn machine_util(&self) -> f64 {
        if self.machine_capacity_s > 0.0 {
            self.machine_busy_s / self.machine_capacity_s
        } else {
            0.0
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DirectResult {
    pub n: usize,
    /// First create sent → last create answered.
    pub wall_s: f64,
    /// First create sent → the watch has seen every Secret.
    pub seen_s: f64,
    pub errors: usize,
    pub window: Window,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct WaveResult {
    /// From the start of waiting to the first refresh seen.
    pub started_after_s: f64,
    /// First refresh → last refresh of the wave.
    pub duration_s: f64,
    pub refreshed: usize,
    pub complete: bool,
    /// Secret writes in the window: apiserver counter, and resourceVersion changes seen by the watch.
    pub secret_writes_api: f64,
    pub secret_writes_watch: u64,
    pub window: Window,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyResult {
    pub created: usize,
    pub created_during_wave: usize,
    pub ready: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub wave: WaveResult,
    pub latencies_ms: Vec<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ScenarioResult {
    pub operator: String,
    pub provider: String,
    pub n: usize,
    pub command: String,
    /// Creating the N ExternalSecrets (bench client, before the operator starts; not part of the ratio).
    pub apply_s: f64,
    /// Operator start → every ExternalSecret Ready and every Secret right.
    pub sync_s: Option<f64>,
    pub ready: usize,
    pub secrets_ok: usize,
    pub sync_window: Window,
    /// VmRSS two settle periods (default 10 s) after everything was synced.
    pub steady_rss_kib: u64,
    /// VmHWM at the end (kernel-tracked peak).
    pub peak_rss_kib: u64,
    pub cpu_sync_s: f64,
    pub cpu_total_s: f64,
    pub refresh_interval_s: u64,
    /// ExternalSecrets on a hung store beside this scenario (`--hung`).
    pub hung: usize,
    pub wave: Option<WaveResult>,
    pub new_es: Option<LatencyResult>,
    pub not_ready: Vec<(String, usize)>,
    pub log: String,
    pub error: Option<String>,
    pub rss_timeline: Vec<(f64, u64)>,
    /// Sharded replicas (`--replicas`): one entry per process; empty for a single process.
    pub replicas: Vec<ReplicaResult>,
}

/// One replica of a sharded scenario.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplicaResult {
    pub peak_rss_kib: u64,
    pub steady_rss_kib: u64,
    pub cpu_sync_s: f64,
    pub cpu_total_s: f64,
    /// Units held at the end of the sync (`syncret_shard_owned`), and ExternalSecrets in its cache.
    pub units: usize,
    pub external_secrets: usize,
    pub log: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub mem_gib: f64,
    pub cpu_model: String,
    pub kernel: String,
    pub load_start: String,
    pub load_end: String,
    pub busy_start: Vec<String>,
    pub busy_end: Vec<String>,
    pub date: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub n: usize,
    pub namespaces: usize,
    pub value_size: usize,
    pub budget: Option<Budget>,
    pub machine: Machine,
    pub direct: DirectResult,
    pub floor: Option<DirectResult>,
    pub scenarios: Vec<ScenarioResult>,
    pub operators: Vec<OperatorSpec>,
    pub refresh_interval_s: u64,
    /// `--shards` of the sharded replicas scenarios (`--replicas`).
    pub shards: u32,
    pub controlplane_pids: Option<(u32, u32)>,
    pub total_s: f64,
}

/// Readings at one moment.
#[derive(Clone)]
struct Snap {
    t: Instant,
    api: Counts,
    apiserver: Option<ProcSample>,
    etcd: Option<ProcSample>,
    op: Option<ProcSample>,
    bench: ProcSample,
    machine: (f64, f64),
}

struct Bench {
    cfg: Config,
    client: Client,
    layout: Layout,
    cp: Option<(u32, u32)>,
    server: String,
    ca: Vec<u8>,
    token: String,
    start: Instant,
    /// `http://127.0.0.1:<port>` of the bench's own never-answering listener (`--hung`).
    hung_origin: Option<String>,
}

/// A listener that accepts connections, reads nothing and never answers; held connections stay open.
async fn start_hung_listener() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    Ok(origin)
}

fn log(cfg: &Config, msg: impl AsRef<str>) {
    if cfg.verbose {
        eprintln!("bench: {}", msg.as_ref());
    }
}

fn read_env_pids(path: &Path) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(path).ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    Some((get("SYNCRET_APISERVER_PID=")?, get("SYNCRET_ETCD_PID=")?))
}

fn machine_now() -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    Machine {
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        mem_gib: mem_kib / 1024.0 / 1024.0,
        cpu_model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        load_start: procfs::loadavg(),
        busy_start: procfs::busy_neighbours(),
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ..Default::default()
    }
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Runs `f` over `items` with `concurrency` in flight; returns the number of failures (after 3 tries each).
async fn bulk<T, F, Fut>(items: Vec<T>, concurrency: usize, f: F) -> usize
where
    T: Clone,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    futures::stream::iter(items)
        .map(|it| {
            let f = &f;
            async move {
                for attempt in 0..3 {
                    match f(it.clone()).await {
                        Ok(()) => return 0usize,
                        Err(kube::Error::Api(s)) if s.code == 409 => return 0,
                        Err(_) if attempt < 2 => tokio::time::sleep(Duration::from_millis(200)).await,
                        Err(_) => return 1,
                    }
                }
                1
            }
        })
        .buffer_unordered(concurrency.max(1))
        .fold(0usize, |a, b| async move { a + b })
        .await
}

impl Bench {
    async fn snap(&self, op: Option<u32>) -> anyhow::Result<Snap> {
        let api = apimetrics::scrape(&self.client).await?;
        Ok(Snap {
            t: Instant::now(),
            api,
            apiserver: self.cp.and_then(|(a, _)| procfs::sample(a)),
            etcd: self.cp.and_then(|(_, e)| procfs::sample(e)),
            op: op.and_then(procfs::sample),
            bench: procfs::self_sample().unwrap_or_default(),
            machine: procfs::machine_cpu(),
        })
    }

    fn window(&self, a: &Snap, b: &Snap, own: &Counts) -> Window {
        let all = b.api.since(&a.api).work().minus(own);
        let d = |x: Option<ProcSample>, y: Option<ProcSample>| match (x, y) {
            (Some(x), Some(y)) => Some(y.cpu_s - x.cpu_s),
            _ => None,
        };
        Window {
            wall_s: b.t.duration_since(a.t).as_secs_f64(),
            requests_total: all.total(),
            secret_writes: all.secret_writes(),
            requests: all.breakdown(),
            apiserver_cpu_s: d(a.apiserver, b.apiserver),
            etcd_cpu_s: d(a.etcd, b.etcd),
            operator_cpu_s: d(a.op, b.op),
            bench_cpu_s: b.bench.cpu_s - a.bench.cpu_s,
            machine_busy_s: b.machine.0 - a.machine.0,
            machine_capacity_s: b.machine.1 - a.machine.1,
            load_end: procfs::loadavg(),
        }
    }

    async fn ensure_namespace(&self, name: &str) -> anyhow::Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some([(RUN_LABEL.to_string(), self.layout.run.clone())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn all_namespaces(&self) -> Vec<String> {
        let mut v = self.layout.namespaces();
        v.push(self.layout.new_namespace());
        if self.cfg.replicas > 1 {
            v.push(self.layout.lease_namespace());
        }
        if self.hung_origin.is_some() {
            v.push(self.layout.hung_namespace());
        }
        v
    }

    /// The hostile tenant of `--hung`: its store and ExternalSecrets (tag `<tag>h`), created before the operator
    /// starts, as the scenario's own.
    async fn create_hung(&self, tag: &str, refresh: Duration) -> anyhow::Result<()> {
        let Some(origin) = &self.hung_origin else { return Ok(()) };
        let ns = self.layout.hung_namespace();
        let store = workload::hung_store(&self.layout, &ns, &self.cfg.controller_class, origin);
        let ss: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &workload::ss_resource());
        ss.patch(
            "hung",
            &PatchParams::apply("syncret-bench").force(),
            &Patch::Apply(&store),
        )
        .await?;
        let es = workload::es_resource();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &es);
        let failures = bulk((0..self.cfg.hung).collect(), self.cfg.setup_concurrency, |i| {
            let o = workload::hung_external_secret(&self.layout, tag, i, &ns, refresh);
            let api = api.clone();
            async move { api.create(&PostParams::default(), &o).await.map(|_| ()) }
        })
        .await;
        if failures > 0 {
            bail!("{failures} hung ExternalSecrets could not be created");
        }
        Ok(())
    }

    /// Deletes the ExternalSecrets of `tags`, every managed Secret and every Event in the bench's namespaces, and
    /// waits until they are gone (an operator may hold finalizers, so it should still run).
    async fn cleanup(&self, tags: &[&str]) -> anyhow::Result<()> {
        let es = workload::es_resource();
        let nss = self.all_namespaces();
        let c = self.cfg.setup_concurrency;
        for tag in tags {
            let sel = format!("{SET_LABEL}={tag}");
            bulk(nss.clone(), c, |ns| {
                let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &es);
                let lp = ListParams::default().labels(&sel);
                async move { api.delete_collection(&DeleteParams::default(), &lp).await.map(|_| ()) }
            })
            .await;
        }
        bulk(nss.clone(), c, |ns| {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
            let lp = ListParams::default().labels(&format!("{}=true", workload::MANAGED_LABEL));
            async move { api.delete_collection(&DeleteParams::default(), &lp).await.map(|_| ()) }
        })
        .await;
        bulk(nss.clone(), c, |ns| {
            let api: Api<CoreEvent> = Api::namespaced(self.client.clone(), &ns);
            async move {
                api.delete_collection(&DeleteParams::default(), &ListParams::default())
                    .await
                    .map(|_| ())
            }
        })
        .await;
        let deadline = Instant::now() + self.cfg.phase_timeout;
        loop {
            let mut left = 0usize;
            for tag in tags {
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &es);
                left += api
                    .list_metadata(&ListParams::default().labels(&format!("{SET_LABEL}={tag}")).limit(1))
                    .await?
                    .items
                    .len();
            }
            let api: Api<Secret> = Api::all(self.client.clone());
            let lp = ListParams::default()
                .labels(&format!("{RUN_LABEL}={}", self.layout.run))
                .limit(500);
            left += api
                .list_metadata(&lp)
                .await?
                .items
                .iter()
                .filter(|s| s.namespace().as_deref() != Some(self.layout.source_namespace().as_str()))
                .count();
            if left == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("cleanup: objects still present after {:?}", self.cfg.phase_timeout);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Creates the Secrets of `set` with the shared budget; `with_status`: after each Secret, also writes the
    /// Ready status of the ExternalSecret of the same name (the floor: what any operator must write).
    async fn direct_write(&self, set: &Set, with_status: bool) -> anyhow::Result<DirectResult> {
        let tracker = Tracker::start(&self.client, &self.layout, set, false);
        if !tracker.wait_listed(Duration::from_secs(60)).await {
            bail!("secret watch did not list");
        }
        let limiter = Arc::new(Limiter::new(self.cfg.budget.qps, self.cfg.budget.burst));
        // The status writes get a bucket of their own, as an operator's do (client-go: one per kind).
        let status_limiter = Arc::new(Limiter::new(self.cfg.budget.qps, self.cfg.budget.burst));
        let next = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let s0 = self.snap(None).await?;
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..self.cfg.budget.concurrent.max(1) {
            let (limiter, status_limiter) = (limiter.clone(), status_limiter.clone());
            let (next, errors) = (next.clone(), errors.clone());
            let (client, layout, set) = (self.client.clone(), self.layout.clone(), set.clone());
            tasks.push(tokio::spawn(async move {
                let es = workload::es_resource();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= set.n {
                        return;
                    }
                    let s = workload::direct_secret(&layout, &set, i);
                    let ns = set.namespace(&layout, i);
                    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
                    let mut ok = false;
                    for _ in 0..3 {
                        limiter.acquire().await;
                        match api.create(&PostParams::default(), &s).await {
                            Ok(_) => {
                                ok = true;
                                break;
                            }
                            Err(kube::Error::Api(e)) if e.code == 409 => {
                                ok = true;
                                break;
                            }
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    if ok && with_status {
                        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &es);
                        status_limiter.acquire().await;
                        if api
                            .patch_status(
                                &set.name(i),
                                &PatchParams::default(),
                                &Patch::Merge(workload::ready_status(&set.name(i))),
                            )
                            .await
                            .is_err()
                        {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let wall = t0.elapsed().as_secs_f64();
        let seen_ok = tracker.wait_secrets(self.cfg.phase_timeout).await;
        let seen = tracker
            .with(|s| s.done_at)
            .map(|d| d.duration_since(t0).as_secs_f64())
            .unwrap_or(f64::NAN);
        if !seen_ok {
            bail!(
                "direct write: only {} of {} Secrets seen",
                tracker.with(|s| s.secrets_ok),
                set.n
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s1 = self.snap(None).await?;
        Ok(DirectResult {
            n: set.n,
            wall_s: wall,
            seen_s: seen,
            errors: errors.load(Ordering::Relaxed),
            window: self.window(&s0, &s1, &Counts::default()),
        })
    }

    async fn create_external_secrets(&self, set: &Set, store: &str, refresh: Duration) -> anyhow::Result<f64> {
        let es = workload::es_resource();
        let t = Instant::now();
        let failures = bulk((0..set.n).collect(), self.cfg.setup_concurrency, |i| {
            let ns = set.namespace(&self.layout, i);
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &es);
            let o = workload::external_secret(&self.layout, set, i, &ns, store, refresh);
            async move { api.create(&PostParams::default(), &o).await.map(|_| ()) }
        })
        .await;
        if failures > 0 {
            bail!("{failures} ExternalSecrets could not be created");
        }
        Ok(t.elapsed().as_secs_f64())
    }

    async fn apply_store(&self, provider: ProviderKind, name: &str) -> anyhow::Result<()> {
        let manifest = match provider {
            ProviderKind::Fake => workload::fake_store(&self.layout, name, &self.cfg.controller_class),
            ProviderKind::Kubernetes => {
                workload::kubernetes_store(&self.layout, name, &self.cfg.controller_class, &self.server, &self.ca)
            }
        };
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &workload::css_resource());
        api.patch(
            name,
            &PatchParams::apply("syncret-bench").force(),
            &Patch::Apply(&manifest),
        )
        .await?;
        Ok(())
    }

    async fn delete_store(&self, name: &str) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &workload::css_resource());
        let _ = api.delete(name, &DeleteParams::default()).await;
    }

    /// Source Secrets and the token Secret the kubernetes provider reads (once per run).
    async fn kubernetes_sources(&self) -> anyhow::Result<()> {
        let ns = self.layout.source_namespace();
        self.ensure_namespace(&ns).await?;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let token = Secret {
            metadata: ObjectMeta {
                name: Some("bench-token".into()),
                labels: Some([(RUN_LABEL.to_string(), self.layout.run.clone())].into()),
                ..Default::default()
            },
            string_data: Some([("token".to_string(), self.token.clone())].into()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &token).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        let failures = bulk(
            (0..self.layout.source_keys).collect(),
            self.cfg.setup_concurrency,
            |j| {
                let api = api.clone();
                let s = workload::source_secret(&self.layout, j);
                async move { api.create(&PostParams::default(), &s).await.map(|_| ()) }
            },
        )
        .await;
        if failures > 0 {
            bail!("{failures} source Secrets could not be created");
        }
        Ok(())
    }

    async fn scenario(
        &self,
        spec: &OperatorSpec,
        idx: usize,
        provider: ProviderKind,
        refresh: Duration,
    ) -> anyhow::Result<ScenarioResult> {
        let tag = format!("{}{}", (b'a' + idx as u8) as char, &provider.name()[..1]);
        let set = Set {
            tag: tag.clone(),
            provider,
            n: self.cfg.n,
            namespace: None,
        };
        let new_set = Set {
            tag: format!("{tag}n"),
            provider,
            n: self.cfg.new_es,
            namespace: Some(self.layout.new_namespace()),
        };
        let store = workload::store_name(&self.layout.run, &tag);
        let mut r = ScenarioResult {
            operator: spec.name.clone(),
            provider: provider.name().into(),
            n: self.cfg.n,
            refresh_interval_s: refresh.as_secs(),
            ..Default::default()
        };
        self.apply_store(provider, &store).await?;
        let hung_tag = format!("{tag}h");
        if self.cfg.hung > 0 {
            log(
                &self.cfg,
                format!("[{tag}] creating {} ExternalSecrets on a hung store", self.cfg.hung),
            );
            self.create_hung(&hung_tag, refresh).await?;
            r.hung = self.cfg.hung;
        }
        log(&self.cfg, format!("[{tag}] creating {} ExternalSecrets", set.n));
        r.apply_s = self.create_external_secrets(&set, &store, refresh).await?;
        let tracker = Tracker::start(&self.client, &self.layout, &set, true);
        if !tracker.wait_listed(Duration::from_secs(120)).await {
            bail!("watches did not list");
        }
        let new_tracker = Tracker::start(&self.client, &self.layout, &new_set, true);
        if !new_tracker.wait_listed(Duration::from_secs(60)).await {
            bail!("watches did not list");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s0 = self.snap(None).await?;
        let logs = self.cfg.out_dir.join("logs");
        let mut op = operator::spawn(
            spec,
            &self.cfg.budget,
            &self.cfg.controller_class,
            &self.cfg.kubeconfig,
            &logs,
            &tag,
        )?;
        r.command = op.command.clone();
        r.log = op.log.display().to_string();
        let sampler = Sampler::start(op.pid, op.started, Duration::from_millis(250));
        log(&self.cfg, format!("[{tag}] {} started (pid {})", spec.name, op.pid));
        let res = self
            .measure(
                &mut op,
                &sampler,
                &tracker,
                &new_tracker,
                &set,
                &new_set,
                &store,
                refresh,
                &s0,
                &mut r,
            )
            .await;
        if let Err(e) = &res {
            r.error = Some(format!("{e:#}"));
            log(&self.cfg, format!("[{tag}] error: {e:#}\n{}", op.log_tail(20)));
        }
        r.not_ready = tracker.with(|s| s.not_ready.iter().map(|(k, v)| (k.clone(), *v)).collect());
        r.ready = tracker.with(|s| s.ready);
        r.secrets_ok = tracker.with(|s| s.secrets_ok);
        if let Some(p) = procfs::sample(op.pid) {
            r.peak_rss_kib = p.hwm_kib;
            r.cpu_total_s = p.cpu_s;
        } else if let Some(p) = sampler.last() {
            r.peak_rss_kib = p.hwm_kib;
            r.cpu_total_s = p.cpu_s;
        }
        sampler.stop();
        r.rss_timeline = sampler.timeline();
        let metrics = op.scrape().await;
        let _ = std::fs::write(logs.join(format!("{}-{tag}.metrics.txt", spec.name)), metrics);
        drop(tracker);
        drop(new_tracker);
        log(&self.cfg, format!("[{tag}] cleaning up"));
        let cleaned = self.cleanup(&[&tag, &new_set.tag, &hung_tag]).await;
        op.stop(Duration::from_secs(30)).await;
        self.delete_store(&store).await;
        cleaned?;
        Ok(r)
    }

    /// The operator as `--replicas` sharded processes (`--shards`, Leases in a namespace of the run) on a cold
    /// start with N ExternalSecrets: time to all synced, and each replica's peak RSS and CPU. No refresh waves.
    async fn replicas_scenario(&self, spec: &OperatorSpec, provider: ProviderKind) -> anyhow::Result<ScenarioResult> {
        let n_rep = self.cfg.replicas;
        let tag = format!("r{}", &provider.name()[..1]);
        let set = Set {
            tag: tag.clone(),
            provider,
            n: self.cfg.n,
            namespace: None,
        };
        let store = workload::store_name(&self.layout.run, &tag);
        let refresh = Duration::from_secs(3600);
        let mut r = ScenarioResult {
            operator: format!("{} ×{n_rep}", spec.name),
            provider: provider.name().into(),
            n: self.cfg.n,
            refresh_interval_s: refresh.as_secs(),
            ..Default::default()
        };
        self.apply_store(provider, &store).await?;
        log(&self.cfg, format!("[{tag}] creating {} ExternalSecrets", set.n));
        r.apply_s = self.create_external_secrets(&set, &store, refresh).await?;
        let tracker = Tracker::start(&self.client, &self.layout, &set, true);
        if !tracker.wait_listed(Duration::from_secs(120)).await {
            bail!("watches did not list");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s0 = self.snap(None).await?;
        let logs = self.cfg.out_dir.join("logs");
        let mut sharded = spec.clone();
        sharded.args.extend([
            format!("--shards={}", self.cfg.shards),
            format!("--leader-election-id=bench-{}", self.layout.run),
            format!("--leader-election-namespace={}", self.layout.lease_namespace()),
        ]);
        let mut ops = Vec::new();
        for i in 0..n_rep {
            let op = operator::spawn(
                &sharded,
                &self.cfg.budget,
                &self.cfg.controller_class,
                &self.cfg.kubeconfig,
                &logs,
                &format!("{tag}{i}"),
            )?;
            log(&self.cfg, format!("[{tag}] replica {i} started (pid {})", op.pid));
            ops.push(op);
        }
        r.command = ops.first().map(|o| o.command.clone()).unwrap_or_default();
        r.log = ops.first().map(|o| o.log.display().to_string()).unwrap_or_default();
        let started = ops.iter().map(|o| o.started).min().unwrap_or_else(Instant::now);
        let samplers: Vec<Sampler> = ops
            .iter()
            .map(|o| Sampler::start(o.pid, o.started, Duration::from_millis(250)))
            .collect();
        let res = async {
            let deadline = Instant::now() + self.cfg.phase_timeout;
            loop {
                if tracker.wait_complete(Duration::from_millis(500)).await {
                    break;
                }
                if let Some(dead) = ops.iter_mut().position(|o| !o.alive()) {
                    bail!("replica {dead} exited:\n{}", ops[dead].log_tail(30));
                }
                if Instant::now() > deadline {
                    let (ready, ok) = tracker.with(|s| (s.ready, s.secrets_ok));
                    bail!(
                        "not synced after {:?}: {ready}/{} Ready, {ok} Secrets right",
                        self.cfg.phase_timeout,
                        set.n
                    );
                }
            }
            let done = tracker.with(|s| s.done_at).unwrap_or_else(Instant::now);
            r.sync_s = Some(done.duration_since(started).as_secs_f64());
            log(
                &self.cfg,
                format!(
                    "[{tag}] {n_rep} replicas synced {} in {:.1}s",
                    set.n,
                    r.sync_s.unwrap_or_default()
                ),
            );
            let cpu_sync: Vec<f64> = ops
                .iter()
                .map(|o| procfs::sample(o.pid).map(|p| p.cpu_s).unwrap_or_default())
                .collect();
            tokio::time::sleep(self.cfg.settle).await;
            let s1 = self.snap(None).await?;
            let mut w = self.window(&s0, &s1, &Counts::default());
            w.operator_cpu_s = Some(cpu_sync.iter().sum());
            r.sync_window = w;
            r.cpu_sync_s = cpu_sync.iter().sum();
            tokio::time::sleep(self.cfg.settle).await;
            // Placement settles after the sync: a replica that started second takes the shards the first gives
            // back within a retry period or two, then lists their namespaces. Wait (bounded) for every unit to be
            // held once and every ExternalSecret cached by exactly one replica (its unit's holder) before reading
            // the figures: a replica still caching objects of units it gave back shows here.
            let units = self.cfg.shards as usize + 1;
            let settle_until = Instant::now() + Duration::from_secs(30);
            loop {
                let (mut held, mut cached) = (0usize, 0f64);
                for o in &ops {
                    let m = o.scrape().await;
                    held += owned_units(&m);
                    cached += m
                        .lines()
                        .filter(|l| l.starts_with("syncret_shard_external_secrets{"))
                        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                        .sum::<f64>();
                }
                if (held == units && cached == self.cfg.n as f64) || Instant::now() > settle_until {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            for (o, cpu) in ops.iter().zip(&cpu_sync) {
                let p = procfs::sample(o.pid).unwrap_or_default();
                let metrics = o.scrape().await;
                let sum = |family: &str| -> f64 {
                    metrics
                        .lines()
                        .filter(|l| l.starts_with(family) && !l.starts_with('#'))
                        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                        .sum()
                };
                r.replicas.push(ReplicaResult {
                    peak_rss_kib: 0,
                    steady_rss_kib: p.rss_kib,
                    cpu_sync_s: *cpu,
                    cpu_total_s: 0.0,
                    units: owned_units(&metrics),
                    external_secrets: sum("syncret_shard_external_secrets{") as usize,
                    log: o.log.display().to_string(),
                });
            }
            r.steady_rss_kib = r.replicas.iter().map(|x| x.steady_rss_kib).max().unwrap_or(0);
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = &res {
            r.error = Some(format!("{e:#}"));
            log(&self.cfg, format!("[{tag}] error: {e:#}"));
        }
        r.ready = tracker.with(|s| s.ready);
        r.secrets_ok = tracker.with(|s| s.secrets_ok);
        r.not_ready = tracker.with(|s| s.not_ready.iter().map(|(k, v)| (k.clone(), *v)).collect());
        for (i, (o, sampler)) in ops.iter().zip(&samplers).enumerate() {
            let p = procfs::sample(o.pid).or_else(|| sampler.last()).unwrap_or_default();
            if let Some(rep) = r.replicas.get_mut(i) {
                rep.peak_rss_kib = p.hwm_kib;
                rep.cpu_total_s = p.cpu_s;
            }
            sampler.stop();
            let metrics = o.scrape().await;
            let _ = std::fs::write(logs.join(format!("{}-{tag}{i}.metrics.txt", spec.name)), metrics);
        }
        r.peak_rss_kib = r.replicas.iter().map(|x| x.peak_rss_kib).max().unwrap_or(0);
        r.cpu_total_s = r.replicas.iter().map(|x| x.cpu_total_s).sum();
        r.rss_timeline = samplers.first().map(|s| s.timeline()).unwrap_or_default();
        drop(tracker);
        log(&self.cfg, format!("[{tag}] cleaning up"));
        let cleaned = self.cleanup(&[&tag]).await;
        futures::future::join_all(ops.into_iter().map(|o| o.stop(Duration::from_secs(30)))).await;
        self.delete_store(&store).await;
        cleaned?;
        Ok(r)
    }

    #[allow(clippy::too_many_arguments)]
    async fn measure(
        &self,
        op: &mut operator::Running,
        sampler: &Sampler,
        tracker: &Tracker,
        new_tracker: &Tracker,
        set: &Set,
        new_set: &Set,
        store: &str,
        refresh: Duration,
        s0: &Snap,
        r: &mut ScenarioResult,
    ) -> anyhow::Result<()> {
        let n = set.n;
        let timeout = self.cfg.phase_timeout;
        // 1. Cold start to everything synced.
        let deadline = Instant::now() + timeout;
        loop {
            if tracker.wait_complete(Duration::from_millis(500)).await {
                break;
            }
            if !op.alive() {
                bail!("operator exited:\n{}", op.log_tail(30));
            }
            if Instant::now() > deadline {
                let (ready, ok) = tracker.with(|s| (s.ready, s.secrets_ok));
                bail!("not synced after {timeout:?}: {ready}/{n} Ready, {ok}/{n} Secrets right");
            }
        }
        let done = tracker.with(|s| s.done_at).unwrap_or_else(Instant::now);
        r.sync_s = Some(done.duration_since(op.started).as_secs_f64());
        r.cpu_sync_s = procfs::sample(op.pid).map(|p| p.cpu_s).unwrap_or_default();
        log(
            &self.cfg,
            format!("[{}] synced {n} in {:.1}s", set.tag, r.sync_s.unwrap_or_default()),
        );
        // Late requests of the sync (events, status) land within a few seconds.
        tokio::time::sleep(self.cfg.settle).await;
        let s1 = self.snap(Some(op.pid)).await?;
        let mut w = self.window(s0, &s1, &Counts::default());
        w.operator_cpu_s = s1.op.map(|p| p.cpu_s);
        r.sync_window = w;
        tokio::time::sleep(self.cfg.settle).await;
        r.steady_rss_kib = procfs::sample(op.pid).map(|p| p.rss_kib).unwrap_or_default();
        if !self.cfg.waves {
            return Ok(());
        }
        // 2. A quiet refresh wave: every ExternalSecret refreshes once with unchanged values.
        let wave_timeout = refresh + Duration::from_secs_f64(r.sync_s.unwrap_or(0.0) * 3.0) + Duration::from_secs(120);
        let w0 = self.snap(Some(op.pid)).await?;
        let t_wait = Instant::now();
        tracker.begin_wave();
        log(
            &self.cfg,
            format!(
                "[{}] waiting for refresh wave 1 (refreshInterval {}s)",
                set.tag,
                refresh.as_secs()
            ),
        );
        let complete = tracker.wait(wave_timeout, |s| s.wave_refreshed == n).await;
        tokio::time::sleep(self.cfg.settle).await;
        let w1 = self.snap(Some(op.pid)).await?;
        tracker.end_wave();
        let (first, last, refreshed, writes) =
            tracker.with(|s| (s.wave_first, s.wave_last, s.wave_refreshed, s.secret_writes));
        let window = self.window(&w0, &w1, &Counts::default());
        let wave = WaveResult {
            started_after_s: first
                .map(|f| f.duration_since(t_wait).as_secs_f64())
                .unwrap_or(f64::NAN),
            duration_s: match (first, last) {
                (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
                _ => f64::NAN,
            },
            refreshed,
            complete,
            secret_writes_api: window.secret_writes,
            secret_writes_watch: writes,
            window,
        };
        log(
            &self.cfg,
            format!(
                "[{}] wave 1: {refreshed}/{n} refreshed in {:.1}s, {} Secret writes",
                set.tag, wave.duration_s, wave.secret_writes_api
            ),
        );
        let wave1_len = wave.duration_s;
        r.wave = Some(wave);
        if self.cfg.new_es == 0 || !complete {
            return Ok(());
        }
        // 3. Wave 2, and new ExternalSecrets created while it runs: create → Ready.
        tracker.begin_wave();
        let t_wait = Instant::now();
        log(&self.cfg, format!("[{}] waiting for refresh wave 2", set.tag));
        if !tracker.wait(wave_timeout, |s| s.wave_refreshed > 0).await {
            bail!("wave 2 did not start");
        }
        let spacing = Duration::from_secs_f64((wave1_len / self.cfg.new_es as f64).clamp(0.01, 1.0));
        let es = workload::es_resource();
        let ns = self.layout.new_namespace();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &es);
        let mut created = Vec::new();
        let mut during = 0usize;
        for i in 0..new_set.n {
            let in_wave = tracker.with(|s| s.wave_refreshed < n);
            if !in_wave && i > 0 {
                break;
            }
            let o = workload::external_secret(&self.layout, new_set, i, &ns, store, refresh);
            let t = Instant::now();
            api.create(&PostParams::default(), &o).await?;
            created.push((i, t));
            if tracker.with(|s| s.wave_refreshed < n) {
                during += 1;
            }
            tokio::time::sleep(spacing).await;
        }
        let count = created.len();
        new_tracker
            .wait(Duration::from_secs(120), move |s| s.ready >= count)
            .await;
        let complete = tracker.wait(wave_timeout, |s| s.wave_refreshed == n).await;
        let (first, last, refreshed, writes) =
            tracker.with(|s| (s.wave_first, s.wave_last, s.wave_refreshed, s.secret_writes));
        tracker.end_wave();
        let mut lat: Vec<f64> = created
            .iter()
            .filter_map(|(i, t)| {
                new_tracker
                    .ready_at(*i)
                    .map(|r| r.duration_since(*t).as_secs_f64() * 1000.0)
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        r.new_es = Some(LatencyResult {
            created: created.len(),
            created_during_wave: during,
            ready: lat.len(),
            p50_ms: percentile(&lat, 50.0),
            p99_ms: percentile(&lat, 99.0),
            max_ms: lat.last().copied(),
            wave: WaveResult {
                started_after_s: first
                    .map(|f| f.duration_since(t_wait).as_secs_f64())
                    .unwrap_or(f64::NAN),
                duration_s: match (first, last) {
                    (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
                    _ => f64::NAN,
                },
                refreshed,
                complete,
                secret_writes_api: f64::NAN,
                secret_writes_watch: writes,
                window: Window::default(),
            },
            latencies_ms: lat,
        });
        let _ = sampler;
        Ok(())
    }
}

/// Applies CRD manifests (files or directories of YAML). `only_missing`: skip CRDs that already exist.
async fn install_crds(client: &Client, paths: &[PathBuf], only_missing: bool) -> anyhow::Result<Vec<String>> {
    let ar = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    let mut names = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: serde_json::Value = match serde::Deserialize::deserialize(doc) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if v["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let Some(name) = v["metadata"]["name"].as_str().map(str::to_string) else {
                continue;
            };
            if only_missing && api.get_opt(&name).await?.is_some() {
                continue;
            }
            api.patch(&name, &PatchParams::apply("syncret-bench").force(), &Patch::Apply(&v))
                .await
                .with_context(|| format!("applying CRD {name} from {}", f.display()))?;
            names.push(name);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in &names {
        loop {
            let crd = api.get(name).await?;
            let ok = crd.data["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} not Established");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(names)
}

/// Runs the whole benchmark.
pub async fn run(cfg: Config) -> anyhow::Result<Report> {
    let start = Instant::now();
    let kc = Kubeconfig::read_from(&cfg.kubeconfig)?;
    let cluster = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| anyhow!("no cluster in kubeconfig"))?;
    let server = cluster
        .server
        .clone()
        .ok_or_else(|| anyhow!("no server in kubeconfig"))?;
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster.certificate_authority_data.clone().unwrap_or_default())?;
    // The admin token, for the kubernetes provider's store (read from the file: kube keeps it secret).
    let token = {
        let text = std::fs::read_to_string(&cfg.kubeconfig)?;
        let v: serde_yaml::Value = serde_yaml::from_str(&text)?;
        v["users"][0]["user"]["token"].as_str().unwrap_or_default().to_string()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = Client::try_from(config)?;
    let run_id = {
        let t = chrono::Utc::now().timestamp_millis() as u64 ^ u64::from(std::process::id());
        format!("{:05x}", t & 0xfffff)
    };
    let layout = Layout {
        run: run_id,
        n: cfg.n,
        namespaces: cfg.namespaces.max(1),
        value_size: cfg.value_size,
        fake_keys: cfg.fake_keys.clamp(1, cfg.n.max(1)),
        source_keys: cfg.n.max(1),
    };
    let cp = cfg
        .controlplane_env
        .as_deref()
        .and_then(read_env_pids)
        .or_else(|| cfg.kubeconfig.parent().and_then(|d| read_env_pids(&d.join("env"))));
    std::fs::create_dir_all(&cfg.out_dir)?;
    let mut report = Report {
        n: cfg.n,
        namespaces: layout.namespaces,
        value_size: cfg.value_size,
        budget: Some(cfg.budget),
        machine: machine_now(),
        operators: cfg.operators.clone(),
        shards: cfg.shards,
        controlplane_pids: cp,
        ..Default::default()
    };
    let b = Bench {
        cfg: cfg.clone(),
        client,
        layout,
        cp,
        server,
        ca,
        token,
        start,
        hung_origin: if cfg.hung > 0 {
            Some(start_hung_listener().await?)
        } else {
            None
        },
    };
    log(
        &cfg,
        format!("run {} on {}, control plane pids {cp:?}", b.layout.run, b.server),
    );
    if !cfg.crds.is_empty() {
        install_crds(&b.client, &cfg.crds, false).await?;
    }
    if !cfg.extra_crds.is_empty() {
        let added = install_crds(&b.client, &cfg.extra_crds, true).await?;
        log(&cfg, format!("installed {} extra CRDs", added.len()));
    }
    for ns in b.all_namespaces() {
        b.ensure_namespace(&ns).await?;
    }
    // The direct-write limit.
    log(&cfg, format!("direct write of {} Secrets", cfg.n));
    let dw = Set {
        tag: "dw".into(),
        provider: ProviderKind::Fake,
        n: cfg.n,
        namespace: None,
    };
    report.direct = b.direct_write(&dw, false).await?;
    log(
        &cfg,
        format!(
            "direct write: {:.2}s ({:.0}/s)",
            report.direct.wall_s,
            cfg.n as f64 / report.direct.wall_s
        ),
    );
    b.cleanup(&["dw"]).await?;
    if cfg.floor {
        let fl = Set {
            tag: "fl".into(),
            provider: ProviderKind::Fake,
            n: cfg.n,
            namespace: None,
        };
        b.create_external_secrets(&fl, "bench-nobody", Duration::from_secs(3600))
            .await?;
        log(&cfg, format!("floor: {} Secrets + {} status writes", cfg.n, cfg.n));
        report.floor = Some(b.direct_write(&fl, true).await?);
        b.cleanup(&["fl"]).await?;
    }
    let base = report
        .floor
        .as_ref()
        .map(|f| f.wall_s)
        .unwrap_or(report.direct.wall_s * 2.0);
    let refresh = cfg.refresh_interval.unwrap_or_else(|| {
        let s = (base * 3.0 + 30.0).clamp(60.0, 900.0);
        Duration::from_secs(((s / 10.0).ceil() * 10.0) as u64)
    });
    report.refresh_interval_s = refresh.as_secs();
    let mut sources = false;
    for &provider in &cfg.providers {
        if provider == ProviderKind::Kubernetes && !sources {
            log(&cfg, format!("creating {} source Secrets", b.layout.source_keys));
            b.kubernetes_sources().await?;
            sources = true;
        }
        for (idx, spec) in cfg.operators.iter().enumerate() {
            let res = b.scenario(spec, idx, provider, refresh).await;
            match res {
                Ok(r) => report.scenarios.push(r),
                Err(e) => report.scenarios.push(ScenarioResult {
                    operator: spec.name.clone(),
                    provider: provider.name().into(),
                    n: cfg.n,
                    error: Some(format!("{e:#}")),
                    ..Default::default()
                }),
            }
            let _ = std::fs::write(cfg.out_dir.join("report.json"), serde_json::to_vec_pretty(&report)?);
            // The same operator as sharded replicas, right after its single-process run.
            if idx == 0 && cfg.replicas > 1 {
                let name = format!("{} ×{}", spec.name, cfg.replicas);
                let res = b.replicas_scenario(spec, provider).await;
                report.scenarios.push(res.unwrap_or_else(|e| ScenarioResult {
                    operator: name,
                    provider: provider.name().into(),
                    n: cfg.n,
                    error: Some(format!("{e:#}")),
                    ..Default::default()
                }));
                let _ = std::fs::write(cfg.out_dir.join("report.json"), serde_json::to_vec_pretty(&report)?);
            }
        }
    }
    // Leave nothing behind: the namespaces go (the namespace controller finishes in the background).
    let api: Api<Namespace> = Api::all(b.client.clone());
    let mut nss = b.all_namespaces();
    nss.push(b.layout.source_namespace());
    for ns in nss {
        let _ = api.delete(&ns, &DeleteParams::default()).await;
    }
    let _ = b.start;
    report.machine.load_end = procfs::loadavg();
    report.machine.busy_end = procfs::busy_neighbours();
    report.total_s = start.elapsed().as_secs_f64();
    std::fs::write(cfg.out_dir.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

/// Units (shards and the cluster unit) a replica holds, from its `/metrics` text.
fn owned_units(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("syncret_shard_owned{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .filter(|v| *v >= 1.0)
        .count()
}
