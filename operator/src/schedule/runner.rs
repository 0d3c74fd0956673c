//! The async face of [`WorkQueue`]: workers wait for the next item, producers add items from watch events.
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::queue::{Lane, Limit, Tenant, WorkQueue};

/// The longest delay a schedule keeps: a longer one (a provider's `Retry-After: 18446744073709551615`, a refresh
/// interval of centuries) waits this long instead, and `Instant` arithmetic can never overflow.
pub const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);

/// `now + delay`, with `delay` capped at [`MAX_DELAY`]; never panics.
pub fn due_after(now: Instant, delay: Duration) -> Instant {
    let delay = delay.min(MAX_DELAY);
    now.checked_add(delay).unwrap_or(now)
}

/// A shared, closable work queue. Cloning is by `Arc`.
pub struct Scheduler<K> {
    queue: Mutex<WorkQueue<K>>,
    notify: Notify,
    closed: AtomicBool,
}

/// Queue sizes, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    pub fast: usize,
    pub slow: usize,
    pub scheduled: usize,
    pub in_flight: usize,
}

impl<K: Clone + Eq + Hash + Tenant> Default for Scheduler<K> {
    fn default() -> Self {
        Self::new(Limit::Strict(0))
    }
}

impl<K: Clone + Eq + Hash + Tenant> Scheduler<K> {
    /// A queue whose tenants (namespaces) may each hold `limit` items in processing.
    pub fn new(limit: Limit) -> Self {
        Self {
            queue: Mutex::new(WorkQueue::new(limit)),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WorkQueue<K>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` now.
    pub fn add(&self, key: K, lane: Lane) {
        self.lock().add(key, lane);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay` (keeps an earlier schedule); delays are capped at [`MAX_DELAY`].
    pub fn add_after(&self, key: K, lane: Lane, delay: Duration) {
        self.lock().add_after(key, lane, due_after(Instant::now(), delay));
        self.notify.notify_one();
    }

    /// Marks `key` done (re-queues it if it was added while processing).
    pub fn done(&self, key: &K) {
        self.lock().done(key);
        self.notify.notify_one();
    }

    /// Drops every pending occurrence of `key`.
    pub fn forget(&self, key: &K) {
        self.lock().forget(key);
    }

    pub fn stats(&self) -> SchedulerStats {
        let q = self.lock();
        let (fast, slow) = q.depth();
        SchedulerStats {
            fast,
            slow,
            scheduled: q.scheduled(),
            in_flight: q.in_flight(),
        }
    }

    /// Stops handing out work: every waiting and future [`Scheduler::next`] returns `None`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Waits for the next item to process; `None` once closed.
    pub async fn next(&self) -> Option<(K, Lane)> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            let due = {
                let mut q = self.lock();
                q.promote_due(Instant::now());
                if let Some(item) = q.pop() {
                    return Some(item);
                }
                q.next_due()
            };
            match due {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::context::Key;

    fn k(name: &str) -> Key {
        Key::new("ns", name)
    }

    #[tokio::test]
    async fn hands_out_now_and_later_and_closes() {
        let s = Arc::new(Scheduler::new(Limit::Strict(0)));
        s.add_after(k("later"), Lane::Slow, Duration::from_millis(50));
        s.add(k("now"), Lane::Fast);
        assert_eq!(s.next().await, Some((k("now"), Lane::Fast)));
        s.done(&k("now"));
        let t = Instant::now();
        assert_eq!(s.next().await, Some((k("later"), Lane::Slow)));
        assert!(t.elapsed() >= Duration::from_millis(40));
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.next().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.close();
        assert_eq!(waiter.await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_earlier_schedule_wakes_a_sleeping_worker() {
        let s = Arc::new(Scheduler::new(Limit::Strict(0)));
        s.add_after(k("far"), Lane::Slow, Duration::from_secs(3600));
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.next().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.add_after(k("soon"), Lane::Slow, Duration::from_millis(10));
        let got = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, Some((k("soon"), Lane::Slow)));
    }

    #[test]
    fn a_huge_delay_never_overflows() {
        let now = Instant::now();
        assert_eq!(due_after(now, Duration::MAX), now + MAX_DELAY);
        assert_eq!(due_after(now, Duration::from_secs(u64::MAX)), now + MAX_DELAY);
        assert_eq!(due_after(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        let s = Scheduler::new(Limit::Strict(0));
        s.add_after(k("retry-after"), Lane::Slow, Duration::from_secs(u64::MAX));
        assert_eq!(s.stats().scheduled, 1);
    }
}
