//! sprig string functions (and `path`), on Go's byte strings. Results are built in the render's budget ([`Buf`],
//! [`ListBuf`]); substrings share their input's bytes.
use rand::Rng;

use super::{Ctx, FnError, FnResult, arg, i, s, st};
use crate::alloc::{Buf, Str, StrMap};
use crate::fmt::go_quote;
use crate::value::{ListKind, Value};

pub fn hello(_: &mut Ctx, _: Vec<Value>) -> FnResult {
    Ok(Value::from_static(b"Hello!"))
}

/// sprig's `strval`: strings as is, `time.Time` by its `String`, everything else `%v`.
pub fn strval(ctx: &Ctx, v: &Value) -> Result<Str, FnError> {
    Ok(v.to_go_string(&ctx.budget)?)
}

/// sprig's `strslice`.
pub fn strslice(ctx: &Ctx, v: &Value) -> Result<Vec<Str>, FnError> {
    match v {
        Value::List(_, l) => {
            let mut out = Vec::with_capacity(l.len());
            for e in l.iter() {
                if !matches!(e, Value::Nil) {
                    out.push(strval(ctx, e)?);
                }
            }
            Ok(out)
        }
        Value::Nil => Ok(Vec::new()),
        other => Ok(vec![strval(ctx, other)?]),
    }
}

/// A list of strings (`[]string`).
pub fn str_list(ctx: &Ctx, items: Vec<Str>) -> FnResult {
    let mut l = ctx.list_buf(items.len())?;
    for item in items {
        l.push(Value::Str(item))?;
    }
    Ok(Value::List(ListKind::Str, l.finish()))
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// The length of the rune at the start of `b` as Go's `utf8.DecodeRune` sees it: an invalid byte is a rune of
/// length 1 (`utf8.RuneError`).
pub fn rune_at(b: &[u8]) -> (Option<char>, usize) {
    let n = b.len().min(4);
    for len in 1..=n {
        if let Ok(t) = std::str::from_utf8(&b[..len]) {
            return (t.chars().next(), len);
        }
    }
    (None, 1)
}

/// Go's `unicode.IsSpace`.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// `strings.TrimSpace` on bytes: invalid UTF-8 is never space.
pub fn trim_space(b: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < b.len() {
        match next_char(&b[start..]) {
            Some((c, n)) if is_space(c) => start += n,
            _ => break,
        }
    }
    let mut end = b.len();
    while end > start {
        match prev_char(&b[start..end]) {
            Some((c, n)) if is_space(c) => end -= n,
            _ => break,
        }
    }
    &b[start..end]
}

fn next_char(b: &[u8]) -> Option<(char, usize)> {
    let n = b.len().min(4);
    for len in 1..=n {
        if let Ok(s) = std::str::from_utf8(&b[..len]) {
            return s.chars().next().map(|c| (c, len));
        }
    }
    None
}

fn prev_char(b: &[u8]) -> Option<(char, usize)> {
    for len in 1..=b.len().min(4) {
        if let Ok(s) = std::str::from_utf8(&b[b.len() - len..]) {
            return s.chars().next().map(|c| (c, len));
        }
    }
    None
}

pub fn trim(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let v = st(&a[0]);
    Ok(Value::Str(v.slice_ref(trim_space(&v))))
}

/// Map every rune with a simple (one-to-one) case mapping, as Go's `unicode.ToUpper`/`ToLower` do.
fn map_case(ctx: &Ctx, b: &[u8], upper: bool) -> FnResult {
    let mut out = ctx.buf_with(b.len())?;
    if b.is_ascii() {
        out.extend(b.iter().map(|c| {
            if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        }));
        return Ok(out.into_value()?);
    }
    for c in lossy(b).chars() {
        out.push_char(simple_case(c, upper));
    }
    Ok(out.into_value()?)
}

fn simple_case(c: char, upper: bool) -> char {
    let mut it: Box<dyn Iterator<Item = char>> = if upper {
        Box::new(c.to_uppercase())
    } else {
        Box::new(c.to_lowercase())
    };
    match (it.next(), it.next()) {
        (Some(m), None) => m,
        _ => c,
    }
}

pub fn upper(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    map_case(ctx, s(&a[0]), true)
}

pub fn lower(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    map_case(ctx, s(&a[0]), false)
}

/// Go's `strings.Title` separator rule.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

pub fn title(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf_with(s(&a[0]).len())?;
    let mut prev = ' ';
    for c in lossy(s(&a[0])).chars() {
        out.push_char(if is_separator(prev) { simple_case(c, true) } else { c });
        prev = c;
    }
    Ok(out.into_value()?)
}

pub fn untitle(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf_with(s(&a[0]).len())?;
    let mut at_start = true;
    for c in lossy(s(&a[0])).chars() {
        if c.is_whitespace() {
            at_start = true;
            out.push_char(c);
        } else if at_start {
            out.push_char(simple_case(c, false));
            at_start = false;
        } else {
            out.push_char(c);
        }
    }
    Ok(out.into_value()?)
}

pub fn swapcase(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf_with(s(&a[0]).len())?;
    for c in lossy(s(&a[0])).chars() {
        let m = if c.is_uppercase() {
            simple_case(c, false)
        } else if c.is_lowercase() {
            simple_case(c, true)
        } else {
            c
        };
        out.push_char(m);
    }
    Ok(out.into_value()?)
}

pub fn substr(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (start, end, whole) = (i(&a[0]), i(&a[1]), st(&a[2]));
    let st: &[u8] = &whole;
    let len = st.len() as i64;
    let oob = |m: String| Err(FnError::msg(format!("runtime error: slice bounds out of range {m}")));
    let r = if start < 0 {
        if end < 0 {
            return oob(format!("[:{end}]"));
        }
        if end > len {
            return oob(format!("[:{end}] with length {len}"));
        }
        &st[..end as usize]
    } else if end < 0 || end > len {
        if start > len {
            return oob(format!("[{start}:{len}]"));
        }
        &st[start as usize..]
    } else {
        if start > end {
            return oob(format!("[{start}:{end}]"));
        }
        &st[start as usize..end as usize]
    };
    Ok(Value::Str(whole.slice_ref(r)))
}

pub fn trunc(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (c, whole) = (i(&a[0]), st(&a[1]));
    let st: &[u8] = &whole;
    let len = st.len() as i64;
    let r = if c < 0 && len + c > 0 {
        &st[(len + c) as usize..]
    } else if c >= 0 && len > c {
        &st[..c as usize]
    } else {
        st
    };
    Ok(Value::Str(whole.slice_ref(r)))
}

fn abbreviate_full(st: &[u8], offset: i64, max: i64) -> Option<Vec<u8>> {
    if st.is_empty() {
        return Some(Vec::new());
    }
    if max < 4 {
        return None;
    }
    let len = st.len() as i64;
    if len <= max {
        return Some(st.to_vec());
    }
    let mut offset = offset.min(len);
    if len - offset < max - 3 {
        offset = len - (max - 3);
    }
    if offset <= 4 {
        let mut out = st[..(max - 3) as usize].to_vec();
        out.extend_from_slice(b"...");
        return Some(out);
    }
    if max < 7 {
        return None;
    }
    let mut out = b"...".to_vec();
    if offset + max - 3 < len {
        out.extend(abbreviate_full(&st[offset as usize..], 0, max - 3)?);
    } else {
        out.extend_from_slice(&st[(len - (max - 3)) as usize..]);
    }
    Some(out)
}

pub fn abbrev(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (w, st) = (i(&a[0]), &a[1]);
    if w < 4 {
        return Ok(st.clone());
    }
    // The result is never longer than the input.
    Ok(Value::Str(
        ctx.copy_str(&abbreviate_full(s(st), 0, w).unwrap_or_default())?,
    ))
}

pub fn abbrevboth(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (l, r, st) = (i(&a[0]), i(&a[1]), &a[2]);
    if r < 4 || l > 0 && r < 7 {
        return Ok(st.clone());
    }
    Ok(Value::Str(
        ctx.copy_str(&abbreviate_full(s(st), l, r).unwrap_or_default())?,
    ))
}

pub fn repeat(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (n, st) = (i(&a[0]), s(&a[1]));
    if n < 0 {
        return Err(FnError::msg("strings: negative Repeat count"));
    }
    let len = (n as u128).saturating_mul(st.len() as u128);
    ctx.check_len(len)?;
    let mut out = ctx.buf_with(len as usize)?;
    for _ in 0..n {
        out.extend_from_slice(st);
    }
    Ok(out.into_value()?)
}

/// `strings.Trim(s, cutset)`: a subslice of `st`.
fn trim_cutset<'a>(st: &'a [u8], cut: &[u8]) -> &'a [u8] {
    let set: Vec<char> = lossy(cut).chars().collect();
    if let Ok(text) = std::str::from_utf8(st) {
        return text.trim_matches(|c| set.contains(&c)).as_bytes();
    }
    let b = st;
    let mut start = 0;
    while start < b.len() && b[start].is_ascii() && set.contains(&char::from(b[start])) {
        start += 1;
    }
    let mut end = b.len();
    while end > start && b[end - 1].is_ascii() && set.contains(&char::from(b[end - 1])) {
        end -= 1;
    }
    &b[start..end]
}

pub fn trim_all(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let v = st(&a[1]);
    Ok(Value::Str(v.slice_ref(trim_cutset(&v, s(&a[0])))))
}

pub fn trim_suffix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (suf, v) = (s(&a[0]), st(&a[1]));
    Ok(Value::Str(match v.strip_suffix(suf) {
        Some(t) => v.slice_ref(t),
        None => v,
    }))
}

pub fn trim_prefix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (pre, v) = (s(&a[0]), st(&a[1]));
    Ok(Value::Str(match v.strip_prefix(pre) {
        Some(t) => v.slice_ref(t),
        None => v,
    }))
}

/// goutils' `DeleteWhiteSpace`: it walks bytes, not runes: a byte that is a Latin-1 space (`\t`–`\r`, ` `, 0x85,
/// 0xA0) goes, every other byte is written back as the Latin-1 character it would be (so non-ASCII text comes out
/// re-encoded), unless nothing went, when the input is returned as is.
pub fn nospace(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let st = s(&a[0]);
    let is_space = |b: u8| matches!(b, b'\t'..=b'\r' | b' ' | 0x85 | 0xA0);
    if !st.iter().any(|&b| is_space(b)) {
        return Ok(a[0].clone());
    }
    let mut out = ctx.buf_with(st.len().saturating_mul(2))?;
    for &b in st.iter().filter(|&&b| !is_space(b)) {
        out.push_char(char::from(b));
    }
    Ok(out.into_value()?)
}

pub fn initials(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    let mut last_ws = true;
    // goutils reads bytes, each as the rune of its value (Latin-1): a multi-byte letter gives its lead byte, and
    // the continuation bytes 0x85 and 0xA0 are spaces.
    for c in s(&a[0]).iter().map(|&b| char::from(b)) {
        if c.is_whitespace() {
            last_ws = true;
        } else {
            if last_ws {
                out.push_char(c);
            }
            last_ws = false;
        }
    }
    Ok(out.into_value()?)
}

fn random_from(ctx: &mut Ctx, n: i64, alphabet: &[u8]) -> FnResult {
    if n <= 0 {
        return Ok(Value::from_static(b""));
    }
    ctx.check_len(n as u128)?;
    ctx.charge(n as u64 / 64)?;
    let mut out = ctx.buf_with(n as usize)?;
    let mut rng = rand::rng();
    out.extend((0..n).map(|_| alphabet[rng.random_range(0..alphabet.len())]));
    Ok(out.into_value()?)
}

const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";

pub fn rand_alpha_num(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    random_from(
        ctx,
        i(&a[0]),
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    )
}

pub fn rand_alpha(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    random_from(ctx, i(&a[0]), ALPHA)
}

pub fn rand_numeric(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    random_from(ctx, i(&a[0]), DIGITS)
}

pub fn rand_ascii(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let printable: Vec<u8> = (32u8..127).collect();
    random_from(ctx, i(&a[0]), &printable)
}

pub fn shuffle(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rand::seq::SliceRandom;
    // The working copy of the runes is charged too (4 bytes per rune).
    ctx.budget.charge_n(s(&a[0]).len(), 4)?;
    let mut chars: Vec<char> = lossy(s(&a[0])).chars().collect();
    chars.shuffle(&mut rand::rng());
    let mut out = ctx.buf_with(s(&a[0]).len())?;
    chars.into_iter().for_each(|c| out.push_char(c));
    Ok(out.into_value()?)
}

/// The case conversions' output is at most twice their input (one connector per character at most).
pub fn snakecase(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.check_len((s(&a[0]).len() as u128).saturating_mul(2))?;
    ctx.str_value(super::case::to_lower_case(&lossy(s(&a[0])), '_'))
}

pub fn kebabcase(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.check_len((s(&a[0]).len() as u128).saturating_mul(2))?;
    ctx.str_value(super::case::to_lower_case(&lossy(s(&a[0])), '-'))
}

pub fn camelcase(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.str_value(super::case::to_pascal_case(&lossy(s(&a[0]))))
}

fn wrap_custom(out: &mut Buf, st: &[u8], width: i64, nl: &[u8], long_words: bool) {
    if st.is_empty() {
        return;
    }
    let nl: &[u8] = if nl.is_empty() { b"\n" } else { nl };
    let width = width.max(1) as usize;
    let len = st.len();
    let mut offset = 0;
    while len - offset > width {
        if out.failed() {
            return;
        }
        if st[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = (width + offset + 1).min(len);
        match st[offset..end].iter().rposition(|&c| c == b' ') {
            Some(sp) => {
                let at = sp + offset;
                out.extend_from_slice(&st[offset..at]);
                out.extend_from_slice(nl);
                offset = at + 1;
            }
            None => {
                let end = width + offset;
                if long_words {
                    out.extend_from_slice(&st[offset..end]);
                    out.extend_from_slice(nl);
                    offset += width;
                } else {
                    match st[end..].iter().position(|&c| c == b' ') {
                        None => {
                            out.extend_from_slice(&st[offset..]);
                            offset = len;
                        }
                        Some(ix) => {
                            let at = ix + end;
                            out.extend_from_slice(&st[offset..at]);
                            out.extend_from_slice(nl);
                            offset = at + 1;
                        }
                    }
                }
            }
        }
    }
    out.extend_from_slice(&st[offset.min(len)..]);
}

pub fn wrap(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.check_len(s(&a[1]).len() as u128 * 2)?;
    let mut out = ctx.buf_with(s(&a[1]).len())?;
    wrap_custom(&mut out, s(&a[1]), i(&a[0]), b"\n", false);
    Ok(out.into_value()?)
}

pub fn wrap_with(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.check_len(s(&a[2]).len() as u128 * (1 + s(&a[1]).len() as u128))?;
    let mut out = ctx.buf_with(s(&a[2]).len())?;
    wrap_custom(&mut out, s(&a[2]), i(&a[0]), s(&a[1]), true);
    Ok(out.into_value()?)
}

/// Substring search in linear time (a naive search is quadratic on hostile input).
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

pub fn contains(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(find(s(&a[1]), s(&a[0])).is_some()))
}

pub fn has_prefix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(s(&a[1]).starts_with(s(&a[0]))))
}

pub fn has_suffix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(s(&a[1]).ends_with(s(&a[0]))))
}

pub fn quote(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    for (k, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        go_quote(&mut out, &strval(ctx, v)?, false);
        out.ok()?;
    }
    Ok(out.into_value()?)
}

pub fn squote(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    for (k, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        out.push(b'\'');
        out.extend_from_slice(&strval(ctx, v)?);
        out.push(b'\'');
    }
    Ok(out.into_value()?)
}

pub fn cat(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    for (k, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(&strval(ctx, v)?);
    }
    Ok(out.into_value()?)
}

/// `strings.Replace(src, old, new, -1)`, appended to `out`.
pub fn replace_all(ctx: &Ctx, out: &mut Buf, src: &[u8], old: &[u8], new: &[u8]) -> Result<(), FnError> {
    if old.is_empty() {
        // `new` before every rune (an invalid byte is a rune) and at the end
        let runes = (0..).scan(0usize, |at, _| {
            (*at < src.len()).then(|| {
                let start = *at;
                *at += rune_at(&src[start..]).1;
                start..*at
            })
        });
        let count = src.len() as u128 + 1;
        ctx.check_len(
            count
                .saturating_mul(new.len() as u128)
                .saturating_add(src.len() as u128),
        )?;
        for r in runes {
            out.extend_from_slice(new);
            out.extend_from_slice(&src[r]);
            out.ok()?;
        }
        out.extend_from_slice(new);
        return Ok(out.ok()?);
    }
    let mut rest = src;
    while let Some(p) = find(rest, old) {
        out.extend_from_slice(&rest[..p]);
        out.extend_from_slice(new);
        ctx.check_len(out.len() as u128)?;
        out.ok()?;
        rest = &rest[p + old.len()..];
    }
    out.extend_from_slice(rest);
    Ok(out.ok()?)
}

/// sprig's `indent`, appended to `out`.
pub fn indent_into(ctx: &Ctx, out: &mut Buf, n: i64, v: &[u8]) -> Result<(), FnError> {
    // sprig pads with strings.Repeat, which panics on a negative count.
    let Ok(n) = usize::try_from(n) else {
        return Err(FnError::msg("strings: negative Repeat count"));
    };
    let lines = v.iter().filter(|&&c| c == b'\n').count() as u128 + 1;
    ctx.check_len(v.len() as u128 + lines * n as u128)?;
    if !out.reserve(v.len() + lines as usize * n) {
        return Ok(out.ok()?);
    }
    out.fill(b' ', n);
    for line in v.split(|&c| c == b'\n').enumerate() {
        if line.0 > 0 {
            out.push(b'\n');
            out.fill(b' ', n);
        }
        out.extend_from_slice(line.1);
    }
    Ok(out.ok()?)
}

pub fn indent(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    indent_into(ctx, &mut out, i(&a[0]), s(&a[1]))?;
    Ok(out.into_value()?)
}

pub fn nindent(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    out.push(b'\n');
    indent_into(ctx, &mut out, i(&a[0]), s(&a[1]))?;
    Ok(out.into_value()?)
}

pub fn replace(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.buf();
    replace_all(ctx, &mut out, s(&a[2]), s(&a[0]), s(&a[1]))?;
    Ok(out.into_value()?)
}

pub fn plural(_: &mut Ctx, mut a: Vec<Value>) -> FnResult {
    let count = i(&a[2]);
    Ok(if count == 1 { arg(&mut a, 0) } else { arg(&mut a, 1) })
}

pub fn to_string(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Str(strval(ctx, &a[0])?))
}

/// The bookkeeping of one part of a split (its slot and handle; the bytes are shared with the input).
const PART_COST: usize = std::mem::size_of::<Str>();

/// `strings.Split`, or SplitN with `n`: an empty separator splits into runes. The parts share `src`'s bytes; each
/// is charged before it is made.
pub fn go_split(ctx: &Ctx, src: &Str, sep: &[u8], n: i64) -> Result<Vec<Str>, FnError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let limit = if n < 0 { usize::MAX } else { n as usize };
    let mut out = Vec::new();
    let push = |out: &mut Vec<Str>, part: Str| -> Result<(), FnError> {
        ctx.budget.charge(PART_COST)?;
        ctx.check_len(out.len() as u128 + 1)?;
        out.push(part);
        Ok(())
    };
    if sep.is_empty() {
        let mut at = 0;
        while at < src.len() {
            if out.len() + 1 == limit {
                push(&mut out, src.slice(at..))?;
                return Ok(out);
            }
            let len = rune_at(&src[at..]).1;
            push(&mut out, src.slice(at..at + len))?;
            at += len;
        }
        return Ok(out);
    }
    let mut rest = 0;
    while out.len() + 1 < limit {
        match find(&src[rest..], sep) {
            Some(p) => {
                push(&mut out, src.slice(rest..rest + p))?;
                rest += p + sep.len();
            }
            None => break,
        }
    }
    push(&mut out, src.slice(rest..))?;
    Ok(out)
}

fn parts_map(ctx: &Ctx, parts: Vec<Str>) -> FnResult {
    let mut entries = Vec::with_capacity(parts.len());
    for (k, v) in parts.into_iter().enumerate() {
        entries.push((ctx.copy_str(format!("_{k}").as_bytes())?, v));
    }
    Ok(Value::StrMap(StrMap::from_entries(&ctx.budget, entries)?))
}

pub fn split(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = go_split(ctx, &st(&a[1]), s(&a[0]), -1)?;
    parts_map(ctx, parts)
}

pub fn splitn(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = go_split(ctx, &st(&a[2]), s(&a[0]), i(&a[1]))?;
    parts_map(ctx, parts)
}

pub fn split_list(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = go_split(ctx, &st(&a[1]), s(&a[0]), -1)?;
    str_list(ctx, parts)
}

pub fn to_strings(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = strslice(ctx, &a[0])?;
    str_list(ctx, parts)
}

pub fn join(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = strslice(ctx, &a[1])?;
    let sep = s(&a[0]);
    let total: u128 = parts.iter().map(|p| p.len() as u128 + sep.len() as u128).sum();
    ctx.check_len(total)?;
    let mut out = ctx.buf_with(total as usize)?;
    for (k, p) in parts.iter().enumerate() {
        if k > 0 {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(p);
    }
    Ok(out.into_value()?)
}

pub fn sort_alpha(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    match &a[0] {
        Value::List(..) => {
            let mut v = strslice(ctx, &a[0])?;
            v.sort();
            str_list(ctx, v)
        }
        other => {
            let one = strval(ctx, other)?;
            str_list(ctx, vec![one])
        }
    }
}

/// Go's `path.Clean`.
pub fn clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in p.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(seg);
                }
            }
            s => parts.push(s),
        }
    }
    let mut out = Vec::new();
    if rooted {
        out.push(b'/');
    }
    out.extend(parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

pub fn path_clean(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.str_value(clean(s(&a[0])))
}

pub fn path_base(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let whole = st(&a[0]);
    let mut p: &[u8] = &whole;
    if p.is_empty() {
        return Ok(Value::from_static(b"."));
    }
    while p.len() > 1 && p.ends_with(b"/") {
        p = &p[..p.len() - 1];
    }
    if let Some(i) = p.iter().rposition(|&c| c == b'/')
        && (p.len() > 1 || i > 0)
    {
        p = &p[i + 1..];
    }
    if p.is_empty() {
        return Ok(Value::from_static(b"/"));
    }
    Ok(Value::Str(whole.slice_ref(p)))
}

pub fn path_dir(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p = s(&a[0]);
    let dir = match p.iter().rposition(|&c| c == b'/') {
        Some(i) => &p[..=i],
        None => &p[..0],
    };
    ctx.str_value(clean(dir))
}

pub fn path_ext(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p = st(&a[0]);
    for k in (0..p.len()).rev() {
        match p[k] {
            b'/' => break,
            b'.' => return Ok(Value::Str(p.slice(k..))),
            _ => {}
        }
    }
    Ok(Value::from_static(b""))
}

pub fn path_is_abs(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(s(&a[0]).starts_with(b"/")))
}
