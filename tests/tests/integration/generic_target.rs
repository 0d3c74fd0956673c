//! Generic targets (`spec.target.manifest`, docs/generic-targets.md) on the real apiserver: a ConfigMap and a
//! custom resource whose CRD the test installs, written with server-side apply under ESO's field manager, ESO's
//! labels, hash and status reasons; drift healed within seconds; `Merge` into an object someone else made;
//! deletion; and every refusal (flag off, kind not listed, a kind that is never written, a cluster-scoped kind,
//! a foreign object) as a condition naming `spec.target.manifest`, while a canary in the same namespace syncs.
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, ResourceExt};
use syncret::sync::manifest::GenericTargets;
use syncret_crds::ExternalSecret;
use syncret_tests::operator::Operator;
use syncret_tests::{ControlPlane, Env, eventually};

const GROUP: &str = "generic.syncret.dev";

fn es(name: &str, spec: &str) -> String {
    format!("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

/// A namespace and an operator watching it with generic targets as given.
async fn env(prefix: &str, generic: GenericTargets) -> anyhow::Result<Env> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace(prefix).await?;
    let namespace = ns.name.clone();
    let op = Operator::start_with(ns.client.clone(), move |o| {
        o.settings.namespace = Some(namespace);
        o.settings.generic_targets = generic;
    })
    .await?;
    Ok(Env { ns, op })
}

fn allow(resources: &[&str]) -> GenericTargets {
    GenericTargets {
        enabled: true,
        resources: resources.iter().map(|r| r.to_string()).collect(),
    }
}

/// The test's own namespaced kind `AppConfig` (any spec), installed once per control plane.
async fn install_appconfig_crd(client: &Client) -> anyhow::Result<ApiResource> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_yaml::from_str(&format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: appconfigs.{GROUP}}}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: appconfigs, singular: appconfig, kind: AppConfig}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#
    ))?;
    crds.patch(
        &crd.name_any(),
        &PatchParams::apply("generic-target-test").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    eventually(Duration::from_secs(30), "the AppConfig CRD established", || async {
        let c = crds.get(&crd.name_any()).await.ok()?;
        c.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await?;
    Ok(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, "v1", "AppConfig"),
        "appconfigs",
    ))
}

async fn configmap(env: &Env, name: &str, what: &str, pred: impl Fn(&ConfigMap) -> bool) -> anyhow::Result<ConfigMap> {
    let api = env.ns.api::<ConfigMap>();
    eventually(Duration::from_secs(30), what, || async {
        api.get_opt(name).await.ok().flatten().filter(|c| pred(c))
    })
    .await
}

fn data_of(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.data.as_ref().and_then(|d| d.get(key).cloned())
}

#[tokio::test]
async fn a_configmap_target_is_written_healed_and_garbage_collected() -> anyhow::Result<()> {
    let env = env("gt-cm", allow(&["configmaps"])).await?;
    env.fake_store("s", &[("host", "db.internal"), ("port", "5432")])
        .await?;
    env.apply::<ExternalSecret>(&es(
        "app",
        r#"  refreshInterval: 1h
  secretStoreRef: {name: s}
  target:
    name: app-config
    manifest: {apiVersion: v1, kind: ConfigMap}
  data:
  - {secretKey: host, remoteRef: {key: host}}
  - {secretKey: port, remoteRef: {key: port}}
"#,
    ))
    .await?;
    let cm = configmap(&env, "app-config", "ConfigMap app-config", |_| true).await?;
    assert_eq!(data_of(&cm, "host").as_deref(), Some("db.internal"));
    assert_eq!(data_of(&cm, "port").as_deref(), Some("5432"));
    assert_eq!(cm.labels()["reconcile.external-secrets.io/managed"], "true");
    assert!(cm.annotations().contains_key("reconcile.external-secrets.io/data-hash"));
    let owner = &cm.owner_references()[0];
    assert!(owner.kind == "ExternalSecret" && owner.name == "app" && owner.controller == Some(true));
    // Server-side apply under ESO's field manager.
    assert!(cm.metadata.managed_fields.iter().flatten().any(|m| m.manager.as_deref()
        == Some("externalsecrets.external-secrets.io/app")
        && m.operation.as_deref() == Some("Apply")));
    assert_eq!(env.es_ready("app", "True", "ResourceSynced").await?, "secret synced");
    let status = env
        .ns
        .api::<ExternalSecret>()
        .get("app")
        .await?
        .status
        .unwrap_or_default();
    assert!(status.binding.is_none(), "a generic target is not a binding");
    // Someone edits what we write: healed within seconds (the refresh is an hour away).
    let patch = serde_json::json!({"data": {"host": "evil.example"}});
    env.ns
        .api::<ConfigMap>()
        .patch("app-config", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let healed = configmap(&env, "app-config", "the ConfigMap healed", |c| {
        data_of(c, "host").as_deref() == Some("db.internal")
    })
    .await?;
    // A sync with the same values writes nothing: the ConfigMap's version stays (a new refreshInterval is a new
    // generation, read and rendered again; annotations would be copied to the ConfigMap).
    let rv = healed.resource_version();
    env.ns
        .api::<ExternalSecret>()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": {"refreshInterval": "2h"}})),
        )
        .await?;
    eventually(Duration::from_secs(30), "the forced sync", || async {
        let es = env.ns.api::<ExternalSecret>().get("app").await.ok()?;
        let want = syncret::sync::refresh::resource_version(&es);
        (es.status?.synced_resource_version == want).then_some(())
    })
    .await?;
    assert_eq!(
        env.ns.api::<ConfigMap>().get("app-config").await?.resource_version(),
        rv,
        "nothing changed: no write"
    );
    // Owner: deleting the ExternalSecret deletes the ConfigMap (garbage collection).
    env.ns
        .api::<ExternalSecret>()
        .delete("app", &DeleteParams::default())
        .await?;
    let cms = env.ns.api::<ConfigMap>();
    eventually(Duration::from_secs(60), "the ConfigMap garbage-collected", || async {
        cms.get_opt("app-config").await.ok()?.is_none().then_some(())
    })
    .await?;
    env.op.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_custom_resource_target_gets_paths_data_and_merges_into_what_is_there() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let ar = install_appconfig_crd(&client).await?;
    let env = env("gt-cr", allow(&["configmaps", &format!("appconfigs.{GROUP}")])).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(env.ns.client.clone(), &env.ns.name, &ar);
    env.fake_store("s", &[("host", "db"), ("port", "5432"), ("url", "https://hooks/x")])
        .await?;
    env.apply::<ConfigMap>(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tpl}\ndata: {banner: 'welcome to {{ .host }}'}\n",
    )
    .await?;
    // ESO's advanced-path example: literals at spec paths, template.data into data, a ConfigMap item rendered
    // twice into data.
    env.apply::<ExternalSecret>(&es(
        "settings",
        &format!(
            r#"  refreshInterval: 1h
  secretStoreRef: {{name: s}}
  target:
    name: app-settings
    manifest: {{apiVersion: {GROUP}/v1, kind: AppConfig}}
    template:
      templateFrom:
      - literal: |
          host: {{{{ .host }}}}
          port: {{{{ .port }}}}
        target: spec.database
      - literal: "level: info"
        target: spec.logging
      - configMap: {{name: tpl, items: [{{key: banner}}]}}
      data:
        url: "{{{{ .url }}}}"
  data:
  - {{secretKey: host, remoteRef: {{key: host}}}}
  - {{secretKey: port, remoteRef: {{key: port}}}}
  - {{secretKey: url, remoteRef: {{key: url}}}}
"#
        ),
    ))
    .await?;
    let obj = eventually(Duration::from_secs(30), "AppConfig app-settings", || async {
        api.get_opt("app-settings").await.ok().flatten()
    })
    .await?;
    assert_eq!(
        obj.data["spec"]["database"],
        serde_json::json!({"host": "db", "port": 5432})
    );
    assert_eq!(obj.data["spec"]["logging"], serde_json::json!({"level": "info"}));
    assert_eq!(obj.data["data"]["url"], "https://hooks/x");
    assert_eq!(obj.data["data"]["banner"], "welcome to db");
    assert_eq!(obj.labels()["reconcile.external-secrets.io/managed"], "true");
    env.es_ready("settings", "True", "ResourceSynced").await?;
    // The template ConfigMap changes: the custom resource follows within seconds.
    env.ns
        .api::<ConfigMap>()
        .patch(
            "tpl",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"data": {"banner": "hello {{ .host }}"}})),
        )
        .await?;
    eventually(Duration::from_secs(10), "the banner re-rendered", || async {
        let o = api.get_opt("app-settings").await.ok().flatten()?;
        (o.data["data"]["banner"] == "hello db").then_some(())
    })
    .await?;

    // Merge into an AppConfig someone else made (ESO's MergeBehavior): their fields stay, ours are added.
    let theirs: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "AppConfig",
        "metadata": {"name": "slack"},
        "spec": {"type": "slack", "slack": {"channel": "general", "username": "bot"}},
    }))?;
    api.patch("slack", &PatchParams::apply("someone-else"), &Patch::Apply(&theirs))
        .await?;
    env.apply::<ExternalSecret>(&es(
        "slack",
        &format!(
            r#"  refreshInterval: 1h
  secretStoreRef: {{name: s}}
  target:
    name: slack
    creationPolicy: Merge
    manifest: {{apiVersion: {GROUP}/v1, kind: AppConfig}}
    template:
      templateFrom:
      - literal: "api_url: {{{{ .url }}}}"
        target: spec.slack
  data: [{{secretKey: url, remoteRef: {{key: url}}}}]
"#
        ),
    ))
    .await?;
    let merged = eventually(Duration::from_secs(30), "AppConfig slack merged", || async {
        let o = api.get_opt("slack").await.ok().flatten()?;
        o.data["spec"]["slack"].get("api_url").is_some().then_some(o)
    })
    .await?;
    assert_eq!(
        merged.data["spec"],
        serde_json::json!({"type": "slack", "slack": {"channel": "general", "username": "bot",
                                                       "api_url": "https://hooks/x"}})
    );
    assert!(merged.owner_references().is_empty(), "Merge takes no ownership");
    env.es_ready("slack", "True", "ResourceSynced").await?;
    // Merge with nothing there: ESO's ResourceMissing.
    env.apply::<ExternalSecret>(&es(
        "nothing",
        &format!(
            r#"  secretStoreRef: {{name: s}}
  target: {{name: absent, creationPolicy: Merge, manifest: {{apiVersion: {GROUP}/v1, kind: AppConfig}}}}
  data: [{{secretKey: url, remoteRef: {{key: url}}}}]
"#
        ),
    ))
    .await?;
    env.es_ready("nothing", "True", "ResourceMissing").await?;
    assert!(api.get_opt("absent").await?.is_none());
    env.op.stop().await;
    Ok(())
}

#[tokio::test]
async fn deletion_policy_delete_removes_the_target_with_the_external_secret() -> anyhow::Result<()> {
    let env = env("gt-del", allow(&["configmaps"])).await?;
    env.fake_store("s", &[("k", "v")]).await?;
    env.apply::<ExternalSecret>(&es(
        "gone",
        r#"  secretStoreRef: {name: s}
  target: {name: cfg, deletionPolicy: Delete, manifest: {apiVersion: v1, kind: ConfigMap}}
  data: [{secretKey: k, remoteRef: {key: k}}]
"#,
    ))
    .await?;
    configmap(&env, "cfg", "ConfigMap cfg", |_| true).await?;
    env.es_ready("gone", "True", "ResourceSynced").await?;
    let ess = env.ns.api::<ExternalSecret>();
    eventually(Duration::from_secs(30), "the cleanup finalizer", || async {
        let e = ess.get("gone").await.ok()?;
        (!e.finalizers().is_empty()).then_some(())
    })
    .await?;
    ess.delete("gone", &DeleteParams::default()).await?;
    let cms = env.ns.api::<ConfigMap>();
    eventually(
        Duration::from_secs(30),
        "the ExternalSecret and its ConfigMap gone",
        || async {
            let es_gone = ess.get_opt("gone").await.ok()?.is_none();
            let cm_gone = cms.get_opt("cfg").await.ok()?.is_none();
            (es_gone && cm_gone).then_some(())
        },
    )
    .await?;
    env.op.stop().await;
    Ok(())
}

#[tokio::test]
async fn refused_targets_name_the_field_and_others_keep_syncing() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    install_appconfig_crd(&client).await?;
    let spec = |target: &str, manifest: &str, policy: &str| {
        format!(
            "  secretStoreRef: {{name: s}}\n  target: {{name: {target}, creationPolicy: {policy}, manifest: {manifest}}}\n  data: [{{secretKey: k, remoteRef: {{key: k}}}}]\n"
        )
    };
    // Generic targets off (the default): ESO's message and reason.
    let off = env("gt-off", GenericTargets::default()).await?;
    off.fake_store("s", &[("k", "v")]).await?;
    off.apply::<ExternalSecret>(&es("cm", &spec("cm", "{apiVersion: v1, kind: ConfigMap}", "Owner")))
        .await?;
    let msg = off.es_ready("cm", "False", "SecretSyncedError").await?;
    assert_eq!(
        msg,
        "spec.target.manifest: generic targets are disabled. Enable with --unsafe-allow-generic-targets flag"
    );
    assert!(off.ns.api::<ConfigMap>().get_opt("cm").await?.is_none());
    off.op.stop().await;

    // On, ConfigMaps only.
    let env = env(
        "gt-refuse",
        allow(&["configmaps", "rolebindings.rbac.authorization.k8s.io"]),
    )
    .await?;
    env.fake_store("s", &[("k", "v")]).await?;
    let cases = [
        (
            "not-listed",
            format!("{{apiVersion: {GROUP}/v1, kind: AppConfig}}"),
            "SecretSyncedError",
            format!("spec.target.manifest: appconfigs.{GROUP} is not in --generic-target-resources"),
        ),
        (
            "rbac",
            "{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding}".to_string(),
            "SecretSyncedError",
            "spec.target.manifest: rolebindings.rbac.authorization.k8s.io can never be a target: it grants permissions"
                .to_string(),
        ),
        (
            "pod",
            "{apiVersion: v1, kind: Pod}".to_string(),
            "SecretSyncedError",
            "spec.target.manifest: pods can never be a target: it runs code".to_string(),
        ),
        (
            "cluster",
            "{apiVersion: v1, kind: Namespace}".to_string(),
            "SecretSyncedError",
            "spec.target.manifest: namespaces is cluster-scoped".to_string(),
        ),
        (
            "unknown",
            "{apiVersion: nothing.example.com/v1, kind: Nothing}".to_string(),
            "ResourceSyncedError",
            "spec.target.manifest: no kind \"Nothing\" in apiVersion \"nothing.example.com/v1\"".to_string(),
        ),
    ];
    for (name, manifest, _, _) in &cases {
        env.apply::<ExternalSecret>(&es(name, &spec(name, manifest, "Owner")))
            .await?;
    }
    // A ConfigMap nobody manages is not taken over by Owner (ESO overwrites it).
    env.apply::<ConfigMap>("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: foreign}\ndata: {mine: 'yes'}\n")
        .await?;
    env.apply::<ExternalSecret>(&es(
        "takeover",
        &spec("foreign", "{apiVersion: v1, kind: ConfigMap}", "Owner"),
    ))
    .await?;
    // A canary in the same namespace syncs all along.
    env.apply::<ExternalSecret>(&es(
        "canary",
        &spec("canary", "{apiVersion: v1, kind: ConfigMap}", "Owner"),
    ))
    .await?;
    for (name, _, reason, want) in &cases {
        let msg = env.es_ready(name, "False", reason).await?;
        assert!(msg.starts_with(want.as_str()), "{name}: {msg}");
    }
    let msg = env.es_ready("takeover", "False", "ResourceSyncedError").await?;
    assert!(
        msg.contains("ConfigMap \"foreign\" already exists and is not managed by this ExternalSecret"),
        "{msg}"
    );
    let foreign = env.ns.api::<ConfigMap>().get("foreign").await?;
    assert_eq!(data_of(&foreign, "mine").as_deref(), Some("yes"));
    assert!(data_of(&foreign, "k").is_none(), "left as it was");
    env.es_ready("canary", "True", "ResourceSynced").await?;
    configmap(&env, "canary", "the canary's ConfigMap", |c| {
        data_of(c, "k").as_deref() == Some("v")
    })
    .await?;
    // Nothing was written for the refused ones, and no watch was started for kinds it may not write.
    let rbac = Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(env.ns.client.clone(), &env.ns.name);
    assert!(rbac.get_opt("rbac").await?.is_none());
    let kinds = env.op.ctx().dependents.index().kinds();
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k, syncret::sync::dependencies::ObjectKind::ConfigMap)),
        "{kinds:?}"
    );
    env.op.stop().await;
    Ok(())
}
