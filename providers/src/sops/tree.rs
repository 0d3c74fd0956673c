//! A SOPS document as an ordered tree. Order matters: the MAC hashes the values in document order, so maps keep
//! their keys as written (serde_json's and serde_yaml's own maps would sort or lose that for JSON).
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One node of a document.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer outside `i64` (JSON and YAML allow them), kept as written.
    BigInt(String),
    Float(f64),
    Str(String),
    /// A `type:bytes` value after decryption.
    Bytes(Vec<u8>),
    List(Vec<Node>),
    /// Keys in document order. Duplicate keys are refused when parsing.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The member `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A scalar as text (`true`, `5`, `1.5`, the string itself); `None` for null, lists and maps.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Bool(b) => Some(b.to_string()),
            Node::Int(i) => Some(i.to_string()),
            Node::BigInt(s) | Node::Str(s) => Some(s.clone()),
            Node::Float(f) => Some(format_float(*f)),
            Node::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Node::Null | Node::List(_) | Node::Map(_) => None,
        }
    }

    /// The value as JSON: maps become objects, bytes lossy UTF-8 strings, non-finite floats strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::BigInt(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
            Node::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(format_float(*f))),
            Node::Str(s) => Value::String(s.clone()),
            Node::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            Node::List(l) => Value::Array(l.iter().map(Node::to_json).collect()),
            Node::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

/// A float as SOPS writes it into the MAC and into encrypted values: the shortest text that reads back as the
/// same number, without an exponent (`1.5`, `100000000000000000000`, `-0`).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{f}")
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SOPS document value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v)
            .map(Node::Int)
            .unwrap_or_else(|_| Node::BigInt(v.to_string())))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(i64::try_from(v)
            .map(Node::Int)
            .unwrap_or_else(|_| Node::BigInt(v.to_string())))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(i64::try_from(v)
            .map(Node::Int)
            .unwrap_or_else(|_| Node::BigInt(v.to_string())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Bytes(v.to_vec()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Node>()? {
            out.push(v);
        }
        Ok(Node::List(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out: Vec<(String, Node)> = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let key = k
                .scalar_text()
                .ok_or_else(|| de::Error::custom("a map key is not a string, number or boolean"))?;
            if out.iter().any(|(existing, _)| *existing == key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let v = map.next_value::<Node>()?;
            out.push((key, v));
        }
        Ok(Node::Map(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_document_order_for_json_and_yaml() {
        let j: Node = serde_json::from_str(r#"{"z":1,"a":{"y":true,"b":[1.5,"x",null]}}"#).unwrap();
        let y: Node = serde_yaml::from_str("z: 1\na:\n  y: true\n  b: [1.5, x, ~]\n").unwrap();
        assert_eq!(j, y);
        let Node::Map(m) = &j else { panic!() };
        assert_eq!(m[0].0, "z");
        assert_eq!(j.to_json().to_string(), r#"{"a":{"b":[1.5,"x",null],"y":true},"z":1}"#);
    }

    #[test]
    fn duplicate_keys_and_big_ints() {
        assert!(serde_json::from_str::<Node>(r#"{"a":1,"a":2}"#).is_err());
        let n: Node = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(n, Node::BigInt("18446744073709551615".into()));
    }

    #[test]
    fn floats_print_as_sops_writes_them() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(0.000001), "0.000001");
    }
}
