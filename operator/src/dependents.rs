//! Which ExternalSecrets and PushSecrets depend on which objects of the cluster (template sources, generic
//! targets: [`crate::sync::dependencies`]), the resourceVersion each of those objects has now, and a small cache
//! of template sources' data at that version. Synchronous and I/O-free: the ExternalSecret and PushSecret watches
//! register what each depends on ([`DependencyIndex::set`]); metadata-only watches of the depended-on kinds
//! (`controller::objects`, started when a first dependent needs the kind) report versions
//! ([`DependencyIndex::observed`]) and get back the dependents to wake. The index also notes when each object
//! last changed ([`DependencyIndex::changed_at`]; the one clock read here), so a dependent woken by the change does
//! not take a provider read shared from before it (a SOPS document's ConfigMap is read through the provider).
//!
//! Memory: objects are kept by a 64-bit hash of (kind, namespace, name), never by name, and only while something
//! depends on them; events of every other ConfigMap or Secret of the cluster cost a hash and a lookup. At 10,000
//! ExternalSecrets each using one template ConfigMap of its namespace, the index holds ~60 B per ExternalSecret
//! and one entry per ConfigMap. A collision of two hashes could at worst wake an ExternalSecret for nothing or
//! let two objects share a version (odds ~2⁻⁶⁴ per pair).
//!
//! The data cache answers the renders' reads of template sources without a GET while the watch shows the
//! version that was read: a ConfigMap used by 10,000 ExternalSecrets is read once per change, not once per render.
//! It holds only objects something depends on, within [`CACHE_BUDGET`] bytes in all (beyond it a render reads
//! the object itself, as before), and an entry is dropped as soon as the watch shows another version.
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use smallvec::SmallVec;

use crate::context::Key;
use crate::sync::dependencies::{Dependency, ObjectKind, ObjectRef, Role};

/// Bytes of template-source data kept in all (keys and values).
pub const CACHE_BUDGET: usize = 8 << 20;

/// Who depends on an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependent {
    ExternalSecret(Key),
    PushSecret(Key),
}

/// The identity of an object in the index.
type Id = u64;

/// The index's identity of an object (no allocation: the watches call this for every event).
pub fn id(kind: &ObjectKind, namespace: &str, name: &str) -> Id {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    kind.hash(&mut h);
    namespace.hash(&mut h);
    name.hash(&mut h);
    h.finish()
}

fn id_of(o: &ObjectRef) -> Id {
    id(&o.kind, &o.namespace, &o.name)
}

/// A resourceVersion as a number (only compared for equality; the apiserver's are decimal, anything else is
/// hashed).
pub fn rv(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    })
}

/// A template source's data (ConfigMap `data`, Secret `data`), as the renders read it.
pub type Data = BTreeMap<String, Vec<u8>>;

struct Cached {
    rv: u64,
    data: Arc<Data>,
    bytes: usize,
}

struct Entry {
    /// Index into [`DependencyIndex::kinds`].
    kind: u16,
    /// The version the watch shows; `None`: not seen (yet), or deleted.
    rv: Option<u64>,
    /// The list (of its kind's watch) in which it was last seen.
    list: u32,
    /// Our own last write of it (a generic target): its version and a fingerprint of what was applied.
    written: Option<(u64, u64)>,
    dependents: SmallVec<[(Dependent, Role); 1]>,
    cached: Option<Cached>,
    /// When the watch last showed it change (or go): reads of it shared from before then are stale.
    changed: Option<Instant>,
}

struct KindState {
    kind: ObjectKind,
    /// Dependencies on objects of this kind.
    uses: usize,
    /// Its watch has completed a list.
    synced: bool,
    /// The current list's number.
    list: u32,
}

/// See the module docs.
#[derive(Default)]
pub struct DependencyIndex {
    objects: HashMap<Id, Entry>,
    /// Dependent → what it depends on.
    of: HashMap<Dependent, SmallVec<[(Id, Role); 1]>>,
    kinds: Vec<KindState>,
    cached_bytes: usize,
}

/// What the index knows of a target object ([`DependencyIndex::target`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetView {
    /// The watch has listed the target's kind.
    pub synced: bool,
    /// Its version now (`None`: not there).
    pub rv: Option<u64>,
    /// Our last write: (version, fingerprint of the content).
    pub written: Option<(u64, u64)>,
}

impl TargetView {
    /// Nobody changed the object since we wrote `fingerprint` into it.
    pub fn unchanged_since_write(&self, fingerprint: u64) -> bool {
        self.synced && self.rv.is_some() && self.written == self.rv.map(|rv| (rv, fingerprint))
    }

    /// Nobody changed the object since our last write (whatever it was).
    pub fn untouched(&self) -> bool {
        self.synced && self.rv.is_some() && self.written.map(|w| w.0) == self.rv
    }
}

impl DependencyIndex {
    fn kind_index(&mut self, kind: &ObjectKind) -> u16 {
        if let Some(i) = self.kinds.iter().position(|k| k.kind == *kind) {
            return i as u16;
        }
        // Kinds are a handful (ConfigMap, Secret, the generic-target kinds an admin allows); saturate rather
        // than wrap if a cluster ever names 65,536.
        let i = u16::try_from(self.kinds.len()).unwrap_or(u16::MAX);
        if usize::from(i) == self.kinds.len() {
            self.kinds.push(KindState {
                kind: kind.clone(),
                uses: 0,
                synced: false,
                list: 0,
            });
        }
        i
    }

    fn kind_state(&self, kind: &ObjectKind) -> Option<(u16, &KindState)> {
        self.kinds
            .iter()
            .enumerate()
            .find(|(_, k)| k.kind == *kind)
            .map(|(i, k)| (i as u16, k))
    }

    /// Records what `who` depends on now (replacing what it depended on before).
    pub fn set(&mut self, who: &Dependent, deps: &[Dependency]) {
        self.remove(who);
        for d in deps {
            self.add(who, d);
        }
    }

    /// Adds one dependency of `who` (nothing if it has it already). Whether it is new.
    pub fn add(&mut self, who: &Dependent, d: &Dependency) -> bool {
        let id = id_of(&d.object);
        let mine = self.of.entry(who.clone()).or_default();
        if mine.contains(&(id, d.role)) {
            return false;
        }
        mine.push((id, d.role));
        let kind = self.kind_index(&d.object.kind);
        if let Some(k) = self.kinds.get_mut(usize::from(kind)) {
            k.uses = k.uses.saturating_add(1);
        }
        let e = self.objects.entry(id).or_insert_with(|| Entry {
            kind,
            rv: None,
            list: 0,
            written: None,
            dependents: SmallVec::new(),
            cached: None,
            changed: None,
        });
        e.dependents.push((who.clone(), d.role));
        true
    }

    /// Forgets `who`; objects nobody depends on any more are dropped (with their cached data).
    pub fn remove(&mut self, who: &Dependent) {
        let Some(mine) = self.of.remove(who) else { return };
        for (id, role) in mine {
            let Some(e) = self.objects.get_mut(&id) else { continue };
            e.dependents.retain(|(d, r)| !(d == who && *r == role));
            if let Some(k) = self.kinds.get_mut(usize::from(e.kind)) {
                k.uses = k.uses.saturating_sub(1);
            }
            if e.dependents.is_empty()
                && let Some(gone) = self.objects.remove(&id)
                && let Some(c) = gone.cached
            {
                self.cached_bytes = self.cached_bytes.saturating_sub(c.bytes);
            }
        }
    }

    /// The kinds something depends on (their watches must run).
    pub fn kinds(&self) -> Vec<ObjectKind> {
        self.kinds
            .iter()
            .filter(|k| k.uses > 0)
            .map(|k| k.kind.clone())
            .collect()
    }

    fn wake(e: &Entry) -> Vec<Dependent> {
        // One object may be read and written by the same dependent: each is woken once.
        let mut out: Vec<Dependent> = e.dependents.iter().map(|(d, _)| d.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The watch of `kind` shows the object at `version`; `listed`: in a (re)list rather than as a change. Returns
    /// whom to wake: the object's dependents when it changed (a new object seen after the first list, or a known
    /// one at another version), except for our own write of a target.
    pub fn observed(
        &mut self,
        kind: &ObjectKind,
        namespace: &str,
        name: &str,
        version: &str,
        listed: bool,
    ) -> Vec<Dependent> {
        let Some(e) = self.objects.get_mut(&id(kind, namespace, name)) else {
            return Vec::new();
        };
        let list = self.kinds.get(usize::from(e.kind)).map_or(0, |k| k.list);
        e.list = list;
        let now = rv(version);
        let before = e.rv.replace(now);
        if before == Some(now) {
            return Vec::new();
        }
        if let Some(c) = e.cached.take_if(|c| c.rv != now) {
            self.cached_bytes = self.cached_bytes.saturating_sub(c.bytes);
        }
        let ours = e.written.is_some_and(|(w, _)| w == now);
        let changed = before.is_some() || !listed;
        if ours || !changed {
            return Vec::new();
        }
        e.changed = Some(Instant::now());
        Self::wake(e)
    }

    /// The object was deleted: its dependents are woken.
    pub fn deleted(&mut self, kind: &ObjectKind, namespace: &str, name: &str) -> Vec<Dependent> {
        let Some(e) = self.objects.get_mut(&id(kind, namespace, name)) else {
            return Vec::new();
        };
        e.rv = None;
        e.changed = Some(Instant::now());
        if let Some(c) = e.cached.take() {
            self.cached_bytes = self.cached_bytes.saturating_sub(c.bytes);
        }
        Self::wake(e)
    }

    /// The watch of `kind` starts a (re)list.
    pub fn list_started(&mut self, kind: &ObjectKind) {
        let i = self.kind_index(kind);
        if let Some(k) = self.kinds.get_mut(usize::from(i)) {
            k.list = k.list.wrapping_add(1);
        }
    }

    /// The (re)list of `kind` is complete: objects it did not show were deleted while the watch was down (their
    /// dependents are woken); versions of this kind are known from now on.
    pub fn list_done(&mut self, kind: &ObjectKind) -> Vec<Dependent> {
        let i = self.kind_index(kind);
        let Some(k) = self.kinds.get_mut(usize::from(i)) else {
            return Vec::new();
        };
        k.synced = true;
        let list = k.list;
        let mut woken = Vec::new();
        let mut freed = 0usize;
        for e in self.objects.values_mut().filter(|e| e.kind == i && e.list != list) {
            if e.rv.take().is_some() {
                e.changed = Some(Instant::now());
                woken.extend(Self::wake(e));
            }
            if let Some(c) = e.cached.take() {
                freed = freed.saturating_add(c.bytes);
            }
        }
        self.cached_bytes = self.cached_bytes.saturating_sub(freed);
        woken.sort();
        woken.dedup();
        woken
    }

    /// A fingerprint of the versions of what `who` reads (its [`Role::Source`] dependencies) as the watches show
    /// them: it changes when one of them does. `None` when it reads nothing, or when a watch has not listed yet
    /// (the versions are not known).
    pub fn sources_fingerprint(&self, who: &Dependent) -> Option<u64> {
        self.fingerprint_with(who, &[])
    }

    /// The same fingerprint, with the versions a render actually read (`read`: object, version; `None`: it did not
    /// exist) in place of the watch's: what the render used, comparable with [`Self::sources_fingerprint`] later,
    /// and known even before the watch has listed. Sorted by object, so the order of reads does not matter.
    pub fn fingerprint_with(&self, who: &Dependent, read: &[(ObjectRef, Option<u64>)]) -> Option<u64> {
        let mine = self.of.get(who)?;
        let read: Vec<(Id, Option<u64>)> = read.iter().map(|(o, v)| (id_of(o), *v)).collect();
        let mut versions: Vec<(Id, Option<u64>)> = Vec::new();
        for (id, role) in mine {
            if *role != Role::Source {
                continue;
            }
            if let Some((_, v)) = read.iter().find(|(r, _)| r == id) {
                versions.push((*id, *v));
                continue;
            }
            let e = self.objects.get(id)?;
            if !self.kinds.get(usize::from(e.kind)).is_some_and(|k| k.synced) {
                return None;
            }
            versions.push((*id, e.rv));
        }
        if versions.is_empty() {
            return None;
        }
        versions.sort_unstable();
        versions.dedup();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        versions.hash(&mut h);
        Some(h.finish())
    }

    /// The last time the watches showed a change of something `who` reads ([`Role::Source`]), if any: a read
    /// shared from before then is stale.
    pub fn changed_at(&self, who: &Dependent) -> Option<Instant> {
        self.of
            .get(who)?
            .iter()
            .filter(|(_, role)| *role == Role::Source)
            .filter_map(|(id, _)| self.objects.get(id)?.changed)
            .max()
    }

    /// Whether `who` reads anything ([`Role::Source`] dependencies).
    pub fn reads_anything(&self, who: &Dependent) -> bool {
        self.of
            .get(who)
            .is_some_and(|mine| mine.iter().any(|(_, role)| *role == Role::Source))
    }

    /// The version of `o` the watch shows now.
    pub fn version(&self, o: &ObjectRef) -> Option<u64> {
        self.objects.get(&id_of(o))?.rv
    }

    /// We wrote the target object `o`: it is now at `version` with content `fingerprint`. The watch's echo of
    /// this version wakes nobody.
    pub fn wrote(&mut self, o: &ObjectRef, version: &str, fingerprint: u64) {
        if let Some(e) = self.objects.get_mut(&id_of(o)) {
            let v = rv(version);
            e.written = Some((v, fingerprint));
        }
    }

    /// What the index knows of the target object `o`.
    pub fn target(&self, o: &ObjectRef) -> TargetView {
        let synced = self.kind_state(&o.kind).is_some_and(|(_, k)| k.synced);
        match self.objects.get(&id_of(o)) {
            Some(e) => TargetView {
                synced,
                rv: e.rv,
                written: e.written,
            },
            None => TargetView {
                synced,
                ..Default::default()
            },
        }
    }

    /// The cached data of `o`, if it was read at the version the watch shows now.
    pub fn cached(&self, o: &ObjectRef) -> Option<Arc<Data>> {
        self.cached_at(o).map(|(_, d)| d)
    }

    /// The cached data of `o` and its version, if it was read at the version the watch shows now.
    pub fn cached_at(&self, o: &ObjectRef) -> Option<(u64, Arc<Data>)> {
        let e = self.objects.get(&id_of(o))?;
        let c = e.cached.as_ref()?;
        (Some(c.rv) == e.rv).then(|| (c.rv, c.data.clone()))
    }

    /// Keeps `data`, read from `o` at `version`, if something depends on `o` and it fits the budget.
    pub fn keep(&mut self, o: &ObjectRef, version: &str, data: Arc<Data>) {
        let Some(e) = self.objects.get_mut(&id_of(o)) else {
            return;
        };
        if let Some(old) = e.cached.take() {
            self.cached_bytes = self.cached_bytes.saturating_sub(old.bytes);
        }
        let bytes = data.iter().fold(64usize, |n, (k, v)| {
            n.saturating_add(k.len()).saturating_add(v.len()).saturating_add(64)
        });
        if self.cached_bytes.saturating_add(bytes) > CACHE_BUDGET {
            return;
        }
        self.cached_bytes = self.cached_bytes.saturating_add(bytes);
        e.cached = Some(Cached {
            rv: rv(version),
            data,
            bytes,
        });
    }

    /// Objects something depends on.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Bytes of cached data.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes
    }
}

/// The index behind a lock, as the [`crate::context::Context`] holds it.
#[derive(Default)]
pub struct Dependents {
    index: Mutex<DependencyIndex>,
    /// Kinds whose watch was started.
    started: Mutex<Vec<ObjectKind>>,
    /// The operator's shutdown token, for watches started on demand (set when the controllers start).
    stop: std::sync::OnceLock<tokio_util::sync::CancellationToken>,
}

impl Dependents {
    /// Watches started from now on stop with `stop`.
    pub fn set_stop(&self, stop: tokio_util::sync::CancellationToken) {
        let _ = self.stop.set(stop);
    }

    /// The shutdown token, once the controllers started.
    pub fn stop(&self) -> Option<tokio_util::sync::CancellationToken> {
        self.stop.get().cloned()
    }

    pub fn index(&self) -> MutexGuard<'_, DependencyIndex> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kinds that need a watch and have none yet; each is returned once (the caller starts it).
    pub fn to_start(&self) -> Vec<ObjectKind> {
        let needed = self.index().kinds();
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for k in needed {
            if !started.contains(&k) {
                started.push(k.clone());
                out.push(k);
            }
        }
        out
    }

    /// Marks `kind` as started by someone else (a watch that serves more than this index).
    pub fn claim(&self, kind: &ObjectKind) -> bool {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if started.contains(kind) {
            return false;
        }
        started.push(kind.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(name: &str) -> Dependent {
        Dependent::ExternalSecret(Key::new("app", name))
    }

    fn src(kind: ObjectKind, name: &str) -> Dependency {
        Dependency {
            object: ObjectRef::new(kind, "app", name),
            role: Role::Source,
        }
    }

    fn target(name: &str) -> Dependency {
        Dependency {
            object: ObjectRef::new(ObjectKind::ConfigMap, "app", name),
            role: Role::Target,
        }
    }

    const CM: ObjectKind = ObjectKind::ConfigMap;

    #[test]
    fn a_change_is_timed_so_reads_from_before_it_are_not_shared() {
        let mut idx = DependencyIndex::default();
        idx.set(&es("a"), &[src(CM, "doc"), target("out")]);
        idx.list_started(&CM);
        idx.observed(&CM, "app", "doc", "10", true);
        idx.observed(&CM, "app", "out", "11", true);
        idx.list_done(&CM);
        // Listing is no change.
        assert_eq!(idx.changed_at(&es("a")), None);
        let before = Instant::now();
        idx.observed(&CM, "app", "doc", "12", false);
        let at = idx.changed_at(&es("a")).expect("changed");
        assert!(at >= before);
        // A target's changes are not what it reads; nor is an unchanged version.
        idx.observed(&CM, "app", "out", "13", false);
        idx.observed(&CM, "app", "doc", "12", false);
        assert_eq!(idx.changed_at(&es("a")), Some(at));
        assert!(idx.deleted(&CM, "app", "doc").contains(&es("a")));
        assert!(idx.changed_at(&es("a")).is_some_and(|t| t >= at));
        assert_eq!(idx.changed_at(&es("nobody")), None);
    }

    #[test]
    fn a_changed_source_wakes_its_dependents_and_only_them() {
        let mut idx = DependencyIndex::default();
        idx.set(&es("a"), &[src(CM, "tpl")]);
        idx.set(&es("b"), &[src(CM, "tpl"), src(ObjectKind::Secret, "tpl")]);
        idx.set(&es("c"), &[src(CM, "other")]);
        assert_eq!(idx.kinds(), vec![CM, ObjectKind::Secret]);
        // The first list records versions and wakes nobody; unknown objects cost nothing.
        idx.list_started(&CM);
        assert!(idx.observed(&CM, "app", "tpl", "10", true).is_empty());
        assert!(idx.observed(&CM, "app", "unrelated", "11", true).is_empty());
        assert!(idx.list_done(&CM).is_empty());
        // The same version again (a resync) is no change.
        assert!(idx.observed(&CM, "app", "tpl", "10", false).is_empty());
        assert_eq!(idx.observed(&CM, "app", "tpl", "12", false), vec![es("a"), es("b")]);
        // Same name in another namespace or of another kind: nobody.
        assert!(idx.observed(&CM, "other", "tpl", "13", false).is_empty());
        // Created after the list (a missing template source appears): its dependents are woken.
        assert_eq!(idx.observed(&CM, "app", "other", "14", false), vec![es("c")]);
        assert_eq!(idx.deleted(&CM, "app", "other"), vec![es("c")]);
        assert!(idx.deleted(&CM, "app", "unrelated").is_empty());
    }

    #[test]
    fn the_sources_fingerprint_follows_versions_once_listed() {
        let mut idx = DependencyIndex::default();
        idx.set(&es("a"), &[src(CM, "tpl"), target("out")]);
        idx.set(&es("none"), &[target("out2")]);
        // Unknown until the watch listed.
        assert_eq!(idx.sources_fingerprint(&es("a")), None);
        idx.list_started(&CM);
        idx.observed(&CM, "app", "tpl", "1", true);
        idx.list_done(&CM);
        let f1 = idx.sources_fingerprint(&es("a")).unwrap();
        // A target's version is not part of it.
        idx.observed(&CM, "app", "out", "2", false);
        assert_eq!(idx.sources_fingerprint(&es("a")), Some(f1));
        idx.observed(&CM, "app", "tpl", "3", false);
        assert_ne!(idx.sources_fingerprint(&es("a")), Some(f1));
        // Reads nothing, or unknown: none.
        assert_eq!(idx.sources_fingerprint(&es("none")), None);
        assert_eq!(idx.sources_fingerprint(&es("nobody")), None);
    }

    #[test]
    fn what_a_render_read_compares_with_what_the_watch_shows_later() {
        let mut idx = DependencyIndex::default();
        idx.set(&es("a"), &[src(CM, "tpl"), src(ObjectKind::Secret, "s")]);
        let tpl = ObjectRef::new(CM, "app", "tpl");
        let s = ObjectRef::new(ObjectKind::Secret, "app", "s");
        // Rendered before any watch listed: the versions read are the fingerprint (the order of reads is not).
        let read = idx.fingerprint_with(&es("a"), &[(s.clone(), None), (tpl.clone(), Some(7))]);
        assert!(read.is_some());
        assert_eq!(
            read,
            idx.fingerprint_with(&es("a"), &[(tpl.clone(), Some(7)), (s.clone(), None)])
        );
        assert_eq!(idx.sources_fingerprint(&es("a")), None);
        // The watches list: the ConfigMap at the version read, the Secret still missing: unchanged.
        idx.list_started(&CM);
        idx.observed(&CM, "app", "tpl", "7", true);
        idx.list_done(&CM);
        assert_eq!(
            idx.sources_fingerprint(&es("a")),
            None,
            "the Secret watch has not listed"
        );
        idx.list_started(&ObjectKind::Secret);
        idx.list_done(&ObjectKind::Secret);
        assert_eq!(idx.sources_fingerprint(&es("a")), read);
        // A later change is a change.
        idx.observed(&CM, "app", "tpl", "8", false);
        assert_ne!(idx.sources_fingerprint(&es("a")), read);
        assert_eq!(idx.version(&tpl), Some(8));
    }

    #[test]
    fn our_own_write_of_a_target_wakes_nobody_a_foreign_one_does() {
        let mut idx = DependencyIndex::default();
        idx.set(&es("a"), &[target("out")]);
        idx.list_started(&CM);
        idx.list_done(&CM);
        let out = ObjectRef::new(CM, "app", "out");
        assert!(!idx.target(&out).untouched());
        idx.wrote(&out, "5", 42);
        assert!(idx.observed(&CM, "app", "out", "5", false).is_empty());
        let v = idx.target(&out);
        assert!(v.unchanged_since_write(42) && v.untouched());
        assert!(!v.unchanged_since_write(43));
        assert_eq!(idx.observed(&CM, "app", "out", "6", false), vec![es("a")]);
        assert!(!idx.target(&out).untouched());
        assert_eq!(idx.deleted(&CM, "app", "out"), vec![es("a")]);
        assert_eq!(idx.target(&out).rv, None);
    }

    #[test]
    fn a_relist_wakes_the_dependents_of_what_changed_or_went_while_the_watch_was_down() {
        let mut idx = DependencyIndex::default();
        idx.set(&es("a"), &[src(CM, "x")]);
        idx.set(&es("b"), &[src(CM, "y")]);
        idx.set(&es("c"), &[src(CM, "z")]);
        idx.list_started(&CM);
        for n in ["x", "y", "z"] {
            idx.observed(&CM, "app", n, "1", true);
        }
        idx.list_done(&CM);
        idx.list_started(&CM);
        assert!(idx.observed(&CM, "app", "x", "1", true).is_empty());
        assert_eq!(idx.observed(&CM, "app", "y", "2", true), vec![es("b")]);
        assert_eq!(idx.list_done(&CM), vec![es("c")]);
    }

    #[test]
    fn removing_a_dependent_forgets_objects_nobody_uses() {
        let mut idx = DependencyIndex::default();
        idx.set(&es("a"), &[src(CM, "tpl")]);
        idx.set(&es("b"), &[src(CM, "tpl")]);
        assert_eq!(idx.len(), 1);
        idx.remove(&es("a"));
        assert_eq!(idx.len(), 1);
        // Setting again replaces (no duplicate wake).
        idx.set(&es("b"), &[src(CM, "tpl")]);
        idx.list_started(&CM);
        idx.list_done(&CM);
        assert_eq!(idx.observed(&CM, "app", "tpl", "1", false), vec![es("b")]);
        idx.remove(&es("b"));
        assert!(idx.is_empty());
        assert!(idx.kinds().is_empty());
        assert!(idx.observed(&CM, "app", "tpl", "2", false).is_empty());
        // A PushSecret of the same name is another dependent.
        let ps = Dependent::PushSecret(Key::new("app", "a"));
        idx.set(&ps, &[src(CM, "tpl")]);
        assert_eq!(idx.observed(&CM, "app", "tpl", "3", false), vec![ps]);
    }

    #[test]
    fn cached_data_answers_only_at_the_version_the_watch_shows_and_within_the_budget() {
        let mut idx = DependencyIndex::default();
        let tpl = ObjectRef::new(CM, "app", "tpl");
        let data = Arc::new(Data::from([("k".to_string(), b"{{ .v }}".to_vec())]));
        // Nobody depends on it: not kept.
        idx.keep(&tpl, "1", data.clone());
        assert!(idx.cached(&tpl).is_none());
        idx.set(&es("a"), &[src(CM, "tpl")]);
        idx.keep(&tpl, "1", data.clone());
        // The watch has not shown version 1 yet.
        assert!(idx.cached(&tpl).is_none());
        idx.observed(&CM, "app", "tpl", "1", true);
        assert_eq!(idx.cached(&tpl).as_deref(), Some(&*data));
        assert!(idx.cached_bytes() > 0);
        // A new version drops it.
        idx.observed(&CM, "app", "tpl", "2", false);
        assert!(idx.cached(&tpl).is_none());
        assert_eq!(idx.cached_bytes(), 0);
        // Too big for the budget: not kept (the render reads it).
        let big = Arc::new(Data::from([("k".to_string(), vec![b'x'; CACHE_BUDGET])]));
        idx.keep(&tpl, "2", big);
        assert!(idx.cached(&tpl).is_none());
        assert_eq!(idx.cached_bytes(), 0);
        idx.keep(&tpl, "2", data);
        assert!(idx.cached(&tpl).is_some());
        idx.remove(&es("a"));
        assert_eq!(idx.cached_bytes(), 0);
    }
}
