//! age identities and recipients for SOPS data keys (the `age` crate). SOPS stores the data key (or a share) as
//! an ASCII-armored age file encrypted to each recipient.
//!
//! Only X25519 identities (`AGE-SECRET-KEY-1…`) are accepted: plugin identities would run a program and SSH
//! keys are not what SOPS's age support writes for a cluster; both are refused by name.
use std::io::{Read, Write};
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format as ArmorFormat};
use age::x25519;

/// An age X25519 identity (a secret key), as [`parse_identities`] returns them.
pub use age::x25519::Identity;

/// At most this many identities per Secret key: each one costs an X25519 operation per age entry of a document.
pub const MAX_IDENTITIES: usize = 64;
/// A data key or share is 32 or 33 bytes; nothing larger is read from an age file.
const MAX_PLAINTEXT: u64 = 64;

/// Why an identity file was refused. Never quotes the file.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("line {0} is not an age X25519 identity (AGE-SECRET-KEY-1…)")]
    Invalid(usize),
    #[error("line {0} is an age plugin identity; plugins are not supported")]
    Plugin(usize),
    #[error("no identity found")]
    Empty,
    #[error("more than {MAX_IDENTITIES} identities")]
    TooMany,
    #[error("not UTF-8 text")]
    NotText,
}

/// Parses an age identity file (`keys.txt`): one `AGE-SECRET-KEY-1…` per line; `#` comments and blank lines are
/// skipped.
pub fn parse_identities(text: &[u8]) -> Result<Vec<x25519::Identity>, IdentityError> {
    let text = std::str::from_utf8(text).map_err(|_| IdentityError::NotText)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("AGE-PLUGIN-") {
            return Err(IdentityError::Plugin(n + 1));
        }
        let id = x25519::Identity::from_str(line).map_err(|_| IdentityError::Invalid(n + 1))?;
        if out.len() == MAX_IDENTITIES {
            return Err(IdentityError::TooMany);
        }
        out.push(id);
    }
    if out.is_empty() {
        return Err(IdentityError::Empty);
    }
    Ok(out)
}

/// The result of trying identities on an armored age file.
pub enum Unwrapped {
    Key(zeroize::Zeroizing<Vec<u8>>),
    /// None of the identities is a recipient of the file.
    NotForUs,
    /// The file is not a valid age file (or its payload is too large for a data key).
    Invalid(&'static str),
}

/// Decrypts an armored age file holding a data key (or share) with any of `identities`.
pub fn unwrap(enc: &str, identities: &[x25519::Identity]) -> Unwrapped {
    let reader = ArmoredReader::new(enc.as_bytes());
    let decryptor = match age::Decryptor::new(reader) {
        Ok(d) => d,
        Err(_) => return Unwrapped::Invalid("not an age file"),
    };
    if decryptor.is_scrypt() {
        return Unwrapped::Invalid("a passphrase-encrypted age file");
    }
    let ids = identities.iter().map(|i| i as &dyn age::Identity);
    let reader = match decryptor.decrypt(ids) {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => return Unwrapped::NotForUs,
        Err(_) => return Unwrapped::Invalid("the age file does not decrypt"),
    };
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(33));
    match reader.take(MAX_PLAINTEXT + 1).read_to_end(&mut out) {
        Ok(n) if n as u64 <= MAX_PLAINTEXT => Unwrapped::Key(out),
        Ok(_) => Unwrapped::Invalid("the age file holds more than a data key"),
        Err(_) => Unwrapped::Invalid("the age file's payload does not decrypt"),
    }
}

/// Why wrapping failed.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error("{0:?} is not an age X25519 recipient (age1…)")]
    Recipient(String),
    #[error("age encryption failed: {0}")]
    Encrypt(String),
}

/// Parses an age recipient (`age1…`).
pub fn parse_recipient(text: &str) -> Result<x25519::Recipient, WrapError> {
    x25519::Recipient::from_str(text.trim()).map_err(|_| WrapError::Recipient(text.trim().to_string()))
}

/// Encrypts `key` to `recipient` as an armored age file (what SOPS stores in `sops.age[].enc`).
pub fn wrap(key: &[u8], recipient: &x25519::Recipient) -> Result<String, WrapError> {
    let err = |e: &dyn std::fmt::Display| WrapError::Encrypt(e.to_string());
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient)).map_err(|e| err(&e))?;
    let mut out = Vec::new();
    let armored = ArmoredWriter::wrap_output(&mut out, ArmorFormat::AsciiArmor).map_err(|e| err(&e))?;
    let mut w = encryptor.wrap_output(armored).map_err(|e| err(&e))?;
    w.write_all(key).map_err(|e| err(&e))?;
    w.finish().and_then(|a| a.finish()).map_err(|e| err(&e))?;
    String::from_utf8(out).map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn identity_files() {
        let id = x25519::Identity::generate();
        let text = format!(
            "# created: now\n# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        assert_eq!(parse_identities(text.as_bytes()).unwrap().len(), 1);
        assert_eq!(
            parse_identities(b"AGE-PLUGIN-YUBIKEY-1XYZ\n").err(),
            Some(IdentityError::Plugin(1))
        );
        assert_eq!(parse_identities(b"# only comments\n").err(), Some(IdentityError::Empty));
        let err = parse_identities(b"AGE-SECRET-KEY-1NOTAKEY\n").err().unwrap();
        assert_eq!(err, IdentityError::Invalid(1));
        assert!(!err.to_string().contains("NOTAKEY"));
    }

    #[test]
    fn wrap_then_unwrap() {
        let a = x25519::Identity::generate();
        let b = x25519::Identity::generate();
        let enc = wrap(&[7u8; 32], &a.to_public()).unwrap();
        assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        match unwrap(&enc, &[b.clone(), a]) {
            Unwrapped::Key(k) => assert_eq!(k.as_slice(), &[7u8; 32]),
            _ => panic!("should decrypt"),
        }
        assert!(matches!(unwrap(&enc, &[b]), Unwrapped::NotForUs));
        assert!(matches!(unwrap("garbage", &[]), Unwrapped::Invalid(_)));
    }
}
