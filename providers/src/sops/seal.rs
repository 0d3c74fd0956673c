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

/// The data key wrapped by the AWS KMS key `arn` (what `sops --kms` writes), with `config`'s credentials in the
/// key's region. For `syncret seal` the config is the user's own ([`user_aws_config`]): sealing runs on a
/// workstation or in CI, never with the operator's identity.
pub async fn wrap_aws_kms(
    config: &aws_config::SdkConfig,
    arn: &str,
    key: &DataKey,
    created_at: &str,
) -> Result<WrappedKey, SopsError> {
    use base64::Engine as _;
    let region = super::kms::arn_region(arn)
        .ok_or_else(|| SopsError::format(format!("{arn:?} is not a KMS key ARN (arn:aws:kms:<region>:…)")))?;
    let conf = aws_sdk_kms::config::Builder::from(config)
        .region(aws_config::Region::new(region.to_string()))
        .build();
    let out = aws_sdk_kms::Client::from_conf(conf)
        .encrypt()
        .key_id(arn)
        .plaintext(aws_smithy_types::Blob::new(key.to_vec()))
        .send()
        .await
        .map_err(|e| {
            let e = aws_sdk_kms::error::DisplayErrorContext(e).to_string();
            SopsError::format(format!(
                "KMS Encrypt with {arn}: {}",
                e.chars().take(300).collect::<String>()
            ))
        })?;
    let blob = out
        .ciphertext_blob
        .ok_or_else(|| SopsError::format(format!("KMS Encrypt with {arn} returned no ciphertext")))?;
    Ok(WrappedKey::AwsKms {
        arn: arn.to_string(),
        enc: base64::engine::general_purpose::STANDARD.encode(blob.as_ref()),
        created_at: created_at.to_string(),
    })
}

/// The user's AWS configuration (environment, profile, SSO, instance role: the SDK's default chain), as the
/// `aws` and `sops` CLIs would use it.
pub async fn user_aws_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        // Each key is called in its ARN's region; a fixed default spares the region lookup (IMDS off AWS).
        .region(aws_config::Region::new("us-east-1"))
        .http_client(http)
        .load()
        .await
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
    // SOPS reads `lastmodified` and each key's `created_at` as strings: quote the timestamps, which YAML would
    // otherwise type as timestamps (and `sops` then refuses the document).
    // Only in the `sops` metadata (the last top-level key), never in the document's own values.
    let mut in_sops = false;
    Ok(text
        .lines()
        .map(|line| {
            if !line.starts_with([' ', '-']) {
                in_sops = line == "sops:";
            }
            let trimmed = line.trim_start_matches([' ', '-']);
            match trimmed.split_once(": ") {
                Some(("lastmodified" | "created_at", value)) if in_sops && !value.starts_with(['\'', '"']) => {
                    let indent = &line[..line.len() - trimmed.len()];
                    let name = trimmed.split_once(':').map_or("", |(n, _)| n);
                    format!("{indent}{name}: '{value}'\n")
                }
                _ => format!("{line}\n"),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::agekey;
    use super::super::document::{Document, Format};
    use super::super::keys::{AgeIdentities, KeyRing};
    use super::*;

    #[test]
    fn key_timestamps_are_strings_in_the_metadata_only() {
        let key = new_data_key();
        let tree = Node::Map(vec![(
            "config_unencrypted".into(),
            Node::Map(vec![("created_at".into(), Node::Str("a\nb".into()))]),
        )]);
        let wrapped = [WrappedKey::AwsKms {
            arn: "arn:aws:kms:eu-west-1:123456789012:key/k".into(),
            enc: "Y2lwaGVy".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }];
        let text = seal_yaml(&tree, &key, &wrapped, "2026-01-01T00:00:00Z").unwrap();
        // `sops` refuses a created_at it reads as a YAML timestamp.
        assert!(text.contains("created_at: '2026-01-01T00:00:00Z'"), "{text}");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert!(doc["sops"]["kms"][0]["created_at"].is_string());
        assert!(doc["sops"]["lastmodified"].is_string());
        // The document's own values are left as written (a block scalar stays one).
        assert_eq!(doc["config_unencrypted"]["created_at"], "a\nb");
    }

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
