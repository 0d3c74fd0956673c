//! sprig's key and certificate generators as Go writes them: `genPrivateKey` (rsa, dsa, ecdsa, ed25519), `genCA`,
//! `genCAWithKey`, `genSelfSignedCert`, `genSelfSignedCertWithKey`, `genSignedCert`, `genSignedCertWithKey` and
//! `buildCustomCert`.
//!
//! The certificates are built field by field as Go 1.26's `x509.CreateCertificate` builds sprig's templates (same
//! extensions, order, string types, time encodings and errors); keys are made and used by RustCrypto crates.
//! Random parts differ from run to run, as in Go: keys, serial numbers, RSA/ECDSA signatures (ECDSA signs with RFC
//! 6979 nonces where Go mixes in randomness; both verify alike).
use getrandom::SysRng;
use sha2::{Digest, Sha256};

use super::asn1::{self, bits, explicit, octets, oid, seq, tlv, uint};
use super::pkcs12::PrivKey;
use super::{Ctx, FnError, FnResult, i, s};
use crate::alloc::{Boxed, Budget, Buf, Exhausted, Str};
use crate::value::Value;

const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

const NOT_A_SIGNER: &str = "x509: certificate private key does not implement crypto.Signer";

const TAG_BOOLEAN: u8 = 0x01;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SET: u8 = 0x31;

/// Work charged against the template's step limit for a key generation: each is a CPU-heavy call a loop could
/// repeat (an RSA-4096 key is ~0.5 s; DSA parameters take seconds, as in Go).
const STEPS_RSA_2048: u64 = 50_000;
const STEPS_RSA_4096: u64 = 200_000;
const STEPS_DSA: u64 = 400_000;
const STEPS_SMALL_KEY: u64 = 1_000;
const STEPS_SIGNATURE: u64 = 5_000;

/// sprig's `certificate`: what the generators return, with its two exported fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    pub cert: Str,
    pub key: Str,
}

impl Certificate {
    /// A field by its Go name.
    pub fn field(&self, name: &str) -> Option<&Str> {
        match name {
            "Cert" => Some(&self.cert),
            "Key" => Some(&self.key),
            _ => None,
        }
    }

    /// The struct as JSON sees it: a map of its fields.
    pub fn as_map(&self, budget: &Budget) -> Result<Value, Exhausted> {
        let m = crate::alloc::Map::new(budget)?;
        for (name, value) in self.fields() {
            // A fresh map is never borrowed elsewhere.
            let _ = m.insert(
                budget,
                bytes::Bytes::from_static(name.as_bytes()),
                Value::Str(value.clone()),
            )?;
        }
        Ok(Value::Map(m))
    }

    /// The fields in declaration order, with their Go names.
    pub fn fields(&self) -> [(&'static str, &Str); 2] {
        [("Cert", &self.cert), ("Key", &self.key)]
    }
}

/// A DSA key as sprig reads and writes it (`DSAKeyFormat`): big-endian magnitudes. Go's `*dsa.PrivateKey` is no
/// `crypto.Signer`, so it is never used to sign.
pub struct DsaKey {
    p: Vec<u8>,
    q: Vec<u8>,
    g: Vec<u8>,
    y: Vec<u8>,
    x: Vec<u8>,
}

/// A private key of one of the types sprig makes and reads.
pub enum Key {
    Rsa(Box<rsa::PrivateKey>),
    P256(Box<p256::ecdsa::SigningKey>),
    P384(Box<p384::ecdsa::SigningKey>),
    P521(Box<p521::ecdsa::SigningKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Dsa(Box<DsaKey>),
}

fn rng_error(e: impl std::fmt::Display) -> String {
    format!("crypto/rand: {e}")
}

impl Key {
    fn rsa(bits: usize) -> Result<Key, String> {
        rsa::PrivateKey::new(&mut SysRng, bits)
            .map(|k| Key::Rsa(Box::new(k)))
            .map_err(|e| e.to_string())
    }

    fn p256() -> Result<Key, String> {
        use rsa::Generate;
        p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
            .map(|k| Key::P256(Box::new(k)))
            .map_err(rng_error)
    }

    fn ed25519() -> Result<Key, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(rng_error)?;
        Ok(Key::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed))))
    }

    /// `dsa.GenerateParameters(L2048N256)` then `dsa.GenerateKey`.
    fn dsa() -> Result<Key, String> {
        let (p, q, g) = dsa_parameters()?;
        let components = dsa::Components::from_components(p, q, g).map_err(|e| e.to_string())?;
        let key = dsa::SigningKey::try_generate_from_rng_with_components(&mut SysRng, components).map_err(rng_error)?;
        let vk = key.verifying_key();
        let c = vk.components();
        Ok(Key::Dsa(Box::new(DsaKey {
            p: c.p().to_be_bytes().into_vec(),
            q: c.q().to_be_bytes().into_vec(),
            g: c.g().to_be_bytes().into_vec(),
            y: vk.y().to_be_bytes().into_vec(),
            x: key.x().to_be_bytes().into_vec(),
        })))
    }

    /// Go's type name, as `%T` prints it.
    fn go_public_type(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "*rsa.PublicKey",
            Key::P256(_) | Key::P384(_) | Key::P521(_) => "*ecdsa.PublicKey",
            Key::Ed25519(_) => "ed25519.PublicKey",
            Key::Dsa(_) => "*dsa.PublicKey",
        }
    }

    /// sprig's `pemBlockForKey`: the PEM type and DER of the key.
    fn pem_block(&self) -> Result<(&'static str, Vec<u8>), String> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        Ok(match self {
            Key::Rsa(k) => (
                "RSA PRIVATE KEY",
                k.to_pkcs1_der().map_err(|e| e.to_string())?.as_bytes().to_vec(),
            ),
            Key::P256(_) | Key::P384(_) | Key::P521(_) => {
                let (curve, d, public) = self.ec_parts().ok_or("x509: unknown elliptic curve")?;
                let der = seq(&[
                    asn1::small_int(1),
                    octets(&d),
                    explicit(0, &oid(curve)),
                    explicit(1, &bits(&public)),
                ]);
                ("EC PRIVATE KEY", der)
            }
            Key::Ed25519(k) => (
                "PRIVATE KEY",
                super::pkcs12::marshal_pkcs8(&PrivKey::Ed25519(k.to_bytes())),
            ),
            Key::Dsa(k) => {
                let der = seq(&[
                    asn1::small_int(0),
                    uint(&k.p),
                    uint(&k.q),
                    uint(&k.g),
                    uint(&k.y),
                    uint(&k.x),
                ]);
                ("DSA PRIVATE KEY", der)
            }
        })
    }

    /// An ECDSA key's curve OID, private scalar (curve-size bytes) and uncompressed public point.
    fn ec_parts(&self) -> Option<(&'static [u8], Vec<u8>, Vec<u8>)> {
        Some(match self {
            Key::P256(k) => (
                asn1::OID_P256,
                k.to_bytes().to_vec(),
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
            Key::P384(k) => (
                asn1::OID_P384,
                k.to_bytes().to_vec(),
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
            Key::P521(k) => (
                asn1::OID_P521,
                k.to_bytes().to_vec(),
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
            _ => return None,
        })
    }

    /// Go's `marshalPublicKey`: the SubjectPublicKeyInfo algorithm identifier and the key bits.
    fn public_key(&self) -> Result<(Vec<u8>, Vec<u8>), String> {
        use rsa::pkcs1::EncodeRsaPublicKey;
        match self {
            Key::Rsa(k) => {
                let der = k.to_public_key().to_pkcs1_der().map_err(|e| e.to_string())?;
                Ok((seq(&[oid(asn1::OID_RSA), asn1::null()]), der.as_bytes().to_vec()))
            }
            Key::P256(_) | Key::P384(_) | Key::P521(_) => {
                let (curve, _, public) = self.ec_parts().ok_or("x509: unsupported elliptic curve")?;
                Ok((seq(&[oid(asn1::OID_EC_PUBLIC_KEY), oid(curve)]), public))
            }
            Key::Ed25519(k) => Ok((seq(&[oid(asn1::OID_ED25519)]), k.verifying_key().to_bytes().to_vec())),
            Key::Dsa(_) => Err(format!("x509: unsupported public key type: {}", self.go_public_type())),
        }
    }

    /// Go's `signingParamsForKey` with no requested algorithm: the signature's algorithm identifier, or `None` for a
    /// key that cannot sign (DSA is no `crypto.Signer` in Go).
    fn signature_algorithm(&self) -> Option<Vec<u8>> {
        Some(match self {
            Key::Rsa(_) => seq(&[oid(OID_SHA256_RSA), asn1::null()]),
            Key::P256(_) => seq(&[oid(OID_ECDSA_SHA256)]),
            Key::P384(_) => seq(&[oid(OID_ECDSA_SHA384)]),
            Key::P521(_) => seq(&[oid(OID_ECDSA_SHA512)]),
            Key::Ed25519(_) => seq(&[oid(asn1::OID_ED25519)]),
            Key::Dsa(_) => return None,
        })
    }

    /// Sign `tbs` with the key's default algorithm (SHA-256 with RSA PKCS #1 v1.5; ECDSA with the curve's hash;
    /// pure Ed25519).
    fn sign(&self, tbs: &[u8]) -> Result<Vec<u8>, String> {
        use rsa::signature::Signer;
        fn ecdsa_der(r: &[u8], s: &[u8]) -> Vec<u8> {
            seq(&[uint(r), uint(s)])
        }
        match self {
            Key::Rsa(k) => k
                .sign_with_rng(&mut SysRng, rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(tbs))
                .map_err(|e| e.to_string()),
            Key::P256(k) => {
                let sig: p256::ecdsa::Signature = k.try_sign(tbs).map_err(|e| e.to_string())?;
                let (r, s) = sig.split_bytes();
                Ok(ecdsa_der(&r, &s))
            }
            Key::P384(k) => {
                let sig: p384::ecdsa::Signature = k.try_sign(tbs).map_err(|e| e.to_string())?;
                let (r, s) = sig.split_bytes();
                Ok(ecdsa_der(&r, &s))
            }
            Key::P521(k) => {
                let sig: p521::ecdsa::Signature = k.try_sign(tbs).map_err(|e| e.to_string())?;
                let (r, s) = sig.split_bytes();
                Ok(ecdsa_der(&r, &s))
            }
            Key::Ed25519(k) => Ok(k.sign(tbs).to_bytes().to_vec()),
            Key::Dsa(_) => Err(NOT_A_SIGNER.into()),
        }
    }

    /// Go's `PublicKey.Equal` against a parent certificate's key.
    fn matches(&self, parent: &ParentKey) -> bool {
        let Ok((alg, mine)) = self.public_key() else {
            return false;
        };
        match parent {
            ParentKey::Rsa(theirs) => {
                matches!(self, Key::Rsa(_))
                    && rsa_public_ints(&mine).is_some_and(|m| Some(m) == rsa_public_ints(theirs))
            }
            ParentKey::Ec { curve, point } => {
                let curve_of_mine = asn1::sequence(&alg).and_then(|a| a.get(1).map(|t| t.content.to_vec()));
                self.ec_parts().is_some() && curve_of_mine.as_deref() == Some(curve.as_slice()) && &mine == point
            }
            ParentKey::Ed25519(theirs) => matches!(self, Key::Ed25519(_)) && &mine == theirs,
            ParentKey::Other => false,
        }
    }
}

/// The odd primes below 1000.
const SMALL_PRIMES: [u64; 167] = {
    let mut out = [0u64; 167];
    let (mut k, mut n) = (0, 3u64);
    while n < 1000 {
        let mut d = 3;
        let mut prime = true;
        while d * d <= n {
            if n % d == 0 {
                prime = false;
            }
            d += 2;
        }
        if prime {
            out[k] = n;
            k += 1;
        }
        n += 2;
    }
    out
};

/// Whether an odd prime below 1000 divides `n` (a number above 1000): one remainder per product of primes that
/// fits a 64-bit limb. Go's `ProbablyPrime` also starts with trial division.
fn has_small_factor(n: &crypto_bigint::BoxedUint) -> bool {
    use crypto_bigint::{Limb, NonZero};
    let mut i = 0;
    while i < SMALL_PRIMES.len() {
        let start = i;
        let mut product = 1u64;
        while let Some(next) = SMALL_PRIMES.get(i).and_then(|&p| product.checked_mul(p)) {
            product = next;
            i += 1;
        }
        let Some(divisor) = NonZero::new(Limb(product)).into_option() else {
            return false;
        };
        let r = n.rem_limb(divisor).0;
        if SMALL_PRIMES[start..i].iter().any(|&p| r.is_multiple_of(p)) {
            return true;
        }
    }
    false
}

/// Go's `dsa.GenerateParameters` for L = 2048, N = 256: a random prime q, then up to 4·L random p ≡ 1 (mod q) of L
/// bits until one is prime, then g = h^((p−1)/q) mod p for the first h ≥ 2 that gives g ≠ 1.
fn dsa_parameters() -> Result<
    (
        crypto_bigint::BoxedUint,
        crypto_bigint::BoxedUint,
        crypto_bigint::BoxedUint,
    ),
    String,
> {
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, NonZero, Odd, Resize};
    use crypto_primes::{Flavor, is_prime};
    const L: u32 = 2048;
    const N: u32 = 256;
    let random = |bits: u32| -> Result<BoxedUint, String> {
        let mut b = vec![0u8; (bits / 8) as usize];
        getrandom::fill(&mut b).map_err(rng_error)?;
        if let Some(last) = b.last_mut() {
            *last |= 1;
        }
        if let Some(first) = b.first_mut() {
            *first |= 0x80;
        }
        BoxedUint::from_be_slice(&b, L).map_err(|e| e.to_string())
    };
    let one = BoxedUint::one_with_precision(L);
    loop {
        let q = random(N)?;
        let q_small = q.clone().resize(N);
        if has_small_factor(&q_small) || !is_prime(Flavor::Any, &q_small) {
            continue;
        }
        let Some(q_nz) = NonZero::new(q.clone()).into_option() else {
            continue;
        };
        for _ in 0..4 * L {
            let candidate = random(L)?;
            let rem = candidate.rem(&q_nz);
            let p = candidate.wrapping_sub(&rem).wrapping_add(&one);
            if p.bit_width() < L || has_small_factor(&p) || !is_prime(Flavor::Any, &p) {
                continue;
            }
            let Some(p_odd) = Odd::new(p.clone()).into_option() else {
                continue;
            };
            let e = p.wrapping_sub(&one).wrapping_div(&q_nz);
            let params = BoxedMontyParams::new_vartime(p_odd);
            let mut h = BoxedUint::from_be_slice(&[2], L).map_err(|e| e.to_string())?;
            let g = loop {
                let g = BoxedMontyForm::new(h.clone(), &params).pow(&e).retrieve();
                if !bool::from(g.is_one()) {
                    break g;
                }
                h = h.wrapping_add(&one);
            };
            return Ok((p, q_small, g));
        }
    }
}

/// An RSA public key's modulus and exponent without leading zeros.
fn rsa_public_ints(pkcs1: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let items = asn1::sequence(pkcs1)?;
    let strip = |b: &[u8]| b[b.iter().take_while(|&&x| x == 0).count()..].to_vec();
    match items.as_slice() {
        [n, e] if n.tag == asn1::TAG_INTEGER && e.tag == asn1::TAG_INTEGER => {
            Some((strip(n.content), strip(e.content)))
        }
        _ => None,
    }
}

/// The public key of the parent certificate, as far as Go's `Equal` looks at it.
enum ParentKey {
    /// PKCS #1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    Ec {
        curve: Vec<u8>,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
    /// A key type no generated key can equal (DSA).
    Other,
}

/// What `CreateCertificate` takes from a parsed parent certificate.
struct Parent {
    subject: Vec<u8>,
    subject_key_id: Vec<u8>,
    /// `None` when Go leaves `PublicKey` nil (an algorithm it does not know): no match is checked.
    key: Option<ParentKey>,
}

/// `x509.ParseCertificate`, keeping the parts a child certificate needs.
fn parse_parent(der: &[u8]) -> Result<Parent, String> {
    use x509_parser::extensions::ParsedExtension;
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| super::pem::MALFORMED.to_string())?;
    if !rest.is_empty() {
        return Err("x509: trailing data".into());
    }
    let mut subject_key_id = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(k) = ext.parsed_extension() {
            subject_key_id = k.0.to_vec();
        }
    }
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.as_bytes();
    let key_bits = spki.subject_public_key.data.to_vec();
    let key = if alg == asn1::OID_RSA {
        Some(ParentKey::Rsa(key_bits))
    } else if alg == asn1::OID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.as_bytes().to_vec())
            .unwrap_or_default();
        Some(ParentKey::Ec { curve, point: key_bits })
    } else if alg == asn1::OID_ED25519 {
        Some(ParentKey::Ed25519(key_bits))
    } else if alg == OID_DSA {
        Some(ParentKey::Other)
    } else {
        None
    };
    Ok(Parent {
        subject: cert.tbs_certificate.subject.as_raw().to_vec(),
        subject_key_id,
        key,
    })
}

/// sprig's `parsePrivateKeyPEM`, with its messages.
fn parse_key_pem(pem: &[u8]) -> Result<Key, String> {
    let (block, _) = super::pem::decode(pem);
    let block = block.ok_or("no PEM data in input")?;
    if block.kind == "PRIVATE KEY" {
        return parse_pkcs8(&block.bytes).map_err(|e| format!("decoding PEM as PKCS#8: {e}"));
    }
    let Some(kind) = block.kind.strip_suffix(" PRIVATE KEY") else {
        return Err(format!("no private key data in PEM block of type {}", block.kind));
    };
    match kind {
        "RSA" => parse_pkcs1(&block.bytes).map_err(|e| format!("parsing RSA private key from PEM: {e}")),
        "EC" => parse_sec1(&block.bytes, None).map_err(|e| format!("parsing EC private key from PEM: {e}")),
        "DSA" => parse_dsa(&block.bytes).map_err(|e| format!("parsing DSA private key from PEM: {e}")),
        _ => Err(format!("invalid private key type {}", block.kind)),
    }
}

/// The message of a DER structure Go's `encoding/asn1` cannot read (Go's own names the offending tag).
const ASN1_STRUCTURE: &str = "asn1: structure error: tags don't match";

/// Go's hint when a key in one format is read as another.
fn wrong_format(der: &[u8], not: &str) -> String {
    let pkcs1 = super::pkcs12::parse_pkcs1(der).is_some();
    let sec1 = asn1::sequence(der).is_some_and(|items| {
        items.first().is_some_and(|v| v.tag == asn1::TAG_INTEGER)
            && items.get(1).is_some_and(|d| d.tag == asn1::TAG_OCTET_STRING)
    });
    let pkcs8 = asn1::sequence(der).is_some_and(|items| {
        items.len() >= 3 && items[0].tag == asn1::TAG_INTEGER && items[1].tag == asn1::TAG_SEQUENCE
    });
    let hint = match not {
        "pkcs8" if sec1 => Some("ParseECPrivateKey"),
        "pkcs8" if pkcs1 => Some("ParsePKCS1PrivateKey"),
        "sec1" if pkcs8 => Some("ParsePKCS8PrivateKey"),
        "sec1" if pkcs1 => Some("ParsePKCS1PrivateKey"),
        "pkcs1" if sec1 => Some("ParseECPrivateKey"),
        "pkcs1" if pkcs8 => Some("ParsePKCS8PrivateKey"),
        _ => None,
    };
    match hint {
        Some(h) => format!("x509: failed to parse private key (use {h} instead for this key format)"),
        None if not == "sec1" => format!("x509: failed to parse EC private key: {ASN1_STRUCTURE}"),
        None => ASN1_STRUCTURE.to_string(),
    }
}

/// `x509.ParsePKCS1PrivateKey`.
fn parse_pkcs1(der: &[u8]) -> Result<Key, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    let Some(items) = asn1::sequence(der).filter(|items| items.len() >= 9) else {
        return Err(wrong_format(der, "pkcs1"));
    };
    if items.iter().take(9).any(|t| t.tag != asn1::TAG_INTEGER) {
        return Err(wrong_format(der, "pkcs1"));
    }
    if items[0].content.len() != 1 || items[0].content[0] > 1 {
        return Err("x509: unsupported private key version".into());
    }
    if items[1..]
        .iter()
        .any(|t| t.content.first().is_none_or(|&b| b & 0x80 != 0) || t.content.iter().all(|&b| b == 0))
    {
        return Err("x509: private key contains zero or negative value".into());
    }
    rsa::PrivateKey::from_pkcs1_der(der)
        .map(|k| Key::Rsa(Box::new(k)))
        .map_err(|_| "crypto/rsa: invalid CRT coefficient".into())
}

/// `x509.ParseECPrivateKey` (or the SEC1 key inside PKCS #8, whose algorithm names the curve). Like Go, the
/// public key is computed from the private scalar; the encoded one is ignored.
fn parse_sec1(der: &[u8], named_curve: Option<&[u8]>) -> Result<Key, String> {
    let Some(items) = asn1::sequence(der) else {
        return Err(wrong_format(der, "sec1"));
    };
    let (Some(version), Some(d)) = (items.first(), items.get(1)) else {
        return Err(wrong_format(der, "sec1"));
    };
    if version.tag != asn1::TAG_INTEGER || d.tag != asn1::TAG_OCTET_STRING {
        return Err(wrong_format(der, "sec1"));
    }
    if version.content != [1] {
        let v = version
            .content
            .iter()
            .fold(0i128, |acc, &b| acc.saturating_mul(256).saturating_add(i128::from(b)));
        return Err(format!("x509: unknown EC private key version {v}"));
    }
    let mut curve = named_curve.map(<[u8]>::to_vec);
    if curve.is_none() {
        for t in items.iter().skip(2) {
            if t.tag == 0xa0
                && let Some((o, _)) = asn1::read(t.content)
                && o.tag == asn1::TAG_OID
            {
                curve = Some(o.content.to_vec());
            }
        }
    }
    let curve = curve.unwrap_or_default();
    let size = asn1::curve_size(&curve).ok_or("x509: unknown elliptic curve")?;
    let mut raw = d.content;
    while raw.len() > size {
        if raw[0] != 0 {
            return Err("x509: invalid private key length".into());
        }
        raw = &raw[1..];
    }
    let scalar = asn1::pad_to(raw, size);
    ec_key(&curve, &scalar)
}

/// An ECDSA key from its curve and scalar (`ecdsa.ParseRawPrivateKey`).
pub fn ec_key(curve: &[u8], scalar: &[u8]) -> Result<Key, String> {
    if scalar.iter().all(|&b| b == 0) {
        return Err("ecdsa: private key is zero".into());
    }
    let overflow = |_| "input overflows the modulus".to_string();
    Ok(match curve {
        c if c == asn1::OID_P256 => Key::P256(Box::new(p256::ecdsa::SigningKey::from_slice(scalar).map_err(overflow)?)),
        c if c == asn1::OID_P384 => Key::P384(Box::new(p384::ecdsa::SigningKey::from_slice(scalar).map_err(overflow)?)),
        c if c == asn1::OID_P521 => Key::P521(Box::new(p521::ecdsa::SigningKey::from_slice(scalar).map_err(overflow)?)),
        _ => return Err("x509: unknown elliptic curve".into()),
    })
}

/// The uncompressed public point of an ECDSA private scalar, or `None` for an invalid one.
pub fn ec_public(curve: &[u8], scalar: &[u8]) -> Option<Vec<u8>> {
    ec_key(curve, scalar).ok()?.ec_parts().map(|(_, _, public)| public)
}

/// `x509.ParsePKCS8PrivateKey` (RSA, ECDSA on the NIST curves, Ed25519).
fn parse_pkcs8(der: &[u8]) -> Result<Key, String> {
    let Some(items) = asn1::sequence(der) else {
        return Err(wrong_format(der, "pkcs8"));
    };
    let (Some(version), Some(alg), Some(key)) = (items.first(), items.get(1), items.get(2)) else {
        return Err(wrong_format(der, "pkcs8"));
    };
    if version.tag != asn1::TAG_INTEGER || alg.tag != asn1::TAG_SEQUENCE || key.tag != asn1::TAG_OCTET_STRING {
        return Err(wrong_format(der, "pkcs8"));
    }
    let alg_items = asn1::children(alg.content).unwrap_or_default();
    let Some(alg_oid) = alg_items.first().filter(|t| t.tag == asn1::TAG_OID) else {
        return Err(ASN1_STRUCTURE.into());
    };
    match alg_oid.content {
        o if o == asn1::OID_RSA => parse_pkcs1(key.content)
            .map_err(|e| format!("x509: failed to parse RSA private key embedded in PKCS#8: {e}")),
        o if o == asn1::OID_EC_PUBLIC_KEY => {
            let curve = alg_items.get(1).filter(|t| t.tag == asn1::TAG_OID).map(|t| t.content);
            parse_sec1(key.content, curve)
                .map_err(|e| format!("x509: failed to parse EC private key embedded in PKCS#8: {e}"))
        }
        o if o == asn1::OID_ED25519 => {
            if alg_items.len() > 1 {
                return Err("x509: invalid Ed25519 private key parameters".into());
            }
            match asn1::read(key.content) {
                Some((inner, rest)) if inner.tag == asn1::TAG_OCTET_STRING && rest.is_empty() => {
                    let seed: [u8; 32] = inner
                        .content
                        .try_into()
                        .map_err(|_| format!("x509: invalid Ed25519 private key length: {}", inner.content.len()))?;
                    Ok(Key::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed))))
                }
                _ => Err(format!("x509: invalid Ed25519 private key: {ASN1_STRUCTURE}")),
            }
        }
        o => Err(format!(
            "x509: PKCS#8 wrapping contained private key with unknown algorithm: {}",
            oid_string(o)
        )),
    }
}

/// An OID in dotted form, as Go prints `asn1.ObjectIdentifier`.
fn oid_string(o: &[u8]) -> String {
    let mut parts: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    for &b in o {
        acc = acc.saturating_mul(128).saturating_add(u128::from(b & 0x7f));
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = if acc < 80 { acc / 40 } else { 2 };
                parts.push(first);
                parts.push(acc.saturating_sub(first * 40));
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts.iter().map(u128::to_string).collect::<Vec<_>>().join(".")
}

/// sprig's DSA key format: `SEQUENCE { version, P, Q, G, Y, X }`.
fn parse_dsa(der: &[u8]) -> Result<Key, String> {
    let items = asn1::sequence(der).ok_or(ASN1_STRUCTURE)?;
    if items.len() < 6 || items.iter().take(6).any(|t| t.tag != asn1::TAG_INTEGER) {
        return Err(ASN1_STRUCTURE.into());
    }
    let n = |i: usize| items[i].content.to_vec();
    Ok(Key::Dsa(Box::new(DsaKey {
        p: n(1),
        q: n(2),
        g: n(3),
        y: n(4),
        x: n(5),
    })))
}

/// What sprig's `getBaseCertTemplate` fills in, plus `IsCA` for the CA generators.
struct Template {
    common_name: Vec<u8>,
    ips: Vec<Vec<u8>>,
    dns_names: Vec<Vec<u8>>,
    days_valid: i64,
    is_ca: bool,
}

/// `%v` of a list element, for sprig's "is not a string" messages.
fn go_v(ctx: &Ctx, v: &Value) -> Result<String, FnError> {
    let mut out = ctx.buf();
    crate::fmt::sprint(&mut out, std::slice::from_ref(v))?;
    Ok(String::from_utf8_lossy(&out.into_vec()?).into_owned())
}

/// sprig's `getNetIPs`: each element a string `net.ParseIP` reads, in the 4-byte form when it is IPv4.
fn net_ips(ctx: &Ctx, ips: &Value) -> Result<Result<Vec<Vec<u8>>, String>, FnError> {
    let Value::List(_, items) = ips else {
        return Ok(Ok(Vec::new()));
    };
    let mut out = Vec::new();
    for ip in items.iter() {
        let Value::Str(text) = ip else {
            return Ok(Err(format!("error parsing ip: {} is not a string", go_v(ctx, ip)?)));
        };
        let parsed = std::str::from_utf8(text)
            .ok()
            .filter(|t| !t.contains('%'))
            .and_then(|t| t.parse::<std::net::IpAddr>().ok());
        match parsed {
            Some(std::net::IpAddr::V4(v4)) => out.push(v4.octets().to_vec()),
            Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => out.push(v4.octets().to_vec()),
                None => out.push(v6.octets().to_vec()),
            },
            None => return Ok(Err(format!("error parsing ip: {}", String::from_utf8_lossy(text)))),
        }
    }
    Ok(Ok(out))
}

/// sprig's `getAlternateDNSStrs`.
fn dns_names(ctx: &Ctx, names: &Value) -> Result<Result<Vec<Vec<u8>>, String>, FnError> {
    let Value::List(_, items) = names else {
        return Ok(Ok(Vec::new()));
    };
    let mut out = Vec::new();
    for name in items.iter() {
        let Value::Str(text) = name else {
            return Ok(Err(format!(
                "error processing alternate dns name: {} is not a string",
                go_v(ctx, name)?
            )));
        };
        out.push(text.to_vec());
    }
    Ok(Ok(out))
}

/// sprig's `getBaseCertTemplate` (the serial number and validity are drawn when the certificate is built).
fn base_template(ctx: &Ctx, a: &[Value], is_ca: bool) -> Result<Result<Template, String>, FnError> {
    let (ips, dns, days) = if is_ca {
        (Ok(Vec::new()), Ok(Vec::new()), i(&a[1]))
    } else {
        (net_ips(ctx, &a[1])?, dns_names(ctx, &a[2])?, i(&a[3]))
    };
    let (ips, dns_names) = match (ips, dns) {
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        (Ok(i), Ok(d)) => (i, d),
    };
    Ok(Ok(Template {
        common_name: s(&a[0]).to_vec(),
        ips,
        dns_names,
        days_valid: days,
        is_ca,
    }))
}

/// Go's `isPrintable` as `encoding/asn1` applies it when marshalling a string (no `*`, no `&`).
fn printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'\''..=b')' | b'+'..=b'/' | b' ' | b':' | b'=' | b'?')
}

/// `pkix.Name{CommonName: cn}` as `asn1.Marshal(name.ToRDNSequence())` writes it.
fn subject_der(cn: &[u8]) -> Result<Vec<u8>, String> {
    if cn.is_empty() {
        return Ok(seq(&[]));
    }
    let tag = if cn.iter().all(|&b| printable(b)) {
        TAG_PRINTABLE_STRING
    } else if std::str::from_utf8(cn).is_ok() {
        TAG_UTF8_STRING
    } else {
        return Err("asn1: string not valid UTF-8".into());
    };
    let atv = seq(&[oid(OID_COMMON_NAME), tlv(tag, cn)]);
    Ok(seq(&[tlv(TAG_SET, &atv)]))
}

/// A time as `encoding/asn1` writes a `time.Time`: UTCTime for 1950–2049, GeneralizedTime otherwise.
fn time_der(t: chrono::DateTime<chrono::Utc>) -> Result<Vec<u8>, String> {
    use chrono::Datelike;
    let year = t.year();
    if (1950..2050).contains(&year) {
        Ok(tlv(TAG_UTC_TIME, t.format("%y%m%d%H%M%SZ").to_string().as_bytes()))
    } else if (0..=9999).contains(&year) {
        Ok(tlv(
            TAG_GENERALIZED_TIME,
            t.format("%Y%m%d%H%M%SZ").to_string().as_bytes(),
        ))
    } else {
        Err("asn1: structure error: cannot represent time as GeneralizedTime".into())
    }
}

fn extension(id: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![oid(id)];
    if critical {
        parts.push(tlv(TAG_BOOLEAN, &[0xff]));
    }
    parts.push(octets(value));
    seq(&parts)
}

/// `x509.CreateCertificate(rand, template, parent, signee's public key, signer)` for sprig's templates, in Go's
/// order of checks. `parent` is `None` when the template is its own parent (self-signed, CA).
fn create_certificate(
    budget: &Budget,
    t: &Template,
    parent: Option<&Parent>,
    signee: &Key,
    signer: &Key,
) -> Result<Vec<u8>, String> {
    let Some(signature_algorithm) = signer.signature_algorithm() else {
        return Err(NOT_A_SIGNER.into());
    };
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(rng_error)?;
    let (public_algorithm, public_key) = signee.public_key()?;
    let subject = subject_der(&t.common_name)?;
    let issuer = match parent {
        Some(p) => p.subject.clone(),
        None => subject.clone(),
    };
    let authority_key_id = match parent {
        Some(p) if issuer != subject && !p.subject_key_id.is_empty() => p.subject_key_id.clone(),
        _ => Vec::new(),
    };
    // RFC 7093 method 1, Go's default since 1.25: the leftmost 160 bits of SHA-256 of the key bits.
    let subject_key_id = if t.is_ca {
        Sha256::digest(&public_key)[..20].to_vec()
    } else {
        Vec::new()
    };
    if let Some(pk) = parent.and_then(|p| p.key.as_ref())
        && !signer.matches(pk)
    {
        return Err("x509: provided PrivateKey doesn't match parent's PublicKey".into());
    }

    let mut extensions = Vec::new();
    // KeyUsage: digitalSignature | keyEncipherment (| keyCertSign), bits reversed as Go writes them.
    let usage: &[u8] = if t.is_ca { &[0x02, 0xa4] } else { &[0x05, 0xa0] };
    extensions.push(extension(OID_KEY_USAGE, true, &tlv(asn1::TAG_BIT_STRING, usage)));
    extensions.push(extension(
        OID_EXT_KEY_USAGE,
        false,
        &seq(&[oid(OID_SERVER_AUTH), oid(OID_CLIENT_AUTH)]),
    ));
    let constraints = if t.is_ca {
        seq(&[tlv(TAG_BOOLEAN, &[0xff])])
    } else {
        seq(&[])
    };
    extensions.push(extension(OID_BASIC_CONSTRAINTS, true, &constraints));
    if !subject_key_id.is_empty() {
        extensions.push(extension(OID_SUBJECT_KEY_ID, false, &octets(&subject_key_id)));
    }
    if !authority_key_id.is_empty() {
        extensions.push(extension(
            OID_AUTHORITY_KEY_ID,
            false,
            &seq(&[tlv(0x80, &authority_key_id)]),
        ));
    }
    if !t.dns_names.is_empty() || !t.ips.is_empty() {
        let mut names = Vec::new();
        for name in &t.dns_names {
            if name.iter().any(|&b| b >= 0x80) {
                let mut q = Buf::new(budget);
                crate::fmt::go_quote(&mut q, name, false);
                let quoted = String::from_utf8_lossy(q.as_slice()).into_owned();
                return Err(format!("x509: {quoted} cannot be encoded as an IA5String"));
            }
            names.push(tlv(0x82, name));
        }
        for ip in &t.ips {
            names.push(tlv(0x87, ip));
        }
        extensions.push(extension(OID_SUBJECT_ALT_NAME, subject == seq(&[]), &seq(&names)));
    }

    let now = chrono::Utc::now();
    // `time.Hour * 24 * time.Duration(daysValid)` wraps as Go's int64 arithmetic does.
    let valid_for = 86_400_000_000_000i64.wrapping_mul(t.days_valid);
    let not_after = now
        .checked_add_signed(chrono::TimeDelta::nanoseconds(valid_for))
        .ok_or("asn1: structure error: cannot represent time as GeneralizedTime")?;
    let validity = seq(&[time_der(now)?, time_der(not_after)?]);

    let tbs = seq(&[
        explicit(0, &asn1::small_int(2)),
        uint(&serial),
        signature_algorithm.clone(),
        issuer,
        validity,
        subject,
        seq(&[public_algorithm, bits(&public_key)]),
        explicit(3, &seq(&extensions)),
    ]);
    let signature = signer.sign(&tbs)?;
    Ok(seq(&[tbs, signature_algorithm, bits(&signature)]))
}

fn pem_str(ctx: &Ctx, kind: &str, der: &[u8]) -> Result<Str, FnError> {
    let mut out = ctx.buf();
    super::pem::encode_der_into(&mut out, kind, der);
    Ok(out.into_str()?)
}

/// sprig's `getCertAndKey`: the certificate and the signee's key, both PEM.
fn cert_and_key(
    ctx: &mut Ctx,
    t: &Template,
    signee: &Key,
    parent: Option<&Parent>,
    signer: &Key,
) -> Result<Result<Certificate, String>, FnError> {
    ctx.charge(STEPS_SIGNATURE)?;
    // The DER is built in a few copies of the names it holds (a few KiB besides): scratch space of the render.
    let names: usize = t.dns_names.iter().map(Vec::len).sum::<usize>() + t.common_name.len() + 16 * t.ips.len();
    let _scratch = ctx.budget.scratch(names.saturating_mul(4).saturating_add(64 * 1024))?;
    let der = match create_certificate(&ctx.budget, t, parent, signee, signer) {
        Ok(der) => der,
        Err(e) => return Ok(Err(format!("error creating certificate: {e}"))),
    };
    let cert = pem_str(ctx, "CERTIFICATE", &der)?;
    let (kind, key_der) = match signee.pem_block() {
        Ok(b) => b,
        Err(e) => return Ok(Err(format!("error pem-encoding key: {e}"))),
    };
    let key = pem_str(ctx, kind, &key_der)?;
    Ok(Ok(Certificate { cert, key }))
}

fn certificate_value(ctx: &Ctx, r: Result<Result<Certificate, String>, FnError>) -> FnResult {
    match r? {
        Ok(c) => Ok(Value::Cert(Boxed::new(&ctx.budget, c)?)),
        Err(e) => Err(FnError::msg(e)),
    }
}

fn generate_rsa_2048(ctx: &mut Ctx) -> Result<Key, FnError> {
    ctx.charge(STEPS_RSA_2048)?;
    Key::rsa(2048).map_err(|e| FnError::msg(format!("error generating rsa key: {e}")))
}

fn parse_key_arg(v: &Value) -> Result<Key, FnError> {
    parse_key_pem(s(v)).map_err(|e| FnError::msg(format!("parsing private key: {e}")))
}

fn self_signed(ctx: &mut Ctx, a: &[Value], key: &Key, is_ca: bool) -> FnResult {
    let t = match base_template(ctx, a, is_ca)? {
        Ok(t) => t,
        Err(e) => return Err(FnError::msg(e)),
    };
    let r = cert_and_key(ctx, &t, key, None, key);
    certificate_value(ctx, r)
}

/// `genCA cn daysValid`: an RSA-2048 self-signed CA.
pub fn gen_ca(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = generate_rsa_2048(ctx)?;
    self_signed(ctx, &a, &key, true)
}

/// `genCAWithKey cn daysValid keyPEM`.
pub fn gen_ca_with_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = parse_key_arg(&a[2])?;
    self_signed(ctx, &a, &key, true)
}

/// `genSelfSignedCert cn ips dnsNames daysValid`.
pub fn gen_self_signed_cert(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = generate_rsa_2048(ctx)?;
    self_signed(ctx, &a, &key, false)
}

/// `genSelfSignedCertWithKey cn ips dnsNames daysValid keyPEM`.
pub fn gen_self_signed_cert_with_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = parse_key_arg(&a[4])?;
    self_signed(ctx, &a, &key, false)
}

fn signed(ctx: &mut Ctx, a: &[Value], key: &Key) -> FnResult {
    let Value::Cert(ca) = &a[4] else {
        return Err(FnError::msg("unable to decode certificate"));
    };
    let (block, _) = super::pem::decode(&ca.cert);
    let block = block.ok_or_else(|| FnError::msg("unable to decode certificate"))?;
    let parent = parse_parent(&block.bytes)
        .map_err(|e| FnError::msg(format!("error parsing certificate: decodedSignerCert.Bytes: {e}")))?;
    let signer = parse_key_pem(&ca.key).map_err(|e| FnError::msg(format!("error parsing private key: {e}")))?;
    let t = match base_template(ctx, a, false)? {
        Ok(t) => t,
        Err(e) => return Err(FnError::msg(e)),
    };
    let r = cert_and_key(ctx, &t, key, Some(&parent), &signer);
    certificate_value(ctx, r)
}

/// `genSignedCert cn ips dnsNames daysValid ca`.
pub fn gen_signed_cert(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = generate_rsa_2048(ctx)?;
    signed(ctx, &a, &key)
}

/// `genSignedCertWithKey cn ips dnsNames daysValid ca keyPEM`.
pub fn gen_signed_cert_with_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = parse_key_arg(&a[5])?;
    signed(ctx, &a, &key)
}

/// `buildCustomCert base64Cert base64Key`: a `certificate` of a PEM certificate and key, both checked.
pub fn build_custom_cert(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use super::encoding::go_b64_decode;
    let cert = go_b64_decode(s(&a[0])).map_err(|_| FnError::msg("unable to decode base64 certificate"))?;
    let key = go_b64_decode(s(&a[1])).map_err(|_| FnError::msg("unable to decode base64 private key"))?;
    let (block, _) = super::pem::decode(&cert);
    let block = block.ok_or_else(|| FnError::msg("unable to decode certificate"))?;
    super::pem::parse_cert(&block.bytes)
        .map_err(|e| FnError::msg(format!("error parsing certificate: decodedCert.Bytes: {e}")))?;
    parse_key_pem(&key).map_err(|e| FnError::msg(format!("error parsing private key: {e}")))?;
    let c = Certificate {
        cert: ctx.copy_str(&cert)?,
        key: ctx.copy_str(&key)?,
    };
    Ok(Value::Cert(Boxed::new(&ctx.budget, c)?))
}

/// `genPrivateKey type`: `rsa` (or empty; 4096 bits, PKCS #1), `dsa` (L2048N256, sprig's DSA format), `ecdsa`
/// (P-256, SEC1), `ed25519` (PKCS #8). Failures are the output, as in sprig.
pub fn gen_private_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = match s(&a[0]) {
        b"" | b"rsa" => {
            ctx.charge(STEPS_RSA_4096)?;
            Key::rsa(4096)
        }
        b"dsa" => {
            ctx.charge(STEPS_DSA)?;
            Key::dsa()
        }
        b"ecdsa" => {
            ctx.charge(STEPS_SMALL_KEY)?;
            Key::p256()
        }
        b"ed25519" => {
            ctx.charge(STEPS_SMALL_KEY)?;
            Key::ed25519()
        }
        other => {
            let mut out = ctx.buf();
            out.extend_from_slice(b"Unknown type ");
            out.extend_from_slice(other);
            return Ok(out.into_value()?);
        }
    };
    let key = match key {
        Ok(k) => k,
        Err(e) => return ctx.str_value(format!("failed to generate private key: {e}")),
    };
    match key.pem_block() {
        Ok((kind, der)) => super::pem::pem_value(ctx, kind, &der),
        // sprig encodes a nil block: an empty string.
        Err(_) => ctx.str_value(""),
    }
}
