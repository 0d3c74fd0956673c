//! The AWS Parameter Store provider (`service: ParameterStore`) against moto and the test control plane.
//!
//! - End to end through syncret: every read form (String, SecureString decrypted, StringList, property and gjson
//!   path, version number and label, metadataPolicy Fetch, extract, find by path + name and by tags, prefix,
//!   a missing parameter), the store's status, and `CertificateManager` refused with a condition that says so;
//! - batching: a refresh of 50 ExternalSecrets reading 50 parameters through one store makes at most
//!   ⌈50/10⌉ = 5 `GetParameters` calls (moto's request log), after a restart and after a store change;
//! - IRSA: a real ServiceAccount token exchanged once, the SSM calls signed with the session (moto checking
//!   SigV4 and IAM);
//! - PushSecret put / delete / exists at the client level, ownership by ESO's `managed-by` tag.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::aws::Aws;
use syncret_providers::{FindQuery, Provider, PushRef, SecretValue};
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml as apply, eventually};

use super::provider_aws::{
    Aws2, Calls, REGION, auth_header, ctx, es_condition, get, key_secret, keys_store, operator, operator_with,
    secret_data, signed_with, static_auth, store_info, store_ready, text,
};

impl Aws2 {
    /// A Parameter Store call (JSON protocol, unsigned: made while moto does not check signatures).
    async fn ssm(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(self.moto.endpoint())
            .header("X-Amz-Target", format!("AmazonSSM.{op}"))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("Authorization", auth_header("ssm"))
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "{op}: {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    async fn put_parameter(&self, name: &str, value: &str, kind: &str, tags: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut body = json!({"Name": name, "Value": value, "Type": kind});
        if !tags.is_empty() {
            body["Tags"] = tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
        }
        self.ssm("PutParameter", body).await?;
        Ok(())
    }

    async fn parameter(&self, name: &str) -> anyhow::Result<Value> {
        Ok(self
            .ssm("GetParameter", json!({"Name": name, "WithDecryption": true}))
            .await?["Parameter"]
            .clone())
    }

    async fn parameter_tags(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let v = self
            .ssm(
                "ListTagsForResource",
                json!({"ResourceType": "Parameter", "ResourceId": name}),
            )
            .await?;
        Ok(v["TagList"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .map(|t| {
                        (
                            t["Key"].as_str().unwrap_or_default().to_string(),
                            t["Value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// A SecretStore `name` for Parameter Store with static keys from Secret `creds` and extra provider fields.
async fn ps_store(ns: &TestNamespace, class: &str, name: &str, creds: &str, extra: &str) -> anyhow::Result<()> {
    keys_store(ns, class, name, "ParameterStore", creds, extra).await
}

fn es(name: &str, store: &str, body: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: {store}, kind: SecretStore}}\n  target: {{name: {name}}}\n{body}"
    )
}

#[tokio::test]
async fn every_read_form_end_to_end() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("ssm-reads").await?;
    let aws = Aws2::start().await?;
    aws.put_parameter(
        "/app/db",
        r#"{"user":"admin","password":"old"}"#,
        "SecureString",
        &[("team", "a")],
    )
    .await?;
    aws.ssm(
        "PutParameter",
        json!({"Name": "/app/db", "Value": r#"{"user":"admin","password":"p4ss","db":{"host":"h1"},"tls.crt":"CERT"}"#,
               "Type": "SecureString", "Overwrite": true}),
    )
    .await?;
    aws.ssm(
        "LabelParameterVersion",
        json!({"Name": "/app/db", "ParameterVersion": 1, "Labels": ["previous"]}),
    )
    .await?;
    aws.put_parameter("/app/token", "t0k3n", "String", &[]).await?;
    aws.put_parameter("/app/hosts", "a.example,b.example", "StringList", &[])
        .await?;
    aws.put_parameter("/svc/one", "1", "String", &[("app", "svc"), ("env", "prod")])
        .await?;
    aws.put_parameter("/svc/two", "2", "SecureString", &[("app", "svc"), ("env", "dev")])
        .await?;
    aws.put_parameter("/svc/nested/three", "3", "String", &[("app", "svcx")])
        .await?;
    key_secret(&ns, "creds", "AKIDSTATIC", "static-secret").await?;
    aws.moto.clear_requests()?;

    let op = operator(&ns, &aws.moto, 4).await?;
    ps_store(&ns, &op.class, "ssm", "creds", "").await?;
    ps_store(&ns, &op.class, "prefixed", "creds", "      prefix: /app/\n").await?;
    let (status, reason, _) = store_ready(&ns, "ssm").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"));
    let stores: Api<SecretStore> = ns.api();
    let caps = serde_json::to_value(stores.get("ssm").await?)?["status"]["capabilities"].clone();
    assert_eq!(caps, "ReadWrite");

    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        &es(
            "reads",
            "ssm",
            r#"  data:
  - {secretKey: password, remoteRef: {key: /app/db, property: password}}
  - {secretKey: host, remoteRef: {key: /app/db, property: db.host}}
  - {secretKey: crt, remoteRef: {key: /app/db, property: tls.crt}}
  - {secretKey: v1, remoteRef: {key: /app/db, version: "1", property: password}}
  - {secretKey: label, remoteRef: {key: /app/db, version: previous, property: password}}
  - {secretKey: token, remoteRef: {key: /app/token}}
  - {secretKey: hosts, remoteRef: {key: /app/hosts}}
  - {secretKey: tags, remoteRef: {key: /app/db, metadataPolicy: Fetch}}
  - {secretKey: team, remoteRef: {key: /app/db, metadataPolicy: Fetch, property: team}}
"#,
        ),
    )
    .await?;
    apply(
        &ess,
        &es("extract", "ssm", "  dataFrom:\n  - extract: {key: /app/db}\n"),
    )
    .await?;
    apply(
        &ess,
        &es(
            "find-path",
            "ssm",
            "  dataFrom:\n  - find: {path: /svc, name: {regexp: 'o'}}\n",
        ),
    )
    .await?;
    apply(
        &ess,
        &es("find-tags", "ssm", "  dataFrom:\n  - find: {tags: {app: svc}}\n"),
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
            "ssm",
            "  data:\n  - {secretKey: x, remoteRef: {key: /does/not/exist}}\n",
        ),
    )
    .await?;
    apply(
        &ess,
        &es(
            "missing-version",
            "ssm",
            "  data:\n  - {secretKey: x, remoteRef: {key: /app/db, version: \"9\"}}\n",
        ),
    )
    .await?;

    let d = secret_data(&ns, "reads").await?;
    assert_eq!(text(&d, "password"), "p4ss", "SecureString, decrypted");
    assert_eq!(text(&d, "host"), "h1");
    assert_eq!(text(&d, "crt"), "CERT", "a property with a dot is a key first");
    assert_eq!(text(&d, "v1"), "old");
    assert_eq!(text(&d, "label"), "old");
    assert_eq!(text(&d, "token"), "t0k3n");
    assert_eq!(text(&d, "hosts"), "a.example,b.example", "a StringList as its text");
    assert_eq!(serde_json::from_slice::<Value>(&d["tags"])?, json!({"team": "a"}));
    assert_eq!(text(&d, "team"), "a");
    assert_eq!(d.len(), 9);

    let d = secret_data(&ns, "extract").await?;
    assert_eq!(text(&d, "user"), "admin");
    assert_eq!(text(&d, "password"), "p4ss");
    assert_eq!(serde_json::from_slice::<Value>(&d["db"])?, json!({"host": "h1"}));

    let d = secret_data(&ns, "find-path").await?;
    assert_eq!(
        d.keys().collect::<Vec<_>>(),
        ["_svc_one", "_svc_two"],
        "recursive under /svc, names matching 'o'"
    );
    assert_eq!(text(&d, "_svc_two"), "2");
    let d = secret_data(&ns, "find-tags").await?;
    assert_eq!(
        d.keys().collect::<Vec<_>>(),
        ["_svc_one", "_svc_two"],
        "exact tag match (app=svcx is not app=svc)"
    );
    assert_eq!(text(&secret_data(&ns, "prefixed").await?, "token"), "t0k3n");
    for name in ["reads", "extract", "find-path", "find-tags", "prefixed"] {
        es_condition(&ns, name, "synced", |s, _| s == "True").await?;
    }
    let (_, _, message) = es_condition(&ns, "missing", "not found", |s, _| s == "False").await?;
    assert!(
        message.contains(r#"secret "/does/not/exist" does not exist"#),
        "{message}"
    );
    let (_, _, message) = es_condition(&ns, "missing-version", "not found", |s, _| s == "False").await?;
    assert!(message.contains(r#"secret "/app/db" does not exist"#), "{message}");

    // Every SSM call was signed with the store's static key, and every read asked for decryption.
    let requests = aws.moto.requests()?;
    let ssm: Vec<_> = requests
        .iter()
        .filter(|r| r.service().as_deref() == Some("AmazonSSM"))
        .collect();
    assert!(!ssm.is_empty());
    assert!(ssm.iter().all(|r| signed_with(r) == "AKIDSTATIC"));
    for r in ssm.iter().filter(|r| {
        matches!(
            r.operation().as_deref(),
            Some("GetParameter" | "GetParameters" | "GetParametersByPath")
        )
    }) {
        assert_eq!(serde_json::from_slice::<Value>(&r.body)?["WithDecryption"], true);
    }
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn certificate_manager_is_refused_with_a_condition_that_says_so() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("acm").await?;
    let aws = Aws2::start().await?;
    key_secret(&ns, "creds", "AKIDSTATIC", "s").await?;
    let op = operator(&ns, &aws.moto, 2).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: acm}}\nspec:\n  controller: {}\n  provider:\n    aws: {{service: CertificateManager, region: {REGION}}}\n",
            op.class
        ),
    )
    .await?;
    let (status, reason, message) = store_ready(&ns, "acm").await?;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidProviderConfig"));
    assert!(
        message.contains("spec.provider.aws.service: CertificateManager is not supported by syncret"),
        "{message}"
    );
    assert_eq!(aws.moto.requests()?.len(), 0, "nothing was called");
    op.stop().await;
    Ok(())
}

/// Waits until the 50 target Secrets hold the values of the parameters (`round` in them).
async fn fifty_synced(ns: &TestNamespace, round: &str) -> anyhow::Result<()> {
    let secrets: Api<Secret> = ns.api();
    eventually(
        Duration::from_secs(120),
        &format!("50 Secrets of round {round}"),
        || async {
            let list = secrets.list(&Default::default()).await.ok()?;
            let n = list
                .items
                .iter()
                .filter(|s| {
                    s.metadata.name.as_deref().is_some_and(|n| n.starts_with("es-"))
                        && s.data
                            .as_ref()
                            .and_then(|d| d.get("v"))
                            .is_some_and(|v| String::from_utf8_lossy(&v.0).starts_with(round))
                })
                .count();
            (n == 50).then_some(())
        },
    )
    .await
}

/// (GetParameters calls, names in them, GetParameter calls) in moto's log.
fn read_counts(aws: &Aws2) -> anyhow::Result<(usize, usize, usize)> {
    let batches = aws.requests_of("GetParameters")?;
    let names = batches
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).map(|b| b["Names"].as_array().map_or(0, Vec::len)))
        .sum::<Result<usize, _>>()?;
    Ok((batches.len(), names, aws.requests_of("GetParameter")?.len()))
}

#[tokio::test]
async fn fifty_external_secrets_refresh_with_at_most_five_get_parameters_calls() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("ssm-batch").await?;
    let aws = Aws2::start().await?;
    for k in 0..50 {
        aws.put_parameter(&format!("/batch/p{k:02}"), &format!("a-{k}"), "SecureString", &[])
            .await?;
    }
    key_secret(&ns, "creds", "AKIDSTATIC", "s").await?;
    // A first operator validates the store; the second starts with the store Ready and 50 ExternalSecrets
    // waiting, so all of them read together (as after a restart or a bulk apply).
    let op = operator(&ns, &aws.moto, 4).await?;
    ps_store(&ns, &op.class, "ssm", "creds", "").await?;
    store_ready(&ns, "ssm").await?;
    let class = op.class.clone();
    op.stop().await;
    let ess: Api<ExternalSecret> = ns.api();
    for i in 0..50 {
        apply(
            &ess,
            &format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es-{i:02}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: ssm, kind: SecretStore}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: /batch/p{i:02}}}}}\n"
            ),
        )
        .await?;
    }
    aws.moto.clear_requests()?;
    // As in the Secrets Manager batching test: a 1 s window (closing 200 ms after the latest read) so that a
    // loaded CI machine cannot stretch the burst into more batches; the mechanism is the default one.
    let provider = Aws::with_endpoint(aws.moto.endpoint()).batch_window(Duration::from_secs(1));
    let op = operator_with(&ns, provider, 50, &class).await?;
    fifty_synced(&ns, "a-").await?;
    let (calls, names, single) = read_counts(&aws)?;
    eprintln!(
        "restart: 50 ExternalSecrets over 50 parameters: {calls} GetParameters ({names} names), {single} GetParameter"
    );
    assert!(calls <= 5, "at most ⌈50/10⌉ GetParameters calls, got {calls}");
    // The store's first read may go alone: a store has one place until a call of it has answered, so that a hung
    // store holds one worker at start-up, not one per place (schedule::StoreGate). Once it has, every read batches
    // (the refresh below).
    assert!(single <= 1, "{single} GetParameter calls");
    assert_eq!(names + single, 50, "each parameter read once");
    assert_eq!(
        aws.requests_of("GetParameters")?
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).map(|b| b["Names"].as_array().map_or(0, Vec::len)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .max(),
        Some(10),
        "never more than 10 names a call"
    );

    // A refresh of all 50: the store changes (a new generation wakes every ExternalSecret using it).
    for k in 0..50 {
        aws.ssm(
            "PutParameter",
            json!({"Name": format!("/batch/p{k:02}"), "Value": format!("b-{k}"), "Type": "SecureString", "Overwrite": true}),
        )
        .await?;
    }
    aws.moto.clear_requests()?;
    let stores: Api<SecretStore> = ns.api();
    stores
        .patch(
            "ssm",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"refreshInterval": 3600}})),
        )
        .await?;
    fifty_synced(&ns, "b-").await?;
    let (calls, names, single) = read_counts(&aws)?;
    eprintln!(
        "store change: 50 ExternalSecrets over 50 parameters: {calls} GetParameters ({names} names), {single} GetParameter"
    );
    assert!(calls <= 5, "at most ⌈50/10⌉ GetParameters calls, got {calls}");
    assert_eq!(names, 50);
    assert_eq!(single, 0);
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn irsa_signs_parameter_store_calls_with_the_web_identity_session() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("ssm-irsa").await?;
    let aws = Aws2::start().await?;
    aws.put_parameter("/irsa/db", "from-irsa", "SecureString", &[]).await?;
    let role = aws.role("ssm-reader", "ssm:*").await?;
    let sas: Api<ServiceAccount> = ns.api();
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "app", "annotations": {"eks.amazonaws.com/role-arn": role}}}),
        )?,
    )
    .await?;
    aws.moto.clear_requests()?;
    let op = operator(&ns, &aws.moto, 4).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: irsa}}\nspec:\n  controller: {}\n  provider:\n    aws:\n      service: ParameterStore\n      region: {REGION}\n      auth: {{jwt: {{serviceAccountRef: {{name: app}}}}}}\n",
            op.class
        ),
    )
    .await?;
    let (status, _, message) = store_ready(&ns, "irsa").await?;
    assert_eq!(status, "True", "{message}");
    // Logged in (moto does not check the unsigned AssumeRoleWithWebIdentity): from now on moto checks every
    // signature and IAM policy, so the reads below work only when signed with the STS session.
    aws.enforce_auth().await?;
    let ess: Api<ExternalSecret> = ns.api();
    for i in 0..5 {
        apply(
            &ess,
            &es(
                &format!("irsa-{i}"),
                "irsa",
                "  data:\n  - {secretKey: v, remoteRef: {key: /irsa/db}}\n",
            ),
        )
        .await?;
    }
    for i in 0..5 {
        assert_eq!(text(&secret_data(&ns, &format!("irsa-{i}")).await?, "v"), "from-irsa");
    }
    assert_eq!(
        aws.requests_of("AssumeRoleWithWebIdentity")?.len(),
        1,
        "one login for the store"
    );
    let ssm: Vec<_> = aws
        .moto
        .requests()?
        .into_iter()
        .filter(|r| r.service().as_deref() == Some("AmazonSSM"))
        .collect();
    assert!(!ssm.is_empty());
    assert!(
        ssm.iter().all(|r| signed_with(r).starts_with("ASIA")),
        "signed with the STS session"
    );
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn push_delete_and_exists_at_the_client_level() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("ssm-push").await?;
    let aws = Aws2::start().await?;
    key_secret(&ns, "creds", "AKIDSTATIC", "s").await?;
    aws.put_parameter("/pushed/foreign", "not ours", "String", &[]).await?;
    let calls = Arc::new(Calls::default());
    let client = Aws::with_endpoint(aws.moto.endpoint())
        .new_client(
            &store_info(
                &ns.name,
                json!({"service": "ParameterStore", "region": REGION, "auth": static_auth("creds"), "prefix": "/pushed/"}),
                None,
            )?,
            &ctx(ns.client.clone(), &calls),
        )
        .await?;
    let client = client.as_ref();
    let at = |key: &str, property: Option<&str>, metadata: Option<Value>, secret_key: Option<&str>| PushRef {
        remote_key: key.to_string(),
        property: property.map(str::to_string),
        metadata: metadata.map(|m| m.to_string()),
        secret_key: secret_key.map(str::to_string),
    };
    let meta = |spec: Value| json!({"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata", "spec": spec});

    // Create: a String with ESO's managed-by tag and description.
    client
        .push_secret(&at("k1", None, None, Some("a")), &SecretValue::from("v1"))
        .await?;
    let p = aws.parameter("/pushed/k1").await?;
    assert_eq!((p["Value"].as_str(), p["Type"].as_str()), (Some("v1"), Some("String")));
    assert_eq!(
        aws.parameter_tags("/pushed/k1")
            .await?
            .get("managed-by")
            .map(String::as_str),
        Some("external-secrets")
    );
    let described = aws
        .ssm(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": ["/pushed/k1"]}]}),
        )
        .await?;
    assert_eq!(
        described["Parameters"][0]["Description"],
        "secret 'managed-by:external-secrets'"
    );
    assert_eq!(get(client, "k1").await?, "v1");
    // Unchanged value: nothing written; changed: overwritten.
    aws.moto.clear_requests()?;
    client
        .push_secret(&at("k1", None, None, Some("a")), &SecretValue::from("v1"))
        .await?;
    assert_eq!(aws.moto.count("PutParameter")?, 0);
    client
        .push_secret(&at("k1", None, None, Some("a")), &SecretValue::from("v2"))
        .await?;
    assert_eq!(aws.moto.count("PutParameter")?, 1);
    assert_eq!(get(client, "k1").await?, "v2");
    assert_eq!(aws.parameter("/pushed/k1").await?["Version"], 2);

    // SecureString with tags (reconciled on later pushes), StringList, the Advanced tier.
    client
        .push_secret(
            &at(
                "k2",
                None,
                Some(meta(
                    json!({"secretType": "SecureString", "tags": {"team": "a", "old": "x"}}),
                )),
                Some("a"),
            ),
            &SecretValue::from("s3cr3t"),
        )
        .await?;
    assert_eq!(aws.parameter("/pushed/k2").await?["Type"], "SecureString");
    assert_eq!(get(client, "k2").await?, "s3cr3t");
    client
        .push_secret(
            &at(
                "k2",
                None,
                Some(meta(json!({"secretType": "SecureString", "tags": {"team": "b"}}))),
                Some("a"),
            ),
            &SecretValue::from("s3cr3t"),
        )
        .await?;
    let tags = aws.parameter_tags("/pushed/k2").await?;
    assert_eq!(
        tags,
        [("managed-by", "external-secrets"), ("team", "b")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        "tags follow the metadata"
    );
    client
        .push_secret(
            &at(
                "k3",
                None,
                Some(meta(json!({"secretType": "StringList", "tier": {"type": "Advanced"}}))),
                Some("a"),
            ),
            &SecretValue::from("x,y"),
        )
        .await?;
    let p = aws.parameter("/pushed/k3").await?;
    assert_eq!(p["Type"], "StringList");
    let put = aws.requests_of("PutParameter")?;
    let last: Value = serde_json::from_slice(&put[put.len() - 1].body)?;
    assert_eq!(last["Tier"], "Advanced");

    // A whole Secret (no secretKey): ESO's JSON with base64 values, or as is with encodeAsDecoded.
    let whole = SecretValue::from(r#"{"password":"p","user":"u"}"#);
    client.push_secret(&at("whole", None, None, None), &whole).await?;
    assert_eq!(get(client, "whole").await?, r#"{"password":"cA==","user":"dQ=="}"#);
    client
        .push_secret(
            &at("decoded", None, Some(meta(json!({"encodeAsDecoded": true}))), None),
            &whole,
        )
        .await?;
    assert_eq!(get(client, "decoded").await?, r#"{"password":"p","user":"u"}"#);

    // Properties merge into one JSON parameter.
    client
        .push_secret(&at("k4", Some("user"), None, Some("a")), &SecretValue::from("admin"))
        .await?;
    client
        .push_secret(&at("k4", Some("password"), None, Some("a")), &SecretValue::from("p"))
        .await?;
    assert_eq!(
        serde_json::from_str::<Value>(&get(client, "k4").await?)?,
        json!({"user": "admin", "password": "p"})
    );

    // A parameter syncret/ESO did not create is neither overwritten nor deleted.
    let err = client
        .push_secret(&at("foreign", None, None, Some("a")), &SecretValue::from("x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not managed by external-secrets"), "{err}");
    assert!(!err.invalidates_client(), "a refusal is not a credentials problem");
    client.delete_secret(&at("foreign", None, None, None)).await?;
    assert_eq!(get(client, "foreign").await?, "not ours");

    // Exists.
    assert!(client.secret_exists(&at("k1", None, None, None)).await?);
    assert!(client.secret_exists(&at("k4", Some("user"), None, None)).await?);
    assert!(!client.secret_exists(&at("k4", Some("nope"), None, None)).await?);
    assert!(!client.secret_exists(&at("nope", None, None, None)).await?);

    // Deleting a property keeps the others; the last one takes the parameter.
    client.delete_secret(&at("k4", Some("user"), None, None)).await?;
    assert_eq!(get(client, "k4").await?, r#"{"password":"p"}"#);
    aws.moto.clear_requests()?;
    client.delete_secret(&at("k4", Some("password"), None, None)).await?;
    assert_eq!(aws.moto.count("DeleteParameter")?, 1);
    assert!(!client.secret_exists(&at("k4", None, None, None)).await?);
    client.delete_secret(&at("k4", None, None, None)).await?; // already gone: fine
    client.delete_secret(&at("k1", None, None, None)).await?;
    assert!(get(client, "k1").await.unwrap_err().is_not_found());
    assert_eq!(calls.get("AWS/ParameterStore", "DeleteParameter"), 2);
    Ok(())
}

#[tokio::test]
async fn find_by_tags_reads_matches_in_batches_of_ten() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("ssm-find").await?;
    let aws = Aws2::start().await?;
    for k in 0..25 {
        aws.put_parameter(&format!("/svc/{k:02}"), &format!("{k}"), "String", &[("app", "svc")])
            .await?;
    }
    aws.put_parameter("/other/x", "x", "String", &[("app", "other")])
        .await?;
    key_secret(&ns, "creds", "AKIDSTATIC", "s").await?;
    aws.moto.clear_requests()?;
    let calls = Arc::new(Calls::default());
    let client = Aws::with_endpoint(aws.moto.endpoint())
        .new_client(
            &store_info(
                &ns.name,
                json!({"service": "ParameterStore", "region": REGION, "auth": static_auth("creds")}),
                None,
            )?,
            &ctx(ns.client.clone(), &calls),
        )
        .await?;
    let found = client
        .get_all_secrets(&FindQuery {
            path: None,
            name: None,
            tags: [("app".to_string(), "svc".to_string())].into(),
        })
        .await?;
    assert_eq!(found.len(), 25);
    assert_eq!(found["/svc/07"].as_str(), Some("7"));
    let counts = aws.moto.counts()?;
    assert_eq!(counts.get("GetParameters"), Some(&3), "⌈25/10⌉ reads: {counts:?}");
    assert_eq!(counts.get("GetParameter"), None, "{counts:?}");
    // By path: the values come with the listing (10 a page), no reads.
    aws.moto.clear_requests()?;
    let found = client
        .get_all_secrets(&FindQuery {
            path: Some("/svc".into()),
            name: Some(regex::Regex::new("/1")?),
            tags: BTreeMap::new(),
        })
        .await?;
    assert_eq!(found.len(), 10, "/svc/10../svc/19");
    let counts = aws.moto.counts()?;
    assert_eq!(counts.get("GetParametersByPath"), Some(&3), "{counts:?}");
    assert_eq!(counts.get("GetParameters"), None, "{counts:?}");
    Ok(())
}
