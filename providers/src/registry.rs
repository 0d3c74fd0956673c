//! The [`Provider`] factory trait and the registry that picks one from a store's `spec.provider`.
use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::secretstore::SecretStoreSpec;

use crate::client::{CallObserver, SecretsClient};
use crate::credentials::{Credentials, StoreScope};
use crate::error::{ProviderError, Result};
use crate::policy::TenantPolicy;

/// The store a client is built for.
#[derive(Clone, Debug)]
pub struct StoreInfo {
    pub scope: StoreScope,
    pub name: String,
    /// Set for a SecretStore.
    pub namespace: Option<String>,
    pub uid: String,
    pub generation: i64,
    pub spec: Arc<SecretStoreSpec>,
}

impl StoreInfo {
    /// `SecretStore` or `ClusterSecretStore`.
    pub fn scope_name(&self) -> &'static str {
        match self.scope {
            StoreScope::SecretStore => "SecretStore",
            StoreScope::ClusterSecretStore => "ClusterSecretStore",
        }
    }
}

/// What a provider may use to build a client.
#[derive(Clone)]
pub struct ProviderContext {
    pub client: kube::Client,
    pub observer: Arc<dyn CallObserver>,
    /// For ClusterSecretStores: the namespace of the object using the store (referent credentials resolve here).
    pub referent_namespace: Option<String>,
    /// The tenant boundary: operator identity, files and egress for namespaced stores (see [`crate::policy`]).
    pub policy: Arc<TenantPolicy>,
}

impl ProviderContext {
    /// Credential resolution for `store` with ESO's namespace rules.
    pub fn credentials(&self, store: &StoreInfo) -> Credentials {
        Credentials {
            client: self.client.clone(),
            scope: store.scope,
            store_namespace: store.namespace.clone(),
            referent_namespace: self.referent_namespace.clone(),
        }
    }

    /// The egress rules of clients built for `store` (restricted for a namespaced SecretStore).
    pub fn egress(&self, store: &StoreInfo) -> crate::net::egress::Egress {
        self.policy.egress_for(store)
    }

    /// The operator-wide budget every answer being read is charged to.
    pub fn responses(&self) -> crate::net::body::Budget {
        self.policy.responses.clone()
    }

    /// An HTTP client builder for `store`: its egress rules, the operator's answer budget.
    #[cfg(any(feature = "webhook", feature = "vault", feature = "gcp", feature = "rest"))]
    pub fn http_client(&self, store: &StoreInfo) -> crate::net::http::HttpClientBuilder {
        crate::net::http::HttpClientBuilder::new(self.egress(store), self.responses())
    }
}

/// Builds authenticated clients for one provider key (`fake`, `kubernetes`, `aws`, …).
#[async_trait]
pub trait Provider: Send + Sync {
    /// The key under `spec.provider`.
    fn key(&self) -> &'static str;

    /// Whether a ClusterSecretStore of this provider resolves credentials per ExternalSecret namespace (its
    /// auth refs have no namespace). Such clients are cached per namespace and the store validates as Unknown.
    fn is_referent(&self, _store: &StoreInfo) -> bool {
        false
    }

    /// Whether `remoteRef.property` is part of the request (the webhook renders it into its templates) instead of
    /// being applied to the returned value. The caller then passes it in [`crate::RemoteKey::property`] and does
    /// not apply it afterwards.
    fn takes_property(&self) -> bool {
        false
    }

    /// Builds an authenticated client (log in, exchange tokens). Called once per store generation (and
    /// referent namespace); the result is cached and shared.
    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>>;
}

/// All compiled-in providers, and the generators (which reuse their auth and clients).
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    /// The generator factory (`generators.external-secrets.io`); tests point its AWS and Vault parts elsewhere.
    #[cfg(feature = "generators")]
    pub generators: crate::generators::Generators,
}

impl Registry {
    /// A registry with every provider enabled by cargo features.
    #[allow(clippy::vec_init_then_push)]
    pub fn with_default_providers() -> Self {
        #[allow(unused_mut)]
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        #[cfg(feature = "fake")]
        providers.push(Arc::new(crate::fake::Fake::default()));
        #[cfg(feature = "kubernetes")]
        providers.push(Arc::new(crate::kubernetes::Kubernetes));
        #[cfg(feature = "gcp")]
        providers.push(Arc::new(crate::gcp::Gcp::default()));
        #[cfg(feature = "azure")]
        providers.push(Arc::new(crate::azure::AzureKeyVault::default()));
        #[cfg(feature = "vault")]
        providers.extend(crate::vault::providers());
        #[cfg(feature = "aws")]
        providers.push(Arc::new(crate::aws::Aws::default()));
        #[cfg(feature = "webhook")]
        providers.push(Arc::new(crate::webhook::Webhook));
        #[cfg(feature = "onepassword")]
        providers.push(Arc::new(crate::onepassword::OnePassword));
        #[cfg(feature = "doppler")]
        providers.push(Arc::new(crate::doppler::Doppler::default()));
        #[cfg(feature = "infisical")]
        providers.push(Arc::new(crate::infisical::Infisical::default()));
        #[cfg(feature = "bitwarden")]
        providers.push(Arc::new(crate::bitwarden::Bitwarden));
        #[cfg(feature = "gitlab")]
        providers.push(Arc::new(crate::gitlab::Gitlab));
        #[cfg(feature = "sops")]
        providers.push(Arc::new(crate::sops::Sops::default()));
        Self {
            providers,
            #[cfg(feature = "generators")]
            generators: crate::generators::Generators::default(),
        }
    }

    /// Adds (or replaces) a provider.
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        self.providers.retain(|p| p.key() != provider.key());
        self.providers.push(provider);
    }

    /// The provider for the one key set in `spec.provider`.
    pub fn provider_for(&self, spec: &SecretStoreSpec) -> Result<Arc<dyn Provider>> {
        let kind = spec
            .provider
            .kind()
            .map_err(|e| ProviderError::invalid_config("spec.provider", e.to_string()))?;
        let key = kind.key();
        self.providers.iter().find(|p| p.key() == key).cloned().ok_or_else(|| {
            ProviderError::invalid_config(
                format!("spec.provider.{key}"),
                format!("provider {key:?} is not compiled into this syncret build"),
            )
        })
    }

    pub fn keys(&self) -> Vec<&'static str> {
        self.providers.iter().map(|p| p.key()).collect()
    }
}
