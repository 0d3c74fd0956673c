//! The Webhook generator: the webhook provider's templated call (its HTTP client, timeouts, body cap, CA handling
//! and the `external-secrets.io/type: webhook` rule for `secrets[]`), made once per generation; the answer (or
//! what `result.jsonPath` selects) must be a JSON object, whose keys become the values (ESO's `GetSecretMap`).
use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::externalsecret::GeneratorKind;
use syncret_crds::generator::WebhookSpec;
use syncret_crds::meta::SecretKeySelector;
use syncret_crds::provider::webhook::{WebhookProvider, WebhookSecret};

use super::{Generated, GeneratorClient, GeneratorInfo};
use crate::client::{RemoteKey, SecretsClient};
use crate::error::Result;
use crate::registry::{Provider as _, ProviderContext};

/// The generator's spec as the webhook provider's.
fn provider_spec(w: &WebhookSpec) -> WebhookProvider {
    WebhookProvider {
        method: w.method.clone(),
        url: w.url.clone(),
        headers: w.headers.clone(),
        auth: w.auth.clone(),
        body: w.body.clone(),
        timeout: w.timeout.clone(),
        result: w.result.clone(),
        secrets: w
            .secrets
            .iter()
            .map(|s| WebhookSecret {
                name: s.name.clone(),
                secret_ref: SecretKeySelector {
                    name: s.secret_ref.name.clone(),
                    namespace: None,
                    key: s.secret_ref.key.clone(),
                },
            })
            .collect(),
        ca_bundle: w.ca_bundle.clone(),
        ca_provider: w.ca_provider.clone(),
    }
}

pub(super) async fn client(
    w: &WebhookSpec,
    info: &GeneratorInfo,
    ctx: &ProviderContext,
) -> Result<Arc<dyn GeneratorClient>> {
    let spec = super::store_spec(syncret_crds::provider::SecretStoreProvider {
        webhook: Some(provider_spec(w)),
        ..Default::default()
    });
    let store = info.as_store(spec);
    let inner = crate::webhook::Webhook.new_client(&store, ctx).await?;
    Ok(Arc::new(WebhookGenerator { inner }))
}

struct WebhookGenerator {
    inner: Arc<dyn SecretsClient>,
}

#[async_trait]
impl GeneratorClient for WebhookGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Webhook
    }

    async fn generate(&self) -> Result<Generated> {
        let key = RemoteKey::new("");
        let value = self.inner.get_secret(&key).await?;
        let data = value.into_map("webhook", None)?;
        Ok(Generated { data, lease: None })
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
