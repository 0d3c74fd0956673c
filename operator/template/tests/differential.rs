//! The differential tests against Go: `e2e/gotemplate` (Go's text/template with the sprig commit ESO v2.9 vendors and
//! ESO's fromYaml/toYaml/hexdec, built from the Go module proxy and cached by `e2e/gotemplate/build.sh`).
//!
//! - `renders_like_go_on_a_fixed_seed_sample`: Go generates random templates from a fixed seed, plus fixed cases for
//!   YAML 1.1, semver, time zones, derivePassword, AES and `%q`, and records its output or error for each; every one
//!   must render the same here (~1 200 cases, ~2.5 s in a debug build).
//! - `generated_keys_and_certificates_look_like_gos`: sprig's key and certificate generators run by both; errors must
//!   be equal, and what each generated is described by Go (`gotemplate describe`) without its random parts (~5 s:
//!   RSA-4096 and DSA key generation dominate).
//!
//! `SYNCRET_TEMPLATE_DIFF_SEED` / `SYNCRET_TEMPLATE_DIFF_N` choose another sample (e.g. a large one while
//! developing); `SYNCRET_TEMPLATE_DIFF_FILE` compares a document generated earlier instead of running Go.
#![allow(clippy::expect_used, clippy::unwrap_used)]
mod common;

use std::process::Command;

/// The sample CI compares on every run.
const SEED: &str = "2409";
const N: &str = "400";

/// The error syncret gives where Go gives `go`: the same, except where Go quotes input (which may be secret).
fn deviation(_case: &str, go: Option<&str>) -> Option<String> {
    let go = go?.to_string();
    // Masterminds/semver quotes a version segment that overflows uint64.
    if let Some((head, tail)) = go.split_once("strconv.ParseUint: parsing \"")
        && let Some((_, rest)) = tail.split_once("\": ")
    {
        return Some(format!("{head}strconv.ParseUint: {rest}"));
    }
    Some(go)
}

fn go_results() -> Option<serde_json::Value> {
    if let Ok(file) = std::env::var("SYNCRET_TEMPLATE_DIFF_FILE") {
        return Some(serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap());
    }
    let bin = common::gotemplate()?;
    let seed = std::env::var("SYNCRET_TEMPLATE_DIFF_SEED").unwrap_or_else(|_| SEED.into());
    let n = std::env::var("SYNCRET_TEMPLATE_DIFF_N").unwrap_or_else(|_| N.into());
    let out = Command::new(&bin)
        .args(["gen", "-seed", &seed, "-n", &n])
        .output()
        .expect("running gotemplate");
    assert!(
        out.status.success(),
        "gotemplate gen failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// YAML syntax errors: syncret's parser (yaml-rust2) words them (and sometimes places them) differently from
/// libyaml, so where Go reports one in `fromYaml`'s `Error` entry, syncret must report one too, in any words.
const YAML_SYNTAX: &str = "error converting YAML to JSON: yaml: line ";

/// Documents yaml-rust2 refuses and libyaml reads: a tab after `key:` (`yaml_*_y25` in `e2e/gotemplate/fixed.go`).
const TAB_AFTER_COLON: &[&str] = &["yaml_json_y25", "yaml_yaml_y25", "yaml_print_y25"];

fn same_output(case: &str, go: &[u8], ours: &[u8]) -> bool {
    if go == ours {
        return true;
    }
    let (go, ours) = (String::from_utf8_lossy(go), String::from_utf8_lossy(ours));
    let syntax = |s: &str| s.replace('\n', " ").replace("  ", " ").contains(YAML_SYNTAX);
    (syntax(&go) && syntax(&ours)) || (TAB_AFTER_COLON.contains(&case) && syntax(&ours))
}

#[test]
fn renders_like_go_on_a_fixed_seed_sample() {
    let Some(doc) = go_results() else { return };
    let t = std::time::Instant::now();
    let compared = common::differences_with(&doc, &deviation, &same_output);
    println!("{} (in {:.1}s)", compared.summary(), t.elapsed().as_secs_f64());
    let (n, failures) = (compared.cases, compared.failures);
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ from Go:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Keys for the `WithKey` generators, made by OpenSSL (`fixtures/template/keys/README.md`), as dataset values.
const KEY_FIXTURES: &[(&str, &str)] = &[
    ("p384", "p384.pem"),
    ("p521", "p521.pem"),
    ("p256_pkcs8", "p256-pkcs8.pem"),
    ("rsa", "rsa2048.pem"),
    ("rsa_pkcs8", "rsa2048-pkcs8.pem"),
    ("ed25519", "ed25519.pem"),
    ("dsa", "dsa.pem"),
    ("other_ca_crt", "other-ca.crt"),
    ("other_ca_key", "other-ca.key"),
];

/// sprig's key and certificate generators, each run by Go and here. A template's output (JSON of `key`, `cert` and
/// the `ca` that signed it) is random; `gotemplate describe` tells what it is without the random parts.
const CERT_CASES: &[(&str, &str)] = &[
    ("key_rsa", r#"{{ dict "key" (genPrivateKey "rsa") | toJson }}"#),
    ("key_ecdsa", r#"{{ dict "key" (genPrivateKey "ecdsa") | toJson }}"#),
    ("key_ed25519", r#"{{ dict "key" (genPrivateKey "ed25519") | toJson }}"#),
    ("key_dsa", r#"{{ dict "key" (genPrivateKey "dsa") | toJson }}"#),
    ("key_unknown", r#"{{ genPrivateKey "RSA" }}"#),
    (
        "ca",
        r#"{{ $ca := genCA "Syncret Test CA" 365 }}{{ dict "key" $ca.Key "cert" $ca.Cert | toJson }}"#,
    ),
    (
        "self_signed",
        r#"{{ $c := genSelfSignedCert "host.example" (list "10.0.0.1" "2001:db8::1" "::ffff:10.1.2.3") (list "a.example" "*.b.example") 30 }}{{ dict "key" $c.Key "cert" $c.Cert | toJson }}"#,
    ),
    (
        "signed",
        r#"{{ $ca := genCA "ca" 365 }}{{ $c := genSignedCert "leaf" (list "127.0.0.1") (list "leaf.example") 90 $ca }}{{ dict "key" $c.Key "cert" $c.Cert "ca" $ca.Cert | toJson }}"#,
    ),
    (
        "p384_ca_signs_p521",
        r#"{{ $ca := genCAWithKey "EC CA" 10 .p384 }}{{ $c := genSignedCertWithKey "leaf" nil (list "x.example") 5 $ca .p521 }}{{ dict "key" $c.Key "cert" $c.Cert "ca" $ca.Cert | toJson }}"#,
    ),
    (
        "p521_ca_signs_rsa",
        r#"{{ $ca := genCAWithKey "P-521 CA" 10 .p521 }}{{ $c := genSignedCertWithKey "leaf" (list "10.9.8.7") nil 5 $ca .rsa }}{{ dict "key" $c.Key "cert" $c.Cert "ca" $ca.Cert | toJson }}"#,
    ),
    (
        "rsa_pkcs8_ca_signs_ed25519",
        r#"{{ $ca := genCAWithKey "R" 1 .rsa_pkcs8 }}{{ $c := genSignedCertWithKey "ed" nil nil 1 $ca .ed25519 }}{{ dict "key" $c.Key "cert" $c.Cert "ca" $ca.Cert | toJson }}"#,
    ),
    (
        "ecdsa_ca_signs_rsa",
        r#"{{ $ca := genCAWithKey "E" 1 (genPrivateKey "ecdsa") }}{{ $c := genSignedCert "r" nil (list "r.example") 2 $ca }}{{ dict "key" $c.Key "cert" $c.Cert "ca" $ca.Cert | toJson }}"#,
    ),
    (
        "ed25519_empty_subject_century",
        r#"{{ $c := genSelfSignedCertWithKey "" (list "192.168.0.1") (list "only.example") 36500 .ed25519 }}{{ dict "key" $c.Key "cert" $c.Cert | toJson }}"#,
    ),
    (
        "ed25519_ca_empty_subject",
        r#"{{ $c := genCAWithKey "" 3 (genPrivateKey "ed25519") }}{{ dict "key" $c.Key "cert" $c.Cert | toJson }}"#,
    ),
    (
        "utf8_subject_negative_days",
        r#"{{ $c := genSelfSignedCertWithKey "café & *.x" nil nil -1 .p256_pkcs8 }}{{ dict "key" $c.Key "cert" $c.Cert | toJson }}"#,
    ),
    (
        "printable_subject_zero_days",
        r#"{{ $c := genSelfSignedCertWithKey "Foo (Bar) 'baz' +,-./:=?" nil nil 0 .p384 }}{{ dict "key" $c.Key "cert" $c.Cert | toJson }}"#,
    ),
    (
        "days_wrap_like_go",
        r#"{{ $c := genSelfSignedCertWithKey "w" nil nil 200000 .p384 }}{{ dict "cert" $c.Cert | toJson }}"#,
    ),
    (
        "custom_ca",
        r#"{{ $ca := genCA "ca" 1 }}{{ $b := buildCustomCert (b64enc $ca.Cert) (b64enc $ca.Key) }}{{ $c := genSignedCert "x" nil nil 1 $b }}{{ dict "cert" $c.Cert "ca" $b.Cert "same" (eq $b.Cert $ca.Cert) | toJson }}"#,
    ),
    (
        "openssl_ca",
        r#"{{ $ca := buildCustomCert (b64enc .other_ca_crt) (b64enc .other_ca_key) }}{{ $c := genSignedCert "x" nil (list "x") 1 $ca }}{{ dict "key" $c.Key "cert" $c.Cert "ca" $ca.Cert | toJson }}"#,
    ),
    // The struct, as templates see it.
    (
        "struct",
        r#"{{ $ca := genCAWithKey "x" 1 .p384 }}{{ typeOf $ca }} {{ kindOf $ca }} {{ $ca | toJson | fromJson | keys | sortAlpha }} {{ $ca | toYaml | fromYaml | keys | sortAlpha }} {{ printf "%.5v|%+.5v|%#.5v|%T|%8.3s|%.4q" $ca $ca $ca $ca $ca $ca }} {{ eq $ca $ca }} {{ deepEqual $ca $ca }} {{ empty $ca }} {{ if $ca }}t{{ end }} {{ print $ca | hasPrefix "{-----BEGIN CERTIFICATE-----\n" }} {{ $ca.Key | hasPrefix "-----BEGIN EC PRIVATE KEY-----" }}"#,
    ),
    ("struct_no_field", r#"{{ $ca := genCA "x" 1 }}{{ $ca.Nope }}"#),
    ("struct_field_args", r#"{{ $ca := genCA "x" 1 }}{{ $ca.Cert 1 }}"#),
    ("struct_len", r#"{{ len (genCAWithKey "x" 1 .p384) }}"#),
    ("struct_index", r#"{{ index (genCAWithKey "x" 1 .p384) "Cert" }}"#),
    // Errors, in sprig's and Go's words.
    ("err_no_pem", r#"{{ genCAWithKey "x" 1 "junk" }}"#),
    ("err_dsa_signer", r#"{{ genCAWithKey "x" 1 .dsa }}"#),
    (
        "err_dsa_signee",
        r#"{{ genSignedCertWithKey "x" nil nil 1 (genCAWithKey "ca" 1 .p384) .dsa }}"#,
    ),
    (
        "err_key_mismatch",
        r#"{{ $a := genCAWithKey "a" 1 .p384 }}{{ $m := buildCustomCert (b64enc $a.Cert) (b64enc .p521) }}{{ genSignedCertWithKey "x" nil nil 1 $m .p384 }}"#,
    ),
    (
        "err_ip_type",
        r#"{{ genSelfSignedCertWithKey "x" (list 1) nil 1 .p384 }}"#,
    ),
    (
        "err_ip_nil",
        r#"{{ genSelfSignedCertWithKey "x" (list nil) nil 1 .p384 }}"#,
    ),
    (
        "err_ip_bad",
        r#"{{ genSelfSignedCertWithKey "x" (list "300.1.1.1") nil 1 .p384 }}"#,
    ),
    (
        "err_ip_leading_zero",
        r#"{{ genSelfSignedCertWithKey "x" (list "01.2.3.4") nil 1 .p384 }}"#,
    ),
    (
        "err_ip_zone",
        r#"{{ genSelfSignedCertWithKey "x" (list "fe80::1%eth0") nil 1 .p384 }}"#,
    ),
    (
        "err_dns_type",
        r#"{{ genSelfSignedCertWithKey "x" nil (list "a" 2) 1 .p384 }}"#,
    ),
    (
        "err_dns_ia5",
        r#"{{ genSelfSignedCertWithKey "x" nil (list "é.example") 1 .p384 }}"#,
    ),
    (
        "err_cn_utf8",
        r#"{{ genSelfSignedCertWithKey "\xff" nil nil 1 .p384 }}"#,
    ),
    ("err_ca_type", r#"{{ genSignedCert "x" nil nil 1 "notacert" }}"#),
    ("err_ca_nil", r#"{{ genSignedCert "x" nil nil 1 nil }}"#),
    ("err_ips_string", r#"{{ genSelfSignedCert "x" "1.2.3.4" nil 1 }}"#),
    (
        "err_ips_strings",
        r#"{{ genSelfSignedCertWithKey "x" (splitList "," "a") nil 1 .p384 }}"#,
    ),
    (
        "err_pkcs8_label_on_sec1",
        r#"{{ genCAWithKey "x" 1 (.p384 | replace "EC PRIVATE" "PRIVATE") }}"#,
    ),
    (
        "err_rsa_label_on_pkcs8",
        r#"{{ genCAWithKey "x" 1 (.rsa_pkcs8 | replace " PRIVATE" " RSA PRIVATE") }}"#,
    ),
    (
        "err_ec_label_on_pkcs1",
        r#"{{ genCAWithKey "x" 1 (.rsa | replace "RSA PRIVATE" "EC PRIVATE") }}"#,
    ),
    (
        "err_openssh_label",
        r#"{{ genCAWithKey "x" 1 (.rsa | replace "RSA PRIVATE" "OPENSSH PRIVATE") }}"#,
    ),
    ("err_cert_label", r#"{{ genCAWithKey "x" 1 .other_ca_crt }}"#),
    ("err_custom_b64", r#"{{ buildCustomCert "***" "" }}"#),
    (
        "err_custom_key_b64",
        r#"{{ buildCustomCert (b64enc .other_ca_crt) "***" }}"#,
    ),
    (
        "err_custom_not_pem",
        r#"{{ buildCustomCert (b64enc "hello") (b64enc .p384) }}"#,
    ),
    (
        "err_custom_bad_cert",
        r#"{{ buildCustomCert (b64enc "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n") (b64enc .p384) }}"#,
    ),
    (
        "err_custom_bad_key",
        r#"{{ buildCustomCert (b64enc .other_ca_crt) (b64enc "junk") }}"#,
    ),
];

/// Each generator case: an error must be Go's word for word; output must be equal, or, for generated material,
/// described alike by Go (`gotemplate describe`).
#[test]
fn generated_keys_and_certificates_look_like_gos() {
    use base64::Engine;
    use std::cell::RefCell;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/template/keys");
    let keys: serde_json::Map<String, serde_json::Value> = KEY_FIXTURES
        .iter()
        .map(|(k, f)| {
            (
                (*k).to_string(),
                b64(&std::fs::read(format!("{dir}/{f}")).unwrap()).into(),
            )
        })
        .collect();
    let cases: Vec<serde_json::Value> = CERT_CASES
        .iter()
        .map(|(name, tpl)| serde_json::json!({"name": name, "dataset": "keys", "template": tpl}))
        .collect();
    let doc = serde_json::json!({"template_name": "tls.crt", "datasets": {"keys": keys}, "cases": cases});
    let Some(bin) = common::gotemplate() else {
        return;
    };
    let t = std::time::Instant::now();
    let go = common::gotemplate_json(&bin, &["run"], &doc);
    let go_time = t.elapsed();

    // Outputs that differ are kept to be described; a generated one is JSON.
    let generated: RefCell<Vec<(String, String, String)>> = RefCell::new(Vec::new());
    let t = std::time::Instant::now();
    let compared = common::differences_with(&go, &|_, e| e.map(str::to_string), &|case, go, ours| {
        if go == ours {
            return true;
        }
        let (go, ours) = (String::from_utf8_lossy(go), String::from_utf8_lossy(ours));
        if !go.starts_with('{') || !ours.starts_with('{') {
            return false;
        }
        generated
            .borrow_mut()
            .push((case.to_string(), go.into_owned(), ours.into_owned()));
        true
    });
    let ours_time = t.elapsed();
    let (n, mut failures) = (compared.cases, compared.failures);
    let generated = generated.into_inner();
    let items: Vec<&str> = generated
        .iter()
        .map(|(_, go, _)| go.as_str())
        .chain(generated.iter().map(|(_, _, ours)| ours.as_str()))
        .collect();
    let described = common::gotemplate_json(&bin, &["describe"], &serde_json::json!({ "items": items }));
    let described: Vec<&str> = described
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let (go_d, ours_d) = described.split_at(generated.len());
    for (((case, _, _), want), got) in generated.iter().zip(go_d).zip(ours_d) {
        if want != got {
            failures.push(format!(
                "{case}: described differently\n--- Go:\n{want}--- syncret:\n{got}"
            ));
        }
    }
    println!(
        "{n} generator cases ({} described) compared with Go: Go {:.1}s, syncret {:.1}s",
        generated.len(),
        go_time.as_secs_f64(),
        ours_time.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ from Go:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
