//! JSON (sprig, `encoding/json`) and YAML (ESO's `toYaml`/`fromYaml`, `sigs.k8s.io/yaml`) conversions.
use std::cell::Cell;
use std::fmt::Write as _;

use bytes::Bytes;

use super::{Ctx, FnError, FnResult, s};
use crate::alloc::{Budget, Buf, Exhausted, ListBuf, Map, Str};
use crate::value::{ListKind, MAX_VALUE_DEPTH, Value, format_float_g, format_float_json};

// ---------------------------------------------------------------- JSON decoding

/// Builds a [`Value`] straight from the parser, charging every string, list slot and map entry before it is made
/// (no intermediate tree). Numbers are `float64`, as `json.Unmarshal` into `interface{}` makes them.
#[derive(Clone, Copy)]
struct Seed<'b> {
    budget: &'b Budget,
    exhausted: &'b Cell<bool>,
}

impl Seed<'_> {
    fn fail<E: serde::de::Error>(&self, e: impl Into<Exhausted>) -> E {
        let _ = e.into();
        self.exhausted.set(true);
        E::custom("budget")
    }

    fn string<E: serde::de::Error>(&self, v: &str) -> Result<Str, E> {
        Buf::copy_of(self.budget, v.as_bytes())
            .and_then(Buf::into_str)
            .map_err(|e| self.fail(e))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(self.string(v)?))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = ListBuf::new(self.budget);
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v).map_err(|e| self.fail(e))?;
        }
        Ok(Value::List(ListKind::Any, out.finish()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let out = Map::new(self.budget).map_err(|e| self.fail(e))?;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let key = self.string(&k)?;
            let v = map.next_value_seed(self)?;
            // A fresh map has no other handle: it cannot be busy. Later duplicates win, as in Go.
            let _ = out
                .insert(self.budget, key.bytes().clone(), v)
                .map_err(|e| self.fail(e))?;
        }
        Ok(Value::Map(out))
    }
}

/// Why JSON could not be read: its syntax (where, not what), or the budget.
pub enum JsonError {
    Syntax(String),
    Budget(Exhausted),
}

impl From<JsonError> for FnError {
    fn from(e: JsonError) -> FnError {
        match e {
            JsonError::Syntax(m) => FnError::Msg(m),
            JsonError::Budget(e) => e.into(),
        }
    }
}

/// `json.Unmarshal` into `interface{}`, charged to `budget`. The error message says where, not what.
pub fn parse_json(budget: &Budget, b: &[u8]) -> Result<Value, JsonError> {
    use serde::de::DeserializeSeed;
    let exhausted = Cell::new(false);
    let seed = Seed {
        budget,
        exhausted: &exhausted,
    };
    let mut de = serde_json::Deserializer::from_slice(b);
    let r = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    r.map_err(|e| {
        if exhausted.get() {
            JsonError::Budget(Exhausted { limit: budget.limit() })
        } else {
            JsonError::Syntax(format!("invalid JSON at line {} column {}", e.line(), e.column()))
        }
    })
}

pub fn from_json(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    match parse_json(&ctx.budget, s(&a[0])) {
        Ok(v) => Ok(v),
        Err(JsonError::Syntax(_)) => Ok(Value::Nil),
        Err(e) => Err(e.into()),
    }
}

pub fn must_from_json(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(parse_json(&ctx.budget, s(&a[0]))?)
}

// ---------------------------------------------------------------- JSON encoding

fn json_string(out: &mut Buf, b: &[u8], escape_html: bool) {
    out.push_char('"');
    let text = String::from_utf8_lossy(b);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push_char(c),
        }
    }
    out.push_char('"');
}

struct JsonOpts {
    escape_html: bool,
    indent: Option<&'static str>,
}

fn newline(out: &mut Buf, opts: &JsonOpts, level: usize) {
    if let Some(ind) = opts.indent {
        out.push_char('\n');
        for _ in 0..level {
            out.push_str(ind);
        }
    }
}

fn write_json(out: &mut Buf, v: &Value, opts: &JsonOpts, level: usize) -> Result<(), FnError> {
    if level > MAX_VALUE_DEPTH {
        return Err(FnError::msg(
            "json: unsupported value: encountered a cycle or too deep nesting",
        ));
    }
    out.ok()?;
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => match format_float_json(*f) {
            Some(t) => out.push_str(&t),
            None => return Err(FnError::msg(format!("json: unsupported value: {}", format_float_g(*f)))),
        },
        Value::Str(b) => json_string(out, b, opts.escape_html),
        Value::Time(t) => {
            let txt = super::dates::rfc3339_nano(t);
            json_string(out, txt.as_bytes(), opts.escape_html);
        }
        Value::Uint64(u) => {
            let _ = write!(out, "{u}");
        }
        // `Version.MarshalJSON`: its string.
        Value::Semver(v) => json_string(out, v.canonical().as_bytes(), opts.escape_html),
        // A struct: an object of its exported fields.
        Value::Cert(c) => write_json(out, &c.as_map(out.budget())?, opts, level)?,
        Value::List(_, l) => {
            out.push_char('[');
            if l.is_empty() {
                out.push_char(']');
                return Ok(());
            }
            for (k, e) in l.iter().enumerate() {
                if k > 0 {
                    out.push_char(',');
                }
                newline(out, opts, level + 1);
                write_json(out, e, opts, level + 1)?;
            }
            newline(out, opts, level);
            out.push_char(']');
        }
        Value::Map(_) | Value::StrMap(_) => {
            let entries = v.map_entries(out.budget())?.unwrap_or_default();
            out.push_char('{');
            if entries.is_empty() {
                out.push_char('}');
                return Ok(());
            }
            for (k, (key, e)) in entries.iter().enumerate() {
                if k > 0 {
                    out.push_char(',');
                }
                newline(out, opts, level + 1);
                json_string(out, key, opts.escape_html);
                out.push_char(':');
                if opts.indent.is_some() {
                    out.push_char(' ');
                }
                write_json(out, e, opts, level + 1)?;
            }
            newline(out, opts, level);
            out.push_char('}');
        }
    }
    Ok(())
}

/// `json.Marshal` (HTML-escaping, compact), written into `out`.
pub fn marshal_json(out: &mut Buf, v: &Value) -> Result<(), FnError> {
    write_json(
        out,
        v,
        &JsonOpts {
            escape_html: true,
            indent: None,
        },
        0,
    )?;
    Ok(out.ok()?)
}

fn marshal(ctx: &Ctx, v: &Value, escape_html: bool, indent: Option<&'static str>) -> FnResult {
    let mut out = ctx.buf();
    write_json(&mut out, v, &JsonOpts { escape_html, indent }, 0)?;
    Ok(out.into_value()?)
}

/// The non-`must` variants render an encoding error as an empty string, as sprig does; the budget still fails the
/// template.
fn or_empty(r: FnResult) -> FnResult {
    match r {
        Err(FnError::Msg(_)) => Ok(Value::from_static(b"")),
        other => other,
    }
}

pub fn to_json(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    or_empty(marshal(ctx, &a[0], true, None))
}

pub fn must_to_json(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    marshal(ctx, &a[0], true, None)
}

pub fn to_pretty_json(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    or_empty(marshal(ctx, &a[0], true, Some("  ")))
}

pub fn must_to_pretty_json(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    marshal(ctx, &a[0], true, Some("  "))
}

pub fn to_raw_json(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    marshal(ctx, &a[0], false, None)
}

pub fn must_to_raw_json(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    marshal(ctx, &a[0], false, None)
}

// ---------------------------------------------------------------- YAML

/// A scalar's plain text would resolve to something other than a string under YAML 1.1 (`yaml.v2`'s resolver).
fn resolves_non_string(t: &str) -> bool {
    if t.is_empty() {
        return true;
    }
    const SPECIAL: &[&str] = &[
        "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE",
        "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "+.inf", "+.Inf",
        "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&t) {
        return true;
    }
    let first = t.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return false;
    }
    let plain: String = t.chars().filter(|&c| c != '_').collect();
    let body = plain.trim_start_matches(['-', '+']);
    if body.is_empty() {
        return false;
    }
    if plain.parse::<i64>().is_ok() || plain.parse::<u64>().is_ok() {
        return true;
    }
    if let Some(h) = body.strip_prefix("0x")
        && !h.is_empty()
        && h.bytes().all(|c| c.is_ascii_hexdigit())
    {
        return true;
    }
    if let Some(b) = body.strip_prefix("0b")
        && !b.is_empty()
        && b.bytes().all(|c| c == b'0' || c == b'1')
    {
        return true;
    }
    let float_like = body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'))
        && body.bytes().any(|c| c.is_ascii_digit());
    if float_like && plain.parse::<f64>().is_ok() {
        return true;
    }
    // timestamps (YYYY-MM-DD…)
    let tb = t.as_bytes();
    if tb.len() >= 10
        && tb[..4].iter().all(u8::is_ascii_digit)
        && tb[4] == b'-'
        && tb[5..7].iter().all(u8::is_ascii_digit)
        && tb[7] == b'-'
        && tb[8..10].iter().all(u8::is_ascii_digit)
    {
        return true;
    }
    // base 60 floats (1:20)
    if body.contains(':')
        && body
            .split(':')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
    {
        return true;
    }
    false
}

/// libyaml's analysis: may this string be written as a plain scalar in block context?
fn plain_allowed(t: &str) -> bool {
    if t.is_empty() {
        return false;
    }
    let b = t.as_bytes();
    if b[0] == b' ' || b[b.len() - 1] == b' ' {
        return false;
    }
    if t.starts_with("---") || t.starts_with("...") {
        return false;
    }
    let first = b[0];
    let next_is_space = b.get(1).is_none_or(|c| *c == b' ');
    match first {
        b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@'
        | b'`' => {
            return false;
        }
        b'?' | b':' | b'-' if next_is_space => return false,
        _ => {}
    }
    for (k, c) in t.char_indices() {
        // libyaml's line breaks (`\u{2028}`, `\u{2029}`) make a plain scalar impossible too.
        if !is_printable(c) || matches!(c, '\t' | '\u{2028}' | '\u{2029}') {
            return false;
        }
        if c == ':' && b.get(k + 1).is_none_or(|n| *n == b' ') {
            return false;
        }
        if c == '#' && k > 0 && b[k - 1] == b' ' {
            return false;
        }
    }
    true
}

/// yaml.v2's `is_printable`: line feed, printable ASCII and the Basic Multilingual Plane above U+00A0 (but not the
/// BOM); astral characters are escaped.
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\x20'..='\x7e' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}') && c != '\u{feff}'
}

/// Characters libyaml's reader refuses in its input (`control characters are not allowed`) that JSON does not
/// escape: sigs.k8s.io/yaml's JSON-to-YAML step then fails, and `toYaml` gives "".
fn unreadable(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{84}' | '\u{86}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}')
}

/// Whether every string and key of `v` survives sigs.k8s.io/yaml's JSON-to-YAML step.
fn yaml_readable(v: &Value, depth: usize) -> bool {
    let ok = |b: &[u8]| !String::from_utf8_lossy(b).chars().any(unreadable);
    if depth > MAX_VALUE_DEPTH {
        return false;
    }
    match v {
        Value::Str(s) => ok(s),
        Value::List(_, l) => l.iter().all(|e| yaml_readable(e, depth + 1)),
        Value::Map(m) => m
            .borrow()
            .map(|m| m.iter().all(|(k, e)| ok(k) && yaml_readable(e, depth + 1)))
            .unwrap_or(false),
        Value::StrMap(m) => m.iter().all(|(k, e)| ok(k) && ok(e)),
        Value::Cert(c) => ok(&c.cert) && ok(&c.key),
        _ => true,
    }
}

/// libyaml's escape of one character inside a double-quoted scalar.
fn dq_escape(c: char, out: &mut Buf) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\0' => out.push_str("\\0"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\x0b' => out.push_str("\\v"),
        '\x0c' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        '\x1b' => out.push_str("\\e"),
        '\u{85}' => out.push_str("\\N"),
        '\u{a0}' => out.push_str("\\_"),
        '\u{2028}' => out.push_str("\\L"),
        '\u{2029}' => out.push_str("\\P"),
        c if !is_printable(c) => {
            let n = c as u32;
            if n <= 0xff {
                let _ = write!(out, "\\x{n:02X}");
            } else if n <= 0xffff {
                let _ = write!(out, "\\u{n:04X}");
            } else {
                let _ = write!(out, "\\U{n:08X}");
            }
        }
        c => out.push_char(c),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    Plain,
    Single,
    Double,
}

/// The emitter's column: characters since the last line break.
fn column(out: &Buf) -> usize {
    let b = out.as_slice();
    let line = b.iter().rposition(|&c| c == b'\n').map_or(b, |nl| &b[nl + 1..]);
    chars_in(line)
}

/// Characters in UTF-8 text (bytes that do not continue a character).
fn chars_in(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c & 0xC0 != 0x80).count()
}

/// Write a one-line scalar the way libyaml does, folding at a space once past column 80 (yaml.v2's width) when the
/// scalar is a value (`fold`); continuation lines are indented to `indent + 2`.
fn write_flow_scalar(out: &mut Buf, t: &str, style: Quote, fold: bool, indent: usize) {
    const BEST_WIDTH: usize = 80;
    match style {
        Quote::Single => out.push_char('\''),
        Quote::Double => out.push_char('"'),
        Quote::Plain => {}
    }
    let mut col = column(out);
    let mut spaces = false;
    for (k, c) in t.char_indices() {
        if out.failed() {
            return;
        }
        if c == ' ' {
            let edge_ok = style == Quote::Plain || (k != 0 && k + 1 != t.len());
            let next_space = t.as_bytes().get(k + 1) == Some(&b' ');
            if fold && !spaces && col > BEST_WIDTH && edge_ok && (style == Quote::Double || !next_space) {
                out.push_char('\n');
                out.fill(b' ', indent + 2);
                col = indent + 2;
                if style == Quote::Double && next_space {
                    out.push_char('\\');
                    col += 1;
                }
            } else {
                out.push_char(' ');
                col += 1;
            }
            spaces = true;
            continue;
        }
        spaces = false;
        let before = out.len();
        match style {
            Quote::Plain => out.push_char(c),
            Quote::Single => {
                if c == '\'' {
                    out.push_str("''");
                } else {
                    out.push_char(c);
                }
            }
            Quote::Double => dq_escape(c, out),
        }
        col += chars_in(out.as_slice().get(before..).unwrap_or(&[]));
    }
    match style {
        Quote::Single => out.push_char('\''),
        Quote::Double => out.push_char('"'),
        Quote::Plain => {}
    }
}

/// Write a string scalar the way `yaml.v2` + libyaml choose its style. `indent` is the block's indentation; `fold`
/// is false for mapping keys, which are never folded.
fn yaml_string(out: &mut Buf, t: &str, indent: usize, fold: bool) {
    if t.contains('\n') {
        // libyaml: a literal block unless a space precedes a line break or ends the text, or a character needs escaping.
        let literal_ok =
            t.chars().all(|c| is_printable(c) && c != '\r' && c != '\t') && !t.contains(" \n") && !t.ends_with(' ');
        if !literal_ok {
            write_flow_scalar(out, t, Quote::Double, fold, indent);
            return;
        }
        out.push_char('|');
        if t.starts_with([' ', '\n']) {
            out.push_char('2');
        }
        let chomp = if !t.ends_with('\n') {
            "-"
        } else if t == "\n" || t.ends_with("\n\n") {
            "+"
        } else {
            ""
        };
        out.push_str(chomp);
        out.push_char('\n');
        let mut at_line_start = true;
        for c in t.chars() {
            if c == '\n' {
                out.push_char('\n');
                at_line_start = true;
            } else {
                if at_line_start {
                    out.fill(b' ', indent + 2);
                }
                out.push_char(c);
                at_line_start = false;
            }
        }
        return;
    }
    let style = if resolves_non_string(t) {
        Quote::Double
    } else if plain_allowed(t) {
        Quote::Plain
    } else if t.chars().all(|c| is_printable(c) && c != '\t') {
        Quote::Single
    } else {
        Quote::Double
    };
    write_flow_scalar(out, t, style, fold, indent);
}

fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    // The value went through JSON first: a float JSON writes without exponent reads back as an int (or a uint64)
    // when it fits one.
    if let Some(j) = format_float_json(f).filter(|j| !j.contains(['e', '.']))
        && (j.parse::<i64>().is_ok() || j.parse::<u64>().is_ok())
    {
        return j;
    }
    format_float_g(f)
}

fn is_block_collection(v: &Value) -> bool {
    match v {
        Value::List(_, l) => !l.is_empty(),
        Value::Map(_) | Value::StrMap(_) => v.len().unwrap_or(0) > 0,
        Value::Cert(_) => true,
        _ => false,
    }
}

fn yaml_scalar(out: &mut Buf, v: &Value, indent: usize) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&yaml_float(*f)),
        Value::Str(b) => yaml_string(out, &String::from_utf8_lossy(b), indent, true),
        Value::Time(t) => yaml_string(out, &super::dates::rfc3339_nano(t), indent, true),
        Value::Uint64(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Semver(v) => yaml_string(out, &v.canonical(), indent, true),
        Value::List(..) => out.push_str("[]"),
        Value::Map(_) | Value::StrMap(_) | Value::Cert(_) => out.push_str("{}"),
    }
}

/// Start a new line at `indent`, unless a literal block scalar already ended its last line.
fn newline_indent(out: &mut Buf, indent: usize) {
    if !out.as_slice().ends_with(b"\n") {
        out.push_char('\n');
    }
    out.fill(b' ', indent);
}

/// Block-style YAML of `v` at `indent`; the caller has positioned the cursor.
fn write_yaml(out: &mut Buf, v: &Value, indent: usize, depth: usize) -> Result<(), FnError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(FnError::msg("value nested too deeply"));
    }
    out.ok()?;
    if let Value::Cert(c) = v {
        return write_yaml(out, &c.as_map(out.budget())?, indent, depth);
    }
    match v {
        Value::List(_, l) if !l.is_empty() => {
            for (k, e) in l.iter().enumerate() {
                if k > 0 {
                    newline_indent(out, indent);
                }
                out.push_str("- ");
                if is_block_collection(e) {
                    if let Value::List(..) = e {
                        write_yaml(out, e, indent + 2, depth + 1)?;
                    } else {
                        write_yaml(out, e, indent + 2, depth + 1)?;
                    }
                } else {
                    yaml_scalar(out, e, indent);
                }
            }
        }
        Value::Map(_) | Value::StrMap(_) if v.len().unwrap_or(0) > 0 => {
            for (k, (key, e)) in v.map_entries(out.budget())?.unwrap_or_default().iter().enumerate() {
                if k > 0 {
                    newline_indent(out, indent);
                }
                yaml_string(out, &String::from_utf8_lossy(key), indent, false);
                out.push_char(':');
                match e {
                    Value::Map(_) | Value::StrMap(_) | Value::Cert(_) if is_block_collection(e) => {
                        newline_indent(out, indent + 2);
                        write_yaml(out, e, indent + 2, depth + 1)?;
                    }
                    Value::List(..) if is_block_collection(e) => {
                        // yaml.v2 does not indent sequences inside mappings
                        newline_indent(out, indent);
                        write_yaml(out, e, indent, depth + 1)?;
                    }
                    _ => {
                        out.push_char(' ');
                        yaml_scalar(out, e, indent);
                    }
                }
            }
        }
        other => yaml_scalar(out, other, indent),
    }
    Ok(())
}

/// ESO's `toYaml`: `sigs.k8s.io/yaml.Marshal` without the final newline.
pub fn marshal_yaml(ctx: &Ctx, v: &Value) -> FnResult {
    // JSON first, as sigs.k8s.io/yaml does (NaN and cycles fail there), then read back as YAML.
    marshal_json(&mut ctx.buf(), v)?;
    if !yaml_readable(v, 0) {
        return Err(FnError::msg("yaml: control characters are not allowed"));
    }
    let mut out = ctx.buf();
    write_yaml(&mut out, v, 0, 0)?;
    // sigs.k8s.io/yaml ends with a newline, which ESO trims; a literal block may already have written it.
    if out.as_slice().ends_with(b"\n") {
        out.truncate(out.len() - 1);
    }
    Ok(out.into_value()?)
}

/// Errors give an empty string (ESO swallows them); the budget still fails the template.
pub fn to_yaml(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    or_empty(marshal_yaml(ctx, &a[0]))
}

/// ESO's `fromYaml`: a `map[string]any`; on failure a map holding the error under `Error` (see [`super::yaml11`]).
pub fn from_yaml(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let err_map = |msg: String| -> FnResult {
        let m = ctx.new_map()?;
        let _ = m.insert(&ctx.budget, Bytes::from_static(b"Error"), ctx.str_value(msg)?)?;
        Ok(Value::Map(m))
    };
    match super::yaml11::read(&ctx.budget, s(&a[0])) {
        Ok(v @ Value::Map(_)) => Ok(v),
        Ok(Value::Nil) => Ok(Value::Map(ctx.new_map()?)),
        Ok(other) => {
            let what = match other {
                Value::Str(_) => "string",
                Value::Float(_) => "number",
                Value::Bool(_) => "bool",
                Value::List(..) => "array",
                _ => "value",
            };
            err_map(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {what} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(super::yaml11::YamlError::Msg(e)) => err_map(format!("error converting YAML to JSON: {e}")),
        Err(e) => Err(e.into()),
    }
}
