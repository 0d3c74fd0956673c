//! Differential cases: every template in `fixtures/template/go_cases.json` was executed by Go's `text/template` with
//! `missingkey=error` and sprig (as ESO runs templates); our engine must produce the same bytes, or the same error.
#![allow(clippy::expect_used, clippy::unwrap_used)]
use std::collections::BTreeMap;

use base64::Engine;
use syncret_template::render;

/// Cases where we deliberately differ from Go: its JSON syntax error quotes a character of the (secret) input, and its
/// ASN.1 errors dump decoder internals.
const DEVIATIONS: &[(&str, &str)] = &[
    (
        "mustFromJson_invalid_error",
        "template: tls.crt:1:3: executing \"tls.crt\" at <mustFromJson \"{bad\">: error calling mustFromJson: invalid JSON at line 1 column 2",
    ),
    (
        "eso_pkcs12_not_pkcs12_error",
        "template: tls.crt:1:14: executing \"tls.crt\" at <pkcs12cert>: error calling pkcs12cert: unable to decode pkcs12 certificate with password: pkcs12: error reading P12 data",
    ),
];

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("fixture base64")
}

#[test]
fn go_text_template_cases() {
    // SYNCRET_GO_CASES points at another file of the same shape (e.g. generated differential cases).
    let path = std::env::var("SYNCRET_GO_CASES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/template/go_cases.json").to_string());
    let raw = std::fs::read_to_string(path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
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
        let want_err = DEVIATIONS
            .iter()
            .find(|(n, _)| *n == case)
            .map(|(_, m)| *m)
            .or(c.get("error").and_then(|e| e.as_str()));
        match (want_err, got) {
            (Some(want), Err(e)) => {
                // Go prints the value it could not range over; we redact it (it may be a secret).
                let redact = |m: &str| m.split("range can't iterate over ").next().unwrap_or("").to_string();
                if redact(&e.message) != redact(want) {
                    failures.push(format!("{case}: error\n   want: {want}\n    got: {}", e.message));
                }
            }
            (Some(want), Ok(out)) => failures.push(format!(
                "{case}: want error {want:?}, got output {:?}",
                String::from_utf8_lossy(&out)
            )),
            (None, Err(e)) => failures.push(format!("{case}: unexpected error: {}", e.message)),
            (None, Ok(out)) => {
                let want = b64(c["output_b64"].as_str().unwrap());
                if out != want {
                    failures.push(format!(
                        "{case}: output\n   want: {:?}\n    got: {:?}",
                        String::from_utf8_lossy(&want),
                        String::from_utf8_lossy(&out)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Go:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
