//! `spec.provider.gcpsm`: Google Cloud Secret Manager, through the official `google-cloud-secretmanager-v1`
//! crate (HTTP/JSON transport), as ESO's `providers/v1/gcp/secretmanager`.
//!
//! - `remoteRef.key` is a secret id in `projectID` (and `location`, for regional secrets), or a full resource name
//!   `projects/P[/locations/L]/secrets/S[/versions/V]`; `version` is `latest` (default), a number or an alias.
//!   `secretVersionSelectionPolicy: LatestOrFetch` falls back to the newest enabled version when `latest` is
//!   disabled or destroyed.
//! - `metadataPolicy: Fetch` returns `{"annotations":…,"labels":…}` (so `property: labels.team` works).
//! - `dataFrom.find`: `ListSecrets` (paged) with a server-side filter (`labels.K=V`, `name:PATH`), re-checked
//!   here (name regexp, labels, path prefix), then one `AccessSecretVersion` per match.
//! - PushSecret: creates the secret (label `managed-by: external-secrets`), updates labels/annotations from the
//!   push metadata, adds a version only when the value changed; refuses to overwrite a secret without that label
//!   (whole-value pushes, as ESO); `deletionPolicy: Delete` deletes only secrets carrying it.
//! - Auth (see [`auth`]): service-account key, GKE Workload Identity, Workload Identity Federation, or the pod's
//!   Application Default Credentials. Tokens are cached in the client until shortly before they expire.
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt as _};
use google_cloud_secretmanager_v1::client::SecretManagerService;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use syncret_crds::provider::gcpsm::{GCPSMProvider, GCPWorkloadIdentity, GCPWorkloadIdentityFederation};

use crate::client::{CallObserver, SecretsClient, observed};
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::net::http::HttpClient;
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::value::Unloggable;

pub mod auth;
mod client;
#[cfg(feature = "sops")]
pub(crate) use client::map_service_err;
pub mod jwt;

use auth::{Flow, Format, GcpCredentials, Impersonation, LABEL, METADATA_URL, Subject, TokenSource};

const BASE: &str = "spec.provider.gcpsm";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const DEFAULT_STS_URL: &str = "https://sts.googleapis.com/v1/token";
/// The operator's own token: ESO refuses it as a `credential_source.file`.
const AUTOMOUNTED_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Where the Google endpoints are. The defaults are Google's; tests point them at servers on loopback.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    /// Replaces the Secret Manager endpoint (global and regional), e.g. `http://127.0.0.1:PORT`.
    pub secret_manager: Option<String>,
    /// Replaces the origin of Google URLs by host name (`sts.googleapis.com`, `securetoken.googleapis.com`,
    /// `iamcredentials.googleapis.com`, `oauth2.googleapis.com`, `metadata.google.internal`, …) with another
    /// origin such as `http://127.0.0.1:PORT`. A `metadata.google.internal` entry also makes the ambient
    /// credentials use that metadata server instead of Application Default Credentials.
    pub hosts: BTreeMap<String, String>,
}

impl Endpoints {
    /// `url` with its origin replaced when its host has an entry in [`Endpoints::hosts`].
    pub fn url(&self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        match self.hosts.get(host) {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => format!("{scheme}://{rest}"),
        }
    }

    /// An [`Endpoints`] with one host replaced.
    pub fn with_host(mut self, host: &str, origin: impl Into<String>) -> Self {
        self.hosts.insert(host.to_string(), origin.into());
        self
    }
}

/// The factory.
#[derive(Default)]
pub struct Gcp {
    endpoints: Arc<Endpoints>,
}

impl Gcp {
    /// A factory whose clients use these endpoints.
    pub fn with_endpoints(endpoints: Endpoints) -> Self {
        Self {
            endpoints: Arc::new(endpoints),
        }
    }

    /// The HTTP client for the token endpoints and the metadata server of one store: its egress rules, capped
    /// answers.
    fn http(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<HttpClient> {
        ctx.http_client(store)
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ProviderError::Transport(e.to_string()))
    }

    /// The metadata server as one store reaches it (through `http`, under its tenant policy).
    fn metadata<'a>(&'a self, http: &'a HttpClient, store: &'a StoreInfo, ctx: &'a ProviderContext) -> Metadata<'a> {
        Metadata {
            http,
            endpoints: &self.endpoints,
            observer: &ctx.observer,
            store,
            policy: &ctx.policy,
        }
    }

    /// What a token source of a `gcpsm`-shaped block at `base` is made of: the auth flow, the store's
    /// credentials and its HTTP client.
    async fn auth(
        &self,
        spec: &GCPSMProvider,
        base: &str,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<(Flow, Credentials, HttpClient)> {
        let creds = ctx.credentials(store);
        let http = self.http(store, ctx)?;
        let flow = flow(spec, base, &creds, &self.metadata(&http, store, ctx), &self.endpoints).await?;
        Ok((flow, creds, http))
    }
}

impl Gcp {
    /// The token source of a GKE Workload Identity (`workloadIdentity` at `field`), for a login elsewhere that
    /// acts as its Google service account (Vault's `auth.gcp`).
    #[cfg(feature = "vault")]
    pub(crate) async fn workload_identity_source(
        &self,
        wi: &GCPWorkloadIdentity,
        field: &str,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<Arc<TokenSource>> {
        let http = self.http(store, ctx)?;
        let flow = gke_flow_at(wi, field, &self.metadata(&http, store, ctx)).await?;
        Ok(Arc::new(TokenSource::new(
            flow,
            ctx.credentials(store),
            http,
            (store.clone(), ctx.policy.clone()),
            self.endpoints.clone(),
            ctx.observer.clone(),
        )))
    }
}

impl Gcp {
    /// The endpoints this factory's clients use.
    #[cfg(feature = "sops")]
    pub(crate) fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The token source of a `gcpsm`-shaped block at `base` (its `auth`; no auth is the pod's Application
    /// Default Credentials, refused to a namespaced store by the tenant policy), authenticated once: for another
    /// provider's calls to Google APIs (the sops provider's Cloud KMS keys).
    #[cfg(feature = "sops")]
    pub(crate) async fn token_source_at(
        &self,
        spec: &GCPSMProvider,
        base: &str,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<Arc<TokenSource>> {
        let (flow, creds, http) = self.auth(spec, base, store, ctx).await?;
        self.authenticated(flow, creds, http, store, ctx).await
    }

    /// The token source of `flow`, after one successful token fetch (bad credentials fail the store, not every
    /// read), with the crypto provider the Google crates need installed.
    async fn authenticated(
        &self,
        flow: Flow,
        creds: Credentials,
        http: HttpClient,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<Arc<TokenSource>> {
        let source = Arc::new(TokenSource::new(
            flow,
            creds,
            http,
            (store.clone(), ctx.policy.clone()),
            self.endpoints.clone(),
            ctx.observer.clone(),
        ));
        source.headers().await?;
        install_crypto();
        Ok(source)
    }
}

/// The Google crates build reqwest clients with rustls but no crypto provider of their own: use ring (as kube).
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether an `auth` block names a Secret, ConfigMap or ServiceAccount without a namespace (a ClusterSecretStore
/// then resolves it in each ExternalSecret's namespace).
pub(crate) fn auth_is_referent(auth: &syncret_crds::provider::gcpsm::GCPSMAuth) -> bool {
    let none = |ns: Option<&str>| ns.is_none_or(str::is_empty);
    auth.secret_ref
        .as_ref()
        .is_some_and(|r| none(r.secret_access_key.namespace.as_deref()))
        || auth
            .workload_identity
            .as_ref()
            .is_some_and(|w| none(w.service_account_ref.namespace.as_deref()))
        || auth.workload_identity_federation.as_ref().is_some_and(|f| {
            f.cred_config.as_ref().is_some_and(|c| none(Some(&c.namespace)))
                || f.service_account_ref
                    .as_ref()
                    .is_some_and(|s| none(s.namespace.as_deref()))
                || f.aws_security_credentials
                    .as_ref()
                    .is_some_and(|a| none(Some(&a.aws_credentials_secret_ref.namespace)))
        })
}

fn spec(store: &StoreInfo) -> Result<&GCPSMProvider> {
    store
        .spec
        .provider
        .gcp_sm
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

#[async_trait]
impl Provider for Gcp {
    fn key(&self) -> &'static str {
        "gcpsm"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        store.scope == crate::StoreScope::ClusterSecretStore && s.auth.as_ref().is_some_and(auth_is_referent)
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        if !is_location(&spec.location) {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.location"),
                format!(
                    "{:?} is not a Google Cloud location (lowercase letters, digits and '-')",
                    spec.location
                ),
            ));
        }
        let (flow, creds, http) = self.auth(&spec, BASE, store, ctx).await?;
        let project = match (&spec.project_id, &flow) {
            (p, _) if !p.is_empty() => p.clone(),
            (_, Flow::GkeWorkloadIdentity { pool, .. }) => pool.trim_end_matches(".svc.id.goog").to_string(),
            (_, Flow::ServiceAccountKey { .. }) => {
                return Err(ProviderError::invalid_config(
                    format!("{BASE}.projectID"),
                    "must be set when authenticating with a service-account key",
                ));
            }
            _ => self
                .metadata(&http, store, ctx)
                .get(&format!("{BASE}.projectID"), "project/project-id")
                .await
                .map_err(|e| match e {
                    refused @ ProviderError::Policy { .. } => refused,
                    e => ProviderError::invalid_config(
                        format!("{BASE}.projectID"),
                        format!("not set, and the GKE metadata server could not tell the project: {e}"),
                    ),
                })?,
        };
        let source = self.authenticated(flow, creds, http, store, ctx).await?;
        let endpoint = match (&self.endpoints.secret_manager, spec.location.as_str()) {
            (Some(e), _) => Some(e.clone()),
            (None, "") => None,
            (None, loc) => Some(format!("https://secretmanager.{loc}.rep.googleapis.com")),
        };
        let mut builder = SecretManagerService::builder()
            .with_credentials(google_cloud_auth::credentials::Credentials::from(GcpCredentials(
                source.clone(),
            )))
            .with_retry_policy(
                Aip194Strict
                    .with_attempt_limit(3)
                    .with_time_limit(Duration::from_secs(30)),
            )
            .with_attempt_timeout(Duration::from_secs(30));
        if let Some(e) = endpoint {
            builder = builder.with_endpoint(e);
        }
        let sm = builder
            .build()
            .await
            .map_err(|e| ProviderError::Transport(format!("building the Secret Manager client: {e}")))?;
        Ok(Arc::new(client::GcpClient::new(
            sm,
            source,
            project,
            spec.location.clone(),
            spec.secret_version_selection_policy.clone(),
            ctx.observer.clone(),
        )))
    }
}

/// The GCE/GKE metadata server (`http://metadata.google.internal`), for values a store leaves out. It is part of
/// the operator's environment: a namespaced SecretStore may ask it only with `--allow-namespaced-operator-identity`.
struct Metadata<'a> {
    http: &'a HttpClient,
    endpoints: &'a Endpoints,
    observer: &'a Arc<dyn CallObserver>,
    store: &'a StoreInfo,
    policy: &'a crate::TenantPolicy,
}

impl Metadata<'_> {
    /// `GET /computeMetadata/v1/<path>` with `Metadata-Flavor: Google`, for the value of `field`.
    async fn get(&self, field: &str, path: &str) -> Result<String> {
        self.policy
            .operator_identity(self.store, field, "the GKE metadata server")?;
        let url = reqwest::Url::parse(&self.endpoints.url(&format!("{METADATA_URL}/computeMetadata/v1/{path}")))
            .map_err(|e| ProviderError::Transport(format!("metadata server URL: {e}")))?;
        observed(self.observer, LABEL, "GetMetadata", async {
            let resp = self
                .http
                .get(url)
                .header("Metadata-Flavor", "Google")
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| ProviderError::Transport(format!("metadata server ({path}): {e}")))?;
            let text = resp.text();
            if !resp.status.is_success() || text.trim().is_empty() {
                return Err(ProviderError::Transport(format!(
                    "metadata server ({path}) answered {}",
                    resp.status
                )));
            }
            Ok(text.trim().to_string())
        })
        .await
    }
}

/// A service-account JSON key.
#[derive(serde::Deserialize)]
pub(crate) struct ServiceAccountKey {
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    pub(crate) client_email: String,
    /// Redacted in `Debug`, and dropped once parsed into a key.
    #[serde(default, deserialize_with = "unloggable")]
    pub(crate) private_key: Unloggable<String>,
    #[serde(default)]
    pub(crate) private_key_id: String,
    #[serde(default)]
    token_uri: String,
}

impl ServiceAccountKey {
    /// Parses and checks a JSON key read from `field`; errors never quote it.
    pub(crate) fn parse(json: &[u8], field: &str) -> Result<Self> {
        let key: ServiceAccountKey = serde_json::from_slice(json).map_err(|e| {
            // serde_json's message names a position, never the content.
            ProviderError::invalid_config(field, format!("not a service-account JSON key: {e}"))
        })?;
        if key.type_ != "service_account" {
            return Err(ProviderError::invalid_config(
                field,
                format!("the JSON key's type is {:?}, expected \"service_account\"", key.type_),
            ));
        }
        if key.client_email.is_empty() || key.private_key.is_empty() {
            return Err(ProviderError::invalid_config(
                field,
                "the JSON key needs client_email and private_key",
            ));
        }
        Ok(key)
    }
}

fn unloggable<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Unloggable<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(d).map(Unloggable)
}

/// Chooses and prepares the credential flow (ESO's order: secretRef, workloadIdentity,
/// workloadIdentityFederation, then ambient).
async fn flow(
    spec: &GCPSMProvider,
    base: &str,
    creds: &Credentials,
    meta: &Metadata<'_>,
    endpoints: &Endpoints,
) -> Result<Flow> {
    let auth = spec.auth.clone().unwrap_or_default();
    if let Some(sr) = &auth.secret_ref {
        let field = format!("{base}.auth.secretRef.secretAccessKeySecretRef");
        let json = creds.secret_key(&sr.secret_access_key, &field).await?;
        let key = ServiceAccountKey::parse(json.as_bytes(), &field)?;
        let rsa = jwt::RsaKey::from_pem(&key.private_key, &field)?;
        let token_uri = if key.token_uri.is_empty() {
            DEFAULT_TOKEN_URI.to_string()
        } else {
            key.token_uri.clone()
        };
        return Ok(Flow::ServiceAccountKey {
            email: key.client_email,
            key_id: key.private_key_id,
            key: rsa,
            token_uri,
        });
    }
    if let Some(wi) = &auth.workload_identity {
        return gke_flow_at(wi, &format!("{base}.auth.workloadIdentity"), meta).await;
    }
    if let Some(wif) = &auth.workload_identity_federation {
        return federation_flow(wif, base, creds).await;
    }
    meta.policy.operator_identity(
        meta.store,
        &format!("{base}.auth"),
        "the operator pod's Application Default Credentials (no auth set)",
    )?;
    let ambient = match endpoints.hosts.get("metadata.google.internal") {
        Some(origin) => google_cloud_auth::credentials::mds::Builder::default()
            .with_endpoint(origin.clone())
            .with_scopes([auth::SCOPE])
            .build(),
        None => google_cloud_auth::credentials::Builder::default()
            .with_scopes([auth::SCOPE])
            .build(),
    }
    .map_err(|e| ProviderError::Auth(format!("Application Default Credentials of the operator's pod: {e}")))?;
    Ok(Flow::Ambient(ambient))
}

/// [`gke_flow`] for a `workloadIdentity` block at `field`.
async fn gke_flow_at(wi: &GCPWorkloadIdentity, field: &str, meta: &Metadata<'_>) -> Result<Flow> {
    let field = field.to_string();
    if wi.service_account_ref.name.is_empty() {
        return Err(ProviderError::invalid_config(
            format!("{field}.serviceAccountRef.name"),
            "must be set",
        ));
    }
    let field_ref = &field;
    let from_meta = |what: &'static str, path: &'static str| async move {
        let field = format!("{field_ref}.{what}");
        meta.get(&field, path).await.map_err(|e| match e {
            refused @ ProviderError::Policy { .. } => refused,
            e => ProviderError::invalid_config(
                field.clone(),
                format!("not set, and the GKE metadata server could not tell it: {e}"),
            ),
        })
    };
    let project = match wi.cluster_project_id.as_str() {
        "" => from_meta("clusterProjectID", "project/project-id").await?,
        p => p.to_string(),
    };
    let location = match wi.cluster_location.as_str() {
        "" => from_meta("clusterLocation", "instance/attributes/cluster-location").await?,
        l => l.to_string(),
    };
    let name = match wi.cluster_name.as_str() {
        "" => from_meta("clusterName", "instance/attributes/cluster-name").await?,
        n => n.to_string(),
    };
    Ok(Flow::GkeWorkloadIdentity {
        sa: wi.service_account_ref.clone(),
        field: format!("{field}.serviceAccountRef"),
        pool: format!("{project}.svc.id.goog"),
        provider: format!(
            "https://container.googleapis.com/v1/projects/{project}/locations/{location}/clusters/{name}"
        ),
    })
}

/// An `external_account` credential configuration (the fields syncret uses).
#[derive(serde::Deserialize, Default)]
struct CredConfig {
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    subject_token_type: String,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    service_account_impersonation_url: String,
    #[serde(default)]
    service_account_impersonation: ImpersonationInfo,
    #[serde(default)]
    credential_source: Option<CredentialSource>,
}

#[derive(serde::Deserialize, Default)]
struct ImpersonationInfo {
    #[serde(default)]
    token_lifetime_seconds: u64,
}

#[derive(serde::Deserialize, Default)]
struct CredentialSource {
    #[serde(default)]
    file: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    environment_id: String,
    #[serde(default)]
    executable: Option<serde_json::Value>,
    #[serde(default)]
    format: Option<SourceFormat>,
}

#[derive(serde::Deserialize, Default)]
struct SourceFormat {
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    subject_token_field_name: String,
}

/// `token_url` must be Google's STS: `https://sts.googleapis.com/v1/token`, or a regional or Private Service Connect
/// name of it (`sts.<region>.rep.googleapis.com`, `sts-<endpoint>.p.googleapis.com`). ESO's pattern
/// (`^https://sts\.[^/]+/v1/token$`) accepts any host named `sts.<anything>`, which would post the subject token to
/// a server of the tenant's choosing.
fn is_sts_url(url: &str) -> bool {
    let Some(host) = url.strip_prefix("https://").and_then(|r| r.strip_suffix("/v1/token")) else {
        return false;
    };
    let Some(name) = host.strip_suffix(".googleapis.com") else {
        return false;
    };
    let labels_ok = name.split('.').all(|l| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    labels_ok && (name == "sts" || name.starts_with("sts.") || name.starts_with("sts-"))
}

/// A Google Cloud location (`us-east1`, `europe-west4`), or empty for the global endpoint: it becomes part of the
/// Secret Manager host name, so nothing else may pass.
fn is_location(location: &str) -> bool {
    location.len() <= 63
        && location
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// ESO's check on `service_account_impersonation_url`.
fn is_impersonation_url(url: &str) -> bool {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"^https://iamcredentials\.(?:[a-z0-9-]+\.)*googleapis\.com/v1/projects/[^/]+/serviceAccounts/[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com:generateAccessToken$",
        )
        .ok()
    })
    .as_ref()
    .is_some_and(|re| re.is_match(url))
}

async fn federation_flow(wif: &GCPWorkloadIdentityFederation, base: &str, creds: &Credentials) -> Result<Flow> {
    let field = format!("{base}.auth.workloadIdentityFederation");
    let sources = [
        wif.cred_config.is_some(),
        wif.service_account_ref.is_some(),
        wif.aws_security_credentials.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(ProviderError::invalid_config(
            &field,
            "exactly one of credConfig, awsSecurityCredentials or serviceAccountRef must be set",
        ));
    }
    if (wif.service_account_ref.is_some() || wif.aws_security_credentials.is_some()) && wif.audience.is_empty() {
        return Err(ProviderError::invalid_config(
            format!("{field}.audience"),
            "must be set with serviceAccountRef or awsSecurityCredentials",
        ));
    }
    if wif.aws_security_credentials.is_some() {
        return Err(ProviderError::Unsupported(format!(
            "{field}.awsSecurityCredentials: AWS as the identity provider is not supported by syncret yet"
        )));
    }
    let mut config = CredConfig::default();
    if let Some(cc) = &wif.cred_config {
        let cfield = format!("{field}.credConfig");
        let ns = creds.namespace_for(Some(cc.namespace.as_str()), &cfield)?;
        let cm = Api::<ConfigMap>::namespaced(creds.client.clone(), &ns)
            .get_opt(&cc.name)
            .await
            .map_err(|e| ProviderError::Credentials(format!("{cfield}: reading ConfigMap {ns}/{}: {e}", cc.name)))?
            .ok_or_else(|| ProviderError::Credentials(format!("{cfield}: ConfigMap {ns}/{} not found", cc.name)))?;
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get(&cc.key))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::Credentials(format!(
                    "{cfield}: key {:?} missing or empty in ConfigMap {ns}/{}",
                    cc.key, cc.name
                ))
            })?;
        config = serde_json::from_str(text).map_err(|e| {
            ProviderError::invalid_config(&cfield, format!("not an external account configuration: {e}"))
        })?;
        if config.type_ != "external_account" {
            return Err(ProviderError::invalid_config(
                &cfield,
                format!("type is {:?}, expected \"external_account\"", config.type_),
            ));
        }
    }
    let audience = if wif.audience.is_empty() {
        config.audience.clone()
    } else {
        wif.audience.clone()
    };
    if audience.is_empty() {
        return Err(ProviderError::invalid_config(
            format!("{field}.audience"),
            "the audience is empty",
        ));
    }
    let token_url = if config.token_url.is_empty() {
        DEFAULT_STS_URL.to_string()
    } else {
        config.token_url.clone()
    };
    if !is_sts_url(&token_url) {
        return Err(ProviderError::invalid_config(
            format!("{field}.credConfig"),
            format!("token_url {token_url:?} must be Google's STS endpoint (https://sts.googleapis.com/v1/token)"),
        ));
    }
    let impersonation = if !wif.gcp_service_account_email.is_empty() {
        Impersonation::Url(format!(
            "{}/v1/projects/-/serviceAccounts/{}:generateAccessToken",
            auth::IAM_CREDENTIALS_URL,
            wif.gcp_service_account_email
        ))
    } else if wif.service_account_ref.is_some() {
        Impersonation::FromAnnotation
    } else if !config.service_account_impersonation_url.is_empty() {
        Impersonation::Url(config.service_account_impersonation_url.clone())
    } else {
        Impersonation::None
    };
    if let Impersonation::Url(u) = &impersonation
        && !is_impersonation_url(u)
    {
        return Err(ProviderError::invalid_config(
            &field,
            format!(
                "service account impersonation URL {u:?} is not an iamcredentials.googleapis.com generateAccessToken URL of a *.iam.gserviceaccount.com account"
            ),
        ));
    }
    let subject = match (&wif.service_account_ref, &config.credential_source) {
        (Some(sa), _) => Subject::ServiceAccount {
            sa: sa.clone(),
            field: format!("{field}.serviceAccountRef"),
        },
        (None, Some(src)) => credential_source(src, wif, &field)?,
        (None, None) => {
            return Err(ProviderError::invalid_config(
                format!("{field}.credConfig"),
                "the configuration has no credential_source",
            ));
        }
    };
    let subject_token_type = if config.subject_token_type.is_empty() {
        auth::JWT_TOKEN_TYPE.to_string()
    } else {
        config.subject_token_type.clone()
    };
    Ok(Flow::Federation {
        subject,
        audience,
        subject_token_type,
        token_url,
        impersonation,
        lifetime_seconds: Some(config.service_account_impersonation.token_lifetime_seconds).filter(|s| *s > 0),
    })
}

/// `credential_source` of a credential configuration, with ESO's restrictions.
fn credential_source(src: &CredentialSource, wif: &GCPWorkloadIdentityFederation, field: &str) -> Result<Subject> {
    let cfield = format!("{field}.credConfig");
    if src.executable.is_some() {
        return Err(ProviderError::invalid_config(
            &cfield,
            "credential_source.executable is not allowed",
        ));
    }
    if !src.environment_id.is_empty() {
        return Err(ProviderError::Unsupported(format!(
            "{cfield}: credential_source.environment_id {:?} (AWS) is not supported by syncret yet",
            src.environment_id
        )));
    }
    if src.file == AUTOMOUNTED_TOKEN {
        return Err(ProviderError::invalid_config(
            &cfield,
            "credential_source.file may not be the operator's own service-account token; use serviceAccountRef",
        ));
    }
    if src.url != wif.external_token_endpoint {
        return Err(ProviderError::invalid_config(
            &cfield,
            format!(
                "credential_source.url {:?} does not match externalTokenEndpoint {:?}",
                src.url, wif.external_token_endpoint
            ),
        ));
    }
    let format = match src.format.as_ref() {
        Some(f) if f.type_ == "json" => {
            if f.subject_token_field_name.is_empty() {
                return Err(ProviderError::invalid_config(
                    &cfield,
                    "credential_source.format.subject_token_field_name must be set for type json",
                ));
            }
            Format::Json(f.subject_token_field_name.clone())
        }
        _ => Format::Text,
    };
    match (src.file.as_str(), src.url.as_str()) {
        ("", "") => Err(ProviderError::invalid_config(
            &cfield,
            "one of credential_source.file or credential_source.url must be set",
        )),
        (file, "") => Ok(Subject::File {
            path: file.to_string(),
            format,
        }),
        (_, url) => Ok(Subject::Url {
            url: url.to_string(),
            headers: src.headers.clone(),
            format,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_overrides_replace_the_origin() {
        let e = Endpoints::default()
            .with_host("sts.googleapis.com", "http://127.0.0.1:9/")
            .with_host("metadata.google.internal", "http://127.0.0.1:8");
        assert_eq!(
            e.url("https://sts.googleapis.com/v1/token"),
            "http://127.0.0.1:9/v1/token"
        );
        assert_eq!(
            e.url("http://metadata.google.internal/computeMetadata/v1/project/project-id"),
            "http://127.0.0.1:8/computeMetadata/v1/project/project-id"
        );
        assert_eq!(
            e.url("https://oauth2.googleapis.com/token"),
            "https://oauth2.googleapis.com/token"
        );
        assert_eq!(e.url("not a url"), "not a url");
    }

    #[test]
    fn url_checks_follow_eso() {
        assert!(is_sts_url("https://sts.googleapis.com/v1/token"));
        assert!(!is_sts_url("https://evil.example/v1/token"));
        assert!(!is_sts_url("https://sts.googleapis.com/v1/token/x"));
        assert!(!is_sts_url("http://sts.googleapis.com/v1/token"));
        // ESO's pattern accepts these; each would send the subject token to the tenant's server.
        assert!(!is_sts_url("https://sts.evil.example/v1/token"));
        assert!(!is_sts_url("https://sts.127.0.0.1.nip.io/v1/token"));
        assert!(!is_sts_url("https://sts.googleapis.com.evil.example/v1/token"));
        assert!(!is_sts_url("https://sts.googleapis.com@evil.example/v1/token"));
        assert!(!is_sts_url("https://sts.googleapis.com:443@evil/v1/token"));
        assert!(is_sts_url("https://sts.us-east1.rep.googleapis.com/v1/token"));
        assert!(is_sts_url("https://sts-psc1.p.googleapis.com/v1/token"));
        assert!(is_location("") && is_location("europe-west4"));
        assert!(!is_location("x.evil.example/") && !is_location("127.0.0.1:8080#"));
        assert!(is_impersonation_url(
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/app@proj-1.iam.gserviceaccount.com:generateAccessToken"
        ));
        assert!(!is_impersonation_url(
            "https://iamcredentials.example.com/v1/projects/-/serviceAccounts/app@proj.iam.gserviceaccount.com:generateAccessToken"
        ));
    }

    fn store(scope: crate::StoreScope, gcpsm: serde_json::Value) -> StoreInfo {
        StoreInfo {
            scope,
            name: "s".into(),
            namespace: None,
            uid: "u".into(),
            generation: 1,
            spec: Arc::new(serde_json::from_value(serde_json::json!({"provider": {"gcpsm": gcpsm}})).unwrap()),
        }
    }

    #[test]
    fn referent_cluster_stores() {
        use crate::StoreScope::{ClusterSecretStore, SecretStore};
        let key = |ns: Option<&str>| serde_json::json!({"auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "k", "key": "j", "namespace": ns}}}});
        let wi = |ns: Option<&str>| serde_json::json!({"auth": {"workloadIdentity": {"serviceAccountRef": {"name": "sa", "namespace": ns}}}});
        let gcp = Gcp::default();
        assert!(gcp.is_referent(&store(ClusterSecretStore, key(None))));
        assert!(!gcp.is_referent(&store(ClusterSecretStore, key(Some("ns")))));
        assert!(!gcp.is_referent(&store(SecretStore, key(None))));
        assert!(gcp.is_referent(&store(ClusterSecretStore, wi(None))));
        assert!(!gcp.is_referent(&store(ClusterSecretStore, wi(Some("ns")))));
        let wif =
            serde_json::json!({"auth": {"workloadIdentityFederation": {"credConfig": {"name": "c", "key": "k"}}}});
        assert!(gcp.is_referent(&store(ClusterSecretStore, wif)));
        assert!(!gcp.is_referent(&store(ClusterSecretStore, serde_json::json!({}))));
    }

    fn wif(endpoint: &str) -> GCPWorkloadIdentityFederation {
        GCPWorkloadIdentityFederation {
            external_token_endpoint: endpoint.into(),
            ..Default::default()
        }
    }

    #[test]
    fn credential_sources() {
        let src = |json: &str| serde_json::from_str::<CredentialSource>(json).unwrap();
        let s = credential_source(&src(r#"{"file":"/tok"}"#), &wif(""), "f").unwrap();
        assert!(matches!(s, Subject::File { path, format: Format::Text } if path == "/tok"));
        let s = credential_source(
            &src(r#"{"url":"http://idp/t","headers":{"a":"b"},"format":{"type":"json","subject_token_field_name":"id_token"}}"#),
            &wif("http://idp/t"),
            "f",
        )
        .unwrap();
        assert!(matches!(s, Subject::Url { format: Format::Json(f), .. } if f == "id_token"));
        let err = |json: &str, ep: &str| credential_source(&src(json), &wif(ep), "f").unwrap_err().to_string();
        assert!(err(r#"{"url":"http://idp/t"}"#, "http://other").contains("does not match externalTokenEndpoint"));
        assert!(err(r#"{"executable":{"command":"x"}}"#, "").contains("not allowed"));
        assert!(
            err(r#"{"file":"/var/run/secrets/kubernetes.io/serviceaccount/token"}"#, "").contains("operator's own")
        );
        assert!(err(r#"{"environment_id":"aws1"}"#, "").contains("not supported"));
        assert!(err(r#"{}"#, "").contains("must be set"));
    }
}
