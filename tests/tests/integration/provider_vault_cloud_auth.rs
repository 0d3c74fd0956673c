//! Vault's `auth.iam` and `auth.gcp` end to end: syncret logs in to a Vault-protocol server in front of a real
//! OpenBao (`vault_front`: OpenBao 2.x has no aws or gcp auth method in its binary), which checks the login as
//! Vault's aws and gcp methods do and hands out real OpenBao tokens; the KV reads, renewals and revocations go to
//! OpenBao.
//!
//! - iam: the signed `sts:GetCallerIdentity` is forwarded to moto with IAM enforcement on, so moto verifies the
//!   SigV4 signature made with the store's static keys, or with the session IRSA got from STS for a real
//!   ServiceAccount token; the server-id header is checked and must be signed;
//! - one login per store, whatever the number of ExternalSecrets and refreshes (the front's login records and
//!   moto's `GetCallerIdentity` count), a new login when the token reaches its max TTL, and a wrong role refused
//!   with a store condition that names it;
//! - gcp: `iam` with a service-account key (the JWT checked against the key's public half), `iam` with GKE
//!   Workload Identity (the GCP tests' Google token server for the exchange and impersonation, then `signJwt`),
//!   and `gce` with the metadata server's identity token.
mod vault_front;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::aws::Aws;
use syncret_providers::gcp::Endpoints;
use syncret_providers::vault::{Flavor, Vault};
use syncret_tests::operator::Operator;
use syncret_tests::servers::{Moto, OpenBao};
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml as apply, eventually};
use vault_front::{AwsRole, Config, GcpRole, VaultFront};

use super::provider_aws::{Aws2, key_secret, signed_with};

const WAIT: Duration = Duration::from_secs(60);
const SA_EMAIL: &str = "vault-login@syncret-test.iam.gserviceaccount.com";
const GCE_EMAIL: &str = "node@syncret-test.iam.gserviceaccount.com";

/// OpenBao with a KV v2 secret and a `reader` policy.
async fn openbao() -> anyhow::Result<OpenBao> {
    let bao = OpenBao::start().await?;
    let http = reqwest::Client::new();
    let call = |path: &str, body: Value| {
        http.post(format!("{}/v1/{path}", bao.addr()))
            .header("X-Vault-Token", bao.root_token())
            .json(&body)
            .send()
    };
    let r = call(
        "sys/policies/acl/reader",
        json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }"}),
    )
    .await?;
    anyhow::ensure!(r.status().is_success(), "policy: {}", r.status());
    let r = call("secret/data/app", json!({"data": {"password": "from-openbao"}})).await?;
    anyhow::ensure!(r.status().is_success(), "kv: {}", r.status());
    Ok(bao)
}

fn aws_role(bound_arn: &str, ttl: &str) -> AwsRole {
    AwsRole {
        bound_arn: bound_arn.into(),
        policies: vec!["reader".into()],
        ttl: ttl.into(),
        max_ttl: ttl.into(),
    }
}

/// syncret in-process with the Vault provider's AWS side pointed at moto and its Google side at `google`.
async fn operator(ns: &TestNamespace, moto: Option<&Moto>, google: Option<Endpoints>) -> anyhow::Result<Operator> {
    let mut opts = syncret_tests::operator::options();
    opts.settings.namespace = Some(ns.name.clone());
    // Every reconcile reads (no sharing of a read between ExternalSecrets), so logins can be compared to reads.
    opts.read_coalesce_window = Duration::ZERO;
    let mut vault = Vault::new(Flavor::Vault);
    if let Some(m) = moto {
        vault = vault.with_aws(Aws::with_endpoint(m.endpoint()));
    }
    if let Some(endpoints) = google {
        vault = vault.with_gcp_endpoints(endpoints);
    }
    let mut registry = syncret_providers::Registry::with_default_providers();
    registry.register(Arc::new(vault));
    Operator::start_registry(ns.client.clone(), opts, registry).await
}

async fn store(ns: &TestNamespace, class: &str, name: &str, server: &str, auth: &str) -> anyhow::Result<()> {
    apply(
        &ns.api::<SecretStore>(),
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: {name}}}\nspec:\n  controller: {class}\n  provider:\n    vault:\n      server: {server}\n      path: secret\n      version: v2\n      auth:\n{auth}"
        ),
    )
    .await?;
    Ok(())
}

async fn external_secret(ns: &TestNamespace, name: &str, store: &str, refresh: &str) -> anyhow::Result<()> {
    apply(
        &ns.api::<ExternalSecret>(),
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n  refreshInterval: {refresh}\n  secretStoreRef: {{name: {store}, kind: SecretStore}}\n  target: {{name: {name}}}\n  data:\n  - {{secretKey: password, remoteRef: {{key: app, property: password}}}}\n"
        ),
    )
    .await?;
    Ok(())
}

async fn synced_value(ns: &TestNamespace, name: &str) -> anyhow::Result<String> {
    let secrets: Api<Secret> = ns.api();
    let s = eventually(WAIT, &format!("Secret {name}"), || async {
        secrets.get_opt(name).await.ok().flatten()
    })
    .await?;
    Ok(s.data
        .and_then(|d| d.get("password").map(|v| String::from_utf8_lossy(&v.0).into_owned()))
        .unwrap_or_default())
}

async fn store_ready(ns: &TestNamespace, name: &str, status: &str) -> anyhow::Result<(String, String)> {
    let stores: Api<SecretStore> = ns.api();
    eventually(WAIT, &format!("store {name} Ready={status}"), || async {
        let s = stores.get(name).await.ok()?;
        let c = s.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        (c.status == status).then(|| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
    })
    .await
}

fn front_config(bao: &OpenBao, moto: Option<&Moto>) -> Config {
    Config {
        openbao: bao.addr().to_string(),
        root_token: bao.root_token().to_string(),
        aws_mount: "aws".into(),
        sts_endpoint: moto.map(|m| m.endpoint().to_string()).unwrap_or_default(),
        gcp_mount: "gcp".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn iam_logs_in_once_per_store_and_again_at_the_max_ttl() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-iam").await?;
    let aws = Aws2::start().await?;
    let (id, secret) = aws.user("vault-client", "sts:GetCallerIdentity").await?;
    let user_arn = format!("arn:aws:iam::{}:user/vault-client", Moto::ACCOUNT_ID);
    aws.enforce_auth().await?;
    key_secret(&ns, "aws-keys", &id, &secret).await?;
    let bao = openbao().await?;
    let mut config = front_config(&bao, Some(&aws.moto));
    config.iam_server_id = Some("vault.example.com".into());
    config.aws_roles = HashMap::from([
        ("app".to_string(), aws_role(&user_arn, "1h")),
        ("short".to_string(), aws_role(&user_arn, "6s")),
        (
            "other".to_string(),
            aws_role(&format!("arn:aws:iam::{}:user/someone-else", Moto::ACCOUNT_ID), "1h"),
        ),
    ]);
    let front = VaultFront::start(config).await?;
    aws.moto.clear_requests()?;
    let op = operator(&ns, Some(&aws.moto), None).await?;
    let iam = |role: &str| {
        format!(
            "        iam:\n          vaultRole: {role}\n          region: eu-west-1\n          vaultAwsIamServerID: vault.example.com\n          secretRef:\n            accessKeyIDSecretRef: {{name: aws-keys, key: id}}\n            secretAccessKeySecretRef: {{name: aws-keys, key: secret}}\n"
        )
    };
    store(&ns, &op.class, "iam", &front.origin(), &iam("app")).await?;
    let (reason, message) = store_ready(&ns, "iam", "True").await?;
    assert_eq!(reason, "Valid", "{message}");
    // Many ExternalSecrets, refreshed every second: still one login for the store.
    for i in 0..5 {
        external_secret(&ns, &format!("es-{i}"), "iam", "1s").await?;
    }
    for i in 0..5 {
        assert_eq!(synced_value(&ns, &format!("es-{i}")).await?, "from-openbao");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let reads = bao.count("read", "secret/data/app")?;
    eprintln!(
        "static keys: 5 ExternalSecrets refreshing every second: {reads} reads, {} login",
        front.ok_logins("aws", "app")
    );
    assert!(reads >= 10, "the ExternalSecrets refreshed: {reads} reads");
    assert_eq!(front.ok_logins("aws", "app"), 1, "{:?}", front.logins());
    let gci = aws.requests_of("GetCallerIdentity")?;
    assert_eq!(gci.len(), 1, "one GetCallerIdentity reached STS");
    assert_eq!(
        signed_with(&gci[0]),
        id,
        "signed with the store's key (moto checked the signature)"
    );
    let auth = gci[0]
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(auth.contains("/eu-west-1/sts/aws4_request"), "{auth}");

    // A token that cannot outlive 6 s: a new login when it runs out, not one per reconcile.
    store(&ns, &op.class, "short", &front.origin(), &iam("short")).await?;
    store_ready(&ns, "short", "True").await?;
    external_secret(&ns, "short-es", "short", "1s").await?;
    assert_eq!(synced_value(&ns, "short-es").await?, "from-openbao");
    let before = bao.count("read", "secret/data/app")?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let reads = bao.count("read", "secret/data/app")? - before;
    let logins = front.ok_logins("aws", "short");
    eprintln!("max TTL 6s over ~10s: {logins} logins, {reads} reads");
    assert!(
        logins >= 2,
        "logged in again once the token ran out: {:?}",
        front.logins()
    );
    assert!(logins <= 6, "not once per reconcile: {logins} logins");
    let (_, message) = eventually(WAIT, "short-es still synced", || async {
        let es = ns.api::<ExternalSecret>().get("short-es").await.ok()?;
        let c = es.status?.conditions.into_iter().find(|c| c.status == "True")?;
        Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
    })
    .await?;
    assert!(!message.is_empty());

    // Wrong roles: the store's condition names the role.
    store(&ns, &op.class, "nope", &front.origin(), &iam("nope")).await?;
    let (reason, message) = store_ready(&ns, "nope", "False").await?;
    assert_eq!(reason, "InvalidProviderConfig");
    assert!(message.contains(r#"role "nope""#), "{message}");
    assert!(
        message.contains(r#"entry for role \"nope\" not found"#) || message.contains("not found"),
        "{message}"
    );
    store(&ns, &op.class, "other", &front.origin(), &iam("other")).await?;
    let (_, message) = store_ready(&ns, "other", "False").await?;
    assert!(
        message.contains(r#"role "other""#) && message.contains("does not belong to the role"),
        "{message}"
    );
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn iam_with_irsa_and_a_server_id_that_must_be_signed() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-iam-irsa").await?;
    let aws = Aws2::start().await?;
    // moto cannot check signatures here: with its IAM enforcement on it refuses the unsigned
    // AssumeRoleWithWebIdentity that comes first (the static-key test has moto verify the login's signature).
    let role_arn = aws.role("vault-login", "sts:GetCallerIdentity").await?;
    ns.api::<ServiceAccount>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "app", "annotations": {"eks.amazonaws.com/role-arn": role_arn}}}),
            )?,
        )
        .await?;
    let bao = openbao().await?;
    let mut config = front_config(&bao, Some(&aws.moto));
    config.iam_server_id = Some("vault.example.com".into());
    config.aws_roles = HashMap::from([("irsa".to_string(), aws_role(&role_arn, "1h"))]);
    let front = VaultFront::start(config).await?;
    aws.moto.clear_requests()?;
    let op = operator(&ns, Some(&aws.moto), None).await?;
    store(
        &ns,
        &op.class,
        "irsa",
        &front.origin(),
        "        iam:\n          vaultRole: irsa\n          vaultAwsIamServerID: vault.example.com\n          jwt: {serviceAccountRef: {name: app}}\n",
    )
    .await?;
    let (_, message) = store_ready(&ns, "irsa", "True").await?;
    for i in 0..3 {
        external_secret(&ns, &format!("irsa-{i}"), "irsa", "1h").await?;
    }
    for i in 0..3 {
        assert_eq!(
            synced_value(&ns, &format!("irsa-{i}")).await?,
            "from-openbao",
            "{message}"
        );
    }
    assert_eq!(aws.requests_of("AssumeRoleWithWebIdentity")?.len(), 1);
    let gci = aws.requests_of("GetCallerIdentity")?;
    assert_eq!(gci.len(), 1);
    assert!(signed_with(&gci[0]).starts_with("ASIA"), "signed with the IRSA session");
    assert_eq!(front.ok_logins("aws", "irsa"), 1);
    assert!(
        front.logins()[0].detail.contains(":assumed-role/vault-login/"),
        "{:?}",
        front.logins()
    );

    // The front requires the server id: a store without it is refused, naming the header.
    store(
        &ns,
        &op.class,
        "no-id",
        &front.origin(),
        "        iam:\n          vaultRole: irsa\n          jwt: {serviceAccountRef: {name: app}}\n",
    )
    .await?;
    let (_, message) = store_ready(&ns, "no-id", "False").await?;
    assert!(message.contains("X-Vault-AWS-IAM-Server-ID"), "{message}");
    op.stop().await;
    Ok(())
}

/// An RSA key made with openssl: (PKCS#8 PEM, PKCS#8 DER, PKCS#1 public DER).
fn rsa_key() -> anyhow::Result<(String, Vec<u8>, Vec<u8>)> {
    let dir = std::env::temp_dir().join(syncret_tests::unique_name("vault-gcp-key"));
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("key.pem");
    let der = dir.join("key.der");
    let public = dir.join("pub.der");
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = std::process::Command::new("openssl").args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let (k, d, p) = (key.to_str().unwrap(), der.to_str().unwrap(), public.to_str().unwrap());
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        k,
    ])?;
    run(&["pkcs8", "-topk8", "-nocrypt", "-in", k, "-outform", "DER", "-out", d])?;
    run(&["rsa", "-in", k, "-RSAPublicKey_out", "-outform", "DER", "-out", p])?;
    let out = (
        std::fs::read_to_string(&key)?,
        std::fs::read(&der)?,
        std::fs::read(&public)?,
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(out)
}

#[tokio::test]
async fn gcp_iam_with_a_key_and_gce_with_the_metadata_server() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-gcp").await?;
    let bao = openbao().await?;
    let (sa_pem, _, sa_public) = rsa_key()?;
    let (_, google_private, google_public) = rsa_key()?;
    let mut config = front_config(&bao, None);
    config.gcp_keys = HashMap::from([((SA_EMAIL.to_string(), "kid-1".to_string()), sa_public)]);
    config.google_private = google_private;
    config.google_public = google_public;
    config.gce_email = GCE_EMAIL.into();
    let role = |kind: &'static str, email: &str| GcpRole {
        kind,
        bound_service_accounts: vec![email.to_string()],
        policies: vec!["reader".into()],
        ttl: "1h".into(),
    };
    config.gcp_roles = HashMap::from([
        ("iam-reader".to_string(), role("iam", SA_EMAIL)),
        ("gce-reader".to_string(), role("gce", GCE_EMAIL)),
        (
            "iam-other".to_string(),
            role("iam", "other@syncret-test.iam.gserviceaccount.com"),
        ),
    ]);
    let front = VaultFront::start(config).await?;
    let key_json = json!({"type": "service_account", "project_id": "syncret-test", "private_key_id": "kid-1",
                          "private_key": sa_pem, "client_email": SA_EMAIL, "client_id": "1",
                          "token_uri": "https://oauth2.googleapis.com/token"})
    .to_string();
    ns.api::<Secret>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "gcp-key"}, "stringData": {"key.json": key_json}}))?,
        )
        .await?;
    let google = Endpoints::default().with_host("metadata.google.internal", front.origin());
    let op = operator(&ns, None, Some(google)).await?;
    let with_key = |role: &str| {
        format!(
            "        gcp:\n          role: {role}\n          secretRef:\n            secretAccessKeySecretRef: {{name: gcp-key, key: key.json}}\n"
        )
    };
    store(&ns, &op.class, "iam", &front.origin(), &with_key("iam-reader")).await?;
    store(
        &ns,
        &op.class,
        "gce",
        &front.origin(),
        "        gcp: {role: gce-reader}\n",
    )
    .await?;
    let (_, message) = store_ready(&ns, "iam", "True").await?;
    let (_, gce_message) = store_ready(&ns, "gce", "True").await?;
    for (es, st) in [("iam-1", "iam"), ("iam-2", "iam"), ("gce-1", "gce"), ("gce-2", "gce")] {
        external_secret(&ns, es, st, "1h").await?;
    }
    for es in ["iam-1", "iam-2"] {
        assert_eq!(synced_value(&ns, es).await?, "from-openbao", "{message}");
    }
    for es in ["gce-1", "gce-2"] {
        assert_eq!(synced_value(&ns, es).await?, "from-openbao", "{gce_message}");
    }
    assert_eq!(front.ok_logins("gcp", "iam-reader"), 1, "{:?}", front.logins());
    assert_eq!(front.ok_logins("gcp", "gce-reader"), 1, "{:?}", front.logins());
    assert_eq!(front.identity_tokens(), 1, "one identity token for one login");
    let gce_login = front.logins().into_iter().find(|l| l.role == "gce-reader").unwrap();
    assert_eq!(gce_login.detail, GCE_EMAIL);

    // A role the key's service account is not bound to: refused, naming the role.
    store(&ns, &op.class, "other", &front.origin(), &with_key("iam-other")).await?;
    let (_, message) = store_ready(&ns, "other", "False").await?;
    assert!(
        message.contains(r#"role "iam-other""#) && message.contains("not authorized"),
        "{message}"
    );
    assert!(!message.contains("PRIVATE KEY"), "{message}");
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn gcp_iam_with_workload_identity_signs_through_iam_credentials() -> anyhow::Result<()> {
    use super::provider_gcp::google_auth::GoogleAuth;
    use super::provider_gcp::{IMPERSONATED, PROJECT, auth_config};
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-gcp-wi").await?;
    let bao = openbao().await?;
    let google = GoogleAuth::start(auth_config(), ns.client.clone()).await?;
    let (_, google_private, google_public) = rsa_key()?;
    let mut config = front_config(&bao, None);
    config.gcp_keys = HashMap::from([(
        (IMPERSONATED.to_string(), "gsa-key-1".to_string()),
        google_public.clone(),
    )]);
    config.google_private = google_private;
    config.google_public = google_public;
    config.sign_jwt_token = auth_config().impersonated_token;
    config.google_auth = Some(google.origin());
    config.gcp_roles = HashMap::from([(
        "wi-reader".to_string(),
        GcpRole {
            kind: "iam",
            bound_service_accounts: vec![IMPERSONATED.to_string()],
            policies: vec!["reader".into()],
            ttl: "1h".into(),
        },
    )]);
    let front = VaultFront::start(config).await?;
    ns.api::<ServiceAccount>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "app-ksa", "annotations": {"iam.gke.io/gcp-service-account": IMPERSONATED}}}),
            )?,
        )
        .await?;
    let endpoints = Endpoints::default()
        .with_host("securetoken.googleapis.com", google.origin())
        .with_host("iamcredentials.googleapis.com", front.origin());
    let op = operator(&ns, None, Some(endpoints)).await?;
    store(
        &ns,
        &op.class,
        "wi",
        &front.origin(),
        &format!(
            "        gcp:\n          role: wi-reader\n          workloadIdentity:\n            serviceAccountRef: {{name: app-ksa}}\n            clusterProjectID: {PROJECT}\n            clusterLocation: europe-west1\n            clusterName: c1\n"
        ),
    )
    .await?;
    let (_, message) = store_ready(&ns, "wi", "True").await?;
    for es in ["wi-1", "wi-2"] {
        external_secret(&ns, es, "wi", "1h").await?;
    }
    for es in ["wi-1", "wi-2"] {
        assert_eq!(synced_value(&ns, es).await?, "from-openbao", "{message}");
    }
    assert_eq!(front.ok_logins("gcp", "wi-reader"), 1, "{:?}", front.logins());
    assert_eq!(front.signed_jwts(), 1);
    let records = google.records();
    let binding: Vec<_> = records.iter().filter(|r| r.endpoint == "securetoken").collect();
    assert_eq!(binding.len(), 1, "{records:?}");
    assert_eq!(binding[0].detail, format!("system:serviceaccount:{}:app-ksa", ns.name));
    assert_eq!(
        records
            .iter()
            .filter(|r| r.endpoint == "iamcredentials" && r.ok)
            .count(),
        1,
        "{records:?}"
    );
    op.stop().await;
    Ok(())
}
