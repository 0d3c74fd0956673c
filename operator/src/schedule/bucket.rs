//! A token bucket: at most `burst` operations at once, refilled at `rate` per second. Used per store so one
//! busy store cannot flood its provider (ESO #4065, #4107) and a refresh wave is smoothed out.
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: rate.max(0.001),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes the next token and says how long to wait before using it: zero while tokens are left, else the time
    /// until the bucket has refilled the tokens taken ahead of it. Tokens may be owed (the count goes below zero),
    /// so callers are served in the order they asked and a waiter never loses its turn to a later one (as
    /// `golang.org/x/time/rate`'s reservations, which client-go's limiter uses).
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn burst_then_rate_in_order() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3, t0);
        for _ in 0..3 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        // Callers beyond the burst are given successive slots, 100 ms apart, in the order they asked.
        assert_eq!(ms(b.reserve(t0)), 100);
        assert_eq!(ms(b.reserve(t0)), 200);
        assert_eq!(ms(b.reserve(t0)), 300);
        // 300 ms later the owed tokens are paid back; the next caller waits one interval.
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(ms(b.reserve(t1)), 100);
        // Refill caps at burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.reserve(later), Duration::ZERO);
        }
        assert_eq!(ms(b.reserve(later)), 100);
    }

    #[tokio::test]
    async fn waiters_are_served_in_the_order_they_asked() {
        let limiter = std::sync::Arc::new(RateLimiter::new(100.0, 1));
        limiter.acquire().await;
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (l, o) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire().await;
                o.lock().unwrap().push(i);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    }
}

/// An async token bucket shared by tasks (client QPS, per-store provider rate). Unlimited when `qps <= 0`.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Option<std::sync::Mutex<TokenBucket>>,
}

impl RateLimiter {
    pub fn new(qps: f64, burst: u32) -> Self {
        let bucket = (qps > 0.0).then(|| std::sync::Mutex::new(TokenBucket::new(qps, burst, Instant::now())));
        Self { bucket }
    }

    pub fn unlimited() -> Self {
        Self { bucket: None }
    }

    /// Waits for a token, in the order of the calls. A call dropped while it waits still uses up its slot, which
    /// delays each later call by one slot; here calls are dropped only at shutdown or when leadership is lost.
    pub async fn acquire(&self) {
        let Some(bucket) = &self.bucket else { return };
        let wait = bucket.lock().unwrap_or_else(|e| e.into_inner()).reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
