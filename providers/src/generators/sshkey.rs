//! ESO's SSHKey generator: an `rsa` (2048 bits by default), `ecdsa` (P-256 by default; 384, 521) or `ed25519` key
//! pair, as `privateKey` (OpenSSH format, unencrypted, carrying the comment) and `publicKey` (an
//! `authorized_keys` line ending in a newline, with the comment when one is set) — the output of Go's
//! `ssh.MarshalPrivateKey` / `ssh.MarshalAuthorizedKey` that ESO writes. Keys come from RustCrypto (`ssh-key`,
//! `rsa`, `ed25519-dalek`, `p256`/`p384`/`p521`) with a ChaCha RNG seeded from the OS RNG; the work runs on a
//! blocking thread (RSA key generation takes a while).
use async_trait::async_trait;
use ssh_key::private::{EcdsaKeypair, Ed25519Keypair, KeypairData, RsaKeypair};
use ssh_key::{EcdsaCurve, LineEnding, PrivateKey};
use syncret_crds::externalsecret::GeneratorKind;
use syncret_crds::generator::{SSHKeySpec, SSHKeyType};

use super::{Generated, GeneratorClient, seeded_rng};
use crate::error::{ProviderError, Result};
use crate::value::SecretValue;

/// What to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    Rsa(usize),
    Ecdsa(EcdsaCurve),
    Ed25519,
}

impl KeySpec {
    /// The key ESO's spec asks for; sizes outside what the kind allows are refused, naming the field.
    pub fn from_spec(s: &SSHKeySpec, base: &str) -> Result<Self> {
        let kind = SSHKeyType::parse(&s.key_type).ok_or_else(|| {
            ProviderError::invalid_config(
                format!("{base}.keyType"),
                format!("unsupported key type {:?} (rsa, ecdsa or ed25519)", s.key_type),
            )
        })?;
        let size = |bits: i64| usize::try_from(bits).unwrap_or(0);
        Ok(match kind {
            SSHKeyType::Rsa => {
                let bits = s.key_size.map(size).unwrap_or(2048);
                if !(2048..=8192).contains(&bits) {
                    return Err(ProviderError::invalid_config(
                        format!("{base}.keySize"),
                        "RSA keys are 2048 to 8192 bits",
                    ));
                }
                KeySpec::Rsa(bits)
            }
            SSHKeyType::Ecdsa => KeySpec::Ecdsa(match s.key_size {
                None | Some(256) => EcdsaCurve::NistP256,
                Some(384) => EcdsaCurve::NistP384,
                Some(521) => EcdsaCurve::NistP521,
                Some(_) => {
                    return Err(ProviderError::invalid_config(
                        format!("{base}.keySize"),
                        "ECDSA keys are 256, 384 or 521 bits",
                    ));
                }
            }),
            SSHKeyType::Ed25519 => KeySpec::Ed25519,
        })
    }
}

/// A new key pair: (OpenSSH private key, authorized_keys line).
pub fn generate(spec: KeySpec, comment: &str) -> Result<(String, String)> {
    let mut rng = seeded_rng()?;
    let failed = |e: ssh_key::Error| ProviderError::Transport(format!("generating the SSH key: {e}"));
    let data = match spec {
        KeySpec::Rsa(bits) => KeypairData::Rsa(RsaKeypair::random(&mut rng, bits).map_err(failed)?),
        KeySpec::Ecdsa(curve) => KeypairData::Ecdsa(EcdsaKeypair::random(&mut rng, curve).map_err(failed)?),
        KeySpec::Ed25519 => KeypairData::Ed25519(Ed25519Keypair::random(&mut rng)),
    };
    let key = PrivateKey::new(data, comment).map_err(failed)?;
    let private = key.to_openssh(LineEnding::LF).map_err(failed)?;
    let mut public_key = key.public_key().clone();
    public_key.set_comment("");
    let mut public = public_key.to_openssh().map_err(failed)?;
    if !comment.is_empty() {
        public.push(' ');
        public.push_str(comment);
    }
    public.push('\n');
    Ok((private.to_string(), public))
}

/// The SSHKey generator.
pub struct SshKeyGenerator {
    spec: KeySpec,
    comment: String,
}

impl SshKeyGenerator {
    pub fn new(s: &SSHKeySpec, base: &str) -> Result<Self> {
        Ok(Self {
            spec: KeySpec::from_spec(s, base)?,
            comment: s.comment.clone(),
        })
    }
}

#[async_trait]
impl GeneratorClient for SshKeyGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::SshKey
    }

    async fn generate(&self) -> Result<Generated> {
        let (spec, comment) = (self.spec, self.comment.clone());
        let (private, public) = tokio::task::spawn_blocking(move || generate(spec, &comment))
            .await
            .map_err(|e| ProviderError::Transport(format!("generating the SSH key: {e}")))??;
        Ok(Generated {
            data: [
                ("privateKey".to_string(), SecretValue::from(private)),
                ("publicKey".to_string(), SecretValue::from(public)),
            ]
            .into(),
            lease: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> SSHKeySpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ed25519_with_a_comment() {
        let k = KeySpec::from_spec(&spec(r#"{"keyType":"ed25519"}"#), "spec").unwrap();
        let (private, public) = generate(k, "me@host").unwrap();
        assert!(
            private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
            "{private}"
        );
        assert!(
            public.starts_with("ssh-ed25519 AAAA") && public.ends_with(" me@host\n"),
            "{public}"
        );
        let parsed = PrivateKey::from_openssh(&private).unwrap();
        assert_eq!(parsed.comment().as_bytes(), b"me@host");
        let (_, no_comment) = generate(k, "").unwrap();
        assert_eq!(no_comment.matches(' ').count(), 1, "{no_comment}");
        assert!(no_comment.ends_with('\n'));
    }

    #[test]
    fn ecdsa_curves() {
        for (size, alg) in [
            (256, "ecdsa-sha2-nistp256"),
            (384, "ecdsa-sha2-nistp384"),
            (521, "ecdsa-sha2-nistp521"),
        ] {
            let k = KeySpec::from_spec(&spec(&format!(r#"{{"keyType":"ecdsa","keySize":{size}}}"#)), "spec").unwrap();
            let (_, public) = generate(k, "").unwrap();
            assert!(public.starts_with(alg), "{public}");
        }
    }

    #[test]
    fn kinds_and_sizes_are_checked() {
        let field = |json: &str| match KeySpec::from_spec(&spec(json), "spec") {
            Err(ProviderError::InvalidConfig { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(r#"{"keyType":"dsa"}"#), "spec.keyType");
        assert_eq!(field(r#"{"keyType":"rsa","keySize":1024}"#), "spec.keySize");
        assert_eq!(field(r#"{"keyType":"ecdsa","keySize":512}"#), "spec.keySize");
        assert_eq!(
            KeySpec::from_spec(&spec("{}"), "spec").unwrap(),
            KeySpec::Rsa(2048),
            "ESO's default"
        );
    }
}
