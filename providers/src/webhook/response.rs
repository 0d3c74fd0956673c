//! Turning a webhook's response into a secret value, as ESO's webhook provider does:
//! - no `result.jsonPath`: the body as it is;
//! - with one: the body is parsed as JSON and the path selects the value. ESO uses PaesslerAG/jsonpath; syncret uses
//!   `jsonpath-rust` (RFC 9535, already built for kube) and keeps Paessler's result shapes: a *definite* path (names
//!   and indexes only: `$.data.value`, `$.items[0]`, `$['a-b']`) yields that one value, and fails when it selects
//!   nothing; any other path (wildcards, slices, filters, `..`) yields the list of matches;
//! - the selected value becomes bytes with ESO's `extractSecretData`: a string as is, a number rounded to an integer
//!   (Go's `FormatFloat(v, 'f', 0)`), `true`/`false`, `null` as empty, a list by its first element, an object as
//!   JSON with Go's `json.Marshal` rules (sorted keys, `<`, `>`, `&` escaped).
//!
//! Errors name the key and the path, never the response (it holds secret values).
use serde_json::Value;

use crate::error::{ProviderError, Result};
use crate::value::SecretValue;

/// The value `json_path` (already rendered; empty for none) selects in `body`, for remote key `key`.
pub fn select(key: &str, body: &[u8], json_path: &str) -> Result<SecretValue> {
    if json_path.is_empty() {
        return Ok(SecretValue::from(body));
    }
    let invalid = |message: String| ProviderError::InvalidValue {
        key: key.to_string(),
        message,
    };
    // Values counted before parsing; the parse error is not shown (serde_json quotes the offending input).
    crate::net::body::check_json(body, crate::net::body::MAX_JSON_VALUES).map_err(|e| invalid(e.to_string()))?;
    let doc: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "result.jsonPath {json_path:?} is set but the response is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let selected = query(&doc, json_path).map_err(invalid)?;
    extract(&selected).map_err(invalid)
}

/// Evaluates a JSONPath with Paessler's result shapes (see the module docs).
pub fn query(doc: &Value, json_path: &str) -> std::result::Result<Value, String> {
    let path = normalize(json_path);
    let parsed = jsonpath_rust::parser::parse_json_path(&path)
        .map_err(|e| format!("result.jsonPath {json_path:?} is not a valid JSONPath: {e}"))?;
    let definite = parsed.segments.iter().all(|s| {
        matches!(
            s,
            jsonpath_rust::parser::model::Segment::Selector(
                jsonpath_rust::parser::model::Selector::Name(_) | jsonpath_rust::parser::model::Selector::Index(_)
            )
        )
    });
    // The crate is not ours and the path may be built from an ExternalSecret's `property`: contain any panic.
    let found = std::panic::catch_unwind(|| {
        jsonpath_rust::query::js_path_process(&parsed, doc)
            .map(|refs| refs.into_iter().map(|r| r.val.clone()).collect::<Vec<Value>>())
    })
    .map_err(|_| format!("result.jsonPath {json_path:?} could not be evaluated"))?
    // The evaluation error is not shown: it can quote a part of the document.
    .map_err(|_| format!("result.jsonPath {json_path:?} could not be evaluated"))?;
    if definite {
        found
            .into_iter()
            .next()
            .ok_or_else(|| format!("result.jsonPath {json_path:?} selects nothing in the response"))
    } else {
        Ok(Value::Array(found))
    }
}

/// A path as Paessler's parser would take it: the root may be left out (`data.value`, `[0]`).
fn normalize(json_path: &str) -> String {
    let p = json_path.trim();
    if p.starts_with('$') {
        p.to_string()
    } else if p.starts_with('[') {
        format!("${p}")
    } else {
        format!("$.{p}")
    }
}

/// ESO's `extractSecretData`: one selected JSON value as the secret's bytes.
pub fn extract(v: &Value) -> std::result::Result<SecretValue, String> {
    Ok(match v {
        Value::String(s) => SecretValue::from(s.as_str()),
        Value::Bool(b) => SecretValue::from(b.to_string()),
        Value::Null => SecretValue::default(),
        // Go decodes every JSON number as float64 and ESO prints it with FormatFloat(v, 'f', 0, 64).
        Value::Number(n) => SecretValue::from(format!("{:.0}", n.as_f64().unwrap_or_default())),
        Value::Array(items) => match items.first() {
            Some(first) => return extract(first),
            None => return Err("filter worked but didn't get any result".into()),
        },
        Value::Object(_) => {
            let mut out = String::new();
            go_json(&mut out, v);
            SecretValue::from(out)
        }
    })
}

/// `v` as Go's `json.Marshal` writes a decoded `interface{}`: keys sorted, HTML-safe escaping, float64 numbers.
pub fn go_json(out: &mut String, v: &Value) {
    // Iterative over containers so a deeply nested response cannot overflow the stack.
    enum Step<'a> {
        Value(&'a Value),
        Raw(&'static str),
        Key(&'a str),
    }
    let mut stack = vec![Step::Value(v)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Raw(s) => out.push_str(s),
            Step::Key(k) => {
                go_string(out, k);
                out.push(':');
            }
            Step::Value(v) => match v {
                Value::Null => out.push_str("null"),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                Value::Number(n) => out.push_str(&go_float(n.as_f64().unwrap_or_default())),
                Value::String(s) => go_string(out, s),
                Value::Array(items) => {
                    out.push('[');
                    stack.push(Step::Raw("]"));
                    for (i, item) in items.iter().enumerate().rev() {
                        stack.push(Step::Value(item));
                        if i > 0 {
                            stack.push(Step::Raw(","));
                        }
                    }
                }
                Value::Object(map) => {
                    out.push('{');
                    stack.push(Step::Raw("}"));
                    let mut keys: Vec<(&String, &Value)> = map.iter().collect();
                    keys.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                    for (i, (k, item)) in keys.into_iter().enumerate().rev() {
                        stack.push(Step::Value(item));
                        stack.push(Step::Key(k));
                        if i > 0 {
                            stack.push(Step::Raw(","));
                        }
                    }
                }
            },
        }
    }
}

/// Go's `encoding/json` string: `"`, `\`, control characters, `<`, `>`, `&`, U+2028 and U+2029 escaped.
fn go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float64 as Go's `encoding/json` prints it: shortest form, exponent outside [1e-6, 1e21).
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{f}");
    }
    // Rust: `1e21`, `1.5e-7`; Go: `1e+21`, `1.5e-07` cleaned up to `1.5e-7`.
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) if exp.starts_with('-') => format!("{mantissa}e{exp}"),
        Some((mantissa, exp)) => format!("{mantissa}e+{exp:0>2}"),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(body: &str, path: &str) -> std::result::Result<String, String> {
        select("k", body.as_bytes(), path)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_path_is_the_body() {
        assert_eq!(sel("not json at all", "").unwrap(), "not json at all");
    }

    #[test]
    fn definite_paths_select_one_value() {
        let body = r#"{"args":{"parameter":"secret"},"items":[{"v":"a"},{"v":"b"}],"a-b":{"c.d":"x"}}"#;
        assert_eq!(sel(body, "$.args.parameter").unwrap(), "secret");
        assert_eq!(sel(body, "$.items[1].v").unwrap(), "b");
        assert_eq!(sel(body, "$.items[-1].v").unwrap(), "b");
        assert_eq!(sel(body, "$['a-b']['c.d']").unwrap(), "x");
        assert_eq!(sel(body, "args.parameter").unwrap(), "secret");
        assert_eq!(sel(body, "$.args").unwrap(), r#"{"parameter":"secret"}"#);
        let e = sel(body, "$.args.missing").unwrap_err();
        assert!(e.contains(r#"result.jsonPath "$.args.missing" selects nothing"#), "{e}");
        assert!(e.contains(r#"secret "k""#), "{e}");
    }

    #[test]
    fn other_paths_take_the_first_match() {
        let body = r#"{"items":[{"name":"a","v":"1"},{"name":"b","v":"2"}]}"#;
        assert_eq!(sel(body, "$.items[?(@.name == 'b')].v").unwrap(), "2");
        assert_eq!(sel(body, "$.items[*].v").unwrap(), "1");
        assert_eq!(sel(body, "$..v").unwrap(), "1");
        let e = sel(body, "$.items[?(@.name == 'c')].v").unwrap_err();
        assert!(e.contains("filter worked but didn't get any result"), "{e}");
    }

    #[test]
    fn values_convert_like_eso() {
        let body = r#"{"n":42,"f":2.5,"g":3.7,"t":true,"z":null,"l":[],"o":{"b":"<&>","a":1.0,"c":[1e21,1e-7,-0.5]}}"#;
        assert_eq!(sel(body, "$.n").unwrap(), "42");
        assert_eq!(sel(body, "$.f").unwrap(), "2");
        assert_eq!(sel(body, "$.g").unwrap(), "4");
        assert_eq!(sel(body, "$.t").unwrap(), "true");
        assert_eq!(sel(body, "$.z").unwrap(), "");
        assert_eq!(
            sel(body, "$.o").unwrap(),
            r#"{"a":1,"b":"\u003c\u0026\u003e","c":[1e+21,1e-7,-0.5]}"#
        );
        assert!(sel(body, "$.l").unwrap_err().contains("didn't get any result"));
    }

    #[test]
    fn errors_never_quote_the_response() {
        let e = sel("password=hunter2", "$.a").unwrap_err();
        assert!(e.contains("is set but the response is not JSON"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = sel(r#"{"a":"hunter2"}"#, "$.a[").unwrap_err();
        assert!(e.contains("not a valid JSONPath"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn go_json_escapes_like_go() {
        let mut out = String::new();
        go_json(
            &mut out,
            &serde_json::json!({"k": "a\u{2028}\u{1}\"\\", "n": 12345678901234567890u64}),
        );
        assert_eq!(out, r#"{"k":"a\u2028\u0001\"\\","n":12345678901234567000}"#);
    }
}
