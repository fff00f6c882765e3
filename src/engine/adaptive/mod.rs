//! Adaptive limits per key (for HTTP: per host): how many calls may be in flight
//! to it, and how fast they may start, from the signals its answers give.
//!
//! * **Start**: a new key's calls start in a ramp, [`START_WINDOW`] doubling
//!   [`FIRST_STEP`] after they have all started, then [`START_STEP`] after
//!   each doubled window has (1,000 calls within about 10 ms; a step's
//!   immediate refusals are read before the next step, however long the
//!   machine took to send it; one waiter sleeps until the next step and wakes
//!   the others one by one), until its first answer: a clean one frees the key; a refusal holds it (at the calls
//!   still in flight for an overload, at one for a 429) until [`MIN_SAMPLE`]
//!   answers (or those of [`HOLD_MAX`]) tell load from chance: at least
//!   [`HOLD_SHARE`] overloaded cuts it, anything less frees it. A key held for
//!   429s alone is decided by its probe, the first call sent once the start's
//!   calls have answered: refused, its rate is capped; answered, it is free. A
//!   server that refuses at once nearby is caught after a few calls, not a
//!   whole budget's burst.
//! * **Concurrency, AIMD** (the algorithm of TCP's congestion avoidance and of
//!   Netflix concurrency-limits' `AIMDLimit`): when at least [`SIGNAL_SHARE`] of
//!   the key's answers of the last second (at least [`MIN_SAMPLE`]) said
//!   "overloaded" (for HTTP: 502, 503, 504, a refused connection, a timeout), the
//!   key's limit is cut to [`BACKOFF`] × the calls in flight at that moment —
//!   once per call sent after the last cut, so one burst of refusals counts
//!   once; every clean answer adds 1 / limit, i.e. one call per round trip once
//!   the limit is used. A call refused at a bound key's limit sets the limit
//!   just below the calls then in flight (never more than [`BACKOFF`] under the
//!   last cut), and the limit does not grow past that level for a second: a
//!   server refusing above N calls is refused about once a second, not at every
//!   probe. A key binds only from its first cut until it has grown back to the
//!   ceiling (the session's budget): a service that never complains costs
//!   nothing after its start.
//! * **Rate** (like the AWS SDKs' adaptive retry mode): when at least
//!   [`SIGNAL_SHARE`] of the key's answers of the last second (at least
//!   [`MIN_SAMPLE`] of them; [`HOLD_SHARE`] of a key's first answers) said
//!   "too many requests" (429), its send rate is
//!   capped at [`BACKOFF`] × its clean answers of that second, and the next
//!   call waits the `Retry-After` of that answer, and until a second after the
//!   first of those clean answers (they were sent under the cap's second
//!   already: a service counting calls per second refuses none of the
//!   following ones); each clean answer raises the
//!   cap by [`RATE_PROBE`] / cap or [`RATE_GROWTH`] × cap, whichever is more,
//!   and a cap that no longer binds is dropped. A 429 to a capped key shaves
//!   the cap (not below [`BACKOFF`] × the last cut), and the cap grows back to
//!   no more than [`RATE_MARGIN`] × the clean answers of the second before
//!   that 429 for [`RATE_MEMORY`]. A service that sheds a
//!   few requests at random (fewer than that share) keeps its full rate: each
//!   refused request waits its `Retry-After` alone.
//!
//! A key's state is kept while it is used, and dropped after [`IDLE`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use state::{Answer, Gate, State};

mod state;

/// What an answer said about the service's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
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
/// Requests per second a rate cap grows by each second of clean answers (at
/// least: a cap grows by [`RATE_GROWTH`] of itself per clean answer when that
/// is more, so a high rate cut low at first is soon back).
pub const RATE_PROBE: f64 = 0.5;
/// Share of itself a rate cap grows by per clean answer, at least.
pub const RATE_GROWTH: f64 = 0.005;
/// Share of the rate a capped key was refused at (its clean answers of the
/// second before) that its cap may grow back to within [`RATE_MEMORY`].
pub const RATE_MARGIN: f64 = 0.95;
/// How long a capped key remembers the rate it was refused at.
pub const RATE_MEMORY: Duration = Duration::from_secs(5);
/// Share of the last second's answers that must say "throttled" to cap the
/// rate, or "overloaded" to cut the concurrency limit: a service that fails a
/// few requests at random keeps its limits.
pub const SIGNAL_SHARE: f64 = 0.25;
/// Share of a new key's first answers that must say "overloaded" for its
/// start to end in a cut (a first refusal by chance must not).
pub const HOLD_SHARE: f64 = 0.5;
/// How long a held key waits for [`MIN_SAMPLE`] answers before it decides on
/// those it has.
pub const HOLD_MAX: Duration = Duration::from_secs(1);
/// Answers in the last second needed before a share means anything.
pub const MIN_SAMPLE: usize = 10;
/// Calls a new key may have in flight at first; doubled [`FIRST_STEP`] after
/// they have all started, then [`START_STEP`] after each doubled window has,
/// until its first answer.
pub const START_WINDOW: usize = 8;
/// How long after a new key's first window has started it doubles.
pub const FIRST_STEP: Duration = Duration::from_millis(2);
/// How long after each doubled window has started it doubles again.
pub const START_STEP: Duration = Duration::from_millis(1);
/// A key unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(60);

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

/// One key's limits (see [`Adaptive::entry`]).
#[derive(Debug)]
pub struct Key {
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
    /// Calls in flight to the key when it started, itself included.
    level: usize,
    /// How long the call waited for its start.
    waited: Duration,
}

impl Key {
    /// Waits until a call to this key may start under its limits (`ceiling`:
    /// the most it may ever have in flight).
    pub async fn acquire(self: &Arc<Self>, ceiling: usize) -> KeySlot {
        let ceiling = ceiling.max(1);
        let mut asked = None;
        loop {
            let freed = self.freed.notified();
            let gate = {
                let mut s = self.state.lock();
                let now = Instant::now();
                let asked = *asked.get_or_insert(now);
                s.ceiling = ceiling;
                match s.try_start(now) {
                    Gate::Open(level) => {
                        let more = s.ramp_room(now);
                        drop(s);
                        if more {
                            self.freed.notify_one();
                        }
                        return KeySlot {
                            key: Arc::clone(self),
                            started: now,
                            level,
                            waited: now - asked,
                        };
                    }
                    gate => gate,
                }
            };
            match gate {
                Gate::Until(at) => tokio::time::sleep_until(at.into()).await,
                Gate::Step(at) => {
                    // dropped while asleep too: another waiter takes the step
                    let _stepped = Stepped(self);
                    tokio::time::sleep_until(at.into()).await;
                }
                Gate::Freed | Gate::Open(_) => freed.await,
            }
        }
    }
}

impl Adaptive {
    /// The limits of `key`, made when it has none (`ceiling`: the most calls it
    /// may ever have in flight). Looked up once, they serve every call to the
    /// key made with them ([`Key::acquire`]).
    pub fn entry(&self, key: &str, ceiling: usize) -> Arc<Key> {
        let mut keys = self.keys.lock();
        if let Some(k) = keys.get(key) {
            return Arc::clone(k);
        }
        let now = Instant::now();
        keys.retain(|_, k| Arc::strong_count(k) > 1 || now - k.state.lock().used < IDLE);
        let k = Arc::new(Key {
            state: Mutex::new(State::new(ceiling.max(1), now)),
            freed: Notify::new(),
        });
        keys.insert(key.to_string(), Arc::clone(&k));
        k
    }

    /// [`Key::acquire`] for `key`, looked up now.
    #[cfg(test)]
    pub async fn acquire(&self, key: &str, ceiling: usize) -> KeySlot {
        self.entry(key, ceiling).acquire(ceiling).await
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
                    limit: s.limit(Instant::now()).min(s.ceiling),
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
    /// How long the call waited for its start (zero when it started at once).
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The call ended with `signal`: the key's limits follow it.
    #[cfg(test)]
    pub fn answered(self, signal: Signal) {
        self.answered_after(signal, None);
    }

    /// The call ended with `signal`, asking to wait `retry_after` (a throttled
    /// answer's hint): the key's limits follow it.
    pub fn answered_after(self, signal: Signal, retry_after: Option<Duration>) {
        let mut s = self.key.state.lock();
        let now = Instant::now();
        let before = s.limit(now);
        let answer = Answer {
            signal,
            started: self.started,
            level: self.level,
            retry_after,
        };
        s.answered(answer, now);
        let rose = s.limit(now) > before;
        drop(s);
        if rose {
            // a start window ended, a hold was lifted: every waiter may go
            self.key.freed.notify_waiters();
        }
    }
}

/// The waiter of a ramp's step is awake (or gone): the next may step.
struct Stepped<'a>(&'a Key);

impl Drop for Stepped<'_> {
    fn drop(&mut self) {
        self.0.state.lock().stepped();
        self.0.freed.notify_one();
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
mod tests;
