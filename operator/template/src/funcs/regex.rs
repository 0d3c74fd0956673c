//! sprig regular-expression functions. Go's RE2 syntax and Rust's `regex` agree on the common subset; both guarantee
//! linear-time matching.
use regex::bytes::{Regex, RegexBuilder};

use super::strings::str_list;
use super::{Ctx, FnError, FnResult, i, s, st};
use crate::alloc::{Buf, Str};
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
    or_empty(must_regex_match(c, a), || Ok(Value::Bool(false)))
}

pub fn must_regex_match(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(compile(s(&a[0]))?.is_match(s(&a[1]))))
}

/// The bookkeeping of one match of a list of matches (the bytes are shared with the input).
const PART_COST: usize = std::mem::size_of::<Str>();

/// Matches of `re` in `src` (at most `n`, all when negative), sharing `src`'s bytes, each charged before it is
/// collected.
fn find_all(ctx: &Ctx, re: &Regex, src: &Str, n: i64) -> Result<Vec<Str>, FnError> {
    let limit = if n < 0 { usize::MAX } else { n as usize };
    let mut out = Vec::new();
    for m in re.find_iter(src).take(limit) {
        ctx.budget.charge(PART_COST)?;
        ctx.check_len(out.len() as u128 + 1)?;
        out.push(src.slice(m.range()));
    }
    Ok(out)
}

/// The non-`must` variants turn a bad pattern into an empty result, as sprig does; budget and size limits still
/// fail the template.
fn or_empty(r: FnResult, empty: impl FnOnce() -> FnResult) -> FnResult {
    match r {
        Err(FnError::Msg(_)) => empty(),
        other => other,
    }
}

pub fn regex_find_all(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    let r = must_regex_find_all(c, a);
    or_empty(r, || str_list(c, Vec::new()))
}

pub fn must_regex_find_all(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let found = find_all(ctx, &compile(s(&a[0]))?, &st(&a[1]), i(&a[2]))?;
    str_list(ctx, found)
}

pub fn regex_find(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    or_empty(must_regex_find(c, a), || Ok(Value::from_static(b"")))
}

pub fn must_regex_find(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let re = compile(s(&a[0]))?;
    let src = st(&a[1]);
    Ok(Value::Str(
        re.find(&src).map(|m| src.slice(m.range())).unwrap_or_default(),
    ))
}

pub fn regex_replace_all(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    or_empty(must_regex_replace_all(c, a), || Ok(Value::from_static(b"")))
}

/// `ReplaceAll`: each match replaced by the template expanded for it (`$1`, `${name}`), written match by match
/// into the render's budget.
pub fn must_regex_replace_all(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let re = compile(s(&a[0]))?;
    let (src, repl) = (s(&a[1]), s(&a[2]));
    let mut out = ctx.buf_with(src.len())?;
    let mut last = 0;
    for caps in re.captures_iter(src) {
        let Some(m) = caps.get(0) else { continue };
        out.extend_from_slice(&src[last..m.start()]);
        expand(&mut out, &re, &caps, repl);
        ctx.check_len(out.len() as u128)?;
        out.ok()?;
        last = m.end();
    }
    out.extend_from_slice(&src[last..]);
    Ok(out.into_value()?)
}

/// Go's `Regexp.expand`: `$name` / `${name}` (the longest run of letters, digits and `_`; a number is a group
/// index, without leading zeros), `$$` for `$`; a malformed `$` is kept as is. Written piece by piece into `out`,
/// so `$1$1$1…` over a long group is charged as it grows.
fn expand(out: &mut Buf, re: &Regex, caps: &regex::bytes::Captures<'_>, template: &[u8]) {
    let mut t = template;
    while !t.is_empty() && !out.failed() {
        let Some(at) = t.iter().position(|&c| c == b'$') else {
            out.extend_from_slice(t);
            return;
        };
        out.extend_from_slice(&t[..at]);
        t = &t[at + 1..];
        if t.first() == Some(&b'$') {
            out.push(b'$');
            t = &t[1..];
            continue;
        }
        let Some((name, num, rest)) = extract(t) else {
            out.push(b'$');
            continue;
        };
        t = rest;
        let group = match num {
            Some(n) => caps.get(n),
            None => re
                .capture_names()
                .position(|n| n.is_some_and(|n| n.as_bytes() == name))
                .and_then(|i| caps.get(i)),
        };
        if let Some(g) = group {
            out.extend_from_slice(g.as_bytes());
        }
    }
}

/// Go's `extract`: the name after a `$`, its number if it is one, and the rest.
fn extract(t: &[u8]) -> Option<(&[u8], Option<usize>, &[u8])> {
    let (brace, body) = match t.first() {
        Some(b'{') => (true, &t[1..]),
        Some(_) => (false, t),
        None => return None,
    };
    let mut i = 0;
    while i < body.len() {
        let (c, len) = super::strings::rune_at(&body[i..]);
        match c {
            Some(c) if c.is_alphanumeric() || c == '_' => i += len,
            _ => break,
        }
    }
    if i == 0 {
        return None;
    }
    let name = &body[..i];
    let mut rest = &body[i..];
    if brace {
        rest = rest.strip_prefix(b"}")?;
    }
    let mut num: Option<usize> = Some(0);
    for &c in name {
        num = match num {
            Some(n) if c.is_ascii_digit() && n < 100_000_000 => Some(n * 10 + usize::from(c - b'0')),
            _ => None,
        };
    }
    if name.len() > 1 && name[0] == b'0' {
        num = None;
    }
    Some((name, num, rest))
}

pub fn regex_replace_all_literal(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    or_empty(must_regex_replace_all_literal(c, a), || Ok(Value::from_static(b"")))
}

pub fn must_regex_replace_all_literal(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let re = compile(s(&a[0]))?;
    let (src, repl) = (s(&a[1]), s(&a[2]));
    let mut out = ctx.buf_with(src.len())?;
    let mut last = 0;
    for m in re.find_iter(src) {
        out.extend_from_slice(&src[last..m.start()]);
        out.extend_from_slice(repl);
        ctx.check_len(out.len() as u128)?;
        out.ok()?;
        last = m.end();
    }
    out.extend_from_slice(&src[last..]);
    Ok(out.into_value()?)
}

/// Go's `Regexp.Split`, sharing `src`'s bytes.
fn split(ctx: &Ctx, re: &Regex, src: &Str, n: i64) -> Result<Vec<Str>, FnError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if !re.as_str().is_empty() && src.is_empty() {
        return Ok(vec![Str::default()]);
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
            ctx.budget.charge(PART_COST)?;
            ctx.check_len(out.len() as u128 + 1)?;
            out.push(src.slice(beg..end));
        }
        beg = m.end();
    }
    if end != src.len() {
        ctx.budget.charge(PART_COST)?;
        out.push(src.slice(beg..));
    }
    Ok(out)
}

pub fn regex_split(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    let r = must_regex_split(c, a);
    or_empty(r, || str_list(c, Vec::new()))
}

pub fn must_regex_split(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = split(ctx, &compile(s(&a[0]))?, &st(&a[1]), i(&a[2]))?;
    str_list(ctx, parts)
}

pub fn regex_quote_meta(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf_with(s(&a[0]).len())?;
    for &c in s(&a[0]) {
        if br"\.+*?()|[]{}^$".contains(&c) {
            out.push(b'\\');
        }
        out.push(c);
    }
    Ok(out.into_value()?)
}
