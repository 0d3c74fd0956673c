//! Template values, modelled on the Go types that `text/template` and sprig hand around.
//!
//! Go strings are byte strings, so [`Value::Str`] holds bytes (a PKCS#12 keystore is not UTF-8). Every variant keeps the
//! Go type it stands for, because Go's reflection-based argument checks, `%v` printing, `typeOf` and comparisons depend
//! on it: `map[string]string` (the data context) is not assignable to a sprig parameter of type `map[string]interface {}`,
//! and an `int64` from `add` is not an `int`.
//!
//! The heap parts of a value ([`Str`], [`List`], [`Map`], [`StrMap`], [`Boxed`]) can only be made through the
//! charging constructors of [`crate::alloc`]; cloning a value shares them and costs nothing.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;

pub use crate::alloc::{Boxed, Budget, Buf, Exhausted, List, ListBuf, Map, Str, StrMap};

/// Element type of a slice value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// `[]interface {}`
    Any,
    /// `[]string`
    Str,
    /// `[]int`
    Int,
    /// `[][]interface {}`
    AnyList,
}

/// A time instant with a fixed zone (what sprig's date functions produce).
#[derive(Clone, Debug, PartialEq)]
pub struct GoTime {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
    /// Zone offset east of UTC in seconds.
    pub offset: i32,
    /// Zone abbreviation (`UTC`, `JST`, `+09`, or `""` for a bare offset).
    pub zone: Str,
}

/// A template value.
#[derive(Clone, Debug)]
pub enum Value {
    /// An untyped nil interface (Go's invalid `reflect.Value`). Prints as `<no value>` at the top of a pipeline and
    /// `<nil>` inside a container.
    Nil,
    Bool(bool),
    /// Go `int` (64-bit).
    Int(i64),
    /// Go `int64` (sprig arithmetic returns it).
    Int64(i64),
    /// Go `float64`.
    Float(f64),
    /// Go `string`: arbitrary bytes.
    Str(Str),
    /// A Go slice; [`ListKind`] tells its element type.
    List(ListKind, List),
    /// Go `map[string]interface {}`.
    Map(Map),
    /// Go `map[string]string` (the data context, sprig `split`).
    StrMap(StrMap),
    /// Go `time.Time`.
    Time(Boxed<GoTime>),
    /// Go `uint64` (a semantic version's `Major`, `Minor`, `Patch`).
    Uint64(u64),
    /// Masterminds' `*semver.Version` (or, from `IncPatch` and friends, `semver.Version`).
    Semver(Boxed<crate::funcs::semver::Version>),
    /// sprig's `certificate` struct (`Cert`, `Key`), from `genCA` and the other certificate generators.
    Cert(Boxed<crate::funcs::x509::Certificate>),
}

/// Values can nest as deep as a template loop makes them (`$l = list $l`); the default recursive drop would
/// overflow the stack, so children are released iteratively.
impl Drop for Value {
    fn drop(&mut self) {
        let mut stack = Vec::new();
        take_children(self, &mut stack);
        while let Some(mut v) = stack.pop() {
            take_children(&mut v, &mut stack);
        }
    }
}

fn take_children(v: &mut Value, stack: &mut Vec<Value>) {
    match v {
        Value::List(_, l) => {
            if let Some(items) = l.get_mut() {
                stack.append(items);
            }
        }
        Value::Map(m) => {
            if let Some(inner) = m.take_if_unique() {
                stack.extend(inner.into_values());
            }
        }
        _ => {}
    }
}

/// Maximum nesting followed by printing, JSON/YAML encoding and deep comparison. Deeper values (or cycles built with
/// `set`) are an error instead of a stack overflow.
pub const MAX_VALUE_DEPTH: usize = 256;

/// The error of a deep walk that went past [`MAX_VALUE_DEPTH`].
#[derive(Debug, Clone, Copy)]
pub struct TooDeep;

/// Why writing a value out stopped: too deep, or the budget has no room for the text.
#[derive(Debug, Clone, Copy)]
pub enum Overflow {
    TooDeep,
    Budget(Exhausted),
}

impl From<TooDeep> for Overflow {
    fn from(_: TooDeep) -> Overflow {
        Overflow::TooDeep
    }
}

impl From<Exhausted> for Overflow {
    fn from(e: Exhausted) -> Overflow {
        Overflow::Budget(e)
    }
}

/// The size a map's entry list costs when copied out for iteration.
const ENTRY_COPY_COST: usize = std::mem::size_of::<(Bytes, Value)>();

impl Value {
    /// A string of static bytes (allocates nothing).
    pub const fn from_static(b: &'static [u8]) -> Value {
        Value::Str(Str::from_static(b))
    }

    /// A copy of `b` as a string, charged.
    pub fn copy_str(budget: &Budget, b: &[u8]) -> Result<Value, Exhausted> {
        Buf::copy_of(budget, b)?.into_value()
    }

    /// The data context ESO builds: `map[string]string` of the fetched secret values. The copy is not charged to
    /// any budget: for one-off renders of the caller's own data (see [`Value::from_data_in`]).
    pub fn from_data(data: &BTreeMap<String, Vec<u8>>) -> Value {
        Value::from_data_in(data, &Budget::new(usize::MAX)).unwrap_or(Value::Nil)
    }

    /// The data context ESO builds, copied into `budget` (the render's budget, so that the data counts too).
    pub fn from_data_in(data: &BTreeMap<String, Vec<u8>>, budget: &Budget) -> Result<Value, Exhausted> {
        let mut entries = Vec::with_capacity(data.len());
        for (k, v) in data {
            entries.push((
                Buf::copy_of(budget, k.as_bytes())?.into_str()?,
                Buf::copy_of(budget, v)?.into_str()?,
            ));
        }
        Ok(Value::StrMap(StrMap::from_entries(budget, entries)?))
    }

    /// A two-level context, Go's `map[string]map[string]string` (the webhook provider's `.remoteRef.key`,
    /// `.auth.password`), copied into `budget`.
    pub fn from_nested<'a, I, J>(outer: I, budget: &Budget) -> Result<Value, Exhausted>
    where
        I: IntoIterator<Item = (&'a str, J)>,
        J: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let map = Map::new(budget)?;
        for (k, inner) in outer {
            let mut entries = Vec::new();
            for (ik, iv) in inner {
                entries.push((
                    Buf::copy_of(budget, ik.as_bytes())?.into_str()?,
                    Buf::copy_of(budget, iv)?.into_str()?,
                ));
            }
            let key = Buf::copy_of(budget, k.as_bytes())?.into_str()?;
            // A fresh map has no other handle: it cannot be busy.
            let _ = map.insert(
                budget,
                key.bytes().clone(),
                Value::StrMap(StrMap::from_entries(budget, entries)?),
            )?;
        }
        Ok(Value::Map(map))
    }

    /// Go's type name as `%T` and reflection errors print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(ListKind::Any, _) => "[]interface {}",
            Value::List(ListKind::Str, _) => "[]string",
            Value::List(ListKind::Int, _) => "[]int",
            Value::List(ListKind::AnyList, _) => "[][]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::StrMap(_) => "map[string]string",
            Value::Time(_) => "time.Time",
            Value::Uint64(_) => "uint64",
            Value::Semver(v) if v.pointer => "*semver.Version",
            Value::Semver(_) => "semver.Version",
            Value::Cert(_) => "sprig.certificate",
        }
    }

    /// Go's `reflect.Kind` name (sprig `kindOf`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(..) => "slice",
            Value::Map(_) | Value::StrMap(_) => "map",
            Value::Time(_) => "struct",
            Value::Uint64(_) => "uint64",
            Value::Semver(v) if v.pointer => "ptr",
            Value::Semver(_) | Value::Cert(_) => "struct",
        }
    }

    /// `text/template` truth: not the zero value of its type.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(_, l) => !l.is_empty(),
            Value::Map(m) => m.borrow().map(|m| !m.is_empty()).unwrap_or(true),
            Value::StrMap(m) => !m.is_empty(),
            Value::Time(_) | Value::Semver(_) | Value::Cert(_) => true,
            Value::Uint64(u) => *u != 0,
        }
    }

    /// sprig's `empty`: like falsiness, except that structs are never empty.
    pub fn is_empty(&self) -> bool {
        !self.truthy()
    }

    /// Length for `len`, when the type has one.
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s) => Some(s.len()),
            Value::List(_, l) => Some(l.len()),
            Value::Map(m) => Some(m.len()),
            Value::StrMap(m) => Some(m.len()),
            _ => None,
        }
    }

    /// Elements of a slice value.
    pub fn as_list(&self) -> Option<&List> {
        match self {
            Value::List(_, l) => Some(l),
            _ => None,
        }
    }

    /// Look a key up in either map type; `None` when absent or not a map.
    pub fn map_get(&self, key: &[u8]) -> Option<Value> {
        match self {
            Value::Map(m) => m.get(key),
            Value::StrMap(m) => m.get(key).map(|v| Value::Str(Str::shared(v.clone()))),
            _ => None,
        }
    }

    /// The entries of a map value in Go's (sorted) iteration order, copied out (charged: the copy is as long as
    /// the map).
    pub fn map_entries(&self, budget: &Budget) -> Result<Option<Vec<(Bytes, Value)>>, Exhausted> {
        Ok(match self {
            Value::Map(m) => {
                let Ok(m) = m.borrow() else { return Ok(Some(Vec::new())) };
                budget.charge_n(m.len(), ENTRY_COPY_COST)?;
                Some(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            Value::StrMap(m) => {
                budget.charge_n(m.len(), ENTRY_COPY_COST)?;
                Some(
                    m.iter()
                        .map(|(k, v)| (k.clone(), Value::Str(Str::shared(v.clone()))))
                        .collect(),
                )
            }
            _ => None,
        })
    }

    /// `fmt.Sprint(v)` of one value (sprig's `strval` and `toString`).
    pub fn to_go_string(&self, budget: &Budget) -> Result<Str, Overflow> {
        if let Value::Str(s) = self {
            return Ok(s.clone());
        }
        let mut out = Buf::new(budget);
        write_value(&mut out, self, 0)?;
        Ok(out.into_str()?)
    }
}

/// Write `v` as Go's `%v` does; `Nil` prints `<nil>`.
pub fn write_value(out: &mut Buf, v: &Value, depth: usize) -> Result<(), Overflow> {
    if depth > MAX_VALUE_DEPTH {
        return Err(Overflow::TooDeep);
    }
    out.ok()?;
    match v {
        Value::Nil => out.extend_from_slice(b"<nil>"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) | Value::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.extend_from_slice(format_float_g(*f).as_bytes()),
        Value::Str(s) => out.extend_from_slice(s),
        Value::List(_, l) => {
            out.push(b'[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_value(out, e, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.extend_from_slice(b"map[");
            let m = m.borrow().map_err(|_| Overflow::TooDeep)?;
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(k);
                out.push(b':');
                write_value(out, e, depth + 1)?;
            }
            out.push(b']');
        }
        Value::StrMap(m) => {
            out.extend_from_slice(b"map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(k);
                out.push(b':');
                out.extend_from_slice(e);
                out.ok()?;
            }
            out.push(b']');
        }
        Value::Time(t) => out.extend_from_slice(crate::funcs::dates::time_string(t).as_bytes()),
        Value::Uint64(u) => {
            let _ = write!(out, "{u}");
        }
        // fmt calls its String method.
        Value::Semver(v) => out.extend_from_slice(v.canonical().as_bytes()),
        // A struct: its fields, space-separated, in braces.
        Value::Cert(c) => {
            out.push(b'{');
            out.extend_from_slice(&c.cert);
            out.push(b' ');
            out.extend_from_slice(&c.key);
            out.push(b'}');
        }
    }
    out.ok()?;
    Ok(())
}

/// Shortest decimal digits and decimal exponent of a finite, non-zero `f`: `f = 0.d1d2d3… × 10^dp`.
fn shortest_digits(f: f64) -> (String, i32) {
    // `{:e}` prints the shortest round-trip digits as `d.ddde±x`.
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which is what `%v` prints for a float64.
pub fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let neg = f.is_sign_negative();
    if f == 0.0 {
        return if neg { "-0".into() } else { "0".into() };
    }
    let (digits, dp) = shortest_digits(f);
    let exp = dp - 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        // %e with the shortest digits
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else {
        out.push_str(&fixed_from_digits(&digits, dp));
    }
    out
}

/// Place the decimal point into `digits` for decimal exponent `dp`.
fn fixed_from_digits(digits: &str, dp: i32) -> String {
    let mut out = String::new();
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let dp = dp as usize;
        if digits.len() <= dp {
            out.push_str(digits);
            for _ in digits.len()..dp {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..dp]);
            out.push('.');
            out.push_str(&digits[dp..]);
        }
    }
    out
}

/// `encoding/json`'s float64 encoding: `'f'` unless the magnitude is below 1e-6 or at least 1e21.
pub fn format_float_json(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    if f == 0.0 {
        return Some(if f.is_sign_negative() { "-0".into() } else { "0".into() });
    }
    let abs = f.abs();
    let (digits, dp) = shortest_digits(f);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if !(1e-6..1e21).contains(&abs) {
        let exp = dp - 1;
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else {
        out.push_str(&fixed_from_digits(&digits, dp));
    }
    Some(out)
}

/// Deep equality as Go's `reflect.DeepEqual` sees it (types must match).
pub fn deep_equal(a: &Value, b: &Value, depth: usize) -> Result<bool, TooDeep> {
    if depth > MAX_VALUE_DEPTH {
        return Err(TooDeep);
    }
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(ka, x), Value::List(kb, y)) => {
            if ka != kb || x.len() != y.len() {
                return Ok(false);
            }
            for (p, q) in x.iter().zip(y.iter()) {
                if !deep_equal(p, q, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Map(x), Value::Map(y)) => {
            if Map::ptr_eq(x, y) {
                return Ok(true);
            }
            let (x, y) = (x.borrow().map_err(|_| TooDeep)?, y.borrow().map_err(|_| TooDeep)?);
            if x.len() != y.len() {
                return Ok(false);
            }
            for ((k1, v1), (k2, v2)) in x.iter().zip(y.iter()) {
                if k1 != k2 || !deep_equal(v1, v2, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::StrMap(x), Value::StrMap(y)) => **x == **y,
        (Value::Time(x), Value::Time(y)) => **x == **y,
        (Value::Uint64(x), Value::Uint64(y)) => x == y,
        (Value::Semver(x), Value::Semver(y)) => **x == **y,
        (Value::Cert(x), Value::Cert(y)) => **x == **y,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_g_matches_go() {
        let cases = [
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1.5, "1.5"),
            (-0.0, "-0"),
            (3.0, "3"),
            (1234567.5, "1.2345675e+06"),
            (5432.0, "5432"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float_g(f), want, "{f}");
        }
    }

    #[test]
    fn float_json_matches_go() {
        let cases = [
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (0.0000001, "1e-7"),
            (1.5, "1.5"),
            (123456789.0, "123456789"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float_json(f).as_deref(), Some(want), "{f}");
        }
    }
}
