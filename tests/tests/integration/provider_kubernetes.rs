//! The `kubernetes` provider end to end: the test control plane plays the "remote cluster" (its URL and CA in
//! `spec.provider.kubernetes.server`), with token, client-certificate and ServiceAccount (TokenRequest) auth, a
//! referent ClusterSecretStore, and RBAC that really limits what the store's identity may read.
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use syncret_crds::{ClusterSecretStore, ExternalSecret, SecretStore};
use syncret_tests::{ControlPlane, Env, TestNamespace, apply_yaml, eventually, unique_name};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A namespace holding the "remote" Secrets, readable by user/ServiceAccount `subject` through a Role.
async fn remote(
    cp: &ControlPlane,
    subject_kind: &str,
    subject: &str,
    subject_ns: &str,
) -> anyhow::Result<TestNamespace> {
    let ns = cp.namespace("remote").await?;
    apply_yaml(
        &ns.api::<Secret>(),
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, labels: {{app: billing}}, annotations: {{team: pay}}}}\ndata: {{user: {}, password: {}, tls.crt: {}}}\n",
            b64(b"admin"),
            b64(b"p4ss"),
            b64(&[0xff, 0x00, 0x10])
        ),
    )
    .await?;
    apply_yaml(
        &ns.api::<Secret>(),
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: other}}\ndata: {{x: {}}}\n",
            b64(b"1")
        ),
    )
    .await?;
    apply_yaml(
        &ns.api::<Role>(),
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: reader}\nrules:\n- {apiGroups: [''], resources: [secrets], verbs: [get, list]}\n",
    )
    .await?;
    let subject_yaml = if subject_kind == "User" {
        format!("{{kind: User, name: {subject}, apiGroup: rbac.authorization.k8s.io}}")
    } else {
        format!("{{kind: ServiceAccount, name: {subject}, namespace: {subject_ns}}}")
    };
    apply_yaml(
        &ns.api::<RoleBinding>(),
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: reader}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}\nsubjects: [{subject_yaml}]\n"
        ),
    )
    .await?;
    Ok(ns)
}

async fn service_account_token(ns: &TestNamespace, sa: &str) -> anyhow::Result<String> {
    let sas = ns.api::<ServiceAccount>();
    apply_yaml(
        &sas,
        &format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {sa}}}\n"),
    )
    .await?;
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let resp = sas.create_token_request(sa, &PostParams::default(), &req).await?;
    Ok(resp.status.and_then(|s| s.token).unwrap_or_default())
}

fn store(env: &Env, name: &str, server: &str, ca: &[u8], remote_ns: &str, auth: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: {name}}}\nspec:\n  controller: {class}\n  provider:\n    kubernetes:\n      remoteNamespace: {remote_ns}\n      server: {{url: '{server}', caBundle: {ca}}}\n      auth:\n{auth}",
        class = env.class(),
        ca = b64(ca)
    )
}

async fn store_ready(env: &Env, name: &str) -> anyhow::Result<(String, String, String)> {
    let api = env.ns.api::<SecretStore>();
    eventually(Duration::from_secs(30), &format!("store {name} status"), || async {
        let s = api.get(name).await.ok()?;
        let c = s.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        Some((c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
    })
    .await
}

const READS: &str = r#"  secretStoreRef: {name: remote}
  data:
  - {secretKey: user, remoteRef: {key: db, property: user}}
  - {secretKey: cert, remoteRef: {key: db, property: tls.crt}}
  - {secretKey: app-label, remoteRef: {key: db, property: labels.app, metadataPolicy: Fetch}}
  dataFrom:
  - extract: {key: db}
    rewrite: [{regexp: {source: "^(.*)$", target: "x-$1"}}]
  - find: {name: {regexp: "^oth"}}
"#;

#[tokio::test]
async fn token_auth_reads_every_form() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let env = Env::new("k8s-token").await?;
    let remote = remote(cp, "ServiceAccount", "reader", &env.ns.name).await?;
    let token = service_account_token(&env.ns, "reader").await?;
    env.apply::<Secret>(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: reader-token}}\nstringData: {{token: '{token}'}}\n"
    ))
    .await?;
    let (server, ca) = cp.server_and_ca()?;
    env.apply::<SecretStore>(&store(
        &env,
        "remote",
        &server,
        &ca,
        &remote.name,
        "        token: {bearerToken: {name: reader-token, key: token}}\n",
    ))
    .await?;
    assert_eq!(store_ready(&env, "remote").await?.1, "Valid");
    env.apply::<ExternalSecret>(&format!(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: app}}\nspec:\n{READS}"
    ))
    .await?;
    let s = env.secret("app").await?;
    let data = s.data.clone().unwrap_or_default();
    assert_eq!(data["user"].0, b"admin");
    assert_eq!(data["cert"].0, vec![0xff, 0x00, 0x10], "binary values survive exactly");
    assert_eq!(data["app-label"].0, b"billing");
    assert_eq!(data["x-password"].0, b"p4ss");
    assert_eq!(data["other"].0, br#"{"x":"1"}"#);
    assert!(!data.contains_key("x-other"));
    Ok(())
}

#[tokio::test]
async fn service_account_auth_uses_token_request() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let env = Env::new("k8s-sa").await?;
    let remote = remote(cp, "ServiceAccount", "puller", &env.ns.name).await?;
    env.apply::<ServiceAccount>("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: puller}\n")
        .await?;
    let (server, ca) = cp.server_and_ca()?;
    env.apply::<SecretStore>(&store(
        &env,
        "remote",
        &server,
        &ca,
        &remote.name,
        "        serviceAccount: {name: puller}\n",
    ))
    .await?;
    assert_eq!(store_ready(&env, "remote").await?.1, "Valid");
    env.apply::<ExternalSecret>(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: app}\nspec:\n  secretStoreRef: {name: remote}\n  data:\n  - {secretKey: p, remoteRef: {key: db, property: password}}\n",
    )
    .await?;
    assert_eq!(Env::text(&env.secret("app").await?)["p"], "p4ss");
    Ok(())
}

#[tokio::test]
async fn client_certificate_auth() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let env = Env::new("k8s-cert").await?;
    let user = unique_name("cert-user");
    let remote = remote(cp, "User", &user, "").await?;
    let dir = std::env::temp_dir().join(unique_name("certs"));
    std::fs::create_dir_all(&dir)?;
    let pki = cp.pki_dir();
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let st = Command::new("openssl").args(args).current_dir(&dir).output()?;
        anyhow::ensure!(
            st.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        Ok(())
    };
    // Extensions make it an X.509 v3 certificate (webpki refuses v1).
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={user}"),
        "-keyout",
        "u.key",
        "-out",
        "u.csr",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "u.csr",
        "-CA",
        &pki.join("ca.crt").to_string_lossy(),
        "-CAkey",
        &pki.join("ca.key").to_string_lossy(),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "u.crt",
    ])?;
    let crt = std::fs::read(dir.join("u.crt"))?;
    let key = std::fs::read(dir.join("u.key"))?;
    std::fs::remove_dir_all(&dir)?;
    env.apply::<Secret>(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: client-cert}}\ndata: {{tls.crt: {}, tls.key: {}}}\n",
        b64(&crt),
        b64(&key)
    ))
    .await?;
    let (server, ca) = cp.server_and_ca()?;
    env.apply::<SecretStore>(&store(
        &env,
        "remote",
        &server,
        &ca,
        &remote.name,
        "        cert:\n          clientCert: {name: client-cert, key: tls.crt}\n          clientKey: {name: client-cert, key: tls.key}\n",
    ))
    .await?;
    let st = store_ready(&env, "remote").await?;
    assert_eq!(st.1, "Valid", "{st:?}");
    env.apply::<ExternalSecret>(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: app}\nspec:\n  secretStoreRef: {name: remote}\n  data:\n  - {secretKey: u, remoteRef: {key: db, property: user}}\n",
    )
    .await?;
    assert_eq!(Env::text(&env.secret("app").await?)["u"], "admin");
    Ok(())
}

/// RBAC is real: an identity without access to the remote namespace gets a store that is not Ready, with the
/// reason, and ExternalSecrets on it say so; a token that is not a token fails authentication.
#[tokio::test]
async fn denied_and_invalid_credentials_are_reported() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let env = Env::new("k8s-denied").await?;
    let remote = remote(cp, "ServiceAccount", "someone-else", &env.ns.name).await?;
    let token = service_account_token(&env.ns, "nobody").await?;
    env.apply::<Secret>(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: tokens}}\nstringData: {{nobody: '{token}', garbage: not-a-token}}\n"
    ))
    .await?;
    let (server, ca) = cp.server_and_ca()?;
    env.apply::<SecretStore>(&store(
        &env,
        "denied",
        &server,
        &ca,
        &remote.name,
        "        token: {bearerToken: {name: tokens, key: nobody}}\n",
    ))
    .await?;
    env.apply::<SecretStore>(&store(
        &env,
        "garbage",
        &server,
        &ca,
        &remote.name,
        "        token: {bearerToken: {name: tokens, key: garbage}}\n",
    ))
    .await?;
    let (status, reason, msg) = store_ready(&env, "denied").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ValidationFailed"));
    assert!(msg.contains("may not get secrets"), "{msg}");
    let (status, _, msg) = store_ready(&env, "garbage").await?;
    assert_eq!(status, "False");
    assert!(!msg.contains("not-a-token"), "the credential never appears: {msg}");
    Ok(())
}

/// A ClusterSecretStore whose token ref has no namespace is referent: the token is read in each
/// ExternalSecret's namespace, and `spec.conditions` limit which namespaces may use the store.
#[tokio::test]
async fn referent_cluster_store_and_conditions() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let allowed = cp.namespace("k8s-allowed").await?;
    let denied = cp.namespace("k8s-denied-ns").await?;
    let remote = remote(cp, "ServiceAccount", "reader", &allowed.name).await?;
    // One operator per namespace, of one controller class (a cluster-wide one would also sync other tests'
    // ExternalSecrets: see main.rs).
    let op = syncret_tests::operator::Operator::start(&allowed).await?;
    let class = op.class.clone();
    let denied_op = syncret_tests::operator::Operator::start_with(client.clone(), |o| {
        o.settings.namespace = Some(denied.name.clone());
        o.settings.controller_class = class;
    })
    .await?;
    let token = service_account_token(&allowed, "reader").await?;
    for ns in [&allowed, &denied] {
        apply_yaml(
            &ns.api::<Secret>(),
            &format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: reader-token}}\nstringData: {{token: '{token}'}}\n"
            ),
        )
        .await?;
    }
    let (server, ca) = cp.server_and_ca()?;
    let css_name = unique_name("css");
    apply_yaml(
        &Api::<ClusterSecretStore>::all(client.clone()),
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata: {{name: {css_name}}}\nspec:\n  controller: {class}\n  conditions:\n  - namespaces: [{allowed}]\n  provider:\n    kubernetes:\n      remoteNamespace: {remote}\n      server: {{url: '{server}', caBundle: {ca}}}\n      auth:\n        token: {{bearerToken: {{name: reader-token, key: token}}}}\n",
            class = op.class,
            allowed = allowed.name,
            remote = remote.name,
            ca = b64(&ca)
        ),
    )
    .await?;
    let es = format!(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: app}}\nspec:\n  secretStoreRef: {{name: {css_name}, kind: ClusterSecretStore}}\n  data:\n  - {{secretKey: u, remoteRef: {{key: db, property: user}}}}\n"
    );
    apply_yaml(&allowed.api::<ExternalSecret>(), &es).await?;
    apply_yaml(&denied.api::<ExternalSecret>(), &es).await?;
    let secrets = allowed.api::<Secret>();
    let s = eventually(
        Duration::from_secs(30),
        "the Secret in the allowed namespace",
        || async { secrets.get_opt("app").await.ok().flatten() },
    )
    .await?;
    assert_eq!(s.data.unwrap_or_default()["u"].0, b"admin");
    let denied_es = denied.api::<ExternalSecret>();
    let msg = eventually(Duration::from_secs(30), "denied by spec.condition", || async {
        let e = denied_es.get("app").await.ok()?;
        e.status?
            .conditions
            .into_iter()
            .find_map(|c| c.message.filter(|m| m.contains("denied by spec.condition")))
    })
    .await?;
    assert!(msg.contains(&denied.name), "{msg}");
    assert!(denied.api::<Secret>().get_opt("app").await?.is_none());
    let css = Api::<ClusterSecretStore>::all(client.clone()).get(&css_name).await?;
    let reason = css
        .status
        .and_then(|s| s.conditions.into_iter().next())
        .and_then(|c| c.reason);
    assert_eq!(
        reason.as_deref(),
        Some("ValidationUnknown"),
        "referent stores cannot be validated centrally"
    );
    op.stop().await;
    denied_op.stop().await;
    Ok(())
}
