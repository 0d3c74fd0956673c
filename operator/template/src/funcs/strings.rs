//! sprig string functions (and `path`), on Go's byte strings.
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use rand::Rng;

use super::{Ctx, FnError, FnResult, arg, i, s, str_val};
use crate::fmt::go_quote;
use crate::value::{ListKind, Value};

pub fn hello(_: &mut Ctx, _: Vec<Value>) -> FnResult {
    str_val("Hello!")
}

/// sprig's `strval`: strings as is, `time.Time` by its `String`, everything else `%v`.
pub fn strval(v: &Value) -> Result<Vec<u8>, FnError> {
    match v {
        Value::Str(b) => Ok(b.to_vec()),
        other => Ok(other.to_go_string()?),
    }
}

/// sprig's `strslice`.
pub fn strslice(v: &Value) -> Result<Vec<Bytes>, FnError> {
    match v {
        Value::List(_, l) => {
            let mut out = Vec::with_capacity(l.len());
            for e in l.iter() {
                if !matches!(e, Value::Nil) {
                    out.push(Bytes::from(strval(e)?));
                }
            }
            Ok(out)
        }
        Value::Nil => Ok(Vec::new()),
        other => Ok(vec![Bytes::from(strval(other)?)]),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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
    str_val(Bytes::copy_from_slice(trim_space(s(&a[0]))))
}

/// Map every rune with a simple (one-to-one) case mapping, as Go's `unicode.ToUpper`/`ToLower` do.
fn map_case(b: &[u8], upper: bool) -> Vec<u8> {
    if b.is_ascii() {
        return if upper {
            b.to_ascii_uppercase()
        } else {
            b.to_ascii_lowercase()
        };
    }
    let mut out = String::with_capacity(b.len());
    for c in lossy(b).chars() {
        out.push(simple_case(c, upper));
    }
    out.into_bytes()
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

pub fn upper(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(map_case(s(&a[0]), true))
}

pub fn lower(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(map_case(s(&a[0]), false))
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

pub fn title(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = String::new();
    let mut prev = ' ';
    for c in lossy(s(&a[0])).chars() {
        out.push(if is_separator(prev) { simple_case(c, true) } else { c });
        prev = c;
    }
    str_val(out)
}

pub fn untitle(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = String::new();
    let mut at_start = true;
    for c in lossy(s(&a[0])).chars() {
        if c.is_whitespace() {
            at_start = true;
            out.push(c);
        } else if at_start {
            out.push(simple_case(c, false));
            at_start = false;
        } else {
            out.push(c);
        }
    }
    str_val(out)
}

pub fn swapcase(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = String::new();
    for c in lossy(s(&a[0])).chars() {
        let m = if c.is_uppercase() {
            simple_case(c, false)
        } else if c.is_lowercase() {
            simple_case(c, true)
        } else {
            c
        };
        out.push(m);
    }
    str_val(out)
}

pub fn substr(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (start, end, st) = (i(&a[0]), i(&a[1]), s(&a[2]));
    let len = st.len() as i64;
    let oob = |m: String| Err(FnError::msg(format!("runtime error: slice bounds out of range {m}")));
    let r = if start < 0 {
        if end < 0 || end > len {
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
    str_val(Bytes::copy_from_slice(r))
}

pub fn trunc(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (c, st) = (i(&a[0]), s(&a[1]));
    let len = st.len() as i64;
    let r = if c < 0 && len + c > 0 {
        &st[(len + c) as usize..]
    } else if c >= 0 && len > c {
        &st[..c as usize]
    } else {
        st
    };
    str_val(Bytes::copy_from_slice(r))
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

pub fn abbrev(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (w, st) = (i(&a[0]), s(&a[1]));
    if w < 4 {
        return str_val(Bytes::copy_from_slice(st));
    }
    str_val(abbreviate_full(st, 0, w).unwrap_or_default())
}

pub fn abbrevboth(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (l, r, st) = (i(&a[0]), i(&a[1]), s(&a[2]));
    if r < 4 || l > 0 && r < 7 {
        return str_val(Bytes::copy_from_slice(st));
    }
    str_val(abbreviate_full(st, l, r).unwrap_or_default())
}

pub fn repeat(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (n, st) = (i(&a[0]), s(&a[1]));
    if n < 0 {
        return Err(FnError::msg("strings: negative Repeat count"));
    }
    ctx.check_len(n as u128 * st.len() as u128)?;
    str_val(st.repeat(n as usize))
}

/// `strings.Trim(s, cutset)`.
fn trim_cutset(st: &[u8], cut: &[u8]) -> Vec<u8> {
    let set: Vec<char> = lossy(cut).chars().collect();
    let text = lossy(st);
    if std::str::from_utf8(st).is_ok() {
        return text.trim_matches(|c| set.contains(&c)).as_bytes().to_vec();
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
    b[start..end].to_vec()
}

pub fn trim_all(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(trim_cutset(s(&a[1]), s(&a[0])))
}

pub fn trim_suffix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (suf, st) = (s(&a[0]), s(&a[1]));
    str_val(Bytes::copy_from_slice(st.strip_suffix(suf).unwrap_or(st)))
}

pub fn trim_prefix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (pre, st) = (s(&a[0]), s(&a[1]));
    str_val(Bytes::copy_from_slice(st.strip_prefix(pre).unwrap_or(st)))
}

pub fn nospace(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let st = s(&a[0]);
    match std::str::from_utf8(st) {
        Ok(t) => str_val(t.chars().filter(|c| !c.is_whitespace()).collect::<String>()),
        Err(_) => str_val(
            st.iter()
                .copied()
                .filter(|c| !c.is_ascii_whitespace())
                .collect::<Vec<u8>>(),
        ),
    }
}

pub fn initials(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = String::new();
    let mut last_ws = true;
    for c in lossy(s(&a[0])).chars() {
        if c.is_whitespace() {
            last_ws = true;
        } else {
            if last_ws {
                out.push(c);
            }
            last_ws = false;
        }
    }
    str_val(out)
}

fn random_from(ctx: &mut Ctx, n: i64, alphabet: &[u8]) -> FnResult {
    if n <= 0 {
        return str_val("");
    }
    ctx.check_len(n as u128)?;
    ctx.charge(n as u64 / 64)?;
    let mut rng = rand::rng();
    let out: Vec<u8> = (0..n).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
    str_val(out)
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

pub fn shuffle(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rand::seq::SliceRandom;
    let mut chars: Vec<char> = lossy(s(&a[0])).chars().collect();
    chars.shuffle(&mut rand::rng());
    str_val(chars.into_iter().collect::<String>())
}

pub fn snakecase(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(super::case::to_lower_case(&lossy(s(&a[0])), '_'))
}

pub fn kebabcase(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(super::case::to_lower_case(&lossy(s(&a[0])), '-'))
}

pub fn camelcase(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(super::case::to_pascal_case(&lossy(s(&a[0]))))
}

fn wrap_custom(st: &[u8], width: i64, nl: &[u8], long_words: bool) -> Vec<u8> {
    if st.is_empty() {
        return Vec::new();
    }
    let nl: &[u8] = if nl.is_empty() { b"\n" } else { nl };
    let width = width.max(1) as usize;
    let len = st.len();
    let mut offset = 0;
    let mut out = Vec::new();
    while len - offset > width {
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
    out
}

pub fn wrap(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.check_len(s(&a[1]).len() as u128 * 2)?;
    str_val(wrap_custom(s(&a[1]), i(&a[0]), b"\n", false))
}

pub fn wrap_with(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.check_len(s(&a[2]).len() as u128 * (1 + s(&a[1]).len() as u128))?;
    str_val(wrap_custom(s(&a[2]), i(&a[0]), s(&a[1]), true))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
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

pub fn quote(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut parts = Vec::new();
    for v in a.iter().filter(|v| !matches!(v, Value::Nil)) {
        parts.push(go_quote(&strval(v)?, false));
    }
    str_val(parts.join(" "))
}

pub fn squote(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for (k, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        out.push(b'\'');
        out.extend(v.to_go_string()?);
        out.push(b'\'');
    }
    str_val(out)
}

pub fn cat(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for (k, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        out.extend(v.to_go_string()?);
    }
    str_val(out)
}

/// `strings.Replace(src, old, new, -1)`.
pub fn replace_all(ctx: &Ctx, src: &[u8], old: &[u8], new: &[u8]) -> Result<Vec<u8>, FnError> {
    if old.is_empty() {
        // insert `new` before every rune and at the end
        let text = lossy(src);
        ctx.check_len((text.chars().count() as u128 + 1) * new.len() as u128 + src.len() as u128)?;
        let mut out = Vec::new();
        for c in text.chars() {
            out.extend_from_slice(new);
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        out.extend_from_slice(new);
        return Ok(out);
    }
    let mut out = Vec::with_capacity(src.len());
    let mut rest = src;
    while let Some(p) = find(rest, old) {
        out.extend_from_slice(&rest[..p]);
        out.extend_from_slice(new);
        ctx.check_len(out.len() as u128)?;
        rest = &rest[p + old.len()..];
    }
    out.extend_from_slice(rest);
    Ok(out)
}

pub fn indent_bytes(ctx: &Ctx, n: i64, v: &[u8]) -> Result<Vec<u8>, FnError> {
    let n = n.max(0) as usize;
    let lines = v.iter().filter(|&&c| c == b'\n').count() as u128 + 1;
    ctx.check_len(v.len() as u128 + lines * n as u128)?;
    let pad = vec![b' '; n];
    let mut nl = b"\n".to_vec();
    nl.extend_from_slice(&pad);
    let mut out = pad.clone();
    out.extend(replace_all(ctx, v, b"\n", &nl)?);
    Ok(out)
}

pub fn indent(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(indent_bytes(ctx, i(&a[0]), s(&a[1]))?)
}

pub fn nindent(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = b"\n".to_vec();
    out.extend(indent_bytes(ctx, i(&a[0]), s(&a[1]))?);
    str_val(out)
}

pub fn replace(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(replace_all(ctx, s(&a[2]), s(&a[0]), s(&a[1]))?)
}

pub fn plural(_: &mut Ctx, mut a: Vec<Value>) -> FnResult {
    let count = i(&a[2]);
    Ok(if count == 1 { arg(&mut a, 0) } else { arg(&mut a, 1) })
}

pub fn to_string(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(strval(&a[0])?)
}

/// `strings.Split`, or SplitN with `n`: an empty separator splits into runes.
pub fn go_split(src: &[u8], sep: &[u8], n: i64) -> Vec<Bytes> {
    if n == 0 {
        return Vec::new();
    }
    let limit = if n < 0 { usize::MAX } else { n as usize };
    let mut out = Vec::new();
    if sep.is_empty() {
        let text = lossy(src);
        let chars: Vec<char> = text.chars().collect();
        for (k, c) in chars.iter().enumerate() {
            if out.len() + 1 == limit {
                out.push(Bytes::from(chars[k..].iter().collect::<String>()));
                return out;
            }
            out.push(Bytes::from(c.to_string()));
        }
        return out;
    }
    let mut rest = src;
    while out.len() + 1 < limit {
        match find(rest, sep) {
            Some(p) => {
                out.push(Bytes::copy_from_slice(&rest[..p]));
                rest = &rest[p + sep.len()..];
            }
            None => break,
        }
    }
    out.push(Bytes::copy_from_slice(rest));
    out
}

fn parts_map(parts: Vec<Bytes>) -> Value {
    let m: BTreeMap<Bytes, Bytes> = parts
        .into_iter()
        .enumerate()
        .map(|(k, v)| (Bytes::from(format!("_{k}")), v))
        .collect();
    Value::StrMap(Rc::new(m))
}

pub fn split(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(parts_map(go_split(s(&a[1]), s(&a[0]), -1)))
}

pub fn splitn(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(parts_map(go_split(s(&a[2]), s(&a[0]), i(&a[1]))))
}

pub fn split_list(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str_list(go_split(s(&a[1]), s(&a[0]), -1)))
}

pub fn to_strings(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str_list(strslice(&a[0])?))
}

pub fn join(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = strslice(&a[1])?;
    let sep = s(&a[0]);
    let total: u128 = parts.iter().map(|p| p.len() as u128 + sep.len() as u128).sum();
    ctx.check_len(total)?;
    str_val(parts.join(sep))
}

pub fn sort_alpha(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    match &a[0] {
        Value::List(..) => {
            let mut v = strslice(&a[0])?;
            v.sort();
            Ok(Value::List(
                ListKind::Str,
                Rc::new(v.into_iter().map(Value::Str).collect()),
            ))
        }
        other => Ok(Value::str_list(vec![Bytes::from(strval(other)?)])),
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

pub fn path_clean(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(clean(s(&a[0])))
}

pub fn path_base(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut p = s(&a[0]);
    if p.is_empty() {
        return str_val(".");
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
        return str_val("/");
    }
    str_val(Bytes::copy_from_slice(p))
}

pub fn path_dir(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p = s(&a[0]);
    let dir = match p.iter().rposition(|&c| c == b'/') {
        Some(i) => &p[..=i],
        None => &p[..0],
    };
    str_val(clean(dir))
}

pub fn path_ext(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p = s(&a[0]);
    for k in (0..p.len()).rev() {
        match p[k] {
            b'/' => break,
            b'.' => return str_val(Bytes::copy_from_slice(&p[k..])),
            _ => {}
        }
    }
    str_val("")
}

pub fn path_is_abs(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(s(&a[0]).starts_with(b"/")))
}
