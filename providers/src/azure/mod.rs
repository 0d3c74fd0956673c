//! `spec.provider.azurekv`: Azure Key Vault secrets, as ESO's azurekv provider, on the official
//! `azure_security_keyvault_secrets` / `_certificates` / `_keys` clients (pinned to Key Vault API 7.6) and
//! `azure_identity` credentials.
//!
//! - `remoteRef.key` is a secret name, optionally prefixed `secret/`; `cert/NAME` reads a certificate (its DER,
//!   `GetCertificate`) and `key/NAME` a key (its public JWK as JSON, `GetKey`), as ESO; those two are read-only.
//!   `version` is the object's version id; `property` is applied by the caller (top-level key, then gjson).
//! - `metadataPolicy: Fetch` returns the secret's tags plus `attribute.created|updated|expires|notBefore` (RFC 3339)
//!   as a JSON object.
//! - `dataFrom.find`: `GetSecrets` (every page, 25 a page) filtered by enabled, tags and name regexp, then one
//!   `GetSecret` per match (8 at a time).
//! - PushSecret: `SetSecret` with the tag `managed-by: external-secrets` (ESO's, so secrets ESO pushed stay
//!   manageable); a secret without that tag is never overwritten or deleted; an unchanged value is not rewritten;
//!   `remoteRef.property` merges into a JSON object; metadata `spec.{tags,contentType,expirationDate}` as ESO;
//!   a soft-deleted secret of the same name is recovered first.
//! - Auth ([`auth`]): ServicePrincipal (client secret or certificate), ManagedIdentity (IMDS), WorkloadIdentity
//!   (ServiceAccount token exchange); one token per token lifetime for all reads of a store.
//! - The Entra ID authority is the `environmentType`'s, or `customCloudConfig.activeDirectoryEndpoint`.
pub mod auth;
mod transport;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::http::{RequestContent, Url};
use azure_security_keyvault_certificates::models::CertificateClientGetCertificateOptions;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::models::KeyClientGetKeyOptions;
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::models::{
    Secret, SecretAttributes, SecretClientGetSecretOptions, SecretClientListSecretPropertiesOptions, SecretProperties,
    SetSecretParameters,
};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures::TryStreamExt as _;
use syncret_crds::provider::azurekv::AzureKVProvider;

use crate::client::{CallObserver, Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation, observed};
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::value::{RemoteValue, SecretValue};

/// ESO's provider label for metrics.
pub const LABEL: &str = "Azure/KeyVault";
/// The Key Vault REST API version syncret speaks (stable; the crate's default is a preview).
pub const API_VERSION: &str = "7.6";
/// The tag PushSecret writes and checks before overwriting or deleting (ESO's, for drop-in compatibility).
pub const MANAGED_BY_TAG: &str = "managed-by";
pub const MANAGED_BY_VALUE: &str = "external-secrets";
pub(crate) const BASE: &str = "spec.provider.azurekv";
/// Default IMDS address (overridden by `AZURE_POD_IDENTITY_AUTHORITY_HOST`, as the Azure SDKs do).
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
const FIND_CONCURRENCY: usize = 8;

/// Process-level settings of the provider (the spec has no field for these).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Base URL of the managed-identity (IMDS) endpoint.
    pub imds_endpoint: String,
    /// Extra PEM CA certificates trusted for Key Vault and Entra ID (besides the system roots).
    pub extra_ca_pem: Vec<u8>,
    /// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` (workload identity webhook mode).
    pub env: HashMap<String, String>,
}

impl Settings {
    /// From the process environment: `AZURE_POD_IDENTITY_AUTHORITY_HOST` (IMDS), `SYNCRET_AZURE_CA_FILE` (extra
    /// CAs) and the workload identity webhook's variables.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let env = ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"]
            .iter()
            .filter_map(|k| var(k).map(|v| (k.to_string(), v)))
            .collect();
        Self {
            imds_endpoint: var("AZURE_POD_IDENTITY_AUTHORITY_HOST").unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.into()),
            extra_ca_pem: var("SYNCRET_AZURE_CA_FILE")
                .and_then(|p| std::fs::read(p).ok())
                .unwrap_or_default(),
            env,
        }
    }
}

/// The factory (provider key `azurekv`).
pub struct AzureKeyVault {
    settings: Settings,
}

impl Default for AzureKeyVault {
    fn default() -> Self {
        Self::new(Settings::from_env())
    }
}

impl AzureKeyVault {
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }
}

/// Whether the spec's auth names a Secret or ServiceAccount without a namespace (a ClusterSecretStore then
/// resolves it in each ExternalSecret's namespace).
pub(crate) fn auth_is_referent(s: &AzureKVProvider) -> bool {
    let no_ns = |ns: &Option<String>| ns.as_deref().is_none_or(str::is_empty);
    s.auth_secret_ref.as_ref().is_some_and(|r| {
        [&r.client_id, &r.client_secret, &r.client_certificate, &r.tenant_id]
            .into_iter()
            .flatten()
            .any(|sel| no_ns(&sel.namespace))
    }) || s.service_account_ref.as_ref().is_some_and(|sa| no_ns(&sa.namespace))
}

fn spec(store: &StoreInfo) -> Result<&AzureKVProvider> {
    store
        .spec
        .provider
        .azure_kv
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

/// Whether the vault host is loopback (a local test server): Key Vault's challenge names `vault.azure.net`,
/// which such a host cannot be a subdomain of, so the SDK's challenge-resource check is skipped only there.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// What every Key Vault client of one store shares: the vault, its token credential, the transport.
struct Connection {
    vault_url: Url,
    credential: Arc<dyn azure_core::credentials::TokenCredential>,
    client_options: azure_core::http::ClientOptions,
    verify: Option<bool>,
}

impl AzureKeyVault {
    /// The vault URL, credential and transport of `spec`: through the store's egress rules, answers capped, one
    /// token per token lifetime.
    async fn connect(&self, spec: &AzureKVProvider, store: &StoreInfo, ctx: &ProviderContext) -> Result<Connection> {
        let vault_url = Url::parse(spec.vault_url.trim())
            .map_err(|e| ProviderError::invalid_config(format!("{BASE}.vaultUrl"), format!("invalid URL: {e}")))?;
        if vault_url.scheme() != "https" {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.vaultUrl"),
                "must be an https:// URL",
            ));
        }
        let transport: Arc<dyn azure_core::http::HttpClient> = Arc::new(
            transport::HyperTransport::new(&self.settings.extra_ca_pem, &ctx.egress(store), ctx.responses())
                .map_err(|e| ProviderError::invalid_config("SYNCRET_AZURE_CA_FILE", e))?,
        );
        let creds = ctx.credentials(store);
        let inner = auth::credential(spec, store, &creds, &self.settings, transport.clone(), &ctx.policy).await?;
        let credential = auth::CachingCredential::new(inner, ctx.observer.clone());
        let client_options = azure_core::http::ClientOptions {
            transport: Some(azure_core::http::Transport::new(transport)),
            retry: azure_core::http::RetryOptions::none(),
            ..Default::default()
        };
        let verify = Some(!is_loopback_host(&vault_url));
        Ok(Connection {
            vault_url,
            credential,
            client_options,
            verify,
        })
    }

    /// A keys client of the vault `spec` names, with its auth: for the sops provider's `azure_kv` data keys. Errors
    /// name the `azurekv` fields (`spec.provider.azurekv.…`); the caller moves them under its own block.
    #[cfg(feature = "sops")]
    pub(crate) async fn key_client(
        &self,
        spec: &AzureKVProvider,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<(KeyClient, Url)> {
        let c = self.connect(spec, store, ctx).await?;
        let keys = KeyClient::new(
            c.vault_url.as_str(),
            c.credential,
            Some(KeyClientOptions {
                api_version: API_VERSION.into(),
                client_options: c.client_options,
                verify_challenge_resource: c.verify,
            }),
        )
        .map_err(|e| ProviderError::invalid_config(format!("{BASE}.vaultUrl"), e.to_string()))?;
        Ok((keys, c.vault_url))
    }
}

#[async_trait]
impl Provider for AzureKeyVault {
    fn key(&self) -> &'static str {
        "azurekv"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        store.scope == crate::StoreScope::ClusterSecretStore && auth_is_referent(s)
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?;
        let Connection {
            vault_url,
            credential,
            client_options,
            verify,
        } = self.connect(spec, store, ctx).await?;
        let bad_url = |e: azure_core::Error| ProviderError::invalid_config(format!("{BASE}.vaultUrl"), e.to_string());
        let secrets = SecretClient::new(
            vault_url.as_str(),
            credential.clone(),
            Some(SecretClientOptions {
                api_version: API_VERSION.into(),
                client_options: client_options.clone(),
                verify_challenge_resource: verify,
            }),
        )
        .map_err(bad_url)?;
        let certificates = CertificateClient::new(
            vault_url.as_str(),
            credential.clone(),
            Some(CertificateClientOptions {
                api_version: API_VERSION.into(),
                client_options: client_options.clone(),
                verify_challenge_resource: verify,
            }),
        )
        .map_err(bad_url)?;
        let keys = KeyClient::new(
            vault_url.as_str(),
            credential,
            Some(KeyClientOptions {
                api_version: API_VERSION.into(),
                client_options,
                verify_challenge_resource: verify,
            }),
        )
        .map_err(bad_url)?;
        Ok(Arc::new(AzureClient {
            secrets,
            certificates,
            keys,
            observer: ctx.observer.clone(),
        }))
    }
}

/// ESO's object types, chosen by a `type/` prefix of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Secret,
    Certificate,
    Key,
}

/// Splits `secret/name`, `cert/name`, `key/name` or `name` (a secret) as ESO does.
pub fn object_ref(key: &str) -> Result<(ObjectType, &str)> {
    let (kind, name) = match key.split_once('/') {
        None => (ObjectType::Secret, key),
        Some(("secret", name)) => (ObjectType::Secret, name),
        Some(("cert", name)) => (ObjectType::Certificate, name),
        Some(("key", name)) => (ObjectType::Key, name),
        Some((other, _)) => {
            return Err(ProviderError::InvalidValue {
                key: key.to_string(),
                message: format!("unknown Azure Key Vault object type {other:?} (use secret/, cert/ or key/)"),
            });
        }
    };
    // ESO uses only the second path segment; Key Vault names never contain '/'.
    let name = name.split('/').next().unwrap_or_default();
    if name.is_empty() {
        return Err(ProviderError::InvalidValue {
            key: key.to_string(),
            message: "empty Key Vault object name".into(),
        });
    }
    Ok((kind, name))
}

/// The secret name of a PushSecret target; certificates and keys are read-only here.
pub fn push_target(key: &str) -> Result<&str> {
    match object_ref(key)? {
        (ObjectType::Secret, name) => Ok(name),
        (kind, _) => Err(ProviderError::Unsupported(format!(
            "{key:?}: PushSecret to Key Vault {} objects is not supported (only secrets)",
            if kind == ObjectType::Key { "key" } else { "certificate" }
        ))),
    }
}

/// Maps an SDK error for object `key`.
pub fn map_err(e: azure_core::Error, key: &str) -> ProviderError {
    use azure_core::error::ErrorKind;
    let message = e.to_string().lines().next().unwrap_or_default().to_string();
    match e.kind() {
        ErrorKind::HttpResponse {
            status, raw_response, ..
        } => match u16::from(*status) {
            404 => ProviderError::NotFound { key: key.to_string() },
            401 => ProviderError::Auth(message),
            403 if message.contains("disabled") => ProviderError::InvalidValue {
                key: key.to_string(),
                message: "the secret (version) is disabled".into(),
            },
            403 => ProviderError::AccessDenied(message),
            429 => ProviderError::Throttled {
                retry_after: raw_response
                    .as_ref()
                    .and_then(|r| r.headers().get_optional_str(&"retry-after".into()).map(str::to_owned))
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(std::time::Duration::from_secs),
            },
            _ => ProviderError::Transport(message),
        },
        ErrorKind::Credential => ProviderError::Auth(e.to_string().replace('\n', " ")),
        _ => ProviderError::Transport(message),
    }
}

/// The timestamps of an object's attributes (secrets, certificates and keys have the same four).
#[derive(Default)]
pub struct Times {
    pub created: Option<azure_core::time::OffsetDateTime>,
    pub updated: Option<azure_core::time::OffsetDateTime>,
    pub expires: Option<azure_core::time::OffsetDateTime>,
    pub not_before: Option<azure_core::time::OffsetDateTime>,
}

macro_rules! times {
    ($attrs:expr) => {
        $attrs
            .as_ref()
            .map(|a| Times {
                created: a.created,
                updated: a.updated,
                expires: a.expires,
                not_before: a.not_before,
            })
            .unwrap_or_default()
    };
}

/// `metadataPolicy: Fetch`: the tags plus ESO's `attribute.*` entries, as a JSON object.
pub fn metadata_json(tags: Option<&HashMap<String, String>>, attrs: Times) -> SecretValue {
    let mut out: BTreeMap<String, String> = tags
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let fmt = |t: &azure_core::time::OffsetDateTime| {
        chrono::DateTime::from_timestamp(t.unix_timestamp(), 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    for (name, value) in [
        ("attribute.expires", &attrs.expires),
        ("attribute.created", &attrs.created),
        ("attribute.updated", &attrs.updated),
        ("attribute.notBefore", &attrs.not_before),
    ] {
        if let Some(t) = value {
            out.insert(name.to_string(), fmt(t));
        }
    }
    SecretValue::from(serde_json::to_string(&out).unwrap_or_default())
}

/// The name of a listed secret (`https://vault/secrets/NAME`).
fn listed_name(p: &SecretProperties) -> Option<String> {
    let url = Url::parse(p.id.as_deref()?).ok()?;
    let mut segs = url.path_segments()?;
    segs.find(|s| *s == "secrets")?;
    segs.next().filter(|n| !n.is_empty()).map(str::to_string)
}

/// PushSecret metadata (`data[].metadata`), ESO's `PushSecretMetadata` shape.
#[derive(Debug, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushMetadata {
    #[serde(default)]
    pub expiration_date: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Parses `data[].metadata` (`{apiVersion, kind, spec: {...}}`), refusing a `managed-by` tag as ESO does.
pub fn push_metadata(raw: Option<&str>, key: &str) -> Result<PushMetadata> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty() && *r != "null") else {
        return Ok(PushMetadata::default());
    };
    let invalid = |m: String| ProviderError::InvalidValue {
        key: key.to_string(),
        message: format!("PushSecret metadata: {m}"),
    };
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| invalid(e.to_string()))?;
    let spec = v.get("spec").cloned().unwrap_or(serde_json::Value::Null);
    let md: PushMetadata = if spec.is_null() {
        PushMetadata::default()
    } else {
        serde_json::from_value(spec).map_err(|e| invalid(e.to_string()))?
    };
    if md.tags.contains_key(MANAGED_BY_TAG) {
        return Err(invalid(format!("cannot specify a {MANAGED_BY_TAG:?} tag")));
    }
    if let Some(d) = &md.expiration_date
        && chrono::DateTime::parse_from_rfc3339(d).is_err()
    {
        return Err(invalid(format!(
            "expirationDate {d:?} is not RFC 3339 (e.g. 2024-12-31T20:00:00Z)"
        )));
    }
    Ok(md)
}

fn is_managed(tags: Option<&HashMap<String, String>>) -> bool {
    tags.and_then(|t| t.get(MANAGED_BY_TAG))
        .is_some_and(|v| v == MANAGED_BY_VALUE)
}

/// The value to store when pushing `value` to `property` of the existing JSON object `existing`.
pub fn merge_property(existing: Option<&str>, property: &str, value: &SecretValue) -> String {
    let mut obj = existing
        .and_then(|e| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(e).ok())
        .unwrap_or_default();
    obj.insert(
        property.to_string(),
        serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
    );
    serde_json::Value::Object(obj).to_string()
}

struct AzureClient {
    secrets: SecretClient,
    certificates: CertificateClient,
    keys: KeyClient,
    observer: Arc<dyn CallObserver>,
}

impl AzureClient {
    /// `GetSecret` (current version unless `version`); `Ok(None)` when it does not exist.
    async fn fetch(&self, name: &str, version: Option<&str>, key: &str) -> Result<Option<Secret>> {
        observed(&self.observer, LABEL, "GetSecret", async {
            let opts = SecretClientGetSecretOptions {
                secret_version: version.map(str::to_string),
                ..Default::default()
            };
            match self.secrets.get_secret(name, Some(opts)).await {
                Ok(resp) => resp.into_model().map(Some).map_err(|e| map_err(e, key)),
                Err(e) => match map_err(e, key) {
                    ProviderError::NotFound { .. } => Ok(None),
                    other => Err(other),
                },
            }
        })
        .await
    }

    async fn get_value(&self, key: &RemoteKey) -> Result<RemoteValue> {
        let version = key.version.clone();
        let value = match object_ref(&key.key)? {
            (ObjectType::Secret, name) => {
                let secret = self
                    .fetch(name, version.as_deref(), &key.key)
                    .await?
                    .ok_or_else(|| ProviderError::NotFound { key: key.key.clone() })?;
                if key.fetch_metadata {
                    metadata_json(secret.tags.as_ref(), times!(secret.attributes))
                } else {
                    SecretValue::from(secret.value.unwrap_or_default())
                }
            }
            // ESO returns the certificate's DER (`cer`).
            (ObjectType::Certificate, name) => {
                let cert = observed(&self.observer, LABEL, "GetCertificate", async {
                    let opts = CertificateClientGetCertificateOptions {
                        certificate_version: version,
                        ..Default::default()
                    };
                    let resp = self
                        .certificates
                        .get_certificate(name, Some(opts))
                        .await
                        .map_err(|e| map_err(e, &key.key))?;
                    resp.into_model().map_err(|e| map_err(e, &key.key))
                })
                .await?;
                if key.fetch_metadata {
                    metadata_json(cert.tags.as_ref(), times!(cert.attributes))
                } else {
                    SecretValue::from(cert.cer.unwrap_or_default())
                }
            }
            // ESO returns the key as JWK JSON (public parts: Key Vault never returns private key material).
            (ObjectType::Key, name) => {
                let k = observed(&self.observer, LABEL, "GetKey", async {
                    let opts = KeyClientGetKeyOptions {
                        key_version: version,
                        ..Default::default()
                    };
                    let resp = self
                        .keys
                        .get_key(name, Some(opts))
                        .await
                        .map_err(|e| map_err(e, &key.key))?;
                    resp.into_model().map_err(|e| map_err(e, &key.key))
                })
                .await?;
                if key.fetch_metadata {
                    metadata_json(k.tags.as_ref(), times!(k.attributes))
                } else {
                    let jwk = serde_json::to_string(&k.key).map_err(|e| ProviderError::InvalidValue {
                        key: key.key.clone(),
                        message: format!("encoding the key as JWK: {e}"),
                    })?;
                    SecretValue::from(jwk)
                }
            }
        };
        Ok(RemoteValue::Bytes(value))
    }

    async fn set(&self, name: &str, key: &str, params: SetSecretParameters) -> Result<()> {
        let content = || RequestContent::try_from(params.clone()).map_err(|e| map_err(e, key));
        let first = observed(&self.observer, LABEL, "SetSecret", async {
            Ok(self.secrets.set_secret(name, content()?, None).await)
        })
        .await?;
        match first {
            Ok(_) => Ok(()),
            Err(e) if u16::from(e.http_status().unwrap_or(azure_core::http::StatusCode::Ok)) == 409 => {
                // A soft-deleted secret of this name blocks the name: recover it, then write the new version.
                observed(&self.observer, LABEL, "RecoverDeletedSecret", async {
                    self.secrets
                        .recover_deleted_secret(name, None)
                        .await
                        .map(|_| ())
                        .map_err(|e| map_err(e, key))
                })
                .await?;
                observed(&self.observer, LABEL, "SetSecret", async {
                    self.secrets
                        .set_secret(name, content()?, None)
                        .await
                        .map(|_| ())
                        .map_err(|e| map_err(e, key))
                })
                .await
            }
            Err(e) => Err(map_err(e, key)),
        }
    }
}

#[async_trait]
impl SecretsClient for AzureClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        self.get_value(key).await
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        let opts = SecretClientListSecretPropertiesOptions {
            maxresults: Some(25),
            ..Default::default()
        };
        let mut pages = self
            .secrets
            .list_secret_properties(Some(opts))
            .map_err(|e| map_err(e, "*"))?
            .into_pages();
        let mut names = Vec::new();
        loop {
            let page = observed(&self.observer, LABEL, "GetSecrets", async {
                match pages.try_next().await {
                    Ok(Some(resp)) => resp.into_model().map(Some).map_err(|e| map_err(e, "*")),
                    Ok(None) => Ok(None),
                    Err(e) => Err(map_err(e, "*")),
                }
            })
            .await?;
            let Some(page) = page else { break };
            for p in &page.value {
                let enabled = p.attributes.as_ref().and_then(|a| a.enabled).unwrap_or(true);
                let Some(name) = listed_name(p) else { continue };
                let tags: BTreeMap<String, String> = p
                    .tags
                    .as_ref()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                if enabled && find.matches_tags(&tags) && find.matches_name(&name) {
                    names.push(name);
                }
            }
        }
        let mut out = BTreeMap::new();
        for chunk in names.chunks(FIND_CONCURRENCY) {
            let reads = chunk.iter().map(|n| self.fetch(n, None, n));
            for (name, res) in chunk.iter().zip(futures::future::join_all(reads).await) {
                // A secret deleted between the list and the read is skipped.
                if let Some(secret) = res? {
                    out.insert(name.clone(), SecretValue::from(secret.value.unwrap_or_default()));
                }
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        let name = push_target(&to.remote_key)?;
        let md = push_metadata(to.metadata.as_deref(), &to.remote_key)?;
        let existing = self.fetch(name, None, &to.remote_key).await?;
        if let Some(e) = &existing
            && !is_managed(e.tags.as_ref())
        {
            return Err(ProviderError::InvalidValue {
                key: to.remote_key.clone(),
                message: format!(
                    "the secret exists and is not managed by syncret/external-secrets (no tag {MANAGED_BY_TAG}={MANAGED_BY_VALUE}); refusing to overwrite it"
                ),
            });
        }
        let property = to.property.as_deref().filter(|p| !p.is_empty());
        let current = existing.as_ref().and_then(|e| e.value.as_deref());
        let new_value = match property {
            Some(p) => merge_property(current, p, value),
            None => String::from_utf8_lossy(value.as_bytes()).into_owned(),
        };
        let expires = md
            .expiration_date
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
            .and_then(|d| azure_core::time::OffsetDateTime::from_unix_timestamp(d.timestamp()).ok());
        if let Some(e) = &existing {
            let same_value = e.value.as_deref() == Some(new_value.as_str());
            let same_type = md.content_type.is_none() || md.content_type == e.content_type;
            let same_exp = e.attributes.as_ref().and_then(|a| a.expires) == expires;
            let mut want_tags: HashMap<String, String> = md.tags.clone().into_iter().collect();
            want_tags.insert(MANAGED_BY_TAG.into(), MANAGED_BY_VALUE.into());
            let same_tags = md.tags.is_empty() || e.tags.as_ref() == Some(&want_tags);
            if same_value && same_type && same_exp && same_tags {
                return Ok(());
            }
        }
        let mut tags: HashMap<String, String> = md.tags.into_iter().collect();
        tags.insert(MANAGED_BY_TAG.into(), MANAGED_BY_VALUE.into());
        let params = SetSecretParameters {
            value: Some(new_value),
            tags: Some(tags),
            content_type: md.content_type.or_else(|| existing.and_then(|e| e.content_type)),
            secret_attributes: Some(SecretAttributes {
                enabled: Some(true),
                expires,
                ..Default::default()
            }),
        };
        self.set(name, &to.remote_key, params).await
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let name = push_target(&at.remote_key)?;
        let Some(existing) = self.fetch(name, None, &at.remote_key).await? else {
            return Ok(());
        };
        if !is_managed(existing.tags.as_ref()) {
            // Not ours: leave it (ESO does the same).
            return Ok(());
        }
        if let Some(p) = at.property.as_deref().filter(|p| !p.is_empty()) {
            let mut obj = existing
                .value
                .as_deref()
                .and_then(|v| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(v).ok())
                .unwrap_or_default();
            if obj.remove(p).is_none() {
                return Ok(());
            }
            if !obj.is_empty() {
                let params = SetSecretParameters {
                    value: Some(serde_json::Value::Object(obj).to_string()),
                    tags: existing.tags.clone(),
                    content_type: existing.content_type.clone(),
                    ..Default::default()
                };
                return self.set(name, &at.remote_key, params).await;
            }
        }
        observed(&self.observer, LABEL, "DeleteSecret", async {
            match self.secrets.delete_secret(name, None).await {
                Ok(_) => Ok(()),
                Err(e) => match map_err(e, &at.remote_key) {
                    ProviderError::NotFound { .. } => Ok(()),
                    other => Err(other),
                },
            }
        })
        .await
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        let name = push_target(&at.remote_key)?;
        let existing = self.fetch(name, None, &at.remote_key).await?;
        Ok(match (existing, at.property.as_deref().filter(|p| !p.is_empty())) {
            (Some(s), Some(p)) => s
                .value
                .as_deref()
                .and_then(|v| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(v).ok())
                .is_some_and(|o| o.contains_key(p)),
            (Some(_), None) => true,
            (None, _) => false,
        })
    }

    /// One `GetSecrets` call of one item: proves the vault answers, the credentials yield a token and the identity
    /// may list secrets (a store that only may `get` shows the 403 here).
    async fn validate(&self) -> Result<Validation> {
        let opts = SecretClientListSecretPropertiesOptions {
            maxresults: Some(1),
            ..Default::default()
        };
        let mut pages = self
            .secrets
            .list_secret_properties(Some(opts))
            .map_err(|e| map_err(e, "*"))?
            .into_pages();
        observed(&self.observer, LABEL, "GetSecrets", async {
            pages.try_next().await.map(|_| ()).map_err(|e| map_err(e, "*"))
        })
        .await?;
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_prefixes() {
        assert_eq!(object_ref("db").unwrap(), (ObjectType::Secret, "db"));
        assert_eq!(object_ref("secret/db").unwrap(), (ObjectType::Secret, "db"));
        assert_eq!(object_ref("secret/db/extra").unwrap(), (ObjectType::Secret, "db"));
        assert_eq!(object_ref("cert/tls").unwrap(), (ObjectType::Certificate, "tls"));
        assert_eq!(object_ref("key/k").unwrap(), (ObjectType::Key, "k"));
        assert_eq!(push_target("secret/db").unwrap(), "db");
        assert!(matches!(push_target("cert/tls"), Err(ProviderError::Unsupported(_))));
        assert!(matches!(push_target("key/k"), Err(ProviderError::Unsupported(_))));
        assert!(matches!(object_ref("blob/x"), Err(ProviderError::InvalidValue { .. })));
        assert!(object_ref("secret/").is_err());
    }

    #[test]
    fn metadata_has_tags_and_attributes() {
        let tags: HashMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        let attrs = Times {
            created: azure_core::time::OffsetDateTime::from_unix_timestamp(1_700_000_000).ok(),
            ..Default::default()
        };
        let v = metadata_json(Some(&tags), attrs);
        assert_eq!(
            v.as_str().unwrap(),
            r#"{"attribute.created":"2023-11-14T22:13:20Z","env":"prod"}"#
        );
        assert_eq!(metadata_json(None, Times::default()).as_str().unwrap(), "{}");
    }

    #[test]
    fn push_metadata_as_eso() {
        let md = push_metadata(
            Some(r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"tags":{"team":"a"},"contentType":"text/plain","expirationDate":"2030-01-01T00:00:00Z"}}"#),
            "k",
        )
        .unwrap();
        assert_eq!(md.tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(md.content_type.as_deref(), Some("text/plain"));
        assert_eq!(push_metadata(None, "k").unwrap(), PushMetadata::default());
        assert!(push_metadata(Some(r#"{"spec":{"tags":{"managed-by":"me"}}}"#), "k").is_err());
        assert!(push_metadata(Some(r#"{"spec":{"expirationDate":"tomorrow"}}"#), "k").is_err());
    }

    #[test]
    fn property_merge_keeps_other_keys() {
        let v = SecretValue::from("s3cr3t");
        assert_eq!(
            merge_property(Some(r#"{"user":"u"}"#), "pass", &v),
            r#"{"pass":"s3cr3t","user":"u"}"#
        );
        assert_eq!(merge_property(Some("not json"), "pass", &v), r#"{"pass":"s3cr3t"}"#);
        assert_eq!(merge_property(None, "pass", &v), r#"{"pass":"s3cr3t"}"#);
    }

    #[test]
    fn names_of_listed_items() {
        let mut p = SecretProperties::default();
        p.id = Some("https://v.vault.azure.net/secrets/db-pass".into());
        assert_eq!(listed_name(&p).as_deref(), Some("db-pass"));
        p.id = Some("https://v.vault.azure.net/secrets/db-pass/0123abcd".into());
        assert_eq!(listed_name(&p).as_deref(), Some("db-pass"));
        p.id = None;
        assert_eq!(listed_name(&p), None);
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host(&Url::parse("https://127.0.0.1:8443").unwrap()));
        assert!(is_loopback_host(&Url::parse("https://localhost").unwrap()));
        assert!(!is_loopback_host(&Url::parse("https://v.vault.azure.net").unwrap()));
    }

    #[test]
    fn error_mapping() {
        use azure_core::error::{Error, ErrorKind};
        use azure_core::http::StatusCode;
        let http = |s: StatusCode, m: &str| {
            Error::with_message(
                ErrorKind::HttpResponse {
                    status: s,
                    error_code: None,
                    raw_response: None,
                },
                m.to_string(),
            )
        };
        assert!(map_err(http(StatusCode::NotFound, "nope"), "k").is_not_found());
        assert!(matches!(
            map_err(http(StatusCode::Unauthorized, "x"), "k"),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            map_err(http(StatusCode::Forbidden, "x"), "k"),
            ProviderError::AccessDenied(_)
        ));
        assert!(matches!(
            map_err(
                http(
                    StatusCode::Forbidden,
                    "Operation get is not allowed on a disabled secret."
                ),
                "k"
            ),
            ProviderError::InvalidValue { .. }
        ));
        assert!(matches!(
            map_err(http(StatusCode::TooManyRequests, "slow"), "k"),
            ProviderError::Throttled { .. }
        ));
        assert!(matches!(
            map_err(Error::with_message(ErrorKind::Credential, "bad secret"), "k"),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            map_err(Error::with_message(ErrorKind::Connection, "refused"), "k"),
            ProviderError::Transport(_)
        ));
    }
}
