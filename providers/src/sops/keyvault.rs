//! Data keys wrapped by Azure Key Vault keys (the document's `azure_kv` entries, written by `sops --azure-kv`):
//! decrypted by the vault the store names, with the `azurekv` provider's auth, transport (egress rules, capped
//! answers, 30 s per request) and token cache.
//!
//! SOPS encrypts the 32-byte data key with Key Vault's `encrypt` operation and RSA-OAEP-256, and stores the result
//! base64url-encoded without padding; syncret calls `decrypt` with the same algorithm (not `unwrapKey`: SOPS's
//! documentation grants `encrypt`/`decrypt` on the key, and a key limited to those refuses `unwrapKey`).
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::http::{RequestContent, Url};
use azure_security_keyvault_keys::KeyClient;
use azure_security_keyvault_keys::models::{EncryptionAlgorithm, KeyOperationParameters};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::keys::{Failure, Unwrapper};
use super::kms::{bounded, failure};
use super::metadata::MasterKey;
use crate::client::{CallObserver, observed};
use crate::error::ProviderError;

/// Label of Key Vault calls in `externalsecret_provider_api_calls_count` (the azurekv provider's).
pub const AZURE_LABEL: &str = crate::azure::LABEL;

/// The Key Vault keys of one vault, with one auth.
pub struct AzureKv {
    pub field: String,
    pub vault: Url,
    pub client: KeyClient,
    pub observer: Arc<dyn CallObserver>,
}

/// Whether a document's `vault_url` is the store's vault (same scheme, host and port; case and a trailing slash
/// do not matter).
pub fn same_vault(store_vault: &Url, document_vault: &str) -> bool {
    let Ok(doc) = Url::parse(document_vault.trim()) else {
        return false;
    };
    doc.scheme() == store_vault.scheme()
        && doc.host_str().is_some()
        && doc.host_str() == store_vault.host_str()
        && doc.port_or_known_default() == store_vault.port_or_known_default()
        && doc.path().trim_end_matches('/').is_empty()
}

/// A Key Vault object name (1-127 letters, digits and '-') or version (0-64 letters and digits): anything else
/// could walk the request to another path of the vault with the store's token.
pub fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub fn valid_version(version: &str) -> bool {
    version.len() <= 64 && version.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Maps a Key Vault error for `key` (its describe()): as the azurekv provider does, except that 400 (a ciphertext
/// the key cannot decrypt, a wrong algorithm) means this key does not work rather than a transient failure.
fn map_err(e: azure_core::Error, key: &str) -> ProviderError {
    if let azure_core::error::ErrorKind::HttpResponse { status, .. } = e.kind()
        && u16::from(*status) == 400
    {
        let first = e
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        return ProviderError::InvalidValue {
            key: key.to_string(),
            message: first,
        };
    }
    crate::azure::map_err(e, key)
}

#[async_trait]
impl Unwrapper for AzureKv {
    fn field(&self) -> &str {
        &self.field
    }

    fn handles(&self, key: &MasterKey) -> bool {
        matches!(key, MasterKey::AzureKv { .. })
    }

    async fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let MasterKey::AzureKv {
            vault_url,
            name,
            version,
            enc,
        } = key
        else {
            return Err(Failure::Refused("not a Key Vault key".into()));
        };
        if !same_vault(&self.vault, vault_url) {
            return Err(Failure::Refused(format!(
                "the key is not in the store's vault ({}); keys of other vaults are not tried",
                self.vault.as_str().trim_end_matches('/')
            )));
        }
        if !valid_name(name) || !valid_version(version) {
            return Err(Failure::Refused(
                "the entry's key name or version is not a Key Vault name".into(),
            ));
        }
        let blob = URL_SAFE_NO_PAD
            .decode(enc.trim().trim_end_matches('='))
            .map_err(|_| Failure::Refused("the wrapped key is not base64url".into()))?;
        let params = KeyOperationParameters {
            algorithm: Some(EncryptionAlgorithm::RsaOaep256),
            value: Some(blob),
            ..Default::default()
        };
        let what = key.describe();
        let result = observed(&self.observer, AZURE_LABEL, "Decrypt", async {
            let body = RequestContent::try_from(params).map_err(|e| map_err(e, &what))?;
            let resp = self
                .client
                .decrypt(name, version, body, None)
                .await
                .map_err(|e| map_err(e, &what))?;
            resp.into_model().map_err(|e| map_err(e, &what))
        })
        .await
        .map_err(failure)?;
        let plain = result
            .result
            .ok_or_else(|| Failure::Refused("Key Vault returned no result".into()))?;
        bounded(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vaults_and_names() {
        let store = Url::parse("https://team.vault.azure.net").unwrap();
        assert!(same_vault(&store, "https://team.vault.azure.net/"));
        assert!(same_vault(&store, "https://TEAM.vault.azure.net:443"));
        assert!(!same_vault(&store, "https://other.vault.azure.net"));
        assert!(!same_vault(&store, "http://team.vault.azure.net"));
        assert!(!same_vault(&store, "https://team.vault.azure.net/keys/x"));
        assert!(!same_vault(&store, "not a url"));
        assert!(valid_name("sops-key-1"));
        for bad in ["", "../secrets/x", "a/b", "a?b", &"a".repeat(128)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_version("") && valid_version("0123abcd"));
        assert!(!valid_version("1/decrypt") && !valid_version("a-b"));
    }
}
