//! A test server for the Google token endpoints the GCP provider talks to, speaking their published wire
//! protocols on one loopback port (the provider's `Endpoints` map each Google host to it):
//!
//! - `POST /token` — OAuth 2.0 token endpoint of `oauth2.googleapis.com`, RFC 7523 JWT bearer grant
//!   (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`). Verifies the RS256 signature with the
//!   service-account key's public key, and `iss`, `aud` (the key's `token_uri`), `scope`, `exp`.
//! - `POST /v1/token` — STS token exchange of `sts.googleapis.com` (RFC 8693, form-encoded). Checks the audience
//!   (`//iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/providers/<prov>`) and
//!   the subject token: a Kubernetes ServiceAccount JWT is verified with the test control plane's TokenReview API
//!   (signature, expiry and the expected `aud`); other subject tokens must be the configured external one.
//! - `POST /v1/identitybindingtoken` — GKE's `securetoken.googleapis.com` exchange (same fields, JSON body), with
//!   audience `identitynamespace:<project>.svc.id.goog:<cluster URL>`; the subject token is reviewed with the
//!   audience `<project>.svc.id.goog`.
//! - `POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken` — IAM Credentials impersonation: the
//!   bearer must be a token this server issued from an exchange, the email must be allowed.
//! - `GET /computeMetadata/v1/...` — the GCE/GKE metadata server (`Metadata-Flavor: Google` required): project id,
//!   cluster location and name, and the default service account's token.
//! - `GET /subject` — an external identity provider's token URL (`credential_source.url`), JSON answer.
//!
//! Tokens it issues are the configured strings, so a test can start the Secret Manager fake requiring exactly the
//! token the flow must end with. Every request is recorded (endpoint, outcome, detail).
// Handlers answer `Result<(response, detail), (response, detail)>`: large, and fine for a test server.
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
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};

/// What the server accepts and issues.
#[derive(Clone, Default)]
pub struct Config {
    /// The service-account key: its email, `token_uri` (the JWT `aud`) and RSA public key (PKCS#1 DER).
    pub sa_email: String,
    pub sa_token_uri: String,
    pub sa_public_key: Vec<u8>,
    /// STS: the required `audience`, and the `aud` a Kubernetes subject token must carry.
    pub sts_audience: String,
    pub sts_subject_audience: String,
    /// STS: an accepted non-Kubernetes subject token (from `/subject` or a file).
    pub external_subject_token: String,
    /// securetoken: the workload pool (`<project>.svc.id.goog`) and cluster URL.
    pub gke_pool: String,
    pub gke_provider: String,
    /// Service accounts that exchanged tokens may impersonate.
    pub impersonable: Vec<String>,
    /// Metadata server answers.
    pub project_id: String,
    pub cluster_location: String,
    pub cluster_name: String,
    /// Issued tokens, per endpoint.
    pub oauth_token: String,
    pub sts_token: String,
    pub gke_token: String,
    pub impersonated_token: String,
    pub mds_token: String,
    /// `expires_in` of every issued token.
    pub expires_in: u64,
}

/// One request the server answered.
#[derive(Clone, Debug)]
pub struct Record {
    /// `oauth2`, `sts`, `securetoken`, `iamcredentials`, `metadata`, `subject`.
    pub endpoint: &'static str,
    pub ok: bool,
    /// What was checked or why it failed (the Kubernetes user name of a reviewed token, …).
    pub detail: String,
}

struct State {
    config: Config,
    kube: kube::Client,
    records: Mutex<Vec<Record>>,
}

/// A running server; stops when dropped.
pub struct GoogleAuth {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GoogleAuth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GoogleAuth {
    pub async fn start(config: Config, kube: kube::Client) -> anyhow::Result<GoogleAuth> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            kube,
            records: Mutex::new(Vec::new()),
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
        Ok(GoogleAuth { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn records(&self) -> Vec<Record> {
        self.state.records.lock().unwrap().clone()
    }

    /// Successful requests to `endpoint`.
    pub fn count_ok(&self, endpoint: &str) -> usize {
        self.records().iter().filter(|r| r.endpoint == endpoint && r.ok).count()
    }
}

fn json(status: u16, v: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn oauth_error(desc: String) -> Response<Full<Bytes>> {
    json(
        400,
        serde_json::json!({"error": "invalid_grant", "error_description": desc}),
    )
}

async fn handle(st: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (endpoint, result) = match (method.as_str(), path.as_str()) {
        ("POST", "/token") => ("oauth2", jwt_grant(st, &form)),
        ("POST", "/v1/token") => ("sts", exchange(st, &form, false).await),
        ("POST", "/v1/identitybindingtoken") => {
            let fields: HashMap<String, String> = serde_json::from_slice(&body).unwrap_or_default();
            ("securetoken", exchange(st, &fields, true).await)
        }
        ("POST", p) if p.ends_with(":generateAccessToken") => ("iamcredentials", impersonate(st, p, &headers, &body)),
        ("GET", p) if p.starts_with("/computeMetadata/v1/") => ("metadata", metadata(st, p, &headers)),
        ("GET", "/subject") => (
            "subject",
            if headers.get("x-idp-key").is_some_and(|v| v == "k") {
                Ok((
                    json(200, serde_json::json!({"id_token": st.config.external_subject_token})),
                    "served".into(),
                ))
            } else {
                Err((
                    json(401, serde_json::json!({"error": "no key"})),
                    "missing x-idp-key".into(),
                ))
            },
        ),
        _ => (
            "unknown",
            Err((
                json(404, serde_json::json!({"error": "not found"})),
                format!("{method} {path}"),
            )),
        ),
    };
    let (resp, ok, detail) = match result {
        Ok((r, d)) => (r, true, d),
        Err((r, d)) => (r, false, d),
    };
    st.records.lock().unwrap().push(Record { endpoint, ok, detail });
    resp
}

type Answer = Result<(Response<Full<Bytes>>, String), (Response<Full<Bytes>>, String)>;

fn token(t: &str, expires_in: u64) -> Response<Full<Bytes>> {
    json(
        200,
        serde_json::json!({"access_token": t, "expires_in": expires_in, "token_type": "Bearer",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}),
    )
}

/// RFC 7523: the assertion must be an RS256 JWT signed by the service-account key.
fn jwt_grant(st: &State, form: &HashMap<String, String>) -> Answer {
    let c = &st.config;
    let fail = |d: String| Err((oauth_error(d.clone()), d));
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return fail("unsupported grant_type".into());
    }
    let Some(assertion) = form.get("assertion") else {
        return fail("no assertion".into());
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return fail("assertion is not a JWT".into());
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (Ok(header), Ok(claims), Ok(sig)) = (b64.decode(parts[0]), b64.decode(parts[1]), b64.decode(parts[2])) else {
        return fail("assertion is not base64url".into());
    };
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap_or_default();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap_or_default();
    if header["alg"] != "RS256" {
        return fail(format!("alg {}", header["alg"]));
    }
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &c.sa_public_key);
    let signed = format!("{}.{}", parts[0], parts[1]);
    if key.verify(signed.as_bytes(), &sig).is_err() {
        return fail("Invalid JWT Signature.".into());
    }
    let now = chrono_now();
    if claims["iss"] != c.sa_email.as_str() || claims["aud"] != c.sa_token_uri.as_str() {
        return fail(format!("iss {} aud {}", claims["iss"], claims["aud"]));
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.contains("https://www.googleapis.com/auth/cloud-platform"))
    {
        return fail("scope".into());
    }
    if claims["exp"].as_i64().is_none_or(|e| e <= now) || claims["iat"].as_i64().is_none_or(|i| i > now + 60) {
        return fail("expired or not yet valid".into());
    }
    Ok((token(&c.oauth_token, c.expires_in), format!("kid {}", header["kid"])))
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// RFC 8693 (STS) or GKE's identity binding exchange.
async fn exchange(st: &State, f: &HashMap<String, String>, gke: bool) -> Answer {
    let c = &st.config;
    let fail = |d: String| Err((oauth_error(d.clone()), d));
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    if get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange"
        || get("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token"
        || !get("scope").contains("https://www.googleapis.com/auth/cloud-platform")
    {
        return fail(format!("bad grant fields {f:?}", f = f.keys().collect::<Vec<_>>()));
    }
    let (want_audience, subject_aud) = if gke {
        (
            format!("identitynamespace:{}:{}", c.gke_pool, c.gke_provider),
            c.gke_pool.clone(),
        )
    } else {
        (c.sts_audience.clone(), c.sts_subject_audience.clone())
    };
    if get("audience") != want_audience {
        return fail(format!("audience {:?} is not {want_audience:?}", get("audience")));
    }
    let subject = get("subject_token");
    let detail = if !gke && !c.external_subject_token.is_empty() && subject == c.external_subject_token {
        "external subject token".to_string()
    } else {
        if get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt" {
            return fail("subject_token_type".into());
        }
        // A Kubernetes ServiceAccount token: the control plane says whose it is and for which audience.
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: subject.to_string(),
                audiences: Some(vec![subject_aud.clone()]),
            },
            ..Default::default()
        };
        let res = Api::<TokenReview>::all(st.kube.clone())
            .create(&PostParams::default(), &review)
            .await;
        let status = match res {
            Ok(r) => r.status.unwrap_or_default(),
            Err(e) => return fail(format!("TokenReview: {e}")),
        };
        if status.authenticated != Some(true) || !status.audiences.unwrap_or_default().contains(&subject_aud) {
            return fail(format!(
                "subject token not valid for audience {subject_aud:?}: {}",
                status.error.unwrap_or_default()
            ));
        }
        status.user.and_then(|u| u.username).unwrap_or_default()
    };
    let t = if gke { &c.gke_token } else { &c.sts_token };
    Ok((token(t, c.expires_in), detail))
}

fn impersonate(st: &State, path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> Answer {
    let c = &st.config;
    let fail = |code: u16, d: String| {
        Err((
            json(
                code,
                serde_json::json!({"error": {"code": code, "message": d, "status": "PERMISSION_DENIED"}}),
            ),
            d,
        ))
    };
    let email = path
        .strip_prefix("/v1/projects/-/serviceAccounts/")
        .and_then(|p| p.strip_suffix(":generateAccessToken"))
        .unwrap_or_default();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bearer.is_empty() || (bearer != c.sts_token && bearer != c.gke_token) {
        return fail(401, "the caller's token was not issued by a token exchange".into());
    }
    if !c.impersonable.iter().any(|e| e == email) {
        return fail(403, format!("may not impersonate {email}"));
    }
    let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if !req["scope"]
        .as_array()
        .is_some_and(|s| s.iter().any(|x| x == "https://www.googleapis.com/auth/cloud-platform"))
    {
        return fail(400, "scope".into());
    }
    let expire = std::time::SystemTime::now() + std::time::Duration::from_secs(c.expires_in);
    let expire: chrono::DateTime<chrono::Utc> = expire.into();
    Ok((
        json(
            200,
            serde_json::json!({"accessToken": c.impersonated_token, "expireTime": expire.to_rfc3339()}),
        ),
        format!("{email} by {}", if bearer == c.gke_token { "gke" } else { "sts" }),
    ))
}

fn metadata(st: &State, path: &str, headers: &hyper::HeaderMap) -> Answer {
    let c = &st.config;
    if headers.get("metadata-flavor").is_none_or(|v| v != "Google") {
        return Err((json(403, serde_json::json!({})), "no Metadata-Flavor".into()));
    }
    let text = |s: &str| {
        Response::builder()
            .header("content-type", "application/text")
            .header("metadata-flavor", "Google")
            .body(Full::new(Bytes::from(s.to_string())))
            .unwrap()
    };
    let rest = path.trim_start_matches("/computeMetadata/v1/");
    match rest {
        "project/project-id" => Ok((text(&c.project_id), rest.into())),
        "instance/attributes/cluster-location" => Ok((text(&c.cluster_location), rest.into())),
        "instance/attributes/cluster-name" => Ok((text(&c.cluster_name), rest.into())),
        "instance/service-accounts/default/token" => Ok((token(&c.mds_token, c.expires_in), rest.into())),
        _ => Err((json(404, serde_json::json!({})), rest.into())),
    }
}
