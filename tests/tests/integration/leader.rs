//! Leader election with two real syncret processes against the real control plane: exactly one syncs; killing
//! it (SIGKILL) hands over within the lease duration; SIGTERM releases the Lease for an immediate handover; a
//! leader cut off from the apiserver stops (and exits) before anyone else can take over.
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use syncret_tests::operator::Operator;
use syncret_tests::process::{SyncretProcess, kubeconfig_via};
use syncret_tests::proxy::{Mode, Proxy};
use syncret_tests::{ControlPlane, TestNamespace, eventually, unique_name};

/// Child mode: the processes the tests below spawn run syncret here (see `syncret_tests::process`).
#[test]
#[ignore = "runs syncret when this binary is started as a child process by the leader tests"]
fn syncret_process() {
    syncret_tests::process::run_child();
}

/// The tests measure timings: they run one at a time (each starts processes of its own).
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Lease timings of these tests: short, so a failover takes seconds.
struct Timings {
    lease: Duration,
    renew: Duration,
    retry: Duration,
}

const FAST: Timings = Timings {
    lease: Duration::from_secs(4),
    renew: Duration::from_secs(3),
    retry: Duration::from_millis(500),
};

fn args(ns: &str, class: &str, lease: &str, t: &Timings) -> Vec<String> {
    vec![
        format!("--namespace={ns}"),
        format!("--controller-class={class}"),
        "--enable-leader-election".into(),
        format!("--leader-election-id={lease}"),
        format!("--leader-election-namespace={ns}"),
        format!("--leader-election-lease-duration={}ms", t.lease.as_millis()),
        format!("--leader-election-renew-deadline={}ms", t.renew.as_millis()),
        format!("--leader-election-retry-period={}ms", t.retry.as_millis()),
        "--loglevel=info".into(),
    ]
}

async fn holder(ns: &TestNamespace, lease: &str) -> Option<String> {
    Api::<Lease>::namespaced(ns.client.clone(), &ns.name)
        .get_opt(lease)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Which process (by index) holds the Lease: identities are `<POD_NAME>_<random>`.
fn holder_index(procs: &[&SyncretProcess], holder: &str) -> Option<usize> {
    procs.iter().position(|p| holder.starts_with(&format!("{}_", p.name)))
}

async fn fake_store_and_es(ns: &TestNamespace, class: &str, es: &[&str]) -> anyhow::Result<()> {
    let w = StoreWriter { ns, class };
    w.store().await?;
    for name in es {
        w.es(name).await?;
    }
    Ok(())
}

struct StoreWriter<'a> {
    ns: &'a TestNamespace,
    class: &'a str,
}

impl StoreWriter<'_> {
    async fn store(&self) -> anyhow::Result<()> {
        let yaml = format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: fake}}
spec:
  controller: {class}
  provider: {{fake: {{data: [{{key: token, value: t0k3n}}]}}}}
"#,
            class = self.class
        );
        syncret_tests::apply_yaml(&self.ns.api::<syncret_crds::SecretStore>(), &yaml).await?;
        Ok(())
    }

    async fn es(&self, name: &str) -> anyhow::Result<()> {
        let yaml = format!(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: {name}}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: fake, kind: SecretStore}}
  target: {{name: {name}}}
  data: [{{secretKey: token, remoteRef: {{key: token}}}}]
"#
        );
        syncret_tests::apply_yaml(&self.ns.api::<syncret_crds::ExternalSecret>(), &yaml).await?;
        Ok(())
    }
}

async fn secret_exists(ns: &TestNamespace, name: &str) -> bool {
    matches!(ns.api::<Secret>().get_opt(name).await, Ok(Some(_)))
}

fn syncs(scrape: &syncret_tests::http::Scrape, es: &str) -> f64 {
    scrape
        .find("externalsecret_sync_calls_total", &[("name", es)])
        .map(|s| s.value)
        .sum()
}

#[tokio::test]
async fn one_leader_syncs_and_a_killed_leader_is_replaced_within_the_lease_duration() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("leader").await?;
    let class = unique_name("class");
    let lease = unique_name("lease");
    let argv = args(&ns.name, &class, &lease, &FAST);
    let mut a = SyncretProcess::spawn("a", cp.kubeconfig(), &argv)?;
    let mut b = SyncretProcess::spawn("b", cp.kubeconfig(), &argv)?;
    a.wait_ready(Duration::from_secs(30)).await?;
    b.wait_ready(Duration::from_secs(30)).await?;
    fake_store_and_es(&ns, &class, &["one"]).await?;
    eventually(Duration::from_secs(30), "Secret one", || async {
        secret_exists(&ns, "one").await.then_some(())
    })
    .await?;

    // Exactly one leads and syncs; the standby has not reconciled anything.
    let first = eventually(Duration::from_secs(10), "a lease holder", || holder(&ns, &lease)).await?;
    let li = holder_index(&[&a, &b], &first).unwrap_or_else(|| panic!("holder {first} is neither a nor b"));
    let (leader, standby) = if li == 0 { (&mut a, &mut b) } else { (&mut b, &mut a) };
    let ls = eventually(Duration::from_secs(10), "the leader's sync of one counted", || async {
        leader.scrape().await.ok().filter(|s| syncs(s, "one") >= 1.0)
    })
    .await?;
    let ss = standby.scrape().await?;
    assert_eq!(
        ls.value("leader_election_master_status", &[("name", &lease)]),
        Some(1.0)
    );
    assert_eq!(
        ss.value("leader_election_master_status", &[("name", &lease)]),
        Some(0.0)
    );
    assert!(syncs(&ls, "one") >= 1.0, "the leader synced one");
    assert_eq!(syncs(&ss, "one"), 0.0, "the standby synced nothing");
    assert!(ss.find("externalsecret_sync_calls_total", &[]).next().is_none());
    assert!(ss.find("secretstore_status_condition", &[]).next().is_none());

    // SIGKILL the leader: no release, the standby must wait out the lease duration, then take over.
    let killed = Instant::now();
    leader.kill()?;
    StoreWriter { ns: &ns, class: &class }.es("two").await?;
    let new_holder = eventually(Duration::from_secs(30), "a new lease holder", || async {
        holder(&ns, &lease).await.filter(|h| *h != first)
    })
    .await?;
    let took_over = killed.elapsed();
    eventually(Duration::from_secs(30), "Secret two", || async {
        secret_exists(&ns, "two").await.then_some(())
    })
    .await?;
    let synced = killed.elapsed();
    assert!(
        new_holder.starts_with(&format!("{}_", standby.name)),
        "{new_holder} is the standby"
    );
    // The standby takes over one lease duration after it last saw the Lease change, polling every retry
    // period (with up to 20% jitter); a second of slack for a loaded machine.
    let bound = FAST.lease + FAST.retry.mul_f64(2.4) + Duration::from_secs(1);
    assert!(took_over <= bound, "takeover took {took_over:?} (bound {bound:?})");
    assert!(
        took_over >= FAST.lease - FAST.retry.mul_f64(1.2) - Duration::from_millis(200),
        "took over after {took_over:?}, before the lease could have expired"
    );
    // The Secret is written before the reconcile is counted: wait for the counter.
    let s = eventually(
        Duration::from_secs(10),
        "the new leader's sync of two counted",
        || async { standby.scrape().await.ok().filter(|s| syncs(s, "two") >= 1.0) },
    )
    .await?;
    assert_eq!(s.value("leader_election_master_status", &[("name", &lease)]), Some(1.0));
    eprintln!(
        "failover after SIGKILL: lease taken over after {took_over:?}, new ExternalSecret synced after {synced:?} \
         (lease duration {:?}, renew deadline {:?}, retry period {:?})",
        FAST.lease, FAST.renew, FAST.retry
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_finishes_and_releases_the_lease_for_an_immediate_handover() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("leader-term").await?;
    let class = unique_name("class");
    let lease = unique_name("lease");
    // A long lease: a handover much faster than it proves the Lease was released.
    let slow = Timings {
        lease: Duration::from_secs(20),
        renew: Duration::from_secs(15),
        retry: Duration::from_millis(500),
    };
    let argv = args(&ns.name, &class, &lease, &slow);
    let mut a = SyncretProcess::spawn("a", cp.kubeconfig(), &argv)?;
    a.wait_ready(Duration::from_secs(30)).await?;
    let first = eventually(Duration::from_secs(10), "a holds the lease", || async {
        holder(&ns, &lease).await.filter(|h| h.starts_with("a_"))
    })
    .await?;
    let mut b = SyncretProcess::spawn("b", cp.kubeconfig(), &argv)?;
    b.wait_ready(Duration::from_secs(30)).await?;
    fake_store_and_es(&ns, &class, &["one"]).await?;
    eventually(Duration::from_secs(30), "Secret one", || async {
        secret_exists(&ns, "one").await.then_some(())
    })
    .await?;

    let term = Instant::now();
    a.terminate()?;
    let status = eventually(Duration::from_secs(35), "a exits", || {
        let s = a.exit_status();
        async move { s }
    })
    .await?;
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status}:\n{}",
        a.log()
    );
    let exited = term.elapsed();
    let new_holder = eventually(Duration::from_secs(30), "b takes over", || async {
        holder(&ns, &lease).await.filter(|h| *h != first)
    })
    .await?;
    let took_over = term.elapsed();
    assert!(new_holder.starts_with("b_"));
    assert!(
        took_over < slow.lease / 2,
        "released lease taken over after {took_over:?} (lease duration {:?})",
        slow.lease
    );
    assert!(a.log().contains("released the lease"), "{}", a.log());
    StoreWriter { ns: &ns, class: &class }.es("two").await?;
    eventually(Duration::from_secs(30), "Secret two", || async {
        secret_exists(&ns, "two").await.then_some(())
    })
    .await?;
    eprintln!("SIGTERM: leader exited after {exited:?}, lease taken over after {took_over:?}");
    Ok(())
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_before_another_takes_over() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("leader-cut").await?;
    let class = unique_name("class");
    let lease = unique_name("lease");
    let t = Timings {
        lease: Duration::from_secs(6),
        renew: Duration::from_secs(3),
        retry: Duration::from_millis(500),
    };
    let argv = args(&ns.name, &class, &lease, &t);
    let (server, _) = cp.server_and_ca()?;
    let upstream = server
        .trim_start_matches("https://")
        .parse()
        .map_err(|e| anyhow::anyhow!("apiserver address {server}: {e}"))?;
    let proxy = Proxy::start(upstream, Mode::Pass).await?;
    let via_proxy = kubeconfig_via(cp.kubeconfig(), &proxy.url())?;
    let mut a = SyncretProcess::spawn("a", &via_proxy, &argv)?;
    a.wait_ready(Duration::from_secs(30)).await?;
    let first = eventually(Duration::from_secs(10), "a holds the lease", || async {
        holder(&ns, &lease).await.filter(|h| h.starts_with("a_"))
    })
    .await?;
    let mut b = SyncretProcess::spawn("b", cp.kubeconfig(), &argv)?;
    b.wait_ready(Duration::from_secs(30)).await?;

    // Partition a from the apiserver.
    let cut = Instant::now();
    proxy.set(Mode::Cut);
    let mut a_exit = None;
    let mut b_took_over = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (a_exit.is_none() || b_took_over.is_none()) && Instant::now() < deadline {
        if a_exit.is_none()
            && let Some(status) = a.exit_status()
        {
            a_exit = Some((cut.elapsed(), status));
        }
        if b_took_over.is_none() && holder(&ns, &lease).await.is_some_and(|h| h != first) {
            b_took_over = Some(cut.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (exited, status) = a_exit.ok_or_else(|| anyhow::anyhow!("a never exited:\n{}", a.log()))?;
    let took_over = b_took_over.ok_or_else(|| anyhow::anyhow!("b never took over:\n{}", b.log()))?;
    assert!(!status.success(), "a lost leadership: exit code non-zero");
    assert!(
        a.log().contains("could not renew within the renew deadline"),
        "{}",
        a.log()
    );
    assert!(
        exited < took_over,
        "a must have stopped ({exited:?}) before b took over ({took_over:?})"
    );
    assert!(
        exited <= t.renew + t.retry + Duration::from_secs(2) + (t.lease - t.renew) / 2,
        "a stopped after {exited:?}"
    );
    eprintln!("partitioned leader stopped after {exited:?}; standby took over after {took_over:?}");
    Ok(())
}

/// The in-process operator with leader election on: one instance leads, a second waits, the first's graceful
/// stop releases the Lease and the second syncs. (The elector in-process, where failures show in the test's log.)
#[tokio::test]
async fn in_process_standby_takes_over_after_a_graceful_stop() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("leader-inproc").await?;
    let class = unique_name("class");
    let lease = unique_name("lease");
    let start = |id: &'static str| {
        let cfg = syncret::leader::LeaseConfig {
            namespace: ns.name.clone(),
            name: lease.clone(),
            identity: id.into(),
            lease_duration: Duration::from_secs(10),
            renew_deadline: Duration::from_secs(8),
            retry_period: Duration::from_millis(300),
        };
        let (namespace, class) = (ns.name.clone(), class.clone());
        async move {
            Operator::start_with(cp.client().await?, move |o| {
                o.settings.namespace = Some(namespace);
                o.settings.controller_class = class;
                o.leader_election = Some(cfg);
            })
            .await
        }
    };
    let first = start("first").await?;
    eventually(Duration::from_secs(10), "first leads", || async {
        (holder(&ns, &lease).await.as_deref() == Some("first")).then_some(())
    })
    .await?;
    let second = start("second").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!second.started.as_ref().is_some_and(|s| s.leadership.is_leading()));
    let t = Instant::now();
    first.stop().await;
    eventually(Duration::from_secs(5), "second leads", || async {
        (holder(&ns, &lease).await.as_deref() == Some("second")).then_some(())
    })
    .await?;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "released lease taken over after {:?}",
        t.elapsed()
    );
    fake_store_and_es(&ns, &class, &["es"]).await?;
    eventually(Duration::from_secs(30), "Secret es", || async {
        secret_exists(&ns, "es").await.then_some(())
    })
    .await?;
    let scrape = syncret_tests::http::scrape(second.admin_addr()).await?;
    assert_eq!(
        scrape.value("leader_election_master_status", &[("name", &lease)]),
        Some(1.0)
    );
    second.stop().await;
    Ok(())
}
