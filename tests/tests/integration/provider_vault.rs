//! The Vault / OpenBao provider against a real OpenBao dev server (`syncret_tests::servers::OpenBao`) and the real
//! test control plane: syncret end to end (SecretStore → ExternalSecret → Secret), client-level PushSecret calls,
//! the token's life (one login, renewal, re-login, revocation), and kubernetes auth verified by OpenBao through a
//! TokenReview against the test apiserver.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use syncret_crds::secretstore::SecretStoreSpec;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::{
    CallObserver, FindQuery, ProviderContext, ProviderError, PushRef, Registry, RemoteKey, SecretValue, SecretsClient,
    StoreInfo, StoreScope,
};
use syncret_tests::operator::Operator;
use syncret_tests::servers::OpenBao;
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml as apply, eventually};

// --- helpers -------------------------------------------------------------------------------------------------

/// An OpenBao dev server and a root-token HTTP client for setting it up.
struct Bao {
    srv: OpenBao,
    http: reqwest::Client,
}

impl Bao {
    async fn start() -> anyhow::Result<Bao> {
        Ok(Bao {
            srv: OpenBao::start().await?,
            http: reqwest::Client::new(),
        })
    }

    async fn start_tls() -> anyhow::Result<Bao> {
        let srv = OpenBao::start_tls().await?;
        let ca = srv.ca_cert_pem()?.context("TLS server without a CA")?;
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?)
            .build()?;
        Ok(Bao { srv, http })
    }

    /// A root-token call (`LIST` too); fails on a non-2xx answer. Returns the JSON answer (`null` for 204).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.srv.call(&self.http, method, path, body).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call("POST", path, Some(body)).await
    }

    /// Writes a KV v2 secret at `secret/data/<name>`.
    async fn kv2(&self, name: &str, data: Value) -> anyhow::Result<()> {
        self.post(&format!("secret/data/{name}"), json!({ "data": data }))
            .await
            .map(|_| ())
    }

    /// Audited requests with this operation on this path.
    fn count(&self, op: &str, path: &str) -> usize {
        self.srv.count(op, path).unwrap_or(0)
    }

    fn addr(&self) -> &str {
        self.srv.addr()
    }
}

/// Counts calls per (call, ok), for client-level tests.
#[derive(Default)]
struct Calls(Mutex<HashMap<(&'static str, bool), usize>>);

impl CallObserver for Calls {
    fn observe(&self, _provider: &'static str, call: &'static str, ok: bool, _elapsed: Duration) {
        *self.0.lock().unwrap().entry((call, ok)).or_default() += 1;
    }
}

impl Calls {
    fn get(&self, call: &'static str) -> usize {
        self.0.lock().unwrap().get(&(call, true)).copied().unwrap_or(0)
    }
}

/// `externalsecret_provider_api_calls_count{provider=…,call=…,status="success"}` from the operator's metrics.
fn metric_calls(op: &Operator, provider: &str, call: &str) -> u64 {
    let text = op.ctx().metrics.render().unwrap();
    text.lines()
        .filter(|l| l.starts_with("externalsecret_provider_api_calls_count{"))
        .filter(|l| {
            l.contains(&format!("provider=\"{provider}\""))
                && l.contains(&format!("call=\"{call}\""))
                && l.contains("status=\"success\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn secret(ns: &TestNamespace, name: &str, data: &[(&str, &str)]) -> anyhow::Result<()> {
    let secrets: Api<Secret> = ns.api();
    let string_data: BTreeMap<String, String> = data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(string_data),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &s).await?;
    Ok(())
}

async fn wait_secret(ns: &TestNamespace, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let secrets: Api<Secret> = ns.api();
    let s = eventually(Duration::from_secs(60), &format!("Secret {name}"), || async {
        secrets.get_opt(name).await.ok().flatten()
    })
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

/// An ExternalSecret's Ready condition with this status: (reason, message).
async fn es_condition(ns: &TestNamespace, name: &str, status: &str) -> anyhow::Result<(String, String)> {
    es_condition_where(ns, name, status, |_| true).await
}

/// [`es_condition`] with a message that passes `pred` (to look past a transient one).
async fn es_condition_where(
    ns: &TestNamespace,
    name: &str,
    status: &str,
    pred: impl Fn(&str) -> bool,
) -> anyhow::Result<(String, String)> {
    let ess: Api<ExternalSecret> = ns.api();
    eventually(
        Duration::from_secs(60),
        &format!("ExternalSecret {name} Ready={status}"),
        || async {
            let es = ess.get(name).await.ok()?;
            let c = es
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == syncret_crds::ExternalSecretConditionType::Ready && c.status == status)?;
            let msg = c.message.unwrap_or_default();
            pred(&msg).then(|| (c.reason.unwrap_or_default(), msg))
        },
    )
    .await
}

fn store_yaml(class: &str, name: &str, provider: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: {name}}}\nspec:\n  controller: {class}\n  provider:\n{provider}"
    )
}

/// A client built by the registry exactly as the operator builds one, for client-level tests.
async fn client_for(
    ns: &TestNamespace,
    provider: Value,
    observer: Arc<Calls>,
) -> Result<Arc<dyn SecretsClient>, ProviderError> {
    let spec: SecretStoreSpec = serde_json::from_value(json!({ "provider": provider })).expect("store spec");
    let info = StoreInfo {
        scope: StoreScope::SecretStore,
        name: "client-test".into(),
        namespace: Some(ns.name.clone()),
        uid: "uid".into(),
        generation: 1,
        spec: Arc::new(spec),
    };
    let registry = Registry::with_default_providers();
    let provider = registry.provider_for(&info.spec)?;
    let ctx = ProviderContext {
        client: ns.client.clone(),
        observer,
        referent_namespace: None,
        policy: Arc::new(syncret_tests::operator::loopback_allowed()),
    };
    provider.new_client(&info, &ctx).await
}

fn text(v: &syncret_providers::RemoteValue) -> String {
    v.select("k", None)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap()
}

// --- end to end ----------------------------------------------------------------------------------------------

/// KV v2 through syncret: property (exact key, gjson path), whole secret, version, metadataPolicy Fetch,
/// dataFrom.extract and dataFrom.find (name regexp under a path, recursive; tags), token auth.
#[tokio::test]
async fn kv2_end_to_end_with_token_auth() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-kv2").await?;
    let bao = Bao::start().await?;
    bao.kv2("app", json!({"user": "admin", "password": "v1"})).await?;
    bao.kv2(
        "app",
        json!({"user": "admin", "password": "p4ss", "tls.crt": "CERT", "nested": {"a": {"b": "deep"}}, "html": "<b>&"}),
    )
    .await?;
    bao.post(
        "secret/metadata/app",
        json!({"custom_metadata": {"team": "blue", "env": "prod"}}),
    )
    .await?;
    bao.kv2("team/db", json!({"host": "db.internal"})).await?;
    bao.kv2("team/sub/cache", json!({"host": "cache.internal"})).await?;
    bao.kv2("team/other", json!({"host": "x"})).await?;
    bao.post("secret/metadata/team/db", json!({"custom_metadata": {"tier": "data"}}))
        .await?;
    bao.post(
        "secret/metadata/team/sub/cache",
        json!({"custom_metadata": {"tier": "data"}}),
    )
    .await?;
    secret(&ns, "vault-token", &[("token", bao.srv.root_token())]).await?;
    bao.srv.clear_requests()?;
    let op = Operator::start(&ns).await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "vault",
            &format!(
                "    vault:\n      server: {}\n      path: secret\n      version: v2\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    let (status, reason, msg) = store_ready(&ns, "vault").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"), "{msg}");
    apply(
        &ns.api::<ExternalSecret>(),
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: vault, kind: SecretStore}
  target: {name: app}
  data:
  - {secretKey: password, remoteRef: {key: app, property: password}}
  - {secretKey: deep, remoteRef: {key: secret/app, property: nested.a.b}}
  - {secretKey: cert, remoteRef: {key: secret/data/app, property: tls.crt}}
  - {secretKey: old, remoteRef: {key: app, property: password, version: "1"}}
  - {secretKey: whole, remoteRef: {key: team/db}}
  - {secretKey: html, remoteRef: {key: app, property: html}}
  - {secretKey: team, remoteRef: {key: app, property: team, metadataPolicy: Fetch}}
  - {secretKey: meta, remoteRef: {key: team/db, metadataPolicy: Fetch}}
"#,
    )
    .await?;
    let data = wait_secret(&ns, "app").await?;
    assert_eq!(data["password"], "p4ss");
    assert_eq!(data["deep"], "deep");
    assert_eq!(data["cert"], "CERT");
    assert_eq!(data["old"], "v1");
    assert_eq!(data["whole"], r#"{"host":"db.internal"}"#);
    assert_eq!(data["html"], "<b>&");
    assert_eq!(data["team"], "blue");
    let meta: Value = serde_json::from_str(&data["meta"])?;
    assert_eq!(meta["tier"], "data");
    assert_eq!(meta["current_version"], "1");
    assert!(meta["created_time"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(data.len(), 8);

    apply(
        &ns.api::<ExternalSecret>(),
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: bulk}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: vault, kind: SecretStore}
  target: {name: bulk}
  dataFrom:
  - extract: {key: app, property: nested}
  - find:
      path: team
      name: {regexp: "(db|cache)$"}
    rewrite: [{regexp: {source: "/", target: "_"}}]
  - find:
      tags: {tier: data}
    rewrite: [{regexp: {source: "^(.*)/([^/]*)$", target: "tagged_$2"}}]
"#,
    )
    .await?;
    let data = wait_secret(&ns, "bulk").await?;
    let want: BTreeMap<String, String> = [
        ("a", r#"{"b":"deep"}"#),
        ("team_db", r#"{"host":"db.internal"}"#),
        ("team_sub_cache", r#"{"host":"cache.internal"}"#),
        ("tagged_db", r#"{"host":"db.internal"}"#),
        ("tagged_cache", r#"{"host":"cache.internal"}"#),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(data, want);
    // A token from tokenSecretRef: no login at all.
    assert_eq!(metric_calls(&op, "HashiCorp/Vault", "Login"), 0);
    let logins = bao
        .srv
        .requests()?
        .into_iter()
        .filter(|r| r.path.ends_with("/login"))
        .count();
    assert_eq!(logins, 0);
    op.stop().await;
    Ok(())
}

/// KV v1 mount, key including the mount (no `path`), a `ttl` lease surfaced through `expires_in`.
#[tokio::test]
async fn kv1_reads_and_lease_duration() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-kv1").await?;
    let bao = Bao::start().await?;
    bao.post("sys/mounts/kv1", json!({"type": "kv", "options": {"version": "1"}}))
        .await?;
    bao.post("kv1/app", json!({"user": "u1", "password": "p1", "ttl": "30m"}))
        .await?;
    bao.post("kv1/plain", json!({"k": "v"})).await?;
    secret(&ns, "vault-token", &[("token", bao.srv.root_token())]).await?;
    let op = Operator::start(&ns).await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "v1",
            &format!(
                "    vault:\n      server: {}\n      version: v1\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    apply(
        &ns.api::<ExternalSecret>(),
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: v1}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: v1, kind: SecretStore}
  target: {name: v1}
  data:
  - {secretKey: password, remoteRef: {key: kv1/app, property: password}}
  dataFrom:
  - extract: {key: kv1/plain}
"#,
    )
    .await?;
    let data = wait_secret(&ns, "v1").await?;
    assert_eq!(data.get("password").map(String::as_str), Some("p1"));
    assert_eq!(data.get("k").map(String::as_str), Some("v"));
    op.stop().await;

    // Client level: the lease that came with the read.
    let calls = Arc::new(Calls::default());
    let c = client_for(
        &ns,
        json!({"vault": {"server": bao.addr(), "path": "kv1", "version": "v1",
                         "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}),
        calls.clone(),
    )
    .await?;
    let key = RemoteKey::new("app");
    let v = c.get_secret(&key).await?;
    assert_eq!(serde_json::from_str::<Value>(&text(&v))?["ttl"], "30m");
    let left = c.expires_in(&key).context("a lease")?;
    assert!(
        left > Duration::from_secs(1790) && left <= Duration::from_secs(1800),
        "{left:?}"
    );
    c.get_secret(&RemoteKey::new("plain")).await?;
    assert_eq!(c.expires_in(&RemoteKey::new("plain")), None);
    assert!(matches!(
        c.get_secret(&RemoteKey::new("missing")).await,
        Err(ProviderError::NotFound { .. })
    ));
    assert!(matches!(
        c.get_secret(&RemoteKey {
            fetch_metadata: true,
            ..RemoteKey::new("app")
        })
        .await,
        Err(ProviderError::Unsupported(_))
    ));
    let found = c
        .get_all_secrets(&FindQuery {
            name: Some(regex::Regex::new("^a")?),
            ..Default::default()
        })
        .await?;
    assert_eq!(found.keys().collect::<Vec<_>>(), vec!["app"]);
    Ok(())
}

/// 200 ExternalSecrets on one AppRole store: exactly one login, seen both by the operator's metrics and by
/// OpenBao's audit log; the one client is shared by the store validation and every ExternalSecret.
#[tokio::test]
async fn two_hundred_external_secrets_one_login() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-many").await?;
    let bao = Bao::start().await?;
    bao.post(
        "sys/policies/acl/read",
        json!({"policy": "path \"secret/*\" { capabilities = [\"read\", \"list\"] }"}),
    )
    .await?;
    bao.post("sys/auth/approle", json!({"type": "approle"})).await?;
    bao.post(
        "auth/approle/role/syncret",
        json!({"token_policies": ["read"], "token_ttl": "1h"}),
    )
    .await?;
    let role_id = bao.call("GET", "auth/approle/role/syncret/role-id", None).await?["data"]["role_id"]
        .as_str()
        .context("role_id")?
        .to_string();
    let secret_id = bao.post("auth/approle/role/syncret/secret-id", json!({})).await?["data"]["secret_id"]
        .as_str()
        .context("secret_id")?
        .to_string();
    for i in 0..10 {
        bao.kv2(&format!("s{i}"), json!({"value": format!("v{i}")})).await?;
    }
    secret(&ns, "approle", &[("secret-id", &secret_id)]).await?;
    bao.srv.clear_requests()?;
    let op = Operator::start(&ns).await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "vault",
            &format!(
                "    vault:\n      server: {}\n      path: secret\n      auth:\n        appRole: {{roleId: {role_id}, secretRef: {{name: approle, key: secret-id}}}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    let ess: Api<ExternalSecret> = ns.api();
    for i in 0..200 {
        apply(
            &ess,
            &format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es-{i}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: vault, kind: SecretStore}}\n  target: {{name: t-{i}}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: s{}, property: value}}}}\n",
                i % 10
            ),
        )
        .await?;
    }
    let secrets: Api<Secret> = ns.api();
    eventually(Duration::from_secs(180), "200 target Secrets", || async {
        let list = secrets.list(&Default::default()).await.ok()?;
        let n = list
            .items
            .iter()
            .filter(|s| s.metadata.name.as_deref().is_some_and(|n| n.starts_with("t-")))
            .count();
        (n == 200).then_some(())
    })
    .await?;
    let t7 = wait_secret(&ns, "t-17").await?;
    assert_eq!(t7["v"], "v7");
    let (status, _, msg) = store_ready(&ns, "vault").await?;
    assert_eq!(status, "True", "{msg}");
    assert_eq!(metric_calls(&op, "HashiCorp/Vault", "Login"), 1);
    assert_eq!(bao.count("update", "auth/approle/login"), 1, "logins seen by OpenBao");
    let text = op.ctx().metrics.render().unwrap();
    assert!(
        text.lines()
            .any(|l| l == "syncret_provider_client_builds_total{provider=\"vault\"} 1"),
        "one client build:\n{}",
        text.lines()
            .filter(|l| l.contains("client_builds"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let reads = bao.count("read", "secret/data/s7");
    assert!((1..=20).contains(&reads), "reads of s7: {reads}");
    // Operator shutdown closes the client, which revokes its token.
    op.stop().await;
    eventually(Duration::from_secs(10), "token revoked on shutdown", || async {
        (bao.count("update", "auth/token/revoke-self") == 1).then_some(())
    })
    .await?;
    Ok(())
}

/// Kubernetes auth, verified by OpenBao with a real TokenReview against the test apiserver: the reviewer is a
/// ServiceAccount bound to `system:auth-delegator`; syncret logs in with a TokenRequest token of another one.
#[tokio::test]
async fn kubernetes_auth_through_tokenreview() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-k8s").await?;
    let bao = Bao::start().await?;
    let sas: Api<ServiceAccount> = ns.api();
    for name in ["vault-reviewer", "app"] {
        let sa = ServiceAccount {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        sas.create(&PostParams::default(), &sa).await?;
    }
    let crbs: Api<ClusterRoleBinding> = Api::all(ns.client.clone());
    let crb: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{}-vault-reviewer", ns.name)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
        "subjects": [{"kind": "ServiceAccount", "name": "vault-reviewer", "namespace": ns.name}],
    }))?;
    crbs.create(&PostParams::default(), &crb).await?;
    let reviewer_jwt = sas
        .create_token_request(
            "vault-reviewer",
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}}))?,
        )
        .await?
        .status
        .and_then(|s| s.token)
        .context("token")?;
    let kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig())?;
    let cluster = kubeconfig.clusters[0].cluster.as_ref().context("cluster")?;
    let host = cluster.server.clone().context("server")?;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(cluster.certificate_authority_data.as_deref().context("CA data")?)?;
    bao.post("sys/auth/kubernetes", json!({"type": "kubernetes"})).await?;
    bao.post(
        "auth/kubernetes/config",
        json!({
            "kubernetes_host": host,
            "kubernetes_ca_cert": String::from_utf8(ca_pem)?,
            "token_reviewer_jwt": reviewer_jwt,
            "disable_local_ca_jwt": true,
        }),
    )
    .await?;
    bao.post(
        "sys/policies/acl/read",
        json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"}),
    )
    .await?;
    bao.post(
        "auth/kubernetes/role/syncret",
        json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": [ns.name],
               "token_policies": ["read"], "token_ttl": "1h"}),
    )
    .await?;
    bao.kv2("app", json!({"password": "from-k8s-auth"})).await?;
    bao.srv.clear_requests()?;
    let op = Operator::start(&ns).await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "vault",
            &format!(
                "    vault:\n      server: {}\n      path: secret\n      auth:\n        kubernetes:\n          mountPath: kubernetes\n          role: syncret\n          serviceAccountRef: {{name: app}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    let (status, reason, msg) = store_ready(&ns, "vault").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"), "{msg}");
    apply(
        &ns.api::<ExternalSecret>(),
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: vault, kind: SecretStore}
  target: {name: app}
  data:
  - {secretKey: password, remoteRef: {key: app, property: password}}
"#,
    )
    .await?;
    let data = wait_secret(&ns, "app").await?;
    assert_eq!(data["password"], "from-k8s-auth");
    assert_eq!(bao.count("update", "auth/kubernetes/login"), 1);
    assert_eq!(bao.count("update", "auth/token/revoke-self"), 0);

    // A spec change (new generation): a new client logs in once, the old one's token is revoked.
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "vault",
            &format!(
                "    vault:\n      server: {}\n      path: secret\n      headers: {{X-Team: blue}}\n      auth:\n        kubernetes:\n          mountPath: kubernetes\n          role: syncret\n          serviceAccountRef: {{name: app}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "a login for the new generation and the old token revoked",
        || async {
            (bao.count("update", "auth/kubernetes/login") == 2 && bao.count("update", "auth/token/revoke-self") == 1)
                .then_some(())
        },
    )
    .await?;
    // Store deleted: its token is revoked.
    ns.api::<SecretStore>().delete("vault", &Default::default()).await?;
    eventually(
        Duration::from_secs(30),
        "the token revoked when the store is deleted",
        || async { (bao.count("update", "auth/token/revoke-self") == 2).then_some(()) },
    )
    .await?;
    assert_eq!(bao.count("update", "auth/kubernetes/login"), 2);

    // A ServiceAccount the role does not bind: OpenBao's TokenReview accepts the token, the role refuses it.
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "stranger"}}))?,
    )
    .await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "stranger",
            &format!(
                "    vault:\n      server: {}\n      path: secret\n      auth:\n        kubernetes:\n          role: syncret\n          serviceAccountRef: {{name: stranger}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    let (status, _, msg) = store_ready(&ns, "stranger").await?;
    assert_eq!(status, "False");
    assert!(msg.contains("kubernetes login at auth/kubernetes refused"), "{msg}");
    op.stop().await;
    crbs.delete(&format!("{}-vault-reviewer", ns.name), &Default::default())
        .await?;
    Ok(())
}

/// The `openBao` key with userPass auth, and bad credentials: the store is not Ready with a message naming the
/// problem, and the ExternalSecret's condition says so.
#[tokio::test]
async fn openbao_userpass_and_bad_credentials() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-up").await?;
    let bao = Bao::start().await?;
    bao.post(
        "sys/policies/acl/read",
        json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"}),
    )
    .await?;
    bao.post(
        "sys/policies/acl/app-only",
        json!({"policy": "path \"secret/data/app\" { capabilities = [\"read\"] }"}),
    )
    .await?;
    bao.post("sys/auth/userpass", json!({"type": "userpass"})).await?;
    bao.post(
        "auth/userpass/users/syncret",
        json!({"password": "pw-1", "token_policies": ["app-only"]}),
    )
    .await?;
    bao.kv2("app", json!({"user": "bao-user"})).await?;
    bao.kv2("private", json!({"user": "nobody"})).await?;
    secret(&ns, "up", &[("password", "pw-1")]).await?;
    secret(&ns, "bad", &[("password", "wrong"), ("token", "s.not-a-token")]).await?;
    let op = Operator::start(&ns).await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "bao",
            &format!(
                "    openBao:\n      server: {}\n      path: secret\n      auth:\n        userPass: {{username: syncret, secretRef: {{name: up, key: password}}}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "badpass",
            &format!(
                "    openBao:\n      server: {}\n      path: secret\n      auth:\n        userPass: {{username: syncret, secretRef: {{name: bad, key: password}}}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "badtoken",
            &format!(
                "    vault:\n      server: {}\n      path: secret\n      auth:\n        tokenSecretRef: {{name: bad, key: token}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    for (store, target, key) in [
        ("bao", "good", "app"),
        ("bao", "denied", "private"),
        ("badpass", "bad1", "app"),
        ("badtoken", "bad2", "app"),
    ] {
        apply(
            &ns.api::<ExternalSecret>(),
            &format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {target}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: {store}, kind: SecretStore}}\n  target: {{name: {target}}}\n  data:\n  - {{secretKey: user, remoteRef: {{key: {key}, property: user}}}}\n"
            ),
        )
        .await?;
    }
    let data = wait_secret(&ns, "good").await?;
    assert_eq!(data["user"], "bao-user");
    assert_eq!(metric_calls(&op, "OpenBao", "Login"), 1);

    let (status, _, msg) = store_ready(&ns, "badpass").await?;
    assert_eq!(status, "False");
    assert!(msg.contains("userPass login at auth/userpass refused"), "{msg}");
    assert!(!msg.contains("wrong"), "no secret value in the message: {msg}");
    // The ExternalSecrets of a store that is not Ready say so; the store's condition has the detail.
    let (_, msg) = es_condition(&ns, "bad1", "False").await?;
    assert!(msg.contains("\"badpass\" is not ready"), "{msg}");
    // A read the token's policy does not allow: the ExternalSecret names the key and Vault's answer.
    // (Past the transient "not ready" of store bao if this ExternalSecret was read before its store was validated.)
    let (_, msg) = es_condition_where(&ns, "denied", "False", |m| !m.contains("is not ready")).await?;
    assert!(msg.contains("private") && msg.contains("permission denied"), "{msg}");
    assert!(msg.contains("policies do not allow"), "{msg}");
    // ... and costs no new login: the client (and its token) is kept.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(metric_calls(&op, "OpenBao", "Login"), 1);

    let (status, _, msg) = store_ready(&ns, "badtoken").await?;
    assert_eq!(status, "False");
    assert!(msg.contains("token does not work"), "{msg}");
    assert!(!msg.contains("s.not-a-token"), "{msg}");
    let (_, msg) = es_condition(&ns, "bad2", "False").await?;
    assert!(msg.contains("\"badtoken\" is not ready"), "{msg}");
    op.stop().await;
    Ok(())
}

// --- client level --------------------------------------------------------------------------------------------

/// PushSecret calls on KV v2: create (marked managed, check-and-set 0), property merge, no-op rewrite, refusal
/// to touch a key syncret did not create, exists, delete of a property and of the whole key.
#[tokio::test]
async fn push_delete_exists_kv2() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-push").await?;
    let bao = Bao::start().await?;
    secret(&ns, "vault-token", &[("token", bao.srv.root_token())]).await?;
    bao.kv2("foreign", json!({"a": "1"})).await?;
    let calls = Arc::new(Calls::default());
    let c = client_for(
        &ns,
        json!({"vault": {"server": bao.addr(), "path": "secret", "checkAndSet": {"required": true},
                         "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}),
        calls.clone(),
    )
    .await?;
    let at = |key: &str, p: Option<&str>| PushRef {
        remote_key: key.into(),
        property: p.map(Into::into),
        metadata: None,
        secret_key: None,
    };
    assert!(!c.secret_exists(&at("pushed", None)).await?);
    c.push_secret(&at("pushed", Some("user")), &SecretValue::from("u"))
        .await?;
    c.push_secret(&at("pushed", Some("pass")), &SecretValue::from("p"))
        .await?;
    let got = bao.call("GET", "secret/data/pushed", None).await?;
    assert_eq!(got["data"]["data"], json!({"user": "u", "pass": "p"}));
    assert_eq!(got["data"]["metadata"]["version"], 2);
    assert_eq!(
        got["data"]["metadata"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );
    // The same value again writes nothing.
    let writes = calls.get("WriteSecretData");
    c.push_secret(&at("pushed", Some("pass")), &SecretValue::from("p"))
        .await?;
    assert_eq!(calls.get("WriteSecretData"), writes);
    assert!(c.secret_exists(&at("pushed", Some("user"))).await?);
    assert!(!c.secret_exists(&at("pushed", Some("nope"))).await?);
    // A whole-secret push replaces the data.
    c.push_secret(&at("pushed", None), &SecretValue::from(r#"{"only":"this"}"#))
        .await?;
    let got = bao.call("GET", "secret/data/pushed", None).await?;
    assert_eq!(got["data"]["data"], json!({"only": "this"}));

    // Never overwrite what syncret did not create.
    let err = c
        .push_secret(&at("foreign", Some("a")), &SecretValue::from("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidValue { .. }), "{err}");
    assert!(!err.invalidates_client(), "a refusal keeps the client (and its token)");
    assert_eq!(
        bao.call("GET", "secret/data/foreign", None).await?["data"]["data"]["a"],
        "1"
    );
    c.delete_secret(&at("foreign", None)).await?;
    assert_eq!(
        bao.call("GET", "secret/data/foreign", None).await?["data"]["data"]["a"],
        "1"
    );
    // Every write carried a check-and-set version: 0 to create, then the version read before writing, so a key
    // created or changed by someone else in between is refused by OpenBao itself.
    let audit = std::fs::read_to_string(bao.srv.dir()?.join("audit.log"))?;
    let cas: Vec<u64> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "request" && v["request"]["path"] == "secret/data/pushed")
        .filter(|v| v["request"]["operation"] == "update")
        .filter_map(|v| v["request"]["data"]["options"]["cas"].as_u64())
        .collect();
    assert_eq!(cas, vec![0, 1, 2]);
    // A soft-deleted key someone else made (metadata, no readable data) is not taken over either.
    bao.kv2("ghost", json!({"a": "1"})).await?;
    bao.call("DELETE", "secret/data/ghost", None).await?;
    let err = c
        .push_secret(&at("ghost", Some("a")), &SecretValue::from("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidValue { .. }), "{err}");

    // Deleting a property keeps the rest; deleting the last one removes the key with its metadata.
    c.push_secret(&at("two", Some("a")), &SecretValue::from("1")).await?;
    c.push_secret(&at("two", Some("b")), &SecretValue::from("2")).await?;
    c.delete_secret(&at("two", Some("a"))).await?;
    assert_eq!(
        bao.call("GET", "secret/data/two", None).await?["data"]["data"],
        json!({"b": "2"})
    );
    c.delete_secret(&at("two", Some("b"))).await?;
    assert!(
        bao.call("GET", "secret/metadata/two", None).await.is_err(),
        "metadata removed"
    );
    assert!(!c.secret_exists(&at("two", None)).await?);
    c.delete_secret(&at("two", None)).await?;
    Ok(())
}

/// PushSecret on KV v1 (the marker is a `custom_metadata` data key, as ESO).
#[tokio::test]
async fn push_kv1() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-push1").await?;
    let bao = Bao::start().await?;
    bao.post("sys/mounts/kv1", json!({"type": "kv", "options": {"version": "1"}}))
        .await?;
    bao.post("kv1/foreign", json!({"a": "1"})).await?;
    secret(&ns, "vault-token", &[("token", bao.srv.root_token())]).await?;
    let c = client_for(
        &ns,
        json!({"vault": {"server": bao.addr(), "path": "kv1", "version": "v1",
                         "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}),
        Arc::new(Calls::default()),
    )
    .await?;
    let at = |key: &str, p: Option<&str>| PushRef {
        remote_key: key.into(),
        property: p.map(Into::into),
        metadata: None,
        secret_key: None,
    };
    c.push_secret(&at("p", Some("x")), &SecretValue::from("1")).await?;
    let got = bao.call("GET", "kv1/p", None).await?;
    assert_eq!(
        got["data"],
        json!({"x": "1", "custom_metadata": {"managed-by": "external-secrets"}})
    );
    assert!(
        c.push_secret(&at("foreign", Some("a")), &SecretValue::from("2"))
            .await
            .is_err()
    );
    c.delete_secret(&at("p", Some("x"))).await?;
    assert!(
        bao.call("GET", "kv1/p", None).await.is_err(),
        "deleted with its last property"
    );
    Ok(())
}

/// The token's life: renewed before its TTL ends, replaced by a new login when its max TTL is reached, revoked
/// on close; one login for many concurrent reads.
#[tokio::test]
async fn token_renewal_relogin_and_revocation() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-ttl").await?;
    let bao = Bao::start().await?;
    bao.post(
        "sys/policies/acl/read",
        json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"}),
    )
    .await?;
    bao.post("sys/auth/approle", json!({"type": "approle"})).await?;
    bao.post(
        "auth/approle/role/short",
        json!({"token_policies": ["read"], "token_ttl": "6s", "token_max_ttl": "10s"}),
    )
    .await?;
    let role_id = bao.call("GET", "auth/approle/role/short/role-id", None).await?["data"]["role_id"]
        .as_str()
        .context("role_id")?
        .to_string();
    let secret_id = bao.post("auth/approle/role/short/secret-id", json!({})).await?["data"]["secret_id"]
        .as_str()
        .context("secret_id")?
        .to_string();
    secret(&ns, "approle", &[("role-id", &role_id), ("secret-id", &secret_id)]).await?;
    bao.kv2("app", json!({"v": "1"})).await?;
    let calls = Arc::new(Calls::default());
    let c = client_for(
        &ns,
        json!({"vault": {"server": bao.addr(), "path": "secret",
                         "auth": {"appRole": {"roleRef": {"name": "approle", "key": "role-id"},
                                              "secretRef": {"name": "approle", "key": "secret-id"}}}}}),
        calls.clone(),
    )
    .await?;
    let key = RemoteKey::new("app");
    let reads: Vec<_> = (0..50).map(|_| c.get_secret(&key)).collect();
    for r in futures::future::join_all(reads).await {
        r?;
    }
    assert_eq!(calls.get("Login"), 1);
    assert_eq!(calls.get("RenewSelf"), 0);
    // Past two thirds of the 6 s TTL: renewed (to at most the 10 s max TTL).
    tokio::time::sleep(Duration::from_millis(4500)).await;
    c.get_secret(&key).await?;
    assert_eq!((calls.get("Login"), calls.get("RenewSelf")), (1, 1));
    // The renewal got what was left of the max TTL (about 5.5 s, more than a third of 6 s); near its end the
    // token is renewed again, and once a renewal grants less than that margin a new login replaces it.
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.get_secret(&key).await?;
    }
    assert_eq!(calls.get("Login"), 2, "one new login after the max TTL");
    assert_eq!(bao.count("update", "auth/approle/login"), 2);
    assert!(c.validate().await.is_ok());
    c.close().await;
    assert_eq!(calls.get("RevokeSelf"), 2, "the replaced token and the last one");
    assert!(
        c.get_secret(&key).await.is_err(),
        "a closed client does not log in again"
    );
    assert_eq!(bao.count("update", "auth/approle/login"), 2);
    Ok(())
}

/// JWT auth with a ServiceAccount token (`kubernetesServiceAccountToken`, audience `vault`) that OpenBao checks
/// against the test apiserver's JWKS (`/openid/v1/jwks`, readable anonymously through a binding this test makes),
/// and with a JWT read from a Secret.
#[tokio::test]
async fn jwt_auth_with_service_account_tokens() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-jwt").await?;
    let bao = Bao::start().await?;
    let sas: Api<ServiceAccount> = ns.api();
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "app"}}))?,
    )
    .await?;
    let crbs: Api<ClusterRoleBinding> = Api::all(ns.client.clone());
    let binding = format!("{}-oidc-discovery", ns.name);
    crbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": binding},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "system:service-account-issuer-discovery"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}],
        }))?,
    )
    .await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig())?;
    let cluster = kubeconfig.clusters[0].cluster.as_ref().context("cluster")?;
    let host = cluster.server.clone().context("server")?;
    let ca_pem = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(cluster.certificate_authority_data.as_deref().context("CA data")?)?,
    )?;
    bao.post("sys/auth/jwt", json!({"type": "jwt"})).await?;
    // The binding may take a moment to reach the authorizer's cache.
    let mut configured = Err(anyhow::anyhow!("not tried"));
    for _ in 0..50 {
        configured = bao
            .post(
                "auth/jwt/config",
                json!({"jwks_url": format!("{host}/openid/v1/jwks"), "jwks_ca_pem": ca_pem,
                       "bound_issuer": "https://kubernetes.default.svc.cluster.local"}),
            )
            .await;
        if configured.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    configured?;
    bao.post(
        "sys/policies/acl/read",
        json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"}),
    )
    .await?;
    bao.post(
        "auth/jwt/role/syncret",
        json!({"role_type": "jwt", "bound_audiences": ["vault"], "user_claim": "sub",
               "bound_subject": format!("system:serviceaccount:{}:app", ns.name), "token_policies": ["read"]}),
    )
    .await?;
    bao.kv2("app", json!({"password": "from-jwt"})).await?;
    bao.srv.clear_requests()?;
    let op = Operator::start(&ns).await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "vault",
            &format!(
                "    vault:\n      server: {}\n      path: secret\n      auth:\n        jwt:\n          role: syncret\n          kubernetesServiceAccountToken:\n            serviceAccountRef: {{name: app}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    let (status, reason, msg) = store_ready(&ns, "vault").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"), "{msg}");
    apply(
        &ns.api::<ExternalSecret>(),
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: vault, kind: SecretStore}
  target: {name: app}
  data:
  - {secretKey: password, remoteRef: {key: app, property: password}}
"#,
    )
    .await?;
    assert_eq!(wait_secret(&ns, "app").await?["password"], "from-jwt");
    assert_eq!(bao.count("update", "auth/jwt/login"), 1);
    op.stop().await;

    // A JWT from a Secret: one with the wrong audience is refused, one with `vault` works.
    for (aud, ok) in [("not-vault", false), ("vault", true)] {
        let jwt = sas
            .create_token_request(
                "app",
                &PostParams::default(),
                &serde_json::from_value(json!({"spec": {"audiences": [aud], "expirationSeconds": 600}}))?,
            )
            .await?
            .status
            .and_then(|s| s.token)
            .context("token")?;
        let name = format!("jwt-{aud}");
        secret(&ns, &name, &[("jwt", &jwt)]).await?;
        let got = client_for(
            &ns,
            json!({"vault": {"server": bao.addr(), "path": "secret",
                             "auth": {"jwt": {"role": "syncret", "secretRef": {"name": name, "key": "jwt"}}}}}),
            Arc::new(Calls::default()),
        )
        .await;
        match (got, ok) {
            (Ok(c), true) => assert_eq!(
                text(&c.get_secret(&RemoteKey::new("app")).await?),
                r#"{"password":"from-jwt"}"#
            ),
            (Err(ProviderError::Auth(m)), false) => assert!(m.contains("jwt login at auth/jwt refused"), "{m}"),
            (Err(e), _) => bail!("audience {aud}: {e}"),
            (Ok(_), false) => bail!("audience {aud} was accepted"),
        }
    }
    crbs.delete(&binding, &Default::default()).await?;
    Ok(())
}

/// Runs openssl; fails with its stderr.
fn openssl(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        bail!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// HTTPS: the server CA from `caBundle` or from `caProvider` (a ConfigMap), the platform roots refusing the
/// test CA, and the `cert` auth method with a client certificate from a test CA of our own.
#[tokio::test]
async fn tls_ca_bundle_ca_provider_and_cert_auth() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-tls").await?;
    let bao = Bao::start_tls().await?;
    let server_ca = bao.srv.ca_cert_pem()?.context("CA")?;
    // A client CA and a client certificate it signed.
    let dir = bao.srv.dir()?.join("client-pki");
    std::fs::create_dir_all(&dir)?;
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=syncret-client-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    )?;
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=syncret",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ],
    )?;
    std::fs::write(dir.join("ext"), "extendedKeyUsage=clientAuth\n")?;
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext",
            "-out",
            "client.crt",
        ],
    )?;
    let read = |f: &str| std::fs::read_to_string(dir.join(f));
    let (client_ca, client_crt, client_key) = (read("ca.crt")?, read("client.crt")?, read("client.key")?);
    bao.post(
        "sys/policies/acl/read",
        json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"}),
    )
    .await?;
    bao.post("sys/auth/cert", json!({"type": "cert"})).await?;
    bao.post(
        "auth/cert/certs/syncret",
        json!({"certificate": client_ca, "token_policies": ["read"], "allowed_common_names": ["syncret"]}),
    )
    .await?;
    bao.kv2("app", json!({"password": "over-tls"})).await?;
    secret(&ns, "client", &[("tls.crt", &client_crt), ("tls.key", &client_key)]).await?;
    secret(&ns, "vault-token", &[("token", bao.srv.root_token())]).await?;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = ns.api();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "vault-ca"}, "data": {"ca.crt": server_ca}}))?,
    )
    .await?;
    bao.srv.clear_requests()?;
    let op = Operator::start(&ns).await?;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&server_ca);
    let stores = [
        (
            "cert",
            format!(
                "    vault:\n      server: {}\n      path: secret\n      caBundle: {ca_b64}\n      auth:\n        cert:\n          vaultRole: syncret\n          clientCert: {{name: client, key: tls.crt}}\n          secretRef: {{name: client, key: tls.key}}\n",
                bao.addr()
            ),
        ),
        (
            "caprovider",
            format!(
                "    vault:\n      server: {}\n      path: secret\n      caProvider: {{type: ConfigMap, name: vault-ca, key: ca.crt}}\n      tls: {{certSecretRef: {{name: client}}, keySecretRef: {{name: client}}}}\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n",
                bao.addr()
            ),
        ),
        (
            "noca",
            format!(
                "    vault:\n      server: {}\n      path: secret\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n",
                bao.addr()
            ),
        ),
    ];
    for (name, provider) in &stores {
        apply(&ns.api::<SecretStore>(), &store_yaml(&op.class, name, provider)).await?;
    }
    for (name, _) in &stores[..2] {
        let (status, _, msg) = store_ready(&ns, name).await?;
        assert_eq!(status, "True", "{name}: {msg}");
        apply(
            &ns.api::<ExternalSecret>(),
            &format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: {name}, kind: SecretStore}}\n  target: {{name: {name}}}\n  data:\n  - {{secretKey: password, remoteRef: {{key: app, property: password}}}}\n"
            ),
        )
        .await?;
        assert_eq!(wait_secret(&ns, name).await?["password"], "over-tls", "{name}");
    }
    assert_eq!(bao.count("update", "auth/cert/login"), 1);
    let (status, _, msg) = store_ready(&ns, "noca").await?;
    assert_eq!(status, "False");
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
    op.stop().await;
    Ok(())
}

/// A leased value (KV v1 with `ttl`) is re-fetched at two thirds of its lease, well before `refreshInterval`, so
/// the Secret follows a rotated value (dynamic secrets are re-issued before they expire).
#[tokio::test]
async fn leased_values_are_refetched_before_they_expire() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("vault-lease").await?;
    let bao = Bao::start().await?;
    bao.post("sys/mounts/kv1", json!({"type": "kv", "options": {"version": "1"}}))
        .await?;
    bao.post("kv1/rotating", json!({"password": "first", "ttl": "3s"}))
        .await?;
    secret(&ns, "vault-token", &[("token", bao.srv.root_token())]).await?;
    let op = Operator::start(&ns).await?;
    apply(
        &ns.api::<SecretStore>(),
        &store_yaml(
            &op.class,
            "lease",
            &format!(
                "    vault:\n      server: {}\n      path: kv1\n      version: v1\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n",
                bao.addr()
            ),
        ),
    )
    .await?;
    apply(
        &ns.api::<ExternalSecret>(),
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: leased}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {name: lease, kind: SecretStore}\n  data:\n  - {secretKey: password, remoteRef: {key: rotating, property: password}}\n",
    )
    .await?;
    let data = wait_secret(&ns, "leased").await?;
    assert_eq!(data.get("password").map(String::as_str), Some("first"));
    bao.post("kv1/rotating", json!({"password": "second", "ttl": "3s"}))
        .await?;
    let secrets = ns.api::<k8s_openapi::api::core::v1::Secret>();
    syncret_tests::eventually(
        Duration::from_secs(20),
        "the re-issued value before the lease ends",
        || async {
            let s = secrets.get("leased").await.ok()?;
            (s.data?.get("password")?.0 == b"second").then_some(())
        },
    )
    .await?;
    op.stop().await;
    Ok(())
}
