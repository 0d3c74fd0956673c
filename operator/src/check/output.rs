//! The report as text for people (JSON is the report serialized).
use std::fmt::Write as _;

use super::{Level, ObjectReport, Report, Verdict};

fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Unsupported => "NOT SUPPORTED",
        Verdict::Difference => "DIFFERENCE",
        Verdict::Supported => "SUPPORTED",
    }
}

fn object(out: &mut String, o: &ObjectReport) {
    let name = match &o.namespace {
        Some(ns) => format!("{ns}/{}", o.name),
        None => o.name.clone(),
    };
    let _ = writeln!(out, "{:<14} {} {}  ({})", label(o.verdict), o.kind, name, o.source);
    let mut findings: Vec<_> = o.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    for f in findings {
        let tag = match f.level {
            Level::Unsupported => "not supported",
            Level::Difference => "difference",
            Level::Note => "note",
        };
        let _ = writeln!(out, "  {tag}: {}: {}", f.field, f.message);
        if let Some(a) = &f.action {
            let _ = writeln!(out, "    what to do: {a}");
        }
    }
}

/// Not supported first, then differences, then supported objects that have notes (all supported objects with
/// `all`), each group in input order; a summary line last.
pub fn text(report: &Report, all: bool) -> String {
    let mut out = String::new();
    for s in &report.skipped {
        let _ = writeln!(out, "SKIPPED        {}: {}", s.source, s.reason);
    }
    for v in [Verdict::Unsupported, Verdict::Difference, Verdict::Supported] {
        for o in report.objects.iter().filter(|o| o.verdict == v) {
            if v == Verdict::Supported && !all && o.findings.is_empty() {
                continue;
            }
            object(&mut out, o);
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{} objects: {} supported, {} supported with a difference, {} not supported{}",
        s.objects,
        s.supported,
        s.difference,
        s.unsupported,
        if report.skipped.is_empty() {
            String::new()
        } else {
            format!("; {} documents skipped", report.skipped.len())
        }
    );
    out
}
