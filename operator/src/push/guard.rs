//! The deletion guard (ESO #5062): a remote value is deleted only when no PushSecret still pushes it.
//!
//! In ESO, switching a PushSecret with `deletionPolicy: Delete` from ClusterSecretStore A to B — two stores over
//! the same AWS account — pushes the secret through B and then deletes it through A: the value is gone. Two
//! PushSecrets pushing the same key fare no better: deleting either removes the other's value. syncret compares
//! where stores write ([`location`]: the provider and the place it addresses, e.g. a Vault server and mount, an
//! AWS region, a Kubernetes server and namespace) and keeps a stale value when a claim still covers it: the
//! PushSecret's own new pushes, or any other PushSecret's `status.syncedPushSecrets` (any namespace).
use syncret_crds::provider::ProviderSpec;
use syncret_crds::secretstore::{SecretStoreSpec, StoreKind};

fn url(u: &str) -> &str {
    u.trim_end_matches('/')
}

/// Where a store's remote keys live. Two stores with the same location address the same remote secrets. When
/// the spec is unknown (the store is gone), the store itself is the location.
pub fn location(kind: StoreKind, namespace: &str, name: &str, spec: Option<&SecretStoreSpec>) -> String {
    let own = || match kind {
        StoreKind::SecretStore => format!("store:SecretStore/{namespace}/{name}"),
        StoreKind::ClusterSecretStore => format!("store:ClusterSecretStore/{name}"),
    };
    let Some(spec) = spec else { return own() };
    match spec.provider.spec() {
        // Each fake store keeps its own values; a sops store is read-only.
        Ok(ProviderSpec::Fake(_) | ProviderSpec::Sops(_)) | Err(_) => own(),
        Ok(ProviderSpec::Kubernetes(k)) => {
            format!("kubernetes:{}|{}", url(&k.server().url), k.remote_namespace)
        }
        Ok(ProviderSpec::Vault(v)) => format!(
            "vault:{}|{}|{}",
            url(&v.server),
            v.namespace.as_deref().unwrap_or_default(),
            v.path.as_deref().unwrap_or_default().trim_matches('/')
        ),
        Ok(ProviderSpec::OpenBao(v)) => format!(
            "openbao:{}|{}|{}",
            url(&v.server),
            v.namespace.as_deref().unwrap_or_default(),
            v.path.as_deref().unwrap_or_default().trim_matches('/')
        ),
        Ok(ProviderSpec::GcpSm(g)) => format!("gcpsm:{}|{}", g.project_id, g.location),
        Ok(ProviderSpec::AzureKv(a)) => format!("azurekv:{}", url(&a.vault_url)),
        // The account is not in the spec: every store of a region and service counts as one place.
        Ok(ProviderSpec::Aws(a)) => format!("aws:{:?}|{}|{}", a.service, a.region, a.prefix),
        Ok(ProviderSpec::Webhook(w)) => format!("webhook:{}", w.url),
        // A push goes to the first vault (or the one its metadata names): the server is the place.
        Ok(ProviderSpec::OnePassword(o)) => format!("onepassword:{}", url(&o.connect_host)),
        // The API host is an operator setting, not in the spec.
        Ok(ProviderSpec::Doppler(d)) => format!("doppler:{}|{}", d.project, d.config),
        Ok(ProviderSpec::Infisical(i)) => format!(
            "infisical:{}|{}|{}|{}",
            url(&i.host_api),
            i.secrets_scope.project_slug,
            i.secrets_scope.environment_slug,
            i.secrets_scope.secrets_path.trim_end_matches('/')
        ),
        Ok(ProviderSpec::BitwardenSecretsManager(b)) => format!(
            "bitwardensecretsmanager:{}|{}|{}",
            url(&b.api_url),
            b.organization_id,
            b.project_id
        ),
        Ok(ProviderSpec::Gitlab(g)) => format!("gitlab:{}|{}", url(&g.url), g.project_id),
    }
}

/// One remote value someone pushes: `property` empty means the whole remote secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub location: String,
    pub remote_key: String,
    pub property: String,
    /// Who claims it (`namespace/name` of a PushSecret), for messages.
    pub by: String,
}

impl Claim {
    /// Whether deleting `self` would remove (part of) what `other` pushes: same place and key, and the same
    /// property or a whole secret on either side.
    pub fn overlaps(&self, other: &Claim) -> bool {
        self.location == other.location
            && self.remote_key == other.remote_key
            && (self.property.is_empty() || other.property.is_empty() || self.property == other.property)
    }
}

/// The first claim that still covers `stale`.
pub fn covered_by<'a>(stale: &Claim, claims: &'a [Claim]) -> Option<&'a Claim> {
    claims.iter().find(|c| stale.overlaps(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> SecretStoreSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn claim(loc: &str, key: &str, prop: &str) -> Claim {
        Claim {
            location: loc.into(),
            remote_key: key.into(),
            property: prop.into(),
            by: "ns/p".into(),
        }
    }

    #[test]
    fn stores_over_the_same_place_share_a_location() {
        let a = spec(
            "provider: {aws: {service: SecretsManager, region: eu-west-1, secretsManager: {forceDeleteWithoutRecovery: true}}}",
        );
        let b = spec("provider: {aws: {service: SecretsManager, region: eu-west-1, role: arn:aws:iam::1:role/x}}");
        let c = spec("provider: {aws: {service: SecretsManager, region: us-east-1}}");
        let l = |s: &SecretStoreSpec, n: &str| location(StoreKind::ClusterSecretStore, "", n, Some(s));
        assert_eq!(l(&a, "a"), l(&b, "b"), "ESO #5062: two stores over one account");
        assert_ne!(l(&a, "a"), l(&c, "c"));
        let k1 = spec(
            "provider: {kubernetes: {remoteNamespace: x, server: {url: 'https://h:6443/'}, auth: {token: {bearerToken: {name: t, key: k}}}}}",
        );
        let k2 = spec(
            "provider: {kubernetes: {remoteNamespace: x, server: {url: 'https://h:6443'}, auth: {token: {bearerToken: {name: u, key: k}}}}}",
        );
        assert_eq!(l(&k1, "1"), l(&k2, "2"));
        let f = spec("provider: {fake: {data: []}}");
        assert_ne!(
            location(StoreKind::SecretStore, "n1", "s", Some(&f)),
            location(StoreKind::SecretStore, "n2", "s", Some(&f)),
            "each fake store keeps its own values"
        );
        assert_eq!(
            location(StoreKind::SecretStore, "n1", "s", None),
            location(StoreKind::SecretStore, "n1", "s", Some(&f))
        );
    }

    #[test]
    fn properties_overlap_with_whole_secrets() {
        let claims = [claim("l", "k", "a"), claim("l", "whole", "")];
        assert!(covered_by(&claim("l", "k", "a"), &claims).is_some());
        assert!(
            covered_by(&claim("l", "k", ""), &claims).is_some(),
            "deleting k would remove property a"
        );
        assert!(covered_by(&claim("l", "k", "b"), &claims).is_none());
        assert!(covered_by(&claim("l", "whole", "x"), &claims).is_some());
        assert!(covered_by(&claim("other", "k", "a"), &claims).is_none());
    }
}
