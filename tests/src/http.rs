//! A minimal HTTP/1.1 GET for the operator's admin endpoints (`/metrics`, `/healthz`, `/readyz`) and a parser
//! of the Prometheus text exposition format, so tests can assert metric families and label sets.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET http://<addr><path>`: (status code, body).
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| anyhow!("GET {addr}{path}: timed out"))??;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("GET {addr}{path}: no header end"))?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let mut body = &buf[end + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("GET {addr}{path}: bad status line"))?;
    // `/metrics` is streamed: chunked transfer encoding, as any HTTP/1.1 scraper (Prometheus) accepts.
    let dechunked;
    if head.lines().any(|l| l.trim() == "transfer-encoding: chunked") {
        dechunked = dechunk(body).with_context(|| format!("GET {addr}{path}: bad chunked body"))?;
        body = &dechunked;
    }
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

/// Decodes an HTTP/1.1 chunked body (RFC 9112 §7.1; no trailers expected).
fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("no chunk size line"))?;
        let size_field = std::str::from_utf8(&data[..line_end])?;
        let size = usize::from_str_radix(size_field.split(';').next().unwrap_or_default().trim(), 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(data.len() >= size + 2, "chunk of {size} bytes cut short");
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// One sample of a scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape: samples and the `# TYPE` of each family.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
}

impl Scrape {
    pub fn parse(text: &str) -> anyhow::Result<Scrape> {
        let mut out = Scrape::default();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                if let (Some(n), Some(t)) = (it.next(), it.next()) {
                    out.types.insert(n.to_string(), t.to_string());
                }
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.samples
                .push(parse_sample(line).with_context(|| format!("metric line {line:?}"))?);
        }
        Ok(out)
    }

    /// Samples of `name` whose labels include every `(key, value)` of `labels`.
    pub fn find<'a>(&'a self, name: &'a str, labels: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The value of the one sample of `name` matching `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self.find(name, labels).collect();
        match found.as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }

    /// Whether a family (by its `# TYPE` name) is present.
    pub fn has_family(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }
}

fn parse_sample(line: &str) -> anyhow::Result<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return Err(anyhow!("no value")),
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            // key
            let mut key = String::new();
            while let Some(&(i, c)) = chars.peek() {
                if c == '}' {
                    end = Some(i);
                    break;
                }
                chars.next();
                if c == '=' {
                    break;
                }
                if c != ',' {
                    key.push(c);
                }
            }
            if end.is_some() {
                break;
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(anyhow!("label {key} without a quoted value"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => return Err(anyhow!("unterminated escape")),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(anyhow!("unterminated label value")),
                }
            }
            labels.insert(key, value);
        }
        let end = end.ok_or_else(|| anyhow!("no closing brace"))?;
        &body[end + 1..]
    } else {
        rest
    };
    let value = rest.split_whitespace().next().ok_or_else(|| anyhow!("no value"))?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse()?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Scrapes `http://<addr>/metrics`.
pub async fn scrape(addr: SocketAddr) -> anyhow::Result<Scrape> {
    let (status, body) = get(addr, "/metrics").await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}: {body}");
    Scrape::parse(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n").unwrap(),
            b"hello, world"
        );
        assert!(dechunk(b"5\r\nhel").is_err());
    }

    #[test]
    fn parses_exposition_text() {
        let s = Scrape::parse(
            "# HELP a x\n# TYPE a counter\na{x=\"1\",y=\"q\\\"uote\"} 3\nb 4.5\nc_bucket{le=\"+Inf\"} 2\n",
        )
        .unwrap();
        assert_eq!(s.value("a", &[("x", "1")]), Some(3.0));
        assert_eq!(s.samples[0].labels["y"], "q\"uote");
        assert_eq!(s.value("b", &[]), Some(4.5));
        assert_eq!(s.value("c_bucket", &[("le", "+Inf")]), Some(2.0));
        assert!(s.has_family("a"));
    }
}
