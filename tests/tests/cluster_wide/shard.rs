//! Sharded active-active replicas: three real syncret processes with `--shards` on the test control plane.
//!
//! Every ExternalSecret is synced by exactly one replica, once per refresh: counted from the resourceVersions the
//! apiserver gives each ExternalSecret status write and each Secret write (a second writer shows as writes closer
//! together than a refresh interval, or as a Secret written again). A killed replica's shards are taken over and
//! its ExternalSecrets synced again within the lease duration + 5 s; scaling 3 → 2 → 3 loses nothing and leaves
//! no shard without a holder for as long as a lease duration.
//!
//! The processes watch every namespace (sharding splits namespaces), so they run with a controller class of
//! their own and without the cluster-scoped ClusterExternalSecret/ClusterPushSecret controllers, which other
//! tests run in this binary at the same time.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use syncret_crds::ExternalSecret;
use syncret_tests::process::SyncretProcess;
use syncret_tests::{ControlPlane, TestNamespace, eventually, unique_name};

const SHARDS: u32 = 6;
const LEASE: Duration = Duration::from_secs(4);
const RENEW: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_millis(500);
/// The ExternalSecrets' refreshInterval.
const REFRESH: Duration = Duration::from_secs(5);
const NAMESPACES: usize = 8;
const PER_NAMESPACE: usize = 5;
/// Label on every object of one test, for its watches.
const RUN_LABEL: &str = "shard-test";

fn args(class: &str, lease: &str, lease_ns: &str) -> Vec<String> {
    vec![
        format!("--shards={SHARDS}"),
        format!("--controller-class={class}"),
        format!("--leader-election-id={lease}"),
        format!("--leader-election-namespace={lease_ns}"),
        format!("--leader-election-lease-duration={}ms", LEASE.as_millis()),
        format!("--leader-election-renew-deadline={}ms", RENEW.as_millis()),
        format!("--leader-election-retry-period={}ms", RETRY.as_millis()),
        "--enable-cluster-external-secret-reconciler=false".into(),
        "--enable-cluster-push-secret-reconciler=false".into(),
        "--enable-push-secret-reconciler=false".into(),
        "--client-qps=0".into(),
        std::env::var("SHARD_TEST_LOGLEVEL")
            .map(|l| format!("--loglevel={l}"))
            .unwrap_or_else(|_| "--loglevel=info".into()),
    ]
}

/// The replicas and their Leases.
struct Replicas {
    procs: Vec<SyncretProcess>,
    argv: Vec<String>,
    lease: String,
    lease_ns: TestNamespace,
}

impl Replicas {
    async fn start(cp: &ControlPlane, class: &str, names: &[&str]) -> anyhow::Result<Replicas> {
        let lease_ns = cp.namespace("shard-leases").await?;
        let lease = unique_name("shards");
        let argv = args(class, &lease, &lease_ns.name);
        let mut r = Replicas {
            procs: Vec::new(),
            argv,
            lease,
            lease_ns,
        };
        for n in names {
            r.spawn(cp, n).await?;
        }
        Ok(r)
    }

    async fn spawn(&mut self, cp: &ControlPlane, name: &str) -> anyhow::Result<()> {
        let mut p = SyncretProcess::spawn(name, cp.kubeconfig(), &self.argv)?;
        p.wait_ready(Duration::from_secs(60)).await?;
        self.procs.push(p);
        Ok(())
    }

    /// Unit Lease name → holder identity ("" when released), for the units of this test.
    async fn holders(&self) -> BTreeMap<String, String> {
        let api: Api<Lease> = self.lease_ns.api();
        let Ok(list) = api.list(&ListParams::default()).await else {
            return BTreeMap::new();
        };
        list.items
            .into_iter()
            .filter(|l| {
                let n = l.name_any();
                n == self.lease || n.starts_with(&format!("{}-shard-", self.lease))
            })
            .map(|l| {
                let h = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                (l.metadata.name.unwrap_or_default(), h)
            })
            .collect()
    }

    /// The process (by name) holding the Lease of shard `i`.
    async fn holder_of_shard(&self, i: u32) -> Option<String> {
        let h = self.holders().await.remove(&format!("{}-shard-{i}", self.lease))?;
        self.procs
            .iter()
            .find(|p| h.starts_with(&format!("{}_", p.name)))
            .map(|p| p.name.clone())
    }

    /// Waits until every unit is held by a running process and each holds at least `min` units; returns
    /// process name → units held.
    async fn settled(&mut self, min: usize) -> anyhow::Result<BTreeMap<String, usize>> {
        let names: Vec<String> = self
            .procs
            .iter_mut()
            .filter_map(|p| p.exit_status().is_none().then(|| p.name.clone()))
            .collect();
        let this = &*self;
        eventually(
            Duration::from_secs(40),
            "every unit held, spread over the replicas",
            || {
                let names = names.clone();
                async move {
                    let holders = this.holders().await;
                    if holders.len() != SHARDS as usize + 1 {
                        return None;
                    }
                    let mut per: BTreeMap<String, usize> = names.iter().map(|n| (n.clone(), 0)).collect();
                    for h in holders.values() {
                        let n = names.iter().find(|n| h.starts_with(&format!("{n}_")))?;
                        *per.entry(n.clone()).or_default() += 1;
                    }
                    per.values().all(|c| *c >= min).then_some(per)
                }
            },
        )
        .await
    }

    fn by_name(&mut self, name: &str) -> &mut SyncretProcess {
        self.procs
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }
}

/// Writes seen by the apiserver: per object, the time and resourceVersion of every change.
#[derive(Default)]
struct Writes {
    /// ExternalSecret status writes (a new resourceVersion once the status exists).
    es: HashMap<String, Vec<Instant>>,
    /// Secret writes (any new resourceVersion).
    secrets: HashMap<String, Vec<Instant>>,
}

/// Watches the test's ExternalSecrets and Secrets and records their writes.
fn track(client: kube::Client, run: &str) -> Arc<Mutex<Writes>> {
    let writes = Arc::new(Mutex::new(Writes::default()));
    let sel = format!("{RUN_LABEL}={run}");
    let w = writes.clone();
    let es_api: Api<ExternalSecret> = Api::all(client.clone());
    let es_cfg = watcher::Config::default().labels(&sel);
    tokio::spawn(async move {
        let mut last: HashMap<String, String> = HashMap::new();
        let mut s = std::pin::pin!(watcher::watcher(es_api, es_cfg));
        while let Some(ev) = s.next().await {
            let Ok(watcher::Event::Apply(es) | watcher::Event::InitApply(es)) = ev else {
                continue;
            };
            let key = format!("{}/{}", es.namespace().unwrap_or_default(), es.name_any());
            // Every new resourceVersion once the status exists is a status write (nothing else changes them).
            let rv = es.resource_version().unwrap_or_default();
            let synced = es.status.as_ref().is_some_and(|s| s.refresh_time.is_some());
            if !synced || last.get(&key) == Some(&rv) {
                continue;
            }
            last.insert(key.clone(), rv);
            w.lock().unwrap().es.entry(key).or_default().push(Instant::now());
        }
    });
    let w = writes.clone();
    let secret_api: Api<Secret> = Api::all(client);
    let secret_cfg = watcher::Config::default().labels(&sel);
    tokio::spawn(async move {
        let mut last: HashMap<String, String> = HashMap::new();
        let mut s = std::pin::pin!(watcher::watcher(secret_api, secret_cfg));
        while let Some(ev) = s.next().await {
            let Ok(watcher::Event::Apply(sec) | watcher::Event::InitApply(sec)) = ev else {
                continue;
            };
            let key = format!("{}/{}", sec.namespace().unwrap_or_default(), sec.name_any());
            let rv = sec.resource_version().unwrap_or_default();
            if last.get(&key) == Some(&rv) {
                continue;
            }
            last.insert(key.clone(), rv);
            w.lock().unwrap().secrets.entry(key).or_default().push(Instant::now());
        }
    });
    writes
}

/// The test's namespaces, each with a fake SecretStore (value `value`) and ExternalSecrets `es-0`…
struct Workload {
    namespaces: Vec<TestNamespace>,
    class: String,
    run: String,
}

impl Workload {
    async fn create(cp: &ControlPlane, class: &str, run: &str) -> anyhow::Result<Workload> {
        let mut namespaces = Vec::new();
        for _ in 0..NAMESPACES {
            namespaces.push(cp.namespace("shard").await?);
        }
        let w = Workload {
            namespaces,
            class: class.to_string(),
            run: run.to_string(),
        };
        for ns in &w.namespaces {
            w.store(ns, "v1").await?;
            for i in 0..PER_NAMESPACE {
                w.es(ns, &format!("es-{i}")).await?;
            }
        }
        Ok(w)
    }

    async fn store(&self, ns: &TestNamespace, value: &str) -> anyhow::Result<()> {
        let yaml = format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: fake}}\nspec:\n  controller: {}\n  provider: {{fake: {{data: [{{key: token, value: {value}}}]}}}}\n",
            self.class
        );
        syncret_tests::apply_yaml(&ns.api::<syncret_crds::SecretStore>(), &yaml).await?;
        Ok(())
    }

    async fn es(&self, ns: &TestNamespace, name: &str) -> anyhow::Result<()> {
        let yaml = format!(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: {name}, labels: {{{RUN_LABEL}: {run}}}}}
spec:
  refreshInterval: {refresh}s
  secretStoreRef: {{name: fake, kind: SecretStore}}
  target:
    name: {name}
    template: {{metadata: {{labels: {{{RUN_LABEL}: {run}}}}}}}
  data: [{{secretKey: token, remoteRef: {{key: token}}}}]
"#,
            run = self.run,
            refresh = REFRESH.as_secs()
        );
        syncret_tests::apply_yaml(&ns.api::<ExternalSecret>(), &yaml).await?;
        Ok(())
    }

    /// Every `namespace/name` of an ExternalSecret created so far, and its Secret's expected token.
    async fn synced(&self, names: &[String], token: &str) -> bool {
        for ns in &self.namespaces {
            let api: Api<Secret> = ns.api();
            for name in names {
                let ok = api.get_opt(name).await.ok().flatten().is_some_and(|s| {
                    s.data
                        .as_ref()
                        .and_then(|d| d.get("token"))
                        .is_some_and(|v| v.0 == token.as_bytes())
                });
                if !ok {
                    return false;
                }
            }
        }
        true
    }

    /// Waits until every ExternalSecret `names` of every namespace has its Secret with `token`.
    async fn wait_synced(&self, names: &[String], token: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let t = Instant::now();
        eventually(
            timeout,
            &format!("{} Secrets with {token}", names.len() * self.namespaces.len()),
            || async { self.synced(names, token).await.then_some(()) },
        )
        .await?;
        Ok(t.elapsed())
    }
}

fn es_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("es-{i}")).collect()
}

/// Status writes of each ExternalSecret after `since`, and the shortest gap between two of them.
fn refreshes_after(writes: &Writes, since: Instant) -> (BTreeMap<String, usize>, Duration) {
    let mut counts = BTreeMap::new();
    let mut min_gap = Duration::MAX;
    for (k, ts) in &writes.es {
        let after: Vec<&Instant> = ts.iter().filter(|t| **t >= since).collect();
        counts.insert(k.clone(), after.len());
        for pair in ts.windows(2) {
            if pair[0] >= since {
                min_gap = min_gap.min(pair[1].duration_since(pair[0]));
            }
        }
    }
    (counts, min_gap)
}

/// The shortest gap that is still one refresh: the interval less its 10% jitter and some slack for a loaded
/// machine. Two replicas syncing one ExternalSecret would write it twice within a refresh.
fn one_refresh() -> Duration {
    REFRESH.mul_f64(0.9) - Duration::from_millis(800)
}

#[tokio::test]
async fn three_replicas_sync_every_external_secret_exactly_once_per_refresh() -> anyhow::Result<()> {
    let _serial = super::SERIAL.lock().await;
    let cp = ControlPlane::shared().await?;
    let class = unique_name("class");
    let run = unique_name("run");
    let mut reps = Replicas::start(cp, &class, &["a", "b", "c"]).await?;
    let spread = reps.settled(2).await?;
    let writes = track(cp.client().await?, &run);
    let w = Workload::create(cp, &class, &run).await?;
    let names = es_names(PER_NAMESPACE);
    let took = w.wait_synced(&names, "v1", Duration::from_secs(60)).await?;
    let n = NAMESPACES * PER_NAMESPACE;

    // Three refresh intervals of steady state.
    let since = Instant::now();
    tokio::time::sleep(REFRESH * 3 + Duration::from_secs(1)).await;
    let (counts, min_gap) = refreshes_after(&writes.lock().unwrap(), since);
    assert_eq!(counts.len(), n, "every ExternalSecret was written");
    for (k, c) in &counts {
        assert!((2..=4).contains(c), "{k}: {c} status writes in 3 refresh intervals");
    }
    assert!(
        min_gap >= one_refresh(),
        "two status writes {min_gap:?} apart: two replicas synced one ExternalSecret"
    );
    {
        let w = writes.lock().unwrap();
        for (k, ts) in &w.secrets {
            assert_eq!(
                ts.len(),
                1,
                "Secret {k} written {} times with unchanged values",
                ts.len()
            );
        }
        assert_eq!(w.secrets.len(), n);
    }

    // Each ExternalSecret's series are exported by exactly one replica; store validation by the cluster unit's.
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut store_reporters = 0;
    for p in &reps.procs {
        let s = p.scrape().await?;
        for ns in &w.namespaces {
            for name in &names {
                if s.find(
                    "externalsecret_sync_calls_total",
                    &[("namespace", &ns.name), ("name", name)],
                )
                .next()
                .is_some()
                {
                    owners
                        .entry(format!("{}/{name}", ns.name))
                        .or_default()
                        .push(p.name.clone());
                }
            }
        }
        if s.find("secretstore_status_condition", &[("namespace", &w.namespaces[0].name)])
            .next()
            .is_some()
        {
            store_reporters += 1;
        }
        assert_eq!(
            s.value("syncret_shard_members", &[]),
            Some(3.0),
            "{} sees 3 members",
            p.name
        );
        // What the dashboard's Shards row queries.
        for family in [
            "syncret_shards",
            "syncret_shard_owned",
            "syncret_shard_transitions_total",
            "syncret_shard_reconciles_total",
            "syncret_shard_external_secrets",
        ] {
            assert!(s.has_family(family), "{} exports {family}", p.name);
        }
    }
    assert_eq!(owners.len(), n);
    for (k, o) in &owners {
        assert_eq!(o.len(), 1, "{k} synced by {o:?}");
    }
    assert_eq!(store_reporters, 1, "stores are validated by one replica");
    let per_replica: BTreeMap<&String, usize> = owners.values().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(&o[0]).or_default() += 1;
        m
    });

    // A new value: every Secret is written exactly once more.
    let changed = Instant::now();
    for ns in &w.namespaces {
        w.store(ns, "v2").await?;
    }
    w.wait_synced(&names, "v2", Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let wr = writes.lock().unwrap();
        for (k, ts) in &wr.secrets {
            let after = ts.iter().filter(|t| **t >= changed).count();
            assert_eq!(after, 1, "Secret {k} written {after} times for one change of value");
        }
    }
    eprintln!(
        "3 replicas, {SHARDS} shards: units {spread:?}; {n} ExternalSecrets synced in {took:?}, by replica \
         {per_replica:?}; status writes per ExternalSecret in 3 intervals {:?}..{:?}, shortest gap {min_gap:?}",
        counts.values().min(),
        counts.values().max()
    );
    Ok(())
}

#[tokio::test]
async fn a_killed_replicas_external_secrets_resume_within_the_lease_duration() -> anyhow::Result<()> {
    let _serial = super::SERIAL.lock().await;
    let cp = ControlPlane::shared().await?;
    let class = unique_name("class");
    let run = unique_name("run");
    let mut reps = Replicas::start(cp, &class, &["a", "b", "c"]).await?;
    reps.settled(2).await?;
    let writes = track(cp.client().await?, &run);
    let w = Workload::create(cp, &class, &run).await?;
    let names = es_names(PER_NAMESPACE);
    w.wait_synced(&names, "v1", Duration::from_secs(60)).await?;

    // The namespaces whose shard the victim holds.
    let victim = reps
        .holder_of_shard(syncret::shard::shard_of(&w.namespaces[0].name, SHARDS))
        .await
        .ok_or_else(|| anyhow::anyhow!("no holder of the first namespace's shard"))?;
    let mut orphaned = Vec::new();
    for ns in &w.namespaces {
        if reps
            .holder_of_shard(syncret::shard::shard_of(&ns.name, SHARDS))
            .await
            .as_deref()
            == Some(&victim)
        {
            orphaned.push(ns);
        }
    }
    let killed = Instant::now();
    reps.by_name(&victim).kill()?;
    // A new ExternalSecret in each orphaned namespace, created right after the kill.
    for ns in &orphaned {
        w.es(ns, "late").await?;
    }
    let bound = LEASE + Duration::from_secs(5);
    let mut resumed = Duration::ZERO;
    for ns in &orphaned {
        let api: Api<Secret> = ns.api();
        eventually(
            bound + Duration::from_secs(10),
            &format!("Secret late in {}", ns.name),
            || async { api.get_opt("late").await.ok().flatten().map(|_| ()) },
        )
        .await?;
        resumed = resumed.max(killed.elapsed());
    }
    assert!(
        resumed <= bound,
        "the killed replica's ExternalSecrets resumed after {resumed:?} (bound: lease {LEASE:?} + 5 s)"
    );
    // Its existing ExternalSecrets refresh again (the next refresh after the takeover).
    tokio::time::sleep(REFRESH + Duration::from_secs(1)).await;
    let (counts, min_gap) = refreshes_after(&writes.lock().unwrap(), killed + LEASE);
    for ns in &orphaned {
        for name in &names {
            let k = format!("{}/{name}", ns.name);
            assert!(
                counts.get(&k).copied().unwrap_or(0) >= 1,
                "{k} not refreshed after the takeover"
            );
        }
    }
    assert!(
        min_gap >= one_refresh(),
        "status writes {min_gap:?} apart after the takeover"
    );
    eprintln!(
        "SIGKILL of {victim} (held the shards of {} of {NAMESPACES} namespaces): new ExternalSecrets there synced \
         {resumed:?} after the kill (lease duration {LEASE:?}, renew deadline {RENEW:?}, retry {RETRY:?})",
        orphaned.len()
    );
    Ok(())
}

/// Polls the unit Leases every 100 ms and records, per unit, the longest time it had no live holder (released,
/// or held by a process that has exited).
fn watch_gaps(
    reps: &Replicas,
    live: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<BTreeMap<String, Duration>> {
    let api: Api<Lease> = reps.lease_ns.api();
    let lease = reps.lease.clone();
    tokio::spawn(async move {
        let mut without: BTreeMap<String, Instant> = BTreeMap::new();
        let mut longest: BTreeMap<String, Duration> = BTreeMap::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(list) = api.list(&ListParams::default()).await {
                let live = live.lock().unwrap().clone();
                for l in list.items {
                    let n = l.name_any();
                    if n != lease && !n.starts_with(&format!("{lease}-shard-")) {
                        continue;
                    }
                    let h = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                    let held = live.iter().any(|p| h.starts_with(&format!("{p}_")));
                    if held {
                        if let Some(since) = without.remove(&n) {
                            let g = longest.entry(n).or_default();
                            *g = (*g).max(since.elapsed());
                        }
                    } else {
                        without.entry(n).or_insert_with(Instant::now);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (n, since) in without {
            let g = longest.entry(n).or_default();
            *g = (*g).max(since.elapsed());
        }
        longest
    })
}

#[tokio::test]
async fn scaling_three_to_two_to_three_loses_nothing() -> anyhow::Result<()> {
    let _serial = super::SERIAL.lock().await;
    let cp = ControlPlane::shared().await?;
    let class = unique_name("class");
    let run = unique_name("run");
    let mut reps = Replicas::start(cp, &class, &["a", "b", "c"]).await?;
    reps.settled(2).await?;
    let writes = track(cp.client().await?, &run);
    let w = Workload::create(cp, &class, &run).await?;
    let mut names = es_names(PER_NAMESPACE);
    w.wait_synced(&names, "v1", Duration::from_secs(60)).await?;

    let live = Arc::new(Mutex::new(BTreeSet::from(["a".to_string(), "b".into(), "c".into()])));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gaps = watch_gaps(&reps, live.clone(), stop.clone());

    // 3 → 2: c leaves gracefully (SIGTERM, as a scale-in does).
    let t = Instant::now();
    reps.by_name("c").terminate()?;
    let status = eventually(Duration::from_secs(35), "c exits", || {
        let s = reps.by_name("c").exit_status();
        async move { s }
    })
    .await?;
    live.lock().unwrap().remove("c");
    assert!(status.success(), "c exits 0 on SIGTERM:\n{}", reps.by_name("c").log());
    let two = reps.settled(3).await?;
    let scale_in = t.elapsed();
    for ns in &w.namespaces {
        w.es(ns, "after-in").await?;
    }
    names.push("after-in".into());
    w.wait_synced(&names, "v1", Duration::from_secs(30)).await?;

    // 2 → 3: d joins; the units are spread again.
    let t = Instant::now();
    live.lock().unwrap().insert("d".into());
    reps.spawn(cp, "d").await?;
    let three = reps.settled(2).await?;
    let scale_out = t.elapsed();
    let out_at = Instant::now();
    for ns in &w.namespaces {
        w.es(ns, "after-out").await?;
    }
    names.push("after-out".into());
    w.wait_synced(&names, "v1", Duration::from_secs(30)).await?;

    // Every ExternalSecret, old and new, refreshes after the last move, and none was written twice at once.
    tokio::time::sleep(REFRESH + Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let gaps = gaps.await?;
    let wr = writes.lock().unwrap();
    let (counts, min_gap) = refreshes_after(&wr, out_at);
    for ns in &w.namespaces {
        for name in &names {
            let k = format!("{}/{name}", ns.name);
            assert!(
                counts.get(&k).copied().unwrap_or(0) >= 1,
                "{k} not synced or refreshed after scaling out"
            );
        }
    }
    let whole_gap = wr
        .es
        .values()
        .flat_map(|ts| ts.windows(2).map(|p| p[1].duration_since(p[0])))
        .min()
        .unwrap_or(Duration::MAX);
    assert!(
        whole_gap.min(min_gap) >= one_refresh(),
        "status writes {whole_gap:?} apart: a shard was synced by two replicas during a move"
    );
    for (k, ts) in &wr.secrets {
        assert_eq!(ts.len(), 1, "Secret {k} written {} times (unchanged values)", ts.len());
    }
    let longest = gaps.values().max().copied().unwrap_or_default();
    assert!(
        longest < LEASE,
        "a unit had no live holder for {longest:?} (lease duration {LEASE:?}): {gaps:?}"
    );
    eprintln!(
        "scale 3→2 (SIGTERM) settled in {scale_in:?} with units {two:?}; 2→3 in {scale_out:?} with {three:?}; \
         longest time a unit had no live holder {longest:?}"
    );
    Ok(())
}
