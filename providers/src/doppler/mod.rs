//! `spec.provider.doppler`: Doppler's REST API v3, as ESO's doppler provider.
//!
//! - Auth: a Doppler token from `auth.secretRef.dopplerToken` (`key` defaults to `dopplerToken`), or
//!   `auth.oidcConfig`: a token minted for the ServiceAccount (audiences: its own or the API URL, plus
//!   `secretStore:<namespace>:<name>` / `clusterSecretStore:<name>`) exchanged at `POST /v3/auth/oidc` for an API
//!   token of `identity`, renewed a minute before it expires. Requests use HTTP basic auth (token, no password).
//! - The API URL is `https://api.doppler.com`, or the operator's `DOPPLER_BASE_URL` environment variable (as ESO).
//! - `remoteRef.key` is a secret name, read with `GET /v3/configs/config/secrets/download?secrets=<name>`;
//!   `property` and `version` are ignored, as in ESO. `dataFrom.extract` reads the value as a JSON object.
//! - `dataFrom.find` downloads the config (with `nameTransformer` and `format`; a `format` gives one key,
//!   `DOPPLER_SECRETS_FILE`), filtered by `name.regexp` and `path` (a name prefix); `tags` are ignored (ESO too).
//! - PushSecret: `POST /v3/configs/config/secrets` with the value (the property is ignored, as in ESO); delete is
//!   a change request with `shouldDelete` (nothing to do when the secret is gone); exists downloads the name
//!   (ESO answers "not implemented").
//! - Store validation: `GET /v3/projects` with the token, as ESO.
//! - Not carried over: ESO's ETag value cache (values are not kept in memory between reads) and
//!   `DOPPLER_VERIFY_TLS` (TLS is always verified).
mod client;

use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::provider::doppler::DopplerProvider as Spec;

use crate::client::SecretsClient;
use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::rest::Rest;

pub use client::DopplerClient;

const LABEL: &str = "Doppler";
const BASE: &str = "spec.provider.doppler";
/// The API ESO talks to unless `DOPPLER_BASE_URL` is set.
pub const DEFAULT_BASE_URL: &str = "https://api.doppler.com";

/// The factory. The API URL is an operator setting (ESO reads `DOPPLER_BASE_URL`), not part of the store.
pub struct Doppler {
    base_url: String,
}

impl Default for Doppler {
    /// `DOPPLER_BASE_URL` when set, else [`DEFAULT_BASE_URL`].
    fn default() -> Self {
        let base_url = std::env::var("DOPPLER_BASE_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        Self::with_base_url(base_url)
    }
}

impl Doppler {
    /// A provider talking to `base_url` (a scheme-less host gets `https://`, as in ESO).
    pub fn with_base_url(base_url: impl Into<String>) -> Self {
        let mut base_url: String = base_url.into().trim().trim_end_matches('/').to_string();
        if !base_url.contains("://") {
            base_url = format!("https://{base_url}");
        }
        Self { base_url }
    }
}

fn spec(store: &StoreInfo) -> Result<&Spec> {
    store
        .spec
        .provider
        .doppler
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

#[async_trait]
impl Provider for Doppler {
    fn key(&self) -> &'static str {
        "doppler"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        let no_ns = |ns: Option<&str>| ns.is_none_or(str::is_empty);
        store.scope == StoreScope::ClusterSecretStore
            && (s
                .auth
                .secret_ref
                .as_ref()
                .is_some_and(|r| no_ns(r.doppler_token.namespace.as_deref()))
                || s.auth
                    .oidc_config
                    .as_ref()
                    .is_some_and(|o| no_ns(o.service_account_ref.namespace.as_deref())))
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        let rest = Rest::new(
            &self.base_url,
            b"",
            "DOPPLER_BASE_URL",
            LABEL,
            ctx.observer.clone(),
            ctx.http_client(store),
        )?;
        let auth = client::Auth::new(&spec, store, ctx, &self.base_url)?;
        let client = DopplerClient::new(spec, rest, auth);
        // Reads the token (or exchanges the OIDC token) now: a missing Secret fails the store at once.
        client.token().await?;
        Ok(Arc::new(client))
    }
}
