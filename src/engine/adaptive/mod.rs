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
//! * **Advertised quotas** (for HTTP: rate-limit headers, see
//!   [`Quota`]): what an answer said was left, less the calls sent after it,
//!   is spread evenly until its reset; a quota of zero holds every call until
//!   the reset, and a window's known quota starts the next. The latest answer
//!   of a window can only lower what is left. A key paced so learns no rate,
//!   and waits only the `Retry-After` of a refusal (which wins over all).
//! * **Learned rate**, for services that refuse without saying their limit:
//!   when at least [`SIGNAL_SHARE`] of the key's answers of the last second
//!   (at least [`MIN_SAMPLE`]; [`HOLD_SHARE`] of a key's first answers) said
//!   "too many requests" (429), the key is paced at [`RATE_MARGIN`] × the
//!   clean answers of that second; each further refusal of a paced call (sent
//!   after the last change) within ten seconds of the one before learns from
//!   all clean answers since the first, per second (a window longer than a
//!   second shows in the long run), never faster than before and never below
//!   half of it at once. The first send after a refusal waits its
//!   `Retry-After` and until a second after the first of the last second's
//!   clean answers. After [`PROBE_GAP`] without refusals the rate is probed
//!   [`PROBE_STEP`] higher for [`PROBE_LENGTH`]: refused, it goes back at once
//!   (one refusal per probe) and the gap doubles (up to [`PROBE_GAP_MAX`]);
//!   passed, it stays and the next step doubles. A service that sheds a few
//!   requests at random (fewer than that share) keeps its full rate: each
//!   refused request waits its `Retry-After` alone.
//!
//! A key's state is kept while it is used, and dropped after [`IDLE`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::quota::Quota;
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
/// Calls per second an ungrounded rate (set before any call was accepted)
/// grows by per clean answer, at least: it grows by [`RATE_GROWTH`] of itself
/// when that is more.
pub const RATE_PROBE: f64 = 0.5;
/// Share of itself an ungrounded rate grows by per clean answer, at least.
pub const RATE_GROWTH: f64 = 0.005;
/// Share of the measured accepted rate a key is paced at.
pub const RATE_MARGIN: f64 = 0.97;
/// Time without refusals before a learned rate is probed upward.
pub const PROBE_GAP: Duration = Duration::from_secs(30);
/// The longest wait between probes (after failed ones).
pub const PROBE_GAP_MAX: Duration = Duration::from_secs(480);
/// How long a probe runs before it passes.
pub const PROBE_LENGTH: Duration = Duration::from_secs(5);
/// A first probe's step up (share of the rate).
pub const PROBE_STEP: f64 = 0.05;
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
/// How far a key's median latency may rise over its unloaded latency before
/// its calls in flight are limited (and the latency the limit aims at).
pub const LATENCY_TOLERANCE: f64 = 1.25;
/// A rise of latency smaller than this is no queue worth acting on.
pub const LATENCY_FLOOR: Duration = Duration::from_millis(10);
/// A key unused this long is forgotten (one that learned a rate or was
/// advertised quotas: after [`IDLE_PACED`]).
const IDLE: Duration = Duration::from_secs(60);
/// A paced key's limits are kept this long unused: the next query of the
/// session starts paced.
const IDLE_PACED: Duration = Duration::from_secs(3600);

/// What a key's limits did, for `EXPLAIN ANALYZE` and the progress line.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyReport {
    pub key: String,
    /// The concurrency limit now, and the lowest it went.
    pub limit: usize,
    pub lowest: usize,
    pub ceiling: usize,
    /// The pace in force (calls per second), if any, and why.
    pub rate: Option<f64>,
    pub reason: Option<Reason>,
    /// What holds the limit below the ceiling, if anything.
    pub limited_by: Option<Reason>,
    pub throttled: u64,
    pub overloaded: u64,
    /// Time calls waited for their start, in all.
    pub waited: Duration,
}

/// Why a key's calls are paced or limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The service's answers advertised a quota.
    Advertised,
    /// Learned from its refusals.
    Learned,
    /// Its latency rose with the calls in flight.
    Latency,
    /// It answered "overloaded" (502/503/504, refused connections).
    Overloaded,
}

/// Which of the adaptive rules a call's answer feeds (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Advertised quotas pace the key.
    pub advertised: bool,
    /// Refusals without a quota teach the key a rate.
    pub learn_rate: bool,
    /// Rising latency limits the calls in flight.
    pub latency: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            advertised: true,
            learn_rate: true,
            latency: true,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Advertised => "advertised",
            Self::Learned => "learned",
            Self::Latency => "latency",
            Self::Overloaded => "overloaded",
        })
    }
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
    /// The calls started to the key before it, itself included.
    seq: u64,
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
                        let seq = s.sent;
                        let waited = now - asked;
                        s.waited += waited;
                        drop(s);
                        if more {
                            self.freed.notify_one();
                        }
                        return KeySlot {
                            key: Arc::clone(self),
                            started: now,
                            level,
                            seq,
                            waited,
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
        keys.retain(|_, k| {
            let s = k.state.lock();
            let idle = if s.paced() { IDLE_PACED } else { IDLE };
            Arc::strong_count(k) > 1 || now - s.used < idle
        });
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
                let now = Instant::now();
                let (rate, reason) = s.pace(now);
                KeyReport {
                    key: key.clone(),
                    limit: s.held(now),
                    lowest: s.lowest.floor() as usize,
                    ceiling: s.ceiling,
                    rate,
                    reason,
                    limited_by: s.limited_by(now),
                    throttled: s.throttled,
                    overloaded: s.overloaded,
                    waited: s.waited,
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
        self.answered_after(signal, None, &[], Rules::default());
    }

    /// The call ended with `signal`, asking to wait `retry_after` (a throttled
    /// answer's hint) and advertising `quotas`: the key's limits follow it,
    /// by the `rules` on.
    pub fn answered_after(
        self,
        signal: Signal,
        retry_after: Option<Duration>,
        quotas: &[Quota],
        rules: Rules,
    ) {
        let mut s = self.key.state.lock();
        let now = Instant::now();
        let before = s.limit(now);
        let answer = Answer {
            signal,
            started: self.started,
            level: self.level,
            retry_after,
            seq: self.seq,
        };
        let quotas = if rules.advertised { quotas } else { &[] };
        s.answered(answer, quotas, rules, now);
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
mod pace_tests;
#[cfg(test)]
mod tests;
