//! RS256 JWTs for the service-account key flow (RFC 7523 JWT bearer grant), signed with `ring`.
use base64::Engine as _;
use ring::signature::RsaKeyPair;

use crate::error::{ProviderError, Result};
use crate::value::Unloggable;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An RSA private key from a service-account JSON key (`private_key`, PEM, PKCS#8 or PKCS#1).
pub struct RsaKey(RsaKeyPair);

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaKey(<redacted>)")
    }
}

impl RsaKey {
    /// Parses a PEM private key. `field` names the store field for errors; the key never appears in them.
    pub fn from_pem(pem: &str, field: &str) -> Result<Self> {
        let invalid = |m: &str| ProviderError::invalid_config(field, m.to_string());
        let (label, der) = pem_body(pem).ok_or_else(|| invalid("private_key is not a PEM block"))?;
        let der = Unloggable(der);
        let pair = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            _ => return Err(invalid("private_key must be a PEM `PRIVATE KEY` or `RSA PRIVATE KEY`")),
        }
        .map_err(|e| invalid(&format!("private_key is not a usable RSA key: {e}")))?;
        Ok(Self(pair))
    }

    /// `header.claims.signature` with `alg: RS256` (and `kid` when given).
    pub fn sign(&self, kid: Option<&str>, claims: &serde_json::Value) -> Result<String> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = kid.filter(|k| !k.is_empty()) {
            header["kid"] = kid.into();
        }
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.0.public().modulus_len()];
        self.0
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| ProviderError::Auth("signing the service-account JWT failed".into()))?;
        Ok(format!("{signing_input}.{}", B64URL.encode(sig)))
    }
}

/// The label and decoded body of the first PEM block: `-----BEGIN <label>-----`, the base64 body, then
/// `-----END <label>-----` after the body. Every cut is taken with `split_once` on what is left, so markers that
/// overlap (`-----BEGIN X-----END X-----`) or are missing give `None`, never a slice out of range.
fn pem_body(pem: &str) -> Option<(String, Vec<u8>)> {
    let (_, after_begin) = pem.split_once("-----BEGIN ")?;
    let (label, body_and_rest) = after_begin.split_once("-----")?;
    if label.is_empty() || label.contains(['\n', '\r']) {
        return None;
    }
    let (body, _) = body_and_rest.split_once(&format!("-----END {label}-----"))?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if b64.is_empty() {
        return None;
    }
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((label.to_string(), der))
}

/// The claims of a JWT, unverified (for tests and diagnostics).
pub fn claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing() {
        let pem = "junk\n-----BEGIN PRIVATE KEY-----\nAAEC\nAw==\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_body(pem), Some(("PRIVATE KEY".into(), vec![0, 1, 2, 3])));
        assert_eq!(pem_body("no pem"), None);
        // Overlapping and truncated markers (a hostile key's `private_key`): no block, no panic.
        for bad in [
            "-----BEGIN X-----END X-----",
            "-----BEGIN X-----",
            "-----BEGIN -----END -----",
            "-----BEGIN ",
            "-----BEGIN X-----\n-----END Y-----",
            "-----BEGIN X----END X-----",
            "-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----",
        ] {
            assert_eq!(pem_body(bad), None, "{bad:?}");
            let e = RsaKey::from_pem(bad, "spec.x").unwrap_err().to_string();
            assert_eq!(e, "spec.x: private_key is not a PEM block", "{bad:?}");
        }
        let err = RsaKey::from_pem(pem, "spec.x").unwrap_err().to_string();
        assert!(err.starts_with("spec.x: private_key is not a usable RSA key"), "{err}");
        let err = RsaKey::from_pem(
            "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be a PEM"), "{err}");
    }

    #[test]
    fn claims_decode() {
        let jwt = format!("x.{}.y", B64URL.encode(r#"{"aud":"a"}"#));
        assert_eq!(claims(&jwt).unwrap()["aud"], "a");
        assert!(claims("nope").is_none());
    }
}
