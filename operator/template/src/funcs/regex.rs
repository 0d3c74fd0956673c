//! sprig regular-expression functions. Go's RE2 syntax and Rust's `regex` agree on the common subset; both guarantee
//! linear-time matching.
use bytes::Bytes;
use regex::bytes::{Regex, RegexBuilder};

use super::{Ctx, FnError, FnResult, i, s, str_val};
use crate::value::Value;

fn compile(pat: &[u8]) -> Result<Regex, FnError> {
    let p = std::str::from_utf8(pat).map_err(|_| FnError::msg("error parsing regexp: invalid UTF-8"))?;
    RegexBuilder::new(p).size_limit(1 << 20).build().map_err(|_| {
        FnError::msg(format!(
            "error parsing regexp: invalid or unsupported Perl syntax in {p:?}"
        ))
    })
}

pub fn regex_match(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(must_regex_match(c, a).unwrap_or(Value::Bool(false)))
}

pub fn must_regex_match(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(compile(s(&a[0]))?.is_match(s(&a[1]))))
}

fn find_all(re: &Regex, src: &[u8], n: i64) -> Vec<Bytes> {
    let limit = if n < 0 { usize::MAX } else { n as usize };
    re.find_iter(src)
        .take(limit)
        .map(|m| Bytes::copy_from_slice(m.as_bytes()))
        .collect()
}

pub fn regex_find_all(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(must_regex_find_all(c, a).unwrap_or_else(|_| Value::str_list(Vec::new())))
}

pub fn must_regex_find_all(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str_list(find_all(&compile(s(&a[0]))?, s(&a[1]), i(&a[2]))))
}

pub fn regex_find(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(must_regex_find(c, a).unwrap_or_else(|_| Value::str(Bytes::new())))
}

pub fn must_regex_find(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let re = compile(s(&a[0]))?;
    str_val(
        re.find(s(&a[1]))
            .map(|m| Bytes::copy_from_slice(m.as_bytes()))
            .unwrap_or_default(),
    )
}

pub fn regex_replace_all(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(must_regex_replace_all(c, a).unwrap_or_else(|_| Value::str(Bytes::new())))
}

pub fn must_regex_replace_all(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let re = compile(s(&a[0]))?;
    let out = re.replace_all(s(&a[1]), s(&a[2])).into_owned();
    ctx.check_len(out.len() as u128)?;
    str_val(out)
}

pub fn regex_replace_all_literal(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(must_regex_replace_all_literal(c, a).unwrap_or_else(|_| Value::str(Bytes::new())))
}

pub fn must_regex_replace_all_literal(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let re = compile(s(&a[0]))?;
    let out = re.replace_all(s(&a[1]), regex::bytes::NoExpand(s(&a[2]))).into_owned();
    ctx.check_len(out.len() as u128)?;
    str_val(out)
}

/// Go's `Regexp.Split`.
fn split(re: &Regex, src: &[u8], n: i64) -> Vec<Bytes> {
    if n == 0 {
        return Vec::new();
    }
    if !re.as_str().is_empty() && src.is_empty() {
        return vec![Bytes::new()];
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    let limit = if n < 0 { usize::MAX } else { n as usize };
    for m in re.find_iter(src) {
        if n > 0 && out.len() == limit - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            out.push(Bytes::copy_from_slice(&src[beg..end]));
        }
        beg = m.end();
    }
    if end != src.len() {
        out.push(Bytes::copy_from_slice(&src[beg..]));
    }
    out
}

pub fn regex_split(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(must_regex_split(c, a).unwrap_or_else(|_| Value::str_list(Vec::new())))
}

pub fn must_regex_split(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str_list(split(&compile(s(&a[0]))?, s(&a[1]), i(&a[2]))))
}

pub fn regex_quote_meta(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for &c in s(&a[0]) {
        if br"\.+*?()|[]{}^$".contains(&c) {
            out.push(b'\\');
        }
        out.push(c);
    }
    str_val(out)
}
