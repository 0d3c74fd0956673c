//! MFA: a time-based one-time password (RFC 6238 TOTP over RFC 4226 HOTP) from a base32 seed kept in a Secret
//! of the generator's namespace, as ESO's MFA generator: `length` digits (6), `timePeriod` seconds (30),
//! `algorithm` (sha1; sha256, sha384, sha512, sha512_256), `when` to pin the time. The values are `token` and
//! `timeLeft` (seconds until the code changes). The seed is read at each generation (a rotated seed applies at the
//! next refresh) and never appears in errors. Unlike ESO (which ignores it), `algorithm` is honoured.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use ring::{digest, hmac};
use syncret_crds::externalsecret::GeneratorKind;
use syncret_crds::generator::{MFASpec, TotpAlgorithm};

use super::{Generated, GeneratorClient, GeneratorInfo};
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::registry::ProviderContext;
use crate::value::SecretValue;

/// ESO's defaults.
const DEFAULT_LENGTH: u32 = 6;
const DEFAULT_PERIOD: u64 = 30;
/// The largest seed accepted (authenticator seeds are 10 to 64 bytes).
const MAX_SEED: usize = 1024;

/// Why a seed cannot be used (never carries the seed).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("the seed is empty")]
    Empty,
    #[error("the seed is longer than {MAX_SEED} characters")]
    TooLong,
    #[error("the seed is not base32 (a character outside A-Z and 2-7 at position {0})")]
    NotBase32(usize),
}

/// Decodes a base32 seed as authenticators write it: spaces ignored, any case, `=` padding optional (ESO accepts
/// neither lower case nor padding; both are common in provider UIs). Trailing bits that do not fill a byte are
/// dropped, as Go's decoder does.
pub fn decode_seed(text: &str) -> std::result::Result<Vec<u8>, SeedError> {
    if text.len() > MAX_SEED {
        return Err(SeedError::TooLong);
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    let trimmed = text.trim_end_matches(|c: char| c == '=' || c.is_whitespace());
    for (i, c) in trimmed.chars().enumerate() {
        let v = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return Err(SeedError::NotBase32(i)),
        };
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if out.is_empty() {
        return Err(SeedError::Empty);
    }
    Ok(out)
}

/// HMAC over any ring digest (RFC 2104); used for sha512_256, which ring's `hmac` does not offer.
fn hmac_any(alg: &'static digest::Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    let block = alg.block_len();
    let mut k = if key.len() > block {
        digest::digest(alg, key).as_ref().to_vec()
    } else {
        key.to_vec()
    };
    k.resize(block, 0);
    let pad = |x: u8| k.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let mut inner = digest::Context::new(alg);
    inner.update(&pad(0x36));
    inner.update(msg);
    let inner = inner.finish();
    let mut outer = digest::Context::new(alg);
    outer.update(&pad(0x5c));
    outer.update(inner.as_ref());
    outer.finish().as_ref().to_vec()
}

fn mac(alg: TotpAlgorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    let ring_alg = match alg {
        TotpAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        TotpAlgorithm::Sha256 => hmac::HMAC_SHA256,
        TotpAlgorithm::Sha384 => hmac::HMAC_SHA384,
        TotpAlgorithm::Sha512 => hmac::HMAC_SHA512,
        TotpAlgorithm::Sha512_256 => return hmac_any(&digest::SHA512_256, key, msg),
    };
    hmac::sign(&hmac::Key::new(ring_alg, key), msg).as_ref().to_vec()
}

/// The TOTP code of `seed` at `unix` seconds (RFC 6238: HOTP of the time step, RFC 4226 dynamic truncation) with
/// `digits` digits (1 to 10), and the seconds left in its time step. `period` must not be 0.
pub fn totp(seed: &[u8], unix: u64, period: u64, digits: u32, alg: TotpAlgorithm) -> (String, u64) {
    let period = period.max(1);
    let step = unix / period;
    let left = period - unix % period;
    let sum = mac(alg, seed, &step.to_be_bytes());
    // Every digest is at least 20 bytes and the offset at most 15, so the 4 bytes are there.
    let offset = usize::from(sum.last().copied().unwrap_or(0) & 0x0f);
    let word = sum
        .get(offset..offset + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
        .unwrap_or(0);
    let digits = digits.clamp(1, 10);
    let code = u64::from(word) % 10u64.pow(digits);
    (format!("{code:0width$}", width = digits as usize), left)
}

pub(super) fn client(spec: &MFASpec, info: &GeneratorInfo, ctx: &ProviderContext) -> Result<Arc<dyn GeneratorClient>> {
    let algorithm = TotpAlgorithm::parse(&spec.algorithm).ok_or_else(|| {
        ProviderError::invalid_config(
            format!("{}.algorithm", info.base),
            format!("unsupported algorithm {:?}", spec.algorithm),
        )
    })?;
    let when = match &spec.when {
        Some(t) => Some(
            u64::try_from(t.0.as_second())
                .map_err(|_| ProviderError::invalid_config(format!("{}.when", info.base), "must not be before 1970"))?,
        ),
        None => None,
    };
    let store = info.as_store(super::store_spec(Default::default()));
    Ok(Arc::new(MfaGenerator {
        creds: ctx.credentials(&store),
        seed: spec.secret.clone(),
        field: format!("{}.secret", info.base),
        length: u32::try_from(spec.length)
            .ok()
            .filter(|l| *l > 0)
            .unwrap_or(DEFAULT_LENGTH),
        period: u64::try_from(spec.time_period)
            .ok()
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_PERIOD),
        algorithm,
        when,
    }))
}

struct MfaGenerator {
    creds: Credentials,
    seed: syncret_crds::meta::SecretKeySelector,
    field: String,
    length: u32,
    period: u64,
    algorithm: TotpAlgorithm,
    when: Option<u64>,
}

#[async_trait]
impl GeneratorClient for MfaGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Mfa
    }

    async fn generate(&self) -> Result<Generated> {
        let text = self.creds.secret_text(&self.seed, None, &self.field).await?;
        let seed = decode_seed(&text.0).map_err(|e| ProviderError::Credentials(format!("{}: {e}", self.field)))?;
        let now = match self.when {
            Some(t) => t,
            None => u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0),
        };
        let (token, left) = totp(&seed, now, self.period, self.length, self.algorithm);
        let data: BTreeMap<String, SecretValue> = [
            ("token".to_string(), SecretValue::from(token)),
            ("timeLeft".to_string(), SecretValue::from(left.to_string())),
        ]
        .into();
        Ok(Generated { data, lease: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the seeds are ASCII "1234567890" repeated to the digest's size; 8 digits.
    #[test]
    fn rfc6238_test_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let cases: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, a, b, c) in cases {
            assert_eq!(totp(&sha1, t, 30, 8, TotpAlgorithm::Sha1).0, a, "SHA1 at {t}");
            assert_eq!(totp(&sha256, t, 30, 8, TotpAlgorithm::Sha256).0, b, "SHA256 at {t}");
            assert_eq!(totp(&sha512, t, 30, 8, TotpAlgorithm::Sha512).0, c, "SHA512 at {t}");
        }
        // Six digits (the default) are the last six; time left counts down to the next step.
        assert_eq!(totp(&sha1, 59, 30, 6, TotpAlgorithm::Sha1), ("287082".into(), 1));
        assert_eq!(totp(&sha1, 60, 30, 6, TotpAlgorithm::Sha1).1, 30);
    }

    #[test]
    fn the_generic_hmac_agrees_with_ring() {
        for key in [&b"k"[..], &[7u8; 200][..]] {
            let ours = hmac_any(&digest::SHA256, key, b"message");
            let ring = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), b"message");
            assert_eq!(ours, ring.as_ref());
        }
        assert_eq!(mac(TotpAlgorithm::Sha512_256, b"k", b"m").len(), 32);
    }

    #[test]
    fn seeds_decode_like_authenticators_write_them() {
        // "12345678901234567890" in base32, as RFC 6238's SHA1 seed is usually shown.
        let b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(decode_seed(b32).unwrap(), b"12345678901234567890");
        assert_eq!(
            decode_seed("gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n").unwrap(),
            b"12345678901234567890"
        );
        assert_eq!(decode_seed("JBSWY3DPEHPK3PXP").unwrap(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(decode_seed("MZXQ====").unwrap(), b"fo");
        assert_eq!(decode_seed("").unwrap_err(), SeedError::Empty);
        assert_eq!(decode_seed("AB1C").unwrap_err(), SeedError::NotBase32(2));
        assert_eq!(decode_seed(&"A".repeat(5000)).unwrap_err(), SeedError::TooLong);
        // The error never quotes the seed.
        assert!(!SeedError::NotBase32(2).to_string().contains("AB1C"));
    }
}
