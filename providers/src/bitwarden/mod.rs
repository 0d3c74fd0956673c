//! `spec.provider.bitwardensecretsmanager`: Bitwarden Secrets Manager through the Bitwarden SDK server's REST API
//! (`/rest/api/1`, the HTTPS service ESO deploys beside itself), as ESO's bitwarden provider.
//!
//! - Auth: the machine-account access token from `auth.secretRef.credentials`, sent to the SDK server in
//!   `Warden-Access-Token` with `apiURL`/`identityURL` in `Warden-Api-Url`/`Warden-Identity-Url`. The SDK server
//!   must be HTTPS; its CA comes from `caBundle` (PEM or base64 PEM) or `caProvider`, else the system roots.
//! - `remoteRef.key`: a secret ID (a UUID), or a secret name looked up in the store's `projectID` (exactly one
//!   must match). `property` and `version` are ignored (ESO too); `dataFrom.extract` reads the value as a YAML or
//!   JSON object (nested objects as YAML, as ESO).
//! - Reads of one reconcile are batched: one list of the organization's secret names and one `secrets-by-ids`
//!   call for all keys (ESO: a list and a get per key).
//! - `dataFrom.find`: the store project's secrets whose name matches `name.regexp` (and starts with `path`),
//!   keyed by secret ID as in ESO. ESO ignores the selector and returns every secret of the organization (its
//!   #6550); `tags` are refused.
//! - PushSecret as ESO: nothing is written when a secret of that name in the project has the same value and note
//!   (`metadata.note`); only the value differs: updated; otherwise created. Delete removes the named secret (a
//!   missing one is fine); exists looks it up.
//! - Store validation: one list call, proving the token and the SDK server work (ESO checks nothing).
mod client;

use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::provider::bitwarden::BitwardenSecretsManagerProvider as Spec;

use crate::client::SecretsClient;
use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::rest::{Rest, pem_or_base64, secret_header};

pub use client::{BitwardenClient, is_uuid};

const LABEL: &str = "Bitwarden";
const BASE: &str = "spec.provider.bitwardensecretsmanager";
const TOKEN_FIELD: &str = "spec.provider.bitwardensecretsmanager.auth.secretRef.credentials";

/// The factory.
pub struct Bitwarden;

fn spec(store: &StoreInfo) -> Result<&Spec> {
    store
        .spec
        .provider
        .bitwarden_secrets_manager
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

#[async_trait]
impl Provider for Bitwarden {
    fn key(&self) -> &'static str {
        "bitwardensecretsmanager"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        let no_ns = |ns: Option<&str>| ns.is_none_or(str::is_empty);
        store.scope == StoreScope::ClusterSecretStore
            && (no_ns(s.auth.secret_ref.credentials.namespace.as_deref())
                || s.ca_provider.as_ref().is_some_and(|p| no_ns(p.namespace.as_deref())))
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        let url = spec.bitwarden_server_sdk_url.trim();
        if url.is_empty() {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.bitwardenServerSDKURL"),
                "bitwardenServerSDKURL not configured",
            ));
        }
        if !url.starts_with("https://") {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.bitwardenServerSDKURL"),
                "must be an https:// URL (the access token travels to it)",
            ));
        }
        for (name, v) in [
            ("organizationID", &spec.organization_id),
            ("projectID", &spec.project_id),
        ] {
            if v.trim().is_empty() {
                return Err(ProviderError::invalid_config(
                    format!("{BASE}.{name}"),
                    "must not be empty",
                ));
            }
        }
        let creds = ctx.credentials(store);
        let token = creds
            .secret_text(&spec.auth.secret_ref.credentials, None, TOKEN_FIELD)
            .await?;
        let inline = (!spec.ca_bundle.trim().is_empty()).then(|| pem_or_base64(spec.ca_bundle.as_bytes()));
        let ca = creds
            .ca_bundle(inline.as_deref(), spec.ca_provider.as_ref(), BASE)
            .await?;
        let rest = Rest::new(
            url,
            &ca,
            &format!("{BASE}.bitwardenServerSDKURL"),
            LABEL,
            ctx.observer.clone(),
            ctx.http_client(store),
        )?;
        let token = secret_header(&token, TOKEN_FIELD)?;
        Ok(Arc::new(BitwardenClient::new(spec, rest, token)?))
    }
}
