//! templateFrom sources watched (ESO #1430, open upstream): a ConfigMap or Secret a template reads changes, and
//! every ExternalSecret and PushSecret using it renders again within seconds instead of at its next refresh (here
//! an hour away). Refresh policies that keep what they synced (`CreatedOnce`) are left alone; a missing source
//! that appears heals its ExternalSecret at once; sources are read once per version, not once per render.
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use syncret::dependents::Dependent;
use syncret::sync::dependencies::{ObjectKind, ObjectRef};
use syncret_crds::ExternalSecret;
use syncret_crds::pushsecret::PushSecret;
use syncret_tests::{Env, eventually};

fn es(name: &str, spec: &str) -> String {
    format!("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

/// Sets `data.<key>` of ConfigMap `name`.
async fn set_cm(env: &Env, name: &str, key: &str, value: &str) -> anyhow::Result<()> {
    let patch = serde_json::json!({"data": {key: value}});
    env.ns
        .api::<ConfigMap>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The value of `key` in Secret `name` once it equals `want` (within 10 s: far less than any refresh here).
async fn secret_has(env: &Env, name: &str, key: &str, want: &str) -> anyhow::Result<()> {
    let api = env.ns.api::<Secret>();
    eventually(Duration::from_secs(10), &format!("{name}.{key} = {want:?}"), || async {
        let s = api.get_opt(name).await.ok().flatten()?;
        (Env::text(&s).get(key).map(String::as_str) == Some(want)).then_some(())
    })
    .await
}

#[tokio::test]
async fn a_changed_template_source_re_renders_its_external_secrets_within_seconds() -> anyhow::Result<()> {
    let env = Env::new("tplwatch").await?;
    env.fake_store("s", &[("name", "world")]).await?;
    env.apply::<ConfigMap>(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tpl}\ndata: {greeting: 'hello {{ .name }}'}\n",
    )
    .await?;
    env.apply::<Secret>(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: stpl}\nstringData: {farewell: 'bye {{ .name }}'}\n",
    )
    .await?;
    let spec = |policy: &str| {
        format!(
            r#"  refreshInterval: 1h
  refreshPolicy: {policy}
  secretStoreRef: {{name: s}}
  target:
    template:
      templateFrom:
      - configMap: {{name: tpl, items: [{{key: greeting}}]}}
      - secret: {{name: stpl, items: [{{key: farewell}}]}}
  data: [{{secretKey: name, remoteRef: {{key: name}}}}]
"#
        )
    };
    env.apply::<ExternalSecret>(&es("a", &spec("Periodic"))).await?;
    env.apply::<ExternalSecret>(&es("b", &spec("Periodic"))).await?;
    env.apply::<ExternalSecret>(&es("once", &spec("CreatedOnce"))).await?;
    for name in ["a", "b", "once"] {
        secret_has(&env, name, "greeting", "hello world").await?;
        secret_has(&env, name, "farewell", "bye world").await?;
    }
    // The ConfigMap changes: both periodic ExternalSecrets render again, long before their refresh.
    set_cm(&env, "tpl", "greeting", "hi {{ .name }}").await?;
    secret_has(&env, "a", "greeting", "hi world").await?;
    secret_has(&env, "b", "greeting", "hi world").await?;
    // So does a change of the template Secret.
    let patch = serde_json::json!({"stringData": {"farewell": "ciao {{ .name }}"}});
    env.ns
        .api::<Secret>()
        .patch("stpl", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    secret_has(&env, "a", "farewell", "ciao world").await?;
    secret_has(&env, "b", "farewell", "ciao world").await?;
    env.es_ready("a", "True", "SecretSynced").await?;
    // CreatedOnce keeps what it synced.
    let once = env.secret("once").await?;
    assert_eq!(Env::text(&once)["greeting"], "hello world");
    // The sources were read at the version the watch shows: the index holds them, their data is cached.
    let ctx = env.op.ctx();
    let cm = ObjectRef::new(ObjectKind::ConfigMap, env.ns.name.as_str(), "tpl");
    assert!(
        ctx.dependents.index().cached(&cm).is_some(),
        "the template ConfigMap is cached"
    );
    assert!(
        ctx.dependents
            .index()
            .sources_fingerprint(&Dependent::ExternalSecret(syncret::context::Key::new(
                &env.ns.name,
                "a"
            )))
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_template_source_that_appears_heals_its_external_secret() -> anyhow::Result<()> {
    let env = Env::new("tplmissing").await?;
    env.fake_store("s", &[("name", "world")]).await?;
    env.apply::<ExternalSecret>(&es(
        "late",
        r#"  refreshInterval: 1h
  secretStoreRef: {name: s}
  target:
    template:
      templateFrom:
      - configMap: {name: later, items: [{key: greeting}]}
  data: [{secretKey: name, remoteRef: {key: name}}]
"#,
    ))
    .await?;
    let msg = env.es_ready("late", "False", "SecretSyncedError").await?;
    assert!(msg.contains("templateFrom[0].configMap.name"), "{msg}");
    // A template error is not retried on a timer (the spec is wrong until something changes): the watch of the
    // ConfigMap is what brings it back.
    env.apply::<ConfigMap>(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later}\ndata: {greeting: 'hello {{ .name }}'}\n",
    )
    .await?;
    secret_has(&env, "late", "greeting", "hello world").await?;
    env.es_ready("late", "True", "SecretSynced").await?;
    Ok(())
}

#[tokio::test]
async fn a_changed_template_source_pushes_its_push_secrets_again() -> anyhow::Result<()> {
    let env = Env::new("tplpush").await?;
    env.fake_store("s", &[]).await?;
    env.apply::<Secret>("apiVersion: v1\nkind: Secret\nmetadata: {name: src}\nstringData: {user: admin}\n")
        .await?;
    env.apply::<ConfigMap>(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ptpl}\ndata: {dsn: 'user={{ .user }}'}\n",
    )
    .await?;
    env.apply::<PushSecret>(
        r#"apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: push}
spec:
  refreshInterval: 1h
  secretStoreRefs: [{name: s}]
  selector: {secret: {name: src}}
  template:
    templateFrom:
    - configMap: {name: ptpl, items: [{key: dsn}]}
  data:
  - match: {secretKey: dsn, remoteRef: {remoteKey: app-dsn}}
"#,
    )
    .await?;
    super::push_secret::remote_is(&env, "s", "app-dsn", Some("user=admin")).await?;
    set_cm(&env, "ptpl", "dsn", "login={{ .user }}").await?;
    super::push_secret::remote_is(&env, "s", "app-dsn", Some("login=admin")).await?;
    Ok(())
}
