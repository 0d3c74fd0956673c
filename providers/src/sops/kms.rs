//! Data keys wrapped by a key service, unwrapped with the auth the matching provider already has: Vault/OpenBao
//! transit (the `vault`/`openBao` provider's client: its login, token renewal and TLS) and AWS KMS (the `aws`
//! provider's credential chain: static keys, IRSA, assumed roles).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::identity::IdentityCache;
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::keys::{Failure, Unwrapper};
use super::metadata::MasterKey;
use crate::client::{CallObserver, observed};
use crate::error::ProviderError;
use crate::vault::client::VaultClient;

/// Label of KMS calls in `externalsecret_provider_api_calls_count`.
pub const AWS_KMS_LABEL: &str = "AWS/KMS";
/// The largest plaintext a data key (or share) can be.
const MAX_KEY_BYTES: usize = 64;

/// Errors worth a retry make the read fail as unavailable; the others mean this key does not work.
pub(crate) fn failure(e: ProviderError) -> Failure {
    match e {
        ProviderError::Transport(_) | ProviderError::Throttled { .. } => Failure::Unavailable(e),
        other => Failure::Refused(other.to_string()),
    }
}

pub(crate) fn bounded(key: Vec<u8>) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let key = Zeroizing::new(key);
    if key.len() > MAX_KEY_BYTES {
        return Err(Failure::Refused("the unwrapped value is larger than a data key".into()));
    }
    Ok(key)
}

/// Vault or OpenBao transit.
pub struct Transit {
    pub field: String,
    pub client: Arc<VaultClient>,
}

#[async_trait]
impl Unwrapper for Transit {
    fn field(&self) -> &str {
        &self.field
    }

    fn handles(&self, key: &MasterKey) -> bool {
        matches!(key, MasterKey::Vault { .. })
    }

    async fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let MasterKey::Vault {
            engine_path,
            key_name,
            enc,
            ..
        } = key
        else {
            return Err(Failure::Refused("not a transit key".into()));
        };
        if engine_path.is_empty() || key_name.is_empty() {
            return Err(Failure::Refused("the entry names no engine_path or key_name".into()));
        }
        let plain = self
            .client
            .transit_decrypt(engine_path, key_name, enc)
            .await
            .map_err(failure)?;
        // SOPS hands transit the data key base64-encoded, as transit's API wants it.
        let key = STANDARD
            .decode(plain.0.trim())
            .map_err(|_| Failure::Refused("transit returned a plaintext that is not base64".into()))?;
        bounded(key)
    }
}

/// AWS KMS with one credential chain; a client per region (a key's ARN names its region).
pub struct AwsKms {
    pub field: String,
    pub config: aws_config::SdkConfig,
    pub credentials: SharedCredentialsProvider,
    /// KMS endpoint override (tests, private endpoints).
    pub endpoint: Option<String>,
    pub observer: Arc<dyn CallObserver>,
    pub throttle_wait: Option<Duration>,
    clients: Mutex<HashMap<String, aws_sdk_kms::Client>>,
}

impl AwsKms {
    pub fn new(
        field: String,
        config: aws_config::SdkConfig,
        credentials: SharedCredentialsProvider,
        endpoint: Option<String>,
        observer: Arc<dyn CallObserver>,
        throttle_wait: Option<Duration>,
    ) -> Self {
        Self {
            field,
            config,
            credentials,
            endpoint,
            observer,
            throttle_wait,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: Option<&str>) -> aws_sdk_kms::Client {
        let key = region.unwrap_or_default().to_string();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(key)
            .or_insert_with(|| {
                let mut b = aws_sdk_kms::config::Builder::from(&self.config)
                    .credentials_provider(self.credentials.clone())
                    .identity_cache(IdentityCache::no_cache());
                if let Some(r) = region {
                    b = b.region(aws_config::Region::new(r.to_string()));
                }
                if let Some(url) = &self.endpoint {
                    b = b.endpoint_url(url);
                }
                aws_sdk_kms::Client::from_conf(b.build())
            })
            .clone()
    }
}

/// The region of a KMS key ARN (`arn:aws:kms:<region>:<account>:key/<id>`).
pub fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next()? == "arn").then_some(())?;
    parts.next()?;
    (parts.next()? == "kms").then_some(())?;
    parts.next().filter(|r| !r.is_empty())
}

#[async_trait]
impl Unwrapper for AwsKms {
    fn field(&self) -> &str {
        &self.field
    }

    fn handles(&self, key: &MasterKey) -> bool {
        matches!(key, MasterKey::AwsKms { .. })
    }

    async fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let MasterKey::AwsKms { arn, enc, context } = key else {
            return Err(Failure::Refused("not a KMS key".into()));
        };
        let blob = STANDARD
            .decode(enc.trim())
            .map_err(|_| Failure::Refused("the wrapped key is not base64".into()))?;
        let client = self.client(arn_region(arn));
        let mut req = client
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob));
        if !arn.is_empty() {
            req = req.key_id(arn);
        }
        for (k, v) in context {
            req = req.encryption_context(k, v);
        }
        let out = observed(&self.observer, AWS_KMS_LABEL, "Decrypt", async {
            req.send()
                .await
                .map_err(|e| crate::aws::errors::from_sdk(e, "KMS Decrypt", arn, self.throttle_wait))
        })
        .await
        .map_err(failure)?;
        let plain = out
            .plaintext
            .ok_or_else(|| Failure::Refused("KMS returned no plaintext".into()))?;
        bounded(plain.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_arns() {
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:123456789012:key/abc"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("arn:aws-cn:kms:cn-north-1:1:alias/x"), Some("cn-north-1"));
        assert_eq!(arn_region("alias/x"), None);
        assert_eq!(arn_region("arn:aws:s3:::bucket"), None);
    }
}
