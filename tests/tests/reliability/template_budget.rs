//! Template memory bombs (issue 22): one ExternalSecret whose template builds a 16M-element list
//! (`{{ len (until 16777216) }}`) and one with four keys of `{{ repeat 16000000 "A" }}` (1.30 GB peak RSS before
//! the render budget), applied to a real syncret process next to a canary ExternalSecret in another namespace. The
//! hostile ones get `Ready=False` naming the key, the canary follows a change of its store within 10 s, nothing
//! panics, and the operator's peak RSS grows by less than 100 MB.
use std::time::{Duration, Instant};

use kube::api::Api;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_tests::process::SyncretProcess;
use syncret_tests::{ControlPlane, apply_yaml, eventually, unique_name};

use crate::common::leaks::{self, Values};
use crate::common::process::usage;
use crate::common::{es, fake_store, secret_value, wait_es};

/// A hostile ExternalSecret: its template keys, and the key whose error the condition must name.
struct Bomb {
    name: &'static str,
    keys: &'static [(&'static str, &'static str)],
    failing_key: &'static str,
}

const BOMBS: &[Bomb] = &[
    Bomb {
        name: "until-16m",
        keys: &[("n", "{{ len (until 16777216) }}")],
        failing_key: "n",
    },
    Bomb {
        name: "repeat-4x16m",
        keys: &[
            ("a", r#"{{ repeat 16000000 "A" }}"#),
            ("b", r#"{{ repeat 16000000 "A" }}"#),
            ("c", r#"{{ repeat 16000000 "A" }}"#),
            ("d", r#"{{ repeat 16000000 "A" }}"#),
        ],
        // `a` fits the 40 MiB budget (its value and the output), `b` does not.
        failing_key: "b",
    },
    Bomb {
        name: "list-doubling-printed",
        keys: &[(
            "x",
            "{{ $a := list 1 }}{{ range until 40 }}{{ $a = list $a $a }}{{ end }}{{ $a | toJson }}",
        )],
        failing_key: "x",
    },
];

fn spec(keys: &[(&str, &str)]) -> String {
    let mut data = String::new();
    for (k, v) in keys {
        data.push_str(&format!(
            "        {k}: {}\n",
            serde_json::to_string(v).unwrap_or_default()
        ));
    }
    format!(
        "  refreshInterval: 1s\n  secretStoreRef: {{name: s}}\n  target:\n    template:\n      data:\n{data}  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n"
    )
}

fn peak_rss_mib(p: &SyncretProcess) -> f64 {
    usage(p.pid()).map(|u| u.peak_rss_kib as f64 / 1024.0).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_memory_bombs_fail_by_key_and_harm_nothing() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let hostile = cp.namespace("rel-tplbomb").await?;
    let canary = cp.namespace("rel-tplbomb-canary").await?;
    let class = unique_name("class");
    let mut values = Values::default();
    let plain = secret_value("plain");
    let canary_v1 = secret_value("canary1");
    values.add(&plain);
    values.add(&canary_v1);
    apply_yaml(
        &hostile.api::<SecretStore>(),
        &fake_store("s", &class, &[("k".into(), plain.clone())]),
    )
    .await?;
    let canary_stores = canary.api::<SecretStore>();
    apply_yaml(
        &canary_stores,
        &fake_store("s", &class, &[("g".into(), canary_v1.clone())]),
    )
    .await?;
    let canary_es = canary.api::<ExternalSecret>();
    apply_yaml(
        &canary_es,
        &es(
            "canary",
            "  refreshInterval: 1s\n  secretStoreRef: {name: s}\n  data:\n  - {secretKey: g, remoteRef: {key: g}}\n",
        ),
    )
    .await?;

    // One operator for both namespaces (the class scopes it), as a process of its own so its RSS is its own.
    let args = vec![
        format!("--controller-class={class}"),
        "--loglevel=debug".to_string(),
        "--max-backoff=2s".to_string(),
    ];
    let mut p = SyncretProcess::spawn("tplbomb", cp.kubeconfig(), &args)?;
    p.wait_ready(Duration::from_secs(60)).await?;
    let canary_secrets = canary.api::<k8s_openapi::api::core::v1::Secret>();
    let synced = |want: String| {
        let api = canary_secrets.clone();
        async move {
            let s = api.get_opt("canary").await.ok()??;
            (s.data?.get("g")?.0 == want.as_bytes()).then_some(())
        }
    };
    eventually(Duration::from_secs(60), "canary synced", || synced(canary_v1.clone())).await?;
    let before = peak_rss_mib(&p);

    let ess: Api<ExternalSecret> = hostile.api();
    for b in BOMBS {
        apply_yaml(&ess, &es(b.name, &spec(b.keys))).await?;
    }
    let mut conditions = Vec::new();
    for b in BOMBS {
        let field = format!("spec.target.template.data[{}]", b.failing_key);
        let (_, reason, message) = wait_es(
            &ess,
            b.name,
            Duration::from_secs(60),
            "fails naming the key",
            |s, _, m| s == "False" && m.contains(&field),
        )
        .await?;
        assert!(message.contains("memory budget"), "{}: {message}", b.name);
        assert_eq!(reason, "SecretSyncedError", "{}", b.name);
        conditions.push(format!("{}: {message}", b.name));
    }
    // They keep being retried (refreshInterval 1s, backoff capped at 2s) while the canary's store changes.
    let canary_v2 = secret_value("canary2");
    values.add(&canary_v2);
    apply_yaml(
        &canary_stores,
        &fake_store("s", &class, &[("g".into(), canary_v2.clone())]),
    )
    .await?;
    let t = Instant::now();
    eventually(Duration::from_secs(10), "canary follows its store within 10 s", || {
        synced(canary_v2.clone())
    })
    .await?;
    let followed = t.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = peak_rss_mib(&p);
    let log = p.log();
    println!(
        "template bombs: operator peak RSS {before:.1} MiB -> {after:.1} MiB (+{:.1}); canary followed in {:.1}s",
        after - before,
        followed.as_secs_f64()
    );
    for c in &conditions {
        println!("  {}", c.chars().take(240).collect::<String>());
    }
    assert!(!log.contains("panicked at"), "a panic in the operator's log");
    assert!(
        after - before < 100.0,
        "peak RSS grew by {:.1} MiB (from {before:.1})",
        after - before
    );
    let metrics = p.scrape().await.map(|s| format!("{:?}", s.samples)).unwrap_or_default();
    p.terminate()?;
    let mut texts = leaks::cluster_texts(&hostile.client, &[&hostile.name, &canary.name]).await?;
    texts.push(("metrics".into(), metrics.into_bytes()));
    texts.push(("operator log (debug)".into(), log.into_bytes()));
    leaks::assert_none(&values, &texts)?;
    Ok(())
}
