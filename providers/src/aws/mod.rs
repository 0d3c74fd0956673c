//! `spec.provider.aws`: AWS Secrets Manager (`service: SecretsManager`) and Systems Manager Parameter Store
//! (`service: ParameterStore`), as ESO's aws provider. `CertificateManager` is refused with an `Unsupported`
//! error naming `spec.provider.aws.service`, which the store's condition shows.
//!
//! - Auth ([`auth`]): static keys from a Secret (`auth.secretRef`), IRSA (`auth.jwt.serviceAccountRef`: a
//!   TokenRequest for the ServiceAccount exchanged with `AssumeRoleWithWebIdentity`), or the operator pod's
//!   default credential chain when no auth is set; then `additionalRoles` and `role` with `AssumeRole`
//!   (`externalID`, session tags). Credentials are cached in the client and renewed before they expire.
//! - Reads ([`secretsmanager`]): `GetSecretValue` / `BatchGetSecretValue` (cross-ExternalSecret batching,
//!   [`batch`]), `DescribeSecret` for `metadataPolicy: Fetch`, `ListSecrets` for `dataFrom.find`.
//! - Writes ([`push`]): `CreateSecret` / `PutSecretValue` / `DeleteSecret` with ESO's `managed-by` tag.
//! - Parameter Store ([`parameterstore`]): `GetParameter` / `GetParameters` (batched like Secrets Manager, at
//!   most 10 names a call), `GetParametersByPath` / `DescribeParameters` for `find`, `PutParameter` /
//!   `DeleteParameter` for PushSecret, with the same auth.
//! - Errors ([`errors`]) map to NotFound / AccessDenied / Auth / Throttled / Transport; the SDK retries
//!   throttling and transient errors as `spec.retrySettings` says.
//!
//! Endpoints: the SDK's `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_SSM`,
//! `AWS_ENDPOINT_URL_STS`, and ESO's `AWS_SECRETSMANAGER_ENDPOINT` / `AWS_SSM_ENDPOINT` / `AWS_STS_ENDPOINT`
//! (private endpoints, LocalStack); tests use [`Aws::with_endpoint`].
pub(crate) mod auth;
mod batch;
pub(crate) mod errors;
mod parameterstore;
mod push;
mod secretsmanager;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_secretsmanager::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use syncret_crds::meta::ServiceAccountSelector;
use syncret_crds::provider::aws::{AWSProvider, AWSServiceType, SessionTagsPolicy};

use crate::client::SecretsClient;
use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};

use auth::{AssumeRole, Clock, Refreshing, WebIdentity};

/// ESO's provider label for Secrets Manager calls.
pub(crate) const LABEL: &str = "AWS/SecretsManager";
const BASE: &str = "spec.provider.aws";
/// How long a batch stays open at most while reads keep arriving (see [`batch`]).
const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(50);

/// Where Secrets Manager, Parameter Store and STS are reached; `None`: the SDK's resolution (region, env,
/// profile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub secrets_manager: Option<String>,
    pub parameter_store: Option<String>,
    pub sts: Option<String>,
    /// ECR and ECR Public (the ECRAuthorizationToken generator).
    pub ecr: Option<String>,
    pub ecr_public: Option<String>,
}

impl Endpoints {
    /// ESO's environment variables `AWS_SECRETSMANAGER_ENDPOINT`, `AWS_SSM_ENDPOINT` and `AWS_STS_ENDPOINT`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            secrets_manager: var("AWS_SECRETSMANAGER_ENDPOINT"),
            parameter_store: var("AWS_SSM_ENDPOINT"),
            sts: var("AWS_STS_ENDPOINT"),
            ecr: var("AWS_ECR_ENDPOINT"),
            ecr_public: var("AWS_ECR_PUBLIC_ENDPOINT"),
        }
    }
}

/// The factory. Holds one HTTPS client (rustls on ring) shared by every store's client (clones share it).
#[derive(Clone)]
pub struct Aws {
    endpoints: Endpoints,
    batch_window: Duration,
    http: SharedHttpClient,
    clock: Clock,
}

impl Default for Aws {
    fn default() -> Self {
        Self::new(Endpoints::from_env())
    }
}

impl Aws {
    pub fn new(endpoints: Endpoints) -> Self {
        let http = capped(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        );
        Self {
            endpoints,
            batch_window: DEFAULT_BATCH_WINDOW,
            http,
            clock: auth::system_clock(),
        }
    }

    /// Every AWS service at one URL (moto, LocalStack, a test server).
    pub fn with_endpoint(url: impl Into<String>) -> Self {
        let url = url.into();
        Self::new(Endpoints {
            secrets_manager: Some(url.clone()),
            parameter_store: Some(url.clone()),
            sts: Some(url.clone()),
            ecr: Some(url.clone()),
            ecr_public: Some(url),
        })
    }

    /// How long a batch of reads stays open at most while reads keep arriving (default 50 ms); a batch also
    /// closes at the service's maximum of ids (20 secrets, 10 parameters), or a fifth of this (10 ms) after the
    /// latest read.
    pub fn batch_window(mut self, window: Duration) -> Self {
        self.batch_window = window;
        self
    }
}

fn spec(store: &StoreInfo) -> Result<&AWSProvider> {
    store
        .spec
        .provider
        .aws
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

/// ESO's referent test: a ClusterSecretStore auth ref without a namespace resolves per ExternalSecret
/// namespace. Session tags naming the namespace (`sessionTagsPolicy: Simple|Custom`) make the client
/// per-namespace too.
fn is_referent_spec(spec: &AWSProvider) -> bool {
    let no_ns = |ns: &Option<String>| ns.as_deref().is_none_or(str::is_empty);
    let auth = spec.auth.as_ref();
    let jwt = auth
        .and_then(|a| a.jwt_auth.as_ref())
        .and_then(|j| j.service_account_ref.as_ref())
        .is_some_and(|sa| no_ns(&sa.namespace));
    let keys = auth.and_then(|a| a.secret_ref.as_ref()).is_some_and(|r| {
        no_ns(&r.access_key_id.namespace)
            || no_ns(&r.secret_access_key.namespace)
            || r.session_token.as_ref().is_some_and(|t| no_ns(&t.namespace))
    });
    jwt || keys || spec.session_tags_policy != SessionTagsPolicy::None
}

/// The SDK's HTTP client with every response body limited to [`crate::net::body::MAX_RESPONSE_BYTES`] (the SDK
/// buffers whole bodies before parsing them; a larger one fails the call instead of growing memory).
fn capped(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(capped_http::Client(inner))
}

mod capped_http {
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;

    #[derive(Debug)]
    pub(super) struct Client(pub(super) SharedHttpClient);

    impl HttpClient for Client {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(Connector(self.0.http_connector(settings, components)))
        }

        fn connector_metadata(&self) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
            self.0.connector_metadata()
        }
    }

    #[derive(Debug)]
    struct Connector(SharedHttpConnector);

    impl HttpConnector for Connector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let fut = self.0.call(request);
            HttpConnectorFuture::new(async move {
                let resp = fut.await?;
                Ok(resp.map(|body| {
                    SdkBody::from_body_1_x(http_body_util::Limited::new(body, crate::net::body::MAX_RESPONSE_BYTES))
                }))
            })
        }
    }
}

/// An AWS region name (`eu-west-1`, `us-gov-west-1`, `cn-north-1`): it becomes part of the endpoint's host name.
fn is_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The SDK retry policy for `spec.retrySettings`: `maxRetries` retries after the first attempt, a fixed
/// `retryInterval` between them (ESO's fixed delayer); unset parts keep the SDK's standard policy
/// (3 attempts, exponential backoff with jitter).
pub(crate) fn retry_config(store: &StoreInfo) -> Result<(RetryConfig, Option<Duration>)> {
    let Some(settings) = store.spec.retry_settings.as_ref() else {
        return Ok((RetryConfig::standard(), None));
    };
    let interval = store
        .spec
        .retry_interval()
        .map_err(|e| ProviderError::invalid_config("spec.retrySettings.retryInterval", e.to_string()))?;
    let mut rc = RetryConfig::standard();
    if let Some(n) = settings.max_retries {
        let retries = u32::try_from(n)
            .map_err(|_| ProviderError::invalid_config("spec.retrySettings.maxRetries", "must not be negative"))?;
        rc = rc.with_max_attempts(retries.saturating_add(1));
    }
    if let Some(d) = interval.filter(|d| !d.is_zero()) {
        rc = rc
            .with_initial_backoff(d)
            .with_max_backoff(d)
            .with_use_static_exponential_base(true);
    }
    Ok((rc, interval))
}

/// Session tags of `role` per `sessionTagsPolicy` (ESO's buildSessionTags: Simple/Custom replace
/// `sessionTags`).
fn session_tags(spec: &AWSProvider, store: &StoreInfo, namespace: &str) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = match spec.session_tags_policy {
        SessionTagsPolicy::None => spec
            .session_tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
        SessionTagsPolicy::Simple | SessionTagsPolicy::Custom => {
            let mut m = std::collections::BTreeMap::new();
            if spec.session_tags_policy == SessionTagsPolicy::Custom {
                for (k, v) in &spec.custom_session_tags {
                    if !k.is_empty() && !v.is_empty() {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
            m.insert("esoNamespace".to_string(), namespace.to_string());
            m.insert("esoStoreName".to_string(), store.name.clone());
            m.insert("esoStoreKind".to_string(), store.scope_name().to_string());
            m.into_iter().collect()
        }
    };
    tags.retain(|(k, _)| !k.is_empty());
    tags
}

/// The operator's own AWS identity (environment, web-identity token file, EKS Pod Identity / ECS, instance
/// metadata), loaded by the SDK's default chain: the one place the AWS provider uses it, for a store without
/// `auth` (and Vault's `auth.iam` without `secretRef` or `jwt`).
fn ambient_credentials(base: &aws_config::SdkConfig) -> Result<SharedCredentialsProvider> {
    base.credentials_provider()
        .ok_or_else(|| ProviderError::Auth("no AWS credentials: set auth, or give the operator an AWS identity".into()))
}

impl Aws {
    /// The SDK configuration of a store (region, HTTP client, retries, timeouts) and its credential chain (see
    /// [`auth`]): the source (`auth.secretRef`, `auth.jwt`, or the operator's own default chain when neither is
    /// set), then `additionalRoles` and `role`. `base_field` is where `spec` sits and `auth_field` where its
    /// `secretRef` and `jwt` sit, for errors.
    async fn chain(
        &self,
        spec: &AWSProvider,
        base_field: &str,
        auth_field: &str,
        store: &StoreInfo,
        ctx: &ProviderContext,
        retry: RetryConfig,
    ) -> Result<(aws_config::SdkConfig, SharedCredentialsProvider)> {
        let creds = ctx.credentials(store);
        let namespace = ctx
            .referent_namespace
            .clone()
            .or_else(|| store.namespace.clone())
            .unwrap_or_default();

        if !is_region(&spec.region) {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.region"),
                format!("{:?} is not an AWS region name", spec.region),
            ));
        }
        let auth = spec.auth.clone().unwrap_or_default();
        if auth.secret_ref.is_none() && auth.jwt_auth.is_none() {
            // No auth: the SDK's default chain is the operator pod's own AWS identity.
            ctx.policy.operator_identity(
                store,
                &format!("{BASE}.auth"),
                "the operator pod's AWS credentials (environment, web identity token file, EKS Pod Identity, IMDS)",
            )?;
        }
        // A namespaced store's connections go through the egress policy (names are checked when resolved).
        let egress = ctx.egress(store);
        let http = if egress.is_restricted() {
            capped(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .build_with_resolver(egress.resolver()),
            )
        } else {
            self.http.clone()
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(spec.region.clone()))
            .http_client(http)
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            )
            .identity_cache(IdentityCache::no_cache());
        if auth.secret_ref.is_some() || auth.jwt_auth.is_some() {
            loader = loader.no_credentials();
        }
        let base = loader.load().await;
        let sts_client = |credentials: Option<SharedCredentialsProvider>| {
            let mut b = aws_sdk_sts::config::Builder::from(&base).identity_cache(IdentityCache::no_cache());
            if let Some(c) = credentials {
                b = b.credentials_provider(c);
            }
            if let Some(url) = &self.endpoints.sts {
                b = b.endpoint_url(url);
            }
            aws_sdk_sts::Client::from_conf(b.build())
        };
        let wrap =
            |p: SharedCredentialsProvider| SharedCredentialsProvider::new(Refreshing::new(p, self.clock.clone()));

        // The source of the chain, and the roles still to assume on top of it.
        let mut roles: Vec<String> = spec
            .additional_roles
            .iter()
            .filter(|r| !r.is_empty())
            .cloned()
            .collect();
        if !spec.role.is_empty() {
            roles.push(spec.role.clone());
        }
        let mut role_in_chain = !spec.role.is_empty();
        let mut current: SharedCredentialsProvider = if let Some(keys) = &auth.secret_ref {
            let field = format!("{auth_field}.secretRef");
            let akid = creds
                .secret_key(&keys.access_key_id, &format!("{field}.accessKeyIDSecretRef"))
                .await?;
            let secret = creds
                .secret_key(&keys.secret_access_key, &format!("{field}.secretAccessKeySecretRef"))
                .await?;
            let token = match &keys.session_token {
                Some(t) => Some(creds.secret_key(t, &format!("{field}.sessionTokenSecretRef")).await?),
                None => None,
            };
            let text = |v: &crate::value::SecretValue, name: &str| {
                v.as_str().map(|s| s.trim().to_string()).ok_or_else(|| {
                    ProviderError::invalid_config(format!("{field}.{name}"), "the referenced value is not UTF-8")
                })
            };
            let static_creds = Credentials::new(
                text(&akid, "accessKeyIDSecretRef")?,
                text(&secret, "secretAccessKeySecretRef")?,
                token.as_ref().map(|t| text(t, "sessionTokenSecretRef")).transpose()?,
                None,
                "syncret-secretRef",
            );
            SharedCredentialsProvider::new(static_creds)
        } else if let Some(jwt) = &auth.jwt_auth {
            let field = format!("{auth_field}.jwt.serviceAccountRef");
            let sa_ref = jwt
                .service_account_ref
                .clone()
                .ok_or_else(|| ProviderError::invalid_config(field.clone(), "must be set"))?;
            let sa = creds.service_account(&sa_ref, &field).await?;
            let annotations = sa.metadata.annotations.clone().unwrap_or_default();
            let plan = auth::plan_irsa(&annotations, &sa_ref.audiences, &spec.additional_roles, &spec.role)
                    .ok_or_else(|| {
                        ProviderError::invalid_config(
                            field.clone(),
                            format!(
                                "an IAM role must be associated with ServiceAccount {:?} (annotation {}) or set in {base_field}.role",
                                sa_ref.name,
                                auth::ROLE_ARN_ANNOTATION
                            ),
                        )
                    })?;
            if !plan.role_assumed
                && !spec.role.is_empty()
                && (!spec.external_id.is_empty() || !session_tags(spec, store, &namespace).is_empty())
            {
                return Err(ProviderError::invalid_config(
                    format!("{base_field}.role"),
                    "externalID and session tags need role to be assumed with AssumeRole: annotate the ServiceAccount with eks.amazonaws.com/role-arn",
                ));
            }
            roles = plan.then_assume.clone();
            role_in_chain = plan.role_assumed;
            SharedCredentialsProvider::new(WebIdentity {
                kube: creds.clone(),
                service_account: ServiceAccountSelector {
                    audiences: plan.audiences,
                    ..sa_ref
                },
                field,
                role_arn: plan.web_identity_role,
                sts: sts_client(None),
                observer: ctx.observer.clone(),
            })
        } else {
            ambient_credentials(&base)?
        };
        current = wrap(current);
        let last = roles.len();
        for (i, role_arn) in roles.into_iter().enumerate() {
            let is_role = role_in_chain && i + 1 == last;
            current = wrap(SharedCredentialsProvider::new(AssumeRole {
                sts: sts_client(Some(current.clone())),
                role_arn,
                external_id: (is_role && !spec.external_id.is_empty()).then(|| spec.external_id.clone()),
                tags: if is_role {
                    session_tags(spec, store, &namespace)
                } else {
                    Vec::new()
                },
                transitive_tag_keys: if is_role {
                    spec.transitive_tag_keys.clone()
                } else {
                    Vec::new()
                },
                observer: ctx.observer.clone(),
            }));
        }

        Ok((base, current))
    }

    /// The credentials of `spec`'s chain, for a login that signs with AWS credentials (Vault's `auth.iam`, whose
    /// `secretRef`, `jwt` and `role` sit at `field`).
    #[cfg(feature = "vault")]
    pub(crate) async fn credentials(
        &self,
        spec: &AWSProvider,
        field: &str,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<SharedCredentialsProvider> {
        let (retry, _) = retry_config(store)?;
        Ok(self.chain(spec, field, field, store, ctx, retry).await?.1)
    }

    /// The SDK configuration and credential chain of a generator's `auth`, `role` and `region` (ECR and STS
    /// generators), built as for a store with that auth; `base_field` is where the generator's spec sits.
    #[cfg(feature = "generators")]
    pub(crate) async fn generator_chain(
        &self,
        spec: &AWSProvider,
        base_field: &str,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<(aws_config::SdkConfig, SharedCredentialsProvider)> {
        self.chain(
            spec,
            base_field,
            &format!("{base_field}.auth"),
            store,
            ctx,
            RetryConfig::standard(),
        )
        .await
    }

    /// The endpoints this factory uses.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The credential chain of `spec` with errors naming fields under `base` (`base.auth…`, `base.role`), for
    /// other providers that call AWS with a store's AWS auth (the sops provider's KMS).
    #[cfg(feature = "sops")]
    pub(crate) async fn credential_chain(
        &self,
        spec: &AWSProvider,
        base: &str,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<CredentialChain> {
        let (retry, throttle_wait) = retry_config(store)?;
        let (config, credentials) = self
            .chain(spec, base, &format!("{base}.auth"), store, ctx, retry)
            .await?;
        Ok(CredentialChain {
            config,
            credentials,
            throttle_wait,
        })
    }

    /// Where STS is reached when it is not the SDK's default for the region (`AWS_STS_ENDPOINT`, tests).
    #[cfg(feature = "vault")]
    pub(crate) fn sts_endpoint(&self) -> Option<&str> {
        self.endpoints.sts.as_deref()
    }
}

/// The SDK configuration and credentials a store's auth block gives (what every AWS service client is built from).
#[cfg(feature = "sops")]
pub(crate) struct CredentialChain {
    pub config: aws_config::SdkConfig,
    pub credentials: SharedCredentialsProvider,
    /// `retrySettings.retryInterval`, waited again by the operator after throttling.
    pub throttle_wait: Option<Duration>,
}

#[async_trait]
impl Provider for Aws {
    fn key(&self) -> &'static str {
        "aws"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        // A CertificateManager store is never referent: its client is refused at once, with the reason.
        store.scope == StoreScope::ClusterSecretStore
            && spec(store).is_ok_and(|s| s.service != AWSServiceType::CertificateManager && is_referent_spec(s))
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        if spec.service == AWSServiceType::CertificateManager {
            return Err(ProviderError::Unsupported(format!(
                "{BASE}.service: CertificateManager is not supported by syncret (SecretsManager and ParameterStore are)"
            )));
        }
        if spec.region.trim().is_empty() {
            return Err(ProviderError::invalid_config(format!("{BASE}.region"), "must be set"));
        }
        let (retry, throttle_wait) = retry_config(store)?;
        let (base, current) = self
            .chain(&spec, BASE, &format!("{BASE}.auth"), store, ctx, retry)
            .await?;
        match spec.service {
            AWSServiceType::ParameterStore => {
                let mut ssm = aws_sdk_ssm::config::Builder::from(&base)
                    .credentials_provider(current)
                    .identity_cache(IdentityCache::no_cache());
                if let Some(url) = &self.endpoints.parameter_store {
                    ssm = ssm.endpoint_url(url);
                }
                Ok(Arc::new(parameterstore::ParameterStore::new(
                    aws_sdk_ssm::Client::from_conf(ssm.build()),
                    spec.prefix.clone(),
                    ctx.observer.clone(),
                    throttle_wait,
                    self.batch_window,
                )))
            }
            _ => {
                let mut sm = aws_sdk_secretsmanager::config::Builder::from(&base)
                    .credentials_provider(current)
                    .identity_cache(IdentityCache::no_cache());
                if let Some(url) = &self.endpoints.secrets_manager {
                    sm = sm.endpoint_url(url);
                }
                Ok(Arc::new(secretsmanager::SecretsManager::new(
                    aws_sdk_secretsmanager::Client::from_conf(sm.build()),
                    spec.prefix.clone(),
                    spec.secrets_manager.clone(),
                    ctx.observer.clone(),
                    throttle_wait,
                    self.batch_window,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncret_crds::secretstore::{SecretStoreRetrySettings, SecretStoreSpec};

    fn store(yaml: &str) -> StoreInfo {
        let spec: SecretStoreSpec = serde_json::from_value(serde_yaml_to_json(yaml)).unwrap();
        StoreInfo {
            scope: StoreScope::ClusterSecretStore,
            name: "aws".into(),
            namespace: None,
            uid: "u".into(),
            generation: 1,
            spec: Arc::new(spec),
        }
    }

    /// The tests' store specs are written as JSON (the crate has no YAML dependency).
    fn serde_yaml_to_json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn referent_when_refs_lack_namespaces_or_tags_name_the_namespace() {
        let s = store(r#"{"provider":{"aws":{"service":"SecretsManager","region":"eu-west-1"}}}"#);
        assert!(!Aws::default().is_referent(&s));
        let s = store(
            r#"{"provider":{"aws":{"service":"SecretsManager","region":"eu-west-1",
                "auth":{"jwt":{"serviceAccountRef":{"name":"sa"}}}}}}"#,
        );
        assert!(Aws::default().is_referent(&s));
        let s = store(
            r#"{"provider":{"aws":{"service":"SecretsManager","region":"eu-west-1",
                "auth":{"jwt":{"serviceAccountRef":{"name":"sa","namespace":"ops"}}}}}}"#,
        );
        assert!(!Aws::default().is_referent(&s));
        let s = store(
            r#"{"provider":{"aws":{"service":"SecretsManager","region":"eu-west-1",
                "auth":{"secretRef":{"accessKeyIDSecretRef":{"name":"k","key":"id","namespace":"ops"},
                                     "secretAccessKeySecretRef":{"name":"k","key":"secret"}}}}}}"#,
        );
        assert!(Aws::default().is_referent(&s));
        let s = store(
            r#"{"provider":{"aws":{"service":"SecretsManager","region":"eu-west-1","sessionTagsPolicy":"Simple"}}}"#,
        );
        assert!(Aws::default().is_referent(&s));
    }

    #[test]
    fn regions_are_host_labels() {
        assert!(is_region("eu-west-1") && is_region("us-gov-west-1"));
        assert!(!is_region("") && !is_region("evil.example/") && !is_region("127.0.0.1:1#"));
    }

    #[test]
    fn retry_settings_become_the_sdk_policy() {
        let mut s = store(r#"{"provider":{"aws":{"service":"SecretsManager","region":"eu-west-1"}}}"#);
        let (rc, wait) = retry_config(&s).unwrap();
        assert_eq!(rc.max_attempts(), 3);
        assert_eq!(wait, None);
        let mut spec = (*s.spec).clone();
        spec.retry_settings = Some(SecretStoreRetrySettings {
            max_retries: Some(4),
            retry_interval: Some("250ms".into()),
        });
        s.spec = Arc::new(spec.clone());
        let (rc, wait) = retry_config(&s).unwrap();
        assert_eq!(rc.max_attempts(), 5);
        assert_eq!(rc.initial_backoff(), Duration::from_millis(250));
        assert_eq!(rc.max_backoff(), Duration::from_millis(250));
        assert!(rc.use_static_exponential_base());
        assert_eq!(wait, Some(Duration::from_millis(250)));
        spec.retry_settings = Some(SecretStoreRetrySettings {
            max_retries: Some(-1),
            retry_interval: None,
        });
        s.spec = Arc::new(spec);
        assert!(retry_config(&s).is_err());
    }

    #[test]
    fn session_tags_follow_the_policy() {
        let s = store(
            r#"{"provider":{"aws":{"service":"SecretsManager","region":"eu-west-1",
                "sessionTags":[{"key":"a","value":"1"}]}}}"#,
        );
        let spec = spec(&s).unwrap().clone();
        assert_eq!(session_tags(&spec, &s, "ns"), vec![("a".to_string(), "1".to_string())]);
        let mut custom = spec.clone();
        custom.session_tags_policy = SessionTagsPolicy::Custom;
        custom.custom_session_tags.insert("team".into(), "x".into());
        let tags = session_tags(&custom, &s, "ns");
        assert_eq!(
            tags,
            vec![
                ("esoNamespace".to_string(), "ns".to_string()),
                ("esoStoreKind".to_string(), "ClusterSecretStore".to_string()),
                ("esoStoreName".to_string(), "aws".to_string()),
                ("team".to_string(), "x".to_string()),
            ]
        );
    }
}
