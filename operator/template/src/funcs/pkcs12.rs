//! ESO's PKCS#12 helpers, and private-key parsing/marshalling as Go's `crypto/x509` does it.
//!
//! Decoding follows `go-pkcs12`'s `DecodeChain`: exactly one private key, the first certificate is the "leaf", the rest
//! are CA certificates. Keys come out as PKCS#8 `PRIVATE KEY` PEM, re-marshalled like `x509.MarshalPKCS8PrivateKey`.
//! Encoding writes PBES2/AES-256-CBC with an HMAC-SHA-256 MAC (go-pkcs12's `Modern` profile uses the same algorithms;
//! salts and iteration counts differ, so archives are equivalent, not byte-identical, as they never are).
use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, Pkcs12Archive, PrivateKey, PrivateKeyChain};

use super::asn1::{self, Tlv};
use super::encoding::base64_into;
use super::pem::{Cert, decode, encode_der_into, order_chain, parse_cert, pem_value};
use super::{Ctx, FnError, FnResult, s, text};
use crate::value::Value;

/// A parsed private key, in the form needed to marshal it again.
#[derive(Debug, Clone)]
pub enum PrivKey {
    /// The canonical PKCS#1 `RSAPrivateKey` DER.
    Rsa(Vec<u8>),
    Ec {
        curve: Vec<u8>,
        d: Vec<u8>,
        public: Vec<u8>,
    },
    Ed25519([u8; 32]),
}

impl PrivKey {
    /// Go's type name, for messages such as `*rsa.PrivateKey`.
    pub fn go_type(&self) -> &'static str {
        match self {
            PrivKey::Rsa(_) => "*rsa.PrivateKey",
            PrivKey::Ec { .. } => "*ecdsa.PrivateKey",
            PrivKey::Ed25519(_) => "ed25519.PrivateKey",
        }
    }
}

fn ints(items: &[Tlv<'_>]) -> bool {
    items.iter().all(|t| t.tag == asn1::TAG_INTEGER)
}

/// `x509.ParsePKCS1PrivateKey`, structurally: `RSAPrivateKey` with version 0 and the 8 two-prime integers.
pub fn parse_pkcs1(der: &[u8]) -> Option<PrivKey> {
    let items = asn1::sequence(der)?;
    if items.len() != 9 || !ints(&items) || items[0].content != [0] {
        return None;
    }
    let canon: Vec<Vec<u8>> = items.iter().map(|t| asn1::uint(t.content)).collect();
    Some(PrivKey::Rsa(asn1::seq(&canon)))
}

/// SEC1 `ECPrivateKey`; `curve` comes from the PKCS#8 algorithm when the key itself has no parameters.
fn parse_sec1(der: &[u8], curve: Option<&[u8]>) -> Option<PrivKey> {
    let items = asn1::sequence(der)?;
    let version = items.first()?;
    if version.tag != asn1::TAG_INTEGER || version.content != [1] {
        return None;
    }
    let d = items.get(1).filter(|t| t.tag == asn1::TAG_OCTET_STRING)?.content;
    let mut curve_oid = curve.map(<[u8]>::to_vec);
    for t in items.iter().skip(2) {
        match t.tag {
            0xa0 => {
                let (oid, _) = asn1::read(t.content)?;
                // Go prefers the curve of the PKCS #8 algorithm.
                if oid.tag == asn1::TAG_OID && curve.is_none() {
                    curve_oid = Some(oid.content.to_vec());
                }
            }
            0xa1 => {
                let (bits, _) = asn1::read(t.content)?;
                if bits.tag != asn1::TAG_BIT_STRING {
                    return None;
                }
            }
            _ => return None,
        }
    }
    let curve = curve_oid?;
    let size = asn1::curve_size(&curve)?;
    let d = asn1::pad_to(d, size);
    // As Go, the public key is computed from the private scalar (the encoded one, optional, is not trusted).
    let public = super::x509::ec_public(&curve, &d)?;
    Some(PrivKey::Ec { d, curve, public })
}

/// `x509.ParsePKCS8PrivateKey` for RSA, EC (NIST curves) and Ed25519.
pub fn parse_pkcs8(der: &[u8]) -> Option<PrivKey> {
    let items = asn1::sequence(der)?;
    let version = items.first()?;
    if version.tag != asn1::TAG_INTEGER || !(version.content == [0] || version.content == [1]) {
        return None;
    }
    let alg = asn1::children(items.get(1).filter(|t| t.tag == asn1::TAG_SEQUENCE)?.content)?;
    let key = items.get(2).filter(|t| t.tag == asn1::TAG_OCTET_STRING)?.content;
    let oid = alg.first().filter(|t| t.tag == asn1::TAG_OID)?.content;
    match oid {
        o if o == asn1::OID_RSA => parse_pkcs1(key),
        o if o == asn1::OID_EC_PUBLIC_KEY => {
            let curve = alg.get(1).filter(|t| t.tag == asn1::TAG_OID)?.content;
            parse_sec1(key, Some(curve))
        }
        o if o == asn1::OID_ED25519 => {
            let (inner, rest) = asn1::read(key)?;
            if inner.tag != asn1::TAG_OCTET_STRING || !rest.is_empty() {
                return None;
            }
            let seed: [u8; 32] = inner.content.try_into().ok()?;
            Some(PrivKey::Ed25519(seed))
        }
        _ => None,
    }
}

/// ESO's `parsePrivateKey`: PKCS#1, then PKCS#8, then SEC1.
pub fn parse_private_key(der: &[u8]) -> Result<PrivKey, String> {
    parse_pkcs1(der)
        .or_else(|| parse_pkcs8(der))
        .or_else(|| parse_sec1(der, None))
        .ok_or_else(|| "unable to parse private key type".to_string())
}

/// `x509.MarshalPKCS8PrivateKey`.
pub fn marshal_pkcs8(k: &PrivKey) -> Vec<u8> {
    match k {
        PrivKey::Rsa(pkcs1) => asn1::seq(&[
            asn1::small_int(0),
            asn1::seq(&[asn1::oid(asn1::OID_RSA), asn1::null()]),
            asn1::octets(pkcs1),
        ]),
        PrivKey::Ec { curve, d, public } => {
            let sec1 = asn1::seq(&[
                asn1::small_int(1),
                asn1::octets(d),
                asn1::explicit(1, &asn1::bits(public)),
            ]);
            asn1::seq(&[
                asn1::small_int(0),
                asn1::seq(&[asn1::oid(asn1::OID_EC_PUBLIC_KEY), asn1::oid(curve)]),
                asn1::octets(&sec1),
            ])
        }
        PrivKey::Ed25519(seed) => asn1::seq(&[
            asn1::small_int(0),
            asn1::seq(&[asn1::oid(asn1::OID_ED25519)]),
            asn1::octets(&asn1::octets(seed)),
        ]),
    }
}

/// go-pkcs12's `DecodeChain`: (key, leaf, CA certificates).
fn decode_chain(data: &[u8], password: &str) -> Result<(PrivKey, Cert, Vec<Cert>), String> {
    let archive = Pkcs12Archive::from_pkcs12(data, password).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => "pkcs12: decryption password incorrect".to_string(),
        p12_keystore::error::Error::UnpadError | p12_keystore::error::Error::Pkcs5Error(_) => {
            "pkcs12: decryption password incorrect".to_string()
        }
        p12_keystore::error::Error::DerError(_) | p12_keystore::error::Error::InvalidVersion => {
            "pkcs12: error reading P12 data".to_string()
        }
        other => format!("pkcs12: {other}"),
    })?;
    let mut certs = Vec::new();
    for bag in &archive.certs {
        certs.push(parse_cert(bag.cert.as_der())?);
    }
    if archive.keys.len() > 1 {
        return Err("pkcs12: expected exactly one key bag".into());
    }
    let mut certs = certs.into_iter();
    let leaf = certs.next().ok_or_else(|| "pkcs12: certificate missing".to_string())?;
    let key = archive
        .keys
        .first()
        .ok_or_else(|| "pkcs12: private key missing".to_string())?;
    let key = parse_pkcs8(key.key.as_der()).ok_or_else(|| "x509: failed to parse private key".to_string())?;
    Ok((key, leaf, certs.collect()))
}

fn key_pass(ctx: &Ctx, password: &str, input: &[u8]) -> FnResult {
    let (key, _, _) = decode_chain(input, password)
        .map_err(|e| FnError::msg(format!("unable to decode pkcs12 with password: {e}")))?;
    pem_value(ctx, "PRIVATE KEY", &marshal_pkcs8(&key))
}

fn cert_pass(ctx: &Ctx, password: &str, input: &[u8]) -> FnResult {
    let (_, leaf, cas) = decode_chain(input, password)
        .map_err(|e| FnError::msg(format!("unable to decode pkcs12 certificate with password: {e}")))?;
    let mut all = vec![leaf];
    all.extend(cas);
    let list = match order_chain(&all) {
        Ok(ordered) => ordered,
        Err(_) => all,
    };
    let mut out = ctx.buf();
    for c in &list {
        encode_der_into(&mut out, "CERTIFICATE", &c.raw);
    }
    Ok(out.into_value()?)
}

pub fn pkcs12key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    key_pass(ctx, "", s(&a[0]))
}

pub fn pkcs12key_pass(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    key_pass(ctx, &text(&a[0]), s(&a[1]))
}

pub fn pkcs12cert(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    cert_pass(ctx, "", s(&a[0]))
}

pub fn pkcs12cert_pass(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    cert_pass(ctx, &text(&a[0]), s(&a[1]))
}

/// Go dereferences a nil `*pem.Block` here; the template engine turns that panic into this error.
const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

fn first_cert(pem: &[u8]) -> Result<(Cert, &[u8]), FnError> {
    let (block, rest) = decode(pem);
    let block = block.ok_or_else(|| FnError::msg(NIL_DEREF))?;
    Ok((parse_cert(&block.bytes).map_err(FnError::msg)?, rest))
}

/// ESO's `parseCaCerts`: every remaining block must be a certificate.
fn ca_certs(mut rest: &[u8]) -> Result<Vec<Cert>, FnError> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (block, r) = decode(rest);
        let block = block.ok_or_else(|| FnError::msg(NIL_DEREF))?;
        out.push(parse_cert(&block.bytes).map_err(FnError::msg)?);
        rest = r;
    }
    Ok(out)
}

fn p12_cert(c: &Cert) -> Result<Certificate, FnError> {
    Certificate::from_der(&c.raw).map_err(|_| FnError::msg(super::pem::MALFORMED))
}

fn write_store(ctx: &Ctx, store: &KeyStore, password: &str) -> FnResult {
    let der = store
        .writer(password)
        .write()
        .map_err(|e| FnError::msg(format!("pkcs12: {e}")))?;
    let mut out = ctx.buf();
    base64_into(&mut out, &der);
    Ok(out.into_value()?)
}

fn certs_key_to_pkcs12(ctx: &Ctx, cert: &Cert, key_pem: &[u8], cas: &[Cert], password: &str) -> FnResult {
    let (block, _) = decode(key_pem);
    let block = block.ok_or_else(|| FnError::msg(NIL_DEREF))?;
    let key = parse_private_key(&block.bytes).map_err(FnError::msg)?;
    let key =
        PrivateKey::from_der(&marshal_pkcs8(&key)).map_err(|_| FnError::msg("x509: failed to marshal private key"))?;
    let mut chain = vec![p12_cert(cert)?];
    for c in cas {
        chain.push(p12_cert(c)?);
    }
    use sha1::Digest;
    let local_key_id = sha1::Sha1::digest(&cert.raw).to_vec();
    let mut store = KeyStore::new();
    store.add_entry(
        "1",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, chain)),
    );
    write_store(ctx, &store, password)
}

pub fn pem_to_pkcs12(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (cert, _) = first_cert(s(&a[0]))?;
    certs_key_to_pkcs12(ctx, &cert, s(&a[1]), &[], "")
}

pub fn pem_to_pkcs12_pass(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (cert, _) = first_cert(s(&a[0]))?;
    certs_key_to_pkcs12(ctx, &cert, s(&a[1]), &[], &text(&a[2]))
}

pub fn full_pem_to_pkcs12(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (cert, rest) = first_cert(s(&a[0]))?;
    let cas = ca_certs(rest)?;
    certs_key_to_pkcs12(ctx, &cert, s(&a[1]), &cas, "")
}

pub fn full_pem_to_pkcs12_pass(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (cert, rest) = first_cert(s(&a[0]))?;
    let cas = ca_certs(rest)?;
    certs_key_to_pkcs12(ctx, &cert, s(&a[1]), &cas, &text(&a[2]))
}

fn truststore(ctx: &Ctx, pem: &[u8], password: &str) -> FnResult {
    let certs = ca_certs(pem)?;
    let mut store = KeyStore::new();
    for (i, c) in certs.iter().enumerate() {
        store.add_entry(&format!("{i}"), KeyStoreEntry::Certificate(p12_cert(c)?));
    }
    write_store(ctx, &store, password)
}

pub fn pem_truststore_to_pkcs12(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    truststore(ctx, s(&a[0]), "")
}

pub fn pem_truststore_to_pkcs12_pass(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    truststore(ctx, s(&a[0]), &text(&a[1]))
}
