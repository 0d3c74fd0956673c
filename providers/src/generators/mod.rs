//! Generators (`generators.external-secrets.io`): values made on demand instead of read from a store, as ESO's
//! `generators/v1`. Each kind has the shape of a provider: spec → auth → generate. The kinds that talk to a
//! service reuse that service's provider: ECRAuthorizationToken and STSSessionToken the AWS credential chain
//! ([`crate::aws`]), VaultDynamicSecret the Vault client and its logins ([`crate::vault`]), Webhook the webhook
//! provider's templated, bounded HTTP call ([`crate::webhook`]) — so a generator gets the same auth methods,
//! credential rules and limits as a store. A generator's credential references resolve like a store's: in the
//! generator's namespace, or for a `ClusterGenerator` in the namespace given (a reference without one resolves in
//! the namespace of the object using it, ESO's "virtual" namespaced generator).
//!
//! - [`password`]: ESO's Password (sethvargo/go-password's algorithm) from the OS RNG.
//! - [`sshkey`]: rsa, ecdsa and ed25519 keys in OpenSSH format (RustCrypto's `ssh-key`).
//! - UUID (version 4 from the OS RNG) and Fake (static data) here.
//! - [`mfa`]: RFC 6238 TOTP codes from a seed in a Secret.
//! - [`github`]: GitHub App installation tokens (an RS256 JWT exchanged through [`crate::rest`]); the token's
//!   expiry is a non-renewable [`Lease`], so the operator makes a new one before it ends.
//! - Leased values (VaultDynamicSecret) come back with a [`Lease`] the operator renews ([`GeneratorClient::renew`])
//!   and revokes once superseded ([`GeneratorClient::revoke`]).
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use syncret_crds::externalsecret::GeneratorKind;
use syncret_crds::generator::Generator;
use syncret_crds::secretstore::SecretStoreSpec;

use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::lease::Lease;
use crate::registry::{ProviderContext, StoreInfo};
use crate::value::SecretValue;

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "rest")]
pub mod github;
pub mod mfa;
pub mod password;
pub mod sshkey;
#[cfg(feature = "vault")]
mod vault;
#[cfg(feature = "webhook")]
mod webhook;

/// One generator as referenced: a namespaced generator object, or a `ClusterGenerator` used from a namespace.
#[derive(Clone, Debug)]
pub struct GeneratorInfo {
    /// `SecretStore` for a namespaced generator (tenant input), `ClusterSecretStore` for a `ClusterGenerator`
    /// (written by cluster admins): the credential and tenant-boundary rules of that store scope apply.
    pub scope: StoreScope,
    /// The kind of the object: a generator kind, or `ClusterGenerator`.
    pub object_kind: GeneratorKind,
    pub name: String,
    /// The generator's namespace (`None` for a ClusterGenerator).
    pub namespace: Option<String>,
    pub uid: String,
    pub generation: i64,
    /// What it generates.
    pub generator: Arc<Generator>,
    /// Where the generator's spec sits in its object, for errors (`spec`, `spec.generator.passwordSpec`).
    pub base: &'static str,
}

impl GeneratorInfo {
    /// A store carrying `spec`, for the providers a generator reuses (same scope, name and identity).
    pub(crate) fn as_store(&self, spec: SecretStoreSpec) -> StoreInfo {
        StoreInfo {
            scope: self.scope,
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            uid: self.uid.clone(),
            generation: self.generation,
            spec: Arc::new(spec),
        }
    }

    /// The generated kind (what a ClusterGenerator wraps).
    pub fn kind(&self) -> GeneratorKind {
        self.generator.kind()
    }
}

/// A store spec with only `provider` set.
pub(crate) fn store_spec(provider: syncret_crds::provider::SecretStoreProvider) -> SecretStoreSpec {
    SecretStoreSpec {
        controller: String::new(),
        provider,
        retry_settings: None,
        refresh_interval: None,
        conditions: Vec::new(),
    }
}

/// What one generation produced.
#[derive(Debug, Default)]
pub struct Generated {
    pub data: BTreeMap<String, SecretValue>,
    /// The provider lease on the values, when they have one.
    pub lease: Option<Lease>,
}

/// A generator ready to run; kinds that log in are built once and cached like store clients.
#[async_trait]
pub trait GeneratorClient: Send + Sync {
    /// The generated kind (metric label).
    fn kind(&self) -> GeneratorKind;

    /// Makes new values.
    async fn generate(&self) -> Result<Generated>;

    /// Renews the lease of values made earlier (in place: the values stay the same).
    async fn renew(&self, _lease: &Lease) -> Result<Lease> {
        Err(ProviderError::Unsupported(format!(
            "{} values have no renewable lease",
            self.kind().as_str()
        )))
    }

    /// Ends what earlier values hold at the provider (revokes their lease). Idempotent.
    async fn revoke(&self, _lease: &Lease) -> Result<()> {
        Ok(())
    }

    /// Releases what the client holds (a login token; never one that values still depend on).
    async fn close(&self) {}
}

/// The factory of generator clients. Holds the providers the generators reuse, so tests can point them at
/// local servers.
#[derive(Default)]
pub struct Generators {
    #[cfg(feature = "aws")]
    pub aws: crate::aws::Aws,
    #[cfg(feature = "vault")]
    pub vault: crate::vault::Vault,
}

/// The spec is wrong: the first problem names the field, all are in the message.
fn invalid(problems: &[syncret_crds::validate::FieldError]) -> ProviderError {
    let field = problems.first().map(|p| p.path.clone()).unwrap_or_default();
    let message = problems
        .iter()
        .map(|p| p.message.clone())
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() == 1 {
        ProviderError::InvalidConfig { field, message }
    } else {
        ProviderError::InvalidConfig {
            field: "spec".into(),
            message: syncret_crds::validate::join(problems),
        }
    }
}

impl Generators {
    /// A client for `info` (validated first: a spec that cannot work is an `InvalidConfig` naming the field).
    pub async fn client(&self, info: &GeneratorInfo, ctx: &ProviderContext) -> Result<Arc<dyn GeneratorClient>> {
        let problems = info.generator.validate(info.base);
        if !problems.is_empty() {
            return Err(invalid(&problems));
        }
        match info.generator.as_ref() {
            Generator::Password(p) => Ok(Arc::new(password::PasswordGenerator::new(p, info.base)?)),
            Generator::SshKey(s) => Ok(Arc::new(sshkey::SshKeyGenerator::new(s, info.base)?)),
            Generator::Uuid => Ok(Arc::new(UuidGenerator)),
            Generator::Fake(f) => Ok(Arc::new(FakeGenerator(f.data.clone()))),
            #[cfg(feature = "aws")]
            Generator::Sts(s) => aws::sts(&self.aws, s, info, ctx).await,
            #[cfg(feature = "ecr")]
            Generator::Ecr(e) => aws::ecr(&self.aws, e, info, ctx).await,
            #[cfg(feature = "vault")]
            Generator::Vault(v) => vault::client(&self.vault, v, info, ctx).await,
            #[cfg(feature = "webhook")]
            Generator::Webhook(w) => webhook::client(w, info, ctx).await,
            Generator::Mfa(m) => mfa::client(m, info, ctx),
            #[cfg(feature = "rest")]
            Generator::Github(g) => github::client(g, info, ctx),
            #[allow(unreachable_patterns)]
            other => Err(ProviderError::Unsupported(format!(
                "{} generators are not compiled into this syncret build",
                other.kind().as_str()
            ))),
        }
    }
}

/// Fills `buf` from the operating system's RNG.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| ProviderError::Transport(format!("the operating system's RNG failed: {e}")))
}

/// A ChaCha RNG seeded from the OS RNG (key generation needs an infallible RNG; the seed is the fallible part).
pub(crate) fn seeded_rng() -> Result<rand_keys::rngs::StdRng> {
    use rand_keys::SeedableRng as _;
    let mut seed = [0u8; 32];
    os_random(&mut seed)?;
    Ok(rand_keys::rngs::StdRng::from_seed(seed))
}

/// A random version 4 UUID, as ESO's (`github.com/google/uuid.New()`).
pub fn uuid_v4() -> Result<String> {
    let mut b = [0u8; 16];
    os_random(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

struct UuidGenerator;

#[async_trait]
impl GeneratorClient for UuidGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Uuid
    }

    async fn generate(&self) -> Result<Generated> {
        Ok(Generated {
            data: [("uuid".to_string(), SecretValue::from(uuid_v4()?))].into(),
            lease: None,
        })
    }
}

struct FakeGenerator(BTreeMap<String, String>);

#[async_trait]
impl GeneratorClient for FakeGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Fake
    }

    async fn generate(&self) -> Result<Generated> {
        Ok(Generated {
            data: self
                .0
                .iter()
                .map(|(k, v)| (k.clone(), SecretValue::from(v.as_str())))
                .collect(),
            lease: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let a = uuid_v4().unwrap();
        let b = uuid_v4().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn invalid_specs_name_the_field() {
        let e = invalid(&[syncret_crds::validate::FieldError::new(
            "spec.length",
            "must be greater than 0",
        )]);
        assert_eq!(e.to_string(), "spec.length: must be greater than 0");
    }
}
