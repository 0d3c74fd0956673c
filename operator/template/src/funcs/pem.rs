//! PEM as Go's `encoding/pem` reads and writes it, X.509 details the helpers need, and ESO's `filterPEM`,
//! `filterCertChain` and `certSANs`.
use std::collections::BTreeMap;

use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::encoding::{base64_into, go_b64_decode};
use super::strings::str_list;
use super::{Ctx, FnError, FnResult, s};
use crate::alloc::Buf;
use crate::value::Value;

/// A decoded PEM block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: String,
    pub headers: BTreeMap<String, String>,
    pub bytes: Vec<u8>,
}

/// Go's `getLine`: the line without `\r\n` and trailing spaces/tabs, the rest, and how many bytes were consumed.
fn get_line(data: &[u8]) -> (&[u8], &[u8], usize) {
    let (mut i, j) = match data.iter().position(|&c| c == b'\n') {
        Some(i) => (i, i + 1),
        None => (data.len(), data.len()),
    };
    if j > i && i > 0 && data[i - 1] == b'\r' {
        i -= 1;
    }
    let mut line = &data[..i];
    while let [rest @ .., b' ' | b'\t'] = line {
        line = rest;
    }
    (line, &data[j..], j)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn trim_ascii_space(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Go's `pem.Decode` (Go 1.26, which ESO v2.9 is built with): find the first END line, then the last BEGIN line
/// before it; the first block and the rest, or `None` and the whole input. Linear in the input.
pub fn decode(data: &[u8]) -> (Option<Block>, &[u8]) {
    const START: &[u8] = b"\n-----BEGIN ";
    const END: &[u8] = b"\n-----END ";
    const EOL: &[u8] = b"-----";
    let mut rest = data;
    // Where the next search starts, relative to `rest` (Go's `endTrailerIndex`; negative ends the search).
    let mut end_trailer_index: isize = 0;
    loop {
        let Some(r) = usize::try_from(end_trailer_index).ok().and_then(|i| rest.get(i..)) else {
            return (None, data);
        };
        rest = r;
        let Some(end_at) = find(rest, END) else {
            return (None, data);
        };
        end_trailer_index = (end_at + END.len()) as isize;
        let Some(begin) = memchr::memmem::rfind(&rest[..end_at], &START[1..]) else {
            continue;
        };
        if begin > 0 && rest[begin - 1] != b'\n' {
            continue;
        }
        let skip = begin + START.len() - 1;
        rest = &rest[skip..];
        // The offset of the END line in `rest`; it goes negative when the END line is consumed as part of the type
        // line (an empty block).
        let mut end_index = end_at as isize - skip as isize;
        end_trailer_index -= skip as isize;
        let (type_line, after, consumed) = get_line(rest);
        rest = after;
        end_index -= consumed as isize;
        end_trailer_index -= consumed as isize;
        let Some(kind) = type_line.strip_suffix(EOL) else {
            continue;
        };
        let mut headers = BTreeMap::new();
        loop {
            if rest.is_empty() {
                return (None, data);
            }
            let (line, next, consumed) = get_line(rest);
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                break;
            };
            let key = String::from_utf8_lossy(trim_ascii_space(&line[..colon])).into_owned();
            let val = String::from_utf8_lossy(trim_ascii_space(&line[colon + 1..])).into_owned();
            headers.insert(key, val);
            rest = next;
            end_index -= consumed as isize;
            end_trailer_index -= consumed as isize;
        }
        if !headers.is_empty() && end_index < 0 {
            continue;
        }
        let Ok(trailer_at) = usize::try_from(end_trailer_index) else {
            continue;
        };
        let Some(end_trailer) = rest.get(trailer_at..) else {
            continue;
        };
        let trailer_len = kind.len() + EOL.len();
        if end_trailer.len() < trailer_len {
            continue;
        }
        let rest_of_end_line = &end_trailer[trailer_len..];
        let end_trailer = &end_trailer[..trailer_len];
        if !end_trailer.starts_with(kind) || !end_trailer.ends_with(EOL) {
            continue;
        }
        if !get_line(rest_of_end_line).0.is_empty() {
            continue;
        }
        let mut bytes = Vec::new();
        if end_index > 0 {
            let b64: Vec<u8> = rest[..end_index as usize]
                .iter()
                .copied()
                .filter(|&c| c != b' ' && c != b'\t')
                .collect();
            let Ok(decoded) = go_b64_decode(&b64) else {
                continue;
            };
            bytes = decoded;
        }
        let from = end_index + END.len() as isize - 1;
        let after_end = usize::try_from(from).ok().and_then(|f| rest.get(f..)).unwrap_or(&[]);
        let (_, rest_out, _) = get_line(after_end);
        let block = Block {
            kind: String::from_utf8_lossy(kind).into_owned(),
            headers,
            bytes,
        };
        return (Some(block), rest_out);
    }
}

/// Go's `pem.Encode` (`Proc-Type` first, then headers sorted, base64 in 64-column lines), appended to `out`.
pub fn encode_into(out: &mut Buf, kind: &str, headers: &BTreeMap<String, String>, der: &[u8]) {
    out.push_str("-----BEGIN ");
    out.push_str(kind);
    out.push_str("-----\n");
    if !headers.is_empty() {
        if let Some(v) = headers.get("Proc-Type") {
            out.push_str("Proc-Type: ");
            out.push_str(v);
            out.push(b'\n');
        }
        for (k, v) in headers {
            if k != "Proc-Type" {
                out.push_str(k);
                out.push_str(": ");
                out.push_str(v);
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }
    // 48 input bytes make one 64-column line.
    for chunk in der.chunks(48) {
        base64_into(out, chunk);
        out.push(b'\n');
    }
    out.push_str("-----END ");
    out.push_str(kind);
    out.push_str("-----\n");
}

/// A PEM block without headers, appended to `out`.
pub fn encode_der_into(out: &mut Buf, kind: &str, der: &[u8]) {
    encode_into(out, kind, &BTreeMap::new(), der);
}

/// A PEM block without headers as a string value, built in the render's budget.
pub fn pem_value(ctx: &Ctx, kind: &str, der: &[u8]) -> FnResult {
    let mut out = ctx.buf();
    encode_der_into(&mut out, kind, der);
    Ok(out.into_value()?)
}

/// ESO's `trimJunk`: drop anything before the first `-----BEGIN`.
pub fn trim_junk(input: &[u8]) -> &[u8] {
    match find(input, b"-----BEGIN") {
        Some(i) => &input[i..],
        None => input,
    }
}

pub fn filter_pem(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let want = String::from_utf8_lossy(s(&a[0])).to_lowercase();
    let mut data = trim_junk(s(&a[1]));
    let mut out = ctx.buf();
    let mut rest: &[u8];
    loop {
        let (block, r) = decode(data);
        rest = r;
        data = r;
        let Some(block) = block else { break };
        if block.kind.to_lowercase() == want {
            encode_into(&mut out, &block.kind, &block.headers, &block.bytes);
            out.ok()?;
        }
    }
    if out.is_empty() && !rest.is_empty() {
        return Err(FnError::msg("error filtering pem: found junk"));
    }
    Ok(out.into_value()?)
}

/// The parts of an X.509 certificate the helpers use.
#[derive(Debug, Clone)]
pub struct Cert {
    pub raw: Vec<u8>,
    /// Authority key identifier (empty when absent, as Go's nil compares equal to empty).
    pub aki: Vec<u8>,
    pub has_aki: bool,
    pub ski: Vec<u8>,
    pub sans: Vec<String>,
}

pub const MALFORMED: &str = "x509: malformed certificate";

fn ip_string(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let v6 = std::net::Ipv6Addr::from(a);
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            }
        }
        _ => {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("?{h}")
        }
    }
}

/// Parse a DER certificate (`x509.ParseCertificate`).
pub fn parse_cert(der: &[u8]) -> Result<Cert, String> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| MALFORMED.to_string())?;
    if !rest.is_empty() {
        return Err("x509: trailing data".into());
    }
    let mut c = Cert {
        raw: der.to_vec(),
        aki: Vec::new(),
        has_aki: false,
        ski: Vec::new(),
        sans: Vec::new(),
    };
    let (mut dns, mut ips, mut emails, mut uris) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                if let Some(k) = &a.key_identifier {
                    c.aki = k.0.to_vec();
                    c.has_aki = true;
                }
            }
            ParsedExtension::SubjectKeyIdentifier(k) => c.ski = k.0.to_vec(),
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    match n {
                        GeneralName::DNSName(d) => dns.push((*d).to_string()),
                        GeneralName::IPAddress(b) => ips.push(ip_string(b)),
                        GeneralName::RFC822Name(e) => emails.push((*e).to_string()),
                        GeneralName::URI(u) => uris.push((*u).to_string()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    c.sans = [dns, ips, emails, uris].concat();
    Ok(c)
}

/// Every PEM block of `data` parsed as a certificate (ESO's `pemToNodes`).
pub fn parse_certs(mut data: &[u8]) -> Result<Vec<Cert>, String> {
    let mut out = Vec::new();
    loop {
        let (block, rest) = decode(data);
        data = rest;
        let Some(block) = block else { break };
        out.push(parse_cert(&block.bytes)?);
    }
    Ok(out)
}

/// ESO's `fetchX509CertChains`: order certificates leaf → root by AKI/SKI links.
pub fn order_chain(certs: &[Cert]) -> Result<Vec<Cert>, String> {
    let n = certs.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut is_parent = vec![false; n];
    for i in 0..n {
        for j in 0..n {
            if i != j && certs[i].aki == certs[j].ski {
                is_parent[j] = true;
                parent[i] = Some(j);
                break;
            }
        }
    }
    let mut leaf = None;
    for (i, &p) in is_parent.iter().enumerate() {
        if !p {
            if leaf.is_some() {
                return Err("found multiple leaf or disjunct certificates".into());
            }
            leaf = Some(i);
        }
    }
    let Some(mut cur) = leaf else {
        return Err("no leaf certificate found".into());
    };
    let mut out = Vec::new();
    loop {
        if out.len() >= n {
            return Err("constructing chain resulted in cycle".into());
        }
        out.push(certs[cur].clone());
        match parent[cur] {
            Some(p) => cur = p,
            None => break,
        }
    }
    Ok(out)
}

fn is_root(c: &Cert) -> bool {
    !c.has_aki || c.aki == c.ski
}

pub fn filter_cert_chain(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let certs = parse_certs(s(&a[1])).map_err(FnError::msg)?;
    let ordered = order_chain(&certs).map_err(FnError::msg)?;
    let mut out = ctx.buf();
    match s(&a[0]) {
        b"leaf" => {
            if let Some(c) = ordered.first().filter(|c| c.has_aki && c.aki != c.ski) {
                encode_der_into(&mut out, "CERTIFICATE", &c.raw);
            }
        }
        b"intermediate" => {
            for c in ordered.iter().skip(1) {
                if is_root(c) {
                    break;
                }
                encode_der_into(&mut out, "CERTIFICATE", &c.raw);
            }
        }
        b"root" => {
            if let Some(c) = ordered.last().filter(|c| is_root(c)) {
                encode_der_into(&mut out, "CERTIFICATE", &c.raw);
            }
        }
        _ => {}
    }
    Ok(out.into_value()?)
}

pub fn cert_sans(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (block, _) = decode(trim_junk(s(&a[0])));
    let Some(block) = block else {
        return Err(FnError::msg("failed to decode PEM block"));
    };
    let cert = parse_cert(&block.bytes).map_err(|e| FnError::msg(format!("failed to parse certificate: {e}")))?;
    let mut sans = Vec::with_capacity(cert.sans.len());
    for san in cert.sans {
        sans.push(ctx.copy_str(san.as_bytes())?);
    }
    str_list(ctx, sans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_like_go() {
        let pem = b"junk\n-----BEGIN X-----\nK: v\n\nQUJD\n-----END X-----\ntail";
        let (b, rest) = decode(pem);
        let b = b.unwrap();
        assert_eq!(
            (b.kind.as_str(), b.bytes.as_slice(), rest),
            ("X", &b"ABC"[..], &b"tail"[..])
        );
        assert_eq!(b.headers.get("K").map(String::as_str), Some("v"));
        let mut out = Buf::new(&crate::alloc::Budget::default());
        encode_into(&mut out, &b.kind, &b.headers, &b.bytes);
        assert_eq!(out.as_slice(), b"-----BEGIN X-----\nK: v\n\nQUJD\n-----END X-----\n");
        // Go 1.26: the last BEGIN before the first END wins; a BEGIN without END is skipped.
        let (b, rest) = decode(b"-----BEGIN A-----\n-----BEGIN X-----\nQUJD\n-----END X-----\nrest");
        assert_eq!(b.map(|b| b.kind), Some("X".to_string()));
        assert_eq!(rest, b"rest");
        let (b, _) = decode(b"-----BEGIN X-----\n-----END X-----\n");
        assert_eq!(b.map(|b| b.bytes), Some(Vec::new()));
        // mismatched END type: no block
        let (b, rest) = decode(b"-----BEGIN X-----\nQUJD\n-----END Y-----\n");
        assert!(b.is_none());
        assert_eq!(rest, b"-----BEGIN X-----\nQUJD\n-----END Y-----\n");
    }
}
