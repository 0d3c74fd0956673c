//! Provider outages against real provider servers, through a TCP proxy that plays the fault:
//! - the server goes away (connections refused and reset): existing Secrets stay byte-identical, ExternalSecrets
//!   turn `SecretSyncedError` naming the field, the remote key and the cause, the metrics count the errors, retries back off
//!   exponentially and never beyond `--max-backoff`; when the server is back everything recovers by itself,
//!   without rewriting a single Secret;
//! - the server hangs (connections accepted, never answered, never closed): syncs of that store fail by timeout
//!   instead of hanging a worker forever, and other stores' ExternalSecrets keep syncing.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::leaks::{self, Values};
use crate::common::proxy::{FaultProxy, Mode};
use crate::common::{es, es_condition, fake_store, process, secret_value, vault_put, wait_es};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_tests::operator::Operator;
use syncret_tests::servers::OpenBao;
use syncret_tests::{ControlPlane, apply_yaml, eventually};

fn snapshot(s: &Secret) -> (String, BTreeMap<String, Vec<u8>>) {
    (
        s.resource_version().unwrap_or_default(),
        s.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect(),
    )
}

fn sync_errors(op: &Operator, ns: &str, name: &str) -> f64 {
    let text = op.ctx().metrics.render().unwrap_or_default();
    process::metric(
        &text,
        "externalsecret_sync_calls_error",
        &[("name", name), ("namespace", ns)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_outage_keeps_secrets_and_recovers_without_restart() -> anyhow::Result<()> {
    crate::common::init();
    const VAULT_ES: usize = 12;
    let base = Duration::from_millis(250);
    let max_backoff = Duration::from_secs(3);
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("rel-outage").await?;
    let bao = OpenBao::start().await?;
    let proxy = FaultProxy::start(bao.addr().trim_start_matches("http://")).await?;
    let mut values = Values::default();
    values.add(bao.root_token());
    for i in 0..VAULT_ES {
        let (user, password) = (secret_value("u"), secret_value("p"));
        values.add(&user);
        values.add(&password);
        vault_put(
            bao.addr(),
            bao.root_token(),
            &format!("app{i}"),
            serde_json::json!({"user": user, "password": password}),
        )
        .await?;
    }
    let op = Operator::start_with(ns.client.clone(), |o| {
        o.settings.namespace = Some(ns.name.clone());
        o.settings.backoff_base = base;
        o.settings.backoff_max = max_backoff;
    })
    .await?;
    let class = op.class.clone();
    apply_yaml(
        &ns.api::<Secret>(),
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-token"},
            "stringData": {"token": bao.root_token()}})
        .to_string(),
    )
    .await?;
    apply_yaml(
        &ns.api::<SecretStore>(),
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: vault}}\nspec:\n  controller: {class}\n  provider:\n    vault:\n      server: http://{}\n      path: secret\n      version: v2\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n",
            proxy.addr()
        ),
    )
    .await?;
    let bystander_value = |v: &str| vec![("k".to_string(), v.to_string())];
    apply_yaml(
        &ns.api::<SecretStore>(),
        &fake_store("fake", &class, &bystander_value("before")),
    )
    .await?;
    let ess = ns.api::<ExternalSecret>();
    for i in 0..VAULT_ES {
        apply_yaml(
            &ess,
            &es(
                &format!("v{i}"),
                &format!(
                    "  refreshInterval: 1s\n  secretStoreRef: {{name: vault}}\n  data:\n  - {{secretKey: user, remoteRef: {{key: app{i}, property: user}}}}\n  - {{secretKey: password, remoteRef: {{key: app{i}, property: password}}}}\n"
                ),
            ),
        )
        .await?;
    }
    for i in 0..4 {
        apply_yaml(
            &ess,
            &es(
                &format!("bystander{i}"),
                "  refreshInterval: 1s\n  secretStoreRef: {name: fake}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
            ),
        )
        .await?;
    }
    let secrets = ns.api::<Secret>();
    let mut before = BTreeMap::new();
    for i in 0..VAULT_ES {
        let name = format!("v{i}");
        wait_es(&ess, &name, Duration::from_secs(60), "synced", |s, _, _| s == "True").await?;
        before.insert(name.clone(), snapshot(&secrets.get(&name).await?));
    }
    let calls = |status: &str| {
        let text = op.ctx().metrics.render().unwrap_or_default();
        process::metric_total(
            &text,
            "externalsecret_provider_api_calls_count",
            &[("provider", "HashiCorp/Vault"), ("status", status)],
        )
    };
    let provider_errors_before = calls("error");
    let reconcile_errors = || {
        op.ctx()
            .metrics
            .reconcile_total
            .with_label_values(&["externalsecret", "error"])
            .get()
    };
    let reconcile_errors_before = reconcile_errors();

    // The server goes away.
    proxy.set(Mode::Down);
    let down_at = Instant::now();
    let outage = Duration::from_secs(16);
    let probe = "v0";
    let mut last_errors = sync_errors(&op, &ns.name, probe);
    let mut error_times: Vec<Instant> = Vec::new();
    let mut bystanders_updated = false;
    while down_at.elapsed() < outage {
        let now = sync_errors(&op, &ns.name, probe);
        if now > last_errors {
            error_times.push(Instant::now());
            last_errors = now;
        }
        if !bystanders_updated && down_at.elapsed() > Duration::from_secs(4) {
            // Other stores are not affected: a change there syncs during the outage.
            apply_yaml(
                &ns.api::<SecretStore>(),
                &fake_store("fake", &class, &bystander_value("during")),
            )
            .await?;
            bystanders_updated = true;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // Conditions: every vault ExternalSecret says what failed, naming the store.
    for i in 0..VAULT_ES {
        let (status, reason, message) = wait_es(
            &ess,
            &format!("v{i}"),
            Duration::from_secs(10),
            "SecretSyncedError",
            |s, _, _| s == "False",
        )
        .await?;
        assert_eq!((status.as_str(), reason.as_str()), ("False", "SecretSyncedError"));
        // The field, the remote key and the cause.
        assert!(
            message.contains("could not get secret data from provider")
                && message.contains(&format!("spec.data[0] (key: app{i})"))
                && message.contains("Connection refused"),
            "v{i}: {message}"
        );
        if i == 0 {
            println!("condition during the outage: {message}");
        }
    }
    for i in 0..4 {
        let s = secrets.get(&format!("bystander{i}")).await?;
        assert_eq!(
            s.data.as_ref().and_then(|d| d.get("k")).map(|v| v.0.as_slice()),
            Some(&b"during"[..]),
            "bystander{i} synced during the outage"
        );
    }
    // Secrets byte-identical, not even rewritten.
    for (name, snap) in &before {
        assert_eq!(
            &snapshot(&secrets.get(name).await?),
            snap,
            "{name} untouched during the outage"
        );
    }
    // Metrics count the errors.
    assert!(calls("error") > provider_errors_before, "provider call errors counted");
    assert!(reconcile_errors() > reconcile_errors_before, "reconcile errors counted");
    // Backoff: grows, and never beyond max-backoff (plus the time a failing sync takes).
    let gaps: Vec<Duration> = error_times.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "{probe}: {} failed syncs in {outage:?}; gaps {:?}",
        error_times.len(),
        gaps.iter()
            .map(|g| format!("{:.2}s", g.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    assert!(gaps.len() >= 4, "several retries during the outage: {gaps:?}");
    let slack = Duration::from_millis(700);
    assert!(
        gaps.iter().all(|g| *g <= max_backoff + slack),
        "a retry waited longer than max-backoff {max_backoff:?}: {gaps:?}"
    );
    assert!(
        gaps.first().is_some_and(|g| *g < max_backoff / 2),
        "the first retry comes quickly: {gaps:?}"
    );
    assert!(
        gaps.iter().rev().take(2).all(|g| *g >= max_backoff.mul_f64(0.8)),
        "the backoff grew up to max-backoff: {gaps:?}"
    );
    assert!(
        error_times.len() <= 14,
        "no tight retry loop: {} failures in {outage:?}",
        error_times.len()
    );

    // The server comes back: everything recovers without a restart, and nothing is rewritten (same values).
    proxy.set(Mode::Up);
    let up_at = Instant::now();
    for i in 0..VAULT_ES {
        wait_es(
            &ess,
            &format!("v{i}"),
            max_backoff + Duration::from_secs(15),
            "recovered",
            |s, _, _| s == "True",
        )
        .await?;
    }
    println!(
        "all recovered {:.1}s after the server came back",
        up_at.elapsed().as_secs_f64()
    );
    for (name, snap) in &before {
        assert_eq!(
            &snapshot(&secrets.get(name).await?),
            snap,
            "{name} not rewritten after recovery"
        );
    }
    // And it is live: a new remote value arrives.
    let fresh = secret_value("fresh");
    values.add(&fresh);
    vault_put(
        bao.addr(),
        bao.root_token(),
        "app3",
        serde_json::json!({"user": "u", "password": fresh}),
    )
    .await?;
    eventually(Duration::from_secs(20), "v3 picks up the new value", || async {
        let s = secrets.get("v3").await.ok()?;
        (s.data?.get("password")?.0 == fresh.as_bytes()).then_some(())
    })
    .await?;
    let metrics = op.ctx().metrics.render().unwrap_or_default();
    leaks::check(&values, &ns.client, &[&ns.name], &metrics).await?;
    op.stop().await;
    Ok(())
}

/// A provider that accepts connections and never answers must not hang syncs: each read times out, the
/// ExternalSecret reports it and retries, and recovers once the server answers again, even though the connections
/// that hung are never closed. Meanwhile ExternalSecrets of other stores keep syncing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_provider_times_out_and_recovers() -> anyhow::Result<()> {
    crate::common::init();
    const HUNG_ES: usize = 2;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("rel-hang").await?;
    let remote = cp.namespace("rel-hang-remote").await?;
    let (server, ca) = cp.server_and_ca()?;
    let upstream = server.trim_start_matches("https://").to_string();
    let proxy = FaultProxy::start(&upstream).await?;
    let value = secret_value("remote");
    let mut values = Values::default();
    values.add(&value);
    values.add(crate::hostile::admin_token(cp)?);
    apply_yaml(
        &remote.api::<Secret>(),
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"password": value}})
        .to_string(),
    )
    .await?;
    apply_yaml(
        &ns.api::<Secret>(),
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "remote-token"},
            "stringData": {"token": crate::hostile::admin_token(cp)?}})
        .to_string(),
    )
    .await?;
    let op = Operator::start_with(ns.client.clone(), |o| {
        o.settings.namespace = Some(ns.name.clone());
        o.settings.backoff_base = Duration::from_millis(250);
        o.settings.backoff_max = Duration::from_secs(3);
    })
    .await?;
    let class = op.class.clone();
    use base64::Engine as _;
    apply_yaml(
        &ns.api::<SecretStore>(),
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: remote}}\nspec:\n  controller: {class}\n  provider:\n    kubernetes:\n      remoteNamespace: {}\n      server: {{url: 'https://{}', caBundle: {}}}\n      auth:\n        token:\n          bearerToken: {{name: remote-token, key: token}}\n",
            remote.name,
            proxy.addr(),
            base64::engine::general_purpose::STANDARD.encode(&ca)
        ),
    )
    .await?;
    apply_yaml(
        &ns.api::<SecretStore>(),
        &fake_store("fake", &class, &[("k".to_string(), "before".to_string())]),
    )
    .await?;
    let ess = ns.api::<ExternalSecret>();
    for i in 0..HUNG_ES {
        apply_yaml(
            &ess,
            &es(
                &format!("k{i}"),
                "  refreshInterval: 1s\n  secretStoreRef: {name: remote}\n  data:\n  - {secretKey: password, remoteRef: {key: db, property: password}}\n",
            ),
        )
        .await?;
    }
    for i in 0..4 {
        apply_yaml(
            &ess,
            &es(
                &format!("bystander{i}"),
                "  refreshInterval: 1s\n  secretStoreRef: {name: fake}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
            ),
        )
        .await?;
    }
    for i in 0..HUNG_ES {
        wait_es(&ess, &format!("k{i}"), Duration::from_secs(60), "synced", |s, _, _| {
            s == "True"
        })
        .await?;
    }
    // The server hangs for a few seconds, then answers new connections again; the connections that hung stay
    // open and silent forever.
    proxy.set(Mode::Hang);
    tokio::time::sleep(Duration::from_secs(4)).await;
    apply_yaml(
        &ns.api::<SecretStore>(),
        &fake_store("fake", &class, &[("k".to_string(), "during".to_string())]),
    )
    .await?;
    let secrets = ns.api::<Secret>();
    let t = Instant::now();
    for i in 0..4 {
        let name = format!("bystander{i}");
        eventually(
            Duration::from_secs(20),
            &format!("{name} syncs while a provider hangs"),
            || async {
                let s = secrets.get(&name).await.ok()?;
                (s.data?.get("k")?.0 == b"during").then_some(())
            },
        )
        .await?;
    }
    println!(
        "bystanders synced {:.1}s after their store changed",
        t.elapsed().as_secs_f64()
    );
    proxy.set(Mode::Up);
    let up_at = Instant::now();
    let fresh = secret_value("fresh");
    values.add(&fresh);
    apply_yaml(
        &remote.api::<Secret>(),
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"password": fresh}})
        .to_string(),
    )
    .await?;
    for i in 0..HUNG_ES {
        let name = format!("k{i}");
        eventually(
            Duration::from_secs(75),
            &format!("{name} recovers although its hung connection never closes"),
            || async {
                let s = secrets.get(&name).await.ok()?;
                (s.data?.get("password")?.0 == fresh.as_bytes()).then_some(())
            },
        )
        .await?;
    }
    println!(
        "hung ExternalSecrets recovered {:.1}s after the server answered again; condition seen: {:?}",
        up_at.elapsed().as_secs_f64(),
        es_condition(&ess, "k0").await
    );
    let metrics = op.ctx().metrics.render().unwrap_or_default();
    leaks::check(&values, &ns.client, &[&ns.name, &remote.name], &metrics).await?;
    op.stop().await;
    Ok(())
}
