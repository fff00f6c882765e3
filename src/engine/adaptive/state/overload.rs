//! A key's concurrency limit under overload (AIMD): cut when a share of its
//! answers says "overloaded", shaved below a level that was refused.

use std::time::Instant;

use super::super::{BACKOFF, SIGNAL_SHARE};
use super::{Phase, State};

impl State {
    /// Cuts the limit to [`BACKOFF`] × the calls in flight, at most `limit`.
    pub(super) fn cut_to(&mut self, limit: f64, now: Instant) {
        let limit = limit.min(self.in_flight as f64 * BACKOFF).max(1.0);
        self.lowest = self.lowest.min(limit);
        self.phase = Phase::Bound {
            limit,
            base: limit,
            since: now,
        };
    }

    /// An overloaded answer: a free key is cut when a share of its answers
    /// says so (chance failures do not); a bound key too, at most once per
    /// call sent after its last cut (one burst counts once; each of the
    /// burst's refusals brings the limit down to the calls still in flight,
    /// what the service took). A call refused at
    /// a bound key's limit also sets the limit below it (not more than
    /// [`BACKOFF`] under the last cut: chance refusals shave, never sink it).
    pub(super) fn overload(&mut self, started: Instant, level: usize, now: Instant) {
        let share = self.shares().is_some_and(|(_, o)| o >= SIGNAL_SHARE);
        match self.phase {
            Phase::Free | Phase::Grow { .. } if share => self.cut_to(self.ceiling as f64, now),
            Phase::Bound { limit, since, .. } if share && started >= since => {
                self.cut_to(limit, now);
            }
            Phase::Bound { limit, since, .. } if started < since => {
                // the burst the cut was for: the calls still in flight (this
                // one no longer is) are what the service took
                let limit = limit.min(self.in_flight.saturating_sub(1).max(1) as f64);
                self.lowest = self.lowest.min(limit);
                self.phase = Phase::Bound {
                    limit,
                    base: limit,
                    since,
                };
            }
            Phase::Bound { limit, base, since } if level >= limit.floor() as usize => {
                self.refused_levels.push_back((now, level));
                let below = (level.saturating_sub(1) as f64)
                    .max(base * BACKOFF)
                    .max(1.0);
                self.phase = Phase::Bound {
                    limit: limit.min(below),
                    base,
                    since,
                };
                self.lowest = self.lowest.min(limit.min(below));
            }
            _ => {}
        }
    }
}
