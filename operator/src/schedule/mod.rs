//! When work happens: the two-lane work queue, jittered refresh times, error backoff and per-store rate limits.
mod bucket;
pub mod cron;
mod gate;
mod queue;
mod runner;

pub use bucket::{RateLimiter, TokenBucket};
pub use gate::{Permit, StoreGate, Waker};
pub use queue::{Lane, Limit, Tenant, WorkQueue};
pub use runner::{MAX_DELAY, Scheduler, SchedulerStats, due_after};

use std::time::Duration;

/// The delay until the next periodic refresh: `interval` minus a random share of up to `jitter` (0.0–1.0) of it,
/// so ExternalSecrets created or restarted together spread out instead of refreshing in lockstep (ESO #4231),
/// while none is ever refreshed later than its `refreshInterval`.
pub fn jittered(interval: Duration, jitter: f64, random_unit: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    let cut = interval.as_secs_f64() * jitter * random_unit.clamp(0.0, 1.0);
    interval.saturating_sub(Duration::from_secs_f64(cut))
}

/// Exponential backoff for failures: `base * 2^(failures-1)`, capped at `max`, with up to 10% random added so
/// failing objects do not retry in lockstep.
pub fn backoff(failures: u32, base: Duration, max: Duration, random_unit: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp.min(20)).min(max);
    let extra = raw.as_secs_f64() * 0.1 * random_unit.clamp(0.0, 1.0);
    (raw + Duration::from_secs_f64(extra)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_but_never_exceeds_the_interval() {
        let h = Duration::from_secs(3600);
        assert_eq!(jittered(h, 0.1, 0.0), h);
        assert_eq!(jittered(h, 0.1, 1.0), Duration::from_secs(3240));
        assert_eq!(jittered(h, 0.0, 0.7), h);
        assert_eq!(jittered(h, 5.0, 2.0), Duration::ZERO);
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let (b, m) = (Duration::from_secs(1), Duration::from_secs(300));
        assert_eq!(backoff(1, b, m, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, b, m, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(5, b, m, 0.0), Duration::from_secs(16));
        assert_eq!(backoff(40, b, m, 1.0), m);
        assert!(backoff(3, b, m, 1.0) <= Duration::from_secs_f64(4.4));
    }
}
