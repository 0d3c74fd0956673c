//! ESO's Password generator: sethvargo/go-password's algorithm (letters, then digits, then symbols, each drawn
//! uniformly and inserted at a uniform position; without `allowRepeat` no character appears twice), with ESO's
//! defaults (length 24, a quarter of it digits and a quarter symbols, its symbol set), `secretKeys` (one password
//! per key, `password` by default) and `encoding`. Randomness comes from the OS RNG.
//!
//! Stricter than ESO, on purpose: `length: 0` is refused with a condition naming the field (ESO silently uses
//! 24), and a password is at most [`MAX_LENGTH`] characters and [`MAX_KEYS`] keys (bounded work for a tenant's
//! spec).
use async_trait::async_trait;
use base64::Engine as _;
use syncret_crds::externalsecret::GeneratorKind;
use syncret_crds::generator::{PasswordEncoding, PasswordSpec};

use super::{Generated, GeneratorClient, os_random};
use crate::error::{ProviderError, Result};
use crate::value::SecretValue;

/// ESO's default symbol characters.
pub const DEFAULT_SYMBOLS: &str = "~!@#$%^&*()_+`-={}|[]\\:\"<>?,./";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
/// Longest password made.
pub const MAX_LENGTH: usize = 4096;
/// Most `secretKeys`.
pub const MAX_KEYS: usize = 256;

/// A validated Password spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub length: usize,
    pub digits: usize,
    pub symbols: usize,
    pub symbol_chars: Vec<char>,
    pub no_upper: bool,
    pub allow_repeat: bool,
    pub keys: Vec<String>,
    pub encoding: PasswordEncoding,
}

fn count(field: String, v: i64) -> Result<usize> {
    usize::try_from(v)
        .ok()
        .filter(|n| *n <= MAX_LENGTH)
        .ok_or_else(|| ProviderError::invalid_config(field, format!("must be between 0 and {MAX_LENGTH}")))
}

impl Config {
    /// ESO's defaults applied, and every way the spec cannot produce a password refused (naming the field).
    pub fn from_spec(p: &PasswordSpec, base: &str) -> Result<Config> {
        if p.length <= 0 {
            return Err(ProviderError::invalid_config(
                format!("{base}.length"),
                "must be greater than 0",
            ));
        }
        let length = count(format!("{base}.length"), p.length)?;
        let digits = match p.digits {
            Some(d) => count(format!("{base}.digits"), d)?,
            None => length / 4,
        };
        let symbols = match p.symbols {
            Some(s) => count(format!("{base}.symbols"), s)?,
            None => length / 4,
        };
        let symbol_chars: Vec<char> = match p.symbol_characters.as_deref() {
            Some(s) if !s.is_empty() => s.chars().collect(),
            _ => DEFAULT_SYMBOLS.chars().collect(),
        };
        let keys = if p.secret_keys.is_empty() {
            vec!["password".to_string()]
        } else {
            p.secret_keys.clone()
        };
        if keys.len() > MAX_KEYS {
            return Err(ProviderError::invalid_config(
                format!("{base}.secretKeys"),
                format!("at most {MAX_KEYS} keys"),
            ));
        }
        let c = Config {
            length,
            digits,
            symbols,
            symbol_chars,
            no_upper: p.no_upper,
            allow_repeat: p.allow_repeat,
            keys,
            encoding: p.encoding.unwrap_or_default(),
        };
        c.check(base)?;
        Ok(c)
    }

    fn letters(&self) -> Vec<char> {
        let mut l: Vec<char> = LOWER.chars().collect();
        if !self.no_upper {
            l.extend(UPPER.chars());
        }
        l
    }

    /// go-password's checks.
    fn check(&self, base: &str) -> Result<()> {
        let chars = self
            .length
            .checked_sub(self.digits)
            .and_then(|n| n.checked_sub(self.symbols))
            .ok_or_else(|| {
                ProviderError::invalid_config(
                    format!("{base}.length"),
                    "the number of digits and symbols exceeds the length",
                )
            })?;
        if !self.allow_repeat {
            let unique = |n: usize, have: usize, field: &str, what: &str| {
                if n > have {
                    Err(ProviderError::invalid_config(
                        format!("{base}.{field}"),
                        format!("{n} {what} without repeats, but only {have} are available (set allowRepeat)"),
                    ))
                } else {
                    Ok(())
                }
            };
            unique(chars, self.letters().len(), "length", "letters")?;
            unique(self.digits, DIGITS.len(), "digits", "digits")?;
            let mut distinct = self.symbol_chars.clone();
            distinct.sort_unstable();
            distinct.dedup();
            unique(self.symbols, distinct.len(), "symbols", "symbols")?;
        }
        Ok(())
    }
}

/// Uniform draws below a bound from a buffer of OS randomness.
struct Draws {
    buf: Vec<u8>,
    pos: usize,
}

impl Draws {
    fn new() -> Self {
        Self {
            buf: vec![0; 256],
            pos: 256,
        }
    }

    fn next_u32(&mut self) -> Result<u32> {
        if self.pos + 4 > self.buf.len() {
            os_random(&mut self.buf)?;
            self.pos = 0;
        }
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.buf[self.pos..self.pos + 4]);
        self.pos += 4;
        Ok(u32::from_le_bytes(b))
    }

    /// A uniform number in `0..n` (`n` ≥ 1), by rejection sampling.
    fn below(&mut self, n: usize) -> Result<usize> {
        let n = u32::try_from(n).map_err(|_| ProviderError::Transport("a draw over too many choices".into()))?;
        if n <= 1 {
            return Ok(0);
        }
        let zone = u32::MAX - (u32::MAX % n);
        loop {
            let x = self.next_u32()?;
            if x < zone {
                return usize::try_from(x % n).map_err(|_| ProviderError::Transport("draw out of range".into()));
            }
        }
    }
}

/// One password (go-password's `Generate`).
pub fn generate(c: &Config) -> Result<String> {
    let mut draws = Draws::new();
    let mut out: Vec<char> = Vec::with_capacity(c.length);
    let letters = c.letters();
    let digits: Vec<char> = DIGITS.chars().collect();
    let chars = c.length.saturating_sub(c.digits).saturating_sub(c.symbols);
    for (n, set) in [(chars, &letters), (c.digits, &digits), (c.symbols, &c.symbol_chars)] {
        let mut made = 0;
        while made < n {
            let ch = set[draws.below(set.len())?];
            if !c.allow_repeat && out.contains(&ch) {
                continue;
            }
            let at = draws.below(out.len() + 1)?;
            out.insert(at, ch);
            made += 1;
        }
    }
    Ok(out.into_iter().collect())
}

/// The password as `encoding` writes it (Go's standard encodings, with padding).
pub fn encode(password: &str, encoding: PasswordEncoding) -> String {
    let b = password.as_bytes();
    match encoding {
        PasswordEncoding::Raw => password.to_string(),
        PasswordEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(b),
        PasswordEncoding::Base64Url => base64::engine::general_purpose::URL_SAFE.encode(b),
        PasswordEncoding::Hex => b.iter().map(|x| format!("{x:02x}")).collect(),
        PasswordEncoding::Base32 => base32(b),
    }
}

/// RFC 4648 base32 with padding (Go's `base32.StdEncoding`).
fn base32(b: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(b.len().div_ceil(5) * 8);
    for chunk in b.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let v = block.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                let idx = usize::try_from((v >> (35 - i * 5)) & 31).unwrap_or(0);
                out.push(char::from(ALPHABET[idx]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The Password generator.
pub struct PasswordGenerator(Config);

impl PasswordGenerator {
    pub fn new(spec: &PasswordSpec, base: &str) -> Result<Self> {
        Config::from_spec(spec, base).map(Self)
    }
}

#[async_trait]
impl GeneratorClient for PasswordGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Password
    }

    async fn generate(&self) -> Result<Generated> {
        let mut data = std::collections::BTreeMap::new();
        for key in &self.0.keys {
            let p = generate(&self.0)?;
            data.insert(key.clone(), SecretValue::from(encode(&p, self.0.encoding)));
        }
        Ok(Generated { data, lease: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> PasswordSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_esos() {
        let c = Config::from_spec(&spec("{}"), "spec").unwrap();
        assert_eq!((c.length, c.digits, c.symbols), (24, 6, 6));
        assert_eq!(c.keys, ["password"]);
        let p = generate(&c).unwrap();
        assert_eq!(p.chars().count(), 24);
        assert_eq!(p.chars().filter(char::is_ascii_digit).count(), 6);
        assert_eq!(p.chars().filter(|ch| DEFAULT_SYMBOLS.contains(*ch)).count(), 6);
        let mut seen = std::collections::BTreeSet::new();
        assert!(p.chars().all(|ch| seen.insert(ch)), "no repeats by default: {p}");
        assert_ne!(generate(&c).unwrap(), p);
    }

    #[test]
    fn every_option() {
        let c = Config::from_spec(
            &spec(r#"{"length":40,"digits":0,"symbols":5,"symbolCharacters":"-_","noUpper":true,"allowRepeat":true,"secretKeys":["a","b"]}"#),
            "spec",
        )
        .unwrap();
        let p = generate(&c).unwrap();
        assert_eq!(p.len(), 40);
        assert!(!p.chars().any(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit()));
        assert_eq!(p.chars().filter(|ch| *ch == '-' || *ch == '_').count(), 5);
        assert_eq!(c.keys, ["a", "b"]);
    }

    #[test]
    fn impossible_specs_name_the_field() {
        let field = |json: &str| match Config::from_spec(&spec(json), "spec") {
            Err(ProviderError::InvalidConfig { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(r#"{"length":0}"#), "spec.length");
        assert_eq!(field(r#"{"length":-3}"#), "spec.length");
        assert_eq!(field(r#"{"length":100000}"#), "spec.length");
        assert_eq!(field(r#"{"length":4,"digits":3,"symbols":3}"#), "spec.length");
        assert_eq!(
            field(r#"{"length":60,"digits":0,"symbols":0}"#),
            "spec.length",
            "52 letters"
        );
        assert_eq!(field(r#"{"length":20,"digits":11,"symbols":0}"#), "spec.digits");
        assert_eq!(
            field(r#"{"length":10,"digits":0,"symbols":3,"symbolCharacters":"!!"}"#),
            "spec.symbols"
        );
        assert_eq!(field(r#"{"digits":-1}"#), "spec.digits");
    }

    #[test]
    fn encodings_are_gos() {
        assert_eq!(encode("foobar", PasswordEncoding::Base32), "MZXW6YTBOI======");
        assert_eq!(encode("f", PasswordEncoding::Base32), "MY======");
        assert_eq!(encode("fooba", PasswordEncoding::Base32), "MZXW6YTB");
        assert_eq!(encode("a?b>", PasswordEncoding::Base64), "YT9iPg==");
        assert_eq!(encode("a?b>", PasswordEncoding::Base64Url), "YT9iPg==");
        assert_eq!(encode("??>", PasswordEncoding::Base64Url), "Pz8-");
        assert_eq!(encode("ab", PasswordEncoding::Hex), "6162");
        assert_eq!(encode("ab", PasswordEncoding::Raw), "ab");
    }

    #[test]
    fn draws_are_uniform_enough() {
        let mut d = Draws::new();
        let mut counts = [0usize; 10];
        for _ in 0..10_000 {
            counts[d.below(10).unwrap()] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }
}
