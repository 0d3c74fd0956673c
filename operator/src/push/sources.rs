//! Which Secrets feed which PushSecrets, so a changed source is pushed within seconds instead of at the next
//! `refreshInterval` (ESO does not watch sources at all). Fed by the PushSecret watch and a metadata-only Secret
//! watch; keeps only names, selectors and the resourceVersions of referenced Secrets (never data).
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use kube::core::{Selector, SelectorExt};
use syncret_crds::pushsecret::PushSecret;

use crate::context::Key;

#[derive(Clone, Debug)]
enum Source {
    Name(String),
    Selector(Selector),
}

/// See the module docs.
#[derive(Default, Debug)]
pub struct SourceIndex {
    /// PushSecret → its source.
    sources: HashMap<Key, Source>,
    /// Secret (`namespace/name`) → PushSecrets naming it.
    by_name: HashMap<Key, BTreeSet<Arc<str>>>,
    /// Namespace → PushSecrets selecting Secrets by label.
    by_selector: HashMap<Arc<str>, BTreeMap<Arc<str>, Selector>>,
    /// Secrets some PushSecret reads: last seen resourceVersion and who read it then.
    versions: HashMap<Key, (String, Vec<Key>)>,
    /// PushSecrets whose source changed since their last push.
    dirty: HashSet<Key>,
}

/// Appends the keys of `more` that `into` does not hold yet.
fn add_new(into: &mut Vec<Key>, more: impl IntoIterator<Item = Key>) {
    for k in more {
        if !into.contains(&k) {
            into.push(k);
        }
    }
}

fn source_of(ps: &PushSecret) -> Option<Source> {
    let s = ps.spec.selector.secret.as_ref()?;
    if !s.name.is_empty() {
        return Some(Source::Name(s.name.clone()));
    }
    s.selector
        .as_ref()
        .and_then(|sel| Selector::try_from(sel.clone()).ok())
        .map(Source::Selector)
}

impl SourceIndex {
    /// Records (or updates) what the PushSecret `key` reads.
    pub fn set(&mut self, key: &Key, ps: &PushSecret) {
        self.remove(key);
        let Some(source) = source_of(ps) else { return };
        match &source {
            Source::Name(n) => {
                self.by_name.entry(key.sibling(n)).or_default().insert(key.name.clone());
            }
            Source::Selector(s) => {
                self.by_selector
                    .entry(key.namespace.clone())
                    .or_default()
                    .insert(key.name.clone(), s.clone());
            }
        }
        self.sources.insert(key.clone(), source);
    }

    /// Forgets the PushSecret `key`.
    pub fn remove(&mut self, key: &Key) {
        self.dirty.remove(key);
        match self.sources.remove(key) {
            Some(Source::Name(n)) => {
                let secret = key.sibling(n);
                if let Some(set) = self.by_name.get_mut(&secret) {
                    set.remove(&key.name);
                    if set.is_empty() {
                        self.by_name.remove(&secret);
                        self.versions.remove(&secret);
                    }
                }
            }
            Some(Source::Selector(_)) => {
                if let Some(m) = self.by_selector.get_mut(&key.namespace) {
                    m.remove(&key.name);
                    if m.is_empty() {
                        self.by_selector.remove(&key.namespace);
                    }
                }
            }
            None => {}
        }
    }

    /// Whether any PushSecret is indexed (the Secret watch is only needed then).
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    fn readers(&self, secret: &Key, labels: &BTreeMap<String, String>) -> Vec<Key> {
        let mut out: Vec<Key> = self
            .by_name
            .get(secret)
            .into_iter()
            .flatten()
            .map(|ps| secret.sibling(ps))
            .collect();
        if let Some(m) = self.by_selector.get(&secret.namespace) {
            out.extend(
                m.iter()
                    .filter(|(_, s)| s.matches(labels))
                    .map(|(ps, _)| secret.sibling(ps)),
            );
        }
        out
    }

    /// A Secret was seen (listed when `listed`, else changed). Returns the PushSecrets to wake when its
    /// resourceVersion differs from the last one seen, or it is new outside a listing (after a relist, a Secret seen
    /// for the first time says nothing about whether it changed): those reading it now, and those that read it
    /// before (a Secret that stopped matching a label selector is no longer pushed).
    pub fn secret_seen(&mut self, secret: &Key, labels: &BTreeMap<String, String>, rv: &str, listed: bool) -> Vec<Key> {
        let readers = self.readers(secret, labels);
        let previous = if readers.is_empty() {
            self.versions.remove(secret)
        } else {
            self.versions.insert(secret.clone(), (rv.to_string(), readers.clone()))
        };
        let (changed, mut woken) = match previous {
            Some((old, before)) => (old != rv, before),
            None => (!listed && !readers.is_empty(), Vec::new()),
        };
        if !changed {
            return Vec::new();
        }
        add_new(&mut woken, readers);
        self.dirty.extend(woken.iter().cloned());
        woken
    }

    /// A PushSecret read the Secret at `rv` to push it: later changes are measured from that version. The watch
    /// starts with the first PushSecret, so its listing can come after a change the push did not see; recorded
    /// here, that change then shows in the listing.
    pub fn read(&mut self, secret: &Key, labels: &BTreeMap<String, String>, rv: &str) {
        let mut readers = self.readers(secret, labels);
        if readers.is_empty() {
            return;
        }
        if let Some((_, before)) = self.versions.remove(secret) {
            add_new(&mut readers, before);
        }
        self.versions.insert(secret.clone(), (rv.to_string(), readers));
    }

    /// A Secret was deleted: its readers (now and before) are woken.
    pub fn secret_deleted(&mut self, secret: &Key, labels: &BTreeMap<String, String>) -> Vec<Key> {
        let mut woken = self.versions.remove(secret).map(|(_, r)| r).unwrap_or_default();
        add_new(&mut woken, self.readers(secret, labels));
        self.dirty.extend(woken.iter().cloned());
        woken
    }

    /// Whether the PushSecret's source changed since it last pushed; clears the mark.
    pub fn take_dirty(&mut self, key: &Key) -> bool {
        self.dirty.remove(key)
    }

    /// Marks the PushSecret's source as changed (a push failed half-way and must be redone).
    pub fn mark_dirty(&mut self, key: &Key) {
        self.dirty.insert(key.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(ns: &str, name: &str, selector: &str) -> PushSecret {
        serde_yaml::from_str(&format!(
            "apiVersion: external-secrets.io/v1alpha1\nkind: PushSecret\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  secretStoreRefs: []\n  selector: {{secret: {selector}}}\n"
        ))
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn wakes_readers_by_name_and_label_on_change_only() {
        let mut idx = SourceIndex::default();
        let a = Key::new("ns", "a");
        let b = Key::new("ns", "b");
        idx.set(&a, &ps("ns", "a", "{name: src}"));
        idx.set(&b, &ps("ns", "b", "{selector: {matchLabels: {push: 'yes'}}}"));
        let src = Key::new("ns", "src");
        // Listing records versions without waking anyone.
        assert!(idx.secret_seen(&src, &labels(&[]), "1", true).is_empty());
        assert!(
            idx.secret_seen(&src, &labels(&[]), "1", false).is_empty(),
            "same version"
        );
        assert_eq!(idx.secret_seen(&src, &labels(&[]), "2", false), vec![a.clone()]);
        assert!(idx.take_dirty(&a));
        assert!(!idx.take_dirty(&a));
        let other = Key::new("ns", "other");
        assert!(
            idx.secret_seen(&other, &labels(&[]), "5", false).is_empty(),
            "nobody reads it"
        );
        assert_eq!(
            idx.secret_seen(&other, &labels(&[("push", "yes")]), "6", false),
            vec![b.clone()]
        );
        // It stops matching: its reader is woken (what it pushed may have to go).
        assert_eq!(idx.secret_seen(&other, &labels(&[]), "7", false), vec![b.clone()]);
        assert!(idx.secret_seen(&other, &labels(&[]), "8", false).is_empty());
        let elsewhere = Key::new("ns2", "src");
        assert!(
            idx.secret_seen(&elsewhere, &labels(&[("push", "yes")]), "1", false)
                .is_empty()
        );
        assert_eq!(idx.secret_deleted(&src, &labels(&[])), vec![a.clone()]);
        assert!(idx.take_dirty(&a));
        // A new Secret after the listing wakes its reader.
        assert_eq!(idx.secret_seen(&src, &labels(&[]), "9", false), vec![a.clone()]);
        idx.remove(&a);
        idx.remove(&b);
        assert!(idx.is_empty());
        assert!(idx.secret_seen(&src, &labels(&[]), "10", false).is_empty());
    }

    #[test]
    fn a_listing_after_a_change_the_push_did_not_read_wakes_the_reader() {
        let mut idx = SourceIndex::default();
        let a = Key::new("ns", "a");
        idx.set(&a, &ps("ns", "a", "{name: src}"));
        let src = Key::new("ns", "src");
        // Pushed at version 1; the watch starts late and lists version 2.
        idx.read(&src, &labels(&[]), "1");
        assert_eq!(idx.secret_seen(&src, &labels(&[]), "2", true), vec![a.clone()]);
        assert!(idx.take_dirty(&a));
        // Pushed at the version the watch shows: nothing to do.
        idx.read(&src, &labels(&[]), "2");
        assert!(idx.secret_seen(&src, &labels(&[]), "2", true).is_empty());
        // A Secret nobody reads is not recorded.
        idx.read(&Key::new("ns", "other"), &labels(&[]), "1");
        assert!(
            idx.secret_seen(&Key::new("ns", "other"), &labels(&[]), "2", true)
                .is_empty()
        );
    }
}
