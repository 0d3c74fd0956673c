//! A minimal DER reader/writer for the key structures the helpers re-encode (PKCS#1, PKCS#8, SEC1, SPKI).
//! Parsing is bounds-checked and never panics; only definite lengths are accepted, as DER requires.

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_BIT_STRING: u8 = 0x03;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub const TAG_SEQUENCE: u8 = 0x30;

/// OIDs in DER content form.
pub const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
pub const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// One TLV: tag, content.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

/// Read one TLV from the front of `input`; returns it and the rest.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&l0, mut rest) = rest.split_first()?;
    let len = if l0 < 0x80 {
        usize::from(l0)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = len << 8 | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((
        Tlv {
            tag,
            content: &rest[..len],
        },
        &rest[len..],
    ))
}

/// All TLVs inside a constructed value.
pub fn children(content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (t, r) = read(rest)?;
        out.push(t);
        rest = r;
    }
    Some(out)
}

/// Read a complete DER value that must be a SEQUENCE, returning its children.
pub fn sequence(der: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let (t, rest) = read(der)?;
    if t.tag != TAG_SEQUENCE || !rest.is_empty() {
        return None;
    }
    children(t.content)
}

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn uint(mag: &[u8]) -> Vec<u8> {
    let skip = mag.iter().take_while(|&&b| b == 0).count();
    let mut m = mag[skip.min(mag.len())..].to_vec();
    if m.is_empty() {
        m.push(0);
    }
    if m[0] & 0x80 != 0 {
        m.insert(0, 0);
    }
    tlv(TAG_INTEGER, &m)
}

pub fn small_int(v: u8) -> Vec<u8> {
    tlv(TAG_INTEGER, &[v])
}

pub fn oid(o: &[u8]) -> Vec<u8> {
    tlv(TAG_OID, o)
}

pub fn null() -> Vec<u8> {
    vec![TAG_NULL, 0]
}

pub fn octets(b: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, b)
}

pub fn bits(b: &[u8]) -> Vec<u8> {
    let mut c = vec![0u8];
    c.extend_from_slice(b);
    tlv(TAG_BIT_STRING, &c)
}

/// Context-specific constructed tag `[n]`.
pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// Byte size of a curve's field elements / scalars.
pub fn curve_size(curve_oid: &[u8]) -> Option<usize> {
    match curve_oid {
        o if o == OID_P256 => Some(32),
        o if o == OID_P384 => Some(48),
        o if o == OID_P521 => Some(66),
        _ => None,
    }
}

/// Left-pad a big-endian number to `n` bytes (Go's `FillBytes`).
pub fn pad_to(b: &[u8], n: usize) -> Vec<u8> {
    let skip = b.iter().take_while(|&&x| x == 0).count();
    let b = &b[skip..];
    let mut out = vec![0u8; n.saturating_sub(b.len())];
    out.extend_from_slice(b);
    out
}
