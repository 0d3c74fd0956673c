//! The webhook provider (`spec.provider.webhook`) end to end: syncret in-process on the real control plane against
//! a small HTTP(S) server in this test binary (`provider_webhook/server.rs`: it records every request and answers
//! what each test's handler says; there is no standard webhook server to run instead, the "protocol" is whatever
//! the store's templates make of it).
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::{Api, ListParams};
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::{
    NoopObserver, ProviderContext, ProviderError, PushRef, Registry, SecretValue, SecretsClient, StoreInfo, StoreScope,
};
use syncret_tests::{Env, TestNamespace, eventually};

#[path = "provider_webhook/server.rs"]
mod server;

use server::{Handler, Recorded, Reply, Server, TestPki};

const WAIT: Duration = Duration::from_secs(60);

/// Everything syncret logs (debug and up for its crates) in this test binary, to check no secret reaches a log.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (before the harness installs its own, which then stands aside).
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = LogSink(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "warn,syncret=debug,syncret_providers=debug",
            ))
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .try_init();
        buf
    })
    .clone()
}

fn logs_text() -> String {
    String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned()
}

async fn env(prefix: &str) -> anyhow::Result<Env> {
    capture_logs();
    Env::new(prefix).await
}

fn handler(f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Handler {
    Arc::new(f)
}

/// A Secret the webhook may read (it carries ESO's label).
async fn labeled_secret(env: &Env, name: &str, data: &[(&str, &str)]) -> anyhow::Result<()> {
    let data: BTreeMap<&str, &str> = data.iter().copied().collect();
    env.apply::<Secret>(
        &serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "labels": {"external-secrets.io/type": "webhook"}},
            "stringData": data,
        })
        .to_string(),
    )
    .await?;
    Ok(())
}

async fn store(env: &Env, name: &str, webhook: serde_json::Value) -> anyhow::Result<()> {
    env.apply::<SecretStore>(
        &serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
            "spec": {"controller": env.class(), "provider": {"webhook": webhook}},
        })
        .to_string(),
    )
    .await?;
    Ok(())
}

async fn external_secret(env: &Env, name: &str, spec: &str) -> anyhow::Result<()> {
    env.apply::<ExternalSecret>(&format!(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    ))
    .await?;
    Ok(())
}

/// The store's Ready condition once it has `status`: (reason, message).
async fn store_condition(ns: &TestNamespace, name: &str, status: &str) -> anyhow::Result<(String, String)> {
    let stores: Api<SecretStore> = ns.api();
    eventually(WAIT, &format!("store {name} Ready={status}"), || async {
        let c = stores
            .get(name)
            .await
            .ok()?
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == status)?;
        Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
    })
    .await
}

/// The ExternalSecret's Ready condition once it has `status` and its message contains `needle`: (reason, message).
async fn es_condition(ns: &TestNamespace, name: &str, status: &str, needle: &str) -> anyhow::Result<(String, String)> {
    let ess: Api<ExternalSecret> = ns.api();
    eventually(
        WAIT,
        &format!("ExternalSecret {name} Ready={status} with {needle:?}"),
        || async {
            let c = ess.get(name).await.ok()?.status?.conditions.into_iter().find(|c| {
                c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready && c.status == status
            })?;
            let message = c.message.unwrap_or_default();
            message
                .contains(needle)
                .then(|| (c.reason.unwrap_or_default(), message))
        },
    )
    .await
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Everything syncret wrote about the namespace's objects: statuses of stores and ExternalSecrets, and Events.
async fn written_text(ns: &TestNamespace) -> anyhow::Result<String> {
    let mut out = String::new();
    for s in ns.api::<SecretStore>().list(&ListParams::default()).await? {
        out.push_str(&serde_json::to_string(&s.status)?);
    }
    for es in ns.api::<ExternalSecret>().list(&ListParams::default()).await? {
        out.push_str(&serde_json::to_string(&es.status)?);
    }
    for ev in ns.api::<Event>().list(&ListParams::default()).await? {
        out.push_str(ev.message.as_deref().unwrap_or_default());
        out.push('\n');
    }
    Ok(out)
}

/// A document API: `GET /api/secrets?key=K&version=V` answers `{"data": ...}` of the document (version `1` of
/// `token` is older), 404 for an unknown key; 401 without the right bearer token.
fn documents(token: &'static str, docs: Arc<Mutex<BTreeMap<String, serde_json::Value>>>) -> Handler {
    handler(move |r| {
        if r.header("authorization") != format!("Bearer {token}") {
            return Reply::json(401, serde_json::json!({"error": "unauthorized"}));
        }
        let key = r.q("key");
        if key == "token" && r.q("version") == "1" {
            return Reply::json(200, serde_json::json!({"data": {"value": "t1"}}));
        }
        match docs.lock().unwrap().get(key) {
            Some(d) => Reply::json(200, serde_json::json!({ "data": d })),
            None => Reply::json(404, serde_json::json!({"error": "no such secret"})),
        }
    })
}

fn docs(pairs: &[(&str, serde_json::Value)]) -> Arc<Mutex<BTreeMap<String, serde_json::Value>>> {
    Arc::new(Mutex::new(
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    ))
}

/// The store shape of most tests: key, version and namespace in the query, the token from `secrets[]` in a header,
/// the property in a header and in the jsonPath.
fn templated(origin: &str) -> serde_json::Value {
    serde_json::json!({
        "url": format!(
            "{origin}/api/secrets?key={{{{ .remoteRef.key }}}}&version={{{{ .remoteRef.version }}}}&ns={{{{ .remoteRef.namespace }}}}"
        ),
        "headers": {
            "Authorization": "Bearer {{ .auth.token }}",
            "X-Property": "{{ .remoteRef.property }}",
        },
        "result": {"jsonPath": "$.data{{ with .remoteRef.property }}.{{ . }}{{ end }}"},
        "secrets": [{"name": "auth", "secretRef": {"name": "webhook-creds"}}],
    })
}

#[tokio::test]
async fn templated_reads_of_data_property_version_and_extract() -> anyhow::Result<()> {
    const TOKEN: &str = "tok-9f8e7d6c5b4a";
    let env = env("webhook-read").await?;
    let docs = docs(&[
        (
            "db",
            serde_json::json!({"user": "admin", "password": "p&ss word", "port": 5432}),
        ),
        ("team/app one", serde_json::json!({"value": "spaced"})),
        ("token", serde_json::json!({"value": "t2"})),
    ]);
    let srv = Server::start(documents(TOKEN, docs)).await?;
    labeled_secret(&env, "webhook-creds", &[("token", TOKEN)]).await?;
    store(&env, "hook", templated(&srv.origin())).await?;
    let (reason, _) = store_condition(&env.ns, "hook", "True").await?;
    assert_eq!(reason, "Valid");
    assert!(srv.requests().is_empty(), "validation makes no request");

    external_secret(
        &env,
        "app",
        r#"  refreshInterval: 1h
  secretStoreRef: {name: hook, kind: SecretStore}
  target: {name: app-secret}
  data:
  - {secretKey: password, remoteRef: {key: db, property: password}}
  - {secretKey: port, remoteRef: {key: db, property: port}}
  - {secretKey: whole, remoteRef: {key: db}}
  - {secretKey: spaced, remoteRef: {key: team/app one, property: value}}
  - {secretKey: token, remoteRef: {key: token, property: value}}
  - {secretKey: token-v1, remoteRef: {key: token, property: value, version: "1"}}
  dataFrom:
  - extract: {key: db}
"#,
    )
    .await?;
    let secret = env.secret("app-secret").await?;
    assert_eq!(
        Env::text(&secret),
        map(&[
            ("password", "p&ss word"),
            ("port", "5432"),
            // No property: `$.data` selects an object, written as Go's json.Marshal does.
            ("whole", r#"{"password":"p\u0026ss word","port":5432,"user":"admin"}"#),
            ("spaced", "spaced"),
            ("token", "t2"),
            ("token-v1", "t1"),
            ("user", "admin"),
        ])
    );
    let (reason, _) = es_condition(&env.ns, "app", "True", "").await?;
    assert_eq!(reason, "SecretSynced");

    // What the server saw: one request per distinct (key, version, property); the extract shares the read of `db`
    // without property. Rendered header, escaped query, the ExternalSecret's namespace.
    let reqs = srv.requests();
    let mut seen: Vec<(String, String, String)> = reqs
        .iter()
        .map(|r| {
            (
                r.q("key").to_string(),
                r.q("version").to_string(),
                r.header("x-property").to_string(),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        vec![
            ("db".into(), "".into(), "".into()),
            ("db".into(), "".into(), "password".into()),
            ("db".into(), "".into(), "port".into()),
            ("team/app one".into(), "".into(), "value".into()),
            ("token".into(), "".into(), "value".into()),
            ("token".into(), "1".into(), "value".into()),
        ]
    );
    assert!(
        reqs.iter()
            .all(|r| r.method == "GET" && r.path == "/api/secrets" && r.body.is_empty())
    );
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization") == format!("Bearer {TOKEN}"))
    );
    assert!(reqs.iter().all(|r| r.q("ns") == env.ns.name));
    assert!(
        reqs.iter()
            .any(|r| r.raw_query.starts_with("key=team%2Fapp+one&version=&ns=")),
        "remoteRef values are query-escaped in the URL: {:?}",
        reqs.iter().map(|r| &r.raw_query).collect::<Vec<_>>()
    );

    // Calls are counted under ESO's labels.
    let metrics = env.op.ctx().metrics.render()?;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("externalsecret_provider_api_calls_count")
                && l.contains(r#"call="HTTPRequest""#)
                && l.contains(r#"provider="Webhook""#)),
        "no Webhook/HTTPRequest in the call metric"
    );
    // The token is nowhere but in the requests: not in statuses, events, metrics or logs.
    assert!(!written_text(&env.ns).await?.contains(TOKEN));
    assert!(!metrics.contains(TOKEN));
    assert!(!logs_text().contains(TOKEN));
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_unlabeled_secrets_and_ntlm_are_clear() -> anyhow::Result<()> {
    const TOKEN: &str = "tok-right-4711";
    let env = env("webhook-bad").await?;
    let srv = Server::start(documents(TOKEN, docs(&[("db", serde_json::json!({"v": "x"}))]))).await?;
    let es = |store: &str| {
        format!(
            "  refreshInterval: 1h\n  secretStoreRef: {{name: {store}, kind: SecretStore}}\n  target: {{name: {store}-secret}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: db, property: v}}}}\n"
        )
    };

    // A wrong token: 401 names the failure (authentication), the wrong token appears nowhere.
    labeled_secret(&env, "webhook-creds", &[("token", "tok-wrong-0815")]).await?;
    store(&env, "wrong", templated(&srv.origin())).await?;
    external_secret(&env, "wrong", &es("wrong")).await?;
    let (_, message) = es_condition(&env.ns, "wrong", "False", "401").await?;
    assert!(
        message.contains("authentication failed: endpoint gave error 401 Unauthorized"),
        "{message}"
    );
    assert!(message.contains("spec.data[0]"), "{message}");

    // A Secret without ESO's label is refused (ESO's message), before any request.
    env.apply::<Secret>(
        r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "unlabeled"}, "stringData": {"token": "x"}}"#,
    )
    .await?;
    let mut spec = templated(&srv.origin());
    spec["secrets"][0]["secretRef"]["name"] = "unlabeled".into();
    store(&env, "unlabeled", spec).await?;
    let (reason, message) = store_condition(&env.ns, "unlabeled", "False").await?;
    assert_eq!(reason, "InvalidProviderConfig");
    assert!(
        message.contains("spec.provider.webhook.secrets[0].secretRef")
            && message.contains("does not contain needed label 'external-secrets.io/type: webhook'"),
        "{message}"
    );

    // NTLM: not supported, and said so.
    let mut spec = templated(&srv.origin());
    spec["auth"] = serde_json::json!({"ntlm": {
        "usernameSecret": {"name": "webhook-creds", "key": "token"},
        "passwordSecret": {"name": "webhook-creds", "key": "token"},
    }});
    store(&env, "ntlm", spec).await?;
    let (_, message) = store_condition(&env.ns, "ntlm", "False").await?;
    assert!(
        message.contains("spec.provider.webhook.auth.ntlm: NTLM authentication is not supported"),
        "{message}"
    );

    // Nothing listens on the URL's port: validation (a TCP connection, as ESO) fails the store.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    store(&env, "closed", templated(&format!("http://127.0.0.1:{closed}"))).await?;
    let (reason, message) = store_condition(&env.ns, "closed", "False").await?;
    assert_eq!(reason, "ValidationFailed");
    assert!(
        message.contains(&format!("error accessing external store: dial tcp 127.0.0.1:{closed}")),
        "{message}"
    );

    // A host that is a template cannot be checked: Ready, reason ValidationUnknown (ESO fails such stores).
    let mut spec = templated(&srv.origin());
    spec["url"] = "http://{{ .auth.host }}/api/secrets?key={{ .remoteRef.key }}".into();
    store(&env, "templated-host", spec).await?;
    let (reason, _) = store_condition(&env.ns, "templated-host", "True").await?;
    assert_eq!(reason, "ValidationUnknown");

    assert!(!written_text(&env.ns).await?.contains("tok-wrong-0815"));
    assert!(!logs_text().contains("tok-wrong-0815"));
    Ok(())
}

#[tokio::test]
async fn https_with_ca_bundle_and_ca_provider() -> anyhow::Result<()> {
    let env = env("webhook-tls").await?;
    let pki = TestPki::new()?;
    let srv = Server::start_tls(
        handler(|r| Reply::json(200, serde_json::json!({"value": format!("tls-{}", r.q("key"))}))),
        &pki,
    )
    .await?;
    let ca = pki.ca_pem()?;
    let spec = |extra: serde_json::Value| {
        let mut s = serde_json::json!({
            "url": format!("{}/get?key={{{{ .remoteRef.key }}}}", srv.origin()),
            "result": {"jsonPath": "$.value"},
        });
        if let (Some(s), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        s
    };
    store(
        &env,
        "inline",
        spec(serde_json::json!({"caBundle": base64::engine::general_purpose::STANDARD.encode(&ca)})),
    )
    .await?;
    env.apply::<ConfigMap>(
        &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "webhook-ca"},
            "data": {"ca.crt": ca}})
        .to_string(),
    )
    .await?;
    store(
        &env,
        "configmap",
        spec(serde_json::json!({"caProvider": {"type": "ConfigMap", "name": "webhook-ca", "key": "ca.crt"}})),
    )
    .await?;
    store(&env, "system-roots", spec(serde_json::json!({}))).await?;
    for s in ["inline", "configmap", "system-roots"] {
        store_condition(&env.ns, s, "True").await?;
        external_secret(
            &env,
            s,
            &format!(
                "  refreshInterval: 1h\n  secretStoreRef: {{name: {s}, kind: SecretStore}}\n  target: {{name: {s}-secret}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: {s}}}}}\n"
            ),
        )
        .await?;
    }
    assert_eq!(
        Env::text(&env.secret("inline-secret").await?),
        map(&[("v", "tls-inline")])
    );
    assert_eq!(
        Env::text(&env.secret("configmap-secret").await?),
        map(&[("v", "tls-configmap")])
    );
    // Without the CA the server's certificate is not trusted.
    let (_, message) = es_condition(&env.ns, "system-roots", "False", "certificate").await?;
    assert!(message.contains("failed to call endpoint"), "{message}");
    assert!(srv.requests().iter().all(|r| r.q("key") != "system-roots"));
    Ok(())
}

#[tokio::test]
async fn a_timeout_is_a_clear_condition() -> anyhow::Result<()> {
    let env = env("webhook-timeout").await?;
    let srv = Server::start(handler(|r| {
        let mut reply = Reply::json(200, serde_json::json!({"value": "late"}));
        if r.q("key") == "slow" {
            reply.delay = Duration::from_secs(5);
        }
        reply
    }))
    .await?;
    store(
        &env,
        "hook",
        serde_json::json!({
            "url": format!("{}/get?key={{{{ .remoteRef.key }}}}", srv.origin()),
            "timeout": "500ms",
            "result": {"jsonPath": "$.value"},
        }),
    )
    .await?;
    external_secret(
        &env,
        "slow",
        "  refreshInterval: 1h\n  secretStoreRef: {name: hook}\n  target: {name: slow}\n  data:\n  - {secretKey: v, remoteRef: {key: slow}}\n",
    )
    .await?;
    let (_, message) = es_condition(&env.ns, "slow", "False", "timeout").await?;
    assert!(
        message.contains("failed to call endpoint: no answer within the timeout of 500ms"),
        "{message}"
    );
    assert!(message.contains("spec.data[0]"), "{message}");
    Ok(())
}

#[tokio::test]
async fn not_found_follows_the_deletion_policy() -> anyhow::Result<()> {
    const TOKEN: &str = "tok-nf";
    let env = env("webhook-404").await?;
    let docs = docs(&[("k", serde_json::json!({"value": "v"}))]);
    let srv = Server::start(documents(TOKEN, docs.clone())).await?;
    labeled_secret(&env, "webhook-creds", &[("token", TOKEN)]).await?;
    store(&env, "hook", templated(&srv.origin())).await?;
    for policy in ["Delete", "Retain"] {
        let name = policy.to_lowercase();
        external_secret(
            &env,
            &name,
            &format!(
                "  refreshInterval: 1s\n  secretStoreRef: {{name: hook}}\n  target: {{name: {name}, deletionPolicy: {policy}}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k, property: value}}}}\n"
            ),
        )
        .await?;
        assert_eq!(Env::text(&env.secret(&name).await?), map(&[("k", "v")]));
    }
    // The endpoint now answers 404 for the key.
    docs.lock().unwrap().clear();
    let secrets = env.ns.api::<Secret>();
    eventually(WAIT, "Delete removes the Secret", || async {
        secrets.get_opt("delete").await.ok().flatten().is_none().then_some(())
    })
    .await?;
    env.es_ready("delete", "True", "SecretDeleted").await?;
    let (_, message) = es_condition(&env.ns, "retain", "False", "does not exist").await?;
    assert!(
        message.contains("spec.data[0]") && message.contains(r#""k""#),
        "{message}"
    );
    assert_eq!(Env::text(&env.secret("retain").await?), map(&[("k", "v")]));
    Ok(())
}

#[tokio::test]
async fn a_non_json_answer_with_a_json_path_names_the_key() -> anyhow::Result<()> {
    let env = env("webhook-text").await?;
    let srv = Server::start(handler(|_| Reply::text(200, "password=hunter2-do-not-leak"))).await?;
    store(
        &env,
        "hook",
        serde_json::json!({
            "url": format!("{}/get?key={{{{ .remoteRef.key }}}}", srv.origin()),
            "result": {"jsonPath": "$.value"},
        }),
    )
    .await?;
    external_secret(
        &env,
        "plain",
        "  refreshInterval: 1h\n  secretStoreRef: {name: hook}\n  target: {name: plain}\n  data:\n  - {secretKey: v, remoteRef: {key: plain-key}}\n",
    )
    .await?;
    let (_, message) = es_condition(&env.ns, "plain", "False", "not JSON").await?;
    assert!(
        message.contains(r#"secret "plain-key": result.jsonPath "$.value" is set but the response is not JSON"#),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!written_text(&env.ns).await?.contains("hunter2"));
    // The failure is logged (so the log capture works) without the response.
    eventually(WAIT, "the failure in the log", || async {
        logs_text().contains("plain-key").then_some(())
    })
    .await?;
    assert!(!logs_text().contains("hunter2-do-not-leak"));
    Ok(())
}

/// A client built the way the operator builds it (the registry's provider, the operator's template engine).
async fn client(ns: &TestNamespace, webhook: serde_json::Value) -> anyhow::Result<Arc<dyn SecretsClient>> {
    let spec: syncret_crds::secretstore::SecretStoreSpec =
        serde_json::from_value(serde_json::json!({"provider": {"webhook": webhook}}))?;
    let info = StoreInfo {
        scope: StoreScope::SecretStore,
        name: "hook".into(),
        namespace: Some(ns.name.clone()),
        uid: "uid".into(),
        generation: 1,
        spec: Arc::new(spec),
    };
    let ctx = ProviderContext {
        client: ns.client.clone(),
        observer: Arc::new(NoopObserver),
        referent_namespace: None,
        templates: Some(Arc::new(syncret::template::providers::ProviderTemplates)),
        policy: Arc::new(syncret_tests::operator::loopback_allowed()),
    };
    let provider = Registry::with_default_providers().provider_for(&info.spec)?;
    assert!(provider.takes_property());
    Ok(provider.new_client(&info, &ctx).await?)
}

#[tokio::test]
async fn push_delete_and_exists_at_client_level() -> anyhow::Result<()> {
    const TOKEN: &str = "tok-push";
    let env = env("webhook-push").await?;
    let stored: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
    let st = stored.clone();
    let srv = Server::start(handler(move |r| {
        if r.header("authorization") != format!("Bearer {TOKEN}") {
            return Reply::json(401, serde_json::json!({}));
        }
        let id = r.q("id").to_string();
        if id == "broken" {
            return Reply::text(500, "boom");
        }
        let mut st = st.lock().unwrap();
        match r.method.as_str() {
            "POST" => {
                st.insert(id, r.body.clone());
                Reply::json(201, serde_json::json!({}))
            }
            "GET" if st.contains_key(&id) => Reply::json(200, serde_json::json!({"exists": true})),
            "DELETE" if st.remove(&id).is_some() => Reply::json(200, serde_json::json!({})),
            _ => Reply::json(404, serde_json::json!({})),
        }
    }))
    .await?;
    labeled_secret(&env, "webhook-creds", &[("token", TOKEN)]).await?;
    let with_body = |body: Option<&str>| {
        let mut s = serde_json::json!({
            // ESO's documented push URL.
            "url": format!(
                "{}/push?id={{{{ .remoteRef.remoteKey }}}}&secret={{{{ .remoteRef.secretKey }}}}",
                srv.origin()
            ),
            "headers": {"Authorization": "Bearer {{ .auth.token }}", "Content-Type": "application/json"},
            "secrets": [{"name": "auth", "secretRef": {"name": "webhook-creds"}}],
        });
        if let Some(b) = body {
            s["body"] = b.into();
        }
        s
    };
    let c = client(
        &env.ns,
        with_body(Some(
            r#"{"secret-field": "{{ index .remoteRef .remoteRef.remoteKey }}"}"#,
        )),
    )
    .await?;
    let at = |key: &str| PushRef {
        remote_key: key.into(),
        property: None,
        metadata: None,
        secret_key: None,
    };

    assert!(!c.secret_exists(&at("remotekey")).await?);
    let with_secret_key = PushRef {
        secret_key: Some("testsecret".into()),
        ..at("remotekey")
    };
    c.push_secret(&with_secret_key, &SecretValue::from("v@lue &1")).await?;
    assert_eq!(
        stored
            .lock()
            .unwrap()
            .get("remotekey")
            .map(|b| String::from_utf8_lossy(b).into_owned()),
        Some(r#"{"secret-field": "v@lue &1"}"#.to_string())
    );
    assert!(c.secret_exists(&at("remotekey")).await?);
    c.delete_secret(&at("remotekey")).await?;
    assert!(!c.secret_exists(&at("remotekey")).await?);
    // Deleting what is not there is fine (404).
    c.delete_secret(&at("remotekey")).await?;
    let e = c.push_secret(&at("broken"), &SecretValue::from("x")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to push webhook data: endpoint gave error 500 Internal Server Error"
    );

    // No body template: the value itself is the body, whatever the remote key looks like.
    let raw = client(&env.ns, with_body(None)).await?;
    raw.push_secret(&at("path/to-key"), &SecretValue::from(&[0u8, 0xff, b'x'][..]))
        .await?;
    assert_eq!(stored.lock().unwrap().get("path/to-key"), Some(&vec![0u8, 0xff, b'x']));

    let reqs = srv.requests();
    let methods: Vec<&str> = reqs.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        ["GET", "POST", "GET", "DELETE", "GET", "DELETE", "POST", "POST"]
    );
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization") == format!("Bearer {TOKEN}"))
    );
    assert_eq!(reqs[1].raw_query, "id=remotekey&secret=testsecret");
    assert_eq!(reqs[0].raw_query, "id=remotekey&secret=");
    assert!(reqs.iter().any(|r| r.raw_query == "id=path%2Fto-key&secret="));
    assert!(
        reqs.iter()
            .filter(|r| r.method == "POST")
            .all(|r| r.header("content-type") == "application/json")
    );

    // A template error names the field and never the data.
    let bad = client(&env.ns, {
        let mut s = with_body(None);
        s["headers"]["Authorization"] = "Bearer {{ .auth.missing }}".into();
        s
    })
    .await?;
    match bad.secret_exists(&at("x")).await {
        Err(ProviderError::InvalidConfig { field, message }) => {
            assert_eq!(field, "spec.provider.webhook.headers.Authorization");
            assert!(message.contains(r#"map has no entry for key "missing""#), "{message}");
            assert!(!message.contains(TOKEN), "{message}");
        }
        other => panic!("expected a template error, got {other:?}"),
    }
    Ok(())
}
