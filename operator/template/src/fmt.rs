//! The parts of Go's `fmt` that templates reach: `Sprint`, `Sprintln` and `Sprintf` with the common verbs, flags, width
//! and precision, including Go's in-band error notes (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA …)`).
use std::fmt::Write as _;

use super::alloc::{Buf, Str};
use super::value::{Overflow, Value, format_float_g, write_value};

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub fn sprint(out: &mut Buf, args: &[Value]) -> Result<(), Overflow> {
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(b' ');
        }
        write_value(out, a, 0)?;
        prev_string = is_string;
    }
    Ok(out.ok()?)
}

/// `fmt.Sprintln`: always spaces, then a newline.
pub fn sprintln(out: &mut Buf, args: &[Value]) -> Result<(), Overflow> {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_value(out, a, 0)?;
    }
    out.push(b'\n');
    Ok(out.ok()?)
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Width and precision are capped so a hostile format cannot allocate without bound.
const MAX_WIDTH: usize = 1 << 20;

/// `fmt.Sprintf`.
pub fn sprintf(out: &mut Buf, format: &[u8], args: &[Value]) -> Result<(), Overflow> {
    let mut argi = 0;
    let mut i = 0;
    while i < format.len() {
        out.ok()?;
        let c = format[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while let Some(&f) = format.get(i) {
            match f {
                b'-' => spec.minus = true,
                b'+' => spec.plus = true,
                b'#' => spec.sharp = true,
                b' ' => spec.space = true,
                b'0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        // width
        if format.get(i) == Some(&b'*') {
            i += 1;
            match args.get(argi) {
                Some(Value::Int(n) | Value::Int64(n)) => {
                    let n = *n;
                    if n < 0 {
                        spec.minus = true;
                    }
                    spec.width = Some((n.unsigned_abs() as usize).min(MAX_WIDTH));
                }
                _ => out.extend_from_slice(b"%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            let (n, used) = parse_num(&format[i..]);
            if used > 0 {
                spec.width = Some(n.min(MAX_WIDTH));
                i += used;
            }
        }
        if format.get(i) == Some(&b'.') {
            i += 1;
            if format.get(i) == Some(&b'*') {
                i += 1;
                match args.get(argi) {
                    Some(Value::Int(n) | Value::Int64(n)) if *n >= 0 => spec.prec = Some((*n as usize).min(MAX_WIDTH)),
                    _ => out.extend_from_slice(b"%!(BADPREC)"),
                }
                argi += 1;
            } else {
                let (n, used) = parse_num(&format[i..]);
                spec.prec = Some(n.min(MAX_WIDTH));
                i += used;
            }
        }
        let Some(verb) = std::str::from_utf8(&format[i..])
            .ok()
            .and_then(|s| s.chars().next())
            .or_else(|| format.get(i).map(|&b| char::from(b)))
        else {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        };
        i += verb.len_utf8();
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.extend_from_slice(format!("%!{verb}(MISSING)").as_bytes());
            continue;
        };
        argi += 1;
        format_one(out, verb, spec, arg, 0)?;
    }
    if argi < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (k, a) in args[argi..].iter().enumerate() {
            if k > 0 {
                out.extend_from_slice(b", ");
            }
            if let Value::Nil = a {
                out.extend_from_slice(b"<nil>");
            } else {
                out.extend_from_slice(a.type_name().as_bytes());
                out.push(b'=');
                write_value(out, a, 0)?;
            }
        }
        out.push(b')');
    }
    Ok(out.ok()?)
}

fn parse_num(b: &[u8]) -> (usize, usize) {
    let mut n: usize = 0;
    let mut used = 0;
    while let Some(d) = b.get(used).filter(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(usize::from(d - b'0'));
        used += 1;
    }
    (n, used)
}

/// Go's `utf8.RuneCount`: an invalid byte counts as one rune.
fn rune_count(b: &[u8]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while at < b.len() {
        at += crate::funcs::strings::rune_at(&b[at..]).1;
        n += 1;
    }
    n
}

fn pad(out: &mut Buf, body: &[u8], spec: Spec, numeric: bool) {
    let width = spec.width.unwrap_or(0);
    let len = rune_count(body);
    if len >= width {
        out.extend_from_slice(body);
        return;
    }
    let fill = width - len;
    if spec.minus {
        out.extend_from_slice(body);
        out.fill(b' ', fill);
    } else if spec.zero && numeric {
        // zeros go after the sign
        let (sign, rest) = match body.first() {
            Some(b'-' | b'+' | b' ') => body.split_at(1),
            _ => (&body[..0], body),
        };
        out.extend_from_slice(sign);
        out.fill(b'0', fill);
        out.extend_from_slice(rest);
    } else if spec.zero {
        out.fill(b'0', fill);
        out.extend_from_slice(body);
    } else {
        out.fill(b' ', fill);
        out.extend_from_slice(body);
    }
}

/// Go's `%!verb(type=value)`: the value printed with `%v` and the verb's flags, width and precision.
fn bad_verb(out: &mut Buf, verb: char, spec: Spec, arg: &Value) -> Result<(), Overflow> {
    out.extend_from_slice(format!("%!{verb}(").as_bytes());
    if let Value::Nil = arg {
        out.extend_from_slice(b"<nil>");
    } else {
        out.extend_from_slice(arg.type_name().as_bytes());
        out.push(b'=');
        format_one(out, 'v', spec, arg, 1)?;
    }
    out.push(b')');
    Ok(())
}

fn format_one(out: &mut Buf, verb: char, spec: Spec, arg: &Value, depth: usize) -> Result<(), Overflow> {
    if depth > super::value::MAX_VALUE_DEPTH {
        return Err(Overflow::TooDeep);
    }
    out.ok()?;
    if verb == 'T' {
        let t = if let Value::Nil = arg { "<nil>" } else { arg.type_name() };
        pad(out, t.as_bytes(), spec, false);
        return Ok(());
    }
    match arg {
        // A nil element of an interface container prints as is, whatever the verb.
        Value::Nil if depth > 0 => out.extend_from_slice(b"<nil>"),
        Value::Nil => match verb {
            'v' => pad(out, b"<nil>", spec, false),
            _ => bad_verb(out, verb, spec, arg)?,
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { b"true" } else { b"false" }, spec, false),
            _ => bad_verb(out, verb, spec, arg)?,
        },
        Value::Int(n) | Value::Int64(n) => format_int(out, verb, spec, *n, arg)?,
        Value::Float(f) => format_float(out, verb, spec, *f, arg)?,
        Value::Str(s) => match verb {
            'v' | 's' => {
                let body = match spec.prec {
                    Some(p) => truncate_runes(s, p),
                    None => s,
                };
                pad(out, body, spec, false);
            }
            'q' => {
                // Go truncates to the precision, then quotes.
                let body = match spec.prec {
                    Some(p) => truncate_runes(s, p),
                    None => s,
                };
                let mut q = Buf::new(out.budget());
                if spec.sharp && can_backquote(body) {
                    q.push(b'`');
                    q.extend_from_slice(body);
                    q.push(b'`');
                } else {
                    go_quote(&mut q, body, spec.plus);
                }
                q.ok()?;
                pad(out, q.as_slice(), spec, false);
            }
            'x' | 'X' => {
                let mut h = Buf::new(out.budget());
                let digits: &[u8; 16] = if verb == 'x' {
                    b"0123456789abcdef"
                } else {
                    b"0123456789ABCDEF"
                };
                for (k, b) in s.iter().enumerate() {
                    if spec.space && k > 0 {
                        h.push(b' ');
                    }
                    if spec.sharp && (spec.space || k == 0) {
                        h.extend_from_slice(if verb == 'x' { b"0x" } else { b"0X" });
                    }
                    h.extend_from_slice(&[digits[usize::from(b >> 4)], digits[usize::from(b & 15)]]);
                }
                h.ok()?;
                pad(out, h.as_slice(), spec, false);
            }
            _ => bad_verb(out, verb, spec, arg)?,
        },
        Value::List(_, l) => {
            if verb == 'v' || verb == 's' || verb == 'd' || verb == 'q' || verb == 'x' || verb == 'f' {
                out.push(b'[');
                for (k, e) in l.iter().enumerate() {
                    if k > 0 {
                        out.push(b' ');
                    }
                    format_one(out, verb, spec, e, depth + 1)?;
                }
                out.push(b']');
            } else {
                bad_verb(out, verb, spec, arg)?;
            }
        }
        Value::Map(_) | Value::StrMap(_) => {
            out.extend_from_slice(b"map[");
            let entries = arg.map_entries(out.budget())?.unwrap_or_default();
            for (k, (key, e)) in entries.iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                format_one(out, verb, spec, &Value::Str(Str::shared(key.clone())), depth + 1)?;
                out.push(b':');
                format_one(out, verb, spec, e, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Uint64(u) => format_uint(out, verb, spec, *u, arg)?,
        Value::Semver(v) => match verb {
            'v' | 's' => pad(out, v.canonical().as_bytes(), spec, false),
            _ => bad_verb(out, verb, spec, arg)?,
        },
        // A struct: each field with the verb; `%+v` names the fields, `%#v` writes a Go literal.
        Value::Cert(c) => {
            let sharp_v = verb == 'v' && spec.sharp;
            let plus_v = verb == 'v' && spec.plus;
            let field_spec = Spec {
                plus: spec.plus && !plus_v,
                sharp: spec.sharp && !sharp_v,
                ..spec
            };
            if sharp_v {
                out.extend_from_slice(arg.type_name().as_bytes());
            }
            out.push(b'{');
            for (k, (name, value)) in c.fields().into_iter().enumerate() {
                if k > 0 {
                    out.extend_from_slice(if sharp_v { b", " } else { b" " });
                }
                if plus_v || sharp_v {
                    out.extend_from_slice(name.as_bytes());
                    out.push(b':');
                }
                if sharp_v {
                    go_quote(out, spec.prec.map_or(value, |p| truncate_runes(value, p)), false);
                } else {
                    format_one(out, verb, field_spec, &Value::Str(value.clone()), depth + 1)?;
                }
            }
            out.push(b'}');
        }
        Value::Time(t) => match verb {
            'v' | 's' => {
                pad(out, super::funcs::dates::time_string(t).as_bytes(), spec, false);
            }
            _ => bad_verb(out, verb, spec, arg)?,
        },
    }
    Ok(())
}

fn truncate_runes(s: &[u8], n: usize) -> &[u8] {
    // Go counts runes as `range` does: an invalid byte is one rune.
    let mut i = 0;
    for _ in 0..n {
        if i >= s.len() {
            return s;
        }
        i += rune_width(&s[i..]);
    }
    &s[..i.min(s.len())]
}

/// The width of the first rune of `s` as Go decodes it (1 for an invalid byte).
fn rune_width(s: &[u8]) -> usize {
    let end = s.len().min(4);
    match std::str::from_utf8(&s[..end]) {
        Ok(t) => t.chars().next().map_or(1, char::len_utf8),
        Err(e) if e.valid_up_to() > 0 => std::str::from_utf8(&s[..e.valid_up_to()])
            .ok()
            .and_then(|t| t.chars().next())
            .map_or(1, char::len_utf8),
        Err(_) => 1,
    }
}

/// `strconv.CanBackquote`.
fn can_backquote(s: &[u8]) -> bool {
    match std::str::from_utf8(s) {
        Ok(t) => !t
            .chars()
            .any(|c| (c < ' ' && c != '\t') || c == '`' || c == '\u{7f}' || c == '\u{feff}'),
        Err(_) => false,
    }
}

fn format_int(out: &mut Buf, verb: char, spec: Spec, n: i64, arg: &Value) -> Result<(), Overflow> {
    let neg = n < 0;
    let mag = n.unsigned_abs();
    let digits = match verb {
        'v' | 'd' => mag.to_string(),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'o' | 'O' => format!("{mag:o}"),
        'b' => format!("{mag:b}"),
        'c' => {
            let c = u32::try_from(n).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            pad(out, c.to_string().as_bytes(), spec, false);
            return Ok(());
        }
        'q' => {
            let c = u32::try_from(n).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            pad(out, go_quote_rune(c, spec.plus).as_bytes(), spec, false);
            return Ok(());
        }
        'U' => {
            pad(out, format!("U+{mag:04X}").as_bytes(), spec, false);
            return Ok(());
        }
        _ => return bad_verb(out, verb, spec, arg),
    };
    let mut digits = digits;
    if let Some(p) = spec.prec {
        if digits.len() < p {
            // One allocation (a loop of inserts at the front would be quadratic in the precision).
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        }
        if p == 0 && n == 0 {
            digits.clear();
        }
    }
    let mut body = String::new();
    if neg {
        body.push('-');
    } else if spec.plus {
        body.push('+');
    } else if spec.space {
        body.push(' ');
    }
    if spec.sharp {
        match verb {
            'x' => body.push_str("0x"),
            'X' => body.push_str("0X"),
            'o' => body.push('0'),
            'b' => body.push_str("0b"),
            _ => {}
        }
    }
    if verb == 'O' {
        body.push_str("0o");
    }
    body.push_str(&digits);
    let zero_ok = spec.prec.is_none();
    pad(
        out,
        body.as_bytes(),
        Spec {
            zero: spec.zero && zero_ok && !spec.minus,
            ..spec
        },
        true,
    );
    Ok(())
}

/// A `uint64`: the verbs of `format_int` on the magnitude (`%c`, `%q` and `%U` of huge values are Go's
/// replacement character, as for an `int` out of the rune range).
fn format_uint(out: &mut Buf, verb: char, spec: Spec, u: u64, arg: &Value) -> Result<(), Overflow> {
    match i64::try_from(u) {
        Ok(n) => format_int(out, verb, spec, n, arg),
        Err(_) => match verb {
            'v' | 'd' => {
                let body = if spec.plus { format!("+{u}") } else { u.to_string() };
                pad(out, body.as_bytes(), spec, true);
                Ok(())
            }
            'x' => {
                pad(
                    out,
                    format!("{}{u:x}", if spec.sharp { "0x" } else { "" }).as_bytes(),
                    spec,
                    true,
                );
                Ok(())
            }
            'X' => {
                pad(
                    out,
                    format!("{}{u:X}", if spec.sharp { "0X" } else { "" }).as_bytes(),
                    spec,
                    true,
                );
                Ok(())
            }
            'o' => {
                pad(
                    out,
                    format!("{}{u:o}", if spec.sharp { "0" } else { "" }).as_bytes(),
                    spec,
                    true,
                );
                Ok(())
            }
            'b' => {
                pad(out, format!("{u:b}").as_bytes(), spec, true);
                Ok(())
            }
            _ => format_int(out, verb, spec, -1, arg),
        },
    }
}

fn format_float(out: &mut Buf, verb: char, spec: Spec, f: f64, arg: &Value) -> Result<(), Overflow> {
    let mut body = match verb {
        'v' | 'g' | 'G' => match spec.prec {
            None => format_float_g(f),
            Some(p) => format_g_prec(f, p.max(1)),
        },
        'f' | 'F' => {
            if f.is_finite() {
                format!("{:.*}", spec.prec.unwrap_or(6), f)
            } else {
                format_float_g(f)
            }
        }
        'e' | 'E' => {
            if f.is_finite() {
                go_exp(&format!("{:.*e}", spec.prec.unwrap_or(6), f))
            } else {
                format_float_g(f)
            }
        }
        'x' | 'X' => {
            if f.is_finite() {
                hex_float(f, verb == 'X')
            } else {
                format_float_g(f)
            }
        }
        _ => return bad_verb(out, verb, spec, arg),
    };
    if verb == 'E' || verb == 'G' {
        body = body.to_uppercase();
    }
    if spec.plus && !body.starts_with(['-', '+']) {
        body.insert(0, '+');
    } else if spec.space && !body.starts_with('-') {
        body.insert(0, ' ');
    }
    pad(
        out,
        body.as_bytes(),
        Spec {
            zero: spec.zero && !spec.minus && f.is_finite(),
            ..spec
        },
        true,
    );
    Ok(())
}

/// Rust's `1.5e0` to Go's `1.5e+00`.
fn go_exp(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s.to_string(),
    }
}

/// `%.Ng`: N significant digits, trailing zeros removed.
fn format_g_prec(f: f64, p: usize) -> String {
    if !f.is_finite() {
        return format_float_g(f);
    }
    if f == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", p - 1, f);
    let exp: i32 = e.split_once('e').and_then(|(_, x)| x.parse().ok()).unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let (m, _) = e.split_once('e').unwrap_or((&e, ""));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        go_exp(&format!("{m}e{exp}"))
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        let s = format!("{f:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'x', -1, 64)`: `0x1.4p+01`, the shortest hexadecimal mantissa.
fn hex_float(f: f64, upper: bool) -> String {
    let bits = f.to_bits();
    let neg = bits >> 63 != 0;
    let mut exp = ((bits >> 52) & 0x7ff) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1 << 52;
    }
    exp -= 1023;
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push('0');
    out.push(if upper { 'X' } else { 'x' });
    out.push(if (mant >> 60) & 1 == 1 { '1' } else { '0' });
    mant <<= 4;
    if mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(char::from(digits[((mant >> 60) & 15) as usize]));
            mant <<= 4;
        }
    }
    out.push(if upper { 'P' } else { 'p' });
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    out.push_str(&format!("{e:02}"));
    out
}

/// Go's `strconv.QuoteRune` (`QuoteRuneToASCII` with `+`).
fn go_quote_rune(c: char, ascii: bool) -> String {
    let body = match c {
        '\'' => "\\'".to_string(),
        '"' => "\"".to_string(),
        c => {
            let mut b = Buf::new(&crate::alloc::Budget::new(64));
            quote_str(&mut b, c.encode_utf8(&mut [0u8; 4]), ascii);
            String::from_utf8_lossy(b.as_slice()).into_owned()
        }
    };
    format!("'{body}'")
}

/// Go's `strconv.Quote` (or `QuoteToASCII` with `+`), appended to `out`.
pub fn go_quote(out: &mut Buf, s: &[u8], ascii: bool) {
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() && !out.failed() {
        match std::str::from_utf8(rest) {
            Ok(t) => {
                quote_str(out, t, ascii);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                quote_str(out, std::str::from_utf8(good).unwrap_or(""), ascii);
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for b in &bad[..n.min(bad.len())] {
                    let _ = write!(out, "\\x{b:02x}");
                }
                rest = &bad[n.min(bad.len())..];
            }
        }
    }
    out.push(b'"');
}

fn quote_str(out: &mut Buf, t: &str, ascii: bool) {
    for c in t.chars() {
        if out.failed() {
            return;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if ascii && !c.is_ascii() || !is_go_printable(c) => {
                let n = c as u32;
                if n < 0x10000 {
                    let _ = write!(out, "\\u{n:04x}");
                } else {
                    let _ = write!(out, "\\U{n:08x}");
                }
            }
            c => out.push_char(c),
        }
    }
}

/// Approximation of Go's `strconv.IsPrint` for non-ASCII runes.
fn is_go_printable(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    !(c.is_control() || c == '\u{FEFF}' || ('\u{2028}'..='\u{2029}').contains(&c) || c == '\u{00AD}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::Budget;

    fn s(x: &'static str) -> Value {
        Value::from_static(x.as_bytes())
    }

    fn sprintf(f: &[u8], args: &[Value]) -> Result<Vec<u8>, Overflow> {
        let mut out = Buf::new(&Budget::default());
        super::sprintf(&mut out, f, args)?;
        Ok(out.into_vec()?)
    }

    fn sprint(args: &[Value]) -> Result<Vec<u8>, Overflow> {
        let mut out = Buf::new(&Budget::default());
        super::sprint(&mut out, args)?;
        Ok(out.into_vec()?)
    }

    fn sprintln(args: &[Value]) -> Result<Vec<u8>, Overflow> {
        let mut out = Buf::new(&Budget::default());
        super::sprintln(&mut out, args)?;
        Ok(out.into_vec()?)
    }

    #[test]
    fn printf_like_go() {
        let out = sprintf(
            b"%v %d %s %q %x %5.2f|%-4s|%04d %t %T",
            &[
                Value::Float(1.5),
                Value::Int(3),
                s("s"),
                s("q\n"),
                s("hi"),
                Value::Float(2.456),
                s("a"),
                Value::Int(7),
                Value::Bool(true),
                Value::Int(1),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1.5 3 s \"q\\n\" 6869  2.46|a   |0007 true int"
        );
        let out = sprintf(b"%d %s", &[s("x"), Value::Int(1)]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "%!d(string=x) %!s(int=1)");
        assert_eq!(sprintf(b"%s", &[]).unwrap(), b"%!s(MISSING)");
        assert_eq!(
            sprintf(b"%s", &[Value::Int(1), Value::Int(2)]).unwrap(),
            b"%!s(int=1)%!(EXTRA int=2)"
        );
        assert_eq!(
            sprintf(
                b"%e|%.3g|%g",
                &[Value::Float(1.5), Value::Float(2.456), Value::Float(1e21)]
            )
            .unwrap(),
            b"1.500000e+00|2.46|1e+21"
        );
    }

    #[test]
    fn sprint_spacing() {
        let v = [Value::Int(1), Value::Int(2), s("a"), s("b"), Value::Int(3), Value::Nil];
        assert_eq!(sprint(&v).unwrap(), b"1 2ab3 <nil>");
        assert_eq!(sprintln(&[Value::Int(1), s("a")]).unwrap(), b"1 a\n");
    }

    #[test]
    fn huge_widths_and_precisions_are_linear_and_charged() {
        // (A precision padded one insert at a time took minutes here.)
        let out = sprintf(b"%.1000000d|%1000000d", &[Value::Int(7), Value::Int(8)]).unwrap();
        assert_eq!(out.len(), 2_000_001);
        let mut small = Buf::new(&Budget::new(1000));
        assert!(matches!(
            super::sprintf(&mut small, b"%5000d", &[Value::Int(1)]),
            Err(Overflow::Budget(_))
        ));
    }
}
