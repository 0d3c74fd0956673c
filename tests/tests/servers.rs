//! Smoke tests of the provider API servers: each starts its server and makes real calls over plain HTTP, then
//! checks the request counting the provider tests rely on.
use serde_json::{Value, json};
use syncret_tests::servers::{Moto, OpenBao};

/// A Secrets Manager JSON-protocol call. moto does not check signatures unless IAM enforcement is switched on,
/// but it needs the credential scope of an `Authorization` header to know region and service.
async fn secretsmanager(http: &reqwest::Client, moto: &Moto, op: &str, body: Value) -> anyhow::Result<Value> {
    let resp = http
        .post(moto.endpoint())
        .header("X-Amz-Target", format!("secretsmanager.{op}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, \
             SignedHeaders=host, Signature=00",
        )
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(status.is_success(), "{op}: {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}

#[tokio::test]
async fn moto_serves_secrets_manager_and_sts_and_counts_requests() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    let http = reqwest::Client::new();

    secretsmanager(
        &http,
        &moto,
        "CreateSecret",
        json!({"Name": "app/db", "SecretString": "{\"user\":\"a\"}"}),
    )
    .await?;
    secretsmanager(
        &http,
        &moto,
        "PutSecretValue",
        json!({"SecretId": "app/db", "SecretString": "{\"user\":\"b\"}"}),
    )
    .await?;
    let got = secretsmanager(&http, &moto, "GetSecretValue", json!({"SecretId": "app/db"})).await?;
    assert_eq!(got["SecretString"], "{\"user\":\"b\"}");
    let prev = secretsmanager(
        &http,
        &moto,
        "GetSecretValue",
        json!({"SecretId": "app/db", "VersionStage": "AWSPREVIOUS"}),
    )
    .await?;
    assert_eq!(prev["SecretString"], "{\"user\":\"a\"}");
    let batch = secretsmanager(
        &http,
        &moto,
        "BatchGetSecretValue",
        json!({"SecretIdList": ["app/db", "missing"]}),
    )
    .await?;
    assert_eq!(batch["SecretValues"].as_array().map(Vec::len), Some(1));
    assert_eq!(batch["Errors"][0]["ErrorCode"], "ResourceNotFoundException");

    // STS speaks the query protocol: the operation is the form's Action.
    let resp = http
        .post(moto.endpoint())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
        )
        .body(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=syncret\
             &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapp&WebIdentityToken=not-checked",
        )
        .send()
        .await?;
    assert!(
        resp.status().is_success(),
        "AssumeRoleWithWebIdentity: {}",
        resp.status()
    );
    assert!(resp.text().await?.contains("<AccessKeyId>"));

    assert_eq!(moto.count("GetSecretValue")?, 2);
    assert_eq!(moto.count("BatchGetSecretValue")?, 1);
    assert_eq!(moto.count("AssumeRoleWithWebIdentity")?, 1);
    let reqs = moto.requests()?;
    assert_eq!(reqs.len(), 6, "{:?}", moto.counts()?);
    assert_eq!(reqs[0].service().as_deref(), Some("secretsmanager"));
    assert_eq!(reqs[5].service().as_deref(), Some("sts"));

    moto.clear_requests()?;
    secretsmanager(
        &http,
        &moto,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": ["app/"]}]}),
    )
    .await?;
    assert_eq!(moto.counts()?, [("ListSecrets".to_string(), 1)].into());
    Ok(())
}

async fn bao(
    http: &reqwest::Client,
    vault: &OpenBao,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut req = http
        .request(method, format!("{}/v1/{path}", vault.addr()))
        .header("X-Vault-Token", vault.root_token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(status.is_success(), "{path}: {status}: {text}");
    Ok(if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

#[tokio::test]
async fn openbao_serves_kv_v2_enables_auth_methods_and_counts_requests() -> anyhow::Result<()> {
    let vault = OpenBao::start().await?;
    assert!(vault.addr().starts_with("http://127.0.0.1:"));
    let http = reqwest::Client::new();
    use reqwest::Method;

    bao(
        &http,
        &vault,
        Method::POST,
        "secret/data/app/db",
        Some(json!({"data": {"user": "a", "pass": "b"}})),
    )
    .await?;
    let got = bao(&http, &vault, Method::GET, "secret/data/app/db", None).await?;
    assert_eq!(got["data"]["data"]["pass"], "b");
    assert_eq!(got["data"]["metadata"]["version"], 1);

    for method in ["kubernetes", "jwt", "approle", "userpass", "cert"] {
        bao(
            &http,
            &vault,
            Method::POST,
            &format!("sys/auth/{method}"),
            Some(json!({"type": method})),
        )
        .await?;
    }
    let auths = bao(&http, &vault, Method::GET, "sys/auth", None).await?;
    for method in ["kubernetes/", "jwt/", "approle/", "userpass/", "cert/"] {
        assert!(auths["data"].get(method).is_some(), "{method} not enabled: {auths}");
    }

    // A login that is not the root token: userpass.
    bao(
        &http,
        &vault,
        Method::POST,
        "auth/userpass/users/bob",
        Some(json!({"password": "pw"})),
    )
    .await?;
    let login = http
        .post(format!("{}/v1/auth/userpass/login/bob", vault.addr()))
        .json(&json!({"password": "pw"}))
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert!(
        login["auth"]["client_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{login}"
    );

    assert_eq!(vault.count("read", "secret/data/app/db")?, 1);
    assert_eq!(vault.count("update", "auth/userpass/login/bob")?, 1);
    vault.clear_requests()?;
    bao(&http, &vault, Method::GET, "secret/data/app/db", None).await?;
    let reqs = vault.requests()?;
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].mount_type, "kv");
    Ok(())
}

#[tokio::test]
async fn openbao_tls_with_its_ca() -> anyhow::Result<()> {
    let vault = OpenBao::start_tls().await?;
    assert!(vault.addr().starts_with("https://127.0.0.1:"));
    let ca = vault.ca_cert_pem()?.ok_or_else(|| anyhow::anyhow!("no CA"))?;
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?)
        .build()?;
    let health: Value = http
        .get(format!("{}/v1/sys/health", vault.addr()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["sealed"], false);
    bao(
        &http,
        &vault,
        reqwest::Method::POST,
        "sys/auth/cert",
        Some(json!({"type": "cert"})),
    )
    .await?;
    // Without the CA the server is not trusted.
    let untrusted = reqwest::Client::new()
        .get(format!("{}/v1/sys/health", vault.addr()))
        .send()
        .await;
    assert!(untrusted.is_err());
    Ok(())
}
