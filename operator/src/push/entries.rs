//! What a PushSecret pushes to one store, as ESO's `handlePushSecretDataForStore` decides it:
//!
//! - `dataTo[]` entries that target the store (by `storeRef.name` + kind, or `storeRef.labelSelector` + kind) are
//!   expanded: keys converted (`conversionStrategy: ReverseUnicode`), filtered by `match.regexp`, then either
//!   bundled into one JSON object at `remoteKey` (bundle mode) or pushed one per key under the key name after
//!   `rewrite[]` (per-key mode);
//! - explicit `data[]` entries go to every store and win over `dataTo` entries for the same source key;
//! - no two entries may write the same `(remoteKey, property)`;
//! - each entry's value is its source key's bytes, or with an empty `secretKey` the whole Secret as a JSON object
//!   of strings (ESO's providers marshal `secret.Data` that way).
//!
//! Errors name keys and fields, never values.
use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Selector, SelectorExt};
use regex::Regex;
use syncret_crds::pushsecret::{
    PushSecretConversionStrategy, PushSecretData, PushSecretDataTo, PushSecretMatch, PushSecretRemoteRef,
    PushSecretSpec, PushSecretStoreRef,
};
use syncret_crds::secretstore::StoreKind;
use syncret_providers::{PushRef, SecretValue};

/// Renders a `rewrite[].transform` template for one key (`.value` = the key); supplied by the template engine.
pub type TransformFn<'a> = &'a dyn Fn(&str, &str) -> Result<String, String>;

/// The store entries are computed for.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub kind: StoreKind,
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// One value to push.
#[derive(Clone, Debug)]
pub struct Entry {
    /// What `status.syncedPushSecrets[store][statusRef]` records.
    pub data: PushSecretData,
    pub to: PushRef,
    pub value: SecretValue,
}

/// `syncedPushSecrets` key of a store: `SecretStore/name` or `ClusterSecretStore/name` (ESO's format).
pub fn store_key(kind: StoreKind, name: &str) -> String {
    format!("{}/{name}", kind.as_str())
}

/// The store kind and name of a `syncedPushSecrets` key.
pub fn parse_store_key(key: &str) -> Option<(StoreKind, &str)> {
    let (kind, name) = key.split_once('/')?;
    let kind = match kind {
        "SecretStore" => StoreKind::SecretStore,
        "ClusterSecretStore" => StoreKind::ClusterSecretStore,
        _ => return None,
    };
    (!name.is_empty()).then_some((kind, name))
}

/// The key of one entry inside a store's `syncedPushSecrets` map: `remoteKey`, or `remoteKey/property`.
pub fn status_ref(d: &PushSecretData) -> String {
    let r = &d.match_.remote_ref;
    if r.property.is_empty() {
        r.remote_key.clone()
    } else {
        format!("{}/{}", r.remote_key, r.property)
    }
}

/// Where the provider writes (or deletes) an entry.
pub fn push_ref(d: &PushSecretData) -> PushRef {
    let r = &d.match_.remote_ref;
    PushRef {
        remote_key: r.remote_key.clone(),
        property: Some(r.property.clone()).filter(|p| !p.is_empty()),
        metadata: d.metadata.as_ref().filter(|m| !m.is_null()).map(|m| m.to_string()),
        secret_key: Some(d.match_.secret_key.clone()).filter(|k| !k.is_empty()),
    }
}

fn unicode_escape() -> Option<Regex> {
    Regex::new("_U([0-9a-fA-F]{4,5})_").ok()
}

/// `conversionStrategy` applied to one key: `ReverseUnicode` turns `_UXXXX_` back into the character.
pub fn reverse_key(strategy: PushSecretConversionStrategy, key: &str) -> String {
    match strategy {
        PushSecretConversionStrategy::None => key.to_string(),
        PushSecretConversionStrategy::ReverseUnicode => match unicode_escape() {
            Some(re) => re
                .replace_all(key, |c: &regex::Captures<'_>| {
                    let code = u32::from_str_radix(&c[1], 16).unwrap_or(0xFFFD);
                    char::from_u32(code).unwrap_or('\u{FFFD}').to_string()
                })
                .into_owned(),
            None => key.to_string(),
        },
    }
}

fn reverse_keys(
    strategy: PushSecretConversionStrategy,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in data {
        let key = reverse_key(strategy, k);
        if out.insert(key.clone(), v.clone()).is_some() {
            return Err(format!("secret name collision during conversion: {key}"));
        }
    }
    Ok(out)
}

fn compile(re: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|_| format!("invalid regexp {re:?}"))
}

fn selector(s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> Result<Selector, String> {
    Selector::try_from(s.clone()).map_err(|e| format!("invalid labelSelector: {e}"))
}

/// ESO's `validateDataToStoreRefs`: every `dataTo` names a store, and a named one is in `secretStoreRefs`.
pub fn check_store_refs(spec: &PushSecretSpec) -> Result<(), String> {
    for (i, d) in spec.data_to.iter().enumerate() {
        let Some(r) = &d.store_ref else {
            return Err(format!("dataTo[{i}]: storeRef is required"));
        };
        if r.name.is_empty() && r.label_selector.is_none() {
            return Err(format!("dataTo[{i}]: storeRef must have name or labelSelector"));
        }
        let listed = spec
            .secret_store_refs
            .iter()
            .any(|s| !s.name.is_empty() && s.name == r.name && s.kind == r.kind);
        if !r.name.is_empty() && !listed {
            return Err(format!(
                "dataTo[{i}]: storeRef {:?} not found in secretStoreRefs",
                r.name
            ));
        }
    }
    Ok(())
}

fn targets(r: &PushSecretStoreRef, t: &Target<'_>) -> Result<bool, String> {
    if r.kind != t.kind {
        return Ok(false);
    }
    if !r.name.is_empty() {
        return Ok(r.name == t.name);
    }
    match &r.label_selector {
        Some(s) => Ok(selector(s)?.matches(t.labels)),
        None => Ok(false),
    }
}

/// ESO's `validateDataToMatchesResolvedStores`: a `dataTo` selecting stores by label must select one of them.
pub fn check_data_to_selects(spec: &PushSecretSpec, stores: &[Target<'_>]) -> Result<(), String> {
    for (i, d) in spec.data_to.iter().enumerate() {
        let Some(r) = &d.store_ref else { continue };
        if !r.name.is_empty() || r.label_selector.is_none() {
            continue;
        }
        let mut any = false;
        for t in stores {
            any |= targets(r, t).map_err(|e| format!("dataTo[{i}]: {e}"))?;
        }
        if !any {
            return Err(format!(
                "dataTo[{i}]: labelSelector does not match any store in secretStoreRefs"
            ));
        }
    }
    Ok(())
}

/// The `dataTo` entries expanded for one store, and the bundles' own data (only the matched keys).
#[derive(Default)]
struct Expanded {
    entries: Vec<PushSecretData>,
    bundles: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

fn rewrite_key(
    i: usize,
    d: &PushSecretDataTo,
    key: &str,
    transform: TransformFn<'_>,
    compiled: &[Option<Regex>],
) -> Result<String, String> {
    let mut k = key.to_string();
    for (j, step) in d.rewrite.iter().enumerate() {
        if let (Some(re), Some(r)) = (compiled.get(j).and_then(Option::as_ref), &step.regexp) {
            k = re.replace_all(&k, r.target.as_str()).into_owned();
        } else if let Some(t) = &step.transform {
            k = transform(&t.template, &k).map_err(|e| format!("dataTo[{i}]: rewrite[{j}] on key {k:?}: {e}"))?;
        }
    }
    Ok(k)
}

fn expand(
    source: &BTreeMap<String, Vec<u8>>,
    list: &[(usize, &PushSecretDataTo)],
    transform: TransformFn<'_>,
) -> Result<Expanded, String> {
    let mut out = Expanded::default();
    // remote key → where it came from, across every dataTo of this store.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (i, d) in list.iter().copied() {
        if !d.remote_key.is_empty() && !d.rewrite.is_empty() {
            return Err(format!(
                "dataTo[{i}]: remoteKey and rewrite are mutually exclusive: rewrite is only supported in per-key mode (without remoteKey)"
            ));
        }
        let converted = reverse_keys(d.conversion_strategy, source).map_err(|e| format!("dataTo[{i}]: {e}"))?;
        let original: BTreeMap<String, String> = source
            .keys()
            .map(|k| (reverse_key(d.conversion_strategy, k), k.clone()))
            .collect();
        let pattern = d.match_.as_ref().map(|m| m.regexp.as_str()).filter(|r| !r.is_empty());
        let re = pattern
            .map(compile)
            .transpose()
            .map_err(|e| format!("dataTo[{i}]: {e}"))?;
        let matched: BTreeMap<String, Vec<u8>> = converted
            .into_iter()
            .filter(|(k, _)| re.as_ref().is_none_or(|re| re.is_match(k)))
            .collect();
        if matched.is_empty() {
            continue;
        }
        let mut key_map: Vec<(String, String)> = Vec::new();
        if !d.remote_key.is_empty() {
            key_map.push(("(bundle)".into(), d.remote_key.clone()));
            let entry = PushSecretData {
                match_: PushSecretMatch {
                    secret_key: String::new(),
                    remote_ref: PushSecretRemoteRef {
                        remote_key: d.remote_key.clone(),
                        property: String::new(),
                    },
                },
                metadata: d.metadata.clone(),
                conversion_strategy: PushSecretConversionStrategy::None,
            };
            out.bundles.insert(status_ref(&entry), matched);
            out.entries.push(entry);
        } else {
            let compiled: Vec<Option<Regex>> = d
                .rewrite
                .iter()
                .enumerate()
                .map(|(j, r)| {
                    r.regexp
                        .as_ref()
                        .map(|re| compile(&re.source).map_err(|e| format!("dataTo[{i}]: rewrite[{j}]: {e}")))
                        .transpose()
                })
                .collect::<Result<_, _>>()?;
            for key in matched.keys() {
                let remote = rewrite_key(i, d, key, transform, &compiled)?;
                if remote.is_empty() {
                    return Err(format!("dataTo[{i}]: empty remote key produced for source key {key:?}"));
                }
                key_map.push((key.clone(), remote.clone()));
                out.entries.push(PushSecretData {
                    match_: PushSecretMatch {
                        secret_key: original.get(key).cloned().unwrap_or_else(|| key.clone()),
                        remote_ref: PushSecretRemoteRef {
                            remote_key: remote,
                            property: String::new(),
                        },
                    },
                    metadata: d.metadata.clone(),
                    conversion_strategy: PushSecretConversionStrategy::None,
                });
            }
        }
        for (source_key, remote) in key_map {
            if let Some(existing) = seen.get(&remote) {
                return Err(format!(
                    "dataTo[{i}]: duplicate remote key {remote:?} from source key {source_key:?} (conflicts with {existing})"
                ));
            }
            seen.insert(remote, format!("dataTo[{i}]:{source_key}"));
        }
    }
    Ok(out)
}

/// The raw source key an explicit `data[]` entry reads (its `secretKey` is the converted name).
fn original_key(d: &PushSecretData, source: &BTreeMap<String, Vec<u8>>) -> String {
    let key = &d.match_.secret_key;
    if d.conversion_strategy == PushSecretConversionStrategy::None {
        return key.clone();
    }
    source
        .keys()
        .find(|k| reverse_key(d.conversion_strategy, k) == *key)
        .cloned()
        .unwrap_or_else(|| key.clone())
}

/// Everything `spec` pushes to `target` from `source` (the Secret's data after `spec.template`).
pub fn entries(
    spec: &PushSecretSpec,
    source: &BTreeMap<String, Vec<u8>>,
    target: &Target<'_>,
    transform: TransformFn<'_>,
) -> Result<Vec<Entry>, String> {
    let mut for_store: Vec<(usize, &PushSecretDataTo)> = Vec::new();
    for (i, d) in spec.data_to.iter().enumerate() {
        let Some(r) = &d.store_ref else {
            return Err(format!("dataTo[{i}]: storeRef is required"));
        };
        if targets(r, target).map_err(|e| format!("dataTo[{i}]: {e}"))? {
            for_store.push((i, d));
        }
    }
    let expanded = expand(source, &for_store, transform)?;
    let explicit: BTreeSet<String> = spec.data.iter().map(|d| original_key(d, source)).collect();
    let mut all: Vec<PushSecretData> = expanded
        .entries
        .into_iter()
        .filter(|d| !explicit.contains(&d.match_.secret_key))
        .collect();
    all.extend(spec.data.iter().cloned());

    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    for d in &all {
        let r = &d.match_.remote_ref;
        let at = (r.remote_key.clone(), r.property.clone());
        if let Some(other) = seen.get(&at) {
            return Err(if r.property.is_empty() {
                format!(
                    "duplicate remote key {:?}: source keys {other:?} and {:?} both map to the same destination",
                    r.remote_key, d.match_.secret_key
                )
            } else {
                format!(
                    "duplicate remote key {:?} with property {:?}: source keys {other:?} and {:?} both map to the same destination",
                    r.remote_key, r.property, d.match_.secret_key
                )
            });
        }
        seen.insert(at, d.match_.secret_key.clone());
    }

    let mut out = Vec::with_capacity(all.len());
    for d in all {
        let sref = status_ref(&d);
        let from = expanded.bundles.get(&sref).unwrap_or(source);
        let data = reverse_keys(d.conversion_strategy, from)
            .map_err(|e| format!("could not apply conversion strategy to keys: {e}"))?;
        let key = &d.match_.secret_key;
        let value = if key.is_empty() {
            let m: BTreeMap<String, SecretValue> = data.into_iter().map(|(k, v)| (k, SecretValue::from(v))).collect();
            syncret_providers::property::map_to_json(&m)
        } else {
            match data.get(key) {
                Some(v) => SecretValue::from(v.clone()),
                None => return Err(format!("secret key {key:?} does not exist")),
            }
        };
        out.push(Entry {
            to: push_ref(&d),
            data: d,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> PushSecretSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn source(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn no_transform(_: &str, k: &str) -> Result<String, String> {
        Ok(k.to_uppercase())
    }

    fn run(
        s: &PushSecretSpec,
        src: &BTreeMap<String, Vec<u8>>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, String> {
        let t = Target {
            kind: StoreKind::SecretStore,
            name: "s",
            labels,
        };
        Ok(entries(s, src, &t, &no_transform)?
            .into_iter()
            .map(|e| {
                (
                    status_ref(&e.data),
                    String::from_utf8_lossy(e.value.as_bytes()).into_owned(),
                )
            })
            .collect())
    }

    #[test]
    fn data_keys_properties_and_whole_secret() {
        let s = spec(
            r#"
secretStoreRefs: [{name: s}]
selector: {secret: {name: src}}
data:
- match: {secretKey: user, remoteRef: {remoteKey: db, property: username}}
  metadata: {apiVersion: kubernetes.external-secrets.io/v1alpha1, kind: PushSecretMetadata}
- match: {remoteRef: {remoteKey: all}}
- match: {secretKey: "a/b", remoteRef: {remoteKey: slash}}
  conversionStrategy: ReverseUnicode
"#,
        );
        let src = source(&[("user", "admin"), ("pass", "p<&>"), ("a_U002f_b", "x")]);
        let got = run(&s, &src, &BTreeMap::new()).unwrap();
        assert_eq!(
            got,
            vec![
                ("db/username".to_string(), "admin".to_string()),
                ("all".into(), r#"{"a_U002f_b":"x","pass":"p<&>","user":"admin"}"#.into()),
                ("slash".into(), "x".into()),
            ]
        );
        let t = Target {
            kind: StoreKind::SecretStore,
            name: "s",
            labels: &BTreeMap::new(),
        };
        let e = entries(&s, &src, &t, &no_transform).unwrap();
        assert_eq!(e[0].to.property.as_deref(), Some("username"));
        assert!(e[0].to.metadata.as_deref().unwrap().contains("PushSecretMetadata"));
        assert_eq!(e[1].to.property, None);
    }

    #[test]
    fn missing_key_is_named_without_values() {
        let s = spec(
            "secretStoreRefs: [{name: s}]\nselector: {secret: {name: src}}\ndata:\n- match: {secretKey: nope, remoteRef: {remoteKey: r}}\n",
        );
        let err = run(&s, &source(&[("k", "s3cr3t")]), &BTreeMap::new()).unwrap_err();
        assert_eq!(err, r#"secret key "nope" does not exist"#);
    }

    #[test]
    fn data_to_bundles_and_per_key_rewrites() {
        let s = spec(
            r#"
secretStoreRefs: [{name: s}, {labelSelector: {matchLabels: {tier: x}}}]
selector: {secret: {name: src}}
dataTo:
- storeRef: {name: s}
  remoteKey: bundle
  match: {regexp: "^db-"}
- storeRef: {labelSelector: {matchLabels: {tier: x}}}
  match: {regexp: "^app-"}
  rewrite:
  - regexp: {source: "^app-(.*)$", target: "apps/$1"}
  - transform: {template: "{{ .value | upper }}"}
- storeRef: {name: other}
  remoteKey: elsewhere
data:
- match: {secretKey: app-b, remoteRef: {remoteKey: explicit-b}}
"#,
        );
        let src = source(&[
            ("db-user", "u"),
            ("db-pass", "p"),
            ("app-a", "1"),
            ("app-b", "2"),
            ("z", "9"),
        ]);
        let labels: BTreeMap<String, String> = [("tier".to_string(), "x".to_string())].into();
        let got = run(&s, &src, &labels).unwrap();
        assert_eq!(
            got,
            vec![
                ("bundle".to_string(), r#"{"db-pass":"p","db-user":"u"}"#.to_string()),
                ("APPS/A".into(), "1".into()),
                ("explicit-b".into(), "2".into()),
            ]
        );
        // Without the label the selector-targeted dataTo does not apply to this store.
        let got = run(&s, &src, &BTreeMap::new()).unwrap();
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn duplicates_and_bad_refs_are_refused() {
        let dup = spec(
            r#"
secretStoreRefs: [{name: s}]
selector: {secret: {name: src}}
data:
- match: {secretKey: a, remoteRef: {remoteKey: r, property: p}}
- match: {secretKey: b, remoteRef: {remoteKey: r, property: p}}
"#,
        );
        let e = run(&dup, &source(&[("a", "1"), ("b", "2")]), &BTreeMap::new()).unwrap_err();
        assert!(e.contains(r#"duplicate remote key "r" with property "p""#), "{e}");
        let collide = spec(
            r#"
secretStoreRefs: [{name: s}]
selector: {secret: {name: src}}
dataTo:
- storeRef: {name: s}
  rewrite: [{regexp: {source: ".*", target: "same"}}]
"#,
        );
        let e = run(&collide, &source(&[("a", "1"), ("b", "2")]), &BTreeMap::new()).unwrap_err();
        assert!(e.contains(r#"duplicate remote key "same""#), "{e}");
        let unlisted = spec(
            "secretStoreRefs: [{name: s}]\nselector: {secret: {name: src}}\ndataTo:\n- {storeRef: {name: t}, remoteKey: x}\n",
        );
        assert_eq!(
            check_store_refs(&unlisted).unwrap_err(),
            r#"dataTo[0]: storeRef "t" not found in secretStoreRefs"#
        );
        let unmatched = spec(
            "secretStoreRefs: [{name: s}]\nselector: {secret: {name: src}}\ndataTo:\n- {storeRef: {labelSelector: {matchLabels: {a: b}}}, remoteKey: x}\n",
        );
        let labels = BTreeMap::new();
        let t = [Target {
            kind: StoreKind::SecretStore,
            name: "s",
            labels: &labels,
        }];
        assert!(
            check_data_to_selects(&unmatched, &t)
                .unwrap_err()
                .contains("does not match any store")
        );
    }

    #[test]
    fn reverse_unicode_like_eso() {
        let r = PushSecretConversionStrategy::ReverseUnicode;
        assert_eq!(reverse_key(r, "a_U002f_b_U1f600_"), "a/b😀");
        assert_eq!(reverse_key(r, "_Ud800_"), "\u{FFFD}");
        assert_eq!(
            reverse_key(PushSecretConversionStrategy::None, "a_U002f_b"),
            "a_U002f_b"
        );
        let e = reverse_keys(r, &source(&[("a/b", "1"), ("a_U002f_b", "2")])).unwrap_err();
        assert!(e.contains("collision"));
    }

    #[test]
    fn store_keys_round_trip() {
        assert_eq!(store_key(StoreKind::ClusterSecretStore, "x"), "ClusterSecretStore/x");
        assert_eq!(parse_store_key("SecretStore/a"), Some((StoreKind::SecretStore, "a")));
        assert_eq!(parse_store_key("Other/a"), None);
    }
}
