//! `spec.provider.onepassword`: 1Password through a 1Password Connect server (Connect API v1), as ESO's
//! onepassword provider.
//!
//! - Auth: the Connect token from `auth.secretRef.connectTokenSecretRef`, as a bearer token.
//! - Vaults (`vaults`: name or ID → order) are searched in order; names are resolved to IDs once per client.
//! - `remoteRef.key` is an item title (exactly one item of that title per vault) or an item ID; `property` a
//!   field label (`password` by default), `field/<label>`, `file/<name>`, or for a document item a file name
//!   (see [`item`]); `version` is refused, as in ESO. An item with files costs one more call (all files inline).
//! - `dataFrom.extract`: every field of the item (a document: every file); `dataFrom.find`: the fields of the
//!   items whose title is `path`, or that carry every key of `tags` as a tag, filtered by `name.regexp` on the
//!   field label; earlier vaults win. Unlike ESO, a `tags` find searches every vault, not only the first.
//! - PushSecret: a field (`property`, default `password`) of the item titled `remoteKey`, created as a
//!   `SERVER` item with a concealed field in the first vault (or `metadata.spec.vault`, which must be one of the
//!   store's vaults) with `metadata.spec.tags`; a push waits (at most 5 s) until Connect serves the new value, as
//!   ESO. Delete removes the field and the item once it is empty; without a property the `password` field (ESO
//!   removes nothing then). Pushes of one store are serialized (Connect would create duplicates).
//! - Store validation resolves every vault.
mod client;
pub mod item;

use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::provider::onepassword::OnePasswordProvider as Spec;

use crate::client::SecretsClient;
use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::rest::{Rest, secret_header};

pub use client::OnePasswordClient;

const LABEL: &str = "1Password";
const BASE: &str = "spec.provider.onepassword";
const TOKEN_FIELD: &str = "spec.provider.onepassword.auth.secretRef.connectTokenSecretRef";

/// The factory.
pub struct OnePassword;

fn spec(store: &StoreInfo) -> Result<&Spec> {
    store
        .spec
        .provider
        .one_password
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

#[async_trait]
impl Provider for OnePassword {
    fn key(&self) -> &'static str {
        "onepassword"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        store.scope == StoreScope::ClusterSecretStore
            && s.auth
                .secret_ref
                .connect_token
                .namespace
                .as_deref()
                .is_none_or(str::is_empty)
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        if spec.vaults.is_empty() {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.vaults"),
                "must be at least one vault",
            ));
        }
        let mut orders: Vec<i64> = spec.vaults.values().copied().collect();
        orders.sort_unstable();
        if orders.windows(2).any(|w| w[0] == w[1]) {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.vaults"),
                "vault order numbers must be unique",
            ));
        }
        let creds = ctx.credentials(store);
        let token = creds
            .secret_text(&spec.auth.secret_ref.connect_token, None, TOKEN_FIELD)
            .await?;
        let rest = Rest::new(
            &spec.connect_host,
            b"",
            &format!("{BASE}.connectHost"),
            LABEL,
            ctx.observer.clone(),
            ctx.http_client(store),
        )?;
        let bearer = secret_header(&format!("Bearer {}", token.0), TOKEN_FIELD)?;
        Ok(Arc::new(OnePasswordClient::new(&spec, rest, bearer)))
    }
}
