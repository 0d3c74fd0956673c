//! A de-duplicating work queue with two lanes and delayed items; synchronous and I/O-free.
//!
//! - **Fast lane**: work caused by a change (an ExternalSecret created or edited, its store turned Ready, its
//!   Secret edited). New ExternalSecrets never wait behind a refresh wave (ESO #2837, #2878, #5045).
//! - **Slow lane**: periodic refreshes and error retries.
//! - A key is queued at most once; adding a queued key to the fast lane promotes it. A key being processed is
//!   never handed out twice: adding it marks it dirty and it is re-queued when [`WorkQueue::done`] is called.
//! - Delayed items ([`WorkQueue::add_after`]) keep only the earliest due time per key.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
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

/// See the module docs.
pub struct WorkQueue<K> {
    fast: VecDeque<K>,
    slow: VecDeque<K>,
    /// Keys currently in `fast` or `slow`, and which.
    queued: HashMap<K, Lane>,
    processing: HashSet<K>,
    /// Keys added while being processed: re-queued on `done`.
    dirty: HashMap<K, Lane>,
    /// Earliest due time per delayed key; the heap may hold outdated entries, checked against this map.
    delayed: HashMap<K, (Instant, Lane)>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    heap_keys: HashMap<u64, K>,
    seq: u64,
    /// After this many fast items in a row, one slow item goes first, so refreshes cannot starve.
    fast_burst: u32,
    fast_run: u32,
}

impl<K: Clone + Eq + Hash> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    pub fn new() -> Self {
        Self {
            fast: VecDeque::new(),
            slow: VecDeque::new(),
            queued: HashMap::new(),
            processing: HashSet::new(),
            dirty: HashMap::new(),
            delayed: HashMap::new(),
            heap: BinaryHeap::new(),
            heap_keys: HashMap::new(),
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
                self.slow.retain(|k| *k != key);
                self.fast.push_back(key.clone());
                self.queued.insert(key, Lane::Fast);
            }
            Some(_) => {}
            None => {
                match lane {
                    Lane::Fast => self.fast.push_back(key.clone()),
                    Lane::Slow => self.slow.push_back(key.clone()),
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
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.heap_keys.insert(self.seq, key);
    }

    /// Moves every delayed item due at `now` into its lane.
    pub fn promote_due(&mut self, now: Instant) {
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(key) = self.heap_keys.remove(&seq) else {
                continue;
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

    /// The next item to process, marking it as processing. Fast first, but a slow item goes after every
    /// `fast_burst` fast ones.
    pub fn pop(&mut self) -> Option<(K, Lane)> {
        let take_slow = !self.slow.is_empty() && (self.fast.is_empty() || self.fast_run >= self.fast_burst);
        let (key, lane) = if take_slow {
            self.fast_run = 0;
            (self.slow.pop_front()?, Lane::Slow)
        } else {
            self.fast_run += 1;
            (self.fast.pop_front()?, Lane::Fast)
        };
        self.queued.remove(&key);
        self.processing.insert(key.clone());
        Some((key, lane))
    }

    /// Marks `key` as processed; if it was added meanwhile it is queued again.
    pub fn done(&mut self, key: &K) {
        self.processing.remove(key);
        if let Some(lane) = self.dirty.remove(key) {
            self.add(key.clone(), lane);
        }
    }

    /// Forgets `key` everywhere except an in-flight processing (the object was deleted).
    pub fn forget(&mut self, key: &K) {
        if self.queued.remove(key).is_some() {
            self.fast.retain(|k| k != key);
            self.slow.retain(|k| k != key);
        }
        self.delayed.remove(key);
        self.dirty.remove(key);
    }

    /// When the earliest delayed item is due.
    pub fn next_due(&mut self) -> Option<Instant> {
        // Drop superseded heap entries so the answer is exact.
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            let live = self
                .heap_keys
                .get(&seq)
                .and_then(|k| self.delayed.get(k))
                .is_some_and(|(due, _)| *due == at);
            if live {
                return Some(at);
            }
            self.heap.pop();
            self.heap_keys.remove(&seq);
        }
        None
    }

    /// Items ready to be processed, per lane.
    pub fn depth(&self) -> (usize, usize) {
        (self.fast.len(), self.slow.len())
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

    #[test]
    fn dedupes_and_promotes() {
        let mut q = WorkQueue::new();
        q.add("a", Lane::Slow);
        q.add("b", Lane::Slow);
        q.add("a", Lane::Slow);
        assert_eq!(q.depth(), (0, 2));
        q.add("b", Lane::Fast);
        assert_eq!(q.depth(), (1, 1));
        assert_eq!(q.pop(), Some(("b", Lane::Fast)));
        assert_eq!(q.pop(), Some(("a", Lane::Slow)));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn fast_lane_jumps_a_refresh_wave_but_slow_is_not_starved() {
        let mut q = WorkQueue::new();
        for i in 0..100 {
            q.add(i, Lane::Slow);
        }
        q.add(1000, Lane::Fast);
        assert_eq!(q.pop(), Some((1000, Lane::Fast)));
        for i in 2000..2040 {
            q.add(i, Lane::Fast);
        }
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).take(40).collect();
        let slow_in_first_40 = order.iter().filter(|(_, l)| *l == Lane::Slow).count();
        assert!(slow_in_first_40 >= 2, "slow lane gets a turn: {slow_in_first_40}");
    }

    #[test]
    fn never_hands_out_a_key_twice_and_requeues_dirty() {
        let mut q = WorkQueue::new();
        q.add("a", Lane::Slow);
        assert_eq!(q.pop(), Some(("a", Lane::Slow)));
        q.add("a", Lane::Slow);
        q.add("a", Lane::Fast);
        assert_eq!(q.pop(), None, "a is being processed");
        q.done(&"a");
        assert_eq!(q.pop(), Some(("a", Lane::Fast)));
        q.done(&"a");
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn delayed_keeps_earliest_and_promotes_when_due() {
        let mut q = WorkQueue::new();
        let t0 = Instant::now();
        q.add_after("a", Lane::Slow, t0 + Duration::from_secs(10));
        q.add_after("a", Lane::Slow, t0 + Duration::from_secs(5));
        q.add_after("a", Lane::Slow, t0 + Duration::from_secs(20));
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(5)));
        q.promote_due(t0 + Duration::from_secs(4));
        assert_eq!(q.pop(), None);
        q.promote_due(t0 + Duration::from_secs(5));
        assert_eq!(q.pop(), Some(("a", Lane::Slow)));
        q.done(&"a");
        q.promote_due(t0 + Duration::from_secs(30));
        assert_eq!(q.pop(), None, "superseded schedules do not fire again");
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn add_now_cancels_a_schedule_and_forget_drops_everything() {
        let mut q = WorkQueue::new();
        let t0 = Instant::now();
        q.add_after("a", Lane::Slow, t0 + Duration::from_secs(5));
        q.add("a", Lane::Fast);
        assert_eq!(q.scheduled(), 0);
        assert_eq!(q.pop(), Some(("a", Lane::Fast)));
        q.done(&"a");
        q.add_after("b", Lane::Slow, t0);
        q.add("c", Lane::Slow);
        q.forget(&"b");
        q.forget(&"c");
        q.promote_due(t0 + Duration::from_secs(1));
        assert_eq!(q.pop(), None);
    }
}
