//! `spec.provider.vault` (HashiCorp Vault) and `spec.provider.openBao` (OpenBao): KV v1 and v2, as ESO's vault
//! provider (`providers/v1/vault`), with one login per store instead of one per reconcile.
//!
//! - Reads: `path` is the KV mount (see [`paths`]); no property gives the JSON of the data map (Go's
//!   `json.Marshal` rendering), a property is applied by the caller (exact key first, then gjson);
//!   `version` reads a KV v2 version; `metadataPolicy: Fetch` (KV v2) returns `custom_metadata` plus
//!   `created_time`, `current_version` and `delete_version_after`.
//! - `dataFrom.find`: walks the KV metadata listing under `find.path` recursively; filters by name regexp and
//!   by `custom_metadata` tags (KV v2; one metadata read per candidate), then reads each match.
//! - PushSecret: writes only keys syncret (or ESO) created, marked with `custom_metadata` `managed-by:
//!   external-secrets` (KV v1: a `custom_metadata` data key, as ESO); KV v2 writes carry a check-and-set version
//!   (0 for a new key), so a key created or changed by someone else in between is never overwritten.
//! - Auth (see [`auth`]): tokenSecretRef, appRole, kubernetes (TokenRequest, a token Secret, or the pod's own),
//!   jwt (a Secret or `kubernetesServiceAccountToken`), cert, userPass, ldap, iam (a signed
//!   `sts:GetCallerIdentity`, see `iam`), gcp (a signed JWT, see `gcp`). The token lives in the client,
//!   which the [`crate::ClientCache`] shares across reconciles and ExternalSecrets; it is renewed before it
//!   expires, replaced by one new login when it cannot be, and revoked by [`crate::SecretsClient::close`].
//! - Leases: a read whose answer carries a `lease_duration` (a KV v1 secret with `ttl`, dynamic credentials read
//!   through a v1 store) is remembered; [`crate::SecretsClient::expires_in`] tells the operator how long the
//!   value stays valid.
//! - `openBao` is the same client with OpenBao's smaller spec: its auth is appRole, tokenSecretRef or userPass,
//!   and its mount defaults to `kv` (ESO's openbao provider).
//!
//! Calls are reported as provider `HashiCorp/Vault` (or `OpenBao`) with ESO's call names: `Login`,
//! `ReadSecretData`, `ListSecrets`, `WriteSecretData`, `DeleteSecret`, `LookupSelf`, `RevokeSelf`, plus
//! `RenewSelf`.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::meta::{Base64Data, CAProvider};
use syncret_crds::provider::openbao::OpenBaoProvider;
use syncret_crds::provider::vault::{
    VaultAppRole, VaultAuth, VaultClientTLS, VaultKVStoreVersion, VaultProvider, VaultUserPassAuth,
};

use crate::client::SecretsClient;
use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};

pub mod auth;
pub(crate) mod client;
#[cfg(feature = "gcp")]
pub mod gcp;
pub mod http;
#[cfg(feature = "aws")]
pub mod iam;
pub mod keeper;
pub mod paths;

/// Which spec key a store uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Vault,
    OpenBao,
}

impl Flavor {
    fn key(self) -> &'static str {
        match self {
            Flavor::Vault => "vault",
            Flavor::OpenBao => "openBao",
        }
    }

    fn base(self) -> &'static str {
        match self {
            Flavor::Vault => "spec.provider.vault",
            Flavor::OpenBao => "spec.provider.openBao",
        }
    }

    /// The `provider` label of `externalsecret_provider_api_calls_count`.
    fn label(self) -> &'static str {
        match self {
            Flavor::Vault => "HashiCorp/Vault",
            Flavor::OpenBao => "OpenBao",
        }
    }
}

/// The factory for one spec key; [`providers`] gives both.
pub struct Vault {
    flavor: Flavor,
    /// `auth.iam`: where the AWS credentials come from and STS is (the AWS provider's endpoints).
    #[cfg(feature = "aws")]
    aws: crate::aws::Aws,
    /// `auth.gcp`: where Google's endpoints (metadata server, IAM Credentials) are.
    #[cfg(feature = "gcp")]
    gcp: Arc<crate::gcp::Endpoints>,
    /// Tokens that created leases, kept renewable after their client is gone.
    keeper: Arc<keeper::TokenKeeper>,
}

impl Vault {
    pub fn new(flavor: Flavor) -> Self {
        Self {
            flavor,
            keeper: Arc::default(),
            #[cfg(feature = "aws")]
            aws: crate::aws::Aws::default(),
            #[cfg(feature = "gcp")]
            gcp: Arc::new(crate::gcp::Endpoints::default()),
        }
    }

    /// `auth.iam` logins take their AWS credentials and STS endpoint from this AWS factory (tests: moto).
    #[cfg(feature = "aws")]
    pub fn with_aws(mut self, aws: crate::aws::Aws) -> Self {
        self.aws = aws;
        self
    }

    /// `auth.gcp` logins reach Google's endpoints here (tests: a server on loopback).
    #[cfg(feature = "gcp")]
    pub fn with_gcp_endpoints(mut self, endpoints: crate::gcp::Endpoints) -> Self {
        self.gcp = Arc::new(endpoints);
        self
    }

    /// The credentials of an `iam` or `gcp` login, set up once per client.
    pub(crate) async fn cloud_logins(
        &self,
        s: &Settings,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<auth::CloudLogins> {
        #[allow(unused_mut)]
        let mut cloud = auth::CloudLogins::default();
        let Some(a) = &s.auth else { return Ok(cloud) };
        #[cfg(feature = "aws")]
        if let Some(iam) = &a.iam {
            let field = format!("{}.auth.iam", s.base);
            cloud.iam = Some(iam::IamLogin::build(iam, &field, &self.aws, store, ctx).await?);
        }
        #[cfg(feature = "gcp")]
        if let Some(g) = &a.gcp {
            let field = format!("{}.auth.gcp", s.base);
            cloud.gcp = Some(gcp::GcpLogin::build(g, &field, self.gcp.clone(), store, ctx).await?);
        }
        let _ = (a, store, ctx);
        Ok(cloud)
    }
}

impl Vault {
    /// A client for a VaultDynamicSecret: `store` carries its `provider` as `spec.provider.vault`.
    #[cfg(feature = "generators")]
    pub(crate) async fn dynamic_client(
        &self,
        store: &StoreInfo,
        ctx: &ProviderContext,
        base: &'static str,
    ) -> Result<client::VaultClient> {
        let mut settings = self.settings(store)?;
        settings.base = base;
        let cloud = self.cloud_logins(&settings, store, ctx).await?;
        client::VaultClient::connect(
            settings,
            ctx.credentials(store),
            ctx.observer.clone(),
            cloud,
            self.keeper.clone(),
            ctx.http_client(store),
        )
        .await
    }

    /// Tokens kept for their leases (see [`keeper`]).
    pub fn kept_tokens(&self) -> usize {
        self.keeper.len()
    }
}

impl Default for Vault {
    fn default() -> Self {
        Self::new(Flavor::Vault)
    }
}

/// Both factories: `vault` and `openBao`.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![
        Arc::new(Vault::new(Flavor::Vault)),
        Arc::new(Vault::new(Flavor::OpenBao)),
    ]
}

/// A store spec of either key, in one shape (OpenBao's is a subset of Vault's).
#[derive(Clone, Debug)]
pub struct Settings {
    pub flavor: Flavor,
    pub base: &'static str,
    pub server: String,
    /// The KV mount, normalised.
    pub mount: Option<String>,
    pub version: VaultKVStoreVersion,
    pub namespace: Option<String>,
    pub ca_bundle: Option<Base64Data>,
    pub ca_provider: Option<CAProvider>,
    pub client_tls: VaultClientTLS,
    pub read_your_writes: bool,
    pub forward_inconsistent: bool,
    pub headers: BTreeMap<String, String>,
    pub check_and_set: bool,
    pub auth: Option<VaultAuth>,
}

impl Settings {
    pub fn from_vault(p: &VaultProvider) -> Self {
        Self {
            flavor: Flavor::Vault,
            base: Flavor::Vault.base(),
            server: p.server.clone(),
            mount: paths::normalise_mount(p.path.as_deref(), p.version),
            version: p.version,
            namespace: p.namespace.clone().filter(|n| !n.is_empty()),
            ca_bundle: p.ca_bundle.clone(),
            ca_provider: p.ca_provider.clone(),
            client_tls: p.client_tls.clone(),
            read_your_writes: p.read_your_writes,
            forward_inconsistent: p.forward_inconsistent,
            headers: p.headers.clone(),
            check_and_set: p.check_and_set.as_ref().is_some_and(|c| c.required),
            auth: p.auth.clone(),
        }
    }

    pub fn from_openbao(p: &OpenBaoProvider) -> Self {
        let auth = p.auth.as_ref().map(|a| VaultAuth {
            namespace: a.namespace.clone(),
            token_secret_ref: a.token_secret_ref.clone(),
            app_role: a.app_role.as_ref().map(|r| VaultAppRole {
                path: r.path.clone(),
                role_id: r.role_id.clone(),
                role_ref: r.role_ref.clone(),
                secret_ref: r.secret_ref.clone(),
            }),
            user_pass: a.user_pass.as_ref().map(|u| VaultUserPassAuth {
                path: u.path.clone(),
                username: u.username.clone(),
                secret_ref: u.secret_ref.clone(),
            }),
            ..Default::default()
        });
        Self {
            flavor: Flavor::OpenBao,
            base: Flavor::OpenBao.base(),
            server: p.server.clone(),
            // ESO's openbao provider uses the `kv` mount when `path` is unset.
            mount: paths::normalise_mount(Some(p.path.as_deref().unwrap_or("kv")), p.version),
            version: p.version,
            namespace: p.namespace.clone().filter(|n| !n.is_empty()),
            ca_bundle: p.ca_bundle.clone(),
            ca_provider: p.ca_provider.clone(),
            client_tls: VaultClientTLS::default(),
            read_your_writes: false,
            forward_inconsistent: false,
            headers: BTreeMap::new(),
            check_and_set: false,
            auth,
        }
    }

    /// The namespace logins and token calls go to: `auth.namespace`, else the provider's.
    pub fn auth_namespace(&self) -> Option<&str> {
        self.auth
            .as_ref()
            .and_then(|a| a.namespace.as_deref())
            .filter(|n| !n.is_empty())
            .or(self.namespace.as_deref())
    }

    /// Whether the auth block logs in (every method but `tokenSecretRef`; no auth at all does not either).
    pub fn logs_in(&self) -> bool {
        self.auth.as_ref().is_some_and(|a| a.token_secret_ref.is_none())
    }

    /// Whether a ClusterSecretStore resolves these refs per ExternalSecret namespace (ESO's `isReferentSpec`).
    pub fn is_referent(&self) -> bool {
        let none = |ns: &Option<String>| ns.as_deref().is_none_or(str::is_empty);
        let Some(a) = &self.auth else { return false };
        let refs = a.token_secret_ref.as_ref().is_some_and(|s| none(&s.namespace))
            || a.app_role.as_ref().is_some_and(|r| {
                none(&r.secret_ref.namespace) || r.role_ref.as_ref().is_some_and(|s| none(&s.namespace))
            })
            || a.kubernetes.as_ref().is_some_and(|k| {
                k.secret_ref.as_ref().is_some_and(|s| none(&s.namespace))
                    || k.service_account_ref.as_ref().is_some_and(|s| none(&s.namespace))
            })
            || a.ldap.as_ref().is_some_and(|l| none(&l.secret_ref.namespace))
            || a.user_pass.as_ref().is_some_and(|u| none(&u.secret_ref.namespace))
            || a.jwt.as_ref().is_some_and(|j| {
                j.secret_ref.as_ref().is_some_and(|s| none(&s.namespace))
                    || j.kubernetes_service_account_token
                        .as_ref()
                        .is_some_and(|k| none(&k.service_account_ref.namespace))
            })
            || a.cert.as_ref().is_some_and(|c| none(&c.secret_ref.namespace))
            || a.iam.as_ref().is_some_and(|i| {
                i.secret_ref.as_ref().is_some_and(|r| {
                    none(&r.access_key_id.namespace)
                        || none(&r.secret_access_key.namespace)
                        || r.session_token.as_ref().is_some_and(|t| none(&t.namespace))
                }) || i
                    .jwt_auth
                    .as_ref()
                    .and_then(|j| j.service_account_ref.as_ref())
                    .is_some_and(|sa| none(&sa.namespace))
            })
            || a.gcp.as_ref().is_some_and(|g| {
                g.secret_ref
                    .as_ref()
                    .is_some_and(|r| none(&r.secret_access_key.namespace))
                    || g.workload_identity
                        .as_ref()
                        .is_some_and(|w| none(&w.service_account_ref.namespace))
            });
        let ca = self.flavor == Flavor::OpenBao && self.ca_provider.as_ref().is_some_and(|c| none(&c.namespace));
        refs || ca
    }
}

impl Vault {
    fn settings(&self, store: &StoreInfo) -> Result<Settings> {
        let p = &store.spec.provider;
        match self.flavor {
            Flavor::Vault => p.vault.as_ref().map(Settings::from_vault),
            Flavor::OpenBao => p.open_bao.as_ref().map(Settings::from_openbao),
        }
        .ok_or_else(|| ProviderError::invalid_config(self.flavor.base(), "must be set"))
    }
}

#[async_trait]
impl Provider for Vault {
    fn key(&self) -> &'static str {
        self.flavor.key()
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        store.scope == StoreScope::ClusterSecretStore && self.settings(store).is_ok_and(|s| s.is_referent())
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let settings = self.settings(store)?;
        // Kubernetes auth without a ref logs in with the operator's own service-account token: not on a tenant's
        // behalf unless the operator allows it.
        if let Some(k) = settings.auth.as_ref().and_then(|a| a.kubernetes.as_ref())
            && k.service_account_ref.is_none()
            && k.secret_ref.is_none()
        {
            ctx.policy.operator_identity(
                store,
                &format!("{}.auth.kubernetes", settings.base),
                "the operator's own service-account token (kubernetes auth without serviceAccountRef or secretRef)",
            )?;
        }
        let cloud = self.cloud_logins(&settings, store, ctx).await?;
        let client = client::VaultClient::connect(
            settings,
            ctx.credentials(store),
            ctx.observer.clone(),
            cloud,
            self.keeper.clone(),
            ctx.http_client(store),
        )
        .await?;
        Ok(Arc::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(json: &str) -> Settings {
        Settings::from_vault(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn openbao_defaults_to_the_kv_mount_and_maps_its_auth() {
        let p: OpenBaoProvider = serde_json::from_str(
            r#"{"server":"http://b","auth":{"userPass":{"username":"u","secretRef":{"name":"s","key":"p"}}}}"#,
        )
        .unwrap();
        let s = Settings::from_openbao(&p);
        assert_eq!(s.mount.as_deref(), Some("kv"));
        assert_eq!(s.base, "spec.provider.openBao");
        let a = s.auth.as_ref().unwrap();
        assert_eq!(auth::method(a), Some("userPass"));
        assert_eq!(a.user_pass.as_ref().unwrap().path, "userpass");
        assert!(s.is_referent(), "no namespace on the secretRef");
    }

    #[test]
    fn referent_specs_like_eso() {
        let s = vault(r#"{"server":"s","auth":{"tokenSecretRef":{"name":"t","key":"k"}}}"#);
        assert!(s.is_referent());
        let s = vault(r#"{"server":"s","auth":{"tokenSecretRef":{"name":"t","key":"k","namespace":"x"}}}"#);
        assert!(!s.is_referent());
        let s = vault(r#"{"server":"s","auth":{"kubernetes":{"role":"r"}}}"#);
        assert!(!s.is_referent(), "the controller's own token");
        let s = vault(r#"{"server":"s","auth":{"kubernetes":{"role":"r","serviceAccountRef":{"name":"sa"}}}}"#);
        assert!(s.is_referent());
        let s = vault(r#"{"server":"s"}"#);
        assert!(!s.is_referent());
    }

    #[test]
    fn auth_namespace_defaults_to_the_provider_namespace() {
        let s = vault(r#"{"server":"s","namespace":"ns1","auth":{"tokenSecretRef":{"name":"t","key":"k"}}}"#);
        assert_eq!(s.auth_namespace(), Some("ns1"));
        let s = vault(r#"{"server":"s","namespace":"ns1","auth":{"namespace":"admin","tokenSecretRef":{"name":"t"}}}"#);
        assert_eq!(s.auth_namespace(), Some("admin"));
        assert_eq!(s.namespace.as_deref(), Some("ns1"));
    }
}
