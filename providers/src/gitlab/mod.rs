//! `spec.provider.gitlab`: GitLab CI/CD variables (REST API v4), as ESO's gitlab provider.
//!
//! - Auth: `auth.SecretRef.accessToken` (a personal, project or group access token) sent as `PRIVATE-TOKEN`.
//! - `remoteRef.key` is a variable key (`-` becomes `_`, as in ESO); `property` a gjson path into its value;
//!   `version` is ignored. The project's variable wins (`environment` scope first, then `*`), then the groups
//!   from the last listed (or the nearest ancestor with `inheritFromGroups`) to the first. An empty value is an
//!   error, as in ESO.
//! - `dataFrom.find`: `name.regexp` is required, `path` is not supported, `tags` may only hold
//!   `environment_scope`; group variables in order, then project variables (a scoped variable beats a `*` one).
//! - Read-only (ESO implements no PushSecret for GitLab). Store validation lists the project's and each group's
//!   variables (one page), proving the token may read them.
//! - Better than ESO: the project's groups (`inheritFromGroups`) are looked up once per client, not on every
//!   read that falls through to the groups; every list is paginated (ESO reads one page of 20 groups).
mod client;

use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::provider::gitlab::GitlabProvider as Spec;

use crate::client::SecretsClient;
use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::rest::{Rest, ca_bundle, secret_header};

pub use client::GitlabClient;

const LABEL: &str = "GitLab";
const BASE: &str = "spec.provider.gitlab";
const TOKEN_FIELD: &str = "spec.provider.gitlab.auth.SecretRef.accessToken";
/// GitLab.com, when `url` is empty.
const DEFAULT_URL: &str = "https://gitlab.com/";

/// The factory.
pub struct Gitlab;

fn spec(store: &StoreInfo) -> Result<&Spec> {
    store
        .spec
        .provider
        .gitlab
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config(BASE, "must be set"))
}

/// The API root: the instance URL with `api/v4/` appended unless it is already there (as the Go client does).
fn api_base(url: &str) -> String {
    let url = if url.trim().is_empty() { DEFAULT_URL } else { url.trim() };
    let mut base = url.to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    if !base.ends_with("api/v4/") {
        base.push_str("api/v4/");
    }
    base
}

#[async_trait]
impl Provider for Gitlab {
    fn key(&self) -> &'static str {
        "gitlab"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        let creds_ns = |ns: Option<&str>| ns.is_none_or(str::is_empty);
        store.scope == StoreScope::ClusterSecretStore
            && (creds_ns(s.auth.secret_ref.access_token.namespace.as_deref())
                || s.ca_provider.as_ref().is_some_and(|p| creds_ns(p.namespace.as_deref())))
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        if spec.project_id.trim().is_empty() && spec.group_ids.is_empty() {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.projectID"),
                "projectID and groupIDs must not both be empty",
            ));
        }
        if spec.inherit_from_groups && !spec.group_ids.is_empty() {
            return Err(ProviderError::invalid_config(
                format!("{BASE}.inheritFromGroups"),
                "defining groupIDs and inheritFromGroups = true is not allowed",
            ));
        }
        let creds = ctx.credentials(store);
        let token = creds
            .secret_text(&spec.auth.secret_ref.access_token, None, TOKEN_FIELD)
            .await?;
        let ca = ca_bundle(&creds, spec.ca_bundle.as_ref(), spec.ca_provider.as_ref(), BASE).await?;
        let rest = Rest::new(
            &api_base(&spec.url),
            &ca,
            &format!("{BASE}.url"),
            LABEL,
            ctx.observer.clone(),
            ctx.http_client(store),
        )?;
        let token = secret_header(&token, TOKEN_FIELD)?;
        Ok(Arc::new(GitlabClient::new(spec, rest, token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_root_is_appended_once() {
        assert_eq!(api_base(""), "https://gitlab.com/api/v4/");
        assert_eq!(api_base("https://git.example.com"), "https://git.example.com/api/v4/");
        assert_eq!(
            api_base("https://git.example.com/gitlab/"),
            "https://git.example.com/gitlab/api/v4/"
        );
        assert_eq!(
            api_base("https://git.example.com/api/v4/"),
            "https://git.example.com/api/v4/"
        );
    }
}
