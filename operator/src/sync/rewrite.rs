//! `dataFrom[].rewrite`: regexp, transform and merge steps applied in order to the fetched key/value map.
use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

/// One rewrite step, already validated (regexes compiled).
#[derive(Clone, Debug)]
pub enum Rewrite {
    /// Go `ReplaceAllString` on every key (`$1`, `${name}` expansions).
    Regexp {
        source: Regex,
        target: String,
    },
    /// A template rendered with `.value` = the key; the output is the new key.
    Transform {
        template: String,
    },
    Merge(Merge),
}

#[derive(Clone, Debug, Default)]
pub struct Merge {
    pub into: String,
    pub priority: Vec<String>,
    /// `priorityPolicy: IgnoreNotFound` (default Strict).
    pub ignore_missing_priority: bool,
    /// `conflictPolicy: Ignore` (default Error).
    pub ignore_conflicts: bool,
    /// `strategy: JSON` (default Extract).
    pub json: bool,
}

/// Renders a transform template for one key (`.value` = key); supplied by the template engine.
pub type TransformFn<'a> = &'a dyn Fn(&str, &str) -> Result<String, String>;

/// Applies `steps` in order. Errors name the step index and keys, never values.
pub fn apply(
    steps: &[Rewrite],
    mut data: BTreeMap<String, Vec<u8>>,
    transform: TransformFn<'_>,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    for (i, step) in steps.iter().enumerate() {
        data = apply_one(step, data, transform).map_err(|e| format!("rewrite[{i}]: {e}"))?;
    }
    Ok(data)
}

fn apply_one(
    step: &Rewrite,
    data: BTreeMap<String, Vec<u8>>,
    transform: TransformFn<'_>,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    match step {
        Rewrite::Regexp { source, target } => Ok(data
            .into_iter()
            .map(|(k, v)| (source.replace_all(&k, target.as_str()).into_owned(), v))
            .collect()),
        Rewrite::Transform { template } => data
            .into_iter()
            .map(|(k, v)| {
                transform(template, &k)
                    .map(|nk| (nk, v))
                    .map_err(|e| format!("transform of key {k:?}: {e}"))
            })
            .collect(),
        Rewrite::Merge(m) => merge(m, data),
    }
}

fn merge(m: &Merge, data: BTreeMap<String, Vec<u8>>) -> Result<BTreeMap<String, Vec<u8>>, String> {
    // Non-priority keys in sorted order, then the priority keys in the given order (later wins).
    let mut order: Vec<&str> = data
        .keys()
        .map(String::as_str)
        .filter(|k| !m.priority.iter().any(|p| p == k))
        .collect();
    order.extend(m.priority.iter().map(String::as_str));
    let mut merged = Map::new();
    let mut conflicts = Vec::new();
    for key in order {
        let Some(raw) = data.get(key) else {
            if m.ignore_missing_priority {
                continue;
            }
            return Err(format!("merge failed: priority key {key:?} not found in input map"));
        };
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(raw) else {
            return Err(format!("merge failed: value of key {key:?} is not a JSON object"));
        };
        for (k, v) in obj {
            if merged.contains_key(&k) {
                conflicts.push(k.clone());
            }
            merged.insert(k, v);
        }
    }
    if !m.ignore_conflicts && !conflicts.is_empty() {
        return Err(format!("merge failed with conflicts: {}", conflicts.join(", ")));
    }
    if m.json {
        if m.into.is_empty() {
            return Err("merge failed: strategy JSON needs 'into'".to_string());
        }
        let mut out = data;
        let text = serde_json::to_vec(&Value::Object(merged)).map_err(|e| format!("merge failed: {e}"))?;
        out.insert(m.into.clone(), text);
        Ok(out)
    } else {
        Ok(merged
            .into_iter()
            .map(|(k, v)| {
                let bytes = match v {
                    Value::String(s) => s.into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                (k, bytes)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn no_transform(_: &str, _: &str) -> Result<String, String> {
        Err("unused".into())
    }

    #[test]
    fn regexp_then_transform() {
        let steps = vec![
            Rewrite::Regexp {
                source: Regex::new("^path/to/(.*)$").unwrap(),
                target: "app-$1".into(),
            },
            Rewrite::Transform {
                template: "{{ .value | upper }}".into(),
            },
        ];
        let upper = |_: &str, k: &str| Ok(k.to_uppercase());
        let out = apply(&steps, map(&[("path/to/db", "1"), ("other", "2")]), &upper).unwrap();
        assert_eq!(out, map(&[("APP-DB", "1"), ("OTHER", "2")]));
    }

    #[test]
    fn merge_extract_with_priority_and_conflicts() {
        let data = map(&[("a", r#"{"x":"1","y":2}"#), ("b", r#"{"x":"3"}"#)]);
        let strict = Merge::default();
        let err = apply(&[Rewrite::Merge(strict)], data.clone(), &no_transform).unwrap_err();
        assert!(err.contains("conflicts: x"), "{err}");
        let m = Merge {
            ignore_conflicts: true,
            priority: vec!["a".into()],
            ..Default::default()
        };
        let out = apply(&[Rewrite::Merge(m)], data.clone(), &no_transform).unwrap();
        assert_eq!(out, map(&[("x", "1"), ("y", "2")]), "priority key a merged last wins");
        let m = Merge {
            ignore_conflicts: true,
            json: true,
            into: "all".into(),
            ..Default::default()
        };
        let out = apply(&[Rewrite::Merge(m)], data.clone(), &no_transform).unwrap();
        assert_eq!(out["all"], br#"{"x":"3","y":2}"#.to_vec());
        assert!(out.contains_key("a"));
        let m = Merge {
            priority: vec!["missing".into()],
            ..Default::default()
        };
        assert!(
            apply(&[Rewrite::Merge(m)], data.clone(), &no_transform)
                .unwrap_err()
                .contains("missing")
        );
        let m = Merge {
            priority: vec!["missing".into()],
            ignore_missing_priority: true,
            ignore_conflicts: true,
            ..Default::default()
        };
        assert!(apply(&[Rewrite::Merge(m)], data, &no_transform).is_ok());
    }

    #[test]
    fn merge_error_never_contains_values() {
        let err = apply(
            &[Rewrite::Merge(Merge::default())],
            map(&[("a", "s3cr3t")]),
            &no_transform,
        )
        .unwrap_err();
        assert!(!err.contains("s3cr3t") && err.contains("\"a\""), "{err}");
    }
}
