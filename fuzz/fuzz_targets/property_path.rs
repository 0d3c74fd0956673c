//! `remoteRef.property` (gjson paths) and `dataFrom.extract` over arbitrary values and paths: never panic, hang or
//! blow up; a property error names the key and property, never the value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncret_providers::property::{select, to_map};
use syncret_providers::value::{RemoteValue, SecretValue};

fuzz_target!(|input: &[u8]| {
    // `property \0 value`: the first NUL splits the path from the secret value.
    let (path, value) = match input.iter().position(|b| *b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&b"a.b"[..], input),
    };
    let Ok(path) = std::str::from_utf8(path) else { return };
    let value = SecretValue::from(value.to_vec());
    let check = |r: Result<SecretValue, syncret_providers::error::ProviderError>| {
        if let Err(e) = r {
            // Errors name the key and the property (which the input chooses); with those taken out, no value.
            // The fixed wording is taken out too: a value may spell part of it.
            let mut msg = e.to_string().replace(&format!("{path:?}"), "");
            for fixed in [
                "requested but the value is not JSON",
                "not found in secret",
                "secret \"key\"",
                "property",
            ] {
                msg = msg.replace(fixed, "");
            }
            let v = value.as_bytes();
            if v.len() >= 12 {
                assert!(
                    !msg.as_bytes().windows(v.len()).any(|w| w == v),
                    "value in error: {msg}"
                );
            }
        }
    };
    check(select("key", &value, Some(path)));
    check(select("key", &value, None).map(|v| {
        assert_eq!(v.as_bytes(), value.as_bytes());
        v
    }));
    let _ = to_map("key", &value);
    let remote = RemoteValue::Bytes(value.clone());
    check(remote.select("key", Some(path)));
    let _ = remote.clone().into_map("key", Some(path));
    // The same value as a provider's key/value map (Kubernetes, fake): selection by member, else by path.
    if let Ok(map) = to_map("key", &value) {
        let m = RemoteValue::Map(map);
        check(m.select("key", Some(path)));
        let _ = m.into_map("key", Some(path));
    }
});
