//! Data keys wrapped by GCP Cloud KMS keys (the document's `gcp_kms` entries, written by `sops --gcp-kms`):
//! `cryptoKeys.decrypt` through the official `google-cloud-kms-v1` client (HTTP/JSON), authenticated with the
//! `gcpsm` provider's token source (service-account key, GKE Workload Identity, Workload Identity Federation).
//!
//! SOPS encrypts the raw 32-byte data key and stores the ciphertext base64-encoded (standard alphabet). Each call
//! has a 30 s attempt timeout and at most 3 attempts within 30 s; the answer's plaintext must be a data key's
//! size and match the CRC32C Cloud KMS sends with it.
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use google_cloud_kms_v1::client::KeyManagementService;
use zeroize::Zeroizing;

use super::keys::{Failure, Unwrapper};
use super::kms::{bounded, failure};
use super::metadata::MasterKey;
use crate::client::{CallObserver, observed};

/// Label of Cloud KMS calls in `externalsecret_provider_api_calls_count`.
pub const GCP_KMS_LABEL: &str = "GCP/KMS";
/// Cloud KMS's endpoint (tests replace the host through [`crate::gcp::Endpoints::hosts`]).
pub const ENDPOINT: &str = "https://cloudkms.googleapis.com";

/// Cloud KMS keys, with one auth.
pub struct GcpKms {
    pub field: String,
    pub client: KeyManagementService,
    pub observer: Arc<dyn CallObserver>,
}

/// Whether `id` is a crypto key resource id (`projects/P/locations/L/keyRings/R/cryptoKeys/K`) whose segments
/// cannot change the request's path.
pub fn valid_resource_id(id: &str) -> bool {
    // Key ring and key ids are letters, digits, '-' and '_'; a project id may be domain-scoped (`example.com:p`).
    let segment = |s: &str, extra: &[u8]| {
        (1..=100).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b) || extra.contains(&b))
    };
    match id.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", p, "locations", l, "keyRings", r, "cryptoKeys", k] => {
            segment(p, b".:") && !p.starts_with('.') && [l, r, k].iter().all(|s| segment(s, b""))
        }
        _ => false,
    }
}

/// CRC32C (Castagnoli), as Cloud KMS checksums payloads.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

#[async_trait]
impl Unwrapper for GcpKms {
    fn field(&self) -> &str {
        &self.field
    }

    fn handles(&self, key: &MasterKey) -> bool {
        matches!(key, MasterKey::GcpKms { .. })
    }

    async fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let MasterKey::GcpKms { resource_id, enc } = key else {
            return Err(Failure::Refused("not a Cloud KMS key".into()));
        };
        if !valid_resource_id(resource_id) {
            return Err(Failure::Refused(
                "the entry's resource_id is not projects/P/locations/L/keyRings/R/cryptoKeys/K".into(),
            ));
        }
        let blob = STANDARD
            .decode(enc.trim())
            .map_err(|_| Failure::Refused("the wrapped key is not base64".into()))?;
        let what = key.describe();
        let resp = observed(&self.observer, GCP_KMS_LABEL, "Decrypt", async {
            self.client
                .decrypt()
                .set_name(resource_id.clone())
                .set_ciphertext(blob)
                .send()
                .await
                .map_err(|e| crate::gcp::map_service_err(&e, &what, "Cloud KMS"))
        })
        .await
        .map_err(failure)?;
        let plain = bounded(resp.plaintext.to_vec())?;
        if let Some(sum) = resp.plaintext_crc32c
            && sum != i64::from(crc32c(&plain))
        {
            return Err(Failure::Refused(
                "Cloud KMS's answer does not match its checksum (plaintextCrc32c)".into(),
            ));
        }
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids() {
        assert!(valid_resource_id(
            "projects/my-proj/locations/global/keyRings/sops/cryptoKeys/app"
        ));
        assert!(valid_resource_id(
            "projects/example.com:proj/locations/europe-west1/keyRings/r_1/cryptoKeys/k"
        ));
        for bad in [
            "",
            "projects/p/locations/l/keyRings/r",
            "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
            "projects/../locations/l/keyRings/r/cryptoKeys/k",
            "projects/p/locations/l/keyRings/r/cryptoKeys/k?x=1",
            "projects/p/locations/l/keyRings/r/cryptoKeys/k:encrypt",
        ] {
            assert!(!valid_resource_id(bad), "{bad}");
        }
    }

    #[test]
    fn crc32c_check_values() {
        // RFC 3720 B.4 test vectors.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    }
}
