//! An object against syncret's own CRD schema (generated from the `crds` crate, so a provider or field added
//! there is known here at once): fields syncret does not have and enum values it does not take. The apiserver
//! would prune the former (or reject them under strict field validation) and reject the latter; ESO's schema,
//! which is wider, accepted both.
use serde_json::Value;

/// One place where the object leaves syncret's schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issue {
    /// A field the schema does not have.
    Unknown { path: String },
    /// A value outside the schema's `enum`; `pointer` is its JSON pointer (to drop it and read the rest).
    NotInEnum {
        path: String,
        pointer: String,
        allowed: Vec<String>,
    },
}

/// `value` without the values outside their enum (so the rest can still be read with syncret's types).
pub fn without_bad_values(value: &Value, issues: &[Issue]) -> Value {
    let mut v = value.clone();
    for i in issues {
        if let Issue::NotInEnum { pointer, .. } = i
            && let Some((parent, last)) = pointer.rsplit_once('/')
        {
            let key = last.replace("~1", "/").replace("~0", "~");
            match v.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&key);
                }
                Some(Value::Array(a)) => {
                    if let Some(item) = key.parse::<usize>().ok().and_then(|n| a.get_mut(n)) {
                        *item = Value::Null;
                    }
                }
                _ => {}
            }
        }
    }
    v
}

/// Walks `value` along `schema` (a structural OpenAPI v3 schema as in a CRD) and returns every issue; `status`
/// and `metadata` at the root are not looked at (they are the apiserver's and the controller's).
pub fn issues(schema: &Value, value: &Value) -> Vec<Issue> {
    let mut out = Vec::new();
    if let (Some(props), Some(obj)) = (schema.get("properties"), value.as_object()) {
        for (k, v) in obj {
            if matches!(k.as_str(), "status" | "metadata" | "apiVersion" | "kind") {
                continue;
            }
            match props.get(k) {
                Some(s) => walk(s, v, k, &format!("/{}", escape(k)), 0, &mut out),
                None => out.push(Issue::Unknown { path: k.clone() }),
            }
        }
    }
    out
}

/// Deeper than any CRD of ours; a bound for hostile input.
const MAX_DEPTH: usize = 64;

fn child(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// A JSON-pointer token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(schema: &Value, value: &Value, path: &str, pointer: &str, depth: usize, out: &mut Vec<Issue>) {
    if depth > MAX_DEPTH || value.is_null() {
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(Issue::NotInEnum {
            path: path.to_string(),
            pointer: pointer.to_string(),
            allowed: allowed
                .iter()
                .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
                .collect(),
        });
    }
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match value {
        Value::Object(obj) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (k, v) in obj {
                let ptr = format!("{pointer}/{}", escape(k));
                match props.and_then(|p| p.get(k)) {
                    Some(s) => walk(s, v, &child(path, k), &ptr, depth + 1, out),
                    None => match additional {
                        Some(s @ Value::Object(_)) => walk(s, v, &format!("{path}[{k}]"), &ptr, depth + 1, out),
                        Some(Value::Bool(true)) => {}
                        _ if preserve => {}
                        // A schema with neither properties nor additionalProperties takes anything (`type:
                        // object` alone is not structural, but be lenient).
                        _ if props.is_none() && additional.is_none() => {}
                        _ => out.push(Issue::Unknown { path: child(path, k) }),
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(
                        s,
                        item,
                        &format!("{path}[{i}]"),
                        &format!("{pointer}/{i}"),
                        depth + 1,
                        out,
                    );
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "policy": {"type": "string", "enum": ["Owner", "Merge"]},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "maps": {"type": "object", "additionalProperties": {"type": "object", "properties": {"k": {"type": "string"}}}}
                    }
                }
            }
        })
    }

    #[test]
    fn finds_unknown_fields_and_enum_values() {
        let v = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"anything": 1}, "status": {"whatever": true},
            "spec": {
                "policy": "Orphan",
                "labels": {"a": "b"},
                "items": [{"a": "x"}, {"a": "y", "b": 1}],
                "free": {"anything": {"goes": 1}},
                "maps": {"m1": {"k": "v", "extra": 1}},
                "onepassword": {"connectHost": "x"}
            },
            "extra": 1
        });
        let mut got = issues(&schema(), &v);
        got.sort_by_key(|i| format!("{i:?}"));
        assert_eq!(
            got,
            [
                Issue::NotInEnum {
                    path: "spec.policy".into(),
                    pointer: "/spec/policy".into(),
                    allowed: vec!["Owner".into(), "Merge".into()]
                },
                Issue::Unknown { path: "extra".into() },
                Issue::Unknown {
                    path: "spec.items[1].b".into()
                },
                Issue::Unknown {
                    path: "spec.maps[m1].extra".into()
                },
                Issue::Unknown {
                    path: "spec.onepassword".into()
                },
            ]
        );
    }

    #[test]
    fn the_quickstart_fits_syncrets_schema() {
        let crds = syncret_crds::generate::crds();
        let es = crds.iter().find(|c| c.spec.names.kind == "ExternalSecret").unwrap();
        let schema = serde_json::to_value(
            es.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let v = json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "a"},
            "spec": {"secretStoreRef": {"name": "s", "kind": "SecretStore"}, "refreshInterval": "1m",
                     "target": {"template": {"data": {"A": "{{ .a }}"}, "engineVersion": "v2"}},
                     "data": [{"secretKey": "a", "remoteRef": {"key": "k", "decodingStrategy": "Base64"}}]}
        });
        assert_eq!(issues(&schema, &v), []);
        let mut bad = v.clone();
        bad["spec"]["data"][0]["remoteRef"]["decodingStrategy"] = json!("Rot13");
        bad["spec"]["target"]["template"]["engineVersion"] = json!("v1");
        let got = issues(&schema, &bad);
        assert_eq!(got.len(), 2, "{got:?}");
    }
}
