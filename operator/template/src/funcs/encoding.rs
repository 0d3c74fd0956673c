//! sprig encodings. As in sprig, `b64dec`/`b32dec`/`hexdec` return Go's error text *as the value* when the input is
//! malformed (ESO renders that text into the Secret); the text names a byte offset, never the input.
use super::{Ctx, FnError, FnResult, s};
use crate::alloc::Buf;
use crate::value::Value;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b64_value(c: u8) -> Option<u8> {
    B64.iter().position(|&x| x == c).map(|p| p as u8)
}

/// Go's `base64.StdEncoding.DecodeString`: `\r`/`\n` are skipped, padding is required, trailing bits are not checked.
/// The error is the offset Go reports.
pub fn go_b64_decode(src: &[u8]) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    loop {
        let mut dbuf = [0u8; 4];
        let mut dlen = 4;
        let mut j = 0;
        let mut trailing_err = None;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                return Err(si - j);
            }
            let c = src[si];
            si += 1;
            if let Some(v) = b64_value(c) {
                dbuf[j] = v;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' {
                return Err(si - 1);
            }
            match j {
                0 | 1 => return Err(si - 1),
                2 => {
                    while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                        si += 1;
                    }
                    if si == src.len() {
                        return Err(src.len());
                    }
                    if src[si] != b'=' {
                        return Err(si - 1);
                    }
                    si += 1;
                }
                _ => {}
            }
            while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                si += 1;
            }
            if si < src.len() {
                trailing_err = Some(si);
            }
            dlen = j;
            break;
        }
        let val = u32::from(dbuf[0]) << 18 | u32::from(dbuf[1]) << 12 | u32::from(dbuf[2]) << 6 | u32::from(dbuf[3]);
        let bytes = [(val >> 16) as u8, (val >> 8) as u8, val as u8];
        out.extend_from_slice(&bytes[..dlen - 1]);
        if let Some(e) = trailing_err {
            return Err(e);
        }
        if dlen < 4 {
            return Ok(out);
        }
    }
}

/// Standard base64 of `src`, appended to `out` (its exact length is charged first).
pub fn base64_into(out: &mut Buf, src: &[u8]) {
    use base64::Engine;
    let len = src.len().div_ceil(3).saturating_mul(4);
    out.write_with(len, |v| {
        base64::engine::general_purpose::STANDARD
            .encode_slice(src, spare(v, len))
            .ok();
    });
}

/// Extend `v` by `n` zero bytes and return them, for encoders that write into a slice.
fn spare(v: &mut Vec<u8>, n: usize) -> &mut [u8] {
    let at = v.len();
    v.resize(at + n, 0);
    &mut v[at..]
}

pub fn b64enc(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    base64_into(&mut out, s(&a[0]));
    Ok(out.into_value()?)
}

pub fn b64dec(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    match go_b64_decode(s(&a[0])) {
        Ok(b) => ctx.str_value(b),
        Err(at) => ctx.str_value(format!("illegal base64 data at input byte {at}")),
    }
}

pub fn b32enc(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let src = s(&a[0]);
    let mut out = ctx.buf_with(src.len().div_ceil(5).saturating_mul(8))?;
    for chunk in src.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let v = buf.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let nchars = (chunk.len() * 8).div_ceil(5);
        for k in 0..8 {
            if k < nchars {
                out.push(B32[((v >> (35 - 5 * k)) & 31) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    Ok(out.into_value()?)
}

/// Go's `base32.StdEncoding.DecodeString` (newlines stripped first).
pub fn go_b32_decode(input: &[u8]) -> Result<Vec<u8>, usize> {
    let src: Vec<u8> = input.iter().copied().filter(|&c| c != b'\r' && c != b'\n').collect();
    let olen = src.len();
    let mut rest: &[u8] = &src;
    let mut out = Vec::new();
    let mut end = false;
    while !rest.is_empty() && !end {
        let mut dbuf = [0u8; 8];
        let mut dlen = 8;
        let mut j = 0;
        while j < 8 {
            if rest.is_empty() {
                return Err(olen - rest.len() - j);
            }
            let c = rest[0];
            rest = &rest[1..];
            if c == b'=' && j >= 2 && rest.len() < 8 {
                if rest.len() + j < 8 - 1 {
                    return Err(olen);
                }
                for k in 0..(8 - 1 - j) {
                    if rest.len() > k && rest[k] != b'=' {
                        return Err(olen - rest.len() + k - 1);
                    }
                }
                dlen = j;
                end = true;
                if dlen == 1 || dlen == 3 || dlen == 6 {
                    return Err(olen - rest.len() - 1);
                }
                break;
            }
            match B32.iter().position(|&x| x == c) {
                Some(v) => dbuf[j] = v as u8,
                None => return Err(olen - rest.len() - 1),
            }
            j += 1;
        }
        let v = dbuf.iter().fold(0u64, |acc, &d| acc << 5 | u64::from(d));
        let bytes = v.to_be_bytes();
        let nbytes = match dlen {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend_from_slice(&bytes[3..3 + nbytes]);
    }
    Ok(out)
}

pub fn b32dec(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    match go_b32_decode(s(&a[0])) {
        Ok(b) => ctx.str_value(b),
        Err(at) => ctx.str_value(format!("illegal base32 data at input byte {at}")),
    }
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

pub fn hexdec(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let src = s(&a[0]);
    let mut out = ctx.buf_with(src.len() / 2)?;
    let invalid = |c: u8| {
        let ch = char::from(c);
        if c.is_ascii_graphic() || c == b' ' {
            format!("encoding/hex: invalid byte: U+{:04X} '{ch}'", c)
        } else {
            format!("encoding/hex: invalid byte: U+{:04X}", c)
        }
    };
    let mut k = 1;
    while k < src.len() {
        let (p, q) = (src[k - 1], src[k]);
        let Some(x) = hexval(p) else {
            return ctx.str_value(invalid(p));
        };
        let Some(y) = hexval(q) else {
            return ctx.str_value(invalid(q));
        };
        out.push(x << 4 | y);
        k += 2;
    }
    if src.len() % 2 == 1 {
        let last = src[src.len() - 1];
        if hexval(last).is_none() {
            return ctx.str_value(invalid(last));
        }
        return Ok(Value::from_static(b"encoding/hex: odd length hex string"));
    }
    Ok(out.into_value()?)
}

/// A URL split like Go's `url.Parse` does for the common `scheme://userinfo@host/path?query#fragment` forms.
struct Url {
    scheme: String,
    opaque: String,
    userinfo: Option<String>,
    host: String,
    path: String,
    query: String,
    fragment: String,
}

fn parse_url(raw: &str) -> Result<Url, String> {
    let (rest, fragment) = match raw.split_once('#') {
        Some((r, f)) => (r, percent_decode(f)?),
        None => (raw, String::new()),
    };
    let mut u = Url {
        scheme: String::new(),
        opaque: String::new(),
        userinfo: None,
        host: String::new(),
        path: String::new(),
        query: String::new(),
        fragment,
    };
    let mut rest = rest;
    if let Some(colon) = rest.find(':') {
        let sch = &rest[..colon];
        let valid = !sch.is_empty()
            && sch.as_bytes()[0].is_ascii_alphabetic()
            && sch
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.');
        if valid {
            u.scheme = sch.to_ascii_lowercase();
            rest = &rest[colon + 1..];
        } else if colon == 0 {
            return Err("missing protocol scheme".into());
        }
    }
    if let Some((r, q)) = rest.split_once('?') {
        u.query = q.to_string();
        rest = r;
    }
    if !u.scheme.is_empty() && !rest.starts_with('/') {
        u.opaque = rest.to_string();
        return Ok(u);
    }
    if let Some(after) = rest.strip_prefix("//") {
        let (authority, path) = match after.find('/') {
            Some(p) => (&after[..p], &after[p..]),
            None => (after, ""),
        };
        let host = match authority.rfind('@') {
            Some(at) => {
                u.userinfo = Some(authority[..at].to_string());
                &authority[at + 1..]
            }
            None => authority,
        };
        u.host = percent_decode(host)?;
        rest = path;
    }
    u.path = percent_decode(rest)?;
    Ok(u)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        if b[k] == b'%' {
            let h = b.get(k + 1..k + 3).ok_or_else(|| "invalid URL escape".to_string())?;
            let v = std::str::from_utf8(h).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            let v = v.ok_or_else(|| "invalid URL escape".to_string())?;
            out.push(v);
            k += 3;
        } else {
            out.push(b[k]);
            k += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn hostname(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    match host.rfind(':') {
        Some(c) if host[c + 1..].bytes().all(|d| d.is_ascii_digit()) => host[..c].to_string(),
        _ => host.to_string(),
    }
}

pub fn url_parse(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let raw = String::from_utf8_lossy(s(&a[0])).into_owned();
    let u = parse_url(&raw).map_err(|e| FnError::msg(format!("unable to parse url: parse {raw:?}: {e}")))?;
    let m = ctx.new_map()?;
    let put = |k: &'static str, v: String| -> Result<(), FnError> {
        let v = ctx.str_value(v)?;
        // A fresh map has no other handle: it cannot be busy.
        let _ = m.insert(&ctx.budget, bytes::Bytes::from_static(k.as_bytes()), v)?;
        Ok(())
    };
    put("hostname", hostname(&u.host))?;
    put("scheme", u.scheme)?;
    put("host", u.host)?;
    put("path", u.path)?;
    put("query", u.query)?;
    put("opaque", u.opaque)?;
    put("fragment", u.fragment)?;
    put("userinfo", u.userinfo.unwrap_or_default())?;
    Ok(Value::Map(m))
}

fn dict_str(d: &Value, key: &str) -> Result<String, FnError> {
    match d.map_get(key.as_bytes()) {
        None => Ok(String::new()),
        Some(Value::Str(ref b)) => Ok(String::from_utf8_lossy(b).into_owned()),
        Some(other) => Err(FnError::msg(format!(
            "unable to parse {key} key, must be of type string, but {} found",
            other.kind_name()
        ))),
    }
}

fn escape_path(p: &str) -> String {
    let mut out = String::new();
    for &c in p.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~/:@&=+$!*'(),;".contains(&c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

pub fn url_join(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let d = &a[0];
    let (scheme, host, path) = (dict_str(d, "scheme")?, dict_str(d, "host")?, dict_str(d, "path")?);
    let (query, opaque, fragment, userinfo) = (
        dict_str(d, "query")?,
        dict_str(d, "opaque")?,
        dict_str(d, "fragment")?,
        dict_str(d, "userinfo")?,
    );
    let mut out = String::new();
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    if !opaque.is_empty() {
        out.push_str(&opaque);
    } else {
        if !scheme.is_empty() || !host.is_empty() || !userinfo.is_empty() {
            if !host.is_empty() || !path.is_empty() || !userinfo.is_empty() {
                out.push_str("//");
            }
            if !userinfo.is_empty() {
                out.push_str(&userinfo);
                out.push('@');
            }
            out.push_str(&host);
        }
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        out.push_str(&escape_path(&path));
    }
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(&escape_path(&fragment));
    }
    ctx.str_value(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64_errors_match_go() {
        assert_eq!(go_b64_decode(b"QQ=x"), Err(2));
        assert_eq!(go_b64_decode(b"QUJD\nREVG"), Ok(b"ABCDEF".to_vec()));
        assert_eq!(go_b64_decode(b"QUI="), Ok(b"AB".to_vec()));
        assert_eq!(go_b64_decode(b"QUI"), Err(0));
        assert_eq!(go_b64_decode(b"QQ==QQ=="), Err(4));
        assert_eq!(go_b64_decode(b"a$"), Err(1));
    }

    #[test]
    fn b32_roundtrip() {
        assert_eq!(go_b32_decode(b"MZXW6YTBOI======"), Ok(b"foobar".to_vec()));
        assert_eq!(go_b32_decode(b"MZXW6YQ="), Ok(b"foob".to_vec()));
    }
}
