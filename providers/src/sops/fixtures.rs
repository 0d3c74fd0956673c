//! Documents encrypted by the real `sops` CLI (`e2e/sops/fixtures.sh` regenerates them) decrypt to their
//! plaintext, in every format; tampering, a wrong key and too few key groups are refused.
use std::path::PathBuf;

use super::SopsError;
use super::document::{Document, Format};
use super::keys::{AgeIdentities, KeyRing};
use super::tree::Node;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sops")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap()
}

fn ring(keys: &[&str]) -> KeyRing {
    KeyRing {
        base: "spec.provider.sops".into(),
        unwrappers: keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Box::new(AgeIdentities {
                    field: format!("spec.provider.sops.keys.age[{i}]"),
                    identities: super::agekey::parse_identities(read(&format!("{k}.txt")).as_bytes()).unwrap(),
                }) as Box<dyn super::keys::Unwrapper>
            })
            .collect(),
    }
}

async fn decrypt(name: &str, keys: &[&str]) -> Result<Node, SopsError> {
    decrypt_text(name, &read(name), keys).await
}

async fn decrypt_text(name: &str, text: &str, keys: &[&str]) -> Result<Node, SopsError> {
    let doc = Document::parse(Format::detect(name, text), text)?;
    let key = ring(keys).data_key(&doc.metadata, name).await?;
    doc.decrypt(&key)
}

/// The plaintext as the provider returns it.
fn plain_json(name: &str) -> serde_json::Value {
    let text = read(&format!("plain/{name}"));
    match Format::detect(name, &text) {
        Format::Yaml => serde_yaml::from_str::<Node>(&text).unwrap().to_json(),
        Format::Json => serde_json::from_str::<Node>(&text).unwrap().to_json(),
        Format::Dotenv => serde_json::Value::Object(
            text.lines()
                .filter(|l| !l.starts_with('#') && l.contains('='))
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.to_string(), serde_json::Value::String(v.to_string()))
                })
                .collect(),
        ),
        Format::Ini => {
            serde_json::json!({"DEFAULT": {"top": "1"}, "sec": {"k": "v", "k2": "v two"}, "other": {"x": "y"}})
        }
    }
}

#[tokio::test]
async fn every_format_decrypts_to_its_plaintext_with_either_recipient() {
    for name in ["basic.yaml", "basic.json", "basic.env", "basic.ini"] {
        for key in ["key1", "key2"] {
            let got = decrypt(name, &[key])
                .await
                .unwrap_or_else(|e| panic!("{name} with {key}: {e}"));
            assert_eq!(got.to_json(), plain_json(name), "{name} with {key}");
        }
    }
    let yaml = decrypt("basic.yaml", &["key1"]).await.unwrap();
    assert_eq!(yaml.get("db").and_then(|d| d.get("port")), Some(&Node::Int(5432)));
    assert_eq!(yaml.get("db").and_then(|d| d.get("ratio")), Some(&Node::Float(1.5)));
}

#[tokio::test]
async fn a_key_that_is_not_a_recipient_is_refused_naming_the_store_field() {
    let err = decrypt("basic.yaml", &["key3"]).await.unwrap_err();
    let SopsError::NoKey { field, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(field, "spec.provider.sops.keys.age[0]");
    assert!(message.contains("age age1"), "{message}");
    assert!(!message.contains("s3cr3t"));
}

#[tokio::test]
async fn key_groups_need_their_threshold() {
    for keys in [&["key1", "key2"][..], &["key1", "key3"], &["key3", "key2"]] {
        let got = decrypt("groups.yaml", keys)
            .await
            .unwrap_or_else(|e| panic!("{keys:?}: {e}"));
        assert_eq!(got.to_json(), plain_json("groups.yaml"));
    }
    let err = decrypt("groups.yaml", &["key2"]).await.unwrap_err();
    let SopsError::NoKey { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains("recovered 1 of the 2 key-group shares"), "{message}");
}

#[tokio::test]
async fn encryption_rules_and_mac_over_encrypted_values_only() {
    let got = decrypt("regex.yaml", &["key1"]).await.unwrap();
    assert_eq!(got.to_json(), plain_json("regex.yaml"));
    // mac_only_encrypted: a clear value may change without breaking the MAC …
    let text = read("regex.yaml").replace("name: db", "name: other");
    assert!(decrypt_text("regex.yaml", &text, &["key1"]).await.is_ok());
}

#[tokio::test]
async fn tampered_documents_are_refused() {
    let text = read("basic.yaml");
    // A clear value changed.
    let changed = text.replace("visible", "changed");
    let err = decrypt_text("basic.yaml", &changed, &["key1"]).await.unwrap_err();
    assert!(matches!(err, SopsError::Tampered(_)), "{err:?}");
    // An encrypted value moved to another key.
    let lines: Vec<&str> = text.lines().collect();
    let user = lines.iter().find(|l| l.trim_start().starts_with("user:")).unwrap();
    let enc = user.trim_start().trim_start_matches("user:").trim();
    let moved: String = lines
        .iter()
        .map(|l| {
            if l.trim_start().starts_with("password:") {
                format!("    password: {enc}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let err = decrypt_text("basic.yaml", &moved, &["key1"]).await.unwrap_err();
    assert!(matches!(err, SopsError::Tampered(_)), "{err:?}");
    // A value added in clear where values are encrypted.
    let added = text.replace("db:\n", "db:\n    injected: evil\n");
    assert!(matches!(
        decrypt_text("basic.yaml", &added, &["key1"]).await,
        Err(SopsError::Tampered(_))
    ));
    // dotenv and JSON too.
    let env = read("basic.env");
    let dropped: String = env
        .lines()
        .filter(|l| !l.starts_with("B="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(matches!(
        decrypt_text("basic.env", &dropped, &["key1"]).await,
        Err(SopsError::Tampered(_))
    ));
    // The MAC itself replaced by another document's.
    let other_mac = read("groups.yaml")
        .lines()
        .find(|l| l.trim_start().starts_with("mac:"))
        .unwrap()
        .to_string();
    let swapped: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("mac:") {
                other_mac.clone()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(matches!(
        decrypt_text("basic.yaml", &swapped, &["key1"]).await,
        Err(SopsError::Tampered(_))
    ));
}

#[tokio::test]
async fn mac_only_encrypted_and_encrypted_regex_each_alone() {
    for name in ["regex-only.yaml", "maconly.yaml"] {
        let got = decrypt(name, &["key1"]).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.to_json(), plain_json(name), "{name}");
    }
}
