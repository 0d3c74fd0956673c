//! What an ExternalSecret reads, and how the answers become its data map, in ESO's order:
//! `dataFrom` entries merged in order (later wins), then `data[]` on top. A missing remote secret is skipped
//! (with a `MissingProviderSecret` event) unless `deletionPolicy: Retain`, where it is an error.
//!
//! [`plan`] and [`assemble`] are pure; the controller performs the reads in between.
use std::collections::BTreeMap;

use regex::Regex;
use syncret_crds::externalsecret::{
    ExternalSecret, ExternalSecretConversionStrategy, ExternalSecretDataRemoteRef, ExternalSecretDecodingStrategy,
    ExternalSecretDeletionPolicy, ExternalSecretMetadataPolicy, ExternalSecretNullBytePolicy,
    ExternalSecretRewriteMergeConflictPolicy, ExternalSecretRewriteMergePriorityPolicy,
    ExternalSecretRewriteMergeStrategy, GeneratorRef, SecretStoreRef,
};
use syncret_crds::secretstore::StoreKind;
use syncret_providers::{FindQuery, ProviderError, RemoteKey, RemoteValue, SecretValue};

use super::decode::{self, Decoding};
use super::keys::{self, Conversion};
use super::rewrite::{self, Merge, Rewrite, TransformFn};

/// Which store a read goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreId {
    pub kind: StoreKind,
    pub name: String,
}

impl StoreId {
    pub fn from_ref(r: &SecretStoreRef) -> Self {
        Self {
            kind: r.kind(),
            name: r.name.clone(),
        }
    }
}

impl std::fmt::Display for StoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.kind.as_str(), self.name)
    }
}

/// One `dataFrom` or `data` entry, ready to run.
#[derive(Clone, Debug)]
pub enum Item {
    Extract {
        index: usize,
        store: StoreId,
        key: RemoteKey,
        property: Option<String>,
        post: Post,
    },
    Find {
        index: usize,
        store: StoreId,
        query: FindQuery,
        post: Post,
    },
    Data {
        index: usize,
        store: StoreId,
        secret_key: String,
        key: RemoteKey,
        property: Option<String>,
        decoding: Decoding,
        nul_fail: bool,
    },
    /// `dataFrom[index].sourceRef.generatorRef`: new values from a generator, then `rewrite` (ESO applies no
    /// conversion or decoding to them).
    Generate {
        index: usize,
        generator: GeneratorRef,
        rewrite: Vec<Rewrite>,
    },
}

/// What happens to a `dataFrom` map after it is read.
#[derive(Clone, Debug)]
pub struct Post {
    pub rewrite: Vec<Rewrite>,
    pub conversion: Conversion,
    pub decoding: Decoding,
    pub nul_fail: bool,
}

/// The reads of one ExternalSecret.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
}

impl Plan {
    /// Every store the plan reads from.
    pub fn stores(&self) -> Vec<StoreId> {
        let mut s: Vec<StoreId> = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Extract { store, .. } | Item::Find { store, .. } | Item::Data { store, .. } => {
                    Some(store.clone())
                }
                Item::Generate { .. } => None,
            })
            .collect();
        s.sort();
        s.dedup();
        s
    }

    /// The generators the plan runs: (`dataFrom` index, reference).
    pub fn generators(&self) -> Vec<(usize, &GeneratorRef)> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Generate { index, generator, .. } => Some((*index, generator)),
                _ => None,
            })
            .collect()
    }

    /// For a store whose provider takes `remoteRef.property` as part of the request (the webhook renders it into
    /// its templates): the property moves into the read's key, so it reaches the provider (and reads that differ
    /// only by property stay distinct), and is not applied to the answer.
    pub fn pass_property(&mut self, to: &StoreId) {
        for item in &mut self.items {
            if let Item::Extract {
                store, key, property, ..
            }
            | Item::Data {
                store, key, property, ..
            } = item
                && store == to
            {
                key.property = property.take();
            }
        }
    }

    /// The distinct single-key reads per store (what `data[]` and `extract` need), de-duplicated.
    pub fn gets(&self) -> BTreeMap<StoreId, Vec<RemoteKey>> {
        let mut out: BTreeMap<StoreId, Vec<RemoteKey>> = BTreeMap::new();
        for i in &self.items {
            if let Item::Extract { store, key, .. } | Item::Data { store, key, .. } = i {
                let keys = out.entry(store.clone()).or_default();
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        out
    }
}

fn decoding(d: ExternalSecretDecodingStrategy) -> Decoding {
    match d {
        ExternalSecretDecodingStrategy::None => Decoding::None,
        ExternalSecretDecodingStrategy::Base64 => Decoding::Base64,
        ExternalSecretDecodingStrategy::Base64Url => Decoding::Base64Url,
        ExternalSecretDecodingStrategy::Auto => Decoding::Auto,
    }
}

fn conversion(c: ExternalSecretConversionStrategy) -> Conversion {
    match c {
        ExternalSecretConversionStrategy::Default => Conversion::Default,
        ExternalSecretConversionStrategy::Unicode => Conversion::Unicode,
    }
}

fn remote_key(r: &ExternalSecretDataRemoteRef) -> RemoteKey {
    RemoteKey {
        key: r.key.clone(),
        version: Some(r.version.clone()).filter(|v| !v.is_empty()),
        fetch_metadata: r.metadata_policy() == ExternalSecretMetadataPolicy::Fetch,
        property: None,
    }
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

/// A spec problem found while planning, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for PlanError {}

fn err(field: String, message: impl Into<String>) -> PlanError {
    PlanError {
        field,
        message: message.into(),
    }
}

fn compile(field: String, re: &str) -> Result<Regex, PlanError> {
    // Bounded so a hostile pattern cannot take memory or time (the regex crate never backtracks).
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| err(field, format!("invalid regexp: {e}")))
}

/// Turns the spec into reads. Errors name the field (spec validation catches most earlier).
pub fn plan(es: &ExternalSecret) -> Result<Plan, PlanError> {
    let spec = &es.spec;
    let default_store = spec
        .secret_store_ref
        .as_ref()
        .filter(|r| !r.name.is_empty())
        .map(StoreId::from_ref);
    let store_for = |source: Option<&SecretStoreRef>, field: String| -> Result<StoreId, PlanError> {
        match source.filter(|r| !r.name.is_empty()) {
            Some(r) => Ok(StoreId::from_ref(r)),
            None => default_store
                .clone()
                .ok_or_else(|| err(field, "no store: set spec.secretStoreRef or a sourceRef.storeRef")),
        }
    };
    let mut items = Vec::new();
    for (index, from) in spec.data_from.iter().enumerate() {
        let base = format!("spec.dataFrom[{index}]");
        let source = from.source_ref.as_ref();
        let generator = source.and_then(|s| s.generator_ref.as_ref());
        let mut rewrites = Vec::new();
        for (ri, rw) in from.rewrite.iter().enumerate() {
            let rbase = format!("{base}.rewrite[{ri}]");
            if let Some(r) = &rw.regexp {
                rewrites.push(Rewrite::Regexp {
                    source: compile(format!("{rbase}.regexp.source"), &r.source)?,
                    target: r.target.clone(),
                });
            } else if let Some(t) = &rw.transform {
                rewrites.push(Rewrite::Transform {
                    template: t.template.clone(),
                });
            } else if let Some(m) = &rw.merge {
                rewrites.push(Rewrite::Merge(Merge {
                    into: m.into.clone(),
                    priority: m.priority.clone(),
                    ignore_missing_priority: m.priority_policy
                        == ExternalSecretRewriteMergePriorityPolicy::IgnoreNotFound,
                    ignore_conflicts: m.conflict_policy == ExternalSecretRewriteMergeConflictPolicy::Ignore,
                    json: m.strategy == ExternalSecretRewriteMergeStrategy::Json,
                }));
            } else {
                return Err(err(rbase, "exactly one of regexp, transform or merge must be set"));
            }
        }
        if let Some(g) = generator {
            if from.extract.is_some() || from.find.is_some() {
                return Err(err(
                    base,
                    "only one of extract, find or sourceRef.generatorRef may be set",
                ));
            }
            crate::generate::check_ref(g, &format!("{base}.sourceRef.generatorRef"))?;
            items.push(Item::Generate {
                index,
                generator: g.clone(),
                rewrite: rewrites,
            });
            continue;
        }
        let store = store_for(
            source.and_then(|s| s.secret_store_ref.as_ref()),
            format!("{base}.sourceRef"),
        )?;
        if let Some(ex) = &from.extract {
            if ex.key.is_empty() {
                return Err(err(format!("{base}.extract.key"), "must not be empty"));
            }
            let post = Post {
                rewrite: rewrites,
                conversion: conversion(ex.conversion_strategy()),
                decoding: decoding(ex.decoding_strategy()),
                nul_fail: ex.null_byte_policy() == ExternalSecretNullBytePolicy::Fail,
            };
            items.push(Item::Extract {
                index,
                store,
                key: remote_key(ex),
                property: non_empty(&ex.property),
                post,
            });
        } else if let Some(find) = &from.find {
            let name = match &find.name {
                Some(n) if !n.regexp.is_empty() => Some(compile(format!("{base}.find.name.regexp"), &n.regexp)?),
                _ => None,
            };
            let query = FindQuery {
                path: find.path.clone().filter(|p| !p.is_empty()),
                name,
                tags: find.tags.clone(),
            };
            let post = Post {
                rewrite: rewrites,
                conversion: conversion(find.conversion_strategy()),
                decoding: decoding(find.decoding_strategy()),
                nul_fail: find.null_byte_policy() == ExternalSecretNullBytePolicy::Fail,
            };
            items.push(Item::Find {
                index,
                store,
                query,
                post,
            });
        } else {
            return Err(err(
                base,
                "exactly one of extract, find or sourceRef.generatorRef must be set",
            ));
        }
    }
    for (index, d) in spec.data.iter().enumerate() {
        let base = format!("spec.data[{index}]");
        if d.remote_ref.key.is_empty() {
            return Err(err(format!("{base}.remoteRef.key"), "must not be empty"));
        }
        if d.source_ref.as_ref().is_some_and(|s| s.generator_ref.is_some()) {
            return Err(err(
                format!("{base}.sourceRef.generatorRef"),
                "generatorRef in data[] is not supported (use dataFrom)",
            ));
        }
        let store = store_for(
            d.source_ref.as_ref().and_then(|s| s.secret_store_ref.as_ref()),
            format!("{base}.sourceRef"),
        )?;
        items.push(Item::Data {
            index,
            store,
            secret_key: d.secret_key.clone(),
            key: remote_key(&d.remote_ref),
            property: non_empty(&d.remote_ref.property),
            decoding: decoding(d.remote_ref.decoding_strategy()),
            nul_fail: d.remote_ref.null_byte_policy() == ExternalSecretNullBytePolicy::Fail,
        });
    }
    Ok(Plan { items })
}

/// A provider error as the sync sees it (cloneable: one read may serve several items).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    pub reason: &'static str,
    pub message: String,
    pub not_found: bool,
    pub retry_after: Option<std::time::Duration>,
}

impl From<&ProviderError> for ReadError {
    fn from(e: &ProviderError) -> Self {
        Self {
            reason: e.reason(),
            message: e.to_string(),
            not_found: e.is_not_found(),
            retry_after: e.retry_after(),
        }
    }
}

/// A lease on values a generator made for `dataFrom[index]`: recorded in a GeneratorState once the values are
/// written, revoked if they are not.
#[derive(Clone, Debug)]
pub struct GeneratedLease {
    pub index: usize,
    pub resolved: crate::generate::Resolved,
    pub lease: syncret_providers::Lease,
}

/// The answers to a plan's reads.
#[derive(Default)]
pub struct Answers {
    pub gets: BTreeMap<(StoreId, RemoteKey), Result<RemoteValue, ReadError>>,
    /// `dataFrom[index].find` results.
    pub finds: BTreeMap<usize, Result<BTreeMap<String, SecretValue>, ReadError>>,
    /// `dataFrom[index].sourceRef.generatorRef` results.
    pub generated: BTreeMap<usize, Result<BTreeMap<String, SecretValue>, ReadError>>,
    /// Leases of generated values.
    pub leases: Vec<GeneratedLease>,
    /// The soonest a value read here stops being valid (a provider lease), if any provider said.
    pub expires_in: Option<std::time::Duration>,
}

/// A remote secret was missing and skipped (an event is due).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// `spec.dataFrom[i]` or `spec.data[i]`.
    pub field: String,
    pub key: String,
}

/// The fetched data and what was skipped.
#[derive(Debug, Default)]
pub struct Assembled {
    pub data: BTreeMap<String, Vec<u8>>,
    pub missing: Vec<Missing>,
}

/// Why assembling failed: names the entry and, for provider errors, carries the provider's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssembleError {
    pub message: String,
    pub provider: Option<ReadError>,
}

impl std::fmt::Display for AssembleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AssembleError {}

/// Builds the data map from the answers, in ESO's order and with ESO's rules.
pub fn assemble(
    plan: &Plan,
    answers: &Answers,
    deletion: ExternalSecretDeletionPolicy,
    transform: TransformFn<'_>,
) -> Result<Assembled, AssembleError> {
    let retain = deletion == ExternalSecretDeletionPolicy::Retain;
    let mut out = Assembled::default();
    let fail = |field: &str, what: &str, e: &ReadError| AssembleError {
        message: format!("error processing {field}{what}: {}", e.message),
        provider: Some(e.clone()),
    };
    let plain = |message: String| AssembleError {
        message,
        provider: None,
    };
    for item in &plan.items {
        match item {
            Item::Extract {
                index,
                store,
                key,
                property,
                post,
            } => {
                let field = format!("spec.dataFrom[{index}].extract");
                let read = answers.gets.get(&(store.clone(), key.clone()));
                let value = match read {
                    Some(Ok(v)) => v.clone(),
                    Some(Err(e)) if e.not_found && !retain => {
                        out.missing.push(Missing {
                            field: format!("spec.dataFrom[{index}]"),
                            key: key.key.clone(),
                        });
                        continue;
                    }
                    Some(Err(e)) => return Err(fail(&field, "", e)),
                    None => {
                        return Err(plain(format!(
                            "error processing {field}: no answer for key {:?}",
                            key.key
                        )));
                    }
                };
                let map = value
                    .into_map(&key.key, property.as_deref())
                    .map_err(|e| fail(&field, "", &ReadError::from(&e)))?;
                let map =
                    post_process(map, post, transform).map_err(|e| plain(format!("error processing {field}: {e}")))?;
                out.data.extend(map);
            }
            Item::Find { index, post, .. } => {
                let field = format!("spec.dataFrom[{index}].find");
                let map = match answers.finds.get(index) {
                    Some(Ok(m)) => m.clone(),
                    Some(Err(e)) if e.not_found && !retain => {
                        out.missing.push(Missing {
                            field: format!("spec.dataFrom[{index}]"),
                            key: String::new(),
                        });
                        continue;
                    }
                    Some(Err(e)) => return Err(fail(&field, "", e)),
                    None => return Err(plain(format!("error processing {field}: no answer"))),
                };
                let map =
                    post_process(map, post, transform).map_err(|e| plain(format!("error processing {field}: {e}")))?;
                out.data.extend(map);
            }
            Item::Data {
                index,
                store,
                secret_key,
                key,
                property,
                decoding,
                nul_fail,
            } => {
                let field = format!("spec.data[{index}]");
                let what = format!(" (key: {})", key.key);
                let value = match answers.gets.get(&(store.clone(), key.clone())) {
                    Some(Ok(v)) => v.select(&key.key, property.as_deref()),
                    Some(Err(e)) if e.not_found && !retain => {
                        out.missing.push(Missing {
                            field: field.clone(),
                            key: key.key.clone(),
                        });
                        continue;
                    }
                    Some(Err(e)) => return Err(fail(&field, &what, e)),
                    None => return Err(plain(format!("error processing {field}{what}: no answer"))),
                };
                let value = match value {
                    Ok(v) => v,
                    Err(e) if e.is_not_found() && !retain => {
                        out.missing.push(Missing {
                            field: field.clone(),
                            key: key.key.clone(),
                        });
                        continue;
                    }
                    Err(e) => return Err(fail(&field, &what, &ReadError::from(&e))),
                };
                let bytes = decode::decode(*decoding, value.as_bytes())
                    .map_err(|e| plain(format!("error processing {field}{what}: {e}")))?;
                if *nul_fail {
                    decode::check_null_bytes(secret_key, &bytes)
                        .map_err(|e| plain(format!("error processing {field}{what}: {e}")))?;
                }
                out.data.insert(secret_key.clone(), bytes);
            }
            Item::Generate { index, rewrite, .. } => {
                let field = format!("spec.dataFrom[{index}].sourceRef.generatorRef");
                let map = match answers.generated.get(index) {
                    Some(Ok(m)) => m.clone(),
                    Some(Err(e)) => return Err(fail(&field, "", e)),
                    None => return Err(plain(format!("error processing {field}: no answer"))),
                };
                let map: BTreeMap<String, Vec<u8>> = map.into_iter().map(|(k, v)| (k, v.to_vec())).collect();
                let map = if rewrite.is_empty() {
                    map
                } else {
                    rewrite::apply(rewrite, map, transform)
                        .map_err(|e| plain(format!("error processing {field}: {e}")))?
                };
                for k in map.keys() {
                    keys::validate_key(k).map_err(|e| plain(format!("error processing {field}: {e}")))?;
                }
                out.data.extend(map);
            }
        }
    }
    Ok(out)
}

/// rewrite (or conversion), key check, decoding, NUL check — ESO's order for `dataFrom` maps.
fn post_process(
    map: BTreeMap<String, SecretValue>,
    post: &Post,
    transform: TransformFn<'_>,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let map: BTreeMap<String, Vec<u8>> = map.into_iter().map(|(k, v)| (k, v.to_vec())).collect();
    let map = if post.rewrite.is_empty() {
        map.into_iter()
            .map(|(k, v)| (keys::convert(post.conversion, &k), v))
            .collect()
    } else {
        rewrite::apply(&post.rewrite, map, transform)?
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        if k.is_empty() {
            continue;
        }
        keys::validate_key(&k)?;
        let v = decode::decode(post.decoding, &v).map_err(|e| format!("failure decoding key {k:?}: {e}"))?;
        if post.nul_fail {
            decode::check_null_bytes(&k, &v)?;
        }
        out.insert(k, v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(yaml: &str) -> ExternalSecret {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn no_transform(_: &str, k: &str) -> Result<String, String> {
        Ok(k.to_uppercase())
    }

    fn store() -> StoreId {
        StoreId {
            kind: StoreKind::SecretStore,
            name: "s".into(),
        }
    }

    fn ok(v: &str) -> Result<RemoteValue, ReadError> {
        Ok(RemoteValue::Bytes(SecretValue::from(v)))
    }

    fn missing() -> Result<RemoteValue, ReadError> {
        Err(ReadError {
            reason: "SecretNotFound",
            message: "secret does not exist".into(),
            not_found: true,
            retry_after: None,
        })
    }

    const ES: &str = r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: s, kind: SecretStore}
  target: {name: db-secret}
  dataFrom:
  - extract: {key: base}
  - extract: {key: extra}
    rewrite:
    - regexp: {source: "^(.*)$", target: "x_$1"}
  data:
  - secretKey: password
    remoteRef: {key: db, property: pass}
  - secretKey: user
    remoteRef: {key: db, property: user}
  - secretKey: cert
    remoteRef: {key: cert, decodingStrategy: Base64}
"#;

    #[test]
    fn plan_dedupes_reads_and_assembles_in_eso_order() {
        let es = es(ES);
        let plan = plan(&es).unwrap();
        let gets = plan.gets();
        assert_eq!(
            gets[&store()].iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
            ["base", "extra", "db", "cert"]
        );
        let mut answers = Answers::default();
        answers.gets.insert(
            (store(), RemoteKey::new("base")),
            ok(r#"{"password":"from-base","a b":"1"}"#),
        );
        answers
            .gets
            .insert((store(), RemoteKey::new("extra")), ok(r#"{"k":"v"}"#));
        answers
            .gets
            .insert((store(), RemoteKey::new("db")), ok(r#"{"pass":"p4ss","user":"admin"}"#));
        answers.gets.insert((store(), RemoteKey::new("cert")), ok("aGk="));
        let got = assemble(&plan, &answers, ExternalSecretDeletionPolicy::Retain, &no_transform).unwrap();
        let data: BTreeMap<&str, &[u8]> = got.data.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        assert_eq!(data["password"], b"p4ss", "data[] overrides dataFrom");
        assert_eq!(data["a_b"], b"1", "default conversion without rewrite");
        assert_eq!(data["x_k"], b"v", "rewrite instead of conversion");
        assert_eq!(data["user"], b"admin");
        assert_eq!(data["cert"], b"hi");
        assert!(got.missing.is_empty());
    }

    #[test]
    fn pass_property_makes_the_property_part_of_the_read() {
        let es = es(ES);
        let mut plan = plan(&es).unwrap();
        plan.pass_property(&store());
        let keys: Vec<(String, Option<String>)> = plan.gets()[&store()]
            .iter()
            .map(|k| (k.key.clone(), k.property.clone()))
            .collect();
        let k = |key: &str, p: Option<&str>| (key.to_string(), p.map(String::from));
        assert_eq!(
            keys,
            [
                k("base", None),
                k("extra", None),
                k("db", Some("pass")),
                k("db", Some("user")),
                k("cert", None)
            ]
        );
        // The provider answered per property; nothing is selected afterwards.
        let key = |key: &str, p: Option<&str>| RemoteKey {
            property: p.map(String::from),
            ..RemoteKey::new(key)
        };
        let mut answers = Answers::default();
        answers.gets.insert((store(), key("base", None)), ok("{}"));
        answers.gets.insert((store(), key("extra", None)), ok("{}"));
        answers.gets.insert((store(), key("db", Some("pass"))), ok("p4ss"));
        answers.gets.insert((store(), key("db", Some("user"))), ok("admin"));
        answers.gets.insert((store(), key("cert", None)), ok("aGk="));
        let got = assemble(&plan, &answers, ExternalSecretDeletionPolicy::Retain, &no_transform).unwrap();
        assert_eq!(got.data["password"], b"p4ss");
        assert_eq!(got.data["user"], b"admin");
    }

    #[test]
    fn missing_remote_is_skipped_unless_retain() {
        let es = es(ES);
        let plan = plan(&es).unwrap();
        let mut answers = Answers::default();
        answers.gets.insert((store(), RemoteKey::new("base")), missing());
        answers.gets.insert((store(), RemoteKey::new("extra")), ok("{}"));
        answers.gets.insert((store(), RemoteKey::new("db")), missing());
        answers.gets.insert((store(), RemoteKey::new("cert")), ok("aGk="));
        let got = assemble(&plan, &answers, ExternalSecretDeletionPolicy::Delete, &no_transform).unwrap();
        assert_eq!(got.data.keys().collect::<Vec<_>>(), ["cert"]);
        assert_eq!(got.missing.len(), 3);
        let e = assemble(&plan, &answers, ExternalSecretDeletionPolicy::Retain, &no_transform).unwrap_err();
        assert!(
            e.message.contains("spec.dataFrom[0].extract") && e.provider.unwrap().not_found,
            "{}",
            e.message
        );
    }

    #[test]
    fn errors_name_the_entry_and_never_the_value() {
        let es = es(ES);
        let plan = plan(&es).unwrap();
        let mut answers = Answers::default();
        answers.gets.insert((store(), RemoteKey::new("base")), ok("{}"));
        answers.gets.insert((store(), RemoteKey::new("extra")), ok("{}"));
        answers
            .gets
            .insert((store(), RemoteKey::new("db")), ok(r#"{"pass":"p4ss","user":"admin"}"#));
        answers
            .gets
            .insert((store(), RemoteKey::new("cert")), ok("s3cr3t-not-b64!"));
        let e = assemble(&plan, &answers, ExternalSecretDeletionPolicy::Retain, &no_transform).unwrap_err();
        assert!(
            e.message.starts_with("error processing spec.data[2] (key: cert)"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("s3cr3t"));
    }

    #[test]
    fn plan_errors_name_fields() {
        let bad = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: s}
  dataFrom:
  - find: {name: {regexp: "(unclosed"}}
"#);
        let e = plan(&bad).unwrap_err();
        assert_eq!(e.field, "spec.dataFrom[0].find.name.regexp");
        let no_store = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db, namespace: app}
spec:
  data:
  - secretKey: a
    remoteRef: {key: k}
"#);
        assert_eq!(plan(&no_store).unwrap_err().field, "spec.data[0].sourceRef");
    }
}
