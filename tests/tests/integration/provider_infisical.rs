//! The Infisical provider (`spec.provider.infisical`) end to end: syncret in-process on the real control plane
//! against the Infisical test server (`saas/infisical.rs`, `/api/v1` auth and `/api/v3/secrets/raw`).
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use syncret_crds::ClusterSecretStore;
use syncret_providers::Registry;
use syncret_providers::infisical::Infisical as Provider;
use syncret_tests::apply_yaml;

use crate::saas::infisical::Infisical;
use crate::saas::server::Server;
use crate::saas::{SHARE_WINDOW, World, cluster_store, map};

const CLIENT_ID: &str = "ua-client-1";
const CLIENT_SECRET: &str = "ua-s3cret-7f6e";

fn service() -> Arc<Infisical> {
    let i = Arc::new(Infisical::default());
    i.project("shop", "0f1e2d3c-proj");
    i.universal_identity(CLIENT_ID, CLIENT_SECRET);
    i.set("shop", "prod", "/", "DB_PASSWORD", "pw-prod");
    i.set("shop", "prod", "/", "DB_URL", "postgres://app:${DB_PASSWORD}@db/app");
    i.set("shop", "prod", "/", "JSON_CFG", r#"{"host":"db.prod","port":5432}"#);
    i.set("shop", "prod", "/", "API_KEY", "key-1");
    i.set("shop", "prod", "/payments", "API_TOKEN", "tok-p");
    i.set("shop", "prod", "/payments", "STRIPE", "sk-1");
    i.set("shop", "shared", "/", "SHARED_FLAG", "on");
    i.import("shop", "prod", "/", "shared", "/");
    i
}

fn store_spec(origin: &str, auth: serde_json::Value, scope: serde_json::Value) -> serde_json::Value {
    let mut secrets_scope = serde_json::json!({"projectSlug": "shop", "environmentSlug": "prod"});
    if let (Some(s), Some(x)) = (secrets_scope.as_object_mut(), scope.as_object()) {
        s.extend(x.clone());
    }
    serde_json::json!({"hostAPI": origin, "auth": auth, "secretsScope": secrets_scope})
}

fn universal(secret: &str) -> serde_json::Value {
    serde_json::json!({"universalAuthCredentials": {
        "clientId": {"name": secret, "key": "clientId"},
        "clientSecret": {"name": secret, "key": "clientSecret"}}})
}

/// A namespace and operator with the universal-auth credentials and a store `inf` using them.
async fn world(prefix: &str, srv: &Server, window: Duration) -> anyhow::Result<World> {
    let w = World::new(prefix, Registry::with_default_providers(), window).await?;
    w.secret("infisical", &[("clientId", CLIENT_ID), ("clientSecret", CLIENT_SECRET)])
        .await?;
    w.store(
        "inf",
        "infisical",
        store_spec(&srv.origin(), universal("infisical"), serde_json::json!({})),
    )
    .await?;
    Ok(w)
}

/// Universal auth once per client; reads (folders, references, imports, property), extract, find (recursive,
/// path), one read per key however many ExternalSecrets share it, an outage that leaves the Secret intact, and
/// the access token revoked when the operator stops.
#[tokio::test]
async fn secrets_are_read_found_shared_and_kept_through_an_outage() -> anyhow::Result<()> {
    let inf = service();
    let srv = Server::start(inf.clone()).await?;
    let w = world("infisical-read", &srv, SHARE_WINDOW).await?;
    w.store(
        "inf-all",
        "infisical",
        store_spec(
            &srv.origin(),
            universal("infisical"),
            serde_json::json!({"recursive": true}),
        ),
    )
    .await?;
    for s in ["inf", "inf-all"] {
        assert_eq!(w.store_condition(s, "True").await?.0, "Valid");
    }
    w.external_secret(
        "app",
        "  refreshInterval: 1h\n  secretStoreRef: {name: inf}\n  target: {name: app}\n  data:\n  - {secretKey: url, remoteRef: {key: DB_URL}}\n  - {secretKey: host, remoteRef: {key: JSON_CFG, property: host}}\n  - {secretKey: token, remoteRef: {key: payments/API_TOKEN}}\n  - {secretKey: stripe, remoteRef: {key: /payments/STRIPE}}\n  - {secretKey: flag, remoteRef: {key: SHARED_FLAG}}\n  dataFrom:\n  - extract: {key: JSON_CFG}\n",
    )
    .await?;
    let data = w.data("app").await?;
    assert_eq!(
        data,
        map(&[
            ("url", "postgres://app:pw-prod@db/app"),
            ("host", "db.prod"),
            ("token", "tok-p"),
            ("stripe", "sk-1"),
            ("flag", "on"),
            ("port", "5432"),
        ])
    );
    let get = srv
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v3/secrets/raw/API_TOKEN")
        .expect("a read of API_TOKEN");
    assert_eq!(get.q("secretPath"), "/payments");
    assert_eq!(get.q("workspaceSlug"), "shop");
    assert_eq!(get.q("include_imports"), "true");
    w.external_secret(
        "found",
        "  refreshInterval: 1h\n  secretStoreRef: {name: inf-all}\n  target: {name: found}\n  dataFrom:\n  - find: {name: {regexp: '^(API_|SHARED)'}}\n  - find: {path: /payments}\n",
    )
    .await?;
    assert_eq!(
        w.data("found").await?,
        map(&[
            ("API_KEY", "key-1"),
            ("API_TOKEN", "tok-p"),
            ("SHARED_FLAG", "on"),
            ("STRIPE", "sk-1")
        ])
    );
    assert_eq!(
        srv.count(|r| r.path == "/api/v1/auth/universal-auth/login"),
        2,
        "one login per store (client), not per read"
    );

    tokio::time::sleep(SHARE_WINDOW + Duration::from_secs(1)).await; // past the first sync's shared read
    let entry = |i: usize| {
        let p = ["host", "port", "host", "port"][i];
        format!("  data:\n  - {{secretKey: v, remoteRef: {{key: JSON_CFG, property: {p}}}}}\n")
    };
    let reads = || srv.count(|r| r.path == "/api/v3/secrets/raw/JSON_CFG");
    assert_eq!(
        w.share("inf", entry, reads).await?,
        1,
        "one read of JSON_CFG for four ExternalSecrets"
    );

    w.outage(&srv, "app", &data).await?;
    assert!(!w.written_text().await?.contains("pw-prod"));

    w.op.stop().await;
    syncret_tests::eventually(crate::saas::WAIT, "tokens revoked", || async {
        (inf.revoked() >= 2).then_some(())
    })
    .await?;
    Ok(())
}

/// JWT, token and LDAP auth; Kubernetes auth presents the operator's own token for a ClusterSecretStore and is
/// refused for a namespaced SecretStore, naming the field; a wrong client secret names its field.
#[tokio::test]
async fn auth_methods_and_refusals() -> anyhow::Result<()> {
    let inf = service();
    let srv = Server::start(inf.clone()).await?;
    // The operator's "own" ServiceAccount token: a real token of a ServiceAccount, in a file.
    let cp = syncret_tests::ControlPlane::shared().await?;
    let ns = cp.namespace("infisical-auth").await?;
    apply_yaml(
        &ns.api::<ServiceAccount>(),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: operator}\n",
    )
    .await?;
    let minted = ns
        .api::<ServiceAccount>()
        .create_token_request("operator", &Default::default(), &Default::default())
        .await?;
    let sa_token = minted.status.and_then(|s| s.token).unwrap_or_default();
    let token_file = std::env::temp_dir().join(syncret_tests::unique_name("infisical-sa-token"));
    std::fs::write(&token_file, &sa_token)?;
    inf.jwt_identity("k8s-identity", &sa_token);
    inf.jwt_identity("jwt-identity", "header.payload.sig");
    inf.ldap_identity("ldap-identity", "alice", "ldap-pw");
    inf.access_token("st.preissued");
    let mut registry = Registry::with_default_providers();
    registry.register(Arc::new(Provider::with_token_path(&token_file)));
    let op = crate::saas::operator(&ns, registry, Duration::from_secs(2)).await?;
    let w = World { ns, op };
    w.secret(
        "creds",
        &[
            ("identityId", "jwt-identity"),
            ("jwt", "header.payload.sig"),
            ("token", "st.preissued"),
            ("ldapId", "ldap-identity"),
            ("user", "alice"),
            ("pass", "ldap-pw"),
            ("k8sId", "k8s-identity"),
            ("clientId", CLIENT_ID),
            ("clientSecret", "wrong"),
        ],
    )
    .await?;
    let sel = |k: &str| serde_json::json!({"name": "creds", "key": k});
    let stores = [
        (
            "jwt",
            serde_json::json!({"jwtAuthCredentials": {"identityId": sel("identityId"), "jwt": sel("jwt")}}),
        ),
        (
            "token",
            serde_json::json!({"tokenAuthCredentials": {"accessToken": sel("token")}}),
        ),
        (
            "ldap",
            serde_json::json!({"ldapAuthCredentials": {"identityId": sel("ldapId"), "ldapUsername": sel("user"), "ldapPassword": sel("pass")}}),
        ),
    ];
    for (name, auth) in &stores {
        w.store(
            name,
            "infisical",
            store_spec(&srv.origin(), auth.clone(), serde_json::json!({})),
        )
        .await?;
        w.external_secret(
            name,
            &format!("  refreshInterval: 1h\n  secretStoreRef: {{name: {name}}}\n  target: {{name: t-{name}}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: API_KEY}}}}\n"),
        )
        .await?;
    }
    for (name, _) in &stores {
        assert_eq!(w.data(&format!("t-{name}")).await?, map(&[("k", "key-1")]), "{name}");
    }
    assert_eq!(
        srv.count(|r| r.path.contains("/auth/") && r.path.ends_with("/login")),
        2,
        "token auth logs in nowhere"
    );

    // Kubernetes auth: refused for a namespaced store, naming the field; a ClusterSecretStore presents the
    // operator's token.
    let k8s_auth = serde_json::json!({"kubernetesAuthCredentials": {"identityId": sel("k8sId")}});
    w.store(
        "k8s",
        "infisical",
        store_spec(&srv.origin(), k8s_auth.clone(), serde_json::json!({})),
    )
    .await?;
    let (_, message) = w.store_condition("k8s", "False").await?;
    assert!(
        message.contains("spec.provider.infisical.auth.kubernetesAuthCredentials"),
        "{message}"
    );
    let css = syncret_tests::unique_name("infisical-css");
    let mut css_auth = k8s_auth.clone();
    css_auth["kubernetesAuthCredentials"]["identityId"]["namespace"] = serde_json::json!(w.ns.name);
    cluster_store(
        &w.ns.client,
        &css,
        w.class(),
        "infisical",
        store_spec(&srv.origin(), css_auth, serde_json::json!({})),
    )
    .await?;
    w.external_secret(
        "via-css",
        &format!("  refreshInterval: 1h\n  secretStoreRef: {{name: {css}, kind: ClusterSecretStore}}\n  target: {{name: via-css}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: API_KEY}}}}\n"),
    )
    .await?;
    assert_eq!(w.data("via-css").await?, map(&[("k", "key-1")]));
    let login = srv
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/auth/kubernetes-auth/login")
        .expect("a Kubernetes login");
    assert_eq!(login.json()["jwt"], sa_token.as_str());
    Api::<ClusterSecretStore>::all(w.ns.client.clone())
        .delete(&css, &Default::default())
        .await?;

    // A wrong client secret: the store says which credentials were refused.
    w.store(
        "bad",
        "infisical",
        store_spec(&srv.origin(), universal("creds"), serde_json::json!({})),
    )
    .await?;
    let (_, message) = w.store_condition("bad", "False").await?;
    assert!(
        message.contains("spec.provider.infisical.auth.universalAuthCredentials"),
        "{message}"
    );
    // An unsupported method is named too.
    w.store(
        "aws",
        "infisical",
        store_spec(
            &srv.origin(),
            serde_json::json!({"awsAuthCredentials": {"identityId": sel("k8sId")}}),
            serde_json::json!({}),
        ),
    )
    .await?;
    let (_, message) = w.store_condition("aws", "False").await?;
    assert!(
        message.contains("spec.provider.infisical.auth.awsAuthCredentials"),
        "{message}"
    );
    assert!(!w.written_text().await?.contains("ldap-pw"));
    let _ = std::fs::remove_file(&token_file);
    Ok(())
}

/// PushSecret creates and updates (a whole value and a property of a JSON value), skips unchanged values, and
/// `deletionPolicy: Delete` removes what it pushed.
#[tokio::test]
async fn push_secret_writes_properties_and_deletes() -> anyhow::Result<()> {
    let inf = service();
    let srv = Server::start(inf.clone()).await?;
    let w = world("infisical-push", &srv, Duration::from_secs(2)).await?;
    assert_eq!(w.store_condition("inf", "True").await?.0, "Valid");
    w.secret("src", &[("user", "admin"), ("pass", "p4ss")]).await?;
    w.push_secret(
        "push",
        "  refreshInterval: 1h\n  deletionPolicy: Delete\n  secretStoreRefs: [{name: inf}]\n  selector: {secret: {name: src}}\n  data:\n  - match: {secretKey: pass, remoteRef: {remoteKey: payments/PUSHED_PASS}}\n  - match: {secretKey: user, remoteRef: {remoteKey: APP_JSON, property: user}}\n",
    )
    .await?;
    assert_eq!(w.ps_condition("push", "True").await?.0, "Synced");
    assert_eq!(
        inf.get("shop", "prod", "/payments", "PUSHED_PASS").as_deref(),
        Some("p4ss")
    );
    assert_eq!(
        inf.get("shop", "prod", "/", "APP_JSON").as_deref(),
        Some(r#"{"user":"admin"}"#)
    );
    let create = srv
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/api/v3/secrets/raw/PUSHED_PASS")
        .expect("a create");
    assert_eq!(
        create.json()["workspaceId"],
        "0f1e2d3c-proj",
        "writes address the project by ID"
    );
    assert_eq!(
        srv.count(|r| r.path == "/api/v1/projects/slug/shop"),
        1,
        "the ID is looked up once"
    );
    let writes = srv.count(|r| r.method != "GET");
    w.ns.api::<syncret_crds::PushSecret>()
        .patch(
            "push",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"annotations": {"force-sync": "1"}}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        srv.count(|r| r.method != "GET"),
        writes,
        "unchanged values are not written again"
    );

    w.ns.api::<syncret_crds::PushSecret>()
        .delete("push", &Default::default())
        .await?;
    syncret_tests::eventually(crate::saas::WAIT, "pushed secrets deleted", || async {
        (inf.get("shop", "prod", "/payments", "PUSHED_PASS").is_none()
            && inf.get("shop", "prod", "/", "APP_JSON").is_none())
        .then_some(())
    })
    .await?;
    Ok(())
}
