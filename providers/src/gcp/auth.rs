//! Google access tokens for the Secret Manager client, one [`TokenSource`] per client, cached until shortly
//! before they expire (so one store makes one token exchange per token lifetime, whatever the number of
//! ExternalSecrets and reconciles). The flows, as ESO's `providers/v1/gcp/secretmanager`:
//!
//! - **Service-account key** (`auth.secretRef.secretAccessKeySecretRef`): a JWT signed with the key's RSA key is
//!   exchanged at the key's `token_uri` (RFC 7523 `jwt-bearer` grant, `golang.org/x/oauth2/jwt` in ESO).
//! - **GKE Workload Identity** (`auth.workloadIdentity`): a TokenRequest token for the ServiceAccount (audience
//!   `<project>.svc.id.goog`) is exchanged at `securetoken.googleapis.com/v1/identitybindingtoken` (audience
//!   `identitynamespace:<pool>:<cluster URL>`); if the ServiceAccount carries `iam.gke.io/gcp-service-account`, that
//!   token impersonates the Google service account (IAM Credentials `generateAccessToken`).
//! - **Workload Identity Federation** (`auth.workloadIdentityFederation`): a subject token (a TokenRequest token
//!   of `serviceAccountRef`, or `credConfig`'s `credential_source` file or URL) is exchanged at STS
//!   (`sts.googleapis.com/v1/token`, RFC 8693), then optionally impersonates a service account.
//! - **Ambient** (no `auth`): Application Default Credentials of the operator's pod, through `google-cloud-auth`.
//!
//! Every remote call is reported to the observer (`GenerateServiceAccountToken`, `GetAccessToken`,
//! `GenerateIDBindToken`, `ExchangeToken`, `GenerateAccessToken`, `GetMetadata`).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use google_cloud_auth::credentials::{CacheableResource, CredentialsProvider, EntityTag};
use google_cloud_auth::errors::CredentialsError;
use http::{Extensions, HeaderMap, HeaderValue};
use syncret_crds::meta::ServiceAccountSelector;

use super::Endpoints;
use super::jwt::RsaKey;
use crate::client::{CallObserver, observed};
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::net::http::HttpClient;
use crate::registry::StoreInfo;
use crate::value::Unloggable;

pub(crate) const LABEL: &str = "GCP/SecretManager";
/// The scope every token is requested for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The ServiceAccount annotation naming the Google service account to impersonate.
pub const GCP_SA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// Lifetime of the Kubernetes tokens minted only to be exchanged (the TokenRequest minimum is 10 minutes).
const SUBJECT_TOKEN_SECONDS: i64 = 600;
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub(crate) const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub(crate) const IDENTITY_BINDING_URL: &str = "https://securetoken.googleapis.com/v1/identitybindingtoken";
pub(crate) const IAM_CREDENTIALS_URL: &str = "https://iamcredentials.googleapis.com";
pub(crate) const METADATA_URL: &str = "http://metadata.google.internal";

/// The longest token lifetime believed: a token endpoint's `expires_in` (up to 2^64-1 seconds from a hostile
/// server) or `expireTime` is cut to this before any deadline is computed from it.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// When a token that lives `lifetime` from `now` should be replaced: a fifth of its life early, at least 10 s and
/// at most 5 minutes (never before `now`). Lifetimes are capped at [`MAX_TOKEN_LIFETIME`].
pub fn refresh_at(now: Instant, lifetime: Duration) -> Instant {
    let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
    let margin = (lifetime / 5)
        .clamp(Duration::from_secs(10), Duration::from_secs(300))
        .min(lifetime);
    now.checked_add(lifetime.saturating_sub(margin)).unwrap_or(now)
}

/// A cached access token.
struct Cached {
    token: Unloggable<String>,
    refresh_at: Instant,
    tag: EntityTag,
}

/// How a subject token for STS is obtained (Workload Identity Federation).
#[derive(Debug)]
pub(crate) enum Subject {
    /// A TokenRequest token of this ServiceAccount (`serviceAccountRef`).
    ServiceAccount { sa: ServiceAccountSelector, field: String },
    /// `credential_source.file` of the credential configuration (a file in the operator's pod; read through the
    /// tenant policy: ClusterSecretStores only, allowlisted, size-capped).
    File { path: String, format: Format },
    /// `credential_source.url`, fetched with `headers`.
    Url {
        url: String,
        headers: BTreeMap<String, String>,
        format: Format,
    },
}

/// `credential_source.format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    /// A JSON document; the token is at this top-level field.
    Json(String),
}

/// Which Google service account a federated token impersonates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Impersonation {
    None,
    /// An IAM Credentials `…:generateAccessToken` URL.
    Url(String),
    /// The `iam.gke.io/gcp-service-account` annotation of the subject ServiceAccount, if present.
    FromAnnotation,
}

/// One credential flow with everything it needs.
pub(crate) enum Flow {
    ServiceAccountKey {
        email: String,
        key_id: String,
        key: RsaKey,
        token_uri: String,
    },
    GkeWorkloadIdentity {
        sa: ServiceAccountSelector,
        field: String,
        /// `<project>.svc.id.goog`
        pool: String,
        /// `https://container.googleapis.com/v1/projects/<p>/locations/<l>/clusters/<n>`
        provider: String,
    },
    Federation {
        subject: Subject,
        audience: String,
        subject_token_type: String,
        token_url: String,
        impersonation: Impersonation,
        lifetime_seconds: Option<u64>,
    },
    Ambient(google_cloud_auth::credentials::Credentials),
}

/// Produces and caches access tokens for one client.
pub struct TokenSource {
    flow: Flow,
    kube: Credentials,
    http: HttpClient,
    /// The store and the tenant policy (credential files are read through it).
    store: StoreInfo,
    policy: Arc<crate::TenantPolicy>,
    endpoints: Arc<Endpoints>,
    observer: Arc<dyn CallObserver>,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSource")
    }
}

/// A token endpoint's answer, in the shapes OAuth2/STS (`access_token`, `expires_in`) and IAM Credentials
/// (`accessToken`, `expireTime`) use.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default, alias = "accessToken")]
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default, rename = "expireTime")]
    expire_time: Option<String>,
}

impl TokenAnswer {
    fn lifetime(&self) -> Duration {
        let secs = match (&self.expires_in, &self.expire_time) {
            (Some(serde_json::Value::Number(n)), _) => n.as_u64(),
            (Some(serde_json::Value::String(s)), _) => s.parse().ok(),
            (_, Some(t)) => chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| {
                let left = t.with_timezone(&chrono::Utc).signed_duration_since(chrono::Utc::now());
                u64::try_from(left.num_seconds()).unwrap_or(0)
            }),
            _ => None,
        };
        Duration::from_secs(secs.unwrap_or(3600)).min(MAX_TOKEN_LIFETIME)
    }
}

impl TokenSource {
    pub(crate) fn new(
        flow: Flow,
        kube: Credentials,
        http: HttpClient,
        (store, policy): (StoreInfo, Arc<crate::TenantPolicy>),
        endpoints: Arc<Endpoints>,
        observer: Arc<dyn CallObserver>,
    ) -> Self {
        Self {
            flow,
            kube,
            http,
            store,
            policy,
            endpoints,
            observer,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether this source uses the pod's ambient credentials (no token of ours to cache).
    fn ambient(&self) -> Option<&google_cloud_auth::credentials::Credentials> {
        match &self.flow {
            Flow::Ambient(c) => Some(c),
            _ => None,
        }
    }

    /// The `authorization` header for a call: the cached token, or a new one when it is due for refresh.
    /// Concurrent callers share one refresh.
    pub async fn headers(&self) -> Result<(HeaderMap, EntityTag)> {
        if let Some(ambient) = self.ambient() {
            return match ambient.headers(Extensions::new()).await {
                Ok(CacheableResource::New { entity_tag, data }) => Ok((data, entity_tag)),
                Ok(CacheableResource::NotModified) => {
                    Err(ProviderError::Auth("ambient credentials returned no headers".into()))
                }
                Err(e) => Err(ProviderError::Auth(format!(
                    "Application Default Credentials of the operator's pod: {e}"
                ))),
            };
        }
        let mut cached = self.cached.lock().await;
        let fresh = cached.as_ref().filter(|c| Instant::now() < c.refresh_at);
        let (token, tag) = match fresh {
            Some(c) => (c.token.clone(), c.tag.clone()),
            None => {
                let (token, lifetime) = self.fetch().await?;
                let c = Cached {
                    token,
                    refresh_at: refresh_at(Instant::now(), lifetime),
                    tag: EntityTag::new(),
                };
                let out = (c.token.clone(), c.tag.clone());
                *cached = Some(c);
                out
            }
        };
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.0)).map_err(|_| {
            ProviderError::Auth("the token endpoint returned a token that is not a header value".into())
        })?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        Ok((headers, tag))
    }

    /// Forgets the cached token (the server rejected it).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    /// Runs the flow once: a new access token and its lifetime.
    async fn fetch(&self) -> Result<(Unloggable<String>, Duration)> {
        match &self.flow {
            Flow::ServiceAccountKey {
                email,
                key_id,
                key,
                token_uri,
            } => {
                let now = chrono::Utc::now().timestamp();
                let claims = serde_json::json!({
                    "iss": email, "scope": SCOPE, "aud": token_uri, "iat": now, "exp": now + 3600,
                });
                let assertion = Unloggable(key.sign(Some(key_id), &claims)?);
                let req = self
                    .http
                    .post(parse_url(&self.endpoints.url(token_uri), "token_uri")?)
                    .form(&[("grant_type", JWT_BEARER), ("assertion", assertion.0.as_str())]);
                let answer = self
                    .send("GetAccessToken", "the service-account key's token_uri", req)
                    .await?;
                Ok((Unloggable(answer.access_token.clone()), answer.lifetime()))
            }
            Flow::GkeWorkloadIdentity {
                sa,
                field,
                pool,
                provider,
            } => {
                let account = self.kube.service_account(sa, field).await?;
                let gsa = annotation(&account);
                let mut with_pool = sa.clone();
                with_pool.audiences = std::iter::once(pool.clone())
                    .chain(sa.audiences.iter().cloned())
                    .collect();
                let subject = self.subject_token(&with_pool, field).await?;
                let body = serde_json::json!({
                    "grant_type": TOKEN_EXCHANGE,
                    "subject_token_type": JWT_TOKEN_TYPE,
                    "requested_token_type": ACCESS_TOKEN_TYPE,
                    "subject_token": subject.0,
                    "audience": format!("identitynamespace:{pool}:{provider}"),
                    "scope": SCOPE,
                });
                let req = self
                    .http
                    .post(parse_url(
                        &self.endpoints.url(IDENTITY_BINDING_URL),
                        "identity binding URL",
                    )?)
                    .json(&body);
                let answer = self
                    .send("GenerateIDBindToken", "the identity binding token exchange", req)
                    .await?;
                let token = Unloggable(answer.access_token.clone());
                match gsa {
                    None => Ok((token, answer.lifetime())),
                    Some(gsa) => {
                        let url =
                            format!("{IAM_CREDENTIALS_URL}/v1/projects/-/serviceAccounts/{gsa}:generateAccessToken");
                        self.impersonate(&url, &token, None).await
                    }
                }
            }
            Flow::Federation {
                subject,
                audience,
                subject_token_type,
                token_url,
                impersonation,
                lifetime_seconds,
            } => {
                let (subject_token, impersonation) = match subject {
                    Subject::ServiceAccount { sa, field } => {
                        let imp = match impersonation {
                            Impersonation::FromAnnotation => {
                                match annotation(&self.kube.service_account(sa, field).await?) {
                                    Some(gsa) => Impersonation::Url(format!(
                                        "{IAM_CREDENTIALS_URL}/v1/projects/-/serviceAccounts/{gsa}:generateAccessToken"
                                    )),
                                    None => Impersonation::None,
                                }
                            }
                            other => other.clone(),
                        };
                        (self.subject_token(sa, field).await?, imp)
                    }
                    Subject::File { path, format } => {
                        let text = self
                            .policy
                            .read_file(
                                &self.store,
                                &format!("{}.credential_source.file", self.cred_field()),
                                path,
                            )
                            .await?;
                        (
                            parse_subject(&text.0, format, "credential_source.file")?,
                            impersonation.clone(),
                        )
                    }
                    Subject::Url { url, headers, format } => {
                        let mut req = self.http.get(parse_url(url, "credential_source.url")?);
                        for (k, v) in headers {
                            req = req.header(k.as_str(), v.as_str());
                        }
                        let text = observed(&self.observer, LABEL, "GetSubjectToken", async {
                            let resp = req.send().await.map_err(|e| {
                                e.into_provider(
                                    &format!("{}.externalTokenEndpoint", self.federation_field()),
                                    "credential_source.url",
                                )
                            })?;
                            if !resp.status.is_success() {
                                return Err(ProviderError::Auth(format!(
                                    "credential_source.url answered {}",
                                    resp.status
                                )));
                            }
                            Ok(Unloggable(resp.text()))
                        })
                        .await?;
                        (
                            parse_subject(&text.0, format, "credential_source.url")?,
                            impersonation.clone(),
                        )
                    }
                };
                let req = self
                    .http
                    .post(parse_url(&self.endpoints.url(token_url), "token_url")?)
                    .form(&[
                        ("grant_type", TOKEN_EXCHANGE),
                        ("audience", audience.as_str()),
                        ("scope", SCOPE),
                        ("requested_token_type", ACCESS_TOKEN_TYPE),
                        ("subject_token", subject_token.0.as_str()),
                        ("subject_token_type", subject_token_type.as_str()),
                    ]);
                let answer = self.send("ExchangeToken", "the STS token exchange", req).await?;
                let token = Unloggable(answer.access_token.clone());
                match impersonation {
                    Impersonation::Url(url) => self.impersonate(&url, &token, *lifetime_seconds).await,
                    _ => Ok((token, answer.lifetime())),
                }
            }
            Flow::Ambient(_) => Err(ProviderError::Auth("ambient credentials have no token flow".into())),
        }
    }

    /// A TokenRequest token of `sa` (with its own audiences; none means the apiserver's default).
    async fn subject_token(&self, sa: &ServiceAccountSelector, field: &str) -> Result<Unloggable<String>> {
        observed(
            &self.observer,
            LABEL,
            "GenerateServiceAccountToken",
            self.kube.service_account_token(sa, &[], SUBJECT_TOKEN_SECONDS, field),
        )
        .await
    }

    /// IAM Credentials `generateAccessToken` with `bearer` as the caller's credential.
    async fn impersonate(
        &self,
        url: &str,
        bearer: &Unloggable<String>,
        lifetime_seconds: Option<u64>,
    ) -> Result<(Unloggable<String>, Duration)> {
        let mut body = serde_json::json!({"scope": [SCOPE]});
        if let Some(secs) = lifetime_seconds.filter(|s| *s > 0) {
            body["lifetime"] = format!("{secs}s").into();
        }
        let req = self
            .http
            .post(parse_url(
                &self.endpoints.url(url),
                "service account impersonation URL",
            )?)
            .bearer_auth(&bearer.0)
            .json(&body);
        let answer = self
            .send(
                "GenerateAccessToken",
                "service-account impersonation (generateAccessToken)",
                req,
            )
            .await?;
        Ok((Unloggable(answer.access_token.clone()), answer.lifetime()))
    }

    /// Sends a token request and maps its errors; `what` names the endpoint for messages. The answer is read
    /// within the client's limits.
    async fn send(&self, call: &'static str, what: &str, req: crate::net::http::Request<'_>) -> Result<TokenAnswer> {
        observed(&self.observer, LABEL, call, async {
            let resp = req
                .send()
                .await
                .map_err(|e| e.into_provider(&self.endpoint_field(), what))?;
            if resp.status.is_success() {
                let answer: TokenAnswer = resp
                    .json()
                    .map_err(|e| ProviderError::Auth(format!("{what}: unexpected answer: {e}")))?;
                if answer.access_token.is_empty() {
                    return Err(ProviderError::Auth(format!("{what}: the answer has no access token")));
                }
                return Ok(answer);
            }
            Err(token_error(resp.status.as_u16(), resp.retry_after(), what, &resp.body))
        })
        .await
    }

    /// The store field that chose the endpoints of this flow (for a refusal by the egress policy).
    fn endpoint_field(&self) -> String {
        match &self.flow {
            Flow::ServiceAccountKey { .. } => "spec.provider.gcpsm.auth.secretRef.secretAccessKeySecretRef".into(),
            Flow::Federation { .. } => format!("{}.credConfig", self.federation_field()),
            _ => "spec.provider.gcpsm.auth".into(),
        }
    }

    fn federation_field(&self) -> &'static str {
        "spec.provider.gcpsm.auth.workloadIdentityFederation"
    }

    fn cred_field(&self) -> String {
        format!("{}.credConfig", self.federation_field())
    }
}

/// A URL of a flow, parsed (`what` names it for errors; the URL itself is not quoted: it may carry a credential).
fn parse_url(url: &str, what: &str) -> Result<reqwest::Url> {
    reqwest::Url::parse(url).map_err(|e| ProviderError::Auth(format!("{what} is not a valid URL: {e}")))
}

/// Maps a failed token endpoint answer: 429 throttled, 5xx transport, other 4xx authentication errors with the
/// endpoint's `error`/`error_description` (OAuth2) or `error.message` (Google APIs).
pub(crate) fn token_error(status: u16, retry_after: Option<Duration>, what: &str, body: &[u8]) -> ProviderError {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .map(|v| {
            let s = |p: &str| v.pointer(p).and_then(|x| x.as_str()).unwrap_or_default().to_string();
            let parts: Vec<String> = [s("/error"), s("/error_description"), s("/error/message")]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            parts.join(": ")
        })
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body.get(..200).unwrap_or(body))
                .trim()
                .to_string()
        });
    match status {
        429 => ProviderError::Throttled { retry_after },
        500.. => ProviderError::Transport(format!("{what} answered {status}: {detail}")),
        _ => ProviderError::Auth(format!("{what} answered {status}: {detail}")),
    }
}

/// The Google service account a ServiceAccount's GKE Workload Identity impersonates (its annotation).
pub(crate) fn annotation(sa: &k8s_openapi::api::core::v1::ServiceAccount) -> Option<String> {
    sa.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GCP_SA_ANNOTATION))
        .filter(|v| !v.is_empty())
        .cloned()
}

/// The subject token in a credential source's content.
pub(crate) fn parse_subject(text: &str, format: &Format, field: &str) -> Result<Unloggable<String>> {
    let token = match format {
        Format::Text => text.trim().to_string(),
        Format::Json(name) => serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get(name).and_then(|t| t.as_str()).map(str::to_string))
            .ok_or_else(|| ProviderError::Credentials(format!("{field}: the JSON has no string field {name:?}")))?,
    };
    if token.is_empty() {
        return Err(ProviderError::Credentials(format!(
            "{field}: the subject token is empty"
        )));
    }
    Ok(Unloggable(token))
}

/// The `google-cloud-auth` face of a [`TokenSource`], handed to the Secret Manager client.
#[derive(Debug, Clone)]
pub struct GcpCredentials(pub Arc<TokenSource>);

impl CredentialsProvider for GcpCredentials {
    async fn headers(
        &self,
        extensions: Extensions,
    ) -> std::result::Result<CacheableResource<HeaderMap>, CredentialsError> {
        match self.0.headers().await {
            Ok((data, tag)) => {
                if extensions.get::<EntityTag>() == Some(&tag) {
                    return Ok(CacheableResource::NotModified);
                }
                Ok(CacheableResource::New { entity_tag: tag, data })
            }
            Err(e) => Err(CredentialsError::from_msg(
                matches!(e, ProviderError::Transport(_) | ProviderError::Throttled { .. }),
                e.to_string(),
            )),
        }
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_timing() {
        let now = Instant::now();
        // One hour: five minutes early.
        assert_eq!(
            refresh_at(now, Duration::from_secs(3600)),
            now + Duration::from_secs(3300)
        );
        // Ten minutes: a fifth early.
        assert_eq!(
            refresh_at(now, Duration::from_secs(600)),
            now + Duration::from_secs(480)
        );
        // Short: at least ten seconds early, never in the past.
        assert_eq!(refresh_at(now, Duration::from_secs(30)), now + Duration::from_secs(20));
        assert_eq!(refresh_at(now, Duration::from_secs(5)), now);
        assert_eq!(refresh_at(now, Duration::ZERO), now);
        // A hostile `expires_in`: capped, no overflow.
        assert_eq!(
            refresh_at(now, Duration::from_secs(u64::MAX)),
            now + MAX_TOKEN_LIFETIME - Duration::from_secs(300)
        );
    }

    #[test]
    fn token_answers() {
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t","expires_in":120}"#).unwrap();
        assert_eq!((a.access_token.as_str(), a.lifetime()), ("t", Duration::from_secs(120)));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t","expires_in":"90"}"#).unwrap();
        assert_eq!(a.lifetime(), Duration::from_secs(90));
        let exp = (chrono::Utc::now() + chrono::Duration::seconds(1000)).to_rfc3339();
        let a: TokenAnswer = serde_json::from_str(&format!(r#"{{"accessToken":"g","expireTime":"{exp}"}}"#)).unwrap();
        assert_eq!(a.access_token, "g");
        assert!((998..=1000).contains(&a.lifetime().as_secs()));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t"}"#).unwrap();
        assert_eq!(a.lifetime(), Duration::from_secs(3600));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t","expires_in":18446744073709551615}"#).unwrap();
        assert_eq!(a.lifetime(), MAX_TOKEN_LIFETIME);
        let a: TokenAnswer =
            serde_json::from_str(r#"{"accessToken":"t","expireTime":"9999-12-31T23:59:59Z"}"#).unwrap();
        assert_eq!(a.lifetime(), MAX_TOKEN_LIFETIME);
        let a: TokenAnswer =
            serde_json::from_str(r#"{"accessToken":"t","expireTime":"1970-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(a.lifetime(), Duration::ZERO);
    }

    #[test]
    fn token_errors() {
        let e = token_error(
            400,
            None,
            "STS",
            br#"{"error":"invalid_grant","error_description":"bad audience"}"#,
        );
        assert!(
            matches!(&e, ProviderError::Auth(m) if m == "STS answered 400: invalid_grant: bad audience"),
            "{e}"
        );
        let e = token_error(403, None, "IAM", br#"{"error":{"code":403,"message":"denied"}}"#);
        assert!(
            matches!(&e, ProviderError::Auth(m) if m.ends_with("403: denied")),
            "{e}"
        );
        let e = token_error(429, Some(Duration::from_secs(3)), "x", b"");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(matches!(token_error(503, None, "x", b"down"), ProviderError::Transport(m) if m.ends_with("down")));
    }

    #[test]
    fn subject_formats() {
        assert_eq!(parse_subject(" tok\n", &Format::Text, "f").unwrap().0, "tok");
        let json = Format::Json("id_token".into());
        assert_eq!(parse_subject(r#"{"id_token":"j"}"#, &json, "f").unwrap().0, "j");
        assert!(parse_subject(r#"{"other":"j"}"#, &json, "f").is_err());
        assert!(parse_subject("", &Format::Text, "f").is_err());
    }
}
