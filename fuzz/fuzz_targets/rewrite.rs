//! `dataFrom[].rewrite` steps (regexp with a hostile pattern, transform templates, merge) over arbitrary key/value
//! maps: never panic, hang or blow up; errors never carry a value. Regexes are compiled as the operator compiles
//! them (bounded size), templates run with small limits.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use syncret::sync::rewrite::{Merge, Rewrite, apply};
use syncret_template::{Delims, Limits, Template, Value};

fn step(u: &mut Unstructured<'_>) -> Result<Option<Rewrite>> {
    Ok(match u.int_in_range(0..=2u8)? {
        0 => {
            let source: &str = u.arbitrary()?;
            let target: &str = u.arbitrary()?;
            regex::RegexBuilder::new(source)
                .size_limit(1 << 20)
                .dfa_size_limit(1 << 20)
                .build()
                .ok()
                .map(|source| Rewrite::Regexp {
                    source,
                    target: target.to_string(),
                })
        }
        1 => Some(Rewrite::Transform {
            template: u.arbitrary::<&str>()?.to_string(),
        }),
        _ => Some(Rewrite::Merge(Merge {
            into: u.arbitrary::<&str>()?.to_string(),
            priority: u
                .arbitrary::<Vec<&str>>()?
                .into_iter()
                .take(4)
                .map(str::to_string)
                .collect(),
            ignore_missing_priority: u.arbitrary()?,
            ignore_conflicts: u.arbitrary()?,
            json: u.arbitrary()?,
        })),
    })
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let mut steps = Vec::new();
    for _ in 0..u.int_in_range(1..=3u8)? {
        if let Some(s) = step(&mut u)? {
            steps.push(s);
        }
    }
    let mut map: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=6u8)? {
        let k: &str = u.arbitrary()?;
        let v: &[u8] = u.arbitrary()?;
        map.insert(k.to_string(), v.to_vec());
    }
    // Values that must never show up in an error message (long enough not to occur by chance).
    map.insert("canary".into(), b"{\"zz\":\"CANARY-VALUE-5f1d\"}".to_vec());
    map.insert("plain".into(), b"CANARY-PLAIN-9a7c".to_vec());
    let limits = Limits {
        max_output: 1 << 14,
        max_value_len: 1 << 14,
        max_steps: 5_000,
        max_template_depth: 10,
    };
    let transform = |tpl: &str, k: &str| -> std::result::Result<String, String> {
        let data: BTreeMap<String, Vec<u8>> = [("value".to_string(), k.as_bytes().to_vec())].into();
        Template::parse("transform", tpl, &Delims::default())
            .and_then(|t| t.with_limits(limits).execute(&Value::from_data(&data)))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.message)
    };
    let merges_only = steps.iter().all(|s| matches!(s, Rewrite::Merge(_)));
    let named = data.windows(6).any(|w| w == b"CANARY");
    if let Err(e) = apply(&steps, map, &transform) {
        // Errors name keys (which the input chooses); values (the canaries) never.
        if merges_only && !named {
            assert!(!e.contains("CANARY-"), "value in error: {e}");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
