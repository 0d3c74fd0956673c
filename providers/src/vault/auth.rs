//! Logging in to Vault, and the token's life: one login per client (the client is shared by every reconcile and
//! ExternalSecret of the store), renewed on use once two thirds of its TTL have passed, a new login when it cannot
//! be renewed (not renewable, renewal refused, or its max TTL reached), revoked when the client is closed.
//! Tokens from `tokenSecretRef` are used as they are: never renewed, never revoked (ESO PR #381).
use std::time::{Duration, Instant};

use syncret_crds::meta::{SecretKeySelector, ServiceAccountSelector};
use syncret_crds::provider::vault::VaultAuth;
use vaultrs::api::auth::approle::requests::LoginWithApproleRequest;
use vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest;
use vaultrs::api::auth::oidc::requests::JWTLoginRequest;
use vaultrs::api::auth::userpass::requests::LoginRequest as UserPassLoginRequest;
use vaultrs::api::token::requests::{LookupTokenSelfRequest, RenewTokenSelfRequest, RevokeTokenSelfRequest};

use super::Settings;
use super::http::{CallError, Envelope, Http};
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::value::Unloggable;

/// Where the controller's own ServiceAccount token lives in a pod (kubernetes auth without a ref, as ESO).
const POD_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Lifetime of ServiceAccount tokens minted for a login (ESO: 600 s); they are used once, right away.
const SA_TOKEN_SECONDS: i64 = 600;

/// Where a token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `tokenSecretRef` (or no auth at all): used as given.
    Static,
    /// A login of ours: renewed, replaced, revoked.
    Login,
}

/// A Vault token and what we know of its lifetime.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Unloggable<String>,
    pub origin: Origin,
    pub renewable: bool,
    /// Remaining lifetime when last checked (at `at`); zero means it does not expire.
    pub ttl: Duration,
    pub at: Instant,
    /// The lifetime the login granted: renewal starts when less than a third of it is left.
    pub granted: Duration,
    /// The token's accessor (from the login), when Vault gave one.
    pub accessor: Option<String>,
    /// Set once a call with this token created a lease (a dynamic secret): Vault revokes a token's leases with the
    /// token, so such a token is never revoked by us and is kept renewed while its leases are (shared by clones).
    pub owns_leases: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What to do before using a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Use,
    Renew,
    Login,
}

impl Token {
    pub fn new_static(value: String) -> Self {
        Self {
            value: Unloggable(value),
            origin: Origin::Static,
            renewable: false,
            ttl: Duration::ZERO,
            at: Instant::now(),
            granted: Duration::ZERO,
            accessor: None,
            owns_leases: Default::default(),
        }
    }

    fn from_login(value: Unloggable<String>, ttl_seconds: u64, renewable: bool, now: Instant) -> Self {
        let ttl = Duration::from_secs(ttl_seconds);
        Self {
            value,
            origin: Origin::Login,
            renewable,
            ttl,
            at: now,
            granted: ttl,
            accessor: None,
            owns_leases: Default::default(),
        }
    }

    /// Whether a lease was created with this token.
    pub fn owns_leases(&self) -> bool {
        self.owns_leases.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that a lease was created with this token.
    pub fn mark_lease_owner(&self) {
        self.owns_leases.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the token ends (wall clock), as far as known at `now`; `None` for one that does not expire.
    pub fn expires_at(&self, now: Instant) -> Option<chrono::DateTime<chrono::Utc>> {
        if self.origin == Origin::Static || self.ttl.is_zero() {
            return None;
        }
        let left = chrono::Duration::from_std(self.remaining(now)).unwrap_or(chrono::Duration::zero());
        chrono::Utc::now().checked_add_signed(left)
    }

    fn remaining(&self, now: Instant) -> Duration {
        self.ttl.saturating_sub(now.saturating_duration_since(self.at))
    }

    /// Renewal starts when less than this is left.
    fn margin(&self) -> Duration {
        self.granted / 3
    }

    /// Whether the token may still be used (static tokens always; ours until they expire).
    pub fn is_live(&self, now: Instant) -> bool {
        self.origin == Origin::Static || self.ttl.is_zero() || !self.remaining(now).is_zero()
    }

    /// What to do with this token at `now`.
    pub fn plan(&self, now: Instant) -> Action {
        if self.origin == Origin::Static || self.ttl.is_zero() {
            return Action::Use;
        }
        let remaining = self.remaining(now);
        if remaining > self.margin() {
            Action::Use
        } else if self.renewable && remaining >= Duration::from_secs(1) {
            Action::Renew
        } else {
            Action::Login
        }
    }

    /// The token after a renewal that granted `ttl_seconds`, or `None` when that is too short to be worth keeping
    /// (the max TTL is near: log in again instead).
    pub fn renewed(&self, ttl_seconds: u64, renewable: bool, now: Instant) -> Option<Token> {
        let ttl = Duration::from_secs(ttl_seconds);
        (ttl > self.margin()).then(|| Token {
            ttl,
            at: now,
            renewable,
            ..self.clone()
        })
    }
}

/// The login method of an auth block, by its JSON name (ESO's order of precedence).
pub fn method(auth: &VaultAuth) -> Option<&'static str> {
    auth.methods().first().copied()
}

fn text(v: crate::value::SecretValue, field: &str) -> Result<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| ProviderError::invalid_config(field, "is not UTF-8 text"))
}

fn with_default_key(sel: &SecretKeySelector, key: &str) -> SecretKeySelector {
    let mut s = sel.clone();
    if s.key.is_empty() {
        s.key = key.to_string();
    }
    s
}

/// `method` names the login for messages: the method, and the role where the method has one.
fn login_error(method: &str, mount: &str, e: CallError) -> ProviderError {
    if let Some(refused) = e.refusal() {
        return refused;
    }
    match e.status {
        None => ProviderError::Transport(format!("{method} login at auth/{mount}: {}", e.message)),
        Some(429) => ProviderError::Throttled { retry_after: None },
        Some(s) if s >= 500 => ProviderError::Transport(format!("{method} login at auth/{mount}: {}", e.message)),
        Some(_) => ProviderError::Auth(format!("{method} login at auth/{mount} refused: {}", e.message)),
    }
}

/// Logins that sign with a cloud identity (`iam`, `gcp`): their credentials are set up once per client by the
/// provider factory (see `Vault::new_client`), then each login signs afresh.
#[derive(Default)]
pub struct CloudLogins {
    #[cfg(feature = "aws")]
    pub iam: Option<super::iam::IamLogin>,
    #[cfg(feature = "gcp")]
    pub gcp: Option<super::gcp::GcpLogin>,
}

/// `POST auth/<mount>/login` with a JSON body (the `iam` and `gcp` logins).
struct JsonLogin {
    mount: String,
    body: serde_json::Value,
}

impl rustify::endpoint::Endpoint for JsonLogin {
    type Response = ();
    const REQUEST_BODY_TYPE: rustify::enums::RequestType = rustify::enums::RequestType::JSON;
    const RESPONSE_BODY_TYPE: rustify::enums::ResponseType = rustify::enums::ResponseType::JSON;

    fn path(&self) -> String {
        format!("auth/{}/login", self.mount)
    }

    fn method(&self) -> rustify::enums::RequestMethod {
        rustify::enums::RequestMethod::POST
    }

    fn body(&self) -> std::result::Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(Some(self.body.to_string().into_bytes()))
    }
}

fn built<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| ProviderError::Transport(format!("building a Vault request: {e}")))
}

/// The `iam` login request (see [`super::iam`]) and how messages name it.
#[cfg(feature = "aws")]
async fn iam_request(cloud: &CloudLogins, field: &str) -> Result<(String, JsonLogin)> {
    let iam = cloud
        .iam
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(field, "the AWS credentials were not set up"))?;
    let req = JsonLogin {
        mount: iam.mount.clone(),
        body: iam.body().await?,
    };
    Ok((format!("iam (role {:?})", iam.role), req))
}

#[cfg(not(feature = "aws"))]
async fn iam_request(_: &CloudLogins, field: &str) -> Result<(String, JsonLogin)> {
    Err(ProviderError::Unsupported(format!(
        "{field}: this syncret build has no AWS support (the aws feature)"
    )))
}

/// The `gcp` login request (see [`super::gcp`]) and how messages name it.
#[cfg(feature = "gcp")]
async fn gcp_request(cloud: &CloudLogins, field: &str) -> Result<(String, JsonLogin)> {
    let gcp = cloud
        .gcp
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(field, "the Google credentials were not set up"))?;
    let req = JsonLogin {
        mount: gcp.mount.clone(),
        body: gcp.body().await?,
    };
    Ok((format!("gcp {} (role {:?})", gcp.kind(), gcp.role), req))
}

#[cfg(not(feature = "gcp"))]
async fn gcp_request(_: &CloudLogins, field: &str) -> Result<(String, JsonLogin)> {
    Err(ProviderError::Unsupported(format!(
        "{field}: this syncret build has no Google Cloud support (the gcp feature)"
    )))
}

/// Reads the auth block's credentials and logs in (one `Login` call), or returns the static token.
pub async fn login(s: &Settings, creds: &Credentials, http: &Http, cloud: &CloudLogins) -> Result<Token> {
    let base = s.base;
    let Some(auth) = &s.auth else {
        // No auth block: requests go without a token (ESO does the same).
        return Ok(Token::new_static(String::new()));
    };
    let ns = s.auth_namespace();
    let f = |rest: &str| format!("{base}.auth.{rest}");
    let (method, mount, res): (
        String,
        String,
        std::result::Result<Envelope<serde_json::Value>, CallError>,
    ) = if let Some(sel) = &auth.token_secret_ref {
        let t = text(creds.secret_key(sel, &f("tokenSecretRef")).await?, &f("tokenSecretRef"))?;
        return Ok(Token::new_static(t.trim().to_string()));
    } else if let Some(a) = &auth.app_role {
        let role_id = if !a.role_id.trim().is_empty() {
            a.role_id.trim().to_string()
        } else if let Some(r) = &a.role_ref {
            text(creds.secret_key(r, &f("appRole.roleRef")).await?, &f("appRole.roleRef"))?
                .trim()
                .to_string()
        } else {
            return Err(ProviderError::invalid_config(
                f("appRole"),
                "one of roleId or roleRef must be set",
            ));
        };
        let secret_id = text(
            creds.secret_key(&a.secret_ref, &f("appRole.secretRef")).await?,
            &f("appRole.secretRef"),
        )?;
        let req = built(
            LoginWithApproleRequest::builder()
                .mount(a.path.as_str())
                .role_id(role_id)
                .secret_id(secret_id.trim())
                .build(),
        )?;
        ("appRole".to_string(), a.path.clone(), http.call(&req, None, ns).await)
    } else if let Some(k) = &auth.kubernetes {
        let jwt = if let Some(sa) = &k.service_account_ref {
            creds
                .service_account_token(sa, &[], SA_TOKEN_SECONDS, &f("kubernetes.serviceAccountRef"))
                .await?
                .0
        } else if let Some(sel) = &k.secret_ref {
            let sel = with_default_key(sel, "token");
            text(
                creds.secret_key(&sel, &f("kubernetes.secretRef")).await?,
                &f("kubernetes.secretRef"),
            )?
        } else {
            tokio::fs::read_to_string(POD_TOKEN_PATH).await.map_err(|e| {
                ProviderError::Credentials(format!(
                    "{}: no serviceAccountRef or secretRef, and the controller's own token \
                         ({POD_TOKEN_PATH}) is unreadable: {e}",
                    f("kubernetes")
                ))
            })?
        };
        let req = built(
            LoginWithKubernetesRequest::builder()
                .mount(k.path.as_str())
                .role(k.role.as_str())
                .jwt(jwt.trim())
                .build(),
        )?;
        (
            "kubernetes".to_string(),
            k.path.clone(),
            http.call(&req, None, ns).await,
        )
    } else if let Some(l) = &auth.ldap {
        // LDAP's login has userpass's shape: POST auth/<mount>/login/<username> {"password"}.
        let password = text(
            creds.secret_key(&l.secret_ref, &f("ldap.secretRef")).await?,
            &f("ldap.secretRef"),
        )?;
        let req = built(
            UserPassLoginRequest::builder()
                .mount(l.path.as_str())
                .username(l.username.trim())
                .password(password)
                .build(),
        )?;
        ("ldap".to_string(), l.path.clone(), http.call(&req, None, ns).await)
    } else if let Some(u) = &auth.user_pass {
        let password = text(
            creds.secret_key(&u.secret_ref, &f("userPass.secretRef")).await?,
            &f("userPass.secretRef"),
        )?;
        let req = built(
            UserPassLoginRequest::builder()
                .mount(u.path.as_str())
                .username(u.username.trim())
                .password(password)
                .build(),
        )?;
        ("userPass".to_string(), u.path.clone(), http.call(&req, None, ns).await)
    } else if let Some(j) = &auth.jwt {
        let jwt = if let Some(sel) = &j.secret_ref {
            text(creds.secret_key(sel, &f("jwt.secretRef")).await?, &f("jwt.secretRef"))?
        } else if let Some(k) = &j.kubernetes_service_account_token {
            // ESO: the selector's audiences plus `audiences` (default `vault`).
            let mut audiences = k.service_account_ref.audiences.clone();
            audiences.extend(k.audiences.clone().unwrap_or_else(|| vec!["vault".to_string()]));
            let sa = ServiceAccountSelector {
                audiences,
                ..k.service_account_ref.clone()
            };
            creds
                .service_account_token(
                    &sa,
                    &[],
                    k.expiration_seconds.unwrap_or(SA_TOKEN_SECONDS),
                    &f("jwt.kubernetesServiceAccountToken.serviceAccountRef"),
                )
                .await?
                .0
        } else {
            return Err(ProviderError::invalid_config(
                f("jwt"),
                "one of secretRef or kubernetesServiceAccountToken must be set",
            ));
        };
        let mut b = JWTLoginRequest::builder();
        b.mount(j.path.as_str()).jwt(jwt.trim());
        if !j.role.trim().is_empty() {
            b.role(j.role.trim());
        }
        let req = built(b.build())?;
        ("jwt".to_string(), j.path.clone(), http.call(&req, None, ns).await)
    } else if let Some(c) = &auth.cert {
        // The client certificate is in the TLS configuration (see `new_client`); the login names the role.
        let req = CertLogin {
            mount: c.path.clone(),
            name: c.vault_role.trim().to_string(),
        };
        ("cert".to_string(), c.path.clone(), http.call(&req, None, ns).await)
    } else if auth.iam.is_some() {
        let (what, req) = iam_request(cloud, &f("iam")).await?;
        (what, req.mount.clone(), http.call(&req, None, ns).await)
    } else if auth.gcp.is_some() {
        let (what, req) = gcp_request(cloud, &f("gcp")).await?;
        (what, req.mount.clone(), http.call(&req, None, ns).await)
    } else {
        return Err(ProviderError::invalid_config(
            format!("{base}.auth"),
            "no auth method is set",
        ));
    };
    let env = res.map_err(|e| login_error(&method, &mount, e))?;
    let auth = env
        .auth
        .ok_or_else(|| ProviderError::Auth(format!("{method} login at auth/{mount}: the answer carries no token")))?;
    let mut token = Token::from_login(auth.client_token, auth.lease_duration, auth.renewable, Instant::now());
    token.accessor = Some(auth.accessor).filter(|a| !a.is_empty());
    Ok(token)
}

/// `POST auth/<mount>/login {"name": <role>}`: vaultrs's cert `LoginRequest` sends `cert_name`, which Vault
/// ignores (it then tries every role), so this one is ours.
struct CertLogin {
    mount: String,
    name: String,
}

impl rustify::endpoint::Endpoint for CertLogin {
    type Response = ();
    const REQUEST_BODY_TYPE: rustify::enums::RequestType = rustify::enums::RequestType::JSON;
    const RESPONSE_BODY_TYPE: rustify::enums::ResponseType = rustify::enums::ResponseType::JSON;

    fn path(&self) -> String {
        format!("auth/{}/login", self.mount)
    }

    fn method(&self) -> rustify::enums::RequestMethod {
        rustify::enums::RequestMethod::POST
    }

    fn body(&self) -> std::result::Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        let body = if self.name.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({ "name": self.name })
        };
        Ok(Some(body.to_string().into_bytes()))
    }
}

/// `auth/token/renew-self`.
pub async fn renew(http: &Http, token: &Token, ns: Option<&str>) -> std::result::Result<(u64, bool), CallError> {
    let req = RenewTokenSelfRequest::builder()
        .build()
        .map_err(|e| CallError::transport(e.to_string()))?;
    let env: Envelope<serde_json::Value> = http.call(&req, Some(&token.value), ns).await?;
    let auth = env
        .auth
        .ok_or_else(|| CallError::transport("renewal answer without auth"))?;
    Ok((auth.lease_duration, auth.renewable))
}

/// What `auth/token/lookup-self` says about a token.
#[derive(serde::Deserialize, Debug, Default)]
pub struct Lookup {
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub renewable: bool,
}

/// `auth/token/lookup-self`.
pub async fn lookup(http: &Http, token: &str, ns: Option<&str>) -> std::result::Result<Lookup, CallError> {
    let req = LookupTokenSelfRequest::builder()
        .build()
        .map_err(|e| CallError::transport(e.to_string()))?;
    let env: Envelope<Lookup> = http.call(&req, Some(token), ns).await?;
    Ok(env.data.unwrap_or_default())
}

/// `auth/token/revoke-self`.
pub async fn revoke(http: &Http, token: &str, ns: Option<&str>) -> std::result::Result<(), CallError> {
    let req = RevokeTokenSelfRequest::builder()
        .build()
        .map_err(|e| CallError::transport(e.to_string()))?;
    let _: Envelope<serde_json::Value> = http.call(&req, Some(token), ns).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged_in(ttl: u64, renewable: bool, at: Instant) -> Token {
        Token::from_login(Unloggable("t".into()), ttl, renewable, at)
    }

    #[test]
    fn fresh_tokens_are_used_then_renewed_then_replaced() {
        let t0 = Instant::now();
        let t = logged_in(3600, true, t0);
        assert_eq!(t.plan(t0), Action::Use);
        assert_eq!(t.plan(t0 + Duration::from_secs(2399)), Action::Use);
        assert_eq!(
            t.plan(t0 + Duration::from_secs(2401)),
            Action::Renew,
            "at 2/3 of the TTL"
        );
        assert_eq!(t.plan(t0 + Duration::from_secs(3600)), Action::Login, "expired");
        let not_renewable = logged_in(3600, false, t0);
        assert_eq!(not_renewable.plan(t0 + Duration::from_secs(2401)), Action::Login);
        assert!(t.is_live(t0 + Duration::from_secs(3599)));
        assert!(!t.is_live(t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn renewal_until_the_max_ttl_then_login() {
        let t0 = Instant::now();
        let t = logged_in(3000, true, t0);
        let now = t0 + Duration::from_secs(2100);
        let r = t.renewed(3000, true, now).expect("a full renewal is kept");
        assert_eq!(r.plan(now), Action::Use);
        assert_eq!(r.plan(now + Duration::from_secs(2001)), Action::Renew);
        // The max TTL caps the renewal below the margin: log in instead.
        assert!(t.renewed(900, true, now).is_none());
        assert!(t.renewed(1001, true, now).is_some());
    }

    #[test]
    fn static_and_non_expiring_tokens_are_never_touched() {
        let t0 = Instant::now();
        let s = Token::new_static("root".into());
        assert_eq!(s.plan(t0 + Duration::from_secs(1_000_000)), Action::Use);
        let forever = logged_in(0, false, t0);
        assert_eq!(forever.plan(t0 + Duration::from_secs(1_000_000)), Action::Use);
        assert!(format!("{s:?}").contains("<redacted>") && !format!("{s:?}").contains("root"));
    }
}
