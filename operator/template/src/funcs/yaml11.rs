//! ESO's `fromYaml` reading: `sigs.k8s.io/yaml` v1.6.0, which decodes with `go.yaml.in/yaml/v2` v2.4.4 (YAML 1.1
//! resolution) into `interface{}`, converts keys to strings, and goes through JSON into a `map[string]interface{}`.
//!
//! The events come from `yaml-rust2`'s parser; everything after them is yaml.v2's decoder, re-implemented:
//! - plain scalars resolve as YAML 1.1 does in yaml.v2: `y`, `Y`, `yes`, `on`, `true`… are `true`; `n`, `no`, `off`,
//!   `false`… are `false`; `~`, `null` and empty are null; integers in any base Go's `strconv.ParseInt(s, 0, 64)`
//!   reads (`0x1F`, `0o17`, `017`, `0b101`, with `_` separators), then `uint64`, then floats (`1.5e3`, `.5`, `.inf`,
//!   `.nan`); anything else is a string; quoted and block scalars are strings;
//! - tags: `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!timestamp` (with yaml.v2's "cannot decode" errors),
//!   `!!binary` (base64), other tags leave the text as a string;
//! - anchors and aliases (expanded, with yaml.v2's cycle and "excessive aliasing" checks), merge keys `<<` (a map or a
//!   sequence of maps; explicit keys after the merge win, earlier maps of a sequence win);
//! - only the first document is read; duplicate keys: the last wins;
//! - then sigs.k8s.io/yaml's conversion: keys become strings (`1` → `"1"`, `2.5` → `"2.5"` formatted as a float32,
//!   `true` → `"true"`; a null or uint64 key is an error), and the JSON round trip turns every number into a
//!   `float64` and fails on NaN and infinities.
//!
//! Every node is charged to the render's budget before it is built, aliases included (a "billion laughs" document
//! runs out of budget, not of memory). Syntax errors are yaml-rust2's, in yaml.v2's `yaml: line N: …` form; their
//! wording differs from libyaml's.
use std::collections::HashMap;

use bytes::Bytes;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

use super::FnError;
use crate::alloc::{Budget, Buf, Exhausted, ListBuf, Map};
use crate::value::{ListKind, MAX_VALUE_DEPTH, Value, format_float_g};

/// What one parsed node costs, besides its text.
const NODE_COST: usize = 64;

const TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// A node of the first document.
enum Node {
    Scalar {
        value: String,
        /// The tag in its short form (`!!int`), `""` when there is none.
        tag: String,
        /// An untagged plain scalar: its type is resolved from its text.
        implicit: bool,
    },
    Seq(Vec<usize>),
    /// Keys and values, alternating.
    Map(Vec<usize>),
    Alias {
        target: usize,
        name: String,
    },
}

/// Why reading failed: a message for the `Error` entry, or the budget.
pub enum YamlError {
    Msg(String),
    Budget(Exhausted),
}

impl From<Exhausted> for YamlError {
    fn from(e: Exhausted) -> YamlError {
        YamlError::Budget(e)
    }
}

impl From<YamlError> for FnError {
    fn from(e: YamlError) -> FnError {
        match e {
            YamlError::Msg(m) => FnError::Msg(m),
            YamlError::Budget(e) => e.into(),
        }
    }
}

type R<T> = Result<T, YamlError>;

fn yaml_err<T>(msg: impl Into<String>) -> R<T> {
    Err(YamlError::Msg(format!("yaml: {}", msg.into())))
}

fn short_tag(tag: &Tag) -> String {
    if tag.handle == TAG_PREFIX {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// The anchor name of an alias at `index` of the input (`*name`), for yaml.v2's messages.
fn alias_name(src: &str, index: usize) -> String {
    let from = src.get(index..).unwrap_or("");
    let from = from.find('*').map_or(from, |i| &from[i + 1..]);
    from.chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
        .collect()
}

/// Parses the first document into nodes; returns the root (`None` for an empty stream or document).
fn parse(budget: &Budget, src: &str) -> R<(Vec<Node>, Option<usize>)> {
    let mut p = Parser::new_from_str(src);
    let mut nodes: Vec<Node> = Vec::new();
    let mut anchors: HashMap<usize, usize> = HashMap::new();
    // Open collections: (node index, is a mapping).
    let mut stack: Vec<usize> = Vec::new();
    let mut root = None;
    let add = |nodes: &mut Vec<Node>, stack: &[usize], root: &mut Option<usize>, n: Node| -> R<usize> {
        budget.charge(NODE_COST)?;
        let i = nodes.len();
        nodes.push(n);
        match stack.last().and_then(|&p| nodes.get_mut(p)) {
            Some(Node::Seq(items) | Node::Map(items)) => items.push(i),
            _ => *root = Some(i),
        }
        Ok(i)
    };
    loop {
        let (event, mark) = match p.next_token() {
            Ok(e) => e,
            Err(e) => {
                let info = e.info();
                if info.contains("unknown anchor") {
                    return yaml_err(format!(
                        "unknown anchor '{}' referenced",
                        alias_name(src, e.marker().index())
                    ));
                }
                return yaml_err(format!("line {}: {}", e.marker().line(), info));
            }
        };
        match event {
            Event::StreamStart | Event::DocumentStart | Event::Nothing => {}
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::Alias(id) => {
                let Some(&target) = anchors.get(&id) else {
                    return yaml_err(format!("unknown anchor '{}' referenced", alias_name(src, mark.index())));
                };
                let name = alias_name(src, mark.index());
                budget.charge(name.len())?;
                add(&mut nodes, &stack, &mut root, Node::Alias { target, name })?;
            }
            Event::Scalar(value, style, anchor, tag) => {
                budget.charge(value.len())?;
                let implicit = style == TScalarStyle::Plain && tag.is_none();
                let tag = tag.as_ref().map(short_tag).unwrap_or_default();
                let i = add(&mut nodes, &stack, &mut root, Node::Scalar { value, tag, implicit })?;
                if anchor > 0 {
                    anchors.insert(anchor, i);
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let node = if matches!(event, Event::SequenceStart(..)) {
                    Node::Seq(Vec::new())
                } else {
                    Node::Map(Vec::new())
                };
                let i = add(&mut nodes, &stack, &mut root, node)?;
                if anchor > 0 {
                    anchors.insert(anchor, i);
                }
                stack.push(i);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
            }
        }
    }
    Ok((nodes, root))
}

/// A decoded value, typed as yaml.v2 decodes into `interface{}`.
#[derive(Clone, Debug)]
enum Y {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(Vec<u8>),
    Seq(Vec<Y>),
    /// Entries in order, without duplicate keys (a later key replaced the earlier one in place).
    Map(Vec<(Y, Y)>),
}

/// A map key's identity: Go map keys of different types never collide (`1` and `1.0` are two keys).
#[derive(PartialEq, Eq, Hash)]
enum KeyId {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(u64),
    Str(Vec<u8>),
}

fn key_id(y: &Y) -> Option<KeyId> {
    Some(match y {
        Y::Nil => KeyId::Nil,
        Y::Bool(b) => KeyId::Bool(*b),
        Y::Int(i) => KeyId::Int(*i),
        Y::Uint(u) => KeyId::Uint(*u),
        Y::Float(f) => KeyId::Float(f.to_bits()),
        Y::Str(s) => KeyId::Str(s.clone()),
        Y::Seq(_) | Y::Map(_) => return None,
    })
}

/// A Go map being filled: later keys replace earlier ones.
#[derive(Default)]
struct GoMap {
    entries: Vec<(Y, Y)>,
    index: HashMap<KeyId, usize>,
}

impl GoMap {
    fn set(&mut self, k: Y, v: Y) {
        match key_id(&k) {
            Some(id) => match self.index.get(&id) {
                Some(&i) => {
                    if let Some(slot) = self.entries.get_mut(i) {
                        slot.1 = v;
                    }
                }
                None => {
                    self.index.insert(id, self.entries.len());
                    self.entries.push((k, v));
                }
            },
            None => self.entries.push((k, v)),
        }
    }
}

/// yaml.v2's `resolve`: the tag a scalar resolves to, and its value.
fn resolve(tag: &str, value: &str) -> R<Y> {
    const STR: &str = "!!str";
    const BINARY: &str = "!!binary";
    if !matches!(
        tag,
        "" | STR | "!!bool" | "!!int" | "!!float" | "!!null" | "!!timestamp"
    ) {
        if tag == BINARY {
            let decoded = super::encoding::go_b64_decode(value.as_bytes())
                .map_err(|_| YamlError::Msg("yaml: !!binary value contains invalid base64 data".into()))?;
            return Ok(Y::Str(decoded));
        }
        return Ok(Y::Str(value.as_bytes().to_vec()));
    }
    let (rtag, out) = resolve_plain(tag, value);
    // yaml.v2's check of an explicit tag against what the text resolved to.
    match (tag, rtag) {
        ("" | STR, _) => Ok(out),
        (t, r) if t == r => Ok(out),
        ("!!float", "!!int") => Ok(match out {
            Y::Int(i) => Y::Float(i as f64),
            Y::Uint(u) => Y::Float(u as f64),
            other => other,
        }),
        (t, r) => yaml_err(format!("cannot decode {r} `{value}` as a {t}")),
    }
}

fn resolve_plain(tag: &str, v: &str) -> (&'static str, Y) {
    let s = || ("!!str", Y::Str(v.as_bytes().to_vec()));
    if tag == "!!str" {
        return s();
    }
    let hint = match v.as_bytes().first() {
        None => b'N',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        Some(_) => return s(),
    };
    match v {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return ("!!bool", Y::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return ("!!bool", Y::Bool(false));
        }
        "" | "~" | "null" | "Null" | "NULL" => return ("!!null", Y::Nil),
        ".nan" | ".NaN" | ".NAN" => return ("!!float", Y::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return ("!!float", Y::Float(f64::INFINITY)),
        "-.inf" | "-.Inf" | "-.INF" => return ("!!float", Y::Float(f64::NEG_INFINITY)),
        "<<" => return ("!!merge", Y::Str(b"<<".to_vec())),
        _ => {}
    }
    match hint {
        b'.' => {
            if let Some(f) = go_parse_float(v) {
                return ("!!float", Y::Float(f));
            }
        }
        b'D' | b'S' => {
            if (tag.is_empty() || tag == "!!timestamp") && is_timestamp(v) {
                return ("!!timestamp", Y::Str(v.as_bytes().to_vec()));
            }
            let plain: String = v.chars().filter(|&c| c != '_').collect();
            if let Some(i) = go_parse_int(&plain, 0) {
                return ("!!int", Y::Int(i));
            }
            if let Some(u) = go_parse_uint(&plain, 0) {
                return ("!!int", Y::Uint(u));
            }
            if yaml_style_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return ("!!float", Y::Float(f));
            }
            if let Some(bin) = plain.strip_prefix("0b") {
                if let Some(i) = go_parse_int(bin, 2) {
                    return ("!!int", Y::Int(i));
                }
                if let Some(u) = go_parse_uint(bin, 2) {
                    return ("!!int", Y::Uint(u));
                }
            } else if let Some(bin) = plain.strip_prefix("-0b")
                && let Some(i) = go_parse_int(&format!("-{bin}"), 2)
            {
                return ("!!int", Y::Int(i));
            }
        }
        _ => {}
    }
    s()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text; `None` on a syntax error or overflow to infinity.
fn go_parse_float(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['+', '-']);
    let decimal = !body.is_empty()
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && body.bytes().any(|c| c.is_ascii_digit())
        && body.matches('.').count() <= 1;
    if !decimal || s.len() > body.len() + 1 {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// Go's `strconv.ParseInt(s, base, 64)` with base 0 (prefixes `0x`, `0o`, `0b`, a leading `0` for octal) or 2.
fn go_parse_int(s: &str, base: u32) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = go_parse_uint(body, base)?;
    if neg {
        if mag <= 1u64 << 63 {
            Some((mag as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// Go's `strconv.ParseUint(s, base, 64)` (no sign allowed) with base 0 or an explicit base.
fn go_parse_uint(s: &str, base: u32) -> Option<u64> {
    let (radix, digits) = if base == 0 {
        let b = s.as_bytes();
        match (b.first(), b.get(1)) {
            (Some(b'0'), Some(b'x' | b'X')) => (16, &s[2..]),
            (Some(b'0'), Some(b'o' | b'O')) => (8, &s[2..]),
            (Some(b'0'), Some(b'b' | b'B')) => (2, &s[2..]),
            (Some(b'0'), Some(_)) => (8, &s[1..]),
            _ => (10, s),
        }
    } else {
        (base, s)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// yaml.v2's `parseTimestamp`: `YYYY-` then one of its layouts.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    [
        "2006-1-2T15:4:5.999999999Z07:00",
        "2006-1-2t15:4:5.999999999Z07:00",
        "2006-1-2 15:4:5.999999999",
        "2006-1-2",
    ]
    .iter()
    .any(|layout| super::dates::go_parse_layout(layout, s))
}

/// yaml.v2's decoder state: the nodes, aliases being expanded, and the counters of its aliasing check.
struct Decoder<'a> {
    nodes: &'a [Node],
    budget: &'a Budget,
    expanding: Vec<usize>,
    decode_count: u64,
    alias_count: u64,
    alias_depth: u32,
}

impl Decoder<'_> {
    fn node(&self, i: usize) -> R<&Node> {
        self.nodes
            .get(i)
            .ok_or_else(|| YamlError::Msg("yaml: internal error".into()))
    }

    fn count(&mut self) -> R<()> {
        self.decode_count += 1;
        if self.alias_depth > 0 {
            self.alias_count += 1;
        }
        let ratio = |n: u64| -> f64 {
            const LOW: f64 = 400_000.0;
            const HIGH: f64 = 4_000_000.0;
            let n = n as f64;
            if n <= LOW {
                0.99
            } else if n >= HIGH {
                0.10
            } else {
                0.99 - 0.89 * ((n - LOW) / (HIGH - LOW))
            }
        };
        if self.alias_count > 100
            && self.decode_count > 1000
            && self.alias_count as f64 / self.decode_count as f64 > ratio(self.decode_count)
        {
            return yaml_err("document contains excessive aliasing");
        }
        Ok(())
    }

    fn decode(&mut self, i: usize, depth: usize) -> R<Y> {
        if depth > MAX_VALUE_DEPTH {
            return yaml_err("document nested too deeply");
        }
        self.count()?;
        self.budget.charge(NODE_COST)?;
        match self.node(i)? {
            Node::Alias { target, name } => {
                if self.expanding.contains(&i) {
                    return yaml_err(format!("anchor '{name}' value contains itself"));
                }
                let target = *target;
                self.expanding.push(i);
                self.alias_depth += 1;
                let out = self.decode(target, depth + 1);
                self.alias_depth -= 1;
                self.expanding.pop();
                out
            }
            Node::Scalar { value, tag, implicit } => {
                if tag.is_empty() && !implicit {
                    return Ok(Y::Str(value.as_bytes().to_vec()));
                }
                resolve(tag, value)
            }
            Node::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for &c in items.clone().iter() {
                    out.push(self.decode(c, depth + 1)?);
                }
                Ok(Y::Seq(out))
            }
            Node::Map(_) => {
                let mut out = GoMap::default();
                self.mapping(i, &mut out, depth)?;
                Ok(Y::Map(out.entries))
            }
        }
    }

    fn is_merge(&self, k: usize) -> bool {
        matches!(self.nodes.get(k), Some(Node::Scalar { value, tag, implicit })
            if value == "<<" && (*implicit || tag == "!!merge"))
    }

    /// The target of an alias chain (merge checks look through aliases).
    fn through_alias(&self, mut i: usize) -> usize {
        for _ in 0..self.nodes.len() {
            match self.nodes.get(i) {
                Some(Node::Alias { target, .. }) => i = *target,
                _ => break,
            }
        }
        i
    }

    /// Decodes mapping node `i` into `out` (merges decode other mappings into the same map).
    fn mapping(&mut self, i: usize, out: &mut GoMap, depth: usize) -> R<()> {
        let Node::Map(children) = self.node(i)? else {
            return yaml_err("map merge requires map or sequence of maps as the value");
        };
        let children = children.clone();
        for pair in children.chunks(2) {
            let [k, v] = pair else { continue };
            if self.is_merge(*k) {
                self.merge(*v, out, depth + 1)?;
                continue;
            }
            let key = self.decode(*k, depth + 1)?;
            if matches!(key, Y::Seq(_) | Y::Map(_)) {
                return yaml_err(format!("invalid map key: {}", go_sharp_v(&key)));
            }
            let value = self.decode(*v, depth + 1)?;
            out.set(key, value);
        }
        Ok(())
    }

    fn merge(&mut self, v: usize, out: &mut GoMap, depth: usize) -> R<()> {
        let fail = || yaml_err("map merge requires map or sequence of maps as the value");
        match self.node(v)? {
            Node::Map(_) => {
                self.count()?;
                self.mapping(v, out, depth)
            }
            Node::Alias { .. } => {
                let target = self.through_alias(v);
                if !matches!(self.node(target)?, Node::Map(_)) {
                    return fail();
                }
                self.alias_depth += 1;
                self.count()?;
                let r = self.mapping(target, out, depth);
                self.alias_depth -= 1;
                r
            }
            Node::Seq(items) => {
                let items = items.clone();
                // Earlier maps take precedence: merge them last.
                for &item in items.iter().rev() {
                    let target = self.through_alias(item);
                    if !matches!(self.node(target)?, Node::Map(_)) {
                        return fail();
                    }
                    self.count()?;
                    self.mapping(target, out, depth)?;
                }
                Ok(())
            }
            Node::Scalar { .. } => fail(),
        }
    }
}

/// Go's `%#v` of a decoded value (yaml.v2 and sigs.k8s.io/yaml quote keys and values in some errors).
fn go_sharp_v(y: &Y) -> String {
    match y {
        Y::Nil => "<nil>".into(),
        Y::Bool(b) => b.to_string(),
        Y::Int(i) => i.to_string(),
        Y::Uint(u) => format!("0x{u:x}"),
        Y::Float(f) => format_float_g(*f),
        Y::Str(s) => {
            let mut out = Buf::new(&Budget::new(usize::MAX));
            crate::fmt::go_quote(&mut out, s, false);
            String::from_utf8_lossy(out.as_slice()).into_owned()
        }
        Y::Seq(items) => format!(
            "[]interface {{}}{{{}}}",
            items.iter().map(go_sharp_v).collect::<Vec<_>>().join(", ")
        ),
        Y::Map(entries) => format!(
            "map[interface {{}}]interface {{}}{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}:{}", go_sharp_v(k), go_sharp_v(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// sigs.k8s.io/yaml's key conversion, then the JSON round trip into template values.
fn to_value(budget: &Budget, y: Y) -> R<Value> {
    Ok(match y {
        Y::Nil => Value::Nil,
        Y::Bool(b) => Value::Bool(b),
        Y::Int(i) => Value::Float(i as f64),
        Y::Uint(u) => Value::Float(u as f64),
        Y::Float(f) => {
            if !f.is_finite() {
                return Err(YamlError::Msg(format!(
                    "json: unsupported value: {}",
                    format_float_g(f)
                )));
            }
            Value::Float(f)
        }
        // JSON replaces invalid UTF-8 (from !!binary) with U+FFFD.
        Y::Str(s) => Value::copy_str(budget, String::from_utf8_lossy(&s).as_bytes())?,
        Y::Seq(items) => {
            let mut out = ListBuf::with_capacity(budget, items.len())?;
            for item in items {
                out.push(to_value(budget, item)?)?;
            }
            Value::List(ListKind::Any, out.finish())
        }
        Y::Map(entries) => {
            let out = Map::new(budget)?;
            for (k, v) in entries {
                let key = match &k {
                    Y::Str(s) => String::from_utf8_lossy(s).into_owned(),
                    Y::Int(i) => i.to_string(),
                    Y::Float(f) => match float32_g(*f).as_str() {
                        "+Inf" => ".inf".into(),
                        "-Inf" => "-.inf".into(),
                        "NaN" => ".nan".into(),
                        s => s.to_string(),
                    },
                    Y::Bool(b) => b.to_string(),
                    other => {
                        let ty = match other {
                            Y::Uint(_) => "uint64",
                            _ => "%!s(<nil>)",
                        };
                        return Err(YamlError::Msg(format!(
                            "unsupported map key of type: {ty}, key: {}, value: {}",
                            go_sharp_v(other),
                            go_sharp_v(&v)
                        )));
                    }
                };
                let value = to_value(budget, v)?;
                let key = Buf::copy_of(budget, key.as_bytes())?.into_str()?;
                // A fresh map has no other handle: it cannot be busy.
                let _ = out.insert(budget, Bytes::clone(key.bytes()), value)?;
            }
            Value::Map(out)
        }
    })
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`: the shortest text that reads back as the same float32.
fn float32_g(f: f64) -> String {
    let g = f as f32;
    if g.is_nan() {
        return "NaN".into();
    }
    if g.is_infinite() {
        return if g > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    // Rust's shortest float32 digits, in Go's %g layout (exponent below -4 or at least 21 digits... as for 64 bits).
    let shortest: f64 = format!("{g:e}").parse().unwrap_or(f);
    format_float_g(shortest)
}

/// ESO's `fromYaml` reading of `src`: a value for the JSON round trip, or the message of the `Error` entry.
pub fn read(budget: &Budget, src: &[u8]) -> R<Value> {
    let Ok(text) = std::str::from_utf8(src) else {
        return yaml_err("invalid leading UTF-8 octet");
    };
    let (nodes, root) = parse(budget, text)?;
    let Some(root) = root else {
        return Ok(Value::Nil);
    };
    let mut d = Decoder {
        nodes: &nodes,
        budget,
        expanding: Vec::new(),
        decode_count: 0,
        alias_count: 0,
        alias_depth: 0,
    };
    let y = d.decode(root, 0)?;
    to_value(budget, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(v: &str) -> String {
        format!("{:?}", resolve("", v).ok().map(|y| format!("{y:?}")))
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_v2() {
        assert_eq!(resolved("y"), "Some(\"Bool(true)\")");
        assert_eq!(resolved("off"), "Some(\"Bool(false)\")");
        assert_eq!(resolved("0x1F"), "Some(\"Int(31)\")");
        assert_eq!(resolved("017"), "Some(\"Int(15)\")");
        assert_eq!(resolved("0o17"), "Some(\"Int(15)\")");
        assert_eq!(resolved("1_000"), "Some(\"Int(1000)\")");
        assert_eq!(resolved("08"), "Some(\"Float(8.0)\")");
        assert_eq!(resolved("-0b101"), "Some(\"Int(-5)\")");
        assert_eq!(resolved("18446744073709551615"), "Some(\"Uint(18446744073709551615)\")");
        assert_eq!(resolved("1e400"), "Some(\"Str([49, 101, 52, 48, 48])\")");
        assert_eq!(resolved("12:30"), "Some(\"Str([49, 50, 58, 51, 48])\")");
        assert!(resolve("!!int", "abc").is_err());
        assert_eq!(format!("{:?}", resolve("!!float", "1").ok()), "Some(Float(1.0))");
    }
}
