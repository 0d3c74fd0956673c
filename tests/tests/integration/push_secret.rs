//! PushSecret on the real control plane: push with the fake provider and read back through an ExternalSecret on
//! the same store, property and whole-Secret pushes, `dataTo`, templates, a changed source pushed within seconds,
//! `updatePolicy`, `deletionPolicy` with its finalizer, the deletion guard (ESO #5062: a value another PushSecret
//! still pushes, or the same one through another store over the same backend, is never deleted), the kubernetes
//! provider pushing into another namespace, and bad input reported by name without values.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use syncret_crds::pushsecret::PushSecret;
use syncret_crds::secretstore::StoreKind;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::RemoteKey;
use syncret_tests::{ControlPlane, Env, apply_yaml, eventually};

fn ps(name: &str, spec: &str) -> String {
    format!("apiVersion: external-secrets.io/v1alpha1\nkind: PushSecret\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

fn es(name: &str, spec: &str) -> String {
    format!("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn source(env: &Env, name: &str, pairs: &[(&str, &str)]) -> anyhow::Result<()> {
    let data: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let secret =
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data});
    env.apply::<Secret>(&serde_json::to_string(&secret)?).await?;
    Ok(())
}

/// Waits until the PushSecret's Ready condition has this status and reason; returns its message.
async fn ps_ready(env: &Env, name: &str, status: &str, reason: &str) -> anyhow::Result<String> {
    let api = env.ns.api::<PushSecret>();
    eventually(
        Duration::from_secs(30),
        &format!("PushSecret {name} Ready={status} ({reason})"),
        || async {
            let p = api.get(name).await.ok()?;
            let c = p.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
            (c.status == status && c.reason.as_deref() == Some(reason)).then(|| c.message.unwrap_or_default())
        },
    )
    .await
}

/// The status `syncedPushSecrets` as store → sorted remote refs.
async fn synced(env: &Env, name: &str) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let p = env.ns.api::<PushSecret>().get(name).await?;
    Ok(p.status
        .unwrap_or_default()
        .synced_push_secrets
        .into_iter()
        .map(|(s, m)| (s, m.into_keys().collect()))
        .collect())
}

/// The value at `key` in store `store` of this namespace, read through the operator's own client.
async fn remote(env: &Env, store: &str, key: &str) -> anyhow::Result<Option<String>> {
    let ctx = env.op.ctx();
    let id = syncret::sync::fetch::StoreId {
        kind: StoreKind::SecretStore,
        name: store.into(),
    };
    let info = ctx
        .stores
        .resolve(&env.ns.name, &id)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .info;
    let (_, client) = ctx.reads.client_for(&info, &env.ns.name).await?;
    match client.get_secret(&RemoteKey::new(key)).await {
        Ok(v) => Ok(Some(
            String::from_utf8_lossy(v.select(key, None)?.as_bytes()).into_owned(),
        )),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn remote_is(env: &Env, store: &str, key: &str, want: Option<&str>) -> anyhow::Result<()> {
    eventually(
        Duration::from_secs(30),
        &format!("{store}/{key} to be {want:?}"),
        || async {
            let got = remote(env, store, key).await.ok()?;
            (got.as_deref() == want).then_some(())
        },
    )
    .await
}

#[tokio::test]
async fn pushes_to_the_fake_and_reads_back_through_an_external_secret() -> anyhow::Result<()> {
    let env = Env::new("push-fake").await?;
    env.fake_store("s", &[]).await?;
    source(&env, "src", &[("user", "admin"), ("pass", "p4ss")]).await?;
    env.apply::<PushSecret>(&ps(
        "push",
        r#"  refreshInterval: 1h
  secretStoreRefs: [{name: s}]
  selector: {secret: {name: src}}
  data:
  - match: {secretKey: user, remoteRef: {remoteKey: db-user}}
  - match: {secretKey: pass, remoteRef: {remoteKey: db, property: password}}
  - match: {secretKey: user, remoteRef: {remoteKey: db, property: username}}
  - match: {remoteRef: {remoteKey: db-all}}
"#,
    ))
    .await?;
    let msg = ps_ready(&env, "push", "True", "Synced").await?;
    assert_eq!(msg, "PushSecret synced successfully");
    assert_eq!(
        synced(&env, "push").await?,
        BTreeMap::from([(
            "SecretStore/s".to_string(),
            vec![
                "db-all".into(),
                "db-user".into(),
                "db/password".into(),
                "db/username".into()
            ]
        )])
    );
    let p = env.ns.api::<PushSecret>().get("push").await?;
    assert!(p.finalizers().is_empty(), "no finalizer with deletionPolicy None");
    let status = p.status.unwrap_or_default();
    assert!(status.refresh_time.is_some());
    assert!(status.synced_resource_version.starts_with("1-"));

    env.apply::<ExternalSecret>(&es(
        "back",
        r#"  refreshInterval: 1s
  secretStoreRef: {name: s}
  data:
  - {secretKey: user, remoteRef: {key: db-user}}
  - {secretKey: password, remoteRef: {key: db, property: password}}
  - {secretKey: username, remoteRef: {key: db, property: username}}
  - {secretKey: all-pass, remoteRef: {key: db-all, property: pass}}
"#,
    ))
    .await?;
    let s = env.secret("back").await?;
    assert_eq!(
        Env::text(&s),
        map(&[
            ("user", "admin"),
            ("password", "p4ss"),
            ("username", "admin"),
            ("all-pass", "p4ss")
        ])
    );

    // A changed source is pushed within seconds (refreshInterval is 1h): the Secret watch wakes the PushSecret.
    let changed = Instant::now();
    source(&env, "src", &[("user", "root"), ("pass", "p4ss")]).await?;
    env.secret_where("back", "the new value read back", |s| Env::text(s)["user"] == "root")
        .await?;
    let took = changed.elapsed();
    assert!(took < Duration::from_secs(10), "pushed {took:?} after the change");
    assert_eq!(
        remote(&env, "s", "db-all").await?.as_deref(),
        Some(r#"{"pass":"p4ss","user":"root"}"#)
    );
    Ok(())
}

#[tokio::test]
async fn templates_and_data_to() -> anyhow::Result<()> {
    let env = Env::new("push-tpl").await?;
    env.fake_store("s", &[]).await?;
    env.apply::<SecretStore>(&format!(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: t, labels: {{tier: x}}}}\nspec:\n  controller: {}\n  provider: {{fake: {{data: []}}}}\n",
        env.class()
    ))
    .await?;
    source(
        &env,
        "src",
        &[
            ("db-user", "u"),
            ("db-pass", "p"),
            ("app-one", "1"),
            ("app-two", "2"),
            ("a_U002f_b", "slash"),
        ],
    )
    .await?;
    env.apply::<PushSecret>(&ps(
        "push",
        r#"  secretStoreRefs: [{name: s}, {labelSelector: {matchLabels: {tier: x}}}]
  selector: {secret: {name: src}}
  template:
    data:
      dsn: "postgres://{{ index . \"db-user\" }}:{{ index . \"db-pass\" }}@db"
  data:
  - match: {secretKey: dsn, remoteRef: {remoteKey: dsn}}
  - match: {secretKey: a/b, remoteRef: {remoteKey: unicode}}
    conversionStrategy: ReverseUnicode
  dataTo:
  - storeRef: {name: s}
    remoteKey: bundle
    match: {regexp: "^db-"}
  - storeRef: {labelSelector: {matchLabels: {tier: x}}}
    match: {regexp: "^app-"}
    rewrite:
    - regexp: {source: "^app-(.*)$", target: "apps-$1"}
    - transform: {template: "{{ .value | upper }}"}
"#,
    ))
    .await?;
    ps_ready(&env, "push", "True", "Synced").await?;
    assert_eq!(
        synced(&env, "push").await?,
        BTreeMap::from([
            (
                "SecretStore/s".to_string(),
                vec!["bundle".into(), "dsn".into(), "unicode".into()]
            ),
            (
                "SecretStore/t".to_string(),
                vec!["APPS-ONE".into(), "APPS-TWO".into(), "dsn".into(), "unicode".into()]
            ),
        ])
    );
    assert_eq!(remote(&env, "s", "dsn").await?.as_deref(), Some("postgres://u:p@db"));
    assert_eq!(
        remote(&env, "s", "bundle").await?.as_deref(),
        Some(r#"{"db-pass":"p","db-user":"u"}"#)
    );
    assert_eq!(remote(&env, "s", "unicode").await?.as_deref(), Some("slash"));
    assert_eq!(remote(&env, "t", "APPS-TWO").await?.as_deref(), Some("2"));
    assert_eq!(
        remote(&env, "s", "APPS-TWO").await?,
        None,
        "dataTo by label only for store t"
    );
    Ok(())
}

#[tokio::test]
async fn update_policies() -> anyhow::Result<()> {
    let env = Env::new("push-upd").await?;
    env.fake_store("s", &[]).await?;
    source(&env, "a", &[("k", "from-a")]).await?;
    source(&env, "b", &[("k", "from-b")]).await?;
    let spec = |src: &str, remote: &str, policy: &str| {
        format!(
            "  updatePolicy: {policy}\n  secretStoreRefs: [{{name: s}}]\n  selector: {{secret: {{name: {src}}}}}\n  data:\n  - match: {{secretKey: k, remoteRef: {{remoteKey: {remote}}}}}\n"
        )
    };
    env.apply::<PushSecret>(&ps("first", &spec("a", "shared", "Replace")))
        .await?;
    ps_ready(&env, "first", "True", "Synced").await?;
    remote_is(&env, "s", "shared", Some("from-a")).await?;
    // IfNotExists leaves an existing value alone, and does not claim it.
    env.apply::<PushSecret>(&ps("polite", &spec("b", "shared", "IfNotExists")))
        .await?;
    let msg = ps_ready(&env, "polite", "True", "Synced").await?;
    assert_eq!(
        msg,
        "PushSecret synced successfully. Existing secrets in providers unchanged."
    );
    assert_eq!(remote(&env, "s", "shared").await?.as_deref(), Some("from-a"));
    assert_eq!(
        synced(&env, "polite").await?,
        BTreeMap::from([("SecretStore/s".to_string(), vec![])])
    );
    // IfNotExists writes what is missing.
    env.apply::<PushSecret>(&ps("fresh", &spec("b", "new-key", "IfNotExists")))
        .await?;
    ps_ready(&env, "fresh", "True", "Synced").await?;
    remote_is(&env, "s", "new-key", Some("from-b")).await?;
    // Replace overwrites.
    env.apply::<PushSecret>(&ps("rude", &spec("b", "shared", "Replace")))
        .await?;
    ps_ready(&env, "rude", "True", "Synced").await?;
    remote_is(&env, "s", "shared", Some("from-b")).await?;
    Ok(())
}

#[tokio::test]
async fn deletion_policies_source_deletion_and_the_5062_guard() -> anyhow::Result<()> {
    let env = Env::new("push-del").await?;
    env.fake_store("s", &[]).await?;
    source(&env, "src", &[("k", "v")]).await?;
    let spec = |policy: &str, remote: &str| {
        format!(
            "  deletionPolicy: {policy}\n  secretStoreRefs: [{{name: s}}]\n  selector: {{secret: {{name: src}}}}\n  data:\n  - match: {{secretKey: k, remoteRef: {{remoteKey: {remote}}}}}\n"
        )
    };
    let pss = env.ns.api::<PushSecret>();
    env.apply::<PushSecret>(&ps("del", &spec("Delete", "gone"))).await?;
    env.apply::<PushSecret>(&ps("keep", &spec("None", "kept"))).await?;
    ps_ready(&env, "del", "True", "Synced").await?;
    ps_ready(&env, "keep", "True", "Synced").await?;
    remote_is(&env, "s", "gone", Some("v")).await?;
    remote_is(&env, "s", "kept", Some("v")).await?;
    let del = pss.get("del").await?;
    assert_eq!(del.finalizers(), ["pushsecret.externalsecrets.io/finalizer"]);
    pss.delete("del", &DeleteParams::default()).await?;
    pss.delete("keep", &DeleteParams::default()).await?;
    remote_is(&env, "s", "gone", None).await?;
    eventually(Duration::from_secs(30), "both PushSecrets gone", || async {
        let l = pss.list(&Default::default()).await.ok()?;
        l.items.is_empty().then_some(())
    })
    .await?;
    assert_eq!(
        remote(&env, "s", "kept").await?.as_deref(),
        Some("v"),
        "None keeps the value"
    );

    // ESO #5062: three PushSecrets push the same remote key.
    for n in ["one", "two", "three"] {
        env.apply::<PushSecret>(&ps(n, &spec("Delete", "shared"))).await?;
        ps_ready(&env, n, "True", "Synced").await?;
    }
    pss.delete("one", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(30), "one deleted", || async {
        pss.get_opt("one").await.ok()?.is_none().then_some(())
    })
    .await?;
    assert_eq!(
        remote(&env, "s", "shared").await?.as_deref(),
        Some("v"),
        "two and three still push it"
    );
    // Changing what "two" pushes does not delete what "three" still pushes.
    env.apply::<PushSecret>(&ps("two", &spec("Delete", "moved"))).await?;
    remote_is(&env, "s", "moved", Some("v")).await?;
    eventually(Duration::from_secs(30), "two's status lists only moved", || async {
        let s = synced(&env, "two").await.ok()?;
        (s.get("SecretStore/s")? == &vec!["moved".to_string()]).then_some(())
    })
    .await?;
    assert_eq!(
        remote(&env, "s", "shared").await?.as_deref(),
        Some("v"),
        "three still pushes it"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = env.ns.api();
    let kept = eventually(Duration::from_secs(30), "a Kept event", || async {
        let l = events.list(&Default::default()).await.ok()?;
        l.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Kept"))
            .and_then(|e| e.note)
    })
    .await?;
    assert!(kept.contains("still pushed by PushSecret"), "{kept}");
    // The last one to push it deletes it.
    pss.delete("three", &DeleteParams::default()).await?;
    remote_is(&env, "s", "shared", None).await?;

    // The source Secret goes away: with Delete, what was pushed is removed.
    env.ns.api::<Secret>().delete("src", &DeleteParams::default()).await?;
    remote_is(&env, "s", "moved", None).await?;
    let msg = ps_ready(&env, "two", "False", "SourceDeleted").await?;
    assert_eq!(msg, "source secret deleted; provider secrets cleaned up");
    assert!(synced(&env, "two").await?.is_empty());
    // It comes back: pushed again.
    source(&env, "src", &[("k", "again")]).await?;
    remote_is(&env, "s", "moved", Some("again")).await?;
    ps_ready(&env, "two", "True", "Synced").await?;
    Ok(())
}

#[tokio::test]
async fn bad_input_is_named_without_values() -> anyhow::Result<()> {
    let env = Env::new("push-bad").await?;
    env.fake_store("s", &[]).await?;
    source(&env, "src", &[("k", "s3cr3t-value")]).await?;
    let cases = [
        (
            "no-secret",
            "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: nope}}\n  data:\n  - match: {secretKey: k, remoteRef: {remoteKey: r}}\n",
            r#"could not get source secret: Secret "nope" not found"#,
        ),
        (
            "no-key",
            "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: missing, remoteRef: {remoteKey: r}}\n",
            r#"secret key "missing" does not exist"#,
        ),
        (
            "no-store",
            "  secretStoreRefs: [{name: ghost}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: k, remoteRef: {remoteKey: r}}\n",
            r#"SecretStore "ghost" not found"#,
        ),
        (
            "generator",
            "  secretStoreRefs: [{name: s}]\n  selector: {generatorRef: {kind: Password, name: pw}}\n",
            // Generators are supported (docs/generators.md); this one does not exist.
            r#"spec.selector.generatorRef: name: Password "pw" not found"#,
        ),
        (
            "template",
            "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  template: {data: {x: '{{ .nokey }}'}}\n  data:\n  - match: {secretKey: x, remoteRef: {remoteKey: r}}\n",
            "spec.template.data[x]",
        ),
    ];
    for (name, spec, _) in &cases {
        env.apply::<PushSecret>(&ps(name, spec)).await?;
    }
    for (name, _, want) in &cases {
        let msg = ps_ready(&env, name, "False", "Errored").await?;
        assert!(msg.contains(want), "{name}: {msg}");
        assert!(!msg.contains("s3cr3t"), "{name}: {msg}");
    }
    // A fixed source is picked up by the Secret watch.
    source(&env, "src", &[("k", "s3cr3t-value"), ("missing", "now-there")]).await?;
    ps_ready(&env, "no-key", "True", "Synced").await?;
    let events: Api<k8s_openapi::api::events::v1::Event> = env.ns.api();
    let list = events.list(&Default::default()).await?;
    assert!(
        list.items.iter().any(|e| e.reason.as_deref() == Some("Errored")),
        "Errored events"
    );
    for e in &list.items {
        let note = e.note.clone().unwrap_or_default();
        assert!(!note.contains("s3cr3t") && !note.contains("now-there"), "{note}");
    }
    Ok(())
}

/// A PushSecret applied together with its store (one GitOps commit) waits for the store's first validation: it
/// never reports the passing "not ready (not validated yet)" of a store its reconciler has not looked at. Store,
/// source and PushSecret all exist before the operator starts, so its first look at the PushSecret comes as the
/// store is being validated.
#[tokio::test]
async fn applied_together_with_its_store_waits_for_the_first_validation() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("push-together").await?;
    let class = syncret_tests::unique_name("class");
    apply_yaml(
        &ns.api::<SecretStore>(),
        &format!("apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: s}}\nspec:\n  controller: {class}\n  provider: {{fake: {{data: []}}}}\n"),
    )
    .await?;
    apply_yaml(
        &ns.api::<Secret>(),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: src}\nstringData: {k: pushed-together}\n",
    )
    .await?;
    apply_yaml(
        &ns.api::<PushSecret>(),
        &ps("together", "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: k, remoteRef: {remoteKey: r}}\n"),
    )
    .await?;
    let namespace = ns.name.clone();
    let op = syncret_tests::operator::Operator::start_with(ns.client.clone(), |o| {
        o.settings.namespace = Some(namespace);
        o.settings.controller_class = class.clone();
    })
    .await?;
    let env = Env { ns, op };
    ps_ready(&env, "together", "True", "Synced").await?;
    let events: Api<k8s_openapi::api::events::v1::Event> = env.ns.api();
    let errored: Vec<String> = (events.list(&Default::default()).await?.items.into_iter())
        .filter(|e| e.reason.as_deref() == Some("Errored"))
        .map(|e| e.note.unwrap_or_default())
        .collect();
    assert!(errored.is_empty(), "no failure on the way to Synced: {errored:?}");
    Ok(())
}

/// The kubernetes provider: the test control plane is the "remote cluster"; a ServiceAccount of the test namespace
/// may write Secrets in a second namespace. Two stores address that same namespace, and the PushSecret moves from
/// one to the other: ESO #5062 deleted the secret then, syncret keeps it.
#[tokio::test]
async fn kubernetes_provider_pushes_into_another_namespace_and_survives_a_store_switch() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let env = Env::new("push-k8s").await?;
    let target = cp.namespace("push-target").await?;
    apply_yaml(
        &target.api::<Role>(),
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: writer}\nrules:\n- {apiGroups: [''], resources: [secrets], verbs: [get, list, create, update, patch, delete]}\n",
    )
    .await?;
    apply_yaml(
        &target.api::<RoleBinding>(),
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: writer}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: writer}}\nsubjects: [{{kind: ServiceAccount, name: pusher, namespace: {}}}]\n",
            env.ns.name
        ),
    )
    .await?;
    let sas = env.ns.api::<ServiceAccount>();
    apply_yaml(&sas, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: pusher}\n").await?;
    let req = k8s_openapi::api::authentication::v1::TokenRequest {
        spec: Some(k8s_openapi::api::authentication::v1::TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = sas
        .create_token_request("pusher", &PostParams::default(), &req)
        .await?
        .status
        .and_then(|s| s.token)
        .unwrap_or_default();
    env.apply::<Secret>(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: pusher-token}}\nstringData: {{token: '{token}'}}\n"
    ))
    .await?;
    let (server, ca) = cp.server_and_ca()?;
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    for store in ["k8s-a", "k8s-b"] {
        env.apply::<SecretStore>(&format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: {store}}}\nspec:\n  controller: {}\n  provider:\n    kubernetes:\n      remoteNamespace: {}\n      server: {{url: '{server}', caBundle: {ca}}}\n      auth: {{token: {{bearerToken: {{name: pusher-token, key: token}}}}}}\n",
            env.class(),
            target.name
        ))
        .await?;
    }
    source(&env, "src", &[("user", "admin"), ("pass", "p4ss")]).await?;
    let spec = |store: &str| {
        format!(
            "  deletionPolicy: Delete\n  secretStoreRefs: [{{name: {store}}}]\n  selector: {{secret: {{name: src}}}}\n  data:\n  - match: {{secretKey: user, remoteRef: {{remoteKey: creds, property: username}}}}\n  - match: {{remoteRef: {{remoteKey: whole}}}}\n"
        )
    };
    env.apply::<PushSecret>(&ps("push", &spec("k8s-a"))).await?;
    ps_ready(&env, "push", "True", "Synced").await?;
    let remote_secrets = target.api::<Secret>();
    let creds = remote_secrets.get("creds").await?;
    assert_eq!(Env::text(&creds), map(&[("username", "admin")]));
    let whole = remote_secrets.get("whole").await?;
    assert_eq!(Env::text(&whole), map(&[("user", "admin"), ("pass", "p4ss")]));

    // Same backend through another store: nothing is deleted.
    env.apply::<PushSecret>(&ps("push", &spec("k8s-b"))).await?;
    eventually(Duration::from_secs(30), "status moved to k8s-b", || async {
        let s = synced(&env, "push").await.ok()?;
        (s.len() == 1 && s.contains_key("SecretStore/k8s-b")).then_some(())
    })
    .await?;
    ps_ready(&env, "push", "True", "Synced").await?;
    assert!(
        remote_secrets.get_opt("creds").await?.is_some(),
        "ESO #5062: not deleted"
    );
    assert!(
        remote_secrets.get_opt("whole").await?.is_some(),
        "ESO #5062: not deleted"
    );

    // Deletion with Delete removes the remote values.
    env.ns
        .api::<PushSecret>()
        .delete("push", &DeleteParams::default())
        .await?;
    eventually(Duration::from_secs(30), "remote Secrets deleted", || async {
        let a = remote_secrets.get_opt("creds").await.ok()?;
        let b = remote_secrets.get_opt("whole").await.ok()?;
        (a.is_none() && b.is_none()).then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn label_selected_sources_and_stores() -> anyhow::Result<()> {
    let env = Env::new("push-sel").await?;
    env.apply::<SecretStore>(&format!(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: s, labels: {{push: target}}}}\nspec:\n  controller: {}\n  provider: {{fake: {{data: []}}}}\n",
        env.class()
    ))
    .await?;
    env.apply::<Secret>(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: one, labels: {push: me}}\nstringData: {token: t1}\n",
    )
    .await?;
    env.apply::<PushSecret>(&ps(
        "bulk",
        "  deletionPolicy: Delete\n  secretStoreRefs: [{labelSelector: {matchLabels: {push: target}}}]\n  selector: {secret: {selector: {matchLabels: {push: me}}}}\n  data:\n  - match: {secretKey: token, remoteRef: {remoteKey: token}}\n",
    ))
    .await?;
    ps_ready(&env, "bulk", "True", "Synced").await?;
    remote_is(&env, "s", "token", Some("t1")).await?;
    // A changed selected Secret wakes the PushSecret through the Secret watch.
    let secrets = env.ns.api::<Secret>();
    secrets
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"token": "t2"}})),
        )
        .await?;
    remote_is(&env, "s", "token", Some("t2")).await?;
    // No Secret matches any more: nothing is pushed, and with Delete what was pushed goes.
    secrets
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"push": null}}})),
        )
        .await?;
    remote_is(&env, "s", "token", None).await?;
    ps_ready(&env, "bulk", "True", "Synced").await?;
    Ok(())
}

/// OpenBao (KV v2) end to end: properties and a whole-Secret push land in OpenBao with the `managed-by` marker,
/// are read back through an ExternalSecret, a changed source is pushed, a dropped entry is deleted (its property
/// only), and deleting the PushSecret removes the keys.
#[tokio::test]
async fn vault_push_secret_end_to_end() -> anyhow::Result<()> {
    let bao = syncret_tests::servers::OpenBao::start().await?;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let req = http
            .get(format!("{}/v1/secret/data/{path}", bao.addr()))
            .header("X-Vault-Token", bao.root_token());
        async move {
            let resp = req.send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.json::<serde_json::Value>().await.ok()
        }
    };
    let env = Env::new("push-vault").await?;
    source(&env, "vault-token", &[("token", bao.root_token())]).await?;
    env.apply::<SecretStore>(&format!(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: vault}}\nspec:\n  controller: {}\n  provider:\n    vault:\n      server: {}\n      path: secret\n      version: v2\n      auth: {{tokenSecretRef: {{name: vault-token, key: token}}}}\n",
        env.class(),
        bao.addr()
    ))
    .await?;
    source(&env, "src", &[("user", "admin"), ("pass", "p4ss")]).await?;
    let spec = |with_pass: bool| {
        let pass = if with_pass {
            "  - match: {secretKey: pass, remoteRef: {remoteKey: app, property: password}}\n"
        } else {
            ""
        };
        format!(
            "  deletionPolicy: Delete\n  secretStoreRefs: [{{name: vault}}]\n  selector: {{secret: {{name: src}}}}\n  data:\n  - match: {{secretKey: user, remoteRef: {{remoteKey: app, property: username}}}}\n{pass}  - match: {{remoteRef: {{remoteKey: all}}}}\n"
        )
    };
    env.apply::<PushSecret>(&ps("push", &spec(true))).await?;
    ps_ready(&env, "push", "True", "Synced").await?;
    let app = get("app".into())
        .await
        .ok_or_else(|| anyhow::anyhow!("secret/app missing"))?;
    assert_eq!(
        app["data"]["data"],
        serde_json::json!({"username": "admin", "password": "p4ss"})
    );
    assert_eq!(
        app["data"]["metadata"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );
    let all = get("all".into())
        .await
        .ok_or_else(|| anyhow::anyhow!("secret/all missing"))?;
    assert_eq!(
        all["data"]["data"],
        serde_json::json!({"user": "admin", "pass": "p4ss"})
    );

    env.apply::<ExternalSecret>(&es(
        "back",
        "  refreshInterval: 1s\n  secretStoreRef: {name: vault}\n  data:\n  - {secretKey: u, remoteRef: {key: app, property: username}}\n",
    ))
    .await?;
    assert_eq!(Env::text(&env.secret("back").await?), map(&[("u", "admin")]));
    source(&env, "src", &[("user", "root"), ("pass", "p4ss")]).await?;
    env.secret_where("back", "the changed source read back", |s| Env::text(s)["u"] == "root")
        .await?;

    // The pass entry is dropped: only its property goes.
    env.apply::<PushSecret>(&ps("push", &spec(false))).await?;
    eventually(Duration::from_secs(30), "password property deleted", || async {
        let app = get("app".into()).await?;
        (app["data"]["data"] == serde_json::json!({"username": "root"})).then_some(())
    })
    .await?;

    env.ns
        .api::<PushSecret>()
        .delete("push", &DeleteParams::default())
        .await?;
    eventually(Duration::from_secs(30), "keys deleted with the PushSecret", || async {
        let (a, b) = (get("app".into()).await, get("all".into()).await);
        (a.is_none() && b.is_none()).then_some(())
    })
    .await?;
    Ok(())
}

/// The store finalizer (as ESO): a store used by a PushSecret with `deletionPolicy: Delete` outlives it, so
/// deleting both at once (a namespace being deleted) still deletes the pushed values through the store.
#[tokio::test]
async fn store_finalizer_keeps_the_store_until_pushed_values_are_deleted() -> anyhow::Result<()> {
    let env = Env::new("push-storefin").await?;
    env.fake_store("s", &[]).await?;
    source(&env, "src", &[("k", "v")]).await?;
    env.apply::<PushSecret>(&ps(
        "push",
        "  deletionPolicy: Delete\n  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: k, remoteRef: {remoteKey: r}}\n",
    ))
    .await?;
    ps_ready(&env, "push", "True", "Synced").await?;
    let stores = env.ns.api::<SecretStore>();
    eventually(Duration::from_secs(30), "store finalizer", || async {
        let s = stores.get("s").await.ok()?;
        s.finalizers()
            .iter()
            .any(|f| f == "secretstore.externalsecrets.io/finalizer")
            .then_some(())
    })
    .await?;
    stores.delete("s", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = stores.get("s").await?;
    assert!(
        s.metadata.deletion_timestamp.is_some(),
        "held while the PushSecret needs it"
    );
    remote_is(&env, "s", "r", Some("v")).await?;
    env.ns
        .api::<PushSecret>()
        .delete("push", &DeleteParams::default())
        .await?;
    eventually(Duration::from_secs(30), "store released and gone", || async {
        stores.get_opt("s").await.ok()?.is_none().then_some(())
    })
    .await?;
    assert!(
        env.ns.api::<PushSecret>().get_opt("push").await?.is_none(),
        "the PushSecret went first"
    );
    // The fake keeps pushed values per store name: a store of the same name shows the value was deleted.
    env.fake_store("s", &[]).await?;
    eventually(Duration::from_secs(30), "the new store to be usable", || async {
        remote(&env, "s", "unrelated").await.ok().map(|_| ())
    })
    .await?;
    assert_eq!(remote(&env, "s", "r").await?, None, "deleted through the held store");
    Ok(())
}

/// AWS Secrets Manager (moto) end to end, ESO #5062 literally: a PushSecret moves between two SecretStores over
/// the same account and region (one with `forceDeleteWithoutRecovery`) and the secret survives; `data[].metadata`
/// reaches the provider (tags, `secretPushFormat: string`); deletion with Delete removes the secrets.
#[tokio::test]
async fn aws_push_secret_end_to_end_and_the_store_switch_of_5062() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let moto = syncret_tests::servers::Moto::start().await?;
    let ns = cp.namespace("push-aws").await?;
    let mut opts = syncret_tests::operator::options();
    opts.settings.namespace = Some(ns.name.clone());
    let mut registry = syncret_providers::Registry::with_default_providers();
    registry.register(std::sync::Arc::new(syncret_providers::aws::Aws::with_endpoint(
        moto.endpoint(),
    )));
    let op = syncret_tests::operator::Operator::start_registry(ns.client.clone(), opts, registry).await?;
    let env = Env { ns, op };
    source(&env, "creds", &[("id", "AKIDSTATIC"), ("secret", "s")]).await?;
    for (store, force) in [("a", true), ("b", false)] {
        env.apply::<SecretStore>(&format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: {store}}}\nspec:\n  controller: {}\n  provider:\n    aws:\n      service: SecretsManager\n      region: us-east-1\n      secretsManager: {{forceDeleteWithoutRecovery: {force}}}\n      auth:\n        secretRef:\n          accessKeyIDSecretRef: {{name: creds, key: id}}\n          secretAccessKeySecretRef: {{name: creds, key: secret}}\n",
            env.class()
        ))
        .await?;
    }
    source(&env, "src", &[("user", "admin"), ("pass", "p4ss")]).await?;
    let spec = |store: &str| {
        format!(
            "  deletionPolicy: Delete\n  secretStoreRefs: [{{name: {store}}}]\n  selector: {{secret: {{name: src}}}}\n  data:\n  - match: {{remoteRef: {{remoteKey: app/all}}}}\n    metadata:\n      apiVersion: kubernetes.external-secrets.io/v1alpha1\n      kind: PushSecretMetadata\n      spec: {{secretPushFormat: string, tags: {{team: payments}}}}\n  - match: {{secretKey: user, remoteRef: {{remoteKey: app/creds, property: username}}}}\n"
        )
    };
    env.apply::<PushSecret>(&ps("push", &spec("a"))).await?;
    ps_ready(&env, "push", "True", "Synced").await?;
    assert_eq!(
        remote(&env, "a", "app/all").await?.as_deref(),
        Some(r#"{"pass":"p4ss","user":"admin"}"#)
    );
    assert_eq!(
        remote(&env, "a", "app/creds").await?.as_deref(),
        Some(r#"{"username":"admin"}"#)
    );
    let http = reqwest::Client::new();
    let sm = |op: &str, body: serde_json::Value| {
        http.post(moto.endpoint())
            .header("X-Amz-Target", format!("secretsmanager.{op}"))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00",
            )
            .body(body.to_string())
            .send()
    };
    let described: serde_json::Value = sm("DescribeSecret", serde_json::json!({"SecretId": "app/all"}))
        .await?
        .json()
        .await?;
    let tags = described["Tags"].as_array().cloned().unwrap_or_default();
    assert!(
        tags.contains(&serde_json::json!({"Key": "team", "Value": "payments"})),
        "{described}"
    );
    let value: serde_json::Value = sm("GetSecretValue", serde_json::json!({"SecretId": "app/all"}))
        .await?
        .json()
        .await?;
    assert_eq!(
        value["SecretString"], r#"{"pass":"p4ss","user":"admin"}"#,
        "secretPushFormat: string"
    );

    // ESO #5062: switching to store b (same account and region) must not delete through store a.
    env.apply::<PushSecret>(&ps("push", &spec("b"))).await?;
    eventually(Duration::from_secs(30), "status moved to store b", || async {
        let s = synced(&env, "push").await.ok()?;
        (s.len() == 1 && s.contains_key("SecretStore/b")).then_some(())
    })
    .await?;
    for key in ["app/all", "app/creds"] {
        let d: serde_json::Value = sm("DescribeSecret", serde_json::json!({"SecretId": key}))
            .await?
            .json()
            .await?;
        assert!(d["DeletedDate"].is_null(), "{key} not deleted: {d}");
    }
    assert_eq!(
        remote(&env, "b", "app/creds").await?.as_deref(),
        Some(r#"{"username":"admin"}"#)
    );

    // Deletion with Delete removes the values (store b: scheduled deletion, so reads find nothing).
    env.ns
        .api::<PushSecret>()
        .delete("push", &DeleteParams::default())
        .await?;
    remote_is(&env, "b", "app/all", None).await?;
    remote_is(&env, "b", "app/creds", None).await?;
    Ok(())
}
