//! Reading a SOPS document: its format (YAML, JSON, dotenv, INI as SOPS writes them), the encrypted tree and
//! the `sops` metadata; then decrypting the tree and checking the MAC.
//!
//! **MAC.** SOPS hashes, with SHA-512 and in document order, the plaintext of every value (of every encrypted
//! value only, with `mac_only_encrypted: true`, and then the hash starts with SHA-256 of `sops`, so the two kinds of
//! MAC never collide), and stores the upper-case hex digest encrypted with the data key, the additional data being
//! the `lastmodified` timestamp. A document whose recomputed digest differs — a value
//! added, removed, reordered, replaced with another encrypted value, or left in clear — is refused.
//!
//! **dotenv and INI** are flat: SOPS writes the metadata as `sops_`-prefixed keys (dotenv) or a `[sops]` section
//! (INI) whose names flatten the tree (`age__list_0__map_recipient`), with newlines written as `\n`.
use sha2::{Digest, Sha256, Sha512};

use super::SopsError;
use super::cipher::{self, DataKey};
use super::metadata::Metadata;
use super::tree::Node;

/// Documents larger than this are refused unread (a ConfigMap holds at most 1 MiB anyway).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// At most this many values (leaves) are decrypted per document.
pub const MAX_VALUES: usize = 100_000;
/// List indices in flattened dotenv/INI metadata.
const MAX_FLAT_INDEX: usize = 1024;
/// The section INI keys before any section header belong to (go-ini's, which SOPS uses).
pub const INI_DEFAULT_SECTION: &str = "DEFAULT";

/// The formats SOPS writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
}

impl Format {
    /// The format of a document stored under `key` (its extension, as `sops` picks it), else from its content.
    pub fn detect(key: &str, text: &str) -> Format {
        let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("yaml" | "yml") => return Format::Yaml,
            Some("json") => return Format::Json,
            Some("env") => return Format::Dotenv,
            Some("ini") => return Format::Ini,
            _ => {}
        }
        if key.eq_ignore_ascii_case(".env") {
            return Format::Dotenv;
        }
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            Format::Json
        } else if text.lines().any(|l| l.trim() == "[sops]") {
            Format::Ini
        } else if text.lines().any(|l| l.starts_with("sops_mac=")) {
            Format::Dotenv
        } else {
            Format::Yaml
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Ini => "INI",
        }
    }
}

/// A parsed, still encrypted document.
#[derive(Debug)]
pub struct Document {
    pub format: Format,
    /// The data, without the metadata.
    pub tree: Node,
    pub metadata: Metadata,
}

impl Document {
    /// Parses `text` as `format`. Errors name the format and position, never content.
    pub fn parse(format: Format, text: &str) -> Result<Self, SopsError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(SopsError::format(format!(
                "the document is larger than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        let (tree, sops) = match format {
            Format::Yaml | Format::Json => {
                let node: Node = match format {
                    Format::Json => serde_json::from_str(text).map_err(|e| {
                        SopsError::format(format!("not valid JSON (line {}, column {})", e.line(), e.column()))
                    })?,
                    _ => serde_yaml::from_str(text).map_err(|e| {
                        let at = e
                            .location()
                            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                            .unwrap_or_default();
                        SopsError::format(format!("not valid YAML{at}"))
                    })?,
                };
                let Node::Map(entries) = node else {
                    return Err(SopsError::format(format!(
                        "a SOPS {} document is a map at the top",
                        format.name()
                    )));
                };
                let mut sops = None;
                let mut data = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    if k == "sops" {
                        sops = Some(v);
                    } else {
                        data.push((k, v));
                    }
                }
                (Node::Map(data), sops)
            }
            Format::Dotenv => parse_dotenv(text)?,
            Format::Ini => parse_ini(text)?,
        };
        let sops = sops.ok_or_else(|| {
            SopsError::format(format!(
                "not a SOPS document: no sops metadata (a {} document)",
                format.name()
            ))
        })?;
        Ok(Self {
            format,
            tree,
            metadata: Metadata::parse(&sops)?,
        })
    }

    /// Decrypts every encrypted value and checks the MAC. The result is the plaintext tree.
    pub fn decrypt(&self, key: &DataKey) -> Result<Node, SopsError> {
        let mut hash = Sha512::new();
        if self.metadata.mac_only_encrypted {
            hash.update(Sha256::digest(b"sops"));
        }
        let mut walk = Walk {
            meta: &self.metadata,
            key,
            hash,
            path: Vec::new(),
            values: 0,
        };
        let plain = walk.node(&self.tree)?;
        let digest = walk.hash.finalize();
        let computed = hex_upper(&digest);
        let (stored, _) = cipher::decrypt(
            &self.metadata.mac,
            key,
            self.metadata.last_modified.as_bytes(),
            "sops.mac",
        )
        .map_err(|_| {
            SopsError::Tampered(
                "the MAC does not decrypt with the data key (sops.mac or sops.lastmodified was changed)".into(),
            )
        })?;
        if stored != computed.as_bytes() {
            return Err(SopsError::Tampered(
                "MAC mismatch: the document's values were changed after it was encrypted".into(),
            ));
        }
        Ok(plain)
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

struct Walk<'a> {
    meta: &'a Metadata,
    key: &'a DataKey,
    hash: Sha512,
    path: Vec<String>,
    values: usize,
}

impl Walk<'_> {
    fn at(&self) -> String {
        if self.path.is_empty() {
            "(top)".into()
        } else {
            self.path.join(".")
        }
    }

    fn node(&mut self, node: &Node) -> Result<Node, SopsError> {
        match node {
            Node::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    self.path.push(k.clone());
                    let r = self.node(v);
                    self.path.pop();
                    out.push((k.clone(), r?));
                }
                Ok(Node::Map(out))
            }
            Node::List(items) => items
                .iter()
                .map(|v| self.node(v))
                .collect::<Result<_, _>>()
                .map(Node::List),
            leaf => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, leaf: &Node) -> Result<Node, SopsError> {
        self.values = self.values.saturating_add(1);
        if self.values > MAX_VALUES {
            return Err(SopsError::format(format!("more than {MAX_VALUES} values")));
        }
        let encrypted = self.meta.rule.encrypts(&self.path);
        match leaf {
            // SOPS leaves empty strings and nulls in clear; they add nothing to the MAC.
            Node::Null => Ok(Node::Null),
            Node::Str(s) if s.is_empty() => Ok(leaf.clone()),
            Node::Str(s) if encrypted && !cipher::is_encrypted(s) => Err(SopsError::Tampered(format!(
                "{}: the value should be encrypted but is in clear",
                self.at()
            ))),
            Node::Str(s) if encrypted => {
                let aad = cipher::additional_data(&self.path);
                let (plain, kind) = cipher::decrypt(s, self.key, &aad, &self.at())?;
                self.hash.update(&plain);
                cipher::to_node(plain, kind, &self.at())
            }
            _ if encrypted => Err(SopsError::Tampered(format!(
                "{}: the value should be encrypted but is in clear",
                self.at()
            ))),
            other => {
                if !self.meta.mac_only_encrypted
                    && let Some((bytes, _)) = cipher::leaf_bytes(other)
                {
                    self.hash.update(&bytes);
                }
                Ok(other.clone())
            }
        }
    }
}

/// Unescapes what SOPS's flat formats escape (`\n`).
fn unescape(v: &str) -> String {
    v.replace("\\n", "\n")
}

/// Inserts `value` into `root` at the flattened metadata `name` (`age__list_0__map_enc`).
fn insert_flat(root: &mut Node, name: &str, value: String) -> Result<(), SopsError> {
    let bad = || SopsError::format(format!("invalid flattened metadata key sops_{name}"));
    let mut parts = name.split("__");
    let first = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
    let mut steps: Vec<Step> = vec![Step::Key(first.to_string())];
    for p in parts {
        if let Some(i) = p.strip_prefix("list_") {
            let i: usize = i.parse().map_err(|_| bad())?;
            if i >= MAX_FLAT_INDEX {
                return Err(bad());
            }
            steps.push(Step::Index(i));
        } else if let Some(k) = p.strip_prefix("map_") {
            steps.push(Step::Key(k.to_string()));
        } else {
            return Err(bad());
        }
    }
    let mut cur = root;
    for (n, step) in steps.iter().enumerate() {
        let last = n + 1 == steps.len();
        let next_is_list = matches!(steps.get(n + 1), Some(Step::Index(_)));
        let fresh = || {
            if last {
                Node::Str(value.clone())
            } else if next_is_list {
                Node::List(Vec::new())
            } else {
                Node::Map(Vec::new())
            }
        };
        cur = match (step, cur) {
            (Step::Key(k), Node::Map(m)) => {
                let pos = match m.iter().position(|(mk, _)| mk == k) {
                    Some(p) if !last => p,
                    Some(_) => return Err(bad()),
                    None => {
                        m.push((k.clone(), fresh()));
                        m.len() - 1
                    }
                };
                &mut m[pos].1
            }
            (Step::Index(i), Node::List(l)) => {
                while l.len() <= *i {
                    l.push(Node::Null);
                }
                if matches!(l[*i], Node::Null) {
                    l[*i] = fresh();
                } else if last {
                    return Err(bad());
                }
                &mut l[*i]
            }
            _ => return Err(bad()),
        };
    }
    Ok(())
}

enum Step {
    Key(String),
    Index(usize),
}

type Parsed = (Node, Option<Node>);

fn parse_dotenv(text: &str) -> Result<Parsed, SopsError> {
    let mut data = Vec::new();
    let mut sops: Option<Node> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| SopsError::format(format!("dotenv line {}: no '='", n + 1)))?;
        let k = k.trim();
        if let Some(meta) = k.strip_prefix("sops_") {
            insert_flat(sops.get_or_insert_with(|| Node::Map(Vec::new())), meta, unescape(v))?;
        } else {
            if data.iter().any(|(dk, _): &(String, Node)| dk == k) {
                return Err(SopsError::format(format!("dotenv line {}: duplicate key {k:?}", n + 1)));
            }
            data.push((k.to_string(), Node::Str(unescape(v))));
        }
    }
    Ok((Node::Map(data), sops))
}

fn parse_ini(text: &str) -> Result<Parsed, SopsError> {
    let mut sections: Vec<(String, Node)> = Vec::new();
    let mut sops: Option<Node> = None;
    let mut current = INI_DEFAULT_SECTION.to_string();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| SopsError::format(format!("INI line {}: no '='", n + 1)))?;
        let (k, v) = (k.trim(), unescape(v.trim()));
        if current == "sops" {
            insert_flat(sops.get_or_insert_with(|| Node::Map(Vec::new())), k, v)?;
            continue;
        }
        let pos = match sections.iter().position(|(s, _)| *s == current) {
            Some(p) => p,
            None => {
                sections.push((current.clone(), Node::Map(Vec::new())));
                sections.len() - 1
            }
        };
        if let Node::Map(m) = &mut sections[pos].1 {
            if m.iter().any(|(mk, _)| mk == k) {
                return Err(SopsError::format(format!("INI line {}: duplicate key {k:?}", n + 1)));
            }
            m.push((k.to_string(), Node::Str(v)));
        }
    }
    Ok((Node::Map(sections), sops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        assert_eq!(Format::detect("secrets.yaml", ""), Format::Yaml);
        assert_eq!(Format::detect("app.env", ""), Format::Dotenv);
        assert_eq!(Format::detect("x", "{\"a\":1}"), Format::Json);
        assert_eq!(Format::detect("x", "a=1\n[sops]\nmac = x\n"), Format::Ini);
        assert_eq!(Format::detect("x", "a=1\nsops_mac=x\n"), Format::Dotenv);
        assert_eq!(Format::detect("x", "a: 1\n"), Format::Yaml);
    }

    #[test]
    fn flattened_metadata() {
        let (data, sops) = parse_dotenv(
            "A=1\n# c\nsops_age__list_0__map_enc=line1\\nline2\nsops_age__list_0__map_recipient=r\n\
             sops_key_groups__list_1__map_age__list_0__map_recipient=x\nsops_mac=m\n",
        )
        .unwrap();
        assert_eq!(data, Node::Map(vec![("A".into(), Node::Str("1".into()))]));
        let sops = sops.unwrap();
        let Some(Node::List(age)) = sops.get("age") else {
            panic!("{sops:?}")
        };
        assert_eq!(age[0].get("enc"), Some(&Node::Str("line1\nline2".into())));
        let Some(Node::List(groups)) = sops.get("key_groups") else {
            panic!()
        };
        assert_eq!(groups[0], Node::Null);
        assert!(groups[1].get("age").is_some());
        assert!(parse_dotenv("sops_mac=a\nsops_mac=b\n").is_err());
        assert!(parse_dotenv("sops_age__list_99999__map_enc=a\n").is_err());
        assert!(parse_dotenv("sops_age__weird=a\n").is_err());
    }

    #[test]
    fn ini_sections() {
        let (data, sops) = parse_ini("top = 1\n\n[sec]\nk  = v\n[sops]\nmac = m\n").unwrap();
        assert_eq!(data.to_json().to_string(), r#"{"DEFAULT":{"top":"1"},"sec":{"k":"v"}}"#);
        assert_eq!(sops.unwrap().get("mac"), Some(&Node::Str("m".into())));
    }

    #[test]
    fn no_metadata_is_not_a_sops_document() {
        let err = Document::parse(Format::Yaml, "password: hunter2\n").unwrap_err();
        assert!(err.to_string().contains("not a SOPS document"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        let err = Document::parse(Format::Yaml, "a: [unclosed\n").unwrap_err();
        assert!(err.to_string().contains("line"), "{err}");
    }
}
