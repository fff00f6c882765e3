//! A key's learned send rate: set when a service refuses without saying its
//! limit, paced just below what it accepted, probed upward rarely.

use std::time::{Duration, Instant};

use super::super::{
    HOLD_SHARE, PROBE_GAP, PROBE_GAP_MAX, PROBE_LENGTH, PROBE_STEP, RATE_GROWTH, RATE_MARGIN,
    RATE_PROBE, SIGNAL_SHARE,
};
use super::State;

/// Refusals this far apart belong to one learning epoch: the rate is learned
/// from everything accepted since the epoch began.
const EPOCH: Duration = Duration::from_secs(10);
/// The slowest a learned rate goes (one call a minute).
const SLOWEST: f64 = 1.0 / 60.0;

/// What a key learned of its rate.
#[derive(Debug, Clone)]
pub(super) struct Learned {
    /// Measured from accepted calls (else a floor set before any was: it
    /// grows back at once on clean answers).
    grounded: bool,
    /// The epoch of refusals: from a second before its first, and the clean
    /// answers counted then.
    epoch: (Instant, u64),
    last_refusal: Instant,
    /// An upward probe in progress: the rate before it, and when it passes.
    probe: Option<(f64, Instant)>,
    /// The wait between probes (doubled when one fails) and their step
    /// (doubled when one passes).
    gap: Duration,
    step: f64,
    /// Since when the rate held without a refusal.
    calm_since: Instant,
}

impl State {
    /// A clean answer: an ungrounded rate grows back at once; a learned one
    /// is probed upward after [`PROBE_GAP`] without refusals, by
    /// [`PROBE_STEP`] (doubling with each probe that passes); a probe passes
    /// once [`PROBE_LENGTH`] went by without a refusal.
    pub(super) fn rate_grows(&mut self, now: Instant) {
        let Some(rate) = self.rate else {
            return;
        };
        let Some(learned) = self.learned.as_mut() else {
            return;
        };
        if !learned.grounded {
            let rate = rate + (RATE_PROBE / rate.max(1.0)).max(RATE_GROWTH * rate);
            // a cap above what the budget can send binds nothing
            let sendable = self.ceiling as f64 / self.rtt.as_secs_f64().max(1e-3);
            let unbound = self.rtt > Duration::ZERO && rate > 2.0 * sendable;
            self.rate = (!unbound).then_some(rate);
            if unbound {
                self.learned = None;
            }
            return;
        }
        match learned.probe {
            Some((_, until)) if now >= until => {
                // passed: the probed rate stays, the next probe steps further
                learned.probe = None;
                learned.calm_since = now;
                learned.step = (learned.step * 2.0).min(1.0);
            }
            None if now - learned.calm_since >= learned.gap => {
                learned.probe = Some((rate, now + PROBE_LENGTH));
                self.rate = Some(rate * (1.0 + learned.step));
            }
            // a probe running, or not yet time for one
            Some(_) | None => {}
        }
    }

    /// A throttled answer, when the key's pace is not advertised. It counts
    /// when a share of the last second's answers says so (most of them for a
    /// key still in its start, or its probe: see [`State::probe`]), or when
    /// the key is paced already and the call was sent after the last change.
    /// A failed upward probe goes back to the rate before it (the wait until
    /// the next doubles). Else the rate is learned: [`RATE_MARGIN`] × the
    /// clean answers of the last second for an epoch's first refusal, or of
    /// the whole epoch per second for the next ones (a window longer than a
    /// second shows in the long run), never more than the rate in force and
    /// never below half of it at once. The first send after waits the
    /// `Retry-After` the service gave, and until a second has passed since the
    /// first of the last second's clean answers (they count against it).
    pub(super) fn throttled_rate(
        &mut self,
        started: Instant,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let after_cut = self.last_rate_cut.is_none_or(|t| started >= t);
        let young = self.young();
        let share = if young { HOLD_SHARE } else { SIGNAL_SHARE };
        let counts = after_cut
            && (self.rate.is_some()
                || self.probe(started)
                || self.shares().is_some_and(|(t, _)| t >= share));
        if !counts {
            return;
        }
        let clean = self.recent_ok.len();
        let window_ends = self
            .recent_ok
            .front()
            .map_or(now, |t| *t + Duration::from_secs(1));
        self.last_rate_cut = Some(now);
        self.next_send = self
            .next_send
            .max(now + retry_after.unwrap_or_default())
            .max(window_ends);
        let learned = self.learned.get_or_insert(Learned {
            grounded: false,
            epoch: (now, self.clean_total),
            last_refusal: now,
            probe: None,
            gap: PROBE_GAP,
            step: PROBE_STEP,
            calm_since: now,
        });
        if let (Some((before, _)), Some(_)) = (learned.probe.take(), self.rate) {
            learned.gap = (learned.gap * 2).min(PROBE_GAP_MAX);
            learned.step = PROBE_STEP;
            learned.calm_since = now;
            learned.last_refusal = now;
            self.rate = Some(before);
            return;
        }
        let second_ago = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let new_epoch = self.rate.is_none() || now - learned.last_refusal > EPOCH;
        if new_epoch {
            learned.epoch = (second_ago, self.clean_total - clean as u64);
        }
        let (since, clean_then) = learned.epoch;
        let accepted = (self.clean_total - clean_then) as f64;
        let measured = accepted / (now - since).as_secs_f64().max(1.0);
        let grounded = accepted >= 2.0;
        let mut rate = (measured * RATE_MARGIN).max(SLOWEST);
        if !grounded {
            // nothing accepted yet: a call a second until clean answers come
            rate = 1.0;
        }
        if let Some(current) = self.rate.filter(|_| learned.grounded) {
            rate = rate.min(current).max(current * 0.5);
        }
        learned.grounded = grounded || learned.grounded;
        learned.last_refusal = now;
        learned.calm_since = now;
        self.rate = Some(rate);
    }
}
