//! ESO's `jwkPublicKeyPem` / `jwkPrivateKeyPem`: a JSON Web Key to PKIX `PUBLIC KEY` or PKCS#8 `PRIVATE KEY` PEM,
//! as `jwx` + `x509.MarshalPKIXPublicKey` / `x509.MarshalPKCS8PrivateKey` produce them. RSA, EC (P-256/384/521) and
//! Ed25519 keys are supported.
use base64::Engine;

use super::asn1;
use super::pem::pem_value;
use super::pkcs12::{PrivKey, marshal_pkcs8};
use super::{Ctx, FnError, FnResult, s};
use crate::value::Value;

enum Jwk {
    RsaPublic {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Private(PrivKey),
    EcPublic {
        curve: &'static [u8],
        x: Vec<u8>,
        y: Vec<u8>,
    },
    OkpPublic(Vec<u8>),
    Symmetric,
}

fn b64url(v: &serde_json::Value, field: &str) -> Result<Vec<u8>, String> {
    let t = v
        .get(field)
        .and_then(|x| x.as_str())
        .ok_or_else(|| format!("failed to parse key: required field {field} is missing"))?;
    let t = t.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| format!("failed to parse key: failed to decode field {field}"))
}

fn parse(input: &[u8]) -> Result<Jwk, String> {
    let v: serde_json::Value =
        serde_json::from_slice(input).map_err(|_| "failed to parse key: invalid JSON".to_string())?;
    let kty = v
        .get("kty")
        .and_then(|k| k.as_str())
        .ok_or("failed to parse key: invalid key type from JSON ()")?;
    let has_d = v.get("d").is_some();
    match kty {
        "RSA" => {
            let (n, e) = (b64url(&v, "n")?, b64url(&v, "e")?);
            if !has_d {
                return Ok(Jwk::RsaPublic { n, e });
            }
            let mut ints = vec![asn1::small_int(0), asn1::uint(&n), asn1::uint(&e)];
            for f in ["d", "p", "q", "dp", "dq", "qi"] {
                ints.push(asn1::uint(&b64url(&v, f)?));
            }
            Ok(Jwk::Private(PrivKey::Rsa(asn1::seq(&ints))))
        }
        "EC" => {
            let crv = v.get("crv").and_then(|c| c.as_str()).unwrap_or("");
            let curve = match crv {
                "P-256" => asn1::OID_P256,
                "P-384" => asn1::OID_P384,
                "P-521" => asn1::OID_P521,
                other => return Err(format!("failed to parse key: unsupported curve {other:?}")),
            };
            let size = asn1::curve_size(curve).unwrap_or(32);
            let (x, y) = (
                asn1::pad_to(&b64url(&v, "x")?, size),
                asn1::pad_to(&b64url(&v, "y")?, size),
            );
            if has_d {
                let mut public = vec![4u8];
                public.extend_from_slice(&x);
                public.extend_from_slice(&y);
                let d = asn1::pad_to(&b64url(&v, "d")?, size);
                Ok(Jwk::Private(PrivKey::Ec {
                    curve: curve.to_vec(),
                    d,
                    public,
                }))
            } else {
                Ok(Jwk::EcPublic { curve, x, y })
            }
        }
        "OKP" => {
            if v.get("crv").and_then(|c| c.as_str()) != Some("Ed25519") {
                return Err("failed to parse key: unsupported OKP curve".into());
            }
            if has_d {
                let seed: [u8; 32] = b64url(&v, "d")?
                    .try_into()
                    .map_err(|_| "failed to parse key: invalid Ed25519 key".to_string())?;
                Ok(Jwk::Private(PrivKey::Ed25519(seed)))
            } else {
                Ok(Jwk::OkpPublic(b64url(&v, "x")?))
            }
        }
        "oct" => Ok(Jwk::Symmetric),
        other => Err(format!("failed to parse key: invalid key type from JSON ({other})")),
    }
}

pub fn jwk_public_key_pem(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let der = match parse(s(&a[0])).map_err(FnError::msg)? {
        Jwk::RsaPublic { n, e } => asn1::seq(&[
            asn1::seq(&[asn1::oid(asn1::OID_RSA), asn1::null()]),
            asn1::bits(&asn1::seq(&[asn1::uint(&n), asn1::uint(&e)])),
        ]),
        Jwk::EcPublic { curve, x, y } => {
            let mut point = vec![4u8];
            point.extend(x);
            point.extend(y);
            asn1::seq(&[
                asn1::seq(&[asn1::oid(asn1::OID_EC_PUBLIC_KEY), asn1::oid(curve)]),
                asn1::bits(&point),
            ])
        }
        Jwk::OkpPublic(x) => asn1::seq(&[asn1::seq(&[asn1::oid(asn1::OID_ED25519)]), asn1::bits(&x)]),
        Jwk::Private(k) => {
            return Err(FnError::msg(format!(
                "x509: unsupported public key type: {}",
                k.go_type()
            )));
        }
        Jwk::Symmetric => return Err(FnError::msg("x509: unsupported public key type: []uint8")),
    };
    pem_value(ctx, "PUBLIC KEY", &der)
}

pub fn jwk_private_key_pem(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let unknown = |t: &str| {
        Err(FnError::msg(format!(
            "x509: unknown key type while marshaling PKCS#8: {t}"
        )))
    };
    match parse(s(&a[0])).map_err(FnError::msg)? {
        Jwk::Private(k) => pem_value(ctx, "PRIVATE KEY", &marshal_pkcs8(&k)),
        Jwk::RsaPublic { .. } => unknown("*rsa.PublicKey"),
        Jwk::EcPublic { .. } => unknown("*ecdsa.PublicKey"),
        Jwk::OkpPublic(_) => unknown("ed25519.PublicKey"),
        Jwk::Symmetric => unknown("[]uint8"),
    }
}
