//! Comparing syncret's engine with recorded Go results: a document of the shape of `fixtures/template/go_cases.json`
//! (template_name, datasets with base64 values, cases with output_b64 or error), as `e2e/gotemplate` writes it.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]
use std::collections::BTreeMap;

use base64::Engine;
use syncret_template::render;

/// The Go oracle `e2e/gotemplate`, or `None` when the differential tests are to be skipped.
///
/// `SYNCRET_GOTEMPLATE` names the binary (`e2e/test.sh` builds it once, before the tests, and sets it), or is `skip`
/// (`e2e/test.sh` could not build it: no Go, or the Go module proxy failed; it says so loudly). Unset, the oracle is
/// built here (or found in its cache) by `e2e/gotemplate/build.sh`, which needs Go and the Go module proxy.
pub fn gotemplate() -> Option<String> {
    match std::env::var("SYNCRET_GOTEMPLATE").ok().as_deref() {
        Some("skip") => {
            println!("SYNCRET_GOTEMPLATE=skip: the differential test against Go is skipped");
            return None;
        }
        Some(bin) if !bin.is_empty() => return Some(bin.to_string()),
        _ => {}
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let build = std::process::Command::new("bash")
        .arg(format!("{root}/e2e/gotemplate/build.sh"))
        .output()
        .expect("running e2e/gotemplate/build.sh");
    assert!(
        build.status.success(),
        "e2e/gotemplate/build.sh failed (Go and the Go module proxy are needed; SYNCRET_GOTEMPLATE=skip skips):\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    Some(String::from_utf8(build.stdout).unwrap().trim().to_string())
}

/// Runs `gotemplate <args>` with `input` as JSON on stdin and returns its JSON output.
pub fn gotemplate_json(bin: &str, args: &[&str], input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running gotemplate");
    let body = serde_json::to_vec(input).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "gotemplate {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("fixture base64")
}

/// Renders every case of `doc` and returns one line per case that differs from Go. `expected(case, go_error)` gives
/// the error syncret returns for a case (Go's error, or a deliberate deviation: syncret never quotes data in an
/// error). Go prints the value it could not range over; syncret does not, so that part is not compared.
pub fn differences(doc: &serde_json::Value, expected: &dyn Fn(&str, Option<&str>) -> Option<String>) -> Compared {
    differences_with(doc, expected, &|_, want, got| want == got)
}

/// The outcome of a comparison with Go.
pub struct Compared {
    /// Cases compared.
    pub cases: usize,
    /// Cases where syncret's output, or error message, is byte for byte Go's.
    pub identical: usize,
    /// One line per case that disagrees (beyond the accepted deviations).
    pub failures: Vec<String>,
}

impl Compared {
    /// The figure tests print: `N of M byte-identical, K accepted deviations`.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} byte-identical to Go, {} accepted deviations (limits, redacted data, YAML error wording), {} failures",
            self.identical,
            self.cases,
            self.cases - self.identical - self.failures.len(),
            self.failures.len()
        )
    }
}

/// Whether a case's output agrees with Go's: `(case, go_output, output)`.
pub type SameOutput<'a> = &'a dyn Fn(&str, &[u8], &[u8]) -> bool;

/// [`differences`], with `same` deciding whether two outputs agree.
pub fn differences_with(
    doc: &serde_json::Value,
    expected: &dyn Fn(&str, Option<&str>) -> Option<String>,
    same: SameOutput<'_>,
) -> Compared {
    let name = doc["template_name"].as_str().unwrap();
    let mut datasets: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for (ds, vals) in doc["datasets"].as_object().unwrap() {
        let m = vals
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), b64(v.as_str().unwrap())))
            .collect();
        datasets.insert(ds.clone(), m);
    }
    let cases = doc["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut identical = 0;
    for c in cases {
        let case = c["name"].as_str().unwrap();
        let tpl = c["template"].as_str().unwrap();
        let data = &datasets[c["dataset"].as_str().unwrap()];
        let got = render(name, tpl, data);
        let go_err = c.get("error").and_then(|e| e.as_str()).filter(|e| !e.is_empty());
        let want_err = expected(case, go_err);
        let same_bytes = match (&got, go_err) {
            (Err(e), Some(go)) => e.message == go,
            (Ok(out), None) => *out == b64(c["output_b64"].as_str().unwrap_or("")),
            _ => false,
        };
        identical += usize::from(same_bytes);
        if !same_bytes && std::env::var_os("SYNCRET_TEMPLATE_DIFF_SHOW").is_some() {
            let ours = match &got {
                Ok(out) => format!("output {:?}", String::from_utf8_lossy(out)),
                Err(e) => format!("error {:?}", e.message),
            };
            println!("not identical: {case}: {tpl}\n   Go: {go_err:?}\n   syncret: {ours}");
        }
        match (want_err, got) {
            // Go goes on past a size syncret refuses (a 1 GB indent, say) and fails later, on something else.
            (Some(_), Err(e)) if e.kind == syncret_template::TemplateErrorKind::Limit => {}
            (Some(want), Err(e)) => {
                let redact = |m: &str| m.split("range can't iterate over ").next().unwrap_or("").to_string();
                if redact(&e.message) != redact(&want) {
                    failures.push(format!(
                        "{case}: {tpl}\n   want error: {want}\n    got error: {}",
                        e.message
                    ));
                }
            }
            (Some(want), Ok(out)) => failures.push(format!(
                "{case}: {tpl}\n   want error: {want}\n   got output: {:?}",
                String::from_utf8_lossy(&out)
            )),
            // Go renders it; syncret stops at one of its limits (a 28-million-element list, say), on purpose.
            (None, Err(e)) if e.kind == syncret_template::TemplateErrorKind::Limit => {}
            (None, Err(e)) => failures.push(format!("{case}: {tpl}\n   unexpected error: {}", e.message)),
            (None, Ok(out)) => {
                let want = b64(c["output_b64"].as_str().unwrap_or(""));
                if !same(case, &want, &out) {
                    failures.push(format!(
                        "{case}: {tpl}\n   want: {:?}\n    got: {:?}",
                        String::from_utf8_lossy(&want),
                        String::from_utf8_lossy(&out)
                    ));
                }
            }
        }
    }
    Compared {
        cases: cases.len(),
        identical,
        failures,
    }
}
