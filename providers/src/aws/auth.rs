//! Where an AWS client's credentials come from, and how they stay fresh.
//!
//! A client's credentials are a chain, built once per client:
//! 1. a source: static keys from a Secret (`auth.secretRef`), a ServiceAccount token exchanged with
//!    `AssumeRoleWithWebIdentity` (`auth.jwt`, IRSA), or the SDK's default chain of the operator pod (env,
//!    web-identity token file, EKS Pod Identity / ECS, IMDS) when no auth is set;
//! 2. then `additionalRoles` in order and `role` last, each with `AssumeRole` on the credentials before it;
//!    `externalID` and the session tags apply to `role`, as ESO.
//!
//! Every link is wrapped in [`Refreshing`], which hands out its cached credentials until shortly before they
//! expire and fetches new ones once for all concurrent callers. So a client logs in once and then once per
//! credential lifetime, whatever the number of reads (ESO logs in per reconcile).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use syncret_crds::meta::ServiceAccountSelector;
use tokio::sync::Mutex;

use super::errors;
use crate::client::{CallObserver, observed};
use crate::credentials::Credentials as KubeCredentials;
use crate::error::ProviderError;

/// Provider label of STS calls in `externalsecret_provider_api_calls_count` (ESO does not count them).
pub(crate) const STS_LABEL: &str = "AWS/STS";
/// The ServiceAccount annotation naming the role of IRSA (as EKS and ESO).
pub(crate) const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The ServiceAccount annotation overriding the token audience (as EKS and ESO).
pub(crate) const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
/// The audience of IRSA tokens unless the annotation says otherwise.
pub(crate) const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// Session name of web-identity sessions: ESO's, so trust policies conditioned on it keep working.
pub(crate) const WEB_IDENTITY_SESSION: &str = "external-secrets-provider-aws";
/// Session name of `AssumeRole` sessions.
pub(crate) const ASSUME_ROLE_SESSION: &str = "syncret-provider-aws";
/// Lifetime of the ServiceAccount tokens minted for the exchange (the apiserver's minimum; a token is used once).
const SA_TOKEN_SECONDS: i64 = 600;
/// Credentials are renewed this long before they expire at most (less for short-lived credentials).
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// After a failed renewal, still-valid credentials are used and renewal is retried after this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15);

/// A source of wall-clock time (tests move it by hand).
pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

pub(crate) fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// When credentials obtained at `now` that expire at `expiry` should be renewed: `None` for credentials that
/// do not expire, otherwise 5 minutes before expiry, or half-way for credentials living less than 10 minutes.
pub(crate) fn refresh_at(now: SystemTime, expiry: Option<SystemTime>) -> Option<SystemTime> {
    let expiry = expiry?;
    let lifetime = expiry.duration_since(now).unwrap_or_default();
    let margin = MAX_REFRESH_MARGIN.min(lifetime / 2);
    // Checked: an expiry the STS answer put near the edge of `SystemTime` renews at once instead of panicking.
    Some(expiry.checked_sub(margin).unwrap_or(now))
}

struct Held {
    creds: Credentials,
    refresh_at: Option<SystemTime>,
}

/// Caches the credentials of `inner` until [`refresh_at`]; one renewal at a time (callers wait for it).
pub(crate) struct Refreshing {
    inner: SharedCredentialsProvider,
    held: Mutex<Option<Held>>,
    clock: Clock,
}

impl std::fmt::Debug for Refreshing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshing")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Refreshing {
    pub(crate) fn new(inner: impl ProvideCredentials + 'static, clock: Clock) -> Self {
        Self {
            inner: SharedCredentialsProvider::new(inner),
            held: Mutex::new(None),
            clock,
        }
    }

    async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut held = self.held.lock().await;
        let now = (self.clock)();
        if let Some(h) = held.as_ref()
            && h.refresh_at.is_none_or(|at| now < at)
        {
            return Ok(h.creds.clone());
        }
        match self.inner.provide_credentials().await {
            Ok(creds) => {
                let refresh = refresh_at(now, creds.expiry());
                *held = Some(Held {
                    creds: creds.clone(),
                    refresh_at: refresh,
                });
                Ok(creds)
            }
            Err(e) => match held.as_mut() {
                // Renewal failed but what we hold is still good: use it, try again a little later.
                Some(h)
                    if h.creds
                        .expiry()
                        .is_none_or(|exp| now.checked_add(Duration::from_secs(30)).is_some_and(|t| t < exp)) =>
                {
                    tracing::warn!(error = %errors::error_chain(&e), "renewing AWS credentials failed; using the current ones until they expire");
                    h.refresh_at = Some(now.checked_add(RETRY_AFTER_FAILURE).unwrap_or(now));
                    Ok(h.creds.clone())
                }
                _ => {
                    *held = None;
                    Err(e)
                }
            },
        }
    }
}

impl ProvideCredentials for Refreshing {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.get())
    }
}

/// Turns STS credentials into SDK credentials.
fn from_sts(c: Option<&aws_sdk_sts::types::Credentials>, provider: &'static str) -> Result<Credentials, ProviderError> {
    let c = c.ok_or_else(|| ProviderError::Auth("STS answered without credentials".into()))?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        provider,
    ))
}

/// STS failures are login failures, except throttling and transport errors, which stay retryable.
fn login_error(e: ProviderError, what: String) -> ProviderError {
    match e {
        ProviderError::Throttled { .. } => e,
        ProviderError::Transport(m) => ProviderError::Transport(format!("{what}: {m}")),
        ProviderError::AccessDenied(m) | ProviderError::Auth(m) => ProviderError::Auth(format!("{what}: {m}")),
        other => ProviderError::Auth(format!("{what}: {other}")),
    }
}

/// IRSA: a fresh token for a ServiceAccount (TokenRequest) exchanged with `AssumeRoleWithWebIdentity`.
pub(crate) struct WebIdentity {
    pub kube: KubeCredentials,
    /// The ServiceAccount, with the full audience list.
    pub service_account: ServiceAccountSelector,
    pub field: String,
    pub role_arn: String,
    pub sts: aws_sdk_sts::Client,
    pub observer: Arc<dyn CallObserver>,
}

impl std::fmt::Debug for WebIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebIdentity")
            .field("service_account", &self.service_account.name)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl WebIdentity {
    async fn load(&self) -> Result<Credentials, ProviderError> {
        let token = self
            .kube
            .service_account_token(&self.service_account, &[], SA_TOKEN_SECONDS, &self.field)
            .await?;
        let what = format!(
            "AssumeRoleWithWebIdentity on {} with a token of ServiceAccount {:?}",
            self.role_arn, self.service_account.name
        );
        observed(&self.observer, STS_LABEL, "AssumeRoleWithWebIdentity", async {
            let out = self
                .sts
                .assume_role_with_web_identity()
                .role_arn(&self.role_arn)
                .role_session_name(WEB_IDENTITY_SESSION)
                .web_identity_token(token.0.as_str())
                .send()
                .await
                .map_err(|e| {
                    login_error(
                        errors::from_sdk(e, "AssumeRoleWithWebIdentity", &self.role_arn, None),
                        what.clone(),
                    )
                })?;
            from_sts(out.credentials(), "syncret-web-identity")
        })
        .await
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async { self.load().await.map_err(CredentialsError::provider_error) })
    }
}

/// One `AssumeRole` link of the chain; `sts` signs with the credentials of the link before.
pub(crate) struct AssumeRole {
    pub sts: aws_sdk_sts::Client,
    pub role_arn: String,
    pub external_id: Option<String>,
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub observer: Arc<dyn CallObserver>,
}

impl std::fmt::Debug for AssumeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssumeRole")
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl AssumeRole {
    async fn load(&self) -> Result<Credentials, ProviderError> {
        let mut tags = Vec::with_capacity(self.tags.len());
        for (k, v) in &self.tags {
            tags.push(
                aws_sdk_sts::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| ProviderError::invalid_config("spec.provider.aws.sessionTags", e.to_string()))?,
            );
        }
        let what = format!("AssumeRole on {}", self.role_arn);
        observed(&self.observer, STS_LABEL, "AssumeRole", async {
            let out = self
                .sts
                .assume_role()
                .role_arn(&self.role_arn)
                .role_session_name(ASSUME_ROLE_SESSION)
                .set_external_id(self.external_id.clone())
                .set_tags((!tags.is_empty()).then(|| tags.clone()))
                .set_transitive_tag_keys(
                    (!self.transitive_tag_keys.is_empty()).then(|| self.transitive_tag_keys.clone()),
                )
                .send()
                .await
                .map_err(|e| login_error(errors::from_sdk(e, "AssumeRole", &self.role_arn, None), what.clone()))?;
            from_sts(out.credentials(), "syncret-assume-role")
        })
        .await
    }
}

impl ProvideCredentials for AssumeRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async { self.load().await.map_err(CredentialsError::provider_error) })
    }
}

/// The roles of an IRSA chain: the one the web identity is exchanged for, then those assumed on top.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct IrsaPlan {
    pub web_identity_role: String,
    /// Roles assumed with `AssumeRole` after the exchange, in order (the last is `role` when set).
    pub then_assume: Vec<String>,
    /// Whether `role` is among `then_assume` (externalID and session tags apply to it).
    pub role_assumed: bool,
    pub audiences: Vec<String>,
}

/// ESO's IRSA: the token's audience is the `eks.amazonaws.com/audience` annotation (default
/// `sts.amazonaws.com`) plus `serviceAccountRef.audiences`; the web identity is exchanged for the role of the
/// `eks.amazonaws.com/role-arn` annotation, then `additionalRoles` and `role` are assumed on top. Without the
/// annotation (ESO refuses that) the first of `additionalRoles`, `role` takes the exchange.
pub(crate) fn plan_irsa(
    annotations: &BTreeMap<String, String>,
    extra_audiences: &[String],
    additional_roles: &[String],
    role: &str,
) -> Option<IrsaPlan> {
    let mut audiences = vec![
        annotations
            .get(AUDIENCE_ANNOTATION)
            .filter(|a| !a.is_empty())
            .cloned()
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_string()),
    ];
    for a in extra_audiences {
        if !audiences.contains(a) {
            audiences.push(a.clone());
        }
    }
    let mut chain: Vec<String> = annotations
        .get(ROLE_ARN_ANNOTATION)
        .filter(|r| !r.is_empty())
        .cloned()
        .into_iter()
        .collect();
    chain.extend(additional_roles.iter().filter(|r| !r.is_empty()).cloned());
    if !role.is_empty() {
        chain.push(role.to_string());
    }
    if chain.is_empty() {
        return None;
    }
    let web_identity_role = chain.remove(0);
    let role_assumed = !role.is_empty() && !chain.is_empty();
    Some(IrsaPlan {
        web_identity_role,
        then_assume: chain,
        role_assumed,
        audiences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[test]
    fn renewal_is_five_minutes_early_or_half_way() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(refresh_at(now, None), None);
        let hour = now + Duration::from_secs(3600);
        assert_eq!(refresh_at(now, Some(hour)), Some(hour - Duration::from_secs(300)));
        let short = now + Duration::from_secs(240);
        assert_eq!(refresh_at(now, Some(short)), Some(now + Duration::from_secs(120)));
        // Already expired: renew at once.
        assert_eq!(
            refresh_at(now, Some(now - Duration::from_secs(1))),
            Some(now - Duration::from_secs(1))
        );
        // An expiry at the epoch (or any date an STS answer could carry): no underflow.
        assert_eq!(
            refresh_at(now, Some(SystemTime::UNIX_EPOCH)),
            Some(SystemTime::UNIX_EPOCH)
        );
    }

    /// Hands out credentials valid for 1h from the (fake) time of the call, counting calls; fails on demand.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        now: Arc<AtomicU64>,
        fail: Arc<std::sync::atomic::AtomicBool>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return future::ProvideCredentials::ready(Err(CredentialsError::provider_error("sts down")));
            }
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(self.now.load(Ordering::SeqCst));
            future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("ASIA{n}"),
                "secret",
                Some("token".into()),
                Some(now + Duration::from_secs(3600)),
                "test",
            )))
        }
    }

    #[tokio::test]
    async fn one_login_for_many_callers_and_renewal_before_expiry() {
        let calls = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicU64::new(1_000_000));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clock_now = now.clone();
        let clock: Clock =
            Arc::new(move || SystemTime::UNIX_EPOCH + Duration::from_secs(clock_now.load(Ordering::SeqCst)));
        let r = Arc::new(Refreshing::new(
            Counting {
                calls: calls.clone(),
                now: now.clone(),
                fail: fail.clone(),
            },
            clock,
        ));
        let gets: Vec<_> = (0..50).map(|_| r.provide_credentials()).collect();
        for c in futures::future::join_all(gets).await {
            assert_eq!(c.unwrap().access_key_id(), "ASIA0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one login for 50 concurrent callers");
        // 54 minutes later: still the same credentials.
        now.fetch_add(54 * 60, Ordering::SeqCst);
        assert_eq!(r.provide_credentials().await.unwrap().access_key_id(), "ASIA0");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // 56 minutes: inside the 5-minute margin, renewed.
        now.fetch_add(2 * 60, Ordering::SeqCst);
        assert_eq!(r.provide_credentials().await.unwrap().access_key_id(), "ASIA1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // A failed renewal keeps the still-valid credentials and waits before trying again.
        now.fetch_add(56 * 60, Ordering::SeqCst);
        fail.store(true, Ordering::SeqCst);
        assert_eq!(r.provide_credentials().await.unwrap().access_key_id(), "ASIA1");
        assert_eq!(r.provide_credentials().await.unwrap().access_key_id(), "ASIA1");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "no retry within 15s");
        // Once expired, the failure surfaces.
        now.fetch_add(10 * 60, Ordering::SeqCst);
        assert!(r.provide_credentials().await.is_err());
        fail.store(false, Ordering::SeqCst);
        assert!(r.provide_credentials().await.is_ok());
    }

    #[test]
    fn irsa_follows_the_annotation_then_chains_roles() {
        let mut ann = BTreeMap::new();
        ann.insert(ROLE_ARN_ANNOTATION.to_string(), "arn:aws:iam::1:role/sa".to_string());
        let p = plan_irsa(&ann, &[], &[], "").unwrap();
        assert_eq!(p.web_identity_role, "arn:aws:iam::1:role/sa");
        assert!(p.then_assume.is_empty());
        assert!(!p.role_assumed);
        assert_eq!(p.audiences, vec!["sts.amazonaws.com"]);

        let p = plan_irsa(&ann, &["extra".into()], &["arn:a".into()], "arn:r").unwrap();
        assert_eq!(p.then_assume, vec!["arn:a", "arn:r"]);
        assert!(p.role_assumed);
        assert_eq!(p.audiences, vec!["sts.amazonaws.com", "extra"]);

        ann.insert(AUDIENCE_ANNOTATION.to_string(), "custom".to_string());
        assert_eq!(plan_irsa(&ann, &[], &[], "").unwrap().audiences, vec!["custom"]);

        // No annotation: the store's role takes the exchange.
        let p = plan_irsa(&BTreeMap::new(), &[], &[], "arn:r").unwrap();
        assert_eq!(p.web_identity_role, "arn:r");
        assert!(!p.role_assumed);
        assert!(plan_irsa(&BTreeMap::new(), &[], &[], "").is_none());
    }
}
