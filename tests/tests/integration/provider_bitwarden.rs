//! The Bitwarden Secrets Manager provider (`spec.provider.bitwardensecretsmanager`) end to end: syncret in-process
//! on the real control plane against the Bitwarden SDK server stand-in (`saas/bitwarden.rs`, `/rest/api/1` over
//! HTTPS with a CA made by openssl).
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::ConfigMap;
use syncret_providers::Registry;
use syncret_tests::apply_yaml;

use crate::saas::bitwarden::SdkServer;
use crate::saas::server::Server;
use crate::saas::{SHARE_WINDOW, TestPki, World, map};

const TOKEN: &str = "0.48b4774c-68de-4b3a.machine-account:secret";
const ORG: &str = "0f0e0d0c-0000-4000-8000-00000000000a";
const PROJECT: &str = "0f0e0d0c-0000-4000-8000-00000000000b";
const OTHER_PROJECT: &str = "0f0e0d0c-0000-4000-8000-00000000000c";

struct Fixture {
    sdk: Arc<SdkServer>,
    by_id: String,
}

fn service() -> Fixture {
    let sdk = Arc::new(SdkServer::new(TOKEN, ORG));
    sdk.add(PROJECT, "db-password", "pw-1", "");
    sdk.add(OTHER_PROJECT, "db-password", "pw-other-project", "");
    let by_id = sdk.add(OTHER_PROJECT, "legacy", "by-id", "");
    sdk.add(
        PROJECT,
        "app-config",
        r#"{"user":"admin","port":5432,"tls":{"enabled":true}}"#,
        "",
    );
    sdk.add(PROJECT, "api-key", "k-1", "");
    sdk.add(PROJECT, "api-secret", "s-1", "");
    sdk.add(OTHER_PROJECT, "api-elsewhere", "x", "");
    Fixture { sdk, by_id }
}

async fn start(f: &Fixture) -> anyhow::Result<(Server, TestPki)> {
    let pki = TestPki::new()?;
    let srv = Server::start_tls(f.sdk.clone(), &pki.dir).await?;
    Ok((srv, pki))
}

fn store_spec(origin: &str, ca: serde_json::Value, secret: &str) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "bitwardenServerSDKURL": origin,
        "apiURL": "https://api.bitwarden.eu",
        "identityURL": "https://identity.bitwarden.eu",
        "organizationID": ORG,
        "projectID": PROJECT,
        "auth": {"secretRef": {"credentials": {"name": secret, "key": "token"}}},
    });
    if let (Some(s), Some(c)) = (spec.as_object_mut(), ca.as_object()) {
        s.extend(c.clone());
    }
    spec
}

/// A namespace and operator with the access token and a store `bw` that trusts the server's CA (`caBundle`,
/// base64 as ESO documents it).
async fn world(prefix: &str, srv: &Server, pki: &TestPki, window: Duration) -> anyhow::Result<World> {
    let w = World::new(prefix, Registry::with_default_providers(), window).await?;
    w.secret("bw", &[("token", TOKEN)]).await?;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(pki.ca_pem()?);
    w.store(
        "bw",
        "bitwardensecretsmanager",
        store_spec(&srv.origin(), serde_json::json!({"caBundle": ca_b64}), "bw"),
    )
    .await?;
    Ok(w)
}

/// Reads by name (in the store's project) and by ID, extract (JSON, nested values as YAML), find (name within the
/// project, keyed by ID), one batched read per refresh however many ExternalSecrets share it, and an outage that
/// leaves the Secret intact.
#[tokio::test]
async fn secrets_are_read_found_shared_and_kept_through_an_outage() -> anyhow::Result<()> {
    let f = service();
    let (srv, pki) = start(&f).await?;
    let w = world("bitwarden-read", &srv, &pki, SHARE_WINDOW).await?;
    apply_yaml(
        &w.ns.api::<ConfigMap>(),
        &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bw-ca"},
            "data": {"ca.crt": pki.ca_pem()?}})
        .to_string(),
    )
    .await?;
    w.store(
        "bw-cm",
        "bitwardensecretsmanager",
        store_spec(
            &srv.origin(),
            serde_json::json!({"caProvider": {"type": "ConfigMap", "name": "bw-ca", "key": "ca.crt"}}),
            "bw",
        ),
    )
    .await?;
    for s in ["bw", "bw-cm"] {
        assert_eq!(w.store_condition(s, "True").await?.0, "Valid");
    }
    let first = srv.requests().into_iter().next().expect("a request");
    assert_eq!(first.header("warden-access-token"), TOKEN);
    assert_eq!(first.header("warden-api-url"), "https://api.bitwarden.eu");
    assert_eq!(first.header("warden-identity-url"), "https://identity.bitwarden.eu");

    w.external_secret(
        "app",
        &format!(
            "  refreshInterval: 1h\n  secretStoreRef: {{name: bw}}\n  target: {{name: app}}\n  data:\n  - {{secretKey: password, remoteRef: {{key: db-password}}}}\n  - {{secretKey: legacy, remoteRef: {{key: {}}}}}\n  - {{secretKey: ignored, remoteRef: {{key: api-key, property: nope}}}}\n  dataFrom:\n  - extract: {{key: app-config}}\n",
            f.by_id
        ),
    )
    .await?;
    let data = w.data("app").await?;
    assert_eq!(
        data,
        map(&[
            ("password", "pw-1"),
            ("legacy", "by-id"),
            ("ignored", "k-1"),
            ("user", "admin"),
            ("port", "5432"),
            ("tls", "enabled: true"),
        ])
    );
    w.external_secret(
        "found",
        "  refreshInterval: 1h\n  secretStoreRef: {name: bw-cm}\n  target: {name: found}\n  dataFrom:\n  - find: {name: {regexp: '^api-'}}\n",
    )
    .await?;
    let found = w.data("found").await?;
    assert_eq!(found.len(), 2, "the store's project only: {found:?}");
    let mut values: Vec<&str> = found.values().map(String::as_str).collect();
    values.sort_unstable();
    assert_eq!(values, ["k-1", "s-1"]);
    assert!(
        found.keys().all(|k| syncret_providers::bitwarden::is_uuid(k)),
        "keyed by ID, as ESO"
    );

    // Four ExternalSecrets over one name: one list and one batch read.
    let entry = |_| "  data:\n  - {secretKey: v, remoteRef: {key: api-secret}}\n".to_string();
    let batches = || srv.count(|r| r.path == "/rest/api/1/secrets-by-ids");
    assert_eq!(
        w.share("bw", entry, batches).await?,
        1,
        "one read of api-secret for four ExternalSecrets"
    );
    assert_eq!(srv.count(|r| r.path == "/rest/api/1/secret"), 0, "no read one by one");

    w.outage(&srv, "app", &data).await?;
    assert!(!w.written_text().await?.contains("pw-1"));
    Ok(())
}

/// A refused access token (the SDK server's `400 failed to login`) fails the store naming the field; a server
/// with a certificate the store does not trust is refused; an http:// SDK server URL is refused.
#[tokio::test]
async fn refusals_name_the_field() -> anyhow::Result<()> {
    let f = service();
    let (srv, pki) = start(&f).await?;
    let w = World::new(
        "bitwarden-auth",
        Registry::with_default_providers(),
        Duration::from_secs(2),
    )
    .await?;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(pki.ca_pem()?);
    w.secret("wrong", &[("token", "0.not-a-token")]).await?;
    w.store(
        "bw",
        "bitwardensecretsmanager",
        store_spec(&srv.origin(), serde_json::json!({"caBundle": ca_b64}), "wrong"),
    )
    .await?;
    let (_, message) = w.store_condition("bw", "False").await?;
    assert!(
        message.contains("spec.provider.bitwardensecretsmanager.auth.secretRef.credentials"),
        "{message}"
    );
    w.secret("bw", &[("token", TOKEN)]).await?;
    w.store(
        "untrusted",
        "bitwardensecretsmanager",
        store_spec(&srv.origin(), serde_json::json!({}), "bw"),
    )
    .await?;
    let (_, message) = w.store_condition("untrusted", "False").await?;
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    w.store(
        "plain",
        "bitwardensecretsmanager",
        store_spec(
            &srv.origin().replace("https://", "http://"),
            serde_json::json!({}),
            "bw",
        ),
    )
    .await?;
    let (_, message) = w.store_condition("plain", "False").await?;
    assert!(
        message.contains("spec.provider.bitwardensecretsmanager.bitwardenServerSDKURL"),
        "{message}"
    );
    assert_eq!(
        srv.count(|r| r.header("warden-access-token") == TOKEN),
        0,
        "the token never left over an untrusted link"
    );
    Ok(())
}

/// PushSecret as ESO: created in the store's project with the note from metadata, nothing written when the same,
/// updated when only the value differs; `deletionPolicy: Delete` removes it.
#[tokio::test]
async fn push_secret_creates_updates_and_deletes() -> anyhow::Result<()> {
    let f = service();
    let (srv, pki) = start(&f).await?;
    let w = world("bitwarden-push", &srv, &pki, Duration::from_secs(2)).await?;
    assert_eq!(w.store_condition("bw", "True").await?.0, "Valid");
    w.secret("src", &[("pass", "p4ss")]).await?;
    w.push_secret(
        "push",
        "  refreshInterval: 1h\n  deletionPolicy: Delete\n  secretStoreRefs: [{name: bw}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: pass, remoteRef: {remoteKey: pushed-pass}}\n    metadata: {note: from syncret}\n",
    )
    .await?;
    assert_eq!(w.ps_condition("push", "True").await?.0, "Synced");
    assert_eq!(
        f.sdk.named("pushed-pass"),
        [(PROJECT.to_string(), "p4ss".to_string(), "from syncret".to_string())]
    );
    w.secret("src", &[("pass", "p4ss-2")]).await?;
    syncret_tests::eventually(crate::saas::WAIT, "the pushed value updated", || async {
        (f.sdk.named("pushed-pass") == [(PROJECT.to_string(), "p4ss-2".to_string(), "from syncret".to_string())])
            .then_some(())
    })
    .await?;
    assert_eq!(
        srv.count(|r| r.method == "POST"),
        1,
        "updated in place, not created again"
    );

    w.ns.api::<syncret_crds::PushSecret>()
        .delete("push", &Default::default())
        .await?;
    syncret_tests::eventually(crate::saas::WAIT, "the pushed secret deleted", || async {
        f.sdk.named("pushed-pass").is_empty().then_some(())
    })
    .await?;
    Ok(())
}
