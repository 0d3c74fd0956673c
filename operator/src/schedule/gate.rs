//! The in-flight limit per store: at most `limit` reconciles talk to one store's provider at once. A reconcile
//! that finds its store full does not wait (a worker waiting for a hung store is a worker lost to everyone else):
//! it parks — leaves a waker and ends — and is sent back to its queue when a place frees. So the ExternalSecrets
//! of a slow or hostile store wait behind each other, not in front of everyone else; a fast store never fills
//! (its calls end in milliseconds) and pays one map lookup per reconcile.
//!
//! A store gets all `limit` places only once a call of it has ended within `slow_after`, and keeps them while its
//! calls do. Until then — a store never answered yet (at start-up, or new), or one whose last call held its place
//! for `slow_after` or longer (a hung server, stopped at the reconcile deadline) — it gets one place. So a hung
//! store holds one worker for one `slow_after` (the reconciles behind it park at once), not `limit` workers at
//! start-up; a fast store's first answer, milliseconds later, opens its other places and wakes as many parked
//! reconciles as there are places free.
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends a parked reconcile back to its queue.
pub type Waker = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Slot {
    in_flight: usize,
    /// Parked reconciles, oldest first, by an id (controller and object) so one object parks once.
    parked: VecDeque<(u64, Waker)>,
}

/// See the module docs. Stores are named by uid.
pub struct StoreGate {
    limit: usize,
    slow_after: Duration,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    by_store: HashMap<Arc<str>, Slot>,
    /// Stores whose last call ended within `slow_after` (all places); [`StoreGate::forget`] drops a deleted one.
    proven: HashSet<Arc<str>>,
}

impl Slots {
    /// Places at `store` now: `limit` once proven fast, else one (0: no limit).
    fn places(&self, limit: usize, store: &str) -> usize {
        if limit == 0 || self.proven.contains(store) {
            limit
        } else {
            1
        }
    }

    /// The shared name of `store`, allocated only the first time it is seen.
    fn name(&self, store: &str) -> Arc<str> {
        match self.by_store.get_key_value(store) {
            Some((k, _)) => k.clone(),
            None => self.proven.get(store).cloned().unwrap_or_else(|| Arc::from(store)),
        }
    }
}

/// A place at one store; dropping it frees the place and wakes as many parked reconciles as there are places free.
pub struct Permit {
    gate: Arc<StoreGate>,
    store: Arc<str>,
    since: Instant,
    /// Whether its end says how fast the store answers (not for a place given back unused).
    called: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let woken: Vec<(u64, Waker)> = {
            let mut s = self.gate.lock();
            if !self.called {
                // Given back unused: says nothing of the store.
            } else if self.since.elapsed() < self.gate.slow_after {
                s.proven.insert(self.store.clone());
            } else {
                s.proven.remove(&self.store);
            }
            let places = s.places(self.gate.limit, &self.store);
            let slots = &mut s.by_store;
            let Some(slot) = slots.get_mut(&self.store) else { return };
            slot.in_flight = slot.in_flight.saturating_sub(1);
            let free = match places {
                0 => slot.parked.len(),
                n => n.saturating_sub(slot.in_flight).min(slot.parked.len()),
            };
            let woken = slot.parked.drain(..free).collect();
            if slot.in_flight == 0 && slot.parked.is_empty() {
                slots.remove(&self.store);
            }
            woken
        };
        // Outside the lock: the waker takes the queue's lock.
        for (_, wake) in woken {
            wake();
        }
    }
}

impl StoreGate {
    /// At most `limit` at once per store (0: no limit); one for a store until a call of it ends within
    /// `slow_after`, and again after a call that took longer.
    pub fn new(limit: usize, slow_after: Duration) -> Arc<Self> {
        Arc::new(Self {
            limit,
            slow_after,
            slots: Mutex::new(Slots::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place at `store`, or `None` after parking `wake` (under `id`; a second park of the same id replaces
    /// the first, keeping its turn).
    pub fn try_enter(self: &Arc<Self>, store: &str, id: u64, wake: Waker) -> Option<Permit> {
        let mut s = self.lock();
        let places = s.places(self.limit, store);
        let name = s.name(store);
        let slot = s.by_store.entry(name.clone()).or_default();
        if places == 0 || slot.in_flight < places {
            slot.in_flight += 1;
            return Some(Permit {
                gate: self.clone(),
                store: name,
                since: Instant::now(),
                called: true,
            });
        }
        match slot.parked.iter_mut().find(|(i, _)| *i == id) {
            Some(p) => p.1 = wake,
            None => slot.parked.push_back((id, wake)),
        }
        None
    }

    /// Places at all of `stores` (sorted and de-duplicated here), or `None` after parking on the first full one
    /// (the places already taken are given back).
    pub fn try_enter_all<'a>(
        self: &Arc<Self>,
        stores: impl IntoIterator<Item = &'a str>,
        id: u64,
        wake: impl Fn() -> Waker,
    ) -> Option<Vec<Permit>> {
        let mut stores: Vec<&str> = stores.into_iter().collect();
        stores.sort_unstable();
        stores.dedup();
        let mut permits = Vec::with_capacity(stores.len());
        for s in stores {
            match self.try_enter(s, id, wake()) {
                Some(p) => permits.push(p),
                None => {
                    for p in &mut permits {
                        p.called = false;
                    }
                    return None;
                }
            }
        }
        Some(permits)
    }

    /// Forgets a deleted store's record (its calls in flight end on their own; a store of the same uid cannot
    /// come back).
    pub fn forget(&self, store: &str) {
        self.lock().proven.remove(store);
    }

    /// Reconciles in flight and parked at `store`.
    pub fn load(&self, store: &str) -> (usize, usize) {
        self.lock()
            .by_store
            .get(store)
            .map(|s| (s.in_flight, s.parked.len()))
            .unwrap_or_default()
    }

    /// Parked reconciles, all stores.
    pub fn parked(&self) -> usize {
        self.lock().by_store.values().map(|s| s.parked.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn waker(log: &Arc<Mutex<Vec<u64>>>, id: u64) -> Waker {
        let log = log.clone();
        Box::new(move || log.lock().unwrap().push(id))
    }

    /// One quick call, so `store` has all its places.
    fn prove(gate: &Arc<StoreGate>, store: &str) {
        drop(gate.try_enter(store, 0, Box::new(|| {})).unwrap());
    }

    #[test]
    fn a_full_store_parks_and_a_freed_place_wakes_the_oldest() {
        let gate = StoreGate::new(2, Duration::from_secs(3600));
        prove(&gate, "hung");
        let log = Arc::new(Mutex::new(Vec::new()));
        let a = gate.try_enter("hung", 1, waker(&log, 1)).unwrap();
        let b = gate.try_enter("hung", 2, waker(&log, 2)).unwrap();
        assert!(gate.try_enter("hung", 3, waker(&log, 3)).is_none());
        assert!(gate.try_enter("hung", 4, waker(&log, 4)).is_none());
        assert!(
            gate.try_enter("hung", 3, waker(&log, 33)).is_none(),
            "parks once, keeps its turn"
        );
        assert_eq!(gate.load("hung"), (2, 2));
        // Another store is not affected.
        let other = gate.try_enter("fine", 9, waker(&log, 9)).unwrap();
        drop(other);
        drop(a);
        assert_eq!(*log.lock().unwrap(), vec![33]);
        drop(b);
        assert_eq!(*log.lock().unwrap(), vec![33, 4]);
        assert_eq!(gate.load("hung"), (0, 0));
        assert_eq!(gate.parked(), 0);
    }

    #[test]
    fn enter_all_gives_places_back_when_one_store_is_full() {
        let gate = StoreGate::new(2, Duration::from_secs(3600));
        let woken = Arc::new(AtomicUsize::new(0));
        let wake = || -> Waker {
            let w = woken.clone();
            Box::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            })
        };
        prove(&gate, "b");
        let held = [
            gate.try_enter("b", 1, wake()).unwrap(),
            gate.try_enter("b", 9, wake()).unwrap(),
        ];
        assert!(gate.try_enter_all(["a", "b", "a"], 2, wake).is_none());
        assert_eq!(gate.load("a"), (0, 0), "the place at a was given back");
        assert_eq!(gate.load("b"), (2, 1));
        // Given back unused, it did not count as a quick answer of a: a has one place still.
        let at_a = gate.try_enter("a", 3, Box::new(|| {})).unwrap();
        assert!(gate.try_enter("a", 4, Box::new(|| {})).is_none());
        drop(at_a);
        drop(held);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        let both = gate.try_enter_all(["b", "a"], 2, wake).unwrap();
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn no_limit_never_parks() {
        let gate = StoreGate::new(0, Duration::from_secs(3600));
        let permits: Vec<_> = (0..100)
            .map(|i| gate.try_enter("s", i, Box::new(|| {})).unwrap())
            .collect();
        assert_eq!(gate.load("s"), (100, 0));
        drop(permits);
        assert_eq!(gate.load("s"), (0, 0));
    }

    #[test]
    fn a_slow_store_gets_one_place_until_a_call_ends_quickly() {
        let gate = StoreGate::new(2, Duration::from_millis(20));
        prove(&gate, "s");
        let a = gate.try_enter("s", 1, Box::new(|| {})).unwrap();
        let b = gate.try_enter("s", 2, Box::new(|| {})).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        drop(a);
        drop(b);
        // Both calls were slow: one place now.
        let c = gate.try_enter("s", 3, Box::new(|| {})).unwrap();
        assert!(gate.try_enter("s", 4, Box::new(|| {})).is_none());
        drop(c);
        // c ended quickly: two places again.
        let _d = gate.try_enter("s", 5, Box::new(|| {})).unwrap();
        let _e = gate.try_enter("s", 6, Box::new(|| {})).unwrap();
    }

    #[test]
    fn a_store_not_answered_yet_gets_one_place_and_its_first_quick_answer_wakes_the_parked() {
        let gate = StoreGate::new(3, Duration::from_secs(3600));
        let log = Arc::new(Mutex::new(Vec::new()));
        // Start-up: a hung store's first reconcile holds its only place; the others park at once.
        let first = gate.try_enter("new", 1, waker(&log, 1)).unwrap();
        for id in 2..=5 {
            assert!(gate.try_enter("new", id, waker(&log, id)).is_none());
        }
        assert_eq!(gate.load("new"), (1, 4));
        // It answers quickly: all three places open, the three oldest parked are woken at once.
        drop(first);
        assert_eq!(*log.lock().unwrap(), vec![2, 3, 4]);
        assert_eq!(gate.load("new"), (0, 1));
        let taken: Vec<_> = (2..=4)
            .map(|id| gate.try_enter("new", id, waker(&log, id)).unwrap())
            .collect();
        assert!(gate.try_enter("new", 6, waker(&log, 6)).is_none());
        // A deleted store's record goes: a store new again gets one place.
        drop(taken);
        gate.forget("new");
        let again = gate.try_enter("new", 7, waker(&log, 7)).unwrap();
        assert!(gate.try_enter("new", 8, waker(&log, 8)).is_none());
        drop(again);
    }
}
