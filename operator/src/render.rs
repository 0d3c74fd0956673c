//! `syncret render`: the Secret an ExternalSecret would produce, computed locally with the same pure code the
//! controller uses — read plan, assembly (decoding, rewrite, conversion), template, and the write plan — with
//! remote values from a JSON file or a fake-provider store manifest instead of a provider. No cluster needed.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use syncret_crds::externalsecret::ExternalSecret;
use syncret_crds::secretstore::SecretStore;
use syncret_providers::{RemoteValue, SecretValue};

use crate::cli::RenderArgs;
use crate::sync::desired::{self, TemplateSources};
use crate::sync::fetch::{self, Answers, Item, ReadError};
use crate::sync::secret::{self, Write};
use syncret_template::{Delims, Template, Value};

/// (key, version) → value.
type Values = BTreeMap<(String, String), String>;

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn values_from_json(text: &str) -> anyhow::Result<Values> {
    let v: serde_json::Value = serde_json::from_str(text).context("--data must be a JSON object")?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("--data must be a JSON object of remote key → value"))?;
    Ok(obj
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            ((k.clone(), String::new()), text)
        })
        .collect())
}

fn values_from_store(text: &str) -> anyhow::Result<Values> {
    let store: SecretStore = serde_yaml::from_str(text).context("--store must be a SecretStore/ClusterSecretStore")?;
    let fake = store
        .spec
        .provider
        .fake
        .ok_or_else(|| anyhow!("--store: only the fake provider can be rendered offline"))?;
    Ok(fake.data.into_iter().map(|d| ((d.key, d.version), d.value)).collect())
}

fn not_found(key: &str) -> ReadError {
    ReadError {
        reason: "SecretNotFound",
        message: format!("secret {key:?} does not exist"),
        not_found: true,
        retry_after: None,
    }
}

fn answers(plan: &fetch::Plan, values: &Values) -> Answers {
    let mut answers = Answers::default();
    for (store, keys) in plan.gets() {
        for k in keys {
            let v = if k.fetch_metadata {
                Err(ReadError {
                    reason: "Unsupported",
                    message: "metadataPolicy: Fetch cannot be rendered offline".into(),
                    not_found: false,
                    retry_after: None,
                })
            } else {
                values
                    .get(&(k.key.clone(), k.version.clone().unwrap_or_default()))
                    .map(|v| RemoteValue::Bytes(SecretValue::from(v.as_str())))
                    .ok_or_else(|| not_found(&k.key))
            };
            answers.gets.insert((store.clone(), k), v);
        }
    }
    for item in &plan.items {
        if let Item::Find { index, query, .. } = item {
            let found: BTreeMap<String, SecretValue> = values
                .iter()
                .filter(|((k, _), _)| query.matches_name(k))
                .map(|((k, _), v)| (k.clone(), SecretValue::from(v.as_str())))
                .collect();
            answers.finds.insert(*index, Ok(found));
        }
    }
    answers
}

fn template_sources(paths: &[std::path::PathBuf]) -> anyhow::Result<TemplateSources> {
    let mut out = TemplateSources::default();
    for p in paths {
        let text = read(p)?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(doc)?;
            match v.get("kind").and_then(|k| k.as_str()) {
                Some("ConfigMap") => {
                    let cm: ConfigMap = serde_yaml::from_value(v)?;
                    out.config_maps.insert(
                        cm.metadata.name.clone().unwrap_or_default(),
                        cm.data.unwrap_or_default(),
                    );
                }
                Some("Secret") => {
                    let s: Secret = serde_yaml::from_value(v)?;
                    let mut data: BTreeMap<String, Vec<u8>> =
                        s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                    data.extend(
                        s.string_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes())),
                    );
                    out.secrets.insert(s.metadata.name.clone().unwrap_or_default(), data);
                }
                _ => bail!("{}: --template-from takes ConfigMaps and Secrets", p.display()),
            }
        }
    }
    Ok(out)
}

/// Renders and returns the Secret as YAML.
pub fn run(args: &RenderArgs) -> anyhow::Result<String> {
    let mut es: ExternalSecret = serde_yaml::from_str(&read(&args.file)?).context("parsing the ExternalSecret")?;
    if es.metadata.namespace.is_none() {
        es.metadata.namespace = Some("default".into());
    }
    let problems = es.spec.validate();
    if !problems.is_empty() {
        bail!("invalid ExternalSecret: {}", syncret_crds::validate::join(&problems));
    }
    let values = match (&args.data, &args.store) {
        (Some(d), _) => values_from_json(&read(d)?)?,
        (None, Some(s)) => values_from_store(&read(s)?)?,
        (None, None) => bail!("give remote values with --data values.json or --store store.yaml"),
    };
    let plan = fetch::plan(&es).map_err(|e| anyhow!("invalid ExternalSecret: {e}"))?;
    let answers = answers(&plan, &values);
    let delims = Delims::default();
    let transform = |tpl: &str, k: &str| -> Result<String, String> {
        let data: BTreeMap<String, Vec<u8>> = [("value".to_string(), k.as_bytes().to_vec())].into();
        Template::parse("transform", tpl, &delims)
            .and_then(|t| t.execute(&Value::from_data(&data)))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.message)
    };
    let assembled = fetch::assemble(&plan, &answers, es.spec.target.deletion_policy, &transform)
        .map_err(|e| anyhow!("could not get secret data: {e}"))?;
    for m in &assembled.missing {
        eprintln!("warning: secret does not exist using {} (key={})", m.field, m.key);
    }
    let sources = template_sources(&args.template_from)?;
    let desired = desired::desired(&es, assembled.data, &sources, &delims)
        .map_err(|e| anyhow!("could not apply template: {e}"))?;
    let target = es.target_name().unwrap_or_default().to_string();
    let mut secret = match secret::plan(&es, &target, &desired, None).map_err(|e| anyhow!("{e}"))? {
        Write::Apply { secret, .. } => *secret,
        Write::Missing => bail!("creationPolicy Merge: the Secret would only be merged into an existing one"),
        Write::Skip => bail!("creationPolicy None: nothing would be written"),
        Write::Unchanged => bail!("nothing to write"),
    };
    secret.metadata.owner_references = None;
    let mut doc = serde_json::to_value(&secret)?;
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("apiVersion".into(), "v1".into());
        obj.insert("kind".into(), "Secret".into());
        if args.decode {
            let data = secret.data.clone().unwrap_or_default();
            let mut text = serde_json::Map::new();
            let mut binary = serde_json::Map::new();
            for (k, v) in data {
                match String::from_utf8(v.0.clone()) {
                    Ok(s) => {
                        text.insert(k, s.into());
                    }
                    Err(_) => {
                        binary.insert(k, base64::engine::general_purpose::STANDARD.encode(&v.0).into());
                    }
                }
            }
            obj.remove("data");
            if !binary.is_empty() {
                obj.insert("data".into(), binary.into());
            }
            obj.insert("stringData".into(), text.into());
        }
    }
    Ok(serde_yaml::to_string(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_quickstart() {
        let dir = std::env::temp_dir().join(format!("syncret-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let quick = read(&root.join("examples/quickstart.yaml")).unwrap();
        let docs: Vec<&str> = quick.split("\n---\n").collect();
        std::fs::write(dir.join("store.yaml"), docs[1]).unwrap();
        std::fs::write(dir.join("es.yaml"), docs[2]).unwrap();
        let args = RenderArgs {
            file: dir.join("es.yaml"),
            data: None,
            store: Some(dir.join("store.yaml")),
            template_from: vec![],
            decode: true,
        };
        let out = run(&args).unwrap();
        assert!(
            out.contains("DATABASE_URL: postgres://app:s3cr3t-from-the-store@db.demo.svc:5432/app"),
            "{out}"
        );
        assert!(out.contains("API_TOKEN: token-123"), "{out}");
        assert!(out.contains("reconcile.external-secrets.io/data-hash"), "{out}");
        std::fs::write(
            dir.join("values.json"),
            r#"{"/demo/db": {"username":"u","password":"p","host":"h"}}"#,
        )
        .unwrap();
        let args = RenderArgs {
            data: Some(dir.join("values.json")),
            store: None,
            decode: false,
            ..args
        };
        let err = run(&args).unwrap_err().to_string();
        assert!(err.contains("spec.data[0]") || err.contains("token"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
