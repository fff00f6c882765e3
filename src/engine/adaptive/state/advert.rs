//! A key's advertised quotas: what its answers said was left, and the pace
//! that makes it last until the reset.

use std::time::{Duration, Instant};

use crate::quota::Quota;

use super::State;

/// One advertised quota as the key paces it.
#[derive(Debug, Clone)]
pub(super) struct Pace {
    name: String,
    requests: bool,
    /// Calls that may still start before `reset_at`.
    left: u64,
    reset_at: Instant,
    /// The quota of the next window and its length, when known.
    limit: Option<u64>,
    window: Option<Duration>,
    /// The next call may start from then (the quota spread until the reset).
    next: Instant,
    /// The reset an answer told last (renewals move `reset_at` on their own).
    told: Instant,
}

/// The shortest window a quota is renewed for.
const MIN_WINDOW: Duration = Duration::from_millis(100);

impl Pace {
    /// A window that ended starts the next with its known quota (`false`: the
    /// quota of the next is unknown, the pace is dropped until an answer tells).
    fn renew(&mut self, now: Instant) -> bool {
        if now < self.reset_at {
            return true;
        }
        let Some(limit) = self.limit else {
            return false;
        };
        let window = self
            .window
            .unwrap_or(Duration::from_secs(1))
            .max(MIN_WINDOW);
        while self.reset_at <= now {
            self.reset_at += window;
        }
        self.left = limit;
        self.next = now;
        true
    }
}

impl State {
    /// When the advertised quotas let the next call start (`None`: now).
    pub(super) fn advertised_gate(&mut self, now: Instant) -> Option<Instant> {
        self.paces.retain_mut(|p| p.renew(now));
        self.paces
            .iter()
            .filter_map(|p| {
                if p.left == 0 {
                    Some(p.reset_at)
                } else {
                    (p.requests && p.next > now).then_some(p.next)
                }
            })
            .max()
    }

    /// A call started: it takes one of every call quota, the rest spread
    /// evenly until the reset.
    pub(super) fn advertised_started(&mut self, now: Instant) {
        self.sent += 1;
        for p in self.paces.iter_mut().filter(|p| p.requests) {
            p.left = p.left.saturating_sub(1);
            let until = p.reset_at.saturating_duration_since(now);
            p.next = now + until / u32::try_from(p.left + 1).unwrap_or(u32::MAX);
        }
    }

    /// Whether the key's pace comes from advertised quotas.
    pub(super) fn advertised(&self) -> bool {
        !self.paces.is_empty()
    }

    /// The calls per second the advertised call quotas allow now (the
    /// slowest), for reports.
    pub(super) fn advertised_rate(&self, now: Instant) -> Option<f64> {
        self.paces
            .iter()
            .filter(|p| p.requests)
            .map(|p| {
                let until = p.reset_at.saturating_duration_since(now).as_secs_f64();
                p.left as f64 / until.max(1e-3)
            })
            .min_by(f64::total_cmp)
    }

    /// An answer to the call that was the `seq`-th to start advertised
    /// `quotas`: what is left of each, less the calls started after it (they
    /// may not have been counted yet), lasts until its reset. An answer of an
    /// earlier window than the one paced (its reset half a window or more
    /// before) is ignored; one of the same window can only lower what is left
    /// and the reset (answers arrive in any order; a reset in whole seconds
    /// is rounded up); one of a later window starts it.
    pub(super) fn advertised_answer(&mut self, quotas: &[Quota], seq: u64, now: Instant) {
        let after = self.sent.saturating_sub(seq);
        for q in quotas {
            let left = q
                .remaining
                .saturating_sub(if q.requests { after } else { 0 });
            let reset_at = now + q.reset;
            let fresh = Pace {
                name: q.name.clone(),
                requests: q.requests,
                left,
                reset_at,
                limit: q.limit,
                window: q.window,
                next: now,
                told: reset_at,
            };
            match self.paces.iter_mut().find(|p| p.name == q.name) {
                None => self.paces.push(fresh),
                Some(p) => {
                    let half = p.window.or(q.window).unwrap_or(Duration::from_secs(1)) / 2;
                    if reset_at + half < p.reset_at {
                        // an earlier window's answer, arriving late
                    } else if reset_at <= p.reset_at + half {
                        // the same window: what is left only falls, and each
                        // reset told (rounded up to seconds by many
                        // services) bounds the true one from above
                        p.left = p.left.min(left);
                        p.reset_at = p.reset_at.min(reset_at).max(now);
                        p.told = p.told.min(reset_at);
                        p.limit = q.limit.or(p.limit);
                        p.window = q.window.or(p.window);
                    } else {
                        // the next window: its length is learned when none is told
                        let learned =
                            Some(reset_at.saturating_duration_since(p.told)).filter(|w| *w > half);
                        *p = Pace {
                            window: q.window.or(learned).or(p.window),
                            limit: q.limit.or(p.limit),
                            next: p.next,
                            ..fresh
                        };
                    }
                }
            }
        }
    }
}
