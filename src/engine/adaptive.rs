//! Adaptive limits per key (for HTTP: per host): how many calls may be in flight
//! to it, and how fast they may start, from the signals its answers give.
//!
//! * **Concurrency, AIMD** (the algorithm of TCP's congestion avoidance and of
//!   Netflix concurrency-limits' `AIMDLimit`): when at least [`SIGNAL_SHARE`] of
//!   the key's answers of the last second (at least [`MIN_SAMPLE`]) said
//!   "overloaded" (for HTTP: 502, 503, 504, a refused connection, a timeout), the
//!   next such answer cuts the key's limit to [`BACKOFF`] × the calls in flight
//!   at that moment — at most once per round trip, so one burst of refusals
//!   counts once; every clean answer adds
//!   1 / limit, i.e. one call per round trip once the limit is used. A key binds
//!   only from its first cut until it has grown back to the ceiling (the
//!   session's budget): a service that never complains costs nothing.
//! * **Rate** (like the AWS SDKs' adaptive retry mode): when at least
//!   [`SIGNAL_SHARE`] of the key's answers of the last second (at least
//!   [`MIN_SAMPLE`] of them) said "too many requests" (429), its send rate is
//!   capped at [`BACKOFF`] × its clean answers per second over that second (at
//!   most one cut per second); each clean answer raises the cap
//!   by [`RATE_PROBE`] / cap, i.e. about `RATE_PROBE` requests per second every
//!   second, and a cap that no longer binds is dropped. A service that sheds a
//!   few requests at random (fewer than that share) keeps its full rate: each
//!   refused request waits its `Retry-After` alone.
//!
//! A key's state is kept while it is used, and dropped after [`IDLE`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// What an answer said about the service's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A normal answer (whatever its status).
    Clean,
    /// Asked to slow down (HTTP 429).
    Throttled,
    /// Overloaded or unreachable (HTTP 502/503/504, connection refused).
    Overloaded,
}

/// The factor of every cut.
pub const BACKOFF: f64 = 0.9;
/// Requests per second a rate cap grows by each second of clean answers.
pub const RATE_PROBE: f64 = 0.5;
/// Share of the last second's answers that must say "throttled" to cap the
/// rate, or "overloaded" to cut the concurrency limit: a service that fails a
/// few requests at random keeps its limits.
pub const SIGNAL_SHARE: f64 = 0.25;
/// Answers in the last second needed before a 429 share means anything.
pub const MIN_SAMPLE: usize = 10;
/// A key unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(60);

/// One key's limits and what they went through.
#[derive(Debug)]
struct State {
    ceiling: usize,
    limit: f64,
    in_flight: usize,
    /// Lowest limit so far (the highest is the ceiling).
    lowest: f64,
    /// Mean round trip of clean answers (exponentially weighted).
    rtt: Duration,
    last_cut: Option<Instant>,
    rate: Option<f64>,
    next_send: Instant,
    last_rate_cut: Option<Instant>,
    /// When the clean and the throttled answers of the last second arrived.
    recent_ok: VecDeque<Instant>,
    recent_throttled: VecDeque<Instant>,
    recent_overloaded: VecDeque<Instant>,
    throttled: u64,
    overloaded: u64,
    used: Instant,
}

/// What a key's limits did, for `EXPLAIN ANALYZE` and the progress line.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyReport {
    pub key: String,
    /// The concurrency limit now, and the lowest it went.
    pub limit: usize,
    pub lowest: usize,
    pub ceiling: usize,
    /// The send-rate cap now (requests per second), if any.
    pub rate: Option<f64>,
    pub throttled: u64,
    pub overloaded: u64,
}

#[derive(Debug)]
struct Key {
    state: Mutex<State>,
    freed: Notify,
}

/// The adaptive limits of every key of a session.
#[derive(Debug, Default)]
pub struct Adaptive {
    keys: Mutex<HashMap<String, Arc<Key>>>,
}

/// A call in flight to a key; report its answer with [`KeySlot::answered`].
#[derive(Debug)]
pub struct KeySlot {
    key: Arc<Key>,
    started: Instant,
}

impl Adaptive {
    /// Waits until a call to `key` may start under its limits (`ceiling`: the
    /// most it may ever have in flight).
    pub async fn acquire(&self, key: &str, ceiling: usize) -> KeySlot {
        let ceiling = ceiling.max(1);
        let entry = self.key(key, ceiling);
        loop {
            let freed = entry.freed.notified();
            let wait = {
                let mut s = entry.state.lock();
                let now = Instant::now();
                s.used = now;
                s.ceiling = ceiling;
                // a key that was never cut (or grew back to the ceiling) is
                // not limited: queries with other budgets share it
                let bound = s.last_cut.is_some();
                if bound && s.in_flight >= (s.limit.floor() as usize).max(1) {
                    None
                } else if s.rate.is_some() && s.next_send > now {
                    Some(s.next_send)
                } else {
                    if let Some(rate) = s.rate {
                        s.next_send = s.next_send.max(now) + Duration::from_secs_f64(1.0 / rate);
                    }
                    s.in_flight += 1;
                    return KeySlot {
                        key: Arc::clone(&entry),
                        started: now,
                    };
                }
            };
            match wait {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => freed.await,
            }
        }
    }

    fn key(&self, key: &str, ceiling: usize) -> Arc<Key> {
        let mut keys = self.keys.lock();
        if let Some(k) = keys.get(key) {
            return Arc::clone(k);
        }
        let now = Instant::now();
        keys.retain(|_, k| Arc::strong_count(k) > 1 || now - k.state.lock().used < IDLE);
        let k = Arc::new(Key {
            state: Mutex::new(State {
                ceiling,
                limit: ceiling as f64,
                in_flight: 0,
                lowest: ceiling as f64,
                rtt: Duration::ZERO,
                last_cut: None,
                rate: None,
                next_send: now,
                last_rate_cut: None,
                recent_ok: VecDeque::new(),
                recent_throttled: VecDeque::new(),
                recent_overloaded: VecDeque::new(),
                throttled: 0,
                overloaded: 0,
                used: now,
            }),
            freed: Notify::new(),
        });
        keys.insert(key.to_string(), Arc::clone(&k));
        k
    }

    /// What the keys' limits did, keys in name order.
    pub fn report(&self) -> Vec<KeyReport> {
        let keys = self.keys.lock();
        let mut out: Vec<KeyReport> = keys
            .iter()
            .map(|(key, k)| {
                let s = k.state.lock();
                KeyReport {
                    key: key.clone(),
                    limit: if s.last_cut.is_some() {
                        s.limit.floor() as usize
                    } else {
                        s.ceiling
                    },
                    lowest: s.lowest.floor() as usize,
                    ceiling: s.ceiling,
                    rate: s.rate,
                    throttled: s.throttled,
                    overloaded: s.overloaded,
                }
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

impl KeySlot {
    /// The call ended with `signal`: the key's limits follow it.
    pub fn answered(self, signal: Signal) {
        let now = Instant::now();
        let mut s = self.key.state.lock();
        let rtt = now - self.started;
        let ceiling = s.ceiling as f64;
        match signal {
            Signal::Clean => {
                s.rtt = if s.rtt.is_zero() {
                    rtt
                } else {
                    s.rtt.mul_f64(0.9) + rtt.mul_f64(0.1)
                };
                s.limit = (s.limit + 1.0 / s.limit.max(1.0)).min(ceiling);
                if s.limit >= ceiling {
                    s.last_cut = None;
                }
                s.recent_ok.push_back(now);
                last_second(&mut s.recent_ok, now);
                if let Some(rate) = s.rate {
                    let rate = rate + RATE_PROBE / rate.max(1.0);
                    // a cap above what the concurrency limit can send binds nothing
                    let unbound = s.rtt > Duration::ZERO
                        && rate > 2.0 * s.limit / s.rtt.as_secs_f64().max(1e-3);
                    s.rate = (!unbound).then_some(rate);
                }
            }
            Signal::Overloaded => {
                s.overloaded += 1;
                s.recent_overloaded.push_back(now);
                last_second(&mut s.recent_overloaded, now);
                last_second(&mut s.recent_ok, now);
                let (ok, bad) = (s.recent_ok.len(), s.recent_overloaded.len());
                let round = s.rtt.max(Duration::from_millis(10));
                if ok + bad >= MIN_SAMPLE
                    && bad as f64 >= SIGNAL_SHARE * (ok + bad) as f64
                    && s.last_cut.is_none_or(|t| now - t >= round)
                {
                    // the calls in flight when the refusal came, this one included
                    let limit = if s.last_cut.is_some() {
                        s.limit
                    } else {
                        ceiling
                    };
                    s.limit = (s.in_flight as f64 * BACKOFF).min(limit).max(1.0);
                    s.lowest = s.lowest.min(s.limit);
                    s.last_cut = Some(now);
                }
            }
            Signal::Throttled => {
                s.throttled += 1;
                s.recent_throttled.push_back(now);
                last_second(&mut s.recent_throttled, now);
                last_second(&mut s.recent_ok, now);
                let ok = s.recent_ok.len() as f64;
                let throttled = s.recent_throttled.len() as f64;
                // clean answers per second, over the part of the last second the
                // key has been answering (a young key's second is not full)
                let first = s.recent_ok.front().copied().unwrap_or(now);
                let span = (now - first).as_secs_f64().clamp(0.1, 1.0);
                let cap = (ok / span * BACKOFF).max(1.0);
                if s.last_rate_cut
                    .is_some_and(|t| now - t < Duration::from_secs(1))
                {
                    // the second of the last cut: what was measured since counts
                    // (a burst's answers arrive in any order)
                    s.rate = s.rate.map(|r| r.max(cap));
                } else if s.recent_ok.len() + s.recent_throttled.len() >= MIN_SAMPLE
                    && throttled >= SIGNAL_SHARE * (ok + throttled)
                {
                    s.rate = Some(s.rate.map_or(cap, |r| r.min(cap)));
                    s.last_rate_cut = Some(now);
                }
            }
        }
        drop(s);
    }
}

/// Drops the times older than a second.
fn last_second(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now - *t > Duration::from_secs(1))
    {
        times.pop_front();
    }
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut s = self.key.state.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        drop(s);
        self.key.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn overload_cuts_to_what_was_in_flight_once_per_round() {
        let a = Adaptive::default();
        let mut slots = Vec::new();
        for _ in 0..40 {
            slots.push(a.acquire("h", 64).await);
        }
        // a burst of refusals: one cut, at the 10th (when the share is known),
        // to 0.9 × the 31 then in flight
        for slot in slots.drain(..10) {
            slot.answered(Signal::Overloaded);
        }
        let r = &a.report()[0];
        assert_eq!((r.limit, r.lowest, r.overloaded), (27, 27, 10));
        // 30 in flight, over the limit: nothing more starts
        assert!(Box::pin(a.acquire("h", 64)).now_or_never().is_none());
        // clean answers grow it back by about one per round (30 at ~1/27)
        for slot in slots.drain(..) {
            slot.answered(Signal::Clean);
        }
        let r = &a.report()[0];
        assert_eq!((r.limit, r.lowest, r.ceiling), (28, 27, 64));
    }

    #[tokio::test]
    async fn a_throttled_key_gets_a_rate() {
        let a = Adaptive::default();
        // 10 clean answers at once (counted over at least 0.1 s), then 429s
        for _ in 0..10 {
            a.acquire("h", 64).await.answered(Signal::Clean);
        }
        // 2 of 12 answers 429: below the share that caps
        for _ in 0..2 {
            a.acquire("h", 64).await.answered(Signal::Throttled);
        }
        assert_eq!(a.report()[0].rate, None);
        for _ in 0..2 {
            a.acquire("h", 64).await.answered(Signal::Throttled);
        }
        // 4 of 14: capped at 0.9 × 100 clean answers per second
        assert_eq!(a.report()[0].rate.map(f64::round), Some(90.0));
        let start = Instant::now();
        for _ in 0..3 {
            a.acquire("h", 64).await.answered(Signal::Clean);
        }
        // paced: 1/90 s apart
        assert!(
            start.elapsed() >= Duration::from_millis(20),
            "{:?}",
            start.elapsed()
        );
        // other keys are not limited
        assert!(Box::pin(a.acquire("other", 64)).now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_few_random_429s_cap_nothing() {
        let a = Adaptive::default();
        for i in 0..200 {
            let signal = if i % 25 == 24 {
                Signal::Throttled
            } else {
                Signal::Clean
            };
            a.acquire("h", 64).await.answered(signal);
        }
        let r = &a.report()[0];
        assert_eq!((r.rate, r.throttled), (None, 8));
    }
}
