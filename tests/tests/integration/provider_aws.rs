//! The AWS Secrets Manager provider against moto (`Moto`, one server per test) and the test control plane.
//!
//! - End to end through syncret: every read form (property, gjson path, version stages and ids, binary,
//!   prefix, metadataPolicy Fetch, extract, find by name / tags / path), store status, errors;
//! - batching: 100 ExternalSecrets over 60 distinct keys make at most ⌈60/20⌉ `BatchGetSecretValue` calls;
//! - IRSA: a real ServiceAccount token from the control plane reaches STS (`AssumeRoleWithWebIdentity` as
//!   recorded by moto), once for many ExternalSecrets, and the credentials STS returned sign the Secrets
//!   Manager calls (moto checks SigV4 signatures and IAM policies once switched on);
//! - role chaining with externalID and session tags, PushSecret at the client level, the default
//!   credential chain of the operator's environment (in a child process), and throttling with
//!   `retrySettings` against a small server speaking the Secrets Manager JSON protocol (moto never throttles).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::aws::Aws;
use syncret_providers::{
    CallObserver, FindQuery, Provider, ProviderContext, ProviderError, PushRef, RemoteKey, RemoteValue, SecretValue,
    StoreInfo, StoreScope, Validation,
};
use syncret_tests::operator::Operator;
use syncret_tests::servers::{Moto, MotoRequest};
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml as apply, eventually};

pub(crate) const REGION: &str = "us-east-1";
pub(crate) const WAIT: Duration = Duration::from_secs(60);

// --- moto set-up ----------------------------------------------------------------------------------------------

/// moto plus a plain HTTP client for set-up calls (unsigned: made while moto does not check signatures).
pub(crate) struct Aws2 {
    pub(crate) moto: Moto,
    pub(crate) http: reqwest::Client,
}

pub(crate) fn auth_header(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=setup/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=00"
    )
}

impl Aws2 {
    pub(crate) async fn start() -> anyhow::Result<Aws2> {
        Ok(Aws2 {
            moto: Moto::start().await?,
            http: reqwest::Client::new(),
        })
    }

    /// A Secrets Manager call (JSON protocol).
    pub(crate) async fn sm(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(self.moto.endpoint())
            .header("X-Amz-Target", format!("secretsmanager.{op}"))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("Authorization", auth_header("secretsmanager"))
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "{op}: {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    pub(crate) async fn create(&self, name: &str, value: &str, tags: &[(&str, &str)]) -> anyhow::Result<()> {
        let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
        self.sm(
            "CreateSecret",
            json!({"Name": name, "SecretString": value, "Tags": tags}),
        )
        .await?;
        Ok(())
    }

    /// An IAM or STS call (query protocol); returns the XML answer.
    pub(crate) async fn query(&self, service: &str, version: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut form: Vec<(&str, &str)> = vec![("Version", version)];
        form.extend_from_slice(params);
        let resp = self
            .http
            .post(self.moto.endpoint())
            .header("Authorization", auth_header(service))
            .form(&form)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "{params:?}: {status}: {text}");
        Ok(text)
    }

    pub(crate) async fn iam(&self, params: &[(&str, &str)]) -> anyhow::Result<String> {
        self.query("iam", "2010-05-08", params).await
    }

    /// A role anyone may assume (moto checks trust policies once IAM enforcement is on) with `actions` allowed.
    pub(crate) async fn role(&self, name: &str, actions: &str) -> anyhow::Result<String> {
        let trust = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole", "sts:TagSession"]},
            {"Effect": "Allow", "Principal": {"Federated": "*"}, "Action": "sts:AssumeRoleWithWebIdentity"}]});
        self.iam(&[
            ("Action", "CreateRole"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", &trust.to_string()),
        ])
        .await?;
        self.iam(&[
            ("Action", "PutRolePolicy"),
            ("RoleName", name),
            ("PolicyName", "p"),
            ("PolicyDocument", &allow(actions)),
        ])
        .await?;
        Ok(format!("arn:aws:iam::{}:role/{name}", Moto::ACCOUNT_ID))
    }

    /// An IAM user allowed `actions`, and its access key (id, secret).
    pub(crate) async fn user(&self, name: &str, actions: &str) -> anyhow::Result<(String, String)> {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]).await?;
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "p"),
            ("PolicyDocument", &allow(actions)),
        ])
        .await?;
        let xml = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]).await?;
        Ok((element(&xml, "AccessKeyId")?, element(&xml, "SecretAccessKey")?))
    }

    /// From now on moto checks signatures and IAM policies (`POST /moto-api/reset-auth` with body `0`).
    pub(crate) async fn enforce_auth(&self) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/moto-api/reset-auth", self.moto.endpoint()))
            .header("Content-Type", "text/plain")
            .body("0")
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "reset-auth: {}", resp.status());
        Ok(())
    }

    pub(crate) fn requests_of(&self, op: &str) -> anyhow::Result<Vec<MotoRequest>> {
        Ok(self
            .moto
            .requests()?
            .into_iter()
            .filter(|r| r.operation().as_deref() == Some(op))
            .collect())
    }
}

pub(crate) fn allow(actions: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}).to_string()
}

pub(crate) fn element(xml: &str, name: &str) -> anyhow::Result<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open).ok_or_else(|| anyhow!("no <{name}> in {xml}"))? + open.len();
    let end = xml[start..]
        .find(&format!("</{name}>"))
        .ok_or_else(|| anyhow!("no </{name}>"))?
        + start;
    Ok(xml[start..end].to_string())
}

/// A form parameter of a recorded query-protocol request, percent-decoded.
pub(crate) fn form_param(req: &MotoRequest, name: &str) -> Option<String> {
    let body = String::from_utf8_lossy(&req.body);
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The access key id a request was signed with (`Credential=AKID/...`).
pub(crate) fn signed_with(req: &MotoRequest) -> String {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn header<'a>(req: &'a MotoRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

// --- syncret set-up -------------------------------------------------------------------------------------------

/// syncret in-process with the AWS provider pointed at moto.
pub(crate) async fn operator(ns: &TestNamespace, moto: &Moto, concurrent: usize) -> anyhow::Result<Operator> {
    operator_with_class(ns, moto, concurrent, &syncret_tests::unique_name("class")).await
}

/// [`operator`] with a given controller class (to take over the stores of a stopped operator).
pub(crate) async fn operator_with_class(
    ns: &TestNamespace,
    moto: &Moto,
    concurrent: usize,
    class: &str,
) -> anyhow::Result<Operator> {
    operator_with(ns, Aws::with_endpoint(moto.endpoint()), concurrent, class).await
}

/// [`operator`] with a given AWS provider factory and controller class.
pub(crate) async fn operator_with(
    ns: &TestNamespace,
    aws: Aws,
    concurrent: usize,
    class: &str,
) -> anyhow::Result<Operator> {
    let mut opts = syncret_tests::operator::options();
    opts.settings.controller_class = class.to_string();
    opts.settings.namespace = Some(ns.name.clone());
    opts.settings.concurrent = concurrent;
    let mut registry = syncret_providers::Registry::with_default_providers();
    registry.register(Arc::new(aws));
    Operator::start_registry(ns.client.clone(), opts, registry).await
}

pub(crate) async fn key_secret(ns: &TestNamespace, name: &str, id: &str, secret: &str) -> anyhow::Result<()> {
    let api: Api<Secret> = ns.api();
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": {"id": id, "secret": secret},
    }))?;
    api.create(&PostParams::default(), &s).await?;
    Ok(())
}

/// A SecretStore `name` with static keys from Secret `creds` and extra provider fields.
pub(crate) async fn static_store(
    ns: &TestNamespace,
    class: &str,
    name: &str,
    creds: &str,
    extra: &str,
) -> anyhow::Result<()> {
    keys_store(ns, class, name, "SecretsManager", creds, extra).await
}

/// [`static_store`] for an AWS `service` (`SecretsManager`, `ParameterStore`).
pub(crate) async fn keys_store(
    ns: &TestNamespace,
    class: &str,
    name: &str,
    service: &str,
    creds: &str,
    extra: &str,
) -> anyhow::Result<()> {
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: {name}}}
spec:
  controller: {class}
  provider:
    aws:
      service: {service}
      region: {REGION}
      auth:
        secretRef:
          accessKeyIDSecretRef: {{name: {creds}, key: id}}
          secretAccessKeySecretRef: {{name: {creds}, key: secret}}
{extra}"#
        ),
    )
    .await?;
    Ok(())
}

/// The Ready condition of a store once it has one: (status, reason, message).
pub(crate) async fn store_ready(ns: &TestNamespace, name: &str) -> anyhow::Result<(String, String, String)> {
    let stores: Api<SecretStore> = ns.api();
    eventually(WAIT, &format!("store {name} status"), || async {
        let s = stores.get(name).await.ok()?;
        let v = serde_json::to_value(&s).ok()?;
        let c = v["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        Some((
            c["status"].as_str()?.to_string(),
            c["reason"].as_str().unwrap_or_default().to_string(),
            c["message"].as_str().unwrap_or_default().to_string(),
        ))
    })
    .await
}

/// Waits for the Ready condition of an ExternalSecret to satisfy `f`; returns (status, reason, message).
pub(crate) async fn es_condition(
    ns: &TestNamespace,
    name: &str,
    what: &str,
    f: impl Fn(&str, &str) -> bool,
) -> anyhow::Result<(String, String, String)> {
    let ess: Api<ExternalSecret> = ns.api();
    let last = std::sync::Mutex::new((String::new(), String::new(), String::new()));
    let res = eventually(WAIT, &format!("ExternalSecret {name}: {what}"), || async {
        let es = ess.get(name).await.ok()?;
        let v = serde_json::to_value(&es).ok()?;
        let c = v["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        let got = (
            c["status"].as_str().unwrap_or_default().to_string(),
            c["reason"].as_str().unwrap_or_default().to_string(),
            c["message"].as_str().unwrap_or_default().to_string(),
        );
        *last.lock().unwrap() = got.clone();
        f(&got.0, &got.2).then_some(got)
    })
    .await;
    res.with_context(|| format!("last condition: {:?}", last.lock().unwrap()))
}

pub(crate) async fn secret_data(ns: &TestNamespace, name: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let secrets: Api<Secret> = ns.api();
    let s = eventually(WAIT, &format!("Secret {name}"), || async {
        secrets.get_opt(name).await.ok().flatten()
    })
    .await?;
    Ok(s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect())
}

pub(crate) fn text(data: &BTreeMap<String, Vec<u8>>, key: &str) -> String {
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| format!("<no key {key}>"))
}

// --- client-level set-up --------------------------------------------------------------------------------------

/// Counts calls per (provider, call).
#[derive(Default)]
pub(crate) struct Calls(std::sync::Mutex<BTreeMap<(String, String), usize>>);

impl CallObserver for Calls {
    fn observe(&self, provider: &'static str, call: &'static str, _ok: bool, _elapsed: Duration) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((provider.to_string(), call.to_string()))
            .or_default() += 1;
    }
}

impl Calls {
    pub(crate) fn get(&self, provider: &str, call: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .get(&(provider.to_string(), call.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

pub(crate) fn store_info(ns: &str, provider: Value, retry: Option<Value>) -> anyhow::Result<StoreInfo> {
    let mut spec = json!({"provider": {"aws": provider}});
    if let Some(r) = retry {
        spec["retrySettings"] = r;
    }
    Ok(StoreInfo {
        scope: StoreScope::SecretStore,
        name: "aws".into(),
        namespace: Some(ns.to_string()),
        uid: "uid".into(),
        generation: 1,
        spec: Arc::new(serde_json::from_value(spec)?),
    })
}

pub(crate) fn ctx(client: kube::Client, calls: &Arc<Calls>) -> ProviderContext {
    ProviderContext {
        client,
        observer: calls.clone(),
        referent_namespace: None,
        policy: Arc::new(syncret_tests::operator::loopback_allowed()),
    }
}

pub(crate) fn static_auth(secret: &str) -> Value {
    json!({"secretRef": {
        "accessKeyIDSecretRef": {"name": secret, "key": "id"},
        "secretAccessKeySecretRef": {"name": secret, "key": "secret"}}})
}

pub(crate) async fn get(client: &dyn syncret_providers::SecretsClient, key: &str) -> Result<String, ProviderError> {
    match client.get_secret(&RemoteKey::new(key)).await? {
        RemoteValue::Bytes(v) => Ok(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        _ => Err(ProviderError::Transport("not a plain value".into())),
    }
}

// --- tests ----------------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_read_form_end_to_end() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-reads").await?;
    let aws = Aws2::start().await?;
    aws.create("app/db", r#"{"user":"admin","password":"old"}"#, &[])
        .await?;
    aws.sm(
        "PutSecretValue",
        json!({"SecretId": "app/db", "SecretString": r#"{"user":"admin","password":"p4ss","db":{"host":"h1"}}"#}),
    )
    .await?;
    let described = aws.sm("DescribeSecret", json!({"SecretId": "app/db"})).await?;
    let previous_id = described["VersionIdsToStages"]
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(_, stages)| stages.as_array().is_some_and(|s| s.iter().any(|x| x == "AWSPREVIOUS")))
        })
        .map(|(id, _)| id.clone())
        .ok_or_else(|| anyhow!("no AWSPREVIOUS version in {described}"))?;
    aws.create("app/token", "t0k3n", &[]).await?;
    aws.sm(
        "CreateSecret",
        json!({"Name": "app/bin", "SecretBinary": base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2, 255, 254])}),
    )
    .await?;
    aws.create("app/tls", r#"{"tls.crt":"CERT"}"#, &[]).await?;
    aws.create("tagged/one", "1", &[("team", "a"), ("env", "prod")]).await?;
    aws.create("tagged/two", "2", &[("team", "a"), ("env", "dev")]).await?;
    aws.create("tagged/three", "3", &[("team", "ab")]).await?;
    key_secret(&ns, "creds", "AKIDSTATIC", "static-secret").await?;
    aws.moto.clear_requests()?;

    let op = operator(&ns, &aws.moto, 4).await?;
    static_store(&ns, &op.class, "aws", "creds", "").await?;
    static_store(&ns, &op.class, "prefixed", "creds", "      prefix: app/\n").await?;
    let (status, reason, _) = store_ready(&ns, "aws").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"));
    let stores: Api<SecretStore> = ns.api();
    let caps = serde_json::to_value(stores.get("aws").await?)?["status"]["capabilities"].clone();
    assert_eq!(caps, "ReadWrite");

    let ess: Api<ExternalSecret> = ns.api();
    let es = |name: &str, store: &str, body: &str| {
        format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: {store}, kind: SecretStore}}\n  target: {{name: {name}}}\n{body}"
        )
    };
    apply(
        &ess,
        &es(
            "reads",
            "aws",
            &format!(
                r#"  data:
  - {{secretKey: password, remoteRef: {{key: app/db, property: password}}}}
  - {{secretKey: host, remoteRef: {{key: app/db, property: db.host}}}}
  - {{secretKey: old, remoteRef: {{key: app/db, version: AWSPREVIOUS, property: password}}}}
  - {{secretKey: olduuid, remoteRef: {{key: app/db, version: uuid/{previous_id}, property: password}}}}
  - {{secretKey: current, remoteRef: {{key: app/db, version: AWSCURRENT, property: password}}}}
  - {{secretKey: token, remoteRef: {{key: app/token}}}}
  - {{secretKey: bin, remoteRef: {{key: app/bin}}}}
  - {{secretKey: crt, remoteRef: {{key: app/tls, property: tls.crt}}}}
  - {{secretKey: tags, remoteRef: {{key: tagged/one, metadataPolicy: Fetch}}}}
  - {{secretKey: team, remoteRef: {{key: tagged/one, metadataPolicy: Fetch, property: team}}}}
"#
            ),
        ),
    )
    .await?;
    apply(&ess, &es("extract", "aws", "  dataFrom:\n  - extract: {key: app/db}\n")).await?;
    apply(
        &ess,
        &es(
            "find-name",
            "aws",
            "  dataFrom:\n  - find: {name: {regexp: '^app/t'}}\n",
        ),
    )
    .await?;
    apply(
        &ess,
        &es("find-tags", "aws", "  dataFrom:\n  - find: {tags: {team: a}}\n"),
    )
    .await?;
    apply(
        &ess,
        &es(
            "find-path",
            "aws",
            "  dataFrom:\n  - find: {path: tagged/, name: {regexp: 'o'}}\n",
        ),
    )
    .await?;
    apply(
        &ess,
        &es(
            "prefixed",
            "prefixed",
            "  data:\n  - {secretKey: token, remoteRef: {key: token}}\n",
        ),
    )
    .await?;
    apply(
        &ess,
        &es(
            "missing",
            "aws",
            "  data:\n  - {secretKey: x, remoteRef: {key: does-not-exist}}\n",
        ),
    )
    .await?;

    let d = secret_data(&ns, "reads").await?;
    assert_eq!(text(&d, "password"), "p4ss");
    assert_eq!(text(&d, "host"), "h1");
    assert_eq!(text(&d, "old"), "old");
    assert_eq!(text(&d, "olduuid"), "old");
    assert_eq!(text(&d, "current"), "p4ss");
    assert_eq!(text(&d, "token"), "t0k3n");
    assert_eq!(d["bin"], vec![0u8, 1, 2, 255, 254], "binary secrets byte for byte");
    assert_eq!(text(&d, "crt"), "CERT");
    assert_eq!(
        serde_json::from_slice::<Value>(&d["tags"])?,
        json!({"team": "a", "env": "prod"})
    );
    assert_eq!(text(&d, "team"), "a");
    assert_eq!(d.len(), 10);

    let d = secret_data(&ns, "extract").await?;
    assert_eq!(text(&d, "user"), "admin");
    assert_eq!(text(&d, "password"), "p4ss");
    assert_eq!(serde_json::from_slice::<Value>(&d["db"])?, json!({"host": "h1"}));
    assert_eq!(d.len(), 3);

    let d = secret_data(&ns, "find-name").await?;
    assert_eq!(d.keys().collect::<Vec<_>>(), ["app_tls", "app_token"]);
    assert_eq!(text(&d, "app_token"), "t0k3n");
    let d = secret_data(&ns, "find-tags").await?;
    assert_eq!(
        d.keys().collect::<Vec<_>>(),
        ["tagged_one", "tagged_two"],
        "exact tag match (team=ab is not team=a)"
    );
    assert_eq!(text(&d, "tagged_two"), "2");
    let d = secret_data(&ns, "find-path").await?;
    assert_eq!(d.keys().collect::<Vec<_>>(), ["tagged_one", "tagged_two"]);

    assert_eq!(text(&secret_data(&ns, "prefixed").await?, "token"), "t0k3n");
    for name in ["reads", "extract", "find-name", "find-tags", "find-path", "prefixed"] {
        es_condition(&ns, name, "synced", |s, _| s == "True").await?;
    }
    let (_, _, message) = es_condition(&ns, "missing", "not found", |s, _| s == "False").await?;
    assert!(
        message.contains(r#"secret "does-not-exist" does not exist"#),
        "{message}"
    );

    // Every Secrets Manager call was signed with the store's static key.
    let sm_calls: Vec<MotoRequest> = aws
        .moto
        .requests()?
        .into_iter()
        .filter(|r| r.service().as_deref() == Some("secretsmanager"))
        .collect();
    assert!(!sm_calls.is_empty());
    assert!(sm_calls.iter().all(|r| signed_with(r) == "AKIDSTATIC"));
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn rejected_credentials_and_denied_reads_become_clear_conditions() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-errors").await?;
    let aws = Aws2::start().await?;
    aws.create("app/db", "v", &[]).await?;
    let (id, secret) = aws.user("reader", "secretsmanager:*").await?;
    let (nid, nsecret) = aws.user("nobody", "sts:GetCallerIdentity").await?;
    key_secret(&ns, "good", &id, &secret).await?;
    key_secret(&ns, "wrong-secret", &id, "not-the-secret").await?;
    key_secret(&ns, "unknown-key", "AKIAUNKNOWN0000000", "x").await?;
    key_secret(&ns, "denied", &nid, &nsecret).await?;
    aws.enforce_auth().await?;

    let op = operator(&ns, &aws.moto, 4).await?;
    for (store, creds) in [
        ("good", "good"),
        ("wrong-secret", "wrong-secret"),
        ("unknown-key", "unknown-key"),
        ("denied", "denied"),
    ] {
        static_store(&ns, &op.class, store, creds, "").await?;
    }
    let (status, reason, _) = store_ready(&ns, "good").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"));
    let (status, reason, message) = store_ready(&ns, "wrong-secret").await?;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ValidationFailed"),
        "{message}"
    );
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    let (status, _, message) = store_ready(&ns, "unknown-key").await?;
    assert_eq!(status, "False");
    assert!(message.contains("InvalidClientTokenId"), "{message}");
    // Credentials that authenticate but may not list: the store is fine, reads say what is denied.
    let (status, _, _) = store_ready(&ns, "denied").await?;
    assert_eq!(status, "True");

    let ess: Api<ExternalSecret> = ns.api();
    for store in ["good", "wrong-secret", "denied"] {
        apply(
            &ess,
            &format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es-{store}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: {store}, kind: SecretStore}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: app/db}}}}\n"
            ),
        )
        .await?;
    }
    assert_eq!(text(&secret_data(&ns, "es-good").await?, "v"), "v");
    let (_, _, message) = es_condition(&ns, "es-wrong-secret", "store not ready", |s, _| s == "False").await?;
    assert!(
        message.contains("wrong-secret") && message.contains("not ready"),
        "{message}"
    );
    let (_, _, message) = es_condition(&ns, "es-denied", "access denied", |s, _| s == "False").await?;
    assert!(message.contains("access denied"), "{message}");
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn hundred_external_secrets_over_sixty_keys_batch_into_three_calls() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-batch").await?;
    let aws = Aws2::start().await?;
    for k in 0..60 {
        aws.create(&format!("batch/k{k:02}"), &format!("value-{k}"), &[])
            .await?;
    }
    key_secret(&ns, "creds", "AKIDSTATIC", "s").await?;
    // A first operator validates the store; the second starts with the store Ready and 100 ExternalSecrets
    // waiting, so all of them refresh together (as after a restart or a bulk apply).
    let op = operator(&ns, &aws.moto, 4).await?;
    static_store(&ns, &op.class, "aws", "creds", "").await?;
    store_ready(&ns, "aws").await?;
    let class = op.class.clone();
    op.stop().await;
    let ess: Api<ExternalSecret> = ns.api();
    for i in 0..100 {
        let k = i % 60;
        apply(
            &ess,
            &format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es-{i:03}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: aws, kind: SecretStore}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: batch/k{k:02}}}}}\n"
            ),
        )
        .await?;
    }
    aws.moto.clear_requests()?;
    let started = Instant::now();
    // The default window (50 ms, closing 10 ms after the latest read) holds such a burst on a quiet machine;
    // a loaded 2-core CI machine running other tests can stretch the gaps between the 100 reconciles' reads,
    // so this test gives the batcher a 1 s window (closing 200 ms after the latest read): same mechanism,
    // a bound that does not depend on the machine's load.
    let provider = Aws::with_endpoint(aws.moto.endpoint()).batch_window(Duration::from_secs(1));
    let op = operator_with(&ns, provider, 100, &class).await?;
    let secrets: Api<Secret> = ns.api();
    eventually(Duration::from_secs(120), "100 Secrets", || async {
        let n = secrets
            .list(&Default::default())
            .await
            .ok()?
            .items
            .iter()
            .filter(|s| s.metadata.name.as_deref().is_some_and(|n| n.starts_with("es-")))
            .count();
        (n == 100).then_some(())
    })
    .await?;
    let elapsed = started.elapsed();
    for i in [0, 37, 59, 60, 99] {
        assert_eq!(
            text(&secret_data(&ns, &format!("es-{i:03}")).await?, "v"),
            format!("value-{}", i % 60)
        );
    }
    let counts = aws.moto.counts()?;
    let batch = counts.get("BatchGetSecretValue").copied().unwrap_or(0);
    let single = counts.get("GetSecretValue").copied().unwrap_or(0);
    eprintln!("100 ExternalSecrets over 60 keys in {elapsed:?}: {counts:?}");
    assert!(batch <= 3, "at most ⌈60/20⌉ BatchGetSecretValue calls, got {counts:?}");
    // The store's first read may go alone: a store has one place until a call of it has answered, so that a hung
    // store holds one worker at start-up, not one per place (schedule::StoreGate).
    assert!(single <= 1, "{counts:?}");
    let ids: usize = aws
        .requests_of("BatchGetSecretValue")?
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).map(|b| b["SecretIdList"].as_array().map_or(0, Vec::len)))
        .sum::<Result<usize, _>>()?;
    assert_eq!(ids + single, 60, "each distinct key read once");
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn irsa_exchanges_a_real_service_account_token_once_for_many_external_secrets() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-irsa").await?;
    let aws = Aws2::start().await?;
    let role = aws.role("app", "secretsmanager:*").await?;
    for k in 0..5 {
        aws.create(&format!("irsa/k{k}"), &format!("v{k}"), &[]).await?;
    }
    let sas: Api<ServiceAccount> = ns.api();
    let sa: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "app", "annotations": {"eks.amazonaws.com/role-arn": role}}
    }))?;
    sas.create(&PostParams::default(), &sa).await?;
    aws.moto.clear_requests()?;

    let op = operator(&ns, &aws.moto, 8).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: irsa}}
spec:
  controller: {class}
  provider:
    aws:
      service: SecretsManager
      region: {REGION}
      auth:
        jwt:
          serviceAccountRef: {{name: app}}
"#,
            class = op.class
        ),
    )
    .await?;
    let (status, reason, message) = store_ready(&ns, "irsa").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"), "{message}");
    // A ServiceAccount without a role (and a store without one) cannot work: the store says why.
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "no-role"}}))?,
    )
    .await?;
    apply(
        &stores,
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: no-role}}\nspec:\n  controller: {}\n  provider:\n    aws:\n      service: SecretsManager\n      region: {REGION}\n      auth: {{jwt: {{serviceAccountRef: {{name: no-role}}}}}}\n",
            op.class
        ),
    )
    .await?;
    let (status, reason, message) = store_ready(&ns, "no-role").await?;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidProviderConfig"),
        "{message}"
    );
    assert!(message.contains("eks.amazonaws.com/role-arn"), "{message}");
    // From here on moto checks every signature and the role's policy: only STS's credentials can work.
    aws.enforce_auth().await?;
    let ess: Api<ExternalSecret> = ns.api();
    for i in 0..20 {
        apply(
            &ess,
            &format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es-{i:02}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: irsa, kind: SecretStore}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: irsa/k{}}}}}\n",
                i % 5
            ),
        )
        .await?;
    }
    for i in 0..20 {
        let d = secret_data(&ns, &format!("es-{i:02}")).await?;
        assert_eq!(text(&d, "v"), format!("v{}", i % 5));
    }

    // One exchange for the store validation and 20 ExternalSecrets.
    let exchanges = aws.requests_of("AssumeRoleWithWebIdentity")?;
    assert_eq!(exchanges.len(), 1, "{:?}", aws.moto.counts()?);
    let calls = &op.ctx().metrics.provider_calls;
    assert_eq!(
        calls
            .with_label_values(&["AWS/STS", "AssumeRoleWithWebIdentity", "success"])
            .get(),
        1
    );
    let x = &exchanges[0];
    assert_eq!(form_param(x, "RoleArn").as_deref(), Some(role.as_str()));
    assert_eq!(
        form_param(x, "RoleSessionName").as_deref(),
        Some("external-secrets-provider-aws")
    );
    // The token is a JWT the control plane issued for this ServiceAccount and STS's audience.
    let token = form_param(x, "WebIdentityToken").ok_or_else(|| anyhow!("no WebIdentityToken"))?;
    let payload = token.split('.').nth(1).ok_or_else(|| anyhow!("not a JWT: {token}"))?;
    let claims: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    assert_eq!(claims["sub"], format!("system:serviceaccount:{}:app", ns.name));
    assert_eq!(claims["aud"], json!(["sts.amazonaws.com"]));
    let discovery = ns
        .client
        .request_text(http::Request::get("/.well-known/openid-configuration").body(Vec::new())?)
        .await?;
    let issuer = serde_json::from_str::<Value>(&discovery)?["issuer"].clone();
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "app");
    // The reads were signed with the session STS handed out (moto enforced signatures and the role's policy).
    let reads: Vec<MotoRequest> = aws
        .moto
        .requests()?
        .into_iter()
        .filter(|r| r.service().as_deref() == Some("secretsmanager"))
        .collect();
    assert!(!reads.is_empty());
    for r in &reads {
        assert!(signed_with(r).starts_with("ASIA"), "{}", signed_with(r));
        assert!(header(r, "x-amz-security-token").is_some());
    }
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn role_chain_with_external_id_and_session_tags() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-chain").await?;
    let aws = Aws2::start().await?;
    let r1 = aws.role("hop", "sts:AssumeRole").await?;
    let r2 = aws.role("reader", "secretsmanager:*").await?;
    let (id, secret) = aws.user("ci", "sts:AssumeRole").await?;
    aws.create("chained", "through-two-roles", &[]).await?;
    key_secret(&ns, "creds", &id, &secret).await?;
    aws.enforce_auth().await?;
    aws.moto.clear_requests()?;

    let calls = Arc::new(Calls::default());
    let store = store_info(
        &ns.name,
        json!({"service": "SecretsManager", "region": REGION, "auth": static_auth("creds"),
               "additionalRoles": [r1], "role": r2, "externalID": "ext-1",
               "sessionTags": [{"key": "team", "value": "payments"}], "transitiveTagKeys": ["team"]}),
        None,
    )?;
    let client = Aws::with_endpoint(aws.moto.endpoint())
        .new_client(&store, &ctx(ns.client.clone(), &calls))
        .await?;
    assert_eq!(client.validate().await?, Validation::Ready);
    for _ in 0..5 {
        assert_eq!(get(client.as_ref(), "chained").await?, "through-two-roles");
    }
    let assumed = aws.requests_of("AssumeRole")?;
    assert_eq!(assumed.len(), 2, "each role assumed once for all reads");
    assert_eq!(form_param(&assumed[0], "RoleArn").as_deref(), Some(r1.as_str()));
    assert_eq!(signed_with(&assumed[0]), id, "the first hop signs with the static key");
    assert_eq!(form_param(&assumed[0], "ExternalId"), None);
    assert_eq!(form_param(&assumed[1], "RoleArn").as_deref(), Some(r2.as_str()));
    assert!(
        signed_with(&assumed[1]).starts_with("ASIA"),
        "the second hop signs with the first session"
    );
    assert_eq!(form_param(&assumed[1], "ExternalId").as_deref(), Some("ext-1"));
    assert_eq!(form_param(&assumed[1], "Tags.member.1.Key").as_deref(), Some("team"));
    assert_eq!(
        form_param(&assumed[1], "Tags.member.1.Value").as_deref(),
        Some("payments")
    );
    assert_eq!(
        form_param(&assumed[1], "TransitiveTagKeys.member.1").as_deref(),
        Some("team")
    );
    let hop_key = signed_with(&assumed[1]);
    for r in aws.requests_of("GetSecretValue")? {
        let k = signed_with(&r);
        assert!(
            k.starts_with("ASIA") && k != hop_key,
            "reads use the last session ({k})"
        );
    }
    assert_eq!(calls.get("AWS/STS", "AssumeRole"), 2);
    Ok(())
}

#[tokio::test]
async fn push_delete_and_exists_at_the_client_level() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-push").await?;
    let aws = Aws2::start().await?;
    key_secret(&ns, "creds", "AKIDSTATIC", "s").await?;
    aws.create("foreign", "not ours", &[]).await?;
    let calls = Arc::new(Calls::default());
    let provider = Aws::with_endpoint(aws.moto.endpoint());
    let forced = provider
        .new_client(
            &store_info(
                &ns.name,
                json!({"service": "SecretsManager", "region": REGION, "auth": static_auth("creds"),
                       "prefix": "pushed/", "secretsManager": {"forceDeleteWithoutRecovery": true}}),
                None,
            )?,
            &ctx(ns.client.clone(), &calls),
        )
        .await?;
    let windowed = provider
        .new_client(
            &store_info(
                &ns.name,
                json!({"service": "SecretsManager", "region": REGION, "auth": static_auth("creds"),
                       "secretsManager": {"recoveryWindowInDays": 7}}),
                None,
            )?,
            &ctx(ns.client.clone(), &calls),
        )
        .await?;
    let at = |key: &str, property: Option<&str>, metadata: Option<Value>| PushRef {
        remote_key: key.to_string(),
        property: property.map(str::to_string),
        metadata: metadata.map(|m| m.to_string()),
        secret_key: None,
    };

    // Create: binary by default, ESO's managed-by tag and description, ESO's first version id.
    forced
        .push_secret(&at("k1", None, None), &SecretValue::from("v1"))
        .await?;
    let d = aws.sm("DescribeSecret", json!({"SecretId": "pushed/k1"})).await?;
    assert!(
        d["Tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"Key": "managed-by", "Value": "external-secrets"})),
        "{d}"
    );
    assert_eq!(d["Description"], "secret 'managed-by:external-secrets'");
    let v = aws.sm("GetSecretValue", json!({"SecretId": "pushed/k1"})).await?;
    assert_eq!(
        v["SecretBinary"],
        base64::engine::general_purpose::STANDARD.encode("v1")
    );
    assert_eq!(v["VersionId"], "00000000-0000-0000-0000-000000000001");
    assert_eq!(get(forced.as_ref(), "k1").await?, "v1");
    // Unchanged value: nothing written; changed: a new version.
    aws.moto.clear_requests()?;
    forced
        .push_secret(&at("k1", None, None), &SecretValue::from("v1"))
        .await?;
    assert_eq!(aws.moto.count("PutSecretValue")?, 0);
    forced
        .push_secret(&at("k1", None, None), &SecretValue::from("v2"))
        .await?;
    assert_eq!(aws.moto.count("PutSecretValue")?, 1);
    assert_eq!(get(forced.as_ref(), "k1").await?, "v2");

    // Properties merge into one JSON secret.
    forced
        .push_secret(&at("k2", Some("user"), None), &SecretValue::from("admin"))
        .await?;
    forced
        .push_secret(&at("k2", Some("password"), None), &SecretValue::from("p"))
        .await?;
    assert_eq!(
        serde_json::from_str::<Value>(&get(forced.as_ref(), "k2").await?)?,
        json!({"user": "admin", "password": "p"})
    );

    // Metadata: string format, tags.
    let meta = json!({"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata",
                      "spec": {"secretPushFormat": "string", "tags": {"team": "a"}, "description": "mine"}});
    forced
        .push_secret(&at("k3", None, Some(meta.clone())), &SecretValue::from("text"))
        .await?;
    let v = aws.sm("GetSecretValue", json!({"SecretId": "pushed/k3"})).await?;
    assert_eq!(v["SecretString"], "text");
    let d = aws.sm("DescribeSecret", json!({"SecretId": "pushed/k3"})).await?;
    assert_eq!(d["Description"], "mine");
    assert!(
        d["Tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"Key": "team", "Value": "a"}))
    );

    // A secret syncret/ESO did not create is neither overwritten nor deleted.
    let err = windowed
        .push_secret(&at("foreign", None, None), &SecretValue::from("x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not managed by external-secrets"), "{err}");
    windowed.delete_secret(&at("foreign", None, None)).await?;
    assert_eq!(get(windowed.as_ref(), "foreign").await?, "not ours");

    // Exists.
    assert!(forced.secret_exists(&at("k1", None, None)).await?);
    assert!(forced.secret_exists(&at("k2", Some("user"), None)).await?);
    assert!(!forced.secret_exists(&at("k2", Some("nope"), None)).await?);
    assert!(!forced.secret_exists(&at("nope", None, None)).await?);

    // Deleting a property keeps the others; the last one takes the secret (forced: gone at once).
    forced.delete_secret(&at("k2", Some("user"), None)).await?;
    assert_eq!(get(forced.as_ref(), "k2").await?, r#"{"password":"p"}"#);
    aws.moto.clear_requests()?;
    forced.delete_secret(&at("k2", Some("password"), None)).await?;
    let del = aws.requests_of("DeleteSecret")?;
    assert_eq!(del.len(), 1);
    assert_eq!(
        serde_json::from_slice::<Value>(&del[0].body)?["ForceDeleteWithoutRecovery"],
        true
    );
    assert!(!forced.secret_exists(&at("k2", None, None)).await?);
    forced.delete_secret(&at("k2", None, None)).await?; // already gone: fine

    // With a recovery window the secret reads as absent, and pushing again restores it.
    windowed
        .push_secret(&at("k4", None, None), &SecretValue::from("a"))
        .await?;
    aws.moto.clear_requests()?;
    windowed.delete_secret(&at("k4", None, None)).await?;
    let del = aws.requests_of("DeleteSecret")?;
    assert_eq!(
        serde_json::from_slice::<Value>(&del[0].body)?["RecoveryWindowInDays"],
        7
    );
    let err = get(windowed.as_ref(), "k4").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    windowed
        .push_secret(&at("k4", None, None), &SecretValue::from("b"))
        .await?;
    assert_eq!(get(windowed.as_ref(), "k4").await?, "b");
    assert_eq!(calls.get("AWS/SecretsManager", "RestoreSecret"), 1);
    Ok(())
}

#[tokio::test]
async fn find_reads_matches_in_batches() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-find").await?;
    let aws = Aws2::start().await?;
    for k in 0..45 {
        aws.create(&format!("svc/{k:02}"), &format!("{k}"), &[("app", "svc")])
            .await?;
    }
    aws.create("other/x", "x", &[("app", "svc")]).await?;
    key_secret(&ns, "creds", "AKIDSTATIC", "s").await?;
    aws.moto.clear_requests()?;
    let calls = Arc::new(Calls::default());
    let client = Aws::with_endpoint(aws.moto.endpoint())
        .new_client(
            &store_info(
                &ns.name,
                json!({"service": "SecretsManager", "region": REGION, "auth": static_auth("creds")}),
                None,
            )?,
            &ctx(ns.client.clone(), &calls),
        )
        .await?;
    let found = client
        .get_all_secrets(&FindQuery {
            path: None,
            name: Some(regex::Regex::new("^svc/")?),
            tags: BTreeMap::new(),
        })
        .await?;
    assert_eq!(found.len(), 45);
    assert_eq!(found["svc/07"].as_str(), Some("7"));
    let counts = aws.moto.counts()?;
    assert_eq!(counts.get("ListSecrets"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("BatchGetSecretValue"), Some(&3), "⌈45/20⌉ reads: {counts:?}");
    assert_eq!(counts.get("GetSecretValue"), None, "{counts:?}");
    Ok(())
}

/// A server speaking just enough of the Secrets Manager JSON protocol to throttle: the first `throttle` calls
/// answer `ThrottlingException` (HTTP 400, `__type`), later ones a value. Records the time of each call.
struct Throttler {
    endpoint: String,
    hits: Arc<std::sync::Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Throttler {
    async fn start(throttle: usize) -> anyhow::Result<Throttler> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let hits = h.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = sock.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            continue;
                        }
                        buf.drain(..end + 4 + len);
                        hits.lock().unwrap().push(Instant::now());
                        let (status, body) = if seen.fetch_add(1, Ordering::SeqCst) < throttle {
                            (
                                "400 Bad Request",
                                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                            )
                        } else {
                            (
                                "200 OK",
                                r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:k-abcdef","Name":"k","SecretString":"finally","VersionId":"v1","VersionStages":["AWSCURRENT"]}"#,
                            )
                        };
                        let resp = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Throttler { endpoint, hits, task })
    }
}

impl Drop for Throttler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn throttling_is_retried_as_retry_settings_say() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-throttle").await?;
    key_secret(&ns, "creds", "AKIDSTATIC", "s").await?;
    let calls = Arc::new(Calls::default());
    let store = store_info(
        &ns.name,
        json!({"service": "SecretsManager", "region": REGION, "auth": static_auth("creds")}),
        Some(json!({"maxRetries": 2, "retryInterval": "300ms"})),
    )?;

    // Throttled twice, then an answer: 3 attempts 300 ms apart, one successful read.
    let server = Throttler::start(2).await?;
    let client = Aws::with_endpoint(&server.endpoint)
        .new_client(&store, &ctx(ns.client.clone(), &calls))
        .await?;
    assert_eq!(get(client.as_ref(), "k").await?, "finally");
    let hits = server.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 3);
    for w in hits.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(280) && gap < Duration::from_secs(3),
            "{gap:?}"
        );
    }

    // Always throttled: 1 + maxRetries attempts, then Throttled with the interval as the wait.
    let server = Throttler::start(usize::MAX).await?;
    let client = Aws::with_endpoint(&server.endpoint)
        .new_client(&store, &ctx(ns.client.clone(), &calls))
        .await?;
    let err = get(client.as_ref(), "k").await.unwrap_err();
    assert!(matches!(err, ProviderError::Throttled { .. }), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_millis(300)));
    assert_eq!(server.hits.lock().unwrap().len(), 3);
    Ok(())
}

/// Environment of the child process of [`default_chain_from_the_operator_environment`].
const CHILD: &str = "SYNCRET_AWS_AMBIENT_CHILD";

/// Runs in a child process only (it needs its own environment): reads `ambient` with a store that has no auth.
#[tokio::test]
async fn ambient_child() -> anyhow::Result<()> {
    let Ok(endpoint) = std::env::var(CHILD) else {
        return Ok(());
    };
    // No Kubernetes call is made without auth refs: a client to nowhere will do.
    let kube = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse()?))?;
    let calls = Arc::new(Calls::default());
    let store = store_info("default", json!({"service": "SecretsManager", "region": REGION}), None)?;
    // The pod's own credentials: refused for a namespaced SecretStore by default, used with the opt-in.
    let refused = Aws::with_endpoint(&endpoint)
        .new_client(&store, &ctx(kube.clone(), &calls))
        .await
        .err()
        .expect("refused without the opt-in");
    assert!(
        refused
            .to_string()
            .starts_with("spec.provider.aws.auth: the operator pod's AWS credentials"),
        "{refused}"
    );
    let mut opted_in = ctx(kube, &calls);
    opted_in.policy = Arc::new(syncret_providers::TenantPolicy {
        namespaced_operator_identity: true,
        ..syncret_tests::operator::loopback_allowed()
    });
    let client = Aws::with_endpoint(&endpoint).new_client(&store, &opted_in).await?;
    assert_eq!(get(client.as_ref(), "ambient").await?, "from-the-pod");
    Ok(())
}

fn run_child(endpoint: &str, env: &[(&str, &str)]) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--exact",
        "provider_aws::ambient_child",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env(CHILD, endpoint)
        .env("AWS_CONFIG_FILE", "/nonexistent/syncret-aws-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/syncret-aws-credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!(
            "child failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[tokio::test]
async fn default_chain_from_the_operator_environment() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("aws-ambient").await?;
    let aws = Aws2::start().await?;
    aws.create("ambient", "from-the-pod", &[]).await?;
    let endpoint = aws.moto.endpoint().to_string();

    // Keys in the environment.
    aws.moto.clear_requests()?;
    let ep = endpoint.clone();
    tokio::task::spawn_blocking(move || {
        run_child(
            &ep,
            &[("AWS_ACCESS_KEY_ID", "AKIDFROMENV"), ("AWS_SECRET_ACCESS_KEY", "s")],
        )
    })
    .await??;
    let reads = aws.requests_of("GetSecretValue")?;
    assert_eq!(reads.len(), 1);
    assert_eq!(signed_with(&reads[0]), "AKIDFROMENV");

    // IRSA of the operator pod: EKS's web-identity token file and role (a real token of this control plane).
    let sas: Api<ServiceAccount> = ns.api();
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "operator"}}))?;
    sas.create(&PostParams::default(), &sa).await?;
    let creds = syncret_providers::Credentials {
        client: ns.client.clone(),
        scope: StoreScope::SecretStore,
        store_namespace: Some(ns.name.clone()),
        referent_namespace: None,
    };
    let token = creds
        .service_account_token(
            &syncret_crds::meta::ServiceAccountSelector {
                name: "operator".into(),
                namespace: None,
                audiences: vec![],
            },
            &["sts.amazonaws.com"],
            600,
            "test",
        )
        .await?;
    let dir = std::env::temp_dir().join(syncret_tests::unique_name("aws-token"));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("token");
    std::fs::write(&file, token.0.as_bytes())?;
    aws.moto.clear_requests()?;
    let ep = endpoint.clone();
    let file_s = file.display().to_string();
    let role = format!("arn:aws:iam::{}:role/operator", Moto::ACCOUNT_ID);
    let role_c = role.clone();
    tokio::task::spawn_blocking(move || {
        run_child(
            &ep,
            &[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", file_s.as_str()),
                ("AWS_ROLE_ARN", role_c.as_str()),
                ("AWS_ENDPOINT_URL", ep.as_str()),
            ],
        )
    })
    .await??;
    let _ = std::fs::remove_dir_all(&dir);
    let exchanges = aws.requests_of("AssumeRoleWithWebIdentity")?;
    assert_eq!(exchanges.len(), 1, "{:?}", aws.moto.counts()?);
    assert_eq!(form_param(&exchanges[0], "RoleArn").as_deref(), Some(role.as_str()));
    assert_eq!(
        form_param(&exchanges[0], "WebIdentityToken").as_deref(),
        Some(token.0.as_str())
    );
    let reads = aws.requests_of("GetSecretValue")?;
    assert!(signed_with(&reads[0]).starts_with("ASIA"));
    Ok(())
}
