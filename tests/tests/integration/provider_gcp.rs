//! The GCP Secret Manager provider (`gcpsm`) end to end, with the official `google-cloud-secretmanager-v1` crate
//! talking over the wire to:
//!
//! - **syncret's Secret Manager fake** (`e2e/providers/gcpsm`, [`GcpEmulator`]): the published
//!   `google.cloud.secretmanager.v1` API built from the official Go protos, here through its HTTP/JSON mapping
//!   (the transport the Rust crate uses). Started with `start_requiring_token(T)`, it answers UNAUTHENTICATED to
//!   any call without `authorization: Bearer T`, so each test proves which token reached Secret Manager.
//! - **a Google token test server** (`provider_gcp/google_auth.rs`, [`GoogleAuth`]): OAuth2 JWT-bearer grant,
//!   STS token exchange, GKE identity binding, IAM Credentials `generateAccessToken` and the metadata server,
//!   validating what it receives (JWT signatures with the service-account key, ServiceAccount tokens of the test
//!   control plane through TokenReview with the expected audience).
//! - the real control plane (TokenRequest for ServiceAccount tokens, Secrets, ConfigMaps, the CRDs) and syncret
//!   running in-process.
#[path = "provider_gcp/google_auth.rs"]
pub(crate) mod google_auth;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use google_auth::{Config, GoogleAuth};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::Api;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::gcp::{Endpoints, Gcp};
use syncret_providers::{
    CallObserver, FindQuery, Provider, ProviderContext, ProviderError, PushRef, Registry, RemoteKey, SecretValue,
    SecretsClient, StoreInfo, StoreScope,
};
use syncret_tests::operator::Operator;
use syncret_tests::servers::GcpEmulator;
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml as apply, eventually};

pub(crate) const PROJECT: &str = "syncret-test";
const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const SA_EMAIL: &str = "syncret@syncret-test.iam.gserviceaccount.com";
const WIF_AUDIENCE: &str =
    "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/pool/providers/k8s";
pub(crate) const IMPERSONATED: &str = "reader@syncret-test.iam.gserviceaccount.com";

// --- fixtures ----------------------------------------------------------------------------------------------------

/// An RSA service-account key made with openssl: the JSON key and the public key (PKCS#1 DER).
pub(crate) struct SaKey {
    pub(crate) json: String,
    pub(crate) public_der: Vec<u8>,
}

pub(crate) fn sa_key() -> anyhow::Result<SaKey> {
    let dir = std::env::temp_dir().join(syncret_tests::unique_name("gcp-key"));
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("key.pem");
    let der = dir.join("pub.der");
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = std::process::Command::new("openssl").args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let (k, d) = (key.to_str().unwrap(), der.to_str().unwrap());
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        k,
    ])?;
    run(&["rsa", "-in", k, "-RSAPublicKey_out", "-outform", "DER", "-out", d])?;
    let pem = std::fs::read_to_string(&key)?;
    let public_der = std::fs::read(&der)?;
    std::fs::remove_dir_all(&dir)?;
    let json = serde_json::json!({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "kid-1", "private_key": pem,
        "client_email": SA_EMAIL, "client_id": "1", "token_uri": TOKEN_URI,
    })
    .to_string();
    Ok(SaKey { json, public_der })
}

pub(crate) fn auth_config() -> Config {
    Config {
        sa_email: SA_EMAIL.into(),
        sa_token_uri: TOKEN_URI.into(),
        sts_audience: WIF_AUDIENCE.into(),
        sts_subject_audience: WIF_AUDIENCE.into(),
        gke_pool: format!("{PROJECT}.svc.id.goog"),
        gke_provider: format!(
            "https://container.googleapis.com/v1/projects/{PROJECT}/locations/europe-west1/clusters/c1"
        ),
        impersonable: vec![IMPERSONATED.into()],
        project_id: PROJECT.into(),
        cluster_location: "europe-west1".into(),
        cluster_name: "c1".into(),
        oauth_token: "ya29.oauth-access-token".into(),
        sts_token: "ya29.sts-federated-token".into(),
        gke_token: "ya29.gke-binding-token".into(),
        impersonated_token: "ya29.impersonated-token".into(),
        mds_token: "ya29.metadata-server-token".into(),
        expires_in: 3600,
        ..Default::default()
    }
}

pub(crate) fn endpoints(gcp: &GcpEmulator, auth: &GoogleAuth) -> Endpoints {
    let mut e = Endpoints {
        secret_manager: Some(format!("http://{}", gcp.endpoint())),
        ..Default::default()
    };
    for host in [
        "oauth2.googleapis.com",
        "sts.googleapis.com",
        "securetoken.googleapis.com",
        "iamcredentials.googleapis.com",
        "metadata.google.internal",
    ] {
        e = e.with_host(host, auth.origin());
    }
    e
}

/// Writes secrets into the fake through its HTTP/JSON API (as the Secret Manager REST API).
struct Seed {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Seed {
    fn new(gcp: &GcpEmulator, token: &str) -> Seed {
        Seed {
            http: reqwest::Client::new(),
            base: format!("http://{}/v1", gcp.endpoint()),
            token: token.into(),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .http
            .post(format!("{}/{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await?;
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {v}");
        Ok(v)
    }

    async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .http
            .get(format!("{}/{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(resp.json().await?)
    }

    /// Creates `parent/secrets/id` with labels and annotations, and one version per value.
    async fn secret_in(
        &self,
        parent: &str,
        id: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        values: &[&str],
    ) -> anyhow::Result<()> {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        self.post(
            &format!("{parent}/secrets?secretId={id}"),
            serde_json::json!({"labels": map(labels), "annotations": map(annotations), "replication": {"automatic": {}}}),
        )
        .await?;
        for v in values {
            self.version(&format!("{parent}/secrets/{id}"), v).await?;
        }
        Ok(())
    }

    async fn secret(
        &self,
        id: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        values: &[&str],
    ) -> anyhow::Result<()> {
        self.secret_in(&format!("projects/{PROJECT}"), id, labels, annotations, values)
            .await
    }

    async fn version(&self, secret: &str, value: &str) -> anyhow::Result<()> {
        let data = base64::engine::general_purpose::STANDARD.encode(value);
        self.post(
            &format!("{secret}:addVersion"),
            serde_json::json!({"payload": {"data": data}}),
        )
        .await?;
        Ok(())
    }
}

/// syncret with the GCP provider pointed at the test servers.
async fn operator(ns: &TestNamespace, endpoints: Endpoints) -> anyhow::Result<Operator> {
    operator_with(ns, endpoints, syncret_tests::operator::loopback_allowed()).await
}

/// [`operator`] under this tenant policy.
async fn operator_with(
    ns: &TestNamespace,
    endpoints: Endpoints,
    tenant: syncret_providers::TenantPolicy,
) -> anyhow::Result<Operator> {
    let mut registry = Registry::with_default_providers();
    registry.register(Arc::new(Gcp::with_endpoints(endpoints)));
    let mut opts = syncret_tests::operator::options();
    opts.settings.tenant = Arc::new(tenant);
    opts.settings.namespace = Some(ns.name.clone());
    opts.admin_addr = Some("127.0.0.1:0".into());
    Operator::start_registry(ns.client.clone(), opts, registry).await
}

async fn secret_data(ns: &TestNamespace, name: &str, keys: usize) -> anyhow::Result<BTreeMap<String, String>> {
    let secrets: Api<Secret> = ns.api();
    let s = eventually(
        Duration::from_secs(60),
        &format!("Secret {name} with {keys} keys"),
        || async {
            secrets
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .filter(|s| s.data.as_ref().is_some_and(|d| d.len() == keys))
        },
    )
    .await?;
    Ok(s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect())
}

/// The store's Ready condition once it has one: (status, reason, message).
async fn store_ready(ns: &TestNamespace, name: &str) -> anyhow::Result<(String, String, String)> {
    let stores: Api<SecretStore> = ns.api();
    eventually(Duration::from_secs(60), "store Ready condition", || async {
        let s = stores.get(name).await.ok()?;
        let c = s.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        Some((c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
    })
    .await
}

/// `externalsecret_provider_api_calls_count` for GCP and `call`, summed over statuses.
fn metric_calls(op: &Operator, call: &str) -> f64 {
    let text = op.ctx().metrics.render().unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.starts_with("externalsecret_provider_api_calls_count{")
                && l.contains("provider=\"GCP/SecretManager\"")
                && l.contains(&format!("call=\"{call}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Counts calls the provider reports.
#[derive(Default)]
struct Calls(Mutex<Vec<(&'static str, bool)>>);

impl CallObserver for Calls {
    fn observe(&self, _: &'static str, call: &'static str, ok: bool, _: Duration) {
        self.0.lock().unwrap().push((call, ok));
    }
}

impl Calls {
    fn count(&self, call: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|(c, _)| *c == call).count()
    }
}

/// A client built directly by the provider (no operator), for a SecretStore `store` with this `gcpsm` spec,
/// under the operator's default tenant policy (loopback allowed: the test servers listen there).
async fn client(
    ns: &TestNamespace,
    gcpsm: &str,
    endpoints: Endpoints,
    calls: Arc<Calls>,
) -> Result<Arc<dyn SecretsClient>, ProviderError> {
    client_as(
        ns,
        gcpsm,
        endpoints,
        calls,
        StoreScope::SecretStore,
        syncret_tests::operator::loopback_allowed(),
    )
    .await
}

/// [`client`] for a store without `auth`: the pod's ambient credentials (here the test's metadata server), the
/// operator's own identity, which a namespaced store may use only with `--allow-namespaced-operator-identity`.
async fn ambient_client(
    ns: &TestNamespace,
    gcpsm: &str,
    endpoints: Endpoints,
    calls: Arc<Calls>,
) -> Result<Arc<dyn SecretsClient>, ProviderError> {
    let opted_in = syncret_providers::TenantPolicy {
        namespaced_operator_identity: true,
        ..syncret_tests::operator::loopback_allowed()
    };
    client_as(ns, gcpsm, endpoints, calls, StoreScope::SecretStore, opted_in).await
}

/// [`client`] for a store of `scope` under `policy`.
async fn client_as(
    ns: &TestNamespace,
    gcpsm: &str,
    endpoints: Endpoints,
    calls: Arc<Calls>,
    scope: StoreScope,
    policy: syncret_providers::TenantPolicy,
) -> Result<Arc<dyn SecretsClient>, ProviderError> {
    let spec: syncret_crds::secretstore::SecretStoreSpec =
        serde_yaml::from_str(&format!("provider:\n  gcpsm:\n{}", indent(gcpsm, 4))).expect("store spec");
    let store = StoreInfo {
        scope,
        name: "store".into(),
        namespace: (scope == StoreScope::SecretStore).then(|| ns.name.clone()),
        uid: "uid".into(),
        generation: 1,
        spec: Arc::new(spec),
    };
    let ctx = ProviderContext {
        client: ns.client.clone(),
        observer: calls,
        referent_namespace: None,
        policy: Arc::new(policy),
    };
    Gcp::with_endpoints(endpoints).new_client(&store, &ctx).await
}

fn indent(text: &str, n: usize) -> String {
    text.lines().map(|l| format!("{}{l}\n", " ".repeat(n))).collect()
}

async fn key_secret(ns: &TestNamespace, json: &str) -> anyhow::Result<()> {
    let secrets: Api<Secret> = ns.api();
    apply(
        &secrets,
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gcp-key"},
            "stringData": {"key.json": json}})
        .to_string(),
    )
    .await?;
    Ok(())
}

async fn service_account(ns: &TestNamespace, name: &str, gsa: Option<&str>) -> anyhow::Result<()> {
    let sas: Api<ServiceAccount> = ns.api();
    let mut sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
    if let Some(gsa) = gsa {
        sa["metadata"]["annotations"] = serde_json::json!({"iam.gke.io/gcp-service-account": gsa});
    }
    apply(&sas, &sa.to_string()).await?;
    Ok(())
}

fn text(v: &SecretValue) -> &str {
    v.as_str().unwrap_or("<binary>")
}

async fn read(c: &Arc<dyn SecretsClient>, key: RemoteKey) -> Result<String, ProviderError> {
    let v = c.get_secret(&key).await?;
    Ok(text(&v.select(&key.key, None)?).to_string())
}

// --- end to end through syncret ----------------------------------------------------------------------------------

/// A service-account key store: data with property, version, metadataPolicy Fetch and a full resource name;
/// dataFrom extract and find (name regexp, labels); store Valid; and 20 more ExternalSecrets — all with one
/// token exchange at the OAuth2 endpoint.
#[tokio::test]
async fn service_account_key_store_syncs_every_shape_with_one_login() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-sa").await?;
    let key = sa_key()?;
    let auth = GoogleAuth::start(
        Config {
            sa_public_key: key.public_der.clone(),
            ..auth_config()
        },
        ns.client.clone(),
    )
    .await?;
    let token = auth_config().oauth_token;
    let gcp = GcpEmulator::start_requiring_token(&token).await?;
    let seed = Seed::new(&gcp, &token);
    seed.secret(
        "db",
        &[],
        &[],
        &[
            r#"{"user":"admin","password":"p4ss"}"#,
            r#"{"user":"admin","password":"n3w","nested":{"a":"b"}}"#,
        ],
    )
    .await?;
    seed.secret(
        "api-key",
        &[("team", "payments"), ("env", "prod")],
        &[("owner", "alice")],
        &["k3y"],
    )
    .await?;
    seed.secret("app-one", &[("env", "prod")], &[], &["1"]).await?;
    seed.secret("app-two", &[("env", "dev")], &[], &["2"]).await?;
    seed.secret("other", &[], &[], &["x"]).await?;
    for i in 0..20 {
        seed.secret(&format!("bulk-{i}"), &[], &[], &[&format!("v{i}")]).await?;
    }
    gcp.clear_requests()?;
    key_secret(&ns, &key.json).await?;
    let op = operator(&ns, endpoints(&gcp, &auth)).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: gcp}}
spec:
  controller: {class}
  provider:
    gcpsm:
      projectID: {PROJECT}
      auth:
        secretRef:
          secretAccessKeySecretRef: {{name: gcp-key, key: key.json}}
"#,
            class = op.class
        ),
    )
    .await?;
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: data}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: gcp, kind: SecretStore}}
  data:
  - {{secretKey: password, remoteRef: {{key: db, property: password}}}}
  - {{secretKey: old, remoteRef: {{key: db, version: "1", property: password}}}}
  - {{secretKey: nested, remoteRef: {{key: db, property: nested.a}}}}
  - {{secretKey: team, remoteRef: {{key: api-key, metadataPolicy: Fetch, property: labels.team}}}}
  - {{secretKey: owner, remoteRef: {{key: api-key, metadataPolicy: Fetch, property: annotations.owner}}}}
  - {{secretKey: full, remoteRef: {{key: projects/{PROJECT}/secrets/other}}}}
"#
        ),
    )
    .await?;
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: data-from}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: gcp, kind: SecretStore}
  dataFrom:
  - extract: {key: db}
  - find: {name: {regexp: "^app-"}}
  - find: {tags: {env: prod}}
"#,
    )
    .await?;
    for i in 0..20 {
        apply(
            &ess,
            &format!(
                r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: bulk-{i}}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: gcp, kind: SecretStore}}
  data:
  - {{secretKey: v, remoteRef: {{key: bulk-{i}}}}}
"#
            ),
        )
        .await?;
    }
    let data = secret_data(&ns, "data", 6).await?;
    assert_eq!(
        data,
        kv(&[
            ("password", "n3w"),
            ("old", "p4ss"),
            ("nested", "b"),
            ("team", "payments"),
            ("owner", "alice"),
            ("full", "x")
        ])
    );
    let data = secret_data(&ns, "data-from", 6).await?;
    assert_eq!(
        data,
        kv(&[
            ("user", "admin"),
            ("password", "n3w"),
            ("nested", r#"{"a":"b"}"#),
            ("app-one", "1"),
            ("app-two", "2"),
            ("api-key", "k3y"),
        ])
    );
    for i in 0..20 {
        assert_eq!(
            secret_data(&ns, &format!("bulk-{i}"), 1).await?,
            kv(&[("v", &format!("v{i}"))])
        );
    }
    let (status, reason, _) = store_ready(&ns, "gcp").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"));
    // One login for the store, the 22 ExternalSecrets and the store validation.
    assert_eq!(auth.count_ok("oauth2"), 1, "{:?}", auth.records());
    assert_eq!(metric_calls(&op, "GetAccessToken"), 1.0);
    let requests = gcp.requests()?;
    assert!(requests.iter().all(|r| r.authorization == format!("Bearer {token}")));
    assert!(requests.iter().all(|r| r.code == "OK"), "{requests:?}");
    let lists = requests.iter().filter(|r| r.method == "ListSecrets").count();
    assert_eq!(lists, 2, "one ListSecrets per find");
    // Each distinct (key, version) is read once per refresh: 3 for `data`, 1 + 2 + 2 for `data-from`, 20 bulk.
    let access = requests.iter().filter(|r| r.method == "AccessSecretVersion").count();
    let gets = requests.iter().filter(|r| r.method == "GetSecret").count();
    eprintln!(
        "Secret Manager calls for 22 ExternalSecrets: {access} AccessSecretVersion, {gets} GetSecret, {lists} ListSecrets"
    );
    assert!((27..=28).contains(&access), "{access}");
    assert_eq!(gets, 1, "both metadata items of api-key share one GetSecret");
    op.stop().await;
    Ok(())
}

/// A key the token endpoint rejects: the store is not Ready and says why; the ExternalSecret names the store.
#[tokio::test]
async fn rejected_key_leaves_the_store_not_ready_with_a_clear_message() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-badkey").await?;
    let key = sa_key()?;
    let other = sa_key()?;
    // The server knows another key's public half: the signature does not verify.
    let auth = GoogleAuth::start(
        Config {
            sa_public_key: other.public_der,
            ..auth_config()
        },
        ns.client.clone(),
    )
    .await?;
    let gcp = GcpEmulator::start_requiring_token(&auth_config().oauth_token).await?;
    key_secret(&ns, &key.json).await?;
    let op = operator(&ns, endpoints(&gcp, &auth)).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: gcp}}
spec:
  controller: {class}
  provider:
    gcpsm:
      projectID: {PROJECT}
      auth: {{secretRef: {{secretAccessKeySecretRef: {{name: gcp-key, key: key.json}}}}}}
"#,
            class = op.class
        ),
    )
    .await?;
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: gcp, kind: SecretStore}
  data: [{secretKey: a, remoteRef: {key: db}}]
"#,
    )
    .await?;
    let (status, reason, message) = store_ready(&ns, "gcp").await?;
    assert_eq!(status, "False");
    assert_eq!(reason, "InvalidProviderConfig");
    assert!(
        message.contains("authentication failed") && message.contains("invalid_grant: Invalid JWT Signature"),
        "{message}"
    );
    assert!(!message.contains("PRIVATE KEY"));
    let cond = eventually(Duration::from_secs(60), "ExternalSecret not Ready", || async {
        let es = ess.get("app").await.ok()?;
        es.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready && c.status == "False")
    })
    .await?;
    let msg = cond.message.unwrap_or_default();
    assert!(msg.contains("gcp") && msg.contains("not ready"), "{msg}");
    assert_eq!(gcp.requests()?.len(), 0, "no Secret Manager call without a token");
    op.stop().await;
    Ok(())
}

/// GKE Workload Identity: a TokenRequest token of the ServiceAccount (audience `<project>.svc.id.goog`) is
/// exchanged for an identity binding token (cluster location and name from the metadata server), which then
/// impersonates the Google service account named by the `iam.gke.io/gcp-service-account` annotation.
#[tokio::test]
async fn gke_workload_identity_exchanges_a_service_account_token_and_impersonates() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-gke").await?;
    let auth = GoogleAuth::start(auth_config(), ns.client.clone()).await?;
    let token = auth_config().impersonated_token;
    let gcp = GcpEmulator::start_requiring_token(&token).await?;
    Seed::new(&gcp, &token).secret("db", &[], &[], &["gke-value"]).await?;
    service_account(&ns, "app-ksa", Some(IMPERSONATED)).await?;
    // The cluster's location and name come from the metadata server, part of the operator's own environment: a
    // namespaced SecretStore may ask it only with the opt-in (`--allow-namespaced-operator-identity`).
    let opted_in = syncret_providers::TenantPolicy {
        namespaced_operator_identity: true,
        ..syncret_tests::operator::loopback_allowed()
    };
    let op = operator_with(&ns, endpoints(&gcp, &auth), opted_in).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: gcp}}
spec:
  controller: {class}
  provider:
    gcpsm:
      auth:
        workloadIdentity:
          serviceAccountRef: {{name: app-ksa}}
          clusterProjectID: {PROJECT}
"#,
            class = op.class
        ),
    )
    .await?;
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: gcp, kind: SecretStore}
  data: [{secretKey: v, remoteRef: {key: db}}]
"#,
    )
    .await?;
    assert_eq!(secret_data(&ns, "app", 1).await?, kv(&[("v", "gke-value")]));
    let records = auth.records();
    let binding: Vec<_> = records.iter().filter(|r| r.endpoint == "securetoken").collect();
    assert_eq!(binding.len(), 1, "{records:?}");
    assert!(binding[0].ok);
    assert_eq!(binding[0].detail, format!("system:serviceaccount:{}:app-ksa", ns.name));
    let imp: Vec<_> = records.iter().filter(|r| r.endpoint == "iamcredentials").collect();
    assert_eq!(imp.len(), 1);
    assert_eq!(imp[0].detail, format!("{IMPERSONATED} by gke"));
    let meta: Vec<&str> = records
        .iter()
        .filter(|r| r.endpoint == "metadata")
        .map(|r| r.detail.as_str())
        .collect();
    assert_eq!(
        meta,
        [
            "instance/attributes/cluster-location",
            "instance/attributes/cluster-name"
        ]
    );
    assert_eq!(metric_calls(&op, "GenerateServiceAccountToken"), 1.0);
    assert_eq!(metric_calls(&op, "GenerateIDBindToken"), 1.0);
    assert_eq!(metric_calls(&op, "GenerateAccessToken"), 1.0);
    // The project came from clusterProjectID.
    let reads: Vec<String> = gcp
        .requests()?
        .into_iter()
        .filter(|r| r.method == "AccessSecretVersion")
        .map(|r| r.name)
        .collect();
    assert_eq!(reads, [format!("projects/{PROJECT}/secrets/db/versions/latest")]);
    op.stop().await;
    Ok(())
}

/// Workload Identity Federation with `serviceAccountRef`: the ServiceAccount's token (audience = the workload
/// identity provider) is exchanged at STS; the federated token reads the secret directly.
#[tokio::test]
async fn workload_identity_federation_exchanges_a_service_account_token_at_sts() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-wif").await?;
    let auth = GoogleAuth::start(auth_config(), ns.client.clone()).await?;
    let token = auth_config().sts_token;
    let gcp = GcpEmulator::start_requiring_token(&token).await?;
    Seed::new(&gcp, &token).secret("db", &[], &[], &["federated"]).await?;
    service_account(&ns, "fed-ksa", None).await?;
    let op = operator(&ns, endpoints(&gcp, &auth)).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: gcp}}
spec:
  controller: {class}
  provider:
    gcpsm:
      projectID: {PROJECT}
      auth:
        workloadIdentityFederation:
          audience: "{WIF_AUDIENCE}"
          serviceAccountRef: {{name: fed-ksa, audiences: ["{WIF_AUDIENCE}"]}}
"#,
            class = op.class
        ),
    )
    .await?;
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: gcp, kind: SecretStore}
  data: [{secretKey: v, remoteRef: {key: db}}]
"#,
    )
    .await?;
    assert_eq!(secret_data(&ns, "app", 1).await?, kv(&[("v", "federated")]));
    let sts: Vec<_> = auth.records().into_iter().filter(|r| r.endpoint == "sts").collect();
    assert_eq!(sts.len(), 1);
    assert!(sts[0].ok, "{sts:?}");
    assert_eq!(sts[0].detail, format!("system:serviceaccount:{}:fed-ksa", ns.name));
    assert_eq!(auth.count_ok("iamcredentials"), 0);
    assert_eq!(metric_calls(&op, "ExchangeToken"), 1.0);
    op.stop().await;
    Ok(())
}

// --- client level --------------------------------------------------------------------------------------------

/// Workload Identity Federation from a credential configuration in a ConfigMap: the subject token comes from the
/// external identity provider's URL (JSON, with a header), STS exchanges it, and the federated token impersonates
/// the service account of `service_account_impersonation_url`. A `credential_source.url` that is not the
/// store's `externalTokenEndpoint` is refused, as ESO.
#[tokio::test]
async fn federation_from_a_credential_configuration() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-credcfg").await?;
    let auth = GoogleAuth::start(
        Config {
            external_subject_token: "external-idp-token".into(),
            ..auth_config()
        },
        ns.client.clone(),
    )
    .await?;
    let token = auth_config().impersonated_token;
    let gcp = GcpEmulator::start_requiring_token(&token).await?;
    Seed::new(&gcp, &token).secret("db", &[], &[], &["from-idp"]).await?;
    let subject_url = format!("{}/subject", auth.origin());
    let cred = serde_json::json!({
        "type": "external_account",
        "audience": WIF_AUDIENCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": format!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{IMPERSONATED}:generateAccessToken"),
        "credential_source": {"url": subject_url, "headers": {"x-idp-key": "k"},
            "format": {"type": "json", "subject_token_field_name": "id_token"}},
    });
    let cms: Api<ConfigMap> = ns.api();
    apply(
        &cms,
        &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "wif"},
            "data": {"config.json": cred.to_string()}})
        .to_string(),
    )
    .await?;
    let spec = |endpoint: &str| {
        format!(
            "projectID: {PROJECT}\nauth:\n  workloadIdentityFederation:\n    credConfig: {{name: wif, key: config.json}}\n    externalTokenEndpoint: \"{endpoint}\"\n"
        )
    };
    let calls = Arc::new(Calls::default());
    let c = client(&ns, &spec(&subject_url), endpoints(&gcp, &auth), calls.clone()).await?;
    assert_eq!(read(&c, RemoteKey::new("db")).await?, "from-idp");
    let records = auth.records();
    let sts: Vec<_> = records.iter().filter(|r| r.endpoint == "sts").collect();
    assert_eq!(
        (sts.len(), sts[0].ok, sts[0].detail.as_str()),
        (1, true, "external subject token")
    );
    assert_eq!(auth.count_ok("subject"), 1);
    assert_eq!(auth.count_ok("iamcredentials"), 1);
    assert_eq!(
        (
            calls.count("GetSubjectToken"),
            calls.count("ExchangeToken"),
            calls.count("GenerateAccessToken")
        ),
        (1, 1, 1)
    );

    let err = client(
        &ns,
        &spec("http://elsewhere/token"),
        endpoints(&gcp, &auth),
        calls.clone(),
    )
    .await
    .err()
    .expect("a mismatching externalTokenEndpoint is refused");
    assert!(matches!(err, ProviderError::InvalidConfig { .. }), "{err}");
    assert!(
        err.to_string().contains("does not match externalTokenEndpoint"),
        "{err}"
    );
    Ok(())
}

/// No `auth` and no `projectID`: the pod's ambient credentials (google-cloud-auth's metadata-server credentials)
/// and the project from the metadata server — the operator's own identity, so a namespaced SecretStore is refused
/// (without asking the metadata server anything) unless the operator opts in; a ClusterSecretStore may.
#[tokio::test]
async fn ambient_credentials_and_project_from_the_metadata_server() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-ambient").await?;
    let auth = GoogleAuth::start(auth_config(), ns.client.clone()).await?;
    let token = auth_config().mds_token;
    let gcp = GcpEmulator::start_requiring_token(&token).await?;
    Seed::new(&gcp, &token).secret("db", &[], &[], &["ambient"]).await?;
    let calls = Arc::new(Calls::default());
    let refused = client(&ns, "{}", endpoints(&gcp, &auth), calls.clone())
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.reason(), "RefusedByPolicy");
    assert!(
        refused
            .to_string()
            .starts_with("spec.provider.gcpsm.auth: the operator pod's Application Default Credentials (no auth set) is the operator's own identity"),
        "{refused}"
    );
    assert!(
        auth.records().iter().all(|r| r.endpoint != "metadata"),
        "the metadata server was not asked"
    );
    let opted_in = syncret_providers::TenantPolicy {
        namespaced_operator_identity: true,
        ..syncret_tests::operator::loopback_allowed()
    };
    let c = client_as(
        &ns,
        "{}",
        endpoints(&gcp, &auth),
        calls.clone(),
        StoreScope::SecretStore,
        opted_in,
    )
    .await?;
    assert_eq!(read(&c, RemoteKey::new("db")).await?, "ambient");
    let css = client_as(
        &ns,
        "{}",
        endpoints(&gcp, &auth),
        calls.clone(),
        StoreScope::ClusterSecretStore,
        syncret_tests::operator::loopback_allowed(),
    )
    .await?;
    assert_eq!(read(&css, RemoteKey::new("db")).await?, "ambient");
    let meta: Vec<String> = auth
        .records()
        .into_iter()
        .filter(|r| r.endpoint == "metadata")
        .map(|r| r.detail)
        .collect();
    assert!(meta.contains(&"project/project-id".to_string()), "{meta:?}");
    assert!(
        meta.contains(&"instance/service-accounts/default/token".to_string()),
        "{meta:?}"
    );
    Ok(())
}

/// Tokens are cached in the client and renewed shortly before they expire (here: 12 s tokens, renewed after 2 s);
/// reads and validations in between make no token call.
#[tokio::test]
async fn tokens_are_cached_and_renewed_before_expiry() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-refresh").await?;
    let key = sa_key()?;
    let auth = GoogleAuth::start(
        Config {
            sa_public_key: key.public_der.clone(),
            expires_in: 12,
            ..auth_config()
        },
        ns.client.clone(),
    )
    .await?;
    let token = auth_config().oauth_token;
    let gcp = GcpEmulator::start_requiring_token(&token).await?;
    Seed::new(&gcp, &token).secret("db", &[], &[], &["v"]).await?;
    key_secret(&ns, &key.json).await?;
    let calls = Arc::new(Calls::default());
    let spec = format!(
        "projectID: {PROJECT}\nauth: {{secretRef: {{secretAccessKeySecretRef: {{name: gcp-key, key: key.json}}}}}}"
    );
    let c = client(&ns, &spec, endpoints(&gcp, &auth), calls.clone()).await?;
    for _ in 0..5 {
        assert_eq!(read(&c, RemoteKey::new("db")).await?, "v");
        c.validate().await?;
    }
    assert_eq!(auth.count_ok("oauth2"), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(read(&c, RemoteKey::new("db")).await?, "v");
    assert_eq!(read(&c, RemoteKey::new("db")).await?, "v");
    assert_eq!(auth.count_ok("oauth2"), 2, "renewed once after 2 s");
    assert_eq!(calls.count("GetAccessToken"), 2);
    assert_eq!(gcp.count("AccessSecretVersion")?, 7);
    Ok(())
}

/// A token Secret Manager rejects surfaces as an authentication error (which makes syncret rebuild the client).
#[tokio::test]
async fn a_rejected_token_is_an_authentication_error() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-rejected").await?;
    let auth = GoogleAuth::start(auth_config(), ns.client.clone()).await?;
    let gcp = GcpEmulator::start_requiring_token("some-other-token").await?;
    let c = ambient_client(
        &ns,
        &format!("projectID: {PROJECT}"),
        endpoints(&gcp, &auth),
        Arc::new(Calls::default()),
    )
    .await?;
    let err = c.get_secret(&RemoteKey::new("db")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Auth(_)), "{err:?}");
    assert!(err.invalidates_client());
    Ok(())
}

/// Versions: `latest`, numbers, LatestOrFail vs LatestOrFetch on a disabled latest version, regional secrets
/// (`location`), full resource names with a version, and NotFound.
#[tokio::test]
async fn versions_selection_policy_regional_and_not_found() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-versions").await?;
    let auth = GoogleAuth::start(auth_config(), ns.client.clone()).await?;
    let token = auth_config().mds_token;
    let gcp = GcpEmulator::start_requiring_token(&token).await?;
    let seed = Seed::new(&gcp, &token);
    seed.secret("db", &[], &[], &["one", "two", "three"]).await?;
    seed.post(
        &format!("projects/{PROJECT}/secrets/db/versions/3:disable"),
        serde_json::json!({}),
    )
    .await?;
    seed.secret_in(
        &format!("projects/{PROJECT}/locations/europe-west1"),
        "regional",
        &[],
        &[],
        &["eu"],
    )
    .await?;
    let e = endpoints(&gcp, &auth);
    let calls = Arc::new(Calls::default());
    let fail = ambient_client(&ns, &format!("projectID: {PROJECT}"), e.clone(), calls.clone()).await?;
    let err = fail.get_secret(&RemoteKey::new("db")).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::InvalidValue { message, .. } if message.contains("DISABLED")),
        "{err:?}"
    );
    assert_eq!(
        read(&fail, RemoteKey::new("db").with_version(Some("2".into()))).await?,
        "two"
    );
    assert_eq!(
        read(
            &fail,
            RemoteKey::new(format!("projects/{PROJECT}/secrets/db/versions/1"))
        )
        .await?,
        "one"
    );
    let missing = fail.get_secret(&RemoteKey::new("nope")).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
    let fetch = ambient_client(
        &ns,
        &format!("projectID: {PROJECT}\nsecretVersionSelectionPolicy: LatestOrFetch"),
        e.clone(),
        calls.clone(),
    )
    .await?;
    assert_eq!(
        read(&fetch, RemoteKey::new("db")).await?,
        "two",
        "newest enabled version"
    );
    assert_eq!(gcp.count("ListSecretVersions")?, 1);
    // An explicit version is not replaced.
    assert!(
        fetch
            .get_secret(&RemoteKey::new("db").with_version(Some("3".into())))
            .await
            .is_err()
    );
    let regional = ambient_client(&ns, &format!("projectID: {PROJECT}\nlocation: europe-west1"), e, calls).await?;
    assert_eq!(read(&regional, RemoteKey::new("regional")).await?, "eu");
    let find = FindQuery {
        name: Some(regex::Regex::new("^reg")?),
        ..Default::default()
    };
    let found = regional.get_all_secrets(&find).await?;
    assert_eq!(found.keys().collect::<Vec<_>>(), ["regional"]);
    assert!(
        regional
            .get_secret(&RemoteKey::new("db"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    Ok(())
}

/// PushSecret at the client level: create (label `managed-by: external-secrets`), no new version for an
/// unchanged value, metadata labels/annotations, property pushes into a JSON value, refusing to overwrite an
/// unmanaged secret, `secret_exists`, and delete (only managed secrets).
#[tokio::test]
async fn push_delete_and_exists_against_the_server() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gcp-push").await?;
    let auth = GoogleAuth::start(auth_config(), ns.client.clone()).await?;
    let token = auth_config().mds_token;
    let gcp = GcpEmulator::start_requiring_token(&token).await?;
    let seed = Seed::new(&gcp, &token);
    seed.secret("foreign", &[("owner", "someone")], &[], &["theirs"])
        .await?;
    let c = ambient_client(
        &ns,
        &format!("projectID: {PROJECT}"),
        endpoints(&gcp, &auth),
        Arc::new(Calls::default()),
    )
    .await?;
    let at = |key: &str, property: Option<&str>, metadata: Option<&str>| PushRef {
        remote_key: key.into(),
        property: property.map(Into::into),
        metadata: metadata.map(Into::into),
        secret_key: None,
    };
    let versions = |id: &str| {
        let seed = &seed;
        let id = id.to_string();
        async move {
            let v = seed
                .get(&format!("projects/{PROJECT}/secrets/{id}/versions"))
                .await
                .unwrap();
            v["versions"].as_array().map_or(0, Vec::len)
        }
    };

    assert!(!c.secret_exists(&at("pushed", None, None)).await?);
    c.push_secret(&at("pushed", None, None), &SecretValue::from("v1"))
        .await?;
    c.push_secret(&at("pushed", None, None), &SecretValue::from("v1"))
        .await?;
    assert_eq!(versions("pushed").await, 1, "an unchanged value adds no version");
    c.push_secret(&at("pushed", None, None), &SecretValue::from("v2"))
        .await?;
    assert_eq!(versions("pushed").await, 2);
    assert!(c.secret_exists(&at("pushed", None, None)).await?);
    assert_eq!(read(&c, RemoteKey::new("pushed")).await?, "v2");
    let meta = seed.get(&format!("projects/{PROJECT}/secrets/pushed")).await?;
    assert_eq!(meta["labels"], serde_json::json!({"managed-by": "external-secrets"}));

    let metadata = r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"labels":{"team":"a"},"annotations":{"note":"n"}}}"#;
    c.push_secret(&at("pushed", None, Some(metadata)), &SecretValue::from("v2"))
        .await?;
    let meta = seed.get(&format!("projects/{PROJECT}/secrets/pushed")).await?;
    assert_eq!(
        meta["labels"],
        serde_json::json!({"managed-by": "external-secrets", "team": "a"})
    );
    assert_eq!(meta["annotations"], serde_json::json!({"note": "n"}));
    assert_eq!(versions("pushed").await, 2);

    c.push_secret(&at("json", Some("user"), None), &SecretValue::from("admin"))
        .await?;
    c.push_secret(&at("json", Some("db.password"), None), &SecretValue::from("s3"))
        .await?;
    c.push_secret(&at("json", Some("user"), None), &SecretValue::from("admin"))
        .await?;
    assert_eq!(versions("json").await, 2);
    let v: serde_json::Value = serde_json::from_str(&read(&c, RemoteKey::new("json")).await?)?;
    assert_eq!(v, serde_json::json!({"user": "admin", "db": {"password": "s3"}}));

    let err = c
        .push_secret(&at("foreign", None, None), &SecretValue::from("mine"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not managed by external-secrets"), "{err}");
    assert_eq!(read(&c, RemoteKey::new("foreign")).await?, "theirs");
    c.delete_secret(&at("foreign", None, None)).await?;
    assert_eq!(
        read(&c, RemoteKey::new("foreign")).await?,
        "theirs",
        "unmanaged secrets are not deleted"
    );

    c.delete_secret(&at("pushed", None, None)).await?;
    assert!(
        c.get_secret(&RemoteKey::new("pushed"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(!c.secret_exists(&at("pushed", None, None)).await?);
    c.delete_secret(&at("pushed", None, None)).await?;
    Ok(())
}
