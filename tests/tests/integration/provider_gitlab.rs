//! The GitLab provider (`spec.provider.gitlab`) end to end: syncret in-process on the real control plane against
//! the GitLab test server (`saas/gitlab.rs`, REST API v4 variables).
use std::sync::Arc;
use std::time::Duration;

use syncret_providers::gitlab::Gitlab as Provider;
use syncret_providers::{ProviderError, Registry, RemoteKey};

use crate::saas::gitlab::Gitlab;
use crate::saas::server::Server;
use crate::saas::{SHARE_WINDOW, World, client, map};

const TOKEN: &str = "glpat-t0ken-9a8b7c";

fn store_spec(origin: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "url": origin,
        "auth": {"SecretRef": {"accessToken": {"name": "gitlab", "key": "token"}}},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

/// A project (42) in group `acme` (7) and its subgroup `acme/team` (8).
fn service() -> Arc<Gitlab> {
    let g = Arc::new(Gitlab::new(TOKEN));
    g.project_var("42", "DB_PASSWORD", "pw-prod", "prod");
    g.project_var("42", "DB_PASSWORD", "pw-any", "*");
    g.project_var("42", "ONLY_ANY", "any-scope", "*");
    g.project_var(
        "42",
        "JSON_CFG",
        r#"{"db":{"host":"db.prod","port":5432},"user":"app"}"#,
        "prod",
    );
    g.project_var("42", "API_KEY", "key-1", "prod");
    g.project_var("42", "API_SECRET", "sec-1", "*");
    g.project_var("42", "STAGING_ONLY", "no", "staging");
    g.group("7", "acme");
    g.group("8", "acme/team");
    g.group_var("7", "APP_NAME", "from-acme", "*");
    g.group_var("8", "APP_NAME", "from-team", "*");
    g.group_var("7", "API_GROUP", "group-key", "*");
    g.project_groups("42", &["8", "7"]);
    g
}

/// Reads (scopes, groups, property, extract), find, one read per key however many ExternalSecrets share it, and
/// an outage that leaves the Secret as it was.
#[tokio::test]
async fn variables_are_read_found_shared_and_kept_through_an_outage() -> anyhow::Result<()> {
    let g = service();
    let srv = Server::start(g.clone()).await?;
    let w = World::new("gitlab-read", Registry::with_default_providers(), SHARE_WINDOW).await?;
    w.secret("gitlab", &[("token", TOKEN)]).await?;
    w.store(
        "gl",
        "gitlab",
        store_spec(
            &srv.origin(),
            serde_json::json!({"projectID": "42", "inheritFromGroups": true, "environment": "prod"}),
        ),
    )
    .await?;
    assert_eq!(w.store_condition("gl", "True").await?.0, "Valid");
    assert_eq!(
        srv.count(|r| r.path == "/api/v4/projects/42/groups"),
        1,
        "inheritFromGroups looks the groups up once per client"
    );

    w.external_secret(
        "app",
        "  refreshInterval: 1h\n  secretStoreRef: {name: gl}\n  target: {name: app}\n  data:\n  - {secretKey: password, remoteRef: {key: DB-PASSWORD}}\n  - {secretKey: any, remoteRef: {key: ONLY_ANY}}\n  - {secretKey: host, remoteRef: {key: JSON_CFG, property: db.host}}\n  - {secretKey: app, remoteRef: {key: APP_NAME}}\n  dataFrom:\n  - extract: {key: JSON_CFG}\n  - find: {name: {regexp: '^API_'}}\n",
    )
    .await?;
    let data = w.data("app").await?;
    assert_eq!(
        data,
        map(&[
            ("password", "pw-prod"),
            ("any", "any-scope"),
            ("host", "db.prod"),
            ("app", "from-team"),
            ("db", r#"{"host":"db.prod","port":5432}"#),
            ("user", "app"),
            ("API_KEY", "key-1"),
            ("API_SECRET", "sec-1"),
            ("API_GROUP", "group-key"),
        ])
    );
    // DB-PASSWORD is read as DB_PASSWORD with the store's environment.
    let req = srv
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v4/projects/42/variables/DB_PASSWORD")
        .expect("a read of DB_PASSWORD");
    assert_eq!(req.q("filter[environment_scope]"), "prod");
    assert_eq!(req.header("private-token"), TOKEN);

    // Four ExternalSecrets over one variable, each with its own property: one read.
    let reads = || srv.count(|r| r.path == "/api/v4/projects/42/variables/JSON_CFG");
    tokio::time::sleep(SHARE_WINDOW + Duration::from_secs(1)).await; // past the first sync's shared read
    let entry = |i: usize| {
        let p = ["db.host", "db.port", "user", "db"][i];
        format!("  data:\n  - {{secretKey: v, remoteRef: {{key: JSON_CFG, property: {p}}}}}\n")
    };
    assert_eq!(
        w.share("gl", entry, reads).await?,
        1,
        "one read of JSON_CFG for four ExternalSecrets"
    );
    // A forced refresh of all four: one read again.
    tokio::time::sleep(SHARE_WINDOW + Duration::from_secs(1)).await;
    let before = reads();
    for i in 0..4 {
        w.force_sync(&format!("share-{i}"), "1").await?;
    }
    syncret_tests::eventually(crate::saas::WAIT, "the forced refresh's read", || async {
        (reads() > before).then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        reads() - before,
        1,
        "one read per refresh however many ExternalSecrets share it"
    );

    let message = w.outage(&srv, "app", &data).await?;
    assert!(message.contains("ProjectVariableGet"), "{message}");
    assert!(!w.written_text().await?.contains("pw-prod"));
    Ok(())
}

/// A refused token fails the store naming the field; an unknown project is refused as not allowed.
#[tokio::test]
async fn a_refused_token_names_the_field() -> anyhow::Result<()> {
    let srv = Server::start(service()).await?;
    let w = World::new(
        "gitlab-auth",
        Registry::with_default_providers(),
        Duration::from_secs(2),
    )
    .await?;
    w.secret("gitlab", &[("token", "glpat-wrong")]).await?;
    w.store(
        "gl",
        "gitlab",
        store_spec(&srv.origin(), serde_json::json!({"projectID": "42"})),
    )
    .await?;
    let (reason, message) = w.store_condition("gl", "False").await?;
    assert!(
        message.contains("spec.provider.gitlab.auth.SecretRef.accessToken"),
        "{reason}: {message}"
    );
    w.refused("gl", "API_KEY", "glpat-wrong").await?;
    Ok(())
}

/// `429` with `Retry-After`: the client answers Throttled with the server's wait and holds further calls back
/// until then, instead of calling again per ExternalSecret.
#[tokio::test]
async fn rate_limits_are_honoured() -> anyhow::Result<()> {
    let cp = syncret_tests::ControlPlane::shared().await?;
    let ns = cp.namespace("gitlab-throttle").await?;
    let srv = Server::start(service()).await?;
    syncret_tests::apply_yaml(
        &ns.api::<k8s_openapi::api::core::v1::Secret>(),
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gitlab"},
            "stringData": {"token": TOKEN}})
        .to_string(),
    )
    .await?;
    let c = client(
        &Provider,
        &ns,
        serde_json::json!({"gitlab": store_spec(&srv.origin(), serde_json::json!({"projectID": "42"}))}),
    )
    .await?;
    srv.throttle(1, "2");
    let key = RemoteKey::new("API_KEY");
    let e = c.get_secret(&key).await.expect_err("throttled");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)), "{e}");
    let calls = srv.requests().len();
    let e = c.get_secret(&key).await.expect_err("still throttled");
    assert!(matches!(e, ProviderError::Throttled { .. }), "{e}");
    assert_eq!(srv.requests().len(), calls, "no call while the server asked to wait");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(c.get_secret(&key).await.is_ok());
    // A hostile Retry-After is cut to the ceiling.
    srv.throttle(1, "18446744073709551615");
    let e = c
        .get_secret(&RemoteKey::new("API_SECRET"))
        .await
        .expect_err("throttled");
    assert_eq!(e.retry_after(), Some(syncret_providers::rest::MAX_RETRY_AFTER));
    Ok(())
}
