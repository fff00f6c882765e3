//! A key's start: the ramp until its first answer, the hold after a first
//! refusal, and the decision that ends it.

use std::time::Instant;

use super::super::{FIRST_STEP, HOLD_MAX, HOLD_SHARE, MIN_SAMPLE, START_STEP, Signal};
use super::{Phase, State};

impl State {
    /// When the ramp's window doubles next (`None`: not full yet, or not in
    /// the ramp).
    pub(super) fn next_step(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ramp {
                full: Some(at),
                doubled,
                ..
            } => Some(at + if doubled { START_STEP } else { FIRST_STEP }),
            _ => None,
        }
    }

    /// The ramp's window doubles once its step has come (when
    /// [`State::limit`] says it has).
    pub(super) fn step_ramp(&mut self, now: Instant) {
        if let Phase::Ramp { window, .. } = self.phase
            && self.phase_limit(now) > window
        {
            self.phase = Phase::Ramp {
                window: self.phase_limit(now),
                full: None,
                doubled: true,
            };
        }
    }

    /// A call started in the ramp: the window is full once `limit` are in
    /// flight.
    pub(super) fn ramp_started(&mut self, now: Instant, limit: usize) {
        if let Phase::Ramp {
            full: full @ None, ..
        } = &mut self.phase
            && self.in_flight >= limit
        {
            *full = Some(now);
        }
    }

    /// The waiter of a ramp's step woke up.
    pub fn stepped(&mut self) {
        self.stepping = false;
    }

    /// Whether a ramping key has room for another call (the next waiter may go).
    pub fn ramp_room(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Ramp { .. })
            && self.in_flight < self.limit(now).min(self.ceiling)
    }

    /// A refusal in the ramp holds the key at `window` calls (for an
    /// overload: the calls still in flight, this one no longer is); every
    /// further refusal while held lowers it.
    pub(super) fn first_refusal(&mut self, window: usize) {
        let in_flight = window.max(1);
        match self.phase {
            // a growing start too: the window stops before it sends more
            Phase::Ramp { .. } | Phase::Grow { .. } => {
                self.phase = Phase::Hold {
                    window: in_flight,
                    since: Instant::now(),
                }
            }
            Phase::Hold { window, since } => {
                self.phase = Phase::Hold {
                    window: window.min(in_flight),
                    since,
                }
            }
            Phase::Free | Phase::Bound { .. } => {}
        }
    }

    /// Whether the key is in its start (ramp or hold).
    pub(super) fn young(&self) -> bool {
        matches!(self.phase, Phase::Ramp { .. } | Phase::Hold { .. })
    }

    /// Whether the answer to a call started at `started` is a held key's
    /// probe: the key was held for 429s alone and the call was sent since
    /// (one call at a time, after every call of the start had answered). A
    /// service that throttles by chance answers it; one at its rate limit
    /// refuses it too.
    pub(super) fn probe(&self, started: Instant) -> bool {
        matches!(self.phase, Phase::Hold { since, .. } if started >= since)
            && self.first[Signal::Overloaded as usize] == 0
    }

    /// Shares of the answers, (throttled, overloaded), once there are enough
    /// of them to mean anything: a key's first answers while it is young (all
    /// that came once it has been held for [`HOLD_MAX`]: a slow service must
    /// not stay held), the last second's after.
    pub(super) fn shares(&self) -> Option<(f64, f64)> {
        let ([ok, t, o], enough) = match self.phase {
            Phase::Ramp { .. } => (self.first, MIN_SAMPLE),
            Phase::Hold { since, .. } => {
                let waited = since.elapsed() >= HOLD_MAX;
                (self.first, if waited { 1 } else { MIN_SAMPLE })
            }
            Phase::Free | Phase::Grow { .. } | Phase::Bound { .. } => (
                [
                    self.recent_ok.len(),
                    self.recent_throttled.len(),
                    self.recent_overloaded.len(),
                ],
                MIN_SAMPLE,
            ),
        };
        let all = ok + t + o;
        (all >= enough).then(|| (t as f64 / all as f64, o as f64 / all as f64))
    }

    /// Held after a first refusal: once the sample is large enough, bound (the
    /// service is overloaded) or free (it refused by chance, or only asks for a
    /// slower rate, which the rate cap handles).
    pub(super) fn decide(&mut self, started: Instant, now: Instant) {
        let Phase::Hold { window, .. } = self.phase else {
            return;
        };
        if self.first[Signal::Overloaded as usize] == 0 {
            // held for 429s alone: its probe decides, answered or refused
            // (the rate cap was set then); the key is free after it
            if self.probe(started) {
                self.phase = Phase::Free;
            }
            return;
        }
        match self.shares() {
            Some((_, overloaded)) if overloaded >= HOLD_SHARE => {
                self.cut_to(window as f64, now);
            }
            Some(_) => self.phase = Phase::Free,
            None => {}
        }
    }
}
