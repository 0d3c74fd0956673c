//! VaultDynamicSecret: the Vault provider's client (every auth method, TLS, namespaces, headers) calling `path`
//! with `method`; the `data` (default), `auth` or whole (`Raw`) answer becomes the values (strings as they are,
//! anything else as JSON, as ESO). An answer with a lease comes back with it: the operator renews it in place
//! (`sys/leases/renew`) and revokes it once superseded (`sys/leases/revoke`); the login token that created it is
//! never revoked while the lease lives (see [`crate::vault::keeper`]).
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use syncret_crds::externalsecret::GeneratorKind;
use syncret_crds::generator::{VaultDynamicSecretResultType, VaultDynamicSecretSpec};

use super::{Generated, GeneratorClient, GeneratorInfo};
use crate::client::SecretsClient as _;
use crate::error::{ProviderError, Result};
use crate::lease::Lease;
use crate::registry::ProviderContext;
use crate::value::SecretValue;
use crate::vault::Vault;
use crate::vault::client::VaultClient;

/// The field path of the generator's `provider` (`spec.provider`, `spec.generator.vaultDynamicSecretSpec.provider`).
fn provider_base(base: &str) -> &'static str {
    if base == "spec" {
        "spec.provider"
    } else {
        "spec.generator.vaultDynamicSecretSpec.provider"
    }
}

pub(super) async fn client(
    vault: &Vault,
    spec: &VaultDynamicSecretSpec,
    info: &GeneratorInfo,
    ctx: &ProviderContext,
) -> Result<Arc<dyn GeneratorClient>> {
    let mut store_spec = super::store_spec(syncret_crds::provider::SecretStoreProvider {
        vault: Some(spec.provider.clone()),
        ..Default::default()
    });
    store_spec.retry_settings = spec.retry_settings.clone();
    let store = info.as_store(store_spec);
    let client = vault.dynamic_client(&store, ctx, provider_base(info.base)).await?;
    Ok(Arc::new(VaultGenerator {
        client,
        spec: spec.clone(),
        base: info.base,
    }))
}

struct VaultGenerator {
    client: VaultClient,
    spec: VaultDynamicSecretSpec,
    base: &'static str,
}

/// A value as ESO's `GetByteValueFromMap` writes it: strings as they are, `null` empty, anything else as JSON.
fn value_bytes(v: &Value) -> SecretValue {
    match v {
        Value::String(s) => SecretValue::from(s.as_str()),
        Value::Null => SecretValue::from(""),
        other => SecretValue::from(other.to_string()),
    }
}

/// The values of an answer per `resultType`; `None` when that part is empty.
pub(crate) fn result_values(
    whole: &Value,
    result: VaultDynamicSecretResultType,
) -> Option<BTreeMap<String, SecretValue>> {
    let part = match result {
        VaultDynamicSecretResultType::Data => whole.get("data"),
        VaultDynamicSecretResultType::Auth => whole.get("auth"),
        VaultDynamicSecretResultType::Raw => Some(whole),
    }?;
    let map = part.as_object()?;
    Some(map.iter().map(|(k, v)| (k.clone(), value_bytes(v))).collect())
}

#[async_trait]
impl GeneratorClient for VaultGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::VaultDynamicSecret
    }

    async fn generate(&self) -> Result<Generated> {
        let (whole, lease) = self
            .client
            .dynamic(
                &self.spec.method,
                &self.spec.path,
                self.spec.parameters.as_ref(),
                &self.spec.get_parameters,
                self.base,
            )
            .await?;
        let result = self.spec.result_type.unwrap_or_default();
        match result_values(&whole, result) {
            Some(data) if !data.is_empty() => Ok(Generated { data, lease }),
            _ if self.spec.allow_empty_response => Ok(Generated {
                data: BTreeMap::new(),
                lease,
            }),
            _ => {
                // Nothing usable came back; a lease on it would only leak.
                if let Some(l) = &lease
                    && let Err(e) = self.client.revoke_lease(&l.lease_id).await
                {
                    tracing::info!(error = %e, "revoking the lease of an empty answer failed");
                }
                Err(ProviderError::InvalidValue {
                    key: self.spec.path.clone(),
                    message: "unable to get dynamic secret: empty response from Vault".into(),
                })
            }
        }
    }

    async fn renew(&self, lease: &Lease) -> Result<Lease> {
        if !lease.renewable {
            return Err(ProviderError::Unsupported(format!(
                "lease {:?} is not renewable",
                lease.lease_id
            )));
        }
        self.client.renew_lease(lease).await
    }

    async fn revoke(&self, lease: &Lease) -> Result<()> {
        self.client.revoke_lease(&lease.lease_id).await
    }

    async fn close(&self) {
        self.client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_types_pick_the_part_and_render_like_eso() {
        let whole = serde_json::json!({
            "lease_id": "pki/issue/r/x", "lease_duration": 60,
            "data": {"certificate": "PEM", "ca_chain": ["a", "b"], "serial": null},
            "auth": null
        });
        let d = result_values(&whole, VaultDynamicSecretResultType::Data).unwrap();
        assert_eq!(d["certificate"].as_bytes(), b"PEM");
        assert_eq!(d["ca_chain"].as_bytes(), br#"["a","b"]"#);
        assert_eq!(d["serial"].as_bytes(), b"");
        assert!(result_values(&whole, VaultDynamicSecretResultType::Auth).is_none());
        let raw = result_values(&whole, VaultDynamicSecretResultType::Raw).unwrap();
        assert_eq!(raw["lease_duration"].as_bytes(), b"60");
    }
}
