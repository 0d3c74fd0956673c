//! Builds the CustomResourceDefinitions from the types and renders them as YAML (`deploy/crds/`).
//!
//! The derive output is post-processed so the CRDs match ESO's where the derive differs: `listKind` is set,
//! the root schema lists `apiVersion`, `kind` and `metadata`,
//! `nullable` is kept only where ESO has `+nullable` (elsewhere the apiserver then prunes `null`s before they can
//! reach a watch), schemars' `title`s are dropped, and the CEL rules of [`crate::rules`] that belong to the schema
//! (ESO's own `x-kubernetes-validations`) are added where the rule table puts them. Keys are written sorted, so the YAML does not depend on
//! which serde_json features the build happens to enable.
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::CustomResourceExt;
use serde_json::Value;

use crate::schema::NULLABLE_MARKER;

/// Why CRDs could not be rendered, written or compared.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("could not convert a CRD to JSON")]
    Json(#[source] serde_json::Error),
    #[error("could not render a CRD as YAML")]
    Yaml(#[source] serde_yaml::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// All CRDs syncret serves, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [
        crate::ExternalSecret::crd(),
        crate::ClusterExternalSecret::crd(),
        crate::SecretStore::crd(),
        crate::ClusterSecretStore::crd(),
        crate::PushSecret::crd(),
        crate::ClusterPushSecret::crd(),
        crate::generator::Password::crd(),
        crate::generator::UUID::crd(),
        crate::generator::SSHKey::crd(),
        crate::generator::Fake::crd(),
        crate::generator::ECRAuthorizationToken::crd(),
        crate::generator::STSSessionToken::crd(),
        crate::generator::VaultDynamicSecret::crd(),
        crate::generator::Webhook::crd(),
        crate::generator::MFA::crd(),
        crate::generator::GithubAccessToken::crd(),
        crate::generator::ClusterGenerator::crd(),
        crate::generator::GeneratorState::crd(),
    ]
    .into_iter()
    .map(finish)
    .collect()
}

/// Applies the post-processing described in the module docs.
fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    // ESO's generators have a status subresource and no status; GeneratorState has a status and no subresource.
    if crd.spec.group == crate::generator::GROUP {
        let generator = crd.spec.names.kind != "GeneratorState";
        for v in &mut crd.spec.versions {
            v.subresources = generator.then(|| {
                k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceSubresources {
                    status: Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceSubresourceStatus(
                        serde_json::json!({}),
                    )),
                    scale: None,
                }
            });
        }
    }
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    if let Some(versions) = value.pointer_mut("/spec/versions").and_then(Value::as_array_mut) {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                clean_schema(schema);
                add_type_meta(schema);
                crate::admission::add_crd_rules(&crd.spec.names.kind, schema);
            }
        }
    }
    serde_json::from_value(value).unwrap_or(crd)
}

/// Marks a field (as its `title`, which survives kube-derive's conversion where an extension key would not) that
/// ESO lists in `required` although it has a default (kubebuilder's `+kubebuilder:default` on a field without
/// `omitempty`); schemars leaves every field with a serde default out of `required`. The apiserver
/// fills the default before it validates, so this changes no outcome; it keeps the schema ESO's.
const REQUIRED_MARKER: &str = "x-syncret-required";

fn clean_schema(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let mut required_with_default: Vec<String> = Vec::new();
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for (name, prop) in props.iter_mut() {
                    if let Some(p) = prop.as_object_mut()
                        && p.get("title").and_then(Value::as_str) == Some(REQUIRED_MARKER)
                    {
                        p.remove("title");
                        required_with_default.push(name.clone());
                    }
                }
            }
            if !required_with_default.is_empty()
                && let Value::Array(required) = map.entry("required").or_insert_with(|| Value::Array(Vec::new()))
            {
                for name in required_with_default {
                    if !required.iter().any(|r| r.as_str() == Some(name.as_str())) {
                        required.push(Value::String(name));
                    }
                }
            }
            let keep_null = map.remove("title").is_some_and(|t| t == NULLABLE_MARKER);
            map.remove("nullable");
            if keep_null {
                map.insert("nullable".into(), Value::Bool(true));
            } else if let Some(Value::Array(values)) = map.get_mut("enum") {
                // schemars lists `null` among the values of an optional enum.
                values.retain(|v| !v.is_null());
            }
            for (key, child) in map.iter_mut() {
                // `default` and `enum` hold data, not schemas.
                if key != "default" && key != "enum" && key != "x-kubernetes-validations" {
                    clean_schema(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(clean_schema),
        _ => {}
    }
}

/// Adds `apiVersion`, `kind` and `metadata` to the root schema, as controller-gen does (for `kubectl explain`), and
/// leaves `spec` out of the root's `required` (kube-derive puts it there; ESO requires nothing at the root).
fn add_type_meta(schema: &mut Value) {
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|r| r.as_str() != Some("spec"));
        if required.is_empty()
            && let Some(map) = schema.as_object_mut()
        {
            map.remove("required");
        }
    }
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.entry("apiVersion").or_insert_with(|| {
            serde_json::json!({
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string"
            })
        });
        props.entry("kind").or_insert_with(|| {
            serde_json::json!({
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string"
            })
        });
        props
            .entry("metadata")
            .or_insert_with(|| serde_json::json!({ "type": "object" }));
    }
}

/// File name of a CRD under `deploy/crds/`: `<plural>.<group>.yaml`, e.g. `externalsecrets.external-secrets.io.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document (keys sorted).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, GenerateError> {
    to_sorted_yaml(serde_json::to_value(crd).map_err(GenerateError::Json)?)
}

/// Any JSON value as a YAML document with sorted keys.
pub(crate) fn to_sorted_yaml(value: Value) -> Result<String, GenerateError> {
    serde_yaml::to_string(&sorted(value)).map_err(GenerateError::Yaml)
}

fn sorted(value: Value) -> serde_yaml::Value {
    match value {
        Value::Null => serde_yaml::Value::Null,
        Value::Bool(b) => serde_yaml::Value::Bool(b),
        Value::Number(n) => serde_yaml::to_value(n).unwrap_or(serde_yaml::Value::Null),
        Value::String(s) => serde_yaml::Value::String(s),
        Value::Array(items) => serde_yaml::Value::Sequence(items.into_iter().map(sorted).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_yaml::Value::Mapping(
                entries
                    .into_iter()
                    .map(|(k, v)| (serde_yaml::Value::String(k), sorted(v)))
                    .collect(),
            )
        }
    }
}

/// Every CRD as `(file name, YAML)`.
pub fn render() -> Result<Vec<(String, String)>, GenerateError> {
    crds().iter().map(|crd| Ok((file_name(crd), to_yaml(crd)?))).collect()
}

/// All CRDs as one multi-document YAML stream (what `syncret crds` prints).
pub fn multi_document() -> Result<String, GenerateError> {
    let docs = render()?;
    Ok(docs.into_iter().map(|(_, yaml)| format!("---\n{yaml}")).collect())
}

/// Writes one file per CRD into `dir` (created if missing) and returns the paths written.
pub fn write_dir(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    std::fs::create_dir_all(dir).map_err(|source| GenerateError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for (name, yaml) in render()? {
        let path = dir.join(name);
        std::fs::write(&path, yaml).map_err(|source| GenerateError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Compares `dir` with what [`write_dir`] would write; returns one line per file that is missing, differs, or
/// is a `*.external-secrets.io.yaml` CRD file the types no longer produce.
pub fn check_dir(dir: &Path) -> Result<Vec<String>, GenerateError> {
    let mut drift = Vec::new();
    let rendered = render()?;
    let entries = std::fs::read_dir(dir).map_err(|source| GenerateError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| GenerateError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".external-secrets.io.yaml") && !rendered.iter().any(|(n, _)| *n == name) {
            drift.push(format!(
                "{} is not generated by the types any more",
                entry.path().display()
            ));
        }
    }
    for (name, yaml) in rendered {
        let path = dir.join(&name);
        match std::fs::read_to_string(&path) {
            Ok(on_disk) if on_disk == yaml => {}
            Ok(on_disk) => drift.push(format!(
                "{} differs from the types ({})",
                path.display(),
                first_difference(&on_disk, &yaml)
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => drift.push(format!("{} is missing", path.display())),
            Err(source) => return Err(GenerateError::Io { path, source }),
        }
    }
    Ok(drift)
}

pub(crate) fn first_difference(old: &str, new: &str) -> String {
    let mut old_lines = old.lines();
    for (n, line) in new.lines().enumerate() {
        match old_lines.next() {
            Some(o) if o == line => {}
            Some(o) => return format!("line {}: committed {:?}, generated {:?}", n + 1, o, line),
            None => return format!("line {}: committed file ends, generated {:?}", n + 1, line),
        }
    }
    format!("committed file has extra lines after line {}", new.lines().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_crd_per_kind_with_eso_names() {
        let names: Vec<String> = crds().iter().map(file_name).collect();
        assert_eq!(
            names,
            [
                "externalsecrets.external-secrets.io.yaml",
                "clusterexternalsecrets.external-secrets.io.yaml",
                "secretstores.external-secrets.io.yaml",
                "clustersecretstores.external-secrets.io.yaml",
                "pushsecrets.external-secrets.io.yaml",
                "clusterpushsecrets.external-secrets.io.yaml",
                "passwords.generators.external-secrets.io.yaml",
                "uuids.generators.external-secrets.io.yaml",
                "sshkeys.generators.external-secrets.io.yaml",
                "fakes.generators.external-secrets.io.yaml",
                "ecrauthorizationtokens.generators.external-secrets.io.yaml",
                "stssessiontokens.generators.external-secrets.io.yaml",
                "vaultdynamicsecrets.generators.external-secrets.io.yaml",
                "webhooks.generators.external-secrets.io.yaml",
                "mfas.generators.external-secrets.io.yaml",
                "githubaccesstokens.generators.external-secrets.io.yaml",
                "clustergenerators.generators.external-secrets.io.yaml",
                "generatorstates.generators.external-secrets.io.yaml",
            ]
        );
    }

    #[test]
    fn required_as_eso_has_it() {
        let schema = |kind: &str| {
            let crd = crds().into_iter().find(|c| c.spec.names.kind == kind).unwrap();
            serde_json::to_value(&crd.spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone()
        };
        let required = |v: &Value| -> Vec<String> {
            let mut r: Vec<String> = v["required"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            r.sort();
            r
        };
        // Nothing at the root (kube-derive would require `spec`).
        for kind in ["ExternalSecret", "SecretStore", "Password", "GeneratorState"] {
            assert!(required(&schema(kind)).is_empty(), "{kind}");
        }
        // Required although defaulted, as ESO's kubebuilder markers make them; the marker itself is gone.
        let password = schema("Password");
        assert_eq!(
            required(&password["properties"]["spec"]),
            ["allowRepeat", "length", "noUpper"]
        );
        assert_eq!(password["properties"]["spec"]["properties"]["length"]["default"], 24);
        assert!(
            password["properties"]["spec"]["properties"]["length"]
                .get("title")
                .is_none()
        );
        let auth = &schema("SecretStore")["properties"]["spec"]["properties"]["provider"]["properties"]["vault"]["properties"]
            ["auth"]["properties"];
        assert_eq!(required(&auth["kubernetes"]), ["mountPath", "role"]);
        assert!(required(&auth["appRole"]).contains(&"path".to_owned()));
    }

    #[test]
    fn nullable_only_where_marked() {
        let mut schema = serde_json::json!({
            "title": "X",
            "properties": {
                "a": { "type": "string", "nullable": true },
                "b": { "type": "string", "format": "date-time", "nullable": true, "title": "x-syncret-nullable" },
                "c": { "type": "object", "default": { "nullable": true, "title": "data" } },
                "d": { "type": "string", "enum": ["A", null], "nullable": true }
            }
        });
        clean_schema(&mut schema);
        assert_eq!(
            schema,
            serde_json::json!({
                "properties": {
                    "a": { "type": "string" },
                    "b": { "type": "string", "format": "date-time", "nullable": true },
                    "c": { "type": "object", "default": { "nullable": true, "title": "data" } },
                    "d": { "type": "string", "enum": ["A"] }
                }
            })
        );
    }

    #[test]
    fn yaml_keys_are_sorted() {
        let yaml = serde_yaml::to_string(&sorted(serde_json::json!({"b": 1, "a": {"d": 2, "c": 3}}))).unwrap();
        assert_eq!(yaml, "a:\n  c: 3\n  d: 2\nb: 1\n");
    }
}
