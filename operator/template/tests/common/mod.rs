//! Comparing syncret's engine with recorded Go results: a document of the shape of `fixtures/template/go_cases.json`
//! (template_name, datasets with base64 values, cases with output_b64 or error), as `e2e/gotemplate` writes it.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]
use std::collections::BTreeMap;

use base64::Engine;
use syncret_template::render;

/// Builds (or finds cached) `e2e/gotemplate`, the Go oracle, and returns its path.
pub fn gotemplate() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let build = std::process::Command::new("bash")
        .arg(format!("{root}/e2e/gotemplate/build.sh"))
        .output()
        .expect("running e2e/gotemplate/build.sh");
    assert!(
        build.status.success(),
        "e2e/gotemplate/build.sh failed (Go and the Go module proxy are needed):\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    String::from_utf8(build.stdout).unwrap().trim().to_string()
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
pub fn differences(
    doc: &serde_json::Value,
    expected: &dyn Fn(&str, Option<&str>) -> Option<String>,
) -> (usize, Vec<String>) {
    differences_with(doc, expected, &|_, want, got| want == got)
}

/// Whether a case's output agrees with Go's: `(case, go_output, output)`.
pub type SameOutput<'a> = &'a dyn Fn(&str, &[u8], &[u8]) -> bool;

/// [`differences`], with `same` deciding whether two outputs agree.
pub fn differences_with(
    doc: &serde_json::Value,
    expected: &dyn Fn(&str, Option<&str>) -> Option<String>,
    same: SameOutput<'_>,
) -> (usize, Vec<String>) {
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
    for c in cases {
        let case = c["name"].as_str().unwrap();
        let tpl = c["template"].as_str().unwrap();
        let data = &datasets[c["dataset"].as_str().unwrap()];
        let got = render(name, tpl, data);
        let go_err = c.get("error").and_then(|e| e.as_str()).filter(|e| !e.is_empty());
        let want_err = expected(case, go_err);
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
    (cases.len(), failures)
}
