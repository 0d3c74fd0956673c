//! A de-duplicating, fair work queue with two lanes and delayed items; synchronous and I/O-free.
//!
//! - **Fast lane**: work caused by a change (an ExternalSecret created or edited, its store turned Ready, its
//!   Secret edited). New ExternalSecrets never wait behind a refresh wave (ESO #2837, #2878, #5045).
//! - **Slow lane**: periodic refreshes and error retries.
//! - **Fair turns**: within a lane, tenants (namespaces: [`Tenant::tenant`]) take turns, one item each, so a
//!   namespace with 5,000 queued items does not delay another namespace's one item by 5,000 reconciles.
//! - **In-flight limit per tenant**: a tenant holds at most `tenant_limit` items in processing while other
//!   tenants have items waiting; its further items wait (in order) and the others go ahead. One namespace whose
//!   reconciles are slow cannot take every worker from the others. A *soft* limit ([`Limit::Soft`]) lets a tenant
//!   use idle workers when no other tenant has work (a single busy namespace keeps the whole pool); a *strict* one
//!   ([`Limit::Strict`]) never does.
//! - A key is queued at most once; adding a queued key to the fast lane promotes it. A key being processed is
//!   never handed out twice: adding it marks it dirty and it is re-queued when [`WorkQueue::done`] is called.
//! - Delayed items ([`WorkQueue::add_after`]) keep only the earliest due time per key.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

/// Which lane an item waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    Fast,
    Slow,
}

impl Lane {
    fn most_urgent(self, other: Lane) -> Lane {
        // Fast < Slow in Ord: the more urgent lane wins.
        std::cmp::min(self, other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Fast => "fast",
            Lane::Slow => "slow",
        }
    }
}

/// The in-flight limit per tenant (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Past the limit only when no other tenant has work waiting.
    Soft(usize),
    /// Never past the limit.
    Strict(usize),
}

/// Who an item belongs to, for fair turns and the in-flight limit: its namespace ("" for cluster-scoped
/// objects, which share one turn).
pub trait Tenant {
    fn tenant(&self) -> &Arc<str>;
}

/// One lane: per-tenant FIFOs and the ring of tenants with queued items, served round-robin.
struct FairLane<K> {
    by_tenant: HashMap<Arc<str>, VecDeque<K>>,
    ring: VecDeque<Arc<str>>,
    len: usize,
}

impl<K: Clone + Eq + Tenant> FairLane<K> {
    fn new() -> Self {
        Self {
            by_tenant: HashMap::new(),
            ring: VecDeque::new(),
            len: 0,
        }
    }

    fn push(&mut self, key: K) {
        let t = key.tenant().clone();
        let q = self.by_tenant.entry(t.clone()).or_default();
        if q.is_empty() {
            self.ring.push_back(t);
        }
        q.push_back(key);
        self.len += 1;
    }

    fn remove(&mut self, key: &K) {
        let t = key.tenant();
        let Some(q) = self.by_tenant.get_mut(t) else { return };
        let before = q.len();
        q.retain(|k| k != key);
        self.len -= before - q.len();
        if q.is_empty() {
            self.by_tenant.remove(t);
            self.ring.retain(|r| r != t);
        }
    }

    /// The next item of the first tenant in turn that `eligible` allows; that tenant goes to the back of the
    /// ring (if it has more), the skipped ones keep their place.
    fn pop(&mut self, eligible: impl Fn(&Arc<str>) -> bool) -> Option<K> {
        let pos = self.ring.iter().position(eligible)?;
        let t = self.ring.remove(pos)?;
        let q = self.by_tenant.get_mut(&t)?;
        let key = q.pop_front()?;
        self.len -= 1;
        if q.is_empty() {
            self.by_tenant.remove(&t);
        } else {
            self.ring.push_back(t);
        }
        Some(key)
    }
}

/// A delayed key in the heap, ordered by due time (then by when it was scheduled).
struct Due<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Due<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<K> Eq for Due<K> {}

impl<K> PartialOrd for Due<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Due<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// See the module docs.
pub struct WorkQueue<K> {
    fast: FairLane<K>,
    slow: FairLane<K>,
    /// Keys currently in `fast` or `slow`, and which.
    queued: HashMap<K, Lane>,
    processing: HashSet<K>,
    /// Items in processing per tenant (entries removed at zero).
    tenant_in_flight: HashMap<Arc<str>, usize>,
    /// At most this many items of one tenant in processing at once (0: no limit).
    tenant_limit: usize,
    /// Whether a tenant may go past its limit when nobody else has work.
    soft: bool,
    /// Keys added while being processed: re-queued on `done`.
    dirty: HashMap<K, Lane>,
    /// Earliest due time per delayed key; the heap may hold outdated entries, checked against this map.
    delayed: HashMap<K, (Instant, Lane)>,
    heap: BinaryHeap<Reverse<Due<K>>>,
    seq: u64,
    /// After this many fast items in a row, one slow item goes first, so refreshes cannot starve.
    fast_burst: u32,
    fast_run: u32,
}

impl<K: Clone + Eq + Hash + Tenant> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new(Limit::Strict(0))
    }
}

impl<K: Clone + Eq + Hash + Tenant> WorkQueue<K> {
    /// A queue whose tenants may each hold `limit` items in processing.
    pub fn new(limit: Limit) -> Self {
        let (tenant_limit, soft) = match limit {
            Limit::Soft(n) => (n, true),
            Limit::Strict(n) => (n, false),
        };
        Self {
            fast: FairLane::new(),
            slow: FairLane::new(),
            queued: HashMap::new(),
            processing: HashSet::new(),
            tenant_in_flight: HashMap::new(),
            tenant_limit,
            soft,
            dirty: HashMap::new(),
            delayed: HashMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            fast_burst: 16,
            fast_run: 0,
        }
    }

    /// Queues `key` now.
    pub fn add(&mut self, key: K, lane: Lane) {
        self.delayed.remove(&key);
        if self.processing.contains(&key) {
            let entry = self.dirty.entry(key).or_insert(lane);
            *entry = entry.most_urgent(lane);
            return;
        }
        match self.queued.get(&key).copied() {
            Some(Lane::Slow) if lane == Lane::Fast => {
                self.slow.remove(&key);
                self.fast.push(key.clone());
                self.queued.insert(key, Lane::Fast);
            }
            Some(_) => {}
            None => {
                match lane {
                    Lane::Fast => self.fast.push(key.clone()),
                    Lane::Slow => self.slow.push(key.clone()),
                }
                self.queued.insert(key, lane);
            }
        }
    }

    /// Queues `key` at `at` (or earlier, if it is already due earlier). No-op if it is already queued.
    pub fn add_after(&mut self, key: K, lane: Lane, at: Instant) {
        if self.queued.contains_key(&key) || self.dirty.contains_key(&key) {
            return;
        }
        if let Some((due, l)) = self.delayed.get_mut(&key) {
            if at < *due {
                *due = at;
            } else {
                *l = l.most_urgent(lane);
                return;
            }
            *l = l.most_urgent(lane);
        } else {
            self.delayed.insert(key.clone(), (at, lane));
        }
        self.seq = self.seq.wrapping_add(1);
        self.heap.push(Reverse(Due { at, seq: self.seq, key }));
    }

    /// Moves every delayed item due at `now` into its lane.
    pub fn promote_due(&mut self, now: Instant) {
        while self.heap.peek().is_some_and(|d| d.0.at <= now) {
            let Some(Reverse(Due { at, key, .. })) = self.heap.pop() else {
                break;
            };
            match self.delayed.get(&key).copied() {
                Some((due, lane)) if due == at => {
                    self.delayed.remove(&key);
                    self.add(key, lane);
                }
                _ => {} // superseded by an earlier schedule, or the key was added/forgotten meanwhile
            }
        }
    }

    fn tenant_has_room(&self, t: &Arc<str>) -> bool {
        self.tenant_limit == 0 || self.tenant_in_flight.get(t).copied().unwrap_or(0) < self.tenant_limit
    }

    /// The next item to process, marking it as processing. Fast first, but a slow item goes after every
    /// `fast_burst` fast ones; within a lane, tenants take turns and a tenant at its in-flight limit is skipped.
    pub fn pop(&mut self) -> Option<(K, Lane)> {
        let slow_turn = self.fast_run >= self.fast_burst;
        let order = if slow_turn {
            [Lane::Slow, Lane::Fast]
        } else {
            [Lane::Fast, Lane::Slow]
        };
        let limit = self.tenant_limit;
        let in_flight = &self.tenant_in_flight;
        let room = |t: &Arc<str>| limit == 0 || in_flight.get(t).copied().unwrap_or(0) < limit;
        let mut got = None;
        // Tenants within their limit first; with a soft limit, then anyone (nobody else is waiting).
        let passes: &[bool] = if self.soft { &[true, false] } else { &[true] };
        'pass: for &within in passes {
            let eligible = |t: &Arc<str>| !within || room(t);
            for lane in order {
                let popped = match lane {
                    Lane::Fast => self.fast.pop(eligible),
                    Lane::Slow => self.slow.pop(eligible),
                };
                if let Some(k) = popped {
                    got = Some((k, lane));
                    break 'pass;
                }
            }
        }
        let (key, lane) = got?;
        match lane {
            Lane::Fast => self.fast_run = self.fast_run.saturating_add(1),
            Lane::Slow => self.fast_run = 0,
        }
        self.queued.remove(&key);
        *self.tenant_in_flight.entry(key.tenant().clone()).or_insert(0) += 1;
        self.processing.insert(key.clone());
        Some((key, lane))
    }

    /// Marks `key` as processed; if it was added meanwhile it is queued again.
    pub fn done(&mut self, key: &K) {
        if self.processing.remove(key) {
            let t = key.tenant();
            if let Some(n) = self.tenant_in_flight.get_mut(t) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.tenant_in_flight.remove(t);
                }
            }
        }
        if let Some(lane) = self.dirty.remove(key) {
            self.add(key.clone(), lane);
        }
    }

    /// Forgets `key` everywhere except an in-flight processing (the object was deleted).
    pub fn forget(&mut self, key: &K) {
        match self.queued.remove(key) {
            Some(Lane::Fast) => self.fast.remove(key),
            Some(Lane::Slow) => self.slow.remove(key),
            None => {}
        }
        self.delayed.remove(key);
        self.dirty.remove(key);
    }

    /// When the earliest delayed item is due.
    pub fn next_due(&mut self) -> Option<Instant> {
        // Drop superseded heap entries so the answer is exact.
        while let Some(Reverse(d)) = self.heap.peek() {
            if self.delayed.get(&d.key).is_some_and(|(due, _)| *due == d.at) {
                return Some(d.at);
            }
            self.heap.pop();
        }
        None
    }

    /// Items ready to be processed, per lane (including those waiting for their tenant's turn).
    pub fn depth(&self) -> (usize, usize) {
        (self.fast.len, self.slow.len)
    }

    /// Whether an item is ready that no tenant's in-flight limit holds back.
    pub fn has_ready(&self) -> bool {
        let ready = |l: &FairLane<K>| l.ring.iter().any(|t| self.soft || self.tenant_has_room(t));
        ready(&self.fast) || ready(&self.slow)
    }

    /// Items scheduled for later.
    pub fn scheduled(&self) -> usize {
        self.delayed.len()
    }

    pub fn in_flight(&self) -> usize {
        self.processing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A test key: (tenant, name).
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct K(Arc<str>, &'static str);

    impl Tenant for K {
        fn tenant(&self) -> &Arc<str> {
            &self.0
        }
    }

    fn k(name: &'static str) -> K {
        K(Arc::from(""), name)
    }

    fn kt(tenant: &str, name: &'static str) -> K {
        K(Arc::from(tenant), name)
    }

    fn name(item: Option<(K, Lane)>) -> Option<(&'static str, Lane)> {
        item.map(|(k, l)| (k.1, l))
    }

    #[test]
    fn dedupes_and_promotes() {
        let mut q = WorkQueue::new(Limit::Strict(0));
        q.add(k("a"), Lane::Slow);
        q.add(k("b"), Lane::Slow);
        q.add(k("a"), Lane::Slow);
        assert_eq!(q.depth(), (0, 2));
        q.add(k("b"), Lane::Fast);
        assert_eq!(q.depth(), (1, 1));
        assert_eq!(name(q.pop()), Some(("b", Lane::Fast)));
        assert_eq!(name(q.pop()), Some(("a", Lane::Slow)));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn fast_lane_jumps_a_refresh_wave_but_slow_is_not_starved() {
        let mut q = WorkQueue::new(Limit::Strict(0));
        let names: Vec<&'static str> = (0..140).map(|i| &*Box::leak(format!("{i}").into_boxed_str())).collect();
        for n in &names[..100] {
            q.add(k(n), Lane::Slow);
        }
        q.add(k("new"), Lane::Fast);
        assert_eq!(name(q.pop()), Some(("new", Lane::Fast)));
        for n in &names[100..] {
            q.add(k(n), Lane::Fast);
        }
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).take(40).collect();
        let slow_in_first_40 = order.iter().filter(|(_, l)| *l == Lane::Slow).count();
        assert!(slow_in_first_40 >= 2, "slow lane gets a turn: {slow_in_first_40}");
    }

    #[test]
    fn never_hands_out_a_key_twice_and_requeues_dirty() {
        let mut q = WorkQueue::new(Limit::Strict(0));
        q.add(k("a"), Lane::Slow);
        assert_eq!(name(q.pop()), Some(("a", Lane::Slow)));
        q.add(k("a"), Lane::Slow);
        q.add(k("a"), Lane::Fast);
        assert_eq!(q.pop(), None, "a is being processed");
        q.done(&k("a"));
        assert_eq!(name(q.pop()), Some(("a", Lane::Fast)));
        q.done(&k("a"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn delayed_keeps_earliest_and_promotes_when_due() {
        let mut q = WorkQueue::new(Limit::Strict(0));
        let t0 = Instant::now();
        q.add_after(k("a"), Lane::Slow, t0 + Duration::from_secs(10));
        q.add_after(k("a"), Lane::Slow, t0 + Duration::from_secs(5));
        q.add_after(k("a"), Lane::Slow, t0 + Duration::from_secs(20));
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(5)));
        q.promote_due(t0 + Duration::from_secs(4));
        assert_eq!(q.pop(), None);
        q.promote_due(t0 + Duration::from_secs(5));
        assert_eq!(name(q.pop()), Some(("a", Lane::Slow)));
        q.done(&k("a"));
        q.promote_due(t0 + Duration::from_secs(30));
        assert_eq!(q.pop(), None, "superseded schedules do not fire again");
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn add_now_cancels_a_schedule_and_forget_drops_everything() {
        let mut q = WorkQueue::new(Limit::Strict(0));
        let t0 = Instant::now();
        q.add_after(k("a"), Lane::Slow, t0 + Duration::from_secs(5));
        q.add(k("a"), Lane::Fast);
        assert_eq!(q.scheduled(), 0);
        assert_eq!(name(q.pop()), Some(("a", Lane::Fast)));
        q.done(&k("a"));
        q.add_after(k("b"), Lane::Slow, t0);
        q.add(k("c"), Lane::Slow);
        q.forget(&k("b"));
        q.forget(&k("c"));
        q.promote_due(t0 + Duration::from_secs(1));
        assert_eq!(q.pop(), None);
        assert_eq!(q.depth(), (0, 0));
    }

    #[test]
    fn tenants_take_turns_within_a_lane() {
        let mut q = WorkQueue::new(Limit::Strict(0));
        for n in ["a1", "a2", "a3", "a4"] {
            q.add(kt("a", n), Lane::Fast);
        }
        q.add(kt("b", "b1"), Lane::Fast);
        q.add(kt("c", "c1"), Lane::Fast);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(k, _)| k.1).collect();
        assert_eq!(order, ["a1", "b1", "c1", "a2", "a3", "a4"]);
    }

    #[test]
    fn a_tenant_at_its_in_flight_limit_waits_while_others_go_ahead() {
        let mut q = WorkQueue::new(Limit::Strict(2));
        for n in ["h1", "h2", "h3", "h4"] {
            q.add(kt("hostile", n), Lane::Fast);
        }
        assert_eq!(name(q.pop()), Some(("h1", Lane::Fast)));
        assert_eq!(name(q.pop()), Some(("h2", Lane::Fast)));
        // Two of "hostile" are in processing: its others wait, and nothing else is queued.
        assert_eq!(q.pop(), None);
        assert!(!q.has_ready());
        q.add(kt("canary", "c"), Lane::Slow);
        assert!(q.has_ready());
        assert_eq!(
            name(q.pop()),
            Some(("c", Lane::Slow)),
            "another tenant goes ahead, even from the slow lane"
        );
        q.done(&kt("hostile", "h1"));
        assert_eq!(name(q.pop()), Some(("h3", Lane::Fast)));
        assert_eq!(q.pop(), None);
        q.done(&kt("hostile", "h2"));
        q.done(&kt("hostile", "h3"));
        assert_eq!(name(q.pop()), Some(("h4", Lane::Fast)));
        assert_eq!(q.in_flight(), 2, "c and h4");
    }

    #[test]
    fn promotion_keeps_the_tenant_ring_consistent() {
        let mut q = WorkQueue::new(Limit::Strict(1));
        q.add(kt("a", "x"), Lane::Slow);
        q.add(kt("a", "y"), Lane::Slow);
        q.add(kt("a", "x"), Lane::Fast);
        assert_eq!(q.depth(), (1, 1));
        assert_eq!(name(q.pop()), Some(("x", Lane::Fast)));
        assert_eq!(q.pop(), None, "a is at its limit");
        q.forget(&kt("a", "y"));
        q.done(&kt("a", "x"));
        assert_eq!(q.pop(), None);
        assert_eq!(q.depth(), (0, 0));
    }

    #[test]
    fn a_soft_limit_lets_a_lone_tenant_use_idle_workers_but_others_go_first() {
        let mut q = WorkQueue::new(Limit::Soft(1));
        for n in ["a1", "a2", "a3"] {
            q.add(kt("a", n), Lane::Fast);
        }
        assert_eq!(name(q.pop()), Some(("a1", Lane::Fast)));
        assert_eq!(
            name(q.pop()),
            Some(("a2", Lane::Fast)),
            "nobody else waits: past the limit"
        );
        q.add(kt("b", "b1"), Lane::Slow);
        q.add(kt("a", "a4"), Lane::Fast);
        assert_eq!(
            name(q.pop()),
            Some(("b1", Lane::Slow)),
            "a tenant within its limit goes first"
        );
        assert_eq!(name(q.pop()), Some(("a3", Lane::Fast)));
        assert!(q.has_ready());
    }
}
