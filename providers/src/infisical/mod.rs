//! `spec.provider.infisical`: Infisical's REST API (`/api/v1` auth, `/api/v3/secrets/raw`), as ESO's infisical
//! provider.
//!
//! - Auth (machine identities): `universalAuthCredentials` (client ID and secret), `jwtAuthCredentials`,
//!   `ldapAuthCredentials`, `tokenAuthCredentials` (an access token used as is), and
//!   `kubernetesAuthCredentials`, which presents the operator's own ServiceAccount token to Infisical (as ESO
//!   does): allowed for ClusterSecretStores only, and `serviceAccountTokenPath` may name only that token (syncret
//!   reads no file a store names). `azure`, `gcpIdToken`, `gcpIam`, `aws` and `oci` auth are refused as
//!   unsupported, naming the field. The login happens once per client; the access token is renewed by logging in
//!   again at 80% of its lifetime and revoked when the client is dropped (not for token auth), as ESO does.
//! - `remoteRef.key`: a secret name in `secretsScope.secretsPath`, `folder/name` below it, or `/abs/folder/name`;
//!   `property` is a gjson path into the value; `version` is ignored (ESO too). Imports are included and
//!   references expanded as `expandSecretReferences` says.
//! - `dataFrom.find`: the secrets of `secretsPath` (and below with `recursive`), imports included, filtered by
//!   `name.regexp` and `path` (a prefix of the secret's folder); `tags` are refused, as in ESO.
//! - PushSecret: create or update (`property`: merged into a JSON object value; unchanged values are not
//!   written), delete (a property, then the secret once no property is left), exists. Writes address the project
//!   by ID, looked up once per client from the slug.
//! - Store validation lists the scope's secrets, as ESO.
mod auth;
mod client;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::provider::infisical::InfisicalProvider as Spec;

use crate::client::SecretsClient;
use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::rest::{Rest, ca_bundle};

pub use client::InfisicalClient;

const LABEL: &str = "infisical";
const BASE: &str = "spec.provider.infisical";
/// Where the operator's own ServiceAccount token is mounted.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The factory. `token_path` is the operator's own ServiceAccount token, for Kubernetes auth.
pub struct Infisical {
    token_path: PathBuf,
}

impl Default for Infisical {
    fn default() -> Self {
        Self {
            token_path: PathBuf::from(DEFAULT_TOKEN_PATH),
        }
    }
}

impl Infisical {
    /// A provider whose Kubernetes auth presents the token in `token_path` (tests; a non-standard mount).
    pub fn with_token_path(token_path: impl Into<PathBuf>) -> Self {
        Self {
            token_path: token_path.into(),
        }
    }
}

fn spec(store: &StoreInfo) -> Result<&Spec> {
    store
        .spec
        .provider
        .infisical
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

/// `hostAPI` as the Infisical SDK reads it: `…/api` appended unless present; then a trailing `/` for joining.
fn api_base(host: &str) -> String {
    let host = host.trim();
    let host = if host.is_empty() {
        syncret_crds::provider::infisical::DEFAULT_HOST_API
    } else {
        host
    };
    let mut base = if host.ends_with("/api") {
        host.to_string()
    } else if host.ends_with('/') {
        format!("{host}api")
    } else {
        format!("{host}/api")
    };
    base.push('/');
    base
}

#[async_trait]
impl Provider for Infisical {
    fn key(&self) -> &'static str {
        "infisical"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        store.scope == StoreScope::ClusterSecretStore
            && (auth::selectors(&s.auth)
                .iter()
                .any(|sel| sel.namespace.as_deref().is_none_or(str::is_empty))
                || s.ca_provider
                    .as_ref()
                    .is_some_and(|p| p.namespace.as_deref().is_none_or(str::is_empty)))
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        if spec.secrets_scope.project_slug.trim().is_empty() || spec.secrets_scope.environment_slug.trim().is_empty() {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.secretsScope"),
                "secretsScope.projectSlug and secretsScope.environmentSlug cannot be empty",
            ));
        }
        let creds = ctx.credentials(store);
        let ca = ca_bundle(&creds, spec.ca_bundle.as_ref(), spec.ca_provider.as_ref(), BASE).await?;
        let rest = Rest::new(
            &api_base(&spec.host_api),
            &ca,
            &format!("{BASE}.hostAPI"),
            LABEL,
            ctx.observer.clone(),
            ctx.http_client(store),
        )?;
        let (login, auth_field) = auth::Login::resolve(&spec, store, &creds, &self.token_path, &ctx.policy).await?;
        let client = InfisicalClient::new(spec, rest, login, auth_field);
        client.token().await?;
        Ok(Arc::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_root_is_appended_as_the_sdk_does() {
        assert_eq!(api_base(""), "https://app.infisical.com/api/");
        assert_eq!(
            api_base("https://app.infisical.com/api"),
            "https://app.infisical.com/api/"
        );
        assert_eq!(api_base("https://infisical.example/"), "https://infisical.example/api/");
        assert_eq!(api_base("http://127.0.0.1:8080"), "http://127.0.0.1:8080/api/");
    }
}
