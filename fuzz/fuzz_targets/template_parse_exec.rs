//! Parse and execute arbitrary template source over a fixed data map: must never panic, overflow the stack or hang.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use syncret_template::{Delims, Limits, Template, Value};

fn data() -> Value {
    let mut m: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    m.insert("user".into(), b"admin".to_vec());
    m.insert("password".into(), b"s3cr3t!&<>".to_vec());
    m.insert("db-host".into(), b"db.example.com".to_vec());
    m.insert("port".into(), b"5432".to_vec());
    m.insert("json".into(), br#"{"a":[1,2,{"b":null}],"c":"d","e":1.5}"#.to_vec());
    m.insert("yaml".into(), b"a: 1\nb: [x, y]\nc: {d: e}\n".to_vec());
    m.insert("b64".into(), b"aGVsbG8=".to_vec());
    m.insert("bin".into(), vec![0xff, 0x00, 0x80, 0xfe]);
    m.insert("pem".into(), b"-----BEGIN X-----\nQUJD\n-----END X-----\n".to_vec());
    Value::from_data(&m)
}

fuzz_target!(|input: &[u8]| {
    // The first byte picks the delimiters, so custom ones get exercised too.
    let Some((&sel, rest)) = input.split_first() else { return };
    let Ok(src) = std::str::from_utf8(rest) else { return };
    let delims = if sel % 8 == 0 { Delims { left: "[[".into(), right: "]]".into() } } else { Delims::default() };
    // Small limits keep each execution fast; they are what a hostile template runs into anyway.
    let limits = Limits { max_output: 1 << 16, max_value_len: 1 << 16, max_steps: 20_000, max_template_depth: 20 };
    if let Ok(t) = Template::parse("fuzz", src, &delims) {
        let _ = t.with_limits(limits).execute(&data());
    }
});
