//! sprig date functions with Go's reference-time layouts (`2006-01-02 15:04:05`).
//!
//! Time zones: the IANA database compiled into the binary (chrono-tz), as ESO's image has its zones; `Local` is UTC
//! (the controller runs in UTC, as ESO's does); a zone that does not load falls back to UTC, as in sprig.
use chrono::{Datelike, NaiveDate};

use super::{Ctx, FnError, FnResult, s};
use crate::alloc::{Boxed, Budget, Buf, Exhausted, Str};
use crate::value::{GoTime, Value};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn utc(secs: i64, nanos: u32) -> GoTime {
    GoTime {
        secs,
        nanos,
        offset: 0,
        zone: Str::from_static(b"UTC"),
    }
}

/// A `time.Time` value, charged.
fn time_value(ctx: &Ctx, t: GoTime) -> FnResult {
    Ok(Value::Time(Boxed::new(&ctx.budget, t)?))
}

pub fn now_time() -> GoTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    utc(d.as_secs() as i64, d.subsec_nanos())
}

/// The zero `time.Time`.
fn zero_time() -> GoTime {
    utc(-62_135_596_800, 0)
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    yday: u32,
    weekday: usize,
    hour: u32,
    min: u32,
    sec: u32,
}

fn civil(t: &GoTime) -> Civil {
    let local = t.secs.saturating_add(i64::from(t.offset));
    let days = local.div_euclid(86_400);
    let rem = local.rem_euclid(86_400) as u32;
    let date = NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::Duration::days(days)))
        .unwrap_or_default();
    Civil {
        year: i64::from(date.year()),
        month: date.month(),
        day: date.day(),
        yday: date.ordinal(),
        weekday: date.weekday().num_days_from_sunday() as usize,
        hour: rem / 3600,
        min: rem / 60 % 60,
        sec: rem % 60,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Chunk {
    Lit(String),
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    /// (`Z` allowed for UTC, with colons, digits: 2 = hh, 4 = hhmm, 6 = hhmmss)
    Offset(bool, bool, u8),
    /// (`9`s trim trailing zeros, digit count, separator)
    Frac(bool, usize, char),
}

/// Split a Go layout into chunks, as `time.nextStdChunk` does.
fn chunks(layout: &str) -> Vec<Chunk> {
    let b = layout.as_bytes();
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut k = 0;
    let rest = |k: usize| &layout[k..];
    while k < b.len() {
        let r = rest(k);
        let (chunk, len): (Option<Chunk>, usize) = match b[k] {
            b'J' if r.starts_with("January") => (Some(Chunk::LongMonth), 7),
            b'J' if r.starts_with("Jan") => (Some(Chunk::Month), 3),
            b'M' if r.starts_with("Monday") => (Some(Chunk::LongWeekDay), 6),
            b'M' if r.starts_with("Mon") => (Some(Chunk::WeekDay), 3),
            b'M' if r.starts_with("MST") => (Some(Chunk::TZ), 3),
            b'0' if r.starts_with("002") => (Some(Chunk::ZeroYearDay), 3),
            b'0' if r.len() >= 2 && (b'1'..=b'6').contains(&b[k + 1]) => {
                let c = match b[k + 1] {
                    b'1' => Chunk::ZeroMonth,
                    b'2' => Chunk::ZeroDay,
                    b'3' => Chunk::ZeroHour12,
                    b'4' => Chunk::ZeroMinute,
                    b'5' => Chunk::ZeroSecond,
                    _ => Chunk::Year,
                };
                (Some(c), 2)
            }
            b'1' if r.starts_with("15") => (Some(Chunk::Hour), 2),
            b'1' => (Some(Chunk::NumMonth), 1),
            b'2' if r.starts_with("2006") => (Some(Chunk::LongYear), 4),
            b'2' => (Some(Chunk::Day), 1),
            b'_' if r.starts_with("_2") && !r.starts_with("_2006") => (Some(Chunk::UnderDay), 2),
            b'_' if r.starts_with("__2") => (Some(Chunk::UnderYearDay), 3),
            b'3' => (Some(Chunk::Hour12), 1),
            b'4' => (Some(Chunk::Minute), 1),
            b'5' => (Some(Chunk::Second), 1),
            b'P' if r.starts_with("PM") => (Some(Chunk::PM), 2),
            b'p' if r.starts_with("pm") => (Some(Chunk::Pm), 2),
            b'-' | b'Z' => {
                let z = b[k] == b'Z';
                let body = &r[1..];
                if body.starts_with("070000") {
                    (Some(Chunk::Offset(z, false, 6)), 7)
                } else if body.starts_with("07:00:00") {
                    (Some(Chunk::Offset(z, true, 6)), 9)
                } else if body.starts_with("0700") {
                    (Some(Chunk::Offset(z, false, 4)), 5)
                } else if body.starts_with("07:00") {
                    (Some(Chunk::Offset(z, true, 4)), 6)
                } else if body.starts_with("07") {
                    (Some(Chunk::Offset(z, false, 2)), 3)
                } else {
                    (None, 1)
                }
            }
            c @ (b'.' | b',') if r.len() >= 2 && (b[k + 1] == b'0' || b[k + 1] == b'9') => {
                let d = b[k + 1];
                let mut j = k + 1;
                while j < b.len() && b[j] == d {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    (None, 1)
                } else {
                    (Some(Chunk::Frac(d == b'9', j - k - 1, char::from(c))), j - k)
                }
            }
            _ => (None, 1),
        };
        match chunk {
            Some(c) => {
                if !lit.is_empty() {
                    out.push(Chunk::Lit(std::mem::take(&mut lit)));
                }
                out.push(c);
                k += len;
            }
            None => {
                let ch = r.chars().next().unwrap_or(' ');
                lit.push(ch);
                k += ch.len_utf8();
            }
        }
    }
    if !lit.is_empty() {
        out.push(Chunk::Lit(lit));
    }
    out
}

fn fmt_offset(out: &mut String, off: i32, z: bool, colons: bool, digits: u8) {
    if z && off == 0 {
        out.push('Z');
        return;
    }
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    out.push(sign);
    out.push_str(&format!("{:02}", a / 3600));
    if digits >= 4 {
        if colons {
            out.push(':');
        }
        out.push_str(&format!("{:02}", a / 60 % 60));
    }
    if digits >= 6 {
        if colons {
            out.push(':');
        }
        out.push_str(&format!("{:02}", a % 60));
    }
}

/// `time.Time.Format`.
pub fn go_format(t: &GoTime, layout: &str) -> String {
    let c = civil(t);
    let mut out = String::new();
    for ch in chunks(layout) {
        match ch {
            Chunk::Lit(l) => out.push_str(&l),
            Chunk::LongMonth => out.push_str(MONTHS[(c.month - 1) as usize % 12]),
            Chunk::Month => out.push_str(&MONTHS[(c.month - 1) as usize % 12][..3]),
            Chunk::NumMonth => out.push_str(&c.month.to_string()),
            Chunk::ZeroMonth => out.push_str(&format!("{:02}", c.month)),
            Chunk::LongWeekDay => out.push_str(DAYS[c.weekday % 7]),
            Chunk::WeekDay => out.push_str(&DAYS[c.weekday % 7][..3]),
            Chunk::Day => out.push_str(&c.day.to_string()),
            Chunk::UnderDay => out.push_str(&format!("{:>2}", c.day)),
            Chunk::ZeroDay => out.push_str(&format!("{:02}", c.day)),
            Chunk::UnderYearDay => out.push_str(&format!("{:>3}", c.yday)),
            Chunk::ZeroYearDay => out.push_str(&format!("{:03}", c.yday)),
            Chunk::Hour => out.push_str(&format!("{:02}", c.hour)),
            Chunk::Hour12 => out.push_str(&(if c.hour.is_multiple_of(12) { 12 } else { c.hour % 12 }).to_string()),
            Chunk::ZeroHour12 => out.push_str(&format!(
                "{:02}",
                if c.hour.is_multiple_of(12) { 12 } else { c.hour % 12 }
            )),
            Chunk::Minute => out.push_str(&c.min.to_string()),
            Chunk::ZeroMinute => out.push_str(&format!("{:02}", c.min)),
            Chunk::Second => out.push_str(&c.sec.to_string()),
            Chunk::ZeroSecond => out.push_str(&format!("{:02}", c.sec)),
            Chunk::LongYear => {
                if c.year < 0 {
                    out.push_str(&format!("-{:04}", -c.year));
                } else {
                    out.push_str(&format!("{:04}", c.year));
                }
            }
            Chunk::Year => out.push_str(&format!("{:02}", c.year.rem_euclid(100))),
            Chunk::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Chunk::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            Chunk::TZ => {
                if t.zone.is_empty() {
                    fmt_offset(&mut out, t.offset, false, false, 4);
                } else {
                    out.push_str(&String::from_utf8_lossy(&t.zone));
                }
            }
            Chunk::Offset(z, colons, digits) => fmt_offset(&mut out, t.offset, z, colons, digits),
            Chunk::Frac(trim, n, sep) => {
                let digits = format!("{:09}", t.nanos);
                let mut d = digits[..n.min(9)].to_string();
                if trim {
                    d = d.trim_end_matches('0').to_string();
                    if !d.is_empty() {
                        out.push(sep);
                        out.push_str(&d);
                    }
                } else {
                    out.push(sep);
                    out.push_str(&d);
                }
            }
        }
    }
    out
}

/// `time.Time.String()` (without the monotonic clock reading).
pub fn time_string(t: &GoTime) -> String {
    go_format(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

pub fn rfc3339_nano(t: &GoTime) -> String {
    go_format(t, "2006-01-02T15:04:05.999999999Z07:00")
}

/// Parameterless `time.Time` methods reachable as fields (`{{ now.Year }}`).
pub fn time_method(budget: &Budget, t: &GoTime, name: &str) -> Result<Option<Value>, Exhausted> {
    let c = civil(t);
    Ok(Some(match name {
        "Unix" => Value::Int64(t.secs),
        "UnixNano" => Value::Int64(t.secs.saturating_mul(1_000_000_000).saturating_add(i64::from(t.nanos))),
        "UnixMilli" => Value::Int64(
            t.secs
                .saturating_mul(1000)
                .saturating_add(i64::from(t.nanos / 1_000_000)),
        ),
        "Year" => Value::Int(c.year),
        "YearDay" => Value::Int(i64::from(c.yday)),
        "Day" => Value::Int(i64::from(c.day)),
        "Hour" => Value::Int(i64::from(c.hour)),
        "Minute" => Value::Int(i64::from(c.min)),
        "Second" => Value::Int(i64::from(c.sec)),
        "Nanosecond" => Value::Int(i64::from(t.nanos)),
        "Month" => Value::from_static(MONTHS[(c.month - 1) as usize % 12].as_bytes()),
        "Weekday" => Value::from_static(DAYS[c.weekday % 7].as_bytes()),
        "UTC" | "Local" => Value::Time(Boxed::new(budget, utc(t.secs, t.nanos))?),
        "String" => Value::copy_str(budget, time_string(t).as_bytes())?,
        "IsZero" => Value::Bool(t.secs == zero_time().secs && t.nanos == 0),
        _ => return Ok(None),
    }))
}

/// sprig's `formatDate` argument handling: times, Unix seconds as int/int64, anything else is "now".
fn to_time(v: &Value) -> GoTime {
    match v {
        Value::Time(t) => (**t).clone(),
        Value::Int(n) | Value::Int64(n) => utc(*n, 0),
        _ => now_time(),
    }
}

/// `t.In(loc)` for sprig's `time.LoadLocation(zone)`, falling back to UTC when the zone does not load, as sprig
/// does. Zones come from the IANA database compiled in (chrono-tz); `Local` is UTC, as in ESO's image.
fn in_zone(budget: &Budget, t: GoTime, zone: &str) -> Result<GoTime, Exhausted> {
    use chrono::{Offset, TimeZone};
    use chrono_tz::OffsetName;
    // Go refuses names that could escape the zoneinfo directory.
    let loadable = !(zone.contains("..") || zone.starts_with('/') || zone.starts_with('\\'));
    let tz = match zone {
        "" | "UTC" | "Local" => None,
        z if loadable => z.parse::<chrono_tz::Tz>().ok(),
        _ => None,
    };
    let Some(tz) = tz else {
        return Ok(utc(t.secs, t.nanos));
    };
    let Some(at) = chrono::DateTime::from_timestamp(t.secs, t.nanos) else {
        return Ok(utc(t.secs, t.nanos));
    };
    let offset = tz.offset_from_utc_datetime(&at.naive_utc());
    let seconds = offset.fix().local_minus_utc();
    // chrono-tz gives no abbreviation where the database has a numeric one (zic's `%z`: `-05`, `+0545`).
    let name = match offset.abbreviation() {
        Some(a) => a.to_string(),
        None => numeric_abbreviation(seconds),
    };
    Ok(GoTime {
        secs: t.secs,
        nanos: t.nanos,
        offset: seconds,
        zone: Buf::copy_of(budget, name.as_bytes())?.into_str()?,
    })
}

/// zic's `%z` abbreviation: sign and hours, then minutes and seconds when not zero.
fn numeric_abbreviation(offset: i32) -> String {
    let a = offset.unsigned_abs();
    let mut s = format!("{}{:02}", if offset < 0 { '-' } else { '+' }, a / 3600);
    if !a.is_multiple_of(3600) {
        s.push_str(&format!("{:02}", a / 60 % 60));
        if !a.is_multiple_of(60) {
            s.push_str(&format!("{:02}", a % 60));
        }
    }
    s
}

pub fn now(ctx: &mut Ctx, _: Vec<Value>) -> FnResult {
    time_value(ctx, now_time())
}

pub fn date(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.str_value(go_format(
        &in_zone(&ctx.budget, to_time(&a[1]), "Local")?,
        &String::from_utf8_lossy(s(&a[0])),
    ))
}

pub fn date_in_zone(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let zone = String::from_utf8_lossy(s(&a[2])).into_owned();
    ctx.str_value(go_format(
        &in_zone(&ctx.budget, to_time(&a[1]), &zone)?,
        &String::from_utf8_lossy(s(&a[0])),
    ))
}

pub fn html_date(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.str_value(go_format(&in_zone(&ctx.budget, to_time(&a[0]), "Local")?, "2006-01-02"))
}

pub fn html_date_in_zone(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let zone = String::from_utf8_lossy(s(&a[1])).into_owned();
    ctx.str_value(go_format(&in_zone(&ctx.budget, to_time(&a[0]), &zone)?, "2006-01-02"))
}

fn want_time(v: &Value) -> Result<&GoTime, FnError> {
    match v {
        Value::Time(t) => Ok(t),
        Value::Nil => Err(FnError::msg("invalid value; expected time.Time")),
        other => Err(FnError::msg(format!(
            "wrong type for value; expected time.Time; got {}",
            other.type_name()
        ))),
    }
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    // Go quotes the input in these messages; we do not, it may be a secret value.
    let bad = || "time: invalid duration".to_string();
    let (neg, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let num_len = s.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        if num_len == 0 {
            return Err(bad());
        }
        let v: f64 = s[..num_len].parse().map_err(|_| bad())?;
        s = &s[num_len..];
        let unit_len = s.bytes().take_while(|c| !c.is_ascii_digit() && *c != b'.').count();
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let mult: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err("time: missing unit in duration".into()),
            _ => return Err("time: unknown unit in duration".into()),
        };
        total += v * mult;
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

/// `time.Duration.String`.
pub fn duration_string(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1u64)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac_string(u, div));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let (h, m) = (secs / 3600, secs / 60 % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        let rem = u % 60_000_000_000;
        out.push_str(&frac_string(rem, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn frac_string(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

pub fn date_modify(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = want_time(&a[1])?;
    match parse_duration(&String::from_utf8_lossy(s(&a[0]))) {
        Ok(d) => time_value(ctx, add_nanos(t, d)),
        Err(_) => Ok(a[1].clone()),
    }
}

pub fn must_date_modify(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = want_time(&a[1])?;
    let d = parse_duration(&String::from_utf8_lossy(s(&a[0]))).map_err(FnError::msg)?;
    time_value(ctx, add_nanos(t, d))
}

fn add_nanos(t: &GoTime, d: i64) -> GoTime {
    let total = i128::from(t.secs) * 1_000_000_000 + i128::from(t.nanos) + i128::from(d);
    GoTime {
        secs: total.div_euclid(1_000_000_000) as i64,
        nanos: total.rem_euclid(1_000_000_000) as u32,
        offset: t.offset,
        zone: t.zone.clone(),
    }
}

pub fn duration(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let n = match &a[0] {
        Value::Str(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0),
        Value::Int64(n) => *n,
        _ => 0,
    };
    ctx.str_value(duration_string(n.saturating_mul(1_000_000_000)))
}

fn since(t: &GoTime) -> i64 {
    let now = now_time();
    (i128::from(now.secs - t.secs) * 1_000_000_000 + i128::from(now.nanos) - i128::from(t.nanos)) as i64
}

pub fn duration_round(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let d: i64 = match &a[0] {
        Value::Str(b) => parse_duration(&String::from_utf8_lossy(b)).unwrap_or_default(),
        Value::Int64(n) => *n,
        Value::Time(t) => since(t),
        _ => 0,
    };
    let u = d.unsigned_abs();
    let (year, month, day, hour, minute, second) = (
        365 * 24 * 3600 * 1_000_000_000u64,
        30 * 24 * 3600 * 1_000_000_000u64,
        86_400_000_000_000u64,
        3_600_000_000_000u64,
        60_000_000_000u64,
        1_000_000_000u64,
    );
    let out = if u > year {
        format!("{}y", u / year)
    } else if u > month {
        format!("{}mo", u / month)
    } else if u > day {
        format!("{}d", u / day)
    } else if u > hour {
        format!("{}h", u / hour)
    } else if u > minute {
        format!("{}m", u / minute)
    } else if u > second {
        format!("{}s", u / second)
    } else {
        "0s".into()
    };
    ctx.str_value(out)
}

pub fn ago(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = to_time(&a[0]);
    let d = since(&t);
    // Round to the second, halfway away from zero.
    let r = (d as i128 + if d >= 0 { 500_000_000 } else { -500_000_000 }) / 1_000_000_000 * 1_000_000_000;
    ctx.str_value(duration_string(r as i64))
}

pub fn unix_epoch(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.str_value(want_time(&a[0])?.secs.to_string())
}

/// `time.ParseInLocation(layout, value, time.Local)` for the common layout elements.
fn go_parse(layout: &str, value: &str) -> Result<GoTime, String> {
    let err = || "cannot parse the value with the layout".to_string();
    let mut v = value;
    let (mut year, mut month, mut day, mut hour, mut min, mut sec, mut nanos) =
        (1i64, 1u32, 1u32, 0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset: i32 = 0;
    let num = |v: &mut &str, min_len: usize, max_len: usize| -> Result<u32, String> {
        let n = v.bytes().take(max_len).take_while(u8::is_ascii_digit).count();
        if n < min_len {
            return Err(err());
        }
        let r = v[..n].parse::<u32>().map_err(|_| err())?;
        *v = &v[n..];
        Ok(r)
    };
    for ch in chunks(layout) {
        match ch {
            Chunk::Lit(l) => {
                v = v.strip_prefix(l.as_str()).ok_or_else(err)?;
            }
            Chunk::LongYear => {
                year = i64::from(num(&mut v, 4, 4)?);
            }
            Chunk::Year => {
                let y = num(&mut v, 2, 2)?;
                year = i64::from(if y >= 69 { 1900 + y } else { 2000 + y });
            }
            Chunk::ZeroMonth | Chunk::NumMonth => month = num(&mut v, 1, 2)?,
            Chunk::LongMonth | Chunk::Month => {
                let idx = MONTHS
                    .iter()
                    .position(|m| {
                        let m = if ch == Chunk::Month { &m[..3] } else { m };
                        v.get(..m.len()).is_some_and(|p| p.eq_ignore_ascii_case(m))
                    })
                    .ok_or_else(err)?;
                let l = if ch == Chunk::Month { 3 } else { MONTHS[idx].len() };
                v = &v[l..];
                month = idx as u32 + 1;
            }
            Chunk::LongWeekDay | Chunk::WeekDay => {
                let idx = DAYS
                    .iter()
                    .position(|d| {
                        let d = if ch == Chunk::WeekDay { &d[..3] } else { d };
                        v.get(..d.len()).is_some_and(|p| p.eq_ignore_ascii_case(d))
                    })
                    .ok_or_else(err)?;
                v = &v[if ch == Chunk::WeekDay { 3 } else { DAYS[idx].len() }..];
            }
            Chunk::ZeroDay | Chunk::Day => day = num(&mut v, 1, 2)?,
            Chunk::UnderDay => {
                v = v.strip_prefix(' ').unwrap_or(v);
                day = num(&mut v, 1, 2)?;
            }
            Chunk::ZeroYearDay | Chunk::UnderYearDay => {
                num(&mut v, 1, 3)?;
            }
            Chunk::Hour => hour = num(&mut v, 1, 2)?,
            Chunk::Hour12 | Chunk::ZeroHour12 => hour = num(&mut v, 1, 2)?,
            Chunk::Minute | Chunk::ZeroMinute => min = num(&mut v, 1, 2)?,
            Chunk::Second | Chunk::ZeroSecond => {
                sec = num(&mut v, 1, 2)?;
                // Go accepts a fractional second after seconds even if the layout has none.
                if let Some(rest) = v.strip_prefix('.')
                    && rest.starts_with(|c: char| c.is_ascii_digit())
                    && !layout.contains(".0")
                    && !layout.contains(".9")
                {
                    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
                    let digits = format!("{:0<9}", &rest[..n.min(9)]);
                    nanos = digits.parse().unwrap_or(0);
                    v = &rest[n..];
                }
            }
            Chunk::PM | Chunk::Pm => {
                let p = v.get(..2).ok_or_else(err)?.to_ascii_uppercase();
                pm = Some(match p.as_str() {
                    "PM" => true,
                    "AM" => false,
                    _ => return Err(err()),
                });
                v = &v[2..];
            }
            Chunk::TZ => {
                let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                if n < 3 {
                    return Err(err());
                }
                v = &v[n..];
            }
            Chunk::Offset(z, colons, digits) => {
                if z && v.starts_with('Z') {
                    v = &v[1..];
                    continue;
                }
                let sign = match v.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return Err(err()),
                };
                v = &v[1..];
                let h = num(&mut v, 2, 2)?;
                let mut m = 0;
                let mut sc = 0;
                if digits >= 4 {
                    if colons {
                        v = v.strip_prefix(':').ok_or_else(err)?;
                    }
                    m = num(&mut v, 2, 2)?;
                }
                if digits >= 6 {
                    if colons {
                        v = v.strip_prefix(':').ok_or_else(err)?;
                    }
                    sc = num(&mut v, 2, 2)?;
                }
                offset = sign * (h * 3600 + m * 60 + sc) as i32;
            }
            Chunk::Frac(trim, n, sep) => {
                if let Some(rest) = v.strip_prefix(sep) {
                    let k = rest.bytes().take_while(u8::is_ascii_digit).count();
                    if !trim && k != n {
                        return Err(err());
                    }
                    let digits = format!("{:0<9}", &rest[..k.min(9)]);
                    nanos = digits.parse().unwrap_or(0);
                    v = &rest[k..];
                } else if !trim {
                    return Err(err());
                }
            }
        }
    }
    if !v.is_empty() {
        return Err("extra text in the value".into());
    }
    if let Some(p) = pm {
        if hour > 12 {
            return Err(err());
        }
        if p && hour < 12 {
            hour += 12;
        } else if !p && hour == 12 {
            hour = 0;
        }
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).map_err(|_| err())?, month, day)
        .ok_or_else(|| "day out of range".to_string())?;
    let dt = date
        .and_hms_opt(hour, min, sec)
        .ok_or_else(|| "time out of range".to_string())?;
    let secs = dt.and_utc().timestamp() - i64::from(offset);
    let zone = if offset == 0 {
        Str::from_static(b"UTC")
    } else {
        Str::default()
    };
    Ok(GoTime {
        secs,
        nanos,
        offset,
        zone,
    })
}

/// Whether `value` parses with Go layout `layout` (`time.Parse`).
pub fn go_parse_layout(layout: &str, value: &str) -> bool {
    go_parse(layout, value).is_ok()
}

pub fn to_date(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = go_parse(&String::from_utf8_lossy(s(&a[0])), &String::from_utf8_lossy(s(&a[1])))
        .unwrap_or_else(|_| zero_time());
    time_value(ctx, t)
}

pub fn must_to_date(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = go_parse(&String::from_utf8_lossy(s(&a[0])), &String::from_utf8_lossy(s(&a[1])))
        .map_err(|e| FnError::msg(format!("parsing time: {e}")))?;
    time_value(ctx, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let t = GoTime {
            secs: 1_136_214_245,
            nanos: 123_000_000,
            offset: 0,
            zone: Str::from_static(b"UTC"),
        };
        assert_eq!(go_format(&t, "2006-01-02T15:04:05Z07:00"), "2006-01-02T15:04:05Z");
        assert_eq!(go_format(&t, "Mon Jan _2 3:04PM .000"), "Mon Jan  2 3:04PM .123");
        assert_eq!(time_string(&t), "2006-01-02 15:04:05.123 +0000 UTC");
        let p = go_parse("2006-01-02 15:04:05 -0700", "2006-01-02 08:04:05 -0700").unwrap();
        assert_eq!(p.secs, 1_136_214_245);
        assert_eq!(duration_string(3_723_000_000_000), "1h2m3s");
        assert_eq!(duration_string(60_000_000_000), "1m0s");
        assert_eq!(duration_string(1_500_000), "1.5ms");
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000_000);
    }
}
