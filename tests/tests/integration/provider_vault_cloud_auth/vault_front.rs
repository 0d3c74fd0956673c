//! A test server for Vault's `aws` (iam) and `gcp` auth methods, in front of a real OpenBao dev server.
//!
//! OpenBao 2.x ships neither method in its binary (they became external plugins, `openbao-plugins`, which this
//! machine's registries do not serve; `bao auth enable aws` answers "plugin not found in the catalog"), so this
//! server speaks their published login wire protocols on one loopback port, and passes every other `/v1/...`
//! request through to OpenBao unchanged. The tokens it hands out are real OpenBao tokens (created with
//! `auth/token/create` and the role's policies and TTLs), so reads, renewal, lookup and revocation all happen on
//! OpenBao itself.
//!
//! - `POST /v1/auth/<aws mount>/login` (`role`, `iam_http_request_method`, base64 `iam_request_url`,
//!   `iam_request_body`, `iam_request_headers`): as Vault's aws auth method, checks the request is a
//!   `GetCallerIdentity`, checks the `X-Vault-AWS-IAM-Server-ID` header (present, equal, and signed) when one is
//!   configured, forwards the signed request to the configured STS endpoint (moto, which verifies the SigV4
//!   signature once its IAM enforcement is on) keeping the client's `Host`, reads the caller's ARN from the
//!   answer, turns an assumed-role ARN into its role ARN, and matches it to the role's bound principal.
//! - `POST /v1/auth/<gcp mount>/login` (`role`, `jwt`): as Vault's gcp auth method, verifies the RS256 JWT: for an
//!   `iam` role with the public key registered for its `sub` and `kid` (what Google's IAM API would serve), `aud`
//!   `vault/<role>` and an `exp` at most 15 minutes ahead; for a `gce` role with this server's own "Google" key,
//!   `aud` `http://vault/<role>`; then the service account must be bound to the role.
//! - `GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=A&format=full` with
//!   `Metadata-Flavor: Google`: the GCE metadata server's instance identity token, signed with the "Google" key.
//! - `POST /v1/projects/-/serviceAccounts/<email>:signJwt` (IAM Credentials, `{"payload": "<claims JSON>"}`):
//!   signs the claims for `email` with the "Google" key (key id `gsa-key-1`) when the bearer token is the one
//!   configured (the token the GCP provider's GKE Workload Identity flow ends with); `…:generateAccessToken` is
//!   passed to the Google token test server of the GCP tests (`google_auth`), which serves that flow.
//!
//! Errors are Vault's: `{"errors": [...]}` with HTTP 400, and Vault's texts (`entry for role "x" not found`,
//! `IAM Principal "…" does not belong to the role "x"`). Every login is recorded.
// Handlers answer `Result<Value, String>`; unwrap on the server's own values is fine in a test server.
#![allow(clippy::result_large_err)]
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A role of the aws method (iam login).
#[derive(Clone)]
pub struct AwsRole {
    /// `bound_iam_principal_arn` (a user or role ARN).
    pub bound_arn: String,
    pub policies: Vec<String>,
    /// `token_ttl` / `token_max_ttl`, e.g. `1h`, `4s`.
    pub ttl: String,
    pub max_ttl: String,
}

/// A role of the gcp method.
#[derive(Clone)]
pub struct GcpRole {
    /// `iam` or `gce`.
    pub kind: &'static str,
    pub bound_service_accounts: Vec<String>,
    pub policies: Vec<String>,
    pub ttl: String,
}

/// What the server accepts.
#[derive(Clone, Default)]
pub struct Config {
    pub openbao: String,
    pub root_token: String,
    pub aws_mount: String,
    pub sts_endpoint: String,
    /// `iam_server_id_header_value` of the aws method's client config.
    pub iam_server_id: Option<String>,
    pub aws_roles: HashMap<String, AwsRole>,
    pub gcp_mount: String,
    pub gcp_roles: HashMap<String, GcpRole>,
    /// Service-account public keys (PKCS#1 DER) by (email, key id), as Google's IAM API serves them.
    pub gcp_keys: HashMap<(String, String), Vec<u8>>,
    /// The "Google" key that signs metadata identity tokens: PKCS#8 DER private, PKCS#1 DER public.
    pub google_private: Vec<u8>,
    pub google_public: Vec<u8>,
    /// The email of the metadata server's default service account.
    pub gce_email: String,
    /// `signJwt`: the bearer token it accepts, and where `generateAccessToken` goes (the `google_auth` server).
    pub sign_jwt_token: String,
    pub google_auth: Option<String>,
}

/// One login the server answered.
#[derive(Clone, Debug)]
pub struct Login {
    /// `aws` or `gcp`.
    pub method: &'static str,
    pub role: String,
    pub ok: bool,
    /// The caller (ARN or service account), or why it failed.
    pub detail: String,
}

struct State {
    config: Config,
    http: reqwest::Client,
    logins: Mutex<Vec<Login>>,
    identity_tokens: Mutex<usize>,
    signed_jwts: Mutex<usize>,
}

/// A running server; stops when dropped.
pub struct VaultFront {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for VaultFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl VaultFront {
    pub async fn start(config: Config) -> anyhow::Result<VaultFront> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()?,
            logins: Mutex::new(Vec::new()),
            identity_tokens: Mutex::new(0),
            signed_jwts: Mutex::new(0),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(&st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(VaultFront { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn logins(&self) -> Vec<Login> {
        self.state.logins.lock().unwrap().clone()
    }

    /// Successful logins as `role` of `method`.
    pub fn ok_logins(&self, method: &str, role: &str) -> usize {
        self.logins()
            .iter()
            .filter(|l| l.method == method && l.role == role && l.ok)
            .count()
    }

    /// Identity tokens the metadata endpoint handed out.
    pub fn identity_tokens(&self) -> usize {
        *self.state.identity_tokens.lock().unwrap()
    }

    /// JWTs `signJwt` signed.
    pub fn signed_jwts(&self) -> usize {
        *self.state.signed_jwts.lock().unwrap()
    }
}

fn json_response(status: u16, v: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn vault_error(message: String) -> Response<Full<Bytes>> {
    json_response(400, json!({"errors": [message]}))
}

async fn handle(st: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path().to_string();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let aws_login = format!("/v1/auth/{}/login", st.config.aws_mount);
    let gcp_login = format!("/v1/auth/{}/login", st.config.gcp_mount);
    if method == "POST" && path == aws_login {
        let input: Value = serde_json::from_slice(&body).unwrap_or_default();
        let role = input["role"].as_str().unwrap_or_default().to_string();
        let result = aws(st, &role, &input).await;
        return login_answer(st, "aws", role, result).await;
    }
    if method == "POST" && path == gcp_login {
        let input: Value = serde_json::from_slice(&body).unwrap_or_default();
        let role = input["role"].as_str().unwrap_or_default().to_string();
        let result = gcp(st, &role, input["jwt"].as_str().unwrap_or_default());
        return login_answer(st, "gcp", role, result).await;
    }
    if method == "GET" && path == "/computeMetadata/v1/instance/service-accounts/default/identity" {
        return identity(st, uri.query().unwrap_or_default(), &headers);
    }
    if method == "POST" && path.ends_with(":signJwt") {
        return sign_jwt(st, &path, &headers, &body);
    }
    if method == "POST"
        && path.ends_with(":generateAccessToken")
        && let Some(origin) = &st.config.google_auth
    {
        let resp = st
            .http
            .post(format!("{origin}{path}"))
            .header(
                "authorization",
                headers.get("authorization").map(|v| v.as_bytes()).unwrap_or_default(),
            )
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await;
        return match resp {
            Ok(r) => {
                let status = r.status().as_u16();
                json_response(status, r.json::<Value>().await.unwrap_or_default())
            }
            Err(e) => json_response(502, json!({"error": format!("google_auth: {e}")})),
        };
    }
    proxy(st, method, &uri, &headers, body).await
}

/// Records the login; on success creates the OpenBao token and answers Vault's login envelope.
async fn login_answer(
    st: &State,
    method: &'static str,
    role: String,
    result: Result<(String, Vec<String>, String, String), String>,
) -> Response<Full<Bytes>> {
    let (caller, policies, ttl, max_ttl) = match result {
        Ok(r) => r,
        Err(message) => {
            st.logins.lock().unwrap().push(Login {
                method,
                role,
                ok: false,
                detail: message.clone(),
            });
            return vault_error(message);
        }
    };
    let created = st
        .http
        .post(format!("{}/v1/auth/token/create", st.config.openbao))
        .header("X-Vault-Token", &st.config.root_token)
        .json(
            &json!({"policies": policies, "ttl": ttl, "explicit_max_ttl": max_ttl, "renewable": true,
                      "no_parent": true, "display_name": format!("{method}-{role}"),
                      "meta": {"role": role, "caller": caller}}),
        )
        .send()
        .await;
    let answer = match created {
        Ok(r) if r.status().is_success() => r.json::<Value>().await.unwrap_or_default(),
        Ok(r) => return json_response(500, json!({"errors": [format!("token create: {}", r.status())]})),
        Err(e) => return json_response(500, json!({"errors": [format!("token create: {e}")]})),
    };
    st.logins.lock().unwrap().push(Login {
        method,
        role,
        ok: true,
        detail: caller,
    });
    json_response(
        200,
        json!({"auth": answer["auth"], "data": null, "lease_duration": 0, "renewable": false}),
    )
}

fn b64_text(v: &Value, field: &str) -> Result<String, String> {
    let raw = v[field].as_str().ok_or_else(|| format!("missing {field}"))?;
    let bytes = B64
        .decode(raw)
        .map_err(|_| format!("failed to base64 decode {field}"))?;
    String::from_utf8(bytes).map_err(|_| format!("{field} is not text"))
}

/// The aws method's iam login. Ok: (caller ARN, policies, ttl, max ttl).
async fn aws(st: &State, role_name: &str, input: &Value) -> Result<(String, Vec<String>, String, String), String> {
    let role = st
        .config
        .aws_roles
        .get(role_name)
        .ok_or_else(|| format!("entry for role {role_name:?} not found"))?;
    if input["iam_http_request_method"] != "POST" {
        return Err("iam_http_request_method must be POST".into());
    }
    let url = b64_text(input, "iam_request_url")?;
    let body = b64_text(input, "iam_request_body")?;
    let headers: HashMap<String, Value> = serde_json::from_str(&b64_text(input, "iam_request_headers")?)
        .map_err(|e| format!("iam_request_headers: {e}"))?;
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if form.get("Action").map(String::as_str) != Some("GetCallerIdentity") || form.len() != 2 {
        return Err("iam_request_body must be a GetCallerIdentity request".into());
    }
    let header = |name: &str| -> Option<String> {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| match v {
                Value::String(s) => Some(s.clone()),
                Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
    };
    if let Some(expected) = &st.config.iam_server_id {
        let got = header("X-Vault-AWS-IAM-Server-ID").ok_or("missing header \"X-Vault-AWS-IAM-Server-ID\"")?;
        if &got != expected {
            return Err(format!(
                "expected \"{expected}\" but got \"{got}\" for header X-Vault-AWS-IAM-Server-ID"
            ));
        }
        let signed = header("Authorization")
            .and_then(|a| {
                a.split("SignedHeaders=")
                    .nth(1)
                    .map(|s| s.split(',').next().unwrap_or("").to_string())
            })
            .unwrap_or_default();
        if !signed.split(';').any(|h| h == "x-vault-aws-iam-server-id") {
            return Err("vault header wasn't signed".into());
        }
    }
    // Vault sends the request to its configured STS endpoint, with the client's Host.
    let parsed = url::Url::parse(&url).map_err(|e| format!("error parsing iam_request_url: {e}"))?;
    let host = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_string(),
    };
    let mut req = st
        .http
        .post(format!(
            "{}{}",
            st.config.sts_endpoint.trim_end_matches('/'),
            parsed.path()
        ))
        .header("Host", host)
        .body(body.clone());
    for (k, v) in &headers {
        if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let values: Vec<String> = match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        };
        for val in values {
            req = req.header(k.as_str(), val);
        }
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("error making upstream request: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "error making upstream request: received error code {} from STS: {text}",
            status.as_u16()
        ));
    }
    let arn = element(&text, "Arn").ok_or_else(|| format!("no Arn in the STS answer: {text}"))?;
    let canonical = canonical_arn(&arn);
    if canonical != role.bound_arn {
        return Err(format!(
            "IAM Principal {canonical:?} does not belong to the role {role_name:?}"
        ));
    }
    Ok((arn, role.policies.clone(), role.ttl.clone(), role.max_ttl.clone()))
}

fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim().to_string())
}

/// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` → `arn:aws:iam::ACCT:role/ROLE` (Vault's canonical form).
fn canonical_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6
        && parts[2] == "sts"
        && let Some(rest) = parts[5].strip_prefix("assumed-role/")
    {
        let role = rest.split('/').next().unwrap_or_default();
        return format!("arn:{}:iam::{}:role/{role}", parts[1], parts[4]);
    }
    arn.to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The gcp method's login. Ok: (service account, policies, ttl, max ttl).
fn gcp(st: &State, role_name: &str, jwt: &str) -> Result<(String, Vec<String>, String, String), String> {
    let role = st
        .config
        .gcp_roles
        .get(role_name)
        .ok_or_else(|| format!("role {role_name:?} not found"))?;
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err("unable to parse JWT".into());
    }
    let decode = |p: &str| -> Result<Value, String> {
        serde_json::from_slice(&B64URL.decode(p).map_err(|_| "unable to decode JWT".to_string())?)
            .map_err(|_| "unable to decode JWT".to_string())
    };
    let header = decode(parts[0])?;
    let claims = decode(parts[1])?;
    let sig = B64URL
        .decode(parts[2])
        .map_err(|_| "unable to decode JWT signature".to_string())?;
    let signed = format!("{}.{}", parts[0], parts[1]);
    let (email, audience, key) = match role.kind {
        "iam" => {
            let email = claims["sub"].as_str().unwrap_or_default().to_string();
            let kid = header["kid"].as_str().unwrap_or_default().to_string();
            let key = st
                .config
                .gcp_keys
                .get(&(email.clone(), kid.clone()))
                .ok_or_else(|| format!("could not find service account key {kid:?} of {email:?}"))?
                .clone();
            (email, format!("vault/{role_name}"), key)
        }
        _ => (
            claims["email"].as_str().unwrap_or_default().to_string(),
            format!("http://vault/{role_name}"),
            st.config.google_public.clone(),
        ),
    };
    let public = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &key);
    public
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| "unable to verify JWT signature".to_string())?;
    if claims["aud"] != audience.as_str() {
        return Err(format!("JWT has no audience {audience:?}: {}", claims["aud"]));
    }
    let exp = claims["exp"].as_i64().unwrap_or_default();
    let t = now();
    if exp <= t {
        return Err("JWT is expired".into());
    }
    if role.kind == "iam" && exp > t + 15 * 60 + 60 {
        return Err("JWT expires more than 15 minutes from now (max_jwt_exp)".into());
    }
    if !role.bound_service_accounts.contains(&email) {
        return Err(format!("service account {email:?} is not authorized for role"));
    }
    Ok((email, role.policies.clone(), role.ttl.clone(), role.ttl.clone()))
}

/// RS256 with the "Google" key.
fn google_signed(st: &State, kid: &str, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64URL.encode(json!({"alg": "RS256", "kid": kid, "typ": "JWT"}).to_string()),
        B64URL.encode(claims.to_string())
    );
    let key = ring::signature::RsaKeyPair::from_pkcs8(&st.config.google_private).unwrap();
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", B64URL.encode(sig))
}

/// IAM Credentials `signJwt`.
fn sign_jwt(st: &State, path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> Response<Full<Bytes>> {
    let email = path
        .strip_prefix("/v1/projects/-/serviceAccounts/")
        .and_then(|p| p.strip_suffix(":signJwt"))
        .unwrap_or_default();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bearer.is_empty() || bearer != st.config.sign_jwt_token {
        return json_response(401, json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}}));
    }
    let req: Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(claims) = req["payload"]
        .as_str()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
    else {
        return json_response(
            400,
            json!({"error": {"code": 400, "message": "payload must be a JSON string"}}),
        );
    };
    if claims["sub"] != email {
        return json_response(
            400,
            json!({"error": {"code": 400, "message": "sub must be the service account"}}),
        );
    }
    *st.signed_jwts.lock().unwrap() += 1;
    json_response(
        200,
        json!({"keyId": "gsa-key-1", "signedJwt": google_signed(st, "gsa-key-1", &claims)}),
    )
}

/// The metadata server's instance identity token.
fn identity(st: &State, query: &str, headers: &hyper::HeaderMap) -> Response<Full<Bytes>> {
    if headers.get("metadata-flavor").is_none_or(|v| v != "Google") {
        return json_response(403, json!({"error": "Metadata-Flavor: Google required"}));
    }
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let Some(audience) = q.get("audience") else {
        return json_response(400, json!({"error": "non-empty audience parameter required"}));
    };
    if q.get("format").map(String::as_str) != Some("full") {
        return json_response(400, json!({"error": "format=full expected"}));
    }
    let t = now();
    let claims = json!({"iss": "https://accounts.google.com", "aud": audience, "azp": "1234", "sub": "1234",
                        "email": st.config.gce_email, "email_verified": true, "iat": t, "exp": t + 3600,
                        "google": {"compute_engine": {"project_id": "p", "zone": "europe-west1-b",
                                                      "instance_id": "1", "instance_name": "node-1"}}});
    let jwt = google_signed(st, "google-1", &claims);
    *st.identity_tokens.lock().unwrap() += 1;
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(jwt)))
        .unwrap()
}

/// Passes a request through to OpenBao.
async fn proxy(
    st: &State,
    method: hyper::Method,
    uri: &hyper::Uri,
    headers: &hyper::HeaderMap,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let target = format!(
        "{}{}",
        st.config.openbao,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut req = st.http.request(method, target).body(body.to_vec());
    for (k, v) in headers {
        if matches!(k.as_str(), "host" | "content-length" | "connection") {
            continue;
        }
        req = req.header(k.as_str(), v.as_bytes());
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let mut out = Response::builder().status(status);
            for (k, v) in resp.headers() {
                if matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection") {
                    continue;
                }
                out = out.header(k.as_str(), v.as_bytes());
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            out.body(Full::new(bytes)).unwrap()
        }
        Err(e) => json_response(502, json!({"errors": [format!("proxy: {e}")]})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_roles_become_role_arns() {
        assert_eq!(
            canonical_arn("arn:aws:sts::123456789012:assumed-role/app/session-1"),
            "arn:aws:iam::123456789012:role/app"
        );
        assert_eq!(
            canonical_arn("arn:aws:iam::123456789012:user/u"),
            "arn:aws:iam::123456789012:user/u"
        );
    }
}
