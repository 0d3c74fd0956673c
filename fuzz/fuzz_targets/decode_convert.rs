//! `decodingStrategy`, `nullBytePolicy` and key `conversionStrategy` over arbitrary bytes: never panic, Auto never
//! fails, Base64 round-trips, converted keys only hold allowed characters, and an error has a fixed form (never carries the input).
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use syncret::sync::decode::{Decoding, check_null_bytes, decode};
use syncret::sync::keys::{Conversion, convert, validate_key};

fuzz_target!(|input: &[u8]| {
    for strategy in [Decoding::None, Decoding::Base64, Decoding::Base64Url, Decoding::Auto] {
        match decode(strategy, input) {
            Ok(out) => {
                if strategy == Decoding::None {
                    assert_eq!(out, input);
                }
            }
            Err(e) => {
                assert!(
                    strategy != Decoding::Auto && strategy != Decoding::None,
                    "{strategy:?} failed"
                );
                // The message says where, never what: one of three fixed forms.
                let r = e.reason.as_str();
                let fixed = r == "illegal base64 data: invalid length"
                    || r == "illegal base64 data: invalid padding"
                    || r.strip_prefix("illegal base64 data at input byte ")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                assert!(fixed, "unexpected decode error: {r}");
            }
        }
    }
    // Round trips: what we encode (Go's StdEncoding/URLEncoding) decodes back, also with line breaks.
    let std = base64::engine::general_purpose::STANDARD.encode(input);
    assert_eq!(decode(Decoding::Base64, std.as_bytes()).as_deref(), Ok(input));
    assert_eq!(decode(Decoding::Auto, std.as_bytes()).as_deref(), Ok(input));
    let url = base64::engine::general_purpose::URL_SAFE.encode(input);
    assert_eq!(decode(Decoding::Base64Url, url.as_bytes()).as_deref(), Ok(input));
    let wrapped: Vec<u8> = std
        .as_bytes()
        .chunks(76)
        .flat_map(|c| c.iter().copied().chain(*b"\r\n"))
        .collect();
    assert_eq!(decode(Decoding::Base64, &wrapped).as_deref(), Ok(input));

    let null = check_null_bytes("k", input);
    assert_eq!(null.is_err(), input.contains(&0));

    // Keys: conversion leaves only allowed characters, so the key check passes unless the key is too long.
    let key = String::from_utf8_lossy(input);
    for strategy in [Conversion::Default, Conversion::Unicode] {
        let converted = convert(strategy, &key);
        match validate_key(&converted) {
            Ok(()) => {}
            Err(e) => assert!(converted.len() > 253, "{strategy:?} produced an invalid key: {e}"),
        }
        if strategy == Conversion::Default {
            assert_eq!(converted.chars().count(), key.chars().count());
        }
    }
});
