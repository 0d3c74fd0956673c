//! The Azure Key Vault provider (`azurekv`) end to end: syncret in-process on the real control plane, the official
//! `azure_security_keyvault_secrets` / `azure_identity` clients, against syncret's Key Vault fake
//! (e2e/providers/azkv: Key Vault secrets REST over HTTPS, Entra ID token endpoint, IMDS) on loopback. Lowkey Vault
//! is not obtainable here (docs/providers/test-servers.md). The fake's directory is populated per test through its
//! `/fake-admin/` endpoints so token requests are validated (client secret, certificate JWT, federated credential
//! issuer/subject/audience and the apiserver's signature), and most tests run it with `--require-issued-tokens` so
//! Key Vault accepts only tokens the flows really obtained.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::azure::{AzureKeyVault as AzureProvider, Settings};
use syncret_providers::{CallObserver, PushRef, Registry, RemoteKey, RemoteValue, SecretValue, StoreInfo, StoreScope};
use syncret_providers::{Provider, ProviderContext};
use syncret_tests::operator::Operator;
use syncret_tests::servers::AzureKeyVault;
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml as apply, eventually};

const TENANT: &str = "tenant-1";
const WAIT: Duration = Duration::from_secs(60);

/// The fake's test-control API and Key Vault seeding over raw HTTPS (not through the code under test).
struct Fake {
    kv: AzureKeyVault,
    http: reqwest::Client,
}

impl Fake {
    async fn start() -> anyhow::Result<Fake> {
        let kv = AzureKeyVault::start_requiring_issued_tokens().await?;
        let ca = reqwest::Certificate::from_pem(kv.ca_cert_pem()?.as_bytes())?;
        let http = reqwest::Client::builder().add_root_certificate(ca).build()?;
        let fake = Fake { kv, http };
        // The seeding identity: registering it switches the fake's directory to validating token requests.
        fake.register_app("seeder", serde_json::json!({"clientSecret": "seeder-secret"}))
            .await?;
        Ok(fake)
    }

    fn url(&self) -> &str {
        self.kv.vault_url()
    }

    async fn admin(&self, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(format!("{}/fake-admin/{path}", self.url()))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "fake-admin {path}: {}", resp.text().await?);
        Ok(())
    }

    async fn register_app(&self, client_id: &str, app: serde_json::Value) -> anyhow::Result<()> {
        self.admin(&format!("applications/{client_id}"), app).await
    }

    async fn token(&self) -> anyhow::Result<String> {
        let resp: serde_json::Value = self
            .http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", self.url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "seeder"),
                ("client_secret", "seeder-secret"),
                ("scope", "https://vault.azure.net/.default"),
            ])
            .send()
            .await?
            .json()
            .await?;
        Ok(resp["access_token"].as_str().unwrap_or_default().to_string())
    }

    /// `PUT /secrets/{name}`; returns the new version id.
    async fn put(&self, name: &str, value: &str, tags: serde_json::Value) -> anyhow::Result<String> {
        let token = self.token().await?;
        let resp: serde_json::Value = self
            .http
            .put(format!("{}/secrets/{name}?api-version=7.6", self.url()))
            .bearer_auth(token)
            .json(&serde_json::json!({"value": value, "tags": tags}))
            .send()
            .await?
            .json()
            .await?;
        let id = resp["id"].as_str().unwrap_or_default();
        Ok(id.rsplit('/').next().unwrap_or_default().to_string())
    }

    async fn get_raw(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let token = self.token().await?;
        Ok(self
            .http
            .get(format!("{}/secrets/{name}?api-version=7.6", self.url()))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?)
    }

    fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings {
            imds_endpoint: self.kv.imds_endpoint().to_string(),
            extra_ca_pem: self.kv.ca_cert_pem()?.into_bytes(),
            env: Default::default(),
        })
    }

    /// Requests of `op` that the fake answered with 2xx.
    fn ok_count(&self, op: &str) -> anyhow::Result<usize> {
        Ok(self
            .kv
            .requests()?
            .iter()
            .filter(|r| r.op == op && (200..300).contains(&r.status))
            .count())
    }
}

/// syncret with the Azure provider configured for this fake (its CA, its IMDS endpoint).
async fn operator(ns: &TestNamespace, fake: &Fake) -> anyhow::Result<Operator> {
    operator_with(ns, fake, syncret_tests::operator::loopback_allowed()).await
}

/// [`operator`] under this tenant policy.
async fn operator_with(
    ns: &TestNamespace,
    fake: &Fake,
    tenant: syncret_providers::TenantPolicy,
) -> anyhow::Result<Operator> {
    let mut registry = Registry::with_default_providers();
    registry.register(Arc::new(AzureProvider::new(fake.settings()?)));
    let mut opts = syncret::runtime::Options::default();
    opts.settings.tenant = Arc::new(tenant);
    opts.settings.controller_class = syncret_tests::unique_name("class");
    opts.settings.namespace = Some(ns.name.clone());
    opts.settings.backoff_base = Duration::from_millis(200);
    opts.settings.backoff_max = Duration::from_secs(5);
    opts.admin_addr = None;
    opts.client_qps = 0.0;
    let class = opts.settings.controller_class.clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = syncret::runtime::start_with_registry(ns.client.clone(), opts, registry, shutdown.clone()).await?;
    Ok(Operator {
        started: Some(started),
        shutdown,
        class,
    })
}

async fn secret(ns: &TestNamespace, name: &str, data: &[(&str, &str)]) -> anyhow::Result<()> {
    let secrets: Api<Secret> = ns.api();
    let data: BTreeMap<String, String> = data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    apply(
        &secrets,
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data})
            .to_string(),
    )
    .await?;
    Ok(())
}

/// A SecretStore `name` with `provider` merged into `azurekv` (vaultUrl and the fake's authority preset).
async fn store(
    ns: &TestNamespace,
    op: &Operator,
    fake: &Fake,
    name: &str,
    auth: serde_json::Value,
) -> anyhow::Result<()> {
    let mut provider = serde_json::json!({
        "vaultUrl": fake.url(),
        "useAzureSDK": true,
        "customCloudConfig": {"activeDirectoryEndpoint": fake.url()},
    });
    if let (Some(p), Some(a)) = (provider.as_object_mut(), auth.as_object()) {
        p.extend(a.clone());
    }
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
            "spec": {"controller": op.class, "provider": {"azurekv": provider}},
        })
        .to_string(),
    )
    .await?;
    Ok(())
}

fn sp_auth() -> serde_json::Value {
    serde_json::json!({
        "tenantId": TENANT,
        "authSecretRef": {
            "clientId": {"name": "sp", "key": "client-id"},
            "clientSecret": {"name": "sp", "key": "client-secret"},
        },
    })
}

/// The store's Ready condition once it has one with `status`: (reason, message).
async fn store_condition(ns: &TestNamespace, name: &str, status: &str) -> anyhow::Result<(String, String)> {
    let stores: Api<SecretStore> = ns.api();
    eventually(WAIT, &format!("store {name} Ready={status}"), || async {
        let s = stores.get(name).await.ok()?;
        let c = s
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == status)?;
        Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
    })
    .await
}

/// The ExternalSecret's Ready condition once it has one with `status`: (reason, message).
async fn es_condition(ns: &TestNamespace, name: &str, status: &str) -> anyhow::Result<(String, String)> {
    let ess: Api<ExternalSecret> = ns.api();
    eventually(WAIT, &format!("ExternalSecret {name} Ready={status}"), || async {
        let es = ess.get(name).await.ok()?;
        let c =
            es.status?.conditions.into_iter().find(|c| {
                c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready && c.status == status
            })?;
        Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
    })
    .await
}

async fn target_data(ns: &TestNamespace, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let secrets: Api<Secret> = ns.api();
    let s = eventually(WAIT, &format!("Secret {name}"), || async {
        secrets.get_opt(name).await.ok().flatten()
    })
    .await?;
    Ok(s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

#[tokio::test]
async fn service_principal_secret_reads_every_remote_ref_shape() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("azure-sp").await?;
    let fake = Fake::start().await?;
    fake.register_app("app-id", serde_json::json!({"clientSecret": "s3cr3t"}))
        .await?;
    fake.put(
        "db",
        r#"{"user":"admin","password":"p4ss","nested":{"a":"b"}}"#,
        serde_json::json!({"env": "prod", "team": "a"}),
    )
    .await?;
    let v1 = fake.put("token", "t1", serde_json::json!({})).await?;
    fake.put("token", "t2", serde_json::json!({})).await?;
    for i in 0..30 {
        fake.put(&format!("bulk-{i:02}"), &format!("value-{i}"), serde_json::json!({}))
            .await?;
    }
    fake.put("app-one", "1", serde_json::json!({"group": "apps"})).await?;
    fake.put("app-two", "2", serde_json::json!({"group": "apps"})).await?;
    fake.put("app-three", "3", serde_json::json!({"group": "other"}))
        .await?;
    fake.kv.clear_requests()?;

    let op = operator(&ns, &fake).await?;
    secret(&ns, "sp", &[("client-id", "app-id"), ("client-secret", "s3cr3t")]).await?;
    store(&ns, &op, &fake, "azure", sp_auth()).await?;
    let (reason, _) = store_condition(&ns, "azure", "True").await?;
    assert_eq!(reason, "Valid");

    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: app}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: azure, kind: SecretStore}}
  target: {{name: app-secret}}
  data:
  - {{secretKey: password, remoteRef: {{key: db, property: password}}}}
  - {{secretKey: nested-a, remoteRef: {{key: secret/db, property: nested.a}}}}
  - {{secretKey: token, remoteRef: {{key: token}}}}
  - {{secretKey: token-v1, remoteRef: {{key: token, version: "{v1}"}}}}
  - {{secretKey: env-tag, remoteRef: {{key: db, metadataPolicy: Fetch, property: env}}}}
  dataFrom:
  - extract: {{key: db}}
"#
        ),
    )
    .await?;
    assert_eq!(
        target_data(&ns, "app-secret").await?,
        map(&[
            ("password", "p4ss"),
            ("nested-a", "b"),
            ("token", "t2"),
            ("token-v1", "t1"),
            ("env-tag", "prod"),
            ("user", "admin"),
            ("nested", r#"{"a":"b"}"#),
        ])
    );
    let (reason, _) = es_condition(&ns, "app", "True").await?;
    assert_eq!(reason, "SecretSynced");

    // dataFrom.find by name (30 matches over two pages) and by tags.
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: bulk}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: azure, kind: SecretStore}
  target: {name: bulk-secret}
  dataFrom:
  - find: {name: {regexp: "^bulk-"}}
  - find: {tags: {group: apps}}
"#,
    )
    .await?;
    let bulk = target_data(&ns, "bulk-secret").await?;
    let mut want: BTreeMap<String, String> = (0..30)
        .map(|i| (format!("bulk-{i:02}"), format!("value-{i}")))
        .collect();
    want.insert("app-one".into(), "1".into());
    want.insert("app-two".into(), "2".into());
    assert_eq!(bulk, want);

    // One token for everything; every Key Vault call carried an issued token (the fake refuses others).
    assert_eq!(fake.ok_count("TokenClientSecret")?, 1, "{:?}", fake.kv.requests()?);
    assert_eq!(fake.kv.count("InvalidToken")?, 0);
    let token_req = fake
        .kv
        .requests()?
        .into_iter()
        .find(|r| r.op == "TokenClientSecret")
        .unwrap();
    assert_eq!(token_req.form.get("client_id").map(String::as_str), Some("app-id"));
    assert_eq!(token_req.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        token_req.form.get("scope").map(String::as_str),
        Some("https://vault.azure.net/.default")
    );
    // Each find lists the whole vault (36 secrets, 25 a page): a first page and one next page, then one GetSecret
    // per match. (How often the ExternalSecret is reconciled is the operator's business, so count per listing.)
    let reqs = fake.kv.requests()?;
    let lists: Vec<_> = reqs
        .iter()
        .filter(|r| r.op == "GetSecrets" && r.status == 200)
        .collect();
    let first = lists
        .iter()
        .filter(|r| r.query.ends_with("maxresults=25") && !r.query.contains("skiptoken"))
        .count();
    let next = lists.iter().filter(|r| r.query.contains("skiptoken=25")).count();
    assert!(
        first >= 2 && first == next,
        "every listing is two pages: {first} first, {next} next"
    );
    let bulk_reads = reqs
        .iter()
        .filter(|r| r.op == "GetSecret" && r.path.starts_with("/secrets/bulk-"))
        .count();
    assert_eq!(bulk_reads % 30, 0, "30 reads per find by name");
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn wrong_client_secret_fails_the_store_and_the_external_secret() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("azure-badsp").await?;
    let fake = Fake::start().await?;
    fake.register_app("app-id", serde_json::json!({"clientSecret": "right"}))
        .await?;
    fake.put("db", "v", serde_json::json!({})).await?;
    let op = operator(&ns, &fake).await?;
    secret(&ns, "sp", &[("client-id", "app-id"), ("client-secret", "wrong")]).await?;
    store(&ns, &op, &fake, "azure", sp_auth()).await?;
    let (reason, message) = store_condition(&ns, "azure", "False").await?;
    assert_eq!(reason, "ValidationFailed");
    assert!(message.contains("AADSTS7000215"), "{message}");
    assert!(message.contains("authentication failed"), "{message}");
    assert!(!message.contains("wrong"), "the secret must not leak: {message}");

    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: azure, kind: SecretStore}
  target: {name: app-secret}
  data:
  - {secretKey: v, remoteRef: {key: db}}
"#,
    )
    .await?;
    let (_, message) = es_condition(&ns, "app", "False").await?;
    assert!(message.contains("azure") && message.contains("not ready"), "{message}");

    // Missing tenantId names the field.
    store(
        &ns,
        &op,
        &fake,
        "no-tenant",
        serde_json::json!({"authSecretRef": sp_auth()["authSecretRef"]}),
    )
    .await?;
    let (_, message) = store_condition(&ns, "no-tenant", "False").await?;
    assert!(message.contains("spec.provider.azurekv.tenantId"), "{message}");
    op.stop().await;
    Ok(())
}

/// The issuer and JWKS of the control plane's ServiceAccount tokens, as Entra ID would discover them.
async fn control_plane_issuer(client: &kube::Client) -> anyhow::Result<(String, serde_json::Value)> {
    let disco = client
        .request_text(http::Request::get("/.well-known/openid-configuration").body(vec![])?)
        .await?;
    let disco: serde_json::Value = serde_json::from_str(&disco)?;
    let jwks = client
        .request_text(http::Request::get("/openid/v1/jwks").body(vec![])?)
        .await?;
    Ok((
        disco["issuer"].as_str().unwrap_or_default().to_string(),
        serde_json::from_str(&jwks)?,
    ))
}

async fn service_account(ns: &TestNamespace, name: &str, client_id: &str) -> anyhow::Result<()> {
    let sas: Api<ServiceAccount> = ns.api();
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some(name.into());
    sa.metadata.annotations = Some(
        [
            ("azure.workload.identity/client-id".to_string(), client_id.to_string()),
            ("azure.workload.identity/tenant-id".to_string(), TENANT.to_string()),
        ]
        .into(),
    );
    sas.create(&PostParams::default(), &sa).await?;
    Ok(())
}

#[tokio::test]
async fn workload_identity_exchanges_a_service_account_token() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("azure-wi").await?;
    let fake = Fake::start().await?;
    let (issuer, jwks) = control_plane_issuer(&ns.client).await?;
    fake.admin("issuers", serde_json::json!({"issuer": issuer, "jwks": jwks}))
        .await?;
    fake.register_app(
        "wi-app",
        serde_json::json!({"federatedCredentials": [{
            "issuer": issuer,
            "subject": format!("system:serviceaccount:{}:workload", ns.name),
            "audiences": ["api://AzureADTokenExchange"],
        }]}),
    )
    .await?;
    fake.put("db", r#"{"password":"wi-pass"}"#, serde_json::json!({}))
        .await?;
    service_account(&ns, "workload", "wi-app").await?;
    // Annotated for the same application, but not federated: Entra ID must refuse its token.
    service_account(&ns, "intruder", "wi-app").await?;

    let op = operator(&ns, &fake).await?;
    store(
        &ns,
        &op,
        &fake,
        "azure",
        serde_json::json!({"authType": "WorkloadIdentity", "serviceAccountRef": {"name": "workload"}}),
    )
    .await?;
    assert_eq!(store_condition(&ns, "azure", "True").await?.0, "Valid");
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: azure, kind: SecretStore}
  target: {name: app-secret}
  data:
  - {secretKey: password, remoteRef: {key: db, property: password}}
"#,
    )
    .await?;
    assert_eq!(target_data(&ns, "app-secret").await?, map(&[("password", "wi-pass")]));

    let exchange = fake
        .kv
        .requests()?
        .into_iter()
        .find(|r| r.op == "TokenClientAssertion" && r.status == 200)
        .expect("a federated token exchange");
    assert_eq!(exchange.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(exchange.form["client_id"], "wi-app");
    assert_eq!(
        exchange.form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let claims = jwt_claims(&exchange.form["client_assertion"]);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{}:workload", ns.name).as_str()
    );
    assert_eq!(claims["aud"], serde_json::json!(["api://AzureADTokenExchange"]));
    assert_eq!(fake.ok_count("TokenClientAssertion")?, 1);

    store(
        &ns,
        &op,
        &fake,
        "intruder",
        serde_json::json!({"authType": "WorkloadIdentity", "serviceAccountRef": {"name": "intruder"}}),
    )
    .await?;
    let (_, message) = store_condition(&ns, "intruder", "False").await?;
    assert!(message.contains("AADSTS70021"), "{message}");

    // A ServiceAccount without the client-id annotation: the field is named.
    let sas: Api<ServiceAccount> = ns.api();
    let mut bare = ServiceAccount::default();
    bare.metadata.name = Some("bare".into());
    sas.create(&PostParams::default(), &bare).await?;
    store(
        &ns,
        &op,
        &fake,
        "bare",
        serde_json::json!({"authType": "WorkloadIdentity", "serviceAccountRef": {"name": "bare"}}),
    )
    .await?;
    let (_, message) = store_condition(&ns, "bare", "False").await?;
    assert!(
        message.contains("spec.provider.azurekv.serviceAccountRef") && message.contains("client-id"),
        "{message}"
    );
    op.stop().await;
    Ok(())
}

/// A self-signed RSA certificate and key (PEM), made with the openssl CLI the control-plane script also uses.
fn certificate() -> anyhow::Result<(String, String)> {
    let dir = std::env::temp_dir().join(syncret_tests::unique_name("azcert"));
    std::fs::create_dir_all(&dir)?;
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=syncret-test",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "openssl req failed");
    let cert = std::fs::read_to_string(dir.join("cert.pem"))?;
    let key = std::fs::read_to_string(dir.join("key.pem"))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((cert, key))
}

#[tokio::test]
async fn service_principal_certificate_signs_a_client_assertion() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("azure-cert").await?;
    let fake = Fake::start().await?;
    let (cert, key) = certificate()?;
    let (other_cert, other_key) = certificate()?;
    fake.register_app("cert-app", serde_json::json!({"certificate": cert}))
        .await?;
    fake.put("db", "from-cert", serde_json::json!({})).await?;
    let op = operator(&ns, &fake).await?;
    secret(
        &ns,
        "sp",
        &[
            ("client-id", "cert-app"),
            ("cert", &format!("{cert}{key}")),
            ("other", &format!("{other_cert}{other_key}")),
        ],
    )
    .await?;
    let auth = |key: &str| {
        serde_json::json!({
            "tenantId": TENANT,
            "authSecretRef": {
                "clientId": {"name": "sp", "key": "client-id"},
                "clientCertificate": {"name": "sp", "key": key},
            },
        })
    };
    store(&ns, &op, &fake, "azure", auth("cert")).await?;
    assert_eq!(store_condition(&ns, "azure", "True").await?.0, "Valid");
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: azure, kind: SecretStore}
  target: {name: app-secret}
  data:
  - {secretKey: v, remoteRef: {key: db}}
"#,
    )
    .await?;
    assert_eq!(target_data(&ns, "app-secret").await?, map(&[("v", "from-cert")]));
    let exchange = fake
        .kv
        .requests()?
        .into_iter()
        .find(|r| r.op == "TokenClientAssertion" && r.status == 200)
        .expect("a certificate assertion");
    let claims = jwt_claims(&exchange.form["client_assertion"]);
    assert_eq!(claims["iss"], "cert-app");
    assert_eq!(
        claims["aud"],
        format!("{}/{TENANT}/oauth2/v2.0/token", fake.url()).as_str()
    );

    // A certificate the application does not know.
    store(&ns, &op, &fake, "wrong-cert", auth("other")).await?;
    let (_, message) = store_condition(&ns, "wrong-cert", "False").await?;
    assert!(message.contains("AADSTS700027"), "{message}");
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn managed_identity_uses_the_imds_endpoint() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("azure-mi").await?;
    let fake = Fake::start().await?;
    fake.admin("managed-identities/mi-client", serde_json::json!({}))
        .await?;
    fake.put("db", "from-mi", serde_json::json!({})).await?;
    // Managed identity is the node's own identity: a namespaced SecretStore may use it only with the opt-in.
    let op = operator_with(
        &ns,
        &fake,
        syncret_providers::TenantPolicy {
            namespaced_operator_identity: true,
            ..syncret_tests::operator::loopback_allowed()
        },
    )
    .await?;
    store(
        &ns,
        &op,
        &fake,
        "azure",
        serde_json::json!({"authType": "ManagedIdentity", "identityId": "mi-client"}),
    )
    .await?;
    assert_eq!(store_condition(&ns, "azure", "True").await?.0, "Valid");
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: azure, kind: SecretStore}
  target: {name: app-secret}
  data:
  - {secretKey: v, remoteRef: {key: db}}
"#,
    )
    .await?;
    assert_eq!(target_data(&ns, "app-secret").await?, map(&[("v", "from-mi")]));
    let reqs: Vec<_> = fake
        .kv
        .requests()?
        .into_iter()
        .filter(|r| r.op == "TokenManagedIdentity")
        .collect();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].form["client_id"], "mi-client");
    assert_eq!(reqs[0].form["resource"], "https://vault.azure.net");

    store(
        &ns,
        &op,
        &fake,
        "unknown",
        serde_json::json!({"authType": "ManagedIdentity", "identityId": "nobody"}),
    )
    .await?;
    let (_, message) = store_condition(&ns, "unknown", "False").await?;
    assert!(message.contains("Identity not found"), "{message}");
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn many_external_secrets_share_one_login() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("azure-many").await?;
    let fake = Fake::start().await?;
    fake.register_app("app-id", serde_json::json!({"clientSecret": "s3cr3t"}))
        .await?;
    const N: usize = 20;
    for i in 0..N {
        fake.put(&format!("s{i}"), &format!("v{i}"), serde_json::json!({}))
            .await?;
    }
    fake.kv.clear_requests()?;
    let op = operator(&ns, &fake).await?;
    secret(&ns, "sp", &[("client-id", "app-id"), ("client-secret", "s3cr3t")]).await?;
    store(&ns, &op, &fake, "azure", sp_auth()).await?;
    store_condition(&ns, "azure", "True").await?;
    let ess: Api<ExternalSecret> = ns.api();
    for i in 0..N {
        apply(
            &ess,
            &format!(
                r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: es-{i}}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: azure, kind: SecretStore}}
  target: {{name: target-{i}}}
  data:
  - {{secretKey: v, remoteRef: {{key: s{i}}}}}
"#
            ),
        )
        .await?;
    }
    for i in 0..N {
        assert_eq!(
            target_data(&ns, &format!("target-{i}")).await?,
            map(&[("v", &format!("v{i}"))])
        );
    }
    assert_eq!(
        fake.kv.count("TokenClientSecret")?,
        1,
        "one token exchange for the whole store"
    );
    assert_eq!(
        fake.kv.count("Challenge")?,
        1,
        "one authentication challenge per client"
    );
    assert_eq!(fake.ok_count("GetSecret")?, N);
    let metrics = op.ctx().metrics.render()?;
    assert!(
        metrics.contains(
            r#"externalsecret_provider_api_calls_count{call="Login",provider="Azure/KeyVault",status="success"} 1"#
        ),
        "{metrics}"
    );
    op.stop().await;
    Ok(())
}

#[derive(Default)]
struct Calls(Mutex<Vec<&'static str>>, AtomicUsize);

impl CallObserver for Calls {
    fn observe(&self, _: &'static str, call: &'static str, _: bool, _: Duration) {
        self.0.lock().unwrap().push(call);
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

impl Calls {
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[tokio::test]
async fn push_secret_set_exists_delete_at_the_client() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("azure-push").await?;
    let fake = Fake::start().await?;
    fake.register_app("app-id", serde_json::json!({"clientSecret": "s3cr3t"}))
        .await?;
    fake.put("foreign", "not ours", serde_json::json!({"owner": "someone"}))
        .await?;
    secret(&ns, "sp", &[("client-id", "app-id"), ("client-secret", "s3cr3t")]).await?;
    let mut provider = serde_json::json!({
        "vaultUrl": fake.url(), "useAzureSDK": true,
        "customCloudConfig": {"activeDirectoryEndpoint": fake.url()},
    });
    provider
        .as_object_mut()
        .unwrap()
        .extend(sp_auth().as_object().unwrap().clone());
    let spec = serde_json::from_value(serde_json::json!({"provider": {"azurekv": provider}}))?;
    let info = StoreInfo {
        scope: StoreScope::SecretStore,
        name: "azure".into(),
        namespace: Some(ns.name.clone()),
        uid: "uid-1".into(),
        generation: 1,
        spec: Arc::new(spec),
    };
    let calls = Arc::new(Calls::default());
    let ctx = ProviderContext {
        client: ns.client.clone(),
        observer: calls.clone(),
        referent_namespace: None,
        templates: None,
        policy: Arc::new(syncret_tests::operator::loopback_allowed()),
    };
    let client = AzureProvider::new(fake.settings()?).new_client(&info, &ctx).await?;
    let at = |key: &str, property: Option<&str>, metadata: Option<&str>| PushRef {
        remote_key: key.into(),
        property: property.map(Into::into),
        metadata: metadata.map(Into::into),
        secret_key: None,
    };

    // Create with metadata.
    let md = r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"tags":{"team":"a"},"contentType":"text/plain"}}"#;
    client
        .push_secret(&at("pushed", None, Some(md)), &SecretValue::from("v1"))
        .await?;
    let raw = fake.get_raw("pushed").await?;
    assert_eq!(raw["value"], "v1");
    assert_eq!(
        raw["tags"],
        serde_json::json!({"managed-by": "external-secrets", "team": "a"})
    );
    assert_eq!(raw["contentType"], "text/plain");
    assert_eq!(calls.take(), vec!["Login", "GetSecret", "SetSecret"]);
    // Unchanged: read only.
    client
        .push_secret(&at("pushed", None, Some(md)), &SecretValue::from("v1"))
        .await?;
    assert_eq!(calls.take(), vec!["GetSecret"]);
    assert!(client.secret_exists(&at("pushed", None, None)).await?);
    assert!(!client.secret_exists(&at("missing", None, None)).await?);
    calls.take();

    // Properties merge into a JSON object.
    client
        .push_secret(&at("merged", Some("user"), None), &SecretValue::from("u"))
        .await?;
    client
        .push_secret(&at("merged", Some("pass"), None), &SecretValue::from("p"))
        .await?;
    let got = client.get_secret(&RemoteKey::new("merged")).await?;
    assert_eq!(got, RemoteValue::Bytes(SecretValue::from(r#"{"pass":"p","user":"u"}"#)));
    assert!(client.secret_exists(&at("merged", Some("user"), None)).await?);
    assert!(!client.secret_exists(&at("merged", Some("other"), None)).await?);
    client.delete_secret(&at("merged", Some("user"), None)).await?;
    assert_eq!(fake.get_raw("merged").await?["value"], r#"{"pass":"p"}"#);

    // A secret without the managed-by tag is neither overwritten nor deleted.
    let err = client
        .push_secret(&at("foreign", None, None), &SecretValue::from("mine"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not managed"), "{err}");
    client.delete_secret(&at("foreign", None, None)).await?;
    assert_eq!(fake.get_raw("foreign").await?["value"], "not ours");

    // Delete (soft delete), then push again: the deleted secret is recovered and a new version written.
    calls.take();
    client.delete_secret(&at("pushed", None, None)).await?;
    assert_eq!(calls.take(), vec!["GetSecret", "DeleteSecret"]);
    assert!(
        client
            .get_secret(&RemoteKey::new("pushed"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    client.delete_secret(&at("pushed", None, None)).await?;
    calls.take();
    client
        .push_secret(&at("pushed", None, None), &SecretValue::from("v2"))
        .await?;
    assert_eq!(
        calls.take(),
        vec!["GetSecret", "SetSecret", "RecoverDeletedSecret", "SetSecret"]
    );
    assert_eq!(fake.get_raw("pushed").await?["value"], "v2");

    // Metadata the provider refuses.
    let err = client
        .push_secret(
            &at("x", None, Some(r#"{"spec":{"tags":{"managed-by":"me"}}}"#)),
            &SecretValue::from("v"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("managed-by"), "{err}");
    // Certificates and keys are read-only.
    let err = client
        .push_secret(&at("cert/tls", None, None), &SecretValue::from("pem"))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "Unsupported");
    assert_eq!(fake.kv.count("InvalidToken")?, 0);
    Ok(())
}

#[tokio::test]
async fn certificates_and_keys_read_as_eso() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("azure-objects").await?;
    let fake = Fake::start().await?;
    fake.register_app("app-id", serde_json::json!({"clientSecret": "s3cr3t"}))
        .await?;
    let (cert_pem, _) = certificate()?;
    let token = fake.token().await?;
    let resp = fake
        .http
        .post(format!("{}/certificates/tls/import?api-version=7.6", fake.url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "value": base64::engine::general_purpose::STANDARD.encode(&cert_pem),
            "tags": {"team": "a"},
        }))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "import: {}", resp.text().await?);
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
    let resp = fake
        .http
        .put(format!("{}/keys/signing?api-version=7.6", fake.url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": {"kty": "RSA", "n": n, "e": "AQAB", "d": "cHJpdmF0ZQ", "key_ops": ["sign", "verify"]}}))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "import key: {}", resp.text().await?);
    let der = base64::engine::general_purpose::STANDARD
        .decode(cert_pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>())?;

    let op = operator(&ns, &fake).await?;
    secret(&ns, "sp", &[("client-id", "app-id"), ("client-secret", "s3cr3t")]).await?;
    store(&ns, &op, &fake, "azure", sp_auth()).await?;
    store_condition(&ns, "azure", "True").await?;
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: objects}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: azure, kind: SecretStore}
  target: {name: objects-secret}
  data:
  - {secretKey: tls.der, remoteRef: {key: cert/tls}}
  - {secretKey: cert-team, remoteRef: {key: cert/tls, metadataPolicy: Fetch, property: team}}
  - {secretKey: jwk, remoteRef: {key: key/signing}}
  - {secretKey: kty, remoteRef: {key: key/signing, property: kty}}
"#,
    )
    .await?;
    target_data(&ns, "objects-secret").await?;
    let secrets: Api<Secret> = ns.api();
    let data = secrets.get("objects-secret").await?.data.unwrap_or_default();
    assert_eq!(data["tls.der"].0, der, "the certificate's DER, as ESO returns it");
    assert_eq!(data["cert-team"].0, b"a");
    assert_eq!(data["kty"].0, b"RSA");
    let jwk: serde_json::Value = serde_json::from_slice(&data["jwk"].0)?;
    assert_eq!(jwk["n"], n.as_str());
    assert_eq!(jwk["e"], "AQAB");
    assert!(
        jwk["kid"].as_str().unwrap_or_default().contains("/keys/signing/"),
        "{jwk}"
    );
    assert!(jwk.get("d").is_none(), "no private key material: {jwk}");
    // The value and the metadata are two reads; two properties of one key are one read.
    assert_eq!(fake.ok_count("GetCertificate")?, 2);
    assert_eq!(fake.ok_count("GetKey")?, 1);

    // A missing certificate is NotFound (drives deletionPolicy), named in the ExternalSecret's condition.
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: missing}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: azure, kind: SecretStore}
  target: {name: missing-secret}
  data:
  - {secretKey: x, remoteRef: {key: cert/nope}}
"#,
    )
    .await?;
    let (_, message) = es_condition(&ns, "missing", "False").await?;
    assert!(message.contains("cert/nope"), "{message}");
    op.stop().await;
    Ok(())
}
