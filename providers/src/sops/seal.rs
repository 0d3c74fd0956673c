//! Writing SOPS documents (for `syncret seal`): the same format the `sops` CLI writes and reads — values
//! encrypted with a fresh data key, the MAC, and the data key wrapped for each recipient.
use sha2::{Digest, Sha512};

use super::SopsError;
use super::cipher::{self, DataKey};
use super::tree::Node;

/// The suffix SOPS leaves unencrypted by default (written into the metadata, as `sops` does).
pub const UNENCRYPTED_SUFFIX: &str = "_unencrypted";
/// The SOPS version written into the metadata: the format version this code writes (and the `sops` CLI reads).
pub const SOPS_VERSION: &str = "3.9.0";

/// A wrapped copy of the data key, as it goes into the metadata.
#[derive(Clone, Debug)]
pub enum WrappedKey {
    Age {
        recipient: String,
        enc: String,
    },
    Vault {
        address: String,
        engine_path: String,
        key_name: String,
        enc: String,
        created_at: String,
    },
    AwsKms {
        arn: String,
        enc: String,
        created_at: String,
    },
}

/// A fresh random data key.
pub fn new_data_key() -> DataKey {
    use rand::RngCore as _;
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(k.as_mut_slice());
    k
}

struct Sealer<'a> {
    key: &'a DataKey,
    hash: Sha512,
    path: Vec<String>,
}

impl Sealer<'_> {
    fn node(&mut self, node: &Node) -> Result<serde_yaml::Value, SopsError> {
        use serde_yaml::Value;
        match node {
            Node::Map(entries) => {
                let mut m = serde_yaml::Mapping::new();
                for (k, v) in entries {
                    self.path.push(k.clone());
                    let r = self.node(v);
                    self.path.pop();
                    m.insert(Value::String(k.clone()), r?);
                }
                Ok(Value::Mapping(m))
            }
            Node::List(items) => items
                .iter()
                .map(|v| self.node(v))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Sequence),
            Node::Null => Ok(Value::Null),
            Node::Str(s) if s.is_empty() => Ok(Value::String(String::new())),
            leaf => {
                let Some((bytes, kind)) = cipher::leaf_bytes(leaf) else {
                    return Ok(Value::Null);
                };
                self.hash.update(&bytes);
                if self.path.iter().any(|k| k.ends_with(UNENCRYPTED_SUFFIX)) {
                    return Ok(match leaf {
                        Node::Str(s) => Value::String(s.clone()),
                        other => serde_yaml::to_value(other.to_json())
                            .map_err(|_| SopsError::format("unrepresentable value"))?,
                    });
                }
                let aad = cipher::additional_data(&self.path);
                Ok(Value::String(cipher::encrypt(&bytes, kind, self.key, &aad)?))
            }
        }
    }
}

/// Encrypts `tree` (a map) with `key` into a SOPS YAML document whose metadata lists `wrapped` and whose
/// `lastmodified` is `last_modified` (RFC 3339, UTC).
pub fn seal_yaml(tree: &Node, key: &DataKey, wrapped: &[WrappedKey], last_modified: &str) -> Result<String, SopsError> {
    use serde_yaml::{Mapping, Value};
    if !matches!(tree, Node::Map(_)) {
        return Err(SopsError::format("a document to seal is a map"));
    }
    if tree.get("sops").is_some() {
        return Err(SopsError::format(
            "a document to seal cannot have a top-level key named sops",
        ));
    }
    let mut sealer = Sealer {
        key,
        hash: Sha512::new(),
        path: Vec::new(),
    };
    let Value::Mapping(mut doc) = sealer.node(tree)? else {
        return Err(SopsError::format("a document to seal is a map"));
    };
    let digest = sealer.hash.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    let mac = cipher::encrypt(hex.as_bytes(), cipher::ValueType::Str, key, last_modified.as_bytes())?;

    let s = |v: &str| Value::String(v.to_string());
    let mut meta = Mapping::new();
    let mut age = Vec::new();
    let mut kms = Vec::new();
    let mut vault = Vec::new();
    for w in wrapped {
        let mut e = Mapping::new();
        match w {
            WrappedKey::Age { recipient, enc } => {
                e.insert(s("recipient"), s(recipient));
                e.insert(s("enc"), s(enc));
                age.push(Value::Mapping(e));
            }
            WrappedKey::AwsKms { arn, enc, created_at } => {
                e.insert(s("arn"), s(arn));
                e.insert(s("created_at"), s(created_at));
                e.insert(s("enc"), s(enc));
                e.insert(s("aws_profile"), s(""));
                kms.push(Value::Mapping(e));
            }
            WrappedKey::Vault {
                address,
                engine_path,
                key_name,
                enc,
                created_at,
            } => {
                e.insert(s("vault_address"), s(address));
                e.insert(s("engine_path"), s(engine_path));
                e.insert(s("key_name"), s(key_name));
                e.insert(s("created_at"), s(created_at));
                e.insert(s("enc"), s(enc));
                vault.push(Value::Mapping(e));
            }
        }
    }
    for (name, list) in [("kms", kms), ("hc_vault", vault), ("age", age)] {
        if !list.is_empty() {
            meta.insert(s(name), Value::Sequence(list));
        }
    }
    meta.insert(s("lastmodified"), s(last_modified));
    meta.insert(s("mac"), Value::String(mac));
    meta.insert(s("unencrypted_suffix"), s(UNENCRYPTED_SUFFIX));
    meta.insert(s("version"), s(SOPS_VERSION));
    doc.insert(s("sops"), Value::Mapping(meta));
    let text = serde_yaml::to_string(&Value::Mapping(doc))
        .map_err(|_| SopsError::format("the document does not serialise"))?;
    // SOPS reads `lastmodified` as a string: quote the timestamp, which YAML would otherwise type as one.
    let plain = format!("\n  lastmodified: {last_modified}\n");
    Ok(text.replacen(&plain, &format!("\n  lastmodified: '{last_modified}'\n"), 1))
}

#[cfg(test)]
mod tests {
    use super::super::agekey;
    use super::super::document::{Document, Format};
    use super::super::keys::{AgeIdentities, KeyRing};
    use super::*;

    #[tokio::test]
    async fn sealed_documents_read_back_and_tampering_is_caught() {
        let id = age::x25519::Identity::generate();
        let key = new_data_key();
        let enc = agekey::wrap(key.as_slice(), &id.to_public()).unwrap();
        let tree = Node::Map(vec![
            ("user".into(), Node::Str("admin".into())),
            ("password".into(), Node::Str("s3cr3t\nline2".into())),
            ("note_unencrypted".into(), Node::Str("visible".into())),
            ("empty".into(), Node::Str(String::new())),
        ]);
        let text = seal_yaml(
            &tree,
            &key,
            &[WrappedKey::Age {
                recipient: id.to_public().to_string(),
                enc,
            }],
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
        assert!(!text.contains("s3cr3t") && !text.contains("admin"), "{text}");
        assert!(text.contains("visible"));
        assert!(text.contains("\n  lastmodified: '2026-01-01T00:00:00Z'\n"), "{text}");

        let doc = Document::parse(Format::Yaml, &text).unwrap();
        let ring = KeyRing {
            base: "spec.provider.sops".into(),
            unwrappers: vec![Box::new(AgeIdentities {
                field: "spec.provider.sops.keys.age[0]".into(),
                identities: vec![id],
            })],
        };
        let dk = ring.data_key(&doc.metadata, "doc").await.unwrap();
        assert_eq!(doc.decrypt(&dk).unwrap(), tree);

        // A clear value changed: the MAC catches it.
        let tampered = text.replace("visible", "changed");
        let doc = Document::parse(Format::Yaml, &tampered).unwrap();
        assert!(matches!(doc.decrypt(&dk), Err(SopsError::Tampered(_))));
        // Two encrypted values swapped: their paths (the additional data) catch it.
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let u = lines.iter().position(|l| l.starts_with("user:")).unwrap();
        let p = lines.iter().position(|l| l.starts_with("password:")).unwrap();
        let (uv, pv) = (
            lines[u]["user:".len()..].to_string(),
            lines[p]["password:".len()..].to_string(),
        );
        lines[u] = format!("user:{pv}");
        lines[p] = format!("password:{uv}");
        let doc = Document::parse(Format::Yaml, &lines.join("\n")).unwrap();
        assert!(matches!(doc.decrypt(&dk), Err(SopsError::Tampered(_))));
        // A value removed: the MAC catches it.
        let removed: Vec<&str> = text.lines().filter(|l| !l.starts_with("user:")).collect();
        let doc = Document::parse(Format::Yaml, &removed.join("\n")).unwrap();
        assert!(matches!(doc.decrypt(&dk), Err(SopsError::Tampered(_))));
    }
}
