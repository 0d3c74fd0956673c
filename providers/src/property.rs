//! `remoteRef.property`: selecting a part of a JSON secret value, as ESO does with gjson.
//!
//! Rules (shared by every provider, matching ESO's observable behaviour):
//! 1. No property: the whole value.
//! 2. The value is a JSON object with a top-level key equal to the property (keys may contain dots, e.g.
//!    `tls.crt`): that member.
//! 3. Otherwise the property is a gjson path (`a.b.c`, `list.0`, `a\.b`, `#(name=="x").v`).
//!
//! A selected JSON string yields its unescaped text; any other JSON value yields its JSON text.
use std::collections::BTreeMap;

use crate::error::{ProviderError, Result};
use crate::value::{RemoteValue, SecretValue};

impl RemoteValue {
    /// The value `property` selects (the whole value without one), per the module rules.
    pub fn select(&self, key: &str, property: Option<&str>) -> Result<SecretValue> {
        match self {
            RemoteValue::Bytes(v) => select(key, v, property),
            RemoteValue::Map(m) => match property.filter(|p| !p.is_empty()) {
                Some(p) if m.contains_key(p) => Ok(m.get(p).cloned().unwrap_or_default()),
                _ => select(key, &map_to_json(m), property),
            },
            RemoteValue::Custom(c) => c.0.select(key, property.filter(|p| !p.is_empty())),
        }
    }

    /// `dataFrom.extract`: the key/value pairs (after `property`).
    pub fn into_map(self, key: &str, property: Option<&str>) -> Result<BTreeMap<String, SecretValue>> {
        match (self, property.filter(|p| !p.is_empty())) {
            (RemoteValue::Map(m), None) => Ok(m),
            (RemoteValue::Custom(c), p) => c.0.extract(key, p),
            (v, p) => to_map(key, &v.select(key, p)?),
        }
    }
}

/// A binary map as ESO renders it: a JSON object of (lossily UTF-8) strings.
pub fn map_to_json(m: &BTreeMap<String, SecretValue>) -> SecretValue {
    let obj: serde_json::Map<String, serde_json::Value> = m
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    SecretValue::from(serde_json::Value::Object(obj).to_string())
}

/// Applies `property` to `value` (the whole value when `property` is `None` or empty).
pub fn select(key: &str, value: &SecretValue, property: Option<&str>) -> Result<SecretValue> {
    let Some(property) = property.filter(|p| !p.is_empty()) else {
        return Ok(value.clone());
    };
    let not_found = || ProviderError::PropertyNotFound {
        key: key.to_string(),
        property: property.to_string(),
    };
    let text = value.as_str().ok_or_else(not_found)?;
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(member) = map.get(property) {
            return Ok(json_to_value(member));
        }
    } else if !gjson::valid(text) {
        return Err(ProviderError::InvalidValue {
            key: key.to_string(),
            message: format!("property {property:?} requested but the value is not JSON"),
        });
    }
    let found = gjson::get(text, property);
    if !found.exists() {
        return Err(not_found());
    }
    Ok(match found.kind() {
        gjson::Kind::String => SecretValue::from(found.str()),
        _ => SecretValue::from(found.json()),
    })
}

/// A JSON member as a secret value: strings unquoted, everything else as compact JSON.
pub fn json_to_value(v: &serde_json::Value) -> SecretValue {
    match v {
        serde_json::Value::String(s) => SecretValue::from(s.as_str()),
        other => SecretValue::from(other.to_string()),
    }
}

/// Parses a JSON object value into key → value pairs (strings unquoted, others as JSON), for
/// `dataFrom.extract`.
pub fn to_map(key: &str, value: &SecretValue) -> Result<BTreeMap<String, SecretValue>> {
    let invalid = |message: &str| ProviderError::InvalidValue {
        key: key.to_string(),
        message: message.to_string(),
    };
    let text = value
        .as_str()
        .ok_or_else(|| invalid("value is not UTF-8 JSON, cannot extract keys from it"))?;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect()),
        Ok(_) => Err(invalid("value is JSON but not an object, cannot extract keys from it")),
        Err(_) => Err(invalid("value is not a JSON object, cannot extract keys from it")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(json: &str, p: Option<&str>) -> Result<String> {
        select("k", &SecretValue::from(json), p).map(|v| String::from_utf8(v.to_vec()).unwrap())
    }

    #[test]
    fn selects_like_eso() {
        let doc = r#"{"user":"admin","tls.crt":"CERT","nested":{"a":{"b":"deep"},"n":5},"list":["x","y"],"flag":true}"#;
        let cases: &[(Option<&str>, &str)] = &[
            (None, doc),
            (Some(""), doc),
            (Some("user"), "admin"),
            (Some("tls.crt"), "CERT"),
            (Some("nested.a.b"), "deep"),
            (Some("nested.n"), "5"),
            (Some("nested.a"), r#"{"b":"deep"}"#),
            (Some("list.1"), "y"),
            (Some("list"), r#"["x","y"]"#),
            (Some("flag"), "true"),
        ];
        for (p, want) in cases {
            assert_eq!(sel(doc, *p).unwrap(), *want, "property {p:?}");
        }
    }

    #[test]
    fn missing_property_names_key_and_property_not_value() {
        let err = sel(r#"{"user":"s3cr3t"}"#, Some("password")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("password") && msg.contains("\"k\""), "{msg}");
        assert!(!msg.contains("s3cr3t"));
        assert!(matches!(err, ProviderError::PropertyNotFound { .. }));
    }

    #[test]
    fn property_on_non_json_is_a_clear_error() {
        let err = sel("plain-text-secret", Some("a")).unwrap_err();
        assert!(!err.to_string().contains("plain-text-secret"));
        let err = select("k", &SecretValue::from(vec![0xff, 0xfe]), Some("a")).unwrap_err();
        assert!(matches!(err, ProviderError::PropertyNotFound { .. }));
    }

    #[test]
    fn native_maps_keep_binary_values() {
        let m: BTreeMap<String, SecretValue> = [
            ("tls.crt".to_string(), SecretValue::from(vec![0xff, 0x00])),
            ("user".into(), SecretValue::from("a")),
        ]
        .into();
        let v = RemoteValue::Map(m.clone());
        assert_eq!(v.select("s", Some("tls.crt")).unwrap().as_bytes(), &[0xff, 0x00]);
        assert_eq!(
            v.select("s", None).unwrap().as_bytes(),
            "{\"tls.crt\":\"\u{fffd}\\u0000\",\"user\":\"a\"}".as_bytes()
        );
        assert_eq!(v.clone().into_map("s", None).unwrap(), m);
        assert!(matches!(
            v.select("s", Some("nope")),
            Err(ProviderError::PropertyNotFound { .. })
        ));
    }

    #[test]
    fn extract_map() {
        let m = to_map("k", &SecretValue::from(r#"{"a":"1","b":{"c":2},"d":3}"#)).unwrap();
        assert_eq!(m["a"].as_bytes(), b"1");
        assert_eq!(m["b"].as_bytes(), br#"{"c":2}"#);
        assert_eq!(m["d"].as_bytes(), b"3");
        assert!(to_map("k", &SecretValue::from("[1]")).is_err());
        let err = to_map("k", &SecretValue::from("notjson-s3cr3t")).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
    }
}
