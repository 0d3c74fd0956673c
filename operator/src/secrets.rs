//! What syncret knows about target Secrets without caching their data (ESO #721, #2837): per managed Secret its
//! resourceVersion, the resourceVersion at which its data was last verified against its data-hash annotation,
//! and a fingerprint of what this operator last applied. Fed by a metadata-only watch of Secrets labelled
//! `reconcile.external-secrets.io/managed=true`, by a paged full read at start-up (hashes checked, data dropped
//! page by page), and by our own writes. Also maps each target Secret back to its ExternalSecret(s).
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use syncret_crds::labels::{ANNOTATION_DATA_HASH, LABEL_MANAGED, LABEL_MANAGED_VALUE};

use crate::context::Key;
use crate::sync::hash;

/// A resourceVersion, kept as a number: it is only ever compared for equality, and the apiserver's are decimal
/// integers (anything else is hashed). 8 bytes instead of a string, twice per Secret (also as an `Option`: "0",
/// which no object has, counts as "1").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rv(NonZeroU64);

impl Default for Rv {
    fn default() -> Self {
        Rv(NonZeroU64::MIN)
    }
}

impl Rv {
    fn of(rv: &str) -> Self {
        Rv(nonzero(crate::dependents::rv(rv)))
    }
}

/// `n` as kept per Secret: 0 and 1 become one value (for a fingerprint, a 2^-64 chance of a missed write).
fn nonzero(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN)
}

/// A string's 64-bit hash (SipHash with fixed keys: the same in every run).
fn hash_of(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// One managed Secret. Names are shared (`Arc<str>`) with the keys: the index costs a few hundred bytes per
/// Secret at 10k, not a kilobyte.
#[derive(Clone, Debug, Default)]
struct Entry {
    resource_version: Rv,
    /// The resourceVersion at which the data was known to match the data-hash annotation (our write, or a read).
    verified: Option<Rv>,
    /// Fingerprint of the last content this operator applied (or found unchanged), if known.
    applied: Option<NonZeroU64>,
    /// Controller owner's name (an ExternalSecret), for routing events.
    owner: Option<Arc<str>>,
    /// The `reconcile.external-secrets.io/created-by` label (which Owner ExternalSecret created it), hashed
    /// ([`Creator`]).
    created_by: Option<Creator>,
}

impl Entry {
    fn verified_now(&self) -> bool {
        self.verified == Some(self.resource_version)
    }
}

/// Names in one namespace; almost always exactly one, kept inline (a `Vec` would cost a heap block per Secret).
type Names = smallvec::SmallVec<[Arc<str>; 1]>;

/// A `created-by` label's value, hashed: 8 bytes per Secret instead of a string of its own. Only ever used to
/// find orphan candidates, each then read and checked against the full label (`sync::secret::is_orphan_of`), so a
/// collision costs one GET.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Creator(NonZeroU64);

impl Creator {
    fn of(label: &str) -> Self {
        Creator(nonzero(hash_of(label)))
    }
}

#[derive(Default)]
struct Inner {
    secrets: HashMap<Key, Entry>,
    /// Secret → the ExternalSecrets targeting it.
    targets: HashMap<Key, Names>,
    /// ExternalSecret → its target Secret name.
    es_target: HashMap<Key, Arc<str>>,
    /// (namespace, created-by label) → Secret names carrying that label (to find orphans without listing).
    creators: HashMap<(Arc<str>, Creator), Names>,
}

impl Inner {
    fn set_creator(&mut self, secret: &Key, created_by: Option<&str>) {
        let created_by = created_by.map(Creator::of);
        let old = self.secrets.get(secret).and_then(|e| e.created_by);
        if old == created_by {
            return;
        }
        if let Some(old) = old {
            let k = (secret.namespace.clone(), old);
            if let Some(v) = self.creators.get_mut(&k) {
                v.retain(|n| n != &secret.name);
                if v.is_empty() {
                    self.creators.remove(&k);
                }
            }
        }
        if let Some(new) = created_by {
            let v = self.creators.entry((secret.namespace.clone(), new)).or_default();
            if !v.contains(&secret.name) {
                v.push(secret.name.clone());
            }
        }
        if let Some(e) = self.secrets.get_mut(secret) {
            e.created_by = created_by;
        }
    }
}

/// See the module docs.
#[derive(Default)]
pub struct SecretIndex {
    inner: Mutex<Inner>,
    /// Set once the managed Secrets have been read at start-up: from then on, "not in the index" means "no managed
    /// Secret of that name".
    primed: std::sync::atomic::AtomicBool,
}

/// ESO's validity rule for a Secret read in full: managed label present and data-hash annotation equal to the
/// hash of its data.
pub fn is_valid(secret: &Secret) -> bool {
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    secret.labels().get(LABEL_MANAGED).map(String::as_str) == Some(LABEL_MANAGED_VALUE)
        && secret.annotations().get(ANNOTATION_DATA_HASH) == Some(&hash::data_hash(&data))
}

impl SecretIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records where an ExternalSecret writes; returns the previous target if it changed.
    pub fn set_target(&self, es: &Key, secret_name: &str) -> Option<String> {
        let mut g = self.lock();
        if g.es_target.get(es).is_some_and(|t| &**t == secret_name) {
            return None;
        }
        let secret = es.sibling(secret_name);
        let previous = g.es_target.insert(es.clone(), secret.name.clone());
        if let Some(prev) = &previous {
            let k = es.sibling(prev);
            if let Some(v) = g.targets.get_mut(&k) {
                v.retain(|n| n != &es.name);
                if v.is_empty() {
                    g.targets.remove(&k);
                }
            }
        }
        let list = g.targets.entry(secret).or_default();
        if !list.contains(&es.name) {
            list.push(es.name.clone());
        }
        previous.map(|p| p.to_string())
    }

    /// Forgets an ExternalSecret (deleted).
    pub fn remove_es(&self, es: &Key) {
        let mut g = self.lock();
        if let Some(prev) = g.es_target.remove(es) {
            let k = es.sibling(&prev);
            if let Some(v) = g.targets.get_mut(&k) {
                v.retain(|n| n != &es.name);
                if v.is_empty() {
                    g.targets.remove(&k);
                }
            }
        }
    }

    /// The ExternalSecrets that target this Secret (by target name, or as controller owner).
    pub fn owners_of(&self, secret: &Key) -> Vec<Arc<str>> {
        let g = self.lock();
        let mut out = g.targets.get(secret).map(|n| n.to_vec()).unwrap_or_default();
        if let Some(o) = g.secrets.get(secret).and_then(|e| e.owner.clone())
            && !out.contains(&o)
        {
            out.push(o);
        }
        out
    }

    /// A watch event for a managed Secret. Returns true if it changed behind our back (not by our last write).
    pub fn observe(
        &self,
        secret: &Key,
        resource_version: &str,
        owner: Option<String>,
        created_by: Option<String>,
    ) -> bool {
        let mut g = self.lock();
        let e = g.secrets.entry(secret.clone()).or_default();
        e.resource_version = Rv::of(resource_version);
        if e.owner.as_deref() != owner.as_deref() {
            e.owner = owner.map(Arc::from);
        }
        let changed = !e.verified_now();
        g.set_creator(secret, created_by.as_deref());
        changed
    }

    /// Names of the Secrets in `namespace` labelled as created by the Owner ExternalSecret with this hash.
    pub fn created_by(&self, namespace: &str, hash: &str) -> Vec<Arc<str>> {
        self.lock()
            .creators
            .get(&(Arc::from(namespace), Creator::of(hash)))
            .map(|n| n.to_vec())
            .unwrap_or_default()
    }

    /// The Secret was deleted.
    pub fn observe_deleted(&self, secret: &Key) {
        let mut g = self.lock();
        g.set_creator(secret, None);
        g.secrets.remove(secret);
    }

    /// We read the Secret in full: remember whether it is valid at this resourceVersion.
    pub fn record_read(&self, secret: &Secret) {
        let key = Key::new(secret.namespace().unwrap_or_default(), secret.name_any());
        let rv = secret.resource_version().unwrap_or_default();
        let valid = is_valid(secret);
        let created_by = secret.labels().get(syncret_crds::labels::LABEL_CREATED_BY).cloned();
        let owner = secret
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "ExternalSecret")
            .map(|o| o.name.as_str());
        let managed = secret.labels().get(LABEL_MANAGED).map(String::as_str) == Some(LABEL_MANAGED_VALUE);
        let mut g = self.lock();
        if !managed && !g.secrets.contains_key(&key) {
            // Not ours (the metadata watch only sees managed Secrets): nothing to remember.
            return;
        }
        let e = g.secrets.entry(key.clone()).or_default();
        e.resource_version = Rv::of(&rv);
        e.verified = valid.then_some(e.resource_version);
        if !valid {
            e.applied = None;
        }
        if e.owner.as_deref() != owner {
            e.owner = owner.map(Arc::from);
        }
        g.set_creator(&key, created_by.as_deref());
    }

    /// We wrote (or confirmed) the Secret: it is valid at `resource_version` with content fingerprint `applied`.
    pub fn record_write(&self, secret: &Key, resource_version: &str, applied: u64) {
        let mut g = self.lock();
        let e = g.secrets.entry(secret.clone()).or_default();
        e.resource_version = Rv::of(resource_version);
        e.verified = Some(e.resource_version);
        e.applied = Some(nonzero(applied));
    }

    /// Whether the Secret exists and is valid as far as we know without reading it.
    pub fn known_valid(&self, secret: &Key) -> bool {
        let g = self.lock();
        g.secrets.get(secret).is_some_and(Entry::verified_now)
    }

    /// Whether the Secret is valid and holds exactly what we would apply now (fingerprint): no write needed.
    pub fn unchanged(&self, secret: &Key, applied: u64) -> bool {
        let g = self.lock();
        g.secrets
            .get(secret)
            .is_some_and(|e| e.verified_now() && e.applied == Some(nonzero(applied)))
    }

    /// Forgets every Secret and ExternalSecret in the namespaces `keep` refuses (a shard given up).
    pub fn retain_namespaces(&self, keep: impl Fn(&str) -> bool) {
        let mut g = self.lock();
        g.secrets.retain(|k, _| keep(&k.namespace));
        g.targets.retain(|k, _| keep(&k.namespace));
        g.es_target.retain(|k, _| keep(&k.namespace));
        g.creators.retain(|(ns, _), _| keep(ns));
    }

    /// Marks the start-up read as done.
    pub fn set_primed(&self) {
        self.primed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the start-up read is done.
    pub fn primed(&self) -> bool {
        self.primed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether we have seen the Secret at all (it exists with the managed label).
    pub fn exists(&self, secret: &Key) -> bool {
        self.lock().secrets.contains_key(secret)
    }

    pub fn len(&self) -> usize {
        self.lock().secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_events_after_our_write_are_not_changes() {
        let idx = SecretIndex::default();
        let s = Key::new("ns", "db");
        assert!(!idx.known_valid(&s));
        idx.record_write(&s, "10", 42);
        assert!(
            !idx.observe(&s, "10", Some("es".into()), Some("h".into())),
            "our own write"
        );
        assert_eq!(idx.created_by("ns", "h"), [Arc::from("db")]);
        assert!(idx.unchanged(&s, 42));
        assert!(!idx.unchanged(&s, 43));
        assert!(idx.observe(&s, "11", None, Some("h".into())), "someone else changed it");
        assert!(!idx.known_valid(&s));
        idx.observe_deleted(&s);
        assert!(!idx.exists(&s));
        assert!(idx.created_by("ns", "h").is_empty());
    }

    #[test]
    fn routes_secrets_to_their_external_secrets() {
        let idx = SecretIndex::default();
        let es = Key::new("ns", "es1");
        assert_eq!(idx.set_target(&es, "a"), None);
        idx.set_target(&Key::new("ns", "es2"), "a");
        assert_eq!(
            idx.owners_of(&Key::new("ns", "a")),
            [Arc::from("es1"), Arc::from("es2")]
        );
        assert_eq!(idx.set_target(&es, "b").as_deref(), Some("a"));
        assert_eq!(idx.owners_of(&Key::new("ns", "a")), [Arc::from("es2")]);
        idx.remove_es(&Key::new("ns", "es2"));
        assert!(idx.owners_of(&Key::new("ns", "a")).is_empty());
    }

    #[test]
    fn a_shard_given_up_leaves_nothing_of_its_namespaces() {
        let idx = SecretIndex::default();
        for ns in ["keep", "drop"] {
            idx.set_target(&Key::new(ns, "es"), "s");
            idx.record_write(&Key::new(ns, "s"), "1", 1);
            idx.observe(&Key::new(ns, "s"), "1", Some("es".into()), Some("h".into()));
        }
        idx.retain_namespaces(|ns| ns == "keep");
        assert_eq!(idx.len(), 1);
        assert!(idx.known_valid(&Key::new("keep", "s")));
        assert!(!idx.exists(&Key::new("drop", "s")));
        assert!(idx.owners_of(&Key::new("drop", "s")).is_empty());
        assert!(idx.created_by("drop", "h").is_empty());
        assert_eq!(idx.created_by("keep", "h").len(), 1);
    }

    #[test]
    fn an_entry_is_small() {
        // One per managed Secret; the names are shared with the keys.
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }
}
