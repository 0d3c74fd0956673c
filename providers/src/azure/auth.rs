//! Entra ID credentials for a store, as ESO resolves them, each an azure_core [`TokenCredential`]:
//! - `ServicePrincipal` with a client secret: azure_identity's `ClientSecretCredential`;
//! - `ServicePrincipal` with a client certificate (PEM certificate + RSA key in one Secret key): azure_identity's
//!   `ClientAssertionCredential` with an RS256 JWT signed here with ring (azure_identity's own certificate
//!   credential needs OpenSSL);
//! - `WorkloadIdentity`: `ClientAssertionCredential` whose assertion is a ServiceAccount token minted with the
//!   TokenRequest API for audience `api://AzureADTokenExchange` (client and tenant IDs from the ServiceAccount's
//!   `azure.workload.identity/*` annotations), or, without `serviceAccountRef`, the projected token file the
//!   workload identity webhook mounts (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`);
//! - `ManagedIdentity`: the IMDS endpoint (azure_identity's IMDS address is fixed, so it is spoken here; the
//!   endpoint is overridable, like the Azure SDKs do with `AZURE_POD_IDENTITY_AUTHORITY_HOST`).
//!
//! Every credential sits behind [`CachingCredential`], which keeps each token until shortly before its
//! `expires_on` and reports every real token request to the call observer as `Azure/KeyVault` `Login`.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use azure_core::http::{ClientMethodOptions, HttpClient, Method, Request, Url};
use azure_core::time::{Duration as AzDuration, OffsetDateTime};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions,
};
use base64::Engine as _;
use syncret_crds::meta::ServiceAccountSelector;
use syncret_crds::provider::azurekv::{AzureAuthType, AzureEnvironmentType, AzureKVProvider};
use tokio::sync::Mutex;

use super::{BASE, LABEL, Settings};
use crate::client::CallObserver;
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::registry::StoreInfo;

/// The audience Entra ID expects on federated (workload identity) tokens.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// ServiceAccount annotation naming the Entra application (client) ID.
pub const ANNOTATION_CLIENT_ID: &str = "azure.workload.identity/client-id";
/// ServiceAccount annotation naming the tenant ID.
pub const ANNOTATION_TENANT_ID: &str = "azure.workload.identity/tenant-id";
/// Lifetime asked for minted ServiceAccount tokens (only used once, for the exchange).
const SA_TOKEN_SECONDS: i64 = 3600;
/// Tokens are renewed this long before they expire (as the Azure SDKs do).
pub const REFRESH_BEFORE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(300);

/// The longest token lifetime believed: an `expires_on`/`expires_in` further out (a hostile endpoint's number) is
/// read as this, so no date arithmetic on it can overflow.
pub const MAX_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whether a token expiring at `expires_on` must be renewed at `now` (checked arithmetic: any date is fine).
pub fn needs_refresh(expires_on: OffsetDateTime, now: OffsetDateTime) -> bool {
    let margin = AzDuration::seconds(REFRESH_BEFORE_EXPIRY.as_secs().try_into().unwrap_or(i64::MAX));
    expires_on.checked_sub(margin).is_none_or(|at| at <= now)
}

/// When an IMDS token expires: `expires_on` (Unix seconds) or `expires_in` (seconds from `now`), 5 minutes when
/// neither is given, never more than [`MAX_TOKEN_LIFETIME`] from `now`.
fn imds_expiry(now: OffsetDateTime, expires_on: Option<i64>, expires_in: Option<i64>) -> OffsetDateTime {
    let max_secs = i64::try_from(MAX_TOKEN_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    let latest = now.checked_add(AzDuration::seconds(max_secs)).unwrap_or(now);
    let at = match (expires_on, expires_in) {
        (Some(at), _) => OffsetDateTime::from_unix_timestamp(at).unwrap_or(now),
        (None, Some(secs)) => now
            .checked_add(AzDuration::seconds(secs.clamp(0, max_secs)))
            .unwrap_or(now),
        (None, None) => now.checked_add(AzDuration::seconds(300)).unwrap_or(now),
    };
    at.min(latest)
}

/// The Entra ID authority host for a store: `customCloudConfig.activeDirectoryEndpoint` when set, else the
/// `environmentType`'s.
pub fn authority_host(spec: &AzureKVProvider) -> Result<String> {
    if let Some(custom) = &spec.custom_cloud_config
        && !custom.active_directory_endpoint.trim().is_empty()
    {
        return Ok(custom.active_directory_endpoint.trim().to_string());
    }
    match spec.environment_type {
        AzureEnvironmentType::PublicCloud => Ok("https://login.microsoftonline.com/".into()),
        AzureEnvironmentType::USGovernmentCloud => Ok("https://login.microsoftonline.us/".into()),
        AzureEnvironmentType::ChinaCloud => Ok("https://login.chinacloudapi.cn/".into()),
        AzureEnvironmentType::GermanCloud => Err(ProviderError::invalid_config(
            format!("{BASE}.environmentType"),
            "Azure Germany (Microsoft Cloud Deutschland) was discontinued on October 29, 2021; use AzureStackCloud \
             with customCloudConfig or a public region",
        )),
        AzureEnvironmentType::AzureStackCloud => Err(ProviderError::invalid_config(
            format!("{BASE}.customCloudConfig"),
            "is required when environmentType is AzureStackCloud",
        )),
    }
}

/// The Key Vault resource (token audience) of the store's cloud: `customCloudConfig.keyVaultEndpoint` or the
/// `environmentType`'s. Key Vault names it again in its authentication challenge, which is what the SDK uses.
pub fn key_vault_resource(spec: &AzureKVProvider) -> String {
    if let Some(ep) = spec
        .custom_cloud_config
        .as_ref()
        .and_then(|c| c.key_vault_endpoint.as_deref())
        .filter(|e| !e.trim().is_empty())
    {
        return ep.trim().trim_end_matches('/').to_string();
    }
    match spec.environment_type {
        AzureEnvironmentType::USGovernmentCloud => "https://vault.usgovcloudapi.net",
        AzureEnvironmentType::ChinaCloud => "https://vault.azure.cn",
        AzureEnvironmentType::GermanCloud => "https://vault.microsoftazure.de",
        _ => "https://vault.azure.net",
    }
    .to_string()
}

fn cred_err(message: impl Into<String>) -> Error {
    Error::with_message(ErrorKind::Credential, message.into())
}

/// Keeps tokens per scope set until [`needs_refresh`], so a token request happens once per token lifetime no
/// matter how many reads share the client; each real request is reported as one `Login` call.
pub struct CachingCredential {
    inner: Arc<dyn TokenCredential>,
    observer: Arc<dyn CallObserver>,
    tokens: Mutex<HashMap<Vec<String>, AccessToken>>,
}

impl std::fmt::Debug for CachingCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachingCredential")
    }
}

impl CachingCredential {
    pub fn new(inner: Arc<dyn TokenCredential>, observer: Arc<dyn CallObserver>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            observer,
            tokens: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl TokenCredential for CachingCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let key: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        // Held across the request: concurrent callers wait for the one token request instead of each sending one.
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(&key)
            && !needs_refresh(t.expires_on, OffsetDateTime::now_utc())
        {
            return Ok(t.clone());
        }
        let start = Instant::now();
        let res = self.inner.get_token(scopes, options).await;
        self.observer.observe(LABEL, "Login", res.is_ok(), start.elapsed());
        let token = res?;
        tokens.insert(key, token.clone());
        Ok(token)
    }
}

/// Managed identity through the Azure Instance Metadata Service (IMDS).
#[derive(Debug)]
pub struct ImdsCredential {
    endpoint: Url,
    identity_id: Option<String>,
    transport: Arc<dyn HttpClient>,
}

#[derive(serde::Deserialize)]
struct ImdsToken {
    access_token: String,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

fn json_i64(v: &Option<serde_json::Value>) -> Option<i64> {
    match v.as_ref()? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl ImdsCredential {
    pub fn new(base: &str, identity_id: Option<String>, transport: Arc<dyn HttpClient>) -> Result<Self> {
        let endpoint = Url::parse(&format!(
            "{}/metadata/identity/oauth2/token",
            base.trim_end_matches('/')
        ))
        .map_err(|e| ProviderError::invalid_config(format!("{BASE}.authType"), format!("IMDS endpoint: {e}")))?;
        Ok(Self {
            endpoint,
            identity_id: identity_id.filter(|i| !i.trim().is_empty()),
            transport,
        })
    }

    /// The IMDS token URL for `scope`: the resource is the scope without `/.default`; a user-assigned identity is
    /// named by client ID, or by resource ID when `identityId` is an ARM ID (`/subscriptions/...`).
    pub fn token_url(&self, scope: &str) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", "2018-02-01");
            q.append_pair("resource", scope.trim_end_matches("/.default"));
            if let Some(id) = &self.identity_id {
                if id.starts_with('/') {
                    q.append_pair("msi_res_id", id);
                } else {
                    q.append_pair("client_id", id);
                }
            }
        }
        url
    }
}

#[async_trait]
impl TokenCredential for ImdsCredential {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        let scope = scopes
            .first()
            .ok_or_else(|| cred_err("ManagedIdentity: no scope requested"))?;
        let mut req = Request::new(self.token_url(scope), Method::Get);
        req.insert_header("metadata", "true");
        let resp = self.transport.execute_request(&req).await.map_err(|e| {
            Error::with_error(
                ErrorKind::Credential,
                e,
                "ManagedIdentity: the IMDS endpoint is unreachable",
            )
        })?;
        let status = u16::from(resp.status());
        let body = resp.into_body().collect().await?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body);
            return Err(cred_err(format!(
                "ManagedIdentity: IMDS answered {status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        let tok: ImdsToken = serde_json::from_slice(&body)
            .map_err(|e| Error::with_error(ErrorKind::Credential, e, "ManagedIdentity: invalid IMDS token response"))?;
        let expires_on = imds_expiry(
            OffsetDateTime::now_utc(),
            json_i64(&tok.expires_on),
            json_i64(&tok.expires_in),
        );
        Ok(AccessToken::new(tok.access_token, expires_on))
    }
}

/// Workload identity: a fresh ServiceAccount token (TokenRequest) per exchange.
#[derive(Clone)]
pub struct ServiceAccountAssertion {
    pub creds: Credentials,
    pub selector: ServiceAccountSelector,
}

impl std::fmt::Debug for ServiceAccountAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountAssertion")
            .field("serviceAccount", &self.selector.name)
            .finish()
    }
}

#[async_trait]
impl ClientAssertion for ServiceAccountAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.creds
            .service_account_token(
                &self.selector,
                &[],
                SA_TOKEN_SECONDS,
                &format!("{BASE}.serviceAccountRef"),
            )
            .await
            .map(|t| t.0)
            .map_err(|e| cred_err(e.to_string()))
    }
}

/// Workload identity in webhook mode: the projected token file (re-read per exchange; kubelet rotates it).
#[derive(Debug)]
pub struct FileAssertion(pub std::path::PathBuf);

#[async_trait]
impl ClientAssertion for FileAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        tokio::fs::read_to_string(&self.0)
            .await
            .map(|s| s.trim().to_string())
            .map_err(|e| cred_err(format!("reading AZURE_FEDERATED_TOKEN_FILE {}: {e}", self.0.display())))
    }
}

/// A service principal's certificate credential: an RS256 JWT signed with the certificate's key, with the
/// certificate's SHA-1 thumbprint as `x5t`, for the tenant's token endpoint (`aud`).
pub struct CertificateAssertion {
    client_id: String,
    audience: String,
    x5t: String,
    key: ring::signature::RsaKeyPair,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl CertificateAssertion {
    /// From PEM holding the certificate and its RSA private key (PKCS#8 or PKCS#1), as ESO reads
    /// `authSecretRef.clientCertificate`.
    pub fn from_pem(pem: &[u8], client_id: &str, audience: &str, field: &str) -> Result<Self> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |m: String| ProviderError::invalid_config(field, m);
        let cert = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or_else(|| {
                bad("no PEM CERTIFICATE found (syncret reads PEM certificate + key; PKCS#12 is not supported)".into())
            })?
            .map_err(|e| bad(format!("invalid certificate PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(format!("no usable private key PEM: {e}")))?;
        let key = match key {
            PrivateKeyDer::Pkcs8(k) => ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => ring::signature::RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(bad("the private key must be RSA (PKCS#8 or PKCS#1 PEM)".into())),
        }
        .map_err(|e| bad(format!("invalid RSA private key: {e}")))?;
        let thumb = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
        Ok(Self {
            client_id: client_id.to_string(),
            audience: audience.to_string(),
            x5t: b64url(thumb.as_ref()),
            key,
        })
    }

    /// The signed JWT, valid for 10 minutes from `now` (Unix seconds).
    pub fn jwt(&self, now: i64) -> std::result::Result<String, String> {
        let rng = ring::rand::SystemRandom::new();
        let mut jti = [0u8; 16];
        ring::rand::SecureRandom::fill(&rng, &mut jti).map_err(|_| "no randomness".to_string())?;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        let claims = serde_json::json!({
            "aud": self.audience, "iss": self.client_id, "sub": self.client_id,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "nbf": now, "iat": now, "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "signing the client assertion failed".to_string())?;
        Ok(format!("{signing_input}.{}", b64url(&sig)))
    }
}

#[async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.jwt(OffsetDateTime::now_utc().unix_timestamp()).map_err(cred_err)
    }
}

fn utf8(v: crate::value::SecretValue, field: &str) -> Result<String> {
    v.as_str()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::invalid_config(field, "must be non-empty UTF-8 text"))
}

/// Builds the (uncached) credential for `spec`. `client_options` carries the transport and the authority host.
pub async fn credential(
    spec: &AzureKVProvider,
    store: &StoreInfo,
    creds: &Credentials,
    settings: &Settings,
    transport: Arc<dyn HttpClient>,
    policy: &crate::TenantPolicy,
) -> Result<Arc<dyn TokenCredential>> {
    let authority = authority_host(spec)?;
    let client_options = || {
        let mut custom = azure_core::cloud::CustomConfiguration::default();
        custom.authority_host = authority.clone();
        azure_core::http::ClientOptions {
            transport: Some(azure_core::http::Transport::new(transport.clone())),
            retry: azure_core::http::RetryOptions::none(),
            cloud: Some(Arc::new(custom.into())),
            ..Default::default()
        }
    };
    let auth_err = |field: &str, e: Error| ProviderError::invalid_config(field, e.to_string());
    match spec.auth_type {
        AzureAuthType::ServicePrincipal => {
            let tenant = spec
                .tenant_id
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ProviderError::invalid_config(format!("{BASE}.tenantId"), "is required for ServicePrincipal")
                })?;
            let refs = spec.auth_secret_ref.as_ref().ok_or_else(|| {
                ProviderError::invalid_config(format!("{BASE}.authSecretRef"), "is required for ServicePrincipal")
            })?;
            let id_ref = refs.client_id.as_ref().ok_or_else(|| {
                ProviderError::invalid_config(format!("{BASE}.authSecretRef.clientId"), "is required")
            })?;
            let field = format!("{BASE}.authSecretRef.clientId");
            let client_id = utf8(creds.secret_key(id_ref, &field).await?, &field)?;
            match (&refs.client_secret, &refs.client_certificate) {
                (Some(_), Some(_)) => Err(ProviderError::invalid_config(
                    format!("{BASE}.authSecretRef"),
                    "set only one of clientSecret and clientCertificate",
                )),
                (None, None) => Err(ProviderError::invalid_config(
                    format!("{BASE}.authSecretRef"),
                    "one of clientSecret or clientCertificate is required",
                )),
                (Some(secret_ref), None) => {
                    let field = format!("{BASE}.authSecretRef.clientSecret");
                    let secret = utf8(creds.secret_key(secret_ref, &field).await?, &field)?;
                    let cred = ClientSecretCredential::new(
                        tenant,
                        client_id,
                        Secret::new(secret),
                        Some(ClientSecretCredentialOptions {
                            client_options: client_options(),
                        }),
                    )
                    .map_err(|e| auth_err(&format!("{BASE}.tenantId"), e))?;
                    Ok(cred as Arc<dyn TokenCredential>)
                }
                (None, Some(cert_ref)) => {
                    let field = format!("{BASE}.authSecretRef.clientCertificate");
                    let pem = creds.secret_key(cert_ref, &field).await?;
                    let audience = format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'));
                    let assertion = CertificateAssertion::from_pem(pem.as_bytes(), &client_id, &audience, &field)?;
                    let cred = ClientAssertionCredential::new(
                        tenant.to_string(),
                        client_id,
                        assertion,
                        Some(ClientAssertionCredentialOptions {
                            client_options: client_options(),
                        }),
                    )
                    .map_err(|e| auth_err(&format!("{BASE}.tenantId"), e))?;
                    Ok(cred as Arc<dyn TokenCredential>)
                }
            }
        }
        AzureAuthType::ManagedIdentity => {
            policy.operator_identity(
                store,
                &format!("{BASE}.authType"),
                "the node's managed identity (ManagedIdentity, IMDS)",
            )?;
            Ok(Arc::new(ImdsCredential::new(
                &settings.imds_endpoint,
                spec.identity_id.clone(),
                transport,
            )?))
        }
        AzureAuthType::WorkloadIdentity => {
            if spec.service_account_ref.is_none() {
                policy.operator_identity(
                    store,
                    &format!("{BASE}.serviceAccountRef"),
                    "the operator's federated token (AZURE_FEDERATED_TOKEN_FILE; WorkloadIdentity without \
                     serviceAccountRef)",
                )?;
            }
            let ids = workload_identity_ids(spec, creds, settings).await?;
            let opts = Some(ClientAssertionCredentialOptions {
                client_options: client_options(),
            });
            let cred: Arc<dyn TokenCredential> = match ids.assertion {
                WorkloadAssertion::ServiceAccount(selector) => ClientAssertionCredential::new(
                    ids.tenant_id,
                    ids.client_id,
                    ServiceAccountAssertion {
                        creds: creds.clone(),
                        selector,
                    },
                    opts,
                )
                .map_err(|e| auth_err(&format!("{BASE}.tenantId"), e))?,
                WorkloadAssertion::File(path) => {
                    ClientAssertionCredential::new(ids.tenant_id, ids.client_id, FileAssertion(path), opts)
                        .map_err(|e| auth_err(&format!("{BASE}.tenantId"), e))?
                }
            };
            Ok(cred)
        }
    }
}

/// Where a workload identity's federated token comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadAssertion {
    /// TokenRequest for this ServiceAccount (audiences: `api://AzureADTokenExchange` plus the ref's own).
    ServiceAccount(ServiceAccountSelector),
    /// The webhook-projected token file.
    File(std::path::PathBuf),
}

/// A workload identity's client and tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadIds {
    pub client_id: String,
    pub tenant_id: String,
    pub assertion: WorkloadAssertion,
}

/// Picks one of several optional sources for an ID, refusing two that disagree.
pub fn pick_id(what: &str, sources: &[(&str, Option<String>)]) -> Result<Option<String>> {
    let mut found: Option<(&str, String)> = None;
    for (name, value) in sources {
        let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        match &found {
            Some((first, prev)) if prev != v => {
                return Err(ProviderError::invalid_config(
                    format!("{BASE}.{what}"),
                    format!("{first} and {name} name different {what}s; set only one"),
                ));
            }
            Some(_) => {}
            None => found = Some((name, v.to_string())),
        }
    }
    Ok(found.map(|(_, v)| v))
}

async fn workload_identity_ids(
    spec: &AzureKVProvider,
    creds: &Credentials,
    settings: &Settings,
) -> Result<WorkloadIds> {
    let secret_id = |sel: Option<&syncret_crds::meta::SecretKeySelector>, field: String| {
        let creds = creds.clone();
        let sel = sel.cloned();
        async move {
            match sel {
                Some(sel) => Ok::<_, ProviderError>(Some(utf8(creds.secret_key(&sel, &field).await?, &field)?)),
                None => Ok(None),
            }
        }
    };
    let refs = spec.auth_secret_ref.as_ref();
    let secret_client = secret_id(
        refs.and_then(|r| r.client_id.as_ref()),
        format!("{BASE}.authSecretRef.clientId"),
    )
    .await?;
    let secret_tenant = secret_id(
        refs.and_then(|r| r.tenant_id.as_ref()),
        format!("{BASE}.authSecretRef.tenantId"),
    )
    .await?;
    let Some(sa_ref) = &spec.service_account_ref else {
        // Webhook mode: the pod's own federated token.
        let env = |k: &str| settings.env.get(k).cloned().filter(|v| !v.is_empty());
        let (Some(client), Some(tenant), Some(file)) = (
            secret_client.or_else(|| env("AZURE_CLIENT_ID")),
            secret_tenant
                .or_else(|| spec.tenant_id.clone().filter(|t| !t.is_empty()))
                .or_else(|| env("AZURE_TENANT_ID")),
            env("AZURE_FEDERATED_TOKEN_FILE"),
        ) else {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.serviceAccountRef"),
                "not set, and the environment variables AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE \
                 (set by the workload identity webhook) are missing",
            ));
        };
        return Ok(WorkloadIds {
            client_id: client,
            tenant_id: tenant,
            assertion: WorkloadAssertion::File(file.into()),
        });
    };
    let field = format!("{BASE}.serviceAccountRef");
    let sa = creds.service_account(sa_ref, &field).await?;
    let annotations = sa.metadata.annotations.unwrap_or_default();
    let client_id = pick_id(
        "clientId",
        &[
            ("authSecretRef.clientId", secret_client),
            (ANNOTATION_CLIENT_ID, annotations.get(ANNOTATION_CLIENT_ID).cloned()),
        ],
    )?
    .ok_or_else(|| {
        ProviderError::invalid_config(
            field.clone(),
            format!(
                "ServiceAccount {:?} has no {ANNOTATION_CLIENT_ID} annotation (and authSecretRef.clientId is not set)",
                sa_ref.name
            ),
        )
    })?;
    let tenant_id = pick_id(
        "tenantId",
        &[
            ("authSecretRef.tenantId", secret_tenant),
            ("tenantId", spec.tenant_id.clone()),
            (ANNOTATION_TENANT_ID, annotations.get(ANNOTATION_TENANT_ID).cloned()),
        ],
    )?
    .or_else(|| settings.env.get("AZURE_TENANT_ID").cloned().filter(|t| !t.is_empty()))
    .ok_or_else(|| {
        ProviderError::invalid_config(
            format!("{BASE}.tenantId"),
            format!("missing: set it, authSecretRef.tenantId, or the {ANNOTATION_TENANT_ID} annotation"),
        )
    })?;
    let mut selector = sa_ref.clone();
    let mut audiences = vec![TOKEN_EXCHANGE_AUDIENCE.to_string()];
    audiences.extend(
        sa_ref
            .audiences
            .iter()
            .filter(|a| *a != TOKEN_EXCHANGE_AUDIENCE)
            .cloned(),
    );
    selector.audiences = audiences;
    Ok(WorkloadIds {
        client_id,
        tenant_id,
        assertion: WorkloadAssertion::ServiceAccount(selector),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_five_minutes_before_expiry() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert!(!needs_refresh(now + AzDuration::seconds(3600), now));
        assert!(!needs_refresh(now + AzDuration::seconds(301), now));
        assert!(needs_refresh(now + AzDuration::seconds(300), now));
        assert!(needs_refresh(now + AzDuration::seconds(10), now));
        assert!(needs_refresh(now - AzDuration::seconds(10), now));
        // The earliest representable date: no overflow, renewed.
        let earliest = OffsetDateTime::from_unix_timestamp(-377_705_116_800).unwrap();
        assert!(needs_refresh(earliest, now));
    }

    #[test]
    fn imds_expiry_is_bounded() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let max = now + AzDuration::seconds(24 * 3600);
        assert_eq!(imds_expiry(now, None, Some(60)), now + AzDuration::seconds(60));
        assert_eq!(imds_expiry(now, None, Some(i64::MAX)), max);
        assert_eq!(imds_expiry(now, None, Some(i64::MIN)), now);
        assert_eq!(imds_expiry(now, Some(i64::MAX), None), now, "out of range: expired");
        assert_eq!(imds_expiry(now, Some(253_402_300_799), None), max, "year 9999: capped");
        assert_eq!(imds_expiry(now, None, None), now + AzDuration::seconds(300));
    }

    fn spec(yaml: &str) -> AzureKVProvider {
        serde_json::from_value(serde_json::json!({"vaultUrl": "https://v.vault.azure.net"}))
            .map(|mut s: AzureKVProvider| {
                if !yaml.is_empty() {
                    s = serde_json::from_str(yaml).unwrap();
                }
                s
            })
            .unwrap()
    }

    #[test]
    fn authority_and_resource_per_cloud() {
        let s = spec("");
        assert_eq!(authority_host(&s).unwrap(), "https://login.microsoftonline.com/");
        assert_eq!(key_vault_resource(&s), "https://vault.azure.net");
        let s = spec(r#"{"vaultUrl":"x","environmentType":"ChinaCloud"}"#);
        assert_eq!(authority_host(&s).unwrap(), "https://login.chinacloudapi.cn/");
        assert_eq!(key_vault_resource(&s), "https://vault.azure.cn");
        let s = spec(r#"{"vaultUrl":"x","environmentType":"USGovernmentCloud"}"#);
        assert_eq!(authority_host(&s).unwrap(), "https://login.microsoftonline.us/");
        let s = spec(r#"{"vaultUrl":"x","environmentType":"GermanCloud"}"#);
        assert!(authority_host(&s).unwrap_err().to_string().contains("environmentType"));
        let s = spec(
            r#"{"vaultUrl":"x","environmentType":"AzureStackCloud","useAzureSDK":true,
                "customCloudConfig":{"activeDirectoryEndpoint":"https://login.stack.local/","keyVaultEndpoint":"https://vault.stack.local/"}}"#,
        );
        assert_eq!(authority_host(&s).unwrap(), "https://login.stack.local/");
        assert_eq!(key_vault_resource(&s), "https://vault.stack.local");
    }

    #[derive(Debug)]
    struct Counting(std::sync::atomic::AtomicUsize, i64);

    #[async_trait]
    impl TokenCredential for Counting {
        async fn get_token(&self, _: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(AccessToken::new(
                format!("t{n}"),
                OffsetDateTime::now_utc() + AzDuration::seconds(self.1),
            ))
        }
    }

    struct Logins(std::sync::Mutex<Vec<&'static str>>);
    impl CallObserver for Logins {
        fn observe(&self, provider: &'static str, call: &'static str, _: bool, _: std::time::Duration) {
            assert_eq!(provider, LABEL);
            self.0.lock().unwrap().push(call);
        }
    }

    #[tokio::test]
    async fn tokens_are_cached_until_near_expiry_and_per_scope() {
        let logins = Arc::new(Logins(Default::default()));
        let inner = Arc::new(Counting(Default::default(), 3600));
        let cred = CachingCredential::new(inner.clone(), logins.clone());
        let reads = (0..20).map(|_| cred.get_token(&["https://vault.azure.net/.default"], None));
        for t in futures::future::join_all(reads).await {
            assert_eq!(t.unwrap().token.secret(), "t0");
        }
        assert_eq!(
            inner.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "concurrent callers share one request"
        );
        cred.get_token(&["other/.default"], None).await.unwrap();
        assert_eq!(*logins.0.lock().unwrap(), vec!["Login", "Login"]);

        // A token that expires within the refresh margin is renewed on every use.
        let short = Arc::new(Counting(Default::default(), 200));
        let cred = CachingCredential::new(short.clone(), logins);
        cred.get_token(&["s"], None).await.unwrap();
        cred.get_token(&["s"], None).await.unwrap();
        assert_eq!(short.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn ids_from_several_sources_must_agree() {
        assert_eq!(
            pick_id(
                "tenantId",
                &[("a", None), ("b", Some("t".into())), ("c", Some(" t ".into()))]
            )
            .unwrap(),
            Some("t".into())
        );
        assert_eq!(pick_id("tenantId", &[("a", Some("".into()))]).unwrap(), None);
        let err = pick_id("clientId", &[("a", Some("x".into())), ("b", Some("y".into()))]).unwrap_err();
        assert!(err.to_string().contains("a and b name different clientIds"), "{err}");
    }

    #[test]
    fn imds_url_names_the_identity() {
        let t: Arc<dyn HttpClient> = Arc::new(
            super::super::transport::HyperTransport::new(
                &[],
                &crate::net::egress::Egress::unrestricted(),
                crate::net::body::Budget::default(),
            )
            .unwrap(),
        );
        let c = ImdsCredential::new("http://169.254.169.254", Some("abc".into()), t.clone()).unwrap();
        let u = c.token_url("https://vault.azure.net/.default");
        assert_eq!(
            u.as_str(),
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=abc"
        );
        let c = ImdsCredential::new("http://h/", Some("/subscriptions/s/rg/id".into()), t).unwrap();
        assert!(
            c.token_url("r/.default")
                .as_str()
                .ends_with("resource=r&msi_res_id=%2Fsubscriptions%2Fs%2Frg%2Fid")
        );
    }
}
