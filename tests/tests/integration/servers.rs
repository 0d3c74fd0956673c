//! Smoke tests of the provider API servers: each starts its server and makes real calls over plain HTTP (for
//! GCP: hand-encoded gRPC over h2c; the real client is the GCP provider's), then checks the request counting the
//! provider tests rely on.
use serde_json::{Value, json};
use syncret_tests::servers::{AzureKeyVault, GcpEmulator, Moto, OpenBao};

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

/// Protobuf: a length-delimited field (strings, bytes, messages).
fn pb_field(field: u8, bytes: &[u8]) -> Vec<u8> {
    assert!(bytes.len() < 128, "one-byte varint lengths only");
    let mut out = vec![(field << 3) | 2, bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

/// One unary gRPC call with a hand-encoded request; returns the response message bytes.
async fn grpc(http: &reqwest::Client, gcp: &GcpEmulator, method: &str, msg: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    let resp = http
        .post(format!(
            "http://{}/google.cloud.secretmanager.v1.SecretManagerService/{method}",
            gcp.endpoint()
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", "Bearer test-token")
        .body(frame)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "{method}: HTTP {}", resp.status());
    // A failed call is "trailers-only": grpc-status in the headers and no message.
    if let Some(code) = resp.headers().get("grpc-status") {
        anyhow::ensure!(
            code == "0",
            "{method}: grpc-status {code:?} {:?}",
            resp.headers().get("grpc-message")
        );
    }
    let body = resp.bytes().await?;
    anyhow::ensure!(body.len() >= 5, "{method}: no message in the response");
    Ok(body[5..].to_vec())
}

#[tokio::test]
async fn gcp_fake_serves_secret_manager_grpc_and_counts_calls() -> anyhow::Result<()> {
    let gcp = GcpEmulator::start().await?;
    let http = reqwest::Client::builder().http2_prior_knowledge().build()?;

    // CreateSecret{parent=1, secret_id=2}
    let created = grpc(
        &http,
        &gcp,
        "CreateSecret",
        [pb_field(1, b"projects/p1"), pb_field(2, b"db")].concat(),
    )
    .await?;
    assert!(created.windows(20).any(|w| w == b"projects/p1/secrets/"), "{created:?}");
    // AddSecretVersion{parent=1, payload=2{data=1}}
    let payload = pb_field(1, b"s3cr3t");
    grpc(
        &http,
        &gcp,
        "AddSecretVersion",
        [pb_field(1, b"projects/p1/secrets/db"), pb_field(2, &payload)].concat(),
    )
    .await?;
    // AccessSecretVersion{name=1} -> {name=1, payload=2{data=1, data_crc32c=2}}
    let got = grpc(
        &http,
        &gcp,
        "AccessSecretVersion",
        pb_field(1, b"projects/p1/secrets/db/versions/latest"),
    )
    .await?;
    assert!(got.windows(6).any(|w| w == b"s3cr3t"), "{got:?}");
    let missing = grpc(
        &http,
        &gcp,
        "AccessSecretVersion",
        pb_field(1, b"projects/p1/secrets/nope/versions/1"),
    )
    .await;
    assert!(missing.is_err());

    assert_eq!(gcp.count("AccessSecretVersion")?, 2);
    let reqs = gcp.requests()?;
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[2].name, "projects/p1/secrets/db/versions/latest");
    assert_eq!(reqs[2].authorization, "Bearer test-token");
    assert_eq!(reqs[3].code, "NotFound");
    gcp.clear_requests()?;
    assert!(gcp.requests()?.is_empty());

    let strict = GcpEmulator::start_requiring_token("right").await?;
    let denied = grpc(&http, &strict, "GetSecret", pb_field(1, b"projects/p1/secrets/db")).await;
    assert!(
        format!("{:?}", denied.err()).contains("grpc-status \"16\""),
        "UNAUTHENTICATED"
    );
    Ok(())
}

#[tokio::test]
async fn azure_fake_serves_key_vault_secrets_with_tokens_from_its_endpoints() -> anyhow::Result<()> {
    let kv = AzureKeyVault::start_requiring_issued_tokens().await?;
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(kv.ca_cert_pem()?.as_bytes())?)
        .build()?;
    let secret_url = |path: &str| format!("{}/secrets/{path}?api-version=7.6", kv.vault_url());

    // No token: the bearer challenge.
    let resp = http.get(secret_url("db")).send().await?;
    assert_eq!(resp.status(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    assert!(challenge.is_some_and(|c| c.contains("resource=\"https://vault.azure.net\"")));

    // Workload identity: client_credentials with a client assertion.
    let token: Value = http
        .post(format!("{}/tenant-1/oauth2/v2.0/token", kv.token_endpoint()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            "grant_type=client_credentials&client_id=app&scope=https%3A%2F%2Fvault.azure.net%2F.default\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion=eyJ.sa.token",
        )
        .send()
        .await?
        .json()
        .await?;
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap_or_default());

    let set: Value = http
        .put(secret_url("db"))
        .header("Authorization", &bearer)
        .json(&json!({"value": "s3cr3t", "tags": {"managed-by": "syncret"}}))
        .send()
        .await?
        .json()
        .await?;
    let id = set["id"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with(&format!("{}/secrets/db/", kv.vault_url())), "{set}");
    let got: Value = http
        .get(secret_url("db"))
        .header("Authorization", &bearer)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(got["value"], "s3cr3t");
    assert_eq!(got["id"], id.as_str());

    // A token the fake did not issue is refused; a managed-identity token is accepted.
    let resp = http
        .get(secret_url("db"))
        .header("Authorization", "Bearer forged")
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    let mi: Value = reqwest::Client::new()
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net",
            kv.imds_endpoint()
        ))
        .header("Metadata", "true")
        .send()
        .await?
        .json()
        .await?;
    let mi_bearer = format!("Bearer {}", mi["access_token"].as_str().unwrap_or_default());
    let resp = http
        .get(secret_url("db"))
        .header("Authorization", &mi_bearer)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);

    assert_eq!(kv.count("GetSecret")?, 2);
    assert_eq!(kv.count("InvalidToken")?, 1);
    let reqs = kv.requests()?;
    let assertion = reqs
        .iter()
        .find(|r| r.op == "TokenClientAssertion")
        .map(|r| r.form["client_assertion"].clone());
    assert_eq!(assertion.as_deref(), Some("eyJ.sa.token"));
    kv.clear_requests()?;
    assert!(kv.requests()?.is_empty());
    Ok(())
}
