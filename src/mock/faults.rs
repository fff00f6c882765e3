//! Fault injection for the mock API, deterministic for a seed.
//!
//! Each request is keyed by its `id` query parameter (or path) and the number of
//! times that key was seen, so the same requests get the same faults in every run,
//! whatever order concurrency puts them in.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Faults the mock injects; all rates are fractions of requests (0.0–1.0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Seed of the fault decisions.
    pub seed: u64,
    /// Answer `503 Service Unavailable`.
    pub error_rate: f64,
    /// Answer `429 Too Many Requests` with `Retry-After: 1`.
    pub throttle_rate: f64,
    /// Cut the connection after the status line (the body never arrives).
    pub reset_rate: f64,
    /// Answer only after `slow`.
    pub slow_rate: f64,
    /// The delay of slow answers.
    pub slow: Duration,
    /// Requests allowed per minute (TheCatAPI's free tier allows 120); more get 429
    /// with `Retry-After` until the minute is over. 0 = no limit.
    pub per_minute: u32,
    /// Requests allowed per second (a fixed one-second window); more get 429 with
    /// `Retry-After: 1` at once, without the latency. 0 = no limit.
    pub per_second: u32,
    /// Requests handled at once; more get `503 Service Unavailable` at once,
    /// without the latency (an overloaded server shedding work). 0 = no limit.
    pub max_in_flight: u32,
}

impl Faults {
    /// No faults at all.
    pub const NONE: Self = Self {
        seed: 0,
        error_rate: 0.0,
        throttle_rate: 0.0,
        reset_rate: 0.0,
        slow_rate: 0.0,
        slow: Duration::ZERO,
        per_minute: 0,
        per_second: 0,
        max_in_flight: 0,
    };
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    Error,
    Throttle {
        retry_after_s: u64,
    },
    /// 429 at once: over `per_second`.
    OverRate,
    Reset,
    Slow,
}

/// Decides faults and records what was answered.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    seen: Mutex<HashMap<String, u64>>,
    window: Mutex<(Option<Instant>, u32)>,
    second: Mutex<(Option<Instant>, u32)>,
    successes: Mutex<(u64, HashSet<String>)>,
}

/// Counts a request in a fixed `period` window allowing `limit`: `None` if it
/// is allowed, else the time left in the window.
fn over(window: &Mutex<(Option<Instant>, u32)>, limit: u32, period: Duration) -> Option<Duration> {
    let mut window = window.lock();
    let now = Instant::now();
    let start = *window.0.get_or_insert(now);
    let elapsed = now.duration_since(start);
    if elapsed >= period {
        *window = (Some(now), 0);
    }
    if window.1 >= limit {
        return Some(period.saturating_sub(elapsed));
    }
    window.1 += 1;
    None
}

/// A number in [0, 1) from the seed, key and attempt (splitmix64).
fn unit(seed: u64, key: &str, attempt: u64) -> f64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for b in key.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl FaultState {
    pub(crate) fn decide(&self, faults: &Faults, key: &str) -> Fault {
        if faults.per_second > 0
            && over(&self.second, faults.per_second, Duration::from_secs(1)).is_some()
        {
            return Fault::OverRate;
        }
        if faults.per_minute > 0
            && let Some(left) = over(&self.window, faults.per_minute, Duration::from_secs(60))
        {
            return Fault::Throttle {
                retry_after_s: left.as_secs().max(1),
            };
        }
        let attempt = {
            let mut seen = self.seen.lock();
            let n = seen.entry(key.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let x = unit(faults.seed, key, attempt);
        let mut edge = faults.error_rate;
        if x < edge {
            return Fault::Error;
        }
        edge += faults.throttle_rate;
        if x < edge {
            return Fault::Throttle { retry_after_s: 1 };
        }
        edge += faults.reset_rate;
        if x < edge {
            return Fault::Reset;
        }
        edge += faults.slow_rate;
        if x < edge {
            return Fault::Slow;
        }
        Fault::None
    }

    /// A 2xx answer for `key` went out.
    pub(crate) fn succeeded(&self, key: &str) {
        let mut s = self.successes.lock();
        s.0 += 1;
        s.1.insert(key.to_string());
    }

    /// (2xx answers, distinct keys answered 2xx).
    pub(crate) fn successes(&self) -> (u64, u64) {
        let s = self.successes.lock();
        (s.0, s.1.len() as u64)
    }

    pub(crate) fn reset(&self) {
        self.seen.lock().clear();
        *self.window.lock() = (None, 0);
        *self.second.lock() = (None, 0);
        *self.successes.lock() = (0, HashSet::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_deterministic_and_near_the_rates() {
        let faults = Faults {
            seed: 7,
            error_rate: 0.2,
            throttle_rate: 0.05,
            ..Faults::default()
        };
        let count = |state: &FaultState| {
            (0..10_000)
                .filter(|i| state.decide(&faults, &format!("k{i}")) == Fault::Error)
                .count()
        };
        let (a, b) = (count(&FaultState::default()), count(&FaultState::default()));
        assert_eq!(a, b);
        assert!((1_800..2_200).contains(&a), "{a}");
    }

    #[test]
    fn per_second_limit_refuses_at_once() {
        let faults = Faults {
            per_second: 2,
            ..Faults::default()
        };
        let state = FaultState::default();
        let got: Vec<_> = (0..4)
            .map(|i| state.decide(&faults, &i.to_string()))
            .collect();
        assert_eq!(
            got,
            [Fault::None, Fault::None, Fault::OverRate, Fault::OverRate]
        );
    }

    #[test]
    fn per_minute_limit_throttles() {
        let faults = Faults {
            per_minute: 3,
            ..Faults::default()
        };
        let state = FaultState::default();
        let got: Vec<_> = (0..5)
            .map(|i| state.decide(&faults, &i.to_string()))
            .collect();
        assert_eq!(got[..3], [Fault::None; 3]);
        assert!(matches!(got[3], Fault::Throttle { retry_after_s } if retry_after_s >= 59));
    }
}
