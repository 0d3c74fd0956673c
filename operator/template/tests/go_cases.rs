//! Differential cases: every template in `fixtures/template/go_cases.json` was executed by Go's `text/template` with
//! `missingkey=error` and sprig (as ESO runs templates); our engine must produce the same bytes, or the same error.
#![allow(clippy::expect_used, clippy::unwrap_used)]
mod common;

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

#[test]
fn go_text_template_cases() {
    // SYNCRET_GO_CASES points at another file of the same shape (e.g. `e2e/gotemplate gen` output).
    let path = std::env::var("SYNCRET_GO_CASES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/template/go_cases.json").to_string());
    let raw = std::fs::read_to_string(path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let deviation = |case: &str, go: Option<&str>| {
        DEVIATIONS
            .iter()
            .find(|(n, _)| *n == case)
            .map(|(_, m)| m.to_string())
            .or(go.map(str::to_string))
    };
    let compared = common::differences(&doc, &deviation);
    println!("go_cases.json: {}", compared.summary());
    let (n, failures) = (compared.cases, compared.failures);
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ from Go:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
