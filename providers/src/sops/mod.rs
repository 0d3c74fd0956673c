//! `spec.provider.sops` (a syncret extension, not part of ESO's API): SOPS-encrypted documents that GitOps
//! applied to the cluster as ConfigMap (or Secret) keys, decrypted in the operator.
//!
//! - `remoteRef.key` is `<name>/<key>`: the key `<key>` of the ConfigMap (or Secret, `sourceKind: Secret`)
//!   `<name>`, in the store's namespace (a SecretStore), in `namespace` or else the ExternalSecret's namespace (a
//!   ClusterSecretStore). The document's format follows the key's extension (`.yaml`/`.yml`, `.json`, `.env`,
//!   `.ini`), else its content ([`document::Format::detect`]).
//! - The read returns the decrypted document as a JSON object (without the `sops` metadata), so `property` selects
//!   a path (`db.password`, a top-level key with dots first) and `dataFrom.extract` takes the top-level keys, as for
//!   any JSON secret. dotenv documents are flat objects of strings; INI documents are objects of sections
//!   (keys before the first section are in `DEFAULT`, as SOPS reads them).
//! - The MAC is verified ([`document`]): a changed, added, removed or reordered value refuses the whole document.
//! - Data keys ([`keys`]): age identities from Secrets ([`agekey`]), Vault/OpenBao transit and AWS KMS ([`kms`]),
//!   Azure Key Vault ([`keyvault`]) and GCP Cloud KMS ([`gcpkms`]) through those providers' own auth, key groups
//!   with Shamir thresholds ([`shamir`]). Recovered data keys
//!   are cached per store client by their wrapped form, so re-reading an unchanged document costs no KMS call.
//! - Bounds: documents over 1 MiB, more than 100 000 values, 16 key groups or 64 master keys, wrapped keys over
//!   16 KiB and identity files over 64 identities are refused; every KMS call has the provider client's timeout.
//!
//! Reads are reported as provider `SOPS` (`GetSecret`); KMS calls as `HashiCorp/Vault`/`OpenBao`
//! `TransitDecrypt`, `AWS/KMS` `Decrypt`, `Azure/KeyVault` `Decrypt` and `GCP/KMS` `Decrypt`.
pub mod agekey;
pub mod cipher;
pub mod document;
pub mod gcpkms;
pub mod keys;
pub mod keyvault;
pub mod kms;
pub mod metadata;
pub mod seal;
pub mod shamir;
pub mod tree;

#[cfg(test)]
mod fixtures;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use syncret_crds::provider::aws::AWSProvider;
use syncret_crds::provider::sops::{SopsProvider, SopsSourceKind};

use crate::aws::Aws;
use crate::client::{CallObserver, RemoteKey, SecretsClient, Validation, observed};
use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::value::{RemoteValue, SecretValue};
use crate::vault::Settings;
use crate::vault::client::VaultClient;

use document::{Document, Format};
use keys::{KeyCache, KeyRing, Unwrapper};

const LABEL: &str = "SOPS";
pub(crate) const BASE: &str = "spec.provider.sops";
/// Recovered data keys kept per store client.
const KEY_CACHE_ENTRIES: usize = 256;

/// What went wrong with a document. Messages name documents, paths and keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// Not a (well-formed) SOPS document.
    #[error("{0}")]
    Format(String),
    /// The document was changed after it was encrypted (MAC mismatch, a value that does not decrypt).
    #[error("{0}")]
    Tampered(String),
    /// None of the store's keys recovers the data key; `field` is the store field to fix.
    #[error("{field}: {message}")]
    NoKey { field: String, message: String },
    /// A key service could not be asked.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl SopsError {
    pub fn format(message: impl Into<String>) -> Self {
        SopsError::Format(message.into())
    }

    /// The provider error for a read of `key`: a bad or tampered document is an invalid remote value (the previous
    /// Secret is kept), a missing key an invalid store config naming the field.
    pub fn into_provider(self, key: &str) -> ProviderError {
        match self {
            SopsError::Format(m) => ProviderError::InvalidValue {
                key: key.to_string(),
                message: format!("not a valid SOPS document: {m}"),
            },
            SopsError::Tampered(m) => ProviderError::InvalidValue {
                key: key.to_string(),
                message: format!("SOPS document refused: {m}"),
            },
            SopsError::NoKey { field, message } => ProviderError::InvalidConfig { field, message },
            SopsError::Provider(e) => e,
        }
    }
}

/// A ConfigMap or Secret key holding a document.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentRef {
    pub kind: SopsSourceKind,
    pub namespace: String,
    pub name: String,
    pub key: String,
}

/// Splits `remoteRef.key` (`<name>/<key>`).
pub fn split_key(remote_key: &str) -> std::result::Result<(&str, &str), ProviderError> {
    match remote_key.split_once('/') {
        Some((name, key)) if !name.is_empty() && !key.is_empty() && !key.contains('/') => Ok((name, key)),
        _ => Err(ProviderError::InvalidValue {
            key: remote_key.to_string(),
            message: "a sops store's remoteRef.key is <configmap>/<key> (or <secret>/<key>)".into(),
        }),
    }
}

/// The namespace a store reads documents from, for an ExternalSecret in `es_namespace`: a SecretStore its own;
/// a ClusterSecretStore its `namespace`, else the ExternalSecret's.
pub fn documents_namespace(
    scope: StoreScope,
    store_namespace: Option<&str>,
    spec: &SopsProvider,
    es_namespace: &str,
) -> String {
    match scope {
        StoreScope::SecretStore => store_namespace.unwrap_or(es_namespace).to_string(),
        StoreScope::ClusterSecretStore => spec
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| es_namespace.to_string()),
    }
}

/// The object an ExternalSecret (in `es_namespace`) reads when it asks a sops store for `remote_key`: what a
/// watch must index to re-sync the ExternalSecret when that ConfigMap or Secret changes. `None` for a key that is
/// not `<name>/<key>` (the read fails anyway).
pub fn document_ref(
    scope: StoreScope,
    store_namespace: Option<&str>,
    spec: &SopsProvider,
    es_namespace: &str,
    remote_key: &str,
) -> Option<DocumentRef> {
    let (name, key) = split_key(remote_key).ok()?;
    Some(DocumentRef {
        kind: spec.source_kind,
        namespace: documents_namespace(scope, store_namespace, spec, es_namespace),
        name: name.to_string(),
        key: key.to_string(),
    })
}

/// Every document an ExternalSecret reads through the sops store `store_kind`/`store_name` (in
/// `store_namespace` for a SecretStore): its `data[].remoteRef.key` and `dataFrom[].extract.key` whose store (the
/// item's `sourceRef.storeRef`, else `spec.secretStoreRef`) is that store. Sorted, without repeats. This is what a
/// ConfigMap/Secret watch indexes to re-sync the ExternalSecret when one of its documents changes.
pub fn documents_read(
    es: &syncret_crds::ExternalSecret,
    store_kind: syncret_crds::secretstore::StoreKind,
    store_name: &str,
    store_namespace: Option<&str>,
    spec: &SopsProvider,
) -> Vec<DocumentRef> {
    use syncret_crds::secretstore::StoreKind;
    let es_namespace = es.metadata.namespace.as_deref().unwrap_or_default();
    let scope = match store_kind {
        StoreKind::SecretStore => StoreScope::SecretStore,
        StoreKind::ClusterSecretStore => StoreScope::ClusterSecretStore,
    };
    let default = es.spec.secret_store_ref.as_ref();
    let ours = |r: Option<&syncret_crds::externalsecret::SecretStoreRef>| {
        r.or(default)
            .is_some_and(|r| r.name == store_name && r.kind() == store_kind)
    };
    let mut keys: Vec<&str> = Vec::new();
    for d in &es.spec.data {
        if ours(d.source_ref.as_ref().and_then(|s| s.secret_store_ref.as_ref())) {
            keys.push(&d.remote_ref.key);
        }
    }
    for d in &es.spec.data_from {
        if let Some(x) = &d.extract
            && ours(d.source_ref.as_ref().and_then(|s| s.secret_store_ref.as_ref()))
        {
            keys.push(&x.key);
        }
    }
    let mut out: Vec<DocumentRef> = keys
        .into_iter()
        .filter_map(|k| document_ref(scope, store_namespace, spec, es_namespace, k))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The factory. Holds the AWS, Azure and GCP factories (their HTTPS clients, settings and endpoints) for the
/// key services.
pub struct Sops {
    aws: Aws,
    kms_endpoint: Option<String>,
    azure: crate::azure::AzureKeyVault,
    gcp: crate::gcp::Gcp,
}

impl Default for Sops {
    /// KMS at the SDK's endpoint (`AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL` change it), STS as the aws provider;
    /// Azure as the azurekv provider (its environment settings); Google's endpoints.
    fn default() -> Self {
        Self {
            aws: Aws::default(),
            kms_endpoint: None,
            azure: crate::azure::AzureKeyVault::default(),
            gcp: crate::gcp::Gcp::default(),
        }
    }
}

impl Sops {
    /// KMS and STS at one URL (moto, a test server).
    pub fn with_aws_endpoint(url: impl Into<String>) -> Self {
        let url = url.into();
        Self {
            aws: Aws::with_endpoint(url.clone()),
            kms_endpoint: Some(url),
            ..Self::default()
        }
    }

    /// Key Vault with these settings (extra CAs, IMDS endpoint), as the azurekv provider takes them.
    pub fn with_azure(mut self, settings: crate::azure::Settings) -> Self {
        self.azure = crate::azure::AzureKeyVault::new(settings);
        self
    }

    /// Google endpoints replaced (`cloudkms.googleapis.com` and the token hosts), as the gcpsm provider takes them.
    pub fn with_gcp_endpoints(mut self, endpoints: crate::gcp::Endpoints) -> Self {
        self.gcp = crate::gcp::Gcp::with_endpoints(endpoints);
        self
    }
}

/// `e` with a field path under `from` (another provider's block, whose code built the client) moved under `to`
/// (the sops store's key block), so the condition names the field the user wrote.
fn rebase(e: ProviderError, from: &str, to: &str) -> ProviderError {
    let fix = |field: String| match field.strip_prefix(from) {
        Some(rest) => format!("{to}{rest}"),
        None => field,
    };
    match e {
        ProviderError::InvalidConfig { field, message } => ProviderError::InvalidConfig {
            field: fix(field),
            message: message.replace(from, to),
        },
        ProviderError::Policy { field, message } => ProviderError::Policy {
            field: fix(field),
            message: message.replace(from, to),
        },
        other => other,
    }
}

fn spec(store: &StoreInfo) -> Result<&SopsProvider> {
    store
        .spec
        .provider
        .sops
        .as_deref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

fn no_ns(ns: &Option<String>) -> bool {
    ns.as_deref().is_none_or(str::is_empty)
}

/// Whether a ClusterSecretStore's reads resolve per ExternalSecret namespace.
fn is_referent_spec(s: &SopsProvider) -> bool {
    let aws = s.keys.aws.as_ref().and_then(|a| a.auth.as_ref()).is_some_and(|auth| {
        auth.secret_ref.as_ref().is_some_and(|r| {
            no_ns(&r.access_key_id.namespace)
                || no_ns(&r.secret_access_key.namespace)
                || r.session_token.as_ref().is_some_and(|t| no_ns(&t.namespace))
        }) || auth
            .jwt_auth
            .as_ref()
            .and_then(|j| j.service_account_ref.as_ref())
            .is_some_and(|sa| no_ns(&sa.namespace))
    });
    let azure = s.keys.azure.as_deref().is_some_and(crate::azure::auth_is_referent);
    let gcp = s
        .keys
        .gcp
        .as_ref()
        .and_then(|g| g.auth.as_ref())
        .is_some_and(crate::gcp::auth_is_referent);
    no_ns(&s.namespace)
        || s.keys.age.iter().any(|a| no_ns(&a.secret_ref.namespace))
        || s.keys
            .vault
            .as_ref()
            .is_some_and(|v| Settings::from_vault(v).is_referent())
        || s.keys
            .open_bao
            .as_ref()
            .is_some_and(|v| Settings::from_openbao(v).is_referent())
        || aws
        || azure
        || gcp
}

/// A namespaced store may only use credentials it names, never the operator's own identity (unless the operator
/// runs with `--allow-namespaced-operator-identity`).
fn check_named_credentials(store: &StoreInfo, s: &SopsProvider, policy: &crate::TenantPolicy) -> Result<()> {
    if let Some(a) = &s.keys.aws
        && a.auth
            .as_ref()
            .is_none_or(|auth| auth.secret_ref.is_none() && auth.jwt_auth.is_none())
    {
        policy.operator_identity(
            store,
            &format!("{BASE}.keys.aws.auth"),
            "the pod's AWS credentials (no secretRef or jwt)",
        )?;
    }
    let transit = [
        ("vault", s.keys.vault.as_deref().map(Settings::from_vault)),
        ("openBao", s.keys.open_bao.as_deref().map(Settings::from_openbao)),
    ];
    for (field, v) in transit {
        if let Some(k) = v
            .as_ref()
            .and_then(|v| v.auth.as_ref())
            .and_then(|a| a.kubernetes.as_ref())
            && k.service_account_ref.is_none()
            && k.secret_ref.is_none()
        {
            policy.operator_identity(
                store,
                &format!("{BASE}.keys.{field}.auth.kubernetes"),
                "the operator's own service-account token (kubernetes auth without serviceAccountRef or secretRef)",
            )?;
        }
    }
    Ok(())
}

/// The `aws` provider spec the KMS credential chain is built from.
fn aws_spec(k: &syncret_crds::provider::sops::SopsAWSKMS) -> AWSProvider {
    AWSProvider {
        service: syncret_crds::provider::aws::AWSServiceType::SecretsManager,
        auth: k.auth.clone(),
        role: k.role.clone(),
        region: if k.region.is_empty() {
            "us-east-1".into()
        } else {
            k.region.clone()
        },
        additional_roles: k.additional_roles.clone(),
        external_id: k.external_id.clone(),
        session_tags: Vec::new(),
        secrets_manager: None,
        transitive_tag_keys: Vec::new(),
        session_tags_policy: Default::default(),
        custom_session_tags: BTreeMap::new(),
        prefix: String::new(),
    }
}

/// A future on the heap. The KMS clients' set-up futures (a Vault login, the AWS SDK's config loader) are large
/// in debug builds; built inside these functions, only a pointer lives in `new_client`'s frame, and only when that
/// key is configured (an age-only store never pays their stack).
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[inline(never)]
fn transit(
    field: &'static str,
    settings: Settings,
    creds: crate::credentials::Credentials,
    cloud: crate::vault::auth::CloudLogins,
    http: crate::net::http::HttpClientBuilder,
    observer: Arc<dyn CallObserver>,
) -> BoxFuture<'static, Result<Box<dyn Unwrapper>>> {
    Box::pin(async move {
        let client = VaultClient::connect(settings, creds, observer, cloud, Arc::default(), http).await?;
        Ok(Box::new(kms::Transit {
            field: format!("{BASE}.keys.{field}"),
            client: Arc::new(client),
        }) as Box<dyn Unwrapper>)
    })
}

impl Sops {
    #[inline(never)]
    fn aws_kms<'a>(
        &'a self,
        a: &'a syncret_crds::provider::sops::SopsAWSKMS,
        store: &'a StoreInfo,
        ctx: &'a ProviderContext,
    ) -> BoxFuture<'a, Result<Box<dyn Unwrapper>>> {
        Box::pin(async move {
            let field = format!("{BASE}.keys.aws");
            let chain = self.aws.credential_chain(&aws_spec(a), &field, store, ctx).await?;
            Ok(Box::new(kms::AwsKms::new(
                field,
                chain.config,
                chain.credentials,
                self.kms_endpoint.clone(),
                ctx.observer.clone(),
                chain.throttle_wait,
            )) as Box<dyn Unwrapper>)
        })
    }
}

impl Sops {
    #[inline(never)]
    fn azure_kv<'a>(
        &'a self,
        a: &'a syncret_crds::provider::azurekv::AzureKVProvider,
        store: &'a StoreInfo,
        ctx: &'a ProviderContext,
    ) -> BoxFuture<'a, Result<Box<dyn Unwrapper>>> {
        Box::pin(async move {
            let field = format!("{BASE}.keys.azure");
            let (client, vault) = self
                .azure
                .key_client(a, store, ctx)
                .await
                .map_err(|e| rebase(e, crate::azure::BASE, &field))?;
            Ok(Box::new(keyvault::AzureKv {
                field,
                vault,
                client,
                observer: ctx.observer.clone(),
            }) as Box<dyn Unwrapper>)
        })
    }

    #[inline(never)]
    fn gcp_kms<'a>(
        &'a self,
        g: &'a syncret_crds::provider::sops::SopsGCPKMS,
        store: &'a StoreInfo,
        ctx: &'a ProviderContext,
    ) -> BoxFuture<'a, Result<Box<dyn Unwrapper>>> {
        use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt as _};
        Box::pin(async move {
            let field = format!("{BASE}.keys.gcp");
            let spec = syncret_crds::provider::gcpsm::GCPSMProvider {
                auth: g.auth.clone(),
                project_id: String::new(),
                location: String::new(),
                secret_version_selection_policy: Default::default(),
            };
            let source = self
                .gcp
                .token_source_at(&spec, &field, store, ctx)
                .await
                .map_err(|e| rebase(e, "spec.provider.gcpsm", &field))?;
            let mut builder = google_cloud_kms_v1::client::KeyManagementService::builder()
                .with_credentials(google_cloud_auth::credentials::Credentials::from(
                    crate::gcp::auth::GcpCredentials(source),
                ))
                .with_retry_policy(
                    Aip194Strict
                        .with_attempt_limit(3)
                        .with_time_limit(Duration::from_secs(30)),
                )
                .with_attempt_timeout(Duration::from_secs(30));
            let endpoint = self.gcp.endpoints().url(gcpkms::ENDPOINT);
            if endpoint != gcpkms::ENDPOINT {
                builder = builder.with_endpoint(endpoint);
            }
            let client = builder
                .build()
                .await
                .map_err(|e| ProviderError::Transport(format!("building the Cloud KMS client: {e}")))?;
            Ok(Box::new(gcpkms::GcpKms {
                field,
                client,
                observer: ctx.observer.clone(),
            }) as Box<dyn Unwrapper>)
        })
    }
}

#[async_trait]
impl Provider for Sops {
    fn key(&self) -> &'static str {
        "sops"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        store.scope == StoreScope::ClusterSecretStore && spec(store).is_ok_and(is_referent_spec)
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let s = spec(store)?.clone();
        check_named_credentials(store, &s, &ctx.policy)?;
        let creds = ctx.credentials(store);
        let namespace = match store.scope {
            StoreScope::SecretStore => store
                .namespace
                .clone()
                .ok_or_else(|| ProviderError::invalid_config(BASE, "a SecretStore has a namespace"))?,
            StoreScope::ClusterSecretStore => match s.namespace.clone().filter(|n| !n.is_empty()) {
                Some(ns) => ns,
                None => ctx.referent_namespace.clone().ok_or_else(|| {
                    ProviderError::invalid_config(
                        format!("{BASE}.namespace"),
                        "unset: documents are read in each ExternalSecret's namespace",
                    )
                })?,
            },
        };
        if s.keys.is_empty() {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.keys"),
                "at least one of age, vault, openBao, aws, azure or gcp must be set",
            ));
        }
        let mut unwrappers: Vec<Box<dyn Unwrapper>> = Vec::new();
        for (i, a) in s.keys.age.iter().enumerate() {
            let field = format!("{BASE}.keys.age[{i}].secretRef");
            let text = creds.secret_key(&a.secret_ref, &field).await?;
            unwrappers.push(Box::new(keys::age_identities(
                format!("{BASE}.keys.age[{i}]"),
                text.as_bytes(),
            )?));
        }
        for (field, settings) in [
            ("vault", s.keys.vault.as_deref().map(Settings::from_vault)),
            ("openBao", s.keys.open_bao.as_deref().map(Settings::from_openbao)),
        ] {
            let Some(mut settings) = settings else { continue };
            settings.base = if field == "vault" {
                "spec.provider.sops.keys.vault"
            } else {
                "spec.provider.sops.keys.openBao"
            };
            // `auth.iam` / `auth.gcp` logins: the same AWS factory as this provider's KMS keys.
            // On the heap, as `transit`: the AWS config loader inside is a large future.
            let vault = crate::vault::Vault::new(settings.flavor).with_aws(self.aws.clone());
            let cloud = Box::pin(vault.cloud_logins(&settings, store, ctx)).await?;
            unwrappers.push(
                transit(
                    field,
                    settings,
                    creds.clone(),
                    cloud,
                    ctx.http_client(store),
                    ctx.observer.clone(),
                )
                .await?,
            );
        }
        if let Some(a) = &s.keys.aws {
            unwrappers.push(self.aws_kms(a, store, ctx).await?);
        }
        if let Some(a) = &s.keys.azure {
            unwrappers.push(self.azure_kv(a, store, ctx).await?);
        }
        if let Some(g) = &s.keys.gcp {
            unwrappers.push(self.gcp_kms(g, store, ctx).await?);
        }
        Ok(Arc::new(SopsClient {
            kind: s.source_kind,
            namespace,
            kube: ctx.client.clone(),
            ring: KeyRing {
                base: BASE.to_string(),
                unwrappers,
            },
            cache: KeyCache::new(KEY_CACHE_ENTRIES),
            observer: ctx.observer.clone(),
        }))
    }
}

/// The client of one store (and, for a referent ClusterSecretStore, one namespace).
pub struct SopsClient {
    kind: SopsSourceKind,
    namespace: String,
    kube: kube::Client,
    ring: KeyRing,
    cache: KeyCache,
    observer: Arc<dyn CallObserver>,
}

impl SopsClient {
    /// The document text at `<name>/<key>`.
    async fn fetch(&self, remote_key: &str) -> Result<String> {
        let (name, key) = split_key(remote_key)?;
        let ns = &self.namespace;
        let not_found = || ProviderError::NotFound {
            key: remote_key.to_string(),
        };
        let bytes: Vec<u8> = match self.kind {
            SopsSourceKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(self.kube.clone(), ns);
                let cm = api
                    .get_opt(name)
                    .await
                    .map_err(ProviderError::Kube)?
                    .ok_or_else(not_found)?;
                match (cm.data.and_then(|mut d| d.remove(key)), cm.binary_data) {
                    (Some(text), _) => text.into_bytes(),
                    (None, Some(mut bin)) => bin.remove(key).map(|b| b.0).ok_or_else(not_found)?,
                    (None, None) => return Err(not_found()),
                }
            }
            SopsSourceKind::Secret => {
                let api: Api<Secret> = Api::namespaced(self.kube.clone(), ns);
                let s = api
                    .get_opt(name)
                    .await
                    .map_err(ProviderError::Kube)?
                    .ok_or_else(not_found)?;
                s.data
                    .and_then(|mut d| d.remove(key))
                    .map(|b| b.0)
                    .ok_or_else(not_found)?
            }
        };
        if bytes.len() > document::MAX_DOCUMENT_BYTES {
            return Err(SopsError::format(format!(
                "the document is larger than {} bytes",
                document::MAX_DOCUMENT_BYTES
            ))
            .into_provider(remote_key));
        }
        String::from_utf8(bytes)
            .map_err(|_| SopsError::format("the document is not UTF-8 text").into_provider(remote_key))
    }

    /// Decrypts the document at `remote_key` into JSON text.
    async fn read(&self, remote_key: &str) -> Result<SecretValue> {
        let text = self.fetch(remote_key).await?;
        let (_, key) = split_key(remote_key)?;
        let format = Format::detect(key, &text);
        // Parsing and decrypting up to 1 MiB is CPU work (and deep frames in debug builds): off the async workers.
        let doc = tokio::task::spawn_blocking(move || Document::parse(format, &text))
            .await
            .map_err(|_| ProviderError::Transport("the SOPS parsing task failed".into()))?
            .map(Arc::new)
            .map_err(|e| e.into_provider(remote_key))?;
        let doc_name = format!("{} {}/{remote_key}", kind_name(self.kind), self.namespace);
        let id = KeyCache::id(&doc.metadata);
        let data_key = match self.cache.get(&id) {
            Some(k) => k,
            None => self
                .ring
                .data_key(&doc.metadata, &doc_name)
                .await
                .map_err(|e| e.into_provider(remote_key))?,
        };
        let (d, k) = (doc.clone(), data_key.clone());
        let plain = tokio::task::spawn_blocking(move || d.decrypt(&k))
            .await
            .map_err(|_| ProviderError::Transport("the SOPS decryption task failed".into()))?
            .map_err(|e| e.into_provider(remote_key))?;
        // Only a key that verified a MAC is remembered.
        self.cache.put(id, data_key);
        Ok(SecretValue::from(plain.to_json().to_string()))
    }
}

fn kind_name(kind: SopsSourceKind) -> &'static str {
    match kind {
        SopsSourceKind::ConfigMap => "ConfigMap",
        SopsSourceKind::Secret => "Secret",
    }
}

#[async_trait]
impl SecretsClient for SopsClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        if key.fetch_metadata {
            return Err(ProviderError::Unsupported(
                "a sops store has no metadata (metadataPolicy: Fetch)".into(),
            ));
        }
        if key.version.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(ProviderError::Unsupported(
                "a sops store's documents have no versions (remoteRef.version)".into(),
            ));
        }
        observed(&self.observer, LABEL, "GetSecret", async {
            self.read(&key.key).await.map(RemoteValue::Bytes)
        })
        .await
    }

    async fn validate(&self) -> Result<Validation> {
        // The keys were loaded when the client was built; documents are checked when read.
        Ok(Validation::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> SopsProvider {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn keys_and_namespaces() {
        assert_eq!(split_key("app/secrets.yaml").unwrap(), ("app", "secrets.yaml"));
        for bad in ["app", "/k", "app/", "a/b/c"] {
            assert!(split_key(bad).is_err(), "{bad}");
        }
        let s = spec(r#"{"keys":{"age":[{"secretRef":{"name":"k","key":"keys.txt"}}]}}"#);
        let r = document_ref(StoreScope::SecretStore, Some("team-a"), &s, "team-a", "app/s.yaml").unwrap();
        assert_eq!(
            (r.namespace.as_str(), r.name.as_str(), r.key.as_str()),
            ("team-a", "app", "s.yaml")
        );
        assert_eq!(r.kind, SopsSourceKind::ConfigMap);
        // A ClusterSecretStore reads the ExternalSecret's namespace unless it names one.
        let r = document_ref(StoreScope::ClusterSecretStore, None, &s, "team-b", "app/s.yaml").unwrap();
        assert_eq!(r.namespace, "team-b");
        assert!(is_referent_spec(&s));
        let s = spec(
            r#"{"namespace":"gitops","sourceKind":"Secret","keys":{"age":[{"secretRef":{"name":"k","key":"keys.txt","namespace":"ops"}}]}}"#,
        );
        let r = document_ref(StoreScope::ClusterSecretStore, None, &s, "team-b", "app/s.yaml").unwrap();
        assert_eq!((r.namespace.as_str(), r.kind), ("gitops", SopsSourceKind::Secret));
        assert!(!is_referent_spec(&s));
        assert_eq!(document_ref(StoreScope::SecretStore, Some("a"), &s, "a", "nokey"), None);
    }

    #[test]
    fn documents_an_external_secret_reads() {
        use syncret_crds::secretstore::StoreKind;
        let es: syncret_crds::ExternalSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "app", "namespace": "team-a"},
            "spec": {
                "secretStoreRef": {"name": "sops"},
                "data": [
                    {"secretKey": "a", "remoteRef": {"key": "docs/app.yaml", "property": "x"}},
                    {"secretKey": "b", "remoteRef": {"key": "docs/app.yaml", "property": "y"}},
                    {"secretKey": "c", "remoteRef": {"key": "other"},
                     "sourceRef": {"storeRef": {"name": "vault", "kind": "ClusterSecretStore"}}},
                ],
                "dataFrom": [
                    {"extract": {"key": "env/app.env"}},
                    {"find": {"name": {"regexp": ".*"}}},
                ],
            },
        }))
        .unwrap();
        let s = spec(r#"{"keys":{"age":[{"secretRef":{"name":"k","key":"keys.txt"}}]}}"#);
        let docs = documents_read(&es, StoreKind::SecretStore, "sops", Some("team-a"), &s);
        let names: Vec<(&str, &str, &str)> = docs
            .iter()
            .map(|d| (d.namespace.as_str(), d.name.as_str(), d.key.as_str()))
            .collect();
        assert_eq!(names, [("team-a", "docs", "app.yaml"), ("team-a", "env", "app.env")]);
        assert!(documents_read(&es, StoreKind::ClusterSecretStore, "sops", None, &s).is_empty());
    }

    #[test]
    fn namespaced_stores_name_their_credentials() {
        let store = |json: &str, scope| StoreInfo {
            scope,
            name: "s".into(),
            namespace: Some("team-a".into()),
            uid: "u".into(),
            generation: 1,
            spec: Arc::new(serde_json::from_str(&format!(r#"{{"provider":{{"sops":{json}}}}}"#)).unwrap()),
        };
        let ambient = r#"{"keys":{"aws":{"region":"eu-west-1"}}}"#;
        let strict = crate::TenantPolicy::default();
        let check = |json: &str, scope, policy: &crate::TenantPolicy| {
            check_named_credentials(&store(json, scope), &spec(json), policy)
        };
        let err = check(ambient, StoreScope::SecretStore, &strict).unwrap_err();
        assert!(err.to_string().contains("spec.provider.sops.keys.aws.auth"), "{err}");
        assert!(check(ambient, StoreScope::ClusterSecretStore, &strict).is_ok());
        let own_sa = r#"{"keys":{"vault":{"server":"http://v","auth":{"kubernetes":{"role":"r"}}}}}"#;
        let err = check(own_sa, StoreScope::SecretStore, &strict).unwrap_err();
        assert!(err.to_string().contains("keys.vault.auth.kubernetes"), "{err}");
        let allowed = crate::TenantPolicy {
            namespaced_operator_identity: true,
            ..crate::TenantPolicy::default()
        };
        assert!(check(own_sa, StoreScope::SecretStore, &allowed).is_ok());
    }

    #[test]
    fn cloud_keys_name_the_sops_fields_and_resolve_per_namespace() {
        let e = rebase(
            ProviderError::invalid_config("spec.provider.azurekv.authSecretRef.clientId", "is required"),
            crate::azure::BASE,
            "spec.provider.sops.keys.azure",
        );
        assert_eq!(
            e.to_string(),
            "spec.provider.sops.keys.azure.authSecretRef.clientId: is required"
        );
        let e = rebase(
            ProviderError::Policy {
                field: "spec.provider.gcpsm.auth".into(),
                message: "x".into(),
            },
            "spec.provider.gcpsm",
            "spec.provider.sops.keys.gcp",
        );
        assert!(e.to_string().starts_with("spec.provider.sops.keys.gcp.auth: "), "{e}");
        let fixed = r#""namespace":"gitops","#;
        let azure = spec(&format!(
            r#"{{{fixed}"keys":{{"azure":{{"vaultUrl":"https://v.vault.azure.net","authSecretRef":{{"clientId":{{"name":"c","key":"id"}}}}}}}}}}"#
        ));
        assert!(
            is_referent_spec(&azure),
            "a secret ref without namespace resolves per ExternalSecret namespace"
        );
        let gcp = spec(&format!(
            r#"{{{fixed}"keys":{{"gcp":{{"auth":{{"secretRef":{{"secretAccessKeySecretRef":{{"name":"g","key":"k","namespace":"ops"}}}}}}}}}}}}"#
        ));
        assert!(!is_referent_spec(&gcp));
        let gcp = spec(&format!(
            r#"{{{fixed}"keys":{{"gcp":{{"auth":{{"secretRef":{{"secretAccessKeySecretRef":{{"name":"g","key":"k"}}}}}}}}}}}}"#
        ));
        assert!(is_referent_spec(&gcp));
    }

    #[test]
    fn errors_map_to_conditions_without_values() {
        let e = SopsError::NoKey {
            field: "spec.provider.sops.keys.age[0]".into(),
            message: "no key".into(),
        }
        .into_provider("app/s.yaml");
        assert_eq!(e.reason(), "InvalidProviderConfig");
        assert!(e.to_string().starts_with("spec.provider.sops.keys.age[0]: "));
        let e = SopsError::Tampered("MAC mismatch".into()).into_provider("app/s.yaml");
        assert_eq!(e.reason(), "InvalidRemoteValue");
        assert!(e.to_string().contains("MAC mismatch"));
    }
}
