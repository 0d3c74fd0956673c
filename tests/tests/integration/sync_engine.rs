//! The sync engine against the real control plane: ESO's data shaping, every creation/deletion/refresh policy,
//! ownership safety, the zero-write rule, store wake-ups and bad input. Each test has its own namespace and its
//! own in-process operator.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_tests::{Env, eventually};

fn es(name: &str, spec: &str) -> String {
    format!("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Data shaping, table-driven: each row is an ExternalSecret spec over the same store and the exact data expected.
#[tokio::test]
async fn data_shaping_matches_eso() -> anyhow::Result<()> {
    let env = Env::new("shaping").await?;
    env.fake_store(
        "s",
        &[
            ("db", r#"{"user":"admin","password":"p4ss","nested":{"port":5432}}"#),
            ("b64", "aGVsbG8="),
            ("b64url", "-_8="),
            ("path/to/app-a", r#"{"x":"1"}"#),
            ("path/to/app-b", r#"{"y":"2"}"#),
            ("other", "o"),
            ("weird-keys", r#"{"a/b":"1","c d":"2"}"#),
            ("json1", r#"{"a":"1","b":"x"}"#),
            ("json2", r#"{"b":"2","c":"3"}"#),
        ],
    )
    .await?;
    let cases: Vec<(&str, &str, BTreeMap<String, String>)> = vec![
        (
            "property-and-nested",
            r#"  secretStoreRef: {name: s}
  data:
  - {secretKey: user, remoteRef: {key: db, property: user}}
  - {secretKey: port, remoteRef: {key: db, property: nested.port}}
  - {secretKey: whole, remoteRef: {key: other}}
"#,
            map(&[("user", "admin"), ("port", "5432"), ("whole", "o")]),
        ),
        (
            "decoding",
            r#"  secretStoreRef: {name: s}
  data:
  - {secretKey: std, remoteRef: {key: b64, decodingStrategy: Base64}}
  - {secretKey: auto, remoteRef: {key: b64, decodingStrategy: Auto}}
  - {secretKey: plain, remoteRef: {key: other, decodingStrategy: Auto}}
"#,
            map(&[("std", "hello"), ("auto", "hello"), ("plain", "o")]),
        ),
        (
            "extract-and-override",
            r#"  secretStoreRef: {name: s}
  dataFrom:
  - extract: {key: db}
  data:
  - {secretKey: user, remoteRef: {key: other}}
"#,
            map(&[("user", "o"), ("password", "p4ss"), ("nested", r#"{"port":5432}"#)]),
        ),
        (
            "find-by-name-with-rewrite",
            r#"  secretStoreRef: {name: s}
  dataFrom:
  - find: {name: {regexp: "^path/to/"}}
    rewrite:
    - regexp: {source: "path/to/(.*)", target: "$1"}
    - transform: {template: "{{ .value | upper }}"}
"#,
            map(&[("APP-A", r#"{"x":"1"}"#), ("APP-B", r#"{"y":"2"}"#)]),
        ),
        (
            "conversion-strategies",
            r#"  secretStoreRef: {name: s}
  dataFrom:
  - extract: {key: weird-keys, conversionStrategy: Unicode}
"#,
            map(&[("a_U002f_b", "1"), ("c_U0020_d", "2")]),
        ),
        (
            "merge-rewrite",
            r#"  secretStoreRef: {name: s}
  dataFrom:
  - find: {name: {regexp: "^json[12]$"}}
    rewrite:
    - merge: {conflictPolicy: Ignore, priority: [json1]}
"#,
            map(&[("a", "1"), ("b", "x"), ("c", "3")]),
        ),
    ];
    for (name, spec, _) in &cases {
        env.apply::<ExternalSecret>(&es(name, spec)).await?;
    }
    for (name, _, want) in &cases {
        let s = env.secret(name).await?;
        assert_eq!(Env::text(&s), *want, "case {name}");
        env.es_ready(name, "True", "SecretSynced").await?;
    }
    Ok(())
}

#[tokio::test]
async fn templates_with_template_from_configmap() -> anyhow::Result<()> {
    let env = Env::new("tpl").await?;
    env.fake_store("s", &[("db", r#"{"user":"u","password":"p"}"#)]).await?;
    env.apply::<ConfigMap>(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: tpl}
data:
  config.yaml: |
    database:
      user: {{ .user }}
      password: {{ .password }}
"#,
    )
    .await?;
    env.apply::<ExternalSecret>(&es(
        "app",
        r#"  secretStoreRef: {name: s}
  target:
    template:
      type: kubernetes.io/basic-auth
      metadata:
        labels: {app: web}
        annotations: {owner: "team-{{ .user }}"}
      templateFrom:
      - configMap: {name: tpl, items: [{key: config.yaml}]}
      data:
        username: "{{ .user }}"
        password: "{{ .password }}"
  dataFrom:
  - extract: {key: db}
"#,
    ))
    .await?;
    let s = env.secret("app").await?;
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(Env::text(&s)["config.yaml"], "database:\n  user: u\n  password: p\n");
    assert_eq!(Env::text(&s)["username"], "u");
    assert_eq!(s.labels()["app"], "web");
    assert_eq!(s.annotations()["owner"], "team-u");
    Ok(())
}

#[tokio::test]
async fn owner_secret_is_garbage_collected_and_orphan_is_kept() -> anyhow::Result<()> {
    let env = Env::new("owner").await?;
    env.fake_store("s", &[("k", "v")]).await?;
    let spec = |policy: &str| {
        format!(
            "  secretStoreRef: {{name: s}}\n  target: {{creationPolicy: {policy}}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n"
        )
    };
    env.apply::<ExternalSecret>(&es("owned", &spec("Owner"))).await?;
    env.apply::<ExternalSecret>(&es("orphaned", &spec("Orphan"))).await?;
    let owned = env.secret("owned").await?;
    let orphan = env.secret("orphaned").await?;
    let oref = &owned.owner_references()[0];
    assert!(oref.controller == Some(true) && oref.kind == "ExternalSecret" && oref.name == "owned");
    assert!(owned.labels().contains_key("reconcile.external-secrets.io/created-by"));
    assert_eq!(owned.labels()["reconcile.external-secrets.io/managed"], "true");
    assert!(
        owned
            .annotations()
            .contains_key("reconcile.external-secrets.io/data-hash")
    );
    assert!(orphan.owner_references().is_empty());
    let ess = env.ns.api::<ExternalSecret>();
    ess.delete("owned", &DeleteParams::default()).await?;
    ess.delete("orphaned", &DeleteParams::default()).await?;
    let secrets = env.ns.api::<Secret>();
    eventually(
        Duration::from_secs(60),
        "the owned Secret to be garbage-collected",
        || async { secrets.get_opt("owned").await.ok().flatten().is_none().then_some(()) },
    )
    .await?;
    assert!(secrets.get_opt("orphaned").await?.is_some(), "Orphan keeps the Secret");
    Ok(())
}

#[tokio::test]
async fn merge_none_and_create_or_merge() -> anyhow::Result<()> {
    let env = Env::new("merge").await?;
    env.fake_store("s", &[("k", "from-store")]).await?;
    let spec = |policy: &str, target: &str| {
        format!(
            "  secretStoreRef: {{name: s}}\n  target: {{name: {target}, creationPolicy: {policy}}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n"
        )
    };
    // Merge into a Secret that does not exist yet: SecretMissing, nothing created.
    env.apply::<ExternalSecret>(&es("merge", &spec("Merge", "shared")))
        .await?;
    let msg = env.es_ready("merge", "True", "SecretMissing").await?;
    assert!(msg.contains("CreationPolicy=Merge"), "{msg}");
    // The Secret appears (created by someone else): its keys are kept, ours merged in.
    env.apply::<Secret>("apiVersion: v1\nkind: Secret\nmetadata: {name: shared}\nstringData: {theirs: t}\n")
        .await?;
    env.ns
        .api::<ExternalSecret>()
        .patch(
            "merge",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata":{"annotations":{"force-sync":"1"}}})),
        )
        .await?;
    let s = env
        .secret_where("shared", "merged keys", |s| Env::text(s).contains_key("k"))
        .await?;
    assert_eq!(Env::text(&s), map(&[("k", "from-store"), ("theirs", "t")]));
    assert!(s.owner_references().is_empty());
    // None writes nothing.
    env.apply::<ExternalSecret>(&es("none", &spec("None", "never"))).await?;
    env.es_ready("none", "True", "SecretSynced").await?;
    assert!(env.ns.api::<Secret>().get_opt("never").await?.is_none());
    // CreateOrMerge creates when missing, without an owner.
    env.apply::<ExternalSecret>(&es("com", &spec("CreateOrMerge", "created")))
        .await?;
    let s = env.secret("created").await?;
    assert_eq!(Env::text(&s), map(&[("k", "from-store")]));
    assert!(s.owner_references().is_empty());
    Ok(())
}

#[tokio::test]
async fn deletion_policies_when_the_remote_secret_disappears() -> anyhow::Result<()> {
    let env = Env::new("delpol").await?;
    env.fake_store("s", &[("k", "v")]).await?;
    for policy in ["Delete", "Retain", "Merge"] {
        let name = policy.to_lowercase();
        env.apply::<ExternalSecret>(&es(
            &name,
            &format!(
                "  refreshInterval: 1s\n  secretStoreRef: {{name: s}}\n  target: {{deletionPolicy: {policy}}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n"
            ),
        ))
        .await?;
        env.secret(&name).await?;
    }
    // The remote value goes away.
    env.fake_store("s", &[("unrelated", "x")]).await?;
    let secrets = env.ns.api::<Secret>();
    eventually(Duration::from_secs(30), "Delete removes the Secret", || async {
        secrets.get_opt("delete").await.ok().flatten().is_none().then_some(())
    })
    .await?;
    env.es_ready("delete", "True", "SecretDeleted").await?;
    let msg = env.es_ready("retain", "False", "SecretSyncedError").await?;
    assert!(
        msg.contains("spec.data[0]") && msg.contains("\"k\""),
        "Retain: a missing remote secret is an error: {msg}"
    );
    assert_eq!(
        Env::text(&env.secret("retain").await?),
        map(&[("k", "v")]),
        "Retain keeps the old Secret intact"
    );
    let merged = env
        .secret_where("merge", "Merge drops the key", |s| Env::text(s).is_empty())
        .await?;
    assert!(merged.metadata.uid.is_some(), "Merge keeps the (now empty) Secret");
    Ok(())
}

#[tokio::test]
async fn refresh_policies_and_force_sync() -> anyhow::Result<()> {
    let env = Env::new("refresh").await?;
    env.fake_store("s", &[("k", "v1")]).await?;
    let spec = |extra: &str| {
        format!("{extra}  secretStoreRef: {{name: s}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n")
    };
    env.apply::<ExternalSecret>(&es("periodic", &spec("  refreshInterval: 1s\n")))
        .await?;
    env.apply::<ExternalSecret>(&es("once", &spec("  refreshInterval: 0s\n")))
        .await?;
    env.apply::<ExternalSecret>(&es(
        "created-once",
        &spec("  refreshPolicy: CreatedOnce\n  refreshInterval: 1s\n"),
    ))
    .await?;
    env.apply::<ExternalSecret>(&es(
        "on-change",
        &spec("  refreshPolicy: OnChange\n  refreshInterval: 1s\n"),
    ))
    .await?;
    for n in ["periodic", "once", "created-once", "on-change"] {
        assert_eq!(Env::text(&env.secret(n).await?), map(&[("k", "v1")]));
    }
    env.fake_store("s", &[("k", "v2")]).await?;
    env.secret_where("periodic", "periodic refresh picks up v2", |s| {
        Env::text(s)["k"] == "v2"
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in ["once", "created-once", "on-change"] {
        assert_eq!(
            Env::text(&env.secret(n).await?)["k"],
            "v1",
            "{n} must not refresh by itself"
        );
    }
    // force-sync (any annotation change) resyncs OnChange; refreshInterval 0 ("sync once") and CreatedOnce stay
    // as first synced, as in ESO (shouldRefreshPeriodic returns early for a zero interval once synced).
    let ess = env.ns.api::<ExternalSecret>();
    for n in ["once", "created-once", "on-change"] {
        let patch = serde_json::json!({"metadata": {"annotations": {"force-sync": "1"}}});
        ess.patch(n, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    env.secret_where("on-change", "OnChange resyncs on force-sync", |s| {
        Env::text(s)["k"] == "v2"
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(Env::text(&env.secret("created-once").await?)["k"], "v1");
    assert_eq!(Env::text(&env.secret("once").await?)["k"], "v1");
    Ok(())
}

/// A refresh with unchanged remote values writes nothing: the Secret's resourceVersion stays, and the operator
/// counts no Secret writes, over several refresh cycles.
#[tokio::test]
async fn unchanged_refresh_writes_nothing() -> anyhow::Result<()> {
    let env = Env::new("zerowrite").await?;
    env.fake_store("s", &[("k", "v"), ("j", r#"{"a":"1"}"#)]).await?;
    for i in 0..5 {
        env.apply::<ExternalSecret>(&es(
            &format!("es{i}"),
            "  refreshInterval: 1s\n  secretStoreRef: {name: s}\n  target:\n    template:\n      data: {out: '{{ .k }}-{{ .a }}'}\n  dataFrom:\n  - extract: {key: j}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
        ))
        .await?;
    }
    let mut rvs = Vec::new();
    for i in 0..5 {
        rvs.push(env.secret(&format!("es{i}")).await?.resource_version());
    }
    let writes = || {
        let m = &env.op.ctx().metrics.secret_writes;
        ["create", "apply", "remove-keys", "delete"]
            .iter()
            .map(|l| m.with_label_values(&[l]).get())
            .sum::<u64>()
    };
    let before = writes();
    let reads_before = env
        .op
        .ctx()
        .metrics
        .provider_calls
        .with_label_values(&["Fake", "GetSecret", "success"])
        .get();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let reads_after = env
        .op
        .ctx()
        .metrics
        .provider_calls
        .with_label_values(&["Fake", "GetSecret", "success"])
        .get();
    assert!(reads_after > reads_before, "refreshes happened (provider was read)");
    assert_eq!(writes(), before, "no Secret writes during unchanged refreshes");
    for (i, rv) in rvs.iter().enumerate() {
        let now = env.secret(&format!("es{i}")).await?.resource_version();
        assert_eq!(&now, rv, "es{i}'s Secret untouched");
    }
    Ok(())
}

/// A store spec change reaches the ExternalSecrets using it at once (stores are watched), not at their next
/// refresh an hour later; CreatedOnce keeps what it synced.
#[tokio::test]
async fn store_spec_change_is_read_at_once() -> anyhow::Result<()> {
    let env = Env::new("storechange").await?;
    env.fake_store("s", &[("k", "v1")]).await?;
    let spec = |extra: &str| {
        format!("{extra}  secretStoreRef: {{name: s}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n")
    };
    env.apply::<ExternalSecret>(&es("hourly", &spec("  refreshInterval: 1h\n")))
        .await?;
    env.apply::<ExternalSecret>(&es(
        "created-once",
        &spec("  refreshPolicy: CreatedOnce\n  refreshInterval: 1h\n"),
    ))
    .await?;
    for n in ["hourly", "created-once"] {
        assert_eq!(Env::text(&env.secret(n).await?), map(&[("k", "v1")]));
    }
    env.fake_store("s", &[("k", "v2")]).await?;
    env.secret_where("hourly", "the store change read at once", |s| Env::text(s)["k"] == "v2")
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(Env::text(&env.secret("created-once").await?)["k"], "v1");
    Ok(())
}

/// ESO #4340: an ExternalSecret created before its store is usable syncs within seconds of the store turning
/// Ready (stores are watched), instead of waiting out an error backoff.
#[tokio::test]
async fn external_secret_wakes_up_when_its_store_becomes_ready() -> anyhow::Result<()> {
    let env = Env::new("wake").await?;
    env.apply::<ExternalSecret>(&es(
        "early",
        "  secretStoreRef: {name: late}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    ))
    .await?;
    let msg = env.es_ready("early", "False", "SecretSyncedError").await?;
    assert!(msg.contains("SecretStore \"late\" not found"), "{msg}");
    // Let the error backoff grow, so only the store watch can explain a quick sync.
    tokio::time::sleep(Duration::from_secs(6)).await;
    env.fake_store("late", &[("k", "v")]).await?;
    let stores = env.ns.api::<SecretStore>();
    let ready_at = eventually(Duration::from_secs(30), "store Ready", || async {
        let s = stores.get("late").await.ok()?;
        s.status?
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.is_true())
            .then(Instant::now)
    })
    .await?;
    env.secret("early").await?;
    let waited = ready_at.elapsed();
    assert!(
        waited <= Duration::from_secs(5),
        "synced {waited:?} after the store turned Ready"
    );
    Ok(())
}

#[tokio::test]
async fn target_name_change_removes_the_old_owned_secret() -> anyhow::Result<()> {
    let env = Env::new("rename").await?;
    env.fake_store("s", &[("k", "v")]).await?;
    let spec = |t: &str| {
        format!(
            "  secretStoreRef: {{name: s}}\n  target: {{name: {t}}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n"
        )
    };
    env.apply::<ExternalSecret>(&es("app", &spec("first"))).await?;
    env.secret("first").await?;
    env.apply::<ExternalSecret>(&es("app", &spec("second"))).await?;
    env.secret("second").await?;
    let secrets = env.ns.api::<Secret>();
    eventually(Duration::from_secs(30), "the old target to be deleted", || async {
        secrets.get_opt("first").await.ok().flatten().is_none().then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn immutable_targets() -> anyhow::Result<()> {
    let env = Env::new("immutable").await?;
    env.fake_store("s", &[("k", "v1")]).await?;
    env.apply::<ExternalSecret>(&es(
        "imm",
        "  refreshInterval: 1s\n  secretStoreRef: {name: s}\n  target: {immutable: true}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    ))
    .await?;
    let s = env.secret("imm").await?;
    assert_eq!(s.immutable, Some(true));
    env.fake_store("s", &[("k", "v2")]).await?;
    let msg = env.es_ready("imm", "False", "SecretSyncedError").await?;
    assert!(msg.contains("target is immutable"), "{msg}");
    assert_eq!(Env::text(&env.secret("imm").await?)["k"], "v1");
    Ok(())
}

/// ESO #2346: an Owner ExternalSecret never silently takes over a Secret it does not manage; two
/// ExternalSecrets on one Secret get a clear conflict, and there is no write loop.
#[tokio::test]
async fn ownership_is_never_taken_silently() -> anyhow::Result<()> {
    let env = Env::new("ownership").await?;
    env.fake_store("s", &[("k", "v")]).await?;
    env.apply::<Secret>("apiVersion: v1\nkind: Secret\nmetadata: {name: handmade}\nstringData: {precious: data}\n")
        .await?;
    let before = env.secret("handmade").await?.resource_version();
    env.apply::<ExternalSecret>(&es(
        "taker",
        "  secretStoreRef: {name: s}\n  target: {name: handmade}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    ))
    .await?;
    let msg = env.es_ready("taker", "False", "SecretSyncedError").await?;
    assert!(
        msg.contains("not managed by this ExternalSecret") && msg.contains("adopt"),
        "{msg}"
    );
    let s = env.secret("handmade").await?;
    assert_eq!(s.resource_version(), before, "the foreign Secret was not touched");

    // Two ExternalSecrets targeting one Secret.
    let spec = "  refreshInterval: 1s\n  secretStoreRef: {name: s}\n  target: {name: contested}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n";
    env.apply::<ExternalSecret>(&es("first", spec)).await?;
    env.secret("contested").await?;
    env.apply::<ExternalSecret>(&es("second", spec)).await?;
    let msg = env.es_ready("second", "False", "SecretSyncedError").await?;
    assert!(
        msg.contains("owned by another ExternalSecret") && msg.contains("first"),
        "{msg}"
    );
    let rv = env.secret("contested").await?.resource_version();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(env.secret("contested").await?.resource_version(), rv, "no write loop");

    // Opt-in adoption.
    let patch = serde_json::json!({"metadata": {"annotations": {"syncret.dev/adopt-existing-secret": "true"}}});
    env.ns
        .api::<ExternalSecret>()
        .patch("taker", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let s = env
        .secret_where("handmade", "adopted", |s| {
            Env::text(s).get("k").is_some_and(|v| v == "v")
        })
        .await?;
    assert!(!Env::text(&s).contains_key("precious"), "Owner owns all data");
    Ok(())
}

/// Bad input: a clear condition naming the field, the previous Secret left intact, other ExternalSecrets fine.
#[tokio::test]
async fn bad_input_leaves_the_secret_intact_and_names_the_field() -> anyhow::Result<()> {
    let env = Env::new("badinput").await?;
    env.fake_store("s", &[("k", "v")]).await?;
    let good = "  secretStoreRef: {name: s}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n";
    env.apply::<ExternalSecret>(&es("victim", good)).await?;
    env.apply::<ExternalSecret>(&es("bystander", good)).await?;
    let original = env.secret("victim").await?;
    let cases = [
        (
            "  secretStoreRef: {name: s}\n  target:\n    template:\n      data: {x: '{{ .missing }}'}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
            "spec.target.template.data[x]",
        ),
        (
            "  secretStoreRef: {name: s}\n  dataFrom:\n  - find: {name: {regexp: '(unclosed'}}\n",
            "spec.dataFrom[0].find.name.regexp",
        ),
        (
            "  secretStoreRef: {name: s}\n  refreshInterval: 1x\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
            "spec.refreshInterval",
        ),
        (
            "  secretStoreRef: {name: s}\n  data:\n  - {secretKey: k, remoteRef: {key: k, decodingStrategy: Base64}}\n",
            "spec.data[0]",
        ),
        (
            "  secretStoreRef: {name: nope}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
            "SecretStore \"nope\"",
        ),
    ];
    for (spec, field) in cases {
        env.apply::<ExternalSecret>(&es("victim", spec)).await?;
        let api = env.ns.api::<ExternalSecret>();
        let msg = eventually(
            Duration::from_secs(30),
            &format!("a condition naming {field}"),
            || async {
                let e = api.get("victim").await.ok()?;
                let c = e.status?.conditions.into_iter().find(|c| c.status == "False")?;
                c.message.filter(|m| m.contains(field))
            },
        )
        .await?;
        assert!(!msg.contains("v\""), "no value in {msg}");
        let now = env.secret("victim").await?;
        assert_eq!(now.data, original.data, "Secret intact after {field}");
    }
    env.es_ready("bystander", "True", "SecretSynced").await?;
    Ok(())
}

#[tokio::test]
async fn store_status_and_validation_failures() -> anyhow::Result<()> {
    let env = Env::new("storestatus").await?;
    env.fake_store("ok", &[("k", "v")]).await?;
    env.apply::<SecretStore>(&format!(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: broken}}\nspec:\n  controller: {}\n  provider:\n    fake:\n      data: []\n      validationResult: 2\n",
        env.class()
    ))
    .await?;
    let api = env.ns.api::<SecretStore>();
    let cond = |name: &'static str| {
        let api = api.clone();
        async move {
            eventually(Duration::from_secs(30), name, || async {
                let s = api.get(name).await.ok()?;
                let st = s.status?;
                let c = st.conditions.into_iter().find(|c| c.type_ == "Ready")?;
                Some((c, st.capabilities))
            })
            .await
        }
    };
    let (ok, caps) = cond("ok").await?;
    assert_eq!((ok.status.as_str(), ok.reason.as_deref()), ("True", Some("Valid")));
    assert_eq!(caps.map(|c| format!("{c:?}")), Some("ReadWrite".to_string()));
    let (broken, _) = cond("broken").await?;
    assert_eq!(
        (broken.status.as_str(), broken.reason.as_deref()),
        ("False", Some("ValidationFailed"))
    );
    // Flood gate: an ExternalSecret on the broken store is refused with ESO's message.
    env.apply::<ExternalSecret>(&es(
        "gated",
        "  secretStoreRef: {name: broken}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    ))
    .await?;
    let msg = env.es_ready("gated", "False", "SecretSyncedError").await?;
    assert!(msg.contains("SecretStore \"broken\" is not ready"), "{msg}");
    // Events as ESO: Created on the synced one.
    env.apply::<ExternalSecret>(&es(
        "evented",
        "  secretStoreRef: {name: ok}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    ))
    .await?;
    env.secret("evented").await?;
    let events: Api<k8s_openapi::api::events::v1::Event> = env.ns.api();
    eventually(Duration::from_secs(30), "a Created event", || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("Created")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("evented")
        })
    })
    .await?;
    Ok(())
}

/// A new ExternalSecret costs exactly one provider read: the reconcile woken by our own Secret write (or status
/// update) sees the status we just wrote even before the watch delivers it.
#[tokio::test]
async fn a_new_external_secret_reads_the_provider_once() -> anyhow::Result<()> {
    let env = Env::new("onceread").await?;
    env.fake_store("s", &[("k", "v")]).await?;
    env.apply::<ExternalSecret>(&es(
        "one",
        "  refreshInterval: 1h\n  secretStoreRef: {name: s}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    ))
    .await?;
    env.es_ready("one", "True", "SecretSynced").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reads = env
        .op
        .ctx()
        .metrics
        .provider_calls
        .with_label_values(&["Fake", "GetSecret", "success"])
        .get();
    assert_eq!(reads, 1, "one provider read for one new ExternalSecret");
    let m = &env.op.ctx().metrics.secret_writes;
    let writes: u64 = ["create", "apply", "remove-keys", "delete"]
        .iter()
        .map(|l| m.with_label_values(&[l]).get())
        .sum();
    assert_eq!(writes, 1, "one Secret write (a create)");
    Ok(())
}
