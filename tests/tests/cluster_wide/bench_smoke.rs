//! The scale benchmark (`e2e/bench`) as a smoke run at N=100 against the test control plane: the real `syncret`
//! binary as a process, the fake and kubernetes providers, the direct-write and floor baselines, two refresh waves
//! and new ExternalSecrets during the second. No timing assertions: it checks that everything syncs, that an
//! unchanged refresh writes no Secret, and that the report renders.
use std::path::PathBuf;
use std::time::Duration;

use syncret_bench::{Budget, Config, OperatorSpec, ProviderKind, report};
use syncret_tests::{ControlPlane, repo_root, unique_name};

/// `$SYNCRET_BIN`, or the `syncret` next to this test's target directory (built by `cargo test --workspace`),
/// built on demand.
fn syncret_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("SYNCRET_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/bench_smoke-… → target/<profile>/syncret
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("syncret"))
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?;
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = std::process::Command::new(cargo)
            .args(["build", "-p", "syncret", "--bin", "syncret"])
            .current_dir(repo_root())
            .status()?;
        anyhow::ensure!(st.success(), "cargo build -p syncret failed");
    }
    Ok(bin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_n100() -> anyhow::Result<()> {
    // Its replicas hold Leases too: not beside the sharding tests, whose lease timings it would slow down.
    let _serial = super::SERIAL.lock().await;
    let cp = ControlPlane::shared().await?;
    let bin = syncret_binary()?;
    let mut op = OperatorSpec::parse(Some("syncret"), &bin.display().to_string())?;
    op.args.push("--loglevel=warn".into());
    let out = std::env::temp_dir().join(unique_name("bench-smoke"));
    let n = 100;
    let cfg = Config {
        kubeconfig: cp.kubeconfig().to_path_buf(),
        controlplane_env: cp.kubeconfig().parent().map(|d| d.join("env")),
        n,
        namespaces: 5,
        value_size: 64,
        fake_keys: n,
        budget: Budget {
            qps: 200.0,
            burst: 400,
            concurrent: 4,
        },
        providers: vec![ProviderKind::Fake, ProviderKind::Kubernetes],
        operators: vec![op],
        floor: true,
        waves: true,
        refresh_interval: Some(Duration::from_secs(5)),
        new_es: 10,
        // A hostile tenant beside each scenario: ExternalSecrets on a store whose server never answers.
        hung: 10,
        setup_concurrency: 16,
        controller_class: unique_name("bench"),
        crds: Vec::new(),
        extra_crds: Vec::new(),
        out_dir: out.clone(),
        phase_timeout: Duration::from_secs(120),
        settle: Duration::from_millis(500),
        verbose: true,
        // The same workload once more as two sharded replicas.
        replicas: 2,
        shards: 4,
    };
    let r = syncret_bench::run(cfg).await?;
    let md = report::markdown(&r, "cargo test -p syncret-tests --test cluster_wide bench_smoke::");
    println!("{md}");
    assert_eq!(r.direct.n, n);
    assert!(
        r.direct.window.requests_total >= n as f64,
        "the apiserver counted the direct writes"
    );
    assert_eq!(r.scenarios.len(), 4, "single and 2 replicas, for each provider");
    for s in r.scenarios.iter().filter(|s| !s.replicas.is_empty()) {
        let what = format!("{} · {}", s.operator, s.provider);
        assert!(s.error.is_none(), "{what}: {:?} (logs in {})", s.error, out.display());
        assert_eq!((s.ready, s.secrets_ok), (n, n), "{what}: everything synced");
        assert_eq!(s.replicas.len(), 2);
        assert!(
            s.replicas.iter().all(|x| x.peak_rss_kib > 0),
            "{what}: each replica measured"
        );
        assert_eq!(
            s.replicas.iter().map(|x| x.units).sum::<usize>(),
            5,
            "{what}: 4 shards + cluster, each held once"
        );
        // Each ExternalSecret is cached by one replica (other tests' ExternalSecrets on this control plane too).
        assert!(
            s.replicas.iter().map(|x| x.external_secrets).sum::<usize>() >= n,
            "{what}: cached"
        );
    }
    for s in r.scenarios.iter().filter(|s| s.replicas.is_empty()) {
        let what = format!("{} · {}", s.operator, s.provider);
        assert!(s.error.is_none(), "{what}: {:?} (logs in {})", s.error, out.display());
        assert_eq!((s.ready, s.secrets_ok), (n, n), "{what}: everything synced");
        assert!(
            s.peak_rss_kib > 0 && s.cpu_total_s > 0.0,
            "{what}: measured as a process"
        );
        let wave = s.wave.as_ref().expect("wave measured");
        assert!(wave.complete, "{what}: every ExternalSecret refreshed");
        // Only our own target Secrets are watched, so this holds on a shared control plane too.
        assert_eq!(
            wave.secret_writes_watch, 0,
            "{what}: an unchanged refresh writes no Secret"
        );
        let new = s.new_es.as_ref().expect("new ExternalSecrets measured");
        assert!(
            new.created > 0 && new.ready == new.created,
            "{what}: new ExternalSecrets became Ready"
        );
    }
    assert!(md.contains("direct write") && md.contains("syncret · kubernetes"));
    assert!(
        md.contains("syncret ×2 · fake") && md.contains("Sharded replicas"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}
