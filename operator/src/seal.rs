//! `syncret seal`: the Sealed Secrets workflow on syncret's own API. A Secret manifest (a file or stdin) becomes
//! a SOPS-encrypted ConfigMap manifest, safe to commit, plus the ExternalSecret that turns it back into the
//! Secret inside the cluster through a `sops` store. Encrypting needs only the cluster's age public key
//! (`--age age1…`; decrypting needs the private key, which only the cluster has) or an AWS KMS key the user may
//! encrypt with (`--kms <ARN>`, with the user's own credentials; the store decrypts with its `aws` auth).
//!
//! The document is what `sops` itself writes (YAML; the real `sops` CLI decrypts it with the matching identity),
//! so it can be edited with `sops edit` later.
use std::collections::BTreeMap;
use std::io::Read as _;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;
use syncret_providers::sops::agekey;
use syncret_providers::sops::seal::{self, WrappedKey};
use syncret_providers::sops::tree::Node;

use crate::cli::SealArgs;

/// The ConfigMap key the document is stored under: `<secret>.sops.yaml`.
fn document_key(secret: &str) -> String {
    format!("{secret}.sops.yaml")
}

fn read_input(args: &SealArgs) -> anyhow::Result<String> {
    match args.file.as_deref() {
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the Secret manifest from stdin")?;
            Ok(s)
        }
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the Secret manifest from stdin")?;
            Ok(s)
        }
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())),
    }
}

/// The Secret's values (`data` decoded, `stringData` on top, as the apiserver merges them).
fn values(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.clone().unwrap_or_default() {
        out.insert(k, v.into_bytes());
    }
    out
}

/// The data key wrapped by each AWS KMS key of `arns`, with the user's own AWS credentials. The calls run on a
/// runtime of their own, in a thread of their own, so `seal` stays a plain function wherever it is called from.
fn wrap_kms(
    arns: &[String],
    key: &syncret_providers::sops::cipher::DataKey,
    now: &str,
) -> anyhow::Result<Vec<WrappedKey>> {
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let config = seal::user_aws_config().await;
                let mut out = Vec::new();
                for arn in arns {
                    let call = seal::wrap_aws_kms(&config, arn, key, now);
                    let wrapped = tokio::time::timeout(std::time::Duration::from_secs(60), call)
                        .await
                        .map_err(|_| anyhow!("KMS Encrypt with {arn}: no answer within 60 s"))?
                        .map_err(|e| anyhow!("{e}"))?;
                    out.push(wrapped);
                }
                Ok(out)
            })
        })
        .join()
        .map_err(|_| anyhow!("wrapping the data key with KMS failed"))?
    })
}

/// Encrypts the Secret manifest `input` and returns the ConfigMap and ExternalSecret manifests (multi-document
/// YAML). `now` is the document's `lastmodified` (RFC 3339).
pub fn seal(args: &SealArgs, input: &str, now: &str) -> anyhow::Result<String> {
    let secret: Secret = serde_yaml::from_str(input).context("the input is not a Secret manifest")?;
    let name = secret
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("the Secret has no metadata.name"))?;
    let namespace = args
        .namespace
        .clone()
        .or_else(|| secret.metadata.namespace.clone())
        .unwrap_or_else(|| "default".into());
    if args.age.is_empty() && args.kms.is_empty() {
        bail!("give at least one recipient: --age age1… (the cluster's age public key) or --kms <KMS key ARN>");
    }
    let values = values(&secret);
    if values.is_empty() {
        bail!("the Secret has no data or stringData");
    }
    // Text values are stored as they are; if any value is binary, every value is stored base64 and the
    // ExternalSecret decodes them.
    let binary = values.values().any(|v| std::str::from_utf8(v).is_err());
    let tree = Node::Map(
        values
            .iter()
            .map(|(k, v)| {
                let text = if binary {
                    base64::engine::general_purpose::STANDARD.encode(v)
                } else {
                    String::from_utf8_lossy(v).into_owned()
                };
                (k.clone(), Node::Str(text))
            })
            .collect(),
    );
    let key = seal::new_data_key();
    let mut wrapped = Vec::new();
    for r in &args.age {
        let recipient = agekey::parse_recipient(r)?;
        wrapped.push(WrappedKey::Age {
            recipient: recipient.to_string(),
            enc: agekey::wrap(key.as_slice(), &recipient)?,
        });
    }
    wrapped.extend(wrap_kms(&args.kms, &key, now)?);
    let document = seal::seal_yaml(&tree, &key, &wrapped, now).map_err(|e| anyhow!("encrypting: {e}"))?;
    let cm_name = args.configmap.clone().unwrap_or_else(|| format!("{name}-sops"));
    let doc_key = document_key(&name);
    let mut data = serde_json::Map::new();
    data.insert(doc_key.clone(), document.into());
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": cm_name,
            "namespace": namespace,
            "annotations": {"syncret.dev/sealed-secret": name},
        },
        "data": data,
    });
    let mut extract = json!({"key": format!("{cm_name}/{doc_key}")});
    if binary {
        extract["decodingStrategy"] = "Base64".into();
    }
    let mut target = json!({"name": name, "creationPolicy": "Owner"});
    let type_ = secret.type_.clone().filter(|t| t != "Opaque");
    let labels = secret.metadata.labels.clone().filter(|l| !l.is_empty());
    let annotations = secret.metadata.annotations.clone().filter(|a| !a.is_empty());
    if type_.is_some() || labels.is_some() || annotations.is_some() {
        let mut template = json!({"engineVersion": "v2"});
        if let Some(t) = type_ {
            template["type"] = t.into();
        }
        let mut meta = serde_json::Map::new();
        if let Some(l) = labels {
            meta.insert("labels".into(), json!(l));
        }
        if let Some(a) = annotations {
            meta.insert("annotations".into(), json!(a));
        }
        if !meta.is_empty() {
            template["metadata"] = meta.into();
        }
        target["template"] = template;
    }
    let external_secret = json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "refreshInterval": args.refresh_interval,
            "secretStoreRef": {"name": args.store, "kind": args.store_kind},
            "target": target,
            "dataFrom": [{"extract": extract}],
        },
    });
    Ok(format!(
        "{}---\n{}",
        serde_yaml::to_string(&config_map)?,
        serde_yaml::to_string(&external_secret)?
    ))
}

/// `syncret seal`: reads the input, prints the manifests.
pub fn run(args: &SealArgs) -> anyhow::Result<String> {
    let input = read_input(args)?;
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    seal(args, &input, &now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncret_providers::sops::document::{Document, Format};
    use syncret_providers::sops::keys::{AgeIdentities, KeyRing};

    fn args(age: Vec<String>) -> SealArgs {
        SealArgs {
            file: None,
            age,
            kms: vec![],
            store: "sops".into(),
            store_kind: "SecretStore".into(),
            configmap: None,
            namespace: None,
            refresh_interval: "1h".into(),
        }
    }

    #[test]
    fn seals_a_secret_into_a_configmap_and_an_external_secret() {
        let id = age::x25519::Identity::generate();
        let input = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: app\ntype: kubernetes.io/basic-auth\n\
                     stringData:\n  username: admin\n  password: s3cr3t\n";
        let out = seal(&args(vec![id.to_public().to_string()]), input, "2026-01-01T00:00:00Z").unwrap();
        assert!(!out.contains("s3cr3t") && !out.contains("admin"), "{out}");
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&out)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs[0]["kind"], "ConfigMap");
        assert_eq!(docs[0]["metadata"]["name"], "db-sops");
        assert_eq!(docs[1]["spec"]["dataFrom"][0]["extract"]["key"], "db-sops/db.sops.yaml");
        assert_eq!(
            docs[1]["spec"]["target"]["template"]["type"],
            "kubernetes.io/basic-auth"
        );
        let es: syncret_crds::externalsecret::ExternalSecret = serde_yaml::from_value(docs[1].clone()).unwrap();
        assert!(es.spec.validate().is_empty(), "{:?}", es.spec.validate());

        let text = docs[0]["data"]["db.sops.yaml"].as_str().unwrap();
        let doc = Document::parse(Format::Yaml, text).unwrap();
        let ring = KeyRing {
            base: "spec.provider.sops".into(),
            unwrappers: vec![Box::new(AgeIdentities {
                field: "k".into(),
                identities: vec![id],
            })],
        };
        let key = futures::executor::block_on(ring.data_key(&doc.metadata, "db")).unwrap();
        let plain = doc.decrypt(&key).unwrap();
        assert_eq!(plain.to_json(), json!({"password": "s3cr3t", "username": "admin"}));
    }

    #[test]
    fn binary_values_are_stored_base64_and_decoded_by_the_external_secret() {
        let id = age::x25519::Identity::generate();
        let input = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bin\ndata:\n  blob: //79\n";
        let out = seal(&args(vec![id.to_public().to_string()]), input, "2026-01-01T00:00:00Z").unwrap();
        assert!(out.contains("decodingStrategy: Base64"), "{out}");
    }

    #[test]
    fn refuses_what_it_cannot_seal() {
        let input = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  a: b\n";
        assert!(seal(&args(vec![]), input, "t").is_err());
        let err = seal(&args(vec!["age1nope".into()]), input, "t").unwrap_err();
        assert!(err.to_string().contains("age1nope"), "{err}");
        assert!(seal(&args(vec!["x".into()]), "kind: Secret\nmetadata: {}\n", "t").is_err());
    }
}
