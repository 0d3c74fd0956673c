//! SOPS's encrypted values: `ENC[AES256_GCM,data:<base64>,iv:<base64>,tag:<base64>,type:<type>]`.
//!
//! Per SOPS's encryption protocol, every value is encrypted with AES-256-GCM under the document's 256-bit data
//! key with its own 256-bit random IV; the additional data is the value's path (the map keys leading to it, each
//! followed by `:`), so a value cannot be moved elsewhere in the tree. `type` says how the plaintext reads back
//! (`str`, `int`, `float`, `bool`, `bytes`; `comment` for YAML comments).
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::SopsError;
use super::tree::{Node, format_float};

/// AES-256-GCM with SOPS's 32-byte IVs.
type Cipher = AesGcm<Aes256, U32>;

const IV_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The data key: 32 bytes, wiped when dropped.
pub type DataKey = zeroize::Zeroizing<[u8; 32]>;

/// What a decrypted value reads back as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    Str,
    Int,
    Float,
    Bool,
    Bytes,
    Comment,
}

impl ValueType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "str" => ValueType::Str,
            "int" => ValueType::Int,
            "float" => ValueType::Float,
            "bool" => ValueType::Bool,
            "bytes" => ValueType::Bytes,
            "comment" => ValueType::Comment,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ValueType::Str => "str",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::Bytes => "bytes",
            ValueType::Comment => "comment",
        }
    }
}

/// A parsed `ENC[…]` value.
#[derive(Debug, PartialEq, Eq)]
pub struct Encrypted {
    pub data: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: Vec<u8>,
    pub kind: ValueType,
}

/// Whether `text` has the shape of an encrypted value.
pub fn is_encrypted(text: &str) -> bool {
    text.starts_with("ENC[AES256_GCM,") && text.ends_with(']')
}

/// Parses `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`. Messages never quote the value.
pub fn parse(text: &str) -> Result<Encrypted, &'static str> {
    let inner = text
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|t| t.strip_suffix(']'))
        .ok_or("not an ENC[AES256_GCM,…] value")?;
    let (mut data, mut iv, mut tag, mut kind) = (None, None, None, None);
    for part in inner.split(',') {
        let (k, v) = part.split_once(':').ok_or("a part of the value has no name")?;
        let slot = match k {
            "data" => &mut data,
            "iv" => &mut iv,
            "tag" => &mut tag,
            "type" => {
                kind = Some(ValueType::parse(v).ok_or("unknown value type")?);
                continue;
            }
            _ => return Err("unknown part in an encrypted value"),
        };
        *slot = Some(STANDARD.decode(v).map_err(|_| "invalid base64 in an encrypted value")?);
    }
    let iv = iv.ok_or("an encrypted value has no iv")?;
    let tag = tag.ok_or("an encrypted value has no tag")?;
    if iv.len() != IV_LEN {
        return Err("an encrypted value's iv is not 32 bytes");
    }
    if tag.len() != TAG_LEN {
        return Err("an encrypted value's tag is not 16 bytes");
    }
    Ok(Encrypted {
        data: data.ok_or("an encrypted value has no data")?,
        iv,
        tag,
        kind: kind.ok_or("an encrypted value has no type")?,
    })
}

/// The additional data of the value at `path`: each key followed by `:`.
pub fn additional_data(path: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for k in path {
        out.extend_from_slice(k.as_bytes());
        out.push(b':');
    }
    out
}

/// Decrypts `text` (an `ENC[…]` value at the place whose additional data is `aad`) into its plaintext bytes and
/// type. A wrong key, a changed value or a value moved to another path fail alike.
pub fn decrypt(text: &str, key: &DataKey, aad: &[u8], at: &str) -> Result<(Vec<u8>, ValueType), SopsError> {
    let enc = parse(text).map_err(|m| SopsError::format(format!("{at}: {m}")))?;
    let cipher = Cipher::new_from_slice(key.as_slice()).map_err(|_| SopsError::format("invalid data key length"))?;
    let nonce = Nonce::<U32>::try_from(enc.iv.as_slice()).map_err(|_| SopsError::format("invalid iv"))?;
    let mut msg = Vec::with_capacity(enc.data.len().saturating_add(TAG_LEN));
    msg.extend_from_slice(&enc.data);
    msg.extend_from_slice(&enc.tag);
    let plain = cipher
        .decrypt(&nonce, Payload { msg: &msg, aad })
        .map_err(|_| SopsError::Tampered(format!("{at}: the value does not decrypt with the document's data key")))?;
    Ok((plain, enc.kind))
}

/// Encrypts `plain` as a value of type `kind` at the place whose additional data is `aad`.
pub fn encrypt(plain: &[u8], kind: ValueType, key: &DataKey, aad: &[u8]) -> Result<String, SopsError> {
    use rand::RngCore as _;
    let mut iv = [0u8; IV_LEN];
    rand::rng().fill_bytes(&mut iv);
    let cipher = Cipher::new_from_slice(key.as_slice()).map_err(|_| SopsError::format("invalid data key length"))?;
    let nonce = Nonce::<U32>::from(iv);
    let mut sealed = cipher
        .encrypt(&nonce, Payload { msg: plain, aad })
        .map_err(|_| SopsError::format("encryption failed"))?;
    let tag = sealed.split_off(sealed.len().saturating_sub(TAG_LEN));
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]",
        STANDARD.encode(&sealed),
        STANDARD.encode(iv),
        STANDARD.encode(&tag),
        kind.name()
    ))
}

/// A decrypted plaintext read back as its type.
pub fn to_node(plain: Vec<u8>, kind: ValueType, at: &str) -> Result<Node, SopsError> {
    let text = || {
        String::from_utf8(plain.clone()).map_err(|_| SopsError::format(format!("{at}: a {kind:?} value is not UTF-8")))
    };
    let bad = || SopsError::format(format!("{at}: the decrypted value is not a valid {}", kind.name()));
    Ok(match kind {
        ValueType::Str | ValueType::Comment => Node::Str(text()?),
        ValueType::Bytes => Node::Bytes(plain),
        ValueType::Int => {
            let t = text()?;
            match t.parse::<i64>() {
                Ok(i) => Node::Int(i),
                Err(_) if !t.is_empty() && t.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) => {
                    Node::BigInt(t)
                }
                Err(_) => return Err(bad()),
            }
        }
        ValueType::Float => Node::Float(text()?.parse::<f64>().map_err(|_| bad())?),
        // SOPS writes booleans capitalised (`True`), as its first, Python, version did.
        ValueType::Bool => match text()?.as_str() {
            "True" | "true" => Node::Bool(true),
            "False" | "false" => Node::Bool(false),
            _ => return Err(bad()),
        },
    })
}

/// The bytes SOPS encrypts (and hashes into the MAC) for a plaintext leaf, and its type. `None` for nodes that
/// are not leaves.
pub fn leaf_bytes(node: &Node) -> Option<(Vec<u8>, ValueType)> {
    Some(match node {
        Node::Str(s) => (s.as_bytes().to_vec(), ValueType::Str),
        Node::Int(i) => (i.to_string().into_bytes(), ValueType::Int),
        Node::BigInt(s) => (s.as_bytes().to_vec(), ValueType::Int),
        Node::Float(f) => (format_float(*f).into_bytes(), ValueType::Float),
        Node::Bool(b) => (if *b { "True" } else { "False" }.as_bytes().to_vec(), ValueType::Bool),
        Node::Bytes(b) => (b.clone(), ValueType::Bytes),
        Node::Null | Node::List(_) | Node::Map(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> DataKey {
        zeroize::Zeroizing::new([b; 32])
    }

    #[test]
    fn round_trip_and_binding_to_path_and_key() {
        let aad = additional_data(&["db".into(), "password".into()]);
        assert_eq!(aad, b"db:password:");
        let text = encrypt(b"s3cr3t", ValueType::Str, &key(1), &aad).unwrap();
        assert!(is_encrypted(&text), "{text}");
        assert!(!text.contains("s3cr3t"));
        let (plain, kind) = decrypt(&text, &key(1), &aad, "db.password").unwrap();
        assert_eq!((plain.as_slice(), kind), (&b"s3cr3t"[..], ValueType::Str));
        // Another key, or the same ciphertext moved to another path, fails.
        assert!(matches!(
            decrypt(&text, &key(2), &aad, "x"),
            Err(SopsError::Tampered(_))
        ));
        assert!(matches!(
            decrypt(&text, &key(1), b"db:user:", "x"),
            Err(SopsError::Tampered(_))
        ));
    }

    #[test]
    fn malformed_values_are_format_errors() {
        for bad in [
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
            "ENC[AES256_GCM,data:!!,iv:AA==,tag:AA==,type:str]",
            "ENC[AES256_GCM,data:AA==,type:str]",
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:weird]",
            "plain",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_values() {
        assert_eq!(to_node(b"42".to_vec(), ValueType::Int, "x").unwrap(), Node::Int(42));
        assert_eq!(
            to_node(b"1.5".to_vec(), ValueType::Float, "x").unwrap(),
            Node::Float(1.5)
        );
        assert_eq!(
            to_node(b"true".to_vec(), ValueType::Bool, "x").unwrap(),
            Node::Bool(true)
        );
        assert_eq!(
            to_node(b"False".to_vec(), ValueType::Bool, "x").unwrap(),
            Node::Bool(false)
        );
        assert!(to_node(b"yes".to_vec(), ValueType::Bool, "x").is_err());
        assert_eq!(leaf_bytes(&Node::Bool(true)).unwrap().0, b"True");
        assert_eq!(leaf_bytes(&Node::Float(2.0)).unwrap().0, b"2");
    }
}
