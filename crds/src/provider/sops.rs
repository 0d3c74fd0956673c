//! `spec.provider.sops`: SOPS-encrypted documents kept in ConfigMaps or Secrets of the cluster.
//!
//! **A syncret extension, not part of ESO's API**: ESO has no SOPS provider, so a store with this key only works
//! with syncret. The documents are what the `sops` CLI (or `syncret seal`) writes — YAML, JSON, dotenv or INI —
//! committed to git and applied by GitOps as a ConfigMap (or Secret) key; `remoteRef.key` is `<name>/<key>`.
//! The store says which keys may decrypt them: age identities in Secrets, and Vault/OpenBao transit, AWS KMS,
//! Azure Key Vault or GCP Cloud KMS reached with the same auth blocks those providers take.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{DNS1123_LABEL, SecretKeySelector};
use crate::provider::aws::AWSAuth;
use crate::provider::azurekv::AzureKVProvider;
use crate::provider::gcpsm::GCPSMAuth;
use crate::provider::openbao::OpenBaoProvider;
use crate::provider::vault::VaultProvider;
use crate::rules::Rule;
use crate::schema::is_default;
use crate::validate::{Errors, field, index};

/// Which kind of object holds the encrypted documents.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum SopsSourceKind {
    /// A ConfigMap key (`data`, or `binaryData`).
    #[default]
    ConfigMap,
    /// A Secret key.
    Secret,
}

/// Configures a store to read SOPS-encrypted documents from the cluster (a syncret extension).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SopsProvider {
    /// The kind of object `remoteRef.key` (`<name>/<key>`) names: `ConfigMap` (default) or `Secret`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub source_kind: SopsSourceKind,
    /// ClusterSecretStore only: the namespace the documents are read from. Unset, each ExternalSecret reads its
    /// own namespace. A SecretStore always reads its own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub namespace: Option<String>,
    /// The keys syncret may decrypt documents with. A document is decrypted when its data key can be recovered
    /// with these (in every key group needed to meet its Shamir threshold).
    pub keys: SopsKeys,
}

/// Decryption keys of a SOPS store. At least one must be set. The provider blocks are boxed: inline, serde's
/// visitor for this struct holds all of them on the stack at once (it overflowed a 2 MiB worker stack in debug
/// builds while a store watch decoded a sops store).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SopsKeys {
    /// age identities: each Secret key holds one or more `AGE-SECRET-KEY-1…` lines (an age `keys.txt`; comments
    /// and blank lines are ignored). Plugin and SSH identities are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub age: Vec<SopsAgeKey>,
    /// HashiCorp Vault transit: data keys wrapped with `sops --hc-vault-transit` are unwrapped by this server with
    /// this auth (the `vault` provider's fields; `path` and `version` are not used). The transit mount and key
    /// come from the document; the token's policies decide which it may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<Box<VaultProvider>>,
    /// OpenBao transit, as `vault` with the `openBao` provider's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_bao: Option<Box<OpenBaoProvider>>,
    /// AWS KMS: data keys wrapped with `sops --kms` are unwrapped with these credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<Box<SopsAWSKMS>>,
    /// Azure Key Vault: data keys wrapped with `sops --azure-kv` (the document's `azure_kv` entries) are decrypted
    /// (RSA-OAEP-256) by this vault with this auth: the `azurekv` provider's fields. `vaultUrl` must be the vault
    /// the document's keys are in: keys of other vaults are not tried, so the token never leaves this vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<Box<AzureKVProvider>>,
    /// GCP Cloud KMS: data keys wrapped with `sops --gcp-kms` (the document's `gcp_kms` entries) are decrypted
    /// (`cryptoKeys.decrypt`) with this auth: the `gcpsm` provider's `auth` block. The key's resource id comes
    /// from the document; the identity's IAM roles decide which keys it may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<Box<SopsGCPKMS>>,
}

/// GCP Cloud KMS access for a SOPS store: the `gcpsm` provider's auth.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SopsGCPKMS {
    /// How to authenticate against Google Cloud (a service-account key, GKE Workload Identity or Workload
    /// Identity Federation). Without it a ClusterSecretStore uses the operator pod's Application Default
    /// Credentials; a SecretStore must name its credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<GCPSMAuth>,
}

/// An age identity file in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SopsAgeKey {
    /// The Secret key holding the identities.
    pub secret_ref: SecretKeySelector,
}

/// AWS KMS access for a SOPS store: the `aws` provider's auth fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SopsAWSKMS {
    /// Region of STS and of keys given without an ARN; a key's ARN names its own region.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    /// How to authenticate against AWS. Without it a ClusterSecretStore uses the operator's default credential
    /// chain; a SecretStore must name its credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AWSAuth>,
    /// ARN of a role assumed before calling KMS. The `role` a document's key entry names is not used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// Role ARNs assumed in order before `role`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_roles: Vec<String>,
    /// External ID set on the assumed role.
    #[serde(default, rename = "externalID", skip_serializing_if = "String::is_empty")]
    pub external_id: String,
}

impl SopsKeys {
    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty()
            && self.vault.is_none()
            && self.open_bao.is_none()
            && self.aws.is_none()
            && self.azure.is_none()
            && self.gcp.is_none()
    }
}

impl SopsProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        let keys = field(path, "keys");
        if self.keys.is_empty() {
            errs.push(
                Rule::SopsKeys,
                &keys,
                "at least one of age, vault, openBao, aws, azure or gcp must be set",
            );
        }
        for (i, k) in self.keys.age.iter().enumerate() {
            let p = field(&index(&field(&keys, "age"), i), "secretRef");
            if k.secret_ref.name.is_empty() {
                errs.push(Rule::SopsAgeSecretName, field(&p, "name"), "must not be empty");
            }
            if k.secret_ref.key.is_empty() {
                errs.push(Rule::SopsAgeSecretKey, field(&p, "key"), "must not be empty");
            }
        }
        if let Some(v) = &self.keys.vault {
            v.validate_into(&field(&keys, "vault"), errs);
        }
        if let Some(v) = &self.keys.open_bao {
            v.validate_into(&field(&keys, "openBao"), errs);
        }
        if let Some(a) = &self.keys.azure {
            a.validate_into(&field(&keys, "azure"), errs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let p: SopsProvider = serde_json::from_str(
            r#"{"keys":{"age":[{"secretRef":{"name":"sops-age","key":"keys.txt"}}],
                "openBao":{"server":"http://bao:8200","auth":{"tokenSecretRef":{"name":"t","key":"token"}}}}}"#,
        )
        .unwrap();
        assert_eq!(p.source_kind, SopsSourceKind::ConfigMap);
        let mut errs = Errors::default();
        p.validate_into("spec.provider.sops", &mut errs);
        assert!(errs.0.is_empty(), "{:?}", errs.0);
        assert_eq!(
            serde_json::to_value(&p).unwrap()["keys"]["age"][0]["secretRef"]["key"],
            "keys.txt"
        );

        let p: SopsProvider =
            serde_json::from_str(r#"{"sourceKind":"Secret","keys":{"age":[{"secretRef":{"name":""}}]}}"#).unwrap();
        assert_eq!(p.source_kind, SopsSourceKind::Secret);
        let mut errs = Errors::default();
        p.validate_into("spec.provider.sops", &mut errs);
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.provider.sops.keys.age[0].secretRef.name",
                "spec.provider.sops.keys.age[0].secretRef.key"
            ]
        );

        let p: SopsProvider = serde_json::from_str(r#"{"keys":{}}"#).unwrap();
        let mut errs = Errors::default();
        p.validate_into("spec.provider.sops", &mut errs);
        assert_eq!(errs.0[0].path, "spec.provider.sops.keys");
    }
}
