//! GithubAccessToken: an installation access token of a GitHub App, as ESO's generator. The app's private key (a
//! PEM in a Secret of the generator's namespace: PKCS#1 as GitHub hands it out, or PKCS#8) signs a short RS256 JWT
//! (`iss` the app ID), which is exchanged at `POST {url}/app/installations/{installID}/access_tokens` (GitHub's
//! REST API, "Create an installation access token for an app") with the `repositories` and `permissions` asked
//! for. `url` is the API root: `https://api.github.com` by default, `https://HOST/api/v3` for GitHub Enterprise
//! Server.
//!
//! The values are `token` (ESO's key) and `expires_at` (GitHub's RFC 3339 expiry). The expiry is the values'
//! [`Lease`] (not renewable): the operator records it in a GeneratorState and makes a new token when a third of
//! its life is left, so a Secret never holds an expired token whatever its `refreshInterval`. The call goes
//! through [`crate::rest::Rest`]: the generator scope's egress rules, no redirects (the JWT must not follow a
//! `3xx`), a [`TIMEOUT`] deadline and a body cap; errors carry the status and GitHub's message, never the key, the
//! JWT or the token.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use syncret_crds::externalsecret::GeneratorKind;
use syncret_crds::generator::GithubAccessTokenSpec;

use super::{Generated, GeneratorClient, GeneratorInfo};
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::lease::Lease;
use crate::registry::ProviderContext;
use crate::rest::{Rest, secret_header};
use crate::value::SecretValue;

/// GitHub's public API.
pub const DEFAULT_API: &str = "https://api.github.com";
/// Deadline of the token request, body included.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The JWT's validity (GitHub accepts at most 10 minutes) and its backdating for clock drift (GitHub's advice).
const JWT_LIFETIME_SECS: i64 = 300;
const JWT_BACKDATE_SECS: i64 = 60;
/// The call's metric label.
const CALL: &str = "CreateInstallationAccessToken";

/// Why a private key cannot sign (never carries the key).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is not a PEM private key")]
    NotPem,
    #[error("the private key is not an RSA key (GitHub App keys are RSA)")]
    NotRsa,
    #[error("signing the JWT failed")]
    Sign,
}

/// An RS256 JWT for the app: `{"alg":"RS256","typ":"JWT"}`, `iat` backdated, `exp` [`JWT_LIFETIME_SECS`] ahead.
pub fn app_jwt(pem: &[u8], app_id: &str, now: i64) -> std::result::Result<String, KeyError> {
    let key = match PrivateKeyDer::from_pem_slice(pem).map_err(|_| KeyError::NotPem)? {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err(KeyError::NotRsa),
    }
    .map_err(|_| KeyError::NotRsa)?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iat": now.saturating_sub(JWT_BACKDATE_SECS),
        "exp": now.saturating_add(JWT_LIFETIME_SECS),
        "iss": app_id,
    });
    let signing_input = format!("{header}.{}", b64.encode(claims.to_string()));
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| KeyError::Sign)?;
    Ok(format!("{signing_input}.{}", b64.encode(sig)))
}

/// The request body: only what is set (an empty body asks for everything the installation grants, as ESO).
pub fn request_body(spec: &GithubAccessTokenSpec) -> Option<serde_json::Value> {
    let mut body = serde_json::Map::new();
    if let Some(p) = &spec.permissions {
        body.insert("permissions".into(), serde_json::json!(p));
    }
    if !spec.repositories.is_empty() {
        body.insert("repositories".into(), serde_json::json!(spec.repositories));
    }
    (!body.is_empty()).then_some(serde_json::Value::Object(body))
}

/// GitHub's answer (only what is used; no `Debug`: it holds the token).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: String,
}

/// The values and lease of an answer, at `now`.
fn values(answer: TokenAnswer, install_id: &str, now: DateTime<Utc>) -> Result<Generated> {
    if answer.token.is_empty() {
        return Err(ProviderError::Transport(format!(
            "{CALL}: the answer has an empty token"
        )));
    }
    let expires = DateTime::parse_from_rfc3339(answer.expires_at.trim())
        .map_err(|_| ProviderError::Transport(format!("{CALL}: expires_at is not an RFC 3339 time")))?
        .with_timezone(&Utc);
    let left = (expires - now).num_seconds().max(1);
    let lease = Lease {
        lease_id: format!("github/installations/{install_id}/{}", expires.timestamp()),
        renewable: false,
        duration_seconds: u64::try_from(left).unwrap_or(1),
        expire_time: expires,
        capped: false,
        token_accessor: None,
        token_expire_time: None,
    };
    let data: BTreeMap<String, SecretValue> = [
        ("token".to_string(), SecretValue::from(answer.token)),
        ("expires_at".to_string(), SecretValue::from(answer.expires_at)),
    ]
    .into();
    Ok(Generated {
        data,
        lease: Some(lease),
    })
}

pub(super) fn client(
    spec: &GithubAccessTokenSpec,
    info: &GeneratorInfo,
    ctx: &ProviderContext,
) -> Result<Arc<dyn GeneratorClient>> {
    let store = info.as_store(super::store_spec(Default::default()));
    let base = if spec.url.trim().is_empty() {
        DEFAULT_API
    } else {
        spec.url.trim()
    };
    let rest = Rest::with_timeout(
        base,
        b"",
        &format!("{}.url", info.base),
        "GitHub",
        ctx.observer.clone(),
        ctx.http_client(&store),
        TIMEOUT,
    )?;
    Ok(Arc::new(GithubGenerator {
        rest,
        creds: ctx.credentials(&store),
        spec: spec.clone(),
        base: info.base,
    }))
}

struct GithubGenerator {
    rest: Rest,
    creds: Credentials,
    spec: GithubAccessTokenSpec,
    base: &'static str,
}

#[async_trait]
impl GeneratorClient for GithubGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::GithubAccessToken
    }

    async fn generate(&self) -> Result<Generated> {
        let key_field = format!("{}.auth.privateKey.secretRef", self.base);
        let pem = self
            .creds
            .secret_key(&self.spec.auth.private_key.secret_ref, &key_field)
            .await?;
        let jwt = app_jwt(pem.as_bytes(), self.spec.app_id.trim(), Utc::now().timestamp())
            .map_err(|e| ProviderError::Credentials(format!("{key_field}: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            secret_header(&format!("Bearer {jwt}"), &key_field)?,
        );
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert("X-GitHub-Api-Version", HeaderValue::from_static("2022-11-28"));
        let install = self.spec.install_id.as_str();
        let body = request_body(&self.spec);
        let resp = self
            .rest
            .call(
                CALL,
                Method::POST,
                &["app", "installations", install, "access_tokens"],
                &[],
                headers,
                body.as_ref(),
            )
            .await?;
        if !resp.is_success() {
            return Err(resp.error(CALL, &format!("installation {install}"), &key_field));
        }
        let answer: TokenAnswer = resp.json(CALL)?;
        values(answer, install, Utc::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway 2048-bit key made for these tests (PKCS#1, as GitHub hands app keys out).
    pub(crate) const TEST_KEY: &str = include_str!("testdata/github-app.pem");

    #[test]
    fn the_jwt_is_rs256_with_the_app_as_issuer_and_verifies() {
        let jwt = app_jwt(TEST_KEY.as_bytes(), "12345", 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "12345");
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 300);
        // The signature verifies with the public key.
        let der = rustls::pki_types::PrivatePkcs1KeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap();
        let pair = RsaKeyPair::from_der(der.secret_pkcs1_der()).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            pair.public().as_ref().to_vec(),
        );
        let sig = b64.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        // Not a key, or not RSA: an error that quotes nothing.
        assert_eq!(app_jwt(b"junk", "1", 0).unwrap_err(), KeyError::NotPem);
        let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBYr\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(app_jwt(ec.as_bytes(), "1", 0).unwrap_err(), KeyError::NotRsa);
    }

    #[test]
    fn the_body_carries_only_what_is_set() {
        let mut spec: GithubAccessTokenSpec = serde_json::from_value(serde_json::json!({
            "appID": "1", "installID": "2",
            "auth": {"privateKey": {"secretRef": {"name": "k", "key": "pem"}}}
        }))
        .unwrap();
        assert_eq!(request_body(&spec), None);
        spec.repositories = vec!["app".into()];
        spec.permissions = Some([("contents".to_string(), "read".to_string())].into());
        assert_eq!(
            request_body(&spec).unwrap(),
            serde_json::json!({"repositories": ["app"], "permissions": {"contents": "read"}})
        );
    }

    #[test]
    fn the_expiry_becomes_a_lease() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let answer = TokenAnswer {
            token: "ghs_x".into(),
            expires_at: "2026-01-01T01:00:00Z".into(),
        };
        let g = values(answer, "42", now).unwrap();
        assert_eq!(g.data["token"].as_bytes(), b"ghs_x");
        assert_eq!(g.data["expires_at"].as_bytes(), b"2026-01-01T01:00:00Z");
        let lease = g.lease.unwrap();
        assert_eq!((lease.renewable, lease.duration_seconds), (false, 3600));
        assert!(lease.lease_id.starts_with("github/installations/42/"));
        let bad = TokenAnswer {
            token: "ghs_secret".into(),
            expires_at: "tomorrow".into(),
        };
        let e = values(bad, "42", now).err().unwrap().to_string();
        assert!(e.contains("expires_at") && !e.contains("ghs_secret"), "{e}");
    }
}
