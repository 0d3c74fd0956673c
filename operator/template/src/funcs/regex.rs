//! sprig regular-expression functions, with Go's RE2 semantics: `\d`, `\w`, `\s`, `\b` are ASCII as in Go (Rust's
//! are Unicode; patterns are rewritten), errors are Go's messages, and matching is linear-time in both.
use regex::bytes::{Regex, RegexBuilder};

use super::strings::str_list;
use super::{Ctx, FnError, FnResult, i, s, st};
use crate::alloc::{Buf, Str};
use crate::value::Value;

/// Go's regexp syntax error: ``error parsing regexp: <code>: `<expr>` ``, with the part of the pattern Go names.
fn syntax_error(pattern: &str) -> String {
    use regex_syntax::ast::ErrorKind as K;
    let err = match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Err(e) => e,
        // The AST parsed; what failed is a later check (the compiled size).
        Ok(_) => return format!("error parsing regexp: expression too large: `{pattern}`"),
    };
    let span = err.span();
    let text = pattern.get(span.start.offset..span.end.offset).unwrap_or("");
    let (code, expr): (&str, &str) = match err.kind() {
        K::GroupUnclosed => ("missing closing )", pattern),
        K::GroupUnopened => ("unexpected )", pattern),
        K::ClassUnclosed => ("missing closing ]", pattern.get(span.start.offset..).unwrap_or("")),
        K::ClassRangeInvalid | K::ClassRangeLiteral => ("invalid character class range", text),
        K::EscapeUnexpectedEof => ("trailing backslash at end of expression", ""),
        K::EscapeUnrecognized
        | K::EscapeHexEmpty
        | K::EscapeHexInvalid
        | K::EscapeHexInvalidDigit
        | K::ClassEscapeInvalid
        | K::UnicodeClassInvalid => ("invalid escape sequence", text),
        K::RepetitionMissing => ("missing argument to repetition operator", text),
        K::RepetitionCountInvalid
        | K::RepetitionCountDecimalEmpty
        | K::RepetitionCountUnclosed
        | K::DecimalInvalid
        | K::DecimalEmpty => ("invalid repeat count", text),
        K::GroupNameInvalid | K::GroupNameEmpty | K::GroupNameUnexpectedEof | K::GroupNameDuplicate { .. } => {
            ("invalid named capture", text)
        }
        K::NestLimitExceeded(_) => ("expression nests too deeply", pattern),
        _ => ("invalid or unsupported Perl syntax", text),
    };
    format!("error parsing regexp: {code}: `{expr}`")
}

/// Rewrites a Go (RE2) pattern for Rust's `regex` where the two read the same text differently:
/// - `\d`, `\w`, `\s` and `\b` are ASCII-only in Go, Unicode in Rust: rewritten to ASCII forms;
/// - a `{` that does not start a valid repetition (`{}`, `{x}`, `{,3}`) is a literal in Go, an error in Rust;
/// - inside a class, `[` (other than `[:name:]`), `&&` and `~~` are literals in Go, nested classes and set
///   operations in Rust.
fn go_classes(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let rep = match (n, in_class) {
                    ('d', false) => "[0-9]",
                    ('D', false) => "[^0-9]",
                    ('w', false) => "[0-9A-Za-z_]",
                    ('W', false) => "[^0-9A-Za-z_]",
                    ('s', false) => r"[\t\n\f\r ]",
                    ('S', false) => r"[^\t\n\f\r ]",
                    ('b', false) => r"(?-u:\b)",
                    ('B', false) => r"(?-u:\B)",
                    ('d', true) => "0-9",
                    ('w', true) => "0-9A-Za-z_",
                    ('s', true) => r"\t\n\f\r ",
                    ('D', true) => "[:^digit:]",
                    ('W', true) => "[:^word:]",
                    ('S', true) => r"\x00-\x08\x0B\x0E-\x1F\x21-\x{10FFFF}",
                    _ => {
                        out.push('\\');
                        out.push(n);
                        continue;
                    }
                };
                out.push_str(rep);
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` (or `^]`) right after the opening bracket is a literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // `[:alpha:]` inside a class.
                out.push('[');
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '{' if !in_class => {
                // A repetition is `{n}`, `{n,}` or `{n,m}`; anything else is a literal brace in Go.
                let rest: String = chars.clone().collect();
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let after = &rest[digits..];
                let tail = after
                    .strip_prefix(',')
                    .map_or(after, |t| t.trim_start_matches(|c: char| c.is_ascii_digit()));
                if digits > 0 && tail.starts_with('}') {
                    out.push('{');
                } else {
                    out.push_str("\\{");
                }
            }
            '}' if !in_class => {
                // Closes a repetition only right after one; a stray brace is a literal.
                if out.ends_with(|ch: char| ch.is_ascii_digit() || ch == ',') && out.contains('{') {
                    out.push('}');
                } else {
                    out.push_str("\\}");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// Compiles a pattern with Go's RE2 semantics; the error is Go's message.
fn compile(pat: &[u8]) -> Result<Regex, String> {
    let p = std::str::from_utf8(pat).map_err(|_| "error parsing regexp: invalid UTF-8: ``".to_string())?;
    RegexBuilder::new(&go_classes(p))
        .size_limit(1 << 20)
        .build()
        .map_err(|_| syntax_error(p))
}

/// The `must…` variants return the compile error.
fn must(pat: &[u8]) -> Result<Regex, FnError> {
    compile(pat).map_err(FnError::Msg)
}

/// The others use Go's `regexp.MustCompile`, whose panic the template engine reports as the error. It quotes the
/// pattern with backquotes when `strconv.CanBackquote` allows, else as a Go string.
fn must_compile(pat: &[u8]) -> Result<Regex, FnError> {
    compile(pat).map_err(|e| {
        let text = String::from_utf8_lossy(pat);
        let backquotable = std::str::from_utf8(pat).is_ok()
            && !text
                .chars()
                .any(|c| c == '`' || c == '\u{FEFF}' || (c.is_control() && c != '\t'));
        let quoted = if backquotable {
            format!("`{text}`")
        } else {
            let mut q = Buf::new(&crate::alloc::Budget::new(usize::MAX));
            crate::fmt::go_quote(&mut q, pat, false);
            String::from_utf8_lossy(q.as_slice()).into_owned()
        };
        FnError::Msg(format!("regexp: Compile({quoted}): {e}"))
    })
}

/// `regexMatch` alone swallows a bad pattern (`regexp.MatchString`, error ignored): false.
pub fn regex_match(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(compile(s(&a[0])).is_ok_and(|re| re.is_match(s(&a[1])))))
}

pub fn must_regex_match(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(must(s(&a[0]))?.is_match(s(&a[1]))))
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

pub fn regex_find_all(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let found = find_all(ctx, &must_compile(s(&a[0]))?, &st(&a[1]), i(&a[2]))?;
    str_list(ctx, found)
}

pub fn must_regex_find_all(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let found = find_all(ctx, &must(s(&a[0]))?, &st(&a[1]), i(&a[2]))?;
    str_list(ctx, found)
}

fn find_one(re: &Regex, a: &[Value]) -> FnResult {
    let src = st(&a[1]);
    Ok(Value::Str(
        re.find(&src).map(|m| src.slice(m.range())).unwrap_or_default(),
    ))
}

pub fn regex_find(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    find_one(&must_compile(s(&a[0]))?, &a)
}

pub fn must_regex_find(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    find_one(&must(s(&a[0]))?, &a)
}

pub fn regex_replace_all(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    replace_all(ctx, &must_compile(s(&a[0]))?, &a)
}

pub fn must_regex_replace_all(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    replace_all(ctx, &must(s(&a[0]))?, &a)
}

/// `ReplaceAll`: each match replaced by the template expanded for it (`$1`, `${name}`), written match by match
/// into the render's budget.
fn replace_all(ctx: &Ctx, re: &Regex, a: &[Value]) -> FnResult {
    let (src, repl) = (s(&a[1]), s(&a[2]));
    let mut out = ctx.buf_with(src.len())?;
    let mut last = 0;
    for caps in re.captures_iter(src) {
        let Some(m) = caps.get(0) else { continue };
        out.extend_from_slice(&src[last..m.start()]);
        expand(&mut out, re, &caps, repl);
        ctx.check_len(out.len() as u128)?;
        out.ok()?;
        last = m.end();
    }
    out.extend_from_slice(&src[last..]);
    Ok(out.into_value()?)
}

pub fn regex_replace_all_literal(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    replace_all_literal(ctx, &must_compile(s(&a[0]))?, &a)
}

pub fn must_regex_replace_all_literal(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    replace_all_literal(ctx, &must(s(&a[0]))?, &a)
}

fn replace_all_literal(ctx: &Ctx, re: &Regex, a: &[Value]) -> FnResult {
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

pub fn regex_split(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = split(ctx, &must_compile(s(&a[0]))?, &st(&a[1]), i(&a[2]))?;
    str_list(ctx, parts)
}

pub fn must_regex_split(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = split(ctx, &must(s(&a[0]))?, &st(&a[1]), i(&a[2]))?;
    str_list(ctx, parts)
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
