//! The ExternalSecrets the operator watches, held compactly.
//!
//! kube-runtime's reflector keeps every object decoded: an ExternalSecret with one `data` entry and a Ready
//! status is ~1.9 KB of structs and strings, plus ~250 B for its `ObjectRef` key. This cache keeps each one as
//! its JSON (already stripped of managedFields and kubectl's last-applied copy, see
//! [`crate::controller::strip`]), ~0.8 KB, and decodes it when a reconcile asks for it (~4 µs). At 10,000
//! ExternalSecrets that is ~12 MB less resident memory, the largest single item of the operator's heap. What the
//! key and the type already say (name, namespace, apiVersion, kind: ~100 B each) is left out of the JSON and put
//! back on decode.
//!
//! The JSON is kept LZ4-compressed against a dictionary of typical ExternalSecrets as this cache writes them
//! ([`dictionary`]): what every entry repeats (field names, enum values, a synced object's Ready condition) becomes
//! back-references, and what is left is mostly the object's own names, uid, timestamps and hashes. A bench
//! ExternalSecret with a Ready status goes from 768 bytes of JSON to 280 (the unit tests check the ratio);
//! decompressing an entry is cheap next to decoding its JSON.
//!
//! Beside the JSON, each entry keeps what the watch loop and the workers ask for on every event or requeue, so
//! they need no decode: the fingerprint of what makes it worth reconciling, its refresh-jitter unit, and hashes of
//! the stores it reads from (a store change decodes only the ExternalSecrets that may use it).
//!
//! Re-lists follow the watcher's protocol: [`EsCache::relist`] at `Init`, [`EsCache::apply`] for each object,
//! [`EsCache::relisted`] at `InitDone` drops (and returns) the ones the new list no longer holds — deleted while
//! the watch was down, which kube-runtime's reflector drops silently.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use syncret_crds::externalsecret::{ExternalSecret, ExternalSecretSpec, ExternalSecretStatus};

use crate::context::Key;

/// Hashes of the stores an ExternalSecret reads from (one, almost always: kept inline).
pub type StoreHashes = smallvec::SmallVec<[u64; 1]>;

/// What is derived from an ExternalSecret's spec, recomputed only when its fingerprint changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Derived {
    /// Its refresh-jitter share.
    pub unit: f64,
    /// Hashes of the stores it reads from.
    pub stores: StoreHashes,
}

struct Entry {
    /// The stored JSON, compressed (see the module docs).
    json: Box<[u8]>,
    fingerprint: u64,
    derived: Derived,
    /// The list this entry was last seen in (see [`EsCache::relist`]).
    list: u64,
    /// Its resourceVersion as a number (0: not a number), to keep the newer of a list and a watch event.
    rv: u64,
}

/// A resourceVersion as a number: the apiserver's are etcd revisions; anything else compares as 0 (unknown).
fn rv_number(es: &ExternalSecret) -> u64 {
    es.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

/// An entry's JSON, compressed against the [`dictionary`] (its length first, as LZ4's size-prepended blocks).
fn compress(json: &[u8]) -> Box<[u8]> {
    lz4_flex::block::compress_prepend_size_with_dict(json, dictionary()).into_boxed_slice()
}

/// The JSON of an entry [`compress`] made; `None` only if the bytes were not made by it.
fn decompress(stored: &[u8]) -> Option<Vec<u8>> {
    lz4_flex::block::decompress_size_prepended_with_dict(stored, dictionary()).ok()
}

/// What entries are compressed against: the stored JSON of a few typical ExternalSecrets, written by the same
/// code as the entries (so field order and spelling match), built once per process. It must never change while
/// the process runs (entries are decompressed against the same bytes).
fn dictionary() -> &'static [u8] {
    static DICTIONARY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICTIONARY.get_or_init(|| {
        let mut out = Vec::new();
        for sample in dictionary_samples() {
            let Ok(es) = serde_json::from_value::<ExternalSecret>(sample) else {
                continue;
            };
            let stored = Stored {
                metadata: es.metadata,
                spec: &es.spec,
                status: es.status.as_ref(),
            };
            // Encoding a decoded value cannot fail; a sample that did would only make the dictionary smaller.
            let _ = serde_json::to_writer(&mut out, &stored);
        }
        out
    })
}

/// Typical ExternalSecrets (see [`dictionary`]): the most common shapes last, nearest the data.
fn dictionary_samples() -> Vec<serde_json::Value> {
    let ready = |reason: &str, message: &str| {
        serde_json::json!({
            "refreshTime": "2026-01-01T00:00:00Z",
            "syncedResourceVersion": "1-00000000000000000000000000000000000000000000000000000000",
            "binding": {"name": "app-secret"},
            "conditions": [{"type": "Ready", "status": "True", "reason": reason, "message": message,
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        })
    };
    let metadata = serde_json::json!({
        "uid": "00000000-0000-0000-0000-000000000000", "resourceVersion": "100000", "generation": 1,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {"app.kubernetes.io/name": "app", "app.kubernetes.io/instance": "app",
                   "app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": "app", "meta.helm.sh/release-namespace": "app"},
    });
    vec![
        serde_json::json!({
            "metadata": {
                "uid": "00000000-0000-0000-0000-000000000000", "resourceVersion": "100000", "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"external-secrets.io/cluster-external-secret": "all"},
                "ownerReferences": [{"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
                                     "name": "all", "uid": "00000000-0000-0000-0000-000000000000",
                                     "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": {
                "refreshInterval": "1h",
                "refreshPolicy": "Periodic",
                "secretStoreRef": {"kind": "SecretStore", "name": "vault-backend"},
                "target": {"name": "app-secret", "creationPolicy": "Owner", "deletionPolicy": "Retain",
                           "template": {"type": "Opaque", "engineVersion": "v2", "mergePolicy": "Replace",
                                        "metadata": {"labels": {}, "annotations": {}},
                                        "data": {"config.yaml": "{{ .password | toString }}"}}},
                "dataFrom": [
                    {"extract": {"key": "app/config", "conversionStrategy": "Default",
                                 "decodingStrategy": "None", "metadataPolicy": "None"}},
                    {"find": {"path": "app", "name": {"regexp": ".*"}, "conversionStrategy": "Default",
                              "decodingStrategy": "None"},
                     "rewrite": [{"regexp": {"source": "(.*)", "target": "$1"}}]},
                ],
            },
            "status": ready("SecretSynced", "secret synced"),
        }),
        serde_json::json!({
            "metadata": metadata,
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": "aws-secretsmanager"},
                "target": {"name": "app-secret", "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                "data": [
                    {"secretKey": "password", "remoteRef": {"key": "app/password", "property": "password",
                     "version": "AWSCURRENT", "conversionStrategy": "Default", "decodingStrategy": "None",
                     "metadataPolicy": "None"}},
                    {"secretKey": "username", "remoteRef": {"key": "app/username"}},
                ],
            },
            "status": {
                "refreshTime": "2026-01-01T00:00:00Z",
                "binding": {"name": "app-secret"},
                "conditions": [{"type": "Ready", "status": "False", "reason": "SecretSyncedError",
                                "message": "could not get secret data from provider",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            },
        }),
        serde_json::json!({
            "metadata": {"uid": "00000000-0000-0000-0000-000000000000", "resourceVersion": "100000",
                         "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
                "target": {"name": "app-secret", "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                "data": [{"secretKey": "value", "remoteRef": {"key": "app/value", "property": "value"}}],
            },
            "status": ready("SecretSynced", "secret synced"),
        }),
    ]
}

/// What an entry's JSON holds: the object without what its key and type say (see the module docs).
#[derive(Serialize, Deserialize)]
struct Stored<S, T> {
    metadata: ObjectMeta,
    spec: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<T>,
}

/// What [`EsCache::apply`] learned about one object.
#[derive(Debug)]
pub struct Applied {
    /// The cache's key (shared strings: clones cost no allocation).
    pub key: Key,
    /// Whether its fingerprint differs from the one cached before (or it is new).
    pub changed: bool,
}

/// See the module docs.
#[derive(Default)]
pub struct EsCache {
    inner: RwLock<Inner>,
    /// While a shard is being primed ([`EsCache::begin_priming`]): deletions seen by the watch, with their
    /// resourceVersion, so a list that started before a deletion does not bring the object back.
    deleted: std::sync::Mutex<(usize, HashMap<Key, u64>)>,
    /// Encoding buffer, reused: each entry is then one allocation of its exact size (no growth reallocations
    /// left behind as holes in the heap, 20,000 times during a 10k sync).
    scratch: std::sync::Mutex<Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    /// The current list; entries not seen in it are dropped when it completes.
    list: u64,
}

impl EsCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores (or replaces) an ExternalSecret. `fingerprint` is a hash of what makes it worth reconciling (the
    /// spec's generation among it); `derive` is called only when it changed. Both are kept so the watch loop and
    /// workers need no decode.
    pub fn apply(&self, es: &ExternalSecret, fingerprint: u64, derive: impl FnOnce() -> Derived) -> Applied {
        let key = Key::new(
            es.metadata.namespace.as_deref().unwrap_or_default(),
            es.metadata.name.as_deref().unwrap_or_default(),
        );
        // Encoding a value that came from JSON cannot fail; if it did, the object is kept out (and reconciled
        // as gone) rather than kept stale.
        let json = {
            let metadata = ObjectMeta {
                name: None,
                namespace: None,
                ..es.metadata.clone()
            };
            let stored = Stored {
                metadata,
                spec: &es.spec,
                status: es.status.as_ref(),
            };
            let mut buf = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
            buf.clear();
            serde_json::to_writer(&mut *buf, &stored).ok().map(|()| compress(&buf))
        };
        let mut inner = self.write();
        let list = inner.list;
        let Some(json) = json else {
            tracing::error!(externalsecret = %key, "could not encode ExternalSecret for the cache");
            inner.map.remove(&key);
            return Applied { key, changed: true };
        };
        let (key, changed, derived) = match inner.map.get_key_value(&key) {
            Some((k, e)) if e.fingerprint == fingerprint => (k.clone(), false, e.derived.clone()),
            Some((k, _)) => (k.clone(), true, derive()),
            None => (key, true, derive()),
        };
        let entry = Entry {
            json,
            fingerprint,
            derived,
            list,
            rv: rv_number(es),
        };
        inner.map.insert(key.clone(), entry);
        Applied { key, changed }
    }

    /// Forgets an ExternalSecret; whether it was cached.
    pub fn delete(&self, key: &Key) -> bool {
        self.write().map.remove(key).is_some()
    }

    /// The watch saw `es` deleted: forgets it, and while a shard is being primed remembers the deletion so the
    /// priming list cannot bring it back. Whether it was cached.
    pub fn deleted(&self, es: &ExternalSecret) -> bool {
        let key = Key::new(
            es.metadata.namespace.as_deref().unwrap_or_default(),
            es.metadata.name.as_deref().unwrap_or_default(),
        );
        {
            let mut d = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
            if d.0 > 0 {
                d.1.insert(key.clone(), rv_number(es));
            }
        }
        self.delete(&key)
    }

    /// A shard's objects are about to be listed (see [`EsCache::apply_listed`]); pair with
    /// [`EsCache::end_priming`].
    pub fn begin_priming(&self) {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
    }

    /// The listing of [`EsCache::begin_priming`] is over.
    pub fn end_priming(&self) {
        let mut d = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        d.0 = d.0.saturating_sub(1);
        if d.0 == 0 {
            d.1 = HashMap::new();
        }
    }

    /// An ExternalSecret from a list made to prime a shard while the watch already delivers that shard's events:
    /// stored unless the cache holds a newer version or the watch saw it deleted since. `None`: not stored.
    pub fn apply_listed(
        &self,
        es: &ExternalSecret,
        fingerprint: u64,
        derive: impl FnOnce() -> Derived,
    ) -> Option<Applied> {
        let rv = rv_number(es);
        let key = Key::new(
            es.metadata.namespace.as_deref().unwrap_or_default(),
            es.metadata.name.as_deref().unwrap_or_default(),
        );
        let gone = self
            .deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .get(&key)
            .is_some_and(|d| *d >= rv);
        let newer = self.read().map.get(&key).is_some_and(|e| e.rv >= rv && rv > 0);
        (!gone && !newer).then(|| self.apply(es, fingerprint, derive))
    }

    /// Drops the entries `keep` refuses (a shard given up); returns their keys.
    pub fn retain(&self, keep: impl Fn(&Key) -> bool) -> Vec<Key> {
        let mut gone = Vec::new();
        self.write().map.retain(|k, _| {
            let kept = keep(k);
            if !kept {
                gone.push(k.clone());
            }
            kept
        });
        gone
    }

    /// Every key, for counting (shared strings: no copies of names).
    pub fn keys(&self) -> Vec<Key> {
        self.read().map.keys().cloned().collect()
    }

    /// The ExternalSecret, decoded.
    pub fn get(&self, key: &Key) -> Option<Arc<ExternalSecret>> {
        let inner = self.read();
        let entry = inner.map.get(key)?;
        let json = decompress(&entry.json);
        drop(inner);
        match json.and_then(|j| serde_json::from_slice::<Stored<ExternalSecretSpec, ExternalSecretStatus>>(&j).ok()) {
            Some(Stored {
                mut metadata,
                spec,
                status,
            }) => {
                metadata.name = Some(key.name.to_string());
                metadata.namespace = (!key.namespace.is_empty()).then(|| key.namespace.to_string());
                Some(Arc::new(ExternalSecret { metadata, spec, status }))
            }
            None => {
                // The error text could quote the object; only the key is logged.
                tracing::error!(externalsecret = %key, "could not decode cached ExternalSecret");
                None
            }
        }
    }

    /// The refresh-jitter unit given to [`EsCache::apply`].
    pub fn unit(&self, key: &Key) -> Option<f64> {
        self.read().map.get(key).map(|e| e.derived.unit)
    }

    /// The ExternalSecrets whose store hashes include `store` (a superset of those using the store: check each).
    pub fn using_store(&self, store: u64) -> Vec<Key> {
        self.read()
            .map
            .iter()
            .filter(|(_, e)| e.derived.stores.contains(&store))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A full list starts: entries it does not [`EsCache::apply`] are dropped by [`EsCache::relisted`].
    pub fn relist(&self) {
        self.write().list += 1;
    }

    /// The full list is complete: drops the entries it did not hold and returns their keys.
    pub fn relisted(&self) -> Vec<Key> {
        let mut inner = self.write();
        let list = inner.list;
        let mut gone = Vec::new();
        inner.map.retain(|k, e| {
            let kept = e.list == list;
            if !kept {
                gone.push(k.clone());
            }
            kept
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(ns: &str, name: &str, key: &str) -> ExternalSecret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": ns, "uid": "u-1", "resourceVersion": "7", "generation": 1,
                         "labels": {"team": "a"}},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
                "target": {"name": name, "template": {"data": {"url": "{{ .password }}"}}},
                "data": [{"secretKey": "password", "remoteRef": {"key": key, "property": "p"}}],
            },
            "status": {
                "refreshTime": "2026-11-24T03:00:00Z",
                "syncedResourceVersion": "1-abc",
                "binding": {"name": name},
                "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced",
                                "message": "secret synced", "lastTransitionTime": "2026-11-24T03:00:00Z"}],
            },
        }))
        .unwrap()
    }

    fn derived(unit: f64) -> Derived {
        Derived {
            unit,
            stores: [7].into_iter().collect(),
        }
    }

    #[test]
    fn an_external_secret_comes_back_as_it_went_in() {
        let cache = EsCache::default();
        let db = es("ns1", "db", "prod/db");
        let a = cache.apply(&db, 1, || derived(0.25));
        assert_eq!(a.key, Key::new("ns1", "db"));
        assert!(a.changed);
        assert_eq!(*cache.get(&a.key).unwrap(), db);
        assert_eq!(cache.unit(&a.key), Some(0.25));
        assert_eq!(cache.using_store(7), vec![a.key.clone()]);
        assert!(cache.using_store(8).is_empty());
        assert!(cache.get(&Key::new("ns2", "db")).is_none());
        // What the key and the type say is not kept twice.
        let json = String::from_utf8(decompress(&cache.read().map[&a.key].json).unwrap()).unwrap();
        for left_out in ["apiVersion", "ExternalSecret", "\"ns1\""] {
            assert!(!json.contains(left_out), "{left_out} in {json}");
        }
    }

    #[test]
    fn entries_are_kept_compressed() {
        assert!(dictionary().len() > 1000, "every sample encodes");
        let cache = EsCache::default();
        // The bench's ExternalSecrets: 768 bytes of JSON each once synced, 280 stored.
        let synced: ExternalSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "af-00200", "namespace": "bench-fc5b4-000", "generation": 1,
                         "creationTimestamp": "2026-12-07T02:41:24Z", "resourceVersion": "41030",
                         "uid": "816cd15e-94b5-48e1-b0f1-989268e8b684",
                         "labels": {"bench.syncret.dev/run": "fc5b4", "bench.syncret.dev/set": "af"}},
            "spec": {"data": [{"remoteRef": {"key": "key-00200"}, "secretKey": "value"}],
                     "refreshInterval": "320s",
                     "secretStoreRef": {"kind": "ClusterSecretStore", "name": "bench-fc5b4-af"},
                     "target": {"creationPolicy": "Owner", "deletionPolicy": "Retain", "name": "af-00200"}},
            "status": {"binding": {"name": "af-00200"},
                       "conditions": [{"lastTransitionTime": "2026-12-07T02:42:08Z", "message": "secret synced",
                                       "reason": "SecretSynced", "status": "True", "type": "Ready"}],
                       "refreshTime": "2026-12-07T02:42:08Z",
                       "syncedResourceVersion": "1-2677d5f761f04eeac6ef6e2f55a70c505988d3a696f0d207997dfd01"},
        }))
        .unwrap();
        for es in [synced, es("ns1", "db", "prod/db")] {
            let a = cache.apply(&es, 1, || derived(0.0));
            assert_eq!(*cache.get(&a.key).unwrap(), es);
            let stored = cache.read().map[&a.key].json.len();
            let json = decompress(&cache.read().map[&a.key].json).unwrap().len();
            assert!(stored * 2 < json, "{stored} bytes stored for {json} of JSON");
        }
        // Bytes this cache did not write are refused, not misread.
        assert!(decompress(b"\xff\xff\xff\x7fjunk").is_none());
    }

    #[test]
    fn only_a_new_fingerprint_counts_as_a_change() {
        let cache = EsCache::default();
        assert!(cache.apply(&es("ns1", "db", "k1"), 1, || derived(0.5)).changed);
        // A status-only update: same fingerprint, new content stored.
        let mut newer = es("ns1", "db", "k1");
        newer.metadata.resource_version = Some("8".into());
        let a = cache.apply(&newer, 1, || derived(0.5));
        assert!(!a.changed);
        assert_eq!(
            cache.get(&a.key).unwrap().metadata.resource_version.as_deref(),
            Some("8")
        );
        assert!(cache.apply(&es("ns1", "db", "k2"), 2, || derived(0.5)).changed);
        assert_eq!(cache.len(), 1);
        assert!(cache.delete(&a.key));
        assert!(!cache.delete(&a.key));
        assert!(cache.is_empty());
    }

    #[test]
    fn a_priming_list_keeps_the_newer_version_and_does_not_resurrect_deletions() {
        let cache = EsCache::default();
        let at = |rv: &str, key: &str| {
            let mut e = es("ns1", "db", key);
            e.metadata.resource_version = Some(rv.into());
            e
        };
        cache.begin_priming();
        // The watch delivered version 9; a list that read version 7 does not replace it.
        cache.apply(&at("9", "new"), 2, || derived(0.0));
        assert!(cache.apply_listed(&at("7", "old"), 1, || derived(0.0)).is_none());
        assert_eq!(
            cache
                .get(&Key::new("ns1", "db"))
                .unwrap()
                .metadata
                .resource_version
                .as_deref(),
            Some("9")
        );
        // A newer listed version does.
        assert!(cache.apply_listed(&at("11", "newer"), 3, || derived(0.0)).is_some());
        // Deleted (watch, version 12) while the list ran: the list's version 11 stays out.
        assert!(cache.deleted(&at("12", "newer")));
        assert!(cache.apply_listed(&at("11", "newer"), 3, || derived(0.0)).is_none());
        assert!(cache.is_empty());
        cache.end_priming();
        // After priming, deletions are not remembered.
        assert!(!cache.deleted(&at("13", "x")));
        assert!(cache.apply_listed(&at("11", "newer"), 3, || derived(0.0)).is_some());
        // A shard given up: its entries go.
        cache.apply(&es("ns2", "a", "k"), 1, || derived(0.0));
        assert_eq!(cache.retain(|k| &*k.namespace != "ns1"), vec![Key::new("ns1", "db")]);
        assert_eq!(cache.keys(), vec![Key::new("ns2", "a")]);
    }

    #[test]
    fn a_relist_drops_what_it_no_longer_holds() {
        let cache = EsCache::default();
        cache.apply(&es("ns1", "a", "k"), 1, || derived(0.0));
        cache.apply(&es("ns1", "b", "k"), 1, || derived(0.0));
        cache.relist();
        // Listed again unchanged: not a change, kept.
        assert!(!cache.apply(&es("ns1", "a", "k"), 1, || derived(0.0)).changed);
        // Still readable while the list runs.
        assert!(cache.get(&Key::new("ns1", "b")).is_some());
        assert_eq!(cache.relisted(), vec![Key::new("ns1", "b")]);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&Key::new("ns1", "a")).is_some());
        // Nothing more to drop on a second complete list.
        cache.relist();
        cache.apply(&es("ns1", "a", "k"), 1, || derived(0.0));
        assert!(cache.relisted().is_empty());
    }
}
