//! `text/template`'s predefined functions (`and`/`or` are evaluated in `exec`, they short-circuit).
use std::cmp::Ordering;

use super::{Ctx, FnError, FnResult, s};
use crate::fmt as gofmt;
use crate::value::{Buf, Str, Value};

pub fn and_or_placeholder(_: &mut Ctx, _: Vec<Value>) -> FnResult {
    Err(FnError::msg("and/or are evaluated by the executor"))
}

pub fn not(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(!a.first().is_some_and(Value::truthy)))
}

pub fn len(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let nil = Value::Nil;
    let v = a.first().unwrap_or(&nil);
    match v.len() {
        Some(n) => Ok(Value::Int(n as i64)),
        None if matches!(v, Value::Nil) => Err(FnError::msg("len of nil pointer")),
        None => Err(FnError::msg(format!("len of type {}", v.type_name()))),
    }
}

fn index_arg(idx: &Value, cap: usize) -> Result<usize, FnError> {
    let x = match idx {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Nil => return Err(FnError::msg("cannot index slice/array with nil")),
        other => {
            return Err(FnError::msg(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            )));
        }
    };
    if x < 0 || x as u64 >= cap as u64 {
        return Err(FnError::msg(format!("index out of range: {x}")));
    }
    Ok(x as usize)
}

pub fn index(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut it = a.into_iter();
    let mut item = it.next().unwrap_or(Value::Nil);
    if matches!(item, Value::Nil) {
        return Err(FnError::msg("index of untyped nil"));
    }
    for idx in it {
        item = match &item {
            Value::List(_, l) => {
                let i = index_arg(&idx, l.len())?;
                l.get(i).cloned().unwrap_or(Value::Nil)
            }
            Value::Str(st) => {
                let i = index_arg(&idx, st.len())?;
                Value::Int(i64::from(st.get(i).copied().unwrap_or(0)))
            }
            Value::Map(_) | Value::StrMap(_) => {
                let Value::Str(k) = &idx else {
                    if let Value::Nil = idx {
                        return Err(FnError::msg("value is nil; should be of type string"));
                    }
                    return Err(FnError::msg(format!(
                        "value has type {}; should be string",
                        idx.type_name()
                    )));
                };
                match item.map_get(k) {
                    Some(v) => v,
                    // missing keys give the element type's zero value
                    None if matches!(item, Value::StrMap(_)) => Value::Str(Str::default()),
                    None => Value::Nil,
                }
            }
            Value::Nil => return Err(FnError::msg("index of nil pointer")),
            other => return Err(FnError::msg(format!("can't index item of type {}", other.type_name()))),
        };
    }
    Ok(item)
}

pub fn print(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    gofmt::sprint(&mut out, &a)?;
    Ok(out.into_value()?)
}

pub fn println(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    gofmt::sprintln(&mut out, &a)?;
    Ok(out.into_value()?)
}

pub fn printf(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (f, rest) = a.split_first().map_or((&[][..], &[][..]), |(f, r)| (s(f), r));
    let mut out = ctx.buf();
    gofmt::sprintf(&mut out, f, rest)?;
    ctx.check_len(out.len() as u128)?;
    Ok(out.into_value()?)
}

/// The argument handling of `html`, `js` and `urlquery`: one string as is, otherwise `fmt.Sprint`.
fn eval_args(ctx: &Ctx, a: &[Value]) -> Result<Str, FnError> {
    if let [Value::Str(x)] = a {
        return Ok(x.clone());
    }
    let printable: Vec<Value> = a
        .iter()
        .map(|v| {
            if let Value::Nil = v {
                Value::from_static(b"<no value>")
            } else {
                v.clone()
            }
        })
        .collect();
    let mut out = ctx.buf();
    gofmt::sprint(&mut out, &printable)?;
    Ok(out.into_str()?)
}

pub fn html(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let src = eval_args(ctx, &a)?;
    let mut out = ctx.buf();
    for &c in src.iter() {
        match c {
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            c => out.push(c),
        }
    }
    Ok(out.into_value()?)
}

pub fn js(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let src = eval_args(ctx, &a)?;
    let mut out = ctx.buf();
    let text = String::from_utf8_lossy(&src);
    for c in text.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\'' => out.extend_from_slice(b"\\'"),
            '"' => out.extend_from_slice(b"\\\""),
            '<' => out.extend_from_slice(b"\\u003C"),
            '>' => out.extend_from_slice(b"\\u003E"),
            '&' => out.extend_from_slice(b"\\u0026"),
            '=' => out.extend_from_slice(b"\\u003D"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes()),
            c if c.is_ascii() => out.push(c as u8),
            c if c.is_control() => out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes()),
            c => out.push_char(c),
        }
    }
    Ok(out.into_value()?)
}

/// Go's `url.QueryEscape`.
pub fn query_escape(out: &mut Buf, src: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in src {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(c),
            b' ' => out.push(b'+'),
            c => out.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]),
        }
        if out.failed() {
            return;
        }
    }
}

pub fn urlquery(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let src = eval_args(ctx, &a)?;
    let mut out = ctx.buf();
    query_escape(&mut out, &src);
    Ok(out.into_value()?)
}

pub fn call(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = a.first().map_or("<nil>", Value::type_name);
    Err(FnError::msg(format!("non-function of type {t}")))
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    Str,
    Other,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Uint64(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Other,
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";

fn eq_one(a: &Value, b: &Value) -> Result<bool, FnError> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    // Integers compare regardless of their type's sign.
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Uint64(y)) | (Value::Uint64(y), Value::Int(x) | Value::Int64(x)) => {
            return Ok(*x >= 0 && *x as u64 == *y);
        }
        _ => {}
    }
    if k1 != k2 {
        if k1 != Kind::Invalid && k2 != Kind::Invalid {
            return Err(FnError::msg(format!(
                "{BAD_COMPARISON}: {} and {}",
                a.type_name(),
                b.type_name()
            )));
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Uint64(x), Value::Uint64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Nil, Value::Nil) => true,
        (Value::Time(x), Value::Time(y)) => x == y,
        (Value::Cert(x), Value::Cert(y)) => x == y,
        (x, _) => return Err(FnError::msg(format!("non-comparable type {}", x.type_name()))),
    })
}

pub fn eq(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let Some((first, rest)) = a.split_first() else {
        return Err(FnError::msg("missing argument for comparison"));
    };
    if rest.is_empty() {
        return Err(FnError::msg("missing argument for comparison"));
    }
    for b in rest {
        if eq_one(first, b)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

pub fn ne(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    match a.as_slice() {
        [x, y] => Ok(Value::Bool(!eq_one(x, y)?)),
        _ => Err(FnError::msg("missing argument for comparison")),
    }
}

fn cmp(a: &Value, b: &Value) -> Result<Ordering, FnError> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    // Integers compare regardless of their type's sign.
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Uint64(y)) => {
            return Ok(if *x < 0 { Ordering::Less } else { (*x as u64).cmp(y) });
        }
        (Value::Uint64(x), Value::Int(y) | Value::Int64(y)) => {
            return Ok(if *y < 0 { Ordering::Greater } else { x.cmp(&(*y as u64)) });
        }
        _ => {}
    }
    if matches!(k1, Kind::Other | Kind::Invalid | Kind::Bool) || matches!(k2, Kind::Other | Kind::Invalid | Kind::Bool)
    {
        if matches!(k1, Kind::Bool) && matches!(k2, Kind::Bool) {
            return Err(FnError::msg("invalid type for comparison"));
        }
        if k1 != k2 && !matches!(k1, Kind::Other | Kind::Invalid) && !matches!(k2, Kind::Other | Kind::Invalid) {
            return Err(FnError::msg(format!(
                "{BAD_COMPARISON}: {} and {}",
                a.type_name(),
                b.type_name()
            )));
        }
        return Err(FnError::msg("invalid type for comparison"));
    }
    if k1 != k2 {
        return Err(FnError::msg(format!(
            "{BAD_COMPARISON}: {} and {}",
            a.type_name(),
            b.type_name()
        )));
    }
    Ok(match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x.cmp(y),
        (Value::Uint64(x), Value::Uint64(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Greater),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => return Err(FnError::msg("invalid type for comparison")),
    })
}

fn two(a: &[Value]) -> Result<(&Value, &Value), FnError> {
    match a {
        [x, y] => Ok((x, y)),
        _ => Err(FnError::msg("missing argument for comparison")),
    }
}

pub fn lt(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (x, y) = two(&a)?;
    Ok(Value::Bool(cmp(x, y)? == Ordering::Less))
}

pub fn le(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (x, y) = two(&a)?;
    Ok(Value::Bool(cmp(x, y)? != Ordering::Greater))
}

pub fn gt(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (x, y) = two(&a)?;
    Ok(Value::Bool(cmp(x, y)? == Ordering::Greater))
}

pub fn ge(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (x, y) = two(&a)?;
    Ok(Value::Bool(cmp(x, y)? != Ordering::Less))
}
