//! A key's latency limit: when its answers take longer the more calls are in
//! flight (the service queues them), fewer calls are sent at once, so that its
//! latency stays near the unloaded one while its throughput holds.
//!
//! The unloaded latency is the median round trip of the key's first calls
//! sent with at most [`START_WINDOW`] in flight (for a key known to queue,
//! lowered by any lower median of a later second). When the median of the
//! last second's clean answers (at least 64, of calls sent after the calls in
//! flight came down to the last change) exceeds [`LATENCY_TOLERANCE`] × that and by more than
//! [`LATENCY_FLOOR`], the limit is set to the calls then in flight × the
//! target over the measured latency (Vegas and Netflix's gradient limits do
//! the same against a minimum); below, it grows by one per round trip, and
//! is dropped at the ceiling. Every cut is checked: when the latency of the
//! calls sent after it did not fall about in proportion (a heavy tail, a
//! service whose latency rose on its own), the limit goes and the key is never
//! latency-limited again. A service that is slow at any load (every
//! call 350 ms) never rises above its unloaded latency and keeps its limit;
//! the loss-based limits still apply (the key's limit is the lower of the two).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::{LATENCY_FLOOR, LATENCY_TOLERANCE, START_WINDOW};
use super::State;

/// Unloaded samples that make a base.
const BASE_SAMPLES: usize = 5;
/// Answers a decision needs (a median of fewer swings with a heavy tail).
const SAMPLE: usize = 64;
/// Recent round trips kept (the last second's, at most this many).
const RECENT: usize = 512;

/// What a key measured of its latency.
#[derive(Debug, Default)]
pub(super) struct Latency {
    /// Round trips of calls sent with few in flight, until the base is known.
    unloaded: Vec<Duration>,
    pub base: Option<Duration>,
    /// The last second's clean answers: when the call started, its round
    /// trip, the calls in flight then.
    recent: VecDeque<(Instant, Duration, usize)>,
    /// The limit, and when it last changed.
    pub limit: Option<f64>,
    changed: Option<Instant>,
    /// When the calls in flight came down to the limit after its last change.
    settled: Option<Instant>,
    /// The first cut, to be checked against the latency it brings: the
    /// median before, the calls in flight before and after.
    check: Option<(Duration, f64, f64)>,
    /// The first cut brought the latency down: the key queues.
    confirmed: bool,
    /// It did not: the key's latency does not depend on its load.
    immune: bool,
}

fn median(mut xs: Vec<Duration>) -> Option<Duration> {
    xs.sort_unstable();
    xs.get(xs.len() / 2).copied()
}

impl State {
    /// A clean answer of a call started at `started` with `level` in flight
    /// took `rtt`.
    pub(super) fn latency_answer(
        &mut self,
        started: Instant,
        rtt: Duration,
        level: usize,
        now: Instant,
    ) {
        let ceiling = self.ceiling as f64;
        let l = &mut self.latency;
        if l.base.is_none() {
            if level <= START_WINDOW {
                l.unloaded.push(rtt);
            }
            if l.unloaded.len() >= BASE_SAMPLES {
                l.base = median(std::mem::take(&mut l.unloaded));
            }
            return;
        }
        let Some(base) = l.base else {
            return;
        };
        l.recent.push_back((started, rtt, level));
        while l.recent.len() > RECENT
            || l.recent
                .front()
                .is_some_and(|(t, ..)| now - *t > Duration::from_secs(1))
        {
            l.recent.pop_front();
        }
        // after a change, only calls sent once the calls in flight came down
        // to the new limit count (the ones before still wait behind the old line)
        if l.settled.is_none()
            && l.limit
                .is_none_or(|limit| self.in_flight as f64 <= limit + 1.0)
        {
            l.settled = Some(now);
        }
        let since = match (l.changed, l.settled) {
            (None, _) => None,
            (Some(_), Some(settled)) => Some(settled),
            (Some(_), None) => return,
        };
        let fresh: Vec<(Duration, usize)> = l
            .recent
            .iter()
            .filter(|(t, ..)| since.is_none_or(|c| *t >= c))
            .map(|&(_, rtt, level)| (rtt, level))
            .collect();
        let mut target = base.mul_f64(LATENCY_TOLERANCE).max(base + LATENCY_FLOOR);
        if fresh.len() >= SAMPLE {
            let current = median(fresh.iter().map(|(r, _)| *r).collect()).unwrap_or(base);
            // the unloaded latency of a key known to queue is the lowest median
            // seen: a start measured on a busy machine is corrected once the
            // key runs below its queue
            if l.confirmed && current < base {
                l.base = Some(current);
                target = current
                    .mul_f64(LATENCY_TOLERANCE)
                    .max(current + LATENCY_FLOOR);
            }
            if let Some((before, from, to)) = l.check.take() {
                // a queue answers faster with fewer in line: about in proportion
                let expected = before.mul_f64(to / from.max(1.0));
                if current > (before + expected) / 2 {
                    // it did not: its latency is its own, not a queue's
                    l.limit = None;
                    l.immune = true;
                    l.changed = Some(now);
                    l.settled = None;
                    return;
                }
                l.confirmed = true;
            }
            if current > target && !l.immune {
                let level = fresh.iter().map(|(_, n)| *n as f64).sum::<f64>() / fresh.len() as f64;
                let limit = (level * target.as_secs_f64() / current.as_secs_f64()).max(1.0);
                let limit = l.limit.map_or(limit, |old| old.min(limit));
                // every cut is checked by the latency it brings
                l.check = Some((current, level, limit));
                l.limit = Some(limit);
                l.changed = Some(now);
                l.settled = None;
                return;
            }
        }
        if let Some(limit) = l.limit.as_mut()
            && rtt <= target
        {
            *limit += 1.0 / limit.max(1.0);
            if *limit >= ceiling {
                l.limit = None;
                l.changed = Some(now);
            }
        }
    }

    /// The latency limit in force, if any.
    pub(super) fn latency_limit(&self) -> Option<usize> {
        self.latency.limit.map(|l| (l.floor() as usize).max(1))
    }
}
