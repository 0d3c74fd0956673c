//! The 1Password provider (`spec.provider.onepassword`) end to end: syncret in-process on the real control plane
//! against the 1Password Connect test server (`saas/onepassword.rs`, Connect API v1).
use std::sync::Arc;
use std::time::Duration;

use syncret_providers::Registry;

use crate::saas::onepassword::Connect;
use crate::saas::server::Server;
use crate::saas::{SHARE_WINDOW, World, map};

const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.connect.token";

struct Fixture {
    connect: Arc<Connect>,
    prod: String,
}

/// Vaults `prod` (searched first) and `shared`; a login item `db` in both (prod wins), a document `tls` with a
/// file, an API item with two files, items tagged for find.
fn service() -> Fixture {
    let c = Arc::new(Connect::new(TOKEN));
    let prod = c.vault("prod");
    let shared = c.vault("shared");
    c.item(
        &prod,
        "db",
        "LOGIN",
        &[("username", "admin"), ("password", "pw-prod"), ("tls.crt", "CERT")],
        &[],
        &[],
    );
    c.item(
        &shared,
        "db",
        "LOGIN",
        &[("username", "other"), ("password", "pw-shared")],
        &[],
        &[],
    );
    c.item(
        &shared,
        "only-shared",
        "PASSWORD",
        &[("password", "from-shared")],
        &[],
        &[],
    );
    c.item(
        &prod,
        "tls",
        "DOCUMENT",
        &[],
        &[("tls.key", b"-----BEGIN KEY-----")],
        &[],
    );
    c.item(
        &prod,
        "api",
        "API_CREDENTIAL",
        &[("credential", "cred-1"), ("hostname", "api.example")],
        &[("ca.pem", b"CA-PEM"), ("extra.txt", b"EXTRA")],
        &["team-a"],
    );
    c.item(
        &shared,
        "worker",
        "LOGIN",
        &[("worker_user", "w"), ("worker_pass", "wp")],
        &[],
        &["team-a", "batch"],
    );
    Fixture { connect: c, prod }
}

fn store_spec(origin: &str, secret: &str) -> serde_json::Value {
    serde_json::json!({
        "connectHost": origin,
        "vaults": {"prod": 1, "shared": 2},
        "auth": {"secretRef": {"connectTokenSecretRef": {"name": secret, "key": "token"}}},
    })
}

/// Fields by label (default `password`, dotted labels, `field/`), files (`file/`, documents), vault order,
/// extract, find by title and by tags, one item read per refresh however many ExternalSecrets share it, and an
/// outage that leaves the Secret intact.
#[tokio::test]
async fn items_are_read_found_shared_and_kept_through_an_outage() -> anyhow::Result<()> {
    let f = service();
    let srv = Server::start(f.connect.clone()).await?;
    let w = World::new("onepassword-read", Registry::with_default_providers(), SHARE_WINDOW).await?;
    w.secret("connect", &[("token", TOKEN)]).await?;
    w.store("op", "onepassword", store_spec(&srv.origin(), "connect"))
        .await?;
    assert_eq!(w.store_condition("op", "True").await?.0, "Valid");
    // The store may be validated more than once as it settles (each validation resolves every vault): the
    // baseline is the count once it has stopped moving for 3 s.
    let mut vault_lookups = srv.count(|r| r.path == "/v1/vaults");
    let mut still = std::time::Instant::now();
    while still.elapsed() < std::time::Duration::from_secs(3) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = srv.count(|r| r.path == "/v1/vaults");
        if now != vault_lookups {
            (vault_lookups, still) = (now, std::time::Instant::now());
        }
    }
    assert!(
        vault_lookups >= 2,
        "each validation resolves each vault by title: {vault_lookups}"
    );

    w.external_secret(
        "app",
        "  refreshInterval: 1h\n  secretStoreRef: {name: op}\n  target: {name: app}\n  data:\n  - {secretKey: password, remoteRef: {key: db}}\n  - {secretKey: user, remoteRef: {key: db, property: username}}\n  - {secretKey: cert, remoteRef: {key: db, property: tls.crt}}\n  - {secretKey: shared, remoteRef: {key: only-shared}}\n  - {secretKey: key, remoteRef: {key: tls}}\n  - {secretKey: ca, remoteRef: {key: api, property: file/ca.pem}}\n  - {secretKey: cred, remoteRef: {key: api, property: field/credential}}\n  dataFrom:\n  - extract: {key: api}\n",
    )
    .await?;
    let data = w.data("app").await?;
    assert_eq!(
        data,
        map(&[
            ("password", "pw-prod"),
            ("user", "admin"),
            ("cert", "CERT"),
            ("shared", "from-shared"),
            ("key", "-----BEGIN KEY-----"),
            ("ca", "CA-PEM"),
            ("cred", "cred-1"),
            ("credential", "cred-1"),
            ("hostname", "api.example"),
        ])
    );
    assert_eq!(
        srv.count(|r| r.path == "/v1/vaults"),
        vault_lookups,
        "vault IDs are resolved once per client"
    );
    // One item read serves the four properties of `db`; a document's files come in one inline call.
    let db = f.connect.find("db").unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(srv.count(|r| r.path.ends_with(&format!("/items/{db}"))), 1);
    assert_eq!(
        srv.count(|r| r.path.ends_with("/files") && r.q("inline_files") == "true"),
        2
    );

    w.external_secret(
        "found",
        "  refreshInterval: 1h\n  secretStoreRef: {name: op}\n  target: {name: found}\n  dataFrom:\n  - find: {path: db, name: {regexp: '^user'}}\n  - find: {tags: {team-a: ''}}\n",
    )
    .await?;
    assert_eq!(
        w.data("found").await?,
        map(&[
            ("username", "admin"),
            ("credential", "cred-1"),
            ("hostname", "api.example"),
            ("worker_user", "w"),
            ("worker_pass", "wp"),
        ])
    );

    tokio::time::sleep(SHARE_WINDOW + Duration::from_secs(1)).await; // past the first sync's shared read
    let entry = |i: usize| {
        let p = ["username", "password", "tls.crt", "field/username"][i];
        format!("  data:\n  - {{secretKey: v, remoteRef: {{key: db, property: '{p}'}}}}\n")
    };
    let reads = || srv.count(|r| r.path.ends_with(&format!("/items/{db}")));
    assert_eq!(
        w.share("op", entry, reads).await?,
        1,
        "one read of the item for four ExternalSecrets and four properties"
    );

    w.outage(&srv, "app", &data).await?;
    f.connect.set_field("db", "password", "pw-rotated");
    tokio::time::sleep(SHARE_WINDOW + Duration::from_secs(1)).await; // past the recovery's shared read of `db`
    w.force_sync("app", "rotated").await?;
    w.data_where("app", |d| d.get("password").map(String::as_str) == Some("pw-rotated"))
        .await?;
    assert!(!w.written_text().await?.contains("pw-prod"));
    Ok(())
}

/// A refused Connect token fails the store naming the field; an unknown vault names the vault.
#[tokio::test]
async fn refusals_name_the_field() -> anyhow::Result<()> {
    let f = service();
    let srv = Server::start(f.connect.clone()).await?;
    let w = World::new(
        "onepassword-auth",
        Registry::with_default_providers(),
        Duration::from_secs(2),
    )
    .await?;
    w.secret("wrong", &[("token", "not-the-token")]).await?;
    w.store("op", "onepassword", store_spec(&srv.origin(), "wrong")).await?;
    let (_, message) = w.store_condition("op", "False").await?;
    assert!(
        message.contains("spec.provider.onepassword.auth.secretRef.connectTokenSecretRef"),
        "{message}"
    );
    w.secret("connect", &[("token", TOKEN)]).await?;
    let mut spec = store_spec(&srv.origin(), "connect");
    spec["vaults"] = serde_json::json!({"prod": 1, "nope": 2});
    w.store("novault", "onepassword", spec).await?;
    let (_, message) = w.store_condition("novault", "False").await?;
    assert!(message.contains("spec.provider.onepassword.vaults[nope]"), "{message}");
    w.refused("op", "db", "not-the-token").await?;
    Ok(())
}

/// PushSecret creates a concealed field in a new item (first vault, tags from metadata), updates it, and
/// `deletionPolicy: Delete` removes the field and then the empty item.
#[tokio::test]
async fn push_secret_creates_updates_and_deletes_items() -> anyhow::Result<()> {
    let f = service();
    let srv = Server::start(f.connect.clone()).await?;
    let w = World::new(
        "onepassword-push",
        Registry::with_default_providers(),
        Duration::from_secs(2),
    )
    .await?;
    w.secret("connect", &[("token", TOKEN)]).await?;
    w.store("op", "onepassword", store_spec(&srv.origin(), "connect"))
        .await?;
    assert_eq!(w.store_condition("op", "True").await?.0, "Valid");
    w.secret("src", &[("pass", "p4ss"), ("user", "admin")]).await?;
    w.push_secret(
        "push",
        "  refreshInterval: 1h\n  deletionPolicy: Delete\n  secretStoreRefs: [{name: op}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: pass, remoteRef: {remoteKey: pushed}}\n    metadata: {apiVersion: kubernetes.external-secrets.io/v1alpha1, kind: PushSecretMetadata, spec: {tags: [from-k8s]}}\n  - match: {secretKey: user, remoteRef: {remoteKey: pushed, property: username}}\n  - match: {secretKey: user, remoteRef: {remoteKey: worker, property: added}}\n",
    )
    .await?;
    assert_eq!(w.ps_condition("push", "True").await?.0, "Synced");
    let item = f.connect.find("pushed").expect("the pushed item");
    assert_eq!(item["vault"]["id"], f.prod.as_str(), "created in the first vault");
    assert_eq!(item["category"], "SERVER");
    assert_eq!(f.connect.field("pushed", "password").as_deref(), Some("p4ss"));
    assert_eq!(f.connect.field("pushed", "username").as_deref(), Some("admin"));
    let created = srv
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a create");
    assert_eq!(created.json()["fields"][0]["type"], "CONCEALED");

    w.secret("src", &[("pass", "p4ss-2"), ("user", "admin")]).await?;
    syncret_tests::eventually(crate::saas::WAIT, "the pushed field updated", || async {
        (f.connect.field("pushed", "password").as_deref() == Some("p4ss-2")).then_some(())
    })
    .await?;
    // A field pushed into an existing item keeps everything else of it.
    let worker = f.connect.find("worker").expect("worker");
    assert_eq!(f.connect.field("worker", "added").as_deref(), Some("admin"));
    assert_eq!(f.connect.field("worker", "worker_pass").as_deref(), Some("wp"));
    assert_eq!(worker["urls"][0]["href"], "https://example.test");
    assert_eq!(worker["tags"], serde_json::json!(["team-a", "batch"]));

    w.ns.api::<syncret_crds::PushSecret>()
        .delete("push", &Default::default())
        .await?;
    syncret_tests::eventually(crate::saas::WAIT, "the pushed item deleted", || async {
        f.connect.find("pushed").is_none().then_some(())
    })
    .await?;
    assert!(f.connect.find("db").is_some());
    assert_eq!(f.connect.field("worker", "added"), None, "the pushed field is gone");
    assert_eq!(
        f.connect.field("worker", "worker_user").as_deref(),
        Some("w"),
        "the item stays"
    );
    Ok(())
}
