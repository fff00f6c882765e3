//! One key's limits: the phase it is in, and how each answer moves them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Reason, Rules, START_WINDOW, Signal};

mod advert;
mod latency;
mod overload;
mod rate;
mod start;

use crate::quota::Quota;
use advert::Pace;
use latency::Latency;
use rate::Learned;

/// Where a key's concurrency limit is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    /// No answer yet: at most `window` calls (from [`START_WINDOW`]); once
    /// they have all started (`full`, when), it doubles [`FIRST_STEP`] later
    /// the first time, [`START_STEP`] later after (`doubled`): a step's
    /// immediate refusals are read before the next step, however long the
    /// machine took to send it.
    Ramp {
        window: usize,
        full: Option<Instant>,
        doubled: bool,
    },
    /// A first answer said "slow down" at `since`: no more than `window` calls
    /// until the key's answers tell load from chance ([`MIN_SAMPLE`] of them,
    /// or what came within [`HOLD_MAX`]).
    Hold { window: usize, since: Instant },
    /// Its start ended well: the window grows by one per clean answer
    /// (doubling each round trip, as TCP's slow start) up to the ceiling, so
    /// that a service whose limit lies above the start's window is not sent
    /// the whole budget at once.
    Grow { window: usize },
    /// Not limited (never overloaded, or grown back to the ceiling).
    Free,
    /// Overloaded: at most `limit` calls (AIMD), since its cut to `base` at
    /// `since`.
    Bound {
        limit: f64,
        base: f64,
        since: Instant,
    },
}

/// A call's answer, as the limits see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answer {
    pub signal: Signal,
    /// When the call started, and the calls in flight then (itself included).
    pub started: Instant,
    pub level: usize,
    /// How long a throttled answer asked to wait.
    pub retry_after: Option<Duration>,
    /// The call was the `seq`-th to start (see [`State::sent`]).
    pub seq: u64,
}

/// What a call to the key must wait for before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    Open(usize),
    /// A call in flight to end.
    Freed,
    /// This moment (the rate's next send).
    Until(Instant),
    /// The ramp's next step, at this moment (then [`State::stepped`]).
    Step(Instant),
}

/// One key's limits and what they went through.
#[derive(Debug)]
pub(super) struct State {
    pub ceiling: usize,
    pub phase: Phase,
    pub in_flight: usize,
    /// A waiter sleeps until the ramp's next step.
    stepping: bool,
    /// Clean, throttled and overloaded answers while in the ramp or held.
    first: [usize; 3],
    /// Lowest limit so far (the ceiling when never cut).
    pub lowest: f64,
    /// Mean round trip of clean answers (exponentially weighted).
    pub rtt: Duration,
    /// The learned send rate (calls per second), if any, and how it was learned.
    pub rate: Option<f64>,
    learned: Option<Learned>,
    /// No call starts before then (the rate's spacing, a `Retry-After`).
    pub next_send: Instant,
    pub last_rate_cut: Option<Instant>,
    /// The quotas the key's answers advertised.
    paces: Vec<Pace>,
    /// Calls started so far.
    pub sent: u64,
    latency: Latency,
    /// Clean answers so far.
    clean_total: u64,
    /// When the clean, throttled and overloaded answers of the last second arrived.
    recent_ok: VecDeque<Instant>,
    recent_throttled: VecDeque<Instant>,
    recent_overloaded: VecDeque<Instant>,
    /// When, and at how many calls in flight, calls sent at a bound key's
    /// limit were refused as overloaded (the last second's).
    refused_levels: VecDeque<(Instant, usize)>,
    pub throttled: u64,
    pub overloaded: u64,
    /// Time calls waited for their start, in all.
    pub waited: Duration,
    pub used: Instant,
}

impl State {
    pub fn new(ceiling: usize, now: Instant) -> Self {
        Self {
            ceiling,
            phase: Phase::Ramp {
                window: START_WINDOW,
                full: None,
                doubled: false,
            },
            in_flight: 0,
            stepping: false,
            first: [0; 3],
            lowest: ceiling as f64,
            rtt: Duration::ZERO,
            rate: None,
            learned: None,
            next_send: now,
            last_rate_cut: None,
            paces: Vec::new(),
            sent: 0,
            latency: Latency::default(),
            clean_total: 0,
            recent_ok: VecDeque::new(),
            recent_throttled: VecDeque::new(),
            recent_overloaded: VecDeque::new(),
            refused_levels: VecDeque::new(),
            throttled: 0,
            overloaded: 0,
            waited: Duration::ZERO,
            used: now,
        }
    }

    /// Whether the key learned a rate or a latency limit, or was advertised
    /// quotas.
    pub fn paced(&self) -> bool {
        self.rate.is_some() || self.advertised() || self.latency_limit().is_some()
    }

    /// The pace in force (calls per second) and why.
    pub fn pace(&self, now: Instant) -> (Option<f64>, Option<Reason>) {
        match (self.advertised_rate(now), self.rate) {
            (Some(r), _) => (Some(r), Some(Reason::Advertised)),
            (None, _) if self.advertised() => (None, Some(Reason::Advertised)),
            (None, Some(r)) => (Some(r), Some(Reason::Learned)),
            (None, None) => (None, None),
        }
    }

    /// The limit the key's answers hold it at (a start still growing its
    /// window is not held: it reports the ceiling).
    pub fn held(&self, now: Instant) -> usize {
        let latency = self.latency_limit().unwrap_or(usize::MAX);
        match self.phase {
            Phase::Grow { .. } => self.ceiling.min(latency),
            _ => self.limit(now).min(self.ceiling),
        }
    }

    /// What holds the key's limit below its ceiling, if anything.
    pub fn limited_by(&self, now: Instant) -> Option<Reason> {
        let phase = self.phase_limit(now).min(self.ceiling);
        match self.latency_limit() {
            Some(l) if l < phase => Some(Reason::Latency),
            _ if self.overloaded > 0
                && matches!(self.phase, Phase::Bound { .. } | Phase::Hold { .. }) =>
            {
                Some(Reason::Overloaded)
            }
            _ => None,
        }
    }

    /// The concurrency limit now (`usize::MAX`: none): the phase's, and the
    /// latency limit's.
    pub fn limit(&self, now: Instant) -> usize {
        self.phase_limit(now)
            .min(self.latency_limit().unwrap_or(usize::MAX))
    }

    pub(super) fn phase_limit(&self, now: Instant) -> usize {
        match self.phase {
            Phase::Ramp { window, full, .. } => match full.zip(self.next_step()) {
                Some((_, at)) if now >= at => window.saturating_mul(2),
                _ => window,
            },
            Phase::Hold { window, .. } | Phase::Grow { window } => window,
            Phase::Free => usize::MAX,
            Phase::Bound { limit, .. } => (limit.floor() as usize).max(1),
        }
    }

    /// Whether a call may start now; if so, it is counted in flight (`Open`
    /// with the calls then in flight, itself included).
    pub fn try_start(&mut self, now: Instant) -> Gate {
        self.used = now;
        self.step_ramp(now);
        let limit = self.limit(now).min(self.ceiling.max(1));
        if self.in_flight >= limit {
            return match (self.phase, self.next_step()) {
                // one waiter sleeps until the next step, the others until it
                // (or a call started after it) wakes them one by one
                (Phase::Ramp { .. }, Some(at)) if !self.stepping => {
                    self.stepping = true;
                    Gate::Step(at)
                }
                _ => Gate::Freed,
            };
        }
        if self.next_send > now {
            return Gate::Until(self.next_send);
        }
        // Retry-After, then what the service advertised, then what was learned
        if !self.paces.is_empty() {
            if let Some(at) = self.advertised_gate(now) {
                return Gate::Until(at);
            }
        } else if let Some(rate) = self.rate {
            self.next_send = self.next_send.max(now) + Duration::from_secs_f64(1.0 / rate);
        }
        self.advertised_started(now);
        self.in_flight += 1;
        self.ramp_started(now, limit);
        Gate::Open(self.in_flight)
    }

    /// A call started at `started` with `level` calls in flight (itself
    /// included) ended with `signal` at `now`, its answer advertising `quotas`.
    pub fn answered(&mut self, answer: Answer, quotas: &[Quota], rules: Rules, now: Instant) {
        let Answer {
            signal,
            started,
            level,
            retry_after,
            seq,
        } = answer;
        if !quotas.is_empty() {
            self.advertised_answer(quotas, seq, now);
        }
        let recent = match signal {
            Signal::Clean => &mut self.recent_ok,
            Signal::Throttled => &mut self.recent_throttled,
            Signal::Overloaded => &mut self.recent_overloaded,
        };
        recent.push_back(now);
        if self.young() {
            self.first[signal as usize] += 1;
        }
        for times in [
            &mut self.recent_ok,
            &mut self.recent_throttled,
            &mut self.recent_overloaded,
        ] {
            last_second(times, now);
        }
        while self
            .refused_levels
            .front()
            .is_some_and(|(t, _)| now - *t > Duration::from_secs(1))
        {
            self.refused_levels.pop_front();
        }
        match signal {
            Signal::Clean => {
                if rules.latency {
                    self.latency_answer(started, now - started, level, now);
                }
                self.clean(now - started, now);
            }
            Signal::Throttled if self.advertised() || !rules.learn_rate => {
                // the quotas pace it: only the wait it asked for is added
                self.throttled += 1;
                self.next_send = self.next_send.max(now + retry_after.unwrap_or_default());
            }
            Signal::Throttled => {
                self.throttled += 1;
                // a 429 first: one call at a time until the answers tell
                self.first_refusal(1);
                self.throttled_rate(started, retry_after, now);
            }
            Signal::Overloaded => {
                self.overloaded += 1;
                self.first_refusal(self.in_flight.saturating_sub(1));
                self.overload(started, level, now);
            }
        }
        if let Phase::Hold { .. } = self.phase {
            self.decide(started, now);
        }
    }

    fn clean(&mut self, rtt: Duration, now: Instant) {
        self.clean_total += 1;
        self.rtt = if self.rtt.is_zero() {
            rtt
        } else {
            self.rtt.mul_f64(0.9) + rtt.mul_f64(0.1)
        };
        let ceiling = self.ceiling as f64;
        match self.phase {
            // a clean first answer: nothing to fear from this key, but its
            // window grows from what was sent
            Phase::Ramp { .. } => self.grow_from(self.phase_limit(now)),
            Phase::Grow { window } => self.grow_from(window + 1),
            _ => {}
        }
        match &mut self.phase {
            Phase::Bound { limit, .. } => {
                // not past what was refused lately (unless cut below it)
                let top = self.refused_levels.iter().map(|&(_, l)| l).min();
                let top = top.map_or(ceiling, |l| (l.saturating_sub(1) as f64).max(*limit));
                *limit = (*limit + 1.0 / limit.max(1.0)).min(ceiling).min(top);
                if *limit >= ceiling {
                    self.phase = Phase::Free;
                }
            }
            Phase::Ramp { .. } | Phase::Grow { .. } | Phase::Hold { .. } | Phase::Free => {}
        }
        self.rate_grows(now);
    }

    /// The key's window grows from `window` (free at the ceiling).
    fn grow_from(&mut self, window: usize) {
        let window = window.max(self.in_flight).max(START_WINDOW);
        self.phase = if window >= self.ceiling {
            Phase::Free
        } else {
            Phase::Grow { window }
        };
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
