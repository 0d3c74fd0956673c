//! Operating syncret: `/healthz`, `/readyz` (not ready until every watch has listed), and `/metrics` after real
//! syncs (good and failing) with ESO's metric names and label sets, syncret's histograms and gauges; the Grafana
//! dashboard only queries metrics that are exported.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DeleteParams};
use syncret_crds::{ClusterSecretStore, ExternalSecret};
use syncret_tests::http::{Scrape, get, scrape};
use syncret_tests::operator::Operator;
use syncret_tests::proxy::{Mode, Proxy};
use syncret_tests::{ControlPlane, apply_yaml, eventually, repo_root, unique_name};

fn label_names(s: &syncret_tests::http::Sample) -> BTreeSet<&str> {
    s.labels.keys().map(String::as_str).collect()
}

/// Asserts the family has a `# TYPE` of `kind` and every sample of `name` carries exactly `labels`.
fn family(scrape: &Scrape, name: &str, kind: &str, labels: &[&str]) {
    assert_eq!(
        scrape.types.get(name).map(String::as_str),
        Some(kind),
        "# TYPE of {name}"
    );
    let sample_name = if kind == "histogram" {
        format!("{name}_bucket")
    } else {
        name.to_string()
    };
    let samples: Vec<_> = scrape.samples.iter().filter(|s| s.name == sample_name).collect();
    assert!(!samples.is_empty(), "no samples of {sample_name}");
    let mut want: BTreeSet<&str> = labels.iter().copied().collect();
    if kind == "histogram" {
        want.insert("le");
    }
    for s in samples {
        assert_eq!(label_names(s), want, "labels of {s:?}");
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_after_syncing() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("ops").await?;

    // The operator reaches the apiserver through a proxy that holds connections: no watch can list yet.
    let (server, _) = cp.server_and_ca()?;
    let proxy = Proxy::start(server.trim_start_matches("https://").parse()?, Mode::Hold).await?;
    let mut cfg = cp.config().await?;
    cfg.cluster_url = proxy.url().parse()?;
    let client = Client::try_from(cfg)?;
    let nsname = ns.name.clone();
    let op = Operator::start_with(client, |o| o.settings.namespace = Some(nsname)).await?;
    let admin = op.admin_addr();
    let class = op.class.clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(admin, "/healthz").await?.0, 200);
    assert_eq!(get(admin, "/livez").await?.0, 200);
    let (status, body) = get(admin, "/readyz").await?;
    assert_eq!(status, 503, "not ready before the first list: {body}");
    assert_eq!(get(admin, "/nope").await?.0, 404);
    proxy.set(Mode::Pass);
    eventually(Duration::from_secs(30), "/readyz 200", || async {
        matches!(get(admin, "/readyz").await, Ok((200, _))).then_some(())
    })
    .await?;

    // A store, a cluster store, a good ExternalSecret and three failing ones.
    let css_name = unique_name("css");
    let fake = |kind: &str, name: &str| {
        format!(
            r#"
apiVersion: external-secrets.io/v1
kind: {kind}
metadata: {{name: {name}}}
spec:
  controller: {class}
  provider: {{fake: {{data: [{{key: token, value: t0k3n}}]}}}}
"#
        )
    };
    apply_yaml(&ns.api::<syncret_crds::SecretStore>(), &fake("SecretStore", "fake")).await?;
    let css_api: Api<ClusterSecretStore> = Api::all(ns.client.clone());
    apply_yaml(&css_api, &fake("ClusterSecretStore", &css_name)).await?;
    let es = |name: &str, store: &str, extra: &str| {
        format!(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: {name}}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: {store}, kind: SecretStore}}
  target: {{name: {name}{extra}}}
  data: [{{secretKey: token, remoteRef: {{key: token}}}}]
"#
        )
    };
    let ess: Api<ExternalSecret> = ns.api();
    apply_yaml(&ess, &es("good", "fake", "")).await?;
    apply_yaml(&ess, &es("no-store", "missing", "")).await?;
    apply_yaml(
        &ess,
        &es(
            "bad-template",
            "fake",
            ", template: {data: {out: '{{ .token | nosuchfunction }}'}}",
        ),
    )
    .await?;
    apply_yaml(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: missing-key}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake, kind: SecretStore}
  target: {name: missing-key}
  data: [{secretKey: token, remoteRef: {key: no-such-key}}]
"#,
    )
    .await?;

    let names = ["good", "no-store", "bad-template", "missing-key"];
    let m = eventually(Duration::from_secs(30), "metrics of every ExternalSecret", || async {
        let m = scrape(admin).await.ok()?;
        let status = |n: &str, st: &str| {
            m.value(
                "externalsecret_status_condition",
                &[("name", n), ("condition", "Ready"), ("status", st)],
            )
        };
        // Ready=True is reported before the reconcile is counted: wait for both.
        let good_counted = m
            .value("externalsecret_sync_calls_error", &[("name", "good")])
            .unwrap_or(f64::MAX)
            < m.value("externalsecret_sync_calls_total", &[("name", "good")])
                .unwrap_or(0.0);
        let all_reported = status("good", "True") == Some(1.0)
            && good_counted
            && names[1..].iter().all(|n| {
                status(n, "False") == Some(1.0)
                    && m.value("externalsecret_sync_calls_error", &[("name", n)])
                        .unwrap_or(0.0)
                        >= 1.0
            })
            && m.value("syncret_secret_writes_total", &[("operation", "create")])
                .is_some();
        let reasons = ["StoreNotFound", "TemplateError", "ProviderError"]
            .iter()
            .all(|r| m.value("syncret_sync_errors_total", &[("reason", r)]).is_some());
        let queues = m.has_family("workqueue_depth") && m.has_family("controller_runtime_active_workers");
        let css = m
            .value(
                "clustersecretstore_status_condition",
                &[("name", &css_name), ("status", "True")],
            )
            .is_some();
        (all_reported && reasons && queues && css).then_some(m)
    })
    .await?;

    // ESO's per-object families and label sets.
    family(&m, "externalsecret_sync_calls_total", "counter", &["name", "namespace"]);
    family(&m, "externalsecret_sync_calls_error", "counter", &["name", "namespace"]);
    family(
        &m,
        "externalsecret_status_condition",
        "gauge",
        &["name", "namespace", "condition", "status"],
    );
    family(&m, "externalsecret_reconcile_duration", "gauge", &["name", "namespace"]);
    family(
        &m,
        "secretstore_status_condition",
        "gauge",
        &["name", "namespace", "condition", "status"],
    );
    family(&m, "secretstore_reconcile_duration", "gauge", &["name", "namespace"]);
    family(
        &m,
        "clustersecretstore_status_condition",
        "gauge",
        &["name", "namespace", "condition", "status"],
    );
    family(
        &m,
        "clustersecretstore_reconcile_duration",
        "gauge",
        &["name", "namespace"],
    );
    family(
        &m,
        "externalsecret_provider_api_calls_count",
        "counter",
        &["provider", "call", "status"],
    );
    // controller-runtime's SLIs.
    family(
        &m,
        "controller_runtime_reconcile_total",
        "counter",
        &["controller", "result"],
    );
    family(
        &m,
        "controller_runtime_reconcile_errors_total",
        "counter",
        &["controller"],
    );
    family(
        &m,
        "controller_runtime_reconcile_time_seconds",
        "histogram",
        &["controller"],
    );
    family(&m, "controller_runtime_active_workers", "gauge", &["controller"]);
    family(
        &m,
        "controller_runtime_max_concurrent_reconciles",
        "gauge",
        &["controller"],
    );
    family(&m, "workqueue_depth", "gauge", &["name"]);
    // syncret's histograms and gauges.
    family(&m, "syncret_sync_duration_seconds", "histogram", &["lane"]);
    family(
        &m,
        "syncret_provider_call_duration_seconds",
        "histogram",
        &["provider", "call"],
    );
    family(&m, "syncret_queue_depth", "gauge", &["controller", "lane"]);
    family(&m, "syncret_client_cache_size", "gauge", &[]);
    family(&m, "syncret_sync_errors_total", "counter", &["reason"]);
    family(&m, "syncret_secret_writes_total", "counter", &["operation"]);
    family(&m, "syncret_provider_client_builds_total", "counter", &["provider"]);

    // Values.
    let n = ns.name.as_str();
    let obj = |name: &'static str| [("name", name), ("namespace", n)];
    assert!(m.value("externalsecret_sync_calls_total", &obj("good")).unwrap_or(0.0) >= 1.0);
    // (It may have failed while its store was not Ready yet: the flood gate.)
    assert!(
        m.value("externalsecret_sync_calls_error", &obj("good"))
            .unwrap_or(f64::MAX)
            < m.value("externalsecret_sync_calls_total", &obj("good")).unwrap_or(0.0)
    );
    for bad in ["no-store", "bad-template", "missing-key"] {
        assert!(
            m.value("externalsecret_sync_calls_error", &obj(bad)).unwrap_or(0.0) >= 1.0,
            "{bad} counted as an error"
        );
        let mut l = obj(bad).to_vec();
        l.extend([("condition", "Ready"), ("status", "False")]);
        assert_eq!(m.value("externalsecret_status_condition", &l), Some(1.0), "{bad}");
    }
    let ready = |name: &'static str, status: &'static str| {
        let mut l = obj(name).to_vec();
        l.extend([("condition", "Ready"), ("status", status)]);
        m.value("externalsecret_status_condition", &l)
    };
    assert_eq!(ready("good", "True"), Some(1.0));
    assert_eq!(ready("good", "False"), Some(0.0));
    assert!(
        m.value("externalsecret_reconcile_duration", &obj("good"))
            .unwrap_or(0.0)
            > 0.0
    );
    assert_eq!(
        m.value(
            "secretstore_status_condition",
            &[
                ("name", "fake"),
                ("namespace", n),
                ("condition", "Ready"),
                ("status", "True")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value(
            "clustersecretstore_status_condition",
            &[("name", &css_name), ("condition", "Ready"), ("status", "True")]
        ),
        Some(1.0)
    );
    let calls = |status: &str| {
        m.find("externalsecret_provider_api_calls_count", &[("status", status)])
            .map(|s| s.value)
            .sum::<f64>()
    };
    assert!(calls("success") >= 1.0, "successful provider calls");
    assert!(calls("error") >= 1.0, "failed provider calls (missing key)");
    assert!(
        m.value(
            "controller_runtime_reconcile_total",
            &[("controller", "externalsecret"), ("result", "success")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        m.value(
            "controller_runtime_reconcile_total",
            &[("controller", "externalsecret"), ("result", "error")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        m.value(
            "controller_runtime_reconcile_errors_total",
            &[("controller", "externalsecret")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(
        m.value(
            "controller_runtime_max_concurrent_reconciles",
            &[("controller", "externalsecret")]
        ),
        Some(4.0)
    );
    assert!(m.value("workqueue_depth", &[("name", "externalsecret")]).is_some());
    assert!(m.value("workqueue_depth", &[("name", "secretstore")]).is_some());
    for lane in ["fast", "slow"] {
        assert!(
            m.value(
                "syncret_queue_depth",
                &[("controller", "externalsecret"), ("lane", lane)]
            )
            .is_some()
        );
    }
    assert!(m.value("syncret_client_cache_size", &[]).unwrap_or(0.0) >= 1.0);
    assert!(
        m.value("syncret_sync_duration_seconds_count", &[("lane", "fast")])
            .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        m.find("syncret_provider_call_duration_seconds_count", &[])
            .any(|s| s.value >= 1.0)
    );
    assert!(
        m.value("syncret_secret_writes_total", &[("operation", "create")])
            .unwrap_or(0.0)
            >= 1.0
    );
    for reason in ["StoreNotFound", "TemplateError", "ProviderError"] {
        assert!(
            m.value("syncret_sync_errors_total", &[("reason", reason)])
                .unwrap_or(0.0)
                >= 1.0,
            "errors with reason {reason}"
        );
    }
    assert_eq!(
        m.value("syncret_sync_errors_total", &[("reason", "Other")]),
        None,
        "every failure here has a known reason"
    );
    // Without leader election there is no leader_election_master_status.
    assert!(!m.has_family("leader_election_master_status"));

    // A deleted ExternalSecret's series disappear (ESO deletes them too).
    ess.delete("good", &DeleteParams::default()).await?;
    eventually(
        Duration::from_secs(30),
        "the series of a deleted ExternalSecret gone",
        || async {
            let m = scrape(admin).await.ok()?;
            m.find("externalsecret_sync_calls_total", &[("name", "good")])
                .next()
                .is_none()
                .then_some(())
        },
    )
    .await?;

    // The dashboard queries only what is exported.
    dashboard_uses_exported_metrics(&m)?;

    css_api.delete(&css_name, &DeleteParams::default()).await?;
    op.stop().await;
    Ok(())
}

/// Every metric name in `deploy/grafana/syncret.json` is a family of `scrape` (histograms by their
/// `_bucket`/`_sum`/`_count` series), and the panels the operations issue asks for are there.
fn dashboard_uses_exported_metrics(scrape: &Scrape) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(repo_root().join("deploy/grafana/syncret.json"))?;
    let dash: serde_json::Value = serde_json::from_str(&text)?;
    let re = regex_lite(&text);
    let mut missing = Vec::new();
    for name in &re {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|b| scrape.types.get(*b).map(String::as_str) == Some("histogram"));
        if !scrape.has_family(name) && base.is_none() {
            missing.push(name.clone());
        }
    }
    // leader_election_master_status only exists with leader election, the per-shard families only with --shards
    // (neither is on in this operator; tests/tests/cluster_wide/shard.rs scrapes those).
    missing.retain(|n| n != "leader_election_master_status" && !n.starts_with("syncret_shard_"));
    assert!(
        missing.is_empty(),
        "dashboard queries metrics syncret does not export: {missing:?}"
    );
    let titles: Vec<String> = dash["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["title"].as_str().map(str::to_lowercase))
        .collect();
    for want in [
        "sync rate",
        "errors by reason",
        "sync latency",
        "provider calls by status",
        "provider call latency",
        "queue depth",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no panel for {want}: {titles:?}"
        );
    }
    Ok(())
}

/// Metric names in PromQL expressions: identifiers of our families' prefixes.
fn regex_lite(text: &str) -> BTreeSet<String> {
    let prefixes = [
        "externalsecret_",
        "secretstore_",
        "clustersecretstore_",
        "controller_runtime_",
        "workqueue_",
        "syncret_",
        "leader_election_",
    ];
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word = &text[start..i];
            if prefixes.iter().any(|p| word.starts_with(p)) {
                out.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn dashboard_is_valid_json_and_the_chart_carries_the_same_copy() {
    let root = repo_root();
    let a = std::fs::read_to_string(root.join("deploy/grafana/syncret.json")).unwrap();
    let b = std::fs::read_to_string(root.join("deploy/charts/syncret/files/grafana/syncret.json")).unwrap();
    assert_eq!(
        a, b,
        "copy deploy/grafana/syncret.json to deploy/charts/syncret/files/grafana/syncret.json"
    );
    let dash: serde_json::Value = serde_json::from_str(&a).unwrap();
    let mut ids = BTreeMap::new();
    for p in dash["panels"].as_array().unwrap() {
        let id = p["id"].as_u64().unwrap();
        assert!(ids.insert(id, p["title"].clone()).is_none(), "duplicate panel id {id}");
        for t in p["targets"].as_array().into_iter().flatten() {
            assert!(!t["expr"].as_str().unwrap_or("").is_empty());
        }
    }
    assert_eq!(dash["uid"], "syncret");
}
