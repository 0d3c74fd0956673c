//! The allocation budget of one render, and the only ways to build the heap parts of a [`Value`](crate::Value).
//!
//! A render (all the templates of one ExternalSecret, `templateFrom` included) shares one [`Budget`]. Every byte the
//! engine allocates for a value is charged to it *before* the allocation: strings grow through [`Buf`], lists
//! through [`ListBuf`], maps through [`Map::insert`], times and versions through their constructors. The payload
//! types ([`Str`], [`List`], [`Map`], [`StrMap`]) have private fields, so code in this crate cannot make a new
//! heap value without going through a charging constructor: a new function cannot forget the budget.
//!
//! The budget is cumulative: memory freed during the render is not given back. That bounds the peak memory of a
//! render and, as every allocation costs, also the allocation work a loop can do.
use std::cell::{Cell, Ref, RefCell};
use std::collections::BTreeMap;
use std::ops::{Deref, RangeBounds};
use std::rc::Rc;

use bytes::Bytes;

use crate::value::Value;

/// The default [`Budget`]: 40 MiB per render. syncret renders up to `--concurrent` (default 4) ExternalSecrets at
/// once, so hostile templates can hold at most 4 × 40 MiB = 160 MiB, with the operator's own ~60 MB at 10,000
/// ExternalSecrets beside it: under the Helm chart's 256 MiB memory limit. A legitimate render is far smaller (its
/// output must fit in a Kubernetes Secret, 1 MiB in all); the one large need is `derivePassword`, whose scrypt
/// scratch space is 32 MiB while it runs.
pub const DEFAULT_BUDGET: usize = 40 << 20;

/// What one entry of a map costs besides its key and value bytes (tree node share, key handle, value slot).
pub const MAP_ENTRY_COST: usize = 96;
/// What a map costs before any entry (the shared cell and the empty tree).
pub const MAP_COST: usize = 64;
/// What one element slot of a list costs.
pub const LIST_SLOT_COST: usize = std::mem::size_of::<Value>();

/// The memory one render may allocate, shared by every template executed in it.
///
/// Cheap to clone (clones share the count); not `Send`: a render runs on one thread.
///
/// ```
/// use syncret_template::{Budget, Delims, Template, Value};
/// use std::collections::BTreeMap;
///
/// let budget = Budget::new(1 << 20);
/// let data = Value::from_data_in(&BTreeMap::from([("user".to_string(), b"admin".to_vec())]), &budget).unwrap();
/// let t = Template::parse("greeting", "hello {{ .user }}", &Delims::default()).unwrap();
/// assert_eq!(t.execute_in(&data, &budget).unwrap(), b"hello admin");
/// assert!(budget.used() > 0);
///
/// // The same budget is exhausted by a later template of the same render.
/// let big = Template::parse("big", r#"{{ repeat 2000000 "x" }}"#, &Delims::default()).unwrap();
/// let err = big.execute_in(&data, &budget).unwrap_err();
/// assert!(err.message.contains("memory budget"), "{}", err.message);
/// ```
#[derive(Clone, Debug)]
pub struct Budget(Rc<Counter>);

#[derive(Debug)]
struct Counter {
    limit: usize,
    used: Cell<usize>,
}

/// The budget has no room for an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the render's memory budget of {limit} bytes is exhausted (all templates of one render share it)")]
pub struct Exhausted {
    /// The budget's size in bytes.
    pub limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget(Rc::new(Counter {
            limit,
            used: Cell::new(0),
        }))
    }

    /// The size of the budget in bytes.
    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// Bytes charged so far.
    pub fn used(&self) -> usize {
        self.0.used.get()
    }

    /// Charge `n` bytes, or fail (charging nothing) when they do not fit.
    pub fn charge(&self, n: usize) -> Result<(), Exhausted> {
        let used = self.0.used.get();
        match used.checked_add(n) {
            Some(total) if total <= self.0.limit => {
                self.0.used.set(total);
                Ok(())
            }
            _ => Err(Exhausted { limit: self.0.limit }),
        }
    }

    /// Charge `count × each` bytes.
    pub fn charge_n(&self, count: usize, each: usize) -> Result<(), Exhausted> {
        self.charge(count.checked_mul(each).ok_or(Exhausted { limit: self.0.limit })?)
    }

    fn exhausted(&self) -> Exhausted {
        Exhausted { limit: self.0.limit }
    }

    /// Charge `n` bytes of scratch space a function allocates and frees before it returns (scrypt's 32 MiB): the
    /// charge is given back when the guard drops, so it bounds the peak without counting against later values.
    pub fn scratch(&self, n: usize) -> Result<Scratch, Exhausted> {
        self.charge(n)?;
        Ok(Scratch {
            budget: self.clone(),
            n,
        })
    }
}

/// Scratch space charged to a [`Budget`] while held ([`Budget::scratch`]).
#[derive(Debug)]
pub struct Scratch {
    budget: Budget,
    n: usize,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let used = self.budget.0.used.get();
        self.budget.0.used.set(used.saturating_sub(self.n));
    }
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::new(DEFAULT_BUDGET)
    }
}

/// A Go `string`: arbitrary bytes, shared (cloning and slicing allocate nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str(Bytes);

impl Str {
    /// A string of static bytes (allocates nothing).
    pub const fn from_static(b: &'static [u8]) -> Str {
        Str(Bytes::from_static(b))
    }

    /// Shares bytes that are already paid for: template text, and bytes of a value already charged. Allocates
    /// nothing; never use it on bytes built for a new value (build those in a [`Buf`]).
    pub(crate) fn shared(b: Bytes) -> Str {
        Str(b)
    }

    /// The underlying shared bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// A substring sharing these bytes.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Str {
        Str(self.0.slice(range))
    }

    /// A substring given as a subslice of `self` (e.g. from `trim`), sharing these bytes.
    pub fn slice_ref(&self, sub: &[u8]) -> Str {
        if sub.is_empty() {
            return Str::default();
        }
        Str(self.0.slice_ref(sub))
    }
}

impl Deref for Str {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A byte buffer that charges its [`Budget`] before every allocation. Errors are sticky, as in Go's `bufio`: once
/// the budget refuses, writes are dropped and the buffer reports [`Exhausted`] when finished ([`Buf::ok`],
/// [`Buf::into_str`]). Loops that write a lot check [`Buf::failed`] to stop early.
#[derive(Debug)]
pub struct Buf {
    budget: Budget,
    v: Vec<u8>,
    failed: bool,
}

impl Buf {
    /// An empty buffer (allocates nothing yet).
    pub fn new(budget: &Budget) -> Buf {
        Buf {
            budget: budget.clone(),
            v: Vec::new(),
            failed: false,
        }
    }

    /// An empty buffer with room for `n` bytes, charged now.
    pub fn with_capacity(budget: &Budget, n: usize) -> Result<Buf, Exhausted> {
        let mut b = Buf::new(budget);
        if !b.reserve(n) {
            return Err(budget.exhausted());
        }
        Ok(b)
    }

    /// A buffer holding a copy of `bytes`.
    pub fn copy_of(budget: &Budget, bytes: &[u8]) -> Result<Buf, Exhausted> {
        let mut b = Buf::with_capacity(budget, bytes.len())?;
        b.extend_from_slice(bytes);
        Ok(b)
    }

    /// Make room for `additional` more bytes, charging the new capacity first. False (and sticky) when the
    /// budget has no room.
    pub fn reserve(&mut self, additional: usize) -> bool {
        if self.failed {
            return false;
        }
        let Some(need) = self.v.len().checked_add(additional) else {
            self.failed = true;
            return false;
        };
        let cap = self.v.capacity();
        if need <= cap {
            return true;
        }
        // Grow geometrically when the budget allows it, else exactly.
        let doubled = need.max(cap.saturating_mul(2)).max(32);
        let new_cap = if self.budget.charge(doubled - cap).is_ok() {
            doubled
        } else if self.budget.charge(need - cap).is_ok() {
            need
        } else {
            self.failed = true;
            return false;
        };
        self.v.reserve_exact(new_cap - self.v.len());
        true
    }

    pub fn push(&mut self, b: u8) {
        if self.reserve(1) {
            self.v.push(b);
        }
    }

    pub fn extend_from_slice(&mut self, s: &[u8]) {
        if self.reserve(s.len()) {
            self.v.extend_from_slice(s);
        }
    }

    pub fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    /// Append one character as UTF-8.
    pub fn push_char(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        self.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
    }

    /// Append `n` copies of `b`.
    pub fn fill(&mut self, b: u8, n: usize) {
        if self.reserve(n) {
            self.v.resize(self.v.len() + n, b);
        }
    }

    /// Append bytes from an iterator, stopping at the first refusal.
    pub fn extend<I: IntoIterator<Item = u8>>(&mut self, it: I) {
        let it = it.into_iter();
        self.reserve(it.size_hint().0);
        for b in it {
            if self.failed {
                return;
            }
            self.push(b);
        }
    }

    /// Run `f` on the underlying vector after reserving (and charging) `max_growth` bytes, for encoders of a
    /// library that append to a `Vec` (base64, hex). Growth beyond `max_growth` is charged afterwards.
    pub fn write_with(&mut self, max_growth: usize, f: impl FnOnce(&mut Vec<u8>)) {
        if !self.reserve(max_growth) {
            return;
        }
        let cap = self.v.capacity();
        f(&mut self.v);
        let grown = self.v.capacity().saturating_sub(cap);
        if grown > 0 && self.budget.charge(grown).is_err() {
            self.failed = true;
            self.v.clear();
        }
    }

    /// The budget has refused a write.
    pub fn failed(&self) -> bool {
        self.failed
    }

    pub fn ok(&self) -> Result<(), Exhausted> {
        if self.failed {
            Err(self.budget.exhausted())
        } else {
            Ok(())
        }
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.v
    }

    pub fn truncate(&mut self, len: usize) {
        self.v.truncate(len);
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    pub fn into_vec(self) -> Result<Vec<u8>, Exhausted> {
        self.ok()?;
        Ok(self.v)
    }

    pub fn into_str(self) -> Result<Str, Exhausted> {
        self.ok()?;
        Ok(Str(Bytes::from(self.v)))
    }

    pub fn into_value(self) -> Result<Value, Exhausted> {
        Ok(Value::Str(self.into_str()?))
    }
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        if self.failed { Err(std::fmt::Error) } else { Ok(()) }
    }
}

/// A Go slice's elements, shared.
#[derive(Clone, Debug, Default)]
pub struct List(Rc<Vec<Value>>);

impl List {
    /// The empty list (allocates nothing).
    pub fn empty() -> List {
        List::default()
    }

    pub fn ptr_eq(a: &List, b: &List) -> bool {
        Rc::ptr_eq(&a.0, &b.0)
    }

    /// The elements, when no other value shares them (for dropping deep lists iteratively).
    pub(crate) fn get_mut(&mut self) -> Option<&mut Vec<Value>> {
        Rc::get_mut(&mut self.0)
    }
}

impl Deref for List {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        &self.0
    }
}

/// Builds a [`List`], charging every slot before it is allocated.
#[derive(Debug)]
pub struct ListBuf {
    budget: Budget,
    items: Vec<Value>,
}

impl ListBuf {
    pub fn new(budget: &Budget) -> ListBuf {
        ListBuf {
            budget: budget.clone(),
            items: Vec::new(),
        }
    }

    /// Room for `n` elements, charged now.
    pub fn with_capacity(budget: &Budget, n: usize) -> Result<ListBuf, Exhausted> {
        let mut l = ListBuf::new(budget);
        l.reserve(n)?;
        Ok(l)
    }

    pub fn reserve(&mut self, additional: usize) -> Result<(), Exhausted> {
        let need = self
            .items
            .len()
            .checked_add(additional)
            .ok_or(self.budget.exhausted())?;
        let cap = self.items.capacity();
        if need <= cap {
            return Ok(());
        }
        let new_cap = need.max(cap.saturating_mul(2)).max(4);
        let new_cap = if self.budget.charge_n(new_cap - cap, LIST_SLOT_COST).is_ok() {
            new_cap
        } else {
            self.budget.charge_n(need - cap, LIST_SLOT_COST)?;
            need
        };
        self.items.reserve_exact(new_cap - self.items.len());
        Ok(())
    }

    pub fn push(&mut self, v: Value) -> Result<(), Exhausted> {
        self.reserve(1)?;
        self.items.push(v);
        Ok(())
    }

    /// Append clones of `items` (cloning a value allocates nothing: heap parts are shared).
    pub fn extend_from_slice(&mut self, items: &[Value]) -> Result<(), Exhausted> {
        self.reserve(items.len())?;
        self.items.extend_from_slice(items);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn as_slice(&self) -> &[Value] {
        &self.items
    }

    pub fn as_mut_slice(&mut self) -> &mut [Value] {
        &mut self.items
    }

    pub fn finish(self) -> List {
        List(Rc::new(self.items))
    }
}

/// A Go `map[string]interface {}`: shared and mutable (sprig's `set`, `unset` and `merge` change it in place).
#[derive(Clone, Debug)]
pub struct Map(Rc<RefCell<BTreeMap<Bytes, Value>>>);

/// The map is being changed while it is read (a value that contains itself, e.g. `merge $d $d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Map {
    /// An empty map, charged.
    pub fn new(budget: &Budget) -> Result<Map, Exhausted> {
        budget.charge(MAP_COST)?;
        Ok(Map(Rc::new(RefCell::new(BTreeMap::new()))))
    }

    /// Set `key` to `value`. A new entry is charged (its bookkeeping; the key's bytes are charged where they were
    /// built).
    pub fn insert(&self, budget: &Budget, key: Bytes, value: Value) -> Result<Result<(), Busy>, Exhausted> {
        let Ok(mut m) = self.0.try_borrow_mut() else {
            return Ok(Err(Busy));
        };
        if let Some(slot) = m.get_mut(&key) {
            *slot = value;
            return Ok(Ok(()));
        }
        budget.charge(MAP_ENTRY_COST)?;
        m.insert(key, value);
        Ok(Ok(()))
    }

    pub fn remove(&self, key: &[u8]) -> Result<Option<Value>, Busy> {
        Ok(self.0.try_borrow_mut().map_err(|_| Busy)?.remove(key))
    }

    /// Read access; `Err` while the map is being changed.
    pub fn borrow(&self) -> Result<Ref<'_, BTreeMap<Bytes, Value>>, Busy> {
        self.0.try_borrow().map_err(|_| Busy)
    }

    pub fn get(&self, key: &[u8]) -> Option<Value> {
        self.0.try_borrow().ok().and_then(|m| m.get(key).cloned())
    }

    pub fn len(&self) -> usize {
        self.0.try_borrow().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn ptr_eq(a: &Map, b: &Map) -> bool {
        Rc::ptr_eq(&a.0, &b.0)
    }

    pub(crate) fn downgrade(&self) -> std::rc::Weak<RefCell<BTreeMap<Bytes, Value>>> {
        Rc::downgrade(&self.0)
    }

    /// Take the entries out when this is the only handle (for dropping deep maps iteratively).
    pub(crate) fn take_if_unique(&mut self) -> Option<BTreeMap<Bytes, Value>> {
        if Rc::strong_count(&self.0) != 1 {
            return None;
        }
        self.0.try_borrow_mut().ok().map(|mut m| std::mem::take(&mut *m))
    }
}

/// A Go `map[string]string` (the data context, sprig's `split`): immutable, shared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrMap(Rc<BTreeMap<Bytes, Bytes>>);

impl StrMap {
    /// Build from entries whose keys and values are already paid for; charges the entries' bookkeeping.
    pub fn from_entries(budget: &Budget, entries: Vec<(Str, Str)>) -> Result<StrMap, Exhausted> {
        budget.charge_n(entries.len(), MAP_ENTRY_COST)?;
        Ok(StrMap(Rc::new(entries.into_iter().map(|(k, v)| (k.0, v.0)).collect())))
    }
}

impl Deref for StrMap {
    type Target = BTreeMap<Bytes, Bytes>;
    fn deref(&self) -> &BTreeMap<Bytes, Bytes> {
        &self.0
    }
}

/// A value of fixed size kept behind a shared pointer (`time.Time`, `*semver.Version`), charged when made.
#[derive(Clone, Debug, PartialEq)]
pub struct Boxed<T>(Rc<T>);

impl<T> Boxed<T> {
    pub fn new(budget: &Budget, v: T) -> Result<Boxed<T>, Exhausted> {
        budget.charge(std::mem::size_of::<T>().saturating_add(16))?;
        Ok(Boxed(Rc::new(v)))
    }
}

impl<T> Deref for Boxed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buf_charges_before_growing_and_fails_sticky() {
        let b = Budget::new(100);
        let mut buf = Buf::new(&b);
        buf.extend_from_slice(&[1; 40]);
        assert!(!buf.failed());
        let charged = b.used();
        assert!((40..=100).contains(&charged), "{charged}");
        buf.extend_from_slice(&[2; 200]);
        assert!(buf.failed());
        assert_eq!(b.used(), charged, "a refused write charges nothing");
        assert!(buf.capacity_is_at_most(100));
        buf.push(3);
        assert_eq!(buf.len(), 40, "writes after a refusal are dropped");
        assert_eq!(buf.into_str(), Err(Exhausted { limit: 100 }));
    }

    #[test]
    fn exact_growth_when_doubling_does_not_fit() {
        let b = Budget::new(100);
        let mut buf = Buf::new(&b);
        buf.extend_from_slice(&[1; 60]);
        buf.extend_from_slice(&[1; 40]);
        assert!(!buf.failed(), "100 bytes fit a budget of 100");
        assert_eq!(b.used(), 100);
        assert_eq!(buf.into_str().unwrap().len(), 100);
    }

    #[test]
    fn lists_and_maps_charge_per_element() {
        let b = Budget::new(10 * LIST_SLOT_COST);
        let mut l = ListBuf::new(&b);
        for _ in 0..10 {
            l.push(Value::Int(1)).unwrap();
        }
        assert!(l.push(Value::Int(1)).is_err());
        let b = Budget::new(MAP_COST + 2 * MAP_ENTRY_COST);
        let m = Map::new(&b).unwrap();
        m.insert(&b, Bytes::from_static(b"a"), Value::Nil).unwrap().unwrap();
        m.insert(&b, Bytes::from_static(b"a"), Value::Int(1)).unwrap().unwrap();
        m.insert(&b, Bytes::from_static(b"b"), Value::Nil).unwrap().unwrap();
        assert!(m.insert(&b, Bytes::from_static(b"c"), Value::Nil).is_err());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn charges_cannot_overflow() {
        let b = Budget::new(usize::MAX);
        b.charge(usize::MAX - 1).unwrap();
        assert!(b.charge(2).is_err());
        assert!(b.charge_n(usize::MAX, 2).is_err());
    }

    impl Buf {
        fn capacity_is_at_most(&self, n: usize) -> bool {
            self.v.capacity() <= n
        }
    }
}
