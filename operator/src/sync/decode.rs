//! `decodingStrategy` (None, Base64, Base64URL, Auto) and `nullBytePolicy`, as ESO applies them.
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// How fetched values are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Decoding {
    #[default]
    None,
    Base64,
    Base64Url,
    Auto,
}

/// A value could not be decoded. Says where, never what.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot decode with {strategy}: {reason}")]
pub struct DecodeError {
    pub strategy: &'static str,
    pub reason: String,
}

// Go's base64.StdEncoding / URLEncoding: padding required, non-zero trailing bits tolerated, and CR/LF ignored.
const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
    .with_decode_allow_trailing_bits(true);
const STD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
const URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);

fn go_decode(engine: &GeneralPurpose, strategy: &'static str, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let cleaned: Vec<u8>;
    let input = if input.iter().any(|b| *b == b'\n' || *b == b'\r') {
        cleaned = input.iter().copied().filter(|b| *b != b'\n' && *b != b'\r').collect();
        &cleaned[..]
    } else {
        input
    };
    engine.decode(input).map_err(|e| DecodeError {
        strategy,
        reason: match e {
            base64::DecodeError::InvalidByte(offset, _) => format!("illegal base64 data at input byte {offset}"),
            base64::DecodeError::InvalidLength(_) => "illegal base64 data: invalid length".to_string(),
            base64::DecodeError::InvalidLastSymbol(offset, _) => {
                format!("illegal base64 data at input byte {offset}")
            }
            base64::DecodeError::InvalidPadding => "illegal base64 data: invalid padding".to_string(),
        },
    })
}

/// Decodes one value.
pub fn decode(strategy: Decoding, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    match strategy {
        Decoding::None => Ok(input.to_vec()),
        Decoding::Base64 => go_decode(&STD, "Base64", input),
        Decoding::Base64Url => go_decode(&URL, "Base64URL", input),
        Decoding::Auto => Ok(go_decode(&STD, "Base64", input)
            .or_else(|_| go_decode(&URL, "Base64URL", input))
            .unwrap_or_else(|_| input.to_vec())),
    }
}

/// `nullBytePolicy: Fail`: refuse values with NUL bytes (names the key, not the value).
pub fn check_null_bytes(key: &str, value: &[u8]) -> Result<(), String> {
    if value.contains(&0) {
        return Err(format!(
            "fetched secret value for key {key:?} contains null bytes; use a text-safe format such as PEM/base64 or \
             leave nullBytePolicy unset for intentional binary data"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        assert_eq!(decode(Decoding::None, b"aGk=").unwrap(), b"aGk=");
        assert_eq!(decode(Decoding::Base64, b"aGk=").unwrap(), b"hi");
        assert_eq!(
            decode(Decoding::Base64, b"aG\nk=\r\n").unwrap(),
            b"hi",
            "Go ignores CR/LF"
        );
        assert!(
            decode(Decoding::Base64, b"aGk").is_err(),
            "Go's StdEncoding needs padding"
        );
        assert_eq!(decode(Decoding::Base64Url, b"-_8=").unwrap(), vec![0xfb, 0xff]);
        assert!(decode(Decoding::Base64, b"-_8=").is_err());
        assert_eq!(decode(Decoding::Auto, b"-_8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode(Decoding::Auto, b"aGk=").unwrap(), b"hi");
        assert_eq!(decode(Decoding::Auto, b"not base64!").unwrap(), b"not base64!");
        assert_eq!(decode(Decoding::Auto, &[0xff, 0x00]).unwrap(), vec![0xff, 0x00]);
    }

    #[test]
    fn errors_do_not_contain_the_value() {
        let err = decode(Decoding::Base64, b"s3cr3t!!").unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(err.to_string().contains("input byte 6"), "{err}");
        let err = check_null_bytes("k", b"a\0b").unwrap_err();
        assert!(err.contains("\"k\""));
        assert!(check_null_bytes("k", b"ab").is_ok());
    }
}
