//! ExternalSecret `syncWindows`: 5-field cron schedules (and `@daily`-style descriptors, `@every <duration>`)
//! evaluated in UTC, with ESO's rule for "inside a window": the most recent firing at or before `at - duration
//! - 1s`'s next firing has not yet lasted `duration`.
use chrono::{DateTime, Datelike, Duration as ChronoDuration, TimeZone, Timelike, Utc};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    Cron(Box<CronSpec>),
    /// `@every <duration>`: fires `delay` after whatever time it is asked about (robfig/cron semantics).
    Every(std::time::Duration),
}

/// Bit sets of allowed values per field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSpec {
    minutes: u64,
    hours: u64,
    dom: u64,
    months: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses a 5-field cron expression or a descriptor (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
    /// `@midnight`, `@hourly`, `@every 1h30m`). The error says what is wrong, for a status condition.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let expr = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            t if t.starts_with("@every ") => {
                let d = syncret_crds::duration::parse(t.trim_start_matches("@every ").trim())
                    .map_err(|e| format!("invalid @every duration: {e}"))?;
                if d.is_zero() {
                    return Err("@every needs a positive duration".into());
                }
                return Ok(Schedule::Every(d));
            }
            t if t.starts_with('@') => return Err(format!("unrecognized descriptor {t:?}")),
            t => t,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!("expected 5 fields (minute hour day-of-month month day-of-week), got {}", fields.len()));
        }
        let (minutes, _) = parse_field(fields[0], 0, 59, &[], "minute")?;
        let (hours, _) = parse_field(fields[1], 0, 23, &[], "hour")?;
        let (dom, dom_star) = parse_field(fields[2], 1, 31, &[], "day-of-month")?;
        let (months, _) = parse_field(fields[3], 1, 12, &MONTHS, "month")?;
        let (mut dow, dow_star) = parse_field(fields[4], 0, 7, &DAYS, "day-of-week")?;
        if dow & (1 << 7) != 0 {
            dow |= 1; // 7 is Sunday too
        }
        Ok(Schedule::Cron(Box::new(CronSpec { minutes, hours, dom, months, dow, dom_star, dow_star })))
    }

    /// The first firing strictly after `t` (seconds truncated for cron), or `None` within the next 5 years.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let secs = i64::try_from(d.as_secs()).ok()?;
                let base = t.with_nanosecond(0)?;
                Some(base + ChronoDuration::seconds(secs.max(1)))
            }
            Schedule::Cron(spec) => spec.next_after(t),
        }
    }

    /// ESO's window test: the window opened at the last firing and lasts `duration`.
    pub fn is_within(&self, duration: std::time::Duration, at: DateTime<Utc>) -> bool {
        let Ok(d) = ChronoDuration::from_std(duration) else { return false };
        let Some(prev) = self.next_after(at - d - ChronoDuration::seconds(1)) else { return false };
        prev <= at && at <= prev + d
    }
}

fn parse_field(text: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s.parse::<u32>().map_err(|_| format!("{what}: invalid step {s:?}"))?)),
            None => (part, None),
        };
        if step == Some(0) {
            return Err(format!("{what}: step must be positive"));
        }
        let (lo, hi) = if range == "*" || range == "?" {
            star = step.is_none();
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, min, what)?, value(b, names, min, what)?)
        } else {
            let v = value(range, names, min, what)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{what}: {part:?} is outside {min}-{max}"));
        }
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

fn value(text: &str, names: &[&str], offset: u32, what: &str) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + offset);
    }
    text.parse::<u32>().map_err(|_| format!("{what}: invalid value {text:?}"))
}

impl CronSpec {
    fn day_matches(&self, t: &DateTime<Utc>) -> bool {
        let dom = self.dom & (1 << t.day()) != 0;
        let dow = self.dow & (1 << t.weekday().num_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star { dom && dow } else { dom || dow }
    }

    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = t.with_second(0)?.with_nanosecond(0)? + ChronoDuration::minutes(1);
        let limit = t + ChronoDuration::days(366 * 5);
        while t < limit {
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
                t = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?;
                continue;
            }
            if !self.day_matches(&t) {
                t = Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0).single()? + ChronoDuration::days(1);
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.with_minute(0)? + ChronoDuration::hours(1);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += ChronoDuration::minutes(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_firings() {
        let s = Schedule::parse("30 2 * * *").unwrap();
        assert_eq!(s.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-01T02:30:00Z")));
        assert_eq!(s.next_after(at("2026-01-01T02:30:00Z")), Some(at("2026-01-02T02:30:00Z")));
        let s = Schedule::parse("*/15 9-17 * * MON-FRI").unwrap();
        // 2026-01-03 is a Saturday.
        assert_eq!(s.next_after(at("2026-01-03T10:00:00Z")), Some(at("2026-01-05T09:00:00Z")));
        assert_eq!(s.next_after(at("2026-01-05T09:07:00Z")), Some(at("2026-01-05T09:15:00Z")));
        let s = Schedule::parse("@monthly").unwrap();
        assert_eq!(s.next_after(at("2026-12-05T00:00:00Z")), Some(at("2027-01-01T00:00:00Z")));
        let s = Schedule::parse("0 0 31 2 *").unwrap();
        assert_eq!(s.next_after(at("2026-01-01T00:00:00Z")), None, "Feb 31 never fires");
    }

    #[test]
    fn windows() {
        let daily2am = Schedule::parse("0 2 * * *").unwrap();
        let hour = std::time::Duration::from_secs(3600);
        assert!(daily2am.is_within(hour, at("2026-03-01T02:00:00Z")));
        assert!(daily2am.is_within(hour, at("2026-03-01T02:59:00Z")));
        assert!(daily2am.is_within(hour, at("2026-03-01T03:00:00Z")));
        assert!(!daily2am.is_within(hour, at("2026-03-01T03:00:01Z")));
        assert!(!daily2am.is_within(hour, at("2026-03-01T01:59:59Z")));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in ["", "* * *", "61 * * * *", "* * * * MOO", "*/0 * * * *", "@sometimes", "@every nope"] {
            let err = Schedule::parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(Schedule::parse("@every 1h30m").is_ok());
        assert!(Schedule::parse("0 0 * * 7").is_ok());
    }
}
