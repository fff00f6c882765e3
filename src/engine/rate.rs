//! A client-side rate limit per key (for HTTP: per target host), shared by every
//! partition and query of a session, with pauses (a service that asked to wait).
//!
//! A throttled answer (HTTP 429) delays the call that got it (its retry waits
//! what the service asked). The whole key pauses only when the service keeps
//! asking: when at least [`KEEPS_ASKING`] of the key's last [`RECENT`] answers
//! were throttled. A service that sheds a little load at random (a few 429s
//! among many answers) slows only the calls it refused.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

/// Requests-per-second limits per key, one keyed limiter per rate in use (queries
/// with different `http.requests_per_second` each keep their own), and pauses per
/// key. Both forget keys they no longer need, so a job over millions of hosts
/// holds state only for the recent ones.
#[derive(Debug, Default)]
pub struct RateLimits {
    /// Per rate: the limiter and when it was last asked for.
    limiters: Mutex<HashMap<u64, (Limiter, Instant)>>,
    paused: Mutex<HashMap<String, Instant>>,
    /// The last answers (throttled or not) of keys throttled lately.
    recent: Mutex<HashMap<String, VecDeque<bool>>>,
}

/// Answers of a throttled key remembered.
pub const RECENT: usize = 16;
/// Throttled answers among the last [`RECENT`] that pause the whole key.
pub const KEEPS_ASKING: usize = RECENT / 2;

type Limiter = Arc<DefaultKeyedRateLimiter<String>>;

/// Past this many entries, expired pauses and idle limiter keys are dropped.
const PRUNE_AT: usize = 1024;

/// A rate's limiter nobody asked for in this long is dropped.
const IDLE: Duration = Duration::from_secs(60);

fn quota(per_second: f64) -> Option<Quota> {
    // one request every 1/rate seconds, no bursts: 120/min is 2.0 → one per 500 ms
    Quota::with_period(Duration::from_secs_f64(1.0 / per_second))
        .map(|q| q.allow_burst(NonZeroU32::MIN))
}

impl RateLimits {
    /// Waits until a request to `key` may start: after any pause of `key`, then
    /// within `per_second` (0 or less = unlimited). Returns the time waited.
    pub async fn acquire(&self, key: &str, per_second: f64) -> Duration {
        if self.open(per_second) {
            return Duration::ZERO;
        }
        let limiter = self.limiter(per_second);
        let start = Instant::now();
        loop {
            let until = {
                let mut paused = self.paused.lock();
                match paused.get(key) {
                    // an ended pause goes, so that a session's map empties again
                    Some(t) if *t <= Instant::now() => {
                        paused.remove(key);
                        None
                    }
                    t => t.copied(),
                }
            };
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => break,
            }
        }
        if let Some(limiter) = limiter {
            limiter.until_key_ready(&key.to_string()).await;
        }
        start.elapsed()
    }

    /// An answer from `key` arrived, `throttled` or not (then asking to wait
    /// `wait`): pauses the key for `wait` if the service keeps asking (see the
    /// module docs). Costs nothing while no key was throttled lately.
    pub fn answered(&self, key: &str, throttled: bool, wait: Duration) {
        if !throttled && self.recent.lock().is_empty() {
            return;
        }
        let keeps_asking = {
            let mut recent = self.recent.lock();
            if recent.len() >= PRUNE_AT {
                recent.retain(|_, answers| answers.contains(&true));
            }
            let answers = match recent.get_mut(key) {
                Some(answers) => answers,
                None if throttled => recent.entry(key.to_string()).or_default(),
                None => return,
            };
            answers.push_back(throttled);
            if answers.len() > RECENT {
                answers.pop_front();
            }
            let asked = answers.iter().filter(|t| **t).count();
            if asked == 0 {
                recent.remove(key);
            }
            throttled && asked >= KEEPS_ASKING
        };
        if keeps_asking {
            self.pause(key, wait);
        }
    }

    /// No request to `key` starts in the next `period`.
    pub fn pause(&self, key: &str, period: Duration) {
        let now = Instant::now();
        let until = now + period;
        let mut paused = self.paused.lock();
        if paused.len() >= PRUNE_AT {
            paused.retain(|_, t| *t > now);
        }
        let entry = paused.entry(key.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Whether a request to any key may start at once (no rate, no pause):
    /// then [`RateLimits::acquire`] need not be awaited.
    pub fn open(&self, per_second: f64) -> bool {
        !(per_second > 0.0 && per_second.is_finite()) && self.paused.lock().is_empty()
    }

    fn limiter(&self, per_second: f64) -> Option<Arc<DefaultKeyedRateLimiter<String>>> {
        if !(per_second > 0.0 && per_second.is_finite()) {
            return None;
        }
        let quota = quota(per_second)?;
        let now = Instant::now();
        let mut limiters = self.limiters.lock();
        // limiters of rates nobody used for a while go, and idle keys of the others
        limiters.retain(|_, (l, used)| Arc::strong_count(l) > 1 || now - *used < IDLE);
        for (l, _) in limiters.values() {
            if l.len() >= PRUNE_AT {
                l.retain_recent();
            }
        }
        let (limiter, used) = limiters
            .entry(per_second.to_bits())
            .or_insert_with(|| (Arc::new(RateLimiter::keyed(quota)), now));
        *used = now;
        Some(Arc::clone(limiter))
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

    #[test]
    fn state_per_rate_and_bounded() {
        let limits = RateLimits::default();
        let a = limits.limiter(5.0).unwrap();
        let b = limits.limiter(7.0).unwrap();
        assert!(
            Arc::ptr_eq(&a, &limits.limiter(5.0).unwrap()),
            "no flip-flop"
        );
        assert!(!Arc::ptr_eq(&a, &b));
        drop(b);
        limits.limiters.lock().get_mut(&7.0f64.to_bits()).unwrap().1 -= IDLE;
        let _ = limits.limiter(5.0);
        assert_eq!(limits.limiters.lock().len(), 1, "idle rate dropped");
        for i in 0..3 * PRUNE_AT {
            limits.pause(&format!("h{i}"), Duration::ZERO);
        }
        assert!(
            limits.paused.lock().len() <= PRUNE_AT,
            "expired pauses pruned"
        );
    }

    #[test]
    fn a_key_pauses_only_when_the_service_keeps_asking() {
        let limits = RateLimits::default();
        let wait = Duration::from_secs(1);
        // a few throttled answers among many: no pause
        for i in 0..100 {
            limits.answered("h", i % 20 == 0, wait);
        }
        assert!(limits.paused.lock().is_empty());
        // most answers throttled: the key pauses
        for _ in 0..KEEPS_ASKING {
            limits.answered("h", true, wait);
        }
        assert!(limits.paused.lock().contains_key("h"));
        // clean answers make it forget the key
        for _ in 0..RECENT {
            limits.answered("h", false, wait);
        }
        assert!(limits.recent.lock().is_empty());
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
