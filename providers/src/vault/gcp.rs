//! Vault's `auth.gcp` (the gcp auth method's login with a signed JWT), as ESO (`providers/v1/vault/auth_gcp.go`)
//! and Vault's own `api/auth/gcp`: `POST auth/<path>/login` (path default `gcp`) with `role` and `jwt`.
//!
//! - **iam** with `secretRef` (a service-account JSON key): the JWT `{sub: <client_email>, aud: vault/<role>,
//!   exp}` is signed with the key itself (RS256, `kid` = `private_key_id`); Vault checks it against the key's
//!   public half, which Google's IAM API serves. No call to Google is made (ESO and Vault's client ask IAM
//!   Credentials `signJwt` for the same claims, which needs one more permission and two more calls).
//! - **iam** with `workloadIdentity`: the ServiceAccount's GKE Workload Identity token (the GCP provider's flow)
//!   impersonates the Google service account named by its `iam.gke.io/gcp-service-account` annotation, and IAM
//!   Credentials `signJwt` signs the same claims for it.
//! - **gce** otherwise (`serviceAccountRef` or nothing, as ESO): the instance identity token of the metadata
//!   server of the operator's node, audience `http://vault/<role>`, `format=full`. That is the operator's own
//!   identity: the one place this module uses it is [`ambient_identity_token`].
//!
//! Every answer from Google is read with a size cap and a deadline.
use std::sync::Arc;
use std::time::Duration;

use syncret_crds::provider::vault::VaultGCPAuth;

use crate::client::{CallObserver, observed};
use crate::error::{ProviderError, Result};
use crate::gcp::Endpoints;
use crate::gcp::auth::TokenSource;
use crate::gcp::jwt::RsaKey;
use crate::registry::{ProviderContext, StoreInfo};
use crate::value::Unloggable;

const DEFAULT_MOUNT: &str = "gcp";
const METADATA_URL: &str = "http://metadata.google.internal";
const IAM_CREDENTIALS_URL: &str = "https://iamcredentials.googleapis.com";
/// How long a signed login JWT is valid (Vault accepts at most 15 minutes by default, `max_jwt_exp`).
const JWT_SECONDS: i64 = 600;
/// Answers from the metadata server and IAM Credentials are small; more is refused.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Provider label of the Google calls a gcp login makes.
const LABEL: &str = "GCP/IAM";

/// How the login JWT is obtained.
enum Signer {
    /// `iam`, self-signed with a service-account key.
    Key {
        email: String,
        key_id: String,
        key: Box<RsaKey>,
    },
    /// `iam`, signed by IAM Credentials `signJwt` for `email`, authenticated with a Workload Identity token.
    SignJwt { email: String, source: Arc<TokenSource> },
    /// `gce`: the operator's metadata server.
    Metadata,
}

/// Everything a `gcp` login needs, built once per client.
pub struct GcpLogin {
    pub(crate) mount: String,
    pub(crate) role: String,
    signer: Signer,
    http: reqwest::Client,
    endpoints: Arc<Endpoints>,
    observer: Arc<dyn CallObserver>,
}

impl std::fmt::Debug for GcpLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpLogin")
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// The claims of an `iam` login JWT.
pub fn iam_claims(email: &str, role: &str, now: i64) -> serde_json::Value {
    serde_json::json!({
        "sub": email,
        "aud": format!("vault/{role}"),
        "iat": now,
        "exp": now.saturating_add(JWT_SECONDS),
    })
}

/// The metadata URL of a `gce` login's identity token.
pub fn identity_path(role: &str) -> String {
    format!(
        "/computeMetadata/v1/instance/service-accounts/default/identity?audience={}&format=full",
        url_encode(&format!("http://vault/{role}"))
    )
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Reads a response body of at most [`MAX_ANSWER_BYTES`].
async fn capped_body(mut resp: reqwest::Response, what: &str) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ProviderError::Transport(format!("{what}: {e}")))?
    {
        if body.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
            return Err(ProviderError::Transport(format!(
                "{what}: the answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl GcpLogin {
    /// Reads the credentials `gcp` names (nothing is called yet).
    pub async fn build(
        gcp: &VaultGCPAuth,
        field: &str,
        endpoints: Arc<Endpoints>,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<Self> {
        if gcp.role.trim().is_empty() {
            return Err(ProviderError::invalid_config(format!("{field}.role"), "must be set"));
        }
        let creds = ctx.credentials(store);
        let signer = if let Some(sr) = &gcp.secret_ref {
            let key_field = format!("{field}.secretRef.secretAccessKeySecretRef");
            let json = creds.secret_key(&sr.secret_access_key, &key_field).await?;
            let key = crate::gcp::ServiceAccountKey::parse(json.as_bytes(), &key_field)?;
            Signer::Key {
                email: key.client_email.clone(),
                key_id: key.private_key_id.clone(),
                key: Box::new(RsaKey::from_pem(&key.private_key.0, &key_field)?),
            }
        } else if let Some(wi) = &gcp.workload_identity {
            let sa_field = format!("{field}.workloadIdentity.serviceAccountRef");
            let account = creds.service_account(&wi.service_account_ref, &sa_field).await?;
            let email = crate::gcp::auth::annotation(&account).ok_or_else(|| {
                ProviderError::invalid_config(
                    sa_field.clone(),
                    format!(
                        "the iam login signs for a Google service account: annotate ServiceAccount {:?} with {}",
                        wi.service_account_ref.name,
                        crate::gcp::auth::GCP_SA_ANNOTATION
                    ),
                )
            })?;
            let source = crate::gcp::Gcp::with_endpoints((*endpoints).clone())
                .workload_identity_source(wi, &format!("{field}.workloadIdentity"), store, ctx)
                .await?;
            Signer::SignJwt { email, source }
        } else {
            Signer::Metadata
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            mount: Some(gcp.path.trim().trim_matches('/'))
                .filter(|p| !p.is_empty())
                .unwrap_or(DEFAULT_MOUNT)
                .to_string(),
            role: gcp.role.trim().to_string(),
            signer,
            http,
            endpoints,
            observer: ctx.observer.clone(),
        })
    }

    /// `iam` or `gce`, as Vault names the login types.
    pub fn kind(&self) -> &'static str {
        match self.signer {
            Signer::Key { .. } | Signer::SignJwt { .. } => "iam",
            Signer::Metadata => "gce",
        }
    }

    /// The login body with a freshly signed JWT.
    pub async fn body(&self) -> Result<serde_json::Value> {
        let now = chrono::Utc::now().timestamp();
        let jwt = match &self.signer {
            Signer::Key { email, key_id, key } => {
                Unloggable(key.sign(Some(key_id), &iam_claims(email, &self.role, now))?)
            }
            Signer::SignJwt { email, source } => self.sign_jwt(email, source, now).await?,
            Signer::Metadata => self.ambient_identity_token().await?,
        };
        Ok(serde_json::json!({"role": self.role, "jwt": jwt.0}))
    }

    /// IAM Credentials `signJwt` for `email`.
    async fn sign_jwt(&self, email: &str, source: &TokenSource, now: i64) -> Result<Unloggable<String>> {
        let (headers, _) = source.headers().await?;
        let url = self.endpoints.url(&format!(
            "{IAM_CREDENTIALS_URL}/v1/projects/-/serviceAccounts/{email}:signJwt"
        ));
        let payload = iam_claims(email, &self.role, now).to_string();
        observed(&self.observer, LABEL, "SignJwt", async {
            let resp = self
                .http
                .post(url)
                .headers(headers)
                .json(&serde_json::json!({ "payload": payload }))
                .send()
                .await
                .map_err(|e| ProviderError::Transport(format!("IAM Credentials signJwt: {e}")))?;
            let status = resp.status();
            let body = capped_body(resp, "IAM Credentials signJwt").await?;
            if !status.is_success() {
                return Err(crate::gcp::auth::token_error(
                    status.as_u16(),
                    None,
                    &format!("IAM Credentials signJwt for {email}"),
                    &body,
                ));
            }
            #[derive(serde::Deserialize)]
            struct Signed {
                #[serde(rename = "signedJwt")]
                signed_jwt: String,
            }
            let signed: Signed = serde_json::from_slice(&body)
                .map_err(|e| ProviderError::Auth(format!("IAM Credentials signJwt answered without a JWT: {e}")))?;
            Ok(Unloggable(signed.signed_jwt))
        })
        .await
    }

    /// The instance identity token of the operator's own metadata server (`gce`): the only use of the
    /// operator's Google identity in Vault's gcp login.
    async fn ambient_identity_token(&self) -> Result<Unloggable<String>> {
        let url = self
            .endpoints
            .url(&format!("{METADATA_URL}{}", identity_path(&self.role)));
        observed(&self.observer, LABEL, "GetIdentityToken", async {
            let resp = self
                .http
                .get(url)
                .header("Metadata-Flavor", "Google")
                .send()
                .await
                .map_err(|e| ProviderError::Transport(format!("metadata server (identity token): {e}")))?;
            let status = resp.status();
            let body = capped_body(resp, "metadata server (identity token)").await?;
            let text = String::from_utf8(body).unwrap_or_default();
            if !status.is_success() || text.trim().is_empty() {
                return Err(ProviderError::Auth(format!(
                    "the gce login needs the operator's metadata server: it answered {status} for an identity token"
                )));
            }
            Ok(Unloggable(text.trim().to_string()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_and_metadata_paths_as_vault_expects() {
        let c = iam_claims("sa@p.iam.gserviceaccount.com", "reader", 1_000);
        assert_eq!(c["sub"], "sa@p.iam.gserviceaccount.com");
        assert_eq!(c["aud"], "vault/reader");
        assert_eq!(c["exp"], 1_600);
        assert_eq!(
            identity_path("reader"),
            "/computeMetadata/v1/instance/service-accounts/default/identity?audience=http%3A%2F%2Fvault%2Freader&format=full"
        );
    }
}
