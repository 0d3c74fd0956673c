//! Reading what a store's auth block points at: keys of Secrets, ConfigMap CA bundles, and ServiceAccount
//! tokens minted with the TokenRequest API, with ESO's namespace rules:
//! - a namespaced `SecretStore` only reads its own namespace (a different `namespace` in a ref is refused);
//! - a `ClusterSecretStore` reads the ref's `namespace`; a ref without one is *referent* and resolves in the
//!   namespace of the ExternalSecret using the store.
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use syncret_crds::meta::{CAProvider, CAProviderType, SecretKeySelector, ServiceAccountSelector};

use crate::error::{ProviderError, Result};
use crate::value::{SecretValue, Unloggable};

/// Which kind of store the references belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreScope {
    SecretStore,
    ClusterSecretStore,
}

/// Resolves references of one store for one use.
#[derive(Clone)]
pub struct Credentials {
    pub client: kube::Client,
    pub scope: StoreScope,
    /// The SecretStore's namespace (for a SecretStore).
    pub store_namespace: Option<String>,
    /// The namespace of the ExternalSecret/PushSecret using a ClusterSecretStore (for referent refs).
    pub referent_namespace: Option<String>,
}

impl Credentials {
    /// The namespace a reference with optional `namespace` resolves in. `field` names the ref for errors.
    pub fn namespace_for(&self, namespace: Option<&str>, field: &str) -> Result<String> {
        let namespace = namespace.filter(|n| !n.is_empty());
        match self.scope {
            StoreScope::SecretStore => {
                let own = self.store_namespace.as_deref().unwrap_or_default();
                match namespace {
                    Some(ns) if ns != own => Err(ProviderError::invalid_config(
                        format!("{field}.namespace"),
                        format!(
                            "namespace {ns:?} is not allowed: a SecretStore can only reference its own namespace {own:?}"
                        ),
                    )),
                    _ => Ok(own.to_string()),
                }
            }
            StoreScope::ClusterSecretStore => match namespace {
                Some(ns) => Ok(ns.to_string()),
                None => self.referent_namespace.clone().ok_or_else(|| {
                    ProviderError::invalid_config(
                        format!("{field}.namespace"),
                        "a ClusterSecretStore reference needs a namespace (or is resolved per ExternalSecret namespace)",
                    )
                }),
            },
        }
    }

    /// Whether a ref resolves per ExternalSecret namespace (a referent ClusterSecretStore ref).
    pub fn is_referent(&self, namespace: Option<&str>) -> bool {
        self.scope == StoreScope::ClusterSecretStore && namespace.is_none_or(str::is_empty)
    }

    /// The bytes at `selector.key` of Secret `selector.name`.
    pub async fn secret_key(&self, selector: &SecretKeySelector, field: &str) -> Result<SecretValue> {
        if selector.name.is_empty() {
            return Err(ProviderError::invalid_config(format!("{field}.name"), "must be set"));
        }
        if selector.key.is_empty() {
            return Err(ProviderError::invalid_config(format!("{field}.key"), "must be set"));
        }
        let ns = self.namespace_for(selector.namespace.as_deref(), field)?;
        let secret = self.get_secret(&ns, &selector.name, field).await?;
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(&selector.key))
            .map(|b| SecretValue::from(b.0.clone()))
            .ok_or_else(|| {
                ProviderError::Credentials(format!(
                    "{field}: key {:?} not found in Secret {ns}/{}",
                    selector.key, selector.name
                ))
            })
    }

    /// The text at `selector.key` (UTF-8, surrounding whitespace trimmed), for tokens and IDs; `default_key`
    /// stands in for an empty `key`.
    pub async fn secret_text(
        &self,
        selector: &SecretKeySelector,
        default_key: Option<&str>,
        field: &str,
    ) -> Result<Unloggable<String>> {
        let mut selector = selector.clone();
        if selector.key.is_empty()
            && let Some(k) = default_key
        {
            selector.key = k.to_string();
        }
        let value = self.secret_key(&selector, field).await?;
        let text = value
            .as_str()
            .ok_or_else(|| ProviderError::Credentials(format!("{field}: the value is not UTF-8 text")))?
            .trim()
            .to_string();
        if text.is_empty() {
            return Err(ProviderError::Credentials(format!("{field}: the value is empty")));
        }
        Ok(Unloggable(text))
    }

    /// The whole Secret (e.g. a kubeconfig or several keys of one credential).
    pub async fn get_secret(&self, namespace: &str, name: &str, field: &str) -> Result<Secret> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(ProviderError::Credentials(format!(
                "{field}: Secret {namespace}/{name} not found"
            ))),
            Err(e) => Err(ProviderError::Credentials(format!(
                "{field}: reading Secret {namespace}/{name}: {e}"
            ))),
        }
    }

    /// A token for the ServiceAccount, minted with the TokenRequest API.
    pub async fn service_account_token(
        &self,
        selector: &ServiceAccountSelector,
        default_audiences: &[&str],
        expiration_seconds: i64,
        field: &str,
    ) -> Result<Unloggable<String>> {
        let ns = self.namespace_for(selector.namespace.as_deref(), field)?;
        let audiences: Vec<String> = if selector.audiences.is_empty() {
            default_audiences.iter().map(|s| s.to_string()).collect()
        } else {
            selector.audiences.clone()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &ns);
        let req = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(audiences),
                expiration_seconds: Some(expiration_seconds),
                ..Default::default()
            }),
            ..Default::default()
        };
        let resp = api
            .create_token_request(&selector.name, &PostParams::default(), &req)
            .await
            .map_err(|e| {
                ProviderError::Credentials(format!(
                    "{field}: TokenRequest for ServiceAccount {ns}/{}: {e}",
                    selector.name
                ))
            })?;
        let token = resp
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::Credentials(format!(
                    "{field}: TokenRequest for {ns}/{} returned no token",
                    selector.name
                ))
            })?;
        Ok(Unloggable(token))
    }

    /// The ServiceAccount object (for annotations like `eks.amazonaws.com/role-arn`).
    pub async fn service_account(&self, selector: &ServiceAccountSelector, field: &str) -> Result<ServiceAccount> {
        let ns = self.namespace_for(selector.namespace.as_deref(), field)?;
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &ns);
        api.get_opt(&selector.name)
            .await
            .map_err(|e| {
                ProviderError::Credentials(format!("{field}: reading ServiceAccount {ns}/{}: {e}", selector.name))
            })?
            .ok_or_else(|| {
                ProviderError::Credentials(format!("{field}: ServiceAccount {ns}/{} not found", selector.name))
            })
    }

    /// PEM CA certificates from an inline base64 `caBundle` and/or a `caProvider` reference.
    pub async fn ca_bundle(
        &self,
        inline: Option<&[u8]>,
        provider: Option<&CAProvider>,
        field: &str,
    ) -> Result<Vec<u8>> {
        let mut pem = inline.map(<[u8]>::to_vec).unwrap_or_default();
        if let Some(p) = provider {
            let ns = self.namespace_for(p.namespace.as_deref(), &format!("{field}.caProvider"))?;
            let key = if p.key.is_empty() { "ca.crt" } else { p.key.as_str() };
            let bytes = match p.type_ {
                CAProviderType::Secret => {
                    let s = self.get_secret(&ns, &p.name, &format!("{field}.caProvider")).await?;
                    s.data.and_then(|d| d.get(key).map(|b| b.0.clone()))
                }
                CAProviderType::ConfigMap => {
                    let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
                    let cm = api.get_opt(&p.name).await.map_err(|e| {
                        ProviderError::Credentials(format!(
                            "{field}.caProvider: reading ConfigMap {ns}/{}: {e}",
                            p.name
                        ))
                    })?;
                    cm.and_then(|c| c.data.and_then(|d| d.get(key).map(|s| s.as_bytes().to_vec())))
                }
            };
            let bytes = bytes.ok_or_else(|| {
                ProviderError::Credentials(format!("{field}.caProvider: key {key:?} not found in {ns}/{}", p.name))
            })?;
            if !pem.is_empty() && !pem.ends_with(b"\n") {
                pem.push(b'\n');
            }
            pem.extend_from_slice(&bytes);
        }
        Ok(pem)
    }
}
