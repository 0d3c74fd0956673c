//! sprig number functions, with `spf13/cast`'s lenient conversions.
use std::fmt::Write as _;

use rand::Rng;

use super::{Ctx, FnError, FnResult, i, s};
use crate::value::{ListKind, Value};

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, base prefixes, underscores between digits.
pub fn parse_int_base0(t: &str) -> Option<i64> {
    crate::parse::parse_number(t, false)
        .ok()
        .filter(|n| !t.contains(['.', 'e', 'E', 'p', 'P']) && n.int.is_some())
        .and_then(|n| n.int)
}

/// cast v1.10's `trimDecimal`: a decimal number loses its fraction (`"3.5"` → `"3"`, `"-.5"` → `"-0"`); anything
/// else is left as is.
fn trim_decimal(t: &str) -> std::borrow::Cow<'_, str> {
    let Some((int, frac)) = t.split_once('.') else {
        return t.into();
    };
    let digits = int.strip_prefix(['+', '-']).unwrap_or(int);
    if !digits.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return t.into();
    }
    match int {
        "-" | "+" => format!("{int}0").into(),
        "" => "0".into(),
        _ => int.into(),
    }
}

/// `cast.ToInt64`: errors become 0.
pub fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(n) | Value::Int64(n) => *n,
        Value::Uint64(u) => *u as i64,
        Value::Float(f) => {
            if f.is_nan() {
                i64::MIN
            } else {
                *f as i64
            }
        }
        Value::Bool(b) => i64::from(*b),
        Value::Str(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| parse_int_base0(&trim_decimal(t)))
            .unwrap_or(0),
        _ => 0,
    }
}

/// `cast.ToFloat64`: errors become 0.
pub fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(n) | Value::Int64(n) => *n as f64,
        Value::Uint64(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(b) => std::str::from_utf8(b).ok().and_then(go_parse_float).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// `strconv.ParseFloat(s, 64)` for decimal input (plus `inf`/`nan` spellings).
pub fn go_parse_float(t: &str) -> Option<f64> {
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        return t.parse::<f64>().ok();
    }
    if body.is_empty() || !body.bytes().next().is_some_and(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    if t.contains('_') {
        return None;
    }
    t.parse::<f64>().ok()
}

pub fn atoi(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = std::str::from_utf8(s(&a[0])).unwrap_or("");
    let ok = !t.is_empty()
        && t.trim_start_matches(['+', '-']).bytes().all(|c| c.is_ascii_digit())
        && t.len() > usize::from(t.starts_with(['+', '-']));
    Ok(Value::Int(if ok { t.parse::<i64>().unwrap_or(0) } else { 0 }))
}

pub fn int64(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int64(to_i64(&a[0])))
}

pub fn int(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int(to_i64(&a[0])))
}

pub fn float64(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(to_f64(&a[0])))
}

pub fn to_decimal(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let text = a[0].to_go_string(&ctx.budget)?;
    let t = std::str::from_utf8(&text).unwrap_or("");
    let digits = t.trim_start_matches(['+', '-']);
    let ok = !digits.is_empty() && digits.bytes().all(|c| (b'0'..=b'7').contains(&c));
    let v = if ok { i64::from_str_radix(t, 8).unwrap_or(0) } else { 0 };
    Ok(Value::Int64(v))
}

/// sprig's `untilStep` sequence: `(start, step, count)` of the values, its length checked against the limits and
/// charged before anything is built.
fn until_step_seq(ctx: &Ctx, start: i64, stop: i64, step: i64) -> Result<(i64, i64, usize), FnError> {
    let count: i128 = if stop < start {
        if step >= 0 {
            0
        } else {
            (start as i128 - stop as i128 + (-(step as i128)) - 1) / (-(step as i128))
        }
    } else if step <= 0 {
        0
    } else {
        (stop as i128 - start as i128 + step as i128 - 1) / step as i128
    };
    ctx.check_len(count.max(0) as u128)?;
    Ok((start, step, count.max(0) as usize))
}

/// The values of a sequence (`start + k·step` for `k < count`; no overflow: the last one lies before `stop`).
fn seq_values(start: i64, step: i64, count: usize) -> impl Iterator<Item = i64> {
    (0..count).map(move |k| (start as i128 + k as i128 * step as i128) as i64)
}

fn int_list(ctx: &Ctx, (start, step, count): (i64, i64, usize)) -> FnResult {
    let mut out = ctx.list_buf(count)?;
    for v in seq_values(start, step, count) {
        out.push(Value::Int(v))?;
    }
    Ok(Value::List(ListKind::Int, out.finish()))
}

pub fn until(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let count = i(&a[0]);
    let step = if count < 0 { -1 } else { 1 };
    let seq = until_step_seq(ctx, 0, count, step)?;
    int_list(ctx, seq)
}

pub fn until_step(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let seq = until_step_seq(ctx, i(&a[0]), i(&a[1]), i(&a[2]))?;
    int_list(ctx, seq)
}

pub fn seq(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p: Vec<i64> = a.iter().map(i).collect();
    let seq = match p.as_slice() {
        [end] => {
            let (start, end) = (1, *end);
            let inc = if end < start { -1 } else { 1 };
            until_step_seq(ctx, start, end.saturating_add(inc), inc)?
        }
        [start, end] => {
            let step = if end < start { -1 } else { 1 };
            until_step_seq(ctx, *start, end.saturating_add(step), step)?
        }
        [start, step, end] => {
            let mut inc = 1;
            if end < start {
                inc = -1;
                if *step > 0 {
                    return Ok(Value::from_static(b""));
                }
            }
            until_step_seq(ctx, *start, end.saturating_add(inc), *step)?
        }
        _ => return Ok(Value::from_static(b"")),
    };
    // At most 20 digits, a sign and a space per number.
    ctx.check_len((seq.2 as u128).saturating_mul(22))?;
    let mut out = ctx.buf();
    for (k, v) in seq_values(seq.0, seq.1, seq.2).enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        let _ = write!(out, "{v}");
        if out.failed() {
            break;
        }
    }
    Ok(out.into_value()?)
}

fn int64v(n: i64) -> FnResult {
    Ok(Value::Int64(n))
}

pub fn add1(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    int64v(to_i64(&a[0]).wrapping_add(1))
}

pub fn add(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    int64v(a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_i64(v))))
}

pub fn sub(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    int64v(to_i64(&a[0]).wrapping_sub(to_i64(&a[1])))
}

pub fn div(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (x, y) = (to_i64(&a[0]), to_i64(&a[1]));
    if y == 0 {
        return Err(FnError::msg("runtime error: integer divide by zero"));
    }
    int64v(x.wrapping_div(y))
}

pub fn modulo(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (x, y) = (to_i64(&a[0]), to_i64(&a[1]));
    if y == 0 {
        return Err(FnError::msg("runtime error: integer divide by zero"));
    }
    int64v(x.wrapping_rem(y))
}

pub fn mul(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    int64v(
        a.iter()
            .skip(1)
            .fold(to_i64(&a[0]), |acc, v| acc.wrapping_mul(to_i64(v))),
    )
}

pub fn max(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    int64v(a.iter().map(to_i64).max().unwrap_or(0))
}

pub fn min(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    int64v(a.iter().map(to_i64).min().unwrap_or(0))
}

pub fn maxf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(
        a.iter().skip(1).fold(to_f64(&a[0]), |acc, v| go_max(acc, to_f64(v))),
    ))
}

pub fn minf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(
        a.iter().skip(1).fold(to_f64(&a[0]), |acc, v| go_min(acc, to_f64(v))),
    ))
}

fn go_max(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() { f64::NAN } else { x.max(y) }
}

fn go_min(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() { f64::NAN } else { x.min(y) }
}

pub fn rand_int(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (lo, hi) = (i(&a[0]), i(&a[1]));
    let n = hi.wrapping_sub(lo);
    if n <= 0 {
        return Err(FnError::msg("invalid argument to Intn"));
    }
    Ok(Value::Int(rand::rng().random_range(0..n) + lo))
}

pub fn ceil(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(to_f64(&a[0]).ceil()))
}

pub fn floor(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(to_f64(&a[0]).floor()))
}

pub fn round(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let round_on = match a.get(2) {
        Some(Value::Float(f)) => *f,
        _ => 0.5,
    };
    let val = to_f64(&a[0]);
    let pow = 10f64.powf(i(&a[1]) as f64);
    let digit = pow * val;
    let div = digit.fract();
    let r = if div >= round_on { digit.ceil() } else { digit.floor() };
    Ok(Value::Float(r / pow))
}

/// A decimal `mantissa × 10^exp`, as shopspring/decimal builds from a float64 (its shortest representation).
#[derive(Clone, Copy)]
struct Dec {
    m: i128,
    e: i32,
}

impl Dec {
    fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        if f == 0.0 {
            return Some(Dec { m: 0, e: 0 });
        }
        let t = format!("{f:e}");
        let (mant, exp) = t.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let neg = mant.starts_with('-');
        let mant = mant.trim_start_matches('-');
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        let digits = format!("{ip}{fp}");
        let m: i128 = digits.parse().ok()?;
        Some(Dec {
            m: if neg { -m } else { m },
            e: exp - fp.len() as i32,
        })
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
        let e = a.e.min(b.e);
        let sa = 10i128.checked_pow(u32::try_from(a.e - e).ok()?)?;
        let sb = 10i128.checked_pow(u32::try_from(b.e - e).ok()?)?;
        Some((a.m.checked_mul(sa)?, b.m.checked_mul(sb)?, e))
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.m, self.e).parse().unwrap_or(f64::NAN)
    }
}

fn dec_op(a: f64, b: f64, op: char) -> f64 {
    let fallback = match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        _ => a / b,
    };
    let (Some(x), Some(y)) = (Dec::from_f64(a), Dec::from_f64(b)) else {
        return fallback;
    };
    let r = match op {
        '+' | '-' => Dec::align(x, y).and_then(|(p, q, e)| {
            let m = if op == '+' {
                p.checked_add(q)?
            } else {
                p.checked_sub(q)?
            };
            Some(Dec { m, e })
        }),
        '*' => x.m.checked_mul(y.m).map(|m| Dec { m, e: x.e + y.e }),
        _ => {
            if y.m == 0 {
                return f64::NAN;
            }
            // shopspring/decimal divides to 16 decimal places, rounding half away from zero.
            let scale = 16 + 1;
            let shift = scale + y.e - x.e;
            let num = if shift >= 0 {
                10i128.checked_pow(shift as u32).and_then(|p| x.m.checked_mul(p))
            } else {
                10i128.checked_pow((-shift) as u32).map(|p| x.m / p)
            };
            num.map(|n| {
                let q = n / y.m;
                let rounded = if q >= 0 { (q + 5) / 10 } else { (q - 5) / 10 };
                Dec { m: rounded, e: -16 }
            })
        }
    };
    r.map_or(fallback, Dec::to_f64)
}

fn fold_dec(a: &[Value], start: f64, op: char) -> FnResult {
    Ok(Value::Float(a.iter().fold(start, |acc, v| dec_op(acc, to_f64(v), op))))
}

pub fn add1f(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(dec_op(to_f64(&a[0]), 1.0, '+')))
}

pub fn addf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    fold_dec(&a, 0.0, '+')
}

pub fn subf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    fold_dec(&a[1..], to_f64(&a[0]), '-')
}

pub fn mulf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    fold_dec(&a[1..], to_f64(&a[0]), '*')
}

pub fn divf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    for v in &a[1..] {
        if to_f64(v) == 0.0 {
            return Err(FnError::msg("decimal division by 0"));
        }
    }
    fold_dec(&a[1..], to_f64(&a[0]), '/')
}
