//! PEM as Go's `encoding/pem` reads and writes it, X.509 details the helpers need, and ESO's `filterPEM`,
//! `filterCertChain` and `certSANs`.
use std::collections::BTreeMap;

use bytes::Bytes;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::encoding::{base64_encode, go_b64_decode};
use super::{Ctx, FnError, FnResult, s, str_val};
use crate::value::Value;

/// A decoded PEM block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: String,
    pub headers: BTreeMap<String, String>,
    pub bytes: Vec<u8>,
}

/// Go's `getLine`: the line without `\r\n` and trailing spaces/tabs, and the rest.
fn get_line(data: &[u8]) -> (&[u8], &[u8]) {
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
    (line, &data[j..])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim_ascii_space(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Go's `pem.Decode`: the first block and the rest, or `None` and the whole input.
pub fn decode(data: &[u8]) -> (Option<Block>, &[u8]) {
    const START: &[u8] = b"\n-----BEGIN ";
    const END: &[u8] = b"\n-----END ";
    const EOL: &[u8] = b"-----";
    let mut rest = data;
    loop {
        if rest.starts_with(&START[1..]) {
            rest = &rest[START.len() - 1..];
        } else if let Some(p) = find(rest, START) {
            rest = &rest[p + START.len()..];
        } else {
            return (None, data);
        }
        let (type_line, after) = get_line(rest);
        rest = after;
        let Some(kind) = type_line.strip_suffix(EOL) else {
            continue;
        };
        let mut headers = BTreeMap::new();
        loop {
            if rest.is_empty() {
                return (None, data);
            }
            let (line, next) = get_line(rest);
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                break;
            };
            let key = String::from_utf8_lossy(trim_ascii_space(&line[..colon])).into_owned();
            let val = String::from_utf8_lossy(trim_ascii_space(&line[colon + 1..])).into_owned();
            headers.insert(key, val);
            rest = next;
        }
        let (end_index, trailer_index) = if headers.is_empty() && rest.starts_with(&END[1..]) {
            (0, END.len() - 1)
        } else {
            match find(rest, END) {
                Some(i) => (i, i + END.len()),
                None => continue,
            }
        };
        let end_trailer = &rest[trailer_index..];
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
        let b64: Vec<u8> = rest[..end_index]
            .iter()
            .copied()
            .filter(|&c| c != b' ' && c != b'\t')
            .collect();
        let Ok(bytes) = go_b64_decode(&b64) else {
            continue;
        };
        let after_end = rest.get(end_index + END.len() - 1..).unwrap_or(&[]);
        let (_, rest_out) = get_line(after_end);
        let block = Block {
            kind: String::from_utf8_lossy(kind).into_owned(),
            headers,
            bytes,
        };
        return (Some(block), rest_out);
    }
}

/// Go's `pem.Encode` (`Proc-Type` first, then headers sorted, base64 in 64-column lines).
pub fn encode(b: &Block) -> Vec<u8> {
    let mut out = format!("-----BEGIN {}-----\n", b.kind).into_bytes();
    if !b.headers.is_empty() {
        if let Some(v) = b.headers.get("Proc-Type") {
            out.extend_from_slice(format!("Proc-Type: {v}\n").as_bytes());
        }
        for (k, v) in &b.headers {
            if k != "Proc-Type" {
                out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
            }
        }
        out.push(b'\n');
    }
    let enc = base64_encode(&b.bytes);
    for chunk in enc.as_bytes().chunks(64) {
        out.extend_from_slice(chunk);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {}-----\n", b.kind).as_bytes());
    out
}

pub fn encode_der(kind: &str, der: &[u8]) -> Vec<u8> {
    encode(&Block {
        kind: kind.to_string(),
        headers: BTreeMap::new(),
        bytes: der.to_vec(),
    })
}

/// ESO's `trimJunk`: drop anything before the first `-----BEGIN`.
pub fn trim_junk(input: &[u8]) -> &[u8] {
    match find(input, b"-----BEGIN") {
        Some(i) => &input[i..],
        None => input,
    }
}

pub fn filter_pem(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let want = String::from_utf8_lossy(s(&a[0])).to_lowercase();
    let mut data = trim_junk(s(&a[1]));
    let mut out = Vec::new();
    let mut rest: &[u8];
    loop {
        let (block, r) = decode(data);
        rest = r;
        data = r;
        let Some(block) = block else { break };
        if block.kind.to_lowercase() == want {
            out.extend(encode(&block));
        }
    }
    if out.is_empty() && !rest.is_empty() {
        return Err(FnError::msg("error filtering pem: found junk"));
    }
    str_val(out)
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

pub fn filter_cert_chain(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let certs = parse_certs(s(&a[1])).map_err(FnError::msg)?;
    let ordered = order_chain(&certs).map_err(FnError::msg)?;
    let out: Vec<u8> = match s(&a[0]) {
        b"leaf" => match ordered.first() {
            Some(c) if c.has_aki && c.aki != c.ski => encode_der("CERTIFICATE", &c.raw),
            _ => Vec::new(),
        },
        b"intermediate" => {
            let mut out = Vec::new();
            for c in ordered.iter().skip(1) {
                if is_root(c) {
                    break;
                }
                out.extend(encode_der("CERTIFICATE", &c.raw));
            }
            out
        }
        b"root" => match ordered.last() {
            Some(c) if is_root(c) => encode_der("CERTIFICATE", &c.raw),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    str_val(out)
}

pub fn cert_sans(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (block, _) = decode(trim_junk(s(&a[0])));
    let Some(block) = block else {
        return Err(FnError::msg("failed to decode PEM block"));
    };
    let cert = parse_cert(&block.bytes).map_err(|e| FnError::msg(format!("failed to parse certificate: {e}")))?;
    Ok(Value::str_list(cert.sans.into_iter().map(Bytes::from).collect()))
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
        assert_eq!(encode(&b), b"-----BEGIN X-----\nK: v\n\nQUJD\n-----END X-----\n");
        // mismatched END type: no block
        let (b, rest) = decode(b"-----BEGIN X-----\nQUJD\n-----END Y-----\n");
        assert!(b.is_none());
        assert_eq!(rest, b"-----BEGIN X-----\nQUJD\n-----END Y-----\n");
    }
}
