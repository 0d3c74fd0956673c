//! Rollout on change: a Deployment's pod template gets a restart annotation only when the target Secret's
//! data actually changes — never on a no-op refresh, never on first creation unless asked.
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use syncret_crds::ExternalSecret;
use syncret_tests::Env;

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c, image: busybox}}]}}\n"
    )
}

async fn restarted_at(env: &Env, name: &str) -> anyhow::Result<Option<String>> {
    let d = env.ns.api::<Deployment>().get(name).await?;
    Ok(d.spec
        .template
        .metadata
        .and_then(|m| m.annotations)
        .and_then(|a| a.get("kubectl.kubernetes.io/restartedAt").cloned()))
}

#[tokio::test]
async fn restarts_only_when_the_data_changes() -> anyhow::Result<()> {
    let env = Env::new("rollout").await?;
    env.apply::<Deployment>(&deployment("web")).await?;
    env.apply::<Deployment>(&deployment("eager")).await?;
    env.fake_store("s", &[("k", "v1")]).await?;
    let es = |name: &str, annotations: &str| {
        format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  refreshInterval: 1s\n  secretStoreRef: {{name: s}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n"
        )
    };
    env.apply::<ExternalSecret>(&es("app", "syncret.dev/rollout-on-change: deployment/web"))
        .await?;
    env.apply::<ExternalSecret>(&es(
        "eager-app",
        "syncret.dev/rollout-on-change: deployment/eager, syncret.dev/rollout-on-create: 'true'",
    ))
    .await?;
    env.secret("app").await?;
    env.secret("eager-app").await?;
    // Several unchanged refreshes: no restart; the opted-in one restarted on creation.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        restarted_at(&env, "web").await?,
        None,
        "no restart on creation or no-op refresh"
    );
    let eager = restarted_at(&env, "eager").await?;
    assert!(eager.is_some(), "rollout-on-create restarts on first creation");
    // The value changes: exactly one restart, which then stays put.
    env.fake_store("s", &[("k", "v2")]).await?;
    env.secret_where("app", "v2", |s| syncret_tests::Env::text(s)["k"] == "v2")
        .await?;
    let first = syncret_tests::eventually(Duration::from_secs(30), "restart annotation", || async {
        restarted_at(&env, "web").await.ok().flatten()
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        restarted_at(&env, "web").await?,
        Some(first),
        "no further restarts without changes"
    );
    Ok(())
}
