//! PushSecret for Secrets Manager: the `data[].metadata` it accepts and the value it writes, as ESO.
//!
//! - Secrets syncret creates carry the tag `managed-by: external-secrets` (ESO's tag, so secrets pushed by ESO
//!   stay manageable after switching); an existing secret without it is never overwritten or deleted.
//! - Metadata is a `kubernetes.external-secrets.io/v1alpha1` `PushSecretMetadata` whose `spec` has `tags`,
//!   `description`, `secretPushFormat` (`binary`, the default, writes `SecretBinary`; `string` writes
//!   `SecretString`) and `kmsKeyId`. ESO's `resourcePolicy` and `replicationLocations` are refused with a
//!   clear error rather than ignored.
//! - With `remoteRef.property`, the value becomes that (dotted) member of the JSON object at the key, as a
//!   string; the other members are kept.
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{ProviderError, Result};
use crate::value::SecretValue;

/// ESO's ownership tag on secrets it created.
pub(crate) const MANAGED_BY_KEY: &str = "managed-by";
pub(crate) const MANAGED_BY_VALUE: &str = "external-secrets";
/// The version id of a secret's first value (ESO's `initialVersion`).
pub(crate) const INITIAL_VERSION: &str = "00000000-0000-0000-0000-000000000001";
const METADATA_API_VERSION: &str = "kubernetes.external-secrets.io/v1alpha1";
const METADATA_KIND: &str = "PushSecretMetadata";

/// The `PushSecretMetadata` envelope; `spec` is the provider's own (Secrets Manager's or Parameter Store's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: serde::de::DeserializeOwned + Default"))]
struct RawMetadata<S> {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(default = "S::default")]
    spec: S,
}

fn invalid_metadata(message: String) -> ProviderError {
    ProviderError::InvalidValue {
        key: "metadata".into(),
        message,
    }
}

/// Parses `data[].metadata` (JSON) as a `kubernetes.external-secrets.io/v1alpha1` `PushSecretMetadata` and returns
/// its `spec` (unknown fields refused, as ESO); `None`, empty or `null` give the spec's defaults.
pub(crate) fn parse_spec<S: serde::de::DeserializeOwned + Default>(raw: Option<&str>) -> Result<S> {
    let Some(text) = raw.map(str::trim).filter(|r| !r.is_empty() && *r != "null") else {
        return Ok(S::default());
    };
    let m: RawMetadata<S> = serde_json::from_str(text)
        .map_err(|e| invalid_metadata(format!("failed to parse {METADATA_API_VERSION} {METADATA_KIND}: {e}")))?;
    if m.api_version != METADATA_API_VERSION {
        return Err(invalid_metadata(format!(
            "unexpected apiVersion {:?}, expected {METADATA_API_VERSION:?}",
            m.api_version
        )));
    }
    if m.kind != METADATA_KIND {
        return Err(invalid_metadata(format!(
            "unexpected kind {:?}, expected {METADATA_KIND:?}",
            m.kind
        )));
    }
    Ok(m.spec)
}

/// The tags a pushed secret or parameter should carry: `tags` plus ESO's managed-by tag, which `tags` may not set.
pub(crate) fn with_managed_by(mut tags: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    if tags.contains_key(MANAGED_BY_KEY) {
        return Err(invalid_metadata(format!(
            "error parsing tags in metadata: cannot specify a {MANAGED_BY_KEY:?} tag"
        )));
    }
    tags.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
    Ok(tags)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    secret_push_format: String,
    #[serde(default, rename = "kmsKeyId")]
    kms_key_id: String,
    #[serde(default)]
    resource_policy: Option<Value>,
    #[serde(default)]
    replication_locations: Option<Vec<String>>,
}

/// How a value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Binary,
    String,
}

/// Parsed PushSecret metadata with ESO's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PushMetadata {
    /// The tags the secret should carry, including the managed-by tag.
    pub tags: BTreeMap<String, String>,
    /// Whether the metadata listed tags (only then are a secret's tags reconciled, as ESO).
    pub manage_tags: bool,
    pub description: String,
    pub format: Format,
    pub kms_key_id: Option<String>,
}

/// Parses `data[].metadata` (JSON); `None` means ESO's defaults.
pub(crate) fn parse_metadata(raw: Option<&str>) -> Result<PushMetadata> {
    let invalid = invalid_metadata;
    let spec: RawSpec = parse_spec(raw)?;
    if spec.resource_policy.is_some() {
        return Err(ProviderError::Unsupported(
            "PushSecret metadata spec.resourcePolicy is not supported by syncret's AWS provider".into(),
        ));
    }
    if spec.replication_locations.is_some() {
        return Err(ProviderError::Unsupported(
            "PushSecret metadata spec.replicationLocations is not supported by syncret's AWS provider".into(),
        ));
    }
    let format = match spec.secret_push_format.as_str() {
        "" | "binary" => Format::Binary,
        "string" => Format::String,
        other => return Err(invalid(format!("invalid secret push format: {other}"))),
    };
    let manage_tags = !spec.tags.is_empty();
    Ok(PushMetadata {
        tags: with_managed_by(spec.tags)?,
        manage_tags,
        description: if spec.description.is_empty() {
            default_description()
        } else {
            spec.description
        },
        format,
        kms_key_id: Some(spec.kms_key_id).filter(|k| !k.is_empty()),
    })
}

/// The description of what a PushSecret creates, unless its metadata gives one (ESO's).
pub(crate) fn default_description() -> String {
    format!("secret '{MANAGED_BY_KEY}:{MANAGED_BY_VALUE}'")
}

/// Whether a secret's tags mark it as created by ESO or syncret.
pub(crate) fn is_managed<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    tags.into_iter()
        .any(|(k, v)| k == MANAGED_BY_KEY && v == MANAGED_BY_VALUE)
}

/// What to change on a resource's tags to reach `desired`: the keys to remove, and whether a tag must be added or
/// changed (then the whole `desired` set is written; AWS's tag calls add or overwrite).
pub(crate) fn tag_changes<'a>(
    current: impl IntoIterator<Item = (&'a str, &'a str)>,
    desired: &BTreeMap<String, String>,
) -> (Vec<String>, bool) {
    let current: BTreeMap<&str, &str> = current.into_iter().collect();
    let remove = current
        .keys()
        .filter(|k| !desired.contains_key(**k))
        .map(|k| k.to_string())
        .collect();
    let changed = desired
        .iter()
        .any(|(k, v)| current.get(k.as_str()) != Some(&v.as_str()));
    (remove, changed)
}

/// Splits a property path on unescaped dots (`a.b` → `a`, `b`; `a\.b` → `a.b`).
fn path(property: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = property.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next()
                    && let Some(last) = parts.last_mut()
                {
                    last.push(n);
                }
            }
            '.' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

fn parse_object(key: &str, current: Option<&SecretValue>) -> Result<Map<String, Value>> {
    let Some(current) = current.filter(|c| !c.is_empty()) else {
        return Ok(Map::new());
    };
    match serde_json::from_slice::<Value>(current.as_bytes()) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ProviderError::InvalidValue {
            key: key.to_string(),
            message: "PushSecret with a remoteRef.property needs the remote secret to be a JSON object".into(),
        }),
    }
}

/// The value to write: `value` itself, or `current` with `property` set to `value` (a JSON string).
pub(crate) fn merged_value(
    key: &str,
    current: Option<&SecretValue>,
    property: Option<&str>,
    value: &SecretValue,
) -> Result<SecretValue> {
    let Some(property) = property.filter(|p| !p.is_empty()) else {
        return Ok(value.clone());
    };
    let mut root = parse_object(key, current)?;
    let parts = path(property);
    let mut obj = &mut root;
    let (last, parents) = parts.split_last().unwrap_or((&parts[0], &[]));
    for p in parents {
        let slot = obj.entry(p.clone()).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        obj = slot.as_object_mut().ok_or_else(|| ProviderError::InvalidValue {
            key: key.to_string(),
            message: format!("property {property:?} cannot be set"),
        })?;
    }
    obj.insert(
        last.clone(),
        Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
    );
    Ok(SecretValue::from(Value::Object(root).to_string()))
}

/// `current` without `property`; `None` when nothing else is left (the secret can go).
pub(crate) fn without_property(key: &str, current: &SecretValue, property: &str) -> Result<Option<SecretValue>> {
    let mut root = parse_object(key, Some(current))?;
    let parts = path(property);
    remove_path(&mut root, &parts);
    Ok((!root.is_empty()).then(|| SecretValue::from(Value::Object(root).to_string())))
}

fn remove_path(obj: &mut Map<String, Value>, parts: &[String]) {
    match parts {
        [] => {}
        [last] => {
            obj.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(Value::Object(child)) = obj.get_mut(first) {
                remove_path(child, rest);
                if child.is_empty() {
                    obj.remove(first);
                }
            }
        }
    }
}

/// Whether `current` (a JSON object) has `property`.
pub(crate) fn has_property(current: &SecretValue, property: &str) -> bool {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(current.as_bytes()) else {
        return false;
    };
    let parts = path(property);
    let Some((last, parents)) = parts.split_last() else {
        return false;
    };
    for p in parents {
        match obj.remove(p) {
            Some(Value::Object(child)) => obj = child,
            _ => return false,
        }
    }
    obj.contains_key(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_defaults_and_validation() {
        let m = parse_metadata(None).unwrap();
        assert_eq!(m.format, Format::Binary);
        assert_eq!(m.description, "secret 'managed-by:external-secrets'");
        assert_eq!(m.tags.get("managed-by").map(String::as_str), Some("external-secrets"));
        assert!(!m.manage_tags);
        assert_eq!(m.kms_key_id, None);

        let m = parse_metadata(Some(
            r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata",
                "spec":{"tags":{"team":"a"},"secretPushFormat":"string","description":"d","kmsKeyId":"k"}}"#,
        ))
        .unwrap();
        assert_eq!(m.format, Format::String);
        assert!(m.manage_tags);
        assert_eq!(m.tags.len(), 2);
        assert_eq!(m.description, "d");
        assert_eq!(m.kms_key_id.as_deref(), Some("k"));

        let bad = |s: &str| parse_metadata(Some(s)).unwrap_err().to_string();
        assert!(bad(r#"{"apiVersion":"v1","kind":"PushSecretMetadata"}"#).contains("unexpected apiVersion"));
        assert!(
            bad(r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"tags":{"managed-by":"me"}}}"#)
                .contains("managed-by")
        );
        assert!(
            bad(r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"secretPushFormat":"hex"}}"#)
                .contains("invalid secret push format")
        );
        assert!(
            bad(r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"nope":1}}"#)
                .contains("unknown field")
        );
        assert!(
            bad(r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"replicationLocations":["eu-west-1"]}}"#)
                .contains("not supported")
        );
    }

    #[test]
    fn properties_merge_into_json_objects() {
        let v = SecretValue::from("p4ss");
        assert_eq!(merged_value("k", None, None, &v).unwrap(), v);
        assert_eq!(
            merged_value("k", None, Some("password"), &v).unwrap().as_str(),
            Some(r#"{"password":"p4ss"}"#)
        );
        let cur = SecretValue::from(r#"{"user":"admin","password":"old"}"#);
        assert_eq!(
            merged_value("k", Some(&cur), Some("password"), &v).unwrap().as_str(),
            Some(r#"{"password":"p4ss","user":"admin"}"#)
        );
        assert_eq!(
            merged_value("k", Some(&cur), Some("db.password"), &v).unwrap().as_str(),
            Some(r#"{"db":{"password":"p4ss"},"password":"old","user":"admin"}"#)
        );
        assert_eq!(
            merged_value("k", None, Some(r"tls\.crt"), &v).unwrap().as_str(),
            Some(r#"{"tls.crt":"p4ss"}"#)
        );
        assert!(merged_value("k", Some(&SecretValue::from("plain")), Some("p"), &v).is_err());
    }

    #[test]
    fn properties_are_removed_and_checked() {
        let cur = SecretValue::from(r#"{"user":"admin","db":{"password":"x"}}"#);
        assert!(has_property(&cur, "user"));
        assert!(has_property(&cur, "db.password"));
        assert!(!has_property(&cur, "db.user"));
        let rest = without_property("k", &cur, "db.password").unwrap().unwrap();
        assert_eq!(rest.as_str(), Some(r#"{"user":"admin"}"#));
        assert_eq!(without_property("k", &rest, "user").unwrap(), None);
    }

    #[test]
    fn tags_are_reconciled_to_the_desired_set() {
        let desired: BTreeMap<String, String> = [("team", "a"), ("managed-by", "external-secrets")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let (remove, changed) = tag_changes([("managed-by", "external-secrets"), ("old", "x")], &desired);
        assert_eq!(remove, vec!["old".to_string()]);
        assert!(changed, "team is missing");
        let (remove, changed) = tag_changes([("managed-by", "external-secrets"), ("team", "a")], &desired);
        assert!(remove.is_empty() && !changed);
        let (_, changed) = tag_changes([("managed-by", "external-secrets"), ("team", "b")], &desired);
        assert!(changed, "a changed value");
    }

    #[test]
    fn ownership_is_the_managed_by_tag() {
        assert!(is_managed([("managed-by", "external-secrets")]));
        assert!(!is_managed([("managed-by", "someone-else")]));
        assert!(!is_managed([]));
    }
}
