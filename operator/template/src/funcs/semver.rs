//! sprig's `semver` and `semverCompare`, with the rules of Masterminds/semver v3.4.0 (the version ESO v2.9 builds
//! with): `NewVersion` in its default coercing mode (`v1`, `1.2` are versions; leading zeros are allowed), and
//! `NewConstraint`/`Check` with `=`, `!=`, `>`, `<`, `>=`, `<=` (and `=>`, `=<`), `~`/`~>`, `^`, `x`/`X`/`*`
//! wildcards, hyphen ranges (`1.2 - 1.4.5`), `,` or spaces for AND and `||` for OR, and pre-releases matched only
//! by a constraint of the same OR group that has a pre-release.
//!
//! A version is a `*semver.Version` in templates: it prints as its canonical string, and its methods are reachable
//! as fields (`(semver "1.2.3").Major`, `.Minor`, `.Patch`, `.Prerelease`, `.Metadata`, `.Original`, `.String`,
//! `.IncMajor`/`.IncMinor`/`.IncPatch`, `.Compare`, `.LessThan`, `.GreaterThan`, `.Equal`, …).
use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

use super::{Ctx, FnError, FnResult, text};
use crate::alloc::{Boxed, Budget};
use crate::value::Value;

/// A semantic version, as Masterminds' `Version` holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: String,
    pub metadata: String,
    pub original: String,
    /// `*semver.Version` (what `semver` returns) rather than `semver.Version` (what `IncPatch` and friends return):
    /// Go calls pointer methods (`Original`, `Compare`, `LessThan`…) only on the former.
    pub pointer: bool,
}

const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";

/// Compiled once; immutable.
struct Patterns {
    loose: Regex,
    constraint: Regex,
    range: Regex,
    find: Regex,
    valid: Regex,
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    Some(Patterns {
        loose: Regex::new(
            r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$",
        )
        .ok()?,
        constraint: Regex::new(&format!(r"^\s*({OPS})\s*({CV})\s*$")).ok()?,
        range: Regex::new(&format!(r"\s*({CV})\s+-\s+({CV})\s*")).ok()?,
        find: Regex::new(&format!(r"({OPS})\s*({CV})")).ok()?,
        valid: Regex::new(&format!(r"^(\s*({OPS})\s*({CV})\s*)((?:\s+|,\s*)({OPS})\s*({CV})\s*)*$")).ok()?,
    })
});

fn patterns() -> Result<&'static Patterns, String> {
    PATTERNS.as_ref().ok_or_else(|| "semver: internal error".to_string())
}

fn only(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    s.chars().all(allowed)
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

fn validate_prerelease(p: &str) -> Result<(), String> {
    for part in p.split('.') {
        if part.is_empty() {
            return Err("invalid prerelease string".into());
        } else if only(part, |c| c.is_ascii_digit()) {
            if part.len() > 1 && part.starts_with('0') {
                return Err("version segment starts with 0".into());
            }
        } else if !only(part, is_ident) {
            return Err("invalid prerelease string".into());
        }
    }
    Ok(())
}

fn validate_metadata(m: &str) -> Result<(), String> {
    for part in m.split('.') {
        if part.is_empty() || !only(part, is_ident) {
            return Err("invalid metadata string".into());
        }
    }
    Ok(())
}

/// `strconv.ParseUint(s, 10, 64)` of a run of digits. Go quotes the digits in its message; they may come from a
/// secret value, so this one does not.
fn segment(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| "error parsing version segment: strconv.ParseUint: value out of range".to_string())
}

impl Version {
    /// `semver.NewVersion` (coercing).
    pub fn parse(v: &str) -> Result<Version, String> {
        let p = patterns()?;
        let m = p
            .loose
            .captures(v)
            .ok_or_else(|| "invalid semantic version".to_string())?;
        let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
        let mut out = Version {
            major: segment(group(1))?,
            minor: 0,
            patch: 0,
            pre: group(5).to_string(),
            metadata: group(8).to_string(),
            original: v.to_string(),
            pointer: true,
        };
        if !group(2).is_empty() {
            out.minor = segment(group(2).trim_start_matches('.'))?;
        }
        if !group(3).is_empty() {
            out.patch = segment(group(3).trim_start_matches('.'))?;
        }
        if !out.pre.is_empty() {
            validate_prerelease(&out.pre)?;
        }
        if !out.metadata.is_empty() {
            validate_metadata(&out.metadata)?;
        }
        Ok(out)
    }

    /// `Version.String`.
    pub fn canonical(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.pre.is_empty() {
            s.push('-');
            s.push_str(&self.pre);
        }
        if !self.metadata.is_empty() {
            s.push('+');
            s.push_str(&self.metadata);
        }
        s
    }

    /// `Version.Compare`: build metadata does not count.
    pub fn compare(&self, o: &Version) -> Ordering {
        self.major
            .cmp(&o.major)
            .then(self.minor.cmp(&o.minor))
            .then(self.patch.cmp(&o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &o.pre),
            })
    }

    fn v_prefix(&self) -> &'static str {
        if self.original.starts_with('v') { "v" } else { "" }
    }

    /// `IncPatch`, `IncMinor`, `IncMajor`: a `semver.Version` value.
    fn inc(&self, which: &str) -> Version {
        let mut n = self.clone();
        n.metadata.clear();
        match which {
            "IncPatch" => {
                if self.pre.is_empty() {
                    n.patch = self.patch.wrapping_add(1);
                }
            }
            "IncMinor" => {
                n.patch = 0;
                n.minor = self.minor.wrapping_add(1);
            }
            _ => {
                n.patch = 0;
                n.minor = 0;
                n.major = self.major.wrapping_add(1);
            }
        }
        n.pre.clear();
        n.original = format!("{}{}", self.v_prefix(), n.canonical());
        n.pointer = false;
        n
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (sa, sb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..sa.len().max(sb.len()) {
        let d = compare_pre_part(sa.get(i).copied().unwrap_or(""), sb.get(i).copied().unwrap_or(""));
        if d != Ordering::Equal {
            return d;
        }
    }
    Ordering::Equal
}

fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Err(_), Err(_)) => {
            if s > o {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Ok(si), Ok(oi)) => {
            if si > oi {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

/// One parsed constraint: an operator and the version it compares with (x-wildcards make it "dirty").
struct Constraint {
    op: String,
    con: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "*" | "X")
}

fn parse_constraint(c: &str) -> Result<Constraint, String> {
    let p = patterns()?;
    if c.is_empty() {
        return Ok(Constraint {
            op: String::new(),
            con: Version::parse("0.0.0")?,
            minor_dirty: false,
            patch_dirty: false,
            dirty: true,
        });
    }
    let m = p
        .constraint
        .captures(c)
        .ok_or_else(|| format!("improper constraint: {c}"))?;
    let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
    let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
    let (mut minor_dirty, mut patch_dirty, mut dirty) = (false, false, false);
    let ver = if is_x(major) || major.is_empty() {
        dirty = true;
        format!("0.0.0{pre}")
    } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
        minor_dirty = true;
        dirty = true;
        format!("{major}.0.0{pre}")
    } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
        dirty = true;
        patch_dirty = true;
        format!("{major}{minor}.0{pre}")
    } else {
        group(2).to_string()
    };
    let con = Version::parse(&ver).map_err(|_| "constraint parser error".to_string())?;
    Ok(Constraint {
        op: group(1).to_string(),
        con,
        minor_dirty,
        patch_dirty,
        dirty,
    })
}

/// `NewConstraint`: OR groups of AND constraints, and whether each group names a pre-release.
fn parse_constraints(c: &str) -> Result<Vec<(Vec<Constraint>, bool)>, String> {
    let p = patterns()?;
    // Hyphen ranges become `>= a, <= b`; each match text replaced once, in order.
    let mut rewritten = c.to_string();
    for m in p.range.captures_iter(c) {
        let whole = m.get(0).map_or("", |g| g.as_str());
        let (a, b) = (
            m.get(1).map_or("", |g| g.as_str()),
            m.get(11).map_or("", |g| g.as_str()),
        );
        rewritten = rewritten.replacen(whole, &format!(">= {a}, <= {b} "), 1);
    }
    let mut out = Vec::new();
    for or in rewritten.split("||") {
        if !p.valid.is_match(or) {
            return Err(format!("improper constraint: {or}"));
        }
        let mut found: Vec<&str> = p.find.find_iter(or).map(|m| m.as_str()).collect();
        if found.is_empty() {
            found.push(or);
        }
        let mut group = Vec::new();
        let mut has_pre = false;
        for s in found {
            let pc = parse_constraint(s)?;
            has_pre |= !pc.con.pre.is_empty();
            group.push(pc);
        }
        out.push((group, has_pre));
    }
    Ok(out)
}

fn check_one(v: &Version, c: &Constraint, include_pre: bool) -> bool {
    if !v.pre.is_empty() && !include_pre {
        return false;
    }
    let lt = |a: &Version, b: &Version| a.compare(b) == Ordering::Less;
    let tilde = || {
        if lt(v, &c.con) {
            return false;
        }
        if c.con.major == 0 && c.con.minor == 0 && c.con.patch == 0 && !c.minor_dirty && !c.patch_dirty {
            return true;
        }
        if v.major != c.con.major {
            return false;
        }
        v.minor == c.con.minor || c.minor_dirty
    };
    match c.op.as_str() {
        "" | "=" => {
            if c.dirty {
                tilde()
            } else {
                v.compare(&c.con) == Ordering::Equal
            }
        }
        "!=" => {
            if c.dirty {
                if c.con.major != v.major {
                    return true;
                }
                if c.con.minor != v.minor && !c.minor_dirty {
                    return true;
                } else if c.minor_dirty {
                    return false;
                } else if c.con.patch != v.patch && !c.patch_dirty {
                    return true;
                } else if c.patch_dirty {
                    if !v.pre.is_empty() || !c.con.pre.is_empty() {
                        return compare_prerelease(&v.pre, &c.con.pre) != Ordering::Equal;
                    }
                    return false;
                }
            }
            v.compare(&c.con) != Ordering::Equal
        }
        ">" => {
            if !c.dirty {
                return v.compare(&c.con) == Ordering::Greater;
            }
            if v.major > c.con.major {
                true
            } else if v.major < c.con.major || c.minor_dirty {
                false
            } else if c.patch_dirty {
                v.minor > c.con.minor
            } else {
                v.compare(&c.con) == Ordering::Greater
            }
        }
        "<" => lt(v, &c.con),
        ">=" | "=>" => v.compare(&c.con) != Ordering::Less,
        "<=" | "=<" => {
            if !c.dirty {
                return v.compare(&c.con) != Ordering::Greater;
            }
            !(v.major > c.con.major || (v.major == c.con.major && v.minor > c.con.minor && !c.minor_dirty))
        }
        "~" | "~>" => tilde(),
        "^" => {
            if lt(v, &c.con) {
                return false;
            }
            if c.con.major > 0 || c.minor_dirty {
                return v.major == c.con.major;
            }
            if v.major > 0 {
                return false;
            }
            if c.con.minor > 0 || c.patch_dirty {
                return v.minor == c.con.minor;
            }
            if v.minor > 0 {
                return false;
            }
            c.con.patch == v.patch
        }
        _ => false,
    }
}

/// `semverCompare constraint version`.
pub fn semver_compare(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let groups = parse_constraints(&text(&a[0])).map_err(FnError::msg)?;
    let v = Version::parse(&text(&a[1])).map_err(FnError::msg)?;
    let ok = groups
        .iter()
        .any(|(group, has_pre)| group.iter().all(|c| check_one(&v, c, *has_pre)));
    Ok(Value::Bool(ok))
}

/// `semver version`: a `*semver.Version`.
pub fn semver(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let v = Version::parse(&text(&a[0])).map_err(FnError::msg)?;
    version_value(&ctx.budget, v)
}

fn version_value(budget: &Budget, v: Version) -> FnResult {
    // The strings live in the value: charge them with it.
    budget.charge(v.pre.len() + v.metadata.len() + v.original.len())?;
    Ok(Value::Semver(Boxed::new(budget, v)?))
}

/// How many arguments method `name` of `v` takes; `None` when `v` has no such method (Go: `can't evaluate field X
/// in type T`). `semver.Version` values (from `IncPatch` and friends) lack the pointer methods.
pub fn arity(v: &Version, name: &str) -> Option<usize> {
    match name {
        "Major" | "Minor" | "Patch" | "Prerelease" | "Metadata" | "String" | "IncPatch" | "IncMinor" | "IncMajor" => {
            Some(0)
        }
        "Original" if v.pointer => Some(0),
        "Compare" | "LessThan" | "LessThanEqual" | "GreaterThan" | "GreaterThanEqual" | "Equal" if v.pointer => Some(1),
        _ => None,
    }
}

/// Calls method `name` (of the arity [`arity`] gave) with its arguments, already checked to be versions.
pub fn call(budget: &Budget, v: &Version, name: &str, args: &[Value]) -> FnResult {
    let string = |s: &str| -> FnResult { Ok(Value::copy_str(budget, s.as_bytes())?) };
    match name {
        "Major" => Ok(Value::Uint64(v.major)),
        "Minor" => Ok(Value::Uint64(v.minor)),
        "Patch" => Ok(Value::Uint64(v.patch)),
        "Prerelease" => string(&v.pre),
        "Metadata" => string(&v.metadata),
        "String" => string(&v.canonical()),
        "Original" => string(&v.original),
        "IncPatch" | "IncMinor" | "IncMajor" => version_value(budget, v.inc(name)),
        _ => {
            let o = match args.first() {
                Some(Value::Semver(o)) => o,
                // A nil *Version: Go's Compare dereferences it.
                _ => {
                    return Err(FnError::msg(
                        "runtime error: invalid memory address or nil pointer dereference",
                    ));
                }
            };
            let ord = v.compare(o);
            Ok(match name {
                "Compare" => Value::Int(match ord {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                }),
                "LessThan" => Value::Bool(ord == Ordering::Less),
                "LessThanEqual" => Value::Bool(ord != Ordering::Greater),
                "GreaterThan" => Value::Bool(ord == Ordering::Greater),
                "GreaterThanEqual" => Value::Bool(ord != Ordering::Less),
                _ => Value::Bool(ord == Ordering::Equal),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: &str, v: &str) -> Result<bool, String> {
        let groups = parse_constraints(c)?;
        let v = Version::parse(v)?;
        Ok(groups.iter().any(|(g, pre)| g.iter().all(|c| check_one(&v, c, *pre))))
    }

    #[test]
    fn versions_parse_like_masterminds() {
        let v = Version::parse("v1.2.3-beta.1+build.5").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 2, 3));
        assert_eq!((v.pre.as_str(), v.metadata.as_str()), ("beta.1", "build.5"));
        assert_eq!(v.canonical(), "1.2.3-beta.1+build.5");
        assert_eq!(Version::parse("1.2").unwrap().canonical(), "1.2.0");
        assert_eq!(Version::parse("01.02.03").unwrap().canonical(), "1.2.3");
        assert_eq!(Version::parse("1.2.x").unwrap_err(), "invalid semantic version");
        assert_eq!(Version::parse("1.2.3-01").unwrap_err(), "version segment starts with 0");
        assert_eq!(Version::parse("").unwrap_err(), "invalid semantic version");
        assert!(
            Version::parse("99999999999999999999")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(
            Version::parse("1.0.0-rc.1")
                .unwrap()
                .compare(&Version::parse("1.0.0").unwrap()),
            Ordering::Less
        );
        assert_eq!(
            Version::parse("1.0.0-alpha.10")
                .unwrap()
                .compare(&Version::parse("1.0.0-alpha.9").unwrap()),
            Ordering::Greater
        );
        assert_eq!(
            Version::parse("1.0.0-alpha")
                .unwrap()
                .compare(&Version::parse("1.0.0-alpha.1").unwrap()),
            Ordering::Less
        );
    }

    #[test]
    fn constraints_check_like_masterminds() {
        let cases = [
            (">= 1.2.0", "1.2.3", true),
            ("~1.2", "1.2.9", true),
            ("~1.2", "1.3.0", false),
            ("^1.0.0", "1.9.0", true),
            ("^1.0.0", "2.0.0", false),
            ("^0.2.3", "0.2.5", true),
            ("^0.2.3", "0.3.0", false),
            ("1.x", "1.9.9", true),
            ("1.x", "2.0.0", false),
            ("< 2.0.0-0", "1.9.9", true),
            (">1.2.3-alpha <1.3", "1.2.3-beta", true),
            (">=1.2", "1.3.0-rc.1", false),
            ("=1.2.3", "1.2.3", true),
            ("!=1.2.3", "1.2.3", false),
            ("1.2.3 - 1.4", "1.4.5", true),
            ("1.2.3 - 1.4", "1.5.0", false),
            ("~1", "1.9.0", true),
            (">=1.0.0, <2.0.0 || 3.x", "3.1.0", true),
            (">=1.0.0, <2.0.0 || 3.x", "2.1.0", false),
            ("*", "1.2.3", true),
            ("*", "1.2.3-rc", false),
            ("<=1.2", "1.2.9", true),
            ("<=1.2", "1.3.0", false),
            (">1.2", "1.3.0", true),
            (">1.2", "1.2.9", false),
        ];
        for (c, v, want) in cases {
            assert_eq!(check(c, v), Ok(want), "{c} {v}");
        }
        assert_eq!(
            check("bad constraint", "1.0.0"),
            Err("improper constraint: bad constraint".into())
        );
    }
}
