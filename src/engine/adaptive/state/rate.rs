//! A key's send-rate cap: cut on 429s, grown back on clean answers.

use std::time::{Duration, Instant};

use super::super::{
    BACKOFF, HOLD_SHARE, RATE_GROWTH, RATE_MARGIN, RATE_MEMORY, RATE_PROBE, SIGNAL_SHARE,
};
use super::State;

impl State {
    /// A clean answer: the cap grows by [`RATE_PROBE`] / cap or
    /// [`RATE_GROWTH`] × cap, not past the rate refused lately, and is
    /// dropped once it binds nothing.
    pub(super) fn rate_grows(&mut self, now: Instant) {
        let Some(rate) = self.rate else {
            return;
        };
        let mut rate = rate + (RATE_PROBE / rate.max(1.0)).max(RATE_GROWTH * rate);
        if let Some((top, at)) = self.rate_top {
            if now - at < RATE_MEMORY {
                // the rate refused lately, less a margin
                rate = rate.min((top * RATE_MARGIN).max(self.rate_base));
            } else {
                self.rate_top = None;
            }
        }
        // a cap above what the concurrency limit can send binds nothing
        let sendable = self.limit(now).min(self.ceiling) as f64;
        let unbound =
            self.rtt > Duration::ZERO && rate > 2.0 * sendable / self.rtt.as_secs_f64().max(1e-3);
        self.rate = (!unbound).then_some(rate);
    }

    /// A throttled answer: when a share of the last second's answers says so
    /// (most of them for a key still in its start, or its probe: see
    /// [`State::probe`]), the send rate is capped at [`BACKOFF`] × the clean
    /// answers of that second, the first send after the cut waiting the
    /// `Retry-After` the service gave, and until a second has passed since the
    /// first of those answers (they count against the cap).
    /// A capped key refused again by a call sent after the cut is shaved to
    /// that measure, never below [`BACKOFF`] × the cut (chance 429s do not
    /// sink it), and its cap does not grow past [`RATE_MARGIN`] × the clean
    /// answers of the second before for [`RATE_MEMORY`].
    pub(super) fn throttled_rate(
        &mut self,
        started: Instant,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let clean = self.recent_ok.len() as f64;
        let cap = (clean * BACKOFF).max(1.0);
        let after_cut = self.last_rate_cut.is_none_or(|t| started >= t);
        // a key's first answers cap its rate only when most of them are 429s
        let young = self.young();
        let share = if young { HOLD_SHARE } else { SIGNAL_SHARE };
        let probe = self.probe(started);
        // remembered only when measured: a young key refused from its first
        // answers on has no clean rate yet, and a floor taken for one would
        // keep its cap at one call a second for RATE_MEMORY
        if after_cut && (self.rate.is_some() || young) && clean >= 2.0 {
            self.rate_top = Some((clean, now));
        }
        if !after_cut {
            // sent before the last cut: what was measured since counts
            // (a burst's answers arrive in any order)
            self.rate = self.rate.map(|r| r.max(cap));
        } else if probe || self.shares().is_some_and(|(t, _)| t >= share) {
            let rate = self.rate.map_or(cap, |r| r.min(cap));
            self.rate = Some(rate);
            self.rate_base = rate;
            self.last_rate_cut = Some(now);
            // the cap holds over any second: the clean answers of the last
            // one were sent in it already
            let window_ends = self
                .recent_ok
                .front()
                .map_or(now, |t| *t + Duration::from_secs(1));
            self.next_send = self
                .next_send
                .max(now + retry_after.unwrap_or_default())
                .max(window_ends);
        } else if let Some(rate) = self.rate {
            self.rate = Some(rate.min(cap).max(self.rate_base * BACKOFF));
            self.last_rate_cut = Some(now);
        }
    }
}
