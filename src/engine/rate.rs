//! A client-side rate limit per key (for HTTP: per target host), shared by every
//! partition and query of a session, with pauses (after HTTP 429 `Retry-After`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Requests-per-second limits per key; resized when the configured rate changes.
#[derive(Debug, Default)]
pub struct RateLimits {
    limiter: Mutex<Option<(u64, Arc<DefaultKeyedRateLimiter<String>>)>>,
    paused: Mutex<HashMap<String, Instant>>,
}

fn quota(per_second: f64) -> Option<Quota> {
    // one request every 1/rate seconds, no bursts: 120/min is 2.0 → one per 500 ms
    Quota::with_period(Duration::from_secs_f64(1.0 / per_second))
        .map(|q| q.allow_burst(NonZeroU32::MIN))
}

impl RateLimits {
    /// Waits until a request to `key` may start: after any pause of `key`, then
    /// within `per_second` (0 or less = unlimited). Returns the time waited.
    pub async fn acquire(&self, key: &str, per_second: f64) -> Duration {
        let start = Instant::now();
        loop {
            let until = self
                .paused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .copied();
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => break,
            }
        }
        if let Some(limiter) = self.limiter(per_second) {
            limiter.until_key_ready(&key.to_string()).await;
        }
        start.elapsed()
    }

    /// No request to `key` starts in the next `period`.
    pub fn pause(&self, key: &str, period: Duration) {
        let until = Instant::now() + period;
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        let entry = paused.entry(key.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn limiter(&self, per_second: f64) -> Option<Arc<DefaultKeyedRateLimiter<String>>> {
        if !(per_second > 0.0 && per_second.is_finite()) {
            return None;
        }
        let quota = quota(per_second)?;
        let bits = per_second.to_bits();
        let mut current = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some((b, limiter)) if *b == bits => Some(Arc::clone(limiter)),
            _ => {
                let limiter = Arc::new(RateLimiter::keyed(quota));
                *current = Some((bits, Arc::clone(&limiter)));
                Some(limiter)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_requests_per_key() {
        let limits = RateLimits::default();
        let start = Instant::now();
        for _ in 0..3 {
            limits.acquire("a", 20.0).await;
        }
        // 3 requests at 20/s: the 2nd and 3rd wait 50 ms each
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "{:?}",
            start.elapsed()
        );
        // another key is not slowed
        let other = Instant::now();
        limits.acquire("b", 20.0).await;
        assert!(other.elapsed() < Duration::from_millis(40));
        // unlimited
        assert!(limits.acquire("a", 0.0).await < Duration::from_millis(40));
    }

    #[tokio::test]
    async fn pauses_hold_a_key() {
        let limits = RateLimits::default();
        limits.pause("h", Duration::from_millis(80));
        let waited = limits.acquire("h", 0.0).await;
        assert!(waited >= Duration::from_millis(70), "{waited:?}");
        assert!(limits.acquire("other", 0.0).await < Duration::from_millis(40));
    }
}
