//! Go `time.Duration` text, as ESO's `metav1.Duration` fields carry it: `"1h0m0s"`, `"5m"`, `"300ms"`, `"1.5h"`.
//!
//! [`parse_go`] follows `time.ParseDuration` exactly (same grammar, units, overflow limits and the same
//! float arithmetic for fractions), and [`format_go`] follows `Duration.String()`, so values read back from
//! the apiserver compare and print the way ESO users expect.
use std::time::Duration;

/// Why a duration string was rejected. Messages match Go's `time.ParseDuration` errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    #[error("duration {0:?} must not be negative")]
    Negative(String),
}

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const LIMIT: u64 = 1 << 63;

fn unit(u: &[u8]) -> Option<u64> {
    Some(match u {
        b"ns" => NANOSECOND,
        b"us" => MICROSECOND,
        b"\xc2\xb5s" => MICROSECOND, // "µs", U+00B5 micro sign
        b"\xce\xbcs" => MICROSECOND, // "μs", U+03BC Greek mu
        b"ms" => MILLISECOND,
        b"s" => SECOND,
        b"m" => MINUTE,
        b"h" => HOUR,
        _ => return None,
    })
}

/// Consumes `[0-9]*`; `None` on overflow (Go's `errLeadingInt`).
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Consumes `[0-9]*` after a period, ignoring digits that would overflow; returns (digits, 10^n, rest).
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1.0_f64;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if !overflow {
            if x > (LIMIT - 1) / 10 {
                overflow = true;
            } else {
                let y = x * 10 + u64::from(s[i] - b'0');
                if y > LIMIT {
                    overflow = true;
                } else {
                    x = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (x, scale, &s[i..])
}

/// Parses a Go duration into signed nanoseconds, exactly like `time.ParseDuration`.
pub fn parse_go(input: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(input.to_owned());
    let mut s = input.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (mut v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        let mut post = false;
        let (mut f, mut scale) = (0_u64, 1.0_f64);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (ff, sc, rest) = leading_fraction(s);
            (f, scale, s) = (ff, sc, rest);
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let end = s
            .iter()
            .position(|c| *c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if end == 0 {
            return Err(DurationError::MissingUnit(input.to_owned()));
        }
        let (u, rest) = s.split_at(end);
        s = rest;
        let unit = unit(u).ok_or_else(|| DurationError::UnknownUnit {
            unit: String::from_utf8_lossy(u).into_owned(),
            input: input.to_owned(),
        })?;
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Same float arithmetic as Go, so fractions round identically.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let frac = (f as f64 * (unit as f64 / scale)) as u64;
            v = v.checked_add(frac).filter(|v| *v <= LIMIT).ok_or_else(invalid)?;
        }
        // Checked: two terms of 2^63 each would wrap a u64 (Go's own parser wraps here and accepts the result).
        total = total.checked_add(v).filter(|t| *t <= LIMIT).ok_or_else(invalid)?;
    }
    if neg {
        // total <= 2^63, so the negation fits (i64::MIN for exactly 2^63).
        return Ok((total as i128).wrapping_neg() as i64);
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Parses a non-negative Go duration.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let nanos = parse_go(input)?;
    let nanos = u64::try_from(nanos).map_err(|_| DurationError::Negative(input.to_owned()))?;
    Ok(Duration::from_nanos(nanos))
}

/// Formats signed nanoseconds like Go's `Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `300ms`, `0s`.
pub fn format_go(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < SECOND {
        let (prec, suffix) = match u {
            0 => return "0s".to_owned(),
            u if u < MICROSECOND => (0, "ns"),
            u if u < MILLISECOND => (3, "µs"),
            _ => (6, "ms"),
        };
        let frac = fmt_frac(&mut u, prec);
        out.push_str(&u.to_string());
        out.push_str(&frac);
        out.push_str(suffix);
    } else {
        let frac = fmt_frac(&mut u, 9);
        let secs = u % 60;
        u /= 60;
        if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{mins}m"));
        }
        out.push_str(&format!("{secs}{frac}s"));
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Splits off `prec` decimal digits of `v` as `.ddd` without trailing zeros (empty when they are all zero).
fn fmt_frac(v: &mut u64, prec: u32) -> String {
    let mut digits = Vec::new();
    let mut printed = false;
    for _ in 0..prec {
        let digit = *v % 10;
        printed = printed || digit != 0;
        if printed {
            digits.push(char::from(b'0' + digit as u8));
        }
        *v /= 10;
    }
    if !printed {
        return String::new();
    }
    digits.push('.');
    digits.iter().rev().collect()
}

/// Formats a duration like Go's `Duration.String()` (saturating at Go's maximum of about 292 years).
pub fn format(d: Duration) -> String {
    format_go(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// An integer number of seconds or a Go duration string (`x-kubernetes-int-or-string`), as in a store's
/// `refreshInterval`. Either form deserializes; [`IntOrDuration::to_duration`] interprets it like ESO.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum IntOrDuration {
    Seconds(i64),
    Duration(String),
}

impl schemars::JsonSchema for IntOrDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IntOrDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "x-kubernetes-int-or-string": true })
    }
}

impl IntOrDuration {
    /// The duration: seconds, or the string parsed as a Go duration. Negative values are an error.
    pub fn to_duration(&self) -> Result<Duration, DurationError> {
        match self {
            IntOrDuration::Seconds(s) => u64::try_from(*s)
                .map(Duration::from_secs)
                .map_err(|_| DurationError::Negative(s.to_string())),
            IntOrDuration::Duration(text) => parse(text),
        }
    }
}

impl std::fmt::Display for IntOrDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrDuration::Seconds(s) => write!(f, "{s}"),
            IntOrDuration::Duration(text) => write!(f, "{text:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * SECOND as i64),
            ("30s", 30 * SECOND as i64),
            ("1478s", 1478 * SECOND as i64),
            ("-5s", -5 * SECOND as i64),
            ("+5s", 5 * SECOND as i64),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * SECOND as i64),
            ("5.6s", 5 * SECOND as i64 + 600 * MILLISECOND as i64),
            ("5.s", 5 * SECOND as i64),
            (".5s", 500 * MILLISECOND as i64),
            ("1.0s", SECOND as i64),
            ("1.00s", SECOND as i64),
            ("1.004s", SECOND as i64 + 4 * MILLISECOND as i64),
            ("1.0040s", SECOND as i64 + 4 * MILLISECOND as i64),
            ("100.00100s", 100 * SECOND as i64 + MILLISECOND as i64),
            ("10ns", 10),
            ("11us", 11 * MICROSECOND as i64),
            ("12µs", 12 * MICROSECOND as i64),
            ("12μs", 12 * MICROSECOND as i64),
            ("13ms", 13 * MILLISECOND as i64),
            ("14s", 14 * SECOND as i64),
            ("15m", 15 * MINUTE as i64),
            ("16h", 16 * HOUR as i64),
            ("3h30m", 3 * HOUR as i64 + 30 * MINUTE as i64),
            (
                "10.5s4m",
                4 * MINUTE as i64 + 10 * SECOND as i64 + 500 * MILLISECOND as i64,
            ),
            (
                "-2m3.4s",
                -(2 * MINUTE as i64 + 3 * SECOND as i64 + 400 * MILLISECOND as i64),
            ),
            (
                "1h2m3s4ms5us6ns",
                HOUR as i64 + 2 * MINUTE as i64 + 3 * SECOND as i64 + 4_005_006,
            ),
            (
                "39h9m14.425s",
                39 * HOUR as i64 + 9 * MINUTE as i64 + 14 * SECOND as i64 + 425 * MILLISECOND as i64,
            ),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * MINUTE as i64),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("0.100000000000000000000h", 6 * MINUTE as i64),
            (
                "0.830103483285477580700h",
                49 * MINUTE as i64 + 48 * SECOND as i64 + 372_539_827,
            ),
            ("1h0m0s", HOUR as i64),
            ("1.5h", 90 * MINUTE as i64),
            ("300ms", 300 * MILLISECOND as i64),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn rejects_like_go() {
        let cases: &[(&str, &str)] = &[
            ("", r#"time: invalid duration """#),
            ("3", r#"time: missing unit in duration "3""#),
            ("-", r#"time: invalid duration "-""#),
            ("s", r#"time: invalid duration "s""#),
            (".", r#"time: invalid duration ".""#),
            ("-.", r#"time: invalid duration "-.""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+.s", r#"time: invalid duration "+.s""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("1h 30m", r#"time: unknown unit "h " in duration "1h 30m""#),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            (
                "9223372036854775.808us",
                r#"time: invalid duration "9223372036854775.808us""#,
            ),
            (
                "9223372036854ms775us808ns",
                r#"time: invalid duration "9223372036854ms775us808ns""#,
            ),
            (
                "-9223372036854775809ns",
                r#"time: invalid duration "-9223372036854775809ns""#,
            ),
            // Two terms of 2^63 each: their sum wraps a u64 (a panic in a debug build before the checked add).
            (
                "-9223372036854775808ns9223372036854775808ns",
                r#"time: invalid duration "-9223372036854775808ns9223372036854775808ns""#,
            ),
            (
                "2562047h47m16.854775808s2562047h",
                r#"time: invalid duration "2562047h47m16.854775808s2562047h""#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go(input).unwrap_err().to_string(), *want, "{input}");
        }
        assert_eq!(parse("-1s"), Err(DurationError::Negative("-1s".into())));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200 * MICROSECOND as i64, "2.2ms"),
            (300 * MILLISECOND as i64, "300ms"),
            (3_300 * MILLISECOND as i64, "3.3s"),
            (4 * MINUTE as i64 + 5 * SECOND as i64, "4m5s"),
            (4 * MINUTE as i64 + 5_001 * MILLISECOND as i64, "4m5.001s"),
            (
                5 * HOUR as i64 + 6 * MINUTE as i64 + 7_001 * MILLISECOND as i64,
                "5h6m7.001s",
            ),
            (8 * MINUTE as i64 + 1, "8m0.000000001s"),
            (HOUR as i64, "1h0m0s"),
            (5 * MINUTE as i64, "5m0s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (-(SECOND as i64), "-1s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format_go(*nanos), *want);
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m0s");
        for text in ["1h0m0s", "5m0s", "300ms", "1h30m0s", "1.5µs"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
