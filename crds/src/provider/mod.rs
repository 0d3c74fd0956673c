//! `spec.provider` of a SecretStore / ClusterSecretStore: exactly one provider key.
//!
//! syncret implements the providers below. A key ESO knows but syncret does not (`akeyless`, …) or any other
//! key is not in the schema, so the apiserver rejects it under strict field validation and otherwise prunes it
//! (leaving `provider: {}`, which `minProperties: 1` rejects). Objects that got in some other way keep the key
//! in [`SecretStoreProvider::unsupported`], and [`SecretStoreProvider::kind`] reports it.
use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules::Rule;
use crate::validate::{Errors, field};

pub mod aws;
pub mod azurekv;
pub mod bitwarden;
pub mod doppler;
pub mod fake;
pub mod gcpsm;
pub mod gitlab;
pub mod infisical;
pub mod kubernetes;
pub mod onepassword;
pub mod openbao;
pub mod sops;
pub mod vault;
pub mod webhook;

pub use aws::AWSProvider;
pub use azurekv::AzureKVProvider;
pub use bitwarden::BitwardenSecretsManagerProvider;
pub use doppler::DopplerProvider;
pub use fake::FakeProvider;
pub use gcpsm::GCPSMProvider;
pub use gitlab::GitlabProvider;
pub use infisical::InfisicalProvider;
pub use kubernetes::KubernetesProvider;
pub use onepassword::OnePasswordProvider;
pub use openbao::OpenBaoProvider;
pub use sops::SopsProvider;
pub use vault::VaultProvider;
pub use webhook::WebhookProvider;

/// The provider configuration of a store. Exactly one field may be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct SecretStoreProvider {
    /// AWS Secrets Manager, Parameter Store or Certificate Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AWSProvider>,
    /// Azure Key Vault.
    #[serde(default, rename = "azurekv", skip_serializing_if = "Option::is_none")]
    pub azure_kv: Option<AzureKVProvider>,
    /// HashiCorp Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultProvider>,
    /// Google Cloud Secret Manager.
    #[serde(default, rename = "gcpsm", skip_serializing_if = "Option::is_none")]
    pub gcp_sm: Option<GCPSMProvider>,
    /// A generic templated webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookProvider>,
    /// Secrets of a Kubernetes cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesProvider>,
    /// Static key/value pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake: Option<FakeProvider>,
    /// OpenBao.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_bao: Option<OpenBaoProvider>,
    /// 1Password, through a 1Password Connect server.
    #[serde(default, rename = "onepassword", skip_serializing_if = "Option::is_none")]
    pub one_password: Option<OnePasswordProvider>,
    /// Doppler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doppler: Option<DopplerProvider>,
    /// Infisical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infisical: Option<InfisicalProvider>,
    /// Bitwarden Secrets Manager, through a Bitwarden SDK server.
    #[serde(default, rename = "bitwardensecretsmanager", skip_serializing_if = "Option::is_none")]
    pub bitwarden_secrets_manager: Option<BitwardenSecretsManagerProvider>,
    /// GitLab CI/CD variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<GitlabProvider>,
    /// SOPS-encrypted documents in ConfigMaps or Secrets of the cluster. A syncret extension, not part of ESO's
    /// API. Boxed: it embeds several providers' auth blocks, and every store value (and future holding one) would
    /// otherwise grow by their size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sops: Option<Box<SopsProvider>>,
    /// Keys this build does not implement (not part of the schema; kept so they can be reported).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

/// Which provider a store uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    Aws,
    AzureKv,
    Vault,
    GcpSm,
    Webhook,
    Kubernetes,
    Fake,
    OpenBao,
    OnePassword,
    Doppler,
    Infisical,
    BitwardenSecretsManager,
    Gitlab,
    Sops,
}

impl ProviderKind {
    /// Every provider syncret implements.
    pub const ALL: [ProviderKind; 14] = [
        ProviderKind::Aws,
        ProviderKind::AzureKv,
        ProviderKind::Vault,
        ProviderKind::GcpSm,
        ProviderKind::Webhook,
        ProviderKind::Kubernetes,
        ProviderKind::Fake,
        ProviderKind::OpenBao,
        ProviderKind::OnePassword,
        ProviderKind::Doppler,
        ProviderKind::Infisical,
        ProviderKind::BitwardenSecretsManager,
        ProviderKind::Gitlab,
        ProviderKind::Sops,
    ];

    /// The key under `spec.provider`, e.g. `azurekv`, `openBao`.
    pub fn key(self) -> &'static str {
        match self {
            ProviderKind::Aws => "aws",
            ProviderKind::AzureKv => "azurekv",
            ProviderKind::Vault => "vault",
            ProviderKind::GcpSm => "gcpsm",
            ProviderKind::Webhook => "webhook",
            ProviderKind::Kubernetes => "kubernetes",
            ProviderKind::Fake => "fake",
            ProviderKind::OpenBao => "openBao",
            ProviderKind::OnePassword => "onepassword",
            ProviderKind::Doppler => "doppler",
            ProviderKind::Infisical => "infisical",
            ProviderKind::BitwardenSecretsManager => "bitwardensecretsmanager",
            ProviderKind::Gitlab => "gitlab",
            ProviderKind::Sops => "sops",
        }
    }

    /// Whether the key is syncret's own (not part of ESO's API): a store using it only works with syncret.
    pub fn is_extension(self) -> bool {
        !ESO_PROVIDER_KEYS.contains(&self.key())
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Provider keys ESO v1 accepts under `spec.provider` (some of which syncret does not implement).
pub const ESO_PROVIDER_KEYS: &[&str] = &[
    "akeyless",
    "aws",
    "azurekv",
    "barbican",
    "beyondtrust",
    "beyondtrustworkloadcredentials",
    "bitwardensecretsmanager",
    "chef",
    "cloudrusm",
    "conjur",
    "crd",
    "delinea",
    "doppler",
    "dvls",
    "fake",
    "fortanix",
    "gcpsm",
    "github",
    "gitlab",
    "ibm",
    "infisical",
    "keepersecurity",
    "kubernetes",
    "nebiusmysterybox",
    "ngrok",
    "onboardbase",
    "onepassword",
    "onepasswordSDK",
    "openBao",
    "oracle",
    "ovh",
    "passbolt",
    "passworddepot",
    "previder",
    "pulumi",
    "scaleway",
    "secretserver",
    "senhasegura",
    "vault",
    "volcengine",
    "webhook",
    "yandexcertificatemanager",
    "yandexlockbox",
];

/// Why a store's provider cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("exactly one provider must be set")]
    NoneSet,
    #[error("exactly one provider must be set, found {}", .0.join(", "))]
    Multiple(Vec<String>),
    #[error("unsupported provider {0:?}{hint}", hint = if ESO_PROVIDER_KEYS.contains(&.0.as_str()) { " (an External Secrets Operator provider that syncret does not implement)" } else { "" })]
    Unsupported(String),
}

/// A borrowed view of the one configured provider, for matching.
#[derive(Clone, Copy, Debug)]
pub enum ProviderSpec<'a> {
    Aws(&'a AWSProvider),
    AzureKv(&'a AzureKVProvider),
    Vault(&'a VaultProvider),
    GcpSm(&'a GCPSMProvider),
    Webhook(&'a WebhookProvider),
    Kubernetes(&'a KubernetesProvider),
    Fake(&'a FakeProvider),
    OpenBao(&'a OpenBaoProvider),
    OnePassword(&'a OnePasswordProvider),
    Doppler(&'a DopplerProvider),
    Infisical(&'a InfisicalProvider),
    BitwardenSecretsManager(&'a BitwardenSecretsManagerProvider),
    Gitlab(&'a GitlabProvider),
    Sops(&'a SopsProvider),
}

impl ProviderSpec<'_> {
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderSpec::Aws(_) => ProviderKind::Aws,
            ProviderSpec::AzureKv(_) => ProviderKind::AzureKv,
            ProviderSpec::Vault(_) => ProviderKind::Vault,
            ProviderSpec::GcpSm(_) => ProviderKind::GcpSm,
            ProviderSpec::Webhook(_) => ProviderKind::Webhook,
            ProviderSpec::Kubernetes(_) => ProviderKind::Kubernetes,
            ProviderSpec::Fake(_) => ProviderKind::Fake,
            ProviderSpec::OpenBao(_) => ProviderKind::OpenBao,
            ProviderSpec::OnePassword(_) => ProviderKind::OnePassword,
            ProviderSpec::Doppler(_) => ProviderKind::Doppler,
            ProviderSpec::Infisical(_) => ProviderKind::Infisical,
            ProviderSpec::BitwardenSecretsManager(_) => ProviderKind::BitwardenSecretsManager,
            ProviderSpec::Gitlab(_) => ProviderKind::Gitlab,
            ProviderSpec::Sops(_) => ProviderKind::Sops,
        }
    }
}

impl SecretStoreProvider {
    fn set(&self) -> Vec<ProviderSpec<'_>> {
        let mut set = Vec::new();
        if let Some(p) = &self.aws {
            set.push(ProviderSpec::Aws(p));
        }
        if let Some(p) = &self.azure_kv {
            set.push(ProviderSpec::AzureKv(p));
        }
        if let Some(p) = &self.vault {
            set.push(ProviderSpec::Vault(p));
        }
        if let Some(p) = &self.gcp_sm {
            set.push(ProviderSpec::GcpSm(p));
        }
        if let Some(p) = &self.webhook {
            set.push(ProviderSpec::Webhook(p));
        }
        if let Some(p) = &self.kubernetes {
            set.push(ProviderSpec::Kubernetes(p));
        }
        if let Some(p) = &self.fake {
            set.push(ProviderSpec::Fake(p));
        }
        if let Some(p) = &self.open_bao {
            set.push(ProviderSpec::OpenBao(p));
        }
        if let Some(p) = &self.one_password {
            set.push(ProviderSpec::OnePassword(p));
        }
        if let Some(p) = &self.doppler {
            set.push(ProviderSpec::Doppler(p));
        }
        if let Some(p) = &self.infisical {
            set.push(ProviderSpec::Infisical(p));
        }
        if let Some(p) = &self.bitwarden_secrets_manager {
            set.push(ProviderSpec::BitwardenSecretsManager(p));
        }
        if let Some(p) = &self.gitlab {
            set.push(ProviderSpec::Gitlab(p));
        }
        if let Some(p) = self.sops.as_deref() {
            set.push(ProviderSpec::Sops(p));
        }
        set
    }

    /// The one configured provider. Unknown keys win over known ones, so an unsupported store is never used.
    pub fn spec(&self) -> Result<ProviderSpec<'_>, ProviderError> {
        if let Some(key) = self.unsupported.keys().next() {
            return Err(ProviderError::Unsupported(key.clone()));
        }
        let set = self.set();
        match set.as_slice() {
            [] => Err(ProviderError::NoneSet),
            [one] => Ok(*one),
            many => Err(ProviderError::Multiple(
                many.iter().map(|p| p.kind().key().to_owned()).collect(),
            )),
        }
    }

    /// Which provider the store uses.
    pub fn kind(&self) -> Result<ProviderKind, ProviderError> {
        self.spec().map(|p| p.kind())
    }

    /// Appends every problem with the provider block (at `path`, normally `spec.provider`).
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        for key in self.unsupported.keys() {
            errs.push(
                Rule::StoreProviderUnsupported,
                path,
                ProviderError::Unsupported(key.clone()).to_string(),
            );
        }
        let set = self.set();
        if set.len() != 1 && self.unsupported.is_empty() {
            let err = if set.is_empty() {
                ProviderError::NoneSet
            } else {
                ProviderError::Multiple(set.iter().map(|p| p.kind().key().to_owned()).collect())
            };
            errs.push(Rule::StoreProviderCount, path, err.to_string());
        }
        for spec in set {
            let p = field(path, spec.kind().key());
            match spec {
                ProviderSpec::Aws(x) => x.validate_into(&p, errs),
                ProviderSpec::AzureKv(x) => x.validate_into(&p, errs),
                ProviderSpec::Vault(x) => x.validate_into(&p, errs),
                ProviderSpec::GcpSm(_) => {}
                ProviderSpec::Webhook(x) => x.validate_into(&p, errs),
                ProviderSpec::Kubernetes(x) => x.validate_into(&p, errs),
                ProviderSpec::Fake(x) => x.validate_into(&p, errs),
                ProviderSpec::OpenBao(x) => x.validate_into(&p, errs),
                ProviderSpec::OnePassword(x) => x.validate_into(&p, errs),
                ProviderSpec::Doppler(x) => x.validate_into(&p, errs),
                ProviderSpec::Infisical(x) => x.validate_into(&p, errs),
                ProviderSpec::BitwardenSecretsManager(x) => x.validate_into(&p, errs),
                ProviderSpec::Gitlab(x) => x.validate_into(&p, errs),
                ProviderSpec::Sops(x) => x.validate_into(&p, errs),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(json: &str) -> SecretStoreProvider {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn kind_of_single_provider() {
        let p = provider(r#"{"fake":{"data":[]}}"#);
        assert_eq!(p.kind(), Ok(ProviderKind::Fake));
        assert!(matches!(p.spec(), Ok(ProviderSpec::Fake(_))));
        assert_eq!(
            provider(r#"{"openBao":{"server":"https://bao"}}"#).kind(),
            Ok(ProviderKind::OpenBao)
        );
    }

    #[test]
    fn kind_errors() {
        assert_eq!(provider("{}").kind(), Err(ProviderError::NoneSet));
        let both = provider(r#"{"fake":{"data":[]},"vault":{"server":"https://v"}}"#);
        assert_eq!(
            both.kind().unwrap_err().to_string(),
            "exactly one provider must be set, found vault, fake"
        );
        let eso = provider(r#"{"akeyless":{"akeylessGWApiURL":"x"}}"#);
        assert_eq!(
            eso.kind().unwrap_err().to_string(),
            r#"unsupported provider "akeyless" (an External Secrets Operator provider that syncret does not implement)"#
        );
        assert_eq!(
            provider(r#"{"x":{}}"#).kind().unwrap_err().to_string(),
            r#"unsupported provider "x""#
        );
    }

    #[test]
    fn unsupported_keys_round_trip() {
        let p = provider(r#"{"pulumi":{"auth":{}}}"#);
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"pulumi":{"auth":{}}}"#);
    }

    #[test]
    fn keys_match_schema() {
        let schema = serde_json::to_value(schemars::schema_for!(SecretStoreProvider)).unwrap();
        let props: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for kind in ProviderKind::ALL {
            assert!(props.contains(&kind.key()), "{kind}");
            // Every key is ESO's, except syncret's own extensions.
            assert_eq!(
                ESO_PROVIDER_KEYS.contains(&kind.key()),
                kind != ProviderKind::Sops,
                "{kind}"
            );
            assert_eq!(kind.is_extension(), kind == ProviderKind::Sops, "{kind}");
        }
        assert_eq!(props.len(), ProviderKind::ALL.len());
    }
}
