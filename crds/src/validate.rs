//! Checks the OpenAPI schema cannot express (ESO does them in its admission webhook or at reconcile time).
//!
//! Each kind's spec has `fn validate(&self) -> Vec<FieldError>` that returns every problem, each naming the
//! field by its path in the object (`spec.data[2].remoteRef.key`) and the [`Rule`] that found it. An empty
//! vector means valid. [`crate::rules`] says how the apiserver enforces each rule at apply.
use std::fmt;

use crate::rules::Rule;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the object, e.g. `spec.dataFrom[0].find.name.regexp`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
    /// The rule of `validate()` that found it (`None` for errors made elsewhere).
    pub rule: Option<Rule>,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            rule: None,
        }
    }

    /// An error found by `rule`.
    pub fn of(rule: Rule, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            rule: Some(rule),
            ..Self::new(path, message)
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Joins errors into one line per error, for condition messages and CLI output.
pub fn join(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Collects errors under a path prefix.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<FieldError>);

impl Errors {
    pub(crate) fn push(&mut self, rule: Rule, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::of(rule, path, message));
    }
}

/// `path.field`.
pub(crate) fn field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// `path[index]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `path[key]`, for map entries.
pub(crate) fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// Checks that `re` compiles as a regular expression (ESO uses Go's RE2, which the `regex` crate matches closely).
pub(crate) fn check_regex(errs: &mut Errors, rule: Rule, path: &str, re: &str) {
    if let Err(e) = regex::Regex::new(re) {
        errs.push(
            rule,
            path,
            format!("invalid regular expression {re:?}: {}", last_line(&e.to_string())),
        );
    }
}

/// Checks that a non-empty `url` is an `http://` or `https://` URL.
pub(crate) fn check_http_url(errs: &mut Errors, rule: Rule, path: &str, url: &str) {
    let url = url.trim();
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        errs.push(rule, path, "must be an http:// or https:// URL");
    }
}

/// Checks that `text` is a non-negative Go duration.
pub(crate) fn check_duration(errs: &mut Errors, rule: Rule, path: &str, text: &str) {
    if let Err(e) = crate::duration::parse(text) {
        errs.push(rule, path, e.to_string());
    }
}

fn last_line(s: &str) -> String {
    // regex errors are multi-line with a caret diagram; the last line says what is wrong.
    let line = s.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or(s);
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// Checks a 5-field cron expression or a named shorthand (`@daily`, `@every 1h`) the way ESO's scheduler
/// (robfig/cron) reads it: field counts, ranges, steps, lists and month/weekday names.
pub(crate) fn check_cron(errs: &mut Errors, rule: Rule, path: &str, schedule: &str) {
    if let Err(msg) = parse_cron(schedule) {
        errs.push(rule, path, format!("invalid schedule {schedule:?}: {msg}"));
    }
}

fn parse_cron(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if let Some(rest) = s.strip_prefix("@every ") {
        return crate::duration::parse(rest.trim())
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    if s.starts_with('@') {
        return match s {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => Ok(()),
            _ => Err(format!("unrecognized descriptor {s:?}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}", fields.len()));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, MONTHS, 1),
        ("day of week", 0, 6, DAYS, 0),
    ];
    for (text, (name, min, max, names, name_base)) in fields.iter().zip(specs) {
        for part in text.split(',') {
            cron_part(part, min, max, names, name_base).map_err(|m| format!("{name} field {text:?}: {m}"))?;
        }
    }
    Ok(())
}

fn cron_part(part: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<(), String> {
    let value = |t: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return Ok(name_base + i as u32);
        }
        t.parse::<u32>().map_err(|_| format!("{t:?} is not a number"))
    };
    let (range, step) = match part.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (part, None),
    };
    if let Some(step) = step {
        let n: u32 = step.parse().map_err(|_| format!("step {step:?} is not a number"))?;
        if n == 0 {
            return Err("step must be positive".to_owned());
        }
    }
    if range == "*" || range == "?" {
        return Ok(());
    }
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (value(a)?, value(b)?),
        None => {
            let v = value(range)?;
            (v, if step.is_some() { max } else { v })
        }
    };
    if lo < min || hi > max {
        return Err(format!("out of range {min}-{max}"));
    }
    if lo > hi {
        return Err(format!("beginning of range {lo} beyond end {hi}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_field() {
        let e = FieldError::new("spec.data[2].remoteRef.key", "must not be empty");
        assert_eq!(e.to_string(), "spec.data[2].remoteRef.key: must not be empty");
        assert_eq!(join(&[e.clone(), e]).matches("remoteRef.key").count(), 2);
    }

    #[test]
    fn paths() {
        assert_eq!(field("", "spec"), "spec");
        assert_eq!(index(&field("spec", "data"), 2), "spec.data[2]");
        assert_eq!(
            key("spec.target.template.data", "a.b"),
            "spec.target.template.data[a.b]"
        );
    }

    #[test]
    fn cron_schedules() {
        for ok in [
            "0 9 * * 1-5",
            "*/15 * * * *",
            "0 22 * * MON-FRI",
            "30 2 1,15 jan,jul *",
            "@daily",
            "@every 1h30m",
            "0 0 * * 0",
            "5/10 * * * *",
        ] {
            assert_eq!(parse_cron(ok), Ok(()), "{ok}");
        }
        for bad in [
            "* * * *",
            "60 * * * *",
            "0 24 * * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "@often",
            "@every 1d",
            "5-1 * * * *",
            "*/0 * * * *",
            "a * * * *",
        ] {
            assert!(parse_cron(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regex_errors_are_one_line() {
        let mut errs = Errors::default();
        check_regex(&mut errs, Rule::EsFindRegexp, "spec.x", "(unclosed");
        assert_eq!(errs.0.len(), 1);
        assert!(!errs.0[0].message.contains('\n'), "{}", errs.0[0].message);
        assert!(
            errs.0[0]
                .message
                .starts_with("invalid regular expression \"(unclosed\"")
        );
    }
}
