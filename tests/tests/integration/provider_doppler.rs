//! The Doppler provider (`spec.provider.doppler`) end to end: syncret in-process on the real control plane against
//! the Doppler test server (`saas/doppler.rs`, REST API v3), its URL given as ESO's `DOPPLER_BASE_URL` would.
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use syncret_providers::Registry;
use syncret_providers::doppler::Doppler as Provider;
use syncret_tests::apply_yaml;

use crate::saas::doppler::Doppler;
use crate::saas::server::Server;
use crate::saas::{SHARE_WINDOW, World, map};

const SERVICE_TOKEN: &str = "dp.st.prd.4f3e2d1c";
const PERSONAL_TOKEN: &str = "dp.pt.9a8b7c6d";

fn registry(srv: &Server) -> Registry {
    let mut r = Registry::with_default_providers();
    r.register(Arc::new(Provider::with_base_url(srv.origin())));
    r
}

fn service() -> Arc<Doppler> {
    let d = Arc::new(Doppler::default());
    d.service_token(SERVICE_TOKEN, "backend", "prd");
    d.personal_token(PERSONAL_TOKEN);
    d.set("backend", "prd", "DB_URL", "postgres://app:pw@db/app");
    d.set("backend", "prd", "JSON_BLOB", r#"{"user":"admin","port":5432}"#);
    d.set("backend", "prd", "API_KEY", "key-1");
    d.set("backend", "prd", "API_SECRET", "sec-1");
    d.set("backend", "prd", "OTHER_VALUE", "o");
    d
}

fn token_store(secret: &str) -> serde_json::Value {
    serde_json::json!({"auth": {"secretRef": {"dopplerToken": {"name": secret}}}})
}

/// Reads (the property is ignored, as ESO), extract, find (name, path, nameTransformer, format), one read per key
/// however many ExternalSecrets share it, and an outage that leaves the Secret intact.
#[tokio::test]
async fn secrets_are_read_found_shared_and_kept_through_an_outage() -> anyhow::Result<()> {
    let srv = Server::start(service()).await?;
    let w = World::new("doppler-read", registry(&srv), SHARE_WINDOW).await?;
    // The key defaults to `dopplerToken`.
    w.secret("doppler", &[("dopplerToken", SERVICE_TOKEN)]).await?;
    w.store("dp", "doppler", token_store("doppler")).await?;
    let mut file_store = token_store("doppler");
    file_store["format"] = serde_json::json!("env");
    w.store("dp-env", "doppler", file_store).await?;
    let mut snake = token_store("doppler");
    snake["nameTransformer"] = serde_json::json!("lower-snake");
    w.store("dp-snake", "doppler", snake).await?;
    for s in ["dp", "dp-env", "dp-snake"] {
        assert_eq!(w.store_condition(s, "True").await?.0, "Valid");
    }
    assert!(
        srv.count(|r| r.path == "/v3/projects") >= 3,
        "validation checks the token"
    );

    w.external_secret(
        "app",
        "  refreshInterval: 1h\n  secretStoreRef: {name: dp}\n  target: {name: app}\n  data:\n  - {secretKey: url, remoteRef: {key: DB_URL}}\n  - {secretKey: blob, remoteRef: {key: JSON_BLOB, property: user}}\n  dataFrom:\n  - extract: {key: JSON_BLOB}\n  - find: {name: {regexp: '^API_'}}\n",
    )
    .await?;
    let data = w.data("app").await?;
    assert_eq!(
        data,
        map(&[
            ("url", "postgres://app:pw@db/app"),
            ("blob", r#"{"user":"admin","port":5432}"#),
            ("user", "admin"),
            ("port", "5432"),
            ("API_KEY", "key-1"),
            ("API_SECRET", "sec-1"),
        ])
    );
    let one = srv
        .requests()
        .into_iter()
        .find(|r| r.q("secrets") == "DB_URL")
        .expect("a download of DB_URL");
    assert_eq!(one.path, "/v3/configs/config/secrets/download");
    assert!(one.header("authorization").starts_with("Basic "));

    w.external_secret(
        "files",
        "  refreshInterval: 1h\n  secretStoreRef: {name: dp-env}\n  target: {name: files}\n  dataFrom:\n  - find: {path: DOPPLER}\n",
    )
    .await?;
    let files = w.data("files").await?;
    assert!(files["DOPPLER_SECRETS_FILE"].contains("API_KEY=\"key-1\""), "{files:?}");
    w.external_secret(
        "snake",
        "  refreshInterval: 1h\n  secretStoreRef: {name: dp-snake}\n  target: {name: snake}\n  dataFrom:\n  - find: {path: api_}\n",
    )
    .await?;
    assert_eq!(
        w.data("snake").await?,
        map(&[("api_key", "key-1"), ("api_secret", "sec-1")])
    );

    // Four ExternalSecrets over one secret: one download.
    tokio::time::sleep(SHARE_WINDOW + Duration::from_secs(1)).await; // past the first sync's shared read
    let entry = |_| "  dataFrom:\n  - extract: {key: JSON_BLOB}\n".to_string();
    let reads = || srv.count(|r| r.q("secrets") == "JSON_BLOB");
    assert_eq!(
        w.share("dp", entry, reads).await?,
        1,
        "one download of JSON_BLOB for four ExternalSecrets"
    );

    let message = w.outage(&srv, "app", &data).await?;
    assert!(!message.contains("pw@db"), "{message}");
    assert!(!w.written_text().await?.contains("pw@db"));
    Ok(())
}

/// OIDC: a ServiceAccount token bound to the store is exchanged once for an API token, which every
/// ExternalSecret of the store shares.
#[tokio::test]
async fn oidc_exchanges_a_service_account_token_once() -> anyhow::Result<()> {
    let d = service();
    let srv = Server::start(d.clone()).await?;
    let w = World::new("doppler-oidc", registry(&srv), Duration::from_secs(2)).await?;
    apply_yaml(
        &w.ns.api::<ServiceAccount>(),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: doppler-reader}\n",
    )
    .await?;
    d.identity("ident-1", &format!("secretStore:{}:dp", w.ns.name));
    w.store(
        "dp",
        "doppler",
        serde_json::json!({"project": "backend", "config": "prd",
            "auth": {"oidcConfig": {"identity": "ident-1", "serviceAccountRef": {"name": "doppler-reader"}}}}),
    )
    .await?;
    assert_eq!(w.store_condition("dp", "True").await?.0, "Valid");
    for i in 0..3 {
        w.external_secret(
            &format!("es-{i}"),
            &format!("  refreshInterval: 1h\n  secretStoreRef: {{name: dp}}\n  target: {{name: t-{i}}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: API_KEY}}}}\n"),
        )
        .await?;
    }
    for i in 0..3 {
        assert_eq!(w.data(&format!("t-{i}")).await?, map(&[("k", "key-1")]));
    }
    assert_eq!(
        srv.count(|r| r.path == "/v3/auth/oidc"),
        1,
        "one exchange for the store's client"
    );
    // The exchanged token, not the ServiceAccount token, reaches the API.
    let download = srv
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/download"))
        .expect("a download");
    assert_eq!(download.q("project"), "backend");

    // An identity that does not accept this store's audience refuses, naming the field.
    d.identity("ident-2", "secretStore:elsewhere:dp");
    w.store(
        "other",
        "doppler",
        serde_json::json!({"project": "backend", "config": "prd",
            "auth": {"oidcConfig": {"identity": "ident-2", "serviceAccountRef": {"name": "doppler-reader"}}}}),
    )
    .await?;
    let (_, message) = w.store_condition("other", "False").await?;
    assert!(message.contains("spec.provider.doppler.auth.oidcConfig"), "{message}");
    Ok(())
}

/// A refused token fails the store naming the field, and its ExternalSecrets.
#[tokio::test]
async fn a_refused_token_names_the_field() -> anyhow::Result<()> {
    let srv = Server::start(service()).await?;
    let w = World::new("doppler-auth", registry(&srv), Duration::from_secs(2)).await?;
    w.secret("doppler", &[("token", "dp.st.wrong")]).await?;
    w.store(
        "dp",
        "doppler",
        serde_json::json!({"auth": {"secretRef": {"dopplerToken": {"name": "doppler", "key": "token"}}}}),
    )
    .await?;
    let (_, message) = w.store_condition("dp", "False").await?;
    assert!(
        message.contains("spec.provider.doppler.auth.secretRef.dopplerToken"),
        "{message}"
    );
    assert!(
        message.contains("Invalid Auth token"),
        "Doppler's own message: {message}"
    );
    w.refused("dp", "API_KEY", "dp.st.wrong").await?;
    Ok(())
}

/// PushSecret writes a secret, `IfNotExists` leaves an existing one alone, and `deletionPolicy: Delete`
/// removes it.
#[tokio::test]
async fn push_secret_writes_and_deletes() -> anyhow::Result<()> {
    let d = service();
    let srv = Server::start(d.clone()).await?;
    let w = World::new("doppler-push", registry(&srv), Duration::from_secs(2)).await?;
    w.secret("doppler", &[("dopplerToken", PERSONAL_TOKEN)]).await?;
    w.store(
        "dp",
        "doppler",
        serde_json::json!({"project": "backend", "config": "prd",
            "auth": {"secretRef": {"dopplerToken": {"name": "doppler"}}}}),
    )
    .await?;
    assert_eq!(w.store_condition("dp", "True").await?.0, "Valid");
    w.secret("src", &[("token", "pushed-1"), ("other", "o")]).await?;
    w.push_secret(
        "push",
        "  refreshInterval: 1h\n  deletionPolicy: Delete\n  secretStoreRefs: [{name: dp}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: token, remoteRef: {remoteKey: PUSHED_TOKEN}}\n",
    )
    .await?;
    assert_eq!(w.ps_condition("push", "True").await?.0, "Synced");
    assert_eq!(d.get("backend", "prd", "PUSHED_TOKEN").as_deref(), Some("pushed-1"));
    let update = srv
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/v3/configs/config/secrets")
        .expect("an update");
    assert_eq!(update.json()["secrets"]["PUSHED_TOKEN"], "pushed-1");

    // IfNotExists: an existing remote secret is not overwritten.
    w.push_secret(
        "keep",
        "  refreshInterval: 1h\n  updatePolicy: IfNotExists\n  secretStoreRefs: [{name: dp}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: other, remoteRef: {remoteKey: DB_URL}}\n",
    )
    .await?;
    w.ps_condition("keep", "True").await?;
    assert_eq!(
        d.get("backend", "prd", "DB_URL").as_deref(),
        Some("postgres://app:pw@db/app")
    );

    w.ns.api::<syncret_crds::PushSecret>()
        .delete("push", &Default::default())
        .await?;
    syncret_tests::eventually(crate::saas::WAIT, "PUSHED_TOKEN deleted", || async {
        d.get("backend", "prd", "PUSHED_TOKEN").is_none().then_some(())
    })
    .await?;
    assert!(d.get("backend", "prd", "DB_URL").is_some());
    Ok(())
}
